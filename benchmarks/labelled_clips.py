"""Clip-level check on labelled audio-visual films: does the whole pipeline get the emotion of a film right?

Each film is a labelled image (a face or a scene photo) shown while a dev speaker says a line with the same
emotion: 2-5 s, H.264 + AAC, no subtitles, made by ../shared/tools/make_av_clips.py (pairs chosen
deterministically, `--per_class` films per label). The films go through the real pipeline (`pipeline.run.run`,
DirectRunner, the options given on the command line passed through: `--head`, `--transcribe never`,
`--modalities face`, ...), and each film's prediction is compared with its label:

- fused: the clips table's `emotion`, and how sure it says it is: the mean of its `confidence` and the 15-bin ECE
  of its `prob_*` columns over the films (training.metrics);
- per modality: argmax of `evidence_text`, `evidence_face`, `evidence_scene`, `evidence_speech` (7
  probabilities in EMOTIONS order, null when the clip had no such input); `cover` = share of films where the
  modality had input, its accuracy is over those films only;
- `face found`: share of films with `n_faces > 0`; `grounded`: share of films whose label is grounded, and the
  fused accuracy on grounded vs not grounded films.

One film may be cut into several clips (with the default `--segment subtitle` and no subtitles: speech-recognised
cues, the gaps as window clips). `--aggregate middle` (default) takes the clip covering the middle of the film
(the span of its clips), where the spoken line is; `--aggregate weighted` averages the clips' probabilities
weighted by clip duration (fused probabilities over all clips, each modality's evidence over the clips that
have it), a face counts as found when any clip has one, and grounded is recomputed from the averaged evidence
(support of the fused label >= transforms.fuse.GROUNDED_SUPPORT). A film with no clip rows (an error) counts
as wrong and is reported in `missing`.

    python -m benchmarks.labelled_clips [--pairs imfdb+ravdess,emotion6+emodb,ferplus+ravdess] [--per_class 5]
        [--aggregate middle|weighted] [--hdr] [--json OUT.json] [--keep_runs DIR] [pipeline options: --head CKPT ...]

Films are cached under .cache/avclips/<images>-<audio>-<per_class>/ (reused when present). Only dev splits.
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

from schemas.clips import EVIDENCE_MODALITIES
from schemas.labels import EMOTIONS, PROB_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
MAKE_AV_CLIPS = ROOT.parent / "shared" / "tools" / "make_av_clips.py"
CACHE = ROOT / ".cache" / "avclips"

# name -> (images parquet, audio parquet), relative to ../shared/data; dev splits only.
PAIRS: dict[str, tuple[str, str]] = {
    "imfdb+ravdess": ("faces/imfdb/dev.parquet", "audio/ravdess/dev.parquet"),
    "emotion6+emodb": ("scenes/emotion6/dev.parquet", "audio/emodb/dev.parquet"),
    "ferplus+ravdess": ("faces/ferplus/dev.parquet", "audio/ravdess/dev.parquet"),
}
DEFAULT_PAIRS = tuple(PAIRS)
AGGREGATES = ("middle", "weighted")


# ---------------------------------------------------------------- films
def _set_name(path: str) -> str:
    """faces/imfdb/dev.parquet -> imfdb_dev."""
    p = Path(path)
    return f"{p.parent.name}_{p.stem}"


def make_films(images: str, audio: str, per_class: int, cache: Path = CACHE,
               python: str = sys.executable) -> Path:
    """The labelled films of one pair, made once by make_av_clips.py into
    cache/<images>-<audio>-<per_class>/ (<label>_<nn>.mp4 + labels.csv) and reused when present.
    Both sets' labels are read as the trainer reads them (training.datasets.labelled: 'happy' is joy), so a set
    spelt otherwise pairs with ours; rows with no label of ours (FER+ contempt / no majority: null) are left out
    first."""
    images_p, audio_p = Path(images), Path(audio)
    if not images_p.is_absolute():
        images_p = DATA / images_p
    if not audio_p.is_absolute():
        audio_p = DATA / audio_p
    out = Path(cache) / f"{_set_name(str(images_p))}-{_set_name(str(audio_p))}-{per_class}"
    if (out / "labels.csv").exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        images_l, audio_l = _in_our_labels(images_p, "image", work), _in_our_labels(audio_p, "audio", work)
        films = work / "films"
        subprocess.run([python, str(MAKE_AV_CLIPS), str(images_l), str(audio_l), str(films), str(per_class)],
                       check=True, stdout=subprocess.DEVNULL)
        try:
            films.rename(out)
        except OSError:  # made meanwhile by another process: keep theirs
            if not (out / "labels.csv").exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _in_our_labels(path: Path, media: str, work: Path) -> Path:
    """A copy of an image or audio set (media, label, path) with each label in EMOTIONS' names, rows without one
    left out: make_av_clips.py pairs an image and a voice by their label as written."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from training.datasets import labelled
    table = pq.read_table(path, columns=[media, "label", "path"])
    index = [labelled(v)["label"] for v in table.column("label").to_pylist()]
    keep = [i for i, k in enumerate(index) if k >= 0]
    table = table.take(keep).set_column(1, "label", pa.array([EMOTIONS[index[i]] for i in keep], pa.string()))
    out = work / f"{media}.parquet"
    pq.write_table(table, out)
    return out


def hdr_films(films: Path) -> Path:
    """HDR10 copies of a pair's films (HEVC Main 10, BT.2020, PQ: testing.films.make_hdr_copy), made once beside
    them; the labels file is copied last, so its presence marks a complete set."""
    from testing.films import make_hdr_copy
    out = films.with_name(films.name + "-hdr10")
    if not (out / "labels.csv").exists():
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(films.glob("*.mp4")):
            make_hdr_copy(f, out / f.name)
        shutil.copy(films / "labels.csv", out / "labels.csv")
    return out


def read_labels(films_dir: Path) -> list[dict]:
    """labels.csv's rows (labels in EMOTIONS' names: make_films wrote the sets so)."""
    with open(Path(films_dir) / "labels.csv", newline="") as f:
        return list(csv.DictReader(f))


def read_clips(run_dir: Path) -> list[dict]:
    import pyarrow.parquet as pq
    rows: list[dict] = []
    for path in sorted(glob.glob(str(Path(run_dir) / "clips" / "*.parquet"))):
        if not os.path.basename(path).startswith((".", "_")):
            rows += pq.read_table(path).to_pylist()
    return rows


def run_pipeline(films_dir: Path, run_dir: Path, extra: Sequence[str]) -> dict:
    from pipeline.run import run
    argv = ["--input", str(Path(films_dir) / "*.mp4"), "--output", str(run_dir), *extra]
    return run(argv, save_main_session=False)


# ---------------------------------------------------------------- scoring (pure)
def _argmax_label(probs: Optional[Sequence[float]]) -> Optional[str]:
    if probs is None:
        return None
    return EMOTIONS[int(np.argmax(np.asarray(probs, np.float64)))]


def _film_clip(clips: Sequence[Mapping]) -> dict:
    """The clip covering the middle of the film (the span of its clips); the nearest clip when none covers it."""
    start = min(c["start_s"] for c in clips)
    end = max(c["end_s"] for c in clips)
    mid = (start + end) / 2
    covering = [c for c in clips if c["start_s"] <= mid <= c["end_s"]]
    pool = covering or clips
    best = min(pool, key=lambda c: (abs((c["start_s"] + c["end_s"]) / 2 - mid), c["clip_index"]))
    ev = {m: best.get(f"evidence_{m}") for m in EVIDENCE_MODALITIES}
    probs = [best[p] for p in PROB_COLUMNS] if best.get("emotion") is not None else None
    return {"emotion": best.get("emotion"), "probs": probs, "evidence": ev, "face": (best.get("n_faces") or 0) > 0,
            "grounded": best.get("grounded"), "clips": len(clips), "modalities_used": best.get("modalities_used")}


def _film_weighted(clips: Sequence[Mapping], grounded_support: float) -> dict:
    """Duration-weighted mean of the clips' probabilities (each modality over the clips that have it)."""
    w = np.array([max(c["end_s"] - c["start_s"], 1e-6) for c in clips], np.float64)
    scored = [i for i, c in enumerate(clips) if c.get("emotion") is not None]
    emotion, mean = None, None
    if scored:
        probs = np.array([[clips[i][p] for p in PROB_COLUMNS] for i in scored], np.float64)
        mean = list((w[scored, None] * probs).sum(0) / w[scored].sum())
        emotion = EMOTIONS[int(np.argmax(mean))]
    ev: dict[str, Optional[list]] = {}
    for m in EVIDENCE_MODALITIES:
        have = [i for i, c in enumerate(clips) if c.get(f"evidence_{m}") is not None]
        ev[m] = (list((w[have, None] * np.array([clips[i][f"evidence_{m}"] for i in have], np.float64)).sum(0)
                      / w[have].sum()) if have else None)
    grounded = None
    if emotion is not None:
        k = EMOTIONS.index(emotion)
        support = max((p[k] for p in ev.values() if p is not None), default=0.0)
        grounded = bool(support >= grounded_support)
    return {"emotion": emotion, "probs": mean, "evidence": ev, "face": any((c.get("n_faces") or 0) > 0 for c in clips),
            "grounded": grounded, "clips": len(clips)}


def film_predictions(clips: Iterable[Mapping], labels: Iterable[Mapping], aggregate: str = "middle",
                     grounded_support: Optional[float] = None) -> list[dict]:
    """One row per labelled film: file, label, and (when the film has clip rows) its fused emotion, the evidence
    per modality, face found, grounded and its number of clips. Films are matched on the file name."""
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}")
    if grounded_support is None:
        from transforms.fuse import GROUNDED_SUPPORT
        grounded_support = GROUNDED_SUPPORT
    by_film: dict[str, list[Mapping]] = {}
    for c in clips:
        by_film.setdefault(os.path.basename(c["film_path"]), []).append(c)
    out = []
    for lab in labels:
        cs = sorted(by_film.get(lab["file"], []), key=lambda c: c["clip_index"])
        row = {"file": lab["file"], "label": lab["label"]}
        if cs:
            row.update(_film_clip(cs) if aggregate == "middle" else _film_weighted(cs, grounded_support))
        else:
            row.update(emotion=None, probs=None, evidence={m: None for m in EVIDENCE_MODALITIES}, face=False,
                       grounded=None, clips=0)
        out.append(row)
    return out


def without_each(films: Sequence[Mapping]) -> dict[str, dict]:
    """Per evidence modality: the films' fused labels had the clip not had it, by the run's rule (model.predict:
    the product of the remaining classifiers where one backs it; the scene's classifier where a face goes), from the
    clips table's evidence columns, which are already calibrated: what each modality adds. A film keeps its own
    label where the rest is not backed or nothing is left (the head's reading is not in the table), and where the
    film had no such evidence. Over the films with clip rows; middle-clip aggregation only (it needs the clip's
    modalities_used)."""
    from model.predict import BRANCH_EVIDENCE, branch_probs
    from training.metrics import expected_calibration_error
    modality_of = {ev: m for m, ev in BRANCH_EVIDENCE.items()}  # 'scene' -> 'vision', ...
    out = {}
    for m in EVIDENCE_MODALITIES:
        probs, truth, relabelled = [], [], 0
        for f in films:
            if f.get("probs") is None:
                continue
            p = np.asarray(f["probs"], np.float64)
            used = f.get("modalities_used")
            ev = {k: np.asarray(v, np.float64) for k, v in f["evidence"].items() if v is not None}
            # the run's own rule on the rest (the evidence columns are calibrated already: no temperatures)
            q = branch_probs([u for u in used if u != modality_of[m]], ev) if used and m in ev else None
            if q is not None:
                relabelled += int(q.argmax() != p.argmax())
                p = q
            probs.append(p)
            truth.append(EMOTIONS.index(f["label"]) if f["label"] in EMOTIONS else -1)
        if probs:
            probs_a = np.stack(probs)
            out[m] = {"relabelled": relabelled, "accuracy": float(np.mean(probs_a.argmax(1) == np.array(truth))),
                      "mean_confidence": float(probs_a.max(1).mean()),
                      "ece": expected_calibration_error(probs_a, truth)}
    return out


def _share(num: int, den: int) -> Optional[float]:
    return num / den if den else None


def score_films(clips: Iterable[Mapping], labels: Iterable[Mapping], aggregate: str = "middle",
                grounded_support: Optional[float] = None) -> dict:
    """Accuracy of the fused label and of each modality's own evidence (with its coverage), face rate, grounded
    share and accuracy on grounded vs not grounded films. Shares are over all labelled films; a film without
    clip rows counts as wrong (fused) and as not covered / no face / not grounded."""
    films = film_predictions(clips, labels, aggregate, grounded_support)
    n = len(films)
    correct = [f["emotion"] == f["label"] for f in films]
    result: dict = {
        "films": n,
        "missing": sum(f["clips"] == 0 for f in films),
        "clips_per_film": _share(sum(f["clips"] for f in films), n),
        "aggregate": aggregate,
        "labels": dict(sorted(Counter(f["label"] for f in films).items())),
        "majority_baseline": _share(max(Counter(f["label"] for f in films).values(), default=0), n),
        "accuracy": _share(sum(correct), n),
        "modalities": {},
        "face_found": _share(sum(bool(f["face"]) for f in films), n),
        "grounded": _share(sum(f["grounded"] is True for f in films), n),
    }
    for m in EVIDENCE_MODALITIES:
        have = [f for f in films if f["evidence"][m] is not None]
        result["modalities"][m] = {
            "coverage": _share(len(have), n),
            "n": len(have),
            "accuracy": _share(sum(_argmax_label(f["evidence"][m]) == f["label"] for f in have), len(have)),
        }
    scored = [f for f in films if f["probs"] is not None]
    if scored:  # how sure the fused label says it is, against how often it is right (films without rows left out)
        from training.metrics import ece_if_calibrated, expected_calibration_error
        probs = np.array([f["probs"] for f in scored], np.float64)
        truth = [EMOTIONS.index(f["label"]) if f["label"] in EMOTIONS else -1 for f in scored]
        floor = ece_if_calibrated(probs)  # a hundred films cannot show an ECE near 0, even when calibrated
        result.update(mean_confidence=float(probs.max(1).mean()), ece=expected_calibration_error(probs, truth),
                      ece_if_calibrated=floor[0], ece_if_calibrated_p95=floor[1])
    else:
        result.update(mean_confidence=None, ece=None, ece_if_calibrated=None, ece_if_calibrated_p95=None)
    g = [c for f, c in zip(films, correct) if f["grounded"] is True]
    ng = [c for f, c in zip(films, correct) if f["grounded"] is not True]
    result.update(n_grounded=len(g), accuracy_grounded=_share(sum(g), len(g)),
                  n_not_grounded=len(ng), accuracy_not_grounded=_share(sum(ng), len(ng)))
    result["per_label"] = {lab: _share(sum(c for f, c in zip(films, correct) if f["label"] == lab), k)
                           for lab, k in result["labels"].items()}
    if aggregate == "middle":
        result["without"] = without_each(films)
    result["films_detail"] = [{"file": f["file"], "label": f["label"], "emotion": f["emotion"],
                               **{m: _argmax_label(f["evidence"][m]) for m in EVIDENCE_MODALITIES},
                               "face_found": f["face"], "grounded": f["grounded"], "clips": f["clips"]} for f in films]
    return result


# ---------------------------------------------------------------- output
def _fmt(x: Optional[float]) -> str:
    return "-" if x is None else f"{x:.3f}"


def format_table(pair: str, s: Mapping) -> str:
    lines = [f"### {pair}: {s['films']} films, {s['missing']} missing, {_fmt(s['clips_per_film'])} clips per film, "
             f"aggregate={s['aggregate']}, majority baseline {_fmt(s['majority_baseline'])}",
             "",
             "| prediction | coverage | films | accuracy |",
             "|---|---|---|---|",
             f"| fused `emotion` (mean confidence {_fmt(s['mean_confidence'])}, ECE {_fmt(s['ece'])}; a calibrated "
             f"scorer: {_fmt(s.get('ece_if_calibrated'))}, 95 % {_fmt(s.get('ece_if_calibrated_p95'))}) | 1.000 | "
             f"{s['films']} | {_fmt(s['accuracy'])} |"]
    for m, v in s["modalities"].items():
        lines.append(f"| evidence_{m} | {_fmt(v['coverage'])} | {v['n']} | {_fmt(v['accuracy'])} |")
    lines += ["",
              "| face found | grounded | accuracy grounded (n) | accuracy not grounded (n) |",
              "|---|---|---|---|",
              f"| {_fmt(s['face_found'])} | {_fmt(s['grounded'])} | {_fmt(s['accuracy_grounded'])} ({s['n_grounded']}) "
              f"| {_fmt(s['accuracy_not_grounded'])} ({s['n_not_grounded']}) |",
              "",
              "fused accuracy per label: " + ", ".join(f"{k} {_fmt(v)}" for k, v in s["per_label"].items())]
    if s.get("without"):
        lines += ["", "| the run's rule without one modality's evidence | films relabelled | accuracy | mean confidence "
                      "| ECE |", "|---|---|---|---|---|"]
        lines += [f"| without {m} | {v['relabelled']} | {_fmt(v['accuracy'])} | {_fmt(v['mean_confidence'])} "
                  f"| {_fmt(v['ece'])} |" for m, v in s["without"].items()]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.labelled_clips", description=__doc__.split("\n")[0],
                                 epilog="Other options go to pipeline.run (e.g. --head CKPT, --transcribe never, "
                                        "--modalities face, --torch_threads 2).")
    ap.add_argument("--pairs", default=",".join(DEFAULT_PAIRS),
                    help=f"comma list of {', '.join(PAIRS)} or IMAGES.parquet+AUDIO.parquet (paths under "
                         f"../shared/data or absolute)")
    ap.add_argument("--per_class", type=int, default=5, help="films per label (fewer when a set has fewer)")
    ap.add_argument("--aggregate", choices=AGGREGATES, default="middle",
                    help="middle: the clip covering the film's middle; weighted: clip probabilities averaged, "
                         "weighted by duration")
    ap.add_argument("--hdr", action="store_true",
                    help="run HDR10 copies of the films (PQ, BT.2020; made once beside them): what a studio's "
                         "HDR masters give the pipeline")
    ap.add_argument("--json", default=None, help="also write the results (with per-film rows) to this file")
    ap.add_argument("--cache_dir", default=str(CACHE), help="where the films are made and reused")
    ap.add_argument("--keep_runs", default=None,
                    help="write the pipeline outputs under this folder (one per pair; reused: films already done "
                         "with the same config and head are skipped); default: a temporary folder")
    args, extra = ap.parse_known_args(argv)

    pairs = []
    for name in [p.strip() for p in args.pairs.split(",") if p.strip()]:
        if name in PAIRS:
            pairs.append((name, *PAIRS[name]))
        elif "+" in name and name.endswith(".parquet"):
            images, audio = name.split("+", 1)
            pairs.append((f"{_set_name(images)}+{_set_name(audio)}", images, audio))
        else:
            ap.error(f"unknown pair {name!r}: choose from {', '.join(PAIRS)} or IMAGES.parquet+AUDIO.parquet")

    results: dict = {"command": " ".join(["python -m benchmarks.labelled_clips", *(argv if argv is not None
                                                                                    else sys.argv[1:])]),
                     "per_class": args.per_class, "aggregate": args.aggregate, "pipeline_options": extra,
                     "pairs": {}}
    t_all = time.perf_counter()
    tmp = None
    runs_root = Path(args.keep_runs) if args.keep_runs else Path(tmp := tempfile.mkdtemp(prefix="labelled_clips."))
    try:
        for name, images, audio in pairs:
            t0 = time.perf_counter()
            films = make_films(images, audio, args.per_class, Path(args.cache_dir))
            if args.hdr:
                films = hdr_films(films)
            t_make = time.perf_counter() - t0
            labels = read_labels(films)
            run_dir = runs_root / name
            t1 = time.perf_counter()
            summary = run_pipeline(films, run_dir, extra)
            t_run = time.perf_counter() - t1
            s = score_films(read_clips(run_dir), labels, args.aggregate)
            s.update(images=images, audio=audio, films_dir=str(films), make_s=round(t_make, 1),
                     pipeline_s=round(t_run, 1), run_dir=str(run_dir) if args.keep_runs else None,
                     pipeline_summary={k: v for k, v in summary.items() if k != "result"
                                       and isinstance(v, (str, int, float, bool, type(None)))})
            results["pairs"][name] = s
            print(format_table(name, s), flush=True)
            print(f"(films made in {t_make:.1f} s, pipeline {t_run:.1f} s)\n", flush=True)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    results["wall_s"] = round(time.perf_counter() - t_all, 1)
    print(f"wall time {results['wall_s']:.1f} s")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
