"""Run the head on per-clip feature dicts and turn outputs into plain Python predictions."""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np
import torch

from model.batching import collate
from model.bvpec import BVPEC, MODALITIES
from schemas.labels import EMOTIONS


@dataclasses.dataclass(frozen=True)
class Prediction:
    probs: np.ndarray  # [7] in EMOTIONS order, sums to 1
    emotion: str
    confidence: float
    valence: float
    arousal: float
    gates: dict[str, float]
    modalities_used: list[str]


def evidence_pattern(present: Sequence[bool]) -> str:
    """The modalities a clip has, as a key: 'text', 'face+vision', 'audio+face+text+vision', ... ('' = none)."""
    return "+".join(sorted(m for m, p in zip(MODALITIES, present) if p))


def calibrated_probs(model: BVPEC, logits: torch.Tensor, masks: Mapping[str, torch.Tensor] | None = None
                     ) -> torch.Tensor:
    """softmax(logits / T), so a probability of 0.6 means right about 60% of the time on data like dev.

    T is fitted on dev data after training: one per evidence pattern (which modalities the clip has:
    `model.pattern_temperatures`, training.calibration) where the checkpoint has one for the clip's pattern and
    `masks` (model.batching.collate's) say which it is, else the head's single temperature (1.0 when none).
    A text-only clip and a clip with a face, a scene and speech are not equally sure at the same logits."""
    logits = logits.float()
    temps = torch.full(logits.shape[:-1], float(getattr(model, "temperature", 1.0)), device=logits.device)
    by_pattern = getattr(model, "pattern_temperatures", None) or {}
    if by_pattern and masks is not None and logits.dim() == 2:
        present = torch.stack([masks[m].any(1) for m in MODALITIES], 1).cpu().tolist()
        for i, row in enumerate(present):
            t = by_pattern.get(evidence_pattern(row))
            if t is not None:
                temps[i] = float(t)
    return torch.softmax(logits / temps.unsqueeze(-1), -1)


def predict(model: BVPEC, items: Sequence[Mapping[str, np.ndarray]], device: str = "cpu",
            batch_size: int = 256) -> list[Prediction]:
    model.eval()
    dims = model.config.input_dims
    out: list[Prediction] = []
    with torch.inference_mode():
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            inputs, masks = collate(chunk, dims)
            res = model({m: t.to(device) for m, t in inputs.items()}, {m: t.to(device) for m, t in masks.items()})
            probs = calibrated_probs(model, res.logits, masks).cpu().numpy().astype(np.float64)
            inten = res.intensity.float().cpu().numpy()
            gates = res.gates.float().cpu().numpy()
            for i in range(len(chunk)):
                p = probs[i] / probs[i].sum()
                k = int(p.argmax())
                g = {m: float(gates[i, j]) for j, m in enumerate(MODALITIES)}
                out.append(Prediction(probs=p, emotion=EMOTIONS[k], confidence=float(p[k]),
                                      valence=float(inten[i, 0]), arousal=float(inten[i, 1]), gates=g,
                                      modalities_used=[m for m in MODALITIES if g[m] > 0]))
    return out
