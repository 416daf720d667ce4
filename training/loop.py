"""The training loop of the BVPEC head and what it trains on.

LabelledSet (feature items + labels + intensity targets), load_set (a data spec through the feature cache),
label-paired multimodal examples built from real single-modality ones, temperature calibration, length-bucketed batches, train_head (L = alpha*CE + beta*MSE, class-weighted CE,
MSE masked where there is no intensity target, modality dropout, early stopping on the mean dev weighted-F1,
seeded), evaluate_set, and stage one: tune_face_encoder. CLI: pipeline.train.
"""
from __future__ import annotations

import copy
import logging
import random
import time
from typing import Mapping, Optional, Sequence

import numpy as np
import torch

from model.batching import collate, modality_dropout
from model.encoders.versions import TEXT_LANGUAGES
from model.bvpec import BVPEC, BVPECConfig
from model.checkpoints import non_finite_tensors
from model.losses import bvpec_loss, class_weights
from model.precision import autocast, fp16_state
from model.predict import branch_probs, calibrated_probs, modalities_used, with_line_evidence
from model.text_top import TextTop, TunedTextHead
from training.datasets import DataError, Example, spec_parts
from training.features import features_for
from training.metrics import classification_metrics
from training.metrics import fit_temperature as fit_temperature_nll

log = logging.getLogger("training.loop")
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

    def labelled(self) -> "LabelledSet":
        """Only the rows with one of the 7 labels (a Parquet set's null or contempt rows are -1)."""
        keep = np.flatnonzero(self.labels >= 0)
        out = LabelledSet(self.name, [self.items[i] for i in keep], [])
        out.labels, out.targets = self.labels[keep], self.targets[keep]
        return out

    @staticmethod
    def concat(name: str, sets: Sequence["LabelledSet"]) -> "LabelledSet":
        out = LabelledSet(name, [], [])
        out.items = [it for s in sets for it in s.items]
        out.labels = np.concatenate([s.labels for s in sets]) if sets else np.zeros(0, np.int64)
        out.targets = np.concatenate([s.targets for s in sets]) if sets else np.zeros((0, 2), np.float32)
        return out


def load_set(spec: str, encoders, text_lower_k: int = 0, text_languages: Sequence[str] = TEXT_LANGUAGES
             ) -> LabelledSet:
    """A data spec's examples with their features (training.features; encoders from model.encoders), the lines
    read as a run with `--text_languages` reads them."""
    examples, feats = features_for(spec, encoders, text_lower_k=text_lower_k, text_languages=text_languages)
    return LabelledSet(spec, feats, examples)


def with_out_of_fold_speech(s: LabelledSet, spec: str, oof: Mapping[str, tuple[np.ndarray, np.ndarray]]
                            ) -> LabelledSet:
    """A speech set's train clips with the speech classifier's speaker-out-of-fold tokens (training.speech_classifier
    --oof, read by read_oof) in place of its own: on the clips it was trained on the classifier is right every
    time (1.000 on RAVDESS, EmoDB and TESS train, against 0.60-0.75 on unseen speakers), and a head trained on such
    tokens learns to copy the voice. Other specs, and clips without a speech token (the gate), are left as they are.
    `s` is the set as load_set gives it (every row, in file order)."""
    name = out_of_fold_set(spec, oof)
    if name is None:
        return s
    logits, labels = oof[name]
    if len(logits) != len(s) or not np.array_equal(labels, s.labels):
        raise DataError(oof_mismatch(name, len(logits), spec, len(s)))
    items = [dict(item) for item in s.items]
    for item, token in zip(items, logits):
        if len(item.get("audio", ())):
            item["audio"] = token[None].astype(np.float16)
    out = LabelledSet(s.name, items, [])
    out.labels, out.targets = s.labels, s.targets
    return out


def out_of_fold_set(spec: str, oof: Mapping[str, object]) -> Optional[str]:
    """The --speech_oof set whose tokens replace a --data spec's own: a whole speech train split the file holds
    (its folder's name), else None."""
    kind, path, split, n = spec_parts(spec)
    name = path.parent.name
    return name if kind == "audio" and name in oof and path.stem == "train" and not split and n is None else None


def oof_mismatch(name: str, held: int, spec: str, rows: int) -> str:
    """The line that refuses a --speech_oof file whose rows are not a --data spec's (another version of the set)."""
    what = f"{rows} rows" if held != rows else "the same number of rows, other labels"
    return (f"--speech_oof: its {name} logits ({held} rows) are not those of --data {spec} ({what}): write them "
            "again from this file with python -m training.speech_classifier --oof NPZ")


def out_of_fold_rows_problem(specs: Sequence[str], oof: Mapping[str, tuple[np.ndarray, np.ndarray]]
                             ) -> Optional[str]:
    """One line when a --speech_oof set holds another number of rows than the --data file it stands for, read from
    the Parquet footer before any feature is made (before 2026-12-07 the mismatch was found after every set had been
    encoded, with a traceback). Labels are compared when the set is loaded (with_out_of_fold_speech)."""
    import pyarrow.parquet as pq
    for spec in specs:
        name = out_of_fold_set(spec, oof)
        if name is not None:
            rows = pq.ParquetFile(spec_parts(spec)[1]).metadata.num_rows
            if rows != len(oof[name][0]):
                return oof_mismatch(name, len(oof[name][0]), spec, rows)
    return None


def source_of(item: dict) -> str:
    """Which kind of labelled example an item is: text, face, scene (a photo: vision and its faces), audio, or
    spoken (speech with its own line); 'mixed' for anything else."""
    present = {m for m in ("text", "vision", "face", "audio") if m in item and len(item[m])}
    if "vision" in item:
        return "scene"
    if present == {"text", "audio"}:
        return "spoken"
    return next(iter(present)) if len(present) == 1 else "mixed"


# A kind made of other kinds' modalities: a clip has one line and one voice, so a label-paired clip that takes a
# spoken example takes no other line or voice.
KIND_PARTS = {"spoken": ("text", "audio")}


def split_sources(sets: Sequence[LabelledSet]) -> dict[str, LabelledSet]:
    """The single-modality examples of a list of sets, pooled by kind (see source_of), for pairing."""
    pools: dict[str, list[tuple[dict, int, np.ndarray]]] = {}
    for s in sets:
        for item, label, target in zip(s.items, s.labels, s.targets):
            if label >= 0:
                pools.setdefault(source_of(item), []).append((item, int(label), target))
    out = {}
    for kind, rows in pools.items():
        if kind == "mixed":
            continue
        ls = LabelledSet(kind, [r[0] for r in rows], [])
        ls.labels = np.array([r[1] for r in rows], np.int64)
        ls.targets = np.stack([r[2] for r in rows]).astype(np.float32)
        out[kind] = ls
    return out


def label_paired(pools: dict[str, LabelledSet], n: int, seed: int, name: str = "pairs") -> LabelledSet:
    """Synthetic multimodal clips: examples of 2-4 different kinds (text, face, scene, audio, spoken) that carry the
    same label, merged into one item. Real evidence in every modality, combined as a film combines them, so
    the head learns to follow whichever modality carries the label. Labels are drawn uniformly among those
    that at least two kinds have; valence/arousal come from the first part that has them. A spoken example drawn
    beside a line or a voice keeps its own (KIND_PARTS), so such a clip may have fewer parts."""
    rng = np.random.default_rng(seed)
    by = {kind: {k: np.flatnonzero(p.labels == k) for k in range(7)} for kind, p in pools.items()}
    labels = [k for k in range(7) if sum(len(by[kind][k]) > 0 for kind in pools) >= 2]
    items, exs = [], []
    for _ in range(n if labels else 0):
        k = int(rng.choice(labels))
        kinds = [kind for kind in pools if len(by[kind][k])]
        chosen = rng.choice(kinds, size=int(rng.integers(2, len(kinds) + 1)), replace=False)
        chosen = [c for c in chosen if not any(c in KIND_PARTS.get(o, ()) for o in chosen)]
        merged, target = {}, np.full(2, np.nan, np.float32)
        for kind in sorted(chosen, key=lambda c: c != "scene"):  # a face crop overrides a photo's own faces
            j = int(rng.choice(by[kind][k]))
            merged.update(pools[kind].items[j])
            t = pools[kind].targets[j]
            target = np.where(np.isnan(target), t, target)
        items.append(merged)
        exs.append(Example(label=k, valence=float(target[0]), arousal=float(target[1])))
    return LabelledSet(name, items, exs)


def fit_temperature(model: BVPEC, sets: Sequence[LabelledSet], batch_size: int = 512) -> float:
    """The temperature T minimising the negative log-likelihood of softmax(logits / T) on the pooled sets
    (dev data): the head's probabilities are then calibrated (ECE in training.metrics)."""
    model.eval()
    logits, labels = [], []
    with torch.inference_mode():
        for s in sets:
            s = s.labelled()
            for i in range(0, len(s), batch_size):
                logits.append(model(*collate(s.items[i:i + batch_size], model.config.input_dims)).logits.float())
            labels.append(torch.from_numpy(s.labels))
    return fit_temperature_nll(torch.cat(logits).numpy(), torch.cat(labels).numpy())


def evaluate_set(model: BVPEC, s: LabelledSet, batch_size: int = 512, precision: str = "fp32",
                 evidence: Optional[Sequence[Mapping[str, np.ndarray]]] = None, ece_floor: bool = False) -> dict:
    """training.metrics.classification_metrics of the model on a set, with the top label's ECE (and, with
    ece_floor, the ECE a calibrated scorer would show on this many rows). evidence: per item, each modality's own
    probabilities (model.featurize.Featurizer.evidence; its line's are added here): clips are then labelled as the
    pipeline labels them (model.predict.with_branch_label); without it, the head alone."""
    model.eval()
    probs, logits, inten, used = [], [], [], []
    with torch.inference_mode(), autocast("cpu", precision):
        for i in range(0, len(s), batch_size):
            inputs, masks = collate(s.items[i:i + batch_size], model.config.input_dims)
            out = model(inputs, masks)
            logits.append(out.logits.float())
            probs.append(calibrated_probs(model, out.logits, masks))
            inten.append(out.intensity.float())
            used += [modalities_used(row) for row in out.gates.float().tolist()]
    logits = torch.cat(logits).numpy()
    probs = torch.cat(probs).numpy().astype(np.float64)
    inten = torch.cat(inten).numpy()
    for j, ev in enumerate(with_line_evidence(model, s.items, evidence) if evidence is not None else []):
        p = branch_probs(used[j], ev, getattr(model, "branch_temperatures", None))
        if p is not None:
            probs[j] = p
    ok = s.labels >= 0
    return classification_metrics(s.labels[ok], probs[ok].argmax(1), inten[ok], s.targets[ok], probs=probs[ok],
                                  ece_floor=ece_floor)  # every metric over the same labelled rows


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


def _short(name: str) -> str:
    """A dev set's name for the log: its kind and the last two parts of its path ('spoken:ravdess/dev.parquet'), so
    two kinds read from one file (audio: and spoken:) stay two entries."""
    kind, sep, path = name.partition(":")
    if not sep or "/" in kind:
        kind, path = "", name
    tail = "/".join(path.split("/")[-2:])
    return f"{kind}:{tail}" if kind else tail


def selects(name: str, select: Sequence[str]) -> bool:
    """Whether a dev set named `name` counts towards the epoch's score under --select (empty: every set does)."""
    return not select or any(k in name for k in select)


def train_head(train: LabelledSet, devs: Sequence[LabelledSet], config: BVPECConfig, *, epochs: int = 30,
               batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 0.01, alpha: float = 1.0,
               beta: float = 0.5, modality_dropout_p: float = 0.15, patience: int = 4, seed: int = 0,
               class_weight_power: float = 0.5, label_smoothing: float = 0.05,
               max_minutes: float | None = None, text_top: TextTop | None = None, text_lr: float = 1e-4,
               precision: str = "fp32", ema_decay: float = 0.0, select: Sequence[str] = ()
               ) -> tuple[BVPEC | TunedTextHead, dict]:
    """Returns the best model on dev (mean weighted-F1 over the dev sets) and a training summary. Without
    dev sets there is nothing to select on: every epoch runs (no early stopping) and the last epoch's
    weights are kept (summary['selected'] says which rule chose them; dev_score is NaN).
    With text_top, those BERT layers train too (at text_lr) and the result is a TunedTextHead.
    precision: forward passes under autocast (model.precision); weights and optimiser stay fp32.
    ema_decay > 0: an exponential moving average of the weights (per step) is what each epoch evaluates and what is
    kept; the dev score of one step's weights swings by several points from epoch to epoch, the average's less.
    select: the dev sets whose weighted F1 the score averages (a set is in when its name contains one of these);
    empty: every dev set."""
    seed_everything(seed)
    model = BVPEC(config)
    groups = [{"params": list(model.parameters()), "lr": lr}]
    if text_top is not None:
        model = TunedTextHead(copy.deepcopy(text_top), model)
        groups = [{"params": list(model.head.parameters()), "lr": lr},
                  {"params": list(model.top.parameters()), "lr": text_lr}]
    opt = torch.optim.AdamW(groups, weight_decay=weight_decay)
    averaged = (torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(
        ema_decay), use_buffers=True) if ema_decay > 0 else None)
    lengths = text_lengths(train)
    steps_per_epoch = max(1, len(bucketed_batches(lengths, batch_size, torch.Generator())))  # same count every epoch
    # A warm-up of 10 % of the steps, at least 1.5 of them: OneCycleLR's warm-up ends at pct_start * steps - 1, and
    # where that was 0 (10 steps: 10 epochs of one batch) it divided by zero; under 10 steps it had no warm-up at all
    steps = max(2, epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in groups], total_steps=steps,
                                                pct_start=max(0.1, 1.5 / steps))
    weights = class_weights(train.labels, config.num_classes, class_weight_power)
    gen = torch.Generator().manual_seed(seed)
    best, best_score, best_epoch, history, bad = None, -float("inf"), -1, [], 0
    best_metrics: dict = {}
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
            if averaged is not None:
                averaged.update_parameters(model)
            total += parts["loss"] * len(idx)
        kept = averaged.module if averaged is not None else model  # the weights an epoch offers
        dev_metrics = {d.name: evaluate_set(kept, d, precision=precision) for d in devs}
        scores = [m["weighted_f1"] for n, m in dev_metrics.items() if selects(n, select)]
        score = float(np.mean(scores)) if scores else NAN
        history.append({"epoch": epoch + 1, "train_loss": total / len(train), "dev_score": score,
                        **{f"{n}:weighted_f1": m["weighted_f1"] for n, m in dev_metrics.items()}})
        log.info("epoch %d loss %.4f dev %.4f %s", epoch + 1, total / len(train), score,
                 {_short(n): round(m['weighted_f1'], 4) for n, m in dev_metrics.items()})
        if not devs:  # nothing to select on: the latest epoch is the one kept
            best_epoch = epoch + 1
        elif score > best_score:
            best, best_score, best_epoch, bad = copy.deepcopy(kept.state_dict()), score, epoch + 1, 0
            best_metrics = dev_metrics
        else:
            bad += 1
            if bad >= patience:
                break
        if max_minutes and time.time() - t0 > 60 * max_minutes:
            break
    averaging = f" (weights averaged, EMA {ema_decay})" if averaged is not None else ""
    if best is not None:
        model.load_state_dict(best)
        selected = "best dev weighted-F1" + averaging
    else:  # no dev data (or no dev score ever finite): nothing to select on
        if averaged is not None:
            model.load_state_dict(averaged.module.state_dict())
        best_epoch, best_score, selected = len(history), NAN, "last epoch (no dev data)" + averaging
        log.info("no dev data: keeping the last epoch's weights (epoch %d, train loss %.4f)", best_epoch,
                 history[-1]["train_loss"] if history else NAN)
    model.eval()
    refuse_diverged(model, best_epoch, history)
    return model, {"best_epoch": best_epoch, "dev_score": best_score, "selected": selected, "history": history,
                   "dev_metrics": {n: _brief(m) for n, m in best_metrics.items()}}


def refuse_diverged(model: torch.nn.Module, epoch: int, history: Sequence[dict]) -> None:
    """Stops training (SystemExit, one line) when the weights kept are not finite: a head that diverged (a learning
    rate far too high, or NaN) labels every clip with the argmax of NaN, the first emotion. Before 2026-12-06 it was
    saved, exit status 0."""
    bad = non_finite_tensors(fp16_state(model.state_dict()))  # as the checkpoint stores them: beyond 65504 is inf
    if bad:
        loss = next((h["train_loss"] for h in history if h["epoch"] == epoch), NAN)
        raise SystemExit(f"training diverged: the weights of epoch {epoch} (train loss {loss:.4g}) are not finite "
                         f"(NaN or infinite: {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}); nothing is saved: "
                         "train again with a smaller learning rate (--lr)")


def _brief(m: dict) -> dict:
    return {k: m[k] for k in ("n", "accuracy", "weighted_f1", "macro_f1", "ece", "pearson_valence") if k in m}


def tune_face_encoder(train_specs: Sequence[str], dev_specs: Sequence[str], epochs: int, lr: float, seed: int
                      ) -> tuple[dict | None, dict]:
    """Stage one: fine-tune the face encoder on the image folders among the training data (best epoch on
    the dev image folders). The head then trains on the tuned encoder's tokens."""
    from model.encoders.faces import load_face_encoder
    from model.face_tuning import FaceTuning, finetune_face_encoder
    from training.datasets import load_dataset, read_image

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
