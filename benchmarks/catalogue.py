"""Catalogue benchmark: memory and speed film after film, as a nightly run over many films sees them.

    python -m benchmarks.catalogue [--films 48] [--seconds 40] [-- pipeline.run options, e.g. --direct_num_workers 2
        --direct_running_mode multi_processing]
    python -m benchmarks.catalogue --input 'films/*.mp4' [-- pipeline.run options]

A long-lived worker scores film after film; a leak or a cache that grows per film would take it down somewhere
in a catalogue of thousands. This runs `python -m pipeline.run` as a user runs it (start-up included) over
`--films` distinct synthetic films (testing.films.FilmSpec, seeds 1..N, cached under .cache/bench/); every third
one has no subtitles, so speech recognition runs on it too. It polls the summed RSS of the run's process tree and
prints one row per finished film (the launcher's own `film k/N` line: the film is committed) with the highest RSS
since the previous film line and the peak so far, then the growth in the steady state: from the later of the first film
with speech recognition (the last model to load) and the middle film (every worker warmed up) to the last film.
`--input` runs it on films of your own instead (real faces and voices exercise paths the synthetic films do not).
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.throughput import CACHE, ROOT, tree_rss

FILM_LINE = re.compile(r"^film (\d+)/(\d+) (\w+): (\S+) \((\d+) s of film")
ASR_EVERY = 3  # every third film has no subtitles


def catalogue_folder(n: int, spec) -> Path:
    """A folder linking n films of `spec` (seeds 1..n) from the benchmark cache; every ASR_EVERY-th without its .srt."""
    from testing.films import cached_film
    folder = CACHE / f"catalogue_{n}x{spec.name()}"
    folder.mkdir(parents=True, exist_ok=True)
    for seed in range(1, n + 1):
        film = cached_film(CACHE, dataclasses.replace(spec, seed=seed))
        pairs = [(film, folder / film.name)]
        if seed % ASR_EVERY:
            pairs.append((film.with_suffix(".srt"), folder / film.with_suffix(".srt").name))
        for src, link in pairs:
            if not link.exists():
                link.symlink_to(src)
    return folder


def follow(cmd: list[str], poll_s: float = 0.2) -> tuple[list[dict], int, int]:
    """Run cmd; rows (one per `film k/N` line: elapsed s, RSS and peak MB then), the peak RSS in bytes, exit code."""
    import psutil
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    ps, t0 = psutil.Process(proc.pid), time.perf_counter()
    # rss: the highest sample since the previous film line (workers exit after the last film); last: the latest sample
    state = {"rss": 0, "last": 0, "peak": 0, "launcher": 0}

    def poll():
        while proc.poll() is None:
            rss = tree_rss(ps)
            if rss:
                state["last"], state["rss"], state["peak"] = rss, max(state["rss"], rss), max(state["peak"], rss)
                try:
                    state["launcher"] = ps.memory_info().rss
                except psutil.Error:
                    pass
            time.sleep(poll_s)

    threading.Thread(target=poll, daemon=True).start()
    rows = []
    for line in proc.stdout:
        m = FILM_LINE.match(line)
        if m:
            rows.append({"film": int(m[1]), "status": m[3], "film_id": m[4], "film_s": int(m[5]),
                         "elapsed_s": round(time.perf_counter() - t0, 1), "rss_mb": round(state["rss"] / 2**20),
                         "launcher_mb": round(state["launcher"] / 2**20),
                         "peak_mb": round(state["peak"] / 2**20)})
            state["rss"] = state["last"]
            print(_table(rows[-1:], header=len(rows) == 1), flush=True)
    return rows, state["peak"], proc.wait()


def growth(rows: list[dict], first_asr: int) -> dict:
    """RSS growth in the steady state: from the later of the first film with speech recognition (every model
    loaded) and the middle film (each worker warmed up) to the last, and its least-squares slope in MB per film."""
    rss = np.array([r["rss_mb"] for r in rows], float)
    steady = rss[max(first_asr, len(rss) // 2 + 1) - 1:]
    slope = float(np.polyfit(np.arange(len(steady)), steady, 1)[0]) if len(steady) >= 3 else float("nan")
    return {"rss_first_mb": float(rss[0]), "steady_from_film": int(len(rss) - len(steady) + 1),
            "rss_steady_first_mb": float(steady[0]), "rss_last_mb": float(rss[-1]),
            "growth_mb": float(rss[-1] - steady[0]), "slope_mb_per_film": round(slope, 2)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--films", type=int, default=48)
    ap.add_argument("--seconds", type=float, default=40.0, help="each film's length")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--input", default=None,
                    help="run on these films instead (a glob; films without a .srt beside them are transcribed)")
    ap.add_argument("--json", default=None, help="write the rows and the summary here")
    args, run_args = ap.parse_known_args(argv)
    run_args = [a for a in run_args if a != "--"]
    if args.input:
        films = sorted(Path(p) for p in glob.glob(args.input))
    else:
        from testing.films import FilmSpec
        spec = FilmSpec(seconds=args.seconds, width=args.width, height=args.height)
        films = sorted(catalogue_folder(args.films, spec).glob("*.mp4"))
    out = tempfile.mkdtemp(prefix="bench-catalogue-")
    cmd = [sys.executable, "-m", "pipeline.run", "--output", out] + run_args
    cmd += ["--input", args.input] if args.input else ["--input", str(films[0].parent / "*.mp4")]
    t0 = time.perf_counter()
    rows, peak, rc = follow(cmd)
    wall = time.perf_counter() - t0
    if rc or len(rows) != len(films):
        raise SystemExit(f"pipeline.run exited {rc} after {len(rows)} of {len(films)} films")
    from transforms.discover import slug  # the film_id's readable part
    asr_stems = {slug(f.stem) for f in films if not f.with_suffix(".srt").exists()}
    asr = [r["film"] for r in rows if r["film_id"].rsplit("-", 1)[0] in asr_stems]
    summary = {"films": len(rows), "film_s": sum(r["film_s"] for r in rows), "wall_s": round(wall, 1),
               "x_realtime": round(sum(r["film_s"] for r in rows) / wall, 2), "peak_rss_mb": round(peak / 2**20),
               "run_args": " ".join(run_args) or "defaults", **growth(rows, min(asr) if asr else 1)}
    print(f"\n{summary['films']} films, {summary['film_s']} s of film in {summary['wall_s']} s "
          f"({summary['x_realtime']}x real time, start-up included); peak RSS {summary['peak_rss_mb']} MB")
    print(f"RSS after film 1: {summary['rss_first_mb']:.0f} MB; steady state from film {summary['steady_from_film']} "
          f"(every model loaded, past the middle film): {summary['rss_steady_first_mb']:.0f} MB -> "
          f"{summary['rss_last_mb']:.0f} MB after the last ({summary['growth_mb']:+.0f} MB, "
          f"{summary['slope_mb_per_film']:+.2f} MB per film, least squares)")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))
    return summary


def _table(rows: list[dict], header: bool = True) -> str:
    cols = ("film", "status", "film_id", "film_s", "elapsed_s", "rss_mb", "launcher_mb", "peak_mb")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)] if header else []
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
