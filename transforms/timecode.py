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
