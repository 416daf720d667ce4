"""Audio as the models hear it: one channel of float32 samples in [-1, 1], at a chosen rate."""
from __future__ import annotations

import av
import numpy as np


class MonoResampler:
    """av.AudioResampler to one channel whose downmix keeps a centred voice at its level. FFmpeg normalises its
    downmix matrix for integer samples, (L + R) / 2 for stereo, as faster-whisper decodes and as the mono training
    sets sound; for float samples it does not: (L + R) x 0.707, 3 dB louder, peaks past full scale (1.47 on the
    Sintel trailer), which moved Silero VAD's reading of lines under music (docs/asr.md)."""

    def __init__(self, rate: int):
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=int(rate))

    def resample(self, frame) -> list[np.ndarray]:
        """The samples of `frame` (None: flush), as float32 arrays."""
        return [f.to_ndarray().reshape(-1).astype(np.float32) / 32768.0 for f in self._resampler.resample(frame)]
