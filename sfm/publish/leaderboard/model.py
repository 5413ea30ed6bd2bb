"""The leaderboard's typed records: entries, rows, task tables and the board itself.

:mod:`~sfm.publish.leaderboard.build` fills them from results files, :mod:`~sfm.publish.leaderboard.render`
writes them out; neither passes anything else between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sfm.errors import DataError, did_you_mean
from sfm.harness.results import Contamination, MetricValue
from sfm.publish.kinds import is_trained


def task_key(task: str, version: int) -> str:
    """``forecast/burgers@v1``: the identity of a task version."""
    return f"{task}@v{version}"


@dataclass
class Entry:
    """One row's primary score on one task version."""

    value: MetricValue
    validity: float
    source: str
    reference: float | None = None  # the reference baseline's value in the same file (or the shared row)
    ratio: float | None = None  # error / reference (inverted for higher-is-better); None = not scored
    curve: list[float | None] = field(default_factory=list)
    date: str = ""
    contamination: Contamination | None = None  # eval trajectories the model trained on (models only)


@dataclass
class Row:
    """A model or baseline, its per-task entries and its overall score.

    ``kind`` is one of :data:`sfm.publish.kinds.UNTRAINED` or :data:`~sfm.publish.kinds.TRAINED` (or a newer
    kind a results file recorded); ``budget`` is the trained model's ``{steps, examples_seen,
    train_seconds}`` (None where not recorded), empty for baselines.
    """

    name: str
    kind: str
    sources: list[str] = field(default_factory=list)
    entries: dict[str, Entry] = field(default_factory=dict)  # task key -> entry
    score: float | None = None
    n_scored: int = 0
    rank: int | None = None
    budget: dict[str, float | int | None] = field(default_factory=dict)

    @property
    def trained(self) -> bool:
        """True for a trained model (token, continuous, operator), False for a baseline or the oracle."""
        return is_trained(self.kind)


@dataclass
class TaskTable:
    """One task version: its metric, direction and the rows that have it, best first."""

    key: str
    task: str
    version: int
    family: str
    metric: str
    higher_is_better: bool
    current: bool = True  # the newest version of this task: counts towards the overall score
    order: list[str] = field(default_factory=list)
    noise: dict[str, Any] = field(default_factory=dict)  # {"metric", "curves": {row: [levels, values]}}


@dataclass
class Leaderboard:
    """Everything the outputs show. ``examples``: ``(task key, row, npz path, first field name)``."""

    rows: list[Row]
    tasks: list[TaskTable]
    baseline: str
    notes: list[str] = field(default_factory=list)
    examples: list[tuple[str, str, str, str]] = field(default_factory=list)

    def row(self, name: str) -> Row:
        """The row called ``name``."""
        for r in self.rows:
            if r.name == name:
                return r
        raise DataError(f"no leaderboard row {name!r}{did_you_mean(name, [r.name for r in self.rows])}")

    def task(self, key: str) -> TaskTable:
        """The task table with key ``task@vN``."""
        for t in self.tasks:
            if t.key == key:
                return t
        raise DataError(f"no task {key!r}{did_you_mean(key, [t.key for t in self.tasks])}")
