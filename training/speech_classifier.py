"""Speech emotion classifier on acted speech (RAVDESS + EmoDB + TESS): readers, feature cache, training.

    python -m training.speech_classifier --out model/weights/speech_emotion.pt

Features come from `model.encoders.speech.SpeechFeaturizer` (the same path serving uses): pooled Whisper-base
encoder states, optionally with pooled prosody. They are cached per (set, split, kind) under
.cache/speech_features/, keyed by the Parquet file's hash and the featurizer version. Every train clip is learnt
as recorded and with a score-like bed under it (`bedded`, training/music_beds.py: a film's dialogue has music
under it, and a classifier trained in quiet rooms read music as sadness). A small grid of
classifiers is trained on the train splits and the one with the best mean dev accuracy over RAVDESS dev
(actors 17-18) and EmoDB dev (unseen speakers) is kept, retrained with more seeds (logits averaged),
and its temperature is fitted on those dev sets.

    python -m training.speech_classifier --oof .cache/speech_oof.npz [--folds 8]

writes the shipped classifier's configuration's speaker-out-of-fold logits on RAVDESS and EmoDB train: each
fold's speakers are predicted by an ensemble trained without them (the other speakers of that set and every
other set), so the logits are what the classifier says about speakers it never heard. Dev has four speakers
(RAVDESS actors 17-18, two EmoDB speakers); these add twenty more. `pipeline.calibrate --speech_oof` fits the
speech branch's temperature on them and the dev clips together. With `--oof_sets ravdess,emodb,tess` TESS's two
speakers are predicted too: `pipeline.train --speech_oof` gives the head these tokens for the train clips instead
of the classifier's own, which are right on every clip it was trained on (the head would learn to copy the voice).
The file names the classifier (its digest) and the sets with dev speakers: the commands take it only for a head that
reads that classifier (read_oof), and calibrate on those sets' rows (oof_dev_sets).
Dev metrics cover only the classes a set has (EmoDB has no surprise; a surprise prediction there is an error).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from scipy.special import softmax

from training.metrics import fit_temperature
from transforms.decode import DECODE_RULE, SAMPLE_RATE, decode_audio

from schemas.labels import EMOTIONS
from training.branch_heads import ensemble
from training.datasets import (DataError, label_indices, media_bytes, media_digests, parquet_columns, parquet_speakers,
                               set_speakers, train_dev_overlap)
from model.encoders.speech import COMPUTE_TYPE
from model.files import written_atomically

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("FILM_EMOTION_DATA") or REPO.parent / "shared" / "data")
CACHE_ROOT = REPO / ".cache" / "speech_features"
SPEECH_SETS = {"ravdess": ("train", "dev"), "emodb": ("train", "dev"), "tess": ("train",)}
TRAIN_SETS = ("ravdess", "emodb", "tess")
DEV_SETS = ("ravdess", "emodb")
# Every train clip is learnt twice: as recorded, and with a score-like bed under it (training/music_beds.py) this
# many dB below the speech, as a film mixes dialogue over its music
BED_SNR_DB = (5.0, 20.0)
BEDDED = "+bed"  # the kind suffix of those copies' features


# ---------------------------------------------------------------- readers
@dataclasses.dataclass(frozen=True)
class SpeechSet:
    name: str
    split: str
    waves: list  # float32 16 kHz mono arrays
    labels: np.ndarray  # int64 indices into EMOTIONS
    speakers: list


def speech_path(name: str, split: str, root: Optional[Path] = None) -> Path:
    """Where a split lies under `root` (default DATA_ROOT: FILM_EMOTION_DATA, --data, else ../shared/data)."""
    return Path(root or DATA_ROOT) / "audio" / name / f"{split}.parquet"


def read_speech_set(name: str, split: str, limit: Optional[int] = None, rows: Optional[Sequence[int]] = None,
                    root: Optional[Path] = None) -> SpeechSet:
    """One labelled speech split, decoded. `rows` picks row indices, `limit` the first rows."""
    path = speech_path(name, split, root)
    table = parquet_columns(path, ["audio", "label", "speaker"], required=("audio", "label"))
    if rows is not None:
        table = table.take(list(rows))
    elif limit is not None:
        table = table.slice(0, limit)
    d = table.to_pydict()
    # The pipeline's own conversion (transforms.decode.decode_audio: mono at the native rate, then 16 kHz), so the
    # classifier learns from the samples it is given in a film; the media as pipeline.train reads them (a Hugging Face
    # {bytes, path} struct too: before 2026-12-06 a TypeError)
    return SpeechSet(name, split, [decode_audio(a) for a in media_bytes(d["audio"], path, "sound")],
                     np.array(label_indices(d["label"], str(path)), np.int64),
                     [str(s) for s in d.get("speaker", range(len(d["label"])))])  # unknown: each clip alone


def read_column(name: str, split: str, column: str, root: Optional[Path] = None) -> list:
    """One column of a speech split, without decoding its audio."""
    import pyarrow.parquet as pq
    return pq.read_table(speech_path(name, split, root), columns=[column]).column(column).to_pylist()


def read_labels(name: str, split: str, root: Optional[Path] = None) -> np.ndarray:
    return np.array(label_indices(read_column(name, split, "label", root), str(speech_path(name, split, root))),
                    np.int64)


# ---------------------------------------------------------------- feature cache
def feature_cache_path(version: str, name: str, split: str, kind: str, root: Optional[Path] = None,
                       cache: Path = CACHE_ROOT) -> Path:
    """Where a split's features lie: keyed by the featurizer's version, the decode rule and the file's hash."""
    from model.encoders._cache import file_digest
    digest = file_digest(speech_path(name, split, root))[:12]
    return Path(cache) / f"{name}-{split}-{kind}-{version}-d{DECODE_RULE}-{digest}.npy"


def bedded(name: str, split: str, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The split's waves, each with a score-like bed under it at BED_SNR_DB (seeded by the split: the whisper and
    prosody features of a clip hear the same mix)."""
    import zlib

    from model.encoders.speech import trim_silence
    from training.music_beds import synthetic_bed, under
    rng = np.random.default_rng(zlib.crc32(f"{name}/{split}".encode()))
    out = []
    for w in waves:
        speech = trim_silence(w)
        rms = float(np.sqrt(np.mean((speech if speech.size else w) ** 2)))
        out.append(under(w, synthetic_bed(w.size, rng), rng.uniform(*BED_SNR_DB), rms))
    return out


def cached_features(featurizer, name: str, split: str, kind: str, root: Optional[Path] = None,
                    cache: Path = CACHE_ROOT, log=print) -> np.ndarray:
    """kind 'whisper' ([n, 1024]) or 'prosody' ([n, 64]) features of a split, computed once; with BEDDED after
    the kind, of its clips with a bed under them (bedded)."""
    from model.encoders.speech import prosody_stats
    from training.music_beds import BED_VERSION

    base, beds = kind.removesuffix(BEDDED), kind.endswith(BEDDED)
    version = featurizer.version if base == "whisper" else "prosody-" + _audio_version()
    version += f"-{BED_VERSION}-{BED_SNR_DB[0]:g}-{BED_SNR_DB[1]:g}" if beds else ""
    out = feature_cache_path(version, name, split, base + ("-bed" if beds else ""), root, cache)
    if out.exists():
        return np.load(out)
    data = read_speech_set(name, split, root=root)
    waves = bedded(name, split, data.waves) if beds else data.waves
    t0 = time.perf_counter()
    rows = []
    from model.encoders.speech import trim_silence
    for i, w in enumerate(waves):
        if base == "whisper":
            rows.append(featurizer.features([w])[0])
        else:
            rows.append(np.concatenate(prosody_stats(trim_silence(w))))
        if log and (i + 1) % 200 == 0:
            log(f"  {name}/{split} {kind}: {i + 1}/{len(data.waves)} ({(time.perf_counter() - t0) / (i + 1):.3f} s/clip)")
    x = np.stack(rows).astype(np.float32)
    seconds = sum(len(w) for w in data.waves) / SAMPLE_RATE
    if log:
        dt = time.perf_counter() - t0
        log(f"{name}/{split} {kind}: {len(x)} clips, {seconds:.0f} s audio, {dt:.1f} s "
            f"({dt / len(x) * 1000:.1f} ms/clip, {dt / seconds * 1000:.1f} ms per audio second)")
    with written_atomically(out) as tmp:
        np.save(tmp, x)
    return x


def _audio_version() -> str:
    from model.encoders.audio import AUDIO_VERSION
    return AUDIO_VERSION


def load_features(featurizer, prosody: bool, sets=None, log=print) -> dict:
    """{(name, split): (X, y)} for every split, whisper (+ prosody) features; for each train split also
    (name, 'train' + BEDDED): its clips with a bed under them, row for row."""
    out = {}
    for name, splits in (sets or SPEECH_SETS).items():
        for split in splits:
            for suffix in ("", BEDDED) if split == "train" else ("",):
                x = cached_features(featurizer, name, split, "whisper" + suffix, log=log)
                if prosody:
                    x = np.concatenate([x, cached_features(featurizer, name, split, "prosody" + suffix, log=log)],
                                       axis=1)
                out[(name, split + suffix)] = (x, read_labels(name, split))
    return out


def train_arrays(feats: dict, name: str, keep: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """A set's training rows: its train clips as recorded and with a bed under them (the `keep` rows of each)."""
    (x, y), (xb, yb) = feats[(name, "train")], feats[(name, "train" + BEDDED)]
    keep = np.ones(len(y), bool) if keep is None else keep
    return np.concatenate([x[keep], xb[keep]]), np.concatenate([y[keep], yb[keep]])


# ---------------------------------------------------------------- training
@dataclasses.dataclass(frozen=True)
class TrainConfig:
    prosody: bool = False
    hidden: int = 0
    dropout: float = 0.0
    weight_decay: float = 1e-3
    lr: float = 1e-3
    epochs: int = 60
    balance: str = "dataset"  # "none" | "dataset": each training set weighs the same in the loss
    seed: int = 0


def train_head(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], cfg: TrainConfig):
    import torch
    from torch import nn

    from model.encoders.speech import HeadConfig, SpeechHead

    torch.manual_seed(cfg.seed)
    x = torch.from_numpy(np.concatenate(xs)).float()
    y = torch.from_numpy(np.concatenate(ys)).long()
    if cfg.balance == "dataset":
        w = np.concatenate([np.full(len(a), len(x) / (len(xs) * len(a))) for a in xs])
    else:
        w = np.ones(len(x))
    w = torch.from_numpy(w).float()
    head = SpeechHead(HeadConfig(in_dim=x.shape[1], hidden=cfg.hidden, dropout=cfg.dropout, prosody=cfg.prosody))
    head.mean.copy_(x.mean(0))
    head.scale.copy_(x.std(0).clamp_min(1e-4))
    opt = torch.optim.AdamW(head.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = nn.CrossEntropyLoss(reduction="none")
    g = torch.Generator().manual_seed(cfg.seed)
    batch = 128
    steps = cfg.epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    head.train()
    for _ in range(cfg.epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            loss = (loss_fn(head.raw_logits(x[idx]), y[idx]) * w[idx]).sum() / w[idx].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return head.eval()


def dev_metrics(logits: np.ndarray, y: np.ndarray) -> dict:
    """Metrics over the classes present (a set without surprise does not score surprise's F1); the argmax
    is over all 7 classes, as in serving."""
    from training.metrics import classification_metrics

    probs = softmax(logits, axis=1)
    m = classification_metrics(y, probs.argmax(1), probs=probs)
    present = sorted(set(y.tolist()))
    m["per_class"] = {e: v for i, (e, v) in enumerate(m["per_class"].items()) if i in present}
    return m


def raw_logits(head, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return head.raw_logits(torch.from_numpy(x).float()).numpy()


GRID = [
    TrainConfig(prosody=p, hidden=h, dropout=d, weight_decay=wd, balance=b)
    for p in (False, True)
    for (h, d, wd) in ((0, 0.0, 1e-2), (0, 0.2, 1e-1), (0, 0.5, 1e-1), (256, 0.3, 1e-2), (256, 0.5, 1e-1))
    for b in ("dataset", "none")
]


def run(out: Path, grid: Sequence[TrainConfig] = GRID, members: int = 5, log=print) -> dict:
    import torch

    from model.asr import load_asr_model
    from model.encoders.speech import SpeechFeaturizer, round_to_fp16, save_head

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    featurizer = SpeechFeaturizer(load_asr_model(cpu_threads=1, compute_type=COMPUTE_TYPE))
    feats = {p: load_features(featurizer, p, log=log) for p in sorted({c.prosody for c in grid})}
    t_feat = time.perf_counter() - t0
    # each feature set's training rows (xs, ys), every set's clips as recorded and with a bed under them
    train_xy = {p: tuple(zip(*(train_arrays(f, s) for s in TRAIN_SETS))) for p, f in feats.items()}
    results = []
    t1 = time.perf_counter()
    for cfg in grid:
        f = feats[cfg.prosody]
        head = train_head(*train_xy[cfg.prosody], cfg)
        accs = {s: float((raw_logits(head, f[(s, "dev")][0]).argmax(1) == f[(s, "dev")][1]).mean())
                for s in DEV_SETS}
        score = float(np.mean(list(accs.values())))
        results.append((score, cfg, head, accs))
        log(f"{cfg}: " + "  ".join(f"{s}={a:.3f}" for s, a in accs.items()) + f"  mean={score:.3f}")
    t_train = time.perf_counter() - t1
    score, cfg, head, _ = max(results, key=lambda r: r[0])
    f = feats[cfg.prosody]
    if members > 1:  # the chosen config, retrained with other seeds, logits averaged
        t2 = time.perf_counter()
        heads = [head] + [train_head(*train_xy[cfg.prosody], dataclasses.replace(cfg, seed=k))
                          for k in range(1, members)]
        head = ensemble(heads)
        ens_accs = {s: float((raw_logits(head, f[(s, "dev")][0]).argmax(1) == f[(s, "dev")][1]).mean())
                    for s in DEV_SETS}
        log(f"ensemble of {members}: " + "  ".join(f"{s}={a:.3f}" for s, a in ens_accs.items())
            + f"  ({time.perf_counter() - t2:.0f} s)")
        t_train += time.perf_counter() - t2
    round_to_fp16(head)  # stored in fp16: measure exactly the shipped numbers
    dev_logits = {s: raw_logits(head, f[(s, "dev")][0]) for s in DEV_SETS}
    dev_y = {s: f[(s, "dev")][1] for s in DEV_SETS}
    temp = fit_temperature(np.concatenate(list(dev_logits.values())), np.concatenate(list(dev_y.values())))
    head.temperature.fill_(temp)
    report = {"chosen": dataclasses.asdict(cfg), "members": members, "temperature": temp, "dev": {}, "uncalibrated_ece": {},
              "crossfit_ece": {}, "grid": [{"config": dataclasses.asdict(c), "dev_accuracy": a, "mean": s}
                                           for s, c, _, a in results],
              "feature_seconds": t_feat, "grid_train_seconds": t_train,
              "train_sizes": {s: int(len(y)) for s, y in zip(TRAIN_SETS, train_xy[cfg.prosody][1])}}
    for s in DEV_SETS:
        report["dev"][s] = dev_metrics(dev_logits[s] / temp, dev_y[s])
        report["uncalibrated_ece"][s] = dev_metrics(dev_logits[s], dev_y[s])["ece"]
        # honest calibration estimate: temperature fitted on the other dev set only (none with one dev set)
        other = [o for o in DEV_SETS if o != s]
        if other:
            t_other = fit_temperature(np.concatenate([dev_logits[o] for o in other]),
                                      np.concatenate([dev_y[o] for o in other]))
            report["crossfit_ece"][s] = {"temperature": t_other,
                                         "ece": dev_metrics(dev_logits[s] / t_other, dev_y[s])["ece"]}
    pooled = {"ece": dev_metrics(np.concatenate([dev_logits[s] for s in DEV_SETS]) / temp,
                                 np.concatenate([dev_y[s] for s in DEV_SETS]))["ece"]}
    report["pooled_dev"] = pooled
    save_head(head, out, meta={"chosen": dataclasses.asdict(cfg), "members": members, "temperature": temp,
                               "dev_accuracy": {s: report["dev"][s]["accuracy"] for s in DEV_SETS},
                               "trained_on": [f"{s}/train" for s in TRAIN_SETS], "data_root": str(DATA_ROOT),
                               "beds_snr_db": list(BED_SNR_DB),
                               "calibrated_on": [f"{s}/dev" for s in DEV_SETS]})
    return report


# ---------------------------------------------------------------- out-of-fold logits (unseen speakers)
def speaker_folds(speakers: Sequence[str], folds: int) -> np.ndarray:
    """Per row, its fold: speakers dealt round-robin (sorted) into min(folds, n speakers) folds, so that no
    speaker is in two folds."""
    names = sorted(set(speakers))
    k = max(1, min(folds, len(names)))
    fold_of = {name: i % k for i, name in enumerate(names)}
    return np.array([fold_of[s] for s in speakers], np.int64)


def out_of_fold(feats: dict, speakers: dict, cfg: TrainConfig, members: int, folds: int, temperature: float,
                sets: Sequence[str] = DEV_SETS, log=print) -> dict:
    """{set: (token logits [n, 7] = raw / temperature, labels, speakers)} for each set's train split, each
    fold predicted by a `members`-seed ensemble of `cfg` trained on every train split without that fold."""
    from model.encoders.speech import round_to_fp16
    out = {}
    for name in sets:
        x, y = feats[(name, "train")]
        fold = speaker_folds(speakers[name], folds)
        logits = np.zeros((len(y), len(EMOTIONS)), np.float32)
        for k in range(int(fold.max()) + 1):
            held = fold == k
            xs, ys = zip(*(train_arrays(feats, s, ~held if s == name else None) for s in TRAIN_SETS))
            heads = [train_head(xs, ys, dataclasses.replace(cfg, seed=m)) for m in range(members)]
            head = round_to_fp16(ensemble(heads))  # as shipped
            logits[held] = raw_logits(head, x[held]) / temperature
            if log:
                log(f"{name} fold {k}: speakers {sorted(set(np.asarray(speakers[name])[held].tolist()))}, "
                    f"accuracy {float((logits[held].argmax(1) == y[held]).mean()):.3f}")
        out[name] = (logits, y, np.asarray(speakers[name]))
    return out


def oof_file(path) -> dict:
    """A --oof file's arrays by name; a file that is not one is a DataError (one line where the commands stop)."""
    try:
        data = np.load(path)
        with data:  # (an .npy file gives an array, no context manager: TypeError)
            out = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, TypeError) as exc:  # no such file, not an .npz, a damaged one
        raise DataError(f"--speech_oof {path}: not a file of training.speech_classifier --oof ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    missing = [k for k in ("logits", "labels", "sets", "weights_digest") if k not in out]
    if missing:
        raise DataError(f"--speech_oof {path}: not a file of training.speech_classifier --oof "
                        f"(no {', '.join(missing)})")
    return out


def speech_weights_of(weights: Optional[Path] = None, head=None) -> tuple[str, str]:
    """(sha256, what to call them) of the speech classifier whose tokens a head reads: `weights` where given (a
    --speech_classifier), else the one the head `head` carries, else the shipped file."""
    from model.encoders._cache import file_digest
    from model.encoders.speech import DEFAULT_WEIGHTS
    if weights:
        return file_digest(weights), str(weights)
    from model.encoders.versions import head_digests, head_source
    carried = head_digests(head)["speech"]
    if carried:
        return carried, f"the speech classifier {head_source(head)} carries"
    return file_digest(DEFAULT_WEIGHTS), f"the shipped {DEFAULT_WEIGHTS.name}"


def read_oof(path, weights: Optional[Path] = None, head=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{set: (token logits [n, 7], labels [n])} of a --oof file, each set in its train split's row order. Refused
    (DataError, one line) when it is not such a file, or holds the logits of other speech weights than the head
    reads (speech_weights_of: `weights`, else those `head` carries, else the shipped). Before 2026-12-06 they were
    checked against the shipped file alone: a studio's own file was refused with a traceback, and the shipped
    classifier's logits were taken for a head carrying the studio's."""
    data = oof_file(path)
    digest, whose = speech_weights_of(weights, head)
    if str(data["weights_digest"]) != digest:
        raise DataError(f"--speech_oof {path} holds logits of other speech weights than {whose}: write them with "
                        "python -m training.speech_classifier --out <that classifier> --oof NPZ (its --data too)")
    sets = data["sets"].astype(str)
    return {name: (data["logits"][sets == name].astype(np.float32), data["labels"][sets == name].astype(np.int64))
            for name in dict.fromkeys(sets.tolist())}


def oof_dev_sets(path) -> list[str]:
    """The sets of a --oof file with dev speakers (calibration fits the speech temperature for speakers like theirs):
    as the file records them; a file written before 2026-12-06 records none: the shipped DEV_SETS it holds, else
    every set it holds (a studio's own names: before, no row was read)."""
    data = oof_file(path)
    held = list(dict.fromkeys(data["sets"].astype(str).tolist()))
    if "dev_sets" in data:
        return [str(s) for s in data["dev_sets"].tolist()]
    return [s for s in held if s in ("ravdess", "emodb")] or held


def speakerless(sets: Sequence[str], root: Optional[Path] = None) -> list[str]:
    """The sets among `sets` whose train split has no `speaker` column (--oof deals speakers into folds)."""
    return [name for name in sets if parquet_speakers(speech_path(name, "train", root)) is None]


def write_oof(path: Path, weights: Path, folds: int, sets: Sequence[str] = DEV_SETS, log=print,
              dev_sets: Optional[Sequence[str]] = None) -> dict:
    """The shipped classifier's configuration, out of fold on the train speakers of `sets` (default RAVDESS and
    EmoDB; see the module doc): an .npz of logits / labels / speakers / set names, in the classifier's token space
    (its temperature applied), and a report: accuracy and ECE per set. Every fold trains on all of TRAIN_SETS but
    its held-out speakers, so a set's rows do not depend on which other sets are written. The file records
    `dev_sets` (default DEV_SETS: the sets with dev speakers, whose rows calibration reads, oof_dev_sets)."""
    import torch

    from model.asr import load_asr_model
    from model.encoders._cache import file_digest
    from model.encoders.speech import SpeechFeaturizer, load_head

    torch.set_num_threads(1)
    head, ckpt = load_head(weights)
    meta = ckpt.get("meta") or {}
    cfg = TrainConfig(**meta["chosen"])
    featurizer = SpeechFeaturizer(load_asr_model(cpu_threads=1, compute_type=COMPUTE_TYPE))
    feats = load_features(featurizer, cfg.prosody, log=log)
    speakers = {name: [str(x) for x in read_column(name, "train", "speaker")] for name in sets}
    res = out_of_fold(feats, speakers, cfg, int(meta.get("members", 1)), folds, float(head.temperature), sets=sets,
                      log=log)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, logits=np.concatenate([v[0] for v in res.values()]),
             labels=np.concatenate([v[1] for v in res.values()]),
             speakers=np.concatenate([v[2] for v in res.values()]),
             sets=np.concatenate([[name] * len(v[1]) for name, v in res.items()]),
             weights_digest=np.array(file_digest(weights)), dev_sets=np.array(list(dev_sets or DEV_SETS)))
    return {name: dev_metrics(v[0], v[1]) for name, v in res.items()}


# ---------------------------------------------------------------- cost and ASR-reuse measurements
def bench_encoder(featurizer, lengths=(1, 2, 3, 5, 10, 20, 30), repeats: int = 3, log=print) -> list[dict]:
    """Whisper-base encoder time on this process's threads for inputs of `lengths` seconds (real speech,
    tiled), best of `repeats`; the 30 s row is what one ASR chunk's encoder pass costs."""
    from model.encoders.speech import HOP

    speech = read_speech_set("ravdess", "dev", limit=4).waves
    tiled = np.tile(np.concatenate(speech), 20)
    rows = []
    featurizer._encode_mels(featurizer.fe(tiled[:SAMPLE_RATE], padding=0)[None, :, :100])  # warm-up
    for sec in lengths:
        frames = int(sec * SAMPLE_RATE / HOP)
        mel = featurizer.fe(tiled[: sec * SAMPLE_RATE], padding=0)[:, :frames]
        best = min(_timed(lambda: featurizer._encode_mels(mel[None])) for _ in range(repeats))
        rows.append({"seconds": sec, "mel_frames": frames, "encode_ms": best * 1000,
                     "ms_per_audio_second": best * 1000 / sec})
        log(f"encoder {sec:>4} s input ({frames} mel frames): {best * 1000:7.1f} ms  "
            f"({best * 1000 / sec:.1f} ms per audio second)")
    waves = read_speech_set("ravdess", "dev", rows=range(0, 120, 12)).waves
    full = _timed(lambda: featurizer.features(waves)) / len(waves)
    log(f"whole featurizer (decode excluded: trim + log-mel + encoder + pooling) on 2.39 s RAVDESS clips: "
        f"{full * 1000:.1f} ms/clip")
    rows.append({"featurizer_ms_per_ravdess_clip": full * 1000})
    return rows


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def asr_reuse_check(featurizer, head, offset_s: float = 10.0, n: int = 10, log=print) -> dict:
    """Could the pipeline pool the ASR pass's encoder output instead of running the encoder again?
    Each dev clip is placed at `offset_s` inside a 30 s window of other dev speech, the window is encoded
    as transcription does (log-mel of the whole window, 3000 frames), the clip's states are sliced out
    and pooled; compared with the featurizer's own short pass: feature cosine, label agreement, mean |dp|."""
    import torch

    from model.encoders.speech import STATE_HOP, trim_silence

    dev = read_speech_set("ravdess", "dev")
    others = np.concatenate([trim_silence(w) for w in dev.waves[60:]])
    picks = np.linspace(0, 59, n).astype(int)
    cos, agree, dp = [], [], []
    for i in picks:
        clip = trim_silence(dev.waves[i])
        start = int(offset_s * SAMPLE_RATE) // STATE_HOP * STATE_HOP
        window = np.concatenate([others[:start], clip, others[start:]])[: 30 * SAMPLE_RATE]
        mel = featurizer.fe(window, padding=160)[:, :3000]
        states = featurizer._encode_mels(mel[None])[0]
        a = start // STATE_HOP
        s = states[a: a + int(np.ceil(len(clip) / STATE_HOP))]
        reused = np.concatenate([s.mean(0), s.std(0)])[None]
        own = featurizer.features([dev.waves[i]])
        cos.append(float((reused @ own.T)[0, 0] / np.linalg.norm(reused) / np.linalg.norm(own)))
        if head.cfg.prosody:
            from model.encoders.speech import prosody_stats
            extra = np.concatenate(prosody_stats(clip))[None]
            reused, own = np.concatenate([reused, extra], 1), featurizer.features([dev.waves[i]], prosody=True)
        with torch.inference_mode():
            pr = torch.softmax(head(torch.from_numpy(reused).float()), 1).numpy()
            po = torch.softmax(head(torch.from_numpy(own).float()), 1).numpy()
        agree.append(bool(pr.argmax() == po.argmax()))
        dp.append(float(np.abs(pr - po).sum() / 2))
    out = {"n": len(picks), "feature_cosine_mean": float(np.mean(cos)), "label_agreement": float(np.mean(agree)),
           "mean_total_variation": float(np.mean(dp))}
    log(f"ASR-window reuse vs own short pass on {out['n']} RAVDESS dev clips: feature cosine "
        f"{out['feature_cosine_mean']:.3f}, same label {out['label_agreement']:.2f}, "
        f"mean total-variation distance {out['mean_total_variation']:.3f}")
    return out


def shared_clips(root: Optional[Path] = None) -> tuple[int, int]:
    """Warns in one line (training.datasets.train_dev_overlap) of dev clips byte-identical to train clips of any set,
    and of a set's speakers in both its train and dev splits: read from the files' bytes, nothing decoded."""
    def clips(split: str) -> tuple[list[str], set[str]]:
        names = [n for n, splits in SPEECH_SETS.items() if split in splits]
        return ([d for n in names for d in media_digests(speech_path(n, split, root), "audio")],
                set().union(*(set_speakers(n, parquet_speakers(speech_path(n, split, root))) for n in names)))
    (train, train_speakers), (dev, dev_speakers) = clips("train"), clips("dev")
    return train_dev_overlap("training.speech_classifier", train, dev, train_speakers, dev_speakers)


def sets_under(root: Path) -> dict[str, tuple[str, ...]]:
    """The speech sets a folder holds: {name: its splits} for each ROOT/audio/<name>/ with a train.parquet or a
    dev.parquet (a studio's own sets, under names of its own)."""
    return {d.name: tuple(s for s in ("train", "dev") if (d / f"{s}.parquet").is_file())
            for d in sorted(Path(root, "audio").glob("*")) if (d / "train.parquet").is_file()
            or (d / "dev.parquet").is_file()}


def main(argv=None) -> None:
    from training.metrics import format_table
    global DATA_ROOT, SPEECH_SETS, TRAIN_SETS, DEV_SETS  # --data: the folder and the sets in it

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "model" / "weights" / "speech_emotion.pt")
    ap.add_argument("--report", type=Path, default=None, help="write the dev report (JSON) here")
    ap.add_argument("--members", type=int, default=5, help="seeds of the chosen config to average")
    ap.add_argument("--data", type=Path, default=None,
                    help="the folder holding the sets (default: FILM_EMOTION_DATA, else ../shared/data): your own, laid "
                         "out as the model card's *Retraining on your own data* says")
    ap.add_argument("--features_only", action="store_true", help="fill the feature cache and stop")
    ap.add_argument("--oof", type=Path, default=None,
                    help="write the --out classifier's speaker-out-of-fold logits on the --oof_sets train splits here "
                         "(.npz, for pipeline.calibrate --speech_oof and pipeline.train --speech_oof) and stop")
    ap.add_argument("--folds", type=int, default=8, help="speaker folds per set for --oof (at most its speakers)")
    ap.add_argument("--oof_sets", default=",".join(DEV_SETS),
                    help=f"the train sets --oof predicts, out of {','.join(TRAIN_SETS)} (tess too: the speech tokens "
                         "pipeline.train --speech_oof gives the head)")
    ap.add_argument("--bench", action="store_true",
                    help="measure the encoder's cost on 1 thread and the ASR-window reuse agreement (needs --out weights)")
    args = ap.parse_args(argv)
    if args.data:
        DATA_ROOT = args.data.expanduser()
        SPEECH_SETS = sets_under(DATA_ROOT)
        TRAIN_SETS = tuple(n for n, splits in SPEECH_SETS.items() if "train" in splits)
        DEV_SETS = tuple(n for n, splits in SPEECH_SETS.items() if "dev" in splits)
        if not (TRAIN_SETS and DEV_SETS):
            ap.error(f"--data {args.data}: no audio/<set>/train.parquet and dev.parquet under it")
        if args.oof_sets == ap.get_default("oof_sets"):  # the shipped sets' names: this folder's instead
            args.oof_sets = ",".join(n for n in DEV_SETS if n in TRAIN_SETS)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.bench:
        import torch

        from model.encoders.speech import load_speech_emotion_encoder
        torch.set_num_threads(1)
        enc = load_speech_emotion_encoder(args.out, cpu_threads=1)
        report = {"encoder": bench_encoder(enc.featurizer), "asr_reuse": asr_reuse_check(enc.featurizer, enc.head)}
        if args.report:
            args.report.write_text(json.dumps(report, indent=1))
        return
    if args.oof:
        sets = [x.strip() for x in args.oof_sets.split(",") if x.strip()]
        if unknown := sorted(set(sets) - set(TRAIN_SETS)):
            ap.error(f"--oof_sets: {unknown} are not train sets ({', '.join(TRAIN_SETS)})")
        if not args.out.is_file():
            ap.error(f"--out {args.out}: no such file: --oof writes the logits of the speech classifier --out names")
        # checked before any feature is made: before 2026-12-06 a set without speakers was a pyarrow traceback after
        if missing := speakerless(sets):
            ap.error(f"--oof deals each set's speakers into folds: {', '.join(missing)} has no `speaker` column "
                     "in its train.parquet (give it one, or leave the set out of --oof_sets)")
        for name, m in write_oof(args.oof, args.out, args.folds, sets, dev_sets=DEV_SETS).items():
            print(format_table(f"{name}/train, speaker-out-of-fold", m))
        return
    if args.features_only:
        from model.asr import load_asr_model
        from model.encoders.speech import SpeechFeaturizer
        import torch
        torch.set_num_threads(1)
        featurizer = SpeechFeaturizer(load_asr_model(cpu_threads=1, compute_type=COMPUTE_TYPE))
        load_features(featurizer, True)
        return
    from pipeline.arg_types import shipped_file_problem
    if problem := shipped_file_problem(args.out, REPO / "model" / "weights" / "speech_emotion.pt", bool(args.data)):
        ap.error(problem)
    shared_clips()
    report = run(args.out, members=args.members)
    print(f"chosen {report['chosen']} x {report['members']} seeds  temperature {report['temperature']:.3f}  "
          f"pooled dev ece {report['pooled_dev']['ece']:.4f}")
    for s, m in report["dev"].items():
        print(format_table(f"{s}/dev", m))
        cross = report["crossfit_ece"].get(s)
        print(f"  ece before temperature {report['uncalibrated_ece'][s]:.4f}"
              + (f"; with the other sets' temperature ({cross['temperature']:.3f}) {cross['ece']:.4f}" if cross else ""))
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
