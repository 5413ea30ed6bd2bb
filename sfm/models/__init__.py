"""Models: backbones (tiny and Hub), field encoders and heads, neural operators, and the run-folder contract.

Token, continuous and operator runs share one run folder, described by :mod:`sfm.models.run`.
"""
