"""Test set-up: offline, deterministic, CPU. Fixtures build tiny models and data, never download."""

from __future__ import annotations

import os

# Set before transformers/datasets are imported anywhere: an accidental Hub lookup would otherwise hang.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
# Tiny models gain nothing from intra-op threads, and on a shared 2-core machine OpenMP spin-waiting makes
# each small op up to 30x slower; subprocesses (accelerate launch, sfm.train) inherit this too.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
from hypothesis import settings

# Fuzzing with a fixed seed: CI runs the same examples every time (a failure reproduces), and no example
# database carries state between runs.
settings.register_profile("sfm", derandomize=True, database=None)
settings.load_profile("sfm")


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)
