"""GeoJSON in and out: the line geometries of a GeoJSON object, and vectorize results written atomically
(GeoJSON FeatureCollections and GraphML road graphs).

GeoJSON from a mask without georeferencing holds pixel coordinates. It is written, marked twice (a
``"coordinates": "pixel"`` member for roadseg, a ``crs`` member naming a local pixel grid for GDAL and
QGIS, which would otherwise read the pixels as longitude/latitude), and with a one-line warning.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import networkx as nx
import numpy as np
import shapely

from roadseg.io.atomic import atomic_output

LINE_TYPES = frozenset({"LineString", "MultiLineString"})
"""Geometry types read as lines; any other geometry is skipped and counted."""
DRAWN_TYPES = LINE_TYPES | {"Polygon", "MultiPolygon", "GeometryCollection"}
"""Line types, polygons (each ring a line) and collections (their members read in turn): what a preview
draws."""


class GeojsonLines(NamedTuple):
    """The ``(N, 2)`` coordinate arrays of a GeoJSON object's lines, and the geometries that were not lines."""

    lines: list[np.ndarray]
    skipped: int


def geojson_geometries(data: Mapping[str, Any]) -> list[Any]:
    """The geometry members of a FeatureCollection or a Feature; a bare geometry is its own one member."""
    if data.get("type") == "FeatureCollection":
        return [feature.get("geometry") for feature in data.get("features") or []
                if isinstance(feature, Mapping)]
    if data.get("type") == "Feature":
        return [data.get("geometry")]
    return [data]


def _position_lists(kind: str, coords: Any) -> list[Any]:
    """The position lists of a line or polygon geometry: its lines, or its polygons' rings."""
    if kind == "LineString":
        return [coords]
    if kind == "MultiPolygon":
        return [ring for polygon in coords for ring in polygon]
    return list(coords)  # a MultiLineString's lines, a Polygon's rings


def _coordinate_arrays(kind: str, coords: Any) -> list[np.ndarray]:
    """``(N, 2)`` float arrays of a geometry's lines; a position's third (height) value, present or not, is
    dropped so that lines with and without heights read alike."""
    try:
        return [np.array([position[:2] for position in part], dtype=np.float64).reshape(-1, 2)
                for part in _position_lists(kind, coords)]
    except (TypeError, ValueError, IndexError) as error:
        raise ValueError(f"a {kind} has malformed coordinates") from error


def _joined(parts: list[GeojsonLines]) -> GeojsonLines:
    return GeojsonLines([line for part in parts for line in part.lines], sum(part.skipped for part in parts))


def geometry_lines(geometry: Any, kinds: frozenset[str] = LINE_TYPES) -> GeojsonLines:
    """The lines of one GeoJSON geometry whose type is in ``kinds``; other geometries count as skipped.

    An absent (null) geometry is neither. Raises ValueError for malformed coordinates.
    """
    if not geometry:
        return GeojsonLines([], 0)
    kind = geometry.get("type") if isinstance(geometry, Mapping) else None
    if kind not in kinds:
        return GeojsonLines([], 1)
    if kind == "GeometryCollection":
        return _joined([geometry_lines(part, kinds) for part in geometry.get("geometries") or []])
    coords = geometry.get("coordinates")
    return GeojsonLines([] if coords is None else _coordinate_arrays(kind, coords), 0)


def geojson_lines(data: Mapping[str, Any], kinds: frozenset[str] = LINE_TYPES) -> GeojsonLines:
    """The lines of a FeatureCollection, Feature or bare geometry (see :func:`geometry_lines`): the one
    reader of GeoJSON lines behind APLS, line agreement and previews."""
    return _joined([geometry_lines(geometry, kinds) for geometry in geojson_geometries(data)])


def write_geojson(collection: dict, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a FeatureCollection as compact UTF-8 JSON under a temporary name, then rename it; warn when
    its coordinates are pixels (see the module docstring)."""
    path = Path(path)
    if collection.get("coordinates") == "pixel":
        warnings.warn(f"{path}: in pixel coordinates (x right, y down), as the mask has no georeferencing; "
                      "marked with a local pixel-grid CRS, so GIS software will not place it on a map (a "
                      "georeferenced mask gives longitude/latitude)", UserWarning, stacklevel=2)
    with atomic_output(path, overwrite) as temp, open(temp, "w", encoding="utf-8") as handle:
        json.dump(collection, handle, separators=(",", ":"), allow_nan=False)
    return path


def node_attributes(graph: nx.MultiGraph) -> list[tuple[int, dict]]:
    """Each node's id and its ``degree``, ``kind``, ``x``, ``y`` (output CRS, once placed) and pixel ``row``,
    ``col``: what GraphML and the GeoPackage junctions layer say of a node."""
    nodes = []
    for node, data in graph.nodes(data=True):
        attrs = {"degree": int(graph.degree(node)), "kind": str(data.get("kind", ""))}
        if "x" in data:
            attrs["x"], attrs["y"] = float(data["x"]), float(data["y"])
        row, col = data.get("rc", (float("nan"), float("nan")))
        attrs["row"], attrs["col"] = float(row), float(col)
        nodes.append((int(node), attrs))
    return nodes


def graph_for_export(graph: nx.MultiGraph, collection: dict) -> nx.MultiGraph:
    """A GraphML-ready copy: nodes with ``x``, ``y`` (output CRS), ``degree`` and ``kind``; one edge per
    feature with its ``id``, ``length_m``, evidence (``gap_closed``, ``prob_mean``, ``prob_min``) and
    geometry as WKT. GraphML holds scalars only, no None."""
    out = nx.MultiGraph()
    out.add_nodes_from(node_attributes(graph))
    for feature in collection["features"]:
        props = feature["properties"]
        if "u" not in props:
            continue
        attrs = {"id": int(props["id"]), "wkt": shapely.geometry.shape(feature["geometry"]).wkt,
                 "source": str(props.get("source", ""))}
        for name in ("length_m", "prob_mean", "prob_min"):
            if props.get(name) is not None:
                attrs[name] = float(props[name])
        if "gap_closed" in props:
            attrs["gap_closed"] = bool(props["gap_closed"])
        out.add_edge(int(props["u"]), int(props["v"]), key=int(props["id"]), **attrs)
    return out


def write_graphml(graph: nx.MultiGraph, collection: dict, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the road graph as GraphML (see :func:`graph_for_export`) under a temporary name, then rename."""
    path = Path(path)
    export = graph_for_export(graph, collection)
    with atomic_output(path, overwrite) as temp:
        nx.write_graphml(export, temp)
    return path
