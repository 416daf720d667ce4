"""pipeline.rescore's head step: RunInference over stored tokens (features table -> score columns).

Kept apart from transforms/fuse.py because Beam's RunInference imports torch: the main pipeline's driver process
imports transforms.fuse and needs no model (2 s less start-up, while the second core waits for the workers).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, RunInference

from transforms.fuse import load_head_model, score_tokens


@dataclasses.dataclass
class _HeadModels:
    """What HeadHandler loads (a class, not a tuple: Beam's Shared keeps a weak reference to it)."""
    head: Any
    featurizer: Any


class HeadHandler(ModelHandler[tuple[Mapping[str, np.ndarray], str], tuple[str, Any], Any]):
    """(tokens, film_path) -> (film_path, score-column dict or Failure)."""

    def __init__(self, head: Optional[str], model_version: str, device: str = "cpu", batch_size: int = 64,
                 torch_threads: int = 1, vision_model: Optional[str] = None, image_size: int = 224):
        super().__init__(min_batch_size=batch_size, max_batch_size=batch_size)
        self.head, self.model_version, self.device, self.torch_threads = head, model_version, device, torch_threads
        self.vision_model, self.image_size = vision_model, image_size  # which ViT the stored tokens are of

    def load_model(self):
        """The head, and a featurizer for the evidence the stored tokens give (only the scene head loads)."""
        from model.encoders import EncoderSpec, create_encoders
        from model.featurize import Featurizer
        from model.precision import configure_threads
        configure_threads(self.device, self.torch_threads)
        spec = EncoderSpec(head=self.head, vision_model=self.vision_model, image_size=self.image_size)
        return _HeadModels(load_head_model(self.head, self.device), Featurizer(create_encoders(spec)))

    def run_inference(self, batch: Sequence[tuple[Mapping[str, np.ndarray], str]], model,
                      inference_args: Optional[dict] = None) -> list:
        head, featurizer = model.head, model.featurizer
        # tokens stored before 2026-12-07 still hold the views of cards and blank frames: read as a run reads them
        tokens, paths = [featurizer.pictures_only(t) for t, _ in batch], [p for _, p in batch]
        evidence = [featurizer.evidence(t) for t in tokens]
        return list(zip(paths, score_tokens(head, tokens, self.model_version, self.device, evidence)))

    def get_num_bytes(self, batch) -> int:
        return int(sum(a.nbytes for t, _ in batch for a in t.values()))

    def get_metrics_namespace(self) -> str:
        return "film_emotion_head"


class FuseClips(beam.PTransform):
    """PCollection[(key, (tokens, film_path))] -> PCollection[(key, (film_path, score dict | Failure))]."""

    def __init__(self, head: Optional[str], model_version: str, device: str = "cpu", batch_size: int = 64,
                 torch_threads: int = 1, accelerator: Optional[str] = None, vision_model: Optional[str] = None,
                 image_size: int = 224):
        super().__init__()
        self.handler = HeadHandler(head, model_version, device, batch_size, torch_threads, vision_model, image_size)
        self.accelerator = accelerator

    def expand(self, keyed_tokens):
        step = RunInference(KeyedModelHandler(self.handler))
        if self.accelerator:
            step = step.with_resource_hints(accelerator=self.accelerator)
        return keyed_tokens | "Head" >> step
