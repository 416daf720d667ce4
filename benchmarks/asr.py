"""Speech recognition quality and speed on the real speech in ../shared/data/media, printed as a table.

    .venv/bin/python -m benchmarks.asr [--asr_model PATH_OR_NAME] [--device cpu|cuda] [--cpu_threads N]
                                       [--csv out.csv]

Every input goes through the pipeline's own path: audio decoded by transforms.decode.decode_audio (the decode
pass's mono downmix, then 16 kHz), fed in pieces to
`AsrCueSource` (chunking, VAD, hallucination filters). WER = word edits / reference words over the set,
after normalisation (case, punctuation, single digits spelled out). RTF = processing seconds / audio
seconds (lower is faster). The non-speech rows (a real film with music and no dialogue, synthetic music,
silence) must give no words at all. The sets come from testing/speech.py, the metric from model/wer.py.
"""
from __future__ import annotations

import argparse
import csv
import sys

from model.asr import load_asr_model
from model.encoders.audio import SAMPLE_RATE
from model.wer import normalise, word_errors
from testing.speech import speech_sets, transcribe


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
