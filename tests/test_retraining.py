"""A studio retraining the models on its own data (the model card's *Retraining on your own data*): the branch
trainers, the speech out-of-fold logits, pipeline.train and pipeline.calibrate on sets under names of its own.

Fast: tiny sets built here (random-weight heads, a few synthetic sounds and images); each test a few seconds.
"""
from __future__ import annotations

import io
import logging
import wave
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from schemas.labels import EMOTIONS

DIMS = {"text": 8, "vision": 6, "face": 7, "audio": 7}


class Reached(Exception):
    """Raised where a command would start loading models: every check before it has passed."""


def reached(*args, **kwargs):
    """Stands in for the encoder factory of a command under test."""
    raise Reached


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """The head digests and carried classifiers of these tests are written under the test's folder."""
    monkeypatch.setenv("FILM_EMOTION_CACHE", str(tmp_path / "cache"))


def wav_bytes(seconds: float = 0.3, rate: int = 16000, f0: float = 220.0) -> bytes:
    """A short sine as 16-bit mono WAV bytes."""
    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((0.3 * np.sin(2 * np.pi * f0 * t) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def png_bytes(seed: int, size: int = 24) -> bytes:
    """A small random RGB image as PNG bytes (each seed its own bytes)."""
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size, size, 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def write(path: Path, rows: list[dict]) -> Path:
    """rows as a Parquet file (its folder made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def small_head(path: Path, seed: int = 0, meta: dict | None = None) -> Path:
    """A random-weight BVPEC head checkpoint."""
    import torch

    from model.bvpec import BVPEC, BVPECConfig
    from model.checkpoints import save_head
    torch.manual_seed(seed)
    save_head(path, BVPEC(BVPECConfig(input_dims=DIMS, d_model=16, heads=2, dropout=0.0)).eval(), meta or {})
    return path


def speech_classifier(path: Path, seed: int = 0) -> Path:
    """A random-weight speech classifier file, as training.speech_classifier --out writes one."""
    import torch

    from model.encoders.speech import HeadConfig, SpeechHead, save_head
    torch.manual_seed(seed)
    save_head(SpeechHead(HeadConfig(in_dim=4)), path)
    return path


def oof_npz(path: Path, digest: str, sets: list[str], dev_sets: list[str] | None = None) -> Path:
    """A --oof file: 3 rows per set, logits of the weights `digest` names (`dev_sets` recorded where given)."""
    n = 3 * len(sets)
    extra = {} if dev_sets is None else {"dev_sets": np.array(dev_sets)}
    np.savez(path, logits=np.random.default_rng(0).normal(size=(n, 7)).astype(np.float32),
             labels=np.arange(n) % 7, speakers=np.array([f"s{i % 2}" for i in range(n)]),
             sets=np.array([s for s in sets for _ in range(3)]), weights_digest=np.array(digest), **extra)
    return path


def faces_spec(tmp_path: Path) -> str:
    """A --data spec that exists (the commands check their specs before anything else)."""
    return "faces:" + str(write(tmp_path / "faces" / "dev.parquet", [{"image": png_bytes(0), "label": "joy"}]))


# ---------------------------------------------------------------- 1. the speech out-of-fold logits of a studio
def test_speech_oof_is_checked_against_the_classifier_the_head_carries(tmp_path):
    """A studio's --oof file (its own classifier, its own set names) calibrates the head that carries that
    classifier; the shipped classifier's logits are refused for it, in one line. Before: checked against the shipped
    file alone and read for the shipped set names only ("need at least one array to concatenate")."""
    from model.encoders._cache import file_digest
    from model.encoders.speech import DEFAULT_WEIGHTS
    from training.calibration import speech_out_of_fold
    from training.datasets import DataError
    from training.speech_classifier import read_oof

    clf = speech_classifier(tmp_path / "speech.pt")
    head = small_head(tmp_path / "head.pt", meta={"speech_classifier": clf.read_bytes()})
    studio = oof_npz(tmp_path / "oof.npz", file_digest(clf), ["booth", "field"], dev_sets=["booth"])
    logits, patterns, labels = speech_out_of_fold(studio, head=head)
    assert len(logits) == 3 and patterns == ["branch:speech"] * 3  # the set with dev speakers only
    assert list(read_oof(studio, weights=clf)) == ["booth", "field"]  # pipeline.train --speech_classifier
    shipped = oof_npz(tmp_path / "shipped.npz", file_digest(DEFAULT_WEIGHTS), ["ravdess", "emodb"])
    with pytest.raises(DataError, match="other speech weights than the speech classifier .* carries") as e:
        speech_out_of_fold(shipped, head=head)
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="other speech weights"):
        read_oof(shipped, weights=clf)
    assert len(speech_out_of_fold(shipped)[0]) == 6  # the shipped head: the shipped classifier's logits
    # a file written before its dev sets were recorded: every set it holds, where none has a shipped name
    old = oof_npz(tmp_path / "old.npz", file_digest(clf), ["booth", "field"])
    assert len(speech_out_of_fold(old, head=head)[0]) == 6
    only_train = oof_npz(tmp_path / "field.npz", file_digest(clf), ["field"], dev_sets=["booth"])
    with pytest.raises(DataError, match="no rows of a set with dev speakers"):
        speech_out_of_fold(only_train, head=head)
    (tmp_path / "notes.npz").write_text("not an npz")
    with pytest.raises(DataError, match="not a file of training.speech_classifier --oof"):
        read_oof(tmp_path / "notes.npz")


def test_calibrate_and_train_take_a_studios_oof_file_and_refuse_another_in_one_line(tmp_path, monkeypatch):
    """pipeline.calibrate --speech_oof and pipeline.train --speech_classifier X --speech_oof: the file is checked
    before any model loads, against the classifier the head carries (or is given); refused with one line."""
    from model.encoders._cache import file_digest
    from model.encoders.speech import DEFAULT_WEIGHTS
    from pipeline import calibrate, train

    monkeypatch.setattr(calibrate, "create_encoders", reached)
    monkeypatch.setattr(train, "create_encoders", reached)
    clf = speech_classifier(tmp_path / "speech.pt")
    head = small_head(tmp_path / "head.pt", meta={"speech_classifier": clf.read_bytes()})
    studio = oof_npz(tmp_path / "oof.npz", file_digest(clf), ["booth"], dev_sets=["booth"])
    shipped = oof_npz(tmp_path / "shipped.npz", file_digest(DEFAULT_WEIGHTS), ["ravdess", "emodb"])
    spec = faces_spec(tmp_path)
    with pytest.raises(Reached):  # the studio's file passes
        calibrate.main(["--head", str(head), "--data", spec, "--output", str(tmp_path / "x.pt"),
                        "--speech_oof", str(studio)])
    with pytest.raises(SystemExit) as e:
        calibrate.main(["--head", str(head), "--data", spec, "--output", str(tmp_path / "x.pt"),
                        "--speech_oof", str(shipped)])
    assert "other speech weights" in str(e.value.code) and "\n" not in str(e.value.code)
    audio = "audio:" + str(write(tmp_path / "audio" / "booth" / "train.parquet",
                                 [{"audio": wav_bytes(), "label": "joy", "speaker": "a"}] * 3))  # the file's 3 rows
    with pytest.raises(Reached):
        train.main(["--data", audio, "--out", str(tmp_path / "h.pt"), "--speech_classifier", str(clf),
                    "--speech_oof", str(studio)])
    with pytest.raises(SystemExit) as e:
        train.main(["--data", audio, "--out", str(tmp_path / "h.pt"), "--speech_classifier", str(clf),
                    "--speech_oof", str(shipped)])
    assert "other speech weights" in str(e.value.code) and "\n" not in str(e.value.code)


# ---------------------------------------------------------------- 2. the same rows in train and dev
def test_speech_and_scene_trainers_say_dev_rows_and_speakers_that_are_in_train(tmp_path, monkeypatch, caplog):
    """Byte-identical clips or photos, and a set's speakers in both its splits: one warning line with the counts
    (public sets hold a few duplicates: a warning, not a stop)."""
    from training import scene_classifier as sc
    from training import speech_classifier as spc

    clips = [wav_bytes(f0=200 + 10 * i) for i in range(5)]
    write(tmp_path / "audio" / "booth" / "train.parquet",
          [{"audio": c, "label": "joy", "speaker": s} for c, s in zip(clips[:3], "aab")])
    write(tmp_path / "audio" / "booth" / "dev.parquet",
          [{"audio": c, "label": "joy", "speaker": s} for c, s in zip([clips[0], clips[3]], "bc")])
    write(tmp_path / "audio" / "field" / "train.parquet", [{"audio": clips[4], "label": "joy", "speaker": "c"}])
    monkeypatch.setattr(spc, "SPEECH_SETS", spc.sets_under(tmp_path))
    with caplog.at_level(logging.WARNING, logger="training.datasets"):
        assert spc.shared_clips(tmp_path) == (1, 1)  # field's speaker c is not booth's c
    [line] = [r.getMessage() for r in caplog.records]
    assert "1 of 2 dev rows are byte-identical" in line and "booth/b" in line
    write(tmp_path / "scenes" / "stills" / "train.parquet", [{"image": png_bytes(i), "label": "joy"} for i in range(3)])
    write(tmp_path / "scenes" / "stills" / "dev.parquet", [{"image": png_bytes(i), "label": "joy"} for i in (2, 7)])
    monkeypatch.setattr(sc, "SCENE_SET", "stills")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="training.datasets"):
        assert sc.shared_photos(tmp_path) == (1, 0)
        write(tmp_path / "scenes" / "stills" / "dev.parquet", [{"image": png_bytes(9), "label": "joy"}])
        assert sc.shared_photos(tmp_path) == (0, 0)
    assert len(caplog.records) == 1


def test_face_trainer_says_dev_faces_that_are_train_faces(tmp_path, monkeypatch, caplog):
    """training.face_classifier: a dev part copied from train (a Parquet set, and an image folder's duplicates
    across its seeded split) is said in one line as the faces are read."""
    from training import face_classifier as fc

    monkeypatch.setattr(fc, "CACHE", tmp_path / "cache")
    rows = [{"image": png_bytes(i), "label": e} for i, e in enumerate(["joy", "sadness", "anger", "fear"])]
    write(tmp_path / "faces" / "crops" / "train.parquet", rows)
    write(tmp_path / "faces" / "crops" / "dev.parquet", rows[:2] + [{"image": png_bytes(10), "label": "joy"}])
    with caplog.at_level(logging.WARNING, logger="training.datasets"):
        fc.read_data(tmp_path)
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("training.face_classifier: 2 of 3 dev rows are byte-identical")


def test_pipeline_train_says_dev_rows_that_are_train_rows(tmp_path, monkeypatch, caplog):
    """pipeline.train's --data against its --dev: media by digest (an image folder's seeded parts included) and a
    set's speakers, before any feature is made."""
    from pipeline import train
    from training.datasets import specs_overlap

    clips = [wav_bytes(f0=200 + 10 * i) for i in range(4)]
    tr = write(tmp_path / "booth" / "train.parquet",
               [{"audio": c, "label": "joy", "speaker": s} for c, s in zip(clips[:3], "abc")])
    dev = write(tmp_path / "booth" / "dev.parquet",
                [{"audio": c, "label": "Happy", "speaker": s} for c, s in zip(clips[2:], "cd")])
    folder = tmp_path / "stills"
    for i, label in enumerate(["joy"] * 5 + ["sadness"] * 5):
        (folder / label).mkdir(parents=True, exist_ok=True)
        (folder / label / f"{i}.png").write_bytes(png_bytes(0 if label == "joy" else i))  # joy: 5 copies
    with caplog.at_level(logging.WARNING, logger="training.datasets"):
        assert specs_overlap([f"audio:{tr}"], [f"audio:{dev}"], "pipeline.train") == (1, 1)
        assert specs_overlap([f"imagefolder:{folder}#train"], [f"imagefolder:{folder}#dev"], "x")[0] >= 1
        assert specs_overlap([f"audio:{tr}"], [f"imagefolder:{folder}#dev"], "x") == (0, 0)
    caplog.clear()
    monkeypatch.setattr(train, "create_encoders", reached)
    with caplog.at_level(logging.WARNING, logger="training.datasets"), pytest.raises(Reached):
        train.main(["--data", f"audio:{tr}", "--dev", f"audio:{dev}", "--out", str(tmp_path / "h.pt")])
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["pipeline.train"]


# ---------------------------------------------------------------- 3. temperatures kept from another head
def test_temperatures_from_a_head_with_other_classifiers_are_refused(tmp_path, monkeypatch):
    """--temperatures_from OTHER --refit ...: a kept branch temperature must belong to the classifier the head
    carries, a kept pattern temperature to the same head weights; else one line naming it, before any model loads."""
    from pipeline import calibrate
    from training.calibration import foreign_temperatures

    temps = {"branch_temperatures": {"speech": 1.264, "scene": 0.974, "face": 1.144, "text": 0.99},
             "pattern_temperatures": {"text": 1.342, "audio+face": 0.98}}
    shipped = small_head(tmp_path / "shipped.pt", meta=temps)
    clf = speech_classifier(tmp_path / "speech.pt")
    studio = small_head(tmp_path / "studio.pt", meta={"speech_classifier": clf.read_bytes()})
    problem = foreign_temperatures(studio, shipped, ["branch:face"])
    assert "branch:speech" in problem and "scene" not in problem  # both read the shipped scene classifier
    assert foreign_temperatures(studio, shipped, ["branch:speech"]) is None  # the same head weights: patterns kept
    other = small_head(tmp_path / "other.pt", seed=1)  # other weights, the shipped classifiers
    problem = foreign_temperatures(other, shipped, ["branch:text"])
    assert "pattern temperatures (text, audio+face)" in problem
    assert "branch:text" in foreign_temperatures(other, shipped, [])  # no line classifier: the head reads lines
    assert foreign_temperatures(other, shipped, ["branch:text", "text", "audio+face"]) is None
    # A lone line is the line classifier's where the head carries one, so the head's own text pattern calibrates
    # nothing a column shows: the release's calibrate command keeps it (as it keeps the lone face / frames / voice)
    from training.calibration import lone_patterns
    assert lone_patterns(None) == {"face", "vision", "audio", "text"} and lone_patterns(other) == {"face", "vision",
                                                                                                  "audio"}
    monkeypatch.setattr(calibrate, "create_encoders", reached)
    spec = faces_spec(tmp_path)
    with pytest.raises(SystemExit) as e:
        calibrate.main(["--head", str(studio), "--temperatures_from", str(shipped), "--refit", "branch:face",
                        "--data", spec, "--output", str(tmp_path / "x.pt")])
    assert "branch:speech" in str(e.value.code) and "\n" not in str(e.value.code)
    with pytest.raises(Reached):
        calibrate.main(["--head", str(studio), "--temperatures_from", str(shipped), "--refit", "branch:speech",
                        "--data", spec, "--output", str(tmp_path / "x.pt")])


# ---------------------------------------------------------------- 4. Hugging Face media structs
def test_branch_trainers_read_hugging_face_media_structs(tmp_path, monkeypatch):
    """The {bytes, path} structs `datasets` writes (and pipeline.train reads) reach the speech, scene and face
    trainers as bytes: a struct's bytes, else the file its path names beside the Parquet file."""
    from training import face_classifier as fc
    from training import scene_classifier as sc
    from training import speech_classifier as spc

    (tmp_path / "audio" / "booth").mkdir(parents=True)
    (tmp_path / "audio" / "booth" / "b.wav").write_bytes(wav_bytes(f0=300))
    write(tmp_path / "audio" / "booth" / "train.parquet",
          [{"audio": {"bytes": wav_bytes(), "path": "a.wav"}, "label": "joy", "speaker": "a"},
           {"audio": {"bytes": None, "path": "b.wav"}, "label": "sad", "speaker": "b"}])
    voices = spc.read_speech_set("booth", "train", root=tmp_path)
    assert [len(w) for w in voices.waves] == [4800, 4800] and voices.labels.tolist() == [3, 5]
    write(tmp_path / "scenes" / "stills" / "train.parquet",
          [{"image": {"bytes": png_bytes(i), "path": f"{i}.png"}, "label": "joy"} for i in range(2)])
    monkeypatch.setattr(sc, "SCENE_SET", "stills")
    photos = sc.read_scene_set("train", root=tmp_path)
    assert photos.images == [png_bytes(0), png_bytes(1)] and sc.decode_image(photos.images[0]).shape == (224, 224, 3)
    monkeypatch.setattr(fc, "CACHE", tmp_path / "cache")
    faces = write(tmp_path / "faces" / "crops" / "train.parquet",
                  [{"image": {"bytes": png_bytes(i), "path": f"{i}.png"}, "label": "joy"} for i in range(3)])
    assert fc.read_parquet_set(faces).images.shape == (3, 64, 64)


# ---------------------------------------------------------------- 5. soft targets
def test_rater_shares_without_a_class_and_votes_spelt_our_way_are_learnt(tmp_path, monkeypatch, caplog):
    """A scene set with p_* for six classes (no p_disgust: read as 0) and a face set whose vote columns are spelt as
    our labels (votes_joy; FER+ writes votes_happiness): both learnt as soft targets, the columns read named."""
    from training import face_classifier as fc
    from training import scene_classifier as sc

    six = [e for e in EMOTIONS if e != "disgust"]
    shares = np.random.default_rng(0).dirichlet(np.ones(6), 3)
    write(tmp_path / "scenes" / "stills" / "train.parquet",
          [{"image": png_bytes(i), "label": six[int(p.argmax())], **{f"p_{e}": float(v) for e, v in zip(six, p)}}
           for i, p in enumerate(shares)])
    monkeypatch.setattr(sc, "SCENE_SET", "stills")
    s = sc.read_scene_set("train", root=tmp_path)
    assert np.allclose(s.probs[:, [EMOTIONS.index(e) for e in six]], shares, atol=1e-6)
    assert (s.probs[:, EMOTIONS.index("disgust")] == 0).all()
    assert sc.rater_note(s) == ("rater shares from p_anger, p_fear, p_joy, p_neutral, p_sadness, p_surprise "
                                "(p_disgust: no column, read as 0)")
    votes = {f"votes_{e}": [1, 0] for e in EMOTIONS if e != "disgust"}
    faces = write(tmp_path / "faces" / "voted" / "train.parquet",
                  [{"image": png_bytes(i), "label": "joy", **{k: v[i] for k, v in votes.items()}} for i in range(2)])
    with caplog.at_level(logging.INFO, logger="training.face_classifier"):
        labels, read = fc.read_labels(faces)
    assert read is not None and read[0].tolist() == [1, 0, 1, 1, 1, 1, 1] and read[1].sum() == 0
    [line] = [r.getMessage() for r in caplog.records]
    assert "votes_joy" in line and "votes_disgust: no column, counted 0" in line


# ---------------------------------------------------------------- 6. --oof without speakers
def test_oof_without_a_speaker_column_stops_before_any_feature(tmp_path, monkeypatch, capsys):
    """training.speech_classifier --oof on a set without `speaker`: its usage and one line, exit status 2, before the
    features are made (a pyarrow traceback after them before)."""
    from training import speech_classifier as spc

    for name in ("DATA_ROOT", "SPEECH_SETS", "TRAIN_SETS", "DEV_SETS"):  # main() sets them for --data
        monkeypatch.setattr(spc, name, getattr(spc, name))
    monkeypatch.setattr(spc, "write_oof", reached)
    for split in ("train", "dev"):
        write(tmp_path / "audio" / "booth" / f"{split}.parquet", [{"audio": wav_bytes(), "label": "joy"}])
    clf = speech_classifier(tmp_path / "speech.pt")
    with pytest.raises(SystemExit) as e:
        spc.main(["--data", str(tmp_path), "--out", str(clf), "--oof", str(tmp_path / "oof.npz")])
    assert e.value.code == 2 and "booth has no `speaker` column" in capsys.readouterr().err


# ---------------------------------------------------------------- 7. no epoch beats the start network
def test_face_trainer_writes_nothing_when_no_epoch_beats_random_weights(tmp_path, monkeypatch, caplog):
    """best_epoch 0: from random weights (--init scratch) a stop, exit status 1, nothing written; from a checkpoint
    of one's own a warning, and the network written as it began."""
    import torch

    from model.encoders._mini_xception import MiniXception
    from training import face_classifier as fc

    rng = np.random.default_rng(0)
    faces = fc.FaceSet("crops/dev", rng.integers(0, 255, (4, 64, 64), np.uint8), np.array([0, 3, 4, 5]))
    empty = fc.joined("none", [])
    monkeypatch.setattr(fc, "read_data", lambda data, limit=None: (empty, faces, empty, [faces]))

    def no_better(cfg, voted, hard, folders, devs, start, init):
        """A training whose epochs all scored as the start network did."""
        return start[0].state_dict(), {"best_epoch": 0, "history": [{"epoch": 0, "crops/dev": 0.25}],
                                       "config": {}}

    monkeypatch.setattr(fc, "train", no_better)
    with pytest.raises(SystemExit) as e:
        fc.main(["--data", str(tmp_path), "--out", str(tmp_path / "face.pt"), "--init", "scratch"])
    assert "no epoch beat the random start network" in str(e.value.code) and not (tmp_path / "face.pt").exists()
    torch.save({"state_dict": MiniXception().state_dict()}, tmp_path / "mine.pt")
    with caplog.at_level(logging.WARNING, logger="training.face_classifier"):
        fc.main(["--data", str(tmp_path), "--out", str(tmp_path / "face.pt"), "--init", str(tmp_path / "mine.pt")])
    assert (tmp_path / "face.pt").exists()
    assert any("no epoch beat the --init" in r.getMessage() for r in caplog.records)


def test_a_branch_trainer_on_ones_own_data_does_not_replace_the_shipped_file_by_default(tmp_path, monkeypatch, capsys):
    """Each branch trainer's --out defaults to the shipped file under model/weights: learnt from a studio's --data and
    run without --out, it replaced the shipped classifier for every run of the install, without a word (found in
    review). Refused before any work, naming the way out; the shipped data (no --data) may still remake them."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from training import face_classifier, scene_classifier, speech_classifier
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the face trainer's default --out is relative
    for module, names in ((speech_classifier, ("DATA_ROOT", "SPEECH_SETS", "TRAIN_SETS", "DEV_SETS")),
                          (scene_classifier, ("DATA_ROOT", "SCENE_SET"))):
        for name in names:  # main's --data sets them: put back after
            monkeypatch.setattr(module, name, getattr(module, name))
    for kind, column in (("audio", "audio"), ("scenes", "image")):  # a layout each trainer takes (nothing is read)
        (tmp_path / kind / "mine").mkdir(parents=True)
        for split in ("train", "dev"):
            pq.write_table(pa.table({column: [b"x"], "label": ["happy"]}), tmp_path / kind / "mine" / f"{split}.parquet")
    shipped = {p: p.stat().st_mtime_ns for p in (Path("model/weights") / n for n in
                                                ("face_classifier.pt", "speech_emotion.pt", "scene_emotion.pt"))}
    for trainer in (face_classifier, speech_classifier, scene_classifier):
        with pytest.raises(SystemExit) as stop:
            trainer.main(["--data", str(tmp_path)])
        assert stop.value.code == 2 and "--out is the shipped" in capsys.readouterr().err, trainer.__name__
    assert {p: p.stat().st_mtime_ns for p in shipped} == shipped
    from pipeline.arg_types import shipped_file_problem
    assert shipped_file_problem(tmp_path / "mine.pt", "model/weights/scene_emotion.pt", True) is None
    assert shipped_file_problem("model/weights/scene_emotion.pt", "model/weights/scene_emotion.pt", False) is None
