"""Equations: a safe parser, infix and prefix printers, a random generator and the Feynman benchmark set.

Everything is importable from here::

    from sfm.physics.equations import parse, to_infix, to_prefix, from_prefix, load_feynman

* :func:`parse` reads infix text into sympy without ``eval`` (:mod:`.parser`);
* :func:`to_infix` / :func:`to_prefix` / :func:`from_prefix` print and read the canonical forms
  (:mod:`.printing`, :mod:`.prefix`);
* :func:`evaluate` computes an expression on numpy arrays (:mod:`.numeric`);
* :class:`ExpressionGenerator` samples random expressions like Lample & Charton (2019) (:mod:`.generator`);
* :func:`load_feynman` / :func:`sample_points` give the 100 AI Feynman equations (:mod:`.feynman`).
"""

from sfm.physics.equations.feynman import FeynmanEquation, get_feynman, load_feynman, sample_points
from sfm.physics.equations.generator import ExpressionGenerator, tree_counts
from sfm.physics.equations.numeric import evaluate
from sfm.physics.equations.parser import FUNCTIONS, EquationError, parse
from sfm.physics.equations.prefix import from_prefix, prefix_vocabulary, to_prefix
from sfm.physics.equations.printing import canonical_tree, to_infix

__all__ = [
    "FUNCTIONS",
    "EquationError",
    "ExpressionGenerator",
    "FeynmanEquation",
    "canonical_tree",
    "evaluate",
    "from_prefix",
    "get_feynman",
    "load_feynman",
    "parse",
    "prefix_vocabulary",
    "sample_points",
    "to_infix",
    "to_prefix",
    "tree_counts",
]
