"""SMPTE timecode labels (HH:MM:SS:FF) as frame counts, for the subtitle formats that time lines by them (SCC,
TTML's smpte time base, EBU STL)."""
from __future__ import annotations


def label_frames(h: int, m: int, s: int, frames: float, nominal: int, drop: bool = False) -> float:
    """The frame a timecode label names: `nominal` labels a second (30 for 29.97 fps). Drop-frame labels skip
    two numbers a minute, except every tenth minute, so that they keep up with the clock."""
    count = (h * 3600 + m * 60 + s) * nominal + frames
    if drop:
        minutes = h * 60 + m
        count -= 2 * (minutes - minutes // 10)
    return count


def label_seconds(h: int, m: int, s: int, frames: float, nominal: int, rate: float, drop: bool = False,
                  hour: int = 0) -> float:
    """A timecode label in seconds on the clock a film's start timecode is read on (transforms.probe's
    start_timecode_s: the label as it reads, 01:00:00:00 is 3600 s at any rate): `hour` whole hours as labelled, the
    frames after them as they run (`rate` a second). A file's labels all count from the hour of its first, so
    that its lines keep their distances: at 23.976 or 29.97 fps a non-drop label runs 0.1 % slow, and counting
    every frame from 00:00:00:00 put a master's lines 3.6 s late per hour of its start (before 2026-12-06)."""
    since = label_frames(h, m, s, frames, nominal, drop) - label_frames(hour, 0, 0, 0, nominal, drop)
    return 3600.0 * hour + since / rate
