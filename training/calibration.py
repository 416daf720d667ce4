"""A temperature per evidence pattern: the head's probabilities calibrated separately for text-only clips,
photos, speech, and so on (model.predict.calibrated_probs applies them).

One temperature for every kind of clip left text-only MELD lines (ECE 0.124) and photos (0.151) over-confident
while face crops were well calibrated: the same logits do not mean the same certainty when the head has one
weak modality as when it has several. Each pattern with at least MIN_PER_PATTERN labelled dev examples gets its
own T (the NLL minimiser, training.metrics.fit_temperature); other patterns keep the head's single T.
Clips that their modalities' own classifiers label (model.predict.branch_of: a clip without a line) are keyed
'branch:<face|scene|speech>' for one classifier, whose T rescales the log of its probabilities, or by several
joined ('branch:face+speech'), whose T rescales the product of the members' recalibrated probabilities.
`cross_fitted` estimates the calibration on data the temperatures were not fitted on (two folds).
"""
from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np
import torch
from scipy.special import softmax

from model.batching import collate
from model.predict import branch_of, branch_probs, evidence_patterns, modalities_used, with_line_evidence
from schemas.labels import NUM_EMOTIONS
from training.metrics import expected_calibration_error, fit_temperature

log = logging.getLogger("training.calibration")

MIN_PER_PATTERN = 50  # a one-parameter fit: 50 labelled clips pin it down to a few per cent
MIN_CLASSES = 3  # rows of fewer labels fit a T that follows their label mix, not how sure the head should be
LOG_T_BOUND = 3.0  # training.metrics.fit_temperature searches log T in [-3, 3]: T 0.050 to 20.09


BRANCH = "branch:"


def logits_and_patterns(model, items: Sequence[dict], evidence: Sequence[dict] | None = None,
                        batch_size: int = 512) -> tuple[np.ndarray, list[str]]:
    """Per item, the logits its label comes from [N, 7] and its key: the head's raw logits and the evidence
    pattern, or, for a clip its own classifiers label (given `evidence`; model.predict.branch_of), the log of their
    probabilities and 'branch:<key>': one classifier's as it gives them, or the product of several, each under
    the head's branch temperature for it (a temperature fitted on such rows rescales the product)."""
    model.eval()
    if not items:  # no label-paired clip drawn (pipeline.calibrate --pairs): torch.cat of nothing would stop the run
        return np.zeros((0, NUM_EMOTIONS)), []
    logits, patterns, used = [], [], []
    members_t = getattr(model, "branch_temperatures", None) or {}
    if evidence is not None:  # the line's too (model.predict.with_line_evidence), as the pipeline labels clips
        evidence = with_line_evidence(model, items, evidence)
    with torch.inference_mode():
        for i in range(0, len(items), batch_size):
            inputs, masks = collate(items[i:i + batch_size], model.config.input_dims)
            out = model(inputs, masks)
            logits.append(out.logits.float())
            batch_used = [modalities_used(row) for row in out.gates.float().tolist()]
            for j, (pattern, u) in enumerate(zip(evidence_patterns(masks), batch_used)):
                key = branch_of(u, evidence[i + j], members_t) if evidence is not None else None
                patterns.append(BRANCH + key if key else pattern)
            used += batch_used
    logits = torch.cat(logits).numpy().astype(np.float64)
    for j, key in enumerate(patterns):
        if key.startswith(BRANCH):
            members = key[len(BRANCH):].split("+")
            temps = {k: members_t[k] for k in members if k in members_t} if len(members) > 1 else None
            logits[j] = np.log(np.clip(branch_probs(used[j], evidence[j], temps), 1e-12, None))
    return logits, patterns


def referee_rows(logits: np.ndarray, patterns: Sequence[str], labels: np.ndarray
                 ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Of label-paired clips' rows (logits_and_patterns), the ones the head labels with several modalities: its
    referee patterns (a product no modality backs). The products' rows are left out: their fitted temperature
    follows the pairs' label mix (one of each label: softer; a film's mix: about as they are), while the head as
    referee is over-sure under either (docs/training.md)."""
    keep = [i for i, p in enumerate(patterns) if not p.startswith(BRANCH) and "+" in p]
    return logits[keep], [patterns[i] for i in keep], np.asarray(labels)[keep]


def speech_out_of_fold(path, head=None) -> tuple[np.ndarray, list[str], np.ndarray]:
    """The speech classifier's speaker-out-of-fold logits on its train speakers (training.speech_classifier
    --oof) as branch rows: (log-probabilities, 'branch:speech' each, labels). Only the sets with dev speakers, as the
    file records them (oof_dev_sets: RAVDESS and EmoDB, or a studio's own): the temperature is for speakers like
    theirs; a file's TESS rows (--oof_sets) are for the head's training. Refused (DataError, one line) when they were
    made with other speech weights than the ones the head `head` reads (the classifier it carries, else the shipped;
    before 2026-12-06 always the shipped), or hold no row of those sets."""
    from scipy.special import log_softmax

    from training.datasets import DataError
    from training.speech_classifier import oof_dev_sets, read_oof
    read, dev_sets = read_oof(path, head=head), oof_dev_sets(path)
    rows = [v for name, v in read.items() if name in dev_sets]
    if not rows:
        raise DataError(f"--speech_oof {path}: no rows of a set with dev speakers ({', '.join(dev_sets) or 'none'}; it "
                        f"holds {', '.join(read)}): write it with --oof_sets naming one")
    logits = log_softmax(np.concatenate([r[0] for r in rows]).astype(np.float64), axis=1)
    return logits, [BRANCH + "speech"] * len(logits), np.concatenate([r[1] for r in rows])


def classifiers_of(head) -> dict[str, str]:
    """Whose each of a head's temperatures is, by digest: `head`, its own weights (the pattern temperatures); `speech`,
    `scene`, the classifier files it carries, else the shipped ones; `face`, its tuned face weights ('' the packaged);
    `text`, its text layers and line classifier (without one, the head reads a lone line itself: its weights)."""
    from model.checkpoints import load_head
    from model.encoders._cache import file_digest, state_digest
    from model.encoders.versions import SCENE_WEIGHTS, SPEECH_WEIGHTS, head_digests

    model, meta = load_head(head)
    carried, own = head_digests(head), state_digest(model.state_dict())
    line = (meta.get("text_classifier") or {}).get("state_dict")
    return {"head": own, "speech": carried["speech"] or file_digest(SPEECH_WEIGHTS),
            "scene": carried["scene"] or file_digest(SCENE_WEIGHTS), "face": carried["face"],
            "text": carried["text"] + "|" + (state_digest(line) if line else own)}


def foreign_temperatures(head, other, refit: Sequence[str]) -> str | None:
    """Why `other`'s temperatures cannot be kept on `head` (pipeline.calibrate --temperatures_from with --refit), None
    where they can: a branch temperature not refitted that belongs to another classifier than `head` carries
    (classifiers_of), or, where the two heads' weights differ, a pattern temperature not refitted (it was fitted to
    other logits). Before 2026-12-06 they were copied: a studio head got the shipped speech and scene temperatures."""
    from model.checkpoints import load_head_meta

    mine, theirs, meta = classifiers_of(head), classifiers_of(other), load_head_meta(other)
    kept = [b for b in meta.get("branch_temperatures") or {} if BRANCH + b not in refit]
    wrong = [b for b in kept if any(mine.get(m) != theirs.get(m) for m in b.split("+"))]
    if wrong:
        many = len(wrong) > 1
        return (f"its {', '.join(BRANCH + b for b in wrong)} temperature{'s belong' if many else ' belongs'} to "
                f"{'other classifiers' if many else 'another classifier'} than the head carries: refit "
                f"{'them' if many else 'it'} (--refit {' --refit '.join(BRANCH + b for b in wrong)})")
    patterns = [p for p in meta.get("pattern_temperatures") or {} if p not in refit and p not in lone_patterns(head)]
    if patterns and mine["head"] != theirs["head"]:
        return (f"its head's weights are not the head's, so its pattern temperatures ({', '.join(patterns)}) were "
                f"fitted to other logits: refit them (--refit {' --refit '.join(patterns)})")
    return None


def lone_patterns(head) -> set[str]:
    """The one-modality patterns whose clips `head` never labels: a lone face, frames or voice is its classifier's,
    a lone line its line classifier's where it carries one (model.predict), so their pattern temperatures only
    calibrate the head's own reading, which no column shows (the release's calibrate command keeps the text one)."""
    from model.checkpoints import load_head_meta
    return {"face", "vision", "audio"} | ({"text"} if load_head_meta(head).get("text_classifier") else set())


def split(temps: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """(head pattern temperatures, branch temperatures) as the checkpoint stores them."""
    return ({k: v for k, v in temps.items() if not k.startswith(BRANCH)},
            {k[len(BRANCH):]: v for k, v in temps.items() if k.startswith(BRANCH)})


def refit_only(fitted: dict[str, float], meta: dict, keys: Sequence[str]) -> dict[str, float]:
    """The head's temperatures (meta's pattern and branch ones, as `split` stores them) with only `keys` taken
    from `fitted`; KeyError when a key was not fitted (too few labelled examples of it)."""
    missing = sorted(set(keys) - set(fitted))
    if missing:
        raise KeyError(f"{missing} not fitted: fewer than {MIN_PER_PATTERN} labelled examples (fitted: {sorted(fitted)})")
    return over_head_temperatures({k: fitted[k] for k in keys}, meta)


def head_temperatures(meta: dict) -> dict[str, float]:
    """A head's temperatures (meta's pattern and branch ones, as `split` stores them) under one key each."""
    return {**(meta.get("pattern_temperatures") or {}),
            **{BRANCH + k: v for k, v in (meta.get("branch_temperatures") or {}).items()}}


def over_head_temperatures(fitted: dict[str, float], meta: dict) -> dict[str, float]:
    """`fitted` over the head's temperatures (meta): a temperature not fitted keeps the head's value. Before
    2026-12-07 pipeline.calibrate without --refit wrote only what it fitted, so 14 face rows emptied the shipped
    head of all 15 of its temperatures (a pattern needs MIN_PER_PATTERN labelled rows to be fitted)."""
    return {**head_temperatures(meta), **fitted}


def doubtful_fits(patterns: Sequence[str], labels: np.ndarray, fitted: dict[str, float]) -> dict[str, str]:
    """Per fitted temperature that says little, why: its labelled rows cover fewer than MIN_CLASSES labels (60
    neutral faces fit 0.799: the label mix, not calibration), or it sits at the bound of fit_temperature's search
    (rows all wrong ran to 20.09). Before 2026-12-07 such temperatures were written without a word."""
    patterns, labels = np.asarray(patterns), np.asarray(labels)
    out = {}
    for key, t in fitted.items():
        y = labels[(patterns == key) & (labels >= 0)]
        why = []
        if (classes := len(set(y.tolist()))) < MIN_CLASSES:
            why.append(f"its {len(y)} labelled rows cover {classes} label{'' if classes == 1 else 's'}")
        if abs(np.log(t)) >= LOG_T_BOUND - 0.01:
            low, high = np.exp(-LOG_T_BOUND), np.exp(LOG_T_BOUND)
            why.append(f"T {t:.3f} sits at the bound of the search ({low:.3f}-{high:.2f})")
        if why:
            out[key] = "; ".join(why)
    return out


def pairing_kinds(specs: Sequence[str]) -> set[str]:
    """The kinds of example (training.loop.source_of: text, face, scene, audio, spoken) that --data specs give
    label_paired, read from their kinds alone (before any encoder loads); a kind of several modalities ('mixed')
    is none."""
    from training.features import kind_modalities
    named = {("text",): "text", ("face",): "face", ("vision", "face"): "scene", ("audio",): "audio",
             ("text", "audio"): "spoken"}
    return {named[m] for s in specs if (m := kind_modalities(s.split(":", 1)[0])) in named}


def training_data_overlap(meta: dict, specs: Sequence[str], where: str) -> tuple[int, int]:
    """Warns in one line (training.datasets.specs_overlap) where `specs` hold rows byte-identical to, or speakers of,
    the head's training data (model.checkpoints.seen_data: its own and what trained the parts it carries), and in one
    more where a line set names a file it trained on (lines carry no media to compare): temperatures fitted there read
    the head as surer than it is on unseen data. Training specs whose file is not on this machine are passed over
    (a path relative to the repository is found from it, training.evaluation.local_spec). Reads every set once.
    Before 2026-12-07 nothing was said (and the check's first version read meta['training_data'] alone: the shipped
    face classifier's FER+ and IMFDB rows, its text layers' EmoryNLP and GoEmotions lines passed as unseen).
    (rows, speakers) in both; (0, 0) where nothing is known."""
    from model.checkpoints import seen_data
    from training.datasets import DataError, specs_overlap
    from training.evaluation import local_spec
    trained = list(dict.fromkeys(local for s in seen_data(meta) if (local := local_spec(s)) is not None))
    if not trained:
        return 0, 0
    same_lines = [s for s in specs if any(_same_lines(s, t) for t in trained)]
    if same_lines:
        log.warning("%s: --data %s: lines of the file the head was trained on: they score as unseen, so the fitted "
                    "temperature comes out too low (the head reads surer than it is)", where, ", ".join(same_lines))
    try:
        return specs_overlap(trained, specs, where)
    except (DataError, OSError) as e:  # a training file changed since: the check is a warning, not the command's
        log.info("%s: not compared with the head's training data: %s", where, e)
        return 0, 0


def _same_lines(spec: str, trained: str) -> bool:
    """Whether the line set `spec` reads lines of the same file as the training spec `trained` (their seeded
    #train / #dev parts of one file are apart)."""
    from training.datasets import spec_parts
    from training.features import kind_modalities
    (kind, path, part, _), (t_kind, t_path, t_part, _) = spec_parts(spec), spec_parts(trained)
    if kind_modalities(kind) != ("text",) or kind_modalities(t_kind) != ("text",):
        return False
    return path.resolve() == t_path.resolve() and {part, t_part} != {"train", "dev"}


def fit_pattern_temperatures(logits: np.ndarray, patterns: Sequence[str], labels: np.ndarray,
                             min_n: int = MIN_PER_PATTERN, weights: np.ndarray | None = None) -> dict[str, float]:
    """pattern -> T for each pattern with at least min_n labelled examples (labels < 0 are unlabelled); weights:
    one per row (set_weights), None = every row the same."""
    patterns = np.asarray(patterns)
    out = {}
    for p in sorted(set(patterns.tolist())):
        idx = np.flatnonzero((patterns == p) & (labels >= 0))
        if len(idx) >= min_n:
            out[p] = float(fit_temperature(logits[idx], labels[idx], None if weights is None else weights[idx]))
    return out


def set_weights(sets: Sequence[tuple[np.ndarray, Sequence[str], np.ndarray]]) -> np.ndarray:
    """A weight per row of the sets pooled in order: 1 / (labelled rows of its pattern in its set), so each set counts
    once in a pattern's fit, however many rows it has. Pooled row by row, FER+'s 3,325 web faces (crowd majority
    labels, cleaner than a film's) set the face temperature, and film faces read over-confident."""
    out = []
    for _, patterns, labels in sets:
        patterns, labels = np.asarray(patterns), np.asarray(labels)
        w = np.zeros(len(patterns))
        for p in set(patterns.tolist()):
            rows = (patterns == p) & (labels >= 0)
            w[rows] = 1.0 / max(1, int(rows.sum()))
        out.append(w)
    return np.concatenate(out) if out else np.zeros(0)


def probs_with(logits: np.ndarray, patterns: Sequence[str], temps: dict[str, float], default_t: float) -> np.ndarray:
    """softmax(logits / T) with each row's pattern temperature (branch rows default to 1: the classifier's own)."""
    t = np.array([temps.get(p, 1.0 if p.startswith(BRANCH) else default_t) for p in patterns], np.float64)[:, None]
    return softmax(logits.astype(np.float64) / t, axis=1)


def cross_fitted(sets: dict[str, tuple[np.ndarray, list[str], np.ndarray]], default_t: float,
                 folds: int = 2, seed: int = 0, equal_sets: bool = False,
                 finish: Callable[[dict], dict] | None = None) -> dict[str, float]:
    """Per set, the ECE of pattern temperatures fitted on the other folds of every set (pooled; equal_sets: each
    set weighing the same, set_weights), applied to this fold: calibration measured on examples the temperatures
    never saw. `finish`: what the written head keeps of each fold's fit (pipeline.calibrate: the temperatures it
    does not refit stay the head's, and a pattern a fold has too few rows of keeps its whole-data temperature); before
    2026-12-06 every pattern was refitted per fold, so `--refit` reported the ECE of a head it did not write, and
    before 2026-12-07 such a fold used T 1 without --refit."""
    rng = np.random.default_rng(seed)
    assign = {name: rng.integers(0, folds, len(v[0])) for name, v in sets.items()}
    probs = {name: np.zeros((len(v[0]), v[0].shape[1])) for name, v in sets.items()}
    for f in range(folds):
        train = [(v[0][assign[n] != f], np.asarray(v[1])[assign[n] != f].tolist(), v[2][assign[n] != f])
                 for n, v in sets.items()]
        temps = fit_pattern_temperatures(np.concatenate([t[0] for t in train]), sum((t[1] for t in train), []),
                                         np.concatenate([t[2] for t in train]),
                                         weights=set_weights(train) if equal_sets else None)
        temps = finish(temps) if finish else temps
        for n, v in sets.items():
            held = assign[n] == f
            probs[n][held] = probs_with(v[0][held], np.asarray(v[1])[held].tolist(), temps, default_t)
    out = {}
    for n, v in sets.items():
        ok = v[2] >= 0
        out[n] = expected_calibration_error(probs[n][ok], v[2][ok])
    return out
