"""Timestamps of an AVI's packets from its index.

AVI stores no timestamps: FFmpeg's demuxer counts a stream's chunks as it reads them. Where it skips damaged data
(a bad sector, a broken transfer) and resyncs, every later packet is counted early by what was lost: the sound, the
picture and the subtitles go out of step for the rest of the film (a 20 s DivX film with 5 % of its bytes damaged
halfway: 1.1 s early from there, its end at 18.96 s), and nothing said so. The index at the file's end (idx1, or
OpenDML's for files over 1 GiB) gives each chunk's place in its stream; `AviIndex.place` puts a packet back there,
so the hole the damage left is a hole in time (reported as an AudioGap by the decode pass)."""
from __future__ import annotations

from typing import Optional

import numpy as np

CHUNK_HEADER = 8  # an index entry points at the chunk's FourCC and size, the packet at its data after them


# A damaged index is not trusted: times earlier than the demuxer's count (entries lost from the index, not chunks
# from the file), or this far past the stream's declared end (a damaged entry's size put the sound at 49 hours in
# an 8 s film, 2026-12-06): the demuxer's count stays.
PAST_END_S = 60.0


class AviIndex:
    def __init__(self, entries: dict[int, tuple[np.ndarray, np.ndarray]], limits: Optional[dict[int, int]] = None):
        self.entries = entries  # stream index -> (chunk positions ascending, their timestamps)
        self.limits = limits or {}  # stream index -> the latest timestamp believed (PAST_END_S past its end)

    @classmethod
    def of(cls, container, streams) -> Optional["AviIndex"]:
        """The index of an AVI's streams, or None (another format, or an AVI without an index)."""
        if "avi" not in (container.format.name or "").split(","):
            return None
        entries, limits = {}, {}
        for stream in streams:
            index = stream.index_entries
            if len(index):
                pos = np.fromiter((e.pos for e in index), np.int64, len(index))
                ts = np.fromiter((e.timestamp for e in index), np.int64, len(index))
                order = np.argsort(pos, kind="stable")
                entries[stream.index] = (pos[order], ts[order])
                if stream.duration and stream.time_base:
                    limits[stream.index] = int(stream.duration + PAST_END_S / stream.time_base)
        return cls(entries, limits) if entries else None

    def place(self, packet) -> None:
        """Give the packet the timestamp its chunk has in the index, when the demuxer counted it early (PAST_END_S:
        when the index is not trusted)."""
        found = self.entries.get(packet.stream.index)
        if found is None or packet.pos is None or packet.pos < 0 or packet.pts is None:
            return
        pos, ts = found
        i = int(np.searchsorted(pos, packet.pos - CHUNK_HEADER))
        if (i < pos.size and pos[i] == packet.pos - CHUNK_HEADER and ts[i] > packet.pts
                and ts[i] <= self.limits.get(packet.stream.index, ts[i])):
            shift = int(ts[i]) - packet.pts
            packet.pts = int(ts[i])
            if packet.dts is not None:
                packet.dts = packet.dts + shift
