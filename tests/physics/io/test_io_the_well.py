"""The Well importer: a tiny data set in The Well's layout (as its dummy-data utility writes it, plus
the tensor, constant and sample-varying cases of real files), imported and checked value by value."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from sfm.data import import_dataset, load_field_dataset
from sfm.errors import ConfigError, DataError

NT, NX, NY = 4, 5, 3
SPLITS = ("train", "validation", "test")


def write_well_file(path: Path, n: int, alpha: float, seed: int) -> dict[str, np.ndarray]:
    """One Well HDF5 file; returns the arrays written (for exact comparisons)."""
    rng = np.random.default_rng(seed)
    arrays = {
        "density": rng.random((n, NT, NX, NY)).astype(np.float32),  # varies in sample, time and space
        "mask": rng.random((NX, NY)).astype(np.float32),  # constant: same for every sample and time
        "profile": rng.random((n, NT, NX)).astype(np.float32),  # constant along y (dim_varying [T, F])
        "velocity": rng.random((n, NT, NX, NY, 2)).astype(np.float32),
        "stress": rng.random((n, NT, NX, NY, 2, 2)).astype(np.float32),
        "noise": rng.random(n),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs.update(dataset_name="tiny_flow", grid_type="cartesian", n_spatial_dims=2, n_trajectories=n)
        f.attrs["simulation_parameters"] = ["alpha"]
        f.attrs["alpha"] = alpha
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y"]
        for key, val in (
            ("time", np.linspace(0, 0.3, NT)),
            ("x", np.linspace(0, 1, NX)),
            ("y", np.linspace(0, 2, NY)),
        ):
            dims[key] = val
            dims[key].attrs.update(sample_varying=False, time_varying=False)
        bcs = f.create_group("boundary_conditions")
        for name, kind, dim, size in (("x_periodic", "PERIODIC", "x", NX), ("y_wall", "WALL", "y", NY)):
            g = bcs.create_group(name)
            g.attrs.update(bc_type=kind, associated_dims=[dim], sample_varying=False, time_varying=False)
            mask = np.zeros(size, bool)
            mask[[0, -1]] = True
            g["mask"] = mask
        sc = f.create_group("scalars")
        sc.attrs["field_names"] = ["alpha", "noise"]
        sc["alpha"] = np.array(alpha)
        sc["alpha"].attrs.update(sample_varying=False, time_varying=False)
        sc["noise"] = arrays["noise"]
        sc["noise"].attrs.update(sample_varying=True, time_varying=False)
        specs = {
            "t0_fields": [
                ("density", True, True, [True, True]),
                ("mask", False, False, [True, True]),
                ("profile", True, True, [True, False]),
            ],
            "t1_fields": [("velocity", True, True, [True, True])],
            "t2_fields": [("stress", True, True, [True, True])],
        }
        for group, fields in specs.items():
            g = f.create_group(group)
            g.attrs["field_names"] = [name for name, *_ in fields]
            for name, sample, time, dim_varying in fields:
                g[name] = arrays[name]
                g[name].attrs.update(sample_varying=sample, time_varying=time, dim_varying=dim_varying)
    return arrays


@pytest.fixture
def well(tmp_path):
    """A data set folder: data/{train,valid,test}/ (repeated file names, as The Well has) + stats.yaml."""
    root = tmp_path / "tiny_flow"
    written = {
        "train/tiny_flow_alpha_1.hdf5": write_well_file(
            root / "data/train/tiny_flow_alpha_1.hdf5", 3, 1.0, 0
        ),
        "train/tiny_flow_alpha_2.hdf5": write_well_file(
            root / "data/train/tiny_flow_alpha_2.hdf5", 2, 2.0, 1
        ),
        "valid/tiny_flow_alpha_1.hdf5": write_well_file(
            root / "data/valid/tiny_flow_alpha_1.hdf5", 1, 1.0, 2
        ),
        "test/tiny_flow_alpha_2.hdf5": write_well_file(root / "data/test/tiny_flow_alpha_2.hdf5", 2, 2.0, 3),
    }
    stats = {
        "mean": {
            "density": 0.5,
            "mask": 0.4,
            "profile": 0.3,
            "velocity": [0.1, 0.2],
            "stress": [[1, 2], [3, 4]],
        },
        "std": {
            "density": 0.25,
            "mask": 0.2,
            "profile": 0.1,
            "velocity": [1.1, 1.2],
            "stress": [[5, 6], [7, 8]],
        },
    }
    (root / "stats.yaml").write_text(yaml.safe_dump(stats))
    return root, written


def test_import_the_well_dataset_folder(well, tmp_path):
    root, written = well
    ds = load_field_dataset(import_dataset("the-well", [root], tmp_path / "ds", progress=False))
    m = ds.meta
    assert m.family == "tiny_flow"
    assert m.splits == {"train": 5, "validation": 1, "test": 2}  # from the folders, not from a seed
    columns = [
        "density",
        "mask",
        "profile",
        "velocity_x",
        "velocity_y",
        "stress_xx",
        "stress_xy",
        "stress_yx",
        "stress_yy",
    ]
    assert m.fields == columns
    assert m.field_shapes["mask"] == [1, NX, NY] and m.extra["constant_in_time"] == ["mask"]
    assert all(m.field_shapes[c] == [NT, NX, NY] for c in columns if c != "mask")
    assert m.boundary_conditions == {"x": "periodic", "y": "wall"}
    np.testing.assert_allclose(m.coords["y"], np.linspace(0, 2, NY))
    np.testing.assert_allclose(m.coords["t"], np.linspace(0, 0.3, NT))
    assert sorted(m.varying) == ["alpha", "noise"] and m.coefficients == {}
    assert m.extra["reference_stats"]["velocity_y"] == {"mean": 0.2, "std": 1.2}
    assert m.extra["reference_stats"]["stress_yx"] == {"mean": 3.0, "std": 7.0}
    assert m.source["splits"] == "from the train/valid/test folders"

    for split, folder in zip(SPLITS, ("train", "valid", "test")):
        files, index = ds.column(split, "source_file"), ds.column(split, "source_index")
        assert all(f.startswith(folder + "/") for f in files)
        cols = {c: ds.arrays(split, c) for c in columns}
        alpha, noise = ds.column(split, "alpha"), ds.column(split, "noise")
        for r, (name, i) in enumerate(zip(files, index)):
            src = written[name]
            np.testing.assert_array_equal(cols["density"][r], src["density"][i])
            np.testing.assert_array_equal(cols["velocity_y"][r], src["velocity"][i, ..., 1])
            np.testing.assert_array_equal(cols["stress_xy"][r], src["stress"][i, ..., 0, 1])
            np.testing.assert_array_equal(cols["stress_yx"][r], src["stress"][i, ..., 1, 0])
            np.testing.assert_array_equal(cols["mask"][r], src["mask"][None])  # stored once per row
            np.testing.assert_array_equal(cols["profile"][r], np.repeat(src["profile"][i][..., None], NY, -1))
            assert alpha[r] == (1.0 if "alpha_1" in name else 2.0) and noise[r] == src["noise"][i]


def test_without_all_three_folders_the_split_is_seeded(well, tmp_path):
    root, _ = well
    ds = load_field_dataset(
        import_dataset("the-well", [root / "data" / "train"], tmp_path / "ds", seed=4, progress=False)
    )
    assert ds.meta.splits == {"train": 3, "validation": 1, "test": 1}
    assert ds.meta.source["splits"] == "seeded split"
    names = {f for s in SPLITS for f in ds.column(s, "source_file")}
    assert names == {"tiny_flow_alpha_1.hdf5", "tiny_flow_alpha_2.hdf5"}  # unique names stay bare
    assert "reference_stats" in ds.meta.extra  # stats.yaml found two levels up


def test_broken_well_files(well, tmp_path):
    root, _ = well
    bad = root / "data" / "train" / "tiny_flow_alpha_1.hdf5"
    with h5py.File(bad, "a") as f:
        f["t1_fields/velocity"][1, 2, 0, 0, 1] = np.inf
    with pytest.raises(
        DataError, match=r"tiny_flow_alpha_1.hdf5: 'velocity_y' holds NaN or Inf values \(trajectory 1\)"
    ):
        import_dataset("the-well", [root], tmp_path / "ds", progress=False)
    with h5py.File(bad, "a") as f:
        del f["t1_fields/velocity"]
        f["t1_fields/velocity"] = np.zeros((3, NT, NX, NY, 3), np.float32)
        f["t1_fields/velocity"].attrs.update(sample_varying=True, time_varying=True, dim_varying=[True, True])
    with pytest.raises(
        DataError, match=r"'/t1_fields/velocity' has shape \[3, 4, 5, 3, 3\], expected \[3, 4, 5, 3, 2\]"
    ):
        import_dataset("the-well", [root], tmp_path / "ds", progress=False)
    with h5py.File(bad, "a") as f:
        del f["dimensions"]
    with pytest.raises(DataError, match="missing group 'dimensions'"):
        import_dataset("the-well", [root], tmp_path / "ds", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny_flow"]


def write_well_3d(path: Path, n: int = 3, shape=(3, 4, 2), nt: int = 3) -> dict[str, np.ndarray]:
    """A 3D Well file: a scalar field, a vector field, a field constant in time, open and wall boundaries."""
    rng = np.random.default_rng(5)
    arrays = {
        "pressure": rng.standard_normal((n, nt, *shape)).astype(np.float32),
        "velocity": rng.standard_normal((n, nt, *shape, 3)).astype(np.float32),
        "porosity": rng.random((n, *shape)).astype(np.float32),  # per trajectory, constant in time
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs.update(dataset_name="tiny_3d", grid_type="cartesian", n_spatial_dims=3, n_trajectories=n)
        f.attrs["simulation_parameters"] = ["Re"]
        f.attrs["Re"] = 100.0
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y", "z"]
        dims["time"] = np.linspace(0, 1, nt)
        for axis, size in zip("xyz", shape):
            dims[axis] = np.linspace(0, 1, size)
            dims[axis].attrs.update(sample_varying=False, time_varying=False)
        bcs = f.create_group("boundary_conditions")
        for name, kind, dim in (
            ("xp", "PERIODIC", "x"),
            ("yw", "WALL", "y"),
            ("zo", "OPEN", "z"),
            ("zw", "WALL", "z"),
        ):
            g = bcs.create_group(name)
            g.attrs.update(bc_type=kind, associated_dims=[dim], sample_varying=False, time_varying=False)
        for group, fields in {
            "t0_fields": [("pressure", True), ("porosity", False)],
            "t1_fields": [("velocity", True)],
        }.items():
            g = f.create_group(group)
            g.attrs["field_names"] = [name for name, _ in fields]
            for name, time in fields:
                g[name] = arrays[name]
                g[name].attrs.update(sample_varying=True, time_varying=time, dim_varying=[True] * 3)
        f.create_group("scalars").attrs["field_names"] = []
    return arrays


def _3d_stats(std_velocity: bool) -> dict:
    stats = {"mean": {"pressure": 0.1, "porosity": 0.5, "velocity": [1.0, 2.0, 3.0]}}
    stats["std"] = {"pressure": 2.0, "porosity": 0.25}
    if std_velocity:
        stats["std"]["velocity"] = [4.0, 5.0, 6.0]
    return stats


def test_a_3d_well_file_with_complete_stats_normalizes_with_them(tmp_path):
    from sfm.physics.io.the_well import normalization_stats

    root = tmp_path / "tiny_3d"
    arrays = write_well_3d(root / "data" / "train" / "tiny_3d_00.hdf5")
    (root / "stats.yaml").write_text(yaml.safe_dump(_3d_stats(std_velocity=True)))
    ds = load_field_dataset(import_dataset("the-well", [root], tmp_path / "ds", progress=False))
    m = ds.meta
    assert m.ndim == 3 and m.fields == ["pressure", "porosity", "velocity_x", "velocity_y", "velocity_z"]
    assert m.field_shapes["porosity"] == [1, 3, 4, 2] and m.field_shapes["velocity_z"] == [3, 3, 4, 2]
    assert m.extra["constant_in_time"] == ["porosity"] and m.coefficients == {"Re": 100.0}
    assert m.boundary_conditions == {"x": "periodic", "y": "wall", "z": "open+wall"}
    assert m.extra["normalization"] == {"source": "reference", "missing": []}
    assert normalization_stats(m)["velocity_z"] == {"mean": 3.0, "std": 6.0}
    for split in SPLITS:
        for r, i in enumerate(ds.column(split, "source_index")):
            np.testing.assert_array_equal(ds.arrays(split, "pressure")[r], arrays["pressure"][i])
            np.testing.assert_array_equal(ds.arrays(split, "velocity_y")[r], arrays["velocity"][i, ..., 1])
            np.testing.assert_array_equal(ds.arrays(split, "porosity")[r], arrays["porosity"][i][None])


def test_missing_stats_keys_warn_once_and_fall_back_to_train_stats(tmp_path, capsys):
    from sfm.cli import main
    from sfm.physics.io.the_well import normalization_stats

    root = tmp_path / "tiny_3d"
    write_well_3d(root / "data" / "train" / "tiny_3d_00.hdf5")
    (root / "stats.yaml").write_text(yaml.safe_dump(_3d_stats(std_velocity=False)))
    code = main(["data", "import", "the-well", str(root), "--out", str(tmp_path / "ds"), "--no-progress"])
    _, err = capsys.readouterr()
    assert code == 0 and err.count("sfm: warning:") == 1 and err.count("\n") == 1, err
    assert "no std.velocity_x, std.velocity_y, std.velocity_z;" in err and "train split" in err
    m = load_field_dataset(tmp_path / "ds").meta
    assert m.extra["normalization"]["source"] == "train"
    assert m.extra["normalization"]["missing"] == ["std.velocity_x", "std.velocity_y", "std.velocity_z"]
    assert normalization_stats(m)["pressure"] == {k: m.stats["pressure"][k] for k in ("mean", "std")}
    with pytest.raises(ConfigError, match="did you mean 'train'"):
        import_dataset("the-well", [root], tmp_path / "other", normalization="trian", progress=False)
