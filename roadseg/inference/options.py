"""The settings of a prediction, as frozen dataclasses checked when they are made.

``PredictOptions`` says how a scene is cut into windows, augmented, blended and thresholded;
``OutputOptions`` which files are written and how. With :class:`roadseg.io.raster_read.ImageScaling`
(how an image becomes 0-255 RGB) they are everything :func:`roadseg.inference.predict.predict_file`
needs besides the model, and what its outputs record as provenance (:func:`provenance_settings`).
A bad value fails here, once, with the parameter's name, not halfway through a batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import Enum

from roadseg.errors import BadParameterError, parse_choice
from roadseg.inference.blending import Blend
from roadseg.inference.gsd import GsdOptions
from roadseg.inference.tta import TTA
from roadseg.inference.windows import window_stride
from roadseg.io.raster_write import ProbDtype


@dataclass(frozen=True)
class PredictOptions:
    """Sliding-window settings: ``window`` pixels square, ``overlap`` a fraction of it; ``batch_size``
    network inputs per call (None: the model's own, 1 on CPU); a pixel is road above ``threshold``;
    ``gsd`` at which resolution the network sees a georeferenced input (:class:`GsdOptions`; window and
    overlap are pixels of that resolution)."""

    window: int = 1024
    overlap: float = 0.25
    blend: Blend = Blend.GAUSSIAN
    tta: TTA = TTA.D4
    threshold: float = 0.5
    batch_size: int | None = None
    gsd: GsdOptions = field(default_factory=GsdOptions)

    def __post_init__(self) -> None:
        if not isinstance(self.gsd, GsdOptions):  # ``gsd="native"`` or ``gsd=0.5`` alone
            object.__setattr__(self, "gsd", GsdOptions(self.gsd))
        window_stride(self.window, self.overlap)  # refuses a window < 1 and an overlap outside [0, 1)
        object.__setattr__(self, "blend", parse_choice(Blend, self.blend, "blend"))
        object.__setattr__(self, "tta", parse_choice(TTA, self.tta, "tta"))
        if not (math.isfinite(self.threshold) and 0.0 <= self.threshold <= 1.0):
            raise BadParameterError("threshold", f"must be a probability in [0, 1], got {self.threshold!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise BadParameterError("batch_size", f"must be at least 1, got {self.batch_size}")


@dataclass(frozen=True)
class OutputOptions:
    """Which outputs beside the mask (``save_prob``: the probability map, stored as ``prob_dtype``;
    ``save_uncertainty``: the variance of the TTA views' probabilities; ``preview``: a quick-look PNG),
    whether GeoTIFFs are Cloud Optimized (``cog``), and whether outputs that exist are replaced
    (``overwrite``) or left alone."""

    save_prob: bool = False
    prob_dtype: ProbDtype = ProbDtype.FLOAT32
    cog: bool = False
    preview: bool = False
    overwrite: bool = False
    save_uncertainty: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "prob_dtype", parse_choice(ProbDtype, self.prob_dtype, "prob_dtype"))


PROVENANCE_FIELDS = ("window", "overlap", "blend", "tta", "threshold")
"""The prediction settings a mask records (batch size changes nothing in it)."""


def provenance_settings(options: PredictOptions) -> dict[str, str]:
    """The settings that made a mask, as GeoTIFF tag values (``ROADSEG_<NAME>``)."""
    values = asdict(options)
    return {f"ROADSEG_{name.upper()}": str(_plain(values[name])) for name in PROVENANCE_FIELDS}


def _plain(value: object) -> object:
    return value.value if isinstance(value, Enum) else value
