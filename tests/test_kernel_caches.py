"""model.precision.bound_kernel_caches: oneDNN and ideep keep one compiled kernel per input shape, 1,024 of each by
default; bf16 text batches bring a new shape almost every batch, so a worker's memory grew with film length. The
caps keep it level (docs/benchmarks.md, *Memory in film length*)."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A small bf16 MLP over 1,200 batch sizes (each a new shape for its kernels); prints the RSS it gained in MB.
NEW_SHAPES = textwrap.dedent("""
    import sys, psutil, torch
    from model.precision import configure_threads
    from transforms.film import release_free_heap
    if sys.argv[1] == "capped":
        configure_threads("cpu", 1)  # what every worker does before its models load
    else:
        torch.set_num_threads(1)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.GELU(), torch.nn.Linear(128, 64)).eval()
    def forward(n):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            net(torch.randn(n, 64))
    for n in range(1, 50):
        forward(n)
    release_free_heap()
    before = psutil.Process().memory_info().rss
    for n in range(50, 1250):
        forward(n)
    release_free_heap()
    print((psutil.Process().memory_info().rss - before) / 2**20)
""")


def gained_mb(mode: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", NEW_SHAPES, mode], env=env, cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=300)
    return float(out.stdout.strip().splitlines()[-1])


def test_a_worker_keeps_a_bounded_number_of_kernels():
    uncapped, capped = gained_mb("default"), gained_mb("capped")
    if uncapped < 100:
        pytest.skip(f"this CPU's bf16 kernels are not cached per shape here ({uncapped:.0f} MB): nothing to bound")
    # measured on the 2-core machine: 450 MB without the caps, 12 MB with them
    assert capped < 60 and capped < uncapped / 4, (capped, uncapped)


def test_the_caps_are_set_once_and_a_users_value_stands(monkeypatch):
    from model import precision
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    monkeypatch.setenv("LRU_CACHE_CAPACITY", "32")
    precision.bound_kernel_caches()
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == precision.KERNEL_CACHE_CAPACITY == "128"
    assert os.environ["LRU_CACHE_CAPACITY"] == "32"
