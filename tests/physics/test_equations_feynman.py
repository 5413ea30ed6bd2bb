"""The packaged AI Feynman equations: content, hand-computed values, round trips, sampling, file errors."""

from __future__ import annotations

import math
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import sympy

from sfm.errors import DataError, UnknownNameError
from sfm.physics.equations import (
    FeynmanEquation,
    evaluate,
    from_prefix,
    get_feynman,
    load_feynman,
    parse,
    sample_points,
    to_infix,
    to_prefix,
)

EQUATIONS = load_feynman()


def test_the_packaged_file_ships_inside_the_package():
    ref = resources.files("sfm.physics.equations").joinpath("feynman.csv")
    assert ref.is_file()  # under sfm/, so the hatch wheel (packages = ["sfm"]) carries it...
    # ...unless git ignores it: hatch drops git-ignored files (the repository ignores every "data/" folder).
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    ignored = subprocess.run(["git", "check-ignore", "-q", str(ref)], cwd=Path(str(ref)).parent, check=False)
    if ignored.returncode == 128:
        pytest.skip("not a git checkout")
    assert ignored.returncode == 1, "feynman.csv is git-ignored: it would not ship in the wheel"


def test_all_100_equations_with_unique_ids():
    assert len(EQUATIONS) == 100
    ids = [eq.id for eq in EQUATIONS]
    assert len(set(ids)) == 100
    assert ids[0] == "I.6.2a" and ids[-1] == "III.21.20"
    volumes = [i.split(".")[0] for i in ids]
    assert (volumes.count("I"), volumes.count("II"), volumes.count("III")) == (51, 34, 15)
    assert max(len(eq.variables) for eq in EQUATIONS) == 9  # I.9.18


@pytest.mark.parametrize("eq", EQUATIONS, ids=lambda eq: eq.id)
def test_each_equation_is_consistent_and_round_trips(eq: FeynmanEquation):
    assert {s.name for s in eq.expr.free_symbols} == set(eq.names)
    assert all(low < high for _, low, high in eq.variables)
    assert parse(eq.formula) == eq.expr
    assert parse(to_infix(eq.expr)) == eq.expr
    assert from_prefix(to_prefix(eq.expr)) == eq.expr


@pytest.mark.parametrize(
    ("eq_id", "values", "expected"),
    [
        ("I.6.2a", {"theta": 1.0}, math.exp(-0.5) / math.sqrt(2 * math.pi)),
        ("I.10.7", {"m_0": 1.0, "v": 1.0, "c": 2.0}, 1 / math.sqrt(0.75)),
        ("I.12.2", {"q1": 1.0, "q2": 1.0, "epsilon": 1.0, "r": 1.0}, 1 / (4 * math.pi)),
        ("I.29.16", {"x1": 3.0, "x2": 4.0, "theta1": math.pi / 2, "theta2": 0.0}, 5.0),  # right angle: 3-4-5
        ("I.30.5", {"lambd": 1.0, "d": 2.0, "n": 1.0}, math.pi / 6),
        ("II.11.28", {"n": 1.0, "alpha": 1.0}, 2.5),  # 1 + 1/(1 - 1/3)
        ("III.4.33", {"h": 2 * math.pi, "omega": 1.0, "kb": 1.0, "T": 1.0}, 1 / (math.e - 1)),
        # Hydrogen levels with every constant 1: (4 pi)^2 (1/(2 pi))^2 = 4, so E = -1/(2*4) = -1/8.
        ("III.19.51", {"m": 1.0, "q": 1.0, "h": 1.0, "n": 1.0, "epsilon": 1.0}, -0.125),
        ("II.15.4", {"mom": 2.0, "B": 3.0, "theta": 0.0}, -6.0),
    ],
)
def test_values_computed_by_hand(eq_id, values, expected):
    eq = get_feynman(eq_id)
    got = evaluate(eq.expr, {k: np.array([v]) for k, v in values.items()})[0]
    assert math.isclose(got, expected, rel_tol=1e-12), (eq_id, got, expected)


def test_sample_points_matches_formulas_written_in_numpy():
    eq = get_feynman("I.9.18")
    x, y = sample_points(eq, 1000, np.random.default_rng(0))
    m1, m2, g, x1, x2, y1, y2, z1, z2 = x.T  # columns in the benchmark's order
    expected = g * m1 * m2 / ((x2 - x1) ** 2 + (y2 - y1) ** 2 + (z2 - z1) ** 2)
    np.testing.assert_allclose(y, expected, rtol=1e-13)

    eq = get_feynman("I.41.16")  # Planck's law
    x, y = sample_points(eq, 500, 1)
    omega, temp, h, kb, c = x.T
    hbar = h / (2 * np.pi)
    np.testing.assert_allclose(
        y, hbar * omega**3 / (np.pi**2 * c**2 * (np.exp(hbar * omega / (kb * temp)) - 1)), rtol=1e-12
    )


def test_sample_points_respects_ranges_is_finite_and_deterministic():
    for eq in EQUATIONS:
        x, y = sample_points(eq, 2000, 5)
        assert x.shape == (2000, len(eq.variables)) and y.shape == (2000,)
        low = np.array([v[1] for v in eq.variables])
        high = np.array([v[2] for v in eq.variables])
        assert (x >= low).all() and (x <= high).all()
        assert np.isfinite(y).all(), eq.id
    eq = EQUATIONS[10]
    np.testing.assert_array_equal(sample_points(eq, 50, 3)[1], sample_points(eq, 50, 3)[1])
    assert not np.array_equal(sample_points(eq, 50, 3)[1], sample_points(eq, 50, 4)[1])
    with pytest.raises(DataError, match="n must be >= 1"):
        sample_points(eq, 0)


def test_unknown_id_suggests_the_closest():
    with pytest.raises(UnknownNameError, match=r"unknown Feynman equation 'I.6.2c' \(did you mean 'I.6.2'"):
        get_feynman("I.6.2c")


def _write(tmp_path, body: str):
    path = tmp_path / "eqs.csv"
    path.write_text("# comment\nid,output,formula,variables\n" + body)
    return path


def test_custom_file(tmp_path):
    eqs = load_feynman(_write(tmp_path, "A.1,y,a*x**2 + b,a:1:2 x:0:1 b:-1:1\n"))
    assert len(eqs) == 1 and eqs[0].names == ("a", "x", "b") and eqs[0].output == "y"
    a, x, b = sympy.symbols("a x b")
    assert eqs[0].expr == a * x**2 + b


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("A.1,y,x + z,x:1:2\n", r"eqs.csv:3: formula of A.1: unknown variable 'z'"),
        ("A.1,y,x,x:1:2 w:1:2\n", r"eqs.csv:3: A.1 lists variables its formula does not use: w"),
        ("A.1,y,x,x:2:1\n", r"eqs.csv:3: variable 'x:2:1' of A.1 needs name:low:high with low < high"),
        ("A.1,y,x,x:1\n", r"eqs.csv:3: variable 'x:1' of A.1 is not name:low:high"),
        ("A.1,y,x,x:a:b\n", r"is not name:low:high"),
        ("A.1,y,x,x:1:2\nA.1,y,x,x:1:2\n", r"eqs.csv:4: duplicate equation id 'A.1'"),
        ("A.1,y,x\n", r"eqs.csv:3: expected 4 columns, got 3"),
        ("A.1,y,__import__('os'),x:1:2\n", r"eqs.csv:3: formula of A.1: "),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, body, message):
    with pytest.raises(DataError, match=message):
        load_feynman(_write(tmp_path, body))


def test_bad_files(tmp_path):
    with pytest.raises(DataError, match="cannot read Feynman equation file"):
        load_feynman(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("name,formula\nx,y\n")
    with pytest.raises(DataError, match=r"bad\.csv:1: header must be id,output,formula,variables"):
        load_feynman(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("# nothing\n")
    with pytest.raises(DataError, match="no equations"):
        load_feynman(empty)
