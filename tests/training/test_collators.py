"""Collators: loss only on completions; packed and flattened batches are exactly equivalent to padding."""

import itertools

import numpy as np
import pytest
import torch

from sfm.errors import ConfigError
from sfm.registry import BACKBONES
from sfm.training.collators import (
    IGNORE,
    CausalCollator,
    FlatCollator,
    PackedCollator,
    Seq2SeqCollator,
    check_batching,
    make_collator,
)

FEATURES = [
    {"prompt": [5, 6, 7], "completion": [8, 9], "trajectory": 0, "start": 3},
    {"prompt": [10, 11, 12, 13, 14], "completion": [15], "trajectory": 4, "start": 0},
]


def test_causal_labels_only_on_completion():
    b = CausalCollator(pad_id=0, bos_id=1, pad_to_multiple_of=4)(FEATURES)
    assert b["input_ids"].shape == (2, 8)
    assert b["input_ids"][0].tolist() == [1, 5, 6, 7, 8, 9, 0, 0]
    assert b["labels"][0].tolist() == [IGNORE] * 4 + [8, 9] + [IGNORE] * 2
    assert b["attention_mask"][1].tolist() == [1] * 7 + [0]
    assert b["sfm_examples"].tolist() == [[0, 3], [4, 0]]


def test_flat_layout():
    b = FlatCollator(pad_id=0, bos_id=1)(FEATURES)
    assert b["input_ids"][0].tolist() == [1, 5, 6, 7, 8, 9, 1, 10, 11, 12, 13, 14, 15]
    assert b["position_ids"][0].tolist() == list(range(6)) + list(range(7))
    assert b["labels"][0].tolist() == [IGNORE] * 4 + [8, 9] + [IGNORE] * 6 + [15]
    assert "attention_mask" not in b
    assert b["sfm_examples"].tolist() == [[0, 3], [4, 0]]


def test_packed_first_fit_decreasing():
    """Lengths 6, 2, 3, 5, 1 into rows of 6 (the longest): [6], [5, 1], [2, 3] -- first fit, longest first."""
    lengths = [6, 2, 3, 5, 1]
    feats = [
        {"prompt": [10 * (i + 1) + j for j in range(n - 1)], "completion": [9]} for i, n in enumerate(lengths)
    ]
    b = PackedCollator(pad_id=0, bos_id=None, pad_to_multiple_of=None)(feats)
    ids = b["input_ids"].tolist()
    assert ids == [
        [10, 11, 12, 13, 14, 9],
        [40, 41, 42, 43, 9, 9],  # example 3 (5 tokens), then example 4 (1)
        [20, 9, 30, 31, 9, 0],  # examples 1 and 2 in batch order, one pad token
    ]
    assert b["position_ids"].tolist() == [list(range(6)), [0, 1, 2, 3, 4, 0], [0, 1, 0, 1, 2, 0]]
    # one loss token per example (its completion), but a packed example's first token is never a target --
    # as in a padded row, where nothing predicts position 0 -- so example 4 (a lone completion token) has none
    assert (b["labels"] != IGNORE).sum().item() == len(feats) - 1
    assert b["labels"][2].tolist() == [IGNORE, 9, IGNORE, IGNORE, 9, IGNORE]
    assert "attention_mask" not in b


def test_packed_rows_never_exceed_padded_rows():
    rng = np.random.default_rng(0)
    for _ in range(20):
        feats = [
            {"prompt": [2] * int(rng.integers(1, 40)), "completion": [3] * int(rng.integers(1, 9))}
            for _ in range(8)
        ]
        packed = PackedCollator(pad_id=0, bos_id=1)(feats)
        padded = CausalCollator(pad_id=0, bos_id=1)(feats)
        assert packed["input_ids"].shape[1] == padded["input_ids"].shape[1]
        assert packed["input_ids"].shape[0] <= padded["input_ids"].shape[0]
        real = sum(1 + len(f["prompt"]) + len(f["completion"]) for f in feats)
        assert (packed["input_ids"] == 1).sum() == len(feats)  # every example (its BOS) is there once
        assert packed["input_ids"].numel() >= real


def test_seq2seq_layout():
    b = Seq2SeqCollator(pad_id=0, pad_to_multiple_of=None)(FEATURES)
    assert b["input_ids"][0].tolist() == [5, 6, 7, 0, 0]
    assert b["labels"].tolist() == [[8, 9], [15, IGNORE]]


def _random_features(rng, n=5):
    return [
        {
            "prompt": rng.integers(2, 32, rng.integers(3, 12)).tolist(),
            "completion": rng.integers(2, 32, rng.integers(1, 5)).tolist(),
        }
        for _ in range(n)
    ]


def _logits_per_example(model, batch, feats):
    """Each example's logits, cut out of whichever layout ``batch`` has (rows found by position restarts)."""
    with torch.no_grad():
        if "attention_mask" in batch:
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
            return [out.logits[i, : 1 + len(f["prompt"]) + len(f["completion"])] for i, f in enumerate(feats)]
        out = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False)
    pieces = []
    for r in range(batch["input_ids"].shape[0]):
        pos = batch["position_ids"][r].tolist()
        starts = [i for i, p in enumerate(pos) if p == 0] + [len(pos)]
        for a, b in itertools.pairwise(starts):
            if batch["input_ids"][r, a].item() == 1:  # a BOS opens an example; pad tails have none
                pieces.append((r, a, b))
    # rows are filled longest-first, so examples are found by their tokens, not their batch index
    found = {tuple(batch["input_ids"][r, a:b].tolist()): out.logits[r, a:b] for r, a, b in pieces}
    return [found[tuple([1, *f["prompt"], *f["completion"]])] for f in feats]


def _loss(model, batch):
    with torch.no_grad():
        return model(**{k: v for k, v in batch.items() if k != "sfm_examples"}, use_cache=False).loss


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("backbone", ["tiny-llama", "tiny-qwen2", "tiny-mistral", "tiny-gpt2"])
def test_packed_layouts_match_padding(backbone, attn):
    """No example attends to another: per-example logits and the batch loss equal the padded batch's."""
    torch.manual_seed(0)
    model = BACKBONES.get(backbone).build(32)
    model.set_attn_implementation(attn)
    model.eval()
    feats = _random_features(np.random.default_rng(0))
    padded = CausalCollator(pad_id=0, bos_id=1)(feats)
    reference = _logits_per_example(model, padded, feats)
    for collator in (PackedCollator(pad_id=0, bos_id=1), FlatCollator(pad_id=0, bos_id=1)):
        batch = collator(feats)
        for got, want in zip(_logits_per_example(model, batch, feats), reference):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(_loss(model, batch), _loss(model, padded), atol=1e-5, rtol=1e-5)


def test_packing_would_leak_without_restarts():
    """The check above can fail: with positions running on across examples, the flattened loss differs."""
    torch.manual_seed(0)
    model = BACKBONES.get("tiny-llama").build(32).eval()
    feats = _random_features(np.random.default_rng(1))
    flat = FlatCollator(pad_id=0, bos_id=1)(feats)
    leaky = dict(flat, position_ids=torch.arange(flat["input_ids"].shape[1])[None])
    padded = CausalCollator(pad_id=0, bos_id=1)(feats)
    assert abs(_loss(model, leaky).item() - _loss(model, padded).item()) > 1e-4


def test_make_collator_choice():
    assert isinstance(make_collator(seq2seq=True, batching="padding", pad_id=0, bos_id=None), Seq2SeqCollator)
    assert isinstance(make_collator(seq2seq=False, batching="packing", pad_id=0, bos_id=1), PackedCollator)
    assert isinstance(make_collator(seq2seq=False, batching="flatten", pad_id=0, bos_id=1), FlatCollator)
    for name in ("padding", "group_by_length"):
        assert type(make_collator(seq2seq=False, batching=name, pad_id=0, bos_id=1)) is CausalCollator


def test_packed_layouts_refused_for_encoder_decoders():
    for name in ("packing", "flatten"):
        with pytest.raises(ConfigError, match=f"'{name}' packs decoder-only sequences"):
            make_collator(seq2seq=True, batching=name, pad_id=0, bos_id=None)
    check_batching("group_by_length", seq2seq=True)
    with pytest.raises(ConfigError, match="did you mean 'packing'"):
        check_batching("pakcing")
