"""NumPy files (``.npz`` archives or ``.npy`` files) as field data sets.

Arrays are recognised by name and shape:

* ``t``, ``x``, ``y``, ``z``: 1-D coordinates (optional; a missing spatial axis gets the index grid
  ``0, 1, ...`` and a missing ``t`` with a single frame makes the problem steady);
* arrays of shape ``[N, T, *space]`` (three or more axes): physical fields, one column each;
* arrays of shape ``[N]``: a coefficient per trajectory (a float64 column);
* 0-d arrays: a coefficient fixed for the file.

An ``.npz`` archive is one input file; ``.npy`` files given together form one input whose array names are
the file stems (``u.npy``, ``x.npy``, ``nu.npy``). Several ``.npz`` archives become one data set (fixed
coefficients that differ between archives become columns, as for PDEBench).

Memory: ``.npy`` files and uncompressed ``.npz`` members (``np.savez``) are memory-mapped, so rows are
read in chunks; members of compressed archives (``np.savez_compressed``) cannot be, and are decompressed
whole, once per worker process.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from sfm.errors import ConfigError, DataError
from sfm.physics.io.rows import FileInfo, FileRows, check_same_grid, merge_coefficients
from sfm.physics.metadata import SPATIAL_AXES, FieldMeta
from sfm.registry import IMPORTERS

VERSION = "1"
_COORDS = ("t", *SPATIAL_AXES)


class NpzRows(FileRows):
    """Rows of ``.npz`` archives (or one group of ``.npy`` files)."""

    _cache: dict[tuple[str, str], np.ndarray]

    def read_file(self, info: FileInfo, local: np.ndarray) -> dict[str, np.ndarray]:
        return {f: np.asarray(self._array(info, f)[local]) for f in self.meta.fields}

    def _array(self, info: FileInfo, name: str) -> np.ndarray:
        cache = self.__dict__.setdefault("_cache", {})
        key = (str(info.path), name)
        if key not in cache:
            cache[key] = _open_array(info.extra["members"][name], name)
        return cache[key]

    def __getstate__(self) -> dict[str, Any]:  # workers open their own maps
        return {k: v for k, v in self.__dict__.items() if k != "_cache"}


@IMPORTERS.register("npz", description="NumPy .npz archives or .npy files with arrays named after fields")
def open_npz(
    paths: list[Path],
    *,
    family: str | None = None,
    equation: str = "",
    description: str = "",
    boundary_conditions: dict[str, str] | None = None,
    fields: list[str] | None = None,
    license: str = "unknown",
    split: str | None = None,
) -> NpzRows:
    """Open ``.npz``/``.npy`` files as one row source.

    Args:
        paths: ``.npz`` archives, or ``.npy`` files forming one set of named arrays.
        family: PDE family name (default: the first file's stem).
        equation: The PDE in symbols.
        description: The set-up in words.
        boundary_conditions: Per axis, e.g. ``{"x": "periodic"}``.
        fields: Which ``[N, T, *space]`` arrays are fields, in order (default: all of them, sorted).
        license: License of the data, for the card.
        split: Put every trajectory into this split instead of a seeded split (fewer than 3 trajectories
            without it all go to ``train``).
    """
    paths = [Path(p) for p in paths]
    suffixes = {p.suffix for p in paths}
    if suffixes == {".npy"}:
        groups = [(paths[0], {p.stem: p for p in paths})]
    elif suffixes == {".npz"}:
        groups = [(p, {n: p for n in _npz_names(p)}) for p in paths]
    else:
        raise ConfigError(f"npz: give either .npz archives or .npy files, got {sorted(suffixes)}")
    inspected = [_inspect(path, members, fields) for path, members in groups]
    infos, metas = [i for i, _ in inspected], [m for _, m in inspected]
    check_same_grid(infos, metas)
    fixed, varying = merge_coefficients(infos)
    meta = metas[0].replace(
        family=family or paths[0].stem,
        equation=equation,
        description=description,
        boundary_conditions=dict(boundary_conditions or {}),
        coefficients=fixed,
        varying=varying,
        extra=dict(metas[0].extra, license=license),
        source={
            "kind": "importer",
            "name": "npz",
            "format": "NumPy",
            "version": VERSION,
            "files": [
                {"name": p.name, "trajectories": i.num_rows} for p, i in zip([g[0] for g in groups], infos)
            ],
        },
    )
    return NpzRows(meta, infos, split=split)


def _npz_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as z:
            return [n[:-4] for n in z.namelist() if n.endswith(".npy")]
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz archive ({exc})") from None


def _member(ref: Any) -> tuple[Path, str | None]:
    path, name = ref if isinstance(ref, tuple) else (ref, None)
    return Path(path), name


def _open_array(ref: Any, name: str) -> np.ndarray:
    """Memory-map ``name`` (an ``.npy`` file or an uncompressed ``.npz`` member); load it otherwise."""
    path, member = _member(ref)
    try:
        if member is None:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        with zipfile.ZipFile(path) as z:
            info = z.getinfo(member + ".npy")
            if info.compress_type != zipfile.ZIP_STORED:
                with z.open(info) as fh:
                    return np.lib.format.read_array(fh, allow_pickle=False)
        with open(path, "rb") as fh:
            fh.seek(info.header_offset)
            local = fh.read(30)  # the zip local file header: name and extra-field lengths at bytes 26-29
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            fh.seek(info.header_offset + 30 + name_len + extra_len)
            shape, fortran, dtype = _npy_header(fh)
            offset = fh.tell()
        return np.memmap(
            path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C"
        )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: cannot read array {name!r} ({str(exc).splitlines()[0]})") from None


def _npy_header(fh: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    return np.lib.format.read_array_header_2_0(fh)


def _shape_of(ref: Any, name: str) -> tuple[tuple[int, ...], np.dtype]:
    path, member = _member(ref)
    try:
        if member is None:
            with open(path, "rb") as fh:
                shape, _, dtype = _npy_header(fh)
                return shape, dtype
        with zipfile.ZipFile(path) as z, z.open(member + ".npy") as fh:
            shape, _, dtype = _npy_header(fh)
            return shape, dtype
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: cannot read array {name!r} ({str(exc).splitlines()[0]})") from None


def _inspect(path: Path, members: dict[str, Path], fields: list[str] | None) -> tuple[FileInfo, FieldMeta]:
    refs = {n: (p if p.suffix == ".npy" else (p, n)) for n, p in members.items()}
    shapes = {n: _shape_of(r, n) for n, r in refs.items()}
    for n, (_, dtype) in shapes.items():
        if not np.issubdtype(dtype, np.number):
            raise DataError(f"{path}: array {n!r} has dtype {dtype}; numbers expected")
    candidates = sorted(n for n, (s, _) in shapes.items() if len(s) >= 3 and n not in _COORDS)
    names = list(fields) if fields else candidates
    for n in names:
        if n not in shapes or len(shapes[n][0]) < 3:
            raise DataError(f"{path}: no field array {n!r} of shape [N, T, *space] (fields: {candidates})")
    if not names:
        raise DataError(f"{path}: no field arrays of shape [N, T, *space] (arrays: {sorted(shapes)})")
    first = shapes[names[0]][0]
    n_rows, nt, space = first[0], first[1], tuple(first[2:])
    if len(space) > 3:
        raise DataError(f"{path}: {names[0]!r} has {len(space)} spatial axes; at most 3 are supported")
    for n in names:
        if shapes[n][0] != first:
            raise DataError(f"{path}: field {n!r} has shape {shapes[n][0]}, but {names[0]!r} has {first}")
    coords = _coords(path, refs, shapes, nt, space)
    coeffs: dict[str, Any] = {}
    for n, (shape, _) in shapes.items():
        if n in names or n in _COORDS:
            continue
        if shape == () or shape == (n_rows,):
            value = np.asarray(_open_array(refs[n], n), dtype=np.float64)
            if not np.all(np.isfinite(value)):
                raise DataError(f"{path}: coefficient {n!r} holds NaN or Inf values")
            coeffs[n] = float(value) if shape == () else value
        elif fields is None:
            raise DataError(
                f"{path}: array {n!r} of shape {shape} is neither a field [N, T, *space], "
                f"a coordinate (t, x, y, z) nor a coefficient ([N] or a scalar)"
            )
    indexed = [a for a in coords if a not in refs]
    extra = {"index_coordinates": indexed} if indexed else {}
    meta = FieldMeta(
        family="",  # named once for the whole import (the family option or the first file)
        equation="",
        description="",
        fields=names,
        coords=coords,
        field_shapes={n: [nt, *space] for n in names},
        extra=extra,
    )
    info = FileInfo(
        path=path, num_rows=n_rows, coefficients=coeffs, extra={"members": {n: refs[n] for n in names}}
    )
    return info, meta


def _coords(path: Path, refs: dict, shapes: dict, nt: int, space: tuple[int, ...]) -> dict[str, list[float]]:
    coords: dict[str, list[float]] = {}
    for axis, size in (("t", nt), *zip(SPATIAL_AXES, space)):
        if axis not in refs:
            if axis == "t" and nt == 1:
                continue  # a single frame without a time coordinate: a steady problem
            coords[axis] = [float(i) for i in range(size)]
            continue
        values = np.asarray(_open_array(refs[axis], axis), dtype=np.float64)
        if values.ndim != 1 or len(values) != size:
            raise DataError(
                f"{path}: coordinate {axis!r} has shape {values.shape} but the fields have {size} points on it"
            )
        if not np.all(np.isfinite(values)):
            raise DataError(f"{path}: coordinate {axis!r} holds NaN or Inf values")
        coords[axis] = values.tolist()
    return coords
