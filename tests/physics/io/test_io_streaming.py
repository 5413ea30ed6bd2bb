"""Imports stream by chunk: with the chunk size patched small, the importer never reads more than a chunk's
trajectories (plus take_rows' bounded slab) from a file at once, and the data set still equals the file.

``bench/import_memory.py`` measures the memory this buys on a file of several GiB.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from sfm.data import builder, import_dataset, load_field_dataset

SPLITS = ("train", "validation", "test")
N, NT, NX, NY = 12, 3, 4, 5


@pytest.fixture
def reads(monkeypatch):
    """Every h5py read of a field dataset: (key, rows returned)."""
    seen: list[tuple[str, int]] = []
    original = h5py.Dataset.__getitem__

    def recording(self, item):
        out = original(self, item)
        key = self.name.rsplit("/", 1)[-1]
        if (
            key in ("velocity", "particles", "force", "data")
            and isinstance(out, np.ndarray)
            and out.ndim >= 3
        ):
            seen.append((self.name, len(out) if key != "data" else 1))
        return out

    monkeypatch.setattr(h5py.Dataset, "__getitem__", recording)
    return seen


@pytest.mark.parametrize("rows_per_chunk", [1, 2])
def test_incompressible_ns_import_reads_chunk_by_chunk(tmp_path, monkeypatch, reads, rows_per_chunk):
    path = tmp_path / "ns_incom_inhom_2d_512-0.h5"
    rng = np.random.default_rng(0)
    velocity = rng.standard_normal((N, NT, NX, NY, 2)).astype(np.float32)
    force = rng.standard_normal((N, NX, NY, 2)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["velocity"], f["force"] = velocity, force
        f["t"] = np.tile(np.arange(NT, dtype=np.float32), (N, 1))
    row_bytes = sum(int(np.prod(s)) * 4 for s in ([NT, NX, NY],) * 2 + ([1, NX, NY],) * 2) + 8 + 1
    # the builder cuts chunks by bytes as well as by chunk_size: patch the bytes so a chunk is K rows
    monkeypatch.setattr(builder, "CHUNK_BYTES", rows_per_chunk * row_bytes)
    out = import_dataset("pdebench", [path], tmp_path / "ds", seed=2, progress=False)
    assert reads, "the h5py reads were not seen"
    # take_rows reads a covering slab of at most twice the chunk's rows (a dense scatter), never the file
    assert max(n for _, n in reads) <= 2 * rows_per_chunk
    assert sum(n for key, n in reads if key == "/velocity") >= N  # every trajectory was read, chunk by chunk
    ds = load_field_dataset(out)
    for s in SPLITS:
        index = ds.column(s, "source_index")
        np.testing.assert_array_equal(ds.arrays(s, "Vy"), velocity[index, ..., 1])
        np.testing.assert_array_equal(ds.arrays(s, "Fx"), force[index, None, ..., 0])


def test_per_seed_import_reads_one_group_per_trajectory(tmp_path, monkeypatch):
    path = tmp_path / "2D_rdb_NA_NA.h5"
    data = np.random.default_rng(1).standard_normal((N, NT, NX, NY, 1)).astype(np.float32)
    with h5py.File(path, "w") as f:
        for i in range(N):
            g = f.create_group(f"{i:04d}")
            g["data"] = data[i]
            g["grid/x"], g["grid/y"], g["grid/t"] = np.arange(NX), np.arange(NY), np.arange(NT)
    seen_rows: list[int] = []
    from sfm.physics.io.pdebench import PDEBenchRows

    original = PDEBenchRows.read_file

    def recording(self, info, local):
        seen_rows.append(len(local))
        return original(self, info, local)

    monkeypatch.setattr(PDEBenchRows, "read_file", recording)
    monkeypatch.setattr(builder, "CHUNK_BYTES", 3 * NT * NX * NY * 4)
    ds = load_field_dataset(import_dataset("pdebench", [path], tmp_path / "ds", progress=False))
    assert max(seen_rows) <= 3 and sum(seen_rows) == N
    for s in SPLITS:
        np.testing.assert_array_equal(ds.arrays(s, "h"), data[ds.column(s, "source_index"), ..., 0])
