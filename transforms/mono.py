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
        self.rate = int(rate)
        self._resampler: av.AudioResampler | None = None
        self._input = None  # (sample format, channel layout, rate) the resampler was set up for

    def resample(self, frame) -> list[np.ndarray]:
        """The samples of `frame` (None: flush), as float32 arrays. A stream whose sample format, layout or rate
        changes (a broadcast capture: a programme in 5.1, its adverts in stereo) gets a resampler for the new
        one, after the old one's tail: FFmpeg's refuses frames it was not set up for, which ended the film's sound
        at the first change before 2026-12-05."""
        out = []
        if frame is not None:
            signature = (frame.format.name, frame.layout.name, frame.sample_rate)
            if self._resampler is not None and signature != self._input:
                out += self._resampler.resample(None)
                self._resampler = None
            if frame.format.name == "s16" and len(frame.layout.channels) == 1 and frame.sample_rate == self.rate:
                # Already what is wanted: its samples as they are. FFmpeg's resampler would pass the frame through
                # and leave it unusable to a second resampler (the pass's speech-recognition copy at 16 kHz), which
                # ended the sound of mono 16-bit films at 48 kHz before 2026-12-05.
                self._input = signature
                return [f.to_ndarray().reshape(-1).astype(np.float32) / 32768.0 for f in out + [frame]]
            if self._resampler is None:
                self._resampler = av.AudioResampler(format="s16", layout="mono", rate=self.rate)
                self._input = signature
        elif self._resampler is None:
            return []
        out += self._resampler.resample(frame)
        return [f.to_ndarray().reshape(-1).astype(np.float32) / 32768.0 for f in out]
