"""Does an eval task fit the trained model? Checked against the run record before anything is scored.

A task that asks a model something it was not trained to answer (another task format, a different number
of context frames, other fields, another grid) is refused with one line naming the difference, instead of
being scored as if the model were bad. The record is read through :func:`record_section`, so a
``RunRecord`` (attributes) and a plain ``sfm_run.json`` dict both work; a model without a record (built by
hand, in tests) is not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from sfm.errors import ConfigError
from sfm.harness.rollout import is_field_predictor
from sfm.registry import FAMILIES

if TYPE_CHECKING:
    from sfm.harness.tasks import EvalTask

# Task-format options that may differ between training and evaluation. For a token model: how training
# windows were sampled and the generation budget never change a prompt, and a frame is as many value tokens
# as the grid has points with the time step written in the prompt, so another stride is a fair question of
# resolution or time-step transfer. A field model is built for one grid (its input layer's shape) and takes
# no time step, so only the training-window sampling may differ.
_FREE_OPTIONS = {
    "token": frozenset(
        {
            "windows_per_trajectory",
            "examples_per_equation",
            "max_answer_tokens",
            "time_stride",
            "space_stride",
        }
    ),
    "field": frozenset({"windows_per_trajectory"}),
}


def record_section(record: Any, key: str) -> Any:
    """``record.<key>`` of a ``RunRecord``, or ``record[key]`` of a plain dict record (None where absent)."""
    value = getattr(record, key, None)
    if value is None and isinstance(record, Mapping):
        value = record.get(key)
    return value


def model_kind(loaded: Any) -> str:
    """``baseline`` (no model), ``continuous`` / ``operator`` (field models) or the record's kind (``token``)."""
    if loaded is None:
        return "baseline"
    if is_field_predictor(loaded):
        return str(getattr(loaded, "kind", "field"))
    return str(record_section(getattr(loaded, "record", None), "kind") or "token")


def check_format(task: EvalTask, loaded: Any, fmt: Any) -> None:
    """Refuse a task whose family or task format (built as ``fmt``) the model was not trained for.

    Raises:
        ConfigError: a field model on a family that needs a token model, frames per call that differ from
            the model's, another task format than the recorded one, or options that differ from it.
    """
    if loaded is None:
        return
    field_model = is_field_predictor(loaded)
    if field_model:
        if FAMILIES.meta(task.family).get("answers") != "forecast":
            raise ConfigError(
                f"{task.task}: {model_kind(loaded)} models predict fields; a {task.family} task needs a "
                "token model"
            )
        for key in ("context_frames", "horizon"):
            if int(getattr(loaded, key)) != int(getattr(fmt, key)):
                raise ConfigError(
                    f"{task.task}: {key} is {getattr(fmt, key)} here; the {model_kind(loaded)} model takes "
                    f"{getattr(loaded, key)}"
                )
    trained = record_section(getattr(loaded, "record", None), "task") or {}
    name = trained.get("name")
    if not name:
        return  # nothing recorded to compare with
    if name != task.task_format:
        raise ConfigError(
            f"{task.task}: the model was trained on the {name!r} task format; this task uses {task.task_format!r}"
        )
    was = _trained_options(task, name, trained.get("options") or {})
    now = asdict(fmt)
    free = _FREE_OPTIONS["field" if field_model else "token"]
    diff = [
        f"{k}={now[k]!r} here, {was[k]!r} in training"
        for k in sorted(now)
        if k not in free and k in was and now[k] != was[k]
    ]
    if diff:
        raise ConfigError(
            f"{task.task}: the {name} format differs from the trained model's: {'; '.join(diff)}"
        )


def _trained_options(task: EvalTask, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The recorded format options with the format's defaults filled in."""
    from sfm.tasks import get_task_format

    try:
        return asdict(get_task_format(name, **options))
    except ConfigError as exc:
        raise ConfigError(f"{task.task}: the run record's task options do not build ({exc})") from None


def check_data(
    task: EvalTask,
    loaded: Any,
    fields: list[str],
    *,
    space: tuple[int, ...] | None = None,
    coefficient_names: list[str] | None = None,
) -> None:
    """Refuse data whose fields (or, for a field model, grid and coefficients) the model was not trained on.

    Args:
        task: The task (for messages).
        loaded: The model (None: nothing to check).
        fields: The task data's field names, in channel order.
        space: The grid the model is shown (after ``space_stride``).
        coefficient_names: The windows' coefficient names, sorted (the order field models take them in).

    Raises:
        ConfigError: the first difference, in one line.
    """
    if loaded is None:
        return
    record = getattr(loaded, "record", None)
    data = record_section(record, "data") or {}
    spec = getattr(loaded, "spec", None)
    trained = (
        getattr(spec, "field_names", None)
        or data.get("fields")
        or (record_section(record, "encoding") or {}).get("fields")
    )
    if trained and list(trained) != list(fields):
        raise ConfigError(
            f"{task.task}: the model was trained on fields {list(trained)}; the data has {list(fields)}"
        )
    n_fields = getattr(spec, "n_fields", None)
    if n_fields is not None and int(n_fields) != len(fields):
        raise ConfigError(
            f"{task.task}: the model takes {n_fields} field channels; the data has {len(fields)}"
        )
    if not is_field_predictor(loaded):
        return
    grid = getattr(spec, "space", None) or _grid_shape(data.get("grid"))
    if grid and space is not None and tuple(int(g) for g in grid) != tuple(space):
        raise ConfigError(
            f"{task.task}: the model was trained on a {_shape(grid)} grid; this task shows it {_shape(space)} "
            "(check the data's grid and format.space_stride)"
        )
    names = list(getattr(spec, "coefficient_names", None) or [])
    if names and coefficient_names is not None and names != list(coefficient_names):
        raise ConfigError(
            f"{task.task}: the model takes coefficients {names}; the data states {list(coefficient_names)}"
        )


def _grid_shape(grid: Any) -> tuple[int, ...] | None:
    """Grid sizes from a record's ``data.grid``: ``{axis: size or coordinates}`` or a list of sizes."""
    if isinstance(grid, Mapping):
        return tuple(v if isinstance(v, int) else len(v) for v in grid.values())
    if isinstance(grid, list | tuple) and all(isinstance(v, int) for v in grid):
        return tuple(grid)
    return None


def _shape(space: Any) -> str:
    return "x".join(str(int(s)) for s in space)
