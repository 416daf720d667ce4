"""Score-like beds laid under training speech, as a film mixes its dialogue over music.

The labelled speech sets are acted in quiet rooms; a film's lines mostly have a score or effects under them, and
over music the speech classifier trained on quiet rooms leaned to sadness: on dev voices with the Sintel trailer's
score 6 dB under them it read 0.45 (RAVDESS) and 0.54 (EmoDB) against 0.76 and 0.83 in quiet, 39 % of RAVDESS
labelled sadness. No music corpus ships here, so the beds are made: sustained harmonic chords (a few notes, each a
handful of harmonics with vibrato, changing every 0.8-3 s), sometimes a beat of noise bursts, over a brownish noise
floor. The trailer's score stays out of training: it is what the beds are measured on (benchmarks/short_speech.py).
"""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
BED_VERSION = "beds1"  # the generator below; part of the training features' cache key
INTERVALS = (0, 3, 4, 7, 10, 12, 15, 16, 19, 24)  # semitones above a chord's root


def synthetic_bed(n: int, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """n samples of a score-like bed at unit RMS."""
    t = np.arange(n) / sample_rate
    out = np.zeros(n)
    pos = 0
    while pos < n:  # one chord after another
        end = min(n, pos + int(rng.uniform(0.8, 3.0) * sample_rate))
        tt = t[pos:end] - t[pos]
        root = 55.0 * 2 ** (rng.integers(0, 36) / 12)
        for semitones in rng.choice(INTERVALS, size=rng.integers(2, 5), replace=False):
            pitch = root * 2 ** (semitones / 12) * (1 + 0.006 * np.sin(2 * np.pi * rng.uniform(4.0, 6.5) * tt))
            phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
            rolloff = rng.uniform(0.4, 0.9)
            note = sum(rolloff ** h * np.sin((h + 1) * phase + rng.uniform(0, 2 * np.pi))
                       for h in range(rng.integers(2, 9)))
            envelope = np.minimum(1, tt / rng.uniform(0.05, 0.5)) * np.minimum(1, (tt[-1] - tt + 1e-3) / 0.1)
            out[pos:end] += note * envelope * rng.uniform(0.3, 1.0)
        pos = end
    if rng.random() < 0.4:  # a beat: decaying noise bursts
        beat = int(sample_rate * 60 / rng.uniform(70, 140))
        for b in range(0, n, beat):
            k = min(n - b, int(0.15 * sample_rate))
            out[b:b + k] += (rng.standard_normal(k) * np.exp(-np.arange(k) / (0.03 * sample_rate))
                             * rng.uniform(0.5, 2.0))
    floor = np.cumsum(rng.standard_normal(n))
    floor -= np.convolve(floor, np.ones(400) / 400, "same")  # a brownish hiss, without the walk's drift
    out = _unit(out) + _unit(floor) * rng.uniform(0.02, 0.3)
    return _unit(out).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-9)


def under(speech: np.ndarray, bed: np.ndarray, snr_db: float, speech_rms: float) -> np.ndarray:
    """speech with `bed` (unit RMS, at least as long) mixed under it, snr_db below the speech's RMS."""
    return (speech + bed[:speech.size] * speech_rms * 10 ** (-snr_db / 20)).astype(np.float32)
