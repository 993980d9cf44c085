"""The plateau schedule: improvements, reload-and-divide after the patience, the stop rules, resume."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roadseg.train.schedule import PlateauSchedule


class TestPlateauSchedule:
    def test_improving_losses_never_reload_or_stop(self):
        schedule = PlateauSchedule(lr=2e-4)
        for loss in (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3):
            decision = schedule.step(loss)
            assert decision.improved and not decision.reload_best and not decision.stop
        assert schedule.lr == 2e-4 and schedule.best_loss == 0.3

    def test_recipe_sequence(self):
        # best at epoch 1, then flat: epochs 2-4 wait, epochs 5-7 reload + lr/5, epoch 8 stops
        schedule = PlateauSchedule(lr=2e-4)
        decisions = [schedule.step(1.0)] + [schedule.step(1.0) for _ in range(7)]
        assert [d.reload_best for d in decisions] == [False, False, False, False, True, True, True, False]
        assert [d.stop for d in decisions] == [False] * 7 + [True]
        assert decisions[4].lr == pytest.approx(4e-5)
        assert decisions[6].lr == pytest.approx(2e-4 / 125)

    def test_improvement_resets_the_counter(self):
        schedule = PlateauSchedule(lr=1e-3)
        for loss in (1.0, 1.1, 1.1, 1.1, 1.1):
            schedule.step(loss)
        assert schedule.lr == pytest.approx(2e-4)
        assert schedule.step(0.5).improved
        assert schedule.bad_epochs == 0
        for _ in range(3):
            assert not schedule.step(0.6).reload_best

    def test_stops_when_lr_floor_reached(self):
        schedule = PlateauSchedule(lr=4e-7)
        schedule.step(1.0)
        for _ in range(3):
            assert not schedule.step(2.0).stop
        decision = schedule.step(2.0)
        assert decision.stop and "below" in decision.reason

    def test_non_finite_loss_is_refused(self):
        with pytest.raises(ValueError, match="diverged"):
            PlateauSchedule().step(math.nan)

    @settings(max_examples=50, deadline=None)
    @given(losses=st.lists(st.floats(0.01, 10.0), min_size=1, max_size=30), split=st.integers(0, 30))
    def test_round_trip_resumes_identically(self, losses, split):
        split = min(split, len(losses))
        straight = PlateauSchedule(lr=2e-4)
        expected = [straight.step(loss) for loss in losses]
        first = PlateauSchedule(lr=2e-4)
        got = [first.step(loss) for loss in losses[:split]]
        resumed = PlateauSchedule.from_dict(first.to_dict())
        got += [resumed.step(loss) for loss in losses[split:]]
        assert got == expected

    @settings(max_examples=50, deadline=None)
    @given(losses=st.lists(st.floats(0.01, 10.0), min_size=1, max_size=40))
    def test_lr_only_ever_falls_by_the_factor_and_best_is_the_minimum(self, losses):
        schedule = PlateauSchedule(lr=2e-4)
        lr = schedule.lr
        for loss in losses:
            decision = schedule.step(loss)
            assert decision.lr == lr or decision.lr == pytest.approx(lr / 5)
            assert decision.reload_best == (decision.lr != lr)
            lr = decision.lr
            if decision.stop:
                break
        seen = losses[:schedule.epochs_seen]
        assert schedule.best_loss == min(seen)

    def test_invalid_settings(self):
        with pytest.raises(ValueError, match="invalid schedule"):
            PlateauSchedule(lr=0)
