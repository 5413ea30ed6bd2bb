"""The evaluation harness: versioned science tasks, batched generation, baselines, typed results.

sfm eval --model runs/quickstart/model --tasks forecast/burgers-tiny --out results/
"""
