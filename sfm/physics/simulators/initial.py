"""Random initial conditions: one implementation per kind, shared by every simulator that offers it.

PDEBench draws initial data as ``u0(x) = sum_i A_i sin(k_i x + phi_i)`` with a few integer wave numbers per
trajectory (:func:`sine_waves_1d`, the default of the 1D simulators). The other kinds, chosen with the
simulator parameter ``ic`` (see :data:`IC_KINDS_1D` and :func:`ic_params_1d`):

* ``fourier``: every wave number ``1..k_max`` present, amplitudes falling like ``k^-spectrum_decay``;
* ``bumps``: ``n_bumps`` periodic Gaussian bumps (:func:`gaussian_bumps`);
* ``fronts``: ``n_plateaus`` raised plateaus, each bounded by a rising and a falling ``tanh`` front;
* 2D vorticity: ``fourier`` (:func:`fourier_2d`) and random Gaussian vortices (:func:`gaussian_vortices`).

Each function takes one ``np.random.Generator`` per trajectory, so a trajectory's initial condition depends
only on its own seed. Widths, radii and strengths are drawn between half the stated value and the value, so
one number sets the scale and the draws still vary. Each kind knows an analytic bound on ``|u0|`` that does
not depend on the grid (:func:`ic_bound_1d`): solvers size their stable time step and their resolution checks
by it, and the ``[0, 1]`` variants (for densities) divide by it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sfm.physics.simulators.params import Param

#: The 1D kinds of initial condition and what each draws (shown by ``sfm list simulators``).
IC_KINDS_1D: dict[str, str] = {
    "sine": "n_waves sine waves, wave numbers drawn in 1..k_max, amplitudes in [0, amplitude] (PDEBench)",
    "fourier": "all wave numbers 1..k_max, amplitude of mode k ~ k^-spectrum_decay, |u0| <= amplitude",
    "bumps": "n_bumps periodic Gaussian bumps of height [amplitude/2, amplitude], width [width/2, width] * L",
    "fronts": "n_plateaus raised plateaus of height [amplitude/2, amplitude] between tanh fronts of width "
    "[width/2, width] * L",
}
#: Widest bump or front, as a fraction of the period: a Gaussian of this width is 4e-6 of its peak half a
#: period away (``exp(-12.5)``), so using its nearest periodic image only leaves no visible kink.
MAX_WIDTH = 0.1


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


def ic_params_1d(*, k_max: int = 4) -> dict[str, Param]:
    """Declarations of the initial-condition parameters of a 1D simulator (every kind's controls).

    Their defaults (``ic: sine``, two waves, ``k_max`` 4, amplitude 1) are the initial data every 1D simulator
    drew before the other kinds existed, so default data sets stay bit-identical.
    """
    return {
        "ic": Param(
            "sine", choices=tuple(IC_KINDS_1D), doc="kind of initial condition: " + ", ".join(IC_KINDS_1D)
        ),
        "k_max": Param(k_max, bounds=(1, 64), integer=True, doc="largest wave number (sine, fourier)"),
        "n_waves": Param(2, bounds=(1, 64), integer=True, doc="number of sine waves (sine)"),
        "amplitude": Param(1.0, bounds=(1e-6, 1e3), doc="amplitude scale of the initial data (all kinds)"),
        "spectrum_decay": Param(1.0, bounds=(0.0, 10.0), doc="mode k has amplitude ~ k^-decay (fourier)"),
        "n_bumps": Param(2, bounds=(1, 64), integer=True, doc="number of Gaussian bumps (bumps)"),
        "n_plateaus": Param(2, bounds=(1, 64), integer=True, doc="number of raised plateaus (fronts)"),
        "width": Param(
            0.05, bounds=(1e-3, MAX_WIDTH), doc="bump or front width as a fraction of L (bumps, fronts)"
        ),
    }


#: Names of :func:`ic_params_1d` (settings of a simulator: never varied per trajectory, never coefficients).
IC_SETTINGS_1D = tuple(ic_params_1d())


def ic_bound_1d(v: dict[str, Any]) -> float:
    """Analytic bound on ``|u0|`` over every draw of the 1D initial condition ``v`` describes."""
    count = {"sine": v["n_waves"], "fourier": 1, "bumps": v["n_bumps"], "fronts": v["n_plateaus"]}[v["ic"]]
    return float(count * v["amplitude"])


def initial_1d(
    rng: np.random.Generator, x: np.ndarray, length: float, v: dict[str, Any], *, unit: bool = False
) -> np.ndarray:
    """One trajectory's initial data of the kind ``v["ic"]`` with the controls in ``v`` (see :func:`ic_params_1d`).

    Args:
        rng: The trajectory's generator.
        x: Grid ``[nx]`` on ``[0, L)``.
        length: Period ``L``.
        v: The simulator's values (``ic`` and its controls).
        unit: Map the data into ``[0, 1]`` by its analytic range (for densities and concentrations): for signed
            kinds ``(1 + u / S) / 2`` with ``S`` the draw's bound, for non-negative kinds ``u / S``.

    Returns:
        ``u0`` ``[nx]``.
    """
    kind, amp = v["ic"], v["amplitude"]
    if kind == "sine":
        f = unit_sine_waves_1d if unit else sine_waves_1d
        return f(rng, x, length, n_waves=v["n_waves"], k_max=v["k_max"], amplitude=amp)
    if kind == "fourier":
        u, bound, signed = fourier_1d(
            rng, x, length, k_max=v["k_max"], decay=v["spectrum_decay"], amplitude=amp
        )
    elif kind == "bumps":
        u, bound, signed = (*gaussian_bumps(rng, [x], length, v["n_bumps"], v["width"], amp), False)
    else:
        u, bound, signed = (*tanh_plateaus(rng, x, length, v["n_plateaus"], v["width"], amp), False)
    if not unit:
        return u
    bound = max(bound, np.finfo(float).tiny)
    return 0.5 * (1.0 + u / bound) if signed else u / bound


def fourier_1d(
    rng: np.random.Generator, x: np.ndarray, length: float, *, k_max: int, decay: float, amplitude: float
) -> tuple[np.ndarray, float, bool]:
    """``amplitude * sum_k a_k sin(2 pi k x / L + phi_k) / sum_k k^-decay`` over every ``k`` in ``1..k_max``,
    ``a_k ~ k^-decay U(0, 1)``.

    The normalization makes ``|u0| <= amplitude`` for every draw; the field has zero mean and no energy above
    ``k_max``. Returns ``(u0, bound of this draw, True)`` (signed).
    """
    k = np.arange(1, k_max + 1)
    scale = k ** (-float(decay))
    a = scale * rng.uniform(0.0, 1.0, size=k_max) * amplitude / scale.sum()
    phi = rng.uniform(0.0, 2 * np.pi, size=k_max)
    return _sum_waves(x, length, k, a, phi), float(a.sum()), True


def _offset(x: np.ndarray, center: float, length: float) -> np.ndarray:
    """Signed distance from ``center`` to each ``x`` through the nearest periodic image, in ``[-L/2, L/2)``."""
    return (x - center + length / 2) % length - length / 2


def gaussian_bumps(
    rng: np.random.Generator,
    axes: list[np.ndarray],
    length: float,
    count: int,
    width: float,
    amplitude: float,
) -> tuple[np.ndarray, float]:
    """``count`` periodic Gaussian bumps ``a_i exp(-|x - c_i|^2 / (2 w_i^2))`` on ``[0, L)^d`` (``d = len(axes)``).

    Centres are uniform, heights ``a_i`` in ``[amplitude/2, amplitude]``, widths ``w_i`` in ``[width/2, width] * L``
    (``width <= MAX_WIDTH``, so the nearest periodic image suffices). Returns ``(u0 [*sizes], sum_i a_i)``: the
    field is non-negative and at most that sum.
    """
    d = len(axes)
    centers = rng.uniform(0.0, length, size=(count, d))
    widths = rng.uniform(0.5 * width, width, size=count) * length
    heights = rng.uniform(0.5 * amplitude, amplitude, size=count)
    return gaussian_sum(axes, length, centers, widths, heights), float(heights.sum())


def gaussian_sum(
    axes: list[np.ndarray],
    length: float,
    centers: np.ndarray,
    widths: np.ndarray,
    heights: np.ndarray | None = None,
) -> np.ndarray:
    """``sum_i h_i exp(-|x - c_i|^2 / (2 w_i^2))`` on the grid ``axes`` (each ``[n_a]``), nearest periodic
    image per axis; ``heights`` None means 1. Returns ``[*sizes]``."""
    out = np.zeros(tuple(len(a) for a in axes))
    for i, (c, w) in enumerate(zip(centers, widths)):
        r2 = sum(
            _offset(a, ci, length).reshape([-1 if j == m else 1 for j in range(len(axes))]) ** 2
            for m, (a, ci) in enumerate(zip(axes, c))
        )
        g = np.exp(-r2 / (2 * w**2))
        out += g if heights is None else heights[i] * g
    return out


def tanh_plateaus(
    rng: np.random.Generator, x: np.ndarray, length: float, count: int, width: float, amplitude: float
) -> tuple[np.ndarray, float]:
    """``count`` raised plateaus ``a_i (tanh((d + h_i) / w_i) - tanh((d - h_i) / w_i)) / 2``, ``d = x - c_i``.

    Each plateau has height ``a_i`` in ``[amplitude/2, amplitude]``, half-width ``h_i`` in ``[0.1, 0.25] * L``
    and fronts of width ``w_i`` in ``[width/2, width] * L``; it rises monotonically to its centre ``c_i`` and
    falls beyond it. ``tanh`` tails decay only like ``exp(-2 |d| / w)``, so the three nearest periodic images
    are summed (the next ones are below ``exp(-25)``). Returns ``(u0 [nx], sum_i a_i)``.
    """
    centers = rng.uniform(0.0, length, size=count)
    half = rng.uniform(0.1, 0.25, size=count) * length
    widths = rng.uniform(0.5 * width, width, size=count) * length
    heights = rng.uniform(0.5 * amplitude, amplitude, size=count)
    u = np.zeros_like(x, dtype=np.float64)
    for c, h, w, a in zip(centers, half, widths, heights):
        d = _offset(x, c, length)
        for image in (-length, 0.0, length):
            u += 0.5 * a * (np.tanh((d + image + h) / w) - np.tanh((d + image - h) / w))
    return u, float(heights.sum())


def fourier_2d(
    rng: np.random.Generator,
    x: np.ndarray,
    y: np.ndarray,
    length: float,
    *,
    k_max: int,
    decay: float,
    amplitude: float,
) -> np.ndarray:
    """The 2D analogue of :func:`fourier_1d`: every wave vector with ``1 <= |k| <= k_max`` (one of each ``+-k``
    pair), amplitude ``~ |k|^-decay U(0, 1)``, normalized so ``|u0| <= amplitude``; zero mean, ``[nx, ny]``."""
    kx, ky = np.meshgrid(np.arange(-k_max, k_max + 1), np.arange(0, k_max + 1), indexing="ij")
    kx, ky = kx.ravel(), ky.ravel()
    kn = np.hypot(kx, ky)
    # One of each pair k, -k: ky > 0, or ky = 0 and kx > 0.
    keep = (kn >= 1) & (kn <= k_max) & ((ky > 0) | (kx > 0))
    kx, ky, kn = kx[keep], ky[keep], kn[keep]
    scale = kn ** (-float(decay))
    a = scale * rng.uniform(0.0, 1.0, size=kx.size) * amplitude / scale.sum()
    phi = rng.uniform(0.0, 2 * np.pi, size=kx.size)
    X, Y = np.meshgrid(x, y, indexing="ij")
    out = np.zeros_like(X)
    for i in range(kx.size):
        out += a[i] * np.sin(2 * np.pi * (kx[i] * X + ky[i] * Y) / length + phi[i])
    return out


def gaussian_vortices(
    rng: np.random.Generator,
    x: np.ndarray,
    y: np.ndarray,
    length: float,
    *,
    count: int,
    radius: float,
    strength: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` Gaussian (Lamb–Oseen) vortices ``w = Gamma_i / (2 pi r_i^2) exp(-|x - c_i|^2 / (2 r_i^2))``.

    Centres uniform on the periodic square, radii ``r_i`` in ``[radius/2, radius] * L``, circulations
    ``|Gamma_i|`` in ``[strength/2, strength]`` with random signs. Each vortex carries circulation
    ``Gamma_i`` (its integral; exact to ``exp(-(L/2)^2 / (2 r^2))`` for ``radius <= MAX_WIDTH``). A net
    circulation is a uniform mean vorticity, which the periodic velocity ignores and the flow keeps.

    Returns:
        ``(w0 [nx, ny], Gamma [count])``.
    """
    centers = rng.uniform(0.0, length, size=(count, 2))
    radii = rng.uniform(0.5 * radius, radius, size=count) * length
    gamma = rng.uniform(0.5 * strength, strength, size=count) * rng.choice([-1.0, 1.0], size=count)
    return gaussian_sum([x, y], length, centers, radii, gamma / (2 * np.pi * radii**2)), gamma
