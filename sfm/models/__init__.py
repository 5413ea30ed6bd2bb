"""Models: backbones (tiny and Hub), field encoders and heads, neural operators, and the run-folder contract.

Token, continuous and operator runs share one run folder, described by :mod:`sfm.models.run`.
"""

import os

# neuraloperator imports wandb, which otherwise may prompt for a login or phone home: sfm never logs to it
# unless a user sets WANDB_MODE themselves (setdefault), so it is off before any submodule is imported.
os.environ.setdefault("WANDB_MODE", "disabled")
