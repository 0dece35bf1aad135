"""Re-execute chapters the way other readers will: on other seeds, and with other float kernels.

Every chapter keeps its seeds in the cell tagged ``parameters``. A parameter is a *seed* when its
name ends in ``SEED`` or ``SEEDS``: an integer, or a tuple, list or ``range`` of integers. This
script moves every seed by ``--shift`` (papermill injects the new values after the parameters
cell), executes the chapter top to bottom in a fresh kernel, and fails if any cell raises, which
means that one of the chapter's asserts did not hold on those seeds. ``--aten default`` sets
``ATEN_CPU_CAPABILITY`` before the kernel starts, so torch runs its portable (non-AVX) kernels:
its floats then differ in the last bits the way another CPU's do, and a learned claim that holds
only on the machine that executed the chapter fails here.

    python scripts/check_chapters.py --shift 100                 # every chapter, seeds + 100
    python scripts/check_chapters.py --aten default --torch-only # the chapters that import torch
    python scripts/check_chapters.py --shift 7 --aten default notebooks/03_core_algorithms.ipynb

The executed copies go to ``--out`` (default: a temporary folder); the stored notebooks are never
touched. Prints each chapter's wall time. Exit status 1 if any chapter fails.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SEED_SUFFIXES = ("SEED", "SEEDS")


def parameters_source(notebook: Path) -> str:
    """The source of the cell tagged ``parameters``; a clear error if there is none."""
    cells = json.loads(notebook.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise SystemExit(f"{notebook}: expected exactly one cell tagged 'parameters', found {len(tagged)}")
    return "".join(tagged[0]["source"])


def seed_parameters(source: str) -> dict[str, Any]:
    """The seed parameters of a parameters cell, evaluated (literals and ``range(...)`` only)."""
    seeds: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        if not name.endswith(SEED_SUFFIXES):
            continue
        value = eval(compile(ast.Expression(node.value), "<parameters>", "eval"), {"__builtins__": {}, "range": range})
        if isinstance(value, bool) or not isinstance(value, (int, tuple, list, range)):
            raise SystemExit(f"seed parameter {name} = {value!r} is neither an integer nor a sequence of integers")
        if not isinstance(value, int) and not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise SystemExit(f"seed parameter {name} = {value!r} holds something other than integers")
        seeds[name] = value
    return seeds


def shifted(seeds: dict[str, Any], shift: int) -> dict[str, Any]:
    """Every seed moved by ``shift``; sequences become lists (papermill passes them as YAML)."""
    return {name: value + shift if isinstance(value, int) else [v + shift for v in value]
            for name, value in seeds.items()}


def imports_torch(notebook: Path) -> bool:
    """Whether any code cell imports torch (the chapters whose learned outputs vary by CPU)."""
    cells = json.loads(notebook.read_text())["cells"]
    return any(re.search(r"^\s*(import torch|from torch)", "".join(c["source"]), re.M)
               for c in cells if c["cell_type"] == "code")


def run(notebook: Path, out_dir: Path, shift: int) -> tuple[bool, float, str]:
    import papermill

    params = shifted(seed_parameters(parameters_source(notebook)), shift) if shift else {}
    output = out_dir / notebook.name
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(notebook), str(output), parameters=params, cwd=str(notebook.parent),
                                   kernel_name="python3", progress_bar=False, log_output=False)
    except papermill.PapermillExecutionError as error:
        lines = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error.traceback)).splitlines()
        where = [line.strip() for line in lines if re.match(r"\s*-+>", line)]
        return (False, time.perf_counter() - start,
                f"cell {error.exec_count}: {error.ename}: {error.evalue} at {where[-1] if where else '?'}")
    return True, time.perf_counter() - start, ", ".join(f"{k}={v}" for k, v in params.items()) or "stored seeds"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    parser.add_argument("--shift", type=int, default=0, help="add this to every seed parameter")
    parser.add_argument("--aten", default=None, help="ATEN_CPU_CAPABILITY for the kernels (e.g. default)")
    parser.add_argument("--torch-only", action="store_true", help="only the chapters that import torch")
    parser.add_argument("--jobs", type=int, default=1, help="chapters executed at once (one kernel each)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the executed copies")
    args = parser.parse_args()
    if not args.shift and not args.aten:
        parser.error("nothing to vary: give --shift N and/or --aten CAPABILITY")
    notebooks = [nb.resolve() for nb in (args.notebooks or sorted((REPO / "notebooks").glob("*.ipynb")))]
    if args.torch_only:
        notebooks = [nb for nb in notebooks if imports_torch(nb)]
    if args.aten:
        os.environ["ATEN_CPU_CAPABILITY"] = args.aten  # inherited by every kernel; torch reads it on import
        # chapter 6 caches language-model embeddings: another CPU computes its own, so start empty
        os.environ["RECRL_LITE_CACHE"] = tempfile.mkdtemp(prefix="recrl-embeddings-")
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="recrl-chapters-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    label = " and ".join(x for x in (f"seeds + {args.shift}" if args.shift else "",
                                     f"ATEN_CPU_CAPABILITY={args.aten}" if args.aten else "") if x)
    print(f"re-executing {len(notebooks)} chapter(s) with {label}; copies in {out_dir}", flush=True)
    failed = []
    # one process per chapter at a time: papermill's cwd is a process-wide chdir, so threads would race
    with ProcessPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
        runs = {pool.submit(run, notebook, out_dir, args.shift): notebook for notebook in notebooks}
        for done in as_completed(runs):
            ok, seconds, detail = done.result()
            name = runs[done].name
            print(f"  {'ok  ' if ok else 'FAIL'} {name:<28} {seconds:6.1f} s   {detail}", flush=True)
            if not ok:
                failed.append(name)
    if failed:
        print(f"{len(failed)} chapter(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
