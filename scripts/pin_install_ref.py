#!/usr/bin/env python3
"""Write the commit that Colab installs ``recrl_lite`` from into every chapter's setup cell.

The first cell of every notebook (tagged ``remove-cell``) installs the package from the repository
when it cannot be imported, as on a fresh Colab machine. It installs a pinned commit, not whatever
``main`` is that day, so a reader gets the library this book was built and tested with. The commit
is written in one place, ``install_ref`` under ``parse.myst_substitutions`` in ``_config.yml`` (the
prose pages show it as ``{{ install_ref }}``); this script copies it into the notebooks.

    scripts/pin_install_ref.py               # rewrite the setup cells from _config.yml
    scripts/pin_install_ref.py --set HEAD    # pin a commit (any git revision), then rewrite
    scripts/pin_install_ref.py --check       # exit 1 if a setup cell differs from _config.yml

After a commit that changes ``recrl_lite/`` or ``pyproject.toml``, pin it (``--set HEAD``) and commit
the result: ``tests/test_install_ref.py`` fails while the pinned commit's library differs from the
working tree's.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "_config.yml"
NOTEBOOKS = ROOT / "notebooks"
# The optional dependencies (pyproject.toml extras) a chapter needs beyond the package itself.
EXTRAS = {"06_large_models.ipynb": "text"}
SETUP_CELL = """\
# Setup for Colab or any fresh kernel: if recrl_lite is missing, install it from the repository at
# the commit this book was built with (install_ref in _config.yml).
try:
    import recrl_lite  # noqa: F401
except ImportError:  # e.g. on Colab
    %pip install -q "recrl_lite{extras} @ git+{url}@{ref}\""""


def read_config() -> tuple[str, str]:
    """(repository URL, pinned commit) from _config.yml."""
    config = yaml.safe_load(CONFIG.read_text())
    url = config["repository"]["url"]
    ref = config["parse"]["myst_substitutions"]["install_ref"]
    if not isinstance(ref, str) or not re.fullmatch(r"[0-9a-f]{40}", ref):
        raise SystemExit(f"invalid install_ref {ref!r} in {CONFIG}: expected a full 40-hex commit id")
    return url, ref


def setup_cell(notebook: str, url: str, ref: str) -> str:
    """The source of ``notebook``'s setup cell for the repository ``url`` at commit ``ref``."""
    extras = f"[{EXTRAS[notebook]}]" if notebook in EXTRAS else ""
    return SETUP_CELL.format(extras=extras, url=url, ref=ref)


def stale_cells(url: str, ref: str) -> list[str]:
    """The notebooks whose first cell is not the setup cell for ``ref``."""
    stale = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        first = nbformat.read(path, as_version=4).cells[0]
        if first.cell_type != "code" or first.source != setup_cell(path.name, url, ref):
            stale.append(path.name)
    return stale


def write_cells(url: str, ref: str) -> list[str]:
    """Rewrite every notebook's setup cell (source only: outputs and metadata are kept)."""
    written = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first = nb.cells[0]
        if first.cell_type != "code" or "import recrl_lite" not in first.source:
            raise SystemExit(f"{path}: the first cell is not the recrl_lite setup cell")
        source = setup_cell(path.name, url, ref)
        if first.source != source:
            first.source = source
            nbformat.write(nb, path)
            written.append(path.name)
    return written


def set_ref(revision: str) -> str:
    """Resolve ``revision`` to a commit id and write it into _config.yml (one line changes)."""
    commit = subprocess.run(["git", "rev-parse", "--verify", f"{revision}^{{commit}}"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.strip()
    text = CONFIG.read_text()
    new, count = re.subn(r"(?m)^(\s*install_ref:\s*)\S+", rf"\g<1>{commit}", text)
    if count != 1:
        raise SystemExit(f"{CONFIG}: expected one 'install_ref:' line, found {count}")
    CONFIG.write_text(new)
    return commit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", metavar="REVISION", help="pin this git revision (e.g. HEAD) first")
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if a cell is stale")
    args = parser.parse_args()
    if args.set:
        print(f"install_ref = {set_ref(args.set)}")
    url, ref = read_config()
    if args.check:
        stale = stale_cells(url, ref)
        for name in stale:
            print(f"{name}: setup cell does not install {ref}; run scripts/pin_install_ref.py")
        return 1 if stale else 0
    for name in write_cells(url, ref):
        print(f"rewrote the setup cell of {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
