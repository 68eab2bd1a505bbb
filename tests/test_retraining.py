"""Learning time counted per learning window (metamaterial.retraining), on the native backend.

A step presenting one point closes the switch once when the point is active; a full-batch step once per active
point. The criterion is met first at the reported step and not before; the band is the closed form
windows x (alpha/eta) R C / gain at its corners; each window moves the gates by its own point's rate x U, so the
charging heat is the closed form over the points' own charges, and the windows add up to each step's gate change.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from conftest import ROOT
from metamaterial.configfile import load_config
from metamaterial.energy import CAPACITOR_BAND, GAIN_BAND
from metamaterial.errors import ValidationError
from metamaterial.experiment import build, initial_controls, make_trainer
from metamaterial.retraining import (
    _window_gates,
    active_count,
    conductive_cut,
    criterion_met,
    damaged,
    train_to_criterion,
)
from metamaterial.sim.native import NativeSolver

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
    # the hardware time of the same steps is train's (a slot per presented point, switch closed or not)
    trainer = make_trainer(setup, epochs=run.epochs)
    state = trainer.init_state(start[None], np.random.default_rng(cfg.seed), keep_trajectory=False)
    state = replace(state, n_steps=run.steps)
    assert run.hardware_time == pytest.approx(float(trainer.hardware_time(state)[0]), rel=1e-12)
    assert run.hardware_time >= run.learning_time + run.steps * setup.hardware.t_settle
    lo, hi = run.band.range("learning_time")
    r, R = setup.rule.rate, setup.hardware.resistance
    assert lo == pytest.approx(run.windows * r * R * CAPACITOR_BAND[0] / GAIN_BAND[1], rel=1e-12)
    assert hi == pytest.approx(run.windows * r * R * CAPACITOR_BAND[1] / GAIN_BAND[0], rel=1e-12)
    assert run.band.nominal.learning_time == pytest.approx(run.learning_time, rel=1e-12)
    # the windows add up to the gates the run went through: the capacitors' stored energy is a state's
    stored = 0.5 * setup.hardware.capacitance * float((run.controls**2 - start**2).sum())
    assert run.band.nominal.stored == pytest.approx(stored, rel=1e-9)


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


def test_window_gates_start_each_step_where_it_starts_and_each_window_where_the_last_ended():
    rng = np.random.default_rng(0)
    gates = rng.normal(size=(4, 3))
    windows = np.array([2, 0, 3, 1])
    parts = list(rng.normal(size=(6, 3)))
    part, before = _window_gates(gates, windows, parts)
    np.testing.assert_array_equal(part, np.array(parts))
    np.testing.assert_allclose(before[[0, 2, 5]], gates[[0, 2, 3]])          # each step's first window starts there
    np.testing.assert_allclose(before[1], gates[0] + part[0])               # and the next one where the last ended
    np.testing.assert_allclose(before[4], gates[2] + part[2] + part[3])


def test_the_charging_heat_of_a_full_batch_step_is_that_of_each_points_own_window():
    """XOR's first full-batch step from its initial gates (no gate reaches a bound): window d charges each gate
    capacitor by Q = C rate U_d, U_d the contrast of active point d alone, and dissipates Q^2 R / t_learn in R. The
    points push gates in opposite directions, so the heat is not that of the summed step split in equal parts
    (which gave 0.16 of it here)."""
    cfg, setup, start = _setup("xor")
    run = train_to_criterion(setup, start, cfg.seed, 1)
    c, task, rule, hw = setup.circuit, setup.task, setup.rule, setup.hardware
    solver = NativeSolver()
    free = solver.solve(c, start, task.inputs).voltages
    active = task.margins(c.output_values(free), task.classes) < rule.margin
    clamped = solver.solve(c, start, task.inputs, rule.clamp(c, free, task.targets, task.classes)).voltages
    charge = hw.capacitance * rule.rate * rule.contrast(c, free, clamped)[active]  # [windows, E] C
    assert run.steps == 1 and run.windows == active.sum() >= 2
    np.testing.assert_allclose(charge.sum(axis=0), hw.capacitance * run.gate_steps[0], atol=1e-18)  # no bound hit
    heat = float((charge**2).sum() * hw.resistance / hw.t_learn)
    assert run.band.nominal.dissipated == pytest.approx(heat, rel=1e-9)
    stored = 0.5 * hw.capacitance * float((run.controls**2 - start**2).sum())
    assert run.band.nominal.stored == pytest.approx(stored, rel=1e-9)


def test_a_schedule_without_a_window_count_is_refused():
    _, _, start = _setup("regression")
    cfg = load_config(ROOT / "configs" / "regression.yaml", ["simulator.backend=native", "learning.schedule=mini_batch",
                                                              "learning.batch_size=2"])
    with pytest.raises(ValidationError, match=r"retraining: learning.schedule 'mini_batch' is not counted per "
                                              r"window; use cycle, shuffle or full_batch"):
        train_to_criterion(build(cfg), start, cfg.seed, 1)


def test_a_gate_pushed_out_of_a_bound_and_back_within_a_step_heats_r_in_each_window():
    """Over XOR's whole run to the criterion, the heat is the closed form over every step's windows, each ending at
    the bounds' clip of the running sum of its step's points' rate x U. Gates at the 0.4 V bound are pushed out and
    back within a step: they end where they began and their windows still carry charge (the count left those out
    until 2026-12-04, 7 % of the heat here)."""
    cfg, setup, start = _setup("xor")
    run = train_to_criterion(setup, start, cfg.seed, MAX_EPOCHS["xor"])
    c, task, rule, hw, dyn = setup.circuit, setup.task, setup.rule, setup.hardware, setup.dynamics
    solver = NativeSolver()
    heat, came_back = 0.0, 0
    for before, gate_step in zip(run.gates, run.gate_steps):
        free = solver.solve(c, before, task.inputs).voltages
        active = task.margins(c.output_values(free), task.classes) < rule.margin
        clamps = rule.clamp(c, free[active], task.targets[active], task.classes[active])
        clamped = solver.solve(c, before, task.inputs[active], clamps).voltages
        u = rule.contrast(c, free[active], clamped)  # [windows, E], one per active point
        ends = np.clip(before + rule.rate * np.cumsum(u, axis=0), dyn.low, dyn.high)  # the running sum, clipped
        windows = np.diff(np.vstack([before, ends]), axis=0)
        np.testing.assert_allclose(windows.sum(axis=0), gate_step, rtol=0, atol=1e-12)  # they add up to the step
        came_back += int(((gate_step == 0) & (np.abs(windows) > 0).any(axis=0)).sum())
        heat += float(((hw.capacitance * windows) ** 2).sum() * hw.resistance / hw.t_learn)
    assert came_back > 0, "no gate came back within a step: the case goes untested"
    assert run.band.nominal.dissipated == pytest.approx(heat, rel=1e-9)


def test_under_a_dead_band_the_windows_of_an_edge_that_does_not_update_carry_no_charge():
    """An edge whose summed contrast stays inside ``learning.dead_band`` keeps its gate (``step.update_controls``),
    so none of its step's windows charge it: the windows add up to the gates the run goes through (the stored
    energy is the states'), and a window heats only the edges the step moves."""
    cfg = load_config(ROOT / "configs" / "xor.yaml", ["simulator.backend=native", "learning.dead_band=0.0009"])
    setup = build(cfg)
    start = initial_controls(setup, np.random.default_rng(cfg.seed))
    run = train_to_criterion(setup, start, cfg.seed, 20)
    still = run.gate_steps == 0
    assert still.any() and (~still).any()  # both kinds of edge in the run, or the band goes untested
    stored = 0.5 * setup.hardware.capacitance * float((run.controls**2 - start**2).sum())
    assert run.band.nominal.stored == pytest.approx(stored, rel=1e-9)
