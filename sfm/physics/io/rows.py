"""File rows: the row source of every importer (PDEBench, The Well, NumPy), read back by global index.

:class:`FileRows` implements the :class:`~sfm.physics.sources.RowSource` contract for trajectories spread
over several files; an importer subclasses it with a ``read_file`` for its format and describes each file
with a :class:`FileInfo`. Plain numpy, like the rest of :mod:`sfm.physics`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sfm.errors import ConfigError, DataError, did_you_mean
from sfm.physics.io.hdf5 import human_bytes
from sfm.physics.metadata import SPLITS, FieldMeta
from sfm.physics.sources import Column, check_finite, field_columns


@dataclass
class FileInfo:
    """One input file of an import.

    Attributes:
        path: The file.
        num_rows: Trajectories it holds.
        coefficients: Coefficient name -> a number (whole file) or a ``[num_rows]`` array (per trajectory).
        split: The split the file belongs to, if the format says (The Well's folders), else None.
        name: How ``source_file`` names it (file name, or ``split/name`` when names repeat across folders).
        extra: Anything the importer needs to read it back (layout, keys).
    """

    path: Path
    num_rows: int
    coefficients: dict[str, Any] = field(default_factory=dict)
    split: str | None = None
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def memory_bytes() -> int:
    """Physical memory of this machine (0 where the platform does not say)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return 0


def check_row_size(columns: dict[str, Column], path: Path) -> None:
    """Refuse a data set one trajectory of which cannot be held in memory (a quarter of it, at most).

    The builder streams by chunks of rows, but a chunk holds at least one whole trajectory; a file whose
    header declares a giant one (or a corrupt header declaring 10^12 values) must fail here, before any
    allocation, not in the kernel's out-of-memory killer.
    """
    row = sum(float(np.prod(c.shape)) * 4 for c in columns.values())
    limit = memory_bytes() // 4
    if limit and row > limit:
        raise DataError(
            f"{path}: one trajectory holds {human_bytes(row)}, more than a quarter of this machine's "
            f"memory ({human_bytes(limit * 4)}); refusing to read it"
        )


def one_split(n: int, split: str) -> dict[str, np.ndarray]:
    """All ``n`` rows in ``split``, the other splits empty.

    Raises:
        ConfigError: ``split`` is not one of :data:`~sfm.physics.metadata.SPLITS`.
    """
    if split not in SPLITS:
        raise ConfigError(
            f"unknown split {split!r}{did_you_mean(str(split), SPLITS)}; splits: {', '.join(SPLITS)}"
        )
    return {s: np.arange(n, dtype=np.int64) if s == split else np.zeros(0, np.int64) for s in SPLITS}


def merge_coefficients(files: list[FileInfo]) -> tuple[dict[str, float], list[str]]:
    """Split the files' coefficients into fixed ones (same value everywhere) and varying ones.

    Several files of one family with different coefficients (PDEBench ships one file per viscosity)
    become one data set in which those coefficients are per-trajectory columns.

    Raises:
        DataError: a coefficient is given by some files but not by others.
    """
    names = [set(f.coefficients) for f in files]
    common = set.intersection(*names) if names else set()
    for f, n in zip(files, names):
        if n != common:
            odd = sorted(n ^ common)[0]
            raise DataError(f"{f.path}: coefficient {odd!r} is not given by every input file")
    fixed: dict[str, float] = {}
    varying: list[str] = []
    for key in sorted(common):
        values = [f.coefficients[key] for f in files]
        if any(np.ndim(v) > 0 for v in values) or len({float(v) for v in values}) > 1:
            varying.append(key)
        else:
            fixed[key] = float(values[0])
    return fixed, varying


def name_files(files: list[FileInfo]) -> None:
    """Set each file's ``source_file`` name: the bare file name, or ``folder/name`` where names repeat."""
    bare = [f.path.name for f in files]
    repeated = len(set(bare)) < len(bare)
    for f in files:
        f.name = f"{f.path.parent.name}/{f.path.name}" if repeated else f.path.name


class FileRows:
    """Rows spread over several files, read back by global index.

    Global row ``g`` is trajectory ``g - offset[k]`` of file ``k`` (files in the given order). Subclasses
    implement :meth:`read_file` to return the physical fields of some trajectories of one file; this class
    adds the coefficient and provenance columns (``source_index``, ``source_file``) and rejects NaN/Inf.
    """

    def __init__(
        self,
        meta: FieldMeta,
        files: list[FileInfo],
        *,
        predefined_splits: bool = False,
        split: str | None = None,
    ) -> None:
        name_files(files)
        self.files = files
        self.meta = meta
        self.offsets = np.cumsum([0] + [f.num_rows for f in files])
        self.num_rows = int(self.offsets[-1])
        self.columns = field_columns(meta)
        self.columns.update({k: Column("float64") for k in meta.varying})
        self.columns["source_index"] = Column("int64")
        self.columns["source_file"] = Column("string")
        if self.num_rows == 0:
            names = ", ".join(str(f.path) for f in files[:3]) or "the input"
            raise DataError(f"{names}: no trajectories to import")
        check_row_size(self.columns, files[0].path)
        self.splits = self._file_splits() if predefined_splits else None
        note = None
        if split is not None:
            self.splits, note = (
                one_split(self.num_rows, split),
                f"all {self.num_rows} trajectories in {split!r} (as asked)",
            )
        elif self.splits is None and self.num_rows < 3:
            # A seeded split needs a row per split; a single small file (a test file, one long trajectory)
            # is still worth importing, so it all goes to train and the output says so.
            self.splits = one_split(self.num_rows, "train")
            note = (
                f"all {self.num_rows} trajectories in 'train' (fewer than 3 cannot fill train, validation "
                "and test; --split or split=... chooses another split)"
            )
        if note:
            self.meta.source["split"] = note

    def _file_splits(self) -> dict[str, np.ndarray]:
        out = {s: [] for s in SPLITS}
        for k, f in enumerate(self.files):
            out[f.split].append(np.arange(self.offsets[k], self.offsets[k + 1]))
        return {s: np.concatenate(v) if v else np.zeros(0, np.int64) for s, v in out.items()}

    def read_file(self, info: FileInfo, local: np.ndarray) -> dict[str, np.ndarray]:
        """Physical fields ``[len(local), *field_shape]`` of trajectories ``local`` (sorted) of one file."""
        raise NotImplementedError

    def source_key(self, info: FileInfo, column: str) -> str:
        """Where ``column`` is stored in the file, for error messages (default: the column name)."""
        return column

    def read(self, indices: np.ndarray) -> dict[str, Any]:
        indices = np.asarray(indices, dtype=np.int64)
        which = np.searchsorted(self.offsets, indices, side="right") - 1
        parts: list[dict[str, Any]] = []
        for k in np.unique(which):
            info = self.files[k]
            local = indices[which == k] - self.offsets[k]
            cols = self.read_file(info, local)
            for name in self.meta.fields:
                arr = np.ascontiguousarray(cols[name], dtype=np.float32)
                shape = (len(local), *self.columns[name].shape)
                if arr.shape != shape:
                    raise DataError(f"{info.path}: {name!r} has shape {arr.shape[1:]}, expected {shape[1:]}")
                check_finite(self.source_key(info, name), arr, where=str(info.path), rows=local)
                cols[name] = arr
            for key in self.meta.varying:
                value = info.coefficients[key]
                cols[key] = (
                    np.asarray(value, np.float64)[local] if np.ndim(value) else np.full(len(local), value)
                )
            cols["source_index"] = local.astype(np.int64)
            cols["source_file"] = [info.name] * len(local)
            parts.append(cols)
        return {c: _concat([p[c] for p in parts]) for c in self.columns}


def _concat(values: list[Any]) -> Any:
    if isinstance(values[0], list):
        return [v for part in values for v in part]
    return np.concatenate(values) if len(values) > 1 else values[0]


def check_same_grid(files: list[FileInfo], metas: list[FieldMeta]) -> None:
    """Raise a :class:`DataError` unless all files hold the same fields on the same grid."""
    ref, ref_path = metas[0], files[0].path
    for f, m in zip(files[1:], metas[1:]):
        if m.family != ref.family:
            raise DataError(f"{f.path}: holds {m.family!r} data but {ref_path.name} holds {ref.family!r}")
        if m.fields != ref.fields or m.field_shapes != ref.field_shapes:
            raise DataError(
                f"{f.path}: fields {m.field_shapes} differ from {ref.field_shapes} in {ref_path.name}"
            )
        for axis, c in ref.coords.items():
            other = m.coords.get(axis)
            if other is None or len(other) != len(c) or not np.allclose(other, c, rtol=1e-6, atol=1e-12):
                raise DataError(f"{f.path}: coordinate {axis!r} differs from the one in {ref_path.name}")
