"""Face detection v2: MTCNN (P-Net / R-Net / O-Net cascade, Zhang et al. 2016) from `facenet-pytorch`.

Chosen over the Haar cascade, OpenCV's res10 SSD and BlazeFace by benchmarks/face_detection.py (real film
frames with pasted IMFDB / FER+ faces, GRID talking faces, Big Buck Bunny frames with no human face; numbers
in benchmarks/results/face_branch.md). Its "false positives" on Big Buck Bunny are all the cartoon rabbit's
own face, which for an emotion pipeline is a face worth reading. Weights: facenet_pytorch/data/{pnet,rnet,onet}.pt, shipped inside the
wheel (install with `pip install --no-deps facenet-pytorch==2.6.0`; nothing is downloaded).

The cascade runs in `mtcnn_cascade` on `mtcnn_nets` (facenet-pytorch's networks and stages, without importing it).
The frame is shrunk so its longest side is at most `max_side` (aspect kept) before detection; boxes come back
in the input frame's pixels as (x, y, w, h), largest first. `version` names the weights (sha256 of the three
files) and every setting that changes the boxes, so cached features follow a change of detector.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import cv2
import numpy as np

from ._cache import file_digest, package_file

MAX_SIDE = 640  # detect on frames whose longest side is at most this (aspect kept)
MIN_FACE = 16  # smallest face side (px) searched for, at the detection scale
THRESHOLDS = (0.6, 0.7, 0.7)  # P-Net, R-Net, O-Net score thresholds (facenet-pytorch defaults)
MIN_SCORE = 0.9  # final O-Net score kept (0.95 trades 4-7 points of recall for fewer cartoon-face hits)
PYRAMID_FACTOR = 0.709
# A clip with no face found is searched once more (one frame) inside a black border of this share of the frame's
# longer side: MTCNN misses close-ups whose face touches the frame's edges (labelled film-still clips: 18 -> 26
# of 35 faces found on IMFDB stills, 27 -> 33 of 35 on FER+ stills); clips with a face found pay nothing more.
EDGE_PAD = 0.25
# The bordered pass looks for close-ups only: it runs on the bordered frame shrunk to EDGE_MAX_SIDE, for faces of
# at least EDGE_MIN_FACE px there (a close-up in a 480x270 face frame is over 100 px: over 40 px at this scale).
EDGE_MAX_SIDE = 320
EDGE_MIN_FACE = 24
# When the bordered pass finds nothing either, the frame itself (and, for a frame wider or taller than 1.2:1, its
# centred square) is one more candidate for O-Net alone: a face cropped tight to the frame, chin or brow cut, has
# no whole head for P-Net to propose. Kept at the O-Net score every other pass keeps (MIN_SCORE; 0.95 until
# 2026-12-04): on IMFDB and FER+ dev stills as the labelled films show them it finds most faces both passes miss
# (84.5 -> 95.5 % and 90 -> 95 %), with about 2 more false faces per 1,000 face-free photos than at 0.95
# (docs/benchmarks.md, labelled clips; python -m benchmarks.face_detection --stills 200).
WHOLE_FRAME_SCORE = MIN_SCORE
WHOLE_FRAME_SQUARE_ASPECT = 1.2
DETECT_BATCH = 8  # frames of one size per cascade call
WEIGHT_FILES = ("pnet.pt", "rnet.pt", "onet.pt")


def _weights_digest() -> str:
    h = hashlib.sha256()
    for name in WEIGHT_FILES:
        h.update(file_digest(package_file("facenet_pytorch", "data", name)).encode())
    return h.hexdigest()


def detector_v2_version(max_side: int = MAX_SIDE, min_face: int = MIN_FACE, min_score: float = MIN_SCORE,
                        thresholds: tuple[float, float, float] = THRESHOLDS) -> str:
    return (f"mtcnn-{_weights_digest()[:10]}-s{int(max_side)}-m{int(min_face)}-p{float(min_score):g}"
            f"-t{'_'.join(f'{t:g}' for t in thresholds)}-e{EDGE_PAD:g}s{EDGE_MAX_SIDE}m{EDGE_MIN_FACE}"
            f"-w{WHOLE_FRAME_SCORE:g}")


class MTCNNFaceDetector:
    """`detect(frame_rgb)` -> [(x, y, w, h), ...] in the frame's pixels, largest first; `detect_many` does the
    first pass for many frames at once (frames of one size go through the cascade as one batch)."""

    def __init__(self, max_side: int = MAX_SIDE, min_face: int = MIN_FACE, min_score: float = MIN_SCORE,
                 thresholds: tuple[float, float, float] = THRESHOLDS, device: str = "cpu"):
        package_file("facenet_pytorch", "data", "onet.pt")  # a clear error when the wheel is missing
        from . import mtcnn_cascade, mtcnn_nets  # torch: imported here, so naming the detector needs none

        self._cascade = mtcnn_cascade
        self.max_side, self.min_face, self.min_score = int(max_side), int(min_face), float(min_score)
        self._mtcnn = mtcnn_nets.load_cascade(self.min_face, thresholds, PYRAMID_FACTOR, device)
        # The bordered pass looks for close-ups only: a pyramid that starts at EDGE_MIN_FACE costs a fraction.
        self._edge_mtcnn = mtcnn_nets.load_cascade(EDGE_MIN_FACE, thresholds, PYRAMID_FACTOR, device)
        self.version = detector_v2_version(self.max_side, self.min_face, self.min_score, thresholds)

    def detect_scored(self, frame_rgb: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
        """[((x, y, w, h), score), ...] in the input frame's pixels, largest first (see EDGE_PAD)."""
        return self.detect_many_scored([frame_rgb])[0] or self.detect_close_up_scored(frame_rgb)

    def detect(self, frame_rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        return [box for box, _ in self.detect_scored(frame_rgb)]

    def detect_many(self, frames: Sequence[np.ndarray]) -> list[list[tuple[int, int, int, int]]]:
        """The first pass (no bordered search) for each frame: boxes per frame, largest first."""
        return [[box for box, _ in found] for found in self.detect_many_scored(frames)]

    def detect_close_up(self, frame_rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        return [box for box, _ in self.detect_close_up_scored(frame_rgb)]

    def detect_many_scored(self, frames: Sequence[np.ndarray]) -> list[list[tuple[tuple[int, int, int, int], float]]]:
        prepared = [self._prepare(f) for f in frames]
        out: list[list] = [[] for _ in frames]
        smalls = {i: small for i, (small, _, _) in enumerate(prepared)}
        for i, boxes, probs in self._cascade_by_shape(self._mtcnn, smalls):
            out[i] = self._to_frame(boxes, probs, prepared[i][1], prepared[i][2])
        return out

    def _cascade_by_shape(self, mtcnn, smalls: dict[int, np.ndarray]):
        """(index, boxes, probs) for each prepared frame, DETECT_BATCH frames of one size per cascade call; frames
        below P-Net's receptive field (12 px) are skipped: nothing can be found in them."""
        by_shape: dict[tuple, list[int]] = {}
        for i, small in smalls.items():
            if min(small.shape[:2]) >= 12:
                by_shape.setdefault(small.shape, []).append(i)
        for idx in by_shape.values():
            for start in range(0, len(idx), DETECT_BATCH):
                chunk = idx[start:start + DETECT_BATCH]
                boxes, probs = self._cascade.detect(mtcnn, np.stack([smalls[i] for i in chunk]))
                yield from zip(chunk, boxes, probs)

    def detect_close_up_scored(self, frame_rgb: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
        """The close-up search for a frame the first pass found nothing in: the bordered pass, then (when that
        finds nothing) the whole-frame check (see EDGE_PAD and WHOLE_FRAME_SCORE)."""
        return self.detect_close_up_many_scored([frame_rgb])[0]

    def detect_close_up_many(self, frames: Sequence[np.ndarray]) -> list[list[tuple[int, int, int, int]]]:
        """detect_close_up for several frames: their bordered passes share cascade calls (frames of one size)."""
        return [[box for box, _ in found] for found in self.detect_close_up_many_scored(frames)]

    def detect_close_up_many_scored(self, frames: Sequence[np.ndarray]) -> list[list]:
        found = self.detect_bordered_many_scored(frames)
        return [f or self.detect_whole_frame_scored(frame) for f, frame in zip(found, frames)]

    def detect_bordered_scored(self, frame_rgb: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
        """The bordered pass: the frame inside a black border of EDGE_PAD of its longer side, faces of at least
        EDGE_MIN_FACE px (at the detection scale), boxes clipped back to the frame."""
        return self.detect_bordered_many_scored([frame_rgb])[0]

    def detect_bordered_many_scored(self, frames: Sequence[np.ndarray]) -> list[list]:
        """The bordered pass for several frames, DETECT_BATCH frames of one size per cascade call: a batch's
        faceless clips are searched together (one call for a frame costs about as much as for eight)."""
        out: list[list] = [[] for _ in frames]
        prepared = {}
        for i, frame_rgb in enumerate(frames):
            frame = np.asarray(frame_rgb)
            pad = int(EDGE_PAD * max(frame.shape[:2]))
            if pad:
                border = [(pad, pad), (pad, pad)] + [(0, 0)] * (frame.ndim - 2)
                prepared[i] = (*self._prepare(np.pad(frame, border), EDGE_MAX_SIDE), pad, frame.shape[:2])
        for i, boxes, probs in self._cascade_by_shape(self._edge_mtcnn, {i: p[0] for i, p in prepared.items()}):
            _, scale, shape, pad, (h, w) = prepared[i]
            for (x, y, bw, bh), score in self._to_frame(boxes, probs, scale, shape):
                x0, y0 = max(0, x - pad), max(0, y - pad)
                x1, y1 = min(w, x - pad + bw), min(h, y - pad + bh)
                if x1 - x0 >= 2 and y1 - y0 >= 2:
                    out[i].append(((x0, y0, x1 - x0, y1 - y0), score))
        return out

    def detect_whole_frame_scored(self, frame_rgb: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
        """The whole-frame check: O-Net on the frame as one candidate (and its centred square when the frame is
        far from square); the best one scoring at least WHOLE_FRAME_SCORE, its box as O-Net's regression puts it,
        clipped to the frame."""
        small, scale, shape = self._prepare(frame_rgb, EDGE_MAX_SIDE)
        h, w = small.shape[:2]
        if min(h, w) < 12:
            return []
        candidates = [(0, 0, w, h)]
        side, long = min(h, w), max(h, w)
        if long >= WHOLE_FRAME_SQUARE_ASPECT * side:
            at = (long - side) // 2
            candidates.append((0, at, w, at + side) if h > w else (at, 0, at + side, h))
        boxes, scores = self._cascade.score_boxes(self._mtcnn, small, np.array(candidates, np.float32))
        best = int(np.argmax(scores))
        if scores[best] < WHOLE_FRAME_SCORE:
            return []
        return self._to_frame(boxes[best:best + 1], scores[best:best + 1], scale, shape)

    def _prepare(self, frame_rgb: np.ndarray, max_side: int = 0) -> tuple[np.ndarray, float, tuple[int, int]]:
        """(the frame shrunk to max_side (default: the detector's), the scale, the frame's (h, w))."""
        frame = np.asarray(frame_rgb)
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
            raise ValueError(f"a frame must be uint8 [H,W,3] RGB (or [H,W] gray), got {frame.dtype} {frame.shape}")
        h, w = frame.shape[:2]
        scale = min(1.0, (max_side or self.max_side) / max(h, w))
        small = frame if scale == 1.0 else cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                      interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(small), scale, (h, w)

    def _to_frame(self, boxes, probs, scale: float, shape: tuple[int, int]):
        """MTCNN's boxes at the detection scale -> [((x, y, w, h), score)] in the frame, largest first."""
        if boxes is None:
            return []
        h, w = shape
        out = []
        for (x1, y1, x2, y2), p in zip(boxes, probs):
            if p is None or p < self.min_score:
                continue
            x1, y1 = max(0.0, x1 / scale), max(0.0, y1 / scale)
            x2, y2 = min(float(w), x2 / scale), min(float(h), y2 / scale)
            if x2 - x1 >= 2 and y2 - y1 >= 2:
                out.append(((int(round(x1)), int(round(y1)), int(round(x2 - x1)), int(round(y2 - y1))), float(p)))
        return sorted(out, key=lambda bp: -bp[0][2] * bp[0][3])


def load_face_detector_v2(max_side: int = MAX_SIDE, min_face: int = MIN_FACE, min_score: float = MIN_SCORE,
                          device: str = "cpu") -> MTCNNFaceDetector:
    """The v2 face detector (MTCNN from the facenet-pytorch wheel)."""
    return MTCNNFaceDetector(max_side=max_side, min_face=min_face, min_score=min_score, device=device)
