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
from sfm.physics.io.hdf5 import dataset, field_dataset, read_small, text
from sfm.physics.metadata import SPATIAL_AXES

CFD_KEYS = ("density", "pressure", "Vx", "Vy", "Vz")
# Most entries a coordinate may have before it is refused unread (a corrupt header can declare 10^12).
_MOST = 10**7


class Layout(NamedTuple):
    """What a file holds: trajectories, HDF5 keys (column -> key, or the per-seed group names), the
    ``[T, *space]`` shape of each column, coordinates, and notes for ``FieldMeta.extra``."""

    num_rows: int
    keys: dict[str, str] | list[str]
    shapes: dict[str, list[int]]
    coords: dict[str, list[float]]
    extra: dict[str, Any]


def layout_kind(f: h5py.File, path: Path) -> str:
    """``darcy``, ``tensor``, ``cfd``, ``ns_incom`` or ``seeds`` (see the :mod:`~sfm.physics.io.pdebench` docstring)."""
    keys = list(f.keys())
    if "tensor" in keys and "nu" in keys:
        return "darcy"
    if "tensor" in keys:
        return "tensor"
    if "density" in keys:
        return "cfd"
    if "velocity" in keys:
        return "ns_incom"
    if keys and all(isinstance(f[k], h5py.Group) and "data" in f[k] for k in keys):
        return "seeds"
    shown = ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "")
    raise DataError(
        f"{path}: not a PDEBench layout (expected 'tensor', CFD fields such as 'density', 'velocity' of "
        f"incompressible Navier-Stokes, or per-seed groups like '0000/data'); found keys: {shown or 'none'}"
    )


def inspect_arrays(f: h5py.File, path: Path, layout: str) -> Layout:
    """The :class:`Layout` of a single-array file (``tensor``, ``darcy`` or ``cfd``)."""
    if layout == "darcy":
        keys = {"a": "nu", "u": "tensor"}
    elif layout == "cfd":
        keys = {k: k for k in CFD_KEYS if k in f}
    else:
        keys = {"u": "tensor"}
    main = field_dataset(f, keys.get("u", "density"), path)
    if main.ndim < 3:
        raise DataError(f"{path}: {main.name!r} has shape {main.shape}; expected [N, T, X(, Y, Z)]")
    n, nt, space = main.shape[0], main.shape[1], tuple(main.shape[2:])
    shapes = {}
    for name, key in keys.items():
        d = field_dataset(f, key, path)
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
    t = f.get("t-coordinate")
    extra = {"time_note": _TIME_NOTE} if isinstance(t, h5py.Dataset) and t.size == nt + 1 else {}
    return Layout(n, keys, shapes, coords, extra)


_TIME_NOTE = (
    "PDEBench stores T+1 t-coordinate entries (arange(T+1)*dt_save) for T frames; "
    "frame k is at t_k = k*dt_save, so the first T entries were kept"
)


def inspect_seeds(f: h5py.File, path: Path, names: list[str]) -> Layout:
    """The :class:`Layout` of a per-seed file whose channels are named ``names``."""
    keys = sorted(k for k in f if isinstance(f[k], h5py.Group))
    if not keys:
        raise DataError(f"{path}: no per-seed groups")
    first = f[keys[0]]
    data = field_dataset(first, "data", path)
    shape = data.shape
    for k in keys[1:]:  # metadata only: cheap even for a thousand groups
        other = field_dataset(f[k], "data", path)
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


def inspect_ns_incom(f: h5py.File, path: Path) -> Layout:
    """The :class:`Layout` of a 2D incompressible Navier-Stokes file (``velocity``, ``particles``, ``force``).

    Columns: ``Vx``, ``Vy`` (the velocity components, named like the CFD files'), ``particles`` (the
    advected tracer) and ``Fx``, ``Fy`` (the forcing, one field per trajectory, stored with a time axis of
    length 1 as for The Well's constant fields). ``keys`` maps each column to ``(dataset, component)``.
    """
    velocity = field_dataset(f, "velocity", path)
    d = velocity.ndim - 3
    if d not in (1, 2, 3) or velocity.shape[-1] != d:
        raise DataError(f"{path}: 'velocity' has shape {velocity.shape}; expected [N, T, X, Y, 2]")
    n, nt, space = velocity.shape[0], velocity.shape[1], tuple(velocity.shape[2:-1])
    names = [f"V{a}" for a in SPATIAL_AXES[:d]]
    keys: dict[str, tuple[str, int]] = {c: ("velocity", k) for k, c in enumerate(names)}
    shapes = {c: [nt, *space] for c in names}
    if "particles" in f:
        _want(field_dataset(f, "particles", path), [(n, nt, *space, 1), (n, nt, *space)], path)
        keys["particles"], shapes["particles"] = ("particles", 0), [nt, *space]
    if "force" in f:
        _want(field_dataset(f, "force", path), [(n, *space, d)], path)
        for k, a in enumerate(SPATIAL_AXES[:d]):
            keys[f"F{a}"], shapes[f"F{a}"] = ("force", k), [1, *space]
    coords: dict[str, list[float]] = {}
    extra: dict[str, Any] = {"constant_in_time": [c for c in shapes if c.startswith("F")]}
    t = f.get("t")
    if t is None:
        if nt > 1:
            raise DataError(f"{path}: missing dataset 't' (the data have {nt} frames)")
    elif not isinstance(t, h5py.Dataset) or t.shape not in ((n, nt), (nt,)):
        raise DataError(f"{path}: 't' has shape {getattr(t, 'shape', None)}, expected [{n}, {nt}]")
    else:
        values = read_small(t, path, n * nt).reshape(-1, nt)
        if not np.all(np.isfinite(values)):
            raise DataError(f"{path}: 't' holds NaN or Inf values")
        if not np.allclose(values, values[:1], rtol=1e-6, atol=1e-12):
            raise DataError(f"{path}: 't' differs between trajectories; only shared time grids are supported")
        coords["t"] = _axis_values(values[0], nt, path, "t")
    grid = all(f"{a}-coordinate" in f for a in SPATIAL_AXES[:d])
    for axis, size in zip(SPATIAL_AXES, space):
        if grid:
            coords[axis] = _axis(dataset(f, f"{axis}-coordinate", path), size, path, f"{axis}-coordinate")
        else:  # PDEBench's generator does not store its grid: cell centres of the unit square
            coords[axis] = ((np.arange(size) + 0.5) / size).tolist()
    if not grid:
        extra["grid_note"] = (
            "the file stores no coordinates; cell centres of the unit square (0, 1)^d assumed"
        )
    if not extra["constant_in_time"]:
        del extra["constant_in_time"]
    return Layout(n, keys, shapes, coords, extra)


def _want(d: h5py.Dataset, shapes: list[tuple[int, ...]], path: Path) -> None:
    if d.shape not in shapes:
        raise DataError(f"{path}: {d.name.lstrip('/')!r} has shape {d.shape}, expected {shapes[0]}")


def _axis(d: h5py.Dataset, size: int, path: Path, key: str) -> list[float]:
    values = read_small(d, path, _MOST).reshape(-1)
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
    if not isinstance(d, h5py.Dataset):
        raise DataError(f"{path}: {key!r} is not a dataset")
    values = read_small(d, path, _MOST).reshape(-1)
    if not np.all(np.isfinite(values)):  # the dropped last entry too: a NaN anywhere means a broken file
        raise DataError(f"{path}: {key!r} holds NaN or Inf values")
    if len(values) == nt + 1:
        values = values[:nt]  # see _TIME_NOTE
    return _axis_values(values, nt, path, key)


def _axis_values(values: np.ndarray, nt: int, path: Path, key: str) -> list[float]:
    if len(values) != nt:
        raise DataError(f"{path}: {key!r} has {len(values)} entries but the data have {nt} frames")
    if not np.all(np.isfinite(values)):
        raise DataError(f"{path}: {key!r} holds NaN or Inf values")
    return values.tolist()
