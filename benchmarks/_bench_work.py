"""The measured work of benchmarks/throughput.py's decode, model and naive modes (run in a child process).

Each returns {'wall_s', 'clips', 'load_s', 'cpu_s'}: wall_s is the measured time (models already loaded), load_s the
model loading time (reported beside it, not in it), cpu_s the CPU seconds used in wall_s (the naive mode's ffmpeg
processes included).
"""
from __future__ import annotations

import dataclasses
import os
import time

import numpy as np

from benchmarks.throughput import cpu_seconds


def film_job(film: str):
    """The FilmJob the pipeline would build for this film: probe + sidecar subtitles."""
    from transforms.discover import film_id_for
    from transforms.elements import FilmJob, FilmRef
    from transforms.probe import probe_film
    from transforms.subtitles import load_cues
    ref = FilmRef(path=film, size_bytes=os.path.getsize(film), film_id=film_id_for(film))
    info = probe_film(film)
    cues, _, _ = load_cues(ref, info)
    return FilmJob(ref=ref, info=info, cues=tuple(cues), needs_asr=False, config_hash="bench")


def decode_config(args=None):
    """The pipeline's DecodeConfig with the benchmark's frame and deblocking levers applied. Decoding uses FFmpeg's
    own threads here (decode_threads 0) unless --decode_threads says otherwise: the decode bound is decoding alone at
    its fastest; pipeline.run decodes on one thread beside CPU models (transforms.decode.decoding_threads)."""
    from transforms.decode import DecodeConfig
    levers = {} if getattr(args, "frame_every_s", None) is None else {"frame_every_s": args.frame_every_s}
    if getattr(args, "decode_threads", None) is not None:
        levers["decode_threads"] = args.decode_threads
    if getattr(args, "decode_deblock", False):
        levers["skip_loop_filter"] = False
    return DecodeConfig(**levers)


def decoded_clips(film: str, args=None):
    from transforms.decode import decode_film
    from transforms.elements import DecodedClip
    for item in decode_film(film_job(film), decode_config(args)):
        if isinstance(item, DecodedClip):
            yield item


def decode(film: str, args) -> dict:
    from transforms import language
    language.load()  # a worker's one-time start-up, as model loading is in the other modes
    t0, c0 = time.perf_counter(), cpu_seconds()
    n = sum(1 for _ in decoded_clips(film, args))
    return {"wall_s": time.perf_counter() - t0, "clips": n, "load_s": 0.0, "cpu_s": cpu_seconds() - c0}


class Models:
    """The pipeline's own scorer (transforms.score.FilmScorer: featurizer + head), called directly (no Beam)."""

    def __init__(self, args, batch_size: int):
        from transforms.score import FilmScorer, ScoreConfig
        t0 = time.perf_counter()
        # the benchmark's flags under pipeline.run's names, read the way pipeline.run reads its options
        config = ScoreConfig.from_options(args)
        self.scorer = FilmScorer(dataclasses.replace(config, batch_size=batch_size)).load()
        self.load_s = time.perf_counter() - t0

    def score(self, clips: list) -> list:
        return self.scorer.score(clips)


def model(film: str, args) -> dict:
    m = Models(args, args.batch_size)
    spent = {"wall_s": 0.0, "cpu_s": 0.0, "clips": 0}

    def score(batch: list) -> None:  # only the models' calls are timed
        t0, c0 = time.perf_counter(), cpu_seconds()
        spent["clips"] += len(m.score(batch))
        spent["wall_s"] += time.perf_counter() - t0
        spent["cpu_s"] += cpu_seconds() - c0

    batch = []
    for clip in decoded_clips(film, args):
        batch.append(clip)
        if len(batch) == args.batch_size:
            score(batch)
            batch = []
    if batch:
        score(batch)
    from model.featurize import SECONDS
    return {**spent, "load_s": m.load_s, "stages": dict(SECONDS)}


def naive_decode_clip(film: str, spec, film_id: str, every_s: float, frames_per_clip: int = 4,
                      size: int = 224):
    """What a per-clip script does: one ffmpeg process per clip (the static binary imageio-ffmpeg carries),
    seeking to the clip and writing its sampled frames (raw RGB, squashed to size x size; as many as the
    pipeline samples) to a pipe and its 16 kHz mono audio to a temporary file."""
    import subprocess
    import tempfile
    import imageio_ffmpeg
    from model.featurize import frames_for
    from transforms.elements import DecodedClip
    dur = max(spec.end_s - spec.start_s, 1e-3)
    frames_per_clip = frames_for(spec.start_s, spec.end_s, frames_per_clip, every_s)
    with tempfile.NamedTemporaryFile(suffix=".f32") as wav:
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-nostdin", "-ss", f"{spec.start_s:.3f}",
               "-t", f"{dur:.3f}", "-i", film,
               "-map", "0:v:0", "-vf", f"fps={frames_per_clip / dur:.6f},scale={size}:{size}",
               "-frames:v", str(frames_per_clip), "-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1",
               "-map", "0:a:0?", "-ac", "1", "-ar", "16000", "-f", "f32le", "-y", wav.name]
        raw = subprocess.run(cmd, check=True, capture_output=True).stdout
        audio = np.fromfile(wav.name, dtype=np.float32)
    frames = np.frombuffer(raw, np.uint8).reshape(-1, size, size, 3)
    times = spec.start_s + (np.arange(len(frames)) + 0.5) * dur / max(len(frames), 1)
    return DecodedClip(film_id=film_id, spec=spec, frames=frames, frame_times=times, audio=audio, film_path=film)


def naive(film: str, args) -> dict:
    """The naive baseline: per clip, one ffmpeg process and one unbatched model call."""
    from transforms.decode import plan_known_clips
    job = film_job(film)
    cfg = decode_config(args)
    specs = plan_known_clips(job, cfg)
    m = Models(args, 1)
    t0, c0 = time.perf_counter(), cpu_seconds() + cpu_seconds(children=True)
    for spec in specs:
        m.score([naive_decode_clip(film, spec, job.ref.film_id, cfg.frame_every_s)])
    return {"wall_s": time.perf_counter() - t0, "clips": len(specs), "load_s": m.load_s,
            "cpu_s": cpu_seconds() + cpu_seconds(children=True) - c0}
