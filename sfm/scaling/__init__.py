"""Scaling laws: how error falls with data, parameters, compute or steps, and what follows from the fit.

Fit one curve ``E(x) = E_inf + A x^-alpha`` (:func:`fit_power_law`) or the joint law
``L(N, D) = E + A/N^alpha + B/D^beta`` (:func:`fit_joint`), both robustly in log space with bootstrap
intervals; read answers off them (:func:`x_for_target`, :func:`compute_optimal`, :func:`data_efficiency`, and against a reference arm such
as an FNO :func:`reference_gains` and :func:`crossing`);
or do all of it for a sweep's results table (:func:`fit_results`) and write the report (:func:`write_report`).
Sweeps of fine-tunes that produce those tables: :func:`load_spec`, :func:`plan_sweep`, :func:`run_sweep`. The
command lines are ``sfm scaling run SPEC`` and ``sfm scaling fit RESULTS``.

The names below are imported on first use, so that building the ``sfm`` command line (which imports every
command module) does not pay for scipy and matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "JointFit": "sfm.scaling.fit",
    "PowerLawFit": "sfm.scaling.fit",
    "fit_joint": "sfm.scaling.fit",
    "fit_power_law": "sfm.scaling.fit",
    "compute_optimal": "sfm.scaling.derived",
    "data_efficiency": "sfm.scaling.derived",
    "x_for_target": "sfm.scaling.derived",
    "reference_gains": "sfm.scaling.derived",
    "crossing": "sfm.scaling.derived",
    "cells_markdown": "sfm.scaling.markdown",
    "fit_results": "sfm.scaling.results",
    "write_report": "sfm.scaling.report",
    "ResultsTable": "sfm.scaling.table",
    "load_table": "sfm.scaling.table",
    "read_table": "sfm.scaling.table",
    "load_spec": "sfm.scaling.spec",
    "plan_sweep": "sfm.scaling.plan",
    "run_sweep": "sfm.scaling.run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sfm.scaling' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
