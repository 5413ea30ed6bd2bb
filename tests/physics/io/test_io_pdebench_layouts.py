"""PDEBench's 2D and 3D layouts, written as tiny files the way its generators write them, imported and
compared with the file bit for bit (every field, every trajectory), with the file-name coefficients."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from sfm.data import import_dataset, load_field_dataset
from sfm.errors import DataError

SPLITS = ("train", "validation", "test")


def by_source(ds, column: str) -> dict[int, np.ndarray]:
    """One column over all splits, keyed by the trajectory's index in its file."""
    out = {}
    for s in SPLITS:
        values = ds.arrays(s, column) if column in ds.meta.fields else ds.column(s, column)
        out.update(zip(ds.column(s, "source_index").tolist(), values))
    return out


def random(shape, seed: int) -> np.ndarray:
    # Random float32 bits (not round numbers): an import that rounds or casts through float16 would show.
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def write_ns_incom(path: Path, n=3, nt=4, nx=6, ny=5, **attrs) -> dict[str, np.ndarray]:
    """PDEBench's 2D incompressible NS layout (no coordinates; ``t`` per trajectory)."""
    arrays = {
        "velocity": random((n, nt, nx, ny, 2), 0),
        "particles": random((n, nt, nx, ny, 1), 1),
        "force": random((n, nx, ny, 2), 2),
        "t": np.tile(np.arange(nt) * 0.005, (n, 1)).astype(np.float32),
    }
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f[k] = v
        f.attrs.update(attrs)
    return arrays


def test_incompressible_navier_stokes_layout(tmp_path):
    path = tmp_path / "ns_incom_inhom_2d_512-0.h5"
    a = write_ns_incom(path)
    ds = load_field_dataset(import_dataset("pdebench", [path], tmp_path / "ds", progress=False))
    m = ds.meta
    assert m.family == "incompressible_navier_stokes" and m.ndim == 2
    assert m.fields == ["Vx", "Vy", "particles", "Fx", "Fy"]
    assert m.field_shapes == {
        "Vx": [4, 6, 5],
        "Vy": [4, 6, 5],
        "particles": [4, 6, 5],
        "Fx": [1, 6, 5],
        "Fy": [1, 6, 5],
    }
    assert m.extra["constant_in_time"] == ["Fx", "Fy"] and "grid_note" in m.extra
    assert m.coefficients == {} and m.varying == []  # the file name has none, and no attribute gives one
    np.testing.assert_allclose(m.coords["t"], np.arange(4) * 0.005, rtol=1e-6)
    np.testing.assert_allclose(m.coords["x"], (np.arange(6) + 0.5) / 6)
    np.testing.assert_allclose(m.coords["y"], (np.arange(5) + 0.5) / 5)
    cols = {c: by_source(ds, c) for c in m.fields}
    assert sorted(cols["Vx"]) == [0, 1, 2]
    for i in range(3):
        np.testing.assert_array_equal(cols["Vx"][i], a["velocity"][i, ..., 0])
        np.testing.assert_array_equal(cols["Vy"][i], a["velocity"][i, ..., 1])
        np.testing.assert_array_equal(cols["particles"][i], a["particles"][i, ..., 0])
        np.testing.assert_array_equal(cols["Fx"][i], a["force"][i, None, ..., 0])
        np.testing.assert_array_equal(cols["Fy"][i], a["force"][i, None, ..., 1])


def test_incompressible_navier_stokes_viscosity_from_an_attribute(tmp_path):
    path = tmp_path / "ns_incom_inhom_2d_512-1.h5"
    write_ns_incom(path, viscosity=0.01)
    ds = load_field_dataset(import_dataset("pdebench", [path], tmp_path / "ds", progress=False))
    assert ds.meta.coefficients == {"nu": 0.01}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"velocity": np.zeros((3, 4, 6, 5, 3), np.float32)}, "'velocity' has shape (3, 4, 6, 5, 3)"),
        (
            {"force": np.zeros((3, 6, 4, 2), np.float32)},
            "'force' has shape (3, 6, 4, 2), expected (3, 6, 5, 2)",
        ),
        ({"t": np.zeros((3, 5))}, "'t' has shape (3, 5), expected [3, 4]"),
        ({"t": np.arange(12.0).reshape(3, 4)}, "'t' differs between trajectories"),
    ],
)
def test_incompressible_navier_stokes_bad_files(tmp_path, change, message):
    path = tmp_path / "ns_incom_inhom_2d_512-0.h5"
    write_ns_incom(path)
    with h5py.File(path, "a") as f:
        for k, v in change.items():
            del f[k]
            f[k] = v
    with pytest.raises(DataError) as e:
        import_dataset("pdebench", [path], tmp_path / "ds", progress=False)
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert not (tmp_path / "ds").exists()


def write_cfd(path: Path, space: tuple[int, ...], n=3, nt=3) -> dict[str, np.ndarray]:
    """PDEBench's CFD layout: density, pressure, Vx, Vy(, Vz) [N, T, *space], coordinates, T+1 times."""
    names = ["density", "pressure", "Vx", "Vy", "Vz"][: 2 + len(space)]
    arrays = {k: random((n, nt, *space), seed) for seed, k in enumerate(names)}
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f[k] = v
        for axis, size in zip("xyz", space):
            f[f"{axis}-coordinate"] = ((np.arange(size) + 0.5) / size).astype(np.float32)
        f["t-coordinate"] = (np.arange(nt + 1) * 0.05).astype(np.float32)
    return arrays


@pytest.mark.parametrize(
    ("name", "space", "coeffs", "bc"),
    [
        ("2D_CFD_Rand_M0.1_Eta0.01_Zeta0.01_periodic_128_Train.hdf5", (4, 5), {"M": 0.1}, "periodic"),
        ("3D_CFD_Turb_M1.0_Eta1e-08_Zeta1e-08_periodic_Train.hdf5", (3, 4, 2), {"M": 1.0}, "periodic"),
        ("2D_CFD_Rand_M0.1_Eta0.1_Zeta0.1_trans_Train.hdf5", (4, 5), {"M": 0.1}, "outgoing (transmissive)"),
    ],
)
def test_compressible_cfd_2d_and_3d(tmp_path, name, space, coeffs, bc):
    path = tmp_path / name
    a = write_cfd(path, space)
    ds = load_field_dataset(import_dataset("pdebench", [path], tmp_path / "ds", progress=False))
    m = ds.meta
    assert m.family == "compressible_navier_stokes" and m.ndim == len(space)
    assert m.fields == list(a) and all(m.field_shapes[c] == [3, *space] for c in a)
    eta = 0.01 if "Eta0.01" in name else 0.1 if "Eta0.1_" in name else 1e-8
    assert m.coefficients == {**coeffs, "eta": eta, "zeta": eta}
    assert m.boundary_conditions == {axis: bc for axis in "xyz"[: len(space)]}
    np.testing.assert_allclose(m.coords["t"], np.arange(3) * 0.05, rtol=1e-6)  # T+1 entries cut to T
    for axis, size in zip("xyz", space):
        np.testing.assert_allclose(m.coords[axis], (np.arange(size) + 0.5) / size, rtol=1e-6)
    for column, values in a.items():
        got = by_source(ds, column)
        for i in range(3):
            np.testing.assert_array_equal(got[i], values[i])


def write_seed_groups(path: Path, data: np.ndarray, config: str | None = None) -> None:
    """PDEBench's per-seed layout: groups 0000.. with data [T, X, Y, C] and grid/x, grid/y, grid/t."""
    n, nt, nx, ny = data.shape[:4]
    with h5py.File(path, "w") as f:
        for i in range(n):
            g = f.create_group(f"{i:04d}")
            g["data"] = data[i]
            g["grid/x"], g["grid/y"] = np.linspace(-2.5, 2.5, nx), np.linspace(-2.5, 2.5, ny)
            g["grid/t"] = np.linspace(0, 1, nt)
            if config:
                g.attrs["config"] = config


def test_shallow_water_per_seed_layout(tmp_path):
    path = tmp_path / "2D_rdb_NA_NA.h5"
    data = random((4, 3, 5, 6, 1), 7)
    write_seed_groups(path, data)
    ds = load_field_dataset(import_dataset("pdebench", [path], tmp_path / "ds", progress=False))
    m = ds.meta
    assert m.family == "shallow_water" and m.fields == ["h"] and m.field_shapes == {"h": [3, 5, 6]}
    assert m.boundary_conditions == {"x": "neumann", "y": "neumann"}
    np.testing.assert_allclose(m.coords["x"], np.linspace(-2.5, 2.5, 5))
    h = by_source(ds, "h")
    for i in range(4):
        np.testing.assert_array_equal(h[i], data[i, ..., 0])


def test_diffusion_reaction_2d_keeps_the_config_coefficients(tmp_path):
    path = tmp_path / "2D_diff-react_NA_NA.h5"
    data = random((3, 4, 5, 5, 2), 8)
    write_seed_groups(path, data, config="sim:\n  Du: 0.001\n  Dv: 0.005\n  k: 0.005\n")
    ds = load_field_dataset(import_dataset("pdebench", [path], tmp_path / "ds", progress=False))
    assert ds.meta.family == "diffusion_reaction_2d" and ds.meta.extra["config"]["Dv"] == 0.005
    u, v = by_source(ds, "u"), by_source(ds, "v")
    for i in range(3):
        np.testing.assert_array_equal(u[i], data[i, ..., 0])
        np.testing.assert_array_equal(v[i], data[i, ..., 1])


def test_darcy_coefficient_from_the_name(tmp_path):
    path = tmp_path / "2D_DarcyFlow_beta0.01_Train.hdf5"
    nu, tensor = random((3, 6, 6), 9), random((3, 1, 6, 6), 10)
    with h5py.File(path, "w") as f:
        f["nu"], f["tensor"] = nu, tensor
        f["x-coordinate"] = f["y-coordinate"] = np.linspace(0, 1, 6)
    ds = load_field_dataset(import_dataset("pdebench", [path], tmp_path / "ds", progress=False))
    assert ds.meta.coefficients == {"beta": 0.01} and ds.meta.steady
    a, u = by_source(ds, "a"), by_source(ds, "u")
    for i in range(3):
        np.testing.assert_array_equal(a[i], nu[i][None])
        np.testing.assert_array_equal(u[i], tensor[i])
