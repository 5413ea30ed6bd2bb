"""Field data sets: generate from simulators, import PDEBench / The Well / NumPy files, load, describe.

    from sfm.data import generate_dataset, import_dataset, load_field_dataset

    generate_dataset("burgers", 1000, "data/burgers", seed=0, params={"nu": [1e-3, 1e-1]})
    import_dataset("pdebench", ["1D_Burgers_Sols_Nu0.01.hdf5"], "data/pdebench-burgers")
    ds = load_field_dataset("data/burgers")
    ds.arrays("train", "u")          # [n, T, X] float32

The names below are loaded on first use, so importing a light submodule (:mod:`sfm.data.cache`, as recipes
and sweeps do) does not import ``datasets``.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "generate_dataset": "sfm.data.fieldset",
    "import_dataset": "sfm.data.fieldset",
    "load_field_dataset": "sfm.data.fieldset",
    "FieldDataset": "sfm.data.fieldset",
    "split_indices": "sfm.data.splits",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sfm.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
