"""Readers for labelled data: each returns a list of `Example`s in the project's EMOTIONS labels.

Specs are `KIND:PATH`: meld:CSV, goemotions:TSV, emorynlp:CSV, imagefolder:DIR, clips:CSV|JSONL, and the
Parquet sets of ../shared/data (media as encoded bytes beside the labels): faces:PARQUET (face crops: FER+,
IMFDB), frames:PARQUET (whole frames or photos through the full visual path: Emotion6), audio:PARQUET (speech
clips: RAVDESS, EmoDB, TESS), spoken:PARQUET (the same speech clips with the line the speaker says as the clip's
line, where the file name tells it: RAVDESS's two sentences, TESS's "Say the word ..."). Labels are EMOTIONS or
the spellings LABEL_NAMES knows (happy, fearful, calm); a row without a label (null) gets label -1 and is left out
of metrics and training, a row whose label names none of them (contempt) is left out and counted (load_dataset).
No Beam, no pandas.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import itertools
import json
import logging
import math
import os
import random
import re
from collections import Counter
from pathlib import Path
from typing import Callable, Optional, Sequence

from schemas.labels import EMOTIONS
from transforms.dialogue import clean_text, dialogue_text
from transforms.segment import dialogue_context

log = logging.getLogger(__name__)

LABEL_INDEX = {e: i for i, e in enumerate(EMOTIONS)}
NAN = float("nan")
CONTEXT_TURNS = 3  # lines before a line kept as its context, as the pipeline's --context_lines (the encoder truncates further)

MELD_SENTIMENT_VALENCE = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}
# Label names as labelled sets write them -> EMOTIONS (lower case; '_' and '-' read as spaces): FER2013's folders
# (angry, happy, sad), the adjectives of RAVDESS, CREMA-D and TESS (fearful, surprised, disgusted, pleasant
# surprise), nouns (happiness). RAVDESS's calm is neutral, as ../shared/data has it. A name not here (contempt,
# boredom, a number) is no label of ours: the row is left out and counted (load_dataset says which).
LABEL_NAMES = {e: e for e in EMOTIONS} | {
    "angry": "anger", "disgusted": "disgust", "fearful": "fear", "afraid": "fear", "scared": "fear",
    "happy": "joy", "happiness": "joy", "calm": "neutral", "sad": "sadness",
    "surprised": "surprise", "pleasant surprise": "surprise", "ps": "surprise"}
# EmoryNLP uses Willcox's feeling wheel. Its six non-neutral labels are three negative (Mad, Scared, Sad),
# which map directly, and three positive ones. Joyful -> joy. Powerful (confident, proud: high-arousal
# positive) is closest to joy. Peaceful (calm, content: low-arousal positive) has no Ekman counterpart;
# its utterances in the data read as calm statements, and the 7-label set's neutral is the closest low-arousal
# class, so Peaceful -> neutral. Valence follows the wheel's positive/negative halves.
EMORYNLP_LABELS = {"Joyful": "joy", "Powerful": "joy", "Peaceful": "neutral", "Neutral": "neutral",
                   "Mad": "anger", "Scared": "fear", "Sad": "sadness"}
EMORYNLP_VALENCE = {"Joyful": 1.0, "Powerful": 1.0, "Peaceful": 1.0, "Neutral": 0.0,
                    "Mad": -1.0, "Scared": -1.0, "Sad": -1.0}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclasses.dataclass(frozen=True)
class Example:
    label: int  # index into EMOTIONS, -1 = no label
    text: str | None = None
    context: tuple[str, ...] = ()  # the lines said before it, oldest first (transforms.segment.dialogue_context)
    image: str | None = None  # path of a face crop (image folders)
    video: str | None = None  # clip manifests: film path, start_s, end_s
    start_s: float = 0.0
    end_s: float = 0.0
    valence: float = NAN
    arousal: float = NAN
    group: str = ""  # rows of one group (a dialogue, a film, an actor) stay in one fold for cross-validation
    source: str = ""
    data: bytes | None = None  # Parquet sets: the encoded image (faces, frames) or audio (audio)
    label_text: str = ""  # the label as the data wrote it, where it names none of EMOTIONS (label -1: left out)
    # the line's language where the data says it (an English set; a clip manifest's `language` column); None: it is
    # identified from the film's lines as a run's subtitles are (training.features.lines_as_read)
    language: str | None = None


SPLIT_SEED = 13  # the seeded stratified split behind the '#train' / '#dev' suffix (FER2013 has no dev split)
DEV_FRACTION = 0.2
SAMPLE_SEED = 7  # the seeded subsample behind the '@N' suffix


def parse_spec(spec: str) -> tuple[str, Path]:
    """KIND:PATH[@N][#train|#dev] -> (KIND, PATH)."""
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in READERS:
        raise ValueError(f"data spec must be KIND:PATH with KIND in {sorted(READERS)}, got {spec!r}")
    path, _, _ = rest.partition("#")
    path = os.path.expanduser(path)  # '~/data/dev.parquet', quoted: the shell did not expand it
    return kind, Path(path.split("@")[0] if "@" in Path(path).name else path)


def spec_parts(spec: str) -> tuple[str, Path, str, Optional[int]]:
    """KIND:PATH[@N][#train|#dev] -> (KIND, PATH, split: '' | 'train' | 'dev', N or None); ValueError says what is
    wrong. The one reading of a spec's suffixes, for load_dataset and the CLIs' check (data_spec)."""
    kind, path = parse_spec(spec)
    rest = spec.partition(":")[2]
    split, name = rest.partition("#")[2], Path(rest.partition("#")[0]).name
    if split not in ("", "train", "dev"):
        raise ValueError(f"split suffix must be #train or #dev, got #{split} in {spec!r}")
    if "@" not in name:
        return kind, path, split, None
    count = name.rsplit("@", 1)[1]
    if not count.isdigit():
        raise ValueError(f"sample suffix must be @N (a row count), got {spec!r}")
    return kind, path, split, int(count)


def data_spec(spec: str) -> str:
    """argparse type of the CLIs' --data / --dev (pipeline.train, evaluate, calibrate): a spec whose kind, path,
    split or sample size is wrong stops the command with its usage and one line, before any model loads."""
    import argparse
    try:
        _, path, _, _ = spec_parts(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file or folder: {path}")
    return spec


class DataError(ValueError):
    """A data spec whose file cannot be read as its kind (a Parquet file given as meld:, a CSV without the columns)."""


def load_dataset(spec: str, left_out: Counter | None = None) -> list[Example]:
    """KIND:PATH, optionally with '@N' (seeded subsample of N rows) and '#train' / '#dev' (seeded
    stratified 80/20 split, SPLIT_SEED): e.g. imagefolder:faces/fer2013#dev, goemotions:train.tsv@8000.
    Rows whose label names none of EMOTIONS are left out with a warning and counted by name in `left_out` (those of
    the '#' part named; '@N' then draws N of the labelled rows); a set
    none of whose labels is ours is a DataError (before 2026-12-06 such rows were dropped without a word, and a
    set labelled 'happy', 'fearful' was scored on its neutral rows alone)."""
    kind, path, split, n = spec_parts(spec)
    try:
        examples = READERS[kind](path)
    except Exception as exc:  # noqa: BLE001 - the readers fail in many ways on a file of another kind
        raise DataError(f"{spec}: cannot be read as {kind} data ({type(exc).__name__}: {exc})") from None
    if split:  # foreign-label rows are split too, so a part counts its own (a set without them splits as before)
        train, dev = stratified_split(examples, DEV_FRACTION, SPLIT_SEED)
        examples = train if split == "train" else dev
    examples = _without_foreign_labels(spec, examples, left_out)
    if n is not None and n < len(examples):
        keep = sorted(random.Random(SAMPLE_SEED).sample(range(len(examples)), n))
        examples = [examples[i] for i in keep]
    return examples


def label_indices(values: Sequence, where: str, allow_null: bool = False) -> list[int]:
    """A branch trainer's label column -> EMOTIONS indices (the spellings LABEL_NAMES knows too; -1 for a null where
    `allow_null`). A label that names none of ours, or a null where none is allowed, is a ValueError naming them:
    those trainers learn from every row (it was a KeyError on the first such label)."""
    out, bad = [], Counter()
    for v in values:
        lab = labelled(v)
        if lab["label"] < 0 and (lab["label_text"] or not allow_null):
            bad[lab["label_text"] or "(no label)"] += 1
        out.append(lab["label"])
    if bad:
        raise ValueError(f"{where}: {sum(bad.values())} rows have no label of the 7 emotions ("
                         + ", ".join(f"{k!r} {n}" for k, n in bad.most_common(8)) + "): give each row one of "
                         + ", ".join(EMOTIONS) + " (or a spelling such as happy, fearful)")
    return out


def _without_foreign_labels(spec: str, examples: list[Example], left_out: Counter | None) -> list[Example]:
    foreign = Counter(e.label_text for e in examples if e.label_text)
    if not foreign:
        return examples
    names = ", ".join(f"{k!r} {v}" for k, v in foreign.most_common(8)) + (" ..." if len(foreign) > 8 else "")
    accepted = ", ".join(EMOTIONS) + " (or " + ", ".join(k for k in LABEL_NAMES if k not in LABEL_INDEX) + ")"
    numbers = " The labels are numbers: write them as names; data sets number their classes in different orders." \
        if all(k.lstrip("-").isdigit() for k in foreign) else ""
    if not any(e.label >= 0 for e in examples):
        raise DataError(f"{spec}: no row has a label this project knows (found {names}); labels must be one of "
                        f"{accepted}.{numbers}")
    log.warning("%s: %d rows left out: their label is none of the 7 emotions (%s); accepted: %s.%s", spec,
                sum(foreign.values()), names, accepted, numbers)
    if left_out is not None:
        left_out.update(foreign)
    return [e for e in examples if not e.label_text]


def fingerprint(spec: str) -> str:
    """Content hash of the data behind a spec (file bytes, or names + sizes of an image folder)."""
    kind, path = parse_spec(spec)
    h = hashlib.sha256(spec.partition(":")[2].replace(str(path), "", 1).encode() + kind.encode())
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                h.update(f"{p.relative_to(path)}:{p.stat().st_size}".encode())
    else:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def labelled(value) -> dict:
    """A label as a data set writes it -> Example's label fields: its index in EMOTIONS (LABEL_NAMES' spellings
    too); -1 with no text where there is none (null, empty); -1 with the text kept where it names none of ours."""
    text = "" if value is None else str(value).strip()
    name = LABEL_NAMES.get(re.sub(r"[\s_-]+", " ", text.lower()))
    if name:
        return {"label": LABEL_INDEX[name], "label_text": ""}
    return {"label": -1, "label_text": text}


def read_meld(path: Path) -> list[Example]:
    """MELD csv: Utterance, Emotion, Sentiment, Dialogue_ID, Utterance_ID. Context = earlier lines of the
    same dialogue; sentiment gives the valence target (-1/0/+1)."""
    rows = _read_csv(path)
    rows.sort(key=lambda r: (int(r["Dialogue_ID"]), int(r["Utterance_ID"])))
    out = []
    for r in rows:
        text = _clean(r["Utterance"])
        if not text:  # no words ('!'): not a line
            continue
        out.append(Example(**labelled(r["Emotion"]), text=text,
                           valence=MELD_SENTIMENT_VALENCE.get(r.get("Sentiment", "").strip().lower(), NAN),
                           group=f"meld-{r['Dialogue_ID']}", source="meld", language="en"))
    return _with_dialogue_context(out)


def _with_dialogue_context(examples: list[Example]) -> list[Example]:
    """Each line with its context within its dialogue (examples in order, a dialogue = a group), the one rule a
    film's lines get theirs by (transforms.segment.dialogue_context: the distinct lines before it)."""
    out = []
    for _, run in itertools.groupby(examples, key=lambda e: e.group):
        run = list(run)
        out += [dataclasses.replace(e, context=c)
                for e, c in zip(run, dialogue_context([e.text for e in run], CONTEXT_TURNS))]
    return out


def read_emorynlp(path: Path) -> list[Example]:
    rows = _read_csv(path)
    def key(r):
        return int(r["Season"]), int(r["Episode"]), int(r["Scene_ID"]), int(r["Utterance_ID"])
    rows.sort(key=key)
    out = []
    for r in rows:
        text = _clean(r["Utterance"])
        if not text:
            continue
        emo = r["Emotion"].strip()
        out.append(Example(**labelled(EMORYNLP_LABELS.get(emo, emo)), text=text, valence=EMORYNLP_VALENCE.get(emo, NAN),
                           group="emory-%d-%d-%d" % key(r)[:3], source="emorynlp", language="en"))
    return _with_dialogue_context(out)


def read_goemotions(path: Path) -> list[Example]:
    """GoEmotions tsv: text, comma-separated label ids (in labels.txt order next to the file), id.
    Only single-label rows are kept: a multi-label row has no one right answer for a 7-way softmax."""
    names = (path.parent / "labels.txt").read_text().split()
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) < 2 or "," in row[1] or not _clean(row[0]):
                continue
            out.append(Example(**labelled(names[int(row[1])]), text=_clean(row[0]),
                               group=row[2] if len(row) > 2 else "", source="goemotions", language="en"))
    return out


def read_imagefolder(path: Path) -> list[Example]:
    """DIR/<label>/*.jpg with FER-style (angry, happy, ...) or EMOTIONS folder names (LABEL_NAMES); face crops.
    A folder of another name (contempt) is counted as left out, its images not read."""
    out = []
    for sub in sorted(p for p in path.iterdir() if p.is_dir()):
        label = labelled(sub.name)
        images = sorted(img for img in sub.iterdir() if img.suffix.lower() in IMAGE_SUFFIXES)
        if label["label"] < 0:
            out += [Example(label=-1, label_text=sub.name, group=img.name, source="imagefolder") for img in images]
            continue
        out += [Example(**label, image=str(img), group=img.name, source="imagefolder") for img in images]
    return out


def read_clip_manifest(path: Path) -> list[Example]:
    """A studio's labelled clips, csv or jsonl, columns: video (path, relative to the manifest allowed),
    start, end (seconds, or a time as an edit list or a subtitle file writes it: 01:02:03.5, 00:01:02,500),
    label (EMOTIONS or the spellings LABEL_NAMES knows), optional text, context (list, or lines
    joined by ' || '), language (of the line: en, de, ...; without it the language is identified from the film's
    lines, as a run's), valence, arousal (in [-1, 1])."""
    if path.suffix.lower() in (".jsonl", ".json"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    else:
        rows = _read_csv(path)
    out = []
    for r in rows:
        video = Path(str(r["video"]))
        if not video.is_absolute():
            video = path.parent / video
        ctx = r.get("context") or ()
        if isinstance(ctx, str):
            ctx = ctx.split(" || ")
        ctx = tuple(line for line in map(_clean, map(str, ctx)) if line)  # each earlier line as its cue is read
        out.append(Example(**labelled(r.get("label")), text=_clean(r.get("text") or "") or None,
                           context=ctx, video=str(video), start_s=_seconds(r["start"]), end_s=_seconds(r["end"]),
                           valence=_float(r.get("valence")), arousal=_float(r.get("arousal")),
                           group=str(video), source="clips", language=str(r.get("language") or "").strip() or None))
    return out


def _seconds(value) -> float:
    """A clip manifest's time: seconds (a number), or [[HH:]MM:]SS[.fff] with '.' or ',' before the fraction (a
    subtitle file's 00:01:02,500). A frame count (HH:MM:SS:FF) needs the film's rate: refused, naming the value."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().replace(",", ".")
    parts = text.split(":")
    if len(parts) > 3 or not all(re.fullmatch(r"\d+(\.\d*)?", p) for p in parts):
        raise ValueError(f"{value!r} is not a time: give seconds (62.5) or HH:MM:SS.fff (00:01:02.500)")
    return sum(float(p) * 60 ** i for i, p in enumerate(reversed(parts)))


def parquet_columns(path: Path | str, columns: Sequence[str], required: Sequence[str] = ()):
    """A Parquet file's columns among `columns` that it has (pyarrow Table): the others are optional to the reader,
    but for `required` ones (ValueError naming the columns the file has). A file without a `label` column has its
    `emotion` column (FER2013's name for it, and many exports') read as `label`."""
    import pyarrow.parquet as pq
    names = pq.read_schema(path).names
    alias = {"emotion": "label"} if "label" not in names and "emotion" in names else {}
    missing = [c for c in required if c not in names and c not in alias.values()]
    if missing:
        raise ValueError(f"no {' or '.join(repr(c) for c in missing)} column (its columns: {', '.join(names)})")
    t = pq.read_table(path, columns=[c for c in columns if c in names] + [a for a, c in alias.items() if c in columns])
    return t.rename_columns([alias.get(c, c) for c in t.column_names])


def _parquet_rows(path: Path, columns: Sequence[str], media: str | None = None) -> list[dict]:
    """The rows of a labelled set's file; `media`: its image / audio column, needed with `label`."""
    return parquet_columns(path, columns, required=(media, "label") if media else ()).to_pylist()


def _scale_1_9(value) -> float:
    """Emotion6's 1-9 rating scale -> [-1, 1]."""
    return NAN if value is None else (float(value) - 5.0) / 4.0


def _media(value, folder: Path) -> bytes | None:
    """A Parquet media cell: encoded bytes; a Hugging Face datasets Image / Audio struct ({bytes, path}): its bytes,
    else the file its path names; or a file's path as a string. Paths are relative to the Parquet file's folder.
    None when there is nothing to read: the row is then left out as unreadable (before 2026-12-06 a struct or a
    path was every row's reason)."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return value["bytes"]
        value = value.get("path")
    if not isinstance(value, str):
        return value
    named = Path(value) if Path(value).is_absolute() else folder / value
    return named.read_bytes() if value and named.is_file() else None


def read_faces_parquet(path: Path) -> list[Example]:
    """Face crops (FER+, IMFDB): image bytes, label; grouped by actor where known."""
    return [Example(**labelled(r.get("label")), data=_media(r["image"], path.parent), source="faces",
                    group=str(r.get("actor") or r.get("path") or i))
            for i, r in enumerate(_parquet_rows(path, ["image", "label", "actor", "path"], "image"))]


def read_frames_parquet(path: Path) -> list[Example]:
    """Whole frames or photos (Emotion6): image bytes, label, valence/arousal (1-9 scaled to [-1, 1])."""
    return [Example(**labelled(r.get("label")), data=_media(r["image"], path.parent), source="frames",
                    valence=_scale_1_9(r.get("valence")), arousal=_scale_1_9(r.get("arousal")),
                    group=str(r.get("path") or i))
            for i, r in enumerate(_parquet_rows(path, ["image", "label", "valence", "arousal", "path"], "image"))]


def read_audio_parquet(path: Path) -> list[Example]:
    """Speech clips (RAVDESS, EmoDB, TESS): audio bytes, label; grouped by speaker."""
    return [Example(**labelled(r.get("label")), data=_media(r["audio"], path.parent), source="audio",
                    group=str(r.get("speaker") or i))
            for i, r in enumerate(_parquet_rows(path, ["audio", "label", "speaker"], "audio"))]


# RAVDESS names its files MM-VC-EE-II-SS-RR-AA.wav: SS is the statement; TESS names them SPEAKER_WORD_EMOTION.wav
# for the line "Say the word WORD". EmoDB's German lines are not read by the shipped text path, so not kept.
RAVDESS_STATEMENTS = {"01": "Kids are talking by the door.", "02": "Dogs are sitting by the door."}


def spoken_line(name: str) -> str | None:
    """The line said in a RAVDESS or TESS file, from its name; None when the name does not tell."""
    stem = Path(name).stem
    parts = stem.split("-")
    if len(parts) == 7 and all(p.isdigit() for p in parts):
        return RAVDESS_STATEMENTS.get(parts[4])
    parts = stem.split("_")
    if len(parts) == 3 and parts[0].upper() in ("OAF", "YAF") and parts[1].isalpha():
        return f"Say the word {parts[1].lower()}."
    return None


def read_spoken_parquet(path: Path) -> list[Example]:
    """Speech clips with their own line (a film's line and voice come from one actor in one take): the line in the
    set's `text` column (a transcript) where it has one, else the one the file name tells (spoken_line); rows with
    neither are left out. A transcript's language is its `language` column's (else identified), a named line's
    English."""
    lines = []
    for r in _parquet_rows(path, ["path", "text", "language"]):
        said = (r.get("text") or "").strip()
        lines.append((said, str(r.get("language") or "").strip() or None) if said
                     else (spoken_line(str(r.get("path") or "")), "en"))
    return [dataclasses.replace(e, text=_clean(line), source="spoken", language=language)
            for e, (line, language) in zip(read_audio_parquet(path), lines) if line]


READERS: dict[str, Callable[[Path], list[Example]]] = {
    "meld": read_meld, "goemotions": read_goemotions, "emorynlp": read_emorynlp,
    "imagefolder": read_imagefolder, "clips": read_clip_manifest,
    "faces": read_faces_parquet, "frames": read_frames_parquet, "audio": read_audio_parquet,
    "spoken": read_spoken_parquet,
}


def stratified_split(examples: Sequence[Example], dev_fraction: float, seed: int
                     ) -> tuple[list[Example], list[Example]]:
    """Seeded split keeping each label's share in both parts (used for FER2013, which has no dev split)."""
    rng = random.Random(seed)
    train, dev = [], []
    for k in sorted({e.label for e in examples}):
        rows = [e for e in examples if e.label == k]
        rng.shuffle(rows)
        n_dev = max(1, round(len(rows) * dev_fraction)) if len(rows) > 1 else 0
        dev += rows[:n_dev]
        train += rows[n_dev:]
    return train, dev


def _read_csv(path: Path) -> list[dict]:
    """A CSV's rows: UTF-8 (with or without a byte-order mark), else Windows-1252, the encoding a spreadsheet
    export of such a set often has (a lone 0x92 apostrophe stopped the whole evaluation before 2026-12-06)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return list(csv.DictReader(f))
    except UnicodeDecodeError as exc:
        log.warning("%s: not UTF-8 (%s): read as Windows-1252", path, exc)
        with open(path, newline="", encoding="cp1252", errors="replace") as f:
            return list(csv.DictReader(f))


def _clean(text: str) -> str:
    """A labelled line as the pipeline reads a subtitle cue's: tags and character references as a cue's
    (transforms.dialogue.clean_text), then its dialogue (no stage directions, '' when no word is left). Before
    2026-12-06 tags and references stayed: a clip manifest's `<i>You lied!</i>` reached the text model as written."""
    # MELD's csv carries mis-decoded punctuation (e.g. '\x92' for an apostrophe); normalise the common ones.
    for bad, good in (("\x92", "'"), ("\x91", "'"), ("\x93", '"'), ("\x94", '"'), ("\x97", "-"), ("\x85", "...")):
        text = text.replace(bad, good)
    return dialogue_text(clean_text(" ".join(text.split())))


def read_image(path: str):
    """A face crop from an image folder as RGB uint8 [H, W, 3]: its bytes through transforms.decode.decode_image,
    the one image decoder (Parquet sets' bytes go through it too). It gives OpenCV's pixels, used here before
    2026-12-05, to the bit on all 2,247 FER2013 folder images."""
    from transforms.decode import decode_image
    return decode_image(Path(path).read_bytes())


def _float(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return NAN
    return f if math.isfinite(f) else NAN
