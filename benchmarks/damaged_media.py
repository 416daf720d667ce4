"""Damaged films through the decode pass: does a damaged stretch cost only itself?

    python -m benchmarks.damaged_media [--seeds 6] [--out DIR]

A 20 s 320x240 film (h264 + aac, 25 fps, a speech-like sound) is written as mp4, mkv and MPEG-TS (and as an AVI
with MPEG-4 video and MP3 sound, as DivX-era archives hold), then copied with
random bytes over part of it (testing.films.make_damaged: 1 % from 30 % of the way in, 10 % from halfway, 30 % from a
fifth), one copy per seed. Each copy goes through the pipeline's decode pass (transforms.decode.decode_film, the
job pipeline.run builds) and the table gives, per container and damage, how many copies came out the film's length
(20 s +- 0.5 s), the lengths seen, the copies whose last clip (16-20 s, after every damaged stretch) has sound, and
the warning rows written (`AudioGap`: a hole in the sound that no failing packet explains, the damage the
mkv and TS demuxers skip unseen).
Before 2026-12-05, 42 of the 54 copies came out 130-445 s long (the frames after the damage read as clock
restarts) and the mp4 copies lost their sound for the rest of the film.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

DAMAGE = ((0.3, 0.01), (0.5, 0.1), (0.2, 0.3))  # (from this share of the file, this share of its bytes)
SECONDS, FPS = 20.0, 25


CODECS = {"avi": ("mpeg4", "libmp3lame")}  # a DivX-era AVI; the others h264 + aac


def whole_film(path: Path) -> Path:
    from testing.films import encode_film, speech_like
    video, audio = CODECS.get(path.suffix[1:], ("h264", "aac"))
    return encode_film(path, paint=lambda i, t: np.full((240, 320, 3), (i * 7) % 255, np.uint8),
                       frame_times=[i / FPS for i in range(int(SECONDS * FPS))], fps=FPS, size=(320, 240),
                       video_codec=video, audio=speech_like(SECONDS), audio_codec=audio)


def decode_copy(path: Path) -> dict:
    from benchmarks._bench_work import decode_config, film_job
    from transforms.decode import BY_FILM, decode_film
    from transforms.elements import DecodedClip, FilmError
    stats: dict = {}
    clips, rows = [], []
    # FFmpeg's threads as pipeline.run picks them on CPU (one for a film this small): a decoder's many threads meet
    # damaged data in an order that varies from run to run, and once in a while gave a frame another's time
    cfg = dataclasses.replace(decode_config(), decode_threads=BY_FILM)
    for item in decode_film(film_job(str(path)), cfg, stats=stats):
        (clips if isinstance(item, DecodedClip) else rows if isinstance(item, FilmError) else []).append(item)
    end, last = stats["media_end_s"], clips[-1].audio if clips else np.zeros(0)
    return {"end_s": end, "whole": abs(end - SECONDS) <= 0.5, "clips": len(clips),
            "last_sound": bool(last.size and float(np.abs(last).mean()) > 0.01),
            "rows": Counter(r.error_type for r in rows)}


def main(argv=None) -> list[dict]:
    from testing.films import make_damaged
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=6)
    p.add_argument("--out", default=None, help="folder for the films (default: a temporary one)")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)  # the decode pass logs each warning row; the table counts them
    work = Path(args.out or tempfile.mkdtemp(prefix="damaged_media_"))
    work.mkdir(parents=True, exist_ok=True)
    table = []
    print("| container | damage | copies the film's length | lengths seen (s) | last clip has sound | warning rows |")
    print("|---|---|---|---|---|---|")
    for ext in ("mp4", "mkv", "ts", "avi"):
        source = whole_film(work / f"whole.{ext}")
        for at, share in DAMAGE:
            results = [decode_copy(make_damaged(work / f"damaged_{seed}.{ext}", source, at, share, seed))
                       for seed in range(args.seeds)]
            rows = sum((r["rows"] for r in results), Counter())
            lengths = sorted({round(r["end_s"], 1) for r in results})
            line = {"container": ext, "at": at, "share": share, "whole": sum(r["whole"] for r in results),
                    "copies": len(results), "lengths": lengths, "last_sound": sum(r["last_sound"] for r in results),
                    "rows": dict(rows)}
            table.append(line)
            print(f"| {ext} | {share:.0%} from {at:.0%} | {line['whole']} of {line['copies']} | "
                  f"{', '.join(f'{x:g}' for x in lengths)} | {line['last_sound']} of {line['copies']} | "
                  f"{', '.join(f'{k} {v}' for k, v in sorted(rows.items())) or '-'} |")
    return table


if __name__ == "__main__":
    main()
