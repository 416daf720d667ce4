"""How much speech the speech evidence needs: dev voices cut short, inside a clip of silence or score music.

    python -m benchmarks.short_speech [--min_vad_speech_s S] [--json out.json]

A film's window clips often catch a line's last syllables or first words, and a film's dialogue often has music
under it; the speech classifier learnt whole acted utterances in quiet rooms. Each RAVDESS and EmoDB dev utterance
(unseen speakers; 16 kHz through the decode pass's `decode_audio`) is cut to the speech Silero VAD hears, then to
its last (or first) d seconds, and laid at the start (end) of a 2 s clip whose rest is near-silence, or the Sintel
trailer's score (strings and choir, from its stretches without a voice) 6 dB under the voice. Each clip goes
through the pipeline's speech gate (`model.featurize.has_speech`) and classifier, and its evidence is read under
the head's speech temperature, as the clips table's `evidence_speech`. Printed per bed, cut and d: how many clips
pass the gate, and of those the accuracy, mean confidence, 15-bin ECE and the share labelled sadness.
`--min_vad_speech_s` sets the gate's VAD minimum for this run (the shipped value otherwise).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SINTEL = DATA / "media" / "sintel"
SETS = ("ravdess", "emodb")
CLIP_S = 2.0  # the pipeline's window clip
BED_DB = -6.0  # the score under the voice
MUSIC_SPANS = ((0.0, 8.0), (46.4, 52.0))  # the trailer's stretches of score without a voice
LENGTHS = (0.5, 0.75, 1.0, 1.25, 1.5, None)  # seconds of speech kept; None: the whole utterance


def utterances() -> list[tuple[str, np.ndarray]]:
    """(label, the speech VAD hears: first to last window) of every dev utterance whose label the head knows."""
    import pyarrow.parquet as pq

    from model.asr import VAD_WINDOW_S, vad_probabilities
    from model.encoders.versions import VAD_THRESHOLD
    from schemas.labels import EMOTIONS
    from transforms.decode import decode_audio
    out, window = [], round(VAD_WINDOW_S * 16000)
    for name in SETS:
        for row in pq.read_table(DATA / "audio" / name / "dev.parquet", columns=["audio", "label"]).to_pylist():
            wave = decode_audio(row["audio"])
            heard = np.nonzero(vad_probabilities(wave) >= VAD_THRESHOLD)[0]
            if row["label"] in EMOTIONS and len(heard):
                out.append((row["label"], wave[heard[0] * window:(heard[-1] + 1) * window]))
    return out


def score_bed() -> np.ndarray:
    from transforms.decode import DecodeConfig, decode_clip
    film = next(SINTEL.glob("*.mp4"))
    return np.concatenate([decode_clip(str(film), a, b, DecodeConfig()).audio for a, b in MUSIC_SPANS])


def clip_with(piece: np.ndarray, bed: str, at_start: bool, music: np.ndarray, rng) -> np.ndarray:
    n = max(int(CLIP_S * 16000), piece.size)
    if bed == "silence":
        wave = rng.standard_normal(n) * 1e-4
    else:
        start = rng.integers(0, music.size - n)
        gain = np.sqrt(np.mean(piece ** 2) / np.mean(music ** 2)) * 10 ** (BED_DB / 20)
        wave = music[start:start + n] * gain
    wave = wave.astype(np.float32)
    if at_start:
        wave[:piece.size] += piece
    else:
        wave[n - piece.size:] += piece
    return wave


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--min_vad_speech_s", type=float, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import model.featurize as featurize
    from model.checkpoints import load_head
    from model.encoders import EncoderSpec, create_encoders
    from model.predict import calibrated_evidence
    from schemas.labels import EMOTIONS
    from training.metrics import expected_calibration_error
    if args.min_vad_speech_s is not None:
        featurize.MIN_VAD_SPEECH_S = args.min_vad_speech_s
    head, _ = load_head(None)
    temperatures = getattr(head, "branch_temperatures", None)
    featurizer = featurize.Featurizer(create_encoders(EncoderSpec()))
    voices, music, rng = utterances(), score_bed(), np.random.default_rng(0)
    sadness, rows = EMOTIONS.index("sadness"), []
    print(f"{len(voices)} dev utterances; gate: {featurize.MIN_VAD_SPEECH_S:g} s of speech VAD hears")
    print("| bed | speech kept | passed the gate | accuracy | mean confidence | ECE | labelled sadness |")
    print("|---|---|---|---|---|---|---|")
    for bed in ("silence", "music"):
        for tail in (True, False):
            for d in LENGTHS:
                if d is None and not tail:
                    continue
                probs, truth = [], []
                for label, speech in voices:
                    piece = speech if d is None else speech[-int(d * 16000):] if tail else speech[:int(d * 16000)]
                    wave = clip_with(piece, bed, tail, music, rng)
                    if featurize.has_speech(wave):
                        tokens = {"audio": featurizer.audio_tokens(wave)}
                        probs.append(calibrated_evidence(featurizer.evidence(tokens), temperatures)["speech"])
                        truth.append(EMOTIONS.index(label))
                p, y = np.asarray(probs).reshape(-1, len(EMOTIONS)), np.asarray(truth, int)
                kept = "whole utterance" if d is None else f"{'last' if tail else 'first'} {d:g} s"
                row = {"bed": bed, "kept": kept, "passed": len(y), "clips": len(voices),
                       "accuracy": float((p.argmax(1) == y).mean()) if len(y) else None,
                       "mean_confidence": float(p.max(1).mean()) if len(y) else None,
                       "ece": float(expected_calibration_error(p, y)) if len(y) else None,
                       "sadness": float((p.argmax(1) == sadness).mean()) if len(y) else None}
                rows.append(row)
                cells = [f"{row[k]:.3f}" if row[k] is not None else "-"
                         for k in ("accuracy", "mean_confidence", "ece", "sadness")]
                print(f"| {bed} | {kept} | {len(y)} / {len(voices)} | " + " | ".join(cells) + " |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
