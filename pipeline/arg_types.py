"""argparse types for the CLIs' model and modality flags, and the rule pipeline.run's launch check shares with them:
a value that names a local path which is not there, or a modality no branch has, stops the command with its usage
and one line, before any model loads (it was a traceback from deep in the loading)."""
from __future__ import annotations

import argparse
import functools
import os

WEIGHT_SUFFIXES = (".pt", ".pth", ".onnx", ".safetensors", ".bin")


def io_path(value: str) -> str:
    """--input / --output / --features ...: a Beam path as given, with a local one's file:// dropped (Beam's
    filesystems have no such scheme) and a leading ~ expanded: quoted to keep the shell off its glob
    ('~/archive/**'), it reached Beam as written, matched nothing, and an --output '~/out' wrote into ./~/out."""
    value = value.removeprefix("file://")
    return os.path.expanduser(value) if value.startswith("~") else value


def local_path_named(value: str) -> str | None:
    """The local path a model flag names, or None for a model name (a timm or hub name, a Whisper size) or a remote
    path: an absolute or ./ ../ ~ path, or a file name with a weight file's suffix."""
    if "://" in value and not value.startswith("file://"):
        return None
    value = value.removeprefix("file://")
    if value.startswith(("/", "./", "../", "~")) or value.endswith(WEIGHT_SUFFIXES):
        return os.path.expanduser(value)
    return None


def missing_model_path(value: str | None) -> str | None:
    """The local path `value` names when it is not there; None when it is there or is a name."""
    path = local_path_named(value or "")
    return path if path is not None and not os.path.exists(path) else None


def model_path_arg(value: str) -> str:
    """--head / --text_model / --vision_model: a path that is there (~ expanded), or a model name."""
    if missing_model_path(value):
        raise argparse.ArgumentTypeError(f"no such file or folder: {value}")
    return io_path(value)


def head_problem(value: str | None) -> str | None:
    """What is wrong with a --head value (None: nothing): a path that is not there, or a file that is not a head
    checkpoint (before 2026-12-05 a wrong file was torch's unpickling traceback, in a run's workers)."""
    if value is None:
        return None
    if missing_model_path(value):
        return f"no such file or folder: {value}"
    local = local_path_named(value)
    if local is None:  # on an object store (gs://, s3://): the workers read it, the launcher may not be able to
        return None
    from model.checkpoints import load_head_meta
    try:
        load_head_meta(local)
    except (ValueError, OSError, KeyError) as exc:
        return str(exc)
    return None


def head_path_arg(value: str) -> str:
    """--head: a head checkpoint that loads (~ expanded)."""
    problem = head_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return io_path(value)


def modalities_arg(value: str) -> str:
    """--modalities: a comma list of text, vision, face, audio (kept as given; parse_modalities reads it)."""
    from model.featurize import parse_modalities
    try:
        parse_modalities(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def stops_on_data_errors(prog: str):
    """A CLI main that ends with `prog: <one line>` (exit status 1) when a --data / --dev file cannot be read as the
    kind its spec names (training.datasets.DataError), not the reader's traceback."""
    def wrap(main):
        @functools.wraps(main)
        def checked(argv=None):
            from training.datasets import DataError
            try:
                return main(argv)
            except DataError as exc:
                raise SystemExit(f"{prog}: {exc}") from None
        return checked
    return wrap
