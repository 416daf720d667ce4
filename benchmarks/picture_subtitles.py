"""How well picture subtitles are read: MELD dev's lines drawn as Blu-ray PGS and DVD VobSub pictures, read back.

    python -m benchmarks.picture_subtitles [--lines N] [--styles a,b] [--evaluate] [--json out.json]

Each MELD dev utterance (1,109 lines of sitcom dialogue, cleaned as training reads them) is wrapped as subtitles
are (at most 42 characters a line) and drawn in each style (testing.picture_subs: light text in a dark outline,
anti-aliased; PGS at 1080p in its 8-bit palette, VobSub at 576p in its four pixel values with the disc's palette,
DVB at 576p in an 8-bit region with its colour table), written as a `.sup`, `.idx` + `.sub` or Matroska file, and read back through the pipeline's own reader
(transforms.image_subtitles.read_picture_subtitles: FFmpeg's decoder, the palette, the OCR line recogniser).
Printed per style: character and word error rates against the drawn text (lower case, without accents, curly
quotes as straight ones; the word rate without punctuation but apostrophes, model.wer), lines with any word wrong, pictures left out,
and pictures read per second on one core (decode and OCR together).

--evaluate also scores MELD dev with the shipped head twice, on the lines as written and as read from the first
style's pictures (`pipeline.evaluate --data meld:`, the text path with its dialogue context), so the effect of
misreadings on the labels is measured, not guessed.
"""
from __future__ import annotations

import argparse
import csv
import json
import tempfile
import textwrap
import time
import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MELD_DEV = REPO.parent / "shared" / "data" / "text" / "meld" / "dev_sent_emo.csv"
STYLES = {  # name: (kind, font file, size, fill, outline)
    "pgs-sans": ("pgs", "DejaVuSans.ttf", 54, (235, 235, 235), 3),
    "pgs-serif": ("pgs", "DejaVuSerif.ttf", 54, (235, 235, 235), 3),
    "pgs-italic": ("pgs", "DejaVuSans-Oblique.ttf", 54, (235, 235, 235), 3),
    "pgs-bold-yellow": ("pgs", "DejaVuSans-Bold.ttf", 50, (240, 220, 40), 3),
    "pgs-times": ("pgs", "STIXGeneral.ttf", 54, (235, 235, 235), 3),  # a Times-like face
    "pgs-times-italic": ("pgs", "STIXGeneralItalic.ttf", 54, (235, 235, 235), 3),
    "dvd-sans": ("dvd", "DejaVuSans.ttf", 28, (235, 235, 235), 2),
    "dvd-small": ("dvd", "DejaVuSans.ttf", 22, (235, 235, 235), 2),
    "dvb-sans": ("dvb", "DejaVuSans.ttf", 28, (235, 235, 235), 2),
}
STEP_S = 3.0  # one picture every 3 s; each shown 2.5 s


def meld_lines(limit: int | None = None) -> list[dict]:
    """MELD dev's rows in file order, each with its cleaned utterance as training reads it."""
    from training.datasets import _clean
    with open(MELD_DEV, newline="", encoding="utf-8", errors="replace") as f:
        rows = [r for r in csv.DictReader(f)]
    for r in rows:
        r["clean"] = _clean(r["Utterance"])
    rows = [r for r in rows if r["clean"]]
    return rows[:limit] if limit else rows


_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2026": "...",
                         "\u2014": "-", "\u2013": "-"})


def characters(text: str) -> str:
    """Lower case, accents off, typographic quotes and dashes as the keyboard's, single spaces."""
    text = unicodedata.normalize("NFKD", text.translate(_QUOTES))
    return " ".join("".join(c for c in text if not unicodedata.combining(c)).lower().split())


def read_style(style: str, texts: list[str], folder: Path) -> tuple[list[str], float, list[str]]:
    """The texts drawn in a style, written as its file and read back -> (text per picture, seconds, warnings)."""
    from testing.picture_subs import font, sup_bytes, write_dvb, write_vobsub
    from transforms.image_subtitles import read_picture_subtitles
    kind, face, size, fill, outline = STYLES[style]
    events = [(i * STEP_S + 1.0, i * STEP_S + 3.5, textwrap.wrap(t, 42) or [t]) for i, t in enumerate(texts)]
    render = dict(font=font(face, size), fill=fill, outline=outline)
    if kind == "pgs":
        path = folder / f"{style}.sup"
        path.write_bytes(sup_bytes(events, frame=(1920, 1080), **render))
    elif kind == "dvb":
        path = write_dvb(folder / f"{style}.mkv", events, **render)
    else:
        path = write_vobsub(folder / f"{style}.idx", events, frame=(720, 576), **render)
    read_picture_subtitles(str(path), sidecar=True)  # the recogniser loaded before the clock starts
    t0 = time.perf_counter()
    lines, warnings, *_ = read_picture_subtitles(str(path), sidecar=True)[0]
    seconds = time.perf_counter() - t0
    by_slot = {int(round((start - 1.0) / STEP_S)): text for start, _, text in lines}
    return [by_slot.get(i, "") for i in range(len(texts))], seconds, warnings


def score(texts: list[str], read: list[str]) -> dict:
    from model.wer import normalise, word_errors  # (edit distance over any sequence: characters too)
    chars = sum(len(characters(t)) for t in texts)
    cer = sum(word_errors(list(characters(t)), list(characters(r))) for t, r in zip(texts, read)) / max(1, chars)
    words = sum(len(normalise(characters(t))) for t in texts)
    werr = [word_errors(normalise(characters(t)), normalise(characters(r))) for t, r in zip(texts, read)]
    return {"lines": len(texts), "cer": cer, "wer": sum(werr) / max(1, words),
            "lines_with_a_wrong_word": sum(1 for e in werr if e) / max(1, len(texts)),
            "left_out": sum(1 for r in read if not r)}


def evaluate_meld(rows: list[dict], read: list[str], folder: Path) -> dict:
    """pipeline.evaluate on MELD dev as written and as read from the pictures."""
    from pipeline.evaluate import main as evaluate
    specs = {}
    for name, texts in (("as written", [r["Utterance"] for r in rows]), ("read from pictures", read)):
        path = folder / f"meld_{name.replace(' ', '_')}.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=[k for k in rows[0] if k != "clean"])
            w.writeheader()
            for r, t in zip(rows, texts):
                w.writerow({**{k: v for k, v in r.items() if k != "clean"}, "Utterance": t})
        specs[name] = f"meld:{path}"
    args = [a for spec in specs.values() for a in ("--data", spec)]
    results = evaluate(args)["results"]
    return {name: {k: results[spec].get(k) for k in ("n", "accuracy", "weighted_f1", "macro_f1", "ece")}
            for name, spec in specs.items()}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=None, help="the first N MELD dev lines (default all)")
    ap.add_argument("--styles", default=",".join(STYLES), help="comma-separated: " + ", ".join(STYLES))
    ap.add_argument("--evaluate", action="store_true", help="also score MELD dev as written and as read")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    rows = meld_lines(args.lines)
    texts = [r["clean"] for r in rows]
    results: dict = {"styles": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        first_read = None
        print(f"{'style':<16} {'lines':>5} {'CER':>7} {'WER':>7} {'lines wrong':>11} {'left out':>8} {'pictures/s':>10}")
        for style in args.styles.split(","):
            read, seconds, warnings = read_style(style, texts, folder)
            first_read = first_read if first_read is not None else read
            s = score(texts, read)
            s["pictures_per_s"] = len(texts) / seconds
            s["examples"] = [(t, r) for t, r in zip(texts, read) if characters(t) != characters(r)][:8]
            results["styles"][style] = s
            print(f"{style:<16} {s['lines']:>5} {s['cer']:>7.2%} {s['wer']:>7.2%} {s['lines_with_a_wrong_word']:>11.1%} "
                  f"{s['left_out']:>8} {s['pictures_per_s']:>10.1f}")
        if args.evaluate:
            results["meld_dev"] = evaluate_meld(rows, first_read, folder)
            for name, m in results["meld_dev"].items():
                print(f"MELD dev {name:<20} n={m['n']} accuracy={m['accuracy']:.3f} weighted F1={m['weighted_f1']:.3f} "
                      f"ECE={m['ece']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
