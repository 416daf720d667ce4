"""Every kind of damage (testing.films.DAMAGE_KINDS) over real and written films, through pipeline.run (cut and
decoded, not scored, to keep it quick): every film is accounted for and the output is whole
(benchmarks.damaged_media --cli; the scored run is in docs/media.md)."""
import pytest

from benchmarks import damaged_media
from testing.films import DAMAGE_KINDS


@pytest.mark.parametrize("seed", [1, 2])
def test_damaged_films_are_each_scored_or_failed_with_a_reason(tmp_path, seed):
    table = damaged_media.main(["--cli", "--copies", "1", "--seed", str(seed), "--out", str(tmp_path),
                                "--", "--no_score", "--transcribe", "never"])
    assert [row["damage"] for row in table] == list(DAMAGE_KINDS)
    for row in table:
        assert row["problems"] == 0, row
        assert row["scored"] + sum(row["failed"].values()) == row["copies"], row
    assert sum(row["scored"] for row in table) > sum(row["copies"] for row in table) / 2
    # clips on damaged media are marked (bit flips leave no error at all, only frames the decoder concealed)
    assert sum(row["marked"] for row in table) > 0


def test_damaged_packages_and_subtitle_tracks_are_each_accounted_for(tmp_path):
    table = damaged_media.main(["--cli", "--packages", "--copies", "1", "--seed", "1", "--out", str(tmp_path),
                                "--", "--no_score", "--transcribe", "never"])
    assert [row["source"] for row in table] == ["imf", "dcp", "interop", "teletext", "pgs", "vobsub"]
    for row in table:
        assert row["problems"] == 0 and row["films"] >= row["copies"] and row["scored"], row


def test_a_run_killed_by_a_signal_is_run_again_as_the_next_night_would(tmp_path, capsys):
    """A damaged file can crash FFmpeg's decoder now and then (SIGSEGV once in a clean-clone test run): the check
    runs the command again, as the next nightly run would, up to transforms.attempts.MAX_STARTS times."""
    import sys
    marker = tmp_path / "crashed"
    once = (f"import os, pathlib, signal; m = pathlib.Path({str(marker)!r})\n"
            "if not m.exists(): m.write_text('x'); os.kill(os.getpid(), signal.SIGSEGV)\nprint('done')")
    returncode, stdout, _, _ = damaged_media.run_nightly([sys.executable, "-c", once])
    assert returncode == 0 and stdout.strip().endswith("done")
    assert "killed by signal 11: run again" in capsys.readouterr().out
    always = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    assert damaged_media.run_nightly([sys.executable, "-c", always])[0] == -11  # given up after MAX_STARTS more


def test_an_audio_frame_with_more_planes_than_channels_costs_the_frame_not_the_run(tmp_path):
    """A damaged transport stream (a copy of the damaged-media check's, bytes repeated) whose AAC decoder gives one
    frame read as 7.1 with nine planes, the last pointing nowhere: reading its samples to fold them to mono killed
    the process (SIGSEGV in numpy's vstack, every film of the run lost; before 2026-12-07). The frame is left out
    (transforms.mono.whole) and the film is scored."""
    import subprocess
    import sys
    from pathlib import Path

    import pyarrow.parquet as pq
    root = Path(__file__).resolve().parents[1]
    film = root / "tests" / "data" / "aac_frame_with_more_planes_than_channels.ts"
    done = subprocess.run([sys.executable, "-m", "pipeline.run", "--input", str(film), "--output", str(tmp_path),
                           "--no_score", "--transcribe", "never"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = [r for f in (tmp_path / "manifest").rglob("*.parquet") for r in pq.read_table(f).to_pylist()]
    assert [r["status"] for r in rows] == ["ok"] and rows[0]["duration_s"] > 9


def test_a_film_done_in_a_run_that_crashed_and_skipped_by_the_next_is_not_a_problem(tmp_path):
    """run_nightly runs again after a crash, and the next run skips the films the crashed run committed: the check
    takes each film's newest ok or failed row, as the report does (before 2026-12-07 the newest row, a skipped one,
    read as a failure without an error row: 20 false problems after a crash)."""
    import datetime as dt

    import pyarrow.parquet as pq

    from schemas import clips, manifest
    from schemas._base import rows_to_table
    t1 = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.timezone.utc)
    row = {"film_id": "a", "film_path": "/films/a.ts", "size_bytes": 1, "fingerprint": "f", "config_hash": "c",
           "status": "ok", "n_clips": 1, "duration_s": 2.0, "processed_at": t1}
    for run, extra in (("r1", {}), ("r2", {"status": "skipped", "n_clips": None, "processed_at": t1 + dt.timedelta(1)})):
        (tmp_path / "manifest" / run).mkdir(parents=True)
        pq.write_table(rows_to_table([{**row, "run_id": run, **extra}], manifest.SCHEMA),
                       tmp_path / "manifest" / run / "a.parquet")
    (tmp_path / "clips").mkdir()
    clip = {"film_id": "a", "film_path": "/films/a.ts", "fingerprint": "f", "clip_index": 0, "start_s": 0.0,
            "end_s": 2.0, "segment_source": "window", "text_source": "none", "n_frames": 2, "has_audio": True,
            "damaged": [], "run_id": "r1", "config_hash": "c"}
    pq.write_table(rows_to_table([clip], clips.SCHEMA), tmp_path / "clips" / "a.parquet")
    newest, problems = damaged_media.output_problems(["/films/a.ts"], tmp_path)
    assert newest["/films/a.ts"]["status"] == "ok" and problems == []
