"""Pictures inside black bars, through the full visual path: the bars cut off (the default) or kept.

    python -m benchmarks.black_bars [--threads 2] [--json out.json]

A scope film delivered in a 16:9 frame carries bars above and below its picture (letterbox), 4:3 material in an HD
frame bars beside it (pillarbox). The scene classifier learnt from photos without bars. Each Emotion6 dev photo is
read as given, at its own shape inside a 1280x720 frame (pillarbox, for the usual 4:3 photo), and as a 2.39:1 band
of it, alone and inside a 1280x720 frame (letterbox); the barred ones with the bars cut off
(transforms.picture_area, as a run does) and kept (as before 2026-12-07). Dev data only; frames are made once into
.cache/bench/ and read as `frames:` data (pipeline.evaluate's path: detection, faces, scene tokens). Per variant:
the share of stills whose bars were found, and the label a run writes (accuracy, weighted F1, ECE).
"""
from __future__ import annotations

import argparse
import io
import json
import os
from pathlib import Path

import numpy as np
import torch

from benchmarks.faces_in_scenes import CACHE, DATA, score_frames
from model.files import written_atomically

FRAME = (1280, 720)
SCOPE = 2.39


def _boxed(photo, band: bool):
    """The photo (a PIL image) at its own shape inside FRAME (band: its central 2.39:1 band, at FRAME's width)."""
    from PIL import Image
    if band:
        photo = _band(photo).resize((FRAME[0], int(round(FRAME[0] / SCOPE))))
    else:
        s = min(FRAME[0] / photo.width, FRAME[1] / photo.height)
        photo = photo.resize((int(round(photo.width * s)), int(round(photo.height * s))))
    frame = Image.new("RGB", FRAME)
    frame.paste(photo, ((FRAME[0] - photo.width) // 2, (FRAME[1] - photo.height) // 2))
    return frame


def _band(photo):
    h = min(photo.height, int(round(photo.width / SCOPE)))
    y = (photo.height - h) // 2
    return photo.crop((0, y, photo.width, y + h))


VARIANTS = {"given": lambda p: p, "pillarbox": lambda p: _boxed(p, False), "band": _band,
            "letterbox": lambda p: _boxed(p, True)}


def make_frames(out: Path, variant: str, data: Path = DATA) -> Path:
    """Emotion6 dev as one variant (JPEG, quality 90), a Parquet of image, label; reused when present."""
    if out.exists():
        return out
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image
    rows = []
    for row in pq.read_table(data / "scenes" / "emotion6" / "dev.parquet", columns=["image", "label"]).to_pylist():
        buf = io.BytesIO()
        VARIANTS[variant](Image.open(io.BytesIO(row["image"])).convert("RGB")).save(buf, "JPEG", quality=90)
        rows.append({"image": buf.getvalue(), "label": row["label"]})
    with written_atomically(out) as tmp:
        pq.write_table(pa.Table.from_pylist(rows), tmp)
    return out


def bars_found(path: Path) -> float:
    """The share of a Parquet's images whose bars transforms.picture_area finds (crop_still)."""
    import pyarrow.parquet as pq

    from transforms.decode import decode_image
    from transforms.picture_area import crop_still
    images = pq.read_table(path, columns=["image"]).column("image").to_pylist()
    return float(np.mean([crop_still(im).shape != im.shape for im in map(decode_image, images)]))


def main(argv=None) -> list[dict]:
    import transforms.decode as decode
    from model.checkpoints import load_head
    from model.encoders import EncoderSpec, create_encoders
    from model.featurize import Featurizer

    p = argparse.ArgumentParser(prog="python -m benchmarks.black_bars", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--head", default=None)
    p.add_argument("--data_root", default=str(DATA))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, _ = load_head(args.head)
    enc = create_encoders(EncoderSpec(head=args.head))
    featurizer = Featurizer(enc)
    cut = decode.crop_still
    rows = []
    print("| Emotion6 dev (202 photos) | bars | bars found | accuracy | weighted F1 | ECE |")
    print("|---|---|---|---|---|---|")
    for variant, keep in (("given", False), ("pillarbox", True), ("pillarbox", False), ("band", False),
                          ("letterbox", True), ("letterbox", False)):
        path = make_frames(CACHE / f"black_bars-{variant}.parquet", variant, Path(args.data_root))
        decode.crop_still = (lambda im: im) if keep else cut  # kept: the path before 2026-12-07
        cache = os.environ.get("FILM_EMOTION_FEATURE_CACHE")
        if keep:  # (features of the kept bars apart from the default path's)
            os.environ["FILM_EMOTION_FEATURE_CACHE"] = str(CACHE / "black_bars-kept-features")
        try:
            run = score_frames(f"frames:{path}", enc, featurizer, model)["run"]
        finally:
            decode.crop_still = cut
            if keep:
                os.environ.pop("FILM_EMOTION_FEATURE_CACHE") if cache is None else \
                    os.environ.__setitem__("FILM_EMOTION_FEATURE_CACHE", cache)
        found = bars_found(path)
        rows.append({"variant": variant, "bars": "kept" if keep else "cut", "bars_found": found, **run})
        print(f"| {variant} | {'kept' if keep else 'cut'} | {found:.2f} | {run['accuracy']:.3f} | "
              f"{run['weighted_f1']:.3f} | {run['ece']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
