"""Which frames are pictures of something, for the scene classifier: a logistic regression on the ViT's scene tokens,
photos (Emotion6 train, each also in a film look: film_look) against drawn graphics made here (flat colours,
gradients, colour bars, text cards, test patterns, snow, slides), so that a leader, a slate, a title or credits card,
a slide or a blank frame gives no scene evidence, and a night scene still does.

    python -m training.picture_gate --out model/weights/picture_gate.npz

A scene classifier trained on a studio's own photos (`python -m training.scene_classifier --data ROOT`) learns its own
gate the same way (learn_gate) and carries it in its checkpoint, so no research photo decides which frames it reads.

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
KINDS = ("flat", "gradient", "bars", "text", "pattern", "noise", "slide")
C = 0.01  # the regression's inverse regularisation (0.001-0.1 measured alike on held-out graphics and films)


def graphics(n: int, seed: int = 0, size: int = 224) -> list[np.ndarray]:
    """n drawn frames [size, size, 3] uint8, the KINDS in turn, drawn at 640x360 and squashed as a film's frame
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
        elif kind == "noise":  # a dead channel's snow, grey or coloured, fine or coarse
            cell = int(rng.integers(1, 6))
            grain = rng.integers(0, 256, (360 // cell + 1, 640 // cell + 1, 1 if rng.random() < 0.6 else 3))
            im = Image.fromarray(np.repeat(np.repeat(grain, cell, 0), cell, 1)[:360, :640].repeat(
                3 // grain.shape[-1], -1).astype(np.uint8))
        elif kind == "slide":  # a presentation: a light page, a title bar, bullet lines of small text
            page = tuple(int(v) for v in rng.integers(215, 256, 3))
            im = Image.new("RGB", (640, 360), page)
            draw = ImageDraw.Draw(im)
            draw.rectangle([0, 0, 640, int(rng.integers(30, 70))], fill=colour())
            for line in range(int(rng.integers(3, 12))):
                y = 80 + line * int(rng.integers(18, 26))
                words = " ".join("".join(chr(int(c)) for c in rng.integers(97, 123, int(rng.integers(2, 9))))
                                 for _ in range(int(rng.integers(2, 9))))
                draw.text((int(rng.integers(20, 60)), y), "- " + words, fill=(int(rng.integers(0, 90)),) * 3,
                          font=ImageFont.load_default(size=int(rng.integers(10, 18))))
        elif kind == "pattern":
            step, other = int(rng.integers(10, 80)), colour()
            for y in range(0, 360, step):
                for x in range(0, 640, step):
                    if (x // step + y // step) % 2:
                        draw.rectangle([x, y, x + step, y + step], fill=other)
            draw.ellipse([220, 80, 420, 280], outline=(255, 255, 255), width=4)
        out.append(np.asarray(im.resize((size, size))))
    return out


def film_look(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A photo [h, w, 3] uint8 as films shoot and grade it, one look drawn at random: darkened (night, a blue cast or
    not), a dark gamma, fog or haze, a colour cast (underwater teal, sepia, black and white), letterbox or pillarbox
    bars, low contrast with grain, soft focus. Without them the gate learnt "dark is a card": a quarter of a
    night-graded film's frames gave no scene evidence (review of 2026-12-07)."""
    from PIL import Image, ImageFilter

    def blur(a, r):
        return np.asarray(Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(r)),
                          np.float32)
    a = img.astype(np.float32)
    h, w = a.shape[:2]
    kind = int(rng.integers(0, 7))
    if kind == 0:  # night
        a = a * rng.uniform(0.08, 0.5) * (rng.uniform([0.7, 0.8, 0.95], [0.95, 1.0, 1.4]) if rng.random() < 0.5 else 1)
    elif kind == 1:
        a = 255 * (a / 255) ** rng.uniform(1.5, 3.0)
    elif kind == 2:  # fog, haze
        a = (1 - (k := rng.uniform(0.25, 0.7))) * blur(a, rng.uniform(0, 3)) + k * rng.uniform(150, 230)
    elif kind == 3:
        grey = (a @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        a = [blur(a, rng.uniform(0, 2.5)) * rng.uniform([0.25, 0.65, 0.75], [0.5, 0.9, 1.0]) + rng.uniform(
            [0, 25, 45], [10, 50, 75]), np.repeat(grey, 3, -1), grey * np.array([1.07, 0.74, 0.43]) * 1.1][
            int(rng.integers(0, 3))]
    elif kind == 4:  # bars: the picture narrower or lower than the frame it is stored in, often dark
        out = np.zeros_like(a)
        if rng.random() < 0.6:
            ch = int(h * rng.uniform(0.55, 0.85))
            out[(h - ch) // 2:(h - ch) // 2 + ch] = np.asarray(Image.fromarray(img).resize((w, ch)), np.float32)
        else:
            cw = int(w * rng.uniform(0.6, 0.85))
            out[:, (w - cw) // 2:(w - cw) // 2 + cw] = np.asarray(Image.fromarray(img).resize((cw, h)), np.float32)
        a = out * rng.uniform(0.3, 1.0)
    elif kind == 5:  # low contrast, grain
        c = rng.uniform(0.3, 0.7)
        a = c * a + (1 - c) * a.mean() + rng.normal(0, rng.uniform(3, 15), (h, w, 1))
    else:
        a = blur(a, rng.uniform(2, 6))
    return np.clip(a, 0, 255).astype(np.uint8)


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


def learn_gate(vision, images, photos: np.ndarray, n_graphics: int = 280) -> tuple[dict, float]:
    """(the gate's arrays, the share of held-out drawn graphics it passes) from a photo set's train images and their
    scene tokens (`photos`): each photo as it is and again in a film look (seed 0), against n_graphics drawn frames
    (seed 0; as many again with seed 1 held out). training.scene_classifier calls it on the photos it learns from, so
    a scene classifier of a studio's own carries a gate learnt from its own photos."""
    from model.encoders.scene import PictureGate
    from training.scene_classifier import decode_image
    rng = np.random.default_rng(0)
    graded = encode_frames(vision, [film_look(decode_image(b), rng) for b in images])
    arrays = fit_gate(np.concatenate([photos, graded]), encode_frames(vision, graphics(n_graphics, seed=0)))
    held = PictureGate(**arrays).pictures(encode_frames(vision, graphics(n_graphics, seed=1)))
    return arrays, float(held.mean())


def main(argv: Optional[list[str]] = None) -> None:
    from model.encoders.scene import GATE_WEIGHTS, PictureGate
    from model.encoders.vision import load_vision_encoder
    from model.files import written_atomically
    from training.scene_classifier import cached_tokens, read_scene_set
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=GATE_WEIGHTS)
    ap.add_argument("--graphics", type=int, default=280, help="drawn frames to learn from (as many again held out)")
    args = ap.parse_args(argv)
    vision = load_vision_encoder()
    photos, dev = cached_tokens(vision, "train"), cached_tokens(vision, "dev")
    arrays, held = learn_gate(vision, read_scene_set("train").images, photos, args.graphics)
    gate = PictureGate(**arrays)
    report = {"photos": f"Emotion6 train ({len(photos)}), and each again in a film look (seed 0)",
              "graphics": f"{args.graphics} drawn (seed 0)", "C": C,
              "emotion6_dev_passed": float(gate.pictures(dev).mean()), "held_out_graphics_passed": held}
    print(json.dumps(report))
    with written_atomically(args.out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays, meta=json.dumps(report))


if __name__ == "__main__":
    main()
