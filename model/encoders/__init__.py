"""Encoders: text (BERT), vision (DINOv2 ViT), faces (Haar + mini-Xception), audio (prosody).

All load from offline packaged weights by default (see docs/models.md); submodules import their heavy
libraries only when used, so `from model.encoders import audio` stays cheap.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .faces import FaceDetector, FaceEncoder
    from .text import TextEncoder
    from .vision import VisionEncoder


@dataclass
class Encoders:
    text: "TextEncoder"
    vision: "VisionEncoder"
    face_detector: "FaceDetector"
    face_encoder: "FaceEncoder"


def load_encoders(text: str | None = None, vision: str | None = None, device: str = "cpu",
                  image_size: int = 224) -> Encoders:
    """Every encoder the pipeline needs, each from its packaged default unless a name/path is given."""
    from .faces import load_face_detector, load_face_encoder
    from .text import load_text_encoder
    from .vision import load_vision_encoder

    return Encoders(
        text=load_text_encoder(text, device=device),
        vision=load_vision_encoder(vision, device=device, image_size=image_size),
        face_detector=load_face_detector(),
        face_encoder=load_face_encoder(device=device),
    )


def encoder_version(encoders: Encoders) -> str:
    """Short id covering every encoder's weights and settings (feeds model_version and the cache keys)."""
    from .audio import AUDIO_VERSION

    parts = [encoders.text.version, encoders.vision.version, encoders.face_detector.version,
             encoders.face_encoder.version, AUDIO_VERSION]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]
