"""Studio masters with an intra-only picture through the decode pass: every frame decoded against only the frames
beside the sample times.

    python -m benchmarks.intra_masters [--seconds 10] [--size 1920x1080] [--out DIR]

Writes a film of moving noise-textured scenes (a hard case for the codecs: many bits a frame) as an IMF package
(JPEG 2000 picture and PCM sound track files, testing.packages) and as a ProRes 422 HQ .mov, then runs the
pipeline's decode pass (transforms.decode.decode_film, default options: 4 s subtitle-gap windows, a frame a
second at most 4 a clip, faces at 480 px) with `skip_nonref` on (the default: an intra-only picture decodes only
the two frames around each sample time) and off (`--decode_all_frames`: every frame). The table gives
film-seconds per wall-second and the frames decoded; the clips of both passes are compared bit for bit.
"""
from __future__ import annotations

import argparse
import logging
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

FPS = 24


def scene(i: int, size: tuple[int, int], rng_seed: int = 0) -> np.ndarray:
    """Frame i: a textured scene that pans, a new scene every 4 s."""
    w, h = size
    cut = i // (4 * FPS)
    rng = np.random.default_rng(rng_seed + cut)
    base = rng.integers(0, 255, (h // 8, w // 8 + 64, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    shift = (i % (4 * FPS)) * 4
    return np.ascontiguousarray(base[:h, shift:shift + w])


def write_films(folder: Path, seconds: int, size: tuple[int, int]) -> dict[str, Path]:
    import av

    from testing.films import encode_film, speech_like
    from testing.packages import sound_track, write_package
    n = seconds * FPS
    pkg = folder / "Master_IMF"
    pkg.mkdir(parents=True, exist_ok=True)
    with av.open(str(pkg / "picture.mxf"), "w", format="mxf") as out:
        s = out.add_stream("jpeg2000", rate=FPS)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv422p10le"
        for i in range(n):
            out.mux(s.encode(av.VideoFrame.from_ndarray(scene(i, size), format="rgb24")))
        out.mux(s.encode())
    sound_track(pkg / "sound.mxf", seconds)
    cpl = write_package(pkg, [{"picture": pkg / "picture.mxf", "sound": pkg / "sound.mxf", "frames": n}])
    prores = encode_film(folder / "master_prores.mov", paint=lambda i, t: scene(i, size),
                         frame_times=[i / FPS for i in range(n)], fps=FPS, size=size, video_codec="prores_ks",
                         audio=speech_like(float(seconds)))
    return {"IMF, JPEG 2000": cpl, "ProRes 422 .mov": prores}


def decode_pass(path: Path, skip: bool) -> tuple[float, dict, list]:
    from tests.test_decode import job_for
    from transforms.decode import BY_FILM, DecodeConfig, DecodedClip, decode_film
    stats: dict = {}
    start = time.perf_counter()
    clips = [(c.spec.start_s, list(c.frame_times), c.frames.tobytes(), c.audio.tobytes())
             for c in decode_film(job_for(path), DecodeConfig(skip_nonref=skip, decode_threads=BY_FILM), stats=stats)
             if isinstance(c, DecodedClip)]
    return time.perf_counter() - start, stats, clips


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--out", help="keep the films here (default: a temporary folder)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # (a frame FFmpeg's JPEG 2000 decoder refuses is a warning row)
    size = tuple(int(x) for x in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.out or tmp)
        t0 = time.perf_counter()
        films = write_films(folder, args.seconds, size)
        print(f"wrote {args.seconds} s at {size[0]}x{size[1]}, {FPS} fps in {time.perf_counter() - t0:.0f} s")
        print("| master | pass | wall s | film-s / wall-s | frames decoded | frames skipped | clips identical |")
        print("|---|---|---|---|---|---|---|")
        for name, path in films.items():
            runs = {skip: decode_pass(path, skip) for skip in (False, True)}
            for skip in (False, True):
                wall, stats, clips = runs[skip]
                decoded = stats["n_video_frames"] - stats["skipped_frames"]
                print(f"| {name} | {'beside sample times (default)' if skip else 'every frame'} | {wall:.1f} | "
                      f"{args.seconds / wall:.2f}x | {decoded} | {stats['skipped_frames']} | "
                      f"{'-' if not skip else 'yes' if clips == runs[False][2] else 'NO'} |")
        print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
