"""The evaluation harness: versioned science tasks, batched generation, baselines, typed results.

sfm eval --model runs/quickstart/model --tasks forecast/burgers-tiny --out results/

Each eval family (``sfm list eval-families``) is one module whose ``run(task, loaded, ctx)`` is registered
in :data:`sfm.registry.FAMILIES`; :mod:`~sfm.harness.runner` only dispatches to it. The families share
:mod:`~sfm.harness.scoring` (metric values with intervals, windows, limits, the sharded gather),
:mod:`~sfm.harness.compat` (does the task fit the trained model) and :mod:`~sfm.harness.rollout` (token,
array and baseline rollouts).
"""
