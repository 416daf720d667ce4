"""Scoring a head on labelled data, with grouped k-fold estimates. CLI: pipeline.evaluate.

evaluate_spec: the head's metrics on a data spec (training.metrics: accuracy, weighted/macro F1, per class,
confusion, ECE, Pearson r of valence/arousal where targets exist); with cv > 0 a K-fold estimate (folds keep a
dialogue / film together): cv_mode 'score' = the head's metrics on each fold (the spread of the estimate),
'train' = a fresh head of the same configuration trained on the other K-1 folds and scored on the held-out one
(how well this data can be learnt).
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

from model.bvpec import MODALITIES, BVPECConfig
from model.encoders.versions import TEXT_LANGUAGES
from model.featurize import Featurizer, select_modalities
from training.features import features_for
from training.loop import LabelledSet, evaluate_set, train_head
from training.metrics import summarise_folds


def fold_indices(groups: list[str], labels: np.ndarray, k: int, seed: int = 0) -> list[np.ndarray]:
    """Held-out index arrays of K grouped folds, stratified by label where every class allows it."""
    x = np.zeros(len(labels))
    try:
        cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        return [test for _, test in cv.split(x, labels, groups)]
    except ValueError:
        return [test for _, test in GroupKFold(n_splits=k).split(x, labels, groups)]


def subset(s: LabelledSet, idx) -> LabelledSet:
    out = LabelledSet(s.name, [s.items[i] for i in idx], [])
    out.labels, out.targets = s.labels[idx], s.targets[idx]
    return out


def evaluate_spec(spec: str, model, encoders, cv: int = 0, cv_mode: str = "score", seed: int = 0,
                  cv_epochs: int = 10, modalities: Sequence[str] = MODALITIES,
                  text_languages: Sequence[str] = TEXT_LANGUAGES) -> dict:
    """encoders: model.encoders.create_encoders(EncoderSpec(head=...)) for the head being scored; modalities:
    what the head may see (the others are removed from every example, as `--modalities` does in a run);
    text_languages: the lines read (training.features.lines_as_read), as the run's `--text_languages`."""
    unreadable: list[int] = []
    left_out: Counter = Counter()
    examples, feats = features_for(spec, encoders, unreadable=unreadable, left_out=left_out,
                                   text_languages=text_languages)
    feats = [select_modalities(f, modalities) for f in feats]
    s = LabelledSet(spec, feats, examples)
    dims = model.config.input_dims
    for it in feats[:50]:
        for m, a in it.items():
            if m in dims and len(a) and a.shape[-1] != dims[m]:
                raise ValueError(f"{m} features are {a.shape[-1]} wide but the head expects {dims[m]}")
    # What each modality says on its own: clips with one modality are labelled by its classifier, as in a run.
    featurizer = Featurizer(encoders)
    evidence = [featurizer.evidence(f) for f in feats]
    result = evaluate_set(model, s, evidence=evidence, ece_floor=True)
    if unreadable:  # rows left out because their media could not be decoded (their indices in the set)
        result["unreadable_rows"] = unreadable
    if left_out:  # rows left out because their label is none of ours, by that label
        result["left_out_labels"] = dict(left_out.most_common())
    if cv:
        folds = fold_indices([e.group or str(i) for i, e in enumerate(examples)], s.labels, cv, seed)
        fold_metrics = []
        for f, test in enumerate(folds):
            if cv_mode == "train":
                train_idx = np.setdiff1d(np.arange(len(s)), test)
                config = BVPECConfig.from_dict(model.config.to_dict())
                fresh, _ = train_head(subset(s, train_idx), [], config, epochs=cv_epochs, seed=seed + f)
                fold_metrics.append(evaluate_set(fresh, subset(s, test)))
            else:
                fold_metrics.append(evaluate_set(model, subset(s, test), evidence=[evidence[i] for i in test]))
        result["cv"] = {"k": cv, "mode": cv_mode, **summarise_folds(fold_metrics)}
    return result
