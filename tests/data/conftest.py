"""Tiny simulators with exact solutions, registered for the data tests (names start with ``_test``).

They stand in for the real simulators so the data layer is tested on its own: a travelling wave whose
every stored value is known in closed form, a steady 2D problem with two fields, and one that diverges
(NaN) on some trajectories to exercise failure handling.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from sfm.physics.simulators.base import Param, Simulator, register


@register
class WaveSim(Simulator):
    """u(x, t) = A sin(2 pi k (x - c t) + phi) on the periodic unit interval: the exact advection solution."""

    name = "_test_wave"
    equation = "u_t + c*u_x = 0"
    description = "Exact travelling sine wave. Advection at speed c of a single Fourier mode."
    boundary_conditions: ClassVar[dict[str, str]] = {"x": "periodic"}
    params: ClassVar[dict[str, Param]] = {
        "c": Param((0.5, 2.0), bounds=(0.0, 10.0), doc="wave speed"),
        "amplitude": Param(1.0, bounds=(0.0, 10.0)),
        "nx": Param(16, bounds=(4, 4096), integer=True),
        "nt": Param(5, bounds=(1, 1000), integer=True),
    }
    settings = ("nx", "nt")

    def coords(self) -> dict[str, list[float]]:
        nx, nt = self.values["nx"], self.values["nt"]
        return {"t": np.linspace(0.0, 1.0, nt).tolist(), "x": (np.arange(nx) / nx).tolist()}

    def _simulate(self, rngs, coeffs):
        c = coeffs["c"] if "c" in coeffs else np.full(len(rngs), self.values["c"])
        phi = np.array([r.uniform(0.0, 2 * np.pi) for r in rngs])
        k = np.array([r.integers(1, 4) for r in rngs])
        x = np.asarray(self.coords()["x"])
        t = np.asarray(self.coords()["t"])
        arg = 2 * np.pi * k[:, None, None] * (x[None, None, :] - c[:, None, None] * t[None, :, None])
        return {"u": self.values["amplitude"] * np.sin(arg + phi[:, None, None])}


@register
class SteadySim(Simulator):
    """A steady 2D pair: a random constant a per trajectory and u = a * sin(pi x) sin(pi y)."""

    name = "_test_steady"
    equation = "-lap(u) = 2 pi^2 u"
    description = "Steady test problem. Two fields a and u on the unit square."
    fields = ("a", "u")
    boundary_conditions: ClassVar[dict[str, str]] = {"x": "dirichlet", "y": "dirichlet"}
    params: ClassVar[dict[str, Param]] = {"n": Param(6, bounds=(2, 512), integer=True)}
    settings = ("n",)

    def coords(self) -> dict[str, list[float]]:
        g = np.linspace(0.0, 1.0, self.values["n"]).tolist()
        return {"x": g, "y": g}

    def _simulate(self, rngs, coeffs):
        g = np.asarray(self.coords()["x"])
        a = np.array([r.uniform(1.0, 2.0) for r in rngs])
        base = np.sin(np.pi * g)[:, None] * np.sin(np.pi * g)[None, :]
        field_a = np.broadcast_to(a[:, None, None, None], (len(rngs), 1, len(g), len(g)))
        return {"a": field_a, "u": field_a * base}


@register
class BrokenSim(Simulator):
    """Returns NaN for roughly a third of the trajectories (a diverging solver)."""

    name = "_test_broken"
    equation = "u_t = 0"
    description = "Diverges sometimes. For failure tests."
    boundary_conditions: ClassVar[dict[str, str]] = {"x": "periodic"}
    params: ClassVar[dict[str, Param]] = {"nx": Param(8, integer=True)}
    settings = ("nx",)

    def coords(self) -> dict[str, list[float]]:
        return {"t": [0.0, 1.0], "x": (np.arange(self.values["nx"]) / self.values["nx"]).tolist()}

    def _simulate(self, rngs, coeffs):
        bad = np.array([r.uniform() < 0.3 for r in rngs])
        u = np.ones((len(rngs), 2, self.values["nx"]))
        u[bad] = np.nan
        return {"u": u}


@pytest.fixture
def no_temp_left():
    """Assert that a folder holds nothing but ``allowed`` entries (no ``.NAME.tmp-*`` leftovers)."""

    def check(folder, allowed=()):
        left = sorted(p.name for p in folder.iterdir() if p.name not in allowed)
        assert left == [], f"left behind: {left}"

    return check
