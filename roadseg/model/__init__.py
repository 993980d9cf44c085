"""The network and everything that loads, runs or exports it: MindSpore's D-LinkNet, its checkpoints and
input convention, devices, the ONNX Runtime engine, weights and their registry and downloads.

Only this subpackage and :mod:`roadseg.train` import MindSpore, and only through
:mod:`roadseg.model.mindspore_runtime`, which settles oneDNN's instruction set first. Importing
``roadseg.model`` itself loads no MindSpore: the network classes are resolved on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from roadseg.model.convention import InputConvention
from roadseg.model.loaded import ENGINES, RoadModel, load_model

_NETWORK_NAMES = ("DLinkNet34", "DLinkNet50", "build_network", "ARCHITECTURES", "TRANSPOSED_CONV_FORMS")

__all__ = ["ENGINES", "InputConvention", "RoadModel", "load_model", *_NETWORK_NAMES]


def __getattr__(name: str) -> Any:
    if name in _NETWORK_NAMES:  # the network module imports MindSpore: only when asked for
        return getattr(importlib.import_module("roadseg.model.network"), name)
    raise AttributeError(f"module 'roadseg.model' has no attribute {name!r}")
