"""PDEBench's normalized RMSE (nRMSE) as a local Hugging Face ``evaluate`` module.

The number comes from :func:`sfm.metrics.compute` (``sfm`` must be installed); see README.md beside this file.

    import evaluate
    metric = evaluate.load("eval/metrics/nrmse")        # 1D fields; evaluate.load(path, "2d") for 2D, "3d" for 3D
    metric.compute(predictions=pred, references=target)  # each (batch, time, x[, y[, z]])
"""

import evaluate

from sfm.metrics._evaluate import field_metric_compute, field_metric_info


class Nrmse(evaluate.Metric):
    def _info(self):
        return field_metric_info("nrmse", self.config_name)

    def _compute(self, predictions, references, **options):
        return field_metric_compute("nrmse", predictions, references, **options)
