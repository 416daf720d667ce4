"""Audio: frame-level prosody (MFCC + deltas, energy, pitch, voicing) at a fixed 10 frames/s.

Analysis runs at a 10 ms hop, then every 100 ms (FRAME_S) is averaged into one feature frame, so frame i
covers [i * FRAME_S, (i + 1) * FRAME_S) of the clip; a trailing part shorter than a frame is dropped.
Values are put on a roughly unit scale by fixed constants (never per-clip statistics, which would erase
loudness, one of the clearest arousal cues).

The spectral steps are librosa 0.11's (`stft`, `melspectrogram`, `power_to_db`, `mfcc`, `rms`,
`zero_crossing_rate` with the arguments below), written in numpy and scipy.fft: importing librosa's spectral code
took 1.5 s of every worker's start-up. tests/test_encoders.py checks them against librosa.

Columns (AUDIO_COLUMNS): mfcc_0..12, d_mfcc_0..12, log_energy, d_log_energy, pitch (octaves above 100 Hz,
mean over voiced 10 ms frames; 0 when none), d_pitch, voiced (fraction of voiced 10 ms frames), zcr.
"""

from __future__ import annotations

import functools

import numpy as np

SAMPLE_RATE = 16_000
FRAME_S = 0.1
HOP = 160  # 10 ms analysis hop
SUB = int(round(FRAME_S * SAMPLE_RATE / HOP))  # analysis frames per feature frame
N_FFT = 512  # 32 ms window
N_MFCC = 13
N_MELS = 40
F0_MIN, F0_MAX = 60.0, 500.0  # speaking voices, with room for shouting/children
YIN_FRAME = 768  # two periods of F0_MIN fit in the half-frame integration window's lag range
YIN_THRESHOLD = 0.1  # the YIN paper's absolute threshold for the first dip
VOICED_MAX_APERIODICITY = 0.3
VOICED_MAX_ZCR = 0.2  # voiced speech crosses zero far less than fricatives and noise
VOICED_RANGE_DB = 35.0  # voiced frames are within this many dB of the clip's loudest frame
SILENCE_RMS = 1e-3
AUDIO_COLUMNS: tuple[str, ...] = (
    tuple(f"mfcc_{i}" for i in range(N_MFCC)) + tuple(f"d_mfcc_{i}" for i in range(N_MFCC))
    + ("log_energy", "d_log_energy", "pitch", "d_pitch", "voiced", "zcr"))
AUDIO_DIM = len(AUDIO_COLUMNS)
AUDIO_VERSION = f"prosody-v1-{AUDIO_DIM}d-{FRAME_S}s"
_MFCC_SCALE = np.array([100.0] + [20.0] * (N_MFCC - 1), dtype=np.float32)[:, None]


def _pool(x: np.ndarray, n: int) -> np.ndarray:
    """[..., n * SUB + extra] -> [..., n]: mean of each feature frame's analysis frames."""
    return x[..., : n * SUB].reshape(*x.shape[:-1], n, SUB).mean(axis=-1)


def _delta(x: np.ndarray) -> np.ndarray:
    """Centred first difference along time (edges repeated); zeros for a single frame."""
    if x.shape[-1] < 2:
        return np.zeros_like(x)
    padded = np.concatenate([x[..., :1], x, x[..., -1:]], axis=-1)
    return (padded[..., 2:] - padded[..., :-2]) / 2.0


def _frames(x: np.ndarray, length: int) -> np.ndarray:
    """[n] -> [1 + (n - length) // HOP, length]: windows every HOP samples (a view, as librosa.util.frame)."""
    return np.lib.stride_tricks.sliding_window_view(x, length)[::HOP]


def stft(wave: np.ndarray) -> np.ndarray:
    """librosa.stft(wave, n_fft=N_FFT, hop_length=HOP): centred frames (zero padding), periodic Hann window,
    complex64 [1 + N_FFT // 2, frames]. The window is float64 and the FFT runs in float64, as librosa's."""
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)
    frames = _frames(np.pad(wave, N_FFT // 2), N_FFT)
    return np.fft.rfft(window * frames, axis=-1).astype(np.complex64).T


# Slaney's mel scale (librosa's default, htk=False): linear to 1 kHz, logarithmic above.
_HZ_PER_MEL = 200.0 / 3  # the linear part
_KNEE_MEL = 1000.0 / _HZ_PER_MEL
_LOG_STEP = np.log(6.4) / 27.0  # the logarithmic part, per mel


def _hz_to_mel(hz):
    hz = np.asarray(hz, np.float64)
    return np.where(hz >= 1000.0, _KNEE_MEL + np.log(np.maximum(hz, 1e-12) / 1000.0) / _LOG_STEP, hz / _HZ_PER_MEL)


def _mel_to_hz(mel):
    return np.where(mel >= _KNEE_MEL, 1000.0 * np.exp(_LOG_STEP * (mel - _KNEE_MEL)), mel * _HZ_PER_MEL)


@functools.cache
def mel_filters(n_mels: int = N_MELS) -> np.ndarray:
    """librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=n_mels): triangles on the Slaney mel scale from 0 Hz
    to Nyquist, each scaled to unit area (norm="slaney"); float32 [n_mels, 1 + N_FFT // 2]."""
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2.0), n_mels + 2))
    ramps = np.subtract.outer(edges, freqs)
    gaps = np.diff(edges)
    weights = np.zeros((n_mels, len(freqs)), np.float32)
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / gaps[i], ramps[i + 2] / gaps[i + 1]))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights


def mfcc_from_power(power: np.ndarray) -> np.ndarray:
    """librosa.feature.mfcc(S=librosa.power_to_db(librosa.feature.melspectrogram(S=power, n_mels=N_MELS)),
    n_mfcc=N_MFCC): dB floored 80 dB under the clip's loudest mel bin, orthonormal DCT-II. [N_MFCC, frames]."""
    from scipy import fft

    mel = mel_filters() @ power
    db = 10.0 * np.log10(np.maximum(np.float32(1e-10), mel))
    db = np.maximum(db, db.max() - 80.0)
    return fft.dct(db, axis=-2, type=2, norm="ortho")[:N_MFCC]


def rms_from_magnitude(mag: np.ndarray) -> np.ndarray:
    """librosa.feature.rms(S=mag, frame_length=N_FFT)[0]: each frame's energy from its one-sided spectrum (the DC
    and Nyquist bins counted once)."""
    x = np.abs(mag) ** 2
    x[0] *= 0.5
    x[-1] *= 0.5
    return np.sqrt(2 * np.sum(x, axis=0) / N_FFT ** 2)


def zero_crossing_rate(wave: np.ndarray) -> np.ndarray:
    """librosa.feature.zero_crossing_rate(wave, frame_length=N_FFT, hop_length=HOP)[0]: centred frames (edge
    padding); |x| <= 1e-10 counts as +0; the share of the frame's N_FFT positions where the sign bit changes."""
    frames = _frames(np.pad(wave, N_FFT // 2, mode="edge"), N_FFT)
    sign = np.signbit(np.where(np.abs(frames) <= 1e-10, 0, frames))
    return (sign[:, 1:] != sign[:, :-1]).sum(axis=1) / N_FFT


def yin_pitch(wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """YIN (de Cheveigne & Kawahara 2002) per 10 ms frame, centred like librosa's STFT frames.
    Returns (f0 Hz, aperiodicity = the normalised difference at the chosen lag; low = clearly periodic).
    Written in numpy because librosa.yin's numba stencil crashes with this numba/numpy pair."""
    from scipy import fft

    x = np.pad(wave.astype(np.float32), YIN_FRAME // 2)
    frames = _frames(x, YIN_FRAME)
    win = YIN_FRAME // 2  # integration window; lags up to YIN_FRAME - win
    max_lag = YIN_FRAME - win
    n_fft = fft.next_fast_len(YIN_FRAME + win)  # long enough that the correlation does not wrap
    acf = fft.irfft(fft.rfft(frames, n_fft) * np.conj(fft.rfft(frames[:, :win], n_fft)), n_fft)
    acf = acf[:, : max_lag + 1]
    cs = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames.astype(np.float64) ** 2, axis=1)], axis=1)
    lags = np.arange(max_lag + 1)
    energy_lag = cs[:, lags + win] - cs[:, lags]
    diff = np.maximum(cs[:, win:win + 1] + energy_lag - 2.0 * acf, 0.0)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * lags[1:] / np.maximum(np.cumsum(diff[:, 1:], axis=1), 1e-12)

    lo, hi = int(SAMPLE_RATE / F0_MAX), min(int(np.ceil(SAMPLE_RATE / F0_MIN)), max_lag - 1)
    c = cmnd[:, lo - 1:hi + 2]
    core = c[:, 1:-1]
    local_min = (core < c[:, :-2]) & (core <= c[:, 2:]) & (core < YIN_THRESHOLD)
    first = np.where(local_min.any(axis=1), local_min.argmax(axis=1), core.argmin(axis=1))
    rows = np.arange(len(core))
    # parabolic refinement of the chosen lag
    a, b, d = c[rows, first], core[rows, first], c[rows, first + 2]
    denom = a - 2 * b + d
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (a - d) / np.where(denom == 0, 1, denom), 0.0)
    lag = lo + first + np.clip(shift, -1, 1)
    return (SAMPLE_RATE / lag).astype(np.float32), core[rows, first].astype(np.float32)


def audio_features(wave: np.ndarray) -> np.ndarray:
    """Mono float32 wave at 16 kHz -> float32 [A, AUDIO_DIM], A = floor(duration / FRAME_S). Waves come at 16 kHz
    from the decode pass (transforms.decode.to_sample_rate), the one resampler (a second one, librosa's, sat here
    unused until 2026-12-06)."""
    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    n = len(wave) // (SUB * HOP)
    if n == 0:
        return np.zeros((0, AUDIO_DIM), dtype=np.float32)
    wave = np.nan_to_num(wave[: n * SUB * HOP])

    power = np.abs(stft(wave)) ** 2
    mfcc = mfcc_from_power(power)
    rms = rms_from_magnitude(np.sqrt(power))
    zcr = zero_crossing_rate(wave)
    f0, aperiodicity = yin_pitch(wave)

    m = min(mfcc.shape[1], rms.shape[0], zcr.shape[0], f0.shape[0])
    mfcc, rms, zcr, f0, aperiodicity = mfcc[:, :m], rms[:m], zcr[:m], f0[:m], aperiodicity[:m]
    rms_db = 20.0 * np.log10(rms + 1e-8)
    voiced = ((aperiodicity < VOICED_MAX_APERIODICITY) & (rms > SILENCE_RMS)
              & (rms_db > rms_db.max() - VOICED_RANGE_DB) & (zcr < VOICED_MAX_ZCR)
              & (f0 > F0_MIN * 1.02) & (f0 < F0_MAX * 0.98))  # a lag at the search edge is no pitch
    octaves = np.where(voiced, np.log2(np.maximum(f0, 1.0) / 100.0), 0.0)

    mfcc_f = _pool(mfcc, n) / _MFCC_SCALE
    energy_f = _pool(np.log10(rms + 1e-5)[None], n)[0]
    voiced_f = _pool(voiced[None].astype(np.float32), n)[0]
    pitch_sum = _pool(octaves[None], n)[0]
    pitch_f = np.where(voiced_f > 0, pitch_sum / np.maximum(voiced_f, 1e-6), 0.0)
    zcr_f = _pool(zcr[None], n)[0]

    cols = [mfcc_f, _delta(mfcc_f), energy_f[None], _delta(energy_f[None]), pitch_f[None],
            _delta(pitch_f[None]), voiced_f[None], zcr_f[None]]
    return np.ascontiguousarray(np.concatenate(cols, axis=0).T, dtype=np.float32)


def load_prosody() -> None:
    """Run audio_features once on silence (scipy.fft's DCT loads on first use), while a worker loads its models
    rather than inside its first film."""
    audio_features(np.zeros(SAMPLE_RATE // 5, np.float32))
