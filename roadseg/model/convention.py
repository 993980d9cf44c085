"""How an RGB image in 0-255 becomes the network's input tensor for a given set of weights.

The published zoo weights were trained on OpenCV-read images (channels B, G, R) scaled as
``x / 255 * 3.2 - 1.6``. Every weights entry and every checkpoint roadseg writes records its
convention, so inference and training always feed a network what it was trained on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from roadseg.errors import BadParameterError

#: D-LinkNet's five stride-2 stages: network inputs are multiples of this many pixels high and wide.
NETWORK_STRIDE = 32


def check_network_window(window: int) -> None:
    """Refuse a window the network cannot take, before any file is read."""
    if window < NETWORK_STRIDE or window % NETWORK_STRIDE:
        raise BadParameterError("window", f"must be a positive multiple of {NETWORK_STRIDE} pixels (the network's "
                                          f"five stride-2 stages), got {window}")


@dataclass(frozen=True)
class InputConvention:
    """Channel order and affine scaling ``x * scale + offset`` applied to 0-255 pixel values."""

    channel_order: str = "BGR"
    scale: float = 3.2 / 255.0
    offset: float = -1.6

    def __post_init__(self) -> None:
        if sorted(self.channel_order) != sorted("RGB"):
            raise ValueError(f"channel_order must be a permutation of 'RGB', got {self.channel_order!r}")

    def to_network(self, rgb: np.ndarray) -> np.ndarray:
        """Turn ``(H, W, 3)`` RGB values in 0-255 into a ``(3, H, W)`` float32 network input."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB array, got shape {rgb.shape}")
        order = ["RGB".index(channel) for channel in self.channel_order]
        chw = np.transpose(rgb[:, :, order], (2, 0, 1)).astype(np.float32)
        return chw * np.float32(self.scale) + np.float32(self.offset)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> InputConvention:
        return cls(**json.loads(text))


ZOO_CONVENTION = InputConvention()
