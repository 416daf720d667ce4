"""eq. 17: L = alpha * CE(logits, label) + beta * MSE(intensity, target), the MSE masked per element
where a sample has no target (NaN), the CE over samples with a label (label < 0: none)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F


def class_weights(labels: Sequence[int], num_classes: int, power: float = 0.5) -> Tensor:
    """Inverse-frequency weights softened by `power` (0.5 = inverse sqrt), normalised to mean 1 over the
    classes seen. Full inverse frequency over-rewards 30-example classes (disgust) and hurts accuracy."""
    counts = np.bincount(np.asarray([y for y in labels if y >= 0], dtype=np.int64), minlength=num_classes)
    w = np.where(counts > 0, 1.0 / np.maximum(counts, 1) ** power, 0.0)
    w = w / w[counts > 0].mean()
    return torch.tensor(w, dtype=torch.float32)


def bvpec_loss(logits: Tensor, intensity: Tensor, labels: Tensor, targets: Tensor,
               alpha: float = 1.0, beta: float = 0.5, weights: Tensor | None = None,
               label_smoothing: float = 0.0) -> tuple[Tensor, dict[str, float]]:
    has_label = labels >= 0
    ce = (F.cross_entropy(logits[has_label], labels[has_label], weight=weights,
                          label_smoothing=label_smoothing)
          if has_label.any() else logits.sum() * 0.0)
    has_target = ~torch.isnan(targets)
    if has_target.any():
        mse = F.mse_loss(intensity[has_target], targets[has_target])
    else:
        mse = intensity.sum() * 0.0  # keeps the graph connected, contributes nothing
    loss = alpha * ce + beta * mse
    return loss, {"ce": float(ce.detach()), "mse": float(mse.detach()), "loss": float(loss.detach())}
