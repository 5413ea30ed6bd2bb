"""Write a row source to disk as a field data set: Arrow splits, ``field_meta.json`` and a dataset card.

The layout of ``DIR`` (the contract every reader relies on)::

    DIR/dataset_dict.json, DIR/train/, DIR/validation/, DIR/test/    # datasets.DatasetDict.save_to_disk
    DIR/field_meta.json                                             # sfm.physics.metadata.FieldMeta
    DIR/README.md                                                   # dataset card (sfm.data.cards)

How rows travel: each split's rows are cut into chunks (at most ``chunk_size`` rows and ~256 MiB); each
chunk is read from the source and written to its own Arrow file by a worker (the chunks of all splits share
one pool of ``num_proc`` processes), then each split's chunk files are concatenated in order, and the
train split is streamed once more for the normalization statistics before ``save_to_disk`` writes the
final shards. The chunking never depends on ``num_proc``, and a row depends only on its index, so the
output is identical for any process count.

Memory: a worker holds one chunk; the statistics pass one chunk; ``save_to_disk`` copies at most ~100 MB
at a time (``datasets``' row-group size). Peak heap therefore does not grow with the number of rows
(``bench/data.py`` measures it at N and 10N). Everything is written inside a temporary folder beside ``DIR``
that is renamed at the end (:func:`sfm.utils.io.atomic_dir`), so a failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import shutil
import sys
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from datasets.arrow_writer import ArrowWriter
from tqdm.auto import tqdm

from sfm.data.cards import write_card
from sfm.data.splits import SPLIT_FRACTIONS, split_indices
from sfm.errors import ConfigError, DataError
from sfm.physics.metadata import SPLITS, RunningStats
from sfm.physics.sources import Column, RowSource
from sfm.utils.io import atomic_dir

# A chunk is the unit of work and of memory: 256 MiB keeps a 3D CFD trajectory (hundreds of MiB) to one
# row per chunk while 1D data still moves in chunks of chunk_size rows.
CHUNK_BYTES = 256 * 2**20
_ARRAYS = {2: datasets.Array2D, 3: datasets.Array3D, 4: datasets.Array4D, 5: datasets.Array5D}


def features_of(columns: dict[str, Column]) -> datasets.Features:
    """The ``datasets`` features of a row source's columns (fields as fixed-shape ``ArrayND``)."""
    out = {}
    for name, col in columns.items():
        if len(col.shape) >= 2:
            if len(col.shape) not in _ARRAYS:
                raise DataError(f"field {name!r} has {len(col.shape)} axes; at most 5 are supported")
            out[name] = _ARRAYS[len(col.shape)](shape=col.shape, dtype=col.dtype)
        elif len(col.shape) == 1:
            out[name] = datasets.List(datasets.Value(col.dtype), length=col.shape[0])
        else:
            out[name] = datasets.Value(col.dtype)
    return datasets.Features(out)


def rows_per_chunk(columns: dict[str, Column], chunk_size: int) -> int:
    """At most ``chunk_size`` rows and about :data:`CHUNK_BYTES` per chunk (at least one row)."""
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
    row_bytes = sum(
        int(np.prod(c.shape)) * np.dtype(c.dtype if c.dtype != "string" else "u1").itemsize
        for c in columns.values()
    )
    return max(1, min(chunk_size, CHUNK_BYTES // max(row_bytes, 1)))


@contextlib.contextmanager
def progress_bars(enabled: bool) -> Iterator[None]:
    """Turn the ``datasets`` progress bars on or off for a block, restoring the previous state."""
    before = datasets.is_progress_bar_enabled()
    with warnings.catch_warnings():  # HF_DATASETS_DISABLE_PROGRESS_BARS=1 wins, and says so, on enable
        warnings.simplefilter("ignore")
        (datasets.enable_progress_bars if enabled else datasets.disable_progress_bars)()
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (datasets.enable_progress_bars if before else datasets.disable_progress_bars)()


def build(
    source: RowSource,
    out: str | Path,
    *,
    seed: int = 0,
    split_fractions: Sequence[float] = SPLIT_FRACTIONS,
    chunk_size: int = 32,
    num_proc: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write ``source`` as a field data set in ``out`` (atomically).

    Args:
        source: Rows and metadata (see :mod:`sfm.physics.sources`).
        out: Destination folder; an existing non-empty folder is an error unless ``overwrite``.
        seed: Seed of the train/validation/test assignment (unused when the source has predefined splits).
        split_fractions: Fractions of rows in train, validation, test.
        chunk_size: Most rows read and written at once.
        num_proc: Worker processes reading (generating) and writing chunks.
        overwrite: Replace an existing ``out``.
        progress: Show progress bars.

    Returns:
        The data set folder.
    """
    if num_proc < 1:
        raise ConfigError(f"num_proc must be >= 1, got {num_proc}")
    splits = (
        source.splits if source.splits is not None else split_indices(source.num_rows, seed, split_fractions)
    )
    # A source's own splits may leave some empty (an importer asked to put a file into one split); a
    # seeded split never does (split_counts gives each at least one row).
    if sum(len(splits.get(name, ())) for name in SPLITS) == 0:
        raise DataError("no trajectories to write (0 in all)")
    features = features_of(source.columns)
    rows = rows_per_chunk(source.columns, chunk_size)
    with progress_bars(progress), atomic_dir(out, overwrite=overwrite) as tmp:
        scratch = tmp / ".chunks"
        scratch.mkdir()
        files: dict[str, list[Path]] = {}
        tasks: list[tuple[np.ndarray, Path]] = []  # all splits in one pool, so workers stay busy
        for name in SPLITS:
            idx = np.asarray(splits[name], dtype=np.int64)
            chunks = [idx[i : i + rows] for i in range(0, len(idx), rows)]
            files[name] = [scratch / f"{name}-{k:06d}.arrow" for k in range(len(chunks))]
            tasks += zip(chunks, files[name])
        _write_chunks(source, tasks, features, num_proc, progress)
        dd = datasets.DatasetDict({name: _concat_chunks(paths, features) for name, paths in files.items()})
        # Statistics come from train; a data set imported whole into validation or test has none, and
        # takes them from the split that holds its rows (recorded, so nobody mistakes them for train's).
        stats_split = "train" if len(dd["train"]) else next(s for s in SPLITS if len(dd[s]))
        extra = {**source.meta.extra, **_coefficient_ranges(dd, source.meta.varying)}
        if stats_split != "train":
            extra["stats_split"] = stats_split
        meta = source.meta.replace(
            stats=train_stats(dd[stats_split], source.meta.fields, rows, progress),
            splits={s: len(dd[s]) for s in SPLITS},
            field_shapes={f: list(source.columns[f].shape) for f in source.meta.fields},
            extra=extra,
        )
        # datasets writes an empty split as zero shards, which load_from_disk cannot read back: one shard each
        dd.save_to_disk(str(tmp), num_shards={s: 1 for s in SPLITS if len(dd[s]) == 0} or None)
        del dd  # release the memory maps of the chunk files before deleting them
        shutil.rmtree(scratch)
        meta.save(tmp)
        write_card(tmp, meta, load_path=str(out))
    return Path(out)


def _concat_chunks(paths: list[Path], features: datasets.Features) -> datasets.Dataset:
    """One split from its chunk files (an empty split, with no chunks, keeps the columns' features)."""
    if not paths:
        return datasets.Dataset.from_dict({k: [] for k in features}, features=features)
    return datasets.concatenate_datasets([datasets.Dataset.from_file(str(f)) for f in paths])


def _write_chunks(
    source: RowSource,
    tasks: list[tuple[np.ndarray, Path]],
    features: datasets.Features,
    num_proc: int,
    progress: bool,
) -> None:
    """Write each (row indices, file) task, in this process or in a pool of ``num_proc`` workers."""
    bar = tqdm(total=sum(len(idx) for idx, _ in tasks), desc="writing", unit="traj", disable=not progress)
    with bar:
        if num_proc == 1 or len(tasks) == 1:
            for idx, path in tasks:
                bar.update(_write_chunk(source, idx, path, features))
            return
        pool = ProcessPoolExecutor(min(num_proc, len(tasks)), mp_context=_mp_context())
        try:
            futures = [pool.submit(_write_chunk, source, idx, path, features) for idx, path in tasks]
            for fut in futures:  # in order, so the first failing chunk is the one reported
                bar.update(fut.result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _mp_context() -> Any:
    # fork starts workers in milliseconds and lets them see every registered simulator (including ones
    # registered at run time); elsewhere fall back to the platform default.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _write_chunk(source: RowSource, indices: np.ndarray, path: Path, features: datasets.Features) -> int:
    """Read rows ``indices`` from ``source`` and write them to one Arrow file (runs in a worker)."""
    cols = source.read(indices)
    missing = set(features) - set(cols)
    if missing:  # a source that does not deliver its declared columns is a bug, not a user error
        raise RuntimeError(f"row source {type(source).__name__} did not return columns {sorted(missing)}")
    with ArrowWriter(features=features, path=str(path)) as writer:
        writer.write_batch({k: cols[k] for k in features})
        writer.finalize()
    return len(indices)


def train_stats(train: datasets.Dataset, fields: list[str], rows: int, progress: bool) -> dict[str, dict]:
    """Normalization statistics of each field over the train split, streamed in chunks of ``rows``."""
    stats = {f: RunningStats() for f in fields}
    data = train.select_columns(fields).with_format("numpy")
    for batch in tqdm(
        data.iter(batch_size=rows),
        desc="statistics",
        unit="chunk",
        disable=not progress,
        total=-(-len(train) // rows),
    ):
        for f in fields:
            stats[f].update(batch[f])
    return {f: s.result() for f, s in stats.items()}


def _coefficient_ranges(dd: datasets.DatasetDict, varying: list[str]) -> dict[str, Any]:
    if not varying:
        return {}
    ranges = {}
    for key in varying:
        values = np.concatenate([scalar_column(dd[s], key) for s in SPLITS])
        ranges[key] = [float(values.min()), float(values.max())]
    return {"varying_ranges": ranges}


def scalar_column(ds: datasets.Dataset, name: str) -> np.ndarray:
    """A scalar column at its stored precision (``datasets``' numpy format would give float64 as float32)."""
    return ds.select_columns([name]).with_format("arrow")[:][name].to_numpy()
