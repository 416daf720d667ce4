"""One path from a clip to its tokens: the pipeline's scorer and training on a labelled clip give the same tokens
for the same clip of a real film; encoder versions come from the weight files without building a model."""
from __future__ import annotations

import numpy as np
import pytest

from model.encoders import Encoders, EncoderSpec, create_encoders, encoder_versions
from tests.scoring_support import SINTEL
from training.datasets import Example
from training.features import compute_features
from transforms.decode import DecodeConfig, decode_film
from transforms.discover import film_id_for
from transforms.elements import DecodedClip, FilmJob, FilmRef
from transforms.probe import probe_film
from transforms.score import FilmScorer, ScoreConfig
from transforms.subtitles import load_cues

needs_sintel = pytest.mark.skipif(not SINTEL.exists(), reason="shared Sintel trailer not present")


@needs_sintel
def test_serving_and_training_give_identical_tokens_for_the_same_clip():
    ref = FilmRef(str(SINTEL), SINTEL.stat().st_size, film_id_for(str(SINTEL)), "fp")
    info = probe_film(str(SINTEL))
    cues, _, _ = load_cues(ref, info)
    job = FilmJob(ref=ref, info=info, cues=tuple(cues), needs_asr=False, config_hash="c")
    clips = [c for c in decode_film(job, DecodeConfig()) if isinstance(c, DecodedClip)]
    clip = next(c for c in clips if c.spec.text and c.spec.context)  # a line with dialogue context
    served = FilmScorer(ScoreConfig()).score([clip])[0]
    assert not served.failures and served.scores is not None

    # Training on the same clip as a labelled example (a studio's clip manifest row): decoded on its own.
    example = Example(label=0, text=clip.spec.text, context=clip.spec.context, video=str(SINTEL),
                      start_s=clip.spec.start_s, end_s=clip.spec.end_s, source="clips")
    trained = compute_features([example], create_encoders(EncoderSpec()))[0]
    for m, tokens in served.tokens.items():  # the feature cache keeps float16: identical at that precision
        assert trained[m].dtype == np.float16 and np.array_equal(trained[m], tokens.astype(np.float16)), m
    # One frame per second of clip, and one ViT pass per distinct view of those frames.
    from model.featurize import distinct_views, frames_for
    assert len(clip.frames) == frames_for(clip.spec.start_s, clip.spec.end_s, 4) >= 1
    assert served.tokens["vision"].shape[0] == 5 * len(distinct_views(clip.frames))
    assert served.tokens["text"].shape[0] > 2


def test_frames_follow_clip_length_and_repeated_views_share_one_pass():
    from model.featurize import clip_sample_times, distinct_views, frames_for
    assert [frames_for(0, d, 4) for d in (0.4, 1.0, 2.0, 3.2, 8.0)] == [1, 1, 2, 3, 4]
    assert frames_for(0, 2.0, 4, every_s=0) == 4  # 0: always the maximum
    assert clip_sample_times(10.0, 12.0, 4) == [10.5, 11.5]
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 255, (2, 224, 224, 3), dtype=np.uint8)
    still = np.stack([a, a, a, a])
    assert distinct_views(still) == [0]
    assert distinct_views(np.stack([a, a, b, b])) == [0, 2]
    noisy = np.clip(still.astype(int) + rng.integers(-1, 2, still.shape), 0, 255).astype(np.uint8)
    assert distinct_views(noisy) == [0]  # sensor noise is not a new view


@needs_sintel
def test_a_still_shown_for_four_frames_gives_the_tokens_of_one():
    """A still shown for 4 frames gives the tokens of the still as a one-frame clip: what training on labelled
    photos and stills (transforms.decode.still_clip) sees. (A frame of a real film: a frame of noise is no picture,
    and gives the head no tokens at all: Featurizer.pictures_only.)"""
    from model.featurize import ClipMedia, Featurizer
    from transforms.decode import decode_clip
    frame = decode_clip(str(SINTEL), 20.0, 21.0, DecodeConfig()).frames[0]
    still = np.stack([frame] * 4)
    featurizer = Featurizer(create_encoders(EncoderSpec()), modalities=("vision",))
    four = featurizer.clip(ClipMedia(frames=still, audio=np.zeros(0, np.float32))).tokens["vision"]
    one = featurizer.clip(ClipMedia(frames=still[:1], audio=np.zeros(0, np.float32))).tokens["vision"]
    assert np.array_equal(four, one) and four.shape == (5, 384)


def test_encoder_versions_name_the_heads_tuned_weights_without_building_models():
    from model.encoders import Encoders
    spec = EncoderSpec()
    versions = encoder_versions(spec)
    assert "+ft" in versions["text"] and "+ft" in versions["face"]  # the shipped head carries tuned weights
    untuned = encoder_versions(EncoderSpec(tuned=False))
    assert "+ft" not in untuned["text"] and untuned["vision"] == versions["vision"]
    lazy = Encoders(spec)
    assert lazy.versions == versions and not any(lazy.loaded(m) for m in ("text", "vision", "face_encoder"))
    assert create_encoders(spec) is create_encoders(spec)  # one set per spec per process
    assert create_encoders(spec).text.version == versions["text"]  # the built encoder agrees with the files


def test_head_digests_are_kept_on_disk_and_agree_with_the_heads_weights(tmp_path, monkeypatch):
    """The launcher names the tuned encoders from a small file instead of loading the head with torch; the file
    holds the digests of the weights the head carries, and a damaged one is recomputed."""
    from model.checkpoints import DEFAULT_HEAD, load_head_meta
    from model.encoders._cache import state_digest
    from model.encoders.versions import head_digests
    monkeypatch.setenv("FILM_EMOTION_CACHE", str(tmp_path))
    meta = load_head_meta(DEFAULT_HEAD)
    expected = {"text": state_digest(meta["text_encoder_overrides"]), "face": state_digest(meta["face_encoder_state"]),
                "speech": "", "scene": "", "scene_gate": ""}  # the shipped head carries no classifiers: model/weights'
    # are read
    assert head_digests(None) == expected
    (memo,) = (tmp_path / "head-digests").glob("*.json")
    assert head_digests(None) == expected  # read back from the file
    memo.write_text("{not json")
    assert head_digests(None) == expected
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("FILM_EMOTION_CACHE", str(tmp_path / "a-file" / "cache"))  # no cache folder can be made
    assert head_digests(None) == expected
    assert Encoders(EncoderSpec(), states=(meta["text_encoder_overrides"], meta["face_encoder_state"])).versions \
        == encoder_versions(EncoderSpec())  # digests from the file name the encoders as the weights themselves do


def test_evidence_columns_say_which_modalities_back_the_label():
    from transforms.fuse import GROUNDED_SUPPORT, evidence_columns
    face = np.array([0.05, 0.05, 0.6, 0.1, 0.1, 0.05, 0.05])  # fear
    speech = np.array([0.3, 0.1, 0.25, 0.1, 0.1, 0.1, 0.05])  # anger
    row = evidence_columns({"face": face, "speech": speech}, emotion_index=2)
    assert row["evidence_text"] is None and row["evidence_scene"] is None
    assert row["evidence_face"] == pytest.approx(face.tolist()) and row["evidence"] == ["face"]
    assert row["support"] == pytest.approx(0.6) and row["grounded"] and GROUNDED_SUPPORT <= 0.6
    weak = evidence_columns({"speech": speech}, emotion_index=3)  # joy: nothing backs it
    assert weak["evidence"] == [] and weak["support"] == pytest.approx(0.1) and not weak["grounded"]
    assert not evidence_columns({}, emotion_index=0)["grounded"]  # no input at all: a guess
    # where a face was found the scene classifier does not back a label (the label rule leaves it out too): its fear
    # 0.70 on a face-filled frame grounded a clip the head had labelled fear; its column is still written
    scene = np.array([0.05, 0.05, 0.7, 0.05, 0.05, 0.05, 0.05])
    shy = np.array([0.1, 0.05, 0.1, 0.3, 0.1, 0.05, 0.3])  # a face: joy 0.30, surprise 0.30
    row = evidence_columns({"face": shy, "scene": scene}, emotion_index=2)
    assert row["evidence_scene"] == pytest.approx(scene.tolist())
    assert not row["grounded"] and row["support"] == pytest.approx(0.1) and row["evidence"] == []
    alone = evidence_columns({"scene": scene}, emotion_index=2)  # no face: the scene's word counts
    assert alone["grounded"] and alone["evidence"] == ["scene"]


def test_evidence_columns_carry_the_heads_branch_temperatures():
    """The clips table's evidence (and so support and the grounded flag) is each classifier's probabilities under
    the head's temperature for that branch, the same ones that label a lone modality's clip."""
    from model.bvpec import BVPEC, BVPECConfig
    from model.predict import recalibrated
    from transforms.fuse import score_tokens
    model = BVPEC(BVPECConfig(input_dims={"text": 8, "vision": 6, "face": 7, "audio": 7}, d_model=16, heads=2)).eval()
    speech = np.array([0.05, 0.05, 0.45, 0.15, 0.1, 0.1, 0.1])  # fear, 0.45: grounded at T = 1
    tokens = [{"audio": np.log(speech)[None].astype(np.float32)}]
    model.branch_temperatures = {}
    plain = score_tokens(model, tokens, "v", evidence=[{"speech": speech}])[0]
    assert plain["evidence_speech"] == pytest.approx(speech.tolist()) and plain["grounded"]
    model.branch_temperatures = {"speech": 1.5}
    soft = score_tokens(model, tokens, "v", evidence=[{"speech": speech}])[0]
    expected = recalibrated(speech, 1.5)
    assert soft["evidence_speech"] == pytest.approx(expected.tolist()) and expected[2] < 0.4
    assert soft["emotion"] == "fear" and soft["confidence"] == pytest.approx(expected[2])  # labelled once, not twice
    assert soft["support"] == pytest.approx(expected[2]) and not soft["grounded"]


def test_speech_out_of_fold_never_predicts_a_speaker_it_trained_on(monkeypatch):
    """The speech trainer's out-of-fold logits: speakers dealt into folds whole, each fold predicted by heads
    trained without it; pipeline.calibrate reads them as speech-branch rows and refuses other weights' logits."""
    import torch

    from training import speech_classifier as sc
    from training.calibration import speech_out_of_fold
    folds = sc.speaker_folds(["b", "a", "c", "a", "b", "d", "e"], 3)
    assert folds.tolist() == [1, 0, 2, 0, 1, 0, 1]  # sorted speakers a..e round-robin into 3 folds
    assert sc.speaker_folds(["a", "b"], 8).max() == 1  # never more folds than speakers
    seen = []

    def train_head(xs, ys, cfg):  # records what each fold trained on
        seen.append(np.concatenate(xs)[:, 0].tolist())
        return torch.nn.Linear(2, 7)

    monkeypatch.setattr(sc, "train_head", train_head)
    monkeypatch.setattr(sc, "ensemble", lambda heads: heads[0])
    monkeypatch.setattr(sc, "raw_logits", lambda head, x: np.tile(x[:, :1], (1, 7)))
    x = np.array([[i, 0.0] for i in range(6)], np.float32)
    feats = {(s, "train"): (x + 100 * k, np.arange(6) % 7) for k, s in enumerate(sc.TRAIN_SETS)}
    feats.update({(s, "train" + sc.BEDDED): (x + 100 * k + 50, np.arange(6) % 7) for k, s in enumerate(sc.TRAIN_SETS)})
    speakers = {"ravdess": ["s1", "s1", "s2", "s2", "s3", "s3"]}
    out = sc.out_of_fold(feats, speakers, sc.TrainConfig(), members=1, folds=3, temperature=2.0,
                         sets=("ravdess",), log=None)
    logits, labels, spk = out["ravdess"]
    assert logits[:, 0].tolist() == [i / 2.0 for i in range(6)] and spk.tolist() == speakers["ravdess"]
    for k, trained in enumerate(seen):  # fold k holds speaker s{k+1}: rows 2k, 2k+1 never in its training,
        # nor their copies with a bed under them (+50); the other sets' clips and copies are
        assert {2 * k, 2 * k + 1, 2 * k + 50, 2 * k + 51}.isdisjoint(trained)
        assert {100.0, 150.0, 200.0, 250.0} <= set(trained)
    import tempfile
    from model.encoders._cache import file_digest
    from model.encoders.speech import DEFAULT_WEIGHTS
    with tempfile.TemporaryDirectory() as d:
        np.savez(f"{d}/oof.npz", logits=logits, labels=labels, speakers=spk, sets=np.array(["ravdess"] * 6),
                 weights_digest=np.array(file_digest(DEFAULT_WEIGHTS)))
        rows, patterns, y = speech_out_of_fold(f"{d}/oof.npz")
        assert patterns == ["branch:speech"] * 6 and y.tolist() == labels.tolist()
        assert np.allclose(np.exp(rows).sum(1), 1.0)  # log-probabilities, as the branch rows calibration fits
        np.savez(f"{d}/stale.npz", logits=logits, labels=labels, speakers=spk, sets=np.array(["ravdess"] * 6),
                 weights_digest=np.array("0" * 64))
        with pytest.raises(ValueError, match="other speech weights"):
            speech_out_of_fold(f"{d}/stale.npz")
        # a file with TESS too (--oof_sets ravdess,emodb,tess): the calibration keeps the sets with dev speakers
        np.savez(f"{d}/all.npz", logits=np.concatenate([logits, logits[:2]]), labels=np.concatenate([labels, labels[:2]]),
                 speakers=np.concatenate([spk, spk[:2]]), sets=np.array(["ravdess"] * 6 + ["tess"] * 2),
                 weights_digest=np.array(file_digest(DEFAULT_WEIGHTS)))
        assert len(speech_out_of_fold(f"{d}/all.npz")[0]) == 6
        read = sc.read_oof(f"{d}/all.npz")
        assert list(read) == ["ravdess", "tess"] and read["tess"][0].shape == (2, 7)


def test_the_head_trains_on_out_of_fold_speech_tokens():
    """pipeline.train --speech_oof: a speech set's train clips get the classifier's out-of-fold tokens instead of its
    own (right on every clip it trained on); clips the gate kept no voice from, and other sets, are left alone."""
    from training.loop import LabelledSet, with_out_of_fold_speech
    from training.datasets import DataError, Example
    own = np.full((1, 7), 9.0, np.float16)
    items = [{"audio": own}, {}, {"audio": own}]  # the middle clip has no speech token
    s = LabelledSet("audio", items, [Example(label=k) for k in (0, 3, 5)])
    oof = {"ravdess": (np.arange(21, dtype=np.float32).reshape(3, 7), np.array([0, 3, 5]))}
    out = with_out_of_fold_speech(s, "audio:/data/audio/ravdess/train.parquet", oof)
    assert out.items[0]["audio"].tolist() == [list(range(7))] and out.items[0]["audio"].dtype == np.float16
    assert "audio" not in out.items[1] and out.items[2]["audio"].tolist() == [list(range(14, 21))]
    assert s.items[0]["audio"] is own and out.labels.tolist() == [0, 3, 5]  # the cached items are not changed
    for other in ("audio:/data/audio/ravdess/dev.parquet", "audio:/data/audio/emodb/train.parquet",
                  "audio:/data/audio/ravdess/train.parquet@2", "faces:/data/audio/ravdess/train.parquet"):
        assert with_out_of_fold_speech(s, other, oof) is s
    with pytest.raises(DataError, match="same number of rows, other labels"):
        with_out_of_fold_speech(s, "audio:/data/audio/ravdess/train.parquet",
                                {"ravdess": (oof["ravdess"][0], np.array([0, 3, 4]))})


def test_train_refuses_out_of_fold_tokens_of_another_version_of_a_set_before_encoding(tmp_path, monkeypatch):
    """A --speech_oof file written from another version of a train file (other row count) is refused in one line
    before any encoder loads (before 2026-12-07: a traceback once every set had been encoded)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline import train
    path = tmp_path / "ravdess" / "train.parquet"
    path.parent.mkdir()
    pq.write_table(pa.table({"label": ["angry"] * 4}), path)
    oof = {"ravdess": (np.zeros((3, 7), np.float32), np.zeros(3, np.int64))}
    monkeypatch.setattr(train, "read_oof", lambda *args: oof)
    monkeypatch.setattr(train, "specs_overlap", lambda *args: pytest.fail("reached the overlap check"))
    with pytest.raises(SystemExit, match=r"^pipeline.train: --speech_oof: its ravdess logits \(3 rows\) are not "
                       r"those of --data audio:.*train.parquet \(4 rows\): write them again"):
        train.main(["--data", f"audio:{path}", "--speech_oof", str(tmp_path / "oof.npz"), "--out",
                    str(tmp_path / "h.pt")])


def test_each_modality_gives_its_own_calibrated_evidence():
    # Real encoders on a real GRID talking-face clip: the face, scene and speech classifiers each give a
    # distribution; music/silence give no speech token (so no speech evidence).
    from model.featurize import ClipMedia, Featurizer, distinct_views, has_speech
    from transforms.decode import decode_clip
    grid = SINTEL.parents[1] / "grid" / "bbaf2n.mpg"
    if not grid.exists():
        pytest.skip("shared GRID clips not present")
    featurizer = Featurizer(create_encoders(EncoderSpec()))
    clip = decode_clip(str(grid), 0.2, 2.8)
    tokens = featurizer.clip(ClipMedia.of(clip)).tokens
    views = distinct_views(clip.frames)  # a talking head before a fixed camera: few distinct views
    assert tokens["face"].shape[0] == len(views) >= 1 and tokens["audio"].shape == (1, 7)  # a face each; speech
    ev = featurizer.evidence(tokens)
    assert set(ev) == {"face", "scene", "speech"}
    assert all(p.shape == (7,) and abs(float(p.sum()) - 1) < 1e-4 for p in ev.values())
    rng = np.random.default_rng(0)
    assert not has_speech(np.zeros(32000, np.float32)) and not has_speech(rng.normal(0, 0.1, 32000).astype(np.float32))
    assert featurizer.audio_tokens(np.zeros(32000, np.float32)).shape == (0, 7)


def test_score_music_gives_no_speech_evidence_but_a_spoken_line_does():
    # The Sintel trailer's strings between its lines are periodic enough to pass the voicing test, and the
    # speech classifier read them as sad speech at 0.85-0.99; Silero VAD hears no voice there (no speech token,
    # so no speech evidence). Its subtitled lines still get one.
    from model.asr import vad_speech_seconds
    from model.featurize import has_speech
    from transforms.decode import decode_audio
    if not SINTEL.exists():
        pytest.skip("shared Sintel trailer not present")
    wave = decode_audio(str(SINTEL))

    def span(a: float, b: float) -> np.ndarray:
        return wave[int(a * 16000):int(b * 16000)]

    for a, b in [(19.9, 24.0), (24.0, 28.1), (38.7, 41.9), (43.8, 48.0)]:  # music, no line
        assert vad_speech_seconds(span(a, b)) < 0.25 and not has_speech(span(a, b)), (a, b)
    for a, b in [(11.85, 14.23), (18.09, 19.87), (36.27, 38.73), (41.85, 43.81)]:  # the subtitled lines
        assert vad_speech_seconds(span(a, b)) >= 0.75 and has_speech(span(a, b)), (a, b)
    # A shot that opens on the last 0.3 s of a line, then score: before 2026-12-05 (a 0.25 s gate) it got speech
    # evidence, sadness 0.99, and a grounded label from it (benchmarks/short_speech.py: such fragments mislead)
    assert 0.25 <= vad_speech_seconds(span(14.0, 16.08)) < 0.75 and not has_speech(span(14.0, 16.08))
    assert vad_speech_seconds(np.zeros(0, np.float32)) == 0.0


def test_load_builds_and_warms_the_transformers_without_changing_tokens():
    """A worker's load builds the deferred text model and runs both transformers once, so a run's first batch
    (and the benchmarks' model time) holds no one-time cost; the tokens are those of an encoder never warmed."""
    from model.featurize import ClipMedia, Featurizer
    spec = EncoderSpec(text_runtime="torch", vision_runtime="torch")
    warmed = Featurizer(create_encoders(spec), modalities=("text", "vision")).load()
    assert warmed.encoders.text._built is not None and warmed.encoders.vision._built is not None
    cold = Featurizer(Encoders(spec), modalities=("text", "vision"))
    assert cold.encoders.text._built is None  # a local text model is built on first use otherwise
    frames = np.random.default_rng(1).integers(0, 255, (2, 224, 224, 3), dtype=np.uint8)
    clip = ClipMedia(frames=frames, audio=np.zeros(0, np.float32), text="I can't believe you did that.")
    a, b = warmed.clip(clip).tokens, cold.clip(clip).tokens
    assert all(np.array_equal(a[m], b[m]) for m in ("text", "vision"))


def test_speed_runs_take_random_weights_and_the_benchmarks_model_levers(tmp_path):
    """benchmarks.random_weights writes the shipped architectures with random weights (the GPU speed run's
    encoders: the weight packages cannot travel to that machine); the throughput benchmark hands --modalities,
    --vision_model and --text_model to the pipeline's own scorer."""
    import argparse

    from benchmarks import random_weights, throughput
    from benchmarks._bench_work import Models
    from model.featurize import ClipMedia
    random_weights.main([str(tmp_path)])
    vit, text = str(tmp_path / "vit.safetensors"), str(tmp_path / "text")
    args = argparse.Namespace(device="cpu", batch_size=4, torch_threads=1, head=None, precision="fp32",
                              vision_runtime=None, text_runtime=None, frame_every_s=None, decode_deblock=False,
                              modalities="text,vision", vision_model=vit, text_model=text)
    assert throughput.lever_args(args) == ["--modalities", "text,vision", "--vision_model", vit, "--text_model", text]
    scorer = Models(args, 4).scorer
    assert (scorer.cfg.modalities, scorer.cfg.vision_model, scorer.cfg.text_model) == (("text", "vision"), vit, text)
    frames = np.random.default_rng(2).integers(0, 255, (1, 224, 224, 3), dtype=np.uint8)
    tokens = scorer._featurizer.clip(ClipMedia(frames=frames, audio=np.zeros(0, np.float32), text="Run!")).tokens
    assert tokens["vision"].shape == (5, 384) and tokens["text"].shape[1] == 384


def test_a_whole_line_in_a_long_clip_reaches_the_speech_classifier(tmp_path):
    """The voicing test was a share of the clip's frames, so the same whole line (VAD hears 1.3-1.5 s of it) passed in
    a 2.5 s clip and failed in a 6 or 8 s one (a shot, a long cue): no speech evidence, without a word (before
    2026-12-07: 5 of 40 RAVDESS dev lines at 6 s, 0 at 8 s). Enough voicing in all now passes too; a long stretch of
    the trailer's score still gets no speech token."""
    import pyarrow.parquet as pq

    from model.featurize import has_speech
    from transforms.decode import decode_audio
    dev = SINTEL.parents[2] / "audio" / "ravdess" / "dev.parquet"
    if not dev.exists() or not SINTEL.exists():
        pytest.skip("shared RAVDESS dev set or Sintel trailer not present")
    rng = np.random.default_rng(0)
    for i, row in enumerate(pq.read_table(dev, columns=["audio"]).slice(0, 3).to_pylist()):
        (tmp_path / f"{i}.ogg").write_bytes(row["audio"])
        line = decode_audio(str(tmp_path / f"{i}.ogg"))
        for seconds in (2.5, 8.0):
            clip = (0.002 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
            clip[:len(line)] += line[:len(clip)]
            assert has_speech(clip), (i, seconds)
    score = decode_audio(str(SINTEL))[int(19.9 * 16000):int(28.1 * 16000)]  # 8.2 s of strings, no line
    assert not has_speech(score)


@needs_sintel
def test_the_scene_classifier_reads_only_the_vit_it_learnt_on(tmp_path):
    """A studio's own --vision_model of the same width (a fine-tuned DINOv2 ViT-S/14) gives scene tokens the scene
    classifier and its picture gate never saw: before 2026-12-07 they gave scene evidence (a label grounded on
    nothing learnt) and the gate dropped views by them. Now no scene evidence and every view read; the packaged ViT
    at another image size is still its own."""
    import torch
    from safetensors.torch import save_file
    from model.encoders.vision import cached_dinov2_state_dict, default_vision_onnx
    from model.featurize import ClipMedia, Featurizer, lit_views
    from transforms.decode import decode_clip
    frames = decode_clip(str(SINTEL), 20.0, 22.0, DecodeConfig()).frames
    torch.manual_seed(0)
    tuned = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v
             for k, v in cached_dinov2_state_dict(default_vision_onnx())[0].items()}
    save_file(tuned, str(tmp_path / "studio_vit.safetensors"))
    mine = Featurizer(create_encoders(EncoderSpec(vision_model=str(tmp_path / "studio_vit.safetensors"))),
                      modalities=("vision",))
    tokens = mine.clip(ClipMedia(frames=frames, audio=np.zeros(0, np.float32))).tokens
    lit = int(lit_views(frames).sum())  # (its second frame is a fade to black, too dark to see: not read)
    assert lit and tokens["scene"].shape == (2 * lit, 384) and not mine.scene_reads
    assert "scene" not in mine.evidence(tokens) and mine.pictures_only(tokens) is tokens
    packaged = Featurizer(create_encoders(EncoderSpec(image_size=336)), modalities=("vision",))
    assert packaged.scene_reads and "scene" in packaged.evidence(
        packaged.clip(ClipMedia(frames=frames, audio=np.zeros(0, np.float32))).tokens)
