"""The parts of ``sfm.train`` every model kind shares: the Trainer and its callbacks, where to resume, and the
finished run folder (weights, the kind's own files, then ``sfm_run.json`` last).

A model kind plugs in through a :class:`Prepared`: :func:`sfm.training.tokens.prepare_tokens` for token
models, ``sfm.training.fields.prepare`` for continuous and operator models.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import sfm
from sfm.errors import SfmError
from sfm.models.run import BASE_DIR, RunRecord
from sfm.training import setup
from sfm.training.budget import TimeBudget, budget_record, spent_seconds
from sfm.training.trainer import CheckpointGuard, JsonlLogger, SfmTrainer, distributed_facts
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
    checkpoint = resume_checkpoint(out, resume)
    facts = {**distributed_facts(trainer), "zero3_init": setup.is_partitioned(prepared.model)}
    if checkpoint is not None:
        setup.check_resume(checkpoint, facts)
    clock = TimeBudget(max_time_s, spent_seconds(checkpoint), trainer)
    trainer.add_callback(JsonlLogger(out / "metrics.jsonl"))
    trainer.add_callback(CheckpointGuard(trainer))
    trainer.add_callback(clock)
    if os.environ.get("SFM_FAULT_KILL_AT_STEP"):
        from sfm.training.trainer import FaultInjector

        trainer.add_callback(FaultInjector(int(os.environ["SFM_FAULT_KILL_AT_STEP"])))
    return Session(trainer, clock, facts, checkpoint)


def save_run(
    session: Session, prepared: Prepared, result: Any, out: Path, record: dict[str, Any]
) -> RunRecord:
    """Save the trained weights, the kind's files and (last) the run record; every process calls this.

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
    trainer.save_model(
        str(out)
    )  # gathers 16-bit weights under ZeRO-3 (stage3_gather_16bit_weights_on_model_save)
    verify_saved_adapter(trainer.model, out, trainer)
    run = None
    if trainer.is_world_process_zero():
        prepared.save(out)
        trainable, total = count_parameters(prepared.model)
        shared = {
            **record,
            "data": {**record.get("data", {}), "num_train_examples": len(prepared.train_dataset)},
            "parameters": {"trainable": trainable, "total": total},
            "train": _train_record(trainer, result),
            "budget": _budget(session, len(prepared.train_dataset)),
            "distributed": session.facts,
        }
        run = write_record(out, _merge(shared, prepared.record))
    trainer.accelerator.wait_for_everyone()
    return run


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
