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


def start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            env=os.environ.copy())


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
