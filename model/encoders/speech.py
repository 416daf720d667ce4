"""Speech emotion: Whisper-base encoder states pooled over the speech, then a small calibrated classifier.

The one path from a 16 kHz mono wave to the classifier's input (`SpeechFeaturizer.features`), used by
training (`training.speech_classifier`) and by serving (`SpeechEmotionEncoder.encode`), so both see the
same numbers for the same clip:

1. Trim leading/trailing silence (20 ms frames more than TRIM_DB below the loudest one), keeping a
   TRIM_MARGIN_S margin. Acted-speech clips start with up to a second of room noise; film clips too.
2. Log-mel with Whisper's own feature extractor, over the wave zero-padded to a whole BUCKET_S bucket
   (the padding is silence, as in Whisper's 30 s padding, so the per-clip log-mel normalisation is
   Whisper's). CTranslate2 accepts fewer than 3000 mel frames (the encoder's positional table is sliced),
   so a 2.4 s clip costs a 3 s encoder pass, not a 30 s one (37 ms vs 951 ms on 1 thread; see
   benchmarks/results/speech_scene_branch.md). Waves longer than 30 s run in 30 s windows.
3. The encoder's last-layer states (one per 20 ms) over the real (unpadded) part: mean and standard
   deviation -> 2 x 512 values; optionally with the mean and standard deviation of the project's prosody
   frames (`model.encoders.audio.audio_features`, 2 x 32).

The classifier is a standardiser + linear layer or one-hidden-layer MLP (an ensemble of seeds, logits
averaged; parameters stored in fp16), divided by a temperature fitted on held-out speakers, so `encode`
returns calibrated logits in EMOTIONS order. Pure numpy/PyTorch plus CTranslate2 (through faster-whisper's
model object); no Beam.
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from schemas.labels import EMOTIONS

from ..files import written_atomically  # noqa: E402
from .audio import SAMPLE_RATE  # noqa: E402 - the one definition
# TRIM_DB and BUCKET_S (inputs padded to whole seconds: deterministic per clip, batchable) name the features,
# so they are defined with the encoders' versions
from .versions import BUCKET_S, FEATURIZER_VERSION, SPEECH_GATE, SPEECH_WEIGHTS, TRIM_DB, speech_version  # noqa: E402,F401

HOP = 160  # Whisper's mel hop (10 ms)
STATE_HOP = 2 * HOP  # the encoder's conv stride 2: one state per 20 ms
WINDOW_FRAMES = 3000  # Whisper's 30 s window, the most the encoder takes
MIN_S = 1.0
TRIM_MARGIN_S = 0.1
STATE_DIM = 512  # Whisper base
# The Whisper encoder's arithmetic for the speech branch on every device: int8 weights, float32 activations, as the
# classifier's features were computed (on CPU "int8" is this exactly). CTranslate2's CUDA default, float16, moved
# RAVDESS dev tokens by up to 0.43 and 6 of 112 labels (measured with float32 on CPU; 2026-12-06). Transcription
# keeps the device's fast type: its words, not its states, are what the pipeline reads.
COMPUTE_TYPE = "int8_float32"
DEFAULT_WEIGHTS = SPEECH_WEIGHTS


def trim_silence(wave: np.ndarray, top_db: float = TRIM_DB, margin_s: float = TRIM_MARGIN_S) -> np.ndarray:
    """The wave from its first to its last 20 ms frame within `top_db` of the loudest (plus a margin).
    A silent or very short wave comes back unchanged."""
    wave = np.asarray(wave, np.float32).reshape(-1)
    n = len(wave) // STATE_HOP
    if n < 2:
        return wave
    rms = np.sqrt(np.mean(wave[: n * STATE_HOP].reshape(n, STATE_HOP) ** 2, axis=1) + 1e-12)
    db = 20 * np.log10(rms + 1e-8)
    if rms.max() < 1e-4:
        return wave
    loud = np.flatnonzero(db > db.max() - top_db)
    margin = int(margin_s * SAMPLE_RATE)
    start = max(0, loud[0] * STATE_HOP - margin)
    end = min(len(wave), (loud[-1] + 1) * STATE_HOP + margin)
    return wave[start:end]


class SpeechFeaturizer:
    """Wave -> pooled Whisper encoder states (+ optional prosody statistics). `whisper` is a
    faster_whisper.WhisperModel (or a model.asr.AsrModel)."""

    def __init__(self, whisper, name: str = "whisper-base"):
        self.whisper = getattr(whisper, "whisper", whisper)
        self.fe = self.whisper.feature_extractor
        self.name = getattr(whisper, "name", name)
        self.version = f"{self.name}-{FEATURIZER_VERSION}"

    # ------------------------------------------------------------ encoder states
    def _mel(self, wave: np.ndarray) -> tuple[np.ndarray, int]:
        """(log-mel [80, T] with T a whole bucket, number of real frames)."""
        bucket = int(BUCKET_S * SAMPLE_RATE)
        n = max(len(wave), int(MIN_S * SAMPLE_RATE))
        padded_len = int(math.ceil(n / bucket) * bucket)
        padded = np.zeros(padded_len, np.float32)
        padded[: len(wave)] = wave
        mel = self.fe(padded, padding=0)  # [80, padded_len / HOP]
        frames = padded_len // HOP
        mel = mel[:, :frames]
        if mel.shape[1] < frames:
            mel = np.pad(mel, ((0, 0), (0, frames - mel.shape[1])), mode="edge")
        return np.ascontiguousarray(mel, np.float32), max(1, int(math.ceil(len(wave) / HOP)))

    def _encode_mels(self, mels: np.ndarray) -> np.ndarray:
        import ctranslate2

        out = self.whisper.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mels)),
                                        to_cpu=True)
        return np.asarray(out, dtype=np.float32)

    def states(self, wave: np.ndarray) -> np.ndarray:
        """Encoder states [S, 512] for the real part of a (trimmed) wave; 30 s windows for long waves."""
        wave = np.asarray(wave, np.float32).reshape(-1)
        win = WINDOW_FRAMES * HOP
        pieces = [wave[i:i + win] for i in range(0, max(len(wave), 1), win)] or [wave]
        out = []
        for piece in pieces:
            mel, real = self._mel(piece)
            s = self._encode_mels(mel[None])[0]
            out.append(s[: max(1, int(math.ceil(real / 2)))])
        return np.concatenate(out, axis=0)

    def features(self, waves: Sequence[np.ndarray], prosody: bool = False) -> np.ndarray:
        """[n, 1024] (or [n, 1088] with prosody) float32 features, one row per wave."""
        rows = []
        for wave in waves:
            w = trim_silence(wave)
            s = self.states(w)
            row = [s.mean(0), s.std(0)]
            if prosody:
                row += list(prosody_stats(w))
            rows.append(np.concatenate(row).astype(np.float32))
        width = 2 * STATE_DIM + (2 * _prosody_dim() if prosody else 0)
        return np.stack(rows) if rows else np.zeros((0, width), np.float32)


def _prosody_dim() -> int:
    from .audio import AUDIO_DIM
    return AUDIO_DIM


def prosody_stats(wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the project's prosody frames (zeros for a wave under 100 ms)."""
    from .audio import AUDIO_DIM, audio_features

    f = audio_features(wave)
    if len(f) == 0:
        return np.zeros(AUDIO_DIM, np.float32), np.zeros(AUDIO_DIM, np.float32)
    return f.mean(0), f.std(0)


# ---------------------------------------------------------------- classifier
@dataclasses.dataclass(frozen=True)
class HeadConfig:
    in_dim: int
    hidden: int = 0  # 0 = linear
    dropout: float = 0.0
    prosody: bool = False
    members: int = 1  # an ensemble of independently seeded nets; their logits are averaged


def _net(cfg: HeadConfig) -> nn.Module:
    n = len(EMOTIONS)
    if cfg.hidden:
        return nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cfg.in_dim, cfg.hidden), nn.GELU(),
                             nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, n))
    return nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cfg.in_dim, n))


class SpeechHead(nn.Module):
    """Standardise -> mean over members of (Linear | Linear-GELU-Dropout-Linear) -> / temperature."""

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("mean", torch.zeros(cfg.in_dim))
        self.register_buffer("scale", torch.ones(cfg.in_dim))
        self.register_buffer("temperature", torch.ones(()))
        self.nets = nn.ModuleList(_net(cfg) for _ in range(max(1, cfg.members)))

    @property
    def net(self) -> nn.Module:
        """The first member (the one a single-member head trains)."""
        return self.nets[0]

    def raw_logits(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.scale
        return torch.stack([net(z) for net in self.nets]).mean(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.raw_logits(x) / self.temperature


def round_to_fp16(head: nn.Module) -> nn.Module:
    """Round the nets' parameters to fp16 values in place (they are stored in fp16: half the file);
    call before calibrating so the measured head is exactly the shipped one."""
    with torch.no_grad():
        for name, p in head.named_parameters():
            p.copy_(p.half().float())
    return head


def save_head(head: SpeechHead, path: str | os.PathLike, meta: Optional[dict] = None) -> None:
    """Parameters in fp16 (see round_to_fp16), the standardiser and temperature in fp32."""
    params = {n for n, _ in head.named_parameters()}
    state = {k: (v.half() if k in params else v) for k, v in head.state_dict().items()}
    with written_atomically(path) as tmp:
        torch.save({"config": dataclasses.asdict(head.cfg), "state_dict": state,
                    "featurizer": FEATURIZER_VERSION, "labels": list(EMOTIONS), "meta": meta or {}}, tmp)


def load_head(path: str | os.PathLike = DEFAULT_WEIGHTS) -> tuple[SpeechHead, dict]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if list(ckpt.get("labels", EMOTIONS)) != list(EMOTIONS):
        raise ValueError(f"{path}: labels {ckpt.get('labels')} are not {EMOTIONS}")
    if ckpt.get("featurizer") != FEATURIZER_VERSION:
        raise ValueError(f"{path} was trained on features {ckpt.get('featurizer')!r}, this code makes "
                         f"{FEATURIZER_VERSION!r}")
    head = SpeechHead(HeadConfig(**ckpt["config"]))
    head.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()})
    return head.eval(), ckpt


class SpeechEmotionEncoder:
    """16 kHz mono waves -> calibrated 7-way logits (EMOTIONS order)."""

    def __init__(self, featurizer: SpeechFeaturizer, head: SpeechHead, weights_digest: str):
        self.featurizer = featurizer
        self.head = head.eval()
        # the gate that decides which clips reach it (model.featurize.has_speech) changes its tokens too
        self.version = f"speech-emotion-{weights_digest[:10]}+{featurizer.version}+{SPEECH_GATE}"

    @torch.inference_mode()
    def encode(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        x = self.featurizer.features(waves, prosody=self.head.cfg.prosody)
        if not len(x):
            return np.zeros((0, len(EMOTIONS)), np.float32)
        return self.head(torch.from_numpy(x)).numpy().astype(np.float32)

    def predict_proba(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        from scipy.special import softmax
        return softmax(self.encode(waves), axis=1)


def load_speech_emotion_encoder(weights: str | os.PathLike | None = None, asr_model: Optional[str] = None,
                                cpu_threads: int = 1, device: str = "cpu", whisper=None) -> SpeechEmotionEncoder:
    """The shipped classifier (model/weights/speech_emotion.pt) on the packaged Whisper base encoder.
    Pass `whisper` (a loaded WhisperModel / AsrModel) to share the ASR pass's model in one worker."""
    from ._cache import file_digest

    path = Path(weights) if weights else DEFAULT_WEIGHTS
    head, _ = load_head(path)
    if whisper is None:
        from ..asr import load_asr_model
        whisper = load_asr_model(asr_model, device=device, cpu_threads=cpu_threads, compute_type=COMPUTE_TYPE)
    return SpeechEmotionEncoder(SpeechFeaturizer(whisper), head, file_digest(path))
