"""Recipe -> TrainingArguments: warmup as a ratio on transformers 4 and 5, the model kind, field-model sections,
the time budget and loggers checked when the recipe loads."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sfm.errors import ConfigError
from sfm.models.field_config import EncoderSection, FieldsSection, OperatorSection
from sfm.training.args import checkpointing_arguments, training_arguments, warmup_arguments
from sfm.training.recipe import ModelSection, TrainingSection, load_recipe, model_kind

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "tiny" / "burgers-forecast" / "lora.yaml"


def _args(tmp_path, **training):
    return training_arguments(
        TrainingSection(**training), output_dir=tmp_path, grad_accum=1, has_eval=False, progress=False
    )


@pytest.mark.parametrize(("ratio", "steps"), [(0.0, 100), (0.05, 300), (0.25, 8), (0.5, 7), (0.999, 10)])
def test_warmup_is_the_ratio_of_the_training_steps(tmp_path, ratio, steps):
    args = _args(tmp_path, max_steps=steps, warmup_ratio=ratio, report_to=[])
    assert args.get_warmup_steps(steps) == math.ceil(ratio * steps)


def test_warmup_keyword_follows_the_installed_transformers():
    v4 = {"warmup_ratio", "warmup_steps"}  # transformers 4: a ratio field, integer warmup_steps
    v5 = {"warmup_steps"}  # transformers 5: warmup_steps < 1 is a ratio
    assert warmup_arguments(0.1, v4) == {"warmup_ratio": 0.1}
    assert warmup_arguments(0.1, v5) == {"warmup_steps": 0.1}
    assert warmup_arguments(0.0, v5) == {}
    assert checkpointing_arguments(True, {"activation_checkpointing"}) == {"activation_checkpointing": True}
    assert checkpointing_arguments(True, {"gradient_checkpointing"}) == {"gradient_checkpointing": True}


def test_warmup_schedule_of_a_real_optimizer(tmp_path):
    """The learning rate rises linearly over ceil(0.25 x 8) = 2 steps, then holds (constant_with_warmup)."""
    import torch
    from transformers import Trainer

    args = _args(
        tmp_path, max_steps=8, warmup_ratio=0.25, learning_rate=1.0, lr_scheduler_type="constant_with_warmup"
    )
    model = torch.nn.Linear(2, 1)
    trainer = Trainer(model=model, args=args)
    trainer.create_optimizer_and_scheduler(num_training_steps=8)
    lrs = []
    for _ in range(4):
        lrs.append(trainer.lr_scheduler.get_last_lr()[0])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    assert lrs == pytest.approx([0.0, 0.5, 1.0, 1.0])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("--training.warmup_ratio=1.0", "warmup_ratio must be in \\[0, 1\\)"),
        ("--training.max_time_s=0", "max_time_s must be > 0"),
        ("--model.field_io=fields", "model.field_io"),
        ("--model.operator.n_modes=many", "model.operator.n_modes"),
    ],
)
def test_bad_training_settings_fail_when_the_recipe_loads(override, message):
    with pytest.raises(ConfigError, match=message):
        load_recipe(RECIPE, [override])


def test_a_logger_without_its_package_fails_when_the_recipe_loads(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if "ensorboard" in n else real(n, *a))
    with pytest.raises(
        ConfigError, match=r"report_to 'tensorboard' needs the tensorboard package \(pip install"
    ):
        load_recipe(RECIPE, ["--training.report_to", "[tensorboard]"])
    assert load_recipe(RECIPE).training.report_to == []  # the default needs nothing


def test_model_kind_follows_the_model_section():
    assert model_kind(ModelSection()) == "token"
    assert model_kind(ModelSection(field_io="continuous")) == "continuous"
    assert model_kind(ModelSection(name_or_path="operator:fno")) == "operator"
    assert model_kind(ModelSection(name_or_path="operator:uno", field_io="continuous")) == "operator"


def test_field_sections_are_typed_and_overridable():
    recipe = load_recipe(
        RECIPE,
        [
            "--model.name_or_path",
            "operator:fno",
            "--model.operator.n_modes",
            "[8]",
            "--hidden_channels",
            "16",
        ],
    )
    m = recipe.model
    assert isinstance(m.fields, FieldsSection) and isinstance(m.encoder, EncoderSection)
    assert m.operator == OperatorSection(n_modes=[8], hidden_channels=16)
    assert model_kind(m) == "operator"
    assert load_recipe(RECIPE, ["--max_time_s", "90"]).training.max_time_s == 90.0
