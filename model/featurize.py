"""The one path from a decoded clip to the head's modality tokens.

    featurizer = Featurizer(create_encoders(spec))
    results = featurizer.clips([ClipMedia(frames, audio, text, context), ...])   # batched
    results[i].tokens   # {'text': [L, 384], 'vision': [n_views * 5, 384], 'scene': [n_views * 2, 384],
                        #  'face': [n_faces, 7], 'audio': [1, 7]}  (scene: the scene classifier's, not the head's;
                        #  a view: each distinct sampled frame, near-identical frames sharing one: distinct_views)
    results[i].failures # (Failure(modality, error_type, message), ...): that modality is missing, the rest stands

The pipeline's scoring step, training on labelled media, `pipeline.evaluate` and `report --explain` all call
this, so training and serving see the same tokens for the same clip. It owns the limits (faces per frame,
smallest face, text length), the frame sampling times, and the evidence each modality gives on its own
(`evidence`: calibrated 7-way probabilities from the face classifier, the scene head on the frames' ViT
tokens and the speech classifier, each trained on labelled data of its kind). A batch that fails is retried clip by clip, so one
bad clip only loses its own modality. Pure PyTorch/numpy: no Beam here.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections import Counter
from typing import Callable, Optional, Sequence

import numpy as np

from model.encoders.versions import (MIN_SPEECH_S, MIN_VAD_SPEECH_S, MIN_VOICED, MIN_VOICED_S, SAME_VIEW_BLOCK_MAD,
                                     VAD_THRESHOLD, VIEW_BLOCK)
from schemas.clips import EVIDENCE_MODALITIES
from schemas.features import MODALITIES, TOKEN_SETS  # == model.bvpec.MODALITIES, without importing torch

LOG = logging.getLogger(__name__)
MAX_FACES_PER_FRAME = 4  # bounds the face encoder's work on crowd shots
MIN_FACE_PX = 8  # smaller crops carry no expression
TEXT_MAX_LENGTH = 96  # word pieces of line + context
SCENE_INPUT_DIM = 384  # the scene head reads DINOv2 ViT-S/14 tokens
FRAME_EVERY_S = 1.0  # a clip gets one sampled frame per this many seconds (at least 1, at most frames_per_clip)
EVIDENCE = EVIDENCE_MODALITIES  # what each modality says on its own (the clips table's evidence_* columns)
# Seconds this process has spent encoding, by modality, and in the head ('head', transforms.score): a profile that
# benchmarks.throughput prints, not a metric of the run (threads of a worker add to it without a lock).
SECONDS: Counter = Counter()


def parse_modalities(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """'text,face' (or a sequence) -> the modalities in MODALITIES order; None or '' means all of them."""
    if not value:
        return tuple(MODALITIES)
    names = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    if not names:  # ',' or ' ': a typo, not a wish to score from nothing (every label would be the prior)
        raise ValueError(f"no modality named in {value!r}: choose from {','.join(MODALITIES)}")
    unknown = sorted(set(names) - set(MODALITIES))
    if unknown:
        raise ValueError(f"unknown modalities {unknown}: choose from {','.join(MODALITIES)}")
    return tuple(m for m in MODALITIES if m in names)


def select_modalities(tokens: dict, modalities: Sequence[str]) -> dict:
    """The tokens of the chosen modalities only: the others are missing for the head (gate 0). The scene
    classifier's tokens go with vision (the same frames)."""
    return {m: t for m, t in tokens.items()
            if m in modalities or (m == "scene" and "vision" in modalities) or m not in TOKEN_SETS}


def frames_for(start_s: float, end_s: float, max_frames: int, every_s: float = FRAME_EVERY_S) -> int:
    """How many frames a clip [start_s, end_s) is sampled at: one per `every_s` seconds, 1..max_frames."""
    if max_frames <= 0 or end_s <= start_s:
        return 0
    if not every_s or every_s <= 0:
        return max_frames
    return int(min(max_frames, max(1, round((end_s - start_s) / every_s))))


def clip_sample_times(start_s: float, end_s: float, max_frames: int, every_s: float = FRAME_EVERY_S) -> list[float]:
    """The frame times of a clip: frames_for(...) times at the centres of equal slices (sample_times)."""
    return sample_times(start_s, end_s, frames_for(start_s, end_s, max_frames, every_s))


def distinct_views(frames: np.ndarray) -> list[int]:
    """Indices of the frames that are a new view: the first, then each that differs from the last kept one in
    some block by at least SAME_VIEW_BLOCK_MAD (see there)."""
    kept: list[int] = []
    last = None
    for i, frame in enumerate(np.asarray(frames)):
        thumb = view_thumbnail(frame)
        if last is None or largest_block_difference(thumb, last) >= SAME_VIEW_BLOCK_MAD:
            kept.append(i)
            last = thumb
    return kept


def lit_views(frames: np.ndarray) -> np.ndarray:
    """[n] bool: which frames (uint8 RGB, the ViT's input) show enough to read, their brightest pixels (the 99th
    percentile of luma) at least model.encoders.versions.DARK_P99. Darker views (the end of a fade, a night shot
    near black) are no picture the scene classifier or the head reads: on Emotion6 dev photos darkened, the scene
    classifier reads such views at chance (0.12-0.21 in bands of p99 under 32; chance 0.14) while saying 0.44, as
    sure as on the photos as given (0.53 right, saying 0.52); from 32 to 64, 0.30-0.33; no photo as given is under 68
    (python -m benchmarks.dark_views). Before 2026-12-07 only black frames were left out (the picture gate), and the
    last frames of a fade to black read fear 0.67, grounded (found in review)."""
    from model.encoders.versions import DARK_P99
    out = np.zeros(len(frames), bool)
    for i, frame in enumerate(frames):
        gray = gray_frame(frame)
        k = int(0.99 * (gray.size - 1))
        out[i] = gray.size > 0 and np.partition(gray.reshape(-1), k)[k] >= DARK_P99
    return out


def gray_frame(frame: np.ndarray) -> np.ndarray:
    """A uint8 RGB (or gray) frame's luma (BT.601 weights, OpenCV's conversion)."""
    import cv2
    return frame if frame.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def view_thumbnail(frame: np.ndarray) -> np.ndarray:
    """The 32x32 gray float32 thumbnail of an RGB (or gray) frame that distinct_views compares."""
    import cv2
    return cv2.resize(gray_frame(frame), (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)


def largest_block_difference(a: np.ndarray, b: np.ndarray) -> float:
    """The largest mean absolute difference of two view thumbnails over their VIEW_BLOCK x VIEW_BLOCK blocks."""
    n = a.shape[0] // VIEW_BLOCK
    blocks = np.abs(a - b).reshape(n, VIEW_BLOCK, n, VIEW_BLOCK).mean(axis=(1, 3))
    return float(blocks.max())


def sample_times(start_s: float, end_s: float, n: int) -> list[float]:
    """n frame times at the centres of n equal slices of [start, end): every clip is sampled this way."""
    if n <= 0 or end_s <= start_s:
        return []
    step = (end_s - start_s) / n
    return [start_s + (i + 0.5) * step for i in range(n)]


@dataclasses.dataclass(frozen=True)
class ClipMedia:
    """What the featurizer needs of a clip: sampled RGB frames, 16 kHz mono audio, the line and its context."""
    frames: np.ndarray  # uint8 [n_frames, H, W, 3], n_frames may be 0
    audio: np.ndarray  # float32 [n_samples], empty when there is none
    text: Optional[str] = None
    context: tuple[str, ...] = ()
    face_frames: Optional[np.ndarray] = None  # the same frames larger, at the film's aspect: faces are found here

    @classmethod
    def of(cls, clip) -> "ClipMedia":
        """From a transforms.elements.DecodedClip (or anything with frames, audio and spec.text/context)."""
        return cls(frames=clip.frames, audio=clip.audio, text=clip.spec.text, context=tuple(clip.spec.context),
                   face_frames=getattr(clip, "face_frames", None))


@dataclasses.dataclass(frozen=True)
class Failure:
    """One modality of one clip that could not be encoded (that modality goes on missing)."""
    modality: str
    error_type: str
    message: str


@dataclasses.dataclass(frozen=True)
class Featurized:
    tokens: dict  # modality -> float32 [L, D]; L == 0 when missing
    failures: tuple[Failure, ...] = ()


def run_isolating(items: Sequence, fn: Callable[[Sequence], Sequence], modality: str) -> list:
    """fn(items) -> one result per item. If the whole batch fails, retry item by item so that one bad item
    only fails itself; an item that fails alone gets a Failure in its place."""
    try:
        return list(fn(items))
    except Exception as e:  # noqa: BLE001 - errors are values here, never crashes
        if len(items) == 1:
            LOG.warning("%s encoding failed: %s", modality, e)
            return [Failure(modality, type(e).__name__, f"{modality}: {e}" if str(e) else f"{modality}: {e!r}")]
    return [r for item in items for r in run_isolating([item], fn, modality)]


def crop_faces(frame: np.ndarray, boxes: Sequence[tuple[int, int, int, int]]) -> list[np.ndarray]:
    """The largest MAX_FACES_PER_FRAME boxes of a frame, clipped to it, at least MIN_FACE_PX on each side."""
    h, w = frame.shape[:2]
    crops = []
    for x, y, bw, bh in sorted(boxes, key=lambda b: -b[2] * b[3])[:MAX_FACES_PER_FRAME]:
        x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + bw), min(h, y + bh)
        if x1 - x0 >= MIN_FACE_PX and y1 - y0 >= MIN_FACE_PX:
            crops.append(frame[y0:y1, x0:x1])
    return crops


class Featurizer:
    """Clips -> modality tokens with one set of encoders (model.encoders.create_encoders)."""

    def __init__(self, encoders, modalities: Sequence[str] = MODALITIES):
        self.encoders = encoders
        self.modalities = tuple(m for m in MODALITIES if m in modalities)

    def load(self) -> "Featurizer":
        """Build the encoders of the selected modalities now (they are otherwise built on first use), and warm the
        two transformers: a deferred build or an OpenVINO compile would otherwise land in the first batch."""
        for m in self.modalities:
            self.dim(m)
        if "text" in self.modalities:
            self.encoders.text.warm()
        if "vision" in self.modalities:
            self.encoders.vision.warm()
        if "face" in self.modalities:
            _ = self.encoders.face_detector
        if "audio" in self.modalities:
            from model.encoders.audio import load_prosody

            _ = self.encoders.speech
            load_prosody()
        if "vision" in self.modalities:
            _ = self.encoders.scene
        return self

    # -- widths of each modality's tokens (for empty outputs; "scene": the scene classifier's frame tokens)
    def dim(self, modality: str) -> int:
        if modality == "audio":
            from schemas.labels import NUM_EMOTIONS
            return NUM_EMOTIONS  # the speech classifier's calibrated logits
        enc = {"text": lambda: self.encoders.text, "vision": lambda: self.encoders.vision,
               "scene": lambda: self.encoders.vision, "face": lambda: self.encoders.face_encoder}[modality]()
        return int(enc.dim)

    def empty(self, modality: str) -> np.ndarray:
        return np.zeros((0, self.dim(modality)), np.float32)

    # -- one modality, batched
    def vision_tokens(self, frame_sets: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per clip, its frames' ViT tokens in time order: ([n_frames * tokens_per_frame, D] for the head,
        [n_frames * scene_tokens, D] for the scene classifier). All frames of all clips go through the ViT together."""
        vision = self.encoders.vision
        counts = [len(f) for f in frame_sets]
        nonempty = [f for f in frame_sets if len(f)]
        toks, scene = (vision.encode(np.concatenate(nonempty)) if nonempty else
                       (np.zeros((0, vision.tokens_per_frame, vision.dim), np.float32),
                        np.zeros((0, vision.scene_tokens, vision.dim), np.float32)))
        cuts = np.cumsum(counts)[:-1]
        return [tuple(np.ascontiguousarray(a.reshape(-1, vision.dim), dtype=np.float32) for a in pair)
                for pair in zip(np.split(toks, cuts), np.split(scene, cuts))]

    def face_crops(self, frame_sets: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
        """Per clip, the face crops of its frames. One batched detector pass over every frame; a clip with no
        face in any frame is searched once more for a close-up, on its middle frame (face_detect.EDGE_PAD)."""
        detector = self.encoders.face_detector
        flat = [fr for frames in frame_sets for fr in frames]
        boxes = detector.detect_many(flat) if flat else []
        per_clip, at = [], 0
        for frames in frame_sets:
            per_clip.append(list(boxes[at:at + len(frames)]))
            at += len(frames)
        # Clips with no face found: their middle frames' close-up searches run together (batched cascade calls).
        faceless = [k for k, (frames, found) in enumerate(zip(frame_sets, per_clip)) if len(frames) and not any(found)]
        close_ups = detector.detect_close_up_many([frame_sets[k][len(frame_sets[k]) // 2] for k in faceless])
        for k, found in zip(faceless, close_ups):
            per_clip[k] = [[] for _ in frame_sets[k]]
            per_clip[k][len(frame_sets[k]) // 2] = found
        return [[c for fr, b in zip(frames, found) for c in crop_faces(fr, b)]
                for frames, found in zip(frame_sets, per_clip)]

    def face_tokens(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Face crops (any size, RGB or gray) -> one token per face."""
        if not len(crops):
            return self.empty("face")
        return np.asarray(self.encoders.face_encoder.encode(list(crops)), np.float32)

    def audio_tokens(self, wave: np.ndarray) -> np.ndarray:
        """One token: the speech-emotion classifier's calibrated logits [1, 7]; none when the clip has no speech
        (too short, too few voiced frames, or no voice that VAD hears: music, noise and silence give no speech
        evidence)."""
        if not has_speech(wave):
            return self.empty("audio")
        return np.asarray(self.encoders.speech.encode([np.asarray(wave, np.float32)]), np.float32)

    def text_tokens(self, texts: Sequence[str], contexts: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Lines (with their previous lines as context) -> BERT states of [CLS] line [SEP], batched by length."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i].split()))
        out = self.encoders.text.encode([texts[i] for i in order], contexts=[list(contexts[i]) for i in order],
                                        max_length=TEXT_MAX_LENGTH)
        result: list[Optional[np.ndarray]] = [None] * len(texts)
        for i, t in zip(order, out):
            result[i] = np.asarray(t, np.float32)
        return result  # type: ignore[return-value]

    # -- whole clips
    def clips(self, clips: Sequence[ClipMedia]) -> list[Featurized]:
        """Every selected modality of every clip; failures isolated per clip and modality."""
        tokens: list[dict] = [{} for _ in clips]
        failures: list[list[Failure]] = [[] for _ in clips]

        def put(modality: str, idx: Sequence[int], results: Sequence) -> None:
            for i, r in zip(idx, results):
                if isinstance(r, Failure):
                    failures[i].append(r)
                    r = self.empty(modality)
                tokens[i][modality] = r

        everyone = list(range(len(clips)))
        t0 = time.perf_counter()
        views = [distinct_views(c.frames) if "vision" in self.modalities or "face" in self.modalities else []
                 for c in clips]
        if "vision" in self.modalities:
            seen = [[v for v, lit in zip(vs, lit_views(np.asarray(c.frames)[vs])) if lit]
                    for vs, c in zip(views, clips)]
            both = run_isolating(  # (a view too dark to see is not read: lit_views)
                everyone, lambda idx: self.vision_tokens([np.asarray(clips[i].frames)[seen[i]] for i in idx]),
                "vision")
            put("vision", everyone, [r if isinstance(r, Failure) else r[0] for r in both])
            for i, r in enumerate(both):  # the scene classifier's tokens go with the frames' (a failure is logged once)
                tokens[i]["scene"] = self.empty("scene") if isinstance(r, Failure) else r[1]
                tokens[i] = self.pictures_only(tokens[i])
        t0 = self._timed("vision", t0)
        if "face" in self.modalities:
            put("face", everyone, run_isolating(
                everyone, lambda idx: [self.face_tokens(c) for c in self.face_crops(
                    [face_view(clips[i])[views[i]] for i in idx])], "face"))
        t0 = self._timed("face", t0)
        if "audio" in self.modalities:
            put("audio", everyone, run_isolating(
                everyone, lambda idx: [self.audio_tokens(clips[i].audio) for i in idx], "audio"))
        t0 = self._timed("audio", t0)
        if "text" in self.modalities:
            spoken = [i for i in everyone if (clips[i].text or "").strip()]
            for i in everyone:
                tokens[i]["text"] = self.empty("text")  # no line: the head's learned query stands in
            if spoken:
                put("text", spoken, run_isolating(
                    spoken, lambda idx: self.text_tokens([clips[i].text for i in idx],
                                                         [clips[i].context for i in idx]), "text"))
        self._timed("text", t0)
        return [Featurized(t, tuple(f)) for t, f in zip(tokens, failures)]

    def _timed(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        if stage in self.modalities:
            SECONDS[stage] += now - since
        return now

    def clip(self, clip: ClipMedia) -> Featurized:
        return self.clips([clip])[0]

    def pictures_only(self, tokens: dict) -> dict:
        """A clip's tokens without the vision and scene tokens of its views that are no picture of something (the
        scene classifier's picture gate: a leader, a title or test card, a blank frame). Neither the scene
        classifier nor the head reads them: a clip of cards has no vision, so its label is the head's prior (or its
        other modalities'), not a sure-looking guess the head never learnt to make (a test card read joy 0.67, not
        grounded). Applied where tokens are made (clips) and again where stored ones are read (evidence, rescore's
        head step): the same frames either way. Tokens of another width (a user's --vision_model) stay."""
        keep = self._pictures(tokens)
        if keep is None or keep.all():
            return tokens
        out = dict(tokens)
        for m in ("scene", "vision"):
            t = np.asarray(tokens[m]) if tokens.get(m) is not None else None
            if t is not None and len(t) and len(t) % len(keep) == 0:
                out[m] = np.ascontiguousarray(t.reshape(len(keep), -1, t.shape[-1])[keep].reshape(-1, t.shape[-1]))
        return out

    def picture_views(self, frames: np.ndarray) -> np.ndarray:
        """[n] bool: which of these frames (uint8 RGB as the ViT takes them, one per view) pictures_only keeps."""
        if not len(frames):
            return np.zeros(0, bool)
        vision, scene = self.vision_tokens([np.asarray(frames)])[0]
        keep = self._pictures({"vision": vision, "scene": scene})
        return lit_views(np.asarray(frames)) & (True if keep is None else keep)

    def _pictures(self, tokens: dict) -> Optional[np.ndarray]:
        """Per view of the clip, whether the picture gate reads it; None where it cannot say (no scene tokens of
        the scene classifier's width, or of another ViT than it learnt on: scene_reads)."""
        from model.encoders.vision import SCENE_TOKENS
        scene = _tokens(tokens, "scene", SCENE_INPUT_DIM)
        if scene is None or len(scene) % SCENE_TOKENS or not self.scene_reads:
            return None
        views = scene.reshape(-1, SCENE_TOKENS, scene.shape[-1])
        # a view whose tokens are not finite (a broken runtime, an overflow) is no card: it stays, and reaches the
        # head, which fails the clip so the film is tried again (dropped, it read as a card: the prior, 'ok')
        broken = ~np.isfinite(views).all(axis=(1, 2))
        return np.asarray(self.encoders.scene.pictures(views), bool) | broken

    @functools.cached_property
    def scene_reads(self) -> bool:
        """Whether the scene classifier and its picture gate learnt on this featurizer's ViT (the same weights, at
        any image size). A user's own --vision_model of the same width gives tokens they never saw: before
        2026-12-07 they gave scene evidence (a label grounded on nothing learnt) and, with the gate, dropped views."""
        from model.encoders.versions import vision_weights
        learnt, versions = getattr(self.encoders.scene, "vision", None), getattr(self.encoders, "versions", None)
        return learnt is None or versions is None or vision_weights(learnt) == vision_weights(versions["vision"])

    # -- what each modality says on its own
    def evidence(self, tokens: dict) -> dict[str, np.ndarray]:
        """Calibrated 7-way probabilities (EMOTIONS order) from each modality's own classifier, for the
        modalities the clip has: face (mean over its faces), scene (the scene head on each frame's scene
        tokens, mean over frames), speech. Text evidence needs the head: transforms.score adds it."""
        from model.encoders.vision import SCENE_TOKENS  # stored tokens need no ViT loaded
        from schemas.labels import NUM_EMOTIONS
        out = {}
        face = _tokens(tokens, "face", NUM_EMOTIONS)
        if face is not None:
            out["face"] = _softmax(face / self.encoders.face_temperature).mean(0)
        scene = _tokens(self.pictures_only(tokens), "scene", SCENE_INPUT_DIM)  # no word on a leader, a card
        if scene is not None and len(scene) % SCENE_TOKENS == 0 and self.scene_reads:
            frames = scene.reshape(-1, SCENE_TOKENS, scene.shape[-1])
            if len(frames):
                logits, _ = self.encoders.scene.encode(frames)
                out["scene"] = _softmax(logits).mean(0)
        audio = _tokens(tokens, "audio", NUM_EMOTIONS)
        if audio is not None:
            out["speech"] = _softmax(audio).mean(0)
        return out


def _tokens(tokens: dict, modality: str, width: int) -> Optional[np.ndarray]:
    """A modality's tokens when present and of the width its evidence classifier reads (other encoders' tokens,
    e.g. a user's own --vision_model, give no evidence rather than a wrong one)."""
    t = tokens.get(modality)
    if t is None or not len(t) or np.asarray(t).shape[-1] != width:
        return None
    return np.asarray(t, np.float32)


def face_view(clip: ClipMedia) -> np.ndarray:
    """The frames faces are looked for in: the larger copy at the film's aspect when there is one (one per
    sampled frame, in the same order)."""
    if clip.face_frames is not None and len(clip.face_frames) == len(clip.frames):
        return np.asarray(clip.face_frames)
    return np.asarray(clip.frames)


def has_speech(wave: np.ndarray) -> bool:
    """Whether a clip's audio has a voice for the speech classifier (model.encoders.versions names the gate).
    Voicing (periodic frames) is cheap and rejects silence and noise, but sung notes and bowed strings are
    periodic too; Silero VAD, trained to tell speech from music, decides the rest."""
    from model.asr import vad_speech_seconds
    from model.encoders.audio import AUDIO_COLUMNS, FRAME_S, SAMPLE_RATE, audio_features
    wave = np.asarray(wave, np.float32)
    if wave.size < MIN_SPEECH_S * SAMPLE_RATE:
        return False
    voiced = audio_features(wave)[:, AUDIO_COLUMNS.index("voiced")]
    # a share of the clip, or enough voicing in all: a whole line in a long clip (a shot, a long cue) is speech too
    if not (len(voiced) and (voiced.mean() >= MIN_VOICED or voiced.sum() * FRAME_S >= MIN_VOICED_S)):
        return False
    return vad_speech_seconds(wave, VAD_THRESHOLD) >= MIN_VAD_SPEECH_S


def _softmax(z: np.ndarray) -> np.ndarray:
    """float32 probabilities of float64 logits (scipy subtracts the max first)."""
    from scipy.special import softmax
    return softmax(np.asarray(z, np.float64), axis=-1).astype(np.float32)
