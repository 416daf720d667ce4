"""Run the head on per-clip feature dicts and turn outputs into plain Python predictions."""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np
import torch

from model.batching import collate
from model.bvpec import BVPEC, MODALITIES
from schemas.clips import GROUNDED_SUPPORT
from schemas.labels import EMOTIONS


@dataclasses.dataclass(frozen=True)
class Prediction:
    probs: np.ndarray  # [7] in EMOTIONS order, sums to 1
    emotion: str
    confidence: float
    valence: float
    arousal: float
    gates: dict[str, float]
    modalities_used: list[str]


def modalities_used(gates: Sequence[float]) -> list[str]:
    """The modalities the head weighed for a clip (gate > 0), in MODALITIES order."""
    return [m for m, g in zip(MODALITIES, gates) if g > 0]


def evidence_pattern(present: Sequence[bool]) -> str:
    """The modalities a clip has, as a key: 'text', 'face+vision', 'audio+face+text+vision', ... ('' = none)."""
    return "+".join(sorted(m for m, p in zip(MODALITIES, present) if p))


def evidence_patterns(masks: Mapping[str, torch.Tensor]) -> list[str]:
    """Per clip of a batch (model.batching.collate's masks), its evidence_pattern."""
    present = torch.stack([masks[m].any(1) for m in MODALITIES], 1).cpu().tolist()
    return [evidence_pattern(row) for row in present]


def calibrated_probs(model: BVPEC, logits: torch.Tensor, masks: Mapping[str, torch.Tensor] | None = None
                     ) -> torch.Tensor:
    """softmax(logits / T), so a probability of 0.6 means right about 60% of the time on data like dev.

    T is fitted on dev data after training: one per evidence pattern (which modalities the clip has:
    `model.pattern_temperatures`, training.calibration) where the checkpoint has one for the clip's pattern and
    `masks` (model.batching.collate's) say which it is, else the head's single temperature (1.0 when none).
    A text-only clip and a clip with a face, a scene and speech are not equally sure at the same logits."""
    logits = logits.float()
    temps = torch.full(logits.shape[:-1], float(getattr(model, "temperature", 1.0)), device=logits.device)
    by_pattern = getattr(model, "pattern_temperatures", None) or {}
    if by_pattern and masks is not None and logits.dim() == 2:
        for i, pattern in enumerate(evidence_patterns(masks)):
            t = by_pattern.get(pattern)
            if t is not None:
                temps[i] = float(t)
    return torch.softmax(logits / temps.unsqueeze(-1), -1)


# A clip is labelled by its modalities' own classifiers (their evidence), not by the head: each was trained on
# labelled data of its kind and calibrated (the line's: line_evidence, a lone line included since 2026-12-06). A
# lone modality: its classifier reads it better than the head on dev (pipeline.evaluate vs benchmarks.modality_table:
# Emotion6 photos 0.505 vs 0.426, FER+ faces 0.780 vs 0.765, IMFDB 0.459 vs 0.451, FER2013 0.635 vs 0.630, RAVDESS
# 0.700 vs 0.692). Several: the product of their calibrated probabilities (independent evidence about one label),
# which beats the head on label-paired dev clips without a line on every pattern with a voice, in accuracy and
# calibration (docs/training.md, "Clips without a line"). Clips with a line joined this rule on 2026-12-04: on the
# labelled films the head followed the voice wherever the line's words were plain (right on 19 and 18 of 35 films,
# saying 0.72-0.74), having learnt from speech tokens the classifier was trained on, which are never wrong; the
# product reads 19 and 25 (docs/training.md, "Clips with a line: the head copied the voice").
BRANCH_EVIDENCE = {"text": "text", "face": "face", "vision": "scene", "audio": "speech"}
# Where a face is found, the face classifier stands in for the scene classifier. The head never learnt a face's own
# frame, and a face filling the frame is not a scene: on IMFDB dev stills through the full visual path (faces found
# in 94 %) the head reads 0.114, the face classifier 0.457 where a face is found and the scene classifier 0.062
# (python -m pipeline.evaluate --data frames:$D/faces/imfdb/dev.parquet).
VISUAL = frozenset({"vision", "face"})


# ...unless the product's label is one no modality backs. Modalities that disagree (a face's surprise, a voice's
# anger, a scene's sadness) multiply into the label each gives a middling share: a compromise none of them chose,
# at a confidence calibrated on clips whose modalities agree. Then the head labels the clip, which learnt from
# clips with every pattern of modalities. "Backs": gives it at least GROUNDED_SUPPORT on its own, the clips table's
# grounded rule. On dev clips without a line (benchmarks.modality_table, 4,000 each): modalities that agree 0.783 ->
# 0.794 accuracy (ECE 0.014 -> 0.013; frames+voice 0.786 -> 0.796, face+voice 0.839 -> 0.849), modalities that each
# carry a different label: the label is one of theirs 0.730 -> 0.767. A lone modality keeps its classifier however
# weak (below 0.4 the head reads lone faces, scenes and voices worse on every dev set but FER2013).


def evidence_keys(modalities_used: Sequence[str], evidence: Mapping[str, np.ndarray],
                  temperatures: Mapping[str, float] | None = None) -> tuple[str, ...]:
    """The evidence ('text', 'face', 'scene', 'speech') whose classifiers label a clip, from the modalities the head
    weighed (modalities_used): every one, the face's standing in for the scene's (VISUAL); () when the head labels
    it: a modality without evidence, or several whose product's label none of them backs (temperatures: the head's
    branch temperatures, as the evidence columns read them)."""
    keys = classifier_keys(modalities_used, evidence)
    return keys if len(keys) <= 1 or product_backed(keys, evidence, temperatures) else ()


def classifier_keys(modalities_used: Sequence[str], evidence: Mapping[str, np.ndarray]) -> tuple[str, ...]:
    """evidence_keys before the backing check: the classifiers a clip has, the face's standing in for the scene's
    (a line's: with_line_evidence); () for a modality without evidence of its own."""
    used = set(modalities_used)
    if not used:
        return ()
    if VISUAL <= used:
        used.discard("vision")
    keys = tuple(BRANCH_EVIDENCE[m] for m in MODALITIES if m in used)
    return keys if all(evidence.get(k) is not None for k in keys) else ()


def product_backed(keys: Sequence[str], evidence: Mapping[str, np.ndarray],
                   temperatures: Mapping[str, float] | None = None) -> bool:
    """Whether some classifier of `keys` gives the label of their product (classifier_probs) at least
    GROUNDED_SUPPORT on its own, under its branch temperature."""
    label = int(classifier_probs(keys, evidence, temperatures).argmax())
    t = temperatures or {}
    return max(recalibrated(evidence[k], t.get(k))[label] for k in keys) >= GROUNDED_SUPPORT


def branch_of(modalities_used: Sequence[str], evidence: Mapping[str, np.ndarray],
              temperatures: Mapping[str, float] | None = None) -> str | None:
    """The key of the classifiers that label a clip ('face', 'scene', 'speech', or several joined by '+':
    'face+speech'), or None when the head labels it (evidence_keys)."""
    return "+".join(evidence_keys(modalities_used, evidence, temperatures)) or None


def recalibrated(p: np.ndarray, temperature: float | None) -> np.ndarray:
    """softmax(log p / T): a classifier's probabilities under the head's temperature for that branch (fitted by
    training.calibration); p renormalised when there is none."""
    from scipy.special import softmax
    p = np.clip(np.asarray(p, np.float64), 1e-12, None)
    return softmax(np.log(p) / float(temperature)) if temperature else p / p.sum()


def calibrated_evidence(evidence: Mapping[str, np.ndarray],
                        temperatures: Mapping[str, float] | None) -> dict[str, np.ndarray]:
    """Each modality's own probabilities with the head's branch temperature for it (what the clips table's
    evidence columns, support and grounded flag read)."""
    return {k: recalibrated(v, (temperatures or {}).get(k)) for k, v in evidence.items()}


def branch_probs(modalities_used: Sequence[str], evidence: Mapping[str, np.ndarray],
                 temperatures: Mapping[str, float] | None = None) -> np.ndarray | None:
    """The probabilities of the classifiers that label the clip (evidence_keys), each recalibrated by the head's
    temperature for its branch: one classifier's, or the normalised product of several (then recalibrated by a
    temperature of that combination when calibration fitted one); None when the head labels the clip."""
    keys = evidence_keys(modalities_used, evidence, temperatures)
    return classifier_probs(keys, evidence, temperatures) if keys else None


def classifier_probs(keys: Sequence[str], evidence: Mapping[str, np.ndarray],
                     temperatures: Mapping[str, float] | None = None) -> np.ndarray:
    """The normalised product of these classifiers' probabilities, each under its branch temperature, then under
    the combination's own temperature when calibration fitted one ('face+speech'); one classifier: its own."""
    t = temperatures or {}
    logs = sum(np.log(recalibrated(evidence[k], t.get(k))) for k in keys)
    p = np.exp(logs - logs.max())
    return recalibrated(p, t.get("+".join(keys))) if len(keys) > 1 else p / p.sum()


def line_evidence(model: BVPEC, items: Sequence[Mapping[str, np.ndarray]], device: str = "cpu"
                  ) -> list[np.ndarray | None]:
    """What each clip's line says on its own (None for a clip without a line): the calibrated probabilities of the
    head's line classifier (`model.text_classifier`: a text-only head trained on lines alone, on the same tuned text
    layers, so the same tokens), or of the head itself with only the text tokens where the checkpoint has none.
    The clips table's evidence_text, and the line's part in with_branch_label.

    Why a classifier of its own: the head, trained on every modality at once, reads lines worse than a head trained
    on lines (MELD dev weighted F1 0.587-0.596 over three seeds against 0.606 on the same text layers;
    docs/training.md, "The line's own classifier"), as a lone face or voice is read better by its classifier."""
    idx = [i for i, t in enumerate(items) if t.get("text") is not None and len(t["text"])]
    out: list[np.ndarray | None] = [None] * len(items)
    reader = getattr(model, "text_classifier", None) or model
    if idx:
        for i, p in zip(idx, predict(reader, [{"text": items[i]["text"]} for i in idx], device=device,
                                     batch_size=len(idx))):
            out[i] = p.probs
    return out


def with_line_evidence(model: BVPEC, items: Sequence[Mapping[str, np.ndarray]],
                       evidence: Sequence[Mapping[str, np.ndarray]], device: str = "cpu") -> list[dict]:
    """Per clip, its other modalities' own probabilities (model.featurize.Featurizer.evidence) with its line's
    (line_evidence) under 'text': the evidence with_branch_label labels a clip from."""
    return [{**ev, **({"text": t} if t is not None else {})}
            for ev, t in zip(evidence, line_evidence(model, items, device))]


def with_branch_label(pred: Prediction, evidence: Mapping[str, np.ndarray],
                      temperatures: Mapping[str, float] | None = None) -> Prediction:
    """`pred`, or its modalities' own classifiers' label (branch_probs; evidence with the line's, as
    with_line_evidence gives it; the head's valence, arousal and gates stay)."""
    p = branch_probs(pred.modalities_used, evidence, temperatures)
    if p is None:
        return pred
    k = int(p.argmax())
    return dataclasses.replace(pred, probs=p, emotion=EMOTIONS[k], confidence=float(p[k]))


def predict(model: BVPEC, items: Sequence[Mapping[str, np.ndarray]], device: str = "cpu",
            batch_size: int = 256) -> list[Prediction]:
    model.eval()
    dims = model.config.input_dims
    out: list[Prediction] = []
    with torch.inference_mode():
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            inputs, masks = collate(chunk, dims)
            res = model({m: t.to(device) for m, t in inputs.items()}, {m: t.to(device) for m, t in masks.items()})
            probs = calibrated_probs(model, res.logits, masks).cpu().numpy().astype(np.float64)
            inten = res.intensity.float().cpu().numpy()
            gates = res.gates.float().cpu().numpy()
            for i in range(len(chunk)):
                p = probs[i] / probs[i].sum()
                k = int(p.argmax())
                g = {m: float(gates[i, j]) for j, m in enumerate(MODALITIES)}
                out.append(Prediction(probs=p, emotion=EMOTIONS[k], confidence=float(p[k]),
                                      valence=float(inten[i, 0]), arousal=float(inten[i, 1]), gates=g,
                                      modalities_used=modalities_used(gates[i])))
    return out
