"""Captions for tests, written the way caption encoders write them: CEA-608 words with odd parity, control codes
sent twice, one word per frame at 29.97 fps, in Scenarist SCC files (transforms/scc.py reads them) or in a
broadcast recording's pictures as A53 data (transforms/video_captions.py); and EBU STL files (transforms/stl.py)."""
from __future__ import annotations

from typing import Iterable, Sequence

import av

from transforms.scc import FRAME_S, HEADER

RCL, EOC, EDM, ENM, RU2, CR = (0x14, 0x20), (0x14, 0x2F), (0x14, 0x2C), (0x14, 0x2E), (0x14, 0x25), (0x14, 0x2D)
PAC = {14: (0x14, 0x50), 15: (0x14, 0x70)}  # rows 14 and 15, indent 0
# characters outside ASCII: a basic code (one byte) or a special / extended character pair (the extended ones
# follow a plain stand-in, which they replace)
_BASIC = {"á": 0x2A, "é": 0x5C, "í": 0x5E, "ó": 0x5F, "ú": 0x60, "ç": 0x7B, "ñ": 0x7E}
_PAIRS = {"♪": (0x11, 0x37), "è": (0x11, 0x3A), "Ü": (0x12, 0x24), "ü": (0x12, 0x25), "ß": (0x13, 0x34)}


def _odd(b: int) -> int:
    return b | 0x80 if bin(b).count("1") % 2 == 0 else b


def _word(b1: int, b2: int) -> str:
    return f"{_odd(b1):02x}{_odd(b2):02x}"


def _control(code: tuple[int, int], channel: int = 1) -> list[str]:
    b1 = code[0] | (0x08 if channel == 2 else 0)
    return [_word(b1, code[1])] * 2


def text_words(text: str) -> list[str]:
    """A row's characters as 608 words."""
    words, pending = [], []
    for ch in text:
        if ch in _PAIRS:
            if pending:
                words.append(_word(pending[0], 0))
                pending = []
            if _PAIRS[ch][0] in (0x12, 0x13):  # an extended character replaces a stand-in
                words.append(_word(ord("?"), 0))
            words += [_word(*_PAIRS[ch])] * 2
            continue
        pending.append(_BASIC.get(ch, ord(ch)))
        if len(pending) == 2:
            words.append(_word(*pending))
            pending = []
    if pending:
        words.append(_word(pending[0], 0))
    return words


def label(seconds: float) -> str:
    """Non-drop SCC time code of the frame at `seconds` (labels count 30 a second at 29.97 fps)."""
    n = int(round(seconds / FRAME_S))
    return f"{n // 108000:02d}:{n // 1800 % 60:02d}:{n // 30 % 60:02d}:{n % 30:02d}"


def pop_on(start_s: float, end_s: float, rows: Sequence[str], channel: int = 1) -> list[tuple[float, list[str]]]:
    """A pop-on caption: loaded ahead, shown (EOC) at start_s, cleared (EDM) at end_s."""
    words = _control(ENM, channel) + _control(RCL, channel)
    for row, text in zip(range(16 - len(rows), 16), rows):
        words += _control(PAC[row], channel) + text_words(text)
    load_at = start_s - len(words) * FRAME_S
    return [(load_at, words + _control(EOC, channel)), (end_s, _control(EDM, channel))]


def roll_up(start_s: float, end_s: float, text: str) -> list[tuple[float, list[str]]]:
    """A roll-up line: its characters from start_s, the carriage return that rolls it up at end_s."""
    return [(start_s - 4 * FRAME_S, _control(RU2) + _control(PAC[15]) + text_words(text)), (end_s, _control(CR))]


def scc_text(events: Iterable[tuple[float, list[str]]], extra_lines: Sequence[str] = ()) -> str:
    lines, free_at = [HEADER, ""], 0.0
    for t, words in sorted(events, key=lambda e: e[0]):
        if t < free_at - FRAME_S:  # a caption stream sends one word per frame: lines cannot overlap
            raise ValueError(f"caption words at {t:.2f}s overlap the previous line's (sent until {free_at:.2f}s)")
        lines += [f"{label(t)}\t{' '.join(words)}", ""]
        free_at = t + len(words) * FRAME_S
    return "\n".join(lines + list(extra_lines)) + "\n"


def stl_bytes(subtitles: Sequence[tuple[tuple[int, ...], tuple[int, ...], bytes]], fps: int = 25,
              table: str = "00", language: str = "09", programme_start: str = "00000000",
              comments: Sequence[int] = (), extension_at: int = 112) -> bytes:
    """An EBU STL file: subtitles as (time code in (h, m, s, f), time code out, text bytes in the file's character
    table); a text longer than extension_at bytes goes on in extension blocks, as STL writers split it. Subtitles
    whose index is in `comments` are comment blocks."""
    gsi = bytearray(b" " * 1024)
    gsi[0:3], gsi[3:11], gsi[11:12] = b"850", f"STL{fps}.01".encode(), b"1"
    gsi[12:14], gsi[14:16], gsi[256:264] = table.encode(), language.encode(), programme_start.encode()
    blocks = []
    for number, (tc_in, tc_out, text) in enumerate(subtitles):
        pieces = [text[i:i + extension_at] for i in range(0, max(len(text), 1), extension_at)]
        for k, piece in enumerate(pieces):
            tti = bytearray(128)
            tti[0], tti[1:3] = 0, number.to_bytes(2, "little")
            tti[3] = 0xFF if k == len(pieces) - 1 else k
            tti[5:9], tti[9:13] = bytes(tc_in), bytes(tc_out)
            tti[15] = 1 if number in comments else 0
            tti[16:128] = piece.ljust(112, b"\x8f")
            blocks.append(bytes(tti))
    return bytes(gsi) + b"".join(blocks)


def _escape(nal: bytes) -> bytes:
    """H.264 emulation prevention: 0x03 after two zero bytes that precede a byte <= 3."""
    out, zeros = bytearray(), 0
    for b in nal:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def a53_sei(pairs: Sequence[str]) -> bytes:
    """An H.264 SEI NAL unit (start code included) carrying CEA-608 field 1 words as ATSC A53 cc_data."""
    cc = bytes([0x40 | len(pairs), 0xFF]) + b"".join(bytes([0xFC]) + bytes.fromhex(w) for w in pairs) + b"\xff"
    payload = b"\xb5\x00\x31GA94\x03" + cc  # ITU-T T.35: USA, ATSC provider, 'GA94', cc_data
    return b"\x00\x00\x00\x01" + _escape(bytes([0x06, 0x04, len(payload)]) + payload + b"\x80")


def make_captioned_recording(path, events: Iterable[tuple[float, list[str]]], duration_s: float):
    """An MPEG-TS broadcast recording (H.264 at 29.97 fps with B-frames, AAC speech-like sound) whose pictures carry
    the caption words of `events` (pop_on / roll_up) as A53 data: one word per picture, padding in the others."""
    import fractions

    from testing.films import _scene_frame, encode_film, speech_like
    words: dict[int, str] = {}
    for t, ws in events:
        first = int(round(t / FRAME_S))
        for k, w in enumerate(ws):
            words[first + k] = w
    rate = fractions.Fraction(30000, 1001)

    def add_captions(packet):
        frame = int(round(float(packet.pts * packet.time_base) * rate))
        data = bytes(packet)
        at = next(i for i in range(len(data) - 4) if data[i:i + 3] == b"\x00\x00\x01" and data[i + 3] & 0x1F in (1, 5))
        at -= 1 if at and data[at - 1] == 0 else 0  # a four-byte start code
        edited = av.Packet(data[:at] + a53_sei([words.get(frame, "8080")]) + data[at:])
        edited.pts, edited.dts, edited.time_base, edited.stream = packet.pts, packet.dts, packet.time_base, packet.stream
        edited.is_keyframe = packet.is_keyframe
        return edited

    n = int(duration_s * rate)
    return encode_film(path, paint=lambda i, t: _scene_frame(t, (128, 72), ()), frame_times=[i / rate for i in range(n)],
                       fps=rate, size=(128, 72), video_codec="libx264", audio=speech_like(duration_s),
                       edit_video_packet=add_captions)


def make_captioned_master(path, events: Iterable[tuple[float, list[str]]], duration_s: float):
    """A QuickTime master (.mov, H.264 picture) with a CEA-608 caption track (`c608`) holding the caption words of
    `events`, as ProRes deliverables carry captions: FFmpeg's SCC reader gives the track's packets."""
    import tempfile
    from pathlib import Path

    import numpy as np
    with tempfile.TemporaryDirectory() as tmp:
        scc = Path(tmp) / "captions.scc"
        # a last clear before the end: the mov muxer drops a last sample that has no duration
        scc.write_text(scc_text(list(events) + [(duration_s - 0.5, _control(EDM))]))
        with av.open(str(scc), format="scc") as source, av.open(str(path), "w") as out:
            v = out.add_stream("libx264", rate=25)
            v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
            track = out.add_stream_from_template(source.streams[0])
            for i in range(int(duration_s * 25)):
                frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * (i % 30), np.uint8), format="rgb24")
                frame.pts = i
                out.mux(v.encode(frame))
            for packet in source.demux(source.streams[0]):
                if packet.size:
                    packet.stream = track
                    out.mux(packet)
            out.mux(v.encode(None))
    return path
