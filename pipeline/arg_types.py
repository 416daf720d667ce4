"""argparse types for the CLIs' model and modality flags, and the rule pipeline.run's launch check shares with them:
a value that names a local path which is not there, or a modality no branch has, stops the command with its usage
and one line, before any model loads (it was a traceback from deep in the loading)."""
from __future__ import annotations

import argparse
import functools
import math
import os
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from model.encoders.versions import is_url

WEIGHT_SUFFIXES = (".pt", ".pth", ".onnx", ".safetensors", ".bin")


def io_path(value: str) -> str:
    """--input / --output / --features / --head ...: a Beam path, with a local one's file:// dropped (Beam's
    filesystems have no such scheme), a leading ~ expanded (quoted to keep the shell off its glob ('~/archive/**'),
    it reached Beam as written, matched nothing, and an --output '~/out' wrote into ./~/out) and a relative one made
    absolute: a cluster's workers run in a folder of their own, where a relative --input found no film (ok=0, exit 0)
    and a relative --head failed the job. A path on another filesystem (gs://, s3://) is kept as given."""
    value = value.removeprefix("file://")
    if not value or is_url(value):
        return value
    path = os.path.abspath(os.path.expanduser(value))
    return path + "/" if value.endswith("/") and not path.endswith("/") else path  # '/': every file below it


def model_arg(value: str) -> str:
    """--text_model / --vision_model: a local path made absolute as io_path makes it; a model name (a timm or hub
    name) or a URL as given (option_problems refuses a URL)."""
    return io_path(value) if local_path_named(value) is not None else value


def name_or_path(value: str) -> str:
    """--asr_model: as given, with file:// dropped and a leading ~ expanded. A relative path stays relative: its
    text is part of the config hash, so making it absolute would redo every film it transcribed."""
    value = value.removeprefix("file://")
    return os.path.expanduser(value) if value.startswith("~") else value


def model_url_problem(value: str | None) -> str | None:
    """Why a --text_model / --vision_model / --asr_model on an object store cannot be used (None: not a URL): these
    models load from local files only, so the launch says what to give instead of a worker's traceback."""
    if not value or not is_url(value) or value.startswith("file://"):
        return None
    return (f"the models load from a local path or a model name, not from {value.split('://', 1)[0]}://; copy the "
            "model into the workers' image (or a folder every worker mounts) and give that local path")


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
    """--text_model / --vision_model: a path that is there (~ expanded, made absolute), or a model name."""
    if missing_model_path(value):
        raise argparse.ArgumentTypeError(f"no such file or folder: {value}")
    problem = model_url_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"{value}: {problem}")
    return model_arg(value)


def head_problem(value: str | None) -> str | None:
    """What is wrong with a --head value (None: nothing): a path that is not there, or a file that is not a head
    checkpoint (before 2026-12-05 a wrong file was torch's unpickling traceback, in a run's workers)."""
    if value is None:
        return None
    if missing_model_path(value):
        return f"no such file or folder: {value}"
    path = io_path(value)
    if is_url(path):  # (gs://, s3://) read through Beam's FileSystems where the run scores (launcher and workers)
        return None
    from model.checkpoints import load_head_meta
    try:
        load_head_meta(path)
    except (ValueError, OSError, KeyError) as exc:
        return str(exc)
    return None


def head_path_arg(value: str) -> str:
    """--head: a head checkpoint that loads (~ expanded, made absolute)."""
    problem = head_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return io_path(value)


def add_text_languages(parser: argparse.ArgumentParser) -> None:
    """--text_languages of the commands that read labelled clips (evaluate, calibrate, train)."""
    from model.encoders.versions import TEXT_LANGUAGES
    parser.add_argument("--text_languages", default=",".join(TEXT_LANGUAGES), type=text_languages_arg,
                        help="lines in these languages are read, as pipeline.run's --text_languages (default: "
                             "%(default)s; 'any': every line): give the run's, so a clip manifest is read as the run "
                             "read its films")


def text_languages_arg(value: str) -> tuple[str, ...]:
    """--text_languages of the commands that read labelled clips (evaluate, calibrate, train): which lines they read,
    as pipeline.run's option of that name (its codes, or 'any'), so a set is read as the run read its films."""
    from transforms.language import parse_text_languages
    try:
        return parse_text_languages(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def modalities_arg(value: str) -> str:
    """--modalities: a comma list of text, vision, face, audio (kept as given; parse_modalities reads it)."""
    from model.featurize import parse_modalities
    try:
        parse_modalities(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def positive_int(value: str) -> int:
    """A count of at least 1 (--epochs, --batch_size, --heads, --d_model, --cv_epochs): 0 ended in a traceback after
    the data had loaded (before 2026-12-06)."""
    number = int(value)  # (not a whole number: argparse's "invalid positive_int value")
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {value})")
    return number


def count_arg(value: str) -> int:
    """A count of 0 or more (the report's limits): a negative one sliced from the end and gave wrong counts (before
    2026-12-07: --max_films -1 drew 3 of 8 films, --max_table_rows -2 said "8 more film(s) not listed" of 4)."""
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (got {value})")
    return number


def positive_float(value: str) -> float:
    """A finite number above 0 (--lr)."""
    number = float(value)
    if not 0 < number < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number > 0 (got {value})")
    return number


def fraction(value: str) -> float:
    """A probability of dropping, at least 0 and below 1 (--dropout): torch refuses 1.5 once the model is built."""
    number = float(value)
    if not 0 <= number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 0 and < 1 (got {value})")
    return number


def cv_folds(value: str) -> int:
    """--cv: 0 (no K-fold estimate) or a number of folds, at least 2 (one fold has nothing to train or score on)."""
    number = int(value)
    if number != 0 and number < 2:
        raise argparse.ArgumentTypeError(f"must be 0 (none) or >= 2 folds (got {value})")
    return number


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


def shipped_file_problem(out, shipped, own_data: bool) -> Optional[str]:
    """Why a branch trainer learning from --data of one's own must not write `out`: it is the install's shipped file
    (the trainers' default --out), which every run of this install reads (found in review, 2026-12-07)."""
    if own_data and Path(out).expanduser().resolve() == Path(shipped).resolve():
        return (f"--out is the shipped {Path(shipped).name} (the default): learnt from your --data, it would replace "
                "the shipped classifier for every run of this install (and every film's model_version); name a file "
                "of your own, e.g. --out mine.pt")
    return None


def output_problem(path: str, inputs: Sequence[str] = ()) -> Optional[str]:
    """Why a local output file cannot be written where it is asked for, before any work: a folder, one of the
    command's input files (its --data / --dev specs or its --head: the output would replace it), or a place no file
    can be made (a missing folder, no permission); None where it can. Before 2026-12-07 pipeline.train, calibrate
    and evaluate wrote over their own input data, and failed at an unwritable path only after all the work."""
    if not path or is_url(path):
        return None
    if os.path.isdir(path):
        return f"{path} is a folder"
    from training.datasets import parse_spec
    for given in inputs:
        try:
            source = str(parse_spec(given)[1]) if ":" in given and not os.path.exists(given) else given
        except ValueError:
            source = given
        if os.path.exists(source) and os.path.exists(path) and os.path.samefile(source, path) or (
                os.path.abspath(source) == os.path.abspath(path)):  # (one not written yet: this command's other output)
            return f"{path} is an input of this command ({given}): it would be written over"
    folder = os.path.dirname(os.path.abspath(path))
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    return None
