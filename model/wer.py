"""Word error counting for speech recognition: text normalisation and word-level edit distance.

WER over a set = sum of `word_errors(normalise(ref), normalise(hyp))` / sum of reference words.
"""
from __future__ import annotations

import re

_DIGITS = "zero one two three four five six seven eight nine".split()
_SPELLING = {"mr": "mister", "mrs": "missus", "dr": "doctor"}


def normalise(text: str) -> list[str]:
    """Lower case, no punctuation, letters split from digits, single digits spelled out."""
    text = re.sub(r"<[^>]*>|\([^)]*\)", " ", text.lower())  # <s> markers and (file ids) in LibriVox
    text = re.sub(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])", " ", text)
    words = re.sub(r"[^a-z0-9' ]+", " ", text.replace("-", " ")).split()
    out = []
    for w in words:
        w = w.strip("'")
        w = _SPELLING.get(w, w)
        out.extend(_DIGITS[int(c)] for c in w) if w.isdigit() and len(w) <= 2 else out.append(w)
    return [w for w in out if w]


def word_errors(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance over words (substitutions + deletions + insertions)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i]
        for j, h in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]


__all__ = ["normalise", "word_errors"]
