"""The Colab setup cell installs recrl_lite at one pinned commit, the one this book was built with."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("pin_install_ref", ROOT / "scripts" / "pin_install_ref.py")
assert _spec is not None and _spec.loader is not None
pin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pin)


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


def test_every_setup_cell_installs_the_pinned_commit() -> None:
    url, ref = pin.read_config()
    assert not pin.stale_cells(url, ref), "run scripts/pin_install_ref.py"
    for name in ("01_background.ipynb", "06_large_models.ipynb"):
        cell = pin.setup_cell(name, url, ref)
        assert f"git+{url}@{ref}" in cell and "import recrl_lite" in cell
    assert '"recrl_lite[text] @' in pin.setup_cell("06_large_models.ipynb", url, ref)


def test_a_stale_cell_is_detected() -> None:
    url, ref = pin.read_config()
    other = ("0" if ref[0] != "0" else "1") + ref[1:]
    assert len(pin.stale_cells(url, other)) == len(list(pin.NOTEBOOKS.glob("*.ipynb")))


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout (an sdist): no history to check")
def test_the_pinned_commit_holds_the_library_of_this_checkout() -> None:
    """Colab readers get the library the chapters were executed with: the same package and pyproject.

    After committing a change to recrl_lite/ or pyproject.toml, run `scripts/pin_install_ref.py --set HEAD`.
    """
    _, ref = pin.read_config()
    if _git("cat-file", "-e", f"{ref}^{{commit}}").returncode != 0:
        if _git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
            pytest.skip(f"shallow clone: the pinned commit {ref} is not in its history")
        pytest.fail(f"install_ref {ref} is not a commit of this repository")
    changed = _git("diff", "--name-only", ref, "--", "recrl_lite", "pyproject.toml").stdout.split()
    changed += _git("ls-files", "--others", "--exclude-standard", "--", "recrl_lite").stdout.split()  # new files
    assert not changed, (f"the pinned commit {ref[:10]} differs from this checkout in {changed}: commit, then "
                         "run scripts/pin_install_ref.py --set HEAD")
