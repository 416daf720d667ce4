"""The speech branch on voices unlike its acted training data: neutral speech read aloud.

    python -m benchmarks.read_speech [--head CKPT] [--json out.json]

The speech classifier learnt acted emotions (RAVDESS, EmoDB, TESS). Films are not acted for a microphone in a quiet
room, and no labelled natural speech ships here; the nearest are the real recordings in ../shared/data/media:
the 11 GRID clips (speakers reading "bin blue at F two now"-style commands, flat by design) and 5 LibriVox
audiobook passages (a narrator reading Austen). Both are taken as neutral. Their sound (16 kHz mono, as the pipeline
hears it) is scored through pipeline.evaluate's `audio:` path (the voicing gate, Silero VAD, the speech classifier
under its calibrated temperature, as a clip with a voice alone is labelled); printed: the labels, the mean
confidence and the 15-bin ECE against neutral.
"""
from __future__ import annotations

import argparse
import io
import json
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEDIA = REPO.parent / "shared" / "data" / "media"


def read_aloud_parquet(out: Path, media: Path = MEDIA) -> Path:
    """A Parquet of audio (WAV bytes, 16 kHz mono), label (neutral), speaker: GRID's clips and LibriVox's."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import soundfile

    from transforms.decode import decode_audio

    def wav(path: Path) -> bytes:
        pcm = decode_audio(str(path))  # as the decode pass hears a film: its mono downmix, then 16 kHz
        buf = io.BytesIO()
        soundfile.write(buf, pcm, 16000, format="WAV", subtype="FLOAT")
        return buf.getvalue()

    sources = [(p, f"grid-{p.stem}") for p in sorted((media / "grid").glob("*.mpg"))]
    sources += [(p, "librivox") for p in sorted((media / "speech" / "librivox").glob("*.wav"))]
    if not sources:
        raise FileNotFoundError(f"no GRID or LibriVox recordings under {media}")
    rows = [{"audio": wav(p), "label": "neutral", "speaker": who} for p, who in sources]
    pq.write_table(pa.Table.from_pylist(rows), out)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--head", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    from pipeline import evaluate
    data = read_aloud_parquet(Path(tempfile.mkdtemp(prefix="read-speech-")) / "read_aloud.parquet")
    argv = ["--data", f"audio:{data}"] + (["--head", args.head] if args.head else [])
    result = evaluate.main(argv)["results"][f"audio:{data}"]
    from schemas.labels import EMOTIONS
    said = Counter({e: n for e, n in zip(EMOTIONS, result["confusion_matrix"][EMOTIONS.index("neutral")]) if n})
    summary = {"clips": result["n"], "labels": dict(said.most_common()), "neutral": result["accuracy"],
               "mean_confidence": result["mean_confidence"], "ece": result["ece"]}
    print(f"read-aloud speech, {summary['clips']} clips taken as neutral: labelled "
          + ", ".join(f"{e} {n}" for e, n in said.most_common())
          + f"; mean confidence {summary['mean_confidence']:.3f}, ECE {summary['ece']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
