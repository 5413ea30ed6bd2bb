"""NumPy importer: .npz archives (plain and compressed) and .npy files, imported and checked exactly."""

from __future__ import annotations

import numpy as np
import pytest

from sfm.data import import_dataset, load_field_dataset
from sfm.errors import ConfigError, DataError
from sfm.physics.io.npz import _open_array

SPLITS = ("train", "validation", "test")


def arrays(n=6, nt=3, nx=8):
    rng = np.random.default_rng(5)
    return {
        "u": rng.random((n, nt, nx)).astype(np.float32),
        "v": rng.random((n, nt, nx)).astype(np.float64),  # stored as float32 columns
        "x": np.linspace(0, 1, nx, endpoint=False),
        "t": np.arange(nt) * 0.1,
        "nu": rng.random(n),
        "beta": np.array(0.5),
    }


def by_index(ds, column):
    idx = np.concatenate([ds.column(s, "source_index") for s in SPLITS])
    values = np.concatenate(
        [ds.arrays(s, column) if column in ds.meta.fields else ds.column(s, column) for s in SPLITS]
    )
    return values[np.argsort(idx)]


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_archive(save, tmp_path):
    data = arrays()
    save(tmp_path / "burgers.npz", **data)
    ds = load_field_dataset(
        import_dataset(
            "npz",
            [tmp_path / "burgers.npz"],
            tmp_path / "ds",
            equation="u_t = 0",
            boundary_conditions={"x": "periodic"},
            progress=False,
        )
    )
    m = ds.meta
    assert m.family == "burgers" and m.fields == ["u", "v"] and m.equation == "u_t = 0"
    assert m.varying == ["nu"] and m.coefficients == {"beta": 0.5}
    assert m.coords["x"] == data["x"].tolist() and m.coords["t"] == data["t"].tolist()
    assert m.boundary_conditions == {"x": "periodic"}
    np.testing.assert_array_equal(by_index(ds, "u"), data["u"])
    np.testing.assert_array_equal(by_index(ds, "v"), data["v"].astype(np.float32))
    np.testing.assert_array_equal(by_index(ds, "nu"), data["nu"])


def test_uncompressed_members_are_memory_mapped(tmp_path):
    data = arrays()
    np.savez(tmp_path / "a.npz", **data)
    mapped = _open_array((tmp_path / "a.npz", "u"), "u")
    assert isinstance(mapped, np.memmap)
    np.testing.assert_array_equal(mapped, data["u"])


def test_npy_files_and_two_archives(tmp_path):
    data = arrays()
    for name in ("u", "x", "nu"):
        np.save(tmp_path / f"{name}.npy", data[name])
    ds = load_field_dataset(
        import_dataset(
            "npz",
            [tmp_path / f"{n}.npy" for n in ("u", "x", "nu")],
            tmp_path / "ds",
            family="wave",
            progress=False,
        )
    )
    assert ds.meta.family == "wave" and ds.meta.fields == ["u"]
    assert ds.meta.extra["index_coordinates"] == ["t"]  # no t.npy: frame numbers stand in
    np.testing.assert_array_equal(by_index(ds, "u"), data["u"])

    np.savez(tmp_path / "one.npz", u=data["u"][:3], beta=np.array(1.0))
    np.savez(tmp_path / "two.npz", u=data["u"][3:], beta=np.array(2.0))
    ds = load_field_dataset(
        import_dataset("npz", [tmp_path / "one.npz", tmp_path / "two.npz"], tmp_path / "ds2", progress=False)
    )
    assert ds.meta.varying == ["beta"] and sum(ds.meta.splits.values()) == 6


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"u": np.ones((4, 2, 5)), "w": np.ones((4, 5))}, "array 'w' of shape (4, 5) is neither a field"),
        ({"u": np.ones((4, 2, 5)), "x": np.ones(6)}, "coordinate 'x' has shape (6,) but the fields have 5"),
        ({"u": np.ones((4, 2, 5)), "v": np.ones((4, 2, 6))}, "field 'v' has shape (4, 2, 6)"),
        ({"u": np.full((4, 2, 5), np.nan)}, "'u' holds NaN or Inf values (trajectory 0)"),
        ({"x": np.ones(5)}, "no field arrays"),
    ],
)
def test_bad_arrays(content, message, tmp_path):
    np.savez(tmp_path / "bad.npz", **content)
    with pytest.raises(DataError) as e:
        import_dataset("npz", [tmp_path / "bad.npz"], tmp_path / "ds", progress=False)
    assert message in str(e.value) and "bad.npz" in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz"]


def test_bad_inputs(tmp_path):
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(DataError, match=r"junk\.npz: not a readable \.npz archive"):
        import_dataset("npz", [tmp_path / "junk.npz"], tmp_path / "ds", progress=False)
    np.save(tmp_path / "u.npy", np.ones((3, 2, 4)))
    with pytest.raises(ConfigError, match=r"either \.npz archives or \.npy files"):
        import_dataset("npz", [tmp_path / "u.npy", tmp_path / "junk.npz"], tmp_path / "ds", progress=False)
    with pytest.raises(ConfigError, match="unknown option 'familly' \\(did you mean 'family'"):
        import_dataset("npz", [tmp_path / "u.npy"], tmp_path / "ds", familly="x", progress=False)


def test_npz_split_option_and_two_trajectories(tmp_path):
    data = arrays(n=2)
    np.savez(tmp_path / "two.npz", **data)
    ds = load_field_dataset(import_dataset("npz", [tmp_path / "two.npz"], tmp_path / "a", progress=False))
    assert (
        ds.meta.splits == {"train": 2, "validation": 0, "test": 0}
        and "fewer than 3" in ds.meta.source["split"]
    )
    np.testing.assert_array_equal(
        ds.arrays("train", "u")[np.argsort(ds.column("train", "source_index"))], data["u"]
    )
    ds = load_field_dataset(
        import_dataset("npz", [tmp_path / "two.npz"], tmp_path / "b", split="validation", progress=False)
    )
    assert ds.meta.splits == {"train": 0, "validation": 2, "test": 0}
    with pytest.raises(ConfigError, match="unknown split 'tests' \\(did you mean 'test'"):
        import_dataset("npz", [tmp_path / "two.npz"], tmp_path / "c", split="tests", progress=False)
    assert not (tmp_path / "c").exists()
