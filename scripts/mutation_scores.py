#!/usr/bin/env python3
"""The mutation score of each module, from the results mutmut left in mutants/ (`make mutation`).

score = killed / (killed + survived + no tests): a mutant no test reaches counts as a survivor.
Timeouts, crashes and mutants caught by the type checker count as killed; mutants not yet checked
(an interrupted run) are listed apart and left out of the score.

    scripts/mutation_scores.py [--csv _build/mutation/scores.csv] [--survivors MODULE] [--kinds]
"""

from __future__ import annotations

import argparse
import ast
import csv
import os
import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parent.parent
KILLED = {"killed", "timeout", "segfault", "caught by type check"}
NOT_KILLED = {"survived", "no tests", "suspicious"}


def module_results(mutants: Path) -> dict[str, Counter[str]]:
    """{module path: Counter of mutant statuses} for every module mutmut has results for."""
    results: dict[str, Counter[str]] = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        exit_codes = json.loads(meta.read_text())["exit_code_by_key"]
        module = str(meta.relative_to(mutants))[: -len(".meta")]
        results[module] = Counter(status_by_exit_code[code] for code in exit_codes.values())
    return results


def survivors(mutants: Path, module: str) -> list[str]:
    meta = mutants / f"{module}.meta"
    exit_codes = json.loads(meta.read_text())["exit_code_by_key"]
    return [name for name, code in exit_codes.items() if status_by_exit_code[code] in NOT_KILLED]


# recrl_lite.errors' checkers: a call to one is an error's name, value and text, like a raise
CHECKERS = {"check_int", "check_number", "check_choice", "check_finite", "check_columns"}


def error_lines(source: Path) -> set[str]:
    """The stripped text of every line inside a ``raise`` statement of ``source`` or a call of one
    of ``recrl_lite.errors``' checkers (which raise the error themselves)."""
    text = source.read_text()
    lines = text.splitlines()
    inside: set[str] = set()
    for node in ast.walk(ast.parse(text)):
        checker = isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CHECKERS
        if (isinstance(node, ast.Raise) or checker) and node.end_lineno is not None:
            inside.update(line.strip() for line in lines[node.lineno - 1 : node.end_lineno])
    return inside


def in_error_message(diff: str, raising: set[str]) -> bool:
    """Whether every line a mutant changes lies inside a ``raise`` or a checker call (an error's
    name, text, type or bounds)."""
    removed = [line[1:].strip() for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    return bool(removed) and all(line in raising for line in removed)


def survivor_kinds(mutants: Path) -> dict[str, Counter[str]]:
    """{module: Counter({"error message": n, "behaviour": m})} over the surviving mutants.

    A survivor counts as "error message" when every line it changes sits inside a ``raise``
    statement or a checker call of the original module (mostly the argument name or the text of an
    error); the rest change what the code computes, or which inputs are refused. A heuristic on the text of the diff, stated as such.
    """
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    project = mutants.resolve().parent
    here = Path.cwd()
    kinds: dict[str, Counter[str]] = {}
    try:
        os.chdir(project)  # mutmut resolves module paths against the project root
        for module in module_results(mutants):
            raising = error_lines(project / module)
            counts: Counter[str] = Counter()
            for name in survivors(mutants, module):
                diff = get_diff_for_mutant(name, path=module)
                counts["error message" if in_error_message(diff, raising) else "behaviour"] += 1
            kinds[module] = counts
    finally:
        os.chdir(here)
    return kinds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutants", type=Path, default=ROOT / "mutants")
    parser.add_argument("--csv", type=Path, default=ROOT / "_build" / "mutation" / "scores.csv")
    parser.add_argument("--survivors", metavar="MODULE", help="list the surviving mutants of MODULE")
    parser.add_argument("--kinds", action="store_true",
                        help="also split the survivors into error-message and behaviour mutants, and "
                        "give the score with the error-message ones left out")
    args = parser.parse_args()
    if not args.mutants.is_dir():
        print(f"no mutmut results in {args.mutants}: run `make mutation` first", file=sys.stderr)
        return 1
    if args.survivors:
        print("\n".join(survivors(args.mutants, args.survivors)))
        return 0
    rows = []
    for module, counts in module_results(args.mutants).items():
        killed = sum(counts[s] for s in KILLED)
        not_killed = sum(counts[s] for s in NOT_KILLED)
        checked = killed + not_killed
        rows.append({"module": module, "mutants": sum(counts.values()), "killed": killed,
                     "survived": counts["survived"], "no_tests": counts["no tests"],
                     "not_checked": counts["not checked"],
                     "score": round(killed / checked, 4) if checked else float("nan")})
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with args.csv.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    width = max(len(r["module"]) for r in rows)
    print(f"{'module':<{width}}  mutants  killed  survived  no tests  unchecked  score")
    for r in rows:
        print(f"{r['module']:<{width}}  {r['mutants']:7d}  {r['killed']:6d}  {r['survived']:8d}  "
              f"{r['no_tests']:8d}  {r['not_checked']:9d}  {r['score']:5.1%}")
    print(f"(written to {args.csv})")
    if args.kinds:
        print(f"\n{'module':<{width}}  survivors in error messages  in behaviour  behaviour score")
        for module, kinds in survivor_kinds(args.mutants).items():
            row = next(r for r in rows if r["module"] == module)
            behaviour = kinds["behaviour"]
            checked = row["killed"] + behaviour
            score = row["killed"] / checked if checked else float("nan")
            print(f"{module:<{width}}  {kinds['error message']:27d}  {behaviour:12d}  {score:15.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
