"""Readers for labelled data: each returns a list of `Example`s in the project's EMOTIONS labels.

Specs are `KIND:PATH`: meld:CSV, goemotions:TSV, emorynlp:CSV, imagefolder:DIR, clips:CSV|JSONL, and the
Parquet sets of ../shared/data (media as encoded bytes beside the labels): faces:PARQUET (face crops: FER+,
IMFDB), frames:PARQUET (whole frames or photos through the full visual path: Emotion6), audio:PARQUET (speech
clips: RAVDESS, EmoDB, TESS), spoken:PARQUET (the same speech clips with the line the speaker says as the clip's
line, where the file name tells it: RAVDESS's two sentences, TESS's "Say the word ..."); a Parquet PATH may be a
folder of shards (its *.parquet files in name order, as Hugging Face and Spark write them). Labels are EMOTIONS or
the spellings LABEL_NAMES knows (happy, fearful, calm); a row without a label (null) gets label -1 and is left out
of metrics and training, a row whose label names none of them (contempt) is left out and counted (load_dataset).
No Beam, no pandas.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import itertools
import json
import logging
import math
import os
import random
import re
import stat
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
# Keyed by the label as label_key reads it (lower case): before 2026-12-06 by the file's spelling, so a file written
# 'joyful', 'mad' lost those rows as labels none of ours and every row its valence.
EMORYNLP_LABELS = {"joyful": "joy", "powerful": "joy", "peaceful": "neutral", "neutral": "neutral",
                   "mad": "anger", "scared": "fear", "sad": "sadness"}
EMORYNLP_VALENCE = {"joyful": 1.0, "powerful": 1.0, "peaceful": 1.0, "neutral": 0.0,
                    "mad": -1.0, "scared": -1.0, "sad": -1.0}


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
    # the row's number in its file (from 0, among the data rows; an image folder's: in its sorted listing), which the
    # warnings and `unreadable_rows` name: before 2026-12-06 they named its place after rows were left out
    row: int = -1
    # a clip manifest's clip whose film its run planned as it played (a `segment_source` of `shot` or `asr` among the
    # film's rows, transforms.decode.planned_late): its frames are the run's grid's, as `report --explain` takes them
    on_grid: bool = False
    no_media: str = ""  # why a media row has no bytes to decode ('no image in this row', 'file X not found')
    left_out: str = ""  # why the reader leaves the row out (a spoken: row with no line): counted by load_dataset


SPLIT_SEED = 13  # the seeded stratified split behind the '#train' / '#dev' suffix (FER2013 has no dev split)
DEV_FRACTION = 0.2
SAMPLE_SEED = 7  # the seeded subsample behind the '@N' suffix


def _spec_pieces(spec: str) -> tuple[str, Path, str, str | None]:
    """KIND:PATH[@N][#SPLIT] -> (KIND, PATH, SPLIT or '', N as written or None), suffixes unchecked. A path that
    exists as written is taken whole, '#' and '@' in it included (a folder 'take#2', a file 'faces@2x.parquet':
    before 2026-12-06 they were read as suffixes and the file was not found)."""
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in READERS:
        raise ValueError(f"data spec must be KIND:PATH with KIND in {sorted(READERS)}, got {spec!r}")
    rest = os.path.expanduser(rest)  # '~/data/dev.parquet', quoted: the shell did not expand it
    if rest and os.path.exists(rest):
        return kind, Path(rest), "", None
    head, sep, split = rest.rpartition("#")
    if not sep or "/" in split:  # a '#' inside the path, not a suffix after it
        head, split = rest, ""
    path = Path(head)
    if "@" not in path.name or path.exists():
        return kind, path, split, None
    stem, count = path.name.rsplit("@", 1)
    return kind, path.with_name(stem), split, count


def parse_spec(spec: str) -> tuple[str, Path]:
    """KIND:PATH[@N][#train|#dev] -> (KIND, PATH)."""
    kind, path, _, _ = _spec_pieces(spec)
    return kind, path


def spec_parts(spec: str) -> tuple[str, Path, str, Optional[int]]:
    """KIND:PATH[@N][#train|#dev] -> (KIND, PATH, split: '' | 'train' | 'dev', N or None); ValueError says what is
    wrong. The one reading of a spec's suffixes, for load_dataset and the CLIs' check (data_spec)."""
    kind, path, split, count = _spec_pieces(spec)
    if split not in ("", "train", "dev"):
        raise ValueError(f"split suffix must be #train or #dev, got #{split} in {spec!r}")
    if count is None:
        return kind, path, split, None
    if not count.isdigit():
        raise ValueError(f"sample suffix must be @N (a row count), got {spec!r}")
    return kind, path, split, int(count)


def data_spec(spec: str) -> str:
    """argparse type of the CLIs' --data / --dev (pipeline.train, evaluate, calibrate): a spec whose kind, path,
    split or sample size is wrong stops the command with its usage and one line, before any model loads."""
    import argparse
    try:
        kind, path, split, n = spec_parts(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file or folder: {path}")
    # its path made absolute: a head records its specs, and what it has seen is looked up by them from anywhere
    # (before 2026-12-07 a relative spec was recorded as typed, and evaluate, run from another folder on the same
    # training rows, said nothing)
    return f"{kind}:{os.path.abspath(path)}" + (f"@{n}" if n is not None else "") + (f"#{split}" if split else "")


class DataError(ValueError):
    """A data spec whose file cannot be read as its kind (a Parquet file given as meld:, a CSV without the columns)."""


def load_dataset(spec: str, left_out: Counter | None = None, skipped: Counter | None = None) -> list[Example]:
    """KIND:PATH, optionally with '@N' (seeded subsample of N rows) and '#train' / '#dev' (seeded
    stratified 80/20 split, SPLIT_SEED): e.g. imagefolder:faces/fer2013#dev, goemotions:train.tsv@8000.
    Rows whose label names none of EMOTIONS are left out with a warning and counted by name in `left_out` (those of
    the '#' part named; '@N' then draws N of the labelled rows); a set
    none of whose labels is ours is a DataError (before 2026-12-06 such rows were dropped without a word, and a
    set labelled 'happy', 'fearful' was scored on its neutral rows alone). Rows a reader leaves out for another
    reason (a spoken: row with no line) are left out with a warning and counted by that reason in `skipped`."""
    kind, path, split, n = spec_parts(spec)
    try:
        examples = READERS[kind](path)
    except Exception as exc:  # noqa: BLE001 - the readers fail in many ways on a file of another kind
        raise DataError(f"{spec}: cannot be read as {kind} data ({type(exc).__name__}: {exc})") from None
    examples = _without_rows_left_out(spec, examples, skipped)
    if split:  # foreign-label rows are split too, so a part counts its own (a set without them splits as before)
        train, dev = stratified_split(examples, DEV_FRACTION, SPLIT_SEED)
        examples = train if split == "train" else dev
    examples = _without_foreign_labels(spec, examples, left_out)
    return examples if n is None else _sample_labelled(examples, n)


def _sample_labelled(examples: list[Example], n: int) -> list[Example]:
    """'@N': a seeded sample (SAMPLE_SEED) of N of the labelled rows, in file order; the set as it is where it has no
    more. Before 2026-12-06 rows without a label were drawn too, so a set with null labels gave fewer than N
    labelled rows (a set without them draws the same rows as before)."""
    labelled_rows = [e for e in examples if e.label >= 0]
    if n >= len(labelled_rows):
        return examples
    keep = sorted(random.Random(SAMPLE_SEED).sample(range(len(labelled_rows)), n))
    return [labelled_rows[i] for i in keep]


def _without_rows_left_out(spec: str, examples: list[Example], skipped: Counter | None) -> list[Example]:
    """The rows a reader keeps; those it marks left out (Example.left_out) are counted by why, in a warning and in
    `skipped` (before 2026-12-06 a spoken: row with no line was dropped without a word)."""
    why = Counter(e.left_out for e in examples if e.left_out)
    if not why:
        return examples
    log.warning("%s: %d of %d rows left out: %s", spec, sum(why.values()), len(examples),
                "; ".join(f"{n} {reason}" for reason, n in why.most_common()))
    if skipped is not None:
        skipped.update(why)
    return [e for e in examples if not e.left_out]


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
        if all(_is_number(k) for k in foreign) else ""
    if not any(e.label >= 0 for e in examples):
        raise DataError(f"{spec}: no row has a label this project knows (found {names}); labels must be one of "
                        f"{accepted}.{numbers}")
    log.warning("%s: %d rows left out: their label is none of the 7 emotions (%s); accepted: %s.%s", spec,
                sum(foreign.values()), names, accepted, numbers)
    if left_out is not None:
        left_out.update(foreign)
    return [e for e in examples if not e.label_text]


def _is_number(text: str) -> bool:
    """Whether a label is a number, an integer or not ('6', '6.0': a class index a float column holds). 'nan' and
    'inf' are not (before 2026-12-07 float() took them, and a 'nan' label was told to be written as a name)."""
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


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


def label_key(text: str) -> str:
    """A label as the label maps are keyed: lower case, '_' and '-' read as spaces, spaces collapsed."""
    return re.sub(r"[\s_-]+", " ", text.strip().lower())


# What pandas, a float column or a database export writes for an empty label cell (NaN, null as text): no label, as a
# null is. Before 2026-12-07 they were labels none of ours, left out as such and, for 'nan', called a number. 'none'
# and 'na' are not among them: a set may mean "no emotion" by them, and as labels none of ours they are counted and
# warned of, so the user can map them.
NO_LABEL_WORDS = frozenset({"nan", "null"})


def labelled(value) -> dict:
    """A label as a data set writes it -> Example's label fields: its index in EMOTIONS (LABEL_NAMES' spellings
    too); -1 with no text where there is none (null, empty, NO_LABEL_WORDS in any case); -1 with the text kept where
    it names none of ours."""
    text = "" if value is None else str(value).strip()
    if label_key(text) in NO_LABEL_WORDS:
        return {"label": -1, "label_text": ""}
    name = LABEL_NAMES.get(label_key(text))
    if name:
        return {"label": LABEL_INDEX[name], "label_text": ""}
    return {"label": -1, "label_text": text}


# A labelled line the dialogue rule leaves no words of ('(laughs)', '...', 'THE END'): counted, as a film's cue of none
# is no line (before 2026-12-07 dropped without a word: n fell and nothing said why)
NO_WORDS = "no words by the dialogue rule (transforms.dialogue: a sound description, a music cue, '!')"


def read_meld(path: Path) -> list[Example]:
    """MELD csv: Utterance, Emotion, Sentiment, Dialogue_ID, Utterance_ID. Context = earlier lines of the
    same dialogue; sentiment gives the valence target (-1/0/+1)."""
    rows = list(enumerate(_read_csv(path)))
    rows.sort(key=lambda ir: (int(ir[1]["Dialogue_ID"]), int(ir[1]["Utterance_ID"])))
    out, wordless = [], []
    for i, r in rows:
        text = _clean(r["Utterance"])
        if not text:  # no words ('!'): not a line, nor another line's context
            wordless.append(Example(**labelled(r["Emotion"]), source="meld", row=i, left_out=NO_WORDS))
            continue
        out.append(Example(**labelled(r["Emotion"]), text=text,
                           valence=MELD_SENTIMENT_VALENCE.get(r.get("Sentiment", "").strip().lower(), NAN),
                           group=f"meld-{r['Dialogue_ID']}", source="meld", language="en", row=i))
    return _with_dialogue_context(out) + wordless


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
    """EmoryNLP csv: Utterance, Emotion (the feeling wheel's names, any case: EMORYNLP_LABELS), Season, Episode,
    Scene_ID, Utterance_ID. Context = earlier lines of the same scene; the wheel's half gives the valence."""
    rows = list(enumerate(_read_csv(path)))
    def key(r):
        return int(r["Season"]), int(r["Episode"]), int(r["Scene_ID"]), int(r["Utterance_ID"])
    rows.sort(key=lambda ir: key(ir[1]))
    out, wordless = [], []
    for i, r in rows:
        text = _clean(r["Utterance"])
        emo = label_key(r["Emotion"])
        if not text:
            wordless.append(Example(**labelled(EMORYNLP_LABELS.get(emo, r["Emotion"])), source="emorynlp", row=i,
                                    left_out=NO_WORDS))
            continue
        out.append(Example(**labelled(EMORYNLP_LABELS.get(emo, r["Emotion"])), text=text,
                           valence=EMORYNLP_VALENCE.get(emo, NAN), group="emory-%d-%d-%d" % key(r)[:3],
                           source="emorynlp", language="en", row=i))
    return _with_dialogue_context(out) + wordless


def read_goemotions(path: Path) -> list[Example]:
    """GoEmotions tsv: text, comma-separated label ids (in labels.txt order next to the file), id.
    Only single-label rows are kept: a multi-label row has no one right answer for a 7-way softmax."""
    names = (path.parent / "labels.txt").read_text().split()
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)):
            if len(row) < 2 or "," in row[1]:
                continue
            text = _clean(row[0])
            if not text:
                out.append(Example(**labelled(names[int(row[1])]), source="goemotions", row=i, left_out=NO_WORDS))
                continue
            out.append(Example(**labelled(names[int(row[1])]), text=text,
                               group=row[2] if len(row) > 2 else "", source="goemotions", language="en", row=i))
    return out


def image_suffixes() -> frozenset[str]:
    """The file suffixes of the formats Pillow decodes (JPEG, PNG, TIFF, GIF, PGM, WebP, ...), less those it only
    identifies (a stub plugin's; MPEG: a video)."""
    from PIL import Image, ImageFile

    def decodes(fmt: str) -> bool:
        opener = Image.OPEN.get(fmt, (None,))[0]  # a class, or a factory function (JPEG's)
        return opener is not None and fmt != "MPEG" and not (
            isinstance(opener, type) and issubclass(opener, ImageFile.StubImageFile))
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if decodes(fmt))


def _visible(folder: Path) -> list[Path]:
    """A folder's entries in name order, hidden ones (.DS_Store, macOS's ._ copies) skipped."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _files_under(folder: Path) -> list[Path]:
    """Every file under a folder, at any depth (a subject's sub-folder), in path order; hidden ones skipped."""
    out = []
    for p in _visible(folder):
        out += _files_under(p) if p.is_dir() else [p] if p.is_file() else []
    return out


def read_imagefolder(path: Path) -> list[Example]:
    """DIR/<label>/*.jpg with FER-style (angry, happy, ...) or EMOTIONS folder names (LABEL_NAMES); face crops in
    any format Pillow reads (image_suffixes: JAFFE's .tiff, .gif, .pgm), at any depth under their label's folder
    (a subject's sub-folder, whose name groups its faces in one fold), as torchvision's ImageFolder reads them.
    The images of a folder of another name (contempt) are rows without a label, counted as left out with their
    label when the set is loaded; other files are counted in a warning. Before 2026-12-06 only .jpg, .jpeg, .png, .bmp and .webp directly in a label folder were read, the rest
    without a word, and a folder of TIFFs gave no rows."""
    suffixes, subs = image_suffixes(), [p for p in _visible(path) if p.is_dir()]
    _refuse_a_layout_folder(path, subs)
    out, not_images = [], Counter()
    for sub in subs:
        label = labelled(sub.name)
        for img in _files_under(sub):
            if img.suffix.lower() not in suffixes:
                not_images[img.suffix.lower() or "(no suffix)"] += 1
                continue
            inner = img.relative_to(sub).parts
            out.append(Example(**label, image=str(img), group=inner[0] if len(inner) > 1 else img.name,
                               source="imagefolder", row=len(out)))
    loose = [p for p in _visible(path) if p.is_file()]
    if not_images or loose:
        log.warning("%s: %d files left out: %s", path, sum(not_images.values()) + len(loose), "; ".join(
            ([f"not an image Pillow reads ({_counts(not_images)})"] if not_images else [])
            + ([f"{len(loose)} outside a label folder ({_counts(Counter(p.suffix.lower() for p in loose))})"]
               if loose else [])))
    if not out:
        raise ValueError(f"no image in {path}'s label folders (seen: {len(subs)} folders"
                         + (f"; files {_counts(not_images)}" if not_images else "")
                         + (f"; {len(loose)} files beside the folders" if loose else "")
                         + "): give DIR/<label>/ folders of images (.jpg, .png, .tif, ...) named by their emotion")
    return out


def _refuse_a_layout_folder(path: Path, subs: list[Path]) -> None:
    """A folder whose label folders are one level down (Kaggle's FER2013: train/angry, test/angry) is refused,
    naming the folder to give: each split would otherwise be read as a label none of ours."""
    if any(labelled(sub.name)["label"] >= 0 for sub in subs):
        return
    holders = [sub.name for sub in subs if any(p.is_dir() and labelled(p.name)["label"] >= 0 for p in _visible(sub))]
    if holders:
        raise ValueError(f"its folders {', '.join(holders)} hold the label folders (angry, happy, ...): give one of "
                         f"them, e.g. imagefolder:{path / holders[0]}")


def _counts(counter: Counter) -> str:
    """'.txt 3, .mp4 1': a counter's keys by count."""
    return ", ".join(f"{k} {n}" for k, n in counter.most_common())


def read_clip_manifest(path: Path) -> list[Example]:
    """A studio's labelled clips, csv or jsonl, columns: video (path, relative to the manifest allowed),
    start, end (seconds, or a time as an edit list or a subtitle file writes it: 01:02:03.5, 00:01:02,500),
    label (EMOTIONS or the spellings LABEL_NAMES knows), optional text, context (list, or lines
    joined by ' || '), language (of the line: en, de, ...; without it the language is identified from the film's
    lines, as a run's), valence, arousal (in [-1, 1]), segment_source (the clips table's: a film with a `shot` or
    `asr` clip was planned as it played, and its clips are decoded on the run's frame grid)."""
    if path.suffix.lower() in (".jsonl", ".json"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    else:
        rows = _read_csv(path)
    out = []
    for i, r in enumerate(rows):
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
                           group=str(video), source="clips", language=str(r.get("language") or "").strip() or None,
                           row=i))
    from transforms.decode import planned_late
    sources: dict[str, set] = {}  # per film, however its rows spell its path (relative, through a link)
    for e, r in zip(out, rows):
        sources.setdefault(os.path.realpath(e.video), set()).add(str(r.get("segment_source") or "").strip())
    return [dataclasses.replace(e, on_grid=True) if planned_late(None, sources[os.path.realpath(e.video)]) else e
            for e in out]


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
    `emotion` column (FER2013's name for it, and many exports') read as `label`. `path` may be a folder of shards
    (parquet_files). A Hugging Face ClassLabel label (integers, their names in the schema's `huggingface` metadata)
    is read as those names (before 2026-12-06 its numbers were refused as labels none of ours)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    files = parquet_files(Path(path))
    schema = pq.read_schema(files[0])
    names = schema.names
    alias = {"emotion": "label"} if "label" not in names and "emotion" in names else {}
    missing = [c for c in required if c not in names and c not in alias.values()]
    if missing:
        raise ValueError(f"no {' or '.join(repr(c) for c in missing)} column (its columns: {', '.join(names)})")
    wanted = [c for c in columns if c in names] + [a for a, c in alias.items() if c in columns]
    tables = [pq.read_table(f, columns=wanted) for f in files]
    t = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
    t = t.rename_columns([alias.get(c, c) for c in t.column_names])
    label_column = next((a for a, c in alias.items() if c == "label"), "label")
    return _with_class_names(t, class_label_names(schema).get(label_column))


def parquet_files(path: Path) -> list[Path]:
    """A Parquet set's files: the file, or a folder's *.parquet files in name order (the shards Hugging Face and
    Spark write: data/train-00000-of-00002.parquet, part-00000.parquet; a folder was refused before 2026-12-06)."""
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.glob("*.parquet") if not p.name.startswith((".", "_")))
    if not files:
        raise ValueError(f"no .parquet file in the folder {path}")
    prefixes = sorted({p.name.split("-")[0] for p in files})
    if len(files) > 1 and len(prefixes) > 1:  # Hugging Face's data/ folder holds every split's shards
        log.warning("%s: its %d .parquet files are read as one set, though their names start differently (%s): "
                    "give one split's file or folder to read that split alone", path, len(files), ", ".join(prefixes))
    return files


def class_label_names(schema) -> dict[str, list[str]]:
    """The class names of a Hugging Face datasets file's ClassLabel columns, from its schema's `huggingface`
    metadata ({"info": {"features": {"label": {"_type": "ClassLabel", "names": [...]}}}}); {} where there is none."""
    try:
        meta = json.loads((schema.metadata or {}).get(b"huggingface") or b"{}")
    except ValueError:
        return {}
    features = (meta.get("info") or meta).get("features") if isinstance(meta, dict) else None
    if not isinstance(features, dict):
        return {}
    return {c: list(f["names"]) for c, f in features.items()
            if isinstance(f, dict) and f.get("_type") == "ClassLabel" and isinstance(f.get("names"), list)}


def _with_class_names(table, names: list[str] | None):
    """A table whose integer `label` column is read as the class `names` it indexes (-1, Hugging Face's "no label":
    null); a number out of their range stays a number, a label none of ours."""
    import pyarrow as pa
    if not names or "label" not in table.column_names or not pa.types.is_integer(table.schema.field("label").type):
        return table
    values = [None if v is None or v == -1 else names[v] if 0 <= v < len(names) else str(v)
              for v in table.column("label").to_pylist()]
    return table.set_column(table.column_names.index("label"), "label", pa.array(values, pa.string()))


def _parquet_rows(path: Path, columns: Sequence[str], media: str | None = None) -> list[dict]:
    """The rows of a labelled set's file (or folder of shards); `media`: its image / audio column, needed with
    `label`."""
    return parquet_columns(path, columns, required=(media, "label") if media else ()).to_pylist()


def _media_folder(path: Path) -> Path:
    """The folder a Parquet set's media paths are relative to: the file's, or the folder of shards itself."""
    return path if path.is_dir() else path.parent


def _scale_1_9(value) -> float:
    """Emotion6's 1-9 rating scale -> [-1, 1]."""
    return NAN if value is None else (float(value) - 5.0) / 4.0


def _media(value, folder: Path, what: str) -> dict:
    """A Parquet media cell -> Example's `data` and `no_media`: encoded bytes; a Hugging Face datasets Image / Audio
    struct ({bytes, path}): its bytes, else the file its path names; or a file's path as a string. Paths are
    relative to the Parquet file's folder. No data where there is nothing to read, and why ('no image in this row',
    'file X not found'): the row is then left out as unreadable (before 2026-12-06 a struct or a path was every
    row's reason, and the reason a TypeError)."""
    if isinstance(value, dict):
        if value.get("bytes"):
            return {"data": value["bytes"]}
        value = value.get("path")
    if not isinstance(value, str):
        return {"data": value} if value is not None else {"data": None, "no_media": f"no {what} in this row"}
    if not value:
        return {"data": None, "no_media": f"no {what} in this row"}
    named = Path(value) if Path(value).is_absolute() else folder / value
    return {"data": named.read_bytes()} if named.is_file() else {"data": None, "no_media": f"file {named} not found"}


def read_faces_parquet(path: Path) -> list[Example]:
    """Face crops (FER+, IMFDB): image bytes, label; grouped by actor where known."""
    return [Example(**labelled(r.get("label")), **_media(r["image"], _media_folder(path), "image"), source="faces",
                    group=str(r.get("actor") or r.get("path") or i), row=i)
            for i, r in enumerate(_parquet_rows(path, ["image", "label", "actor", "path"], "image"))]


def read_frames_parquet(path: Path) -> list[Example]:
    """Whole frames or photos (Emotion6): image bytes, label, valence/arousal (1-9 scaled to [-1, 1])."""
    return [Example(**labelled(r.get("label")), **_media(r["image"], _media_folder(path), "image"), source="frames",
                    valence=_scale_1_9(r.get("valence")), arousal=_scale_1_9(r.get("arousal")),
                    group=str(r.get("path") or i), row=i)
            for i, r in enumerate(_parquet_rows(path, ["image", "label", "valence", "arousal", "path"], "image"))]


def read_audio_parquet(path: Path) -> list[Example]:
    """Speech clips (RAVDESS, EmoDB, TESS): audio bytes, label; grouped by speaker."""
    return [Example(**labelled(r.get("label")), **_media(r["audio"], _media_folder(path), "sound"), source="audio",
                    group=str(r.get("speaker") or i), row=i)
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


NO_LINE = "no line known (give a `text` column, or RAVDESS / TESS file names in `path`)"


def read_spoken_parquet(path: Path) -> list[Example]:
    """Speech clips with their own line (a film's line and voice come from one actor in one take): the line in the
    set's `text` column (a transcript) where it has one, else the one the file name tells (spoken_line); rows with
    neither are left out, counted (NO_LINE: load_dataset; before 2026-12-06 without a word). A transcript's language
    is its `language` column's (else identified), a named line's English."""
    lines = []
    for r in _parquet_rows(path, ["path", "text", "language"]):
        said = (r.get("text") or "").strip()
        lines.append((said, str(r.get("language") or "").strip() or None) if said
                     else (spoken_line(str(r.get("path") or "")), "en"))
    return [dataclasses.replace(e, text=_clean(line), source="spoken", language=language) if line
            else dataclasses.replace(e, source="spoken", left_out=NO_LINE)
            for e, (line, language) in zip(read_audio_parquet(path), lines)]


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
    return dialogue_text(clean_text(text))  # (clean_text joins lines: split() took Windows-1252's '\x85' for a space)


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


# ---------------------------------------------------------------- media for the branch trainers; train / dev overlap
def media_bytes(values: Sequence, path: Path | str, what: str) -> list[bytes]:
    """A branch trainer's media column, row for row, as the bytes pipeline.train reads (_media: encoded bytes, a Hugging
    Face {bytes, path} struct, a file's path). Those trainers learn from every row, so a row with nothing to read is a
    DataError naming it (before 2026-12-06 a struct was a TypeError deep in the decoder)."""
    folder, out = _media_folder(Path(path)), []
    for i, value in enumerate(values):
        got = _media(value, folder, what)
        if got["data"] is None:
            raise DataError(f"{path}: row {i}: {got['no_media']}")
        out.append(got["data"])
    return out


def media_digests(path: Path | str, column: str) -> list[str]:
    """sha256 of each row's media in a Parquet set's `column` (its bytes as _media reads them), '' where a row has
    none or the file has no such column (its reader says so). Only that column is read, a batch at a time, and nothing
    is decoded: what train_dev_overlap compares."""
    import pyarrow.parquet as pq
    path, out = Path(path), []
    for f in parquet_files(path):
        if column not in pq.read_schema(f).names:
            return []
        for batch in pq.ParquetFile(f).iter_batches(batch_size=256, columns=[column]):
            out += [_bytes_digest(_media(v, _media_folder(path), column)["data"]) for v in batch.column(0).to_pylist()]
    return out


def parquet_speakers(path: Path | str) -> list | None:
    """A Parquet set's `speaker` column, row for row; None where it has none."""
    table = parquet_columns(path, ["speaker"])
    return table.column("speaker").to_pylist() if "speaker" in table.column_names else None


def set_speakers(name: str, speakers: Sequence | None) -> set[str]:
    """'<set>/<speaker>' of each named speaker: a set's speakers are compared with its own (two sets may both have
    a speaker '03')."""
    return {f"{name}/{s}" for s in speakers or () if s not in (None, "")}


def train_dev_overlap(where: str, train: Sequence[str], dev: Sequence[str], train_speakers: set[str] = frozenset(),
                      dev_speakers: set[str] = frozenset()) -> tuple[int, int]:
    """(dev rows byte-identical to a train row, speakers in both), from the rows' media digests (media_digests,
    spec_media; '' is no media) and speakers (set_speakers), said in one warning line where either is not 0. Dev then
    scores what was learnt, so the choice of epoch or configuration and the fitted temperature read it as unseen: a
    set whose dev was a copy of train read 0.657 dev accuracy for 0.314 and a temperature of 1.37 for 2.59. A warning,
    not a stop: public sets hold a few duplicates (FER2013). Before 2026-12-06 nothing was said."""
    learnt, dev = {d for d in train if d}, [d for d in dev if d]
    rows = sum(1 for d in dev if d in learnt)
    both = sorted(set(train_speakers) & set(dev_speakers))
    if rows or both:
        named = f" ({', '.join(both[:5])}{' ...' if len(both) > 5 else ''})" if both else ""
        log.warning("%s: %d of %d dev rows are byte-identical to train rows and %d speakers are in both train and "
                    "dev%s: dev scores them as unseen, so its accuracy and the fitted temperature read high", where,
                    rows, len(dev), len(both), named)
    return rows, len(both)


# Lines of another file count as rows seen where this share of a set's rows are identical (a line and its context):
# a copy, a subset, a reordering. Below it, identical lines are the short turns every dialogue set shares ('Hey!' with
# no context: MELD dev 8 of 1,109 in train, EmoryNLP dev 26 of 954, GoEmotions dev 42 of 4,946), not seen rows.
LINE_COPY_SHARE = 0.1
LINE_KINDS = ("meld", "goemotions", "emorynlp")


def copied_lines(shared: int, total: int) -> bool:
    """Whether `shared` of a line set's `total` rows identical to another's make it a copy (LINE_COPY_SHARE)."""
    return shared > 0 and shared >= LINE_COPY_SHARE * total


def line_digest(e: Example) -> str:
    """A labelled line's digest: its text and its context (the lines before it in its dialogue), as the head reads
    them; '' for a row without text."""
    return hashlib.sha256("\x1f".join([e.text, *e.context]).encode()).hexdigest() if e.text else ""


def specs_overlap(train_specs: Sequence[str], dev_specs: Sequence[str], where: str) -> tuple[int, int]:
    """train_dev_overlap between every --data spec and every --dev spec (pipeline.train): their media by digest,
    their sets' speakers where a Parquet set has a `speaker` column; line sets by line_digest, where a dev set's
    share of lines also in training reaches LINE_COPY_SHARE (before 2026-12-07 never: --dev X of the --data file X
    fitted the temperature on training lines without a word)."""
    train, dev = [spec_media(s) for s in train_specs], [spec_media(s) for s in dev_specs]
    learnt = {d for s in train_specs if spec_parts(s)[0] in LINE_KINDS for d in spec_lines(s)}
    copied = []
    for s in dev_specs if learnt else ():
        lines = spec_lines(s) if spec_parts(s)[0] in LINE_KINDS else []
        if copied_lines(sum(d in learnt for d in lines), len(lines)):
            copied += lines
    return train_dev_overlap(where, [d for m, _ in train for d in m] + sorted(learnt),
                             [d for m, _ in dev for d in m] + copied,
                             set().union(*(s for _, s in train)), set().union(*(s for _, s in dev)))


def per_file_version(read: Callable[[str], object]) -> Callable[[str], object]:
    """`read(spec)` memoised in this process while the spec's file keeps its size and mtime: a command compares each
    --data set with every set its head learnt (GoEmotions' 48,836 lines cleaned and hashed: 7 s a read), and one
    process running several commands (a notebook, the tests) read them again each time. A folder spec is read each
    time (a file replaced inside it leaves its mtime); what `read` returns is shared, not to be changed."""
    @functools.lru_cache(maxsize=16)
    def remembered(spec: str, version: tuple) -> object:
        return read(spec)

    @functools.wraps(read)
    def reader(spec: str):
        try:
            st = spec_parts(spec)[1].resolve().stat()
        except (ValueError, OSError):
            return read(spec)
        if not stat.S_ISREG(st.st_mode):
            return read(spec)
        return remembered(spec, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return reader


@per_file_version
def spec_lines(spec: str) -> list[str]:
    """line_digest of each row a line set's spec gives."""
    with _quietly():
        return [line_digest(e) for e in load_dataset(spec)]


@per_file_version
def spec_media(spec: str) -> tuple[list[str], set[str]]:
    """Per row a data spec gives (load_dataset's rows, its warnings not said a second time), a digest of its media:
    sha256 of its bytes or of the image file it names, a clip's film and times; '' for a line alone. And its set's
    speakers (set_speakers, the set named by its folder) where the Parquet set has a `speaker` column."""
    kind, path, _, _ = spec_parts(spec)
    if kind in LINE_KINDS:  # lines alone: no media (their copies: spec_lines)
        return [], set()
    with _quietly():
        examples = load_dataset(spec)
    digests = [_row_digest(e) for e in examples]
    speakers = parquet_speakers(path) if kind in ("audio", "spoken") else None
    if speakers is None:
        return digests, set()
    return digests, set_speakers(path.parent.name, [speakers[e.row] for e in examples if 0 <= e.row < len(speakers)])


def _row_digest(e: Example) -> str:
    """One row's media digest (spec_media)."""
    if e.data is not None:
        return _bytes_digest(e.data)
    if e.image:
        try:
            return _bytes_digest(Path(e.image).read_bytes())
        except OSError:
            return ""
    if e.video:  # a clip: the same film and times (hashing whole films would cost more than the check is worth)
        return _bytes_digest(f"{Path(e.video).resolve()}|{e.start_s}|{e.end_s}".encode())
    return ""


def _bytes_digest(data: bytes | None) -> str:
    """sha256 of some bytes, '' for none."""
    return hashlib.sha256(data).hexdigest() if data else ""


class _quietly(logging.Filter):
    """This module's warnings held back in a `with` block (a second read of a set the command reads anyway: said
    once)."""

    def filter(self, record) -> bool:
        """Every record is held back."""
        return False

    def __enter__(self):
        """Holds this module's records back."""
        log.addFilter(self)

    def __exit__(self, *exc):
        """Lets them through again."""
        log.removeFilter(self)
