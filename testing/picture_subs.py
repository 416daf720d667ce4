"""Blu-ray PGS subtitles (a `.sup` stream) written from text, for tests and benchmarks of the picture-subtitle reader
(transforms.image_subtitles). FFmpeg decodes PGS but has no encoder for it, so the segments are written here: each
line is drawn with Pillow as a disc's subtitles are (light text in a dark outline on a transparent picture), kept as
an 8-bit palette picture and run-length coded.

A display set is PCS (composition), WDS (window), PDS (palette), ODS (the picture), END; the line is taken off
the screen by a display set with no object. Times are 90 kHz ticks.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PCS, WDS, PDS, ODS, END = 0x16, 0x17, 0x14, 0x15, 0x80


def _segment(kind: int, pts: int, data: bytes) -> bytes:
    return b"PG" + struct.pack(">IIBH", pts & 0xFFFFFFFF, 0, kind, len(data)) + data


def _runs(row: np.ndarray, longest: int):
    """(colour, length) of each run of equal values along a row, none longer than `longest`."""
    x, w = 0, len(row)
    while x < w:
        n = 1
        while x + n < w and row[x + n] == row[x] and n < longest:
            n += 1
        yield int(row[x]), n, x + n == w
        x += n


def _rle(indexes: np.ndarray) -> bytes:
    """PGS run-length coding of an [H, W] array of palette indexes (colour 0 is transparent)."""
    out = bytearray()
    for row in indexes:
        for c, n, _ in _runs(row, 16383):
            if c != 0 and n < 3:
                out += bytes([c]) * n
            elif c == 0:
                out += b"\x00" + (bytes([n]) if n < 64 else bytes([0x40 | (n >> 8), n & 0xFF]))
            else:
                out += b"\x00" + (bytes([0x80 | n, c]) if n < 64 else bytes([0xC0 | (n >> 8), n & 0xFF, c]))
        out += b"\x00\x00"
    return bytes(out)


def _ycrcb(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    r, g, b = rgb  # BT.709, limited range (as discs carry them)
    y = 16 + (0.2126 * r + 0.7152 * g + 0.0722 * b) * 219 / 255
    cb = 128 + (-0.1146 * r - 0.3854 * g + 0.5 * b) * 224 / 255
    cr = 128 + (0.5 * r - 0.4542 * g - 0.0458 * b) * 224 / 255
    return int(round(y)), int(round(cr)), int(round(cb))


def font(name: str = "DejaVuSans.ttf", size: int = 42) -> ImageFont.FreeTypeFont:
    """One of the DejaVu faces matplotlib ships (DejaVuSans, -Bold, -Oblique, DejaVuSerif, ...: Latin with accents)."""
    import matplotlib
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), size)


def render_lines(lines: Sequence[str], font: Optional[ImageFont.ImageFont] = None, size: int = 42,
                 fill: tuple[int, int, int] = (235, 235, 235), outline: int = 3) -> np.ndarray:
    """The lines drawn one under the other as a subtitle picture: [H, W] palette indexes, 0 transparent, 1-3 the
    outline's shades, 4-15 the text's antialiasing shades."""
    font = font or globals()["font"](size=size)
    pad = outline + 4
    widths = [int(font.getlength(t)) for t in lines]
    asc, desc = font.getmetrics()
    step = asc + desc + 6
    img = Image.new("LA", (max(widths) + 2 * pad, step * len(lines) + 2 * pad), (0, 0))
    draw = ImageDraw.Draw(img)
    for i, (text, w) in enumerate(zip(lines, widths)):
        x = pad + (max(widths) - w) // 2
        draw.text((x, pad + i * step), text, font=font, fill=(255, 255), stroke_width=outline, stroke_fill=(0, 255))
    # text in a dark outline: the text layer drawn again without the stroke says which pixels are text
    text_layer = Image.new("L", img.size, 0)
    tdraw = ImageDraw.Draw(text_layer)
    for i, (text, w) in enumerate(zip(lines, widths)):
        tdraw.text((pad + (max(widths) - w) // 2, pad + i * step), text, font=font, fill=255)
    alpha = np.asarray(img)[..., 1].astype(np.int32)
    ink = np.asarray(text_layer).astype(np.int32)
    idx = np.zeros(alpha.shape, np.uint8)
    idx[alpha > 32] = 1 + np.minimum(2, alpha[alpha > 32] // 96)  # outline shades 1..3 (by coverage)
    idx[ink > 20] = 4 + np.minimum(11, ink[ink > 20] * 12 // 256)  # text shades 4..15
    return idx


def palette(fill: tuple[int, int, int] = (235, 235, 235)) -> list[tuple[int, int, int, int, int]]:
    """(index, Y, Cr, Cb, alpha) entries for render_lines' indexes."""
    entries = [(i, *_ycrcb((0, 0, 0)), a) for i, a in ((1, 90), (2, 170), (3, 255))]
    for k in range(12):
        share = (k + 1) / 12  # antialiasing: the text's colour blended into the outline
        rgb = tuple(int(round(c * share)) for c in fill)
        entries.append((4 + k, *_ycrcb(rgb), 255))
    return entries


def display_set(pts: int, number: int, picture: Optional[np.ndarray], frame: tuple[int, int] = (1280, 720),
                bottom: int = 60, fill: tuple[int, int, int] = (235, 235, 235), forced: bool = False) -> bytes:
    """One display set at pts (90 kHz): the picture centred near the bottom of the frame, or (None) an empty screen.
    A picture larger than one segment holds is carried by several object segments (first, middle, last). forced:
    the composition object is flagged forced (a disc's forced subtitle)."""
    fw, fh = frame
    if picture is None:
        pcs = struct.pack(">HHBHBBBB", fw, fh, 0x10, number, 0x00, 0, 0, 0)
        wds = struct.pack(">BBHHHH", 1, 0, 0, 0, fw, fh // 4)
        return _segment(PCS, pts, pcs) + _segment(WDS, pts, wds) + _segment(END, pts, b"")
    h, w = picture.shape
    x, y = (fw - w) // 2, fh - bottom - h
    pcs = struct.pack(">HHBHBBBB", fw, fh, 0x10, number, 0x80, 0, 0, 1) + struct.pack(">HBBHH", 0, 0, 0x40 if forced else 0, x, y)
    wds = struct.pack(">BBHHHH", 1, 0, x, y, w, h)
    pds = struct.pack(">BB", 0, 0) + b"".join(struct.pack(">BBBBB", *e) for e in palette(fill))
    body = struct.pack(">HH", w, h) + _rle(picture)
    first_room, room = 0xFFFF - 7, 0xFFFF - 4
    pieces = [body[:first_room]] + [body[i:i + room] for i in range(first_room, len(body), room)]
    ods = b""
    for k, piece in enumerate(pieces):
        flag = (0x80 if k == 0 else 0) | (0x40 if k == len(pieces) - 1 else 0)
        head = struct.pack(">HBB", 0, 0, flag) + (len(body).to_bytes(3, "big") if k == 0 else b"")
        ods += _segment(ODS, pts, head + piece)
    return (_segment(PCS, pts, pcs) + _segment(WDS, pts, wds) + _segment(PDS, pts, pds) + ods
            + _segment(END, pts, b""))


def palette_update(pts: int, number: int, opacity: float, place: tuple[int, int], frame: tuple[int, int] = (1280, 720),
                   fill: tuple[int, int, int] = (235, 235, 235)) -> bytes:
    """A display set that changes only the palette of the picture on screen at `place` (a fade: opacity 0-1)."""
    pcs = struct.pack(">HHBHBBBB", frame[0], frame[1], 0x10, number, 0x00, 0x80, 0, 1) + struct.pack(
        ">HBBHH", 0, 0, 0, *place)
    pds = struct.pack(">BB", 0, 1) + b"".join(struct.pack(">BBBBB", i, y, cr, cb, int(a * opacity))
                                              for i, y, cr, cb, a in palette(fill))
    return _segment(PCS, pts, pcs) + _segment(PDS, pts, pds) + _segment(END, pts, b"")


def sup_bytes(events: Iterable[tuple[float, float, Sequence[str]]], frame: tuple[int, int] = (1280, 720),
              forced: bool = False, **render) -> bytes:
    """A .sup stream showing each (start_s, end_s, lines) event: a picture at its start, an empty screen at its end;
    forced: every picture flagged forced."""
    out, number = bytearray(), 0
    for start, end, lines in events:
        out += display_set(int(round(start * 90000)), number, render_lines(lines, **render), frame,
                           fill=render.get("fill", (235, 235, 235)), forced=forced)
        out += display_set(int(round(end * 90000)), number + 1, None, frame)
        number += 2
    return bytes(out)


# DVD subtitles (VobSub): 2-bit pixels, run-length coded in nibbles, the top field's lines then the bottom's
def _dvd_rle_line(row: np.ndarray) -> bytes:
    nibbles: list[int] = []
    for c, n, last in _runs(row, 255):
        if last:  # the rest of the line: count 0
            code, bits = c, 16
        else:
            code = (n << 2) | c
            bits = 4 if n < 4 else 8 if n < 16 else 12 if n < 64 else 16
        nibbles += [(code >> s) & 0xF for s in range(bits - 4, -1, -4)]
    if len(nibbles) % 2:
        nibbles.append(0)
    return bytes((nibbles[i] << 4) | nibbles[i + 1] for i in range(0, len(nibbles), 2))


def dvd_values(picture: np.ndarray) -> np.ndarray:
    """render_lines' palette indexes as a DVD's four pixel values: 0 ground, 1 outline, 2 anti-aliasing, 3 text."""
    out = np.zeros(picture.shape, np.uint8)
    out[(picture >= 1) & (picture <= 3)] = 1
    out[(picture >= 4) & (picture < 10)] = 2
    out[picture >= 10] = 3
    return out


def spu_packet(values: np.ndarray, x: int, y: int, duration_s: float, forced: bool = False) -> bytes:
    """One DVD subtitle unit (SPU) showing the [H, W] pixel values at (x, y) for duration_s (forced: by the forced
    start command)."""
    h, w = values.shape
    top = b"".join(_dvd_rle_line(r) for r in values[0::2])
    bottom = b"".join(_dvd_rle_line(r) for r in values[1::2])
    pixels_at, bottom_at = 4, 4 + len(top)
    dcsq = 4 + len(top) + len(bottom)
    stop = int(round(duration_s * 90000 / 1024))
    area = ((x << 12) | (x + w - 1)).to_bytes(3, "big") + ((y << 12) | (y + h - 1)).to_bytes(3, "big")
    first = (struct.pack(">HH", 0, 0) + (b"\x00" if forced else b"\x01") + b"\x03" + struct.pack(">H", 0x3210)
             + b"\x04" + struct.pack(">H", 0xFF70) + b"\x05" + area + b"\x06" + struct.pack(">HH", pixels_at, bottom_at)
             + b"\xff")
    second_at = dcsq + len(first)
    first = first[:2] + struct.pack(">H", second_at) + first[4:]
    second = struct.pack(">HH", stop, second_at) + b"\x02\xff"
    body = top + bottom + first + second
    return struct.pack(">HH", 4 + len(body), dcsq) + body


def dvd_packets(events: Iterable[tuple[float, float, Sequence[str]]], frame: tuple[int, int] = (720, 576),
                forced: bool = False, **render) -> list[tuple[float, bytes]]:
    """(start_s, SPU) for each (start_s, end_s, lines) event, drawn by render_lines near the frame's bottom."""
    out = []
    for start, end, lines in events:
        values = dvd_values(render_lines(lines, **render))
        h, w = values.shape
        out.append((start, spu_packet(values, max(0, (frame[0] - w) // 2), max(0, frame[1] - 40 - h), end - start,
                                      forced)))
    return out


def with_picture_track(film, path, kind: str, events: Sequence[tuple[float, float, Sequence[str]]],
                       language: Optional[str] = None, forced: bool = False, forced_pictures: bool = False, **render):
    """A copy of `film` (its streams copied, not re-encoded) with one more subtitle track of pictures: kind "pgs"
    (Blu-ray), "dvd" (VobSub) or "dvb" (broadcast) showing each (start_s, end_s, lines) event. The container comes from the suffix
    (Matroska as rips carry them). forced: the track's forced disposition; forced_pictures: each picture flagged
    forced inside the stream (a disc's forced-only track, often without the disposition)."""
    import fractions

    import av
    path = Path(path)
    tmp_sup = path.with_suffix(".tmp.sup")
    if kind != "pgs" and "font" not in render:
        render.setdefault("size", 28)  # standard definition: a 720 px wide picture
    try:
        with av.open(str(film)) as src, av.open(str(path), "w") as out:
            copies = {s.index: out.add_stream_from_template(s) for s in src.streams
                      if s.type in ("video", "audio", "subtitle")}
            for s in src.streams.subtitles:  # tracks added before keep their language and flags
                copies[s.index].metadata.update(s.metadata)
                copies[s.index].disposition = s.disposition
            if kind == "pgs":
                tmp_sup.write_bytes(sup_bytes(events, forced=forced_pictures, **render))
                sup = av.open(str(tmp_sup))
                track = out.add_stream_from_template(sup.streams.subtitles[0])
                packets = []
                for p in sup.demux():
                    if p.size:
                        packets.append((float(p.pts * p.time_base), bytes(p), p.pts, p.time_base))
                sup.close()
            elif kind == "dvb":
                track = out.add_stream("dvbsub")
                packets = []
                for k, (start, end, lines) in enumerate(events):
                    for t, data in ((start, dvb_display_set(render_lines(lines, **render), 2 * k)),
                                    (end, dvb_display_set(None, 2 * k + 1))):
                        packets.append((t, data, int(round(t * 1000)), fractions.Fraction(1, 1000)))
            else:
                track = out.add_stream("dvdsub")
                # the disc's 16 colours (its .idx palette line): pixel values 0-3 pick the first four
                track.options = {"palette": ",".join(["000000", "101010", "808080", "ebebeb"] + ["000000"] * 12)}
                packets = [(t, data, int(round(t * 1000)), fractions.Fraction(1, 1000))
                           for t, data in dvd_packets(events, forced=forced_pictures, **render)]
            if language:
                track.metadata["language"] = language
            if forced:
                track.disposition = av.stream.Disposition.forced
            queue = sorted(packets, key=lambda p: p[0])
            for packet in src.demux(*[src.streams[i] for i in copies]):
                if packet.dts is None and packet.pts is None:
                    continue
                t = float((packet.dts if packet.dts is not None else packet.pts) * packet.time_base)
                while queue and queue[0][0] <= t:
                    _, data, pts, base = queue.pop(0)
                    sp = av.Packet(data)
                    sp.stream, sp.time_base, sp.pts, sp.dts = track, base, pts, pts
                    out.mux(sp)
                packet.stream = copies[packet.stream.index]
                out.mux(packet)
            for _, data, pts, base in queue:
                sp = av.Packet(data)
                sp.stream, sp.time_base, sp.pts, sp.dts = track, base, pts, pts
                out.mux(sp)
    finally:
        tmp_sup.unlink(missing_ok=True)
    return path


def write_vobsub(idx_path, events: Sequence[tuple[float, float, Sequence[str]]], language: str = "en",
                 frame: tuple[int, int] = (720, 576), **render):
    """A VobSub sidecar pair, FILM.idx + FILM.sub, as DVD rips carry it: the pictures in an MPEG program stream
    (.sub) and the index of their times and byte positions with the disc's palette (.idx)."""
    import fractions

    import av
    idx_path = Path(idx_path)
    sub_path = idx_path.with_suffix(".sub")
    colours = ["000000", "101010", "808080", "ebebeb"] + ["000000"] * 12
    with av.open(str(sub_path), "w", format="vob") as out:
        track = out.add_stream("dvdsub")
        track.options = {"palette": ",".join(colours)}
        for start, data in dvd_packets(events, frame, **render):
            p = av.Packet(data)
            p.stream, p.time_base = track, fractions.Fraction(1, 90000)
            p.pts = p.dts = int(round(start * 90000))
            out.mux(p)
    with av.open(str(sub_path), format="mpeg") as src:
        # an index points at the 2048-byte pack a picture starts in
        starts = [(float(p.pts * p.time_base), p.pos // 2048 * 2048) for p in src.demux()
                  if p.size and p.pts is not None]
    lines = ["# VobSub index file, v7 (do not modify this line!)", f"size: {frame[0]}x{frame[1]}",
             "palette: " + ", ".join(colours), f"id: {language}, index: 0"]
    for t, pos in starts:
        ms = int(round(t * 1000))
        lines.append(f"timestamp: {ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}:{ms % 1000:03d}, "
                     f"filepos: {pos:09x}")
    idx_path.write_text("\n".join(lines) + "\n")
    return idx_path


# DVB subtitles (broadcast): segments of a display set, each 0x0F, type, page id, length; 8-bit pixel code strings
def _dvb_segment(kind: int, body: bytes, page: int = 1) -> bytes:
    return struct.pack(">BBHH", 0x0F, kind, page, len(body)) + body


def _dvb_line(row: np.ndarray) -> bytes:
    out = bytearray([0x12])  # an 8-bit pixel code string
    for c, n, _ in _runs(row, 127):
        if c == 0:
            out += bytes([0, n])
        elif n >= 3:
            out += bytes([0, 0x80 | n, c])
        else:
            out += bytes([c]) * n
    return bytes(out + b"\x00\x00\xf0")  # the string's end, the line's end


def dvb_display_set(picture: Optional[np.ndarray], version: int, frame: tuple[int, int] = (720, 576),
                    timeout_s: int = 10, clut: bool = True) -> bytes:
    """One DVB display set showing render_lines' picture in one 8-bit region near the bottom of the frame (or, None,
    an empty page); clut: define the region's colour table (a stream may leave it to the decoder's default)."""
    v = (version & 0xF) << 4
    if picture is None:
        return (_dvb_segment(0x10, bytes([timeout_s, v | 0x04]))  # page composition: acquisition, no region
                + _dvb_segment(0x80, b""))
    h, w = picture.shape
    x, y = max(0, (frame[0] - w) // 2), max(0, frame[1] - 40 - h)
    page = bytes([timeout_s, v | 0x04]) + struct.pack(">BBHH", 0, 0, x, y)
    region = struct.pack(">BBHHBBBB", 0, v | 0x08, w, h, (3 << 5) | (3 << 2), 0, 0, 0) + struct.pack(">HHH", 0, 0, 0)
    entries = b"".join(struct.pack(">BBBBBB", i, 0x20 | 0x01, y_, cr, cb, 255 - a) for i, y_, cr, cb, a in palette())
    entries = struct.pack(">BBBBBB", 0, 0x20 | 0x01, 0, 128, 128, 255) + entries  # entry 0: transparent
    clut_segment = _dvb_segment(0x12, bytes([0, v]) + entries) if clut else b""
    top = b"".join(_dvb_line(r) for r in picture[0::2])
    bottom = b"".join(_dvb_line(r) for r in picture[1::2])
    obj = struct.pack(">HBHH", 0, v, len(top), len(bottom)) + top + bottom
    return (_dvb_segment(0x14, struct.pack(">BHH", v, frame[0] - 1, frame[1] - 1)) + _dvb_segment(0x10, page)
            + _dvb_segment(0x11, region) + clut_segment + _dvb_segment(0x13, obj) + _dvb_segment(0x80, b""))


def write_dvb(path, events: Sequence[tuple[float, float, Sequence[str]]], clut: bool = True, **render):
    """A Matroska file holding only a DVB subtitle track showing each (start_s, end_s, lines) event (clut False: the
    stream defines no colour table)."""
    import fractions

    import av
    with av.open(str(path), "w") as out:
        track = out.add_stream("dvbsub")
        for k, (start, end, lines) in enumerate(events):
            for t, data in ((start, dvb_display_set(render_lines(lines, **render), 2 * k, clut=clut)),
                            (end, dvb_display_set(None, 2 * k + 1))):
                p = av.Packet(data)
                p.stream, p.time_base = track, fractions.Fraction(1, 1000)
                p.pts = p.dts = int(round(t * 1000))
                out.mux(p)
    return Path(path)
