"""Frame thumbnails for the report, taken from the film itself by the pipeline's own decoder.

Each thumbnail is one `transforms.decode.decode_clip` of a tiny span around the wanted time (one sampled
frame, at the film's aspect ratio), so the report sees exactly the frames the pipeline saw. A film that cannot
be opened or decoded gets placeholders (None), never an exception: the report is a view of the tables and
must not die on one unreadable file. Paths may be bucket URLs (gs://...): transforms.probe opens them.
"""
from __future__ import annotations

import base64
import io
import logging
import os
from typing import Iterable, Optional

import numpy as np

LOG = logging.getLogger(__name__)

THUMB_WIDTH = 240
JPEG_QUALITY = 72
SPAN_S = 0.02  # half the span decoded around a wanted time: its one sampled frame is the nearest to that time


def jpeg_b64(rgb: np.ndarray, width: int = THUMB_WIDTH, quality: int = JPEG_QUALITY) -> str:
    from PIL import Image
    img = Image.fromarray(rgb)
    if img.width > width:
        img = img.resize((width, max(1, round(img.height * width / img.width))), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _film_duration(path: str) -> Optional[float]:
    """The film's duration from its header (0.0 when unknown). Raises when the film cannot be opened."""
    from transforms.probe import probe_film
    return float(probe_film(path).duration_s or 0.0)


def frame_at(path: str, t_s: float, width: int = THUMB_WIDTH, duration_s: float = 0.0) -> Optional[np.ndarray]:
    """The film's frame nearest to film time t_s as RGB uint8 [h, width, 3] (the film's aspect ratio); a
    time past the end takes the last frame. Raises when nothing can be decoded there."""
    from transforms.decode import DecodeConfig, decode_clip
    t = max(0.0, float(t_s))
    if duration_s > 0:
        t = min(t, max(0.0, duration_s - SPAN_S))
    half = min(SPAN_S, t) if t > 0 else SPAN_S
    start, end = (t - half, t + half) if t > 0 else (0.0, SPAN_S)
    clip = decode_clip(path, start, end, DecodeConfig(frames_per_clip=1), frame_width=width)
    return clip.frames[0] if len(clip.frames) else None


def frames_at(path: str, times_s: Iterable[float], width: int = THUMB_WIDTH) -> dict[float, Optional[np.ndarray]]:
    """RGB frames (scaled to `width`) at each time; None where the film or that frame cannot be read."""
    times = sorted(set(float(t) for t in times_s))
    out: dict[float, Optional[np.ndarray]] = {t: None for t in times}
    if not times:
        return out
    try:
        duration = _film_duration(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable film becomes placeholders
        # a film named relatively (--input 'archive/*.mp4') is where the run was started, not where the report is
        hint = (" (a relative path, as the run's --input named it: run the report from the folder the run was "
                "started in)" if "://" not in path and not os.path.isabs(path) and not os.path.exists(path) else "")
        LOG.warning("cannot open %s for thumbnails: %s%s", path, exc, hint)
        return out
    for t in times:
        try:
            out[t] = frame_at(path, t, width, duration)
        except Exception as exc:  # noqa: BLE001 - one bad frame leaves one placeholder
            LOG.warning("no frame at %.2fs in %s: %s", t, path, exc)
    return out


def thumbnails(path: str, times_s: Iterable[float], width: int = THUMB_WIDTH) -> dict[float, Optional[str]]:
    """base64 JPEG thumbnails at each time; None where no frame could be read."""
    return {t: (jpeg_b64(f, width) if f is not None else None) for t, f in frames_at(path, times_s, width).items()}
