"""The encoders' forward passes compiled by OpenVINO for a CPU worker.

On the 2-core AVX512-BF16 EPYC this project is measured on, OpenVINO's CPU plugin runs DINOv2 ViT-S/14 at
224 px at about 20-24 frames/s with its bf16 hint against 13 for torch's bf16 autocast (batches of 4-64), with
tokens within cosine 0.99998 of torch fp32 (torch bf16: the same). The text encoder (MiniLM) compiles the same
way, and a worker whose IR is cached never imports transformers' BERT (about 2 s of its start-up).

The graph is taken from the torch model itself (torch.export -> openvino.convert_model, batch and sequence
dimensions dynamic), so any weights the loaders accept compile the same way; the converted IR is cached under
FILM_EMOTION_CACHE keyed by the encoder's version (tuned weights included) and OpenVINO's, so a worker converts
once (a few seconds) and later loads in a fraction of a second without building the torch model.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from model.number_formats import RUNTIMES, openvino_problem

from ._cache import cache_dir
MAX_BATCH = 256


def openvino_available() -> bool:
    import importlib.util
    return importlib.util.find_spec("openvino") is not None


def resolve_runtime(runtime: str, device: str, precision: str) -> str:
    """'auto' -> 'openvino' on CPU workers in fp32/bf16 when the package is installed, else 'torch'."""
    if runtime not in RUNTIMES:
        raise ValueError(f"encoder runtime must be one of {RUNTIMES}, got {runtime!r}")
    problem = openvino_problem(device, precision)
    cpu_float = problem is None and precision != "auto"  # (the workers pass a resolved precision)
    if runtime == "openvino":
        if problem:
            raise ValueError(problem)
        if not openvino_available():
            raise ImportError("the openvino runtime needs `pip install openvino` (see requirements.txt)")
        return "openvino"
    if runtime == "auto" and cpu_float and openvino_available():
        return "openvino"
    return "torch"


def ir_path(version: str) -> Path:
    import openvino as ov
    tag = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{version}-ov{ov.__version__.split('-')[0]}")
    return cache_dir() / "openvino" / f"{tag}.xml"


def cached_ir(version: str):
    """The cached OpenVINO model for `version`, or None."""
    import openvino as ov
    path = ir_path(version)
    if path.exists() and path.with_suffix(".bin").exists():
        return ov.Core().read_model(str(path))
    return None


def convert(module: torch.nn.Module, version: str, example: tuple, dynamic_shapes: tuple):
    """Export `module` (inputs as in `example`, dimensions dynamic as `dynamic_shapes` says) to OpenVINO and
    cache the IR under `version`."""
    import openvino as ov
    module = module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        exported = torch.export.export(module, example, dynamic_shapes=dynamic_shapes)
    ir = ov.convert_model(exported)
    path = ir_path(version)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.xml")
    ov.save_model(ir, str(tmp), compress_to_fp16=False)
    os.replace(tmp.with_suffix(".bin"), path.with_suffix(".bin"))  # weights first: an .xml always has its .bin
    os.replace(tmp, path)
    return ir


class OpenVINOForward:
    """`__call__(*arrays) -> float32 array`: the first output of the compiled model.

    The IR comes from the cache, else `make_module()` is exported with the example inputs and dynamic dimensions
    `export_args()` gives (both called only then: a cached IR needs no torch model, and torch.export's dimension
    objects import sympy, 0.4 s). Compiled on first call, so the CPU thread budget set by
    model.precision.configure_threads (one per Beam worker by default) applies; one inference at a time per
    encoder (threads of a worker share it)."""

    def __init__(self, version: str, make_module: Callable[[], torch.nn.Module],
                 export_args: Callable[[], tuple[tuple, tuple]], precision: str):
        self._ir = cached_ir(version)
        if self._ir is None:
            self._ir = convert(make_module(), version, *export_args())
        self._hint = "bf16" if precision == "bf16" else "f32"
        self._request: Optional[object] = None
        self._lock = threading.Lock()

    @property
    def output_shape(self) -> list:
        """The first output's shape, -1 where dynamic."""
        return [d.get_length() if d.is_static else -1 for d in self._ir.outputs[0].get_partial_shape()]

    def _compile(self):
        import openvino as ov
        # No CPU pinning: pinned, the one-thread ViTs of two worker processes ran on the same core (each at 50 %
        # for the 5-8 s of a batch); the README's multi-core command took 90-104 s against 77-82 s unpinned.
        compiled = ov.Core().compile_model(self._ir, "CPU", {
            "INFERENCE_PRECISION_HINT": self._hint, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": max(1, torch.get_num_threads()), "ENABLE_CPU_PINNING": False})
        return compiled.create_infer_request()

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        with self._lock:
            if self._request is None:
                self._request = self._compile()
            out = self._request.infer({i: np.ascontiguousarray(a) for i, a in enumerate(arrays)})[0]
            return np.array(out, np.float32, copy=True)
