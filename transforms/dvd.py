"""DVD titles: a VIDEO_TS folder holds each title as VTS_NN_1.VOB, VTS_NN_2.VOB, ... (one MPEG program stream cut
into files of at most 1 GiB), beside menus (VIDEO_TS.VOB, VTS_NN_0.VOB) and navigation files (.IFO, .BUP).

A title set (VTS_NN) is one film: discovery keeps its first part and leaves the menus out, and the later parts too
when their first part is there (a later part alone is scored as it is); open_container reads the parts as one
stream (ChainedFile), so its clips run across the cuts on one clock. A title set may hold several titles, program
chains or camera angles (their blocks interleaved in the VOBs): its navigation file (VTS_NN_0.IFO) says so, and
`layout_note` words the row that says the title set was scored as its VOBs run (title_set_layout)."""
from __future__ import annotations

import dataclasses
import io
import logging
import re
from typing import Optional

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

log = logging.getLogger(__name__)

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


def bluray_stream_name(path: str) -> str | None:
    """A Blu-ray (or AVCHD) stream's name for its film id: the disc's folder and the clip ("Movie 00000" for
    Movie/BDMV/STREAM/00000.m2ts; before 2026-12-07 "00000", one name for every disc's main feature); None for a
    file not in a BDMV/STREAM folder."""
    folders = path.rstrip("/").split("://", 1)[-1].split("/")
    if len(folders) < 3 or folders[-2].lower() != "stream" or folders[-3].lower() != "bdmv":
        return None
    disc = folders[-4] if len(folders) > 3 and folders[-4] else "bluray"
    return f"{disc} {folders[-1].rsplit('.', 1)[0]}"


def title_parts(path: str) -> list[tuple[str, int]]:
    """(path, size) of each part of the DVD title whose first part is `path`, in order; [] for any other file.
    The parts are the title's consecutive VTS_NN_k.VOB from k = 1 (a gap ends the title)."""
    first = _PART.match(_name(path))
    if not first or first.group(2) != "1":
        return []
    return _from_first(_siblings(path, first.group(1)))


SECTOR = 2048
MAX_IFO_BYTES = 4 << 20  # a title set's IFO is kilobytes to a few hundred; a larger one is not read
_IFO = re.compile(r"^vts_(\d\d)_0\.(ifo|bup)$", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class TitleSetLayout:
    """What a title set's navigation file (VTS_NN_0.IFO) says it holds: titles (VTS_PTT_SRPT), program chains
    (VTS_PGCI: a title's cells in play order; a second one is another cut, a bonus, a branch) and the most camera
    angles of any angle block (cells of one block, each an angle, whose VOB units are interleaved)."""
    titles: int
    program_chains: int
    angles: int

    @property
    def linear(self) -> bool:
        """Whether the VOBs, read as they run, are the title set's one title as it plays."""
        return self.titles <= 1 and self.program_chains <= 1 and self.angles <= 1


def title_set_layout(path: str) -> Optional[TitleSetLayout]:
    """The layout of the title set whose VOB is `path`, from its VTS_NN_0.IFO (else its backup, .BUP) beside it;
    None when neither is there or readable (an IFO that is not a DVD's)."""
    part = _PART.match(_name(path))
    if not part:
        return None
    folder = path.rsplit("/", 1)[0] if "/" in path else "."
    for ifo in _navigation_files(folder, part.group(1)):
        try:
            with FileSystems.open(ifo, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                layout = parse_vts_ifo(f.read(MAX_IFO_BYTES))
        except OSError:
            continue
        if layout is not None:
            return layout
    return None


def _navigation_files(folder: str, title: str) -> list[str]:
    """The title set's IFO, then its BUP, in `folder` (any case)."""
    from transforms.discover import literal_glob
    found = [m.path for m in FileSystems.match([literal_glob(folder) + "/*"])[0].metadata_list
             if (ifo := _IFO.match(_name(m.path))) and ifo.group(1) == title]
    return sorted(found, key=lambda p: _name(p).lower().endswith(".bup"))


def parse_vts_ifo(data: bytes) -> Optional[TitleSetLayout]:
    """A VTS IFO's layout (the DVD-Video VTSI: VTSI_MAT, VTS_PTT_SRPT at the sector its offset 0xC8 gives, VTS_PGCI at
    0xCC's), or None when it is not one or its tables point outside it."""
    if not data.startswith(b"DVDVIDEO-VTS"):
        return None
    ptt, pgci = (_u32(data, at) * SECTOR for at in (0xC8, 0xCC))
    if not ptt or not pgci or ptt + 8 > len(data) or pgci + 8 > len(data):
        return None
    titles, chains = _u16(data, ptt), _u16(data, pgci)
    angles = 1
    for i in range(chains):
        entry = pgci + 8 + 8 * i
        if entry + 8 > len(data):
            return None
        angles = max(angles, _angles(data, pgci + _u32(data, entry + 4)))
    return TitleSetLayout(titles, chains, angles)


def _angles(data: bytes, pgc: int) -> int:
    """The most cells of one angle block in the program chain at `pgc` (1: no angle block). Each cell's playback
    information (24 bytes, from the PGC's offset 0xE8) starts with its block mode (bits 7-6: first, inside, last)
    and block type (bits 5-4: 1, an angle block)."""
    if pgc + 0xEA > len(data):
        return 1
    cells, table = data[pgc + 3], pgc + _u16(data, pgc + 0xE8)
    most = run = 0
    for c in range(cells):
        at = table + 24 * c
        if at >= len(data):
            break
        mode, kind = data[at] >> 6, (data[at] >> 4) & 3
        run = (1 if mode == 1 else run + 1) if kind == 1 and mode else 0
        most = max(most, run)
    return max(most, 1)


def _u16(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 2], "big")


def _u32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 4], "big")


def layout_note(path: str) -> Optional[str]:
    """The words of a non-fatal row for a title set that is not one linear title (title_set_layout), else None:
    its VOBs are scored as they run, one after the other, so several titles follow one another in its clips and
    angles alternate block by block (the picture and sound of each angle in turn)."""
    try:
        layout = title_set_layout(path)
    except Exception as exc:  # noqa: BLE001 - a note is not worth the film: a listing the storage failed says none
        log.info("%s: the title set's IFO not read (%s): no layout note", path, exc)
        return None
    if layout is None or layout.linear:
        return None
    held = ", ".join(f"{n} {what}{'s' if n != 1 else ''}" for n, what in (
        (layout.titles, "title"), (layout.program_chains, "program chain"), (layout.angles, "camera angle"))
        if n > 1)
    return (f"the DVD title set holds {held} (its VTS IFO): it was scored as its VOBs run, one after the other, not "
            "title by title" + ("; its angles' blocks are interleaved in the VOBs, so the clips there alternate "
                                "between the angles" if layout.angles > 1 else ""))


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
