"""EBU STL subtitles (EBU Tech 3264: `.stl`), the binary exchange format of European broadcast deliverables.
A 1024-byte General Subtitle Information block (frame rate, character table, language, the programme's start
time code) and then 128-byte Text and Timing Information blocks: a subtitle's time codes in and out and up to
112 bytes of text, continued in extension blocks when longer. Text is ISO 6937 (accents are a prefix byte before
the letter) or, by the character table code, ISO 8859-5/6/7/8; 0x8A is a line break, 0x80-0x85 and the teletext
codes below 0x20 are styling, shown as a space or nothing. Comment blocks and user data are not lines.

Times are counted from the programme's start time code (GSI TCP) when every subtitle is at or after it (a
master's subtitles start at 10:00:00:00 with it); otherwise as given, and transforms.subtitles.on_film_clock
puts them on the film's clock as for any sidecar. Time codes are read on the clock a film's start timecode is
(transforms.timecode.label_seconds, as SCC's): whole hours as labelled up to the hour of the first subtitle, the
frames after it as they run. Before 2026-12-06 STL30's labels (29.97 fps) were counted as frames from 00:00:00:00,
so a master's lines from 01:00:05:00 with the TCP left 00:00:00:00 came 3.6 s late per hour of timecode."""
from __future__ import annotations

import unicodedata
from typing import Optional

from transforms.timecode import label_frames, label_seconds

GSI_BYTES, TTI_BYTES, TEXT_AT = 1024, 128, 16
# ISO 6937: 0xA0-0xFF, then the non-spacing diacritics 0xC1-0xCF (as combining marks)
_ISO6937 = dict(zip(range(0xA0, 0xC0), "\u00a0¡¢£$¥#§¤‘“«←↑→↓°±²³×µ¶·÷’”»¼½¾¿"))
_ISO6937.update(zip(range(0xD0, 0xD8), "―¹®©™♪¬¦"))
_ISO6937.update(zip(range(0xDC, 0x100), "⅛⅜⅝⅞ΩÆĐªĦ\ufffdĲĿŁØŒºÞŦŊŉĸæđðħıĳŀłøœßþŧŋ\u00ad"))
_DIACRITICS = dict(zip(range(0xC1, 0xD0), "\u0300\u0301\u0302\u0303\u0304\u0306\u0307\u0308\ufffd\u030a\u0327"
                                          "\ufffd\u030b\u0328\u030c"))
_TABLES = {"00": None, "01": "iso8859_5", "02": "iso8859_6", "03": "iso8859_7", "04": "iso8859_8"}
# EBU Tech 3264 language codes (GSI LC) of the languages most subtitled; the text's own language comes first
_LANGUAGES = {"07": "da", "08": "de", "09": "en", "0A": "es", "0F": "fr", "15": "it", "1D": "nl", "1E": "no",
              "20": "pl", "21": "pt", "27": "fi", "28": "sv"}
LINE_BREAK, PADDING = 0x8A, 0x8F


def is_stl(data: bytes) -> bool:
    return len(data) >= GSI_BYTES and data[3:6] == b"STL" and data[6:8] in (b"25", b"30")  # DFC: STL25.01


def decode_text(field: bytes, table: Optional[str]) -> str:
    """A text field's characters: line breaks and styling codes as spaces, padding dropped."""
    out, accent = [], ""
    for b in field:
        if b == PADDING:
            continue
        if b < 0x20 or 0x80 <= b <= 0x9F:  # teletext spacing attributes, EBU styling, line breaks
            out.append(" ")
            continue
        if table is not None:
            out.append(bytes([b]).decode(table, errors="replace"))
            continue
        if b in _DIACRITICS:
            accent = _DIACRITICS[b]
            continue
        ch = chr(b) if b < 0x80 else _ISO6937.get(b, "\ufffd")
        if accent:
            ch, accent = unicodedata.normalize("NFC", ch + accent), ""
        out.append(ch)
    return " ".join("".join(out).split())


def parse_stl(data: bytes) -> tuple[list[tuple[float, float, str]], Optional[str], list[str]]:
    """EBU STL file -> ([(start_s, end_s, text)], language, warnings); ValueError when it is not one."""
    if not is_stl(data):
        raise ValueError("not an EBU STL file (no STL25.01 / STL30.01 disk format code)")
    gsi = data[:GSI_BYTES].decode("latin-1")
    fps = 25.0 if gsi[6:8] == "25" else 30000 / 1001  # STL30 is NTSC's 29.97, counted in 30 labels a second
    nominal = 25 if fps == 25.0 else 30
    table_code = gsi[12:14]
    warnings: list[str] = []
    if table_code not in _TABLES:
        warnings.append(f"character code table {table_code!r} unknown, read as ISO 6937")
    table = _TABLES.get(table_code)
    language = _LANGUAGES.get(gsi[14:16].upper())
    subtitles = _subtitle_blocks(data[GSI_BYTES:], nominal, warnings)
    hour = next(iter(subtitles.values()))[0][0] if subtitles else 0

    def seconds(tc: tuple[int, ...]) -> float:
        if nominal == fps:  # STL25: a label is its frame count, read from 00:00:00:00 as before (to the bit)
            return label_frames(*tc, nominal) / fps
        return label_seconds(*tc, nominal, fps, hour=hour)

    tcp = gsi[256:264]
    # a TCP left 00:00:00:00 is no programme start (on the label clock of a later hour it would be negative)
    programme_start = (seconds(tuple(int(tcp[i:i + 2]) for i in range(0, 8, 2)))
                       if tcp.isdigit() and int(tcp) else 0.0)
    lines = [(seconds(tc_in), seconds(tc_out), decode_text(text, table)) for tc_in, tc_out, text in subtitles.values()]
    if programme_start and lines and all(start >= programme_start for start, _, _ in lines):
        lines = [(start - programme_start, end - programme_start, text) for start, end, text in lines]
    return lines, language, warnings


def _subtitle_blocks(blocks: bytes, nominal: int, warnings: list[str]) -> dict[tuple[int, int], list]:
    """The subtitles of the TTI blocks in file order: (group, number) -> [time code in, time code out, text bytes],
    extension blocks' text joined; comments and user data left out, a bad time code a warning."""
    subtitles: dict[tuple[int, int], list] = {}
    if len(blocks) % TTI_BYTES:
        warnings.append(f"{len(blocks) % TTI_BYTES} bytes after the last whole subtitle block, ignored")
    for k in range(len(blocks) // TTI_BYTES):
        tti = blocks[k * TTI_BYTES:(k + 1) * TTI_BYTES]
        extension, comment = tti[3], tti[15]
        if extension == 0xFE or comment:  # user data, comments
            continue
        key = (tti[0], int.from_bytes(tti[1:3], "little"))
        tc_in, tc_out = tuple(tti[5:9]), tuple(tti[9:13])
        if max(tc_in[1:3] + tc_out[1:3]) > 59 or max(tc_in[3], tc_out[3]) >= nominal:
            warnings.append(f"subtitle {key[1]}: skipped, bad time code {tc_in} -> {tc_out}")
            continue
        entry = subtitles.setdefault(key, [tc_in, tc_out, b""])
        entry[2] += tti[TEXT_AT:]
    return subtitles
