"""HDR video frames (PQ: HDR10 and Dolby Vision masters; HLG: broadcast) as the SDR pictures the models learnt from.

Converting a PQ frame to RGB the usual way keeps its code values, which mean something else there: an HDR10
master's skin and walls come out dim and grey (diffuse white at code 0.58 instead of 1.0) and its colours washed
out (BT.2020 primaries read as BT.709). Every face, photo and film still the models were trained on is SDR. So
each chosen frame of an HDR film is taken to light (PQ: SMPTE ST 2084; HLG: ARIB STD-B67 with the BT.2100
OOTF for a 1,000 nit display), its reference white (203 nits, ITU-R BT.2408) put at SDR white, highlights above
it rolled off, BT.2020 primaries mapped to BT.709, then coded with the BT.1886 gamma: the picture an SDR grade
of the film would show. Only the few frames a clip samples are converted (the rest are never turned into RGB).

The same goes for the other frames whose code values FFmpeg's plain RGB conversion misreads: HDR graded in P3
(IMF / ProRes masters), SDR in BT.2020 or P3 primaries (UHD broadcast SDR, "BT.2020 SDR" deliverables) and a
DCP's X'Y'Z' picture. `converter` picks the conversion a frame needs; BT.709, BT.601 and untagged SDR frames (most
films) keep FFmpeg's.
"""
from __future__ import annotations

import functools
from typing import Callable, Optional

import av
import numpy as np

PQ, HLG = 16, 18  # FFmpeg's AVCOL_TRC_SMPTE2084 and AVCOL_TRC_ARIB_STD_B67 (frame.color_trc)
# FFmpeg's AVCOL_PRI_* (frame.color_primaries)
BT709_PRIMARIES, BT2020_PRIMARIES, DCI_P3_PRIMARIES, P3_D65_PRIMARIES = 1, 9, 11, 12
REFERENCE_WHITE_NITS = 203.0  # BT.2408: HDR diffuse white, what SDR shows as 100 %
HLG_PEAK_NITS = 1000.0
KNEE = 0.75  # linear SDR level (of reference white) above which highlights are compressed into [KNEE, 1)
GAMMA = 2.4  # BT.1886
D65, DCI_WHITE = (0.3127, 0.3290), (0.314, 0.351)  # CIE xy
# Each colour space's red, green and blue primaries and its white, CIE xy (ITU-R BT.709, BT.2020; SMPTE RP 431-2,
# EG 432-1)
_P3 = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))
CHROMATICITIES = {
    BT709_PRIMARIES: (((0.640, 0.330), (0.300, 0.600), (0.150, 0.060)), D65),
    BT2020_PRIMARIES: (((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)), D65),
    DCI_P3_PRIMARIES: (_P3, DCI_WHITE),
    P3_D65_PRIMARIES: (_P3, D65),
}
WIDE_GAMUT = (BT2020_PRIMARIES, DCI_P3_PRIMARIES, P3_D65_PRIMARIES)
# Bradford cone response (Lam 1985, as ICC profiles use it), to take a DCI white to D65
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
# SDR transfers other than BT.1886's 2.4 (AVCOL_TRC_*: gamma22, gamma28, linear, sRGB, SMPTE ST 428's 2.6)
SDR_GAMMAS = {4: 2.2, 5: 2.8, 8: 1.0, 13: 2.2, 17: 2.6}
# A DCP's picture (SMPTE ST 428-1): X'Y'Z' with gamma 2.6, code 1.0 at 52.37 cd/m2 and 48 cd/m2 the reference white
XYZ_FORMATS = ("xyz12le", "xyz12be")
DCP_GAMMA = 2.6
DCI_NORMALISATION = 52.37 / 48
# SMPTE ST 2084 constants
_M1, _M2 = 2610 / 16384, 2523 / 4096 * 128
_C1, _C2, _C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
# ARIB STD-B67 constants
_A, _B, _C = 0.17883277, 0.28466892, 0.55991073


def _white_xyz(xy: tuple[float, float]) -> np.ndarray:
    """CIE XYZ (Y = 1) of an xy chromaticity."""
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def rgb_to_xyz_matrix(primaries: tuple, white: tuple[float, float]) -> np.ndarray:
    """Linear RGB -> CIE XYZ (white at Y = 1) of the colour space with these red, green, blue primaries and white,
    CIE xy (SMPTE RP 177)."""
    columns = np.stack([_white_xyz(xy) for xy in primaries], axis=1)
    return columns * np.linalg.solve(columns, _white_xyz(white))


def white_adaptation(source: tuple[float, float], target: tuple[float, float]) -> np.ndarray:
    """XYZ -> XYZ taking the source white to the target white (Bradford): a grade's white stays white."""
    scale = (_BRADFORD @ _white_xyz(target)) / (_BRADFORD @ _white_xyz(source))
    return np.linalg.inv(_BRADFORD) @ np.diag(scale) @ _BRADFORD


def to_bt709_matrix(primaries: int) -> np.ndarray:
    """Linear RGB in the colour space of these AVCOL_PRI primaries -> linear BT.709 RGB, float32. A DCI white is
    adapted to D65, as an SDR version of a DCI master shows it (unadapted, its white would be green-yellow)."""
    rgb, white = CHROMATICITIES[primaries]
    rgb709, d65 = CHROMATICITIES[BT709_PRIMARIES]
    to_xyz = white_adaptation(white, d65) @ rgb_to_xyz_matrix(rgb, white)
    return (np.linalg.inv(rgb_to_xyz_matrix(rgb709, d65)) @ to_xyz).astype(np.float32)


TO_BT709 = {primaries: to_bt709_matrix(primaries) for primaries in WIDE_GAMUT}
# Linear-light primaries conversions (ITU-R BT.2087 / BT.2407): derived, so the two are exact inverses
BT2020_TO_BT709 = TO_BT709[BT2020_PRIMARIES]
BT709_TO_BT2020 = np.linalg.inv(BT2020_TO_BT709).astype(np.float32)
XYZ_TO_BT709 = np.linalg.inv(rgb_to_xyz_matrix(*CHROMATICITIES[BT709_PRIMARIES])).astype(np.float32)


def is_hdr(frame) -> bool:
    """Whether a decoded frame is coded with an HDR transfer (PQ or HLG)."""
    return getattr(frame, "color_trc", None) in (PQ, HLG)


def pq_to_nits(e: np.ndarray) -> np.ndarray:
    """PQ signal in [0, 1] -> display light, cd/m2 (SMPTE ST 2084 EOTF)."""
    p = np.power(np.clip(e, 0.0, 1.0), 1 / _M2)
    return 10000.0 * np.power(np.maximum(p - _C1, 0.0) / (_C2 - _C3 * p), 1 / _M1)


def nits_to_pq(nits: np.ndarray) -> np.ndarray:
    """Display light, cd/m2 -> PQ signal in [0, 1] (the inverse EOTF)."""
    y = np.power(np.clip(nits / 10000.0, 0.0, 1.0), _M1)
    return np.power((_C1 + _C2 * y) / (1 + _C3 * y), _M2)


def hlg_to_nits(e: np.ndarray) -> np.ndarray:
    """HLG signal (BT.2020 R'G'B') -> display light on a 1,000 nit display (inverse OETF, then the OOTF)."""
    e = np.clip(e, 0.0, 1.0)
    scene = np.where(e <= 0.5, e * e / 3, (np.exp((e - _C) / _A) + _B) / 12)
    luma = scene @ np.array([0.2627, 0.6780, 0.0593], np.float32)
    return HLG_PEAK_NITS * np.power(np.maximum(luma, 1e-6), 0.2)[..., None] * scene  # system gamma 1.2


def roll_off(linear: np.ndarray) -> np.ndarray:
    """Linear BT.709 light (1.0 = reference white) -> [0, 1): unchanged up to KNEE, highlights compressed above
    it by the brightest channel, so hues keep their ratios."""
    peak = np.maximum(np.maximum(linear[..., 0], linear[..., 1]), linear[..., 2])  # (max over a 3-axis is slow)
    over = np.maximum(peak - KNEE, 0.0) / (1 - KNEE)
    scale = np.where(peak > KNEE, (KNEE + (1 - KNEE) * over / (1 + over)) / np.maximum(peak, KNEE), 1.0)
    return linear * scale[..., None].astype(np.float32)


_CODES = np.arange(65536, dtype=np.float32) / 65535.0
_PQ_NITS = pq_to_nits(_CODES).astype(np.float32)  # per 16-bit code: 8 times faster than the formula per pixel


def hdr_gamut_matrix(primaries: int) -> Optional[np.ndarray]:
    """The primaries conversion of an HDR frame: none for a BT.709 grade; BT.2020, as HDR10 and HLG are, where the
    primaries are untagged or unknown (before 2026-12-06 every HDR frame but a BT.709 one was read as BT.2020:
    a P3 master came out over-saturated, skin pushed red)."""
    if primaries == BT709_PRIMARIES:
        return None
    return TO_BT709.get(primaries, BT2020_TO_BT709)


def encode_sdr(linear: np.ndarray, gamma: float = GAMMA) -> np.ndarray:
    """Linear BT.709 light in [0, 1] -> uint8 RGB coded with this gamma."""
    return np.round(np.power(linear, 1 / gamma) * 255.0).astype(np.uint8)


def to_sdr(frame, width: int, height: int) -> np.ndarray:
    """An HDR VideoFrame scaled to width x height as SDR BT.709 RGB, uint8 [height, width, 3]."""
    codes = frame.to_ndarray(width=width, height=height, format="rgb48le")
    nits = _PQ_NITS[codes] if frame.color_trc == PQ else hlg_to_nits(_CODES[codes])
    linear = nits / REFERENCE_WHITE_NITS
    matrix = hdr_gamut_matrix(frame.color_primaries)
    if matrix is not None:
        linear = np.maximum(linear @ matrix.T, 0.0)
    return encode_sdr(roll_off(linear))


@functools.lru_cache(maxsize=None)
def _linear_table(gamma: float) -> np.ndarray:
    """Linear light per 16-bit code of a gamma-coded signal (a lookup is faster than the power per pixel)."""
    return np.power(_CODES, gamma).astype(np.float32)


def wide_gamut_to_sdr(frame, width: int, height: int) -> np.ndarray:
    """An SDR VideoFrame in BT.2020 or P3 primaries scaled to width x height as BT.709 RGB, uint8: taken to light
    by its transfer's gamma (BT.1886 unless it names another), its primaries mapped to BT.709, the colours outside
    BT.709 clipped, and coded again with that gamma, so greys keep their codes (before 2026-12-06 FFmpeg's rgb24
    conversion kept the wide-gamut code values: colours washed out)."""
    gamma = SDR_GAMMAS.get(frame.color_trc, GAMMA)
    codes = frame.to_ndarray(width=width, height=height, format="rgb48le")
    linear = _linear_table(gamma)[codes] @ TO_BT709[frame.color_primaries].T
    return encode_sdr(np.clip(linear, 0.0, 1.0), gamma)


# Linear XYZ (1.0 = DCI reference white) per 16-bit sample of xyz12: the 12-bit code sits in the high bits
_XYZ_LINEAR = (np.power(np.minimum(np.arange(65536) / (4095.0 * 16), 1.0), DCP_GAMMA)
               * DCI_NORMALISATION).astype(np.float32)


def _xyz_as_rgb48(frame):
    """The frame's X'Y'Z' samples unchanged in an rgb48le frame, so that swscale only scales them (its own XYZ
    conversion decodes gamma 2.6 but leaves out the DCI normalisation and codes with gamma 2.2)."""
    out = av.VideoFrame(frame.width, frame.height, "rgb48le")
    if frame.format.name == "xyz12le" and out.planes[0].line_size == frame.planes[0].line_size:
        out.planes[0].update(frame.planes[0])  # the same layout: one copy
        return out
    dtype = "<u2" if frame.format.name == "xyz12le" else ">u2"
    rows = np.frombuffer(frame.planes[0], dtype).reshape(frame.height, -1)[:, :frame.width * 3]
    samples = np.ascontiguousarray(rows.reshape(frame.height, frame.width, 3), "<u2")
    return av.VideoFrame.from_ndarray(samples, format="rgb48le")


def xyz_to_sdr(frame, width: int, height: int) -> np.ndarray:
    """A DCP's X'Y'Z' VideoFrame (JPEG 2000, xyz12) scaled to width x height as SDR BT.709 RGB, uint8: gamma 2.6
    removed, the DCI normalisation applied (48 cd/m2 is SDR white), XYZ to BT.709, clipped, the BT.1886 gamma
    (before 2026-12-06 swscale's conversion left the picture about 10/255 darker)."""
    codes = _xyz_as_rgb48(frame).to_ndarray(width=width, height=height, format="rgb48le")
    linear = _XYZ_LINEAR[codes] @ XYZ_TO_BT709.T
    return encode_sdr(np.clip(linear, 0.0, 1.0))


def converter(frame) -> Optional[Callable]:
    """The conversion (frame, width, height) -> uint8 RGB a decoded frame needs to be the SDR BT.709 picture the
    models learnt from, or None where FFmpeg's plain rgb24 conversion gives it (BT.709, BT.601 and untagged SDR:
    most films stay on that path, at no extra cost)."""
    if is_hdr(frame):
        return to_sdr
    if getattr(frame, "color_primaries", None) in WIDE_GAMUT:
        return wide_gamut_to_sdr
    if frame.format.name in XYZ_FORMATS:
        return xyz_to_sdr
    return None
