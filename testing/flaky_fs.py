"""flaky://<local path>: a Beam filesystem over local files whose reads fail in a stretch of their bytes, as a
network share or an object store can. The real thing (a storage that drops a connection mid-read) cannot be had
on demand; this serves the same bytes through the same Beam FileSystems path a gs:// film takes, and raises the
OSError such a storage raises (EIO) while a read falls in FAILING[path] (fractions of the file's size)."""
from __future__ import annotations

import errno
import io
import os

from apache_beam.io.filesystem import FileMetadata, MatchResult
from apache_beam.io.localfilesystem import LocalFileSystem

PREFIX = "flaky://"
FAILING: dict[str, tuple[float, float]] = {}  # local path -> (from, to) as fractions of its size


class _FlakyReader(io.RawIOBase):
    def __init__(self, path: str, window: tuple[float, float] | None):
        self._f = open(path, "rb")
        size = os.path.getsize(path)
        self._lo, self._hi = (int(window[0] * size), int(window[1] * size)) if window else (0, 0)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def readinto(self, buf) -> int:
        at = self._f.tell()
        if at < self._hi and at + len(buf) > self._lo:  # the read touches the failing stretch
            raise OSError(errno.EIO, "Input/output error (the storage failed)")
        data = self._f.read(len(buf))
        buf[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self._f.close()
        super().close()


class FlakyFileSystem(LocalFileSystem):
    @classmethod
    def scheme(cls) -> str:
        return "flaky"

    def open(self, path, mime_type="application/octet-stream", compression_type="auto"):
        local = path[len(PREFIX):]
        return io.BufferedReader(_FlakyReader(local, FAILING.get(local)))

    def match(self, patterns, limits=None):
        results = super().match([p[len(PREFIX):] for p in patterns], limits)
        return [MatchResult(PREFIX + r.pattern, [
            FileMetadata(PREFIX + m.path, m.size_in_bytes, m.last_updated_in_seconds) for m in r.metadata_list])
            for r in results]
