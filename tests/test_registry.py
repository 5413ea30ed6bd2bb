"""The generic registry: registration, lookup with did-you-mean, built-in discovery, ``sfm list``."""

import pytest

from sfm.cli import main
from sfm.errors import SfmError, UnknownNameError
from sfm.registry import ALL, Registry


def test_register_lookup_and_meta():
    reg = Registry("shape")

    @reg.register("square", sides=4)
    def square(a):
        return a * a

    assert reg.get("square") is square
    assert reg.meta("square") == {"sides": 4}
    assert reg.names() == ["square"]
    assert "square" in reg and "circle" not in reg
    assert len(reg) == 1


def test_unknown_name_suggests_closest():
    reg = Registry("simulator")
    for name in ("burgers", "advection", "heat"):
        reg.register(name)(object())
    with pytest.raises(UnknownNameError) as info:
        reg.get("burger")
    msg = str(info.value)
    assert "unknown simulator 'burger'" in msg and "did you mean 'burgers'" in msg
    assert isinstance(info.value, SfmError)


def test_double_registration_is_an_error():
    reg = Registry("x")
    reg.register("a")(1)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(2)


def test_builtin_registries_are_populated():
    for kind in (
        "simulators",
        "encodings",
        "task-formats",
        "metrics",
        "baselines",
        "backbones",
        "eval-tasks",
    ):
        assert len(ALL[kind]) > 0, kind
    assert "burgers" in ALL["simulators"]
    assert {"bins", "sme", "digits"} <= set(ALL["encodings"].names())
    assert {"nrmse", "vrmse", "rmse"} <= set(ALL["metrics"].names())
    assert {"tiny-llama", "tiny-t5"} <= set(ALL["backbones"].names())


def test_sfm_list_prints_every_registry(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for kind in ALL:
        assert f"{kind}:" in out
    assert "burgers" in out and "persistence" in out and "tiny-llama" in out
