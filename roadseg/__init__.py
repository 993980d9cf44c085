"""roadseg: road extraction from satellite imagery with MindSpore's D-LinkNet.

The public API, by job (each name is imported on first use, so ``import roadseg`` stays fast and
loads no MindSpore):

- model: :func:`load_model` -> :class:`RoadModel` (``.predict(image, options)``), :class:`ModelRuntime`;
- predict: :func:`predict_array`, :func:`predict_file`, :func:`predict_files` with
  :class:`PredictOptions` (its ``gsd``: :class:`GsdOptions`), :class:`ImageScaling` and :class:`OutputOptions`;
  inputs may be files, URLs or STAC items (:func:`as_input`);
- vectorize: :func:`vectorize` (an array or decoded mask), :func:`vectorize_files`, :class:`VectorizeOptions`,
  and :func:`write_roads` (GeoJSON, GeoPackage, GeoParquet or FlatGeobuf by the file's extension),
  :func:`read_roads` (the other formats, back as GeoJSON);
- mosaic: :func:`stitch` with :class:`StitchOptions`;
- metrics: :func:`evaluate_masks` (:class:`ScoreOptions`), :func:`evaluate_graphs` (:class:`GraphScoring`),
  :func:`apls` and :func:`topo_score` (:class:`TopoOptions`) on road graphs, and :func:`graph_from_geojson`;
- look: :func:`render_preview`;
- errors: :class:`RoadsegError` and its kinds.

The network classes live in :mod:`roadseg.model`. ``docs/api.md`` has one runnable example per job.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it; resolved lazily by __getattr__ below.
_LAZY_EXPORTS = {
    "load_model": "roadseg.model.loaded",
    "RoadModel": "roadseg.model.loaded",
    "ModelRuntime": "roadseg.model.loaded",
    "InputConvention": "roadseg.model.convention",
    "predict_array": "roadseg.inference.predict",
    "predict_file": "roadseg.inference.predict",
    "predict_files": "roadseg.inference.predict",
    "PredictOptions": "roadseg.inference.options",
    "OutputOptions": "roadseg.inference.options",
    "GsdOptions": "roadseg.inference.gsd",
    "ImageScaling": "roadseg.io.raster_read",
    "as_input": "roadseg.io.inputs",
    "vectorize": "roadseg.vector.vectorize",
    "vectorize_files": "roadseg.vector.vectorize",
    "VectorizeOptions": "roadseg.vector.vectorize",
    "write_roads": "roadseg.io.vector_formats",
    "read_roads": "roadseg.io.vector_formats",
    "stitch": "roadseg.io.mosaic",
    "StitchOptions": "roadseg.io.mosaic",
    "evaluate_masks": "roadseg.metrics.evaluate",
    "ScoreOptions": "roadseg.metrics.evaluate",
    "evaluate_graphs": "roadseg.metrics.evaluate",
    "GraphScoring": "roadseg.metrics.evaluate",
    "apls": "roadseg.metrics.apls",
    "graph_from_geojson": "roadseg.metrics.apls",
    "topo_score": "roadseg.metrics.topo",
    "TopoOptions": "roadseg.metrics.topo",
    "render_preview": "roadseg.preview",
    **{name: "roadseg.errors" for name in (
        "RoadsegError", "BadParameterError", "BadInputError", "WeightsError", "WeightsNotAvailableError",
        "DownloadError", "ChecksumMismatchError", "DeviceUnavailableError", "EngineError", "ExportError",
        "OutputError", "OutputExistsError", "TrainingError")},
}

__all__ = ["__version__", *_LAZY_EXPORTS]


def __getattr__(name: str) -> Any:
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'roadseg' has no attribute {name!r}")
    return getattr(importlib.import_module(module_name), name)


def __dir__() -> list[str]:
    return sorted(__all__)
