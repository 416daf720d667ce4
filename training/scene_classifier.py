"""Scene emotion head on Emotion6 photos: reader, ViT feature cache, training, calibration.

    python -m training.scene_classifier --out model/weights/scene_emotion.pt
    python -m training.scene_classifier --cv 5     # K-fold accuracy on train of the shipped configuration

Photos are squashed to 224x224 by the pipeline's own conversion of a still (`transforms.decode.still_clip`, as
`frames:` data and films' frames are) and encoded by the project's DINOv2 ViT-S/14
(`model.encoders.vision.load_vision_encoder()`, its default precision, as serving runs it); the [n, 2, 384] scene
tokens are cached under .cache/scene_features/, keyed by the Parquet file's hash and the vision encoder's version
(train photos also mirrored, as augmentation). Targets: the 15 raters' 7-way vote
distribution (soft cross-entropy) and valence/arousal mapped from 1-9 to [-1, 1] (MSE). A small grid is
trained on train, the best dev accuracy (top rater label) is kept and retrained with more seeds
(outputs averaged), and its temperature is fitted on dev.
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

from schemas.labels import EMOTIONS
from training.branch_heads import ensemble
from training.datasets import label_indices, media_bytes, media_digests, parquet_columns, train_dev_overlap
from model.files import written_atomically

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("FILM_EMOTION_DATA") or REPO.parent / "shared" / "data")
SCENE_SET = "emotion6"  # DATA_ROOT/scenes/<SCENE_SET>/{train,dev}.parquet; --data: the one set its folder holds
CACHE_ROOT = REPO / ".cache" / "scene_features"
IMAGE_SIZE = 224
VA_MID, VA_HALF = 5.0, 4.0  # 1..9 -> [-1, 1]
CROP_SIDE = 0.8  # a corner crop keeps this share of each side (benchmarks.scene_probes' augmentation)


@dataclasses.dataclass(frozen=True)
class SceneSet:
    split: str
    images: list  # JPEG bytes
    labels: np.ndarray  # int64 top rater label, EMOTIONS order
    probs: np.ndarray  # float32 [n, 7] rater distribution, EMOTIONS order
    va: np.ndarray  # float32 [n, 2] valence, arousal in [-1, 1]
    rater_columns: tuple = ()  # the p_* columns the distribution was read from (none: each photo's label)


def scene_path(split: str, root: Optional[Path] = None) -> Path:
    """Where a split lies under `root` (default DATA_ROOT: FILM_EMOTION_DATA, --data, else ../shared/data)."""
    return Path(root or DATA_ROOT) / "scenes" / SCENE_SET / f"{split}.parquet"


def read_scene_set(split: str, limit: Optional[int] = None, rows: Optional[Sequence[int]] = None,
                   root: Optional[Path] = None) -> SceneSet:
    table = parquet_columns(scene_path(split, root), ["image", "label", "valence", "arousal"]
                            + [f"p_{e}" for e in EMOTIONS], required=("image", "label"))
    if rows is not None:
        table = table.take(list(rows))
    elif limit is not None:
        table = table.slice(0, limit)
    d = table.to_pydict()
    path = scene_path(split, root)
    labels = np.array(label_indices(d["label"], str(path)), np.int64)
    rater_columns = tuple(f"p_{e}" for e in EMOTIONS if f"p_{e}" in d)
    if rater_columns:  # the raters' shares; a class without a column has none (a studio's set without disgust):
        # before 2026-12-06 a set lacking one of the seven columns was learnt from its labels alone, without a word
        probs = np.array([d.get(f"p_{e}", np.zeros(len(labels))) for e in EMOTIONS], np.float32).T
    else:  # a set of one label each (a studio's own): that label is the distribution
        probs = np.eye(len(EMOTIONS), dtype=np.float32)[labels]
    probs = probs / np.maximum(probs.sum(1, keepdims=True), 1e-8)
    # valence / arousal on 1-9; without them NaN, which the intensity loss leaves out (train_scene_head)
    va = (np.array([[np.nan if v is None else v for v in d.get(k, [None] * len(labels))]
                    for k in ("valence", "arousal")], np.float32).T - VA_MID) / VA_HALF
    # the photos as pipeline.train reads them (a Hugging Face {bytes, path} struct too: a TypeError before 2026-12-06)
    return SceneSet(split, media_bytes(d["image"], path, "image"), labels, probs, va, rater_columns)


def rater_note(data: SceneSet) -> str:
    """Which columns a split's targets were read from, for the one line run() says about each split."""
    if not data.rater_columns:
        return "no p_* columns: each photo's label is its distribution"
    missing = [f"p_{e}" for e in EMOTIONS if f"p_{e}" not in data.rater_columns]
    return (f"rater shares from {', '.join(data.rater_columns)}"
            + (f" ({', '.join(missing)}: no column, read as 0)" if missing else ""))


def shared_photos(root: Optional[Path] = None) -> tuple[int, int]:
    """Warns in one line (training.datasets.train_dev_overlap) of dev photos byte-identical to train photos: read
    from the files' bytes, nothing decoded."""
    return train_dev_overlap("training.scene_classifier", media_digests(scene_path("train", root), "image"),
                             media_digests(scene_path("dev", root), "image"))


def decode_image(data: bytes, size: int = IMAGE_SIZE, mirror: bool = False,
                 corner: Optional[int] = None) -> np.ndarray:
    """JPEG/PNG bytes -> uint8 [size, size, 3], squashed (aspect not kept) by the pipeline's conversion of a still
    (transforms.decode.still_clip). `corner` (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) first crops
    CROP_SIDE of each side there; `mirror` flips the photo."""
    from transforms.decode import DecodeConfig, decode_image as decode_bytes, still_clip

    img = decode_bytes(data)
    if corner is not None:
        h, w = img.shape[:2]
        ch, cw = int(h * CROP_SIDE), int(w * CROP_SIDE)
        y0, x0 = (0 if corner in (0, 1) else h - ch), (0 if corner in (0, 2) else w - cw)
        img = img[y0:y0 + ch, x0:x0 + cw]
    if mirror:
        img = img[:, ::-1]
    return still_clip(img, DecodeConfig(image_size=size, face_width=0)).frames[0]


def encode_images(vision, images: Sequence[bytes], mirror: bool = False, batch: int = 32,
                  corner: Optional[int] = None) -> np.ndarray:
    """Photos -> the scene classifier's tokens [n, 2, 384] (VisionEncoder.encode's second output)."""
    out = []
    for i in range(0, len(images), batch):
        out.append(vision.encode(np.stack([decode_image(b, mirror=mirror, corner=corner)
                                           for b in images[i:i + batch]]))[1])
    return np.concatenate(out) if out else np.zeros((0, vision.scene_tokens, vision.dim), np.float32)


def cached_tokens(vision, split: str, mirror: bool = False, root: Optional[Path] = None, cache: Path = CACHE_ROOT,
                  log=print, corner: Optional[int] = None) -> np.ndarray:
    from model.encoders._cache import file_digest
    from transforms.decode import IMAGE_RULE

    path = scene_path(split, root)
    variant = ("-mirror" if mirror else "") + (f"-crop{corner}-{CROP_SIDE:g}" if corner is not None else "")
    # keyed by how images decode too (IMAGE_RULE: an EXIF turn changed the pixels of photos stored sideways)
    out = Path(cache) / (f"{SCENE_SET}-{split}{variant}-scene-{vision.version}-{file_digest(path)[:12]}"
                         f"-img{IMAGE_RULE}.npy")
    if out.exists():
        return np.load(out)
    data = read_scene_set(split, root=root)
    t0 = time.perf_counter()
    x = encode_images(vision, data.images, mirror=mirror, corner=corner).astype(np.float32)
    if log:
        dt = time.perf_counter() - t0
        log(f"{SCENE_SET}/{split}{variant}: {len(x)} photos, {dt:.1f} s "
            f"({dt / len(x) * 1000:.1f} ms/photo incl. JPEG decode + resize)")
    with written_atomically(out) as tmp:
        np.save(tmp, x)
    return x


# ---------------------------------------------------------------- training
@dataclasses.dataclass(frozen=True)
class SceneTrainConfig:
    hidden: int = 0
    dropout: float = 0.0
    weight_decay: float = 1e-2
    lr: float = 1e-3
    epochs: int = 80
    beta: float = 0.5  # weight of the valence/arousal MSE
    mirror: bool = True  # add mirrored train photos
    seed: int = 0


def training_arrays(x: np.ndarray, x_mirror: Optional[np.ndarray], data: SceneSet, cfg: SceneTrainConfig,
                    rows=slice(None)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tokens, rater distributions, valence/arousal) a head with `cfg` trains on: `rows` of the train photos,
    followed by their mirror images when cfg.mirror."""
    if not cfg.mirror:
        return x[rows], data.probs[rows], data.va[rows]
    return (np.concatenate([x[rows], x_mirror[rows]]), np.concatenate([data.probs[rows]] * 2),
            np.concatenate([data.va[rows]] * 2))


def train_scene_head(tokens: np.ndarray, probs: np.ndarray, va: np.ndarray, cfg: SceneTrainConfig):
    import torch

    from model.encoders.scene import SceneEmotionHead, SceneHeadConfig, pooled_features

    torch.manual_seed(cfg.seed)
    x = pooled_features(tokens)
    p = torch.from_numpy(probs).float()
    v = torch.from_numpy(va).float()
    head = SceneEmotionHead(SceneHeadConfig(dim=tokens.shape[-1], hidden=cfg.hidden, dropout=cfg.dropout))
    head.mean.copy_(x.mean(0))
    head.scale.copy_(x.std(0).clamp_min(1e-4))
    opt = torch.optim.AdamW(head.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    batch = 64
    steps = cfg.epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    g = torch.Generator().manual_seed(cfg.seed)
    head.train()
    for _ in range(cfg.epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            logits, pred_va = head.raw(x[idx])
            ce = -(p[idx] * torch.log_softmax(logits, 1)).sum(1).mean()
            known = ~torch.isnan(v[idx])  # every value where the set has them (as before); none where it has not
            va_loss = (((pred_va - v[idx].nan_to_num()) ** 2) * known).sum() / known.numel()
            loss = ce + cfg.beta * va_loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return head.eval()


def head_outputs(head, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import torch

    from model.encoders.scene import pooled_features

    with torch.inference_mode():
        logits, va = head.raw(pooled_features(tokens))
    return logits.numpy(), va.numpy()


GRID = [SceneTrainConfig(hidden=h, dropout=d, weight_decay=wd, epochs=e, mirror=m)
        for (h, d, wd) in ((0, 0.0, 1e-2), (0, 0.3, 1e-1), (0, 0.6, 1e-1), (256, 0.3, 1e-2), (256, 0.6, 1e-1))
        for e in (40, 100)
        for m in (True, False)]


def run(out: Path, grid: Sequence[SceneTrainConfig] = GRID, members: int = 5, log=print,
        gate_graphics: int = 280) -> dict:
    import torch

    from model.encoders.scene import save_scene_head
    from model.encoders.vision import load_vision_encoder
    from training.metrics import classification_metrics
    from training.metrics import fit_temperature
    from scipy.special import softmax

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    vision = load_vision_encoder()
    tr, dev = read_scene_set("train"), read_scene_set("dev")
    for data in (tr, dev):
        log(f"{SCENE_SET}/{data.split}: {rater_note(data)}")
    x_tr, x_dev = cached_tokens(vision, "train", log=log), cached_tokens(vision, "dev", log=log)
    x_mir = cached_tokens(vision, "train", mirror=True, log=log) if any(c.mirror for c in grid) else None
    t_feat = time.perf_counter() - t0
    results = []
    t1 = time.perf_counter()
    for cfg in grid:
        head = train_scene_head(*training_arrays(x_tr, x_mir, tr, cfg), cfg)
        logits, _ = head_outputs(head, x_dev)
        acc = float((logits.argmax(1) == dev.labels).mean())
        results.append((acc, cfg, head))
        log(f"{cfg}: dev accuracy {acc:.3f}")
    t_train = time.perf_counter() - t1
    acc, cfg, head = max(results, key=lambda r: r[0])
    if members > 1:  # the chosen config, retrained with other seeds, outputs averaged
        t2 = time.perf_counter()
        arrays = training_arrays(x_tr, x_mir, tr, cfg)
        heads = [head] + [train_scene_head(*arrays, dataclasses.replace(cfg, seed=k)) for k in range(1, members)]
        head = ensemble(heads)
        ens_acc = float((head_outputs(head, x_dev)[0].argmax(1) == dev.labels).mean())
        log(f"ensemble of {members}: dev accuracy {ens_acc:.3f} ({time.perf_counter() - t2:.0f} s)")
        t_train += time.perf_counter() - t2
    logits, va = head_outputs(head, x_dev)
    temp = fit_temperature(logits, dev.labels)
    head.temperature.fill_(temp)
    probs = softmax(logits / temp, axis=1)
    has_va = not np.isnan(dev.va).any()
    m = classification_metrics(dev.labels, probs.argmax(1), intensity_pred=va if has_va else None,
                               intensity_true=dev.va if has_va else None, probs=probs)
    m["ece_uncalibrated"] = classification_metrics(dev.labels, logits.argmax(1), probs=softmax(logits, axis=1))["ece"]
    m["soft_ce"] = float(-(dev.probs * np.log(np.maximum(probs, 1e-12))).sum(1).mean())
    m["va_mae"] = [float(a) for a in np.abs(va - dev.va).mean(0)] if has_va else None
    # honest calibration estimate: temperature from one half of dev, ECE on the other half (and swapped)
    halves = np.arange(len(dev.labels)) % 2
    cross = []
    for h in (0, 1):
        t_h = fit_temperature(logits[halves == h], dev.labels[halves == h])
        pr = softmax(logits[halves != h] / t_h, axis=1)
        cross.append(classification_metrics(dev.labels[halves != h], pr.argmax(1), probs=pr)["ece"])
    m["ece_crossfit_halves"] = float(np.mean(cross))
    # which frames it reads: a picture gate learnt from the same train photos (training.picture_gate), carried
    from model.encoders.scene import PictureGate
    from training.picture_gate import learn_gate
    gate, held = learn_gate(vision, tr.images, x_tr, gate_graphics)
    passed = float(PictureGate(**gate).pictures(x_dev).mean())
    log(f"picture gate: {passed:.1%} of {SCENE_SET}/dev photos read, {held:.1%} of held-out drawn graphics")
    save_scene_head(head, out, meta={"chosen": dataclasses.asdict(cfg), "members": members, "temperature": temp,
                                     "dev_accuracy": m["accuracy"], "trained_on": [f"{SCENE_SET}/train"],
                                     "data_root": str(DATA_ROOT),
                                     "calibrated_on": [f"{SCENE_SET}/dev"], "vision": vision.version,
                                     "picture_gate": {"dev_photos_read": passed, "held_out_graphics_read": held}},
                    gate=gate)
    return {"chosen": dataclasses.asdict(cfg), "members": members, "temperature": temp, "dev": m, "vision": vision.version,
            "picture_gate": {"dev_photos_read": passed, "held_out_graphics_read": held},
            "grid": [{"config": dataclasses.asdict(c), "dev_accuracy": a} for a, c, _ in results],
            "feature_seconds": t_feat, "grid_train_seconds": t_train}


def cv_accuracy(x: np.ndarray, x_mirror: np.ndarray, data: SceneSet, cfg: SceneTrainConfig, k: int = 5,
                seed: int = 0, log=print) -> list[float]:
    """Per fold of a stratified K-fold split of `data` (tokens x, their mirror images x_mirror), the accuracy of
    a head trained with `cfg` on the other folds (one seed: the shipped head averages several)."""
    from sklearn.model_selection import StratifiedKFold

    accs = []
    for fold, (fit, held) in enumerate(StratifiedKFold(k, shuffle=True, random_state=seed).split(x, data.labels)):
        head = train_scene_head(*training_arrays(x, x_mirror, data, cfg, fit), cfg)
        accs.append(float((head_outputs(head, x[held])[0].argmax(1) == data.labels[held]).mean()))
        log(f"fold {fold + 1}/{k}: accuracy {accs[-1]:.3f} on {len(held)} photos")
    return accs


def cross_validate(weights: Path, k: int = 5, log=print) -> dict:
    """K-fold accuracy on Emotion6 train of the configuration `weights` was trained with. Dev chose that
    configuration among GRID's, so dev accuracy is the best of 20 draws; this estimate has no such selection."""
    import torch

    from model.encoders.vision import load_vision_encoder

    torch.set_num_threads(1)
    cfg = SceneTrainConfig(**torch.load(weights, map_location="cpu", weights_only=True)["meta"]["chosen"])
    vision = load_vision_encoder()
    x, x_mir = cached_tokens(vision, "train", log=log), cached_tokens(vision, "train", mirror=True, log=log)
    accs = cv_accuracy(x, x_mir, read_scene_set("train"), cfg, k, log=log)
    return {"config": dataclasses.asdict(cfg), "folds": accs, "mean": float(np.mean(accs)), "std": float(np.std(accs))}


def bench(weights: Path, n: int = 32, precisions=("auto", "fp32")) -> dict:
    """ms per photo on 1 thread: JPEG decode + squash, the ViT (each precision), the head."""
    import torch

    from model.encoders.scene import load_scene_head
    from model.encoders.vision import load_vision_encoder

    torch.set_num_threads(1)
    data = read_scene_set("dev", limit=n)
    t = time.perf_counter()
    frames = np.stack([decode_image(b) for b in data.images])
    out = {"n": n, "decode_resize_ms": (time.perf_counter() - t) * 1000 / n}
    head = load_scene_head(weights)
    for p in precisions:
        vision = load_vision_encoder(precision=p)
        vision.encode(frames[:2])  # warm-up
        t = time.perf_counter()
        tokens = vision.encode(frames)[1]
        out[f"vit_{p}_ms"] = (time.perf_counter() - t) * 1000 / n
        t = time.perf_counter()
        logits, _ = head.encode(tokens)
        out["head_ms"] = (time.perf_counter() - t) * 1000 / n
        out[f"accuracy_{p}_first{n}"] = float((logits.argmax(1) == data.labels).mean())
    return out


def main(argv=None) -> None:
    from training.metrics import format_table

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "model" / "weights" / "scene_emotion.pt")
    ap.add_argument("--report", type=Path, default=None, help="write the dev report (JSON) here")
    ap.add_argument("--members", type=int, default=5, help="seeds of the chosen config to average")
    ap.add_argument("--data", type=Path, default=None,
                    help="the folder holding the sets (default: FILM_EMOTION_DATA, else ../shared/data): your own, laid "
                         "out as the model card's *Retraining on your own data* says")
    ap.add_argument("--features_only", action="store_true", help="fill the feature cache and stop")
    ap.add_argument("--bench", action="store_true", help="time the ViT + head per photo on 1 thread and stop")
    ap.add_argument("--cv", type=int, default=0,
                    help="K-fold accuracy on train of the configuration --out was trained with, and stop")
    args = ap.parse_args(argv)
    if args.data:
        global DATA_ROOT, SCENE_SET
        DATA_ROOT = args.data.expanduser()
        found = sorted(d.name for d in Path(DATA_ROOT, "scenes").glob("*") if (d / "train.parquet").is_file()
                       and (d / "dev.parquet").is_file())
        if len(found) != 1:
            ap.error(f"--data {args.data}: give one scenes/<set>/ with train.parquet and dev.parquet (found "
                     f"{', '.join(found) or 'none'})")
        SCENE_SET = found[0]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.bench:
        print(json.dumps(bench(args.out), indent=1))
        return
    if args.cv:
        r = cross_validate(args.out, args.cv)
        print(f"{args.cv}-fold accuracy on {SCENE_SET}/train: {r['mean']:.3f} +- {r['std']:.3f} ({r['config']})")
        return
    if args.features_only:
        import torch

        from model.encoders.vision import load_vision_encoder
        torch.set_num_threads(1)
        vision = load_vision_encoder()
        for split, mirror in (("dev", False), ("train", False), ("train", True)):
            cached_tokens(vision, split, mirror=mirror)
        return
    from pipeline.arg_types import shipped_file_problem
    if problem := shipped_file_problem(args.out, REPO / "model" / "weights" / "scene_emotion.pt", bool(args.data)):
        ap.error(problem)
    shared_photos()
    report = run(args.out, members=args.members)
    m = report["dev"]
    print(f"chosen {report['chosen']} x {report['members']} seeds  temperature {report['temperature']:.3f}")
    print(format_table(f"{SCENE_SET}/dev", m))
    print(f"  ece before temperature {m['ece_uncalibrated']:.4f}; cross-fitted halves {m['ece_crossfit_halves']:.4f}; "
          f"soft CE vs raters {m['soft_ce']:.4f}; valence/arousal MAE (of [-1,1]) "
          + (f"{m['va_mae']}" if m["va_mae"] is not None else "- (the set has none)"))
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
