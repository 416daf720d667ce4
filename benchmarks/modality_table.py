"""Each modality alone and all fused, through the shipped head, on every dev set.

    python -m benchmarks.modality_table [--head CKPT] [--csv benchmarks/results/modality_table.csv]

For each dev set (MELD text, FER+ / IMFDB / FER2013 faces, Emotion6 photos through the full visual path,
RAVDESS / EmoDB speech, and label-paired dev clips made of those: a line, a face, a photo and a speaker with
the same label) the head sees one modality at a time (the others missing, as `--modalities` does in a run; scored on the rows
that have that modality) and then all of them. Reported: accuracy, weighted F1 and ECE. Features come from the feature cache
(training.features), so after a training run this takes a minute or two.

A second table takes label-paired dev clips by evidence pattern, with and without a line, and scores each pattern
twice: the head alone, and as the pipeline labels them (model.predict.with_branch_label: by the product of the
modalities' own calibrated classifiers, the line's evidence among them and the face's standing in for the scene's,
where one of them backs its label, else by the head), and, for comparison, the product for every clip, backed or not.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch

from model.bvpec import MODALITIES
from model.checkpoints import load_head
from model.encoders import EncoderSpec, create_encoders
from model.featurize import Featurizer, select_modalities
from training.loop import LabelledSet, evaluate_set, label_paired, load_set, split_sources

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEV_SETS = ("meld:text/meld/dev_sent_emo.csv", "faces:faces/ferplus/dev.parquet", "faces:faces/imfdb/dev.parquet",
            "imagefolder:faces/fer2013#dev", "frames:scenes/emotion6/dev.parquet", "audio:audio/ravdess/dev.parquet",
            "audio:audio/emodb/dev.parquet")


def only(s: LabelledSet, modalities) -> LabelledSet:
    """The rows that have input in one of `modalities`, with every other modality removed."""
    keep = [i for i, it in enumerate(s.items) if any(len(it.get(m, ())) for m in modalities)]
    out = LabelledSet(s.name, [select_modalities(s.items[i], modalities) for i in keep], [])
    out.labels, out.targets = s.labels[keep], s.targets[keep]
    return out


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.modality_table", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--head", default=None)
    p.add_argument("--data_root", default=str(DATA))
    p.add_argument("--pairs", type=int, default=2000, help="label-paired dev clips")
    p.add_argument("--pattern_pairs", type=int, default=8000, help="label-paired dev clips drawn for the pattern table")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--csv", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, _ = load_head(args.head)
    enc = create_encoders(EncoderSpec(head=args.head))
    sets = [load_set(f"{spec.split(':', 1)[0]}:{args.data_root}/{spec.split(':', 1)[1]}", enc).labelled()
            for spec in DEV_SETS]
    sets.append(label_paired(split_sources(sets), args.pairs, seed=1, name="label-paired dev clips"))
    rows = []
    for s in sets:
        for choice in [(m,) for m in MODALITIES] + [MODALITIES]:
            sub = only(s, choice)
            present = len(sub)
            if not present:
                continue
            m = evaluate_set(model, sub)
            rows.append({"data": s.name.replace(args.data_root + "/", ""), "modalities": "+".join(choice) if
                         len(choice) < len(MODALITIES) else "all (fused)", "n_with_input": present,
                         "accuracy": m["accuracy"], "weighted_f1": m["weighted_f1"], "ece": m["ece"]})
        print(f"scored {s.name}", file=sys.stderr, flush=True)
    print("| data | modalities | n with input | accuracy | weighted F1 | ECE |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['data']} | {r['modalities']} | {r['n_with_input']} | {r['accuracy']:.3f} | "
              f"{r['weighted_f1']:.3f} | {r['ece']:.3f} |")
    patterns = pattern_rows(model, enc, label_paired(split_sources(sets[:-1]), args.pattern_pairs, seed=1,
                                                     name="label-paired dev clips"))
    print("\n| label-paired dev clips | n | head alone: accuracy / macro F1 / ECE | as the pipeline labels them | "
          "the product for every clip, backed or not |")
    print("|---|---|---|---|---|")
    for r in patterns:
        print(f"| {r['pattern']} | {r['n']} | " + " | ".join(
            f"{r[k][0]:.3f} / {r[k][1]:.3f} / {r[k][2]:.3f}" for k in ("head", "run", "every")) + " |")
    pools = {k: v for k, v in split_sources(sets[:-1]).items() if k != "text"}
    print("\n| clips without a line (face, scene, voice; 2-3 of them) | rule | accuracy / macro F1 / ECE | the label is one "
          "of the parts' | mean confidence | grounded |")
    print("|---|---|---|---|---|---|")
    for r in disagreement_rows(model, enc, pools, args.pattern_pairs // 2):
        print(f"| {r['clips']} | {r['rule']} | " + (" / ".join(f"{v:.3f}" for v in r["metrics"]) if r["metrics"] else "-")
              + f" | {r['one_of_parts']:.3f} | {r['confidence']:.3f} | {r['grounded']:.3f} |")
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return rows


PATTERNS = (("vision", "audio"), ("face", "audio"), ("vision", "face"), ("vision", "face", "audio"),
            ("text", "vision"), ("text", "face"), ("text", "audio"), ("text", "vision", "audio"),
            ("text", "vision", "face"), ("text", "vision", "face", "audio"))


def pattern_rows(model, enc, pairs: LabelledSet) -> list[dict]:
    """Per evidence pattern: the pairs that have every modality of it, reduced to exactly those, scored by the
    head alone and as a run labels them (their modalities' own evidence given)."""
    featurizer = Featurizer(enc)
    out = []
    for pattern in (None,) + PATTERNS:  # first: every pair as drawn (2-4 modalities)
        keep = [i for i, it in enumerate(pairs.items) if pattern is None or all(len(it.get(m, ())) for m in pattern)]
        sub = LabelledSet(pairs.name, [select_modalities(pairs.items[i], pattern or MODALITIES) for i in keep], [])
        sub.labels, sub.targets = pairs.labels[keep], pairs.targets[keep]
        evidence = [featurizer.evidence(it) for it in sub.items]
        head = evaluate_set(model, sub)
        run = evaluate_set(model, sub, evidence=evidence)
        every = every_evidence(model, sub, evidence)
        out.append({"pattern": "+".join(pattern) if pattern else "as drawn", "n": len(keep),
                    **{k: (m["accuracy"], m["macro_f1"], m["ece"])
                       for k, m in (("head", head), ("run", run), ("every", every))}})
    return out


def label_mismatched(pools: dict[str, LabelledSet], n: int, seed: int) -> tuple[list[dict], list[set]]:
    """Clips whose 2+ parts (one per kind of pool) each carry a different label: modalities that disagree, as a
    film's may (a surprised face, an angry voice, a sad scene). -> (items, each item's set of part labels)."""
    rng = np.random.default_rng(seed)
    by = {kind: {k: np.flatnonzero(p.labels == k) for k in range(7)} for kind, p in pools.items()}
    kinds_all, items, parts = sorted(pools), [], []
    while len(items) < n:
        kinds = rng.choice(kinds_all, size=int(rng.integers(2, len(kinds_all) + 1)), replace=False)
        labels = rng.choice(7, size=len(kinds), replace=False)
        if any(not len(by[kd][lb]) for kd, lb in zip(kinds, labels)):
            continue
        merged = {}
        for kd, lb in sorted(zip(kinds, labels), key=lambda c: c[0] != "scene"):  # a face crop overrides a photo's
            merged.update(pools[kd].items[int(rng.choice(by[kd][lb]))])
        items.append(merged)
        parts.append({int(x) for x in labels})
    return items, parts


def disagreement_rows(model, enc, pools: dict[str, LabelledSet], n: int) -> list[dict]:
    """Clips without a line whose modalities agree (label-paired) and disagree (label_mismatched), labelled by the
    head alone, by the product of their classifiers always (the rule before 2026-12-03, eleventh session), and as
    the pipeline labels them (the product when some modality backs its label, else the head)."""
    from model.predict import (GROUNDED_SUPPORT, calibrated_evidence, classifier_keys, classifier_probs, predict,
                               with_branch_label)
    from training.metrics import classification_metrics
    featurizer, temps = Featurizer(enc), model.branch_temperatures
    agree = label_paired(pools, n, seed=3, name="agree")
    mismatched, parts = label_mismatched(pools, n, seed=4)
    out = []
    for name, items, labels in (("modalities agree", agree.items, agree.labels),
                                ("modalities disagree", mismatched, None)):
        heads = predict(model, items)
        evidence = [featurizer.evidence(it) for it in items]
        probs = {"head alone": [], "product always": [], "as the pipeline labels them": []}
        cal = []
        for p, ev in zip(heads, evidence):
            keys = classifier_keys(p.modalities_used, ev)
            c = calibrated_evidence({k: ev[k] for k in keys}, temps)
            cal.append(c)
            probs["head alone"].append(p.probs)
            probs["as the pipeline labels them"].append(with_branch_label(p, ev, temps).probs)
            probs["product always"].append(classifier_probs(keys, ev, temps) if keys else p.probs)
        for rule, pr in probs.items():
            pr = np.stack(pr)
            lab, conf = pr.argmax(1), pr.max(1)
            support = np.array([max((v[k] for v in c.values()), default=0.0) for k, c in zip(lab, cal)])
            if labels is not None:
                m = classification_metrics(labels, lab, None, None, probs=pr)
                metrics, one_of = (m["accuracy"], m["macro_f1"], m["ece"]), float(np.mean(lab == labels))
            else:
                metrics, one_of = None, float(np.mean([k in s for k, s in zip(lab, parts)]))
            out.append({"clips": f"{name} ({len(items)})", "rule": rule, "metrics": metrics, "one_of_parts": one_of,
                        "confidence": float(conf.mean()), "grounded": float(np.mean(support >= GROUNDED_SUPPORT))})
    return out


def every_evidence(model, s: LabelledSet, evidence) -> dict:
    """The alternative not taken: the rule for clips without a line applied to every clip, the line's evidence
    (the head on the line alone, model.predict.line_evidence) multiplied in, the face's standing in for the
    scene's."""
    from model.predict import calibrated_evidence, line_evidence
    from training.metrics import classification_metrics
    probs = []
    for ev, line in zip(evidence, line_evidence(model, s.items)):
        ev = calibrated_evidence(ev, model.branch_temperatures)
        if "face" in ev:
            ev.pop("scene", None)
        if line is not None:
            ev["text"] = line
        logs = sum(np.log(np.clip(p, 1e-12, None)) for p in ev.values()) if ev else np.zeros(7)
        p = np.exp(logs - np.max(logs))
        probs.append(p / p.sum())
    probs = np.stack(probs)
    return classification_metrics(s.labels, probs.argmax(1), None, None, probs=probs)


if __name__ == "__main__":
    main()
