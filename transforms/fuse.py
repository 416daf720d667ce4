"""Fuse step: the BVPEC head over per-clip modality tokens, through a RunInference model handler.

Input: ((film_id, clip_index), ({modality: float32 [L, D]}, film_path)); output: ((film_id, clip_index),
(film_path, result)) where result is a dict of the clips-table score columns (schemas/clips.py SCORE_FIELDS,
plus n_faces) or a StepFailure for clips whose batch failed. The same handler serves the main pipeline and pipeline.rescore (features table -> head), so
the two give the same labels for the same head.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Mapping, Optional, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, RunInference

from schemas import features as features_schema
from schemas.labels import PROB_COLUMNS
from transforms.encode import (METRICS_NAMESPACE, EncodeConfig, StepFailure, configure_torch, run_isolating,
                               with_accelerator)

LOG = logging.getLogger(__name__)
MODALITIES = features_schema.MODALITIES  # == model.bvpec.MODALITIES (this module stays importable without torch)
PROGRESS_EVERY_S = 30.0


def score_columns(pred, model_version: str, n_faces: Optional[int]) -> dict:
    """A model.predict.Prediction -> the clips-table score columns."""
    probs = np.asarray(pred.probs, np.float64)
    row = {"emotion": pred.emotion, "confidence": float(pred.confidence),
           "valence": float(pred.valence), "arousal": float(pred.arousal),
           "modalities_used": list(pred.modalities_used), "model_version": model_version, "n_faces": n_faces}
    row.update({c: float(p) for c, p in zip(PROB_COLUMNS, probs)})
    row.update({f"gate_{m}": float(pred.gates.get(m, 0.0)) for m in MODALITIES})
    return row


class HeadHandler(ModelHandler[tuple[Mapping[str, np.ndarray], str], tuple[str, Any], Any]):
    """(tokens, film_path) -> (film_path, score-column dict or StepFailure). The head is small: it stays fp32 even on GPU so
    that a rescore on another device reproduces the labels."""

    def __init__(self, cfg: EncodeConfig, model_version: str):
        super().__init__(min_batch_size=cfg.batch_size, max_batch_size=cfg.batch_size)
        self.cfg = cfg
        self.model_version = model_version

    def load_model(self):
        from model.checkpoints import load_head
        configure_torch(self.cfg)
        model, _ = load_head(self.cfg.head, device=self.cfg.device)
        return model

    def run_inference(self, batch: Sequence[tuple[Mapping[str, np.ndarray], str]], model,
                      inference_args: Optional[dict] = None) -> list:
        from model.predict import predict
        Metrics.counter(METRICS_NAMESPACE, "head_batches").inc()
        tokens, paths = [t for t, _ in batch], [p for _, p in batch]
        results = run_isolating(
            tokens, lambda items: predict(model, items, device=self.cfg.device, batch_size=max(len(items), 1)), "fuse")
        return [(p, r if isinstance(r, StepFailure) else score_columns(r, self.model_version, _n_faces(t)))
                for r, t, p in zip(results, tokens, paths)]

    def get_num_bytes(self, batch) -> int:
        return int(sum(a.nbytes for t, _ in batch for a in t.values()))

    def get_metrics_namespace(self) -> str:
        return "film_emotion_head"


def _n_faces(tokens: Mapping[str, np.ndarray]) -> Optional[int]:
    face = tokens.get("face")
    return None if face is None else int(face.shape[0])


class ProgressFn(beam.DoFn):
    """Counts scored clips (Beam metrics) and logs a progress line every PROGRESS_EVERY_S per process."""
    _lock = threading.Lock()
    _state = {"n": 0, "t0": None, "last": 0.0}

    def process(self, keyed):
        Metrics.counter(METRICS_NAMESPACE, "clips_scored").inc()
        st = self._state
        with self._lock:
            now = time.monotonic()
            st["t0"] = st["t0"] or now
            st["n"] += 1
            if now - st["last"] >= PROGRESS_EVERY_S:
                st["last"] = now
                LOG.info("scored %d clips (%.1f clips/s in this worker); last %s", st["n"],
                         st["n"] / max(now - st["t0"], 1e-6), keyed[0])
        yield keyed


class FuseClips(beam.PTransform):
    """PCollection[(key, (tokens, film_path))] -> PCollection[(key, (film_path, score dict | StepFailure))]."""

    def __init__(self, cfg: EncodeConfig, model_version: str):
        super().__init__()
        self.cfg = cfg
        self.model_version = model_version

    def expand(self, keyed_tokens):
        return keyed_tokens | "Head" >> with_accelerator(
            RunInference(KeyedModelHandler(HeadHandler(self.cfg, self.model_version))), self.cfg)


# -- features table rows <-> head inputs --------------------------------------------------------------------
def features_row(film_id: str, film_path: str, clip_index: int, tokens: Mapping[str, np.ndarray],
                 encoder_version: str, dims: Mapping[str, int]) -> dict:
    """One features-table row (schemas/features.py): every modality's tokens flat with length and width,
    and its mean-pooled vector (null when missing)."""
    row = {"film_id": film_id, "film_path": film_path, "clip_index": int(clip_index),
           "encoder_version": encoder_version}
    for m in MODALITIES:
        t = tokens.get(m)
        d = int(t.shape[1]) if t is not None and t.ndim == 2 and t.shape[1] else int(dims.get(m, 0))
        n = 0 if t is None else int(t.shape[0])
        row[f"{m}_len"], row[f"{m}_dim"] = n, d
        row[f"{m}_tokens"] = t.astype(np.float32).ravel() if n else None
        row[f"{m}_pooled"] = t.astype(np.float32).mean(0) if n else None
    return row


def tokens_from_row(row: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The inverse of features_row: modality -> float32 [L, D] (L == 0 for missing)."""
    out = {}
    for m in MODALITIES:
        n, d = int(row[f"{m}_len"]), int(row[f"{m}_dim"])
        flat = row.get(f"{m}_tokens")
        out[m] = (np.asarray(flat, np.float32).reshape(n, d) if n and flat is not None
                  else np.zeros((0, d), np.float32))
    return out

