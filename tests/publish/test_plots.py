"""Plots: what is drawn is exactly the data given (read back from the artists), and PNGs round-trip."""

from __future__ import annotations

import base64
import io

import matplotlib.image
import numpy as np
import pytest

from sfm.errors import DataError
from sfm.publish import plots


def _lines(ax):
    return {ln.get_label(): ln for ln in ax.get_lines()}


def test_png_has_the_figure_size_and_the_data_uri_round_trips():
    fig = plots.plot_error_curves({"m": [1.0, 2.0]}, metric="nrmse")
    png = plots.png_bytes(fig, dpi=50)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert image.shape[:2] == (200, 320)  # 6.4 x 4 inches at 50 dpi
    uri = plots.data_uri(png)
    assert uri.startswith("data:image/png;base64,") and base64.b64decode(uri.split(",", 1)[1]) == png


def test_error_curves_draw_each_frame_with_gaps_for_missing_values():
    fig = plots.plot_error_curves(
        {"model": [0.01, None, 0.4], "persistence": [0.02, 0.2, 2.0]},
        metric="nrmse",
        dashed=["persistence"],
        colors={"model": "C3"},
    )
    ax = fig.axes[0]
    lines = _lines(ax)
    np.testing.assert_array_equal(lines["model"].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(lines["model"].get_ydata(), [0.01, np.nan, 0.4])
    np.testing.assert_array_equal(lines["persistence"].get_ydata(), [0.02, 0.2, 2.0])
    assert lines["persistence"].get_linestyle() == "--" and lines["model"].get_linestyle() == "-"
    assert lines["model"].get_color() == "C3"
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "nrmse"  # positive and spanning 200x


def test_a_zero_or_negative_value_keeps_a_linear_axis():
    ax = plots.plot_error_curves({"m": [0.0, 0.5, 20.0]}, metric="r2").axes[0]
    assert ax.get_yscale() == "linear"
    ax = plots.plot_error_curves({"m": [0.5, 0.6]}, metric="nrmse").axes[0]
    assert ax.get_yscale() == "linear"  # less than a decade: no log axis needed


def test_noise_curves_put_the_level_in_percent_on_x():
    fig = plots.plot_noise_curves({"model": ([0.0, 0.01, 0.1], [0.1, 0.2, None])}, metric="nrmse")
    line = _lines(fig.axes[0])["model"]
    np.testing.assert_allclose(line.get_xdata(), [0.0, 1.0, 10.0])
    np.testing.assert_array_equal(line.get_ydata(), [0.1, 0.2, np.nan])
    with pytest.raises(DataError, match="'model': 3 levels but 2 values"):
        plots.plot_noise_curves({"model": ([0.0, 0.01, 0.1], [0.1, 0.2])}, metric="nrmse")


@pytest.mark.parametrize(
    ("n", "want"), [(1, [0]), (2, [0, 1]), (3, [0, 1, 2]), (10, [0, 4, 9]), (30, [0, 14, 29])]
)
def test_example_frames_are_first_middle_last(n, want):
    assert plots.example_frames(n) == want


def test_a_1d_example_draws_true_and_predicted_lines_of_the_chosen_frames():
    rng = np.random.default_rng(0)
    arrays = {k: rng.standard_normal((3, 5, 2, 16)) for k in ("target", "model", "persistence", "linear")}
    fig = plots.plot_example(arrays, example=1, channel=1, field="v")
    assert len(fig.axes) == 3  # frames 0, 2, 4
    for ax, f in zip(fig.axes, [0, 2, 4]):
        lines = _lines(ax)
        assert set(lines) == {"true", "model", "persistence"}  # linear not asked for
        for name, key in (("true", "target"), ("model", "model"), ("persistence", "persistence")):
            np.testing.assert_array_equal(lines[name].get_ydata(), arrays[key][1, f, 1])
        assert ax.get_title() == f"predicted frame {f + 1}"
    assert fig.axes[0].get_ylabel() == "v"


def test_a_2d_example_shows_images_on_the_true_fields_colour_scale():
    rng = np.random.default_rng(1)
    arrays = {k: rng.standard_normal((2, 2, 1, 8, 6)) for k in ("target", "model")}
    fig = plots.plot_example(arrays, predictors=("model", "persistence"))
    images = [ax.get_images()[0] for ax in fig.axes if ax.get_images()]
    assert len(images) == 4  # rows true/model x frames 0/1
    # subplots fill row-major: (true, f0), (true, f1), (model, f0), (model, f1)
    for im, (key, f) in zip(images, [("target", 0), ("target", 1), ("model", 0), ("model", 1)]):
        np.testing.assert_array_equal(im.get_array(), arrays[key][0, f, 0].T)
        assert im.get_clim() == (arrays["target"][0, f, 0].min(), arrays["target"][0, f, 0].max())
    assert plots.png_bytes(fig)[:4] == b"\x89PNG"


def test_a_3d_example_shows_the_mid_plane():
    arrays = {
        k: np.arange(2 * 1 * 1 * 4 * 4 * 5, dtype=float).reshape(2, 1, 1, 4, 4, 5)
        for k in ("target", "model")
    }
    fig = plots.plot_example(arrays)
    im = fig.axes[0].get_images()[0]
    np.testing.assert_array_equal(im.get_array(), arrays["target"][0, 0, 0, :, :, 2].T)


def test_bad_example_arrays_are_data_errors():
    good = np.zeros((1, 2, 1, 8))
    with pytest.raises(DataError, match="no 'target'"):
        plots.plot_example({"model": good})
    with pytest.raises(DataError, match="'model' has shape"):
        plots.plot_example({"target": good, "model": np.zeros((1, 2, 1, 9))})
    with pytest.raises(DataError, match="out of range"):
        plots.plot_example({"target": good}, example=3)
    with pytest.raises(DataError, match="must be"):
        plots.plot_example({"target": np.zeros((2, 8))})
