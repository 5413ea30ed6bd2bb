"""Built-in PDE simulators. Every module in this package (but the helpers) registers its simulators.

Use :func:`get_simulator` to build one by name; :data:`sfm.registry.SIMULATORS` lists them.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from sfm.physics.simulators.base import Param, Simulator, get_simulator, trajectory_seeds

_HELPERS = {"base", "checks", "derivatives", "initial", "params", "spectral"}
for _m in _pkgutil.iter_modules(__path__):
    if _m.name not in _HELPERS and not _m.name.startswith("_"):
        _importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["Param", "Simulator", "get_simulator", "trajectory_seeds"]
