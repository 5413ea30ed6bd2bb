"""Power-law fits with bootstrap confidence intervals.

Two laws, both fitted by the same robust procedure (:mod:`sfm.scaling._robust`: Huber loss on log residuals,
``E_inf = exp(e)`` and ``A = exp(a)`` so every term stays positive, L-BFGS from the best points of a grid):

* one curve, ``E(x) = E_inf + A * x^-alpha`` (:func:`fit_power_law`), and
* the joint law ``L(N, D) = E + A / N^alpha + B / D^beta`` (:func:`fit_joint`, Hoffmann et al. 2022, eq. 2).

Uncertainty is a percentile bootstrap: the points are resampled with replacement and refitted, and every
parameter (and every quantity derived from them) gets the central ``ci`` interval of its replicates.

Example:
    >>> import numpy as np
    >>> x = np.geomspace(10, 10_000, 12)
    >>> f = fit_power_law(x, 0.05 + 3.0 * x**-0.5, n_bootstrap=20, seed=0)
    >>> round(f.alpha, 3), round(f.E_inf, 4)
    (0.5, 0.05)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sfm.errors import DataError
from sfm.scaling import _robust

# Grid of starting points, in units where x is divided by its geometric mean (so the grid needs no knowledge
# of whether x counts trajectories, parameters or FLOPs). E_inf starts as a fraction of the smallest error,
# the coefficient as a multiple of the median error, the exponent across the range seen in practice (Kaplan
# et al. 2020 report 0.05-0.1 for LMs; PDE surrogates reach ~1).
_FLOOR_FRACTIONS = np.array([0.01, 0.3, 0.7, 0.95])
_COEF_FACTORS = np.array([0.1, 0.5, 1.0, 3.0])
_EXPONENTS = np.array([0.05, 0.2, 0.5, 1.0, 2.0])
_MAX_EXPONENT = 10.0  # per unit log of x/x_ref; a law steeper than x^-10 is a step, not a power law
_LOG_SPAN = 30.0  # how far below the smallest error a term may fall (e^-30: numerically zero)
_N_STARTS = 6  # grid points refined for the main fit
_N_STARTS_BOOT = 1  # ... and per bootstrap replicate, which also starts from the main fit


@dataclass(frozen=True)
class PowerLawFit:
    """A fitted curve ``E(x) = E_inf + A * x^-alpha`` with bootstrap replicates.

    Attributes:
        E_inf: Irreducible error (the asymptote as x grows).
        A: Coefficient, in the units of x as given.
        alpha: Exponent.
        intervals: ``{"E_inf" | "A" | "alpha": (lo, hi)}`` percentile intervals at level ``ci``.
        x, y: The points fitted.
        r2_log: Coefficient of determination of log y.
        residuals_log: ``log E_pred - log y`` per point.
        loss: Mean Huber loss at the optimum.
        boot: Bootstrap replicates, rows ``(log E_inf, log A, alpha)``.
        ci: Interval level.
        huber_delta: Huber threshold used.
    """

    E_inf: float
    A: float
    alpha: float
    intervals: dict[str, tuple[float, float]]
    x: np.ndarray
    y: np.ndarray
    r2_log: float
    residuals_log: np.ndarray
    loss: float
    boot: np.ndarray = field(repr=False)
    ci: float = 0.95
    huber_delta: float = _robust.HUBER_DELTA

    @property
    def params(self) -> dict[str, float]:
        """The fitted parameters by name."""
        return {"E_inf": self.E_inf, "A": self.A, "alpha": self.alpha}

    @property
    def x_range(self) -> tuple[float, float]:
        """The measured range of x; anything derived outside it is an extrapolation."""
        return float(self.x.min()), float(self.x.max())

    def extrapolated(self, x: Any) -> np.ndarray:
        """True where ``x`` lies outside the measured range."""
        lo, hi = self.x_range
        x = np.asarray(x, dtype=float)
        return (x < lo * (1 - 1e-12)) | (x > hi * (1 + 1e-12))

    def predict(self, x: Any) -> np.ndarray:
        """``E_inf + A * x^-alpha``."""
        return _curve(np.log(self.E_inf), np.log(self.A), self.alpha, x)

    def predict_samples(self, x: Any) -> np.ndarray:
        """Predictions of every bootstrap replicate, shape ``(n_bootstrap, *x.shape)``."""
        b = self.boot
        return _curve(b[:, :1], b[:, 1:2], b[:, 2:3], np.ravel(x)).reshape(len(b), *np.shape(x))

    def predict_band(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise bootstrap confidence band ``(lo, hi)`` of the curve at ``x``."""
        lo, hi = _robust.percentile_interval(self.predict_samples(x), self.ci)
        return lo, hi

    def inverse(self, target: Any) -> np.ndarray:
        """The x at which the curve reaches error ``target``; ``inf`` where ``target <= E_inf`` (never)."""
        return _inverse(np.log(self.E_inf), np.log(self.A), self.alpha, target)

    def inverse_samples(self, target: float) -> np.ndarray:
        """:meth:`inverse` for every bootstrap replicate, shape ``(n_bootstrap,)``."""
        b = self.boot
        return _inverse(b[:, 0], b[:, 1], b[:, 2], target)


@dataclass(frozen=True)
class JointFit:
    """A fitted joint law ``L(N, D) = E + A / N^alpha + B / D^beta`` with bootstrap replicates.

    Attributes:
        E, A, alpha, B, beta: The parameters (A in units of N, B in units of D).
        intervals: Percentile intervals of every parameter at level ``ci``.
        N, D, y: The points fitted.
        r2_log, residuals_log, loss: Goodness of fit in log space.
        boot: Bootstrap replicates, rows ``(log E, log A, alpha, log B, beta)``.
    """

    E: float
    A: float
    alpha: float
    B: float
    beta: float
    intervals: dict[str, tuple[float, float]]
    N: np.ndarray
    D: np.ndarray
    y: np.ndarray
    r2_log: float
    residuals_log: np.ndarray
    loss: float
    boot: np.ndarray = field(repr=False)
    ci: float = 0.95
    huber_delta: float = _robust.HUBER_DELTA

    @property
    def params(self) -> dict[str, float]:
        """The fitted parameters by name."""
        return {"E": self.E, "A": self.A, "alpha": self.alpha, "B": self.B, "beta": self.beta}

    @property
    def N_range(self) -> tuple[float, float]:
        """The measured range of N."""
        return float(self.N.min()), float(self.N.max())

    @property
    def D_range(self) -> tuple[float, float]:
        """The measured range of D."""
        return float(self.D.min()), float(self.D.max())

    def predict(self, N: Any, D: Any) -> np.ndarray:
        """``E + A / N^alpha + B / D^beta``."""
        theta = np.log([self.E, self.A, self.B])
        return _joint(theta[0], theta[1], self.alpha, theta[2], self.beta, N, D)


def _curve(e: Any, a: Any, alpha: Any, x: Any) -> np.ndarray:
    # Summed in log space so huge x (FLOPs ~1e24) or huge A cannot overflow.
    return np.exp(np.logaddexp(e, a - alpha * np.log(np.asarray(x, dtype=float))))


def _joint(e: Any, a: Any, alpha: Any, b: Any, beta: Any, N: Any, D: Any) -> np.ndarray:
    lN, lD = np.log(np.asarray(N, dtype=float)), np.log(np.asarray(D, dtype=float))
    return np.exp(np.logaddexp(e, np.logaddexp(a - alpha * lN, b - beta * lD)))


def _inverse(e: Any, a: Any, alpha: Any, target: Any) -> np.ndarray:
    # E_inf + A x^-alpha = t  <=>  x = (A / (t - E_inf))^(1/alpha), which exists only for t > E_inf.
    t = np.asarray(target, dtype=float)
    gap = t - np.exp(e)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = np.exp((a - np.log(np.where(gap > 0, gap, 1.0))) / alpha)
    return np.where(gap > 0, x, np.inf)


def fit_power_law(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    *,
    n_bootstrap: int = 500,
    seed: int | Sequence[int] = 0,
    ci: float = 0.95,
    huber_delta: float = _robust.HUBER_DELTA,
    label: str = "curve",
    x_name: str = "x",
) -> PowerLawFit:
    """Fit ``E(x) = E_inf + A * x^-alpha`` robustly in log space, with bootstrap intervals.

    Args:
        x: Positive abscissae (data size, parameters, compute, steps).
        y: Positive errors, one per x.
        n_bootstrap: Bootstrap replicates (0 disables intervals: they are then the point estimate).
        seed: Seed of the resampling (an int or a sequence of ints), so intervals are reproducible.
        ci: Interval level, e.g. 0.95.
        huber_delta: Huber threshold on log residuals.
        label: Names the curve in error messages.
        x_name: Names x in error messages (``"data_size"``).

    Raises:
        DataError: Non-finite or non-positive values (naming the points), fewer than 4 points or 3 distinct
            x values, or a curve that does not decrease (the exponent is then not identifiable).
    """
    x, y = _check_xy(x, y, label, name=x_name)
    _check_settings(n_bootstrap, ci, huber_delta)
    _require_points(len(x), n_params=3, label=label)
    if np.unique(x).size < 3:
        raise DataError(
            f"{label}: {x_name} takes {np.unique(x).size} distinct values; a 3-parameter law needs >= 3"
        )
    lx, logy = np.log(x), np.log(y)
    _require_decrease(lx[:, None], logy, [x_name], label)
    x_ref = lx.mean()  # geometric mean: centres the grid and decorrelates the coefficient from the exponent
    z = (lx - x_ref)[:, None]
    grid, bounds = _grid(logy, n_terms=1)
    theta, loss = _robust.fit(grid, z, logy, bounds, delta=huber_delta, n_starts=_N_STARTS)

    def refit(w: np.ndarray) -> np.ndarray:
        t, _ = _robust.fit(grid, z, logy, bounds, delta=huber_delta, n_starts=_N_STARTS_BOOT, w=w, warm=theta)
        return t

    rng = np.random.default_rng(seed)
    boot = _robust.bootstrap(
        len(x), n_bootstrap, rng, refit, lambda c: _robust.distinct_with_weight(x, c) >= 3
    )
    boot = _to_units(theta[None] if n_bootstrap == 0 else boot, np.array([x_ref]))
    nat = _to_units(theta[None], np.array([x_ref]))[0]
    r = _robust.log_predict(theta, z) - logy
    return PowerLawFit(
        E_inf=float(np.exp(nat[0])),
        A=float(np.exp(nat[1])),
        alpha=float(nat[2]),
        intervals=_intervals(boot, ("E_inf", "A", "alpha"), ci),
        x=x,
        y=y,
        r2_log=_r2(r, logy),
        residuals_log=r,
        loss=loss,
        boot=boot,
        ci=ci,
        huber_delta=huber_delta,
    )


def fit_joint(
    N: Sequence[float] | np.ndarray,
    D: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    *,
    n_bootstrap: int = 500,
    seed: int | Sequence[int] = 0,
    ci: float = 0.95,
    huber_delta: float = _robust.HUBER_DELTA,
    label: str = "joint fit",
    N_name: str = "N",
    D_name: str = "D",
) -> JointFit:
    """Fit ``L(N, D) = E + A / N^alpha + B / D^beta`` over points where both N and D vary.

    Args:
        N: Model sizes (parameters), positive.
        D: Data amounts (tokens or samples), positive.
        y: Positive errors, one per (N, D).
        n_bootstrap, seed, ci, huber_delta, label: As in :func:`fit_power_law`.
        N_name, D_name: Name N and D in error messages (``"params"``, ``"tokens"``).

    Raises:
        DataError: Bad values, fewer than 6 points, fewer than 3 distinct N or D, or an error that does not
            decrease with N or with D.
    """
    N, y = _check_xy(N, y, label, name=N_name)
    D, _ = _check_xy(D, y, label, name=D_name)
    _check_settings(n_bootstrap, ci, huber_delta)
    _require_points(len(y), n_params=5, label=label)
    for name, v in ((N_name, N), (D_name, D)):
        if np.unique(v).size < 3:
            raise DataError(
                f"{label}: {name} takes {np.unique(v).size} distinct values; the joint law needs >= 3"
            )
    lz, logy = np.log(np.column_stack([N, D])), np.log(y)
    _require_decrease(lz, logy, [N_name, D_name], label)
    ref = lz.mean(axis=0)
    z = lz - ref
    grid, bounds = _grid(logy, n_terms=2)
    theta, loss = _robust.fit(grid, z, logy, bounds, delta=huber_delta, n_starts=_N_STARTS)

    def refit(w: np.ndarray) -> np.ndarray:
        t, _ = _robust.fit(grid, z, logy, bounds, delta=huber_delta, n_starts=_N_STARTS_BOOT, w=w, warm=theta)
        return t

    def valid(c: np.ndarray) -> np.ndarray:
        return (_robust.distinct_with_weight(N, c) >= 3) & (_robust.distinct_with_weight(D, c) >= 3)

    boot = _robust.bootstrap(len(y), n_bootstrap, np.random.default_rng(seed), refit, valid)
    boot = _to_units(theta[None] if n_bootstrap == 0 else boot, ref)
    nat = _to_units(theta[None], ref)[0]
    r = _robust.log_predict(theta, z) - logy
    E, A, alpha, B, beta = np.exp(nat[0]), np.exp(nat[1]), nat[2], np.exp(nat[3]), nat[4]
    return JointFit(
        E=float(E),
        A=float(A),
        alpha=float(alpha),
        B=float(B),
        beta=float(beta),
        intervals=_intervals(boot, ("E", "A", "alpha", "B", "beta"), ci),
        N=N,
        D=D,
        y=y,
        r2_log=_r2(r, logy),
        residuals_log=r,
        loss=loss,
        boot=boot,
        ci=ci,
        huber_delta=huber_delta,
    )


def _grid(logy: np.ndarray, n_terms: int) -> tuple[np.ndarray, list[tuple[float, float]]]:
    lo, med, hi = logy.min(), np.median(logy), logy.max()
    e0 = lo + np.log(_FLOOR_FRACTIONS)
    c0 = med + np.log(_COEF_FACTORS)
    axes = [e0] + [c0, _EXPONENTS] * n_terms
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(axes))
    bounds = [(lo - _LOG_SPAN, hi + 1.0)] + [(lo - _LOG_SPAN, hi + _LOG_SPAN), (0.0, _MAX_EXPONENT)] * n_terms
    return grid, bounds


def _to_units(theta: np.ndarray, ref: np.ndarray) -> np.ndarray:
    # Fitted on z = log x - ref: A' (x/x_ref)^-p = (A' x_ref^p) x^-p, so log A = log A' + p * ref.
    out = np.array(theta, dtype=float)
    out[:, 1::2] += out[:, 2::2] * ref
    return out


def _intervals(boot: np.ndarray, names: tuple[str, ...], ci: float) -> dict[str, tuple[float, float]]:
    lo, hi = _robust.percentile_interval(boot, ci)
    # Columns 0, 1, 3 hold logs (of E, A, B); columns 2, 4 exponents. exp is monotone, so percentiles commute.
    conv = [np.exp if i in (0, 1, 3) else float for i in range(len(names))]
    return {name: (float(conv[i](lo[i])), float(conv[i](hi[i]))) for i, name in enumerate(names)}


def _r2(r: np.ndarray, logy: np.ndarray) -> float:
    ss_tot = float(((logy - logy.mean()) ** 2).sum())
    return 1.0 - float((r**2).sum()) / ss_tot if ss_tot > 0 else float("nan")


def _check_xy(x: Any, y: Any, label: str, name: str = "x") -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise DataError(f"{label}: {name} has {x.size} values but the error has {y.size}")
    for what, v in ((name, x), ("error", y)):
        bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
        if bad.size:
            shown = ", ".join(f"{i} ({v[i]:g})" for i in bad[:8]) + (", ..." if bad.size > 8 else "")
            raise DataError(f"{label}: {what} must be finite and > 0; bad points (0-based): {shown}")
    return x, y


def _check_settings(n_bootstrap: int, ci: float, delta: float) -> None:
    if int(n_bootstrap) != n_bootstrap or n_bootstrap < 0:
        raise DataError(f"n_bootstrap must be a non-negative integer, got {n_bootstrap!r}")
    if not 0 < ci < 1:
        raise DataError(f"ci must lie strictly between 0 and 1, got {ci!r}")
    if not delta > 0:
        raise DataError(f"huber_delta must be > 0, got {delta!r}")


def _require_points(n: int, n_params: int, label: str) -> None:
    if n < n_params + 1:
        raise DataError(
            f"{label}: {n} points are too few to fit {n_params} parameters; need at least {n_params + 1}"
        )


def _require_decrease(lz: np.ndarray, logy: np.ndarray, names: list[str], label: str) -> None:
    """Refuse a curve whose error does not fall with each axis: its exponent would be pure noise.

    The test is an ordinary least-squares fit of log y on the log axes: each slope must be negative by more
    than two standard errors. A noisy plateau, a rising curve and a constant all fail it.
    """
    X = np.column_stack([np.ones(len(logy)), lz])
    coef, *_ = np.linalg.lstsq(X, logy, rcond=None)
    dof = max(len(logy) - X.shape[1], 1)
    sigma2 = float(((logy - X @ coef) ** 2).sum()) / dof
    cov = sigma2 * np.linalg.pinv(X.T @ X)
    for k, name in enumerate(names, start=1):
        slope, se = coef[k], float(np.sqrt(max(cov[k, k], 0.0)))
        if not slope + 2 * se < 0:
            raise DataError(
                f"{label}: the error does not decrease with {name} (log-log slope {slope:+.3g} ± {se:.2g} over "
                f"{len(logy)} points); its exponent is not identifiable"
            )
