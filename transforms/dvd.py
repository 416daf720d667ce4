"""DVD titles: a VIDEO_TS folder holds each title as VTS_NN_1.VOB, VTS_NN_2.VOB, ... (one MPEG program stream cut
into files of at most 1 GiB), beside menus (VIDEO_TS.VOB, VTS_NN_0.VOB) and navigation files (.IFO, .BUP).

A title is one film: discovery keeps its first part and leaves the menus out, and the later parts too when their
first part is there (a later part alone is scored as it is); open_container reads the parts as one stream
(ChainedFile), so its clips run across the cuts on one clock."""
from __future__ import annotations

import io
import re

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

_PART = re.compile(r"^vts_(\d\d)_([1-9])\.vob$", re.IGNORECASE)
_MENU = re.compile(r"^(video_ts|vts_\d\d_0)\.vob$", re.IGNORECASE)


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def is_menu(path: str) -> bool:
    """A DVD's menu (VIDEO_TS.VOB, VTS_NN_0.VOB): never a film."""
    return bool(_MENU.match(_name(path)))


def read_with_first_part(path: str) -> bool:
    """Whether path is a title's second or later part that its first part reads (title_parts: every part before
    it lies beside it)."""
    part = _PART.match(_name(path))
    if not part or part.group(2) == "1":
        return False
    return path in parts_read_by_first([p for p, _ in _siblings(path, part.group(1)).values()])


def parts_read_by_first(paths) -> set[str]:
    """Of these paths, the titles' second and later parts whose parts before them are among the paths too: the
    first part reads them (title_parts), so they are not films of their own."""
    titles: dict[tuple[str, str], dict[int, str]] = {}
    for p in paths:
        part = _PART.match(_name(p))
        if part:
            titles.setdefault((p.rsplit("/", 1)[0], part.group(1)), {})[int(part.group(2))] = p
    return {p for parts in titles.values() for p in _from_first(parts)[1:]}


def _from_first(parts: dict):
    """The parts numbered 1, 2, ... in order, up to the first missing number (a gap ends a title)."""
    run = []
    while len(run) + 1 in parts:
        run.append(parts[len(run) + 1])
    return run


def _siblings(path: str, title: str) -> dict[int, tuple[str, int]]:
    """part number -> (path, size) of the title's VOB files in path's folder (one listing)."""
    from transforms.discover import literal_glob
    folder = path.rsplit("/", 1)[0] if "/" in path else "."
    found = {}
    for m in FileSystems.match([literal_glob(folder) + "/*"])[0].metadata_list:
        part = _PART.match(_name(m.path))
        if part and part.group(1) == title:
            found[int(part.group(2))] = (m.path, m.size_in_bytes)
    return found


def title_name(path: str) -> str | None:
    """A title's name for its film id: the disc's folder and the title ("Film (1999) VTS 01" for
    Film (1999)/VIDEO_TS/VTS_01_1.VOB); None when path is not a title's first part."""
    part = _PART.match(_name(path))
    if not part or part.group(2) != "1":
        return None
    folders = path.rstrip("/").split("://", 1)[-1].split("/")[:-1]
    if folders and folders[-1].lower() == "video_ts":
        folders = folders[:-1]
    return f"{folders[-1] if folders else 'dvd'} VTS {part.group(1)}"


def title_parts(path: str) -> list[tuple[str, int]]:
    """(path, size) of each part of the DVD title whose first part is `path`, in order; [] for any other file.
    The parts are the title's consecutive VTS_NN_k.VOB from k = 1 (a gap ends the title)."""
    first = _PART.match(_name(path))
    if not first or first.group(2) != "1":
        return []
    return _from_first(_siblings(path, first.group(1)))


class ChainedFile(io.RawIOBase):
    """The parts as one read-only, seekable file (each part opened through FileSystems when first read)."""

    def __init__(self, parts: list[tuple[str, int]]):
        super().__init__()
        self.parts, self.pos, self._open = parts, 0, (None, None)
        self.starts = [0]
        for _, size in parts:
            self.starts.append(self.starts[-1] + size)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.starts[-1]}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer) -> int:
        i = next((k for k in range(len(self.parts)) if self.pos < self.starts[k + 1]), None)
        if i is None:
            return 0  # at or past the end
        if self._open[0] != i:
            self._close_part()
            self._open = (i, FileSystems.open(self.parts[i][0], compression_type=CompressionTypes.UNCOMPRESSED))
        f = self._open[1]
        f.seek(self.pos - self.starts[i])
        want = min(len(buffer), self.starts[i + 1] - self.pos)  # a read stops at a part's end
        data = f.read(want)
        buffer[:len(data)] = data
        self.pos += len(data)
        return len(data)

    def _close_part(self) -> None:
        if self._open[1] is not None:
            self._open[1].close()
        self._open = (None, None)

    def close(self) -> None:
        self._close_part()
        super().close()
