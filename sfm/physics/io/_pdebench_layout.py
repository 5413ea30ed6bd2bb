"""The HDF5 layouts of PDEBench files: which one a file has, and its rows, field shapes and coordinates.

Read by :mod:`sfm.physics.io.pdebench` (see its docstring for the layouts); every failure is one
:class:`DataError` line naming the file and key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import h5py
import numpy as np
import yaml

from sfm.errors import DataError
from sfm.physics.io.hdf5 import dataset, text
from sfm.physics.metadata import SPATIAL_AXES

CFD_KEYS = ("density", "pressure", "Vx", "Vy", "Vz")


class Layout(NamedTuple):
    """What a file holds: trajectories, HDF5 keys (column -> key, or the per-seed group names), the
    ``[T, *space]`` shape of each column, coordinates, and notes for ``FieldMeta.extra``."""

    num_rows: int
    keys: dict[str, str] | list[str]
    shapes: dict[str, list[int]]
    coords: dict[str, list[float]]
    extra: dict[str, Any]


def layout_kind(f: h5py.File, path: Path) -> str:
    """``darcy``, ``tensor``, ``cfd`` or ``seeds`` (see the :mod:`~sfm.physics.io.pdebench` docstring)."""
    keys = list(f.keys())
    if "tensor" in keys and "nu" in keys:
        return "darcy"
    if "tensor" in keys:
        return "tensor"
    if "density" in keys:
        return "cfd"
    if keys and all(isinstance(f[k], h5py.Group) and "data" in f[k] for k in keys):
        return "seeds"
    shown = ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "")
    raise DataError(
        f"{path}: not a PDEBench layout (expected 'tensor', CFD fields such as 'density', or per-seed "
        f"groups like '0000/data'); found keys: {shown or 'none'}"
    )


def inspect_arrays(f: h5py.File, path: Path, layout: str) -> Layout:
    """The :class:`Layout` of a single-array file (``tensor``, ``darcy`` or ``cfd``)."""
    if layout == "darcy":
        keys = {"a": "nu", "u": "tensor"}
    elif layout == "cfd":
        keys = {k: k for k in CFD_KEYS if k in f}
    else:
        keys = {"u": "tensor"}
    main = dataset(f, keys.get("u", "density"), path)
    if main.ndim < 3:
        raise DataError(f"{path}: {main.name!r} has shape {main.shape}; expected [N, T, X(, Y, Z)]")
    n, nt, space = main.shape[0], main.shape[1], tuple(main.shape[2:])
    shapes = {}
    for name, key in keys.items():
        d = dataset(f, key, path)
        want = (n, *space) if (layout == "darcy" and key == "nu") else (n, nt, *space)
        if d.shape != want:
            raise DataError(f"{path}: {key!r} has shape {d.shape}, expected {want} like {main.name!r}")
        shapes[name] = [nt, *space]
    coords: dict[str, list[float]] = {}
    if layout != "darcy":
        t = _time(f.get("t-coordinate"), nt, path, "t-coordinate")
        if t is not None:
            coords["t"] = t
    for axis, size in zip(SPATIAL_AXES, space):
        coords[axis] = _axis(dataset(f, f"{axis}-coordinate", path), size, path, f"{axis}-coordinate")
    extra = {"time_note": _TIME_NOTE} if "t-coordinate" in f and len(f["t-coordinate"]) == nt + 1 else {}
    return Layout(n, keys, shapes, coords, extra)


_TIME_NOTE = (
    "PDEBench stores T+1 t-coordinate entries (arange(T+1)*dt_save) for T frames; "
    "frame k is at t_k = k*dt_save, so the first T entries were kept"
)


def inspect_seeds(f: h5py.File, path: Path, names: list[str]) -> Layout:
    """The :class:`Layout` of a per-seed file whose channels are named ``names``."""
    keys = sorted(k for k in f if isinstance(f[k], h5py.Group))
    first = f[keys[0]]
    data = dataset(first, "data", path)
    shape = data.shape
    for k in keys[1:]:  # metadata only: cheap even for a thousand groups
        other = dataset(f[k], "data", path)
        if other.shape != shape:
            raise DataError(f"{path}: '{k}/data' has shape {other.shape}, but '{keys[0]}/data' has {shape}")
    if len(shape) < 3:
        raise DataError(f"{path}: '{keys[0]}/data' has shape {shape}; expected [T, X(, Y), C]")
    nt, space, channels = shape[0], tuple(shape[1:-1]), shape[-1]
    if len(names) != channels:
        raise DataError(
            f"{path}: '{keys[0]}/data' has {channels} channel(s) but {len(names)} field name(s) {names}; "
            f"pass fields=[...] with {channels} name(s)"
        )
    grid = first.get("grid")
    if not isinstance(grid, h5py.Group):
        raise DataError(f"{path}: missing group '{keys[0]}/grid'")
    coords: dict[str, list[float]] = {}
    t = _time(grid.get("t"), nt, path, f"{keys[0]}/grid/t")
    if t is not None:
        coords["t"] = t
    for axis, size in zip(SPATIAL_AXES, space):
        coords[axis] = _axis(dataset(grid, axis, path), size, path, f"{keys[0]}/grid/{axis}")
    extra: dict[str, Any] = {}
    if "config" in first.attrs:
        try:
            config = yaml.safe_load(text(first.attrs["config"]))
        except yaml.YAMLError:
            config = None
        if isinstance(config, dict):
            extra["config"] = config.get("sim", config)
    return Layout(len(keys), keys, {n: [nt, *space] for n in names}, coords, extra)


def _axis(d: h5py.Dataset, size: int, path: Path, key: str) -> list[float]:
    values = np.asarray(d[()], dtype=np.float64).reshape(-1)
    if len(values) != size:
        raise DataError(
            f"{path}: {key!r} has {len(values)} entries but the data have {size} points on that axis"
        )
    if not np.all(np.isfinite(values)):
        raise DataError(f"{path}: {key!r} holds NaN or Inf values")
    return values.tolist()


def _time(d: Any, nt: int, path: Path, key: str) -> list[float] | None:
    if d is None:
        if nt == 1:
            return None  # a single frame (steady solution): no time coordinate
        raise DataError(f"{path}: missing dataset {key!r} (the data have {nt} frames)")
    values = np.asarray(d[()], dtype=np.float64).reshape(-1)
    if len(values) == nt + 1:
        values = values[:nt]  # see _TIME_NOTE
    return _axis_values(values, nt, path, key)


def _axis_values(values: np.ndarray, nt: int, path: Path, key: str) -> list[float]:
    if len(values) != nt:
        raise DataError(f"{path}: {key!r} has {len(values)} entries but the data have {nt} frames")
    if not np.all(np.isfinite(values)):
        raise DataError(f"{path}: {key!r} holds NaN or Inf values")
    return values.tolist()
