"""benchmarks.labelled_clips: the per-film scoring on a hand-made clips table, and one tiny end-to-end run."""
from __future__ import annotations

import json

import pytest

from benchmarks import labelled_clips as lc
from schemas.labels import EMOTIONS, PROB_COLUMNS


def onehot(label: str, p: float = 0.9) -> list[float]:
    rest = (1 - p) / (len(EMOTIONS) - 1)
    return [p if e == label else rest for e in EMOTIONS]


def clip(film: str, idx: int, start: float, end: float, emotion: str, *, text=None, face=None, scene=None,
         speech=None, n_faces=0, grounded=False) -> dict:
    return {"film_path": f"/x/films/{film}", "clip_index": idx, "start_s": start, "end_s": end, "emotion": emotion,
            **dict(zip(PROB_COLUMNS, onehot(emotion, 0.5))), "n_faces": n_faces, "grounded": grounded,
            "evidence_text": text, "evidence_face": face, "evidence_scene": scene, "evidence_speech": speech}


@pytest.fixture()
def table(tmp_path):
    labels = [("joy_00.mp4", "joy"), ("anger_00.mp4", "anger"), ("fear_00.mp4", "fear"), ("sadness_00.mp4", "sadness")]
    (tmp_path / "labels.csv").write_text("file,label,frame,audio\n" + "".join(f"{f},{lab},img,aud\n" for f, lab in labels))
    clips = [
        # joy: right; face says joy, speech says anger; grounded
        clip("joy_00.mp4", 0, 0.0, 3.0, "joy", face=onehot("joy"), speech=onehot("anger"), n_faces=1, grounded=True),
        # anger: two clips; the middle (1.6 s of 0-3.2) is in clip 1 (fear, wrong); clip 0 is short and says anger
        clip("anger_00.mp4", 0, 0.0, 0.8, "anger", speech=onehot("anger"), text=onehot("anger")),
        clip("anger_00.mp4", 1, 0.8, 3.2, "fear", face=onehot("anger"), speech=onehot("fear"), n_faces=2,
             grounded=True),
        # fear: right but not grounded, no modality input at all
        clip("fear_00.mp4", 0, 0.0, 2.5, "fear"),
        # sadness_00.mp4 has no clip rows (an error): counts as wrong, no coverage
    ]
    return clips, lc.read_labels(tmp_path)


def test_scoring_middle_clip(table):
    clips, labels = table
    s = lc.score_films(clips, labels, "middle", grounded_support=0.4)
    assert s["films"] == 4 and s["missing"] == 1
    assert s["accuracy"] == pytest.approx(2 / 4)  # joy, fear right; anger (fear) and sadness (missing) wrong
    m = s["modalities"]
    assert m["face"] == {"coverage": 0.5, "n": 2, "accuracy": 1.0}  # joy, anger (middle clip's face says anger)
    assert m["speech"] == {"coverage": 0.5, "n": 2, "accuracy": 0.0}  # joy->anger, anger->fear
    assert m["text"] == {"coverage": 0.0, "n": 0, "accuracy": None}  # only the short first anger clip had text
    assert m["scene"]["coverage"] == 0.0
    assert s["face_found"] == 0.5
    assert s["grounded"] == 0.5
    assert (s["n_grounded"], s["accuracy_grounded"]) == (2, 0.5)  # joy right, anger wrong
    assert (s["n_not_grounded"], s["accuracy_not_grounded"]) == (2, 0.5)  # fear right, sadness missing
    assert s["majority_baseline"] == 0.25
    # the fused label's confidence on the 3 films with rows: 0.5 each, right on 2 of them (one 15-bin bin)
    assert s["mean_confidence"] == pytest.approx(0.5) and s["ece"] == pytest.approx(2 / 3 - 0.5)
    assert s["per_label"] == {"anger": 0.0, "fear": 1.0, "joy": 1.0, "sadness": 0.0}
    detail = {f["file"]: f for f in s["films_detail"]}
    assert detail["anger_00.mp4"]["emotion"] == "fear" and detail["anger_00.mp4"]["clips"] == 2
    assert detail["sadness_00.mp4"]["emotion"] is None
    # each film's face label and whether a face was found, apart (the face label was overwritten by the flag)
    assert detail["joy_00.mp4"]["face"] == "joy" and detail["joy_00.mp4"]["face_found"] is True


def test_scoring_weighted(table):
    clips, labels = table
    # give the short anger clip a strong anger vote: 0.8 s x 1.0 vs 2.4 s x 0.5 fear -> still fear overall
    clips[1].update(dict(zip(PROB_COLUMNS, onehot("anger", 1.0))))
    s = lc.score_films(clips, labels, "weighted", grounded_support=0.4)
    assert s["accuracy"] == pytest.approx(2 / 4)
    # text: only the first anger clip has it, averaged over the clips that have it -> covered, right
    assert s["modalities"]["text"] == {"coverage": 0.25, "n": 1, "accuracy": 1.0}
    # speech on anger: (0.8 * anger 0.9 + 2.4 * fear 0.9) / 3.2 -> fear wins
    assert s["modalities"]["speech"]["accuracy"] == 0.0
    assert s["face_found"] == 0.5
    # grounded recomputed: joy (face 0.9 for joy), anger film fused fear: speech fear = 0.679 -> grounded
    detail = {f["file"]: f for f in s["films_detail"]}
    assert detail["joy_00.mp4"]["grounded"] is True and detail["anger_00.mp4"]["grounded"] is True
    assert detail["fear_00.mp4"]["grounded"] is False
    # now the short clip outweighs: 0.8 x 1.0 > 2.4 x 0.3
    clips[2].update(dict(zip(PROB_COLUMNS, onehot("fear", 0.3))))
    assert {f["file"]: f for f in lc.score_films(clips, labels, "weighted", 0.4)["films_detail"]}[
        "anger_00.mp4"]["emotion"] == "anger"


def test_without_each_modality(tmp_path):
    """The run's rule with one modality's evidence left out: a line read as anger outvotes a face and a voice that
    agree on joy; without the line the film is right, without the face it is not."""
    (tmp_path / "labels.csv").write_text("file,label,frame,audio\njoy_00.mp4,joy,img,aud\n")
    c = clip("joy_00.mp4", 0, 0.0, 3.0, "anger", text=onehot("anger", 0.98), face=onehot("joy", 0.6),
             speech=onehot("joy", 0.6), scene=onehot("fear", 0.6), n_faces=1, grounded=True)
    c["modalities_used"] = ["text", "vision", "face", "audio"]
    s = lc.score_films([c], lc.read_labels(tmp_path), "middle", grounded_support=0.4)
    assert s["accuracy"] == 0.0
    w = s["without"]
    assert (w["text"]["relabelled"], w["text"]["accuracy"]) == (1, 1.0)  # face x speech: joy
    assert w["face"]["accuracy"] == 0.0  # the scene stands in: text x scene x speech, anger still
    assert (w["scene"]["relabelled"], w["scene"]["accuracy"]) == (0, 0.0)  # the face stood in for it already
    assert w["text"]["mean_confidence"] == pytest.approx(0.6 ** 2 / (0.6 ** 2 + 6 * (0.4 / 6) ** 2))
    assert "| without text | 1 | 1.000 |" in lc.format_table("demo", s)


def test_table_formats(table):
    clips, labels = table
    text = lc.format_table("demo", lc.score_films(clips, labels, grounded_support=0.4))
    assert "| evidence_face | 0.500 | 2 | 1.000 |" in text
    assert "| fused `emotion` (mean confidence 0.500, ECE 0.167; a calibrated scorer: " in text
    assert text.split("\n")[4].endswith(") | 1.000 | 4 | 0.500 |")


def test_end_to_end_tiny(tmp_path, capsys):
    """One pair, one film per label, faces only, no ASR, a random-weight head: the whole path runs."""
    import torch
    from model.bvpec import BVPEC, BVPECConfig
    from model.checkpoints import save_head
    from tests.scoring_support import encoder_dims
    torch.manual_seed(0)
    head = tmp_path / "random_head.pt"
    save_head(head, BVPEC(BVPECConfig(input_dims=encoder_dims(), d_model=32, heads=2, dropout=0.0)).eval(),
              {"note": "random-weight head for tests"})
    out = tmp_path / "r.json"
    assert lc.main(["--pairs", "imfdb+ravdess", "--per_class", "1", "--cache_dir", str(tmp_path / "films"),
                    "--json", str(out), "--head", str(head), "--modalities", "face", "--transcribe", "never"]) == 0
    s = json.loads(out.read_text())["pairs"]["imfdb+ravdess"]
    assert s["films"] == 7 and s["missing"] == 0  # IMFDB and RAVDESS dev both have all 7 labels
    assert s["modalities"]["text"]["coverage"] == 0 and s["modalities"]["scene"]["coverage"] == 0
    assert s["modalities"]["speech"]["coverage"] == 0  # audio not encoded with --modalities face
    assert s["modalities"]["face"]["coverage"] == pytest.approx(s["face_found"])
    assert 0 <= s["accuracy"] <= 1
    assert "### imfdb+ravdess" in capsys.readouterr().out


def test_sets_spelt_otherwise_pair_in_our_labels(tmp_path):
    """An image set labelled 'happy' / 'sad' pairs with a voice set labelled 'joy' / 'sadness' (make_av_clips.py
    pairs by the label as written, so before 2026-12-06 they made no film); rows with no label of ours are left out."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    data = lc.DATA
    faces = pq.read_table(data / "faces/imfdb/dev.parquet", columns=["image", "label", "path"]).to_pylist()
    voices = pq.read_table(data / "audio/ravdess/dev.parquet", columns=["audio", "label", "path"]).to_pylist()
    spelt = {"joy": "Happy", "sadness": "sad"}
    rows = [next(r for r in faces if r["label"] == k) | {"label": v} for k, v in spelt.items()]
    rows.append(rows[0] | {"label": "contempt"})
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "faces.parquet")
    pq.write_table(pa.Table.from_pylist([next(r for r in voices if r["label"] == k) for k in spelt]),
                   tmp_path / "voices.parquet")
    films = lc.make_films(str(tmp_path / "faces.parquet"), str(tmp_path / "voices.parquet"), 1, tmp_path / "cache")
    assert sorted(r["label"] for r in lc.read_labels(films)) == ["joy", "sadness"]
    assert len(list(films.glob("*.mp4"))) == 2
