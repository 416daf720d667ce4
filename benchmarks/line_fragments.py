"""The text path on a line cut in two, as a window or a shot cut across a line would hand it over.

    python -m benchmarks.line_fragments [--head CKPT] [--seed 0] [--json out.json] [--random_cut_only]

MELD dev lines of four words or more, each with its dialogue context, scored by the head's text path whole, then as
the words before and the words after a cut at a random word (seeded). Printed per reading: accuracy, weighted F1,
mean confidence and 15-bin ECE. The numbers behind transforms.segment.line_units: a clip reads a line whole, in
the clip that holds its midpoint, rather than the fragment of it said inside the clip. A second table takes the
lines with a phrase end inside (a comma, a full stop...) and compares a cut there with a random cut: whether cutting
where a phrase ends would make the pieces of a line good evidence.
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

    from model.checkpoints import load_head
    from model.encoders import EncoderSpec, create_encoders
    from model.featurize import Featurizer
    from model.predict import predict
    from training.datasets import load_dataset
    from training.metrics import classification_metrics

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--head", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    ap.add_argument("--random_cut_only", action="store_true",
                    help="only the first table (the lines cut at a random word): half the work")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, _ = load_head(args.head)
    featurizer = Featurizer(create_encoders(EncoderSpec(head=args.head)))
    lines = [e for e in load_dataset(f"meld:{MELD_DEV}") if len(e.text.split()) >= 4]
    rng = random.Random(args.seed)
    cuts = [rng.randint(1, len(e.text.split()) - 1) for e in lines]
    # the lines with a phrase end inside (a word ending in , . ? ! ; :), cut at the one nearest the middle
    phrase_ends = [[i + 1 for i, w in enumerate(e.text.split()[:-1]) if w[-1] in ",.?!;:"] for e in lines]
    phrased = [i for i, ends in enumerate(phrase_ends) if ends]
    at_phrase = {i: min(phrase_ends[i], key=lambda k: abs(k - len(lines[i].text.split()) / 2)) for i in phrased}
    words = lambda i, a, b: " ".join(lines[i].text.split()[a:b])  # noqa: E731
    tables = {
        f"{len(lines)} lines of 4+ words, cut at a random word (seed {args.seed})": {
            "whole line": [(i, lines[i].text) for i in range(len(lines))],
            "words before the cut": [(i, words(i, 0, k)) for i, k in enumerate(cuts)],
            "words after the cut": [(i, words(i, k, None)) for i, k in enumerate(cuts)]},
        f"the {len(phrased)} of them with a phrase end inside, cut there (nearest the middle) or at random": {
            "whole line": [(i, lines[i].text) for i in phrased],
            "before / after a random cut": [(i, words(i, 0, cuts[i])) for i in phrased]
            + [(i, words(i, cuts[i], None)) for i in phrased],
            "before / after the phrase end": [(i, words(i, 0, at_phrase[i])) for i in phrased]
            + [(i, words(i, at_phrase[i], None)) for i in phrased]}}
    if args.random_cut_only:
        tables = dict(list(tables.items())[:1])
    report = {"n": len(lines), "seed": args.seed, "readings": {}}
    for title, readings in tables.items():
        print(f"\nMELD dev, {title}")
        print("| reading | n | accuracy | weighted F1 | mean confidence | ECE |\n|---|---|---|---|---|---|")
        for name, items in readings.items():
            idx = [i for i, _ in items]
            tokens = featurizer.text_tokens([t for _, t in items], [lines[i].context for i in idx])
            probs = np.stack([p.probs for p in predict(model, [{"text": t} for t in tokens])])
            full = classification_metrics([lines[i].label for i in idx], probs.argmax(1), probs=probs)
            m = {k: full[k] for k in ("n", "accuracy", "weighted_f1", "macro_f1", "mean_confidence", "ece")}
            report["readings"].setdefault(name, m)  # the first table's (the phrase table adds its own names)
            if title.startswith("the "):
                report.setdefault("phrase_subset", {})[name] = m
            print(f"| {name} | {m['n']} | {m['accuracy']:.3f} | {m['weighted_f1']:.3f} | {m['mean_confidence']:.3f} "
                  f"| {m['ece']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
