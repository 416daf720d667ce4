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
is the input head plus meta['pattern_temperatures'] and meta['branch_temperatures'].

--speech_oof NPZ adds the speech classifier's speaker-out-of-fold logits on its twenty train speakers
(`python -m training.speech_classifier --oof NPZ`) to the speech branch's fit: dev has four speakers, easier
than most (RAVDESS dev accuracy 0.725 against 0.58 out of fold), and a temperature fitted on them alone leaves
the speech evidence over-confident on unseen speakers. The clips table's evidence columns carry the branch
temperatures too (transforms.fuse), so the evidence, the support and the grounded flag follow this calibration.

--pairs N adds N label-paired dev clips made of the --data sets (a line, a face, a photo, a voice of one label:
training.loop.label_paired) for the patterns the head labels as referee: a clip whose classifiers' product no
modality backs. Those clips are few in any one dev set, and the head is over-sure on them. Only the referee
patterns are taken from the pairs. The products' own fit would follow the pairs' label mix (training.md).

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
import json
import logging

import numpy as np
import torch

from model.checkpoints import DEFAULT_HEAD, load_head, load_head_meta, save_head, unlearnt_data_problem
from model.encoders import EncoderSpec, create_encoders
from model.featurize import Featurizer
from pipeline.arg_types import add_text_languages, head_path_arg, io_path, stops_on_data_errors
from training.calibration import (cross_fitted, fit_pattern_temperatures, foreign_temperatures, logits_and_patterns,
                                  probs_with, referee_rows, refit_only, set_weights, speech_out_of_fold, split)
from training.datasets import data_spec
from training.features import kind_modalities
from training.loop import label_paired, load_set, split_sources
from training.metrics import expected_calibration_error


@stops_on_data_errors("pipeline.calibrate")
def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
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
    if args.temperatures_from and not args.refit:
        p.error("--temperatures_from needs --refit (the temperatures fitted here)")
    # both checked before any model loads or feature is made (one line, exit status 1)
    if args.temperatures_from and (problem := foreign_temperatures(args.head, args.temperatures_from, args.refit)):
        raise SystemExit(f"pipeline.calibrate: --temperatures_from {args.temperatures_from}: {problem}")
    # a set only of modalities the head never learnt would fit temperatures no run with it uses (runs leave them out)
    if problem := unlearnt_data_problem(args.head, {s: kind_modalities(s.split(":", 1)[0]) for s in args.data}):
        raise SystemExit(f"pipeline.calibrate: {problem}")
    oof_rows = speech_out_of_fold(args.speech_oof, head=args.head) if args.speech_oof else None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
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
        sets[f"pairs:dev@{args.pairs}"] = referee_rows(
            *logits_and_patterns(model, pairs.items, [featurizer.evidence(f) for f in pairs.items]), pairs.labels)
    if args.speech_oof:
        sets[f"speech-oof:{args.speech_oof}"] = oof_rows
    default_t = float(model.temperature)
    equal_sets = args.weigh_sets == "equally"
    others = (load_head_meta(args.temperatures_from) if args.temperatures_from else meta) if args.refit else None

    def kept(fitted: dict) -> dict:
        """What the written head keeps of a fit (the cross-fitted ECE measures that head, fold by fold)."""
        fitted = dict(fitted)
        if getattr(model, "text_classifier", None) is None and "text" in model.pattern_temperatures:
            # such a head reads a line's evidence itself, under its `text` temperature (model.predict.line_evidence):
            # the branch:text temperature is fitted on top of that, so it stays
            fitted.setdefault("text", model.pattern_temperatures["text"])
        return refit_only(fitted, others, args.refit) if args.refit else fitted

    try:
        temps = kept(fit_pattern_temperatures(np.concatenate([v[0] for v in sets.values()]),
                                              sum((v[1] for v in sets.values()), []),
                                              np.concatenate([v[2] for v in sets.values()]),
                                              weights=set_weights(list(sets.values())) if equal_sets else None))
    except KeyError as e:
        raise SystemExit(f"--refit: {e.args[0]}") from None
    # a fold too small to fit a refitted pattern keeps its whole-data temperature
    held_out = cross_fitted(sets, default_t, equal_sets=equal_sets,
                            finish=(lambda f: kept({**temps, **f})) if args.refit else kept)
    report = {"head": str(args.head or DEFAULT_HEAD), "temperature": default_t, "pattern_temperatures": temps,
              "sets": {}}
    print(f"single temperature {default_t:.3f}; per pattern: "
          + ", ".join(f"{k} {v:.3f}" for k, v in temps.items()))
    print("| dev set | n | patterns | ECE, one T (branches: their own) | ECE, pattern T (in-sample) | ECE, pattern T (cross-fitted) |")
    print("|---|---|---|---|---|---|")
    for spec, (logits, patterns, labels) in sets.items():
        ok = labels >= 0
        single = expected_calibration_error(probs_with(logits, patterns, {}, default_t)[ok], labels[ok])
        fitted = expected_calibration_error(probs_with(logits, patterns, temps, default_t)[ok], labels[ok])
        counts = {q: patterns.count(q) for q in sorted(set(patterns))}
        report["sets"][spec] = {"n": int(ok.sum()), "patterns": counts, "ece_single": single,
                                "ece_pattern_in_sample": fitted, "ece_pattern_cross_fitted": held_out[spec]}
        shown = ", ".join(f"{q or 'none'} {n}" for q, n in counts.items())
        print(f"| {spec} | {int(ok.sum())} | {shown} | "
              f"{single:.3f} | {fitted:.3f} | {held_out[spec]:.3f} |")
    meta = dict(meta)
    meta["pattern_temperatures"], meta["branch_temperatures"] = split(temps)
    data = list(args.data) + ([f"speech-oof:{args.speech_oof}"] if args.speech_oof else []) + (
        [f"pairs:dev@{args.pairs} seed {args.pairs_seed}"] if args.pairs else [])
    if args.refit:  # the record of the earlier fit stays, with what was refitted on what
        previous = dict(meta.get("pattern_calibration", {}))
        meta["pattern_calibration"] = {**previous, "refit": {"keys": list(args.refit), "data": data,
                                                             "weigh_sets": args.weigh_sets,
                                                             "cross_fitted_ece": held_out,
                                                             "others_from": args.temperatures_from or "--head"}}
    else:
        meta["pattern_calibration"] = {"data": data, "weigh_sets": args.weigh_sets, "cross_fitted_ece": held_out}
    save_head(args.output, model, meta)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == "__main__":
    main()
