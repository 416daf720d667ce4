"""Films that kill their worker: a step started MAX_STARTS times on a film without finishing is not started again.

A film whose bytes crash FFmpeg (a segfault in a decoder) or exhaust the machine's memory kills the process that
reads it, and nothing in that process can catch it. On the DirectRunner the run ends; on Dataflow the bundle is
retried and, after four failures, the whole job fails. Every night the same film would end the run again, and the
films after it would never be scored. So each step that reads a film's media (ProbeFilm, LoadSubtitles,
ProcessFilm) records its start beside the outputs (`<output>/_attempts/<film_id>.<step>.json`: path, fingerprint,
config hash, number of starts; '_': table readers skip it) and removes the record when it is done. A step whose
record holds MAX_STARTS starts on the same bytes under the same options gives the film up instead: probing or
decoding it, the film is committed as failed (`WorkerCrashed`), and like any failure on a film's content it waits
for its file to change, for new options or for `--force` (which clears every record); its subtitles, they are left
out and the film goes on.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from typing import Optional

from transforms.elements import FilmError, FilmRef
from transforms.write import delete_files, join_path, match_files, output_pattern, read_json, write_json

log = logging.getLogger(__name__)
ATTEMPTS_DIR = "_attempts"
# Three: a film in flight when its machine is preempted or the run is stopped counts a start too, so a film is
# given up only when it took its worker down time after time (Dataflow retries a bundle four times).
MAX_STARTS = 3


def record_path(output_dir: str, film_id: str, step: str) -> str:
    return join_path(output_dir, ATTEMPTS_DIR, f"{film_id}.{step}.json")


def record_start(output_dir: Optional[str], ref: FilmRef, config_hash: Optional[str], step: str) -> int:
    """Record that `step` starts on the film now; returns how many earlier starts of it on these bytes under these
    options never finished (0 without an output_dir: nothing recorded)."""
    if not output_dir:
        return 0
    path = record_path(output_dir, ref.film_id, step)
    held = _read(path) or {}
    same = (held.get("fingerprint"), held.get("config_hash")) == (ref.fingerprint, config_hash)
    earlier = int(held.get("starts", 0)) if same else 0
    # its last start finished: the run was stopped between the film's commit and the record's removal (not a film
    # given up: the failed row that gave it up was committed after its last start too)
    if 0 < earlier < MAX_STARTS and _committed_since(output_dir, ref.film_id, float(held.get("last_start") or 0)):
        earlier = 0
    if earlier < MAX_STARTS:
        write_json(path, {"film_path": ref.path, "step": step, "fingerprint": ref.fingerprint,
                          "config_hash": config_hash, "starts": earlier + 1, "last_start": time.time(),
                          "host": socket.gethostname(), "pid": os.getpid()})
    return earlier


def _committed_since(output_dir: str, film_id: str, since: float) -> bool:
    """Whether a manifest row of the film was committed after `since` (a record's last start): one listing, made
    only for a film that has a record. Before 2026-12-07 a run stopped between a film's commit and the removal of its
    record left a start counted that had finished, towards giving the film up if it was ever redone."""
    return any((m.last_updated_in_seconds or 0) > since
               for m in match_files(output_pattern(output_dir, "manifest", "*", f"{film_id}.parquet")))


def _read(path: str) -> Optional[dict]:
    try:
        return read_json(path)
    except Exception:  # noqa: BLE001 - no record (the usual case), or one a killed worker left half-written
        return None


def _record_paths(output_dir: str) -> list[str]:
    return [m.path for m in match_files(output_pattern(output_dir, ATTEMPTS_DIR, "*.json"))]


def finished(output_dir: Optional[str], film_id: str, step: str) -> None:
    """The step is done with the film: its record goes."""
    if not output_dir:
        return
    try:
        delete_files([record_path(output_dir, film_id, step)])
    except Exception as exc:  # noqa: BLE001 - a record left counts one start; MAX_STARTS allows for it
        log.warning("could not remove the start record of %s: %s", film_id, exc)


def gave_up(ref: FilmRef, step: str, starts: int) -> FilmError:
    return FilmError(film_path=ref.path, film_id=ref.film_id, stage=step, error_type="WorkerCrashed",
                     message=f"{step} was started on the film {starts} times and its worker never finished (a crash "
                             "in FFmpeg or the models, memory exhausted, or the run stopped each time): not started "
                             "again, so the run goes on. Run it alone to see why; --force tries it again")


def in_flight(output_dir: str, since: float) -> list[dict]:
    """The records of films started since `since` (a time.time()) and not committed: those a stopped run was on."""
    records = [r for r in map(_read, _record_paths(output_dir)) if r is not None]
    return sorted((r for r in records if float(r.get("last_start", 0)) >= since), key=lambda r: r.get("film_path", ""))


def forget_all(output_dir: str) -> int:
    """--force: every film is tried again, however often it was started."""
    paths = _record_paths(output_dir)
    if paths:
        delete_files(paths)
    return len(paths)
