"""Serve the vendored front-end assets (MathJax, Mermaid) from the book itself.

Why an extension instead of ``html_static_path: ["_static", "_vendor"]`` in ``_config.yml``:
when a ``_static/`` folder exists, Jupyter Book 1.x walks *every* ``html_static_path`` entry and
adds each ``*.js`` file it finds to ``html_js_files``. ``_vendor/mathjax/tex-mml-chtml.js`` would
then be loaded twice on every page (once as a plain ``<script>``, once as the deferred
``mathjax_path`` script). Jupyter Book computes that list before Sphinx starts, so adding
``_vendor`` here, on ``config-inited``, makes Sphinx copy it to ``_static/`` without any automatic
``<script>`` tags. MathJax is then loaded only through ``mathjax_path`` and Mermaid only through
sphinxcontrib-mermaid's ``import ... from "<mermaid_use_local>"`` module, each on the pages that
need them.

The extension also fails the build early, with a clear message, when the vendored files are
missing (run ``scripts/vendor_assets.sh``), or when a page would pull MathJax/Mermaid from a CDN.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError

VENDOR_DIR = Path(__file__).resolve().parent.parent / "_vendor"
REQUIRED_FILES = (
    "mermaid/mermaid.esm.min.mjs",
    "mathjax/tex-mml-chtml.js",
)


def _js_name(entry) -> str:
    """``html_js_files`` entries are either a filename or a ``(filename, attributes)`` pair."""
    return entry[0] if isinstance(entry, (tuple, list)) else entry


def add_vendor_static_path(app: Sphinx, config: Config) -> None:
    missing = [f for f in REQUIRED_FILES if not (VENDOR_DIR / f).is_file()]
    if missing:
        raise ConfigError(
            f"vendored assets missing under {VENDOR_DIR}: {', '.join(missing)}; "
            "run scripts/vendor_assets.sh"
        )

    for name in ("mathjax_path", "mermaid_use_local"):
        value = getattr(config, name, "")
        if not value or "://" in value or value.startswith("//"):
            raise ConfigError(
                f"{name} must point at a vendored file relative to _vendor/ (got {value!r}); "
                "the book must not load anything from a CDN"
            )
        if not (VENDOR_DIR / value).is_file():
            raise ConfigError(f"{name} = {value!r} does not exist under {VENDOR_DIR}")

    static = [str(p) for p in config.html_static_path]
    if not any(Path(app.confdir, p).resolve() == VENDOR_DIR for p in static):
        static.append(str(VENDOR_DIR))
    config.html_static_path = static

    # Defensive: if someone lists _vendor in html_static_path next to a _static/ folder, Jupyter
    # Book will have added every vendored .js file as a <script>; drop those entries again.
    vendored_js = {p.relative_to(VENDOR_DIR).as_posix() for p in VENDOR_DIR.rglob("*.js")}
    config.html_js_files = [
        entry for entry in config.html_js_files if _js_name(entry) not in vendored_js
    ]


def setup(app: Sphinx) -> dict:
    # Run after the config values of other extensions (mermaid, mathjax) are registered.
    app.connect("config-inited", add_vendor_static_path, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
