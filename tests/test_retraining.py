"""Learning time counted per learning window (metamaterial.retraining), on the native backend.

A step presenting one point closes the switch once when the point is active; a full-batch step once per active
point. The criterion is met first at the reported step and not before; the band is the closed form
windows x (alpha/eta) R C / gain at its corners; the per-window parts add up to each step's gate change.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT
from metamaterial.configfile import load_config
from metamaterial.energy import CAPACITOR_BAND, GAIN_BAND
from metamaterial.errors import ValidationError
from metamaterial.experiment import build, initial_controls, make_trainer
from metamaterial.retraining import (
    _per_window,
    active_count,
    conductive_cut,
    criterion_met,
    damaged,
    train_to_criterion,
)

MAX_EPOCHS = {"xor": 400, "regression": 600}
DAMAGE_K = 2


def _setup(name: str):
    cfg = load_config(ROOT / "configs" / f"{name}.yaml", ["simulator.backend=native"])
    setup = build(cfg)
    return cfg, setup, initial_controls(setup, np.random.default_rng(cfg.seed))


def _outputs(setup, controls):
    trainer = make_trainer(setup)
    with trainer.solver:
        return trainer.evaluate(controls).outputs


@pytest.mark.parametrize("name", ["xor", "regression"])
def test_windows_are_counted_per_applied_point_and_the_criterion_first_holds_at_the_end(name):
    cfg, setup, start = _setup(name)
    run = train_to_criterion(setup, start, cfg.seed, MAX_EPOCHS[name])
    assert run.reached
    assert criterion_met(setup, _outputs(setup, run.controls))
    assert not criterion_met(setup, _outputs(setup, run.gates[-1]))  # one step earlier it did not hold
    assert run.steps == len(run.windows_per_step) and run.windows == run.windows_per_step.sum()
    if setup.params.schedule.kind == "full_batch":  # XOR: one window per point still inside the hinge's margin
        assert run.updates < run.windows <= setup.task.n_points * run.steps
        for k in (0, run.steps // 2, run.steps - 1):
            assert run.windows_per_step[k] == active_count(setup, _outputs(setup, run.gates[k]))
    else:  # regression: every presented point is applied
        assert run.windows == run.updates == run.steps
    assert run.learning_time == pytest.approx(run.windows * setup.hardware.t_learn, rel=1e-12)
    lo, hi = run.band.range("learning_time")
    r, R = setup.rule.rate, setup.hardware.resistance
    assert lo == pytest.approx(run.windows * r * R * CAPACITOR_BAND[0] / GAIN_BAND[1], rel=1e-12)
    assert hi == pytest.approx(run.windows * r * R * CAPACITOR_BAND[1] / GAIN_BAND[0], rel=1e-12)
    assert run.band.nominal.learning_time == pytest.approx(run.learning_time, rel=1e-12)


def test_relearning_after_damage_starts_broken_and_ends_at_the_criterion():
    cfg, setup, start = _setup("xor")
    first = train_to_criterion(setup, start, cfg.seed, MAX_EPOCHS["xor"])
    cut = conductive_cut(setup, first.controls, DAMAGE_K)
    assert len(cut) == DAMAGE_K
    hurt = damaged(setup, cut)
    gates = np.delete(first.controls, cut)
    assert hurt.circuit.n_edges == setup.circuit.n_edges - DAMAGE_K
    assert not criterion_met(hurt, _outputs(hurt, gates))  # cutting the busiest edges breaks XOR
    again = train_to_criterion(hurt, gates, cfg.seed, MAX_EPOCHS["xor"])
    assert again.reached and again.windows > 0
    assert criterion_met(hurt, _outputs(hurt, again.controls))


def test_per_window_parts_add_up_to_each_step():
    rng = np.random.default_rng(0)
    steps, gates = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    windows = np.array([2, 0, 3, 1])
    part, before = _per_window(steps, gates, windows)
    assert part.shape == (6, 3)
    np.testing.assert_allclose(part[:2].sum(axis=0), steps[0])
    np.testing.assert_allclose(part[2:5].sum(axis=0), steps[2])
    np.testing.assert_allclose(before[[0, 2, 5]], gates[[0, 2, 3]])          # each step's first part starts there
    np.testing.assert_allclose(before[1], gates[0] + part[0])               # and the next part where it ended


def test_a_schedule_without_a_window_count_is_refused():
    _, _, start = _setup("regression")
    cfg = load_config(ROOT / "configs" / "regression.yaml", ["simulator.backend=native", "learning.schedule=mini_batch",
                                                              "learning.batch_size=2"])
    with pytest.raises(ValidationError, match=r"retraining: learning.schedule 'mini_batch' is not counted per "
                                              r"window; use cycle, shuffle or full_batch"):
        train_to_criterion(build(cfg), start, cfg.seed, 1)
