"""Collators: loss only on completions; packing is exactly equivalent to padding."""

import numpy as np
import pytest
import torch

from sfm.registry import BACKBONES
from sfm.training.collators import IGNORE, CausalCollator, PackedCollator, Seq2SeqCollator, make_collator

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


def test_packed_layout():
    b = PackedCollator(pad_id=0, bos_id=1)(FEATURES)
    assert b["input_ids"][0].tolist() == [1, 5, 6, 7, 8, 9, 1, 10, 11, 12, 13, 14, 15]
    assert b["position_ids"][0].tolist() == list(range(6)) + list(range(7))
    assert (b["labels"][0] != IGNORE).sum() == 3
    assert "attention_mask" not in b


def test_seq2seq_layout():
    b = Seq2SeqCollator(pad_id=0, pad_to_multiple_of=None)(FEATURES)
    assert b["input_ids"][0].tolist() == [5, 6, 7, 0, 0]
    assert b["labels"].tolist() == [[8, 9], [15, IGNORE]]


@pytest.mark.parametrize("backbone", ["tiny-llama", "tiny-qwen2"])
def test_packing_matches_padding(backbone):
    torch.manual_seed(0)
    model = BACKBONES.get(backbone).build(32)
    model.eval()
    rng = np.random.default_rng(0)
    feats = [
        {
            "prompt": rng.integers(2, 32, rng.integers(3, 9)).tolist(),
            "completion": rng.integers(2, 32, rng.integers(1, 5)).tolist(),
        }
        for _ in range(4)
    ]
    packed = PackedCollator(pad_id=0, bos_id=1)(feats)
    padded = CausalCollator(pad_id=0, bos_id=1)(feats)
    with torch.no_grad():
        lp = model(
            input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False
        ).logits[0]
        lc = model(
            input_ids=padded["input_ids"], attention_mask=padded["attention_mask"], use_cache=False
        ).logits
        loss_p = model(
            input_ids=packed["input_ids"],
            position_ids=packed["position_ids"],
            labels=packed["labels"],
            use_cache=False,
        ).loss
        loss_c = model(
            input_ids=padded["input_ids"],
            attention_mask=padded["attention_mask"],
            labels=padded["labels"],
            use_cache=False,
        ).loss
    offset = 0
    for i, f in enumerate(feats):
        n = 1 + len(f["prompt"]) + len(f["completion"])
        torch.testing.assert_close(lp[offset : offset + n], lc[i, :n], atol=1e-5, rtol=1e-4)
        offset += n
    torch.testing.assert_close(loss_p, loss_c, atol=1e-5, rtol=1e-5)


def test_make_collator_choice():
    assert isinstance(make_collator(seq2seq=True, packing=True, pad_id=0, bos_id=None), Seq2SeqCollator)
    assert isinstance(make_collator(seq2seq=False, packing=True, pad_id=0, bos_id=1), PackedCollator)
    assert type(make_collator(seq2seq=False, packing=False, pad_id=0, bos_id=1)) is CausalCollator
