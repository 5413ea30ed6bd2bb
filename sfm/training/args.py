"""The recipe's ``training`` section -> ``transformers.TrainingArguments`` (and the launch environment)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Launch:
    """The topology a run was launched on, as far as sfm's support matrix cares.

    Attributes:
        name: How a message names it (``cpu_zero3.yaml``, ``one process``...).
        distributed: ``none`` (one process), ``ddp``, ``deepspeed`` or ``fsdp``.
        zero_stage: DeepSpeed's ZeRO stage, or None.
    """

    name: str
    distributed: str = "none"
    zero_stage: int | None = None


def _zero_stage(config_file: str | Path | None, stage: Any = None) -> int | None:
    if config_file:
        path = Path(config_file)
        path = path if path.is_file() else REPO_ROOT / path
        try:
            return int(json.loads(path.read_text())["zero_optimization"]["stage"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return int(stage) if stage not in (None, "", "none") else None


def launch_from_env(env: dict[str, str] | None = None) -> Launch:
    """The :class:`Launch` this process runs under, from the variables ``accelerate launch`` sets."""
    env = os.environ if env is None else env
    if env.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        cfg = env.get("ACCELERATE_DEEPSPEED_CONFIG_FILE")
        stage = _zero_stage(cfg, env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE"))
        where = f" ({cfg})" if cfg else ""
        return Launch(f"DeepSpeed ZeRO-{stage}{where}", "deepspeed", stage)
    if env.get("ACCELERATE_USE_FSDP", "").lower() == "true":
        return Launch("FSDP", "fsdp")
    if int(env.get("WORLD_SIZE", "1")) > 1:
        return Launch(f"DDP on {env['WORLD_SIZE']} processes", "ddp")
    return Launch("one process")


def launch_from_file(path: str | Path) -> Launch:
    """The :class:`Launch` an accelerate config file (``launch/accelerate/*.yaml``) starts."""
    import yaml

    path = Path(path)
    cfg = yaml.safe_load(path.read_text()) or {}
    kind = cfg.get("distributed_type", "NO")
    if kind == "DEEPSPEED":
        ds = cfg.get("deepspeed_config") or {}
        return Launch(
            path.name, "deepspeed", _zero_stage(ds.get("deepspeed_config_file"), ds.get("zero_stage"))
        )
    if kind == "FSDP":
        return Launch(path.name, "fsdp")
    return Launch(path.name, "ddp" if int(cfg.get("num_processes", 1)) > 1 else "none")


def has_complex_weights(kind: str, encoder_type: str | None) -> bool:
    """True when a model of this kind holds complex parameters: neuraloperator's spectral convolutions, in
    every operator (FNO, UNO) and in the ``spectral`` field encoder (the default encoder type)."""
    return kind == "operator" or (kind == "continuous" and (encoder_type or "spectral") == "spectral")


def launch_problem(kind: str, *, complex_weights: bool, launch: Launch) -> str | None:
    """Why a model cannot train under ``launch`` (what to use instead), or None when it can.

    A pure function of the recipe's model and the launch, so every (recipe x launch file) cell is checked by a
    test without training, and ``sfm.train`` refuses a bad cell before any data is built.

    DeepSpeed ZeRO (stage 1-3) flattens the parameters into buffers of one dtype: complex spectral weights
    break it (ZeRO-3 asserts one dtype in ``deepspeed/runtime/zero/utils.py`` ``defragment``; ZeRO-2's flat
    fp32 buffer turns them real, and the first forward fails on a dtype mismatch). DDP all-reduces complex
    gradients correctly.
    """
    if launch.distributed == "deepspeed" and launch.zero_stage and complex_weights:
        instead = "a DDP or single-process launch (launch/accelerate/cpu_ddp.yaml, multi_gpu.yaml)"
        if kind == "continuous":
            instead += ", or model.encoder.type conv (real weights) to keep DeepSpeed"
        return (
            f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} model with complex spectral weights cannot train "
            f"under DeepSpeed ZeRO-"
            f"{launch.zero_stage} (it shards parameters of one real dtype); use {instead}"
        )
    return None


def recipe_launch_problem(recipe: Any, launch: Launch, recipe_path: str | None = None) -> str | None:
    """:func:`launch_problem` for a loaded recipe, as one line naming the recipe and the launch."""
    from sfm.training.recipe import model_kind

    kind = model_kind(recipe.model)
    encoder = getattr(recipe.model, "encoder", None)
    problem = launch_problem(
        kind,
        complex_weights=has_complex_weights(kind, getattr(encoder, "type", None)),
        launch=launch,
    )
    if problem is None:
        return None
    return f"{recipe_path or 'this recipe'} under {launch.name}: {problem}"


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


def sampling_arguments(batching: str, argument_names: set[str]) -> dict[str, Any]:
    """The TrainingArguments keywords of ``training.batching: group_by_length`` (``train_sampling_strategy``
    on transformers 5, ``group_by_length`` on 4); lengths come from the examples' ``length`` column."""
    if batching != "group_by_length":
        return {}
    if "train_sampling_strategy" in argument_names:
        return {"train_sampling_strategy": "group_by_length", "length_column_name": "length"}
    return {"group_by_length": True, "length_column_name": "length"}


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
        **sampling_arguments(t.batching, names),
        # On CPU, DDP and DeepSpeed need use_cpu: without it DDP silently trains independent copies.
        use_cpu=t.use_cpu or not torch.cuda.is_available(),
        use_cache=False,  # no KV cache in training; also lets packed batches get a block-diagonal mask
        disable_tqdm=not progress,
        save_only_model=False,
    )
