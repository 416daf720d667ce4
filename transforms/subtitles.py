"""Find and parse a film's subtitles: sidecar .srt/.vtt files beside it, or text subtitle streams inside it.

Parsing is pysubs2's; this module only makes the input palatable (encoding, BOM, CRLF, WebVTT NOTE/STYLE
blocks) and the output clean (HTML and ASS tags stripped, lines joined, bad cues skipped with a warning).
"""
from __future__ import annotations

import logging
import os
import re
from typing import Iterable, Optional

import apache_beam as beam
import pysubs2
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.elements import Cue, FilmError, FilmInfo, FilmJob, FilmRef
from transforms.language import label_cues
from transforms.probe import open_container

log = logging.getLogger(__name__)

SIDECAR_EXTS = (".srt", ".vtt")
MAX_SIDECAR_BYTES = 20 << 20  # a subtitle file bigger than this is not a subtitle file
_HTML_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][^>]*>|<\s*/\s*[a-zA-Z]*\s*>")
_ASS_TAG = re.compile(r"\{\\[^}]*\}")
_VTT_TIMESTAMP_TAG = re.compile(r"<\d{1,2}:\d{2}(:\d{2})?\.\d{3}>")
_SPACES = re.compile(r"\s+")
_VTT_META_BLOCKS = ("NOTE", "STYLE", "REGION")


def decode_subtitle_bytes(data: bytes) -> tuple[str, Optional[str]]:
    """Bytes -> (text with \\n line ends, warning or None). Handles BOMs, UTF-16 without BOM, cp1252."""
    for bom, enc in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
                     (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            return _newlines(data[len(bom):].decode(enc, errors="replace")), None
    warning = None
    head = data[:4000]
    if head.count(b"\x00") > len(head) // 4:  # UTF-16 without a BOM: every other byte of ASCII is zero
        enc = "utf-16-le" if head[1:2] == b"\x00" else "utf-16-be"
        return _newlines(data.decode(enc, errors="replace")), f"no BOM; read as {enc}"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
        warning = "not valid UTF-8; read as cp1252"
    return _newlines(text), warning


def _newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _drop_vtt_meta(text: str) -> str:
    """pysubs2 keeps WebVTT NOTE/STYLE/REGION blocks as cue text; drop them before parsing."""
    blocks = re.split(r"\n[ \t]*\n", text)
    keep = [b for b in blocks if not b.lstrip().startswith(_VTT_META_BLOCKS)]
    return "\n\n".join(keep)


def clean_text(text: str) -> str:
    """Strip HTML/ASS/VTT tags, turn ASS line breaks into spaces, join lines."""
    text = text.replace("\\N", " ").replace("\\n", " ").replace("\\h", " ")
    text = _ASS_TAG.sub("", text)
    text = _VTT_TIMESTAMP_TAG.sub("", text)
    text = _HTML_TAG.sub("", text)
    return _SPACES.sub(" ", text).strip()


def parse_subtitles(text: str, fmt: Optional[str] = None, language: Optional[str] = None
                    ) -> tuple[list[Cue], list[str]]:
    """Subtitle text -> (cues sorted by start, warnings). Bad cues are skipped, each with a warning."""
    warnings: list[str] = []
    text = text.lstrip("\ufeff")
    if fmt == "vtt" or text.startswith("WEBVTT"):
        text, fmt = _drop_vtt_meta(text), "vtt"
    try:
        subs = pysubs2.SSAFile.from_string(text, format_=fmt)
    except Exception as exc:  # noqa: BLE001 - pysubs2 raises several types for unreadable files
        return [], [f"unparseable subtitles: {type(exc).__name__}: {exc}"]
    cues = []
    for i, ev in enumerate(subs):
        if ev.is_comment:
            continue
        line = clean_text(ev.plaintext if "{" in ev.text else ev.text)
        start, end = ev.start / 1000.0, ev.end / 1000.0
        if not line:
            continue
        if "-->" in line:
            warnings.append(f"cue {i + 1}: skipped, text holds a timestamp line ({line[:60]!r})")
            continue
        if start < 0 or end <= start:
            warnings.append(f"cue {i + 1}: skipped, bad times {start:.3f} -> {end:.3f} ({line[:40]!r})")
            continue
        cues.append(Cue(start_s=start, end_s=end, text=line, source="subtitle", language=language))
    cues.sort(key=lambda c: (c.start_s, c.end_s))
    if not cues and len(subs) == 0 and text.strip() and text.strip() != "WEBVTT":
        warnings.append("no cues could be parsed")
    return cues, warnings


def sidecar_language(film_path: str, sub_path: str) -> Optional[str]:
    """name.en.srt -> 'en'; name.srt -> None."""
    stem = os.path.splitext(film_path.rsplit("/", 1)[-1])[0]
    middle = os.path.splitext(sub_path.rsplit("/", 1)[-1])[0][len(stem):]
    return middle.lstrip(".") or None


def find_sidecars(film_path: str, preferred_language: Optional[str] = None) -> list[str]:
    """Sidecar subtitle paths for a film, best first: preferred language, then no language tag, then others."""
    base = os.path.splitext(film_path)[0]
    found = []
    for result in FileSystems.match([base + ext for ext in SIDECAR_EXTS] + [base + ".*" + ext for ext in SIDECAR_EXTS]):
        found.extend(m.path for m in result.metadata_list)
    found = sorted(set(found))

    def rank(p):
        lang = sidecar_language(film_path, p)
        return (0 if preferred_language and lang == preferred_language else 1 if lang is None else
                2 if lang in ("en", "eng") else 3, p.endswith(".vtt"), p)
    return sorted(found, key=rank)


def read_sidecar(path: str, film_path: str) -> tuple[list[Cue], list[str]]:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        data = f.read(MAX_SIDECAR_BYTES + 1)
    if len(data) > MAX_SIDECAR_BYTES:
        return [], [f"{path}: larger than {MAX_SIDECAR_BYTES} bytes, ignored"]
    text, enc_warning = decode_subtitle_bytes(data)
    fmt = "vtt" if path.lower().endswith(".vtt") else "srt"
    cues, warnings = parse_subtitles(text, fmt, sidecar_language(film_path, path))
    name = path.rsplit("/", 1)[-1]
    return cues, [f"{name}: {w}" for w in ([enc_warning] if enc_warning else []) + warnings]


def read_embedded(film_path: str, stream_index: int) -> tuple[list[Cue], list[str]]:
    """Decode one text subtitle stream. Demuxing reads the container once, without decoding any picture."""
    cues, warnings = [], []
    with open_container(film_path) as container:
        stream = container.streams[stream_index]
        language = stream.language if hasattr(stream, "language") else stream.metadata.get("language")
        start0 = container.start_time / 1e6 if container.start_time else 0.0
        for packet in container.demux(stream):
            if packet.size == 0 or packet.pts is None:
                continue
            start = float(packet.pts * packet.time_base) - start0
            end = start + float((packet.duration or 0) * packet.time_base)
            try:
                texts = []
                for sub in packet.decode():
                    raw = getattr(sub, "dialogue", None) or getattr(sub, "text", None) or b""
                    texts.append(raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw))
            except Exception as exc:  # noqa: BLE001 - one bad packet is one skipped cue
                warnings.append(f"stream {stream_index} cue at {start:.2f}s: skipped, {type(exc).__name__}: {exc}")
                continue
            line = clean_text(" ".join(texts))
            if not line:
                continue
            if end <= start:
                end = start + 2.0  # some muxers leave duration unset; hold the line for a readable time
                warnings.append(f"stream {stream_index} cue at {start:.2f}s: no duration, assumed 2 s")
            lang = language if language not in (None, "und") else None
            cues.append(Cue(start_s=start, end_s=end, text=line, source="subtitle", language=lang))
    cues.sort(key=lambda c: (c.start_s, c.end_s))
    return cues, warnings


def load_cues(ref: FilmRef, info: FilmInfo, preferred_language: Optional[str] = None
              ) -> tuple[list[Cue], list[str], str]:
    """Best available cues for a film -> (cues, warnings, where they came from). Each cue's language is the one
    identified from all of the film's lines, else its tag (transforms.language.label_cues): it decides whether
    the text path reads them."""
    warnings: list[str] = []
    for path in find_sidecars(ref.path, preferred_language):
        try:
            cues, w = read_sidecar(path, ref.path)
        except Exception as exc:  # noqa: BLE001
            cues, w = [], [f"{path}: {type(exc).__name__}: {exc}"]
        warnings += w
        if cues:
            return _labelled(cues, warnings), warnings, path
    for index in info.subtitle_streams:
        try:
            cues, w = read_embedded(ref.path, index)
        except Exception as exc:  # noqa: BLE001
            cues, w = [], [f"stream {index}: {type(exc).__name__}: {exc}"]
        warnings += w
        if cues:
            return _labelled(cues, warnings), warnings, f"stream:{index}"
    return [], warnings, ""


def _labelled(cues: list[Cue], warnings: list[str]) -> list[Cue]:
    try:
        return list(label_cues(cues))
    except Exception as exc:  # noqa: BLE001 - lines of unknown language are still read
        warnings.append(f"language not identified: {type(exc).__name__}: {exc}")
        return cues


class LoadSubtitles(beam.DoFn):
    """(FilmRef, FilmInfo) -> FilmJob. Subtitle problems are non-fatal FilmErrors carried in the job
    (`FilmJob.warnings`, committed with the film's tables): the film goes on without them."""

    def __init__(self, config_hash: str, transcribe: str = "auto", preferred_language: Optional[str] = None,
                 max_warnings: int = 20):
        self.config_hash = config_hash
        self.transcribe = transcribe
        self.preferred_language = preferred_language
        self.max_warnings = max_warnings

    def process(self, element) -> Iterable:
        ref, info = element
        try:
            cues, warnings, _ = load_cues(ref, info, self.preferred_language)
        except Exception as exc:  # noqa: BLE001 - no subtitles is survivable
            cues, warnings = [], [f"{type(exc).__name__}: {exc}"]
        messages = warnings[: self.max_warnings]
        if len(warnings) > self.max_warnings:
            messages.append(f"{len(warnings) - self.max_warnings} more subtitle warnings")
        for w in messages:
            log.warning("%s: subtitles: %s", ref.path, w)
        needs_asr = info.has_audio and (self.transcribe == "always" or (self.transcribe == "auto" and not cues))
        yield FilmJob(ref=ref, info=info, cues=tuple(cues), needs_asr=needs_asr, config_hash=self.config_hash,
                      warnings=tuple(FilmError(film_path=ref.path, film_id=ref.film_id, stage="subtitles",
                                               error_type="SubtitleWarning", message=w, fatal=False)
                                     for w in messages))
