"""The values that flow between the Beam steps. Plain frozen dataclasses: picklable, cheap to encode.

Keys: films are keyed by `film_id`; clips by `(film_id, clip_index)`.
Errors are values too (`FilmError`), emitted on the `errors` tagged output of any step.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Protocol, runtime_checkable

import numpy as np

ERRORS_TAG = "errors"  # tagged output name every fallible DoFn uses for FilmError values


@dataclasses.dataclass(frozen=True)
class FilmRef:
    """A film found by discovery, before it is opened."""
    path: str
    size_bytes: int
    film_id: str  # stable across runs: derived from the path, see transforms.discover.film_id_for
    fingerprint: str = ""  # content fingerprint with the sidecars', filled by the fingerprint step
    content_fingerprint: str = ""  # the film's bytes alone (a moved or renamed film is found by it)
    # when the file was last written, as the fingerprint step saw it (ns; None where unknown): a copy that set its
    # final size first (rsync --preallocate, robocopy, SMB) keeps its size while it is written
    modified_ns: Optional[int] = None


@dataclasses.dataclass(frozen=True)
class FilmInfo:
    """What probing the container tells us."""
    duration_s: float
    width: int
    height: int
    fps: float
    video_codec: Optional[str]
    audio_codec: Optional[str]
    has_video: bool
    has_audio: bool
    subtitle_streams: tuple[int, ...] = ()  # container stream indexes of embedded text subtitles
    variable_frame_rate: bool = False
    # those of subtitle_streams marked forced: lines only where the film leaves its main language (signs, a
    # foreign exchange), not the film's dialogue
    forced_subtitle_streams: tuple[int, ...] = ()
    # those for the deaf and hard of hearing (SDH), and those flagged default: a plain track of a language ranks
    # before its SDH one, a default one before the rest (transforms.subtitles); commentary tracks are not listed
    sdh_subtitle_streams: tuple[int, ...] = ()
    default_subtitle_streams: tuple[int, ...] = ()
    # width of a stored pixel over its height (anamorphic DVD and HDV masters: 720x480 shown at 16:9 is 32/27)
    sample_aspect: float = 1.0
    # the audio stream heard as the film's sound when probing chose one (a master's mono channel tracks, or an IMF
    # title's sound sequences: the one carrying the dialogue; a title's by its place in its container's streams);
    # None: transforms.probe.main_audio_stream's choice
    audio_stream: Optional[int] = None
    # the timecode of the first frame (studio and broadcast masters start at 01:00:00:00 or 10:00:00:00), seconds
    start_timecode_s: float = 0.0
    # decoders of embedded subtitle tracks that are pictures, not text (DVD VobSub, Blu-ray PGS, DVB)
    image_subtitle_codecs: tuple[str, ...] = ()
    # stream indexes of the picture tracks whose text is read by OCR (PGS, VobSub, DVB: transforms.image_subtitles)
    picture_subtitle_streams: tuple[int, ...] = ()
    # stream indexes of a DVB recording's teletext streams (read as text: transforms.teletext)
    teletext_streams: tuple[int, ...] = ()
    # stream indexes of CEA-608 caption tracks (a QuickTime master's c608 track): read as captions
    caption_streams: tuple[int, ...] = ()
    # the asset map of the IMF or DCP package this file is a track file of (its picture and sound are apart)
    package: Optional[str] = None
    # the black bars around the picture (letterbox, pillarbox) as shares of the stored frame: (top, bottom, left,
    # right), found by sampling frames across the film (transforms.picture_area); None: none found
    picture_area: Optional[tuple[float, float, float, float]] = None

    @property
    def display_aspect(self) -> float:
        """Height over width as the film is shown (stored size and pixel shape); 9/16 when unknown."""
        if not (self.width and self.height):
            return 9 / 16
        return self.height / (self.width * (self.sample_aspect or 1.0))

    @property
    def picture_aspect(self) -> float:
        """Height over width of the picture inside the bars as shown (display_aspect without bars)."""
        top, bottom, left, right = self.picture_area or (0.0, 0.0, 0.0, 0.0)
        return self.display_aspect * (1 - top - bottom) / (1 - left - right)


@dataclasses.dataclass(frozen=True)
class Cue:
    """One dialogue line with its times (from subtitles or speech recognition)."""
    start_s: float
    end_s: float
    text: str
    source: str = "subtitle"  # subtitle | asr
    language: Optional[str] = None
    words: tuple[tuple[str, float, float], ...] = ()  # ASR word timestamps: (word, start_s, end_s)


@runtime_checkable
class CueSource(Protocol):
    """Dialogue found in the decode pass (speech recognition): fed the film's 16 kHz mono audio as it is
    decoded, it returns the cues it has finished. The decoder plans subtitle clips from them and gives clips
    without a line the recognised words inside them. transforms.transcribe.AsrCueSource is the real one.

    Optional attributes the pipeline reads when present: `failures` (messages of chunks not transcribed),
    `details` (per-utterance confidences for the transcripts table), `language_probability`."""

    covered_until_s: float  # film time up to which every cue is final: clips ending before it may be emitted

    def feed(self, audio: "np.ndarray", t0_s: float) -> list["Cue"]:
        """Audio samples starting at film time t0_s -> the cues completed so far (in time order)."""

    def finish(self) -> list["Cue"]:
        """End of the film: the remaining cues."""


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """One planned clip."""
    clip_index: int
    start_s: float
    end_s: float
    segment_source: str  # subtitle | window | shot | asr
    text: Optional[str] = None
    text_source: str = "none"  # subtitle | asr | none
    language: Optional[str] = None
    context: tuple[str, ...] = ()  # previous dialogue lines (oldest first), for conversational context


@dataclasses.dataclass(frozen=True)
class FilmJob:
    """A film ready to decode: its identity, probe result, subtitle cues and the config it runs under."""
    ref: FilmRef
    info: FilmInfo
    cues: tuple[Cue, ...]  # empty when the film has no usable subtitles
    needs_asr: bool
    config_hash: str
    warnings: tuple["FilmError", ...] = ()  # non-fatal problems so far (subtitles): committed with the film


@dataclasses.dataclass
class DecodedClip:
    """The decode pass's output for one clip: sampled RGB frames and mono 16 kHz audio."""
    film_id: str
    spec: ClipSpec
    frames: np.ndarray  # uint8 [n_frames, S, S, 3], n_frames may be 0
    frame_times: np.ndarray  # float64 [n_frames], seconds
    audio: np.ndarray  # float32 [n_samples] at 16 kHz; empty when the film has no (decodable) audio
    film_path: str = ""  # so scoring's error and features rows name the film's file
    face_frames: Optional[np.ndarray] = None  # the same frames at the film's aspect, larger, for face detection
    damaged: tuple[str, ...] = ()  # "audio", "video": that stream's media in the clip is damaged (DamagedSpans)


@dataclasses.dataclass
class ClipFeatures:
    """Encoder outputs for one clip: modality name -> float32 [length, dim]; length 0 = missing."""
    film_id: str
    clip_index: int
    tokens: dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class FilmError:
    """A dead-letter value: becomes one row of the errors table."""
    film_path: str
    stage: str
    error_type: str
    message: str
    film_id: Optional[str] = None
    clip_index: Optional[int] = None
    fatal: bool = True
    ref: Optional[FilmRef] = None  # the film, when known: its failed manifest row keeps size and fingerprint

    @classmethod
    def from_exception(cls, ref_or_path, stage: str, exc: BaseException, **kw) -> "FilmError":
        path = getattr(ref_or_path, "path", ref_or_path)
        film_id = getattr(ref_or_path, "film_id", None)
        ref = ref_or_path if isinstance(ref_or_path, FilmRef) else None
        return cls(film_path=path, film_id=film_id, stage=stage, error_type=type(exc).__name__,
                   message=str(exc) or repr(exc), ref=ref, **kw)
