"""Scenarist SCC captions: the closed-caption deliverable of US studios and broadcasters (and iTunes). An SCC
file is CEA-608 data as hex words after SMPTE time codes, one word (two bytes with odd parity) per frame at
29.97 fps; the words are commands and characters for a caption decoder (transforms/cea608.py), not lines. Time
codes with `;` are drop-frame."""
from __future__ import annotations

import re

from transforms.cea608 import Cea608Decoder
from transforms.timecode import label_seconds

HEADER = "Scenarist_SCC V1.0"
FRAME_S = 1001 / 30000  # one word per frame at 29.97 fps
_LINE = re.compile(r"(\d{2}):(\d{2}):(\d{2})([:;.,])(\d{2})\s+(.*)")
_WORD = re.compile(r"[0-9a-fA-F]{4}")


def is_scc(text: str) -> bool:
    return text.lstrip().startswith(HEADER)


def timecode_s(h: int, m: int, s: int, sep: str, f: int, hour: int = 0) -> float:
    """An SCC time code in seconds: labels count 30 frames a second at 29.97 fps; `;` drops two labels a minute
    (not every tenth minute), so that the label keeps up with the clock. hour: the hour of the file's first time
    code, up to which the label counts as it reads (transforms.timecode.label_seconds), as a film's start timecode
    does: a master's captions land where its frames are."""
    return label_seconds(h, m, s, f, 30, 1 / FRAME_S, drop=sep in ";,", hour=hour)


def parse_scc(text: str) -> tuple[list[tuple[float, float, str]], list[str]]:
    """SCC file -> ([(start_s, end_s, text)], warnings). A line of the file that is not `time code<tab>words` is
    skipped with a warning; a caption still on screen at the end is held for 2 s."""
    if not is_scc(text):
        raise ValueError(f"not an SCC file: it does not start with {HEADER!r}")
    decoder, warnings, t, hour = Cea608Decoder(), [], 0.0, None
    for number, raw in enumerate(text.splitlines()[1:], start=2):
        if not raw.strip():
            continue
        m = _LINE.fullmatch(raw.strip())
        if not m:
            warnings.append(f"line {number}: skipped, not a time code and caption words ({raw.strip()[:40]!r})")
            continue
        hour = int(m.group(1)) if hour is None else hour
        t = timecode_s(int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4), int(m.group(5)), hour)
        for k, word in enumerate(m.group(6).split()):
            if not _WORD.fullmatch(word):
                warnings.append(f"line {number}: word {word!r} is not hex, skipped")
                continue
            decoder.word(int(word[:2], 16), int(word[2:], 16), t + k * FRAME_S)
        t += len(m.group(6).split()) * FRAME_S
    return decoder.finish(t), warnings
