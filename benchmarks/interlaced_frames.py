"""Interlaced film frames through the visual path: does combing cost faces or labels, and does taking one field
win them back?

    python -m benchmarks.interlaced_frames [--n 400] [--shift 10]

DVD and broadcast masters are often interlaced: a frame's two fields are a 50th or 60th of a second apart, so a
moving face is combed. The frames are benchmarks.faces_in_scenes' (IMFDB dev faces in Emotion6 dev photos at
720x576, face height 25-45 % of the frame). Each is read three ways: as it is, combed (the second field's lines
from the frame shifted --shift pixels sideways, as motion between the fields does), and combed then reduced to its
first field stretched back to full height (what a field-taking deinterlacer would feed the models). Each is scored as
pipeline.evaluate's `frames:` data: faces found, the run's label (accuracy / ECE), and the face evidence's accuracy
where a face was found.
"""
from __future__ import annotations

import argparse
import io

import numpy as np

from benchmarks.faces_in_scenes import CACHE, make_frames, score_frames


def combed(image: np.ndarray, shift: int) -> np.ndarray:
    out = image.copy()
    out[1::2] = np.roll(image, shift, axis=1)[1::2]
    return out


def first_field(image: np.ndarray) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.fromarray(image[0::2]).resize((image.shape[1], image.shape[0]), Image.BILINEAR))


def main(argv=None) -> list[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch
    from PIL import Image

    from model.checkpoints import load_head
    from model.encoders import EncoderSpec, create_encoders
    from model.featurize import Featurizer

    p = argparse.ArgumentParser(prog="python -m benchmarks.interlaced_frames", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--shift", type=int, default=10, help="pixels the second field moved (720 px wide frames)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    band = (0.25, 0.45)
    frames = pq.read_table(make_frames(CACHE / f"faces_in_scenes-{band[0]}-{band[1]}-{args.n}.parquet", args.n, band))
    images = [np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in frames.column("image").to_pylist()]
    model, _ = load_head(None)
    encoders = create_encoders(EncoderSpec())
    featurizer = Featurizer(encoders)
    ways = {"as it is": images, f"combed ({args.shift} px)": [combed(a, args.shift) for a in images],
            "combed, first field": [first_field(combed(a, args.shift)) for a in images]}
    print("| frames | n | faces found | run's label: accuracy / ECE | face evidence accuracy |\n|---|---|---|---|---|")
    rows = []
    for i, (name, arrays) in enumerate(ways.items()):
        pngs = []
        for a in arrays:
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, "PNG")  # lossless: the combing reaches the decoder as made
            pngs.append(buf.getvalue())
        path = CACHE / f"interlaced_frames-{i}-{args.n}-{args.shift}.parquet"
        pq.write_table(frames.set_column(frames.schema.get_field_index("image"), "image", pa.array(pngs, pa.binary())),
                       path)
        row = {"frames": name, **score_frames(f"frames:{path}", encoders, featurizer, model)}
        rows.append(row)
        print(f"| {name} | {row['n']} | {row['faces_found']:.3f} | {row['run']['accuracy']:.3f} / "
              f"{row['run']['ece']:.3f} | {row['face_evidence']['accuracy']:.3f} |", flush=True)
    return rows


if __name__ == "__main__":
    main()
