"""Realistic synthetic films for benchmarks and tests, written with PyAV.

Moving textured noise (a random texture panned across the frame, a new texture every `shot_s` so there are
shot cuts), H.264 with a fixed keyframe interval, AAC audio (voiced-like tones with a syllable rhythm over
noise), and a sidecar .srt with a line every few seconds.
"""
from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

LINES = ("Where were you last night?", "I can't believe you did that!", "Get out of here, now.",
         "That is the best news I've heard all year.", "Please, don't leave me here alone.",
         "Oh no. What happened to the ship?", "We did it, we actually did it!", "Fine. Whatever you say.",
         "Did you hear something just now?", "I miss her every single day.")


@dataclasses.dataclass(frozen=True)
class FilmSpec:
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

    def name(self) -> str:
        return f"noise_{self.width}x{self.height}_{int(self.seconds)}s_gop{int(self.gop_s)}"


def _srt_time(t: float) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def write_srt(path: Path, spec: FilmSpec) -> int:
    lines, t, i = [], 1.0, 0
    while t + spec.cue_len_s < spec.seconds:
        lines.append(f"{i + 1}\n{_srt_time(t)} --> {_srt_time(t + spec.cue_len_s)}\n{LINES[i % len(LINES)]}\n")
        t += spec.cue_every_s
        i += 1
    path.write_text("\n".join(lines), encoding="utf-8")
    return i


def make_film(path: str | Path, spec: FilmSpec) -> Path:
    """Write the film (and <stem>.srt beside it). Returns the film path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    with av.open(str(tmp), "w") as out:
        v = out.add_stream("libx264", rate=spec.fps)
        v.width, v.height, v.pix_fmt = spec.width, spec.height, "yuv420p"
        v.gop_size = int(round(spec.gop_s * spec.fps))
        v.options = {"preset": "ultrafast", "crf": str(spec.crf), "sc_threshold": "0",  # keyframes only every gop
                     "keyint_min": str(v.gop_size)}
        v.time_base = Fraction(1, spec.fps)
        a = out.add_stream("aac", rate=spec.sample_rate)
        a.layout = "mono"
        n_frames = int(spec.seconds * spec.fps)
        texture = None
        for i in range(n_frames):
            t = i / spec.fps
            if texture is None or (i % int(spec.shot_s * spec.fps) == 0):
                texture = _texture(rng, spec.height * 2, spec.width * 2)
            dx, dy = int(t * 37) % spec.width, int(t * 19) % spec.height  # slow pan
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(
                texture[dy:dy + spec.height, dx:dx + spec.width]), format="rgb24")
            frame.pts = i
            for packet in v.encode(frame):
                out.mux(packet)
        for packet in v.encode():
            out.mux(packet)
        chunk = 1024
        total = int(spec.seconds * spec.sample_rate)
        for start in range(0, total, chunk):
            tt = (start + np.arange(min(chunk, total - start))) / spec.sample_rate
            syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * tt)  # ~4 syllables a second
            pitch = 140 + 40 * np.sin(2 * np.pi * 0.3 * tt)
            wave = 0.2 * syllables * np.sin(2 * np.pi * pitch * tt) + 0.01 * rng.standard_normal(tt.size)
            af = av.AudioFrame.from_ndarray(wave.astype(np.float32)[None], format="flt", layout="mono")
            af.sample_rate, af.pts = spec.sample_rate, start
            for packet in a.encode(af):
                out.mux(packet)
        for packet in a.encode():
            out.mux(packet)
    tmp.replace(path)
    write_srt(path.with_suffix(".srt"), spec)
    return path


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Blocky coloured noise, smoothed a little: textured, but compressible like real footage."""
    small = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
    big = np.repeat(np.repeat(small, 16, 0), 16, 1)[:h, :w]
    fine = rng.integers(0, 8, (h, w, 1), dtype=np.uint8)
    return np.clip(big.astype(np.int16) + fine - 4, 0, 255).astype(np.uint8)


def cached_film(cache_dir: str | Path, spec: FilmSpec) -> Path:
    path = Path(cache_dir) / f"{spec.name()}.mp4"
    if not path.exists() or not path.with_suffix(".srt").exists():
        make_film(path, spec)
    return path
