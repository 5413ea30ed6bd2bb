"""Put a field codec's tokens into any Hugging Face tokenizer and model.

:class:`ScienceTokenizer` pairs a backbone tokenizer with a :class:`~sfm.tokenize.fields.FieldCodec` and maps
the codec's local ids onto backbone ids with one lookup array (so encoding a field is numpy indexing, not
string handling). Encodings that add tokens (bins, sme) and the structural tokens are added to the tokenizer;
the ``digits`` encoding reuses the single-character tokens every backbone already has.

The codec's configuration is written beside the tokenizer as ``sfm_encoding.json`` and read back by
:meth:`ScienceTokenizer.load`, so evaluation decodes exactly as training encoded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

import sfm
from sfm.errors import ConfigError, DataError
from sfm.tokenize.fields import FieldCodec

CONFIG_FILE = "sfm_encoding.json"


class ScienceTokenizer:
    """A backbone tokenizer plus a field codec and the local -> backbone id map.

    Build with :meth:`extend` (adds tokens) or :meth:`load` (from a saved folder).
    """

    def __init__(self, tokenizer: Any, codec: FieldCodec, local_to_global: np.ndarray, new_ids: list[int]) -> None:
        self.tokenizer = tokenizer
        self.codec = codec
        self.local_to_global = np.asarray(local_to_global, dtype=np.int64)
        self.new_token_ids = list(new_ids)
        size = max(len(tokenizer), int(self.local_to_global.max()) + 1)
        self._global_to_local = np.full(size, -1, dtype=np.int64)
        self._global_to_local[self.local_to_global] = np.arange(self.local_to_global.size)

    # ---- construction ---------------------------------------------------------------------------------------
    @classmethod
    def extend(cls, tokenizer: Any, codec: FieldCodec) -> ScienceTokenizer:
        """Add the codec's tokens to ``tokenizer`` (in place) and return the pair.

        Added tokens are plain (non-special) tokens with ``normalized=False``, so SentencePiece and byte-level
        tokenizers alike keep them verbatim. Tokens the vocabulary already has are reused.
        """
        from tokenizers import AddedToken

        native = set() if codec.encoding.adds_tokens else set(codec.encoding.tokens)
        vocab = tokenizer.get_vocab()
        missing = [t for t in codec.tokens if t not in native and t not in vocab]
        if missing:
            tokenizer.add_tokens([AddedToken(t, normalized=False, single_word=False) for t in missing])
        if tokenizer.pad_token is None:
            # Causal LMs often lack a pad token; the EOS token pads (masked out of the loss and attention).
            tokenizer.pad_token = tokenizer.eos_token
        mapping = np.array([_token_id(tokenizer, t, native=t in native) for t in codec.tokens], dtype=np.int64)
        new_ids = [int(i) for i in tokenizer.convert_tokens_to_ids(missing)] if missing else []
        return cls(tokenizer, codec, mapping, new_ids)

    @classmethod
    def load(cls, folder: str | Path, *, trust_remote_code: bool = False) -> ScienceTokenizer:
        """Load the tokenizer and codec saved by :meth:`save` (or by a training run) from ``folder``."""
        from transformers import AutoTokenizer

        folder = Path(folder)
        cfg_path = folder / CONFIG_FILE
        if not cfg_path.is_file():
            raise DataError(f"{folder}: no {CONFIG_FILE}; not a tokenizer saved by sfm")
        cfg = json.loads(cfg_path.read_text())
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
        codec = FieldCodec.from_config(cfg["codec"])
        native = set() if codec.encoding.adds_tokens else set(codec.encoding.tokens)
        mapping = np.array([_token_id(tokenizer, t, native=t in native) for t in codec.tokens], dtype=np.int64)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return cls(tokenizer, codec, mapping, cfg.get("new_token_ids", []))

    def save(self, folder: str | Path) -> None:
        """Save the tokenizer and ``sfm_encoding.json`` into ``folder``."""
        folder = Path(folder)
        self.tokenizer.save_pretrained(folder)
        cfg = {
            "sfm_version": sfm.__version__,
            "codec": self.codec.config(),
            "new_token_ids": self.new_token_ids,
            "vocab_size": len(self.tokenizer),
        }
        (folder / CONFIG_FILE).write_text(json.dumps(cfg, indent=2) + "\n")

    # ---- ids ----------------------------------------------------------------------------------------------
    def to_global(self, local: np.ndarray) -> np.ndarray:
        """Local codec ids -> backbone ids."""
        return self.local_to_global[np.asarray(local, dtype=np.int64)]

    def to_local(self, ids: np.ndarray) -> np.ndarray:
        """Backbone ids -> local codec ids; ids outside the codec map to -1 (decoded as invalid)."""
        ids = np.asarray(ids, dtype=np.int64)
        inside = (ids >= 0) & (ids < self._global_to_local.size)
        return np.where(inside, self._global_to_local[np.where(inside, ids, 0)], -1)

    def text(self, text: str) -> list[int]:
        """Backbone ids of plain text, without special tokens."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def bos_id(self) -> int | None:
        return self.tokenizer.bos_token_id

    @property
    def eos_id(self) -> int:
        return int(self.tokenizer.eos_token_id)

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    def __len__(self) -> int:
        return len(self.tokenizer)


def _token_id(tokenizer: Any, token: str, *, native: bool) -> int:
    """The backbone id of ``token``; for native characters fall back to tokenizing the bare character."""
    tid = tokenizer.convert_tokens_to_ids(token)
    unk = tokenizer.unk_token_id
    if tid is not None and (unk is None or tid != unk or token == tokenizer.unk_token):
        return int(tid)
    if native:
        ids = tokenizer(token, add_special_tokens=False)["input_ids"]
        # SentencePiece may prefix a word-boundary piece ("▁", "3"): take the character's own piece.
        if len(ids) == 2 and tokenizer.convert_ids_to_tokens(ids[0]) in ("▁", "Ġ", " "):
            ids = ids[1:]
        if len(ids) == 1:
            return int(ids[0])
    raise ConfigError(f"the backbone tokenizer has no single token for {token!r}; use an encoding that adds tokens")


def resize_embeddings(model: Any, sci: ScienceTokenizer, *, init: str = "mean") -> None:
    """Resize ``model``'s embeddings to the tokenizer and initialize the rows of the added tokens.

    ``init="mean"``: each new row is drawn from a normal with the mean and covariance of the existing rows
    (Hewitt 2021; transformers' ``mean_resizing``), so new tokens start where the model expects a token to be.
    ``init="ordinal"`` additionally places ordered number tokens (bins) along one random direction in order of
    their value, so neighbouring bins start close and the model begins with a sense of magnitude.
    """
    if init not in ("mean", "ordinal"):
        raise ConfigError(f"embedding init must be 'mean' or 'ordinal', got {init!r}")
    import torch

    old = model.get_input_embeddings().weight.shape[0]
    if len(sci) > old:
        model.resize_token_embeddings(len(sci), mean_resizing=True)
    if init == "ordinal" and sci.codec.encoding.name == "bins":
        enc = sci.codec.encoding
        ids = torch.as_tensor(sci.local_to_global[: enc.n_bins])  # type: ignore[attr-defined]
        pos = torch.as_tensor(np.linspace(-1.0, 1.0, enc.n_bins), dtype=torch.float32)  # type: ignore[attr-defined]
        gen = torch.Generator().manual_seed(0)
        for emb in {model.get_input_embeddings(), model.get_output_embeddings()} - {None}:
            w = emb.weight
            with torch.no_grad():
                direction = torch.randn(w.shape[1], generator=gen)
                direction *= w[:old].norm(dim=1).mean() / direction.norm()
                w[ids] = w[:old].mean(dim=0) + pos[:, None].to(w.dtype) * direction.to(w.dtype)
