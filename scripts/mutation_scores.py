#!/usr/bin/env python3
"""The mutation score of each module, from the results mutmut left in mutants/ (`make mutation`).

score = killed / (killed + survived + no tests): a mutant no test reaches counts as a survivor.
Timeouts, crashes and mutants caught by the type checker count as killed; mutants not yet checked
(an interrupted run) are listed apart and left out of the score.

    scripts/mutation_scores.py [--csv _build/mutation/scores.csv] [--survivors MODULE]
"""

from __future__ import annotations

import argparse
import csv
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutants", type=Path, default=ROOT / "mutants")
    parser.add_argument("--csv", type=Path, default=ROOT / "_build" / "mutation" / "scores.csv")
    parser.add_argument("--survivors", metavar="MODULE", help="list the surviving mutants of MODULE")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
