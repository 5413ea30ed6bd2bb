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
from sfm.errors import ConfigError, DataError, SfmError
from sfm.tokenize.fields import FieldCodec

CONFIG_FILE = "sfm_encoding.json"


class ScienceTokenizer:
    """A backbone tokenizer plus a field codec and the local -> backbone id map.

    Build with :meth:`extend` (adds tokens) or :meth:`load` (from a saved folder).
    """

    def __init__(
        self, tokenizer: Any, codec: FieldCodec, local_to_global: np.ndarray, new_ids: list[int]
    ) -> None:
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
        tokenizers alike keep them verbatim. Tokens the vocabulary already has are reused, and so are the
        single characters of a native encoding (``digits``); a character the backbone has no token of is
        added like any other.

        Raises:
            ConfigError: a codec token still has no id after adding it.
        """
        from tokenizers import AddedToken

        native = set() if codec.encoding.adds_tokens else set(codec.encoding.tokens)
        found = {t: _token_id(tokenizer, t, native=t in native) for t in codec.tokens}
        missing = [t for t in codec.tokens if found[t] is None]
        if missing:
            tokenizer.add_tokens([AddedToken(t, normalized=False, single_word=False) for t in missing])
        if tokenizer.pad_token is None:
            # Causal LMs often lack a pad token; the EOS token pads (masked out of the loss and attention).
            tokenizer.pad_token = tokenizer.eos_token
        mapping = _mapping(tokenizer, codec)
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
        if len(tokenizer) != cfg.get("vocab_size", len(tokenizer)):
            raise DataError(
                f"{folder}: the tokenizer has {len(tokenizer)} tokens but {CONFIG_FILE} was saved with "
                f"{cfg['vocab_size']}; the two files do not belong together"
            )
        mapping = _mapping(tokenizer, codec)
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
        """Local codec ids -> backbone ids.

        Raises:
            SfmError: an id outside the codec (``-1`` from :meth:`to_local` included), rather than wrapping.
        """
        local = np.asarray(local, dtype=np.int64)
        if local.size and (local.min() < 0 or local.max() >= self.local_to_global.size):
            raise SfmError(
                f"local ids must lie in [0, {self.local_to_global.size}), got {local.min()}..{local.max()}"
            )
        return self.local_to_global[local]

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


def _token_id(tokenizer: Any, token: str, *, native: bool) -> int | None:
    """The backbone id of ``token``, or None; for native characters also the id of the bare character."""
    unk = tokenizer.unk_token_id
    tid = tokenizer.convert_tokens_to_ids(token)
    if tid is not None and (unk is None or tid != unk or token == tokenizer.unk_token):
        return int(tid)
    if native:
        ids = tokenizer(token, add_special_tokens=False)["input_ids"]
        # SentencePiece may prefix a word-boundary piece ("▁", "3"): take the character's own piece.
        if len(ids) == 2 and tokenizer.convert_ids_to_tokens(ids[0]) in ("▁", "Ġ", " "):
            ids = ids[1:]
        if len(ids) == 1 and ids[0] != unk:
            return int(ids[0])
    return None


def _mapping(tokenizer: Any, codec: FieldCodec) -> np.ndarray:
    """Local -> backbone ids of every codec token (after any were added)."""
    native = set() if codec.encoding.adds_tokens else set(codec.encoding.tokens)
    ids = [_token_id(tokenizer, t, native=t in native) for t in codec.tokens]
    lost = [t for t, i in zip(codec.tokens, ids) if i is None]
    if lost:
        raise ConfigError(
            f"the backbone tokenizer has no single token for {lost[:5]}; use an encoding that adds tokens"
        )
    if len(set(ids)) != len(ids):
        raise ConfigError("two codec tokens map to the same backbone token; use an encoding that adds tokens")
    return np.array(ids, dtype=np.int64)


def _embedding_weights(model: Any) -> list[Any]:
    """The input embedding and output head weights, in that order, once each (tied models share one)."""
    out: list[Any] = []
    for emb in (model.get_input_embeddings(), model.get_output_embeddings()):
        if emb is not None and all(emb.weight is not w for w in out):
            out.append(emb.weight)
    return out


def resize_embeddings(
    model: Any, sci: ScienceTokenizer, *, init: str = "mean", pretrained: bool = True
) -> None:
    """Resize ``model``'s embeddings to the tokenizer and initialize the rows of the added tokens.

    ``init="mean"``: new rows start at the mean of the existing rows (Hewitt 2021; transformers'
    ``mean_resizing`` draws them from a normal around the mean with 1e-9 times the rows' covariance), so new
    tokens start where the model expects a token to be. Added tokens whose ids fall inside an embedding that
    is larger than the extended tokenizer (T5 pads its vocabulary to 32128 rows) get the mean of the other
    rows instead of the unused rows they inherit; a model built for the extended tokenizer (a tiny backbone,
    as many rows as tokens) keeps its own initialization. ``init="ordinal"`` additionally places ordered number tokens (bins) along one
    random direction (seeded) in order of their value, so neighbouring bins start close and the model begins
    with a sense of magnitude.
    """
    if init not in ("mean", "ordinal"):
        raise ConfigError(f"embedding init must be 'mean' or 'ordinal', got {init!r}")
    import torch

    old = model.get_input_embeddings().weight.shape[0]
    if len(sci) > old:
        model.resize_token_embeddings(len(sci), mean_resizing=True)
    # Added ids below the old row count landed in a pretrained embedding's padding rows (T5 pads to 32,128,
    # Qwen2.5 to 152,064 rows): unused rows, so they start at the mean too. A model built for the extended
    # tokenizer (pretrained=False: a tiny backbone) keeps its own initialization.
    inside = [i for i in sci.new_token_ids if i < old] if pretrained else []
    keep = torch.ones(old, dtype=torch.bool)
    keep[inside] = False
    weights = _embedding_weights(model)
    with torch.no_grad():
        for w in weights:
            if inside:
                w[inside] = w[:old][keep].mean(dim=0)
    if init == "ordinal" and sci.codec.encoding.name == "bins":
        enc = sci.codec.encoding
        ids = torch.as_tensor(sci.local_to_global[: enc.n_bins])  # type: ignore[attr-defined]
        pos = torch.as_tensor(np.linspace(-1.0, 1.0, enc.n_bins), dtype=torch.float32)  # type: ignore[attr-defined]
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for w in weights:
                direction = torch.randn(w.shape[1], generator=gen)
                direction *= w[:old][keep].norm(dim=1).mean() / direction.norm()
                mean = w[:old][keep].mean(dim=0)
                w[ids] = (mean + pos[:, None] * direction).to(w.dtype)
