"""roadseg: road extraction from satellite imagery with MindSpore's D-LinkNet.

The heavy parts (MindSpore) are imported on first use, so ``import roadseg`` and ``roadseg --help``
stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it; resolved lazily by __getattr__ below.
_LAZY_EXPORTS = {
    "load_model": "roadseg.model.loaded",
    "RoadModel": "roadseg.model.loaded",
    "predict_array": "roadseg.inference.predict",
    "predict_file": "roadseg.inference.predict",
    "DLinkNet34": "roadseg.model.network",
    "DLinkNet50": "roadseg.model.network",
    "InputConvention": "roadseg.model.convention",
    "RoadsegError": "roadseg.errors",
}

__all__ = ["__version__", *_LAZY_EXPORTS]


def __getattr__(name: str) -> Any:
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'roadseg' has no attribute {name!r}")
    return getattr(importlib.import_module(module_name), name)
