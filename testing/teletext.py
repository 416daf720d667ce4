"""DVB teletext subtitles written from text, for tests of transforms.teletext: each subtitle is a page (888 by
default) with the subtitle flag, its lines boxed on rows near the bottom, sent as EN 300 472 data units (bits least
significant first) in a recording's teletext stream; an empty page takes it off the screen."""
from __future__ import annotations

from typing import Sequence

from transforms.teletext import _REVERSE  # each byte's bits reversed: sent least significant first


def hamming84(nibble: int) -> int:
    """The Hamming 8/4 code word of a nibble (the reader's table, checked against ETS 300 706 in the tests)."""
    from transforms.teletext import _CODES
    return _CODES[nibble]


def parity(c: int) -> int:
    return c | (0x80 if bin(c).count("1") % 2 == 0 else 0)


def _unit(magazine: int, row: int, data: bytes, subtitle_unit: bool = True) -> bytes:
    address = bytes([hamming84((magazine & 7) | (row & 1) << 3), hamming84(row >> 1)])
    body = bytes([0xC0 | 21, 0xE4]) + (address + data).translate(_REVERSE)  # field/line, framing code, packet
    return bytes([0x03 if subtitle_unit else 0x02, 0x2C]) + body


def header(page: int, subtitle: bool = True, national: int = 0, erase: bool = True) -> bytes:
    """Row 0 of page 0xMTU: page units and tens, subcodes 0, C4 erase, C6 subtitle, national option (C12-C14)."""
    nibbles = [page & 0xF, page >> 4 & 0xF, 0, 8 if erase else 0, 0, 8 if subtitle else 0, 0, (national & 7) << 1]
    return bytes(hamming84(n) for n in nibbles) + bytes(parity(0x20) for _ in range(32))


def row_text(text: str, codes: dict[str, int] | None = None) -> bytes:
    """40 characters: start box twice, the text, end box twice, spaces; codes maps a letter to its G0 code."""
    chars = [0x0B, 0x0B] + [(codes or {}).get(ch, ord(ch)) for ch in text] + [0x0A, 0x0A]
    chars = (chars + [0x20] * 40)[:40]
    return bytes(parity(c) for c in chars)


def page_pes(page: int, lines: Sequence[str], national: int = 0, codes: dict[str, int] | None = None,
             subtitle: bool = True) -> bytes:
    """One PES data field showing `lines` on the page (an empty list: an empty page); subtitle False: a page
    without the subtitle flag (an index or news page)."""
    magazine = page >> 8
    units = _unit(magazine, 0, header(page & 0xFF, subtitle=subtitle, national=national))
    first = 22 - 2 * (len(lines) - 1)
    for k, line in enumerate(lines):
        units += _unit(magazine, first + 2 * k, row_text(line, codes))
    return bytes([0x10]) + units


def with_teletext(film, path, events: Sequence[tuple[float, float, Sequence[str]]], page: int = 0x888,
                  language: str = "eng", national: int = 0, codes: dict[str, int] | None = None,
                  more: Sequence[tuple[float, bytes]] = ()):
    """A copy of `film` as an MPEG-TS recording (its streams copied; give a film written as .ts, whose headers are in
    its stream) with a teletext stream carrying the events, and `more` (time, PES data field) as they are."""
    import fractions
    from pathlib import Path

    import av
    queue = sorted([(s, page_pes(page, list(lines), national, codes)) for s, _, lines in events]
                   + [(e, page_pes(page, [], national)) for _, e, _ in events] + list(more), key=lambda p: p[0])
    with av.open(str(film)) as src, av.open(str(path), "w", format="mpegts") as out:
        copies = {s.index: out.add_stream_from_template(s) for s in src.streams if s.type in ("video", "audio")}
        track = out.add_mux_stream("dvb_teletext")
        track.metadata["language"] = language

        def send(t, data):
            p = av.Packet(data)
            p.stream, p.time_base = track, fractions.Fraction(1, 90000)
            p.pts = p.dts = int(round(t * 90000))
            out.mux(p)
        for packet in src.demux(*[src.streams[i] for i in copies]):
            if packet.dts is None:
                continue
            while queue and queue[0][0] <= float(packet.dts * packet.time_base):
                send(*queue.pop(0))
            packet.stream = copies[packet.stream.index]
            out.mux(packet)
        for item in queue:
            send(*item)
    return Path(path)
