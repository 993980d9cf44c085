"""roadseg: road extraction from satellite imagery with MindSpore's D-LinkNet.

The heavy parts (MindSpore) are imported on first use, so ``import roadseg`` and ``roadseg --help``
stay fast.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# MindSpore logs a warning for every backend plugin it cannot load (GPU, Ascend on a CPU machine);
# show only its errors unless the user chose a level.
os.environ.setdefault("GLOG_v", "3")

__version__ = "0.1.0"

# public name -> module that defines it; resolved lazily by __getattr__ below.
_LAZY_EXPORTS = {
    "load_model": "roadseg.model",
    "RoadModel": "roadseg.model",
    "predict_array": "roadseg.predict",
    "predict_file": "roadseg.predict",
    "DLinkNet34": "roadseg.network",
    "DLinkNet50": "roadseg.network",
    "InputConvention": "roadseg.convention",
    "RoadsegError": "roadseg.errors",
}

__all__ = ["__version__", *_LAZY_EXPORTS]


def __getattr__(name: str) -> Any:
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'roadseg' has no attribute {name!r}")
    return getattr(importlib.import_module(module_name), name)
