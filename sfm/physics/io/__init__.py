"""Readers for field data in the formats the field uses (PDEBench, The Well, NumPy).

Every module in this package registers its importers in :data:`sfm.registry.IMPORTERS`.
"""

import importlib as _importlib
import pkgutil as _pkgutil

for _m in _pkgutil.iter_modules(__path__):
    if not _m.name.startswith("_"):
        _importlib.import_module(f"{__name__}.{_m.name}")
