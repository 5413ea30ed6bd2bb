"""``SfmTrainer``: transformers' Trainer plus the guards a long run needs.

* a non-finite loss stops the run at once, naming the step and the examples (trajectory, start frame) of
  the batch, instead of silently training on NaN for hours;
* every log line also goes to ``metrics.jsonl`` (TensorBoard events are written by the Trainer itself);
* every checkpoint records the world size and ZeRO stage it was saved with (``sfm_checkpoint.json``), and
  its adapter is read back and compared with the weights in memory (non-empty, equal): under ZeRO-3 an
  adapter saved without gathering the 16-bit weights comes out empty, and this is where that is caught.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback

import sfm
from sfm.errors import SfmError
from sfm.utils.io import atomic_write_json

CHECKPOINT_META = "sfm_checkpoint.json"


class NonFiniteLossError(SfmError):
    """The training loss became NaN or infinite."""


class SfmTrainer(Trainer):
    """Trainer that refuses non-finite losses (see module docstring)."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        examples = inputs.pop("sfm_examples", None)
        result = super().compute_loss(
            model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
        )
        loss = result[0] if return_outputs else result
        if not torch.isfinite(loss.detach()).all():
            named = examples.tolist() if examples is not None else "unknown"
            raise NonFiniteLossError(
                f"non-finite training loss ({loss.detach().float().item()}) at step {self.state.global_step + 1}, "
                f"batch examples (trajectory, start) {named}; lower training.learning_rate or check the data"
            )
        return result


def distributed_facts(trainer: Trainer) -> dict[str, Any]:
    """World size, distributed type and ZeRO stage actually in effect."""
    acc = trainer.accelerator
    plugin = getattr(acc.state, "deepspeed_plugin", None)
    return {
        "world_size": acc.num_processes,
        "distributed_type": str(acc.distributed_type).split(".")[-1],
        "zero_stage": int(plugin.zero_stage) if plugin is not None else None,
        "device": str(acc.device),
    }


class JsonlLogger(TrainerCallback):
    """Appends every Trainer log record to ``<output_dir>/metrics.jsonl`` (main process)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n")


class CheckpointGuard(TrainerCallback):
    """Writes ``sfm_checkpoint.json`` into each checkpoint and checks the saved adapter (module docstring)."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        verify_saved_adapter(self.trainer.model, folder, self.trainer)
        if state.is_world_process_zero and folder.is_dir():
            atomic_write_json(
                folder / CHECKPOINT_META,
                {
                    **distributed_facts(self.trainer),
                    "global_step": state.global_step,
                    "sfm_version": sfm.__version__,
                },
            )


class TrainingComplete(Exception):
    """Raised by :class:`StopWhenComplete`: the resumed checkpoint already holds the last step."""


class StopWhenComplete(TrainerCallback):
    """Stops a resumed run whose checkpoint is already at ``max_steps`` before it takes another step.

    transformers 5.24 resets ``should_training_stop`` in ``on_train_begin`` and checks it only after a step,
    so resuming from the final checkpoint (left when the final save was killed or hit a full disk) trains past
    ``max_steps`` to the end of the epoch. Raised at the first ``on_step_begin``, after the checkpoint's
    weights, optimizer and RNG state are loaded and before any batch runs; ``sfm.training.run_folder.train``
    catches it and the run goes straight to its final save.
    """

    def on_step_begin(self, args, state, control, **kwargs):
        if state.max_steps > 0 and state.global_step >= state.max_steps:
            raise TrainingComplete(state.global_step)


class FaultInjector(TrainerCallback):
    """Kills the process with SIGKILL right after step ``SFM_FAULT_KILL_AT_STEP`` (crash-recovery tests).

    Only installed when that environment variable is set; a real SIGKILL, so nothing gets to clean up.
    """

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)


def trained_adapter_state(model: Any, trainer: Trainer | None = None) -> dict[str, torch.Tensor] | None:
    """The adapter tensors in memory (gathered under ZeRO-3), or None for a model without adapters."""
    try:
        from peft import PeftModel, get_peft_model_state_dict
    except ImportError:  # pragma: no cover
        return None
    unwrapped = model
    while hasattr(unwrapped, "module") and not isinstance(unwrapped, PeftModel):
        unwrapped = unwrapped.module
    if not isinstance(unwrapped, PeftModel):
        return None
    params = [p for n, p in unwrapped.named_parameters() if p.requires_grad]
    zero3 = trainer is not None and (distributed_facts(trainer)["zero_stage"] == 3)
    if zero3:
        import deepspeed

        with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
            return {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(unwrapped).items()}
    return {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(unwrapped).items()}


def verify_saved_adapter(model: Any, folder: Path, trainer: Trainer | None = None) -> None:
    """Check that the adapter saved in ``folder`` is non-empty and equals the weights in memory.

    Raises:
        SfmError: an empty or mismatching tensor, naming it (the classic ZeRO-3 empty-adapter failure).
    """
    memory = trained_adapter_state(model, trainer)  # collective under ZeRO-3: every rank calls it
    if memory is None or (trainer is not None and not trainer.is_world_process_zero()):
        return
    path = Path(folder) / "adapter_model.safetensors"
    if not path.is_file():
        raise SfmError(f"{folder}: no adapter_model.safetensors was saved")
    from safetensors.torch import load_file

    saved = load_file(str(path))
    if not saved:
        raise SfmError(f"{path}: the saved adapter holds no tensors")
    for key, tensor in saved.items():
        if tensor.numel() == 0:
            raise SfmError(
                f"{path}: tensor {key} was saved empty (under ZeRO-3, set "
                f"zero3_save_16bit_model / stage3_gather_16bit_weights_on_model_save: true)"
            )
    mem = {_strip_adapter_name(k): v for k, v in memory.items()}
    for key, tensor in saved.items():
        ref = mem.get(_strip_adapter_name(key))
        if ref is not None and (
            ref.shape != tensor.shape or not torch.allclose(ref.float(), tensor.float(), atol=1e-6)
        ):
            raise SfmError(f"{path}: saved tensor {key} differs from the trained weights in memory")


def _strip_adapter_name(key: str) -> str:
    return key.replace(".default", "")
