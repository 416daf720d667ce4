"""Decode each film ONCE with PyAV and stream DecodedClips out of that single pass (no Beam here: the
per-film step, transforms/film.py, drives it).

One sequential demux of video + audio (thread_type AUTO; one thread beside CPU models: decoding_threads). A
streaming planner keeps only the clips that are still open: for each, its frame sample times and the audio since
its start. Only the sampled frames are converted to RGB (at --image_size, straight from the decoder's pixel
format); shot cuts, when asked for, come from a tiny 64x64 copy of every frame. Audio is resampled to 16 kHz mono
as it arrives. Memory therefore depends on clip length, not film length.

Clip plans come from two kinds of sources:
  known ahead  subtitle cues and fixed windows (segment.plan_subtitles / plan_windows);
  found in the pass  shot cuts, and speech-recognised cues from an ASR cue source
               (transforms.elements.CueSource: feed(audio, t0_s) -> [Cue], finish() -> [Cue], covered_until_s).

`decode_clip` decodes one clip of a film (a seek, then the same pass): the labelled clips of training, the
report's thumbnails and its explain figure read frames and audio exactly as the pipeline does.
"""
from __future__ import annotations

import bisect
import collections
import dataclasses
import heapq
import logging
import math
from typing import Any, Iterable, Iterator, Optional, Sequence

import numpy as np

from model.encoders.audio import SAMPLE_RATE
from model.featurize import FRAME_EVERY_S, clip_sample_times
from transforms import hdr, segment
from transforms.elements import ClipSpec, Cue, CueSource, DecodedClip, FilmError, FilmJob, FilmRef
from transforms.language import clip_language
from transforms.picture_area import crop_converted, crop_still

log = logging.getLogger(__name__)

SHOT_THUMB = 64  # side of the thumbnail the cut detector compares
MAX_PACKET_WARNINGS = 5
SEEK_MARGIN_S = 1.0  # decode_clip seeks this far before the clip, so its first frames and audio are whole
# Where the picture's first key frame after that seek comes after the clip's first sample time (an MPEG-TS or PS,
# whose seek lands on a packet before the time, not on a key frame), it seeks again, twice as far back each time,
# at most this many times (seek_before).
SEEK_TRIES = 6
# A frame the next one follows more than this many frame times (1/fps) later is held on screen (a still stored
# once in a VFR encode): a sample time in the hold takes it, not the next frame (the next shot's), unless within a
# frame time of that one (FramePicker). Shorter gaps are frames that skip_nonref left out (two or three B-frames):
# there the nearest frame stands for the one not decoded.
HELD_FRAMES = 8
REORDER_PACKETS = 16  # the most frames H.264 and HEVC put out of order: how far back HeldStills looks
# Sound whose time is this far from where the track has got to: a hole (filled with silence) or, behind it, a
# stretch heard again (repeated packets: dropped, AudioOverlap); nearer, the frame follows on (push_audio).
AUDIO_SLACK_S = 0.05
MAX_AUDIO_ERRORS = 5  # consecutive undecodable audio packets before the track is given up
# A stream's timestamps that go back more than this, or (in a format whose clock may jump: MPEG-TS, MPEG-PS)
# leap forward more than that, restarted (Timeline). Other formats' forward gaps are real (a paused recording).
RESET_BACK_S, RESET_FORWARD_S = 1.0, 10.0
RESET_AGREE_S = 2.0  # a forward jump to within this of the other stream's time is a hole, not a restart (Timeline)
# Demuxers whose timestamps come from an index that only goes forward: their clock never restarts (Timeline). A
# damaged mp4 once came out 23 s long instead of 20 (a TimestampReset): its H.264 decoder, after random bytes, gave
# a run of frames with earlier times, read as a restart (in some test runs only: what varied was not found).
MONOTONIC_CLOCKS = frozenset({"mov", "mp4", "matroska", "webm", "mxf"})
# A whole-film pass whose media end this much before the header's duration (both) is reported (MediaEndedEarly).
SHORT_MEDIA_S, SHORT_MEDIA_SHARE = 2.0, 0.05
AVFMT_TS_DISCONT = 0x0200  # FFmpeg's flag for such formats (libavformat/avformat.h)
EXTEND_S = 60.0  # a plan made from the header's duration is continued this much at a time past it
# A stream that has reached its declared end and is this far (film seconds) behind the other has ended there: its
# clips go out without waiting for it (decode_film's hold_stalled). Far above the interleaving skew of real files.
STALL_S = 10.0
# A stalled sound's hold moves on in steps longer than the recogniser's max_gap_s (1 s), so that each step ends its
# buffer (transcribed at once) instead of padding it with silence a chunk at a time.
HOLD_STEP_S = 2.0
# A stream seen, then this far behind the other before its declared end (a hole in the picture or the sound: a
# damaged stretch, a paused capture; a still held in a VFR encode) is held too, as at its end: the clips it holds
# back go out with the last frame or without sound instead of keeping the other stream in memory for the whole
# hole (before 2026-12-05: an hour-long hole kept an hour of sound, 690 MB, or of frames). Where it resumes, it is
# read on. A stream never seen yet (a file written picture first, sound after) is still waited for.
LONG_STALL_S = 60.0
# The picture's decoder is drained (decode_film's drain_video) once its packets reach this close to its declared end.
DRAIN_MARGIN_S = 0.1
# A hole this long in the sound's timestamps is reported (AudioGap): a continuous track has none, so it is data the
# demuxer skipped unseen (a damaged Matroska cluster, MPEG-TS packets lost in reception).
AUDIO_HOLE_S = 0.5
# The same for the picture, in a broadcast capture only (MPEG-TS, MPEG-PS: a constant frame rate): elsewhere a
# frame held for seconds is how a variable-frame-rate encode stores a still (PictureGap).
PICTURE_HOLE_S = 0.5
# The rows that say where a film's picture or sound is damaged; the clips there are marked (clips table `damaged`).
DAMAGE_ROWS = ("VideoPacketError", "AudioPacketError", "AudioDecodeError", "AudioGap", "PictureGap", "ConcealedFrames",
               "TrackFileUnreadable", "ReadResumed", "MoreDamage")
CANCELLED_S = 1.0  # stereo heard as its channels' difference for this long is reported (StereoCancelled)
LINES_PAST_END_S = 1.0  # a subtitle line starting this long after the media's end is reported (LinesPastEnd)


class DecodeError(RuntimeError):
    """Nothing usable could be decoded from the film."""


# How the pass turns a film into samples beyond its options: part of the config hash, so a nightly run redoes films
# when it changes. 2: the mono downmix keeps a centred voice at its level (transforms.mono, 2026-12-03). 3: more
# than two channels fold as ITU-R BS.775 does (a 5.1 film's centre voice at -3 dB, was -10.7), cancelled stereo is
# heard, and the film's own sound track is chosen by titles, languages and the original flag too (2026-12-06). 4: the
# black bars around a film's picture (letterbox, pillarbox) are cut off before the models read a frame
# (transforms.picture_area), and an MP4 / MOV track's title is read (2026-12-07).
DECODE_RULE = "4"
# Which words a window or shot clip reads (part of the config hash of --segment window / shot runs only): 4
# (2026-12-07) as 3, and a line or utterance that runs past the film's end (or began before its start) is read by
# the clip that ends (starts) the film, where no clip held its midpoint; 3 (2026-12-04) each line or utterance whole in the clip holding its midpoint, by words when longer than
# --max_clip_s (segment.line_units); 2 (2026-12-04) the words of the subtitle lines said in it, then recognised
# words, by time (a line across a cut read as two fragments); 1: recognised words only.
WINDOW_TEXT_RULE = "4"
NEAR_S = 30.0  # a recognised utterance is at most Whisper's 30 s window: the lines it can meet lie this near a clip


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
    segment: str = "subtitle"  # subtitle | window | shot
    frames_per_clip: int = 4  # at most; a clip gets one frame per frame_every_s seconds (model.featurize.frames_for)
    frame_every_s: float = FRAME_EVERY_S
    image_size: int = 224
    window_s: float = 4.0
    hop_s: Optional[float] = None
    min_clip_s: float = 1.0
    max_clip_s: float = 8.0
    context_lines: int = 3
    shot_threshold: float = 27.0  # mean HSV difference (0-255), as PySceneDetect's ContentDetector
    asr_plan_step_s: float = 10.0  # plan ASR-driven subtitle clips in stretches at least this long
    face_width: int = 480  # a second copy of each sampled frame, this wide at the film's aspect, for face detection
    # Frames no other frame refers to (most B-frames) are not decoded: a sampled frame is then the nearest
    # reference frame, a frame or two from its time, and films with B-frames decode in about two thirds of the time.
    skip_nonref: bool = True
    # The codecs' deblocking (loop) filter is skipped (FFmpeg's skip_loop_filter=all; H.264 and HEVC): a 1080p H.264
    # film decodes in about 0.85 of the time, and the frames the models read (224 px, 480 px for faces) keep
    # their labels (docs/media.md). Reference frames carry the unfiltered edges forward until the next keyframe.
    skip_loop_filter: bool = True
    # FFmpeg's decoding threads per film; 0: its own choice (frame and slice threads, one per core); BY_FILM: one
    # thread for films up to ONE_THREAD_MAX_PIXEL_RATE, FFmpeg's choice above (`decoding_threads`). Where the models
    # score on the same CPU they keep every core busy, and one thread decodes with less CPU per frame (no thread
    # hand-offs): from_options picks BY_FILM there (see --decode_threads).
    decode_threads: int = 0
    # A JPEG 2000 picture decoded at a fraction of its size where that is still LOWRES_MARGIN times every copy the
    # models read (reduced_resolution); --decode_full_size turns it off.
    reduce_size: bool = True
    # The languages the text path reads (() = any; read_languages): a clip with a line of another takes its language
    # (transforms.language.clip_language), and such a line is no later line's context
    text_languages: tuple = ()

    @classmethod
    def from_options(cls, opts) -> "DecodeConfig":
        cfg = cls(**{f.name: getattr(opts, f.name) for f in dataclasses.fields(cls)
                     if getattr(opts, f.name, None) is not None and f.name != "text_languages"})
        if getattr(opts, "text_languages", None) is not None:
            cfg = dataclasses.replace(cfg, text_languages=read_languages(opts))
        if getattr(opts, "decode_threads", None) is None:  # the default: by where the models run
            models_on_cpu = getattr(opts, "score", False) and getattr(opts, "device", "cpu") == "cpu"
            cfg = dataclasses.replace(cfg, decode_threads=BY_FILM if models_on_cpu else 0)
        return cfg


BY_FILM = -1
# One decoding thread keeps ahead of the models up to 1080p at 30 fps: a 1080p24 H.264 High-profile film decodes at
# about 14x real time on one thread of this project's 2-core EPYC, where the models score about 10x; a 4K film would
# decode at a quarter of that, so above this rate FFmpeg's own threads decode it.
ONE_THREAD_MAX_PIXEL_RATE = 1920 * 1080 * 30


def decoding_threads(cfg: DecodeConfig, info) -> int:
    """FFmpeg threads for a film of this probe's FilmInfo (0: FFmpeg's choice), by cfg.decode_threads."""
    if cfg.decode_threads != BY_FILM:
        return max(0, cfg.decode_threads)
    rate = (info.width or 0) * (info.height or 0) * (info.fps or 30.0)
    return 1 if rate <= ONE_THREAD_MAX_PIXEL_RATE else 0


def read_languages(opts) -> tuple[str, ...]:
    """The languages whose lines a run's text path reads (--text_languages; () = any, also where --modalities leaves
    text out: subtitles are then read in any language)."""
    from model.featurize import parse_modalities
    from transforms.language import parse_text_languages
    modalities = getattr(opts, "modalities", None) or "text"
    return parse_text_languages(opts.text_languages) if "text" in parse_modalities(modalities) else ()


def plan_known_clips(job: FilmJob, cfg: DecodeConfig, asr: bool = False) -> Optional[list[ClipSpec]]:
    """The whole plan when it is known before decoding; None when clips are found during the pass.

    asr: a speech-recognition cue source runs in the pass (its utterances become the cues in subtitle mode).
    """
    duration = job.info.duration_s
    if cfg.segment == "shot" or duration <= 0:
        return None
    if cfg.segment == "subtitle" and not job.cues and asr:
        return None  # the recognised utterances will be the cues
    if cfg.segment not in ("subtitle", "window"):
        raise ValueError(f"unknown segment strategy {cfg.segment!r}")
    return plan_span(job, cfg, 0.0, duration)


def plan_span(job: FilmJob, cfg: DecodeConfig, start_s: float, end_s: float) -> list[ClipSpec]:
    """The clips of [start_s, end_s) of a film whose plan is known: its subtitle lines (the gaps as windows), or
    windows. The whole film's plan, and the plan continued past a header's understated duration."""
    if cfg.segment == "subtitle" and job.cues:
        # a continued plan leaves out the lines begun before it: the plan before gave each its whole text (before
        # 2026-12-06 a line across the header's end was read twice, by the clips on both sides)
        cues = job.cues if start_s <= 0 else [c for c in job.cues if c.start_s >= start_s]
        return segment.plan_subtitles(cues, end_s, min_clip_s=cfg.min_clip_s, max_clip_s=cfg.max_clip_s,
                                      window_s=cfg.window_s, start_s=start_s, text_languages=cfg.text_languages)
    return segment.plan_windows(end_s, cfg.window_s, cfg.hop_s, cfg.min_clip_s, start_s=start_s)


# ---------------------------------------------------------------------------------------------------------
# Pieces of the streaming planner

def _shaped_as(frame, width: int, height: int) -> bool:
    """Whether a decoded frame has the shape of a width x height one, at any size (within 2 %: odd sizes rounded)."""
    return bool(width and height and frame.width and frame.height) and \
        abs(frame.width * height / (frame.height * width) - 1) < 0.02


class FramePicker:
    """Resolves requested sample times to the decoded frame on screen then (the nearest, where frames come at
    about the film's rate), converting only the chosen frames."""

    def __init__(self, width: int, height: Optional[int] = None, face_size: Optional[tuple[int, int]] = None,
                 stored_size: Optional[tuple[int, int]] = None, nominal_s: float = 1 / 25,
                 area: Optional[tuple[float, float, float, float]] = None):
        self.width, self.height = width, height or width
        self.face_size = face_size  # (w, h): a second, larger copy at the picture's aspect for the face detector
        self.stored_size = stored_size  # the probed (w, h) that face_size was made for
        self.area = area  # the bars around the picture in frames of stored_size (FilmInfo.picture_area): cut off
        self.nominal_s = nominal_s  # a frame's time at the film's frame rate
        self._targets: list[tuple[float, int, Any]] = []  # heap of (time, seq, (key, slot))
        self._seq = 0
        self._prev: Optional[tuple[float, Any]] = None
        self._prev_rgb: Optional[np.ndarray] = None
        self.results: dict[Any, dict[int, tuple[float, np.ndarray]]] = {}
        self.converted = 0
        self.last_time = -math.inf

    def request(self, key, times: list[float]) -> None:
        self.results.setdefault(key, {})
        for slot, t in enumerate(times):
            heapq.heappush(self._targets, (t, self._seq, (key, slot)))
            self._seq += 1

    def pending(self) -> bool:
        return bool(self._targets)

    def next_target(self) -> float:
        return self._targets[0][0] if self._targets else math.inf

    def _rgb(self, frame) -> tuple[np.ndarray, Optional[np.ndarray]]:
        self.converted += 1
        # HDR (PQ, HLG), wide-gamut SDR and DCP X'Y'Z' frames as their SDR BT.709 picture: what every face and
        # photo the models learnt from is (before 2026-12-06 only PQ / HLG frames, all read as BT.2020)
        convert = (hdr.converter(frame)
                   or (lambda f, w, h: f.to_ndarray(width=w, height=h, format="rgb24")))
        # Phone and some camera footage is stored sideways with a display rotation (counterclockwise degrees):
        # turned as a player shows it, so faces are upright (a face frame of a portrait video is portrait).
        turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4
        face = self._face(frame, convert, sideways=turns % 2 == 1) if self.face_size else None
        rgb = self._picture(frame, convert, self.width, self.height)
        if turns:
            rgb = np.ascontiguousarray(np.rot90(rgb, turns))
            face = np.ascontiguousarray(np.rot90(face, turns)) if face is not None else None
        return rgb, face

    def _face(self, frame, convert, sideways: bool = False) -> np.ndarray:
        """The face detector's copy. A frame of another shape than the probe's (a capture joined from an HD
        programme and 4:3 adverts) is fitted inside it at its own shape, square pixels, the rest black: before
        2026-12-05 it was stretched to the first part's shape (a 4:3 part after a 16:9 one: faces 33 % wide).
        Where the probe found no size (a TS whose one frame it did not reach), the copy's own shape stands for it
        (before 2026-12-05: a division by zero that failed the film). `sideways`: the frame is shown turned a
        quarter, so the copy is made that much taller, to be --face_width wide as shown: before 2026-12-07 a
        portrait phone video stored sideways was searched at 270 px wide, one stored upright at 480 (faces of 2.5-3.5
        % of the height found in the one, not the other)."""
        fw, fh = self.face_size
        if sideways:
            fw, fh = max(2, int(round(fw * fw / fh / 2)) * 2), fw
        sw, sh = self.stored_size if all(self.stored_size or ()) else (fw, fh)
        if not frame.width or not frame.height or _shaped_as(frame, sw, sh):
            return self._picture(frame, convert, fw, fh)
        scale = min(fw / frame.width, fh / frame.height)
        w, h = (max(2, int(round(n * scale / 2)) * 2) for n in (frame.width, frame.height))
        out = np.zeros((fh, fw, 3), np.uint8)
        y, x = (fh - min(h, fh)) // 2, (fw - min(w, fw)) // 2
        out[y:y + h, x:x + w] = convert(frame, w, h)[:fh, :fw]
        return out

    def _picture(self, frame, convert, width: int, height: int) -> np.ndarray:
        """The frame's picture at width x height: inside its bars where the frame has the stored frame's shape, at
        any size (a programme that changes resolution part way; since 2026-12-07: transforms.picture_area; before,
        the bars went to the models), else the whole frame."""
        area = self.area if _shaped_as(frame, *(self.stored_size or (0, 0))) else None
        return crop_converted(lambda w, h: convert(frame, w, h), area, width, height)

    def empty(self) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        face = np.zeros((0, self.face_size[1], self.face_size[0], 3), np.uint8) if self.face_size else None
        return np.zeros((0, self.height, self.width, 3), np.uint8), np.zeros((0,), np.float64), face

    def stack(self, chosen: list) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """[(time, (rgb, face_rgb)), ...] -> frames, times, face frames (None without a face size)."""
        if not chosen:
            return self.empty()
        faces = np.stack([c[1][1] for c in chosen]) if self.face_size else None
        return np.stack([c[1][0] for c in chosen]), np.array([c[0] for c in chosen], np.float64), faces

    def _takes_next(self, target: float, t: float) -> Optional[bool]:
        """Whether a sample time up to the frame at t takes it rather than the frame before (None: neither).
        Before 2026-12-06 it took the nearer of the two, whatever the gap: during a still held for seconds in a
        VFR encode that was the next shot's first frame, often in the next clip; and the picture's first frame
        stood for the seconds before it (a picture that starts after its sound)."""
        if self._prev is None:  # before the picture's first frame nothing is on screen
            return True if t - target <= self.nominal_s else None
        if t - self._prev[0] > HELD_FRAMES * self.nominal_s:  # the frame before is held to t
            return t - target <= self.nominal_s
        return abs(target - self._prev[0]) > abs(t - target)

    def on_frame(self, frame, t: float) -> None:
        cur_rgb = None
        while self._targets and self._targets[0][0] <= t:
            target, _, (key, slot) = heapq.heappop(self._targets)
            takes_next = self._takes_next(target, t)
            if takes_next is None:
                continue  # the slot stays empty
            if not takes_next:
                if self._prev_rgb is None:
                    self._prev_rgb = self._rgb(self._prev[1])
                choice = (self._prev[0], self._prev_rgb)
            else:
                if cur_rgb is None:
                    cur_rgb = self._rgb(frame)
                choice = (t, cur_rgb)
            self.results[key][slot] = choice
        self._prev, self._prev_rgb, self.last_time = (t, frame), cur_rgb, t

    def hold(self, until: float, show: bool = True) -> None:
        """No newer frame has come up to `until`: the targets up to it take the last frame, still on screen as
        players show it (show=False: nothing, for a stretch whose packets fail)."""
        while self._targets and self._targets[0][0] <= until:
            target, _, (key, slot) = heapq.heappop(self._targets)
            if show and self._prev is not None:
                if self._prev_rgb is None:
                    self._prev_rgb = self._rgb(self._prev[1])
                self.results[key][slot] = (self._prev[0], self._prev_rgb)

    def finish(self, show: bool = True) -> None:
        """The stream has ended: the last frame stays on screen to the end of the film (a still image over a
        podcast, a picture that ends before the sound)."""
        self.hold(math.inf, show)

    def take(self, key) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        got = self.results.pop(key, {})
        return self.stack([got[s] for s in sorted(got)])


class HeldStills:
    """skip_nonref leaves out the frames no other frame refers to; a still that a VFR encode stores once, held on
    screen for seconds, may be one of them, and the frame before it then stood for the whole hold (before 2026-12-06:
    a still after a cut, the last frame of the shot before). Such a frame's packet is found by its time: the next one
    among the picture's latest packets (a B-frame's later reference comes before it) is more than HELD_FRAMES frame
    times on. It is decoded (decode_film's decode_video); a packet only taken for one costs one frame more."""

    def __init__(self, held_ticks: float):
        self.held_ticks = held_ticks  # HELD_FRAMES frame times in the stream's time base
        self.recent: collections.deque = collections.deque(maxlen=REORDER_PACKETS)

    def held(self, pts: int) -> bool:
        later = [q for q in self.recent if q > pts]
        self.recent.append(pts)
        return bool(later) and min(later) - pts > self.held_ticks


class Timeline:
    """One stream's presentation times, made continuous where its timestamps restart: recordings joined from
    MPEG-TS captures, DVD VOBs. Without it a 40 s recording whose clock restarted at 20 s gave clips for the
    first 20 s only. As FFmpeg's own player does for such formats (a jump beyond its threshold is a reset),
    each stream picks up where it left off; small back steps (reordering) pass unchanged. A jump is a restart
    only when the next time goes on from it: one stray timestamp (a damaged packet of a broadcast capture) is
    placed where the stream had got to and the clock stays (before 2026-12-05 each stray one shifted the rest of
    the film, 2.6 s on a 20 s capture with a damaged stretch)."""

    def __init__(self, forward_s: float = math.inf, restarts: bool = True, horizon: float = math.inf):
        self.forward_s = forward_s  # a jump forward beyond this is a restart too
        # A leap past this film time (the declared end, and a margin) that leaves the stream's own time and the
        # other stream's far behind is a damaged timestamp, taken as a jump: a damaged AVI chunk once put the sound
        # at 49 hours into an 8 s film, and the silence and clips up to there took 11 GB (before 2026-12-06).
        self.horizon = horizon
        # False where the container's clock cannot restart (an mp4's sample tables, Matroska's clusters): a run of
        # earlier times is then a decoder's output after damaged data, held where the stream had got to
        self.restarts = restarts
        self.shift = 0.0  # added to the stream's own times
        self.end: Optional[float] = None  # where the stream has got to (time + duration of its newest frame)
        self.resets: list[float] = []  # film times of the restarts
        self.leaps: list[tuple[float, float]] = []  # (film time, the time it said) of each damaged timestamp (horizon)
        self._jump: Optional[tuple[float, float]] = None  # (shift it would take, film time): a jump not yet confirmed

    def _follows(self, t: float) -> bool:
        return self.end is None or self.end - RESET_BACK_S <= t <= self.end + self.forward_s

    def time(self, t: float, duration: float, other: Optional[float] = None) -> float:
        """The film time of the stream's next frame at its own time t. other: where the film's other stream has
        got to (-inf before it has begun): a jump forward to where it already is, is a hole in this stream (its
        picture dropped out while the sound went on), not a restart (before 2026-12-05 such a TS picture ran early
        against its sound after it)."""
        t += self.shift
        jump, self._jump = self._jump, None
        placed = False  # a stray time (behind), put where the stream had got to: it does not move the stream on
        hole = other is not None and t > (self.end or 0.0) and abs(t - other) <= RESET_AGREE_S
        wild = (self.end is not None and t > max(self.horizon, self.end + LONG_STALL_S)
                and (other is None or t > other + LONG_STALL_S))
        if wild:  # never a restart: placed where the stream had got to, as long as its times stay so far out
            self.leaps.append((self.end, t))
            t = self.end
        elif not hole and not self._follows(t):
            if self.restarts and jump is not None and self._follows(t + jump[0]):  # it goes on from the jump: a restart
                self.shift += jump[0]
                self.resets.append(jump[1])
                t += jump[0]
            else:  # a jump, or a stray timestamp: placed where the stream had got to until the next one tells
                self._jump = (self.end - t, self.end)
                t, placed = self.end, True
        # A frame counts for at most the back-step threshold, so times that only go forward never read as a
        # restart however long a frame is held (a 5 s title card in a VFR encode, or the gap a damaged stretch
        # leaves): before, that long step became the expected duration, the next frame looked 1 s "back", and
        # a 10 s film ran to 125 s. A stray time placed where the stream had got to moves nothing on: a run of them
        # (an H.264 decoder's frames after a damaged stretch, their times behind the frame it gave first) each moved
        # the end by the step before it, so each next one was behind again: a damaged 52 s mp4 ran to 207 s, its
        # sound lost after 40 s (before 2026-12-06).
        if not placed:
            self.passed(t, duration)
        return t

    def passed(self, t: float, duration: float) -> None:
        """A frame at film time t (one without a time of its own is placed so, after the one before it): the
        stream has got to its end."""
        end = t + min(duration, RESET_BACK_S)
        self.end = end if self.end is None else max(self.end, end)


@dataclasses.dataclass
class Damage:
    """A stretch of one stream's packets that would not decode (a damaged sector, a bad copy): skipped, and
    reported once as one warning row when the stream decodes again or the film ends. Before 2026-12-05 a stream
    of audio gave up after five bad packets in a row, so one damaged second cost the rest of the film its sound,
    and each bad video packet was its own row."""
    stream: str  # "audio" | "video"
    start_s: float  # film time where the stream had got to
    reason: str  # the first packet's error
    packets: int = 1

    def message(self, resumed_s: Optional[float]) -> str:
        what = f"{self.stream} undecodable from {self.start_s:.2f}s"
        skipped = f"({self.packets} packets skipped: {self.reason})"
        if resumed_s is None:
            return f"{what} to the end {skipped}"
        if resumed_s < self.start_s:  # (bytes repeated in the file: the stream went on with earlier times)
            return (f"{self.stream} undecodable at {self.start_s:.2f}s {skipped}; it went on with the times of "
                    f"{resumed_s:.2f}s (data repeated or misplaced in the file?)")
        return f"{what} to {resumed_s:.2f}s {skipped}" + ("; silent there" if self.stream == "audio" else "")

    def end_s(self, resumed_s: float) -> float:
        """Where the damage ends in film time: where the stream resumed, or, where it went on with earlier times (the
        file repeats a stretch), as far past the start as it went back: what follows is that stretch again."""
        return resumed_s if resumed_s >= self.start_s else 2 * self.start_s - resumed_s


class DamagedSpans:
    """Stretches of film time whose picture or sound is not the film as made, to mark the clips they touch
    (the clips table's `damaged`): packets that would not decode (Damage), sound the file lacks (an AudioGap), and
    frames the decoder concealed (FFmpeg's corrupt flag: damaged data it did not reject, filled in from what was
    around it). Bit flips in an H.264 film give such frames and no error at all: before 2026-12-06 nothing said so.
    The picture is built on a damaged frame until the next whole key frame (HEAL_S at most: a stream refreshed
    without key frames heals within its refresh period); the sound's frames stand alone."""
    HEAL_S = 10.0

    def __init__(self):
        self.closed: list[tuple[str, float, float]] = []
        self.open: dict[str, list[float]] = {}  # stream -> [start, last damaged time]
        self.failed: set[str] = set()  # streams whose open span began with packets that failed (a row says so)
        self.concealed: list[float] = []  # times of the first few concealed frames no other row covers
        self.n_concealed = 0
        self.n_concealed_sound = 0

    def begin(self, stream: str, t: float, failed: bool = False) -> None:
        if stream not in self.open and failed:
            self.failed.add(stream)
        span = self.open.setdefault(stream, [t, t])
        span[1] = max(span[1], t)

    def end(self, stream: str, t: float) -> None:
        span = self.open.pop(stream, None)
        self.failed.discard(stream)
        if span is not None:
            self.closed.append((stream, span[0], max(t, span[0])))

    def add(self, stream: str, start: float, end: float) -> None:
        self.closed.append((stream, start, end))

    def on_picture(self, t: float, corrupt: bool, key: bool) -> None:
        """A decoded frame at film time t."""
        if corrupt:
            if "video" not in self.failed:  # (after packets that failed, concealment is their doing: one row)
                self.n_concealed += 1
                self.concealed += [t][:3 - len(self.concealed)]
            self.begin("video", t)
        elif "video" in self.open and (key or t - self.open["video"][1] > self.HEAL_S):
            self.end("video", t if key else self.open["video"][1] + self.HEAL_S)

    def on_sound(self, start: float, end: float) -> None:
        """A decoded sound frame the decoder flagged as concealed."""
        self.n_concealed_sound += 1
        self.concealed += [start][:3 - len(self.concealed)]
        self.add("audio", start, end)

    def streams(self, start: float, end: float) -> tuple[str, ...]:
        """The streams damaged anywhere in [start, end)."""
        hit = {s for s, a, b in self.closed if a < end and b > start}
        hit |= {s for s, (a, _) in self.open.items() if a < end}
        return tuple(sorted(hit))

    def drop_before(self, t: float) -> None:
        self.closed = [c for c in self.closed if c[2] > t]


def fresh_audio_decoder(stream):
    """A new decoder for an audio stream, set up from its parameters (codec, extradata, rate, layout)."""
    import av
    ctx = stream.codec_context
    fresh = av.CodecContext.create(ctx.name, "r")
    fresh.extradata = ctx.extradata
    fresh.sample_rate = ctx.sample_rate
    fresh.layout = ctx.layout
    return fresh


class AudioBuffer:
    """Contiguous mono samples at the film's own rate from t0; old samples are dropped once no open clip needs
    them. Clips are resampled to 16 kHz when sliced, from samples on the film's own sample grid, so a clip's
    audio does not depend on where decoding started (decode_clip after a seek == the whole-film pass)."""

    def __init__(self, rate: int = SAMPLE_RATE):
        self.rate = int(rate)
        self.t0: Optional[float] = None
        self._chunks: list[np.ndarray] = []
        self._n = 0

    @property
    def buffered_s(self) -> float:
        return self._n / self.rate

    @property
    def end_time(self) -> float:
        return -math.inf if self.t0 is None else self.t0 + self._n / self.rate

    def append(self, samples: np.ndarray, t_first: float) -> None:
        if self.t0 is None:
            self.t0 = t_first
        if samples.size:
            self._chunks.append(samples)
            self._n += samples.size

    def restart(self, t: float) -> None:
        """Nothing buffered: the next samples start at t (after a hole whose clips have gone out)."""
        assert not self._n
        self._chunks, self.t0 = [], max(t, self.end_time)

    def slice(self, start: float, end: float) -> np.ndarray:
        """[start, end) as 16 kHz mono float32. A clip that begins before the sound does (a film whose sound starts
        after its picture) has silence up to the sound's first sample, so its samples keep their times: before
        2026-12-07 they were moved to the clip's start and the clip ran short (found in review)."""
        if self.t0 is None or not self._chunks:
            return np.zeros((0,), np.float32)
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        data = self._chunks[0]
        a = max(0, int(round((start - self.t0) * self.rate)))
        b = max(a, min(data.size, int(round((end - self.t0) * self.rate))))
        out = to_sample_rate(data[a:b], self.rate)
        lead = int(round((min(self.t0, end) - start) * SAMPLE_RATE)) if b > a else 0
        return np.concatenate([np.zeros(lead, np.float32), out]) if lead > 0 else out

    def drop_before(self, t: float) -> None:
        if self.t0 is None or t <= self.t0 or not self._chunks:
            return
        if math.isinf(t):  # nothing open: keep only the time anchor
            self._chunks, self.t0, self._n = [], self.end_time, 0
            return
        data = np.concatenate(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        k = min(data.size, int((t - self.t0) * self.rate))
        self._chunks, self._n, self.t0 = [data[k:]], data.size - k, self.t0 + k / self.rate


def less_first(chunks: list[np.ndarray], n: int) -> list[np.ndarray]:
    """Sample arrays without their first n samples in all."""
    if n <= 0:
        return chunks
    out = []
    for chunk in chunks:
        out.append(chunk[min(n, chunk.size):])
        n -= min(n, chunk.size)
    return out


def to_sample_rate(samples: np.ndarray, rate: int) -> np.ndarray:
    """Mono samples at `rate` -> SAMPLE_RATE float32 (soxr, high quality; a copy in every case)."""
    if rate == SAMPLE_RATE or not samples.size:
        return np.array(samples, np.float32)
    import soxr
    return np.asarray(soxr.resample(samples, rate, SAMPLE_RATE), np.float32)


class ShotDetector:
    """Cuts where consecutive 64x64 HSV thumbnails differ by more than a threshold (ContentDetector's rule)."""

    def __init__(self, threshold: float, min_gap_s: float):
        self.threshold, self.min_gap_s = threshold, min_gap_s
        self._prev: Optional[np.ndarray] = None
        self._last_cut = 0.0

    def on_frame(self, frame, t: float) -> Optional[float]:
        import cv2  # local: only shot mode pays for it
        thumb = frame.to_ndarray(width=SHOT_THUMB, height=SHOT_THUMB, format="rgb24")
        hsv = cv2.cvtColor(thumb, cv2.COLOR_RGB2HSV).astype(np.int16)
        prev, self._prev = self._prev, hsv
        if prev is None:
            return None
        score = float(np.abs(hsv - prev).mean())
        if score >= self.threshold and t - self._last_cut >= self.min_gap_s:
            self._last_cut = t
            return t
        return None


@dataclasses.dataclass
class _OpenClip:
    spec: ClipSpec
    final: bool = True  # False while its end may still move (open shot / window of unknown-length film)


def planned_late(segment: Optional[str], segment_sources: Iterable[str]) -> bool:
    """Whether a run planned a film's clips as the film played, so that every clip of it (the windows between
    recognised utterances too) took its frames from the grid: shot segmentation (`segment`, or a `shot` clip among
    them: a clip manifest names no run's --segment), or speech recognition planning the clips (an `asr` clip among
    them). A window plan of a film without a known duration is planned late too, which a clips table does not show:
    such clips decoded alone may take frames up to 0.17 s from the run's."""
    return segment == "shot" or bool({"asr", "shot"} & set(segment_sources))


def grid_step(cfg: DecodeConfig) -> float:
    """The grid's spacing: a frame per sample of the shortest clip."""
    return max(cfg.min_clip_s / max(cfg.frames_per_clip, 1), 0.04)


def grid_sample_times(start_s: float, end_s: float, cfg: DecodeConfig) -> list[float]:
    """The frame times a clip planned late takes in the pass: for each of its sample times, the nearest grid point
    inside it (the earlier of two as near; StreamingPlanner.frames_for). The grid is summed step by step from the
    film's start, as the pass sums it, so the times are the same floats. decode_clip asks them for such a clip, so
    `pipeline.report --explain` sees the frames the run scored (before 2026-12-07 it decoded the clip's own sample
    times: up to 0.17 s apart, other frames across a cut)."""
    step, g, points = grid_step(cfg), 0.0, []
    while g < end_s:
        points.append(g)
        g += step
    return nearest_grid_points(points, start_s, end_s, cfg)


def nearest_grid_points(points: Sequence[float], start_s: float, end_s: float, cfg: DecodeConfig) -> list[float]:
    """For each of a clip's sample times, the nearest of the grid points (in time order) inside the clip, the earlier
    of two as near; [] where none is inside. The pass (StreamingPlanner.frames_for) and a clip decoded alone
    (grid_sample_times) choose by this one rule."""
    inside = [p for p in points if start_s - 1e-9 <= p < end_s]
    if not inside:
        return []
    ideal = clip_sample_times(start_s, end_s, cfg.frames_per_clip, cfg.frame_every_s)
    return [min(inside, key=lambda p: abs(p - t)) for t in ideal]


class StreamingPlanner:
    """Holds the clips not yet emitted, in index order, and says which are complete."""

    def __init__(self, job: FilmJob, cfg: DecodeConfig, picker: FramePicker, cue_source: Optional[CueSource] = None,
                 has_video=True, plan: Optional[list[ClipSpec]] = None, plan_on_grid: bool = False):
        self.job, self.cfg, self.picker, self.cue_source = job, cfg, picker, cue_source
        self.plan_on_grid = plan_on_grid  # the given plan's clips were planned late by their run (grid_sample_times)
        self.has_video = has_video
        self.queue: list[_OpenClip] = []
        self.next_index = plan[0].clip_index if plan else 0
        self.asr_cues: list[Cue] = []
        self.said: list[str] = []  # the last lines emitted: the context of the next clip with a line
        self.given_plan = plan is not None  # one clip decoded again (decode_clip): its context is the caller's
        self.lines = sorted((c for c in job.cues if c.text), key=lambda c: c.start_s)
        self.line_starts = [c.start_s for c in self.lines]
        self.longest_line_s = max((c.end_s - c.start_s for c in self.lines), default=0.0)
        self.film_end: Optional[float] = None  # where the film's last clip ends, once known (end_film)
        known = plan if plan is not None else plan_known_clips(job, cfg, asr=cue_source is not None)
        self.open_ended = known is None and not (cfg.segment == "subtitle" and cue_source is not None)
        self.asr_planning = known is None and not self.open_ended
        # Clips planned late (shots, ASR utterances) pick frames from a fine grid kept since their start.
        self.grid_mode = self.open_ended or self.asr_planning
        self.planned_until = 0.0
        self.shot_start = 0.0
        self.shot_limit = cfg.max_clip_s if cfg.segment == "shot" else cfg.window_s
        self.grid_step = grid_step(cfg)
        self.grid_next = 0.0
        # A plan made from the header's duration goes on while the media does (a clock that restarted, a
        # duration estimated from the bit rate): the end of such a film used to be left out without a word.
        self.extendable = plan is None and known is not None
        self.plan_end = self.header_end = max([job.info.duration_s] + [c.end_s for c in known or []])
        for spec in known or []:
            self._add(spec)

    # -- planning
    def _add(self, spec: ClipSpec, final: bool = True) -> None:
        spec = dataclasses.replace(spec, clip_index=self.next_index)
        self.next_index += 1
        self.queue.append(_OpenClip(spec, final))
        if final and self.has_video and not self.grid_mode:
            late = self.given_plan and self.plan_on_grid
            self.picker.request(spec.clip_index, grid_sample_times(spec.start_s, spec.end_s, self.cfg) if late else
                                clip_sample_times(spec.start_s, spec.end_s, self.cfg.frames_per_clip,
                                                  self.cfg.frame_every_s))

    def _close_shot(self, end: float) -> None:
        """An open-ended stretch ends (a cut, the length limit, or the film end): it becomes final clips."""
        if end - self.shot_start <= 1e-6:
            return
        source = "shot" if self.cfg.segment == "shot" else "window"
        for s, e in segment.split_span(self.shot_start, end, self.shot_limit):
            self.queue.append(_OpenClip(ClipSpec(self.next_index, s, e, source), final=True))
            self.next_index += 1
        self.shot_start = end

    def _extend(self) -> None:
        """Plan the next EXTEND_S past the end of the plan, as the film would have been planned."""
        for spec in plan_span(self.job, self.cfg, self.plan_end, self.plan_end + EXTEND_S):
            self._add(spec)
        self.plan_end += EXTEND_S

    def on_video_time(self, t: float, cut: Optional[float]) -> None:
        """Called before the frame at t is handed to the picker (t is the newest film time seen)."""
        while self.extendable and t >= self.plan_end:
            self._extend()
        self.request_grid(t)
        if not self.open_ended:
            return
        # a cut within min_clip_s of the film's declared end is ignored, as plan_shots ignores it (before 2026-12-07
        # the last shot clip could be a sliver: a cut at 5.6 s of a 6 s film gave [5.6, 6.04))
        declared = self.job.info.duration_s
        if (cut is not None and cut - self.shot_start >= self.cfg.min_clip_s
                and not (declared > 0 and declared - cut < self.cfg.min_clip_s)):
            self._close_shot(cut)
        elif t - self.shot_start >= self.shot_limit + self.cfg.min_clip_s:
            # Split a long stretch only once the rest is known to be long enough: no sliver clip at the end.
            self._close_shot(self.shot_start + self.shot_limit)

    def request_grid(self, t: float) -> None:
        """Clips planned late: the picker is asked for the grid points up to film time t. At the film's end, those
        after the picture's, which take its last frame held (picker.finish) as a window or subtitle plan's clips do
        (before 2026-12-06 shot clips and clips of recognised speech there had no frame)."""
        if self.grid_mode and self.has_video:
            while self.grid_next <= t:
                self.picker.request(("grid", self.grid_next), [self.grid_next])
                self.grid_next += self.grid_step

    def on_asr(self, cues: list[Cue], finished: bool, end_of_film: float) -> None:
        self.asr_cues.extend(cues)
        if not self.asr_planning:
            return
        covered = end_of_film if finished else getattr(self.cue_source, "covered_until_s", 0.0)
        if not finished and covered - self.planned_until < self.cfg.asr_plan_step_s:
            return
        pending = [c for c in self.asr_cues if c.end_s > self.planned_until and c.start_s < covered]
        until = end_of_film if finished else max([covered] + [c.end_s for c in pending])
        if until - self.planned_until <= 1e-6:
            return
        if finished and not pending and 0 < until - self.planned_until < self.cfg.min_clip_s and self.next_index:
            # The film ends less than --min_clip_s after the clips planned so far (its last frame outlasting the
            # last utterance): the last clip takes it if it is not out yet, else it is left out. Before
            # 2026-12-05 it was a clip of its own, 0.03 s long, labelled from nothing.
            if self.queue and abs(self.queue[-1].spec.end_s - self.planned_until) < 1e-6:
                self.queue[-1].spec = dataclasses.replace(self.queue[-1].spec, end_s=until)
            self.planned_until = until
            return
        for spec in segment.plan_subtitles(pending, until, min_clip_s=self.cfg.min_clip_s,
                                           max_clip_s=self.cfg.max_clip_s, window_s=self.cfg.window_s,
                                           start_s=self.planned_until, text_languages=self.cfg.text_languages):
            self._add(spec)
        self.planned_until = until

    # -- completion
    def ready(self, video_done_until: float, audio_done_until: float, asr_done_until: float,
              read_until: float = math.inf) -> list[ClipSpec]:
        """The clips complete and free to go out, in order. read_until: the film time the media has surely run to
        (the newest frame or sample read)."""
        out = []
        while self.queue and self.queue[0].final:
            spec = self.queue[0].spec
            if not self.has_video:
                frames_ready = True
            elif self.grid_mode:
                frames_ready = video_done_until >= spec.end_s
            else:
                frames_ready = self.picker.next_target() > spec.end_s
            if (frames_ready and audio_done_until >= spec.end_s and asr_done_until >= spec.end_s
                    and not self._waits_for_film_end(spec, read_until)):
                out.append(self.queue.pop(0).spec)
            else:
                break
        return out

    def finish(self, end_of_film: float) -> None:
        if self.open_ended:
            self._close_shot(max(end_of_film, self.shot_start))
        if self.asr_planning:
            self.on_asr([], True, end_of_film)

    def end_film(self) -> None:
        """Every clip is planned and the ones past the media's end are dropped: the clips that end where the last
        one does read what is said past it (_clip_text)."""
        self.film_end = max((c.spec.end_s for c in self.queue), default=math.inf)

    def _lines_near(self, spec: ClipSpec) -> list[Cue]:
        """The subtitle lines that may meet the clip or the utterances said in it (a bisect: linear on long films)."""
        return self.lines[bisect.bisect_left(self.line_starts, spec.start_s - self.longest_line_s - NEAR_S):
                          bisect.bisect_left(self.line_starts, spec.end_s + NEAR_S)]

    def _waits_for_film_end(self, spec: ClipSpec, read_until: float) -> bool:
        """Whether a clip across whose end a line or utterance is said is held back: were the film to end there, it
        would read what is said past the end (_clip_text), so it waits for the film's end, or for the media to run
        --min_clip_s past it (the clip after it is then kept, not dropped as a sliver, and reads the line). Before
        2026-12-07 a window plan's last clip went out before the film's end was known."""
        if self.film_end is not None or read_until >= spec.end_s + self.cfg.min_clip_s:
            return False
        return self._said_across(spec.end_s)

    def _said_across(self, t: float) -> bool:
        """Whether a subtitle line (window and shot plans: a subtitle plan's lines are clips of their own) or a
        recognised utterance is said across film time t. Asked packet by packet while a clip waits: a bisect, and
        the utterances (in time order) from the newest back to the first that starts NEAR_S before t."""
        begun = self.lines[bisect.bisect_left(self.line_starts, t - self.longest_line_s):
                           bisect.bisect_left(self.line_starts, t)]
        if self.cfg.segment != "subtitle" and any(c.end_s > t for c in begun):
            return True
        for c in reversed(self.asr_cues):
            if c.start_s < t - NEAR_S:
                return False
            if c.start_s < t < c.end_s:
                return True
        return False

    def with_dialogue(self, spec: ClipSpec) -> ClipSpec:
        """A clip about to be emitted, with the words said in it where its plan gave it none (_clip_text) and then
        the lines said before it as context: segment.dialogue_context over the texts of the clips emitted so far,
        the rule the report's --explain applies to the clips table. Contexts are set here, not when clips are
        planned: a plan made span by span (recognised speech, a header's understated duration) and the words a gap
        finds at emission would otherwise give a line another context than the film's clips before it."""
        film_span = (0.0, math.inf if self.film_end is None else self.film_end)
        # the subtitle lines near it: its own (windows, shots), and those its utterances may repeat
        filled = _clip_text(spec, self.asr_cues, self._lines_near(spec), read_lines=self.cfg.segment != "subtitle",
                            max_len=self.cfg.max_clip_s, film_span=film_span, text_languages=self.cfg.text_languages)
        if not self.given_plan:
            filled = dataclasses.replace(filled, context=segment.dialogue_context(
                [filled.text], self.cfg.context_lines, self.said)[0])
        line = segment.context_line(filled.text, filled.language, self.cfg.text_languages)
        if line and (not self.said or self.said[-1] != line):
            self.said = (self.said + [line])[-max(self.cfg.context_lines, 1):]
        return filled

    def earliest_open_start(self) -> float:
        if self.queue:
            return self.queue[0].spec.start_s
        if self.extendable:  # the media may go on past the plan: keep its audio from there
            return self.plan_end
        return self.shot_start if self.open_ended else self.planned_until if self.asr_planning else math.inf

    def frames_for(self, spec: ClipSpec) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        if not self.grid_mode:
            return self.picker.take(spec.clip_index)
        # Pick, for each ideal sample time, the nearest grid frame inside the clip.
        grid = sorted(k for k in self.picker.results if isinstance(k, tuple) and k[1] < spec.end_s)
        chosen = []
        for t in nearest_grid_points([k[1] for k in grid], spec.start_s, spec.end_s, self.cfg):
            if self.picker.results[("grid", t)]:
                chosen.append(self.picker.results[("grid", t)][0])
        for k in grid:  # the grid before this clip's end is no longer needed
            self.picker.results.pop(k, None)
        return self.picker.stack(chosen)


# ---------------------------------------------------------------------------------------------------------
# The pass

def _reading_span(spec: ClipSpec, film_span: tuple[float, float]) -> tuple[float, float]:
    """The span whose midpoints a clip reads (transcribe.assign_words): its own, open before it where it starts the
    film and past it where it ends the film (film_span: the film's start and its last clip's end). A line that starts
    inside the film but runs past its end is read by the clip at the end: before 2026-12-07 a last line whose
    midpoint lay past every clip was read by none. A line that starts after the end meets no clip (LinesPastEnd)."""
    start = -math.inf if spec.start_s <= film_span[0] + 1e-6 else spec.start_s
    end = math.inf if spec.end_s >= film_span[1] - 1e-6 else spec.end_s
    return start, end


def _clip_text(spec: ClipSpec, asr_cues: Sequence[Cue], lines: Sequence[Cue] = (), read_lines: bool = True, *,
               max_len: float, film_span: tuple[float, float] = (-math.inf, math.inf),
               text_languages: Sequence[str] = ()) -> ClipSpec:
    """Clips planned without dialogue (windows, shots, the stretches between subtitle lines) take what is said
    inside them: the subtitle `lines` near the clip (read_lines: window and shot plans, whose clips are not cut at
    the lines; a subtitle plan's lines are clips of their own), then the recognised utterances that meet no line
    (speech where a forced track has no line), each whole in the clip that holds its midpoint, or by its words when
    longer than max_len (--max_clip_s: segment.line_units, the rule of a subtitle plan's long lines). An utterance
    that meets a line says it again, a little off the line's times: with --transcribe always, Sintel's trailer read
    "I've been" twice, once in the gap before the line. The film's first and last clips also read what is said
    before or past the film (film_span, _reading_span)."""
    if spec.text or not (asr_cues or lines):
        return spec
    from transforms.transcribe import assign_words  # the ASR engineer's word placement
    def meets(c, a, b):
        return c.end_s > a and c.start_s < b
    # Only cues that overlap the clip can hold its words (keeps long films linear, not quadratic).
    said = [c for c in lines if meets(c, spec.start_s, spec.end_s)] if read_lines else []
    heard = [c for c in asr_cues if meets(c, spec.start_s, spec.end_s)
             and not any(meets(line, c.start_s, c.end_s) for line in lines)]
    subtitle_words = [w for c in said for w in segment.line_units(c, max_len)]
    words = subtitle_words + [w for c in heard for w in segment.line_units(c, max_len)]
    span = _reading_span(spec, film_span)
    text = assign_words(words, [span])[0] if words else None
    if not text:
        return spec
    subtitled = bool(subtitle_words) and assign_words(subtitle_words, [span])[0] is not None
    lang = clip_language([c.language for c in (said if subtitled else heard)], text_languages)  # one unread: not read
    return dataclasses.replace(spec, text=text, text_source="subtitle" if subtitled else "asr", language=lang)


def frame_size(info, cfg: "DecodeConfig", frame_width: Optional[int] = None) -> tuple[int, int]:
    """(width, height) of the converted frames: the square --image_size the encoders take, or, given a
    width, the film's aspect ratio as shown at that width (even height): anamorphic pixels are made square, so a
    face in a 16:9 DVD is not squeezed into 4:3."""
    if not frame_width:
        return cfg.image_size, cfg.image_size
    return frame_width, max(2, int(round(frame_width * info.picture_aspect / 2)) * 2)


# Codecs that decode at a fraction of their size (FFmpeg's `lowres`): JPEG 2000 stops its wavelet synthesis a level
# or more early, skipping most of its work (1080p: 0.80 s a frame at full size, 0.21 s at half, on one core here).
LOWRES_CODECS = ("jpeg2000",)
LOWRES_MARGIN = 2  # the reduced picture stays this many times the size of the largest copy the models read


def reduced_resolution(codec: str, info, picker: FramePicker) -> int:
    """How many halvings of the stored size a LOWRES_CODECS picture is decoded at: the most that keep it at least
    LOWRES_MARGIN times as wide and as high as each copy the pass makes (the ViT's square, the face detector's),
    so each copy is still scaled down from finer detail than it shows. 0 for other codecs."""
    if codec not in LOWRES_CODECS or not (info.width and info.height):
        return 0
    sizes = [(picker.width, picker.height)] + ([tuple(picker.face_size)] if picker.face_size else [])
    need_w, need_h = (LOWRES_MARGIN * max(s[i] for s in sizes) for i in (0, 1))
    level = 0
    while info.width >> (level + 1) >= need_w and info.height >> (level + 1) >= need_h:
        level += 1
    return level


def seek_before(container, v, seek_s: float, need_s: float, offset: float, nominal_s: float) -> Optional[float]:
    """Seek to seek_s (the container's clock, s) for a pass that needs the picture from film time need_s (its first
    sample time). An MPEG-TS or PS seek lands on a packet before that time, not on a key frame: where the picture's
    first key frame after it comes after need_s, the seek goes back again, twice as far each time, SEEK_TRIES times
    at most (before 2026-12-06 a clip of a film with a 10 s GOP got the next key frame's picture, from after it).
    Returns the film time of that key frame where it still comes after need_s, and is not the picture's first (the
    frames before it are missing), else None."""
    import av

    def seek(s: float) -> None:  # (to the film's start: to 0, since a TS seek to its first time lands after it)
        container.seek(int(s * 1_000_000) if s > offset else 0, backward=True)
    seek(seek_s)
    if v is None or not math.isfinite(need_s):
        return None
    back = SEEK_MARGIN_S
    for tries in range(1, SEEK_TRIES + 1):
        key = first_key_s(container, v, offset, need_s)
        if key <= need_s or seek_s <= offset or tries == SEEK_TRIES:
            break
        try:
            seek(max(offset, seek_s - back))
        except av.error.FFmpegError:  # (a seek the demuxer refuses: the one before it is kept)
            break
        seek_s, back = max(offset, seek_s - back), back * 2
    seek(seek_s)  # again: looking for the key frame read on from there
    first = float(v.start_time * v.time_base) - offset if v.start_time is not None and v.time_base else -math.inf
    return key if key > need_s and key > first + nominal_s else None


def first_key_s(container, v, offset: float, need_s: float) -> float:
    """The film time of the picture's first key frame from where the container has been seeked to; once past need_s
    without one, the time reached (a later key frame's is later still); -inf where packets do not say."""
    import av
    try:
        for packet in container.demux(v):
            at = packet.pts if packet.pts is not None else packet.dts
            if at is None or not packet.time_base:
                continue
            t = float(at * packet.time_base) - offset
            if packet.is_keyframe or t > need_s:
                return t
    except (av.error.FFmpegError, ValueError):  # (the pass itself meets it, and says so)
        pass
    return -math.inf


def last_frame_s(gap_s: float, own: tuple, nominal_s: float) -> float:
    """How long a picture's last frame is on screen: its own duration ((duration, time base), FFmpeg's from its
    packet) where it has one no longer than the gap before it, else that gap where frames come at about the film's
    rate, else, after a frame held longer (a still in a VFR encode) without a duration of its own, a frame time.
    Before 2026-12-06 always that gap: a film whose next-to-last frame is held 5 s ran 5 s past its end. Before
    2026-12-07 the gap came first, and with skip_nonref it spans the B-frames left out (shown before the last
    frame): an H.264 film ended one or two frames late (8.04 s of 8.00)."""
    duration, base = own
    own_s = float(duration * base) if duration and base else 0.0
    if gap_s <= HELD_FRAMES * nominal_s:
        return own_s if 0 < own_s <= gap_s else gap_s
    return own_s or nominal_s


def decode_film(job: FilmJob, cfg: DecodeConfig, cue_source: Optional[CueSource] = None,
                stats: Optional[dict] = None, plan: Optional[list[ClipSpec]] = None,
                frame_width: Optional[int] = None, plan_on_grid: bool = False) -> Iterator[DecodedClip | FilmError]:
    """Yield DecodedClips in clip order, and non-fatal FilmErrors. Raises DecodeError when nothing decodes.

    plan: decode only these clips (in time order): the pass seeks to just before the first and stops after
    the last; plan_on_grid: their frames are the grid's (grid_sample_times), as a run that planned them late took
    them. frame_width: frames keep the film's aspect ratio at this width instead of the square
    --image_size."""
    import av  # local: keeps module import light for pickling
    from transforms.avi_index import AviIndex
    from transforms.probe import (ReadFailed, declared_ends, film_audio_stream, film_start_s,
                                  main_video_stream, open_container, other_pictures, read_packets, repair_note,
                                  undecodable, why_unreadable)
    from transforms.mono import MAX_CHANNELS, MonoResampler

    ref = job.ref
    stats = stats if stats is not None else {}
    nominal = 1.0 / (job.info.fps or 25.0)  # a frame's time at the film's frame rate
    picker = FramePicker(*frame_size(job.info, cfg, frame_width),
                         face_size=frame_size(job.info, cfg, cfg.face_width)[:2] if cfg.face_width else None,
                         stored_size=(job.info.width, job.info.height), nominal_s=nominal,
                         area=job.info.picture_area)
    shots = ShotDetector(cfg.shot_threshold, cfg.min_clip_s) if cfg.segment == "shot" else None
    warnings = 0

    def warn(stage: str, exc_type: str, msg: str) -> FilmError:
        log.warning("%s: %s: %s", ref.path, stage, msg)
        return FilmError(film_path=ref.path, film_id=ref.film_id, stage=stage, error_type=exc_type,
                         message=msg, fatal=False)

    with open_container(ref.path) as container:
        v = main_video_stream(container)
        a = film_audio_stream(container, job.info)
        repaired = repair_note(container) if plan is None else None
        if repaired:
            yield warn("decode", "RepairedStart", repaired)
        others = other_pictures(container, v) if plan is None and v is not None else []
        if others:  # a preview, a proxy, a second angle: which one the clips show is said
            yield warn("decode", "OtherVideoStreams", f"video stream(s) {', '.join(str(o.index) for o in others)} "
                       f"passed over: stream {v.index} ({v.codec_context.width}x{v.codec_context.height}, the largest"
                       " of those lasting at least half the longest) is the film's picture")
        for kind, chosen in (("video", v), ("audio", a)):
            passed = undecodable(container, kind) if plan is None else []
            if passed:
                yield warn("decode", "UnknownCodec", f"{kind} stream {passed[0].index} has a codec FFmpeg cannot "
                           f"decode (a damaged header, or a format it does not know): passed over; "
                           + (f"stream {chosen.index} is the film's {kind}" if chosen is not None else
                              f"the clips have no {'frames' if kind == 'video' else 'audio'}"))
        offset = film_start_s(container)
        planner = StreamingPlanner(job, cfg, picker, cue_source, has_video=v is not None, plan=plan,
                                   plan_on_grid=plan_on_grid)
        # An intra-only picture (JPEG 2000 in IMF and DCP packages, ProRes, DNxHD, MJPEG masters): every frame
        # decodes on its own, so only the two around each sample time are decoded (far_from_samples); slice threads,
        # so that each frame comes out of the decoder with its own packet.
        skip_far = bool(v is not None and shots is None and cfg.skip_nonref and v.codec_context.codec.intra_only)
        if v is not None:
            v.thread_type = "SLICE" if skip_far else "AUTO"
            threads = decoding_threads(cfg, job.info)
            if threads:
                v.thread_count = threads
            if cfg.skip_nonref:
                v.codec_context.skip_frame = "NONREF"
            if cfg.skip_loop_filter:
                v.codec_context.options = {**v.codec_context.options, "skip_loop_filter": "all"}
            level = reduced_resolution(v.codec_context.name, job.info, picker) if cfg.reduce_size else 0
            if level:
                v.codec_context.options = {**v.codec_context.options, "lowres": str(level)}
            stats["reduced_by"] = level
        missing_from = None  # where a seek's first key frame came after the first clip's first sample time
        if plan:  # the keyframe before the first clip (seconds of margin: audio frames straddle the point)
            seek_s = max(0.0, plan[0].start_s - SEEK_MARGIN_S) + offset
            picture_end = declared_ends(container, [v])[v] if v is not None and a is not None else None
            if picture_end is not None and seek_s > picture_end - SEEK_MARGIN_S:
                # a clip after the picture's end shows its last frame held (hold_stalled), as the whole pass
                # gives it: read from before that frame, the sound between decoded (before 2026-12-05: no frame)
                seek_s = max(offset, picture_end - SEEK_MARGIN_S)
            if seek_s > offset:
                missing_from = seek_before(container, v, seek_s, picker.next_target(), offset, nominal)
        # Clip audio stays at the film's own rate until a clip is cut (AudioBuffer); the speech recogniser,
        # fed as the audio arrives, gets its own 16 kHz stream.
        native = int(a.codec_context.sample_rate or a.rate or SAMPLE_RATE) if a is not None else SAMPLE_RATE
        audio = AudioBuffer(native)
        resampler = MonoResampler(native) if a is not None else None
        asr_resampler = MonoResampler(SAMPLE_RATE) if a is not None and cue_source is not None else None
        video_alive, audio_alive = v is not None, a is not None
        video_drain = None  # "drained" at the picture's declared end (drain_video), "resumed" if it went on after
        video_t, n_video, last_dur = -math.inf, 0, nominal
        last_own: tuple = (None, None)  # the newest frame's own duration and time base (media_end)
        timed = True  # the newest frame's time is its own (not counted on from the one before: on_video_frames)
        n_untimed = 0  # frames without a time of their own (MissingTimestamps)
        jumps = RESET_FORWARD_S if (container.format.flags or 0) & AVFMT_TS_DISCONT else math.inf
        restarts = not set((container.format.name or "").split(",")) & MONOTONIC_CLOCKS
        horizon = job.info.duration_s + LONG_STALL_S if job.info.duration_s > 0 else math.inf
        video_line, audio_line = Timeline(jumps, restarts, horizon), Timeline(jumps, restarts, horizon)
        audio_failed, audio_errors = False, 0
        video_hold = audio_hold = -math.inf  # film time up to which a stalled stream is taken as held (hold_stalled)
        damage: dict[str, Damage] = {}  # the stretch each stream is in, while its packets fail
        damage_seen: set[str] = set()  # streams with a damaged stretch reported
        holes: list[tuple[float, float]] = []  # sound missing without a packet failing (AUDIO_HOLE_S), to report
        overlaps: list[tuple[float, float, float]] = []  # sound given again (AudioOverlap): (film time, back, dropped)
        picture_holes: list[tuple[float, float]] = []  # the same for the picture of a capture (PICTURE_HOLE_S)
        picture_explained = False  # the next picture hole is the one a reported stretch of failed packets left
        hole_explained = False  # the next hole is the one a reported damaged stretch of the sound left
        spans = DamagedSpans()  # where picture or sound is damaged: marks the clips there
        if missing_from is not None:  # the frames before it could not be decoded after the seek
            spans.add("video", plan[0].start_s, missing_from)
        seen_key = False  # a key frame has come out: frames concealed before it are a capture's start, not damage

        def packet_warning(exc_type: str, msg: str) -> Iterator[FilmError]:
            """A row for lost media (a damaged stretch, a hole), the first MAX_PACKET_WARNINGS of a film only."""
            nonlocal warnings
            warnings += 1
            if warnings <= MAX_PACKET_WARNINGS:
                yield warn("decode", exc_type, msg)

        lost = getattr(container, "lost", None)  # an IMF / DCP title's stretches whose track file did not read
        lost_audio: list[tuple[float, float]] = []  # (their sound's stretches: a hole there is not an AudioGap)
        n_lost = 0

        def lost_rows() -> Iterator[FilmError]:
            """A row for each track file found unreadable since the last call (a title has a few: no cap, unlike the
            rows of damaged stretches); its stretch's clips are marked when it is of the picture or the sound decoded
            (a dub's lost reel marks nothing)."""
            nonlocal n_lost
            for gone in lost[n_lost:]:
                mine = v if gone.kind == "video" else a
                marked = gone.stream is mine or (gone.stream is None and mine is None)
                if marked:
                    spans.add(gone.kind, gone.start_s, gone.end_s)
                    if gone.kind == "audio":
                        lost_audio.append((gone.start_s, gone.end_s))
                what = "picture" if gone.kind == "video" else "sound" if marked else "other sound sequence (not heard)"
                yield warn("decode", "TrackFileUnreadable", f"{gone.track_file} could not be read ({gone.reason}): the "
                           f"title's {what} from {gone.start_s:.2f}s to {gone.end_s:.2f}s is missing; the rest of the "
                           "title is read" + ("; its clips there are marked damaged" if marked else ""))
            n_lost = len(lost)

        read_ons: list[tuple[float, float, int]] = []  # (stopped, went on, reads it took) of each: one row at the end

        def read_on(resume: tuple[float, int, Optional[str]], packet) -> None:
            """The demuxer stopped early and read on with `packet` (probe.demux): the stretch between is marked (the
            picture to its next whole key frame), and its hole in the sound is not an AudioGap."""
            stopped = resume[0] - offset
            at = float(packet.pts * packet.time_base) - offset if packet.pts is not None and packet.time_base else stopped
            if v is not None:
                spans.begin("video", stopped)
            if a is not None:
                spans.add("audio", stopped, max(at, stopped))
                lost_audio.append((stopped, max(at, stopped) + 1.0))
            read_ons.append((stopped, at, resume[1]))

        def damaged(stream: str, resumed_s: Optional[float]) -> Iterator[FilmError]:
            nonlocal hole_explained, picture_explained
            d = damage.pop(stream, None)
            if d is not None:
                if resumed_s is not None and stream == "audio":
                    spans.end(stream, d.end_s(resumed_s))
                elif resumed_s is not None:  # the picture stays damaged to its next whole key frame
                    spans.begin(stream, d.end_s(resumed_s))
                damage_seen.add(stream)
                hole_explained = hole_explained or stream == "audio"
                picture_explained = picture_explained or stream == "video"
                yield from packet_warning(f"{stream.capitalize()}PacketError", d.message(resumed_s))
        streams = [s for s in (v, a) if s is not None]
        avi_index = AviIndex.of(container, streams)  # an AVI's packets, placed by its index (after damage)
        # how far each stream's packets have been read, and where the container says it ends (its own clock)
        read_to = {s: -math.inf for s in streams}
        declared = declared_ends(container, streams)

        def at_its_end(stream) -> bool:
            """The stream has been read to its declared end: it has ended, not merely been stored later in the
            file (a Matroska file written picture first, its sound after)."""
            end = declared[stream]
            return end is not None and read_to[stream] >= end - 1.0

        def push_audio(frames) -> list[Cue]:
            nonlocal hole_explained
            new_cues = []
            for af in frames:
                repeat = 0.0  # seconds at the frame's start that the track has already played
                at = (audio_line.time(af.time - offset, af.samples / (af.sample_rate or native), video_t)
                      if af is not None and af.time is not None else None)
                if af is None:
                    t_first = audio.end_time
                elif audio.t0 is None:
                    t_first = at if at is not None else 0.0
                else:
                    t_first = audio.end_time
                    gap = (at - t_first) if at is not None else 0.0
                    if gap < -AUDIO_SLACK_S:  # sound heard again (a packet repeated): not twice, nor the rest late
                        repeat = min(-gap, af.samples / (af.sample_rate or native))
                        overlaps.append((at, -gap, repeat))
                    if gap > AUDIO_SLACK_S:  # skipped packets or a hole in the stream: keep later audio in place
                        if gap >= AUDIO_HOLE_S:
                            spans.add("audio", t_first, at)
                            if not hole_explained and not any(s < at and e > t_first for s, e in lost_audio):
                                holes.append((t_first, at))
                        if not audio.buffered_s:  # the hole's clips that went out while it was held need no silence
                            audio.restart(min(at, max(t_first, planner.earliest_open_start())))
                            t_first, gap = audio.end_time, at - audio.end_time
                        audio.append(np.zeros(int(gap * audio.rate), np.float32), t_first)
                    hole_explained = False
                t_chunk = audio.end_time if audio.t0 is not None else t_first
                if af is not None and af.is_corrupt:
                    spans.on_sound(t_first, t_first + af.samples / (af.sample_rate or native))
                for out in less_first(resampler.resample(af), round(repeat * audio.rate)):
                    audio.append(out, t_first)
                if asr_resampler is not None:
                    for speech in less_first(asr_resampler.resample(af), round(repeat * SAMPLE_RATE)):
                        if speech.size:
                            new_cues += cue_source.feed(speech, t_chunk)
                            t_chunk += speech.size / SAMPLE_RATE
            return new_cues

        def on_video_frames(frames) -> None:
            nonlocal video_t, n_video, last_dur, last_own, timed, n_untimed, seen_key, picture_explained
            for frame in frames:
                own = frame.time
                if own is None:  # a frame time after the one before (a raw stream; a program stream's unstamped)
                    # (before 2026-12-06 the gap before it, itself learnt from such guesses: a 13 s film ran to 63 s)
                    t = video_t + nominal if n_video else 0.0
                    video_line.passed(t, nominal)
                    n_untimed += 1
                else:
                    t = video_line.time(own - offset, last_dur, audio.end_time)
                seen_key = seen_key or frame.key_frame
                spans.on_picture(t, frame.is_corrupt and seen_key, frame.key_frame)
                if n_video and jumps < math.inf and t - video_t >= PICTURE_HOLE_S:  # (from when a frame was due)
                    if not picture_explained:
                        picture_holes.append((video_t + last_dur, t))
                    spans.add("video", video_t + last_dur, t - last_dur)  # (a frame's time of slack at each side)
                picture_explained = False
                if n_video and timed and own is not None:  # (a gap between two frames' own times)
                    last_dur = max(t - video_t, 1e-3) if t > video_t else last_dur
                if t >= video_t:  # the newest frame's own duration (media_end)
                    last_own = (frame.duration, frame.time_base)
                video_t, n_video, timed = max(t, video_t), n_video + 1, own is not None
                cut = shots.on_frame(frame, t) if shots else None
                planner.on_video_time(t, cut)
                picker.on_frame(frame, t)

        skipped = None  # the last picture packet not decoded (skip_far), while the one after it is not either
        n_skipped = 0  # picture packets never decoded

        def far_from_samples(packet) -> bool:
            """An intra-only picture's packet more than a frame and a half before the next time a frame is needed
            (the next sample time, or the next grid point where clips are planned late): not decoded. Its time moves
            the picture's clock on as a decoded frame's would. Only on a clock without restarts (jumps == inf)."""
            if not (skip_far and packet.size and packet.pts is not None and packet.time_base and jumps == math.inf):
                return False
            t = float(packet.pts * packet.time_base) - offset
            need = min(picker.next_target(), planner.grid_next if planner.grid_mode else math.inf)
            return t < need - 1.5 * last_dur

        def catch_up() -> None:
            """Decode the last skipped packet: the frame just before the one about to be decoded (or the last one,
            held on screen), which the picker compares with it, as in a pass that decodes every frame."""
            nonlocal skipped, n_video
            if skipped is not None:
                packet, skipped, n_video = skipped, None, n_video - 1  # (skip_video counted it)
                try:
                    on_video_frames(packet.decode())
                except (av.error.FFmpegError, ValueError) as exc:
                    log.debug("a skipped picture packet did not decode: %s", exc)

        def skip_video(packet) -> None:
            nonlocal video_t, n_video, last_dur, last_own, timed, skipped, n_skipped
            t = video_line.time(float(packet.pts * packet.time_base) - offset, last_dur, audio.end_time)
            if n_video and timed:
                last_dur = max(t - video_t, 1e-3) if t > video_t else last_dur
            if t >= video_t:
                last_own = (packet.duration, packet.time_base)
            n_skipped += skipped is not None  # the one skipped before it is never decoded
            video_t, n_video, skipped, timed = max(t, video_t), n_video + 1, packet, True
            planner.on_video_time(t, None)

        # (not in a capture, MPEG-TS or PS: a constant frame rate, where a frame held is a hole, PictureGap)
        stills = (HeldStills(HELD_FRAMES * nominal / float(v.time_base))
                  if v is not None and cfg.skip_nonref and not skip_far and v.time_base and jumps == math.inf
                  else None)

        def decode_video(packet) -> list:
            """packet.decode(); a frame held on screen (HeldStills) is decoded whatever skip_nonref says."""
            if stills is None or packet.pts is None or not stills.held(packet.pts):
                return packet.decode()
            v.codec_context.skip_frame = "DEFAULT"
            try:
                return packet.decode()
            finally:
                v.codec_context.skip_frame = "NONREF"

        audio_decoder = None  # the stream's own decoder until one gives nonsense (fresh_audio_decoder)

        def decode_audio(packet) -> list:
            """packet.decode() by the audio decoder; a damaged stretch can leave FFmpeg's AAC decoder set to a
            nonsense layout (28 channels) for every later frame, so on such a frame a fresh decoder of the stream's
            own parameters takes over (the frame itself is left out as malformed: transforms.mono). Before
            2026-12-07 the film's sound ended at 5 % of random bytes in the middle (found in review)."""
            nonlocal audio_decoder
            if audio_decoder is None:
                frames = packet.decode()
            else:
                frames = audio_decoder.decode(packet)
                for f in frames:  # (a standalone decoder's frames carry the packet's times)
                    f.time_base = packet.time_base or f.time_base
            if any(len(f.layout.channels) > MAX_CHANNELS for f in frames):
                audio_decoder = fresh_audio_decoder(a)
            return frames

        def drain_video() -> None:
            """The picture has reached its declared end: the frames its decoder still holds come out now, not at
            the end of the file (a threaded decoder keeps its last frames until then; a one-frame picture over an
            hour of sound had no frame until its last clips, before 2026-12-05). A packet after it resets the
            decoder (decode_film's loop)."""
            nonlocal video_drain
            video_drain = "drained"
            try:
                frames = v.decode(None)
                for f in frames:  # (a drained frame may come without its time base)
                    if f.time_base is None:
                        f.time_base = v.time_base
                on_video_frames(frames)
            except (av.error.FFmpegError, ValueError) as exc:
                log.debug("draining the video decoder failed: %s", exc)

        def hold_stalled() -> None:
            """A stream read to its declared end and STALL_S behind the other has ended (sound that outlasts the
            picture, one still image over a podcast, a reel's sound that stops): up to there the picture holds its
            last frame, as players show it, and the recogniser hears silence. Before 2026-12-05 every later clip
            waited for the film's end, its frames or its audio held in memory (an hour of sound after the picture:
            690 MB)."""
            nonlocal video_hold, audio_hold
            if not (video_alive and audio_alive and v is not None and a is not None):
                return
            h = audio.end_time - STALL_S
            # Drained once, at its last packet: where the container declares the end, once it is read to within a
            # frame or two of it; where the end is only inferred (MPEG-TS / PS), only while no frame has come out
            # (a one-frame still), since a picture that shows again after a dropout would lose the frames up to its
            # next keyframe.
            end = declared[v]
            if h > max(video_t, video_hold) and video_drain is None and end is not None and (
                    read_to[v] >= end - DRAIN_MARGIN_S if math.isfinite(end) else n_video == 0):
                catch_up()
                drain_video()
            if h > max(video_t, video_hold) and (at_its_end(v) or n_video and h - video_t >= LONG_STALL_S - STALL_S):
                video_hold = h
                catch_up()  # the last frame before the hold is the one held
                planner.on_video_time(h, None)
                picker.hold(h, show="video" not in damage)
            h = video_t - STALL_S
            if h > max(audio.end_time, audio_hold) + HOLD_STEP_S and (
                    at_its_end(a) or audio.t0 is not None and h - audio.end_time >= LONG_STALL_S - STALL_S):
                audio_hold = h
                if cue_source is not None:  # the gap ends its buffer: what it holds is transcribed now
                    planner.on_asr(cue_source.feed(np.zeros(0, np.float32), h), False, job.info.duration_s)

        def emit_ready(end_of_film: bool = False) -> Iterator[DecodedClip]:
            inf = math.inf
            vt = inf if (end_of_film or not video_alive) else max(video_t, video_hold)
            at = inf if (end_of_film or not audio_alive) else max(audio.end_time, audio_hold)
            asr_t = inf if (end_of_film or cue_source is None) else getattr(cue_source, "covered_until_s", 0.0)
            read_until = inf if end_of_film else max(video_t, audio.end_time)
            for spec in planner.ready(vt, at, asr_t, read_until):
                frames, times, face_frames = planner.frames_for(spec)
                spec = planner.with_dialogue(spec)
                clip = DecodedClip(film_id=ref.film_id, spec=spec, frames=frames, frame_times=times,
                                   audio=audio.slice(spec.start_s, spec.end_s), film_path=ref.path,
                                   face_frames=face_frames, damaged=spans.streams(spec.start_s, spec.end_s))
                stats["damaged_clips"] = stats.get("damaged_clips", 0) + bool(clip.damaged)
                # how far the read had gone past the clip's end when it went out (memory held for it)
                stats["max_emit_lag_s"] = max(stats.get("max_emit_lag_s", 0.0),
                                              max(video_t, audio.end_time) - spec.end_s)
                yield clip
            audio.drop_before(planner.earliest_open_start())
            spans.drop_before(planner.earliest_open_start())
            stats["max_audio_buffered_s"] = max(stats.get("max_audio_buffered_s", 0.0), audio.buffered_s)

        read_failed = False
        if lost is not None:
            yield from lost_rows()
        resumed: list[tuple[float, int, Optional[str]]] = []  # where the read went on past a sample that did not read
        try:
            for packet in read_packets(container, *streams, resumed=resumed):
                if lost is not None and len(lost) > n_lost:
                    yield from lost_rows()
                if resumed:
                    read_on(resumed.pop(), packet)
                if avi_index is not None:
                    avi_index.place(packet)
                if packet.pts is not None and packet.time_base:
                    read_to[packet.stream] = max(read_to[packet.stream], float(
                        (packet.pts + (packet.duration or 0)) * packet.time_base))
                elif packet.stream is v and packet.size and cfg.skip_nonref:
                    # frames without a time are timed by counting them (on_video_frames): none may be left out
                    v.codec_context.skip_frame, stills = "DEFAULT", None
                is_video = packet.stream is v
                if (is_video and not video_alive) or (not is_video and not audio_alive):
                    continue
                stream = "video" if is_video else "audio"
                if is_video and video_drain == "drained" and packet.size:  # more picture after its declared end
                    v.codec_context.flush_buffers()
                    video_drain = "resumed"
                if is_video and far_from_samples(packet):
                    skip_video(packet)
                    hold_stalled()
                    yield from emit_ready()
                    continue
                if is_video:
                    catch_up()
                try:
                    decoded = decode_video(packet) if is_video else decode_audio(packet)
                except (av.error.FFmpegError, ValueError) as exc:
                    if not packet.size:  # no data lost: an empty packet (NUT's last, with a time) the decoder refused
                        continue
                    if not is_video:
                        audio_errors += 1
                    if not is_video and audio.t0 is None and audio_errors >= MAX_AUDIO_ERRORS:
                        audio_alive, audio_failed = False, True  # nothing of the track ever decoded: broken
                        damage.pop("audio", None)
                        yield warn("decode", "AudioDecodeError", f"audio stopped decoding at "
                                   f"{max(audio.end_time, 0):.2f}s ({exc}); clips after it have no audio")
                    elif plan is not None and not (n_video if is_video else audio.t0 is not None):
                        pass  # after a seek a stream's first packets may not decode on their own: not damage
                    elif stream in damage:
                        damage[stream].packets += 1
                    else:
                        damage[stream] = Damage(stream, max(video_t if is_video else audio.end_time, 0.0), str(exc))
                        spans.begin(stream, damage[stream].start_s, failed=True)
                    continue
                if stream in damage:  # this packet decoded: the stretch is over
                    at = packet.pts * packet.time_base - offset if packet.pts is not None and packet.time_base else None
                    yield from damaged(stream, None if at is None else float(at))
                if is_video:
                    on_video_frames(decoded)
                    for start, end in picture_holes:
                        yield from packet_warning("PictureGap", f"no picture from {start:.2f}s to {end:.2f}s: the "
                                                  "file has none there (data the demuxer skipped: a damaged or lost "
                                                  "stretch of the capture?); the frame before it is held there")
                    picture_holes.clear()
                else:
                    audio_errors = 0 if decoded else audio_errors
                    try:
                        new_cues = push_audio(decoded)
                    except (av.error.FFmpegError, ValueError) as exc:
                        audio_alive, audio_failed = False, True
                        yield warn("decode", "AudioDecodeError", f"audio resampling failed: {exc}")
                        continue
                    for start, end in holes:
                        yield from packet_warning("AudioGap", f"no audio from {start:.2f}s to {end:.2f}s: the file "
                                                  "has none there (data the demuxer skipped: a damaged or cut "
                                                  "stretch?); silent there")
                    holes.clear()
                    if new_cues or (cue_source is not None and planner.asr_planning):
                        planner.on_asr(new_cues, False, job.info.duration_s)
                    if v is None:
                        planner.on_video_time(audio.end_time, None)
                hold_stalled()
                yield from emit_ready()
                if plan is not None and not planner.queue:
                    break  # every planned clip is out: no need to read the rest of the film
        except ReadFailed as exc:  # the storage, not the film: nothing is kept, the next run reads it again
            raise ReadFailed(f"reading stopped at {max(video_t, audio.end_time, 0):.2f}s: {exc} (a storage or "
                             "network error, not the file's content: the next run tries again)") from exc
        except (av.error.FFmpegError, OSError, EOFError) as exc:
            # A truncated or damaged file: keep what decoded so far.
            read_failed = True
            yield warn("decode", type(exc).__name__, f"reading stopped at {max(video_t, audio.end_time, 0):.2f}s: {exc}")

        if video_alive:
            catch_up()  # the picture's last frame, held to the end of the film
        picture_ok = "video" not in damage  # a picture whose packets fail to the end is not held on screen
        for stream in list(damage):  # stretches that ran to the end of the film
            yield from damaged(stream, None)
        if audio_alive and resampler is not None:
            try:
                planner.on_asr(push_audio([None]), False, job.info.duration_s)
            except (av.error.FFmpegError, ValueError) as exc:
                log.debug("audio flush failed: %s", exc)
        if n_video == 0 and audio.t0 is None:
            why = why_unreadable(ref) if plan is None else None  # (an MP4 whose atoms say why)
            raise DecodeError("no video frame or audio sample could be decoded" + (f": {why}" if why else ""))
        media_end = max(video_t + last_frame_s(last_dur, last_own, nominal) if n_video else 0.0,
                        audio.end_time if audio.t0 is not None else 0.0)
        leaps = sorted(video_line.leaps + audio_line.leaps)
        if leaps:
            yield warn("decode", "TimestampLeap", f"{len(leaps)} packet(s) had a time far past the film's end (the "
                       f"first at {leaps[0][0]:.2f}s said {leaps[0][1]:.0f}s; the header gives "
                       f"{job.info.duration_s:.2f}s): damaged timestamps, placed where their stream had got to")
        if warnings > MAX_PACKET_WARNINGS:  # (before 2026-12-06 the rows after the first few were dropped unsaid)
            yield warn("decode", "MoreDamage", f"{warnings - MAX_PACKET_WARNINGS} more damaged stretch(es) or hole(s) "
                       f"after the {MAX_PACKET_WARNINGS} rows above, not listed one by one; the clips there are marked "
                       "damaged")
        if read_ons:
            yield warn("decode", "ReadResumed", f"the file stopped giving media {len(read_ons)} time(s), first at "
                       f"{read_ons[0][0]:.2f}s (its index points past its end or at data that does not read: a damaged "
                       f"sample table?); each time it was read on from the next sample that reads (first from "
                       f"{read_ons[0][1]:.2f}s, {sum(r[2] for r in read_ons)} sample(s) skipped in all); the clips "
                       "there are marked damaged")
        if spans.n_concealed or spans.n_concealed_sound:
            what = " and ".join(f"{n} {kind} frame(s)" for n, kind in ((spans.n_concealed, "picture"),
                                                                      (spans.n_concealed_sound, "sound")) if n)
            yield warn("decode", "ConcealedFrames", f"{what} decoded from damaged data (first at "
                       + ", ".join(f"{t:.2f}s" for t in sorted(spans.concealed)) + "): the decoder did not reject it "
                       "but filled in what it lost from around it; a picture stays damaged up to its next whole key "
                       "frame; the clips there are marked damaged")
        resets = video_line.resets or audio_line.resets
        if resets:
            yield warn("decode", "TimestampReset", f"the film's clock restarted {len(resets)} time(s), first at "
                       f"{resets[0]:.2f}s (a recording joined from pieces?); times continue across it")
        if overlaps:
            yield warn("decode", "AudioOverlap", f"the sound's timestamps went back {len(overlaps)} time(s), first at "
                       f"{overlaps[0][0]:.2f}s by {overlaps[0][1] * 1000:.0f} ms (packets repeated in the file?): the "
                       f"{sum(o[2] for o in overlaps):.2f}s of sound given again were dropped, so the sound after "
                       "them stays in step with the picture")
        if resampler is not None and resampler.cancelled_s >= CANCELLED_S:
            yield warn("decode", "StereoCancelled", f"the stereo sound's two channels cancel each other for "
                       f"{resampler.cancelled_s:.1f}s (one inverted, a mis-wired transfer?): heard there as their "
                       "difference, which keeps a centred voice (transforms.mono)")
        if n_untimed:
            yield warn("decode", "MissingTimestamps", f"{n_untimed} of the picture's {n_video} frames had no time of "
                       "their own (a raw stream, or a program stream that stamps only some of its packets): each was "
                       f"placed a frame ({nominal * 1000:.0f} ms at {1 / nominal:.3g} fps) after the one before it")
        if planner.extendable and media_end >= planner.header_end + cfg.min_clip_s:  # not a last frame's overhang
            yield warn("decode", "DurationUnderstated", f"the header gave {job.info.duration_s:.2f}s, the media "
                       f"ran to {media_end:.2f}s; clips cover all of it")
        # The demuxer may end quietly long before the header's end (an mp4 whose index is damaged): say so, as
        # a read error would. Not for a planned pass (decode_clip stops once its clips are out).
        if plan is None and not read_failed and job.info.duration_s - media_end > max(
                SHORT_MEDIA_S, SHORT_MEDIA_SHARE * job.info.duration_s):
            yield warn("decode", "MediaEndedEarly", f"the media ended at {media_end:.2f}s, the header gives "
                       f"{job.info.duration_s:.2f}s: the rest could not be read (a damaged or cut file?)")
        past = [c for c in planner.lines if c.start_s >= media_end + LINES_PAST_END_S]
        if plan is None and past:  # lines for a longer cut, or for another film: none of them is in a clip
            yield warn("subtitles", "LinesPastEnd", f"{len(past)} of the film's {len(planner.lines)} subtitle lines "
                       f"start after its end ({media_end:.2f}s; the first at {past[0].start_s:.2f}s: "
                       f"\"{past[0].text[:60]}\"): subtitles for another cut of the film?")
        if plan is None and a is not None and audio.t0 is None and not audio_failed:
            yield warn("decode", "AudioDecodeError", "the film's audio track gave no sound (its packets are "
                       "damaged or missing); its clips have no audio")
        if plan is None and v is not None and n_video == 0 and "video" not in damage_seen:
            yield warn("decode", "VideoDecodeError", "the film's video track gave no picture (its packets are "
                       "damaged or missing; the decoder dropped them without an error); its clips have no frames")
        if cue_source is not None:
            planner.on_asr(cue_source.finish(), False, media_end)
        planner.request_grid(media_end)
        picker.finish(show=picture_ok)
        planner.finish(media_end)
        # Clips planned past the real end of the media (the header over-stated the duration) are dropped.
        planner.queue = [c for c in planner.queue if c.spec.start_s < media_end - 1e-3]
        if planner.queue and planner.queue[-1].spec.end_s > media_end and media_end > planner.queue[-1].spec.start_s:
            last = planner.queue[-1].spec
            if media_end - last.start_s < cfg.min_clip_s and last.clip_index > 0 and not last.text:
                planner.queue.pop()  # a sliver of a planned window: the film ended just after the one before
                before = planner.queue[-1].spec if planner.queue else None
                cut_short = job.info.duration_s - media_end >= cfg.min_clip_s  # (else the plan as before)
                if cut_short and before is not None and abs(before.end_s - last.start_s) < 1e-6 and not before.text:
                    planner.queue[-1].spec = dataclasses.replace(before, end_s=media_end)  # (as plan_windows joins)
                elif cut_short and plan is None:  # the clip before has gone out: the tail is in no clip (was silent)
                    yield warn("decode", "TailNotScored", f"the media ended at {media_end:.2f}s, "
                               f"{media_end - last.start_s:.2f}s after the last clip, which had gone out: that tail "
                               f"(under --min_clip_s, the header gave {job.info.duration_s:.2f}s) is in no clip")
            else:
                planner.queue[-1].spec = dataclasses.replace(last, end_s=media_end)
        planner.end_film()
        yield from emit_ready(end_of_film=True)
        stats.update(media_end_s=media_end, n_video_frames=n_video, skipped_frames=n_skipped,
                     converted=picker.converted, audio_failed=audio_failed, asr_cues=planner.asr_cues)


# How decode_image turns an image's bytes into pixels: part of the labelled-data feature caches' keys (training). 2
# (2026-12-05): a photo stored sideways is turned upright by its EXIF orientation. 3 (2026-12-06): a 16-bit, 32-bit
# or float greyscale image (PNG I;16, TIFF I or F) is scaled to 8 bits by its range; 8-bit images decode as before.
IMAGE_RULE = "3"


def decode_image(data: bytes) -> np.ndarray:
    """Encoded image bytes (JPEG, PNG, ...) -> uint8 RGB [H, W, 3], turned upright as a viewer shows it (a camera's
    EXIF orientation; a phone photo is stored sideways), as the decode pass turns a rotated video's frames. A
    greyscale image of more than 8 bits is scaled to 8 by the range its values are stored in: 16 bits for I;16, the
    least of [0, 1], [0, 255], [0, 65535] that holds them for I and F (before 2026-12-06 convert("RGB") clipped
    them at 255: a 16-bit grey face came out near white)."""
    import io

    from PIL import Image, ImageOps
    with Image.open(io.BytesIO(data)) as img:
        img = ImageOps.exif_transpose(img)
        if img.mode in ("I", "F") or img.mode.startswith("I;16"):
            values = np.nan_to_num(np.asarray(img, np.float64))
            peak = float(values.max(initial=0.0))
            ranges = {"I": (255.0, 65535.0), "F": (1.0, 255.0, 65535.0)}.get(img.mode, (65535.0,))  # I;16: 16 bits
            top = next((r for r in ranges if peak <= r), peak)
            img = Image.fromarray(np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8))
        return np.asarray(img.convert("RGB"))


def still_clip(image: np.ndarray, cfg: Optional[DecodeConfig] = None) -> DecodedClip:
    """A photo or a film still as a one-frame clip, its frame converted by swscale to the square --image_size
    as the decode pass converts a film's frames (labelled frames and photos in training and evaluation)."""
    import av
    cfg = cfg or DecodeConfig()
    image = crop_still(np.asarray(image, np.uint8))  # its bars, as a film's (transforms.picture_area)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image, np.uint8), format="rgb24")
    rgb = frame.to_ndarray(width=cfg.image_size, height=cfg.image_size, format="rgb24")
    face = None
    if cfg.face_width:
        h, w = image.shape[:2]
        fh = max(2, int(round(cfg.face_width * h / max(w, 1) / 2)) * 2)
        face = frame.to_ndarray(width=cfg.face_width, height=fh, format="rgb24")[None]
    return DecodedClip(film_id="still", spec=ClipSpec(0, 0.0, 1.0, "window"), frames=rgb[None],
                       frame_times=np.zeros(1), audio=np.zeros(0, np.float32), face_frames=face)


def decode_audio(source) -> np.ndarray:
    """A whole audio file (a path, or encoded bytes such as Ogg Opus) -> 16 kHz mono float32, through the same
    mono conversion and per-clip resampling as the decode pass."""
    import io

    import av
    from transforms.mono import MonoResampler
    from transforms.probe import METADATA_ERRORS
    with av.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source,
                 metadata_errors=METADATA_ERRORS) as container:
        stream = container.streams.audio[0]
        rate = int(stream.codec_context.sample_rate or stream.rate or SAMPLE_RATE)
        mono = MonoResampler(rate)
        chunks = [o for f in container.decode(stream) for o in mono.resample(f)] + mono.resample(None)
    wave = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return to_sample_rate(wave, rate)


def decode_clip(path: str, start_s: float, end_s: float, cfg: Optional[DecodeConfig] = None, *,
                text: Optional[str] = None, context: Sequence[str] = (), frame_width: Optional[int] = None,
                on_grid: bool = False) -> DecodedClip:
    """One clip [start_s, end_s) of a film, decoded by the pipeline's own pass (a seek, then decode_film):
    frames at the featurizer's sample times (model.featurize.clip_sample_times), and 16 kHz mono audio. on_grid: a
    clip of a film its run planned as it played (planned_late: shots, recognised speech) takes the grid frames the
    run took (grid_sample_times)."""
    from transforms.discover import film_id_for
    from transforms.probe import probe_film
    cfg = cfg or DecodeConfig()
    info = probe_film(path)
    job = FilmJob(ref=FilmRef(path=path, size_bytes=0, film_id=film_id_for(path)), info=info, cues=(),
                  needs_asr=False, config_hash="")
    spec = ClipSpec(0, float(start_s), float(end_s), "window", text=text,
                    text_source="subtitle" if text else "none", context=tuple(context))
    for item in decode_film(job, cfg, plan=[spec], frame_width=frame_width, plan_on_grid=on_grid):
        if isinstance(item, DecodedClip):
            return item
    raise DecodeError(f"{path}: nothing decoded in [{start_s:.2f}, {end_s:.2f}) s")
