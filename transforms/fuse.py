"""The BVPEC head over per-clip modality tokens: score columns for the clips table, and the features table's
rows <-> tokens.

`score_tokens` is the one function that turns tokens into clips-table score columns: the per-film scoring
step (transforms/score.py) and pipeline.rescore's RunInference handler (transforms/head_inference.py, features
table -> head) both call it, so the two give the same labels for the same head.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from apache_beam.metrics import Metrics

from model.featurize import run_isolating
from schemas import features as features_schema
from schemas.clips import GROUNDED_SUPPORT  # noqa: F401 - part of this module's API (benchmarks, tests)
from schemas.labels import PROB_COLUMNS

LOG = logging.getLogger(__name__)
METRICS_NAMESPACE = "film_emotion"
MODALITIES = features_schema.MODALITIES  # == model.bvpec.MODALITIES (this module stays importable without torch)


def score_columns(pred, model_version: str, n_faces: Optional[int]) -> dict:
    """A model.predict.Prediction -> the clips-table score columns."""
    probs = np.asarray(pred.probs, np.float64)
    row = {"emotion": pred.emotion, "confidence": float(pred.confidence),
           "valence": float(pred.valence), "arousal": float(pred.arousal),
           "modalities_used": list(pred.modalities_used), "model_version": model_version, "n_faces": n_faces}
    row.update({c: float(p) for c, p in zip(PROB_COLUMNS, probs)})
    row.update({f"gate_{m}": float(pred.gates.get(m, 0.0)) for m in MODALITIES})
    return row


def evidence_columns(evidence: Mapping[str, np.ndarray], emotion_index: int) -> dict:
    """The clips table's evidence columns: each modality's own probabilities, the support they give the fused
    label (the highest), which modalities agree with it, and whether that makes the label grounded; support,
    agreement and grounding over the modalities that may back a label (schemas.clips.backing_evidence)."""
    from schemas.clips import EVIDENCE_MODALITIES, backing_evidence
    row = {f"evidence_{m}": ([float(p) for p in evidence[m]] if m in evidence else None)
           for m in EVIDENCE_MODALITIES}
    backers = backing_evidence(dict(evidence))
    support = max((float(p[emotion_index]) for p in backers.values()), default=0.0)
    row.update(support=support, grounded=support >= GROUNDED_SUPPORT,
               evidence=[m for m in EVIDENCE_MODALITIES if m in backers and int(np.argmax(backers[m])) == emotion_index])
    return row


def load_head_model(head: Optional[str], device: str):
    """The head in fp32 even on GPU, so a rescore on another device reproduces the labels."""
    from model.checkpoints import load_head
    return load_head(head, device=device)[0]


def score_tokens(model, tokens: Sequence[Mapping[str, np.ndarray]], model_version: str, device: str = "cpu",
                 evidence: Optional[Sequence[Mapping[str, np.ndarray]]] = None) -> list:
    """Per clip, the clips-table score columns (plus n_faces), or a Failure where the head failed for it (a
    failing batch is retried clip by clip). evidence: per clip, the other modalities' own probabilities
    (model.featurize.Featurizer.evidence); the line's are computed here with the head
    (model.predict.with_line_evidence)."""
    from model.predict import calibrated_evidence, predict, with_branch_label, with_line_evidence
    Metrics.counter(METRICS_NAMESPACE, "head_batches").inc()
    temperatures = getattr(model, "branch_temperatures", None)

    def run(idx):
        items = [tokens[i] for i in idx]
        preds = predict(model, items, device=device, batch_size=max(len(items), 1))
        given = [evidence[i] for i in idx] if evidence is not None else [{} for _ in idx]
        out = []
        for i, p, ev in zip(idx, preds, with_line_evidence(model, items, given, device)):
            # the clip's label: the product of its classifiers, the line's among them, where one backs it
            # (model.predict.with_branch_label); its evidence columns: each classifier's probabilities under the
            # head's temperature for it (the speech one is fitted on unseen speakers: pipeline.calibrate --speech_oof)
            if evidence is not None:
                p = with_branch_label(p, ev, temperatures)
            row = {**score_columns(p, model_version, _n_faces(tokens[i])),
                   **evidence_columns(calibrated_evidence(ev, temperatures), int(np.argmax(p.probs)))}
            refuse_non_finite(row)
            out.append(row)
        return out

    return run_isolating(list(range(len(tokens))), run, "fuse")


class NonFiniteScores(ValueError):
    """The head gave a clip scores that are not finite: a head with non-finite weights, or tokens out of its range."""


def refuse_non_finite(row: Mapping[str, Any]) -> None:
    """Raises NonFiniteScores where a clip's score or evidence columns hold a NaN or an infinity. The clip becomes a
    `fuse` failure (run_isolating), which fails its film at a stage the next run retries; before 2026-12-06 it was
    written as the argmax of NaN ("anger") in an ok film."""
    bad = [k for k, v in row.items() if not all(np.isfinite(x) for x in _numbers(v))]
    if bad:
        raise NonFiniteScores(f"the head gave scores that are not finite (NaN or infinite) in {', '.join(bad[:4])}"
                              f"{' ...' if len(bad) > 4 else ''}: a head with weights that are not finite, or tokens "
                              "out of its range; the clip is not scored")


def _numbers(value: Any) -> list[float]:
    """The numbers of a column value: itself (a float or an int), a list's floats, none for the rest."""
    if isinstance(value, (float, int)) and not isinstance(value, bool):
        return [value]
    if isinstance(value, list):
        return [x for x in value if isinstance(x, float)]
    return []


def _n_faces(tokens: Mapping[str, np.ndarray]) -> Optional[int]:
    face = tokens.get("face")
    return None if face is None else int(face.shape[0])


# -- features table rows <-> head inputs --------------------------------------------------------------------
def features_row(film_id: str, film_path: str, clip_index: int, tokens: Mapping[str, np.ndarray],
                 encoder_version: str, dims: Mapping[str, int]) -> dict:
    """One features-table row (schemas/features.py): every token set's tokens flat with length and width,
    and its mean-pooled vector (null when missing)."""
    row = {"film_id": film_id, "film_path": film_path, "clip_index": int(clip_index),
           "encoder_version": encoder_version}
    for m in features_schema.TOKEN_SETS:
        t = tokens.get(m)
        d = int(t.shape[1]) if t is not None and t.ndim == 2 and t.shape[1] else int(dims.get(m, 0))
        n = 0 if t is None else int(t.shape[0])
        row[f"{m}_len"], row[f"{m}_dim"] = n, d
        row[f"{m}_tokens"] = t.astype(np.float32).ravel() if n else None
        row[f"{m}_pooled"] = t.astype(np.float32).mean(0) if n else None
    return row


def tokens_from_row(row: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The inverse of features_row: token set -> float32 [L, D] (L == 0 for missing; a schema 1.0 table has no
    scene tokens)."""
    out = {}
    for m in features_schema.TOKEN_SETS:
        if m not in MODALITIES and f"{m}_len" not in row:  # a schema 1.0 table: no scene tokens
            out[m] = np.zeros((0, 0), np.float32)
            continue
        n, d = int(row[f"{m}_len"]), int(row[f"{m}_dim"])
        flat = row.get(f"{m}_tokens")
        out[m] = (np.asarray(flat, np.float32).reshape(n, d) if n and flat is not None
                  else np.zeros((0, d), np.float32))
    return out


def row_token_problem(row: Mapping[str, Any]) -> Optional[str]:
    """Why a features row's tokens cannot be scored, or None: a token set whose values are not `len x dim` (what
    tokens_from_row reshapes them to), or that holds a value that is not finite (damaged compressed bytes can read
    back without an error, as NaN)."""
    for m in features_schema.TOKEN_SETS:
        if f"{m}_len" not in row:  # a schema 1.0 table: no scene tokens
            continue
        n, d = int(row[f"{m}_len"]), int(row[f"{m}_dim"])
        flat = row.get(f"{m}_tokens")
        size = 0 if flat is None else len(flat)
        if size != n * d or n < 0 or (n and not d):
            return f"{m}_tokens holds {size} values where {m}_len x {m}_dim is {n} x {d}"
        if size and not np.isfinite(np.asarray(flat, np.float32)).all():
            return f"{m}_tokens holds values that are not finite (NaN or infinite)"
    return None
