"""Field windows: the arrays field models train on are exactly the eval tasks' and the token path's windows."""

from __future__ import annotations

import numpy as np
import pytest

from sfm.data import generate_dataset, load_field_dataset
from sfm.errors import ConfigError, DataError
from sfm.harness.forecast import build_forecast_set
from sfm.tasks import get_task_format
from sfm.tasks.windows import FieldWindows, coefficient_stats, field_stats


@pytest.fixture(scope="module")
def burgers(tmp_path_factory):
    """1D, one field, one varying coefficient (nu)."""
    out = tmp_path_factory.mktemp("win") / "burgers"
    params = {"nu": [0.04, 0.08], "nx": 64, "nt": 11, "t_end": 0.5, "k_max": 2}
    return load_field_dataset(generate_dataset("burgers", 10, out, params=params, progress=False))


@pytest.fixture(scope="module")
def gray_scott(tmp_path_factory):
    """2D, two fields, four fixed coefficients."""
    out = tmp_path_factory.mktemp("win") / "gs"
    params = {"nx": 16, "ny": 16, "nt": 7, "t_end": 20.0}
    return load_field_dataset(generate_dataset("gray_scott", 6, out, params=params, progress=False))


CASES = [
    ("burgers", {"context_frames": 2, "horizon": 1, "space_stride": 4}, 1, 8),
    ("burgers", {"context_frames": 2, "horizon": 1, "space_stride": 2}, 4, 2),
    ("burgers", {"context_frames": 3, "horizon": 2, "time_stride": 2}, 1, None),
    ("gray_scott", {"context_frames": 2, "horizon": 1, "space_stride": 2}, 2, None),
]


@pytest.mark.parametrize(("name", "options", "rollout_steps", "per_traj"), CASES)
def test_even_windows_equal_forecast_set(request, name, options, rollout_steps, per_traj):
    fs = request.getfixturevalue(name)
    fmt = get_task_format("forecast", **options)
    ref = build_forecast_set(fs, "train", fmt, rollout_steps, windows_per_trajectory=per_traj)
    win = FieldWindows.from_split(
        fs.split("train"),
        fs.meta,
        fmt,
        rollout_steps=rollout_steps,
        even=True,
        windows_per_trajectory=per_traj,
    )
    b = win.batch(np.arange(len(win)))
    assert len(win) == len(ref)
    # The stored data are float32, so the harness's float64 windows hold exactly the same numbers.
    np.testing.assert_array_equal(b["context"], ref.contexts.astype(np.float32))
    np.testing.assert_array_equal(b["target"], ref.targets.astype(np.float32))
    np.testing.assert_array_equal(b["context"].astype(np.float64), ref.contexts)
    np.testing.assert_array_equal(win.index[:, 0], ref.trajectory)
    np.testing.assert_array_equal(win.index[:, 1], ref.start)
    want = np.array([[c[k] for k in win.coefficient_names] for c in ref.coefficients], dtype=np.float32)
    np.testing.assert_array_equal(b["coefficients"], want.reshape(len(ref), -1))
    assert win.coefficient_names == sorted(ref.coefficients[0])


def test_training_windows_are_the_token_paths(burgers):
    """Same starts as Forecast.training_examples draws (generator default_rng([seed, row])), same frames."""
    fmt = get_task_format("forecast", context_frames=2, horizon=1, space_stride=2, windows_per_trajectory=3)
    split = burgers.split("train")
    win = FieldWindows.from_split(split, burgers.meta, fmt, seed=5)
    assert len(win) == 3 * len(split)
    for i in range(len(win)):
        t, s = win.trajectory_of(i)
        row = split[t]
        traj = fmt.trajectory(row, burgers.meta)
        assert s in fmt.starts(traj.shape[0], np.random.default_rng([5, t]))
        np.testing.assert_array_equal(win[i]["context"], traj[s : s + 2].astype(np.float32))
        np.testing.assert_array_equal(win[i]["target"], traj[s + 2 : s + 3].astype(np.float32))
        assert win[i]["coefficients"][0] == np.float32(fmt.coefficients(row, burgers.meta)["nu"])
    starts = {t: sorted(win.index[win.index[:, 0] == t, 1]) for t in range(len(split))}
    for t, got in starts.items():
        np.testing.assert_array_equal(got, fmt.starts(win.data.shape[1], np.random.default_rng([5, t])))


def test_items_are_views_and_batch_equals_items(gray_scott):
    fmt = get_task_format("forecast", context_frames=2, horizon=1)
    win = FieldWindows.from_split(gray_scott.split("train"), gray_scott.meta, fmt, rollout_steps=2)
    item = win[3]
    assert np.shares_memory(item["context"], win.data) and np.shares_memory(item["target"], win.data)
    assert item["context"].shape == (2, 2, 16, 16) and item["target"].shape == (2, 2, 16, 16)
    idx = [5, 0, 3, 3]
    b = win.batch(idx)
    for key in ("context", "target", "coefficients"):
        np.testing.assert_array_equal(b[key], np.stack([win[i][key] for i in idx]))


def test_field_stats_are_float64_over_the_split(gray_scott):
    fmt = get_task_format("forecast", context_frames=2, horizon=1)
    win = FieldWindows.from_split(gray_scott.split("train"), gray_scott.meta, fmt)
    mean, std = field_stats(win, chunk=1)
    values = win.data.astype(np.float64)
    np.testing.assert_allclose(mean, values.mean(axis=(0, 1, 3, 4)), rtol=1e-13)
    np.testing.assert_allclose(std, values.std(axis=(0, 1, 3, 4)), rtol=1e-12)
    np.testing.assert_array_equal(field_stats(win, chunk=1000)[0], field_stats(win, chunk=1000)[0])
    np.testing.assert_allclose(field_stats(win, chunk=1000)[1], std, rtol=1e-12)
    cmean, cstd = coefficient_stats(win)
    assert win.coefficient_names == ["Du", "Dv", "F", "k"]
    np.testing.assert_allclose(cmean, [2e-05, 1e-05, 0.029, 0.057], rtol=1e-6)
    np.testing.assert_array_equal(cstd, 0.0)


def test_max_windows_keeps_a_seeded_subset(burgers):
    fmt = get_task_format("forecast", context_frames=2, horizon=1)
    full = FieldWindows.from_split(burgers.split("train"), burgers.meta, fmt)
    sub = FieldWindows.from_split(burgers.split("train"), burgers.meta, fmt, max_windows=7, seed=1)
    again = FieldWindows.from_split(burgers.split("train"), burgers.meta, fmt, max_windows=7, seed=1)
    assert len(sub) == 7
    np.testing.assert_array_equal(sub.index, again.index)
    full_rows = {tuple(r) for r in full.index}
    assert all(tuple(r) in full_rows for r in sub.index)


def test_too_few_frames_and_steady_data_fail_in_one_line(burgers):
    fmt = get_task_format("forecast", context_frames=8, horizon=4)
    with pytest.raises(ConfigError, match="fewer than"):
        FieldWindows.from_split(burgers.split("train"), burgers.meta, fmt)
    with pytest.raises(ConfigError, match="rollout_steps"):
        FieldWindows.from_split(burgers.split("train"), burgers.meta, fmt, even=True)
    steady = burgers.meta.replace(coords={"x": burgers.meta.coords["x"]})
    with pytest.raises(DataError, match="steady"):
        FieldWindows.from_split(burgers.split("train"), steady, fmt)
