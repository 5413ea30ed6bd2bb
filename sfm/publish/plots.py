"""Plots shared by the leaderboard page and the model cards.

Every function returns a :class:`matplotlib.figure.Figure` built without ``pyplot``: no global figure list to
leak, no dependence on the user's interactive backend, safe to call from any thread. :func:`png_bytes`
renders a figure with the Agg backend and :func:`data_uri` turns the PNG into a ``data:`` URI, so an HTML page
can embed it with no external file.

Missing numbers (``None`` in the results JSON, which has no NaN) are drawn as gaps, never as zeros.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sfm.errors import DataError

DPI = 100  # 6.4 x 4 inches at 100 dpi: ~20-40 kB per PNG, sharp enough in a browser and on the Hub
REFERENCE_STYLE = {"color": "0.35", "linestyle": "--"}
TARGET_STYLE = {"color": "black", "linewidth": 1.6}


def png_bytes(fig: Figure, *, dpi: int = DPI) -> bytes:
    """Render ``fig`` to PNG bytes with the Agg backend."""
    FigureCanvasAgg(fig)  # attach an Agg canvas: savefig then needs no pyplot backend
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI embedding ``png`` (for self-contained HTML)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def as_float_array(values: Iterable[float | None]) -> np.ndarray:
    """Numbers as float64, with ``None`` as NaN (drawn as a gap)."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _use_log(ax, arrays: Iterable[np.ndarray]) -> None:
    # Errors of a rollout or a noise sweep span decades; a log axis keeps the small ones readable. Only when
    # every drawn value is positive (a zero error or an R² below zero has no logarithm).
    vals = np.concatenate([a[np.isfinite(a)] for a in arrays] or [np.zeros(0)])
    if vals.size and (vals > 0).all() and vals.max() / vals.min() > 10:
        ax.set_yscale("log")


def _line_style(name: str, dashed: Iterable[str], colors: Mapping[str, str] | None) -> dict[str, object]:
    style: dict[str, object] = (
        {"linestyle": "--", "linewidth": 1.2} if name in set(dashed) else {"linewidth": 2.0}
    )
    if colors and name in colors:
        style["color"] = colors[name]
    return style


def plot_error_curves(
    curves: Mapping[str, Sequence[float | None]],
    *,
    metric: str,
    title: str = "",
    dashed: Iterable[str] = (),
    colors: Mapping[str, str] | None = None,
) -> Figure:
    """Error against rollout time: one line per predictor, x = predicted frame 1..F.

    Args:
        curves: Predictor name -> the metric on each predicted frame (``Scores.curves[metric]``).
        metric: The metric's name (y label).
        title: Figure title.
        dashed: Names drawn dashed (baselines), so models stand out.
        colors: Name -> colour, to keep one colour per predictor across figures.
    """
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    drawn = []
    dashed = list(dashed)
    for name, values in curves.items():
        y = as_float_array(values)
        style = _line_style(name, dashed, colors)
        ax.plot(np.arange(1, len(y) + 1), y, marker="o", markersize=3, label=name, **style)
        drawn.append(y)
    _use_log(ax, drawn)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("predicted frame (rollout step)")
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_noise_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float | None]]],
    *,
    metric: str,
    title: str = "",
    dashed: Iterable[str] = (),
    colors: Mapping[str, str] | None = None,
) -> Figure:
    """Robustness: the metric against the input noise level, one line per predictor.

    Args:
        curves: Predictor name -> (noise levels, metric at each level), from ``extra["noise_curve"]``.
        metric: The metric's name (y label).
        title: Figure title.
        dashed: Names drawn dashed (baselines).
        colors: Name -> colour, to keep one colour per predictor across figures.
    """
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    drawn = []
    dashed = list(dashed)
    for name, (levels, values) in curves.items():
        y = as_float_array(values)
        x = 100 * np.asarray(levels, dtype=np.float64)
        if x.shape != y.shape:
            raise DataError(f"noise curve of {name!r}: {len(x)} levels but {len(y)} values")
        ax.plot(x, y, marker="o", markersize=4, label=name, **_line_style(name, dashed, colors))
        drawn.append(y)
    _use_log(ax, drawn)
    ax.set_xlabel("input noise (% of each field's standard deviation)")
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def example_frames(n_frames: int, k: int = 3) -> list[int]:
    """Up to ``k`` predicted frames to show: the first, the last and evenly spaced ones between."""
    return sorted({int(i) for i in np.linspace(0, n_frames - 1, min(k, n_frames)).round()})


def _check_example(arrays: Mapping[str, np.ndarray], predictors: Sequence[str], example: int, channel: int):
    if "target" not in arrays:
        raise DataError(f"example arrays have no 'target' (found: {', '.join(sorted(arrays)) or 'none'})")
    target = np.asarray(arrays["target"])
    if target.ndim < 4 or target.ndim > 6:
        raise DataError(
            f"example 'target' must be [n, frames, fields, *space] with 1-3 space axes, got {target.shape}"
        )
    if not (0 <= example < target.shape[0] and 0 <= channel < target.shape[2]):
        raise DataError(
            f"example {example}, field {channel} out of range for 'target' of shape {target.shape}"
        )
    preds = {}
    for p in predictors:
        if p in arrays:
            a = np.asarray(arrays[p])
            if a.shape != target.shape:
                raise DataError(f"example array {p!r} has shape {a.shape}, 'target' has {target.shape}")
            preds[p] = a[example, :, channel]
    return target[example, :, channel], preds


def _central_slice(a: np.ndarray) -> np.ndarray:
    # A 3D field [F, x, y, z] is shown by its z mid-plane: the only cut that needs no choice of angle.
    return a[..., a.shape[-1] // 2] if a.ndim == 4 else a


def plot_example(
    arrays: Mapping[str, np.ndarray],
    *,
    predictors: Sequence[str] = ("model", "persistence"),
    example: int = 0,
    channel: int = 0,
    field: str = "",
    title: str = "",
) -> Figure:
    """Predicted against true fields for one example: 1D as line plots, 2D (and 3D mid-planes) as images.

    Args:
        arrays: ``examples_<task>.npz`` contents: ``target`` and one array per predictor, each
            ``[n, frames, fields, *space]``.
        predictors: Predictors to draw beside the target (those absent from ``arrays`` are skipped); the
            first is the model, the rest are drawn as references.
        example: Which example. channel: Which field. field: Its name, for labels.
        title: Figure title.

    Raises:
        DataError: ``target`` missing, or an array whose shape differs from it.
    """
    target, preds = _check_example(arrays, predictors, example, channel)
    frames = example_frames(target.shape[0])
    if target.ndim == 2:
        fig = _example_1d(target, preds, frames, field)
    else:
        fig = _example_2d(_central_slice(target), {k: _central_slice(v) for k, v in preds.items()}, frames)
    fig.suptitle(title, fontsize=10)
    return fig


def _example_1d(target: np.ndarray, preds: dict[str, np.ndarray], frames: list[int], field: str) -> Figure:
    fig = Figure(figsize=(3.2 * len(frames), 3.0), layout="constrained")
    axes = fig.subplots(1, len(frames), squeeze=False)[0]
    x = np.arange(target.shape[1])
    for ax, f in zip(axes, frames):
        ax.plot(x, target[f], label="true", **TARGET_STYLE)
        for i, (name, p) in enumerate(preds.items()):
            style = {"color": "tab:red"} if i == 0 else REFERENCE_STYLE
            ax.plot(x, p[f], label=name, **style)
        ax.set_title(f"predicted frame {f + 1}", fontsize=9)
        ax.set_xlabel("grid point")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel(field or "field")
    axes[0].legend(fontsize=7)
    return fig


def _example_2d(target: np.ndarray, preds: dict[str, np.ndarray], frames: list[int]) -> Figure:
    rows = [("true", target), *preds.items()]
    fig = Figure(figsize=(2.6 * len(frames) + 0.8, 2.4 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), len(frames), squeeze=False)
    # One colour scale per frame, set by the true field, so a prediction's over- or undershoot is visible.
    for j, f in enumerate(frames):
        lo, hi = float(np.nanmin(target[f])), float(np.nanmax(target[f]))
        for i, (name, a) in enumerate(rows):
            ax = axes[i, j]
            im = ax.imshow(a[f].T, origin="lower", vmin=lo, vmax=hi, cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"predicted frame {f + 1}", fontsize=9)
            if j == 0:
                ax.set_ylabel(name, fontsize=9)
        fig.colorbar(im, ax=axes[:, j], shrink=0.8)
    return fig
