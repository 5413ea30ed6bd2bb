"""sfm: fine-tune foundation models on science — physical fields (PDE trajectories) and equations.

The pipeline has four stages, each usable alone:

1. build data (:mod:`sfm.physics`, :mod:`sfm.data`, :mod:`sfm.tokenize`),
2. fine-tune (:mod:`sfm.train`, recipes in ``recipes/``, launch files in ``launch/``),
3. evaluate (:mod:`sfm.harness`, :mod:`sfm.metrics`, tasks in ``eval/tasks/``),
4. publish (:mod:`sfm.publish.leaderboard`, :mod:`sfm.publish.cards`),

plus scaling-law studies over them (:mod:`sfm.scaling`). The public API below is imported on first use, so
``import sfm`` stays cheap (no torch, no datasets)::

    import sfm
    sfm.generate_dataset("burgers", 256, "data/burgers", params={"nu": [0.01, 0.03]})
    recipe = sfm.load_recipe("recipes/quickstart.yaml", ["--training.max_steps", "50"])
    sfm.fine_tune(recipe)
    results = sfm.evaluate("runs/quickstart/model", ["forecast/burgers-tiny"], "results/q")
"""

from __future__ import annotations

import importlib
from typing import Any

from sfm.errors import SfmError as SfmError
from sfm.registry import Registry as Registry

__version__ = "0.1.0"

_EXPORTS = {
    # build data
    "get_simulator": ("sfm.physics.simulators", "get_simulator"),
    "generate_dataset": ("sfm.data", "generate_dataset"),
    "import_dataset": ("sfm.data", "import_dataset"),
    "load_field_dataset": ("sfm.data", "load_field_dataset"),
    "FieldMeta": ("sfm.physics.metadata", "FieldMeta"),
    "get_encoding": ("sfm.tokenize.numbers", "get_encoding"),
    "FieldCodec": ("sfm.tokenize.fields", "FieldCodec"),
    "ScienceTokenizer": ("sfm.tokenize.vocab", "ScienceTokenizer"),
    "get_task_format": ("sfm.tasks", "get_task_format"),
    # fine-tune
    "load_recipe": ("sfm.training.recipe", "load_recipe"),
    "fine_tune": ("sfm.train", "run"),  # not "train": that name is the sfm.train module
    # evaluate
    "evaluate": ("sfm.harness.runner", "evaluate"),
    "load_task": ("sfm.harness.tasks", "load_task"),
    "load_model": ("sfm.models.run", "load_model"),
    "RunRecord": ("sfm.models.run", "RunRecord"),
    "EvalResults": ("sfm.harness.results", "EvalResults"),
    # publish
    "build_leaderboard": ("sfm.publish.leaderboard", "build_leaderboard"),
    "write_leaderboard": ("sfm.publish.leaderboard", "write_leaderboard"),
    "write_model_card": ("sfm.publish.cards", "write_model_card"),
    # everything, tiny
    "run_quickstart": ("sfm.quickstart", "run_quickstart"),
}

__all__ = sorted(["Registry", "SfmError", "__version__", *_EXPORTS])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'sfm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
