"""The logged dataset: generation, CSV round trip, schema errors, preprocessing."""

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recrl_lite.data import (
    SchemaError,
    generate_dataset,
    load_dataset,
    prepare,
    temporal_split,
    validate_table,
)
from recrl_lite.data.preprocessing import FeatureEncoder, IdIndex
from recrl_lite.envs import ECommerceEnv


def test_tables_have_the_promised_columns(small_dataset):
    assert list(small_dataset.users.columns) == ["user_id", "age", "gender", "location"]
    assert list(small_dataset.items.columns) == ["item_id", "category", "price", "title"]
    assert list(small_dataset.interactions.columns) == [
        "user_id", "item_id", "timestamp", "position", "click", "purchase", "propensity",
    ]


def test_generation_is_seeded(small_dataset):
    again = generate_dataset(n_users=300, seed=3)
    pd.testing.assert_frame_equal(small_dataset.interactions, again.interactions)
    other = generate_dataset(n_users=300, seed=4)
    assert not small_dataset.interactions.equals(other.interactions)


def test_logged_propensities_are_the_behaviour_policy_probabilities(small_dataset):
    inter = small_dataset.interactions
    assert ((inter.propensity > 0) & (inter.propensity <= 1)).all()
    assert inter.propensity.min() >= 0.1 / 120 - 1e-12  # the uniform-exploration floor
    assert (inter.purchase <= inter.click).all()
    assert inter.timestamp.is_monotonic_increasing


def test_item_ids_follow_the_env_action_order(small_dataset):
    env = ECommerceEnv()
    np.testing.assert_array_equal(small_dataset.items.item_id, env.catalogue.item_id)
    assert small_dataset.items.item_id.is_monotonic_increasing


def test_csv_round_trip(small_dataset, tmp_path):
    small_dataset.to_csv(tmp_path)
    loaded = load_dataset(tmp_path)
    for name in ("users", "items", "interactions"):
        pd.testing.assert_frame_equal(getattr(small_dataset, name), getattr(loaded, name))
    # the hidden profiles are the simulator's truth: the generator keeps them, files never hold them
    assert len(small_dataset.profiles) == len(small_dataset.users) and loaded.profiles is None
    assert [p.age for p in small_dataset.profiles] == small_dataset.users["age"].tolist()


def _corrupt(small_dataset, tmp_path, table, edit):
    small_dataset.to_csv(tmp_path)
    frame = pd.read_csv(tmp_path / f"{table}.csv")
    frame = edit(frame)
    frame.to_csv(tmp_path / f"{table}.csv", index=False)
    with pytest.raises(SchemaError) as err:
        load_dataset(tmp_path)
    return str(err.value)


def test_missing_column(small_dataset, tmp_path):
    msg = _corrupt(small_dataset, tmp_path, "users", lambda f: f.drop(columns="gender"))
    assert "users.csv columns ['user_id', 'age', 'location']: expected" in msg and "(missing ['gender'])" in msg


def test_nan_names_rows(small_dataset, tmp_path):
    def edit(f):
        f.loc[[2, 7], "price"] = np.nan
        return f

    msg = _corrupt(small_dataset, tmp_path, "items", edit)
    assert "items.csv" in msg and "'price'" in msg and "rows [2, 7]" in msg and "NaN" in msg


def test_wrong_dtype(small_dataset, tmp_path):
    def edit(f):
        f["age"] = f["age"].astype(object)
        f.loc[4, "age"] = "forty"
        return f

    msg = _corrupt(small_dataset, tmp_path, "users", edit)
    assert "users.csv" in msg and "'age'" in msg and "rows [4]" in msg and "forty" in msg


def test_float_in_integer_column(small_dataset, tmp_path):
    def edit(f):
        f["timestamp"] = f["timestamp"].astype(float)
        f.loc[1, "timestamp"] += 0.5
        return f

    msg = _corrupt(small_dataset, tmp_path, "interactions", edit)
    assert "'timestamp'" in msg and "integer" in msg and "rows [1]" in msg


def test_unknown_id(small_dataset, tmp_path):
    def edit(f):
        f.loc[[0, 3], "item_id"] = 5
        return f

    msg = _corrupt(small_dataset, tmp_path, "interactions", edit)
    assert "interactions.csv" in msg and "'item_id'" in msg and "unknown ids" in msg and "rows [0, 3]" in msg


@pytest.mark.parametrize("bad", [0.0, 1.5, -0.2])
def test_propensity_outside_unit_interval(small_dataset, tmp_path, bad):
    def edit(f):
        f.loc[5, "propensity"] = bad
        return f

    msg = _corrupt(small_dataset, tmp_path, "interactions", edit)
    assert f"column 'propensity' [{bad}]: expected values in (0, 1]" in msg and "rows [5]" in msg


def test_unknown_category_value_and_duplicate_ids(small_dataset):
    users = small_dataset.users.copy()
    users.loc[9, "location"] = "atlantis"
    with pytest.raises(SchemaError, match=r"column 'location' \['atlantis'\]: expected one of .*rows \[9\]"):
        validate_table(users, "users")
    users = small_dataset.users.copy()
    users.loc[1, "user_id"] = users.loc[0, "user_id"]
    with pytest.raises(SchemaError, match=r"column 'user_id' \[\d+, \d+\]: expected unique ids \(rows \[0, 1\] repeat"):
        validate_table(users, "users")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="users.csv"):
        load_dataset(tmp_path)


def test_temporal_split_puts_the_future_in_test(small_dataset):
    train, test = temporal_split(small_dataset.interactions, 0.2)
    assert train.timestamp.max() < test.timestamp.min()
    assert len(train) + len(test) == len(small_dataset.interactions)
    assert 0.15 < len(test) / len(small_dataset.interactions) < 0.25


def test_prepare_indexes_ids_and_fits_on_train_only(small_dataset):
    prep = prepare(small_dataset)
    # ids become contiguous indices and are never features
    assert prep.train.user_index.between(0, len(prep.user_index) - 1).all()
    np.testing.assert_array_equal(prep.item_index.id_of(prep.train.item_index), prep.train.item_id)
    assert not any("id" in name for name in prep.user_encoder.feature_names + prep.item_encoder.feature_names)
    # standardised with training-split users only
    train_users = small_dataset.users[small_dataset.users.user_id.isin(prep.train.user_id)]
    rows = prep.user_index.index_of(train_users.user_id)
    age = prep.user_features[rows, 0]
    assert abs(age.mean()) < 1e-5 and abs(age.std() - 1) < 1e-4
    assert prep.user_encoder.mean_["age"] == pytest.approx(train_users.age.mean())
    # one-hot columns are exact 0/1 with one 1 per group
    onehot = prep.user_features[:, 1:3]
    assert set(np.unique(onehot)) <= {0.0, 1.0} and (onehot.sum(1) == 1).all()


def test_feature_encoder_unseen_category_is_all_zero_and_counted():
    enc = FeatureEncoder(categorical=["c"], numeric=["x"]).fit(pd.DataFrame({"c": ["a", "b"], "x": [1.0, 3.0]}))
    out = enc.transform(pd.DataFrame({"c": ["b", "zzz"], "x": [2.0, 5.0]}))
    np.testing.assert_allclose(out, [[0.0, 0.0, 1.0], [3.0, 0.0, 0.0]])
    assert enc.unseen_["c"] == 1
    with pytest.raises(ValueError, match=r"invalid frame columns \['c'\]: expected the columns \['c', 'x'\] \(missing \['x'\]\)"):
        enc.transform(pd.DataFrame({"c": ["a"]}))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(-10**9, 10**9), min_size=1, max_size=50, unique=True))
def test_id_index_is_a_bijection(ids):
    index = IdIndex(ids)
    positions = index.index_of(ids)
    assert sorted(positions.tolist()) == list(range(len(ids)))
    np.testing.assert_array_equal(index.id_of(positions), ids)


def test_id_index_rejects_unknown_and_duplicate_ids():
    with pytest.raises(KeyError, match="unknown ids \\[7\\]"):
        IdIndex([1, 2, 3], "item_id").index_of([1, 7])
    with pytest.raises(ValueError, match="unique"):
        IdIndex([1, 1, 2])


def test_slates_are_refused_by_the_logger():
    from recrl_lite.envs import ECommerceConfig

    with pytest.raises(ValueError, match=r"invalid config.slate_size 3: expected 1"):
        generate_dataset(5, config=ECommerceConfig(slate_size=3))


def test_log_transitions_records_the_truth_for_every_item_on_request():
    import gymnasium as gym

    from recrl_lite.agents import SoftmaxBehaviourPolicy
    from recrl_lite.data import log_transitions

    env = gym.make("recrl_lite/ECommerce-v0")
    plain = log_transitions(env, SoftmaxBehaviourPolicy(env), 300, seed=4)
    logs = log_transitions(env, SoftmaxBehaviourPolicy(env), 300, seed=4, record_truth=True)
    assert plain.true_click_probabilities is None
    truth = logs.true_click_probabilities
    assert truth.shape == (len(logs), env.action_space.n)
    # the logged item's column is the per-step truth already logged, and recording changes nothing else
    assert np.array_equal(truth[np.arange(len(logs)), logs.actions], logs.true_click_probability)
    assert np.array_equal(plain.actions, logs.actions) and np.array_equal(plain.rewards, logs.rewards)
    train, test = logs.split(0.5)
    assert train.true_click_probabilities.shape == (len(train), env.action_space.n)
    assert np.array_equal(np.concatenate([train.true_click_probabilities, test.true_click_probabilities]), truth)


# ----------------------------------------------------------------------------- hostile files (issue 11)
def test_infinite_prices_are_refused(small_dataset, tmp_path):
    def edit(f):
        f["price"] = f["price"].astype(float)
        f.loc[3, "price"] = np.inf
        return f
    msg = _corrupt(small_dataset, tmp_path, "items", edit)
    assert "items.csv" in msg and "'price'" in msg and "infinite" in msg and "rows [3]" in msg


def test_purchase_without_click_is_refused(small_dataset, tmp_path):
    def edit(f):
        row = int(np.flatnonzero(f["click"].to_numpy() == 0)[0])
        f.loc[row, "purchase"] = 1
        return f
    msg = _corrupt(small_dataset, tmp_path, "interactions", edit)
    assert "interactions.csv" in msg and "purchase without a click" in msg


def test_timestamps_beyond_int64_are_refused(small_dataset, tmp_path):
    small_dataset.to_csv(tmp_path)
    path = tmp_path / "interactions.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[1].split(",")
    cells[header.index("timestamp")] = str(2**63)
    path.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    with pytest.raises(SchemaError, match=r"interactions.csv column 'timestamp' \[9223372036854775808\]: "
                                          r"expected integers within the int64 range \(above it in rows \[0\]\)"):
        load_dataset(tmp_path)


@pytest.mark.parametrize("content, why", [(b"", "the file is empty"), (b"\xff\xfe\x00\x81\x9f" * 40, "UnicodeDecodeError")])
def test_empty_and_binary_files_are_named(small_dataset, tmp_path, content, why):
    small_dataset.to_csv(tmp_path)
    (tmp_path / "users.csv").write_bytes(content)
    shown = re.escape(repr(content[:16]))  # the file's first bytes
    with pytest.raises(SchemaError, match=rf"users.csv {shown}: expected a readable CSV file for the 'users' table \({why}"):
        load_dataset(tmp_path)


def test_header_only_and_single_row_logs(small_dataset, tmp_path):
    from recrl_lite.data import Dataset, prepare
    msg = _corrupt(small_dataset, tmp_path, "interactions", lambda f: f.iloc[:0])
    assert "interactions.csv" in msg and "has no rows" in msg
    one = Dataset(small_dataset.users, small_dataset.items, small_dataset.interactions.iloc[:1])
    with pytest.raises(ValueError, match="at least 2 interactions"):
        prepare(one)
