"""The article's Keras model, the corrected Keras two-tower model and its torch twin (chapter 5).

Keras 3 runs for real, on the torch backend: the torch model must reproduce its outputs after
copy_keras_weights, and the parameter counts are checked against closed forms.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from recrl_lite.models.keras_equivalent import (
    TwoTowerScorer,
    build_article_keras_model,
    build_keras_two_tower,
    copy_keras_weights,
    model_summaries,
)

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

U, I, H = 7, 5, 64

# Keras 3.15's predict/get_weights call np.array(torch_tensor), which numpy 2 warns about; not ours
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


def _inputs(seed: int, n: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, U)).astype(np.float32), rng.normal(size=(n, I)).astype(np.float32)


def _pair(head_hidden: int = H, seed: int = 0):
    model = build_keras_two_tower(U, I, hidden=H, head_hidden=head_hidden, seed=seed)
    scorer = copy_keras_weights(model, TwoTowerScorer(U, I, hidden=H, head_hidden=head_hidden))
    return model, scorer


# ------------------------------------------------------------------------------- import hygiene
_HYGIENE = """
import os, sys, types
import recrl_lite, recrl_lite.models.keras_equivalent as ke
print("imported keras:", "keras" in sys.modules)
def attempt():
    try:
        ke.build_keras_two_tower(3, 2)
    except Exception as e:
        print(type(e).__name__, e)
os.environ["KERAS_BACKEND"] = "jax"
attempt()
os.environ["KERAS_BACKEND"] = "torch"
sys.modules["keras"] = None  # as if not installed
attempt()
# keras already imported with another backend (a stand-in: TensorFlow and JAX are not installed)
sys.modules["keras"] = types.SimpleNamespace(backend=types.SimpleNamespace(backend=lambda: "tensorflow"))
attempt()
"""


def test_import_is_light_and_errors_say_how_to_fix():
    """In a fresh interpreter, where keras is not imported yet (this test file imports it)."""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    out = subprocess.run([sys.executable, "-c", _HYGIENE], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "imported keras: False"
    assert lines[1].startswith("RuntimeError") and "KERAS_BACKEND is 'jax'" in lines[1] and "torch" in lines[1]
    assert lines[2].startswith("ImportError") and "pip install keras" in lines[2]
    assert lines[3].startswith("RuntimeError") and "'tensorflow' backend" in lines[3] and "restart" in lines[3]


# ------------------------------------------------------------------------------- equivalence
@pytest.mark.parametrize("head_hidden", [H, 0])
def test_torch_twin_reproduces_keras_outputs(head_hidden):
    assert keras.backend.backend() == "torch"
    for seed in range(3):
        model, scorer = _pair(head_hidden, seed)
        u, i = _inputs(seed + 10)
        expected = model.predict([u, i], verbose=0)
        assert expected.shape == (32, 1)
        got = scorer(torch.from_numpy(u), torch.from_numpy(i)).detach().numpy()
        np.testing.assert_allclose(got, expected[:, 0], atol=1e-5, rtol=0)
        # the direct call (no predict loop) agrees as well
        direct = keras.ops.convert_to_numpy(model([u, i], training=False))
        np.testing.assert_allclose(got, direct[:, 0], atol=1e-5, rtol=0)


def test_copy_transposes_kernels():
    model, scorer = _pair()
    kernel, bias = model.get_layer("user_tower").get_weights()
    assert kernel.shape == (U, H)
    np.testing.assert_array_equal(scorer.user_tower.weight.detach().numpy(), kernel.T)
    np.testing.assert_array_equal(scorer.user_tower.bias.detach().numpy(), bias)
    # a hand-made user tower: relu(u @ kernel + bias), then the rest by brute force with numpy
    u, i = _inputs(1, 4)
    w = {layer.name: layer.get_weights() for layer in model.layers if layer.weights}
    relu = lambda x: np.maximum(x, 0)  # noqa: E731
    x = np.concatenate([relu(u @ w["user_tower"][0] + w["user_tower"][1]), relu(i @ w["item_tower"][0] + w["item_tower"][1])], 1)
    s = relu(x @ w["head"][0] + w["head"][1]) @ w["score"][0] + w["score"][1]
    np.testing.assert_allclose(scorer(torch.from_numpy(u), torch.from_numpy(i)).detach().numpy(), s[:, 0], atol=1e-5)


@pytest.mark.parametrize("head_hidden", [H, 0])
def test_score_all_items_matches_pairwise_scores(head_hidden):
    _, scorer = _pair(head_hidden)
    u, _ = _inputs(2, 6)
    items = torch.from_numpy(np.random.default_rng(3).normal(size=(40, I)).astype(np.float32))
    users = torch.from_numpy(u)
    with torch.no_grad():
        grid = scorer.score_all_items(users, items)
        assert grid.shape == (6, 40)
        brute = torch.stack([scorer(users[b].expand(40, U), items) for b in range(6)])
    np.testing.assert_allclose(grid.numpy(), brute.numpy(), atol=1e-5)


def test_linear_head_ranks_items_identically_for_every_user():
    """Dense(1) on the concatenation is user term + item term: one ranking for all users; the MLP head is not."""
    items = torch.from_numpy(np.random.default_rng(4).normal(size=(30, I)).astype(np.float32))
    users = torch.from_numpy(_inputs(5, 8)[0])
    rankings = {}
    for head_hidden in (0, H):
        torch.manual_seed(0)
        with torch.no_grad():
            grid = TwoTowerScorer(U, I, head_hidden=head_hidden).score_all_items(users, items)
        rankings[head_hidden] = torch.argsort(grid, dim=1, descending=True).numpy()
        if head_hidden == 0:
            diffs = grid - grid[:, :1]  # item-vs-item differences do not depend on the user
            np.testing.assert_allclose(diffs.numpy(), np.broadcast_to(diffs[:1].numpy(), diffs.shape), atol=1e-5)
    assert (rankings[0] == rankings[0][0]).all()
    assert not (rankings[H] == rankings[H][0]).all()


# ------------------------------------------------------------------------------- sizes and summary
def test_parameter_counts_match_closed_form_and_summary_totals():
    model, scorer = _pair()
    expected = (U + 1) * H + (I + 1) * H + (2 * H + 1) * H + (H + 1)
    assert model.count_params() == expected
    assert sum(p.numel() for p in scorer.parameters()) == expected
    table = model_summaries(model, scorer)
    total = table.set_index("layer").loc["total"]
    assert total.keras_params == total.torch_params == expected
    body = table[table.layer != "total"]
    assert body.keras_params.sum() == body.torch_params.sum() == expected
    rows = table.set_index("layer")
    for name, shape in [("user_tower", f"(None, {H})"), ("item_tower", f"(None, {H})"), ("head", f"(None, {H})"),
                        ("score", "(None, 1)")]:
        assert rows.loc[name, "keras_output_shape"] == shape
        assert rows.loc[name, "torch_module"] == "Linear"
    assert rows.loc["concatenate", "keras_output_shape"] == f"(None, {2 * H})"
    assert rows.loc["score", "torch_output_shape"] == "(None, 1)"
    assert list(rows.index[:2]) == ["user_features", "item_features"]
    print(table.to_string(index=False))


def test_copy_rejects_shape_and_name_mismatches():
    model = build_keras_two_tower(U, I, seed=0)
    scorer = TwoTowerScorer(U + 1, I)
    before = [p.detach().clone() for p in scorer.parameters()]
    with pytest.raises(ValueError, match="user_tower"):
        copy_keras_weights(model, scorer)
    assert all(torch.equal(a, b) for a, b in zip(before, scorer.parameters()))  # nothing copied
    with pytest.raises(ValueError, match="head"):  # keras has a 'head' layer, this torch twin none
        copy_keras_weights(model, TwoTowerScorer(U, I, head_hidden=0))
    with pytest.raises(ValueError, match="no nn.Linear of the same name"):
        copy_keras_weights(build_article_keras_model(U, I, compile=False, seed=0), TwoTowerScorer(U, I))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="hidden"):
        TwoTowerScorer(U, I, hidden=0)
    with pytest.raises(ValueError, match="n_user_features"):
        build_keras_two_tower(0, I)
    scorer = TwoTowerScorer(U, I)
    with pytest.raises(ValueError, match=r"invalid item_features Tensor\(shape=\(4, 5\).*: expected 3 rows, the batch size of user_features"):
        scorer(torch.zeros(3, U), torch.zeros(4, I))
    with pytest.raises(ValueError, match="item_features"):
        scorer.score_all_items(torch.zeros(3, U), torch.zeros(4, I + 1))


# ------------------------------------------------------------------------------- the article's model
def test_article_model_runs_and_shows_its_problems():
    n_items = 100  # a catalogue of 100 items: the softmax still has 64 outputs
    model = build_article_keras_model(U, I, seed=0)
    rng = np.random.default_rng(6)
    u = rng.normal(size=(n_items, U)).astype(np.float32)
    i = rng.normal(size=(n_items, I)).astype(np.float32)
    out = model.predict([u, i], verbose=0)
    assert out.shape == (n_items, 64)                   # 64-way, not one score per (user, item)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)  # a distribution over 64 "classes"
    assert (out >= 0).all()
    # Flatten does nothing: same shape and same values as the concatenation it follows
    concat, flat = model.get_layer("concatenated"), model.get_layer("flatten")
    assert concat.output.shape == flat.output.shape == (None, 128)
    probe = keras.Model(model.inputs, [concat.output, flat.output])
    a, b = (keras.ops.convert_to_numpy(t) for t in probe([u[:5], i[:5]]))
    np.testing.assert_array_equal(a, b)
    assert model.count_params() == (U + 1) * 64 + (I + 1) * 64 + (128 + 1) * 64
    assert model.loss == "categorical_crossentropy"  # compiled for labels that do not exist
