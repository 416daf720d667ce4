"""Which programme of an MPEG transport stream each elementary stream belongs to.

A broadcast capture may hold a whole multiplex: several television channels and radio services, each a programme
with its own picture and sound. FFmpeg lists every stream of every programme side by side, so the film's first
audio track may be another channel's (or a radio station's) sound. The programme tables at the start of the file
(the PAT on PID 0 names each programme's PMT, each PMT its streams' PIDs) say which sound goes with the picture;
FFmpeg parses them but PyAV does not expose programmes, and a stream's `id` is its PID, so they are read here.
"""
from __future__ import annotations

from typing import Optional

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

SYNC = 0x47
PACKET_SIZES = (188, 192, 204)  # plain TS; Blu-ray M2TS (a 4-byte time prefix); TS with Reed-Solomon parity
HEAD_BYTES = 4 << 20  # DVB repeats its tables every 100 ms or so: the first megabytes hold them all
PAT_PID, PAT_TABLE, PMT_TABLE = 0x0000, 0x00, 0x02


def crc32_mpeg2(data: bytes) -> int:
    """The CRC every PSI section ends with (polynomial 0x04C11DB7, not reflected, initial value all ones)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def packet_size(head: bytes) -> Optional[int]:
    """The packet size whose sync bytes line up through `head`, or None (not a transport stream)."""
    for size in PACKET_SIZES:
        offset = size - 188  # M2TS's time prefix comes before each packet's sync byte
        starts = range(offset, min(len(head), size * 16), size)
        if len(starts) >= 4 and all(head[i] == SYNC for i in starts):
            return size
    return None


def _sections(data: bytes, size: int, pids: set[int]):
    """(pid, section) for the whole, CRC-checked PSI sections carried on `pids`, in file order."""
    parts: dict[int, bytearray] = {}
    for at in range(size - 188, len(data) - 187, size):
        pkt = data[at:at + 188]
        if pkt[0] != SYNC:
            continue
        pid = ((pkt[1] & 0x1F) << 8) | pkt[2]
        if pid not in pids or pkt[1] & 0x80 or not pkt[3] & 0x10:  # transport error, or no payload
            continue
        payload = pkt[4 + (1 + pkt[4] if pkt[3] & 0x20 else 0):]
        if pkt[1] & 0x40:  # a section starts here, after the pointer field
            if not payload:
                continue
            if pid in parts:
                parts[pid] += payload[1:1 + payload[0]]
                yield from _whole(pid, parts.pop(pid))
            parts[pid] = bytearray(payload[1 + payload[0]:])
        elif pid in parts:
            parts[pid] += payload
        if pid in parts and len(parts[pid]) >= 3 and len(parts[pid]) >= 3 + (((parts[pid][1] & 0x0F) << 8)
                                                                             | parts[pid][2]):
            yield from _whole(pid, parts.pop(pid))


def _whole(pid: int, buf: bytearray):
    if len(buf) < 3 or buf[0] == 0xFF:  # stuffing
        return
    end = 3 + (((buf[1] & 0x0F) << 8) | buf[2])
    if end <= len(buf) and end >= 12 and crc32_mpeg2(bytes(buf[:end])) == 0:
        yield pid, bytes(buf[:end])


def programmes_of(head: bytes) -> dict[int, set[int]]:
    """{programme number: PIDs of its elementary streams} from the tables in the first bytes of a transport
    stream; {} when there are none (not a transport stream, or its tables are not there)."""
    size = packet_size(head)
    if size is None:
        return {}
    pmt_pids: dict[int, int] = {}  # PMT PID -> programme number, from every PAT in the head
    for _, sec in _sections(head, size, {PAT_PID}):
        for i in range(8, len(sec) - 4, 4) if sec[0] == PAT_TABLE else ():
            number, pid = (sec[i] << 8) | sec[i + 1], ((sec[i + 2] & 0x1F) << 8) | sec[i + 3]
            if number:  # programme 0 is the network table, not a programme
                pmt_pids[pid] = number
    found: dict[int, set[int]] = {}
    for pid, sec in _sections(head, size, set(pmt_pids)):
        number = (sec[3] << 8) | sec[4]
        if sec[0] != PMT_TABLE or number != pmt_pids[pid] or number in found:
            continue
        streams, i = set(), 12 + (((sec[10] & 0x0F) << 8) | sec[11])
        while i + 5 <= len(sec) - 4:
            streams.add(((sec[i + 1] & 0x1F) << 8) | sec[i + 2])
            i += 5 + (((sec[i + 3] & 0x0F) << 8) | sec[i + 4])
        found[number] = streams
        if len(found) == len(pmt_pids):
            break
    return found


def read_head(path: str, n: int = HEAD_BYTES) -> bytes:
    """The first n bytes of a film, through FileSystems (local or any Beam filesystem), as its fingerprint is read."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read(n)


def programme_tracks(container, path: str, video, tracks: list) -> list:
    """Of `tracks`, those in the programme of `video` where the film is a transport stream of several programmes
    (a multiplex); `tracks` as they are elsewhere, or when that programme has none of them."""
    if video is None or len(tracks) < 2 or "mpegts" not in (container.format.name or "").split(","):
        return tracks
    programmes = programmes_of(read_head(path))
    if len(programmes) < 2:
        return tracks
    own = set().union(*(pids for pids in programmes.values() if video.id in pids))
    return [s for s in tracks if s.id in own] or tracks
