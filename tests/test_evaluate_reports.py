"""What pipeline.evaluate's report says beside the scores (2026-12-07 metrics review): rows the head was trained or
calibrated on, rows a reader left out, --cv folds over the labelled rows, the JSON of the sets scored before a later
one failed, and labels written as 'nan' or 'null'. A tiny random head and stand-in features: the report is tested,
not the encoders."""
from __future__ import annotations

import csv
import json
import logging
import os
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from model.bvpec import BVPEC, BVPECConfig
from model.checkpoints import save_head

DIMS = {"text": 12, "vision": 10, "face": 6, "audio": 5}
LABELS = ["joy", "anger", "sadness", "neutral", "fear", "surprise"]


class Reached(Exception):
    """Features were asked for where the command should have stopped first."""


def tiny_head(path: Path, meta: dict) -> str:
    """A random-weight head of the test widths, saved with `meta` (its record of training and calibration data)."""
    torch.manual_seed(0)
    save_head(path, BVPEC(BVPECConfig(input_dims=DIMS, d_model=16, heads=2, dropout=0.0)).eval(), meta)
    return str(path)


def stand_in_features(examples, _encoders, *_args, **_kwargs) -> list[dict]:
    """Random tokens of the test widths for the modalities each row carries (a line, a face, a voice)."""
    rng = np.random.default_rng(len(examples))
    def tokens(m):
        return rng.standard_normal((1, DIMS[m])).astype(np.float16)
    return [{**({"text": tokens("text")} if e.text else {}),
             **({"face": tokens("face")} if e.source == "faces" else {}),
             **({"audio": tokens("audio")} if e.source in ("audio", "spoken") else {})} for e in examples]


@pytest.fixture
def evaluate(tmp_path, monkeypatch):
    """pipeline.evaluate with stand-in encoders and features, its feature cache in tmp_path."""
    from pipeline import evaluate
    from training import features
    monkeypatch.setenv("FILM_EMOTION_FEATURE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(evaluate, "create_encoders", lambda spec: SimpleNamespace(
        spec=spec, versions={m: "stand-in" for m in DIMS}, version="stand-in"))
    monkeypatch.setattr(features, "compute_features", stand_in_features)
    return evaluate


def faces_file(path: Path, images: list[bytes], labels: list, actors: list[str] | None = None) -> str:
    """A faces: Parquet set (the bytes are never decoded here)."""
    table = {"image": images, "label": pa.array(labels, pa.string())}
    pq.write_table(pa.table({**table, **({"actor": actors} if actors else {})}), path)
    return str(path)


def meld_file(path: Path, n: int) -> str:
    """A meld: csv of n lines in dialogues of three."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Utterance", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID"])
        for i in range(n):
            w.writerow([f"Line number {i} is said here.", LABELS[i % 6], "neutral", i // 3, i % 3])
    return str(path)


def test_evaluate_names_rows_the_head_was_trained_or_calibrated_on(evaluate, tmp_path, caplog):
    # A set the head learnt scores high and a set its temperatures were fitted on has an in-sample ECE: before
    # 2026-12-07 both were scored as any other, without a word (a MELD train slice: 0.731 weighted F1, dev 0.552).
    images = [f"face {i}".encode() for i in range(12)]
    train = faces_file(tmp_path / "train.parquet", images[:8], LABELS + LABELS[:2])
    dev = faces_file(tmp_path / "dev.parquet", images[8:] + images[:1], LABELS[:5])  # its last face: a train copy
    unseen = faces_file(tmp_path / "unseen.parquet", [b"another face", b"and one more"], ["joy", "fear"])
    lines = meld_file(tmp_path / "lines.csv", 12)
    head = tiny_head(tmp_path / "head.pt", {
        "training_data": [f"faces:{train}", f"meld:{lines}@6", "faces:/not/on/this/machine.parquet"],
        "dev_data": [f"faces:{dev}", f"faces:{os.path.relpath(dev)}"],  # one file named twice: one set
        "pattern_calibration": {"refit": {"data": [f"faces:{dev}", "pairs:dev@100 seed 1"]}}})
    specs = [f"faces:{train}", f"faces:{dev}", f"faces:{unseen}", f"meld:{lines}"]
    out = tmp_path / "report.json"
    with caplog.at_level(logging.WARNING, logger="pipeline.evaluate"):
        evaluate.main(sum((["--data", s] for s in specs), []) + ["--head", head, "--json", str(out)])
    results = json.loads(out.read_text())["results"]
    assert results[specs[0]]["overlaps_training"] == {"rows": 8, "of": 8, "speakers": 0, "sets": [f"faces:{train}"]}
    assert results[specs[0]]["calibrated_on"] == {"rows": 1, "of": 8, "speakers": 0, "sets": [f"faces:{dev}"]}
    assert results[specs[1]]["overlaps_training"]["rows"] == 1  # a byte-identical copy in another file
    assert results[specs[1]]["calibrated_on"]["rows"] == 5
    assert "overlaps_training" not in results[specs[2]] and "calibrated_on" not in results[specs[2]]
    assert results[specs[3]]["overlaps_training"]["rows"] == 6  # lines: the same rows of the same file (@6)
    assert "calibrated_on" not in results[specs[3]]
    said = [r.getMessage() for r in caplog.records]
    assert sum("rows the head was trained on" in m for m in said) == 3, said
    assert sum("its ECE here is in-sample" in m for m in said) == 2, said
    assert f"faces:{train}: 8 of 8 labelled rows are rows the head was trained on (faces:{train})" in said[0]

def test_cv_folds_only_labelled_rows_and_refuses_more_folds_than_groups_before_features(evaluate, tmp_path,
                                                                                       monkeypatch):
    # Folds were cut over every row: a fold of the unlabelled actor's rows reached sklearn empty, and a K above the
    # groups was sklearn's ValueError; both a traceback once the set had been scored, and no JSON.
    from training import features
    head = tiny_head(tmp_path / "head.pt", {})
    labels = (LABELS[:5] * 3)[:10] + [None] * 5
    two = faces_file(tmp_path / "two.parquet", [f"f{i}".encode() for i in range(15)], labels, ["A"] * 5 + ["B"] * 5
                     + ["X"] * 5)
    reached = features.compute_features
    monkeypatch.setattr(features, "compute_features", lambda *a, **k: (_ for _ in ()).throw(Reached()))
    with pytest.raises(SystemExit, match=r"^pipeline.evaluate: faces:.*two.parquet: --cv 3 needs 3 groups of "
                                         r"labelled rows .*it has 2: give --cv 2 or fewer$"):
        evaluate.main(["--data", f"faces:{two}", "--cv", "3", "--head", head])
    monkeypatch.setattr(features, "compute_features", reached)
    labels = (LABELS * 3)[:15] + [None] * 5
    three = faces_file(tmp_path / "three.parquet", [f"g{i}".encode() for i in range(20)], labels,
                       ["A"] * 5 + ["B"] * 5 + ["C"] * 5 + ["X"] * 5)
    for mode in ("score", "train"):
        m = evaluate.main(["--data", f"faces:{three}", "--cv", "3", "--cv_mode", mode, "--cv_epochs", "1",
                           "--head", head])["results"][f"faces:{three}"]
        assert m["n"] == 15 and len(m["cv"]["accuracy"]["folds"]) == 3


def test_the_json_keeps_the_sets_scored_before_a_later_set_fails(evaluate, tmp_path):
    head = tiny_head(tmp_path / "head.pt", {})
    good = faces_file(tmp_path / "good.parquet", [b"a", b"b", b"c"], ["joy", "anger", "fear"])
    unlabelled = faces_file(tmp_path / "unlabelled.parquet", [b"d", b"e"], [None, None])
    out = tmp_path / "report.json"
    with pytest.raises(SystemExit, match="unlabelled.parquet: no row has a label"):
        evaluate.main(["--data", f"faces:{good}", "--data", f"faces:{unlabelled}", "--head", head, "--json", str(out)])
    assert list(json.loads(out.read_text())["results"]) == [f"faces:{good}"]


def test_spoken_rows_without_a_line_are_counted_in_the_table_and_the_json(evaluate, tmp_path, capsys):
    from training.datasets import NO_LINE
    voices = tmp_path / "voices.parquet"  # other clips of the same set's speaker 17, which the head learnt
    pq.write_table(pa.table({"audio": [b"another take"], "label": ["joy"], "speaker": ["17"]}), voices)
    head = tiny_head(tmp_path / "head.pt", {"training_data": [f"audio:{voices}"]})
    names = ["03-01-05-01-01-01-17.wav", "03-01-03-01-02-01-17.wav", "take_1.wav", "take_2.wav"]
    pq.write_table(pa.table({"audio": [f"sound {i}".encode() for i in range(4)], "path": names,
                             "label": ["anger", "joy", "fear", "sadness"], "speaker": ["17"] * 4}),
                   tmp_path / "spoken.parquet")
    spec = f"spoken:{tmp_path / 'spoken.parquet'}"
    m = evaluate.main(["--data", spec, "--head", head, "--json", str(tmp_path / "r.json")])["results"][spec]
    assert m["n"] == 2 and m["skipped_rows"] == {NO_LINE: 2}
    assert m["overlaps_training"] == {"rows": 0, "of": 2, "speakers": 1, "sets": [f"audio:{voices}"]}
    assert json.loads((tmp_path / "r.json").read_text())["results"][spec]["skipped_rows"] == {NO_LINE: 2}
    assert f"rows left out, {NO_LINE}: 2" in capsys.readouterr().out


def test_a_label_written_nan_or_null_is_no_label(tmp_path, caplog):
    # A float column's NaN written as text, a database export's 'NULL': before 2026-12-07 labels none of ours, left
    # out, and 'nan' was told to be a number ("write them as names"). 'none' and 'na' may mean "no emotion" in a
    # set: they stay labels none of ours, counted and warned of, so the user can map them.
    from training.datasets import DataError, labelled, load_dataset
    assert [labelled(v)["label"] for v in ("nan", "NaN", " null ", "NULL", "joy")] == [-1] * 4 + [3]
    assert {labelled(v)["label_text"] for v in ("nan", "NULL")} == {""}
    assert [labelled(v)["label_text"] for v in ("None", "na")] == ["None", "na"]
    path = faces_file(tmp_path / "faces.parquet", [f"f{i}".encode() for i in range(6)],
                      ["joy", "nan", "null", "contempt", "anger", "none"])
    left = Counter()
    with caplog.at_level(logging.WARNING, logger="training.datasets"):
        rows = load_dataset(f"faces:{path}", left)
    assert [e.label for e in rows] == [3, -1, -1, 0] and left == Counter({"contempt": 1, "none": 1})
    assert "numbers" not in caplog.text
    numbers = faces_file(tmp_path / "numbers.parquet", [b"a", b"b", b"c"], ["1.0", "nan", "4.0"])
    with pytest.raises(DataError, match=r"found '1.0' 1, '4.0' 1\);.* The labels are numbers"):
        load_dataset(f"faces:{numbers}")
