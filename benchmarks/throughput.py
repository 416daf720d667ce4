"""Throughput benchmark: film-seconds scored per wall-second, and peak memory, on synthetic 720p films.

    python -m benchmarks.throughput --minutes 2 10 30 [--modes whole,decode,model,naive] [--device cpu|cuda]
        [--batch_size 32] [--csv benchmarks/results/throughput.csv] [--rss_log rss.csv]
        [--modalities text,vision,face,audio] [--vision_model FILE] [--text_model FOLDER]

wall_s never includes the one-time imports and model loading (load_s, shown beside it).
Films (cached under .cache/bench/): 720p moving textured noise, H.264 with an 8 s keyframe interval, AAC audio,
a sidecar .srt line every 4 s (testing/films.py); x264 `ultrafast` by default, `--encode film` for x264 `medium`
at CRF 20 (B-frames, CABAC, the deblocking filter, about 2 Mbit/s: what a release encode costs to decode).
Modes, each in its own child process so that peak RSS (the process tree's summed RSS, polled with psutil) is
its own:
  whole   pipeline.run over the film (DirectRunner, scoring on); imports + model loading timed apart (load_s);
          the models' time by stage, and the rest (decoding not hidden behind them, the pipeline's own work);
          film_wall_s: the film's own time, decode to commit (its manifest row's wall_s), without the run's start-up
  decode  the decode bound: the pipeline's own clip plan and decoder, no models, FFmpeg's own threads (or
          --decode_threads)
  model   the model bound: encoders + head in batches on those decoded clips (only model time is counted),
          and its split by stage (vision: the ViT; face: detection + classifier; audio: the speech branch; text;
          head: the evidence classifiers and the head)
  naive   per clip: one ffmpeg process (seek, sampled frames to a pipe, audio to a file) and one unbatched
          model call (batch size 1), with the same models and --precision
  cli     the README's multi-core command as a user runs it, start-up included: `python -m pipeline.run` over
          two films of this length (seeds 0 and 1, each with its .srt) with `--direct_num_workers 2
          --direct_running_mode multi_processing` and the default options (--torch_threads 1 per worker);
          film_s is both films' length
Each mode also reports cores_busy: the CPU seconds its process tree used in wall_s, divided by wall_s (2.0 on two
cores = no idle core; in the model mode only the models' calls are counted). With whole, model and decode run on a
film, a line of bounds follows: the larger of the model and decode bounds, and the CPU bound (the models' and the
decoder's CPU seconds spread over every core: where decoding and the models share the cores, whole cannot beat it).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from model.files import written_atomically

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"
# x264 settings of the benchmark films: ultrafast has no B-frames, CABAC or deblocking (cheap to decode); film is a
# release encode's (B-frames, CABAC, deblocking) at about 2 Mbit/s on this texture.
ENCODES = {"fast": {"preset": "ultrafast", "crf": 30}, "film": {"preset": "medium", "crf": 20}}
MODES = ("whole", "decode", "model", "naive", "cli")
CSV_FIELDS = ("film", "film_s", "mode", "device", "batch_size", "clips", "wall_s", "load_s", "film_s_per_wall_s",
              "x_realtime", "peak_rss_mb", "host_cpus", "torch_threads", "timestamp", "precision", "levers", "cpu_s",
              "film_wall_s")


def cpu_seconds(children: bool = False) -> float:
    """User + system CPU seconds of this process's threads so far (children: of its waited-for descendants)."""
    t = os.times()
    return t.children_user + t.children_system if children else t.user + t.system


# -- the measured work (child process) ----------------------------------------------------------------------
def child(args) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    film = args.film
    t0 = time.perf_counter()
    if args.child == "whole":
        # Imports and model loading are one-time per worker: timed apart (load_s), as in the other modes.
        # The in-process DirectRunner reuses the encoders loaded here (one set per spec per process).
        from apache_beam.options.pipeline_options import PipelineOptions
        from pipeline import run as run_mod
        from pipeline.options import FilmEmotionOptions
        from transforms.score import make_scorer
        out = tempfile.mkdtemp(prefix="bench-out-")
        argv = ["--input", film, "--output", out, "--runner", "DirectRunner", "--device", args.device,
                "--batch_size", str(args.batch_size), "--torch_threads", str(args.torch_threads),
                "--precision", args.precision, "--transcribe", "never"] + (["--head", args.head] if args.head else [])
        argv += lever_args(args)
        scorer = make_scorer(PipelineOptions(argv).view_as(FilmEmotionOptions))
        scorer.load()
        _ = scorer.model_version
        from transforms import language
        language.load()  # the subtitles' language identifier: once per worker, like the models
        load_s = time.perf_counter() - t0
        t1, c1 = time.perf_counter(), cpu_seconds()
        run_mod.run(argv, save_main_session=False, scorer=scorer)
        wall, cpu = time.perf_counter() - t1, cpu_seconds() - c1
        import pyarrow.parquet as pq
        n = sum(pq.read_metadata(p).num_rows for p in Path(out, "clips").glob("*.parquet"))
        film_wall = sum(pq.read_table(p, columns=["wall_s"]).column(0).to_pylist()[0] or 0.0
                        for p in Path(out, "manifest").rglob("*.parquet"))
        from model.featurize import SECONDS
        return {"wall_s": wall, "clips": n, "load_s": load_s, "stages": dict(SECONDS), "cpu_s": cpu,
                "film_wall_s": film_wall}
    if args.child == "cli":
        return cli(film, args)
    from benchmarks import _bench_work as work
    return getattr(work, args.child)(film, args)


def lever_args(args) -> list[str]:
    """The speed levers as pipeline.run options (absent: the pipeline's defaults)."""
    out = []
    for name in ("frame_every_s", "vision_runtime", "text_runtime", "modalities", "vision_model", "text_model",
                 "decode_threads"):
        if getattr(args, name, None) is not None:
            out += [f"--{name}", str(getattr(args, name))]
    return out + (["--decode_deblock"] if getattr(args, "decode_deblock", False) else [])


def cli(films_dir: str, args) -> dict:
    """The README's multi-core command over every film in films_dir, timed from launch to exit."""
    import pyarrow.parquet as pq
    out = tempfile.mkdtemp(prefix="bench-cli-")
    cmd = [sys.executable, "-m", "pipeline.run", "--input", str(Path(films_dir) / "*.mp4"), "--output", out,
           "--direct_num_workers", "2", "--direct_running_mode", "multi_processing", "--device", args.device,
           "--precision", args.precision] + (["--head", args.head] if args.head else []) + lever_args(args)
    t0, c0 = time.perf_counter(), cpu_seconds(children=True)
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall, cpu = time.perf_counter() - t0, cpu_seconds(children=True) - c0
    n = sum(pq.read_metadata(p).num_rows for p in Path(out, "clips").glob("*.parquet"))
    return {"wall_s": wall, "clips": n, "load_s": 0.0, "cpu_s": cpu}


def cli_films(spec) -> Path:
    """A folder with two films of spec's length (seeds 0 and 1) and their subtitles, linked from the cache."""
    import dataclasses
    from testing.films import cached_film
    folder = CACHE / f"cli_{spec.name()}"
    folder.mkdir(parents=True, exist_ok=True)
    for seed in (0, 1):
        film = cached_film(CACHE, dataclasses.replace(spec, seed=seed))
        for src in (film, film.with_suffix(".srt")):
            link = folder / src.name
            if not link.exists():
                link.symlink_to(src)
    return folder


# -- the driver (parent process) ------------------------------------------------------------------------
def tree_rss(ps) -> int:
    """Summed RSS in bytes of a psutil.Process and its descendants (0 while it cannot be read)."""
    import psutil
    try:
        return sum(p.memory_info().rss for p in [ps, *ps.children(recursive=True)])
    except psutil.Error:
        return 0


def measure(mode: str, film: Path, args) -> dict:
    """Run one mode in a child process; poll the summed RSS of its process tree."""
    import psutil
    cmd = [sys.executable, "-m", "benchmarks.throughput", "--child", mode, "--film", str(film),
           "--device", args.device, "--batch_size", str(args.batch_size), "--torch_threads", str(args.torch_threads),
           "--precision", args.precision]
    cmd += ["--head", args.head] if args.head else []
    cmd += lever_args(args)  # the child reads them back as the same flags
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)  # keep the caller's path
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
        ps, peak, t0, samples = psutil.Process(proc.pid), 0, time.perf_counter(), []
        while proc.poll() is None:
            rss = tree_rss(ps)
            peak = max(peak, rss)
            samples.append((time.perf_counter() - t0, rss / 2**20))
            time.sleep(0.2)
        out.seek(0)
        lines = [ln for ln in out.read().splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{mode} on {film.name} failed (exit {proc.returncode})")
    res = json.loads(lines[-1])
    res["peak_rss_mb"] = peak / 2**20
    if args.rss_log:  # the whole curve: a level that grows (fragmentation) or only rarer, higher peaks
        with open(args.rss_log, "a") as f:
            f.writelines(f"{film.name},{mode},{t:.1f},{mb:.0f}\n" for t, mb in samples)
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[2, 10])
    ap.add_argument("--modes", default="whole,decode,model,naive", help=f"any of {','.join(MODES)}")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--batch_size", type=int, default=32)
    ap.add_argument("--torch_threads", type=int, default=1, help="torch threads per process on CPU")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "int8"],
                    help="encoders' number format in every mode (auto: bf16 where the hardware has it)")
    ap.add_argument("--head", default=None,
                    help="head checkpoint (default: the shipped one, or a random-weight head when it is absent)")
    ap.add_argument("--frame_every_s", type=float, default=None,
                    help="lever: a sampled frame per this many seconds of clip (pipeline default: 1; 0 = 4 frames)")
    ap.add_argument("--vision_runtime", choices=("auto", "torch", "openvino"), default=None,
                    help="lever: where the ViT runs (pipeline default: auto = OpenVINO on CPU)")
    ap.add_argument("--text_runtime", choices=("auto", "torch", "openvino"), default=None,
                    help="lever: where the text encoder runs (pipeline default: auto = OpenVINO on CPU)")
    ap.add_argument("--modalities", default=None,
                    help="lever: what is encoded and fused, as pipeline.run's --modalities (default: all four)")
    ap.add_argument("--vision_model", default=None,
                    help="the ViT's weights, as pipeline.run's --vision_model (default: the packaged ones)")
    ap.add_argument("--text_model", default=None,
                    help="the text encoder's folder, as pipeline.run's --text_model (default: the packaged one)")
    ap.add_argument("--decode_threads", type=int, default=None,
                    help="lever: FFmpeg's decoding threads, as pipeline.run's --decode_threads (0: FFmpeg's choice; "
                         "pipeline default: one thread beside CPU models, FFmpeg's choice beside a GPU; the decode "
                         "mode's default: FFmpeg's choice)")
    ap.add_argument("--decode_deblock", action="store_true",
                    help="lever: run the codec's deblocking filter (pipeline default: skipped)")
    ap.add_argument("--encode", choices=tuple(ENCODES), default="fast",
                    help="how the films are encoded: fast = x264 ultrafast (no B-frames, no deblocking: cheap to "
                         "decode); film = x264 medium, CRF 20 (B-frames, CABAC, deblocking, as a release encode)")
    ap.add_argument("--csv", default=str(ROOT / "benchmarks" / "results" / "throughput.csv"))
    ap.add_argument("--rss_log", help="append film,mode,seconds,RSS MB every 0.2 s of each run to this CSV")
    ap.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    ap.add_argument("--film", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)), flush=True)
        return

    from testing.films import FilmSpec, cached_film
    from model.precision import resolve
    args.head = args.head or _default_head()
    rows = []
    for minutes in args.minutes:
        spec = FilmSpec(seconds=minutes * 60, **ENCODES[args.encode])
        print(f"film {spec.name()} ...", flush=True)
        film = cached_film(CACHE, spec)
        for mode in [m for m in args.modes.split(",") if m]:
            res = measure(mode, cli_films(spec) if mode == "cli" else film, args)
            film_s = spec.seconds * (2 if mode == "cli" else 1)
            rate = film_s / res["wall_s"]
            rows.append({"film": spec.name(), "film_s": film_s, "mode": mode, "device": args.device,
                         "batch_size": args.batch_size, "clips": res["clips"], "wall_s": round(res["wall_s"], 2),
                         "load_s": round(res.get("load_s", 0.0), 2), "film_s_per_wall_s": round(rate, 2),
                         "x_realtime": round(rate, 2), "peak_rss_mb": round(res["peak_rss_mb"]),
                         "host_cpus": os.cpu_count(), "torch_threads": args.torch_threads,
                         "precision": resolve(args.precision, args.device),
                         "levers": " ".join(lever_args(args)) or "defaults",
                         "cpu_s": round(res["cpu_s"], 2), "cores_busy": round(res["cpu_s"] / res["wall_s"], 2),
                         "film_wall_s": round(res["film_wall_s"], 2) if "film_wall_s" in res else "",
                         "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S")})
            print(_table(rows[-1:], header=len(rows) == 1), flush=True)
            if res.get("stages"):
                print(_stages(res["stages"], res["wall_s"]), flush=True)
        bounds = _bounds([r for r in rows if r["film"] == spec.name()])
        if bounds:
            print(bounds, flush=True)
    print()
    print(_table(rows))
    _write_csv(rows, Path(args.csv))


def _default_head() -> str | None:
    """None (the shipped head) when it exists; else a random-weight head of the encoders' widths: the
    speed of the head does not depend on its weights."""
    from model.checkpoints import DEFAULT_HEAD
    if DEFAULT_HEAD.exists():
        return None
    path = CACHE / "random_head.pt"
    if not path.exists():
        from tests.scoring_support import head_for_tests
        os.replace(head_for_tests(Path(tempfile.mkdtemp())), path)
    return str(path)


def _stages(seconds: dict, wall_s: float) -> str:
    """The models' time by stage (model.featurize.SECONDS) as shares of the mode's wall time; in the
    whole run the rest is decoding not hidden behind the models, and the pipeline's own work."""
    order = ("vision", "face", "audio", "text", "head")
    parts = [f"{k} {seconds[k]:.2f} s ({100 * seconds[k] / wall_s:.0f} %)" for k in order if k in seconds]
    rest = wall_s - sum(seconds.values())
    return "  by stage: " + ", ".join(parts) + f"; the rest {rest:.2f} s ({100 * rest / wall_s:.0f} %)"


def _bounds(rows: list[dict]) -> str:
    """whole against max(model, decode) and against the CPU bound, for one film's rows (empty without all three)."""
    by = {r["mode"]: r for r in rows}
    if not {"whole", "model", "decode"} <= set(by):
        return ""
    whole, model, decode = by["whole"], by["model"], by["decode"]
    larger = max(model["wall_s"], decode["wall_s"])
    cpu_bound = (model["cpu_s"] + decode["cpu_s"]) / whole["host_cpus"]
    line = (f"  bounds: max(model, decode) {larger:.2f} s; CPU ({model['cpu_s']:.2f} + {decode['cpu_s']:.2f} CPU-s on "
            f"{whole['host_cpus']} cores) {cpu_bound:.2f} s. whole {whole['wall_s']:.2f} s = "
            f"{whole['wall_s'] / larger:.2f}x the larger, {whole['wall_s'] / cpu_bound:.2f}x the CPU bound")
    if whole.get("film_wall_s"):
        f = whole["film_wall_s"]
        line += (f"; the film alone (decode to commit, without the run's start-up) {f:.2f} s = "
                 f"{f / larger:.2f}x / {f / cpu_bound:.2f}x")
    return line


def _table(rows: list[dict], header: bool = True) -> str:
    cols = ("film", "mode", "precision", "clips", "wall_s", "load_s", "film_s_per_wall_s", "cores_busy", "peak_rss_mb")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)] if header else []
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    if not new:
        _widen_csv(path)
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")  # LF, as in git
        if new:
            w.writeheader()
        w.writerows(rows)


def _widen_csv(path: Path) -> None:
    """Rewrite a results file written before a column was added: the new header, old rows padded with blanks."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        old = list(reader)
    if tuple(reader.fieldnames or ()) == CSV_FIELDS:
        return
    with written_atomically(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(old)


if __name__ == "__main__":
    main()
