"""A sidecar's lines put back in step with the film's speech.

Subtitle files are often timed for another version of the film: a PAL conform runs at 25 fps where the master
runs at 23.976 (every line drifts, 4 % of the time into the film), a version with another logo or intro moves
every line by seconds. Their lines then sit on the wrong clips: the text the head reads, and its evidence, belong
to another moment. Here the film's speech is heard (Silero VAD) in three 150 s samples, and the lines are kept as
they are unless one of the usual frame-rate ratios with an offset of up to 30 s makes them follow the speech far
better (the phi correlation of 'a line is shown' with 'a voice is heard', over the samples). A film without clear
speech (music over every line, a silent film) keeps its timing: nothing is changed on weak evidence.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from transforms.elements import Cue, FilmInfo

FILM_RATE = 24000 / 1001
# line-time -> film-time factors to try, likeliest first (a later one must do clearly better): none, 25 fps
# timings on a 23.976 fps master and back, 24 <-> 23.976, 25 <-> 24
SCALES = (1.0, 25 / FILM_RATE, FILM_RATE / 25, 1001 / 1000, 1000 / 1001, 25 / 24, 24 / 25)
CLEARLY_BETTER = 0.02  # in phi
MAX_OFFSET_S, STEP_S = 30.0, 0.1
SAMPLE_S = 150.0  # a sample's middle 90 s holds the lines judged (an offset of up to 30 s keeps them inside)
MIN_LINES = 20  # a file with fewer lines is not checked
MIN_LINES_USED = 12  # lines inside the samples' middles: fewer say too little
MIN_PHI, MIN_GAIN = 0.3, 0.2  # the new timing must follow the speech this well, and this much better than the old


def _inside(lines: np.ndarray, scale: float, t0: float, length_s: float) -> np.ndarray:
    """Lines that stay wholly inside a sample at every offset tried: scaled, they lie in its middle part."""
    a, b = lines[:, 0] * scale, lines[:, 1] * scale
    return (a >= t0 + MAX_OFFSET_S) & (b <= t0 + length_s - MAX_OFFSET_S)


def phi(lines: np.ndarray, speech: Sequence[tuple[float, np.ndarray]], scale: float, offsets: np.ndarray
        ) -> tuple[np.ndarray, int]:
    """(per offset: phi correlation over the samples of 'one of the lines is shown' with 'VAD hears speech', the
    number of lines used). lines: [n, 2] seconds, moved to scale * t + offset; speech: [(start_s, bool per 32 ms
    window)]. Only lines that no offset moves out of a sample count, so no timing looks better by pushing lines
    out of the samples."""
    from model.asr import VAD_WINDOW_S
    both = shown = np.zeros(len(offsets))
    heard = total = 0.0
    used = 0
    for t0, mask in speech:
        n = len(mask)
        chosen = lines[_inside(lines, scale, t0, n * VAD_WINDOW_S)]
        used += len(chosen)
        cum = np.concatenate([[0.0], np.cumsum(mask, dtype=np.float64)])
        ia = np.clip(((chosen[None, :, 0] * scale + offsets[:, None]) - t0) / VAD_WINDOW_S, 0, n).astype(int)
        ib = np.clip(((chosen[None, :, 1] * scale + offsets[:, None]) - t0) / VAD_WINDOW_S, 0, n).astype(int)
        both = both + (cum[ib] - cum[ia]).sum(axis=1)  # windows shown and heard (overlapping lines are rare)
        shown = shown + (ib - ia).sum(axis=1)
        heard += cum[-1]
        total += n
    if not used or not total:
        return np.zeros(len(offsets)), 0
    p_both, p_shown, p_heard = both / total, shown / total, heard / total
    spread = np.sqrt(np.maximum(p_shown * (1 - p_shown) * p_heard * (1 - p_heard), 1e-12))
    return (p_both - p_shown * p_heard) / spread, used


def resync(cues: list[Cue], speech: Sequence[tuple[float, np.ndarray]]) -> tuple[list[Cue], Optional[str]]:
    """(cues, None) when they follow the speech or the evidence is weak; else (retimed cues, what was done)."""
    if len(cues) < MIN_LINES or not speech:
        return cues, None
    lines = np.array([(c.start_s, c.end_s) for c in cues], np.float64)
    now, used = phi(lines, speech, 1.0, np.zeros(1))
    if used < MIN_LINES_USED:
        return cues, None
    offsets = np.arange(-MAX_OFFSET_S + STEP_S, MAX_OFFSET_S - STEP_S / 2, STEP_S)
    best, scale, offset = float(now[0]), 1.0, 0.0
    for r in SCALES:
        scores, n = phi(lines, speech, r, offsets)
        k = int(np.argmax(scores))
        if n >= MIN_LINES_USED and scores[k] > best + (CLEARLY_BETTER if r != 1.0 else 0.0):
            best, scale, offset = float(scores[k]), r, float(offsets[k])
    if best < MIN_PHI or best - float(now[0]) < MIN_GAIN or abs(offset) >= MAX_OFFSET_S - 2 * STEP_S:
        return cues, None
    moved = [dataclasses.replace(c, start_s=max(0.0, c.start_s * scale + offset),
                                 end_s=max(0.0, c.end_s * scale + offset)) for c in cues]
    how = (f"x {scale:.5f} " if scale != 1.0 else "") + f"{offset:+.1f} s"
    return moved, (f"out of step with the film's speech (agreement {float(now[0]):.2f}); retimed {how}, agreement "
                   f"{best:.2f}")


def film_speech(path: str, info: FilmInfo) -> list[tuple[float, np.ndarray]]:
    """[(start_s, bool per 32 ms window: VAD hears speech)] for three SAMPLE_S samples of the film's sound."""
    from model.asr import VAD_SPEECH_P, vad_probabilities
    from transforms.probe import film_audio_stream, open_container, sample_audio
    if not info.has_audio:
        return []
    with open_container(path) as container:
        track = film_audio_stream(container, info)
        samples = sample_audio(container, [track], info.duration_s, SAMPLE_S)[track]
    return [(t0, vad_probabilities(wave) >= VAD_SPEECH_P) for t0, wave in samples]
