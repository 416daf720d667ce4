"""Fit a temperature per evidence pattern on dev data and write the head with them (training.calibration).

    python -m pipeline.calibrate --head model/weights/bvpec_default.pt --output head_calibrated.pt \
        --data meld:$D/text/meld/dev_sent_emo.csv --data faces:$D/faces/ferplus/dev.parquet ... [--json out.json]

Takes the same --data specs as pipeline.evaluate (dev splits), reads their cached features through the head's
own encoders, and prints per set the ECE with the head's single temperature, with the pattern temperatures
fitted on all of them (what the written head uses: in-sample) and cross-fitted (fitted on half of every set,
measured on the other half: the estimate for unseen data). Clips one modality's own classifier labels (a lone
face, scene or voice: model.predict.branch_of) are calibrated apart, as 'branch:<face|scene|speech>'. A
temperature does not move a lone classifier's or the head's label; a branch temperature does move the product of
several classifiers (a softer face weighs less beside the voice), so it can change a fused label. The written head
is the input head with the fitted temperatures in meta['pattern_temperatures'] and meta['branch_temperatures']: a
temperature not fitted (fewer than 50 labelled rows of its pattern) keeps the input head's value, and the printout
says which were fitted and which kept (before 2026-12-07 only the fitted ones were written). A fit on rows of fewer
than three labels, or one at the bound of the search, is warned of; so are --data rows the head has seen
(model.checkpoints.seen_data: its training data and what trained the parts it carries, where the files are on this
machine).

--speech_oof NPZ adds the speech classifier's speaker-out-of-fold logits on its twenty train speakers
(`python -m training.speech_classifier --oof NPZ`) to the speech branch's fit: dev has four speakers, easier
than most (RAVDESS dev accuracy 0.725 against 0.58 out of fold), and a temperature fitted on them alone leaves
the speech evidence over-confident on unseen speakers. The clips table's evidence columns carry the branch
temperatures too (transforms.fuse), so the evidence, the support and the grounded flag follow this calibration.

--pairs N adds N label-paired dev clips made of the --data sets (a line, a face, a photo, a voice of one label:
training.loop.label_paired) for the patterns the head labels as referee: a clip whose classifiers' product no
modality backs. Those clips are few in any one dev set, and the head is over-sure on them. Only the referee
patterns are taken from the pairs. The products' own fit would follow the pairs' label mix (training.md). It needs
--data sets of two kinds or more (refused in one line otherwise); pairs none of which the head referees add no row.

--refit KEY (repeatable: a pattern such as `text`, or `branch:face|scene|speech`) fits only those temperatures and
keeps the head's others: after retraining one branch classifier, its temperature is refitted on that branch's
dev data alone (the other sets, and the speech out-of-fold logits, are not needed again).
--temperatures_from HEAD takes the temperatures --refit keeps from another head: a head retrained on new text
layers refits its own patterns and keeps the shipped head's branch temperatures (its branch classifiers did not
change; the speech one was fitted out of fold). Refused in one line, naming it, where a kept branch temperature belongs
to another classifier than --head carries, or a kept pattern temperature to a head of other weights
(training.calibration.foreign_temperatures; copied before 2026-12-06).
--weigh_sets equally makes each --data set count once in a temperature's fit, however many rows it has (by default
every row counts once). The shipped face temperature is fitted so on four face sets: pooled by rows, FER+'s 3,325
web faces, whose crowd-majority labels are cleaner than any film's, set it, and film faces read over-confident.
"""
from __future__ import annotations

import argparse
import collections
import json
import logging

import numpy as np
import torch

from model.checkpoints import DEFAULT_HEAD, load_head, load_head_meta, save_head, unlearnt_data_problem
from model.encoders import EncoderSpec, create_encoders
from model.featurize import Featurizer
from model.precision import bound_kernel_caches
from pipeline.arg_types import add_text_languages, head_path_arg, io_path, output_problem, stops_on_data_errors
from training.calibration import (BRANCH, MIN_PER_PATTERN, cross_fitted, doubtful_fits, fit_pattern_temperatures,
                                  foreign_temperatures, logits_and_patterns, over_head_temperatures, pairing_kinds,
                                  probs_with, referee_rows, refit_only, set_weights, speech_out_of_fold, split,
                                  training_data_overlap)
from training.datasets import data_spec
from training.evaluation import refit_records
from training.features import kind_modalities
from training.loop import label_paired, load_set, split_sources
from training.metrics import expected_calibration_error

log = logging.getLogger("pipeline.calibrate")


@stops_on_data_errors("pipeline.calibrate")
def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m pipeline.calibrate", description=__doc__.split("\n")[0])
    p.add_argument("--head", default=None, type=head_path_arg,
                   help=f"head checkpoint (default: the shipped {DEFAULT_HEAD.name})")
    p.add_argument("--data", action="append", type=data_spec, required=True, help="KIND:PATH[#dev] as pipeline.evaluate (repeatable)")
    p.add_argument("--output", required=True, type=io_path, help="where the calibrated head is written")
    p.add_argument("--speech_oof", default=None,
                   help="speaker-out-of-fold speech logits (training.speech_classifier --oof) for the speech branch")
    p.add_argument("--pairs", type=int, default=0,
                   help="label-paired dev clips for the patterns the head labels as referee (products no modality backs)")
    p.add_argument("--pairs_seed", type=int, default=1)
    p.add_argument("--refit", action="append", default=None,
                   help="fit only this pattern or branch:<name> temperature (repeatable); the head's others stay")
    p.add_argument("--temperatures_from", default=None, type=head_path_arg,
                   help="with --refit: keep the other temperatures of this head, not of --head's")
    p.add_argument("--weigh_sets", choices=("by_rows", "equally"), default="by_rows",
                   help="equally: each --data set counts once in a temperature's fit, however many rows it has")
    add_text_languages(p)
    p.add_argument("--json", default=None, type=io_path)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    # (the head may be calibrated in place, --output over --head; its report over it, or over the head written, not)
    for flag, path, inputs in (("--output", args.output, args.data),
                               ("--json", args.json, args.data + [str(args.head or DEFAULT_HEAD), args.output])):
        if problem := output_problem(path, inputs):
            p.error(f"{flag} {problem}")
    if args.temperatures_from and not args.refit:
        p.error("--temperatures_from needs --refit (the temperatures fitted here)")
    # both checked before any model loads or feature is made (one line, exit status 1)
    if args.temperatures_from and (problem := foreign_temperatures(args.head, args.temperatures_from, args.refit)):
        raise SystemExit(f"pipeline.calibrate: --temperatures_from {args.temperatures_from}: {problem}")
    # a set only of modalities the head never learnt would fit temperatures no run with it uses (runs leave them out)
    if problem := unlearnt_data_problem(args.head, {s: kind_modalities(s.split(":", 1)[0]) for s in args.data}):
        raise SystemExit(f"pipeline.calibrate: {problem}")
    if problem := pairs_problem(args.pairs, args.data):
        raise SystemExit(f"pipeline.calibrate: {problem}")
    oof_rows = speech_out_of_fold(args.speech_oof, head=args.head) if args.speech_oof else None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # rows the head learnt read as unseen: its fitted temperatures would be too low (a warning, as pipeline.train's)
    training_data_overlap(load_head_meta(args.head), args.data, "pipeline.calibrate")
    torch.set_num_threads(args.threads)
    bound_kernel_caches()  # memory flat over thousands of text batches of other shapes
    model, meta = load_head(args.head)
    enc = create_encoders(EncoderSpec(head=args.head))
    featurizer = Featurizer(enc)
    sets, labelled = {}, []
    for spec in args.data:
        s = load_set(spec, enc, text_languages=args.text_languages)
        logits, patterns = logits_and_patterns(model, s.items, [featurizer.evidence(f) for f in s.items])
        sets[spec] = (logits, patterns, s.labels)
        labelled.append(s.labelled())
    if args.pairs:
        pairs = label_paired(split_sources(labelled), args.pairs, args.pairs_seed, name="pairs:dev")
        rows = referee_rows(
            *logits_and_patterns(model, pairs.items, [featurizer.evidence(f) for f in pairs.items]), pairs.labels)
        if len(rows[0]):
            sets[f"pairs:dev@{args.pairs}"] = rows
        else:  # before 2026-12-07 the set stayed, with a NaN ECE (and invalid JSON) or torch.cat's traceback
            log.warning("--pairs %d: %d label-paired clips drawn, none of them one the head referees: no pairs row",
                        args.pairs, len(pairs))
    if args.speech_oof:
        sets[f"speech-oof:{args.speech_oof}"] = oof_rows
    default_t = float(model.temperature)
    equal_sets = args.weigh_sets == "equally"
    others = (load_head_meta(args.temperatures_from) if args.temperatures_from else meta) if args.refit else None

    def kept(fitted: dict) -> dict:
        """What the written head keeps of a fit (the cross-fitted ECE measures that head, fold by fold): the refitted
        temperatures over the others' (--refit), else every fitted one over the head's (a pattern with too few
        rows to fit keeps the head's value)."""
        fitted = dict(fitted)
        if getattr(model, "text_classifier", None) is None and "text" in model.pattern_temperatures:
            # such a head reads a line's evidence itself, under its `text` temperature (model.predict.line_evidence):
            # the branch:text temperature is fitted on top of that, so it stays
            fitted.setdefault("text", model.pattern_temperatures["text"])
        return refit_only(fitted, others, args.refit) if args.refit else over_head_temperatures(fitted, meta)

    all_patterns, all_labels = sum((v[1] for v in sets.values()), []), np.concatenate([v[2] for v in sets.values()])
    raw = fit_pattern_temperatures(np.concatenate([v[0] for v in sets.values()]), all_patterns, all_labels,
                                   weights=set_weights(list(sets.values())) if equal_sets else None)
    try:
        temps = kept(raw)
    except KeyError as e:
        raise SystemExit(f"--refit: {e.args[0]}") from None
    fitted_keys = [k for k in temps if k in raw and (not args.refit or k in args.refit)]
    for key, why in doubtful_fits(all_patterns, all_labels, {k: temps[k] for k in fitted_keys}).items():
        log.warning("%s temperature %.3f fitted on data that says little of calibration: %s", key, temps[key], why)
    # a fold too small to fit a pattern keeps its whole-data temperature, as the written head does (before
    # 2026-12-07, without --refit, such a fold used T 1 and the column described no head written)
    held_out = cross_fitted(sets, default_t, equal_sets=equal_sets, finish=lambda f: kept({**temps, **f}))
    kept_from = (args.temperatures_from or "--head") if args.refit else "--head"
    report = {"head": str(args.head or DEFAULT_HEAD), "temperature": default_t, "pattern_temperatures": temps,
              "fitted": fitted_keys, "kept_from": kept_from, "sets": {}}
    print_temperatures(default_t, temps, fitted_keys, kept_from)
    # a pattern of the data with too few labelled rows to fit: said, as its clips keep another temperature (a studio's
    # 40 dev photos left branch:scene at the classifier's own without a word; found in review)
    labelled = collections.Counter(q for q, y in zip(all_patterns, all_labels) if y >= 0)
    few = {q: n for q, n in sorted(labelled.items()) if q not in raw and n < MIN_PER_PATTERN}
    if few:
        print(f"not fitted (fewer than {MIN_PER_PATTERN} labelled rows): "
              + ", ".join(f"{q} ({n}: " + ("the input head's kept" if q in temps else "its classifier's own"
                                           if q.startswith(BRANCH) else "the single temperature") + ")"
                          for q, n in few.items()))
    print("| dev set | n (labelled rows) | patterns (labelled rows) | ECE, one T (branches: their own) "
          "| ECE, pattern T (in-sample) | ECE, pattern T (cross-fitted) |")
    print("|---|---|---|---|---|---|")
    for spec, (logits, patterns, labels) in sets.items():
        report["sets"][spec] = set_row(logits, patterns, labels, temps, default_t, held_out[spec])
        print(table_row(spec, report["sets"][spec]))
    meta = dict(meta)
    meta["pattern_temperatures"], meta["branch_temperatures"] = split(temps)
    data = list(args.data) + ([f"speech-oof:{args.speech_oof}"] if args.speech_oof else []) + (
        [f"pairs:dev@{args.pairs} seed {args.pairs_seed}"] if args.pairs else [])
    if args.refit:  # the record of the earlier fits stays, with what was refitted on what
        refit = {"keys": list(args.refit), "data": data, "weigh_sets": args.weigh_sets, "cross_fitted_ece": held_out,
                 "others_from": args.temperatures_from or "--head"}
        meta["pattern_calibration"] = with_refit(meta.get("pattern_calibration") or {}, refit)
    else:
        meta["pattern_calibration"] = {"data": data, "weigh_sets": args.weigh_sets, "cross_fitted_ece": held_out,
                                       "fitted": fitted_keys}
    save_head(args.output, model, meta)
    if args.json:
        with open(args.json, "w") as f:  # strict JSON: before 2026-12-07 a set without rows wrote a bare NaN
            json.dump(report, f, indent=2, allow_nan=False)
    return report


def with_refit(previous: dict, refit: dict) -> dict:
    """A head's calibration record with one more --refit: every refit in 'refits', oldest first, and 'refit' the
    latest (as readers of a head written before read it). Before 2026-12-07 'refit' alone was kept, so a second
    --refit dropped the record of the first, and pipeline.evaluate no longer knew its rows were fitted on."""
    return {**previous, "refits": [*refit_records(previous), refit], "refit": refit}


def pairs_problem(pairs: int, specs: list[str]) -> str | None:
    """Why --pairs cannot make label-paired clips of the --data sets (one line, before any encoder loads), None where
    it can: they pair examples of two kinds or more (a line, a face, a photo, a voice). Before 2026-12-07 one kind
    ended in torch.cat's traceback."""
    kinds = pairing_kinds(specs)
    if pairs <= 0 or len(kinds) >= 2:
        return None
    return (f"--pairs {pairs} pairs examples of two kinds of --data set or more (a line, a face, a photo, a voice); "
            f"these give {' and '.join(sorted(kinds)) or 'none'} alone")


def print_temperatures(default_t: float, temps: dict, fitted: list[str], kept_from: str) -> None:
    """The temperatures the written head carries: which were fitted here and which kept (from --head, or from
    --temperatures_from), so that a fit on too few rows does not read as a fit."""
    kept = [k for k in temps if k not in fitted]
    print(f"single temperature {default_t:.3f}; fitted here: "
          + (", ".join(f"{k} {temps[k]:.3f}" for k in fitted) or "none"))
    source = "the input head" if kept_from == "--head" else kept_from
    print(f"kept from {source}: " + (", ".join(f"{k} {temps[k]:.3f}" for k in kept) or "none"))


def set_row(logits: np.ndarray, patterns: list[str], labels: np.ndarray, temps: dict, default_t: float,
            cross_fitted_ece: float) -> dict:
    """One set's report: n and the patterns count its labelled rows (what the fit and the ECEs read; before
    2026-12-07 the patterns counted every row), `rows` every row."""
    ok = labels >= 0
    single = expected_calibration_error(probs_with(logits, patterns, {}, default_t)[ok], labels[ok])
    fitted = expected_calibration_error(probs_with(logits, patterns, temps, default_t)[ok], labels[ok])
    labelled = [q for q, y in zip(patterns, labels) if y >= 0]
    return {"n": int(ok.sum()), "rows": len(labels), "patterns": {q: labelled.count(q) for q in sorted(set(labelled))},
            "ece_single": finite(single), "ece_pattern_in_sample": finite(fitted),
            "ece_pattern_cross_fitted": finite(cross_fitted_ece)}


def finite(x: float) -> float | None:
    """x, or None where it is not a number (JSON has no NaN)."""
    return float(x) if np.isfinite(x) else None


def table_row(spec: str, row: dict) -> str:
    """A set's line of the printed table (set_row): n, with every row where some are unlabelled."""
    n = f"{row['n']}" + (f" (of {row['rows']} rows)" if row["rows"] != row["n"] else "")
    shown = ", ".join(f"{q or 'none'} {k}" for q, k in row["patterns"].items())
    eces = " | ".join("-" if row[k] is None else f"{row[k]:.3f}"
                      for k in ("ece_single", "ece_pattern_in_sample", "ece_pattern_cross_fitted"))
    return f"| {spec} | {n} | {shown} | {eces} |"


if __name__ == "__main__":
    main()
