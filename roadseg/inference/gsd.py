"""Ground sample distance: how many metres a pixel covers, and at which resolution the network runs.

D-LinkNet learns roads as features of a given width in pixels, so it only finds them well at the
resolution it was trained at (the published weights: DeepGlobe at 0.5 m). :class:`GsdOptions` says what
the network should see (``auto``: the weights' GSD; ``native``: the input as it is; a number of metres),
:func:`raster_gsd` what an input's pixels measure, and :func:`plan_gsd` combines them into a
:class:`GsdPlan`: the virtual grid the network runs on, or none when the input is used as it is.
Pure arithmetic on CRS, transform and sizes: no file is read here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from roadseg.errors import BadParameterError

GSD_TOLERANCE = 0.10
"""An input whose GSD is within this fraction of the target's is used as it is (no resampling)."""

AUTO, NATIVE = "auto", "native"

WGS84_A = 6378137.0
WGS84_F = 1.0 / 298.257223563
"""The ellipsoid of geographic CRSs' metres per degree (WGS 84; other datums differ by < 0.1 %)."""


def parse_gsd(value: str | float) -> str | float:
    """``auto``, ``native`` or a positive number of metres per pixel (from text or a number).

    >>> parse_gsd("0.5"), parse_gsd("AUTO")
    (0.5, 'auto')
    """
    if isinstance(value, str) and value.strip().lower() in (AUTO, NATIVE):
        return value.strip().lower()
    metres = _metres(value)
    if metres is None:
        raise ValueError(f"must be auto, native or metres per pixel (a positive number), got {value!r}")
    return metres


def _metres(value: object) -> float | None:
    """``value`` as a positive, finite number of metres, or None when it is not one."""
    try:
        metres = float(value)
    except (TypeError, ValueError):
        return None
    return metres if math.isfinite(metres) and metres > 0 else None


def _checked(name: str, value: str | float) -> str | float:
    try:
        return parse_gsd(value)
    except ValueError as error:
        raise BadParameterError(name, str(error)) from None


@dataclass(frozen=True)
class GsdOptions:
    """At which resolution the network sees an input.

    ``gsd``: ``auto`` (the GSD the weights were trained at, when they record one), ``native`` (the input's
    own pixels, as before roadseg knew about GSD) or metres per pixel. ``input_gsd``: the inputs' metres
    per pixel, overriding their georeferencing (for JPG/PNG, rasters without a CRS, or a Web Mercator
    raster whose nominal metres are not ground metres).
    """

    gsd: str | float = AUTO
    input_gsd: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "gsd", _checked("gsd", self.gsd))
        if self.input_gsd is not None:
            metres = _metres(self.input_gsd)
            if metres is None:
                raise BadParameterError("input_gsd", f"must be metres per pixel (a positive number), "
                                                     f"got {self.input_gsd!r}")
            object.__setattr__(self, "input_gsd", metres)

    def target(self, weights_gsd: float | None) -> float | None:
        """The GSD the network should see, or None (the input's own)."""
        if self.gsd == NATIVE:
            return None
        if self.gsd == AUTO:
            return weights_gsd
        return float(self.gsd)


@dataclass(frozen=True)
class GsdPlan:
    """How one input meets the network: its GSD, the weights', the GSD the network sees, and the size of
    the virtual grid it runs on (``shape``; None when the input is used as it is)."""

    setting: str
    input_gsd: float | None
    weights_gsd: float | None
    network_gsd: float | None
    shape: tuple[int, int] | None = None

    @property
    def resampled(self) -> bool:
        return self.shape is not None

    def tags(self) -> dict[str, str]:
        """GeoTIFF tags saying which resolution made an output (``unknown`` where none is known)."""
        def text(value: float | None) -> str:
            return "unknown" if value is None else f"{value:.6g}"

        return {"ROADSEG_GSD": self.setting, "ROADSEG_INPUT_GSD": text(self.input_gsd),
                "ROADSEG_WEIGHTS_GSD": text(self.weights_gsd), "ROADSEG_NETWORK_GSD": text(self.network_gsd)}


def differs(gsd: float, target: float) -> bool:
    """Whether ``gsd`` is more than :data:`GSD_TOLERANCE` away from ``target`` (relative to it)."""
    return abs(gsd - target) > GSD_TOLERANCE * target


def plan_gsd(options: GsdOptions, input_gsd: float | None, weights_gsd: float | None,
             shape: tuple[int, int]) -> GsdPlan:
    """The plan for an input of ``shape`` (H, W) whose pixels measure ``input_gsd`` metres (None: unknown).

    The virtual grid covers the input's footprint exactly, with ``round(H * input / target)`` rows (at
    least one), so the network sees ``target`` metres per pixel up to that rounding.

    >>> plan_gsd(GsdOptions(), 0.3, 0.5, (1000, 500)).shape
    (600, 300)
    >>> plan_gsd(GsdOptions(), 0.52, 0.5, (1000, 500)).shape is None  # within 10 %
    True
    """
    setting = options.gsd if isinstance(options.gsd, str) else f"{options.gsd:g}"
    known = options.input_gsd if options.input_gsd is not None else input_gsd
    target = options.target(weights_gsd)
    if known is None or target is None or not differs(known, target):
        return GsdPlan(setting, known, weights_gsd, known)
    factor = known / target
    virtual = (max(1, round(shape[0] * factor)), max(1, round(shape[1] * factor)))
    return GsdPlan(setting, known, weights_gsd, target, virtual)


def raster_gsd(crs, transform, height: int, width: int) -> float | None:
    """Metres per pixel of a georeferenced raster (the side of a square pixel of the same area), or None
    without a CRS or with an identity transform (a plain image).

    Projected CRSs: the transform's pixel size times the CRS's linear unit in metres (nominal metres:
    a Web Mercator pixel measures less on the ground away from the equator). Geographic CRSs: the pixel
    size in degrees times the metres per degree of longitude and latitude at the scene centre on the
    WGS 84 ellipsoid (radii of curvature N cos(lat) and M).
    """
    if crs is None or transform is None or transform.is_identity:
        return None
    area = abs(transform.a * transform.e - transform.b * transform.d)
    if crs.is_geographic:
        _, lat = transform @ (width / 2.0, height / 2.0)
        per_lon, per_lat = metres_per_degree(lat)
        return math.sqrt(area * per_lon * per_lat)
    try:
        _, factor = crs.linear_units_factor
    except Exception:  # rasterio raises CRSError for a CRS without linear units (an engineering CRS, say)
        return None
    return math.sqrt(area) * factor


def metres_per_degree(latitude: float) -> tuple[float, float]:
    """Metres per degree of longitude and of latitude at ``latitude`` on WGS 84.

    >>> [round(value) for value in metres_per_degree(0.0)]
    [111319, 110574]
    """
    phi = math.radians(max(-90.0, min(90.0, latitude)))
    e2 = WGS84_F * (2.0 - WGS84_F)
    w = math.sqrt(1.0 - e2 * math.sin(phi) ** 2)
    prime_vertical = WGS84_A / w  # N
    meridional = WGS84_A * (1.0 - e2) / w ** 3  # M
    return math.radians(1.0) * prime_vertical * math.cos(phi), math.radians(1.0) * meridional
