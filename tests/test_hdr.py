"""HDR (PQ / HLG) frames reach the models as their SDR picture."""
import numpy as np
import pytest

from testing.films import make_colour_film, make_hdr_copy, sdr_to_pq
from tests.test_decode import decode
from transforms import hdr


def test_transfer_functions_match_the_standards():
    assert hdr.pq_to_nits(np.array([0.0, 1.0])) == pytest.approx([0.0, 10000.0], rel=1e-4)
    assert hdr.nits_to_pq(np.array([203.0]))[0] == pytest.approx(0.5806, abs=1e-3)  # BT.2408's reference white
    x = np.linspace(0, 1, 101)
    assert hdr.nits_to_pq(hdr.pq_to_nits(x)) == pytest.approx(x, abs=1e-5)
    # HLG: 75 % signal grey is reference white on a 1,000 nit display (BT.2408); full signal is its peak
    grey = hdr.hlg_to_nits(np.full((1, 3), 0.75, np.float32))[0]
    assert grey == pytest.approx([203.0] * 3, rel=0.02)
    assert hdr.hlg_to_nits(np.ones((1, 3), np.float32))[0] == pytest.approx([1000.0] * 3, rel=1e-3)


def test_highlights_roll_off_and_the_rest_is_left_alone():
    dim = np.array([[0.2, 0.5, 0.7]], np.float32)
    assert hdr.roll_off(dim) == pytest.approx(dim)
    bright = np.array([[1.0, 0.5, 0.25], [4.0, 2.0, 1.0], [40.0, 20.0, 10.0]], np.float32)
    out = hdr.roll_off(bright)
    assert (out.max(axis=1) < 1).all() and np.all(np.diff(out.max(axis=1)) > 0)
    assert out[:, 1] / out[:, 0] == pytest.approx([0.5] * 3)  # hue kept: channel ratios unchanged


def test_sdr_picture_coded_as_pq_comes_back():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    coded = sdr_to_pq(rgb).astype(np.float32) / 65535.0
    linear = np.maximum((hdr.pq_to_nits(coded) / hdr.REFERENCE_WHITE_NITS) @ hdr.BT2020_TO_BT709.T, 0)
    back = np.power(np.minimum(linear, 1.0), 1 / hdr.GAMMA) * 255.0
    assert np.abs(back - rgb).max() <= 2.5  # before the roll-off, exact to the 4-digit primaries matrices


def test_an_hdr10_master_decodes_to_its_sdr_picture(tmp_path):
    # The same film as SDR (MPEG-4) and as an HDR10 master (HEVC Main 10, BT.2020, PQ). Converted the usual
    # way the master's frames are dim and grey; through transforms.hdr they are the SDR frames again.
    sdr = make_colour_film(tmp_path / "film.mp4", seconds=4, size=(160, 96))
    master = make_hdr_copy(sdr, tmp_path / "film-hdr10.mp4")
    a, _, _ = decode(sdr, segment="window", skip_nonref=False)
    b, _, _ = decode(master, segment="window", skip_nonref=False)
    assert [c.spec.start_s for c in a] == [c.spec.start_s for c in b]
    fa, fb = (np.concatenate([c.frames for c in clips]).astype(float) for clips in (a, b))
    face_a, face_b = (np.concatenate([c.face_frames for c in clips]).astype(float) for clips in (a, b))
    assert np.abs(fa - fb).mean() < 4 and np.abs(face_a - face_b).mean() < 4
    import av
    with av.open(str(master)) as c:
        frame = next(c.decode(video=0))
        assert hdr.is_hdr(frame)
        naive = frame.to_ndarray(width=224, height=224, format="rgb24").astype(float)
    assert np.abs(naive - fa[0]).mean() > 3 * np.abs(fb[0] - fa[0]).mean()
