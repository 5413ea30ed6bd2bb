"""Careful HDF5 reading for importers: every failure becomes one :class:`DataError` line naming file and key."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from sfm.errors import DataError


@contextlib.contextmanager
def open_h5(path: Path) -> Iterator[h5py.File]:
    """Open ``path`` read-only; a missing, truncated or non-HDF5 file raises :class:`DataError`.

    Reads inside the block that fail at the HDF5 level (a file truncated after its header) are turned into
    :class:`DataError` too.
    """
    try:
        fh = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({_reason(exc)})") from None
    try:
        with fh:
            yield fh
    except OSError as exc:  # h5py reports unreadable chunks (a truncated file) as OSError
        raise DataError(f"{path}: cannot read ({_reason(exc)}); the file may be truncated") from None


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]


def dataset(group: h5py.Group, key: str, where: Path) -> h5py.Dataset:
    """``group[key]`` as a dataset, or a :class:`DataError` naming the missing key."""
    obj = group.get(key)
    if not isinstance(obj, h5py.Dataset):
        prefix = group.name.rstrip("/") + "/" if group.name != "/" else ""
        raise DataError(f"{where}: missing dataset {prefix + key!r}")
    return obj


def take_rows(dset: h5py.Dataset, local: np.ndarray) -> np.ndarray:
    """Rows ``local`` (sorted, unique) of ``dset`` along axis 0, read with as few HDF5 calls as possible.

    A contiguous run is one slice; a dense scatter (a split's rows are most rows of a file) reads the
    covering slab once and indexes it in memory, which beats h5py's point selection by a wide margin; a
    sparse scatter falls back to h5py fancy indexing.
    """
    local = np.asarray(local, dtype=np.int64)
    lo, hi = int(local[0]), int(local[-1]) + 1
    if hi - lo == len(local):
        return dset[lo:hi]
    if hi - lo <= 2 * len(local):
        return dset[lo:hi][local - lo]
    return dset[local]


def attr_number(obj: Any, key: str) -> float | None:
    """A numeric attribute of an HDF5 object as float, or None when absent or not a number."""
    if key not in obj.attrs:
        return None
    value = obj.attrs[key]
    try:
        return float(np.asarray(value).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return None


def text(value: Any) -> str:
    """An HDF5 string attribute (bytes or str) as str."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return text(value.item())
    return str(value)


def texts(value: Any) -> list[str]:
    """An HDF5 attribute holding a list of strings (or one string) as a list of str."""
    if isinstance(value, str | bytes):
        return [text(value)]
    return [text(v) for v in np.asarray(value).reshape(-1)]
