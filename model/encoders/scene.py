"""Scene emotion: a small head on the ViT's frame tokens -> calibrated 7-way logits + valence/arousal.

Input: the vision encoder's scene tokens per frame, [n, 2, 384] (CLS and the patch mean, each averaged over the
last 4 blocks; see `model.encoders.vision.SCENE_LAYERS`), from frames squashed to 224x224 as the pipeline decodes
them. The head reads both (768 values), standardises them, and applies a linear
layer or a one-hidden-layer MLP with two outputs: 7 emotion logits (divided by a temperature fitted on
held-out photos, so they are calibrated) and valence/arousal in [-1, 1] (the 1-9 rater scale mapped
linearly, 5 -> 0). Trained on Emotion6 scene photos with the raters' vote distributions as soft targets
(`training.scene_classifier`). Pure PyTorch; no Beam.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from schemas.labels import EMOTIONS

from ..files import written_atomically
from .versions import GATE_WEIGHTS, PICTURE_P, SCENE_WEIGHTS, scene_version  # noqa: F401 - re-exported

TOKENS, DIM = 2, 384
DEFAULT_WEIGHTS = SCENE_WEIGHTS
FEATURES = "layermean4-cls+patchmean"


def pooled_features(tokens) -> torch.Tensor:
    """[n, 2, D] scene tokens -> [n, 2D]: the layer-mean CLS, then the layer-mean patch mean."""
    t = torch.as_tensor(np.asarray(tokens, np.float32) if not torch.is_tensor(tokens) else tokens).float()
    if t.ndim != 3 or t.shape[1] != TOKENS:
        raise ValueError(f"scene tokens must be [n, {TOKENS}, dim], got {tuple(t.shape)}")
    return t.reshape(len(t), -1)


@dataclasses.dataclass(frozen=True)
class SceneHeadConfig:
    dim: int = DIM
    hidden: int = 0  # 0 = linear
    dropout: float = 0.0
    members: int = 1  # an ensemble of independently seeded nets; their outputs are averaged


def _net(cfg: SceneHeadConfig) -> nn.Module:
    d, out = 2 * cfg.dim, len(EMOTIONS) + 2
    if cfg.hidden:
        return nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(d, cfg.hidden), nn.GELU(),
                             nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, out))
    return nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(d, out))


class SceneEmotionHead(nn.Module):
    """scene tokens [n, 2, dim] -> (calibrated logits [n, 7], valence/arousal [n, 2] in [-1, 1])."""

    def __init__(self, cfg: SceneHeadConfig = SceneHeadConfig()):
        super().__init__()
        self.cfg = cfg
        d = 2 * cfg.dim
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("scale", torch.ones(d))
        self.register_buffer("temperature", torch.ones(()))
        self.nets = nn.ModuleList(_net(cfg) for _ in range(max(1, cfg.members)))
        self.version = "scene-emotion-untrained"
        self.gate: Optional[PictureGate] = None  # which frames are pictures (load_scene_head sets the shipped one)

    @property
    def net(self) -> nn.Module:
        """The first member (the one a single-member head trains)."""
        return self.nets[0]

    def raw(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled features [n, 2*dim] -> (uncalibrated logits, valence/arousal): member means."""
        z = (feats - self.mean) / self.scale
        ys = [net(z) for net in self.nets]
        logits = torch.stack([y[:, : len(EMOTIONS)] for y in ys]).mean(0)
        va = torch.stack([torch.tanh(y[:, len(EMOTIONS):]) for y in ys]).mean(0)
        return logits, va

    def forward(self, tokens) -> tuple[torch.Tensor, torch.Tensor]:
        logits, va = self.raw(pooled_features(tokens))
        return logits / self.temperature, va

    def pictures(self, tokens) -> np.ndarray:
        """[n] bool: the frames (scene tokens [n, 2, dim]) whose scene this head may judge (all without a gate)."""
        return self.gate.pictures(tokens) if self.gate is not None else np.ones(len(tokens), bool)

    @torch.inference_mode()
    def encode(self, tokens) -> tuple[np.ndarray, np.ndarray]:
        """numpy in, numpy out: (calibrated logits [n, 7], valence/arousal [n, 2])."""
        self.eval()
        if len(tokens) == 0:
            return np.zeros((0, len(EMOTIONS)), np.float32), np.zeros((0, 2), np.float32)
        logits, va = self(tokens)
        return logits.numpy().astype(np.float32), va.numpy().astype(np.float32)


class PictureGate:
    """Which frames are pictures of something (training.picture_gate): scene tokens [n, 2, dim] -> [n] bool."""

    def __init__(self, mean, scale, coef, bias):
        self.mean, self.scale, self.coef = (np.asarray(a, np.float64) for a in (mean, scale, coef))
        self.bias = float(bias)

    def probability(self, tokens) -> np.ndarray:
        x = np.asarray(tokens, np.float64).reshape(len(tokens), -1)
        return 1.0 / (1.0 + np.exp(-(((x - self.mean) / self.scale) @ self.coef + self.bias)))

    def pictures(self, tokens) -> np.ndarray:
        return self.probability(tokens) >= PICTURE_P if len(tokens) else np.zeros(0, bool)


def load_picture_gate(path: str | os.PathLike | None = None) -> Optional[PictureGate]:
    """The shipped gate (model/weights/picture_gate.npz); None where there is none (every frame is read)."""
    path = Path(path) if path else GATE_WEIGHTS
    if not path.is_file():
        return None
    with np.load(path) as f:
        return PictureGate(f["mean"], f["scale"], f["coef"], f["bias"])


def save_scene_head(head: SceneEmotionHead, path: str | os.PathLike, meta: Optional[dict] = None,
                    gate: Optional[dict] = None) -> None:
    """gate: the picture gate's arrays (training.picture_gate.learn_gate), carried in the checkpoint."""
    carried = {"picture_gate": {k: torch.as_tensor(np.asarray(v, np.float32)) for k, v in gate.items()}} if gate else {}
    with written_atomically(path) as tmp:
        torch.save({"config": dataclasses.asdict(head.cfg), "state_dict": head.state_dict(), "features": FEATURES,
                    "labels": list(EMOTIONS), "meta": meta or {}, **carried}, tmp)


def load_scene_head(path: str | os.PathLike | None = None) -> SceneEmotionHead:
    """The shipped head (model/weights/scene_emotion.pt) or another checkpoint of the same format.
    Its `version` is `scene-emotion-` + the first 10 hex digits of the file's sha256."""
    path = Path(path) if path else DEFAULT_WEIGHTS
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if list(ckpt.get("labels", EMOTIONS)) != list(EMOTIONS) or ckpt.get("features") != FEATURES:
        raise ValueError(f"{path}: not a scene head for {EMOTIONS} on {FEATURES} features")
    head = SceneEmotionHead(SceneHeadConfig(**ckpt["config"]))
    head.load_state_dict(ckpt["state_dict"])
    head.version = scene_version(path)
    head.vision = (ckpt.get("meta") or {}).get("vision")  # the ViT whose tokens it learnt from (None: not recorded)
    # the gate the checkpoint carries (a studio's classifier learns one from its own photos), else the shipped one
    carried = ckpt.get("picture_gate")
    head.gate = PictureGate(**{k: v.numpy() for k, v in carried.items()}) if carried else load_picture_gate()
    return head.eval()
