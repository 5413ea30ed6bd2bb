"""The eval families: one registry is the only list of them (task files are checked against it, the runner
dispatches through it, ``sfm list`` shows it), and the harness modules import one another without cycles."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from sfm.config import from_dict
from sfm.errors import ConfigError
from sfm.harness import runner
from sfm.harness.context import EvalContext
from sfm.harness.results import TaskResult
from sfm.harness.tasks import EvalTask, load_task
from sfm.registry import ALL, BASELINES, FAMILIES

SHIPPED = {"forecast", "robustness", "consistency", "pde_identification", "symbolic_regression"}
TASK_DIR = Path(__file__).resolve().parents[2] / "eval" / "tasks"
BURGERS = {"simulator": "burgers", "params": {"nx": 64, "nt": 11}}


def test_the_registry_holds_every_family_with_a_run_function_and_what_it_answers():
    assert set(FAMILIES.names()) == SHIPPED
    assert ALL["eval-families"] is FAMILIES  # so `sfm list eval-families` prints it
    for name, run in FAMILIES.items():
        meta = FAMILIES.meta(name)
        assert callable(run) and meta["description"]
        assert meta["answers"] in {BASELINES.meta(b).get("family", "forecast") for b in BASELINES.names()}
    assert {n for n in SHIPPED if FAMILIES.meta(n)["answers"] == "forecast"} == {
        "forecast",
        "robustness",
        "consistency",
    }


def test_every_shipped_task_names_a_registered_family():
    families = {
        load_task(p.relative_to(TASK_DIR).with_suffix("").as_posix()).family for p in TASK_DIR.rglob("*.yaml")
    }
    assert families == SHIPPED  # every family has a shipped task, and no task names another


def test_an_unknown_family_is_refused_with_the_closest_name():
    with pytest.raises(ConfigError, match=r"family: unknown eval family 'forcast'.*did you mean 'forecast'"):
        from_dict(EvalTask, {"task": "t", "version": 1, "family": "forcast", "data": BURGERS})


def test_family_metadata_drives_the_task_checks():
    with pytest.raises(ConfigError, match="a robustness task needs noise_levels"):
        from_dict(EvalTask, {"task": "t", "version": 1, "family": "robustness", "data": BURGERS})
    with pytest.raises(ConfigError, match=r"set data\.path or data\.simulator"):
        from_dict(EvalTask, {"task": "t", "version": 1, "family": "consistency"})
    sr = from_dict(
        EvalTask,
        {"task": "t", "version": 1, "family": "symbolic_regression", "task_format": "symbolic_regression",
         "metrics": ["r2"], "primary_metric": "r2", "baselines": ["constant"]},
    )  # fmt: skip
    assert sr.data.simulator is None  # symbolic regression needs no field data


def _probe(task, loaded, ctx):
    """A family that reports what it was given (registered under a private name: a test fixture)."""
    result = TaskResult(task=task.task, version=task.version, family=task.family, primary_metric="nrmse")
    result.extra = {"loaded": loaded, "ctx": ctx}
    return result, [], {}


if "_probe" not in FAMILIES:
    FAMILIES.register("_probe", answers="forecast", needs_data=False, description="test fixture")(_probe)


def test_the_runner_only_dispatches_to_the_registered_run():
    task = from_dict(EvalTask, {"task": "probe", "version": 1, "family": "_probe"})
    result, rows, ex = runner.run_task(task, "MODEL", limit=3, batch_size=5, seed=7, state=None)
    assert result.extra["loaded"] == "MODEL" and (rows, ex) == ([], {})
    assert result.extra["ctx"] == EvalContext(limit=3, batch_size=5, seed=7, state=None)
    assert "_probe" not in FAMILIES.names()  # private names stay out of `sfm list`


def test_context_limit_is_the_smaller_of_task_and_command_line():
    task = from_dict(EvalTask, {"task": "probe", "version": 1, "family": "_probe", "limit": 10})
    assert EvalContext(limit=4).limit_for(task) == 4
    assert EvalContext(limit=40).limit_for(task) == 10
    assert (
        EvalContext().limit_for(from_dict(EvalTask, {"task": "p", "version": 1, "family": "_probe"})) is None
    )


def _harness_cycles() -> list[list[str]]:
    """Import cycles among sfm.harness modules, function-local and TYPE_CHECKING imports included."""
    grimp = importlib.import_module("grimp")
    graph = grimp.build_graph("sfm")
    mods = {m for m in graph.modules if m.startswith("sfm.harness")}
    edges = {m: {d for d in graph.find_modules_directly_imported_by(m) if d in mods} for m in mods}
    cycles, state = [], dict.fromkeys(mods, 0)  # 0 new, 1 on the stack, 2 done

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(edges[m]):
            if state[d] == 1:
                cycles.append([*stack[stack.index(d) :], d])
            elif state[d] == 0:
                visit(d, [*stack, d])
        state[m] = 2

    for m in sorted(mods):
        if state[m] == 0:
            visit(m, [m])
    return cycles


def test_no_import_cycle_inside_the_harness():
    pytest.importorskip("grimp")
    assert _harness_cycles() == []
