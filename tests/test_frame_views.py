"""Which sampled frames of a clip share one ViT pass and one face search (model.featurize.distinct_views): a small
region that changes (a head entering a wide shot, a mouth moving) keeps its frame a view of its own, while a true
still, re-sent or decoded with codec noise or grain, stays one view."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from model.featurize import distinct_views
from testing.films import encode_film
from transforms.decode import decode_clip

FPS = 25


def scene(width: int = 480, height: int = 270, seed: int = 0) -> np.ndarray:
    """A smooth, textured RGB picture (a wide shot's background): low-frequency noise scaled up."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 200, (height // 30 + 1, width // 30 + 1, 3), dtype=np.uint8)
    return np.ascontiguousarray(cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC))


def head(side: int) -> np.ndarray:
    """A crude face side x side px: a skin-toned oval on darker hair, two eyes and a mouth."""
    img = np.full((side, side, 3), (60, 45, 35), np.uint8)
    c = side // 2
    cv2.ellipse(img, (c, c + side // 10), (side * 3 // 10, side * 4 // 10), 0, 0, 360, (205, 160, 130), -1)
    for x in (c - side // 7, c + side // 7):
        cv2.circle(img, (x, c), max(1, side // 14), (30, 25, 25), -1)
    cv2.ellipse(img, (c, c + side * 3 // 10), (side // 7, max(1, side // 20)), 0, 0, 360, (120, 40, 40), -1)
    return img


def whole_mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    """The rule before 2026-12-07: mean absolute difference of the frames' 32x32 gray thumbnails."""
    ta, tb = (cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (32, 32), interpolation=cv2.INTER_AREA)
              .astype(np.float32) for f in (a, b))
    return float(np.abs(ta - tb).mean())


def test_a_small_head_entering_a_static_wide_shot_is_a_view_of_its_own(tmp_path):
    # The review's case: a 44 px head appears in the clip's last second of a static 480x270 shot. Before 2026-12-07
    # its frame (whole-thumbnail difference about 1, below 2) shared the first frame's pass: no face was searched.
    background = scene()
    with_head = background.copy()
    with_head[120:164, 340:384] = head(44)
    film = encode_film(tmp_path / "wide.mp4", paint=lambda i, t: with_head if t >= 3.0 else background,
                       frame_times=[i / FPS for i in range(4 * FPS)], fps=FPS, size=(480, 270),
                       video_codec="libx264", video_options={"crf": "18"})
    frames = decode_clip(str(film), 0.0, 4.0).frames
    assert len(frames) == 4
    assert whole_mean_difference(frames[0], frames[3]) < 2.0  # what the whole-thumbnail rule could not see
    assert distinct_views(frames) == [0, 3]


def test_a_mouth_and_brows_moving_in_a_talking_face_are_new_views():
    # A talking face before a fixed camera (GRID): only the mouth and brows move between the sampled frames.
    base = scene(224, 224, seed=1)
    base[60:164, 72:152] = cv2.resize(head(80), (80, 104))
    talking = [base.copy() for _ in range(3)]
    talking[1][140:152, 100:124] = (70, 20, 20)  # the mouth opens
    talking[2][92:98, 84:140] = (40, 30, 30)  # the brows come down, the mouth closed again
    frames = np.stack(talking)
    assert max(whole_mean_difference(frames[0], f) for f in frames[1:]) < 2.0
    assert distinct_views(frames) == [0, 1, 2]


@pytest.mark.parametrize("codec, options", [("libx264", {"preset": "veryfast", "crf": "23"}),
                                            ("libx264", {"crf": "30", "g": "12"}), ("mpeg4", {})])
def test_a_still_decoded_with_codec_noise_is_one_view(tmp_path, codec, options):
    # One picture for 4 s, as the labelled still+voice films are written (x264 veryfast crf 23), and harsher
    # encodings with keyframes between the sampled frames: each frame's codec noise differs, the view does not.
    picture = scene(seed=2)
    picture[120:164, 340:384] = head(44)
    film = encode_film(tmp_path / "still.mp4", paint=lambda i, t: picture,
                       frame_times=[i / FPS for i in range(4 * FPS)], fps=FPS, size=(480, 270),
                       video_codec=codec, video_options=options)
    frames = decode_clip(str(film), 0.0, 4.0).frames
    assert len(frames) == 4 and distinct_views(frames) == [0]


def test_a_still_with_film_grain_or_re_sent_is_one_view():
    rng = np.random.default_rng(0)
    picture = scene(224, 224, seed=3)
    assert distinct_views(np.stack([picture] * 4)) == [0]
    grain = np.stack([np.clip(picture + rng.normal(0, 8, picture.shape), 0, 255).astype(np.uint8)
                      for _ in range(4)])
    assert distinct_views(grain) == [0]
