"""Task formats: one object per task that both builds training samples and prompts at evaluation.

Because the same object formats a training example and an evaluation prompt, training and evaluation cannot
drift apart. Each module in this package registers its formats in :data:`sfm.registry.TASK_FORMATS`; build one
with :func:`get_task_format`.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from sfm.tasks.base import Encoded, get_task_format

for _m in _pkgutil.iter_modules(__path__):
    if _m.name not in ("base",) and not _m.name.startswith("_"):
        _importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["Encoded", "get_task_format"]
