"""Training D-LinkNet with the zoo's recipe: one device or many, resumable, atomic checkpoints.

A run directory holds ``config.yaml`` (the resolved configuration), ``metrics.jsonl`` (one line per
epoch), ``last.ckpt`` (network, Adam state, best weights and the loop state as JSON: everything
``--resume`` needs to continue exactly) and ``best.ckpt`` (network only, the zoo's names, loadable by
``--weights`` and by the zoo's own code). Under ``msrun`` every worker trains on its shard of each
epoch with gradients averaged across workers; only rank 0 writes anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import signal
import time
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from roadseg.errors import BadInputError, BadParameterError, OutputExistsError, WeightsError
from roadseg.interrupts import Terminated, uninterruptible
from roadseg.io.atomic import atomic_output, check_writable
from roadseg.model.convention import ZOO_CONVENTION, InputConvention
from roadseg.train.options import parse_option, read_yaml_options
from roadseg.train.schedule import PlateauSchedule

if typing.TYPE_CHECKING:
    from roadseg.train.data import DataProblem

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.yaml"
METRICS_NAME = "metrics.jsonl"
LAST_NAME = "last.ckpt"
BEST_NAME = "best.ckpt"
STATE_KEY = "roadseg_train_state"
BEST_PREFIX = "roadseg_train_best."
#: The zoo's dynamic loss scaling on GPU and Ascend.
LOSS_SCALE = {"init_loss_scale": 2.0 ** 24, "scale_factor": 2, "scale_window": 1000}
MIXED_PRECISION_LEVEL = "O2"


@dataclass(frozen=True)
class TrainConfig:
    """Every option of a training run; ``config.yaml`` in the run directory is this, resolved.

    Each value is converted to its option's type when the config is made (``"1e-4"`` becomes 1e-4), and
    a value of the wrong type or out of range fails with :class:`BadParameterError` naming the option.
    """

    output: str = "runs/train"
    data: str | None = None
    images: str | None = None
    masks: str | None = None
    val_dir: str | None = None
    val_split: float = 0.1
    arch: str = "dlinknet34"
    init: str | None = None
    backbone: str | None = None
    epochs: int = 300
    batch_size: int = 4
    lr: float = 2e-4
    crop: int | None = None
    augment: bool = True
    seed: int = 0
    device: str = "auto"
    device_id: int = 0
    workers: int = 2
    skip_bad: bool = False
    steps_per_epoch: int | None = None
    gsd: float | None = None
    """Metres per pixel of the training images, recorded in the checkpoints when they carry no
    georeferencing (JPG/PNG); georeferenced images record the median of their own."""

    def __post_init__(self) -> None:
        for name, kind in typing.get_type_hints(TrainConfig).items():
            object.__setattr__(self, name, parse_option(name, kind, getattr(self, name)))
        if (self.data is None) == (self.images is None):
            raise BadInputError("give either a DATA directory (DeepGlobe layout) or `images` and `masks`")
        if (self.images is None) != (self.masks is None):
            raise BadInputError("`images` and `masks` go together")
        if self.init and self.backbone:
            raise BadInputError("`init` and `backbone` exclude each other: pick one starting point")
        self._check_ranges()

    def _check_ranges(self) -> None:
        for name in ("epochs", "batch_size", "workers", "steps_per_epoch"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BadParameterError(name, f"must be at least 1, got {value}")
        if self.device_id < 0:
            raise BadParameterError("device_id", f"must be 0 or more, got {self.device_id}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise BadParameterError("lr", f"must be a positive number, got {self.lr}")
        if self.gsd is not None and not (math.isfinite(self.gsd) and self.gsd > 0):
            raise BadParameterError("gsd", f"must be a positive number of metres per pixel, got {self.gsd}")
        if not 0.0 <= self.val_split < 1.0:
            raise BadParameterError("val_split", f"must be in [0, 1), got {self.val_split}")
        if self.crop is not None and (self.crop < 32 or self.crop % 32):
            raise BadParameterError("crop", f"must be a positive multiple of 32, got {self.crop}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict, *, source: Path | str | None = None, overrides: dict | None = None,
                  advice: str = "") -> TrainConfig:
        """The config of ``values`` (read from file ``source``, if any) with ``overrides`` on top.

        A data source among the overrides (``data``, or ``images``/``masks``) replaces the file's. An
        unknown key or a bad value read from ``source`` fails with one :class:`BadInputError` naming the
        file and the key, followed by ``advice`` (``"; ..."``); a bad override fails as it would alone.
        """
        where = f"{source}: " if source is not None else ""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise BadInputError(f"{where}unknown training option(s) {', '.join(unknown)}; "
                                f"known: {', '.join(sorted(known))}{advice}")
        overrides = overrides or {}
        merged = {**_without_replaced_source(values, overrides), **overrides}
        try:
            return cls(**merged)
        except BadParameterError as error:
            if source is None or error.parameter in overrides:
                raise
            raise BadInputError(f"{where}key '{error.parameter}' {error.problem}{advice}") from None


def _without_replaced_source(values: dict, overrides: dict) -> dict:
    """``values`` less its data source when ``overrides`` names one: DATA and `images`/`masks` are one choice."""
    if "data" in overrides:
        return {key: value for key, value in values.items() if key not in ("images", "masks")}
    if "images" in overrides or "masks" in overrides:
        return {key: value for key, value in values.items() if key != "data"}
    return values


@dataclass(frozen=True)
class StepEvent:
    """One optimizer step finished (for progress bars)."""

    epoch: int
    step: int
    steps: int
    loss: float
    seconds: float


@dataclass(frozen=True)
class EpochRecord:
    """One line of ``metrics.jsonl``."""

    epoch: int
    loss: float
    lr: float
    val_road_iou: float | None
    seconds: float
    steps: int
    improved: bool
    note: str = ""


@dataclass
class TrainResult:
    """What a run did: where it wrote, how far it got, and why it stopped."""

    run_dir: Path
    epochs_completed: int
    best_loss: float | None
    stopped: str
    interrupted: bool = False
    history: list[EpochRecord] = field(default_factory=list)
    parameter_digest: str = ""
    skipped: list[DataProblem] = field(default_factory=list)
    signal: int | None = None
    """With ``interrupted``: the signal that stopped the run (SIGINT for Ctrl-C, or SIGTERM)."""


ProgressCallback = Callable[[object], None]


@dataclass
class _Data:
    train: list
    valid: list
    skipped: list[DataProblem] = field(default_factory=list)


def gather_data(config: TrainConfig):
    """Pair, check and split the data, reporting every problem by name (see ``train_data``)."""
    from roadseg.train.data import check_pairs, pair_by_stem, pair_deepglobe, split_validation

    scan = pair_deepglobe(config.data) if config.data else pair_by_stem(config.images, config.masks)
    scan = check_pairs(scan)
    valid_scan = check_pairs(pair_deepglobe(config.val_dir)) if config.val_dir else None
    if valid_scan is not None:
        scan.problems += valid_scan.problems
    skipped = scan.raise_if_problems(config.skip_bad)
    if valid_scan is not None:
        train, valid = scan.pairs, valid_scan.pairs
    else:
        train, valid = split_validation(scan.pairs, config.val_split, config.seed)
    if not train:
        raise BadInputError(f"{config.data or config.images}: no usable training pairs")
    return _Data(train, valid, skipped)


# ---------------------------------------------------------------------------------------------- MindSpore


def _distributed() -> tuple[int, int]:
    """Join msrun's worker group when launched by it; (rank, group size), (0, 1) otherwise.

    msrun also starts the command once as the cluster's scheduler (``MS_ROLE=MS_SCHED``): its
    ``init()`` serves the workers and ends that process when they finish, so it never trains.
    """
    if os.environ.get("MS_ROLE") not in ("MS_WORKER", "MS_SCHED") or "MS_WORKER_NUM" not in os.environ:
        return 0, 1
    from roadseg.model.mindspore_runtime import ms

    ms.communication.init()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True)
    return ms.communication.get_rank(), ms.communication.get_group_size()


def parameter_digest(network) -> str:
    """sha256 over every parameter's name and bytes: equal on all ranks when data parallelism is in sync."""
    digest = hashlib.sha256()
    for parameter in network.get_parameters():
        digest.update(parameter.name.encode())
        digest.update(np.ascontiguousarray(parameter.asnumpy()).tobytes())
    return digest.hexdigest()


def _snapshot(network) -> dict[str, np.ndarray]:
    return {p.name: p.asnumpy().copy() for p in network.get_parameters()}


def _restore(network, arrays: dict[str, np.ndarray]) -> None:
    from roadseg.model.mindspore_runtime import ms

    for parameter in network.get_parameters():
        parameter.set_data(ms.Tensor(arrays[parameter.name]))


def _training_parameters(train_cell) -> list:
    from roadseg.model.checkpoint import is_training_state

    seen, result = set(), []
    for parameter in train_cell.get_parameters():
        if is_training_state(parameter.name) and parameter.name not in seen:
            seen.add(parameter.name)
            result.append(parameter)
    return result


def load_backbone(network, path: Path | str) -> int:
    """Copy an ImageNet ResNet checkpoint's matching tensors into the encoder; returns how many.

    Accepts the MindSpore model zoo's ResNet names (``conv1``, ``bn1``, ``layerN.i.*``,
    ``down_sample_layer``) with or without a ``backbone.``/``network.`` prefix.
    """
    from roadseg.model.checkpoint import read_checkpoint
    from roadseg.model.mindspore_runtime import ms

    contents = read_checkpoint(path)
    targets = {p.name: p for p in network.get_parameters()}
    loaded = 0
    for name, array in contents.tensors.items():
        for prefix in ("network.", "backbone.", "resnet."):
            name = name.removeprefix(prefix)
        if name.startswith("conv1."):
            candidates = ["firstconv." + name[6:]]
        elif name.startswith("bn1."):
            candidates = ["firstbn." + name[4:]]
        elif name.startswith("layer"):
            renamed = "encoder" + name[5:]
            candidates = [renamed, renamed.replace(".bn1.", ".bn1d.").replace(".bn2.", ".bn2d.")]
        else:
            continue
        for candidate in candidates:
            target = targets.get(candidate)
            if target is not None and tuple(target.shape) == tuple(array.shape):
                target.set_data(ms.Tensor(array))
                loaded += 1
                break
    if loaded == 0:
        raise WeightsError(f"{path}: no tensor matches the {type(network).__name__} encoder; expected a "
                           "MindSpore ResNet checkpoint (conv1, bn1, layer1..layer4)")
    return loaded


def _build_train_cell(network, device: str, lr: float):
    """float32 ``TrainOneStepCell`` on CPU; O2 mixed precision with dynamic loss scaling elsewhere."""
    from roadseg.model.mindspore_runtime import amp, nn
    from roadseg.train.losses import BceDiceLoss

    optimizer = nn.Adam(network.trainable_params(), learning_rate=lr)
    if device == "CPU":
        return nn.TrainOneStepCell(nn.WithLossCell(network, BceDiceLoss()), optimizer), optimizer
    return mixed_precision_train_cell(network, optimizer, amp.DynamicLossScaleManager(**LOSS_SCALE)), optimizer


def mixed_precision_train_cell(network, optimizer, loss_scale_manager):
    """The GPU/Ascend training step: amp level O2 (float16 compute, float32 BatchNorm and weights).

    Split out so the O2 graph can be compiled and run in a test on the CPU, where MindSpore accepts only
    a fixed loss scale: what differs on an accelerator is the dynamic loss-scale manager alone.
    """
    from roadseg.model.mindspore_runtime import amp
    from roadseg.train.losses import BceDiceLoss

    return amp.build_train_network(network, optimizer, BceDiceLoss(), level=MIXED_PRECISION_LEVEL,
                                   loss_scale_manager=loss_scale_manager)


def _road_iou(network, pairs, crop: int | None, convention: InputConvention) -> float | None:
    """Road IoU (class 1) over the validation images, centre-cropped to ``crop`` or to a multiple of 32."""
    from roadseg.metrics.pixel import confusion_matrix
    from roadseg.model.mindspore_runtime import ms
    from roadseg.train.data import read_pair

    if not pairs:
        return None
    network.set_train(False)
    matrix = np.zeros((2, 2), np.int64)  # m[true, predicted]
    for pair in pairs:
        image, mask = read_pair(pair)
        height, width = mask.shape
        h = min(crop, height) if crop else height
        w = min(crop, width) if crop else width
        h, w = h - h % 32, w - w % 32
        top, left = (height - h) // 2, (width - w) // 2
        image, mask = image[top:top + h, left:left + w], mask[top:top + h, left:left + w] > 0.5
        prob = network(ms.Tensor(convention.to_network(image)[None])).asnumpy()[0, 0]
        matrix += confusion_matrix(prob > 0.5, mask)
    network.set_train(True)
    tp, fp, fn = int(matrix[1, 1]), int(matrix[0, 1]), int(matrix[1, 0])
    return tp / (tp + fp + fn) if tp + fp + fn else 1.0


class _Loop:
    """Everything a run holds between epochs; split out so ``run_training`` stays readable."""

    def __init__(self, config: TrainConfig, resume: bool, overwrite: bool,
                 progress: ProgressCallback | None) -> None:
        from roadseg.model.devices import configure_mindspore
        from roadseg.model.mindspore_runtime import ms
        from roadseg.model.network import build_network
        from roadseg.train.data import training_gsd

        self.config, self.overwrite, self.resuming = config, overwrite, resume
        self.run_dir = Path(config.output)
        self.created_run_dir = False
        if not resume:
            self._check_run_dir()  # before the data check: refusing costs nothing
        self.data = gather_data(config)  # every data problem is reported before MindSpore starts
        self.gsd = training_gsd(self.data.train, config.gsd)
        device_id = int(os.environ.get("DEVICE_ID", config.device_id))
        self.device = configure_mindspore(config.device, device_id)
        self.rank, self.size = _distributed()
        self.writer = self.rank == 0
        self.progress = progress if self.writer else None
        for problem in self.data.skipped if self.progress else ():
            self.progress(problem)
        per_epoch = len(self.data.train) // self.size // config.batch_size
        if per_epoch == 0:
            raise BadInputError(f"{len(self.data.train)} training pairs cannot fill one batch of "
                                f"{config.batch_size} per device on {self.size} device(s)")
        self.steps = min(per_epoch, config.steps_per_epoch or per_epoch)
        ms.set_seed(config.seed)
        np.random.seed(config.seed)
        self.network = build_network(config.arch)
        self.convention = ZOO_CONVENTION
        self.schedule = PlateauSchedule(lr=config.lr)
        self.epoch, self.step, self.loss_sum = 0, 0, 0.0
        self.best: dict[str, np.ndarray] | None = None
        if resume:
            self._resume()
        else:
            self._initialise()
        self.train_cell, self.optimizer = _build_train_cell(self.network, self.device, self.schedule.lr)
        if resume:
            self._load_training_state()
        self.train_cell.set_train(True)
        self._mean = None
        if not resume:
            self._start_run_dir()  # last: a failure while setting up leaves nothing behind

    # -- set-up
    def _check_run_dir(self) -> None:
        """Refuse a directory whose run saved something (a checkpoint or metrics) unless ``overwrite``.

        A ``config.yaml`` alone is a run that stopped before its first epoch ended (killed, say): nothing
        of value, so a new run replaces it; ``resume`` would start that run over from its first epoch.
        """
        for name in (LAST_NAME, BEST_NAME, METRICS_NAME):
            if (self.run_dir / name).exists() and not self.overwrite:
                raise OutputExistsError(f"{self.run_dir} already holds a run ({name}); pass `resume` "
                                        f"{self.run_dir} to continue it or `overwrite` to start again")
        check_writable(self.run_dir / CONFIG_NAME, overwrite=True)

    def _start_run_dir(self) -> None:
        """Write ``config.yaml``, removing what an earlier run left (``_check_run_dir`` allowed that)."""
        if not self.writer:
            return
        self.created_run_dir = not self.run_dir.exists()
        for name in (LAST_NAME, BEST_NAME, METRICS_NAME):
            (self.run_dir / name).unlink(missing_ok=True)
        import yaml

        with atomic_output(self.run_dir / CONFIG_NAME, overwrite=True) as temp:
            temp.write_text(yaml.safe_dump(self.config.to_dict(), sort_keys=False))

    def discard_unsaved(self) -> None:
        """After a new run failed before its first checkpoint, remove what it wrote: none of it could be
        resumed, and the same command then runs again as it stands."""
        if not self.writer or self.resuming or (self.run_dir / LAST_NAME).exists():
            return
        for name in (CONFIG_NAME, METRICS_NAME, BEST_NAME):
            (self.run_dir / name).unlink(missing_ok=True)
        if self.created_run_dir:
            with contextlib.suppress(OSError):  # something else was put there meanwhile: leave it
                self.run_dir.rmdir()

    def file_failed(self, error: BadInputError) -> BadInputError:
        """``error``, from a file that failed after the check passed it, with where training stopped and
        the way on (a run with a checkpoint is resumed; one without starts again)."""
        if (self.run_dir / LAST_NAME).is_file():
            way_on = f"pass `resume` {self.run_dir} to continue from the last checkpoint"
        else:
            way_on = "nothing was saved, so run the same command again"
        return BadInputError(f"{error} (training stopped in epoch {self.epoch + 1}; once that is fixed, "
                             f"{way_on})")

    def _initialise(self) -> None:
        from roadseg.model.checkpoint import load_into, read_checkpoint
        from roadseg.model.weights import resolve_weights

        if self.config.init:
            contents = read_checkpoint(resolve_weights(self.config.init).path)
            load_into(self.network, contents, self.config.arch)
            self.convention = contents.convention or ZOO_CONVENTION
        elif self.config.backbone:
            count = load_backbone(self.network, self.config.backbone)
            logger.info("loaded %d backbone tensors from %s", count, self.config.backbone)

    def _resume(self) -> None:
        from roadseg.model.checkpoint import load_into, read_checkpoint

        path = self.run_dir / LAST_NAME
        if not path.is_file():
            self._resume_from_start()
            return
        self._contents = contents = read_checkpoint(path)
        if STATE_KEY not in contents.metadata:
            raise BadInputError(f"{path}: not a roadseg training checkpoint (no loop state)")
        state = json.loads(contents.metadata[STATE_KEY])
        load_into(self.network, contents, self.config.arch)
        self.convention = contents.convention or ZOO_CONVENTION
        self.schedule = PlateauSchedule.from_dict(state["schedule"])
        self.epoch, self.step, self.loss_sum = state["epoch"], state["step"], state["loss_sum"]
        best = {name[len(BEST_PREFIX):]: np.asarray(value) for name, value in contents.training_state.items()
                if name.startswith(BEST_PREFIX)}
        self.best = best or None
        if self.writer:
            self._truncate_metrics()

    def _resume_from_start(self) -> None:
        """A run that stopped before its first checkpoint saved only its options: start it over with them."""
        if not (self.run_dir / CONFIG_NAME).is_file():
            raise BadInputError(f"{self.run_dir}: no {LAST_NAME} to resume from; start a new run without "
                                "`resume`")
        logger.warning("%s: no %s yet (the run stopped before its first epoch ended); starting it from epoch 1",
                       self.run_dir, LAST_NAME)
        self._contents = None
        self._initialise()
        if self.writer:
            self._truncate_metrics()

    def _load_training_state(self) -> None:
        from roadseg.model.mindspore_runtime import ms

        if self._contents is None:
            return
        saved = self._contents.training_state
        for parameter in _training_parameters(self.train_cell):
            if parameter.name in saved and not parameter.name.startswith(BEST_PREFIX):
                parameter.set_data(ms.Tensor(np.asarray(saved[parameter.name])))
        self.optimizer.learning_rate.set_data(ms.Tensor(np.float32(self.schedule.lr)))

    def _truncate_metrics(self) -> None:
        """Drop metric lines of epochs the checkpoint does not include (a crash between the two writes)."""
        path = self.run_dir / METRICS_NAME
        if not path.is_file():
            return
        lines = [line for line in path.read_text().splitlines()
                 if line.strip() and json.loads(line)["epoch"] <= self.epoch]
        with atomic_output(path, overwrite=True) as temp:
            temp.write_text("".join(line + "\n" for line in lines))

    # -- state on disk
    def save_last(self) -> None:
        from roadseg.model.checkpoint import save_checkpoint

        if not self.writer:
            return
        state = {"epoch": self.epoch, "step": self.step, "loss_sum": self.loss_sum,
                 "schedule": self.schedule.to_dict(), "seed": self.config.seed, "group_size": self.size}
        extra: dict[str, object] = {p.name: p for p in _training_parameters(self.train_cell)}
        extra[STATE_KEY] = json.dumps(state)
        for name, array in (self.best or {}).items():
            extra[BEST_PREFIX + name] = array
        save_checkpoint(self.network, self.run_dir / LAST_NAME, arch=self.config.arch,
                        convention=self.convention, extra=extra, overwrite=True, gsd=self.gsd)

    def save_best(self) -> None:
        from roadseg.model.checkpoint import save_checkpoint

        if self.writer:
            save_checkpoint(self.network, self.run_dir / BEST_NAME, arch=self.config.arch,
                            convention=self.convention, overwrite=True, gsd=self.gsd)

    def append_metrics(self, record: EpochRecord) -> None:
        if not self.writer:
            return
        with open(self.run_dir / METRICS_NAME, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(record)) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    # -- the loop
    def mean_across_ranks(self, values: np.ndarray) -> np.ndarray:
        """Average a float32 vector over all ranks (one AllReduce); the vector itself on one device."""
        if self.size == 1:
            return values
        from roadseg.model.mindspore_runtime import ms, nn, ops

        if self._mean is None:
            class _Mean(nn.Cell):
                def __init__(self, size: int) -> None:
                    super().__init__()
                    self.reduce = ops.AllReduce()
                    self.size = size

                def construct(self, x):
                    return self.reduce(x) / self.size

            self._mean = _Mean(self.size)
        return self._mean(ms.Tensor(values.astype(np.float32))).asnumpy()

    def sync_epoch(self, local_loss: float) -> float:
        """The epoch loss averaged over ranks; BatchNorm running statistics averaged too.

        Gradients are averaged every step, so trainable weights agree on every rank, but each rank's
        BatchNorm statistics only saw its own shard; averaging them once an epoch keeps every rank's
        network identical (and ``best.ckpt`` representative of all the data).
        """
        if self.size == 1:
            return local_loss
        from roadseg.model.mindspore_runtime import ms

        buffers = [p for p in self.network.get_parameters() if not p.requires_grad]
        flat = np.concatenate([np.array([local_loss], np.float32)]
                              + [p.asnumpy().astype(np.float32).ravel() for p in buffers])
        mean = self.mean_across_ranks(flat)
        offset = 1
        for parameter in buffers:
            size = int(np.prod(parameter.shape))
            parameter.set_data(ms.Tensor(mean[offset:offset + size].reshape(parameter.shape)
                                         .astype(parameter.asnumpy().dtype)))
            offset += size
        return float(mean[0])

    def run_epoch(self) -> float:
        from roadseg.train.data import AugmentedSource, SampleRecipe, epoch_order, make_dataset

        config = self.config
        order = epoch_order(len(self.data.train), seed=config.seed, epoch=self.epoch, rank=self.rank,
                            group_size=self.size)[:self.steps * config.batch_size]
        recipe = SampleRecipe(self.convention, crop=config.crop, augment=config.augment)
        source = AugmentedSource(self.data.train, order, recipe, seed=config.seed, epoch=self.epoch,
                                 rank=self.rank, group_size=self.size, start=self.step * config.batch_size)
        dataset = make_dataset(source, config.batch_size, workers=config.workers)
        try:
            return self._train_steps(dataset)
        except RuntimeError as error:  # MindSpore's pipeline wraps what the source raised in many lines
            if source.failure is None:
                raise
            raise self.file_failed(source.failure) from error

    def _train_steps(self, dataset) -> float:
        """One optimizer step per batch of ``dataset``; the epoch's loss averaged over ranks."""
        last = time.perf_counter()
        batches = dataset.create_tuple_iterator(num_epochs=1)
        while (loss := self._step(batches)) is not None:
            if not math.isfinite(loss) and self.device == "CPU":
                raise BadInputError(f"training diverged at epoch {self.epoch + 1} step {self.step + 1} "
                                    f"(loss {loss}); lower `lr`")
            self.loss_sum += loss
            self.step += 1
            now = time.perf_counter()
            if self.progress:
                self.progress(StepEvent(self.epoch + 1, self.step, self.steps, loss, now - last))
            last = now
        return self.sync_epoch(self.loss_sum / max(self.step, 1))

    @uninterruptible
    def _step(self, batches) -> float | None:
        """The next batch through the optimizer: its loss, or None at the epoch's end. A signal waits
        for the step to finish (MindSpore's layers would turn it into another error), so Ctrl-C saves
        the last finished step."""
        try:
            image, mask = next(batches)
        except StopIteration:
            return None
        output = self.train_cell(image, mask)
        return float((output[0] if isinstance(output, tuple) else output).asnumpy())

    def finish_epoch(self, mean_loss: float, seconds: float) -> tuple[EpochRecord, bool, str]:
        from roadseg.model.mindspore_runtime import ms

        try:
            val_iou = _road_iou(self.network, self.data.valid, self.config.crop, self.convention) \
                if self.writer else None
        except BadInputError as error:
            raise self.file_failed(error) from error
        decision = self.schedule.step(mean_loss)
        if decision.improved:
            self.best = _snapshot(self.network)
            self.save_best()
        if decision.reload_best and self.best is not None:
            _restore(self.network, self.best)
        self.optimizer.learning_rate.set_data(ms.Tensor(np.float32(self.schedule.lr)))
        record = EpochRecord(self.epoch + 1, mean_loss, self.schedule.lr, val_iou, seconds, self.step,
                             decision.improved, decision.reason)
        self.epoch, self.step, self.loss_sum = self.epoch + 1, 0, 0.0
        self.append_metrics(record)
        self.save_last()
        return record, decision.stop, decision.reason


def run_training(config: TrainConfig, *, resume: bool = False, overwrite: bool = False,
                 progress: ProgressCallback | None = None) -> TrainResult:
    """Train (or, with ``resume``, continue the run in ``config.output``) until the schedule or
    ``config.epochs`` stops it. ``progress`` receives a :class:`~roadseg.train.data.DataProblem` per file
    ``skip_bad`` leaves out, then a :class:`StepEvent` per step and an :class:`EpochRecord` per epoch
    (rank 0 only). Ctrl-C saves ``last.ckpt`` and returns with ``interrupted=True``; ``--resume`` then
    continues from the exact step. A new run that fails before its first checkpoint removes what it
    wrote, so the same call can simply be made again.
    """
    loop = _Loop(config, resume, overwrite, progress)
    history: list[EpochRecord] = []
    stopped = f"reached {config.epochs} epochs"
    try:
        while loop.epoch < config.epochs:
            started = time.perf_counter()
            mean_loss = loop.run_epoch()
            record, stop, reason = loop.finish_epoch(mean_loss, time.perf_counter() - started)
            history.append(record)
            if progress and loop.writer:
                progress(record)
            if stop:
                stopped = reason
                break
    except (KeyboardInterrupt, Terminated) as stop:
        loop.save_last()
        return TrainResult(loop.run_dir, loop.epoch, _finite(loop.schedule.best_loss),
                           f"interrupted at epoch {loop.epoch + 1} step {loop.step}", True, history,
                           parameter_digest(loop.network), loop.data.skipped,
                           signal.SIGINT if isinstance(stop, KeyboardInterrupt) else signal.SIGTERM)
    except Exception:
        loop.discard_unsaved()
        raise
    digest = parameter_digest(loop.network)
    logger.info("rank %d of %d finished: parameter digest %s", loop.rank, loop.size, digest)
    return TrainResult(loop.run_dir, loop.epoch, _finite(loop.schedule.best_loss), stopped, False, history,
                       digest, loop.data.skipped)


def _finite(value: float) -> float | None:
    return None if math.isinf(value) else value


def load_run_config(run_dir: Path | str) -> TrainConfig:
    """The resolved configuration a run saved, for ``--resume``; a damaged one fails with one line
    naming the file and the two ways on (repair it, or start the run again)."""
    path = Path(run_dir) / CONFIG_NAME
    if not path.is_file():
        raise BadInputError(f"{run_dir}: no {CONFIG_NAME}; not a roadseg training run directory")
    advice = "; repair it (the run's options, as YAML) or start the run again with `overwrite`"
    values = read_yaml_options(path, advice)
    if not values:
        raise BadInputError(f"{path}: empty{advice}")
    return TrainConfig.from_dict(values, source=path, overrides={"output": str(run_dir)}, advice=advice)
