"""pipeline.calibrate on tiny heads and sets built here: the temperatures it does not fit stay the input head's, it says
when its data is the head's training data or says little of calibration, --pairs on too few kinds, the strict --json.

Fast: a random-weight head, face and line features drawn here; the encoders, the feature reader and the face
classifier's evidence are stand-ins (the evidence is softmax of a face's token: a face row's branch logits are known).
"""
from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.special import softmax

from pipeline import calibrate

DIMS = {"text": 8, "vision": 6, "face": 7, "audio": 7}
HEAD_TEMPERATURES = {"pattern_temperatures": {"text": 1.3, "audio+face": 0.9},
                     "branch_temperatures": {"face": 1.5, "speech": 1.2}}


class Reached(Exception):
    """Raised where the command would start loading encoders: every check before it has passed."""


def reached(*args, **kwargs):
    """Stands in for the encoder factory where a test expects a refusal before it."""
    raise Reached


class Evidence:
    """Stands in for model.featurize.Featurizer: a face's own classifier says softmax of its token."""

    def __init__(self, encoders):
        self.encoders = encoders

    def evidence(self, item: dict) -> dict:
        """The face's probabilities where the item has a face."""
        return {"face": softmax(item["face"].astype(np.float64).mean(0))} if "face" in item else {}


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Head digests and carried classifiers are written under the test's folder."""
    monkeypatch.setenv("FILM_EMOTION_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def features(monkeypatch):
    """spec -> (items, labels) that the stand-in load_set gives calibrate; no encoder loads."""
    from training.datasets import Example
    from training.loop import LabelledSet
    given: dict[str, tuple[list[dict], np.ndarray]] = {}

    def load_set(spec, encoders, text_languages=()):
        """The set the test put under `spec`."""
        items, labels = given[spec]
        return LabelledSet(spec, items, [Example(label=int(y)) for y in labels])
    monkeypatch.setattr(calibrate, "create_encoders", lambda spec: None)
    monkeypatch.setattr(calibrate, "Featurizer", Evidence)
    monkeypatch.setattr(calibrate, "load_set", load_set)
    return given


def small_head(path: Path, meta: dict | None = None) -> str:
    """A random-weight head checkpoint with `meta`."""
    import torch

    from model.bvpec import BVPEC, BVPECConfig
    from model.checkpoints import save_head
    torch.manual_seed(0)
    save_head(path, BVPEC(BVPECConfig(input_dims=DIMS, d_model=16, heads=2, dropout=0.0)).eval(), meta or {})
    return str(path)


def spec_file(path: Path, kind: str = "faces") -> str:
    """A --data spec naming a file that exists (the stand-in load_set gives its rows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return f"{kind}:{path}"


def faces(n: int, t_true: float = 2.0, seed: int = 0, labels: np.ndarray | None = None):
    """n face-only items whose classifier is over-sure by t_true, labels drawn accordingly (or `labels`)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 7)) * 3
    y = np.array([rng.choice(7, p=p) for p in softmax(z / t_true, 1)]) if labels is None else np.asarray(labels)
    return [{"face": row[None].astype(np.float32)} for row in z], y


def lines(n: int, seed: int = 1, labels: np.ndarray | None = None):
    """n line-only items (random text tokens) and labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 7, n) if labels is None else np.asarray(labels)
    return [{"text": rng.standard_normal((2, 8)).astype(np.float32)} for _ in range(n)], y


def written(path: Path) -> dict:
    """The temperatures a written head carries, under calibrate's keys."""
    from model.checkpoints import load_head_meta
    meta = load_head_meta(path)
    return {**meta.get("pattern_temperatures", {}),
            **{f"branch:{k}": v for k, v in meta.get("branch_temperatures", {}).items()}}


def png_bytes(seed: int) -> bytes:
    """A small random PNG (each seed its own bytes)."""
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (12, 12, 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def face_parquet(path: Path, seeds: range) -> str:
    """A faces: Parquet set of random PNGs, its spec."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([{"image": png_bytes(s), "label": "joy"} for s in seeds]), path)
    return f"faces:{path}"


# ---------------------------------------------------------------- 1. what is not fitted stays the head's
def test_calibrate_keeps_the_temperatures_it_does_not_fit(tmp_path, features, capsys):
    """14 face rows fit nothing: the written head carries every temperature of the input head (before 2026-12-07 it
    was written with none); 300 fit the face branch alone, the others stay; the printout says which is which."""
    head = small_head(tmp_path / "head.pt", HEAD_TEMPERATURES)
    few, many = spec_file(tmp_path / "few.parquet"), spec_file(tmp_path / "many.parquet")
    features[few], features[many] = faces(14), faces(300)
    before = written(head)
    report = calibrate.main(["--head", head, "--data", few, "--output", str(tmp_path / "few.pt")])
    assert written(tmp_path / "few.pt") == before and report["fitted"] == []
    out = capsys.readouterr().out
    assert "fitted here: none" in out
    # and it says which of the data's patterns had too few rows (a studio's 40 dev photos: no word; found in review)
    assert "not fitted (fewer than 50 labelled rows): branch:face (14: the input head's kept)" in out
    report = calibrate.main(["--head", head, "--data", many, "--output", str(tmp_path / "many.pt"),
                             "--json", str(tmp_path / "many.json")])
    after = written(tmp_path / "many.pt")
    assert report["fitted"] == ["branch:face"] and after["branch:face"] == pytest.approx(2.0, rel=0.25)
    assert {k: v for k, v in after.items() if k != "branch:face"} == {k: v for k, v in before.items()
                                                                      if k != "branch:face"}
    out = capsys.readouterr().out
    assert "fitted here: branch:face" in out and "kept from the input head: text 1.300, audio+face 0.900" in out
    assert json.loads((tmp_path / "many.json").read_text())["kept_from"] == "--head"


def test_refit_with_temperatures_from_is_unchanged(tmp_path, features):
    """The release's recipe (--refit with --temperatures_from): the refitted temperature over the other head's."""
    head = small_head(tmp_path / "head.pt")
    other = small_head(tmp_path / "other.pt", HEAD_TEMPERATURES)
    many = spec_file(tmp_path / "many.parquet")
    features[many] = faces(300)
    calibrate.main(["--head", head, "--data", many, "--output", str(tmp_path / "out.pt"), "--refit", "branch:face",
                    "--temperatures_from", other])
    out = written(tmp_path / "out.pt")
    assert out["branch:face"] != 1.5 and {k: v for k, v in out.items() if k != "branch:face"} == {
        "text": 1.3, "audio+face": 0.9, "branch:speech": 1.2}


# ---------------------------------------------------------------- 2. the head's own training data
def test_calibrate_warns_of_data_the_head_was_trained_on(tmp_path, features, caplog):
    """Faces byte-identical to the head's training faces, and a line file it trained on: one warning line each;
    other faces, or training files not on this machine, nothing."""
    train = face_parquet(tmp_path / "faces" / "train.parquet", range(5))
    dev = face_parquet(tmp_path / "faces" / "dev.parquet", range(10, 15))
    csv = spec_file(tmp_path / "text" / "train.csv", "meld")
    head = small_head(tmp_path / "head.pt", {"training_data": [train, csv, "faces:/nowhere/train.parquet"]})
    features[train] = features[dev] = faces(5)
    features[csv] = lines(5)
    for data, said in (([dev], []), ([train], ["5 of 5 dev rows are byte-identical"]),
                       ([dev, csv], ["lines of the file the head was trained on"])):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            calibrate.main(["--head", head, "--output", str(tmp_path / "out.pt")] + sum((["--data", d] for d in data),
                                                                                         []))
        warned = [r.getMessage() for r in caplog.records if "pipeline.calibrate" in r.getMessage()]
        assert len(warned) == len(said) and all(s in w for s, w in zip(said, warned)), warned
    # the head's training files gone from this machine: silent
    gone = small_head(tmp_path / "gone.pt", {"training_data": ["faces:/nowhere/train.parquet"]})
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        calibrate.main(["--head", gone, "--data", train, "--output", str(tmp_path / "out.pt")])
    assert not [r for r in caplog.records if "byte-identical" in r.getMessage()]


# ---------------------------------------------------------------- 3. --pairs and the --json file
def test_pairs_of_one_kind_of_set_are_refused_in_one_line(tmp_path, monkeypatch):
    """--pairs with sets of one kind (two face sets are one kind) stop before any encoder loads (before 2026-12-07:
    torch.cat's traceback once the features were made)."""
    monkeypatch.setattr(calibrate, "create_encoders", reached)
    head = small_head(tmp_path / "head.pt")
    (tmp_path / "fer").mkdir()
    one, two = spec_file(tmp_path / "a.parquet"), f"imagefolder:{tmp_path / 'fer'}"
    with pytest.raises(SystemExit) as e:
        calibrate.main(["--head", head, "--data", one, "--data", two, "--pairs", "40", "--output", "x.pt"])
    assert str(e.value.code).startswith("pipeline.calibrate: --pairs 40") and "\n" not in str(e.value.code)
    with pytest.raises(Reached):  # a line and a face: pairs can be made
        calibrate.main(["--head", head, "--data", one, "--data", spec_file(tmp_path / "l.csv", "meld"),
                        "--pairs", "40", "--output", "x.pt"])


def test_pairs_without_a_referee_row_add_no_row_and_the_json_is_strict(tmp_path, features, monkeypatch):
    """Faces and lines of no common label draw no pair, and pairs the head never referees give no row: neither
    stops the command nor writes a NaN (before 2026-12-07: torch.cat's traceback, a bare NaN in --json)."""
    head = small_head(tmp_path / "head.pt")
    face, line = spec_file(tmp_path / "f.parquet"), spec_file(tmp_path / "l.csv", "meld")
    features[face], features[line] = faces(60, labels=np.arange(60) % 3), lines(60, labels=3 + np.arange(60) % 3)
    argv = ["--head", head, "--data", face, "--data", line, "--pairs", "2", "--output", str(tmp_path / "o.pt"),
            "--json", str(tmp_path / "o.json")]
    report = calibrate.main(argv)
    assert not [s for s in report["sets"] if s.startswith("pairs:")]
    features[line] = lines(60, labels=np.arange(60) % 3)  # common labels: pairs drawn, none refereed
    monkeypatch.setattr(calibrate, "referee_rows", lambda logits, patterns, labels: (logits[:0], [], labels[:0]))
    report = calibrate.main(argv)
    strict = json.loads((tmp_path / "o.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in --json"))
    assert strict == report and set(report["sets"]) == {face, line}


def test_json_writes_an_ece_that_is_not_a_number_as_null():
    """A set's ECE that is not a number is written as null, and the table shows '-'."""
    row = {"n": 0, "rows": 2, "patterns": {}, "ece_single": calibrate.finite(float("nan")),
           "ece_pattern_in_sample": calibrate.finite(0.1), "ece_pattern_cross_fitted": None}
    assert json.loads(json.dumps(row, allow_nan=False))["ece_single"] is None
    assert calibrate.table_row("s", row) == "| s | 0 (of 2 rows) |  | - | 0.100 | - |"


# ---------------------------------------------------------------- 4. fits that say little; the cross-fitted column
def test_calibrate_warns_of_a_fit_on_one_label_or_at_the_search_bound(tmp_path, features, caplog):
    """60 faces of one label, and 60 sure faces all wrong (T runs to 20.09): a warning line each (before
    2026-12-07 their temperatures were written without a word)."""
    head = small_head(tmp_path / "head.pt")
    one, wrong = spec_file(tmp_path / "one.parquet"), spec_file(tmp_path / "wrong.parquet")
    features[one] = faces(60, labels=np.full(60, 4))
    z = np.zeros((60, 7), np.float32)
    z[:, 0] = 8.0
    features[wrong] = ([{"face": row[None]} for row in z], 1 + np.arange(60) % 6)
    for spec, said in ((one, "its 60 labelled rows cover 1 label"), (wrong, "sits at the bound of the search")):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="pipeline.calibrate"):
            calibrate.main(["--head", head, "--data", spec, "--output", str(tmp_path / "o.pt")])
        [line] = [r.getMessage() for r in caplog.records if r.name == "pipeline.calibrate"]
        assert line.startswith("branch:face temperature") and said in line, line


def test_a_fold_too_small_to_fit_keeps_the_whole_data_temperature(tmp_path, features):
    """60 faces fit the face temperature, a half of them (about 30) does not: each fold keeps the whole-data value,
    as the written head does, so the cross-fitted column is that head's ECE (before 2026-12-07: T 1, the single
    column's)."""
    head = small_head(tmp_path / "head.pt")
    spec = spec_file(tmp_path / "f.parquet")
    features[spec] = faces(60, t_true=3.0)
    row = calibrate.main(["--head", head, "--data", spec, "--output", str(tmp_path / "o.pt")])["sets"][spec]
    assert row["ece_pattern_cross_fitted"] == pytest.approx(row["ece_pattern_in_sample"], abs=1e-12)
    assert abs(row["ece_pattern_cross_fitted"] - row["ece_single"]) > 0.02


def test_n_and_the_pattern_counts_are_both_labelled_rows(tmp_path, features, capsys):
    """14 labelled rows of 16: n and the pattern counts agree (before 2026-12-07: 14 and 16), every row as `rows`."""
    head = small_head(tmp_path / "head.pt")
    spec = spec_file(tmp_path / "f.parquet")
    items, y = faces(16)
    y[:2] = -1
    features[spec] = items, y
    row = calibrate.main(["--head", head, "--data", spec, "--output", str(tmp_path / "o.pt")])["sets"][spec]
    assert row["n"] == 14 == sum(row["patterns"].values()) and row["rows"] == 16
    assert f"| {spec} | 14 (of 16 rows) | branch:face 14 |" in capsys.readouterr().out
