"""Train / validation / test splits of a data set's rows: how many rows each gets, and which.

Plain numpy (no ``datasets``), so a sweep can check a data size against the training split before any data
set is built.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sfm.errors import ConfigError
from sfm.physics.metadata import SPLITS

#: Default train, validation, test fractions of every field data set.
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


def split_counts(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    """Rows per split (train, validation, test) for ``n`` rows; every split gets at least one row.

    Raises:
        ConfigError: ``fractions`` is not three positive numbers summing to 1, or ``n < 3``.
    """
    f = [float(x) for x in fractions]
    if len(f) != 3 or min(f) <= 0 or abs(sum(f) - 1) > 1e-6:
        raise ConfigError(
            f"split_fractions must be three positive numbers summing to 1, got {list(fractions)}"
        )
    if n < 3:
        raise ConfigError(f"a field data set needs at least 3 trajectories (train/validation/test), got {n}")
    n_val, n_test = max(1, round(n * f[1])), max(1, round(n * f[2]))
    while n - n_val - n_test < 1:  # tiny n with large held-out fractions: give rows back to train
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    return n - n_val - n_test, n_val, n_test


def split_indices(n: int, seed: int, fractions: Sequence[float] = SPLIT_FRACTIONS) -> dict[str, np.ndarray]:
    """Assign rows ``0..n-1`` to splits by a seeded permutation; each split's indices sorted ascending."""
    counts = split_counts(n, fractions)
    perm = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum((0, *counts))
    return {s: np.sort(perm[bounds[i] : bounds[i + 1]]) for i, s in enumerate(SPLITS)}
