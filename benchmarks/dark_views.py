"""Dark views through the scene classifier: how well it reads a picture by how bright it is.

    python -m benchmarks.dark_views [--threads 1] [--json out.json]

Night scenes and fades are routine in films; the scene classifier learnt from photos as they were taken. Each
Emotion6 dev photo (202, unseen by it) is read as given and darkened (its pixels times 0.5, 0.25, 0.1, 0.05), as a
still through the pipeline's own conversion (transforms.decode.still_clip), and scored by the scene classifier with
no view left out (the rule before 2026-12-07): accuracy and mean confidence per darkening and per band of the
view's brightest pixels (the 99th percentile of luma, model.featurize.lit_views' measure). The bands under
model.encoders.versions.DARK_P99 are the views a run now leaves out as too dark to see.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.faces_in_scenes import DATA

SCALES = (1.0, 0.5, 0.25, 0.1, 0.05)
BANDS = ((0, 16), (16, 24), (24, 32), (32, 48), (48, 64), (64, 96), (96, 128), (128, 256))


def main(argv=None) -> list[dict]:
    import cv2
    import pyarrow.parquet as pq
    import torch

    from model.encoders import EncoderSpec, create_encoders
    from model.encoders.versions import DARK_P99
    from model.featurize import Featurizer
    from schemas.labels import EMOTIONS
    from transforms.decode import DecodeConfig, decode_image, still_clip

    p = argparse.ArgumentParser(prog="python -m benchmarks.dark_views", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_root", default=str(DATA))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    enc = create_encoders(EncoderSpec())
    featurizer = Featurizer(enc, ("vision",))
    rows = pq.read_table(Path(args.data_root) / "scenes" / "emotion6" / "dev.parquet",
                         columns=["image", "label"]).to_pylist()
    out = []
    for scale in SCALES:
        for r in rows:
            img = np.clip(np.rint(decode_image(r["image"]).astype(np.float32) * scale), 0, 255).astype(np.uint8)
            clip = still_clip(img, DecodeConfig(face_width=0))
            gray = cv2.cvtColor(clip.frames[0], cv2.COLOR_RGB2GRAY)
            tokens = featurizer.vision_tokens([clip.frames])[0]  # every view: the rule before
            scene = featurizer.evidence({"vision": tokens[0], "scene": tokens[1]}).get("scene")
            label = EMOTIONS.index(r["label"]) if isinstance(r["label"], str) else int(r["label"])
            out.append({"scale": scale, "p99": float(np.percentile(gray, 99)), "label": label,
                        "pred": int(scene.argmax()) if scene is not None else -1,
                        "confidence": float(scene.max()) if scene is not None else None})
    print("| Emotion6 dev | views | p99 luma (min / median) | read by the scene classifier (picture gate) | accuracy "
          "| mean confidence |")
    print("|---|---|---|---|---|---|")
    for scale in SCALES:
        got = [o for o in out if o["scale"] == scale]
        read = [o for o in got if o["pred"] >= 0]
        p99 = np.array([o["p99"] for o in got])
        print(f"| x{scale:g} | {len(got)} | {p99.min():.0f} / {np.median(p99):.0f} | {len(read)} | "
              f"{np.mean([o['pred'] == o['label'] for o in read]):.3f} | {np.mean([o['confidence'] for o in read]):.3f} |")
    print(f"\n| p99 luma band | views read | accuracy | mean confidence | a run reads it (DARK_P99 {DARK_P99}) |")
    print("|---|---|---|---|---|")
    for lo, hi in BANDS:
        read = [o for o in out if o["pred"] >= 0 and lo <= o["p99"] < hi]
        if read:
            print(f"| {lo}-{hi} | {len(read)} | {np.mean([o['pred'] == o['label'] for o in read]):.3f} | "
                  f"{np.mean([o['confidence'] for o in read]):.3f} | {'no' if hi <= DARK_P99 else 'yes'} |")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
