"""The media half end to end on DirectRunner: mixed good and broken films, manifest, skips, --force, scorer seam."""
import os
import re
import time
from pathlib import Path

import apache_beam as beam

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model.featurize import frames_for
from pipeline.run import build_pipeline, main, run
from schemas import clips as clips_schema
from transforms.score import ClipResult, ScoreConfig
from testing.films import make_audio_only, make_film, make_text_as_video, make_truncated, make_zero_byte, write_srt

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "media"
BASE = ["--no_score", "--transcribe", "never", "--image_size", "32"]


def table(out, name):
    """Every row of a table: clips/<film>.parquet, or the per-run directories of manifest/ and errors/."""
    files = sorted(f for f in Path(out, name).rglob("*.parquet") if not f.name.startswith("."))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


def newest_manifest(out):
    runs = sorted((d for d in Path(out, "manifest").iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime_ns)
    return [r for f in sorted(runs[-1].glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    d = tmp_path_factory.mktemp("archive")
    make_film(d / "talk.mp4", duration_s=6.0)
    write_srt(d / "talk.en.srt", [(0.5, 2.0, "Where were you?"), (3.0, 5.0, "Out.")], encoding="utf-16")
    make_film(d / "embedded.mkv", duration_s=5.0, subtitles=[(1.0, 3.0, "Embedded line")])
    make_film(d / "bad_audio.mkv", duration_s=3.0, garbage_audio=True)
    make_audio_only(d / "radio.m4a", duration_s=3.0)
    make_zero_byte(d / "zero.mp4")
    make_text_as_video(d / "notes.mp4")
    make_truncated(d / "truncated.mp4")
    return d


def test_mixed_archive_run_then_skip_then_force(archive, tmp_path, capsys):
    out = tmp_path / "out"
    inputs = ["--input", str(archive / "*")]
    real = MEDIA / "odd" / "video-only.mov"
    if real.exists():
        inputs += ["--input", str(real)]
    assert main(inputs + ["--output", str(out)] + BASE) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "films ok=" in line and "real-time factor=" in line

    manifest = newest_manifest(out)
    status = {Path(r["film_path"]).name: r["status"] for r in manifest}
    expected_ok = {"talk.mp4", "embedded.mkv", "bad_audio.mkv", "radio.m4a"} | ({real.name} if real.exists() else set())
    assert {k for k, v in status.items() if v == "ok"} == expected_ok
    assert {k for k, v in status.items() if v == "failed"} == {"zero.mp4", "notes.mp4", "truncated.mp4"}
    assert "talk.en.srt" not in status  # sidecars are not films

    errors = table(out, "errors")
    fatal = {Path(e["film_path"]).name for e in errors if e["fatal"]}
    assert fatal == {"zero.mp4", "notes.mp4", "truncated.mp4"}
    assert any(e["stage"] == "decode" and not e["fatal"] and "bad_audio" in e["film_path"] for e in errors)

    clips = {Path(r["film_path"]).name: r for r in manifest if r["status"] == "ok"}
    talk = pq.read_table(clips["talk.mp4"]["output_file"])
    assert talk.schema.metadata[b"table"] == b"clips"
    rows = talk.to_pylist()
    assert [r["text"] for r in rows if r["text"]] == ["Where were you?", "Out."]
    assert all(r["language"] == "en" for r in rows if r["text"])
    assert rows[-1]["end_s"] == pytest.approx(6.0, abs=0.1) and all(r["emotion"] is None for r in rows)
    assert all(r["n_frames"] == frames_for(r["start_s"], r["end_s"], 4) and r["has_audio"] for r in rows)
    radio = pq.read_table(clips["radio.m4a"]["output_file"]).to_pylist()
    assert all(r["n_frames"] == 0 and r["has_audio"] for r in radio)
    assert sum(r["n_clips"] for r in manifest) == sum(len(pq.read_table(r["output_file"])) for r in clips.values())
    assert not list(out.rglob("*.tmp-*"))  # atomic writes leave no temp files

    # Second run: everything is skipped, including the films whose bytes cannot be read.
    summary = run(inputs + ["--output", str(out)] + BASE)
    assert summary["skipped"] == len(status) and summary["ok"] == summary["failed"] == 0
    # A deleted clips file, one cut short, a changed film and a new film are redone; the rest skipped.
    Path(clips["embedded.mkv"]["output_file"]).unlink()
    cut = Path(clips["talk.mp4"]["output_file"])
    cut.write_bytes(cut.read_bytes()[:-100])
    make_film(archive / "radio.m4a", duration_s=2.0, audio=True)
    summary = run(inputs + ["--output", str(out)] + BASE)
    redone = {Path(r["film_path"]).name for r in newest_manifest(out) if r["status"] == "ok"}
    assert redone == {"embedded.mkv", "talk.mp4", "radio.m4a"}
    # An --output moved elsewhere: its films are checked where they are now (the manifests name the old place).
    import shutil
    out = Path(shutil.move(out, tmp_path / "moved"))
    summary = run(inputs + ["--output", str(out)] + BASE)
    assert summary["skipped"] == len(status) and summary["ok"] == summary["failed"] == 0
    # --force redoes all; a different configuration also redoes all.
    summary = run(inputs + ["--output", str(out), "--force"] + BASE)
    assert summary["ok"] == len(expected_ok) and summary["failed"] == 3 and summary["skipped"] == 0
    summary = run(inputs + ["--output", str(out), "--window_s", "2"] + BASE)
    assert summary["skipped"] == 0


@pytest.mark.skipif(not (MEDIA / "sintel").exists(), reason="shared media not present")
def test_sintel_trailer_clip_texts_match_its_vtt(tmp_path):
    summary = run(["--input", str(MEDIA / "sintel" / "sintel_trailer.mp4"), "--output", str(tmp_path)] + BASE)
    assert summary["ok"] == 1 and summary["hours"] == pytest.approx(52.2 / 3600, rel=0.02)
    rows = table(tmp_path, "clips")
    dialogue = [r for r in rows if r["text"]]
    assert [r["text"] for r in dialogue] == [
        "What brings you to the land of the gatekeepers?", "I'm searching for someone.",
        "A dangerous quest for a lone hunter.", "I've been alone for as long as I can remember."]
    assert dialogue[0]["start_s"] == pytest.approx(11.85) and dialogue[0]["end_s"] == pytest.approx(14.23)
    assert all(r["text_source"] == "subtitle" and r["language"] == "en" for r in dialogue)
    assert rows[0]["start_s"] == 0.0 and rows[-1]["end_s"] == pytest.approx(52.2, abs=0.1)


class BrightnessScorer:
    """A stand-in head for the scorer seam (transforms.score.FilmScorer's interface): it derives real
    per-clip columns from the decoded frames."""
    model_version = "brightness-v1"
    encoder_version = "none"
    cfg = ScoreConfig(batch_size=3)

    def load(self):
        return self

    def score(self, clips):
        def one(c):
            bright = float(c.frames.mean() / 255.0) if len(c.frames) else 0.0
            return ClipResult(tokens={}, failures=(), scores={
                "confidence": bright, "emotion": "joy" if bright > 0.5 else "sadness",
                "model_version": self.model_version})
        return [one(c) for c in clips]


class LoadMarkingScorer(BrightnessScorer):
    """Leaves a file behind when its models are loaded (the DoFn is pickled: a file outlives the copies)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def load(self):
        with open(self.marker, "a") as f:
            f.write("load\n")
        return self


def test_the_driver_imports_no_torch(tmp_path):
    """The driver process builds the pipeline and lists films; models load in the workers. Neither importing
    pipeline.run nor naming the models (model_version: skips and provenance) may pull torch in: torch and
    torchvision cost the driver about 4 s while the other cores waited. The head's tuned-weight digests need
    torch once per head file; later launches read them from the cache folder."""
    import os
    import subprocess
    import sys
    code = ("import sys, pipeline.run as r; from apache_beam.options.pipeline_options import PipelineOptions; "
            "fo = PipelineOptions(['--input', 'x', '--output', 'y']).view_as(r.FilmEmotionOptions); "
            "v = r._default_scorer(fo).model_version; "
            "print(v, 'torch' in sys.modules, 'torchvision' in sys.modules)")
    env = dict(os.environ, FILM_EMOTION_CACHE=str(tmp_path / "cache"))

    def launch() -> list[str]:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                             cwd=Path(__file__).resolve().parents[1])
        return out.stdout.split()

    first, second = launch(), launch()  # the first launch fills the digest file
    assert second[0] == first[0] and second[0].startswith("bvpec-")
    assert second[1:] == ["False", "False"], second


def test_a_run_with_nothing_new_loads_no_model(archive, tmp_path):
    out, marker = tmp_path / "nightly", tmp_path / "loaded.txt"
    args = ["--input", str(archive / "talk.mp4"), "--output", str(out), "--transcribe", "never",
            "--image_size", "32"]
    assert run(args, scorer=LoadMarkingScorer(marker))["ok"] == 1
    assert marker.exists()  # loaded for the film it scored
    marker.unlink()
    assert run(args, scorer=LoadMarkingScorer(marker))["skipped"] == 1
    assert not marker.exists()  # every film skipped: no model loaded


def test_a_worker_that_loaded_models_skips_the_collectors_walk_at_exit():
    """freeze_at_exit (called where a worker loads its models) freezes the heap before the interpreter's
    teardown collects it: a handler registered earlier runs after it (atexit is last in, first out) and sees the
    objects frozen; the exit status stays the script's own."""
    import subprocess
    import sys
    code = ("import atexit, gc, sys; atexit.register(lambda: print('frozen', gc.get_freeze_count() > 1000)); "
            "from transforms.film import freeze_at_exit; freeze_at_exit(); freeze_at_exit(); "
            "keep = [[i] for i in range(10000)]; sys.exit(3)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.split() == ["frozen", "True"] and out.returncode == 3, out.stderr[-2000:]


def test_scorer_seam_joins_scores_and_keys_skips_by_model_version(archive, tmp_path):
    out = tmp_path / "scored"
    args = ["--input", str(archive / "talk.mp4"), "--output", str(out), "--transcribe", "never",
            "--image_size", "32"]
    s1 = run(args, scorer=BrightnessScorer())
    rows = table(out, "clips")
    assert rows and all(r["model_version"] == "brightness-v1" and r["emotion"] in ("joy", "sadness")
                        and 0.0 < r["confidence"] < 1.0 for r in rows)
    assert newest_manifest(out)[0]["model_version"] == "brightness-v1"
    assert run(args, scorer=BrightnessScorer())["skipped"] == 1  # same head: skip

    class NewHead(BrightnessScorer):
        model_version = "brightness-v2"
    assert run(args, scorer=NewHead())["ok"] == 1  # new head: re-score
    assert s1["config_hash"] != run(args + ["--force"], scorer=NewHead())["config_hash"]
    assert set(clips_schema.SCHEMA.names) >= {"emotion", "confidence", "model_version"}


def test_help_lists_every_option(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for opt in ("--input", "--output", "--segment", "--frames_per_clip", "--image_size", "--force", "--transcribe",
                "--no_score", "--runner"):
        assert opt in text
    # each option's default, as the README's table gives it (before 2026-12-07 most were not shown)
    flat = " ".join(text.split())
    for shown in ("Window clip length in seconds. (default: 4.0)", "(default: subtitle)", "(default: 224)"):
        assert shown in flat, shown


def test_build_pipeline_requires_input_and_output():
    from apache_beam.options.pipeline_options import PipelineOptions
    with pytest.raises(ValueError):
        build_pipeline(beam.Pipeline(), PipelineOptions(["--output", "/tmp/x"]))


def test_users_malloc_arena_setting_wins(tmp_path, monkeypatch):
    """The launcher caps glibc's heap arenas for the workers it starts, while the run lasts (a program that runs
    pipelines in-process gets its environment back), unless the user exported a value."""
    from pipeline.run import worker_environment
    make_film(tmp_path / "short.mp4", duration_s=2.0)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "3")
    assert run(["--input", str(tmp_path / "*.mp4"), "--output", str(tmp_path / "out")] + BASE,
               save_main_session=False)["ok"] == 1
    assert os.environ["MALLOC_ARENA_MAX"] == "3"
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    with worker_environment():
        assert os.environ["MALLOC_ARENA_MAX"] == "1"  # what the run's workers inherit
    assert "MALLOC_ARENA_MAX" not in os.environ
    assert run(["--input", str(tmp_path / "*.mp4"), "--output", str(tmp_path / "out2")] + BASE,
               save_main_session=False)["ok"] == 1
    assert "MALLOC_ARENA_MAX" not in os.environ


def test_inputs_that_match_no_film(archive, tmp_path, caplog):
    """A pattern that matches no film is named in the log; when none matches (a typo, an unmounted archive)
    the run stops with a message and a failed exit status, and writes nothing."""
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match="no film file matches --input"):
        run(["--input", str(tmp_path / "missing" / "*.mp4"), "--input", str(archive / "*.srt"),
             "--output", str(out)] + BASE, save_main_session=False)
    assert not out.exists()
    caplog.set_level("WARNING", logger="pipeline.run")
    caplog.clear()
    summary = run(["--input", str(archive / "talk.mp4"), "--input", str(tmp_path / "typo*.mkv"),
                   "--output", str(out)] + BASE, save_main_session=False)
    assert summary["ok"] == 1
    assert [r.getMessage() for r in caplog.records if r.name == "pipeline.run" and r.levelname == "WARNING"] == [
        f"--input {tmp_path / 'typo*.mkv'} matches no film file"]
    # A folder of image-sequence frames (a DPX scan, EXR plates): not one failed film per frame, but counted and said
    # (before 2026-12-06 each frame was a film that failed at probe).
    (tmp_path / "scan").mkdir()
    for i in range(3):
        (tmp_path / "scan" / f"reel1.{i:07d}.dpx").write_bytes(os.urandom(512))
    (tmp_path / "scan" / "plate.0001.EXR").write_bytes(os.urandom(512))
    with pytest.raises(SystemExit, match=r"no film file matches --input .*scan.* \(4 image-sequence frame\(s\) "
                                         r"\(3 .dpx, 1 .exr\) are not read: render each sequence to a film"):
        run(["--input", str(tmp_path / "scan"), "--output", str(out)] + BASE, save_main_session=False)
    # Downloads not finished: not read, counted and said (a .part was scored, then the film again once complete)
    (tmp_path / "scan" / "film.mkv.part").write_bytes(os.urandom(512))
    caplog.clear()
    with pytest.raises(SystemExit):
        run(["--input", str(tmp_path / "scan"), "--output", str(out)] + BASE, save_main_session=False)
    assert any("1 file(s) still being downloaded or copied (1 .part) are not read" in r.getMessage()
               for r in caplog.records)
    # Backup copies (an editor's film.mkv~, a tool's .bak / .orig) were each scored as a film of their own, a copy's
    # clips counted twice (before 2026-12-07); notes and pictures beside the films are counted in one line
    for name in ("film.mkv~", "film.mkv.bak", "film.mkv.orig", "notes.txt", "poster.jpg", "film.mkv.tmp"):
        (tmp_path / "scan" / name).write_bytes(os.urandom(512))
    caplog.clear()
    caplog.set_level("INFO", logger="pipeline.run")
    with pytest.raises(SystemExit):
        run(["--input", str(tmp_path / "scan"), "--output", str(out)] + BASE, save_main_session=False)
    said = [r.getMessage() for r in caplog.records if r.name == "pipeline.run"]
    assert "--input: 3 backup copie(s) (1 .bak, 1 .orig, 1 ~) are not read: each is a copy of a film scored under " \
           "its own name" in said, said
    assert "--input: 2 file(s) that are not films are not scored (subtitles, pictures, notes: 1 .jpg, 1 .txt)" in said
    assert any("2 file(s) still being downloaded or copied (1 .part, 1 .tmp)" in m for m in said)


def test_output_folder_with_pattern_characters(archive, tmp_path):
    """`out [v2]/`: the output's own name is taken literally, so the second run finds the first's manifest."""
    out = tmp_path / "out [v2]"
    first = run(["--input", str(archive / "talk.mp4"), "--output", str(out)] + BASE, save_main_session=False)
    left = out / "clips" / ".talk.parquet.tmp-0001"  # what a killed run leaves: the next run's clean-up removes it
    left.write_bytes(b"partial")
    again = run(["--input", str(archive / "talk.mp4"), "--output", str(out)] + BASE, save_main_session=False)
    assert first["ok"] == 1 and first["clips"] > 0 and (again["ok"], again["skipped"]) == (0, 1)
    assert not left.exists()


def test_an_output_that_cannot_be_a_folder(archive, tmp_path):
    """--output must be a folder: a file there, or a path through a file, stops the run before any film."""
    (tmp_path / "taken").write_text("not a folder")
    films = ["--input", str(archive / "talk.mp4")] + BASE
    with pytest.raises(SystemExit, match="is a file; give a folder"):
        run(films + ["--output", str(tmp_path / "taken")], save_main_session=False)
    with pytest.raises(SystemExit, match="cannot create --output"):
        run(films + ["--output", str(tmp_path / "taken" / "out")], save_main_session=False)


def test_option_values_no_film_can_be_cut_or_scored_with_stop_the_launch(archive, tmp_path):
    """--window_s 0 failed every film of the run at decode; --frames_per_clip 0 or --face_width 10 ran and quietly
    scored no frame or found no face. Now the launch stops with one message naming each bad value, and nothing is
    written; the documented special values (0: FFmpeg's threads, the square frame for faces, every frame) pass."""
    from pipeline.options import FilmEmotionOptions, option_problems
    from apache_beam.options.pipeline_options import PipelineOptions
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match=r"--window_s must be >= 0.1 s \(got 0.0\); --frames_per_clip must be >= 1"):
        run(["--input", str(archive), "--output", str(out), "--window_s", "0", "--frames_per_clip", "0"],
            save_main_session=False)
    assert not out.exists()
    with pytest.raises(SystemExit, match=r"--direct_num_workers must be >= 0 \(got -3"):  # (Beam's IndexError before)
        run(["--input", str(archive), "--output", str(out), "--direct_num_workers", "-3"], save_main_session=False)
    bad = {"--max_clip_s": "0.5", "--hop_s": "-1", "--min_clip_s": "-1", "--context_lines": "-1",
           "--image_size": "10", "--face_width": "10", "--batch_size": "0", "--torch_threads": "-1",
           "--decode_threads": "-2", "--asr_cpu_threads": "-1", "--shot_threshold": "0", "--frame_every_s": "-1",
           # a model path that is not there, or a name no run knows: one message at launch, not a traceback
           "--modalities": "text,smell", "--text_languages": "klingon", "--head": str(tmp_path / "nope.pt"),
           # no modality at all (every label the prior), and values that are not finite (2026-12-06)
           "--window_s": "inf",
           "--vision_model": "nope.onnx", "--text_model": "./nope", "--asr_model": "~/nope"}
    # values past any sane choice (a typo): 1e-6 s windows planned clips until memory ran out, 100000 px frames failed
    # every film in FFmpeg's scaler, 10,000 threads made a clip 30 times slower, '' read every language (2026-12-07)
    absurd = [("--window_s", "1e-6"), ("--hop_s", "0.001"), ("--image_size", "100000"), ("--face_width", "99999999"),
              ("--torch_threads", "10000"), ("--decode_threads", "100000"), ("--asr_cpu_threads", "9999"),
              ("--batch_size", "1000000"), ("--frames_per_clip", "1000"), ("--text_languages", ""),
              ("--text_languages", ",")]
    for flag, value in list(bad.items()) + [("--modalities", ","), ("--hop_s", "inf"), ("--shot_threshold", "inf"),
                                         ("--frame_every_s", "inf")] + absurd:
        problems = option_problems(PipelineOptions([flag, value]).view_as(FilmEmotionOptions))
        assert len(problems) == 1 and problems[0].startswith(flag), (flag, problems)
    special = ["--face_width", "0", "--decode_threads", "0", "--torch_threads", "0", "--frame_every_s", "0",
               "--context_lines", "0", "--min_clip_s", "0", "--modalities", "text,face", "--text_languages", "any",
               # names, not paths: a hub model, a Whisper size, a timm model (looked up in the local caches)
               "--text_model", "sentence-transformers/all-MiniLM-L6-v2", "--asr_model", "small",
               "--vision_model", "vit_small_patch14_dinov2.lvd142m", "--head", "gs://bucket/head.pt"]
    assert option_problems(PipelineOptions(special).view_as(FilmEmotionOptions)) == []
    assert option_problems(PipelineOptions([]).view_as(FilmEmotionOptions)) == []
    # --device cuda: checked where the models run here (a local runner), not for a cluster's GPU workers
    import torch
    cuda = PipelineOptions(["--device", "cuda"]).view_as(FilmEmotionOptions)
    assert option_problems(cuda, "DataflowRunner") == []
    for runner in (None, "DirectRunner", "direct", "PrismRunner"):
        local = option_problems(cuda, runner)
        assert local == [] if torch.cuda.is_available() else local[0].startswith("--device cuda: torch sees no CUDA")


def test_one_run_at_a_time_per_output(archive, tmp_path, caplog):
    """A live run's lock stops a second run on the same output before its clean-up touches anything; a lock whose
    run is gone is taken over; a finished run leaves no lock."""
    import json
    import socket
    import subprocess
    import sys

    from pipeline.output_lock import LOCK_NAME, STALE_S

    out = tmp_path / "out"
    films = ["--input", str(archive / "talk.mp4"), "--output", str(out)] + BASE
    assert run(films, save_main_session=False)["ok"] == 1 and not (out / LOCK_NAME).exists()
    temp = out / "clips" / ".talk.parquet.tmp-0001"  # a live run's file being written
    temp.write_bytes(b"partial")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = {"host": socket.gethostname(), "pid": other.pid, "started": 0, "heartbeat": time.time()}
        (out / LOCK_NAME).write_text(json.dumps(live))
        with pytest.raises(SystemExit, match=f"another run is writing to this --output .*pid {other.pid}"):
            run(films + ["--force"], save_main_session=False)
        assert temp.exists() and json.loads((out / LOCK_NAME).read_text()) == live
    finally:
        other.kill()
        other.wait()
    caplog.set_level("WARNING", logger="pipeline.run")
    assert run(films + ["--force"], save_main_session=False)["ok"] == 1  # its process is gone: taken over
    assert "taking over the lock" in caplog.text and not (out / LOCK_NAME).exists()
    # on another machine only the heartbeat tells: a lock not renewed for STALE_S is stale
    (out / LOCK_NAME).write_text(json.dumps({**live, "host": "elsewhere", "heartbeat": time.time() - STALE_S - 1}))
    assert run(films + ["--force"], save_main_session=False)["ok"] == 1
    (out / LOCK_NAME).write_text(json.dumps({**live, "host": "elsewhere", "heartbeat": time.time()}))
    with pytest.raises(SystemExit, match="another run is writing"):
        run(films, save_main_session=False)


def _lock_on(folder, held):
    """A lock file under `folder` as another run would leave it; `held` is its JSON, or the bytes of a partial one."""
    import json

    from pipeline.output_lock import LOCK_NAME
    path = folder / LOCK_NAME
    path.write_bytes(held if isinstance(held, bytes) else json.dumps(held).encode())
    return path


def test_a_lock_caught_half_written_is_held_until_the_file_itself_is_stale(tmp_path, caplog):
    """A live run's lock read mid-write is not a gone run's: it stops the second run until the file is STALE_S old."""
    import json

    from pipeline.output_lock import STALE_S, OutputLock
    path = _lock_on(tmp_path, b'{"host": "elsewhere", "pid": 4')
    with pytest.raises(SystemExit, match="another run is writing to this --output .*being written or unreadable"):
        OutputLock(str(tmp_path)).acquire()
    assert path.read_bytes() == b'{"host": "elsewhere", "pid": 4'
    old = time.time() - STALE_S - 1  # a launcher killed while writing it, long ago
    os.utime(path, (old, old))
    caplog.set_level("WARNING", logger="pipeline.run")
    lock = OutputLock(str(tmp_path))
    lock.acquire()
    assert "taking over the lock" in caplog.text and lock.mine(json.loads(path.read_text()))


def test_the_heartbeat_never_leaves_a_partial_lock_to_read(tmp_path, monkeypatch):
    """Another launcher reading while this one renews sees a whole lock every time, and no temp file stays behind."""
    import json
    import threading

    from pipeline import output_lock
    monkeypatch.setattr(output_lock, "HEARTBEAT_S", 0.0)
    lock = output_lock.OutputLock(str(tmp_path))
    lock.acquire()
    done = threading.Event()

    def beat():
        while not done.is_set():
            lock.renew()

    beating = threading.Thread(target=beat)
    beating.start()
    try:
        reads = [json.loads((tmp_path / output_lock.LOCK_NAME).read_bytes() or b"null") for _ in range(3000)]
    finally:
        done.set()
        beating.join()
    assert all(lock.mine(r) for r in reads)
    assert sorted(os.listdir(tmp_path)) == sorted([output_lock.LOCK_NAME, output_lock.GUARD_NAME])


def test_the_heartbeat_stops_a_run_whose_lock_another_took(tmp_path, monkeypatch):
    """A run paused past STALE_S looks gone and its lock is taken; its next heartbeat stops it, leaving the other's."""
    import json

    from pipeline import output_lock
    monkeypatch.setattr(output_lock, "HEARTBEAT_S", 0.0)
    lock = output_lock.OutputLock(str(tmp_path))
    lock.acquire()
    other = {"host": "elsewhere", "pid": 7, "started": time.time(), "heartbeat": time.time()}
    path = _lock_on(tmp_path, other)
    with pytest.raises(SystemExit, match="another run took over the lock on this --output .*host elsewhere, pid 7"):
        lock.renew()
    assert json.loads(path.read_text()) == other
    lock.release()  # not this run's any more: left alone
    assert json.loads(path.read_text()) == other


def _take_over(out: str, start, got) -> None:
    """A launcher (its own process) that acquires the lock at the barrier and holds it a moment, as a run would."""
    from pipeline.output_lock import OutputLock
    lock = OutputLock(out)
    start.wait()
    try:
        lock.acquire()
    except SystemExit:
        return
    got.put(os.getpid())
    time.sleep(0.3)
    lock.release()


def test_of_launchers_taking_over_a_gone_runs_lock_at_once_one_gets_it(tmp_path):
    """Two launchers find a killed run's lock at the same moment: each judged it gone and rewrote it, so both ran
    (found in review, 2026-12-07: 12 of 20 tries). The flock on GUARD_NAME lets one process have it."""
    import json
    import multiprocessing
    import socket

    from pipeline.output_lock import LOCK_NAME
    ctx = multiprocessing.get_context("fork")
    gone = ctx.Process(target=time.sleep, args=(0,))
    gone.start()
    gone.join()
    for attempt in range(6):
        out = tmp_path / str(attempt)
        out.mkdir()
        (out / LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": gone.pid, "started": 0,
                                                 "heartbeat": time.time()}))
        start, got = ctx.Barrier(2), ctx.Queue()
        launchers = [ctx.Process(target=_take_over, args=(str(out), start, got)) for _ in range(2)]
        for p in launchers:
            p.start()
        for p in launchers:
            p.join(30)
        winners = []
        while not got.empty():
            winners.append(got.get())
        assert len(winners) == 1, attempt


def test_a_live_run_whose_lock_file_was_deleted_still_stops_a_second(tmp_path):
    """The lock file deleted by hand under a live run (its message once said to, for a run that is gone): the second
    launcher made a new one and both ran. The live run's flock stops it; once the run ends the output is free."""
    from pipeline.output_lock import LOCK_NAME, OutputLock
    first = OutputLock(str(tmp_path))
    first.acquire()
    (tmp_path / LOCK_NAME).unlink()
    with pytest.raises(SystemExit, match="another run is writing to this --output or starting on it"):
        OutputLock(str(tmp_path)).acquire()
    first.release()
    second = OutputLock(str(tmp_path))
    second.acquire()
    second.release()
    assert not (tmp_path / LOCK_NAME).exists()


def test_of_launchers_starting_at_once_on_a_free_output_one_gets_the_lock(tmp_path):
    """Creating a local lock is exclusive: a launcher that looked before another created it stops, not both run."""
    import threading

    from pipeline.output_lock import OutputLock
    for attempt in range(10):
        out = tmp_path / str(attempt)
        out.mkdir()
        locks = [OutputLock(str(out)) for _ in range(6)]
        for i, lock in enumerate(locks):  # launchers on other machines: only the lock file tells them apart
            lock.me["host"] = f"machine-{i}"
        start, won, stopped = threading.Barrier(len(locks)), [], []

        def launch(lock):
            start.wait()
            try:
                lock.acquire()
                won.append(lock)
            except SystemExit:
                stopped.append(lock)

        threads = [threading.Thread(target=launch, args=(lock,)) for lock in locks]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1 and len(stopped) == len(locks) - 1, attempt


def test_a_film_keeps_the_id_an_earlier_run_gave_it(tmp_path):
    # Ids of non-ASCII names changed (Épisode -> 'episode-...', was 'pisode-...'). A catalogue indexed before
    # keeps its ids: a film redone (here by --force) replaces its clips file rather than adding a second one.
    archive, out = tmp_path / "archive", tmp_path / "out"
    archive.mkdir()
    make_film(archive / "Épisode deux.mp4", duration_s=3.0)
    args = ["--input", str(archive / "*"), "--output", str(out)] + BASE
    assert run(args)["ok"] == 1
    new_id = newest_manifest(out)[0]["film_id"]
    assert new_id.startswith("episode-deux-")
    # Make it look like the earlier release's output: its id without the É.
    old_id = "pisode-deux-" + new_id.rsplit("-", 1)[1]
    for f in out.rglob(f"{new_id}.parquet"):
        t = pq.read_table(f)
        cols = {n: ([old_id] * t.num_rows if n == "film_id" else t[n]) for n in t.column_names}
        if "output_file" in cols:
            cols["output_file"] = [str(out / "clips" / f"{old_id}.parquet")] * t.num_rows
        pq.write_table(pa.table(cols, schema=t.schema), f.with_name(f"{old_id}.parquet"))
        f.unlink()
    assert run(args + ["--force"])["ok"] == 1
    assert [f.name for f in (out / "clips").glob("*.parquet")] == [f"{old_id}.parquet"]
    assert newest_manifest(out)[0]["film_id"] == old_id
    assert {r["film_id"] for r in table(out, "clips")} == {old_id}


def test_a_moved_film_keeps_its_outputs_and_id(tmp_path):
    """An archive reorganised (a folder renamed, films moved from an ingest folder to the library): a film found at
    a new path, its old path gone, with an earlier film's fingerprint and options is not decoded or scored again;
    its outputs stay, under its id, and name the new path, with a FilmMoved warning row. Before, it was scored again
    under a new id and its old clips file stayed beside the new one: the film counted twice. A copy beside the
    original is a film of its own; a moved film whose options changed is redone under its id, replacing its rows."""
    old, new, out = tmp_path / "ingest", tmp_path / "library", tmp_path / "out"
    make_film(old / "talk.mp4", duration_s=5.0)
    write_srt(old / "talk.en.srt", [(0.5, 2.0, "Where were you?")])
    make_film(old / "quiet.mp4", duration_s=4.0)
    def argv(folder):
        return ["--input", str(folder / "*.mp4"), "--output", str(out), "--write_transcripts"] + BASE
    first = run(argv(old))
    assert first["ok"] == 2
    before = {r["film_id"]: r for r in newest_manifest(out)}
    old.rename(new)  # the folder renamed: names, sizes and times of the films and their sidecars kept
    moved = run(argv(new))
    assert (moved["ok"], moved["moved"], moved["skipped"], moved["clips"], moved["hours"]) == (2, 2, 0, 0, 0.0)
    rows = {r["film_id"]: r for r in newest_manifest(out)}
    assert {r["moved_from"] for r in rows.values()} == {str(old / "talk.mp4"), str(old / "quiet.mp4")}
    assert set(rows) == set(before) and sorted(p.name for p in (out / "clips").glob("*.parquet")) == sorted(
        f"{i}.parquet" for i in before)
    for film_id, r in rows.items():
        assert r["film_path"].startswith(str(new)) and r["run_id"] == moved["run_id"] and r["wall_s"] == 0.0
        assert (r["output_file"], r["n_clips"], r["fingerprint"]) == (before[film_id]["output_file"],
                                                                     before[film_id]["n_clips"], before[film_id]["fingerprint"])
    clips = table(out, "clips")
    assert {r["film_path"] for r in clips} == {r["film_path"] for r in rows.values()}
    assert {r["run_id"] for r in clips} == {first["run_id"]}  # the rows of the run that cut them: nothing redone
    assert "Where were you?" in {r["text"] for r in clips}
    notes = [e for e in table(out, "errors") if e["run_id"] == moved["run_id"]]
    assert sorted(e["error_type"] for e in notes) == ["FilmMoved"] * 2 and not any(e["fatal"] for e in notes)
    assert all(str(old) in e["message"] for e in notes)
    from pipeline.run import Progress, format_summary
    assert "films ok=2 (moved 2: outputs kept) failed=0" in format_summary(moved)
    line = Progress(str(out), moved["run_id"], {}).film_line({**rows[next(iter(rows))], "status": "ok"})
    assert re.search(r"\d+ clips? kept\): moved from " + re.escape(str(old)), line), line
    assert run(argv(new))["skipped"] == 2  # the new paths are known now
    # renamed with its sidecar: its fingerprint (bytes + sidecar names) changed, its bytes did not: redone under its id
    talk_id = next(i for i, r in rows.items() if r["film_path"].endswith("talk.mp4"))
    (new / "talk.mp4").rename(new / "dialogue.mp4")
    (new / "talk.en.srt").rename(new / "dialogue.en.srt")
    renamed = run(argv(new))
    assert (renamed["ok"], renamed["moved"], renamed["skipped"]) == (1, 0, 1)
    assert len(list((out / "clips").glob("*.parquet"))) == 2
    talk = pq.read_table(out / "clips" / f"{talk_id}.parquet").to_pylist()
    assert {(r["film_path"], r["run_id"]) for r in talk} == {(str(new / "dialogue.mp4"), renamed["run_id"])}
    # a copy beside the original: a film of its own, with its own id and clips file
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "quiet.mp4").write_bytes((new / "quiet.mp4").read_bytes())
    os.utime(copy / "quiet.mp4", ns=((new / "quiet.mp4").stat().st_atime_ns, (new / "quiet.mp4").stat().st_mtime_ns))
    assert run(["--input", str(copy / "*.mp4"), "--output", str(out)] + BASE)["ok"] == 1
    assert len(list((out / "clips").glob("*.parquet"))) == 3
    # moved again, and cut another way: redone under its id, its rows replaced
    (new / "quiet.mp4").rename(copy / "quiet2.mp4")
    redo = run(["--input", str(copy / "quiet2.mp4"), "--output", str(out), "--window_s", "2"] + BASE)
    assert redo["ok"] == 1 and len(list((out / "clips").glob("*.parquet"))) == 3
    quiet = [r for r in table(out, "clips") if r["film_path"].endswith("quiet2.mp4")]
    assert len(quiet) == 2 and {r["run_id"] for r in quiet} == {redo["run_id"]}


def test_a_film_moved_aside_or_onto_another_films_name_keeps_its_id(tmp_path, caplog):
    """Found in review (before 2026-12-07): a film moved aside and a new one put at its name in one night swapped
    ids (the moved film scored again under a new id, the new one scored under the moved film's, its clips replaced);
    a film renamed onto another film's name was scored again under that film's id while its own clips stayed, the
    same film twice in clips/. Now the moved film keeps its id and outputs, and the new film gets an id of its own."""
    films, out = tmp_path / "films", tmp_path / "out"
    make_film(films / "film.mp4", duration_s=3.0)
    make_film(films / "e.mp4", duration_s=4.0)
    make_film(films / "b.mp4", duration_s=5.0)
    argv = ["--input", str(films / "*.mp4"), "--output", str(out)] + BASE
    assert run(argv)["ok"] == 3
    ids = {Path(r["film_path"]).name: r["film_id"] for r in newest_manifest(out)}
    # film.mp4 moved aside as film_v1.mp4, a new film copied in as film.mp4
    (films / "film.mp4").rename(films / "film_v1.mp4")
    make_film(films / "film.mp4", duration_s=6.0)
    night = run(argv)
    assert (night["ok"], night["moved"], night["skipped"]) == (2, 1, 2)
    rows = {Path(r["film_path"]).name: r for r in newest_manifest(out)}
    assert rows["film_v1.mp4"]["film_id"] == ids["film.mp4"] and rows["film_v1.mp4"]["moved_from"]
    assert rows["film.mp4"]["film_id"] not in ids.values()
    v1 = pq.read_table(out / "clips" / f"{ids['film.mp4']}.parquet").to_pylist()
    assert {r["film_path"] for r in v1} == {str(films / "film_v1.mp4")} and len(v1) == 1  # its 3 s: not replaced
    # e.mp4 renamed onto b.mp4 (b replaced): e keeps its id and outputs; b's clips stay, and the log says so
    (films / "e.mp4").rename(films / "b.mp4")
    with caplog.at_level("WARNING", logger="transforms.write"):
        night = run(argv)
    assert (night["ok"], night["moved"]) == (1, 1), night
    rows = {Path(r["film_path"]).name: r for r in newest_manifest(out)}
    assert rows["b.mp4"]["film_id"] == ids["e.mp4"]
    e_rows = pq.read_table(out / "clips" / f"{ids['e.mp4']}.parquet").to_pylist()
    assert {r["film_path"] for r in e_rows} == {str(films / "b.mp4")}
    b_rows = pq.read_table(out / "clips" / f"{ids['b.mp4']}.parquet").to_pylist()
    assert {r["film_path"] for r in b_rows} == {str(films / "b.mp4")} and len(b_rows) != len(e_rows)
    assert any(f"now holds the film that was at {films / 'e.mp4'}" in r.getMessage() and ids["b.mp4"] in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    assert run(argv)["skipped"] == 3
    # two films swap names: each keeps its id and outputs, nothing is scored again
    before = {Path(r["film_path"]).name: r["film_id"] for r in newest_manifest(out)}
    (films / "film.mp4").rename(films / "swap")
    (films / "film_v1.mp4").rename(films / "film.mp4")
    (films / "swap").rename(films / "film_v1.mp4")
    night = run(argv)
    assert (night["ok"], night["moved"], night["skipped"]) == (2, 2, 1), night
    after = {Path(r["film_path"]).name: r["film_id"] for r in newest_manifest(out)}
    assert (after["film.mp4"], after["film_v1.mp4"]) == (before["film_v1.mp4"], before["film.mp4"])
    # a film written anew at its path while a copy of its old bytes, indexed before, stays elsewhere: redone under
    # its id (the copy did not take it)
    (films / "copy.mp4").write_bytes((films / "b.mp4").read_bytes())
    assert run(argv)["ok"] == 1
    make_film(films / "b.mp4", duration_s=7.0)
    night = run(argv)
    assert (night["ok"], night["moved"]) == (1, 0), night
    rows = {Path(r["film_path"]).name: r for r in newest_manifest(out)}
    assert rows["b.mp4"]["film_id"] == after["b.mp4"] and rows["copy.mp4"]["film_id"] not in after.values()


def test_the_done_index_gives_what_reading_every_manifest_file_gives(tmp_path):
    """A run ends by writing <output>/_done_index.parquet, the newest ok/failed row of each film and the manifest
    files it covers; the next launch reads it and the files it does not cover, not one file per film ever committed.
    A run killed before its index (its films committed, the index older) and a run folder removed by hand both give
    what a full read gives."""
    import shutil
    from transforms.write import DONE_INDEX, load_done_films
    films, out = tmp_path / "films", tmp_path / "out"
    for name, seconds in (("a", 3.0), ("b", 4.0)):
        make_film(films / f"{name}.mp4", duration_s=seconds)
    argv = ["--input", str(films / "*.mp4"), "--output", str(out)] + BASE
    first = run(argv)
    index = out / DONE_INDEX
    assert index.is_file() and len(load_done_films(str(out))) == 2
    assert not list((out / "manifest").rglob("_*"))  # a glob over manifest/ sees each film's rows once
    from transforms.write import TMP_MARK, clean_output
    (out / f".{DONE_INDEX}{TMP_MARK}dead0000").write_bytes(b"half")  # a launcher killed while writing it
    assert clean_output(str(out)) == 1 and index.is_file()
    assert load_done_films(str(out)) == load_done_films(str(out), use_index=False)
    saved = tmp_path / "index_after_first_run.parquet"
    shutil.copy(index, saved)
    make_film(films / "c.mp4", duration_s=5.0)
    second = run(argv)
    assert (second["ok"], second["skipped"]) == (1, 2)
    shutil.copy(saved, index)  # as if the second run was killed after committing c, before writing its index
    done = load_done_films(str(out))
    assert len(done) == 3 and done == load_done_films(str(out), use_index=False)
    index.write_bytes(b"not parquet")  # a damaged index: every file is read
    assert load_done_films(str(out)) == load_done_films(str(out), use_index=False)
    shutil.copy(saved, index)
    shutil.rmtree(out / "manifest" / first["run_id"])  # a run folder removed by hand: the index is not trusted
    done = load_done_films(str(out))
    assert set(done) == {str(films / "c.mp4")} and done == load_done_films(str(out), use_index=False)
    assert run(argv)["ok"] == 2  # a and b redone: their rows went with the folder


def test_a_film_deleted_from_the_archive_is_counted_gone_and_keeps_its_outputs(tmp_path, caplog):
    """A nightly run tells the studio which indexed films vanished from under --input (deleted, or moved out of the
    archive): the summary counts them and the log names them; their outputs stay. A moved film is not gone, nor is a
    film of another archive the run was not given."""
    from pipeline.run import format_summary
    films, other, out = tmp_path / "films", tmp_path / "other", tmp_path / "out"
    make_film(films / "a.mp4", duration_s=3.0)
    make_film(films / "b.mp4", duration_s=4.0)
    make_film(other / "c.mp4", duration_s=5.0)
    assert run(["--input", str(films / "*.mp4"), "--input", str(other / "*.mp4"), "--output", str(out)] + BASE)["ok"] == 3
    (films / "b.mp4").unlink()
    (other / "c.mp4").unlink()  # gone too, but outside this run's --input
    with caplog.at_level("WARNING", logger="pipeline.run"):
        night = run(["--input", str(films / "*.mp4"), "--output", str(out)] + BASE)
    assert (night["skipped"], night["gone"]) == (1, 1)
    assert "skipped=1 gone=1 (outputs kept)" in format_summary(night)
    assert str(films / "b.mp4") in caplog.text and str(other / "c.mp4") not in caplog.text
    assert len(list((out / "clips").glob("*.parquet"))) == 3  # nothing deleted
    (films / "a.mp4").rename(films / "a2.mp4")  # moved: continued under its id, not gone
    moved = run(["--input", str(films / "*.mp4"), "--output", str(out)] + BASE)
    assert (moved["moved"], moved["gone"]) == (1, 1)  # b is still gone
    from pipeline.run import gone_films
    from transforms.write import load_done_films
    # inputs the launcher could not list (a filesystem without credentials there): nothing is called gone
    assert gone_films([str(films / "*.mp4")], {}, load_done_films(str(out))) == []
    # a volume not mounted leaves its folder empty: its films are not gone while another --input matches films
    # (review, 2026-12-07: every film of it was counted gone)
    from transforms.discover import FileMetadata
    make_film(other / "d.mp4", duration_s=3.0)
    inputs = [str(films / "*.mp4"), str(other / "*.mp4")]
    assert run(["--input", inputs[0], "--input", inputs[1], "--output", str(out)] + BASE)["ok"] == 1
    (other / "d.mp4").rename(tmp_path / "d.mp4")  # the volume 'other' unmounted: an empty folder
    listed = {inputs[0]: [FileMetadata(str(films / "a2.mp4"), (films / "a2.mp4").stat().st_size)], inputs[1]: []}
    gone = [r["film_path"] for r in gone_films(inputs, listed, load_done_films(str(out)))]
    assert gone == [str(films / "b.mp4")], gone  # not d
    # a film named alone in --input and deleted is gone all the same (its pattern matches nothing: it is not there)
    alone = [str(films / "a2.mp4"), str(films / "b.mp4")]
    gone = gone_films(alone, {alone[0]: listed[inputs[0]], alone[1]: []}, load_done_films(str(out)))
    assert [r["film_path"] for r in gone] == [str(films / "b.mp4")]


def test_films_the_listing_cannot_reach_are_named_not_gone(tmp_path, caplog, monkeypatch):
    """What Beam's listing leaves out without a word: links to files that are not there (a catalogue kept as links
    into storage volumes, one not mounted) and folders that cannot be read. The launcher names them (path: why),
    counts them apart from the gone films, and an indexed film there keeps its outputs and is skipped again once it
    can be reached. When every film is out of reach the run stops, saying so."""
    import os

    from pipeline.run import format_summary
    store, catalogue, out = tmp_path / "volume", tmp_path / "catalogue", tmp_path / "out"
    make_film(store / "a.mp4", duration_s=3.0)
    make_film(store / "b.mp4", duration_s=3.0)
    make_film(catalogue / "locked" / "c.mp4", duration_s=3.0)
    (catalogue / "sub").mkdir(parents=True)
    (catalogue / "a.mp4").symlink_to(store / "a.mp4")
    (catalogue / "sub" / "b.mp4").symlink_to(store / "b.mp4")
    (catalogue / "poster.jpg").symlink_to(store / "poster.jpg")  # not a film: not named
    (catalogue / "loop").symlink_to(catalogue)  # a folder behind a link is not entered
    argv = ["--input", str(catalogue), "--output", str(out)] + BASE
    assert run(argv)["ok"] == 3
    (store / "b.mp4").rename(tmp_path / "b.mp4")  # its volume not mounted
    scandir = os.scandir

    def closed(path="."):  # this test runs as root, whom permissions do not stop: the folder is closed here
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)
    monkeypatch.setattr(os, "scandir", closed)  # Beam's listing (os.walk) meets it too, and skips the folder
    with caplog.at_level("WARNING", logger="pipeline.run"):
        night = run(argv)
    assert (night["skipped"], night["gone"], night["unreachable"]) == (1, 0, 2)
    assert "unreachable=2 (not listed: see the log)" in format_summary(night)
    assert f"{catalogue / 'sub' / 'b.mp4'}: a link to {store / 'b.mp4'}, which is not there" in caplog.text
    assert f"{catalogue / 'locked'}: a folder that cannot be read (Permission denied)" in caplog.text
    assert "poster" not in caplog.text
    import pyarrow.parquet as pq  # an errors row each, film-less (the report lists them), kept by the next run
    rows = pq.read_table(out / "errors" / night["run_id"] / "unreachable.parquet").to_pylist()
    assert [(r["film_path"], r["stage"], r["error_type"], r["film_id"]) for r in rows] == [
        (str(catalogue / "locked"), "discover", "Unreachable", None),
        (str(catalogue / "sub" / "b.mp4"), "discover", "Unreachable", None)]
    assert rows[1]["message"].endswith("which is not there: its films are not scored this run")
    from pipeline.report.data import load_output
    assert {r["film_path"] for r in load_output(str(out)).errors.to_pylist()} >= {str(catalogue / "locked")}
    monkeypatch.setattr(os, "scandir", scandir)
    (tmp_path / "b.mp4").rename(store / "b.mp4")  # mounted again, the folder opened: nothing to redo
    back = run(argv)
    assert (back["skipped"], back["unreachable"], back["ok"]) == (3, 0, 0)
    assert (out / "errors" / night["run_id"] / "unreachable.parquet").is_file()  # clean_output keeps it
    for f in store.iterdir():
        f.unlink()
    (catalogue / "locked" / "c.mp4").unlink()
    with pytest.raises(SystemExit, match="2 path\\(s\\) there cannot be reached, e.g. .*a.mp4: a link to"):
        run(argv)


def test_a_film_moved_and_copied_the_same_night_is_two_films(tmp_path):
    """A film moved to the library under another name while a copy of it was made there too: one of the two
    continues the earlier film (its id, its outputs kept), the other is a film of its own. Before, both took the
    earlier film's id and shared one clips file, so one of them had no outputs of its own."""
    from transforms.write import pair_moves
    old, lib, out = tmp_path / "ingest", tmp_path / "library", tmp_path / "out"
    make_film(old / "reel.mp4", duration_s=4.0)
    def argv(folder):
        return ["--input", str(folder / "*.mp4"), "--output", str(out)] + BASE
    first = run(argv(old))
    film_id = newest_manifest(out)[0]["film_id"]
    lib.mkdir()
    (old / "reel.mp4").rename(lib / "feature.mp4")
    (lib / "trailer.mp4").write_bytes((lib / "feature.mp4").read_bytes())
    second = run(argv(lib))
    assert (second["ok"], second["moved"]) == (2, 1)
    rows = {r["film_path"]: r for r in newest_manifest(out) if r["run_id"] == second["run_id"]}
    assert rows[str(lib / "feature.mp4")]["film_id"] == film_id  # the first path in order continues the film
    assert rows[str(lib / "feature.mp4")]["moved_from"] == str(old / "reel.mp4")
    assert rows[str(lib / "trailer.mp4")]["film_id"] != film_id and not rows[str(lib / "trailer.mp4")]["moved_from"]
    assert len(list((out / "clips").glob("*.parquet"))) == 2
    assert {r["film_path"] for r in table(out, "clips")} == set(rows)
    # the rule: a path of the gone film's file name first, then the others in order; a path left over is new
    gone = [{"film_path": "/a/x.mp4"}, {"film_path": "/a/y.mp4"}]
    assert pair_moves(gone, ["/b/p.mp4", "/b/y.mp4"]) == {"/b/y.mp4": gone[1], "/b/p.mp4": gone[0]}
    assert pair_moves(gone[:1], ["/b/p.mp4", "/b/q.mp4"]) == {"/b/p.mp4": gone[0]}
    assert first["ok"] == 1


def test_new_or_corrected_subtitles_redo_a_film(tmp_path):
    """A nightly run redoes a film whose subtitles changed, though its bytes did not: a corrected sidecar, or
    captions delivered for a film that had none (it was transcribed, or left without text, before)."""
    from testing import captions
    films = tmp_path / "films"
    make_film(films / "talk.mp4", duration_s=6.0)
    make_film(films / "quiet.mp4", duration_s=6.0)
    make_film(films / "other.mp4", duration_s=6.0)
    write_srt(films / "talk.en.srt", [(0.5, 2.0, "Where were you?")])
    argv = ["--input", str(films / "*.mp4"), "--output", str(tmp_path / "out")] + BASE
    assert run(argv)["ok"] == 3
    assert run(argv)["skipped"] == 3
    write_srt(films / "talk.en.srt", [(0.5, 2.0, "Where were you last night?")])
    (films / "quiet.scc").write_text(captions.scc_text(captions.pop_on(1.0, 3.0, ["Out."])))
    summary = run(argv)
    assert summary["ok"] == 2 and summary["skipped"] == 1
    texts = {Path(r["film_path"]).name: r["text"] for r in table(tmp_path / "out", "clips") if r["text"]}
    assert texts == {"talk.mp4": "Where were you last night?", "quiet.mp4": "Out."}
    # a media manager's other.xml (metadata, not TTML), rewritten nightly, is not new input
    (films / "other.xml").write_text("<movie><lastplayed>2026-12-03</lastplayed></movie>")
    assert run(argv)["skipped"] == 3


def test_a_file_name_that_is_not_utf8_fails_alone(tmp_path):
    """An archive copied from an old Latin-1 share holds names whose bytes are not UTF-8. Such a film is a failed
    row that says so and how to rename it, its name written with \\xNN; before, its path stopped Beam's string
    coder and the whole run with it. The films beside it are processed, and so is a sidecar whose name is not
    UTF-8 beside a good film."""
    films = tmp_path / "films"
    make_film(films / "talk.mp4", duration_s=3.0)
    make_film(films / "bad.mp4", duration_s=3.0)
    os.rename(bytes(films / "bad.mp4"), bytes(films) + b"/Am\xe9lie.mp4")
    write_srt(films / "talk.srt", [(0.5, 2.0, "Where were you?")])
    os.rename(bytes(films / "talk.srt"), bytes(films) + b"/talk.fran\xe7ais.srt")
    out = tmp_path / "out"
    summary = run(["--input", str(films), "--output", str(out)] + BASE)
    assert summary["ok"] == 1 and summary["failed"] == 1
    failed = [r for r in newest_manifest(out) if r["status"] == "failed"]
    assert [Path(r["film_path"]).name for r in failed] == ["Am\\xe9lie.mp4"]
    assert failed[0]["error"].startswith("discover: PathNotUtf8: the file name is not UTF-8")
    assert [r["text"] for r in table(out, "clips") if r["text"]] == ["Where were you?"]


def test_a_dvd_title_split_over_vob_files_is_one_film(tmp_path):
    """A VIDEO_TS folder: the title's program stream cut into VTS_01_1.VOB and VTS_01_2.VOB (at a 2048-byte pack,
    as DVDs cut at 1 GiB), beside menus and navigation files. One film comes out, read across the cut on one clock
    (the same clips and frames as the uncut stream); menus, .IFO and .BUP files are neither films nor failures;
    a change in the second part redoes the film in a nightly run. A later part without its first is a film alone."""
    from testing.films import _scene_frame, encode_film, speech_like
    from transforms.dvd import title_parts
    whole = encode_film(tmp_path / "title.vob", paint=lambda i, t: _scene_frame(t, (160, 96), (4.0, 8.0)),
                        frame_times=[i / 25 for i in range(300)], fps=25, size=(160, 96), video_codec="mpeg2video",
                        audio=speech_like(12.0), audio_codec="mp2")
    data = whole.read_bytes()
    cut = len(data) // 2 // 2048 * 2048
    dvd = tmp_path / "Film (1999)" / "VIDEO_TS"
    dvd.mkdir(parents=True)
    (dvd / "VTS_01_1.VOB").write_bytes(data[:cut])
    (dvd / "VTS_01_2.VOB").write_bytes(data[cut:])
    for menu in ("VIDEO_TS.VOB", "VTS_01_0.VOB"):
        (dvd / menu).write_bytes(data[:20 * 2048])
    for nav in ("VIDEO_TS.IFO", "VIDEO_TS.BUP", "VTS_01_0.IFO", "VTS_01_0.BUP"):
        (dvd / nav).write_bytes(b"DVDVIDEO-VTS" + bytes(2036))
    (dvd / "VTS_02_2.VOB").write_bytes(data[cut:])  # a later part whose first part was not copied: scored alone
    assert title_parts(str(dvd / "VTS_01_1.VOB")) == [(str(dvd / "VTS_01_1.VOB"), cut),
                                                      (str(dvd / "VTS_01_2.VOB"), len(data) - cut)]
    from pipeline.run import expected_films, match_inputs
    expected = expected_films(match_inputs([str(tmp_path / "Film (1999)")]), {}, "hash")  # what progress counts
    assert sorted(Path(p).name for p in expected) == ["VTS_01_1.VOB", "VTS_02_2.VOB"]
    args = ["--segment", "window", "--window_s", "4"] + BASE
    out = tmp_path / "out"
    summary = run(["--input", str(tmp_path / "Film (1999)"), "--output", str(out)] + args)
    assert summary["ok"] == 2 and summary["failed"] == 0
    assert not [e for e in table(out, "errors") if e["film_path"].endswith("VTS_01_1.VOB")]
    run(["--input", str(whole), "--output", str(tmp_path / "uncut")] + args)
    clips, uncut = table(out, "clips"), table(tmp_path / "uncut", "clips")
    assert {Path(r["film_path"]).name for r in clips} == {"VTS_01_1.VOB", "VTS_02_2.VOB"}
    clips = [r for r in clips if r["film_path"].endswith("VTS_01_1.VOB")]
    assert len(clips) == len(uncut) == 3
    assert clips[0]["film_id"].startswith("film-1999-vts-01-")
    key = ("start_s", "end_s", "n_frames", "has_audio")
    assert [[r[k] for k in key] for r in clips] == [[r[k] for k in key] for r in uncut]
    assert clips[-1]["end_s"] > 11.5  # the second part's half of the film is there
    assert run(["--input", str(tmp_path / "Film (1999)"), "--output", str(out)] + args)["skipped"] == 2
    second = bytearray(data[cut:])
    second[-1000] ^= 0xFF  # a repaired copy of the disc's second file, same size
    (dvd / "VTS_01_2.VOB").write_bytes(bytes(second))
    assert run(["--input", str(tmp_path / "Film (1999)"), "--output", str(out)] + args)["ok"] == 1


def test_a_blu_ray_folder_is_its_streams_named_by_the_disc(tmp_path):
    """A BDMV folder: its navigation files (index.bdmv, MovieObject.bdmv, playlists, clip information, their BACKUP
    copies) were each a failed film, eight a disc, and its stream was named '00000' like every disc's (found in review,
    2026-12-07). They are not films; the stream is a film named by the disc's folder."""
    bd = tmp_path / "Movie (2001)" / "BDMV"
    for nav in ("index.bdmv", "MovieObject.bdmv", "PLAYLIST/00000.mpls", "CLIPINF/00000.clpi",
                "BACKUP/index.bdmv", "BACKUP/PLAYLIST/00000.mpls", "BDJO/00000.bdjo"):
        (bd / nav).parent.mkdir(parents=True, exist_ok=True)
        (bd / nav).write_bytes(b"MPLS0200" + bytes(120))
    make_film(bd / "STREAM" / "00000.m2ts", duration_s=3.0)
    out = tmp_path / "out"
    summary = run(["--input", str(tmp_path / "Movie (2001)"), "--output", str(out)] + BASE)
    assert (summary["ok"], summary["failed"]) == (1, 0), summary
    [row] = newest_manifest(out)
    assert row["film_id"].startswith("movie-2001-00000-") and row["film_path"].endswith("STREAM/00000.m2ts")


def test_file_uris_name_the_same_local_films(archive, tmp_path, monkeypatch):
    # Beam has no file:// filesystem (discovery failed the run); a file:// input or output is the local path,
    # so the film gets the same id and path as when named plainly, and a later plain run skips it.
    out = tmp_path / "out"
    summary = run(["--input", f"file://{archive}/talk.mp4", "--output", f"file://{out}"] + BASE)
    assert summary["ok"] == 1
    assert [r["film_path"] for r in newest_manifest(out)] == [str(archive / "talk.mp4")]
    assert run(["--input", str(archive / "talk.mp4"), "--output", str(out)] + BASE)["skipped"] == 1
    # A ~ the shell did not expand (quoted to keep its glob, '~/archive/**') is the home folder too: it matched
    # nothing, and an --output '~/out' was written into ./~/out.
    monkeypatch.setenv("HOME", str(archive.parent))
    monkeypatch.chdir(tmp_path)
    home_out = "~/" + os.path.relpath(out, archive.parent)
    assert run(["--input", f"~/{archive.name}/talk.*", "--output", home_out] + BASE)["skipped"] == 1
    assert not (tmp_path / "~").exists()
    from pipeline.arg_types import io_path, model_path_arg
    from training.datasets import spec_parts
    assert io_path("~/a/**") == f"{archive.parent}/a/**" and io_path("gs://b/~x") == "gs://b/~x"
    assert spec_parts(f"faces:~/{archive.name}/dev.parquet@10#dev")[1:] == (archive / "dev.parquet", "dev", 10)
    (archive.parent / "head.pt").write_bytes(b"x")
    assert model_path_arg("~/head.pt") == str(archive.parent / "head.pt")


def test_a_full_disk_stops_the_run_with_what_to_do_and_no_film_half_written(archive, tmp_path, monkeypatch, capsys):
    # The third film's commit finds the disk full once its clips file is staged. Before, the run ended in a worker's
    # traceback, and a film could be left with its new clips file beside no (or an old) manifest row.
    import errno

    from transforms import write
    staged, real = [], write.stage_table

    def stage(table, path, **options):
        if "/manifest/" in path and len([p for p in staged if "/manifest/" in p]) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        staged.append(path)
        return real(table, path, **options)

    monkeypatch.setattr(write, "stage_table", stage)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        run(["--input", str(archive / "*"), "--output", str(out)] + BASE)
    assert "failed (No space left on device), so the run stopped" in str(stop.value)
    assert "films ok=" in capsys.readouterr().out  # what was committed, as a finished run prints it
    manifest = table(out, "manifest")
    assert len(manifest) == 2 and not list(out.rglob("*.tmp-*"))
    assert {f.stem for f in (out / "clips").glob("*.parquet")} <= {r["film_id"] for r in manifest}


def test_output_full_reads_the_reason_through_a_runners_wrapping():
    import errno

    from pipeline.run import output_full
    assert output_full(OSError(errno.ENOSPC, "No space left on device")) == "No space left on device"
    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError as inner:
            raise RuntimeError("while running 'ProcessFilm'") from inner
    except RuntimeError as wrapped:
        assert output_full(wrapped) == "Disk quota exceeded"
    assert output_full(RuntimeError("OSError: [Errno 30] Read-only file system [while running 'ProcessFilm']")) == \
        "Read-only file system"
    assert output_full(ValueError("a film's own problem")) is None


def test_a_local_run_never_tries_to_download_prism(archive, tmp_path, caplog):
    # Beam's DirectRunner first tries Prism, downloading its binary from GitHub at run time; offline that is a
    # failed lookup (or a timeout behind a firewall), online another runner. pipeline.run and rescore skip it.
    from pipeline.options import offline_direct_runner
    assert offline_direct_runner("DataflowRunner") is None and offline_direct_runner("FlinkRunner") is None
    assert offline_direct_runner(None)._is_interactive and offline_direct_runner("DirectRunner")._is_interactive
    with caplog.at_level("INFO", logger="apache_beam.runners"):
        assert run(["--input", str(archive / "talk.mp4"), "--output", str(tmp_path / "out")] + BASE)["ok"] == 1
    assert "Prism" not in caplog.text and "prism" not in caplog.text
