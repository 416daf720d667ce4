"""A worker's memory over many text batches: the text encoder's RSS as it reads batches of lines of random lengths,
printed as a table per runtime and setting.

    python -m benchmarks.text_memory [--batches 480] [--runtimes openvino,torch] [--threads 2] [--seed 0]

Each row runs in its own process: the packaged MiniLM on CPU at the worker's precision (`auto`), batches of 1-32
lines of 1-60 words, the free heap handed back after each batch as the pipeline does
(`transforms.film.release_free_heap`), RSS read after each eighth of the batches. Settings:
`as shipped` (widths rounded up to `model.encoders.text.WIDTH_STEP`, kernel caches capped by
`model.precision.bound_kernel_caches`), `width per batch` (WIDTH_STEP 1, the rule before 2026-12-07) and
`uncapped caches` (1,024 kernels of each, oneDNN's and ideep's default), and both as before. OpenVINO and oneDNN compile and keep a
kernel for each input shape, so a new width per batch grew memory with the number of lines read.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"as shipped": {}, "width per batch": {"width_step": 1}, "uncapped caches": {"caches": "1024"},
            "both, as before": {"width_step": 1, "caches": "1024"}}
WORDS = "the quick brown fox jumps over a lazy dog and then runs far away into the night".split()


def child(args) -> None:
    import random

    import psutil
    import torch

    from model.encoders import text as text_module
    from model.precision import configure_threads
    from transforms.film import release_free_heap
    configure_threads("cpu", args.threads)  # what a worker does before its models load
    if args.width_step:
        text_module.WIDTH_STEP = args.width_step
    enc = text_module.load_text_encoder(runtime=args.runtime)
    rng, proc, rss = random.Random(args.seed), psutil.Process(), []
    enc.encode(["warm up"])
    release_free_heap()
    rss.append(proc.memory_info().rss / 2**20)
    for i in range(args.batches):
        lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 60))) for _ in range(rng.randint(1, 32))]
        enc.encode(lines)
        release_free_heap()
        if (i + 1) % max(1, args.batches // 8) == 0:
            rss.append(proc.memory_info().rss / 2**20)
    print(json.dumps({"rss": rss, "threads": torch.get_num_threads()}))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, default=480)
    ap.add_argument("--runtimes", default="openvino,torch")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--runtime", default="openvino", help=argparse.SUPPRESS)
    ap.add_argument("--width_step", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    print(f"| runtime | setting | RSS after warm-up | RSS by eighths of {args.batches} batches (MB) | growth |")
    print("|---|---|---|---|---|")
    for runtime in args.runtimes.split(","):
        for name, setting in SETTINGS.items():
            env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY",
                                                                  "LRU_CACHE_CAPACITY")}
            if "caches" in setting:  # exported values stand over bound_kernel_caches'
                env["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = env["LRU_CACHE_CAPACITY"] = setting["caches"]
            cmd = [sys.executable, "-m", "benchmarks.text_memory", "--child", "--runtime", runtime,
                   "--batches", str(args.batches), "--threads", str(args.threads), "--seed", str(args.seed),
                   "--width_step", str(setting.get("width_step", 0))]
            out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
            rss = json.loads(out.stdout.strip().splitlines()[-1])["rss"]
            print(f"| {runtime} | {name} | {rss[0]:.0f} | {' / '.join(f'{v:.0f}' for v in rss[1:])} | "
                  f"{rss[-1] - rss[1]:+.0f} MB |", flush=True)


if __name__ == "__main__":
    main()
