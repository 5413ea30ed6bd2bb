"""Collators: lists of (prompt, completion) ids -> batches, loss on the completion only.

The recipe's ``training.batching`` picks one (:data:`BATCHING`):

- ``padding`` (:class:`CausalCollator`): right-padded rows, one example each.
- ``group_by_length``: the same rows, but the Trainer's sampler draws examples of similar length together
  (``LengthGroupedSampler``), so rows carry little padding; the order of examples is no longer uniformly random.
- ``packing`` (:class:`PackedCollator`): the batch's examples bin-packed (first-fit decreasing) into as few rows
  as hold them, each row as long as the batch's longest example; ``position_ids`` restart at every example.
- ``flatten`` (:class:`FlatCollator`): the whole batch in one row with restarting ``position_ids`` -- the layout
  of transformers' ``DataCollatorWithFlattening``.

Without an ``attention_mask``, transformers (5.x) reads restarting ``position_ids`` as packed sequences
and builds a block-diagonal causal mask (``masking_utils.find_packed_sequence_indices``) for SDPA and eager
attention, and flash attention turns them into per-sequence lengths; so no example attends to another and the
loss equals the padded one (tests/training/test_collators.py). Packed layouts are cheaper only in the tokens
computed: with SDPA or eager the mask is dense, so one flattened row of N tokens costs N^2 attention, which is
why ``flatten`` pays only with flash attention and ``packing`` (rows no longer than the longest example) is the
CPU/SDPA choice. ``Seq2SeqCollator`` feeds the prompt to the encoder and the completion to the decoder. Labels
are -100 wherever no loss is wanted (prompt, padding, the first token of each packed example).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sfm.errors import ConfigError, did_you_mean

IGNORE = -100

#: ``training.batching`` choices (see the module docstring).
BATCHING = ("padding", "group_by_length", "packing", "flatten")


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


def _packed_rows(
    seqs: list[tuple[np.ndarray, np.ndarray]], bins: list[list[int]], n: int, pad_id: int
) -> dict[str, np.ndarray]:
    """Rows of ``n`` tokens holding the examples ``bins[r]``; the unused tail of a row is one more sequence of
    pad ids (positions restarting at 0, no loss), so it needs no attention mask either."""
    input_ids = np.full((len(bins), n), pad_id, dtype=np.int64)
    labels = np.full((len(bins), n), IGNORE, dtype=np.int64)
    pos = np.zeros((len(bins), n), dtype=np.int64)
    for r, members in enumerate(bins):
        at = 0
        for i in members:
            ids, lab = seqs[i]
            input_ids[r, at : at + ids.size] = ids
            labels[r, at + 1 : at + ids.size] = lab[1:]  # an example's first token is never predicted
            pos[r, at : at + ids.size] = np.arange(ids.size)
            at += ids.size
        pos[r, at:] = np.arange(n - at)
    return {"input_ids": input_ids, "labels": labels, "position_ids": pos}


@dataclass
class FlatCollator(CausalCollator):
    """Padding-free batches: one row holding every example, ``position_ids`` restarting per example."""

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        seqs = self.sequences(features)
        rows = _packed_rows(seqs, [list(range(len(seqs)))], sum(s[0].size for s in seqs), self.pad_id)
        return _with_ids({k: torch.from_numpy(v) for k, v in rows.items()}, features)


@dataclass
class PackedCollator(CausalCollator):
    """The batch's examples packed into as few rows as hold them, each as long as the longest example.

    First-fit decreasing: examples by length, longest first, each into the first row with room. A row then
    costs no more attention than a padded one, and the batch has as few rows as the lengths allow.
    """

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        seqs = self.sequences(features)
        lengths = [s[0].size for s in seqs]
        n = max(lengths)
        if self.pad_to_multiple_of:
            n = -(-n // self.pad_to_multiple_of) * self.pad_to_multiple_of
        bins: list[list[int]] = []
        room: list[int] = []
        for i in sorted(range(len(seqs)), key=lambda i: -lengths[i]):
            r = next((r for r, free in enumerate(room) if free >= lengths[i]), len(bins))
            if r == len(bins):
                bins.append([])
                room.append(n)
            bins[r].append(i)
            room[r] -= lengths[i]
        for members in bins:  # keep the batch's own order inside a row (reproducible, easy to read)
            members.sort()
        rows = _packed_rows(seqs, bins, n, self.pad_id)
        return _with_ids({k: torch.from_numpy(v) for k, v in rows.items()}, features)


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


def check_batching(batching: str, *, seq2seq: bool = False) -> None:
    """Refuse, in one line, a batching the backbone or this transformers cannot honour.

    Raises:
        ConfigError: an unknown name, a packed layout for an encoder-decoder, or a transformers too old to
            read restarting ``position_ids`` as separate sequences.
    """
    if batching not in BATCHING:
        raise ConfigError(f"training.batching: unknown {batching!r}{did_you_mean(batching, BATCHING)}")
    if batching not in ("packing", "flatten"):
        return
    if seq2seq:
        raise ConfigError(
            f"training.batching: {batching!r} packs decoder-only sequences; an encoder-decoder backbone "
            "takes 'padding' or 'group_by_length'"
        )
    try:  # the function that turns restarting position_ids into a block-diagonal mask
        from transformers.masking_utils import find_packed_sequence_indices  # noqa: F401
    except ImportError:
        import transformers

        raise ConfigError(
            f"training.batching: {batching!r} needs a transformers that masks packed sequences (5.x does); "
            f"this is {transformers.__version__}: use 'padding' or 'group_by_length'"
        ) from None


def make_collator(*, seq2seq: bool, batching: str, pad_id: int, bos_id: int | None) -> Any:
    """The collator for a backbone kind and ``training.batching`` choice (checked by :func:`check_batching`)."""
    check_batching(batching, seq2seq=seq2seq)
    if seq2seq:
        return Seq2SeqCollator(pad_id=pad_id)
    if batching == "packing":
        return PackedCollator(pad_id=pad_id, bos_id=bos_id)
    if batching == "flatten":
        return FlatCollator(pad_id=pad_id, bos_id=bos_id)
    return CausalCollator(pad_id=pad_id, bos_id=bos_id)
