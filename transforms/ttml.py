"""TTML subtitles (IMSC1 in IMF packages, Netflix DFXP, EBU-TT, SMPTE-TT): the sidecar format of studio and
streaming deliverables. pysubs2 reads only TTML's plainest timing (no frames, no ticks, no nested offsets), and
deliverables use all three, so the timing is read here:

    clock time   01:02:03.500  01:02:03:12 (frames)  01:02:03:12.1 (sub-frames)  01:02:03;12 (drop-frame)
    offset time  3.5s  350ms  1.5m  1h  90f (frames)  35000000t (ticks, ttp:tickRate)

with ttp:frameRate, ttp:frameRateMultiplier ("1000 1001": 23.976 and 29.97 fps), ttp:subFrameRate,
ttp:tickRate and ttp:timeBase (media: a clock time is real time; smpte: a timecode label counted in frames,
dropNTSC dropping two labels a minute). Times nest: a `p`'s begin is counted from its `div`'s and `body`'s
(TTML's default `par` time containers; in a timeContainer="seq" one, from the end of the child before). A `p`
without times of its own whose spans carry them gives one line per span. What is not shown is not read: metadata
(`ttm:desc`, other vocabularies' elements) and what tts:display="none" hides. Whether a time is on the master's
timecode (10:00:00:00 at the first frame) is not decided here: transforms.subtitles.on_film_clock does that for
every sidecar.

IMSC1's image profile gives each line as a picture: a timed `div` with `smpte:backgroundImage`, naming a PNG the IMF
track file carries (urn:uuid:...) or one embedded in the document (`#id` of a base64 `smpte:image`); the caller's
`pictures` reads it (transforms.image_subtitles.SubtitlePictures, OCR)."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Callable, Optional

from transforms.timecode import label_seconds

TTML_NAMESPACES = ("http://www.w3.org/ns/ttml", "http://www.w3.org/2006/10/ttaf1", "http://www.w3.org/2006/04/ttaf1")
_CLOCK = re.compile(r"(\d+):(\d{2}):(\d{2})(?:([:;])(\d+)(?:\.(\d+))?|(\.\d+))?")
_OFFSET = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|f|t)")
_SPACES = re.compile(r"\s+")


def is_ttml(text: str) -> bool:
    """Whether an XML document is TTML (a `.xml` beside a film may be a media manager's metadata instead)."""
    head = text[:4096]
    return "<tt" in head and any(ns in head for ns in TTML_NAMESPACES)


@dataclass(frozen=True)
class Timing:
    """The document's timing parameters (TTML's ttp: attributes on the root, with the standard's defaults)."""
    frame_rate: float = 30.0       # effective frames per second (frameRate x frameRateMultiplier)
    nominal_rate: int = 30         # frames per timecode second (the frame field's range)
    sub_frame_rate: int = 1
    tick_rate: float = 1.0
    smpte: bool = False            # ttp:timeBase="smpte": clock times are timecode labels
    drop_frame: bool = False       # ttp:dropMode dropNTSC (two labels a minute, not every tenth)
    hour: int = 0                  # of the lines' earliest timecode label (transforms.timecode.label_seconds)

    @classmethod
    def of(cls, root: ET.Element) -> "Timing":
        attr = {_local(k): v for k, v in root.attrib.items()}
        nominal = int(attr.get("frameRate", "30") or 30)
        num, _, den = (attr.get("frameRateMultiplier") or "1 1").partition(" ")
        rate = nominal * float(num) / float(den or 1)
        subs = int(attr.get("subFrameRate", "1") or 1)
        ticks = float(attr["tickRate"]) if attr.get("tickRate") else (rate * subs if "frameRate" in attr else 1.0)
        smpte = attr.get("timeBase") == "smpte"
        begins = (_CLOCK.fullmatch((el.get("begin") or "").strip())
                  for el in root.iter() if _local(el.tag) in ("p", "span"))
        hour = min((int(m.group(1)) for m in begins if m and (m.group(4) == ";" or smpte and m.group(4))), default=0)
        return cls(frame_rate=rate, nominal_rate=nominal, sub_frame_rate=subs, tick_rate=ticks,
                   smpte=smpte, drop_frame=attr.get("dropMode") == "dropNTSC", hour=hour)

    def seconds(self, expr: str) -> float:
        """One TTML time expression in seconds; ValueError for anything else."""
        expr = expr.strip()
        m = _OFFSET.fullmatch(expr)
        if m:
            value, unit = float(m.group(1)), m.group(2)
            if unit == "f":
                return value / self.frame_rate
            if unit == "t":
                return value / self.tick_rate
            return value * {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}[unit]
        m = _CLOCK.fullmatch(expr)
        if not m:
            raise ValueError(f"not a TTML time: {expr!r}")
        h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if m.group(7):  # 01:02:03.500
            return h * 3600 + mi * 60 + s + float(m.group(7))
        frames = int(m.group(5) or 0) + (int(m.group(6)) / self.sub_frame_rate if m.group(6) else 0.0)
        if not (self.smpte or m.group(4) == ";"):  # media time base: real seconds plus frames
            return h * 3600 + mi * 60 + s + frames / self.frame_rate
        drop = self.drop_frame or m.group(4) == ";"  # a timecode label, counted in frames
        # from the lines' first hour, as a film's start timecode reads (a duration, below it, from 00:00:00:00)
        hour = self.hour if h >= self.hour else 0
        return label_seconds(h, mi, s, frames, self.nominal_rate, self.frame_rate, drop, hour)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attr(el: ET.Element, name: str) -> Optional[str]:
    """el's attribute of that local name, whatever its namespace (tts:display, xml:id, style)."""
    return next((v for k, v in el.attrib.items() if _local(k) == name), None)


def _hides(el: ET.Element, hidden: frozenset) -> bool:
    """Whether el's style is tts:display="none": its own attribute, else a style it names (hidden's ids)."""
    own = _attr(el, "display")
    return own.strip() == "none" if own else bool(hidden.intersection((_attr(el, "style") or "").split()))


def _hidden_styles(root: ET.Element) -> frozenset:
    """xml:ids of the styles that hide what they style: tts:display="none", their own or a style they name's."""
    styles = {_attr(el, "id"): el for el in root.iter() if _local(el.tag) == "style" and _attr(el, "id")}
    hidden: frozenset = frozenset()
    for _ in styles:  # a chain of styles naming styles: one link a pass
        more = {ident for ident, el in styles.items() if ident not in hidden and _hides(el, hidden)}
        if not more:
            break
        hidden |= more
    return hidden


def _shown(el: ET.Element, hidden: frozenset) -> bool:
    """Whether el is presented: not metadata (ttm:desc, ttm:agent, any vocabulary outside TTML's namespaces, which a
    presentation prunes) and not hidden (tts:display="none")."""
    ns = el.tag[1:].split("}", 1)[0] if el.tag.startswith("{") else None
    return (ns is None or ns in TTML_NAMESPACES) and _local(el.tag) != "metadata" and not _hides(el, hidden)


def _text(el: ET.Element, hidden: frozenset = frozenset()) -> str:
    """An element's words, line breaks as spaces; children that are not shown are not read (their tails are the
    element's). Before 2026-12-06 a line's <metadata><ttm:desc> and its tts:display="none" spans were read too."""
    parts = [el.text or ""]
    for child in el:
        if _shown(child, hidden):
            parts.append(" " if _local(child.tag) == "br" else _text(child, hidden))
        parts.append(child.tail or "")
    return "".join(parts)


def _timed_spans(p: ET.Element, seq: bool, hidden: frozenset) -> list[ET.Element]:
    """A `p`'s shown spans with times of their own: in a seq `p` its child spans with a begin, dur or end (each
    counted from the end of the one before), else every span with a begin."""
    if seq:
        return [c for c in p if _local(c.tag) == "span" and _shown(c, hidden) and
                any(c.get(a) for a in ("begin", "dur", "end"))]
    found = []
    for child in (c for c in p if _shown(c, hidden)):
        if _local(child.tag) == "span" and child.get("begin"):
            found.append(child)
        found += _timed_spans(child, False, hidden)
    return found


def _embedded_images(root: ET.Element) -> dict[str, bytes]:
    """{xml:id: bytes} of the base64 `smpte:image` elements a SMPTE-TT / IMSC1 document carries in its head."""
    import base64
    import binascii
    found = {}
    for el in root.iter():
        ident = next((v for k, v in el.attrib.items() if _local(k) == "id"), None)
        if _local(el.tag) == "image" and ident and (el.text or "").strip():
            try:
                found[ident] = base64.b64decode("".join(el.text.split()), validate=True)
            except (binascii.Error, ValueError):
                continue
    return found


def _background_image(el: ET.Element) -> Optional[str]:
    return next((v.strip() for k, v in el.attrib.items() if _local(k) == "backgroundImage" and v.strip()), None)


def parse_ttml(text: str, pictures: Optional[Callable[[str, Optional[bytes]], str]] = None
               ) -> tuple[list[tuple[float, float, str]], Optional[str], list[str]]:
    """TTML document -> ([(start_s, end_s, text)], its xml:lang, warnings). Lines whose times cannot be read are
    skipped, each with a warning; an unreadable document raises ValueError. pictures(ref, data): the text of an
    image-profile line (data: the picture's bytes where the document embeds it, else None); without it such lines are
    left out with a warning."""
    try:  # the declaration's encoding is the file's, no longer the text's (transforms.subtitles decoded it)
        root = ET.fromstring(re.sub(r"^\s*<\?xml[^>]*\?>", "", text))
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from None
    if _local(root.tag) != "tt":
        raise ValueError(f"not TTML: the root element is <{_local(root.tag)}>")
    timing = Timing.of(root)
    language = next((v for k, v in root.attrib.items() if _local(k) == "lang" and v), None)
    lines: list[tuple[float, float, str]] = []
    warnings: list[str] = []

    def interval(el: ET.Element, start: float, end: Optional[float]) -> tuple[float, Optional[float]]:
        """el's [begin, end) in document time, inside its parent's [start, end)."""
        begin, stop, dur = el.get("begin"), el.get("end"), el.get("dur")
        b = start + timing.seconds(begin) if begin else start
        e = start + timing.seconds(stop) if stop else (b + timing.seconds(dur) if dur else end)
        return b, (min(e, end) if e is not None and end is not None else e)

    def walk(el: ET.Element, start: float, end: Optional[float]) -> Optional[float]:
        """Reads el's lines; returns its end, where the next child of a seq container begins (None: not known)."""
        tag = _local(el.tag)
        if tag in ("head", "metadata", "styling", "layout") or not _shown(el, hidden):
            return None
        try:
            b, e = interval(el, start, end)
        except ValueError as exc:
            warnings.append(f"line {len(lines) + 1}: skipped, {exc}")
            return None
        ref = _background_image(el) if tag == "div" else None
        if ref:
            if pictures is None:
                unread.append(ref)
            else:
                words = pictures(ref, embedded.get(ref[1:]) if ref.startswith("#") else None)
                lines.append((b, e if e is not None else b, _SPACES.sub(" ", words).strip()))
        seq = el.get("timeContainer") == "seq"  # each child begins at the end of the one before, not at el's begin
        if tag == "p":
            timed_spans = _timed_spans(el, seq, hidden)
            if el.get("begin") is None and timed_spans:
                cursor = b
                for span in timed_spans:
                    try:
                        sb, se = interval(span, cursor, e)
                    except ValueError as exc:
                        warnings.append(f"line {len(lines) + 1}: skipped, {exc}")
                        continue
                    lines.append((sb, se if se is not None else sb, _SPACES.sub(" ", _text(span, hidden)).strip()))
                    cursor = se if seq and se is not None else cursor
                return e
            lines.append((b, e if e is not None else b, _SPACES.sub(" ", _text(el, hidden)).strip()))
            return e
        cursor = b
        for child in el:
            done = walk(child, cursor, e)
            cursor = done if seq and done is not None else cursor
        return e

    embedded, unread, hidden = _embedded_images(root), [], _hidden_styles(root)
    for child in root:
        walk(child, 0.0, None)
    if unread:
        warnings.append(f"{len(unread)} line(s) given as pictures (IMSC1 image profile, e.g. {unread[0]!r}) left out: "
                        "no picture reader given")
    return lines, language, warnings
