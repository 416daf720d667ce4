"""The ViT's forward pass compiled by OpenVINO for a CPU worker.

On the 2-core AVX512-BF16 EPYC this project is measured on, OpenVINO's CPU plugin runs DINOv2 ViT-S/14 at
224 px at about 20-24 frames/s with its bf16 hint against 13 for torch's bf16 autocast (batches of 4-64), with
tokens within cosine 0.99998 of torch fp32 (torch bf16: the same). The graph is taken from the torch model
itself (torch.export -> openvino.convert_model), so any weights `load_vision_encoder` accepts compile the same
way; the converted IR is cached under FILM_EMOTION_CACHE keyed by the encoder's version and OpenVINO's, so a
worker converts once (about 5 s) and later loads in a fraction of a second.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import torch

from ._cache import cache_dir

RUNTIMES = ("auto", "torch", "openvino")
MAX_BATCH = 256


def openvino_available() -> bool:
    import importlib.util
    return importlib.util.find_spec("openvino") is not None


def resolve_runtime(runtime: str, device: str, precision: str) -> str:
    """'auto' -> 'openvino' on CPU workers in fp32/bf16 when the package is installed, else 'torch'."""
    if runtime not in RUNTIMES:
        raise ValueError(f"vision runtime must be one of {RUNTIMES}, got {runtime!r}")
    cpu_float = device == "cpu" and precision in ("fp32", "bf16")
    if runtime == "openvino":
        if not cpu_float:
            raise ValueError(f"the openvino vision runtime is for CPU workers in fp32/bf16, not {device}/{precision}")
        if not openvino_available():
            raise ImportError("the openvino vision runtime needs `pip install openvino` (see requirements.txt)")
        return "openvino"
    if runtime == "auto" and cpu_float and openvino_available():
        return "openvino"
    return "torch"


class _Features(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)


def _ir_path(version: str) -> Path:
    import openvino as ov
    tag = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{version}-ov{ov.__version__.split('-')[0]}")
    return cache_dir() / "openvino" / f"{tag}.xml"


def _converted(model: torch.nn.Module, version: str, image_size: int):
    """The OpenVINO model of `model.forward_features` (batch dimension dynamic), from the cache when there."""
    import openvino as ov
    path = _ir_path(version)
    core = ov.Core()
    if path.exists() and path.with_suffix(".bin").exists():
        return core.read_model(str(path))
    wrapper = _Features(model).eval()
    for p in wrapper.parameters():
        p.requires_grad_(False)
    example = torch.zeros(2, 3, image_size, image_size)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with torch.no_grad():
        exported = torch.export.export(wrapper, (example,), dynamic_shapes=({0: batch},))
    ir = ov.convert_model(exported)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.xml")
    ov.save_model(ir, str(tmp), compress_to_fp16=False)
    os.replace(tmp.with_suffix(".bin"), path.with_suffix(".bin"))  # weights first: an .xml always has its .bin
    os.replace(tmp, path)
    return ir


class OpenVINOForward:
    """`__call__(x [B,3,S,S] float tensor) -> [B, tokens, dim] float32 tensor`, like the torch forward_features.

    Compiled on first call, so the CPU thread budget set by model.precision.configure_threads (one per Beam
    worker by default) applies; one inference at a time per encoder (threads of a worker share it)."""

    def __init__(self, model: torch.nn.Module, version: str, image_size: int, precision: str):
        self._ir = _converted(model, version, image_size)
        self._hint = "bf16" if precision == "bf16" else "f32"
        self._request = None
        self._lock = threading.Lock()

    def _compile(self):
        import openvino as ov
        # No CPU pinning: pinned, the one-thread ViTs of two worker processes ran on the same core (each at 50 %
        # for the 5-8 s of a batch); the README's multi-core command took 90-104 s against 77-82 s unpinned.
        compiled = ov.Core().compile_model(self._ir, "CPU", {
            "INFERENCE_PRECISION_HINT": self._hint, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": max(1, torch.get_num_threads()), "ENABLE_CPU_PINNING": False})
        return compiled.create_infer_request()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with self._lock:
            if self._request is None:
                self._request = self._compile()
            out = self._request.infer({0: np.ascontiguousarray(x.detach().cpu().numpy(), np.float32)})[0]
            return torch.from_numpy(np.array(out, np.float32, copy=True))
