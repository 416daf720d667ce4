"""Scoring a film's clips inside the per-film step: featurizer (model/featurize.py) -> BVPEC head.

    scorer = make_scorer(opts)        # opts: FilmEmotionOptions (or any object with the option names)
    scorer.model_version              # 'bvpec-<hash>': head bytes + encoder versions, from files (no model built)
    scorer.load()                     # once per worker process (its first film): encoders + head, shared
    results = scorer.score(clips)     # list[DecodedClip] of one film -> list[ClipResult], batched

Models load once per worker process (one copy shared by the threads of a process through
model.encoders.create_encoders); CPU workers use --torch_threads intra-op threads each. Failures are values:
a modality that fails for a clip is missing from its tokens and reported; a head failure leaves null scores.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Optional, Sequence

from model.encoders import EncoderSpec, encoder_version
from model.encoders.versions import TEXT_LANGUAGES
from model.featurize import MODALITIES, SECONDS, ClipMedia, Failure, Featurized, Featurizer, parse_modalities
from transforms.fuse import load_head_model, score_tokens
from transforms.language import parse_text_languages, unread_languages

DEFAULT_ACCELERATOR = "type:nvidia-tesla-t4;count:1;install-nvidia-driver"


@dataclasses.dataclass(frozen=True)
class ScoreConfig:
    """The scoring options, as a small picklable value (workers get a copy)."""
    device: str = "cpu"
    batch_size: int = 32
    torch_threads: int = 1  # per worker process on CPU: avoids oversubscribing cores across processes
    text_model: Optional[str] = None
    vision_model: Optional[str] = None
    image_size: int = 224
    head: Optional[str] = None  # the head checkpoint can carry fine-tuned text and face encoder weights
    accelerator: Optional[str] = None  # Beam resource hint for the scoring step
    precision: str = "auto"  # encoders' number format (model.precision): bf16 where the hardware has it
    vision_runtime: str = "auto"  # the ViT's runtime (model.encoders.openvino_runtime): OpenVINO on CPU when installed
    text_runtime: str = "auto"  # the text encoder's runtime, likewise
    write_features: bool = False
    modalities: tuple[str, ...] = MODALITIES  # what is encoded and fused (--modalities)
    text_languages: tuple[str, ...] = TEXT_LANGUAGES  # lines in other languages are not read; () = any

    @classmethod
    def from_options(cls, opts: Any) -> "ScoreConfig":
        """From FilmEmotionOptions (or any object/namespace with these attribute names)."""
        if hasattr(opts, "get_all_options"):
            values = opts.get_all_options(retain_unknown_options=True)
        else:
            values = {f.name: getattr(opts, f.name) for f in dataclasses.fields(cls) if hasattr(opts, f.name)}
        kw = {f.name: values[f.name] for f in dataclasses.fields(cls) if values.get(f.name) is not None}
        kw["modalities"] = parse_modalities(kw.get("modalities"))
        if "text_languages" in kw:
            kw["text_languages"] = parse_text_languages(kw["text_languages"])
        if kw.get("device") == "cuda" and not kw.get("accelerator"):
            kw["accelerator"] = DEFAULT_ACCELERATOR
        return cls(**kw)

    @property
    def encoder_spec(self) -> EncoderSpec:
        return EncoderSpec(head=self.head, text_model=self.text_model, vision_model=self.vision_model,
                           image_size=self.image_size, device=self.device, precision=self.precision,
                           vision_runtime=self.vision_runtime, text_runtime=self.text_runtime)


@dataclasses.dataclass
class ClipResult:
    """One clip after scoring: its tokens, the modalities that failed, and its score columns (None when the
    head failed for it, with `head_failure` saying why)."""
    tokens: dict
    failures: tuple[Failure, ...]
    scores: Optional[dict]
    head_failure: Optional[Failure] = None
    unread_language: Optional[str] = None  # the clip's line was not read: its language is not one the text path learnt


class FilmScorer:
    """Featurizer + head for the clips of one film at a time (see the module doc)."""

    def __init__(self, cfg: ScoreConfig):
        self.cfg = cfg
        self._featurizer: Optional[Featurizer] = None
        self._head = None

    @functools.cached_property
    def encoder_version(self) -> str:
        return encoder_version(self.cfg.encoder_spec)

    @functools.cached_property
    def model_version(self) -> str:
        from model.encoders.versions import model_version
        return model_version(self.cfg.head, self.encoder_version, self.cfg.modalities, self.cfg.text_languages)

    def __getstate__(self):  # workers load their own models
        return {"cfg": self.cfg, "_featurizer": None, "_head": None,
                **{k: self.__dict__[k] for k in ("encoder_version", "model_version") if k in self.__dict__}}

    def load(self) -> "FilmScorer":
        if self._featurizer is None:
            from model.checkpoints import unlearnt_modalities_problem
            # the launch asks this of a local --head; one on gs:// or s3:// (a cluster's) is read first here, so a
            # head that learnt no audio fails its films with this line rather than scoring audio without a word
            problem = unlearnt_modalities_problem(self.cfg.head, self.cfg.modalities)
            if problem:
                raise ValueError(problem)
            from model.encoders import create_encoders
            from model.precision import configure_threads
            configure_threads(self.cfg.device, self.cfg.torch_threads)
            self._featurizer = Featurizer(create_encoders(self.cfg.encoder_spec), self.cfg.modalities)
            self._featurizer.load()  # every encoder now, before the film's first batch
            self._head = load_head_model(self.cfg.head, self.cfg.device)
        return self

    def featurize(self, clips: Sequence) -> tuple[list[Featurized], list[Optional[str]]]:
        """DecodedClips -> their tokens as the run reads them (one featurizer batch, no head) and, per clip, the
        language of a line not read (None: read or no line). A line in a language the text path did not learn is
        not read (transforms.language.unread_languages, the rule the labelled-data path reads by too): the clip
        goes on without it. pipeline.report --explain encodes a clip here when the run wrote no features."""
        self.load()
        unread = unread_languages([(c.spec.text, c.spec.language) for c in clips], self.cfg.text_languages)
        media = [ClipMedia.of(c) if lang is None else dataclasses.replace(ClipMedia.of(c), text=None, context=())
                 for c, lang in zip(clips, unread)]
        return self._featurizer.clips(media), unread

    def score(self, clips: Sequence) -> list[ClipResult]:
        """DecodedClips -> ClipResults in the same order, in one featurizer batch (featurize) and one head
        batch."""
        feats, unread = self.featurize(clips)
        t0 = time.perf_counter()
        tokens = [f.tokens for f in feats]
        evidence = [self._featurizer.evidence(t) for t in tokens]
        scored = score_tokens(self._head, tokens, self.model_version, self.cfg.device, evidence)
        SECONDS["head"] += time.perf_counter() - t0
        return [ClipResult(f.tokens, f.failures, None if isinstance(s, Failure) else s,
                           s if isinstance(s, Failure) else None, lang)
                for f, s, lang in zip(feats, scored, unread)]


def make_scorer(opts: Any) -> FilmScorer:
    """opts: FilmEmotionOptions (reads device, batch_size, torch_threads, text_model, vision_model, image_size,
    head, accelerator, precision, write_features; absent ones take their defaults)."""
    return FilmScorer(ScoreConfig.from_options(opts))

