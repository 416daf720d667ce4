"""MTCNN's three networks (P-Net, R-Net, O-Net; Zhang et al. 2016) and the box arithmetic between its stages, with
the weights the facenet-pytorch wheel carries (facenet_pytorch/data/{pnet,rnet,onet}.pt).

The layers and the box arithmetic are facenet-pytorch 2.6's, written here so that a worker never imports
facenet-pytorch: its detection module imports torchvision, and importing torchvision (torch._dynamo, sympy) took
1.2-1.3 s of every worker's start-up. Non-maximum suppression is torchvision's compiled kernel, loaded on its own
(`torch.ops.torchvision.nms`, 3 ms). tests/test_face_branch.py checks the cascade's boxes against facenet-pytorch's
MTCNN. Pure PyTorch; no Beam.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._cache import package_file


class PNet(nn.Module):
    """12 px proposal network, fully convolutional: (box offsets [B, 4, h, w], face probabilities [B, 2, h, w])."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """24 px refinement network: (box offsets [N, 4], face probabilities [N, 2])."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x):
        x = self.pool2(self.prelu2(self.conv2(self.pool1(self.prelu1(self.conv1(x))))))
        x = self.prelu3(self.conv3(x)).permute(0, 3, 2, 1).contiguous()  # the original (Caffe) flattening order
        x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """48 px output network: (box offsets [N, 4], landmarks [N, 10], face probabilities [N, 2])."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool2(self.prelu2(self.conv2(self.pool1(self.prelu1(self.conv1(x))))))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


@dataclasses.dataclass(frozen=True)
class Cascade:
    """The three networks and the search settings `mtcnn_cascade.detect` runs them with."""
    pnet: PNet
    rnet: RNet
    onet: ONet
    min_face_size: int
    thresholds: tuple[float, float, float]
    factor: float
    device: torch.device


@functools.cache
def _networks(device: str) -> tuple[PNet, RNet, ONet]:
    """The three networks with the wheel's weights, channels-last (as the cascade feeds them), shared by every
    Cascade of this process on `device`."""
    nets = []
    for name, net in (("pnet", PNet()), ("rnet", RNet()), ("onet", ONet())):
        state = torch.load(package_file("facenet_pytorch", "data", f"{name}.pt"), map_location="cpu",
                           weights_only=True)
        net.load_state_dict(state)
        nets.append(net.eval().to(device).to(memory_format=torch.channels_last))
    return tuple(nets)


def load_cascade(min_face_size: int, thresholds: tuple[float, float, float], factor: float,
                 device: str = "cpu") -> Cascade:
    pnet, rnet, onet = _networks(str(device))
    return Cascade(pnet, rnet, onet, int(min_face_size), tuple(float(t) for t in thresholds), float(factor),
                   torch.device(device))


# ---------------------------------------------------------------- boxes between the stages (facenet-pytorch's)
def proposals(reg: torch.Tensor, probs: torch.Tensor, scale: float, threshold: float):
    """P-Net's map cells scoring >= threshold -> (boxes [K, 9]: x1 y1 x2 y2 in the frame, score, 4 offsets; the frame
    index of each). A cell at (y, x) of the map covers 12 px from (2x, 2y) at this pyramid scale."""
    mask = probs >= threshold
    cells = mask.nonzero()
    offsets = reg.permute(1, 0, 2, 3)[:, mask].permute(1, 0)
    xy = cells[:, 1:].to(reg.dtype).flip(1)
    top_left, bottom_right = ((2 * xy + 1) / scale).floor(), ((2 * xy + 12) / scale).floor()
    return torch.cat([top_left, bottom_right, probs[mask].unsqueeze(1), offsets], dim=1), cells[:, 0]


def regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Move boxes [N, >=4] by a stage's offsets [N, 4] (fractions of the box's size, in pixels + 1); in place."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, :4] = torch.stack([boxes[:, 0] + reg[:, 0] * w, boxes[:, 1] + reg[:, 1] * h,
                                boxes[:, 2] + reg[:, 2] * w, boxes[:, 3] + reg[:, 3] * h], dim=1)
    return boxes


def square(boxes: torch.Tensor) -> torch.Tensor:
    """Each box grown to a square about its centre (the next stage's input is square); in place."""
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = torch.max(w, h)
    boxes[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    boxes[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    boxes[:, 2:4] = boxes[:, :2] + side.unsqueeze(1)
    return boxes


def clip_boxes(boxes: torch.Tensor, w: int, h: int):
    """Integer (y, y_end, x, x_end) of each box, 1-based start, clipped to the frame (numpy int32 arrays)."""
    b = boxes.trunc().int().cpu().numpy()
    x, y, ex, ey = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    x[x < 1], y[y < 1] = 1, 1
    ex[ex > w], ey[ey > h] = w, h
    return y, ey, x, ex


@functools.cache
def _nms_kernel():
    """torchvision's compiled NMS, loaded into torch without importing torchvision's Python package."""
    spec = importlib.util.find_spec("torchvision")
    lib = Path(list(spec.submodule_search_locations)[0]) / "_C_stable.so" if spec else None
    if lib is not None and lib.exists():
        torch.ops.load_library(str(lib))
        return torch.ops.torchvision.nms
    from torchvision.ops import nms  # another torchvision layout: the slow import, same kernel

    return nms


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou: float) -> torch.Tensor:
    """torchvision.ops.batched_nms: indices of the boxes kept (IoU <= iou with every higher-scoring kept box of the
    same group), in decreasing order of score."""
    nms = _nms_kernel()
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    if boxes.numel() > (4000 if boxes.device.type == "cpu" else 100_000):  # torchvision's switch, same results
        keep = torch.zeros_like(scores, dtype=torch.bool)
        for g in torch.unique(groups):
            idx = torch.where(groups == g)[0]
            keep[idx[nms(boxes[idx], scores[idx], iou)]] = True
        kept = torch.where(keep)[0]
        return kept[scores[kept].sort(descending=True)[1]]
    shift = groups.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))  # groups far apart: no overlap
    return nms(boxes + shift[:, None], scores, iou)


def batched_nms_min(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, threshold: float):
    """The last stage's NMS (facenet-pytorch's batched_nms_numpy, method "Min"): overlap is the intersection over
    the smaller box (pixel-inclusive areas), boxes above `threshold` of a kept one are dropped."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    shift = groups.to(boxes) * (boxes.max() + 1)
    b = (boxes + shift[:, None]).cpu().numpy()
    s = scores.cpu().numpy()
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order, pick = np.argsort(s), []
    while order.size:
        i, rest = order[-1], order[:-1]
        pick.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        order = rest[w * h / np.minimum(area[i], area[rest]) <= threshold]
    return torch.as_tensor(np.array(pick, np.int64), device=boxes.device)
