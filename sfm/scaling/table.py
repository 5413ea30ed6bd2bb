"""The sweep results table: reading it, checking it, and cutting it into curves.

A results table has one row per trained-and-evaluated cell of a sweep, with at least the columns ``task``,
``arm`` (``pretrained`` or ``scratch``), ``data_size``, ``params``, ``steps``, ``tokens`` and one column per
metric (``nrmse``...), optionally ``lora_rank`` and ``model``. It is read from a CSV file or from a sweep
folder holding ``cells.csv``. Columns are loaded as float arrays where every non-empty value is a number,
as strings otherwise; empty cells of a numeric column are NaN.

Messages name rows by their CSV line (the header is line 1), or by their 0-based index for tables given
as Python objects.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sfm.errors import DataError, UnknownNameError, did_you_mean

ARMS = ("pretrained", "scratch")
AXES = ("data_size", "params", "compute", "steps", "tokens")
"""What a curve can be a function of; ``compute`` is derived as ``6 * params * tokens``."""
JOINT_DATA = ("tokens", "data_size")
"""What the D of the joint law L(N, D) can be; ``C = 6 N D`` holds for tokens."""
TEXT_COLUMNS = ("task", "arm", "model")
CELLS_FILE = "cells.csv"

# Which columns identify one curve, per x axis, when --group-by is not given: everything held fixed while x
# varies. Scaling data at a fixed model holds the model (and its rank and size) fixed; scaling the model
# holds the data fixed; compute mixes both, so only task and arm define its curve. Columns that move with
# x (tokens grow with data or steps; model and rank with params) are left out. Absent columns are skipped.
DEFAULT_GROUP_BY = {
    "data_size": ("task", "arm", "model", "lora_rank", "params"),
    "params": ("task", "arm", "data_size"),
    "compute": ("task", "arm"),
    "steps": ("task", "arm", "model", "lora_rank", "params", "data_size"),
    "tokens": ("task", "arm", "model", "lora_rank", "params"),
}


@dataclass
class ResultsTable:
    """Columns of a results table plus where each row came from (for messages).

    Attributes:
        columns: Name -> 1-D array (float for numeric columns, object/str otherwise), all the same length.
        source: The file read, or ``"table"``.
        rows: Label of each row in messages (``"line 5"``, ``"row 3"``).
    """

    columns: dict[str, np.ndarray]
    source: str = "table"
    rows: list[str] | None = None

    def __post_init__(self) -> None:
        lengths = {k: len(v) for k, v in self.columns.items()}
        if len(set(lengths.values())) > 1:
            raise DataError(f"{self.source}: columns differ in length: {lengths}")
        if self.rows is None:
            self.rows = [f"row {i}" for i in range(len(self))]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def column(self, name: str, *, what: str = "column") -> np.ndarray:
        """The column ``name``; a missing one raises an error suggesting the closest name."""
        if name == "compute" and "compute" not in self.columns:
            # Training FLOPs ~ 6 per parameter per token (forward 2, backward 4; Kaplan et al. 2020).
            for need in ("params", "tokens"):
                if need not in self.columns:
                    raise UnknownNameError(
                        f"{self.source}: compute = 6 * params * tokens needs a column {need!r}"
                        f"{did_you_mean(need, self.columns)}; columns: {', '.join(self.columns)}"
                    )
            return 6.0 * self.numeric("params") * self.numeric("tokens")
        if name not in self.columns:
            raise UnknownNameError(
                f"{self.source}: no {what} {name!r}{did_you_mean(name, self.columns)}; "
                f"columns: {', '.join(self.columns)}"
            )
        return self.columns[name]

    def numeric(self, name: str, *, what: str = "column") -> np.ndarray:
        """Column ``name`` as floats; a text value raises an error naming its row."""
        col = self.column(name, what=what)
        if col.dtype.kind == "f":
            return col
        for i, v in enumerate(col):
            if _to_float(v) is None:
                raise DataError(f"{self.source}: {what} {name!r} must be numeric; {self.rows[i]} holds {v!r}")
        return np.array([_to_float(v) for v in col], dtype=float)

    def positive(self, name: str, *, what: str = "column") -> np.ndarray:
        """Column ``name`` as floats, all finite and > 0, or an error naming every bad row."""
        v = self.numeric(name, what=what)
        bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
        if bad.size:
            shown = ", ".join(f"{self.rows[i]} ({_show(v[i])})" for i in bad[:8])
            more = f" and {bad.size - 8} more" if bad.size > 8 else ""
            raise DataError(f"{self.source}: {what} {name!r} must be finite and > 0; bad rows: {shown}{more}")
        return v

    def take(self, idx: np.ndarray) -> ResultsTable:
        """The rows ``idx`` as a new table."""
        return ResultsTable(
            {k: v[idx] for k, v in self.columns.items()}, self.source, [self.rows[i] for i in idx]
        )


def load_table(
    table: str | Path | ResultsTable | Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
) -> ResultsTable:
    """Accept a path (CSV file or sweep folder), a column mapping, a list of row dicts, or a table."""
    if isinstance(table, ResultsTable):
        return table
    if isinstance(table, str | Path):
        return read_table(table)
    if isinstance(table, Mapping):
        return ResultsTable({str(k): _column(list(v), str(k)) for k, v in table.items()})
    rows = list(table)
    names = list(dict.fromkeys(k for r in rows for k in r))
    return ResultsTable({k: _column([r.get(k) for r in rows], k) for k in names})


def read_table(path: str | Path) -> ResultsTable:
    """Read a results CSV, or the ``cells.csv`` of a sweep folder.

    Raises:
        DataError: The path does not exist, the folder has no ``cells.csv``, or the file has no rows.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / CELLS_FILE).is_file():
            raise DataError(f"{path}: a sweep folder must contain {CELLS_FILE} (not found)")
        path = path / CELLS_FILE
    elif not path.is_file():
        raise DataError(f"{path}: no such file or folder")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            raise DataError(f"{path}: empty file (expected a CSV header)")
        header = [h.strip() for h in reader.fieldnames]
        records = [[row.get(h) for h in reader.fieldnames] for row in reader]
    if not records:
        raise DataError(f"{path}: the CSV has a header but no rows")
    cols = {h: _column([r[j] for r in records], h) for j, h in enumerate(header)}
    return ResultsTable(
        cols, str(path), [f"line {reader_line}" for reader_line in range(2, len(records) + 2)]
    )


def group_rows(table: ResultsTable, by: Sequence[str]) -> list[tuple[dict[str, Any], np.ndarray]]:
    """Split the rows by the values of columns ``by``: ``[(group values, row indices)]``, sorted by values."""
    keys = [tuple(_key(table.column(c, what="group-by column")[i]) for c in by) for i in range(len(table))]
    groups: dict[tuple, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    ordered = sorted(groups, key=lambda k: tuple(str(v) for v in k))
    return [(dict(zip(by, k)), np.array(groups[k])) for k in ordered]


def curve_id(group: Mapping[str, Any]) -> str:
    """``"task=burgers,arm=scratch"``: names a curve in messages, tables and file names."""
    return ",".join(f"{k}={'' if v is None else v}" for k, v in group.items()) or "all"


def check_arms(table: ResultsTable, extra: Sequence[str] = ()) -> None:
    """Refuse arm names other than ``pretrained``/``scratch`` and the ``extra`` (reference) arms named: a
    typo would silently skip comparisons."""
    if "arm" not in table.columns:
        return
    known = (*ARMS, *extra)
    for i, v in enumerate(table.columns["arm"]):
        if v not in known:
            hint = "" if extra else f" (a reference arm: pass --reference {v})"
            raise UnknownNameError(
                f"{table.source}: {table.rows[i]}: unknown arm {v!r}{did_you_mean(str(v), known)}; "
                f"known: {', '.join(known)}{hint}"
            )


def _column(values: list[Any], name: str) -> np.ndarray:
    if name not in TEXT_COLUMNS:
        floats = [_to_float(v) for v in values]
        if all(f is not None for f in floats):
            return np.array(floats, dtype=float)
    return np.array(["" if v is None else str(v).strip() for v in values], dtype=object)


def _to_float(v: Any) -> float | None:
    """A number, NaN for an empty cell, or None for text."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return float("nan")
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _key(v: Any) -> Any:
    # Group keys compare equal across the float/int/NaN forms a CSV gives: 8.0 -> 8, NaN/"" -> None.
    if isinstance(v, float | np.floating):
        if np.isnan(v):
            return None
        return int(v) if float(v).is_integer() else float(v)
    return None if v == "" else v


def _show(v: float) -> str:
    return f"{v:g}"
