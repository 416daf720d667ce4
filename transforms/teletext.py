"""EBU teletext subtitles in DVB recordings (EN 300 472 in MPEG-TS; ETS 300 706 pages): read as text, no OCR.

European broadcasters carry their subtitles as a teletext page (888, 777, 150, ...) in the recording's teletext
stream. FFmpeg has no teletext decoder in PyAV's build, so the stream is demuxed here: each PES holds data units of
one teletext packet each (bits sent least significant first), a packet's address is Hamming 8/4 coded (magazine,
row; a single bit error corrected), a page header (row 0) carries the page number and its control bits (C4 erase, C6
subtitle), rows 1-23 carry 40 characters each, 7 bits with odd parity (a character that fails it is a space), in the
Latin G0 set with the national option the header names (one the reader does not know is read as English, with a
warning once per film).

A subtitle page is shown from its header's time until the next header of that page with the erase bit C4 (a new
subtitle or an empty page), at most MAX_HOLD_S after it was last sent. A header sent again without C4 keeps the
page, its rows updated in place, and a page sent again in full with the same text goes on as the same line
(before 2026-12-06 every header ended the line: a refresh cut it short, a repeat gave it twice). Of several
subtitle pages (languages), each is a track of its own.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Optional, Sequence

from transforms.probe import demux, film_start_s, open_container

log = logging.getLogger(__name__)
MAX_HOLD_S = 10.0
_REVERSE = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))
# national option subsets (header bits C12-C14) for the 13 G0 positions they change
_NATIONAL_POSITIONS = (0x23, 0x24, 0x40, 0x5B, 0x5C, 0x5D, 0x5E, 0x5F, 0x60, 0x7B, 0x7C, 0x7D, 0x7E)
_NATIONAL = {  # by C12 + 2 C13 + 4 C14 (ETS 300 706 table 32 lists them C12 C13 C14)
    0: "£$@←½→↑#—¼‖¾÷",  # English
    1: "éïàëêùî#èâôûç",  # French
    2: "#¤ÉÄÖÅÜ_éäöåü",  # Swedish, Finnish, Hungarian
    3: "#ůčťžýířéáěúš",  # Czech, Slovak (before 2026-12-06 read as English)
    4: "#$§ÄÖÜ^_°äöüß",  # German
    5: "ç$¡áéíóú¿üñèà",  # Portuguese, Spanish
    6: "£$é°ç→↑#ùàòèì",  # Italian
}


def _code(nibble: int) -> int:
    """Hamming 8/4 code word of a nibble: protection bits 0, 2, 4, 6 (odd parity), data bits 1, 3, 5, 7."""
    d = [nibble >> k & 1 for k in range(4)]
    p1, p2, p3 = 1 ^ d[0] ^ d[2] ^ d[3], 1 ^ d[0] ^ d[1] ^ d[3], 1 ^ d[0] ^ d[1] ^ d[2]
    p4 = 1 ^ p1 ^ d[0] ^ p2 ^ d[1] ^ p3 ^ d[2] ^ d[3]
    return p1 | d[0] << 1 | p2 << 2 | d[1] << 3 | p3 << 4 | d[2] << 5 | p4 << 6 | d[3] << 7


_CODES = [_code(n) for n in range(16)]
# each byte's nibble: the code word within one bit error of it (corrected), -1 for two errors (detected)
_HAMMING = [next((n for n, c in enumerate(_CODES) if bin(b ^ c).count("1") <= 1), -1) for b in range(256)]


def hamming84(byte: int) -> int:
    """The nibble a Hamming 8/4 byte carries, a single bit error corrected; -1 where two bits are wrong."""
    return _HAMMING[byte]


def data_units(pes: bytes) -> list[bytes]:
    """The 42 bytes after the framing code (address and data) of each teletext data unit of a PES data field, in
    teletext order (each byte reversed as sent)."""
    if not pes or not 0x10 <= pes[0] <= 0x1F:  # data_identifier: EBU data
        return []
    out, i = [], 1
    while i + 2 <= len(pes):
        unit_id, length = pes[i], pes[i + 1]
        body = pes[i + 2:i + 2 + length]
        if unit_id in (0x02, 0x03) and length == 0x2C and len(body) == 0x2C:
            out.append(body[2:].translate(_REVERSE))  # [0] field/line, [1] framing code
        i += 2 + length
    return out


def _text(row: bytes, national: int) -> str:
    table = _NATIONAL.get(national, _NATIONAL[0])
    chars = []
    for b in row:
        c = b & 0x7F
        if c < 0x20 or bin(b).count("1") % 2 == 0:  # spacing attributes (colours, boxes), a parity error: a space
            chars.append(" ")
        elif c in _NATIONAL_POSITIONS:
            chars.append(table[_NATIONAL_POSITIONS.index(c)])
        else:
            chars.append(chr(c))
    return " ".join("".join(chars).split())


class _Page:
    """A subtitle page as received: its rows, from its first header with C4 (erase) on."""

    def __init__(self, start: float, national: int):
        self.start, self.national, self.rows = start, national, {}
        self.sent = start  # its last header: a page sent again is held MAX_HOLD_S from then

    def text(self) -> str:
        """The page's rows, top to bottom, as one line."""
        return " ".join(t for _, t in sorted(self.rows.items()) if t)

    def line(self, end: float) -> tuple[float, float, str]:
        """The page as a line taken off the screen at `end`, or MAX_HOLD_S after it was last sent."""
        return self.start, min(end, self.sent + MAX_HOLD_S), self.text()


def _add_line(lines: list[tuple[float, float, str]], line: tuple[float, float, str]) -> None:
    """A page's line after the others; a page sent again in full with the same text (a repeat for reception)
    continues the line it repeats."""
    if lines and lines[-1][2] == line[2] and lines[-1][1] == line[0]:
        lines[-1] = (lines[-1][0], line[1], line[2])
    else:
        lines.append(line)


def _header(shown: dict, lines: list, key: tuple[int, int], t: float, erase: bool, national: int) -> None:
    """A subtitle page's header at t: with C4 (erase) the page on screen is a line and a new one starts; without,
    the page stays on screen and the rows that follow update it in place (a refresh)."""
    old = shown.get(key)
    if old is not None and not erase:
        old.sent, old.national = t, national
        return
    if old is not None and old.text():
        _add_line(lines, old.line(t))
    shown[key] = _Page(t, national)


def read_teletext(path: str, stream_indexes: Optional[Sequence[int]] = None, warnings: Optional[list[str]] = None
                  ) -> dict[tuple[int, int], tuple[list[tuple[float, float, str]], Optional[str]]]:
    """{(stream index, page number e.g. 0x888): ([(start_s, end_s, text)], the stream's language tag)} for every
    subtitle page (C6) of the film's teletext streams (stream_indexes None: every subtitle stream without a decoder),
    on the film's clock. A stream that is not teletext (no EBU data units) gives nothing. warnings: a list the
    reader's warnings are added to (a national option it does not know, once per film); None: they are logged."""
    found: dict[tuple[int, int], tuple[list, Optional[str]]] = {}
    unknown: dict[int, int] = {}  # a national option the reader does not know -> the first page that named it
    with contextlib.ExitStack() as stack:
        container = stack.enter_context(open_container(path))
        start0 = film_start_s(container)
        streams = [s for s in container.streams.subtitles
                   if (stream_indexes is None or s.index in stream_indexes) and s.codec_context is None]
        if not streams:
            return found
        shown: dict[tuple[int, int], _Page] = {}  # (stream, page) -> the page being received / on screen
        receiving: dict[tuple[int, int], int] = {}  # (stream, magazine) -> the page its rows go to
        last = 0.0
        for packet in demux(container, *streams):
            if not packet.size or packet.pts is None:
                continue
            t = float(packet.pts * packet.time_base) - start0
            last = max(last, t)
            for unit in data_units(bytes(packet)):
                a, b = hamming84(unit[0]), hamming84(unit[1])
                if a < 0 or b < 0:  # an address that cannot be read: the unit is lost
                    continue
                magazine, row = (a & 7) or 8, (a >> 3) | (b << 1)
                sid = packet.stream.index
                if row == 0:
                    h = [hamming84(x) for x in unit[2:10]]
                    if min(h) < 0:
                        continue
                    page = (magazine << 8) | (h[1] << 4) | h[0]
                    subtitle = bool(h[5] & 8)
                    receiving[(sid, magazine)] = page if subtitle else -1
                    if not subtitle:
                        continue
                    key = (sid, page)
                    tag = packet.stream.metadata.get("language")
                    found.setdefault(key, ([], tag if tag not in (None, "", "und") else None))
                    national = (h[7] >> 1) & 7  # C12-C14: the national option
                    if national not in _NATIONAL:
                        unknown.setdefault(national, page)
                    _header(shown, found[key][0], key, t, erase=bool(h[3] & 8), national=national)  # C4
                elif 1 <= row <= 23:
                    page = receiving.get((sid, magazine), -1)
                    if page >= 0 and (sid, page) in shown:
                        shown[(sid, page)].rows[row] = _text(unit[2:], shown[(sid, page)].national)
        for key, page in shown.items():  # the last subtitle on screen at the end of the recording
            if page.text():
                _add_line(found[key][0], page.line(max(last, page.start + 1.0)))
    _warn_unknown_national(unknown, warnings)
    return found


def _warn_unknown_national(unknown: dict[int, int], warnings: Optional[list[str]]) -> None:
    """One warning for the film when a page names a national option the reader does not know (read as English:
    letters with accents come out as English's symbols). Before 2026-12-06 it was read so without a word."""
    if not unknown:
        return
    options = ", ".join(str(n) for n in sorted(unknown))
    message = (f"teletext page {unknown[min(unknown)]:x}: national character option {options} (header bits C12-C14) "
               "not known, read as English: accented letters may be wrong")
    if warnings is None:
        log.warning("%s", message)
    else:
        warnings.append(message)
