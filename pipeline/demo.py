"""`python -m pipeline.demo --output DIR [pipeline.run options]`: make a small demo archive, then run the pipeline.

The archive (DIR/archive) is made here with PyAV, so the demo needs nothing outside the project: two short
films with speech-like audio and dialogue (one with a sidecar .srt, one with an embedded subtitle stream), a
Blu-ray-style rip whose subtitles are PGS pictures (read by OCR), an IMF package (a title in picture, sound and
subtitle track files) and one broken file. The pipeline writes its tables to DIR/output; run it twice to see every film skipped.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.run import main as run_main
from testing.films import make_film, make_text_as_video, write_srt
from testing.packages import imsc_track, picture_track, sound_track, write_package
from testing.picture_subs import with_picture_track

DIALOGUE = [(0.5, 2.5, "I can't believe you came back!"), (3.0, 5.0, "I told you I would."),
            (6.0, 8.5, "Get out. Now."), (9.0, 11.0, "Please, just listen to me...")]


def make_demo_archive(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "reunion.mp4").exists():
        make_film(root / "reunion.mp4", duration_s=12.0, fps=12, size=(320, 180), cuts=[5.8])
        write_srt(root / "reunion.en.srt", DIALOGUE, crlf=True)
    if not (root / "storm.mkv").exists():
        make_film(root / "storm.mkv", duration_s=10.0, fps=12, size=(320, 180), cuts=[4.0, 7.0],
                  subtitles=[(1.0, 3.0, "Look out, the storm is coming!"), (5.0, 6.5, "Run!")])
    if not (root / "rooftop.mkv").exists():  # a rip: its only subtitles are pictures
        source = make_film(root / "rooftop.source.mp4", duration_s=8.0, fps=12, size=(320, 180), cuts=[4.0])
        with_picture_track(source, root / "rooftop.mkv", "pgs", [(s, e, [t]) for s, e, t in RIP_LINES], language="eng")
        source.unlink()
    if not (root / "broken.mp4").exists():
        make_text_as_video(root / "broken.mp4")  # fails with a clear error row; the run goes on
    if not (root / "Nightfall_IMF" / "ASSETMAP.xml").exists():
        make_demo_package(root / "Nightfall_IMF")
    return root


RIP_LINES = [(0.5, 3.0, "Don't look down."), (4.5, 7.0, "I'm not scared of heights, I'm scared of you!")]
PACKAGE_LINES = [[(0.5, 2.5, "We made it. We actually made it!")], [(0.5, 2.5, "Why did you leave me out there?")]]


def make_demo_package(folder: Path) -> Path:
    """An IMF package as a studio delivers a title: two reels, each a JPEG 2000 picture, a PCM sound and an IMSC1
    subtitle track file, joined by a composition playlist; the pipeline scores it as one title."""
    folder.mkdir(parents=True, exist_ok=True)
    reels = []
    for i, (colour, lines) in enumerate(zip([(200, 140, 60), (40, 50, 110)], PACKAGE_LINES)):
        reels.append({"picture": picture_track(folder / f"reel{i + 1}_picture.mxf", [colour] * 3, size=(320, 180)),
                      "sound": sound_track(folder / f"reel{i + 1}_sound.mxf", 3.0, freq=220.0 * (i + 1)),
                      "subtitles": imsc_track(folder / f"reel{i + 1}_subtitles_en.mxf", lines), "frames": 72})
    return write_package(folder, reels, title="Nightfall")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="demo", help="Folder for the demo archive and the pipeline output.")
    args, rest = parser.parse_known_args(argv)
    root = Path(args.output)
    archive = make_demo_archive(root / "archive")
    print(f"demo archive: {archive} ({sum(f.is_file() for f in archive.rglob('*'))} files)", flush=True)
    # the folder itself, taken literally (before 2026-12-06 'archive/**' read a '[1]' in --output as a pattern)
    return run_main(["--input", str(archive), "--output", str(root / "output")] + rest)


if __name__ == "__main__":
    sys.exit(main())
