"""Audio as the models hear it: one channel of float32 samples in [-1, 1], at a chosen rate."""
from __future__ import annotations

import av
import numpy as np

# How each named channel of a track with more than two folds into one (transforms.mono.fold): as ITU-R BS.775
# folds it to stereo (the centre and the surrounds into each side at -3 dB, the LFE left out), then (Lo + Ro) / 2
# as a stereo track is mixed: a voice on the centre channel reaches mono at -3 dB, as the same master's stereo mix
# gives it. FFmpeg's own matrix, normalised to its sum, gave it at -10.7 dB in 5.1 and -12.9 dB in 7.1 before
# 2026-12-06, below the level the speech classifier reads quiet voices right at (docs/models.md).
HALF, THIRD_DB = 0.5, 0.5 ** 0.5
FOLD = {**dict.fromkeys(("FL", "FR", "FLC", "FRC", "WL", "WR"), HALF),
        **dict.fromkeys(("FC", "BC", "TFC", "TC", "TBC"), THIRD_DB),
        **dict.fromkeys(("BL", "BR", "SL", "SR", "SDL", "SDR", "TFL", "TFR", "TBL", "TBR"), HALF * THIRD_DB),
        "LFE": 0.0, "LFE2": 0.0}
# A stereo track whose channels cancel when summed (one wired inverted in a transfer: L = -R) is heard as their
# difference: its (L + R) / 2 is silence, which gave a film no line and no voice without a word before 2026-12-06.
# A frame is taken as cancelled when its sum holds under CANCELLED of its difference's energy (a real stereo mix
# with anything centred is nowhere near), and only above SILENT (mean square, about -80 dBFS).
CANCELLED, SILENT = 0.01, 1e-8
# Tracks that do not name their channels (PCM in Matroska, a WAV without a channel mask) are in the order FFmpeg
# takes for that many: the WAV / SMPTE order of the film formats (L R C LFE Ls Rs ...), as FFmpeg's downmix reads them.
UNNAMED = {5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


# No film's sound has more channels than 22.2's 24 (FFmpeg's largest layout); a damaged AAC frame can say 28, and
# reading its samples may crash the process: such a frame is left out as malformed
MAX_CHANNELS = 24


def whole(frame) -> bool:
    """Whether a decoded frame's planes are what its format, layout and sample count say: one plane per channel
    (planar) or one for all (packed), each long enough. A damaged stream can give a frame that says otherwise (a
    damaged AAC frame read as 7.1 with nine planes, the last pointing nowhere); reading its samples crashed the
    process (SIGSEGV in numpy's vstack, the whole run lost) before 2026-12-07, so such a frame is left out: the next
    frame's time places the sound after it (transforms.decode)."""
    n, size = len(frame.layout.channels), frame.samples * frame.format.bytes
    planes = frame.planes
    if frame.format.is_planar:
        return len(planes) == n and all(p.buffer_size >= size for p in planes)
    return len(planes) == 1 and planes[0].buffer_size >= size * n


def channels(frame) -> np.ndarray:
    """(channels, samples) float32 in [-1, 1] of an audio frame, whatever its sample format."""
    x = frame.to_ndarray()
    if not frame.format.is_planar:
        x = x.reshape(-1, len(frame.layout.channels)).T
    if x.dtype.kind == "f":
        return x.astype(np.float32, copy=False)
    if x.dtype == np.uint8:
        return (x.astype(np.float32) - 128.0) / 128.0
    return (x / float(np.iinfo(x.dtype).max + 1)).astype(np.float32)


def fold(frame) -> tuple[np.ndarray | None, bool]:
    """(the frame's channels folded to one, whether they cancelled), or (None, False) for a layout this does not
    fold (one channel; unnamed channels: FFmpeg's downmix)."""
    names = [c.name for c in frame.layout.channels]
    if len(names) in UNNAMED and all(n == "NONE" for n in names):
        names = [c.name for c in av.AudioLayout(UNNAMED[len(names)]).channels]
    if len(names) < 2 or not all(n in FOLD for n in names):
        return None, False
    x = channels(frame)
    if len(names) == 2:
        total, apart = (x[0] + x[1]) * HALF, (x[0] - x[1]) * HALF
        side = float(np.mean(apart.astype(np.float64) ** 2)) if apart.size else 0.0
        if side > SILENT and float(np.mean(total.astype(np.float64) ** 2)) < CANCELLED * side:
            return apart, True
        return total, False
    return np.clip(np.asarray([FOLD[n] for n in names], np.float32) @ x, -1.0, 1.0), False


class MonoResampler:
    """av.AudioResampler to one channel whose downmix keeps a centred voice at its level. FFmpeg normalises its
    downmix matrix for integer samples, (L + R) / 2 for stereo, as faster-whisper decodes and as the mono training
    sets sound; for float samples it does not: (L + R) x 0.707, 3 dB louder, peaks past full scale (1.47 on the
    Sintel trailer), which moved Silero VAD's reading of lines under music (docs/asr.md). Named layouts are folded
    here (fold: FOLD's matrix, cancelled stereo) and the one channel resampled; `cancelled_s` counts the seconds of
    stereo heard as its channels' difference."""

    def __init__(self, rate: int):
        self.rate = int(rate)
        self._resampler: av.AudioResampler | None = None
        self._input = None  # (sample format, channel layout, rate) the resampler was set up for
        self.cancelled_s = 0.0
        self.malformed = 0  # frames left out because their planes are not what they say (whole)

    def resample(self, frame) -> list[np.ndarray]:
        """The samples of `frame` (None: flush), as float32 arrays. A stream whose sample format, layout or rate
        changes (a broadcast capture: a programme in 5.1, its adverts in stereo) gets a resampler for the new
        one, after the old one's tail: FFmpeg's refuses frames it was not set up for, which ended the film's sound
        at the first change before 2026-12-05."""
        out = []
        if frame is not None and (not whole(frame) or len(frame.layout.channels) > MAX_CHANNELS):
            self.malformed += 1
            return out
        if frame is not None:
            frame = self._folded(frame)
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
        try:
            out += self._resampler.resample(frame)
        except (av.error.FFmpegError, ValueError):
            if frame is None:
                raise
            # a frame FFmpeg cannot convert (a damaged one whose layout is nonsense) is left out like a malformed
            # one, and the next gets a resampler of its own: before 2026-12-07 it ended the film's sound there
            self.malformed += 1
            self._resampler = None
        return [f.to_ndarray().reshape(-1).astype(np.float32) / 32768.0 for f in out]

    def _folded(self, frame):
        """`frame` as one channel of float samples at its own rate where fold folds its layout, else as it is."""
        mono, cancelled = fold(frame)
        if mono is None:
            return frame
        if cancelled:
            self.cancelled_s += mono.size / frame.sample_rate
        one = av.AudioFrame.from_ndarray(np.ascontiguousarray(mono, np.float32)[None], format="fltp", layout="mono")
        one.sample_rate, one.pts, one.time_base = frame.sample_rate, frame.pts, frame.time_base
        return one
