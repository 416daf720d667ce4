"""Reads a pipeline output directory (clips/, errors/, manifest/, features/) into what the report shows.

Several runs may have written into one directory: the manifest's latest row per film says its state, the
errors of those runs say why a film failed. Paths go through pyarrow's filesystems so a bucket works too.

Table layouts read (both may sit side by side in one directory):
    manifest/<run_id>.parquet, errors/<run_id>.parquet                  one file per run (older outputs)
    manifest/<run_id>/<film_id>.parquet, errors/<run_id>/<film_id>.parquet
                                                                       one small file per film and run
    manifest/<run_id>/skipped.parquet                                  the films a run skipped
Files are found recursively; names starting with '.' or '_' (writers' temporary files and folders) are not
read. Columns a file lacks (older schema versions, e.g. the manifest's wall_s, or the clips table's evidence,
support and grounded columns before clips schema 1.1, its damaged column before 1.2) are read as nulls: a null
`grounded` means the run recorded no evidence, and the report treats such a clip as not grounded; a null `damaged`
means the run did not look, and the report treats the clip's media as whole (and says damage was not looked for).

An output without a manifest (pipeline.rescore writes clips/ and errors/ only) is read from those two: a film with
clips is `rescored` where a rescore run wrote them (`rescore-*` ids, or a run with `rescore` error rows), else
`scored`; a film named only by error rows is `failed` when one is fatal.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from schemas import EMOTIONS, PROB_COLUMNS
from schemas import clips as clips_schema
from schemas import errors as errors_schema
from schemas import features as features_schema
from schemas import manifest as manifest_schema
from schemas import rescore_plan as plan_schema

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class FilmSummary:
    """One line of the catalogue: a film's latest state and, when scored, its emotion mix."""
    film_id: str
    film_path: str
    # ok | failed, as its deciding run left it; skipped (no other row) | unknown (no manifest row); in an output without
    # a manifest (pipeline.rescore's): rescored | scored (clips) | failed (a fatal error row, no clips) | pending (the
    # newest rescore run planned it and wrote neither clips nor an error row for it: it stopped before the film)
    status: str
    run_id: Optional[str]
    duration_s: Optional[float]
    n_clips: int
    model_versions: tuple[str, ...]
    counts: np.ndarray  # int [7]: clips per predicted emotion, EMOTIONS order
    mean_probs: np.ndarray  # float [7]: mean probability over scored clips (zeros when none)
    error: Optional[str]
    n_grounded: int = 0  # scored clips whose label some modality backs on its own (grounded true)
    n_evidence: int = 0  # scored clips with `grounded` recorded (0 for clips schema 1.0 files: no evidence)
    n_damaged: int = 0  # clips whose picture or sound is damaged (`damaged`, clips schema 1.2)
    n_damage_unknown: int = 0  # clips with `damaged` null: written before clips schema 1.2, damage not looked for
    skipped_last: bool = False  # the output's newest run skipped it (already indexed); `status`: its deciding run
    clip_runs: tuple[str, ...] = ()  # the runs that wrote the clips it shows (the clips table's run_id)
    # int [7]: grounded clips per emotion (None: not given). The mix shows which part of each emotion is grounded,
    # and the dominant emotion is the grounded clips': before 2026-12-07 a film of music alone, every clip a guess,
    # showed 'fear' dominant at 100 % (found in review)
    grounded_counts: Optional[np.ndarray] = None

    @property
    def n_scored(self) -> int:
        return int(self.counts.sum())

    @property
    def dominant(self) -> Optional[str]:
        """The emotion most of its grounded clips carry; None when none is grounded. Written before evidence was
        recorded (clips schema 1.0): of all its clips, no label told from a guess."""
        if self.n_evidence and self.grounded_counts is not None:
            return EMOTIONS[int(np.argmax(self.grounded_counts))] if self.grounded_counts.sum() else None
        return EMOTIONS[int(np.argmax(self.counts))] if self.n_scored else None

    @property
    def solid_counts(self) -> np.ndarray:
        """Clips per emotion drawn solid in the emotion mix: the grounded ones; all of them where no evidence was
        recorded (clips schema 1.0: no label told from a guess)."""
        return self.grounded_counts if self.n_evidence and self.grounded_counts is not None else self.counts

    @property
    def grounded_shares(self) -> np.ndarray:
        """Grounded clips per emotion as a share of the scored clips (the solid part of each emotion's share)."""
        if not self.n_scored or not self.n_evidence or self.grounded_counts is None:
            return np.zeros(len(EMOTIONS))
        return self.grounded_counts / self.n_scored

    @property
    def shares(self) -> np.ndarray:
        return self.counts / self.n_scored if self.n_scored else np.zeros(len(EMOTIONS))

    @property
    def grounded_share(self) -> Optional[float]:
        """Share of scored clips that are grounded; None when nothing is scored or no evidence was recorded."""
        return self.n_grounded / self.n_scored if self.n_scored and self.n_evidence else None


@dataclasses.dataclass
class OutputData:
    root: str
    manifest: pa.Table  # latest row per film
    errors: pa.Table  # errors of the runs the latest manifest rows point to
    films: list[FilmSummary]  # every film known (manifest or clips), sorted by film_id
    run_ids: list[str]  # runs seen in the manifest (without one: in the clips and errors), oldest first
    latest_run_id: Optional[str]
    has_manifest: bool = True  # False: an output without manifest rows (pipeline.rescore's, or a run just begun)
    rescore_runs: tuple[str, ...] = ()  # the runs (of run_ids) that pipeline.rescore made
    unfinished_run: Optional[str] = None  # the newest rescore run, when it planned films it never reached (pending)

    def film(self, film_id: str) -> FilmSummary:
        for f in self.films:
            if f.film_id == film_id:
                return f
        raise KeyError(f"film {film_id!r} is not in {self.root}")


def _fs(root: str) -> tuple[pafs.FileSystem, str]:
    if "://" in root:
        return pafs.FileSystem.from_uri(root)
    return pafs.LocalFileSystem(), root


_HIDDEN = (".", "_", "beam-temp")  # writers' temporary files and folders


def _parquet_files(fs: pafs.FileSystem, directory: str, recursive: bool = False) -> list[str]:
    """Finished Parquet files of one table (`**/*.parquet` when recursive); a file whose name, or the name of
    a folder on its way below `directory`, starts with '.', '_' or 'beam-temp' is a writer's temporary."""
    info = fs.get_file_info(directory)
    if info.type != pafs.FileType.Directory:
        return []
    base = directory.rstrip("/") + "/"
    files = fs.get_file_info(pafs.FileSelector(directory, recursive=recursive))
    out = []
    for f in files:
        if f.type != pafs.FileType.File or not f.base_name.endswith(".parquet"):
            continue
        rel = f.path[len(base):] if f.path.startswith(base) else f.base_name
        if any(part.startswith(_HIDDEN) for part in rel.split("/")):
            continue
        out.append(f.path)
    return sorted(out)


def _read(fs: pafs.FileSystem, path: str, schema: pa.Schema, columns: Optional[list[str]] = None) -> pa.Table:
    if columns is not None:  # ask the file only for the columns it has (an older version may lack some)
        present = set(pq.read_schema(path, filesystem=fs).names)
        table = pq.read_table(path, filesystem=fs, columns=[c for c in columns if c in present])
    else:
        table = pq.read_table(path, filesystem=fs)
    # Older or partial files may lack nullable columns: add them as nulls so every run concatenates.
    wanted = [f for f in schema if columns is None or f.name in columns]
    for f in wanted:
        if f.name not in table.column_names:
            table = table.append_column(f, pa.nulls(len(table), f.type))
    return table.select([f.name for f in wanted]).cast(pa.schema(wanted))


def _read_all(fs: pafs.FileSystem, directory: str, schema: pa.Schema) -> pa.Table:
    """Every finished file of a run table, in both layouts (per run, and per run and film). A file that cannot
    be read is left out with a warning: the report shows what it can."""
    tables = []
    for path in _parquet_files(fs, directory, recursive=True):
        try:
            tables.append(_read(fs, path, schema))
        except Exception as exc:  # noqa: BLE001 - one damaged file must not cost the whole report
            LOG.warning("ignoring unreadable %s: %s", path, exc)
    return pa.concat_tables(tables) if tables else schema.empty_table()


SKIPPED_FILE = f"{manifest_schema.SKIPPED_FILE}.parquet"  # manifest/<run_id>/skipped.parquet
# What a skipped row is read for: the run list, the newest run's skipped films, and which film has no other row.
SKIPPED_COLUMNS = ["film_id", "run_id", "status", "processed_at"]
_BATCH_ROWS = 200_000  # manifest rows gathered before they are folded into the per-run and per-film aggregates


@dataclasses.dataclass
class _ManifestScan:
    """What the report keeps of every manifest file: as large as the catalogue, not as its age. Every night adds a
    skipped row per film; before 2026-12-07 every row was kept with every column and walked in Python (5,000 films
    x 300 nights: 48 s, 1.3 GB)."""
    files: list[str] = dataclasses.field(default_factory=list)
    starts: list[int] = dataclasses.field(default_factory=list)  # each file's first row's position in the manifest
    deciding: list[pa.Table] = dataclasses.field(default_factory=list)  # ok / failed rows, every column, file order
    skipped_runs: list[set] = dataclasses.field(default_factory=list)  # each file's runs with skipped rows
    runs: Optional[pa.Table] = None  # run_id, newest (processed_at), first (position of its first row)
    newest_skipped: Optional[pa.Table] = None  # film_id, processed_at, _pos: each film's newest skipped row
    pending: list[pa.Table] = dataclasses.field(default_factory=list)  # SKIPPED_COLUMNS + _pos not folded in yet
    pending_rows: int = 0
    n_rows: int = 0


def _skipped_mask(table: pa.Table) -> pa.ChunkedArray:
    """Whether each row is a skipped one (a row without a status is not, as _latest_per_film reads it)."""
    return pc.fill_null(pc.equal(table.column("status"), "skipped"), False)


def _read_manifest_file(fs: pafs.FileSystem, path: str) -> pa.Table:
    """One manifest file: a run's skipped file with SKIPPED_COLUMNS only (unless it holds other rows), any other
    file with every column (a per-run file of an older layout holds skipped rows beside the others)."""
    if path.rsplit("/", 1)[-1] == SKIPPED_FILE:
        table = _read(fs, path, manifest_schema.SCHEMA, SKIPPED_COLUMNS)
        if pc.all(_skipped_mask(table)).as_py() is not False:
            return table
    return _read(fs, path, manifest_schema.SCHEMA)


def _first_per_film(table: pa.Table) -> pa.Table:
    """The first row of each film in a table sorted by film_id."""
    if len(table) < 2:
        return table
    ids = table.column("film_id").combine_chunks()
    changed = pc.fill_null(pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1)), True)
    return table.filter(pa.concat_arrays([pa.array([True]), changed]))


def _fold_pending(scan: _ManifestScan) -> None:
    """Fold the rows gathered into the aggregates: each run's newest time and first position, each film's newest
    skipped row (the first read on a tie, as _latest_per_film's stable sort takes it)."""
    if not scan.pending:
        return
    batch, scan.pending, scan.pending_rows = pa.concat_tables(scan.pending), [], 0
    runs = batch.group_by("run_id", use_threads=False).aggregate([("processed_at", "max"), ("_pos", "min")])
    runs = runs.select(["run_id", "processed_at_max", "_pos_min"]).rename_columns(["run_id", "newest", "first"])
    if scan.runs is not None:
        runs = pa.concat_tables([scan.runs, runs]).group_by("run_id", use_threads=False).aggregate(
            [("newest", "max"), ("first", "min")]).select(["run_id", "newest_max", "first_min"]).rename_columns(
            ["run_id", "newest", "first"])
    scan.runs = runs
    skipped = batch.filter(_skipped_mask(batch)).select(["film_id", "processed_at", "_pos"])
    if scan.newest_skipped is not None:
        skipped = pa.concat_tables([scan.newest_skipped, skipped])
    order = pc.sort_indices(skipped, [("film_id", "ascending"), ("processed_at", "descending"), ("_pos", "ascending")])
    scan.newest_skipped = _first_per_film(skipped.take(order))


def _add_manifest_file(scan: _ManifestScan, path: str, table: pa.Table) -> None:
    """Keep a file's ok / failed rows whole, and of all its rows only what the run list and skipped counts need."""
    skipped = _skipped_mask(table)
    if table.num_columns > len(SKIPPED_COLUMNS):
        scan.deciding.append(table.filter(pc.invert(skipped)))
    n_skipped = pc.sum(skipped).as_py() or 0
    runs = set(pc.unique(table.column("run_id").filter(skipped)).to_pylist()) if n_skipped else set()
    scan.files.append(path)
    scan.starts.append(scan.n_rows)
    scan.skipped_runs.append(runs)
    positions = pa.array(np.arange(scan.n_rows, scan.n_rows + len(table), dtype=np.int64))
    scan.pending.append(table.select(SKIPPED_COLUMNS).append_column("_pos", positions))
    scan.n_rows += len(table)
    scan.pending_rows += len(table)
    if scan.pending_rows >= _BATCH_ROWS:
        _fold_pending(scan)


def _scan_manifest(fs: pafs.FileSystem, directory: str) -> _ManifestScan:
    """Read every finished manifest file once (both layouts), keeping what _ManifestScan says. A file that cannot be
    read is left out with a warning: the report shows what it can."""
    scan = _ManifestScan()
    for path in _parquet_files(fs, directory, recursive=True):
        try:
            table = _read_manifest_file(fs, path)
        except Exception as exc:  # noqa: BLE001 - one damaged file must not cost the whole report
            LOG.warning("ignoring unreadable %s: %s", path, exc)
            continue
        _add_manifest_file(scan, path, table)
    _fold_pending(scan)
    return scan


def _file_rows(scan: _ManifestScan, positions: list[int]) -> dict[int, list[int]]:
    """Manifest positions -> {file index: rows in that file}."""
    files = np.searchsorted(np.array(scan.starts), np.array(positions), side="right") - 1
    out: dict[int, list[int]] = {}
    for i, pos in sorted(zip(files.tolist(), positions)):
        out.setdefault(i, []).append(pos - scan.starts[i])
    return out


def _only_skipped_rows(fs: pafs.FileSystem, scan: _ManifestScan) -> list[pa.Table]:
    """Every column of the newest skipped row of each film that has no ok or failed row (read again from its file:
    a few films, where every film's skipped rows are many)."""
    if scan.newest_skipped is None or len(scan.newest_skipped) == 0:
        return []
    decided = [t.column("film_id") for t in scan.deciding]
    decided = pa.chunked_array([c for t in decided for c in t.chunks], pa.string())
    lone = scan.newest_skipped.filter(pc.invert(pc.fill_null(pc.is_in(
        scan.newest_skipped.column("film_id"), value_set=pc.unique(decided)), False)))
    tables = []
    for i, rows in _file_rows(scan, lone.column("_pos").to_pylist()).items():
        try:
            tables.append(_read(fs, scan.files[i], manifest_schema.SCHEMA).take(rows))
        except Exception as exc:  # noqa: BLE001 - changed since it was read (a run writing into the output)
            LOG.warning("ignoring unreadable %s: %s", scan.files[i], exc)
    return tables


def _deciding_rows(fs: pafs.FileSystem, scan: _ManifestScan) -> pa.Table:
    """The rows _latest_per_film(deciding=True) chooses from: every ok / failed row, and a film's newest skipped
    row where it has no other."""
    tables = scan.deciding + _only_skipped_rows(fs, scan)
    return pa.concat_tables(tables) if tables else manifest_schema.SCHEMA.empty_table()


def _latest_per_film(manifest: pa.Table, deciding: bool = False) -> pa.Table:
    """Each film's newest manifest row; `deciding`: its newest `ok` or `failed` row, a `skipped` one only where it
    has no other. A skipped row decides nothing: the pipeline writes one every night for a film it did before,
    copying its error (before 2026-12-06 a failed film read as skipped from the next night on, its error rows gone)."""
    if len(manifest) == 0:
        return manifest
    keys = [("film_id", "ascending"), ("processed_at", "descending")]
    if deciding:
        manifest = manifest.append_column("_skipped", _skipped_mask(manifest))
        keys.insert(1, ("_skipped", "ascending"))
    order = pc.sort_indices(manifest, keys)
    manifest = manifest.take(order)
    if deciding:
        manifest = manifest.drop_columns(["_skipped"])
    return _first_per_film(manifest)


def _deciding_errors(errors: pa.Table, decided: dict[str, set[str]], named: set[str],
                     latest_run: Optional[str]) -> pa.Table:
    """A film's errors from the runs in `decided` (the run of its deciding manifest row, and the runs that wrote the
    clips it shows), and the errors of the last run for everything the manifest (`named`) does not name (film-less
    discovery errors, films without a row). A film moved since its clips were scored keeps the scoring run's damage
    warnings (before 2026-12-06 only the move's FilmMoved row was shown, while the film's line still pointed to
    the errors table for what and where)."""
    if len(errors) == 0:
        return errors
    sep = "\x1f"
    pairs = pa.array(sorted(f"{f}{sep}{r}" for f, runs in decided.items() for r in runs), pa.string())
    film = pc.fill_null(errors.column("film_id"), "")
    keys = pc.binary_join_element_wise(film, errors.column("run_id"), sep)
    of_deciding_run = pc.fill_null(pc.is_in(keys, value_set=pairs), False)
    unnamed = pc.invert(pc.fill_null(pc.is_in(errors.column("film_id"), value_set=pa.array(sorted(named),
                                                                                             pa.string())), False))
    of_last_run = pc.fill_null(pc.equal(errors.column("run_id"), latest_run or ""), False)
    return errors.filter(pc.or_(of_deciding_run, pc.and_(unnamed, of_last_run)))


def _runs_by_manifest(scan: _ManifestScan) -> list[str]:
    """The runs of the manifest, oldest first (by each run's newest processed_at; on a tie, the first read first)."""
    if scan.runs is None or len(scan.runs) == 0:
        return []
    order = pc.sort_indices(scan.runs, [("newest", "ascending"), ("first", "ascending")])
    return scan.runs.column("run_id").take(order).to_pylist()


def _skipped_by(fs: pafs.FileSystem, scan: _ManifestScan, run_id: Optional[str]) -> set[str]:
    """The films that run `run_id` skipped, read again from the files that hold its skipped rows (one, its skipped
    file, in today's layout). The "skipped" card counts the newest run's: before 2026-12-06 each film's own newest
    row counted, so a failed film an older run last skipped was counted as failed and as skipped."""
    films: set[str] = set()
    for path, runs in zip(scan.files, scan.skipped_runs):
        if run_id in runs:
            table = _read(fs, path, manifest_schema.SCHEMA, ["film_id", "run_id", "status"])
            mine = pc.and_(_skipped_mask(table), pc.fill_null(pc.equal(table.column("run_id"), run_id), False))
            films.update(table.column("film_id").filter(mine).to_pylist())
    return films


def _runs_without_manifest(errors: pa.Table, clip_runs: dict[str, tuple[str, ...]], plans: pa.Table) -> list[str]:
    """The runs of an output without a manifest (the clips' run_id, the errors', the rescore plans'), oldest first:
    clips carry no time, so a run is as new as its newest error row or its plan; runs without either come first, by
    name."""
    newest: dict[str, object] = {}
    for rid, t in [*zip(errors.column("run_id").to_pylist(), errors.column("created_at").to_pylist()),
                   *zip(plans.column("run_id").to_pylist(), plans.column("planned_at").to_pylist())]:
        if rid is not None and t is not None:
            newest[rid] = max(newest.get(rid, t), t)
    timeless = sorted({r for runs in clip_runs.values() for r in runs if r} - set(newest))
    return timeless + sorted(newest, key=lambda r: (newest[r], r))


def _rescore_runs(errors: pa.Table, run_ids: list[str], plans: pa.Table) -> tuple[str, ...]:
    """The runs that pipeline.rescore made: those with a plan (since 2026-12-07), and in older outputs those whose run
    id starts with "rescore-" (its default) or that wrote error rows of stage `rescore` (a refused film)."""
    staged = set(errors.filter(pc.fill_null(pc.equal(errors.column("stage"), "rescore"), False))
                 .column("run_id").to_pylist()) if len(errors) else set()
    planned = set(plans.column("run_id").to_pylist())
    return tuple(r for r in run_ids if r.startswith("rescore-") or r in staged or r in planned)


def _not_reached(plans: pa.Table, run_ids: list[str], clip_runs: dict[str, tuple[str, ...]],
                 errors: pa.Table) -> tuple[Optional[str], set[str], set[str]]:
    """(the newest planned run, the films it planned and wrote neither clips nor an error row for: a rescore that
    was stopped or failed part way; the films it planned and refused: a fatal error row and no clips of that run).
    Films of older plans keep what their runs wrote."""
    planned = set(plans.column("run_id").to_pylist())
    planned_runs = [r for r in run_ids if r in planned]
    if not planned_runs:
        return None, set(), set()
    run = planned_runs[-1]
    films = set(plans.filter(pc.equal(plans.column("run_id"), run)).column("film_id").to_pylist())
    of_run = errors.filter(pc.fill_null(pc.equal(errors.column("run_id"), run), False)) if len(errors) else errors
    with_errors = set(of_run.column("film_id").to_pylist())
    fatal = set(of_run.filter(pc.fill_null(of_run.column("fatal"), False)).column("film_id").to_pylist())
    unscored = {f for f in films if run not in clip_runs.get(f, ())}
    return run, {f for f in unscored if f not in with_errors}, unscored & fatal


def _newest_error_run(errors: pa.Table) -> dict[str, str]:
    """film_id -> the run of its newest error row (by created_at)."""
    newest: dict[str, tuple] = {}
    for r in errors.select(["film_id", "run_id", "created_at"]).to_pylist():
        if r["film_id"] and r["run_id"] and r["created_at"] is not None:
            newest[r["film_id"]] = max(newest.get(r["film_id"], (r["created_at"], r["run_id"])),
                                       (r["created_at"], r["run_id"]))
    return {f: run for f, (_, run) in newest.items()}


# Columns the catalogue summary needs; the per-film page reads the whole file.
# the evidence columns too: `grounded` as today's rule reads it (schemas.clips.grounded_today)
_SUMMARY_COLUMNS = ["film_id", "film_path", "end_s", "emotion", *PROB_COLUMNS, "model_version", "grounded", "damaged",
                    "run_id", *(f"evidence_{m}" for m in clips_schema.EVIDENCE_MODALITIES)]


def clips_path(root: str, film_id: str) -> str:
    return f"{root.rstrip('/')}/clips/{film_id}.parquet"


def read_clips(root: str, film_id: str) -> pa.Table:
    """The clips table of one film, sorted by start time."""
    fs, base = _fs(root)
    table = _read(fs, clips_path(base, film_id), clips_schema.SCHEMA)
    return table.take(pc.sort_indices(table, [("start_s", "ascending"), ("clip_index", "ascending")]))


def read_features(root: str, film_id: str, clip_index: int) -> Optional[dict]:
    """The features-table row of one clip, or None when the run did not write features."""
    fs, base = _fs(root)
    path = f"{base.rstrip('/')}/features/{film_id}.parquet"
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    table = pq.read_table(path, filesystem=fs, filters=[("clip_index", "=", clip_index)])
    if len(table) == 0:
        return None
    names = [f.name for f in features_schema.SCHEMA if f.name in table.column_names]
    return table.select(names).slice(0, 1).to_pylist()[0]


def grounded_column(table: pa.Table) -> list:
    """Each clip's `grounded` as today's rule reads it (schemas.clips.grounded_today): rows only where it is stored
    true, a face and a scene both gave evidence (before 2026-12-06 the report trusted the stored flag, so an output
    written under the older rule showed a clip as a grounded moment whose card said no modality backs it)."""
    stored = table.column("grounded").to_pylist()
    check = [i for i, g in enumerate(stored) if g is True]
    if check and "evidence_face" in table.column_names:
        rows = table.take(check).select(["emotion", "grounded", *(f"evidence_{m}" for m in
                                                                  clips_schema.EVIDENCE_MODALITIES)]).to_pylist()
        for i, r in zip(check, rows):
            stored[i] = clips_schema.grounded_today(r)
    return stored


def is_grounded(value) -> bool:
    """A clip's `grounded` as the report treats it: null (no evidence recorded) counts as not grounded."""
    return value is True


@dataclasses.dataclass
class _ClipStats:
    """What the catalogue takes from one film's clips file."""
    n: int = 0
    counts: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(len(EMOTIONS), np.int64))
    mean: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(len(EMOTIONS)))
    versions: tuple[str, ...] = ()
    end: float = 0.0
    n_grounded: int = 0
    n_evidence: int = 0
    grounded_counts: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(len(EMOTIONS), np.int64))
    n_damaged: int = 0
    n_damage_unknown: int = 0
    runs: tuple[str, ...] = ()
    film_path: Optional[str] = None


def _summarise_clips(table: pa.Table) -> _ClipStats:
    """A clips file read with _SUMMARY_COLUMNS as the catalogue counts it."""
    emotions = table.column("emotion").to_pylist()
    counts = np.array([sum(1 for e in emotions if e == name) for name in EMOTIONS], dtype=np.int64)
    scored = pc.is_valid(table.column("emotion"))
    probs = np.stack([table.column(c).filter(scored).to_numpy(zero_copy_only=False) for c in PROB_COLUMNS],
                     axis=1) if len(table) else np.zeros((0, len(EMOTIONS)))
    mean = np.nan_to_num(probs.mean(axis=0)) if len(probs) else np.zeros(len(EMOTIONS))
    end = pc.max(table.column("end_s")).as_py() if len(table) else None
    grounded = grounded_column(table)
    backed = [e for e, g in zip(emotions, grounded) if e is not None and is_grounded(g)]
    grounded = [g for e, g in zip(emotions, grounded) if e is not None]
    damaged = table.column("damaged").to_pylist()
    return _ClipStats(
        n=len(table), counts=counts, mean=mean, end=float(end or 0.0),
        versions=tuple(sorted({v for v in table.column("model_version").to_pylist() if v})),
        n_grounded=sum(1 for g in grounded if is_grounded(g)), n_evidence=sum(1 for g in grounded if g is not None),
        grounded_counts=np.array([backed.count(name) for name in EMOTIONS], dtype=np.int64),
        n_damaged=sum(1 for d in damaged if d), n_damage_unknown=sum(1 for d in damaged if d is None),
        runs=tuple(sorted({r for r in table.column("run_id").to_pylist() if r})),
        film_path=table.column("film_path")[0].as_py() if len(table) else None)


def _shows_its_clips(row: dict) -> bool:
    """Whether a film's clips file is its state: a film redone and failed with no clips keeps an earlier run's clips
    file, which is not shown."""
    return not (row.get("status") == "failed" and not row.get("output_file"))


def _read_clip_stats(fs: pafs.FileSystem, clip_files: dict[str, str],
                     rows: dict[str, dict]) -> tuple[dict[str, _ClipStats], dict[str, str]]:
    """({film_id: its clips' stats}, {film_id: why its clips file cannot be read}) for the films whose clips file is
    their state. A damaged clips file costs its film's rows, not the report."""
    stats, unreadable = {}, {}
    for film_id, path in clip_files.items():
        if not _shows_its_clips(rows.get(film_id, {})):
            continue
        try:
            stats[film_id] = _summarise_clips(_read(fs, path, clips_schema.SCHEMA, _SUMMARY_COLUMNS))
        except Exception as exc:  # noqa: BLE001 - one damaged file must not cost the whole report
            LOG.warning("ignoring unreadable %s: %s", path, exc)
            unreadable[film_id] = f"report: its clips file cannot be read ({exc}); the next run scores it again"
    return stats, unreadable


def _first_fatal_errors(errors: pa.Table) -> dict[str, str]:
    """film_id -> its first fatal error as the catalogue says it ("stage: type: message")."""
    first: dict[str, str] = {}
    for r in errors.filter(pc.field("fatal")).to_pylist() if len(errors) else []:
        if r["film_id"] and r["film_id"] not in first:
            first[r["film_id"]] = f"{r['stage']}: {r['error_type']}: {r['message']}"
    return first


def _status_without_manifest(stats: Optional[_ClipStats], fatal: bool, rescore_runs: tuple[str, ...],
                             pending: bool, refused: bool, run_began: bool) -> str:
    """A film's state in an output without a manifest: pending where the newest rescore run planned it and never
    reached it, failed where that run refused it (any clips shown are an older run's: before 2026-12-07 such a film
    read "rescored"), rescored / scored where it has clips (by a rescore run or not; unknown where pipeline.run wrote
    them and stopped before its manifest row, `run_began`: not committed), failed where it has none and a fatal error
    row, else unknown."""
    if pending:
        return "pending"
    if refused:
        return "failed"
    if stats is not None:
        if set(stats.runs) & set(rescore_runs):
            return "rescored"
        return "unknown" if run_began else "scored"
    return "failed" if fatal else "unknown"


# Files only pipeline.run leaves in an output (pipeline.output_lock: where a run was killed, its lock file and the
# lock's guard stay): an output without manifest rows that has one is a run's that committed no film yet, not a
# rescore's (before 2026-12-07 a film whose clips a killed first run had written read "scored")
RUN_MARKERS = ("_run.lock", "_run.lock.json")
UNCOMMITTED = ("report: clips written by a pipeline.run that stopped before recording the film in the manifest: not "
               "committed; the next run scores it again")
MISSING_CLIPS = "report: its clips file is not there (deleted or lost); the next run scores it again"


def _run_began(fs: pafs.FileSystem, base: str) -> bool:
    """Whether pipeline.run has written to this output (RUN_MARKERS)."""
    return any(fs.get_file_info(f"{base}/{name}").type == pafs.FileType.File for name in RUN_MARKERS)


def load_output(root: str) -> OutputData:
    """Read the tables of an output directory; films are every film the manifest or clips/ knows, and in an output
    without a manifest (pipeline.rescore's) also the films its error rows name."""
    fs, base = _fs(root)
    base = base.rstrip("/")
    scan = _scan_manifest(fs, f"{base}/manifest")
    manifest = _latest_per_film(_deciding_rows(fs, scan), deciding=True)
    rows = {r["film_id"]: r for r in manifest.to_pylist()}
    clip_files = {p.rsplit("/", 1)[-1][: -len(".parquet")]: p for p in _parquet_files(fs, f"{base}/clips")}
    stats, unreadable = _read_clip_stats(fs, clip_files, rows)
    all_errors = _read_all(fs, f"{base}/errors", errors_schema.SCHEMA)

    has_manifest = scan.n_rows > 0
    # The runs that decided each film: its deciding manifest row's, and those that wrote the clips it shows.
    decided = {film_id: {r["run_id"]} for film_id, r in rows.items()}
    unfinished_run, pending, refused, run_began = None, set(), set(), False
    if has_manifest:
        run_ids = _runs_by_manifest(scan)
    else:  # without a manifest a film without clips is decided by its newest error rows (a rescore's refusal)
        plans = _read_all(fs, f"{base}/{plan_schema.FOLDER}", plan_schema.SCHEMA)
        clip_runs = {f: s.runs for f, s in stats.items()}
        run_ids = _runs_without_manifest(all_errors, clip_runs, plans)
        unfinished_run, pending, refused = _not_reached(plans, run_ids, clip_runs, all_errors)
        for film_id in refused:  # its clips are an older run's (another head's): not its state, as with a manifest
            stats.pop(film_id, None)
        decided = {f: {run} for f, run in _newest_error_run(all_errors).items() if f not in stats}
        run_began = _run_began(fs, base)
    for film_id, s in stats.items():
        decided.setdefault(film_id, set()).update(s.runs)
    latest_run = run_ids[-1] if run_ids else None
    skipped_last = _skipped_by(fs, scan, latest_run) if has_manifest else set()
    rescore_runs = () if has_manifest else _rescore_runs(all_errors, run_ids, plans)

    errors = _deciding_errors(all_errors, decided, set(rows), latest_run) if run_ids else all_errors
    errors = errors.take(pc.sort_indices(errors, [("film_id", "ascending"), ("created_at", "ascending")]))
    first_error = _first_fatal_errors(errors)
    error_paths = {r["film_id"]: r["film_path"] for r in errors.select(["film_id", "film_path"]).to_pylist()}

    film_ids = set(rows) | set(clip_files)
    if not has_manifest:
        film_ids |= {f for f in decided if f in error_paths} | pending
    films = []
    for film_id in sorted(film_ids):
        row = rows.get(film_id, {})
        s = stats.get(film_id) or _ClipStats()
        status = row.get("status", "unknown") if has_manifest else _status_without_manifest(
            stats.get(film_id), film_id in first_error, rescore_runs, film_id in pending, film_id in refused, run_began)
        note = unreadable.get(film_id) or row.get("error") or first_error.get(film_id)
        if status == "ok" and row.get("n_clips") and film_id not in clip_files:
            note = MISSING_CLIPS
        elif status == "unknown" and film_id in stats and not has_manifest:
            note = UNCOMMITTED
        duration = row.get("duration_s")
        if duration is None or (isinstance(duration, float) and math.isnan(duration)):
            duration = s.end or None
        versions = s.versions or ((row["model_version"],) if row.get("model_version") else ())
        films.append(FilmSummary(
            film_id=film_id, film_path=row.get("film_path") or s.film_path or error_paths.get(film_id) or "",
            status=status, run_id=row.get("run_id"), duration_s=duration, n_clips=s.n, model_versions=versions,
            counts=s.counts, mean_probs=s.mean,
            error=note, n_grounded=s.n_grounded,
            n_evidence=s.n_evidence, n_damaged=s.n_damaged, n_damage_unknown=s.n_damage_unknown,
            skipped_last=film_id in skipped_last, clip_runs=s.runs, grounded_counts=s.grounded_counts))
    return OutputData(root=root, manifest=manifest, errors=errors, films=films, run_ids=run_ids,
                      latest_run_id=latest_run, has_manifest=has_manifest, rescore_runs=rescore_runs,
                      unfinished_run=unfinished_run if pending else None)
