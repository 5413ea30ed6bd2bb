"""The layer order is checked by a tool, not by review: import-linter's contracts in pyproject.toml.

A module imports only from its own layer or lower (function-local imports included), and physics, metrics
and data stay numpy code. CI runs the suite, so a violation turns CI red.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    proc = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout
