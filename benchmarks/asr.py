"""Speech recognition quality and speed on the real speech in ../shared/data/media, printed as a table.

    .venv/bin/python -m benchmarks.asr [--asr_model PATH_OR_NAME] [--device cpu|cuda] [--cpu_threads N]
                                       [--csv out.csv]

Every input goes through the pipeline's own path: audio decoded with PyAV to 16 kHz mono, fed in pieces to
`AsrCueSource` (chunking, VAD, hallucination filters). WER = word edits / reference words over the set,
after normalisation (case, punctuation, single digits spelled out). RTF = processing seconds / audio
seconds (lower is faster). The non-speech rows (a real film with music and no dialogue, synthetic music,
silence) must give no words at all.
"""
from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from pathlib import Path

import numpy as np

from model.asr import load_asr_model
from transforms.transcribe import SAMPLE_RATE, AsrCueSource

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "media"
JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")
FEED_S = 5.0  # size of the pieces fed, like the decode pass's per-clip audio
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


def decode(path: Path) -> np.ndarray:
    from faster_whisper.audio import decode_audio  # PyAV, resampled to 16 kHz mono
    return decode_audio(str(path), sampling_rate=SAMPLE_RATE)


def transcribe(model, audio: np.ndarray, language=None) -> tuple[str, float]:
    source = AsrCueSource(model, language=language)
    step = int(FEED_S * SAMPLE_RATE)
    t = time.perf_counter()
    cues = []
    for i in range(0, max(audio.size, 1), step):
        cues += source.feed(audio[i:i + step], i / SAMPLE_RATE)
    cues += source.finish()
    return " ".join(c.text for c in cues), time.perf_counter() - t


def synthetic_music(seconds: float = 20.0, seed: int = 0) -> np.ndarray:
    """Chords with harmonics plus a kick drum and a little noise: music-like, no voice."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    out = np.zeros_like(t)
    for k, root in enumerate((220.0, 261.6, 196.0, 246.9)):
        seg = (t >= k * seconds / 4) & (t < (k + 1) * seconds / 4)
        for ratio in (1.0, 1.26, 1.5):
            for h in (1, 2, 3):
                out[seg] += np.sin(2 * np.pi * root * ratio * h * t[seg]) / (h * 3)
    beat = (t % 0.5) < 0.08
    out += beat * np.sin(2 * np.pi * 60 * t) * np.exp(-(t % 0.5) * 30)
    out += 0.02 * rng.standard_normal(t.size)
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


def speech_sets(only: tuple[str, ...] = ()) -> list[tuple[str, list[tuple[str, np.ndarray, str]]]]:
    """(set name, [(item id, audio, reference text)]); reference None = must stay silent. `only`: set names."""
    sets = []
    libri = DATA / "speech" / "librivox"
    if libri.is_dir() and (not only or "librivox" in only):
        refs = {}
        for line in (libri / "transcription").read_text().splitlines():
            m = re.match(r"(.*)\((\S+)\)\s*$", line)
            if m:
                refs[m.group(2)] = m.group(1)
        ids = (libri / "fileids").read_text().split()
        sets.append(("librivox", [(i, decode(libri / f"{i}.wav"), refs[i]) for i in ids]))
    jfk = DATA / "speech" / "jfk.flac"
    if jfk.is_file() and (not only or "jfk" in only):
        sets.append(("jfk", [("jfk", decode(jfk), JFK_TEXT)]))
    grid = DATA / "grid"
    if grid.is_dir() and (not only or "grid" in only):
        rows = [l.split("\t") for l in (grid / "transcripts_from_GRID_filename_grammar.tsv").read_text().splitlines() if "\t" in l]
        sets.append(("grid", [(name, decode(grid / name), ref) for name, ref in rows]))
    sintel = DATA / "sintel"
    if (sintel / "sintel_trailer.mp4").is_file() and (not only or "sintel" in only):
        import pysubs2
        ref = " ".join(e.plaintext for e in pysubs2.load(str(sintel / "sintel_trailer.en.vtt")))
        sets.append(("sintel trailer (dialogue over music)", [("sintel", decode(sintel / "sintel_trailer.mp4"), ref)]))
    if only and "silent" not in only:
        return sets
    silent = []
    if (DATA / "odd" / "bigbuckbunny.mp4").is_file():
        silent.append(("bigbuckbunny", decode(DATA / "odd" / "bigbuckbunny.mp4"), None))
    silent.append(("synthetic music 20 s", synthetic_music(), None))
    silent.append(("silence 20 s", np.zeros(20 * SAMPLE_RATE, np.float32), None))
    sets.append(("no speech (music, silence)", silent))
    return sets


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--asr_model", default=None)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--cpu_threads", type=int, default=2)
    ap.add_argument("--csv", default=None, help="also write the table here")
    args = ap.parse_args(argv)

    model = load_asr_model(args.asr_model, device=args.device, cpu_threads=args.cpu_threads)
    header = ("set", "items", "audio_s", "ref_words", "wer_pct", "rtf", "words_out")
    rows = []
    for name, items in speech_sets():
        errors = ref_words = out_words = 0
        audio_s = proc_s = 0.0
        for _, audio, ref in items:
            hyp, dt = transcribe(model, audio)
            audio_s += audio.size / SAMPLE_RATE
            proc_s += dt
            hyp_words = normalise(hyp)
            out_words += len(hyp_words)
            if ref is not None:
                ref_w = normalise(ref)
                errors += word_errors(ref_w, hyp_words)
                ref_words += len(ref_w)
        wer = f"{100 * errors / ref_words:.1f}" if ref_words else "-"
        rows.append((name, len(items), f"{audio_s:.1f}", ref_words, wer, f"{proc_s / audio_s:.3f}", out_words))

    print(f"model {model.name} device {args.device} ({model.compute_type}), cpu_threads {args.cpu_threads}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            csv.writer(f).writerows([header, *rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
