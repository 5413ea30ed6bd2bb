"""Metrics: plain numpy functions registered in :data:`sfm.registry.METRICS`.

Field metrics take one field's ``pred, target`` shaped ``(batch, time, *space)`` and return per-sample
values; :func:`aggregate` turns those into the number the reference project (PDEBench, The Well, Poseidon,
DPOT) reports, :func:`bootstrap_ci` gives its confidence interval. Every module in this package but the
helpers registers its metrics when imported, so a new file adds metrics with no list to edit.

    >>> import numpy as np
    >>> from sfm.metrics import compute
    >>> y = np.sin(np.linspace(0, 6, 64)).reshape(1, 1, 64) + 2
    >>> compute("rmse", y, y)
    0.0
"""

import importlib as _importlib
import pkgutil as _pkgutil

from sfm.metrics.core import (
    AGGREGATIONS,
    aggregate,
    bootstrap_ci,
    check_fields,
    compute,
    field_metric,
    get_metric,
)

_HELPERS = {"core"}
for _m in _pkgutil.iter_modules(__path__):
    if _m.name not in _HELPERS and not _m.name.startswith("_"):
        _importlib.import_module(f"{__name__}.{_m.name}")

__all__ = [
    "AGGREGATIONS",
    "aggregate",
    "bootstrap_ci",
    "check_fields",
    "compute",
    "field_metric",
    "get_metric",
]
