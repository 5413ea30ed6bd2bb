"""Fuzzing the HDF5 importers (PDEBench, The Well) with hypothesis.

Whatever a file holds — truncated or overwritten bytes, garbage, wrong dtypes, NaN/Inf, missing keys,
headers declaring datasets of 10^12 values — the only allowed outcomes are rows read back or one
one-line :class:`~sfm.errors.DataError` (never another exception, which would reach the user as a
traceback, and never an allocation of what a header merely declares). Most examples stop at opening the
row source and reading its rows, which exercises every read the builder makes, without the cost of writing
a data set; one property goes through :func:`~sfm.data.import_dataset` to check no output folder is left.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfm.data import import_dataset
from sfm.errors import DataError
from sfm.registry import IMPORTERS

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
N, NT, NX, NY = 3, 3, 4, 3


def _burgers(path: Path) -> None:
    with h5py.File(path, "w") as f:
        f["tensor"] = np.arange(N * NT * NX, dtype=np.float32).reshape(N, NT, NX)
        f["x-coordinate"] = np.linspace(0, 1, NX)
        f["t-coordinate"] = np.linspace(0, 1, NT + 1)


def _cfd(path: Path) -> None:
    with h5py.File(path, "w") as f:
        for k in ("density", "pressure", "Vx", "Vy"):
            f[k] = np.ones((N, NT, NX, NY), np.float32)
        f["x-coordinate"], f["y-coordinate"] = np.linspace(0, 1, NX), np.linspace(0, 1, NY)
        f["t-coordinate"] = np.linspace(0, 1, NT)


def _ns(path: Path) -> None:
    with h5py.File(path, "w") as f:
        f["velocity"] = np.ones((N, NT, NX, NY, 2), np.float32)
        f["particles"] = np.ones((N, NT, NX, NY, 1), np.float32)
        f["force"] = np.ones((N, NX, NY, 2), np.float32)
        f["t"] = np.tile(np.arange(NT, dtype=np.float32), (N, 1))


def _seeds(path: Path) -> None:
    with h5py.File(path, "w") as f:
        for i in range(N):
            g = f.create_group(f"{i:04d}")
            g["data"] = np.ones((NT, NX, NY, 1), np.float32)
            g["grid/x"], g["grid/y"], g["grid/t"] = np.arange(NX), np.arange(NY), np.arange(NT)


def _well(path: Path) -> None:
    with h5py.File(path, "w") as f:
        f.attrs.update(dataset_name="fuzz", n_spatial_dims=2, n_trajectories=N, grid_type="cartesian")
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y"]
        dims["time"], dims["x"], dims["y"] = np.arange(NT), np.arange(NX), np.arange(NY)
        g = f.create_group("t0_fields")
        g.attrs["field_names"] = ["rho"]
        g["rho"] = np.ones((N, NT, NX, NY), np.float32)
        s = f.create_group("scalars")
        s.attrs["field_names"] = ["g"]
        s["g"] = np.array(9.8)


# (file name, writer, importer, the keys a mutation may target)
LAYOUTS = {
    "tensor": (
        "1D_Burgers_Sols_Nu0.01.hdf5",
        _burgers,
        "pdebench",
        ["tensor", "x-coordinate", "t-coordinate"],
    ),
    "cfd": (
        "2D_CFD_Rand_M0.1_Eta0.01_Zeta0.01_periodic_128_Train.hdf5",
        _cfd,
        "pdebench",
        ["density", "Vy", "x-coordinate", "y-coordinate", "t-coordinate"],
    ),
    "ns": ("ns_incom_inhom_2d_512-0.h5", _ns, "pdebench", ["velocity", "particles", "force", "t"]),
    "seeds": (
        "2D_rdb_NA_NA.h5",
        _seeds,
        "pdebench",
        ["0000/data", "0001/data", "0000/grid/x", "0000/grid/t"],
    ),
    "well": (
        "fuzz.hdf5",
        _well,
        "the-well",
        ["t0_fields/rho", "dimensions/x", "dimensions/time", "scalars/g"],
    ),
}


def outcome(path: Path, fmt: str) -> str:
    """Open ``path`` and read every row: "ok", or the DataError's message (anything else fails the test)."""
    try:
        source = IMPORTERS.get(fmt)([path])
        if source.num_rows:
            source.read(np.arange(source.num_rows))
    except DataError as exc:
        message = str(exc)
        assert "\n" not in message and message, message
        assert str(path) in message, message  # names the file
        return message
    return "ok"


@FUZZ
@given(
    layout=st.sampled_from(sorted(LAYOUTS)),
    cut=st.floats(0.0, 1.0),
    patches=st.lists(st.tuples(st.floats(0.0, 1.0), st.binary(min_size=1, max_size=16)), max_size=3),
)
def test_truncated_and_overwritten_bytes(layout, cut, patches):
    name, write, fmt, _ = LAYOUTS[layout]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        write(path)
        data = bytearray(path.read_bytes())
        for where, junk in patches:
            at = int(where * (len(data) - 1))
            data[at : at + len(junk)] = junk
        path.write_bytes(bytes(data[: max(1, int(cut * len(data)))] if cut < 1 else data))
        outcome(path, fmt)


@FUZZ
@given(garbage=st.binary(max_size=4096), header=st.booleans())
def test_garbage_bytes(garbage, header):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "1D_Burgers_Sols_Nu0.1.hdf5"
        # with the HDF5 signature first, the library goes further into the garbage before failing
        path.write_bytes((b"\x89HDF\r\n\x1a\n" if header else b"") + garbage)
        assert outcome(path, "pdebench") != "ok"


DTYPES = ["int8", "int32", "uint16", "float16", "float64", "bool", "complex64", "S4", "compound", "vlen-str"]


def _replace(f: h5py.File, key: str, dtype: str) -> None:
    old = f[key][()]
    del f[key]
    if dtype == "compound":
        f[key] = np.zeros(old.shape, dtype=[("a", "f4"), ("b", "i4")])
    elif dtype == "vlen-str":
        f.create_dataset(key, shape=old.shape, dtype=h5py.string_dtype())
    else:
        f[key] = old.astype(dtype)


@FUZZ
@given(layout=st.sampled_from(sorted(LAYOUTS)), dtype=st.sampled_from(DTYPES), pick=st.integers(0, 10))
def test_wrong_dtypes(layout, dtype, pick):
    name, write, fmt, keys = LAYOUTS[layout]
    key = keys[pick % len(keys)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        write(path)
        with h5py.File(path, "a") as f:
            _replace(f, key, dtype)
        result = outcome(path, fmt)
        if dtype in ("bool", "complex64", "S4", "compound", "vlen-str") and not key.startswith("scalars"):
            assert "expected real numbers" in result, result  # never cast silently
        if dtype in ("int8", "int32", "uint16", "float64") and "grid" not in key:
            assert result == "ok" or "t-coordinate" in result or "time" in result, result


@FUZZ
@given(
    layout=st.sampled_from(sorted(LAYOUTS)),
    pick=st.integers(0, 10),
    value=st.sampled_from([np.nan, np.inf, -np.inf]),
    at=st.integers(0, 10**6),
)
def test_nan_and_inf_are_refused(layout, pick, value, at):
    name, write, fmt, keys = LAYOUTS[layout]
    key = keys[pick % len(keys)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        write(path)
        with h5py.File(path, "a") as f:
            arr = np.array(f[key][()], dtype=np.float32 if f[key].dtype == np.float32 else np.float64)
            arr.reshape(-1)[at % max(arr.size, 1)] = value
            del f[key]
            f[key] = arr
        assert "NaN or Inf" in outcome(path, fmt)


@FUZZ
@given(layout=st.sampled_from(sorted(LAYOUTS)), drop=st.sets(st.integers(0, 10), min_size=1, max_size=3))
def test_missing_keys(layout, drop):
    name, write, fmt, keys = LAYOUTS[layout]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        write(path)
        with h5py.File(path, "a") as f:
            for k in {keys[i % len(keys)] for i in drop}:
                del f[k]
        result = outcome(path, fmt)
        assert result == "ok" or path.name in result


@FUZZ
@given(
    layout=st.sampled_from(sorted(LAYOUTS)),
    pick=st.integers(0, 10),
    extra_axis=st.integers(10**5, 10**7),
    compressed=st.booleans(),
)
def test_huge_declared_shapes_are_refused_before_allocating(layout, pick, extra_axis, compressed):
    """A header may declare 10^12 values in a file of a few KiB (chunked, never written)."""
    name, write, fmt, keys = LAYOUTS[layout]
    key = keys[pick % len(keys)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        write(path)
        with h5py.File(path, "a") as f:
            shape = list(f[key].shape) or [1]
            shape[-1] = extra_axis  # the last axis grows: with N, T fixed a trajectory becomes huge
            shape = [max(s, 1) for s in shape]
            while np.prod(shape, dtype=np.float64) < 1e12:
                shape[-1] *= 10
            del f[key]
            f.create_dataset(
                key, shape=tuple(shape), dtype="f4", chunks=True, compression="gzip" if compressed else None
            )
        assert path.stat().st_size < 2**20
        assert outcome(path, fmt) != "ok"


# Attributes of a Well file that say how to read it, and odd values a broken writer could leave there.
WELL_ATTRS = [
    ("/", "n_trajectories"),
    ("/", "n_spatial_dims"),
    ("/", "dataset_name"),
    ("dimensions", "spatial_dims"),
    ("t0_fields", "field_names"),
    ("t0_fields/rho", "sample_varying"),
    ("t0_fields/rho", "time_varying"),
    ("t0_fields/rho", "dim_varying"),
    ("scalars", "field_names"),
    ("scalars/g", "sample_varying"),
]
ODD_VALUES = st.one_of(
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.booleans(), max_size=4),
    st.lists(st.sampled_from(["x", "y", "z", "rho", "g", "q"]), max_size=4),
)


@FUZZ
@given(target=st.sampled_from(WELL_ATTRS), value=ODD_VALUES)
def test_odd_well_attributes(target, value):
    where, attr = target
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.hdf5"
        _well(path)
        with h5py.File(path, "a") as f:
            f[where].attrs[attr] = value
        outcome(path, "the-well")


@settings(max_examples=6, deadline=None)
@given(layout=st.sampled_from(sorted(LAYOUTS)), cut=st.floats(0.05, 0.95))
def test_a_failed_import_leaves_no_output(layout, cut):
    name, write, fmt, _ = LAYOUTS[layout]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        write(path)
        data = path.read_bytes()
        path.write_bytes(data[: int(cut * len(data))])
        with pytest.raises(DataError):
            import_dataset(fmt, [path], Path(tmp) / "out", progress=False)
        assert sorted(p.name for p in Path(tmp).iterdir()) == [name]
