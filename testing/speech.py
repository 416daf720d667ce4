"""Real speech in ../shared/data/media with its reference text, for the speech recognition tests and benchmark.

`speech_sets()` lists what is present: LibriVox, JFK, GRID, the Sintel trailer (dialogue over music), and a
no-speech set (Big Buck Bunny, synthetic music, silence) whose reference is None: it must give no words.
`transcribe()` feeds audio to the pipeline's own `AsrCueSource` in pieces, like the decode pass does.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Optional

import numpy as np

from model.encoders.audio import SAMPLE_RATE
from testing.films import synthetic_music
# Any file's audio as the pipeline hears it (the decode pass's mono downmix, then 16 kHz), so the tests and the
# benchmark hear what a film run hears.
from transforms.decode import decode_audio

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "media"
JFK = MEDIA / "speech" / "jfk.flac"
JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")
FEED_S = 5.0  # size of the pieces fed, like the decode pass's per-clip audio


def transcribe(model, audio: np.ndarray, language: Optional[str] = None, feed_s: float = FEED_S) -> tuple[str, float]:
    """(text, processing seconds) of `audio` fed to an AsrCueSource in `feed_s` pieces."""
    from transforms.transcribe import AsrCueSource
    source = AsrCueSource(model, language=language)
    step = int(feed_s * SAMPLE_RATE)
    t = time.perf_counter()
    cues = []
    for i in range(0, max(audio.size, 1), step):
        cues += source.feed(audio[i:i + step], i / SAMPLE_RATE)
    cues += source.finish()
    return " ".join(c.text for c in cues), time.perf_counter() - t


def speech_sets(only: tuple[str, ...] = ()) -> list[tuple[str, list[tuple[str, np.ndarray, Optional[str]]]]]:
    """(set name, [(item id, audio, reference text)]); reference None = must stay silent. `only`: set names
    (librivox, jfk, grid, sintel, silent)."""
    sets = []
    libri = MEDIA / "speech" / "librivox"
    if libri.is_dir() and (not only or "librivox" in only):
        refs = {}
        for line in (libri / "transcription").read_text().splitlines():
            m = re.match(r"(.*)\((\S+)\)\s*$", line)
            if m:
                refs[m.group(2)] = m.group(1)
        ids = (libri / "fileids").read_text().split()
        sets.append(("librivox", [(i, decode_audio(libri / f"{i}.wav"), refs[i]) for i in ids]))
    if JFK.is_file() and (not only or "jfk" in only):
        sets.append(("jfk", [("jfk", decode_audio(JFK), JFK_TEXT)]))
    grid = MEDIA / "grid"
    if grid.is_dir() and (not only or "grid" in only):
        rows = [line.split("\t") for line in
                (grid / "transcripts_from_GRID_filename_grammar.tsv").read_text().splitlines() if "\t" in line]
        sets.append(("grid", [(name, decode_audio(grid / name), ref) for name, ref in rows]))
    sintel = MEDIA / "sintel"
    if (sintel / "sintel_trailer.mp4").is_file() and (not only or "sintel" in only):
        import pysubs2
        ref = " ".join(e.plaintext for e in pysubs2.load(str(sintel / "sintel_trailer.en.vtt")))
        sets.append(("sintel trailer (dialogue over music)",
                     [("sintel", decode_audio(sintel / "sintel_trailer.mp4"), ref)]))
    if only and "silent" not in only:
        return sets
    silent = []
    if (MEDIA / "odd" / "bigbuckbunny.mp4").is_file():
        silent.append(("bigbuckbunny", decode_audio(MEDIA / "odd" / "bigbuckbunny.mp4"), None))
    silent.append(("synthetic music 20 s", synthetic_music(), None))
    silent.append(("silence 20 s", np.zeros(20 * SAMPLE_RATE, np.float32), None))
    sets.append(("no speech (music, silence)", silent))
    return sets


__all__ = ["MEDIA", "JFK", "JFK_TEXT", "FEED_S", "decode_audio", "transcribe", "speech_sets"]
