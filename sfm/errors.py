"""User-facing errors.

Anything a user can cause (a typo in a recipe, a corrupt file, an unknown name) raises :class:`SfmError` or a
subclass. The CLI prints such errors as one line and exits with status 2; every other exception is a bug and
keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SfmError(Exception):
    """An error caused by the user's input; printed as one line, exit status 2."""


class ConfigError(SfmError):
    """A recipe, task file or override is malformed."""


class DataError(SfmError):
    """A data file is missing, corrupt, or disagrees with its metadata."""


class UnknownNameError(SfmError, KeyError):
    """A name was looked up in a registry (or key set) that does not hold it."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` entries of ``choices`` that look most like ``name`` (best first)."""
    choices = list(choices)
    scored = sorted(((difflib.SequenceMatcher(None, name, c).ratio(), c) for c in choices), reverse=True)
    # keep near-ties of the best match only: "learnig_rate" -> learning_rate, not also warmup_ratio
    found = [c for r, c in scored[:n] if r >= 0.5 and r >= scored[0][0] - 0.1]
    if not found:  # a prefix or substring match still helps ("ns" -> "navier_stokes")
        low = name.lower()
        found = [c for c in choices if c.lower().startswith(low) or low in c.lower()][:n]
    return found


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` or ``""`` for an error message."""
    found = closest(name, choices)
    if not found:
        return ""
    return " (did you mean " + " or ".join(repr(f) for f in found) + "?)"
