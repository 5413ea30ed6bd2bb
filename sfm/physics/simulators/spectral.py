"""Shared pieces of the periodic pseudo-spectral solvers: wave numbers, dealiasing, ETDRK4.

ETDRK4 (Cox & Matthews 2002, with the contour-integral evaluation of Kassam & Trefethen 2005) integrates
``v_t = L v + N(v)`` exactly in the stiff linear part ``L`` (diagonal in Fourier space) and to fourth order in
the nonlinear part. The linear operator may differ per trajectory (``L`` shaped ``[batch, *modes]``), so a
batch with per-trajectory viscosities is still one vectorized step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def rfft_wavenumbers(n: int, length: float) -> np.ndarray:
    """Angular wave numbers ``2 pi k / L`` of ``np.fft.rfft`` of ``n`` samples on a period ``length``."""
    return 2 * np.pi * np.fft.rfftfreq(n, d=length / n)


def fft_wavenumbers(n: int, length: float) -> np.ndarray:
    """Angular wave numbers ``2 pi k / L`` of ``np.fft.fft`` of ``n`` samples on a period ``length``."""
    return 2 * np.pi * np.fft.fftfreq(n, d=length / n)


def dealias_mask(n: int, *, rfft: bool = True) -> np.ndarray:
    """Orszag's 2/3 rule: True for the modes kept (``|k| < n/3``) when a quadratic product is formed."""
    k = np.fft.rfftfreq(n, d=1.0 / n) if rfft else np.fft.fftfreq(n, d=1.0 / n)
    return np.abs(k) < n / 3


@dataclass(frozen=True)
class ETDRK4:
    """Precomputed ETDRK4 coefficients for a diagonal linear operator ``L`` and a time step ``h``.

    Args (via :meth:`build`):
        L: Linear operator's Fourier symbol, any shape (broadcast against the state).
        h: Time step.
        contour_points: Points on the complex contour used to evaluate the phi-functions without
            cancellation error near ``hL = 0`` (32 is Kassam & Trefethen's choice, accurate to ~1e-14).
    """

    E: np.ndarray
    E2: np.ndarray
    Q: np.ndarray
    f1: np.ndarray
    f2: np.ndarray
    f3: np.ndarray

    @classmethod
    def build(cls, L: np.ndarray, h: float, contour_points: int = 32) -> ETDRK4:
        L = np.asarray(L)
        r = np.exp(1j * np.pi * (np.arange(1, contour_points + 1) - 0.5) / contour_points)
        LR = h * L[..., None] + r
        eLR = np.exp(LR)
        Q = h * np.mean((np.exp(LR / 2) - 1) / LR, axis=-1).real
        f1 = h * np.mean((-4 - LR + eLR * (4 - 3 * LR + LR**2)) / LR**3, axis=-1).real
        f2 = h * np.mean((2 + LR + eLR * (LR - 2)) / LR**3, axis=-1).real
        f3 = h * np.mean((-4 - 3 * LR - LR**2 + eLR * (4 - LR)) / LR**3, axis=-1).real
        return cls(E=np.exp(h * L), E2=np.exp(h * L / 2), Q=Q, f1=f1, f2=f2, f3=f3)

    def step(self, v: np.ndarray, nonlinear: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Advance the Fourier-space state ``v`` by one step; ``nonlinear`` maps ``v`` to ``N(v)`` in Fourier space."""
        Nv = nonlinear(v)
        a = self.E2 * v + self.Q * Nv
        Na = nonlinear(a)
        b = self.E2 * v + self.Q * Na
        Nb = nonlinear(b)
        c = self.E2 * a + self.Q * (2 * Nb - Nv)
        Nc = nonlinear(c)
        return self.E * v + Nv * self.f1 + 2 * (Na + Nb) * self.f2 + Nc * self.f3
