"""Damaged films through the decode pass: does a damaged stretch cost only itself?

    python -m benchmarks.damaged_media [--seeds 6] [--out DIR]

A 20 s 320x240 film (h264 + aac, 25 fps, a speech-like sound) is written as mp4, mkv and MPEG-TS (and as an AVI
with MPEG-4 video and MP3 sound, as DivX-era archives hold), then copied with
random bytes over part of it (testing.films.make_damaged: 1 % from 30 % of the way in, 10 % from halfway, 30 % from a
fifth), one copy per seed. Each copy goes through the pipeline's decode pass (transforms.decode.decode_film, the
job pipeline.run builds) and the table gives, per container and damage, how many copies came out the film's length
(20 s +- 0.5 s), the lengths seen, the copies whose last clip (16-20 s, after every damaged stretch) has sound, and
the warning rows written (`AudioGap`: a hole in the sound that no failing packet explains, the damage the
mkv and TS demuxers skip unseen).
Before 2026-12-05, 42 of the 54 copies came out 130-445 s long (the frames after the damage read as clock
restarts) and the mp4 copies lost their sound for the rest of the film.

    python -m benchmarks.damaged_media --cli [--copies 2] [--seed 1] [-- pipeline.run options]

Every kind of damage (testing.films.DAMAGE_KINDS: bit flips, a zeroed or random block, cut short, the start
overwritten, bytes cut out or repeated in the middle), `--copies` per kind, of real films from ../shared/data/media
(the Sintel trailer with its subtitles, Big Buck Bunny, the odd QuickTime and MPEG files) and of films written here
(Matroska with a subtitle track, h264 mp4, VFR QuickTime, MPEG-TS, AVI), all in one run of `python -m
pipeline.run`, as a user runs it, whose wall time and peak memory are printed. Per damage kind the table gives the
films scored and failed (with the reasons), and the problems found in the output; none is expected:
- a film without a manifest row;
- a failed film without an error row, or one that failed with an error no damaged file explains (a Python
  exception of the pipeline's own: IndexError, AttributeError, ...; a storage failure);
- a scored film whose clips file has not its manifest's clip count, or no clip;
- a clip with probabilities that are missing or do not sum to 1, times out of order, or no confidence;
- a half-written file left under the output;
- a clip whose `damaged` is null or names something else than video and audio, or is marked in a film with no row
  that says where its media is damaged (transforms.decode.DAMAGE_ROWS).
The table also counts the clips marked damaged (and the films they are in). With `--compare` the undamaged films
are run too, and the labels of the clips marked damaged and of those not marked are compared with the undamaged
film's clip at the same times.

    python -m benchmarks.damaged_media --cli --packages [--copies 1] [--seed 1] [-- pipeline.run options]

The same over deliverables whose damage other code reads (package_sources): IMF and DCP packages (one file of a
copy damaged: its CPL, asset map, a track file, a subtitle track or picture), and films with teletext, PGS and VobSub
subtitles; a row per source, each copy checked to give at least one film a manifest row.
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import logging
import math
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from transforms.decode import DAMAGE_ROWS

DAMAGE = ((0.3, 0.01), (0.5, 0.1), (0.2, 0.3))  # (from this share of the file, this share of its bytes)
SECONDS, FPS = 20.0, 25


CODECS = {"avi": ("mpeg4", "libmp3lame")}  # a DivX-era AVI; the others h264 + aac


def whole_film(path: Path) -> Path:
    from testing.films import encode_film, speech_like
    video, audio = CODECS.get(path.suffix[1:], ("h264", "aac"))
    return encode_film(path, paint=lambda i, t: np.full((240, 320, 3), (i * 7) % 255, np.uint8),
                       frame_times=[i / FPS for i in range(int(SECONDS * FPS))], fps=FPS, size=(320, 240),
                       video_codec=video, audio=speech_like(SECONDS), audio_codec=audio)


def decode_copy(path: Path) -> dict:
    from benchmarks._bench_work import decode_config, film_job
    from transforms.decode import BY_FILM, decode_film
    from transforms.elements import DecodedClip, FilmError
    stats: dict = {}
    clips, rows = [], []
    # FFmpeg's threads as pipeline.run picks them on CPU (one for a film this small): a decoder's many threads meet
    # damaged data in an order that varies from run to run, and once in a while gave a frame another's time
    cfg = dataclasses.replace(decode_config(), decode_threads=BY_FILM)
    for item in decode_film(film_job(str(path)), cfg, stats=stats):
        (clips if isinstance(item, DecodedClip) else rows if isinstance(item, FilmError) else []).append(item)
    end, last = stats["media_end_s"], clips[-1].audio if clips else np.zeros(0)
    return {"end_s": end, "whole": abs(end - SECONDS) <= 0.5, "clips": len(clips),
            "last_sound": bool(last.size and float(np.abs(last).mean()) > 0.01),
            "rows": Counter(r.error_type for r in rows)}


MEDIA = Path(__file__).resolve().parents[2] / "shared" / "data" / "media"
REAL = ("sintel/sintel_trailer.mp4", "odd/bigbuckbunny.mp4", "odd/scene-change.mov", "odd/video-only.mov",
        "odd/video_with_failing_audio.mp4", "grid/bbaf2n.mpg")


def cli_sources(work: Path) -> list[Path]:
    """The real films that are here, and films written here in the other containers (8 s, 160x96)."""
    from testing.films import make_film
    lines = [(0.5, 2.0, "Get out of here!"), (3.0, 5.0, "I love you so much."), (6.0, 7.5, "Why did you do that?")]
    made = [make_film(work / "made.mkv", duration_s=8.0, size=(160, 96), subtitles=lines),
            make_film(work / "made_h264.mp4", duration_s=8.0, size=(160, 96), video_codec="libx264"),
            make_film(work / "made_vfr.mov", duration_s=8.0, size=(160, 96), vfr=True),
            make_film(work / "made.ts", duration_s=8.0, size=(160, 96)),
            make_film(work / "made.avi", duration_s=8.0, size=(160, 96))]
    return [MEDIA / r for r in REAL if (MEDIA / r).is_file()] + made


def expected_failures() -> set[str]:
    """The error types a damaged film may fail with: FFmpeg's (it cannot read the file), NotAFilm (no stream),
    DecodeError (nothing decoded), CompositionError (a package's CPL). Any other (IndexError, AttributeError,
    UnicodeDecodeError, ...) is the pipeline's own bug, and a `read` failure is a storage's, which local files here
    do not have."""
    import av
    ffmpeg = {c.__name__ for c in vars(av.error).values()
              if isinstance(c, type) and issubclass(c, av.error.FFmpegError)}
    return ffmpeg | {"NotAFilm", "DecodeError", "CompositionError"}


def output_problems(films: list[str], out: Path) -> tuple[dict, list[str]]:
    """({film path: its newest manifest row, with `damaged_clips`: its clips marked damaged}, the problems in the
    output of a run over `films`)."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq
    rows = ds.dataset(out / "manifest", format="parquet").to_table().to_pylist()
    errors = ds.dataset(out / "errors", format="parquet").to_table().to_pylist() if (out / "errors").is_dir() else []
    newest = {}  # each film's newest ok or failed row (a run again after a crash skips the films done: run_nightly)
    for r in sorted(rows, key=lambda r: (r["status"] != "skipped", r["processed_at"])):
        newest[r["film_path"]] = r
    with_error = {e["film_path"] for e in errors if e["fatal"]}
    problems = [f"{f}: no manifest row" for f in films if f not in newest]
    expected = expected_failures()
    problems += [f"{e['film_path']}: failed at {e['stage']} with {e['error_type']}: {e['message'][:200]}"
                 for e in errors if e["fatal"] and (e["stage"] == "read" or e["error_type"] not in expected)]
    problems += [f"left half-written: {p}" for p in glob.glob(f"{out}/**/.*", recursive=True)]
    for film, r in newest.items():
        if r["status"] != "ok":
            problems += [] if film in with_error else [f"{film}: failed without an error row"]
            continue
        clips = pq.read_table(out / "clips" / f"{r['film_id']}.parquet").to_pylist()
        if not clips or len(clips) != r["n_clips"]:
            problems.append(f"{film}: {len(clips)} clips, the manifest says {r['n_clips']}")
        said = any(e["error_type"] in DAMAGE_ROWS for e in errors if e["film_path"] == film)
        r["damaged_clips"] = sum(bool(c["damaged"]) for c in clips)
        for c in clips:  # every clip says whether its media is damaged, and only where a row says so
            if c["damaged"] is None or not set(c["damaged"]) <= {"video", "audio"} or c["damaged"] and not said:
                problems.append(f"{film} clip {c['clip_index']}: damaged {c['damaged']} (a damage row: {said})")
        for before, c in zip([None] + clips, clips):
            probs = [v for k, v in c.items() if k.startswith("prob_")]
            if c["model_version"] is None and all(v is None for v in probs):
                pass  # cut and decoded, not scored (--no_score)
            elif any(v is None or math.isnan(v) for v in probs + [c["confidence"]]) or abs(sum(probs) - 1) > 1e-3:
                problems.append(f"{film} clip {c['clip_index']}: probabilities {probs}, confidence {c['confidence']}")
            if not c["end_s"] > c["start_s"] >= (before["start_s"] if before else 0.0):
                problems.append(f"{film} clip {c['clip_index']}: {c['start_s']}-{c['end_s']} s out of order")
    return newest, problems


def run_polled(cmd: list[str]) -> tuple[int, str, float, float]:
    """Run cmd from the repository root: (exit status, its output, the peak summed RSS of its process tree in MB,
    wall seconds)."""
    import threading
    import time

    import psutil

    from benchmarks.throughput import tree_rss
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    peak = [0]

    def poll():
        ps = psutil.Process(proc.pid)
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss(ps))
            time.sleep(0.2)

    threading.Thread(target=poll, daemon=True).start()
    stdout, _ = proc.communicate()
    return proc.returncode, stdout, peak[0] / 2**20, time.perf_counter() - t0


def run_nightly(cmd: list[str]) -> tuple[int, str, float, float]:
    """run_polled, and again while the run was killed by a signal, as the next night's run would go on: the films
    it committed stay done, and a film that killed it MAX_STARTS times is given up (transforms.attempts): one
    night's crash must cost that night only, which is what this checks (a damaged AAC frame killed the process
    twice in clean-clone test runs of 2026-12-07: transforms.mono.whole)."""
    from transforms.attempts import MAX_STARTS
    returncode, stdout, peak_mb, wall_s = run_polled(cmd)
    for _ in range(MAX_STARTS):
        if returncode >= 0:
            break
        print(f"pipeline.run was killed by signal {-returncode}: run again, as the next night would")
        returncode, again, peak, wall = run_polled(cmd)
        stdout, peak_mb, wall_s = stdout + again, max(peak_mb, peak), wall_s + wall
    return returncode, stdout, peak_mb, wall_s


def cli(copies: int, seed: int, run_args: list[str], work: Path, compare: bool = False) -> list[dict]:
    """Damaged copies of every source, one pipeline.run over all of them, the table by damage kind. compare: the
    undamaged sources through pipeline.run too, and the labels of the clips marked damaged and not, against theirs."""
    import shutil

    from testing.films import DAMAGE_KINDS, damaged_bytes
    rng, films, sources = np.random.default_rng(seed), work / "films", work / "sources"
    films.mkdir(parents=True, exist_ok=True)
    kind_of, source_of = {}, {}
    for source in cli_sources(work):
        data = source.read_bytes()
        subtitles = list(source.parent.glob(f"{source.stem}.*.vtt"))  # the trailer's subtitles go with it
        for kind in DAMAGE_KINDS:
            for k in range(copies):
                copy = films / f"{source.stem}.{kind}.{k}{source.suffix}"
                copy.write_bytes(damaged_bytes(data, kind, rng))
                kind_of[str(copy)], source_of[str(copy)] = kind, str(sources / source.name)
                for sidecar in subtitles:
                    shutil.copy(sidecar, films / f"{copy.stem}.en.vtt")
        if compare:
            sources.mkdir(exist_ok=True)
            for f in [source] + subtitles:
                shutil.copy(f, sources / f.name)
    out = work / "output"
    returncode, stdout, peak_mb, wall_s = run_nightly([sys.executable, "-m", "pipeline.run", "--input", f"{films}/*",
                                                      "--output", str(out), *run_args])
    print(stdout.strip().splitlines()[-1] if stdout.strip() else "(no output)")
    newest, problems = output_problems(sorted(kind_of), out)
    table = []
    # (a damaged AVI index once took a worker to 13.7 GB for minutes: the peak and the time are part of the check)
    print(f"\npipeline.run exit status {returncode}; {len(kind_of)} damaged films; {wall_s:.0f} s; peak RSS of its "
          f"processes {peak_mb:.0f} MB\n")
    print("| damage | copies | scored | failed (reason: copies) | clips marked damaged (films) | problems |")
    print("|---|---|---|---|---|---|")
    for kind in DAMAGE_KINDS:
        mine = [f for f, k in kind_of.items() if k == kind]
        line = {"damage": kind, "copies": len(mine), **tally([newest[f] for f in mine if f in newest], mine, problems)}
        table.append(line)
        print(f"| {kind} | {len(mine)} | {line['scored']} | {failed_text(line['failed'])} | {line['marked']} "
              f"({line['marked_films']}) | {line['problems']} |")
    for p in problems:
        print("PROBLEM", p)
    if compare:
        run_polled([sys.executable, "-m", "pipeline.run", "--input", f"{sources}/*", "--output",
                    str(work / "sources_output"), *run_args])
        print("\nAgainst the undamaged films (clips at the same times, scored in both):\n")
        print("| clips | compared | label changed | mean total variation of the 7 probabilities |")
        print("|---|---|---|---|")
        for name, (n, changed, tv) in label_changes(newest, source_of, out, work / "sources_output").items():
            print(f"| {name} | {n} | {changed} ({changed / max(n, 1):.1%}) | {tv / max(n, 1):.3f} |")
    return table


def label_changes(newest: dict, source_of: dict, out: Path, source_out: Path) -> dict:
    """{'marked damaged' / 'not marked': (clips compared, labels that differ from the undamaged film's clip at the
    same times, summed total variation)} over the scored damaged films."""
    reference, _ = output_problems(sorted(set(source_of.values())), source_out)
    totals = {"marked damaged": [0, 0, 0.0], "not marked": [0, 0, 0.0]}
    for film, r in newest.items():
        ref = reference.get(source_of.get(film))
        if r["status"] != "ok" or not ref or ref["status"] != "ok":
            continue
        mine, theirs = _scored_by_time(out, r["film_id"]), _scored_by_time(source_out, ref["film_id"])
        for at, c in mine.items():
            if at in theirs:
                t = totals["marked damaged" if c["damaged"] else "not marked"]
                probs = [k for k in c if k.startswith("prob_")]
                t[0] += 1
                t[1] += c["emotion"] != theirs[at]["emotion"]
                t[2] += 0.5 * sum(abs(c[k] - theirs[at][k]) for k in probs)
    return {k: tuple(v) for k, v in totals.items()}


def _scored_by_time(out: Path, film_id: str) -> dict:
    import pyarrow.parquet as pq
    rows = pq.read_table(out / "clips" / f"{film_id}.parquet").to_pylist()
    return {(round(c["start_s"], 2), round(c["end_s"], 2)): c for c in rows if c["emotion"] is not None}


def tally(done: list[dict], copies: list[str], problems: list[str]) -> dict:
    """Of some films' newest manifest rows: how many scored, the failures by 'stage: type', and the problems that
    name one of their `copies`."""
    reasons = Counter(r["error"].split(":")[0] + ": " + r["error"].split(": ")[1] for r in done
                      if r["status"] != "ok" and r["error"])
    return {"scored": sum(r["status"] == "ok" for r in done), "failed": dict(reasons.most_common()),
            "marked": sum(r.get("damaged_clips", 0) for r in done),
            "marked_films": sum(bool(r.get("damaged_clips")) for r in done),
            "problems": sum(any(p.startswith(c) for c in copies) for p in problems)}


def failed_text(failed: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in failed.items()) or "-"


def package_sources(work: Path) -> dict[str, Path]:
    """Deliverables whose damage other code reads: IMF and DCP packages (a folder each; SMPTE and Interop subtitles
    as PNG pictures), and films with teletext, PGS and VobSub subtitles."""
    from testing.films import make_film
    from testing.packages import make_package
    from testing.picture_subs import with_picture_track
    from testing.teletext import with_teletext
    lines = [(0.5, 2.0, ["Get out of here!"]), (3.0, 5.0, ["I love you so much."])]
    small = {"duration_s": 6.0, "size": (160, 96)}
    return {"imf": make_package(work / "imf", kind="imf", subtitles="imsc-png").parent,
            "dcp": make_package(work / "dcp", kind="dcp", subtitles="smpte-png").parent,
            "interop": make_package(work / "interop", kind="dcp", subtitles="interop-png").parent,
            "teletext": with_teletext(make_film(work / "base.ts", **small), work / "teletext.ts", lines),
            "pgs": with_picture_track(make_film(work / "b.mkv", **small), work / "pgs.mkv", "pgs", lines),
            "vobsub": with_picture_track(make_film(work / "c.mkv", **small), work / "vobsub.mkv", "dvd", lines)}


def packages(copies: int, seed: int, run_args: list[str], work: Path) -> list[dict]:
    """Damaged copies of each package (one of its files, drawn at random, damaged one of the DAMAGE_KINDS ways) and
    of each film with picture or teletext subtitles, one pipeline.run over all of them, a row per source."""
    import shutil

    import pyarrow.dataset as ds

    from testing.films import DAMAGE_KINDS, damaged_bytes
    rng, films = np.random.default_rng(seed), work / "films"
    films.mkdir(parents=True, exist_ok=True)
    source_of = {}
    for name, source in package_sources(work / "sources").items():
        for k in range(copies * len(DAMAGE_KINDS)):
            kind = DAMAGE_KINDS[k % len(DAMAGE_KINDS)]
            if source.is_dir():
                copy = films / f"{name}_{k}"
                shutil.copytree(source, copy)
                files = sorted(p for p in copy.iterdir() if p.is_file())
                victim = files[int(rng.integers(0, len(files)))]
            else:
                copy = victim = films / f"{name}_{k}{source.suffix}"
                shutil.copy(source, copy)
            victim.write_bytes(damaged_bytes(victim.read_bytes(), kind, rng))
            source_of[str(copy)] = name
    out = work / "output"
    returncode, stdout, peak_mb, wall_s = run_nightly([sys.executable, "-m", "pipeline.run", "--input", str(films),
                                                      "--output", str(out), *run_args])
    print(stdout.strip().splitlines()[-1] if stdout.strip() else "(no output)")
    paths = sorted({r["film_path"] for r in ds.dataset(out / "manifest", format="parquet").to_table().to_pylist()})
    newest, problems = output_problems(paths, out)
    under = lambda copy: [p for p in paths if p == copy or p.startswith(copy + "/")]  # noqa: E731
    problems += [f"{copy}: no film of it has a manifest row" for copy in source_of if not under(copy)]
    print(f"\npipeline.run exit status {returncode}; {len(source_of)} damaged copies, {len(paths)} films; "
          f"{wall_s:.0f} s; peak RSS {peak_mb:.0f} MB\n")
    print("| source | copies | films | scored | failed (reason: films) | clips marked damaged (films) | problems |")
    print("|---|---|---|---|---|---|---|")
    table = []
    for name in dict.fromkeys(source_of.values()):
        mine = [c for c, n in source_of.items() if n == name]
        done = [newest[p] for c in mine for p in under(c) if p in newest]
        line = {"source": name, "copies": len(mine), "films": len(done), **tally(done, mine, problems)}
        table.append(line)
        print(f"| {name} | {len(mine)} | {len(done)} | {line['scored']} | {failed_text(line['failed'])} | "
              f"{line['marked']} ({line['marked_films']}) | {line['problems']} |")
    for p in problems:
        print("PROBLEM", p)
    return table


def main(argv=None) -> list[dict]:
    from testing.films import make_damaged
    argv = sys.argv[1:] if argv is None else list(argv)
    run_args = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=6)
    p.add_argument("--out", default=None, help="folder for the films (default: a temporary one)")
    p.add_argument("--cli", action="store_true", help="every kind of damage through pipeline.run (docstring)")
    p.add_argument("--copies", type=int, default=2, help="--cli: damaged copies per film and kind")
    p.add_argument("--seed", type=int, default=1, help="--cli: where the damage falls")
    p.add_argument("--packages", action="store_true", help="IMF / DCP packages, teletext, PGS and VobSub films instead")
    p.add_argument("--compare", action="store_true", help="--cli: also score the undamaged films and compare the "
                   "labels of the clips marked damaged and not with theirs")
    args = p.parse_args(argv)
    if args.cli:
        work = Path(args.out or tempfile.mkdtemp(prefix="damaged_cli_"))
        if args.packages:
            return packages(args.copies, args.seed, run_args, work)
        return cli(args.copies, args.seed, run_args, work, compare=args.compare)
    logging.disable(logging.WARNING)  # the decode pass logs each warning row; the table counts them
    work = Path(args.out or tempfile.mkdtemp(prefix="damaged_media_"))
    work.mkdir(parents=True, exist_ok=True)
    table = []
    print("| container | damage | copies the film's length | lengths seen (s) | last clip has sound | warning rows |")
    print("|---|---|---|---|---|---|")
    for ext in ("mp4", "mkv", "ts", "avi"):
        source = whole_film(work / f"whole.{ext}")
        for at, share in DAMAGE:
            results = [decode_copy(make_damaged(work / f"damaged_{seed}.{ext}", source, at, share, seed))
                       for seed in range(args.seeds)]
            rows = sum((r["rows"] for r in results), Counter())
            lengths = sorted({round(r["end_s"], 1) for r in results})
            line = {"container": ext, "at": at, "share": share, "whole": sum(r["whole"] for r in results),
                    "copies": len(results), "lengths": lengths, "last_sound": sum(r["last_sound"] for r in results),
                    "rows": dict(rows)}
            table.append(line)
            print(f"| {ext} | {share:.0%} from {at:.0%} | {line['whole']} of {line['copies']} | "
                  f"{', '.join(f'{x:g}' for x in lengths)} | {line['last_sound']} of {line['copies']} | "
                  f"{', '.join(f'{k} {v}' for k, v in sorted(rows.items())) or '-'} |")
    return table


if __name__ == "__main__":
    main()
