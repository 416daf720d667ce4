"""Encoder features for labelled examples, computed once and cached on disk.

Every example goes through the same path as a film's clips (model.featurize.Featurizer, with encoders from
model.encoders.create_encoders / Encoders): text lines through `Featurizer.text_tokens`, face crops through
`Featurizer.face_tokens`, labelled clips (clip manifests) through the pipeline's own decode pass
(transforms.decode.decode_clip) and `Featurizer.clip`. So training sees the tokens serving computes.

With text_lower_k > 0 (fine-tuning the text encoder's top k layers, model/text_top.py), text features are the
hidden states entering those layers instead, from the same encoder and tokenisation.

A line is read as a run reads it (lines_as_read: transforms.language.unread_languages, the scorer's rule): one in a
language the text path does not read (`text_languages`, default the run's --text_languages default) loses its text
and context, as the run's clip does.

Cache key = data fingerprint (file bytes) + the weight-digest versions of the encoders a kind uses
(`Encoders.versions`, tuned weights included) + TEXT_MAX_LENGTH + the resolved precision (+ text_lower_k) + the
languages read, so changing any of them recomputes and nothing stale is reused. Features are stored as float16
token arrays per example: {modality: [L, D]}, L == 0 when missing.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from model.encoders.versions import GATE_READERS, TEXT_LANGUAGES
from model.featurize import TEXT_MAX_LENGTH, ClipMedia, Featurizer
from model.precision import resolve
from schemas.features import MODALITIES
from training.datasets import NO_LINE, DataError, Example, fingerprint, load_dataset, read_image
from transforms.decode import DECODE_RULE, IMAGE_RULE
from transforms.dialogue import DIALOGUE_RULE
from transforms.language import unread_languages
from model.files import written_atomically

log = logging.getLogger(__name__)
CACHE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "features"  # env FILM_EMOTION_FEATURE_CACHE overrides
# a line's context: 2 (2026-12-04) = transforms.segment.dialogue_context, the film's rule (a line repeated at once
# is not context twice); before, the readers kept every earlier line of the dialogue
CONTEXT_RULE = "2"
CACHE_FORMAT = "2"  # 2: encoder versions from weight digests; clips decoded by transforms.decode
VISION_DIM = 384  # ViT-S/14 width (docs/architecture.md); read from the encoder when it is loaded
FACE_CHUNK = 256
TEXT_KINDS = ("meld", "goemotions", "emorynlp")


def kind_modalities(kind: str) -> tuple[str, ...]:
    """The modalities a data kind's features carry (hence the encoders its cache key names)."""
    if kind in TEXT_KINDS:
        return ("text",)
    if kind in ("imagefolder", "faces"):
        return ("face",)
    if kind == "frames":
        return ("vision", "face")
    if kind == "audio":
        return ("audio",)
    if kind == "spoken":
        return ("text", "audio")
    return ("text", "vision", "face", "audio")


def rows_digest(examples: Sequence[Example]) -> str:
    """What each row gives the encoders, in order: its line and context as read, its media bytes, the content of the
    image file or film it names. A cache is used only for the very rows it was made from: before 2026-12-06 the
    spec's own file and the row count were all that was checked, so a labels.txt or a reading rule that changed
    which rows a set gives, a film or image edited in place, or a cleaning rule gave rows other rows' features."""
    from model.encoders._cache import file_digest
    from transforms.discover import content_fingerprint

    def content(path: str, digest) -> str:
        try:
            return digest(path)
        except (OSError, ValueError, IndexError):  # not there (yet): its row is unreadable until it is
            return "missing"
    h, films = hashlib.sha256(), {}
    for e in examples:
        h.update(repr((e.text, tuple(e.context), e.image, e.video, e.start_s, e.end_s, e.language)
                      + ((True,) if e.on_grid else ()))
                 .encode("utf-8", "replace"))
        if e.data is not None:
            h.update(hashlib.sha256(e.data).digest())
        if e.image:
            h.update(content(e.image, lambda p: file_digest(Path(p))).encode())
        if e.video:
            if e.video not in films:  # a film: its sampled fingerprint (3 MiB), once per film of the set
                films[e.video] = content(e.video, content_fingerprint)
            h.update(films[e.video].encode())
    return h.hexdigest()


def cache_key(kind: str, spec: str, encoders, text_lower_k: int = 0, rows: str = "",
              text_languages: Sequence[str] = TEXT_LANGUAGES) -> str:
    versions = dict(encoders.versions)
    if text_lower_k:
        versions["text"] += f"+lower-top{text_lower_k}"  # states entering the top k layers, not the outputs
    named = ",".join(f"{m}={versions[m]}" for m in kind_modalities(kind))
    if "vision" in kind_modalities(kind):  # the views whose tokens a clip keeps: the scene classifier's gate
        named += f",scene={versions['scene']},views={GATE_READERS}"  # (Featurizer.pictures_only; a studio's own)
    if "text" in kind_modalities(kind):  # which text of a line is read (training.datasets._clean), and its context
        named += f",dialogue={DIALOGUE_RULE},context={CONTEXT_RULE}"
        named += f",text_languages={','.join(text_languages) or 'any'}"  # which lines are read (lines_as_read)
    named += f",decode={DECODE_RULE},image={IMAGE_RULE},rows={rows}"  # how media become samples; which rows
    precision = resolve(encoders.spec.precision, encoders.spec.device)
    # A runtime chosen by name (pipeline.evaluate --vision_runtime torch: the speed levers' full-cost side) gets
    # features of its own; 'auto' keeps the key it always had.
    for m, runtime in (("vision", encoders.spec.vision_runtime), ("text", encoders.spec.text_runtime)):
        if runtime != "auto" and m in kind_modalities(kind):
            named += f",{m}_runtime={runtime}"
    return hashlib.sha256(f"{CACHE_FORMAT}|{kind}|{fingerprint(spec)}|{named}|{TEXT_MAX_LENGTH}|{precision}"
                          .encode()).hexdigest()[:20]


def features_for(spec: str, encoders, cache_dir: Path | None = None, text_lower_k: int = 0,
                 unreadable: list[int] | None = None, left_out: Counter | None = None,
                 text_languages: Sequence[str] = TEXT_LANGUAGES, skipped: Counter | None = None
                 ) -> tuple[list[Example], list[dict[str, np.ndarray]]]:
    """All readable examples of a data spec and their features (from the cache when present). A row whose image
    or audio cannot be decoded (a sound of no samples, a clip that does not decode and has no line) is left out
    with a warning, and its row number in the file (Example.row) is appended to `unreadable`: one bad row does not
    stop an evaluation or a training run (before 2026-12-05 it ended it with a traceback; before 2026-12-06 a sound
    of no samples was scored from no input, and the numbers given were places after other rows were left out).
    Decoded rows the pipeline finds nothing in (no speech heard) are kept, as a run keeps such a clip, and counted
    in a warning. Rows whose label is none of ours are counted by name in `left_out`, those a reader leaves out for
    another reason (a spoken: row with no line) by why in `skipped` (load_dataset). A set with no labelled row left
    is a DataError (a spoken: set with no line: saying so): every caller learns from labels or scores against them.
    `text_languages`: the languages whose lines are read (() = any; lines_as_read)."""
    cache_dir = Path(cache_dir or os.environ.get("FILM_EMOTION_FEATURE_CACHE") or CACHE_DIR)
    skipped = Counter() if skipped is None else skipped
    examples = load_dataset(spec, left_out, skipped)
    kind = spec.split(":", 1)[0]
    key = cache_key(kind, spec, encoders, text_lower_k, rows_digest(examples), tuple(text_languages))
    path = cache_dir / f"{kind}-{key}.pt"
    feats = torch.load(path, weights_only=False) if path.exists() else None
    if feats is None or len(feats) != len(examples):
        log.info("encoding %d examples of %s", len(examples), spec)
        feats = compute_features(examples, encoders, text_lower_k, text_languages)
        with written_atomically(path) as tmp:  # two runs may fill one cache at once
            torch.save(feats, tmp)
    bad = [i for i, f in enumerate(feats) if f is None]
    if bad and len(bad) == len(examples):  # nothing left to train or score on: say so, not a traceback later
        raise DataError(f"{spec}: none of its {len(bad)} rows could be read (their media does not decode as an image "
                        "or a sound: see the warnings above)")
    if bad:
        rows = [row_number(examples[i], i) for i in bad]
        log.warning("%s: %d of %d rows could not be read and are left out (rows %s%s)", spec, len(bad),
                    len(examples), ", ".join(map(str, rows[:10])), " ..." if len(bad) > 10 else "")
        if unreadable is not None:
            unreadable += rows
        examples = [e for e, f in zip(examples, feats) if f is not None]
        feats = [f for f in feats if f is not None]
    _say_rows_with_nothing_read(spec, examples, feats)
    if not examples and skipped.get(NO_LINE):  # a spoken: set none of whose rows has a line
        raise DataError(f"{spec}: no row has a line ({skipped[NO_LINE]} rows without one): give the set a `text` "
                        "column (each clip's transcript), or RAVDESS / TESS file names in its `path` column")
    if not any(e.label >= 0 for e in examples):  # evaluate, train, calibrate: a traceback, or a fit on nothing
        raise DataError(f"{spec}: no row has a label ({len(examples)} rows): nothing to learn from or score against")
    return examples, feats


def row_number(e: Example, i: int) -> int:
    """The row's number in its file (Example.row); its place `i` for an example a reader did not number."""
    return e.row if e.row >= 0 else i


def _say_rows_with_nothing_read(spec: str, examples: Sequence[Example], feats: Sequence[dict | None]) -> None:
    """Warns of the decoded rows in which the pipeline found nothing to read (no speech heard in a sound: its
    speech gate): they are kept and scored from the head alone, as a run scores such a clip (the gate's misses
    count in a pipeline-path score), but a set that is mostly such rows should be seen."""
    empty = [row_number(e, i) for i, (e, f) in enumerate(zip(examples, feats))
             if f is not None and not any(len(f[m]) for m in MODALITIES if m in f)]
    if empty:
        log.warning("%s: %d of %d rows give the head nothing to read (no speech heard, no face, no line read): scored "
                    "from the head alone, as a run scores such a clip (rows %s%s)", spec, len(empty), len(examples),
                    ", ".join(map(str, empty[:10])), " ..." if len(empty) > 10 else "")


class NoMedia(ValueError):
    """A row with nothing to decode: no image or sound in it, a file it names not there, a sound of no samples."""


def _unreadable(e: Example, i: int, exc: Exception) -> None:
    """The warning for a row left out as unreadable: its row number in the file, and why (the decoder's error)."""
    where = f"row {row_number(e, i)}" + (f" ({e.image})" if e.image else "")
    why = str(exc) if isinstance(exc, NoMedia) else f"its media cannot be read ({type(exc).__name__}: {exc})"
    log.warning("%s: %s; left out", where, why)


def media_bytes(e: Example) -> bytes:
    """A Parquet row's encoded image or sound; NoMedia saying why where it has none (the reader's Example.no_media:
    'no image in this row', 'file X not found'; before 2026-12-06 a TypeError from the decoder)."""
    if e.data is None:
        raise NoMedia(e.no_media or "no media in this row")
    return e.data


def lines_as_read(examples: Sequence[Example], text_languages: Sequence[str] = TEXT_LANGUAGES) -> list[Example]:
    """The examples as the text path reads them: a line the run would not read (transforms.language.unread_languages,
    the rule of the run's scorer) loses its text and context. A line's language is the one its data names (an English
    set; a clip manifest's `language` column), else the one identified from all the lines of its film (of its group:
    a manifest's film, a speaker) together, as a run identifies a film's subtitles. Before 2026-12-06 every line was
    read: a manifest of a German film trained and scored on lines the run leaves unread."""
    out = list(examples)
    films: dict[tuple[str, str], list[int]] = {}
    for i, e in enumerate(examples):
        if e.text:
            films.setdefault((e.source, e.video or e.group or str(i)), []).append(i)
    unread = Counter()
    for idx in films.values():
        for i, lang in zip(idx, unread_languages([(examples[i].text, examples[i].language) for i in idx],
                                                  text_languages, identify=True)):
            if lang:
                out[i] = dataclasses.replace(out[i], text=None, context=())
                unread[lang] += 1
    if unread:
        log.warning("%d lines not read: their language is not one the text path reads (%s; text languages %s), as a "
                    "run does not read them", sum(unread.values()), ", ".join(f"{k} {n}" for k, n in unread.items()),
                    ",".join(text_languages) or "any")
    return out


def compute_features(examples: Sequence[Example], encoders, text_lower_k: int = 0,
                     text_languages: Sequence[str] = TEXT_LANGUAGES) -> list[dict[str, np.ndarray] | None]:
    """Each example's features; None for one whose image, audio or clip cannot be decoded. Lines are read as a run
    reads them (lines_as_read)."""
    examples = lines_as_read(examples, text_languages)
    featurizer = Featurizer(encoders)
    feats: list[dict[str, np.ndarray] | None] = [{} for _ in examples]
    # Clips first: their media modalities come from the featurizer; with text_lower_k their lines join the
    # text examples below, so every text feature of a run is the same kind of state.
    clip_idx = [i for i, e in enumerate(examples) if e.video]
    media = ("vision", "face", "audio") if text_lower_k else ("text", "vision", "face", "audio")
    for i in clip_idx:
        try:
            feats[i] = {m: np.asarray(a, np.float16) for m, a in clip_tokens(examples[i], featurizer, media).items()}
        except Exception as exc:  # noqa: BLE001 - one unreadable clip is one row left out
            _unreadable(examples[i], i, exc)
            feats[i] = None
    text_idx = [i for i, e in enumerate(examples) if e.text and (not e.video or text_lower_k) and feats[i] is not None]
    if text_idx:
        texts = [examples[i].text for i in text_idx]
        contexts = [list(examples[i].context) for i in text_idx]
        if text_lower_k:
            from model.text_top import encode_lower
            for i, (h, n_line) in zip(text_idx, encode_lower(encoders.text, texts, contexts, text_lower_k,
                                                             TEXT_MAX_LENGTH)):
                feats[i]["text"] = np.asarray(h, np.float16)
                feats[i]["text_line_len"] = np.array(n_line, np.int64)
        else:
            for i, t in zip(text_idx, featurizer.text_tokens(texts, contexts)):
                feats[i]["text"] = np.asarray(t, np.float16)
    img_idx = [i for i, e in enumerate(examples) if e.image or e.source == "faces"]
    for start in range(0, len(img_idx), FACE_CHUNK):
        chunk, images = [], []
        for i in img_idx[start:start + FACE_CHUNK]:
            try:
                images.append(face_image(examples[i]))
                chunk.append(i)
            except Exception as exc:  # noqa: BLE001 - a damaged image is one row left out
                _unreadable(examples[i], i, exc)
                feats[i] = None
        for i, v in zip(chunk, featurizer.face_tokens(images) if images else []):
            feats[i]["face"] = np.asarray(v, np.float16)[None]  # a face crop is one face token
    for i, e in enumerate(examples):
        if e.source in ("frames", "audio", "spoken") and feats[i] is not None:  # spoken: keeps its line's tokens
            try:
                feats[i].update({m: np.asarray(a, np.float16) for m, a in media_tokens(e, featurizer).items()})
            except Exception as exc:  # noqa: BLE001 - damaged audio or image bytes: one row left out
                _unreadable(e, i, exc)
                feats[i] = None
    return feats


def face_image(e: Example) -> np.ndarray:
    """A face crop's pixels: a Parquet row's bytes, or an image folder's file (NoMedia where it is gone)."""
    from transforms.decode import decode_image
    if e.image:
        if not Path(e.image).is_file():
            raise NoMedia(f"file {e.image} not found")
        return read_image(e.image)
    return decode_image(media_bytes(e))


def media_tokens(e: Example, featurizer: Featurizer) -> dict[str, np.ndarray]:
    """A labelled photo/still (frames:) as a one-frame clip through the full visual path (scene tokens, face
    detection and face tokens), or a speech clip (audio:) as a clip with audio only: the pipeline's own
    conversions (transforms.decode.still_clip / decode_audio) and the featurizer. A spoken: clip's audio goes the
    same way."""
    from transforms.decode import DecodeConfig, decode_audio, decode_image, still_clip
    if e.source == "frames":
        image = decode_image(media_bytes(e))
        clip = ClipMedia.of(still_clip(image, DecodeConfig(image_size=featurizer.encoders.spec.image_size)))
    else:
        wave = decode_audio(media_bytes(e))
        if not len(wave):  # before 2026-12-06 scored from no input and counted
            raise NoMedia("the sound has no samples")
        clip = ClipMedia(frames=np.zeros((0, 1, 1, 3), np.uint8), audio=wave)
    media = tuple(m for m in kind_modalities(e.source) if m != "text")  # a line is encoded with the other lines
    result = Featurizer(featurizer.encoders, media).clip(clip)
    for f in result.failures:
        log.warning("%s example: %s missing (%s: %s)", e.source, f.modality, f.error_type, f.message)
    return result.tokens


def clip_tokens(e: Example, featurizer: Featurizer, modalities: Sequence[str]) -> dict[str, np.ndarray]:
    """A labelled clip from a studio manifest: decoded by the pipeline's own pass (a seek, then its frame
    sampling and 16 kHz audio) and featurized as the pipeline featurizes a clip. A clip that cannot be
    decoded keeps its line only, and without a line read is unreadable (NoMedia: before 2026-12-06 it was scored from
    no input); a modality that fails is missing (both logged)."""
    from transforms.decode import DecodeConfig, decode_clip
    try:
        decoded = decode_clip(e.video, e.start_s, e.end_s, DecodeConfig(image_size=featurizer.encoders.spec.image_size),
                              text=e.text, context=e.context, on_grid=e.on_grid)  # the run's frames
        clip = ClipMedia.of(decoded)
    except Exception as exc:  # noqa: BLE001 - one bad clip loses its media, not the data set
        if not (e.text or "").strip():
            raise NoMedia(f"{e.video} [{e.start_s:.2f}, {e.end_s:.2f}) not decoded ({type(exc).__name__}: {exc}) "
                          "and no line read") from exc
        log.warning("%s [%.2f, %.2f): not decoded (%s: %s); its line only", e.video, e.start_s, e.end_s,
                    type(exc).__name__, exc)
        clip = ClipMedia(frames=np.zeros((0, 1, 1, 3), np.uint8), audio=np.zeros(0, np.float32), text=e.text,
                         context=tuple(e.context))
        modalities = [m for m in modalities if m == "text"]
    result = Featurizer(featurizer.encoders, modalities).clip(clip)
    for f in result.failures:
        log.warning("%s [%.2f, %.2f): %s missing (%s: %s)", e.video, e.start_s, e.end_s, f.modality, f.error_type,
                    f.message)
    return result.tokens


def feature_dims(encoders) -> dict[str, int]:
    """The input widths the head is built for (the featurizer's token widths); the ViT is not loaded just for
    its width."""
    featurizer = Featurizer(encoders)
    vision = encoders.vision.dim if encoders.loaded("vision") or encoders.spec.vision_model else VISION_DIM
    return {"text": featurizer.dim("text"), "vision": int(vision), "face": featurizer.dim("face"),
            "audio": featurizer.dim("audio")}
