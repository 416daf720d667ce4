"""The pipeline with scoring on distributed-style runners: PortableRunner with a local job service and an
external SDK worker pool in separate processes (how Flink and Spark run Python), and DirectRunner in
multi_processing mode. Real packaged encoders on a tiny PyAV-made film."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from apache_beam.io.filesystem import FileMetadata
from apache_beam.io.localfilesystem import LocalFileSystem

from schemas.labels import EMOTIONS, PROB_COLUMNS
from tests.scoring_support import ROOT, head_for_tests, tiny_film


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with socket.create_connection(("localhost", port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"nothing listening on {port}")


@pytest.fixture
def pythonpath(monkeypatch):
    """Worker processes must import the project the way an installed --setup_file package would."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    # The worker pool starts SDK workers as `python -c ...`: that must be this interpreter (the venv's).
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def start(args: list[str], log: Path, cwd: Path = ROOT, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *args], cwd=cwd, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            env=env or os.environ.copy())


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def check_scored(out: Path, film_id_hint: str = "tiny") -> list[dict]:
    files = list((out / "clips").glob("*.parquet"))
    assert len(files) == 1 and film_id_hint in files[0].name
    rows = pq.read_table(files[0]).to_pylist()
    assert rows and all(r["emotion"] in EMOTIONS for r in rows)
    assert all(abs(sum(r[c] for c in PROB_COLUMNS) - 1.0) < 1e-4 for r in rows)
    assert len({r["model_version"] for r in rows}) == 1 and rows[0]["model_version"].startswith("bvpec-")
    assert any(r["text"] for r in rows) and any("text" in r["modalities_used"] for r in rows)
    return rows


def _argv(film: Path, out: Path, head: str) -> list[str]:
    return ["--input", str(film), "--output", str(out), "--head", head, "--frames_per_clip", "2",
            "--transcribe", "never", "--batch_size", "4"]


@pytest.mark.slow
def test_portable_runner_with_external_worker_pool(tmp_path, pythonpath):
    from pipeline.run import run
    film, head = tiny_film(tmp_path), head_for_tests(tmp_path)
    job_port, pool_port = free_port(), free_port()
    job = start(["apache_beam.runners.portability.local_job_service_main", "--port", str(job_port)],
                tmp_path / "job_service.log")
    pool = start(["apache_beam.runners.worker.worker_pool_main", "--service_port", str(pool_port)],
                 tmp_path / "worker_pool.log")
    try:
        wait_for_port(job_port, job)
        wait_for_port(pool_port, pool)
        out = tmp_path / "out"
        summary = run(_argv(film, out, head) + [
            "--runner", "PortableRunner", f"--job_endpoint=localhost:{job_port}",
            "--environment_type", "EXTERNAL", f"--environment_config=localhost:{pool_port}"],
            save_main_session=False)
        assert summary["ok"] == 1 and summary["failed"] == 0
        check_scored(out)
    finally:
        stop(job)
        stop(pool)


@pytest.mark.slow
def test_a_cluster_run_from_relative_paths_on_workers_elsewhere_without_a_usable_home(tmp_path, pythonpath,
                                                                                      monkeypatch):
    # As on Flink or Spark: the worker pool runs in a working folder of its own, here with a home that is no folder
    # (HOME=/dev/null, no FILM_EMOTION_CACHE). Relative --input / --output reached the workers as given (ok=0, exit 0,
    # nothing written), a relative --head failed the job, and so did the text encoder's cache folder.
    import shutil

    from pipeline.run import run
    launcher, elsewhere = tmp_path / "launcher", tmp_path / "worker_cwd"
    elsewhere.mkdir(parents=True)
    tiny_film(launcher)
    (launcher / "heads").mkdir()
    shutil.copy(head_for_tests(tmp_path), launcher / "heads" / "new_head.pt")
    homeless = {k: v for k, v in os.environ.items() if k != "FILM_EMOTION_CACHE"} | {"HOME": "/dev/null"}
    job_port, pool_port = free_port(), free_port()
    job = start(["apache_beam.runners.portability.local_job_service_main", "--port", str(job_port)],
                tmp_path / "job_service.log", cwd=elsewhere)
    pool = start(["apache_beam.runners.worker.worker_pool_main", "--service_port", str(pool_port)],
                 tmp_path / "worker_pool.log", cwd=elsewhere, env=homeless)
    try:
        wait_for_port(job_port, job)
        wait_for_port(pool_port, pool)
        monkeypatch.chdir(launcher)
        summary = run(["--input", "films/", "--output", "out", "--head", "heads/new_head.pt", "--modalities", "text",
                       "--transcribe", "never", "--batch_size", "4", "--runner", "PortableRunner",
                       f"--job_endpoint=localhost:{job_port}", "--environment_type", "EXTERNAL",
                       f"--environment_config=localhost:{pool_port}"], save_main_session=False)
        assert (summary["ok"], summary["failed"]) == (1, 0)
        check_scored(launcher / "out")
        assert not (elsewhere / "out").exists()
    finally:
        stop(job)
        stop(pool)


@pytest.mark.slow
def test_direct_runner_multi_processing(tmp_path, pythonpath, monkeypatch, caplog):
    import logging
    import subprocess
    from pipeline.run import MALLOC_ARENA_MAX, WorkerNoise, run
    relay = "apache_beam.runners.portability.local_job_service"
    caplog.set_level(logging.WARNING, logger=relay)
    monkeypatch.setattr(logging.getLogger(relay), "filters", [])  # what Beam relays, before the launcher's filter
    film, head = tiny_film(tmp_path), head_for_tests(tmp_path)
    out = tmp_path / "out"
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    started = []  # the environment each worker process is started with (Beam passes env= to Popen)

    class Recorded(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            started.append((kwargs.get("env") or os.environ).get("MALLOC_ARENA_MAX"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", Recorded)
    summary = run(_argv(film, out, head) + ["--runner", "DirectRunner", "--direct_running_mode=multi_processing",
                                            "--direct_num_workers=2"], save_main_session=False)
    assert summary["ok"] == 1
    check_scored(out)
    # the worker processes were started with glibc's heap arenas capped; the launcher's caller gets its
    # environment back
    assert started and set(started) == {MALLOC_ARENA_MAX} == {"1"}
    assert "MALLOC_ARENA_MAX" not in os.environ
    # each worker relays two harmless warnings at start, a screenful each: the launcher's filter knows their words
    relayed = [r for r in caplog.records if r.name == "apache_beam.runners.portability.local_job_service"]
    assert any(not WorkerNoise().filter(r) for r in relayed), [r.getMessage()[:200] for r in relayed]


def test_worker_start_warnings_are_dropped_and_others_pass():
    import logging
    from pipeline.run import WorkerNoise

    def relayed(message):
        return logging.LogRecord("apache_beam.runners.portability.local_job_service", logging.WARNING, __file__, 1,
                                 f"Worker: severity: WARN message: {message!r}", None, None)
    assert not WorkerNoise().filter(relayed("Discarding unparseable args: ['--torch_threads=1', '--score']"))
    assert not WorkerNoise().filter(relayed("No semi_persistent_directory found: User registered objects ..."))
    assert WorkerNoise().filter(relayed("Error processing instruction 3: Traceback (most recent call last)"))


def test_the_readme_dataflow_command_builds_its_job_offline(tmp_path):
    # The README's Dataflow command for GPU workers, with Beam's --dry_run: the job is built as it would be
    # submitted (the graph pickled, setup.py's package staged, the accelerator hint set) and not sent. Before
    # 2026-12-05 the set-up installed no Google Cloud client: a gs:// path had no filesystem, and the command
    # stopped at once.
    from apache_beam.io.filesystems import FileSystems

    from pipeline.run import run
    assert type(FileSystems.get_filesystem("gs://bucket/films/a.mp4")).__name__ == "GCSFileSystem"
    assert type(FileSystems.get_filesystem("s3://bucket/films/a.mp4")).__name__ == "S3FileSystem"
    film, out = tiny_film(tmp_path), tmp_path / "out"
    hint = "type:nvidia-tesla-t4;count:1;install-nvidia-driver"
    dataflow = ["--runner", "DataflowRunner", "--project", "film-emotion-test", "--region", "us-central1",
                "--temp_location", "gs://film-emotion-test/tmp", "--setup_file", str(ROOT / "setup.py"),
                "--device", "cuda", f"--resource_hints=accelerator={hint}", "--experiments=use_runner_v2"]
    summary = run(["--input", str(film), "--output", str(out), *dataflow, "--dry_run", "True"],
                  save_main_session=False)
    assert summary["dry_run"] and not list(out.iterdir())  # nothing written under --output
    pipeline = summary["result"].job.proto_pipeline
    assert "ProcessFilm" in {t.unique_name for t in pipeline.components.transforms.values()}
    (env,) = pipeline.components.environments.values()
    assert env.urn == "beam:env:docker:v1"
    assert any(b"workflow.tar.gz" in d.role_payload for d in env.dependencies)  # the package setup.py builds
    assert env.resource_hints["beam:resources:accelerator:v1"] == hint.encode()
    # Another runner would run the job: the launch stops instead
    with pytest.raises(SystemExit, match="builds a Dataflow job"):
        run(["--input", str(film), "--output", str(out), "--dry_run", "True"], save_main_session=False)
    # Beam keeps the flag as text; "False" is no dry run, for the launcher and the runner alike
    from apache_beam.options.pipeline_options import PipelineOptions, TestOptions

    from pipeline.run import dry_run
    opts = PipelineOptions([*dataflow, "--dry_run", "False"])
    assert dry_run(opts) is False and opts.view_as(TestOptions).dry_run is False
    assert dry_run(PipelineOptions([*dataflow, "--dry_run=true"])) is True


def test_the_package_a_worker_installs_brings_the_pinned_environment(tmp_path):
    """--setup_file stages the sdist setup.py builds; a worker pip-installs it. It must carry the requirement files
    and install them as scripts/bootstrap.sh does (--no-deps: the weight packages' metadata asks for TensorFlow, torch
    < 2.3, the GUI OpenCV), with nothing left to a resolver. Before 2026-12-05 the sdist held no requirement file, so
    a worker's build found none and installed the package without torch, PyAV or the weights. (Checked by hand too:
    a fresh venv, `pip install` of the sdist, then pipeline.run on the Sintel trailer from outside the repo: the same
    15 labels as the repo's run; docs/operations.md.)"""
    import tarfile
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path)], cwd=ROOT, check=True,
                   capture_output=True)
    (sdist,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, filter="data")
    unpacked = next(p for p in tmp_path.iterdir() if p.is_dir())
    for name in ("requirements.txt", "requirements-cloud.txt", "requirements-weights.txt"):
        assert (unpacked / name).read_text() == (ROOT / name).read_text()
    # every shipped weight file travels (the picture gate's .npz was not in package_data when it came, 2026-12-07)
    shipped = sorted(p.name for p in (ROOT / "model" / "weights").iterdir() if p.is_file())
    assert [n for n in shipped if not (unpacked / "model" / "weights" / n).is_file()] == []
    assert "Requires-Dist" not in (unpacked / "PKG-INFO").read_text()  # nothing for a resolver to second-guess
    printed = subprocess.run([sys.executable, "setup.py", "install_pinned", "--print-only"], cwd=unpacked, text=True,
                             capture_output=True, check=True).stdout
    (line,) = [ln for ln in printed.splitlines() if ln.startswith("install_pinned:")]
    assert "-m pip install --no-deps" in line
    assert all(f"-r {unpacked / name}" in line for name in ("requirements.txt", "requirements-cloud.txt",
                                                            "requirements-weights.txt"))
    import setuptools  # a worker's build (pip: bdist_wheel -> build) runs install_pinned before the package's files
    seen = {}
    real = setuptools.setup
    setuptools.setup = lambda **kw: seen.update(kw)
    try:
        exec(compile((unpacked / "setup.py").read_text(), str(unpacked / "setup.py"), "exec"),
             {"__file__": str(unpacked / "setup.py"), "__name__": "setup"})
    finally:
        setuptools.setup = real
    assert seen["cmdclass"]["build"].sub_commands[0] == ("install_pinned", None)
    assert "install_requires" not in seen


class RemoteFileSystem(LocalFileSystem):
    """remote://<local path>: files only Beam's FileSystems can read, as gs:// is to a launcher and its workers (a
    path run through pathlib loses a slash of its '://' and names nothing)."""

    @classmethod
    def scheme(cls) -> str:
        return "remote"

    def open(self, path, *args, **kw):
        return super().open(_on_disk(path), *args, **kw)

    def exists(self, path) -> bool:
        return super().exists(_on_disk(path))

    def metadata(self, path):
        found = super().metadata(_on_disk(path))
        return FileMetadata(path, found.size_in_bytes, found.last_updated_in_seconds)


def _on_disk(path: str) -> str:
    return path.removeprefix("remote://")


def test_a_head_on_a_remote_filesystem_is_read_through_beam_filesystems(tmp_path, monkeypatch):
    # `--head gs://...` stopped the launch with FileNotFoundError 'gs:/...' (the URL went through pathlib), and no
    # worker could have read it either. Every reader of a head (the launcher's model version and digests, the
    # workers' head and tuned encoders, pipeline.rescore's head step) now reads its bytes through FileSystems.
    import shutil

    import torch
    from apache_beam.options.pipeline_options import PipelineOptions

    from model.checkpoints import load_head, model_version
    from model.encoders import EncoderSpec, encoder_versions
    from model.encoders.versions import head_digests
    from pipeline.options import FilmEmotionOptions, option_problems
    from pipeline.rescore import parse_args
    from pipeline.run import run
    from transforms.head_inference import HeadHandler
    from transforms.score import make_scorer
    monkeypatch.setenv("FILM_EMOTION_CACHE", str(tmp_path / "cache"))
    local = tmp_path / "bucket" / "heads" / "new_head.pt"
    local.parent.mkdir(parents=True)
    shutil.copy(head_for_tests(tmp_path), local)
    url = f"remote://{local}"

    def options(head: str) -> FilmEmotionOptions:
        return PipelineOptions(["--input", "remote://bucket/films/", "--output", "remote://bucket/out", "--head",
                                head, "--modalities", "text"]).view_as(FilmEmotionOptions)
    assert options(url).head == url and options(url).input == ["remote://bucket/films/"]
    assert option_problems(options(url)) == []
    assert make_scorer(options(url)).model_version == make_scorer(options(str(local))).model_version
    assert model_version(url, "enc") == model_version(str(local), "enc")
    assert head_digests(url) == head_digests(str(local))
    assert encoder_versions(EncoderSpec(head=url)) == encoder_versions(EncoderSpec(head=str(local)))
    remote, ours = load_head(url)[0].state_dict(), load_head(str(local))[0].state_dict()
    assert remote.keys() == ours.keys() and all(torch.equal(remote[k], ours[k]) for k in ours)
    assert parse_args(["--features", "remote://b/f", "--output", "remote://b/o", "--head", url])[0].head == url
    assert HeadHandler(url, "v").load_model().head.state_dict().keys() == ours.keys()  # pipeline.rescore's step
    (local.parent / "notes.pt").write_bytes(b"not a head")
    with pytest.raises(ValueError, match="not a BVPEC head checkpoint"):
        load_head(f"remote://{local.parent}/notes.pt")
    film, out = tiny_film(tmp_path), tmp_path / "out"
    summary = run(["--input", str(film), "--output", str(out), "--head", url, "--modalities", "text",
                   "--transcribe", "never", "--batch_size", "4"], save_main_session=False)
    assert summary["ok"] == 1
    check_scored(out)


def test_local_paths_are_made_absolute_at_launch_and_names_and_urls_kept(tmp_path, monkeypatch):
    # A cluster's workers run in their own working folder: a relative --input / --output reached them as given (they
    # found no film: ok=0, exit 0, nothing written), and a relative --head failed the job.
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import FilmEmotionOptions, option_problems
    from pipeline.rescore import parse_args
    import shutil
    monkeypatch.chdir(tmp_path)
    (tmp_path / "heads").mkdir()
    shutil.copy(head_for_tests(tmp_path), tmp_path / "heads" / "h.pt")
    fo = PipelineOptions(["--input", "films/", "--input", "more/*.mkv", "--input", "gs://b/films/", "--output", "out",
                          "--head", "heads/h.pt", "--vision_model", "./models/v.onnx", "--text_model",
                          "sentence-transformers/all-MiniLM-L6-v2", "--asr_model", "base"]).view_as(FilmEmotionOptions)
    assert fo.input == [f"{tmp_path}/films/", f"{tmp_path}/more/*.mkv", "gs://b/films/"]
    assert (fo.output, fo.head, fo.vision_model) == (f"{tmp_path}/out", f"{tmp_path}/heads/h.pt",
                                                     f"{tmp_path}/models/v.onnx")
    assert (fo.text_model, fo.asr_model) == ("sentence-transformers/all-MiniLM-L6-v2", "base")  # names as given
    args = parse_args(["--features", "out/features", "--output", "out2", "--head", "heads/h.pt", "--text_model",
                       "sentence-transformers/all-MiniLM-L6-v2"])[0]
    assert (args.features, args.output, args.head) == (f"{tmp_path}/out/features", f"{tmp_path}/out2",
                                                       f"{tmp_path}/heads/h.pt")
    assert args.text_model == "sentence-transformers/all-MiniLM-L6-v2"
    # A model on an object store cannot be loaded (the encoders and Whisper read local files): the launch says so
    remote = PipelineOptions(["--input", "films/", "--output", "out", "--vision_model", "gs://b/v.onnx",
                              "--text_model", "s3://b/minilm", "--asr_model", "gs://b/whisper"]
                             ).view_as(FilmEmotionOptions)
    problems = "; ".join(option_problems(remote))
    assert "--vision_model gs://b/v.onnx: " in problems and "--text_model s3://b/minilm: " in problems
    assert "--asr_model gs://b/whisper: " in problems
    assert "a local path" in problems
    with pytest.raises(SystemExit):
        parse_args(["--features", "f", "--output", "o", "--vision_model", "gs://b/v.onnx"])


def test_a_cache_folder_that_cannot_be_made_or_written_falls_back_to_the_temporary_folder(tmp_path, monkeypatch,
                                                                                           caplog):
    # A worker whose home is no folder (HOME=/dev/null) failed the whole job: NotADirectoryError from the text
    # encoder's OpenVINO cache. Every user of the cache folder now gets one under the temporary folder instead.
    import logging
    import tempfile

    from model import asr
    from model.encoders import EncoderSpec, carried_classifier
    from model.encoders._cache import cache_dir
    from model.encoders.openvino_runtime import ir_path
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.delenv("FILM_EMOTION_CACHE", raising=False)
    monkeypatch.setenv("HOME", "/dev/null")
    with caplog.at_level(logging.WARNING):
        folder = cache_dir()
    assert folder.is_dir() and folder.parent == tmp_path / "tmp" and os.access(folder, os.W_OK)
    assert any("/dev/null" in r.getMessage() and str(folder) in r.getMessage() for r in caplog.records)
    assert asr.cache_dir() == folder and ir_path("v1").parent.parent == folder
    assert carried_classifier(EncoderSpec(), "speech") is None  # (the shipped head carries none: nothing written)
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("FILM_EMOTION_CACHE", str(tmp_path / "a-file" / "cache"))
    assert cache_dir() == folder
    monkeypatch.setenv("FILM_EMOTION_CACHE", str(tmp_path / "cache"))  # a usable folder is used as before
    assert cache_dir() == tmp_path / "cache" and (tmp_path / "cache").is_dir()


@pytest.mark.parametrize("how", ["ctrl-c", "lock taken over", "cancel unsupported"])
def test_a_launcher_that_stops_cancels_its_unfinished_job_before_releasing_the_lock(tmp_path, monkeypatch, caplog,
                                                                                     how):
    # A cluster runner's p.run() returns while the job runs on. Ctrl-C on the launcher released the --output lock
    # while the job kept committing films, and a second launch then ran beside it.
    import json
    import logging
    import threading

    import apache_beam as beam
    from apache_beam.runners.runner import PipelineState

    from pipeline import output_lock
    from pipeline import run as launcher
    lock = tmp_path / "out" / output_lock.LOCK_NAME
    seen = []

    class Running:  # what a cluster runner hands back: the job goes on until it ends or is cancelled
        state = PipelineState.RUNNING

        def __init__(self):
            self.ended = threading.Event()

        def wait_until_finish(self, duration=None):
            self.ended.wait(60)
            return self.state

        def cancel(self):
            seen.append(lock.exists())
            self.ended.set()
            if how == "cancel unsupported":
                raise NotImplementedError("this runner cannot cancel")
            self.state = PipelineState.CANCELLED

    monkeypatch.setattr(beam.Pipeline, "run", lambda self, *a, **kw: Running())
    monkeypatch.setattr(launcher, "POLL_S", 0.05)
    if how == "lock taken over":
        monkeypatch.setattr(output_lock, "HEARTBEAT_S", 0.0)
        real = output_lock.OutputLock.renew

        def taken_over(self):
            lock.write_text(json.dumps({"host": "other", "pid": 1, "started": 0, "heartbeat": 1e12}))
            real(self)
        monkeypatch.setattr(output_lock.OutputLock, "renew", taken_over)
    else:
        def interrupted(self):  # Ctrl-C while the launcher follows the job (its second look at the output)
            polls.append(1)
            if len(polls) == 2:
                raise KeyboardInterrupt
        polls = []
        monkeypatch.setattr(launcher.Progress, "poll", interrupted)
    film = tiny_film(tmp_path)
    with caplog.at_level(logging.WARNING, logger="pipeline.run"), pytest.raises((KeyboardInterrupt, SystemExit)):
        launcher.run(["--input", str(film), "--output", str(tmp_path / "out"), "--no_score", "--transcribe", "never"],
                     save_main_session=False)
    assert seen == [True]  # cancelled while the lock was still held
    assert lock.exists() == (how == "lock taken over")  # released (another run's lock is left to it)
    if how == "cancel unsupported":
        assert any("could not cancel" in r.getMessage() for r in caplog.records)


def test_films_an_earlier_launcher_indexed_by_relative_paths_are_still_skipped(tmp_path, monkeypatch):
    # Before 2026-12-06 '--input films/' recorded 'films/tiny.mp4'. Now that the launcher makes it absolute, those
    # films must still be found done: not scored again under new ids beside their old outputs.
    from pipeline import options
    from pipeline.arg_types import name_or_path
    from pipeline.run import run
    tiny_film(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv = ["--input", "films/", "--output", "out", "--no_score", "--transcribe", "never"]
    with monkeypatch.context() as before:
        before.setattr(options, "io_path", name_or_path)  # the paths as the earlier launcher passed them on
        assert run(argv, save_main_session=False)["ok"] == 1
    [clips] = (tmp_path / "out" / "clips").glob("*.parquet")
    assert pq.read_table(clips).column("film_path")[0].as_py() == "films/tiny.mp4"
    again = run(argv, save_main_session=False)
    assert (again["skipped"], again["ok"], again.get("gone")) == (1, 0, 0)
    assert list((tmp_path / "out" / "clips").glob("*.parquet")) == [clips]


def _launch_options(*argv: str):
    """pipeline.run's options as the launcher reads them from `argv`."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import FilmEmotionOptions
    return PipelineOptions(list(argv)).view_as(FilmEmotionOptions)


def test_windows_shorter_than_min_clip_s_stop_the_launch(tmp_path):
    # --segment window --window_s 0.5 (--min_clip_s 1): every window joined the one before it, so the whole film
    # was one clip, and the run said nothing.
    from pipeline.options import option_problems
    from pipeline.run import run
    problems = option_problems(_launch_options("--segment", "window", "--window_s", "0.5"))
    assert len(problems) == 1 and problems[0].startswith("--window_s must be >= --min_clip_s with --segment window")
    assert option_problems(_launch_options("--segment", "window", "--window_s", "1", "--min_clip_s", "1")) == []
    assert option_problems(_launch_options("--segment", "window", "--window_s", "0.5", "--min_clip_s", "0.5")) == []
    assert option_problems(_launch_options("--window_s", "0.5")) == []  # subtitle clips: gaps only, not merged so
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match=r"--window_s must be >= --min_clip_s .*got 0.5 and 1.0"):
        run(["--input", str(tmp_path / "films"), "--output", str(out), "--segment", "window", "--window_s", "0.5"],
            save_main_session=False)
    assert not out.exists()


def test_a_run_id_that_is_no_plain_folder_name_stops_the_launch(tmp_path):
    # '../x' wrote manifest and errors rows into one folder (a failed film's errors row overwritten by its manifest
    # row), 'a/b' nested a level down, '_nightly' and '.nightly' were hidden from pipeline.report and pyarrow.
    from pipeline.options import RUN_ID_PATTERN, option_problems
    from pipeline.run import new_run_id, run
    for bad in ("../x", "a/b", "x*y", "_nightly", ".nightly", "", "a b", "-x"):
        problems = option_problems(_launch_options(f"--run_id={bad}"))
        assert len(problems) == 1 and problems[0].startswith(f"--run_id {bad!r}: a run id names folders"), bad
    for good in ("nightly", "2026-12-06.retry_2", "A1"):
        assert option_problems(_launch_options("--run_id", good)) == [], good
    assert all(RUN_ID_PATTERN.fullmatch(new_run_id()) for _ in range(5))  # the default stays valid
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match=r"^pipeline.run: --run_id '../x': "):
        run(["--input", str(tmp_path / "films"), "--output", str(out), "--run_id", "../x"], save_main_session=False)
    assert not out.exists()


def test_a_table_folder_the_run_cannot_write_stops_the_launch_or_the_run_with_one_line(tmp_path, monkeypatch,
                                                                                         capsys):
    # clips/ made by another user: the first commit failed with PermissionError, a long traceback and no summary.
    # (Root writes anywhere: os.access is told what an unprivileged user would be.)
    import errno

    from pipeline import run as launcher
    from transforms import write
    out = tmp_path / "out"
    (out / "clips").mkdir(parents=True)
    (out / "manifest").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: not str(path).endswith("/clips")
                        and real_access(path, mode, **kw))
    with pytest.raises(SystemExit, match=r"cannot write into clips/ there"):
        launcher.check_output(str(out))
    monkeypatch.setattr(os, "access", real_access)
    launcher.check_output(str(out))  # writable: nothing said
    # A folder that becomes unwritable once the run is going: the summary, then the one line of a full disk
    inside = f"{out}/clips/.x.parquet.tmp-1"
    assert launcher.output_denied(PermissionError(errno.EACCES, "Permission denied", inside), str(out)) == \
        "Permission denied"
    assert launcher.output_denied(RuntimeError(f"PermissionError: [Errno 1] Operation not permitted: '{inside}' "
                                               "[while running 'ProcessFilm']"), str(out)) == "Operation not permitted"
    elsewhere = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "films" / "a.mp4"))
    assert launcher.output_denied(elsewhere, str(out)) is None  # a film that cannot be read is not the output's
    assert launcher.output_denied(PermissionError(errno.EACCES, "Permission denied", inside), "gs://b/out") is None
    real_stage = write.stage_table

    def refused(table, path, **options):
        if "/clips/" in path:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_stage(table, path, **options)
    monkeypatch.setattr(write, "stage_table", refused)
    film = tiny_film(tmp_path)
    with pytest.raises(SystemExit) as stop:
        launcher.run(["--input", str(film), "--output", str(out), "--no_score", "--transcribe", "never"],
                     save_main_session=False)
    assert str(stop.value).startswith(f"pipeline.run: writing under --output {out} failed (Permission denied), so the")
    assert "give this run write access there and run again" in str(stop.value)
    assert "films ok=0" in capsys.readouterr().out
    # a file where the run writes a folder (review, 2026-12-07: a worker's traceback and no summary line)
    monkeypatch.setattr(write, "stage_table", real_stage)
    blocked = tmp_path / "blocked"
    (blocked / "manifest").mkdir(parents=True)
    (blocked / "manifest" / "night1").write_text("")
    with pytest.raises(SystemExit) as stop:
        launcher.run(["--input", str(film), "--output", str(blocked), "--run_id", "night1", "--no_score",
                      "--transcribe", "never"], save_main_session=False)
    assert "failed (File exists), so the run stopped" in str(stop.value)
    assert "move away the file that stands where the run writes a folder" in str(stop.value)


def test_asr_and_subtitle_languages_no_reader_knows_stop_the_launch():
    # --asr_language klingon (or eng, english) ran, and every film got AsrChunkError rows; --subtitle_language
    # klingon matched no track, silently.
    from pipeline.options import option_problems
    for value, hint in (("klingon", ""), ("eng", "; for 'eng' give en"), ("english", "; for 'english' give en"),
                        ("EN", "; for 'EN' give en")):
        problems = option_problems(_launch_options("--asr_language", value))
        assert problems == [f"--asr_language {value!r} is not a language code Whisper knows: give a lower-case code "
                            f"such as en, fr, de or yue{hint}"], problems
    for value in ("en", "fr", "yue", "haw"):
        assert option_problems(_launch_options("--asr_language", value)) == [], value
    for value in ("klingon", "xx", "en,fr"):
        problems = option_problems(_launch_options("--subtitle_language", value))
        assert len(problems) == 1 and problems[0].startswith(f"--subtitle_language {value!r} is not a language tag")
    for value in ("en", "eng", "pt-BR", "de"):  # the tags --text_languages reads
        assert option_problems(_launch_options("--subtitle_language", value)) == [], value


def test_a_misspelt_option_stops_the_launch_and_a_runner_flag_passes(tmp_path):
    # '--segmnt window' and '--window 2' were Beam's 'Discarding unparseable args' warning, and the run went on with
    # the defaults (subtitle clips, 4 s windows).
    from pipeline.options import misspelt_options
    from pipeline.run import run
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match=r"^pipeline.run: --segmnt: no such option; did you mean --segment\?; "
                                         r"--window: no such option; did you mean --window_s\?$"):
        run(["--input", str(tmp_path / "films"), "--output", str(out), "--segmnt", "window", "--window", "2"],
            save_main_session=False)
    assert not out.exists()
    assert misspelt_options(["--no-score", "--modality=text"]) == [
        "--no-score: no such option; did you mean --no_score?",
        "--modality: no such option; did you mean --modalities?"]
    # Beam's own and runners' flags, one no options class knows, values and what follows '--' are left alone
    assert misspelt_options(["--runner=FlinkRunner", "--flink_master", "host:8081", "--direct_num_workers=2",
                             "--my_cluster_queue", "night", "--segment", "window", "--", "--segmnt"]) == []


def test_a_hand_edited_lock_with_words_for_numbers_is_read_as_an_unreadable_lock(tmp_path):
    # A non-numeric pid or heartbeat in _run.lock.json was a ValueError traceback. Now such a lock is held while the
    # file is fresh (it may be a live run's) and taken over once the file is older than STALE_S.
    import json
    import socket
    import time

    from pipeline.output_lock import LOCK_NAME, STALE_S, OutputLock
    out = tmp_path / "out"
    out.mkdir()
    lock_file = out / LOCK_NAME
    here = socket.gethostname()
    for held in ({"host": "x", "pid": "abc", "heartbeat": "soon"}, {"host": here, "pid": "abc", "heartbeat": 1e12},
                 {"host": here, "pid": -1, "heartbeat": time.time()}, {"host": here, "pid": 0}):
        lock_file.write_text(json.dumps(held))
        lock = OutputLock(str(out))
        assert lock.is_stale(held) is False, held
        with pytest.raises(SystemExit, match="another run is writing to this --output"):
            lock.acquire()
        old = time.time() - STALE_S - 60
        os.utime(lock_file, (old, old))
        assert lock.is_stale(held) is True, held
        lock.acquire()
        assert json.loads(lock_file.read_text())["pid"] == os.getpid()
        lock.release()


def test_train_and_evaluate_refuse_nonsense_numbers_with_their_usage(tmp_path, capsys):
    # --batch_size 0, --epochs 0, --dropout 1.5, --heads 3 (128 is not a multiple), --cv 1 / -1 ended in tracebacks
    # after the data had loaded; now argparse refuses them (exit status 2) before anything loads.
    from pipeline import evaluate, train
    data = tmp_path / "dev.csv"
    data.write_text("")
    base = ["--data", f"meld:{data}", "--out", str(tmp_path / "head.pt")]
    for extra, said in ((["--batch_size", "0"], "argument --batch_size: must be >= 1 (got 0)"),
                        (["--epochs", "0"], "argument --epochs: must be >= 1 (got 0)"),
                        (["--dropout", "1.5"], "argument --dropout: must be >= 0 and < 1 (got 1.5)"),
                        (["--lr", "nan"], "argument --lr: must be a number > 0 (got nan)"),
                        (["--heads", "3"], "--heads 3 must divide --d_model 128"),
                        (["--precision", "int8", "--device", "cuda"],  # the encoder's traceback before 2026-12-07
                         "--precision int8 --device cuda: precision int8 is for CPU workers"),
                        (["--d_model", "0"], "argument --d_model: must be >= 1 (got 0)")):
        with pytest.raises(SystemExit) as stop:
            train.parse_args(base + extra)
        assert stop.value.code == 2 and said in capsys.readouterr().err, extra
    assert train.parse_args(base + ["--heads", "8", "--dropout", "0"]).heads == 8
    for k in ("1", "-1"):
        with pytest.raises(SystemExit) as stop:
            evaluate.build_parser().parse_args(["--data", f"meld:{data}", "--cv", k])
        assert stop.value.code == 2 and f"argument --cv: must be 0 (none) or >= 2 folds (got {k})" in \
            capsys.readouterr().err
    assert evaluate.build_parser().parse_args(["--data", f"meld:{data}", "--cv", "0"]).cv == 0
