"""Every built-in simulator goes through generate_dataset at its default settings and reads back intact."""

from __future__ import annotations

import numpy as np
import pytest

from sfm.data import generate_dataset, load_field_dataset
from sfm.physics.simulators.base import get_simulator
from sfm.registry import SIMULATORS


@pytest.mark.slow
def test_every_builtin_simulator_round_trips(tmp_path):
    names = [n for n in SIMULATORS.names() if not n.startswith("_")]
    if not names:
        pytest.skip("no built-in simulators registered yet")
    for name in names:
        out = generate_dataset(name, 3, tmp_path / name, seed=1, progress=False)
        ds = load_field_dataset(out)
        sim = get_simulator(name)
        expected = sim.meta()
        assert ds.meta.fields == expected.fields and ds.meta.field_shapes == expected.field_shapes, name
        assert ds.meta.coords == expected.coords and ds.meta.varying == expected.varying, name
        seeds = ds.column("test", "seed")
        fresh = sim.generate(seeds)
        for field in ds.meta.fields:
            stored = ds.arrays("test", field)
            assert stored.dtype == np.float32 and np.all(np.isfinite(stored)), (name, field)
            np.testing.assert_array_equal(stored, fresh[field], err_msg=f"{name}.{field}")
        assert (out / "README.md").is_file(), name
