"""The text path on a line cut in two, as a window or a shot cut across a line would hand it over.

    python -m benchmarks.line_fragments [--head CKPT] [--seed 0] [--json out.json]

MELD dev lines of four words or more, each with its dialogue context, scored by the head's text path whole, then as
the words before and the words after a cut at a random word (seeded). Printed per reading: accuracy, weighted F1,
mean confidence and 15-bin ECE. The numbers behind transforms.segment.line_units: a clip reads a line whole, in
the clip that holds its midpoint, rather than the fragment of it said inside the clip.
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MELD_DEV = REPO.parent / "shared" / "data" / "text" / "meld" / "dev_sent_emo.csv"


def main(argv=None) -> dict:
    import torch
    from sklearn.metrics import f1_score

    from model.checkpoints import load_head
    from model.encoders import EncoderSpec, create_encoders
    from model.featurize import Featurizer
    from model.predict import predict
    from training.datasets import load_dataset
    from training.metrics import expected_calibration_error

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--head", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, _ = load_head(args.head)
    featurizer = Featurizer(create_encoders(EncoderSpec(head=args.head)))
    lines = [e for e in load_dataset(f"meld:{MELD_DEV}") if len(e.text.split()) >= 4]
    rng = random.Random(args.seed)
    cuts = [rng.randint(1, len(e.text.split()) - 1) for e in lines]
    labels = np.array([e.label for e in lines])
    readings = {"whole line": [e.text for e in lines],
                "words before the cut": [" ".join(e.text.split()[:k]) for e, k in zip(lines, cuts)],
                "words after the cut": [" ".join(e.text.split()[k:]) for e, k in zip(lines, cuts)]}
    report = {"n": len(lines), "seed": args.seed, "readings": {}}
    print(f"MELD dev, {len(lines)} lines of 4+ words, cut at a random word (seed {args.seed})")
    print("| reading | accuracy | weighted F1 | mean confidence | ECE |\n|---|---|---|---|---|")
    for name, texts in readings.items():
        tokens = featurizer.text_tokens(texts, [e.context for e in lines])
        probs = np.stack([p.probs for p in predict(model, [{"text": t} for t in tokens])])
        pred = probs.argmax(1)
        m = {"accuracy": float(np.mean(pred == labels)),
             "weighted_f1": float(f1_score(labels, pred, average="weighted")),
             "mean_confidence": float(probs.max(1).mean()), "ece": expected_calibration_error(probs, labels)}
        report["readings"][name] = m
        print(f"| {name} | {m['accuracy']:.3f} | {m['weighted_f1']:.3f} | {m['mean_confidence']:.3f} | {m['ece']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
