"""HDR video frames (PQ: HDR10 and Dolby Vision masters; HLG: broadcast) as the SDR pictures the models learnt from.

Converting a PQ frame to RGB the usual way keeps its code values, which mean something else there: an HDR10
master's skin and walls come out dim and grey (diffuse white at code 0.58 instead of 1.0) and its colours washed
out (BT.2020 primaries read as BT.709). Every face, photo and film still the models were trained on is SDR. So
each chosen frame of an HDR film is taken to light (PQ: SMPTE ST 2084; HLG: ARIB STD-B67 with the BT.2100
OOTF for a 1,000 nit display), its reference white (203 nits, ITU-R BT.2408) put at SDR white, highlights above
it rolled off, BT.2020 primaries mapped to BT.709, then coded with the BT.1886 gamma: the picture an SDR grade
of the film would show. Only the few frames a clip samples are converted (the rest are never turned into RGB).
"""
from __future__ import annotations

import numpy as np

PQ, HLG = 16, 18  # FFmpeg's AVCOL_TRC_SMPTE2084 and AVCOL_TRC_ARIB_STD_B67 (frame.color_trc)
BT709_PRIMARIES = 1  # AVCOL_PRI_BT709: an HDR grade kept in BT.709 colours needs no gamut mapping
REFERENCE_WHITE_NITS = 203.0  # BT.2408: HDR diffuse white, what SDR shows as 100 %
HLG_PEAK_NITS = 1000.0
KNEE = 0.75  # linear SDR level (of reference white) above which highlights are compressed into [KNEE, 1)
GAMMA = 2.4  # BT.1886
# Linear-light primaries conversions (ITU-R BT.2087 / BT.2407)
BT2020_TO_BT709 = np.array([[1.6605, -0.5876, -0.0728],
                            [-0.1246, 1.1329, -0.0083],
                            [-0.0182, -0.1006, 1.1187]], np.float32)
BT709_TO_BT2020 = np.array([[0.6274, 0.3293, 0.0433],
                            [0.0691, 0.9195, 0.0114],
                            [0.0164, 0.0880, 0.8956]], np.float32)
# SMPTE ST 2084 constants
_M1, _M2 = 2610 / 16384, 2523 / 4096 * 128
_C1, _C2, _C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
# ARIB STD-B67 constants
_A, _B, _C = 0.17883277, 0.28466892, 0.55991073


def is_hdr(frame) -> bool:
    return getattr(frame, "color_trc", None) in (PQ, HLG)


def pq_to_nits(e: np.ndarray) -> np.ndarray:
    p = np.power(np.clip(e, 0.0, 1.0), 1 / _M2)
    return 10000.0 * np.power(np.maximum(p - _C1, 0.0) / (_C2 - _C3 * p), 1 / _M1)


def nits_to_pq(nits: np.ndarray) -> np.ndarray:
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


def to_sdr(frame, width: int, height: int) -> np.ndarray:
    """An HDR VideoFrame scaled to width x height as SDR BT.709 RGB, uint8 [height, width, 3]."""
    codes = frame.to_ndarray(width=width, height=height, format="rgb48le")
    nits = _PQ_NITS[codes] if frame.color_trc == PQ else hlg_to_nits(_CODES[codes])
    linear = nits / REFERENCE_WHITE_NITS
    if frame.color_primaries != BT709_PRIMARIES:  # BT.2020, as HDR10 and HLG are, or unknown
        linear = np.maximum(linear @ BT2020_TO_BT709.T, 0.0)
    return np.round(np.power(roll_off(linear), 1 / GAMMA) * 255.0).astype(np.uint8)
