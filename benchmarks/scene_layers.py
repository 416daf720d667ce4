"""Which ViT blocks carry a photo's emotion? Logistic regression on Emotion6 per block choice (5-fold on train, 3 fold
seeds, then dev).

    python -m benchmarks.scene_layers [--seeds 0 1 2]

Each photo goes through the pipeline's conversion (training.scene_classifier.decode_image) and the packaged DINOv2
ViT-S/14 in torch fp32; for each of the last six blocks it keeps the CLS and the patch mean through the final norm.
Variants: the last block alone (what the scene classifier read before), each block alone, several blocks side by
side and their mean (what `model.encoders.vision.SCENE_LAYERS` now gives the scene classifier). About 9 min on 2 cores
(3 of them the encoding, cached in .cache/scene_features/). Results: docs/training.md (scene photos).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.scene_probes import logistic, probe_row
from training.scene_classifier import CACHE_ROOT, decode_image, read_scene_set
from model.files import written_atomically

LAST = 6  # blocks kept, counted from the end


def block_features(vision, images, batch: int = 32) -> np.ndarray:
    """Photos -> [n, LAST, 2 * D]: per block (oldest first) the normed CLS and patch mean."""
    import torch

    from model.encoders.vision import last_block_states

    out = []
    for i in range(0, len(images), batch):
        x = vision.preprocess(np.stack([decode_image(b) for b in images[i:i + batch]]))
        prefix = vision.model.num_prefix_tokens
        with torch.inference_mode():
            kept = [torch.cat([s[:, 0], s[:, prefix:].mean(1)], 1) for s in last_block_states(vision.model, x, LAST)]
        out.append(torch.stack(kept, 1).numpy())
    return np.concatenate(out)


def cached_block_features(vision, split: str) -> np.ndarray:
    path = Path(CACHE_ROOT) / f"emotion6-{split}-blocks{LAST}-{vision.version}.npy"
    if not path.exists():
        with written_atomically(path) as tmp:
            np.save(tmp, block_features(vision, read_scene_set(split).images))
    return np.load(path)


def main(argv=None) -> None:
    import torch

    from model.encoders.vision import load_vision_encoder

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="fold seeds")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    vision = load_vision_encoder(runtime="torch", precision="fp32")
    tr, dev = read_scene_set("train"), read_scene_set("dev")
    a_tr, a_dev = cached_block_features(vision, "train"), cached_block_features(vision, "dev")
    n, total = a_tr.shape[1], len(vision.model.blocks)
    variants = {"last block (the scene classifier before)": (lambda x: x[:, -1], 0.003),
                **{f"block {total - n + 1 + k} alone": ((lambda k: lambda x: x[:, k])(k), 0.003) for k in range(n - 1)},
                "last 2 blocks side by side": (lambda x: x[:, -2:].reshape(len(x), -1), 0.001),
                "last 4 blocks side by side": (lambda x: x[:, -4:].reshape(len(x), -1), 0.001),
                "last 6 blocks side by side": (lambda x: x[:, -6:].reshape(len(x), -1), 0.001),
                "mean of the last 3 blocks": (lambda x: x[:, -3:].mean(1), 0.003),
                "mean of the last 4 blocks (shipped)": (lambda x: x[:, -4:].mean(1), 0.003),
                "mean of the last 6 blocks": (lambda x: x[:, -6:].mean(1), 0.003)}
    print("| features (logistic regression, C) | 5-fold accuracy on train, per fold seed | mean | dev accuracy |")
    print("|---|---|---|---|")
    for name, (f, c) in variants.items():
        x, x_dev = f(a_tr), f(a_dev)
        print(probe_row(f"{name} ({c:g})", *logistic(x, tr.labels, c), x, x_dev, tr, dev, args.seeds), flush=True)

if __name__ == "__main__":
    main()
