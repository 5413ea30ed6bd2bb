"""relative L2 error (FNO, DPOT) as a local Hugging Face ``evaluate`` module.

The number comes from :func:`sfm.metrics.compute` (``sfm`` must be installed); see README.md beside this file.

    import evaluate
    metric = evaluate.load("eval/metrics/rel_l2")        # 1D fields; evaluate.load(path, "2d") for 2D, "3d" for 3D
    metric.compute(predictions=pred, references=target)  # each (batch, time, x[, y[, z]])
"""

import evaluate

from sfm.metrics._evaluate import field_metric_compute, field_metric_info


class RelL2(evaluate.Metric):
    def _info(self):
        return field_metric_info("rel_l2", self.config_name)

    def _compute(self, predictions, references, **options):
        return field_metric_compute("rel_l2", predictions, references, **options)
