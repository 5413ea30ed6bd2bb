"""The shared body of the local Hugging Face ``evaluate`` modules in ``eval/metrics/<name>/``.

Each module there is a few lines subclassing ``evaluate.Metric`` that call these two functions, so the
numbers always come from the plain numpy metric in :mod:`sfm.metrics`. Not imported by ``sfm.metrics``
itself (the leading underscore keeps the package's auto-import away), so ``evaluate`` stays optional.

Configurations set the rank of one example: ``"1d"`` (default) takes examples shaped ``(time, x)``,
``"2d"`` ``(time, x, y)`` and ``"3d"`` ``(time, x, y, z)``; a batch of them is the metric's ``(batch, ...)``.
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate
import numpy as np

from sfm.errors import ConfigError, SfmError, did_you_mean
from sfm.metrics.core import compute
from sfm.registry import METRICS

#: Spatial axes per configuration name; "default" is what ``evaluate.load(path)`` passes with no name.
CONFIGS = {"default": 1, "1d": 1, "2d": 2, "3d": 3}

CITATIONS = {
    "pdebench": """@inproceedings{takamoto2022pdebench,
  title={{PDEBench}: An Extensive Benchmark for Scientific Machine Learning},
  author={Takamoto, Makoto and Praditia, Timothy and Leiteritz, Raphael and MacKinlay, Dan and
          Alesiani, Francesco and Pfl{\\"u}ger, Dirk and Niepert, Mathias},
  booktitle={Advances in Neural Information Processing Systems, Datasets and Benchmarks Track},
  year={2022}
}""",
    "the_well": """@inproceedings{ohana2024well,
  title={The Well: a Large-Scale Collection of Diverse Physics Simulations for Machine Learning},
  author={Ohana, Ruben and McCabe, Michael and Meyer, Lucas and others},
  booktitle={Advances in Neural Information Processing Systems, Datasets and Benchmarks Track},
  year={2024}
}""",
    "dpot": """@inproceedings{hao2024dpot,
  title={{DPOT}: Auto-Regressive Denoising Operator Transformer for Large-Scale {PDE} Pre-Training},
  author={Hao, Zhongkai and Su, Chang and Liu, Songming and others},
  booktitle={International Conference on Machine Learning},
  year={2024}
}
@inproceedings{li2021fno,
  title={Fourier Neural Operator for Parametric Partial Differential Equations},
  author={Li, Zongyi and Kovachki, Nikola and Azizzadenesheli, Kamyar and others},
  booktitle={International Conference on Learning Representations},
  year={2021}
}""",
    "poseidon": """@inproceedings{herde2024poseidon,
  title={Poseidon: Efficient Foundation Models for {PDE}s},
  author={Herde, Maximilian and Raoni{\\'c}, Bogdan and Rohner, Tobias and others},
  booktitle={Advances in Neural Information Processing Systems},
  year={2024}
}""",
}

_INPUTS = """Args:
    predictions: predicted fields, one example per trajectory, each a nested list or array shaped
        (time, x) with config "1d" (default), (time, x, y) with "2d", (time, x, y, z) with "3d".
    references: the true fields, same shape.
    **options: keyword options of the sfm metric function (e.g. ``lengths`` for the fRMSE bands).
Returns:
    {"<name>": float}: the number the reference project reports for these arrays.
"""


def _spatial_dims(name: str, config_name: str | None) -> int:
    key = config_name or "default"
    if key not in CONFIGS:
        raise ConfigError(
            f"{name}: unknown configuration {key!r}{did_you_mean(key, CONFIGS)}; use 1d, 2d or 3d"
        )
    return CONFIGS[key]


def field_metric_info(name: str, config_name: str | None) -> evaluate.MetricInfo:
    """``evaluate.MetricInfo`` of the sfm field metric ``name`` for one configuration (``"1d"``...)."""
    meta = METRICS.meta(name)
    feature: Any = datasets.Value("float64")
    for _ in range(1 + _spatial_dims(name, config_name)):  # time axis, then each spatial axis
        feature = datasets.Sequence(feature)
    aggregation = meta["aggregation"]
    return evaluate.MetricInfo(
        description=f"{meta['description']}. Lower is better. Per-sample values are aggregated by "
        f"'{aggregation}' over samples, then averaged over time (see sfm.metrics.{meta['source']}).",
        citation=CITATIONS.get(meta["source"], ""),
        inputs_description=_INPUTS.replace("<name>", name),
        features=datasets.Features({"predictions": feature, "references": feature}),
        reference_urls=["https://github.com/sfm-project/sfm"],
    )


def field_metric_compute(name: str, predictions: Any, references: Any, **options: Any) -> dict[str, float]:
    """Score ``predictions`` against ``references`` with sfm's metric ``name``; ``{name: value}``."""
    arrays = []
    for label, value in (("predictions", predictions), ("references", references)):
        try:
            arrays.append(np.asarray(value, dtype=np.float64))
        except ValueError:
            raise SfmError(f"{name}: {label} must be rectangular (every example the same shape)") from None
    return {name: compute(name, arrays[0], arrays[1], **options)}
