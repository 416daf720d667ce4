"""Which number formats and encoder runtimes a worker can run, as rules the launcher can ask without torch.

model.precision.resolve and model.encoders.openvino_runtime.resolve_runtime refuse by these rules on the workers;
pipeline.options asks them at launch (its process must not import torch), so a combination no worker runs stops the
launch with one line instead of failing every film.
"""
from __future__ import annotations

from typing import Mapping, Optional

PRECISIONS = ("auto", "fp32", "bf16", "int8")
RUNTIMES = ("auto", "torch", "openvino")


def precision_problem(precision: str, device: str) -> Optional[str]:
    """Why no worker on `device` computes in `precision` (fp16 is taken as well: a GPU's auto), or None."""
    if precision not in PRECISIONS + ("fp16",):
        return f"precision must be one of {PRECISIONS}, got {precision!r}"
    if precision == "int8" and device.startswith("cuda"):
        return "precision int8 is for CPU workers; on a GPU use auto (bf16/fp16)"
    return None


def openvino_problem(device: str, precision: str) -> Optional[str]:
    """Why OpenVINO cannot run an encoder on `device` in `precision` (as given: auto on a CPU is fp32 or bf16), or
    None: it is for CPU workers in fp32 or bf16."""
    if device == "cpu" and precision in ("auto", "fp32", "bf16"):
        return None
    return f"the openvino runtime is for CPU workers in fp32/bf16, not {device}/{precision}"


def number_format_problems(device: str, precision: str, runtimes: Mapping[str, str]) -> list[str]:
    """One line per setting no worker runs, for the encoders a command builds (runtimes: encoder -> its runtime
    option, 'text' / 'vision'; none: nothing is built, nothing to say): int8 on a GPU, OpenVINO anywhere but a CPU
    in fp32 or bf16. pipeline.run's launch and pipeline.evaluate ask it before any model or data loads."""
    problems = []
    problem = precision_problem(precision, device) if runtimes else None
    if problem:
        problems.append(f"--precision {precision} --device {device}: {problem}")
    for encoder, runtime in sorted(runtimes.items()):
        if runtime == "openvino" and openvino_problem(device, precision):
            given = "--device cuda" if device != "cpu" else f"--precision {precision}"
            problems.append(f"--{encoder}_runtime openvino: OpenVINO runs the {encoder} encoder on CPU workers in fp32 "
                            f"or bf16, not with {given}; give --{encoder}_runtime auto or torch")
    return problems
