"""Picture subtitles read as text: Blu-ray PGS, DVD VobSub and broadcast DVB tracks (embedded, or `.sup` / `.idx` +
`.sub` beside the film), each picture read by the OCR line recogniser of model/ocr.py.

FFmpeg decodes the pictures (palette indexes and their place on screen); PyAV does not pass on the palette, so it
is read here from the stream itself: a PGS palette segment gives each index its luma and opacity; a DVD subtitle's
control sequence picks each of its four pixel values' colour from the disc's 16 (the `.idx` or track palette) and
opacity; a DVB region names its colour table (CLUT). Each picture becomes grey text over black, as the recogniser reads it best, and is read as it is decoded
(a film's pictures are never all held).

Timing: a picture stays until the next display set (a PGS's empty one takes it off), or its own stop time (DVD)
or page time-out (DVB). A picture left on screen longer than MAX_HOLD_S ends there (a sign left up, a missing clear).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import urllib.parse
from typing import Callable, NamedTuple, Optional, Sequence

import av
import numpy as np

from model.ocr import composite, luma_of_ycrcb
from transforms.probe import (PICTURE_CODECS, demux, film_start_s, local_path, open_container, open_file,
                              storage_failure)

MAX_HOLD_S = 10.0
MIN_CONFIDENCE = 0.5  # a picture read with less (a logo, a sign's drawing, a damaged bitmap) is left out
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # an RGB colour's luma (BT.601 weights)
_OPEN = 0xFFFFFFFF  # end_display_time when the decoder does not know it (PGS)


class PictureTrack(NamedTuple):
    events: list  # (start_s, end_s, what) on the film's clock
    warnings: list[str]
    language: Optional[str]  # the track's tag
    forced: bool  # every picture flagged forced


class _PgsPalettes:
    """PGS palette definition segments (PDS) as they pass, and which palette the composition (PCS) shows."""

    def __init__(self):
        self.tables: dict[int, np.ndarray] = {}
        self.current = 0
        self.forced = False  # every object of the composition shown is flagged forced

    def feed(self, data: bytes) -> None:
        i = 0
        while i + 3 <= len(data):  # a packet is one segment (.sup) or a display set's segments (Matroska, M2TS)
            kind, size = data[i], int.from_bytes(data[i + 1:i + 3], "big")
            body = data[i + 3:i + 3 + size]
            if kind == 0x14 and len(body) >= 2:
                table = self.tables.setdefault(body[0], np.zeros((256, 2), np.float32))
                for k in range(2, len(body) - 4, 5):
                    idx, y, _cr, _cb, alpha = body[k:k + 5]
                    table[idx] = (luma_of_ycrcb(np.float32(y)), alpha)
            elif kind == 0x16 and len(body) >= 11:
                self.current = body[9]
                flags, k = [], 11
                for _ in range(body[10]):  # composition objects: id, window, flags (0x80 cropped, 0x40 forced), x, y
                    if k + 8 > len(body):
                        break
                    flags.append(body[k + 3])
                    k += 16 if body[k + 3] & 0x80 else 8
                self.forced = bool(flags) and all(f & 0x40 for f in flags)
            i += 3 + size

    def grey(self, rect, indexes: np.ndarray) -> np.ndarray:
        table = self.tables.get(self.current)
        if table is None:
            raise ValueError("a PGS picture before any palette")
        return composite(indexes, table)


class _DvdPalettes:
    """A DVD subtitle packet's control sequence: SET_COLOR picks one of the disc's 16 colours (the .idx file's or the
    track's `palette:` line) for each of the 4 pixel values, SET_CONTR their opacity. Decoded pictures carry the
    pixel values, so those give each its luma over black. Without a palette the drawn values are ranked by how
    little they touch the transparent ground: the text is wrapped by its outline and anti-aliasing."""

    def __init__(self, extradata: Optional[bytes] = None):
        self.alpha = np.array([0, 255, 255, 255], np.float32)
        self.colours = [0, 1, 2, 3]
        self.palette = _idx_palette(extradata)
        self.forced = False  # shown by the forced start command (0x00): a forced subtitle

    def feed(self, data: bytes) -> None:
        if len(data) < 4:
            return
        self.forced = False
        i = int.from_bytes(data[2:4], "big") + 4  # the first control sequence, after its date and next offset
        while i < len(data):
            cmd = data[i]
            if cmd in (0x03, 0x04) and i + 2 < len(data):  # nibbles for pixel values 3, 2, 1, 0
                v = int.from_bytes(data[i + 1:i + 3], "big")
                nibbles = [v >> s & 0xF for s in (0, 4, 8, 12)]
                if cmd == 0x03:
                    self.colours = nibbles
                else:
                    self.alpha = np.array([n * 17 for n in nibbles], np.float32)
                i += 3
            elif cmd in (0x00, 0x01, 0x02):
                self.forced |= cmd == 0x00
                i += 1
            elif cmd in (0x05, 0x06):
                i += 7 if cmd == 0x05 else 5
            else:  # 0xff ends the sequence
                break

    def grey(self, rect, indexes: np.ndarray) -> np.ndarray:
        levels = np.zeros((256, 2), np.float32)
        if self.palette is not None:
            for value in range(4):
                levels[value] = (self.palette[self.colours[value]], self.alpha[value])
            return composite(indexes, levels)
        return by_touch(indexes, [v for v in range(1, 4) if self.alpha[v] > 0])


def by_touch(indexes: np.ndarray, drawn: Sequence[int]) -> np.ndarray:
    """A picture whose colours are unknown as grey: of the drawn values, the one that touches the transparent
    ground most (the outline) is dark and the one that touches it least (the text) bright."""
    drawn = [v for v in drawn if (indexes == v).any()]
    if not drawn:
        return np.zeros(indexes.shape, np.uint8)
    ground = ~np.isin(indexes, drawn)
    near = np.zeros_like(ground)
    near[1:] |= ground[:-1]
    near[:-1] |= ground[1:]
    near[:, 1:] |= ground[:, :-1]
    near[:, :-1] |= ground[:, 1:]
    touch = {v: float(near[indexes == v].mean()) for v in drawn}
    most = max(touch.values()) or 1.0
    levels = np.zeros((256, 2), np.float32)
    for v in drawn:
        levels[v] = (255.0 * (1.0 - touch[v] / most) if len(drawn) > 1 else 255.0, 255.0)
    return composite(indexes, levels)


class _DvbPalettes:
    """A DVB display set's segments: the page composition places its regions, a region composition names its
    colour table (CLUT) and depth, a CLUT definition gives each entry's luma and transparency (Y 0: transparent).
    A decoded picture is one region's pixel codes. A region whose CLUT the stream leaves to the decoder's default
    is read by touch (by_touch), as a DVD subtitle without its palette."""

    def __init__(self):
        self.places: dict[int, tuple[int, int]] = {}  # region id -> (x, y) on the page
        self.regions: dict[int, tuple[int, int, int, int]] = {}  # region id -> (width, height, depth code, CLUT id)
        self.cluts: dict[tuple[int, int], np.ndarray] = {}  # (CLUT id, depth code) -> [256, 2] (luma, alpha)
        self.forced = False

    def feed(self, data: bytes) -> None:
        i = data.find(b"\x0f")  # a transport stream's PES data starts with data_identifier 0x20, stream id 0x00
        while 0 <= i and i + 6 <= len(data) and data[i] == 0x0F:
            kind, size = data[i + 1], int.from_bytes(data[i + 4:i + 6], "big")
            body = data[i + 6:i + 6 + size]
            if kind == 0x10 and len(body) >= 2:
                self.places = {body[k]: (int.from_bytes(body[k + 2:k + 4], "big"), int.from_bytes(body[k + 4:k + 6], "big"))
                               for k in range(2, len(body) - 5, 6)}
            elif kind == 0x11 and len(body) >= 10:
                self.regions[body[0]] = (int.from_bytes(body[2:4], "big"), int.from_bytes(body[4:6], "big"),
                                         body[6] >> 2 & 7, body[7])
            elif kind == 0x12 and len(body) >= 2:
                k = 2
                while k + 4 <= len(body):
                    entry, flags = body[k], body[k + 1]
                    if flags & 0x01:  # full range: Y, Cr, Cb, T
                        y, t = body[k + 2], body[k + 5] if k + 5 < len(body) else 0
                        k += 6
                    else:  # Y 6 bits, Cr 4, Cb 4, T 2
                        y, t = body[k + 2] & 0xFC, (body[k + 3] & 0x03) * 85
                        k += 4
                    for depth, bit in ((1, 0x80), (2, 0x40), (3, 0x20)):
                        if flags & bit:
                            table = self.cluts.setdefault((body[0], depth), np.zeros((256, 2), np.float32))
                            table[entry] = (luma_of_ycrcb(np.float32(y)), 0 if y == 0 else 255 - t)
            i += 6 + size

    def grey(self, rect, indexes: np.ndarray) -> np.ndarray:
        placed = [r for r, xy in self.places.items() if xy == (rect.x, rect.y) and r in self.regions]
        sized = [r for r, (w, h, _, _) in self.regions.items() if (w, h) == (rect.width, rect.height)]
        region = (placed or sized or [None])[0]
        if region is not None:
            _, _, depth, clut = self.regions[region]
            table = self.cluts.get((clut, depth))
            if table is not None:
                return composite(indexes, table)
        return by_touch(indexes, [v for v in range(1, 256)])


def _idx_palette(extradata: Optional[bytes]) -> Optional[np.ndarray]:
    """The 16 colours' luma (0-255) from a VobSub header's `palette: rrggbb, ...` line; None without one."""
    for line in (extradata or b"").decode("latin-1").splitlines():
        if line.lower().startswith("palette:"):
            try:
                rgb = [int(c.strip(), 16) for c in line.split(":", 1)[1].split(",")][:16]
            except ValueError:
                return None
            if len(rgb) < 16:
                return None
            return np.array([(c >> 16, c >> 8 & 255, c & 255) for c in rgb], np.float32) @ _LUMA
    return None


def _palettes(stream):
    ctx = stream.codec_context
    return (_PgsPalettes() if ctx.name == "pgssub" else _DvbPalettes() if ctx.name == "dvbsub"
            else _DvdPalettes(ctx.extradata))


def _indexes(rect) -> np.ndarray:
    plane = rect.planes[0]
    buf = np.frombuffer(memoryview(plane), np.uint8)
    stride = plane.buffer_size // max(1, rect.height)
    return buf[: stride * rect.height].reshape(rect.height, stride)[:, : rect.width]


def picture_events(path: str, stream_indexes: Optional[Sequence[int]] = None, sidecar: bool = False,
                   keep: Callable[[int, list[np.ndarray]], object] = lambda index, pictures: pictures
                   ) -> dict[int, "PictureTrack"]:
    """{stream index: PictureTrack(events [(start_s, end_s, what)], warnings, language, forced)} for the picture subtitle streams of a
    film or a .sup / .idx file (stream_indexes None: every one FFmpeg decodes as PGS or DVD subtitles), on the
    film's clock (a sidecar's times are the film's already: sidecar True). `what` is each picture's grey pictures
    (top to bottom) as keep(stream index, pictures) turns them (default: as they are); an event it gives None for
    is left out. A track is forced when every picture it shows is flagged so (a PGS composition's objects'
    forced flag, a DVD subtitle's forced start): a disc's forced-only track often has no forced disposition."""
    found: dict[int, tuple[list, list[str]]] = {}
    with contextlib.ExitStack() as stack:
        container = stack.enter_context(_open_sidecar(path, stack) if sidecar else open_container(path))
        start0 = 0.0 if sidecar else film_start_s(container)
        streams = [s for s in container.streams.subtitles
                   if (stream_indexes is None or s.index in stream_indexes)
                   and s.codec_context is not None and s.codec_context.name in PICTURE_CODECS]
        palettes = {s.index: _palettes(s) for s in streams}
        container_languages = {s.index: s.metadata.get("language") for s in streams}
        forced_shown: dict[int, int] = {}  # pictures flagged forced, per stream
        for s in streams:
            found[s.index] = ([], [])
        packets = demux(container, *streams)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except Exception as exc:  # noqa: BLE001 - a damaged or cut file: the pictures before it are kept
                if storage_failure(exc):
                    raise
                for events, warnings in found.values():
                    warnings.append((f"the pictures stop at {events[-1][0]:.2f}s: the file cannot be read further"
                                     if events else "cannot be read") + f" ({type(exc).__name__}: {exc})")
                break
            if packet.size == 0 or packet.stream.index not in found:
                continue
            events, warnings = found[packet.stream.index]
            pal = palettes[packet.stream.index]
            try:
                pal.feed(bytes(packet))
                sub = packet.stream.codec_context.decode2(packet)
            except Exception as exc:  # noqa: BLE001 - one damaged picture is one lost line
                warnings.append(f"stream {packet.stream.index} picture at {_seconds(packet):.2f}s: skipped, "
                                f"{type(exc).__name__}: {exc}")
                continue
            if sub is None:
                continue
            at = sub.pts / 1e6 if sub.pts is not None else _seconds(packet) + start0
            start = at + sub.start_display_time / 1000.0 - start0
            if events and (events[-1][1] is None or events[-1][1] > start):  # the next display set replaces it
                events[-1] = (events[-1][0], max(events[-1][0], start), events[-1][2])
            rects = [r for r in sub.rects if getattr(r, "type", b"") == b"bitmap" and r.width and r.height]
            if not rects:
                continue
            try:
                pictures = [pal.grey(r, _indexes(r)) for r in sorted(rects, key=lambda r: (r.y, r.x))]
            except Exception as exc:  # noqa: BLE001
                warnings.append(f"stream {packet.stream.index} picture at {start:.2f}s: skipped, "
                                f"{type(exc).__name__}: {exc}")
                continue
            end = None if sub.end_display_time in (_OPEN, 0) else at + sub.end_display_time / 1000.0 - start0
            events.append((start, end, keep(packet.stream.index, pictures)))
            forced_shown[packet.stream.index] = forced_shown.get(packet.stream.index, 0) + pal.forced
    forced = {i: bool(events) and forced_shown.get(i, 0) == len(events) for i, (events, _) in found.items()}
    for index, (events, warnings) in found.items():
        held = 0
        for k, (start, end, what) in enumerate(events):
            if end is None or end - start > MAX_HOLD_S:
                held += 1
                end = start + MAX_HOLD_S
            events[k] = (start, end, what)
        events[:] = [e for e in events if e[2] is not None]
        if held:
            warnings.append(f"stream {index}: {held} picture(s) left on screen over {MAX_HOLD_S:.0f} s, "
                            f"held for {MAX_HOLD_S:.0f} s")
    return {i: PictureTrack(events, warnings, _language(container_languages.get(i)), forced[i])
            for i, (events, warnings) in found.items()}


def picture_tracks(path: str, sidecar: bool = False, stream_indexes: Optional[Sequence[int]] = None
                   ) -> list[tuple[int, Optional[str], bool]]:
    """(stream index, language tag, forced disposition) of each picture subtitle track read (PICTURE_CODECS), from
    the container's header alone: nothing is decoded."""
    with contextlib.ExitStack() as stack:
        container = stack.enter_context(_open_sidecar(path, stack) if sidecar else open_container(path))
        return [(s.index, _language(s.metadata.get("language")), bool(s.disposition & av.stream.Disposition.forced))
                for s in container.streams.subtitles
                if (stream_indexes is None or s.index in stream_indexes)
                and s.codec_context is not None and s.codec_context.name in PICTURE_CODECS]


def _open_sidecar(path: str, stack: contextlib.ExitStack):
    """A .sup opens as any file; a VobSub .idx only beside its .sub (FFmpeg opens that by name), so one on a bucket
    is copied with its .sub into a temporary folder first."""
    if local_path(path) is not None or not path.lower().endswith(".idx"):
        return open_file(path)
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="vobsub-"))
    for src in (path, path[:-4] + (".SUB" if path.endswith(".IDX") else ".sub")):
        with FileSystems.open(src, compression_type=CompressionTypes.UNCOMPRESSED) as f, \
                open(os.path.join(folder, src.rsplit("/", 1)[-1]), "wb") as out:
            shutil.copyfileobj(f, out)
    return open_file(os.path.join(folder, path.rsplit("/", 1)[-1]))


def _language(tag: Optional[str]) -> Optional[str]:
    return tag if tag not in (None, "", "und") else None


def _seconds(packet) -> float:
    return float(packet.pts * packet.time_base) if packet.pts is not None else 0.0


class _Reader:
    """Reads each picture event's pictures as it is decoded: its text, or None. A picture shown again (a disc repeats
    it at every display set it stays) is read once; pictures in which nothing is read, or read with less than
    MIN_CONFIDENCE, are left out and counted."""

    def __init__(self, reader):
        self.reader, self.seen, self.unsure = reader, {}, {}

    def __call__(self, index: int, pictures: list[np.ndarray]) -> Optional[str]:
        texts = []
        for grey in pictures:
            key = hashlib.blake2b(grey.tobytes(), digest_size=16, person=bytes(str(grey.shape)[:16], "ascii")).digest()
            if key not in self.seen:
                self.seen[key] = self.reader.read(grey)
            text, confidence = self.seen[key]
            if not text or confidence < MIN_CONFIDENCE:
                self.unsure[index] = self.unsure.get(index, 0) + 1
                continue
            texts.append(text)
        return " ".join(texts) or None


def read_picture_subtitles(path: str, stream_indexes: Optional[Sequence[int]] = None, sidecar: bool = False,
                           reader_factory: Optional[Callable] = None
                           ) -> dict[int, PictureTrack]:
    """{stream index: PictureTrack with (start_s, end_s, text) events}: each picture read by the OCR reader
    (reader_factory(), default model.ocr.LineReader.load) as picture_events decodes it."""
    from model.ocr import LineReader
    reading = _Reader((reader_factory or LineReader.load)())
    found = picture_events(path, stream_indexes, sidecar, keep=reading)
    for index, n in reading.unsure.items():
        found[index][1].append(f"stream {index}: {n} subtitle picture(s) gave no text OCR could trust (none read, or "
                               f"read with confidence under {MIN_CONFIDENCE}): left out")
    return found


def png_text(data: bytes, reader_factory: Optional[Callable] = None) -> str:
    """The text of a subtitle picture given as an image file's bytes (a DCP's or an IMSC1 track's PNG: text over
    transparency), read as picture tracks are: its luma over black; '' where nothing is read with MIN_CONFIDENCE."""
    import io

    from PIL import Image

    from model.ocr import LineReader
    image = Image.open(io.BytesIO(data)).convert("RGBA")
    rgba = np.asarray(image, np.float32)
    grey = (rgba[..., :3] @ _LUMA) * rgba[..., 3] / 255.0
    text, confidence = (reader_factory or LineReader.load)().read(grey.clip(0, 255).astype(np.uint8))
    return text if text and confidence >= MIN_CONFIDENCE else ""


class SubtitlePictures:
    """The pictures a subtitle document names by reference (an Interop DCP's PNG files beside it, the PNGs a SMPTE DCP
    or IMSC1 track file carries: transforms.mxf_resources), each read by OCR (png_text). fetch(ref) gives a picture's
    bytes. A picture that cannot be fetched or gives no text is one line lost, counted for warnings(). After
    GIVE_UP_AFTER failures without one picture read (a folder of pictures not delivered), the rest are not asked
    for: on cloud storage each miss is a request."""

    GIVE_UP_AFTER = 20

    def __init__(self, fetch: Callable[[str], bytes], reader_factory: Optional[Callable] = None):
        self.fetch, self.reader_factory = fetch, reader_factory
        self.unread, self.failed, self.read, self.not_tried = 0, [], 0, 0

    @classmethod
    def beside(cls, document_path: str) -> "SubtitlePictures":
        """The pictures a subtitle file names as files beside it (an Interop DCP's DCSubtitle, an IMSC1 image-profile
        TTML sidecar as delivered with its PNGs), by a name relative to its folder; any Beam filesystem."""
        from apache_beam.io.filesystem import CompressionTypes
        from apache_beam.io.filesystems import FileSystems

        from transforms.imf import _folder
        folder = _folder(document_path)

        def read(relative: str) -> bytes:
            with FileSystems.open(f"{folder}/{relative}", compression_type=CompressionTypes.UNCOMPRESSED) as f:
                return f.read()

        def fetch(name: str) -> bytes:
            relative = name.replace(chr(92), "/").lstrip("/")
            decoded = urllib.parse.unquote(relative)
            try:
                return read(relative)
            except Exception:  # noqa: BLE001 - not there as written: a name written as a URI ("line%20001.png")?
                if decoded == relative:
                    raise
            return read(decoded)
        return cls(fetch)

    def __call__(self, ref: str, data: Optional[bytes] = None) -> str:
        """The text of the picture `ref` names; data: its bytes, where the document itself carries them."""
        if data is None and not self.read and len(self.failed) >= self.GIVE_UP_AFTER:
            self.not_tried += 1
            return ""
        try:
            text = png_text(self.fetch(ref) if data is None else data, self.reader_factory)
        except Exception as exc:  # noqa: BLE001 - one missing or broken picture is one lost line
            self.failed.append(f"{ref}: {type(exc).__name__}: {exc}")
            return ""
        self.read += 1
        self.unread += not text
        return text

    def warnings(self) -> list[str]:
        more = len(self.failed) - 5
        return self.failed[:5] + ([f"... and {more} more picture(s) that could not be read"] if more > 0 else []) + (
            [f"{self.not_tried} more picture(s) not asked for: the first {len(self.failed)} all failed"]
            if self.not_tried else []) + (
            [f"{self.unread} subtitle picture(s) gave no text OCR could trust: left out"] if self.unread else [])
