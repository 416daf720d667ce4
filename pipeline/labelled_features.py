"""Encoder features for labelled examples, computed once and cached on disk.

Cache key = data fingerprint (file bytes) + the versions of the encoders that made the features (+ the hash
of any fine-tuned text layers applied), so changing either recomputes and nothing stale is reused.
Features are stored as float16 token arrays per example: {modality: [L, D]}, L == 0 when missing.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from model.bvpec import MODALITIES
from model.datasets import Example, fingerprint, load_dataset
from model.precision import resolve

log = logging.getLogger(__name__)
CACHE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "features"  # env FILM_EMOTION_FEATURE_CACHE overrides
CACHE_FORMAT = "1"
TEXT_MAX_LENGTH = 96


class LazyEncoders:
    """Loads each encoder on first use (text-only data never loads the ViT), once per process."""

    def __init__(self, device: str = "cpu", text_overrides: Mapping[str, torch.Tensor] | None = None,
                 image_size: int = 224, text_lower_k: int = 0, precision: str = "auto",
                 face_state: Mapping[str, torch.Tensor] | None = None):
        """text_lower_k > 0: the text encoder's top k layers are split off into `self.text_top` (to be
        fine-tuned) and text features are the hidden states entering them (cached like any feature)."""
        self.device, self.image_size = device, image_size
        self.precision = precision  # as the pipeline's --precision: features match what scoring computes
        self.text_overrides = text_overrides or None
        self.face_state = face_state or None  # fine-tuned mini-Xception weights (model.face_tuning)
        self.text_lower_k = text_lower_k
        self.text_top = None
        self._cache: dict[str, object] = {}

    def _get(self, name: str, factory):
        if name not in self._cache:
            self._cache[name] = factory()
        return self._cache[name]

    @property
    def text(self):
        def make():
            from model.encoders.text import load_text_encoder
            enc = load_text_encoder(None, device=self.device, precision=self.precision)
            if self.text_overrides:
                enc.apply_overrides(self.text_overrides)
            if self.text_lower_k:
                from model.text_top import TextTop
                self.text_top = TextTop(enc.model, self.text_lower_k)
            return enc
        return self._get("text", make)

    @property
    def face(self):
        def make():
            from model.encoders.faces import load_face_encoder
            enc = load_face_encoder(device=self.device)
            if self.face_state:
                enc.load_state(self.face_state)
            return enc
        return self._get("face", make)

    @property
    def vision(self):
        from model.encoders.vision import load_vision_encoder
        return self._get("vision", lambda: load_vision_encoder(None, device=self.device, image_size=self.image_size,
                                                                       precision=self.precision))

    @property
    def face_detector(self):
        from model.encoders.faces import load_face_detector
        return self._get("detector", load_face_detector)

    def text_version(self) -> str:
        v = self.text.version  # names the overrides, if any (TextEncoder.apply_overrides)
        if self.text_lower_k:
            v += f"+lower{len(self.text.model.encoder.layer) - self.text_lower_k}pairs"
        return v


def versions_for(kind: str, enc: LazyEncoders) -> str:
    """Encoder versions behind a data kind's features; the widths are included because a version string
    alone has not always changed when the face encoder's output did."""
    if kind in ("meld", "goemotions", "emorynlp"):
        return "text=" + enc.text_version()
    if kind == "imagefolder":
        return f"face={enc.face.version}/{enc.face.dim}"
    from model.encoders.audio import AUDIO_VERSION
    return f"text={enc.text_version()},vision={enc.vision.version},face={enc.face.version},audio={AUDIO_VERSION}"


def features_for(spec: str, enc: LazyEncoders, cache_dir: Path | None = None
                 ) -> tuple[list[Example], list[dict[str, np.ndarray]]]:
    """All examples of a data spec and their features (from the cache when present)."""
    cache_dir = Path(cache_dir or os.environ.get("FILM_EMOTION_FEATURE_CACHE") or CACHE_DIR)
    examples = load_dataset(spec)
    kind = spec.split(":", 1)[0]
    key = hashlib.sha256(f"{CACHE_FORMAT}|{kind}|{fingerprint(spec)}|{versions_for(kind, enc)}|{TEXT_MAX_LENGTH}"
                         f"|{resolve(enc.precision, enc.device)}".encode()).hexdigest()[:20]
    path = cache_dir / f"{kind}-{key}.pt"
    if path.exists():
        feats = torch.load(path, weights_only=False)
        if len(feats) == len(examples):
            return examples, feats
    log.info("encoding %d examples of %s", len(examples), spec)
    feats = compute_features(examples, enc)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(feats, tmp)
    tmp.replace(path)
    return examples, feats


def compute_features(examples: Sequence[Example], enc: LazyEncoders) -> list[dict[str, np.ndarray]]:
    feats: list[dict[str, np.ndarray]] = [{} for _ in examples]
    text_idx = [i for i, e in enumerate(examples) if e.text and not e.video]
    if text_idx and enc.text_lower_k:
        from model.text_top import encode_lower
        lower = encode_lower(enc.text, [examples[i].text for i in text_idx],
                             [list(examples[i].context) for i in text_idx], enc.text_lower_k, TEXT_MAX_LENGTH)
        for i, (h, n_line) in zip(text_idx, lower):
            feats[i]["text"] = np.asarray(h, np.float16)
            feats[i]["text_line_len"] = np.array(n_line, np.int64)
    elif text_idx:
        toks = enc.text.encode([examples[i].text for i in text_idx], [list(examples[i].context) for i in text_idx],
                               max_length=TEXT_MAX_LENGTH)
        for i, t in zip(text_idx, toks):
            feats[i]["text"] = np.asarray(t, np.float16)
    img_idx = [i for i, e in enumerate(examples) if e.image]
    for start in range(0, len(img_idx), 256):
        chunk = img_idx[start:start + 256]
        vecs = enc.face.encode([read_image(examples[i].image) for i in chunk])
        for i, v in zip(chunk, vecs):
            feats[i]["face"] = np.asarray(v, np.float16)[None]  # a face crop is one face token
    for i, e in enumerate(examples):
        if e.video:
            feats[i] = {m: np.asarray(a, np.float16) for m, a in clip_features(e, enc).items()}
    return feats


def read_image(path: str) -> np.ndarray:
    import cv2
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def clip_features(e: Example, enc: LazyEncoders, n_frames: int = 4) -> dict[str, np.ndarray]:
    """A labelled clip from a studio manifest: the same features the pipeline makes for a clip (sampled
    frames -> ViT tokens, detected faces -> face tokens, 16 kHz audio -> prosody, line -> text tokens)."""
    from model.encoders.audio import audio_features
    frames, audio = decode_clip(e.video, e.start_s, e.end_s, n_frames, enc.image_size)
    out: dict[str, np.ndarray] = {}
    if e.text:
        out["text"] = enc.text.encode([e.text], [list(e.context)], max_length=TEXT_MAX_LENGTH)[0]
    if len(frames):
        v = enc.vision.encode(frames)
        out["vision"] = v.reshape(-1, v.shape[-1])
        crops = [f[y:y + h, x:x + w] for f in frames for (x, y, w, h) in enc.face_detector.detect(f)]
        if crops:
            out["face"] = enc.face.encode(crops)
    out["audio"] = audio_features(audio)
    return out


def decode_clip(path: str, start_s: float, end_s: float, n_frames: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames (uint8 [n, size, size, 3]) evenly spaced in [start, end) and 16 kHz mono audio, with PyAV.
    Used for labelled training clips only; the pipeline's own decode pass is transforms/decode.py."""
    import av
    import cv2
    times = start_s + (np.arange(n_frames) + 0.5) * (end_s - start_s) / n_frames
    frames: list[np.ndarray] = []
    with av.open(path) as c:
        if c.streams.video:
            vs = c.streams.video[0]
            c.seek(int(max(0.0, start_s - 1) / vs.time_base), stream=vs, backward=True)
            want = list(times)
            for fr in _frames(c, vs):
                t = float(fr.pts * vs.time_base) if fr.pts is not None else 0.0
                while want and t >= want[0]:
                    want.pop(0)
                    frames.append(cv2.resize(fr.to_ndarray(format="rgb24"), (size, size), interpolation=cv2.INTER_AREA))
                if not want or t > end_s:
                    break
    audio = np.zeros(0, np.float32)
    with av.open(path) as c:
        if c.streams.audio:
            st = c.streams.audio[0]
            rs = av.AudioResampler(format="flt", layout="mono", rate=16000)
            c.seek(int(max(0.0, start_s) * 1e6), backward=True)
            chunks = []
            for fr in _frames(c, st):
                t0 = float(fr.pts * st.time_base) if fr.pts is not None else 0.0
                if t0 > end_s:
                    break
                for r in rs.resample(fr):
                    a = r.to_ndarray().reshape(-1)
                    lo = int(max(0.0, start_s - t0) * 16000)
                    hi = int(max(0.0, end_s - t0) * 16000)
                    chunks.append(a[lo:hi])
            if chunks:
                audio = np.concatenate(chunks).astype(np.float32)
    return (np.stack(frames) if frames else np.zeros((0, size, size, 3), np.uint8)), audio


def _frames(container, stream):
    """Decoded frames of one stream; a corrupt packet (common right after a seek in MPEG-PS) is skipped."""
    import av
    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.error.InvalidDataError:
            continue


def feature_dims(enc: LazyEncoders | None = None) -> dict[str, int]:
    """The input widths the head is built for (the encoders' dims)."""
    from model.encoders.audio import AUDIO_DIM
    enc = enc or LazyEncoders()
    return {"text": enc.text.dim, "vision": enc.vision.dim if "vision" in enc._cache else VISION_DIM,
            "face": enc.face.dim, "audio": AUDIO_DIM}


VISION_DIM = 384  # ViT-S/14 width (contracts.md); read from the encoder when it is loaded
