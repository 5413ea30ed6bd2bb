"""Random initial conditions in the style of PDEBench: sums of random sine waves, random coefficient fields.

PDEBench draws initial data as ``u0(x) = sum_i A_i sin(k_i x + phi_i)`` with a few integer wave numbers per
trajectory; here each function takes one ``np.random.Generator`` per trajectory so a trajectory's initial
condition depends only on its own seed.
"""

from __future__ import annotations

import numpy as np


def sine_waves_1d(
    rng: np.random.Generator,
    x: np.ndarray,
    length: float,
    *,
    n_waves: int = 2,
    k_max: int = 4,
    amplitude: float = 1.0,
) -> np.ndarray:
    """``sum_i A_i sin(2 pi k_i x / L + phi_i)`` with ``k_i`` in ``1..k_max``, ``A_i ~ U(0, amplitude)``.

    Periodic on ``[0, L)`` by construction.
    """
    k, a, phi = _draw_waves(rng, n_waves, k_max, amplitude)
    return _sum_waves(x, length, k, a, phi)


def unit_sine_waves_1d(
    rng: np.random.Generator,
    x: np.ndarray,
    length: float,
    *,
    n_waves: int = 2,
    k_max: int = 4,
    amplitude: float = 1.0,
) -> np.ndarray:
    """:func:`sine_waves_1d` mapped affinely into ``[0, 1]``: ``(1 + s / sum_i A_i) / 2``.

    For densities and concentrations (Fisher–KPP). Dividing by the amplitude sum, which bounds ``|s|``
    analytically, keeps the map independent of the grid (a min/max rescale would depend on the samples).
    Uses the same draws as :func:`sine_waves_1d`, so one seed gives the same wave pattern in both.
    """
    k, a, phi = _draw_waves(rng, n_waves, k_max, amplitude)
    return 0.5 * (1.0 + _sum_waves(x, length, k, a, phi) / max(a.sum(), np.finfo(float).tiny))


def _draw_waves(
    rng: np.random.Generator, n_waves: int, k_max: int, amplitude: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k = rng.integers(1, k_max + 1, size=n_waves)
    a = rng.uniform(0.0, amplitude, size=n_waves)
    phi = rng.uniform(0.0, 2 * np.pi, size=n_waves)
    return k, a, phi


def _sum_waves(x: np.ndarray, length: float, k: np.ndarray, a: np.ndarray, phi: np.ndarray) -> np.ndarray:
    return (a[:, None] * np.sin(2 * np.pi * k[:, None] * x[None, :] / length + phi[:, None])).sum(axis=0)


def sine_waves_2d(
    rng: np.random.Generator,
    x: np.ndarray,
    y: np.ndarray,
    length: float,
    *,
    n_waves: int = 4,
    k_max: int = 4,
    amplitude: float = 1.0,
) -> np.ndarray:
    """2D analogue of :func:`sine_waves_1d` on the periodic square ``[0, L)^2``; returns ``[nx, ny]``."""
    kx = rng.integers(-k_max, k_max + 1, size=n_waves)
    ky = rng.integers(1, k_max + 1, size=n_waves)
    a = rng.uniform(0.0, amplitude, size=n_waves)
    phi = rng.uniform(0.0, 2 * np.pi, size=n_waves)
    X, Y = np.meshgrid(x, y, indexing="ij")
    out = np.zeros_like(X)
    for i in range(n_waves):
        out += a[i] * np.sin(2 * np.pi * (kx[i] * X + ky[i] * Y) / length + phi[i])
    return out
