"""``circuit.control_gradient``: the adjoint gradient of a loss of the free state in every edge's control, held to
central differences of real operating points (the native solver and ngspice), with hidden nodes, tied bodies behind
series resistances, twin mismatch and linear edges."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from metamaterial import circuit, devices, graph
from metamaterial.sim.native import NativeSolver

N_IN, N_HIDDEN, N_OUT = 6, 3, 4
BATCH = 3
CONTROL_STEP = 1e-4      # relative step of the reference differences (truncation ~1e-8 relative)
CHECKED_EDGES = 6
AGREEMENT = 1e-5         # |adjoint - difference| over the largest checked gradient


def _layered(device, hidden):
    """Inputs -> (hidden ->) two differential output pairs, every allowed pair wired."""
    g = graph.layered_network(N_IN, N_OUT, hidden=hidden)
    outs = list(range(N_IN + hidden, N_IN + hidden + N_OUT))
    roles = graph.Roles(inputs=tuple(range(N_IN)), rails=(), outputs=((outs[0], outs[1]), (outs[2], outs[3])))
    return circuit.compile_graph(graph.assign_roles(g, roles), device)


NMOS = devices.nmos_preset("ald1106-l1", rd=0.0, rs=0.0)
GATES, CONDUCTANCES = (0.5, 4.0), (1e-5, 1e-3)


def _tied_behind_series_resistances(rng):
    c = _layered(devices.nmos_preset("ald1106-l1"), 0)  # the card's rd and rs
    return replace(c, body=c.edges[:, 0])  # each body at its pixel, the drain


def _mismatched_hidden_layer(rng):
    c = _layered(NMOS, N_HIDDEN)
    return replace(c, mismatch=devices.draw_mismatch(c.n_edges, 0.01, 0.05, rng))


#: name -> (circuit from a generator, range of its controls)
CASES = {
    "hidden layer": (lambda rng: _layered(NMOS, N_HIDDEN), GATES),
    "tied bodies, series R": (_tied_behind_series_resistances, GATES),
    "series R": (lambda rng: _layered(devices.nmos_preset("ald1106-l1"), N_HIDDEN), GATES),
    "three-regime law": (lambda rng: _layered(devices.nmos_preset("ald1106-hw"), N_HIDDEN), GATES),
    "mismatch, hidden layer": (_mismatched_hidden_layer, GATES),
    "resistors": (lambda rng: _layered(devices.ResistorParams(g_min=1e-5, g_max=1e-3), N_HIDDEN), CONDUCTANCES),
}


def _check(c, controls, x, weights, solver):
    """Largest |adjoint - central difference| of L = sum(weights * V) over a few controls, and the gradient's size."""
    v = solver.solve(c, controls, x).voltages
    grad = circuit.control_gradient(c, controls, v, weights).sum(axis=0)
    worst = 0.0
    for e in np.linspace(0, c.n_edges - 1, CHECKED_EDGES).astype(int):
        h = CONTROL_STEP * controls[e]
        up, down = controls.copy(), controls.copy()
        up[e] += h
        down[e] -= h
        diff = (np.sum(weights * solver.solve(c, up, x).voltages)
                - np.sum(weights * solver.solve(c, down, x).voltages)) / (2 * h)
        worst = max(worst, abs(grad[e] - diff))
    return worst, np.abs(grad).max()


@pytest.mark.parametrize("case", list(CASES))
def test_adjoint_gradient_matches_differences_of_native_operating_points(case):
    make, (low, high) = CASES[case]
    rng = np.random.default_rng(list(CASES).index(case))
    c = make(rng)
    controls = rng.uniform(low, high, c.n_edges)
    x = rng.uniform(0.0, 1.0, (BATCH, c.n_inputs))
    weights = rng.standard_normal((BATCH, c.n_nodes))
    worst, size = _check(c, controls, x, weights, NativeSolver())
    assert size > 0
    assert worst <= AGREEMENT * size, f"{case}: adjoint off by {worst:.3g} (gradient up to {size:.3g})"


def test_adjoint_gradient_matches_differences_of_ngspice_operating_points(ngspice):
    c = _layered(NMOS, N_HIDDEN)
    rng = np.random.default_rng(7)
    controls = rng.uniform(*GATES, c.n_edges)
    x = rng.uniform(0.0, 1.0, (BATCH, c.n_inputs))
    weights = rng.standard_normal((BATCH, c.n_nodes))
    worst, size = _check(c, controls, x, weights, ngspice)
    assert worst <= AGREEMENT * size, f"adjoint off by {worst:.3g} (gradient up to {size:.3g})"


def test_a_gradient_step_lowers_the_loss():
    """Along -gradient the loss falls at the rate the gradient predicts (first order), on a hidden-layer circuit."""
    c = _layered(NMOS, N_HIDDEN)
    rng = np.random.default_rng(3)
    controls = rng.uniform(*GATES, c.n_edges)
    x = rng.uniform(0.0, 1.0, (BATCH, c.n_inputs))
    target = rng.uniform(0.1, 0.4, (BATCH, N_OUT))
    solver = NativeSolver()

    def loss(ctrl):
        v = solver.solve(c, ctrl, x).voltages
        return 0.5 * np.sum((v[:, c.clamp_nodes] - target) ** 2), v

    before, v = loss(controls)
    d_v = np.zeros_like(v)
    d_v[:, c.clamp_nodes] = v[:, c.clamp_nodes] - target
    grad = circuit.control_gradient(c, controls, v, d_v).sum(axis=0)
    step = 1e-3 / np.abs(grad).max()
    after, _ = loss(controls - step * grad)
    predicted = step * np.sum(grad**2)
    assert after < before
    assert abs((before - after) - predicted) <= 0.01 * predicted
