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
means the run did not look, and the report treats the clip's media as whole.
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

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class FilmSummary:
    """One line of the catalogue: a film's latest state and, when scored, its emotion mix."""
    film_id: str
    film_path: str
    status: str  # ok | failed, as its deciding run left it; skipped (no other row) | unknown (no manifest row)
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
    skipped_last: bool = False  # its newest run skipped it (already indexed); `status` is the run that decided it

    @property
    def n_scored(self) -> int:
        return int(self.counts.sum())

    @property
    def dominant(self) -> Optional[str]:
        return EMOTIONS[int(np.argmax(self.counts))] if self.n_scored else None

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
    run_ids: list[str]  # runs seen in the manifest, oldest first
    latest_run_id: Optional[str]

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


def _latest_per_film(manifest: pa.Table, deciding: bool = False) -> pa.Table:
    """Each film's newest manifest row; `deciding`: its newest `ok` or `failed` row, a `skipped` one only where it
    has no other. A skipped row decides nothing: the pipeline writes one every night for a film it did before,
    copying its error (before 2026-12-06 a failed film read as skipped from the next night on, its error rows gone)."""
    if len(manifest) == 0:
        return manifest
    keys = [("film_id", "ascending"), ("processed_at", "descending")]
    if deciding:
        skipped = pc.fill_null(pc.equal(manifest.column("status"), "skipped"), False)
        manifest = manifest.append_column("_skipped", skipped)
        keys.insert(1, ("_skipped", "ascending"))
    order = pc.sort_indices(manifest, keys)
    manifest = manifest.take(order)
    if deciding:
        manifest = manifest.drop_columns(["_skipped"])
    ids = manifest.column("film_id").to_pylist()
    keep = [i for i, fid in enumerate(ids) if i == 0 or fid != ids[i - 1]]
    return manifest.take(keep)


def _deciding_errors(errors: pa.Table, manifest: pa.Table, latest_run: str) -> pa.Table:
    """A film's errors from the run that decided its state (its latest manifest row), and the errors of the
    last run for everything the manifest does not name (film-less discovery errors, films without a row)."""
    if len(errors) == 0:
        return errors
    sep = "\x1f"
    decided = pa.array([f"{f}{sep}{r}" for f, r in zip(manifest.column("film_id").to_pylist(),
                                                         manifest.column("run_id").to_pylist())], pa.string())
    film = pc.fill_null(errors.column("film_id"), "")
    keys = pc.binary_join_element_wise(film, errors.column("run_id"), sep)
    of_deciding_run = pc.fill_null(pc.is_in(keys, value_set=decided), False)
    named = pa.array(manifest.column("film_id").to_pylist(), pa.string())
    unnamed = pc.invert(pc.fill_null(pc.is_in(errors.column("film_id"), value_set=named), False))
    of_last_run = pc.fill_null(pc.equal(errors.column("run_id"), latest_run), False)
    return errors.filter(pc.or_(of_deciding_run, pc.and_(unnamed, of_last_run)))


# Columns the catalogue summary needs; the per-film page reads the whole file.
_SUMMARY_COLUMNS = ["film_id", "film_path", "end_s", "emotion", *PROB_COLUMNS, "model_version", "grounded", "damaged"]


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


def is_grounded(value) -> bool:
    """A clip's `grounded` as the report treats it: null (no evidence recorded) counts as not grounded."""
    return value is True


def _summarise_clips(table: pa.Table) -> tuple[int, np.ndarray, np.ndarray, tuple[str, ...], float, int, int, int]:
    emotions = table.column("emotion").to_pylist()
    counts = np.array([sum(1 for e in emotions if e == name) for name in EMOTIONS], dtype=np.int64)
    scored = pc.is_valid(table.column("emotion"))
    probs = np.stack([table.column(c).filter(scored).to_numpy(zero_copy_only=False) for c in PROB_COLUMNS],
                     axis=1) if len(table) else np.zeros((0, len(EMOTIONS)))
    mean = np.nan_to_num(probs.mean(axis=0)) if len(probs) else np.zeros(len(EMOTIONS))
    versions = tuple(sorted({v for v in table.column("model_version").to_pylist() if v}))
    end = pc.max(table.column("end_s")).as_py() if len(table) else None
    grounded = [g for e, g in zip(emotions, table.column("grounded").to_pylist()) if e is not None]
    n_grounded = sum(1 for g in grounded if is_grounded(g))
    n_evidence = sum(1 for g in grounded if g is not None)
    n_damaged = sum(1 for d in table.column("damaged").to_pylist() if d)
    return len(table), counts, mean, versions, float(end or 0.0), n_grounded, n_evidence, n_damaged


def load_output(root: str) -> OutputData:
    """Read the tables of an output directory; films are every film the manifest or clips/ knows."""
    fs, base = _fs(root)
    base = base.rstrip("/")
    all_manifest = _read_all(fs, f"{base}/manifest", manifest_schema.SCHEMA)
    manifest = _latest_per_film(all_manifest, deciding=True)
    skipped_last = {r["film_id"] for r in _latest_per_film(all_manifest).to_pylist() if r["status"] == "skipped"}
    run_times: dict[str, object] = {}
    for rid, t in zip(all_manifest.column("run_id").to_pylist(), all_manifest.column("processed_at").to_pylist()):
        run_times[rid] = max(run_times.get(rid, t), t)
    run_ids = sorted(run_times, key=lambda r: run_times[r])
    latest_run = run_ids[-1] if run_ids else None

    errors = _read_all(fs, f"{base}/errors", errors_schema.SCHEMA)
    if run_ids:
        errors = _deciding_errors(errors, manifest, latest_run)
    errors = errors.take(pc.sort_indices(errors, [("film_id", "ascending"), ("created_at", "ascending")]))

    rows = {r["film_id"]: r for r in manifest.to_pylist()}
    clip_files = {p.rsplit("/", 1)[-1][: -len(".parquet")]: p for p in _parquet_files(fs, f"{base}/clips")}
    first_error: dict[str, str] = {}
    for r in errors.filter(pc.field("fatal")).to_pylist() if len(errors) else []:
        if r["film_id"] and r["film_id"] not in first_error:
            first_error[r["film_id"]] = f"{r['stage']}: {r['error_type']}: {r['message']}"

    films = []
    for film_id in sorted(set(rows) | set(clip_files)):
        row = rows.get(film_id, {})
        n, counts, mean, versions, end = 0, np.zeros(len(EMOTIONS), np.int64), np.zeros(len(EMOTIONS)), (), 0.0
        n_grounded = n_evidence = n_damaged = 0
        path, unreadable = row.get("film_path"), None
        # a film redone and failed with no clips keeps an earlier run's clips file: not its state, not shown
        current = film_id in clip_files and not (row.get("status") == "failed" and not row.get("output_file"))
        try:
            table = _read(fs, clip_files[film_id], clips_schema.SCHEMA, _SUMMARY_COLUMNS) if current else None
        except Exception as exc:  # noqa: BLE001 - a damaged clips file costs its film's rows, not the report
            LOG.warning("ignoring unreadable %s: %s", clip_files[film_id], exc)
            table, unreadable = None, f"report: its clips file cannot be read ({exc}); the next run scores it again"
        if table is not None:
            n, counts, mean, versions, end, n_grounded, n_evidence, n_damaged = _summarise_clips(table)
            if len(table) and not path:
                path = table.column("film_path")[0].as_py()
        duration = row.get("duration_s")
        if duration is None or (isinstance(duration, float) and math.isnan(duration)):
            duration = end or None
        if not versions and row.get("model_version"):
            versions = (row["model_version"],)
        films.append(FilmSummary(
            film_id=film_id, film_path=path or "", status=row.get("status", "unknown"), run_id=row.get("run_id"),
            duration_s=duration, n_clips=n, model_versions=versions, counts=counts, mean_probs=mean,
            error=unreadable or row.get("error") or first_error.get(film_id), n_grounded=n_grounded,
            n_evidence=n_evidence, n_damaged=n_damaged, skipped_last=film_id in skipped_last))
    return OutputData(root=root, manifest=manifest, errors=errors, films=films, run_ids=run_ids,
                      latest_run_id=latest_run)
