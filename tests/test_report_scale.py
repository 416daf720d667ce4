"""The report's cost follows the catalogue, not its age (2026-12-07 scale review): every night writes a skipped row per
film, so manifest/ grows with films x nights; the report reads those skipped files with the columns it needs and
gives the same catalogue as when it read every row whole. And the progress line says what a run does before its
first film commits."""
from __future__ import annotations

import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.report import data as tables
from pipeline.run import Progress
from schemas import TABLES, rows_to_table

UTC = datetime.timezone.utc
NIGHTS = 40


def write(table_dir: Path, name: str, rows: list[dict]) -> None:
    """A manifest file as the pipeline writes it (schemas.manifest, one Parquet file)."""
    table_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows_to_table(rows, TABLES["manifest"]), table_dir / f"{name}.parquet")


def row(run_id: str, film_id: str, status: str, when: datetime.datetime, error=None, n_clips=3) -> dict:
    """A manifest row; a skipped row copies its film's done row, as transforms.write.SkipDone writes it."""
    return {"run_id": run_id, "film_id": film_id, "film_path": f"/f/{film_id}.mp4", "size_bytes": 1000,
            "fingerprint": "fp", "config_hash": "cfg", "model_version": "m1", "status": status,
            "duration_s": 10.0, "n_clips": n_clips, "output_file": None, "error": error, "processed_at": when,
            "wall_s": None if status == "skipped" else 1.5}


def many_nights(out: Path, lone: bool = True) -> Path:
    """An older per-run file (run 'old': ok 'alpha', failed 'broken', and a skipped row), then NIGHTS nightly runs
    in today's layout: a file per film done, and skipped.parquet with every other film. 'gamma' is redone on night
    20; 'lone' (with `lone`) has skipped rows only (its done file removed by hand); nights 30 on share a time."""
    day0 = datetime.datetime(2026, 1, 1, 2, tzinfo=UTC)
    lone_row = [row("old", "lone", "skipped", day0)] if lone else []
    write(out / "manifest", "old", [row("old", "alpha", "ok", day0), *lone_row,
                                    row("old", "broken", "failed", day0, "decode: X: bad")])
    for night in range(1, NIGHTS + 1):
        run, when = f"night{night:03d}", day0 + datetime.timedelta(days=min(night, 30))
        done = {1: ["gamma"], 20: ["gamma"]}.get(night, [])
        for film in done:
            write(out / "manifest" / run, film, [row(run, film, "ok", when, n_clips=night)])
        skipped = [f for f in ("alpha", "broken", "gamma", *(["lone"] if lone else [])) if f not in done]
        write(out / "manifest" / run, "skipped", [
            row(run, f, "skipped", when, "decode: X: bad" if f == "broken" else None) for f in skipped])
    return out


def old_manifest_view(out: Path) -> tuple[pa.Table, list[str], set[str]]:
    """What load_output took from manifest/ before 2026-12-07 (every row, every column, walked in Python): the
    deciding row per film, the runs oldest first, the films the newest run skipped."""
    fs, base = tables._fs(str(out))
    every = tables._read_all(fs, f"{base}/manifest", TABLES["manifest"])
    skipped = pc.fill_null(pc.equal(every.column("status"), "skipped"), False)
    marked = every.append_column("_skipped", skipped)
    keys = [("film_id", "ascending"), ("_skipped", "ascending"), ("processed_at", "descending")]
    ordered = marked.take(pc.sort_indices(marked, keys)).drop_columns(["_skipped"])
    ids = ordered.column("film_id").to_pylist()
    latest = ordered.take([i for i, fid in enumerate(ids) if i == 0 or fid != ids[i - 1]])
    run_times: dict = {}
    for rid, t in zip(every.column("run_id").to_pylist(), every.column("processed_at").to_pylist()):
        run_times[rid] = max(run_times.get(rid, t), t)
    runs = sorted(run_times, key=lambda r: run_times[r])
    last = {r["film_id"] for r in every.select(["film_id", "run_id", "status"]).to_pylist()
            if r["run_id"] == runs[-1] and r["status"] == "skipped"}
    return latest, runs, last


def test_report_data_of_many_nights_is_as_when_every_row_was_read(tmp_path):
    """Many nights of skipped files give the deciding rows, the run list (a tie in time kept in reading order) and
    the newest run's skipped films that reading every row whole gave; a film with only skipped rows is shown by its
    newest, every column, and a film redone keeps its newest done row."""
    out = many_nights(tmp_path / "out")
    latest, runs, last = old_manifest_view(out)
    data = tables.load_output(str(out))
    assert data.manifest.equals(latest)
    assert data.run_ids == runs and data.latest_run_id == runs[-1] == f"night{NIGHTS:03d}"
    assert {f.film_id for f in data.films if f.skipped_last} == last == {"alpha", "broken", "gamma", "lone"}
    by_id = {f.film_id: f for f in data.films}
    assert (by_id["broken"].status, by_id["broken"].error) == ("failed", "decode: X: bad")
    assert (by_id["gamma"].status, by_id["gamma"].run_id) == ("ok", "night020")
    lone = latest.filter(pc.equal(latest.column("film_id"), "lone")).to_pylist()[0]
    assert by_id["lone"].status == "skipped" and lone["run_id"] == "night030"  # the first read of the tied newest
    assert lone["film_path"] == "/f/lone.mp4" and lone["n_clips"] == 3


def test_skipped_files_are_read_with_the_columns_the_report_needs(tmp_path, monkeypatch):
    """A run's skipped file is read with film_id, run_id, status and processed_at only (before 2026-12-07 with every
    column, kept for the whole report: 5,000 films x 300 nights took 1.3 GB); what the scan keeps whole is the done
    rows, and one skipped row per film."""
    out = many_nights(tmp_path / "out", lone=False)
    reads = []
    real = pq.read_table

    def recording(source, *args, columns=None, **kwargs):
        reads.append((str(source).rsplit("/", 1)[-1], columns))
        return real(source, *args, columns=columns, **kwargs)

    monkeypatch.setattr(pq, "read_table", recording)
    data = tables.load_output(str(out))
    skipped_reads = [cols for name, cols in reads if name == "skipped.parquet"]
    assert len(skipped_reads) == NIGHTS + 1  # every night's once, the newest night's again for its skipped films
    assert all(cols is not None and set(cols) <= {"film_id", "run_id", "status", "processed_at"}
               for cols in skipped_reads)
    scan = tables._scan_manifest(tables._fs(str(out))[0], str(out / "manifest"))
    assert sum(len(t) for t in scan.deciding) == 4  # alpha ok, broken failed, gamma ok twice
    assert sorted(scan.newest_skipped.column("film_id").to_pylist()) == ["alpha", "broken", "gamma"]
    assert len(data.films) == 3


def test_progress_says_what_the_run_does_before_its_first_film():
    """Before a film commits the run line says the run is deciding which films are new (a large catalogue's done
    check takes minutes), or checking the films already indexed when none looks new; before 2026-12-07 it said only
    that the ETA was unknown."""
    progress = Progress("/nowhere", "run", {"/f/a.mp4": 100, "/f/b.mp4": 300}, emit=lambda _: None)
    assert progress.run_line(10.0).endswith(
        "elapsed 0m10s, deciding which films are new, then scoring the first (2 look new), "
        "ETA unknown until a film is done")
    idle = Progress("/nowhere", "run", {}, emit=lambda _: None)
    assert idle.run_line(10.0).endswith(", checking the films already indexed (none looks new), "
                                        "ETA unknown until a film is done")
    progress.rows = [{"film_path": "/f/a.mp4", "status": "ok", "duration_s": 60.0}]
    assert "deciding" not in progress.run_line(20.0)
