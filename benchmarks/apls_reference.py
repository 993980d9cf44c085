"""Compute APLS with CosmiQ's reference implementation (``apls`` 0.1.0 on PyPI, 2019) for every parity case
of tests/metrics/apls_cases.py, and store the numbers in tests/metrics/data/apls_reference.json.

This runs in its own venv, never in roadseg's (the 2019 package pins GDAL 2.4 and needs patches). Setup,
as it was done for the stored numbers (Python 3.11, Debian 12, x86-64)::

    python3 -m venv /tmp/apls-ref
    /tmp/apls-ref/bin/pip install numpy==2.4.6 scipy==1.17.1 networkx==3.6.1 shapely==2.2.0 \\
        pandas==3.1.1 geopandas==1.2.0 fiona==1.10.1 pyproj==3.7.2 utm==0.9.0 matplotlib==3.11.2 \\
        rasterio==1.4.4 rtree==1.4.1 scikit-image==0.26.0 opencv-python-headless==5.0.0.93
    /tmp/apls-ref/bin/pip install --no-deps apls==0.1.0    # its GDAL==2.4.0 pin cannot build today
    /tmp/apls-ref/bin/python benchmarks/apls_reference.py --patch   # applies PATCHES below, once
    /tmp/apls-ref/bin/python benchmarks/apls_reference.py           # writes the JSON

``--patch`` edits the installed package in place; each change is a (file, old text, new text) triple in
PATCHES, applied only where the old text is found exactly once (a re-run skips those already applied):

1. apls_utils.py, wkt_to_G.py: ``from osgeo import gdal, ogr, osr`` made optional; GDAL only serves the
   pixel <-> geo helpers, which these cases do not use (the albu WKT pixels are placed by apls_cases).
2. graphTools.py: ``GeoDataFrame.append`` (removed in pandas 2) replaced by ``pd.concat``.
3. osmnx_funcs.project_graph: the node frame gets its point geometry before its CRS (geopandas >= 0.14
   refuses a CRS on a frame without geometry).
4. osmnx_funcs.project_gdf: ``'proj' in gdf.crs`` on a dict became ``gdf.crs.to_dict().get('proj')``.
5. osmnx_funcs.project_graph: the UTM CRS kept before the geometry column is dropped.
6. apls._clean_sub_graphs: ``nx.connected_component_subgraphs`` (removed in networkx 2.4) replaced by
   subgraphs of ``nx.connected_components``.
7. apls.create_edge_linestrings, the bug fix: an edge drawn twice matched both the seen geometry and its
   reverse, so it was flagged twice and both copies were removed; it is flagged once now (``break``), and
   one copy stays. roadseg keeps one copy too. Unfixed, the "doubled" cases score 0.35 to 0.60 (img999,
   img990, img995, img997) instead of 0.9999.
8. graphTools.parse_OGR_nodes_paths: a MultiLineString is walked through ``.geoms`` (shapely 2 multi-part
   geometries are not iterable).

How the reference is driven (SpaceNet's settings, those of the repository's command line): each GeoJSON
through ``apls._create_gt_graph`` (shared-vertex graph, UTM, osmnx simplification, sub-graphs under 5 m
dropped); then ``make_graphs(linestring_delta=50, is_curved_eps=-1, max_snap_dist=4,
allow_renaming=False)`` and ``compute_apls_metric(min_path_length=0.001)``. Proposal node ids start at
100000 so that they never collide with the truth's (the package matches control points by node id).

``allow_renaming=False`` is ``make_graphs``' own default; the command line passes True. With True, a
control point that snaps within 5 cm of a node already there takes that node's name, so when two control
points snap to one spot (a line end 6 cm from a junction in img990's truth) the first loses its node
and counts as missing: img990-shifted scores 0.9695 instead of 0.9893, img990-osm 0.6115 instead of
0.6208. roadseg keeps both points, as the reference does without renaming. The JSON keeps both numbers
(``apls``, and ``apls_allow_renaming``); the parity test holds roadseg to the first.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import platform
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "tests" / "metrics" / "data" / "apls_reference.json"

PATCHES = [
    ("apls_utils.py", "from osgeo import gdal, ogr, osr\n",
     "try:  # PATCH 1: GDAL only serves the pixel <-> geo helpers\n    from osgeo import gdal, ogr, osr\n"
     "except ImportError:\n    gdal = ogr = osr = None\n"),
    ("wkt_to_G.py", "from osgeo import gdal, ogr, osr\n",
     "try:  # PATCH 1\n    from osgeo import gdal, ogr, osr\nexcept ImportError:\n    gdal = ogr = osr = None\n"),
    ("graphTools.py",
     "            nodeListGpd = nodeListGpd.append({'geometry': pointShp,\n"
     "                                              'osmid': osmNodeidx},\n"
     "                                             ignore_index=True)\n",
     "            # PATCH 2: DataFrame.append was removed in pandas 2\n"
     "            nodeListGpd = gpd.GeoDataFrame(pd.concat([nodeListGpd, gpd.GeoDataFrame(\n"
     "                [{'geometry': pointShp, 'osmid': osmNodeidx}], geometry='geometry')],\n"
     "                ignore_index=True), geometry='geometry')\n"),
    ("graphTools.py", "import geopandas as gpd\n", "import geopandas as gpd\nimport pandas as pd  # PATCH 2\n"),
    ("osmnx_funcs.py",
     "    gdf_nodes = gpd.GeoDataFrame(list(data), index=nodes)\n    gdf_nodes.crs = G_proj.graph['crs']\n",
     "    gdf_nodes = gpd.GeoDataFrame(list(data), index=nodes)\n"
     "    # PATCH 3: geopandas >= 0.14 sets a CRS only on a frame with a geometry column\n"
     "    gdf_nodes = gdf_nodes.set_geometry(gpd.points_from_xy(gdf_nodes['x'], gdf_nodes['y']))\n"
     "    gdf_nodes.crs = G_proj.graph['crs']\n"),
    ("osmnx_funcs.py",
     "            if (gdf.crs is not None) and ('proj' in gdf.crs) and (gdf.crs['proj'] == 'utm'):\n",
     "            # PATCH 4: a CRS is a pyproj.CRS object now, not a dict\n"
     "            if (gdf.crs is not None) and (gdf.crs.to_dict().get('proj') == 'utm'):\n"),
    ("osmnx_funcs.py", "    gdf_nodes_utm = gdf_nodes_utm.drop('geometry', axis=1)\n",
     "    utm_crs = gdf_nodes_utm.crs  # PATCH 5: dropping the geometry now drops the CRS too\n"
     "    gdf_nodes_utm = gdf_nodes_utm.drop('geometry', axis=1)\n"),
    ("osmnx_funcs.py", "    G_proj.graph['crs'] = gdf_nodes_utm.crs\n",
     "    G_proj.graph['crs'] = utm_crs  # PATCH 5\n"),
    ("graphTools.py", "                for linestring in shapely.geometry.shape(geom):\n",
     "                # PATCH 8: shapely 2 multi-part geometries are not iterable, their .geoms are\n"
     "                for linestring in shapely.geometry.shape(geom).geoms:\n"),
    ("apls.py", "    sub_graphs = list(nx.connected_component_subgraphs(G_))\n",
     "    # PATCH 6: networkx 2.4 removed connected_component_subgraphs\n"
     "    sub_graphs = [G_.subgraph(c).copy() for c in nx.connected_components(G_)]\n"),
    ("apls.py", "                            bad_edges.append((u, v))  # , key))\n",
     "                            bad_edges.append((u, v))  # , key))\n"
     "                            break  # PATCH 7: flag a duplicate once, so that one copy stays\n"),
]
SETTINGS = {"linestring_delta": 50, "is_curved_eps": -1, "max_snap_dist": 4, "allow_renaming": False,
            "min_path_length": 0.001}
"""Those of SpaceNet's command line (the repository's ``main``), but ``allow_renaming`` False, the default of
``make_graphs``: see the module docstring. The JSON also holds each case with it True."""


@functools.cache
def package_dir() -> Path:
    """The installed package's folder (asked once: after ``import apls`` the name means its apls.py)."""
    import importlib.util

    spec = importlib.util.find_spec("apls")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("apls is not installed in this Python: see the setup in this script's docstring")
    return Path(list(spec.submodule_search_locations)[0])


def apply_patches(root: Path) -> None:
    for name, old, new in PATCHES:
        path = root / name
        text = path.read_text()
        if new in text:
            continue
        if text.count(old) != 1:
            raise SystemExit(f"{path}: the text to patch is not there once; is this apls 0.1.0?\n{old}")
        path.write_text(text.replace(old, new))
        print(f"patched {name}: {new.splitlines()[0].strip()[:70]}")


def reference_apls(truth: Path, proposal: Path, allow_renaming: bool = False) -> tuple[float, float, float]:
    """(APLS, truth onto proposal, proposal onto truth) by the patched reference, its output silenced."""
    if str(package_dir()) not in sys.path:
        sys.path.insert(0, str(package_dir()))
    with contextlib.redirect_stdout(io.StringIO()):
        import apls as ref  # the package's apls/apls.py (its modules import each other top-level)

        gt, _ = ref._create_gt_graph(str(truth), "", osmidx=0, osmNodeidx=0, verbose=False)
        gp, _ = ref._create_gt_graph(str(proposal), "", osmidx=500, osmNodeidx=100000, verbose=False)
        graphs = ref.make_graphs(gt, gp, linestring_delta=SETTINGS["linestring_delta"],
                                 is_curved_eps=SETTINGS["is_curved_eps"], max_snap_dist=SETTINGS["max_snap_dist"],
                                 allow_renaming=allow_renaming)
        total, forward, backward = ref.compute_apls_metric(*graphs[6:10], graphs[4], graphs[5],
                                                           min_path_length=SETTINGS["min_path_length"])
    return float(total), float(forward), float(backward)


def versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ("apls", "networkx", "shapely", "geopandas", "pandas", "numpy", "scipy", "fiona", "pyproj")
    return {"python": platform.python_version(), **{name: version(name) for name in names}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patch", action="store_true", help="patch the installed apls package, then stop")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.patch:
        apply_patches(package_dir())
        return
    from tests.metrics.apls_cases import cases

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, (make, truth, how) in cases().items():
            proposal = Path(folder) / f"{name}.geojson"
            proposal.write_text(json.dumps(make()))
            total, forward, backward = reference_apls(truth, proposal)
            renamed = reference_apls(truth, proposal, allow_renaming=True)
            results[name] = {"how": how, "truth": str(truth.relative_to(ROOT)), "apls": round(total, 6),
                             "truth_onto_proposal": round(forward, 6), "proposal_onto_truth": round(backward, 6),
                             "apls_allow_renaming": round(renamed[0], 6)}
            print(f"{name:18s} {total:.4f}  ({forward:.4f}, {backward:.4f})  allow_renaming: {renamed[0]:.4f}")
    document = {
        "reference": {
            "package": "apls 0.1.0 from PyPI (CosmiQ Works, 2019-05-21), run by benchmarks/apls_reference.py",
            "settings": SETTINGS, "versions": versions(),
            "patches": [" ".join(item.split()) for item in
                        re.findall(r"^(\d\. .*?)(?=^\d\. |^How the reference)", __doc__, re.S | re.M)],
        },
        "cases": results,
    }
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
