"""Coupled learning against gradient descent (``Trainer.rule_and_gradient``, docs/physics.md 3.10).

For a reciprocal network (linear resistors) the rule's contrast of a point is exactly -2 dL/dx of the loss its
clamps ask to lower, L = -f . V (f the current each clamp drives into its node), as the nudge goes to zero, with
an error of first order in the nudge; with a single clamped node that loss is the task's own. Both sides are
computed independently: the contrast from the free and clamped operating points of a real solver, the gradient by
the adjoint of Kirchhoff's law (``circuit.control_gradient``)."""

from __future__ import annotations

import numpy as np
import pytest

from metamaterial.analysis import direction_noise
from metamaterial.circuit import edge_currents
from metamaterial.configfile import load_config
from metamaterial.experiment import build, initial_controls, make_trainer

RESISTORS = ["device.kind=resistor", "learning.init={kind: uniform}", "learning.bounds=[1e-5, 1e-2]"]


def _rule_and_gradient(config, nudge, *overrides, backend="native"):
    cfg = load_config(f"configs/{config}.yaml",
                      overrides=[*overrides, f"learning.nudge={nudge}", f"simulator.backend={backend}"])
    setup = build(cfg)
    controls = initial_controls(setup, np.random.default_rng(1))
    return make_trainer(setup).rule_and_gradient(controls, np.arange(min(setup.task.n_points, 12)))


def _limit_error(r):
    """Largest |U + 2 dL/dx| of the clamps' loss over the largest |U|, over the active points."""
    u, g = r.u[r.active], r.clamps[r.active]
    return np.abs(u + 2 * g).max() / np.abs(u).max()


@pytest.mark.parametrize("config", ["xor", "iris"])
def test_resistor_rule_is_the_clamps_gradient_in_the_limit(config):
    """Two clamped nodes (XOR's differential pair) or three (Iris): U -> -2 dL/dx, the error falling as the nudge."""
    coarse = _limit_error(_rule_and_gradient(config, 1e-2, *RESISTORS))
    fine = _limit_error(_rule_and_gradient(config, 1e-4, *RESISTORS))
    assert fine < 1e-3
    assert 50 < coarse / fine < 200  # first order in the nudge: 100x smaller for a 100x smaller nudge


def test_resistor_rule_against_the_task_gradient():
    """With several clamped nodes the task's loss -p . O is not the clamps': the rule departs from its gradient
    by the network's response between those nodes, and the departure does not vanish with the nudge."""
    r = _rule_and_gradient("xor", 1e-4, *RESISTORS)
    a = r.active
    assert direction_noise(r.u[a], -r.clamps[a]).max() < 1e-8
    assert direction_noise(r.u[a], -r.task[a]).min() > 1e-3


def test_one_clamped_node_the_task_loss_is_the_clamps():
    """One single-ended output: the clamp's current is a positive multiple of the push, so both gradients share a
    direction point by point (transistors, the regression config)."""
    r = _rule_and_gradient("linear_regression", 0.5)
    assert r.active.all()
    assert direction_noise(r.task, r.clamps).max() < 1e-12


def test_resistor_limit_on_ngspice():
    """The same limit through ngspice's operating points."""
    r = _rule_and_gradient("xor", 1e-3, *RESISTORS, backend="ngspice")
    assert _limit_error(r) < 1e-3
    a = r.active
    assert direction_noise(r.u[a], -r.clamps[a]).max() < 1e-5


def test_inactive_points_have_no_step():
    """Under the hinge a point past its margin takes no step; its gradients are still given."""
    r = _rule_and_gradient("xor", 0.5, "learning.loss=hinge", "learning.margin=0.0")
    assert r.active.any() and not r.active.all()
    assert not r.u[~r.active].any() and r.u[r.active].any(axis=1).all()
    assert (np.abs(r.task).max(axis=1) > 0).all()


def test_transistors_off_take_steps_the_gradient_does_not():
    """A level-1 transistor below threshold carries no current, so no loss of the operating point depends on its
    gate there (zero gradient, exactly); the rule still moves it by the drop across it (docs/physics.md 3.10). On
    the conducting edges the step is close to the clamps' descent."""
    cfg = load_config("configs/xor.yaml", overrides=["simulator.backend=native", "learning.nudge=1e-3"])
    setup = build(cfg)
    controls = initial_controls(setup, np.random.default_rng(0))
    r = make_trainer(setup).rule_and_gradient(controls, np.arange(setup.task.n_points))
    a = r.active
    off = edge_currents(setup.circuit, controls, r.free[a]) == 0.0
    assert off.any(axis=1).all()
    assert not r.task[a][off].any() and not r.clamps[a][off].any()
    assert np.abs(r.u[a][off]).max() > 0.1 * np.abs(r.u[a]).max()
    assert direction_noise(r.u[a] * ~off, -r.clamps[a] * ~off).max() < 0.03
