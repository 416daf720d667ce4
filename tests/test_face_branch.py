"""The face branch: the v2 detector (MTCNN) on real frames, the shipped face classifier, the FER+ / IMFDB readers.

Fast (no training); real data from ../shared/data, skipped where it or an optional wheel is missing.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from schemas.labels import EMOTIONS

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FACES = DATA / "faces"
WEIGHTS = ROOT / "model" / "weights" / "face_classifier.pt"

needs_data = pytest.mark.skipif(not (FACES / "ferplus" / "dev.parquet").exists(), reason="no ../shared/data")


@pytest.fixture(scope="module")
def detector():
    pytest.importorskip("facenet_pytorch")
    import torch

    torch.set_num_threads(1)
    from model.encoders.face_detect import load_face_detector_v2

    return load_face_detector_v2()


def _frame(path: Path, index: int) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == index:
                return f.to_ndarray(format="rgb24")
    raise AssertionError(f"{path} has fewer than {index + 1} frames")


def _inside(box, x, y) -> bool:
    bx, by, bw, bh = box
    return bx <= x <= bx + bw and by <= y <= by + bh


def test_detector_version_names_the_weights(detector):
    from model.encoders.face_detect import load_face_detector_v2

    assert detector.version.startswith("mtcnn-") and len(detector.version.split("-")[1]) == 10
    assert load_face_detector_v2(min_score=0.5).version != detector.version


@needs_data
def test_detector_finds_the_grid_speaker(detector):
    frame = _frame(DATA / "media" / "grid" / "bbaf2n.mpg", 30)  # 360x288, one talking face
    boxes = detector.detect(frame)
    assert boxes, "no face in a GRID frame"
    x, y, w, h = boxes[0]
    assert 40 <= w <= 250 and 40 <= h <= 250
    assert _inside((0, 0, frame.shape[1], frame.shape[0]), x + w / 2, y + h / 2)


@needs_data
def test_detector_finds_an_imfdb_face_pasted_into_sintel(detector):
    import cv2
    import pyarrow.parquet as pq
    from PIL import Image

    small = _frame(DATA / "media" / "sintel" / "sintel_trailer.mp4", 400)  # 480x204
    frame = np.zeros((720, 1280, 3), np.uint8)  # letterboxed to 1280x720 as a scope film is
    frame[88:88 + 544] = cv2.resize(small, (1280, 544), interpolation=cv2.INTER_CUBIC)
    row = pq.read_table(FACES / "imfdb" / "dev.parquet", columns=["image"]).slice(0, 1).column("image")[0].as_py()
    face = np.asarray(Image.open(io.BytesIO(row)).convert("RGB"))
    fh = 120
    fw = round(fh * face.shape[1] / face.shape[0])
    x0, y0 = 700, 250
    frame[y0:y0 + fh, x0:x0 + fw] = cv2.resize(face, (fw, fh), interpolation=cv2.INTER_CUBIC)
    boxes = detector.detect(frame)
    assert any(_inside((x0, y0, fw, fh), x + w / 2, y + h / 2) for x, y, w, h in boxes), boxes


def test_area_crops_equal_torch_area_resampling():
    import torch

    from model.encoders.mtcnn_cascade import area_crops, summed_area_table

    rng = np.random.default_rng(0)
    frames = torch.from_numpy(rng.integers(0, 256, (2, 90, 130, 3), dtype=np.uint8))
    table = summed_area_table(frames)
    # (frame, y0, x0, y1, x1): the whole frame, odd sizes, a crop smaller than the output, one corner pixel
    boxes = [(0, 0, 0, 90, 130), (1, 5, 37, 60, 101), (0, 10, 11, 17, 30), (1, 40, 45, 89, 66), (0, 89, 129, 90, 130)]
    inds = torch.tensor([b[0] for b in boxes])
    y0, x0, y1, x1 = (np.array([b[k] for b in boxes]) for k in (1, 2, 3, 4))
    for size in (24, 48):  # shrinking and enlarging crops, one pixel included
        got = area_crops(table, inds, y0, y1, x0, x1, size)
        want = torch.cat([torch.nn.functional.interpolate(
            frames[i].permute(2, 0, 1)[None, :, a:b, c:d].float(), size=(size, size), mode="area")
            for i, a, c, b, d in boxes])
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)


@needs_data
def test_cascade_gives_facenet_pytorchs_boxes(detector):
    """The batched cascade finds exactly what facenet-pytorch's own MTCNN.detect finds, on faces and on none."""
    import cv2
    import torch
    from facenet_pytorch import MTCNN

    from model.encoders.mtcnn_cascade import detect

    grid = [_frame(DATA / "media" / "grid" / "bbaf2n.mpg", i) for i in (0, 30, 60)]
    sintel = [cv2.resize(_frame(DATA / "media" / "sintel" / "sintel_trailer.mp4", i), (480, 204))
              for i in (400, 700, 1000)]
    reference = MTCNN(min_face_size=16, thresholds=[0.6, 0.7, 0.7], factor=0.709, keep_all=True,
                      select_largest=True).eval()
    found = 0
    for frames in (grid, sintel):
        batch = np.stack(frames)
        with torch.inference_mode():
            want_boxes, want_probs = reference.detect(batch)
        got_boxes, got_probs = detect(detector._mtcnn, batch)
        for wb, wp, gb, gp in zip(want_boxes, want_probs, got_boxes, got_probs):
            wb = np.zeros((0, 4)) if wb is None else np.asarray(wb, np.float64)
            assert gb.shape == wb.shape
            np.testing.assert_allclose(gb, wb, atol=1e-2)
            np.testing.assert_allclose(gp, np.asarray(wp if len(wb) else [], np.float64), atol=1e-4)
            found += len(gb)
    assert found >= 3  # the GRID speaker in each frame


@needs_data
def test_whole_frame_check_finds_faces_cropped_to_the_frame_and_none_in_photos(detector):
    """IMFDB dev stills 0, 41 and 57, shown as a labelled film shows them, are faces cropped tight to the frame: the
    pyramid and the bordered pass find nothing, O-Net on the whole frame does (225 at an O-Net score of 0.93: found
    since the check keeps the detector's own MIN_SCORE, 0.9). Emotion6 photos give no such hit."""
    import pyarrow.parquet as pq

    from benchmarks.face_detection import _as_film_still
    from model.encoders.face_detect import MIN_SCORE, WHOLE_FRAME_SCORE

    imfdb = pq.read_table(FACES / "imfdb" / "dev.parquet", columns=["image"]).column("image").to_pylist()
    for i in (0, 41, 57, 225):
        frame = _as_film_still(imfdb[i])
        assert not detector.detect_many([frame])[0] and not detector.detect_bordered_scored(frame), i
        ((x, y, w, h), score), = detector.detect_whole_frame_scored(frame)
        assert score >= WHOLE_FRAME_SCORE == MIN_SCORE and w * h >= 0.5 * frame.shape[0] * frame.shape[1], (i, score)
        assert detector.detect_close_up(frame) == [(x, y, w, h)]
    photos = pq.read_table(DATA / "scenes" / "emotion6" / "dev.parquet", columns=["image"]).column("image")
    assert not any(detector.detect_whole_frame_scored(_as_film_still(b)) for b in photos.to_pylist()[:40])


def test_detector_loads_and_runs_without_torchvision_or_facenet_pytorch():
    """The cascade's networks and box steps are the project's (mtcnn_nets): a worker imports neither torchvision
    (torch._dynamo, sympy: 1.2-1.3 s of start-up) nor facenet-pytorch, only the wheel's weight files."""
    from testing.imports import modules_imported

    code = ("import numpy as np; from model.encoders.face_detect import load_face_detector_v2; "
            "d = load_face_detector_v2(); d.detect(np.random.default_rng(0).integers(0, 255, (270, 480, 3), np.uint8))")
    assert modules_imported(code, ["torchvision", "facenet_pytorch", "sympy"]) == []


def test_detector_finds_nothing_on_a_blank_frame(detector):
    assert detector.detect(np.zeros((720, 1280, 3), np.uint8)) == []
    assert detector.detect(np.full((360, 640, 3), 128, np.uint8)) == []
    assert detector.detect(np.full((14, 20, 3), 128, np.uint8)) == []  # smaller than the smallest face searched


@needs_data
def test_ferplus_reader_votes_and_labels():
    from training.face_classifier import read_labels

    labels, votes = read_labels(FACES / "ferplus" / "dev.parquet")
    assert votes.shape == (len(labels), len(EMOTIONS)) and len(labels) == 3533
    # row 0: label null (contempt 4 ties neutral 4); votes neutral 4, anger 1 (contempt / unknown dropped)
    assert labels[0] == -1
    np.testing.assert_array_equal(votes[0], [1, 0, 0, 0, 4, 0, 0])
    ok = labels >= 0
    assert (votes[ok].argmax(1) == labels[ok]).mean() > 0.97  # the label is the majority vote
    labels, votes = read_labels(FACES / "ferplus" / "train.parquet")
    assert labels[0] == EMOTIONS.index("neutral")
    np.testing.assert_array_equal(votes[0], [3, 2, 0, 0, 4, 1, 0])


@needs_data
def test_imfdb_reader_labels():
    import pyarrow.parquet as pq

    from training.face_classifier import read_labels

    labels, votes = read_labels(FACES / "imfdb" / "dev.parquet")
    assert votes is None  # no rater columns: a hard-labelled set
    names = pq.read_table(FACES / "imfdb" / "dev.parquet", columns=["label"]).column("label").to_pylist()
    assert len(labels) == 1893 and labels[0] == EMOTIONS.index("anger")
    assert [EMOTIONS[i] for i in labels[:50]] == names[:50]


@needs_data
def test_face_trainer_reads_faces_as_the_pipeline_does():
    """The face classifier learns from the pixels pipeline.evaluate and the head's trainer give it: the same readers
    (transforms.decode.decode_image for Parquet bytes, training.datasets.read_image for a folder) and the encoder's
    own gray conversion and resize."""
    from model.face_tuning import to_inputs
    from training.datasets import load_dataset, read_faces_parquet
    from training.face_classifier import _images, read_image_folder
    from training.features import face_image

    path = FACES / "imfdb" / "dev.parquet"  # colour crops
    np.testing.assert_array_equal(_images(path, slice(0, 6)),
                                  to_inputs([face_image(e) for e in read_faces_parquet(path)[:6]]))
    folder = read_image_folder(FACES / "fer2013", "dev")
    pipeline = to_inputs([face_image(e) for e in load_dataset(f"imagefolder:{FACES / 'fer2013'}#dev")])
    np.testing.assert_array_equal(folder.images, pipeline)


@needs_data
def test_fer2013_parts_are_the_heads_split():
    """The face classifier trains on exactly the FER2013 faces the head trains on (`imagefolder:...#train`) and
    never on the dev faces that choose and report it."""
    from model.encoders._mini_xception import INPUT_SIZE
    from training.datasets import load_dataset
    from training.face_classifier import read_image_folder

    train, dev = read_image_folder(FACES / "fer2013", "train"), read_image_folder(FACES / "fer2013", "dev")
    head_train = load_dataset(f"imagefolder:{FACES / 'fer2013'}#train")
    assert len(train.images) == len(head_train) == 1798 and len(dev.images) == 449
    np.testing.assert_array_equal(train.labels, [e.label for e in head_train])
    assert train.images.shape[1:] == dev.images.shape[1:] == (INPUT_SIZE, INPUT_SIZE)
    assert not {e.image for e in head_train} & {e.image for e in load_dataset(f"imagefolder:{FACES / 'fer2013'}#dev")}
    # the folder itself holds a few byte-identical files (FER2013 has duplicates): 2 dev faces have a copy in train
    seen = {img.tobytes() for img in train.images}
    assert sum(img.tobytes() in seen for img in dev.images) == 2
    assert set(np.unique(dev.labels)) == set(np.unique(train.labels))  # stratified: every label in both


@needs_data
@pytest.mark.skipif(not WEIGHTS.exists(), reason="model/weights/face_classifier.pt not trained yet")
def test_shipped_classifier_beats_chance_on_ferplus_dev():
    import pyarrow.parquet as pq
    import torch
    from PIL import Image

    from training.face_classifier import load_face_classifier

    torch.set_num_threads(1)
    enc, temperature, dev_metrics = load_face_classifier(WEIGHTS)
    assert "+ft" in enc.version and 0.2 < temperature < 5
    assert dev_metrics["ferplus/dev"]["calibrated"]["accuracy"] > 0.5
    t = pq.read_table(FACES / "ferplus" / "dev.parquet", columns=["image", "label"]).slice(0, 160)
    rows = [(b, lab) for b, lab in zip(t.column("image").to_pylist(), t.column("label").to_pylist()) if lab][:120]
    faces = [np.asarray(Image.open(io.BytesIO(b)).convert("L")) for b, _ in rows]
    y = np.array([EMOTIONS.index(lab) for _, lab in rows])
    tokens = enc.encode(faces)
    assert tokens.shape == (len(rows), len(EMOTIONS))
    acc = float((tokens.argmax(1) == y).mean())
    assert acc > 0.45, acc  # chance is 1/7; the majority class (neutral) is ~0.37


@needs_data
def test_faces_in_scenes_frames_carry_the_faces_label(tmp_path):
    """benchmarks.faces_in_scenes: 720x576 Emotion6 photos, each with an IMFDB dev face pasted in at the band's
    height, labelled by the face; made once, then reused."""
    import pyarrow.parquet as pq
    from PIL import Image

    from benchmarks.faces_in_scenes import FRAME, make_frames

    out = make_frames(tmp_path / "f.parquet", 6, (0.3, 0.4))
    rows = pq.read_table(out).to_pylist()
    faces = pq.read_table(FACES / "imfdb" / "dev.parquet", columns=["label"]).column("label").to_pylist()
    assert len(rows) == 6 and {r["label"] for r in rows} <= set(faces)
    assert all(Image.open(io.BytesIO(r["image"])).size == FRAME for r in rows)
    stamp = out.stat().st_mtime_ns
    assert make_frames(out, 6, (0.3, 0.4)) == out and out.stat().st_mtime_ns == stamp


@needs_data
def test_close_up_searches_batched_equal_one_at_a_time(detector):
    """The featurizer searches a batch's faceless clips for close-ups together (one cascade call per eight
    frames of a size): the boxes are those of one frame at a time, for frames of several sizes."""
    import pyarrow.parquet as pq

    from benchmarks.face_detection import _as_film_still

    imfdb = pq.read_table(FACES / "imfdb" / "dev.parquet", columns=["image"]).column("image").to_pylist()
    photos = pq.read_table(DATA / "scenes" / "emotion6" / "dev.parquet", columns=["image"]).column("image")
    frames = [_as_film_still(b) for b in imfdb[:20] + photos.to_pylist()[:6]]
    frames.insert(3, np.zeros((8, 8, 3), np.uint8))  # too small to search: no box, no error
    one = [detector.detect_close_up(f) for f in frames]
    assert sum(bool(b) for b in one) >= 8 and len({f.shape for f in frames}) >= 3
    assert detector.detect_close_up_many(frames) == one
    assert detector.detect_close_up_many([]) == []


@needs_data
def test_face_trainer_reads_the_shipped_sets_by_what_they_hold():
    """The shipped faces folder read as any folder is: FER+ (votes) learnt as soft targets, IMFDB (labels) as hard
    ones, the FER2013 folder drawn apart; every set's dev part chooses the epoch."""
    from training.face_classifier import find_sets

    parquet, folders = find_sets(FACES)
    assert [p.name for p in parquet] == ["ferplus", "imfdb"] and [f.name for f in folders] == ["fer2013"]
    assert find_sets(DATA) == (parquet, folders)  # the data root, as the speech and scene trainers take it


@needs_data
def test_face_trainer_learns_from_a_studios_own_folder(tmp_path, monkeypatch):
    """`--data DIR` with a studio's own faces under names of its own: one set with one rater's labels (no votes
    columns: hard labels), spelt as sets spell them, one image folder; and `--init scratch` (random weights: no
    research data in the network), then `--init` of that checkpoint."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch
    from PIL import Image

    from training import face_classifier as fc
    monkeypatch.setattr(fc, "CACHE", tmp_path / "cache")
    spelt = {"joy": "happy", "anger": "Angry", "sadness": "sad"}
    rows = [r | {"label": spelt.get(r["label"], r["label"])} for r in
            pq.read_table(FACES / "imfdb" / "dev.parquet", columns=["image", "label"]).slice(0, 48).to_pylist()]
    mine = tmp_path / "mine"
    (mine / "studio_faces").mkdir(parents=True)
    for split in ("train", "dev"):
        pq.write_table(pa.Table.from_pylist(rows), mine / "studio_faces" / f"{split}.parquet")
    for i, r in enumerate(rows[:30]):
        (mine / "stills" / r["label"]).mkdir(parents=True, exist_ok=True)
        Image.open(io.BytesIO(r["image"])).save(mine / "stills" / r["label"] / f"{i}.png")
    (mine / "notes").mkdir()  # neither kind of set: passed over
    (mine / "notes" / "README.txt").write_text("x")
    voted, hard, folders, devs = fc.read_data(mine)
    assert len(voted.images) == 0 and len(hard.images) == 48 and len(folders.images) > 0
    assert [d.name for d in devs] == ["studio_faces/dev", "stills/dev"]
    assert set(hard.labels) <= {EMOTIONS.index(e) for e in ("anger", "joy", "sadness", "neutral", "fear",
                                                            "surprise", "disgust")}
    fc.main(["--data", str(mine), "--out", str(tmp_path / "face.pt"), "--epochs", "1", "--init", "scratch",
             "--samples_per_epoch", "64", "--batch_size", "32", "--threads", "1"])
    ckpt = torch.load(tmp_path / "face.pt", weights_only=True)
    assert ckpt["init"] == "scratch" and ckpt["config"]["kd"] == 0.0  # nothing to distil from
    assert ckpt["data"]["train"] == ["hard/train (labels)", "folders/train (folders)"]
    bn = ckpt["state_dict"]["bn1.running_mean"].float()
    assert bn.abs().max() > 1e-3  # from scratch BatchNorm learns its statistics (they start at 0)
    fc.main(["--data", str(mine), "--out", str(tmp_path / "again.pt"), "--epochs", "1", "--init",
             str(tmp_path / "face.pt"), "--samples_per_epoch", "64", "--batch_size", "32", "--threads", "1"])
    again = torch.load(tmp_path / "again.pt", weights_only=True)
    assert again["init"] == str(tmp_path / "face.pt")
    torch.testing.assert_close(again["state_dict"]["bn1.running_mean"], ckpt["state_dict"]["bn1.running_mean"])
    with pytest.raises(SystemExit, match="not packaged, scratch or a checkpoint"):
        fc.start_network(str(tmp_path / "missing.pt"))
    with pytest.raises(SystemExit, match="no face sets"):
        fc.find_sets(mine / "notes")
