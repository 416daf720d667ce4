"""Audio: frame-level prosody with librosa (MFCC + deltas, energy, pitch, voicing) at a fixed 10 frames/s.

Analysis runs at a 10 ms hop, then every 100 ms (FRAME_S) is averaged into one feature frame, so frame i
covers [i * FRAME_S, (i + 1) * FRAME_S) of the clip; a trailing part shorter than a frame is dropped.
Values are put on a roughly unit scale by fixed constants (never per-clip statistics, which would erase
loudness, one of the clearest arousal cues).

Columns (AUDIO_COLUMNS): mfcc_0..12, d_mfcc_0..12, log_energy, d_log_energy, pitch (octaves above 100 Hz,
mean over voiced 10 ms frames; 0 when none), d_pitch, voiced (fraction of voiced 10 ms frames), zcr.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
FRAME_S = 0.1
HOP = 160  # 10 ms analysis hop
SUB = int(round(FRAME_S * SAMPLE_RATE / HOP))  # analysis frames per feature frame
N_FFT = 512  # 32 ms window
N_MFCC = 13
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


def yin_pitch(wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """YIN (de Cheveigne & Kawahara 2002) per 10 ms frame, centred like librosa's STFT frames.
    Returns (f0 Hz, aperiodicity = the normalised difference at the chosen lag; low = clearly periodic).
    Written in numpy because librosa.yin's numba stencil crashes with this numba/numpy pair."""
    import librosa
    from scipy import fft

    x = np.pad(wave.astype(np.float32), YIN_FRAME // 2)
    frames = librosa.util.frame(x, frame_length=YIN_FRAME, hop_length=HOP, axis=0)
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


def audio_features(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 wave at 16 kHz -> float32 [A, AUDIO_DIM], A = floor(duration / FRAME_S)."""
    import librosa

    wave = np.asarray(wave, dtype=np.float32).reshape(-1)
    if sample_rate != SAMPLE_RATE:
        wave = librosa.resample(wave, orig_sr=sample_rate, target_sr=SAMPLE_RATE)
    n = len(wave) // (SUB * HOP)
    if n == 0:
        return np.zeros((0, AUDIO_DIM), dtype=np.float32)
    wave = np.nan_to_num(wave[: n * SUB * HOP])

    power = np.abs(librosa.stft(wave, n_fft=N_FFT, hop_length=HOP)) ** 2
    mel = librosa.feature.melspectrogram(S=power, sr=SAMPLE_RATE, n_mels=40)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=N_MFCC)
    rms = librosa.feature.rms(S=np.sqrt(power), frame_length=N_FFT)[0]
    zcr = librosa.feature.zero_crossing_rate(wave, frame_length=N_FFT, hop_length=HOP)[0]
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
    """Run audio_features once on silence: librosa loads its submodules lazily on first use (about 1.7 s), which
    a worker should pay while its models load, not inside its first film."""
    audio_features(np.zeros(SAMPLE_RATE // 5, np.float32))
