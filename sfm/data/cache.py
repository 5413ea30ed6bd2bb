"""Where field data sets live and how they are made on first use: the data cache under ``$SFM_HOME``.

Recipes, eval tasks and sweeps name data by simulator settings; every one of them resolves to the same cache
folder through :func:`resolve_data_path` and builds it at most once through :func:`ensure_dataset`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sfm.config import sfm_home
from sfm.errors import DataError
from sfm.physics.metadata import FILENAME


def resolve_data_path(
    path: str | None, simulator: str | None, params: dict[str, Any], num_samples: int, seed: int
) -> Path:
    """Where a recipe's data lives: its ``path`` (relative to ``$SFM_HOME``), or a cache folder named after
    the simulator and a hash of its settings."""
    if path is not None:
        p = Path(path)
        return p if p.is_absolute() else sfm_home() / p
    key = json.dumps({"sim": simulator, "params": params, "n": num_samples, "seed": seed}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return sfm_home() / "data" / f"{simulator}-{num_samples}-{digest}"


def ensure_dataset(
    path: Path,
    simulator: str | None,
    params: dict[str, Any],
    num_samples: int,
    seed: int,
    num_proc: int = 1,
    progress: bool = True,
) -> Path:
    """Return ``path``, generating the data set there first if it is missing and a simulator is named.

    Under ``accelerate launch`` only the main process generates; the others wait at a barrier, then read.
    """
    if (path / FILENAME).is_file():
        return path
    if simulator is None:
        raise DataError(f"{path}: no field data set there, and no data.simulator to generate one")
    # Only a missing data set pays for datasets and accelerate: recipes and sweeps import this module.
    from accelerate import PartialState

    state = PartialState()
    with state.main_process_first():
        if state.is_main_process and not (path / FILENAME).is_file():
            _build_once(path, simulator, params, num_samples, seed, num_proc, progress)
    return path


def _build_once(
    path: Path,
    simulator: str,
    params: dict[str, Any],
    num_samples: int,
    seed: int,
    num_proc: int,
    progress: bool,
) -> None:
    """Generate ``path`` unless another process (a second job or user on the same cache) already did.

    A file lock beside the folder makes a second builder wait instead of building the same data twice; the
    data set itself is written to a temporary folder and renamed into place, so a reader never sees half.
    """
    from filelock import FileLock

    from sfm.data.fieldset import generate_dataset

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.parent / f".{path.name}.lock"
    with FileLock(str(lock)):
        if not (path / FILENAME).is_file():  # else built by the process that held the lock before us
            generate_dataset(
                simulator, num_samples, path, seed=seed, num_proc=num_proc, params=params, progress=progress
            )
        # Removing the lock file is safe once the data set exists: whoever locks after this (the old file or a
        # new one) finds the data and only reads it. A failed build keeps it (a few bytes) for the next try.
        lock.unlink(missing_ok=True)
