"""Derivatives of stored frames, for PDE residuals: central differences in time, spectral in space."""

from __future__ import annotations

import numpy as np


def central_time_difference(u: np.ndarray, dt: float) -> np.ndarray:
    """``(u[:, j+1] - u[:, j-1]) / (2 dt)`` for the interior frames of ``u [n, T, ...]``: ``[n, T-2, ...]``.

    Second order: the error is ``dt^2 / 6 u_ttt``.
    """
    return (u[:, 2:] - u[:, :-2]) / (2.0 * dt)


def spectral_derivative(u: np.ndarray, dx: float, order: int, axis: int = -1) -> np.ndarray:
    """``order``-th derivative of periodic samples along ``axis`` (spacing ``dx``), by Fourier multiplication.

    An odd derivative drops the Nyquist mode of an even grid: that mode is a pure cosine on the grid, its
    derivative a sine that vanishes at every grid point (Trefethen, Spectral Methods in MATLAB, ch. 3).
    """
    n = u.shape[axis]
    k = 2 * np.pi * np.fft.rfftfreq(n, d=dx)
    symbol = (1j * k) ** order
    if order % 2 and n % 2 == 0:
        symbol[-1] = 0.0
    shape = [1] * u.ndim
    shape[axis] = symbol.size
    return np.fft.irfft(np.fft.rfft(u, axis=axis) * symbol.reshape(shape), n=n, axis=axis)
