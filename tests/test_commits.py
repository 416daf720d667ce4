"""Per-film commits: a run killed with SIGKILL keeps every film it committed, the rerun skips exactly those and
the final tables equal an uninterrupted run's; progress lines name each finished film. Real films, real
scoring, `python -m pipeline.run` in a child process (in-process and multi_processing DirectRunner)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.localfilesystem import LocalFileSystem

from testing.films import make_film, write_srt
from tests.scoring_support import ROOT, head_for_tests

N_FILMS = 6
COMPARED = ("film_id", "clip_index", "start_s", "end_s", "text", "emotion", "n_frames", "n_faces", "has_audio")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    d = tmp_path_factory.mktemp("nightly")
    for i in range(N_FILMS):
        make_film(d / f"film{i}.mp4", duration_s=6.0 + i, fps=10, size=(160, 96), cuts=[4.0])
        write_srt(d / f"film{i}.srt", [(1.0, 3.0, "You came back."), (6.0, 8.0, "I never left.")])
    return d


def argv(archive: Path, out: Path, head: str, mode: str) -> list[str]:
    extra = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"] if mode == "multi" else []
    return ["--input", str(archive / "*.mp4"), "--output", str(out), "--head", head, "--transcribe", "never",
            "--segment", "window", "--window_s", "2", "--frames_per_clip", "2", "--batch_size", "8"] + extra


def launch(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "pipeline.run", *args], cwd=ROOT, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def committed(out: Path) -> list[Path]:
    return [f for f in (out / "manifest").rglob("*.parquet") if not f.name.startswith(".")]


def clip_rows(out: Path) -> dict[str, list[tuple]]:
    tables = {f.stem: pq.read_table(f).to_pylist() for f in (out / "clips").glob("*.parquet")}
    return {k: [tuple(r[c] for c in COMPARED) + (round(r["prob_joy"], 4),) for r in sorted(rows, key=lambda r: r["clip_index"])]
            for k, rows in tables.items()}


@pytest.fixture(scope="module")
def reference(archive, tmp_path_factory):
    """One uninterrupted run, in-process, that both modes' reruns must equal: a film's clips are batched within the
    film, so its labels do not depend on the runner's mode (and one run fewer keeps the test run short)."""
    d = tmp_path_factory.mktemp("reference")
    head = head_for_tests(d)
    log = d / "reference.log"
    assert launch(argv(archive, d / "out", head, "inprocess"), log).wait(timeout=600) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert f"film {N_FILMS}/{N_FILMS} ok" in text and "films ok=6" in text  # one line per finished film
    return head, d / "out"


@pytest.mark.parametrize("mode", ["inprocess", "multi"])
def test_killed_run_keeps_committed_films_and_rerun_finishes(archive, reference, tmp_path, mode):
    head, reference = reference
    out = tmp_path / "killed"
    proc = launch(argv(archive, out, head, mode), tmp_path / "killed.log")
    deadline = time.monotonic() + 600
    while not committed(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # no chance to clean up
    proc.wait()
    done = committed(out)
    assert 1 <= len(done) < N_FILMS, "the kill must land after the first commit and before the last"
    for f in (out).rglob("*.parquet"):  # nothing unreadable under a visible name
        if not f.name.startswith("."):
            pq.read_table(f)
    kept = {pq.read_table(f).column("film_id")[0].as_py() for f in done}
    assert kept <= set(clip_rows(out))

    log = tmp_path / "rerun.log"
    assert launch(argv(archive, out, head, mode), log).wait(timeout=600) == 0, log.read_text()[-3000:]
    summary = [ln for ln in log.read_text().splitlines() if ln.startswith("run ")][-1]
    assert f"skipped={len(kept)}" in summary and f"ok={N_FILMS - len(kept)}" in summary
    assert not [f for f in out.rglob("*") if ".tmp-" in f.name]  # the rerun cleaned up what the kill left
    assert clip_rows(out) == clip_rows(reference)  # same clips, same labels as an uninterrupted run
    film_ids = {f.stem for f in (reference / "clips").glob("*.parquet")}
    assert len(film_ids) == N_FILMS and set(clip_rows(out)) == film_ids


def test_a_film_that_kills_its_worker_three_times_is_given_up(tmp_path):
    # A film whose bytes crash FFmpeg or exhaust memory kills the process decoding it; every night it would end the
    # run again. Here the run is killed (SIGKILL) while that film is in flight, three times: the fourth run commits it
    # as failed (decode: WorkerCrashed) without starting it, and the other films are done. It is not started again
    # until --force, which tries it anew.
    from transforms.attempts import ATTEMPTS_DIR, MAX_STARTS
    films = tmp_path / "films"
    make_film(films / "short.mp4", duration_s=3.0, fps=10, size=(160, 96))
    make_film(films / "heavy.mkv", duration_s=120.0, fps=25, size=(640, 360))  # in flight long enough to be killed
    out = tmp_path / "out"
    args = ["--input", str(films / "*"), "--output", str(out), "--no_score", "--transcribe", "never",
            "--segment", "window", "--window_s", "4"]
    for attempt in range(MAX_STARTS):
        proc = launch(args, tmp_path / f"crash{attempt}.log")
        deadline, started = time.monotonic() + 300, False
        while not started and proc.poll() is None and time.monotonic() < deadline:
            records = list((out / ATTEMPTS_DIR).glob("heavy-*.decode.json")) if (out / ATTEMPTS_DIR).exists() else []
            started = bool(records) and f'"starts": {attempt + 1}' in records[0].read_text()
            time.sleep(0.02)
        assert started, (tmp_path / f"crash{attempt}.log").read_text()[-2000:]
        time.sleep(0.3)  # the record is written before the film starts: let it start
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log = tmp_path / "given_up.log"
    assert launch(args, log).wait(timeout=300) == 0, log.read_text()[-3000:]
    run_id = [ln for ln in log.read_text().splitlines() if ln.startswith("run ")][-1].split()[1].rstrip(":")
    rows = {r["film_path"].rsplit("/", 1)[-1]: r for f in (out / "manifest" / run_id).glob("*.parquet")
            for r in pq.read_table(f).to_pylist()}
    assert rows["short.mp4"]["status"] in ("ok", "skipped") and rows["heavy.mkv"]["status"] == "failed"
    assert rows["heavy.mkv"]["error"].startswith("decode: WorkerCrashed: decode was started on the film 3 times")
    assert not list((out / ATTEMPTS_DIR).glob("*.json"))  # committed: its record is gone
    log = tmp_path / "next.log"
    assert launch(args, log).wait(timeout=300) == 0
    assert "skipped=2" in log.read_text()  # failed on its content: not started again
    log = tmp_path / "forced.log"
    assert launch(args + ["--force"], log).wait(timeout=300) == 0, log.read_text()[-3000:]
    assert "films ok=2 failed=0" in log.read_text()  # --force tries it anew (this film is not really a poison)


def test_start_records_count_the_same_bytes_under_the_same_options(tmp_path):
    import dataclasses
    from tests.test_decode import job_for
    from transforms import attempts
    ref = job_for(make_film(tmp_path / "f.mp4", duration_s=1.0)).ref
    out, t0 = str(tmp_path / "out"), time.time()
    assert [attempts.record_start(out, ref, "cfg", "decode") for _ in range(3)] == [0, 1, 2]
    assert [r["starts"] for r in attempts.in_flight(out, t0)] == [3] and not attempts.in_flight(out, time.time() + 1)
    assert attempts.record_start(out, ref, "cfg", "decode") == 3  # given up: the record stays as it was
    assert attempts.record_start(out, ref, "cfg", "probe") == 0  # each step counts its own starts
    changed = dataclasses.replace(ref, fingerprint="new bytes")
    assert attempts.record_start(out, changed, "cfg", "decode") == 0  # a changed file starts counting again
    assert attempts.record_start(out, changed, "new options", "decode") == 0
    attempts.finished(out, ref.film_id, "decode")
    attempts.finished(out, ref.film_id, "probe")
    assert not attempts.in_flight(out, t0) and attempts.record_start(out, ref, "cfg", "decode") == 0
    assert attempts.forget_all(out) == 1 and not attempts.in_flight(out, t0)
    assert attempts.record_start(None, ref, "cfg", "decode") == 0  # no output: nothing recorded
    # stopped between the film's commit and the record's removal (review, 2026-12-07): that start finished
    assert [attempts.record_start(out, ref, "cfg", "decode") for _ in range(2)] == [0, 1]
    commit_ok(Path(out), "r9", ref, 2)
    assert attempts.record_start(out, ref, "cfg", "decode") == 0  # (the commit came after its last start)
    assert attempts.record_start(out, ref, "cfg", "decode") == 1  # a start after the commit counts again
    assert [attempts.record_start(out, ref, "cfg", "decode") for _ in range(2)] == [2, 3]  # given up
    commit_ok(Path(out), "r10", ref, 0)  # (its failed row, committed after the last start)
    assert attempts.record_start(out, ref, "cfg", "decode") == 3  # stays given up


def test_steps_that_killed_their_worker_give_the_film_up_or_go_on_without_its_subtitles(tmp_path):
    from apache_beam.pvalue import TaggedOutput
    from tests.test_decode import job_for
    from transforms import attempts
    from transforms.probe import ProbeFilm
    from transforms.subtitles import LoadSubtitles
    film = make_film(tmp_path / "f.mp4", duration_s=2.0)
    write_srt(tmp_path / "f.srt", [(0.2, 1.5, "Hello there.")])
    job, out = job_for(film), str(tmp_path / "out")
    for step in ("probe", "subtitles"):
        for _ in range(attempts.MAX_STARTS):  # three starts that never finished
            attempts.record_start(out, job.ref, "cfg", step)
    [given_up] = ProbeFilm(out, "cfg").process(job.ref)
    assert isinstance(given_up, TaggedOutput) and given_up.value.error_type == "WorkerCrashed"
    assert given_up.value.fatal and given_up.value.stage == "probe"
    [job_out] = LoadSubtitles("cfg", transcribe="never", output_dir=out).process((job.ref, job.info))
    assert not job_out.cues and "reading the film's subtitles was started 3 times" in job_out.warnings[0].message
    assert not list((tmp_path / "out" / attempts.ATTEMPTS_DIR).glob("*.json"))  # each step's record went after it
    [job_out] = LoadSubtitles("cfg", transcribe="never", output_dir=out).process((job.ref, job.info))
    assert [c.text for c in job_out.cues] == ["Hello there."]  # the next start is a new count


def test_a_film_still_being_copied_is_not_scored_until_it_is_whole(tmp_path):
    # A nightly run finds a film an ingest copy is still writing: the part copied so far decodes (a Matroska file
    # is readable as it grows). Before 2026-12-05 that part was scored and committed 'ok' until the next run.
    from pipeline.run import run
    from tests.test_decode import job_for
    from transforms.decode import DecodeConfig
    from transforms.film import ProcessFilm
    whole = make_film(tmp_path / "whole.mkv", duration_s=12.0, fps=10, size=(160, 96)).read_bytes()
    films = tmp_path / "films"
    films.mkdir()
    growing = films / "growing.mkv"
    growing.write_bytes(whole[: len(whole) // 2])
    job = job_for(growing)  # found half copied
    growing.write_bytes(whole)  # the copy goes on while the film is read
    out = tmp_path / "out"
    [row] = ProcessFilm(str(out), "r1", DecodeConfig(segment="window", window_s=4.0)).process(job)
    assert row["status"] == "failed" and row["error"].startswith("fingerprint: FileChanged: the file changed")
    assert not (out / "clips").exists()
    # the next run takes the whole file (a failure at fingerprint is retried)
    summary = run(["--input", str(films), "--output", str(out), "--no_score", "--transcribe", "never",
                   "--segment", "window", "--window_s", "4"], save_main_session=False)
    assert summary["ok"] == 1 and summary["clips"] == 3


def test_a_copy_that_set_its_final_size_first_is_not_scored_while_it_is_written(tmp_path):
    # rsync --preallocate, robocopy and SMB copies set the file's final size, then fill it: its size never changes.
    # Before 2026-12-07 the part written by the time the film was read was committed 'ok' (4 s of a 6 s film, found
    # in review); the fingerprint step's modification time tells it now.
    import dataclasses
    import os
    from tests.test_decode import job_for
    from transforms.decode import DecodeConfig
    from transforms.discover import FingerprintFilm
    from transforms.film import ProcessFilm
    whole = make_film(tmp_path / "whole.mkv", duration_s=6.0, fps=10, size=(160, 96)).read_bytes()
    film = tmp_path / "films" / "pre.mkv"
    film.parent.mkdir()
    film.write_bytes(whole[: len(whole) // 2] + bytes(len(whole) - len(whole) // 2))  # its size set, half written
    [found] = FingerprintFilm._fingerprinted(job_for(film).ref)
    assert found.modified_ns == os.stat(film).st_mtime_ns
    job = dataclasses.replace(job_for(film), ref=found)
    with open(film, "r+b") as f:  # the copy goes on, the size the same
        f.seek(len(whole) // 2)
        f.write(whole[len(whole) // 2:])
    os.utime(film, ns=(found.modified_ns, found.modified_ns + 2_000_000_000))
    out = tmp_path / "out"
    [row] = ProcessFilm(str(out), "r1", DecodeConfig(segment="window", window_s=2.0)).process(job)
    assert row["status"] == "failed" and "its size the same, written 2.0 s after it was found" in row["error"]
    assert not (out / "clips").exists()
    os.utime(film, ns=(found.modified_ns, found.modified_ns))  # as found: scored
    [row] = ProcessFilm(str(out), "r2", DecodeConfig(segment="window", window_s=2.0)).process(job)
    assert row["status"] == "ok"


def test_a_storage_that_fails_mid_film_fails_the_film_for_the_next_run_to_retry(tmp_path):
    # A read that fails in the storage (a network share or an object store dropping the connection: EIO), not in the
    # film's bytes. Before 2026-12-05 it read as the film's end: the part read so far was committed 'ok' with a
    # warning and never read again. Now the film fails at `read`, which the next run retries; a truncated file (the
    # film's own) still keeps what decodes.
    from testing.films import encode_film, speech_like
    from testing.flaky_fs import FAILING, PREFIX
    from transforms.decode import DecodeConfig
    from transforms.discover import film_id_for
    from transforms.elements import FilmJob, FilmRef
    from transforms.film import ProcessFilm
    from transforms.probe import ProbeFilm, probe_film
    from transforms.write import SkipDone
    local = encode_film(tmp_path / "film.mp4", paint=lambda i, t: np.full((240, 320, 3), (i * 7) % 255, np.uint8),
                        frame_times=[i / 25 for i in range(500)], fps=25, size=(320, 240), video_codec="h264",
                        audio=speech_like(20.0))
    path = PREFIX + str(local)
    ref = FilmRef(path, local.stat().st_size, film_id_for(path), "fp")
    job = FilmJob(ref, probe_film(path), (), needs_asr=False, config_hash="cfg")
    cfg = DecodeConfig(segment="window", window_s=4.0, image_size=32)
    [ok] = ProcessFilm(str(tmp_path / "whole"), "r1", cfg).process(job)  # through the same path, nothing failing
    assert ok["status"] == "ok" and ok["n_clips"] == 5
    FAILING[str(local)] = (0.5, 0.6)
    try:
        [row] = ProcessFilm(str(tmp_path / "out"), "r1", cfg).process(job)
        assert row["status"] == "failed" and row["error"].startswith("read: ReadFailed: reading stopped at ")
        assert "(a storage or network error, not the file's content: the next run tries again)" in row["error"]
        assert not (tmp_path / "out" / "clips").exists()  # nothing of the part read is published
        assert not SkipDone._still_valid(row)  # the next run reads it again
        FAILING[str(local)] = (0.0, 1.0)  # the storage fails from the first byte: probing fails at `read` too
        [err] = ProbeFilm().process(ref)
        assert err.value.stage == "read" and err.value.error_type == "OSError"
    finally:
        FAILING.clear()


def test_subtitles_the_storage_fails_to_give_fail_the_film_for_the_next_run(tmp_path):
    # A sidecar (or an embedded track, or captions) that cannot be read because the storage failed is not a film
    # without subtitles: before 2026-12-05 it was scored without them, for good.
    from testing.flaky_fs import FAILING, PREFIX
    from transforms.decode import DecodeConfig
    from transforms.discover import film_id_for
    from transforms.elements import FilmRef
    from transforms.film import ProcessFilm
    from transforms.probe import probe_film
    from transforms.subtitles import LoadSubtitles
    local = make_film(tmp_path / "film.mp4", duration_s=4.0)
    write_srt(tmp_path / "film.srt", [(0.5, 2.0, "Hello there.")])
    path = PREFIX + str(local)
    ref, info = FilmRef(path, local.stat().st_size, film_id_for(path), "fp"), probe_film(path)
    [job] = LoadSubtitles("cfg", transcribe="never").process((ref, info))
    assert [c.text for c in job.cues] == ["Hello there."]  # read through the flaky filesystem while it works
    FAILING[str(tmp_path / "film.srt")] = (0.0, 1.0)
    try:
        [job] = LoadSubtitles("cfg", transcribe="never").process((ref, info))
    finally:
        FAILING.clear()
    [err] = job.warnings
    assert err.fatal and err.stage == "read" and err.message.startswith("reading the film's subtitles failed: ")
    [row] = ProcessFilm(str(tmp_path / "out"), "r1", DecodeConfig(image_size=32)).process(job)
    assert row["status"] == "failed" and row["error"].startswith("read: ReadFailed: reading the film's subtitles")
    assert not (tmp_path / "out" / "clips").exists()


# ---------------------------------------------------------------------------------------------------------
# Ids, moves and publishing on real files, through SkipDone and commit_film as a nightly run calls them

def found(path: Path):
    """A file as discovery and its fingerprint step hand it to SkipDone."""
    from transforms.discover import FingerprintFilm, film_id_for
    from transforms.elements import FilmRef
    [ref] = FingerprintFilm().process(FilmRef(str(path), path.stat().st_size, film_id_for(str(path))))
    return ref


def night(out: Path, run_id: str, refs: list) -> dict:
    """SkipDone over the films a night finds: path -> the FilmRef to process, 'skipped', or 'moved' (commit_move)."""
    from transforms.elements import FilmRef
    from transforms.write import SkipDone, content_key, load_done_films
    step = SkipDone(load_done_films(str(out)), "cfg", run_id, output_dir=str(out))
    claimants = [content_key(r) for r in refs]
    got = {ref.path: list(step.process(ref, claimants)) for ref in refs}
    return {p: (g[0] if isinstance(g[0], FilmRef) else "skipped") if g else "moved" for p, g in got.items()}


def commit_ok(out: Path, run_id: str, ref, n_clips: int, config: str = "cfg") -> None:
    """What ProcessFilm commits for a film cut into n_clips clips."""
    from transforms.write import commit_film, manifest_row
    rows = [{"film_id": ref.film_id, "film_path": ref.path, "fingerprint": ref.fingerprint, "clip_index": i,
             "start_s": float(i), "end_s": i + 1.0, "segment_source": "window", "text_source": "none", "n_frames": 2,
             "has_audio": True, "run_id": run_id, "config_hash": config} for i in range(n_clips)]
    commit_film(str(out), run_id, manifest_row(run_id, ref, config, "ok", n_clips=n_clips, duration_s=float(n_clips)),
                clip_rows=rows)


def clips_of(out: Path) -> dict[str, tuple[set, int]]:
    """clips file name -> (the paths its rows name, how many rows)."""
    tables = {f.name: pq.read_table(f) for f in (out / "clips").glob("*.parquet")}
    return {n: (set(t.column("film_path").to_pylist()), t.num_rows) for n, t in tables.items()}


def test_a_new_film_at_the_path_a_film_moved_from_gets_an_id_of_its_own(tmp_path):
    # A moved film keeps the id of its first path. Before 2026-12-06 a different film delivered later at that path
    # took the same id (the path's old row, and film_id_for): the two shared one clips, manifest and errors file and
    # overwrote each other every night. Films that never moved keep the ids they have.
    from transforms.discover import film_id_for
    from transforms.elements import FilmError
    from transforms.write import CommitFailure
    arch, out = tmp_path / "archive", tmp_path / "out"
    (arch / "lib").mkdir(parents=True)
    p1, p2, still = arch / "a.mkv", arch / "lib" / "a.mkv", arch / "still.mkv"
    p1.write_bytes(b"film A")
    still.write_bytes(b"film C")
    a, c = found(p1), found(still)
    assert night(out, "r1", [a, c]) == {a.path: a, c.path: c}
    commit_ok(out, "r1", a, 3)
    commit_ok(out, "r1", c, 2)
    p1.rename(p2)
    a2 = found(p2)
    assert night(out, "r2", [a2, c]) == {a2.path: "moved", c.path: "skipped"}
    p1.write_bytes(b"film B, delivered under the name film A had")
    # a night B cannot be read: its failure is committed under its path's id, unchecked, and takes nothing from A
    list(CommitFailure(str(out), "r3", "cfg").process(FilmError(
        str(p1), "fingerprint", "PermissionError", "denied", film_id=film_id_for(str(p1)))))
    b = found(p1)
    todo = night(out, "r4", [a2, b, c])
    assert todo[a2.path] == todo[c.path] == "skipped"
    assert todo[b.path].film_id == film_id_for(b.path, b.content_fingerprint) != a.film_id
    commit_ok(out, "r4", todo[b.path], 5)
    assert night(out, "r5", [a2, b, c]) == {a2.path: "skipped", b.path: "skipped", c.path: "skipped"}
    assert clips_of(out) == {f"{a.film_id}.parquet": ({a2.path}, 3), f"{todo[b.path].film_id}.parquet": ({b.path}, 5),
                             f"{film_id_for(c.path)}.parquet": ({c.path}, 2)}


def test_a_film_moved_back_to_where_it_was_is_a_move_again(tmp_path):
    # Before 2026-12-06 a film moved a -> b and back to a was skipped against its row from before the move: its
    # clips kept naming b, and every night it was counted gone.
    from apache_beam.io.filesystem import FileMetadata
    from pipeline.run import gone_films
    from transforms.write import load_done_films
    arch, out = tmp_path / "archive", tmp_path / "out"
    (arch / "lib").mkdir(parents=True)
    p1, p2 = arch / "a.mkv", arch / "lib" / "a.mkv"
    p1.write_bytes(b"film A")
    a = found(p1)
    commit_ok(out, "r1", a, 3)
    p1.rename(p2)
    assert night(out, "r2", [found(p2)]) == {str(p2): "moved"}
    p2.rename(p1)
    assert night(out, "r3", [a]) == {a.path: "moved"}
    row = load_done_films(str(out))[a.path]
    assert (row["run_id"], row["film_id"], row["moved_from"], row["n_clips"]) == ("r3", a.film_id, str(p2), 3)
    assert clips_of(out) == {f"{a.film_id}.parquet": ({a.path}, 3)}
    assert gone_films([f"{arch}/**"], {f"{arch}/**": [FileMetadata(a.path, a.size_bytes)]},
                      load_done_films(str(out))) == []
    assert night(out, "r4", [a]) == {a.path: "skipped"}


def test_a_film_scored_in_a_hidden_folder_before_is_not_gone_every_night(tmp_path):
    # Films inside hidden folders (.snapshot, .Trash-1000) are left out of listings since 2026-12-06; those scored
    # before are not counted gone night after night. A film that did leave the archive still is.
    from apache_beam.io.filesystem import FileMetadata
    from pipeline.run import gone_films
    from transforms.write import load_done_films
    arch, out = tmp_path / "archive", tmp_path / "out"
    (arch / ".snapshot").mkdir(parents=True)
    films = [arch / ".snapshot" / "a.mkv", arch / "b.mkv", arch / "c.mkv"]
    for i, p in enumerate(films):
        p.write_bytes(b"film %d" % i)
        commit_ok(out, "r1", found(p), 1)
    films[2].unlink()
    listed = {f"{arch}/**": [FileMetadata(str(films[1]), films[1].stat().st_size)]}
    assert [r["film_path"] for r in gone_films([f"{arch}/**"], listed, load_done_films(str(out)))] == [str(films[2])]


class NoReplaceFileSystem(LocalFileSystem):
    """noreplace://<local path>: local files whose rename refuses an existing destination, as HDFS's does."""

    @classmethod
    def scheme(cls) -> str:
        return "noreplace"

    def create(self, path, *args, **kw):
        return super().create(_local(path), *args, **kw)

    def open(self, path, *args, **kw):
        return super().open(_local(path), *args, **kw)

    def exists(self, path) -> bool:
        return super().exists(_local(path))

    def delete(self, paths) -> None:
        super().delete([_local(p) for p in paths])

    def rename(self, sources, destinations) -> None:
        if any(os.path.exists(_local(d)) for d in destinations):
            raise BeamIOError("rename refused: the destination exists", {})
        super().rename([_local(p) for p in sources], [_local(p) for p in destinations])


def _local(path: str) -> str:
    return path.removeprefix("noreplace://")


def test_a_publish_that_fails_leaves_the_committed_file_whole(tmp_path):
    # A film is redone (new options); while its files are staged, another launcher's clean_output removes them, or a
    # rename fails on the object store. Before 2026-12-06 publish deleted the committed clips file and renamed again:
    # the second failure left the film 'ok' in the manifest with no clips file.
    import pyarrow as pa
    from transforms.write import (atomic_write_table, clean_output, clips_intact, delete_files, load_done_films,
                                  publish, read_table, stage_table)
    out = tmp_path / "out"
    (tmp_path / "a.mkv").write_bytes(b"film A")
    a = found(tmp_path / "a.mkv")
    commit_ok(out, "r1", a, 3)
    clips = str(out / "clips" / f"{a.film_id}.parquet")
    staged = stage_table(read_table(clips).slice(0, 1), clips)
    assert clean_output(str(out)) == 1  # the staged file, removed under the commit
    with pytest.raises(Exception):
        publish(staged, clips)
    assert clips_intact(clips, load_done_films(str(out))[a.path]["n_clips"])
    # where a rename refuses to replace a file, the old one stays until the new one is in place
    path = f"noreplace://{tmp_path}/hdfs/t.parquet"
    atomic_write_table(pa.table({"v": [1]}), path)
    atomic_write_table(pa.table({"v": [2, 3]}), path)
    assert read_table(path).column("v").to_pylist() == [2, 3] and os.listdir(tmp_path / "hdfs") == ["t.parquet"]
    staged = stage_table(pa.table({"v": [4]}), path)
    delete_files([staged])
    with pytest.raises(Exception):
        publish(staged, path)
    assert read_table(path).column("v").to_pylist() == [2, 3]


def test_a_film_redone_without_transcripts_loses_its_old_transcripts(tmp_path):
    # Before 2026-12-06 a film redone without --write_transcripts (or whose speech was not recognised this time) kept
    # its old transcripts file beside the new clips: lines the new clips were not read from. A film that fails
    # keeps its old set whole (its old clips stay too, and the report hides both).
    from transforms.write import FilmError, commit_film, manifest_row
    out = tmp_path / "out"
    (tmp_path / "a.mkv").write_bytes(b"film A")
    a = found(tmp_path / "a.mkv")
    said = [{"film_id": a.film_id, "film_path": a.path, "utterance_index": 0, "start_s": 0.0, "end_s": 1.0,
             "text": "hello", "asr_model": "whisper"}]
    clips = [{"film_id": a.film_id, "film_path": a.path, "fingerprint": a.fingerprint, "clip_index": 0,
              "start_s": 0.0, "end_s": 1.0,
              "segment_source": "asr", "text_source": "asr", "n_frames": 2, "has_audio": True, "run_id": "r1",
              "config_hash": "cfg"}]
    transcripts = out / "transcripts" / f"{a.film_id}.parquet"
    commit_film(str(out), "r1", manifest_row("r1", a, "cfg", "ok", n_clips=1), clip_rows=clips, transcripts=said)
    assert pq.read_table(transcripts).column("text").to_pylist() == ["hello"]
    commit_film(str(out), "r2", manifest_row("r2", a, "cfg", "failed", error="decode: boom"),
                errors=[FilmError(a.path, "decode", "Boom", "boom", film_id=a.film_id)])
    assert transcripts.exists()
    commit_film(str(out), "r3", manifest_row("r3", a, "cfg2", "ok", n_clips=1), clip_rows=clips, transcripts=[])
    assert not transcripts.exists() and (out / "clips" / f"{a.film_id}.parquet").exists()


def test_a_crash_between_a_films_clips_and_features_never_pairs_new_clips_with_old_tokens(tmp_path, monkeypatch):
    # Found in review (2026-12-07): the clips file is renamed into place before the features file; a run killed
    # between the two left the new clips beside the old features, and a rescore then read the old tokens as the new
    # clips' (another line's label). The old features file goes first now: the film has no features until its run
    # finishes (rescore refuses it, the next run redoes it).
    from transforms import write
    from transforms.fuse import features_row
    out = tmp_path / "out"
    (tmp_path / "a.mkv").write_bytes(b"film A")
    a = found(tmp_path / "a.mkv")

    def clips(run_id):
        return [{"film_id": a.film_id, "film_path": a.path, "fingerprint": a.fingerprint, "clip_index": 0,
                 "start_s": 0.0, "end_s": 1.0, "segment_source": "window", "text_source": "none", "n_frames": 2,
                 "has_audio": True, "run_id": run_id, "config_hash": "cfg"}]
    tokens = [features_row(a.film_id, a.path, 0, {"text": np.ones((2, 4), np.float32)}, "enc", {"text": 4})]
    write.commit_film(str(out), "r1", write.manifest_row("r1", a, "cfg", "ok", n_clips=1), clip_rows=clips("r1"),
                      features=tokens)
    features = out / "features" / f"{a.film_id}.parquet"
    assert features.exists()
    real = write.publish

    def killed(tmp, path):
        if "/features/" in path:
            raise KeyboardInterrupt  # the run dies between the two renames
        return real(tmp, path)
    monkeypatch.setattr(write, "publish", killed)
    with pytest.raises(KeyboardInterrupt):
        write.commit_film(str(out), "r2", write.manifest_row("r2", a, "cfg", "ok", n_clips=1), clip_rows=clips("r2"),
                          features=tokens)
    assert pq.read_table(out / "clips" / f"{a.film_id}.parquet").column("run_id").to_pylist() == ["r2"]
    assert not features.exists()  # not the old tokens beside the new clips


def test_a_replaced_film_that_fails_loses_the_clips_of_its_old_bytes(tmp_path):
    # A film re-delivered as bytes that fail: its old clips, features and transcripts are of bytes no longer there.
    # Before 2026-12-06 they stayed, and the README's direct readings of clips/ counted them beside a failed film
    # the report showed without clips. The same bytes failing (a retry next run) keep theirs (test above).
    from transforms.write import FilmError, commit_film, manifest_row
    out = tmp_path / "out"
    (tmp_path / "a.mkv").write_bytes(b"film A")
    a = found(tmp_path / "a.mkv")
    clips = [{"film_id": a.film_id, "film_path": a.path, "fingerprint": a.fingerprint, "clip_index": 0,
              "start_s": 0.0, "end_s": 1.0, "segment_source": "asr", "text_source": "asr", "n_frames": 2,
              "has_audio": True, "run_id": "r1", "config_hash": "cfg"}]
    said = [{"film_id": a.film_id, "film_path": a.path, "utterance_index": 0, "start_s": 0.0, "end_s": 1.0,
             "text": "hello", "asr_model": "whisper"}]
    commit_film(str(out), "r1", manifest_row("r1", a, "cfg", "ok", n_clips=1), clip_rows=clips, transcripts=said)
    films = [out / table / f"{a.film_id}.parquet" for table in ("clips", "transcripts")]
    (tmp_path / "a.mkv").write_bytes(b"not a film any more")
    b = found(tmp_path / "a.mkv")
    assert b.film_id == a.film_id and b.fingerprint != a.fingerprint
    commit_film(str(out), "r2", manifest_row("r2", b, "cfg", "failed", error="probe: not a film"),
                errors=[FilmError(b.path, "probe", "NotAFilm", "not a film", film_id=b.film_id)])
    assert not any(f.exists() for f in films)
    assert (out / "manifest" / "r2" / f"{a.film_id}.parquet").exists()


def test_the_done_index_sees_a_manifest_a_relaunched_run_rewrote(tmp_path):
    # A job relaunched with the same --run_id (a scheduler's retry) rewrites manifest/<run_id>/<film>.parquet. Before
    # 2026-12-06 the index named its files by path only, so the rewritten row was never read: the film's old config
    # hash stood, and the film was redone (or skipped) against it night after night.
    from transforms.write import _done_files, _read_done_index, load_done_films, write_done_index
    out = tmp_path / "out"
    (tmp_path / "a.mkv").write_bytes(b"film A")
    a = found(tmp_path / "a.mkv")
    commit_ok(out, "nightly", a, 1, config="c1")
    write_done_index(str(out))
    commit_ok(out, "nightly", a, 1, config="c2")
    assert load_done_films(str(out))[a.path]["config_hash"] == "c2"
    assert load_done_films(str(out)) == load_done_films(str(out), use_index=False)
    assert write_done_index(str(out))[a.path]["config_hash"] == "c2"
    rows, covered = _read_done_index(str(out), _done_files(str(out)))  # the new index is read, not read past
    assert [r["config_hash"] for r in rows] == ["c2"] and covered == set(_done_files(str(out)))


def test_a_scorer_that_fails_fails_the_film_for_the_next_run_and_never_counts_a_crash(tmp_path, monkeypatch):
    """A scoring failure outside the per-clip isolation (an allocation that fails once) is not the film's bytes: the
    film fails at `score`, commits no clips and is retried next run (it was recorded as `decode` and never tried
    again). Models that cannot load stop the step before the film's start is recorded, and a commit that raises
    (a full disk) clears it: only a worker that dies leaves a start, else three such runs gave up a healthy film as
    WorkerCrashed."""
    from model.featurize import Featurizer
    from transforms.decode import DecodeConfig
    from transforms.discover import film_id_for
    from transforms.elements import FilmJob, FilmRef
    from transforms.film import ProcessFilm
    from transforms.probe import probe_film
    from transforms.score import FilmScorer, ScoreConfig
    from transforms.write import SkipDone
    film = make_film(tmp_path / "good.mp4", duration_s=3.0)
    ref = FilmRef(str(film), film.stat().st_size, film_id_for(str(film)), "fp")
    job = FilmJob(ref=ref, info=probe_film(str(film)), cues=(), needs_asr=False, config_hash="c")
    real, calls = Featurizer.evidence, []

    def fails_once(self, tokens):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("DefaultCPUAllocator: can't allocate memory")
        return real(self, tokens)
    monkeypatch.setattr(Featurizer, "evidence", fails_once)
    out = tmp_path / "out"
    scorer = FilmScorer(ScoreConfig(modalities=("vision",)))
    [row] = ProcessFilm(str(out), "r1", DecodeConfig(image_size=32), scorer).process(job)
    assert row["status"] == "failed" and row["error"].startswith("score: MemoryError")
    assert not (out / "clips").exists() and not SkipDone._still_valid(row, str(out))  # retried, nothing half kept
    [again] = ProcessFilm(str(out), "r2", DecodeConfig(image_size=32), scorer).process(job)
    assert again["status"] == "ok"

    class CannotLoad:
        cfg = ScoreConfig()

        def load(self):
            raise RuntimeError("CUDA error: out of memory (while loading the encoders)")
    step = ProcessFilm(str(tmp_path / "out2"), "r1", DecodeConfig(image_size=32), CannotLoad())
    for _ in range(4):
        with pytest.raises(RuntimeError, match="while loading"):
            list(step.process(job))
    assert not list((tmp_path / "out2").glob("_attempts/*"))  # no start recorded: the film is not given up
    from transforms import film as film_module

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(film_module, "commit_film", full_disk)
    with pytest.raises(OSError, match="No space"):
        list(ProcessFilm(str(tmp_path / "out3"), "r1", DecodeConfig(image_size=32)).process(job))
    assert not list((tmp_path / "out3").glob("_attempts/*.json"))  # the start cleared: the worker did not die


def test_a_speech_model_the_workers_cannot_load_fails_the_film_for_the_next_run(tmp_path):
    """A --asr_model the workers cannot load (a folder that is no model here; on a cluster, a path only the launcher
    has) fails each film that needs speech recognition at `score`, which the next run retries, with a message naming
    the model and what to do. Before 2026-12-06 it was a warning row: the film was committed 'ok' without its
    recognised lines or transcripts, and later runs skipped it for good."""
    from pipeline.run import run
    from transforms.write import read_rows, table_files
    films = tmp_path / "films"
    make_film(films / "talk.mp4", duration_s=4.0, fps=10, size=(160, 96))
    broken = tmp_path / "models" / "whisper-broken"
    broken.mkdir(parents=True)  # there for the launcher's check, not a model
    out = tmp_path / "out"
    args = ["--input", str(films), "--output", str(out), "--no_score", "--transcribe", "always", "--asr_model",
            str(broken), "--write_transcripts", "--segment", "window", "--window_s", "2"]
    first = run(args, save_main_session=False)
    assert (first["ok"], first["failed"]) == (0, 1)
    [row] = read_rows(table_files(str(out), "manifest", first["run_id"]), "manifest")
    assert row["error"].startswith("score: ") and str(broken) in row["error"] and "--asr_model" in row["error"]
    assert not (out / "clips").exists() and not (out / "transcripts").exists()
    assert not list(out.glob("_attempts/*.json"))  # the model failed to load, the film did not kill a worker
    again = run(args, save_main_session=False)  # retried, not skipped
    assert (again["failed"], again["skipped"]) == (1, 0)


def test_a_second_link_to_a_listed_folder_moves_its_films_and_counts_none_gone(tmp_path):
    # A catalogue's folder listed through archive/by-title/show one night, through a second link added beside it
    # (archive/a-index/show) the next: before 2026-12-06 its films were scored again under new ids and their first
    # paths, still there, counted gone. Now the same file at the new path is a move: id and outputs kept.
    from apache_beam.io.filesystem import FileMetadata
    from pipeline.run import gone_films
    from transforms.write import load_done_films
    arch, out = tmp_path / "archive", tmp_path / "out"
    (tmp_path / "vol1" / "show").mkdir(parents=True)
    (tmp_path / "vol1" / "show" / "ep1.mkv").write_bytes(b"episode 1")
    (arch / "by-title").mkdir(parents=True)
    (arch / "by-title" / "show").symlink_to(tmp_path / "vol1" / "show")
    first = found(arch / "by-title" / "show" / "ep1.mkv")
    commit_ok(out, "r1", first, 2)
    (arch / "a-index").mkdir()
    (arch / "a-index" / "show").symlink_to(tmp_path / "vol1" / "show")
    again = found(arch / "a-index" / "show" / "ep1.mkv")
    assert night(out, "r2", [again]) == {again.path: "moved"}
    row = load_done_films(str(out))[again.path]
    assert (row["film_id"], row["moved_from"], row["n_clips"]) == (first.film_id, first.path, 2)
    assert clips_of(out) == {f"{first.film_id}.parquet": ({again.path}, 2)}
    assert night(out, "r3", [again]) == {again.path: "skipped"}
    listed = {f"{arch}/**": [FileMetadata(again.path, again.size_bytes)]}
    assert gone_films([f"{arch}/**"], listed, load_done_films(str(out))) == []
    # gone_films on its own: the first path's row, still there and the same file as a listed path, is not gone
    only_first = {first.path: load_done_films(str(out))[again.path] | {"film_path": first.path}}
    assert gone_films([f"{arch}/**"], listed, only_first) == []


def test_a_film_moved_or_deleted_while_the_run_goes_on_is_tried_again(tmp_path):
    # Listed and fingerprinted, then moved before its turn: the probe's FileNotFoundError was a `probe` failure, a
    # stage decided by the file's bytes, so the film (same bytes) was skipped at its new path every night after,
    # with no clips and that error (found in review, 2026-12-07). The file not there is not its bytes: `read`.
    from apache_beam.pvalue import TaggedOutput
    from transforms.elements import FilmJob
    from transforms.film import film_failure
    from transforms.probe import ProbeFilm
    from transforms.write import CommitFailure, SkipDone, error_summary
    arch, out = tmp_path / "archive", tmp_path / "out"
    (arch / "b").mkdir(parents=True)
    first, moved = arch / "a.mkv", arch / "b" / "a.mkv"
    first.write_bytes(b"film A")
    a = found(first)
    assert night(out, "r1", [a]) == {a.path: a}
    first.rename(moved)
    [err] = ProbeFilm().process(a)
    assert isinstance(err, TaggedOutput) and (err.value.stage, err.value.error_type) == ("read", "FileNotFoundError")
    list(CommitFailure(str(out), "r1", "cfg").process(err.value))
    todo = night(out, "r2", [found(moved)])[str(moved)]
    assert todo != "skipped" and todo.film_id == a.film_id  # scored now, under the id it had
    # gone between the probe and the decoder's open (or made unreadable): the same
    gone = film_failure(FilmJob(a, None, (), needs_asr=False, config_hash="cfg"),
                        FileNotFoundError(2, "No such file or directory", a.path))
    assert gone.stage == "read" and not SkipDone._still_valid({"status": "failed", "error": error_summary(gone)})
    # the file's own bytes still wait for the file to change
    assert SkipDone._still_valid({"status": "failed", "error": "probe: InvalidDataError: not a readable media file"})


def test_a_clips_file_a_killed_run_left_under_other_options_is_not_skipped(tmp_path):
    """Found in review (2026-12-07): night 2 ran with other options (`--frame_every_s 2`: the same count of clips)
    and was killed between its clips file's rename and its manifest row's; night 3, back on night 1's options, found
    night 1's manifest row, a whole clips file with its count, and skipped the film, whose clips were night 2's.
    Now the clips file's rows must carry the manifest row's config hash (its footer's statistics say which)."""
    import pyarrow.parquet as pq
    from transforms.write import clips_intact, publish, stage_table, written_config
    arch, out = tmp_path / "archive", tmp_path / "out"
    arch.mkdir()
    (arch / "a.mkv").write_bytes(b"film A")
    a = found(arch / "a.mkv")
    commit_ok(out, "r1", a, 3)  # night 1: config 'cfg'
    clips = out / "clips" / f"{a.film_id}.parquet"
    assert written_config(pq.ParquetFile(clips).metadata) == "cfg" and night(out, "r2", [a]) == {a.path: "skipped"}
    other = tmp_path / "other"  # night 2's clips, config 'cfg2', renamed into place; its manifest row never written
    commit_ok(other, "r2", a, 3, config="cfg2")
    publish(stage_table(pq.read_table(other / "clips" / f"{a.film_id}.parquet"), str(clips)), str(clips))
    assert clips_intact(str(clips), 3) and not clips_intact(str(clips), 3, "cfg")
    assert night(out, "r3", [a]) == {a.path: a}  # scored again, not skipped


def test_a_film_whose_table_is_over_the_file_size_limit_fails_alone(tmp_path):
    """Found in review (2026-12-07): one film whose output file was over the size a file may have (`ulimit -f`, a
    FAT / exFAT or quota maximum: EFBIG) ended the run with a traceback, no summary and no row, every night; the
    films after it were never scored. Now that film fails at `write` with its errors row (tried again next run),
    the others are committed, and the run ends with its summary, exit status 0."""
    import resource

    from testing.films import make_film
    arch, out = tmp_path / "archive", tmp_path / "out"
    make_film(arch / "a_short.mp4", duration_s=2.0)
    make_film(arch / "b_long.mp4", duration_s=600.0, fps=2)  # 600 one-second clips: a clips file of about 16 KB

    def limit():  # (Python ignores SIGXFSZ: a write past the limit fails with EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (13_000, 13_000))
    done = subprocess.run([sys.executable, "-m", "pipeline.run", "--input", str(arch), "--output", str(out),
                           "--no_score", "--transcribe", "never", "--segment", "window", "--window_s", "1"],
                          preexec_fn=limit, capture_output=True, text=True, timeout=300, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "films ok=1 failed=1" in done.stdout and "write: FileTooLarge" in done.stdout
    manifest = {r["film_path"].rsplit("/", 1)[-1]: r for r in pq.read_table(out / "manifest").to_pylist()}
    assert manifest["a_short.mp4"]["status"] == "ok" and manifest["b_long.mp4"]["status"] == "failed"
    [err] = [r for r in pq.read_table(out / "errors").to_pylist() if r["fatal"]]
    assert err["stage"] == "write" and "over the size a file may have under --output" in err["message"]
    assert [p.name.split("-")[0] for p in (out / "clips").glob("*.parquet")] == ["a"]


def test_a_moved_film_whose_outputs_cannot_be_named_anew_under_the_size_limit_is_scored_again(tmp_path):
    """A film found moved has its outputs rewritten to name its new path (commit_move); where a file size limit
    (EFBIG) refused that, the run ended with a traceback (found in review, 2026-12-07). Now the film is scored again
    (where it fails alone if its tables are still over the limit), and the others go on."""
    import resource
    arch, out = tmp_path / "archive", tmp_path / "out"
    (arch / "lib").mkdir(parents=True)
    (arch / "a.mkv").write_bytes(b"film A")
    a = found(arch / "a.mkv")
    commit_ok(out, "r1", a, 40)  # a clips file of about 12 KB
    (arch / "a.mkv").rename(arch / "lib" / "a.mkv")
    moved = found(arch / "lib" / "a.mkv")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # (Python ignores SIGXFSZ: the write fails with EFBIG)
    try:
        todo = night(out, "r2", [moved])[moved.path]
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert todo != "moved" and todo.film_id == a.film_id  # to be scored, under the id it had
    assert night(out, "r3", [moved]) == {moved.path: "moved"}  # without the limit the move is written as before


def test_skip_done_pairs_each_films_bytes_with_one_path_whatever_the_nights_moves(tmp_path, monkeypatch):
    """SkipDone's decision on hand-made done rows and films found (review of 2026-12-07's same-night moves): a film
    indexed before manifest 1.2 (no content fingerprint) beside a copy indexed since keeps its id when the copy moves;
    of two indexed copies both rewritten while one new copy of their bytes appears, one id goes to the new copy and
    the other is redone at its path (before the fix both took new ids and one id was left to nobody); three films
    rotating names each keep their id."""
    import datetime
    from transforms.discover import film_id_for
    from transforms.elements import FilmRef
    from transforms.write import SKIPPED_TAG, SkipDone
    monkeypatch.setattr(SkipDone, "_still_valid", staticmethod(lambda *a, **k: True))
    monkeypatch.setattr("transforms.write.commit_move", lambda *a, **k: None)

    def row(name, film_id, content, day=0, recorded=True):
        r = {"film_path": str(tmp_path / name), "film_id": film_id, "fingerprint": f"fp-{name}-{content}",
             "processed_at": datetime.datetime(2026, 1, 1 + day), "status": "ok", "config_hash": "c", "n_clips": 1,
             "output_file": None}
        return {**r, "content_fingerprint": content} if recorded else r

    def night(rows, found):
        for f in tmp_path.glob("*.mp4"):
            f.unlink()
        refs = []
        for name, content, fp in found:
            (tmp_path / name).write_bytes(b"x")
            path = str(tmp_path / name)
            refs.append(FilmRef(path, 1, film_id_for(path), fp or f"fp-{name}-{content}", content))
        step = SkipDone({r["film_path"]: r for r in rows}, "c", "r")
        claimants = [(r.content_fingerprint, r.path) for r in refs]
        out = {}
        for ref in refs:
            [o] = step.process(ref, claimants)
            out[Path(ref.path).name] = o.value["film_id"] if getattr(o, "tag", None) == SKIPPED_TAG else o.film_id
        return out

    ids = night([row("a_orig.mp4", "A", "X", recorded=False), row("q.mp4", "Q", "X", day=1)],
                [("a_orig.mp4", "X", "fp-a_orig.mp4-X"), ("z.mp4", "X", "fp-q.mp4-X")])
    assert ids == {"a_orig.mp4": "A", "z.mp4": "Q"}
    ids = night([row("p1.mp4", "P1", "X"), row("p2.mp4", "P2", "X", day=1)],
                [("p1.mp4", "Y", None), ("p2.mp4", "Z", None), ("p3.mp4", "X", None)])
    assert ids["p3.mp4"] in ("P1", "P2") and len(set(ids.values())) == 3
    assert {"P1", "P2"} <= set(ids.values()), ids  # the id the copy did not take stays at its path
    ids = night([row("a.mp4", "A", "XA"), row("b.mp4", "B", "XB"), row("c.mp4", "C", "XC")],
                [("a.mp4", "XB", "fp-b.mp4-XB"), ("b.mp4", "XC", "fp-c.mp4-XC"), ("c.mp4", "XA", "fp-a.mp4-XA")])
    assert ids == {"a.mp4": "B", "b.mp4": "C", "c.mp4": "A"}
