"""Which number format the encoders compute in: the fastest one the hardware runs without losing the labels.

- GPUs: bf16 autocast (fp16 where bf16 is missing).
- CPUs with bf16 instructions (AVX512-BF16 or AMX): bf16 autocast, ~1.6x faster than fp32 for a ViT-S/14.
- Other CPUs: emulated bf16 is slower than fp32. `int8` (dynamic int8 quantisation of the ViT's Linear
  layers, fbgemm/oneDNN kernels) is the CPU speed-up there; it is opt-in because its tokens drift more than
  bf16's (see the README for the measured agreement).
The head always runs in fp32, so a rescore from stored features reproduces the labels on any device.
"""
from __future__ import annotations

import contextlib
import os
import warnings

import torch

from model.number_formats import PRECISIONS, precision_problem  # noqa: F401 - PRECISIONS: the options' choices


def cpu_has_native_bf16() -> bool:
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without the probes: assume not
        return False


def resolve(precision: str, device: str) -> str:
    """'auto' -> 'bf16' or 'fp16' (GPUs) or 'fp32'; explicit choices pass through (fp16 GPU-only, int8 CPU-only)."""
    problem = precision_problem(precision, device)
    if problem:
        raise ValueError(problem)
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def autocast(device: str, precision: str = "auto"):
    """A context that runs the enclosed forward passes in the resolved precision (int8 models are
    quantised once by `quantize_linear`; their forward needs no context)."""
    p = resolve(precision, device)
    if p in ("fp32", "int8"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if p == "bf16" else torch.float16
    return torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=dtype)


def quantize_linear(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantisation of every nn.Linear (weights int8 per tensor, activations quantised per
    batch): in a ViT-S/14 at 224 px the Linear layers are most of the FLOPs. torch.ao's quantised tensors
    are deprecated upstream but present and pinned in torch 2.14.1."""
    from torch.ao.quantization import quantize_dynamic
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantiz.*deprecated", category=UserWarning)
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


_THREADS_SET = False


def fp16_state(state: dict) -> dict:
    """A state dict as the shipped files store it: floating tensors in fp16 (half the bytes), the rest as they are."""
    return {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}


def fp32_state(state: dict) -> dict:
    """A stored state dict back in fp32 for computing: floating tensors in fp32, the rest as they are."""
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


# oneDNN's primitive cache and ideep's (PyTorch's mkldnn ops) keep one compiled kernel per input shape, 1,024 of
# each by default. bf16 text batches bring a new shape almost every batch (lines of other lengths), so a worker's
# memory grew with film length until some 2,000 kernels were kept: 234 MB over 240 text batches, and the level of a
# 30-minute film rose ~25 MB (docs/benchmarks.md, *Memory in film length*). 128 of each hold every shape the
# vision, face and speech batches reuse; text shapes come and go. The caches read these at their first use.
KERNEL_CACHES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")
KERNEL_CACHE_CAPACITY = "128"


def bound_kernel_caches() -> None:
    """Cap the per-shape kernel caches of this process (before its first forward pass; a value the user
    exported is left as it is)."""
    for name in KERNEL_CACHES:
        os.environ.setdefault(name, KERNEL_CACHE_CAPACITY)


def configure_threads(device: str, torch_threads: int) -> None:
    """Once per process: CPU workers use `torch_threads` intra-op threads for torch and OpenCV (Beam runs one
    worker process per core, so more threads than that only fight over the same cores), and bounded kernel
    caches (bound_kernel_caches)."""
    global _THREADS_SET
    bound_kernel_caches()
    if not _THREADS_SET and device == "cpu" and torch_threads > 0:
        import cv2  # the face detector has its own thread pool: same budget
        torch.set_num_threads(torch_threads)
        cv2.setNumThreads(torch_threads)
    _THREADS_SET = True
