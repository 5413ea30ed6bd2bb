"""The typed results schema: one JSON per (model, run), written atomically, read back strictly.

    {
      "schema_version": 1,
      "model": {"name": ..., "path": ..., "base_model": ..., "fingerprint": ..., "kind": "token"|...|"baseline"},
      "tasks": {"forecast/burgers-tiny": {TaskResult}},
      "config": {...}, "sfm_version": ..., "git": ..., "date": ..., "seed": 0
    }

Per-sample outputs go beside it as ``samples_<task>.jsonl``, a few example fields for plots as
``examples_<task>.npz``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfm import config
from sfm.errors import DataError
from sfm.utils.io import atomic_write_json, read_json

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"


@dataclass
class MetricValue:
    """A reported number with its bootstrap interval and sample count."""

    value: float | None  # None where the number is not finite (JSON has no NaN)
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0

    @property
    def finite(self) -> bool:
        return self.value is not None and math.isfinite(self.value)


@dataclass
class Scores:
    """Metrics of one predictor on one task: over every predicted frame, and per named window."""

    metrics: dict[str, MetricValue] = field(default_factory=dict)
    windows: dict[str, dict[str, MetricValue]] = field(default_factory=dict)
    curves: dict[str, list[float | None]] = field(default_factory=dict)


@dataclass
class Contamination:
    """How many of a task's eval trajectories the evaluated run trained on (:mod:`sfm.harness.contamination`).

    Attributes:
        overlapping: Eval trajectories found in the run's training data; None when it could not be checked.
        of: Eval trajectories the task scored.
        kind: The evidence found: ``simulator`` (seed and parameters), ``file`` (source file and index),
            ``content`` (near-identical frames).
        note: Why the check could not be made, when it could not.
    """

    overlapping: int | None
    of: int
    kind: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def contaminated(self) -> bool:
        """True when some eval trajectory was trained on."""
        return bool(self.overlapping)


@dataclass
class TaskResult:
    """Results of one eval task.

    Attributes:
        task: Task name. version: Its version. family: Its family. primary_metric: What ranks it.
        higher_is_better: Direction of the primary metric.
        n_examples: Examples scored.
        validity: Fraction of the model's (frame, field) outputs that decoded (1.0 for baselines).
        validity_note: What ``validity`` counts for this model (field models return arrays: "arrays, no
            decoding", always 1.0).
        model: The model's scores (None for a baseline-only run).
        baselines: Baseline name -> its scores on the same examples.
        extra: Family-specific results (noise curves, drift, per-family accuracy...).
        config: The task definition used.
        data_fingerprint: Fingerprint of the data the task read.
        contamination: Eval trajectories the run trained on (None: not checked, e.g. a baseline; results
            written before the check existed).
    """

    task: str
    version: int
    family: str
    primary_metric: str
    higher_is_better: bool = False
    n_examples: int = 0
    validity: float = 1.0
    validity_note: str = ""
    model: Scores | None = None
    baselines: dict[str, Scores] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: str | None = None
    contamination: Contamination | None = None


@dataclass
class ModelInfo:
    """What was evaluated.

    Attributes:
        name: Display name. kind: ``token``, ``continuous`` or ``operator`` for a trained model (results
            written before the three kinds say ``model``), ``baseline`` for a baseline alone.
        path: The run folder. base_model: Its backbone. fingerprint: Of its weights and record.
        encoding: The number encoding of a token model. budget: The training budget spent (``steps``,
            ``examples_seen``, ``train_seconds``), as the run record states it.
    """

    name: str
    kind: str = "model"
    path: str | None = None
    base_model: str | None = None
    fingerprint: str | None = None
    encoding: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalResults:
    """One evaluation run of one model over several tasks."""

    model: ModelInfo
    tasks: dict[str, TaskResult] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    sfm_version: str = ""
    git: str | None = None
    date: str = ""
    schema_version: int = SCHEMA_VERSION

    def save(self, path: str | Path) -> Path:
        """Write atomically (``path`` may be a folder: ``results.json`` inside it)."""
        path = Path(path)
        if path.suffix != ".json":
            path = path / RESULTS_FILE
        return atomic_write_json(path, config.to_dict(self))

    @classmethod
    def load(cls, path: str | Path) -> EvalResults:
        """Read and check a results file.

        Raises:
            DataError: unreadable JSON, another schema version, or a malformed record (naming the key).
        """
        path = Path(path)
        try:
            data = read_json(path)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: unreadable results file ({exc})") from None
        if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
            raise DataError(f"{path}: not an sfm results file of schema version {SCHEMA_VERSION}")
        from sfm.errors import ConfigError

        try:
            return config.from_dict(cls, data, where=str(path))
        except ConfigError as exc:
            raise DataError(str(exc)) from None
