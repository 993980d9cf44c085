"""Vectorize results written in the format their file name asks for: GeoJSON, GeoPackage, GeoParquet or
FlatGeobuf, each atomically (:func:`roadseg.io.atomic.atomic_output`).

GeoJSON is :func:`roadseg.io.geojson.write_geojson`, unchanged. GeoPackage and FlatGeobuf go through
GDAL's vector drivers by pyogrio's array API (WKB geometries, one numpy array per property), with the
driver named explicitly, as the temporary file's name is not the output's. GeoParquet is written by
geopandas on pyarrow (GeoParquet 1.0 metadata, the CRS as PROJJSON), since the GDAL in pyogrio's wheels
has no Parquet driver:

- ``.gpkg``: a GeoPackage of two layers, ``roads`` (the features, their properties as fields) and, with
  a road graph, ``junctions`` (its nodes as points: ``id``, the node id the roads' ``u``/``v`` name,
  ``degree``, ``kind``, and the pixel ``row``/``col``);
- ``.parquet`` (GeoParquet) and ``.fgb`` (FlatGeobuf): the ``roads`` layer only, as those files hold one.

Every format keeps the collection's CRS: its ``crs`` member, or WGS 84 without one (RFC 7946). Lines in
pixel coordinates (a mask without georeferencing) are written with no CRS at all, with a warning.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import networkx as nx
import numpy as np
import shapely

from roadseg.errors import BadInputError, BadParameterError, OutputError
from roadseg.io.atomic import atomic_output
from roadseg.io.geojson import node_attributes, write_geojson


@dataclass(frozen=True)
class VectorFormat:
    """One output format: GDAL's driver for it (None: written without GDAL, by roadseg's GeoJSON writer or
    by geopandas for GeoParquet), whether a file holds the junctions layer too, and the output CRS
    ``roadseg vectorize`` uses when none is asked for."""

    name: str
    driver: str | None
    layers: tuple[str, ...] = ("roads",)
    default_crs: str = "source"


GEOJSON = VectorFormat("GeoJSON", None, default_crs="EPSG:4326")
VECTOR_FORMATS: dict[str, VectorFormat] = {
    ".geojson": GEOJSON,
    ".json": GEOJSON,
    ".gpkg": VectorFormat("GeoPackage", "GPKG", ("roads", "junctions")),
    ".parquet": VectorFormat("GeoParquet", None),
    ".fgb": VectorFormat("FlatGeobuf", "FlatGeobuf"),
}
"""Output formats by file extension (lower case)."""

JUNCTION_FIELDS = (("id", np.int64), ("degree", np.int64), ("kind", object), ("row", np.float64),
                   ("col", np.float64))
"""The junctions layer's fields and their types, fixed so that an empty layer has them too."""


def vector_format(output: str | Path) -> VectorFormat:
    """The format ``output``'s extension names; one-line errors for an unknown extension and for a format
    whose GDAL driver pyogrio's GDAL lacks (so a command can refuse it before any work)."""
    suffix = Path(output).suffix.lower()
    found = VECTOR_FORMATS.get(suffix)
    if found is None:
        known = ", ".join(VECTOR_FORMATS)
        raise BadParameterError("output", f"must end in one of {known} (the format follows the extension), "
                                          f"got {Path(output).name!r}")
    if found.driver is not None:
        _require_driver(found)
    return found


def _require_driver(fmt: VectorFormat) -> None:
    """Refuse a format the installed GDAL cannot write (a GDAL built without one of its drivers)."""
    import pyogrio

    if "w" not in pyogrio.list_drivers().get(fmt.driver, ""):
        raise OutputError(f"{fmt.name} needs GDAL's {fmt.driver} driver, which the GDAL "
                          f"{pyogrio.__gdal_version_string__} of pyogrio {pyogrio.__version__} lacks; write "
                          "another format (.gpkg, .parquet or .geojson), or install a pyogrio whose GDAL has it")


def collection_crs(collection: Mapping[str, Any]) -> str | None:
    """The CRS a FeatureCollection is in, as GDAL reads it: its ``crs`` member's name, WGS 84 without one,
    None for pixel coordinates (``"coordinates": "pixel"``)."""
    if collection.get("coordinates") == "pixel":
        return None
    member = collection.get("crs")
    return member["properties"]["name"] if member else "EPSG:4326"


def _field_array(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """One property as a typed array and its null mask (None: no nulls). Integers stay integers (node ids),
    numbers with a fraction are floats, booleans stay booleans, anything else is text; lists and mappings
    become JSON text."""
    present = [value for value in values if value is not None]
    missing = np.array([value is None for value in values], dtype=bool)
    if present and all(isinstance(v, (bool, np.bool_)) for v in present):
        array = np.array([bool(v) for v in values], dtype=bool)  # a boolean field (gap_closed), not text
    elif present and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in present):
        array = np.array([0 if v is None else v for v in values], dtype=np.int64)
    elif all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in present):
        array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    else:
        array = np.array([None if v is None else v if isinstance(v, str) else json.dumps(v) for v in values],
                         dtype=object)
    return array, (missing if missing.any() else None)


def _road_fields(features: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[np.ndarray], list]:
    """The features' properties as field names, arrays and null masks (a property a feature lacks is null)."""
    names: list[str] = []
    for feature in features:
        names.extend(name for name in feature.get("properties") or {} if name not in names)
    columns = [_field_array([(f.get("properties") or {}).get(name) for f in features]) for name in names]
    return names, [array for array, _ in columns], [mask for _, mask in columns]


GEOMETRY_TYPES = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString",
                  6: "MultiPolygon"}
"""GDAL's names of shapely's geometry type ids."""


class Layer(NamedTuple):
    """One layer to write: its name, geometries, fields (names, arrays, null masks) and, for an empty
    layer, the geometry type it would have held."""

    name: str
    geometries: np.ndarray
    fields: list[str]
    arrays: list[np.ndarray]
    masks: list[np.ndarray | None]
    empty_type: str = "Unknown"


def _geometry_type(layer: Layer) -> str:
    """The layer's geometry type: the features' one type, "Unknown" when mixed, ``empty_type`` when empty."""
    kinds = set(shapely.get_type_id(layer.geometries).tolist())
    if not kinds:
        return layer.empty_type
    return GEOMETRY_TYPES.get(kinds.pop(), "Unknown") if len(kinds) == 1 else "Unknown"


def _junction_layer(graph: nx.MultiGraph) -> Layer:
    """The graph's nodes (those placed in the output CRS) as points with the :data:`JUNCTION_FIELDS`."""
    nodes = [(node, data) for node, data in node_attributes(graph) if "x" in data]
    points = shapely.points([[data["x"], data["y"]] for _, data in nodes]) if nodes else np.array([], object)
    rows = {"id": [node for node, _ in nodes], **{name: [data[name] for _, data in nodes]
                                                   for name, _ in JUNCTION_FIELDS[1:]}}
    names = [name for name, _ in JUNCTION_FIELDS]
    return Layer("junctions", np.asarray(points, dtype=object), names,
                 [np.array(rows[name], dtype=kind) for name, kind in JUNCTION_FIELDS], [None] * len(names), "Point")


def _roads_layer(features: Sequence[Mapping[str, Any]], lines: bool) -> Layer:
    """The features with their properties as fields; an empty layer is typed as lines when ``lines``."""
    geometries = np.array([shapely.geometry.shape(f["geometry"]) for f in features], dtype=object)
    return Layer("roads", geometries, *_road_fields(features), "LineString" if lines else "Unknown")


def _gdal_write(temp: Path, layer: Layer, fmt: VectorFormat, crs: str | None, append: bool = False) -> None:
    """Write one layer with the format's driver; GDAL's errors become one :class:`OutputError` line."""
    from pyogrio.raw import write

    masks = layer.masks if any(mask is not None for mask in layer.masks) else None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="'crs' was not provided")  # pixel coordinates: said once
        try:
            write(temp, shapely.to_wkb(layer.geometries, output_dimension=2), layer.arrays, fields=layer.fields,
                  field_mask=masks, layer=layer.name, driver=fmt.driver, geometry_type=_geometry_type(layer),
                  crs=crs, append=append)
        except Exception as error:  # pyogrio's DataSourceError, FieldError, ...: GDAL's words, one line
            message = " ".join(str(error).split())
            raise OutputError(f"{temp}: GDAL could not write the {layer.name} layer as {fmt.name}: "
                              f"{message}") from error


_NULLABLE = {np.dtype(bool): "boolean", np.dtype(np.int64): "Int64"}
"""pandas' nullable types for fields with nulls: a missing ``gap_closed`` stays null, not False or NaN."""


def _geoparquet_write(temp: Path, layer: Layer, crs: str | None) -> None:
    """Write the roads layer as GeoParquet (WKB geometries, GeoParquet 1.0 metadata with the CRS)."""
    import geopandas
    import pandas

    columns = {}
    for name, array, mask in zip(layer.fields, layer.arrays, layer.masks):
        column = pandas.array(array, dtype=_NULLABLE.get(array.dtype)) if mask is not None else array
        if mask is not None:
            column[mask] = None
        columns[name] = column
    frame = geopandas.GeoDataFrame(columns, geometry=list(layer.geometries), crs=crs)
    try:
        frame.to_parquet(temp, index=False)
    except Exception as error:  # pyarrow's ArrowInvalid, OSError: one line
        raise OutputError(f"{temp}: could not write GeoParquet: {' '.join(str(error).split())}") from error


def _warn_pixels(path: Path, fmt: VectorFormat) -> None:
    """Say that a file has no CRS: GIS software would otherwise show it nowhere, or wrongly, unexplained."""
    warnings.warn(f"{path}: in pixel coordinates (x right, y down), as the mask has no georeferencing; written "
                  f"without a CRS, so GIS software will not place this {fmt.name} on a map (a georeferenced mask "
                  "keeps its CRS)", UserWarning, stacklevel=3)


def write_roads(collection: Mapping[str, Any], output: str | Path, *, graph: nx.MultiGraph | None = None,
                overwrite: bool = False) -> Path:
    """Write a vectorize FeatureCollection in the format ``output``'s extension names (:data:`VECTOR_FORMATS`),
    under a temporary name renamed when complete. ``graph``, the road graph of a line result (none for
    polygons), adds the junctions layer where the format holds several layers (GeoPackage). GeoJSON is
    written as :func:`~roadseg.io.geojson.write_geojson` writes it.

    >>> import numpy as np, pyogrio, tempfile, warnings
    >>> from roadseg import vectorize, VectorizeOptions
    >>> road = np.zeros((40, 80), bool); road[18:22, :] = True
    >>> result = vectorize(road, VectorizeOptions(pixel_size=1.0))
    >>> with warnings.catch_warnings():  # pixel coordinates: written without a CRS, and said
    ...     warnings.simplefilter("ignore")
    ...     path = write_roads(result.collection, Path(tempfile.mkdtemp()) / "roads.gpkg", graph=result.graph)
    >>> pyogrio.list_layers(path).tolist()
    [['roads', 'LineString'], ['junctions', 'Point']]
    >>> import shutil; shutil.rmtree(path.parent)
    """
    output = Path(output)
    fmt = vector_format(output)
    if fmt is GEOJSON:
        return write_geojson(dict(collection), output, overwrite=overwrite)
    crs = collection_crs(collection)
    if crs is None:
        _warn_pixels(output, fmt)
    roads = _roads_layer(collection["features"], lines=graph is not None)
    with atomic_output(output, overwrite) as temp:
        if fmt.driver is None:
            _geoparquet_write(temp, roads, crs)
        else:
            _gdal_write(temp, roads, fmt, crs)
        if graph is not None and "junctions" in fmt.layers:
            _gdal_write(temp, _junction_layer(graph), fmt, crs, append=True)
    return output


def read_roads(path: str | Path) -> dict[str, Any]:
    """The lines of a GeoPackage (its ``roads`` layer, else its first), FlatGeobuf or GeoParquet file as a
    GeoJSON FeatureCollection in longitude/latitude (RFC 7946), for scoring them like GeoJSON roads.

    One-line :class:`~roadseg.errors.BadInputError` naming the file for one that cannot be read and for
    lines without a CRS (vectorize's output for a mask without georeferencing has no place on a map).
    """
    import geopandas

    path = Path(path)
    fmt = vector_format(path)
    try:
        if fmt.driver is None:
            frame = geopandas.read_parquet(path)
        else:
            import pyogrio

            layers = [name for name, _ in pyogrio.list_layers(path)]
            frame = geopandas.read_file(path, layer="roads" if "roads" in layers else layers[0], engine="pyogrio")
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such file") from None
    except Exception as error:  # pyogrio's DataSourceError, pyarrow's ArrowInvalid, ...: one line
        raise BadInputError(f"{path}: not a readable {fmt.name} file ({' '.join(str(error).split())}); give "
                            "road centrelines as GeoJSON, GeoPackage, FlatGeobuf or GeoParquet") from error
    if frame.crs is None:
        raise BadInputError(f"{path}: its lines have no CRS (pixel coordinates?), so they have no place on the map; "
                            "vectorize a georeferenced mask")
    return json.loads(frame.to_crs("OGC:CRS84").to_json(na="null"))
