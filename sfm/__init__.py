"""sfm: fine-tune foundation models on science — physical fields (PDE trajectories) and equations.

The pipeline has four stages, each usable alone:

1. build data (:mod:`sfm.physics`, :mod:`sfm.data`, :mod:`sfm.tokenize`),
2. fine-tune (:mod:`sfm.train`),
3. evaluate (:mod:`sfm.harness`, :mod:`sfm.metrics`),
4. publish (:mod:`sfm.cards`, ``eval/leaderboard.py``).
"""

__version__ = "0.1.0"

from sfm.errors import SfmError
from sfm.registry import Registry

__all__ = ["Registry", "SfmError", "__version__"]
