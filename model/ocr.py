"""Reads the text of subtitle pictures (Blu-ray PGS, DVD VobSub, DVB): a line recogniser, no text detector.

A subtitle picture is already the text alone, light letters on a transparent ground, one to three lines. So the
picture is cut into lines where whole rows hold no ink, each line goes to PP-OCRv4's recogniser (an SVTR-LCNet
CTC model, Apache-2.0, from the rapidocr-onnxruntime wheel, which carries it; run by ONNX Runtime) and the CTC
output is read greedily. Its dictionary is Chinese and Latin; what it reads is mapped to plain Latin punctuation.

    ocr = LineReader.load()
    text, confidence = ocr.read(gray)   # gray: [H, W] uint8, the subtitle's luminance over black
"""
from __future__ import annotations

import functools
import importlib.util
import os
import re
import unicodedata
from typing import Sequence

import numpy as np

MODEL_FILE = "ch_PP-OCRv4_rec_infer.onnx"
HEIGHT = 48  # the recogniser's input height
INK = 48  # a pixel at or above this grey level is ink
MIN_GAP = 2  # rows without ink that part two lines
BATCH = 8
SCRIPTS = ("Latn", "Hans", "Hant")  # what the recogniser's dictionary holds: Latin and Chinese
RETRY_BELOW = 0.9  # a line read with less confidence is tried again as two lines (split_line)
# full-width and CJK punctuation the Chinese-trained dictionary gives for Latin text
_PUNCT = str.maketrans({"。": ".", "、": ",", "《": "<", "》": ">", "【": "[", "】": "]", "「": '"', "」": '"',
                        "“": '"', "”": '"', "‘": "'", "’": "'", "—": "-", "–": "-", "…": "...",
                        "·": ""})  # a middle dot: a descender's tip cut off with a line below


def model_path() -> str:
    """The recogniser's ONNX file inside the installed rapidocr-onnxruntime package (found without importing it:
    its own imports need packages this project does not install)."""
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("rapidocr-onnxruntime is not installed (requirements-weights.txt carries the OCR model)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "models", MODEL_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: the OCR model is missing from rapidocr-onnxruntime")
    return path


def line_bands(gray: np.ndarray) -> list[tuple[int, int]]:
    """Row ranges [top, bottom) of the picture's text lines: runs of rows with ink, parted by MIN_GAP empty rows;
    a band much lower than the tallest (an accent, a dot cut off by the gap) joins its nearest neighbour."""
    rows = np.flatnonzero((gray >= INK).any(axis=1))
    if rows.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(rows) > MIN_GAP)
    bands = [[int(rows[s]), int(rows[e]) + 1] for s, e in zip(np.r_[0, cuts + 1], np.r_[cuts, rows.size - 1])]
    tallest = max(b - t for t, b in bands)
    i = 0
    while len(bands) > 1 and i < len(bands):
        t, b = bands[i]
        if b - t < 0.35 * tallest:
            j = i - 1 if i == len(bands) - 1 or (i > 0 and t - bands[i - 1][1] <= bands[i + 1][0] - b) else i + 1
            bands[j] = [min(bands[j][0], t), max(bands[j][1], b)]
            del bands[i]
            i = 0
            continue
        i += 1
    return [(t, b) for t, b in bands]


def line_pictures(gray: np.ndarray) -> list[np.ndarray]:
    """Each text line of a subtitle picture cropped to its ink with a margin, as [H, W] uint8."""
    out = []
    for top, bottom in line_bands(gray):
        band = gray[top:bottom]
        cols = np.flatnonzero((band >= INK).any(axis=0))
        pad = max(2, (bottom - top) // 8)
        left, right = max(0, int(cols[0]) - pad), min(gray.shape[1], int(cols[-1]) + 1 + pad)
        out.append(np.pad(gray[max(0, top - pad):min(gray.shape[0], bottom + pad), left:right], pad))
    return out


# a lone lower-case l is the capital I misread (in a sans-serif face they are the same stroke): "l'm", "I-l", "l think"
_LONE_L = re.compile(r"(?<![\w'])l(?=(?:'(?:m|ve|ll|d|s)\b)|[\s,.!?;:-]|$)")


def split_line(picture: np.ndarray) -> list[np.ndarray]:
    """A band holding two lines set so close that no empty row parts them, cut at the row with the least ink in its
    middle third (the top line keeps a few rows more: its descenders), each half cropped to its ink again. [] when
    the band is one line: a line's middle third (its x-height) holds its most ink, two lines' middle third the least."""
    h = picture.shape[0]
    ink = (picture >= INK).sum(axis=1)
    lo, hi = h // 3, max(h // 3 + 1, 2 * h // 3)
    cut = lo + int(np.argmin(ink[lo:hi]))
    if h < 12 or ink[cut] > 0.35 * min(ink[:lo].max(), ink[hi:].max()):
        return []
    halves = [line_pictures(part) for part in (picture[:cut + int(h * 0.06)], picture[cut:])]
    if not all(halves):
        return []
    return [max(part, key=lambda p: p.shape[0] * p.shape[1]) for part in halves]


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_PUNCT)
    return _LONE_L.sub("I", " ".join(text.split()))


class LineReader:
    """The recogniser, loaded once per process (load); read() takes one subtitle picture."""

    def __init__(self, session, charset: Sequence[str]):
        self.session, self.charset = session, list(charset)
        self.input_name = session.get_inputs()[0].name

    @staticmethod
    @functools.lru_cache(maxsize=1)
    def load(threads: int = 1) -> "LineReader":
        import onnx
        import onnxruntime as ort
        path = model_path()
        meta = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        # class 0 is CTC's blank, then the dictionary, then a space
        return LineReader(session, ["", *meta["character"].splitlines(), " "])

    def recognise(self, lines: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """(text, confidence) per line picture; confidence: the mean probability of the characters read."""
        widths = [max(HEIGHT // 2, int(round(p.shape[1] * HEIGHT / max(1, p.shape[0])))) for p in lines]
        order = np.argsort(widths)
        out: list[tuple[str, float]] = [("", 0.0)] * len(lines)
        for start in range(0, len(lines), BATCH):
            chunk = order[start:start + BATCH]
            width = max(widths[i] for i in chunk)
            batch = np.zeros((len(chunk), 3, HEIGHT, width), np.float32)  # 0: mid-grey after normalising, as trained
            for row, i in enumerate(chunk):
                batch[row, :, :, :widths[i]] = _resized(lines[i], widths[i])[None] / 127.5 - 1.0
            probs = self.session.run(None, {self.input_name: batch})[0]
            for row, i in enumerate(chunk):
                out[i] = self._decode(probs[row])
        return out

    def _decode(self, probs: np.ndarray) -> tuple[str, float]:
        best, p = probs.argmax(axis=1), probs.max(axis=1)
        keep = (best != 0) & np.r_[True, best[1:] != best[:-1]]
        text = "".join(self.charset[k] for k in best[keep] if k < len(self.charset))
        return _clean(text), float(p[keep].mean()) if keep.any() else 0.0

    def read(self, gray: np.ndarray) -> tuple[str, float]:
        """A subtitle picture's text, its lines joined by a space, and the lowest line's confidence. A picture
        fading in or out (its palette's opacity part way) is read at full contrast."""
        top = int(gray.max()) if gray.size else 0
        if 0 < top < 255:
            gray = (gray.astype(np.float32) * (255.0 / top)).astype(np.uint8)
        lines = line_pictures(gray)
        if not lines:
            return "", 0.0
        read = self.recognise(lines)
        for k in reversed(range(len(lines))):  # two lines set so close that no empty row parts them
            if read[k][1] < RETRY_BELOW:
                halves = split_line(lines[k])
                if halves:
                    again = self.recognise(halves)
                    if min(c for _, c in again) > read[k][1]:
                        read[k:k + 1] = again
        read = [r for r in read if r[0]]
        if not read:
            return "", 0.0
        return " ".join(t for t, _ in read), min(c for _, c in read)


def _resized(picture: np.ndarray, width: int) -> np.ndarray:
    """A line picture at the recogniser's height: bicubic where it grows (a DVD's small letters keep the gaps
    between words: on 500 MELD lines drawn at 22 px, word error 1.56 % bilinear, 0.22 % bicubic), bilinear where it
    shrinks (a Blu-ray's, the same either way)."""
    from PIL import Image
    grow = picture.shape[0] < HEIGHT
    return np.asarray(Image.fromarray(picture).resize((width, HEIGHT), Image.BICUBIC if grow else Image.BILINEAR),
                      np.float32)


def composite(indexes: np.ndarray, luma_alpha: np.ndarray) -> np.ndarray:
    """A palette picture over black: [H, W] indexes and a [N, 2] table of (luma 0-255, alpha 0-255) -> grey uint8."""
    table = (luma_alpha[:, 0].astype(np.float32) * luma_alpha[:, 1] / 255.0).clip(0, 255).astype(np.uint8)
    return table[np.minimum(indexes, len(table) - 1)]


def luma_of_ycrcb(y: np.ndarray) -> np.ndarray:
    """Studio-range luma (16-235) as 0-255."""
    return ((y.astype(np.float32) - 16.0) * 255.0 / 219.0).clip(0, 255)
