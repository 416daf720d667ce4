"""`--explain FILM_ID:CLIP_INDEX`: why the head said what it said about one clip.

Runs the BVPEC head on that clip's tokens and draws its text-query cross-modal attention (text tokens x
vision / face / audio tokens, heads averaged) and modality gates: the paper's attention-map figure, with
the frames and words the rows and columns belong to. Tokens come from the features table when the run
wrote one (exactly what the head saw); otherwise the clip is decoded again by the pipeline's own decoder
(`transforms.decode.decode_clip`) and encoded by the run's own scorer (`transforms.score.FilmScorer.featurize`: the
one featurizer, the head's encoders with its tuned text and face weights, the modalities and languages read) under
the run's options as the report is given them (pipeline.run's definitions, pipeline.options.add_run_settings). Those
options must give the clip's config hash (pipeline.options.config_hash), else --explain refuses: its figure would be
of tokens the run never read. Either way the head and options must give the clip's model_version (check_model_version):
the figure explains the head that labelled the clip. A clip pipeline.rescore labelled records its first run's config
hash and that run's model_version ('<hash>@<model_version>', pipeline.rescore.rescored_config_hash): the media options
are checked against the first, the head against the clip's own model_version.
"""
from __future__ import annotations

import logging
from typing import Mapping, Optional, Sequence

import numpy as np

from pipeline.report import data as tables
from pipeline.report import frames as stills
from pipeline.report import plots as charts
from pipeline.report.plots import EMOTION_COLORS, fmt_time
from schemas import EMOTIONS
from transforms.fuse import features_row, tokens_from_row

LOG = logging.getLogger(__name__)
FRAME_WIDTH = 160  # the explained clip's frames, shown uncropped at the film's aspect ratio


def text_token_labels(tokenizer, text: Optional[str], n_tokens: int) -> list[str]:
    """Word pieces for the rows of the attention map: the encoder returns the states of [CLS] line [SEP]
    (the context shapes them but is not returned), so tokenising the line alone gives the rows."""
    if not text:
        return ["[query]"] * n_tokens  # no line: the head's learned query token stands in
    if tokenizer is None:
        return [f"t{i}" for i in range(n_tokens)]
    tokenizer.enable_truncation(max(n_tokens, 2))  # the encoder keeps a long line's start
    labels = [tokenizer.id_to_token(i) for i in tokenizer.encode(text).ids][:n_tokens]
    return labels + [f"t{i}" for i in range(len(labels), n_tokens)]


def column_labels(tokens: Mapping[str, np.ndarray], tokens_per_frame: int, clip_s: float) -> dict[str, list[str]]:
    labels: dict[str, list[str]] = {}
    n_vision = len(tokens["vision"])
    if n_vision and n_vision % tokens_per_frame == 0:
        labels["vision"] = [f"f{i // tokens_per_frame}k{i % tokens_per_frame}" for i in range(n_vision)]
    labels["face"] = [f"face{i}" for i in range(len(tokens["face"]))]
    n_audio = len(tokens["audio"])
    if n_audio == 1:  # the clip's voice: one token, the speech classifier's reading of it
        labels["audio"] = ["voice"]
    elif n_audio:  # features written before 2026-12-01: prosody frames spanning the clip evenly
        labels["audio"] = [f"{clip_s * (i + 0.5) / n_audio:.1f}s" for i in range(n_audio)]
    return labels


def run_head(model, tokens: Mapping[str, np.ndarray], device: str = "cpu") -> dict:
    """One clip through the head: probabilities, gates and per-modality attention [L_text, L_m]."""
    import torch

    from model.batching import collate
    from model.bvpec import MODALITIES as HEAD_MODALITIES
    inputs, masks = collate([dict(tokens)], model.config.input_dims)
    with torch.inference_mode():
        out = model({m: t.to(device) for m, t in inputs.items()}, {m: t.to(device) for m, t in masks.items()})
    n_text = max(1, int(masks["text"][0].sum()))
    attention = {}
    for m, a in out.attention.items():
        n_m = int(masks[m][0].sum())
        attention[m] = a[0].float().mean(0)[:n_text, :n_m].cpu().numpy() if n_m else np.zeros((n_text, 0))
    from model.predict import calibrated_probs
    probs = calibrated_probs(model, out.logits, masks)[0].cpu().numpy()
    gates = {m: float(g) for m, g in zip(HEAD_MODALITIES, out.gates[0].float().cpu().tolist())}
    return {"probs": probs, "gates": gates, "attention": attention}


# Options the run's config hash does not record, though they shape its tokens a little (number format, runtime):
# --explain uses them as given.
UNHASHED_FLAGS = ("--precision", "--vision_runtime", "--text_runtime", "--device")


def run_settings(run_options=None, head: Optional[str] = None, device: str = "cpu"):
    """The run's options as the report is given them ({option destination: value}, or pairs; pipeline.run's defaults
    for the others) with the report's --head and --device: pipeline.options.run_settings."""
    from pipeline.options import run_settings as settings
    return settings(**{**dict(run_options or {}), "head": head, "device": device})


def hash_flags() -> list[str]:
    """The flags whose values the run's config hash records (pipeline.options.config_hash, and the model_version in
    it: the head, the encoders, the modalities and the languages read)."""
    from pipeline.options import ASR_CONFIG_KEYS, MEDIA_CONFIG_KEYS, option_flag
    dests = MEDIA_CONFIG_KEYS + ASR_CONFIG_KEYS + ("reduce_size", "score", "head", "text_model", "vision_model",
                                                   "modalities")
    return list(dict.fromkeys(option_flag(d) for d in dests))


def check_run_settings(row: Mapping, settings) -> Optional[str]:
    """The config hash `settings` give (pipeline.options.config_hash, as pipeline.run computes it), where it is the
    clip's; ReportInputError where it is not; None where the clips table records none (not checked). Then the
    model_version too (check_model_version). A rescored clip ('<hash>@<model_version>') is checked against its first
    run's hash, computed with that run's model_version: before 2026-12-07 the rescoring head could never give it,
    and the first run's head passed and was drawn beside the rescoring head's label."""
    from pipeline.options import config_hash
    from pipeline.report.build import ReportInputError
    from transforms.score import make_scorer
    made = row.get("config_hash")
    media_hash, _, run_version = (made or "").partition("@")
    version = run_version or (make_scorer(settings).model_version if settings.score else None)
    given = config_hash(settings, version)
    if made and given != media_hash and not (run_version and media_hash in rescored_variants(settings, version)):
        raise ReportInputError(
            f"--explain {row['film_id']}:{row['clip_index']}: with no features table of the run to read, the clip is "
            f"encoded again, but the options given to the report give config hash {given}, not the clip's "
            f"{media_hash}{' (its first run, before pipeline.rescore)' if run_version else ''}: "
            "its tokens would not be the ones the run read. Pass pipeline.report the run's options (those the hash "
            f"records: {', '.join(hash_flags())}; and {', '.join(UNHASHED_FLAGS)}, which it does not), or run the "
            "pipeline with --write_features (--explain then reads the run's own tokens). A run made by another "
            "version of the pipeline (its rules are in the hash) needs a new run.")
    check_model_version(row, settings)
    return given if made else None


def rescored_variants(settings, run_version: str) -> set[str]:
    """Config hashes a rescored clip's first run may have had with these media options: a rescore without text
    (--modalities) reads the first run's clips, whose hash records --text_languages as read with text."""
    import argparse

    from model.encoders.versions import TEXT_LANGUAGES
    from pipeline.options import config_hash
    # and a first run whose --text_languages the rescore narrowed ('any' or the default: the hash cannot be undone,
    # so the usual ones are tried)
    languages = dict.fromkeys([settings.text_languages, "any", ",".join(TEXT_LANGUAGES)])
    return {config_hash(argparse.Namespace(**{**vars(settings), "modalities": modalities, "text_languages": lang}),
                        run_version)
            for modalities in (settings.modalities, None) for lang in languages}


def check_model_version(row: Mapping, settings, refuse: bool = True) -> Optional[str]:
    """Where the head and options given (`settings`: --head, the encoder options, --modalities, --text_languages) do
    not give the clip's model_version as pipeline.run or pipeline.rescore computes it, the figure would explain
    another head than the one that labelled the clip: ReportInputError, or (refuse False: a features table holds the
    run's own tokens) that said in one line, returned. Not checked for a clip with none (no label). Before
    2026-12-07 a features table's tokens were drawn through any --head without a word."""
    from pipeline.report.build import ReportInputError
    from transforms.score import make_scorer
    made = row.get("model_version")
    if not made or not settings.score:
        return None
    given = make_scorer(settings).model_version
    if given == made:
        return None
    said = (f"the clip was labelled by model_version {made}, but --head {settings.head or 'the shipped head'} with "
            f"the options given gives {given}")
    how = ("pass the --head that scored it (pipeline.run's, or pipeline.rescore's for a rescored output) with that "
           "run's --modalities, --text_languages and encoder options (--text_model, --vision_model, --image_size)")
    if refuse:
        raise ReportInputError(f"--explain {row['film_id']}:{row['clip_index']}: {said}: {how}.")
    # the version also hashes the label rule and the encoders: a clip labelled before a rule changed matches no head
    return (f"The figure explains the head given, which may not be the one that labelled the clip: {said} (to "
            f"explain that one, {how}; a clip labelled under an older label rule or encoder version matches none: "
            "re-run or rescore its film).")


def encode_clip(row: Mapping, context: Sequence[str], head: Optional[str] = None, device: str = "cpu",
                settings=None, on_grid: bool = False):
    """No features table: decode this clip (transforms.decode.decode_clip) and encode it as the run did, by the run's
    scorer (transforms.score.FilmScorer.featurize: its modalities and the languages it reads, the encoders of the
    head with its tuned text and face weights, its precision and runtimes), under `settings` (the run's options:
    run_settings; None: pipeline.run's defaults with `head` and `device`). The options must give the clip's config
    hash (check_run_settings): otherwise ReportInputError, naming the options to pass.

    Returns (Featurized, Encoders, DecodedClip): tokens per modality and failures of modalities that could not be
    encoded, the encoders, and the decoded clip (its frames are the ones shown)."""
    import dataclasses

    from model.encoders import create_encoders
    from transforms.decode import DecodeConfig, decode_clip
    from transforms.score import FilmScorer, ScoreConfig
    settings = settings if settings is not None else run_settings(head=head, device=device)
    check_run_settings(row, settings)
    cfg = DecodeConfig.from_options(settings)  # the run's frames per clip, frame spacing, image and face sizes
    # the line as the run read it: one in a language the text path does not read (or a run without text) gave no
    # text tokens, and `modalities_used` says so (before 2026-12-06 --explain read such a line anyway)
    read = "text" in (row.get("modalities_used") or ["text"])
    # a clip of a film planned as it played takes the frames of the run's grid (transforms.decode.planned_late)
    decoded = decode_clip(row["film_path"], row["start_s"], row["end_s"], cfg, text=row["text"] if read else None,
                          context=context if read else (), on_grid=on_grid)
    decoded = dataclasses.replace(decoded, spec=dataclasses.replace(decoded.spec, language=row.get("language")))
    scorer = FilmScorer(ScoreConfig.from_options(settings))
    [featurized], _ = scorer.featurize([decoded])
    # as the run's features table would hold them (transforms.fuse.features_row): a modality not read is empty
    tokens = tokens_from_row(features_row(row["film_id"], row["film_path"], row["clip_index"], featurized.tokens, "",
                                          {}))
    return dataclasses.replace(featurized, tokens=tokens), create_encoders(scorer.cfg.encoder_spec), decoded


def clip_frames(row: Mapping, n_frames: int, decoded=None, width: int = FRAME_WIDTH,
                cfg=None, on_grid: bool = False, picture_views=None) -> list[tuple[np.ndarray, float, bool]]:
    """The frames the clip's vision tokens belong to, uncropped at the film's aspect ratio, each with whether the head
    read it: the pipeline's sample times (model.featurize.clip_sample_times) and, of those, its distinct views
    (model.featurize.distinct_views, judged on the square frames the ViT saw), shown from the larger copy at the
    film's aspect the decoder makes for face search (model.featurize.face_view). Views that are no picture (a card,
    a blank frame) have no tokens (model.featurize.Featurizer.pictures_only): `picture_views` (Featurizer's, asked
    only when the views outnumber the tokens' frames) says which, and they are shown as not read. `decoded`: this
    clip already decoded (encode_clip), else it is decoded here with `cfg` (the run's options; None: the defaults).
    Tokens written with other settings (older runs encoded every sampled frame) get n_frames evenly sampled frames.
    Empty when the film cannot be read."""
    from model.featurize import distinct_views, face_view
    from transforms.decode import DecodeConfig, decode_clip
    if n_frames <= 0 and picture_views is None:
        return []
    start, end = row["start_s"], row["end_s"]
    try:
        clip = decoded if decoded is not None else decode_clip(row["film_path"], start, end, cfg or DecodeConfig(),
                                                               on_grid=on_grid)
        views = distinct_views(clip.frames)
        read = np.ones(len(views), bool)
        if len(views) > n_frames and picture_views is not None:
            read = np.asarray(picture_views(np.asarray(clip.frames)[views]), bool)
        if int(read.sum()) == n_frames:
            frames, times = face_view(clip)[views], np.asarray(clip.frame_times)[views]
        elif n_frames <= 0:
            return []
        else:
            clip = decode_clip(row["film_path"], start, end, DecodeConfig(frames_per_clip=n_frames, frame_every_s=0),
                               frame_width=width)
            frames, times, read = clip.frames, clip.frame_times, np.ones(len(clip.frames), bool)
    except Exception as exc:  # noqa: BLE001 - the figure stands without its frames
        LOG.warning("no frames for the explained clip from %s: %s", row["film_path"], exc)
        return []
    return [(f, float(t), bool(r)) for f, t, r in zip(frames, times, read)]


def frame_labels(frames: Sequence[tuple[np.ndarray, float, bool]]) -> list[str]:
    """'f0 @ 1.50s' for the frames the head read (numbered as the figure's columns f0k0, f1k0, ...), 'not read: no
    picture @ 2.50s' for the others."""
    labels, k = [], 0
    for _, t, read in frames:
        labels.append(f"f{k} @ {t:.2f}s" if read else f"not read: no picture @ {t:.2f}s")
        k += read
    return labels


def explain_clip(root: str, film_id: str, clip_index: int, head: Optional[str] = None, device: str = "cpu",
                 tokenizer=None, run_options=None) -> dict:
    """The template context of the explain section (see templates/report.html.j2). run_options: the run's options
    as the report was given them (run_settings), for a film without a features table."""
    from model.checkpoints import load_head
    clips = tables.read_clips(root, film_id).to_pylist()
    by_index = {r["clip_index"]: r for r in clips}
    if clip_index not in by_index:
        from pipeline.report.build import ReportInputError
        raise ReportInputError(f"--explain: {film_id} has no clip {clip_index} (clips 0..{len(clips) - 1})")
    row = by_index[clip_index]
    # the line's context as the run built it: the film's lines in time order (transforms.segment.dialogue_context)
    from transforms.decode import DecodeConfig
    from transforms.segment import context_line, dialogue_context
    in_order = sorted(clips, key=lambda r: (r["start_s"], r["clip_index"]))
    settings = run_settings(run_options, head, device)
    cfg = DecodeConfig.from_options(settings)
    said = [context_line(r["text"], r.get("language"), cfg.text_languages) for r in in_order]  # as the run's
    context = dialogue_context(said, cfg.context_lines)[in_order.index(row)]
    features = tables.read_features(root, film_id, clip_index)
    from transforms.decode import planned_late
    on_grid = planned_late(settings.segment, (r["segment_source"] for r in clips))
    versions: Optional[dict] = None
    decoded = None
    def featurizer():  # the run's (its encoders' picture gate; the scene head alone is built for stored tokens)
        from model.encoders import create_encoders
        from model.featurize import Featurizer
        from transforms.score import ScoreConfig
        return Featurizer(create_encoders(ScoreConfig.from_options(settings).encoder_spec))

    if features is not None:
        other_head = check_model_version(row, settings, refuse=False)
        # read as a run reads tokens: a table written before 2026-12-07 holds the views of cards and blank frames too
        tokens = featurizer().pictures_only(tokens_from_row(features))
        source = f"Tokens read from the features table (encoders {features['encoder_version']})."
        if other_head:
            LOG.warning("--explain %s:%s: %s", film_id, clip_index, other_head)
            source += " " + other_head
        from model.encoders.vision import TOKENS_PER_FRAME as tokens_per_frame
    else:
        featurized, encoders, decoded = encode_clip(row, context, head, device, settings, on_grid)
        tokens, versions = featurized.tokens, dict(encoders.versions)
        tokens_per_frame = encoders.vision.tokens_per_frame
        checked = check_run_settings(row, settings)
        source = ("No features table for this film: the clip was decoded and featurized again with the head's "
                  f"encoders ({encoders.version}), under the run's options ("
                  + (f"config hash {checked}, the clip's" if checked else "the clips table records no config hash: "
                     "not checked") + f"; --precision {settings.precision}, --vision_runtime {settings.vision_runtime}"
                  f", --text_runtime {settings.text_runtime} as given).")
        if featurized.failures:
            source += " Not encoded: " + "; ".join(f.message for f in featurized.failures) + "."
    model, _ = load_head(head, device=device)  # (after the checks: a head refused is not loaded)
    result = run_head(model, tokens, device)

    clip_s = max(row["end_s"] - row["start_s"], 1e-3)
    frames = clip_frames(row, len(tokens["vision"]) // tokens_per_frame, decoded, cfg=cfg, on_grid=on_grid,
                         picture_views=lambda views: featurizer().picture_views(views))  # (asked when some unread)
    if tokenizer is None and row["text"]:
        tokenizer = _tokenizer()
    n_text = next(iter(result["attention"].values())).shape[0] if result["attention"] else 1
    rows = text_token_labels(tokenizer, row["text"], n_text)
    cols = column_labels(tokens, tokens_per_frame, clip_s)
    figure = charts.attention_figure(result["attention"], result["gates"], rows, cols,
                                           title=f"{film_id} clip {clip_index}: text tokens attending to each modality")
    k = int(np.argmax(result["probs"]))
    # The clip's label is the clips table's (the product of its modalities' classifiers where one backs it,
    # model.predict.with_branch_label); the figure explains the head, whose own label is shown beside it.
    emotion = row.get("emotion") or EMOTIONS[k]
    confidence = row.get("confidence") if row.get("emotion") else float(result["probs"][k])
    return {
        "film_id": film_id, "clip_index": clip_index, "text": row["text"], "figure": figure,
        "emotion": emotion, "confidence": float(confidence), "color": EMOTION_COLORS[emotion],
        "head_emotion": EMOTIONS[k], "head_confidence": float(result["probs"][k]),
        "light": emotion in ("joy", "neutral"), "when": f"{fmt_time(row['start_s'])}-{fmt_time(row['end_s'])}",
        "modalities": [m for m, g in result["gates"].items() if g > 0],
        "frames": [{"b64": stills.jpeg_b64(np.asarray(f), FRAME_WIDTH), "label": label}
                   for (f, _, _), label in zip(frames, frame_labels(frames))],
        "gates": result["gates"], "probs": result["probs"], "source": source,
        "tokens": tokens, "encoder_versions": versions,  # for callers and tests; the template shows `source`
        "row": row,  # the clips table's row: build says whether it is grounded and what backs it, as for moments
    }


def _tokenizer():
    """The default text encoder's tokenizer alone (labels need no BERT forward pass)."""
    try:
        from model.encoders.text import load_tokenizer
        return load_tokenizer()
    except Exception as exc:  # noqa: BLE001 - labels fall back to token numbers
        LOG.warning("no tokenizer for attention labels: %s", exc)
        return None
