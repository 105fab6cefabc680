#!/usr/bin/env bash
# Release check: build the sdist and the wheel (the wheel from the sdist, as `python -m build` does), run
# `twine check`, install the wheel into a clean venv next to torch==2.13.0 (installed first, so no other
# torch build is pulled) and run `python -m lightning_snn --help` from it, outside the source tree.
# Usage: tests/wheel_check.sh [python]   (default: .venv/bin/python, which has build and twine: the dev extra)
# Everything is written to a temporary directory, removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-.venv/bin/python}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

echo "== build (sdist + wheel) into $WORK/dist"
"$PY" -m build --outdir "$WORK/dist" . >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
ls "$WORK/dist"
"$PY" -m twine check --strict "$WORK"/dist/*

echo "== wheel contents"
"$PY" - "$WORK"/dist/*.whl <<'PYEOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
for required in ("lightning_snn/__main__.py", "lightning_snn/py.typed", "lightning_snn/_version.py"):
    assert required in names, f"{required} missing from the wheel"
assert any(n.endswith("licenses/LICENSE") for n in names), "LICENSE missing from the wheel"
assert not any(n.startswith("tests/") for n in names), "tests/ packaged"
print(f"{len(names)} files, py.typed and LICENSE present")
PYEOF

echo "== clean venv: torch==2.13.0 first, then the wheel"
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet torch==2.13.0
"$WORK/venv/bin/pip" install --quiet "$WORK"/dist/*.whl
cd "$WORK"  # away from the source tree: the installed package is the one imported
"$WORK/venv/bin/python" -c "import torch, lightning_snn; print('torch', torch.__version__, 'lightning_snn', lightning_snn.__version__, lightning_snn.__file__)"
"$WORK/venv/bin/python" -c "import lightning_snn, torch; assert torch.__version__.startswith('2.13.0'), torch.__version__; assert 'site-packages' in lightning_snn.__file__"
"$WORK/venv/bin/python" -m lightning_snn --help >"$WORK/help.txt"
grep -q "fit" "$WORK/help.txt" || { cat "$WORK/help.txt"; exit 1; }
head -5 "$WORK/help.txt"
echo "wheel check passed"
