"""Train the BVPEC head on labelled data.

    python -m pipeline.train --data meld:MELD/train_sent_emo.csv --data imagefolder:FER#train \
        --dev meld:MELD/dev_sent_emo.csv --dev imagefolder:FER#dev --pairs 4000 --out head.pt

Encoder features are computed once per data file and encoder version into .cache/features. The head trains
with L = alpha*CE + beta*MSE (class-weighted CE, MSE masked where there is no intensity target) and modality
dropout, early-stops on the mean weighted-F1 over the dev sets, and is seeded (same command, same bytes).
"""
from __future__ import annotations

import argparse
import copy
import logging
import random
import sys
import time
from typing import Sequence

import numpy as np
import torch

from model.batching import collate, modality_dropout
from model.bvpec import BVPEC, BVPECConfig, VARIANTS
from model.checkpoints import save_head
from model.datasets import Example
from model.losses import bvpec_loss, class_weights
from model.precision import PRECISIONS, autocast
from model.text_top import TextTop, TunedTextHead
from pipeline.labelled_features import LazyEncoders, feature_dims, features_for
from pipeline.metrics import classification_metrics

log = logging.getLogger("pipeline.train")
NAN = float("nan")
BUCKET_CHUNK = 50  # batches per length-sorted run in bucketed_batches


class LabelledSet:
    """Feature items with their labels and (valence, arousal) targets (NaN = none)."""

    def __init__(self, name: str, items: list[dict], examples: Sequence[Example]):
        self.name, self.items = name, items
        self.labels = np.array([e.label for e in examples], dtype=np.int64)
        self.targets = np.array([[e.valence, e.arousal] for e in examples], dtype=np.float32)

    def __len__(self):
        return len(self.items)

    @staticmethod
    def concat(name: str, sets: Sequence["LabelledSet"]) -> "LabelledSet":
        out = LabelledSet(name, [], [])
        out.items = [it for s in sets for it in s.items]
        out.labels = np.concatenate([s.labels for s in sets]) if sets else np.zeros(0, np.int64)
        out.targets = np.concatenate([s.targets for s in sets]) if sets else np.zeros((0, 2), np.float32)
        return out


def load_set(spec: str, enc: LazyEncoders) -> LabelledSet:
    examples, feats = features_for(spec, enc)
    return LabelledSet(spec, feats, examples)


def synthetic_pairs(text: LabelledSet, faces: LabelledSet, n: int, seed: int, name: str = "pairs") -> LabelledSet:
    """Text line + face crop with the same label: a synthetic multimodal clip (mechanics of fusion only).
    Each label gets pairs in proportion to its share of the face set, as far as both sides have examples."""
    rng = np.random.default_rng(seed)
    by_text = {k: np.flatnonzero(text.labels == k) for k in range(7)}
    by_face = {k: np.flatnonzero(faces.labels == k) for k in range(7)}
    labels = [k for k in range(7) if len(by_text[k]) and len(by_face[k])]
    share = np.array([len(by_face[k]) for k in labels], float)
    counts = rng.multinomial(n, share / share.sum()) if labels else []
    items, exs = [], []
    for k, c in zip(labels, counts):
        ti = rng.choice(by_text[k], c)
        fi = rng.choice(by_face[k], c)
        for a, b in zip(ti, fi):
            items.append({**text.items[a], "face": faces.items[b]["face"]})
            exs.append(Example(label=k, valence=float(text.targets[a, 0]), arousal=float(text.targets[a, 1])))
    return LabelledSet(name, items, exs)


def split_sources(sets: Sequence[LabelledSet]) -> tuple[LabelledSet, LabelledSet]:
    """The text-only and face-only parts of a list of sets (for pairing)."""
    text = LabelledSet.concat("text", [s for s in sets if s.items and "text" in s.items[0] and "face" not in s.items[0]])
    face = LabelledSet.concat("face", [s for s in sets if s.items and "face" in s.items[0] and "text" not in s.items[0]])
    return text, face


def evaluate_set(model: BVPEC, s: LabelledSet, batch_size: int = 512, precision: str = "fp32") -> dict:
    model.eval()
    logits, inten = [], []
    with torch.inference_mode(), autocast("cpu", precision):
        for i in range(0, len(s), batch_size):
            out = model(*collate(s.items[i:i + batch_size], model.config.input_dims))
            logits.append(out.logits.float())
            inten.append(out.intensity.float())
    logits = torch.cat(logits).numpy()
    inten = torch.cat(inten).numpy()
    ok = s.labels >= 0
    return classification_metrics(s.labels[ok], logits[ok].argmax(1), inten, s.targets)


def text_lengths(s: LabelledSet) -> list[int]:
    return [len(it["text"]) if "text" in it else 0 for it in s.items]


def bucketed_batches(lengths: Sequence[int], batch_size: int, gen: torch.Generator, chunk: int = BUCKET_CHUNK
                     ) -> list[list[int]]:
    """Shuffled batches of similar lengths: shuffle, sort each run of `chunk` batches by length, cut it
    into batches, shuffle the batches. Padding per batch stays small, which is most of the cost when the
    text encoder's layers train, and every epoch still sees a new order."""
    order = torch.randperm(len(lengths), generator=gen).tolist()
    span = batch_size * chunk
    batches = []
    for s in range(0, len(order), span):
        part = sorted(order[s:s + span], key=lambda i: lengths[i])
        batches += [part[j:j + batch_size] for j in range(0, len(part), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]


def train_head(train: LabelledSet, devs: Sequence[LabelledSet], config: BVPECConfig, *, epochs: int = 30,
               batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 0.01, alpha: float = 1.0,
               beta: float = 0.5, modality_dropout_p: float = 0.15, patience: int = 4, seed: int = 0,
               class_weight_power: float = 0.5, label_smoothing: float = 0.05,
               max_minutes: float | None = None, text_top: TextTop | None = None, text_lr: float = 1e-4,
               precision: str = "fp32") -> tuple[BVPEC | TunedTextHead, dict]:
    """Returns the best model on dev (mean weighted-F1 over the dev sets) and a training summary.
    With text_top, those BERT layers train too (at text_lr) and the result is a TunedTextHead.
    precision: forward passes under autocast (model.precision); weights and optimiser stay fp32."""
    seed_everything(seed)
    model = BVPEC(config)
    groups = [{"params": list(model.parameters()), "lr": lr}]
    if text_top is not None:
        model = TunedTextHead(copy.deepcopy(text_top), model)
        groups = [{"params": list(model.head.parameters()), "lr": lr},
                  {"params": list(model.top.parameters()), "lr": text_lr}]
    opt = torch.optim.AdamW(groups, weight_decay=weight_decay)
    lengths = text_lengths(train)
    steps_per_epoch = max(1, len(bucketed_batches(lengths, batch_size, torch.Generator())))  # same count every epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in groups], total_steps=epochs * steps_per_epoch,
                                                pct_start=0.1)
    weights = class_weights(train.labels, config.num_classes, class_weight_power)
    gen = torch.Generator().manual_seed(seed)
    best, best_score, best_epoch, history, bad = None, -1.0, -1, [], 0
    t0 = time.time()
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for idx in bucketed_batches(lengths, batch_size, gen):
            inputs, masks = collate([train.items[j] for j in idx], config.input_dims)
            masks = modality_dropout(masks, modality_dropout_p, gen)
            with autocast("cpu", precision):
                out = model(inputs, masks)
            loss, parts = bvpec_loss(out.logits.float(), out.intensity.float(), torch.from_numpy(train.labels[idx]),
                                     torch.from_numpy(train.targets[idx]), alpha, beta, weights, label_smoothing)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total += parts["loss"] * len(idx)
        dev_metrics = {d.name: evaluate_set(model, d, precision=precision) for d in devs}
        score = float(np.mean([m["weighted_f1"] for m in dev_metrics.values()])) if devs else -total
        history.append({"epoch": epoch + 1, "train_loss": total / len(train), "dev_score": score,
                        **{f"{n}:weighted_f1": m["weighted_f1"] for n, m in dev_metrics.items()}})
        log.info("epoch %d loss %.4f dev %.4f %s", epoch + 1, total / len(train), score,
                 {n.rsplit('/', 1)[-1]: round(m['weighted_f1'], 4) for n, m in dev_metrics.items()})
        if score > best_score:
            best, best_score, best_epoch, bad = copy.deepcopy(model.state_dict()), score, epoch + 1, 0
            best_metrics = dev_metrics
        else:
            bad += 1
            if bad >= patience:
                break
        if max_minutes and time.time() - t0 > 60 * max_minutes:
            break
    model.load_state_dict(best)
    model.eval()
    return model, {"best_epoch": best_epoch, "dev_score": best_score, "history": history,
                   "dev_metrics": {n: _brief(m) for n, m in (best_metrics if devs else {}).items()}}


def _brief(m: dict) -> dict:
    return {k: m[k] for k in ("n", "accuracy", "weighted_f1", "macro_f1", "pearson_valence") if k in m}


def tune_face_encoder(train_specs: Sequence[str], dev_specs: Sequence[str], epochs: int, lr: float, seed: int
                      ) -> tuple[dict | None, dict]:
    """Stage one: fine-tune the face encoder on the image folders among the training data (best epoch on
    the dev image folders). The head then trains on the tuned encoder's tokens."""
    from model.datasets import load_dataset
    from model.encoders.faces import load_face_encoder
    from model.face_tuning import FaceTuning, finetune_face_encoder
    from pipeline.labelled_features import read_image

    def faces(specs):
        exs = [e for s in specs if s.startswith("imagefolder:") for e in load_dataset(s)]
        return [read_image(e.image) for e in exs], [e.label for e in exs]

    x_train, y_train = faces(train_specs)
    if not x_train:
        raise SystemExit("--finetune_face_epochs needs imagefolder training data")
    x_dev, y_dev = faces(dev_specs)
    state, summary = finetune_face_encoder(load_face_encoder(), x_train, y_train, x_dev or None, y_dev or None,
                                           FaceTuning(epochs=epochs, lr=lr, seed=seed))
    log.info("face encoder tuned on %d faces: best epoch %d, dev accuracy %.4f", len(x_train),
             summary["best_epoch"], summary["dev_accuracy"])
    return state, summary


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", required=True,
                   help="KIND:PATH[@N][#train|#dev], KIND in meld, goemotions, emorynlp, imagefolder, clips")
    p.add_argument("--dev", action="append", default=[], help="dev data for early stopping (same format)")
    p.add_argument("--out", required=True, help="where to write the head checkpoint (.pt)")
    p.add_argument("--variant", choices=VARIANTS, default="bvpec")
    p.add_argument("--pairs", type=int, default=0, help="synthetic text+face training pairs (same label)")
    p.add_argument("--dev_pairs", type=int, default=0, help="synthetic text+face dev pairs from the dev sets")
    p.add_argument("--d_model", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight_decay", type=float, default=0.01)
    p.add_argument("--alpha", type=float, default=1.0, help="weight of the cross-entropy term")
    p.add_argument("--beta", type=float, default=0.5, help="weight of the masked intensity MSE term")
    p.add_argument("--modality_dropout", type=float, default=0.15)
    p.add_argument("--class_weight_power", type=float, default=0.5, help="0 = none, 1 = inverse frequency")
    p.add_argument("--patience", type=int, default=4)
    p.add_argument("--max_minutes", type=float, default=None)
    p.add_argument("--finetune_text_layers", type=int, default=0,
                   help="also fine-tune the text encoder's top K layers (shipped in the checkpoint)")
    p.add_argument("--text_lr", type=float, default=1e-4)
    p.add_argument("--finetune_face_epochs", type=int, default=0,
                   help="first fine-tune the face encoder (mini-Xception) on the imagefolder data for N epochs "
                        "(shipped in the checkpoint)")
    p.add_argument("--face_lr", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)")
    p.add_argument("--device", default="cpu", help="encoders' device for feature extraction (cpu|cuda)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="training forward passes: auto = bf16 where the CPU has bf16 instructions")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    face_state, face_summary = None, None
    if args.finetune_face_epochs:
        face_state, face_summary = tune_face_encoder(args.data, args.dev, args.finetune_face_epochs, args.face_lr,
                                                     args.seed)
    enc = LazyEncoders(device=args.device, text_lower_k=args.finetune_text_layers, precision=args.precision,
                       face_state=face_state)
    train_sets = [load_set(s, enc) for s in args.data]
    dev_sets = [load_set(s, enc) for s in args.dev]
    train = LabelledSet.concat("train", train_sets)
    if args.pairs:
        t, f = split_sources(train_sets)
        train = LabelledSet.concat("train", [train, synthetic_pairs(t, f, args.pairs, args.seed)])
    if args.dev_pairs:
        t, f = split_sources(dev_sets)
        dev_sets.append(synthetic_pairs(t, f, args.dev_pairs, args.seed + 1, name="pairs:dev"))
    config = BVPECConfig(input_dims=feature_dims(enc), d_model=args.d_model, heads=args.heads,
                         dropout=args.dropout, variant=args.variant)
    model, summary = train_head(
        train, dev_sets, config, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, alpha=args.alpha, beta=args.beta, modality_dropout_p=args.modality_dropout,
        patience=args.patience, seed=args.seed, class_weight_power=args.class_weight_power,
        max_minutes=args.max_minutes, text_top=enc.text_top if args.finetune_text_layers else None,
        text_lr=args.text_lr, precision=args.precision)
    meta = {"training_data": args.data, "dev_data": args.dev, "pairs": args.pairs, "n_train": len(train),
            "encoders": {k: getattr(v, "version", None) for k, v in enc._cache.items()},
            "command": "python -m pipeline.train " + " ".join(sys.argv[1:] if argv is None else argv),
            **summary}
    if face_state:
        meta["face_encoder_state"] = face_state
        meta["face_tuning"] = face_summary
    if isinstance(model, TunedTextHead):
        meta["text_encoder_overrides"] = model.top.overrides()
        meta["finetuned_text_layers"] = args.finetune_text_layers
        model = model.head
    save_head(args.out, model, meta)
    log.info("saved %s (best epoch %d, dev %.4f)", args.out, summary["best_epoch"], summary["dev_score"])
    return meta


if __name__ == "__main__":
    main()
