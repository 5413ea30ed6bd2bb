"""The training budget: steps, examples and seconds a run spent, and a time limit that survives resumes.

``training.max_time_s`` stops a run once its *cumulative* training time passes the limit. The clock is kept
in every checkpoint (``checkpoint-N/sfm_budget.json``), so a run killed and resumed continues its clock
instead of restarting it: a sweep that gives every cell the same number of seconds means the same seconds
however often a cell was preempted. Time lost after the last checkpoint is not counted, exactly as the steps
redone after a resume are not (the clock at a checkpoint is that of the state the run resumes from).

The run record's ``budget`` says what was spent and which limit ended the run (``stopped_by``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from time import monotonic
from typing import Any

from transformers import TrainerCallback

from sfm.utils.io import atomic_write_json

BUDGET_FILE = "sfm_budget.json"


def spent_seconds(checkpoint: Path | None) -> float:
    """Training seconds recorded in ``checkpoint`` (0 for none, or for a checkpoint without a budget file)."""
    if checkpoint is None:
        return 0.0
    try:
        return float(
            json.loads((Path(checkpoint) / BUDGET_FILE).read_text(encoding="utf-8"))["train_seconds"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


class TimeBudget(TrainerCallback):
    """Keeps the cumulative training time and stops training once it passes ``max_time_s``.

    Args:
        max_time_s: The limit in seconds, or None to only keep the clock.
        spent_s: Seconds already spent before this session (from the checkpoint it resumes).
        trainer: The Trainer, to make the stop decision on rank 0 and share it (ranks that stopped at
            different steps would wait on each other's gradients forever). Needed only with several processes.
    """

    def __init__(self, max_time_s: float | None, spent_s: float = 0.0, trainer: Any = None) -> None:
        self.max_time_s = max_time_s
        self.spent_s = float(spent_s)
        self.trainer = trainer
        self.stopped = False
        self._t0: float | None = None
        self._elapsed = self.spent_s

    @property
    def elapsed(self) -> float:
        """Cumulative training seconds, as of the end of the last step (or of training)."""
        return self._elapsed

    def _tick(self) -> float:
        if self._t0 is not None:
            self._elapsed = self.spent_s + (monotonic() - self._t0)
        return self._elapsed

    def on_train_begin(self, args, state, control, **kwargs):
        self._t0 = monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        elapsed = self._tick()
        if self.max_time_s is not None and self._agree(elapsed >= self.max_time_s):
            self.stopped = True
            control.should_training_stop = True
            control.should_save = args.save_strategy != "no"  # a later, longer budget resumes right here
        return control

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and folder.is_dir():
            atomic_write_json(
                folder / BUDGET_FILE, {"train_seconds": self._elapsed, "global_step": state.global_step}
            )

    def on_train_end(self, args, state, control, **kwargs):
        self._tick()

    def _agree(self, over: bool) -> bool:
        """Rank 0's decision, on every rank."""
        acc = getattr(self.trainer, "accelerator", None)
        if acc is None or acc.num_processes == 1:
            return over
        import torch
        from accelerate.utils import broadcast

        flag = broadcast(torch.tensor([int(over)], device=acc.device), from_process=0)
        return bool(flag.item())


def examples_seen(n: int, steps: int, per_device: int, grad_accum: int, world_size: int) -> int:
    """Training examples processed in ``steps`` optimizer steps over ``n`` examples, as the Trainer batches.

    One process: an epoch is ``ceil(n / b)`` micro-batches, the last one partial. Several: accelerate's
    ``even_batches`` completes the last batch of every rank from the start of the data, so an epoch is
    ``ceil(n / (b w))`` full micro-batches per rank. The Trainer counts a partial accumulation at the end of an
    epoch as one step, so an epoch is ``ceil(micro-batches / g)`` steps.
    """
    b, g, w = per_device, grad_accum, world_size
    if w == 1:
        micro, per_epoch = math.ceil(n / b), n
    else:
        micro = math.ceil(n / (b * w))
        per_epoch = micro * b * w
    epoch_steps = max(1, math.ceil(micro / g))
    full, rest = divmod(steps, epoch_steps)
    return full * per_epoch + min(rest * g * b * w, per_epoch)  # steps inside an epoch use full batches


def budget_record(
    clock: TimeBudget,
    *,
    steps: int,
    max_steps: int,
    num_examples: int,
    per_device: int,
    grad_accum: int,
    world_size: int,
) -> dict[str, Any]:
    """The run record's ``budget``: what was spent, the limits set, and which one ended the run."""
    if clock.stopped:
        stopped_by = "max_time_s"
    elif max_steps > 0 and steps >= max_steps:
        stopped_by = "max_steps"
    else:
        stopped_by = "epochs"
    return {
        "steps": steps,
        "examples_seen": examples_seen(num_examples, steps, per_device, grad_accum, world_size),
        "train_seconds": round(clock.elapsed, 3),
        "stopped_by": stopped_by,
        "max_steps": max_steps if max_steps > 0 else None,
        "max_time_s": clock.max_time_s,
    }
