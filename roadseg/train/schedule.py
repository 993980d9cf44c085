"""The D-LinkNet plateau schedule as a small state machine, kept apart from MindSpore so it is testable.

After each epoch the schedule sees the epoch's mean training loss. An improvement records a new best.
Otherwise a counter grows; once it exceeds ``patience`` (3) every further non-improving epoch reloads
the best weights and divides the learning rate by ``factor`` (5), and training stops once the counter
exceeds ``stop_after`` (6) or the learning rate would fall below ``min_lr`` (5e-7). This follows the
original training loop, which never resets the counter on a learning-rate drop.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Decision:
    """What the loop must do after an epoch."""

    improved: bool
    reload_best: bool
    lr: float
    stop: bool
    reason: str = ""


@dataclass
class PlateauSchedule:
    """Learning rate and plateau counters; ``to_dict``/``from_dict`` round-trip it for ``--resume``."""

    lr: float = 2e-4
    patience: int = 3
    stop_after: int = 6
    factor: float = 5.0
    min_lr: float = 5e-7
    best_loss: float = math.inf
    bad_epochs: int = 0
    epochs_seen: int = 0

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.factor <= 1 or self.patience < 0 or self.stop_after < self.patience:
            raise ValueError(f"invalid schedule: lr={self.lr} factor={self.factor} "
                             f"patience={self.patience} stop_after={self.stop_after}")

    def step(self, epoch_loss: float) -> Decision:
        """Record one epoch's mean loss and say whether to reload the best weights, the new lr, or stop."""
        if not math.isfinite(epoch_loss):
            raise ValueError(f"epoch loss is {epoch_loss}; training diverged")
        self.epochs_seen += 1
        improved = epoch_loss < self.best_loss
        if improved:
            self.best_loss = epoch_loss
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs > self.stop_after:
            return Decision(improved, False, self.lr, True,
                            f"no improvement for {self.bad_epochs} epochs")
        if self.bad_epochs > self.patience:
            if self.lr < self.min_lr:
                return Decision(improved, False, self.lr, True, f"learning rate {self.lr:.3g} below {self.min_lr}")
            self.lr = self.lr / self.factor
            return Decision(improved, True, self.lr, False, "plateau: reloaded best weights, lr divided")
        return Decision(improved, False, self.lr, False)

    def to_dict(self) -> dict:
        state = asdict(self)
        state["best_loss"] = None if math.isinf(self.best_loss) else self.best_loss
        return state

    @classmethod
    def from_dict(cls, state: dict) -> PlateauSchedule:
        state = dict(state)
        if state.get("best_loss") is None:
            state["best_loss"] = math.inf
        return cls(**state)
