"""``training.batching``: parsed and checked when the recipe loads, and group_by_length reaches the sampler."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pytest

from sfm.errors import ConfigError
from sfm.training.args import sampling_arguments, training_arguments
from sfm.training.recipe import TrainingSection, load_recipe
from sfm.training.tokens import with_lengths

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "recipes" / "tiny"


@pytest.mark.parametrize("name", ["padding", "group_by_length", "packing", "flatten"])
def test_batching_parses(name):
    recipe = load_recipe(TINY / "symbolic" / "lora.yaml", ["--training.batching", name])
    assert recipe.training.batching == name
    assert load_recipe(TINY / "symbolic" / "lora.yaml").training.batching == "padding"


def test_batching_typo_and_impossible_combinations_are_refused():
    with pytest.raises(ConfigError, match="did you mean 'packing'"):
        load_recipe(TINY / "symbolic" / "lora.yaml", ["--training.batching", "pakcing"])
    t5 = TINY / "t5" / "burgers-forecast" / "lora.yaml"
    with pytest.raises(
        ConfigError, match="'packing' packs decoder-only sequences; the encoder-decoder tiny-t5"
    ):
        load_recipe(t5, ["--training.batching", "packing"])
    assert load_recipe(t5, ["--training.batching", "group_by_length"]).training.batching == "group_by_length"
    with pytest.raises(ConfigError, match="'flatten' is for token models; operator models"):
        load_recipe(TINY / "operator" / "burgers-fno.yaml", ["--training.batching", "flatten"])
    with pytest.raises(ConfigError, match=r"unknown override --data\.packing"):
        load_recipe(TINY / "symbolic" / "lora.yaml", ["--data.packing", "true"])


def test_sampling_keyword_follows_the_installed_transformers():
    v5 = {"train_sampling_strategy", "length_column_name"}
    assert sampling_arguments("group_by_length", v5) == {
        "train_sampling_strategy": "group_by_length",
        "length_column_name": "length",
    }
    assert sampling_arguments("group_by_length", {"group_by_length"})["group_by_length"] is True
    assert sampling_arguments("packing", v5) == {}


def test_group_by_length_batches_hold_similar_lengths(tmp_path):
    """The Trainer's sampler, built from the recipe's arguments, draws batches of near-equal length."""
    from transformers import Trainer

    from sfm.registry import BACKBONES

    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 400, 256)
    ds = with_lengths(
        datasets.Dataset.from_dict({"prompt": [[2] * int(n) for n in lengths], "completion": [[3]] * 256})
    )
    assert ds["length"] == (lengths + 1).tolist()

    def batch_spread(batching: str) -> float:
        args = training_arguments(
            TrainingSection(batching=batching, per_device_train_batch_size=8, report_to=[]),
            output_dir=tmp_path,
            grad_accum=1,
            has_eval=False,
            progress=False,
        )
        trainer = Trainer(model=BACKBONES.get("tiny-llama").build(8), args=args, train_dataset=ds)
        order = np.array(ds["length"])[list(trainer._get_train_sampler())]
        assert sorted(order.tolist()) == sorted(ds["length"])  # every example once per epoch
        batches = order.reshape(-1, 8)
        return float(np.mean(batches.max(axis=1) - batches.min(axis=1)))

    assert batch_spread("group_by_length") < 0.2 * batch_spread("padding")
