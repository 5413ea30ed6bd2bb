"""Shared pieces of the periodic pseudo-spectral solvers: wave numbers, dealiasing, ETDRK4.

ETDRK4 (Cox & Matthews 2002, with the contour-integral evaluation of Kassam & Trefethen 2005) integrates
``v_t = L v + N(v)`` exactly in the stiff linear part ``L`` (diagonal in Fourier space) and to fourth order in
the nonlinear part. The linear operator may differ per trajectory (``L`` shaped ``[batch, *modes]``), so a
batch with per-trajectory viscosities is still one vectorized step. ``L`` may be complex (dispersion
``i k^3``), and :func:`etdrk4_march` steps a batch to a list of output times. :func:`etdrk4_periodic_1d` is
the whole 1D pseudo-spectral solve (dealiased state, dealiased nonlinear term) the Burgers, KdV and
diffusion-reaction simulators share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sfm.errors import ConfigError, DataError


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
        if np.iscomplexobj(L):
            # A complex symbol (dispersion i k^3, advection i k) has no conjugate symmetry to exploit: average
            # over the full circle (twice the points, the same accuracy) and keep the complex mean.
            m = 2 * contour_points
            r = np.exp(2j * np.pi * (np.arange(1, m + 1) - 0.5) / m)
            part = _identity
        else:
            # Real L: the upper half circle plus taking the real part equals the full-circle mean.
            r = np.exp(1j * np.pi * (np.arange(1, contour_points + 1) - 0.5) / contour_points)
            part = np.real
        LR = h * L[..., None] + r
        eLR = np.exp(LR)
        Q = h * part(np.mean((np.exp(LR / 2) - 1) / LR, axis=-1))
        f1 = h * part(np.mean((-4 - LR + eLR * (4 - 3 * LR + LR**2)) / LR**3, axis=-1))
        f2 = h * part(np.mean((2 + LR + eLR * (LR - 2)) / LR**3, axis=-1))
        f3 = h * part(np.mean((-4 - 3 * LR - LR**2 + eLR * (4 - LR)) / LR**3, axis=-1))
        return cls(E=np.exp(h * L), E2=np.exp(h * L / 2), Q=Q, f1=f1, f2=f2, f3=f3)

    def step(self, v: np.ndarray, nonlinear: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Advance the Fourier-space state ``v`` by one step; ``nonlinear`` maps ``v`` to ``N(v)`` in Fourier space."""
        Nv = nonlinear(v)
        E2v = self.E2 * v
        a = E2v + self.Q * Nv
        Na = nonlinear(a)
        b = E2v + self.Q * Na
        Nb = nonlinear(b)
        c = self.E2 * a + self.Q * (2 * Nb - Nv)
        Nc = nonlinear(c)
        return self.E * v + Nv * self.f1 + 2 * (Na + Nb) * self.f2 + Nc * self.f3


def _identity(z: np.ndarray) -> np.ndarray:
    return z


def etdrk4_march(
    v_hat: np.ndarray,
    L: np.ndarray,
    nonlinear: Callable[[np.ndarray], np.ndarray],
    t_out: np.ndarray,
    dt: float,
    to_physical: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Advance a batch of Fourier states from ``t = 0`` with ETDRK4; return ``to_physical`` of each output.

    Each interval between outputs is split into equal steps no longer than ``dt``, so outputs fall exactly on
    step boundaries and a trajectory never depends on which others share its batch.

    Args:
        v_hat: Fourier state ``[n, *modes]`` at ``t = 0``.
        L: Linear symbol broadcastable to ``v_hat``, with a leading batch axis of ``n`` or 1 (a per-trajectory
            coefficient gives one row per trajectory).
        nonlinear: ``N(v_hat)`` in Fourier space, same shape as ``v_hat``.
        t_out: Non-decreasing output times ``[nt]``, all ``>= 0``.
        dt: Largest step.
        to_physical: Maps a state ``[n, *modes]`` to physical values ``[n, *space]``.

    Returns:
        ``[n, nt, *space]`` physical values at ``t_out``.

    Raises:
        ConfigError: ``t_out`` is not non-decreasing and ``>= 0`` or ``dt`` is not positive.
    """
    t_out = np.asarray(t_out, dtype=np.float64)
    if t_out.ndim != 1 or t_out.size == 0 or t_out[0] < 0 or np.any(np.diff(t_out) < 0):
        raise ConfigError(f"t_out must be a non-empty, non-decreasing list of times >= 0, got {t_out!r}")
    if not (np.isfinite(dt) and dt > 0):
        raise ConfigError(f"time step dt must be a positive number, got {dt!r}")
    first = to_physical(v_hat)
    out = np.empty((first.shape[0], t_out.size, *first.shape[1:]), dtype=first.dtype)
    t, scheme, h_built = 0.0, None, None
    for i, target in enumerate(t_out):
        span = target - t
        # The (1 - 1e-12) keeps a span of exactly k*dt (up to roundoff) at k steps rather than k + 1.
        steps = int(np.ceil(span / dt * (1 - 1e-12))) if span > 0 else 0
        if steps:
            h = span / steps
            # Spans of a uniform grid differ only in roundoff: reuse the coefficients rather than rebuild
            # (the time error this adds is ~1e-12 h per step, far below the scheme's).
            if h_built is None or abs(h - h_built) > 1e-12 * h:
                scheme, h_built = _build_rows(np.asarray(L), h), h
            for _ in range(steps):
                v_hat = scheme.step(v_hat, nonlinear)
        out[:, i] = to_physical(v_hat)
        t = target
    return out


def _build_rows(L: np.ndarray, h: float, max_elements: int = 1 << 21) -> ETDRK4:
    """ETDRK4 coefficients for ``L [n, ...]``: once if all rows agree, else in blocks of rows.

    Blocks bound the ``[rows, ..., contour]`` temporary (``max_elements`` complex numbers, 32 MiB).
    """
    if L.ndim == 0 or L.shape[0] == 1 or np.all(L[:1] == L):
        return ETDRK4.build(L[:1] if L.ndim else L, h)
    per_row = max(1, int(np.prod(L.shape[1:])) * 64)
    rows = max(1, max_elements // per_row)
    parts = [ETDRK4.build(L[i : i + rows], h) for i in range(0, L.shape[0], rows)]
    return ETDRK4(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in ("E", "E2", "Q", "f1", "f2", "f3"))
    )


def etdrk4_periodic_1d(
    u0: np.ndarray,
    length: float,
    t_out: np.ndarray,
    dt: float,
    *,
    linear: Callable[[np.ndarray], np.ndarray],
    multiplier: Callable[[np.ndarray], np.ndarray],
    pointwise: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Solve ``u_t = L u + M g(u)`` on the periodic interval ``[0, L)`` pseudo-spectrally with ETDRK4.

    ``L`` and ``M`` are Fourier multipliers (functions of the angular wave numbers ``k``), ``g`` acts point by
    point in physical space: Burgers' flux ``-(u^2/2)_x`` is ``M = -i k / 2``, ``g(u) = u^2``; a logistic
    reaction ``rho u (1 - u)`` is ``M = rho``, ``g(u) = u - u^2``. Orszag's 2/3 rule is applied to the initial
    state and to ``M g(u)``, so a quadratic ``g`` produces no aliasing.

    Args:
        u0: Checked initial data ``[n, nx]`` on the grid ``x_i = i L / nx``; its projection onto the dealiased
            modes (``|k| < nx/3``) is the state the scheme evolves.
        length: Period ``L``.
        t_out: Non-decreasing output times ``[nt]`` (>= 0); the solve starts at ``t = 0``.
        dt: Largest time step (see :func:`etdrk4_march`).
        linear: ``k [modes] -> L`` broadcastable to ``[n, modes]`` (one row per trajectory, or one for all).
        multiplier: ``k [modes] -> M`` broadcastable to ``[n, modes]``.
        pointwise: ``u [n, nx] -> g(u) [n, nx]``.

    Returns:
        ``u`` ``[n, nt, nx]`` float64 at ``t_out``.
    """
    nx = u0.shape[1]
    k = rfft_wavenumbers(nx, length)
    mask = dealias_mask(nx)
    symbol = multiplier(k) * mask

    def nonlinear(v: np.ndarray) -> np.ndarray:
        return symbol * np.fft.rfft(pointwise(np.fft.irfft(v, n=nx)))

    return etdrk4_march(
        np.fft.rfft(u0) * mask, linear(k), nonlinear, t_out, dt, lambda v: np.fft.irfft(v, n=nx)
    )


def periodic_grid(n: int, length: float) -> np.ndarray:
    """Grid points ``x_i = i L / n``, ``i = 0..n-1``, of the periodic interval ``[0, L)``."""
    return np.arange(n) * (length / n)


def _batch_1d(u0: np.ndarray, **coefficients: np.ndarray | float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Check a batch of 1D initial data ``[n, nx]`` and broadcast each coefficient to ``[n]`` (float64).

    Raises:
        DataError: ``u0`` is not ``[n, nx]`` or has non-finite values.
        ConfigError: a coefficient does not broadcast to ``[n]`` or is not finite.
    """
    u0 = np.asarray(u0, dtype=np.float64)
    if u0.ndim != 2 or u0.shape[1] < 2:
        raise DataError(f"initial data must be shaped [n, nx] with nx >= 2, got shape {u0.shape}")
    if not np.all(np.isfinite(u0)):
        raise DataError(f"initial data has {int(np.sum(~np.isfinite(u0)))} non-finite values (NaN or inf)")
    out = {}
    for name, value in coefficients.items():
        arr = np.asarray(value, dtype=np.float64)
        try:
            arr = np.broadcast_to(arr, (u0.shape[0],))
        except ValueError:
            raise ConfigError(
                f"{name} must be a number or one value per trajectory ({u0.shape[0]}), got shape {arr.shape}"
            ) from None
        if not np.all(np.isfinite(arr)):
            raise ConfigError(f"{name} must be finite, got {value!r}")
        out[name] = arr
    return u0, out
