"""Write vectorize results: GeoJSON FeatureCollections and GraphML road graphs, atomically."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import shapely

from roadseg.io.atomic import atomic_output


def write_geojson(collection: dict, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a FeatureCollection as compact UTF-8 JSON under a temporary name, then rename it."""
    path = Path(path)
    with atomic_output(path, overwrite) as temp, open(temp, "w", encoding="utf-8") as handle:
        json.dump(collection, handle, separators=(",", ":"), allow_nan=False)
    return path


def graph_for_export(graph: nx.MultiGraph, collection: dict) -> nx.MultiGraph:
    """A GraphML-ready copy: nodes with ``x``, ``y`` (output CRS), ``degree`` and ``kind``; one edge per
    feature with its ``id``, ``length_m`` and geometry as WKT. GraphML holds scalars only, no None."""
    out = nx.MultiGraph()
    for node, data in graph.nodes(data=True):
        attrs = {"degree": int(graph.degree(node)), "kind": str(data.get("kind", ""))}
        if "x" in data:
            attrs["x"], attrs["y"] = float(data["x"]), float(data["y"])
        row, col = data.get("rc", (float("nan"), float("nan")))
        attrs["row"], attrs["col"] = float(row), float(col)
        out.add_node(int(node), **attrs)
    for feature in collection["features"]:
        props = feature["properties"]
        if "u" not in props:
            continue
        attrs = {"id": int(props["id"]), "wkt": shapely.geometry.shape(feature["geometry"]).wkt,
                 "source": str(props.get("source", ""))}
        if props.get("length_m") is not None:
            attrs["length_m"] = float(props["length_m"])
        out.add_edge(int(props["u"]), int(props["v"]), key=int(props["id"]), **attrs)
    return out


def write_graphml(graph: nx.MultiGraph, collection: dict, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the road graph as GraphML (see :func:`graph_for_export`) under a temporary name, then rename."""
    path = Path(path)
    export = graph_for_export(graph, collection)
    with atomic_output(path, overwrite) as temp:
        nx.write_graphml(export, temp)
    return path
