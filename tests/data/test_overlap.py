"""Train/eval overlap: content fingerprints (dtype- and noise-robust, distinct for distinct trajectories),
provenance keys (simulator seed and parameters, imported file and index), the split-pair report and
``sfm data overlap``."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sfm.cli import main
from sfm.data import generate_dataset, import_dataset, load_field_dataset
from sfm.data import overlap as ov
from sfm.physics.metadata import FILENAME, SPLITS
from sfm.physics.simulators.base import trajectory_seeds


def waves(seed: int, n: int = 400, nt: int = 6, nx: int = 32) -> np.ndarray:
    """``[n, nt, nx]`` float64 travelling waves with random mode, phase, speed and amplitude."""
    rng = np.random.default_rng(seed)
    x, t = np.arange(nx) / nx, np.linspace(0, 1, nt)
    k, phi = rng.integers(1, 4, n), rng.uniform(0, 2 * np.pi, n)
    c, a = rng.uniform(0.5, 2.0, n), rng.uniform(0.5, 2.0, n)
    arg = 2 * np.pi * k[:, None, None] * (x - c[:, None, None] * t[:, None]) + phi[:, None, None]
    return a[:, None, None] * np.sin(arg)


def pairs(a: np.ndarray, b: np.ndarray) -> set[tuple[int, int]]:
    ca, cb = ov.content_codes({"u": a}, 1), ov.content_codes({"u": b}, 1)
    return set(zip(*(x.tolist() for x in ov.close_codes(ca, cb))))


def test_a_float32_copy_matches_itself_and_nothing_else():
    u = waves(0)
    diagonal = {(i, i) for i in range(len(u))}
    assert pairs(u, u.astype(np.float32)) == diagonal
    # why matching allows one quantum: a few of many values of a float32 copy round the other way
    many = waves(1, n=5000)
    c64, c32 = ov.content_codes({"u": many}, 1), ov.content_codes({"u": many.astype(np.float32)}, 1)
    assert (c64 != c32).any() and np.abs(c64.astype(int) - c32).max() == 1


def test_near_identical_frames_collide_and_different_trajectories_do_not():
    u = waves(0)
    noise = np.random.default_rng(1).normal(size=u.shape) * u.std(axis=(1, 2), keepdims=True)
    assert pairs(u, u + 1e-5 * noise) == {(i, i) for i in range(len(u))}
    assert pairs(u, u + 3e-2 * noise) == set()  # 3% of the spread is another trajectory
    assert pairs(u, waves(seed=7)) == set()  # another seed: no trajectory in common
    assert pairs(u, 10 * u) == {(i, i) for i in range(len(u))}  # values are taken relative to the std


def test_the_same_start_with_another_ending_is_not_the_same_trajectory():
    u = waves(0)
    v = u.copy()
    v[:, -1] = np.roll(v[:, -1], 3, axis=-1)  # frame 0 identical, last frame different
    assert pairs(u, v) == set()


def test_close_codes_finds_exactly_the_pairs_brute_force_finds():
    rng = np.random.default_rng(3)
    a, b = rng.integers(-3, 4, (300, 4)), rng.integers(-3, 4, (200, 4))  # small range: many near pairs
    i, j = ov.close_codes(a.astype(np.int32), b.astype(np.int32), tol=1)
    brute = np.argwhere(np.abs(a[:, None, :] - b[None, :, :]).max(axis=2) <= 1)
    assert sorted(zip(i.tolist(), j.tolist())) == sorted(map(tuple, brute.tolist())) and len(brute) > 50


def test_vector_fields_and_2d_grids_are_downsampled_per_axis():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(5, 3, 20, 12, 2))  # [n, T, x, y, components]
    codes = ov.content_codes({"v": f}, 2)
    assert codes.shape == (5, 2 * 8 * 8 * 2)
    assert pairs_2d(f, f.astype(np.float32)) == {(i, i) for i in range(5)}


def pairs_2d(a, b):
    ia, jb = ov.close_codes(ov.content_codes({"v": a}, 2), ov.content_codes({"v": b}, 2))
    return set(zip(ia.tolist(), jb.tolist()))


def test_equal_keys_ignores_rows_without_provenance():
    ka, kb = np.array(["x", "", "y", "x"]), np.array(["", "x", "z"])
    i, j = ov.equal_keys(ka, kb)
    assert sorted(zip(i.tolist(), j.tolist())) == [(0, 1), (3, 1)]


# -- data sets ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wave_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("overlap")
    params = {"nx": 16, "nt": 5}
    out = {}
    for name, n, seed, extra in [("w0", 12, 0, {}), ("w0big", 24, 0, {}), ("w1", 12, 1, {}),
                                 ("slow", 12, 0, {"c": [0.5, 0.6]})]:  # fmt: skip
        out[name] = root / name
        generate_dataset("_test_wave", n, out[name], seed=seed, params={**params, **extra}, progress=False)
    return out


def _global_index(ds, split, seed, n):
    lookup = {int(s): j for j, s in enumerate(trajectory_seeds(seed, 0, n))}
    return [lookup[int(s)] for s in ds.column(split, "seed")]


def test_a_larger_data_set_of_the_same_settings_shares_its_first_trajectories(wave_sets):
    a, b = load_field_dataset(wave_sets["w0"]), load_field_dataset(wave_sets["w0big"])
    report = ov.overlap(a, b, cache=False)
    for p in report.pairs:  # the truth: row j of both data sets is trajectory j of seed 0
        ja, jb = _global_index(a, p.a, 0, 12), _global_index(b, p.b, 0, 24)
        expected = sorted((r, ja.index(j)) for j in set(ja) & set(jb) for r in [jb.index(j)])
        assert sorted(zip(p.b_rows, p.a_rows)) == expected
        assert p.by_kind["simulator"] == p.by_kind["content"] == p.overlapping == len(expected)
    assert report.counts["any"] == 12 and report.counts["file"] == 0
    assert report.leaks() == [p for p in report.pairs if p.leak] and report.leaks()
    assert all({p.a, p.b} & {"train"} and {p.a, p.b} - {"train"} for p in report.leaks())


def test_another_seed_or_other_parameters_share_nothing(wave_sets):
    for other in ("w1", "slow"):  # "slow": same seed, so the same phases and modes, but other speeds
        report = ov.overlap(wave_sets["w0"], wave_sets[other], cache=False)
        assert report.counts == {"simulator": 0, "file": 0, "content": 0, "any": 0} and not report.leaks()


def test_the_splits_of_one_data_set_are_disjoint(wave_sets):
    report = ov.overlap(wave_sets["w0"], wave_sets["w0"], cache=False)
    same = {p.a: p.overlapping for p in report.pairs if p.a == p.b}
    assert same == {"train": 10, "validation": 1, "test": 1} and not report.leaks()
    assert all(p.overlapping == 0 for p in report.pairs if p.a != p.b)


def test_fingerprints_are_cached_beside_the_data_and_rebuilt_when_it_changes(
    wave_sets, tmp_path, monkeypatch
):
    path = tmp_path / "w"
    shutil.copytree(wave_sets["w0"], path)
    first = ov.dataset_fingerprints(path)
    assert (path / ov.CACHE_FILE).is_file()
    monkeypatch.setattr(ov, "_split_codes", lambda ds, split: pytest.fail("the cache was not used"))
    again = ov.dataset_fingerprints(path)
    for s in SPLITS:
        np.testing.assert_array_equal(again[s].codes, first[s].codes)
        np.testing.assert_array_equal(again[s].keys, first[s].keys)
    meta = json.loads((path / FILENAME).read_text())
    meta["extra"]["rebuilt"] = True
    (path / FILENAME).write_text(json.dumps(meta))
    with pytest.raises(pytest.fail.Exception, match="the cache was not used"):
        ov.dataset_fingerprints(path)


# -- imported files -----------------------------------------------------------------------------------


def _import(src, out):
    return load_field_dataset(import_dataset("npz", [src], out, equation="u_t = 0", progress=False))


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    root = tmp_path_factory.mktemp("imports")
    u = waves(0, n=6, nt=4, nx=16).astype(np.float32)
    np.savez(root / "a.npz", u=u, x=np.arange(16) / 16, t=np.arange(4) * 0.1)
    (root / "copy").mkdir()
    shutil.copy(root / "a.npz", root / "copy" / "renamed.npz")
    np.savez(root / "other.npz", u=waves(5, n=6, nt=4, nx=16).astype(np.float32), x=np.arange(16) / 16,
             t=np.arange(4) * 0.1)  # fmt: skip
    return {
        "a": _import(root / "a.npz", root / "ds_a"),
        "copy": _import(root / "copy" / "renamed.npz", root / "ds_copy"),
        "other": _import(root / "other.npz", root / "ds_other"),
    }


def test_an_imported_file_is_known_by_its_content_digest_not_its_path(imported):
    a, copy = imported["a"], imported["copy"]
    assert a.meta.extra["file_digests"]["a.npz"] == copy.meta.extra["file_digests"]["renamed.npz"]
    report = ov.overlap(a, copy, cache=False)
    assert report.counts["file"] == report.counts["content"] == report.counts["any"] == 6
    assert ov.overlap(a, imported["other"], cache=False).counts["any"] == 0


def test_a_data_set_without_provenance_is_compared_by_content(imported, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(imported["a"].path, old)
    meta = json.loads((old / FILENAME).read_text())
    del meta["extra"]["file_digests"]  # as imported before sfm recorded it
    (old / FILENAME).write_text(json.dumps(meta))
    report = ov.overlap(old, imported["copy"], cache=False)
    assert report.counts["file"] == 0 and report.counts["content"] == report.counts["any"] == 6
    assert any("records no provenance" in n for n in report.notes)


def test_file_digest_reads_size_head_and_tail(tmp_path):
    big = np.random.default_rng(0).bytes(3 * 2**20)
    (tmp_path / "x").write_bytes(big)
    (tmp_path / "y").write_bytes(big[:-1] + bytes([big[-1] ^ 1]))  # differs in the last byte only
    (tmp_path / "z").write_bytes(big)
    d = {n: ov.file_digest(tmp_path / n) for n in "xyz"}
    assert d["x"] == d["z"] != d["y"] and d["x"].startswith("sha256:")


# -- the command --------------------------------------------------------------------------------------


def test_sfm_data_overlap_prints_a_table_and_fails_on_a_leak_only_when_asked(wave_sets, capsys):
    a, b, c = (str(wave_sets[k]) for k in ("w0", "w0big", "w1"))
    assert main(["data", "overlap", a, b]) == 0
    out = capsys.readouterr().out
    assert "A split" in out and "held-out trajectories in the other's train split" in out
    assert main(["data", "overlap", a, b, "--fail-on-overlap"]) == 1
    capsys.readouterr()
    assert main(["data", "overlap", a, c, "--fail-on-overlap"]) == 0
    assert "no held-out trajectory of either" in capsys.readouterr().out


def test_sfm_data_overlap_of_a_missing_folder_is_one_line(tmp_path, capsys):
    assert main(["data", "overlap", str(tmp_path / "nope"), str(tmp_path)]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no such folder" in err
