#!/usr/bin/env bash
# Test recrl_lite at the lower edge of pyproject.toml's dependency ranges (issue 11).
#
#   scripts/test_lower_edge.sh [VENV_DIR]
#
# Creates a venv (in a temporary folder, or VENV_DIR, which is reused if it already holds one),
# installs requirements-lower-edge.txt (exact pins of the oldest tested set) and recrl_lite from a
# copy of this checkout (non-editable, so the installed package is what is tested and nothing is
# written into the checkout), runs the unit tests (not tests/test_notebooks.py nor tests/site),
# executes chapter 1 and compares its text outputs with the committed ones (with the sanitisers of
# tests/nbval_sanitize.cfg), then prints the versions. Exits non-zero if any step failed.
# Needs only the package index (pip as configured). Settings: PYTHON (default python3),
# REQUIREMENTS (default requirements-lower-edge.txt), KEEP=1 keeps the temporary folder.
set -euo pipefail

start=$SECONDS
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
requirements="$(realpath "${REQUIREMENTS:-$repo/requirements-lower-edge.txt}")"
work="$(mktemp -d "${TMPDIR:-/tmp}/recrl-lower-edge.XXXXXX")"
venv="$(realpath -m "${1:-$work/venv}")"
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT
failed=()
step() { echo; echo "=== $* ($((SECONDS - start)) s)"; }

step "copy of the checkout in $work/src"
src="$work/src"
mkdir -p "$src"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # tracked and untracked-but-not-ignored files, as they are now (not .venv, _build, caches)
    (cd "$repo" && git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
        | xargs -0 cp --parents -t "$src")
else
    tar -C "$repo" --exclude=./.venv --exclude=./_build --exclude='__pycache__' -cf - . | tar -C "$src" -xf -
fi

step "venv $venv with $requirements"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q -r "$requirements"
"$venv/bin/python" -m pip install -q --no-deps --force-reinstall "$src"
"$venv/bin/python" -m pip check

export PYTHONDONTWRITEBYTECODE=1 HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}"
cd "$work"  # not the source tree: `import recrl_lite` must find the installed copy
"$venv/bin/python" - "$venv" <<'EOF'
import sys, recrl_lite
if not recrl_lite.__file__.startswith(sys.argv[1]):
    sys.exit(f"recrl_lite imported from {recrl_lite.__file__}, not from the venv {sys.argv[1]}")
EOF

step "unit tests"
if "$venv/bin/python" -m pytest "$src/tests" -q -p no:cacheprovider -rfEs \
        --ignore="$src/tests/test_notebooks.py" --ignore="$src/tests/site"; then :; else failed+=("unit tests"); fi

step "chapter 1"
# a kernel spec of this venv's Python under $work, found before any the user has registered
"$venv/bin/python" -m ipykernel install --prefix "$work/jupyter" --name recrl-lower-edge >/dev/null
export JUPYTER_PATH="$work/jupyter/share/jupyter" JUPYTER_RUNTIME_DIR="$work/runtime" IPYTHONDIR="$work/ipython"
executed="$work/01_background.executed.ipynb"
if (cd "$src/notebooks" && "$venv/bin/jupyter" nbconvert --to notebook --execute 01_background.ipynb \
        --output "$executed" --ExecutePreprocessor.kernel_name=recrl-lower-edge \
        --ExecutePreprocessor.timeout=1800); then
    if "$venv/bin/python" - "$src/notebooks/01_background.ipynb" "$executed" "$src/tests/nbval_sanitize.cfg" <<'EOF'
import difflib, re, sys
import nbformat

def sanitisers(path):
    lines = [line for line in open(path, encoding="utf-8") if line.startswith(("regex: ", "replace: "))]
    return [(re.compile(a[len("regex: "):].rstrip("\n")), b[len("replace: "):].rstrip("\n"))
            for a, b in zip(lines[::2], lines[1::2])]

def text_outputs(path, subs):
    out = []
    for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
        for o in cell.get("outputs", []):
            text = o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", "")
            if o.output_type == "error":
                text = f"{o.ename}: {o.evalue}"
            for rx, rep in subs:
                text = rx.sub(rep, text)
            out += [f"[cell {i}] {line}" for line in text.splitlines()]
    return out

subs = sanitisers(sys.argv[3])
committed, executed = text_outputs(sys.argv[1], subs), text_outputs(sys.argv[2], subs)
if committed != executed:
    print("chapter 1: text outputs differ from the committed notebook:")
    print("\n".join(difflib.unified_diff(committed, executed, "committed", "lower edge", lineterm="", n=1)))
    sys.exit(1)
print(f"chapter 1: all {len(executed)} lines of text output match the committed notebook")
EOF
    then :; else failed+=("chapter 1 outputs"); fi
else
    failed+=("chapter 1 execution")
fi

step "versions"
"$venv/bin/python" - <<'EOF'
import importlib.metadata as md, platform
names = ["gymnasium", "numpy", "pandas", "matplotlib", "tqdm", "torch",
         "stable-baselines3", "scikit-learn", "scipy", "pytest", "hypothesis", "recrl_lite"]
print("Python", platform.python_version())
for name in names:
    try:
        print(f"{name:18} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name:18} (not installed)")
EOF

echo
echo "wall time: $((SECONDS - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
echo "lower edge: all passed"
