"""The film-emotion pipeline package. Dataflow/Flink/Spark workers install it through --setup_file."""
import pathlib

import setuptools

HERE = pathlib.Path(__file__).parent


def _requirements(name: str) -> list[str]:
    lines = (HERE / name).read_text().splitlines() if (HERE / name).exists() else []
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


setuptools.setup(
    name="film-emotion-pipeline",
    version="0.1.0",
    description="Batch emotion scoring of film catalogues on Apache Beam (BVPEC cross-modal head).",
    packages=setuptools.find_packages(include=["pipeline", "pipeline.*", "transforms", "transforms.*",
                                               "model", "model.*", "schemas", "schemas.*",
                                               "training", "training.*", "testing", "testing.*"]),
    package_data={"model": ["weights/*.pt", "weights/*.json", "weights/*.md"],
                  "pipeline": ["report/templates/*.j2"]},
    python_requires=">=3.10",
    # Workers get the full pinned closure, the cloud storage clients (gs://, s3://) and the weight-only packages.
    install_requires=(_requirements("requirements.txt") + _requirements("requirements-cloud.txt")
                      + _requirements("requirements-weights.txt")),
)
