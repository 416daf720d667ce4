"""What pipeline.rescore refuses film by film, and what pipeline.report --explain checks on a rescored output: a film
whose features come from other encoders is refused alone; a film whose run read other languages (which pick the
subtitle source, or the speech transcribed) is refused; a rescored clip records its first run's config hash with that
run's model_version, so --explain accepts the rescoring head and refuses the first run's."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from model.bvpec import BVPEC, BVPECConfig
from model.checkpoints import load_head, model_version, save_head
from model.encoders import EncoderSpec, encoder_version
from model.predict import predict
from schemas import features as features_schema
from schemas import rows_to_table
from schemas.clips import SCHEMA as CLIPS_SCHEMA
from transforms.fuse import features_row, score_columns

DIMS = {"text": 12, "vision": 10, "face": 6, "audio": 5}


def save_small_head(path: Path, seed: int) -> str:
    """A random-weight head with the test widths (no tuned encoder layers: heads share their encoder version)."""
    torch.manual_seed(seed)
    save_head(path, BVPEC(BVPECConfig(input_dims=DIMS, d_model=16, heads=2, dropout=0.0)).eval(), {})
    return str(path)


@pytest.fixture
def head_path(tmp_path) -> str:
    return save_small_head(tmp_path / "head.pt", 0)


def tokens(rng, text: bool) -> dict:
    """One clip's tokens; no text tokens where the run did not read its line."""
    return {m: rng.standard_normal((int(rng.integers(1, 4)) if (m != "text" or text) else 0, d)).astype(np.float32)
            for m, d in DIMS.items()}


def write_film(root: Path, head: str, film_id: str, lines: list[tuple[Optional[str], Optional[str], bool]],
               version: str, encoders: Optional[str] = None, config: str = "c0") -> list[str]:
    """A film's features and clips tables as pipeline.run writes them: one clip per (line, language, read by the run),
    scored by `head` under model_version `version`. Returns the run's labels."""
    rng = np.random.default_rng(len(film_id) + len(lines))
    encoders = encoders or encoder_version(EncoderSpec(head=head))
    toks = [tokens(rng, read) for _, _, read in lines]
    preds = predict(load_head(head)[0], toks)
    feats = [features_row(film_id, f"/films/{film_id}.mp4", i, t, encoders, {}) for i, t in enumerate(toks)]
    clips = [{"film_id": film_id, "film_path": f"/films/{film_id}.mp4", "fingerprint": "fp", "clip_index": i,
              "start_s": 2.0 * i, "end_s": 2.0 * i + 2, "segment_source": "subtitle" if text else "window",
              "text": text, "language": lang, "text_source": "subtitle" if text else "none", "n_frames": 2,
              "has_audio": True, "run_id": "r0", "config_hash": config, **score_columns(p, version, None)}
             for i, ((text, lang, _), p) in enumerate(zip(lines, preds))]
    for sub, rows, schema in (("features", feats, features_schema.SCHEMA), ("clips", clips, CLIPS_SCHEMA)):
        (root / sub).mkdir(parents=True, exist_ok=True)
        pq.write_table(rows_to_table(rows, schema), root / sub / f"{film_id}.parquet")
    return [p.emotion for p in preds]


def run_version(head: str, languages: tuple[str, ...]) -> str:
    """The model_version pipeline.run with this head, every modality and these --text_languages writes."""
    return model_version(head, encoder_version(EncoderSpec(head=head)), None, languages)


def rescore(features: Path, head: str, out: Path, *extra: str) -> dict:
    from pipeline import rescore as rescoring
    return rescoring.run(["--features", str(features), "--head", head, "--output", str(out), "--batch_size", "4",
                          *extra], save_main_session=False)


def error_rows(out: Path) -> list[dict]:
    return sorted((r for f in (out / "errors").rglob("*.parquet") for r in pq.read_table(f).to_pylist()),
                  key=lambda r: r["film_id"])


def labels(out: Path, film_id: str) -> list[str]:
    rows = pq.read_table(out / "clips" / f"{film_id}.parquet").to_pylist()
    return [r["emotion"] for r in sorted(rows, key=lambda r: r["clip_index"])]


FRENCH = ("Je n'arrive pas à croire que tu m'aies fait ça !", "fr")
ENGLISH = ("I can't believe you did that to me!", "en")


def test_rescore_refuses_a_film_whose_run_read_lines_it_does_not(tmp_path, head_path):
    """A run with --text_languages any took a film's French sidecar (film.srt) before its English one; rescored with
    'en' it was scored from the French lines without their text, where a run with 'en' reads the English sidecar:
    another label under the 'en' model_version. Now that film is refused (TextLanguagesDiffer, run pipeline.run for
    it); a film of the same run whose lines are all English (the rescore reads a part of what the run read, and every
    line of the film) is rescored, and a rescore with 'any' gives the run's labels for both."""
    any_run = run_version(head_path, ())
    write_film(tmp_path / "run", head_path, "french", [(*FRENCH, True), (None, None, False)], any_run)
    english = write_film(tmp_path / "run", head_path, "english", [(*ENGLISH, True), (*ENGLISH, True)], any_run)
    rescore(tmp_path / "run" / "features", head_path, tmp_path / "en", "--text_languages", "en")
    assert sorted(f.stem for f in (tmp_path / "en" / "clips").glob("*.parquet")) == ["english"]
    assert labels(tmp_path / "en", "english") == english
    [error] = error_rows(tmp_path / "en")
    assert (error["film_id"], error["stage"], error["error_type"], error["fatal"]) == (
        "french", "rescore", "TextLanguagesDiffer", True)
    assert "reads none of them" in error["message"] and error["message"].endswith("run pipeline.run for it")
    rescore(tmp_path / "run" / "features", head_path, tmp_path / "any", "--text_languages", "any")
    assert sorted(f.stem for f in (tmp_path / "any" / "clips").glob("*.parquet")) == ["english", "french"]
    assert not (tmp_path / "any" / "errors").exists()


def test_rescore_refuses_languages_the_run_did_not_read(tmp_path, head_path):
    """A run with 'en' read a film's English sidecar and passed over a French one before it; rescored with 'any' it
    was scored as if 'any' read the English lines, where a run with 'any' takes the French sidecar. The run's
    languages are told by recomputing its model_version: the film is refused, naming both; rescored with 'en' it
    gives the run's labels. A rescore without text (an ablation) scores the run's clips without their lines."""
    english = write_film(tmp_path / "run", head_path, "film", [(*ENGLISH, True), (None, None, False)],
                         run_version(head_path, ("en",)))
    features = tmp_path / "run" / "features"
    rescore(features, head_path, tmp_path / "any", "--text_languages", "any")
    assert not (tmp_path / "any" / "clips").exists()
    [error] = error_rows(tmp_path / "any")
    assert error["error_type"] == "TextLanguagesDiffer"
    assert "read lines in en" in error["message"] and "this rescore reads any" in error["message"]
    rescore(features, head_path, tmp_path / "notext", "--modalities", "vision,face,audio")
    assert (tmp_path / "notext" / "clips" / "film.parquet").is_file() and not error_rows(tmp_path / "notext")
    rescore(features, head_path, tmp_path / "en")
    assert labels(tmp_path / "en", "film") == english and not (tmp_path / "en" / "errors").exists()


def test_rescore_refuses_only_the_film_from_other_encoders(tmp_path, head_path):
    """One film's features from other encoders (a film that failed after the head changed keeps its older
    features) stopped the whole catalogue's rescore with a message naming no film. Now that film is refused, naming
    both versions, and the others are rescored; the rescore stops at launch only when no film's features are the
    head's, and --no_encoder_check over several versions names a film of each."""
    want = {f: write_film(tmp_path / "run", head_path, f, [(None, None, False)] * 3, "old") for f in ("a", "b")}
    write_film(tmp_path / "run", head_path, "c", [(None, None, False)] * 3, "old", encoders="older-encoders")
    res = rescore(tmp_path / "run" / "features", head_path, tmp_path / "re")
    assert sorted(f.stem for f in (tmp_path / "re" / "clips").glob("*.parquet")) == ["a", "b"]
    assert all(labels(tmp_path / "re", f) == want[f] for f in want)
    [error] = error_rows(tmp_path / "re")
    assert (error["film_id"], error["error_type"], error["fatal"]) == ("c", "EncodersDiffer", True)
    head_encoders = encoder_version(EncoderSpec(head=head_path))
    assert "older-encoders" in error["message"] and head_encoders in error["message"]
    assert res["model_version"] == model_version(head_path, head_encoders, None, ("en",))
    with pytest.raises(SystemExit, match="--no_encoder_check .* 2 encoder versions .*older-encoders: c"):
        rescore(tmp_path / "run" / "features", head_path, tmp_path / "unchecked", "--no_encoder_check")
    for f in ("a", "b"):
        (tmp_path / "run" / "features" / f"{f}.parquet").unlink()
        (tmp_path / "run" / "clips" / f"{f}.parquet").unlink()
    with pytest.raises(SystemExit, match="older-encoders.*no film's features are this head's"):
        rescore(tmp_path / "run" / "features", head_path, tmp_path / "none")
    assert not (tmp_path / "none").exists()


def test_explain_accepts_the_rescoring_head_and_refuses_the_first(tmp_path, head_path):
    """A rescored clip kept its first run's config hash: --explain (no features table in the rescore output, so the
    clip is encoded again) refused the rescoring head, which no option could fix, and accepted the first run's,
    drawing its attention beside the rescoring head's label. The rescored clip now records '<hash>@<model_version of
    the first run>': the media options are checked against the first, the head against the clip's model_version."""
    from pipeline.options import config_hash
    from pipeline.report import explain as explainer
    from pipeline.report.build import ReportInputError
    new_head = save_small_head(tmp_path / "new.pt", 1)
    first, again = explainer.run_settings(head=head_path), explainer.run_settings(head=new_head)
    first_version = run_version(head_path, ("en",))
    first_hash = config_hash(first, first_version)
    write_film(tmp_path / "run", head_path, "film", [(None, None, False)] * 2, first_version, config=first_hash)
    rescore(tmp_path / "run" / "features", new_head, tmp_path / "re")
    row = pq.read_table(tmp_path / "re" / "clips" / "film.parquet").to_pylist()[0]
    assert row["config_hash"] == f"{first_hash}@{first_version}"
    assert explainer.check_run_settings(row, again) == first_hash
    with pytest.raises(ReportInputError, match=f"labelled by model_version {row['model_version']}.*gives "
                                               f"{first_version}: pass the --head that scored it"):
        explainer.check_run_settings(row, first)
    other = explainer.run_settings({"frames_per_clip": 2}, head=new_head)  # the media options are still checked
    with pytest.raises(ReportInputError, match="config hash"):
        explainer.check_run_settings(row, other)
    # a first run under 'any' rescored with the default 'en' (the rescore accepts a narrower set): the rescoring
    # head with the rescore's options is accepted (the first hash is tried with 'any' and the default)
    wide = explainer.run_settings({"text_languages": "any"}, head=head_path)
    narrowed = {**row, "config_hash": f"{config_hash(wide, first_version)}@{first_version}"}
    assert explainer.check_run_settings(narrowed, again) == config_hash(again, first_version)
    # rescored again (its clips read from the rescore's output): the first run's pair is kept
    rescore(tmp_path / "run" / "features", head_path, tmp_path / "back", "--clips", str(tmp_path / "re" / "clips"))
    back = pq.read_table(tmp_path / "back" / "clips" / "film.parquet").to_pylist()[0]
    assert back["config_hash"] == f"{first_hash}@{first_version}"
    assert explainer.check_run_settings(back, first) == first_hash


def test_explain_from_features_says_when_the_head_is_not_the_clips(tmp_path, head_path):
    """With a features table the tokens were drawn through whatever --head was given, never compared with the clip's
    model_version. Now the figure says so, naming both versions (not refused: a clip labelled under an older label
    rule or encoder version matches no head, and its run's tokens still explain the head given); the run's head
    explains it without a word."""
    from pipeline.report import explain as explainer
    new_head = save_small_head(tmp_path / "new.pt", 1)
    version = run_version(head_path, ("en",))
    write_film(tmp_path / "run", head_path, "film", [(None, None, False)] * 2, version)
    res = explainer.explain_clip(str(tmp_path / "run"), "film", 1, head=new_head)
    assert f"labelled by model_version {version}, but --head {new_head}" in res["source"]
    assert "may not be the one that labelled the clip" in res["source"]
    res = explainer.explain_clip(str(tmp_path / "run"), "film", 1, head=head_path)
    assert res["source"] == res["source"].split(" The figure explains")[0]
    assert res["source"].startswith("Tokens read from the features table")


def test_a_rescore_run_again_under_its_run_id_keeps_no_stale_rows(tmp_path, head_path):
    """Found in review (2026-12-07): a film refused by a first try (a cut-short features file) and rescored by a
    second under the same --run_id kept the first try's fatal row; a film scored by the first and refused by the
    second kept the first's clips, and read as rescored. A features folder none of whose files reads said "no
    features table" and wrote no row."""
    run = tmp_path / "run"
    write_film(run, head_path, "a", [ENGLISH + (True,)] * 2, run_version(head_path, ("en",)))
    write_film(run, head_path, "b", [ENGLISH + (True,)] * 2, run_version(head_path, ("en",)))
    good = (run / "features" / "a.parquet").read_bytes()
    (run / "features" / "a.parquet").write_bytes(good[:len(good) // 2])
    out = tmp_path / "out"
    rescore(run / "features", head_path, out, "--run_id", "same")
    assert [(r["film_id"], r["fatal"]) for r in error_rows(out)] == [("a", True)]
    (run / "features" / "a.parquet").write_bytes(good)
    rescore(run / "features", head_path, out, "--run_id", "same")
    assert error_rows(out) == [] and len(labels(out, "a")) == 2
    b = (run / "features" / "b.parquet").read_bytes()
    (run / "features" / "b.parquet").write_bytes(b[:len(b) // 2])
    rescore(run / "features", head_path, out, "--run_id", "same")
    assert [(r["film_id"], r["fatal"]) for r in error_rows(out)] == [("b", True)]
    assert not (out / "clips" / "b.parquet").exists() and (out / "clips" / "a.parquet").exists()
    (run / "features" / "a.parquet").write_bytes(good[:len(good) // 2])
    with pytest.raises(SystemExit, match=r"none of the 2 features file\(s\) .* can be read"):
        rescore(run / "features", head_path, tmp_path / "out2", "--run_id", "bad")
    assert [(r["film_id"], r["fatal"]) for r in error_rows(tmp_path / "out2")] == [("a", True), ("b", True)]


def test_tokens_stored_before_the_head_read_only_pictures_rescore_and_explain_as_a_run_reads_them(tmp_path):
    """A features table written before 2026-12-07 holds every view, a grey card's too. Which views the head reads is
    a label rule (LABEL_RULE 6), not an encoder's version, so pipeline.rescore takes such a table (it refused every
    one: 'features computed by encoders ...'), reads it through the picture gate and writes today's model_version
    and today's scores; --explain reads it so too, and shows the card as not read (found in review)."""
    from model.encoders import create_encoders
    from model.featurize import Featurizer, distinct_views
    from pipeline import rescore
    from pipeline.report import explain as explainer
    from pipeline.run import run
    from tests.scoring_support import SINTEL
    from testing.films import encode_film
    from transforms.decode import DecodeConfig, decode_clip
    if not SINTEL.exists():
        pytest.skip("shared Sintel trailer not present")
    picture = decode_clip(str(SINTEL), 20.0, 21.0, DecodeConfig(face_width=320)).face_frames[0]
    film = encode_film(tmp_path / "card_then_scene.mp4", paint=lambda i, _: np.full_like(picture, 128) if i < 20
                       else picture, frame_times=[i / 10 for i in range(40)], fps=10, size=picture.shape[1::-1],
                       video_codec="libx264")
    out = tmp_path / "out"
    run(["--input", str(film), "--output", str(out), "--segment", "window", "--write_features",
         "--transcribe", "never"], save_main_session=False)
    [clips_file], [features_file] = (out / "clips").glob("*.parquet"), (out / "features").glob("*.parquet")
    [clip], [stored] = pq.read_table(clips_file).to_pylist(), pq.read_table(features_file).to_pylist()
    featurizer = Featurizer(create_encoders(EncoderSpec()))
    frames = decode_clip(str(film), clip["start_s"], clip["end_s"], DecodeConfig()).frames
    views = np.asarray(frames)[distinct_views(frames)]
    assert featurizer.picture_views(views).tolist() == [False, True]  # the card, then the scene
    vision, scene = featurizer.vision_tokens([views])[0]  # every view, as the table held them before
    assert stored["vision_len"] == len(vision) // 2
    old = {**stored, **{k: v for k, v in features_row(stored["film_id"], stored["film_path"], 0,
                                                      {"vision": vision, "scene": scene}, stored["encoder_version"],
                                                      {}).items() if k.startswith(("vision_", "scene_"))}}
    pq.write_table(rows_to_table([old], features_schema.SCHEMA), features_file)

    from model.encoders import versions
    with pytest.MonkeyPatch.context() as mp:  # what the head reads is no encoder's version: the table stays valid
        mp.setattr(versions, "GATE_READERS", "scene")
        assert encoder_version(EncoderSpec()) == stored["encoder_version"]
    res = rescore.run(["--features", str(out / "features"), "--output", str(tmp_path / "re")], save_main_session=False)
    [again] = pq.read_table(tmp_path / "re" / "clips" / clips_file.name).to_pylist()
    assert res["model_version"] == clip["model_version"] == again["model_version"]
    assert again["emotion"] == clip["emotion"] and abs(again["confidence"] - clip["confidence"]) < 1e-5
    explained = explainer.explain_clip(str(out), stored["film_id"], 0)
    assert len(explained["tokens"]["vision"]) == len(vision) // 2
    assert [f["label"].split(" @")[0] for f in explained["frames"]] == ["not read: no picture", "f0"]
