"""The local ``evaluate`` modules in eval/metrics load offline and give the numpy metrics' numbers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from sfm.errors import ConfigError
from sfm.metrics import compute

evaluate = pytest.importorskip("evaluate")

REPO = Path(__file__).resolve().parents[2]
MODULES = ["nrmse", "vrmse", "rel_l2", "frmse_low"]


def _load(name, config=None):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # set by conftest: any Hub lookup would fail loudly
    return evaluate.load(str(REPO / "eval" / "metrics" / name), config, keep_in_memory=True)


def test_every_module_has_a_readme_and_loads_by_relative_path(monkeypatch):
    monkeypatch.chdir(REPO)
    for name in MODULES:
        assert (REPO / "eval" / "metrics" / name / "README.md").is_file()
        module = evaluate.load(f"eval/metrics/{name}", keep_in_memory=True)
        assert module.name == name
        assert "predictions" in module.features and module.citation.startswith("@")


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.parametrize(("config", "space"), [(None, (40,)), ("2d", (32, 30))], ids=["1d", "2d"])
def test_module_matches_the_numpy_metric(name, config, space):
    rng = np.random.default_rng(0)
    target = rng.normal(size=(4, 3, *space)) + 1.0
    pred = (target + rng.normal(scale=0.2, size=target.shape)).astype(np.float32)
    module = _load(name, config)
    got = module.compute(predictions=pred, references=target)
    assert set(got) == {name}
    assert got[name] == pytest.approx(compute(name, pred, target), rel=1e-12)


def test_options_pass_through_and_batches_accumulate():
    rng = np.random.default_rng(1)
    target = rng.normal(size=(6, 2, 32))
    pred = target + rng.normal(size=target.shape)
    module = _load("frmse_low")
    module.add_batch(predictions=pred[:2], references=target[:2])
    module.add_batch(predictions=list(pred[2:]), references=list(target[2:]))
    got = module.compute(lengths=[3.0])["frmse_low"]
    assert got == pytest.approx(compute("frmse_low", pred, target, lengths=[3.0]), rel=1e-12)


def test_unknown_configuration_is_a_one_line_error():
    with pytest.raises(ConfigError, match=r"nrmse: unknown configuration '2D' \(did you mean '2d'"):
        _load("nrmse", "2D")
