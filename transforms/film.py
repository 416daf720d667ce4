"""One film, start to commit, in one step: decode (one pass) -> score in batches -> commit its tables.

    FilmJob -> ProcessFilm -> the film's manifest row (its tables are already written when it is yielded)

Decoding, scoring and writing sit in one DoFn so that a film is committed the moment it is finished (no
barrier across films: a crash keeps every film already committed), decoded frames never leave the worker
that decoded them, and memory holds the clips in flight (the batch being scored and up to twice --batch_size decoded
ahead) plus the film's rows kept until its commit: its clip rows, and with --write_features every clip's tokens (tens
of KB a clip: 60-200 MB for a 2-hour film of 4 s clips). Models load once per
worker process, at its first film (shared by its threads). Errors are values: a film that cannot be decoded is a
'failed' manifest row with its error rows; a clip that fails to score keeps null scores and an error row.
"""
from __future__ import annotations

import atexit
import functools
import gc
import logging
import queue
import threading
import time
from collections import Counter
from typing import Callable, Iterable, Iterator, Optional

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms import attempts
from transforms.decode import DecodeConfig, decode_film
from transforms.discover import stat_now
from transforms.probe import ReadFailed, file_gone
from transforms.elements import DecodedClip, FilmError, FilmJob
from transforms.fuse import features_row
from transforms.language import IdentifierUnavailable, unidentified_note
from transforms.write import (CLIP_COLUMNS, MEDIA_STAGES, clip_media_row, commit_film, error_summary, manifest_row,
                              over_size_limit)

LOG = logging.getLogger(__name__)
NAMESPACE = "film_emotion"
# A film's first batch is this many clips and each next one twice the last, up to --batch_size: the models start
# once a few clips are decoded instead of idling while a whole batch decodes (32 clips of 2 s are about 2.5 s of
# decoding on one core before any model runs; afterwards the decoder stays ahead of the models).
FIRST_BATCH = 4


class ProcessFilm(beam.DoFn):
    """FilmJob -> manifest row, after committing the film's clips (and features, transcripts, errors).

    scorer: a transforms.score.FilmScorer or None (--no_score: clips keep null score columns).
    cue_source_factory(job) -> a CueSource, called for films that need speech recognition; picklable, it loads
    its model lazily (once per worker process)."""

    def __init__(self, output_dir: str, run_id: str, cfg: DecodeConfig, scorer=None,
                 cue_source_factory: Optional[Callable] = None, write_transcripts: bool = False,
                 asr_model_name: Optional[str] = None):
        self.output_dir, self.run_id, self.cfg = output_dir, run_id, cfg
        self.scorer, self.cue_source_factory = scorer, cue_source_factory
        self.write_transcripts, self.asr_model_name = write_transcripts, asr_model_name
        self._counters = {name: Metrics.counter(NAMESPACE, name) for name in
                          ("films_decoded", "clips", "frames", "clips_scored", "films_ok", "films_failed", "errors")}

    def process(self, job: FilmJob):
        t0 = time.monotonic()
        film = _Film(job, self)
        subtitles_unread = any(e.fatal and e.stage == "read" for e in job.warnings)  # the storage failed them
        if self.scorer is not None and not subtitles_unread:
            # once per worker, at its first film (a run with nothing new loads no model), and before the film's start
            # is recorded: models that cannot load are not the film killing its worker
            self.scorer.load()
            freeze_at_exit()
        unheard = None if subtitles_unread else self.load_speech(film)  # (the speech model too, before the start)
        earlier = attempts.record_start(self.output_dir, job.ref, job.config_hash, "decode")
        try:
            if earlier >= attempts.MAX_STARTS:  # it killed its worker each time: given up
                film.errors.append(attempts.gave_up(job.ref, "decode", earlier))
            elif unheard is not None:  # failed for the next run to retry, not decoded
                film.errors.append(unheard)
            elif not subtitles_unread:  # (else: failed for the next run to retry, not decoded)
                try:
                    film.run()
                except Exception as exc:  # noqa: BLE001 - dead-letter the film, keep the run going
                    film.errors.append(film_failure(job, exc))
            row = film.commit(time.monotonic() - t0)
        except Exception:
            # the worker lives (a commit on a full disk): only a process that dies may leave the film's start recorded
            attempts.finished(self.output_dir, job.ref.film_id, "decode")
            raise
        attempts.finished(self.output_dir, job.ref.film_id, "decode")
        self._counters["films_ok" if row["status"] == "ok" else "films_failed"].inc()
        yield row

    def load_speech(self, film: "_Film") -> Optional[FilmError]:
        """The speech recogniser of a film that needs one (loaded once per worker), or why the film fails without it.
        A model the workers cannot load (a path only the launcher has) fails the film at `score`, which the next run
        retries: before 2026-12-06 it was a warning, and the film was committed 'ok' without its lines for good."""
        job = film.job
        if not job.needs_asr or self.cue_source_factory is None:
            return None
        try:
            film.cue_source = self.cue_source_factory(job)
        except Exception as exc:  # noqa: BLE001 - the film's failure, the run goes on
            return speech_model_failure(job, getattr(self.cue_source_factory, "asr_model", None)
                                        or self.asr_model_name, exc)
        return None


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Optional[Callable[[int], int]]:
    """glibc's malloc_trim, or None under another C library (macOS, musl): nothing to release there."""
    import ctypes
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_heap() -> None:
    """Hand the C heap's free pages back to the system (malloc_trim), once per scored batch (about 16 ms). The
    decoder's frames and the encoders' buffers leave free space scattered through glibc's heap that it keeps: a
    worker's resident memory rose about 1 MB per film-minute, so a 2-hour film needed about 0.3 GB more than a short one
    (docs/benchmarks.md, *Memory in film length*). Measured 2026-12-07: the 30-minute benchmark film's level from its
    second fifth to its end 2.00 -> 2.10 GB without, 1.86-1.88 GB with (peak 2168 -> 2072 MB); the 2-hour film's
    peak 2283 -> 2101 MB, its level still rising 80 MB over the film: that rest was the models' per-shape kernels
    (model.precision.bound_kernel_caches, model.encoders.text.WIDTH_STEP), after which the level is flat."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class ScoringFailed(Exception):
    """The scorer failed a whole batch outside its per-clip isolation (an allocation, a model): not the film's
    bytes, so the film is retried next run, where a decode failure waits for the file to change."""


def speech_model_failure(job: FilmJob, model: Optional[str], exc: Exception) -> FilmError:
    """A film that needs speech recognition on a worker that cannot load the model: failed at `score` (retried)."""
    return FilmError(
        film_path=job.ref.path, film_id=job.ref.film_id, stage="score", error_type=type(exc).__name__, ref=job.ref,
        message=f"the speech recognition model {model or 'whisper-base (packaged)'} (--asr_model) cannot be loaded on "
                f"this worker ({exc}); the film needs it for its lines, so it is not scored and the next run tries "
                "it again. Give --asr_model a model every worker can load (a folder at the same absolute path on each, "
                "or a faster-whisper name in their local cache), or leave it out for the packaged model")


def film_failure(job: FilmJob, exc: Exception) -> FilmError:
    """A film's run that raised: `read` (the storage, or the file gone: transforms.probe.file_gone) and `score` (the
    models) are retried next run, `decode` (its bytes) waits for the file to change (transforms.write.CONTENT_STAGES).
    Before 2026-12-06 a scoring failure was recorded as `decode`, so a healthy film was never tried again."""
    if isinstance(exc, ScoringFailed):
        return FilmError.from_exception(job.ref, "score", exc.__cause__ or exc)
    # (a language identifier that did not load, telling recognised lines' language: not the bytes' fault either)
    retried = isinstance(exc, (ReadFailed, IdentifierUnavailable)) or file_gone(exc)
    return FilmError.from_exception(job.ref, "read" if retried else "decode", exc)


@functools.cache  # registered once per process
def freeze_at_exit() -> None:
    """At exit, move every object into the collector's permanent generation first.

    The interpreter's teardown otherwise runs the cycle collector over everything the models left, about 2 s per
    worker process with the default models (measured: 2.0-2.4 s from the last line to the exit, 0.4-0.5 s
    frozen), and the DirectRunner stops its worker processes one after another. The OS frees the memory anyway;
    objects are still released by their reference counts, so files close and buffers flush as before."""
    atexit.register(gc.freeze)


class _Film:
    """The state of one film while it is processed: its small rows, features and errors."""

    def __init__(self, job: FilmJob, step: ProcessFilm):
        self.job, self.step = job, step
        self.rows: list[dict] = []
        self.scores: dict[int, dict] = {}
        self.features: list[dict] = []
        self.errors: list[FilmError] = list(job.warnings)
        self.stats: dict = {}
        self.batch: list[DecodedClip] = []
        self.cue_source = None
        self.unread: Counter = Counter()  # language -> lines the text path did not read (transforms.language)

    def run(self) -> None:
        job, step = self.job, self.step
        decoded = decode_film(job, step.cfg, self.cue_source, self.stats)  # (cue_source: ProcessFilm.load_speech)
        if step.scorer is not None:  # decode the next clips while the models score these
            decoded = decode_ahead(decoded, 2 * step.scorer.cfg.batch_size)
        limit = FIRST_BATCH
        for item in decoded:
            if isinstance(item, FilmError):
                self.errors.append(item)
                continue
            step._counters["clips"].inc()
            step._counters["frames"].inc(len(item.frames))
            self.rows.append(clip_media_row(job, item, step.run_id))
            if step.scorer is not None:
                self.batch.append(item)
                if len(self.batch) >= min(limit, step.scorer.cfg.batch_size):
                    self.score_batch()
                    limit *= 2
        self.score_batch()
        step._counters["films_decoded"].inc()
        if self.unread:
            cfg = step.scorer.cfg
            self.errors.append(unread_lines_warning(job.ref, self.unread, len(self.rows), cfg.text_languages,
                                                    cfg.modalities))
        failures = getattr(self.cue_source, "failures", None)
        if failures:
            self.errors.append(FilmError(
                film_path=job.ref.path, film_id=job.ref.film_id, stage="transcribe", error_type="AsrChunkError",
                message=f"{len(failures)} audio chunk(s) not transcribed; first: {failures[0]}", fatal=False))

    def score_batch(self) -> None:
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        scorer, ref = self.step.scorer, self.job.ref
        try:
            results = scorer.score(batch)
        except Exception as exc:  # noqa: BLE001 - told apart from the decoder's failures (film_failure)
            raise ScoringFailed(str(exc)) from exc
        release_free_heap()
        for clip, res in zip(batch, results):
            index = clip.spec.clip_index
            if res.unread_language:
                self.unread[res.unread_language] += 1
            for f in res.failures:
                self.errors.append(FilmError(film_path=ref.path, film_id=ref.film_id, clip_index=index,
                                             stage="encode", error_type=f.error_type, message=f.message,
                                             fatal=False))
            if res.head_failure is not None:
                f = res.head_failure
                self.errors.append(FilmError(film_path=ref.path, film_id=ref.film_id, clip_index=index,
                                             stage="fuse", error_type=f.error_type, message=f.message))
            else:
                self.scores[index] = res.scores
                self.step._counters["clips_scored"].inc()
            if scorer.cfg.write_features:
                self.features.append(features_row(ref.film_id, ref.path, index, res.tokens,
                                                  scorer.encoder_version, {}))

    def commit(self, wall_s: float) -> dict:
        job, step = self.job, self.step
        grown = self.changed_since_found()
        if grown:
            self.errors.append(grown)
        self.step._counters["errors"].inc(sum(e.fatal for e in self.errors))
        media_fatal = [e for e in self.errors if e.fatal and e.stage in MEDIA_STAGES]
        duration = float(self.stats.get("media_end_s", job.info.duration_s))
        if media_fatal or not self.rows:
            first = (media_fatal or [None])[0]
            row = manifest_row(step.run_id, job.ref, job.config_hash, "failed", duration_s=duration if
                               self.rows else None, error=error_summary(first) if first else "no clips were produced",
                               wall_s=wall_s)
            return commit_film(step.output_dir, step.run_id, row, self.errors)
        for r in self.rows:
            r.update({k: v for k, v in (self.scores.get(r["clip_index"]) or {}).items() if k in CLIP_COLUMNS})
        fatal = [e for e in self.errors if e.fatal]
        versions = {r.get("model_version") for r in self.rows if r.get("model_version")}
        row = manifest_row(step.run_id, job.ref, job.config_hash, "failed" if fatal else "ok", duration_s=duration,
                           n_clips=len(self.rows), error=error_summary(fatal[0]) if fatal else None,
                           model_version=next(iter(versions)) if len(versions) == 1 else None, wall_s=wall_s)
        try:
            return commit_film(step.output_dir, step.run_id, row, self.errors, clip_rows=self.rows,
                               features=self.features or None, transcripts=self.transcript_rows())
        except Exception as exc:
            too_large = over_size_limit(exc)
            if too_large is None:
                raise  # a full disk, a refused folder: no film can be written (pipeline.run says so and stops)
        # One film's table over the size a file may have there (a per-process limit, a FAT/exFAT or quota maximum):
        # that film fails, with its errors row, and the run goes on. Before 2026-12-07 the run ended with a traceback,
        # every night, the films after it never scored (found in review).
        err = FilmError(film_path=job.ref.path, film_id=job.ref.film_id, stage="write", error_type="FileTooLarge",
                        message=f"a table of this film is over the size a file may have under --output ({too_large}): "
                                "its clips were not written; the next run tries again")
        LOG.error("%s: %s", job.ref.path, err.message)
        self.errors.append(err)
        return commit_film(step.output_dir, step.run_id, manifest_row(
            step.run_id, job.ref, job.config_hash, "failed", duration_s=duration, error=error_summary(err),
            wall_s=wall_s), self.errors)

    def changed_since_found(self) -> Optional[FilmError]:
        """A film whose file changed size, or was written, while it was read (an ingest copy still being written when
        the nightly run found it): what was read is not the film, so it is not committed as scored. Failed at
        `fingerprint`, a stage whose failures are retried, the next run takes the whole file. Before 2026-12-05 the
        part copied so far was scored and committed 'ok' until the next run; before 2026-12-07 so was that of a copy
        that sets its final size first (rsync --preallocate, robocopy, SMB: the size never changes)."""
        ref = self.job.ref
        now = stat_now(ref.path)
        if ref.size_bytes is None or now is None:
            return None
        size, stamp = now
        if size != ref.size_bytes:
            seen = f"{ref.size_bytes} bytes when found, {size} now"
        elif ref.modified_ns is not None and stamp is not None and stamp != ref.modified_ns:
            seen = f"its size the same, written {(stamp - ref.modified_ns) / 1e9:.1f} s after it was found"
        else:
            return None
        return FilmError(film_path=ref.path, film_id=ref.film_id, stage="fingerprint", error_type="FileChanged",
                         message=f"the file changed while it was read ({seen}: still being copied?): not scored; "
                                 "the next run takes it as it is then")

    def transcript_rows(self) -> Optional[list[dict]]:
        cues = list(self.stats.get("asr_cues") or [])
        if not (self.step.write_transcripts and cues):
            return None
        from transforms.transcribe import transcript_rows
        src = self.cue_source
        return transcript_rows(self.job.ref.film_id, self.job.ref.path, cues, self.step.asr_model_name or "unknown",
                               details=list(getattr(src, "details", None) or []),
                               language_probability=getattr(src, "language_probability", None))


# What a clip is scored from besides its line, by --modalities (vision: the frames, and the scene evidence on them)
OTHER_EVIDENCE = {"vision": "frames", "face": "faces", "audio": "speech"}


def unread_lines_warning(ref, unread: Counter, n_clips: int, languages, modalities=None) -> FilmError:
    """One non-fatal row per film (ref: its FilmRef, or anything with .path and .film_id) for the lines the
    text path did not read. modalities: the run's --modalities (None: not known, the message names none)."""
    counts = ", ".join(f"{n} in '{lang}'" for lang, n in sorted(unread.items())) + unidentified_note(unread)
    return FilmError(
        film_path=ref.path, film_id=ref.film_id, stage="encode", error_type="UnreadLanguage", fatal=False,
        message=f"{sum(unread.values())} of {n_clips} clips have a line the text path did not read ({counts}): "
                f"{why_unread(languages)}. {scored_without_text(modalities)}; their text stays in the clips table.")


def why_unread(languages) -> str:
    """Why lines were not read: the languages the text path learnt (the default --text_languages), or those the run
    chose to read (before 2026-12-06 '--text_languages fr' said the text path learnt fr)."""
    from model.encoders.versions import TEXT_LANGUAGES
    if tuple(languages) == TEXT_LANGUAGES:
        return f"it learnt {', '.join(languages)} only (--text_languages)"
    return f"this run reads lines in {', '.join(languages)} only (--text_languages)"


def scored_without_text(modalities) -> str:
    """What the clips with an unread line are scored from: the run's other modalities, or nothing with --modalities
    text (before 2026-12-06 it said frames, faces and speech whatever --modalities was)."""
    if modalities is None:
        return "Those clips are scored without their line"
    others = [OTHER_EVIDENCE[m] for m in OTHER_EVIDENCE if m in modalities]
    if not others:
        return "Those clips have nothing else to be scored from (--modalities text): their label is a guess " \
               "(grounded false)"
    named = f"{', '.join(others[:-1])} and {others[-1]}" if len(others) > 1 else others[0]
    return f"Those clips are scored from their {named}"


_DONE = object()


def decode_ahead(items: Iterable, depth: int) -> Iterator:
    """`items`, produced by a background thread up to `depth` ahead of the consumer. FFmpeg decodes and converts
    frames with the GIL released, so one film's next clips decode while the models run on this one's (measured:
    benchmarks/throughput.py). The producer's exception is raised here, in order; a consumer that stops early
    stops the producer at its next item."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put((_DONE, exc))

    worker = threading.Thread(target=produce, name="decode-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = q.get()
            if item is _DONE:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        worker.join()
