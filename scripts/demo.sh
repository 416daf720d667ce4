#!/usr/bin/env bash
# Set up (if needed), then make a small demo archive and run the whole pipeline on it.
# Usage: bash scripts/demo.sh [OUTPUT_DIR] [pipeline.run options...]   (default OUTPUT_DIR: demo)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
out=${1:-demo}
shift || true
exec .venv/bin/python -m pipeline.demo --output "$out" "$@"
