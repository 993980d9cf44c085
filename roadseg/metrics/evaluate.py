"""Score predicted road masks against ground truth: pairing by id, grid checks, per-image and overall scores.

How a mask file is read (the same rule for predictions and ground truth):

- a pixel is *road* when any non-alpha band is > 0, so a DeepGlobe label (0/255, three identical
  channels), a PNG written by ``roadseg predict`` (0/255) and its GeoTIFF (0/1) all work;
- a pixel is *nodata* (not scored) when the raster's nodata tag says so: ``roadseg predict`` tags its
  GeoTIFF masks with nodata 255, so 255 there is excluded, while an untagged 0/255 PNG has no nodata and
  255 is road. The tag, not the file suffix, decides, under the one nodata rule of
  :mod:`roadseg.io.masks`: a tag that names one of the mask's classes (0, or the 255 of a 0/255 mask)
  is set aside with a warning, so a ground truth tagged nodata 0 keeps its background.

Predictions and ground truth are never the same file: a pair whose two sides are one file is refused,
as is predicting into the folder of the ground truth (the predicted masks would be the truth's names).

Pairing: ``<id>_mask.png`` (or any ``<stem>_mask.<ext>``) matches the file of the other side with the same
``<id>``/``<stem>``; a mask without ``_mask`` in its name is keyed by its stem. In a directory that holds
any ``*_mask.*`` file only those are masks (the DeepGlobe layout keeps ``<id>_sat.jpg`` beside them).
Rasters are compared pixel for pixel, so their shapes must agree, and when both are georeferenced their
CRS and transform must be identical. Files without a partner, ambiguous ids and differing grids are
reported by name as :class:`Problem` entries while the other pairs are scored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from roadseg.errors import BadInputError, BadParameterError, RoadsegError
from roadseg.io.inputs import collect_inputs, collect_masks
from roadseg.io.remote import RemoteRaster, is_url
from roadseg.metrics.apls import CONTROL_SPACING_M, SNAP_DISTANCE_M, AplsResult
from roadseg.metrics.pixel import (
    DEFAULT_SLACK,
    PixelScores,
    RelaxedCounts,
    confusion_matrix,
    relaxed_counts,
    scores_from_confusion,
)
from roadseg.metrics.topo import TopoResult

if TYPE_CHECKING:
    from roadseg.inference.options import PredictOptions
    from roadseg.io.grid import RasterGrid

MASK_SUFFIX = "_mask"
IMAGE_SUFFIX = "_sat"
ERROR_MAP_SUFFIX = "_errors.png"
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".fgb", ".parquet")
"""Road centrelines, as vectorize writes them, which APLS and TOPO score."""


# ---------------------------------------------------------------------------------------------------
# names and pairing

def mask_key(path: Path | str) -> str:
    """The id a mask is matched by: its stem without a trailing ``_mask`` (``104_mask.png`` -> ``104``)."""
    stem = path.stem if isinstance(path, RemoteRaster) else Path(path).stem
    return stem[: -len(MASK_SUFFIX)] if stem.lower().endswith(MASK_SUFFIX) else stem


def image_key(path: Path | str) -> str:
    """The id an image is matched by: its stem without a trailing ``_sat`` (``104_sat.jpg`` -> ``104``)."""
    stem = Path(path).stem
    return stem[: -len(IMAGE_SUFFIX)] if stem.lower().endswith(IMAGE_SUFFIX) else stem


def _is_mask_name(path: Path) -> bool:
    return path.stem.lower().endswith(MASK_SUFFIX)


@dataclass(frozen=True)
class Problem:
    """Something that kept a file or pair from being scored, by name."""

    name: str
    message: str


@dataclass(frozen=True)
class MaskPair:
    """A prediction mask and the ground truth it is scored against, matched by ``key`` (the image id)."""

    key: str
    prediction: Path | RemoteRaster
    truth: Path | RemoteRaster


def _index(paths: Sequence[Path], side: str, problems: list[Problem]) -> dict[str, Path]:
    by_key: dict[str, list[Path]] = {}
    for path in paths:
        by_key.setdefault(mask_key(path), []).append(path)
    index: dict[str, Path] = {}
    for key, group in by_key.items():
        if len(group) > 1:
            names = ", ".join(str(path) for path in group)
            problems.append(Problem(key, f"several {side} masks share the id {key!r}: {names}; keep one"))
        else:
            index[key] = group[0]
    return index


def _single_file(items: Sequence[Path | str]) -> bool:
    return len(items) == 1 and (is_url(str(items[0])) or Path(items[0]).is_file())


def _mask_source(item: Path | str | RemoteRaster) -> Path | RemoteRaster:
    """A mask named by the user: a URL (``https://``, ``s3://``, ``gs://``) read in place, else a file."""
    if isinstance(item, RemoteRaster):
        return item
    return RemoteRaster(str(item)) if is_url(str(item)) else Path(item)


def _shown(source: Path | RemoteRaster) -> Path | str:
    """How a result names a mask: its path, or its URL without user info or query string (secrets)."""
    return source if isinstance(source, Path) else str(source)


@dataclass(frozen=True)
class Pairing:
    """The pairs found, and the masks left without a partner (or with two), as problems to report."""

    pairs: list[MaskPair]
    problems: list[Problem]


def pair_masks(predictions: Sequence[Path], truths: Sequence[Path]) -> Pairing:
    """Match prediction and ground-truth masks by id; report unmatched and ambiguous files by name.

    >>> pairing = pair_masks([Path("p/1_mask.png"), Path("p/2_mask.png")], [Path("t/1_mask.png")])
    >>> [pair.key for pair in pairing.pairs], [problem.name for problem in pairing.problems]
    (['1'], ['p/2_mask.png'])
    """
    problems: list[Problem] = []
    pred_index = _index(predictions, "prediction", problems)
    truth_index = _index(truths, "ground-truth", problems)
    pairs = [MaskPair(key, pred_index[key], truth_index[key])
             for key in sorted(pred_index.keys() & truth_index.keys())]
    for key in sorted(pred_index.keys() - truth_index.keys()):
        path = pred_index[key]
        problems.append(Problem(str(path), f"{path}: no ground-truth mask with id {key!r}"))
    for key in sorted(truth_index.keys() - pred_index.keys()):
        path = truth_index[key]
        problems.append(Problem(str(path), f"{path}: no prediction with id {key!r}"))
    return Pairing(pairs, problems)


# ---------------------------------------------------------------------------------------------------
# reading

@dataclass(frozen=True)
class MaskData:
    road: np.ndarray
    """(H, W) bool."""
    valid: np.ndarray | None
    """(H, W) bool: scored pixels, or None when every pixel is scored."""
    grid: RasterGrid


@contextlib.contextmanager
def _open(path: Path | RemoteRaster):
    """The mask open for reading, under roadseg's GDAL settings (a URL's timeouts and retries)."""
    from roadseg.io.raster_open import open_raster
    from roadseg.io.raster_read import io_env

    with io_env(), open_raster(path, "give a PNG, JPEG or GeoTIFF mask") as dataset:
        yield dataset


def read_mask(path: Path | str | RemoteRaster) -> MaskData:
    """Read a mask file (or a mask at a URL, in place): road where a non-alpha band is > 0 (roadseg's own
    masks: 1), nodata where the nodata tag says (see the module docstring).

    Integer rasters only: a float raster is a probability map and raises :class:`BadInputError`.
    """
    from rasterio.enums import ColorInterp

    from roadseg.io.grid import RasterGrid
    from roadseg.io.masks import decode_any_band, is_predict_mask
    from roadseg.io.raster_open import probability_scale

    path = _mask_source(path)
    with _open(path) as dataset:
        if probability_scale(dataset) is not None:
            raise BadInputError(f"{path}: holds probabilities, not a mask; score the <id>_mask file, or "
                                "threshold the probabilities first")
        bands = [index for index, interp in zip(dataset.indexes, dataset.colorinterp)
                 if interp != ColorInterp.alpha] or list(dataset.indexes)
        data = dataset.read(bands)
        nodata, mask_format = dataset.nodata, "predict" if is_predict_mask(dataset) else "binary"
        grid = RasterGrid.from_dataset(dataset)
    try:
        road, valid = decode_any_band(data, nodata, mask_format=mask_format, source=str(path))
    except ValueError as error:
        raise BadInputError(f"{path}: {error}") from error
    return MaskData(road, None if valid.all() else valid, grid)


def read_image(path: Path | str) -> np.ndarray:
    """Read imagery as (H, W, C) for drawing error maps."""
    with _open(Path(path)) as dataset:
        return np.transpose(dataset.read(), (1, 2, 0))


def check_grids(prediction: Path, pred_grid: RasterGrid, truth: Path, truth_grid: RasterGrid) -> str | None:
    """Why two masks cannot be compared pixel for pixel, or None when they can."""
    from roadseg.io.grid import grid_mismatch

    kind = grid_mismatch(pred_grid, truth_grid)
    if kind == "size":
        return (f"{prediction} is {pred_grid.width}x{pred_grid.height} pixels but {truth} is "
                f"{truth_grid.width}x{truth_grid.height}; predict on the same image size as the ground truth")
    if kind == "crs":
        return f"{prediction} has CRS {pred_grid.crs} but {truth} has {truth_grid.crs}; use the same grid"
    if kind == "transform":
        return (f"{prediction} and {truth} are on different grids (transforms {tuple(pred_grid.transform)[:6]} "
                f"and {tuple(truth_grid.transform)[:6]}); use the same grid")
    return None


# ---------------------------------------------------------------------------------------------------
# scoring

@dataclass(frozen=True)
class ImageResult:
    """Scores of one prediction/ground-truth pair (a remote mask named by its URL without secrets)."""

    name: str
    prediction: Path | str
    truth: Path | str
    confusion: list[list[int]]
    """``[[tn, fp], [fn, tp]]``: rows true class, columns predicted class (0 background, 1 road)."""
    relaxed: RelaxedCounts
    scores: PixelScores
    error_map: Path | None = None


@dataclass
class EvalResult:
    """Overall scores (one confusion matrix over all pixels of all pairs) and per-image scores."""

    slack: float
    confusion: list[list[int]]
    relaxed: RelaxedCounts
    scores: PixelScores
    images: list[ImageResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        """Plain types for JSON: paths as strings, nan as None."""
        return _plain(dataclasses.asdict(self))


def _plain(value):
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and value != value:
        return None
    return value


def score_masks(pred: MaskData, truth: MaskData, *, slack: float = DEFAULT_SLACK
                ) -> tuple[np.ndarray, RelaxedCounts, np.ndarray | None]:
    """Confusion matrix and relaxed counts of one pair; pixels that are nodata on either side are skipped."""
    valid = pred.valid
    if truth.valid is not None:
        valid = truth.valid if valid is None else valid & truth.valid
    matrix = confusion_matrix(pred.road, truth.road, valid)
    return matrix, relaxed_counts(pred.road, truth.road, valid, slack=slack), valid


def _find_images(dirs: Iterable[Path]) -> dict[str, Path]:
    images: dict[str, Path] = {}
    for directory in dirs:
        if not directory.is_dir():
            continue
        for path in collect_inputs([directory]):
            if not _is_mask_name(path):
                images.setdefault(image_key(path), path)
    return images


@dataclass(frozen=True)
class ScoreOptions:
    """How masks are scored, and what is drawn besides the scores.

    ``slack``: the relaxed-score tolerance in pixels. ``error_maps``: a directory for one
    ``<id>_errors.png`` per pair (TP, FP, FN over the image), or None. ``images``: directories searched
    for the imagery under the error maps (``<id>_sat.*`` or ``<id>.*``), by default the ground-truth
    directories; pairs without imagery are drawn on black.
    """

    slack: float = DEFAULT_SLACK
    error_maps: Path | None = None
    images: tuple[Path, ...] | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.slack) and self.slack >= 0):
            raise BadParameterError("slack", f"must be a finite number of pixels >= 0, got {self.slack!r}")
        if self.error_maps is not None:
            object.__setattr__(self, "error_maps", Path(self.error_maps))
        if self.images is not None:
            object.__setattr__(self, "images", tuple(Path(item) for item in self.images))


def evaluate_masks(predictions: Iterable[str | Path], truths: Iterable[str | Path],
                   options: ScoreOptions | None = None, *, overwrite: bool = False,
                   progress: Callable[[int, int, str], None] | None = None) -> EvalResult:
    """Pair, read and score prediction masks against ground-truth masks.

    Parameters
    ----------
    predictions, truths
        Files, directories or globs of masks (see the module docstring).
    options
        Slack, error maps and their imagery (:class:`ScoreOptions`).
    overwrite
        Replace error maps that exist.
    progress
        Called as ``progress(done, total, name)`` after each pair.

    A pair that cannot be scored (unreadable, different grids, existing error map without
    ``overwrite``) becomes a :class:`Problem` and the others are still scored. A prediction that is its
    own ground truth, or an error map that would replace an input, raises :class:`BadInputError` first.
    """
    options = options or ScoreOptions()
    truth_items, predictions = list(truths), list(predictions)
    pairing = _pairing(predictions, truth_items)
    problems = list(pairing.problems)
    if options.images is None:
        image_dirs = list(dict.fromkeys(Path(item) if Path(item).is_dir() else Path(item).parent
                                        for item in truth_items if not is_url(str(item))))
    else:
        image_dirs = list(options.images)
    image_index = _find_images(image_dirs) if options.error_maps is not None else {}
    _check_error_maps(options.error_maps, pairing.pairs, image_index.values())
    total = np.zeros((2, 2), dtype=np.int64)
    relaxed_total = RelaxedCounts()
    results: list[ImageResult] = []
    for done, pair in enumerate(pairing.pairs, start=1):
        try:
            result = _score_pair(pair, options, image_index.get(pair.key), overwrite)
        except RoadsegError as error:
            problems.append(Problem(pair.key, str(error)))
        else:
            total += np.asarray(result.confusion)
            relaxed_total += result.relaxed
            results.append(result)
        if progress is not None:
            progress(done, len(pairing.pairs), pair.key)
    return EvalResult(slack=options.slack, confusion=total.tolist(), relaxed=relaxed_total,
                      scores=scores_from_confusion(total, relaxed_total), images=results, problems=problems)


def _pairing(predictions: Sequence[str | Path], truths: Sequence[str | Path]) -> Pairing:
    """The pairs to score; one file against one file is a pair whatever their names (the user paired
    them). Refuses a pair whose prediction is its ground truth: it would score 1 on every metric."""
    from roadseg.io.atomic import same_file

    if _single_file(predictions) and _single_file(truths):
        prediction, truth = _mask_source(predictions[0]), _mask_source(truths[0])
        pairing = Pairing([MaskPair(mask_key(prediction), prediction, truth)], [])
    else:
        pairing = pair_masks(collect_masks(predictions), collect_masks(truths))
    for pair in pairing.pairs:
        local = isinstance(pair.prediction, Path) and isinstance(pair.truth, Path)
        if same_file(pair.prediction, pair.truth) if local else pair.prediction == pair.truth:
            raise BadInputError(f"{pair.prediction}: is both the prediction and the ground truth of {pair.key!r}; "
                                "give predictions and ground truth as different files")
    return pairing


def _error_map_path(error_maps: Path, pair: MaskPair) -> Path:
    return Path(error_maps) / f"{pair.key}{ERROR_MAP_SUFFIX}"


def _check_error_maps(error_maps: Path | None, pairs: Sequence[MaskPair], images: Iterable[Path]) -> None:
    """Refuse error maps that would replace a mask or image of the evaluation, before any is written."""
    from roadseg.io.atomic import check_apart

    if error_maps is not None:
        inputs = [path for pair in pairs for path in (pair.prediction, pair.truth) if isinstance(path, Path)]
        inputs += list(images)
        check_apart([_error_map_path(error_maps, pair) for pair in pairs], inputs)


def _score_pair(pair: MaskPair, options: ScoreOptions, image: Path | None, overwrite: bool) -> ImageResult:
    """Read and score one pair, and draw its error map; a :class:`RoadsegError` says why it cannot be."""
    from roadseg.metrics.error_maps import error_map, write_error_map

    pred, truth = read_mask(pair.prediction), read_mask(pair.truth)
    reason = check_grids(pair.prediction, pred.grid, pair.truth, truth.grid)
    if reason is not None:
        raise BadInputError(reason)
    matrix, relaxed, valid = score_masks(pred, truth, slack=options.slack)
    map_path = None
    if options.error_maps is not None:
        map_path = _error_map_path(options.error_maps, pair)
        picture = _background(image, pair, pred.road.shape)
        write_error_map(map_path, error_map(pred.road, truth.road, valid, picture), overwrite=overwrite)
    return ImageResult(pair.key, _shown(pair.prediction), _shown(pair.truth), matrix.tolist(), relaxed,
                       scores_from_confusion(matrix, relaxed), map_path)


def _background(path: Path | None, pair: MaskPair, shape: tuple[int, ...]) -> np.ndarray | None:
    if path is None or path in (pair.prediction, pair.truth):
        return None
    try:
        image = read_image(path)
    except BadInputError as error:
        warnings.warn(f"error map of {pair.key} drawn without imagery: {error}", stacklevel=3)
        return None
    if image.shape[:2] != tuple(shape):
        warnings.warn(f"error map of {pair.key} drawn without imagery: {path} is "
                      f"{image.shape[1]}x{image.shape[0]}, the masks {shape[1]}x{shape[0]}", stacklevel=3)
        return None
    return image


def satellite_images(data: Path | str) -> list[Path]:
    """The ``<id>_sat.*`` images of a DeepGlobe-layout directory (beside their ``<id>_mask.png``)."""
    images = [path for path in collect_inputs([data]) if path.stem.lower().endswith(IMAGE_SUFFIX)]
    if not images:
        raise BadInputError(f"{data}: no <id>_sat.* images found; give a DeepGlobe-layout directory "
                            "(<id>_sat.jpg with <id>_mask.png)")
    return images


@dataclass(frozen=True)
class PredictPlan:
    """Predicting a DeepGlobe-layout folder and scoring it, settled before any model loads: the images
    to predict (those with their ground truth beside them), every ground-truth mask, and the images
    left out, as problems naming them."""

    images: list[Path]
    truths: list[Path]
    problems: list[Problem]


def plan_predict_eval(data: Path | str, predictions: Path | str | None = None) -> PredictPlan:
    """What :func:`predict_and_evaluate` will do with ``data``, predicting into ``predictions``.

    Raises :class:`BadInputError` when no ``<id>_sat.*`` image has an ``<id>_mask.*`` beside it, or
    when a predicted mask would be written over (or reused from) a ground-truth file.
    """
    images = satellite_images(data)
    truths = [path for path in collect_inputs([data]) if _is_mask_name(path)]
    keys = {mask_key(path) for path in truths}
    kept = [image for image in images if image_key(image) in keys]
    if not kept:
        raise BadInputError(f"{data}: none of its {len(images)} <id>_sat.* image(s) has an <id>_mask.* ground "
                            "truth beside it; give a DeepGlobe-layout directory (<id>_sat.jpg with <id>_mask.png)")
    if predictions is not None:
        _refuse_predicting_onto_truth(kept, truths, Path(predictions))
    problems = [Problem(image_key(image), f"{image}: no ground-truth mask with id {image_key(image)!r} beside it; "
                                          "not predicted") for image in images if image not in kept]
    return PredictPlan(kept, truths, problems)


def _refuse_predicting_onto_truth(images: Sequence[Path], truths: Sequence[Path], predictions: Path) -> None:
    """Predicted masks take ``<id>_mask`` names: in the ground truth's folder they would be the truth."""
    from roadseg.inference.predict import output_paths
    from roadseg.io.atomic import same_file

    for image in images:
        target = output_paths(image, predictions).mask
        truth = next((path for path in truths if same_file(target, path)), None)
        if truth is not None:
            raise BadInputError(f"{predictions}: the prediction of {image.name} would be {truth}, its own ground "
                                "truth; give `predictions` a folder of its own")


def predict_and_evaluate(model, data: Path | str, predictions: Path | str,
                         options: PredictOptions | None = None, scoring: ScoreOptions | None = None, *,
                         overwrite: bool = False, on_file: Callable[[Path, object, str | None], None] | None = None,
                         progress: Callable[[int, int, str], None] | None = None) -> EvalResult:
    """Predict every ``<id>_sat.*`` of a DeepGlobe-layout directory that has its ``<id>_mask.*`` beside
    it into ``predictions``, then score it (see :func:`plan_predict_eval`, which refuses what cannot work
    before anything is predicted).

    ``model`` and ``options`` go to :func:`roadseg.inference.predict.predict_files` (masks already in
    ``predictions`` are reused unless ``overwrite``); ``on_file`` is its per-image callback. Images
    without ground truth and images that fail to predict are reported as problems, and the masks are
    scored against ``<id>_mask.*`` in ``data`` as :func:`evaluate_masks` does with ``scoring`` (its
    ``progress`` too).
    """
    from roadseg.inference.options import OutputOptions
    from roadseg.inference.predict import output_paths, predict_files

    plan = plan_predict_eval(data, predictions)
    batch = predict_files(model, plan.images, predictions, options, output=OutputOptions(overwrite=overwrite),
                          on_file=on_file)
    failed = {path for path, _ in batch.failed}
    masks = [output_paths(path, predictions).mask for path in plan.images if path not in failed]
    result = evaluate_masks(masks, plan.truths, scoring, overwrite=overwrite, progress=progress)
    failures = [Problem(image_key(path), reason) for path, reason in batch.failed]
    result.problems = failures + plan.problems + result.problems
    return result


@dataclass(frozen=True)
class GraphEvalResult:
    """APLS of a proposal road network against the ground truth, with what was compared."""

    prediction: Path
    truth: Path
    apls: AplsResult
    vectorized: bool
    """True when the prediction was a mask, vectorized with the vectorize defaults."""
    spacing_m: float
    snap_m: float
    node_crossings: bool = False
    """True when lines were joined wherever they cross, not only at shared vertices."""
    topo: TopoResult | None = None
    """TOPO precision, recall and F1 of the same two graphs (Biagioni & Eriksson, as graph papers run it)."""
    topo_preset: str = "spacenet"

    def to_dict(self) -> dict:
        """Plain types for JSON: paths as strings, nan as None."""
        return _plain(dataclasses.asdict(self))


@dataclass(frozen=True)
class GraphScoring:
    """APLS settings: control points about every ``spacing`` metres along the roads, snapped onto the other
    graph within ``snap`` metres (SpaceNet's 50 m and 4 m by default). Lines join where they share a
    vertex, as in SpaceNet (a crossing without one is an overpass); ``node_crossings`` joins them wherever
    they cross too, for line files drawn without junction vertices. ``topo`` names TOPO's parameters
    (:data:`~roadseg.metrics.topo.TOPO_PRESETS`: ``spacenet``, or ``city-scale`` for 2 km tiles)."""

    spacing: float = CONTROL_SPACING_M
    snap: float = SNAP_DISTANCE_M
    node_crossings: bool = False
    topo: str = "spacenet"

    def __post_init__(self) -> None:
        from roadseg.metrics.topo import TOPO_PRESETS

        if self.topo not in TOPO_PRESETS:
            raise BadParameterError("topo", f"must be one of {', '.join(TOPO_PRESETS)}, got {self.topo!r}")
        if not (math.isfinite(self.spacing) and self.spacing > 0):
            raise BadParameterError("spacing", f"must be a finite number of metres > 0, got {self.spacing!r}")
        if not (math.isfinite(self.snap) and self.snap >= 0):
            raise BadParameterError("snap", f"must be a finite number of metres >= 0, got {self.snap!r}")


def is_road_vector(path: Path | str) -> bool:
    """Whether ``path`` names road lines (GeoJSON, GeoPackage, FlatGeobuf, GeoParquet), which APLS and TOPO
    score, rather than a mask."""
    return Path(path).suffix.lower() in VECTOR_SUFFIXES


def evaluate_graphs(prediction: Path | str, truth: Path | str, scoring: GraphScoring | None = None
                    ) -> GraphEvalResult:
    """APLS and TOPO of road centrelines ``prediction`` (a vector file, or a georeferenced mask to
    vectorize) against ``truth`` (a vector file: GeoJSON, GeoPackage, FlatGeobuf, GeoParquet); both are
    projected to one local metric CRS centred on the two together, and each one's length is measured on
    the ellipsoid, whatever the other holds."""
    from roadseg.io.atomic import same_file
    from roadseg.metrics.apls import apls, graph_from_geojson, local_metric_crs
    from roadseg.metrics.topo import TOPO_PRESETS, topo_score

    prediction, truth = Path(prediction), Path(truth)
    if same_file(prediction, truth):
        raise BadInputError(f"{prediction}: is both the prediction and the ground truth; give predictions and "
                            "ground truth as different files")
    vectorized = not is_road_vector(prediction)
    if vectorized:
        from roadseg.vector.vectorize import vectorize_files

        proposal = vectorize_files([prediction]).collection
        if proposal.get("coordinates") == "pixel":
            raise BadInputError(f"{prediction}: not georeferenced, so its roads have no place on the map; "
                                "APLS against GeoJSON needs a georeferenced mask (GeoTIFF)")
    else:
        proposal = prediction
    crs = local_metric_crs(truth, proposal)
    scoring = scoring or GraphScoring()
    crossings = scoring.node_crossings
    truth_graph = graph_from_geojson(truth, crs=crs, node_crossings=crossings)
    proposal_graph = graph_from_geojson(proposal, crs=crs, node_crossings=crossings)
    topo = topo_score(proposal_graph, truth_graph, TOPO_PRESETS[scoring.topo])  # leaves the graphs as they are
    result = apls(truth_graph, proposal_graph, spacing=scoring.spacing, snap=scoring.snap)
    return GraphEvalResult(prediction, truth, result, vectorized, scoring.spacing, scoring.snap,
                           node_crossings=crossings, topo=topo, topo_preset=scoring.topo)
