"""Frame thumbnails for the report, taken from the film itself with PyAV: one seek + decode per clip.

A film that cannot be opened or decoded gets placeholders (None), never an exception: the report is a
view of the tables and must not die on one unreadable file.
"""
from __future__ import annotations

import base64
import contextlib
import io
import logging
from typing import Iterable, Optional

import av
import numpy as np

LOG = logging.getLogger(__name__)

THUMB_WIDTH = 240
JPEG_QUALITY = 72


def _open(path: str):
    if "://" not in path:
        return av.open(path)
    # Bucket paths (gs://, s3://...) go through Beam's FileSystems, which gives a seekable file object.
    from apache_beam.io.filesystems import FileSystems
    return av.open(FileSystems.open(path, mime_type="application/octet-stream"))


def _frame_at(container, stream, t_s: float):
    """The first decoded frame at or after film time t_s (seeking to the keyframe before it).

    Film time counts from the stream's first timestamp, as the clip tables do."""
    tb = stream.time_base
    start = stream.start_time or 0
    target = t_s + float(start * tb)
    container.seek(int(target / tb), stream=stream, backward=True, any_frame=False)
    last = None
    for frame in container.decode(stream):
        last = frame
        if frame.time is None or frame.time + 1e-3 >= target:
            return frame
    return last  # t_s past the last frame: the film's last frame


def jpeg_b64(rgb: np.ndarray, width: int = THUMB_WIDTH, quality: int = JPEG_QUALITY) -> str:
    from PIL import Image
    img = Image.fromarray(rgb)
    if img.width > width:
        img = img.resize((width, max(1, round(img.height * width / img.width))), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def frames_at(path: str, times_s: Iterable[float], width: int = THUMB_WIDTH) -> dict[float, Optional[np.ndarray]]:
    """RGB frames (scaled to `width`) at each time; None where the film or that frame cannot be read."""
    times = sorted(set(float(t) for t in times_s))
    out: dict[float, Optional[np.ndarray]] = {t: None for t in times}
    if not times:
        return out
    try:
        container = _open(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable film becomes placeholders
        LOG.warning("cannot open %s for thumbnails: %s", path, exc)
        return out
    with contextlib.closing(container):
        if not container.streams.video:
            return out
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for t in times:
            try:
                frame = _frame_at(container, stream, t)
                if frame is not None:
                    h = max(2, round(frame.height * width / max(frame.width, 1)) // 2 * 2)
                    out[t] = frame.to_ndarray(format="rgb24", width=width, height=h)
            except Exception as exc:  # noqa: BLE001 - one bad seek leaves one placeholder
                LOG.warning("no frame at %.2fs in %s: %s", t, path, exc)
    return out


def thumbnails(path: str, times_s: Iterable[float], width: int = THUMB_WIDTH) -> dict[float, Optional[str]]:
    """base64 JPEG thumbnails at each time; None where no frame could be read."""
    return {t: (jpeg_b64(f, width) if f is not None else None) for t, f in frames_at(path, times_s, width).items()}
