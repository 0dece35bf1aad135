"""Linear probes and the bag-of-words baseline of chapter 6, on seeded synthetic data."""

import warnings

import numpy as np
import pytest

# scikit-learn comes with the test and text extras (pyproject.toml); without it the probes cannot run
pytest.importorskip("sklearn", reason="the probes need scikit-learn (pip install 'recrl_lite[test]')")

from recrl_lite.evaluation.probes import bag_of_words_features, linear_probe_auc


def _split(seed: int = 0, n: int = 800):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    separable = (2 * labels - 1)[:, None] * rng.uniform(0.1, 1.0, size=(n, 1))  # sign gives the label
    noise = rng.normal(size=(n, 3))
    half = n // 2
    return separable, noise, labels, half


def test_separable_feature_gives_auc_one():
    separable, noise, labels, h = _split()
    x = np.hstack([separable, noise])
    assert linear_probe_auc(x[:h], labels[:h], x[h:], labels[h:]) == 1.0


def test_noise_feature_gives_auc_near_half():
    _, noise, labels, h = _split(seed=1)
    auc = linear_probe_auc(noise[:h], labels[:h], noise[h:], labels[h:])
    assert 0.4 < auc < 0.6, auc


def test_probe_is_fitted_on_train_only():
    """A feature whose relation to the label flips between train and test gives AUC 0:
    a probe that peeked at the test set would score 1."""
    separable, _, labels, h = _split(seed=2)
    test_features = -separable[h:]
    assert linear_probe_auc(separable[:h], labels[:h], test_features, labels[h:]) == 0.0


def test_probe_accepts_bool_labels_and_is_deterministic():
    separable, noise, labels, h = _split(seed=3)
    x = np.hstack([separable + noise[:, :1], noise[:, 1:]])
    first = linear_probe_auc(x[:h], labels[:h].astype(bool), x[h:], labels[h:].astype(bool), C=0.5)
    assert 0.6 < first < 1.0
    assert linear_probe_auc(x[:h], labels[:h], x[h:], labels[h:], C=0.5) == first


def test_probe_raises_no_warning():
    separable, noise, labels, h = _split(seed=4)
    x = np.hstack([separable, noise])
    with warnings.catch_warnings():
        # the probe's own warnings (ConvergenceWarning is a UserWarning, overflow a RuntimeWarning);
        # not other libraries' deprecation notices (scikit-learn 1.3 with a new SciPy raises one)
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("error", RuntimeWarning)
        linear_probe_auc(x[:h], labels[:h], x[h:], labels[h:], C=100.0)


def test_bag_of_words_ignores_words_unseen_in_train():
    train = ["Red running shoe", "blue running shoe shoe", "steel kettle"]
    test = ["red kettle", "wireless headset", "size 5 shoe"]
    x_train, x_test = bag_of_words_features(train, test)
    # vocabulary of train only: blue, kettle, red, running, shoe, steel
    assert x_train.shape == (3, 6) and x_test.shape == (3, 6)
    assert set(np.unique(x_train)) == {0.0, 1.0}  # binary: "shoe shoe" counts once
    assert x_train.sum(axis=1).tolist() == [3.0, 3.0, 2.0]
    assert x_test[0].sum() == 2.0  # red, kettle
    assert not x_test[1].any()  # made only of unseen words: an all-zero row
    assert x_test[2].sum() == 1.0  # only "shoe"; "size" and "5" are unseen


def test_bag_of_words_keeps_single_characters_and_bigrams():
    x_train, x_test = bag_of_words_features(["size 5 shoe", "size 6 shoe"], ["size 5 boot"], ngram_range=(1, 2))
    # unigrams 5, 6, shoe, size; bigrams "5 shoe", "6 shoe", "size 5", "size 6"
    assert x_train.shape[1] == 8
    assert x_test.sum() == 3.0  # size, 5, "size 5"


def test_bag_of_words_probe_cannot_score_new_words():
    train = ["red shoe", "red boot", "blue kettle", "blue pan"] * 5
    labels = np.array([1, 1, 0, 0] * 5)
    test = ["crimson sneaker", "azure teapot"]  # all words unseen: both rows are zero
    x_train, x_test = bag_of_words_features(train, test)
    assert linear_probe_auc(x_train, labels, x_test, np.array([1, 0])) == 0.5


@pytest.mark.parametrize(("args", "match"), [
    (dict(train_texts="red shoe"), r"invalid train_texts 'red shoe' \(type str\): expected a sequence"),
    (dict(train_texts=[]), r"invalid train_texts \[\]: expected a non-empty"),
    (dict(test_texts=["ok", 3]), r"test_texts\[1\]"),
    (dict(train_texts=["...", "!!"]), r"invalid train_texts \['...', '!!'\]: expected texts with at least one word token"),
    (dict(ngram_range=(2, 1)), "ngram_range"),
    (dict(ngram_range=(0, 1)), "ngram_range"),
])
def test_bag_of_words_validation(args, match):
    kwargs = dict(train_texts=["red shoe", "blue kettle"], test_texts=["red kettle"], **{})
    kwargs.update(args)
    with pytest.raises((ValueError, TypeError), match=match):
        bag_of_words_features(**kwargs)


def _good():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(20, 2))
    y = np.array([0, 1] * 10)
    return dict(train_features=x, train_labels=y, test_features=x.copy(), test_labels=y.copy())


def _with(**changes):
    args = _good()
    args.update(changes)
    return args


@pytest.mark.parametrize(("args", "match"), [
    (_with(train_features=np.zeros(20)), r"invalid train_features ndarray\(shape=\(20,\).*: expected a 2-D"),
    (_with(test_features=np.zeros((20, 3))), r"invalid test_features ndarray\(shape=\(20, 3\).*: expected 2 columns"),
    (_with(train_labels=np.array([0, 1] * 9)), r"invalid train_labels ndarray\(shape=\(18,\).*: expected 20 labels"),
    (_with(test_labels=np.array([0, 2] * 10)), r"invalid test_labels \[2\]: expected binary.*rows \[1, 3, 5, 7, 9\]"),
    (_with(train_labels=np.zeros(20, dtype=int)), r"invalid train_labels .*: expected both classes.*only label 0"),
    (_with(test_labels=np.ones(20, dtype=bool)), r"invalid test_labels .*dtype=bool\): expected both classes"),
    (_with(train_labels=np.array(["a", "b"] * 10)), r"invalid train_labels .*dtype=<U1\): expected binary"),
    (_with(test_labels=np.array([0, 1] * 10)[:, None]), r"invalid test_labels ndarray\(shape=\(20, 1\).*: expected a 1-D"),
    (_with(train_features=np.where(np.eye(20, 2) > 0, np.nan, 0.0)),
     r"invalid train_features \[nan, nan\]: expected finite.*\[\[0, 0\], \[1, 1\]\]"),
    (_with(test_features=np.full((20, 2), np.inf)), r"invalid test_features \[inf, .*: expected finite"),
    (_with(train_features=np.array([["a", "b"]] * 20)), r"invalid train_features .*dtype=<U1\): expected numeric"),
    (_with(C=0.0), r"invalid C 0.0: expected a finite number in \(0, inf\)"),
    (_with(C=float("nan")), r"invalid C nan: expected a finite number in \(0, inf\)"),
])
def test_probe_validation(args, match):
    with pytest.raises(ValueError, match=match):
        linear_probe_auc(**args)
