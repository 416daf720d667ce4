"""The encoders on the real packaged weights (MiniLM, DINOv2 ONNX, fer's mini-Xception, Haar cascade)
and on real data (FER faces, a GRID video frame, a pitched tone). Conversion caches go to a temp dir."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from schemas.labels import EMOTIONS

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FER = DATA / "faces" / "fer2013"
GRID = DATA / "media" / "grid"
SINTEL = DATA / "media" / "sintel" / "sintel_trailer.mp4"


@pytest.fixture(scope="module", autouse=True)
def _isolated_cache(tmp_path_factory):
    torch.set_num_threads(2)
    old = os.environ.get("FILM_EMOTION_CACHE")
    os.environ["FILM_EMOTION_CACHE"] = str(tmp_path_factory.mktemp("film-emotion-cache"))
    yield
    if old is None:
        os.environ.pop("FILM_EMOTION_CACHE")
    else:
        os.environ["FILM_EMOTION_CACHE"] = old


@pytest.fixture(scope="module")
def text():
    from model.encoders.text import load_text_encoder
    return load_text_encoder(precision="fp32")  # exact comparisons below; bf16 has its own test


@pytest.fixture(scope="module")
def vision():
    from model.encoders.vision import load_vision_encoder
    return load_vision_encoder(precision="fp32")


@pytest.fixture(scope="module")
def faces():
    from model.encoders.faces import load_face_detector, load_face_encoder
    return load_face_detector(), load_face_encoder()


# ---------------------------------------------------------------- text
def test_text_shapes_cls_first_and_padding_dropped(text):
    lines = ["ok", "I can't believe you actually did that, Ross!", ""]
    out = text.encode(lines)
    assert text.dim == 384 and text.version.startswith("minilm-l6-")
    for line, toks in zip(lines, out):
        ids = text._tokenize(line, None, 96)[0]["input_ids"]
        assert toks.dtype == np.float32 and toks.shape == (len(ids), 384)
        with torch.inference_mode():
            ref = text.model(input_ids=torch.tensor([ids])).last_hidden_state[0].numpy()
        np.testing.assert_allclose(toks, ref, atol=1e-4)  # same as unbatched: CLS first, no padding rows
    assert text.encode([]) == []


def test_text_batches_come_in_few_widths(text):
    """A batch's width is its longest line rounded up to a multiple of WIDTH_STEP, so the kernels OpenVINO and oneDNN
    compile per input shape are few and memory stays level over a film's lines (one width per line length before
    2026-12-07: RSS rose ~0.35 MB a batch). The padded positions are masked: the test above checks the tokens."""
    from model.encoders.text import WIDTH_STEP
    widths = set()
    for n in range(1, 61):
        enc = text._tokenize(" ".join(["word"] * n), None, 96)[0]
        ids, mask, _ = text._arrays([enc])
        assert ids.shape[1] % WIDTH_STEP == 0 and ids.shape[1] - len(enc["input_ids"]) < WIDTH_STEP
        assert mask.sum() == len(enc["input_ids"])
        widths.add(ids.shape[1])
    assert len(widths) == 4  # 3 to 62 tokens: 16, 32, 48, 64


def test_text_context_shapes_states_and_old_context_truncated_first(text):
    line = "Why would you say that?"
    alone = text.encode([line])[0]
    ctx = ["First, something long ago. " * 30, "And the most recent thing she said."]
    with_ctx = text.encode([line, line], contexts=[ctx, []], max_length=40)
    assert with_ctx[0].shape == alone.shape  # context tokens are not returned...
    assert np.abs(with_ctx[0] - alone).max() > 1e-2  # ...but they change the line's states
    np.testing.assert_allclose(with_ctx[1], alone, atol=1e-4)  # empty context == no context
    enc, n_line = text._tokenize(line, ctx, 40)
    kept = text.tokenizer.decode(enc["input_ids"])
    assert len(enc["input_ids"]) == 40 and "most recent thing she said" in kept  # the oldest line was cut
    long = text.encode(["word " * 300], contexts=[["ctx"]], max_length=96)[0]
    assert long.shape == (96, 384)
    with pytest.raises(ValueError):
        text.encode(["a", "b"], contexts=[[]])


def test_text_apply_overrides(text):
    line = ["She is so happy today."]
    before = text.encode(line)[0]
    key = "encoder.layer.5.output.dense.bias"
    if key not in text.model.state_dict():  # other layer naming in this transformers version
        key = [k for k in text.model.state_dict() if k.endswith("output.dense.bias")][-1]
    original, version = text.model.state_dict()[key].clone(), text.version
    try:
        bumped = original + torch.randn(original.shape, generator=torch.Generator().manual_seed(0))
        text.apply_overrides({key: bumped})  # (a constant shift would vanish in the next LayerNorm)
        assert np.abs(text.encode(line)[0] - before).max() > 1e-3
        assert text.version.startswith(version + "+ft")  # features and skips follow the tuned weights
        with pytest.raises(KeyError):
            text.apply_overrides({"no.such.weight": original})
    finally:
        text.apply_overrides({key: original})
        text.version = version
    np.testing.assert_allclose(text.encode(line)[0], before, atol=1e-5)


def test_text_tokenizer_matches_transformers_on_meld_dev(text):
    """Lines are tokenised by the `tokenizers` library itself: the same ids, token types and line lengths as
    transformers' tokenizer with the truncation rules the encoder had before (line kept from its start, the
    context cut from its oldest end), on every MELD dev line with its dialogue context."""
    from transformers import AutoTokenizer

    from model.encoders.text import default_text_model_path
    from training.datasets import read_meld
    path = DATA / "text" / "meld" / "dev_sent_emo.csv"
    if not path.exists():
        pytest.skip("no shared data")
    ref = AutoTokenizer.from_pretrained(str(default_text_model_path()), local_files_only=True)

    def reference(line, context, max_length):
        ref.truncation_side = "right"
        alone = ref(line, truncation=True, max_length=max_length, return_token_type_ids=True)
        ctx = " ".join(c for c in context if c).strip()
        if not ctx or len(alone["input_ids"]) + 2 > max_length:
            return alone["input_ids"], alone["token_type_ids"], len(alone["input_ids"])
        ref.truncation_side = "left"
        pair = ref(line, ctx, truncation="only_second", max_length=max_length, return_token_type_ids=True)
        return pair["input_ids"], pair["token_type_ids"], len(alone["input_ids"])

    examples = read_meld(path)
    for max_length in (96, 24):
        for e in examples:
            enc, n_line = text._tokenize(e.text, e.context, max_length)
            assert (enc["input_ids"], enc["token_type_ids"], n_line) == reference(e.text, e.context, max_length)


def test_text_runs_on_openvino_and_matches_torch(text):
    """On a CPU worker the text encoder runs on OpenVINO (the same tokens as torch's, within bf16 rounding in
    bf16), and once its IR is cached a worker builds no torch BERT: a fresh interpreter encodes a line without
    importing transformers' BERT or building the torch ViT."""
    import subprocess
    import sys

    from model.encoders.text import load_text_encoder
    lines = ["I can't believe you did that!", "Okay.", "We lost everything in the fire and nobody came."]
    ctx = [["Where were you?"], [], ["Oh no.", "What happened to the house?"]]
    ref = text.encode(lines, ctx)
    for precision, atol in (("fp32", 1e-4), ("bf16", 0.1)):
        ov_text = load_text_encoder(precision=precision, runtime="openvino")
        assert ov_text.runtime == "openvino" and ov_text._built is None
        for a, b in zip(ref, ov_text.encode(lines, ctx)):
            assert a.shape == b.shape
            np.testing.assert_allclose(b, a, atol=atol)
            cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
            assert cos.min() > 0.999
    worker = (
        "import sys, numpy as np\n"
        "from model.encoders import create_encoders, EncoderSpec\n"
        "enc = create_encoders(EncoderSpec())\n"
        "enc.text.encode(['hello there'], [['who is it?']]); enc.vision.encode(np.zeros((1, 224, 224, 3), np.uint8))\n"
        "print(enc.text._built is None, enc.vision._built is None,\n"
        "      'transformers.models.bert.modeling_bert' in sys.modules, 'sympy' in sys.modules)\n")
    for _ in range(2):  # the first run converts (and caches) the tuned IRs; the second only reads them
        out = subprocess.run([sys.executable, "-c", worker], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parents[1], env=dict(os.environ))
    # and no torch.export dimension objects either (they import sympy): only a conversion needs them
    assert out.stdout.split() == ["True", "True", "False", "False"], out.stdout + out.stderr


# ---------------------------------------------------------------- precision
def test_precision_resolution():
    from model.precision import autocast, cpu_has_native_bf16, resolve
    assert resolve("fp32", "cuda") == "fp32" and resolve("bf16", "cpu") == "bf16"
    assert resolve("auto", "cpu") == ("bf16" if cpu_has_native_bf16() else "fp32")
    with pytest.raises(ValueError):
        resolve("int4", "cpu")
    with autocast("cpu", "bf16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast("cpu", "fp32"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_bf16_tokens_agree_with_fp32(text, vision):
    """bf16 (the CPU default where the cores have it) keeps every token's direction: cosine > 0.99."""
    from model.encoders.text import TextEncoder
    from model.encoders.vision import VisionEncoder

    def cos(a, b):
        a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
        return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))

    text16 = TextEncoder(text.model, text.tokenizer, text.version, precision="bf16")
    lines = ["I can't believe you did that!", "Okay.", "We lost everything in the fire and nobody came."]
    for a, b in zip(text.encode(lines, [["Where were you?"]] * 3), text16.encode(lines, [["Where were you?"]] * 3)):
        assert a.shape == b.shape and cos(a, b).min() > 0.99
    vision16 = VisionEncoder(vision.model, vision.version, image_size=vision.image_size, precision="bf16")
    frames = np.random.default_rng(3).integers(0, 256, (4, 224, 224, 3), dtype=np.uint8)
    for a, b in zip(vision.encode(frames), vision16.encode(frames)):  # head tokens, then scene tokens
        assert cos(a, b).min() > 0.99


@pytest.mark.skipif(not SINTEL.exists(), reason="no shared data")
def test_int8_vision_is_quantised_and_close_to_fp32(vision):
    """--precision int8 (opt-in on CPU): the ViT's Linear layers become dynamic int8 modules, and tokens
    of real film frames keep their direction on average (DINOv2's outlier channels make a few drift more)."""
    import av
    from model.encoders.vision import VisionEncoder

    q = VisionEncoder(vision.model, vision.version, image_size=vision.image_size, precision="int8")
    assert not any(type(m) is torch.nn.Linear for m in q.model.modules())
    assert any(type(m) is torch.nn.Linear for m in vision.model.modules())  # the fp32 model is untouched
    with av.open(str(SINTEL)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24", width=224, height=224)
                           for i, f in zip(range(320), c.decode(video=0)) if i % 80 == 0])
    a, b = vision.encode(frames)[0], q.encode(frames)[0]
    a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    assert cos.mean() > 0.98 and cos.min() > 0.85, (cos.mean(), cos.min())
    with pytest.raises(ValueError, match="CPU"):
        VisionEncoder(vision.model, vision.version, device="cuda", precision="int8")


# ---------------------------------------------------------------- vision
def test_vision_matches_onnx_runtime(vision):
    import onnx
    import onnxruntime as ort
    from model.encoders.vision import default_vision_onnx

    model = onnx.load(str(default_vision_onnx()))
    hidden = "/backbone/layernorm/Add_1_output_0"  # the exported Dinov2's last hidden state
    model.graph.output.append(onnx.helper.make_tensor_value_info(hidden, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    ref = session.run([hidden], {"input_image": x})[0]
    got = vision.forward_tokens(torch.from_numpy(x)).numpy()[:, :257]  # then the 2 scene tokens
    assert got.shape == ref.shape == (2, 257, 384)
    assert np.abs(got - ref).max() < 1e-3


def test_vision_runs_on_openvino_unpinned_and_matches_torch(vision):
    """On a CPU worker the ViT runs on OpenVINO, compiled without CPU pinning (pinned, two one-thread worker
    processes shared core 0), with torch's tokens."""
    from model.encoders.vision import VisionEncoder

    assert vision.runtime == "openvino"
    x = vision.preprocess(np.random.default_rng(2).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8))
    got = vision.forward_tokens(x).numpy()
    compiled = vision._openvino._request.get_compiled_model()
    assert str(compiled.get_property("ENABLE_CPU_PINNING")) in ("False", "false", "0")
    torch_vit = VisionEncoder(vision.model, vision.version, precision="fp32", runtime="torch")
    np.testing.assert_allclose(got, torch_vit.forward_tokens(x).numpy(), atol=1e-3)


def test_openvino_forward_exports_only_when_no_ir_is_cached(tmp_path, monkeypatch):
    """The torch module and its export arguments (torch.export's dimensions import sympy) are asked for only when
    the IR is not in the cache; a second encoder of the same version reads the cached IR."""
    from model.encoders._cache import CACHE_ENV
    from model.encoders.openvino_runtime import OpenVINOForward

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    calls = []

    def export_args():
        calls.append(1)
        return (torch.zeros(2, 3),), ({0: torch.export.Dim("batch", min=1, max=8)},)

    first = OpenVINOForward("test-linear-v1", lambda: torch.nn.Linear(3, 2), export_args, "fp32")
    x = np.ones((4, 3), np.float32)
    second = OpenVINOForward("test-linear-v1", lambda: pytest.fail("rebuilt the module"),
                             lambda: pytest.fail("asked for export arguments"), "fp32")
    assert calls == [1]
    np.testing.assert_allclose(second(x), first(x))


def test_vision_tokens_and_any_frame_size(vision):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    toks, scene = vision.encode(frames)
    assert vision.dim == 384 and vision.tokens_per_frame == 5 and vision.scene_tokens == 2
    assert toks.shape == (3, 5, 384) and toks.dtype == np.float32 and scene.shape == (3, 2, 384)
    full = vision.forward_tokens(vision.preprocess(frames))
    np.testing.assert_allclose(toks[:, 0], full[:, 0].numpy(), atol=1e-5)  # CLS first
    np.testing.assert_allclose(toks[:, 1], full[:, 1:257].reshape(3, 16, 16, 384)[:, :8, :8].mean((1, 2)).numpy(),
                               atol=1e-4)  # then the top-left quarter's mean patch
    np.testing.assert_allclose(scene, full[:, 257:].numpy())
    assert [a.shape for a in vision.encode(rng.integers(0, 256, (2, 90, 160, 3), dtype=np.uint8))] == [
        (2, 5, 384), (2, 2, 384)]
    assert [a.shape for a in vision.encode(np.zeros((0, 224, 224, 3), np.uint8))] == [(0, 5, 384), (0, 2, 384)]


def test_scene_tokens_are_the_last_blocks_mean(vision):
    """The scene tokens: CLS and the patch mean of each of the last SCENE_LAYERS blocks (through the final norm),
    averaged; the torch ViT's own blocks give them, and the head tokens are forward_features' as before."""
    from model.encoders.vision import SCENE_LAYERS, VisionEncoder

    frames = np.random.default_rng(5).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    torch_enc = VisionEncoder(vision.model, vision.version, image_size=vision.image_size, precision="fp32",
                              runtime="torch")
    toks, scene = torch_enc.encode(frames)
    m = vision.model
    with torch.inference_mode():
        h = m.norm_pre(m._pos_embed(m.patch_embed(torch_enc.preprocess(frames))))
        states = []
        for block in m.blocks:
            h = block(h)
            states.append(m.norm(h))
        final = m.forward_features(torch_enc.preprocess(frames))
    last = states[-SCENE_LAYERS:]
    np.testing.assert_allclose(scene[:, 0], torch.stack([s[:, 0] for s in last]).mean(0).numpy(), atol=1e-5)
    np.testing.assert_allclose(scene[:, 1], torch.stack([s[:, 1:].mean(1) for s in last]).mean(0).numpy(), atol=1e-5)
    np.testing.assert_allclose(toks, torch_enc.pool(final).numpy(), atol=1e-5)


def test_vision_cache_is_reused(vision, monkeypatch):
    from model.encoders import vision as vmod
    from model.encoders._cache import cache_dir

    cached = list(cache_dir().glob("vit_small_patch14_dinov2-*.safetensors"))
    assert len(cached) == 1  # written by the fixture's load
    monkeypatch.setattr(vmod, "convert_dinov2_onnx", lambda *_: pytest.fail("converted again"))
    other = vmod.load_vision_encoder(image_size=120)  # another size reuses the same conversion
    assert other.version != vision.version and other.image_size == 126  # whole 14 px patches
    assert [a.shape for a in other.encode(np.zeros((1, 120, 120, 3), np.uint8))] == [(1, 5, 384), (1, 2, 384)]


# ---------------------------------------------------------------- faces
def _grid_frame() -> np.ndarray:
    import av
    path = sorted(GRID.glob("*.mpg"))[0]
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i == 10:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError("short video")


@pytest.mark.skipif(not GRID.exists(), reason="no shared data")
def test_face_detector_finds_the_speaker(faces):
    detector, _ = faces
    frame = _grid_frame()
    boxes = detector.detect(frame)
    assert len(boxes) == 1
    x, y, w, h = boxes[0]
    cx, cy = x + w / 2, y + h / 2
    assert 0.25 < cx / frame.shape[1] < 0.75 and 0.15 < cy / frame.shape[0] < 0.75 and w > 40
    assert detector.detect(np.zeros((200, 200, 3), np.uint8)) == []


def _fer_images(label: str, n: int) -> list[np.ndarray]:
    import cv2
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted((FER / label).glob("*.jpg"))[:n]]


@pytest.mark.skipif(not FER.exists(), reason="no shared data")
def test_mini_xception_predicts_fer_faces(faces):
    _, encoder = faces
    happy, surprise = _fer_images("happy", 25), _fer_images("surprise", 25)
    pred = encoder.fer_logits(happy + surprise).argmax(1)
    truth = np.array([EMOTIONS.index("joy")] * 25 + [EMOTIONS.index("surprise")] * 25)
    assert (pred == truth).mean() >= 0.6  # chance is 1/7; the packaged model gets ~0.7 on these two
    assert (pred[:25] == EMOTIONS.index("joy")).mean() >= 0.7  # FER 'happy' lands on 'joy': order mapped


def test_fer_order_mapping():
    from model.encoders._mini_xception import FER_LABELS
    from model.encoders.faces import fer_to_emotions

    fer = np.eye(7)
    mapped = fer_to_emotions(fer)  # row i = one-hot FER class i, in EMOTIONS order
    names = {"angry": "anger", "happy": "joy", "sad": "sadness"}
    for i, label in enumerate(FER_LABELS):
        assert EMOTIONS[int(mapped[i].argmax())] == names.get(label, label)


@pytest.mark.skipif(not FER.exists(), reason="no shared data")
def test_face_tokens_any_crop_shape(faces):
    from model.encoders.faces import FACE_DIM

    _, encoder = faces
    gray = _fer_images("sad", 2)
    rgb = np.repeat(gray[0][..., None], 3, axis=-1)
    big = np.ascontiguousarray(np.kron(rgb, np.ones((3, 3, 1), np.uint8)))  # 144 px colour crop
    crops = [gray[0], rgb, big, gray[1]]
    toks = encoder.encode(crops)
    assert encoder.dim == FACE_DIM and toks.shape == (4, FACE_DIM) and toks.dtype == np.float32
    np.testing.assert_allclose(toks[0], toks[1], atol=1e-4)  # gray and gray-as-RGB are the same face
    assert np.isfinite(toks).all()
    np.testing.assert_allclose(encoder.encode(np.stack(gray)), toks[[0, 3]], atol=1e-4)  # array batch
    np.testing.assert_allclose(toks, encoder.fer_logits(crops, tta=True), atol=1e-5)
    plain = encoder.fer_logits([gray[0]])
    assert plain.shape == (1, 7) and np.abs(plain - toks[:1]).max() > 1e-4  # TTA changes them
    assert encoder.encode([]).shape == (0, FACE_DIM)


# ---------------------------------------------------------------- audio
def test_audio_shapes_and_pitch():
    from model.encoders.audio import AUDIO_COLUMNS, AUDIO_DIM, AUDIO_VERSION, audio_features

    assert AUDIO_DIM == len(AUDIO_COLUMNS) and AUDIO_VERSION
    assert audio_features(np.zeros(0, np.float32)).shape == (0, AUDIO_DIM)
    assert audio_features(np.zeros(1000, np.float32)).shape == (0, AUDIO_DIM)
    sr = 16_000
    t = np.arange(int(2.05 * sr)) / sr
    for hz in (120.0, 240.0):
        feats = audio_features((0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32))
        assert feats.shape == (20, AUDIO_DIM) and feats.dtype == np.float32 and np.isfinite(feats).all()
        pitch = 100.0 * 2.0 ** feats[2:-2, AUDIO_COLUMNS.index("pitch")]
        assert np.all(np.abs(pitch / hz - 1) < 0.02)
        assert feats[2:-2, AUDIO_COLUMNS.index("voiced")].min() > 0.9
    noise = np.random.default_rng(0).standard_normal(sr).astype(np.float32) * 0.1
    feats = audio_features(noise)
    assert feats[:, AUDIO_COLUMNS.index("voiced")].max() < 0.2  # white noise has no pitch
    loud = audio_features((0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32))
    quiet = audio_features((0.05 * np.sin(2 * np.pi * 200 * t)).astype(np.float32))
    e = AUDIO_COLUMNS.index("log_energy")
    assert loud[5, e] - quiet[5, e] == pytest.approx(1.0, abs=0.05)  # 10x amplitude = +1 in log10 energy


def test_prosody_spectral_steps_equal_librosa():
    """audio.py's numpy STFT, mel filters, MFCC, RMS and zero-crossing rate are librosa's, value for value."""
    import librosa

    from model.encoders import audio

    rng = np.random.default_rng(1)
    t = np.arange(16_000 * 2 + 321) / 16_000
    waves = [(rng.standard_normal(len(t)) * 0.05).astype(np.float32),
             (0.3 * np.sin(2 * np.pi * 180 * t) * (t < 1.2)).astype(np.float32), np.zeros(4000, np.float32)]
    assert np.array_equal(audio.mel_filters(), librosa.filters.mel(sr=16_000, n_fft=512, n_mels=40))
    for w in waves:
        power = np.abs(librosa.stft(w, n_fft=512, hop_length=160)) ** 2
        np.testing.assert_allclose(np.abs(audio.stft(w)) ** 2, power, rtol=1e-6, atol=1e-12)
        mfcc = librosa.feature.mfcc(S=librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=16_000,
                                                                                          n_mels=40)), n_mfcc=13)
        np.testing.assert_allclose(audio.mfcc_from_power(power), mfcc, rtol=1e-5, atol=1e-4)
        rms = librosa.feature.rms(S=np.sqrt(power), frame_length=512)[0]
        np.testing.assert_allclose(audio.rms_from_magnitude(np.sqrt(power)), rms, rtol=1e-6)
        zcr = librosa.feature.zero_crossing_rate(w, frame_length=512, hop_length=160)[0]
        assert np.array_equal(audio.zero_crossing_rate(w), zcr)


def test_prosody_loads_without_librosa():
    """A worker computing prosody imports no librosa (1.5 s of start-up)."""
    from testing.imports import modules_imported

    assert modules_imported("from model.encoders.audio import load_prosody; load_prosody()", ["librosa"]) == []


def test_encoder_version(text, vision, faces):
    # From the weight files (no model built), and the same strings the loaded encoders carry.
    from model.encoders import EncoderSpec, encoder_version, encoder_versions

    spec = EncoderSpec(tuned=False)
    versions = encoder_versions(spec)
    assert versions["text"] == text.version and versions["vision"] == vision.version
    detector, classifier = versions["face"].split("|")
    assert detector.startswith("mtcnn-") and classifier == faces[1].version
    v = encoder_version(spec)
    assert len(v) == 12 and v == encoder_version(spec) and v != encoder_version(EncoderSpec())
