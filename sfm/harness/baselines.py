"""Baselines scored beside every model, in the same results schema.

Each baseline maps context frames ``[n, k, C, *space]`` to ``n_frames`` predicted frames
``[n, n_frames, C, *space]`` on the grid the model sees:

* ``persistence``: the last context frame, repeated (the reference of the leaderboard's relative score);
* ``linear``: linear extrapolation in time from the last two context frames;
* ``mean``: the training-set mean field (per grid point, over all training frames);
* ``coarse_solver``: the data set's own simulator, restarted from the last context frame on a grid
  ``coarsen`` times coarser and interpolated back (spectrally on periodic axes), i.e. what a cheaper run of
  the reference solver achieves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sfm.errors import ConfigError
from sfm.physics.metadata import FieldMeta
from sfm.registry import BASELINES


@dataclass
class RolloutInfo:
    """What a baseline may know besides the context frames.

    Attributes:
        meta: The data set's metadata.
        dt: Time between the frames the model sees.
        space_stride: Grid subsampling applied to the stored fields.
        coefficients: Per example, the PDE coefficients (fixed and varying).
        train_mean: Training-set mean field ``[C, *space]`` on the model's grid (None if unknown).
        coarsen: Grid coarsening factor of the coarse solver.
    """

    meta: FieldMeta
    dt: float
    space_stride: int = 1
    coefficients: list[dict[str, float]] = field(default_factory=list)
    train_mean: np.ndarray | None = None
    coarsen: int = 2


@BASELINES.register("persistence", description="repeat the last context frame")
def persistence(context: np.ndarray, n_frames: int, info: RolloutInfo) -> np.ndarray:
    last = context[:, -1:]
    return np.repeat(last, n_frames, axis=1)


@BASELINES.register("linear", description="linear extrapolation from the last two context frames")
def linear(context: np.ndarray, n_frames: int, info: RolloutInfo) -> np.ndarray:
    if context.shape[1] < 2:
        return persistence(context, n_frames, info)
    last, prev = context[:, -1:], context[:, -2:-1]
    steps = np.arange(1, n_frames + 1).reshape((1, n_frames) + (1,) * (context.ndim - 2))
    return last + steps * (last - prev)


@BASELINES.register("mean", description="training-set mean field")
def mean(context: np.ndarray, n_frames: int, info: RolloutInfo) -> np.ndarray:
    if info.train_mean is None:
        raise ConfigError("baseline 'mean' needs the training split's mean field")
    out = np.broadcast_to(info.train_mean, (context.shape[0], n_frames, *info.train_mean.shape))
    return np.array(out)


@BASELINES.register(
    "coarse_solver", description="the reference solver on a coarser grid, from the last frame"
)
def coarse_solver(context: np.ndarray, n_frames: int, info: RolloutInfo) -> np.ndarray:
    from sfm.physics.simulators.base import get_simulator

    meta = info.meta
    src = meta.source
    if src.get("kind") != "generator":
        raise ConfigError(f"baseline 'coarse_solver' needs a generated data set; {meta.family} was imported")
    params = dict(src.get("params", {}))
    sim_name = src["name"]
    axes = meta.spatial_axes
    space = context.shape[3:]
    coarse = tuple(max(4, s // info.coarsen) for s in space)
    for axis, n in zip(axes, coarse):
        params[f"n{axis}"] = n
    # strict=False: the coarse grid is under-resolved on purpose; only stability limits apply.
    known = _param_names(sim_name)
    sim = get_simulator(sim_name, strict=False, **{k: v for k, v in params.items() if k in known})
    last = context[:, -1]  # [n, C, *space]
    state = {f: _resample(last[:, c], coarse, meta, axes) for c, f in enumerate(meta.fields)}
    coeffs = {k: np.array([c[k] for c in info.coefficients]) for k in sim.varying}
    t_out = info.dt * np.arange(1, n_frames + 1)
    out = sim.evolve(state, coeffs, t_out)  # field -> [n, T, *coarse]
    frames = [
        np.stack([_resample(out[f][:, t], space, meta, axes) for t in range(n_frames)], axis=1)
        for f in meta.fields
    ]
    return np.stack(frames, axis=2)


def _param_names(sim_name: str) -> set[str]:
    from sfm.registry import SIMULATORS

    return set(SIMULATORS.get(sim_name).params)


def _resample(u: np.ndarray, shape: tuple[int, ...], meta: FieldMeta, axes: list[str]) -> np.ndarray:
    """Resample ``[n, *space]`` to ``shape``: Fourier interpolation on periodic axes, linear otherwise."""
    out = u
    for i, (axis, n_new) in enumerate(zip(axes, shape)):
        ax = i + 1
        n_old = out.shape[ax]
        if n_old == n_new:
            continue
        if meta.boundary_conditions.get(axis, "") == "periodic":
            out = _fourier_resample(out, n_new, ax)
        else:
            x_old = np.linspace(0.0, 1.0, n_old)
            x_new = np.linspace(0.0, 1.0, n_new)
            out = np.apply_along_axis(lambda v, xo=x_old, xn=x_new: np.interp(xn, xo, v), ax, out)
    return out


def _fourier_resample(u: np.ndarray, n_new: int, axis: int) -> np.ndarray:
    """Band-limited resampling of periodic samples along ``axis`` (exact for modes both grids resolve)."""
    n_old = u.shape[axis]
    spec = np.moveaxis(np.fft.rfft(u, axis=axis), axis, -1)
    m = min(n_old, n_new)
    keep = m // 2 + 1
    new = np.zeros((*spec.shape[:-1], n_new // 2 + 1), dtype=complex)
    new[..., :keep] = spec[..., :keep]
    if m % 2 == 0:  # mode m/2 is the Nyquist mode of the coarser grid, where only its cosine part exists
        if n_new > n_old:
            new[..., m // 2] *= 0.5  # split the coarse Nyquist cosine evenly between +k and -k
        elif n_new < n_old:
            new[..., m // 2] = 2 * new[..., m // 2].real  # fold +k and -k onto the coarse Nyquist cosine
    out = np.fft.irfft(new, n=n_new, axis=-1) * (n_new / n_old)
    return np.moveaxis(out, -1, axis)


def training_mean(arrays: dict[str, np.ndarray], fields: list[str]) -> np.ndarray:
    """Mean over trajectories and time of each field: ``[C, *space]``."""
    return np.stack([np.asarray(arrays[f], dtype=np.float64).mean(axis=(0, 1)) for f in fields])


def get_baseline(name: str) -> Any:
    """The baseline function registered as ``name``."""
    return BASELINES.get(name)
