"""The picture inside a film's black bars: letterbox (a scope film in a 16:9 frame), pillarbox (4:3 in 16:9),
windowbox (both).

The models learnt from pictures without bars: the scene classifier from photos (Emotion6), the face detector at
--face_width over the picture. Fed the bars, the scene classifier reads a 4:3 photo in a 16:9 frame at 0.441 on
Emotion6 dev against 0.535 without, a 2.39:1 crop in a 16:9 frame at 0.433 against 0.483 (review of 2026-12-07,
its predictions drifting to sadness and fear at about the same confidence), and a 4:3 picture in a 16:9 frame is
searched for faces at 360 px wide, not 480. So the bars are found once per film, from frames sampled across it
(rows and columns at or under FFmpeg's cropdetect limit, BAR_LUMA, that are also flat and steady from sample to
sample, as a matte is and a dark picture is not: _bar_rows), and every frame the models read is converted from the
picture alone (transforms.decode.FramePicker). A still (a labelled photo or film still in training and evaluation:
transforms.decode.still_clip) is judged by itself, by the same rule.

An area is a tuple (top, bottom, left, right): the bars' share of the stored frame's height and width."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

Area = tuple[float, float, float, float]
BAR_LUMA = 24  # (of 255) cropdetect's default limit: a bar's pixels are no brighter (but SPARSE ones)
LIT_LUMA = 64  # a sample with no pixel brighter than this (a fade, a night shot, a black frame) tells nothing
MIN_BAR = 0.02  # a bar narrower than this share of its side is an edge of the picture (overscan, a dark border)
MIN_PICTURE = 0.4  # ... and a picture narrower than this share is no picture between bars (dark samples): no crop
SAMPLE_AT = (0.1, 0.3, 0.5, 0.7, 0.9)  # where in the film the samples are taken
SAMPLE_WIDTH = 256  # the samples' width (the stored frame's shape): bars are found to 0.4 % of the width
MIN_LIT = 2  # samples with a picture needed to find a film's bars (a still: its one)
EDGE_LIT = 0.5  # a bar ends in a straight edge: at least this share of a row (column) of picture beside it is lit
EDGE_ROWS = 3  # ... among the first rows beside it (a scaler blends the picture's edge row with the bar)
SPARSE = 0.1  # a bar's row has at most this share of pixels brighter than BAR_LUMA (a burnt-in subtitle, ringing)
FLAT = 6  # ... and its darker pixels lie within this many levels: a matte is flat, a dark picture's darks vary


def bars(gray: Sequence[np.ndarray], min_lit: int = MIN_LIT) -> Optional[Area]:
    """The bars of frames of one shape (uint8 luma, one per sample) as an Area; None where there are none, or the
    samples cannot tell (fewer than min_lit with a picture). A side's bars count in pairs (top and bottom, left
    and right), each at least MIN_BAR: a dark stretch along one edge is picture."""
    lit = [np.asarray(g) for g in gray if np.asarray(g).size and np.asarray(g).max() > LIT_LUMA]
    if len(lit) < min_lit or len({g.shape for g in lit}) != 1:
        return None
    stack = np.stack(lit)
    peak, floor = stack.max(axis=0), stack.min(axis=0)  # each pixel at its brightest and darkest in the samples
    top, bottom = _pair(peak, floor)
    left, right = _pair(peak.T, floor.T)
    return (top, bottom, left, right) if top + bottom + left + right > 0 else None


def _bar_rows(peak: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """[rows] bool: which rows of a picture (each pixel at its brightest, `peak`, and darkest, `floor`, in the
    samples) are a bar's: dark (at most SPARSE of the row above BAR_LUMA: a subtitle burnt into a bar, an encoder's
    ringing at its edge), flat (its darker pixels within FLAT levels: a matte, not a dark picture, whose darks vary)
    and steady (each pixel within FLAT levels from sample to sample: a dark stretch of picture changes with the
    scene; a still's one sample cannot tell)."""
    bright = (peak > BAR_LUMA).mean(axis=1)
    low, high = np.percentile(peak, [5, 100 * (1 - SPARSE)], axis=1)
    moving = np.percentile(peak.astype(np.int16) - floor, 100 * (1 - SPARSE), axis=1)
    return (bright <= SPARSE) & (high - low <= FLAT) & (moving <= FLAT)


def _pair(peak: np.ndarray, floor: np.ndarray) -> tuple[float, float]:
    """The bars at both ends of a picture's rows (`peak`, `floor`: [rows, columns], as _bar_rows reads them): their
    shares of the rows, or (0, 0) where either is under MIN_BAR, the picture between is under MIN_PICTURE, or the
    picture does not start at the bar's edge (EDGE_LIT of a row among the first EDGE_ROWS beside it lit: a dark
    background fading out around a subject, a vignette, is the picture's own)."""
    edges = (peak[[0, 1, -2, -1]] > BAR_LUMA).mean(axis=1) > SPARSE  # two bright rows at an end: no bar there
    if len(peak) < 4 or edges[:2].all() or edges[2:].all():
        return 0.0, 0.0
    bar = _bar_rows(peak, floor)
    n = len(bar)
    picture = ~bar[:-1] & ~bar[1:]  # the picture starts at two rows that are no bar's (one noisy row inside a bar)
    if not picture.any():
        return 0.0, 0.0
    first, last = int(np.argmax(picture)), n - 1 - int(np.argmax(picture[::-1]))
    lit = (peak > BAR_LUMA).mean(axis=1) >= EDGE_LIT
    near, far = lit[first:first + EDGE_ROWS], lit[max(0, last - EDGE_ROWS + 1):last + 1][::-1]
    if not (near.any() and far.any()):
        return 0.0, 0.0
    first, last = first + int(np.argmax(near)), last - int(np.argmax(far))  # (a row the scaler blended goes too)
    head, tail = first / n, (n - 1 - last) / n
    if head < MIN_BAR or tail < MIN_BAR or 1 - head - tail < MIN_PICTURE:
        return 0.0, 0.0
    return head, tail


def sample_size(width: int, height: int) -> tuple[int, int]:
    """The samples' (width, height): SAMPLE_WIDTH at the stored frame's shape (even height)."""
    return SAMPLE_WIDTH, max(2, int(round(SAMPLE_WIDTH * height / max(width, 1) / 2)) * 2)


def film_area(container, stream, duration_s: float, start_s: float = 0.0) -> Optional[Area]:
    """A film's bars from one frame at each of SAMPLE_AT of it (the first frame decoded after seeking there), None
    where there are none or the samples cannot tell (a sample of another size than the stream's is left out).
    `start_s`: the film's clock's start in the container (transforms.probe.film_start_s)."""
    import av

    from transforms.probe import demux
    w, h = sample_size(stream.codec_context.width, stream.codec_context.height)
    samples, shape = [], (stream.codec_context.width, stream.codec_context.height)
    for at in SAMPLE_AT:
        container.seek(int((start_s + at * duration_s) * av.time_base), backward=True)
        frame = _first_frame(demux(container, stream))
        if frame is not None and (frame.width, frame.height) == shape:  # (a part of another shape: not the film's)
            samples.append(frame.to_ndarray(width=w, height=h, format="gray"))
    return bars(samples)


def _first_frame(packets):
    import av
    for packet in packets:
        try:
            frames = packet.decode()
        except (av.error.FFmpegError, ValueError):
            continue
        if frames:
            return frames[0]
    return None


def crop_converted(convert: Callable[[int, int], np.ndarray], area: Optional[Area], width: int,
                   height: int) -> np.ndarray:
    """The picture inside `area` at width x height: `convert(w, h)` (the whole stored frame scaled to w x h) is
    asked for the size at which the picture is width x height, and the picture cut out of it (one scaling, as
    without bars). Without an area, convert(width, height)."""
    if not area:
        return convert(width, height)
    top, bottom, left, right = area
    w, h = int(round(width / (1 - left - right))), int(round(height / (1 - top - bottom)))
    whole = convert(w, h)
    y, x = min(int(round(top * h)), h - height), min(int(round(left * w)), w - width)
    return np.ascontiguousarray(whole[y:y + height, x:x + width])


def crop_still(image: np.ndarray) -> np.ndarray:
    """A still (RGB) without its bars, judged from the still alone (bars, min_lit 1)."""
    from model.featurize import gray_frame
    h, w = image.shape[:2]
    step = max(1, w // SAMPLE_WIDTH)
    area = bars([gray_frame(image[::step, ::step])], min_lit=1)
    if not area:
        return image
    top, bottom, left, right = area
    y0, y1 = int(round(top * h)), h - int(round(bottom * h))
    x0, x1 = int(round(left * w)), w - int(round(right * w))
    return image[y0:y1, x0:x1]
