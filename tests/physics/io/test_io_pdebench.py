"""PDEBench importer: both layouts, written here as tiny files, imported and checked value by value."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from sfm.data import import_dataset, load_field_dataset
from sfm.errors import ConfigError, DataError
from sfm.physics.io.pdebench import parse_name
from sfm.physics.metadata import field_stats

SPLITS = ("train", "validation", "test")


def write_burgers(folder: Path, nu: float, n=5, nt=4, nx=8, offset=0.0, t_extra=True) -> Path:
    """PDEBench's 1D layout: tensor [N, T, X], cell-centre x, and T+1 t entries (arange(T+1)*dt)."""
    path = folder / f"1D_Burgers_Sols_Nu{nu}.hdf5"
    i, t, x = np.meshgrid(np.arange(n), np.arange(nt), np.arange(nx), indexing="ij")
    with h5py.File(path, "w") as f:
        f["tensor"] = (offset + 100 * i + 10 * t + x).astype(np.float32)
        f["x-coordinate"] = ((np.arange(nx) + 0.5) / nx).astype(np.float32)
        f["t-coordinate"] = (np.arange(nt + (1 if t_extra else 0)) * 0.05).astype(np.float32)
    return path


def rows(ds, column):
    """A column over all splits with its (source_file, source_index) keys."""
    keys = [(f, i) for s in SPLITS for f, i in zip(ds.column(s, "source_file"), ds.column(s, "source_index"))]
    values = [
        v
        for s in SPLITS
        for v in (ds.arrays(s, column) if column in ds.meta.fields else ds.column(s, column))
    ]
    return dict(zip(keys, values))


def test_two_burgers_files_make_one_dataset_with_a_nu_column(tmp_path):
    a = write_burgers(tmp_path, 0.01, offset=0.0)
    b = write_burgers(tmp_path, 0.1, offset=1000.0)
    out = import_dataset("pdebench", [a, b], tmp_path / "ds", seed=1, progress=False)
    ds = load_field_dataset(out)
    m = ds.meta
    assert m.family == "burgers" and m.equation == "u_t + u*u_x = nu*u_xx"
    assert m.fields == ["u"] and m.field_shapes == {"u": [4, 8]} and m.varying == ["nu"]
    assert m.splits == {"train": 8, "validation": 1, "test": 1}
    np.testing.assert_allclose(m.coords["t"], np.arange(4) * 0.05, rtol=1e-6)  # T+1 entries cut to T
    np.testing.assert_allclose(m.coords["x"], (np.arange(8) + 0.5) / 8, rtol=1e-7)
    assert m.boundary_conditions == {"x": "periodic"} and "time_note" in m.extra
    u, nu = rows(ds, "u"), rows(ds, "nu")
    assert len(u) == 10
    # PDEBench's viscous term is (Nu/pi) u_xx: the stored nu is the viscosity itself, Nu/pi
    assert m.extra["pdebench_coefficients"] == {a.name: {"nu": 0.01}, b.name: {"nu": 0.1}}
    for path, offset, value in ((a, 0.0, 0.01 / np.pi), (b, 1000.0, 0.1 / np.pi)):
        with h5py.File(path) as f:
            tensor = f["tensor"][()]
        for i in range(5):
            np.testing.assert_array_equal(u[(path.name, i)], tensor[i])
            assert nu[(path.name, i)] == pytest.approx(value, rel=1e-15)
            assert u[(path.name, i)][0, 0] == offset + 100 * i  # the row really is trajectory i
    train = ds.arrays("train", "u")
    for key, value in field_stats(train).items():
        assert m.stats["u"][key] == pytest.approx(value, rel=1e-12)
    assert m.source["name"] == "pdebench" and [f["name"] for f in m.source["files"]] == [a.name, b.name]


def test_t_coordinate_of_T_entries_and_limit(tmp_path):
    p = write_burgers(tmp_path, 0.02, n=6, t_extra=False)
    ds = load_field_dataset(import_dataset("pdebench", [p], tmp_path / "ds", limit=4, progress=False))
    assert sum(ds.meta.splits.values()) == 4 and "time_note" not in ds.meta.extra
    assert ds.meta.coefficients == {"nu": pytest.approx(0.02 / np.pi, rel=1e-15)} and ds.meta.varying == []
    assert sorted(rows(ds, "u")) == [(p.name, i) for i in range(4)]


def test_darcy_layout_is_steady_with_a_and_u(tmp_path):
    path = tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5"
    rng = np.random.default_rng(0)
    nu, tensor = rng.random((4, 6, 5)).astype(np.float32), rng.random((4, 1, 6, 5)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f["nu"], f["tensor"] = nu, tensor
        f["x-coordinate"], f["y-coordinate"] = np.linspace(0, 1, 6), np.linspace(0, 1, 5)
        f.attrs["beta"] = 1.0
    ds = load_field_dataset(import_dataset("pdebench", [path], tmp_path / "ds", progress=False))
    m = ds.meta
    assert m.family == "darcy" and m.steady and m.fields == ["a", "u"]
    assert m.field_shapes == {"a": [1, 6, 5], "u": [1, 6, 5]} and m.coefficients == {"beta": 1.0}
    assert m.boundary_conditions == {"x": "dirichlet", "y": "dirichlet"}
    a, u = rows(ds, "a"), rows(ds, "u")
    for i in range(4):
        np.testing.assert_array_equal(a[(path.name, i)], nu[i][None])
        np.testing.assert_array_equal(u[(path.name, i)], tensor[i])


def test_cfd_layout_keeps_pdebench_names_and_name_coefficients(tmp_path):
    path = tmp_path / "2D_CFD_Rand_M0.1_Eta0.01_Zeta0.01_periodic_128_Train.hdf5"
    data = {
        k: np.full((3, 2, 4, 4), v, np.float32) + np.arange(3, dtype=np.float32)[:, None, None, None]
        for k, v in zip(("density", "pressure", "Vx", "Vy"), (1.0, 2.0, 3.0, 4.0))
    }
    with h5py.File(path, "w") as f:
        for k, v in data.items():
            f[k] = v
        f["x-coordinate"] = f["y-coordinate"] = np.linspace(0, 1, 4)
        f["t-coordinate"] = np.array([0.0, 0.05, 0.1])
    ds = load_field_dataset(import_dataset("pdebench", [path], tmp_path / "ds", progress=False))
    m = ds.meta
    assert m.family == "compressible_navier_stokes" and m.fields == ["density", "pressure", "Vx", "Vy"]
    assert m.coefficients == {"M": 0.1, "eta": 0.01, "zeta": 0.01}
    assert m.boundary_conditions == {"x": "periodic", "y": "periodic"}
    vy = rows(ds, "Vy")
    for i in range(3):
        np.testing.assert_array_equal(vy[(path.name, i)], data["Vy"][i])


def write_seeds(path: Path, n=5, nt=3, nx=4, ny=4, channels=2) -> np.ndarray:
    """PDEBench's per-seed layout: groups 0000.. with data [T, X, Y, C] and grid/x, grid/y, grid/t."""
    data = np.random.default_rng(1).random((n, nt, nx, ny, channels)).astype(np.float32)
    with h5py.File(path, "w") as f:
        for i in range(n):
            g = f.create_group(f"{i:04d}")
            g["data"] = data[i]
            g["grid/x"], g["grid/y"] = np.linspace(-1, 1, nx), np.linspace(-1, 1, ny)
            g["grid/t"] = np.linspace(0, 5, nt)
            g.attrs["config"] = "sim:\n  Du: 0.001\n  Dv: 0.005\n  k: 0.005\n"
    return data


def test_per_seed_layout(tmp_path):
    path = tmp_path / "2D_diff-react_NA_NA.h5"
    data = write_seeds(path)
    ds = load_field_dataset(import_dataset("pdebench", [path], tmp_path / "ds", progress=False))
    m = ds.meta
    assert m.family == "diffusion_reaction_2d" and m.fields == ["u", "v"]
    assert m.field_shapes == {"u": [3, 4, 4], "v": [3, 4, 4]}
    assert m.extra["config"] == {"Du": 0.001, "Dv": 0.005, "k": 0.005}
    np.testing.assert_allclose(m.coords["t"], np.linspace(0, 5, 3))
    u, v = rows(ds, "u"), rows(ds, "v")
    for i in range(5):
        np.testing.assert_array_equal(u[(path.name, i)], data[i, ..., 0])
        np.testing.assert_array_equal(v[(path.name, i)], data[i, ..., 1])


@pytest.mark.parametrize(
    ("name", "family", "coeffs", "bc"),
    [
        ("1D_Advection_Sols_beta0.4.hdf5", "advection", {"beta": 0.4}, None),
        ("1D_Burgers_Sols_Nu0.001.hdf5", "burgers", {"nu": 0.001}, None),
        ("ReacDiff_Nu0.5_Rho1.0.hdf5", "diffusion_reaction", {"nu": 0.5, "rho": 1.0}, None),
        ("ReacDiff_react_Nu10.0_Rho5.0.hdf5", "diffusion_reaction", {"nu": 10.0, "rho": 5.0}, None),
        ("2D_DarcyFlow_beta100.0_Train.hdf5", "darcy", {"beta": 100.0}, None),
        (
            "1D_CFD_Rand_Eta1.e-8_Zeta1.e-8_trans_Train.hdf5",
            "compressible_navier_stokes",
            {"eta": 1e-8, "zeta": 1e-8},
            "trans",
        ),
        (
            "2D_CFD_Rand_M0.1_Eta0.01_Zeta0.01_periodic_128_Train.hdf5",
            "compressible_navier_stokes",
            {"M": 0.1, "eta": 0.01, "zeta": 0.01},
            "periodic",
        ),
        (
            "3D_CFD_Turb_M1.0_Eta1e-08_Zeta1e-08_periodic_Train.hdf5",
            "compressible_navier_stokes",
            {"M": 1.0, "eta": 1e-8, "zeta": 1e-8},
            "periodic",
        ),
        ("2D_diff-react_NA_NA.h5", "diffusion_reaction_2d", {}, None),
        ("2D_rdb_NA_NA.h5", "shallow_water", {}, None),
        ("1D_diff-sorp_NA_NA.h5", "diffusion_sorption", {}, None),
        ("my_renamed_file.hdf5", None, {}, None),
    ],
)
def test_parse_name(name, family, coeffs, bc):
    assert parse_name(Path(name)) == (family, coeffs, bc)


def test_file_attributes_take_precedence_over_the_name(tmp_path):
    p = write_burgers(tmp_path, 0.01)
    with h5py.File(p, "a") as f:
        f.attrs["Nu"] = 0.05
    ds = load_field_dataset(import_dataset("pdebench", [p], tmp_path / "ds", progress=False))
    assert ds.meta.coefficients == {"nu": pytest.approx(0.05 / np.pi, rel=1e-15)}
    assert ds.meta.extra["pdebench_coefficients"] == {p.name: {"nu": 0.05}}


def _corrupt(kind: str, folder: Path) -> Path:
    if kind == "not_hdf5":
        p = folder / "1D_Burgers_Sols_Nu0.1.hdf5"
        p.write_text("this is not an HDF5 file")
        return p
    if kind == "truncated":
        p = write_burgers(folder, 0.1, n=400, nx=64)
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
        return p
    p = write_burgers(folder, 0.1)
    with h5py.File(p, "a") as f:
        if kind == "missing_x":
            del f["x-coordinate"]
        elif kind == "short_x":
            del f["x-coordinate"]
            f["x-coordinate"] = np.linspace(0, 1, 7)
        elif kind == "bad_t":
            del f["t-coordinate"]
            f["t-coordinate"] = np.linspace(0, 1, 9)
        elif kind == "nan":
            f["tensor"][3, 2, 1] = np.nan
        elif kind == "unknown_layout":
            for k in list(f):
                del f[k]
            f["weird"] = np.zeros(3)
    return p


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("not_hdf5", "not a readable HDF5 file"),
        ("truncated", "Nu0.1.hdf5: "),
        ("missing_x", "missing dataset 'x-coordinate'"),
        ("short_x", "'x-coordinate' has 7 entries but the data have 8 points"),
        ("bad_t", "'t-coordinate' has 9 entries but the data have 4 frames"),
        ("nan", "'tensor' holds NaN or Inf values (trajectory 3)"),
        ("unknown_layout", "not a PDEBench layout"),
    ],
)
def test_bad_input_is_one_data_error_and_leaves_nothing(kind, message, tmp_path):
    path = _corrupt(kind, tmp_path)
    with pytest.raises(DataError) as e:
        import_dataset("pdebench", [path], tmp_path / "ds", progress=False)
    text = str(e.value)
    assert message in text and path.name in text and "\n" not in text, text
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no output, no temp folder


def test_inconsistent_inputs_and_options(tmp_path):
    burgers = write_burgers(tmp_path, 0.01)
    other = write_burgers(tmp_path, 0.02, nx=16)
    with pytest.raises(DataError, match=r"fields .* differ"):
        import_dataset("pdebench", [burgers, other], tmp_path / "ds", progress=False)
    renamed = tmp_path / "mine.hdf5"
    burgers.rename(renamed)
    with pytest.raises(DataError, match="pass family=NAME"):
        import_dataset("pdebench", [renamed], tmp_path / "ds", progress=False)
    with pytest.raises(ConfigError, match="did you mean 'burgers'"):
        import_dataset("pdebench", [renamed], tmp_path / "ds", family="burger", progress=False)
    with pytest.raises(ConfigError, match="unknown option 'limt' \\(did you mean 'limit'"):
        import_dataset("pdebench", [renamed], tmp_path / "ds", limt=3, progress=False)
    ds = load_field_dataset(
        import_dataset("pdebench", [renamed], tmp_path / "ds", family="burgers", progress=False)
    )
    assert ds.meta.family == "burgers" and ds.meta.source["options"] == {"family": "burgers"}


def test_families_sfm_simulates_mean_the_same_equation():
    """An imported family and the simulator of the same name agree on equation and coefficient names."""
    from sfm.physics.io.pdebench import FAMILIES, parse_name
    from sfm.physics.simulators.base import get_simulator
    from sfm.registry import SIMULATORS

    examples = {
        "advection": "1D_Advection_Sols_beta0.4.hdf5",
        "burgers": "1D_Burgers_Sols_Nu0.01.hdf5",
        "diffusion_reaction": "ReacDiff_Nu0.5_Rho1.0.hdf5",
        "darcy": "2D_DarcyFlow_beta1.0_Train.hdf5",
    }
    shared = [f for f in examples if f in SIMULATORS]
    if not shared:
        pytest.skip("no matching simulators registered")
    for family in shared:
        sim = get_simulator(family)
        assert FAMILIES[family].equation == sim.equation, family
        _, coeffs, _ = parse_name(Path(examples[family]))
        rename = {old: new for old, new, _ in FAMILIES[family].convert}
        renamed = {rename.get(k, k) for k in coeffs}
        assert renamed <= set(sim.params), (family, renamed)
        if family == "darcy":
            assert list(FAMILIES[family].channels) == list(sim.fields)


def test_reaction_diffusion_nu_is_sfms_D(tmp_path):
    path = tmp_path / "ReacDiff_Nu0.5_Rho2.0.hdf5"
    with h5py.File(path, "w") as f:
        f["tensor"] = np.full((3, 2, 4), 0.5, np.float32)
        f["x-coordinate"] = np.linspace(0, 1, 4)
        f["t-coordinate"] = np.array([0.0, 0.5, 1.0])
    ds = load_field_dataset(import_dataset("pdebench", [path], tmp_path / "ds", progress=False))
    assert ds.meta.coefficients == {"D": 0.5, "rho": 2.0}
    assert ds.meta.equation == "u_t = D*u_xx + rho*u*(1 - u)"
