"""The speech-emotion and scene-emotion branch classifiers: shipped weights, readers, real dev examples.

Fast: no training; about 20 real dev clips and 20 real dev photos through the shipped models."""
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from schemas.labels import EMOTIONS

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REPO = Path(__file__).resolve().parents[1]
SPEECH_WEIGHTS = REPO / "model" / "weights" / "speech_emotion.pt"
SCENE_WEIGHTS = REPO / "model" / "weights" / "scene_emotion.pt"
N_REAL = 20

pytestmark = pytest.mark.skipif(not (DATA / "audio").is_dir() or not (DATA / "scenes").is_dir(),
                                reason="../shared/data is not here")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _spread(n_rows: int, k: int = N_REAL) -> list[int]:
    """k row indices spread over a file (the sets are sorted by label, so this covers every class)."""
    return sorted({int(i) for i in np.linspace(0, n_rows - 1, k)})


# ---------------------------------------------------------------- readers
def test_speech_reader_labels_and_audio():
    from training.speech_classifier import read_speech_set, speech_path

    raw = pq.read_table(speech_path("emodb", "dev"), columns=["label", "speaker", "seconds"]).to_pylist()
    rows = [0, len(raw) // 2, len(raw) - 1]
    s = read_speech_set("emodb", "dev", rows=rows)
    assert [EMOTIONS[i] for i in s.labels] == [raw[r]["label"] for r in rows]
    assert s.speakers == [str(raw[r]["speaker"]) for r in rows]
    for w, r in zip(s.waves, rows):  # decoded at 16 kHz (Opus decodes at 48 kHz: resampled)
        assert w.dtype == np.float32 and abs(len(w) / 16000 - raw[r]["seconds"]) < 0.1
        assert 0.01 < np.abs(w).max() <= 1.0


def test_speech_trainer_decodes_as_the_pipeline_does():
    """The classifier learns from the samples a film gives it: the trainer's waves are the pipeline's
    transforms.decode.decode_audio (mono at the native rate, then 16 kHz), sample for sample."""
    from training.speech_classifier import feature_cache_path, read_speech_set, speech_path
    from transforms.decode import DECODE_RULE, decode_audio

    rows = [0, 7]
    raw = pq.read_table(speech_path("ravdess", "dev"), columns=["audio"]).take(rows).column("audio").to_pylist()
    s = read_speech_set("ravdess", "dev", rows=rows)
    for w, b in zip(s.waves, raw):
        np.testing.assert_array_equal(w, decode_audio(b))
    # a change in how samples are taken invalidates the feature cache
    assert f"-d{DECODE_RULE}-" in feature_cache_path("whisper-x", "ravdess", "dev", "whisper").name


def test_speech_trainer_lays_score_beds_under_its_clips():
    """Each train clip is learnt also with a score-like bed under it (training/music_beds.py), 5-20 dB below the
    speech, the same mix for the whisper and the prosody features (seeded by the split)."""
    from model.encoders.speech import trim_silence
    from training.speech_classifier import BED_SNR_DB, bedded, read_speech_set

    s = read_speech_set("ravdess", "dev", rows=[0, 7, 30])
    a, b = bedded("ravdess", "dev", s.waves), bedded("ravdess", "dev", s.waves)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], bedded("emodb", "dev", s.waves)[0])  # another split, other beds
    for w, mixed in zip(s.waves, a):
        assert mixed.shape == w.shape and mixed.dtype == np.float32
        speech = trim_silence(w)
        snr = 10 * np.log10(np.mean(speech ** 2) / np.mean((mixed - w) ** 2))
        assert BED_SNR_DB[0] - 0.5 <= snr <= BED_SNR_DB[1] + 0.5


def test_scene_reader_labels_and_targets():
    from training.scene_classifier import decode_image, read_scene_set, scene_path

    raw = pq.read_table(scene_path("dev"), columns=["label", "valence", "arousal", "p_joy"]).to_pylist()
    s = read_scene_set("dev", limit=5)
    assert [EMOTIONS[i] for i in s.labels] == [r["label"] for r in raw[:5]]
    np.testing.assert_allclose(s.probs.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(s.probs[:, EMOTIONS.index("joy")],
                               [r["p_joy"] for r in raw[:5]], atol=0.02)
    assert (s.probs[np.arange(5), s.labels] >= s.probs.max(1) - 1e-6).all()  # label = top of the vote
    np.testing.assert_allclose(s.va[:, 0], [(r["valence"] - 5) / 4 for r in raw[:5]], atol=1e-5)
    assert np.abs(s.va).max() <= 1.0
    img = decode_image(s.images[0])
    assert img.shape == (224, 224, 3) and img.dtype == np.uint8


# ---------------------------------------------------------------- speech branch
@pytest.fixture(scope="module")
def speech():
    from model.encoders.speech import load_speech_emotion_encoder
    return load_speech_emotion_encoder(cpu_threads=1)


def test_speech_weights_load_and_are_small(speech):
    assert SPEECH_WEIGHTS.stat().st_size < 5_000_000
    assert speech.version.startswith("speech-emotion-") and "whisper-base" in speech.version
    assert float(speech.head.temperature) > 0 and float(speech.head.temperature) != 1.0


def test_the_speech_branch_computes_as_its_classifier_learnt_on_every_device(speech, monkeypatch):
    # The classifier learnt from int8 Whisper states (CPU); on a GPU worker CTranslate2's default is float16, which
    # moved RAVDESS dev labels. The branch asks for the trainer's arithmetic wherever it runs (no GPU here: the
    # request a cuda worker makes is recorded, the CPU model stands in for what it would get).
    import model.asr
    from model.encoders.speech import COMPUTE_TYPE, load_speech_emotion_encoder
    assert speech.featurizer.whisper.model.compute_type == COMPUTE_TYPE == "int8_float32"
    asked = []
    monkeypatch.setattr(model.asr, "load_asr_model", lambda *a, **kw: asked.append(kw) or speech.featurizer.whisper)
    load_speech_emotion_encoder(device="cuda")
    assert [(kw["device"], kw["compute_type"]) for kw in asked] == [("cuda", COMPUTE_TYPE)]


def test_speech_real_dev_clips_above_chance(speech):
    from training.speech_classifier import read_speech_set

    n = pq.read_metadata(DATA / "audio" / "ravdess" / "dev.parquet").num_rows
    s = read_speech_set("ravdess", "dev", rows=_spread(n))
    logits = speech.encode(s.waves)
    assert logits.shape == (len(s.waves), len(EMOTIONS)) and np.isfinite(logits).all()
    probs = speech.predict_proba(s.waves[:2])
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    # calibrated: the logits are the head's raw logits over its fitted temperature
    x = torch.from_numpy(speech.featurizer.features(s.waves[:2], prosody=speech.head.cfg.prosody))
    with torch.inference_mode():
        raw = speech.head.raw_logits(x).numpy()
    np.testing.assert_allclose(logits[:2], raw / float(speech.head.temperature), rtol=1e-4, atol=1e-4)
    acc = float((logits.argmax(1) == s.labels).mean())
    assert acc > 2.0 / len(EMOTIONS), f"accuracy {acc:.2f} on {len(s.labels)} unseen-speaker clips"


def test_speech_short_and_silent_waves(speech):
    out = speech.encode([np.zeros(8000, np.float32), np.zeros(0, np.float32) + 0.0,
                         0.1 * np.sin(np.arange(16000 * 3) * 0.05).astype(np.float32)])
    assert out.shape == (3, 7) and np.isfinite(out).all()
    assert speech.encode([]).shape == (0, 7)


# ---------------------------------------------------------------- scene branch
@pytest.fixture(scope="module")
def vision():
    from model.encoders.vision import load_vision_encoder
    return load_vision_encoder()


def test_scene_weights_load():
    from model.encoders.scene import load_scene_head

    head = load_scene_head()
    assert SCENE_WEIGHTS.stat().st_size < 5_000_000
    assert head.version.startswith("scene-emotion-") and len(head.version.split("+")[0]) == len("scene-emotion-") + 10
    assert "+gate" in head.version and head.gate is not None  # which frames it reads is part of its version
    assert float(head.temperature) > 0 and float(head.temperature) != 1.0


def test_scene_real_dev_photos_above_chance(vision):
    from model.encoders.scene import load_scene_head
    from training.scene_classifier import encode_images, read_scene_set

    n = pq.read_metadata(DATA / "scenes" / "emotion6" / "dev.parquet").num_rows
    s = read_scene_set("dev", rows=_spread(n))
    tokens = encode_images(vision, s.images)
    assert tokens.shape == (len(s.images), 2, 384)
    logits, va = load_scene_head().encode(tokens)
    assert logits.shape == (len(s.images), len(EMOTIONS)) and np.isfinite(logits).all()
    assert va.shape == (len(s.images), 2) and np.abs(va).max() <= 1.0
    acc = float((logits.argmax(1) == s.labels).mean())
    assert acc > 2.0 / len(EMOTIONS), f"accuracy {acc:.2f} on {len(s.labels)} unseen photos"
    # valence follows the raters' direction
    assert np.corrcoef(va[:, 0], s.va[:, 0])[0, 1] > 0.2


def test_scene_cv_accuracy_learns_separable_tokens_and_not_noise():
    """training.scene_classifier.cv_accuracy: K folds, each scored by a head trained on the others; tokens that
    carry the label are learnt, pure noise stays near chance."""
    from training.scene_classifier import SceneSet, SceneTrainConfig, cv_accuracy

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    probs = np.eye(7, dtype=np.float32)[labels]
    data = SceneSet("toy", [], labels, probs, np.zeros((len(labels), 2), np.float32))
    centres = rng.normal(size=(3, 2, 16)).astype(np.float32)  # scene tokens: [n, 2, dim]
    x = centres[labels] + 0.3 * rng.normal(size=(len(labels), 2, 16)).astype(np.float32)
    cfg = SceneTrainConfig(epochs=100, lr=1e-2, mirror=True)
    accs = cv_accuracy(x, x[:, :, ::-1].copy(), data, cfg, k=4, log=lambda *_: None)
    assert len(accs) == 4 and min(accs) > 0.9
    noise = rng.normal(size=x.shape).astype(np.float32)
    assert np.mean(cv_accuracy(noise, noise, data, cfg, k=4, log=lambda *_: None)) < 0.6


def test_branch_trainers_read_a_studios_own_folder(tmp_path, monkeypatch):
    """--data (or FILM_EMOTION_DATA) points the speech and scene trainers at a folder of one's own sets, laid out as
    the shipped ones (the model card's *Retraining on your own data*); their labels may be spelt as sets spell them."""
    import pyarrow as pa
    from training import scene_classifier as sc
    from training import speech_classifier as spc
    for name in ("DATA_ROOT", "SCENE_SET"):  # main() sets the module's root and set for --data: put them back
        monkeypatch.setattr(sc, name, getattr(sc, name))
    for name in ("DATA_ROOT", "SPEECH_SETS", "TRAIN_SETS", "DEV_SETS"):  # main() sets them for --data
        monkeypatch.setattr(spc, name, getattr(spc, name))
    scenes = pq.read_table(DATA / "scenes/emotion6/dev.parquet").slice(0, 2).to_pylist()
    (tmp_path / "scenes" / "emotion6").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([r | {"label": "Happy"} for r in scenes]),
                   tmp_path / "scenes" / "emotion6" / "dev.parquet")
    voices = pq.read_table(DATA / "audio/ravdess/dev.parquet").slice(0, 2).to_pylist()
    (tmp_path / "audio" / "mine").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{"audio": r["audio"], "label": "fearful"} for r in voices]),
                   tmp_path / "audio" / "mine" / "dev.parquet")  # no speaker column: each clip its own speaker
    monkeypatch.setattr(sc, "DATA_ROOT", tmp_path)
    monkeypatch.setattr(spc, "DATA_ROOT", tmp_path)
    assert list(sc.read_scene_set("dev").labels) == [EMOTIONS.index("joy")] * 2
    mine = spc.read_speech_set("mine", "dev")
    assert list(mine.labels) == [EMOTIONS.index("fear")] * 2 and mine.speakers == ["0", "1"]
    assert spc.sets_under(tmp_path) == {"mine": ("dev",)}  # --data: the sets are whatever the folder holds
    with pytest.raises(SystemExit):  # a dev set but no train set: refused with its usage
        spc.main(["--data", str(tmp_path), "--features_only"])
    monkeypatch.setattr(sc, "DATA_ROOT", DATA)
    with pytest.raises(SystemExit):  # main's --data: a scenes/<set>/ without its train split is refused
        sc.main(["--data", str(tmp_path), "--cv", "5"])
    (tmp_path / "scenes" / "emotion6").rename(tmp_path / "scenes" / "my_photos")  # a set under a name of one's own
    pq.write_table(pq.read_table(tmp_path / "scenes" / "my_photos" / "dev.parquet"),
                   tmp_path / "scenes" / "my_photos" / "train.parquet")
    with pytest.raises(FileNotFoundError):  # (--cv needs --out's weights: none here; the set is chosen first)
        sc.main(["--data", str(tmp_path), "--cv", "5", "--out", str(tmp_path / "none.pt")])
    assert sc.SCENE_SET == "my_photos" and sc.scene_path("dev") == tmp_path / "scenes" / "my_photos" / "dev.parquet"


def test_scene_trainer_learns_photos_with_one_label_and_no_ratings(tmp_path, monkeypatch):
    """A studio's own scene photos: one label each, no rater shares (p_*) and no valence / arousal: the label is the
    distribution, and the intensity loss leaves out what is not there (each was a KeyError)."""
    import pyarrow as pa
    from training import scene_classifier as sc
    monkeypatch.setattr(sc, "DATA_ROOT", tmp_path)
    monkeypatch.setattr(sc, "CACHE_ROOT", tmp_path / "cache")
    (tmp_path / "scenes" / "emotion6").mkdir(parents=True)
    for split, rows in (("train", slice(0, 12)), ("dev", slice(12, 18))):
        table = pq.read_table(DATA / "scenes/emotion6/train.parquet", columns=["image", "label"])
        pq.write_table(pa.Table.from_pylist(table.to_pylist()[rows]),
                       tmp_path / "scenes" / "emotion6" / f"{split}.parquet")
    data = sc.read_scene_set("train")
    assert np.allclose(data.probs.argmax(1), data.labels) and np.isnan(data.va).all()
    report = sc.run(tmp_path / "scene.pt", grid=sc.GRID[:1], members=1, log=lambda *a: None, gate_graphics=21)
    assert (tmp_path / "scene.pt").exists() and report["dev"]["n"] == 6 and report["dev"]["va_mae"] is None
    # It carries a picture gate learnt from these photos, which it reads through instead of the shipped one (learnt
    # from Emotion6 train, research use only): before 2026-12-07 every scene classifier read through the shipped gate.
    from model.encoders.scene import load_picture_gate, load_scene_head
    from model.encoders.vision import load_vision_encoder
    from training.picture_gate import encode_frames, graphics
    own, shipped = load_scene_head(tmp_path / "scene.pt").gate, load_picture_gate()
    assert not np.allclose(own.mean, shipped.mean) and load_scene_head().gate.coef.tolist() == shipped.coef.tolist()
    drawn = encode_frames(load_vision_encoder(), graphics(14, seed=5))
    assert report["picture_gate"]["dev_photos_read"] >= 5 / 6 and own.pictures(drawn).mean() <= 0.15
    # ...and its version names no shipped gate, which it does not read (found in review)
    from model.encoders.versions import scene_version
    assert "+gate" not in scene_version(tmp_path / "scene.pt") and "+gate" in scene_version()


def test_drawn_graphics_give_no_scene_evidence_and_photos_do(vision):
    """The picture gate (training.picture_gate): frames drawn with another seed than it learnt from (flat colours,
    gradients, colour bars, text cards, test patterns) are not read by the scene classifier, unseen Emotion6 dev
    photos are. Before 2026-12-07 colour bars read joy 0.47, credits on black fear 0.46, both grounded."""
    from model.encoders import EncoderSpec, create_encoders
    from model.featurize import Featurizer
    from training.picture_gate import encode_frames, graphics
    from training.scene_classifier import encode_images, read_scene_set
    n = pq.read_metadata(DATA / "scenes" / "emotion6" / "dev.parquet").num_rows
    photos = encode_images(vision, read_scene_set("dev", rows=_spread(n)).images)
    drawn = encode_frames(vision, graphics(20, seed=7))
    featurizer = Featurizer(create_encoders(EncoderSpec()))
    gate = featurizer.encoders.scene.gate
    assert gate.pictures(photos).all() and not gate.pictures(drawn).any()
    # A real film's frames graded for night are still pictures: the first gate (photos only) learnt "dark is a card"
    # and read 8 of scene-change.mov's 20 so (all 20 as they are)
    from transforms.decode import DecodeConfig, DecodedClip, decode_film
    from tests.test_decode import job_for
    clips = decode_film(job_for(DATA / "media" / "odd" / "scene-change.mov"),
                        DecodeConfig(segment="window", window_s=1.0))
    frames = np.stack([c.frames[len(c.frames) // 2] for c in clips if isinstance(c, DecodedClip) and len(c.frames)])
    night = np.clip(frames * 0.25 * np.array([0.8, 0.9, 1.2]), 0, 255).astype(np.uint8)
    assert len(frames) == 20 and gate.pictures(vision.encode(frames)[1]).all()
    assert gate.pictures(vision.encode(night)[1]).mean() >= 0.9
    as_stored = lambda t: {"scene": t.reshape(-1, t.shape[-1])}  # noqa: E731 - a clip's tokens: [frames * 2, dim]
    assert "scene" not in featurizer.evidence(as_stored(drawn[:4]))  # a clip of cards: the head's guess
    mixed = featurizer.evidence(as_stored(np.concatenate([drawn[:2], photos[:2]])))["scene"]
    np.testing.assert_allclose(mixed, featurizer.evidence(as_stored(photos[:2]))["scene"], rtol=1e-5)


def test_a_view_too_dark_to_see_is_read_by_neither_the_scene_classifier_nor_the_head():
    """The end of a fade, a night shot near black: before 2026-12-07 only black frames were left out, and a fade's
    last frames (luma 2-7 of 255) read fear 0.67, grounded, on the scene alone (found in review). The scene
    classifier reads views whose brightest pixels are under DARK_P99 at chance, as sure as on daylight
    (benchmarks.dark_views). Such views give no tokens; a clip of only such views has no vision, and the photo as
    given, or dimmed to half, is read as before."""
    from model.encoders import EncoderSpec, create_encoders
    from model.featurize import ClipMedia, Featurizer, lit_views
    from training.scene_classifier import decode_image, read_scene_set
    featurizer = Featurizer(create_encoders(EncoderSpec()), modalities=("vision",))
    photo = decode_image(read_scene_set("dev", rows=[0]).images[0])
    dim = (photo * 0.5).astype(np.uint8)
    faded = (photo * 0.05).astype(np.uint8)  # its brightest pixels about 12 of 255
    assert lit_views(np.stack([photo, dim, faded])).tolist() == [True, True, False]
    quiet = np.zeros(16000, np.float32)
    got = featurizer.clips([ClipMedia(frames=np.stack(f), audio=quiet) for f in ([photo, faded], [photo], [faded])])
    np.testing.assert_array_equal(got[0].tokens["scene"], got[1].tokens["scene"])
    assert got[2].tokens["vision"].shape[0] == 0 and "scene" not in featurizer.evidence(got[2].tokens)
    assert featurizer.picture_views(np.stack([photo, faded])).tolist() == [True, False]


def test_cards_give_the_head_no_vision_so_their_label_looks_like_the_guess_it_is():
    """Frames that are no picture (the picture gate) give the head no vision tokens either
    (model.featurize.Featurizer.pictures_only): a clip of cards gets the head's prior, not a sure-looking guess.
    Before 2026-12-07 a test card read joy 0.67, a black leader neutral 0.73, colour bars joy 0.58, a title card fear
    0.52 (none grounded). A clip of cards and photos keeps the photos' tokens, and tokens stored before (every view,
    an older run's features table) are read as a run reads them today by rescore's head step."""
    from model.encoders import EncoderSpec, create_encoders
    from model.featurize import ClipMedia, Featurizer
    from training.picture_gate import graphics
    from training.scene_classifier import decode_image, read_scene_set
    from transforms.fuse import load_head_model, score_tokens
    from transforms.head_inference import HeadHandler
    featurizer = Featurizer(create_encoders(EncoderSpec()), modalities=("vision",))
    cards = np.stack(graphics(4, seed=11))
    n = pq.read_metadata(DATA / "scenes" / "emotion6" / "dev.parquet").num_rows
    photos = np.stack([decode_image(b) for b in read_scene_set("dev", rows=[0, n // 2]).images])
    both = np.concatenate([cards[:2], photos])
    quiet = np.zeros(16000, np.float32)
    got = featurizer.clips([ClipMedia(frames=f, audio=quiet) for f in (cards, both, photos)])
    assert got[0].tokens["vision"].shape[0] == 0 and got[0].tokens["scene"].shape[0] == 0
    np.testing.assert_array_equal(got[1].tokens["vision"], got[2].tokens["vision"])
    np.testing.assert_array_equal(got[1].tokens["scene"], got[2].tokens["scene"])
    assert got[2].tokens["vision"].shape[0] == 2 * featurizer.encoders.vision.tokens_per_frame
    assert featurizer.picture_views(both).tolist() == [False, False, True, True]

    head = load_head_model(None, "cpu")
    cards_row, prior_row = score_tokens(head, [got[0].tokens, {}], "v",
                                        evidence=[featurizer.evidence(got[0].tokens), {}])
    assert cards_row["modalities_used"] == [] and not cards_row["grounded"]
    assert cards_row["emotion"] == prior_row["emotion"]
    assert cards_row["confidence"] == pytest.approx(prior_row["confidence"]) and cards_row["confidence"] < 0.3

    # Tokens that are not finite (a broken runtime) are no card: kept, they fail the clip (the film is tried again)
    # rather than read as the prior (found in review)
    from model.featurize import Failure
    nan = {"vision": np.full_like(got[2].tokens["vision"], np.nan), "scene": np.full_like(got[2].tokens["scene"], np.nan)}
    assert featurizer.pictures_only(nan) is nan
    [failed] = score_tokens(head, [nan], "v", evidence=[featurizer.evidence(nan)])
    assert isinstance(failed, Failure) and "not finite" in failed.message

    vision, scene = featurizer.vision_tokens([both])[0]  # as a features table from before 2026-12-07 holds them
    handler = HeadHandler(None, "v")
    [(_, stored)] = handler.run_inference([({"vision": vision, "scene": scene}, "film")], handler.load_model())
    [fresh] = score_tokens(head, [got[1].tokens], "v", evidence=[featurizer.evidence(got[1].tokens)])
    assert stored == fresh
