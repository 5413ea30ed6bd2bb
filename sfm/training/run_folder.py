"""The parts of ``sfm.train`` every model kind shares: the Trainer and its callbacks, where to resume, and the
finished run folder (weights, the kind's own files, then ``sfm_run.json`` last).

A model kind plugs in through a :class:`Prepared`: :func:`sfm.training.tokens.prepare_tokens` for token
models, ``sfm.training.fields.prepare`` for continuous and operator models.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import sfm
from sfm.errors import ConfigError, SfmError
from sfm.models.run import BASE_DIR, RunRecord
from sfm.training import setup
from sfm.training.budget import TimeBudget, budget_record, spent_seconds
from sfm.training.trainer import (
    CheckpointGuard,
    JsonlLogger,
    SfmTrainer,
    StopWhenComplete,
    TrainingComplete,
    distributed_facts,
)
from sfm.utils.io import atomic_write_json


class Prepared(Protocol):
    """A model of any kind, ready to train.

    Attributes:
        model: The ``nn.Module`` the Trainer trains (its ``forward`` returns the loss).
        train_dataset: Training examples. eval_dataset: Validation examples, or None.
        collator: Batches examples for ``model``.
        record: Run-record fields only this kind knows (``base_model``, ``encoding``, ``field_model``...;
            a dict value merges into the record's section of that name).
    """

    model: Any
    train_dataset: Any
    eval_dataset: Any
    collator: Any
    record: dict[str, Any]

    def save(self, out: Path) -> None:
        """Write this kind's own files (tokenizer, field-model config...) into the run folder."""


@dataclass
class Session:
    """A Trainer set up for a run folder: the Trainer, its clock and the facts of the launch."""

    trainer: Any
    clock: TimeBudget
    facts: dict[str, Any]
    checkpoint: Path | None


def resume_checkpoint(out: Path, resume: str) -> Path | None:
    """The checkpoint to resume from: ``auto`` (the newest complete one, if any), ``never``, or a folder.

    Raises:
        SfmError: ``resume`` names no folder.
    """
    if resume == "auto":
        return setup.last_checkpoint(out)
    if resume == "never":
        return None
    checkpoint = Path(resume)
    if not checkpoint.is_dir():
        raise SfmError(f"--resume {resume}: no such checkpoint folder")
    return checkpoint


def make_session(
    prepared: Prepared, args: Any, out: Path, *, resume: str, max_time_s: float | None
) -> Session:
    """The Trainer with sfm's callbacks (metrics.jsonl, checkpoint guard, time budget), and the checkpoint to
    resume from, checked against this launch.

    Raises:
        SfmError: a resume the launch cannot honour (:func:`sfm.training.setup.check_resume`).
    """
    trainer = SfmTrainer(
        model=prepared.model,
        args=args,
        train_dataset=prepared.train_dataset,
        eval_dataset=prepared.eval_dataset,
        data_collator=prepared.collator,
    )
    setup.fill_deepspeed_sizes(trainer, prepared.model)
    checkpoint = resume_checkpoint(out, resume)
    facts = {**distributed_facts(trainer), "zero3_init": setup.is_partitioned(prepared.model)}
    if facts["zero_stage"] and any(p.is_complex() for p in prepared.model.parameters()):
        # The recipe-level check in sfm.train catches the known cases; this catches any other complex weight.
        raise ConfigError(
            f"the model has complex parameters, which DeepSpeed ZeRO-{facts['zero_stage']} cannot shard; "
            "launch it with DDP (launch/accelerate/cpu_ddp.yaml, multi_gpu.yaml) or one process"
        )
    if checkpoint is not None:
        setup.check_resume(checkpoint, facts)
    clock = TimeBudget(max_time_s, spent_seconds(checkpoint), trainer)
    trainer.add_callback(JsonlLogger(out / "metrics.jsonl"))
    trainer.add_callback(CheckpointGuard(trainer))
    trainer.add_callback(clock)
    trainer.add_callback(StopWhenComplete())
    if os.environ.get("SFM_FAULT_KILL_AT_STEP"):
        from sfm.training.trainer import FaultInjector

        trainer.add_callback(FaultInjector(int(os.environ["SFM_FAULT_KILL_AT_STEP"])))
    return Session(trainer, clock, facts, checkpoint)


def train(session: Session) -> Any:
    """``Trainer.train`` from the session's checkpoint; a checkpoint already at ``max_steps`` (its final save
    was interrupted) is loaded and not trained further (:class:`~sfm.training.trainer.StopWhenComplete`)."""
    from transformers.trainer_utils import TrainOutput

    trainer = session.trainer
    ckpt = str(session.checkpoint) if session.checkpoint else None
    try:
        return trainer.train(resume_from_checkpoint=ckpt)
    except TrainingComplete:
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        loss = sum(losses) / len(losses) if losses else float("nan")
        return TrainOutput(trainer.state.global_step, loss, {})


#: The staging folder of the final save, inside the run folder (a rename within one filesystem is atomic). A
#: fixed name, not a per-process temporary one: under DeepSpeed every rank passes the same path to the
#: collective ``Trainer.save_model``.
STAGE_DIR = ".sfm-save.tmp"


def save_run(
    session: Session, prepared: Prepared, result: Any, out: Path, record: dict[str, Any]
) -> RunRecord:
    """Save the trained weights, the kind's files and (last) the run record; every process calls this.

    Crash-safe: everything is written into ``out/.sfm-save.tmp/`` first and checked (a saved adapter is read
    back and compared with the weights in memory), then moved into ``out`` by renames, and ``sfm_run.json`` is
    written last. A save killed or failing (a full disk) at any point leaves no run record, so the folder never
    passes for a finished run, the checkpoints stay untouched, and the next launch resumes from the last
    complete one and saves again.

    Args:
        session: The trained session.
        prepared: The model kind's :class:`Prepared`.
        result: ``Trainer.train``'s output.
        out: The run folder.
        record: The run-record fields the caller knows (recipe, recipe_path, kind, data, task).
    """
    from sfm.models.backbones import count_parameters
    from sfm.training.trainer import verify_saved_adapter

    trainer = session.trainer
    main = trainer.is_world_process_zero()
    stage = out / STAGE_DIR
    if main:
        shutil.rmtree(stage, ignore_errors=True)  # left by a save that was killed
    trainer.accelerator.wait_for_everyone()
    try:
        # Gathers 16-bit weights under ZeRO-3 (stage3_gather_16bit_weights_on_model_save).
        trainer.save_model(str(stage))
        verify_saved_adapter(trainer.model, stage, trainer)
        state = full_state_dict(trainer) if getattr(prepared, "saves_weights", False) else None
        run = None
        if main:
            prepared.save(stage) if state is None else prepared.save(stage, state_dict=state)
            trainable, total = count_parameters(prepared.model)
            shared = {
                **record,
                "data": {**record.get("data", {}), "num_train_examples": len(prepared.train_dataset)},
                "parameters": {"trainable": trainable, "total": total},
                "train": _train_record(trainer, result),
                "budget": _budget(session, len(prepared.train_dataset)),
                "distributed": session.facts,
            }
            publish(stage, out)
            run = write_record(out, _merge(shared, prepared.record))
    except BaseException:
        if main:
            shutil.rmtree(stage, ignore_errors=True)
        raise
    trainer.accelerator.wait_for_everyone()
    return run


def full_state_dict(trainer: Any) -> dict[str, Any] | None:
    """The trained model's whole state dict on the main process (gathered from the ranks under ZeRO-3); a
    collective call under DeepSpeed, so every process makes it."""
    wrapped = trainer.model_wrapped if trainer.is_deepspeed_enabled else trainer.model
    state = trainer.accelerator.get_state_dict(wrapped)
    return state if trainer.is_world_process_zero() else None


def publish(stage: Path, out: Path) -> None:
    """Move the staged final save into the run folder, entry by entry, each by an atomic rename.

    The old run record goes first, so a folder caught halfway (a kill between two renames) reads as
    unfinished, and the adapter configs that name a base inside the staging folder are pointed at its new
    place. A folder replaces its older copy through a swap (rename the old aside, rename the new in).
    """
    from sfm.models.run import RUN_FILE

    (out / RUN_FILE).unlink(missing_ok=True)
    staged = str(stage.resolve())
    for cfg in stage.rglob("adapter_config.json"):
        text = cfg.read_text(encoding="utf-8")
        if staged in text:
            data = json.loads(text)
            base = data.get("base_model_name_or_path") or ""
            data["base_model_name_or_path"] = base.replace(staged, str(out.resolve()), 1)
            atomic_write_json(cfg, data)
    for entry in sorted(stage.iterdir()):
        dest = out / entry.name
        if entry.is_dir() and dest.is_dir():
            trash = out / f".{entry.name}.old-{os.getpid()}"
            os.replace(dest, trash)
            os.replace(entry, dest)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(entry, dest)
    stage.rmdir()


def write_record(out: Path, record: dict[str, Any]) -> RunRecord:
    """Stamp ``record`` (sfm version, git commit, date) and write it as ``out/sfm_run.json``.

    When a tiny base was saved in ``out/base``, the adapter's ``base_model_name_or_path`` is pointed at it
    first, so plain ``peft`` loads the run with no sfm code.
    """
    from sfm.utils.provenance import git_hash, now_iso

    cfg_path = out / "adapter_config.json"
    if (out / BASE_DIR).is_dir() and cfg_path.is_file():
        cfg = json.loads(cfg_path.read_text())
        cfg["base_model_name_or_path"] = str((out / BASE_DIR).resolve())
        atomic_write_json(cfg_path, cfg)
    run = RunRecord.from_dict(
        {**record, "sfm_version": sfm.__version__, "git": git_hash(), "date": now_iso()}
    )
    run.save(out)
    return run


def _train_record(trainer: Any, result: Any) -> dict[str, Any]:
    history = trainer.state.log_history
    return {
        "steps": trainer.state.global_step,
        "loss_history": [h["loss"] for h in history if "loss" in h],
        "train_loss": result.training_loss,
        "eval_loss": next((h["eval_loss"] for h in reversed(history) if "eval_loss" in h), None),
        "runtime_s": result.metrics.get("train_runtime"),
    }


def _budget(session: Session, num_examples: int) -> dict[str, Any]:
    args = session.trainer.args
    return budget_record(
        session.clock,
        steps=session.trainer.state.global_step,
        max_steps=args.max_steps,
        num_examples=num_examples,
        per_device=args.per_device_train_batch_size,
        grad_accum=args.gradient_accumulation_steps,
        world_size=session.facts["world_size"],
    )


def _merge(shared: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` over ``shared``; a dict in both merges one level (``train.tokens`` joins ``train``)."""
    out = dict(shared)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out
