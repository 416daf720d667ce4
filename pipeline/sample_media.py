"""Synthetic films made with PyAV for the demo and the tests: video + speech-like audio, embedded subtitles,
scene cuts, VFR, AV1 and broken files."""
from __future__ import annotations

import fractions
import os
from pathlib import Path
from typing import Optional, Sequence

import av
import numpy as np


# ffmpeg's text subtitle encoders want an ASS header to open, even for SubRip.
_ASS_HEADER = (b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
               b"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, "
               b"Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, "
               b"Alignment, MarginL, MarginR, MarginV, Encoding\nStyle: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,"
               b"0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n[Events]\nFormat: Layer, Start, End, Style, Name, "
               b"MarginL, MarginR, MarginV, Effect, Text\n")

SCENE_COLOURS = [(200, 40, 40), (40, 180, 60), (40, 60, 200), (220, 200, 40), (160, 40, 160)]


def speech_like(duration_s: float, rate: int = 16000, f0: float = 180.0) -> np.ndarray:
    """A voiced tone with syllable-rate (4 Hz) amplitude modulation and harmonics: crude but speech-shaped."""
    t = np.arange(int(duration_s * rate)) / rate
    voice = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in (1, 2, 3))
    env = 0.5 * (1 + np.sin(2 * np.pi * 4.0 * t)) * (np.sin(2 * np.pi * 0.25 * t) > -0.5)
    return (0.2 * voice * env).astype(np.float32)


def _frame_image(t: float, size: tuple[int, int], cuts: Sequence[float]) -> np.ndarray:
    w, h = size
    scene = sum(t >= c for c in cuts)
    base = np.array(SCENE_COLOURS[scene % len(SCENE_COLOURS)], np.float32)
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = base * (0.75 + 0.25 * np.sin(2 * np.pi * (x + 0.1 * t) + y))  # slow drift, no cut-like jumps
    return np.clip(img, 0, 255).astype(np.uint8)


def make_film(path, duration_s: float = 4.0, fps: int = 10, size: tuple[int, int] = (96, 64),
              audio: bool = True, subtitles: Optional[Sequence[tuple[float, float, str]]] = None,
              cuts: Sequence[float] = (), video_codec: str = "mpeg4", vfr: bool = False,
              garbage_audio: bool = False, sample_rate: int = 16000) -> Path:
    """Write a film. Container from the suffix (.mp4/.mkv/.mov). subtitles: embedded SubRip cues (mkv only).

    vfr: frame durations alternate 1/fps and 3/fps. garbage_audio: the audio stream's packets are random
    bytes, so it exists but cannot be decoded.
    """
    path = Path(path)
    out = av.open(str(path), "w")
    v = out.add_stream(video_codec, rate=fps)
    v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
    if vfr:
        v.time_base = fractions.Fraction(1, 1000)
    a = None
    if audio:
        a = out.add_stream("aac" if not garbage_audio else "mp2", rate=sample_rate)
        a.layout = "mono"
    s = None
    if subtitles:
        s = out.add_stream("subrip")
        s.codec_context.subtitle_header = _ASS_HEADER
        s.time_base = fractions.Fraction(1, 1000)

    # Video frame times.
    times, t = [], 0.0
    while t < duration_s - 1e-9:
        times.append(t)
        t += (1.0 if not vfr or len(times) % 2 else 3.0) / fps
    events = [("v", ft, i) for i, ft in enumerate(times)]
    if subtitles:
        events += [("s", st, k) for k, st in enumerate(c[0] for c in subtitles)]
    if a is not None:
        n_chunks = int(np.ceil(duration_s * sample_rate / 1024))
        events += [("a", k * 1024 / sample_rate, k) for k in range(n_chunks)]
    wave = speech_like(duration_s, sample_rate) if a is not None else None
    rng = np.random.default_rng(0)
    for kind, et, k in sorted(events, key=lambda e: (e[1], e[0])):
        if kind == "v":
            frame = av.VideoFrame.from_ndarray(_frame_image(et, size, cuts), format="rgb24")
            frame.pts = int(round(et * 1000)) if vfr else k
            if vfr:
                frame.time_base = fractions.Fraction(1, 1000)
            for p in v.encode(frame):
                out.mux(p)
        elif kind == "a":
            chunk = wave[k * 1024:(k + 1) * 1024]
            if garbage_audio:
                p = av.Packet(rng.integers(0, 256, 417, dtype=np.uint8).tobytes())
                p.stream, p.time_base = a, fractions.Fraction(1, sample_rate)
                p.pts = p.dts = k * 1152
                out.mux(p)
                continue
            af = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
            af.sample_rate, af.pts = sample_rate, k * 1024
            for p in a.encode(af):
                out.mux(p)
        else:
            st, en, text = subtitles[k]
            p = av.Packet(text.encode("utf-8"))
            p.stream, p.time_base = s, fractions.Fraction(1, 1000)
            p.pts = p.dts = int(st * 1000)
            p.duration = int((en - st) * 1000)
            out.mux(p)
    for p in v.encode(None):
        out.mux(p)
    if a is not None and not garbage_audio:
        for p in a.encode(None):
            out.mux(p)
    out.close()
    return path


def make_audio_only(path, duration_s: float = 3.0, sample_rate: int = 16000) -> Path:
    path = Path(path)
    out = av.open(str(path), "w")
    a = out.add_stream("aac" if path.suffix in (".m4a", ".mp4") else "pcm_s16le" if path.suffix == ".wav"
                       else "libopus" if path.suffix == ".ogg" else "aac", rate=sample_rate)
    a.layout = "mono"
    wave = speech_like(duration_s, sample_rate)
    fmt = a.codec_context.format.name
    for k in range(0, len(wave), 1024):
        chunk = wave[k:k + 1024]
        if fmt.startswith("s16"):
            af = av.AudioFrame.from_ndarray((chunk * 32767).astype(np.int16)[None, :], format="s16", layout="mono")
        else:
            af = av.AudioFrame.from_ndarray(chunk[None, :], format="flt" if fmt == "flt" else "fltp", layout="mono")
        af.sample_rate, af.pts = sample_rate, k
        for p in a.encode(af):
            out.mux(p)
    for p in a.encode(None):
        out.mux(p)
    out.close()
    return path


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
    enc = av1_encoder()
    if enc is None:
        return None
    try:
        return make_film(path, duration_s=duration_s, fps=10, size=(128, 96), video_codec=enc)
    except Exception:  # noqa: BLE001 - encoder present but unusable in this build
        return None


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


def write_srt(path, cues: Sequence[tuple[float, float, str]], encoding: str = "utf-8", crlf: bool = False) -> Path:
    def ts(t):
        ms = int(round(t * 1000))
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"
    nl = "\r\n" if crlf else "\n"
    body = nl.join(f"{i + 1}{nl}{ts(a)} --> {ts(b)}{nl}{text.replace(chr(10), nl)}{nl}" for i, (a, b, text) in enumerate(cues))
    Path(path).write_bytes(body.encode(encoding))
    return Path(path)
