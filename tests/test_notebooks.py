"""The conventions every chapter keeps, so that its claims hold for every reader (preface, README).

- exactly one cell tagged ``parameters``, holding every seed (names ending in SEED or SEEDS), so
  that ``scripts/check_chapters.py`` can move them;
- every cell that trains a torch model is tagged ``nbval-ignore-output``: its printed values are
  learned outputs, which differ across CPUs, and its asserts are the test;
- no assert reads a stored results file (such a check holds forever, whatever the code does);
- stored outputs exist (nbval compares against them) and carry no tqdm rates or error outputs.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
sys.path.insert(0, str(REPO / "scripts"))
from check_chapters import parameters_source, seed_parameters  # noqa: E402

TRAINS_TORCH = re.compile(r"\b(train_dqn|train_reinforce|fit_reward_model)\(|\.backward\(\)|optimizer\.step\(")
SEED_ARGUMENT = re.compile(r"\bseed=(\d+)")


def code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def test_there_are_chapters():
    assert len(NOTEBOOKS) >= 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_parameters_cell_holds_the_seeds(path):
    seeds = seed_parameters(parameters_source(path))   # exits with a message if there is not exactly one
    assert seeds, f"{path.name}: its parameters cell names no *SEED/*SEEDS parameter"
    # a literal seed elsewhere (seed=3) escapes the shifted-seed check: it must come from the parameters
    for cell in code_cells(path):
        if "parameters" in cell["metadata"].get("tags", []):
            continue
        literal = SEED_ARGUMENT.findall(source(cell))
        assert not literal, f"{path.name}: literal seed(s) {literal} outside the parameters cell:\n{source(cell)[:300]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_cells_that_train_torch_models_are_marked_as_learned(path):
    for cell in code_cells(path):
        if TRAINS_TORCH.search(source(cell)):
            assert "nbval-ignore-output" in cell["metadata"].get("tags", []), (
                f"{path.name}: a cell trains a torch model but is not tagged nbval-ignore-output:\n{source(cell)[:300]}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_assert_reads_a_stored_results_file(path):
    for cell in code_cells(path):
        text = source(cell)
        if re.search(r"results.*\.json|\.json.*results", text):
            assert not re.search(r"^\s*assert\b", text, re.M), f"{path.name}: asserts on a stored results file"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_are_present_and_clean(path):
    cells = [c for c in code_cells(path) if source(c).strip()]
    assert any(c.get("outputs") for c in cells), f"{path.name} has no stored outputs: execute it"
    for cell in cells:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"{path.name}: a stored output is an error"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_glued_values_are_plain_numbers_or_text(path):
    """myst-nb formats {glue:text}`key:.2f` from the stored repr: a numpy scalar's repr
    ('np.float64(0.45)') cannot be formatted, and the book build fails on it."""
    for cell in code_cells(path):
        for output in cell.get("outputs", []):
            if "scrapbook" in output.get("metadata", {}):
                text = output["data"].get("application/papermill.record/text/plain", "")
                assert not text.startswith("np."), f"{path.name}: glue {output['metadata']['scrapbook']['name']} stores {text}"
