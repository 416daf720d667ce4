"""Evaluate a BVPEC head on labelled data.

    python -m pipeline.evaluate --data meld:MELD/dev_sent_emo.csv [--head CKPT] [--json OUT] [--cv K]

A thin CLI over training.evaluation. Prints one table per data spec (accuracy, weighted/macro F1, ECE of the
top label, per-class precision/recall/F1/support, the confusion matrix in EMOTIONS order, Pearson r of
valence/arousal where targets exist) and writes them as JSON. Features come from the one featurizer with the
encoders the head was trained with (model.encoders.create_encoders: its tuned text layers and face weights).
--cv K adds a K-fold estimate (folds keep a dialogue / film together): with --cv_mode score the head's metrics
on each fold (the spread of the estimate), with --cv_mode train a fresh head of the same configuration
trained on the other K-1 folds and scored on the held-out one (how well this data can be learnt). The folds are cut
over the labelled rows. A set's rows the head was trained on, or had its temperatures fitted on, are named in a warning
and in its JSON (`overlaps_training`, `calibrated_on`: training.evaluation.overlaps_with_head).
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from model.checkpoints import DEFAULT_HEAD, learnt_modalities, load_head, model_version
from model.encoders import EncoderSpec, create_encoders
from model.encoders.openvino_runtime import RUNTIMES
from model.featurize import parse_modalities
from model.precision import PRECISIONS, bound_kernel_caches
from pipeline.arg_types import (add_text_languages, cv_folds, head_path_arg, io_path, modalities_arg, positive_int,
                                output_problem, stops_on_data_errors)
from training.datasets import DataError, data_spec
from training.evaluation import RowsRead, evaluate_spec, folds_problem, overlaps_with_head
from training.metrics import format_table

log = logging.getLogger("pipeline.evaluate")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", type=data_spec, required=True, help="KIND:PATH[@N][#train|#dev] (repeatable)")
    p.add_argument("--head", default=None, type=head_path_arg,
                   help=f"head checkpoint (default: the shipped {DEFAULT_HEAD.name})")
    p.add_argument("--json", default=None, type=io_path, help="write the metrics here as JSON")
    p.add_argument("--cv", type=cv_folds, default=0, help="K-fold estimate with K folds (K >= 2; 0: none)")
    p.add_argument("--cv_mode", choices=("score", "train"), default="score")
    p.add_argument("--cv_epochs", type=positive_int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--modalities", default=None, type=modalities_arg,
                   help="comma list of text, vision, face, audio: the head sees only these (default: all)")
    add_text_languages(p)
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="encoders' number format, as the pipeline's --precision (auto: bf16 where the CPU has it)")
    p.add_argument("--vision_runtime", choices=RUNTIMES, default="auto",
                   help="where the ViT runs, as the pipeline's --vision_runtime (auto: OpenVINO on CPU)")
    p.add_argument("--text_runtime", choices=RUNTIMES, default="auto",
                   help="where the text encoder runs, as the pipeline's --text_runtime (auto: OpenVINO on CPU)")
    return p


def number_format_problems(args: argparse.Namespace) -> list[str]:
    """What the encoders refuse of --precision, --vision_runtime and --text_runtime on --device, for the text and
    vision encoders the --data kinds and --modalities build (model.number_formats, as pipeline.run's launch asks it),
    before any data is read: before 2026-12-06 it was their traceback once the data had loaded."""
    from model.number_formats import number_format_problems as problems
    from training.features import kind_modalities
    built = {m for s in args.data for m in kind_modalities(s.split(":", 1)[0])} & set(parse_modalities(args.modalities))
    return problems(args.device, args.precision, {e: getattr(args, f"{e}_runtime") for e in ("text", "vision")
                                                  if e in built})


def unlearnt_problems(args: argparse.Namespace) -> list[str]:
    """--modalities asking for a modality the --head did not learn, and a --data kind that carries only such
    modalities: refused before any data is read (model.checkpoints)."""
    from model.checkpoints import unlearnt_data_problem, unlearnt_modalities_problem
    from training.features import kind_modalities
    problems = [unlearnt_modalities_problem(args.head, parse_modalities(args.modalities)),
                unlearnt_data_problem(args.head, {s: kind_modalities(s.split(":", 1)[0]) for s in args.data})]
    # a set none of whose modalities --modalities lets through is scored from nothing: the head's prior, read as a
    # result (MELD under --modalities face: accuracy 0.45, every row neutral; before 2026-12-07, found in review)
    chosen = set(parse_modalities(args.modalities))
    problems += [f"--data {s}: its {'/'.join(m)} evidence is left out by --modalities {args.modalities}: every row "
                 "would be scored from no evidence" for s in args.data
                 if not chosen & set(m := kind_modalities(s.split(":", 1)[0]))]
    return [p for p in problems if p]


def refuse_too_many_folds(args: argparse.Namespace, rows: RowsRead) -> None:
    """--cv K above the groups of a --data set's labelled rows: a DataError (one line, exit status 1) before any
    feature is made; before 2026-12-07 sklearn's traceback once every set had been scored, and no JSON."""
    for spec in args.data if args.cv else ():
        if problem := folds_problem(spec, rows(spec).groups, args.cv):
            raise DataError(problem)


def say_what_the_head_has_seen(spec: str, seen: dict) -> None:
    """One warning line for each of `spec`'s overlaps_with_head: rows (or voices) the head was trained on, rows its
    temperatures were fitted on. Before 2026-12-07 such a set was scored as any other without a word (a slice of MELD
    train read 0.731 weighted F1 against dev's 0.552)."""
    if trained := seen.get("overlaps_training"):
        parts = ([f"{trained['rows']} of {trained['of']} labelled rows are rows the head was trained on"]
                 if trained["rows"] else [])
        if trained["speakers"]:
            parts.append(f"{trained['speakers']} of its speakers are voices the head was trained on")
        log.warning("%s: %s (%s): its scores here read high, not what the head does on data it did not learn", spec,
                    " and ".join(parts), ", ".join(trained["sets"]))
    if fitted := seen.get("calibrated_on"):
        log.warning("%s: %d of %d labelled rows are rows the head's temperatures were fitted on (%s): its ECE here is "
                    "in-sample (pipeline.calibrate's cross-fitted ECE is the estimate for unseen data)", spec,
                    fitted["rows"], fitted["of"], ", ".join(fitted["sets"]))


def write_report(path: str | None, report: dict) -> None:
    """--json: the report as it stands, written after each set, so a set that fails later keeps those scored
    (before 2026-12-07 it was written once all were, and a failure lost them all)."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(report, indent=2))


@stops_on_data_errors("pipeline.evaluate")
def main(argv: list[str] | None = None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.modalities is None:  # the head's own (all four for the shipped head): a head that learnt no audio
        args.modalities = ",".join(learnt_modalities(args.head))  # evaluates its lines without being told
    problems = number_format_problems(args) + unlearnt_problems(args)
    if problem := output_problem(args.json, args.data + [str(args.head or DEFAULT_HEAD)]):
        problems.append(f"--json {problem}")
    if problems:
        parser.error("; ".join(problems))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    bound_kernel_caches()  # memory flat over thousands of text batches of other shapes
    model, meta = load_head(args.head)
    rows = RowsRead()  # each set read once, for the folds' groups and for what the head has seen of it
    refuse_too_many_folds(args, rows)
    seen = {spec: overlaps_with_head(spec, meta, rows) for spec in args.data}
    for spec in args.data:
        say_what_the_head_has_seen(spec, seen[spec])
    enc = create_encoders(EncoderSpec(head=args.head, device=args.device, precision=args.precision,
                                      vision_runtime=args.vision_runtime, text_runtime=args.text_runtime))
    report = {"head": str(args.head or DEFAULT_HEAD), "variant": model.config.variant, "results": {}}
    try:
        report["model_version"] = model_version(args.head, enc.version, parse_modalities(args.modalities))
    except OSError:
        pass
    for spec in args.data:
        m = evaluate_spec(spec, model, enc, args.cv, args.cv_mode, args.seed, args.cv_epochs,
                          modalities=parse_modalities(args.modalities), text_languages=args.text_languages)
        report["results"][spec] = {**m, **seen[spec]}
        print(format_table(spec, m))
        if "cv" in m:
            print(f"  {m['cv']['k']}-fold ({m['cv']['mode']}): " + "  ".join(
                f"{k}={v['mean']:.4f}±{v['std']:.4f} [95% {v['ci95'][0]:.4f}, {v['ci95'][1]:.4f}]"
                for k, v in m["cv"].items() if isinstance(v, dict)))
        print()
        write_report(args.json, report)
    return report


if __name__ == "__main__":
    main()
