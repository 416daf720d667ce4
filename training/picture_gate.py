"""Which frames are pictures of something, for the scene classifier: a logistic regression on the ViT's scene tokens,
photos (Emotion6 train) against drawn graphics made here (flat colours, gradients, colour bars, text cards, test
patterns), so that a leader, a slate, a title or credits card, a slide or a blank frame gives no scene evidence.

    python -m training.picture_gate --out model/weights/picture_gate.npz

The scene classifier learnt from photos only; on graphics it still answers (colour bars joy 0.47, a test card joy
0.53, credits on black fear 0.46, a grey frame neutral 0.47: all grounded before 2026-12-07). The gate is chosen by
what it passes: every Emotion6 dev photo, and how many frames of real films (measured on films it never saw:
docs/models.md, "Scene evidence only on pictures").
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
KINDS = ("flat", "gradient", "bars", "text", "pattern")
C = 0.01  # the regression's inverse regularisation (0.001-0.1 measured alike on held-out graphics and films)


def graphics(n: int, seed: int = 0, size: int = 224) -> list[np.ndarray]:
    """n drawn frames [size, size, 3] uint8, the five KINDS in turn, drawn at 640x360 and squashed as a film's frame
    is; the colours, bars, words, sizes and squares at random (seeded)."""
    from PIL import Image, ImageDraw, ImageFont
    rng = np.random.default_rng(seed)
    colour = lambda: tuple(int(v) for v in rng.integers(0, 256, 3))  # noqa: E731
    out = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        bg = colour() if rng.random() < 0.6 else (int(rng.integers(0, 40)),) * 3  # a dark card as often as not
        im = Image.new("RGB", (640, 360), bg)
        draw = ImageDraw.Draw(im)
        if kind == "gradient":
            a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
            x = np.linspace(0, 1, 640)[None, :, None] if rng.random() < 0.5 else np.linspace(0, 1, 360)[:, None, None]
            im = Image.fromarray(np.broadcast_to(a + (b - a) * x, (360, 640, 3)).astype(np.uint8))
        elif kind == "bars":
            k = int(rng.integers(3, 9))
            for j in range(k):
                draw.rectangle([j * 640 // k, 0, (j + 1) * 640 // k, 360], fill=colour())
        elif kind == "text":
            ink = (255, 255, 255) if sum(bg) < 300 else (0, 0, 0)
            for line in range(int(rng.integers(1, 8))):
                words = " ".join("".join(chr(int(c)) for c in rng.integers(65, 91, int(rng.integers(2, 9))))
                                 for _ in range(int(rng.integers(1, 5))))
                px = int(rng.integers(14, 48))
                draw.text((int(rng.integers(20, 300)), 30 + line * (px + 8)), words, fill=ink,
                          font=ImageFont.load_default(size=px))
        elif kind == "pattern":
            step, other = int(rng.integers(10, 80)), colour()
            for y in range(0, 360, step):
                for x in range(0, 640, step):
                    if (x // step + y // step) % 2:
                        draw.rectangle([x, y, x + step, y + step], fill=other)
            draw.ellipse([220, 80, 420, 280], outline=(255, 255, 255), width=4)
        out.append(np.asarray(im.resize((size, size))))
    return out


def encode_frames(vision, frames: list[np.ndarray], batch: int = 32) -> np.ndarray:
    """Frames -> their scene tokens [n, 2, 384] (VisionEncoder.encode's second output)."""
    return np.concatenate([vision.encode(np.stack(frames[i:i + batch]))[1] for i in range(0, len(frames), batch)])


def fit_gate(photos: np.ndarray, drawn: np.ndarray) -> dict:
    """The gate's arrays (model.encoders.scene.PictureGate) from the scene tokens of photos and of graphics."""
    from sklearn.linear_model import LogisticRegression
    x = np.concatenate([photos, drawn]).reshape(len(photos) + len(drawn), -1).astype(np.float64)
    y = np.r_[np.ones(len(photos)), np.zeros(len(drawn))]
    mean, scale = x.mean(0), x.std(0) + 1e-6
    fit = LogisticRegression(C=C, max_iter=5000, class_weight="balanced").fit((x - mean) / scale, y)
    return {"mean": mean.astype(np.float32), "scale": scale.astype(np.float32),
            "coef": fit.coef_[0].astype(np.float32), "bias": np.float32(fit.intercept_[0])}


def main(argv: Optional[list[str]] = None) -> None:
    from model.encoders.scene import GATE_WEIGHTS, PictureGate
    from model.encoders.vision import load_vision_encoder
    from model.files import written_atomically
    from training.scene_classifier import cached_tokens
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=GATE_WEIGHTS)
    ap.add_argument("--graphics", type=int, default=200, help="drawn frames to learn from (as many again held out)")
    args = ap.parse_args(argv)
    vision = load_vision_encoder()
    photos, dev = cached_tokens(vision, "train"), cached_tokens(vision, "dev")
    arrays = fit_gate(photos, encode_frames(vision, graphics(args.graphics, seed=0)))
    gate = PictureGate(**arrays)
    held = gate.pictures(encode_frames(vision, graphics(args.graphics, seed=1)))
    report = {"photos": f"Emotion6 train ({len(photos)})", "graphics": f"{args.graphics} drawn (seed 0)", "C": C,
              "emotion6_dev_passed": float(gate.pictures(dev).mean()), "held_out_graphics_passed": float(held.mean())}
    print(json.dumps(report))
    with written_atomically(args.out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays, meta=json.dumps(report))


if __name__ == "__main__":
    main()
