"""Studio masters with an intra-only picture through the decode pass: every frame decoded against only the frames
beside the sample times.

    python -m benchmarks.intra_masters [--seconds 10] [--size 1920x1080] [--labels N] [--out DIR]

Writes a film of moving noise-textured scenes (a hard case for the codecs: many bits a frame) as an IMF package
(JPEG 2000 picture and PCM sound track files, testing.packages) and as a ProRes 422 HQ .mov, then runs the
pipeline's decode pass (transforms.decode.decode_film, default options: 4 s subtitle-gap windows, a frame a
second at most 4 a clip, faces at 480 px) three ways: every frame at full size (`--decode_all_frames`); only the two
frames around each sample time (an intra-only picture: each frame decodes on its own), full size; and that at a
reduced size (the default: JPEG 2000 decoded at half or a quarter size where that is still twice the size of every
copy the models read, `transforms.decode.reduced_resolution`). The table gives film-seconds per wall-second, the
frames decoded, and how the clips compare with the first pass: bit for bit, or the grey-level difference of the
frames the models read. Two pictures: 8x8-pixel noise (a worst case for a reduced decode: detail at every scale) and
a wall of Emotion6 dev photos at their own resolution (natural detail), each panning.
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


def photo_wall(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Emotion6 dev photos side by side at their own resolution (no scaling: natural detail at the master's size),
    wider than the frame so that it can pan."""
    import io

    import pyarrow.parquet as pq
    from PIL import Image
    photos = pq.read_table(PHOTOS, columns=["image"]).column("image").to_pylist()
    rng = np.random.default_rng(seed)
    w, h = size
    wall = np.zeros((h, w + 256, 3), np.uint8)
    for y in range(0, h, 240):
        for x in range(0, w + 256, 320):
            img = np.asarray(Image.open(io.BytesIO(photos[rng.integers(len(photos))])).convert("RGB"))[:240, :320]
            tile = wall[y:y + img.shape[0], x:x + img.shape[1]]
            tile[...] = img[:tile.shape[0], :tile.shape[1]]
    return wall


PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "scenes" / "emotion6" / "dev.parquet"


def write_films(folder: Path, seconds: int, size: tuple[int, int]) -> dict[str, Path]:
    import av

    from testing.films import encode_film, speech_like
    from testing.packages import sound_track, write_package
    n = seconds * FPS
    wall = photo_wall(size) if PHOTOS.exists() else None
    pictures = {"noise": lambda i: scene(i, size)}
    if wall is not None:
        pictures["photos"] = lambda i: np.ascontiguousarray(wall[:, (i * 4) % 256:(i * 4) % 256 + size[0]])
    films = {}
    for texture, paint in pictures.items():
        pkg = folder / f"Master_IMF_{texture}"
        pkg.mkdir(parents=True, exist_ok=True)
        with av.open(str(pkg / "picture.mxf"), "w", format="mxf") as out:
            s = out.add_stream("jpeg2000", rate=FPS)
            s.width, s.height, s.pix_fmt = size[0], size[1], "yuv422p10le"
            for i in range(n):
                out.mux(s.encode(av.VideoFrame.from_ndarray(paint(i), format="rgb24")))
            out.mux(s.encode())
        sound_track(pkg / "sound.mxf", seconds)
        films[f"IMF, JPEG 2000, {texture}"] = write_package(
            pkg, [{"picture": pkg / "picture.mxf", "sound": pkg / "sound.mxf", "frames": n}])
    films["ProRes 422 .mov, noise"] = encode_film(
        folder / "master_prores.mov", paint=lambda i, t: scene(i, size), frame_times=[i / FPS for i in range(n)],
        fps=FPS, size=size, video_codec="prores_ks", audio=speech_like(float(seconds)))
    return films


PASSES = {"every frame, full size (--decode_all_frames --decode_full_size)": (False, False),
          "beside sample times, full size (--decode_full_size)": (True, False),
          "beside sample times, reduced size (default)": (True, True)}


def decode_pass(path: Path, skip: bool, reduce: bool) -> tuple[float, dict, list]:
    from benchmarks._bench_work import film_job
    from transforms.decode import BY_FILM, DecodeConfig, DecodedClip, decode_film
    stats: dict = {}
    cfg = DecodeConfig(skip_nonref=skip, reduce_size=reduce, decode_threads=BY_FILM)
    start = time.perf_counter()
    clips = [c for c in decode_film(film_job(str(path)), cfg, stats=stats) if isinstance(c, DecodedClip)]
    return time.perf_counter() - start, stats, clips


def same(a: list, b: list) -> bool:
    return [(c.spec, list(c.frame_times), c.frames.tobytes(), c.face_frames.tobytes(), c.audio.tobytes()) for c in a] \
        == [(c.spec, list(c.frame_times), c.frames.tobytes(), c.face_frames.tobytes(), c.audio.tobytes()) for c in b]


def difference(a: list, b: list) -> str:
    """Mean and 99th-percentile absolute difference (grey levels) of the ViT frames / the face detector's frames."""
    out = []
    for key in ("frames", "face_frames"):
        d = np.concatenate([np.abs(getattr(x, key).astype(np.int16) - getattr(y, key)).ravel() for x, y in zip(a, b)])
        out.append(f"{d.mean():.2f} / {np.percentile(d, 99):.0f}")
    return ", ".join(out)


def label_check(folder: Path, n: int, size: tuple[int, int]) -> None:
    """n labelled frames (benchmarks.faces_in_scenes': an IMFDB dev face in an Emotion6 dev photo, 720x576) each held
    a second in the middle of a JPEG 2000 picture of `size` (each frame encoded once, its packet repeated), through
    pipeline.run with the shipped models, 1 s windows: at the reduced size (default) and at full size. Prints the
    faces found, the label's accuracy and how many clips keep their label, face evidence and scene evidence."""
    import io

    import av
    import pyarrow.parquet as pq
    from PIL import Image

    from benchmarks.faces_in_scenes import CACHE, make_frames
    from pipeline.run import run
    from testing.packages import sound_track, write_package
    band = (0.25, 0.45)
    frames = pq.read_table(make_frames(CACHE / f"faces_in_scenes-{band[0]}-{band[1]}-{n}.parquet", n, band)).to_pylist()
    pkg = folder / "Labelled_IMF"
    pkg.mkdir(parents=True, exist_ok=True)
    with av.open(str(pkg / "picture.mxf"), "w", format="mxf") as out:
        s = out.add_stream("jpeg2000", rate=FPS)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv422p10le"
        for i, row in enumerate(frames):
            still = np.asarray(Image.open(io.BytesIO(row["image"])).convert("RGB"))
            canvas = np.zeros((size[1], size[0], 3), np.uint8)
            y, x = (size[1] - still.shape[0]) // 2, (size[0] - still.shape[1]) // 2
            canvas[y:y + still.shape[0], x:x + still.shape[1]] = still
            (packet,) = s.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")) or [None]
            for k in range(FPS):  # the same frame for a second: its packet again, a frame later each time
                copy = av.Packet(bytes(packet))
                copy.stream, copy.pts, copy.dts = s, i * FPS + k, i * FPS + k
                out.mux(copy)
    sound_track(pkg / "sound.mxf", len(frames))
    write_package(pkg, [{"picture": pkg / "picture.mxf", "sound": pkg / "sound.mxf", "frames": len(frames) * FPS}])
    runs, speed = {}, {}
    for name, extra in (("reduced size (default)", []), ("full size (--decode_full_size)", ["--decode_full_size"]),
                        ("reduced size, decode only (--no_score)", ["--no_score"])):
        out_dir = folder / f"labelled_out_{len(speed)}"
        start = time.perf_counter()
        run(["--input", str(pkg), "--output", str(out_dir), "--segment", "window", "--window_s", "1",
             "--transcribe", "never", "--torch_threads", "2"] + extra)
        speed[name] = len(frames) / (time.perf_counter() - start)
        if "--no_score" in extra:
            continue
        rows = sorted((r for f in sorted((out_dir / "clips").glob("*.parquet")) for r in pq.read_table(f).to_pylist()),
                      key=lambda r: r["start_s"])
        runs[name] = rows[:len(frames)]
    truth = [r["label"] for r in frames]
    full = runs["full size (--decode_full_size)"]
    print(f"\n{len(frames)} labelled frames (faces_in_scenes, 720x576) in a {size[0]}x{size[1]} JPEG 2000 picture, "
          "each held 1 s:")
    print("| decode | faces found | label accuracy | clips keeping the full-size label / face evidence label / "
          "scene evidence label |\n|---|---|---|---|")
    for name, rows in runs.items():
        found = sum(bool(r["evidence_face"]) for r in rows) / len(rows)
        acc = sum(r["emotion"] == t for r, t in zip(rows, truth)) / len(rows)

        def top(p):
            return int(np.argmax(p)) if p else None
        keep = [sum(f(a) == f(b) for a, b in zip(rows, full)) for f in (
            lambda r: r["emotion"], lambda r: top(r["evidence_face"]), lambda r: top(r["evidence_scene"]))]
        print(f"| {name} | {found:.3f} | {acc:.3f} | {' / '.join(str(k) for k in keep)} of {len(rows)} |")
    print("\npipeline.run on that title, 1 s windows, every modality, one process, start-up included: "
          + "; ".join(f"{name} {x:.2f}x real time" for name, x in speed.items()))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10, help="length of the speed table's films (0: no table)")
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--out", help="keep the films here (default: a temporary folder)")
    ap.add_argument("--labels", type=int, default=0, metavar="N",
                    help="also run N labelled frames through pipeline.run at reduced and full size (label_check)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # (a frame FFmpeg's JPEG 2000 decoder refuses is a warning row)
    size = tuple(int(x) for x in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.out or tmp)
        t0 = time.perf_counter()
        films = write_films(folder, args.seconds, size) if args.seconds else {}
        print(f"wrote {args.seconds} s at {size[0]}x{size[1]}, {FPS} fps in {time.perf_counter() - t0:.0f} s")
        print("| master | pass | wall s | film-s / wall-s | frames decoded | frames skipped | clips against every "
              "frame, full size: identical, or mean / 99th pct. difference in grey levels (ViT frames, face frames) |")
        print("|---|---|---|---|---|---|---|")
        for name, path in films.items():
            runs = {label: decode_pass(path, *how) for label, how in PASSES.items()}
            full = runs[next(iter(PASSES))][2]
            for label, (wall, stats, clips) in runs.items():
                decoded = stats["n_video_frames"] - stats["skipped_frames"]
                versus = "-" if clips is full else "identical" if same(clips, full) else difference(clips, full)
                print(f"| {name} | {label} | {wall:.1f} | {args.seconds / wall:.2f}x | {decoded} | "
                      f"{stats['skipped_frames']} | {versus} |", flush=True)
        print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        if args.labels:
            label_check(folder, args.labels, size)


if __name__ == "__main__":
    main()
