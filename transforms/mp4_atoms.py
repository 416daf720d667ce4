"""Why FFmpeg could not open an MP4 or QuickTime file, for the film's error row; and a file whose start alone is
damaged, read through its index (repaired_start).

An MP4 is a chain of atoms, each starting with its length and a four-letter type. A camera, an encoder or a copy
writes the index (`moov`, which a player needs) after the media data (`mdat`) unless the file was made for
streaming. When a file is cut short, the index is what is missing. FFmpeg then says only "Invalid data found when
processing input".

The atoms' headers are walked here: a few bytes are read per atom through Beam's FileSystems, whatever the file's
size. So is the file's last stretch, where the index of a file written index-last ends. Together they tell an
operator which of these it is:
- a copy cut short (copy it again);
- bytes lost or added in the middle (a bad copy);
- a damaged start;
- a damaged index.
"""
from __future__ import annotations

import io
import struct
from typing import Optional

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

# Top-level atoms of MP4 (ISO base media) and QuickTime files
TOP_LEVEL = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"meta", b"moof",
                       b"mfra", b"sidx", b"styp", b"pdin", b"prft", b"emsg", b"junk", b"PICT"})
EXTENSIONS = (".mp4", ".m4v", ".mov", ".qt", ".3gp", ".3g2", ".m4a", ".mj2")
TAIL_BYTES = 32 << 20  # how far back from the end an index that ends the file is looked for
MAX_ATOMS = 10_000  # a chain longer than this is not walked to its end (no real file has that many)


def _is_type(kind: bytes) -> bool:
    return len(kind) == 4 and all(32 <= b < 127 for b in kind)


def _atom_at(f, offset: int) -> Optional[tuple[bytes, int]]:
    """(type, length) of the atom whose header starts at `offset`; None when fewer than 8 bytes are left."""
    f.seek(offset)
    head = f.read(16)
    if len(head) < 8:
        return None
    length, kind = struct.unpack(">I4s", head[:8])
    if length == 1 and len(head) == 16:  # a 64-bit length follows the type
        length = struct.unpack(">Q", head[8:16])[0]
    return kind, length


def _index_ending_the_file(f, size: int) -> Optional[int]:
    """Where a `moov` atom starts whose length ends exactly at the end of the file, in its last TAIL_BYTES."""
    start = max(0, size - TAIL_BYTES)
    f.seek(start)
    tail = f.read(size - start)
    at = tail.rfind(b"moov")
    while at >= 4:
        if struct.unpack(">I", tail[at - 4:at])[0] == len(tail) - (at - 4):
            return start + at - 4
        at = tail.rfind(b"moov", 0, at)
    return None



def diagnosis(path: str, size: int) -> Optional[str]:
    """Why this MP4 or QuickTime file, which FFmpeg could not open, cannot be read, in words; None when it is not
    one (by its first atom, else its name), or its atoms say nothing."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        first = _atom_at(f, 0)
        if first is None or (first[0] not in TOP_LEVEL and not path.lower().endswith(EXTENSIONS)):
            return None
        index = _index_ending_the_file(f, size)
        if first[0] not in TOP_LEVEL:
            return ("its first bytes are not an MP4 / QuickTime atom: the start of the file is damaged"
                    + (" (its index at the end is whole: copy it again, or repair its start)" if index else
                       ", or it is another kind of file"))
        offset, previous, seen = 0, 0, set()
        for _ in range(MAX_ATOMS):
            atom = _atom_at(f, offset)
            if atom is None:
                break
            kind, length = atom
            broken = not _is_type(kind) or (length < 8 and length != 0)
            end = size if length == 0 or broken else offset + length
            if broken or end > size:  # the atom that ends here (or past the end) is the last one that makes sense
                start, claimed = (previous, offset) if broken else (offset, end)
                if index is not None and index > start:
                    return _shifted(claimed, index)
                if broken:
                    return (f"its atoms stop making sense at byte {offset:,} of {size:,}: bytes lost or added "
                            "before there, or damage (a damaged copy: copy it again)")
                if kind == b"moov":
                    return (f"the file was cut short inside its index (moov, {100 * size / end:.0f} % of the file "
                            "written): an interrupted copy or recording (copy it again from its source)")
                if b"moov" in seen:  # the index came first (a file made for streaming): the loss can be anywhere
                    return (f"its {kind.decode()} atom at byte {offset:,} needs {length:,} bytes, the file is "
                            f"{end - size:,} bytes short of that: bytes are missing from its media (cut short, or lost "
                            "in the middle: copy it again)")
                return (f"the file was cut short: its {kind.decode()} atom at byte {offset:,} needs {length:,} bytes, "
                        f"the file ends {end - size:,} bytes before that ({100 * size / end:.0f} % written); its index "
                        "(moov), written after the media, is missing: an interrupted copy or recording (copy it again "
                        "from its source)")
            seen.add(kind)
            previous, offset = offset, end
        if b"moov" in seen:
            return "its atoms are whole but its index (moov) is damaged: the film's tables cannot be read"
        if b"moof" not in seen:
            return "it has no index (moov atom): the file was cut short or not finished by the program writing it"
    return None


def _shifted(claimed: int, index: int) -> str:
    """The atoms before the index say it starts at `claimed`; it starts at `index`."""
    change = f"{index - claimed:,} bytes were added" if index > claimed else f"{claimed - index:,} bytes are missing"
    return (f"its atoms lead to byte {claimed:,} but its index (moov) starts at byte {index:,}: {change} in the middle "
            "of the file (a damaged copy: copy it again)")


CONTAINERS = (b"trak", b"mdia", b"minf", b"stbl")  # the index's atoms that hold the chunk offset tables


def _first_media_offset(f, start: int, end: int) -> Optional[int]:
    """The smallest first chunk offset (stco / co64) of the tracks in the index atoms between start and end."""
    found, offset = [], start
    while offset + 8 <= end:
        atom = _atom_at(f, offset)
        if atom is None or atom[1] < 8 or offset + atom[1] > end:
            break
        kind, length = atom
        if kind in CONTAINERS:
            inner = _first_media_offset(f, offset + 8, offset + length)
            found += [inner] if inner is not None else []
        elif kind in (b"stco", b"co64"):
            f.seek(offset + 8)
            table = f.read(16)
            if len(table) >= 12 and struct.unpack(">I", table[4:8])[0]:
                found.append(struct.unpack(">Q" if kind == b"co64" else ">I",
                                           table[8:16] if kind == b"co64" else table[8:12])[0])
        offset += length
    return min(found) if found else None


class RepairedStart(io.RawIOBase):
    """A file read with its first len(head) bytes replaced by `head`; `note` says why (repaired_start)."""

    def __init__(self, raw, head: bytes, note: str):
        super().__init__()
        self.raw, self.head, self.note, self.pos = raw, head, note, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.pos = self.raw.seek(offset, whence)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))  # (seek keeps the raw file where this one is)
        if self.pos < len(self.head):  # the part of the read that falls in the replaced start
            n = min(len(self.head) - self.pos, len(data))
            data = self.head[self.pos:self.pos + n] + data[n:]
        buffer[:len(data)] = data
        self.pos += len(data)
        return len(data)

    def close(self) -> None:
        self.raw.close()
        super().close()


def repaired_start(path: str) -> Optional[RepairedStart]:
    """An MP4 or QuickTime file whose first bytes are damaged (no atom there) while its index (moov) at the end is
    whole, as FFmpeg can read it: the bytes before the first media chunk the index names are served as a `free` atom
    and the header of the media atom (mdat) that runs up to the index. The index's offsets are the file's own, so
    every sample after the damaged start reads as it was written. None when the file is not such a file."""
    f = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    try:
        size = f.seek(0, io.SEEK_END)
        first = _atom_at(f, 0)
        # no atom at the start: not a type of four printable letters, or a length past the file (an atom of a type
        # unknown here, a camera's own, is one: such a file is left to FFmpeg as it is)
        damaged = first is not None and (not _is_type(first[0]) or first[1] != 0 and not 8 <= first[1] <= size)
        index = _index_ending_the_file(f, size) if damaged else None
        media = _first_media_offset(f, index + 8, size) if index is not None else None
        wide = media is not None and index - (media - 8) >= 1 << 32  # an mdat over 4 GiB: a 16-byte header
        start = None if media is None else media - (16 if wide else 8)
        if start is None or start < 8 or media > index:
            f.close()
            return None
        mdat = (struct.pack(">I4sQ", 1, b"mdat", index - start) if wide
                else struct.pack(">I4s", index - start, b"mdat"))
        head = struct.pack(">I4s", start, b"free") + bytes(start - 8) + mdat
    except Exception:
        f.close()
        raise
    return RepairedStart(f, head, f"its start was damaged (no MP4 atom there): its first {len(head):,} bytes were "
                                  "read as a header that leads to its index at the end, which is whole; media the "
                                  "damage reached is lost")
