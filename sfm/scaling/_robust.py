"""The numerical core shared by every scaling law: a sum of positive terms fitted robustly in log space.

Both laws sfm fits are sums of exponentials of linear functions of log-features,

    log E_pred = logsumexp(e, c_1 - p_1 z_1, c_2 - p_2 z_2, ...)      z_k = log(x_k / x_k_ref)

(one term for ``E_inf + A x^-alpha``, two for ``E + A N^-alpha + B D^-beta``), so one loss, one gradient and
one multi-start optimizer serve both. Parameter vectors are laid out ``[e, c_1, p_1, c_2, p_2, ...]``.

Why this shape (Hoffmann et al. 2022, "Training compute-optimal large language models", appendix D.2):
residuals are taken in log space so every point weighs the same whatever its error magnitude; the Huber loss
makes the fit robust to an outlier run; exponentiated coefficients keep every term positive; and L-BFGS is
started from a grid of initial points because the loss is not convex in the exponents.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import ThreadpoolController

# Hoffmann et al. use delta = 1e-3 on log residuals: quadratic only for sub-0.1% misfits, so the fit behaves
# like a least-absolute-deviation (median) fit and one diverged run cannot drag the curve.
HUBER_DELTA = 1e-3


def log_predict(theta: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``log E_pred`` for parameters ``theta`` (..., 1 + 2K) at log-features ``z`` (n, K); shape (..., n)."""
    return _lse(np.asarray(theta, dtype=float), z)[0]


def _lse(theta: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-sum-exp of the terms ``e`` and ``c_k - p_k z_k``, and its derivatives (the softmax weights).

    Hand-written in plain numpy because the optimizer calls it thousands of times on arrays of a dozen
    numbers, where ``scipy.special.logsumexp`` spends ~50x longer in argument handling than in arithmetic.
    Returns ``lse`` (..., n), the weight of the constant (..., n) and of each power term (..., n, K).
    """
    e = theta[..., :1]  # (..., 1)
    powers = theta[..., None, 1::2] - theta[..., None, 2::2] * z  # (..., n, K)
    m = np.maximum(e, powers.max(axis=-1))  # shift by the largest term: no overflow
    ex0 = np.exp(e - m)
    ex = np.exp(powers - m[..., None])
    total = ex0 + ex.sum(axis=-1)
    return m + np.log(total), ex0 / total, ex / total[..., None]


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    """Huber loss of residuals ``r``: quadratic inside ``delta``, linear outside."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def loss_and_grad(
    theta: np.ndarray, z: np.ndarray, logy: np.ndarray, w: np.ndarray, delta: float
) -> tuple[float, np.ndarray]:
    """Weighted mean Huber loss of log residuals and its exact gradient (for L-BFGS)."""
    lse, s0, s = _lse(theta, z)
    r = lse - logy
    wsum = w.sum()
    g = w * np.minimum(np.maximum(r, -delta), delta) / wsum  # d loss / d r
    grad = np.empty_like(theta)
    grad[0] = g @ s0
    grad[1::2] = g @ s
    grad[2::2] = -(g @ (s * z))
    return float(w @ huber(r, delta) / wsum), grad


def grid_losses(grid: np.ndarray, z: np.ndarray, logy: np.ndarray, w: np.ndarray, delta: float) -> np.ndarray:
    """Loss of every row of ``grid`` (G, P) at once, to pick the most promising starts."""
    r = log_predict(grid, z) - logy  # (G, n)
    return huber(r, delta) @ w / w.sum()


def multistart(
    starts: np.ndarray,
    z: np.ndarray,
    logy: np.ndarray,
    w: np.ndarray,
    bounds: list[tuple[float, float]],
    delta: float,
) -> tuple[np.ndarray, float]:
    """Run L-BFGS-B from every row of ``starts``; return the parameters and loss of the best end point."""
    best_theta, best_loss = None, np.inf
    with one_blas_thread():
        for x0 in starts:
            res = minimize(
                loss_and_grad,
                x0,
                args=(z, logy, w, delta),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                # Tighter than scipy's defaults: the loss is ~1e-5..1e-3 in size and the defaults stop visibly
                # short of the optimum (the early stop Besiroglu et al. 2024 found in the Chinchilla fit).
                options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-10},
            )
            if res.fun < best_loss:
                best_theta, best_loss = res.x, float(res.fun)
    return np.asarray(best_theta), best_loss


def fit(
    grid: np.ndarray,
    z: np.ndarray,
    logy: np.ndarray,
    bounds: list[tuple[float, float]],
    *,
    delta: float,
    n_starts: int,
    w: np.ndarray | None = None,
    warm: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Multi-start fit: the ``n_starts`` best grid points (plus a ``warm`` start), refined by L-BFGS-B.

    A bootstrap replicate is warm-started from the fit to all points, where its optimum usually lies, and
    also from its best grid point: a warm start whose floor ``E_inf`` sits at ~0 is on a plateau (the
    gradient in ``e`` vanishes with ``E_inf``), and without a grid start every replicate would stay there,
    collapsing the interval of ``E_inf`` to a point.
    """
    w = np.ones(len(logy)) if w is None else w
    order = np.argsort(grid_losses(grid, z, logy, w, delta))[:n_starts]
    starts = grid[order] if warm is None else np.vstack([warm[None], grid[order]])
    return multistart(starts, z, logy, w, bounds, delta)


def bootstrap(
    n: int,
    n_boot: int,
    rng: np.random.Generator,
    refit: Callable[[np.ndarray], np.ndarray],
    valid: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Refit on ``n_boot`` resamples of the ``n`` points (drawn with replacement); rows of refitted parameters.

    A resample is passed to ``refit`` as a vector of per-point counts (a weighted fit equals a fit on the
    duplicated points, and keeps the arrays the same size). Resamples that ``valid`` rejects (too few
    distinct x values to identify the law) are redrawn, so every replicate is a well-posed fit.
    """
    counts = np.empty((n_boot, n))
    todo = np.arange(n_boot)
    for _ in range(100):  # needs >= 3 distinct values, so a valid draw has positive probability
        if not len(todo):
            break
        idx = rng.integers(0, n, size=(len(todo), n))
        flat = (np.arange(len(todo))[:, None] * n + idx).ravel()  # one bincount for all resamples
        counts[todo] = np.bincount(flat, minlength=len(todo) * n).reshape(len(todo), n)
        todo = todo[~valid(counts[todo])]
    if len(todo):  # pragma: no cover
        raise RuntimeError("could not draw valid bootstrap resamples")
    if n_boot == 0:
        return np.empty((0, 0))
    return np.array([refit(c) for c in counts])


def distinct_with_weight(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Number of distinct ``values`` with non-zero count, per row of ``counts`` (B, n)."""
    _, inverse = np.unique(values, return_inverse=True)
    hit = np.zeros((counts.shape[0], inverse.max() + 1), dtype=bool)
    rows, cols = np.nonzero(counts)
    hit[rows, inverse[cols]] = True
    return hit.sum(axis=1)


def percentile_interval(samples: np.ndarray, ci: float) -> np.ndarray:
    """Percentile bootstrap interval(s) ``[lo, hi]`` along axis 0; infinite samples allowed (no interpolation)."""
    q = [(1 - ci) / 2, (1 + ci) / 2]
    samples = np.asarray(samples, dtype=float)
    method = "linear" if np.isfinite(samples).all() else "inverted_cdf"
    return np.quantile(samples, q, axis=0, method=method)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the BLAS libraries loaded in this process (numpy's and scipy's OpenBLAS) on one thread inside the
    block, restoring their thread counts after.

    L-BFGS-B calls BLAS/LAPACK on vectors of 3-5 numbers thousands of times; waking OpenBLAS worker threads
    for each call made every iteration ~8x slower on a busy 2-core machine (measured: 0.85 s vs 0.10 s per
    fit).
    """
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield


@functools.cache
def _blas_controller() -> ThreadpoolController:
    # Inspecting the loaded libraries costs ~25 ms; a bootstrap enters the block hundreds of times, and
    # limiting through one controller costs ~0.1 ms. scipy.optimize (imported above) has loaded its BLAS.
    return ThreadpoolController()
