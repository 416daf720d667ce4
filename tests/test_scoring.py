"""Scoring: head handler, features table round trip, rescore, failure isolation, and the whole scorer on real media."""
from __future__ import annotations

import math
from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from model.bvpec import BVPEC, BVPECConfig
from model.checkpoints import DEFAULT_HEAD, load_head, save_head
from model.predict import predict
from schemas import features as features_schema
from schemas import rows_to_table
from schemas.clips import SCHEMA as CLIPS_SCHEMA
from schemas.labels import EMOTIONS, PROB_COLUMNS
from model.encoders import EncoderSpec, encoder_version
from model.featurize import Failure, crop_faces
from transforms.fuse import features_row, score_columns, tokens_from_row
from transforms.head_inference import FuseClips
from testing.films import FilmSpec, make_textured_film

DIMS = {"text": 12, "vision": 10, "face": 6, "audio": 5}
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def head_path(tmp_path):
    torch.manual_seed(0)
    model = BVPEC(BVPECConfig(input_dims=DIMS, d_model=16, heads=2, dropout=0.0)).eval()
    path = tmp_path / "head.pt"
    save_head(path, model, {"note": "random test head"})
    return str(path)


def random_tokens(rng, missing=()):
    return {m: rng.standard_normal((0 if m in missing else int(rng.integers(1, 7)), d)).astype(np.float32)
            for m, d in DIMS.items()}


def test_features_row_round_trips_tokens_and_missing():
    rng = np.random.default_rng(1)
    toks = {**random_tokens(rng, missing=("face",)), "scene": rng.standard_normal((4, 10)).astype(np.float32)}
    row = features_row("f1", "/films/f1.mp4", 3, toks, "enc-v", {})
    table = rows_to_table([row], features_schema.SCHEMA)  # checks the schema accepts it
    back = tokens_from_row(table.to_pylist()[0])
    assert row["face_len"] == 0 and row["face_pooled"] is None and back["face"].shape == (0, DIMS["face"])
    for m in ("text", "vision", "audio", "scene"):
        np.testing.assert_array_equal(back[m], toks[m])
        np.testing.assert_allclose(row[f"{m}_pooled"], toks[m].mean(0), rtol=1e-6)
    # a schema 1.0 table (no scene columns) reads with no scene tokens
    old = {k: v for k, v in table.to_pylist()[0].items() if not k.startswith("scene_")}
    assert tokens_from_row(old)["scene"].shape[0] == 0


def test_score_columns_cover_the_clips_schema(head_path):
    model, _ = load_head(head_path)
    pred = predict(model, [random_tokens(np.random.default_rng(2))])[0]
    cols = score_columns(pred, "bvpec-x", 2)
    score_fields = {f.name for f in CLIPS_SCHEMA if f.name.startswith(("prob_", "gate_"))} | {
        "emotion", "confidence", "valence", "arousal", "modalities_used", "model_version"}
    assert score_fields <= set(cols)
    assert cols["emotion"] in EMOTIONS and math.isclose(sum(cols[c] for c in PROB_COLUMNS), 1.0, rel_tol=1e-5)


def test_head_handler_batches_and_turns_bad_batches_into_failures(head_path):
    rng = np.random.default_rng(3)
    good = [(("film", i), (random_tokens(rng, missing=("text",) if i % 3 == 0 else ()), "/f.mp4")) for i in range(7)]
    bad = [(("bad", 0), ({**random_tokens(rng), "vision": np.zeros((2, 99), np.float32)}, "/b.mp4"))]

    def check(results):
        by_key = dict(results)
        assert len(by_key) == 8
        assert isinstance(by_key[("bad", 0)][1], Failure)  # wrong width: the batch fails, nothing crashes
        ok = [r for k, (p, r) in by_key.items() if k[0] == "film"]
        assert all(isinstance(r, dict) and r["emotion"] in EMOTIONS and r["model_version"] == "v1" for r in ok)
        assert all(abs(sum(r[c] for c in PROB_COLUMNS) - 1) < 1e-5 for r in ok)

    with TestPipeline() as p:
        # Separate Creates so the bad element lands in its own batch (batches never span bundles here).
        out = ((p | "Good" >> beam.Create(good), p | "Bad" >> beam.Create(bad)) | beam.Flatten()
               | FuseClips(head_path, "v1", batch_size=4))
        assert_that(out, check)


def test_face_crops():
    frame = np.zeros((50, 40, 3), np.uint8)
    crops = crop_faces(frame, [(30, 40, 20, 20), (0, 0, 4, 4), (5, 5, 10, 12)])
    assert [c.shape for c in crops] == [(10, 10, 3), (12, 10, 3)]  # largest first, clipped, tiny dropped


def _write_catalogue(root: Path, head_path: str, n_films=2, n_clips=5, encoder_version="enc-v"):
    """A features table + clips table as the main pipeline would write them, with the head's labels."""
    rng = np.random.default_rng(4)
    model, _ = load_head(head_path)
    labels = {}
    for f in range(n_films):
        film_id = f"film{f}"
        toks = [random_tokens(rng, missing=("face",) if i % 2 else ()) for i in range(n_clips)]
        preds = predict(model, toks)
        feats = [features_row(film_id, f"/films/{film_id}.mp4", i, t, encoder_version, {}) for i, t in enumerate(toks)]
        clips = [{"film_id": film_id, "film_path": f"/films/{film_id}.mp4", "fingerprint": "fp", "clip_index": i,
                  "start_s": 2.0 * i, "end_s": 2.0 * i + 2, "segment_source": "window", "text_source": "none",
                  "n_frames": 2, "has_audio": True, "run_id": "r0", "config_hash": "c0",
                  **score_columns(p, "old", None)} for i, p in enumerate(preds)]
        for sub, rows, schema in (("features", feats, features_schema.SCHEMA), ("clips", clips, CLIPS_SCHEMA)):
            (root / sub).mkdir(parents=True, exist_ok=True)
            pq.write_table(rows_to_table(rows, schema), root / sub / f"{film_id}.parquet")
        labels[film_id] = [p.emotion for p in preds]
    return labels


def test_rescore_same_head_gives_same_labels_and_new_version(tmp_path, head_path):
    from pipeline import rescore
    labels = _write_catalogue(tmp_path / "run1", head_path, encoder_version=encoder_version(EncoderSpec(head=head_path)))
    out = tmp_path / "run2"
    res = rescore.run(["--features", str(tmp_path / "run1" / "features"), "--head", head_path,
                       "--output", str(out), "--batch_size", "3"], save_main_session=False)
    assert res["model_version"].startswith("bvpec-")
    for film_id, want in labels.items():
        rows = pq.read_table(out / "clips" / f"{film_id}.parquet").to_pylist()
        assert [r["emotion"] for r in sorted(rows, key=lambda r: r["clip_index"])] == want
        assert {r["model_version"] for r in rows} == {res["model_version"]}
        assert all(r["start_s"] == 2.0 * r["clip_index"] for r in rows)  # media columns kept
    assert not (out / "errors").exists()


def test_rescore_leaves_a_damaged_features_file_to_its_films_error_row(tmp_path, head_path):
    # One features file cut short (a copy interrupted). Before, rescore stopped at it with pyarrow's traceback.
    from pipeline import rescore
    labels = _write_catalogue(tmp_path / "run1", head_path, n_films=3,
                              encoder_version=encoder_version(EncoderSpec(head=head_path)))
    damaged = tmp_path / "run1" / "features" / "film1.parquet"
    damaged.write_bytes(damaged.read_bytes()[:200])
    out = tmp_path / "run2"
    res = rescore.run(["--features", str(tmp_path / "run1" / "features"), "--head", head_path,
                       "--output", str(out), "--batch_size", "3"], save_main_session=False)
    assert res["unreadable"] == [str(damaged)]
    assert sorted(f.stem for f in (out / "clips").glob("*.parquet")) == ["film0", "film2"]
    for film_id in ("film0", "film2"):
        rows = sorted(pq.read_table(out / "clips" / f"{film_id}.parquet").to_pylist(), key=lambda r: r["clip_index"])
        assert [r["emotion"] for r in rows] == labels[film_id]
    errors = [r for f in (out / "errors").rglob("*.parquet") for r in pq.read_table(f).to_pylist()]
    assert [(e["film_id"], e["stage"], e["fatal"]) for e in errors] == [("film1", "rescore", True)]


def test_rescore_does_not_read_lines_in_other_languages(tmp_path, head_path):
    """Features written before lines were identified keep a French line's text tokens: rescore drops them for
    the clips whose line the text path does not read (the clips table's language), as a run would now, and
    says so in the errors table; `--text_languages any` reads them all."""
    from model.featurize import select_modalities
    from pipeline import rescore
    labels = _write_catalogue(tmp_path / "run1", head_path, n_films=1,
                              encoder_version=encoder_version(EncoderSpec(head=head_path)))
    clips_path = tmp_path / "run1" / "clips" / "film0.parquet"
    rows = pq.read_table(clips_path).to_pylist()
    for r, (text, lang) in zip(rows, [("Je cherche quelqu'un.", "fr"), ("Une quête dangereuse.", "fre"),
                                      ("I'm searching for someone.", "en"), ("Hello.", None)]):
        r.update(text=text, text_source="subtitle", language=lang)
    pq.write_table(rows_to_table(rows, CLIPS_SCHEMA), clips_path)
    feats = sorted(pq.read_table(tmp_path / "run1" / "features" / "film0.parquet").to_pylist(),
                   key=lambda r: r["clip_index"])
    model, _ = load_head(head_path)
    tokens = [tokens_from_row(f) for f in feats]
    want = predict(model, [select_modalities(t, ("vision", "face", "audio")) if i < 2 else t
                           for i, t in enumerate(tokens)])
    argv = ["--features", str(tmp_path / "run1" / "features"), "--head", head_path, "--batch_size", "2"]
    res = rescore.run(argv + ["--output", str(tmp_path / "en")], save_main_session=False)
    got = sorted(pq.read_table(tmp_path / "en" / "clips" / "film0.parquet").to_pylist(), key=lambda r: r["clip_index"])
    assert [r["emotion"] for r in got] == [p.emotion for p in want]
    for r, p in zip(got, want):
        assert np.allclose([r[c] for c in PROB_COLUMNS], [score_columns(p, "x", None)[c] for c in PROB_COLUMNS],
                           atol=1e-4)
    assert all("text" not in r["modalities_used"] for r in got[:2]) and "text" in got[2]["modalities_used"]
    errors = [e for f in (tmp_path / "en" / "errors").rglob("*.parquet") for e in pq.read_table(f).to_pylist()]
    assert [(e["stage"], e["error_type"], e["fatal"]) for e in errors] == [("encode", "UnreadLanguage", False)]
    assert errors[0]["message"].startswith("2 of 5 clips") and "2 in 'fr'" in errors[0]["message"]
    every = rescore.run(argv + ["--output", str(tmp_path / "any"), "--text_languages", "any"], save_main_session=False)
    assert every["model_version"] != res["model_version"]
    got = sorted(pq.read_table(tmp_path / "any" / "clips" / "film0.parquet").to_pylist(), key=lambda r: r["clip_index"])
    assert [r["emotion"] for r in got] == labels["film0"] and not (tmp_path / "any" / "errors").exists()


def test_rescore_refuses_features_from_other_encoders(tmp_path, head_path):
    """Features made by other encoders (another head's fine-tuned layers, another ViT) would score without
    an error, wrongly: rescore stops with a message that says what to do, and writes nothing."""
    from pipeline import rescore
    _write_catalogue(tmp_path / "run1", head_path, encoder_version="some-other-encoders")
    with pytest.raises(SystemExit, match="some-other-encoders.*Run pipeline.run with this head"):
        rescore.run(["--features", str(tmp_path / "run1" / "features"), "--head", head_path,
                     "--output", str(tmp_path / "run2")], save_main_session=False)
    assert not (tmp_path / "run2").exists()
    with pytest.raises(SystemExit, match="no features table in .*written with --write_features"):
        rescore.run(["--features", str(tmp_path / "run1" / "clips-typo"), "--head", head_path,
                     "--output", str(tmp_path / "run2")], save_main_session=False)


def _rescore(features: Path, head: str, out: Path, *extra: str) -> dict:
    from pipeline import rescore
    return rescore.run(["--features", str(features), "--head", head, "--output", str(out), "--batch_size", "3",
                        *extra], save_main_session=False)


def _error_rows(out: Path) -> list[dict]:
    return sorted((r for f in (out / "errors").rglob("*.parquet") for r in pq.read_table(f).to_pylist()),
                  key=lambda r: r["film_id"])


def _rewrite(path: Path, schema, change) -> None:
    """Rewrite a table file with change(rows) applied."""
    rows = sorted(pq.read_table(path).to_pylist(), key=lambda r: r["clip_index"])
    change(rows)
    pq.write_table(rows_to_table(rows, schema), path)


def _flip_bytes(path: Path, column: str, at: str) -> None:
    """Invert 64 bytes of a column chunk's first page of row group 0: its header ('header') or the middle of its
    compressed data ('data'), as a bad sector or a broken copy would."""
    chunk = next(c for c in (pq.ParquetFile(path).metadata.row_group(0).column(i)
                             for i in range(pq.ParquetFile(path).metadata.num_columns))
                 if c.path_in_schema.startswith(column))
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    first = start + 2 if at == "header" else start + chunk.total_compressed_size // 2
    data = bytearray(path.read_bytes())
    data[first:first + 64] = bytes(b ^ 0xFF for b in data[first:first + 64])
    path.write_bytes(bytes(data))


def test_rescore_refuses_a_film_whose_clips_and_features_are_not_the_same_clips(tmp_path, head_path):
    """Features pair with the clips table by clip_index. A film redone after its features were written (a clips
    row the features lack, a features row without its clip) or with a clips table and no features file at all
    gets a fatal row saying what differs and no clips file; before, it was scored with null columns, its extra
    features dropped, or left out unseen."""
    labels = _write_catalogue(tmp_path / "run1", head_path, n_films=4,
                              encoder_version=encoder_version(EncoderSpec(head=head_path)))
    clips = tmp_path / "run1" / "clips"
    _rewrite(clips / "film0.parquet", CLIPS_SCHEMA,
             lambda rows: rows.append({**rows[-1], "clip_index": 5, "start_s": 10.0, "end_s": 12.0}))
    _rewrite(clips / "film1.parquet", CLIPS_SCHEMA, lambda rows: rows.pop(2))
    (tmp_path / "run1" / "features" / "film2.parquet").unlink()
    out = tmp_path / "run2"
    res = _rescore(tmp_path / "run1" / "features", head_path, out)
    assert sorted(f.stem for f in (out / "clips").glob("*.parquet")) == ["film3"]
    assert res["no_features"] == ["film2"]
    rows = sorted(pq.read_table(out / "clips" / "film3.parquet").to_pylist(), key=lambda r: r["clip_index"])
    assert [r["emotion"] for r in rows] == labels["film3"]
    errors = _error_rows(out)
    assert [(e["film_id"], e["stage"], e["error_type"], e["fatal"]) for e in errors] == [
        ("film0", "rescore", "FeaturesMismatch", True), ("film1", "rescore", "FeaturesMismatch", True),
        ("film2", "rescore", "NoFeatures", True)]
    assert "clips rows without features: 5" in errors[0]["message"]
    assert "features rows without a clips row: 2" in errors[1]["message"]
    assert errors[2]["film_path"] == "/films/film2.mp4" and "--write_features" in errors[2]["message"]


def test_a_film_redone_without_write_features_loses_its_old_features(tmp_path):
    """A film indexed with --write_features, then redone without it: its old features file went on beside the new
    clips, and rescore scored the old tokens as the new clips. The commit now removes it, so rescore refuses the
    film; the film still indexed with its features is rescored to the labels its run wrote."""
    from pipeline.run import run
    films = [make_textured_film(tmp_path / "films" / f"{name}.mp4",
                                FilmSpec(seconds=6.0, width=320, height=180, fps=12, gop_s=4.0, crf=35))
             for name in ("kept", "redone")]
    out = tmp_path / "out"
    argv = ["--output", str(out), "--transcribe", "never", "--frames_per_clip", "1"]
    assert run(["--input", str(tmp_path / "films" / "*.mp4"), "--write_features"] + argv,
               save_main_session=False)["ok"] == 2
    ids = {pq.read_table(f).column("film_path")[0].as_py(): f.stem for f in (out / "clips").glob("*.parquet")}
    kept, redone = ids[str(films[0])], ids[str(films[1])]
    assert (out / "features" / f"{redone}.parquet").exists()
    assert run(["--input", str(films[1]), "--force"] + argv, save_main_session=False)["ok"] == 1
    assert (out / "clips" / f"{redone}.parquet").exists() and not (out / "features" / f"{redone}.parquet").exists()

    res = _rescore(out / "features", str(DEFAULT_HEAD), tmp_path / "re")
    assert res["no_features"] == [redone] and not (tmp_path / "re" / "clips" / f"{redone}.parquet").exists()
    assert [(e["film_id"], e["error_type"], e["fatal"]) for e in _error_rows(tmp_path / "re")] == [
        (redone, "NoFeatures", True)]
    before = sorted(pq.read_table(out / "clips" / f"{kept}.parquet").to_pylist(), key=lambda r: r["clip_index"])
    again = sorted(pq.read_table(tmp_path / "re" / "clips" / f"{kept}.parquet").to_pylist(),
                   key=lambda r: r["clip_index"])
    assert [r["emotion"] for r in again] == [r["emotion"] for r in before]


def test_rescore_refuses_modalities_the_features_were_not_encoded_with(tmp_path):
    """A run with --modalities text,vision --write_features stores no face or audio tokens (their <m>_dim is 0).
    Rescored with every modality, it was scored without them under the all-modalities model_version. Now: when no
    film has them, rescore stops at launch naming --modalities; rescored with --modalities text,vision it writes what
    that run wrote; a film without them beside films with them gets a fatal row, the others are rescored."""
    from pipeline.run import run
    films = [make_textured_film(tmp_path / "films" / f"{name}.mp4",
                                FilmSpec(seconds=6.0, width=320, height=180, fps=12, gop_s=4.0, crf=35))
             for name in ("some", "every")]
    out = tmp_path / "out"
    argv = ["--output", str(out), "--transcribe", "never", "--frames_per_clip", "1", "--write_features"]
    assert run(["--input", str(films[0]), "--modalities", "text,vision"] + argv, save_main_session=False)["ok"] == 1
    (some,) = [f.stem for f in (out / "clips").glob("*.parquet")]
    head = str(DEFAULT_HEAD)
    with pytest.raises(SystemExit, match=r"--modalities asks for face,audio.*hold no face,audio tokens.*"
                                         r"pass --modalities text,vision"):
        _rescore(out / "features", head, tmp_path / "all")
    assert not (tmp_path / "all").exists()
    _rescore(out / "features", head, tmp_path / "tv", "--modalities", "text,vision")
    want = sorted(pq.read_table(out / "clips" / f"{some}.parquet").to_pylist(), key=lambda r: r["clip_index"])
    got = sorted(pq.read_table(tmp_path / "tv" / "clips" / f"{some}.parquet").to_pylist(),
                 key=lambda r: r["clip_index"])
    assert [(r["emotion"], r["model_version"]) for r in got] == [(r["emotion"], r["model_version"]) for r in want]
    np.testing.assert_allclose([[r[c] for c in PROB_COLUMNS] for r in got],
                               [[r[c] for c in PROB_COLUMNS] for r in want], atol=1e-4)

    assert run(["--input", str(films[1])] + argv, save_main_session=False)["ok"] == 1
    (every,) = [f.stem for f in (out / "clips").glob("*.parquet") if f.stem != some]
    _rescore(out / "features", head, tmp_path / "mixed")
    assert sorted(f.stem for f in (tmp_path / "mixed" / "clips").glob("*.parquet")) == [every]
    errors = _error_rows(tmp_path / "mixed")
    assert [(e["film_id"], e["error_type"], e["fatal"]) for e in errors] == [(some, "ModalityNotEncoded", True)]
    assert "no face,audio tokens" in errors[0]["message"]


def test_rescore_refuses_a_line_the_features_never_read(tmp_path, head_path):
    """Features from a run that read English lines only hold no text tokens for a French line. Rescored with
    `--text_languages any` that clip was scored without its line under the 'any' model_version; now the film is
    refused, and a rescore that reads English only (the run's choice) scores it as before."""
    _write_catalogue(tmp_path / "run1", head_path, n_films=1,
                     encoder_version=encoder_version(EncoderSpec(head=head_path)))

    def french_line(rows):
        rows[1].update(text="Où étais-tu hier soir ?", text_source="subtitle", language="fr")

    def not_read(rows):
        rows[1].update(text_len=0, text_tokens=None, text_pooled=None)
    _rewrite(tmp_path / "run1" / "clips" / "film0.parquet", CLIPS_SCHEMA, french_line)
    _rewrite(tmp_path / "run1" / "features" / "film0.parquet", features_schema.SCHEMA, not_read)
    features = tmp_path / "run1" / "features"
    _rescore(features, head_path, tmp_path / "any", "--text_languages", "any")
    assert not (tmp_path / "any" / "clips").exists()
    errors = _error_rows(tmp_path / "any")
    assert [(e["error_type"], e["fatal"]) for e in errors] == [("LinesNotEncoded", True)]
    assert errors[0]["message"].startswith("clips 1 have a line")
    _rescore(features, head_path, tmp_path / "en")
    assert (tmp_path / "en" / "clips" / "film0.parquet").exists()
    assert [e["error_type"] for e in _error_rows(tmp_path / "en")] == ["UnreadLanguage"]
    # under --modalities text the row says what a run's says: nothing else to score those clips from (review)
    _rescore(features, head_path, tmp_path / "text", "--modalities", "text")
    [row] = _error_rows(tmp_path / "text")
    assert "(--modalities text)" in row["message"] and "guess" in row["message"], row["message"]


def test_rescore_refuses_damaged_features_and_goes_on(tmp_path, head_path):
    """A damaged page header stopped the whole rescore (nothing written for the healthy films); NaN tokens (what
    damaged compressed bytes can read back as) gave NaN probabilities; a token count that is not len x dim stopped
    it too. Each is now its film's fatal row, and the other films are rescored."""
    labels = _write_catalogue(tmp_path / "run1", head_path, n_films=4,
                              encoder_version=encoder_version(EncoderSpec(head=head_path)))
    features = tmp_path / "run1" / "features"
    _flip_bytes(features / "film0.parquet", "vision_tokens", "header")
    assert pq.read_table(features / "film0.parquet", columns=["encoder_version"]).num_rows == 5  # found at launch

    def nan(rows):
        rows[2]["vision_tokens"][3] = float("nan")

    def short(rows):
        rows[0]["text_len"] += 1
    _rewrite(features / "film1.parquet", features_schema.SCHEMA, nan)
    _rewrite(features / "film2.parquet", features_schema.SCHEMA, short)
    out = tmp_path / "run2"
    res = _rescore(features, head_path, out)
    assert res["unreadable"] == []
    assert sorted(f.stem for f in (out / "clips").glob("*.parquet")) == ["film3"]
    rows = sorted(pq.read_table(out / "clips" / "film3.parquet").to_pylist(), key=lambda r: r["clip_index"])
    assert [r["emotion"] for r in rows] == labels["film3"]
    errors = _error_rows(out)
    assert [(e["film_id"], e["stage"], e["fatal"]) for e in errors] == [
        ("film0", "rescore", True), ("film1", "rescore", True), ("film2", "rescore", True)]
    assert "cannot be read whole" in errors[0]["message"]
    assert errors[1]["message"] == "clip 2's features are damaged: vision_tokens holds values that are not finite " \
                                   "(NaN or infinite)"
    assert "text_tokens holds" in errors[2]["message"] and "text_len x text_dim" in errors[2]["message"]


def _committed_with_features(tmp_path: Path, head_path: str, out: Path) -> dict:
    """One film of a scored catalogue committed by commit_film under `out` (id film0, at /films/film0.mp4), with its
    features file; returns its manifest row."""
    from transforms.elements import FilmRef
    from transforms.write import commit_film, manifest_row
    _write_catalogue(tmp_path / "run1", head_path, n_films=1,
                     encoder_version=encoder_version(EncoderSpec(head=head_path)))
    feats = pq.read_table(tmp_path / "run1" / "features" / "film0.parquet").to_pylist()
    clips = pq.read_table(tmp_path / "run1" / "clips" / "film0.parquet").to_pylist()
    ref = FilmRef("/films/film0.mp4", 1, "film0", "fp")
    return commit_film(str(out), "r1", manifest_row("r1", ref, "c0", "ok", n_clips=len(clips)), clip_rows=clips,
                       features=feats)


def test_features_are_committed_with_page_checksums_that_rescore_verifies(tmp_path, head_path):
    """commit_film writes the features table with a CRC per page (other tables as before), and rescore verifies
    them: damaged compressed bytes that read back as plausible numbers refuse the film."""
    out = tmp_path / "out"
    _committed_with_features(tmp_path, head_path, out)
    path = out / "features" / "film0.parquet"
    _flip_bytes(path, "vision_tokens", "data")
    assert pq.read_table(path).num_rows == 5  # read without verification, the damage goes unseen
    with pytest.raises(OSError, match="CRC checksum verification failed"):
        pq.read_table(path, page_checksum_verification=True)
    _rescore(out / "features", head_path, tmp_path / "re")
    assert not (tmp_path / "re" / "clips").exists()
    errors = _error_rows(tmp_path / "re")
    assert [(e["film_id"], e["stage"], e["fatal"]) for e in errors] == [("film0", "rescore", True)]
    assert "cannot be read whole" in errors[0]["message"] and "CRC checksum" in errors[0]["message"]


def test_a_moved_film_keeps_its_features_page_checksums(tmp_path, head_path):
    """commit_move rewrites a moved film's features file to name its new path. Before 2026-12-06 it wrote it
    without page checksums, so damage to the moved file read back as numbers and rescore scored it."""
    from transforms.elements import FilmRef
    from transforms.write import commit_move
    out = tmp_path / "out"
    prev = _committed_with_features(tmp_path, head_path, out)
    commit_move(str(out), "r2", FilmRef("/library/film0.mp4", 1, "film0", "fp"), prev, "c0")
    path = out / "features" / "film0.parquet"
    assert set(pq.read_table(path).column("film_path").to_pylist()) == {"/library/film0.mp4"}
    _flip_bytes(path, "vision_tokens", "data")
    with pytest.raises(OSError, match="CRC checksum verification failed"):
        pq.read_table(path, page_checksum_verification=True)


@pytest.mark.slow
def test_sintel_scored_then_rescored_from_features_gives_same_labels(tmp_path):
    """The issue's 'done when': the real Sintel trailer with its subtitles gets one of the 7 labels per clip
    with probabilities summing to 1; --write_features then pipeline.rescore gives the same labels."""
    from pipeline import rescore
    from pipeline.run import run
    from tests.scoring_support import SINTEL, head_for_tests
    if not SINTEL.exists():
        pytest.skip("shared Sintel trailer not present")
    head = head_for_tests(tmp_path)
    out = tmp_path / "out"
    summary = run(["--input", str(SINTEL), "--output", str(out), "--head", head, "--write_features",
                   "--transcribe", "never", "--batch_size", "16"], save_main_session=False)
    assert summary["ok"] == 1
    (clips_file,) = (out / "clips").glob("*.parquet")
    clips = sorted(pq.read_table(clips_file).to_pylist(), key=lambda r: r["clip_index"])
    assert len(clips) >= 10 and all(r["emotion"] in EMOTIONS for r in clips)
    assert all(abs(sum(r[c] for c in PROB_COLUMNS) - 1) < 1e-4 for r in clips)
    assert sum(bool(r["text"]) for r in clips) >= 3 and any("vision" in r["modalities_used"] for r in clips)
    assert not list((out / "errors").rglob("*.parquet"))

    (feat_file,) = (out / "features").glob("*.parquet")
    feats = pq.read_table(feat_file).to_pylist()
    assert [f["clip_index"] for f in feats] == [r["clip_index"] for r in clips]
    assert all(f["film_path"] == str(SINTEL) for f in feats)

    res = rescore.run(["--features", str(out / "features"), "--head", head, "--output", str(tmp_path / "re")],
                      save_main_session=False)
    assert res["model_version"] == clips[0]["model_version"]
    again = sorted(pq.read_table(tmp_path / "re" / "clips" / clips_file.name).to_pylist(), key=lambda r: r["clip_index"])
    assert [r["emotion"] for r in again] == [r["emotion"] for r in clips]
    np.testing.assert_allclose([r["prob_joy"] for r in again], [r["prob_joy"] for r in clips], atol=1e-4)


def test_vision_failure_isolated_to_its_clip_and_reported(tmp_path):
    """A clip whose frames the ViT cannot take fails alone (the batch is retried clip by clip): it loses
    vision and faces, the other clips keep theirs, and the per-film step writes a non-fatal error row."""
    from model.encoders import create_encoders
    from model.featurize import ClipMedia, Featurizer
    from transforms.elements import ClipSpec, DecodedClip
    from transforms.film import _Film, ProcessFilm
    from transforms.decode import DecodeConfig, decode_clip
    from transforms.score import FilmScorer, ScoreConfig
    from tests.scoring_support import SINTEL
    if not SINTEL.exists():
        pytest.skip("shared Sintel trailer not present")
    featurizer = Featurizer(create_encoders(EncoderSpec()))
    good = decode_clip(str(SINTEL), 20.0, 21.0, DecodeConfig()).frames[:1]  # a picture (noise is none: no tokens)
    media = [good, np.full((1, 224, 224), 128, np.uint8), np.zeros((0, 224, 224, 3), np.uint8)]  # (no colour axis)
    out = featurizer.clips([ClipMedia(frames=f, audio=np.zeros(1600, np.float32)) for f in media])
    vision = featurizer.encoders.vision
    assert out[0].tokens["vision"].shape == (vision.tokens_per_frame, vision.dim) and not out[0].failures
    assert out[0].tokens["scene"].shape == (vision.scene_tokens, vision.dim)  # the scene classifier's, beside
    assert out[1].tokens["vision"].shape[0] == 0 and [f.modality for f in out[1].failures] == ["vision"]
    assert out[1].tokens["scene"].shape[0] == 0
    assert out[2].tokens["vision"].shape[0] == 0 and not out[2].failures  # no frames is not an error

    def clip(i, frames):
        return DecodedClip(film_id="f", spec=ClipSpec(i, i, i + 1.0, "window"), frames=frames,
                           frame_times=np.arange(len(frames), dtype=np.float64), audio=np.zeros(1600, np.float32),
                           film_path="/films/f.mp4")
    scorer = FilmScorer(ScoreConfig(batch_size=3, write_features=True))
    step = ProcessFilm(str(tmp_path), "r", None, scorer)
    film = _Film(job=type("Job", (), {"ref": type("Ref", (), {"path": "/films/f.mp4", "film_id": "f"})(),
                                      "warnings": ()})(), step=step)
    film.batch = [clip(i, f) for i, f in enumerate(media)]
    from model.featurize import SECONDS
    before = dict(SECONDS)
    film.score_batch()
    assert sorted(film.scores) == [0, 1, 2] and len(film.features) == 3  # every clip still scored
    # the process's profile by stage (benchmarks.throughput prints it) counted this batch
    assert all(SECONDS[k] > before.get(k, 0.0) for k in ("vision", "face", "audio", "head"))
    errors = [e for e in film.errors if e.clip_index == 1]
    assert errors and all(not e.fatal and e.stage == "encode" for e in errors)


@pytest.mark.slow
def test_incremental_runs_keyed_by_model_version(tmp_path):
    """Same head: the film is skipped. Another head: it is re-scored with the new model_version."""
    from pipeline.run import run
    from tests.scoring_support import encoder_dims, tiny_film
    film = tiny_film(tmp_path, seconds=6.0)
    heads = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        path = tmp_path / f"head{seed}.pt"
        save_head(path, BVPEC(BVPECConfig(input_dims=encoder_dims(), d_model=16, heads=2, dropout=0.0)).eval(), {})
        heads.append(str(path))
    out = tmp_path / "out"
    argv = ["--input", str(film), "--output", str(out), "--transcribe", "never", "--frames_per_clip", "1"]
    first = run(argv + ["--head", heads[0]], save_main_session=False)
    (clips_file,) = (out / "clips").glob("*.parquet")
    v0 = pq.read_table(clips_file).column("model_version").to_pylist()[0]
    same = run(argv + ["--head", heads[0]], save_main_session=False)
    other = run(argv + ["--head", heads[1]], save_main_session=False)
    v1 = pq.read_table(clips_file).column("model_version").to_pylist()[0]
    assert (first["ok"], same["skipped"], other["ok"]) == (1, 1, 1)
    assert v0 != v1 and v0.startswith("bvpec-") and v1.startswith("bvpec-")
    # --write_features added to a catalogue indexed without it: the film is scored again for its features table,
    # and skipped after that
    with_features = [run(argv + ["--head", heads[1], "--write_features"], save_main_session=False) for _ in range(2)]
    assert (with_features[0]["ok"], with_features[1]["skipped"]) == (1, 1) and list((out / "features").glob("*"))


def test_modalities_option_limits_what_is_encoded_and_fused(tmp_path):
    """--modalities text,face: the ViT and prosody never run, the head sees only text and faces, and the model
    version (hence the skip key) names the choice."""
    from pipeline.run import run
    from tests.scoring_support import tiny_film
    film = tiny_film(tmp_path, seconds=6.0)
    argv = ["--input", str(film), "--transcribe", "never", "--frames_per_clip", "1"]
    some = run(argv + ["--output", str(tmp_path / "some"), "--modalities", "text,face", "--write_features"],
               save_main_session=False)
    rows = pq.read_table(next((tmp_path / "some" / "clips").glob("*.parquet"))).to_pylist()
    assert some["ok"] == 1 and rows and any(r["text"] for r in rows)
    assert all(set(r["modalities_used"]) <= {"text", "face"} and r["gate_vision"] == 0 and r["gate_audio"] == 0
               for r in rows)
    feats = pq.read_table(next((tmp_path / "some" / "features").glob("*.parquet"))).to_pylist()
    assert all(f["vision_len"] == 0 and f["audio_len"] == 0 for f in feats)
    every = run(argv + ["--output", str(tmp_path / "all")], save_main_session=False)
    v_all = pq.read_table(next((tmp_path / "all" / "clips").glob("*.parquet"))).column("model_version")[0].as_py()
    assert rows[0]["model_version"] != v_all and some["config_hash"] != every["config_hash"]
    with pytest.raises(SystemExit, match="--modalities: unknown modalities"):  # stopped at launch
        run(argv + ["--output", str(tmp_path / "bad"), "--modalities", "text,smell"], save_main_session=False)


def test_lines_in_a_language_the_text_path_did_not_learn_are_not_read(tmp_path):
    """A French line (the shipped text path learnt English) is not encoded: its clip is scored from its other
    modalities, keeps its text, and the film gets one non-fatal row saying so. English and unknown lines are read;
    `--text_languages any` reads every line and is a different model version."""
    from transforms.elements import ClipSpec, DecodedClip
    from transforms.film import ProcessFilm, _Film
    from transforms.score import FilmScorer, ScoreConfig
    rng = np.random.default_rng(3)

    def clip(i, text, language):
        return DecodedClip(film_id="f", spec=ClipSpec(i, 2.0 * i, 2.0 * i + 2, "subtitle", text=text,
                                                      text_source="subtitle", language=language),
                           frames=rng.integers(0, 255, (1, 224, 224, 3), dtype=np.uint8),
                           frame_times=np.zeros(1), audio=np.zeros(1600, np.float32), film_path="/films/f.mp4")
    clips = [clip(0, "Je cherche quelqu'un.", "fr"), clip(1, "I'm searching for someone.", "en"),
             clip(2, "I'm searching for someone.", None)]
    scorer = FilmScorer(ScoreConfig(batch_size=4))
    results = scorer.score(clips)
    assert [r.unread_language for r in results] == ["fr", None, None]
    assert results[0].tokens["text"].shape[0] == 0 and "text" not in results[0].scores["modalities_used"]
    assert results[0].scores["evidence_text"] is None and results[0].scores["emotion"]
    assert all(r.tokens["text"].shape[0] > 0 and "text" in r.scores["modalities_used"] for r in results[1:])

    step = ProcessFilm(str(tmp_path), "r", None, scorer)
    job = type("Job", (), {"ref": type("Ref", (), {"path": "/films/f.mp4", "film_id": "f"})(), "warnings": ()})()
    film = _Film(job=job, step=step)
    film.batch = list(clips)
    film.score_batch()
    assert dict(film.unread) == {"fr": 1}

    anything = FilmScorer(ScoreConfig.from_options(type("O", (), {"text_languages": "any"})()))
    assert anything.cfg.text_languages == () and anything.model_version != scorer.model_version
    assert all(r.unread_language is None for r in anything.score(clips[:1]))


def test_a_film_with_french_subtitles_is_scored_without_reading_them(tmp_path):
    """Through pipeline.run: untagged French subtitles are identified, their clips keep the lines and the language,
    none is read, and the errors table says so once."""
    from pipeline.run import run
    from testing.films import write_srt
    from tests.scoring_support import tiny_film
    film = tiny_film(tmp_path, seconds=6.0)
    write_srt(film.with_suffix(".srt"), [(0.3, 2.5, "Qu'est-ce qui t'amène au pays des gardiens ?"),
                                         (3.0, 5.5, "Une quête dangereuse pour une chasseuse solitaire.")])
    out = tmp_path / "out"
    res = run(["--input", str(film), "--output", str(out), "--transcribe", "never", "--frames_per_clip", "1"],
              save_main_session=False)
    rows = pq.read_table(next((out / "clips").glob("*.parquet"))).to_pylist()
    spoken = [r for r in rows if r["text"]]
    assert res["ok"] == 1 and len(spoken) == 2
    assert all(r["language"] == "fr" and "text" not in r["modalities_used"] and r["evidence_text"] is None
               and r["emotion"] for r in spoken)
    errors = pq.read_table(next((out / "errors").rglob("*.parquet"))).to_pylist()
    unread = [e for e in errors if e["error_type"] == "UnreadLanguage"]
    assert len(unread) == 1 and not unread[0]["fatal"] and "2 in 'fr'" in unread[0]["message"]


@pytest.mark.slow
def test_the_demo_scores_its_archive_then_skips_it(tmp_path):
    """The README's first set-up command (scripts/demo.sh -> pipeline.demo) with the shipped models: three films and
    an IMF title scored from their subtitle lines (a sidecar .srt, an embedded track, a rip's PGS pictures read by
    OCR, the package's IMSC1 track files), the broken file one fatal probe row, exit status 0; the second run skips
    every film."""
    import pyarrow.dataset as ds

    from pipeline.demo import DIALOGUE, PACKAGE_LINES, RIP_LINES, main
    assert main(["--output", str(tmp_path)]) == 0
    out = tmp_path / "output"
    clips = ds.dataset(out / "clips", format="parquet").to_table().to_pylist()
    by_film = {r["film_id"].rsplit("-", 1)[0]: [] for r in clips}
    for r in clips:
        by_film[r["film_id"].rsplit("-", 1)[0]].append(r)
    assert set(by_film) == {"reunion", "storm", "rooftop", "nightfall-imf"}
    said = " ".join(r["text"] for r in by_film["reunion"] if r["text"])
    assert said == " ".join(line for _, _, line in DIALOGUE)
    assert [r["text"] for r in by_film["rooftop"] if r["text"]] == [line for _, _, line in RIP_LINES]
    title = [r["text"] for r in by_film["nightfall-imf"] if r["text"]]
    assert title == [line for lines in PACKAGE_LINES for _, _, line in lines]
    assert all(r["text_source"] == "subtitle" for r in clips if r["text"])
    assert all(abs(sum(r[c] for c in PROB_COLUMNS) - 1) < 1e-4 and r["grounded"] is not None for r in clips)
    errors = ds.dataset(out / "errors", format="parquet").to_table().to_pylist()
    assert sorted((e["film_path"].rsplit("/", 1)[1], e["stage"], e["error_type"], e["fatal"]) for e in errors) == [
        ("broken.mp4", "probe", "InvalidDataError", True), ("rooftop.mkv", "subtitles", "PictureSubtitles", False)]
    assert main(["--output", str(tmp_path)]) == 0
    manifest = ds.dataset(out / "manifest", format="parquet").to_table().to_pylist()
    last_run = max(r["run_id"] for r in manifest)
    assert sorted(r["status"] for r in manifest if r["run_id"] == last_run) == ["skipped"] * 5


def test_a_rescore_stopped_part_way_leaves_its_films_pending_in_the_report(tmp_path, head_path, monkeypatch):
    """pipeline.rescore writes its plan (schemas.rescore_plan) before it scores a film, so the report of its output
    names the films a stopped run never reached as `pending`: before 2026-12-07 they were simply not listed, and a
    rescore killed part way read as a smaller catalogue. Run again, the rescore finishes them and nothing is pending."""
    from pipeline import rescore
    from pipeline.report import data as report_data
    from schemas import rescore_plan
    _write_catalogue(tmp_path / "run1", head_path, n_films=3, encoder_version=encoder_version(EncoderSpec(head=head_path)))
    out = tmp_path / "rescored"
    process = rescore.WriteRescoredFilm.process

    def stops_at_film1(self, grouped):  # the worker lost at film1: nothing of it written, the run fails
        if grouped[0] == "film1":
            raise RuntimeError("the worker was lost")
        yield from process(self, grouped)
    monkeypatch.setattr(rescore.WriteRescoredFilm, "process", stops_at_film1)
    with pytest.raises(Exception, match="the worker was lost"):
        _rescore(tmp_path / "run1" / "features", head_path, out, "--run_id", "rs-a")
    plan = pq.read_table(out / rescore_plan.FOLDER / "rs-a.parquet")
    assert plan.schema.equals(rescore_plan.SCHEMA, check_metadata=False)
    assert sorted(plan.column("film_id").to_pylist()) == ["film0", "film1", "film2"]
    data = report_data.load_output(str(out))
    status = {f.film_id: f.status for f in data.films}
    assert set(status) == {"film0", "film1", "film2"} and status["film1"] == "pending"
    assert set(status.values()) <= {"pending", "rescored"} and data.unfinished_run == "rs-a"
    assert data.rescore_runs == ("rs-a",)  # known by its plan, though its run id does not start with "rescore-"

    monkeypatch.setattr(rescore.WriteRescoredFilm, "process", process)
    _rescore(tmp_path / "run1" / "features", head_path, out, "--run_id", "rs-b")
    data = report_data.load_output(str(out))
    assert {f.status for f in data.films} == {"rescored"} and data.unfinished_run is None
    assert data.run_ids[-1] == "rs-b"
