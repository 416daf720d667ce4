"""Linear probe of the face token on the FER2013 folder: how much a trained head can read from it.

Seeded stratified k-fold (dev-only guidance; the shipped head is trained by pipeline.train): logistic
regression on standardised FaceEncoder tokens, and the untrained mini-Xception argmax for reference.

    python -m benchmarks.face_token_probe [--data ../shared/data/faces/fer2013] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces" / "fer2013"
def main(argv=None) -> None:
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from model.encoders.faces import load_face_encoder
    from training.datasets import load_dataset, read_image

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    # the folder read as pipeline.evaluate's imagefolder: reads it (labels, images), not a copy of that reader
    examples = load_dataset(f"imagefolder:{args.data}")
    images = [read_image(e.image) for e in examples]
    y = np.array([e.label for e in examples])
    enc = load_face_encoder()
    t = time.time()
    tokens = enc.encode(images)
    plain = enc.fer_logits(images)
    took = time.time() - t
    print(f"{len(y)} faces, token dim {enc.dim}, encode {1000 * took / len(y):.1f} ms/face; "
          f"{args.folds}-fold stratified CV (seed {args.seed}), dev accuracy mean +- std:")
    rows = {"mini-Xception argmax, untrained": [], "face token argmax (TTA logits), untrained": [],
            "logistic regression on the token, C=0.05": [], "logistic regression on the token, C=0.5": []}
    folds = StratifiedKFold(args.folds, shuffle=True, random_state=args.seed)
    for train, dev in folds.split(tokens, y):
        rows["mini-Xception argmax, untrained"].append(np.mean(plain[dev].argmax(1) == y[dev]))
        rows["face token argmax (TTA logits), untrained"].append(np.mean(tokens[dev].argmax(1) == y[dev]))
        for c in (0.05, 0.5):
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000)).fit(tokens[train], y[train])
            rows[f"logistic regression on the token, C={c}"].append(np.mean(clf.predict(tokens[dev]) == y[dev]))
    for name, accs in rows.items():
        print(f"  {name:45s} {np.mean(accs):.3f} +- {np.std(accs):.3f}")


if __name__ == "__main__":
    main()
