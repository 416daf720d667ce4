"""The paper's Table 1 ablations on our data, plus the fusion check.

    python -m benchmarks.ablations [--epochs 8] [--pairs 4000] [--csv out.csv]

Every variant (text_only, vision_only, concat, bvpec) trains with the same seed, data and budget on cached
frozen-encoder features: MELD train lines, FER2013 train crops (the seeded 80/20 split, see docs/training.md)
and synthetic text+face pairs (a MELD train line and a FER train face with the same label). Each is scored on
MELD dev (text), the FER dev crops (face) and synthetic dev pairs (MELD dev line + FER dev face, same label).
The fusion check: on the dev pairs BVPEC must beat the better single modality. The pairing is synthetic, so it
checks the fusion mechanics, not a claim about real films.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import torch

from model.bvpec import BVPECConfig
from model.encoders import EncoderSpec, create_encoders
from training.features import feature_dims
from training.loop import LabelledSet, evaluate_set, label_paired, load_set, split_sources, train_head

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VARIANTS = ("text_only", "vision_only", "concat", "bvpec")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ablations", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_root", default=str(DATA))
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--pairs", type=int, default=4000)
    p.add_argument("--dev_pairs", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--csv", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    root = Path(args.data_root)
    enc = create_encoders(EncoderSpec(tuned=False))  # the packaged encoders, as pipeline.train starts from
    meld_tr = load_set(f"meld:{root}/text/meld/train_sent_emo.csv", enc)
    meld_dev = load_set(f"meld:{root}/text/meld/dev_sent_emo.csv", enc)
    fer_tr = load_set(f"imagefolder:{root}/faces/fer2013#train", enc)
    fer_dev = load_set(f"imagefolder:{root}/faces/fer2013#dev", enc)
    pairs_tr = label_paired(split_sources([meld_tr, fer_tr]), args.pairs, args.seed)
    pairs_dev = label_paired(split_sources([meld_dev, fer_dev]), args.dev_pairs, args.seed + 1, name="pairs:dev")
    train = LabelledSet.concat("train", [meld_tr, fer_tr, pairs_tr])
    dims = feature_dims(enc)
    rows = []
    for variant in VARIANTS:
        config = BVPECConfig(input_dims=dims, variant=variant, dropout=0.2)
        model, _ = train_head(train, [meld_dev, fer_dev, pairs_dev], config, epochs=args.epochs,
                              patience=args.patience, seed=args.seed)
        m, f, pr = (evaluate_set(model, s) for s in (meld_dev, fer_dev, pairs_dev))
        rows.append({"variant": variant, "meld_dev_weighted_f1": m["weighted_f1"], "fer_dev_accuracy": f["accuracy"],
                     "pairs_dev_accuracy": pr["accuracy"], "pairs_dev_weighted_f1": pr["weighted_f1"],
                     "params": sum(t.numel() for t in model.parameters())})
        print(f"trained {variant}", file=sys.stderr, flush=True)
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    by = {r["variant"]: r["pairs_dev_weighted_f1"] for r in rows}
    best_single = max(by["text_only"], by["vision_only"])
    ok = by["bvpec"] > best_single
    print(f"\nfusion check (dev pairs, weighted F1): bvpec {by['bvpec']:.4f} vs best single modality "
          f"{best_single:.4f} -> {'PASS' if ok else 'FAIL'}")
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)
    return {"rows": rows, "fusion_check": ok}


if __name__ == "__main__":
    main()
