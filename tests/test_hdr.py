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


# -- colour spaces FFmpeg's plain RGB conversion misreads: P3 HDR, wide-gamut SDR, a DCP's X'Y'Z' ----------------
# Flat patches side by side (so chroma subsampling does not matter), read at their centres through the pipeline's
# FramePicker, against a numpy reference built from published matrices (not from transforms.hdr's derivation).

PATCHES = np.array([[0.5, 0.5, 0.5], [0.9, 0.9, 0.9], [0.2, 0.2, 0.2], [0.85, 0.62, 0.5], [0.55, 0.38, 0.3],
                    [0.8, 0.15, 0.15], [0.15, 0.7, 0.2], [0.2, 0.25, 0.8], [0.9, 0.8, 0.2], [0.3, 0.6, 0.75]])
SIDE = 16  # pixels a patch
# RGB -> XYZ of BT.709 (ITU-R BT.709) and P3-D65 (SMPTE EG 432-1), as published
NPM_709 = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
NPM_P3_D65 = np.array([[0.4866, 0.2657, 0.1982], [0.2290, 0.6917, 0.0793], [0.0000, 0.0451, 1.0439]])
BT2087_709_TO_2020 = np.array([[0.6274, 0.3293, 0.0433], [0.0691, 0.9195, 0.0114], [0.0164, 0.0880, 0.8956]])


def _ycbcr_10bit(rgb: np.ndarray) -> np.ndarray:
    """Per patch R'G'B' -> limited-range 10-bit BT.2020 (non-constant luminance) Y'CbCr codes."""
    kr, kb = 0.2627, 0.0593
    y = rgb @ np.array([kr, 1 - kr - kb, kb])
    cb, cr = (rgb[:, 2] - y) / (2 * (1 - kb)), (rgb[:, 0] - y) / (2 * (1 - kr))
    return np.round(np.stack([16 + 219 * y, 128 + 224 * cb, 128 + 224 * cr], 1) * 4)


def _patch_frame(rgb: np.ndarray, **tags):
    """A yuv420p10le BT.2020-matrix frame of the patches (R'G'B' in [0, 1]) with these colour tags."""
    import av
    ycc = _ycbcr_10bit(rgb)
    frame = av.VideoFrame(SIDE * len(rgb), SIDE, "yuv420p10le")
    for plane, values, side in zip(frame.planes, ycc.T, (SIDE, SIDE // 2, SIDE // 2)):
        buf = np.zeros((plane.height, plane.line_size // 2), np.uint16)
        buf[:, :side * len(rgb)] = np.repeat(values, side).astype(np.uint16)
        plane.update(buf.tobytes())
    for name, value in dict(colorspace=9, color_range=1, **tags).items():
        setattr(frame, name, value)
    return frame


def _pipeline_patches(frame, scale: int = 1) -> np.ndarray:
    """The RGB FramePicker makes of a patch frame (at 1/scale of its size), at each patch's centre."""
    from transforms.decode import FramePicker
    side = SIDE // scale
    rgb, _ = FramePicker(frame.width // scale, frame.height // scale)._rgb(frame)
    return rgb[side // 2, side // 2::side].astype(float)


def test_primaries_conversions_match_the_published_ones():
    assert hdr.BT709_TO_BT2020 == pytest.approx(BT2087_709_TO_2020, abs=2e-4)
    assert hdr.to_bt709_matrix(hdr.P3_D65_PRIMARIES) == pytest.approx(np.linalg.inv(NPM_709) @ NPM_P3_D65, abs=5e-4)
    assert hdr.XYZ_TO_BT709 == pytest.approx(np.linalg.inv(NPM_709), abs=5e-4)
    for primaries in hdr.WIDE_GAMUT:  # white stays white (a DCI white adapted to D65)
        assert hdr.to_bt709_matrix(primaries).sum(axis=1) == pytest.approx([1, 1, 1], abs=1e-5)
    assert np.abs(hdr.to_bt709_matrix(hdr.DCI_P3_PRIMARIES) - hdr.to_bt709_matrix(hdr.P3_D65_PRIMARIES)).max() > 0.05


def test_a_pq_master_graded_in_p3_is_mapped_from_p3():
    # An IMF / ProRes HDR master: PQ, P3-D65 primaries (smpte432). Before 2026-12-06 it was read as BT.2020:
    # over-saturated, skin pushed red (mean error 10 of 255, up to 76)
    linear = PATCHES ** hdr.GAMMA
    p3 = np.maximum(linear @ (np.linalg.inv(NPM_P3_D65) @ NPM_709).T, 0)
    frame = _patch_frame(hdr.nits_to_pq(p3 * hdr.REFERENCE_WHITE_NITS), color_trc=hdr.PQ, color_primaries=12)
    want = np.round(255 * np.power(hdr.roll_off(linear.astype(np.float32)), 1 / hdr.GAMMA))
    err = np.abs(_pipeline_patches(frame) - want)
    assert err.max() <= 4 and err.mean() < 1.5


@pytest.mark.parametrize("primaries, trc, gamma", [(9, 14, 2.4), (12, 1, 2.4), (9, 4, 2.2)])
def test_wide_gamut_sdr_frames_are_mapped_to_bt709(primaries, trc, gamma):
    # SDR in BT.2020 (trc bt2020-10) or P3 primaries, or a gamma 2.2 one: before 2026-12-06 FFmpeg's rgb24
    # conversion kept the wide-gamut code values, colours washed out (mean error 12.6 of 255)
    to_wide = BT2087_709_TO_2020 if primaries == 9 else np.linalg.inv(NPM_P3_D65) @ NPM_709
    coded = np.power(np.clip(PATCHES ** gamma @ to_wide.T, 0, 1), 1 / gamma)
    frame = _patch_frame(coded, color_trc=trc, color_primaries=primaries)
    err = np.abs(_pipeline_patches(frame) - PATCHES * 255)
    assert err.max() <= 3 and err.mean() < 1.5


def test_bt709_and_untagged_sdr_frames_keep_ffmpegs_conversion():
    frames = [_patch_frame(PATCHES, color_primaries=primaries) for primaries in (1, 2, 5, 6)]
    for frame in frames:
        assert hdr.converter(frame) is None
        plain = frame.to_ndarray(width=frame.width, height=frame.height, format="rgb24")
        assert np.array_equal(_pipeline_patches(frame), plain[SIDE // 2, SIDE // 2::SIDE].astype(float))


def _xyz_frame(code: np.ndarray):
    """An xyz12le frame (a DCP's decoded JPEG 2000 picture) of patches of these 12-bit X'Y'Z' codes."""
    import av
    frame = av.VideoFrame(SIDE * len(code), SIDE, "xyz12le")
    samples = np.repeat(np.repeat(code[None].astype(np.uint16) << 4, SIDE, 0), SIDE, 1)  # 12 bits in the high bits
    buf = np.zeros((SIDE, frame.planes[0].line_size // 2), np.uint16)
    buf[:, :samples.shape[1] * 3] = samples.reshape(SIDE, -1)
    frame.planes[0].update(buf.tobytes())
    return frame


@pytest.mark.parametrize("scale", [1, 2])
def test_a_dcp_xyz_picture_is_read_with_the_dci_normalisation(scale):
    # X'Y'Z' = (XYZ * 48 / 52.37) ^ (1 / 2.6) of the BT.709 picture. Before 2026-12-06 swscale's conversion
    # (no DCI normalisation, gamma 2.2) made it about 10 of 255 darker
    xyz = (PATCHES ** hdr.GAMMA) @ NPM_709.T
    code = np.round(4095 * np.power(np.clip(xyz * 48 / 52.37, 0, 1), 1 / 2.6))
    frame = _xyz_frame(code)
    err = np.abs(_pipeline_patches(frame, scale) - PATCHES * 255)
    assert err.max() <= 2 and err.mean() < 1
    assert hdr.converter(frame) is hdr.xyz_to_sdr
