"""The public API in ``sfm/__init__.py`` is the objects it names, documented, and importing sfm stays cheap."""

import importlib
import subprocess
import sys

import pytest

import sfm


@pytest.mark.parametrize("name", sorted(sfm._EXPORTS))
def test_export_is_the_object_its_module_defines(name):
    module, attr = sfm._EXPORTS[name]
    obj = getattr(sfm, name)
    assert obj is getattr(importlib.import_module(module), attr)  # not a stale copy or a wrapper
    assert callable(obj) and (obj.__doc__ or "").strip(), f"sfm.{name} needs a docstring"
    assert obj.__module__.startswith(module), f"sfm.{name} is defined in {obj.__module__}, not under {module}"


def test_all_lists_exactly_the_exports():
    assert sorted(sfm.__all__) == sorted([*sfm._EXPORTS, "Registry", "SfmError", "__version__"])
    assert sfm.__dir__() == sfm.__all__
    with pytest.raises(AttributeError, match="has no attribute 'no_such_thing'"):
        _ = sfm.no_such_thing


def test_import_is_cheap():
    code = "import sys, sfm; print('torch' in sys.modules, 'datasets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
