"""Encode step: per-clip encoder features inside Beam, through RunInference model handlers.

Chain (all one fused stage right after decode, so frames never cross a shuffle):

    (key, DecodedClip) -> RunInference(vision + faces) -> ClipWork (frames dropped here)
                       -> AudioProsody DoFn            -> ClipWork (wave dropped here)
                       -> RunInference(text)           -> ClipWork with all modality tokens

Keys are (film_id, clip_index). Models load once per worker process: RunInference keeps them in Beam's
`shared.Shared`, so the threads of one process share one copy, and a module cache lets the launcher's copy
(loaded for model_version) serve in-process runners too. Serving one copy to all processes of a machine
(share_model_across_processes) is left off: it proxies every call, and these models are small next to the
frames they would have to ship. A failing batch never kills the pipeline: it is retried clip by clip, and a
clip that fails alone loses that modality and carries an error that the scorer emits as a FilmError row.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any, Iterable, Optional, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, RunInference

from transforms.elements import ClipSpec, DecodedClip

LOG = logging.getLogger(__name__)
METRICS_NAMESPACE = "film_emotion"
MAX_FACES_PER_FRAME = 4  # bounds the face encoder's work on crowd shots
TEXT_MAX_LENGTH = 96
DEFAULT_ACCELERATOR = "type:nvidia-tesla-t4;count:1;install-nvidia-driver"

Key = tuple[str, int]


# -- options --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class EncodeConfig:
    """The scoring options the handlers need, as a small picklable value (workers get a copy)."""
    device: str = "cpu"
    batch_size: int = 32
    torch_threads: int = 1  # per worker process on CPU: avoids oversubscribing cores across processes
    text_model: Optional[str] = None
    vision_model: Optional[str] = None
    image_size: int = 224
    head: Optional[str] = None  # the head checkpoint can carry fine-tuned text-encoder layers
    accelerator: Optional[str] = None  # Beam resource hint for the model steps
    precision: str = "auto"  # encoders' number format (model.precision): bf16 where the hardware has it

    @classmethod
    def from_options(cls, opts: Any) -> "EncodeConfig":
        """From FilmEmotionOptions (or any object/namespace with these attribute names)."""
        if hasattr(opts, "get_all_options"):
            opts = _Namespace(opts.get_all_options(retain_unknown_options=True))
        g = lambda name, default: default if getattr(opts, name, None) is None else getattr(opts, name)  # noqa: E731
        device = g("device", "cpu")
        accel = g("accelerator", None) or (DEFAULT_ACCELERATOR if device == "cuda" else None)
        return cls(device=device, batch_size=int(g("batch_size", 32)), torch_threads=int(g("torch_threads", 1)),
                   text_model=g("text_model", None), vision_model=g("vision_model", None),
                   image_size=int(g("image_size", 224)), head=g("head", None), accelerator=accel,
                   precision=g("precision", "auto"))


class _Namespace:
    def __init__(self, d: dict):
        self.__dict__.update(d)


_THREADS_LOCK = threading.Lock()
_THREADS_SET = False


def configure_torch(cfg: EncodeConfig) -> None:
    """Once per process: CPU workers use cfg.torch_threads intra-op threads (Beam runs one worker process
    per core, so more threads than that only fight over the same cores)."""
    global _THREADS_SET
    import torch
    with _THREADS_LOCK:
        if not _THREADS_SET and cfg.device == "cpu" and cfg.torch_threads > 0:
            import cv2  # the Haar face detector has its own thread pool: same budget
            torch.set_num_threads(cfg.torch_threads)
            cv2.setNumThreads(cfg.torch_threads)
        _THREADS_SET = True


# Model objects cached per process, so a launcher that already loaded them (to compute model_version) and
# the in-process DirectRunner workers share one copy.
_MODELS: dict[tuple, Any] = {}
_MODELS_LOCK = threading.Lock()


def cached(key: tuple, loader):
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = loader()
        return _MODELS[key]


def load_vision_models(cfg: EncodeConfig) -> "VisionModels":
    from model.encoders.faces import load_face_detector, load_face_encoder
    from model.encoders.vision import load_vision_encoder

    def load():
        from model.checkpoints import load_head
        faces = load_face_encoder(device=cfg.device)
        _, meta = load_head(cfg.head, device="cpu")
        if meta.get("face_encoder_state"):  # the head was trained on a fine-tuned face encoder's tokens
            faces.load_state(meta["face_encoder_state"])
        return VisionModels(vision=load_vision_encoder(cfg.vision_model, device=cfg.device, image_size=cfg.image_size,
                                                       precision=cfg.precision),
                            face_detector=load_face_detector(), face_encoder=faces)
    return cached(("vision", cfg.vision_model, cfg.device, cfg.image_size, cfg.precision, cfg.head), load)


def load_text_model(cfg: EncodeConfig):
    def load():
        from model.checkpoints import load_head
        from model.encoders.text import load_text_encoder
        enc = load_text_encoder(cfg.text_model, device=cfg.device, precision=cfg.precision)
        _, meta = load_head(cfg.head, device="cpu")
        if meta.get("text_encoder_overrides"):
            enc.apply_overrides(meta["text_encoder_overrides"])
        return enc
    return cached(("text", cfg.text_model, cfg.device, cfg.head, cfg.precision), load)


def encoder_version(cfg: EncodeConfig) -> str:
    """The encoders' combined version (model.encoders.encoder_version), loading them in this process once."""
    from model.encoders import Encoders
    from model.encoders import encoder_version as version_of
    v = load_vision_models(cfg)
    return version_of(Encoders(text=load_text_model(cfg), vision=v.vision, face_detector=v.face_detector,
                               face_encoder=v.face_encoder))


# -- values flowing through the encode chain -------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StepFailure:
    """A clip that failed in one step: turned into a FilmError row by the scorer."""
    stage: str
    error_type: str
    message: str

    @classmethod
    def of(cls, stage: str, exc: BaseException, what: str = "") -> "StepFailure":
        return cls(stage, type(exc).__name__, f"{what}{exc}" if str(exc) else f"{what}{exc!r}")


def run_isolating(items: Sequence, fn, stage: str, what: str = "") -> list:
    """fn(items) -> one result per item. If the whole batch fails, retry item by item so that one bad clip
    only fails itself; an item that fails alone gets a StepFailure in its place."""
    try:
        return list(fn(items))
    except Exception as e:  # noqa: BLE001 - errors are values here, never crashes
        if len(items) == 1:
            LOG.warning("%s%s failed: %s", what, stage, e)
            _counter("errors").inc()
            return [StepFailure.of(stage, e, what)]
    return [r for item in items for r in run_isolating([item], fn, stage, what)]


@dataclasses.dataclass(frozen=True)
class ClipWork:
    """One clip between encode steps: everything but the frames (dropped after vision encoding)."""
    film_id: str
    film_path: str
    spec: ClipSpec
    audio: Optional[np.ndarray]  # 16 kHz mono; None once the prosody features are computed
    tokens: dict  # modality -> float32 [L, D]
    failures: tuple[StepFailure, ...] = ()

    def with_tokens(self, failure: Optional[StepFailure] = None, **tokens) -> "ClipWork":
        return dataclasses.replace(self, tokens={**self.tokens, **tokens},
                                   failures=self.failures + ((failure,) if failure else ()))


@dataclasses.dataclass
class VisionModels:
    vision: Any
    face_detector: Any
    face_encoder: Any


def _film_path(clip: DecodedClip) -> str:
    return clip.film_path or clip.film_id


def _counter(name: str):
    return Metrics.counter(METRICS_NAMESPACE, name)


# -- vision + faces -------------------------------------------------------------------------------------
def frame_tokens_to_sequence(tokens: np.ndarray) -> np.ndarray:
    """[n_frames, tokens_per_frame, D] -> [n_frames * tokens_per_frame, D] in time order (frame-major)."""
    return np.ascontiguousarray(tokens.reshape(-1, tokens.shape[-1]), dtype=np.float32)


def crop_faces(frame: np.ndarray, boxes: Sequence[tuple[int, int, int, int]]) -> list[np.ndarray]:
    h, w = frame.shape[:2]
    crops = []
    for x, y, bw, bh in sorted(boxes, key=lambda b: -b[2] * b[3])[:MAX_FACES_PER_FRAME]:
        x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + bw), min(h, y + bh)
        if x1 - x0 >= 8 and y1 - y0 >= 8:
            crops.append(frame[y0:y1, x0:x1])
    return crops


class VisionFaceHandler(ModelHandler[DecodedClip, ClipWork, VisionModels]):
    """DecodedClip -> ClipWork with 'vision' (ViT tokens of every sampled frame) and 'face' (one token per
    detected face) features. All frames of a batch of clips go through the ViT together."""

    def __init__(self, cfg: EncodeConfig):
        super().__init__(min_batch_size=cfg.batch_size, max_batch_size=cfg.batch_size)
        self.cfg = cfg

    def load_model(self) -> VisionModels:
        configure_torch(self.cfg)
        return load_vision_models(self.cfg)

    def run_inference(self, batch: Sequence[DecodedClip], model: VisionModels,
                      inference_args: Optional[dict] = None) -> list[ClipWork]:
        works = [ClipWork(film_id=c.film_id, film_path=_film_path(c), spec=c.spec, audio=c.audio, tokens={})
                 for c in batch]
        vdim, fdim = model.vision.dim, model.face_encoder.dim
        _counter("vision_batches").inc()
        results = run_isolating(list(batch), lambda clips: self._encode(clips, model), "encode", "vision: ")
        out = []
        for w, r in zip(works, results):
            if isinstance(r, StepFailure):  # the clip goes on without vision and faces
                r = (r, np.zeros((0, vdim), np.float32), np.zeros((0, fdim), np.float32))
            else:
                r = (None, *r)
            out.append(w.with_tokens(r[0], vision=r[1], face=r[2]))
        return out

    def _encode(self, batch: Sequence[DecodedClip], model: VisionModels) -> list[tuple[np.ndarray, np.ndarray]]:
        counts = [len(c.frames) for c in batch]
        frames = [c.frames for c in batch if len(c.frames)]
        # the encoder runs in cfg.precision itself
        toks = (model.vision.encode(np.concatenate(frames)) if frames
                else np.zeros((0, model.vision.tokens_per_frame, model.vision.dim), np.float32))
        vision = np.split(np.asarray(toks, np.float32), np.cumsum(counts)[:-1])
        _counter("frames_encoded").inc(sum(counts))
        return [(frame_tokens_to_sequence(v), self._faces(c.frames, model)) for v, c in zip(vision, batch)]

    def _faces(self, frames: np.ndarray, model: VisionModels) -> np.ndarray:
        crops = [c for fr in frames for c in crop_faces(fr, model.face_detector.detect(fr))]
        if not crops:
            return np.zeros((0, model.face_encoder.dim), np.float32)
        _counter("faces_found").inc(len(crops))
        return np.asarray(model.face_encoder.encode(crops), dtype=np.float32)

    def get_num_bytes(self, batch: Sequence[DecodedClip]) -> int:
        return int(sum(c.frames.nbytes + c.audio.nbytes for c in batch))  # pickling frames just to count is waste

    def get_metrics_namespace(self) -> str:
        return "film_emotion_vision"


# -- audio prosody --------------------------------------------------------------------------------------
class AudioProsodyFn(beam.DoFn):
    """Frame-level prosody (MFCC + deltas, pitch, energy) per clip; cheap, so a plain DoFn."""

    def process(self, keyed: tuple[Key, ClipWork]) -> Iterable[tuple[Key, ClipWork]]:
        from model.encoders.audio import AUDIO_DIM, audio_features
        key, work = keyed
        wave = work.audio if work.audio is not None else np.zeros(0, np.float32)
        try:
            feats = np.asarray(audio_features(np.asarray(wave, np.float32)), np.float32)
            fail = None
        except Exception as e:  # noqa: BLE001
            LOG.exception("audio features failed for %s", key)
            _counter("errors").inc()
            feats, fail = np.zeros((0, AUDIO_DIM), np.float32), StepFailure("encode", type(e).__name__, f"audio: {e}")
        yield key, dataclasses.replace(work.with_tokens(fail, audio=feats), audio=None)


# -- text -----------------------------------------------------------------------------------------------
def text_length(work: ClipWork) -> int:
    """Cheap length proxy (words) used to order a batch so similar lengths pad together."""
    return len((work.spec.text or "").split())


class TextHandler(ModelHandler[ClipWork, ClipWork, Any]):
    """ClipWork -> ClipWork with 'text' (BERT last hidden states, CLS first). Clips without a line get an
    empty sequence (the head's learned query stands in). The batch is sorted by length before encoding so
    each padded sub-batch holds similar lengths (the encoder batches in that order)."""

    def __init__(self, cfg: EncodeConfig):
        super().__init__(min_batch_size=cfg.batch_size, max_batch_size=cfg.batch_size)
        self.cfg = cfg

    def load_model(self):
        configure_torch(self.cfg)
        return load_text_model(self.cfg)

    def run_inference(self, batch: Sequence[ClipWork], model, inference_args: Optional[dict] = None
                      ) -> list[ClipWork]:
        empty = np.zeros((0, model.dim), np.float32)
        with_text = sorted((i for i, w in enumerate(batch) if (w.spec.text or "").strip()),
                           key=lambda i: text_length(batch[i]))
        _counter("text_batches").inc()

        def encode(idx):
            return model.encode([batch[i].spec.text for i in idx],
                                contexts=[list(batch[i].spec.context) for i in idx], max_length=TEXT_MAX_LENGTH)

        results = dict(zip(with_text, run_isolating(with_text, encode, "encode", "text: "))) if with_text else {}
        out = []
        for i, w in enumerate(batch):
            r = results.get(i)
            if r is None or isinstance(r, StepFailure):
                out.append(w.with_tokens(r, text=empty))
            else:
                out.append(w.with_tokens(text=np.asarray(r, np.float32)))
        return out

    def get_num_bytes(self, batch: Sequence[ClipWork]) -> int:
        return int(sum(len((w.spec.text or "").encode()) for w in batch))

    def get_metrics_namespace(self) -> str:
        return "film_emotion_text"


# -- the composite ------------------------------------------------------------------------------------
def with_accelerator(transform: beam.PTransform, cfg: EncodeConfig) -> beam.PTransform:
    """GPU steps ask for an accelerator (Dataflow only fuses steps with equal hints: to keep decode and
    vision in one stage on GPU workers, pass the same hint pipeline-wide with --resource_hints)."""
    return transform.with_resource_hints(accelerator=cfg.accelerator) if cfg.accelerator else transform


def key_clip(clip: DecodedClip) -> tuple[Key, DecodedClip]:
    return (clip.film_id, clip.spec.clip_index), clip


class EncodeClips(beam.PTransform):
    """PCollection[DecodedClip] -> PCollection[((film_id, clip_index), ClipWork)] with text, vision, face
    and audio tokens. Must be applied right after decode (it fuses with it)."""

    def __init__(self, cfg: EncodeConfig):
        super().__init__()
        self.cfg = cfg

    def expand(self, clips):
        keyed = clips | "KeyClips" >> beam.Map(key_clip)
        vision = keyed | "EncodeVision" >> with_accelerator(
            RunInference(KeyedModelHandler(VisionFaceHandler(self.cfg))), self.cfg)
        audio = vision | "AudioProsody" >> beam.ParDo(AudioProsodyFn())
        return audio | "EncodeText" >> with_accelerator(
            RunInference(KeyedModelHandler(TextHandler(self.cfg))), self.cfg)
