"""Write the run's tables under --output, every file atomically (temp name, then rename through FileSystems).

    clips/<film_id>.parquet      one row per clip (media columns + score columns, null when not scored)
    features/<film_id>.parquet   per-clip encoder tokens (only when the scorer gives them)
    transcripts/<film_id>.parquet  recognised utterances (only with --write_transcripts)
    errors/<run_id>.parquet      dead letter: one row per failure or warning
    manifest/<run_id>.parquet    one row per input film: ok | failed | skipped

The manifest is also what incremental runs read: `load_done_films` + `SkipDone`.
"""
from __future__ import annotations

import datetime as dt
import io
import logging
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
from transforms.elements import ERRORS_TAG, DecodedClip, FilmError, FilmJob, FilmRef

log = logging.getLogger(__name__)

# Stages whose fatal errors mean the film has no trustworthy clips; scoring failures leave clips with null scores.
MEDIA_STAGES = ("discover", "fingerprint", "probe", "subtitles", "segment", "decode", "write")
CLIP_COLUMNS = frozenset(clips_schema.SCHEMA.names)
SKIPPED_TAG = "skipped"
# Failures decided by the file's bytes alone: an unchanged file under the same config is not retried.
CONTENT_STAGES = ("probe", "decode")


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def join_path(*parts: str) -> str:
    return FileSystems.join(*parts) if "://" in parts[0] else posixpath.join(*parts)


def atomic_write_table(table: pa.Table, path: str) -> str:
    """Parquet to a temp name beside `path`, then rename: readers never see a half-written file."""
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with FileSystems.create(tmp, mime_type="application/octet-stream",
                            compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(buf.getvalue())
    try:
        FileSystems.rename([tmp], [path])
    except Exception:  # noqa: BLE001 - some filesystems refuse to rename over an existing file
        if FileSystems.exists(path):
            FileSystems.delete([path])
        FileSystems.rename([tmp], [path])
    return path


def read_table(path: str) -> pa.Table:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return pq.read_table(io.BytesIO(f.read()))


def clip_media_row(job: FilmJob, clip: DecodedClip, run_id: str) -> dict:
    """The media half of a clips-table row (score columns are added by the writer when a scorer ran)."""
    s = clip.spec
    return {
        "film_id": job.ref.film_id, "film_path": job.ref.path, "fingerprint": job.ref.fingerprint,
        "clip_index": s.clip_index, "start_s": float(s.start_s), "end_s": float(s.end_s),
        "segment_source": s.segment_source, "text": s.text, "text_source": s.text_source,
        "language": s.language, "n_frames": int(len(clip.frames)), "has_audio": bool(clip.audio.size > 0),
        "run_id": run_id, "config_hash": job.config_hash,
    }


def error_row(err: FilmError, run_id: str, created_at: Optional[dt.datetime] = None) -> dict:
    return {"run_id": run_id, "film_id": err.film_id, "film_path": err.film_path, "clip_index": err.clip_index,
            "stage": err.stage, "error_type": err.error_type, "message": err.message, "fatal": err.fatal,
            "created_at": created_at or now_utc()}


# ---------------------------------------------------------------------------------------------------------
# Incremental runs

def load_done_films(output_dir: str) -> dict[str, dict]:
    """film_path -> the newest 'ok' or 'failed' manifest row under output_dir (earlier runs)."""
    pattern = join_path(output_dir, "manifest", "*.parquet")
    done: dict[str, dict] = {}
    for match in FileSystems.match([pattern])[0].metadata_list if _dir_exists(output_dir) else []:
        try:
            rows = read_table(match.path).to_pylist()
        except Exception as exc:  # noqa: BLE001 - a damaged manifest only costs re-work
            log.warning("ignoring unreadable manifest %s: %s", match.path, exc)
            continue
        for r in rows:
            if r.get("status") in ("ok", "failed"):
                old = done.get(r["film_path"])
                if old is None or r["processed_at"] > old["processed_at"]:
                    done[r["film_path"]] = r
    return done


def _dir_exists(path: str) -> bool:
    try:
        return FileSystems.exists(path)
    except Exception:  # noqa: BLE001
        return False


class SkipDone(beam.DoFn):
    """FilmRef -> FilmRef to process, or a SKIPPED_TAG manifest row when an earlier run already did this work."""

    def __init__(self, done: dict[str, dict], config_hash: str, run_id: str, force: bool = False):
        self.done, self.config_hash, self.run_id, self.force = done, config_hash, run_id, force
        self._skipped = beam.metrics.Metrics.counter("film_emotion", "films_skipped")

    def process(self, ref: FilmRef):
        prev = None if self.force else self.done.get(ref.path)
        if (prev is not None and prev.get("fingerprint") == ref.fingerprint
                and prev.get("config_hash") == self.config_hash and self._still_valid(prev)):
            self._skipped.inc()
            yield beam.pvalue.TaggedOutput(SKIPPED_TAG, {
                **{k: prev.get(k) for k in ("film_id", "size_bytes", "fingerprint", "model_version",
                                              "duration_s", "n_clips", "output_file", "error")},
                "run_id": self.run_id, "film_path": ref.path, "config_hash": self.config_hash,
                "status": "skipped", "processed_at": now_utc()})
            return
        yield ref

    @staticmethod
    def _still_valid(prev: dict) -> bool:
        """An ok film whose clips file is still there; or a film whose own bytes failed (the same bytes would
        fail again). Failures in scoring or writing may be transient, so those films are retried."""
        if prev["status"] == "ok":
            return bool(prev.get("output_file")) and FileSystems.exists(prev["output_file"])
        stage = (prev.get("error") or "").split(":", 1)[0]
        return stage in CONTENT_STAGES


# ---------------------------------------------------------------------------------------------------------
# Per-film output

class WriteFilm(beam.DoFn):
    """(film_id, CoGroupByKey result) -> manifest row; writes the film's clips (and features/transcripts) file.

    The group holds: refs [FilmRef], rows [(clip row)], films [summary], scores [(clip_index, score dict)],
    features [row dict], errors [FilmError].
    """

    def __init__(self, output_dir: str, run_id: str, config_hash: str, write_transcripts: bool = False,
                 asr_model_name: Optional[str] = None):
        self.output_dir, self.run_id, self.config_hash = output_dir, run_id, config_hash
        self.write_transcripts, self.asr_model_name = write_transcripts, asr_model_name
        self._ok = beam.metrics.Metrics.counter("film_emotion", "films_ok")
        self._failed = beam.metrics.Metrics.counter("film_emotion", "films_failed")

    def process(self, element):
        film_id, g = element
        refs, summaries, errors = list(g.get("refs", [])), list(g.get("films", [])), list(g.get("errors", []))
        summary = summaries[0] if summaries else None
        ref = refs[0] if refs else None
        film_path = ref.path if ref else summary["film_path"] if summary else errors[0].film_path
        media_fatal = [e for e in errors if e.fatal and e.stage in MEDIA_STAGES]
        base = {"run_id": self.run_id, "film_id": film_id, "film_path": film_path,
                "size_bytes": ref.size_bytes if ref else None, "fingerprint": (ref.fingerprint or None) if ref else None,
                "config_hash": self.config_hash, "model_version": None,
                "duration_s": summary["duration_s"] if summary else None, "processed_at": now_utc()}
        if summary is None or media_fatal:
            first = (media_fatal or [e for e in errors if e.fatal] or [None])[0]
            msg = f"{first.stage}: {first.error_type}: {first.message}" if first else "no clips were produced"
            self._failed.inc()
            yield {**base, "status": "failed", "n_clips": 0, "output_file": None, "error": msg}
            return
        try:
            out = self._write(film_id, g, summary)
        except Exception as exc:  # noqa: BLE001
            err = FilmError(film_path=film_path, film_id=film_id, stage="write", error_type=type(exc).__name__,
                            message=str(exc))
            yield beam.pvalue.TaggedOutput(ERRORS_TAG, err)
            self._failed.inc()
            yield {**base, "status": "failed", "n_clips": 0, "output_file": None,
                   "error": f"write: {err.error_type}: {err.message}"}
            return
        fatal = [e for e in errors if e.fatal]
        (self._failed if fatal else self._ok).inc()
        yield {**base, "model_version": out["model_version"], "status": "failed" if fatal else "ok",
               "n_clips": out["n_clips"], "output_file": out["clips_file"],
               "error": f"{fatal[0].stage}: {fatal[0].error_type}: {fatal[0].message}" if fatal else None}

    def _write(self, film_id: str, g: dict, summary: dict) -> dict:
        rows = sorted(g.get("rows", []), key=lambda r: r["clip_index"])
        scores = dict(g.get("scores", []))
        for r in rows:
            r.update({k: v for k, v in (scores.get(r["clip_index"]) or {}).items() if k in CLIP_COLUMNS})
        clips_file = join_path(self.output_dir, "clips", f"{film_id}.parquet")
        atomic_write_table(schemas.rows_to_table(rows, clips_schema.SCHEMA), clips_file)
        features = list(g.get("features", []))
        if features:
            features.sort(key=lambda r: r["clip_index"])
            atomic_write_table(schemas.rows_to_table(features, features_schema.SCHEMA),
                               join_path(self.output_dir, "features", f"{film_id}.parquet"))
        if self.write_transcripts and summary.get("transcript"):
            from schemas import transcripts as transcripts_schema
            from transforms.transcribe import transcript_rows  # the ASR engineer's table layout
            t_rows = transcript_rows(film_id, summary["film_path"], summary["transcript"], self.asr_model_name,
                                     details=summary.get("transcript_details"),
                                     language_probability=summary.get("language_probability"))
            atomic_write_table(schemas.rows_to_table(t_rows, transcripts_schema.SCHEMA),
                               join_path(self.output_dir, "transcripts", f"{film_id}.parquet"))
        versions = {r.get("model_version") for r in rows if r.get("model_version")}
        return {"clips_file": clips_file, "n_clips": len(rows),
                "model_version": next(iter(versions)) if len(versions) == 1 else None}


class WriteRunTable(beam.PTransform):
    """A PCollection of row dicts -> one <table>/<run_id>.parquet file (written even when empty)."""

    def __init__(self, output_dir: str, table: str, run_id: str):
        super().__init__()
        self.output_dir, self.table, self.run_id = output_dir, table, run_id

    def expand(self, rows):
        schema = schemas.TABLES[self.table]
        path = join_path(self.output_dir, self.table, f"{self.run_id}.parquet")
        return (rows
                | "All" >> beam.combiners.ToList()
                | "Write" >> beam.Map(lambda rs: atomic_write_table(
                    schemas.rows_to_table(sorted(rs, key=_row_order), schema), path)))


def _row_order(r: dict):
    return (r.get("film_path") or "", r.get("clip_index") if r.get("clip_index") is not None else -1,
            r.get("stage") or "")


__all__ = ["atomic_write_table", "read_table", "clip_media_row", "error_row", "load_done_films", "SkipDone",
           "WriteFilm", "WriteRunTable", "MEDIA_STAGES", "SKIPPED_TAG", "manifest_schema", "errors_schema"]
