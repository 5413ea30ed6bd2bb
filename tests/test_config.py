"""Strict YAML -> dataclass loading: unknown keys, wrong types, registry names, overrides."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from sfm import config
from sfm.errors import ConfigError
from sfm.registry import SIMULATORS


@dataclass
class Inner:
    lr: float = 1e-3
    steps: int = 10
    names: list[str] = field(default_factory=list)


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    mode: Literal["a", "b"] = "a"
    sim: str = field(default="burgers", metadata={"registry": SIMULATORS})
    flag: bool = False
    opt: int | None = None


def test_builds_nested_and_converts_losslessly():
    o = config.from_dict(Outer, {"inner": {"lr": 1, "steps": 3.0, "names": ["x"]}, "mode": "b", "opt": None})
    assert o.inner.lr == 1.0 and isinstance(o.inner.lr, float)
    assert o.inner.steps == 3 and o.mode == "b" and o.opt is None
    assert config.to_dict(o)["inner"] == {"lr": 1.0, "steps": 3, "names": ["x"]}


def test_yaml_style_float_strings_are_numbers():
    assert config.from_dict(Inner, {"lr": "3e-4"}).lr == 3e-4


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"inner": {"lrr": 1}}, "unknown key 'inner.lrr' (did you mean 'lr'?)"),
        ({"inner": {"steps": "ten"}}, "inner.steps: expected an integer, got 'ten'"),
        ({"inner": {"lr": True}}, "inner.lr: expected a number"),
        ({"mode": "c"}, "mode: 'c' is not one of 'a', 'b'"),
        ({"sim": "burger"}, "sim: unknown simulator 'burger' (did you mean 'burgers'"),
        ({"flag": "yes"}, "flag: expected true or false"),
        ({"inner": [1]}, "inner: expected a mapping"),
        ({"inner": {"names": "abc"}}, "inner.names: expected a list"),
    ],
)
def test_errors_are_one_line_and_name_the_key(data, message):
    with pytest.raises(ConfigError) as info:
        config.from_dict(Outer, data, where="r.yaml")
    text = str(info.value)
    assert text.startswith("r.yaml: ")
    assert message in text
    assert "\n" not in text


def test_overrides_dotted_leaf_and_equals_forms():
    o = config.parse_overrides(Outer, ["--inner.lr", "0.5", "--steps=7", "--flag", "true"])
    assert o == {"inner": {"lr": 0.5, "steps": 7}, "flag": True}


def test_override_errors():
    with pytest.raises(ConfigError, match=r"unknown override --stepz \(did you mean"):
        config.parse_overrides(Outer, ["--stepz", "3"])
    with pytest.raises(ConfigError, match="has no value"):
        config.parse_overrides(Outer, ["--steps"])
    with pytest.raises(ConfigError, match="unexpected argument"):
        config.parse_overrides(Outer, ["steps"])


def test_ambiguous_leaf_override():
    @dataclass
    class Two:
        a: Inner = field(default_factory=Inner)
        b: Inner = field(default_factory=Inner)

    with pytest.raises(ConfigError, match="ambiguous"):
        config.parse_overrides(Two, ["--lr", "1"])


def test_load_merges_file_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  lr: 0.1\n  steps: 2\nmode: b\n")
    o = config.load(Outer, path, ["--steps", "5"])
    assert (o.inner.lr, o.inner.steps, o.mode) == (0.1, 5, "b")


def test_invalid_yaml_names_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("inner:\n  lr: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: invalid YAML \(line"):
        config.read_yaml(path)
    with pytest.raises(ConfigError, match="no such file"):
        config.read_yaml(tmp_path / "missing.yaml")
