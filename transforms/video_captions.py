"""Closed captions inside a film: ATSC A53 CEA-608 data in the video stream's H.264 / HEVC SEI messages (ITU-T
T.35, 'GA94') or MPEG-2 picture user data, as broadcast recordings (MPEG-TS captures) carry them, and CEA-608
caption tracks (QuickTime `c608`, beside the picture of ProRes masters). Read from the demuxed packets, without
decoding a picture; field 1's byte pairs go to the CEA-608 decoder (transforms/cea608.py) in presentation order
(video packets come in decode order) at their picture's time.

A stream that carries A53 data carries it in every picture (padding while no caption is sent), so a film whose
first PROBE_PACKETS video packets have none is not read further: the check costs a few seconds of demuxing. Any
A53 data counts, padding marked invalid (cc_valid 0) too: before 2026-12-06 only valid field 1 pairs did, and a
recording whose encoder sends its padding so lost every caption when the first came after PROBE_PACKETS pictures."""
from __future__ import annotations

import re
from typing import Optional

from transforms.cea608 import Cea608Decoder
from transforms.probe import demux, film_start_s, main_video_stream, open_container

CODECS = ("h264", "hevc", "mpeg2video")
PROBE_PACKETS = 300
PAIR_S = 1001 / 30000  # field 1 pairs of one picture (rare): a frame of 29.97 fps apart
_A53 = re.compile(rb"GA94\x03")


def cc_pairs(data: bytes, escaped: bool) -> list[tuple[int, int]]:
    """Field 1 CEA-608 byte pairs in one picture's packet. escaped: H.264 / HEVC, whose NAL units insert 0x03
    after two zero bytes (emulation prevention)."""
    out = []
    for m in _A53.finditer(data):
        body = data[m.end():m.end() + 2 + 3 * 31 + 16]
        if escaped:
            body = body.replace(b"\x00\x00\x03", b"\x00\x00")
        if len(body) < 2 or not body[0] & 0x40:  # process_cc_data_flag
            continue
        out += track_pairs(body[2:2 + 3 * (body[0] & 0x1F)])  # after the flags and em_data: cc_count triplets
    return out


def track_pairs(data: bytes) -> list[tuple[int, int]]:
    """Field 1 pairs of cc_data triplets (marker and valid bits, type; then the pair), as a caption track's packet
    holds them (FFmpeg gives a c608 sample's atoms so) and A53 data after its header."""
    return [(data[k + 1], data[k + 2]) for k in range(0, len(data) - 2, 3)
            if data[k] & 0x04 and data[k] & 0x03 == 0]  # valid, NTSC field 1 (CC1 / CC2)


def carries_a53(data: bytes) -> bool:
    """Whether a picture's packet holds A53 caption data (GA94 user data), a caption in it or only padding."""
    return _A53.search(data) is not None


def read_video_captions(film_path: str, track: Optional[int] = None) -> list[tuple[float, float, str]]:
    """The film's channel 1 captions as (start_s, end_s, text) lines: from caption track `track` (a stream index)
    when given, else from its video stream's A53 data; [] when it carries none."""
    timed: list[tuple[float, list[tuple[int, int]]]] = []
    end = 0.0
    carried = track is not None  # a caption track is read to its end; pictures once their first packets hold A53
    with open_container(film_path) as container:
        stream = container.streams[track] if track is not None else main_video_stream(container)
        if stream is None or (track is None and stream.codec_context.name not in CODECS):
            return []
        escaped = stream.codec_context.name != "mpeg2video"
        start0 = film_start_s(container)
        for i, packet in enumerate(demux(container, stream)):
            if packet.size == 0 or packet.pts is None:
                continue
            t = float(packet.pts * packet.time_base) - start0
            end = max(end, t)
            data = bytes(packet)
            pairs = track_pairs(data) if track is not None else cc_pairs(data, escaped)
            if pairs:
                timed.append((t, pairs))
            carried = carried or bool(pairs) or carries_a53(data)
            if not carried and i >= PROBE_PACKETS:
                return []
    decoder = Cea608Decoder()
    for t, pairs in sorted(timed, key=lambda e: e[0]):
        for k, (b1, b2) in enumerate(pairs):
            decoder.word(b1, b2, t + k * PAIR_S)
    return decoder.finish(end)
