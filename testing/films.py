"""Synthetic films for the tests, the demo and the benchmarks, all written with PyAV through one encoder.

One core, `encode_film`, muxes a video stream (a painter function per frame), an audio stream (a wave at any
sample rate, or undecodable packets) and embedded SubRip cues, interleaved by time; `write_srt` writes every
sidecar. The makers on top of it differ only in what they paint and play:

- `make_film`: small scene-coloured films with speech-like audio, optional cuts, VFR, embedded subtitles,
  any video codec, or an audio stream that cannot be decoded (the media tests and the demo);
- `make_soundtrack_film`: drifting grey frames over a given 16 kHz wave (the speech recognition tests);
- `make_colour_film` / `make_talking_film`: one solid colour per second, so a thumbnail proves its time;
- `make_textured_film(path, FilmSpec)` / `cached_film`: realistic H.264 + AAC films of any length with shot
  cuts and a sidecar .srt (the throughput benchmark and the scoring tests);
- `make_audio_only`, `make_av1`, `make_truncated`, `make_zero_byte`, `make_text_as_video`: odd inputs.

Signals: `speech_like` (voiced tone with a syllable rhythm), `synthetic_music` (chords and a kick, no voice).
"""
from __future__ import annotations

import dataclasses
import fractions
import heapq
import os
import struct
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, Union

import av
import numpy as np

from model.encoders.audio import SAMPLE_RATE
from model.files import written_atomically

Cues = Sequence[tuple[float, float, str]]  # (start_s, end_s, text)
Painter = Callable[[int, float], np.ndarray]  # (frame index, time s) -> rgb24 image [h, w, 3]

AUDIO_CHUNK = 1024  # samples per audio frame handed to the encoder
MS = fractions.Fraction(1, 1000)

# ffmpeg's text subtitle encoders want an ASS header to open, even for SubRip.
_ASS_HEADER = (b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
               b"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, "
               b"Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, "
               b"Alignment, MarginL, MarginR, MarginV, Encoding\nStyle: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,"
               b"0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n[Events]\nFormat: Layer, Start, End, Style, Name, "
               b"MarginL, MarginR, MarginV, Effect, Text\n")

SCENE_COLOURS = [(200, 40, 40), (40, 180, 60), (40, 60, 200), (220, 200, 40), (160, 40, 160)]
# Solid colour per second of `make_colour_film` / `make_talking_film`.
SECOND_COLOURS = [(220, 30, 30), (30, 200, 30), (30, 30, 220), (230, 230, 40), (200, 40, 200), (40, 200, 200)]
LINES = ("Where were you last night?", "I can't believe you did that!", "Get out of here, now.",
         "That is the best news I've heard all year.", "Please, don't leave me here alone.",
         "Oh no. What happened to the ship?", "We did it, we actually did it!", "Fine. Whatever you say.",
         "Did you hear something just now?", "I miss her every single day.")


# --- signals -------------------------------------------------------------------------------------------
def speech_like(duration_s: float, rate: int = SAMPLE_RATE, f0: float = 180.0) -> np.ndarray:
    """A voiced tone with syllable-rate (4 Hz) amplitude modulation and harmonics: crude but speech-shaped."""
    t = np.arange(int(duration_s * rate)) / rate
    voice = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in (1, 2, 3))
    env = 0.5 * (1 + np.sin(2 * np.pi * 4.0 * t)) * (np.sin(2 * np.pi * 0.25 * t) > -0.5)
    return (0.2 * voice * env).astype(np.float32)


def synthetic_music(seconds: float = 20.0, seed: int = 0, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Chords with harmonics plus a kick drum and a little noise: music-like, no voice."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    out = np.zeros_like(t)
    for k, root in enumerate((220.0, 261.6, 196.0, 246.9)):
        seg = (t >= k * seconds / 4) & (t < (k + 1) * seconds / 4)
        for ratio in (1.0, 1.26, 1.5):
            for h in (1, 2, 3):
                out[seg] += np.sin(2 * np.pi * root * ratio * h * t[seg]) / (h * 3)
    beat = (t % 0.5) < 0.08
    out += beat * np.sin(2 * np.pi * 60 * t) * np.exp(-(t % 0.5) * 30)
    out += 0.02 * rng.standard_normal(t.size)
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


class _SyllableTones:
    """Voiced-like tones with a syllable rhythm over noise, made chunk by chunk (a 30 min film at 48 kHz
    would not fit in memory as one array). Sliced in increasing order, like `encode_film` does."""

    def __init__(self, seconds: float, rate: int, seed: int):
        self.n, self.rate = int(seconds * rate), rate
        self.rng = np.random.default_rng([seed, 1])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, s: slice) -> np.ndarray:
        start, stop, _ = s.indices(self.n)
        tt = np.arange(start, stop) / self.rate
        syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * tt)  # ~4 syllables a second
        pitch = 140 + 40 * np.sin(2 * np.pi * 0.3 * tt)
        wave = 0.2 * syllables * np.sin(2 * np.pi * pitch * tt) + 0.01 * self.rng.standard_normal(tt.size)
        return wave.astype(np.float32)


# --- the one encoder -----------------------------------------------------------------------------------
def _audio_frame(chunk: np.ndarray, codec_format: str, rate: int, pts: int, layout: str = "mono") -> av.AudioFrame:
    chunk = np.ascontiguousarray(chunk, np.float32)
    chunk = chunk[None, :] if chunk.ndim == 1 else chunk  # (channels, samples)
    packed = np.ascontiguousarray(chunk.T).reshape(1, -1)
    if codec_format.startswith("s16"):
        frame = av.AudioFrame.from_ndarray((packed * 32767).astype(np.int16), format="s16", layout=layout)
    elif codec_format == "fltp":  # PyAV converts to the codec's own format when it differs
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
    else:
        frame = av.AudioFrame.from_ndarray(packed, format="flt", layout=layout)
    frame.sample_rate, frame.pts = rate, pts
    return frame


PIX_FMTS = {"mjpeg": "yuvj420p", "prores_ks": "yuv422p10le", "prores": "yuv422p10le", "dnxhd": "yuv422p"}


def encode_film(path, *, paint: Optional[Painter] = None, frame_times: Sequence[float] = (), fps: int = 10,
                size: tuple[int, int] = (96, 64), video_codec: str = "mpeg4", vfr: bool = False,
                gop_size: Optional[int] = None, video_options: Optional[dict] = None,
                video_time_base: Optional[fractions.Fraction] = None,
                audio=None, sample_rate: int = SAMPLE_RATE, audio_codec: str = "aac", garbage_audio: bool = False,
                subtitles: Optional[Cues | dict[str, Cues]] = None, forced_subtitles: Sequence[str] = (),
                timecode: Optional[str] = None, more_audio: Sequence = (), audio_layout: str = "mono",
                audio_tags: Sequence[dict] = (),
                picture_subtitles: Sequence[str] = (),
                edit_video_packet: Optional[Callable[[av.Packet], av.Packet]] = None,
                muxer_options: Optional[dict] = None, audio_hole: Optional[tuple[float, float]] = None) -> Path:
    """Write a film with PyAV; the container comes from the suffix. Every stream is optional. timecode: the
    first frame's (HH:MM:SS:FF, .mov / .mp4: a tmcd track, as studio masters carry). more_audio: further mono
    tracks after `audio`, in its codec (a master's channels as separate tracks). audio_layout: `audio`'s channels
    (a (channels, samples) array where not mono). audio_tags: per audio track in order, {"metadata": {...},
    "disposition": flags} (titles, languages, default / original / commentary flags). picture_subtitles: encoders of
    bitmap subtitle tracks to declare (`dvdsub`, `dvbsub`: a DVD or DVB recording's), without packets.
    edit_video_packet: gives each encoded video packet as it is muxed (data a broadcaster adds to the pictures).
    muxer_options: the container muxer's options (e.g. MPEG-TS PIDs and service id). audio_hole: (start, end)
    seconds of `audio` with no packets in the file (a damaged or lost stretch of the sound).

    paint(i, t) gives frame i shown at frame_times[i] (seconds; with vfr they are stored as milliseconds,
    otherwise frame i has pts i in 1/fps). audio: a float wave at sample_rate (anything with len() and
    slicing), fed in AUDIO_CHUNK pieces. garbage_audio: the audio stream (mp2) gets random bytes instead, so
    it exists but cannot be decoded. subtitles: embedded SubRip cues (mkv), one untagged track, or several as
    {language tag: cues} in stream order; the tracks whose tag is in forced_subtitles are marked forced.
    Packets are muxed in time order.
    The file is written beside `path` and renamed into place, so a failed write leaves nothing.
    """
    path = Path(path)
    with written_atomically(path) as tmp:
        with av.open(str(tmp), "w", options=dict(muxer_options or {})) as out:
            v = a = None
            if paint is not None:
                v = out.add_stream(video_codec, rate=fps)
                v.width, v.height, v.pix_fmt = size[0], size[1], PIX_FMTS.get(video_codec, "yuv420p")
                if vfr:
                    v.time_base = MS
                elif video_time_base is not None:
                    v.time_base = video_time_base
                if gop_size is not None:
                    v.gop_size = gop_size
                if video_options:
                    v.options = dict(video_options)
                if timecode:
                    v.metadata["timecode"] = timecode
            if audio is not None:
                a = out.add_stream("mp2" if garbage_audio else audio_codec, rate=sample_rate)
                a.layout = audio_layout
            extra = []
            for _ in more_audio:
                extra.append(out.add_stream(audio_codec, rate=sample_rate))
                extra[-1].layout = "mono"
            for stream, tags in zip(([a] if a is not None else []) + extra, audio_tags):
                for key, value in tags.get("metadata", {}).items():
                    stream.metadata[key] = value
                if "disposition" in tags:
                    stream.disposition = tags["disposition"]
            n_audio = (np.shape(audio)[-1] if audio_layout != "mono" else len(audio)) if audio is not None else 0
            tracks = list(subtitles.items()) if isinstance(subtitles, dict) else [(None, subtitles or [])]
            tracks = [(tag, cues) for tag, cues in tracks if cues]
            subs = []
            for tag, _ in tracks:
                s = out.add_stream("subrip")
                s.codec_context.subtitle_header = _ASS_HEADER
                s.time_base = MS
                if tag:
                    s.metadata["language"] = tag
                if tag in forced_subtitles:
                    s.disposition = av.stream.Disposition.forced
                subs.append(s)
            for codec in picture_subtitles:
                out.add_stream(codec)

            def video_events() -> Iterator:
                for i, ft in enumerate(frame_times if v is not None else ()):
                    yield ft, "v", i

            def audio_events() -> Iterator:
                for k in range(-(-n_audio // AUDIO_CHUNK)):
                    if audio_hole and audio_hole[0] <= k * AUDIO_CHUNK / sample_rate < audio_hole[1]:
                        continue
                    yield k * AUDIO_CHUNK / sample_rate, "a", k
                    for j, wave in enumerate(more_audio):  # the other channels' chunks of the same time
                        if k * AUDIO_CHUNK < len(wave):
                            yield k * AUDIO_CHUNK / sample_rate, "m", (j, k)

            def subtitle_events() -> Iterator:
                events = [(cue[0], "s", (j, k)) for j, (_, cues) in enumerate(tracks) for k, cue in enumerate(cues)]
                yield from sorted(events)

            rng = np.random.default_rng(0)
            edit = edit_video_packet or (lambda p: p)
            for et, kind, k in heapq.merge(video_events(), audio_events(), subtitle_events()):
                if kind == "v":
                    frame = av.VideoFrame.from_ndarray(paint(k, et), format="rgb24")
                    frame.pts = int(round(et * 1000)) if vfr else k
                    if vfr:
                        frame.time_base = MS
                    out.mux([edit(p) for p in v.encode(frame)])
                elif kind == "a" and garbage_audio:
                    p = av.Packet(rng.integers(0, 256, 417, dtype=np.uint8).tobytes())
                    p.stream, p.time_base = a, fractions.Fraction(1, sample_rate)
                    p.pts = p.dts = k * 1152
                    out.mux(p)
                elif kind in ("a", "m"):
                    stream, wave = (a, audio) if kind == "a" else (extra[k[0]], more_audio[k[0]])
                    k = k if kind == "a" else k[1]
                    layout = audio_layout if kind == "a" else "mono"
                    part = slice(k * AUDIO_CHUNK, (k + 1) * AUDIO_CHUNK)
                    chunk = wave[:, part] if layout != "mono" else wave[part]
                    out.mux(stream.encode(_audio_frame(chunk, stream.codec_context.format.name, sample_rate,
                                                       k * AUDIO_CHUNK, layout)))
                else:
                    st, en, text = tracks[k[0]][1][k[1]]
                    p = av.Packet(text.encode("utf-8"))
                    p.stream, p.time_base = subs[k[0]], MS
                    p.pts = p.dts = int(st * 1000)
                    p.duration = int((en - st) * 1000)
                    out.mux(p)
            if v is not None:
                out.mux([edit(p) for p in v.encode(None)])
            for stream in ([a] if a is not None and not garbage_audio else []) + extra:
                out.mux(stream.encode(None))
    return path


def make_multiplex(path, services: Sequence[dict]) -> Path:
    """An MPEG-TS holding several programmes, as a capture of a whole DVB multiplex: each of `services` is
    encode_film's keyword arguments for one programme (picture and sound, or sound alone: a radio service), muxed
    on PIDs of its own. Their packets are interleaved through the file and one PAT lists them all, the last
    programme's tables first, as a broadcaster's may be: FFmpeg then lists its streams first."""
    from transforms.ts_programs import crc32_mpeg2
    path = Path(path)
    pieces = []
    for k, kw in enumerate(services):
        piece = encode_film(path.with_name(f"{path.stem}.service{k + 1}.ts"), **kw, muxer_options={
            "mpegts_service_id": str(k + 1), "mpegts_pmt_start_pid": str(0x1000 + 0x100 * k),
            "mpegts_start_pid": str(0x100 + 0x100 * k)})
        data = piece.read_bytes()
        piece.unlink()
        pieces.append([data[i:i + 188] for i in range(0, len(data), 188)])
    body = b"\x00\x01\xc1\x00\x00" + b"".join(
        struct.pack(">HH", k + 1, 0xE000 | (0x1000 + 0x100 * k)) for k in reversed(range(len(services))))
    section = bytes([0x00, 0xB0 | ((len(body) + 4) >> 8), (len(body) + 4) & 0xFF]) + body
    section += struct.pack(">I", crc32_mpeg2(section))
    pat = lambda cc: (bytes([0x47, 0x40, 0x00, 0x10 | cc, 0x00]) + section).ljust(188, b"\xff")  # noqa: E731
    # each programme's first tables (SDT, PAT, PMT) the last programme's first, then the packets spread evenly
    packets = sorted(((max(i - 2, 0) / len(p), -k, pkt) for k, p in enumerate(pieces) for i, pkt in enumerate(p)),
                     key=lambda e: e[:2])
    out, cc = [], 0
    for _, _, pkt in packets:
        if ((pkt[1] & 0x1F) << 8) | pkt[2] == 0:  # every programme's own PAT becomes the one PAT
            pkt, cc = pat(cc), (cc + 1) % 16
        out.append(pkt)
    path.write_bytes(b"".join(out))
    return path


def write_srt(path, cues: Cues, encoding: str = "utf-8", crlf: bool = False) -> Path:
    """A SubRip file of (start_s, end_s, text) cues; newlines in text become line breaks."""
    def ts(t):
        ms = int(round(t * 1000))
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"
    nl = "\r\n" if crlf else "\n"
    body = nl.join(f"{i + 1}{nl}{ts(a)} --> {ts(b)}{nl}{text.replace(chr(10), nl)}{nl}"
                   for i, (a, b, text) in enumerate(cues))
    Path(path).write_bytes(body.encode(encoding))
    return Path(path)


# --- small films for the media tests and the demo ------------------------------------------------------
def _scene_frame(t: float, size: tuple[int, int], cuts: Sequence[float]) -> np.ndarray:
    w, h = size
    scene = sum(t >= c for c in cuts)
    base = np.array(SCENE_COLOURS[scene % len(SCENE_COLOURS)], np.float32)
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = base * (0.75 + 0.25 * np.sin(2 * np.pi * (x + 0.1 * t) + y))  # slow drift, no cut-like jumps
    return np.clip(img, 0, 255).astype(np.uint8)


def make_film(path, duration_s: float = 4.0, fps: int = 10, size: tuple[int, int] = (96, 64),
              audio: bool = True, subtitles: Optional[Cues | dict[str, Cues]] = None,
              cuts: Sequence[float] = (), video_codec: str = "mpeg4", vfr: bool = False,
              garbage_audio: bool = False, sample_rate: int = SAMPLE_RATE, forced_subtitles: Sequence[str] = (),
              timecode: Optional[str] = None, picture_subtitles: Sequence[str] = ()) -> Path:
    """Write a film. Container from the suffix (.mp4/.mkv/.mov). subtitles: embedded SubRip cues (mkv only; see
    encode_film, as forced_subtitles and picture_subtitles).

    Each scene (split at `cuts`, seconds) has its own colour, drifting slowly. vfr: frame durations
    alternate 1/fps and 3/fps. garbage_audio: the audio stream's packets are random bytes, so it exists but
    cannot be decoded.
    """
    times, t = [], 0.0
    while t < duration_s - 1e-9:
        times.append(t)
        t += (1.0 if not vfr or len(times) % 2 else 3.0) / fps
    return encode_film(path, paint=lambda i, ft: _scene_frame(ft, size, cuts), frame_times=times, fps=fps,
                       size=size, video_codec=video_codec, vfr=vfr,
                       audio=speech_like(duration_s, sample_rate) if audio else None, sample_rate=sample_rate,
                       garbage_audio=garbage_audio, subtitles=subtitles, forced_subtitles=forced_subtitles,
                       timecode=timecode, picture_subtitles=picture_subtitles)


def make_joined_recording(path, pieces: int = 2, piece_s: float = 20.0, sample_rates: Sequence[int] = ()) -> Path:
    """An MPEG-TS recording joined from `pieces` captures byte by byte, as recorders and `cat` do: each piece's
    clock starts again at zero, and the header's duration is the first piece's. sample_rates: each piece's audio
    rate (a capture whose sound changes format at a join, as a programme's and its adverts' do)."""
    path = Path(path)
    parts = []
    for i in range(pieces):
        part = path.with_name(f".{path.stem}-piece{i}.ts")
        make_film(part, duration_s=piece_s, fps=10, size=(160, 96), cuts=[piece_s / 2],
                  sample_rate=sample_rates[i] if sample_rates else SAMPLE_RATE)
        parts.append(part.read_bytes())
        part.unlink()
    path.write_bytes(b"".join(parts))
    return path


def make_ass_film(path, events: Sequence[tuple[float, float, int, str, str]], duration_s: float = 10.0,
                  styles: Sequence[str] = ("Default",)) -> Path:
    """A small mkv with an ASS subtitle track, as fansub and anime releases carry: events are (start_s, end_s,
    layer, style, text with its override tags), each style declared in the track's header."""
    default = next(ln for ln in _ASS_HEADER.split(b"\n") if ln.startswith(b"Style: Default,"))
    others = b"".join(default.replace(b"Default", style.encode(), 1) + b"\n" for style in styles if style != "Default")
    header = _ASS_HEADER.replace(default + b"\n", default + b"\n" + others)
    path = Path(path)
    with av.open(str(path), "w") as out:
        v = out.add_stream("mpeg4", rate=10)
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        s = out.add_stream("ass")
        s.codec_context.subtitle_header, s.time_base = header, MS
        queue = sorted((int(a * 1000), int(b * 1000), i, layer, style, text)
                       for i, (a, b, layer, style, text) in enumerate(events))
        for k in range(int(duration_s * 10)):
            while queue and queue[0][0] <= k * 100:
                a, b, i, layer, style, text = queue.pop(0)
                packet = av.Packet(f"{i},{layer},{style},,0,0,0,,{text}".encode("utf-8"))
                packet.stream, packet.time_base = s, MS
                packet.pts = packet.dts = a
                packet.duration = b - a
                out.mux(packet)
            out.mux(v.encode(av.VideoFrame.from_ndarray(np.full((64, 96, 3), k % 255, np.uint8), format="rgb24")))
        out.mux(v.encode(None))
    return path


def make_soundtrack_film(path, wave: np.ndarray, fps: int = 10, size: int = 64,
                         sample_rate: int = SAMPLE_RATE, subtitles: Optional[Cues] = None) -> Path:
    """A small mpeg4 film of drifting grey frames with `wave` (mono, sample_rate) as its AAC soundtrack (and
    embedded SubRip `subtitles`: .mkv only)."""
    n = int(len(wave) / sample_rate * fps)
    return encode_film(path, paint=lambda i, t: np.full((size, size, 3), (i * 7) % 255, np.uint8),
                       frame_times=[i / fps for i in range(n)], fps=fps, size=(size, size),
                       audio=wave, sample_rate=sample_rate, subtitles=subtitles)


def _second_colour(i: int, fps: int, size: tuple[int, int]) -> np.ndarray:
    return np.full((size[1], size[0], 3), SECOND_COLOURS[(i // fps) % len(SECOND_COLOURS)], np.uint8)


def make_colour_film(path, seconds: int = 6, fps: int = 10, size: tuple[int, int] = (160, 96)) -> Path:
    """H.264, no audio: second s is solid SECOND_COLOURS[s % 6]; a keyframe every second, so seeks land near."""
    return encode_film(path, paint=lambda i, t: _second_colour(i, fps, size),
                       frame_times=[i / fps for i in range(seconds * fps)], fps=fps, size=size,
                       video_codec="libx264", video_options={"g": str(fps)})


def make_talking_film(path, seconds: int = 4) -> Path:
    """A real little film: H.264 in SECOND_COLOURS + a 220 Hz tone at 16 kHz, with a sidecar .srt of two lines."""
    fps, size = 10, (160, 96)
    t = np.arange(seconds * SAMPLE_RATE) / SAMPLE_RATE
    path = encode_film(path, paint=lambda i, _: _second_colour(i, fps, size),
                       frame_times=[i / fps for i in range(seconds * fps)], fps=fps, size=size,
                       video_codec="libx264", audio=(0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    write_srt(path.with_suffix(".srt"), [(0.2, 1.8, "What a wonderful day!"),
                                         (2.1, 3.8, "Get out of here, I hate you.")])
    return path


# --- odd inputs ----------------------------------------------------------------------------------------
def make_audio_only(path, duration_s: float = 3.0, sample_rate: int = SAMPLE_RATE) -> Path:
    """Speech-like audio alone: AAC (.m4a/.mp4 and anything else), PCM (.wav) or Opus (.ogg)."""
    suffix = Path(path).suffix
    codec = {".wav": "pcm_s16le", ".ogg": "libopus"}.get(suffix, "aac")
    return encode_film(path, audio=speech_like(duration_s, sample_rate), sample_rate=sample_rate, audio_codec=codec)


def av1_encoder() -> Optional[str]:
    """An AV1 encoder in PyAV's bundled FFmpeg, or None."""
    for name in ("libsvtav1", "libaom-av1", "librav1e"):
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # noqa: BLE001 - not built in
            continue
    return None


def make_av1(path, duration_s: float = 2.0) -> Optional[Path]:
    """An AV1 film, or None when this PyAV build cannot encode AV1.

    SVT-AV1 run as root puts the thread that opens it under SCHED_FIFO at priority 99 and leaves it there; every
    thread started from it afterwards inherits that, and two such threads spinning on two cores starve the rest
    (a whole test session hung in OpenVINO's and chromium's thread pools after this test). The calling thread's
    scheduling is put back afterwards."""
    enc = av1_encoder()
    if enc is None:
        return None
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        return make_film(path, duration_s=duration_s, fps=10, size=(128, 96), video_codec=enc)
    except Exception:  # noqa: BLE001 - encoder present but unusable in this build
        return None
    finally:
        if os.sched_getscheduler(0) != policy:
            os.sched_setscheduler(0, policy, param)


def make_zero_byte(path) -> Path:
    Path(path).write_bytes(b"")
    return Path(path)


def make_text_as_video(path) -> Path:
    Path(path).write_text("This is not a film. It is a shopping list: eggs, milk, popcorn.\n" * 20)
    return Path(path)


def make_truncated(path, source=None, keep: float = 0.5) -> Path:
    """The first `keep` share of a film's bytes (an mp4 loses its index at the end)."""
    path = Path(path)
    if source is None:
        source = make_film(path.with_name("_full_" + path.name), duration_s=3.0)
    data = Path(source).read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    if Path(source).name.startswith("_full_"):
        os.remove(source)
    return path


def make_damaged(path, source, at: float = 0.5, share: float = 0.05, seed: int = 0) -> Path:
    """A copy of a film with `share` of its bytes, from `at` of the way in, replaced by random ones: a damaged
    sector or a bad transfer in the middle of the media data (the index at an mp4's end stays whole)."""
    data = bytearray(Path(source).read_bytes())
    start, n = int(len(data) * at), int(len(data) * share)
    data[start:start + n] = np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()
    Path(path).write_bytes(bytes(data))
    return Path(path)


# Ways a file's bytes go wrong in storage and transfer (damaged_bytes), from a few bits to its index or start lost
DAMAGE_KINDS = ("bit_flips", "zeroed_block", "random_block", "truncated", "start_overwritten", "bytes_cut_out",
                "bytes_repeated")


def damaged_bytes(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    """`data` damaged one of the DAMAGE_KINDS ways, at a place and of a size drawn from rng."""
    d, n = bytearray(data), len(data)
    at = int(rng.integers(0, n))
    if kind == "bit_flips":
        for p in rng.integers(0, n, int(rng.integers(1, 200))):
            d[p] ^= 1 << int(rng.integers(0, 8))
    elif kind == "zeroed_block":
        size = len(d[at:at + int(rng.integers(16, max(17, n // 10)))])
        d[at:at + size] = bytes(size)
    elif kind == "random_block":
        size = len(d[at:at + int(rng.integers(16, max(17, n // 20)))])
        d[at:at + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    elif kind == "truncated":
        d = d[:max(1, at)]
    elif kind == "start_overwritten":
        size = int(rng.integers(1, max(2, min(4096, n))))
        d[:size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    elif kind == "bytes_cut_out":
        d = d[:at] + d[at + int(rng.integers(100, max(101, n // 5))):]
    elif kind == "bytes_repeated":
        size = int(rng.integers(100, max(101, n // 5)))
        d = d[:at + size] + d[at:at + size] + d[at + size:]
    else:
        raise ValueError(f"unknown damage {kind!r}")
    return bytes(d)


# --- realistic films for the benchmarks and the scoring tests -----------------------------------------
@dataclasses.dataclass(frozen=True)
class FilmSpec:
    """Moving textured noise (a random texture panned across the frame, a new one every `shot_s`, so there
    are shot cuts), H.264 with a fixed keyframe interval, AAC audio (voiced-like tones with a syllable rhythm
    over noise), and a sidecar .srt with a line from LINES every `cue_every_s`."""
    seconds: float
    width: int = 1280
    height: int = 720
    fps: int = 24
    gop_s: float = 8.0  # keyframe interval
    cue_every_s: float = 4.0  # a subtitle line starts this often
    cue_len_s: float = 2.5
    shot_s: float = 12.0
    sample_rate: int = 48000
    crf: int = 30
    seed: int = 0
    preset: str = "ultrafast"  # x264's: ultrafast has no B-frames, CABAC or deblocking; medium is a release encode

    def name(self) -> str:
        seed = f"_seed{self.seed}" if self.seed else ""
        preset = "" if self.preset == "ultrafast" else f"_{self.preset}"
        crf = "" if self.crf == 30 else f"_crf{self.crf}"
        return f"noise_{self.width}x{self.height}_{int(self.seconds)}s_gop{int(self.gop_s)}{preset}{crf}{seed}"

    def cues(self) -> list[tuple[float, float, str]]:
        out, t = [], 1.0
        while t + self.cue_len_s < self.seconds:
            out.append((t, t + self.cue_len_s, LINES[len(out) % len(LINES)]))
            t += self.cue_every_s
        return out


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Blocky coloured noise, smoothed a little: textured, but compressible like real footage."""
    small = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
    big = np.repeat(np.repeat(small, 16, 0), 16, 1)[:h, :w]
    fine = rng.integers(0, 8, (h, w, 1), dtype=np.uint8)
    return np.clip(big.astype(np.int16) + fine - 4, 0, 255).astype(np.uint8)


class _PannedTexture:
    """Painter of a FilmSpec film: a new texture every shot, panned slowly. Frames are painted in order."""

    def __init__(self, spec: FilmSpec):
        self.spec, self.rng, self.texture = spec, np.random.default_rng(spec.seed), None

    def __call__(self, i: int, t: float) -> np.ndarray:
        sp = self.spec
        if self.texture is None or i % int(sp.shot_s * sp.fps) == 0:
            self.texture = _texture(self.rng, sp.height * 2, sp.width * 2)
        dx, dy = int(t * 37) % sp.width, int(t * 19) % sp.height  # slow pan
        return np.ascontiguousarray(self.texture[dy:dy + sp.height, dx:dx + sp.width])


def make_textured_film(path, spec: FilmSpec) -> Path:
    """Write the film described by `spec` (and <stem>.srt beside it). Returns the film path."""
    gop = int(round(spec.gop_s * spec.fps))
    times = [i / spec.fps for i in range(int(spec.seconds * spec.fps))]
    path = encode_film(path, paint=_PannedTexture(spec), frame_times=times, fps=spec.fps,
                       size=(spec.width, spec.height), video_codec="libx264", gop_size=gop,
                       video_options={"preset": spec.preset, "crf": str(spec.crf), "sc_threshold": "0",
                                      "keyint_min": str(gop)},  # keyframes only every gop
                       video_time_base=fractions.Fraction(1, spec.fps),
                       audio=_SyllableTones(spec.seconds, spec.sample_rate, spec.seed),
                       sample_rate=spec.sample_rate)
    write_srt(path.with_suffix(".srt"), spec.cues())
    return path


def cached_film(cache_dir: Union[str, Path], spec: FilmSpec) -> Path:
    """<cache_dir>/<spec.name()>.mp4 (+ .srt), made once."""
    path = Path(cache_dir) / f"{spec.name()}.mp4"
    if not path.exists() or not path.with_suffix(".srt").exists():
        make_textured_film(path, spec)
    return path


__all__ = ["SAMPLE_RATE", "SCENE_COLOURS", "SECOND_COLOURS", "LINES", "FilmSpec", "speech_like", "synthetic_music",
           "encode_film", "write_srt", "make_film", "make_soundtrack_film", "make_colour_film", "make_talking_film",
           "make_audio_only", "av1_encoder", "make_av1", "make_zero_byte", "make_text_as_video", "make_truncated",
           "make_textured_film", "cached_film"]


def sdr_to_pq(rgb: np.ndarray) -> np.ndarray:
    """SDR BT.709 RGB uint8 -> the same picture as an HDR10 master codes it: BT.2020 R'G'B' in PQ, uint16, with
    SDR white at HDR reference white (203 nits): what transforms.hdr undoes."""
    from transforms import hdr
    linear = np.power(rgb.astype(np.float32) / 255.0, hdr.GAMMA) @ hdr.BT709_TO_BT2020.T
    return np.round(hdr.nits_to_pq(linear * hdr.REFERENCE_WHITE_NITS) * 65535.0).astype(np.uint16)


def make_hdr_copy(src, dst) -> Path:
    """`src` re-encoded as an HDR10 master (HEVC Main 10, BT.2020, PQ; frames through sdr_to_pq, same times);
    its audio stream, if any, copied as it is. Even sizes only (4:2:0)."""
    dst = Path(dst)
    with written_atomically(dst) as tmp:
        with av.open(str(src)) as inp, av.open(str(tmp), "w") as out:
            vin = inp.streams.video[0]
            ain = inp.streams.audio[0] if inp.streams.audio else None
            v = out.add_stream("libx265", rate=vin.average_rate or 25)
            v.width, v.height, v.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p10le"
            v.time_base = vin.time_base
            v.options = {"x265-params": "log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc"}
            v.codec_context.color_primaries, v.codec_context.color_trc, v.codec_context.colorspace = 9, 16, 9
            a = out.add_stream_from_template(ain) if ain is not None else None
            for packet in inp.demux(*[s for s in (vin, ain) if s is not None]):
                if packet.stream is ain:
                    if packet.dts is not None:
                        packet.stream = a
                        out.mux(packet)
                    continue
                for frame in packet.decode():
                    hdr = av.VideoFrame.from_ndarray(sdr_to_pq(frame.to_ndarray(format="rgb24")), format="rgb48le")
                    hdr = hdr.reformat(format="yuv420p10le", dst_colorspace="bt2020", dst_color_range="MPEG")
                    hdr.color_primaries, hdr.color_trc, hdr.colorspace = 9, 16, 9
                    hdr.pts, hdr.time_base = frame.pts, frame.time_base
                    out.mux(v.encode(hdr))
            out.mux(v.encode(None))
    return dst


def make_channel_master(path, tracks: Sequence[np.ndarray], fps: int = 10, size: tuple[int, int] = (96, 64),
                        sample_rate: int = SAMPLE_RATE) -> Path:
    """A master as studios deliver them (.mov / .mxf-like): video plus one mono PCM track per channel, in the
    order given (e.g. L, R, C, LFE, Ls, Rs), as long as the first track."""
    seconds = len(tracks[0]) / sample_rate
    return encode_film(path, paint=lambda i, t: _scene_frame(t, size, ()),
                       frame_times=[i / fps for i in range(int(round(seconds * fps)))], fps=fps, size=size,
                       audio=tracks[0], more_audio=tracks[1:], audio_codec="pcm_s16le", sample_rate=sample_rate)
