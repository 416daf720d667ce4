"""Scene features probed on Emotion6: do colour statistics or crop augmentation add to the DINOv2 tokens?

    python -m benchmarks.scene_probes [--seeds 0 1 2]

Prints, per variant, the stratified 5-fold accuracy on Emotion6 train (one row per fold seed) and the dev
accuracy of the same variant trained on all of train:
- logistic regression (scikit-learn) on the tokens the scene classifier reads (the scene tokens: CLS and patch mean
  averaged over the ViT's last 4 blocks), on 39 colour and composition statistics of the same squashed 224 px photo,
  and on both;
- the shipped scene head's configuration (`training.scene_classifier`), trained on train and mirrored train as
  shipped, then with the tokens of four corner crops (80 % of each side, two of them mirrored) added.
The crops' tokens come from `cached_tokens(..., corner=c)`, cached under .cache/scene_features/ (about 3.5 min on
2 cores the first time). Results and what was taken: docs/training.md (scene photos).
"""
from __future__ import annotations

import argparse

import numpy as np

from model.encoders.scene import pooled_features
from training.scene_classifier import (SceneTrainConfig, cached_tokens, decode_image, head_outputs, read_scene_set,
                                       train_scene_head)

SHIPPED = SceneTrainConfig(hidden=0, dropout=0.3, weight_decay=0.1, epochs=100, mirror=True)


def colour_features(img: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] -> 39 numbers: HSV means and spreads, saturation-weighted hue (mean vector and a 12-bin
    histogram), colourfulness (Hasler and Suesstrunk), dark/bright/saturated shares, edge energy, brightness
    percentiles and the 2x2 regions' brightness and saturation."""
    x = img.astype(np.float32) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    hi, lo = x.max(-1), x.min(-1)
    sat = np.where(hi > 0, (hi - lo) / np.maximum(hi, 1e-6), 0)
    d = np.maximum(hi - lo, 1e-6)
    hue = np.where(hi == r, ((g - b) / d) % 6, np.where(hi == g, (b - r) / d + 2, (r - g) / d + 4)) / 6.0
    w = sat * hi
    rg, yb = r - g, 0.5 * (r + g) - b
    lum = 0.299 * r + 0.587 * g + 0.114 * b
    gy, gx = np.gradient(lum)
    edge = np.sqrt(gx ** 2 + gy ** 2)
    half = lum.shape[0] // 2, lum.shape[1] // 2
    regions = [v[ys, xs].mean() for ys in (slice(0, half[0]), slice(half[0], None))
               for xs in (slice(0, half[1]), slice(half[1], None)) for v in (lum, sat)]
    stats = [hi.mean(), hi.std(), sat.mean(), sat.std(), lum.mean(), lum.std(),
             (np.cos(2 * np.pi * hue) * w).mean(), (np.sin(2 * np.pi * hue) * w).mean(),
             np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()),
             (lum < 0.15).mean(), (lum > 0.85).mean(), (sat > 0.6).mean(), edge.mean(), edge.std(),
             r.mean(), g.mean(), b.mean(), np.percentile(lum, 10), np.percentile(lum, 90)]
    hist = np.histogram(hue, bins=12, range=(0, 1), weights=w)[0] / (w.sum() + 1e-6)
    return np.array(stats + list(hist) + regions, np.float32)


def logistic(a_tr: np.ndarray, labels: np.ndarray, c: float):
    """(fit, acc) of a logistic regression (scikit-learn, C = c) on standardised rows of a_tr: fit(rows) -> model,
    acc(model, a, y) -> accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    def fit(rows):
        scaler = StandardScaler().fit(a_tr[rows])
        return scaler, LogisticRegression(C=c, max_iter=3000).fit(scaler.transform(a_tr[rows]), labels[rows])

    def acc(model, a, y):
        return float((model[1].predict(model[0].transform(a)) == y).mean())
    return fit, acc


def probe_row(name: str, fit, acc, a_tr: np.ndarray, a_dev: np.ndarray, tr, dev, seeds) -> str:
    """One table row: stratified 5-fold accuracy on train per fold seed, their mean, and dev accuracy of the same
    fit on all of train."""
    from sklearn.model_selection import StratifiedKFold

    cv = []
    for seed in seeds:
        folds = StratifiedKFold(5, shuffle=True, random_state=seed).split(a_tr, tr.labels)
        cv.append(np.mean([acc(fit(f), a_tr[h], tr.labels[h]) for f, h in folds]))
    d = acc(fit(np.arange(len(tr.labels))), a_dev, dev.labels)
    return f"| {name} | {' / '.join(f'{v:.3f}' for v in cv)} | {np.mean(cv):.3f} | {d:.3f} |"


def main(argv=None) -> None:
    import torch

    from model.encoders.vision import load_vision_encoder

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="fold seeds")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    vision = load_vision_encoder()
    tr, dev = read_scene_set("train"), read_scene_set("dev")
    x, x_mir, x_dev = (cached_tokens(vision, "train"), cached_tokens(vision, "train", mirror=True),
                       cached_tokens(vision, "dev"))
    # the right-hand corners mirrored: crops from both sides of every photo
    crops = [cached_tokens(vision, "train", mirror=c % 2 == 1, corner=c) for c in range(4)]
    pooled = lambda t: pooled_features(t).numpy()  # noqa: E731 - what the scene head reads
    c_tr = np.stack([colour_features(decode_image(b)) for b in tr.images])
    c_dev = np.stack([colour_features(decode_image(b)) for b in dev.images])

    def logistic_on(a_tr, a_dev, c):
        return (*logistic(a_tr, tr.labels, c), a_tr, a_dev)

    def head(n_crops):
        def fit(rows):
            parts = [x[rows], x_mir[rows]] + [c[rows] for c in crops[:n_crops]]
            k = len(parts)
            return train_scene_head(np.concatenate(parts), np.concatenate([tr.probs[rows]] * k),
                                    np.concatenate([tr.va[rows]] * k), SHIPPED)

        def acc(model, a, y):
            return float((head_outputs(model, a)[0].argmax(1) == y).mean())
        return fit, acc, x, x_dev

    variants = {"logistic, tokens (C 0.003)": logistic_on(pooled(x), pooled(x_dev), 0.003),
                "logistic, colour (C 0.01)": logistic_on(c_tr, c_dev, 0.01),
                "logistic, tokens + colour (C 0.003)": logistic_on(np.concatenate([pooled(x), c_tr], 1),
                                                                    np.concatenate([pooled(x_dev), c_dev], 1), 0.003),
                "scene head as shipped (train + mirrored)": head(0),
                "scene head + 4 corner crops": head(4)}
    print("| variant | 5-fold accuracy on train, per fold seed | mean | dev accuracy |")
    print("|---|---|---|---|")
    for name, (fit, acc, a_tr, a_dev) in variants.items():
        print(probe_row(name, fit, acc, a_tr, a_dev, tr, dev, args.seeds), flush=True)


if __name__ == "__main__":
    main()
