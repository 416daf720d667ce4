"""Film frames with a face in a scene, through the full visual path: faces found and labels, by face size.

    python -m benchmarks.faces_in_scenes [--n 400] [--head CKPT] [--json out.json]

IMFDB dev stills are the face alone. A film frame is mostly scene with a face in it, and the scene need not carry
the face's emotion. Each frame here is an Emotion6 dev photo squashed to 720x576 (the size of the team's film
stills) with an IMFDB dev face crop (unseen actors) pasted at a random place, its height a share of the frame's;
the frame takes the face's label. The photo is drawn at random, so it carries that label only by chance. Dev data
only; frames are made once per band into .cache/bench/ and read as `frames:` data (pipeline.evaluate's path:
detection, faces, scene tokens).

Per band of face height: faces found by the pipeline's detector, the label a run writes (accuracy, weighted F1,
ECE: a frame with a face and nothing else is labelled by the face classifier, model.predict.VISUAL) and the head
alone on the same tokens (what that rule replaces).
"""
from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
import torch
from model.files import written_atomically

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CACHE = REPO / ".cache" / "bench"
FRAME = (720, 576)
BANDS = ((0.12, 0.25), (0.25, 0.45), (0.45, 0.7))


def make_frames(out: Path, n: int, band: tuple[float, float], seed: int = 7, data: Path = DATA) -> Path:
    """n frames (JPEG, quality 90) of IMFDB dev faces pasted into Emotion6 dev photos, as a Parquet of
    image, label; reused when present."""
    if out.exists():
        return out
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    faces = pq.read_table(data / "faces" / "imfdb" / "dev.parquet", columns=["image", "label"]).to_pylist()
    scenes = pq.read_table(data / "scenes" / "emotion6" / "dev.parquet", columns=["image"]).column("image").to_pylist()
    rng = np.random.default_rng(seed)
    rows = []
    for i in rng.choice(len(faces), min(n, len(faces)), replace=False):
        face = Image.open(io.BytesIO(faces[i]["image"])).convert("RGB")
        frame = Image.open(io.BytesIO(scenes[rng.integers(len(scenes))])).convert("RGB").resize(FRAME)
        h = int(FRAME[1] * rng.uniform(*band))
        w = min(FRAME[0] - 1, int(h * face.width / face.height))
        frame.paste(face.resize((w, h)), (int(rng.integers(0, FRAME[0] - w)), int(rng.integers(0, FRAME[1] - h))))
        buf = io.BytesIO()
        frame.save(buf, "JPEG", quality=90)
        rows.append({"image": buf.getvalue(), "label": faces[i]["label"]})
    with written_atomically(out) as tmp:
        pq.write_table(pa.Table.from_pylist(rows), tmp)
    return out


def score_frames(spec: str, encoders, featurizer, model) -> dict:
    """A `frames:` set through the visual path: faces found, the label a run writes (its evidence rule), the head
    alone on the same tokens, and what the face alone says where one was found (accuracy, mean confidence)."""
    from training.loop import evaluate_set, load_set
    s = load_set(spec, encoders).labelled()
    found = float(np.mean([len(it.get("face", ())) > 0 for it in s.items]))
    evidence = [featurizer.evidence(it) for it in s.items]
    run = evaluate_set(model, s, evidence=evidence)
    head = evaluate_set(model, s)
    # what the face alone says where one was found: is a face this size evidence, or a guess that looks sure? As the
    # clips table's evidence_face says it: under the head's face temperature
    from model.predict import calibrated_evidence
    temps = getattr(model, "branch_temperatures", None)
    faced = [(calibrated_evidence(ev, temps)["face"], y) for ev, y in zip(evidence, s.labels) if "face" in ev]
    face_acc = float(np.mean([p.argmax() == y for p, y in faced])) if faced else float("nan")
    face_conf = float(np.mean([p.max() for p, _ in faced])) if faced else float("nan")
    return {"n": len(s), "faces_found": found,
            "run": {k: run[k] for k in ("accuracy", "weighted_f1", "macro_f1", "ece")},
            "head_alone": {k: head[k] for k in ("accuracy", "weighted_f1", "macro_f1", "ece")},
            "face_evidence": {"n": len(faced), "accuracy": face_acc, "mean_confidence": face_conf}}


def main(argv=None) -> list[dict]:
    from model.checkpoints import load_head
    from model.encoders import EncoderSpec, create_encoders
    from model.featurize import Featurizer

    p = argparse.ArgumentParser(prog="python -m benchmarks.faces_in_scenes", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=400, help="frames per band of face height")
    p.add_argument("--head", default=None)
    p.add_argument("--data_root", default=str(DATA))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    p.add_argument("--bands", default=None,
                   help="face heights as fractions of the frame's, e.g. 0.03-0.06,0.06-0.12 (default: the three "
                        "bands from a close-up to a face in a scene)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, _ = load_head(args.head)
    enc = create_encoders(EncoderSpec(head=args.head))
    featurizer = Featurizer(enc)
    rows = []
    bands = BANDS if not args.bands else [tuple(float(x) for x in b.split("-")) for b in args.bands.split(",")]
    print("| face height / frame height | n | faces found | run's label: accuracy / weighted F1 / ECE "
          "| head alone: accuracy / weighted F1 | face evidence where found: accuracy / mean confidence |")
    print("|---|---|---|---|---|---|")
    for band in bands:
        path = make_frames(CACHE / f"faces_in_scenes-{band[0]}-{band[1]}-{args.n}.parquet", args.n, band,
                           data=Path(args.data_root))
        row = {"band": list(band), **score_frames(f"frames:{path}", enc, featurizer, model)}
        rows.append(row)
        run, head, face = row["run"], row["head_alone"], row["face_evidence"]
        print(f"| {band[0]:.2f}-{band[1]:.2f} | {row['n']} | {row['faces_found']:.3f} | {run['accuracy']:.3f} / "
              f"{run['weighted_f1']:.3f} / {run['ece']:.3f} | {head['accuracy']:.3f} / {head['weighted_f1']:.3f} | "
              f"{face['accuracy']:.3f} / {face['mean_confidence']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
