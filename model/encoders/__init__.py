"""Encoders: text (BERT), vision (DINOv2 ViT), faces (MTCNN + mini-Xception), audio (Whisper-encoder speech
emotion), and the scene head on the ViT tokens.

One factory, `create_encoders(EncoderSpec(...))`, builds them for a head checkpoint, applying the tuned text
layers and face weights the head was trained with (timm's `create_model` in spirit): the pipeline, training,
evaluation and the report all get their encoders here. Each encoder is built on first use, so text-only work
never loads the ViT. `encoder_versions(spec)` names the encoders from their weight files alone, without
building any model (what the launcher needs for skips and provenance). All weights load offline from packages
(see docs/models.md).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import threading
from typing import Optional


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
    """Which encoders, for which head, on which device: a small picklable value (workers get a copy)."""
    head: Optional[str] = None  # head checkpoint (None: the shipped default); its tuned encoder weights apply
    text_model: Optional[str] = None
    vision_model: Optional[str] = None
    image_size: int = 224
    device: str = "cpu"
    precision: str = "auto"  # model.precision: bf16 where the hardware has it
    vision_runtime: str = "auto"  # the ViT's runtime: OpenVINO on CPU workers when installed (openvino_runtime.py)
    text_runtime: str = "auto"  # the text encoder's runtime, likewise
    tuned: bool = True  # False: the packaged encoders as they are, whatever the head carries
    # the branch classifiers' files (training.speech_classifier / scene_classifier output); None: the ones the head
    # carries (pipeline.train --speech_classifier / --scene_classifier), else the shipped model/weights files
    speech_classifier: Optional[str] = None
    scene_classifier: Optional[str] = None


def tuned_states(spec: EncoderSpec) -> tuple[dict, dict]:
    """(text encoder overrides, face encoder state) the spec's head carries; empty when none or not tuned."""
    if not spec.tuned:
        return {}, {}
    from model.checkpoints import load_head_meta
    meta = load_head_meta(spec.head)
    return dict(meta.get("text_encoder_overrides") or {}), dict(meta.get("face_encoder_state") or {})


def carried_classifier(spec: EncoderSpec, name: str) -> Optional[str]:
    """The `name` ('speech' / 'scene') classifier file for the spec: its own path; else the one its head carries,
    written once under the cache folder by its digest (a head trained on a studio's own classifiers brings them
    wherever it goes); None: the shipped file."""
    own = getattr(spec, f"{name}_classifier")
    if own or not spec.tuned:
        return own
    from model.checkpoints import load_head_meta
    data = load_head_meta(spec.head).get(f"{name}_classifier")
    if not data:
        return None
    from ..files import written_atomically
    from ._cache import cache_dir
    # (cache_dir: the temporary folder where a worker's home is read-only)
    path = cache_dir() / "classifiers" / f"{name}-{hashlib.sha256(data).hexdigest()[:32]}.pt"
    if not path.is_file() or path.stat().st_size != len(data):
        with written_atomically(path) as tmp:  # workers of one machine may write it at once
            tmp.write_bytes(data)
    return str(path)


def encoder_versions(spec: EncoderSpec, states: Optional[tuple[dict, dict]] = None) -> dict[str, str]:
    """modality -> encoder version, from weight digests (the head's tuned weights and classifiers, or `states`,
    included); no model is built."""
    from .face_detect import detector_v2_version
    from .versions import (VIEWS_RULE, face_encoder_version, head_digests, scene_version, speech_version,
                           text_version, tuned_digests, vision_version, with_tuned_digest)
    # read from a small file after the first time: naming the encoders imports no torch
    carried = (head_digests(spec.head) if spec.tuned else
               {"text": "", "face": "", "speech": "", "scene": "", "scene_gate": ""})
    text_digest, face_digest = tuned_digests(states) if states is not None else (carried["text"], carried["face"])
    return {"text": with_tuned_digest(text_version(spec.text_model), text_digest),
            "vision": vision_version(spec.vision_model, spec.image_size),
            # which sampled frames the face search and the ViT see (VIEWS_RULE) rides with the detector's version
            "face": detector_v2_version() + "-" + VIEWS_RULE + "|" + with_tuned_digest(face_encoder_version(), face_digest),
            "audio": speech_version(spec.speech_classifier, digest=None if spec.speech_classifier
                                    else carried["speech"] or None),
            "scene": scene_version(spec.scene_classifier, digest=None if spec.scene_classifier
                                   else carried["scene"] or None,
                                   own_gate=None if spec.scene_classifier or not carried["scene"]
                                   else bool(carried["scene_gate"]))}


def combined_version(versions: dict[str, str]) -> str:
    """One short id over every encoder's version (feeds model_version and the feature caches)."""
    return hashlib.sha256("|".join(versions[m] for m in sorted(versions)).encode()).hexdigest()[:12]


def encoder_version(spec: EncoderSpec) -> str:
    return combined_version(encoder_versions(spec))


class Encoders:
    """The encoders of one EncoderSpec, each built on first use (thread-safe), tuned weights applied.

    states: (text overrides, face state) to apply instead of the head's (training applies weights it has
    just tuned); None takes them from the spec's head."""

    def __init__(self, spec: EncoderSpec, states: Optional[tuple[dict, dict]] = None):
        self.spec = spec
        self._lock = threading.RLock()
        self._states = states

    def states(self) -> tuple[dict, dict]:
        return self._states if self._states is not None else tuned_states(self.spec)

    def _build(self, name: str, make):
        with self._lock:
            if name not in self.__dict__:
                self.__dict__[name] = make()
            return self.__dict__[name]

    @property
    def text(self):
        def make():
            from .text import load_text_encoder
            enc = load_text_encoder(self.spec.text_model, device=self.spec.device, precision=self.spec.precision,
                                    runtime=self.spec.text_runtime)
            overrides, _ = self.states()
            if overrides:
                enc.apply_overrides(overrides)
            return enc
        return self.__dict__.get("_text") or self._build("_text", make)

    @property
    def vision(self):
        def make():
            from .vision import load_vision_encoder
            return load_vision_encoder(self.spec.vision_model, device=self.spec.device,
                                       image_size=self.spec.image_size, precision=self.spec.precision,
                                       runtime=self.spec.vision_runtime)
        return self.__dict__.get("_vision") or self._build("_vision", make)

    @property
    def face_detector(self):
        def make():
            from .face_detect import load_face_detector_v2
            return load_face_detector_v2(device=self.spec.device)
        return self.__dict__.get("_face_detector") or self._build("_face_detector", make)

    @property
    def speech(self):
        """Speech emotion: the packaged Whisper base encoder + a calibrated classifier (audio tokens)."""
        def make():
            from .speech import load_speech_emotion_encoder
            return load_speech_emotion_encoder(carried_classifier(self.spec, "speech"), device=self.spec.device,
                                               cpu_threads=1)
        return self.__dict__.get("_speech") or self._build("_speech", make)

    @property
    def scene(self):
        """The scene-emotion head on the ViT tokens of a frame (evidence from the frames)."""
        def make():
            from .scene import load_scene_head
            return load_scene_head(carried_classifier(self.spec, "scene"))
        return self.__dict__.get("_scene") or self._build("_scene", make)

    @functools.cached_property
    def face_temperature(self) -> float:
        """softmax(face token / T) is the calibrated face evidence (T fitted with the face classifier)."""
        if not self.spec.tuned:
            return 1.0
        from model.checkpoints import load_head_meta
        return float(load_head_meta(self.spec.head).get("face_temperature", 1.0))

    @property
    def face_encoder(self):
        def make():
            from .faces import load_face_encoder
            enc = load_face_encoder(device=self.spec.device)
            _, state = self.states()
            if state:
                enc.load_state(state)
            return enc
        return self.__dict__.get("_face_encoder") or self._build("_face_encoder", make)

    def loaded(self, name: str) -> bool:
        return f"_{name}" in self.__dict__

    @functools.cached_property
    def versions(self) -> dict[str, str]:
        return encoder_versions(self.spec, self._states)

    @property
    def version(self) -> str:
        return combined_version(self.versions)


_SHARED: dict[EncoderSpec, Encoders] = {}
_SHARED_LOCK = threading.Lock()


def create_encoders(spec: Optional[EncoderSpec] = None, **kwargs) -> Encoders:
    """The encoders for `spec` (or EncoderSpec(**kwargs)), one set per spec per process: the threads of a
    worker share one copy, and a second call with the same spec builds nothing."""
    spec = spec or EncoderSpec(**kwargs)
    with _SHARED_LOCK:
        if spec not in _SHARED:
            _SHARED[spec] = Encoders(spec)
        return _SHARED[spec]
