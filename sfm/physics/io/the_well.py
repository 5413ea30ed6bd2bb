"""The Well (Ohana et al., NeurIPS 2024 Datasets and Benchmarks) HDF5 files as field data sets.

Layout read here (the one The Well's own ``WellDataset`` reads): root attributes ``dataset_name``,
``n_spatial_dims``, ``n_trajectories``, ``grid_type``, ``simulation_parameters`` (names of numeric root
attributes); group ``dimensions`` (``time`` and one dataset per name in its ``spatial_dims`` attribute);
``boundary_conditions`` (one group per condition with ``bc_type``, ``associated_dims`` and a ``mask``);
``scalars`` (named in its ``field_names`` attribute); ``t0_fields``, ``t1_fields``, ``t2_fields`` holding
arrays ``[traj, time, *space, (D or D, D)]`` whose ``sample_varying``, ``time_varying`` and ``dim_varying``
attributes say which of those axes are actually stored. A data set folder looks like
``<name>/data/{train,valid,test}/*.hdf5`` with ``<name>/stats.yaml``.

What becomes what:

* Each scalar field is one column; a vector or tensor field becomes one column per component, named as
  The Well names its flattened channels (``velocity_x``, ``velocity_y``; ``D_xx``, ``D_xy``, ...), so every
  column is a plain ``[time, *space]`` array and ``field_shapes`` stays one shape per column.
* A field that does not vary in time is stored once per trajectory, with a time axis of length 1 (its
  ``field_shapes`` entry starts with 1; ``extra.constant_in_time`` lists them). A field that does not vary
  by trajectory is repeated in every row, and an axis it does not vary along is broadcast, so every row is
  self-contained.
* Scalars (and numeric ``simulation_parameters``) constant over a file are coefficients; those differing
  between files, or varying by trajectory, become float64 columns. Time-varying scalars are not imported
  (listed in ``extra.skipped_scalars``).
* ``train/``, ``valid/``, ``test/`` folders become the ``train``, ``validation``, ``test`` splits when all
  three are given; otherwise the builder splits by seed.
* ``stats.yaml`` (means, stds, rms, and their time-delta versions) is kept per column in
  ``extra.reference_stats``; sfm's own ``stats`` are recomputed over the train split as for every data set.
  ``extra.normalization`` says which of the two to normalize with: the reference mean and std when
  ``stats.yaml`` has both for every column, else (with one warning naming the missing keys) the train
  split's (see :mod:`sfm.physics.io._well_stats`).
* Spatial axes are stored as ``x``, ``y``, ``z`` in The Well's order; other names (``r``, ``theta``) are
  recorded in ``extra.axis_names``.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from sfm.errors import DataError
from sfm.physics.io._well_stats import (
    NormalizationWarning,
    choose_normalization,
    normalization_stats,
    reference_stats,
)
from sfm.physics.io.hdf5 import (
    attr_number,
    dataset,
    field_dataset,
    open_h5,
    read_small,
    take_rows,
    text,
    texts,
)
from sfm.physics.io.rows import FileInfo, FileRows, check_same_grid, merge_coefficients
from sfm.physics.metadata import SPATIAL_AXES, FieldMeta
from sfm.registry import IMPORTERS

__all__ = ["NormalizationWarning", "TheWellRows", "normalization_stats", "open_the_well"]

VERSION = "1"
_MOST = 10**7  # most entries of a coordinate read whole; a corrupt header can declare 10^12
_SPLIT_DIRS = {"train": "train", "valid": "validation", "test": "test"}


class TheWellRows(FileRows):
    """Rows of one or more files of a Well data set."""

    def read_file(self, info: FileInfo, local: np.ndarray) -> dict[str, np.ndarray]:
        sizes = info.extra["sizes"]
        out: dict[str, np.ndarray] = {}
        with open_h5(info.path) as f:
            for src in info.extra["sources"]:
                d = dataset(f, src["key"], info.path)
                arr = take_rows(d, local) if src["sample"] else np.broadcast_to(d[()], (len(local), *d.shape))
                if not src["time"]:
                    arr = arr[:, None]  # one frame: the field is constant in time
                for axis, varies in enumerate(src["dims"]):  # broadcast the axes the field is constant along
                    if not varies:
                        arr = np.expand_dims(arr, 2 + axis)
                shape = (len(local), arr.shape[1], *sizes)
                for column, component in src["columns"].items():
                    part = arr[(..., *component)] if component else arr
                    out[column] = np.broadcast_to(part, shape)
        return out


@IMPORTERS.register(
    "the-well", description="The Well HDF5 files (data/{train,valid,test}/*.hdf5 + stats.yaml)"
)
def open_the_well(
    paths: list[Path],
    *,
    stats: str | None = None,
    equation: str | None = None,
    description: str | None = None,
    normalization: str | None = None,
    split: str | None = None,
) -> TheWellRows:
    """Open files of one Well data set as one row source.

    Args:
        paths: HDF5 files, split folders (``train/``), a ``data/`` folder or the data set folder.
        stats: Path of ``stats.yaml`` when it is not beside the data (``<name>/stats.yaml``).
        equation: The PDE in symbols (The Well's files do not state it).
        description: The set-up in words.
        normalization: ``reference`` to normalize with ``stats.yaml``'s mean and std (when it has both for
            every column; otherwise a warning names the missing keys and the train split's statistics are
            used), ``train`` for the train split's statistics; default: ``reference`` where a
            ``stats.yaml`` is found, else ``train``.
        split: Put every trajectory into this split (``train``, ``validation`` or ``test``), whatever
            folders the files are in.

    Raises:
        DataError: unreadable files, missing keys, shapes disagreeing with the grid, or files of
            different data sets or grids.
    """
    files = _expand([Path(p) for p in paths])
    inspected = [_inspect(p, split) for p, split in files]
    infos, metas = [i for i, _ in inspected], [m for _, m in inspected]
    check_same_grid(infos, metas)
    fixed, varying = merge_coefficients(infos)
    predefined = split is None and {i.split for i in infos} == set(_SPLIT_DIRS.values())
    extra = dict(metas[0].extra, license="cc-by-4.0")
    stats_path = Path(stats) if stats else _find_stats([p for p, _ in files])
    if stats_path is not None:
        extra["reference_stats"] = reference_stats(stats_path, extra["components"])
    extra["normalization"] = choose_normalization(
        normalization, stats_path, extra.get("reference_stats", {}), metas[0].fields
    )
    name = metas[0].family
    meta = metas[0].replace(
        equation=equation or f"see The Well's documentation of '{name}'",
        description=description
        or f"The Well data set '{name}' (Ohana et al., 2024), imported from its HDF5 files.",
        coefficients=fixed,
        varying=varying,
        extra=extra,
        source={
            "kind": "importer",
            "name": "the-well",
            "format": "The Well",
            "version": VERSION,
            "dataset_name": name,
            "splits": "from the train/valid/test folders"
            if predefined
            else "seeded split"
            if split is None
            else "as asked",
            "files": [{"name": i.path.name, "trajectories": i.num_rows, "split": i.split} for i in infos],
        },
    )
    if not predefined:
        for i in infos:
            i.split = None
    return TheWellRows(meta, infos, predefined_splits=predefined, split=split)


def _expand(paths: list[Path]) -> list[tuple[Path, str | None]]:
    """(file, split) pairs, in split order then name order."""
    out: list[tuple[Path, str | None]] = []
    for p in paths:
        if p.is_dir():
            base = p / "data" if (p / "data").is_dir() else p
            dirs = [base / d for d in _SPLIT_DIRS if (base / d).is_dir()] or [base]
            found = [f for d in dirs for f in sorted([*d.glob("*.hdf5"), *d.glob("*.h5")])]
            if not found:
                raise DataError(f"{p}: no .hdf5 or .h5 files here (nor in data/{{train,valid,test}}/)")
            out += [(f, _SPLIT_DIRS.get(f.parent.name)) for f in found]
        else:
            out.append((p, _SPLIT_DIRS.get(p.parent.name)))
    order = {s: k for k, s in enumerate([*_SPLIT_DIRS.values(), None])}
    return sorted(dict.fromkeys(out), key=lambda ps: order[ps[1]])


def _find_stats(files: list[Path]) -> Path | None:
    for f in files:
        for folder in (f.parent, f.parent.parent, f.parent.parent.parent):
            if (folder / "stats.yaml").is_file():
                return folder / "stats.yaml"
    return None


def _inspect(path: Path, split: str | None) -> tuple[FileInfo, FieldMeta]:
    with open_h5(path) as f:
        for key in ("dataset_name", "n_spatial_dims", "n_trajectories"):
            if key not in f.attrs:
                raise DataError(f"{path}: missing root attribute {key!r} (not a Well file?)")
        n = _count(f, "n_trajectories", path)
        dims, sizes, coords = _grid(f, path, n)
        sources, shapes, constant = _fields(f, path, n, dims, sizes, len(coords["t"]))
        coeffs, skipped = _scalars(f, path, n)
        bcs = _boundaries(f, dims)
        family = text(f.attrs["dataset_name"])
        grid_type = text(f.attrs.get("grid_type", "cartesian"))
    axis_names = {a: d for a, d in zip(SPATIAL_AXES, dims) if a != d}
    extra: dict[str, Any] = {
        "grid_type": grid_type,
        "components": {c: (s["field"], list(comp)) for s in sources for c, comp in s["columns"].items()},
    }
    if constant:
        extra["constant_in_time"] = constant
    if skipped:
        extra["skipped_scalars"] = skipped
    if axis_names:
        extra["axis_names"] = axis_names
    meta = FieldMeta(
        family=family,
        equation="",
        description="",
        fields=list(shapes),
        coords=coords,
        boundary_conditions=bcs,
        field_shapes=shapes,
        extra=extra,
    )
    info = FileInfo(
        path=path, num_rows=n, coefficients=coeffs, split=split, extra={"sources": sources, "sizes": sizes}
    )
    return info, meta


def _grid(f: h5py.File, path: Path, n: int) -> tuple[list[str], list[int], dict[str, list[float]]]:
    group = f.get("dimensions")
    if not isinstance(group, h5py.Group):
        raise DataError(f"{path}: missing group 'dimensions'")
    if "spatial_dims" not in group.attrs:
        raise DataError(f"{path}: 'dimensions' has no 'spatial_dims' attribute")
    dims = texts(group.attrs["spatial_dims"])
    n_dims = _count(f, "n_spatial_dims", path)
    if len(dims) != n_dims or not 1 <= len(dims) <= 3 or len(set(dims)) != len(dims):
        raise DataError(f"{path}: spatial_dims {dims} disagree with n_spatial_dims={n_dims} (1 to 3 names)")
    coords: dict[str, list[float]] = {"t": _time(dataset(group, "time", path), path, n)}
    sizes = []
    for axis, dim in zip(SPATIAL_AXES, dims):
        d = dataset(group, dim, path)
        if _flag(d, "sample_varying", False, path) or _flag(d, "time_varying", False, path) or d.ndim != 1:
            raise DataError(
                f"{path}: dimension {dim!r} varies by trajectory or time; only fixed grids are supported"
            )
        coords[axis] = _finite(read_small(d, path, _MOST), path, f"dimensions/{dim}")
        sizes.append(len(coords[axis]))
    return dims, sizes, coords


def _time(d: h5py.Dataset, path: Path, n: int) -> list[float]:
    t = read_small(d, path, _MOST)
    if t.ndim > 2:
        raise DataError(f"{path}: 'dimensions/time' has shape {t.shape}; expected [T] or [trajectories, T]")
    if _flag(d, "sample_varying", False, path) or t.ndim == 2:
        if t.ndim != 2 or t.shape[0] != n or not np.allclose(t, t[:1]):
            raise DataError(
                f"{path}: 'dimensions/time' differs between trajectories; only shared time grids are supported"
            )
        t = t[0]
    return _finite(t, path, "dimensions/time")


def _flag(obj: Any, key: str, default: bool, path: Path) -> bool:
    """A boolean attribute (``sample_varying``, ``time_varying``): True/False or 1/0, else a DataError."""
    if key not in obj.attrs:
        return default
    value = np.asarray(obj.attrs[key])
    if value.size == 1 and value.dtype.kind in "biu" and int(value.reshape(-1)[0]) in (0, 1):
        return bool(value.reshape(-1)[0])
    raise DataError(
        f"{path}: attribute {key!r} of {obj.name!r} is {obj.attrs[key]!r}; expected true or false"
    )


def _flags(d: h5py.Dataset, key: str, count: int, path: Path) -> list[bool]:
    """``dim_varying``: one boolean per spatial axis (all True when absent)."""
    if key not in d.attrs:
        return [True] * count
    value = np.asarray(d.attrs[key]).reshape(-1)
    if len(value) != count or value.dtype.kind not in "biu" or not np.isin(value, (0, 1)).all():
        raise DataError(
            f"{path}: attribute {key!r} of {d.name!r} is {d.attrs[key]!r}; expected {count} true/false values"
        )
    return [bool(v) for v in value]


def _count(f: h5py.File, key: str, path: Path) -> int:
    """A root attribute that counts something (``n_trajectories``), as a non-negative int."""
    value = attr_number(f, key)
    if value is None or not np.isfinite(value) or value != int(value) or value < 0:
        raise DataError(f"{path}: root attribute {key!r} is {f.attrs.get(key)!r}; expected a count")
    return int(value)


def _finite(values: Any, path: Path, key: str) -> list[float]:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(v)):
        raise DataError(f"{path}: {key!r} holds NaN or Inf values")
    return v.tolist()


def _fields(
    f: h5py.File, path: Path, n: int, dims: list[str], sizes: list[int], nt: int
) -> tuple[list[dict], dict[str, list[int]], list[str]]:
    sources, shapes, constant = [], {}, []
    for order in range(3):
        group = f.get(f"t{order}_fields")
        if not isinstance(group, h5py.Group):
            continue
        for name in texts(group.attrs.get("field_names", [])):
            d = field_dataset(group, name, path)
            sample, time = _flag(d, "sample_varying", True, path), _flag(d, "time_varying", True, path)
            dim_varying = _flags(d, "dim_varying", len(dims), path)
            want = ([n] if sample else []) + ([nt] if time else [])
            want += [s for s, v in zip(sizes, dim_varying) if v] + [len(dims)] * order
            if list(d.shape) != want:
                raise DataError(
                    f"{path}: {d.name!r} has shape {list(d.shape)}, expected {want} from its attributes and the grid"
                )
            columns = {}
            for comp in itertools.product(range(len(dims)), repeat=order):
                suffix = "".join(dims[i] for i in comp)
                columns[f"{name}_{suffix}" if suffix else name] = comp
            for column in columns:
                shapes[column] = [nt if time else 1, *sizes]
                if not time:
                    constant.append(column)
            sources.append(
                {
                    "key": d.name,
                    "field": name,
                    "sample": sample,
                    "time": time,
                    "dims": dim_varying,
                    "columns": columns,
                }
            )
    if not shapes:
        raise DataError(f"{path}: no fields in t0_fields, t1_fields or t2_fields")
    return sources, shapes, constant


def _scalars(f: h5py.File, path: Path, n: int) -> tuple[dict[str, Any], list[str]]:
    coeffs: dict[str, Any] = {}
    for name in texts(f.attrs.get("simulation_parameters", [])):
        value = attr_number(f, name)
        if value is not None:
            coeffs[name] = value
    skipped = []
    group = f.get("scalars")
    if isinstance(group, h5py.Group):
        for name in texts(group.attrs.get("field_names", [])):
            d = dataset(group, name, path)
            if _flag(d, "time_varying", False, path):
                skipped.append(name)
                continue
            if d.dtype.kind not in "fiu":  # strings, booleans: not a coefficient
                skipped.append(name)
                continue
            values = read_small(d, path, max(n, 1)).reshape(-1)
            if len(values) == 0:
                raise DataError(f"{path}: scalar {name!r} holds no values")
            if _flag(d, "sample_varying", False, path):
                if len(values) != n:
                    raise DataError(f"{path}: scalar {name!r} has {len(values)} values for {n} trajectories")
                coeffs[name] = values.astype(np.float64)
            else:
                coeffs[name] = float(values[0])
    for name, value in coeffs.items():
        if not np.all(np.isfinite(value)):
            raise DataError(f"{path}: scalar {name!r} holds NaN or Inf values")
    return coeffs, skipped


def _boundaries(f: h5py.File, dims: list[str]) -> dict[str, str]:
    kinds: dict[str, set[str]] = {}
    group = f.get("boundary_conditions")
    if isinstance(group, h5py.Group):
        for bc in group.values():
            kind = text(bc.attrs.get("bc_type", "unknown")).lower()
            for dim in texts(bc.attrs.get("associated_dims", [])):
                if dim in dims:
                    kinds.setdefault(SPATIAL_AXES[dims.index(dim)], set()).add(kind)
    return {axis: "+".join(sorted(k)) for axis, k in sorted(kinds.items())}
