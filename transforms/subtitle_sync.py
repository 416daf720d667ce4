"""A sidecar's lines put back in step with the film's speech.

Subtitle files are often timed for another version of the film: a PAL conform runs at 25 fps where the master
runs at 23.976 (every line drifts, 4 % of the time into the film), a version with another logo or intro moves
every line by seconds. Their lines then sit on the wrong clips: the text the head reads, and its evidence, belong
to another moment. Here the film's speech is heard (Silero VAD) in three 150 s samples, and the lines are kept as
they are unless one of the usual frame-rate ratios with an offset under 30 s (up to 29.7 s: a best offset at the
edge of the search is not trusted) makes them follow the speech far better (the phi correlation of 'a line is
shown' with 'a voice is heard', over the samples). A film without clear speech (music over every line, a silent
film) keeps its timing: nothing is changed on weak evidence. Lines that follow the speech as given in one sample
and only shifted in another (a sidecar for a cut with a scene removed or added), or in none (another film's), keep
their timing, with a row that says so.
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
MIN_SAMPLE_LINES = 8  # lines judged in one sample for it to count on its own (a timing right in part of the film)
MIN_SPLIT_S = 1.0  # samples whose best shifts differ less are in step with each other
# as given, lines agreeing less than this with speech VAD hears in this share of the windows or more do not follow
# it: measured 0.54-0.64 for right sidecars on four test films (quiet to loud music; 0.17-0.52 timed with lead-in,
# linger and merged lines), -0.07..0.08 for another film's and for one 30-60 s off
UNRELATED_PHI, MIN_HEARD = 0.15, 0.05
FAR_S = 3.0  # shifts this far off give the agreement of lines that do not follow the speech


def _inside(lines: np.ndarray, scale: float, t0: float, length_s: float) -> np.ndarray:
    """Lines that stay wholly inside a sample at every offset tried: scaled, they lie in its middle part."""
    a, b = lines[:, 0] * scale, lines[:, 1] * scale
    return (a >= t0 + MAX_OFFSET_S) & (b <= t0 + length_s - MAX_OFFSET_S)


def _merged(lines: np.ndarray) -> np.ndarray:
    """[m, 2] the stretches in which at least one of the lines is shown: overlapping lines joined."""
    if len(lines) < 2:
        return lines
    lines = lines[np.argsort(lines[:, 0], kind="stable")]
    reach = np.maximum.accumulate(lines[:, 1])
    starts = np.concatenate([[True], lines[1:, 0] > reach[:-1]])  # a new stretch: past the end of all before it
    first = np.flatnonzero(starts)
    last = np.concatenate([first[1:], [len(lines)]]) - 1
    return np.stack([lines[first, 0], reach[last]], axis=1)


@dataclasses.dataclass
class _Counts:
    """One sample's tally, per offset tried: windows in which a line is shown, shown and heard; windows heard, in
    all, and the lines judged."""
    start_s: float
    length_s: float
    shown: np.ndarray
    both: np.ndarray
    heard: float
    total: float
    used: int


def _counts(lines: np.ndarray, speech: Sequence[tuple[float, np.ndarray]], scale: float, offsets: np.ndarray
            ) -> list[_Counts]:
    """Per sample of speech, the tally of 'a line is shown' against 'VAD hears speech' at each offset."""
    from model.asr import VAD_WINDOW_S
    out = []
    for t0, mask in speech:
        n = len(mask)
        chosen = lines[_inside(lines, scale, t0, n * VAD_WINDOW_S)]
        # before 2026-12-06 each line's windows were added up, so overlapping lines (a bilingual file: two events
        # per line) counted a window twice, 'shown' passed 100 % and the agreement ran into the thousands
        spans = _merged(chosen)
        cum = np.concatenate([[0.0], np.cumsum(mask, dtype=np.float64)])
        ia = np.clip(((spans[None, :, 0] * scale + offsets[:, None]) - t0) / VAD_WINDOW_S, 0, n).astype(int)
        ib = np.clip(((spans[None, :, 1] * scale + offsets[:, None]) - t0) / VAD_WINDOW_S, 0, n).astype(int)
        out.append(_Counts(t0, n * VAD_WINDOW_S, (ib - ia).sum(axis=1).astype(np.float64),
                           (cum[ib] - cum[ia]).sum(axis=1), float(cum[-1]), float(n), len(chosen)))
    return out


def _phi_of(counts: Sequence[_Counts], n_offsets: int) -> tuple[np.ndarray, int]:
    """(phi per offset, lines judged) of these samples' tallies pooled."""
    both, shown = np.zeros(n_offsets), np.zeros(n_offsets)
    heard = total = 0.0
    for c in counts:
        both, shown, heard, total = both + c.both, shown + c.shown, heard + c.heard, total + c.total
    used = sum(c.used for c in counts)
    if not used or not total:
        return np.zeros(n_offsets), 0
    p_both, p_shown, p_heard = both / total, shown / total, heard / total
    spread = np.sqrt(p_shown * (1 - p_shown) * p_heard * (1 - p_heard))
    # no line shown, or shown or heard throughout: no evidence either way (a correlation is within -1..1)
    ok = spread > 1e-9
    return np.where(ok, np.clip((p_both - p_shown * p_heard) / np.where(ok, spread, 1.0), -1.0, 1.0), 0.0), used


def phi(lines: np.ndarray, speech: Sequence[tuple[float, np.ndarray]], scale: float, offsets: np.ndarray
        ) -> tuple[np.ndarray, int]:
    """(per offset: phi correlation over the samples of 'one of the lines is shown' with 'VAD hears speech', the
    number of lines used). lines: [n, 2] seconds, moved to scale * t + offset; speech: [(start_s, bool per 32 ms
    window)]. Only lines that no offset moves out of a sample count, so no timing looks better by pushing lines
    out of the samples."""
    return _phi_of(_counts(lines, speech, scale, offsets), len(offsets))


def _clock(seconds: float) -> str:
    """hh:mm:ss."""
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _places(samples: Sequence[_Counts]) -> str:
    """'00:18:00 and 00:45:00': the samples' middles."""
    names = [_clock(c.start_s + c.length_s / 2) for c in samples]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _in_part(given: list[_Counts], fit: Optional[list[_Counts]], k: int, shifts: list[_Counts],
             offsets: np.ndarray) -> Optional[str]:
    """A row when the timing as given follows the speech in some samples and not in others, where a shift does
    (a sidecar for a cut with a scene removed or added): one timing for the whole film would move the lines that
    were right. fit: the tallies of the retime found (k its offset), None when none was; shifts: scale 1. A retime
    that does about as well in every sample as the sample's own best (an offset, a frame-rate drift) stands."""
    judged = [i for i, g in enumerate(given) if g.used >= MIN_SAMPLE_LINES]
    if fit is not None:
        own = [_phi_of([fit[i]], len(offsets))[0] for i in judged]  # each sample's scores at the retime's scale
        if all(scores[k] >= scores.max() - MIN_GAIN for scores in own):
            return None
    right, off = [], []  # (sample, its best shift)
    for i in judged:
        now = float(_phi_of([given[i]], 1)[0][0])
        scores = _phi_of([shifts[i]], len(offsets))[0]
        j = int(np.argmax(scores))
        if now >= MIN_PHI and scores[j] - now < MIN_GAIN:
            right.append((given[i], float(offsets[j])))
        elif scores[j] >= MIN_PHI and scores[j] - now >= MIN_GAIN and abs(offsets[j]) < MAX_OFFSET_S - 2 * STEP_S:
            off.append((given[i], float(offsets[j])))
    # a fraction of a second between samples is VAD's noise or a slight drift, not a scene cut
    off = [(g, o) for g, o in off if all(abs(o - p) >= MIN_SPLIT_S for _, p in right)]
    if not right or not off:
        return None
    return (f"lines follow the film's speech around {_places([g for g, _ in right])} but not around "
            f"{_places([g for g, _ in off])} (best shifted there {', '.join(f'{o:+.1f} s' for _, o in off)}): "
            f"a sidecar for another cut? timing kept")


def resync(cues: list[Cue], speech: Sequence[tuple[float, np.ndarray]]) -> tuple[list[Cue], Optional[str]]:
    """(cues, None) when they follow the speech or the evidence is weak; else (retimed cues, what was done), or
    (cues, why they were kept though they do not follow the speech, in part or at all)."""
    if len(cues) < MIN_LINES or not speech:
        return cues, None
    lines = np.array([(c.start_s, c.end_s) for c in cues], np.float64)
    given = _counts(lines, speech, 1.0, np.zeros(1))
    now, used = _phi_of(given, 1)
    if used < MIN_LINES_USED:
        return cues, None
    offsets = np.arange(-MAX_OFFSET_S + STEP_S, MAX_OFFSET_S - STEP_S / 2, STEP_S)
    tallies = {r: _counts(lines, speech, r, offsets) for r in SCALES}
    best, scale, k = float(now[0]), 1.0, -1
    for r in SCALES:
        scores, n = _phi_of(tallies[r], len(offsets))
        j = int(np.argmax(scores))
        if n >= MIN_LINES_USED and scores[j] > best + (CLEARLY_BETTER if r != 1.0 else 0.0):
            best, scale, k = float(scores[j]), r, j
    offset = float(offsets[k]) if k >= 0 else 0.0
    found = (best >= MIN_PHI and best - float(now[0]) >= MIN_GAIN and k >= 0
             and abs(offset) < MAX_OFFSET_S - 2 * STEP_S)
    # before 2026-12-06 one shift for all the samples moved a cut's lines that were right along with the others
    partly = _in_part(given, tallies[scale] if found else None, k, tallies[1.0], offsets)
    if partly:
        return cues, partly
    if found:
        return _retimed(cues, scale, offset, float(now[0]), best)
    if _unrelated(float(now[0]), given, _phi_of(tallies[1.0], len(offsets))[0], offsets):
        # before 2026-12-06 such a sidecar (another film's, or more than 30 s off) was used without a row
        return cues, (f"lines do not follow the film's speech (agreement {float(now[0]):.2f}): a sidecar for another "
                      f"film or cut? timing kept")
    return cues, None


def _unrelated(now: float, given: list[_Counts], shifted: np.ndarray, offsets: np.ndarray) -> bool:
    """Whether lines as given do not follow speech that is clearly heard: they agree with it little, and no better
    than when shifted by seconds (lines that fill most of a talky film agree little, but best as given)."""
    heard = sum(c.heard for c in given) / sum(c.total for c in given)
    far = shifted[np.abs(offsets) >= FAR_S]
    return now < UNRELATED_PHI and heard >= MIN_HEARD and now <= float(far.max())


def _retimed(cues: list[Cue], scale: float, offset: float, now: float, best: float) -> tuple[list[Cue], str]:
    """The lines moved to scale * t + offset and the row saying so; lines moved wholly before the film's start are
    dropped (before 2026-12-06 they became empty cues at 0.0)."""
    moved = [dataclasses.replace(c, start_s=max(0.0, c.start_s * scale + offset), end_s=c.end_s * scale + offset)
             for c in cues]
    kept = [c for c in moved if c.end_s > 0.0]
    how = (f"x {scale:.5f} " if scale != 1.0 else "") + f"{offset:+.1f} s"
    lost = len(moved) - len(kept)
    dropped = f"; {lost} line{'s' if lost > 1 else ''} before the film's start dropped" if lost else ""
    return kept, (f"out of step with the film's speech (agreement {now:.2f}); retimed {how}, agreement "
                  f"{best:.2f}{dropped}")


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
