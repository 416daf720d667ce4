"""benchmarks.catalogue: it reads the launcher's own film lines, measures growth once every model is loaded, and
runs end to end on a tiny catalogue (decode only, no models: the mechanics, not the numbers)."""
from __future__ import annotations

import json
import math

from benchmarks import catalogue
from pipeline.run import Progress


def test_film_line_of_the_launcher_is_parsed():
    progress = Progress("/nowhere", "run", {"/films/a.mp4": 10, "/films/b.mp4": 10}, emit=lambda _: None)
    progress.rows = [{}]
    line = progress.film_line({"status": "ok", "film_id": "noise-40s-seed3-0123456789", "duration_s": 40.0,
                               "wall_s": 4.0, "n_clips": 20})
    m = catalogue.FILM_LINE.match(line)
    assert m and (m[1], m[2], m[3], m[4], m[5]) == ("1", "2", "ok", "noise-40s-seed3-0123456789", "40")


def test_progress_line_counts_films_speed_and_the_eta_from_bytes_left():
    """The run line a long nightly run prints every 30 s: films done of those expected, film-hours and the real-time
    factor of the films done, and an ETA from the bytes still to do at the bytes-per-second so far."""
    progress = Progress("/nowhere", "run", {"/f/a.mp4": 100, "/f/b.mp4": 300, "/f/c.mp4": 600}, emit=lambda _: None)
    assert progress.run_line(10.0).endswith("ETA unknown until a film is done")
    progress.rows = [{"film_path": "/f/a.mp4", "status": "ok", "duration_s": 1800.0},
                     {"film_path": "/f/b.mp4", "status": "failed", "duration_s": None}]
    line = progress.run_line(200.0)  # 400 of 1000 bytes in 200 s: 600 more take 300 s
    assert line == ("progress: 2/3 films done (ok 1, failed 1), 0.500 film-hours, 9.0x real time so far, "
                    "elapsed 3m20s, ETA 5m00s")
    progress.rows.append({"film_path": "/f/c.mp4", "status": "ok", "duration_s": 5400.0})
    assert progress.run_line(3700.0).endswith("2.000 film-hours, 1.9x real time so far, elapsed 1h01m")


def test_growth_in_the_steady_state():
    rows = [{"rss_mb": v} for v in (1800, 2090, 2092, 2094, 2096, 2098)]
    g = catalogue.growth(rows, first_asr=2)  # steady from the middle film on (film 4): workers warmed up
    assert (g["rss_first_mb"], g["steady_from_film"], g["rss_steady_first_mb"], g["rss_last_mb"], g["growth_mb"]) == (
        1800, 4, 2094, 2098, 4)
    assert g["slope_mb_per_film"] == 2.0
    late = catalogue.growth(rows, first_asr=5)  # the last model loaded at film 5: steady from there
    assert late["steady_from_film"] == 5 and math.isnan(late["slope_mb_per_film"])  # too few films for a slope


def test_tiny_catalogue_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setattr(catalogue, "CACHE", tmp_path / "bench")
    out = tmp_path / "catalogue.json"
    summary = catalogue.main(["--films", "4", "--seconds", "3", "--width", "160", "--height", "96", "--json", str(out),
                              "--", "--no_score", "--transcribe", "never"])
    rows = json.loads(out.read_text())["rows"]
    assert [r["film"] for r in rows] == [1, 2, 3, 4] and {r["status"] for r in rows} == {"ok"}
    assert summary["films"] == 4 and summary["film_s"] == sum(r["film_s"] for r in rows) > 0
    assert all(0 < r["launcher_mb"] <= r["rss_mb"] <= r["peak_mb"] for r in rows)
    # seed 3 has no subtitles (every third film): the first film with speech recognition on
    [seed3] = [r for r in rows if "-seed3-" in r["film_id"]]
    assert summary["steady_from_film"] == max(seed3["film"], 3)
    assert summary["rss_steady_first_mb"] == rows[summary["steady_from_film"] - 1]["rss_mb"]
    folder = tmp_path / "bench" / "catalogue_4xnoise_160x96_3s_gop8"
    assert not (folder / "noise_160x96_3s_gop8_seed3.srt").exists()
    # --input: films of one's own, here the same four
    again = catalogue.main(["--input", str(folder / "*.mp4"), "--", "--no_score", "--transcribe", "never"])
    assert again["films"] == 4 and again["film_s"] == summary["film_s"]
