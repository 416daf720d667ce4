"""Writing a local file so that no reader sees it half-written and no two writers share a temporary file."""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def written_atomically(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path` to write to; when the block ends it is renamed onto `path`.

    The temporary name carries the process and thread, so parallel workers or two training runs filling one
    cache each write their own file (a fixed name let one run rename away the other's). It keeps the suffix
    (np.save adds `.npy` to a name without it). On an error the temporary file is removed and `path` is
    left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}-{threading.get_ident()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
