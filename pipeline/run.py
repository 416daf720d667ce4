"""`python -m pipeline.run --input GLOB [--input GLOB ...] --output DIR [--runner ...] [Beam options]`

Wires the Beam steps (see docs/architecture.md):

    discover -> skip done -> probe -> subtitles -> ProcessFilm (decode once -> score -> commit the film)

Each film's tables are committed by the step that finished it (transforms/write.py, commit_film), so there is
no barrier across films: a killed run keeps every film it committed and the next run skips exactly those.
The launcher follows the run by watching the committed manifest rows: one line per finished film, a progress
line every PROGRESS_EVERY_S, and the summary line at the end.
"""
from __future__ import annotations

import contextlib
import errno
import datetime as dt
import logging
import os
import secrets
import sys
import threading
import time
from collections import Counter
from typing import Callable, Iterable, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystem import FileMetadata
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions, TestOptions
from apache_beam.runners.runner import PipelineState

from pipeline.options import (FilmEmotionOptions, config_hash, misspelt_options, offline_direct_runner,
                              option_problems, other_runner_options)
from pipeline.output_lock import OutputLock
from schemas import TABLES
from transforms import dvd, imf
from transforms.attempts import ATTEMPTS_DIR, MAX_STARTS, forget_all, in_flight
from transforms.decode import DecodeConfig, read_languages
from transforms.discover import (BACKUPS, DOWNLOADING, NOT_FILMS, SEQUENCE_FRAMES, DiscoverFilms, file_key,
                                 has_pattern_chars, is_film_candidate, local_path, match_patterns, normalise_pattern,
                                 outside_hidden_folders, pattern_regex, unreachable_inputs)
from transforms.elements import ERRORS_TAG
from transforms.film import ProcessFilm
from transforms.probe import ProbeFilm
from transforms.subtitles import LoadSubtitles
from transforms.write import (SKIPPED_FILE, SKIPPED_TAG, CommitFailure, SkipDone, WriteRunTable, clean_output,
                              content_key, latest_by_film, load_done_films, os_error_in, read_rows, table_files,
                              table_matches, write_done_index, write_unreachable)

log = logging.getLogger("pipeline.run")
PROGRESS_EVERY_S = 30.0
POLL_S = 1.0
# Worker processes this launcher starts (DirectRunner multi_processing) inherit a cap on glibc's heap arenas. By
# default glibc gives threads up to 8 arenas per core, each fragmenting on its own: a multi-process run's workers
# grew by 0.6 GB from film 9 to film 48 and kept growing; with one arena they stay level, at the same speed
# (docs/operations.md, benchmarks.catalogue). glibc reads it when a process starts, so a worker cannot set it for
# itself. A value the user exports wins.
MALLOC_ARENA_MAX = "1"
QUIET_LOGGERS = ("apache_beam", "faster_whisper", "ctranslate2", "transformers", "timm", "urllib3", "httpx",
                 "numba", "matplotlib", "PIL")


class WorkerNoise(logging.Filter):
    """Two warnings every multi-process DirectRunner worker relays at start (each a screenful, before any film): its
    Beam re-parses the launcher's options without this project's ('Discarding unparseable args'; the steps get their
    settings as arguments, not from options) and misses a folder only SDK containers have. Both are harmless here;
    any other worker warning passes."""
    HARMLESS = ("Discarding unparseable args", "No semi_persistent_directory found")

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(text in record.getMessage() for text in self.HARMLESS)


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def build_pipeline(p: beam.Pipeline, opts: PipelineOptions, scorer: Optional[Callable] = None,
                   cue_source_factory: Optional[Callable] = None, done: Optional[dict] = None) -> dict:
    """Add the whole job to `p`. Returns the main PCollections (handy for tests and for extending the graph).

    scorer: a transforms.score.FilmScorer (or None: clips are cut but not scored); its `.model_version` goes
    into the config hash so a new head re-scores."""
    fo = opts.view_as(FilmEmotionOptions)
    if not fo.input or not fo.output:
        raise ValueError("--input and --output are required")
    run_id = fo.run_id or new_run_id()
    fo.run_id = run_id
    chash = config_hash(fo, getattr(scorer, "model_version", None) if scorer is not None else None)
    if done is None:
        done = load_done_films(fo.output)  # --force redoes every film, under the ids they already have

    found = p | "Discover" >> DiscoverFilms(fo.input)
    keys = found.films | "ContentKeys" >> beam.Map(content_key)  # films of the same bytes share out moved films
    features = fo.write_features and scorer is not None
    todo = found.films | "SkipDone" >> beam.ParDo(SkipDone(done, chash, run_id, fo.force, fo.output, features,
                                                           fo.write_transcripts),
                                                  claimants=beam.pvalue.AsList(keys)).with_outputs(
        SKIPPED_TAG, main="todo")
    probed = todo.todo | "Probe" >> beam.ParDo(ProbeFilm(fo.output, chash)).with_outputs(ERRORS_TAG, main="probed")
    # Which subtitles the text path reads decides the track and whether speech is transcribed instead.
    read = read_languages(fo)  # (the lines the text path reads: the decoder's plan says so too)
    jobs = probed.probed | "Subtitles" >> beam.ParDo(LoadSubtitles(chash, fo.transcribe, fo.subtitle_language,
                                                                   text_languages=read, output_dir=fo.output))
    asr_name = getattr(cue_source_factory, "model_name", None) or fo.asr_model or "unknown"
    process = ProcessFilm(fo.output, run_id, DecodeConfig.from_options(fo), scorer, cue_source_factory,
                          fo.write_transcripts, asr_name)
    step = beam.ParDo(process)
    accelerator = getattr(getattr(scorer, "cfg", None), "accelerator", None)
    if accelerator:  # decode and scoring share the step: it runs where the GPU is
        step = step.with_resource_hints(accelerator=accelerator)
    films = jobs | "ProcessFilm" >> step
    failed = ((found.errors, probed.errors) | "EarlyFailures" >> beam.Flatten()
              | "CommitFailures" >> beam.ParDo(CommitFailure(fo.output, run_id, chash)))
    todo[SKIPPED_TAG] | "WriteSkipped" >> WriteRunTable(fo.output, "manifest", run_id, SKIPPED_FILE)
    return {"run_id": run_id, "config_hash": chash, "films": films, "failed": failed,
            "skipped": todo[SKIPPED_TAG]}


def _default_scorer(fo: FilmEmotionOptions):
    if not fo.score:
        return None
    from transforms.score import make_scorer  # imports torch: only when scoring
    return make_scorer(fo)


def _default_cue_source_factory(fo: FilmEmotionOptions):
    if fo.transcribe == "never":
        return None
    from transforms.transcribe import AsrCueSourceFactory
    return AsrCueSourceFactory.from_options(fo)


def _scored(row: dict) -> bool:
    """A film this run decoded and scored (an ok row, not a moved film whose outputs were kept)."""
    return row["status"] == "ok" and not row.get("moved_from")


def this_launch(rows: list[dict], since: Optional[float]) -> list[dict]:
    """The manifest rows processed at or after `since` (the launch's start, epoch seconds; None: every row). A --run_id
    given again (a job relaunched under its name, a nightly run with a fixed one) finds the earlier launches' rows in
    manifest/<run_id>/ too: a film this launch committed again has its file rewritten with a new processed_at, the
    others keep theirs. Before 2026-12-06 those were counted as this launch's (night 2 over an unchanged archive said
    ok=2 skipped=2). processed_at is the worker's clock: a cluster's, synchronised, differs from the launcher's by far
    less than a job takes to commit its first film."""
    if since is None:
        return rows
    return [r for r in rows if r["processed_at"].timestamp() >= since]


def summarise(output_dir: str, run_id: str, wall_s: float, since: Optional[float] = None) -> dict:
    """The run's counts, clips, film hours and real-time factor, from its manifest rows (this launch's: this_launch)."""
    rows = this_launch(read_rows(table_files(output_dir, "manifest", run_id), "manifest"), since)
    count = {s: sum(r["status"] == s for r in rows) for s in ("ok", "failed", "skipped")}
    count["moved"] = sum(bool(r.get("moved_from")) for r in rows)  # ok rows whose outputs were kept, not scored
    processed = [r for r in rows if _scored(r)]
    film_s = sum(r["duration_s"] or 0.0 for r in processed)
    return {"run_id": run_id, "films": len(rows), **count,
            "clips": sum(r["n_clips"] or 0 for r in processed),
            "hours": film_s / 3600.0, "wall_s": wall_s, "realtime_factor": film_s / wall_s if wall_s > 0 else 0.0}


def format_summary(s: dict) -> str:
    moved = f" (moved {s['moved']}: outputs kept)" if s.get("moved") else ""
    gone = f" gone={s['gone']} (outputs kept)" if s.get("gone") else ""
    gone += f" unreachable={s['unreachable']} (not listed: see the log)" if s.get("unreachable") else ""
    return (f"run {s['run_id']}: films ok={s['ok']}{moved} failed={s['failed']} skipped={s['skipped']}{gone} | "
            f"clips={s['clips']} | film hours={s['hours']:.3f} | wall={s['wall_s']:.1f}s | "
            f"real-time factor={s['realtime_factor']:.1f}x")


def _fmt_s(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """Follows a run from its committed manifest rows (works on every runner, whatever process did the work):
    one line per finished film, and a run line every `every_s` with films done, film-hours, the real-time
    factor so far and an ETA from the bytes still to do. since: the launch's start (epoch seconds), for a --run_id
    given again: only this launch's rows count (this_launch); None: every row under the run's folder."""

    def __init__(self, output_dir: str, run_id: str, expected: dict[str, int], every_s: float = PROGRESS_EVERY_S,
                 emit: Callable[[str], None] = print, since: Optional[float] = None):
        self.output_dir, self.run_id, self.every_s, self.emit = output_dir, run_id, every_s, emit
        self.expected = expected  # film path -> size in bytes, for the films this run is expected to process
        self.since = since
        self.seen: dict[str, float] = {}  # manifest file -> its last-updated time when read
        self.counted: set[str] = set()  # manifest files that held a row of this launch: one film line each
        self.rows: list[dict] = []
        self.t0 = time.monotonic()
        self.last_line = self.t0

    def poll(self) -> None:
        """Emit a line for each film committed since the last poll, and the run line when it is due."""
        for path in self.new_files():
            rows = this_launch(read_rows([path], "manifest"), self.since)
            if rows:
                self.counted.add(path)
            for r in rows:
                self.rows.append(r)
                self.emit(self.film_line(r))
        now = time.monotonic()
        if now - self.last_line >= self.every_s:
            self.last_line = now
            self.emit(self.run_line(now - self.t0))

    def new_files(self) -> list[str]:
        """The run's manifest files not read yet, or rewritten since (an earlier launch's file of a film this launch
        commits again, under a --run_id given again), skipped films' file and those already counted left out."""
        new = []
        for m in table_matches(self.output_dir, "manifest", self.run_id):
            if (m.path in self.counted or m.path.endswith(f"/{SKIPPED_FILE}.parquet")
                    or self.seen.get(m.path) == m.last_updated_in_seconds):
                continue
            self.seen[m.path] = m.last_updated_in_seconds
            new.append(m.path)
        return new

    def film_line(self, r: dict) -> str:
        n = max(len(self.expected), len(self.rows))
        dur, wall = r.get("duration_s") or 0.0, r.get("wall_s") or 0.0
        speed = f", {dur / wall:.1f}x real time" if dur and wall else ""
        clips = f"{r.get('n_clips') or 0} clip{'' if r.get('n_clips') == 1 else 's'}"
        what = f"{dur:.0f} s of film, {clips} in {wall:.1f} s{speed}"
        tail = f": {r['error']}" if r["status"] != "ok" and r.get("error") else ""
        if r.get("moved_from"):
            what, tail = f"{dur:.0f} s of film, {clips} kept", f": moved from {r['moved_from']}"
        return f"film {len(self.rows)}/{n} {r['status']}: {r['film_id']} ({what}){tail}"

    def before_first_film(self) -> str:
        """What the run is doing while no film of this launch has committed: the done check (each film found is
        fingerprinted and compared with its done row), then the first new film. Before 2026-12-07 the line said only
        "ETA unknown" for the minutes a large catalogue's done check takes."""
        if self.rows:
            return ""
        if not self.expected:
            return ", checking the films already indexed (none looks new)"
        return f", deciding which films are new, then scoring the first ({len(self.expected)} look new)"

    def run_line(self, elapsed: float) -> str:
        ok = sum(r["status"] == "ok" for r in self.rows)
        film_s = sum(r.get("duration_s") or 0.0 for r in self.rows if _scored(r))
        done_bytes = sum(self.expected.get(r["film_path"], r.get("size_bytes") or 0) for r in self.rows)
        finished = {r["film_path"] for r in self.rows}
        todo_bytes = sum(v for p, v in self.expected.items() if p not in finished)
        eta = (f", ETA {_fmt_s(elapsed * todo_bytes / done_bytes)}" if done_bytes and todo_bytes
               else "" if done_bytes else f"{self.before_first_film()}, ETA unknown until a film is done")
        return (f"progress: {len(self.rows)}/{max(len(self.expected), len(self.rows))} films done "
                f"(ok {ok}, failed {len(self.rows) - ok}), {film_s / 3600:.3f} film-hours, "
                f"{film_s / elapsed if elapsed > 0 else 0:.1f}x real time so far, elapsed {_fmt_s(elapsed)}{eta}")


def match_inputs(patterns: list[str], not_read: Optional[Counter] = None) -> dict[str, list]:
    """--input pattern -> the films it matches now (FileMetadata; sidecars and our outputs left out; an IMF / DCP
    package's files as its compositions, as discovery finds them). `not_read` counts, by suffix, the files the
    patterns match that are not films: image-sequence frames (SEQUENCE_FRAMES), unfinished downloads (DOWNLOADING),
    backup copies (BACKUPS: by '~' or their last suffix) and the rest of NOT_FILMS (sidecars, pictures, notes; not
    XML, which a package's compositions are)."""
    results = match_patterns([normalise_pattern(p) for p in patterns])  # (folders behind links too, as the job lists)
    if not_read is not None:
        not_read.update(suffix for r in results for m in r.metadata_list
                        if m.path.lower().endswith(NOT_FILMS) and (suffix := not_film_suffix(m.path)) != ".xml")
    return {p: [FileMetadata(path, size) for path, size in dict(imf.listed_film_paths(
        (m.path, m.size_in_bytes) for m in r.metadata_list if is_film_candidate(m.path) or imf.is_asset_map(m.path)
    )).items()] for p, r in zip(patterns, results)}


def check_inputs(patterns: list[str], unreachable: Sequence[tuple[str, str]] = ()) -> dict[str, list]:
    """The films each pattern matches. A pattern that matches none is named in the log; when none matches any
    (a typo, an archive not mounted) the run stops with a message and a failed exit status instead of
    reporting an empty success. A filesystem that cannot be listed here is left to the pipeline. `unreachable`:
    what the patterns cover that the listing leaves out (find_unreachable), named in the log."""
    if unreachable:
        log.warning("%d path(s) under --input cannot be reached, so their films are not scored this run (a volume not "
                    "mounted, permissions?): %s", len(unreachable),
                    "; ".join(f"{path}: {why}" for path, why in unreachable[:5])
                    + (" ..." if len(unreachable) > 5 else ""))
    not_read: Counter = Counter()
    try:
        matched = match_inputs(patterns, not_read)
    except Exception as exc:  # noqa: BLE001 - e.g. no credentials in the launcher: the workers may have them
        log.debug("could not list the inputs before the run: %s", exc)
        return {}
    sequences = ""
    downloading = Counter({k: n for k, n in not_read.items() if k in DOWNLOADING})
    backups = Counter({k: n for k, n in not_read.items() if k in BACKUPS})
    frames = Counter({k: n for k, n in not_read.items() if k in SEQUENCE_FRAMES})
    if others := not_read - downloading - backups - frames:
        log.info("--input: %d file(s) that are not films are not scored (subtitles, pictures, notes: %s)",
                 others.total(), _by_suffix(others))
    if backups:
        log.warning("--input: %d backup copie(s) (%s) are not read: each is a copy of a film scored under its own "
                    "name", backups.total(), _by_suffix(backups))
    if frames:
        sequences = (f"{frames.total()} image-sequence frame(s) ({_by_suffix(frames)}) are not read: render each "
                     "sequence to a film (ProRes, DNxHR, H.264) and give --input that")
        log.warning("--input: %s", sequences)
    if downloading:
        log.warning("--input: %d file(s) still being downloaded or copied (%s) are not read: each is read once "
                    "complete, under its final name", downloading.total(), _by_suffix(downloading))
    for pattern, films in matched.items():
        if not films:
            log.warning("--input %s matches no film file%s", pattern, remote_folder_hint(pattern))
    if matched and not any(matched.values()):
        hints = [h for p in patterns if (h := remote_folder_hint(p))]
        why = (f" ({len(unreachable)} path(s) there cannot be reached, e.g. {unreachable[0][0]}: "
               f"{unreachable[0][1]})" if unreachable else f" ({sequences})" if sequences else hints[0] if hints
               else "")
        raise SystemExit(f"pipeline.run: no film file matches --input {' '.join(patterns)}{why}")
    return matched


def not_film_suffix(path: str) -> str:
    """How a file that is not a film is counted in the launcher's lines: its suffix in lower case, '~' for an
    editor's backup (film.mp4~), '' for none."""
    name = path.rsplit("/", 1)[-1].lower()
    return "~" if name.endswith("~") else os.path.splitext(name)[1]


def _by_suffix(counts: Counter) -> str:
    """'3 .dpx, 1 .exr': files counted by suffix, most first (then by suffix: the same line every run)."""
    return ", ".join(f"{n} {suffix}" for suffix, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def remote_folder_hint(pattern: str) -> str:
    """' (a folder? ...)' for a pattern on another filesystem with no wildcard and no trailing '/': an object store
    has no folders to expand, so 'gs://b/films' names one object (a local folder is expanded: normalise_pattern)."""
    if "://" not in pattern or pattern.endswith("/") or has_pattern_chars(pattern):
        return ""
    return f" (a folder? end it with '/' to read every film below it: {pattern}/)"


def find_unreachable(patterns: list[str]) -> list[tuple[str, str]]:
    """(path, why) of what the local --input patterns cover that Beam's listing leaves out
    (transforms.discover.unreachable_inputs: links to files not there, folders that cannot be read), once each."""
    found: dict[str, str] = {}
    for pattern in patterns:
        try:
            found.update(unreachable_inputs(pattern))
        except OSError as exc:  # only a report
            log.debug("could not look for unreachable paths under %s: %s", pattern, exc)
    return sorted(found.items())


def absolute_paths(done: dict[str, dict]) -> dict[str, dict]:
    """load_done_films's rows, those of films an earlier launcher recorded by a relative path made absolute from this
    working folder, as --input is now (pipeline.arg_types.io_path): before 2026-12-06 '--input archive/' recorded
    'archive/a.mp4', and without this each such film would be scored again under a new id, its old outputs left."""
    out = {}
    for path, row in done.items():
        if "://" not in path and not os.path.isabs(path) and os.path.abspath(path) not in done:
            path = os.path.abspath(path)
            row = {**row, "film_path": path}
        out[path] = row
    return out


def check_output(output: str) -> None:
    """A local --output must be a folder this process can write, and so must the table folders already in it: stop
    with a message, not a worker's traceback after the first film. Remote outputs are left to the workers (the
    launcher may lack their credentials)."""
    path = local_path(output)
    if path is None:
        return
    if os.path.exists(path) and not os.path.isdir(path):
        raise SystemExit(f"pipeline.run: --output {output} is a file; give a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise SystemExit(f"pipeline.run: cannot create --output {output}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise SystemExit(f"pipeline.run: --output {output} is not writable")
    blocked = unwritable_folders(path)
    if blocked:  # (before 2026-12-06 the first film's commit failed, a traceback and no summary line)
        raise SystemExit(f"pipeline.run: --output {output}: this run cannot write into {', '.join(blocked)} there "
                         "(made by another user?); give it write access, or another --output")


def unwritable_folders(path: str) -> list[str]:
    """The names of the folders under a local output that a run writes into and that are there but cannot be written
    (or are not folders): a clips/ an earlier run of another user made, a read-only mount inside the output."""
    folders = {f"{name}/": os.path.join(path, name) for name in (*TABLES, ATTEMPTS_DIR)}
    return [name for name, folder in folders.items() if os.path.lexists(folder)
            and not (os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK))]


def expected_films(matched: dict[str, list], done: dict, chash: str) -> dict[str, int]:
    """film path -> size for the films this run will probably process (matched, and not done before with the
    same size and configuration): what the progress lines count towards. The exact skip decision is made in
    the pipeline from the content fingerprint."""
    out = {}
    files = [m for films in matched.values() for m in films]
    read_by_first = dvd.parts_read_by_first(m.path for m in files)  # a DVD title's later parts: not films
    for m in (m for m in files if m.path not in read_by_first):
        prev = done.get(m.path)
        if not (prev and prev.get("size_bytes") == m.size_in_bytes and prev.get("config_hash") == chash):
            out[m.path] = m.size_in_bytes
    return out


def gone_films(patterns: list[str], matched: dict[str, list], done: dict, unreachable: Iterable[str] = ()
               ) -> list[dict]:
    """The done rows (load_done_films after the run) of films whose path is under an --input pattern but no longer
    there (deleted, or moved out of the archive), where the film is now: a film moved to another path keeps its id,
    and its newest row is there. Their outputs stay: the run's summary counts them and the log names them, so a
    nightly run tells the studio what vanished. Empty when the launcher could not list the inputs. A film whose
    path cannot be reached (`unreachable`: a link to a file not there, in a folder that cannot be read) is not gone:
    the summary counts it apart. Nor is a path still there that is the same file as a listed one (a second link to its
    folder: before 2026-12-06 it was counted gone). Nor is a film under a pattern that matches no film tonight (a
    volume not mounted leaves an empty folder: before 2026-12-07 its every film was counted gone; the launcher warns
    of the pattern)."""
    if not any(matched.values()):
        return []
    unreachable = set(unreachable)
    # (a film scored inside a hidden folder before 2026-12-06, left out of listings since, is not gone every night)
    under = [(pattern_regex(n), outside_hidden_folders(n)) for p, n in zip(patterns, map(normalise_pattern, patterns))
             if matched.get(p) or not has_pattern_chars(n)]  # (a film named alone and deleted: gone)
    listed = {m.path for films in matched.values() for m in films}
    folders = {p.rsplit("/", 1)[0] for p in listed}  # a package's title is there while its folder's files are
    gone = [r for r in sorted(latest_by_film(done).values(), key=lambda r: r["film_path"])
            if r["status"] == "ok" and r["film_path"] not in listed
            and not any(r["film_path"] == u or r["film_path"].startswith(u.rstrip("/") + "/") for u in unreachable)
            and not (imf.is_composition(r["film_path"]) and r["film_path"].rsplit("/", 1)[0] in folders)
            and any(rx.fullmatch(r["film_path"]) and shown(r["film_path"].rsplit("/", 1)[0]) for rx, shown in under)]
    there = {id(r): key for r in gone if (key := file_key(r["film_path"])) is not None}
    if not there:  # (most gone films: not there, nothing to compare)
        return gone
    files = {key for p in listed if (key := file_key(p)) is not None}  # one stat a listed film, not one a pair
    return [r for r in gone if there.get(id(r)) not in files]

def dry_run(opts: PipelineOptions) -> bool:
    """Beam's --dry_run: Dataflow builds the job (the graph pickled, the --setup_file package staged, the resource
    hints set) and does not submit it. Another runner would run the job, so the launch stops."""
    test = opts.view_as(TestOptions)
    if isinstance(test.dry_run, str):  # Beam keeps it as text, so "--dry_run False" was a dry run to Dataflow
        test.dry_run = test.dry_run.strip().lower() not in ("", "0", "false", "no")
    if not test.dry_run:
        return False
    runner = opts.view_as(StandardOptions).runner or "DirectRunner"
    if "dataflow" not in runner.lower():
        raise SystemExit(f"pipeline.run: --dry_run builds a Dataflow job without submitting it; {runner} would run "
                         "the job, so nothing was started")
    return True


def run(argv: Optional[list[str]] = None, save_main_session: bool = True, scorer: Optional[Callable] = None,
        cue_source_factory: Optional[Callable] = None, progress_every_s: float = PROGRESS_EVERY_S) -> dict:
    """Run the job; returns the summary dict (also printed as one line) with the Beam result under 'result'."""
    opts = PipelineOptions(argv)
    opts.view_as(SetupOptions).save_main_session = save_main_session
    fo = opts.view_as(FilmEmotionOptions)
    problems = misspelt_options(sys.argv[1:] if argv is None else argv)
    if not fo.input or not fo.output:  # (after the spellings: '--inp DIR' is told 'did you mean --input')
        raise SystemExit("pipeline.run: " + "; ".join(problems + ["--input and --output are required (see --help)"]))
    problems += option_problems(fo, opts.view_as(StandardOptions).runner)
    from apache_beam.options.pipeline_options import DirectOptions
    workers = opts.view_as(DirectOptions).direct_num_workers  # (Beam's IndexError traceback for a negative one)
    if workers is not None and workers < 0:
        problems.append(f"--direct_num_workers must be >= 0 (got {workers}; 0: one per core)")
    if problems:
        raise SystemExit("pipeline.run: " + "; ".join(problems))
    for warning in other_runner_options(sys.argv[1:] if argv is None else argv):
        log.warning("%s", warning)
    building = dry_run(opts)
    t0, started_at = time.perf_counter(), time.time()
    unreachable = find_unreachable(fo.input)
    matched = check_inputs(fo.input, unreachable)
    check_output(fo.output)
    # Held from before the clean-up (which would take another live run's temporary files) to the end.
    with OutputLock(fo.output) as lock, worker_environment():
        scorer = scorer if scorer is not None else _default_scorer(fo)
        cue_source_factory = cue_source_factory or _default_cue_source_factory(fo)
        if not building:  # a dry run changes nothing under --output
            clean_output(fo.output)
        if fo.force and not building:  # every film is tried again, also those that took down their worker
            forget_all(fo.output)
        done = absolute_paths(load_done_films(fo.output))
        p = beam.Pipeline(runner=offline_direct_runner(opts.view_as(StandardOptions).runner), options=opts)
        built = build_pipeline(p, opts, scorer=scorer, cue_source_factory=cue_source_factory, done=done)
        if not building:  # the paths out of reach: an errors row each, which the report lists
            write_unreachable(fo.output, built["run_id"], unreachable)
        expected = expected_films(matched, {} if fo.force else done, built["config_hash"])
        progress = Progress(fo.output, built["run_id"], expected, progress_every_s, since=started_at)
        outcome: dict = {}

        def execute():
            try:
                outcome["result"] = p.run()
                outcome["result"].wait_until_finish()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the launcher's thread below
                outcome["error"] = exc

        worker = threading.Thread(target=execute, name="beam-pipeline", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(POLL_S)
                try:
                    progress.poll()
                    lock.renew()
                except Exception as exc:  # noqa: BLE001
                    log.debug("progress poll or lock heartbeat failed: %s", exc)
        except BaseException:  # Ctrl-C, a lock another run took over: the job must not outlive the lock
            cancel_unfinished(outcome.get("result"))
            raise
        if "error" in outcome:
            cancel_unfinished(outcome.get("result"))  # (waiting failed: a job service gone, the job maybe not)
            full = output_full(outcome["error"])
            denied = None if full else output_denied(outcome["error"], fo.output)
            blocked = None if full or denied else output_denied(outcome["error"], fo.output, OUTPUT_BLOCKED)
            if full or denied or blocked:  # every later film would fail the same way: say what to do, no traceback
                print(format_summary(summarise(fo.output, built["run_id"], time.perf_counter() - t0, started_at)),
                      flush=True)
                todo = ("free space" if full else "give this run write access there" if denied else
                        "move away the file that stands where the run writes a folder (or the folder where it writes "
                        "a file)")
                why = full or denied or blocked
                raise SystemExit(f"pipeline.run: writing under --output {fo.output} failed ({why}), so the "
                                 "run stopped. The films committed before it are kept and no film is half-written; "
                                 f"{todo} and run again: those films are skipped.") from None
            stopped = in_flight(fo.output, started_at)
            if stopped:  # a worker died (a crash, memory): say which films it may have been on
                log.error("the run stopped while these films were in flight: %s. A film that stops its worker %d "
                          "times is given up (failed, WorkerCrashed) and the run goes on without it",
                          "; ".join(f"{r['film_path']} (started {r['starts']} time(s))" for r in stopped),
                          MAX_STARTS)
            raise outcome["error"]
        if building:
            print(f"pipeline.run: dry run: the Dataflow job {built['run_id']} was built and not submitted; nothing "
                  f"under --output changed", flush=True)
            return {"run_id": built["run_id"], "config_hash": built["config_hash"], "dry_run": True,
                    "result": outcome.get("result")}
        progress.poll()
        summary = summarise(fo.output, built["run_id"], time.perf_counter() - t0, started_at)
        try:  # the next run reads this snapshot and the few files after it, not every manifest file
            done_now = write_done_index(fo.output)
        except Exception as exc:  # noqa: BLE001 - only a speed-up: the next run reads every file instead
            log.warning("could not write the done index under %s: %s", fo.output, exc)
            done_now = load_done_films(fo.output)
        gone = gone_films(fo.input, matched, absolute_paths(done_now), unreachable=[path for path, _ in unreachable])
        summary["gone"], summary["unreachable"] = len(gone), len(unreachable)
        if gone:
            names = ", ".join(r["film_path"] for r in gone[:5]) + (" ..." if len(gone) > 5 else "")
            log.warning("%d film(s) in %s are no longer at their paths under --input; their outputs stay: %s",
                        len(gone), fo.output, names)
        summary.update(config_hash=built["config_hash"], result=outcome.get("result"))
        print(format_summary(summary), flush=True)
        return summary


def cancel_unfinished(result) -> None:
    """Cancel the job of a launcher that stops following it while its runner still runs it (a cluster runner's p.run()
    returns at submission). Called before the --output lock is released: a job left running went on committing films
    beside the next launch on the same output. Not every runner can cancel (nor tell its state): the log then says
    the job may still run."""
    if result is None:  # not submitted yet, or an in-process run: it ends with this process
        return
    try:
        if PipelineState.is_terminal(result.state):
            return
        result.cancel()
        log.warning("the launcher stopped while its job was running: the runner was asked to cancel the job")
    except Exception as exc:  # noqa: BLE001 - the lock is released anyway; say what is left running
        log.error("could not cancel the running job (%s: %s): it may still be writing to --output; stop it with the "
                  "runner's own tools before the next run on this output", type(exc).__name__, exc)


# What a write under --output fails with when no film can be written any more. Runners hand a worker's error
# back wrapped (multi_processing and portable runners as text), so the text is read too.
OUTPUT_FULL = {errno.ENOSPC: "No space left on device", errno.EDQUOT: "Disk quota exceeded",
               errno.EROFS: "Read-only file system"}


# What a write under --output fails with when the filesystem refuses it (a folder another user made, since the launch
# looked): as final for the run as a full disk. Only a path under --output counts: a film that cannot be read is not.
OUTPUT_DENIED = {errno.EACCES: "Permission denied", errno.EPERM: "Operation not permitted"}
# ... or a file stands where the run writes a folder, or a folder where it writes a file (before 2026-12-07 a worker's
# traceback and no summary line)
OUTPUT_BLOCKED = {errno.ENOTDIR: "Not a directory", errno.EISDIR: "Is a directory", errno.EEXIST: "File exists"}


def output_denied(exc: BaseException, output: str, reasons: dict[int, str] = OUTPUT_DENIED) -> Optional[str]:
    """The reason, when `exc` (or what it wraps, also as a runner's text) is a write under the local `output` that
    the filesystem refused (`reasons`: EACCES, EPERM; OUTPUT_BLOCKED); else None. Before 2026-12-06 it was a
    worker's traceback, no summary."""
    root = local_path(output)
    if root is None:
        return None
    root = root.rstrip("/") + "/"
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in reasons and str(exc.filename or "").startswith(root):
            return reasons[exc.errno]
        for reason in reasons.values():
            if f"{reason}: '{root}" in str(exc) or f'{reason}: "{root}' in str(exc):
                return reason
        exc = exc.__cause__ or exc.__context__
    return None


def output_full(exc: BaseException) -> Optional[str]:
    """The reason, when `exc` (or what it wraps) is a full disk, a quota or a read-only filesystem; else None."""
    found = os_error_in(exc, OUTPUT_FULL)
    return found[1] if found else None


@contextlib.contextmanager
def worker_environment():
    """MALLOC_ARENA_MAX for the worker processes a run starts, while it runs: a program that runs pipelines
    in-process (a scheduler, the tests) gets its own environment back, and the processes it starts later do not
    inherit the cap. A value the user exported is left as it is."""
    added = "MALLOC_ARENA_MAX" not in os.environ
    os.environ.setdefault("MALLOC_ARENA_MAX", MALLOC_ARENA_MAX)
    try:
        yield
    finally:
        if added:
            os.environ.pop("MALLOC_ARENA_MAX", None)


def print_help() -> None:
    import argparse

    class WithDefaults(argparse.HelpFormatter):
        """Each option's default after its help, where the help does not give it (before 2026-12-07 most did not)."""

        def _get_help_string(self, action):
            text = action.help or ""
            if (not action.option_strings or action.default in (None, False, argparse.SUPPRESS)
                    or "default" in text.lower()):
                return text
            return f"{text} (default: %(default)s)"
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.run", formatter_class=WithDefaults,
        description="Cut every film matched by --input into clips (subtitle cues, windows or shots), decode each "
                    "film once, score the clips and write Parquet tables under --output. Films already done "
                    "with the same content and configuration are skipped.",
        epilog="Any Apache Beam pipeline option is accepted too, e.g. --runner=DirectRunner|DataflowRunner|"
               "FlinkRunner|PortableRunner, --direct_num_workers=N --direct_running_mode=multi_processing, "
               "--setup_file=./setup.py, --temp_location=gs://... (see Beam's documentation).")
    FilmEmotionOptions._add_argparse_args(parser)
    parser.print_help()


def main(argv: Optional[list[str]] = None) -> int:
    argv = argv if argv is not None else sys.argv[1:]
    if "--help" in argv or "-h" in argv:
        print_help()
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET_LOGGERS:  # third-party INFO chatter stays out of the default log
        logging.getLogger(name).setLevel(logging.WARNING)
    relay = logging.getLogger("apache_beam.runners.portability.local_job_service")
    if not any(isinstance(f, WorkerNoise) for f in relay.filters):  # once per process (main may run many times)
        relay.addFilter(WorkerNoise())
    # gRPC's C core logs "skipping fork() handlers" at INFO each time the DirectRunner starts a worker process
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    run(argv)
    return 0


if __name__ == "__main__":
    status = main()
    # Every table is committed by now. Skip the interpreter's teardown: gRPC's C++ threads of the DirectRunner's
    # worker handlers can still be stopping then and abort the process ("terminate called without an active
    # exception", seen once in a multi_processing run), which would turn a finished run into a failed exit code.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
