"""Fuzzing the config loaders: recipes, eval tasks and sweep specs.

Whatever a YAML file or a ``--key value`` override holds — unknown keys, wrong types, odd nesting, huge or
non-finite numbers, non-string keys — the only allowed outcomes are a loaded object or one
:class:`~sfm.errors.SfmError` with a one-line message; a ``TypeError``/``KeyError``/``AttributeError`` escaping
the loader would reach the user as a library traceback. Most examples start from a shipped, valid file and
change one or a few places in it, so the fuzzing reaches the checks deep inside a valid recipe (simulator
parameters, task options, encodings) rather than stopping at the first unknown top-level key.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfm import config
from sfm.errors import SfmError
from sfm.harness.tasks import EvalTask, load_task
from sfm.scaling.spec import SweepSpec, load_spec
from sfm.training.recipe import Recipe, load_recipe

ROOT = Path(__file__).resolve().parents[2]
BASE_RECIPES = sorted(p for p in (ROOT / "recipes").rglob("*.yaml") if "scaling" not in p.parts)
BASE_TASKS = sorted((ROOT / "eval" / "tasks").rglob("*.yaml"))
BASE_SPECS = sorted((ROOT / "recipes" / "scaling").rglob("*.yaml"))
# SFM_FUZZ_EXAMPLES raises the count for a long local hunt; CI keeps the derandomized default.
FUZZ = settings(
    max_examples=int(os.environ.get("SFM_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _field_names(cls: type) -> list[str]:
    """Every field name of dataclass ``cls`` and its nested sections, so mutations hit real keys."""
    names: list[str] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        names.append(f.name)
        for tp in (hints[f.name], *typing.get_args(hints[f.name])):
            if dataclasses.is_dataclass(tp):
                names += _field_names(tp)
            for inner in typing.get_args(tp):
                if dataclasses.is_dataclass(inner):
                    names += _field_names(inner)
    return names


# Real option names too (simulator parameters, task and encoding options), where type confusion bites.
EXTRA_KEYS = [
    "nu",
    "nx",
    "nt",
    "t_end",
    "k_max",
    "context_frames",
    "horizon",
    "space_stride",
    "n_bins",
    "low",
]
KEYS = sorted(set(_field_names(Recipe) + _field_names(EvalTask) + _field_names(SweepSpec) + EXTRA_KEYS))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["burgers", "tiny-llama", "forecast", "bins", "lora", "nrmse", "1e-4", "", "~", "null"]),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8), st.integers(-3, 3), st.booleans())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into a nested mapping/list (the places a mutation may land)."""
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _set(node: Any, path: tuple, value: Any, *, delete: bool = False) -> Any:
    if not path:
        return value
    *head, last = path
    parent = node
    for p in head:
        parent = parent[p]
    if delete:
        del parent[last]
    else:
        parent[last] = value
    return node


@st.composite
def mutated(draw: st.DrawFn, bases: list[Path]) -> Any:
    """A shipped file with one to three places replaced, deleted or given a new key (or pure noise)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(values)
    base = draw(st.sampled_from(bases))
    data = config.read_yaml(base)
    if isinstance(data.get("recipe"), str):  # a sweep spec names its recipe relative to itself
        data["recipe"] = str((base.parent / data["recipe"]).resolve())
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(data)))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and path:
            data = _set(data, path, None, delete=True)
        elif action == "add":
            target = data
            for p in path:
                target = target[p]
            if isinstance(target, dict):
                target[draw(keys)] = draw(values)
            else:
                data = _set(data, path, draw(values))
        else:
            data = _set(data, path, draw(values))
    return data


def _dump(data: Any) -> str:
    try:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    except (yaml.YAMLError, ValueError):  # a key yaml cannot represent: write the noise as text instead
        return repr(data)


def _check_outcome(call: typing.Callable[[], Any], expected: type) -> None:
    """The call returns ``expected`` or raises one SfmError whose message is one non-empty line."""
    try:
        result = call()
    except SfmError as exc:
        message = str(exc)
        assert message.strip(), f"empty message from {type(exc).__name__}"
        assert len(message.splitlines()) == 1, f"multi-line message: {message!r}"
        assert "Traceback" not in message
        return
    assert isinstance(result, expected)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(data=mutated(BASE_RECIPES))
def test_recipe_files(work: Path, data: Any) -> None:
    path = work / "recipe.yaml"
    path.write_text(_dump(data), encoding="utf-8")
    _check_outcome(lambda: load_recipe(path), Recipe)


override_values = st.one_of(
    st.text(max_size=16),
    st.sampled_from(
        ["[1, 2]", "{a: 1}", "null", "1e999", "-.inf", ".nan", "[", "{", "'", "&a *a", "!!python/none"]
    ),
    scalars.map(lambda v: yaml.safe_dump(v).removesuffix("\n...\n").strip()),
)
override_keys = st.one_of(
    st.sampled_from(sorted(config.leaf_paths(Recipe))),
    st.sampled_from(KEYS),
    st.text(max_size=10),
)


@FUZZ
@given(pairs=st.lists(st.tuples(override_keys, override_values, st.booleans()), min_size=1, max_size=3))
def test_recipe_overrides(pairs: list[tuple[str, str, bool]]) -> None:
    argv: list[str] = []
    for key, value, joined in pairs:
        argv += [f"--{key}={value}"] if joined else [f"--{key}", value]
    _check_outcome(lambda: load_recipe(ROOT / "recipes" / "quickstart.yaml", argv), Recipe)


@FUZZ
@given(data=mutated(BASE_TASKS))
def test_eval_task_files(work: Path, data: Any) -> None:
    path = work / "task.yaml"
    path.write_text(_dump(data), encoding="utf-8")
    _check_outcome(lambda: load_task(str(path)), EvalTask)


@FUZZ
@given(data=mutated(BASE_SPECS))
def test_sweep_spec_files(work: Path, data: Any) -> None:
    path = work / "spec.yaml"
    path.write_text(_dump(data), encoding="utf-8")
    _check_outcome(lambda: load_spec(path), SweepSpec)


@pytest.mark.parametrize(
    "text", ["a: [", "{", "\t- x", "a: b: c", "? [a]\n: 1", "*x", "!!python/object:os.system"]
)
def test_broken_yaml_is_one_line(work: Path, text: str) -> None:
    path = work / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    _check_outcome(lambda: load_recipe(path), Recipe)


def test_non_utf8_recipe_is_one_line(work: Path) -> None:
    path = work / "latin1.yaml"
    path.write_bytes(b"data:\n  simulator: burg\xe9rs\n\xff\xfe")
    _check_outcome(lambda: load_recipe(path), Recipe)


def test_fuzzing_reaches_valid_recipes() -> None:
    """The mutation base loads cleanly, so an example that fails does so because of its mutation."""
    assert BASE_RECIPES and BASE_TASKS and BASE_SPECS
    for path in BASE_RECIPES:
        assert isinstance(load_recipe(path), Recipe), path
    for path in BASE_TASKS:
        assert isinstance(load_task(str(path)), EvalTask), path
    for path in BASE_SPECS:
        assert isinstance(load_spec(path), SweepSpec), path
