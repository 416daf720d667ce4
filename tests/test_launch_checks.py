"""What `python -m pipeline.run` refuses at launch, and what its progress lines and summary count (2026-12-06 review
of the launch: encoder number formats no worker runs, unknown flags on the DirectRunner, a --run_id given again, the
UnreadLanguage warning's wording)."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from schemas import manifest as manifest_schema
from schemas._base import rows_to_table

ROOT = Path(__file__).resolve().parents[1]


def _launch_options(*argv: str):
    """pipeline.run's options as the launcher reads them from `argv`."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import FilmEmotionOptions
    return PipelineOptions(list(argv)).view_as(FilmEmotionOptions)


def _worker_refuses(device: str, precision: str, runtime: str) -> bool:
    """Whether an encoder built with these settings refuses them (model.precision.resolve, then
    openvino_runtime.resolve_runtime, as the text and vision encoders call them)."""
    from model.encoders.openvino_runtime import resolve_runtime
    from model.precision import resolve
    try:
        resolve_runtime(runtime, device, resolve(precision, device))
    except ValueError:
        return True
    except ImportError:  # openvino not installed: not the rule this checks
        return False
    return False


def test_the_launch_refuses_exactly_the_number_formats_the_encoders_refuse():
    # --precision int8 with --vision_runtime openvino (or --text_runtime openvino, or --device cuda) passed the launch
    # and every film died in its worker with a 98-line traceback.
    from model.encoders.openvino_runtime import RUNTIMES
    from model.precision import PRECISIONS
    from pipeline.options import number_format_problems
    for device in ("cpu", "cuda"):
        for precision in PRECISIONS:
            for runtime in RUNTIMES:
                for encoder in ("text", "vision"):
                    opts = _launch_options("--device", device, "--precision", precision, f"--{encoder}_runtime",
                                           runtime, "--modalities", encoder)
                    refused = number_format_problems(opts) != []
                    assert refused == _worker_refuses(device, precision, runtime), (device, precision, runtime, encoder)


def test_int8_and_openvino_where_no_worker_runs_them_stop_the_launch_on_every_runner(tmp_path):
    from pipeline.options import option_problems
    from pipeline.run import run
    vision = _launch_options("--modalities", "vision", "--precision", "int8", "--vision_runtime", "openvino")
    text = _launch_options("--modalities", "text", "--precision", "int8", "--text_runtime", "openvino")
    gpu = _launch_options("--device", "cuda", "--precision", "int8", "--modalities", "vision")
    for runner in ("", None, "DirectRunner", "DataflowRunner", "FlinkRunner", "SparkRunner", "PortableRunner"):
        assert option_problems(vision, runner) == ["--vision_runtime openvino: OpenVINO runs the vision encoder on CPU "
                                                   "workers in fp32 or bf16, not with --precision int8; give "
                                                   "--vision_runtime auto or torch"], runner
        assert option_problems(text, runner) == ["--text_runtime openvino: OpenVINO runs the text encoder on CPU "
                                                 "workers in fp32 or bf16, not with --precision int8; give "
                                                 "--text_runtime auto or torch"], runner
    for runner in ("", "DataflowRunner", "FlinkRunner"):  # (a local runner adds the no-GPU line on this machine)
        assert option_problems(gpu, runner) == ["--precision int8 --device cuda: precision int8 is for CPU workers; on "
                                                "a GPU use auto (bf16/fp16)"]
    both = _launch_options("--device", "cuda", "--precision", "int8", "--vision_runtime", "openvino",
                           "--text_runtime", "openvino")
    assert [p.split(":")[0] for p in option_problems(both, "DataflowRunner")] == [
        "--precision int8 --device cuda", "--text_runtime openvino", "--vision_runtime openvino"]
    # An encoder the run does not build cannot refuse its settings: nothing to say
    for argv in (("--modalities", "text", "--precision", "int8", "--vision_runtime", "openvino"),
                 ("--modalities", "face,audio", "--device", "cuda", "--precision", "int8"),
                 ("--no_score", "--precision", "int8", "--text_runtime", "openvino"),
                 ("--precision", "int8"), ("--precision", "bf16", "--vision_runtime", "openvino")):
        assert option_problems(_launch_options(*argv), "DataflowRunner") == [], argv
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match=r"^pipeline.run: --vision_runtime openvino: OpenVINO runs the vision encoder"):
        run(["--input", str(tmp_path), "--output", str(out), "--modalities", "vision", "--precision", "int8",
             "--vision_runtime", "openvino"], save_main_session=False)
    assert not out.exists()


def test_the_number_format_checks_leave_the_launcher_without_torch():
    code = ("import sys; from pipeline.run import FilmEmotionOptions, option_problems; "
            "from apache_beam.options.pipeline_options import PipelineOptions; "
            "o = PipelineOptions(['--precision', 'int8', '--device', 'cuda', '--text_runtime', 'openvino'])"
            ".view_as(FilmEmotionOptions); print(len(option_problems(o, 'DataflowRunner')), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["2", "False"], out


def test_evaluate_refuses_the_number_formats_its_encoders_refuse_before_reading_data(tmp_path, capsys):
    # pipeline.evaluate --precision int8 --device cuda (or --text_runtime openvino) read the data, then died in the
    # encoder's constructor with a traceback.
    from pipeline import evaluate
    data = tmp_path / "dev.csv"
    data.write_text("")  # never read
    for extra, said in ((["--precision", "int8", "--device", "cuda"],
                         "--precision int8 --device cuda: precision int8 is for CPU workers"),
                        (["--precision", "int8", "--text_runtime", "openvino"],
                         "--text_runtime openvino: OpenVINO runs the text encoder on CPU workers in fp32 or bf16, not "
                         "with --precision int8"),
                        (["--device", "cuda", "--vision_runtime", "openvino", "--data", f"frames:{data}"],
                         "--vision_runtime openvino: OpenVINO runs the vision encoder on CPU workers in fp32 or bf16, "
                         "not with --device cuda")):
        with pytest.raises(SystemExit) as stop:
            evaluate.main(["--data", f"meld:{data}"] + extra)
        assert stop.value.code == 2 and said in capsys.readouterr().err, extra
    args = evaluate.build_parser().parse_args(["--data", f"meld:{data}", "--precision", "int8"])
    assert evaluate.number_format_problems(args) == []  # int8 on a CPU with the torch runtime: fine
    # lines alone build no vision encoder, so its runtime cannot be refused (as pipeline.run's launch asks it)
    args = evaluate.build_parser().parse_args(["--data", f"meld:{data}", "--precision", "int8", "--vision_runtime",
                                               "openvino"])
    assert evaluate.number_format_problems(args) == []


def test_every_unknown_flag_stops_a_direct_run_and_a_cluster_runner_keeps_its_own(tmp_path):
    # '--seg window --threads 2', '--force_all', '--asr never' ran on the defaults with exit status 0 and Beam's
    # 'Discarding unparseable args' warning: only flags close to one of ours were refused.
    from pipeline.options import misspelt_options
    from pipeline.run import run
    slips = ["--seg", "window", "--threads", "2", "--force_all", "--asr", "never", "-v"]
    said = ["--seg: no such option; did you mean --segment?", "--threads: no such option",
            "--force_all: no such option", "--asr: no such option", "-v: no such option"]
    for runner in ([], ["--runner", "DirectRunner"], ["--runner=direct"], ["--runner", "SwitchingDirectRunner"]):
        assert misspelt_options(runner + slips) == said, runner
    # Other runners: a flag close to ours is still refused, the rest go to Beam (a job server may read them)
    for runner in ("FlinkRunner", "DataflowRunner", "PortableRunner", "SparkRunner"):
        assert misspelt_options(["--runner", runner, "--segmnt", "x", "--my_cluster_queue", "night"] + slips) == [
            "--segmnt: no such option; did you mean --segment?"], runner
    # Known flags, Beam's and the runners' too, and values pass on the DirectRunner
    assert misspelt_options(["--segment", "window", "--direct_num_workers=2", "--flink_master", "h:8081",
                             "--hop_s", "-1", "--force", "--experiments", "a", "--experiments=b"]) == []
    # What follows '--' is read by nothing there either (before 2026-12-07 dropped with Beam's warning)
    assert misspelt_options(["--segment", "window", "--", "--segment", "shot"]) == [
        "--: nothing reads the arguments after it on the DirectRunner (--segment shot)"]
    assert misspelt_options(["--runner", "FlinkRunner", "--", "--whatever"]) == []
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match=r"^pipeline.run: --seg: no such option; did you mean --segment\?; "
                                         r"--threads: no such option$"):
        run(["--input", str(tmp_path), "--output", str(out), "--seg", "window", "--threads", "2"],
            save_main_session=False)
    assert not out.exists()
    # a misspelt --input: its spelling first, not only "--input and --output are required" (found in review)
    with pytest.raises(SystemExit, match=r"^pipeline.run: --inp: no such option; did you mean --input\?; --input and "
                                         r"--output are required"):
        run(["--inp", str(tmp_path), "--output", str(out)], save_main_session=False)


def test_a_cluster_runners_options_on_a_local_run_are_said_not_read(tmp_path, caplog):
    """'--num_workers 8' on a local run: Beam took it without a word and the run used its one default worker (found
    in review). Each flag only another runner reads is a warning at launch; storage and credentials options, which a
    local run over gs:// reads, are not; on that runner nothing is said."""
    from pipeline.options import other_runner_options
    from pipeline.run import run
    argv = ["--num_workers", "8", "--machine_type", "n1-standard-8", "--flink_master", "h:8081", "--region", "eu",
            "--project", "p", "--impersonate_service_account", "a@b", "--temp_location", "gs://b/tmp",
            "--worker_zone", "z", "--default_sdk_harness_log_level", "ERROR", "--max_cache_memory_usage_mb", "0"]
    said = other_runner_options(argv)  # (the SDK worker settings: read by the DirectRunner's worker processes too)
    assert sorted(w.split(":")[0] for w in said) == ["--flink_master", "--machine_type", "--num_workers", "--region",
                                                     "--worker_zone"]
    [workers] = [w for w in said if w.startswith("--num_workers")]
    assert "a Dataflow option, which the DirectRunner does not read" in workers and "--direct_num_workers N" in workers
    assert not any("--direct_num_workers" in w for w in said if not w.startswith("--num_workers"))
    assert other_runner_options(["--runner", "DataflowRunner"] + argv) == []
    assert other_runner_options(["--runner", "FlinkRunner", "--flink_master", "h:8081"]) == []
    with caplog.at_level("WARNING", logger="pipeline.run"), pytest.raises(SystemExit):
        run(["--input", str(tmp_path / "none"), "--output", str(tmp_path / "out"), "--num_workers", "8"],
            save_main_session=False)  # (no film there: the launch stops after its warnings)
    assert "--num_workers: a Dataflow option" in caplog.text
    from pipeline import rescore  # pipeline.rescore's launch says it too (found in review)
    caplog.clear()
    with caplog.at_level("WARNING", logger="pipeline.rescore"), pytest.raises(SystemExit):
        rescore.run(["--features", str(tmp_path / "none"), "--output", str(tmp_path / "re"), "--num_workers", "8"],
                    save_main_session=False)
    assert "--num_workers: a Dataflow option" in caplog.text


def test_films_the_shell_expanded_from_an_unquoted_glob_stop_the_launch():
    """`--input archive/*.mp4` unquoted: the shell gives --input the first film and leaves the others as arguments
    no option takes; Beam dropped them with a warning and one film of the archive was scored, on every runner."""
    from pipeline.options import misspelt_options
    argv = ["--input", "archive/a.mp4", "archive/b.mp4", "archive/c.mp4", "--output", "out", "--force", "x.mp4"]
    said = [p.split(":")[0] for p in misspelt_options(argv)]
    assert said == ["archive/b.mp4", "archive/c.mp4", "x.mp4"]
    assert [p.split(":")[0] for p in misspelt_options(["--runner", "DataflowRunner"] + argv)] == said
    assert misspelt_options(["--input", "a.mp4", "--window_s=3", "--hop_s", "-1", "--segment", "window"]) == []


def _manifest_row(film_id: str, status: str, at: dt.datetime, **extra) -> dict:
    """A manifest row of run 'nightly' for /films/<film_id>.mp4 (10 s, 5 clips when ok), processed `at`."""
    return {"run_id": "nightly", "film_id": film_id, "film_path": f"/films/{film_id}.mp4", "size_bytes": 10,
            "config_hash": "c", "status": status, "duration_s": 10.0 if status == "ok" else None,
            "n_clips": 5 if status == "ok" else None, "processed_at": at, "wall_s": 1.0, **extra}


def _write_manifest(out: Path, name: str, rows: list[dict], mtime: float | None = None) -> None:
    """manifest/nightly/<name>.parquet under `out`, last updated at `mtime` when given (an earlier launch's file)."""
    path = out / "manifest" / "nightly" / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    import pyarrow.parquet as pq
    pq.write_table(rows_to_table(rows, manifest_schema.SCHEMA), path)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def test_a_run_id_given_again_counts_only_this_launchs_rows(tmp_path):
    # Night 2 with --run_id nightly over an unchanged archive printed 'film 2/2 ok' and 'films ok=2 skipped=2' with
    # night 1's film hours: the progress and the summary read every file under manifest/nightly/.
    from pipeline.run import Progress, summarise
    out = tmp_path / "out"
    yesterday = time.time() - 86400
    night1 = dt.datetime.fromtimestamp(yesterday, dt.timezone.utc)
    for film in ("a", "b"):  # night 1's commits
        _write_manifest(out, film, [_manifest_row(film, "ok", night1)], mtime=yesterday)
    since = time.time()
    lines: list[str] = []
    progress = Progress(str(out), "nightly", {"/films/b.mp4": 10}, every_s=3600, emit=lines.append, since=since)
    progress.poll()
    assert lines == []  # the earlier launch's rows are not this launch's films
    now = dt.datetime.now(dt.timezone.utc)
    _write_manifest(out, "skipped", [_manifest_row("a", "skipped", now)])  # this launch: a skipped, b done again
    _write_manifest(out, "b", [_manifest_row("b", "ok", now)])
    progress.poll()
    progress.poll()
    assert lines == ["film 1/1 ok: b (10 s of film, 5 clips in 1.0 s, 10.0x real time)"]
    summary = summarise(str(out), "nightly", 2.0, since)
    assert (summary["ok"], summary["skipped"], summary["clips"], summary["realtime_factor"]) == (1, 1, 5, 5.0)
    assert summarise(str(out), "nightly", 2.0)["ok"] == 2  # (without a start: every row, as before)


def test_a_second_launch_with_the_same_run_id_over_an_unchanged_archive_says_ok_0(tmp_path, capsys):
    from testing.films import FilmSpec, make_textured_film

    from pipeline.run import run
    film = make_textured_film(tmp_path / "films" / "a.mp4", FilmSpec(seconds=2.0, width=64, height=48, fps=6))
    args = ["--input", str(film), "--output", str(tmp_path / "out"), "--no_score", "--transcribe", "never",
            "--run_id", "nightly"]
    first = run(args, save_main_session=False)
    assert (first["ok"], first["skipped"]) == (1, 0)
    capsys.readouterr()
    again = run(args, save_main_session=False)
    assert (again["ok"], again["skipped"], again["clips"], again["hours"]) == (0, 1, 0, 0.0)
    printed = capsys.readouterr().out
    assert "film 1/" not in printed and "films ok=0 failed=0 skipped=1" in printed


def test_the_unread_language_warning_says_why_and_what_the_clips_were_scored_from():
    # '--text_languages fr' said the text path 'learnt fr only', and '--modalities text' said the clips were 'scored
    # from their frames, faces and speech'.
    from types import SimpleNamespace

    from transforms.film import unread_lines_warning
    ref = SimpleNamespace(path="/films/a.mp4", film_id="a")

    def message(languages, modalities):
        return unread_lines_warning(ref, Counter({"en": 3}), 5, languages, modalities).message

    assert message(("fr",), ("text",)) == (
        "3 of 5 clips have a line the text path did not read (3 in 'en'): this run reads lines in fr only "
        "(--text_languages). Those clips have nothing else to be scored from (--modalities text): their label is a "
        "guess (grounded false); their text stays in the clips table.")
    default = message(("en",), ("text", "vision", "face", "audio"))
    assert "): it learnt en only (--text_languages). Those clips are scored from their frames, faces and speech;" in \
        default
    assert "this run reads lines in de, fr only" in message(("de", "fr"), ("text", "face"))
    assert "scored from their faces;" in message(("de", "fr"), ("text", "face"))
    assert "scored from their frames and speech;" in message(("en",), ("text", "vision", "audio"))
    assert "Those clips are scored without their line;" in message(("en",), None)  # (modalities not known)


def test_a_remote_folder_given_without_its_slash_is_hinted(monkeypatch):
    """'--input gs://b/films' names one object, not the folder (a local folder is expanded): the message said only
    "no film file matches" (found in review)."""
    import pipeline.run as run_module
    monkeypatch.setattr(run_module, "match_inputs", lambda patterns, frames=None: {p: [] for p in patterns})
    with pytest.raises(SystemExit, match=r"no film file matches --input gs://b/films \(a folder\? end it with '/' "
                                         r"to read every film below it: gs://b/films/\)"):
        run_module.check_inputs(["gs://b/films"])
    assert run_module.remote_folder_hint("gs://b/films/") == run_module.remote_folder_hint("gs://b/*.mkv") == ""
    assert run_module.remote_folder_hint("/local/films") == ""


def test_an_option_given_twice_stops_the_launch_where_the_last_would_silently_win(tmp_path):
    """'--output a --output b' ran into b without a word (an option set in a nightly script and again on its command
    line); options that gather their values (--input, Beam's --experiments) may repeat (found in review)."""
    from pipeline.options import misspelt_options
    from pipeline.run import run
    assert misspelt_options(["--input", "a", "--input", "b", "--experiments", "x", "--experiments=y"]) == []
    assert misspelt_options(["--output", "a", "--segment", "window", "--output=b"]) == [
        "--output: given 2 times; give it once (only the last would count)"]
    with pytest.raises(SystemExit, match=r"--window_s: given 2 times"):
        run(["--input", str(tmp_path), "--output", str(tmp_path / "out"), "--window_s", "2", "--window_s", "4"],
            save_main_session=False)
    assert not (tmp_path / "out").exists()
