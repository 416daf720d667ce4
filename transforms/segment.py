"""Clip planning: pure functions from cues / cut times / durations to ClipSpecs.

Three strategies (--segment):
  subtitle  one clip per dialogue cue; very short cues merged with their neighbours, long ones split; stretches
            without dialogue become window clips with no text, so the whole film is covered.
  window    fixed length and hop.
  shot      clips between shot cuts (found during the decode pass), long shots split.
Clip indexes are given by `reindex`. A clip's dialogue context is set when it is emitted, over the clips before it
(`dialogue_context`, in transforms.decode.StreamingPlanner.with_dialogue).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Optional, Sequence

from transforms.elements import ClipSpec, Cue
from transforms.language import clip_language, reads

EPS = 1e-6


def split_span(start: float, end: float, max_len: float) -> list[tuple[float, float]]:
    """[start, end) cut into the fewest equal pieces no longer than max_len."""
    if end - start <= max_len + EPS:
        return [(start, end)]
    n = math.ceil((end - start) / max_len - EPS)
    step = (end - start) / n
    return [(start + i * step, end if i == n - 1 else start + (i + 1) * step) for i in range(n)]


def _window_clips(start: float, end: float, window_s: float, max_clip_s: float = math.inf,
                  source: str = "window") -> list[ClipSpec]:
    """Cover a stretch with about window_s-long text-less clips (equal lengths, no sliver at the end), none longer than
    max_clip_s (rounding made windows up to 1.5 x window_s: past --max_clip_s when --window_s is near it)."""
    if end - start <= EPS:
        return []
    n = max(1, round((end - start) / window_s), math.ceil((end - start) / max_clip_s - EPS))
    step = (end - start) / n
    return [ClipSpec(0, start + i * step, end if i == n - 1 else start + (i + 1) * step, source) for i in range(n)]


def plan_windows(duration_s: float, window_s: float, hop_s: Optional[float] = None, min_clip_s: float = 1.0,
                 start_s: float = 0.0) -> list[ClipSpec]:
    """Fixed windows of window_s every hop_s; a tail shorter than min_clip_s joins the window before it."""
    hop = hop_s or window_s
    if hop <= 0 or window_s <= 0:
        raise ValueError("window_s and hop_s must be positive")
    specs: list[ClipSpec] = []
    t = start_s
    while t < duration_s - EPS:
        end = min(t + window_s, duration_s)
        if specs and end - t < min_clip_s:  # (overlapping windows too: [7.0, 7.6) after [3.5, 7.5), before 2026-12-06)
            specs[-1] = dataclasses.replace(specs[-1], end_s=end)
        else:
            specs.append(ClipSpec(0, t, end, "window"))
        if end >= duration_s - EPS:
            break
        t += hop
    return reindex(specs)


def _group_cues(cues: Sequence[Cue], min_clip_s: float, max_clip_s: float, merge_gap_s: float
                ) -> list[tuple[float, float, list[Cue]]]:
    """Consecutive cues merged while one side is shorter than min_clip_s (or they overlap) and it stays short."""
    groups: list[tuple[float, float, list[Cue]]] = []
    for cue in cues:
        if groups:
            g_start, g_end, members = groups[-1]
            short = (g_end - g_start) < min_clip_s or (cue.end_s - cue.start_s) < min_clip_s
            close = cue.start_s - g_end <= merge_gap_s
            overlapping = cue.start_s < g_end - EPS
            fits = max(cue.end_s, g_end) - g_start <= max_clip_s + EPS
            if fits and ((short and close) or overlapping):
                groups[-1] = (g_start, max(g_end, cue.end_s), members + [cue])
                continue
        groups.append((cue.start_s, cue.end_s, [cue]))
    return groups


# Which words each clip of a cut line reads: part of the config hash of subtitle plans (a change redoes a
# catalogue's films). 2 (2026-12-04): by time, the one rule of windows and shots (line_units + assign_words); 1 shared
# a subtitle's words out by count, and gave every piece the whole line when it had fewer words than pieces; a line
# said inside a long one joined its last piece, wherever it was said.
PIECE_TEXT_RULE = "2"


def cue_words(cue: Cue) -> tuple[tuple[str, float, float], ...]:
    """A cue's words with their times: a recognised cue's own; a subtitle's spread evenly over its span. Whisper's
    form: a leading space. How a line longer than --max_clip_s is read (line_units)."""
    if cue.words:
        return cue.words
    words = cue.text.split()
    step = (cue.end_s - cue.start_s) / max(len(words), 1)
    return tuple((" " + w, cue.start_s + i * step, cue.start_s + (i + 1) * step) for i, w in enumerate(words))


def line_units(cue: Cue, max_len: float) -> tuple[tuple[str, float, float], ...]:
    """What a clip reads a line by, placed by its midpoint (transcribe.assign_words): the whole line, over its span,
    when it is no longer than max_len (--max_clip_s), so a clip cut across it (a window, a shot) does not read a
    fragment: on MELD dev the shipped head reads lines cut at a word at 0.43-0.46 weighted F1 against 0.56 whole,
    more sure of them (ECE 0.10-0.15 against 0.05); else its words (cue_words), as the plan cuts such a line into
    pieces. The one rule for the pieces of a long line (plan_subtitles) and for windows and shots
    (transforms.decode._clip_text)."""
    if cue.end_s - cue.start_s <= max_len + EPS:
        return ((" " + cue.text, cue.start_s, cue.end_s),)
    return cue_words(cue)


def _piece_texts(members: Sequence[Cue], text: str, pieces: list[tuple[float, float]], max_len: float
                 ) -> list[Optional[str]]:
    """Each piece of a cut line gets the words said in it (the outer ends open, so no word is lost); a piece in
    which no word is said has no text, rather than a copy of its neighbour's."""
    if len(pieces) == 1:
        return [text]
    from transforms.transcribe import assign_words  # the ASR engineer's word placement
    spans = [(-math.inf if i == 0 else a, math.inf if i == len(pieces) - 1 else b) for i, (a, b) in enumerate(pieces)]
    return assign_words([w for c in members for w in line_units(c, max_len)], spans)


def _join_words(dialogue: list[ClipSpec], members: Sequence[Cue], max_len: float,
                text_languages: Sequence[str] = ()) -> list[ClipSpec]:
    """A line said inside dialogue clips already planned joins the clip it is said in (line_units: whole in the clip
    that holds its midpoint; each clip open to the next one's start, so nothing is lost), after that clip's own
    words."""
    from transforms.transcribe import assign_words  # the ASR engineer's word placement
    first = members[0].start_s
    k = next((i for i in range(len(dialogue) - 1, -1, -1) if dialogue[i].start_s <= first), 0)
    spans = [(-math.inf if i == k else d.start_s, dialogue[i + 1].start_s if i + 1 < len(dialogue) else math.inf)
             for i, d in enumerate(dialogue[k:], start=k)]
    out = list(dialogue)
    for i, said in enumerate(assign_words([w for c in members for w in line_units(c, max_len)], spans), start=k):
        if said:
            d = out[i]
            out[i] = dataclasses.replace(d, text=f"{d.text} {said}" if d.text else said,
                                         text_source=d.text_source if d.text else members[0].source,
                                         language=clip_language([d.language if d.text else None]
                                                                + [c.language for c in members], text_languages))
    return out


def plan_subtitles(cues: Iterable[Cue], duration_s: float, *, min_clip_s: float = 1.0, max_clip_s: float = 8.0,
                   window_s: float = 4.0, merge_gap_s: float = 0.5, start_s: float = 0.0,
                   text_languages: Sequence[str] = ()) -> list[ClipSpec]:
    """Dialogue clips from cues over [start_s, duration_s), gaps filled with text-less window clips. A clip of several
    lines takes the language of one the text path (`text_languages`) does not read where one is not
    (transforms.language.clip_language)."""
    cues = sorted((c for c in cues if c.text and c.end_s > start_s and c.start_s < duration_s),
                  key=lambda c: (c.start_s, c.end_s))
    dialogue: list[ClipSpec] = []
    prev_end = start_s
    for g_start, g_end, members in _group_cues(cues, min_clip_s, max_clip_s, merge_gap_s):
        s, e = max(g_start, prev_end, start_s), min(g_end, duration_s)
        text = " ".join(c.text for c in members)
        if e - s <= EPS:  # said while earlier dialogue clips run (a long line around it): its words join them
            dialogue = _join_words(dialogue, members, max_clip_s, text_languages)
            continue
        source = members[0].source
        pieces = split_span(s, e, max_clip_s)
        for (ps, pe), piece_text in zip(pieces, _piece_texts(members, text, pieces, max_clip_s)):
            dialogue.append(ClipSpec(0, ps, pe, source, text=piece_text, text_source=source if piece_text else "none",
                                     language=clip_language([c.language for c in members], text_languages)))
        prev_end = e
    # Short dialogue clips grow into the silence around them; long silences become window clips.
    specs: list[ClipSpec] = []
    cursor = start_s
    for i, clip in enumerate(dialogue):
        nxt = dialogue[i + 1].start_s if i + 1 < len(dialogue) else duration_s
        s, e = clip.start_s, clip.end_s
        if e - s < min_clip_s:
            s = max(cursor, s - (min_clip_s - (e - s)) / 2)
            e = min(nxt, s + min_clip_s)
            s = max(cursor, e - min_clip_s)
        gap = s - cursor
        if gap > EPS:
            if gap < min_clip_s and specs:  # a sliver of silence belongs to the clip before
                specs[-1] = dataclasses.replace(specs[-1], end_s=s)
            elif gap < min_clip_s:
                s = cursor
            else:
                specs.extend(_window_clips(cursor, s, window_s, max_clip_s))
        specs.append(dataclasses.replace(clip, start_s=s, end_s=e))
        cursor = e
    tail = duration_s - cursor
    if tail > EPS:
        if tail < min_clip_s and specs:
            specs[-1] = dataclasses.replace(specs[-1], end_s=duration_s)
        else:
            specs.extend(_window_clips(cursor, duration_s, window_s, max_clip_s))
    return reindex(specs)


def plan_shots(cut_times: Iterable[float], duration_s: float, *, min_clip_s: float = 1.0,
               max_clip_s: float = 8.0) -> list[ClipSpec]:
    """Clips between cuts; cuts closer than min_clip_s to the previous one are ignored; long shots are split."""
    bounds = [0.0]
    for t in sorted(cut_times):
        if min_clip_s <= t - bounds[-1] and duration_s - t >= min_clip_s:
            bounds.append(t)
    bounds.append(duration_s)
    specs = [ClipSpec(0, s, e, "shot") for a, b in zip(bounds, bounds[1:]) for s, e in split_span(a, b, max_clip_s)]
    return reindex(specs)


def reindex(specs: Sequence[ClipSpec], first: int = 0) -> list[ClipSpec]:
    return [dataclasses.replace(s, clip_index=first + i) for i, s in enumerate(specs)]


def context_line(text: Optional[str], language: Optional[str], text_languages: Sequence[str]) -> Optional[str]:
    """A clip's line as the later clips' context (dialogue_context): none where the text path, reading
    `text_languages`, does not read it (since 2026-12-07, when a line of another language among a film's is not
    read: before, the next read line took it as context). The run's planner and the report's --explain alike."""
    return text if text and reads(language, text_languages) else None


def dialogue_context(texts: Sequence[Optional[str]], n: int, previous_lines: Sequence[str] = ()
                     ) -> list[tuple[str, ...]]:
    """The context of each clip of a run in time order (`texts`: each clip's line, '' or None without one): the last
    n distinct lines before it, oldest first. The one rule for a film's clips (transforms.decode.StreamingPlanner,
    as each is emitted), the labelled dialogues of training (training.datasets: MELD, EmoryNLP) and the report's
    re-encoded clip (pipeline.report.explain). previous_lines: the lines before these (the clips emitted so far)."""
    lines, out = list(previous_lines), []
    for text in texts:
        out.append(tuple(lines[-n:]) if n > 0 else ())
        if text and (not lines or lines[-1] != text):
            lines.append(text)
    return out
