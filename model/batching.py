"""Pad per-clip token sequences into batch tensors with validity masks, and drop modalities for training."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from model.bvpec import MODALITIES


def collate(items: Sequence[Mapping[str, np.ndarray]], dims: Mapping[str, int]
            ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """items: per clip, modality -> float array [L, D_m] (absent key or L == 0: missing).
    Returns inputs {m: float32 [B, L_max, D_m]} and masks {m: bool [B, L_max]} (True = valid);
    a modality missing from the whole batch gets L_max = 1, fully masked."""
    b = len(items)
    inputs: dict[str, Tensor] = {}
    masks: dict[str, Tensor] = {}
    for m in MODALITIES:
        d = int(dims[m])
        seqs = [_as_tokens(it.get(m), d, m) for it in items]
        lmax = max([1] + [s.shape[0] for s in seqs])
        x = torch.zeros(b, lmax, d, dtype=torch.float32)
        mask = torch.zeros(b, lmax, dtype=torch.bool)
        for i, s in enumerate(seqs):
            if s.shape[0]:
                x[i, :s.shape[0]] = torch.from_numpy(np.ascontiguousarray(s, dtype=np.float32))
                mask[i, :s.shape[0]] = True
        inputs[m], masks[m] = x, mask
    if any("text_line_len" in it for it in items):
        # fine-tuning the text encoder's top layers: text holds the whole (line, context) pair sequence and
        # this says how many leading positions are the line (model.text_top.TunedTextHead)
        inputs["text_line_len"] = torch.tensor([int(it.get("text_line_len", 0)) for it in items], dtype=torch.long)
    return inputs, masks


def _as_tokens(a, d: int, m: str) -> np.ndarray:
    if a is None:
        return np.zeros((0, d), np.float32)
    a = np.asarray(a)
    if a.ndim == 1:  # a pooled vector is one token
        a = a[None] if a.size else a.reshape(0, d)
    if a.ndim != 2 or (a.shape[0] and a.shape[1] != d):
        raise ValueError(f"{m}: expected [L, {d}] tokens, got shape {a.shape}")
    return a


def modality_dropout(masks: Mapping[str, Tensor], p: float, generator: torch.Generator | None = None
                     ) -> dict[str, Tensor]:
    """Drop each present modality of each sample with probability p (whole modality), always keeping
    at least one, so the head learns to predict from any subset and the gates learn to reweight."""
    if p <= 0:
        return dict(masks)
    present = torch.stack([masks[m].any(1) for m in MODALITIES], 1)
    drop = (torch.rand(present.shape, generator=generator) < p) & present
    # Never drop everything a sample has: restore its one random present modality if all got dropped.
    all_gone = present.any(1) & ~(present & ~drop).any(1)
    if all_gone.any():
        scores = torch.rand(present.shape, generator=generator).masked_fill(~present, -1.0)
        keep = torch.zeros_like(present).scatter_(1, scores.argmax(1, keepdim=True), True)
        drop = drop & ~(keep & all_gone.unsqueeze(1))
    return {m: masks[m] & ~drop[:, i:i + 1] for i, m in enumerate(MODALITIES)}
