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

    Reads inside the block that fail at the HDF5 level (a file truncated after its header, a corrupt
    object header) are turned into :class:`DataError` too.
    """
    try:
        fh = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({_reason(exc)})") from None
    try:
        with fh:
            yield fh
    # h5py reports unreadable chunks (a truncated file) as OSError, corrupt group or object headers as
    # RuntimeError or KeyError ("Unable to open object"), whichever call meets them first
    except (OSError, RuntimeError, KeyError) as exc:
        raise DataError(
            f"{path}: cannot read ({_reason(exc)}); the file may be truncated or corrupt"
        ) from None


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0].strip("'\"") if str(exc) else type(exc).__name__
    return text[:160]


def dataset(group: h5py.Group, key: str, where: Path) -> h5py.Dataset:
    """``group[key]`` as a dataset, or a :class:`DataError` naming the missing key."""
    obj = group.get(key)
    if not isinstance(obj, h5py.Dataset):
        prefix = group.name.rstrip("/") + "/" if group.name != "/" else ""
        raise DataError(f"{where}: missing dataset {prefix + key!r}")
    return obj


def field_dataset(group: h5py.Group, key: str, where: Path) -> h5py.Dataset:
    """``group[key]`` as a dataset of real numbers whose declared data the file really holds.

    Checks metadata only (nothing is read), so a file declaring a dataset of 10^12 elements is refused
    before anything is allocated.

    Raises:
        DataError: missing, not real numbers (strings, booleans, complex, compound), or an uncompressed
            dataset declaring more bytes than the file stores (a truncated file, or one never fully written).
    """
    d = dataset(group, key, where)
    if d.dtype.kind not in "fiu":
        raise DataError(f"{where}: {_name(d)!r} has dtype {d.dtype}; expected real numbers (float or int)")
    declared = int(np.prod(d.shape, dtype=np.float64) * d.dtype.itemsize)
    # Only plainly stored data can be checked: filtered (compressed), virtual and external datasets store
    # fewer bytes in the file than they declare by design.
    if declared and not d.is_virtual and not d.external and d.id.get_create_plist().get_nfilters() == 0:
        stored = d.id.get_storage_size()
        if stored < declared:
            raise DataError(
                f"{where}: {_name(d)!r} declares shape {d.shape} ({human_bytes(declared)}) but the file "
                f"stores {human_bytes(stored)} of it; the file is truncated or was never fully written"
            )
    return d


def read_small(d: h5py.Dataset, where: Path, most: int) -> np.ndarray:
    """``d`` read whole as float64 (a coordinate, a time axis), refused unreadable or over ``most`` values."""
    if d.size > most:
        raise DataError(f"{where}: {_name(d)!r} has {d.size} entries, expected at most {most}")
    if d.dtype.kind not in "fiu":
        raise DataError(f"{where}: {_name(d)!r} has dtype {d.dtype}; expected real numbers (float or int)")
    return np.asarray(d[()], dtype=np.float64)


def human_bytes(n: float) -> str:
    """``1.5 GiB``-style size."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} TiB"


def _name(d: h5py.Dataset) -> str:
    return (d.name or "").lstrip("/")


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
