"""Find and parse a film's subtitles: sidecar files beside it (.srt, .vtt, .ass, TTML, SCC, STL, MicroDVD, ...), text
subtitle streams inside it, or the closed captions its pictures carry.

Parsing is pysubs2's; this module only makes the input palatable (encoding, BOM, CRLF, WebVTT NOTE/STYLE
blocks, SubRip and WebVTT timing lines, unreadable ASS times) and the output clean (HTML and ASS tags stripped,
lines joined, bad cues skipped with a warning).
"""
from __future__ import annotations

import codecs
import dataclasses
import functools
import hashlib
import io
import logging
import os
import re
import threading
import time
import unicodedata
from typing import Callable, Iterable, NamedTuple, Optional, Sequence

import apache_beam as beam
import pysubs2
from apache_beam.io.filesystem import CompressionTypes, FileMetadata
from apache_beam.io.filesystems import FileSystems
from pysubs2.formats.subrip import SubripFormat

from model.encoders.versions import TEXT_LANGUAGES
from transforms.dialogue import HTML_BREAK, clean_text, dialogue_text
from transforms import attempts, dvd, imf
from transforms.discover import NOT_FILMS, is_film_candidate, literal_glob, path_text, special_file
from transforms.elements import Cue, FilmError, FilmInfo, FilmJob, FilmRef
from transforms.language import (IdentifierUnavailable, label_cues, language_code, likely_script, line_language,
                                 named_language, reads, unidentified_note)
from transforms.probe import PICTURE_CODECS, ReadFailed, demux, film_start_s, open_container, storage_failure
from transforms.scc import is_scc, parse_scc
from transforms.stl import parse_stl
from transforms.ttml import is_ttml, parse_ttml
from transforms.video_captions import CODECS as CAPTIONED_CODECS, read_video_captions

log = logging.getLogger(__name__)

# In this order of preference. TTML (studio and streaming deliverables: IMSC1, DFXP, EBU-TT) is read by
# transforms.ttml; a .xml beside a film counts only when it is TTML (else it is a media manager's metadata).
TTML_EXTS = ("ttml", "dfxp", "itt", "xml")  # .itt: Apple's iTunes Timed Text
# SAMI (.smi) through pysubs2; SCC captions (transforms.scc) and EBU STL (transforms.stl) after them; MicroDVD
# (.sub, timed in frames, so only as right as the frame rate it was made for) last. A .sub is also a DVD's VobSub
# pictures (binary, beside its .idx): such a file is not read (picture_sidecars names it).
TEXT_EXTS = (".srt", ".vtt", ".ass", ".ssa", ".smi", ".sami")
SIDECAR_EXTS = TEXT_EXTS + tuple("." + e for e in TTML_EXTS) + (".scc", ".stl", ".sub")
_PYSUBS2_FORMATS = {"smi": "sami"}  # extensions that are not pysubs2's name for their format
_MICRODVD_LINE = re.compile(r"\s*\{\s*\d+\s*\}\s*\{\s*\d*\s*\}")
# {1}{1}23.976 as the first line: the rate the lines were counted at
_MICRODVD_RATE = re.compile(r"\s*\{\s*1\s*\}\s*\{\s*1\s*\}\s*(\d{1,3}(?:[.,]\d+)?)\s*$")
_MPEG_PACK = b"\x00\x00\x01\xba"  # a VobSub .sub is an MPEG program stream of subpictures
PICTURE_SIDECAR_EXTS = (".sup", ".idx")  # Blu-ray PGS, DVD VobSub (the .idx names its .sub): read by OCR
PICTURE = "picture:"  # load_cues' sources for the film's own picture subtitle tracks ("picture:<stream index>")
TELETEXT = "teletext:"  # load_cues' sources for a DVB recording's teletext pages ("teletext:<stream>:<page>")
FORCED = "#forced"  # ends a picture source whose every picture is flagged forced (is_forced)
CAPTIONS = "captions"  # load_cues' source for closed captions in the video stream (transforms.video_captions)
PACKAGE_TEXT = "package:"  # load_cues' sources for an IMF / DCP title's subtitle and caption sequences
MAX_SIDECAR_BYTES = 20 << 20  # a subtitle file bigger than this is not a subtitle file
# ASS events that are not dialogue (fansub and anime releases carry them beside it): styles named for signs (on-screen
# text translated), songs, karaoke, titles and notes, and any line timed syllable by syllable (\k tags: lyrics). As
# with a cue that carries a music note (transforms.dialogue), a song is not a line.
# Whole words of the style's name (letters on neither side; camelCase split): before 2026-12-07 any name holding
# 'sign', 'song', 'kara' or 'lyric' matched, and so did 'ed' in any case, so fansubs' styles named for characters
# ('Ed', 'Karasuma', 'Signum') lost their dialogue. OP / ED in capitals or in lower case; 'Ed' is a name.
_NOT_DIALOGUE_STYLE = re.compile(
    r"(?<![^\W\d_])(?:(?i:signs?|songs?|kara(?:oke)?|lyrics?|opening|ending|insert|title|notes?|tl)|OP|ED|op|ed)"
    r"(?![^\W\d_])")
_KARAOKE = re.compile(r"\\k[fo]?\d", re.I)
_VTT_META_BLOCKS = ("NOTE", "STYLE", "REGION")


def decode_subtitle_bytes(data: bytes) -> tuple[str, Optional[str]]:
    """Bytes -> (text with \\n line ends, warning or None). Handles BOMs, UTF-16 without BOM, the code pages of other
    scripts (_other_script), cp1252, UTF-8 with a few bytes of cp1252 in it (_mostly_utf8), zeros padding the end."""
    for bom, enc, unit in ((b"\xef\xbb\xbf", "utf-8", 1), (b"\xff\xfe\x00\x00", "utf-32-le", 4),
                           (b"\x00\x00\xfe\xff", "utf-32-be", 4), (b"\xff\xfe", "utf-16-le", 2),
                           (b"\xfe\xff", "utf-16-be", 2)):
        if data.startswith(bom):
            body = _unpadded(data[len(bom):], unit)
            if enc == "utf-8":  # a BOM says UTF-8: bytes that are not are a line fixed by hand, read as cp1252 runs
                bad = body.decode(enc, errors="replace").count("\ufffd")  # (before 2026-12-07: U+FFFD, no word)
                if bad:
                    return (_newlines(body.decode(enc, errors=_CP1252_RUNS)),
                            f"not valid UTF-8 in {bad} place{'s' if bad > 1 else ''}; read there as cp1252")
            return _newlines(body.decode(enc, errors="replace")), None
    warning = None
    enc = _utf16_without_bom(_unpadded(data, 1)[:4000])
    if enc:
        return _newlines(_unpadded(data, 2).decode(enc, errors="replace")), f"no BOM; read as {enc}"
    data = _unpadded(data, 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        mixed = _mostly_utf8(data)
        if mixed:
            return _newlines(mixed[0]), mixed[1]
        text, enc = _other_script(data) or (data.decode("cp1252", errors="replace"), "cp1252")
        warning = f"not valid UTF-8; read as {enc}"
    return _newlines(text), warning


def _unpadded(data: bytes, unit: int) -> bytes:
    """Without the zeros a download or a disc image pads a file with, kept to whole characters of `unit` bytes (UTF-16
    text can end on a zero byte). Before 2026-12-06 the padding made a UTF-8 file UTF-16, and every line was lost."""
    n = len(data.rstrip(b"\x00"))
    return data[:-(-n // unit) * unit]


def _utf16_without_bom(head: bytes) -> Optional[str]:
    """The byte order of UTF-16 text without a BOM, else None: every other byte of ASCII is zero, so its zeros are
    many and all on one side of each pair (zeros on both, a damaged stretch, are not UTF-16)."""
    even, odd = head[0::2].count(0), head[1::2].count(0)
    if even + odd <= len(head) // 4 or min(even, odd) * 10 > even + odd:
        return None
    return "utf-16-le" if odd > even else "utf-16-be"


def _mostly_utf8(data: bytes) -> Optional[tuple[str, str]]:
    """(text, warning) for UTF-8 with a few bytes of cp1252 in it (a line fixed by hand in an old editor, files
    joined): the UTF-8 read as UTF-8, each invalid run as cp1252. None when the invalid runs outnumber the valid
    multibyte characters, or there are none of these (text in a code page: cp1252, or another script's). Before
    2026-12-06 one stray byte made the whole file cp1252 ('Itâ€™s')."""
    marked = data.decode("utf-8", errors="replace")
    bad = marked.count("\ufffd")
    valid = len(marked) - len(marked.encode("ascii", errors="ignore")) - bad  # multibyte characters
    if valid < max(bad, 1):
        return None
    places = f"{bad} place" + ("s" if bad > 1 else "")
    return data.decode("utf-8", errors=_CP1252_RUNS), f"not valid UTF-8 in {places}; read there as cp1252"


_CP1252_RUNS = "subtitles-cp1252"  # the codecs error handler of _mostly_utf8: an invalid run read as cp1252
codecs.register_error(_CP1252_RUNS, lambda e: (e.object[e.start:e.end].decode("cp1252", errors="replace"), e.end))


def _other_script(data: bytes) -> Optional[tuple[str, str]]:
    """charset-normalizer's reading of bytes that are not UTF-8, when it puts them in another script than Latin
    (Russian subtitles in cp1251, Korean in cp949, Japanese in Shift-JIS, Chinese in GBK or Big5, Greek, Arabic,
    Hebrew); None otherwise: Latin text stays cp1252, as its short samples confuse the Latin code pages (French
    read as cp1250 gives 'naďve'). None too when most of the other script's letters sit inside words of ASCII
    letters, where a real script's letters stand beside their own: Latin text with a few accents, guessed Big5
    (before 2026-12-06 'Très bien.' was read 'Tr鋊 bien.')."""
    import charset_normalizer
    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        return None
    text = str(best)
    letters = [i for i, c in enumerate(text) if ord(c) > 127 and c.isalpha()]
    other = [i for i in letters if "LATIN" not in unicodedata.name(text[i], "LATIN")]
    ascii_letter = lambda s: s.isascii() and s.isalpha()  # noqa: E731
    inside = sum(ascii_letter(text[i - 1:i]) or ascii_letter(text[i + 1:i + 2]) for i in other)
    if len(other) > len(letters) / 2 and inside <= len(other) / 2:
        return text, best.encoding
    return None


def _newlines(text: str) -> str:
    """\\n line ends (CRLF, CR, and CR CR LF: a CRLF file converted to CRLF again by an FTP text transfer or git,
    one line end as FFmpeg reads it; before 2026-12-07 a blank line, which put the next cue's number on every cue),
    and no byte order mark anywhere: files joined end to end carry theirs in the middle (before 2026-12-06 it glued
    the next cue's number to a line, 'I can't believe you did that! 2')."""
    return text.replace("\r\r\n", "\n").replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")


def _drop_vtt_meta(text: str) -> str:
    """pysubs2 keeps WebVTT NOTE/STYLE/REGION blocks as cue text; drop them before parsing, and the WEBVTT headers
    of files joined end to end (before 2026-12-06 'Part one. WEBVTT'). A block with a timing line is a cue."""
    blocks = re.split(r"\n[ \t]*\n", text)
    keep = [b for b in blocks if "-->" in b or not b.lstrip().startswith(_VTT_META_BLOCKS + ("WEBVTT",))]
    return "\n\n".join(keep)




def spoken_event(style: str, text: str) -> bool:
    """Whether an ASS event (its style's name, its raw text) can be dialogue: not a sign, a song or a note."""
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", style or "")  # ('SongJP', 'SignsTop')
    return not (_NOT_DIALOGUE_STYLE.search(words) or _KARAOKE.search(text or ""))


def merge_repeats(cues: list[Cue]) -> list[Cue]:
    """One cue for a line that several events show at once or back to back: ASS layers (a blurred outline under
    the same text), a line timed in two pieces. Before 2026-12-05 its words reached the text model twice ("I can't
    believe you did that! I can't believe you did that!"). Sorted by start."""
    out: list[Cue] = []
    latest: dict[str, int] = {}  # text -> index in out of its latest cue
    for cue in sorted(cues, key=lambda c: (c.start_s, c.end_s)):
        i = latest.get(cue.text)
        if i is not None and cue.start_s <= out[i].end_s + 0.05:
            out[i] = dataclasses.replace(out[i], end_s=max(out[i].end_s, cue.end_s))
        else:
            latest[cue.text] = len(out)
            out.append(cue)
    return out


def parse_subtitles(text: str, fmt: Optional[str] = None, language: Optional[str] = None,
                    fps: Optional[float] = None, pictures: Optional[Callable[..., str]] = None
                    ) -> tuple[list[Cue], list[str]]:
    """Subtitle text -> (cues sorted by start, warnings). Bad cues are skipped, each with a warning. fps: the film's
    frame rate, for MicroDVD lines that do not say theirs; pictures: reads the lines a TTML document gives as
    pictures (IMSC1's image profile; transforms.ttml.parse_ttml). An empty file (nothing, a BOM, a WebVTT header)
    is a warning: before 2026-12-06 it was passed over without a word."""
    text = text.lstrip("\ufeff")
    if not text.strip() or text.strip() == "WEBVTT":
        return [], ["empty subtitle file"]
    try:
        events, warnings, language = _events(text, fmt, language, fps, pictures)
    except Exception as exc:  # noqa: BLE001 - pysubs2 raises several types for unreadable files
        return [], [f"unparseable subtitles: {type(exc).__name__}: {exc}"]
    return _cues(events, warnings, language, empty=False)


def _cues(events: list[tuple[float, float, str]], warnings: list[str], language: Optional[str], empty: bool
          ) -> tuple[list[Cue], list[str]]:
    """A subtitle file's (start_s, end_s, text) in file order -> its dialogue cues sorted by start, and the
    warnings: every format goes through the same rules (transforms.dialogue, times that run forwards)."""
    cues = []
    for i, (start, end, line) in enumerate(events):
        if not line:
            continue
        if "-->" in line:
            warnings.append(f"cue {i + 1}: skipped, text holds a timestamp line ({line[:60]!r})")
            continue
        line = dialogue_text(line)
        if not line:
            continue
        if start < 0 or end <= start:
            warnings.append(f"cue {i + 1}: skipped, bad times {start:.3f} -> {end:.3f} ({line[:40]!r})")
            continue
        cues.append(Cue(start_s=start, end_s=end, text=line, source="subtitle", language=language))
    cues, runaways = _end_runaways(merge_repeats(cues))
    warnings += runaways
    if not cues and not events and not empty:
        warnings.append("no cues could be parsed")
    return cues, warnings


# A line shown longer than this over two later lines or more: its end time is a typo (00:00:00,500 --> 01:00:01,500),
# and the line would be read an hour into the film, beside lines said there (before 2026-12-07, without a word)
RUNAWAY_CUE_S = 600.0  # (a sign or a song shown over the dialogue under it runs a minute or two, not ten)


def _end_runaways(cues: list[Cue]) -> tuple[list[Cue], list[str]]:
    """Cues sorted by start, each that runs over RUNAWAY_CUE_S and past the start of the second line after it ended
    where the next line starts, and a warning for each."""
    out, warnings = [], []
    for i, c in enumerate(cues):
        if (c.end_s - c.start_s > RUNAWAY_CUE_S and i + 2 < len(cues) and cues[i + 2].start_s < c.end_s
                and cues[i + 1].start_s > c.start_s):
            warnings.append(f"the line at {c.start_s:.3f} s ({c.text[:40]!r}) is shown for "
                            f"{c.end_s - c.start_s:.0f} s, over later lines: its end time is taken for a typo and it "
                            f"ends where the next line starts ({cues[i + 1].start_s:.3f} s)")
            c = dataclasses.replace(c, end_s=cues[i + 1].start_s)
        out.append(c)
    return out, warnings


def _events(text: str, fmt: Optional[str], language: Optional[str], fps: Optional[float] = None,
            pictures: Optional[Callable[..., str]] = None
            ) -> tuple[list[tuple[float, float, str]], list[str], Optional[str]]:
    """(start_s, end_s, cleaned text) of each cue in file order, warnings, and the language (the caller's, else a
    TTML document's or a SAMI class's own). SCC captions are decoded by transforms.scc, TTML read by transforms.ttml,
    the rest by pysubs2: SubRip and WebVTT timed by _timed_lines, ASS events whose times pysubs2 cannot read left
    out first (_readable_events), a SAMI file of several languages read in one (_sami_class)."""
    own = _content_format(text)
    named = _FAMILY.get(fmt, fmt)
    early: list[str] = []
    if fmt and own and _FAMILY.get(own, own) != named:  # what the text says it is: an ASS track saved as .srt
        early.append(f"named .{fmt} but holds {own.upper()}: read as {own.upper()}")
        fmt = own
    events, warnings, language = _format_events(text, fmt, language, fps, pictures)
    return events, early + warnings, language


# Sidecar extensions by the format their text would say it is in (_content_format); SubRip and WebVTT are read by
# one path (_timed_cues), either in the other's file
_FAMILY = {"ssa": "ass", "smi": "sami", "vtt": "srt", **{e: "ttml" for e in TTML_EXTS}}
_ASS_SECTION = re.compile(r"^\s*\[(?:script info|v4\+? styles|events)\]", re.I | re.M)


def _content_format(text: str) -> Optional[str]:
    """The format a subtitle file's first lines say it is in, where they say so for sure: its section names (ASS),
    its header (WebVTT, SCC), its root element (TTML, SAMI); SubRip by a cue number over a timing line. None
    otherwise (MicroDVD, EBU STL and the like go by their extension)."""
    head = text.lstrip()[:4096]
    if _ASS_SECTION.search(head):  # (at a line's start: after a '; Script generated by Aegisub' comment too)
        return "ass"
    if head.startswith("WEBVTT"):
        return "vtt"
    if is_scc(head):
        return "scc"
    if is_ttml(head):
        return "ttml"
    if re.match(r"<sami\b", head, re.I):
        return "sami"
    first = head.split("\n", 2)
    if len(first) > 1 and first[0].strip().isdigit() and _TIMING_LINE.match(first[1]):
        return "srt"
    return None


def _format_events(text: str, fmt: Optional[str], language: Optional[str], fps: Optional[float] = None,
                   pictures: Optional[Callable[..., str]] = None
                   ) -> tuple[list[tuple[float, float, str]], list[str], Optional[str]]:
    """_events of a text in this format (None: as pysubs2 tells it)."""
    if fmt == "scc" or (fmt is None and is_scc(text)):
        lines, warnings = parse_scc(text)
        return [(a, b, clean_text(t)) for a, b, t in lines], warnings, language
    if fmt in TTML_EXTS or (fmt is None and is_ttml(text)):
        lines, own, warnings = parse_ttml(text, pictures)
        return [(a, b, clean_text(t)) for a, b, t in lines], warnings, language or own
    if fmt == "vtt" or text.startswith("WEBVTT"):
        text, fmt = _drop_vtt_meta(text), "vtt"
    if fmt == "sub":
        return _microdvd_events(text, fps), [], language
    fmt = _PYSUBS2_FORMATS.get(fmt, fmt) if fmt else pysubs2.formats.autodetect_format(text[:10000])
    warnings: list[str] = []
    if fmt in ("srt", "vtt"):
        subs, warnings = _timed_cues(text, fmt)
    else:
        if fmt in ("ass", "ssa"):
            text, warnings = _readable_events(text)
        elif fmt == "sami":
            text, warnings, language = _sami_class(text, language)
        subs = pysubs2.SSAFile.from_string(text, format_=fmt)
        if fmt == "sami":
            _sami_ends(subs)
    kept, left = [], []
    for ev in subs:
        if not ev.is_comment:
            (kept if fmt not in ("ass", "ssa") or spoken_event(ev.style, ev.text) else left).append(ev)
    warnings += [_not_dialogue_warning(len(left), {ev.style for ev in left})] if left else []
    return [(ev.start / 1000.0, ev.end / 1000.0, clean_text(ev.text)) for ev in kept], warnings, language


# A cue's time as SubRip and WebVTT write it, whatever its hours (pysubs2 reads two digits: 100:00:01,000 was 1 s)
# and its sign (pysubs2 drops it: -00:00:01,000 was +1 s), with a comma or a point (a .vtt timed with commas)
_CUE_TIME = r"(-?)(?:(\d+):)?(\d{1,2}):(\d{1,2})[.,](\d{1,3})"
# between the times an arrow as typed by hand or mended by a word processor too ('—>', '–>', '-- >', '- ->', '=>',
# '→', ' — '; not a hyphen alone: '1:23.456 - 1:24.789 was his best lap' is a line): before 2026-12-07 such a
# timing line was read as the text of the cue before, its times in the words
_ARROW = r"(?:[-\u2010-\u2015=](?:\s?[-\u2010-\u2015])?\s?>|\u2192|\s[\u2013\u2014]\s|\s)"
_TIMING_LINE = re.compile(rf"\s*{_CUE_TIME}\s*{_ARROW}\s*{_CUE_TIME}(?!\d)")
_BROKEN_TIMING = re.compile(r"-->|^\s*-?\d+:[\d:.,]*\s*->")  # a timing line all the same, its times unreadable


def _timed_lines(text: str) -> tuple[str, list[str]]:
    """SubRip or WebVTT text -> the same with each timing line in the form _MarkedTimes reads, and warnings. A timing
    line has two times (an arrow or a space between them), or holds '-->': one whose times cannot be read is a cue
    skipped with a warning, its text with it. Only such lines are timing lines. Before 2026-12-06 pysubs2 took any
    line with two times for one (a WebVTT cue timed word by word, 'Where were you <00:00:02.000>last
    <00:00:03.000>night?', was lost), and joined a cue whose timing line it could not read to the cue before it
    (both were skipped, the warning naming the good one)."""
    out, warnings, cue, skipping = [], [], 0, False
    for line in text.split("\n"):  # (as pysubs2 splits them)
        # (_MarkedTimes' marks; a '<br>' is a space: pysubs2 drops the tag, and 'you<br>going' read 'yougoing')
        line = HTML_BREAK.sub(" ", line.replace("\x00", "").replace(_TEXT_END, ""))
        times = _TIMING_LINE.match(line)
        if not times and not _BROKEN_TIMING.search(line):
            # each text line ends in _TEXT_END: pysubs2 drops a cue's last line when it is a number (taking it for
            # the next cue's), which lost "1999" of "And the year was / 1999" and every cue's "3" of "Only / 3"
            out.append("" if skipping else line + _TEXT_END if line.strip() else line)
            continue
        if out and out[-1].strip() and (len(out) == 1 or not out[-2].strip()
                                        or out[-1].replace(_TEXT_END, "").strip() == str(cue + 1)):
            # the line before a timing line, after a blank one, is the cue's number or WebVTT identifier: not text
            # (before 2026-12-07 an identifier that is not a number was read as the end of the cue before); so is
            # the next cue's number right before it in a file without blank lines between cues (before 2026-12-07
            # every cue ended in it; a line of other digits there stays a line: 'Count with me / 1', '2')
            out[-1] = ""
        cue, skipping = cue + 1, times is None
        if skipping:
            warnings.append(f"cue {cue}: skipped, unreadable times ({line.strip()[:60]!r})")
        start, end = (_ms(*times.groups()[:5]), _ms(*times.groups()[5:])) if times else (0, 0)
        out.append(f"\x00{start} \x00{end}")
    return "\n".join(out), warnings


def _ms(sign: str, hours: Optional[str], minutes: str, seconds: str, fraction: str) -> int:
    ms = ((int(hours or 0) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(fraction.ljust(3, "0"))
    return -ms if sign else ms


_TEXT_END = "\x01"  # _timed_lines' mark at the end of each text line, removed from the events _timed_cues reads


class _MarkedTimes(SubripFormat):
    """pysubs2's SubRip reader (a cue's text: its tags, the next cue's number left out) on _timed_lines' text: a
    timing line is one it marked, its times in ms."""
    TIMESTAMP = re.compile("\x00(-?\\d+)")
    timestamp_to_ms = staticmethod(int)


def _timed_cues(text: str, fmt: str) -> tuple[pysubs2.SSAFile, list[str]]:
    """SubRip or WebVTT text -> its events (empty ones where a cue's times could not be read) and warnings."""
    text, warnings = _timed_lines(text)
    subs = pysubs2.SSAFile()
    subs.format = fmt
    _MarkedTimes.from_file(subs, io.StringIO(text), fmt)
    for ev in subs:
        ev.text = ev.text.replace(_TEXT_END, "")
    return subs, warnings


def _readable_events(text: str) -> tuple[str, list[str]]:
    """ASS / SSA text without the events whose start or end pysubs2 cannot read, each a warning naming its line, its
    events in the standard field order (_standard_order). Before 2026-12-06 one such event (a time left empty, '--')
    lost the whole file."""
    lines, warnings = _standard_order(text.split("\n")), []
    for i, line in enumerate(lines):
        kind, colon, rest = line.strip().partition(":")
        if kind in ("Dialogue", "Comment") and colon and not all(map(_ass_time, rest.strip().split(",", 3)[1:3])):
            warnings.append(f"line {i + 1}: skipped, unreadable times ({line.strip()[:60]!r})")
            lines[i] = ""
    return "\n".join(lines), warnings


# The [Events] fields as ASS (v4+) writes them, in its order (SSA's 'Marked' stands where 'Layer' does)
_ASS_FIELDS = ("Layer", "Start", "End", "Style", "Name", "MarginL", "MarginR", "MarginV", "Effect", "Text")
_ASS_DEFAULTS = {"Layer": "0", "Style": "Default", "MarginL": "0", "MarginR": "0", "MarginV": "0"}


def _standard_order(lines: list[str]) -> list[str]:
    """An ASS / SSA file's lines with its events' fields in the standard order, where its [Events] 'Format:' line
    names them in another (Start and End first, some left out): pysubs2 reads the standard order whatever the Format
    line says, and before 2026-12-07 every event of such a file was skipped as 'unreadable times' (found in review).
    A field the file leaves out takes its default; a Format line without Start, End or Text last is left as it is."""
    names, out, events = None, [], False
    for line in lines:
        kind, colon, rest = line.strip().partition(":")
        if kind.startswith("["):
            events = kind.lower() == "[events]"
        elif events and colon and kind == "Format":
            given = [f.strip().capitalize() for f in rest.split(",")]
            given = [{"Marked": "Layer", "Marginl": "MarginL", "Marginr": "MarginR", "Marginv": "MarginV"}.get(f, f)
                     for f in given]
            usable = {"Start", "End"} <= set(given) and given[-1] == "Text" and set(given) <= set(_ASS_FIELDS)
            names = given if usable and given != list(_ASS_FIELDS) else None
            line = f"Format: {', '.join(_ASS_FIELDS)}" if names else line
        elif events and colon and names and kind in ("Dialogue", "Comment"):
            values = dict(zip(names, rest.lstrip().split(",", len(names) - 1)))
            if len(values) == len(names):
                line = f"{kind}: " + ",".join(values.get(f, _ASS_DEFAULTS.get(f, "")).strip() if f != "Text"
                                              else values["Text"] for f in _ASS_FIELDS)
        out.append(line)
    return out


def _ass_time(field: str) -> bool:
    """Whether pysubs2 reads an ASS event's time, as its SubstationFormat does: a sign, then h:mm:ss.cc or h:mm:ss."""
    field = field.strip().removeprefix("-")
    return bool(pysubs2.time.TIMESTAMP.match(field) or pysubs2.time.TIMESTAMP_SHORT.match(field))


_SAMI_SYNC = re.compile(r"<sync\b.*?(?=<sync\b|</body\b|\Z)", re.I | re.S)  # a SYNC and what it shows
_SAMI_PARAGRAPH = re.compile(r"(?=<p\b)", re.I)  # where each of a SYNC's paragraphs starts
_SAMI_CLASS = re.compile(r"""<p\b[^>]*?\bclass\s*=\s*["']?([\w-]+)""", re.I)
_SAMI_STYLE = re.compile(r"\.([\w-]+)\s*\{([^}]*)\}")  # .ENCC { Name:English; lang:en-US; }
_SAMI_LANG = re.compile(r"\blang\s*:\s*([\w-]+)", re.I)


def _sami_class(text: str, language: Optional[str]) -> tuple[str, list[str], Optional[str]]:
    """SAMI text of several languages (a class each: <P Class=KRCC>, <P Class=ENCC>) -> (the text of one class, a
    warning naming the others, the language): the class of the file's language tag, else one the text path reads
    (TEXT_LANGUAGES), else the first; the language is the tag, else the class's (its STYLE's lang). Before
    2026-12-06 the classes' lines came out mixed, and of two shown at one time the first was skipped."""
    classes = list(dict.fromkeys(c.upper() for c in _SAMI_CLASS.findall(text)))
    if len(classes) < 2:
        return text, [], language
    declared = {name.upper(): lang.group(1) for name, rules in _SAMI_STYLE.findall(text)
                if (lang := _SAMI_LANG.search(rules))}
    codes = {c: language_code(declared.get(c)) for c in classes}
    chosen = next((c for c in classes if codes[c] and codes[c] == language_code(language)), None) or next(
        (c for c in classes if codes[c] in TEXT_LANGUAGES), classes[0])

    def one_class(sync: re.Match) -> str:  # a SYNC of another class goes, the next of this class ends a line
        head, *paragraphs = _SAMI_PARAGRAPH.split(sync.group(0))
        kept = [p for p in paragraphs if (m := _SAMI_CLASS.match(p)) is None or m.group(1).upper() == chosen]
        return head + "".join(kept) if kept or not paragraphs else ""

    named = ", ".join(f"{c} ({declared[c]})" if c in declared else c for c in classes)
    return (_SAMI_SYNC.sub(one_class, text), [f"SAMI classes {named}: the lines of {chosen} read, the others left out"],
            language or declared.get(chosen))


def _sami_ends(subs: pysubs2.SSAFile) -> None:
    """Each SYNC shown until the next one that starts later (pysubs2 guesses an end from the text's length, cut at
    the next SYNC); SYNCs of one time end together."""
    events = list(subs)
    for ev, following in reversed(list(zip(events, events[1:]))):
        if following.start > ev.start:
            ev.end = following.start
        elif following.start == ev.start:
            ev.end = following.end


def _not_dialogue_warning(n: int, styles: set[str]) -> str:
    named = f" (styles {', '.join(sorted(styles))})" if styles else ""
    return f"{n} events of signs, songs or notes{named} left out: not dialogue"


def is_microdvd(text: str) -> bool:
    """Whether text is MicroDVD ({start frame}{end frame}line): its first line that is not blank says so."""
    first = next((ln for ln in text.lstrip("\ufeff").splitlines() if ln.strip()), "")
    return bool(_MICRODVD_LINE.match(first))


def _microdvd_events(text: str, fps: Optional[float]) -> list[tuple[float, float, str]]:
    """MicroDVD lines, timed at the rate their first line states ({1}{1}25), as players do, else the film's."""
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    own = _MICRODVD_RATE.match(first)
    rate = float(own.group(1).replace(",", ".")) if own else fps
    if not rate or rate <= 0:
        raise ValueError("MicroDVD lines are timed in frames, and neither the file nor the film gives a frame rate")
    if own:
        text = text.split(first, 1)[1]  # the rate line, not a line of dialogue
    subs = pysubs2.SSAFile.from_string(text, format_="microdvd", fps=rate)
    return [(ev.start / 1000.0, ev.end / 1000.0, clean_text(ev.plaintext)) for ev in subs if not ev.is_comment]


# Words a deliverable's sidecar name carries after its language: SDH / CC / HI (for the deaf and hard of hearing),
# forced, full
_QUALIFIERS = frozenset({"sdh", "cc", "hi", "forced", "full"})
_FORCED_TAGS = frozenset({"forced", "foreign"})  # (media servers' spellings of a forced track)
_SDH_TAGS = frozenset({"sdh", "cc", "hi"})  # subtitles for the deaf: a plain file of the language reads better
_NAME_SEPARATORS = re.compile(r"[._\s()\[\]]+")


def _joined_tags(rest: str) -> Optional[list[str]]:
    """The tags of a sidecar named FILM_ENG.srt, FILM-en-US.srt, FILM (eng sdh).srt (deliverables name them so):
    `rest` is what follows the film's name. A language first, then languages or qualifiers only, else None (so
    FILM_v2.srt or FILM_Part2.srt is no sidecar of FILM)."""
    tokens = [t.strip("-") for t in _NAME_SEPARATORS.split(rest.lower()) if t.strip("-")]
    if not tokens or rest[0] not in "_- ([" or language_code(tokens[0]) is None:
        return None
    known = lambda t: t in _QUALIFIERS or language_code(t) is not None  # noqa: E731
    return tokens if all(known(t) or all(known(x) for x in t.split("-") if x) for t in tokens) else None


def sidecar_language(film_path: str, sub_path: str) -> Optional[str]:
    """name.en.srt -> 'en'; name.EN.SRT -> 'en'; name_ENG_SDH.srt -> 'eng.sdh'; name.srt -> None; in a subtitle
    folder, a file named for its language: Subs/2_English.srt -> 'en' (_named_tags)."""
    stem = os.path.splitext(film_path.rsplit("/", 1)[-1])[0]
    own = os.path.splitext(sub_path.rsplit("/", 1)[-1])[0]
    middle = own[len(stem):] if own.startswith(stem) else None
    if middle is not None and (not middle or middle.startswith(".")):
        tags = path_text(middle.lstrip(".").lower())  # (a tag that is not UTF-8 is kept as \xNN text)
        # a language's name as its code (FILM.English.srt -> en; before 2026-12-07 'english' ranked as another
        # language and tagged no line)
        return ".".join(_named_code(t) for t in re.split(r"[.\s()\[\]]+", tags) if t) or None
    tags = _joined_tags(middle) if middle else None
    if tags is None and _subtitle_folder_place(film_path, sub_path) is not None:
        tags = _named_tags(own)
    return ".".join(tags or []) or None


def _named_code(tag: str) -> str:
    """A sidecar name's tag as its language code where it is a language's name ('english', 'français'), else as it
    is (codes, qualifiers, anything else)."""
    if len(tag) < 4 or not tag.isalpha() or tag in _QUALIFIERS | _FORCED_TAGS or language_code(tag):
        return tag
    return named_language(tag) or tag


def _tag_words(tags: Optional[str]) -> list[str]:
    """A sidecar's name tags (sidecar_language) as words, however joined (en.forced, eng-forced, en_forced)."""
    return [t for t in re.split(r"[._\-]+", tags or "") if t]


def tag_flags(tags: Optional[str]) -> frozenset:
    """The qualifiers among a sidecar's name tags (sidecar_language); 'hi' alone is Hindi, after a language it is for
    the deaf."""
    return frozenset(t for i, t in enumerate(_tag_words(tags)) if t in _QUALIFIERS | _FORCED_TAGS and (t != "hi" or i))


# Folders beside a film that release and media-server layouts keep its subtitles in: Subs/FILM.en.srt (as
# beside it), Subs/FILM/2_English.srt (a series' episode: a folder named after it), Subs/2_English.srt (the
# folder's only film). Names as they come (an object store's listing is case-sensitive and by prefix).
SUBTITLE_FOLDERS = ("Subs", "subs", "SUBS", "Subtitles", "subtitles")
_TRACK_NUMBER = re.compile(r"^\d{1,3}[\s._-]+")  # 2_English.srt: the track's number in the release


def film_listing(film_path: str) -> list:
    """FileMetadata of every file named FILM* beside the film and of the files in its folder's subtitle folders
    (SUBTITLE_FOLDERS; with loose files there, the folder's own files too, to tell whether the film is alone in
    it): one listing a pattern (on an object store, a request each), from which sidecar_files picks each kind. On a
    local disk the folder's names are listed once while it is unchanged (_folder_file_names), the same files with
    the same sizes and times as Beam's match gives, and only the subtitle folders are walked."""
    folder = FileSystems.split(film_path)[0]
    local = FileSystems.get_scheme(film_path) is None
    if local:  # before 2026-12-07 Beam's match, which walks the whole folder, below it too, for each film (see below)
        beside, in_folders = _local_beside(film_path), [_local_walk(os.path.join(folder, n)) for n in SUBTITLE_FOLDERS]
    else:  # an object store lists by prefix: a request a pattern, for the film's names only
        patterns = [literal_glob(os.path.splitext(film_path)[0]) + "*"]
        patterns += [literal_glob(FileSystems.join(folder, name)) + "/**" for name in SUBTITLE_FOLDERS]
        beside, *in_folders = [result.metadata_list for result in FileSystems.match(patterns)]
    listed, seen = {m.path: m for m in beside}, set()
    for m in (m for result in in_folders for m in result):
        if m.path.lower() not in seen:  # (Subs and subs are one folder where names ignore case)
            seen.add(m.path.lower())
            listed[m.path] = m
    if any(_subtitle_folder_place(film_path, p) == "loose" for p in listed):
        own = _local_loose(folder) if local else FileSystems.match([literal_glob(folder) + "/*"])[0].metadata_list
        for m in own:
            listed.setdefault(m.path, m)
    return list(listed.values())


# A local folder's file names, listed once per process while its mtime stands: Beam's match of FOLDER/FILM* lists
# FOLDER and everything below it (os.walk, a stat of each file) before it filters, so the nightly fingerprint of a
# folder of N films cost N walks of it (118 ms a film at 10,000 films). A listing is kept only when the folder's
# mtime was this old when it was listed: a file added in the same mtime tick (2 s on FAT) would leave it unchanged.
_SETTLED_NS = 3 * 10**9
_FOLDER_NAMES_KEPT = 64
_folder_names: dict = {}
_folder_names_lock = threading.Lock()


def _folder_file_names(folder: str) -> tuple:
    """The names of the entries directly in a local folder that are not folders (told apart as os.walk, so as Beam's
    listing, does); () when it cannot be read. Kept per folder, keyed on its mtime: new or removed names change it,
    so a folder of N films is listed once a night, not N times (the matching files' sizes and times are not kept)."""
    try:
        st = os.stat(folder)
    except OSError:
        return ()
    key = (st.st_dev, st.st_ino, st.st_mtime_ns)
    with _folder_names_lock:
        kept = _folder_names.get(folder)
    if kept is not None and kept[0] == key:
        return kept[1]
    names = _scan_file_names(folder)
    if names is not None and time.time_ns() - st.st_mtime_ns >= _SETTLED_NS:
        with _folder_names_lock:
            _folder_names.pop(folder, None)
            _folder_names[folder] = (key, names)
            while len(_folder_names) > _FOLDER_NAMES_KEPT:  # the oldest first: a nested archive's folders pass once
                _folder_names.pop(next(iter(_folder_names)))
    return names or ()


def _scan_file_names(folder: str) -> Optional[tuple]:
    """One os.scandir of a folder: the names that are not folders (a link to a folder is one; an entry that cannot
    be told is not, as in os.walk); None when the folder cannot be read (os.walk then lists nothing of it)."""
    from transforms.discover import _is_folder
    try:
        with os.scandir(folder) as entries:
            names = [entry.name for entry in entries if not _is_folder(entry)]
    except OSError:
        return None
    return tuple(names)


def _local_metadata(path: str) -> Optional[FileMetadata]:
    """FileMetadata of a local file as Beam's LocalFileSystem lists it (size and st_mtime, the link followed);
    None when it is gone or a broken link (Beam's listing leaves it out)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return FileMetadata(path, st.st_size, st.st_mtime)


def _local_beside(film_path: str) -> list:
    """What Beam's match of the local pattern FILM* gives (its `*` does not cross '/' or '\\', and it is
    case-sensitive): the files of the film's folder whose names start with the film's, from the folder's kept names."""
    folder, base = os.path.split(os.path.splitext(film_path)[0])
    if not folder:  # (Beam lists nothing for a pattern without a folder)
        return []
    base = _one_form(base)
    paths = (os.path.join(folder, name) for name in _folder_file_names(folder)
             if _one_form(name).startswith(base) and "\\" not in _one_form(name)[len(base):])
    found = (_local_metadata(p) for p in paths)
    return [m for m in found if m is not None]


def _one_form(name: str) -> str:
    """A file name in one Unicode form (NFC), for comparing a sidecar's name with its film's: a macOS copy stores
    'Amélie.en.srt' decomposed (NFD) beside 'Amélie.mp4' stored composed, and before 2026-12-07 the film was scored
    without its lines, without a word."""
    return unicodedata.normalize("NFC", name)


def _local_loose(folder: str) -> list:
    """What Beam's match of the local pattern FOLDER/* gives: the folder's own files, from its kept names."""
    found = (_local_metadata(os.path.join(folder, name)) for name in _folder_file_names(folder) if "\\" not in name)
    return [m for m in found if m is not None]


def _local_walk(root: str) -> list:
    """What Beam's match of the local pattern ROOT/** gives: every file below a subtitle folder (os.walk, as Beam's
    LocalFileSystem lists). Walked from the folder itself: Beam walks from the path before its first pattern
    character, so for a film in 'Film [2024]/' it walked the folder's parent, every film's folder in it."""
    if not os.path.exists(root):
        return []
    found = (_local_metadata(os.path.join(top, name)) for top, _, names in os.walk(root) for name in names)
    return [m for m in found if m is not None]


def _subtitle_folder_place(film_path: str, path: str) -> Optional[str]:
    """Where `path` lies in the film's folder's subtitle folders: 'loose' (Subs/NAME), 'own' (Subs/FILM/NAME),
    else None (beside the film, or elsewhere)."""
    folder, name = FileSystems.split(film_path)
    parent = FileSystems.split(path)[0]
    up, last = FileSystems.split(parent)
    if last in SUBTITLE_FOLDERS and up == folder:
        return "loose"
    up2, last2 = FileSystems.split(up)
    return "own" if last == os.path.splitext(name)[0] and last2 in SUBTITLE_FOLDERS and up2 == folder else None


def _named_tags(stem: str) -> Optional[list[str]]:
    """The tags of a subtitle file named for its language alone, as release folders name them: 2_English,
    3_Spanish (Latin America), English.SDH, eng_forced, Francais (Forced) -> ['en'], ['es'], ['en', 'sdh'], ...
    (a language code or a language's name, in English or in itself, then qualifiers); None without a language."""
    tokens = [t.strip("-") for t in _NAME_SEPARATORS.split(_TRACK_NUMBER.sub("", stem).lower()) if t.strip("-")]
    qualifiers = [t for t in tokens if t in _QUALIFIERS]
    words = [t for t in tokens if t not in _QUALIFIERS]
    if not words:
        return None
    codes = [language_code(w) for w in words]
    if all(codes):
        return words + qualifiers
    found = named_language(" ".join(words))
    return [found.lower()] + qualifiers if found else None


def sidecar_files(film_path: str, exts: Sequence[str] = SIDECAR_EXTS, listing: Optional[list] = None) -> list:
    """FileMetadata of the film's sidecars: FILM.<ext> or FILM.<tags>.<ext> beside it (`exts`, in any case:
    archives made on Windows hold FILM.SRT), or FILM_<language>[_<qualifier>].<ext> as deliverables name them
    (FILM_ENG_SDH.srt, FILM-en-US.vtt; before 2026-12-05 not found) unless another film of the folder has that
    name; never one named for another film of the folder whose name extends this one's (Film.trailer.en.srt and
    Alien.Resurrection.srt are Film.trailer.mp4's and Alien.Resurrection.mp4's, not Film.mp4's or Alien.mp4's;
    before 2026-12-06 both films read them); in a subtitle folder (SUBTITLE_FOLDERS; before 2026-12-05 not
    read), named so too, or any file in Subs/FILM/, or a file named for its language (Subs/2_English.srt) when
    the film is its folder's only film; from `listing` (film_listing's; made here when not given)."""
    name = _one_form(os.path.splitext(film_path)[0].rsplit("/", 1)[-1])
    listed = film_listing(film_path) if listing is None else listing
    folder = FileSystems.split(film_path)[0]
    places = {m.path: _subtitle_folder_place(film_path, m.path) for m in listed}
    films = {os.path.splitext(m.path)[0] for m in listed if not m.path.lower().endswith(NOT_FILMS)
             and places[m.path] is None}
    alone = sum(FileSystems.split(m.path)[0] == folder and is_film_candidate(m.path) for m in listed) <= 1
    # the folder's films whose names extend this one's (Film.trailer.mp4 beside Film.mp4): what is named for one is its
    longer = {stem for stem in (_one_form(os.path.splitext(m.path.rsplit("/", 1)[-1])[0]) for m in listed
                                if places[m.path] is None and FileSystems.split(m.path)[0] == folder
                                and is_film_candidate(m.path))
              if stem != name and stem.startswith(name)}
    found = {}
    for m in listed:
        base = _one_form(m.path.rsplit("/", 1)[-1])
        if not base.lower().endswith(tuple(exts)) or special_file(m.path):  # (a named pipe's read never ends)
            continue
        place = places[m.path]
        rest = base[len(name):] if base.startswith(name) else None
        named = rest is not None and (rest.startswith(".") or (_joined_tags(os.path.splitext(rest)[0]) is not None
                                                                and os.path.splitext(m.path)[0] not in films))
        named = named and not any(_named_for(base, stem) for stem in longer)
        if place is None and FileSystems.split(m.path)[0] != folder:
            continue
        if (named or place == "own"
                or (place == "loose" and alone and _named_tags(os.path.splitext(base)[0]) is not None)):
            found[m.path] = m
    return [found[p] for p in sorted(found)]


def _named_for(base: str, stem: str) -> bool:
    """Whether a sidecar's file name is named for the film `stem`: STEM.<ext>, STEM.<tags>.<ext>, STEM_<tags>.<ext>."""
    rest = base[len(stem):] if base.startswith(stem) else None
    return rest is not None and (rest.startswith(".") or _joined_tags(os.path.splitext(rest)[0]) is not None)


def picture_sidecars(film_path: str, listing: Optional[list] = None) -> list[str]:
    """Names of the film's picture subtitle sidecars: Blu-ray PGS (FILM.sup), DVD VobSub (FILM.idx + FILM.sub)."""
    return [path_text(m.path.rsplit("/", 1)[-1]) for m in sidecar_files(film_path, PICTURE_SIDECAR_EXTS, listing)]


def find_sidecars(film_path: str, preferred_language: Optional[str] = None, listing: Optional[list] = None,
                  exts: Sequence[str] = SIDECAR_EXTS) -> list[str]:
    """Sidecar subtitle paths for a film (sidecar_files), best first: preferred language, then no language tag,
    then others; beside the film before a subtitle folder; then by format, then by name (2_English before
    10_English)."""
    def rank(p):
        lang = sidecar_language(film_path, p)
        flags, code = tag_flags(lang), language_code(lang)  # en.sdh, eng_sdh -> en
        preferred = preferred_language and (lang == preferred_language.lower() or
                                            code is not None and code == language_code(preferred_language))
        # tags that are qualifiers only (FILM.sdh.srt) are the film's own, untagged (before 2026-12-07: "another
        # language"); of one language the plain file before the one for the deaf (which was first by name alone)
        untagged = lang is None or code is None and set(_tag_words(lang)) <= _QUALIFIERS | _FORCED_TAGS
        return (bool(flags & _FORCED_TAGS), 0 if preferred else 1 if untagged else 2 if code == "en" else 3,
                bool(flags & _SDH_TAGS), _subtitle_folder_place(film_path, p) is not None, _sidecar_format_rank(p),
                _natural(p))
    return sorted((m.path for m in sidecar_files(film_path, exts, listing)), key=rank)


def _natural(path: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def sidecars_digest(film_path: str) -> Optional[str]:
    """sha256 over the names, sizes and modification times of a film's sidecars, from the listing that finds them
    (a nightly run over a catalogue whose titles carry thirty subtitle languages reads none of them); None when
    it has none. A FILM.xml that is not TTML is a media manager's metadata, rewritten at will: it does not count."""
    h, found = hashlib.sha256(), False
    for m in sidecar_files(film_path, SIDECAR_EXTS + PICTURE_SIDECAR_EXTS):
        fmt = os.path.splitext(m.path)[1].lower().lstrip(".")
        if fmt in ("xml", "sub"):  # counts only as TTML, as MicroDVD
            with FileSystems.open(m.path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                head = f.read(4096)
            if head.startswith(_MPEG_PACK) or not _holds_subtitles(fmt, decode_subtitle_bytes(head)[0]):
                continue
        # its name beside the film (as before subtitle folders were read), else Subs/NAME or Subs/FILM/NAME
        parts = {None: 1, "loose": 2, "own": 3}[_subtitle_folder_place(film_path, m.path)]
        name = "/".join(m.path.split("/")[-parts:]).encode("utf-8", "surrogateescape")
        h.update(b"%s\0%d\0%r\0" % (name, m.size_in_bytes, m.last_updated_in_seconds))
        found = True
    return h.hexdigest() if found else None


def _holds_subtitles(fmt: str, text: str) -> bool:
    """Whether a sidecar's text is subtitles: a .xml only when it is TTML (else a media manager's metadata), a .sub
    only when it is MicroDVD (else a VobSub's index-less pictures or SubViewer); any other sidecar is."""
    return is_ttml(text) if fmt == "xml" else is_microdvd(text) if fmt == "sub" else True


def _sidecar_format_rank(path: str) -> int:
    ext = os.path.splitext(path)[1].lower()
    return SIDECAR_EXTS.index(ext) if ext in SIDECAR_EXTS else len(SIDECAR_EXTS)


def forced_sidecar(film_path: str, sub_path: str) -> bool:
    """name.forced.srt, name.en.forced.srt, name.eng-forced.srt, name.en_forced.srt, name (English Forced).srt,
    name.en.foreign.srt: a forced track (see is_forced). Before 2026-12-07 only tags joined by '.' counted: the
    others were read as the film's whole dialogue."""
    return bool(tag_flags(sidecar_language(film_path, sub_path)) & _FORCED_TAGS)


def is_forced(source: str, film_path: str, info: FilmInfo) -> bool:
    """Whether a load_cues source is a forced track: lines only where a film leaves its main language (signs,
    a foreign exchange), a handful against the film's dialogue: a sidecar tagged forced, a stream with the forced
    disposition or titled so (transforms.probe), pictures all flagged forced. Such a track ranks after every other
    source (load_cues), and a film whose dialogue comes from one is transcribed as well (LoadSubtitles)."""
    if source == CAPTIONS or source.startswith((PACKAGE_TEXT, TELETEXT)):  # (a package's forced narratives, not read)
        return False
    if source.endswith(FORCED):  # a picture track whose pictures are all flagged forced
        return True
    if source.startswith(("stream:", PICTURE)):
        return int(source.split(":", 1)[1]) in info.forced_subtitle_streams
    return bool(source) and forced_sidecar(film_path, source)


def read_sidecar(path: str, film_path: str, fps: Optional[float] = None) -> tuple[list[Cue], list[str]]:
    """A sidecar's cues and warnings; fps: the film's frame rate (MicroDVD lines count frames)."""
    fmt = os.path.splitext(path)[1].lower().lstrip(".")
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        data = f.read(len(_MPEG_PACK))
        if fmt == "sub" and data == _MPEG_PACK:
            return [], []  # a DVD's VobSub pictures (picture_sidecars names them), not text
        data += f.read(MAX_SIDECAR_BYTES + 1 - len(data))
    if len(data) > MAX_SIDECAR_BYTES:
        return [], [f"{path}: larger than {MAX_SIDECAR_BYTES} bytes, ignored"]
    name = path.rsplit("/", 1)[-1]
    # A name's words count as a language only by a two-letter code: 'sdh', 'new', 'one' are also rare languages'
    # three-letter codes (Southern Kurdish, Newari, Oneida), and a line's language reads those (line_language).
    tag = language_code(sidecar_language(film_path, path))
    if fmt == "stl":  # binary, with its own character tables
        try:
            events, own, warnings = parse_stl(data)
        except ValueError as exc:
            return [], [f"{name}: unparseable subtitles: {exc}"]
        cues, warnings = _cues(events, warnings, tag or own, empty=False)
        return cues, [f"{name}: {w}" for w in warnings]
    text, enc_warning = decode_subtitle_bytes(data)
    if not _holds_subtitles(fmt, text):  # a .xml is metadata (nothing to say); a .sub is a format not read
        return [], [f"{name}: neither MicroDVD text nor VobSub pictures: ignored"] if fmt == "sub" else []
    from transforms.image_subtitles import SubtitlePictures
    pictures = SubtitlePictures.beside(path)  # an IMSC1 image-profile TTML names PNG files beside it; read on demand
    cues, warnings = parse_subtitles(text, fmt, tag, fps, pictures)
    warnings += pictures.warnings()
    return cues, [f"{name}: {w}" for w in ([enc_warning] if enc_warning else []) + warnings]


def read_embedded(film_path: str, stream_index: int) -> tuple[list[Cue], list[str]]:
    """Decode one text subtitle stream (see read_embedded_streams)."""
    return read_embedded_streams(film_path, [stream_index])[stream_index]


def read_embedded_streams(film_path: str, stream_indexes) -> dict[int, tuple[list[Cue], list[str]]]:
    """Decode text subtitle streams -> {stream index: (cues, warnings)}. Demuxing reads the container once for
    all of them, without decoding any picture: a film with ten subtitle tracks costs one pass, not ten."""
    found: dict[int, tuple[list[Cue], list[str]]] = {}
    with open_container(film_path) as container:
        start0 = film_start_s(container)
        streams = [container.streams[i] for i in stream_indexes]
        languages = {}
        skipped: dict[int, int] = {}  # events of signs and songs left out, per stream
        not_spoken: dict[int, set[str]] = {}  # their styles
        for stream in streams:
            tag = stream.language if hasattr(stream, "language") else stream.metadata.get("language")
            languages[stream.index] = tag if tag not in (None, "und") else None
            found[stream.index] = ([], [])
        for packet in demux(container, *streams):
            if packet.size == 0 or packet.pts is None or packet.stream.index not in found:
                continue
            cues, warnings = found[packet.stream.index]
            start = float(packet.pts * packet.time_base) - start0
            end = start + float((packet.duration or 0) * packet.time_base)
            try:
                texts = []
                for sub in packet.decode():
                    raw = getattr(sub, "dialogue", None) or getattr(sub, "text", None) or b""
                    raw = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
                    # an ASS event: ReadOrder, Layer, Style, Name, MarginL, MarginR, MarginV, Effect, Text
                    event = getattr(sub, "ass", None) or b""
                    fields = (event.decode("utf-8", errors="replace") if isinstance(event, bytes) else str(event)
                              ).split(",", 8)
                    if len(fields) == 9 and not spoken_event(fields[2], fields[8]):
                        not_spoken.setdefault(packet.stream.index, set()).add(fields[2])
                        skipped[packet.stream.index] = skipped.get(packet.stream.index, 0) + 1
                        continue
                    texts.append(raw)
            except Exception as exc:  # noqa: BLE001 - one bad packet is one skipped cue
                warnings.append(f"stream {packet.stream.index} cue at {start:.2f}s: skipped, {type(exc).__name__}: {exc}")
                continue
            line = dialogue_text(clean_text(" ".join(texts)))
            if not line:
                continue
            if end <= start:
                end = start + 2.0  # some muxers leave duration unset; hold the line for a readable time
                warnings.append(f"stream {packet.stream.index} cue at {start:.2f}s: no duration, assumed 2 s")
            cues.append(Cue(start_s=start, end_s=end, text=line, source="subtitle",
                            language=languages[packet.stream.index]))
    for index, (cues, warnings) in found.items():
        found[index] = (merge_repeats(cues), warnings)
        if skipped.get(index):
            warnings.append(f"stream {index}: " + _not_dialogue_warning(skipped[index], not_spoken[index]))
    return found


def load_cues(ref: FilmRef, info: FilmInfo, preferred_language: Optional[str] = None,
              text_languages: Sequence[str] = (), listing: Optional[list] = None) -> tuple[list[Cue], list[str], str]:
    """Best available cues for a film -> (cues, warnings, where they came from). Each cue's language is the one
    identified from all of the film's lines, else its tag (transforms.language.label_cues): it decides whether
    the text path reads them.

    Sources in order: sidecars (find_sidecars' ranking), then embedded text streams (preferred language first,
    then those tagged with a language of `text_languages`, untagged, others; forced tracks last), then closed
    captions in the video stream (CAPTIONS: broadcast recordings' A53 / CEA-608). The first source the text path
    reads (at least half its lines: mostly_read) wins (`text_languages`, () = any): an archive's film often carries a
    dozen subtitle tracks, and the first of them need not be one the model learnt. When none is read, the first with cues is returned.
    A forced track (is_forced: a sidecar, a stream or pictures) waits until every other source has been tried: it
    is the film's dialogue only when nothing else gives lines the text path reads (before 2026-12-06 a forced
    sidecar, film.en.forced.srt, came before the film's own full track).
    listing: film_listing's, when the caller has it (else the sidecars are listed here)."""
    warnings: list[str] = []
    first: Optional[tuple[list[Cue], str]] = None
    forced: list[tuple[list[Cue], str]] = []
    for source, cues in _sources(ref, info, preferred_language, text_languages, warnings, listing):
        if not cues:
            continue
        cues = _labelled(cues, warnings, text_languages, source)
        if is_forced(source, ref.path, info):
            forced.append((cues, source))
        elif mostly_read(cues, text_languages):
            return cues, warnings, source
        else:
            first = first or (cues, source)
    best = next((f for f in forced if mostly_read(f[0], text_languages)), None) or first or next(iter(forced), None)
    return (best[0], warnings, best[1]) if best else ([], warnings, "")


# A film whose subtitles leave this share of it without a line (their end, their start or between) has them cut short
# or for one reel: with --transcribe auto its speech is transcribed for the clips without a line, as for a forced
# track (before 2026-12-07 a sidecar ending at 12 s of a 27 s film left the rest of its speech unread, without a word).
# Long wordless stretches are rarely a third of a feature (the opening of 2001: A Space Odyssey is a sixth); where
# one is, the speech recogniser hears no words there and the cost is its pass over the film.
UNCOVERED_SHARE = 1 / 3
MIN_UNCOVERED_S = 10.0


def uncovered(cues: Sequence[Cue], duration_s: Optional[float]) -> Optional[tuple[float, float]]:
    """The longest stretch of a film without a line (start_s, end_s), where it is UNCOVERED_SHARE of the film or more
    and at least MIN_UNCOVERED_S long; None otherwise (or without a known duration)."""
    if not duration_s or duration_s <= 0:
        return None
    best, reached = (0.0, 0.0), 0.0
    for c in sorted(cues, key=lambda c: c.start_s):
        if c.start_s - reached > best[1] - best[0]:
            best = (reached, c.start_s)
        reached = max(reached, c.end_s)
    if duration_s - reached > best[1] - best[0]:
        best = (reached, duration_s)
    length = best[1] - best[0]
    return best if length >= UNCOVERED_SHARE * duration_s and length >= MIN_UNCOVERED_S else None


def mostly_read(cues: Sequence[Cue], text_languages: Sequence[str]) -> bool:
    """Whether the text path reads at least half of these lines (transforms.language.reads): a source it reads.
    Before 2026-12-07 one line read was enough; since a film's lines are identified by script (film_founds), a
    Russian film's track with one English line in it holds a line read, and its Russian speech was not transcribed
    (found in review)."""
    lines = [c for c in cues if (c.text or "").strip()]
    return bool(lines) and 2 * sum(reads(c.language, text_languages) for c in lines) >= len(lines)


def on_film_clock(cues: list[Cue], info: FilmInfo) -> tuple[list[Cue], Optional[str]]:
    """A sidecar's cues on the film's clock. Subtitles made for a studio or broadcast master are often timed on
    its timecode (the first frame is 01:00:00:00 or 10:00:00:00). When no line comes before the film's start
    timecode, they are moved back by it, whatever the film's length; lines timed from 0 on such a master (the first
    before its start timecode) stay as they are. Without a start timecode, by the whole hours before the first line,
    when lines as timed run past the film's end. Either move must put the first line inside the film; lines none of
    which falls within it are not the film's (a warning says so). Before 2026-12-03 such a film had no line at all,
    without a word; before 2026-12-06 lines moved only when none started within the film, so a master longer than
    its start hour (90 minutes from 01:00:00:00) kept every line an hour late."""
    duration = info.duration_s
    if not cues or duration <= 0:
        return cues, None
    first = min(c.start_s for c in cues)
    past_end = any(c.start_s >= duration for c in cues)  # (a forced track timed from 0 may start after an hour)
    for shift, plausible in ((info.start_timecode_s, True), (3600.0 * (first // 3600), past_end)):
        if shift > 0 and plausible and 0 <= first - shift < duration:
            moved = [dataclasses.replace(c, start_s=c.start_s - shift, end_s=c.end_s - shift) for c in cues]
            return moved, (f"timed on a master's timecode (first line at {_clock(first)}, the film is "
                           f"{_clock(duration)} long): moved back by {_clock(shift)}")
    if any(c.start_s < duration for c in cues):
        return cues, None
    return [], (f"none of its {len(cues)} lines falls within the film (first at {_clock(first)}, the film is "
                f"{_clock(duration)} long): not used")


def _in_step(cues: list[Cue], speech: Callable[[], list]) -> tuple[list[Cue], Optional[str]]:
    """Lines retimed to the film's speech where they are clearly out of step (transforms.subtitle_sync), or kept with
    a row where they follow it only in part of the film or not at all; speech() gives the film's heard samples
    (decoded once per film, on first need)."""
    from transforms import subtitle_sync
    if len(cues) < subtitle_sync.MIN_LINES:
        return cues, None
    try:
        return subtitle_sync.resync(cues, speech())
    except Exception as exc:  # noqa: BLE001 - the timing as given is still usable
        _raise_if_storage(exc, "the speech heard to check the subtitles' timing")
        return cues, f"could not check the timing against the speech: {type(exc).__name__}: {exc}"


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _sources(ref: FilmRef, info: FilmInfo, preferred_language: Optional[str], text_languages: Sequence[str],
             warnings: list[str], listing: Optional[list] = None) -> Iterable[tuple[str, list[Cue]]]:
    """(source, cues) for each subtitle source, best first; read lazily, the embedded streams in one pass. Every
    source's timing is checked against the film's speech (an embedded track can be muxed from a mistimed file)."""
    from transforms.subtitle_sync import film_speech
    speech = functools.cache(lambda: film_speech(ref.path, info))  # heard once, when a source first needs it

    for path in find_sidecars(ref.path, preferred_language, listing):
        try:
            cues, w = read_sidecar(path, ref.path, info.fps)
        except Exception as exc:  # noqa: BLE001
            _raise_if_storage(exc, path)
            cues, w = [], [f"{path}: {type(exc).__name__}: {exc}"]
        cues, moved = on_film_clock(cues, info)  # (embedded tracks share the film's clock)
        cues, retimed = _in_step(cues, speech)
        warnings += w + [f"{path.rsplit('/', 1)[-1]}: {m}" for m in (moved, retimed) if m]
        yield path, cues
    if imf.is_composition(ref.path):
        yield from _package_sources(ref, preferred_language, warnings, speech)
    yield from _embedded_sources(ref, info, preferred_language, text_languages, warnings, speech)
    yield from _teletext_sources(ref, info, preferred_language, text_languages, warnings, speech)
    tracks = list(info.caption_streams) or ([None] if info.has_video and info.video_codec in CAPTIONED_CODECS else [])
    for track in tracks:  # a caption track, else the captions the pictures carry
        where = f"caption track {track}" if track is not None else "captions in the video"
        try:
            lines = read_video_captions(ref.path, track)
        except Exception as exc:  # noqa: BLE001 - the film is transcribed instead
            _raise_if_storage(exc, where)
            warnings.append(f"{where}: {type(exc).__name__}: {exc}")
            continue
        cues, w = _cues(lines, [], None, empty=True)
        cues, retimed = _in_step(cues, speech)
        warnings += [f"{where}: {m}" for m in w + ([retimed] if retimed else [])]
        yield CAPTIONS, cues
    yield from _picture_sources(ref, info, preferred_language, text_languages, warnings, speech, listing)


def _raise_if_storage(exc: Exception, what: str) -> None:
    """A source that could not be read because the storage failed is no source without lines: the film is read
    again by the next run (ReadFailed), rather than scored for good without its subtitles."""
    if storage_failure(exc):
        raise ReadFailed(f"{what}: {type(exc).__name__}: {exc}") from exc


def _package_sources(ref: FilmRef, preferred_language: Optional[str], warnings: list[str],
                     speech: Callable[[], list]) -> Iterable[tuple[str, list[Cue]]]:
    """An IMF or DCP title's subtitle and caption sequences (IMSC1 in IMF, a DCP's subtitle XML; transforms.imf),
    in the CPL's order, the preferred language first."""
    try:
        texts = list(imf.read_texts(imf.read_composition(ref.path)))
    except Exception as exc:  # noqa: BLE001 - the title is transcribed instead
        _raise_if_storage(exc, "the package's subtitle track files")
        warnings.append(f"the package's subtitles: {type(exc).__name__}: {exc}")
        return
    wanted = language_code(preferred_language)
    texts.sort(key=lambda t: not (wanted and language_code(t[2]) == wanted))
    for name, events, language, w in texts:
        cues, w = _cues(events, list(w), language_code(language) or named_language(language or ""), empty=True)
        cues, retimed = _in_step(cues, speech)
        warnings += [f"{name}: {m}" for m in w + ([retimed] if retimed else [])]
        yield f"{PACKAGE_TEXT}{name}", cues


def language_rank(tag: Optional[str], preferred_language: Optional[str], text_languages: Sequence[str]) -> int:
    """How a track's language tag ranks among a film's tracks: 0 the preferred language, 1 one the text path reads,
    2 untagged, 3 any other."""
    code, wanted = language_code(tag), language_code(preferred_language)
    return 0 if wanted and code == wanted else 1 if code and code in text_languages else 2 if code is None else 3


def _embedded_sources(ref: FilmRef, info: FilmInfo, preferred_language: Optional[str],
                      text_languages: Sequence[str], warnings: list[str], speech: Callable[[], list]
                      ) -> Iterable[tuple[str, list[Cue]]]:
    """The film's embedded text subtitle tracks, best first (see load_cues)."""
    if not info.subtitle_streams:
        return
    try:
        streams = read_embedded_streams(ref.path, info.subtitle_streams)
    except Exception as exc:  # noqa: BLE001
        _raise_if_storage(exc, f"streams {list(info.subtitle_streams)}")
        warnings.append(f"streams {list(info.subtitle_streams)}: {type(exc).__name__}: {exc}")
        return
    def rank(index: int):
        tag = next((c.language for c in streams[index][0] if c.language), None)
        return (index in info.forced_subtitle_streams, language_rank(tag, preferred_language, text_languages),
                index in info.sdh_subtitle_streams, index not in info.default_subtitle_streams, index)
    for index in sorted(streams, key=rank):
        cues, w = streams[index]
        cues, retimed = _in_step(cues, speech)
        warnings += w + ([f"stream {index}: {retimed}"] if retimed else [])
        yield f"stream:{index}", cues


def _teletext_sources(ref: FilmRef, info: FilmInfo, preferred_language: Optional[str], text_languages: Sequence[str],
                      warnings: list[str], speech: Callable[[], list]) -> Iterable[tuple[str, list[Cue]]]:
    """A DVB recording's teletext subtitle pages (transforms.teletext), ranked by their stream's tag as text tracks
    are, then by page number."""
    if not info.teletext_streams:
        return
    from transforms.teletext import read_teletext
    try:
        pages = read_teletext(ref.path, info.teletext_streams, warnings)
    except Exception as exc:  # noqa: BLE001 - the film is transcribed instead
        _raise_if_storage(exc, f"teletext streams {list(info.teletext_streams)}")
        warnings.append(f"teletext streams {list(info.teletext_streams)}: {type(exc).__name__}: {exc}")
        return
    for key in sorted(pages, key=lambda k: (language_rank(pages[k][1], preferred_language, text_languages), k)):
        events, tag = pages[key]
        cues, w = _cues(events, [], tag, empty=True)
        cues, retimed = _in_step(cues, speech)
        where = f"teletext page {key[1]:x}"
        warnings += [f"{where}: {m}" for m in w + ([retimed] if retimed else [])]
        yield f"{TELETEXT}{key[0]}:{key[1]:x}", cues


class _PictureTrack(NamedTuple):
    """One picture subtitle track _picture_sources may read: in a sidecar (.sup / .idx) or the film."""
    path: str
    sidecar: bool
    index: int  # the stream index in that file
    name: str  # how warnings name it
    alone: bool  # the sidecar's only readable track: its source is the file's name, without '#index'
    language: Optional[str]  # the sidecar name's tag, which outranks the file's own
    forced: bool  # the stream's forced disposition


def _picture_sources(ref: FilmRef, info: FilmInfo, preferred_language: Optional[str], text_languages: Sequence[str],
                     warnings: list[str], speech: Callable[[], list], listing: Optional[list]
                     ) -> Iterable[tuple[str, list[Cue]]]:
    """Picture subtitles, their text read by OCR (transforms.image_subtitles): the .sup / .idx sidecars (ranked as
    text sidecars are), then the film's PGS, VobSub and DVB tracks (ranked by their tags as text tracks are). Last of
    all sources: OCR is the slowest to read and can misread a word, so it is read only when nothing gives the lines
    as text, and one track at a time, best first: a disc with twenty subtitle languages has its first one read, not
    all twenty. A track whose every picture turns out forced waits until the others have been tried."""
    from model.ocr import SCRIPTS
    from transforms.image_subtitles import picture_tracks, read_picture_subtitles

    def tracks(path: str, sidecar: bool, indexes: Optional[Sequence[int]], what: str, language: Optional[str] = None):
        """(stream index, language, forced) of each track whose script OCR reads, best first; [] if they cannot be
        listed. language: the sidecar name's tag, which outranks the file's own."""
        try:
            listed = picture_tracks(path, sidecar, indexes)
        except Exception as exc:  # noqa: BLE001 - the film is transcribed instead
            _raise_if_storage(exc, what)
            warnings.append(f"{what}: {type(exc).__name__}: {exc}")
            return []
        readable = []
        for track in listed:  # a Russian or Arabic track would come out as Latin nonsense
            script = likely_script(language or track[1])
            if script and script not in SCRIPTS:
                warnings.append(f"{what}: track {track[0]} ({language or track[1]}) not read: the OCR recogniser reads "
                                f"Latin and Chinese script, not {script}")
            else:
                readable.append(track)
        # (forced disposition, language, index): the disposition is what the probe's forced streams hold
        return sorted(readable, key=lambda t: (t[2], language_rank(t[1], preferred_language, text_languages), t[0]))

    def read(c: _PictureTrack):
        try:
            track = read_picture_subtitles(c.path, [c.index], c.sidecar)[c.index]
        except Exception as exc:  # noqa: BLE001
            _raise_if_storage(exc, c.name)
            warnings.append(f"{c.name}: {type(exc).__name__}: {exc}")
            return None
        cues, w = _cues(track.events, list(track.warnings), language_code(c.language) or track.language, empty=True)
        moved = None
        if c.sidecar:
            cues, moved = on_film_clock(cues, info)
        cues, retimed = _in_step(cues, speech)
        warnings.extend(f"{c.name}: {m}" for m in w + [m for m in (moved, retimed) if m])
        source = (c.path if c.alone else f"{c.path}#{c.index}") if c.sidecar else f"{PICTURE}{c.index}"
        forced = track.forced or c.forced
        return source + (FORCED if forced else ""), cues, forced

    candidates = []
    for path in find_sidecars(ref.path, preferred_language, listing, PICTURE_SIDECAR_EXTS):
        name = path_text(path.rsplit("/", 1)[-1])
        tagged = sidecar_language(ref.path, path)
        listed = tracks(path, True, None, name, tagged)  # an .idx may hold several languages
        candidates += [_PictureTrack(path, True, index, name, len(listed) == 1, language_code(tagged) or tagged,
                                     forced) for index, _, forced in listed]
    if info.picture_subtitle_streams:
        candidates += [_PictureTrack(ref.path, False, index, f"stream {index}", True, None, forced)
                       for index, _, forced in tracks(ref.path, False, info.picture_subtitle_streams,
                                                      f"picture streams {list(info.picture_subtitle_streams)}")]
    deferred = []
    for k, candidate in enumerate(candidates):
        got = read(candidate)
        if got is None:
            continue
        source, cues, forced = got
        if forced and k < len(candidates) - 1:
            deferred.append((source, cues))
            continue
        yield source, cues
    yield from deferred


def _labelled(cues: list[Cue], warnings: list[str], text_languages: Sequence[str] = (), source: str = "") -> list[Cue]:
    try:
        notes: list[str] = []
        cues = list(label_cues(cues, text_languages, notes))
        warnings += [f"{str(source).rsplit('/', 1)[-1]}: {n}" if source else n for n in notes]
        return cues
    except IdentifierUnavailable:
        raise  # not the lines' fault: the film is tried again (LoadSubtitles)
    except Exception as exc:  # noqa: BLE001 - lines of unknown language are still read
        warnings.append(f"language not identified: {type(exc).__name__}: {exc}")
        return cues


class LoadSubtitles(beam.DoFn):
    """(FilmRef, FilmInfo) -> FilmJob. Subtitle problems are non-fatal FilmErrors carried in the job
    (`FilmJob.warnings`, committed with the film's tables): the film goes on without them.

    A forced track (lines only where the film leaves its main language) is not the film's dialogue: its lines are
    kept and, with `transcribe` auto, the speech is transcribed for the clips between them.

    Subtitles the text path does not read (`text_languages`: a French track, a model that learnt English) are
    no dialogue for the model: with `transcribe` auto (or always) and an audio track, the film is transcribed
    instead and its clips are planned from the speech, so an English-speaking film with only French subtitles
    still has its lines read. Without audio, or with `transcribe` never, the lines stay in the clips table,
    unread."""

    def __init__(self, config_hash: str, transcribe: str = "auto", preferred_language: Optional[str] = None,
                 max_warnings: int = 20, text_languages: Sequence[str] = TEXT_LANGUAGES,
                 output_dir: Optional[str] = None):
        self.config_hash, self.output_dir = config_hash, output_dir  # output_dir: for transforms.attempts
        self.transcribe = transcribe
        self.preferred_language = preferred_language
        self.max_warnings = max_warnings
        self.text_languages = tuple(text_languages)

    def process(self, element) -> Iterable:
        ref, info = element
        earlier = attempts.record_start(self.output_dir, ref, self.config_hash, "subtitles")
        job = self._job(ref, info, earlier)
        attempts.finished(self.output_dir, ref.film_id, "subtitles")  # before the next step runs on the job
        yield job

    def _job(self, ref, info, earlier: int) -> FilmJob:
        listing = None
        try:
            if earlier >= attempts.MAX_STARTS:  # reading them killed the worker each time: the film goes on without
                raise RuntimeError(f"reading the film's subtitles was started {earlier} times and its worker never "
                                   "finished (a crash, memory exhausted): left out, so the film goes on; --force "
                                   "tries again")
            listing = film_listing(ref.path)  # one listing for its subtitles and, without lines, its pictures
            cues, warnings, source = load_cues(ref, info, self.preferred_language, self.text_languages, listing)
        except ReadFailed as exc:  # the storage failed: the film fails at `read` (ProcessFilm does not decode it)
            return self._not_read(ref, info, "ReadFailed", f"reading the film's subtitles failed: {exc} (a storage or "
                                  "network error, not the file's content: the next run tries again)")
        except IdentifierUnavailable as exc:  # not the film's fault either: it fails at `read`, to be tried again
            return self._not_read(ref, info, "LanguageUnknown", f"{exc}: which of the film's lines the text path reads "
                                  "cannot be told, so the film is not scored now (not the film's fault: the next run "
                                  "tries again)")
        except Exception as exc:  # noqa: BLE001 - no subtitles is survivable
            cues, warnings, source = [], [f"{type(exc).__name__}: {exc}"], ""
        messages = warnings[: self.max_warnings]
        if len(warnings) > self.max_warnings:
            messages.append(f"{len(warnings) - self.max_warnings} more subtitle warnings")
        for w in messages:
            log.warning("%s: subtitles: %s", ref.path, w)
        errors = [FilmError(film_path=ref.path, film_id=ref.film_id, stage="subtitles", error_type="SubtitleWarning",
                            message=w, fatal=False) for w in messages]
        unread = bool(cues) and not mostly_read(cues, self.text_languages)
        forced = bool(cues) and is_forced(source, ref.path, info)  # its lines, and the speech for the rest
        gap = uncovered(cues, info.duration_s) if cues and not (unread or forced) else None
        needs_asr = info.has_audio and (self.transcribe == "always" or (self.transcribe == "auto"
                                                                         and (not cues or unread or forced
                                                                              or gap is not None)))
        if gap:
            errors.append(FilmError(
                film_path=ref.path, film_id=ref.film_id, stage="subtitles", error_type="SubtitlesPartial",
                message=f"subtitles {source.rsplit('/', 1)[-1]} have no line from {gap[0]:.1f} s to {gap[1]:.1f} s of "
                        f"the film's {info.duration_s:.1f} s (a third of it or more: a file cut short, or one reel's?): "
                        + ("the speech is transcribed for the clips without a line" if needs_asr else
                           "the film has no sound to transcribe there" if not info.has_audio else
                           "the speech there is not transcribed (--transcribe never)"), fatal=False))
        pictures = list(info.image_subtitle_codecs) + (picture_sidecars(ref.path, listing) if not cues else [])
        if not cues and pictures:
            errors.append(self._image_subtitles(ref, pictures, needs_asr))
        elif cues and (source.startswith(PICTURE) or source.lower().split("#")[0].endswith(PICTURE_SIDECAR_EXTS)):
            # (an .idx of several languages names the stream read: movie.idx#1)
            errors.append(self._read_by_ocr(ref, source, len(cues)))
        if info.package:
            errors.append(self._package_track(ref, info))
        layout = dvd.layout_note(ref.path) if dvd.title_name(ref.path) else None  # (a DVD title set's first VOB)
        if layout:
            log.warning("%s: %s", ref.path, layout)
            errors.append(FilmError(film_path=ref.path, film_id=ref.film_id, stage="probe", error_type="DvdTitleSet",
                                    message=layout, fatal=False))
        if unread and needs_asr:
            languages = sorted({line_language(c.language) or "unknown" for c in cues
                                if not reads(c.language, self.text_languages)})
            some = sum(reads(c.language, self.text_languages) for c in cues)
            message = (f"subtitles {source.rsplit('/', 1)[-1]} ({', '.join(languages)}, {len(cues)} lines"
                       + (f", {some} of them read" if some else "") + ") are in a "
                       f"language the text path does not read (--text_languages {','.join(self.text_languages)}): "
                       "the dialogue is transcribed from the speech instead" + unidentified_note(languages))
            log.warning("%s: %s", ref.path, message)
            errors.append(FilmError(film_path=ref.path, film_id=ref.film_id, stage="subtitles",
                                    error_type="UnreadLanguage", message=message, fatal=False))
            cues = []
        return FilmJob(ref=ref, info=info, cues=tuple(cues), needs_asr=needs_asr, config_hash=self.config_hash,
                       warnings=tuple(errors))

    def _not_read(self, ref, info, error_type: str, message: str) -> FilmJob:
        """The job of a film that fails at `read`, for a reason not its own: ProcessFilm does not decode it, and the
        next run tries it again."""
        return FilmJob(ref=ref, info=info, cues=(), needs_asr=False, config_hash=self.config_hash, warnings=(
            FilmError(film_path=ref.path, film_id=ref.film_id, stage="read", error_type=error_type, message=message),))

    @staticmethod
    def _package_track(ref, info) -> FilmError:
        """Say that a file is a track file of an IMF or DCP package that none of the package's compositions plays
        (those are scored as their titles, transforms.imf): scored on its own, it is a picture without its sound,
        or a sound without its picture."""
        what = ("as it is" if info.has_video and info.has_audio else
                "a picture without sound" if info.has_video else "a sound without picture")
        message = (f"a track file in the IMF / DCP package of {info.package.rsplit('/', 1)[-1]} that none of the "
                   f"package's compositions (CPLs) plays: scored on its own, {what}; the titles the CPLs play are "
                   "scored as films of their own (film_path = the CPL)")
        log.warning("%s: %s", ref.path, message)
        return FilmError(film_path=ref.path, film_id=ref.film_id, stage="probe", error_type="PackageTrackFile",
                         message=message, fatal=False)

    @staticmethod
    def _image_subtitles(ref, pictures: list[str], needs_asr: bool) -> FilmError:
        """Say why a film whose only subtitles are pictures (DVD, Blu-ray, DVB tracks; .sup and VobSub sidecars)
        has no subtitle lines: OCR reads PGS, VobSub and DVB pictures only, and these gave none it could read."""
        tracks = ", ".join(sorted(set(pictures)))
        then = ("the dialogue is transcribed from the speech instead" if needs_asr else
                "its clips have no text (no audio, or --transcribe never)")
        unread = sorted({p for p in pictures if p not in PICTURE_CODECS and not p.lower().endswith(PICTURE_SIDECAR_EXTS)})
        why = ([f"OCR does not read {', '.join(unread)}"] if unread else []) + (
            ["OCR found no line in the PGS / VobSub / DVB pictures"] if len(unread) < len(pictures) else [])
        message = (f"{len(pictures)} subtitle track(s) are pictures ({tracks}) and gave no lines ({'; '.join(why)}): "
                   f"{then}; a text sidecar beside the film (film.en.srt) would be read")
        log.warning("%s: %s", ref.path, message)
        return FilmError(film_path=ref.path, film_id=ref.film_id, stage="subtitles", error_type="ImageSubtitles",
                         message=message, fatal=False)

    @staticmethod
    def _read_by_ocr(ref, source: str, n: int) -> FilmError:
        """Say that the film's lines were read from subtitle pictures: OCR can misread a word, a text file cannot."""
        source = source.removesuffix(FORCED)
        where = f"picture track {source[len(PICTURE):]}" if source.startswith(PICTURE) else source.rsplit("/", 1)[-1]
        message = (f"the dialogue ({n} lines) was read by OCR from the subtitle pictures of {where} "
                   "(no text subtitles): a misread word is possible; a text sidecar (film.en.srt) would be exact")
        log.info("%s: %s", ref.path, message)
        return FilmError(film_path=ref.path, film_id=ref.film_id, stage="subtitles", error_type="PictureSubtitles",
                         message=message, fatal=False)
