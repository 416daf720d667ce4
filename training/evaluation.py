"""Scoring a head on labelled data, with grouped k-fold estimates. CLI: pipeline.evaluate.

evaluate_spec: the head's metrics on a data spec (training.metrics: accuracy, weighted/macro F1, per class,
confusion, ECE, Pearson r of valence/arousal where targets exist); with cv > 0 a K-fold estimate (folds keep a
dialogue / film together): cv_mode 'score' = the head's metrics on each fold (the spread of the estimate),
'train' = a fresh head of the same configuration trained on the other K-1 folds and scored on the held-out one
(how well this data can be learnt).
"""
from __future__ import annotations

import dataclasses
import functools
import os
from collections import Counter
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

from model.bvpec import MODALITIES, BVPECConfig
from model.checkpoints import BRANCH_SETS, branch_classifier_data, seen_data
from model.encoders.versions import TEXT_LANGUAGES
from model.featurize import Featurizer, select_modalities
from training.datasets import (LINE_KINDS, DataError, Example, _quietly, _row_digest, copied_lines, line_digest,
                               load_dataset, parquet_speakers, per_file_version, set_speakers, spec_parts)
from training.features import features_for
from training.loop import LabelledSet, evaluate_set, train_head
from training.metrics import summarise_folds

ROOT = Path(__file__).resolve().parents[1]  # a head's record may name its data relative to the repository
# kinds whose rows carry media of one sort: a row of one may be a byte-identical copy of a row of another
MEDIA_FAMILY = {"faces": "image", "imagefolder": "image", "frames": "image", "audio": "sound", "spoken": "sound",
                "clips": "clip", **{kind: "line" for kind in LINE_KINDS}}


def fold_groups(examples: Sequence[Example]) -> list[str]:
    """Each row's cross-validation group: its dialogue, film or actor; a row of none is a group of its own."""
    return [e.group or str(i) for i, e in enumerate(examples)]


def folds_problem(spec: str, groups: Sequence[str], k: int) -> str | None:
    """Why K folds cannot be cut from these (labelled) rows' groups, naming the K that can; None where they can."""
    n = len(set(groups))
    if k <= n:
        return None
    fix = f"give --cv {n} or fewer" if n >= 2 else "leave out --cv"
    return (f"{spec}: --cv {k} needs {k} groups of labelled rows (a dialogue, film or actor stays in one fold); "
            f"it has {n}: {fix}")


def fold_indices(groups: list[str], labels: np.ndarray, k: int, seed: int = 0, spec: str = "the set"
                 ) -> list[np.ndarray]:
    """Held-out index arrays of K grouped folds, stratified by label where every class allows it. More folds than
    groups is a DataError (folds_problem): before 2026-12-07 sklearn's ValueError, a traceback after the scoring."""
    if problem := folds_problem(spec, groups, k):
        raise DataError(problem)
    x = np.zeros(len(labels))
    try:
        cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        folds = [test for _, test in cv.split(x, labels, groups)]
        if all(len(f) for f in folds):  # its greedy spread may leave a fold without a group; GroupKFold does not
            return folds
    except ValueError:
        pass
    return [test for _, test in GroupKFold(n_splits=k).split(x, labels, groups)]


@dataclasses.dataclass
class SetRows:
    """What a data spec's labelled rows are compared by with another spec's: their place in their file ('' where
    the reader numbers none), their media's digest ('' for a line alone) and the set's speakers."""
    places: list[str]
    digests: list[str]
    speakers: set[str]
    groups: list[str]

    @functools.cached_property
    def known(self) -> set[str]:
        """Every place and digest, for the look-ups of another set's rows."""
        return {x for x in self.places + self.digests if x}


@per_file_version
def set_rows(spec: str) -> SetRows:
    """A spec's labelled rows as SetRows, read quietly (the command reads the set again, and says its warnings then;
    a head's training set is read for this alone)."""
    kind, path, _, _ = spec_parts(spec)
    with _quietly():
        examples = [e for e in load_dataset(spec) if e.label >= 0]
    file = str(path.resolve())
    speakers = parquet_speakers(path) if kind in ("audio", "spoken") else None
    digest = line_digest if MEDIA_FAMILY.get(kind) == "line" else _row_digest
    return SetRows([f"{file}#{e.row}" if e.row >= 0 else "" for e in examples], [digest(e) for e in examples],
                   set_speakers(path.parent.name, [speakers[e.row] for e in examples if 0 <= e.row < len(speakers)])
                   if speakers else set(), fold_groups(examples))


def local_spec(spec: str) -> str | None:
    """A spec a head's record names, as this machine reaches it: as written, or relative to the repository (the
    commands are run from it: '../shared/data/...'); None where its data is not here or it is no data spec (a
    'pairs:dev@N' or 'speech-oof:' entry). Its path absolute, so one set named two ways is read once."""
    try:
        kind, path, _, _ = spec_parts(spec)
    except ValueError:
        return None
    rest = spec.partition(":")[2]
    for base in (Path.cwd(), ROOT):
        if (base / path).exists():  # an absolute path stays as it is
            return f"{kind}:{os.path.normpath(base / rest)}"
    return None


def may_share_rows(spec: str, other: str) -> bool:
    """Whether two specs can have a row in common: one file (any kind: audio: and spoken: read the same clips), or
    media of one sort (a copy of a face in another file, of a line set in another: LINE_COPY_SHARE)."""
    (kind, path, _, _), (other_kind, other_path, _, _) = spec_parts(spec), spec_parts(other)
    family = MEDIA_FAMILY.get(kind)
    return path.resolve() == other_path.resolve() or (family is not None and family == MEDIA_FAMILY.get(other_kind))


class RowsRead:
    """SetRows of each spec, read once in a command however many --data sets are compared with it."""

    def __init__(self):
        self._rows: dict[str, SetRows] = {}

    def __call__(self, spec: str) -> SetRows:
        """The spec's SetRows, read on first use."""
        if spec not in self._rows:
            self._rows[spec] = set_rows(spec)
        return self._rows[spec]


def shared_rows(spec: str, others: Sequence[str], rows: RowsRead, speakers: bool = True) -> dict | None:
    """How many of `spec`'s labelled rows are rows of `others` (the same row of the same file, or byte-identical
    media) and, with `speakers`, how many of its set's speakers are theirs: {'rows', 'of', 'speakers', 'sets': the
    others that share any}; None where none is shared or none of the others is on this machine."""
    hits, voices, sets = set(), set(), []
    mine = None
    for other in others:
        local = local_spec(other)
        if local is None or not may_share_rows(spec, local):
            continue
        try:
            theirs = rows(local)
        except (ValueError, OSError):  # a set of the record this machine holds another version of: not compared
            continue
        mine = mine or rows(spec)
        found = {i for i, p in enumerate(mine.places) if p in theirs.known}
        copied = {i for i, d in enumerate(mine.digests) if d in theirs.known}
        if MEDIA_FAMILY.get(spec_parts(spec)[0]) != "line" or copied_lines(len(copied), len(mine.places)):
            found |= copied  # (lines: only a copy's share; a few identical short turns are every set's)
        common = mine.speakers & theirs.speakers if speakers else set()
        if found or common:
            hits, voices = hits | found, voices | common
            sets.append(local)  # one name per file: the record may name it absolutely and relatively
    if not sets:
        return None
    return {"rows": len(hits), "of": len(mine.places), "speakers": len(voices), "sets": list(dict.fromkeys(sets))}


def calibration_data(meta: Mapping) -> list[str]:
    """The specs a head's temperatures were fitted on: its training run's --dev sets (its temperature, and the epoch
    chosen) and pipeline.calibrate's --data sets, every --refit's included (meta['pattern_calibration']: 'refits',
    oldest first, since 2026-12-07; 'refit', the latest, in a head written before), and the dev sets its speech and
    scene classifiers' own temperatures were fitted on (their 'calibrated_on')."""
    fits = meta.get("pattern_calibration") or {}
    specs = list(meta.get("dev_data") or []) + list(fits.get("data") or []) + [
        spec for refit in refit_records(fits) for spec in refit.get("data") or []]
    branches = [spec for name in BRANCH_SETS for spec in branch_classifier_data(name, meta, "calibrated_on")]
    return list(dict.fromkeys(specs + branches))


def refit_records(fits: Mapping) -> list[dict]:
    """Every --refit of a head's calibration record (meta['pattern_calibration']), oldest first: its 'refits' (since
    2026-12-07), else the one 'refit' a head written before keeps."""
    return list(fits.get("refits") or ([fits["refit"]] if fits.get("refit") else []))


def overlaps_with_head(spec: str, meta: Mapping, rows: RowsRead) -> dict:
    """What of `spec` the head has seen: 'overlaps_training' (shared_rows with model.checkpoints.seen_data: its own
    training data and what trained the parts it carries; its scores read high) and 'calibrated_on' (rows of
    calibration_data: its ECE is in-sample), each where there is any."""
    out = {"overlaps_training": shared_rows(spec, seen_data(meta), rows),
           "calibrated_on": shared_rows(spec, calibration_data(meta), rows, speakers=False)}
    return {k: v for k, v in out.items() if v}


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
    skipped: Counter = Counter()
    examples, feats = features_for(spec, encoders, unreadable=unreadable, left_out=left_out,
                                   text_languages=text_languages, skipped=skipped)
    feats = [select_modalities(f, modalities) for f in feats]
    s = LabelledSet(spec, feats, examples)
    dims = model.config.input_dims
    for it in feats[:50]:
        for m, a in it.items():
            if m in dims and len(a) and a.shape[-1] != dims[m]:
                raise ValueError(f"{m} features are {a.shape[-1]} wide but the head expects {dims[m]}")
    # folds over the labelled rows alone, cut before any scoring: before 2026-12-07 over every row, so a fold of
    # unlabelled rows reached sklearn empty, and a K above the groups was a traceback after the whole set was scored
    labelled_rows = np.flatnonzero(s.labels >= 0)
    folds = [labelled_rows[test] for test in fold_indices(fold_groups([examples[i] for i in labelled_rows]),
                                                          s.labels[labelled_rows], cv, seed, spec)] if cv else []
    # What each modality says on its own: clips with one modality are labelled by its classifier, as in a run.
    featurizer = Featurizer(encoders)
    evidence = [featurizer.evidence(f) for f in feats]
    result = evaluate_set(model, s, evidence=evidence, ece_floor=True)
    if unreadable:  # rows left out because their media could not be decoded (their indices in the set)
        result["unreadable_rows"] = unreadable
    if left_out:  # rows left out because their label is none of ours, by that label
        result["left_out_labels"] = dict(left_out.most_common())
    if skipped:  # rows a reader left out (a spoken: row with no line), by why: not counted before 2026-12-07
        result["skipped_rows"] = dict(skipped.most_common())
    if cv:
        fold_metrics = []
        for f, test in enumerate(folds):
            if cv_mode == "train":
                train_idx = np.setdiff1d(labelled_rows, test)
                config = BVPECConfig.from_dict(model.config.to_dict())
                fresh, _ = train_head(subset(s, train_idx), [], config, epochs=cv_epochs, seed=seed + f)
                fold_metrics.append(evaluate_set(fresh, subset(s, test)))
            else:
                fold_metrics.append(evaluate_set(model, subset(s, test), evidence=[evidence[i] for i in test]))
        result["cv"] = {"k": cv, "mode": cv_mode, **summarise_folds(fold_metrics)}
    return result
