"""Collators: lists of (prompt, completion) ids -> padded or packed tensors, loss on the completion only.

``CausalCollator`` right-pads; ``PackedCollator`` is padding-free: it concatenates a batch into one row and
restarts ``position_ids`` at every example, which transformers turns into a block-diagonal causal mask (no
attention across examples) for SDPA, eager and flash attention alike; ``Seq2SeqCollator`` feeds the prompt
to the encoder and the completion to the decoder. Labels are -100 wherever no loss is wanted (prompt,
padding, the first token of each packed example).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

IGNORE = -100


def _with_ids(batch: dict[str, torch.Tensor], features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    ids = example_ids(features)
    if ids is not None:
        batch["sfm_examples"] = ids  # popped by SfmTrainer.compute_loss before the forward pass
    return batch


def _ids(feature: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(feature["prompt"], dtype=np.int64), np.asarray(feature["completion"], dtype=np.int64)


@dataclass
class CausalCollator:
    """Right-padded batches for decoder-only models.

    Args:
        pad_id: Padding id (masked from attention and loss).
        bos_id: Prepended to every example when the backbone uses a BOS token.
        pad_to_multiple_of: Round the padded length up (tensor-core friendly on GPUs).
    """

    pad_id: int
    bos_id: int | None = None
    pad_to_multiple_of: int | None = 8

    def sequences(self, features: list[dict[str, Any]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(input ids, labels) per example."""
        out = []
        bos = [] if self.bos_id is None else [self.bos_id]
        for f in features:
            p, c = _ids(f)
            ids = np.concatenate([bos, p, c]).astype(np.int64)
            labels = np.concatenate([np.full(len(bos) + p.size, IGNORE), c]).astype(np.int64)
            out.append((ids, labels))
        return out

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        seqs = self.sequences(features)
        n = max(s[0].size for s in seqs)
        if self.pad_to_multiple_of:
            n = -(-n // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = np.full((len(seqs), n), self.pad_id, dtype=np.int64)
        labels = np.full((len(seqs), n), IGNORE, dtype=np.int64)
        mask = np.zeros((len(seqs), n), dtype=np.int64)
        for i, (ids, lab) in enumerate(seqs):
            input_ids[i, : ids.size] = ids
            labels[i, : ids.size] = lab
            mask[i, : ids.size] = 1
        return _with_ids(
            {
                "input_ids": torch.from_numpy(input_ids),
                "attention_mask": torch.from_numpy(mask),
                "labels": torch.from_numpy(labels),
            },
            features,
        )


@dataclass
class PackedCollator(CausalCollator):
    """Padding-free batches: one row holding every example, ``position_ids`` restarting per example."""

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        seqs = self.sequences(features)
        ids = np.concatenate([s[0] for s in seqs])
        labels = []
        for s in seqs:
            lab = s[1].copy()
            lab[0] = IGNORE  # never predict an example's first token from the previous example
            labels.append(lab)
        pos = np.concatenate([np.arange(s[0].size) for s in seqs])
        return _with_ids(
            {
                "input_ids": torch.from_numpy(ids[None]),
                "labels": torch.from_numpy(np.concatenate(labels)[None]),
                "position_ids": torch.from_numpy(pos[None]),
            },
            features,
        )


@dataclass
class Seq2SeqCollator:
    """Encoder-decoder batches: prompt -> encoder, completion -> decoder labels (shifted by the model)."""

    pad_id: int
    pad_to_multiple_of: int | None = 8

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        pairs = [_ids(f) for f in features]
        n_in = max(p.size for p, _ in pairs)
        n_out = max(c.size for _, c in pairs)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            n_in, n_out = -(-n_in // m) * m, -(-n_out // m) * m
        input_ids = np.full((len(pairs), n_in), self.pad_id, dtype=np.int64)
        mask = np.zeros_like(input_ids)
        labels = np.full((len(pairs), n_out), IGNORE, dtype=np.int64)
        for i, (p, c) in enumerate(pairs):
            input_ids[i, : p.size] = p
            mask[i, : p.size] = 1
            labels[i, : c.size] = c
        return _with_ids(
            {
                "input_ids": torch.from_numpy(input_ids),
                "attention_mask": torch.from_numpy(mask),
                "labels": torch.from_numpy(labels),
            },
            features,
        )


def example_ids(features: list[dict[str, Any]]) -> torch.Tensor | None:
    """``[B, 2]`` (trajectory, start) of a batch, so a failing batch can be named; None if unknown."""
    if not features or "trajectory" not in features[0]:
        return None
    return torch.tensor([[int(f["trajectory"]), int(f.get("start", 0))] for f in features], dtype=torch.long)


def make_collator(*, seq2seq: bool, packing: bool, pad_id: int, bos_id: int | None) -> Any:
    """The collator for a backbone kind and packing choice."""
    if seq2seq:
        return Seq2SeqCollator(pad_id=pad_id)
    if packing:
        return PackedCollator(pad_id=pad_id, bos_id=bos_id)
    return CausalCollator(pad_id=pad_id, bos_id=bos_id)
