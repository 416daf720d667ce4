"""Write the run's tables under --output, film by film, every file atomically.

    clips/<film_id>.parquet                  one row per clip (media columns + score columns)
    features/<film_id>.parquet               per-clip encoder tokens (only with --write_features)
    transcripts/<film_id>.parquet            recognised utterances (only with --write_transcripts)
    errors/<run_id>/<film_id>.parquet        dead letter: that film's failures and warnings in this run
    manifest/<run_id>/<film_id>.parquet      the film's row in this run: ok | failed (written LAST: the commit)
    manifest/<run_id>/skipped.parquet        the films this run skipped (written at the end of the run)

Each film is committed on its own as soon as it is finished (`commit_film`): its files first, its manifest
row last. A film is done once its manifest file exists, so a killed run keeps every film it committed and the
next run skips exactly those. Names are deterministic, so a retried bundle rewrites the same files (one clips
file, one manifest row per film and run). Every file is written to a hidden temporary name (a leading dot,
ignored by pyarrow.dataset, DuckDB and the report) and renamed into place; `clean_output` removes what a
killed run left behind. Earlier outputs (manifest/<run_id>.parquet, errors/<run_id>.parquet) stay readable.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import io
import json
import logging
import os
import posixpath
import uuid
from typing import Iterable, Optional

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

import schemas
from schemas import clips as clips_schema
from schemas import errors as errors_schema
from schemas import features as features_schema
from schemas import manifest as manifest_schema
from transforms.discover import file_key, film_id_for, literal_glob, local_path, path_text
from transforms.elements import DecodedClip, FilmError, FilmJob, FilmRef

log = logging.getLogger(__name__)

# Stages whose fatal errors mean the film has no trustworthy clips: its media failed, or it stopped part way (`score`:
# a whole batch's scoring failed, transforms.film.film_failure). A clip that fails to score keeps null scores.
MEDIA_STAGES = ("discover", "fingerprint", "read", "probe", "subtitles", "segment", "decode", "score", "write")
CLIP_COLUMNS = frozenset(clips_schema.SCHEMA.names)
SKIPPED_TAG = "skipped"
SKIPPED_FILE = manifest_schema.SKIPPED_FILE  # manifest/<run_id>/skipped.parquet
UNREACHABLE_FILE = "unreachable"  # errors/<run_id>/unreachable.parquet: what --input covers that no listing reached
# Failures decided by the file's bytes alone: an unchanged file under the same config is not retried.
CONTENT_STAGES = ("probe", "decode")
TMP_MARK = ".tmp-"


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def join_path(*parts: str) -> str:
    return FileSystems.join(*parts) if "://" in parts[0] else posixpath.join(*parts)


def output_pattern(output_dir: str, *parts: str) -> str:
    """A file pattern under the output directory, whose own name is taken literally (`out [v2]/`: brackets
    would otherwise be a character class, and no earlier run's manifest would be found)."""
    return join_path(literal_glob(output_dir), *parts)


def _split(path: str) -> tuple[str, str]:
    i = path.rstrip("/").rfind("/")
    return path[:i], path[i + 1:]


def delete_files(paths: list[str]) -> None:
    """Delete files by their paths. Beam's local filesystem reads each path as a pattern (an output named
    `out [v2]` would match nothing and fail), so local files go through os.remove; other filesystems take paths."""
    remote = []
    for path in paths:
        local = local_path(path)
        if local is None:
            remote.append(path)
            continue
        try:
            os.remove(local)
        except FileNotFoundError:
            pass
    if remote:
        FileSystems.delete(remote)


def read_json(path: str):
    """A small JSON file under the output (through FileSystems: local or an object store). Raises when it is absent
    or unreadable (half-written by a killed process)."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return json.loads(f.read().decode("utf-8"))


def write_json(path: str, value) -> None:
    with FileSystems.create(path, mime_type="application/json", compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(json.dumps(value).encode("utf-8"))


def temp_path(path: str) -> str:
    """A hidden name beside `path` (leading dot: dataset readers and globs on *.parquet skip it)."""
    folder, name = _split(path)
    return f"{folder}/.{name}{TMP_MARK}{uuid.uuid4().hex[:8]}"


def stage_table(table: pa.Table, path: str, page_checksums: bool = False) -> str:
    """Parquet to a hidden temp name beside `path`; returns the temp name (publish renames it). A write that fails
    (a full disk) removes its temp file before the error goes on. page_checksums: a CRC per page, which a reader
    that verifies them (pipeline.rescore) checks: damaged compressed bytes can otherwise read as NaN, unnoticed."""
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", write_page_checksum=page_checksums)
    tmp = temp_path(path)
    try:
        with FileSystems.create(tmp, mime_type="application/octet-stream",
                                compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(buf.getvalue())
    except BaseException:
        _discard([tmp])
        raise
    return tmp


def publish(tmp: str, path: str) -> str:
    """Rename a staged file to its name: readers see the whole file or the one before, never a half-written one, and
    the one before stays until the new one is in place. (Local renames replace the file on POSIX; a GCS or S3 rename
    is a copy and a delete, which replaces it too.)"""
    try:
        FileSystems.rename([tmp], [path])
    except Exception:  # noqa: BLE001
        # Only a refusal to rename over a file (HDFS) is worked around, and only while the staged file is there: a
        # rename that failed because it is gone (another launcher's clean_output) must leave the old file whole.
        # Before 2026-12-06 the old file was deleted first, and a second failure left an ok film without clips.
        if not (FileSystems.exists(tmp) and FileSystems.exists(path)):
            raise
        _replace(tmp, path)
    return path


def _replace(tmp: str, path: str) -> None:
    """Put `tmp` at `path` where a rename does not replace a file: the old file is moved aside (a hidden temp name,
    which clean_output removes) and back if the new one cannot be put in place."""
    aside = temp_path(path)
    FileSystems.rename([path], [aside])
    try:
        FileSystems.rename([tmp], [path])
    except BaseException:
        FileSystems.rename([aside], [path])
        raise
    _discard([aside])


def _discard(paths: list[str]) -> None:
    try:
        delete_files(paths)
    except Exception as exc:  # noqa: BLE001 - the error being raised matters more; the next run cleans up
        log.warning("could not remove %s: %s", paths, exc)


def atomic_write_table(table: pa.Table, path: str, page_checksums: bool = False) -> str:
    """Parquet to a hidden temp name beside `path`, then rename: readers never see a half-written file."""
    return publish(stage_table(table, path, page_checksums), path)


def read_table(path: str) -> pa.Table:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return pq.read_table(io.BytesIO(f.read()))


def match_files(pattern: str) -> list:
    """FileMetadata of the files a pattern matches; none when nothing is there yet."""
    try:
        return FileSystems.match([pattern])[0].metadata_list
    except Exception:  # noqa: BLE001 - nothing there yet
        return []


def table_files(output_dir: str, table: str, run_id: Optional[str] = None) -> list[str]:
    """Parquet files of a run table (manifest, errors), both layouts, temp files left out; one run only
    when run_id is given."""
    return [m.path for m in table_matches(output_dir, table, run_id)]


def table_matches(output_dir: str, table: str, run_id: Optional[str] = None) -> list:
    """table_files's FileMetadata (path, size, last updated), in path order."""
    if run_id is not None:
        run = literal_glob(run_id)
        patterns = [output_pattern(output_dir, table, run, "*.parquet"), output_pattern(output_dir, table, f"{run}.parquet")]
    else:
        patterns = [output_pattern(output_dir, table, "*.parquet"), output_pattern(output_dir, table, "*", "*.parquet")]
    found = [m for p in patterns for m in match_files(p)]
    return sorted((m for m in found if not _split(m.path)[1].startswith((".", "_"))), key=lambda m: m.path)


def read_rows(paths: Iterable[str], what: str) -> list[dict]:
    rows: list[dict] = []
    for path in paths:
        try:
            rows += read_table(path).to_pylist()
        except Exception as exc:  # noqa: BLE001 - a damaged file only costs re-work
            log.warning("ignoring unreadable %s %s: %s", what, path, exc)
    return rows


def clip_media_row(job: FilmJob, clip: DecodedClip, run_id: str) -> dict:
    """The media half of a clips-table row (score columns are added by the writer when a scorer ran)."""
    s = clip.spec
    return {
        "film_id": job.ref.film_id, "film_path": job.ref.path, "fingerprint": job.ref.fingerprint,
        "clip_index": s.clip_index, "start_s": float(s.start_s), "end_s": float(s.end_s),
        "segment_source": s.segment_source, "text": s.text, "text_source": s.text_source,
        "language": s.language, "n_frames": int(len(clip.frames)), "has_audio": bool(clip.audio.size > 0),
        "damaged": list(clip.damaged),
        "run_id": run_id, "config_hash": job.config_hash,
    }


def error_row(err: FilmError, run_id: str, created_at: Optional[dt.datetime] = None) -> dict:
    # (a message may name a file whose name is not UTF-8, a sidecar beside a film: path_text makes it writable)
    return {"run_id": run_id, "film_id": err.film_id, "film_path": err.film_path, "clip_index": err.clip_index,
            "stage": err.stage, "error_type": err.error_type, "message": path_text(err.message), "fatal": err.fatal,
            "created_at": created_at or now_utc()}


# ---------------------------------------------------------------------------------------------------------
# Incremental runs

# <output>/_done_index.parquet: the newest ok/failed rows, and the manifest files they came from. Beside the tables,
# not in manifest/: a glob over that folder (DuckDB's read_parquet('out/manifest/**/*.parquet')) would count it too.
DONE_INDEX = "_done_index.parquet"
_COVERS_KEY = b"film_emotion_done_index_covers"


def _done_files(output_dir: str) -> dict[str, list]:
    """The manifest files that can hold ok or failed rows (a run's skipped file holds only skipped rows) -> [size,
    last updated] as the listing gives them: a file rewritten in place (a run relaunched with its --run_id) differs."""
    return {m.path: [m.size_in_bytes, m.last_updated_in_seconds] for m in table_matches(output_dir, "manifest")
            if _split(m.path)[1] != f"{SKIPPED_FILE}.parquet"}


def _read_done_index(output_dir: str, files: dict[str, list]) -> tuple[list[dict], set[str]]:
    """(rows, files they cover) of the index; nothing when it is absent, unreadable, or covers a file that is not
    there any more or not as it was (a run folder removed by hand, a run relaunched with the same --run_id: the rows
    it gave may be stale, so everything is read again). An index written before 2026-12-06 names its files without
    their size and time: it is read past once, and the run's new index has them."""
    path = join_path(output_dir, DONE_INDEX)
    try:
        table = read_table(path)
        covers = json.loads((table.schema.metadata or {}).get(_COVERS_KEY, b"{}"))
    except Exception:  # noqa: BLE001 - no index yet (or a damaged one): read every manifest file
        return [], set()
    if not isinstance(covers, dict) or any(files.get(f) != stamp for f, stamp in covers.items()):
        log.info("the done index covers manifest files that are gone or changed: reading every manifest file")
        return [], set()
    return table.to_pylist(), set(covers)


def _newest(rows: Iterable[dict]) -> dict[str, dict]:
    done: dict[str, dict] = {}
    for r in rows:
        if r.get("status") in ("ok", "failed"):
            old = done.get(r["film_path"])
            if old is None or r["processed_at"] > old["processed_at"]:
                done[r["film_path"]] = r
    return done


def _done_and_files(output_dir: str, use_index: bool = True) -> tuple[dict[str, dict], dict[str, list]]:
    """(load_done_films's rows, the manifest files they came from): the index's rows and the files it does not
    cover."""
    files = _done_files(output_dir)
    indexed, covered = _read_done_index(output_dir, files) if use_index else ([], set())
    return _newest(indexed + read_rows([f for f in files if f not in covered], "manifest")), files


def load_done_films(output_dir: str, use_index: bool = True) -> dict[str, dict]:
    """film_path -> the newest 'ok' or 'failed' manifest row under output_dir (earlier runs, both layouts). Read
    from the done index (write_done_index) and the manifest files it does not cover: a nightly run over a large
    catalogue reads a few files, not one per film ever committed (5,000 films and 200 nights: 9.1 s -> 0.1 s
    on local disk; each file is a request on cloud storage)."""
    return _done_and_files(output_dir, use_index)[0]


def write_done_index(output_dir: str) -> dict[str, dict]:
    """Write <output>/_done_index.parquet (atomically): load_done_films's rows now, and the manifest files they
    came from. Called by the launcher after a run; a run killed before it leaves the old index, whose uncovered
    files the next run reads. Returns those rows (load_done_films after the run)."""
    done, files = _done_and_files(output_dir)
    table = schemas.rows_to_table(list(done.values()), manifest_schema.SCHEMA)
    covers = json.dumps(dict(sorted(files.items())))
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _COVERS_KEY: covers})
    atomic_write_table(table, join_path(output_dir, DONE_INDEX))
    return done


def latest_by_film(done: dict[str, dict]) -> dict[str, dict]:
    """film id -> its newest done row: where the film is now (an id's older paths are where it was before a move)."""
    latest: dict[str, dict] = {}
    for r in sorted(done.values(), key=lambda r: r["processed_at"], reverse=True):
        latest.setdefault(r.get("film_id") or r["film_path"], r)
    return latest


def clean_output(output_dir: str) -> int:
    """Remove what killed runs left behind: hidden temp files, and error files of films whose manifest row
    was never committed (the rerun redoes those films). Returns how many files went."""
    stale = []
    for table in ("clips", "features", "transcripts"):
        stale += [m.path for m in match_files(output_pattern(output_dir, table, f".*{TMP_MARK}*"))]
    stale += [m.path for m in match_files(output_pattern(output_dir, f".{DONE_INDEX}{TMP_MARK}*"))]
    for table in ("manifest", "errors"):
        stale += [m.path for m in match_files(output_pattern(output_dir, table, "*", f".*{TMP_MARK}*"))]
        stale += [m.path for m in match_files(output_pattern(output_dir, table, f".*{TMP_MARK}*"))]
    committed = {tuple(p.rsplit("/", 2)[-2:]) for p in table_files(output_dir, "manifest")}
    for m in match_files(output_pattern(output_dir, "errors", "*", "*.parquet")):
        run_film = tuple(m.path.rsplit("/", 2)[-2:])
        kept = run_film[1].startswith(".") or run_film[1] == f"{UNREACHABLE_FILE}.parquet"  # (a run's, not a film's)
        if not kept and run_film not in committed:
            stale.append(m.path)
    if stale:
        delete_files(stale)
        log.info("removed %d files left by an interrupted run", len(stale))
    return len(stale)


def write_unreachable(output_dir: str, run_id: str, unreachable: Iterable[tuple[str, str]]) -> None:
    """One errors row per path a run's --input covers that no listing reached (pipeline.run.find_unreachable: a link
    to a file not there, a folder that cannot be read): film-less, so the report lists them with the run's other
    discovery errors; nothing in the manifest changes (an indexed film there keeps its outputs and state)."""
    rows = [{"run_id": run_id, "film_id": None, "film_path": path, "clip_index": None, "stage": "discover",
             "error_type": "Unreachable", "message": f"{why}: its films are not scored this run", "fatal": True,
             "created_at": now_utc()} for path, why in unreachable]
    if rows:
        atomic_write_table(schemas.rows_to_table(rows, errors_schema.SCHEMA),
                           join_path(output_dir, "errors", run_id, f"{UNREACHABLE_FILE}.parquet"))


def content_key(ref: FilmRef) -> tuple[str, str]:
    """(the film's own bytes, its path): what SkipDone's side input holds of every film found, so that films of the
    same bytes share out the earlier films they may continue (pair_moves)."""
    return ref.content_fingerprint or ref.fingerprint or "", ref.path


def same_local_file(path: str, other: str) -> bool:
    """Whether two local paths are there and are one file (a link and its target, two links to one folder's film);
    False for paths on other filesystems."""
    key = file_key(path)
    return key is not None and key == file_key(other)


def pair_moves(gone: list[dict], paths: list[str]) -> dict[str, dict]:
    """new path -> the done row of the gone film it continues, for films of the same bytes: each path takes the gone
    film of its own file name first, then the other paths in order take the other gone films in order (newest
    first). A path left over is a film of its own: two copies of one film moved in the same night are two films."""
    name = lambda path: path.rsplit("/", 1)[-1]  # noqa: E731
    out: dict[str, dict] = {}
    left = list(gone)
    for path in paths:
        same = next((r for r in left if name(r["film_path"]) == name(path)), None)
        if same is not None:
            out[path] = same
            left.remove(same)
    for path in (p for p in paths if p not in out):
        if not left:
            break
        out[path] = left.pop(0)
    return out


class SkipDone(beam.DoFn):
    """FilmRef -> FilmRef to process, or a SKIPPED_TAG manifest row when an earlier run already did this work. A film
    moved to a new path (its old path gone, its fingerprint an earlier film's) keeps that film's id; when its options
    match too, its outputs are kept and renamed to the new path (commit_move) instead of scored again. The side input
    `claimants` (content_key of every film found) shares out a gone film among the new films of its bytes. A path's
    rows count only while its film is there (`current`): a film moved back to a path it left is a move again, and a
    new film at a path a film moved away from gets an id of its own (`own_id`)."""

    def __init__(self, done: dict[str, dict], config_hash: str, run_id: str, force: bool = False,
                 output_dir: Optional[str] = None, features: bool = False, transcripts: bool = False):
        self.done, self.config_hash, self.run_id, self.force = done, config_hash, run_id, force
        self.output_dir = output_dir
        # this run writes the features table (a scored film without its file is not done) / the transcripts table
        # (a film whose clips read recognised speech, without its file, is not done)
        self.features, self.transcripts = features, transcripts
        # where each film is now: its id's newest row. A row without a fingerprint was committed before its film
        # reached this step (a discovery or fingerprint failure), under its path's id unchecked: it does not take
        # that id from the film that moved away from the path.
        self.now = latest_by_film({p: r for p, r in done.items() if r.get("fingerprint")})
        self.by_content: dict[str, list[dict]] = {}  # where each film is now, by its bytes, newest first (manifests
        for r in self.now.values():                  # before 1.2: the fingerprint, the same without sidecars)
            key = r.get("content_fingerprint") or r.get("fingerprint")
            if key:
                self.by_content.setdefault(key, []).append(r)
        self._skipped = beam.metrics.Metrics.counter("film_emotion", "films_skipped")
        self._moved = beam.metrics.Metrics.counter("film_emotion", "films_moved")

    def moved_from(self, ref: FilmRef, claimants: Iterable[tuple[str, str]] = ()) -> Optional[dict]:
        """The done row of the film this one was before it moved here: the same bytes, another path, not there any
        more (a copy beside the original is a film of its own). Where several new films have those bytes
        (`claimants`, content_key of the films found), pair_moves decides which continues which."""
        key, claimants = content_key(ref)[0], list(claimants)
        # A film whose path is still there, not listed tonight, and the same file as this path: the listing reached
        # it by another path (a second link to its folder), so it moved here. Before 2026-12-06 it was a new film,
        # scored again under a new id, and its old path counted gone.
        listed = {p for _, p in claimants}
        same = next((r for r in self.by_content.get(key, []) if r["film_path"] != ref.path
                     and r["film_path"] not in listed and same_local_file(r["film_path"], ref.path)), None)
        if same is not None:
            return same
        return self._moves(key, claimants).get(ref.path)

    def _moves(self, key: str, claimants: list[tuple[str, str]]) -> dict[str, dict]:
        """pair_moves for the films of these bytes: new path -> the done row of the film it continues. A film is gone
        from its path when the path is not there, or holds other bytes tonight (a film moved aside and a new one put
        in its place in one night: before 2026-12-07 the moved film took a new id, the new one the moved film's); the
        paths that may continue one are those of these bytes with no film done there, or whose film done there had
        other bytes (a copy indexed there before is a film of its own)."""
        other_bytes = {p for k, p in claimants if k != key}
        gone = [r for r in self.by_content.get(key, [])
                if r["film_path"] in other_bytes or not FileSystems.exists(r["film_path"])]
        if not gone:
            return {}

        def free(path: str) -> bool:
            there = self.current(path)
            return there is None or there.get("content_fingerprint") not in (None, "", key)
        return pair_moves(gone, sorted({p for k, p in claimants if k == key and free(p)}))

    def moved_away(self, known: dict, ref: FilmRef, claimants: list[tuple[str, str]]) -> bool:
        """Whether the film done at this path (`known`), of other bytes than the film here now, continues at another
        path tonight (_moves, as that path's own look decides): then the film here is a new one."""
        theirs = known.get("content_fingerprint")
        return bool(theirs) and any(r.get("film_id") == known.get("film_id")
                                    for r in self._moves(theirs, claimants).values())

    def current(self, path: str) -> Optional[dict]:
        """The done row at `path` while its film is there: its id's newest row is at this path. A film that moved
        away took its id along; the rows it left here are not those of the film found here now."""
        r = self.done.get(path)
        if r is None:
            return None
        now = self.now.get(r.get("film_id") or path)
        return r if now is None or now["film_path"] == path else None

    def own_id(self, ref: FilmRef, leaving: Optional[str] = None) -> str:
        """The id of a film that continues none: its path's (film_id_for), unless a film elsewhere has it (the film
        that was here and moved away; `leaving`: the id of the film that moves away from this path tonight); then one
        of its path and bytes, which no other film has. Two films of one id share clips, manifest and errors files and
        overwrite each other: before 2026-12-06 they did, every night."""
        content, film_id, n = content_key(ref)[0] or "-", ref.film_id, 0
        while film_id == leaving or ((r := self.now.get(film_id)) is not None and r["film_path"] != ref.path):
            film_id = film_id_for(ref.path, content if n == 0 else f"{content} {n}")
            n += 1
        return film_id

    def process(self, ref: FilmRef, claimants: Iterable[tuple[str, str]] = ()):
        claimants = list(claimants)
        known, leaving, moved = self.current(ref.path), None, None
        if known is None:
            moved = self.moved_from(ref, claimants)
        elif known.get("content_fingerprint") not in (None, "", content_key(ref)[0]):
            # other bytes at this path than the film done here: a film moved onto it (its film replaced), or the film
            # here moved away tonight and a new one took its place; else its film was written anew (redone, its id).
            # (A row before manifest 1.2 has no content fingerprint: its film is judged as before.)
            if (moved := self.moved_from(ref, claimants)) is not None:
                log.warning("%s: now holds the film that was at %s (its id and outputs kept); the film that was here "
                            "(%s) is not at this path any more, its outputs are kept", ref.path, moved["film_path"],
                            known.get("film_id"))
                known = None
            elif self.moved_away(known, ref, claimants):
                known, leaving = None, known.get("film_id")
        known = known or moved
        # An id once given to a path stays while its film is there (ids of non-ASCII names changed on 2026-12-03),
        # and a moved film keeps its id: a redone film replaces its clips file instead of leaving a second copy.
        film_id = known["film_id"] if known and known.get("film_id") else self.own_id(ref, leaving)
        if film_id != ref.film_id:
            ref = dataclasses.replace(ref, film_id=film_id)
        prev = None if self.force else known
        if (prev is not None and prev.get("fingerprint") == ref.fingerprint
                and prev.get("config_hash") == self.config_hash
                and self._still_valid(prev, self.output_dir, self.features, self.transcripts)):
            if moved is not None and prev["status"] == "ok" and self.output_dir:
                try:
                    commit_move(self.output_dir, self.run_id, ref, prev, self.config_hash)
                    self._moved.inc()
                    return
                except Exception as exc:
                    too_large = over_size_limit(exc)
                    if too_large is None:
                        raise  # a full disk, a refused folder: pipeline.run says so and stops
                # Its tables named anew are over the size a file may have there: scored again instead, where it fails
                # alone if they still are (before 2026-12-07 the run ended with a traceback; found in review)
                log.warning("%s: moved from %s, but its outputs could not be written anew (%s): scored again",
                            ref.path, prev["film_path"], too_large)
                yield ref
                return
            self._skipped.inc()
            yield beam.pvalue.TaggedOutput(SKIPPED_TAG, {
                **{k: prev.get(k) for k in ("film_id", "size_bytes", "fingerprint", "model_version",
                                              "duration_s", "n_clips", "output_file", "error")},
                "run_id": self.run_id, "film_path": ref.path, "config_hash": self.config_hash,
                "status": "skipped", "processed_at": now_utc()})
            return
        yield ref

    @staticmethod
    def _still_valid(prev: dict, output_dir: Optional[str] = None, features: bool = False,
                     transcripts: bool = False) -> bool:
        """An ok film whose clips file is there, whole (clips_intact), under this run's `output_dir` (the manifest's
        output_file names where it was written: an --output copied or moved elsewhere is checked where it is now),
        with the tables this run writes: its features file (`features`, --write_features), if it has scored clips;
        its transcripts file (`transcripts`, --write_transcripts), if its clips read recognised speech. An archive
        indexed without them gets them the night the option is added (before 2026-12-06 only new films did). Or a
        film whose own bytes failed (the same bytes would fail again). Failures in scoring or writing may be
        transient, so those films are retried."""
        if prev["status"] == "ok":
            film_id = prev.get("film_id")
            path = (join_path(output_dir, "clips", f"{film_id}.parquet") if output_dir and film_id
                    else prev.get("output_file"))
            if not (path and clips_intact(path, prev.get("n_clips"), prev.get("config_hash"))):
                return False
            if not (output_dir and film_id and prev.get("n_clips")):
                return True

            def missing(table: str) -> bool:
                return not FileSystems.exists(join_path(output_dir, table, f"{film_id}.parquet"))
            if features and prev.get("model_version") and missing("features"):
                return False
            return not (transcripts and missing("transcripts") and _read_speech(path))
        stage = (prev.get("error") or "").split(":", 1)[0]
        return stage in CONTENT_STAGES


def _read_speech(clips_path: str) -> bool:
    """Whether a film's clips read recognised speech (text_source 'asr'): a film the transcripts table has rows of."""
    try:
        with FileSystems.open(clips_path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            return "asr" in pq.read_table(f, columns=["text_source"]).column("text_source").to_pylist()
    except Exception:  # noqa: BLE001 - unreadable: clips_intact has decided already
        return False


def _other_bytes(clips_path: str, fingerprint: Optional[str]) -> bool:
    """Whether a film's committed clips file was made from other bytes than `fingerprint`'s (False where there is
    none, it does not read, or the fingerprint is unknown: a failure before fingerprinting keeps what is there)."""
    if not fingerprint:
        return False
    try:
        with FileSystems.open(clips_path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            made_from = set(pq.read_table(f, columns=["fingerprint"]).column("fingerprint").to_pylist())
    except Exception:  # noqa: BLE001 - missing or unreadable: nothing to compare
        return False
    return bool(made_from - {fingerprint})


def clips_intact(path: str, n_clips: Optional[int], config_hash: Optional[str] = None) -> bool:
    """Whether a film's clips file is there and whole: its Parquet footer reads, with the manifest's clip count (one
    read of the file's end, where an existence check was one request too), and its rows were written with the
    manifest row's `config_hash` (the footer's statistics of that column). Before 2026-12-06 a clips file that was
    cut or overwritten kept its film skipped night after night; before 2026-12-07 one a killed run had renamed into
    place under other options, before its manifest row (its clips other options' where the options went back, the
    same count of clips), was skipped too (found in review)."""
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            meta = pq.ParquetFile(f).metadata
    except Exception as exc:  # noqa: BLE001 - missing, unreadable or not Parquet: the film is scored again
        log.info("%s: clips file missing or unreadable (%s): the film is scored again", path, exc)
        return False
    written = written_config(meta)
    if config_hash and written and written != config_hash:
        log.info("%s: clips written with other options (config %s, the manifest's %s: a run stopped in its commit): "
                 "the film is scored again", path, written, config_hash)
        return False
    return n_clips is None or meta.num_rows == n_clips


def written_config(meta) -> Optional[str]:
    """The one config_hash a clips file's rows carry, from its footer's column statistics; None where they do not
    say (no such column or statistics, several values)."""
    try:
        i = meta.schema.to_arrow_schema().get_field_index("config_hash")
        if i < 0 or not meta.num_row_groups:
            return None
        values = set()
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(i).statistics
            if stats is None or not stats.has_min_max:
                return None
            values |= {stats.min, stats.max}
    except Exception:  # noqa: BLE001 - a footer that does not say: the clip count decides, as before
        return None
    value = values.pop() if len(values) == 1 else None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


# ---------------------------------------------------------------------------------------------------------
# Per-film commits

def manifest_row(run_id: str, ref: FilmRef, config_hash: str, status: str, *, duration_s: Optional[float] = None,
                 n_clips: int = 0, output_file: Optional[str] = None, error: Optional[str] = None,
                 model_version: Optional[str] = None, wall_s: Optional[float] = None,
                 moved_from: Optional[str] = None) -> dict:
    return {"run_id": run_id, "film_id": ref.film_id, "film_path": ref.path, "size_bytes": ref.size_bytes,
            "fingerprint": ref.fingerprint or None, "config_hash": config_hash, "model_version": model_version,
            "status": status, "duration_s": duration_s, "n_clips": n_clips, "output_file": output_file,
            "error": error, "processed_at": now_utc(), "wall_s": wall_s, "moved_from": moved_from,
            "content_fingerprint": ref.content_fingerprint or None}


def error_summary(err: FilmError) -> str:
    return f"{err.stage}: {err.error_type}: {err.message}"


def commit_film(output_dir: str, run_id: str, manifest: dict, errors: Iterable[FilmError] = (),
                clip_rows: Optional[list[dict]] = None, features: Optional[list[dict]] = None,
                transcripts: Optional[list[dict]] = None) -> dict:
    """Write one film's tables, the manifest row last: once it exists the film is done. Every file is staged
    (written under a temp name) before any is renamed into place, so a write that fails (a full disk, a quota)
    leaves the film's previous outputs as they were and no temp file behind: before 2026-12-05 a full disk could
    leave a film's new clips file beside its old manifest row.

    clip_rows None: the film has no clips file (it failed). Returns the manifest row as written."""
    from schemas import transcripts as transcripts_schema
    film_id = manifest["film_id"]
    tables = []  # (table, final path), in the order they are published
    clips_file = join_path(output_dir, "clips", f"{film_id}.parquet")
    features_file = join_path(output_dir, "features", f"{film_id}.parquet")
    if clip_rows is not None:
        clip_rows = sorted(clip_rows, key=lambda r: r["clip_index"])
        manifest["output_file"] = clips_file
        tables.append((schemas.rows_to_table(clip_rows, clips_schema.SCHEMA), manifest["output_file"]))
    if features:
        tables.append((schemas.rows_to_table(sorted(features, key=lambda r: r["clip_index"]), features_schema.SCHEMA),
                       features_file))
    transcripts_file = join_path(output_dir, "transcripts", f"{film_id}.parquet")
    if transcripts:
        tables.append((schemas.rows_to_table(transcripts, transcripts_schema.SCHEMA), transcripts_file))
    errors_file = join_path(output_dir, "errors", run_id, f"{film_id}.parquet")
    rows = sorted((error_row(e, run_id) for e in errors), key=_row_order)
    if rows:
        tables.append((schemas.rows_to_table(rows, errors_schema.SCHEMA), errors_file))
    tables.append((schemas.rows_to_table([manifest], manifest_schema.SCHEMA),
                   join_path(output_dir, "manifest", run_id, f"{film_id}.parquet")))
    staged: list[tuple[str, str]] = []
    try:
        for table, path in tables:
            # page checksums on the features table only, which pipeline.rescore verifies
            staged.append((stage_table(table, path, page_checksums=path == features_file), path))
    except BaseException:
        _discard([tmp for tmp, _ in staged])
        raise
    if not rows and FileSystems.exists(errors_file):  # a retried film that failed before and not now
        delete_files([errors_file])
    if clip_rows is not None and features:
        # the old features go before the new clips come: a crash between the two renames left the new clips beside
        # the old tokens, which pipeline.rescore paired by clip_index (another line's label, found in review
        # 2026-12-07); now it finds no features for the film and refuses it, and the next run redoes the film
        _drop_stale([features_file])
    for tmp, path in staged[:-1]:
        publish(tmp, path)
    if clip_rows is not None:
        _drop_stale([path for path, written in ((features_file, features), (transcripts_file, transcripts))
                     if not written])
    elif _other_bytes(clips_file, manifest.get("fingerprint")):
        # A film whose file was replaced and whose new bytes failed: its clips (and features, transcripts) are of
        # bytes no longer there. Before 2026-12-06 they stayed, and a direct reading of clips/ counted them while
        # the report showed the failed film without clips.
        _drop_stale([clips_file, features_file, transcripts_file])
    publish(*staged[-1])  # the manifest row: the commit
    return manifest


def _drop_stale(paths: list[str]) -> None:
    """A film's new clips were committed without features (a run without --write_features) or without transcripts
    (without --write_transcripts, or no speech recognised this time): an older features file would still pair with
    them by clip_index, and pipeline.rescore would score the old tokens as the new clips; an older transcripts file
    would name lines the new clips were not read from. They go after the new clips file is in place (a failed
    publish leaves the old set whole) and before the manifest row (a crash between leaves the film not done, so the
    next run redoes it)."""
    stale = [p for p in paths if FileSystems.exists(p)]
    if stale:
        delete_files(stale)


def os_error_in(exc: BaseException, reasons: dict[int, str]) -> Optional[tuple[BaseException, str]]:
    """The first of `exc` and what it wraps that is an OSError with one of `reasons`' errnos, or whose text names one
    of the reasons (runners hand a worker's error back wrapped, multi-processing and portable ones as text): (that
    exception, its reason); None where none is."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in reasons:
            return exc, reasons[exc.errno]
        for reason in reasons.values():
            if reason in str(exc):
                return exc, reason
        exc = exc.__cause__ or exc.__context__
    return None


def over_size_limit(exc: BaseException) -> Optional[str]:
    """What `exc` (or what it wraps, also as text) says where a file was over the size the filesystem or the process
    allows (EFBIG: `ulimit -f`, FAT's 4 GiB); None for anything else."""
    found = os_error_in(exc, {errno.EFBIG: "File too large"})
    return str(found[0]) if found else None


def commit_move(output_dir: str, run_id: str, ref: FilmRef, prev: dict, config_hash: str) -> dict:
    """A film found at a new path, its old path gone, with the bytes and options of its committed outputs (an
    archive reorganised, a folder renamed): the outputs are kept, nothing is decoded or scored again, and they name
    the new path (clips, features, transcripts); a warning row says where the film came from. The manifest row is
    written last, as for a scored film: a crash before it leaves the move to be done again by the next run."""
    for table in ("clips", "features", "transcripts"):
        path = join_path(output_dir, table, f"{ref.film_id}.parquet")
        if not FileSystems.exists(path):
            continue
        t = read_table(path)
        i = t.schema.get_field_index("film_path")
        # the features file keeps the page checksums pipeline.rescore verifies
        atomic_write_table(t.set_column(i, t.schema.field(i), pa.array([ref.path] * len(t), pa.string())), path,
                           page_checksums=table == "features")
    was = "the same file as this path" if same_local_file(prev["film_path"], ref.path) else "gone now"
    note = FilmError(ref.path, "discover", "FilmMoved", f"scored before at {prev['film_path']} ({was}), with the "
                     "same bytes and options: its outputs were kept and now name this path", film_id=ref.film_id,
                     fatal=False, ref=ref)
    return commit_film(output_dir, run_id, manifest_row(
        run_id, ref, config_hash, "ok", duration_s=prev.get("duration_s"), n_clips=prev.get("n_clips") or 0,
        output_file=prev.get("output_file"), model_version=prev.get("model_version"), wall_s=0.0,
        moved_from=prev["film_path"]), errors=[note])


class CommitFailure(beam.DoFn):
    """A FilmError that stopped a film before decoding (fingerprint, probe) -> that film's errors and its
    'failed' manifest row, committed at once; yields the manifest row."""

    def __init__(self, output_dir: str, run_id: str, config_hash: str):
        self.output_dir, self.run_id, self.config_hash = output_dir, run_id, config_hash
        self._failed = beam.metrics.Metrics.counter("film_emotion", "films_failed")

    def process(self, err: FilmError):
        ref = err.ref or FilmRef(path=err.film_path, size_bytes=None, film_id=err.film_id or film_id_for(err.film_path))
        self._failed.inc()
        yield commit_film(self.output_dir, self.run_id,
                          manifest_row(self.run_id, ref, self.config_hash, "failed", error=error_summary(err)),
                          errors=[err])


class WriteRunTable(beam.PTransform):
    """A PCollection of row dicts -> one <table>/<run_id>/<name>.parquet file, written when there are rows."""

    def __init__(self, output_dir: str, table: str, run_id: str, name: str):
        super().__init__()
        self.path = join_path(output_dir, table, run_id, f"{name}.parquet")
        self.schema = schemas.TABLES[table]

    def expand(self, rows):
        path, schema = self.path, self.schema
        return (rows
                | "All" >> beam.combiners.ToList()
                | "Write" >> beam.Map(lambda rs: atomic_write_table(
                    schemas.rows_to_table(sorted(rs, key=_row_order), schema), path) if rs else None))


def _row_order(r: dict):
    return (r.get("film_path") or "", r.get("clip_index") if r.get("clip_index") is not None else -1,
            r.get("stage") or "")


__all__ = ["atomic_write_table", "stage_table", "publish", "read_table", "table_files", "read_rows", "clip_media_row", "error_row",
           "load_done_films", "write_done_index", "latest_by_film", "clean_output", "content_key", "pair_moves",
           "same_local_file",
           "SkipDone", "commit_film", "commit_move", "CommitFailure", "WriteRunTable",
           "manifest_row", "match_files", "read_json", "write_json", "MEDIA_STAGES", "SKIPPED_TAG", "manifest_schema", "errors_schema"]
