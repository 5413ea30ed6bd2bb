"""``sfm data generate|import|info``: exit codes, one-line errors, --set parsing, info output."""

from __future__ import annotations

import numpy as np
import pytest

from sfm.cli import main
from sfm.commands.data import parse_sets
from sfm.data import load_field_dataset


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["nu=0.001,0.1"], {"nu": [0.001, 0.1]}),
        (["nu=[1e-3, 0.1]"], {"nu": [0.001, 0.1]}),
        (["nu=1e-3"], {"nu": 0.001}),
        (["nx=256", "family=burgers"], {"nx": 256, "family": "burgers"}),
        (["fields=u,v"], {"fields": ["u", "v"]}),
        (["limit=5", "limit=6"], {"limit": 6}),
    ],
)
def test_parse_sets(items, expected):
    assert parse_sets(items) == expected


def test_generate_then_info(tmp_path, capsys):
    out = tmp_path / "wave"
    code, stdout, _ = run(
        [
            "data",
            "generate",
            "_test_wave",
            "--num-samples",
            "6",
            "--out",
            str(out),
            "--seed",
            "2",
            "--set",
            "c=0.6,0.9",
            "--set",
            "nx=8",
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0 and str(out) in stdout
    ds = load_field_dataset(out)
    c = np.concatenate([ds.column(s, "c") for s in ("train", "validation", "test")])
    assert ds.meta.source["params"]["c"] == [0.6, 0.9] and np.all((c >= 0.6) & (c <= 0.9))
    assert ds.meta.field_shapes == {"u": [5, 8]}
    code, stdout, _ = run(["data", "info", str(out)], capsys)
    assert code == 0
    for piece in (
        "_test_wave (1D)",
        "u_t + c*u_x = 0",
        "u [5, 8]",
        "x: periodic",
        "c: per trajectory",
        "train 4, validation 1, test 1",
        "stats         u: mean",
        "generator _test_wave v1, seed 2",
    ):
        assert piece in stdout, piece


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data", "generate", "_test_wav", "--num-samples", "5"], "did you mean '_test_wave'"),
        (["data", "generate", "_test_wave", "--num-samples", "5", "--set", "cc=1"], "unknown parameter 'cc'"),
        (["data", "generate", "_test_wave", "--num-samples", "5", "--set", "c"], "--set expects KEY=VALUE"),
        (["data", "generate", "_test_wave", "--num-samples", "5", "--set", "nx=abc"], "nx must be a number"),
        (["data", "generate", "_test_wave", "--num-samples", "1"], "at least 3"),
        (["data", "import", "pdebenh", "x.hdf5"], "did you mean 'pdebench'"),
        (["data", "import", "pdebench", "missing.hdf5"], "missing.hdf5: no such file"),
    ],
)
def test_errors_exit_2_with_one_line(argv, message, tmp_path, capsys):
    code, _, err = run([*argv, "--out", str(tmp_path / "o"), "--no-progress"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("sfm: error: ") and message in err, err
    assert not (tmp_path / "o").exists()


def test_info_and_existing_output_errors(tmp_path, capsys):
    code, _, err = run(["data", "info", str(tmp_path)], capsys)
    assert code == 2 and "not a field data set" in err and err.count("\n") == 1
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "f").write_text("x")
    code, _, err = run(
        ["data", "generate", "_test_wave", "--num-samples", "3", "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2 and "--overwrite" in err and err.count("\n") == 1


def _burgers_file(folder, n):
    import h5py

    path = folder / "1D_Burgers_Sols_Nu0.01.hdf5"
    with h5py.File(path, "w") as f:
        f["tensor"] = np.arange(n * 2 * 4, dtype=np.float32).reshape(n, 2, 4)
        f["x-coordinate"] = np.linspace(0, 1, 4)
        f["t-coordinate"] = np.array([0.0, 0.1, 0.2])
    return path


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_import_split_puts_every_trajectory_in_it(split, tmp_path, capsys):
    path = _burgers_file(tmp_path, 4)
    out = tmp_path / "ds"
    code, stdout, _ = run(
        ["data", "import", "pdebench", str(path), "--out", str(out), "--split", split, "--no-progress"],
        capsys,
    )
    assert code == 0 and f"all 4 trajectories in '{split}' (as asked)" in stdout, stdout
    ds = load_field_dataset(out)
    assert ds.meta.splits == {s: 4 if s == split else 0 for s in ("train", "validation", "test")}
    np.testing.assert_array_equal(ds.arrays(split, "u"), np.arange(32, dtype=np.float32).reshape(4, 2, 4))
    assert ds.arrays("train" if split != "train" else "test", "u").shape == (0, 2, 4)
    # statistics come from the split holding the rows when train is empty, and say so
    assert ds.meta.stats["u"]["max"] == 31.0 and ds.meta.extra.get("stats_split") == (
        None if split == "train" else split
    )


def test_import_fewer_than_three_trajectories_goes_to_train_with_a_notice(tmp_path, capsys):
    path = _burgers_file(tmp_path, 2)
    out = tmp_path / "ds"
    code, stdout, _ = run(
        ["data", "import", "pdebench", str(path), "--out", str(out), "--no-progress"], capsys
    )
    assert code == 0 and "train 2, validation 0, test 0" in stdout
    assert "all 2 trajectories in 'train' (fewer than 3" in stdout and "--split" in stdout, stdout
    assert load_field_dataset(out).meta.splits == {"train": 2, "validation": 0, "test": 0}
    code, _, err = run(
        ["data", "import", "pdebench", str(path), "--out", str(tmp_path / "c"), "--split", "tset"], capsys
    )
    assert code == 2 and err.count("\n") == 1 and "unknown split 'tset' (did you mean 'test'" in err, err
    assert not (tmp_path / "c").exists()


def test_import_seeded_split_says_so(tmp_path, capsys):
    path = _burgers_file(tmp_path, 5)
    code, stdout, _ = run(
        [
            "data",
            "import",
            "pdebench",
            str(path),
            "--out",
            str(tmp_path / "ds"),
            "--seed",
            "3",
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0 and "(train 3, validation 1, test 1: seeded split, seed 3)" in stdout, stdout
