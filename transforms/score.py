"""The scorer that pipeline.run plugs in after decode: encoders -> head, all inside Beam.

    scorer = make_scorer(opts)           # opts: FilmEmotionOptions (or any object with the option names)
    scorer.model_version                 # 'bvpec-<hash>': head bytes + encoder versions
    out = scorer(decoded_clips)          # PCollection[DecodedClip]
    out['scores']    # ((film_id, clip_index), {emotion, prob_*, confidence, valence, arousal,
                     #                          modalities_used, gate_*, model_version, n_faces})
    out['features']  # features-table row dicts (schemas/features.py); empty unless --write_features
    out['errors']    # FilmError values (stage encode / fuse), one per clip and failed step

The whole chain is one fused stage with decode (no shuffle): decode -> vision+faces -> audio -> text -> head.
The modality features meet by travelling together down that chain, not through a CoGroupByKey, so nothing
per clip is materialised between steps and memory stays flat with film length.
"""
from __future__ import annotations

import functools
from typing import Any

import apache_beam as beam

from transforms.elements import ERRORS_TAG, FilmError
from transforms.encode import ClipWork, EncodeClips, EncodeConfig, encoder_version
from transforms.fuse import FuseClips, ProgressFn, StepFailure, features_row

FEATURES_TAG = "features"


class _SplitEncoded(beam.DoFn):
    """(key, ClipWork) -> main: (key, (tokens, film_path)); errors: a FilmError per failed step; features: a row."""

    def __init__(self, encoder_version: str, write_features: bool):
        self.encoder_version = encoder_version
        self.write_features = write_features

    def process(self, keyed: tuple[tuple[str, int], ClipWork]):
        (film_id, clip_index), work = keyed
        for f in work.failures:
            yield beam.pvalue.TaggedOutput(ERRORS_TAG, FilmError(
                film_path=work.film_path, film_id=film_id, clip_index=clip_index, stage=f.stage,
                error_type=f.error_type, message=f.message, fatal=False))
        if self.write_features:
            yield beam.pvalue.TaggedOutput(FEATURES_TAG, features_row(
                film_id, work.film_path, clip_index, work.tokens, self.encoder_version, {}))
        yield (film_id, clip_index), (dict(work.tokens), work.film_path)


class _SplitScored(beam.DoFn):
    """(key, (film_path, score dict | StepFailure)) -> main: (key, scores); errors: FilmError (the clip
    keeps null scores)."""

    def process(self, keyed):
        key, (film_path, res) = keyed
        if isinstance(res, StepFailure):
            yield beam.pvalue.TaggedOutput(ERRORS_TAG, FilmError(
                film_path=film_path, film_id=key[0], clip_index=key[1], stage=res.stage,
                error_type=res.error_type, message=res.message, fatal=True))
        else:
            yield key, res


class ScoreClips(beam.PTransform):
    def __init__(self, cfg: EncodeConfig, model_version: str, encoder_version: str, write_features: bool):
        super().__init__()
        self.cfg, self.model_version = cfg, model_version
        self.encoder_version, self.write_features = encoder_version, write_features

    def expand(self, clips):
        encoded = (clips
                   | "Encode" >> EncodeClips(self.cfg)
                   | "SplitEncoded" >> beam.ParDo(_SplitEncoded(self.encoder_version, self.write_features))
                   .with_outputs(ERRORS_TAG, FEATURES_TAG, main="tokens"))
        scored = (encoded.tokens
                  | "Fuse" >> FuseClips(self.cfg, self.model_version)
                  | "SplitScored" >> beam.ParDo(_SplitScored()).with_outputs(ERRORS_TAG, main="scores"))
        errors = (encoded[ERRORS_TAG], scored[ERRORS_TAG]) | "ScoreErrors" >> beam.Flatten()
        scores = scored.scores | "Progress" >> beam.ParDo(ProgressFn())
        return {"scores": scores, "features": encoded[FEATURES_TAG], "errors": errors}


class Scorer:
    """Callable: PCollection[DecodedClip] -> {'scores', 'features', 'errors'} (see the module doc)."""

    def __init__(self, cfg: EncodeConfig, write_features: bool = False):
        self.cfg = cfg
        self.write_features = write_features

    @functools.cached_property
    def encoder_version(self) -> str:
        return encoder_version(self.cfg)  # loads the encoders once in this process (cached for workers here)

    @functools.cached_property
    def model_version(self) -> str:
        from model.checkpoints import model_version
        return model_version(self.cfg.head, self.encoder_version)

    def __call__(self, clips):
        return clips | "Score" >> ScoreClips(self.cfg, self.model_version, self.encoder_version,
                                             self.write_features)


def make_scorer(opts: Any) -> Scorer:
    """opts: FilmEmotionOptions (reads device, batch_size, torch_threads, text_model, vision_model, image_size,
    head, accelerator, write_features; absent ones take their defaults)."""
    cfg = EncodeConfig.from_options(opts)
    if hasattr(opts, "get_all_options"):
        write = bool(opts.get_all_options(retain_unknown_options=True).get("write_features"))
    else:
        write = bool(getattr(opts, "write_features", False))
    return Scorer(cfg, write_features=write)
