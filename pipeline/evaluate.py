"""Evaluate a BVPEC head on labelled data.

    python -m pipeline.evaluate --data meld:MELD/dev_sent_emo.csv [--head CKPT] [--json OUT] [--cv K]

Prints one table per data spec (accuracy, weighted/macro F1, per-class precision/recall/F1/support, the
confusion matrix in EMOTIONS order, Pearson r of valence/arousal where targets exist) and writes them as JSON.
--cv K adds a K-fold estimate (folds keep a dialogue / film together): with --cv_mode score the head's metrics
on each fold (the spread of the estimate), with --cv_mode train a fresh head of the same configuration
trained on the other K-1 folds and scored on the held-out one (how well this data can be learnt).
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

from model.bvpec import BVPECConfig
from model.checkpoints import DEFAULT_HEAD, load_head, model_version
from model.datasets import load_dataset
from model.precision import PRECISIONS
from pipeline.labelled_features import LazyEncoders, features_for
from pipeline.metrics import format_table, summarise_folds
from pipeline.train import LabelledSet, evaluate_set, train_head

log = logging.getLogger("pipeline.evaluate")


def fold_indices(groups: list[str], labels: np.ndarray, k: int, seed: int = 0) -> list[np.ndarray]:
    """Held-out index arrays of K grouped folds, stratified by label where every class allows it."""
    x = np.zeros(len(labels))
    try:
        cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        return [test for _, test in cv.split(x, labels, groups)]
    except ValueError:
        return [test for _, test in GroupKFold(n_splits=k).split(x, labels, groups)]


def subset(s: LabelledSet, idx) -> LabelledSet:
    out = LabelledSet(s.name, [s.items[i] for i in idx], [])
    out.labels, out.targets = s.labels[idx], s.targets[idx]
    return out


def evaluate_spec(spec: str, model, enc: LazyEncoders, cv: int = 0, cv_mode: str = "score", seed: int = 0,
                  cv_epochs: int = 10) -> dict:
    examples, feats = features_for(spec, enc)
    s = LabelledSet(spec, feats, examples)
    dims = model.config.input_dims
    for it in feats[:50]:
        for m, a in it.items():
            if len(a) and a.shape[-1] != dims[m]:
                raise ValueError(f"{m} features are {a.shape[-1]} wide but the head expects {dims[m]}")
    result = evaluate_set(model, s)
    if cv:
        folds = fold_indices([e.group or str(i) for i, e in enumerate(examples)], s.labels, cv, seed)
        fold_metrics = []
        for f, test in enumerate(folds):
            if cv_mode == "train":
                train_idx = np.setdiff1d(np.arange(len(s)), test)
                config = BVPECConfig.from_dict(model.config.to_dict())
                fresh, _ = train_head(subset(s, train_idx), [], config, epochs=cv_epochs, seed=seed + f)
                fold_metrics.append(evaluate_set(fresh, subset(s, test)))
            else:
                fold_metrics.append(evaluate_set(model, subset(s, test)))
        result["cv"] = {"k": cv, "mode": cv_mode, **summarise_folds(fold_metrics)}
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", required=True, help="KIND:PATH[@N][#train|#dev] (repeatable)")
    p.add_argument("--head", default=None, help=f"head checkpoint (default: the shipped {DEFAULT_HEAD.name})")
    p.add_argument("--json", default=None, help="write the metrics here as JSON")
    p.add_argument("--cv", type=int, default=0, help="K-fold estimate with K folds")
    p.add_argument("--cv_mode", choices=("score", "train"), default="score")
    p.add_argument("--cv_epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="encoders' number format, as the pipeline's --precision (auto: bf16 where the CPU has it)")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    model, meta = load_head(args.head)
    enc = LazyEncoders(device=args.device, text_overrides=meta.get("text_encoder_overrides"),
                       face_state=meta.get("face_encoder_state"), precision=args.precision)
    report = {"head": str(args.head or DEFAULT_HEAD), "variant": model.config.variant, "results": {}}
    for spec in args.data:
        m = evaluate_spec(spec, model, enc, args.cv, args.cv_mode, args.seed, args.cv_epochs)
        report["results"][spec] = m
        print(format_table(spec, m))
        if "cv" in m:
            print(f"  {m['cv']['k']}-fold ({m['cv']['mode']}): " + "  ".join(
                f"{k}={v['mean']:.4f}±{v['std']:.4f} [95% {v['ci95'][0]:.4f}, {v['ci95'][1]:.4f}]"
                for k, v in m["cv"].items() if isinstance(v, dict)))
        print()
    try:
        report["model_version"] = model_version(args.head, ",".join(
            f"{k}={getattr(v, 'version', '')}" for k, v in sorted(enc._cache.items())))
    except OSError:
        pass
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
