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


def clip_media(path: str, start_s: float, end_s: float, n_frames: int, image_size: int = 224,
               sample_rate: int = 16000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One clip's encoder inputs, read with two seeks instead of a pass over the film: frames at the
    pipeline's sample times (transforms.segment.sample_times) squashed to image_size x image_size RGB as
    transforms.decode does, and its audio as 16 kHz mono float32 (empty without an audio stream)."""
    from transforms.segment import sample_times
    times = sample_times(start_s, end_s, n_frames)
    frames, got = [], []
    with contextlib.closing(_open(path)) as container:
        if container.streams.video and times:
            stream = container.streams.video[0]
            for t in times:
                frame = _frame_at(container, stream, t)
                if frame is not None:
                    frames.append(frame.to_ndarray(width=image_size, height=image_size, format="rgb24"))
                    got.append(t)
        audio = np.zeros(0, np.float32)
        if container.streams.audio:
            stream = container.streams.audio[0]
            offset = float((stream.start_time or 0) * stream.time_base)
            container.seek(int((start_s + offset) / stream.time_base), stream=stream, backward=True)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            chunks, t0 = [], None
            for af in container.decode(stream):
                if t0 is None:
                    t0 = (af.time or 0.0) - offset
                chunks += [o.to_ndarray().reshape(-1) for o in resampler.resample(af)]
                if (af.time or 0.0) - offset > end_s:
                    break
            if chunks:
                wave = np.concatenate(chunks).astype(np.float32)
                a = max(0, int(round((start_s - t0) * sample_rate)))
                audio = wave[a:a + int(round((end_s - start_s) * sample_rate))]
    shape = (0, image_size, image_size, 3)
    return (np.stack(frames) if frames else np.zeros(shape, np.uint8)), np.asarray(got, np.float64), audio
