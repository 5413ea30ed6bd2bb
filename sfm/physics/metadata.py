"""FieldMeta: the one typed metadata record that travels with every field data set.

Builders, tokenizers, metrics and cards all read the same record, so a data set's grid, boundary conditions
and normalization statistics are stated once. It is stored as ``field_meta.json`` beside the data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sfm.config import from_dict, to_dict
from sfm.errors import DataError
from sfm.utils.io import atomic_write_json, read_json

FILENAME = "field_meta.json"
SPATIAL_AXES = ("x", "y", "z")
#: The splits of every data set, in this order.
SPLITS = ("train", "validation", "test")


@dataclass
class FieldMeta:
    """Metadata of one field data set.

    Attributes:
        family: PDE family (``"burgers"``, ``"navier_stokes"``, ...).
        equation: The equation in symbols, e.g. ``"u_t + u*u_x = nu*u_xx"``.
        description: The equation and set-up in words.
        fields: Physical field names, one data set column each (``["u"]`` for a scalar PDE).
        coords: Coordinate arrays, ``t`` first, then ``x``, ``y``, ``z`` as the PDE has them; a steady
            problem (Darcy) has no ``t``.
        boundary_conditions: Per spatial axis, e.g. ``{"x": "periodic"}``.
        coefficients: Coefficients fixed across the data set (name -> value).
        varying: Names of coefficients that vary per trajectory; each is a data set column.
        stats: Per field normalization statistics: ``mean``, ``std``, ``min``, ``max``, ``abs_mean`` (over
            the train split).
        source: Provenance: ``kind`` (``generator`` or ``importer``), ``name``, ``version``, and the
            parameters or files used.
        field_shapes: Per field, the shape of one trajectory ``[time, *space]`` (plus a trailing component
            axis for vector fields).
        splits: Number of trajectories per split (:data:`SPLITS`).
        extra: Anything else a reader or generator wants to keep (free-form).
    """

    family: str
    equation: str
    description: str
    fields: list[str]
    coords: dict[str, list[float]]
    boundary_conditions: dict[str, str] = field(default_factory=dict)
    coefficients: dict[str, float] = field(default_factory=dict)
    varying: list[str] = field(default_factory=list)
    stats: dict[str, dict[str, float]] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    field_shapes: dict[str, list[int]] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def spatial_axes(self) -> list[str]:
        """Spatial coordinate names in order (``["x"]``, ``["x", "y"]``)."""
        return [a for a in SPATIAL_AXES if a in self.coords]

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions."""
        return len(self.spatial_axes)

    @property
    def steady(self) -> bool:
        """True for time-independent problems (no ``t`` coordinate)."""
        return "t" not in self.coords

    @property
    def dt(self) -> float | None:
        """Time step between stored frames (None for steady problems or a single frame)."""
        t = self.coords.get("t")
        if t is None or len(t) < 2:
            return None
        return float(t[1] - t[0])

    def spacing(self, axis: str) -> float:
        """Grid spacing along a spatial ``axis`` (uniform grids)."""
        c = self.coords[axis]
        return float(c[1] - c[0]) if len(c) > 1 else 1.0

    def replace(self, **changes: Any) -> FieldMeta:
        """A copy with some attributes changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "") -> FieldMeta:
        """Strictly build from plain data (unknown keys are an error)."""
        return from_dict(cls, data, where=where)

    def save(self, folder: str | Path) -> Path:
        """Write ``field_meta.json`` into ``folder`` (atomically)."""
        return atomic_write_json(Path(folder) / FILENAME, self.to_dict())

    @classmethod
    def load(cls, folder: str | Path) -> FieldMeta:
        """Read ``field_meta.json`` from ``folder``.

        Raises:
            DataError: the file is missing or malformed.
        """
        path = Path(folder) / FILENAME
        if not path.is_file():
            raise DataError(f"{folder}: not a field data set (no {FILENAME})")
        try:
            data = read_json(path)
        except ValueError as exc:
            raise DataError(f"{path}: invalid JSON: {exc}") from None
        return cls.from_dict(data, where=str(path))


def field_stats(values: np.ndarray) -> dict[str, float]:
    """Normalization statistics of one field over all its values (float64 accumulation)."""
    v = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(v.mean()),
        "std": float(v.std()),
        "min": float(v.min()),
        "max": float(v.max()),
        "abs_mean": float(np.abs(v).mean()),
    }


class RunningStats:
    """Streaming mean/std/min/max/abs-mean of a field over chunks (Chan et al.'s parallel update).

    Lets builders compute normalization statistics without holding the data set in memory.
    """

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.abs_sum = 0.0
        self.min = np.inf
        self.max = -np.inf

    def update(self, values: np.ndarray) -> None:
        """Add a chunk of values."""
        v = np.asarray(values, dtype=np.float64).ravel()
        if v.size == 0:
            return
        n_b = v.size
        mean_b = float(v.mean())
        m2_b = float(((v - mean_b) ** 2).sum())
        delta = mean_b - self.mean
        n = self.n + n_b
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n
        self.abs_sum += float(np.abs(v).sum())
        self.min = min(self.min, float(v.min()))
        self.max = max(self.max, float(v.max()))

    def result(self) -> dict[str, float]:
        """The statistics in :func:`field_stats` form."""
        if self.n == 0:
            return {"mean": 0.0, "std": 0.0, "min": 0.0, "max": 0.0, "abs_mean": 0.0}
        return {
            "mean": self.mean,
            "std": float(np.sqrt(self.m2 / self.n)),
            "min": self.min,
            "max": self.max,
            "abs_mean": self.abs_sum / self.n,
        }
