#!/usr/bin/env bash
# Build a venv with the oldest dependency versions (requirements-lower-edge.txt), install recrl_lite
# into it without dependencies, run the unit tests and execute chapter 1 to a temporary file.
#   usage: scripts/check_lower_edge.sh [VENV_DIR]      (default /tmp/lowedge)
# Exits non-zero when the tests or the chapter fail; both run even if the first fails.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-/tmp/lowedge}"
PYTHON="${PYTHON:-python3}"
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -r "$ROOT/requirements-lower-edge.txt"
"$VENV/bin/python" -m pip install --no-deps -e "$ROOT"
"$VENV/bin/python" -m pip check
"$VENV/bin/python" -m ipykernel install --prefix "$VENV" --name lowedge >/dev/null
status=0
cd "$ROOT"
nice -n 10 "$VENV/bin/python" -m pytest tests --ignore=tests/site --ignore=tests/test_notebooks.py \
    --ignore=tests/test_install_ref.py -q -p no:cacheprovider -rfEs || status=1
out="$(mktemp -d)/01_background.ipynb"
cd "$ROOT/notebooks"
"$VENV/bin/python" -m jupyter nbconvert --to notebook --execute --ExecutePreprocessor.kernel_name=lowedge \
    --ExecutePreprocessor.timeout=1200 --output "$out" 01_background.ipynb || status=1
echo "chapter 1 executed to $out; exit status $status"
exit "$status"
