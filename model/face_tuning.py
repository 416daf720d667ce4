"""Fine-tuning the face encoder (the packaged FER2013 mini-Xception) on labelled face crops.

The packaged network was trained on FER2013 as it was published; studio faces and the re-saved FER faces in
../shared/data differ (contrast, crops). A short fine-tune with augmentation adapts it; its weights ship
inside the head checkpoint (meta['face_encoder_state'], loaded by FaceEncoder.load_state) so the face token
the head was trained on is the one the pipeline computes. BatchNorm statistics stay frozen: with a few
thousand faces, batch statistics would be noisier than the ones the network was trained with.
"""
from __future__ import annotations

import copy
import dataclasses
import logging

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from model.encoders._mini_xception import INPUT_SIZE
from model.encoders.faces import FER_TO_EMOTIONS_INDEX, FaceEncoder, _resize, _to_gray

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FaceTuning:
    epochs: int = 25
    lr: float = 3e-4
    weight_decay: float = 1e-4
    batch_size: int = 64
    label_smoothing: float = 0.1
    seed: int = 0


def to_inputs(crops) -> np.ndarray:
    """Face crops (any size, RGB or gray) -> uint8 [N, INPUT_SIZE, INPUT_SIZE] gray, as the encoder sees them."""
    return np.stack([_resize(_to_gray(c), INPUT_SIZE) for c in crops])


def augment(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mirror, small rotation / scale / shift, brightness and contrast jitter: what differs between two
    crops of the same face in a film."""
    out = np.empty(batch.shape, np.float32)
    for i, x in enumerate(batch):
        if rng.random() < 0.5:
            x = x[:, ::-1]
        m = cv2.getRotationMatrix2D((INPUT_SIZE / 2, INPUT_SIZE / 2), rng.uniform(-12, 12), rng.uniform(0.9, 1.1))
        m[:, 2] += rng.uniform(-4, 4, 2)
        x = cv2.warpAffine(np.ascontiguousarray(x), m, (INPUT_SIZE, INPUT_SIZE), borderMode=cv2.BORDER_REFLECT)
        out[i] = np.clip(x.astype(np.float32) * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20), 0, 255)
    return out


def _normalise(x: np.ndarray) -> torch.Tensor:
    return (torch.from_numpy(np.ascontiguousarray(x, np.float32))[:, None] / 255.0 - 0.5) * 2.0  # fer's [-1, 1]


def _emotion_logits(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    _, logits = net(x)
    return logits[:, list(FER_TO_EMOTIONS_INDEX)]


def finetune_face_encoder(encoder: FaceEncoder, train_crops, train_labels, dev_crops=None, dev_labels=None,
                          cfg: FaceTuning = FaceTuning()) -> tuple[dict[str, torch.Tensor], dict]:
    """Fine-tune a copy of encoder.xception (labels in EMOTIONS order). With dev data, the epoch with the
    best dev accuracy of the encoder's own token (TTA-mean logits) is kept. Returns its state dict and a
    summary; `encoder` itself is left unchanged."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    x_train, y_train = to_inputs(train_crops), torch.as_tensor(np.asarray(train_labels), dtype=torch.long)
    net = copy.deepcopy(encoder.xception).cpu()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * -(-len(x_train) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.15)
    probe = FaceEncoder(net, encoder.version, device="cpu")
    history, best = [], (-1.0, 0, copy.deepcopy(net.state_dict()))
    for epoch in range(cfg.epochs):
        net.train()
        for mod in net.modules():  # frozen BatchNorm statistics (see the module docstring)
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.eval()
        order = torch.randperm(len(x_train), generator=gen).numpy()
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            loss = F.cross_entropy(_emotion_logits(net, _normalise(augment(x_train[idx], rng))), y_train[idx],
                                   label_smoothing=cfg.label_smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        if dev_crops is not None:
            acc = float((probe.encode(dev_crops).argmax(1) == np.asarray(dev_labels)).mean())
            history.append({"epoch": epoch + 1, "dev_accuracy": acc})
            log.info("face encoder epoch %d: dev accuracy %.4f", epoch + 1, acc)
            if acc > best[0]:
                best = (acc, epoch + 1, copy.deepcopy(net.state_dict()))
    if dev_crops is None:
        best = (float("nan"), cfg.epochs, copy.deepcopy(net.state_dict()))
    return best[2], {"best_epoch": best[1], "dev_accuracy": best[0], "history": history,
                     **dataclasses.asdict(cfg)}
