"""Field data sets: generate from a simulator, import from files, load back.

A field data set is a folder ``DIR`` holding a ``datasets.DatasetDict`` (splits ``train``, ``validation``,
``test``; one row per trajectory; one float32 ``[time, *space]`` column per physical field, one float64
column per varying coefficient, and provenance columns), ``field_meta.json`` and a ``README.md`` dataset
card. See :mod:`sfm.data.builder` for the layout and how it is written.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np

import sfm
from sfm.data.builder import build, scalar_column
from sfm.data.overlap import file_digests
from sfm.data.splits import SPLIT_FRACTIONS
from sfm.errors import ConfigError, DataError, UnknownNameError, did_you_mean
from sfm.physics.metadata import SPLITS, FieldMeta
from sfm.physics.simulators.base import get_simulator
from sfm.physics.sources import SimulatorRows
from sfm.registry import IMPORTERS
from sfm.utils.provenance import git_hash, now_iso

#: Options of :func:`import_dataset` consumed by the builder rather than by the importer.
_BUILD_OPTIONS = ("split_fractions", "chunk_size", "num_proc")


def generate_dataset(
    name: str,
    num_samples: int,
    out: str | Path,
    *,
    seed: int = 0,
    num_proc: int = 1,
    params: dict | None = None,
    split_fractions: Sequence[float] = SPLIT_FRACTIONS,
    chunk_size: int = 32,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Generate ``num_samples`` trajectories with simulator ``name`` and save them as a field data set.

    Trajectory ``j`` is solved from ``trajectory_seeds(seed, j, j + 1)``, so the data set depends only on
    ``(name, params, seed, num_samples)``, never on ``num_proc`` or ``chunk_size``.

    Args:
        name: A simulator registered in :data:`sfm.registry.SIMULATORS` (``sfm list simulators``).
        num_samples: Number of trajectories (at least 3: every split gets one).
        out: Destination folder.
        seed: Dataset seed (trajectories and the split assignment).
        num_proc: Worker processes.
        params: Simulator parameters: numbers, or ``[low, high]`` to draw per trajectory.
        split_fractions: Train, validation, test fractions.
        chunk_size: Trajectories solved as one batch.
        overwrite: Replace an existing non-empty ``out``.
        progress: Show progress bars.

    Returns:
        The data set folder.

    Raises:
        UnknownNameError: unknown simulator (the message names the closest).
        ConfigError: unknown or out-of-range parameter, bad split fractions, too few samples.
        FileExistsError: ``out`` exists and is not empty, and ``overwrite`` is false.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int | np.integer):
        raise ConfigError(f"num_samples must be an integer, got {num_samples!r}")
    if params and "strict" in params:  # a keyword of get_simulator, not a parameter: data must be resolved
        raise ConfigError(f"{name}: unknown parameter 'strict'")
    sim = get_simulator(name, **(params or {}))
    source = SimulatorRows(sim, seed, int(num_samples))
    source.meta.source.update(seed=int(seed), num_samples=int(num_samples), **_stamp())
    return build(
        source,
        out,
        seed=seed,
        split_fractions=split_fractions,
        chunk_size=chunk_size,
        num_proc=num_proc,
        overwrite=overwrite,
        progress=progress,
    )


def import_dataset(
    fmt: str,
    paths: list[str | Path],
    out: str | Path,
    *,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
    **options: Any,
) -> Path:
    """Import files in a known format (``"pdebench"``, ``"the-well"``, ``"npz"``) as a field data set.

    Args:
        fmt: An importer registered in :data:`sfm.registry.IMPORTERS` (``sfm list importers``).
        paths: Input files (or folders, where the format allows).
        out: Destination folder.
        seed: Seed of the split assignment when the format has no predefined splits.
        overwrite: Replace an existing non-empty ``out``.
        progress: Show progress bars.
        **options: ``split_fractions``, ``chunk_size``, ``num_proc`` (as in :func:`generate_dataset`), and
            the importer's own options (see its docstring), e.g. ``family`` or ``limit``.

    Raises:
        UnknownNameError: unknown format.
        ConfigError: unknown option.
        DataError: unreadable, inconsistent or non-finite input (one line naming the file and key).
    """
    opener = IMPORTERS.get(fmt)
    build_opts = {k: options.pop(k) for k in _BUILD_OPTIONS if k in options}
    allowed = [p for p in inspect.signature(opener).parameters if p != "paths"]
    for key in options:
        if key not in allowed:
            raise ConfigError(
                f"{fmt}: unknown option {key!r}{did_you_mean(key, allowed + list(_BUILD_OPTIONS))}; "
                f"options: {', '.join(allowed + list(_BUILD_OPTIONS))}"
            )
    if not paths:
        raise ConfigError(f"{fmt}: no input files given")
    files = [Path(p) for p in paths]
    for p in files:
        if not p.exists():
            raise DataError(f"{p}: no such file or folder")
    source = opener(files, **options)
    source.meta.source.update(_stamp())
    # Which file each row came from, by content: what sfm.data.overlap compares (provenance of the rows).
    source.meta.extra["file_digests"] = file_digests(source)
    return build(source, out, seed=seed, overwrite=overwrite, progress=progress, **build_opts)


def _stamp() -> dict[str, Any]:
    stamp: dict[str, Any] = {"sfm_version": sfm.__version__, "created": now_iso()}
    commit = git_hash()
    if commit:
        stamp["git"] = commit
    return stamp


@dataclass
class FieldDataset:
    """A field data set loaded from disk.

    Attributes:
        path: Its folder.
        meta: Its metadata (``field_meta.json``).
        splits: The ``train`` / ``validation`` / ``test`` splits (memory-mapped Arrow; nothing is loaded
            until asked for).
    """

    path: Path
    meta: FieldMeta
    splits: datasets.DatasetDict

    def split(self, name: str) -> datasets.Dataset:
        """One split, formatted as numpy (fields come back as ``[T, *space]`` float32 arrays).

        Note that ``datasets``' numpy formatting turns float64 columns into float32 when it returns several
        rows at once; :meth:`column` returns coefficients at their stored float64 precision.
        """
        if name not in self.splits:
            raise UnknownNameError(f"{self.path}: no split {name!r}{did_you_mean(name, self.splits)}")
        return self.splits[name].with_format("numpy")

    def arrays(self, split: str, field: str) -> np.ndarray:
        """All trajectories of one field in one split: ``[n, T, *space]`` float32 (loaded into memory)."""
        if field not in self.meta.fields:
            raise UnknownNameError(
                f"{self.path}: no field {field!r}{did_you_mean(field, self.meta.fields)}; "
                f"fields: {', '.join(self.meta.fields)}"
            )
        ds = self.split(split).select_columns([field])
        return np.asarray(ds[:][field], dtype=np.float32).reshape(len(ds), *self.meta.field_shapes[field])

    def column(self, split: str, name: str) -> np.ndarray:
        """A scalar column (coefficient or provenance) of one split as a numpy array."""
        ds = self.split(split)
        if name not in ds.column_names:
            raise UnknownNameError(f"{self.path}: no column {name!r}{did_you_mean(name, ds.column_names)}")
        return scalar_column(ds, name)

    def __len__(self) -> int:
        return sum(len(s) for s in self.splits.values())

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={self.meta.splits.get(s, 0)}" for s in SPLITS)
        return f"FieldDataset({str(self.path)!r}, family={self.meta.family!r}, fields={self.meta.fields}, {sizes})"


def load_field_dataset(path: str | Path) -> FieldDataset:
    """Open a field data set folder.

    Raises:
        DataError: ``path`` is not a field data set, or its Arrow data disagrees with ``field_meta.json``.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such folder")
    meta = FieldMeta.load(path)
    try:
        dd = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot read the Arrow data ({reason})") from None
    if not isinstance(dd, datasets.DatasetDict):
        raise DataError(f"{path}: holds a single Dataset, expected splits {', '.join(SPLITS)}")
    _check_consistent(path, meta, dd)
    return FieldDataset(path=path, meta=meta, splits=dd)


def _check_consistent(path: Path, meta: FieldMeta, dd: datasets.DatasetDict) -> None:
    for split in SPLITS:
        if split not in dd:
            raise DataError(f"{path}: split {split!r} is missing (found {', '.join(dd) or 'none'})")
        if meta.splits and len(dd[split]) != meta.splits.get(split):
            raise DataError(
                f"{path}: split {split!r} has {len(dd[split])} rows but field_meta.json says {meta.splits.get(split)}"
            )
        features = dd[split].features
        for f in meta.fields:
            if f not in features:
                raise DataError(f"{path}: split {split!r} has no column {f!r} named in field_meta.json")
            shape = list(getattr(features[f], "shape", ()))
            if shape != list(meta.field_shapes.get(f, shape)):
                raise DataError(
                    f"{path}: column {f!r} has shape {shape}, field_meta.json says {meta.field_shapes[f]}"
                )
        for k in meta.varying:
            if k not in features:
                raise DataError(f"{path}: split {split!r} has no coefficient column {k!r}")
