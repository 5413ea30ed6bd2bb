"""A recipe's data: one field data set, a mixture of several, or an equation data set — checked at load."""

from pathlib import Path

import pytest

from sfm import config
from sfm.errors import ConfigError, SfmError
from sfm.training import data as td
from sfm.training.recipe import Recipe

ROOT = Path(__file__).resolve().parents[2]


def _recipe(data: dict) -> Recipe:
    return config.from_dict(Recipe, {"data": data}, where="r.yaml")


def test_equations_need_symbolic_regression_and_no_simulator():
    eq = {"source": "generated", "num_equations": 8}
    with pytest.raises(ConfigError, match="needs task 'symbolic_regression'"):
        _recipe({"equations": eq, "task": "forecast"})
    with pytest.raises(ConfigError, match=r"drop data\.simulator"):
        _recipe({"equations": eq, "simulator": "burgers", "task": "symbolic_regression", "encoding": "sme"})
    with pytest.raises(ConfigError, match=r"unknown key 'data.equations.num_equation' \(did you mean"):
        _recipe({"equations": {"num_equation": 3}, "task": "symbolic_regression"})


def test_mixture_sources_are_checked():
    with pytest.raises(ConfigError, match=r"data.mixture: heat: unknown parameter 'nu'"):
        _recipe({"simulator": "burgers", "mixture": [{"simulator": "heat", "params": {"nu": 0.1}}]})
    with pytest.raises(ConfigError, match="unknown simulator 'heet'"):
        _recipe({"simulator": "burgers", "mixture": [{"simulator": "heet"}]})


def test_load_sources_mixture_and_equations(tmp_path, monkeypatch):
    monkeypatch.setenv("SFM_HOME", str(tmp_path))
    small = {"nx": 64, "nt": 5, "t_end": 0.2}
    srcs = [
        td.Source(simulator="heat", params={"D": 0.01, **small}, num_samples=4),
        td.Source(simulator="advection", params={"beta": 0.5, **small}, num_samples=4),
    ]
    loaded = td.load_sources(srcs, train_trajectories=2, progress=False)
    assert [m.family for _, m in loaded.train] == ["heat", "advection"]
    assert all(len(split) == 2 for split, _ in loaded.train)
    assert loaded.fields == ["u"] and loaded.record["kind"] == "fields"
    with pytest.raises(SfmError, match="train_trajectories=9"):
        td.load_sources(srcs[:1], train_trajectories=9, progress=False)

    from sfm.data.equations import EquationSpec

    eq = td.load_sources([], equations=EquationSpec(num_equations=12, num_points=8), progress=False)
    assert eq.meta is None and eq.fields == ["y"] and eq.record["kind"] == "equations"
    assert len(eq.train[0][0]) > 0


def test_shipped_mixture_and_equation_recipes_load():
    from sfm.training.recipe import load_recipe

    ident = load_recipe(ROOT / "recipes" / "tiny" / "identify" / "lora.yaml")
    assert [m.simulator for m in ident.data.mixture] == ["heat", "advection"]
    sym = load_recipe(ROOT / "recipes" / "tiny" / "symbolic" / "lora.yaml")
    assert sym.data.equations is not None and sym.data.encoding == "sme"
