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


def calibrated_probs(model: BVPEC, logits: torch.Tensor) -> torch.Tensor:
    """softmax(logits / T): T is the head's temperature, fitted on dev data after training (1.0 when the
    checkpoint has none), so a probability of 0.6 means right about 60% of the time on data like dev."""
    return torch.softmax(logits.float() / float(getattr(model, "temperature", 1.0)), -1)


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
            probs = calibrated_probs(model, res.logits).cpu().numpy().astype(np.float64)
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
