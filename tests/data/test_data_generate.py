"""generate_dataset: the stored rows are exactly the simulator's trajectories, split, counted and normalized
as the contract says, whatever the process count or chunking; failures leave nothing behind."""

from __future__ import annotations

import json
import os
import shutil

import datasets
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfm.data import generate_dataset, load_field_dataset
from sfm.data.builder import rows_per_chunk
from sfm.data.splits import split_counts, split_indices
from sfm.errors import ConfigError, DataError, UnknownNameError
from sfm.physics.metadata import field_stats
from sfm.physics.simulators.base import get_simulator, trajectory_seeds
from sfm.physics.sources import Column

N = 20


@pytest.fixture(scope="module")
def wave(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "wave"
    generate_dataset("_test_wave", N, out, seed=7, chunk_size=6, progress=False)
    return load_field_dataset(out)


def test_rows_are_the_simulator_trajectories(wave):
    sim = get_simulator("_test_wave")
    for split in ("train", "validation", "test"):
        seeds = wave.column(split, "seed")
        expected = sim.generate(seeds)
        stored = wave.arrays(split, "u")
        assert stored.dtype == np.float32 and stored.shape == (len(seeds), 5, 16)
        np.testing.assert_array_equal(stored, expected["u"])
        np.testing.assert_array_equal(wave.column(split, "c"), expected["c"])
    all_seeds = np.concatenate([wave.column(s, "seed") for s in ("train", "validation", "test")])
    assert sorted(all_seeds) == sorted(trajectory_seeds(7, 0, N))  # every trajectory once, none twice


def test_coefficient_column_belongs_to_its_row(wave):
    # The exact solution translates at speed c: each Fourier coefficient turns by exp(-2 pi i k c t).
    u = wave.arrays("train", "u").astype(np.float64)
    c = wave.column("train", "c")
    t = np.asarray(wave.meta.coords["t"])
    spec = np.fft.rfft(u, axis=-1)
    k = np.argmax(np.abs(spec[:, 0]), axis=-1)  # the one excited mode
    rows = np.arange(len(u))
    turned = spec[rows, :, k] / spec[rows, 0, k][:, None]
    expected = np.exp(-2j * np.pi * k[:, None] * c[:, None] * t[None, :])
    np.testing.assert_allclose(turned, expected, atol=2e-5)


def test_metadata_and_splits(wave):
    m = wave.meta
    assert m.splits == {"train": 16, "validation": 2, "test": 2}
    assert m.field_shapes == {"u": [5, 16]}
    assert m.varying == ["c"] and m.coefficients == {"amplitude": 1.0}
    assert m.coords == get_simulator("_test_wave").coords()
    assert m.source["kind"] == "generator" and m.source["name"] == "_test_wave"
    assert m.source["seed"] == 7 and m.source["num_samples"] == N and m.source["params"]["c"] == [0.5, 2.0]
    lo, hi = m.extra["varying_ranges"]["c"]
    all_c = np.concatenate([wave.column(s, "c") for s in ("train", "validation", "test")])
    assert (lo, hi) == (all_c.min(), all_c.max()) and 0.5 <= lo < hi <= 2.0
    features = wave.splits["train"].features
    assert features["u"] == datasets.Array2D(shape=(5, 16), dtype="float32")
    assert features["c"].dtype == "float64" and features["seed"].dtype == "int64"


def test_stats_are_over_the_train_split(wave):
    ref = field_stats(wave.arrays("train", "u"))  # the two-pass formula on the whole split at once
    for key, value in ref.items():
        assert wave.meta.stats["u"][key] == pytest.approx(value, rel=1e-10, abs=1e-12)


def test_same_seed_same_data_other_seed_other_data(wave, tmp_path):
    generate_dataset("_test_wave", N, tmp_path / "again", seed=7, progress=False)
    again = load_field_dataset(tmp_path / "again")
    for split in ("train", "validation", "test"):
        np.testing.assert_array_equal(again.arrays(split, "u"), wave.arrays(split, "u"))
    generate_dataset("_test_wave", N, tmp_path / "other", seed=8, progress=False)
    other = load_field_dataset(tmp_path / "other")
    assert not set(other.column("train", "seed")) & set(wave.column("train", "seed"))


def test_two_processes_and_other_chunks_give_identical_data(wave, tmp_path):
    generate_dataset("_test_wave", N, tmp_path / "p2", seed=7, num_proc=2, chunk_size=3, progress=False)
    p2 = load_field_dataset(tmp_path / "p2")
    for split in ("train", "validation", "test"):
        for col in ("u", "c", "seed"):
            a = p2.arrays(split, col) if col == "u" else p2.column(split, col)
            b = wave.arrays(split, col) if col == "u" else wave.column(split, col)
            np.testing.assert_array_equal(a, b)
    assert p2.meta.stats == wave.meta.stats


def test_output_has_the_usual_permissions(wave):
    umask = os.umask(0)
    os.umask(umask)
    assert wave.path.stat().st_mode & 0o777 == 0o777 & ~umask
    assert (wave.path / "field_meta.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_fixed_parameter_is_a_coefficient_not_a_column(tmp_path):
    generate_dataset("_test_wave", 3, tmp_path / "d", params={"c": 1.25, "nx": 8}, progress=False)
    ds = load_field_dataset(tmp_path / "d")
    assert ds.meta.coefficients["c"] == 1.25 and ds.meta.varying == []
    assert "c" not in ds.splits["train"].column_names
    assert ds.meta.splits == {"train": 1, "validation": 1, "test": 1}
    assert ds.arrays("test", "u").shape == (1, 5, 8)


def test_steady_two_field_problem(tmp_path):
    generate_dataset("_test_steady", 5, tmp_path / "s", progress=False)
    ds = load_field_dataset(tmp_path / "s")
    assert ds.meta.steady and "t" not in ds.meta.coords
    assert ds.meta.field_shapes == {"a": [1, 6, 6], "u": [1, 6, 6]}
    a, u = ds.arrays("train", "a"), ds.arrays("train", "u")
    g = np.linspace(0, 1, 6)
    np.testing.assert_allclose(u, a * (np.sin(np.pi * g)[:, None] * np.sin(np.pi * g)[None, :]), rtol=1e-6)
    assert "Steady problem" in (tmp_path / "s" / "README.md").read_text()
    # a is one random constant per trajectory, so its statistics tell the train split from the others
    assert ds.meta.stats["a"]["mean"] == pytest.approx(a.astype(np.float64).mean(), rel=1e-12)
    everything = np.concatenate([ds.arrays(s, "a") for s in ("train", "validation", "test")])
    assert ds.meta.stats["a"]["mean"] != pytest.approx(everything.astype(np.float64).mean(), rel=1e-6)


@pytest.mark.parametrize("num_proc", [1, 2])
def test_failure_leaves_nothing(tmp_path, no_temp_left, num_proc):
    with pytest.raises(ConfigError, match="diverged"):
        generate_dataset(
            "_test_broken", 40, tmp_path / "out", chunk_size=4, num_proc=num_proc, progress=False
        )
    assert not (tmp_path / "out").exists()
    no_temp_left(tmp_path)


def test_existing_output_needs_overwrite(tmp_path, wave):
    out = tmp_path / "full"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--overwrite"):
        generate_dataset("_test_wave", 3, out, progress=False)
    assert (out / "keep.txt").read_text() == "mine"
    generate_dataset("_test_wave", 3, out, overwrite=True, progress=False)
    assert not (out / "keep.txt").exists() and load_field_dataset(out).meta.splits["train"] == 1


def test_user_errors_are_one_line_and_write_nothing(tmp_path, no_temp_left):
    with pytest.raises(UnknownNameError, match="did you mean '_test_wave'") as e:
        generate_dataset("_test_wav", 5, tmp_path / "x", progress=False)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"unknown parameter 'nxx' \(did you mean 'nx'"):
        generate_dataset("_test_wave", 5, tmp_path / "x", params={"nxx": 8}, progress=False)
    with pytest.raises(ConfigError, match="at least 3"):
        generate_dataset("_test_wave", 2, tmp_path / "x", progress=False)
    with pytest.raises(ConfigError, match="split_fractions"):
        generate_dataset("_test_wave", 5, tmp_path / "x", split_fractions=(0.9, 0.1, 0.0), progress=False)
    with pytest.raises(ConfigError, match="range"):
        generate_dataset("_test_wave", 5, tmp_path / "x", params={"c": [3.0, 20.0]}, progress=False)
    no_temp_left(tmp_path)


def test_chunks_are_capped_by_memory():
    small = {"u": Column("float32", (201, 1024)), "nu": Column("float64")}
    assert rows_per_chunk(small, 32) == 32
    big = {"rho": Column("float32", (21, 128, 128, 128))}  # 176 MB per trajectory
    assert rows_per_chunk(big, 32) == 1
    with pytest.raises(ConfigError):
        rows_per_chunk(small, 0)


def test_load_rejects_what_is_not_a_field_dataset(wave, tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        load_field_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="not a field data set"):
        load_field_dataset(tmp_path / "empty")
    with pytest.raises(UnknownNameError, match="did you mean 'train'"):
        wave.split("trian")
    with pytest.raises(UnknownNameError, match="did you mean 'u'"):
        wave.arrays("train", "uu")


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing_shard", "cannot read the Arrow data"),
        ("truncated_shard", "cannot read the Arrow data"),
        ("bad_json", "field_meta.json: invalid JSON"),
        ("wrong_count", "split 'train' has 16 rows but field_meta.json says 99"),
        ("wrong_shape", "column 'u' has shape [5, 16], field_meta.json says [5, 17]"),
    ],
)
def test_load_rejects_a_corrupt_dataset(wave, tmp_path, kind, message):
    d = tmp_path / "copy"
    shutil.copytree(wave.path, d)
    shard = next((d / "train").glob("*.arrow"))
    meta = json.loads((d / "field_meta.json").read_text())
    if kind == "missing_shard":
        shard.unlink()
    elif kind == "truncated_shard":
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    elif kind == "bad_json":
        (d / "field_meta.json").write_text("{nope")
    elif kind == "wrong_count":
        meta["splits"]["train"] = 99
    elif kind == "wrong_shape":
        meta["field_shapes"]["u"] = [5, 17]
    if kind.startswith("wrong"):
        (d / "field_meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError) as e:
        load_field_dataset(d)
    assert message in str(e.value) and "\n" not in str(e.value)


@given(
    n=st.integers(3, 5000), val=st.floats(0.001, 0.45), test=st.floats(0.001, 0.45), seed=st.integers(0, 99)
)
@settings(max_examples=200, deadline=None)
def test_split_counts_cover_every_row_once(n, val, test, seed):
    fractions = (1 - val - test, val, test)
    counts = split_counts(n, fractions)
    assert sum(counts) == n and min(counts) >= 1
    for got, f in zip(counts[1:], fractions[1:]):  # held-out splits are the rounded fraction (or 1)
        assert got <= max(1, round(n * f))
    parts = split_indices(n, seed, fractions)
    joined = np.concatenate(list(parts.values()))
    assert sorted(joined) == list(range(n)) and all(np.all(np.diff(p) > 0) for p in parts.values())
    again = split_indices(n, seed, fractions)
    assert all(np.array_equal(parts[s], again[s]) for s in parts)
