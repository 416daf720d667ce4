"""Fine-tuning the top layers of the text encoder together with the head, cheaply.

The lower BERT layers stay frozen, so their output is computed once and cached; only the top K layers run
during training. The trained layers ship inside the head checkpoint as meta['text_encoder_overrides'] (a
partial BertModel state dict), which TextEncoder.apply_overrides loads, so at inference the full encoder
with the fine-tuned top gives exactly the tokens the head was trained on.
"""
from __future__ import annotations

import copy

import numpy as np
from typing import Mapping

import torch
from torch import Tensor, nn

from model.bvpec import BVPEC, BVPECOutput
from model.precision import autocast


class TextTop(nn.Module):
    """The top `k` layers of a BertModel, applied to cached hidden states of layer n_layers - k."""

    def __init__(self, bert_model: nn.Module, k: int):
        super().__init__()
        layers = bert_model.encoder.layer
        if not 0 < k <= len(layers):
            raise ValueError(f"k must be in 1..{len(layers)}")
        self.first = len(layers) - k
        self.layers = nn.ModuleList(copy.deepcopy(layers[self.first:]))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        # BERT's additive mask: 0 for tokens, a large negative for padding ([B, 1, 1, L]).
        ext = (~mask)[:, None, None, :].to(x.dtype) * torch.finfo(x.dtype).min
        for layer in self.layers:
            out = layer(x, attention_mask=ext)
            x = out[0] if isinstance(out, tuple) else out
        return x * mask.unsqueeze(-1).to(x.dtype)

    def overrides(self) -> dict[str, Tensor]:
        """This module's weights under BertModel's own state-dict names."""
        return {f"encoder.layer.{self.first + int(name.split('.', 1)[0])}.{name.split('.', 1)[1]}": t.detach().clone()
                for name, t in self.layers.state_dict().items()}


class TunedTextHead(nn.Module):
    """TextTop feeding the BVPEC head: what trains when --finetune_text_layers > 0. inputs['text'] holds
    the whole pair sequence entering the top layers and inputs['text_line_len'] how many leading positions
    are the line; after the top layers only the line's positions go on, as TextEncoder.encode returns them."""

    def __init__(self, top: TextTop, head: BVPEC):
        super().__init__()
        self.top, self.head = top, head
        self.config = head.config

    @property
    def temperature(self) -> float:  # the head's calibration (model.predict.calibrated_probs reads it)
        return float(getattr(self.head, "temperature", 1.0))

    def forward(self, inputs: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> BVPECOutput:
        inputs, masks = dict(inputs), dict(masks)
        x = self.top(inputs["text"], masks["text"])
        line_len = inputs.get("text_line_len")
        if line_len is not None:
            pos = torch.arange(x.shape[1], device=x.device)
            masks["text"] = masks["text"] & (pos[None, :] < line_len[:, None])
            x = x * masks["text"].unsqueeze(-1).to(x.dtype)
        inputs["text"] = x
        return self.head(inputs, masks)


@torch.inference_mode()
def encode_lower(text_encoder, texts: list[str], contexts: list | None, k: int, max_length: int = 96,
                 batch_size: int = 64) -> list[tuple[np.ndarray, int]]:
    """For each line: the hidden states entering the top k layers for the WHOLE pair sequence
    ([CLS] line [SEP] context [SEP]: the top layers attend over the context too) and the number of leading
    positions that are the line. Tokenisation is the encoder's own, so training sees what inference sees."""
    model = text_encoder.model
    n_layers = len(model.encoder.layer)
    encs = [text_encoder._tokenize(t, contexts[i] if contexts else None, max_length) for i, t in enumerate(texts)]
    order = sorted(range(len(encs)), key=lambda i: len(encs[i][0]["input_ids"]))
    out: list = [None] * len(texts)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        inputs = text_encoder.batch_inputs([encs[i][0] for i in idx])
        with autocast(text_encoder.device, text_encoder.precision):
            hs = model(**inputs, output_hidden_states=True).hidden_states[n_layers - k].float().cpu().numpy()
        for row, i in enumerate(idx):
            n = len(encs[i][0]["input_ids"])
            out[i] = (np.ascontiguousarray(hs[row, :n]), encs[i][1])
    return out
