"""Which libraries a piece of code imports, measured in a fresh interpreter (the tests that keep a worker's
start-up free of heavy imports)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]


def modules_imported(code: str, names: Sequence[str]) -> list[str]:
    """Run `code` in a new Python process at the repository root; return those of `names` it left in sys.modules."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {list(names)!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])
