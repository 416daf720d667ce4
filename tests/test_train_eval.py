"""Readers, train and evaluate end to end on small slices of the real labelled data, and the shipped head."""
import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from training.datasets import fingerprint, load_dataset
from schemas.labels import EMOTIONS as LABELS

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MELD = DATA / "text" / "meld"
FER = DATA / "faces" / "fer2013"
needs_data = pytest.mark.skipif(not (MELD.is_dir() and FER.is_dir()), reason="shared data not present")


def meld_slice(src: Path, dst: Path, n_dialogues: int) -> Path:
    with open(src, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    keep = sorted({r["Dialogue_ID"] for r in rows}, key=int)[:n_dialogues]
    rows = [r for r in rows if r["Dialogue_ID"] in keep]
    with open(dst, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return dst


def fer_slice(dst: Path, per_class: int) -> Path:
    for d in sorted(FER.iterdir()):
        (dst / d.name).mkdir(parents=True)
        for img in sorted(d.iterdir())[:per_class]:
            shutil.copy(img, dst / d.name / img.name)
    return dst


@needs_data
def test_readers_on_real_data():
    dev = load_dataset(f"meld:{MELD / 'dev_sent_emo.csv'}")
    assert len(dev) == 1109 and {e.label for e in dev} == set(range(7))
    assert all(e.valence in (-1.0, 0.0, 1.0) for e in dev)
    # Context = earlier lines of the same dialogue, oldest first, by the rule a film's clips get theirs by
    # (transforms.segment.dialogue_context: a line said twice in a row is context once).
    from transforms.segment import dialogue_context
    d1 = [e for e in dev if e.group == "meld-1"]
    assert d1[0].context == () and d1[2].context == (d1[0].text, d1[1].text)
    for group in {e.group for e in dev}:
        lines = [e for e in dev if e.group == group]
        assert [e.context for e in lines] == dialogue_context([e.text for e in lines], 3)
    go = load_dataset(f"goemotions:{DATA / 'text/goemotions_ekman/dev.tsv'}")
    assert len(go) > 4000 and all(0 <= e.label < 7 for e in go)
    emory = load_dataset(f"emorynlp:{DATA / 'text/emorynlp/emorynlp_dev_final.csv'}")
    assert {LABELS[e.label] for e in emory} <= set(LABELS)
    tr, dv = load_dataset(f"imagefolder:{FER}#train"), load_dataset(f"imagefolder:{FER}#dev")
    assert len(tr) + len(dv) == 2247 and not {e.image for e in tr} & {e.image for e in dv}
    assert abs(len(dv) / 2247 - 0.2) < 0.01
    assert fingerprint(f"imagefolder:{FER}#train") != fingerprint(f"imagefolder:{FER}#dev")
    sub = load_dataset(f"goemotions:{DATA / 'text/goemotions_ekman/dev.tsv'}@300")
    assert len(sub) == 300 and sub == load_dataset(f"goemotions:{DATA / 'text/goemotions_ekman/dev.tsv'}@300")


def test_a_data_spec_that_names_nothing_stops_the_command_before_any_model_loads(tmp_path, capsys):
    """pipeline.train / evaluate / calibrate: a wrong kind, split, sample size or a path not there is the usage
    and one line (argparse, exit status 2), not a traceback after the models loaded."""
    from pipeline import calibrate, evaluate, train
    (tmp_path / "dev.csv").write_text("Utterance,Emotion\n")
    bad = {"bogus:x": "KIND in", f"meld:{tmp_path / 'none.csv'}": "no such file or folder",
           f"meld:{tmp_path / 'dev.csv'}#test": "#train or #dev", f"meld:{tmp_path / 'dev.csv'}@ten": "@N"}
    for spec, message in bad.items():
        for main, argv in ((evaluate.main, ["--data", spec]), (calibrate.main, ["--data", spec, "--output", "x"]),
                           (train.main, ["--data", f"meld:{tmp_path / 'dev.csv'}", "--dev", spec, "--out", "x"])):
            with pytest.raises(SystemExit) as stop:
                main(argv)
            assert stop.value.code == 2 and message in capsys.readouterr().err, (spec, main)


def test_an_output_over_an_input_or_where_nothing_can_be_written_stops_before_any_work(tmp_path, capsys, monkeypatch):
    """pipeline.train --out, calibrate --output / --json and evaluate --json naming an input file wrote over it; a
    folder or a missing one failed only after all the work (before 2026-12-07, found in review)."""
    import filecmp
    from pipeline import calibrate, evaluate, train
    from training.datasets import data_spec
    data = tmp_path / "dev.csv"
    data.write_text("Utterance,Emotion\nHi.,joy\n")
    spec = f"meld:{data}"
    cases = [(train.main, ["--data", spec, "--out", str(data)], "--out", "is an input of this command"),
             (calibrate.main, ["--data", spec, "--output", str(data)], "--output", "would be written over"),
             (evaluate.main, ["--data", spec, "--json", str(data)], "--json", "would be written over"),
             (train.main, ["--data", spec, "--out", str(tmp_path)], "--out", "is a folder"),
             (train.main, ["--data", spec, "--out", str(tmp_path / "no" / "h.pt")], "--out", "cannot write")]
    # the command's own head, or its other output: the metrics were written over the head they read
    import shutil
    from model.checkpoints import DEFAULT_HEAD
    head = str(shutil.copy(DEFAULT_HEAD, tmp_path / "head.pt"))
    cases += [(evaluate.main, ["--data", spec, "--head", head, "--json", head], "--json", "would be written over"),
              (calibrate.main, ["--data", spec, "--output", str(tmp_path / "o.pt"), "--json", str(tmp_path / "o.pt")],
               "--json", "would be written over"),
              (calibrate.main, ["--data", spec, "--head", head, "--output", str(tmp_path / "o.pt"), "--json", head],
               "--json", "would be written over")]
    for main, argv, flag, message in cases:
        with pytest.raises(SystemExit) as stop:
            main(argv)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and flag in err and message in err, (argv, err)
    assert data.read_text() == "Utterance,Emotion\nHi.,joy\n" and filecmp.cmp(head, DEFAULT_HEAD, shallow=False)
    # a spec is recorded with its path made absolute, so what a head has seen is found from any folder
    monkeypatch.chdir(tmp_path)
    assert data_spec("meld:dev.csv#dev") == f"meld:{data}#dev" and data_spec("meld:dev.csv@1") == f"meld:{data}@1"


def test_evaluate_refuses_a_set_whose_evidence_modalities_leaves_out(tmp_path, capsys):
    """MELD under --modalities face was scored from no evidence: every row the head's prior (neutral), accuracy 0.45
    printed as a result (found in review, 2026-12-07). Refused before any model loads; a set with one modality let
    through is scored."""
    from pipeline import evaluate
    (tmp_path / "dev.csv").write_text("Utterance,Emotion\n")
    with pytest.raises(SystemExit) as stop:
        evaluate.main(["--data", f"meld:{tmp_path / 'dev.csv'}", "--modalities", "face"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "its text evidence is left out by --modalities face" in err, err
    args = evaluate.build_parser().parse_args(["--data", f"frames:{tmp_path / 'dev.csv'}", "--modalities", "face"])
    assert evaluate.unlearnt_problems(args) == []


def test_a_head_or_modality_that_is_not_there_stops_the_command_before_any_model_loads(tmp_path, capsys):
    """pipeline.evaluate / calibrate / rescore / report: --head, --text_model or --vision_model naming a path that is not
    there, or --modalities naming no branch, is the usage and one line (exit status 2), not a traceback."""
    from pipeline import calibrate, evaluate, rescore
    from pipeline.report.__main__ import main as report_main
    (tmp_path / "dev.csv").write_text("Utterance,Emotion\n")
    data = ["--data", f"meld:{tmp_path / 'dev.csv'}"]
    missing = str(tmp_path / "nope.pt")
    cases = [(evaluate.main, data + ["--head", missing], "no such file or folder"),
             (evaluate.main, data + ["--modalities", "text,smell"], "unknown modalities ['smell']"),
             (calibrate.main, data + ["--output", "x", "--head", missing], "no such file or folder"),
             (rescore.run, ["--features", str(tmp_path), "--output", "x", "--vision_model", "./nope.onnx"],
              "no such file or folder"),
             (rescore.run, ["--features", str(tmp_path), "--output", "x", "--modalities", "smell"], "unknown"),
             (report_main, ["--input", str(tmp_path), "--head", missing], "no such file or folder")]
    # A file that is there but is not a head (a Parquet file, the face classifier's weights): one line, not torch's
    # unpickling traceback (before 2026-12-05; pipeline.run met it in its workers).
    (tmp_path / "not_a_head.pt").write_bytes(b"PAR1 not a checkpoint")
    not_a_head = str(tmp_path / "not_a_head.pt")
    cases += [(evaluate.main, data + ["--head", not_a_head], "not a BVPEC head checkpoint"),
              (calibrate.main, data + ["--output", "x", "--head", not_a_head], "not a BVPEC head checkpoint"),
              (rescore.run, ["--features", str(tmp_path), "--output", "x", "--head", not_a_head], "not a BVPEC head"),
              (report_main, ["--input", str(tmp_path), "--head", not_a_head], "not a BVPEC head checkpoint")]
    for main, argv, message in cases:
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2 and message in capsys.readouterr().err, (main, argv)
    # A file of another kind than its spec names: one line naming the spec, not the reader's traceback.
    from pipeline import train
    for main, prog, extra in ((evaluate.main, "pipeline.evaluate", []), (calibrate.main, "pipeline.calibrate",
                              ["--output", "x"]), (train.main, "pipeline.train", ["--out", "x"])):
        with pytest.raises(SystemExit, match=f"{prog}: faces:.*dev.csv: cannot be read as faces data"):
            main(["--data", f"faces:{tmp_path / 'dev.csv'}"] + extra)
    from pipeline.run import run
    with pytest.raises(SystemExit, match="--head .*not_a_head.pt: not a BVPEC head checkpoint"):
        run(["--input", str(tmp_path / "dev.csv"), "--output", str(tmp_path / "out"), "--head", not_a_head])


def test_label_spellings_are_read_and_foreign_labels_counted(tmp_path, caplog):
    """A set labelled as FER2013, RAVDESS or TESS write it (happy, fearful, calm, pleasant_surprise) is read in
    our names; a label that names none of the 7 (contempt) is left out, counted by name and said; a set with no
    label of ours (numbers) stops with the labels it found. Before 2026-12-06 any label not spelt as ours was
    dropped without a word: a set labelled 'happy', 'sad' was scored on its neutral rows alone."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from collections import Counter
    from training.datasets import DataError
    words = ["Happy", "fearful", "calm", "pleasant_surprise", "disgusted", "angry", "sad", "contempt", None, "joy"]
    pq.write_table(pa.table({"image": [b"x"] * 10, "label": words}), tmp_path / "faces.parquet")
    left_out = Counter()
    with caplog.at_level("WARNING", logger="training.datasets"):
        rows = load_dataset(f"faces:{tmp_path / 'faces.parquet'}", left_out)
    assert [LABELS[e.label] if e.label >= 0 else None for e in rows] == [
        "joy", "fear", "neutral", "surprise", "disgust", "anger", "sadness", None, "joy"]  # contempt left out
    assert left_out == {"contempt": 1} and "1 rows left out: their label is none of the 7" in caplog.text
    pq.write_table(pa.table({"image": [b"x"] * 3, "label": [0, 3, 6]}), tmp_path / "numbers.parquet")
    with pytest.raises(DataError, match=r"no row has a label this project knows \(found '0' 1, '3' 1, '6' 1\).*"
                                        r"The labels are numbers"):
        load_dataset(f"faces:{tmp_path / 'numbers.parquet'}")
    for name in ("happy", "contempt"):  # an image folder: FER names read, another folder counted, its images unread
        (tmp_path / "folder" / name).mkdir(parents=True)
        (tmp_path / "folder" / name / "a.png").write_bytes(b"not read")
    left_out = Counter()
    [face] = load_dataset(f"imagefolder:{tmp_path / 'folder'}", left_out)
    assert LABELS[face.label] == "joy" and left_out == {"contempt": 1}
    (tmp_path / "m.csv").write_text("video,start,end,label\na.mp4,00:01:02.5,00:01:04,500,Surprised\n"
                                    "b.mp4,0,2,boredom\n".replace("00:01:04,500", '"00:01:04,500"'))
    [clip] = load_dataset(f"clips:{tmp_path / 'm.csv'}")
    assert LABELS[clip.label] == "surprise" and (clip.start_s, clip.end_s) == (62.5, 64.5)  # as subtitles write times
    (tmp_path / "f.csv").write_text("video,start,end,label\na.mp4,00:01:02:12,00:01:04:00,joy\n")
    with pytest.raises(DataError, match="'00:01:02:12' is not a time: give seconds"):
        load_dataset(f"clips:{tmp_path / 'f.csv'}")
    # A MELD-style CSV saved by a spreadsheet in Windows-1252 (a 0x92 apostrophe) is read, not a UnicodeDecodeError.
    (tmp_path / "test.csv").write_bytes("Utterance,Emotion,Sentiment,Dialogue_ID,Utterance_ID\n"
                                        "I\x92m fine,joy,positive,0,0\n".encode("latin-1"))
    [line] = load_dataset(f"meld:{tmp_path / 'test.csv'}")
    assert line.text == "I\u2019m fine" and LABELS[line.label] == "joy"
    # the branch classifiers' trainers learn from every row: spellings read, anything else refused by name
    from training.datasets import label_indices
    assert label_indices(["Happy", "calm", None], "x", allow_null=True) == [3, 4, -1]
    for values, said in ((["joy", "contempt"], "'contempt' 1"), (["joy", None], "'(no label)' 1")):
        with pytest.raises(ValueError, match=rf"x: 1 rows have no label of the 7 emotions \({re.escape(said)}\)"):
            label_indices(values, "x")
    from training.metrics import format_table
    m = {"n": 1, "accuracy": 1.0, "weighted_f1": 1.0, "macro_f1": 1.0, "left_out_labels": {"contempt": 2},
         "per_class": {}, "confusion_matrix": [[0] * 7] * 7}
    assert "rows left out, label none of the 7: 2 (contempt 2)" in format_table("x", m)


def test_media_in_hugging_face_structs_are_read(tmp_path):
    """A Parquet set saved by Hugging Face datasets holds each image or sound as {bytes, path}: the bytes are read,
    or the file the path names beside the Parquet file (every row was unreadable before 2026-12-06)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    (tmp_path / "b.png").write_bytes(b"png bytes of b")
    cells = [{"bytes": b"png bytes of a", "path": "a.png"}, {"bytes": None, "path": "b.png"},
             {"bytes": None, "path": "gone.png"}]
    for column, kind in (("image", "faces"), ("image", "frames"), ("audio", "audio")):
        pq.write_table(pa.table({column: cells, "label": ["joy", "sad", "anger"]}), tmp_path / f"{kind}.parquet")
        rows = load_dataset(f"{kind}:{tmp_path / f'{kind}.parquet'}")
        assert [e.data for e in rows] == [b"png bytes of a", b"png bytes of b", None], kind
    # or a column of file paths (relative to the Parquet file, or absolute)
    pq.write_table(pa.table({"image": ["b.png", str(tmp_path / "b.png")], "label": ["joy", "joy"]}),
                   tmp_path / "paths.parquet")
    assert [e.data for e in load_dataset(f"faces:{tmp_path / 'paths.parquet'}")] == [b"png bytes of b"] * 2


def test_a_sets_columns_are_named_when_one_is_missing(tmp_path):
    """A Parquet set's label column may be `emotion` (FER2013's name, and many exports'); a set without its media or
    label column stops every reader naming the columns it has (a KeyError on the first row before 2026-12-06)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from training.datasets import DataError, parquet_columns
    pq.write_table(pa.table({"image": [b"a", b"b"], "emotion": ["happy", "Angry"]}), tmp_path / "emotion.parquet")
    assert [LABELS[e.label] for e in load_dataset(f"faces:{tmp_path / 'emotion.parquet'}")] == ["joy", "anger"]
    pq.write_table(pa.table({"img": [b"a"], "emotion": ["joy"], "actor": ["x"]}), tmp_path / "img.parquet")
    with pytest.raises(DataError, match=r"cannot be read as faces data \(ValueError: no 'image' column \(its columns: "
                                        r"img, emotion, actor\)"):
        load_dataset(f"faces:{tmp_path / 'img.parquet'}")
    pq.write_table(pa.table({"audio": [b"a"], "mood": ["joy"]}), tmp_path / "mood.parquet")
    with pytest.raises(DataError, match=r"no 'label' column \(its columns: audio, mood\)"):
        load_dataset(f"audio:{tmp_path / 'mood.parquet'}")
    # the branch trainers read through the same function
    from training.face_classifier import read_labels
    labels, votes = read_labels(tmp_path / "emotion.parquet")
    assert list(labels) == [LABELS.index("joy"), LABELS.index("anger")] and votes is None
    with pytest.raises(ValueError, match="no 'image' column"):
        read_labels(tmp_path / "img.parquet")
    assert parquet_columns(tmp_path / "mood.parquet", ["audio", "speaker"]).column_names == ["audio"]


def test_clip_manifest(tmp_path):
    (tmp_path / "m.jsonl").write_text(
        json.dumps({"video": "a.mp4", "start": 1.5, "end": 3, "label": "happy", "text": "hi",
                    "context": ["before"], "valence": 0.5}) + "\n")
    (tmp_path / "m.csv").write_text("video,start,end,label,text,valence,arousal\n/x/b.mkv,0,2,anger,,,-0.2\n")
    [a] = load_dataset(f"clips:{tmp_path / 'm.jsonl'}")
    assert a.video == str(tmp_path / "a.mp4") and a.label == LABELS.index("joy") and a.context == ("before",)
    assert a.valence == 0.5 and np.isnan(a.arousal)
    [b] = load_dataset(f"clips:{tmp_path / 'm.csv'}")
    assert b.text is None and b.label == 0 and b.arousal == -0.2 and np.isnan(b.valence)
    # the line and its context read as the pipeline reads subtitle cues: tags, character references and SDH go
    # (transforms.dialogue: clean_text, then dialogue_text); before 2026-12-06 they reached the text model as written
    (tmp_path / "sdh.jsonl").write_text(json.dumps({
        "video": "a.mp4", "start": 0, "end": 2, "label": "anger", "text": "<i>You lied to me!</i>",
        "context": "[door slams] JOHN: Where were you last night? || MARY: Out &amp; about. || [sighs]"}) + "\n")
    [c] = load_dataset(f"clips:{tmp_path / 'sdh.jsonl'}")
    assert c.text == "You lied to me!" and c.context == ("Where were you last night?", "Out & about.")


@needs_data
def test_train_then_evaluate_end_to_end(tmp_path, monkeypatch):
    from pipeline import evaluate, train
    from model.checkpoints import load_head
    monkeypatch.setenv("FILM_EMOTION_FEATURE_CACHE", str(tmp_path / "cache"))
    tr = meld_slice(MELD / "train_sent_emo.csv", tmp_path / "train.csv", 25)
    dv = meld_slice(MELD / "dev_sent_emo.csv", tmp_path / "dev.csv", 12)
    faces = fer_slice(tmp_path / "fer", 12)
    out = tmp_path / "head.pt"
    args = ["--data", f"meld:{tr}", "--data", f"imagefolder:{faces}#train", "--dev", f"meld:{dv}",
            "--dev", f"imagefolder:{faces}#dev", "--pairs", "100", "--epochs", "2", "--d_model", "32",
            "--out", str(out), "--threads", "1"]
    meta = train.main(args)
    assert out.is_file() and meta["best_epoch"] >= 1 and len(meta["history"]) == 2
    model, meta2 = load_head(out)
    assert meta2["training_data"] == meta["training_data"] and model.config.d_model == 32
    # Seeded: the same command gives the same weights.
    train.main(args[:-4] + ["--out", str(tmp_path / "again.pt"), "--threads", "1"])
    again, _ = load_head(tmp_path / "again.pt")
    for (k, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k
    js = tmp_path / "eval.json"
    # lines and faces only: the head learnt no frames or voices, so it is scored on what it learnt (since
    # 2026-12-06 the default, all four, is refused: test_head_modalities.py)
    assert meta["trained_modalities"] == ["text", "face"]
    rep = evaluate.main(["--data", f"meld:{dv}", "--data", f"imagefolder:{faces}#dev", "--head", str(out),
                         "--json", str(js), "--cv", "3", "--threads", "1", "--modalities", "text,face"])
    saved = json.loads(js.read_text())
    m = saved["results"][f"meld:{dv}"]
    for key in ("n", "accuracy", "weighted_f1", "macro_f1", "ece", "mean_confidence", "per_class", "confusion_matrix",
                "confusion", "pearson_valence", "cv"):
        assert key in m, key
    assert 0.0 <= m["ece"] <= 1.0 and 1 / 7 <= m["mean_confidence"] <= 1.0
    assert 0.0 < m["ece_if_calibrated"] <= m["ece_if_calibrated_p95"] < 1.0  # a few dozen lines: far from 0
    assert m["n"] == sum(c["support"] for c in m["per_class"].values()) == sum(map(sum, m["confusion_matrix"]))
    assert list(m["per_class"]) == list(LABELS) and len(m["confusion_matrix"]) == 7
    assert m["cv"]["k"] == 3 and m["cv"]["accuracy"]["ci95"][0] <= m["cv"]["accuracy"]["mean"]
    assert saved["results"][f"imagefolder:{faces}#dev"]["n"] == sum(
        max(1, round(min(12, len(list((FER / d).iterdir()))) * 0.2)) for d in [p.name for p in FER.iterdir()])
    assert rep["results"] == saved["results"]


@needs_data
def test_shipped_head_on_real_slices(tmp_path, monkeypatch):
    """The shipped head, scored on slices of the dev data it was selected on: well above chance."""
    from pipeline import evaluate
    from model.checkpoints import DEFAULT_HEAD, load_head
    if not DEFAULT_HEAD.is_file():
        pytest.skip("no shipped head yet")
    monkeypatch.setenv("FILM_EMOTION_FEATURE_CACHE", str(tmp_path / "cache"))
    model, meta = load_head()
    assert set(model.config.input_dims) == {"text", "vision", "face", "audio"}
    assert DEFAULT_HEAD.stat().st_size < 32 * 2**20  # head + 6 tuned MiniLM layers + tuned mini-Xception, fp16
    dv = meld_slice(MELD / "dev_sent_emo.csv", tmp_path / "dev.csv", 25)
    faces = fer_slice(tmp_path / "fer", 20)
    rep = evaluate.main(["--data", f"meld:{dv}", "--data", f"imagefolder:{faces}", "--threads", "1"])
    meld, fer = rep["results"][f"meld:{dv}"], rep["results"][f"imagefolder:{faces}"]
    assert meld["weighted_f1"] > 0.45, meld["weighted_f1"]
    assert fer["accuracy"] > 0.45, fer["accuracy"]


@pytest.mark.skipif(not (MELD / "train_sent_emo.csv").is_file(), reason="shared data not present")
def test_train_without_dev_keeps_the_last_epoch(tmp_path, monkeypatch):
    """No --dev: nothing to select on, so every epoch runs and the last one's weights are saved (the head
    used to be lost: the best state was never stored and load_state_dict(None) raised)."""
    from model.checkpoints import load_head
    from pipeline import train
    monkeypatch.setenv("FILM_EMOTION_FEATURE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "head.pt"
    meta = train.main(["--data", f"meld:{MELD / 'train_sent_emo.csv'}@200", "--epochs", "2", "--d_model", "32",
                       "--out", str(out), "--threads", "1"])
    assert meta["best_epoch"] == 2 and len(meta["history"]) == 2 and meta["selected"].startswith("last epoch")
    assert np.isnan(meta["dev_score"]) and meta["dev_metrics"] == {} and meta["n_train"] == 200
    model, saved = load_head(out)
    assert model.config.d_model == 32 and saved["best_epoch"] == 2 and saved["training_data"] == meta["training_data"]


@needs_data
def test_ema_keeps_the_averaged_weights(tmp_path, monkeypatch):
    """--ema: each epoch is scored on, and the head kept from, the moving average of the weights. With a decay
    near 1 the average barely leaves the first step's weights (a warm-up step), so the kept head stays by its
    initial weights while the plain run's last step has moved away from them."""
    from model.bvpec import BVPEC
    from model.checkpoints import load_head
    from pipeline import train
    from training.loop import seed_everything
    monkeypatch.setenv("FILM_EMOTION_FEATURE_CACHE", str(tmp_path / "cache"))
    common = ["--data", f"meld:{MELD / 'train_sent_emo.csv'}@200", "--dev", f"meld:{MELD / 'dev_sent_emo.csv'}@100",
              "--epochs", "2", "--patience", "5", "--d_model", "32", "--threads", "1", "--lr", "3e-3",
              "--batch_size", "8"]  # 50 steps: the first ones are the one-cycle schedule's small warm-up steps
    plain = train.main(common + ["--out", str(tmp_path / "plain.pt")])
    ema = train.main(common + ["--out", str(tmp_path / "ema.pt"), "--ema", "0.999999"])
    assert "EMA" in ema["selected"] and "EMA" not in plain["selected"]
    # the same steps were taken (same seed, same loss), only what is scored and kept differs
    assert [h["train_loss"] for h in plain["history"]] == [h["train_loss"] for h in ema["history"]]
    kept = {n: load_head(tmp_path / f"{n}.pt")[0] for n in ("plain", "ema")}
    seed_everything(0)
    init = BVPEC(kept["plain"].config).state_dict()

    def moved(model):
        return sum(float((v.float() - init[k].float()).norm()) for k, v in model.state_dict().items()
                   if v.is_floating_point() and k in init)
    assert moved(kept["ema"]) < 0.2 * moved(kept["plain"])


@needs_data
def test_text_fine_tuning_is_calibrated_and_scored_through_its_tuned_layers(tmp_path, monkeypatch):
    """--finetune_text_layers: the temperature is fitted, and the calibrated dev metrics measured, on the tuned
    layers' output, as the pipeline computes it (the head alone on the cached lower-layer states read 0.32 weighted
    F1 where the run's epochs read 0.59, and fitted its T on those logits). A temperature never moves the argmax, so
    the calibrated accuracy is the chosen epoch's, and pipeline.evaluate on the saved head (the full encoder with the
    tuned layers put back) gives the same labels and the same calibrated probabilities."""
    from model.checkpoints import load_head, load_head_meta
    from pipeline import evaluate, train
    monkeypatch.setenv("FILM_EMOTION_FEATURE_CACHE", str(tmp_path / "cache"))
    dev = f"meld:{MELD / 'dev_sent_emo.csv'}@120"
    out = tmp_path / "head.pt"
    meta = train.main(["--variant", "text_only", "--data", f"meld:{MELD / 'train_sent_emo.csv'}@300", "--dev", dev,
                       "--finetune_text_layers", "1", "--epochs", "2", "--d_model", "32", "--threads", "1",
                       "--precision", "fp32", "--out", str(out)])
    chosen, calibrated = meta["dev_metrics"][dev], meta["dev_metrics_calibrated"][dev]
    assert meta["finetuned_text_layers"] == 1 and meta["temperature"] != 1.0
    assert calibrated["accuracy"] == chosen["accuracy"] and calibrated["weighted_f1"] == chosen["weighted_f1"]
    rep = evaluate.main(["--data", dev, "--head", str(out), "--precision", "fp32", "--threads", "1",
                         "--modalities", "text"])["results"][dev]  # a text-only head learnt lines alone
    assert rep["n"] == calibrated["n"] and rep["accuracy"] == pytest.approx(calibrated["accuracy"], abs=1 / 120)
    assert rep["ece"] == pytest.approx(calibrated["ece"], abs=0.01)
    # a second stage (the shipped text layers: GoEmotions and EmoryNLP first, then MELD) starts from the first
    # stage's layers: with a zero learning rate it gives them back unchanged
    again = train.main(["--variant", "text_only", "--data", f"meld:{MELD / 'train_sent_emo.csv'}@100",
                        "--text_encoder_from", str(out), "--finetune_text_layers", "1", "--text_lr", "0",
                        "--epochs", "1", "--d_model", "32", "--threads", "1", "--precision", "fp32",
                        "--out", str(tmp_path / "stage2.pt")])
    first = load_head_meta(out)["text_encoder_overrides"]
    assert again["text_encoder_from"] == str(out) and set(again["text_encoder_overrides"]) == set(first)
    assert all(torch.equal(again["text_encoder_overrides"][k].half(), first[k]) for k in first)
    # --text_classifier: a text-only head on this head's very text layers rides in it; on other layers it is refused
    with_reader = train.main(["--data", f"meld:{MELD / 'train_sent_emo.csv'}@100", "--text_encoder_from", str(out),
                              "--text_classifier", str(out), "--epochs", "1", "--d_model", "32", "--threads", "1",
                              "--precision", "fp32", "--out", str(tmp_path / "with_reader.pt")])
    assert with_reader["text_classifier"]["from"] == str(out)
    assert load_head(tmp_path / "with_reader.pt")[0].text_classifier.config.variant == "text_only"
    for bad in ([], ["--text_encoder_from", str(out), "--finetune_text_layers", "1"]):  # none; re-tuned
        with pytest.raises(SystemExit, match="text layers are not this head's"):
            train.main(["--data", f"meld:{MELD / 'train_sent_emo.csv'}@100", "--text_classifier", str(out), *bad,
                        "--epochs", "1", "--out", str(tmp_path / "refused.pt")])


@needs_data
def test_select_chooses_the_epoch_on_the_named_dev_sets(tmp_path, monkeypatch):
    """--select: the epoch is chosen on the named dev sets' weighted F1 only (the others are still reported); a name
    no dev set has stops the run before training."""
    from pipeline import train
    monkeypatch.setenv("FILM_EMOTION_FEATURE_CACHE", str(tmp_path / "cache"))
    faces = fer_slice(tmp_path / "fer", 3)
    common = ["--data", f"meld:{MELD / 'train_sent_emo.csv'}@200", "--dev", f"meld:{MELD / 'dev_sent_emo.csv'}@100",
              "--dev", f"imagefolder:{faces}", "--epochs", "3", "--patience", "5", "--d_model", "32", "--threads", "1"]
    meta = train.main(common + ["--out", str(tmp_path / "head.pt"), "--select", "meld"])
    for h in meta["history"]:
        scores = {k.split(":")[0]: v for k, v in h.items() if k.endswith(":weighted_f1")}
        assert set(scores) == {"meld", "imagefolder"} and h["dev_score"] == pytest.approx(scores["meld"])
    assert meta["dev_score"] == max(h["dev_score"] for h in meta["history"])
    with pytest.raises(SystemExit, match="no --dev set"):
        train.main(common + ["--out", str(tmp_path / "none.pt"), "--select", "emodb"])


@pytest.mark.skipif(not (DATA / "media" / "grid").is_dir(), reason="shared media not present")
def test_clip_manifest_features_and_shipped_head(tmp_path, monkeypatch):
    """A studio's labelled clip: decoded with PyAV, all four modalities encoded, scored by the shipped head."""
    from model.checkpoints import load_head
    from model.predict import predict
    from model.encoders import EncoderSpec, create_encoders
    from training.features import features_for
    monkeypatch.setenv("FILM_EMOTION_FEATURE_CACHE", str(tmp_path / "cache"))
    video = sorted((DATA / "media" / "grid").glob("*.mpg"))[0]
    (tmp_path / "m.csv").write_text(f"video,start,end,label,text\n{video},0.2,2.0,neutral,bin blue at f two now\n")
    model, meta = load_head()
    _, feats = features_for(f"clips:{tmp_path / 'm.csv'}", create_encoders(EncoderSpec()))  # the shipped head's
    f = feats[0]
    assert f["text"].shape[1] == 384 and f["vision"].shape[0] > 0 and f["audio"].shape[0] > 0
    [p] = predict(model, feats)
    assert abs(p.probs.sum() - 1) < 1e-6 and "text" in p.modalities_used and "audio" in p.modalities_used


@pytest.mark.timeout(600)
def test_a_clip_manifest_reads_the_lines_the_run_reads(tmp_path, monkeypatch):
    """A film with German subtitles: the run does not read its lines (the shipped text path learnt English), and a
    clip manifest of the same clips (no language column) does not either: the one rule
    (transforms.language.unread_languages), the language identified from the film's lines together as the run
    does. Before 2026-12-06 training, evaluation and calibration encoded the lines the run leaves unread. A
    `language` column decides where given; the languages read are part of the feature cache's key."""
    import pyarrow.parquet as pq
    from model.encoders import EncoderSpec, create_encoders
    from pipeline.run import run
    from testing.films import write_srt
    from tests.scoring_support import tiny_film
    from training import features as training_features
    monkeypatch.setenv("FILM_EMOTION_FEATURE_CACHE", str(tmp_path / "cache"))
    film = tiny_film(tmp_path, seconds=6.0)
    write_srt(film.with_suffix(".srt"), [(0.3, 2.5, "Was führt dich in das Land der Torwächter?"),
                                         (3.0, 5.5, "Eine gefährliche Suche für eine einsame Jägerin.")])
    out = tmp_path / "out"
    assert run(["--input", str(film), "--output", str(out), "--transcribe", "never", "--frames_per_clip", "1",
                "--write_features"], save_main_session=False)["ok"] == 1
    clips = sorted(pq.read_table(out / "clips").to_pylist(), key=lambda r: r["clip_index"])
    feats = {r["clip_index"]: r for r in pq.read_table(out / "features").to_pylist()}
    assert [r["language"] for r in clips if r["text"]] == ["de", "de"]
    assert all(feats[r["clip_index"]]["text_len"] == 0 for r in clips)  # the run read no line

    def write_manifest(path, **more):
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, ["video", "start", "end", "label", "text", *more])
            w.writeheader()
            w.writerows({"video": r["film_path"], "start": r["start_s"], "end": r["end_s"], "label": r["emotion"],
                         "text": r["text"] or "", **more} for r in clips)
        return path
    manifest = write_manifest(tmp_path / "m.csv")
    enc = create_encoders(EncoderSpec())
    _, labelled = training_features.features_for(f"clips:{manifest}", enc)
    assert [len(t["text"]) for t in labelled] == [feats[r["clip_index"]]["text_len"] for r in clips]
    # Reading German lines is another setting: features of their own, with the lines read.
    _, german = training_features.features_for(f"clips:{manifest}", enc, text_languages=("de",))
    assert [len(t["text"]) > 0 for t in german] == [bool(r["text"]) for r in clips]
    assert len(list((tmp_path / "cache").glob("clips-*.pt"))) == 2
    # A manifest's language column decides where it names one (here: wrongly, English): the line is read.
    tagged = write_manifest(tmp_path / "tagged.csv", language="en")
    _, read = training_features.features_for(f"clips:{tagged}", enc)
    assert [len(t["text"]) > 0 for t in read] == [bool(r["text"]) for r in clips]
    # The commands take the run's --text_languages: evaluate with 'de' reads the German lines (the cache of that
    # setting, above), with 'any' every line (a cache of its own); calibrate and train take it as well.
    from pipeline import evaluate
    evaluate.main(["--data", f"clips:{manifest}", "--text_languages", "de"])
    assert len(list((tmp_path / "cache").glob("clips-*.pt"))) == 3  # (2, and the tagged manifest's)
    evaluate.main(["--data", f"clips:{manifest}", "--text_languages", "any"])
    assert len(list((tmp_path / "cache").glob("clips-*.pt"))) == 4
    with pytest.raises(SystemExit):
        evaluate.main(["--data", f"clips:{manifest}", "--text_languages", "klingon"])


@needs_data
def test_english_text_sets_are_read_as_they_always_were():
    """MELD, EmoryNLP and GoEmotions are English sets: their readers say so, and under the languages the shipped
    text path reads every line of them is read (their tokens are those of before 2026-12-06); a text path that
    reads French only would read none of them."""
    from model.encoders.versions import TEXT_LANGUAGES
    from training.features import lines_as_read
    for spec in (f"meld:{MELD / 'dev_sent_emo.csv'}", f"emorynlp:{DATA / 'text/emorynlp/emorynlp_dev_final.csv'}",
                 f"goemotions:{DATA / 'text/goemotions_ekman/dev.tsv'}"):
        examples = load_dataset(spec)
        assert {e.language for e in examples} == {"en"}, spec
        assert lines_as_read(examples, TEXT_LANGUAGES) == examples and lines_as_read(examples, ()) == examples
        assert not any(e.text or e.context for e in lines_as_read(examples[:50], ("fr",)))


@needs_data
def test_face_encoder_fine_tuning_ships_in_the_head(tmp_path, monkeypatch):
    """--finetune_face_epochs tunes the mini-Xception first; its weights ride in the checkpoint and every
    consumer (evaluate, the pipeline: all through model.encoders.create_encoders) loads them, with a version
    that names them; the training run records the versions of the tokens it trained on."""
    from pipeline import evaluate, train
    from model.checkpoints import load_head
    from model.encoders.faces import load_face_encoder
    from model.encoders import EncoderSpec, create_encoders
    monkeypatch.setenv("FILM_EMOTION_FEATURE_CACHE", str(tmp_path / "cache"))
    faces = fer_slice(tmp_path / "fer", 10)
    args = ["--data", f"imagefolder:{faces}#train", "--dev", f"imagefolder:{faces}#dev", "--epochs", "1",
            "--d_model", "32", "--finetune_face_epochs", "2", "--threads", "1"]
    meta = train.main(args + ["--out", str(tmp_path / "a.pt")])
    assert len(meta["face_tuning"]["history"]) == 2 and 0 <= meta["face_tuning"]["dev_accuracy"] <= 1
    _, saved = load_head(tmp_path / "a.pt")
    state = saved["face_encoder_state"]
    train.main(args + ["--out", str(tmp_path / "b.pt")])  # seeded: the same weights again
    _, again = load_head(tmp_path / "b.pt")
    assert all(torch.equal(state[k], again["face_encoder_state"][k]) for k in state)

    packaged = load_face_encoder()
    shipped = create_encoders(EncoderSpec(head=None)).face_encoder  # the shipped head tunes faces too
    tuned_encoders = create_encoders(EncoderSpec(head=str(tmp_path / "a.pt")))
    tuned = tuned_encoders.face_encoder
    assert tuned_encoders.versions["face"] == meta["encoders"]["face"]  # what training saw is what serving loads
    assert "+ft" in tuned.version and "+ft" not in packaged.version and tuned.version != shipped.version
    crops = [np.full((48, 48), 90, np.uint8), np.tile(np.arange(48, dtype=np.uint8) * 5, (48, 1))]
    assert not np.allclose(tuned.encode(crops), packaged.encode(crops))
    rep = evaluate.main(["--data", f"imagefolder:{faces}#dev", "--head", str(tmp_path / "a.pt"), "--threads", "1",
                         "--modalities", "face"])  # (a head that learnt faces alone)
    assert rep["results"][f"imagefolder:{faces}#dev"]["n"] > 0


@needs_data
def test_a_head_carries_the_speech_and_scene_classifiers_it_learnt_from(tmp_path, monkeypatch, capsys):
    """A studio retrains the speech and scene classifiers on its own data: `pipeline.train --speech_classifier /
    --scene_classifier` learns from their tokens and the head carries them, so a run, evaluation or calibration with
    `--head` reads its own classifiers wherever the head goes (before 2026-12-06 the shipped files in model/weights
    were read whatever the head, and a head trained on other tokens got the shipped ones without a word)."""
    import pyarrow.parquet as pq
    from model.checkpoints import load_head_meta
    from model.encoders import EncoderSpec, create_encoders, encoder_versions
    from model.encoders.speech import load_speech_emotion_encoder
    from pipeline import calibrate, train
    from transforms.decode import decode_audio
    monkeypatch.setenv("FILM_EMOTION_FEATURE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FILM_EMOTION_CACHE", str(tmp_path / "model-cache"))
    weights = Path(__file__).resolve().parents[1] / "model" / "weights"
    mine = {}
    for name in ("speech", "scene"):  # "a studio's own": the shipped classifiers with one bias moved
        ckpt = torch.load(weights / f"{name}_emotion.pt", weights_only=True)
        ckpt["state_dict"]["nets.0.4.bias"] = ckpt["state_dict"]["nets.0.4.bias"] + 2.0 * (
            torch.arange(len(ckpt["state_dict"]["nets.0.4.bias"])) == 0)
        mine[name] = tmp_path / f"studio_{name}.pt"
        torch.save(ckpt, mine[name])
    voices = pq.read_table(DATA / "audio" / "ravdess" / "dev.parquet").slice(0, 8)
    pq.write_table(voices, tmp_path / "voices.parquet")
    out = tmp_path / "head.pt"
    meta = train.main(["--data", f"audio:{tmp_path / 'voices.parquet'}", "--epochs", "1", "--d_model", "32",
                       "--speech_classifier", str(mine["speech"]), "--scene_classifier", str(mine["scene"]),
                       "--out", str(out), "--threads", "1"])
    saved = load_head_meta(out)
    assert saved["speech_classifier"] == mine["speech"].read_bytes()
    assert saved["scene_classifier"] == mine["scene"].read_bytes()
    shipped, carried = encoder_versions(EncoderSpec()), encoder_versions(EncoderSpec(head=str(out)))
    assert carried["audio"] == meta["encoders"]["audio"] != shipped["audio"]  # what training saw is what runs
    assert carried["scene"] == meta["encoders"]["scene"] != shipped["scene"]
    assert carried["text"] == shipped["text"].split("+ft")[0]  # the rest as packaged: this head tunes nothing else
    encoders = create_encoders(EncoderSpec(head=str(out)))
    assert encoders.speech.version == carried["audio"] and encoders.scene.version == carried["scene"]
    wave = decode_audio(voices.column("audio")[0].as_py())
    own = load_speech_emotion_encoder(mine["speech"], whisper=encoders.speech.featurizer.whisper).encode([wave])
    np.testing.assert_allclose(encoders.speech.encode([wave]), own, atol=1e-5)
    assert not np.allclose(create_encoders(EncoderSpec()).speech.encode([wave]), own, atol=1e-3)
    from model.encoders import carried_classifier
    (tmp_path / "a-file").write_text("")  # a worker whose cache folder cannot be made: the temporary folder
    monkeypatch.setenv("FILM_EMOTION_CACHE", str(tmp_path / "a-file" / "cache"))
    written = Path(carried_classifier(EncoderSpec(head=str(out)), "speech"))
    assert written.read_bytes() == saved["speech_classifier"] and "a-file" not in str(written)
    monkeypatch.setenv("FILM_EMOTION_CACHE", str(tmp_path / "model-cache"))
    calibrate.main(["--head", str(out), "--data", f"audio:{tmp_path / 'voices.parquet'}",
                    "--output", str(tmp_path / "calibrated.pt")])
    assert load_head_meta(tmp_path / "calibrated.pt")["speech_classifier"] == saved["speech_classifier"]
    with pytest.raises(SystemExit, match="--scene_classifier .*speech_emotion.pt: not a scene classifier"):
        train.main(["--data", f"audio:{tmp_path / 'voices.parquet'}", "--scene_classifier",
                    str(weights / "speech_emotion.pt"), "--out", str(tmp_path / "x.pt")])


def test_bucketed_batches_cover_every_item_once_with_similar_lengths():
    from training.loop import bucketed_batches
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 90, 1000).tolist()
    batches = bucketed_batches(lengths, 32, torch.Generator().manual_seed(0), chunk=5)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    spread = np.mean([np.ptp([lengths[i] for i in b]) for b in batches])
    assert spread < 0.5 * np.mean([np.ptp(lengths[i:i + 32]) for i in range(0, 1000, 32)])
    again = bucketed_batches(lengths, 32, torch.Generator().manual_seed(0), chunk=5)
    assert again == batches


def test_each_evidence_pattern_gets_its_own_temperature(tmp_path):
    """Text-only clips and face-only clips with the same logits get each pattern's calibration; patterns without
    a fitted temperature keep the head's single one; the written head carries them and labels never move."""
    from model.batching import collate
    from model.bvpec import BVPEC, BVPECConfig
    from model.checkpoints import load_head, save_head
    from model.predict import calibrated_probs, evidence_pattern, predict
    from training.calibration import cross_fitted, fit_pattern_temperatures, logits_and_patterns
    from training.metrics import expected_calibration_error

    assert evidence_pattern([True, False, True, False]) == "face+text" and evidence_pattern([False] * 4) == ""
    rng = np.random.default_rng(0)
    # Over-confident text-only logits (right 40% of the time at ~90% confidence), well calibrated face logits.
    n = 600
    labels = rng.integers(0, 7, n)
    text_logits = rng.normal(0, 1, (n, 7))
    right = rng.random(n) < 0.4
    text_logits[np.arange(n), np.where(right, labels, (labels + 1) % 7)] += 6.0
    face_logits = rng.normal(0, 1, (n, 7))
    face_logits[np.arange(n), labels] += 2.0
    logits = np.concatenate([text_logits, face_logits])
    patterns = ["text"] * n + ["face"] * n
    temps = fit_pattern_temperatures(logits, patterns, np.concatenate([labels, labels]))
    assert set(temps) == {"text", "face"} and temps["text"] > 2.0 > temps["face"]
    assert fit_pattern_temperatures(logits[:10], patterns[:10], labels[:10]) == {}  # too few to fit
    sets = {"text": (text_logits, ["text"] * n, labels), "face": (face_logits, ["face"] * n, labels)}
    held = cross_fitted(sets, default_t=1.0)
    raw = expected_calibration_error(np.exp(text_logits) / np.exp(text_logits).sum(1, keepdims=True), labels)
    assert held["text"] < raw / 2  # calibrated on examples the temperature never saw

    dims = {"text": 8, "vision": 6, "face": 7, "audio": 7}
    model = BVPEC(BVPECConfig(input_dims=dims, d_model=16, heads=2)).eval()
    model.temperature, model.pattern_temperatures = 1.0, {"text": 4.0}
    items = [{"text": rng.normal(size=(3, 8)).astype(np.float32)}, {"face": rng.normal(size=(2, 7)).astype(np.float32)}]
    inputs, masks = collate(items, dims)
    z = torch.tensor([[2.0, 0, 0, 0, 0, 0, 0]] * 2)
    p = calibrated_probs(model, z, masks)
    assert torch.allclose(p[0], torch.softmax(z[0] / 4.0, -1)) and torch.allclose(p[1], torch.softmax(z[1], -1))
    assert torch.allclose(calibrated_probs(model, z), torch.softmax(z, -1))  # no masks: the single temperature
    path = tmp_path / "h.pt"
    save_head(path, model, {"temperature": 1.0, "pattern_temperatures": {"text": 4.0}})
    loaded, _ = load_head(path)
    assert loaded.pattern_temperatures == {"text": 4.0}
    before = [pr.emotion for pr in predict(model, items)]
    loaded.pattern_temperatures = {}
    assert [pr.emotion for pr in predict(loaded, items)] == before  # a temperature never moves the label
    logits_out, pats = logits_and_patterns(loaded, items)
    assert logits_out.shape == (2, 7) and pats == ["text", "face"]


@needs_data
def test_sets_can_weigh_the_same_in_a_temperature_fit():
    """Two sets of one pattern: a large one whose logits are under-confident (clean labels) and a small one where
    the same classifier is over-confident (film faces). Pooled by rows the large set sets the temperature; with
    set_weights each set counts once, so the fit moves towards the small set's own and its calibration improves."""
    from training.calibration import cross_fitted, fit_pattern_temperatures, set_weights
    from training.metrics import expected_calibration_error, fit_temperature

    rng = np.random.default_rng(1)

    def make(n, boost, right_share):
        labels = rng.integers(0, 7, n)
        z = rng.normal(0, 1, (n, 7))
        right = rng.random(n) < right_share
        z[np.arange(n), np.where(right, labels, (labels + 3) % 7)] += boost
        return z, ["branch:face"] * n, labels

    clean, film = make(3000, 2.0, 0.85), make(600, 3.0, 0.45)
    assert np.allclose(set_weights([clean, film]), np.r_[np.full(3000, 1 / 3000), np.full(600, 1 / 600)])
    unlabelled = (clean[0][:2], clean[1][:2], np.array([-1, 3]))
    assert set_weights([unlabelled]).tolist() == [0.0, 1.0]  # an unlabelled row weighs nothing
    pooled = [np.concatenate([clean[i], film[i]]) if i != 1 else clean[1] + film[1] for i in range(3)]
    by_rows = fit_pattern_temperatures(*pooled)["branch:face"]
    equal = fit_pattern_temperatures(*pooled, weights=set_weights([clean, film]))["branch:face"]
    own_film = fit_temperature(film[0], film[2])
    assert by_rows < equal < own_film
    assert fit_temperature(film[0], film[2], np.ones(600)) == pytest.approx(own_film)  # equal weights: the plain fit

    def film_ece(t):
        z = film[0] / t
        return expected_calibration_error(np.exp(z) / np.exp(z).sum(1, keepdims=True), film[2])
    assert film_ece(equal) < film_ece(by_rows)
    sets = {"clean": clean, "film": film}
    assert cross_fitted(sets, 1.0, equal_sets=True)["film"] < cross_fitted(sets, 1.0)["film"]


def test_calibrate_fits_the_temperatures_evaluation_then_applies(tmp_path, monkeypatch):
    """pipeline.calibrate end to end on the shipped head and real dev slices: it writes the head with a temperature
    for lone lines (`branch:text`, the line's classifier's) and for lone faces (`branch:face`, the face
    classifier's), labels do not move,
    pipeline.evaluate on the written head measures the ECE calibrate printed for it, and --refit replaces only the
    temperature it names."""
    from model.checkpoints import DEFAULT_HEAD, load_head, save_head
    from pipeline import calibrate, evaluate
    if not DEFAULT_HEAD.is_file():
        pytest.skip("no shipped head yet")
    monkeypatch.setenv("FILM_EMOTION_FEATURE_CACHE", str(tmp_path / "cache"))
    lines = f"meld:{meld_slice(MELD / 'dev_sent_emo.csv', tmp_path / 'dev.csv', 8)}"
    faces = f"imagefolder:{fer_slice(tmp_path / 'fer', 10)}"
    out = tmp_path / "calibrated.pt"
    report = calibrate.main(["--data", lines, "--data", faces, "--output", str(out), "--json", str(tmp_path / "c.json")])
    assert report == json.loads((tmp_path / "c.json").read_text())
    # the others are kept from the head (before 2026-12-07 they were dropped)
    assert set(report["fitted"]) == {"branch:text", "branch:face"}, report["pattern_temperatures"]
    # a head without a line classifier reads a line's evidence itself, under its own `text` temperature: it is kept
    head, head_meta = load_head(DEFAULT_HEAD)
    plain_meta = {k: v for k, v in head_meta.items() if k != "text_classifier"}
    plain_meta["pattern_temperatures"] = {**head_meta.get("pattern_temperatures", {}), "text": 1.25}
    save_head(tmp_path / "plain.pt", head, plain_meta)
    plain = calibrate.main(["--head", str(tmp_path / "plain.pt"), "--data", lines, "--output", str(tmp_path / "p.pt")])
    assert plain["pattern_temperatures"]["text"] == 1.25 and "branch:text" in plain["pattern_temperatures"]
    assert report["sets"][faces]["n"] == 70 and report["sets"][lines]["n"] >= 50
    _, meta = load_head(out)
    assert meta["branch_temperatures"]["text"] == pytest.approx(report["pattern_temperatures"]["branch:text"])
    assert meta["branch_temperatures"]["face"] == pytest.approx(report["pattern_temperatures"]["branch:face"])
    assert meta["pattern_calibration"]["data"] == [lines, faces]
    shipped = evaluate.main(["--data", lines, "--data", faces, "--threads", "1"])["results"]
    fitted = evaluate.main(["--data", lines, "--data", faces, "--head", str(out), "--threads", "1"])["results"]
    for spec in (lines, faces):
        assert fitted[spec]["confusion_matrix"] == shipped[spec]["confusion_matrix"], spec  # labels stay
        assert fitted[spec]["ece"] == pytest.approx(report["sets"][spec]["ece_pattern_in_sample"], abs=1e-6), spec
    # a refit of the face temperature on other faces keeps the text temperature fitted on the lines
    other = f"imagefolder:{fer_slice(tmp_path / 'fer2', 16)}"
    calibrate.main(["--head", str(out), "--data", other, "--output", str(tmp_path / "refit.pt"),
                    "--refit", "branch:face"])
    _, refit = load_head(tmp_path / "refit.pt")
    assert refit["branch_temperatures"]["text"] == meta["branch_temperatures"]["text"]
    assert refit["branch_temperatures"]["face"] != meta["branch_temperatures"]["face"]
    assert refit["pattern_calibration"]["refit"]["keys"] == ["branch:face"]
    assert refit["pattern_calibration"]["refit"]["weigh_sets"] == "by_rows"
    # the same refit with each face set counting once (how the shipped face temperature is fitted): recorded
    eq = calibrate.main(["--head", str(out), "--data", faces, "--data", other, "--output", str(tmp_path / "eq.pt"),
                         "--refit", "branch:face", "--weigh_sets", "equally"])
    _, eq_meta = load_head(tmp_path / "eq.pt")
    assert eq_meta["pattern_calibration"]["refit"]["weigh_sets"] == "equally"
    assert eq_meta["branch_temperatures"]["face"] == pytest.approx(eq["pattern_temperatures"]["branch:face"])
    assert eq_meta["branch_temperatures"]["text"] == meta["branch_temperatures"]["text"]
    with pytest.raises(SystemExit, match="text"):  # no lines given: the text temperature cannot be refitted
        calibrate.main(["--head", str(out), "--data", other, "--output", str(tmp_path / "x.pt"), "--refit", "branch:text"])
    # a head retrained on new text layers: its line temperature refitted, the rest kept from the calibrated head
    calibrate.main(["--head", str(DEFAULT_HEAD), "--data", lines, "--output", str(tmp_path / "retrained.pt"),
                    "--refit", "branch:text", "--temperatures_from", str(tmp_path / "refit.pt")])
    _, kept = load_head(tmp_path / "retrained.pt")
    assert kept["branch_temperatures"]["face"] == refit["branch_temperatures"]["face"]
    assert kept["pattern_calibration"]["refit"]["others_from"] == str(tmp_path / "refit.pt")
    with pytest.raises(SystemExit):  # without --refit there is nothing to keep
        calibrate.main(["--data", lines, "--output", str(tmp_path / "y.pt"), "--temperatures_from", str(out)])


def test_refit_only_replaces_the_named_temperatures():
    """pipeline.calibrate --refit: after one branch classifier is retrained, only its temperature is refitted; the
    head's others (fitted on data not given again) stay."""
    from training.calibration import refit_only

    meta = {"pattern_temperatures": {"text": 1.37}, "branch_temperatures": {"face": 1.0, "scene": 0.98, "speech": 1.32}}
    fitted = {"branch:scene": 1.05, "branch:face": 0.7, "text": 2.0}
    assert refit_only(fitted, meta, ["branch:scene"]) == {"text": 1.37, "branch:face": 1.0, "branch:scene": 1.05,
                                                         "branch:speech": 1.32}
    with pytest.raises(KeyError, match="speech"):
        refit_only(fitted, meta, ["branch:speech"])


def test_cross_fitted_ece_measures_the_head_refit_writes():
    """--refit keeps the head's other temperatures, so its cross-fitted ECE must be that head's, fold by fold: before
    2026-12-06 every pattern was refitted per fold, and a set under a kept temperature read as well calibrated."""
    from scipy.special import softmax

    from training.calibration import cross_fitted, fit_pattern_temperatures, probs_with, refit_only
    from training.metrics import expected_calibration_error
    rng = np.random.default_rng(0)

    def drawn(n, t_true, pattern):
        z = rng.standard_normal((n, 7)) * 3
        return z, [pattern] * n, np.array([rng.choice(7, p=p) for p in softmax(z / t_true, 1)])
    sets = {"lines": drawn(400, 2.0, "text"), "faces": drawn(400, 1.0, "branch:face")}
    meta = {"pattern_temperatures": {}, "branch_temperatures": {"face": 3.0}}  # the head's face T stays: wrong here
    written = refit_only(fit_pattern_temperatures(np.concatenate([v[0] for v in sets.values()]),
                                                  sum((v[1] for v in sets.values()), []),
                                                  np.concatenate([v[2] for v in sets.values()])), meta, ["text"])
    z, patterns, y = sets["faces"]
    in_sample = expected_calibration_error(probs_with(z, patterns, written, 1.0), y)
    measured = cross_fitted(sets, 1.0, finish=lambda f: refit_only({**written, **f}, meta, ["text"]))
    assert in_sample > 0.2 and abs(measured["faces"] - in_sample) < 1e-9  # the kept T, measured as written
    assert cross_fitted(sets, 1.0)["faces"] < 0.1  # every pattern refitted: a head that was not written


def test_metrics_are_sklearns_over_the_labelled_rows():
    """macro F1 as sklearn computes it (a class the model says but the set lacks counts, F1 0); valence / arousal
    correlations over the labelled rows only, as every other metric; a '#dev' part counts its own left-out rows."""
    from collections import Counter

    from sklearn.metrics import f1_score

    from training.metrics import classification_metrics
    y_true, y_pred = [0, 0, 1, 1, 3, 3, 4, 4, 6, 6], [0, 2, 1, 2, 3, 2, 4, 4, 6, 0]  # 2 (fear) said, never true
    m = classification_metrics(y_true, y_pred)
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro")) == pytest.approx(0.5833, abs=1e-4)
    assert m["weighted_f1"] == pytest.approx(f1_score(y_true, y_pred, average="weighted"))
    rows = [["Utterance", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID"]]
    rows += [[f"line {i}", ["joy", "anger", "contempt"][i % 3], "neutral", str(i), "0"] for i in range(60)]
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.csv"
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows(rows)
        counts = {}
        for part in ("train", "dev"):
            counts[part] = Counter()
            kept = load_dataset(f"meld:{path}#{part}", counts[part])
            assert all(e.label >= 0 for e in kept)
        assert counts["train"]["contempt"] + counts["dev"]["contempt"] == 20 and counts["dev"]["contempt"] == 4
    # 40 labelled rows and 20 without a label but with a valence target: the correlation is over the 40
    from model.checkpoints import load_head
    from training.datasets import Example
    from training.loop import LabelledSet, evaluate_set
    model, _ = load_head(None)
    items = [{"text": rng_items.standard_normal((3, 384)).astype(np.float16)}
             for rng_items in [np.random.default_rng(i) for i in range(60)]]
    examples = [Example(label=i % 7 if i < 40 else -1, valence=float(i % 3 - 1)) for i in range(60)]
    m = evaluate_set(model, LabelledSet("toy", items, examples))
    assert m["n"] == 40 and m["n_valence"] == 40


def test_label_paired_clips_calibrate_only_the_head_as_referee():
    """pipeline.calibrate --pairs: of label-paired dev clips, only those the head labels with several modalities (a
    product no modality backs) are fitted; products (branch:...) and single patterns are left to their own data."""
    from training.calibration import referee_rows
    logits = np.arange(5 * 7, dtype=np.float64).reshape(5, 7)
    patterns = ["branch:text+face", "audio+face+text", "text", "branch:speech", "text+vision"]
    rows, keys, labels = referee_rows(logits, patterns, np.array([0, 1, 2, 3, 4]))
    assert keys == ["audio+face+text", "text+vision"] and labels.tolist() == [1, 4]
    assert np.array_equal(rows, logits[[1, 4]])


def test_a_lone_face_scene_or_voice_is_labelled_by_its_own_classifier():
    """One modality with a classifier of its own: its evidence labels the clip, in a run and in evaluation alike;
    a line alone keeps the head's label (its own text evidence)."""
    from model.bvpec import BVPEC, BVPECConfig
    from model.predict import branch_of, branch_probs, predict, with_branch_label
    from training.datasets import Example
    from training.loop import LabelledSet, evaluate_set

    rng = np.random.default_rng(1)
    dims = {"text": 8, "vision": 6, "face": 7, "audio": 7}
    model = BVPEC(BVPECConfig(input_dims=dims, d_model=16, heads=2)).eval()
    model.branch_temperatures = {}
    face_only = {"face": rng.normal(size=(1, 7)).astype(np.float32)}
    text_only = {"text": rng.normal(size=(3, 8)).astype(np.float32)}
    both = {**face_only, **text_only}
    fear = np.array([0.05, 0.05, 0.6, 0.1, 0.1, 0.05, 0.05])
    ev = {"face": fear}
    p_face, p_text, p_both = predict(model, [face_only, text_only, both])
    assert branch_of(p_face.modalities_used, ev) == "face" and branch_of(p_text.modalities_used, ev) is None
    assert with_branch_label(p_face, ev).emotion == "fear"
    assert np.allclose(with_branch_label(p_face, ev).probs, fear / fear.sum())
    assert with_branch_label(p_face, ev).gates == p_face.gates  # the head's gates and intensity stay
    assert with_branch_label(p_text, ev) is p_text and with_branch_label(p_both, ev) is p_both
    assert with_branch_label(p_face, {}) is p_face  # no evidence: the head labels it
    softer = branch_probs(["face"], ev, {"face": 2.0})
    assert softer.argmax() == 2 and softer[2] < 0.6 and np.isclose(softer.sum(), 1.0)
    # Evaluation labels the same way when given the evidence.
    s = LabelledSet("t", [face_only, text_only], [Example(label=2), Example(label=2)])
    routed = evaluate_set(model, s, evidence=[ev, ev])
    assert routed["accuracy"] >= 0.5 and evaluate_set(model, s)["accuracy"] == np.mean(
        [p.emotion == "fear" for p in (p_face, p_text)])


def test_a_clip_is_labelled_by_its_modalities_own_classifiers():
    """The product of the modalities' calibrated evidence labels the clip, the face's standing in for the scene's
    where a face is found (model.predict.VISUAL: frames plus a face is the face classifier's); a line is one of its
    parts (its evidence: the head on the line alone where the head has no line classifier), a line alone is its
    evidence's, and a modality without evidence of its own gives the label back to the head."""
    from model.bvpec import BVPEC, BVPECConfig
    from model.predict import branch_of, branch_probs, predict, with_branch_label

    rng = np.random.default_rng(2)
    dims = {"text": 8, "vision": 6, "face": 7, "audio": 7}
    torch.manual_seed(2)
    model = BVPEC(BVPECConfig(input_dims=dims, d_model=16, heads=2)).eval()
    frames = {"vision": rng.normal(size=(5, 6)).astype(np.float32)}
    face = {"face": rng.normal(size=(2, 7)).astype(np.float32)}
    voice = {"audio": rng.normal(size=(1, 7)).astype(np.float32)}
    line = {"text": rng.normal(size=(3, 8)).astype(np.float32)}
    sad, calm = np.array([.05, .05, .05, .05, .1, .65, .05]), np.array([.05, .05, .05, .1, .6, .1, .05])
    angry = np.array([.5, .1, .1, .05, .15, .05, .05])
    ev = {"face": sad, "scene": calm, "speech": angry}
    p_seen, p_frames, p_heard, p_all, p_said = predict(model, [
        {**frames, **face}, frames, {**frames, **voice}, {**frames, **face, **voice}, {**frames, **face, **voice, **line}])
    assert branch_of(p_seen.modalities_used, ev) == "face" and with_branch_label(p_seen, ev).emotion == "sadness"
    assert branch_of(p_frames.modalities_used, ev) == "scene" and with_branch_label(p_frames, ev).emotion == "neutral"
    assert branch_of(p_heard.modalities_used, ev) == "scene+speech"
    assert np.allclose(with_branch_label(p_heard, ev).probs, calm * angry / (calm * angry).sum())
    assert with_branch_label(p_heard, ev).gates == p_heard.gates  # the head's gates and intensity stay
    assert branch_of(p_all.modalities_used, ev) == "face+speech"  # the face stands in for the scene
    assert np.allclose(with_branch_label(p_all, ev).probs, sad * angry / (sad * angry).sum())
    assert branch_of(p_said.modalities_used, ev) is None and with_branch_label(p_said, ev) is p_said  # no line's
    assert branch_of(p_seen.modalities_used, {"scene": calm}) is None  # a face without its evidence: the head's
    # With the line's evidence (with_line_evidence: the head on the line alone) the line joins the product.
    from model.predict import line_evidence, with_line_evidence
    said = {**frames, **face, **voice, **line}
    fierce = np.array([.6, .05, .05, .05, .1, .1, .05])  # a face that backs the voice's anger
    (spoken,) = with_line_evidence(model, [said], [{**ev, "face": fierce}])
    (alone,) = predict(model, [line])
    assert np.allclose(spoken["text"], alone.probs) and np.allclose(line_evidence(model, [said])[0], alone.probs)
    assert with_line_evidence(model, [frames], [ev])[0] == ev  # no line, no line evidence
    assert branch_of(p_said.modalities_used, spoken) == "text+face+speech"
    product = alone.probs * fierce * angry
    assert product.argmax() == 0  # anger, backed by the face and the voice (else the head labels it)
    assert np.allclose(with_branch_label(p_said, spoken).probs, product / product.sum())
    (p_line,) = predict(model, [line])  # a line alone: its evidence labels it (here the head's on the line: the same)
    assert branch_of(p_line.modalities_used, {"text": alone.probs}) == "text"
    assert np.allclose(with_branch_label(p_line, {"text": alone.probs}).probs, p_line.probs)
    # each member under its branch temperature, then the combination's own when calibration fitted one
    soft = branch_probs(p_heard.modalities_used, ev, {"speech": 2.0})
    assert np.allclose(soft, calm * angry ** 0.5 / (calm * angry ** 0.5).sum())
    hotter = branch_probs(p_heard.modalities_used, ev, {"scene+speech": 0.5})
    assert np.allclose(hotter, (calm * angry) ** 2 / ((calm * angry) ** 2).sum())


def test_a_line_classifier_in_the_checkpoint_reads_every_line(tmp_path):
    """A head checkpoint may carry its line classifier (a text-only head on the same text layers: pipeline.train
    --text_classifier). load_head gives it to the head outside the head's own modules; every line's evidence, and so a
    lone line's label, is then the classifier's, under its own temperature; it survives a save (pipeline.calibrate)."""
    from model.bvpec import BVPEC, BVPECConfig
    from model.checkpoints import load_head, save_head, text_classifier_meta
    from model.predict import line_evidence, predict

    dims = {"text": 8, "vision": 6, "face": 7, "audio": 7}
    torch.manual_seed(3)
    head = BVPEC(BVPECConfig(input_dims=dims, d_model=16, heads=2)).eval()
    clf = BVPEC(BVPECConfig(input_dims=dims, d_model=16, heads=2, variant="text_only")).eval()
    clf.temperature = 1.7
    save_head(tmp_path / "h.pt", head, {"text_classifier": text_classifier_meta(clf, "clf.pt")})
    line = {"text": np.random.default_rng(3).normal(size=(4, 8)).astype(np.float32)}
    model, meta = load_head(tmp_path / "h.pt")
    assert set(model.state_dict()) == set(head.state_dict())  # the classifier is not one of the head's modules
    reader = model.text_classifier
    assert reader.temperature == 1.7 and meta["text_classifier"]["from"] == "clf.pt"
    for name, t in clf.state_dict().items():  # stored in fp16, as the head is
        assert torch.allclose(reader.state_dict()[name], t.half().float())
    (ev,) = line_evidence(model, [line])
    assert np.allclose(ev, predict(reader, [line])[0].probs)
    assert not np.allclose(ev, predict(model, [line])[0].probs, atol=1e-3)  # not the head's reading
    save_head(tmp_path / "again.pt", model, meta)
    again, _ = load_head(tmp_path / "again.pt")
    assert again.text_classifier is not None and again.text_classifier.temperature == 1.7
    assert np.allclose(line_evidence(again, [line])[0], ev)
    save_head(tmp_path / "plain.pt", head, {})
    assert load_head(tmp_path / "plain.pt")[0].text_classifier is None


def test_a_product_whose_label_no_modality_backs_goes_to_the_head():
    """Modalities that disagree multiply into a compromise none of them chose (the Sintel trailer at 24 s: the scene's
    sadness 0.36, the face's surprise 0.59, the voice's anger 0.70 made sadness 0.78): such a clip is the head's. A
    product whose label some modality backs (>= GROUNDED_SUPPORT) stays, and a lone modality keeps its classifier
    however weak; the backing is read under the branch temperatures, as the clips table's support is."""
    from model.bvpec import BVPEC, BVPECConfig
    from model.predict import branch_of, predict, product_backed, with_branch_label
    from schemas.clips import GROUNDED_SUPPORT

    rng = np.random.default_rng(5)
    dims = {"text": 8, "vision": 6, "face": 7, "audio": 7}
    model = BVPEC(BVPECConfig(input_dims=dims, d_model=16, heads=2)).eval()
    frames = {"vision": rng.normal(size=(5, 6)).astype(np.float32)}
    voice = {"audio": rng.normal(size=(1, 7)).astype(np.float32)}
    scene = np.array([.03, .10, .13, .14, .17, .36, .07])  # sadness, weakly
    surprised = np.array([.005, .005, .08, .005, .22, .09, .595])
    angry = np.array([.70, .03, .03, .01, .005, .22, .005])
    p_heard, p_frames = predict(model, [{**frames, **voice}, frames])
    conflict = {"scene": scene, "speech": angry}
    product = scene * angry / (scene * angry).sum()
    assert int(product.argmax()) == 5 and max(scene[5], angry[5]) < GROUNDED_SUPPORT  # sadness, backed by neither
    assert not product_backed(("scene", "speech"), conflict)
    assert branch_of(p_heard.modalities_used, conflict) is None and with_branch_label(p_heard, conflict) is p_heard
    # The same voice with a scene that backs anger: the product labels the clip.
    backing = {"scene": np.array([.45, .10, .10, .05, .15, .10, .05]), "speech": angry}
    assert branch_of(p_heard.modalities_used, backing) == "scene+speech"
    assert with_branch_label(p_heard, backing).emotion == "anger"
    # A hotter voice (temperature < 1) backs its own label more: calibration decides, as for the support column.
    assert product_backed(("scene", "speech"), {"scene": scene, "speech": surprised}, {"speech": 0.5}) != \
        product_backed(("scene", "speech"), {"scene": scene, "speech": surprised}, {"speech": 3.0})
    # A lone weak modality keeps its classifier.
    weak = {"scene": scene}
    assert branch_of(p_frames.modalities_used, weak) == "scene" and with_branch_label(p_frames, weak).emotion == "sadness"


def test_spoken_line_from_file_names():
    from training.datasets import spoken_line
    assert spoken_line("03-01-05-02-01-02-17.wav") == "Kids are talking by the door."
    assert spoken_line("03-01-05-02-02-02-17.wav") == "Dogs are sitting by the door."
    assert spoken_line("OAF_back_angry.wav") == "Say the word back."
    assert spoken_line("YAF_youth_ps.wav") == "Say the word youth."
    assert spoken_line("03a01Fa.wav") is None and spoken_line("") is None  # EmoDB: German, not kept


@pytest.mark.skipif(not (DATA / "audio" / "ravdess").is_dir(), reason="shared data not present")
def test_spoken_reader_gives_each_clip_its_line_and_audio():
    import pyarrow.parquet as pq
    raw = pq.read_table(DATA / "audio/ravdess/dev.parquet", columns=["label", "path"]).to_pylist()
    spoken = load_dataset(f"spoken:{DATA / 'audio/ravdess/dev.parquet'}")
    audio = load_dataset(f"audio:{DATA / 'audio/ravdess/dev.parquet'}")
    assert len(spoken) == len(raw) == len(audio)
    assert {e.text for e in spoken} == {"Kids are talking by the door.", "Dogs are sitting by the door."}
    assert [e.label for e in spoken] == [e.label for e in audio] and [e.data for e in spoken] == [e.data for e in audio]
    assert all(e.source == "spoken" and e.group == a.group for e, a in zip(spoken, audio))
    assert load_dataset(f"spoken:{DATA / 'audio/emodb/dev.parquet'}") == []


def test_spoken_reader_takes_a_transcript_column(tmp_path):
    """A speech set with its transcripts (a `text` column) gives each voice its own line, whatever its file names;
    a row with no line is left out."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"audio": [b"a", b"b", b"c"], "label": ["anger", "joy", "sadness"],
                             "text": ["Get out of my house!", "", None],
                             "path": ["x.wav", "y.wav", "03-01-04-01-01-01-17.wav"]}), tmp_path / "speech.parquet")
    rows = load_dataset(f"spoken:{tmp_path / 'speech.parquet'}")
    assert [(e.text, LABELS[e.label]) for e in rows] == [("Get out of my house!", "anger"),
                                                          ("Kids are talking by the door.", "sadness")]


def test_label_paired_clips_take_one_line_and_one_voice():
    """A spoken example (a voice with its own line) is never merged with another line or voice, so the
    pairs keep the line that voice said; the other kinds pair as before."""
    from training.datasets import Example
    from training.loop import LabelledSet, label_paired, source_of, split_sources
    rows, exs = [], []
    for k in range(7):
        for j in range(3):
            tag = np.float16(k * 10 + j)
            rows += [{"text": np.full((2, 4), tag)}, {"face": np.full((1, 7), tag)}, {"audio": np.full((1, 7), tag)},
                     {"text": np.full((3, 4), -tag), "audio": np.full((1, 7), -tag)}]
            exs += [Example(label=k)] * 4
    pools = split_sources([LabelledSet("all", rows, exs)])
    assert sorted(pools) == ["audio", "face", "spoken", "text"] and source_of(rows[3]) == "spoken"
    pairs = label_paired(pools, 400, seed=0)
    with_spoken = [it for it in pairs.items if len(it.get("text", ())) == 3]
    assert len(with_spoken) > 50
    for it, k in zip(pairs.items, pairs.labels):
        if len(it.get("text", ())) == 3:  # the spoken example's own line, so its own voice too
            assert float(it["audio"][0, 0]) == float(it["text"][0, 0]) <= 0
        for a in it.values():
            assert int(abs(float(a.flat[0]))) // 10 == k  # every part carries the pair's label
    without = {k: v for k, v in pools.items() if k != "spoken"}
    assert all(len(it) >= 2 for it in label_paired(without, 200, seed=0).items)


@pytest.mark.skipif(not (DATA / "audio" / "ravdess").is_dir(), reason="shared data not present")
def test_spoken_features_are_the_lines_and_the_voices_tokens(tmp_path, monkeypatch):
    """A spoken example carries its line's text tokens and its audio's speech tokens, the same as the text
    path gives the line alone and the audio: set gives the voice alone."""
    from model.encoders import EncoderSpec, create_encoders
    from model.featurize import Featurizer
    from training.features import features_for
    monkeypatch.setenv("FILM_EMOTION_FEATURE_CACHE", str(tmp_path / "cache"))
    enc = create_encoders(EncoderSpec())
    spec = DATA / "audio/ravdess/dev.parquet@4"
    examples, spoken = features_for(f"spoken:{spec}", enc)
    _, audio = features_for(f"audio:{spec}", enc)
    assert len(spoken) == len(audio) == 4
    lines = Featurizer(enc).text_tokens([e.text for e in examples], [[] for _ in examples])
    for s, a, t in zip(spoken, audio, lines):
        assert set(s) >= {"text", "audio"} and "text" not in a
        np.testing.assert_array_equal(s["audio"], a["audio"])
        np.testing.assert_allclose(s["text"].astype(np.float32), np.asarray(t, np.float16).astype(np.float32))


@pytest.mark.slow
@needs_data
def test_a_line_read_whole_beats_its_fragments(tmp_path):
    """benchmarks.line_fragments, the reason a window or shot reads a line whole (transforms.segment.line_units):
    the shipped text path on MELD dev lines cut at a word reads each fragment worse than the line, and is no surer
    of the line than of its first fragment."""
    from benchmarks import line_fragments
    r = line_fragments.main(["--json", str(tmp_path / "f.json"), "--threads", "1", "--random_cut_only"])["readings"]
    whole = r["whole line"]
    for part in ("words before the cut", "words after the cut"):
        assert r[part]["weighted_f1"] < whole["weighted_f1"] - 0.05 and r[part]["ece"] > whole["ece"], (part, r)
    assert r["words before the cut"]["mean_confidence"] >= whole["mean_confidence"]


@needs_data
def test_a_runtime_named_for_evaluation_gets_features_of_its_own():
    """pipeline.evaluate --vision_runtime / --text_runtime (the full-cost side of the speed levers' quality table):
    features computed on a runtime chosen by name are cached apart from those of 'auto' (OpenVINO on CPU), and only
    for the kinds whose encoders that runtime runs; 'auto' keeps the key it had."""
    from model.encoders import Encoders, EncoderSpec
    from pipeline import evaluate
    from training.features import cache_key
    text, frames = f"meld:{MELD / 'dev_sent_emo.csv'}@10", f"frames:{MELD / 'dev_sent_emo.csv'}"
    def key(spec, **kw):
        return cache_key(spec.split(":")[0], spec, Encoders(EncoderSpec(**kw)))
    assert key(text, text_runtime="torch") != key(text) == key(text, vision_runtime="torch")
    assert key(frames, vision_runtime="torch") != key(frames) == key(frames, text_runtime="openvino")
    args = evaluate.build_parser().parse_args(["--data", text, "--vision_runtime", "torch", "--text_runtime", "openvino"])
    assert (args.vision_runtime, args.text_runtime) == ("torch", "openvino")


def test_dev_set_log_names_keep_their_kind():
    """Two kinds read from one file (a voice, and a voice with its line) are two dev sets: the epoch log keeps both."""
    from training.loop import _short
    names = ["audio:../data/audio/ravdess/dev.parquet", "spoken:../data/audio/ravdess/dev.parquet", "pairs:dev",
             "../data/text/meld/dev_sent_emo.csv"]
    assert [_short(n) for n in names] == ["audio:ravdess/dev.parquet", "spoken:ravdess/dev.parquet", "pairs:dev",
                                          "meld/dev_sent_emo.csv"]


def test_ece_if_calibrated_is_the_floor_of_a_small_set():
    """A calibrated scorer's ECE on a hundred rows is well above 0, and shrinks with more rows; sure and right is 0."""
    from training.metrics import ece_if_calibrated
    p = np.full((100, 7), 0.05)
    p[:, 0] = 0.7
    median, p95 = ece_if_calibrated(p)
    assert 0.03 < median <= p95 < 0.2
    assert ece_if_calibrated(np.repeat(p, 100, 0), draws=50)[0] < 0.02
    assert ece_if_calibrated(np.eye(7)[[0, 3, 5]]) == (0.0, 0.0)


def test_rows_whose_media_cannot_be_read_are_left_out_with_a_count(tmp_path, capsys):
    # A faces set with a row that is not an image, an empty one and a truncated one. Before, pipeline.evaluate
    # stopped at the first with PIL's traceback; now those rows are left out, counted, and the rest is scored.
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from pipeline.evaluate import main as evaluate_main

    def jpeg(shade):
        buf = io.BytesIO()
        Image.fromarray(np.full((48, 48, 3), shade, np.uint8)).save(buf, format="JPEG")
        return buf.getvalue()

    images = [jpeg(40 * i) for i in range(6)]
    images[1], images[2], images[3] = b"not an image", b"", images[3][: len(images[3]) // 3]
    labels = ["joy", "anger", "sadness", "neutral", "fear", "surprise"]
    pq.write_table(pa.table({"image": images, "label": labels}), tmp_path / "faces.parquet")
    report = evaluate_main(["--data", f"faces:{tmp_path / 'faces.parquet'}", "--json", str(tmp_path / "r.json")])
    m = report["results"][f"faces:{tmp_path / 'faces.parquet'}"]
    assert m["n"] == 3 and m["unreadable_rows"] == [1, 2, 3]
    assert "unreadable rows left out: 3" in capsys.readouterr().out
    # A set none of whose rows reads, or none labelled, stops with one line (it was torch.cat's traceback).
    pq.write_table(pa.table({"image": images[1:3], "label": labels[1:3]}), tmp_path / "junk.parquet")
    pq.write_table(pa.table({"image": images[4:], "label": pa.array([None, None], pa.string())}),
                   tmp_path / "unlabelled.parquet")
    for name, said in (("junk", "none of its 2 rows could be read"), ("unlabelled", "no row has a label")):
        with pytest.raises(SystemExit, match=f"pipeline.evaluate: faces:.*{name}.parquet: {said}"):
            evaluate_main(["--data", f"faces:{tmp_path / name}.parquet"])
    from pipeline.calibrate import main as calibrate_main
    with pytest.raises(SystemExit, match="pipeline.calibrate: faces:.*unlabelled.parquet: no row has a label"):
        calibrate_main(["--data", f"faces:{tmp_path / 'unlabelled.parquet'}", "--output", str(tmp_path / "c.pt")])
    assert not (tmp_path / "c.pt").exists()
    from pipeline.train import main as train_main
    with pytest.raises(SystemExit, match="pipeline.train: faces:.*unlabelled.parquet: no row has a label"):
        train_main(["--data", f"faces:{tmp_path / 'faces.parquet'}",
                    "--dev", f"faces:{tmp_path / 'unlabelled.parquet'}", "--out", str(tmp_path / "head.pt"),
                    "--epochs", "1"])


def test_two_writers_of_one_cache_file_never_share_a_temporary_file(tmp_path):
    """Two training runs filling one feature cache wrote one fixed `.tmp` name: one renamed the other's file
    away and died (FileNotFoundError). Each writer now has its own temporary file; the last rename wins whole."""
    import threading
    from model.files import written_atomically

    target, errors = tmp_path / "cache" / "meld-abc.pt", []

    def write(k: int) -> None:
        try:
            for _ in range(50):
                with written_atomically(target) as tmp:
                    torch.save({"writer": k, "x": torch.full((2000,), float(k))}, tmp)
        except Exception as e:  # noqa: BLE001 - any failure of either writer is the defect
            errors.append(e)

    threads = [threading.Thread(target=write, args=(k,)) for k in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    got = torch.load(target)
    assert got["writer"] in (1, 2) and torch.equal(got["x"], torch.full((2000,), float(got["writer"])))
    assert [p.name for p in target.parent.iterdir()] == ["meld-abc.pt"]  # no temporary file left behind

    with pytest.raises(RuntimeError):  # a failed write leaves the old file and no temporary file
        with written_atomically(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert torch.load(target)["writer"] == got["writer"]
    assert [p.name for p in target.parent.iterdir()] == ["meld-abc.pt"]
    with written_atomically(tmp_path / "a.npy") as tmp:  # the suffix is kept: np.save adds none
        np.save(tmp, np.arange(3))
    assert np.load(tmp_path / "a.npy").tolist() == [0, 1, 2]


def test_a_feature_cache_serves_only_the_rows_it_was_made_from(tmp_path):
    """The labelled-data feature cache is keyed by what each row gives the encoders: the rows a set yields (a
    labels.txt beside it, a reading rule), a line's cleaned text and context, an image file or film edited in place
    at the same size. Before 2026-12-06 only the spec's own file and the row count were checked, so such a change
    gave rows other rows' features."""
    import dataclasses

    from PIL import Image

    from testing.films import make_film
    from training.datasets import Example
    from training.features import rows_digest
    lines = [Example(label=0, text="You lied!", context=("Where were you?",)), Example(label=3, text="Thanks.")]
    assert rows_digest(lines) == rows_digest(list(lines))
    assert rows_digest(lines) != rows_digest(lines[::-1])  # the same rows in another order
    assert rows_digest(lines) != rows_digest([dataclasses.replace(lines[0], context=()), lines[1]])
    face = tmp_path / "a.bmp"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(face)
    before = rows_digest([Example(label=0, image=str(face))])
    Image.new("RGB", (8, 8), (10, 200, 10)).save(face)  # edited in place: the same size
    assert face.stat().st_size == 246 and rows_digest([Example(label=0, image=str(face))]) != before
    gone = rows_digest([Example(label=0, image=str(tmp_path / "b.bmp"))])  # missing now, there later: a new key
    Image.new("RGB", (8, 8)).save(tmp_path / "b.bmp")
    assert rows_digest([Example(label=0, image=str(tmp_path / "b.bmp"))]) != gone
    film = make_film(tmp_path / "reel.mp4", duration_s=1.0)
    clip = Example(label=0, video=str(film), start_s=0.0, end_s=1.0)
    first = rows_digest([clip])
    make_film(film, duration_s=1.0, size=(64, 48))  # another film under the same name
    assert rows_digest([clip]) != first and rows_digest([Example(label=0, data=b"x")]) != rows_digest(
        [Example(label=0, data=b"y")])


def test_labelled_lines_with_no_words_are_counted_not_dropped_silently(tmp_path):
    """A MELD / EmoryNLP / GoEmotions row the dialogue rule empties ('(laughs)', '...', 'THE END') is no line, as a
    film's cue of none is; before 2026-12-07 it vanished from n with nothing said (found in review)."""
    from collections import Counter
    from training.datasets import NO_WORDS, load_dataset
    said = ["Hi there.", "(laughs)", "How are you?", "...", "THE END", "Fine, thanks."]
    rows = ["Utterance,Emotion,Sentiment,Dialogue_ID,Utterance_ID"]
    rows += [f'"{t}",joy,positive,0,{i}' for i, t in enumerate(said)]
    (tmp_path / "meld.csv").write_text("\n".join(rows) + "\n")
    skipped = Counter()
    examples = load_dataset(f"meld:{tmp_path / 'meld.csv'}", skipped=skipped)
    assert [e.text for e in examples] == ["Hi there.", "How are you?", "Fine, thanks."] and skipped == {NO_WORDS: 3}
    assert examples[2].context == ("Hi there.", "How are you?")  # the wordless rows are no one's context either
    (tmp_path / "labels.txt").write_text("\n".join(["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]))
    (tmp_path / "go.tsv").write_text("A fine day.\t3\tx1\n[laughs]\t3\tx2\nNo.\t2,3\tx3\n")
    skipped = Counter()
    assert [e.text for e in load_dataset(f"goemotions:{tmp_path / 'go.tsv'}", skipped=skipped)] == ["A fine day."]
    assert skipped == {NO_WORDS: 1}  # (the two-label row is left out by design, as documented)


def test_a_cross_validation_interval_stays_within_what_the_metric_can_be():
    from training.metrics import summarise_folds
    folds = [{"accuracy": a, "weighted_f1": a, "macro_f1": a} for a in (1.0, 0.95, 1.0)]
    ci = summarise_folds(folds)["accuracy"]["ci95"]
    assert ci[1] == 1.0 and 0.9 < ci[0] < 0.97  # (1.04 before 2026-12-07)
    low = summarise_folds([{"accuracy": a, "weighted_f1": a, "macro_f1": a} for a in (0.0, 0.05, 0.0)])
    assert low["accuracy"]["ci95"][0] == 0.0
