"""The recipe's ``training`` section -> ``transformers.TrainingArguments`` (and the launch environment)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from sfm.training.recipe import TrainingSection

REPO_ROOT = Path(__file__).resolve().parents[2]


def resolve_deepspeed_config() -> None:
    """Let ``launch/accelerate/*.yaml`` name ``launch/deepspeed/*.json`` relative to the repository.

    accelerate passes the path through ``ACCELERATE_DEEPSPEED_CONFIG_FILE`` verbatim, so a launch from outside
    the repository root would not find it; resolve it against the sfm checkout when the current folder lacks it.
    """
    key = "ACCELERATE_DEEPSPEED_CONFIG_FILE"
    path = os.environ.get(key)
    if path and not Path(path).is_absolute() and not Path(path).is_file():
        candidate = REPO_ROOT / path
        if candidate.is_file():
            os.environ[key] = str(candidate)


def warmup_arguments(ratio: float, argument_names: set[str]) -> dict[str, Any]:
    """The TrainingArguments keywords for a warmup of ``ratio`` x the training steps, on transformers 4 and 5.

    transformers 4 has ``warmup_ratio`` (and an integer ``warmup_steps``); transformers 5 dropped
    ``warmup_ratio`` and reads a ``warmup_steps`` below 1 as a ratio (``get_warmup_steps``: ``ceil(ratio x
    steps)``). ``ratio`` is in [0, 1) (the recipe checks), so on 5 it cannot be mistaken for a step count.
    """
    if not ratio:
        return {}
    if "warmup_ratio" in argument_names:
        return {"warmup_ratio": ratio}
    return {"warmup_steps": float(ratio)}


def checkpointing_arguments(enabled: bool, argument_names: set[str]) -> dict[str, Any]:
    """Activation checkpointing under its name in this transformers (``gradient_checkpointing`` before 5.x's
    ``activation_checkpointing``, which warns on the old name even when it is off)."""
    if "activation_checkpointing" in argument_names:
        return {"activation_checkpointing": enabled}
    return {"gradient_checkpointing": enabled}


def training_arguments(
    t: TrainingSection, *, output_dir: Path, grad_accum: int, has_eval: bool, progress: bool
) -> Any:
    """``TrainingArguments`` of a recipe's training section.

    Built before the model: under DeepSpeed ZeRO-3 they register the DeepSpeed config, so ``from_pretrained``
    partitions a Hub model across the ranks while loading (``deepspeed.zero.Init``) instead of every rank
    holding all of it in host memory (8 ranks x 141 GB for a 70B model).

    Args:
        t: The recipe's ``training`` section.
        output_dir: The run folder.
        grad_accum: Gradient accumulation steps (:func:`sfm.training.setup.resolve_batch`).
        has_eval: Evaluate every ``t.eval_steps`` steps.
        progress: Progress bars.
    """
    import torch
    from transformers import TrainingArguments

    # TensorBoard events (report_to: [tensorboard]) go to <run>/logs; transformers 5 reads the folder here.
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(Path(output_dir) / "logs")
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return TrainingArguments(
        output_dir=str(output_dir),
        max_steps=t.max_steps,
        num_train_epochs=t.num_train_epochs,
        per_device_train_batch_size=t.per_device_train_batch_size,
        per_device_eval_batch_size=t.per_device_eval_batch_size,
        gradient_accumulation_steps=grad_accum,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler_type,
        **warmup_arguments(t.warmup_ratio, names),
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        optim=t.optim,
        seed=t.seed,
        bf16=t.bf16,
        fp16=t.fp16,
        **checkpointing_arguments(t.gradient_checkpointing, names),
        logging_steps=t.logging_steps,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=t.eval_steps,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        report_to=list(t.report_to),
        dataloader_num_workers=t.dataloader_num_workers,
        remove_unused_columns=False,
        # On CPU, DDP and DeepSpeed need use_cpu: without it DDP silently trains independent copies.
        use_cpu=t.use_cpu or not torch.cuda.is_available(),
        use_cache=False,  # no KV cache in training; also lets packed batches get a block-diagonal mask
        disable_tqdm=not progress,
        save_only_model=False,
    )
