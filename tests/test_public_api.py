"""The public API in ``sfm/__init__.py`` resolves, and importing sfm stays cheap."""

import subprocess
import sys

import sfm


def test_every_export_resolves():
    for name in sfm.__all__:
        assert getattr(sfm, name) is not None, name


def test_import_is_cheap():
    code = "import sys, sfm; print('torch' in sys.modules, 'datasets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
