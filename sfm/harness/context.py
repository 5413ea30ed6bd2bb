"""What every eval family's ``run(task, loaded, ctx)`` is given besides the task and the model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sfm.harness.scoring import min_limit

if TYPE_CHECKING:
    from sfm.harness.tasks import EvalData, EvalTask


@dataclass
class EvalContext:
    """Settings of one ``sfm eval`` call, shared by its tasks.

    Attributes:
        limit: Examples per task at most (``--limit``; the task's own limit applies too).
        batch_size: Generation (or prediction) batch size.
        seed: Seeds noise, bootstrap and generation.
        state: The ``accelerate.PartialState`` examples are sharded over (None: one process).
    """

    limit: int | None = None
    batch_size: int = 8
    seed: int = 0
    state: Any = None

    def limit_for(self, task: EvalTask) -> int | None:
        """The examples ``task`` scores at most: the smaller of its own limit and ``--limit``."""
        return min_limit(task.limit, self.limit)


def load_eval_data(d: EvalData) -> Any:
    """The field data set an :class:`~sfm.harness.tasks.EvalData` names, generated (and cached) first if
    needed."""
    from sfm.data import load_field_dataset
    from sfm.data.cache import ensure_dataset, resolve_data_path

    path = resolve_data_path(d.path, d.simulator, d.params, d.num_samples, d.seed)
    ensure_dataset(path, d.simulator, d.params, d.num_samples, d.seed, progress=False)
    return load_field_dataset(path)
