"""The learning rule, edge dynamics and schedules: closed forms, and coupled learning as gradient descent."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import random_gates, xor_circuit
from metamaterial import step
from metamaterial.circuit import compile_graph
from metamaterial.devices import PotentiometerParams, ResistorParams
from metamaterial.graph import Roles, assign_roles, lattice_network
from metamaterial.learning.gates import EdgeDynamics, HardwareParams
from metamaterial.learning.rules import CoupledLearning, mse
from metamaterial.learning.schedules import Schedule
from metamaterial.learning.trainer import Trainer, TrainParams
from metamaterial.tasks import regression_task, xor_task

SMALL_NUDGE = 1e-3
DESYNC_STEPS = 400


def test_single_ended_and_differential_nudge():
    c = xor_circuit()  # one differential output: pos n10, neg n0
    free = np.random.default_rng(0).uniform(0, 0.45, (3, c.n_nodes))
    target = np.array([[-0.087], [0.0], [0.02]])
    rule = CoupledLearning(nudge=0.3)
    clamps = rule.clamp(c, free, target)
    o_free = free[:, 10] - free[:, 0]
    o_clamped = clamps[:, 0] - clamps[:, 1]
    np.testing.assert_allclose(o_clamped, o_free + 0.3 * (target[:, 0] - o_free), atol=1e-15)
    np.testing.assert_allclose(clamps.sum(axis=1), free[:, 10] + free[:, 0], atol=1e-15)  # symmetric push
    single = compile_graph(assign_roles(lattice_network(4, 4), Roles((15,), ((5, 0.0),), ((10, None),))),
                           xor_circuit().device)
    cl = CoupledLearning(nudge=0.5).clamp(single, free, target)
    np.testing.assert_allclose(cl[:, 0], free[:, 10] + 0.5 * (target[:, 0] - free[:, 10]), atol=1e-15)


def test_coupled_learning_approaches_gradient_descent_on_resistors(ngspice):
    # For a linear network, (dV_F^2 - dV_C^2)/eta -> -2 G_eff dC/dk as eta -> 0 (C = (V_O - L)^2 / 2):
    # the update is parallel to the negative gradient of the output error.
    g = assign_roles(lattice_network(3, 4, periodic=False), Roles((0,), ((11, 0.45),), ((6, None),)))
    c = compile_graph(g, ResistorParams())
    k = np.random.default_rng(1).uniform(1e-4, 1e-3, c.n_edges)
    x, label = np.array([[0.0]]), np.array([[0.3]])
    rule = CoupledLearning(nudge=SMALL_NUDGE)
    free = ngspice.solve(c, k, x).voltages
    clamped = ngspice.solve(c, k, x, rule.clamp(c, free, label)).voltages
    update = rule.contrast(c, free, clamped)[0] / SMALL_NUDGE

    def cost(kk):
        out = c.output_values(ngspice.solve(c, kk, x).voltages)
        return 0.5 * float((out[0, 0] - label[0, 0]) ** 2)

    h = 1e-9
    grad = np.array([(cost(k + h * e) - cost(k - h * e)) / (2 * h) for e in np.eye(c.n_edges)])
    cosine = -update @ grad / (np.linalg.norm(update) * np.linalg.norm(grad))
    assert cosine > 0.999, cosine


def test_hinge_skips_points_past_the_margin(ngspice):
    c = xor_circuit()
    task = xor_task()
    rule = CoupledLearning(nudge=0.5, rate=30.0, loss="hinge", margin=1.0)  # nothing is past a 1 V margin
    tr = Trainer(c, task, rule, EdgeDynamics(), TrainParams(epochs=1), ngspice)
    gates = random_gates(c.n_edges)
    rng = np.random.default_rng(0)
    moved, solves, _ = tr.step(gates, np.arange(4), rng)
    assert solves == 8 and not np.array_equal(moved, gates)
    lazy = Trainer(c, task, CoupledLearning(nudge=0.5, rate=30.0, loss="hinge", margin=-1.0), EdgeDynamics(),
                   TrainParams(epochs=1), ngspice)
    same, solves, any_moved = lazy.step(gates, np.arange(4), rng)  # every point "past" a -1 V margin
    assert solves == 4 and not any_moved and np.array_equal(same, gates)


def test_desynchronous_updates_touch_a_fraction_p_of_edges(ngspice):
    c = xor_circuit()
    p = 0.25
    tr = Trainer(c, xor_task(), CoupledLearning(nudge=0.5, rate=30.0), EdgeDynamics(low=-1e9, high=1e9),
                 TrainParams(epochs=1, update_probability=p), ngspice)
    rng = np.random.default_rng(5)
    gates = random_gates(c.n_edges, low=2.0, high=3.0)
    changed = 0
    for i in range(DESYNC_STEPS // 4):
        new, _, _ = tr.step(gates, np.array([i % 4]), rng)
        changed += int(np.count_nonzero(new != gates))
    frac = changed / (DESYNC_STEPS // 4 * c.n_edges)
    sigma = math.sqrt(p * (1 - p) / (DESYNC_STEPS // 4 * c.n_edges))
    assert abs(frac - p) < 4 * sigma, (frac, p)


def _update(dyn: EdgeDynamics, controls: np.ndarray, u: np.ndarray, rate: float, dt: float) -> np.ndarray:
    """One update of every edge of one replica by the step's compiled update, with ``dyn``'s rule, clip and leak."""
    leak = 1.0 if dyn.leak_tau is None else math.exp(-dt / dyn.leak_tau)
    new = step.compiled().update_controls(controls[None], u[None], np.ones((1, len(controls)), bool),
                                          dyn.kind == "sign", rate, np.zeros(0), dyn.low, dyn.high, leak, dyn.rest,
                                          dyn.dead_band)
    return new[0]


def test_edge_dynamics_closed_forms():
    cont = EdgeDynamics("continuous", 0.4, 8.0)
    np.testing.assert_allclose(_update(cont, np.array([1.0, 7.9, 0.5]), np.array([0.01, 1.0, -1.0]), 30.0, 1e-4),
                               [1.3, 8.0, 0.4])
    leaky = EdgeDynamics("continuous", 0.0, 10.0, leak_tau=2.0, rest=1.0)
    out = _update(leaky, np.array([3.0]), np.array([0.0]), 1.0, dt=0.5)
    assert out[0] == pytest.approx(1.0 + 2.0 * math.exp(-0.25))
    taps = EdgeDynamics("sign", 0, PotentiometerParams().n_taps - 1)
    new = _update(taps, np.array([0.0, 50.0, 99.0, 10.0]), np.array([-1e-6, 3e-3, 1e-2, 0.0]), 1.0, 1.0)
    np.testing.assert_array_equal(new, [0.0, 51.0, 99.0, 10.0])


def test_hardware_rate_and_switch_time():
    hw = HardwareParams()  # C = 2.2 uF, R = 1 kohm, t_learn = 100 us, gain 0.1
    assert hw.rate == pytest.approx(0.1 * 100e-6 / (1e3 * 2.2e-6))
    assert hw.t_learn_for(hw.rate) == pytest.approx(100e-6)


def test_schedules_cover_every_point():
    rng = np.random.default_rng(0)
    assert [b.tolist() for b in Schedule("cycle").batches(3, rng)] == [[0], [1], [2]]
    assert [b.tolist() for b in Schedule("full_batch").batches(3, rng)] == [[0, 1, 2]]
    for kind, size in (("shuffle", 1), ("mini_batch", 3)):
        batches = Schedule(kind, size).batches(8, rng)
        assert sorted(np.concatenate(batches).tolist()) == list(range(8))
        assert max(len(b) for b in batches) == size


def test_training_lowers_the_regression_error(ngspice):
    g = assign_roles(lattice_network(4, 4), Roles((15,), ((5, 0.0), (7, 0.45)), ((10, None),)))
    c = compile_graph(g, xor_circuit().device)
    task = regression_task()
    tr = Trainer(c, task, CoupledLearning(nudge=1.0, rate=5.0), EdgeDynamics(), TrainParams(epochs=60, eval_every=60),
                 ngspice)
    rng = np.random.default_rng(0)
    state = tr.run(tr.init_state(np.full(c.n_edges, 3.0), rng))
    assert state.history[-1]["loss"] < 0.5 * state.history[0]["loss"]
    assert state.history[-1]["loss"] == pytest.approx(mse(tr.evaluate(state.controls).outputs, task.targets))


def test_a_cut_that_strands_a_node_is_refused():
    from metamaterial.circuit import without_edges
    from metamaterial.errors import ValidationError
    c = xor_circuit()
    node1 = np.flatnonzero((c.edges == 1).any(axis=1))  # the four edges of node 1
    assert without_edges(c, node1[:3]).n_edges == c.n_edges - 3
    with pytest.raises(ValidationError, match=r"leaves nodes \[1\] with no path to a source"):
        without_edges(c, node1)
