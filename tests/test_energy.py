"""Operating-point power and learning-hardware accounting (metamaterial.energy).

Physical invariants (power balance: what the drivers deliver is what the devices dissipate), agreement with
ngspice's own device power (``@m<name>[p]``, the sum over terminals of current times voltage), native ==
ngspice, and the closed forms of the gate-capacitor charging.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import replace

import numpy as np
import pytest

from metamaterial.circuit import compile_graph
from metamaterial.devices import ResistorParams, draw_mismatch
from metamaterial.energy import (
    CAPACITOR_BAND,
    CODE_GAIN_BAND,
    GAIN_BAND,
    learning_band,
    learning_clock,
    power_report,
    time_band,
    transistor_power,
    update_cost,
)
from metamaterial.errors import ValidationError
from metamaterial.graph import Roles, assign_roles, lattice_network
from metamaterial.learning.gates import HardwareParams
from metamaterial.netlist import to_spice
from metamaterial.sim.native import NativeSolver
from metamaterial.sim.ngspice import run_batch_file
from metamaterial.tasks import xor_task
from tests.conftest import random_gates, xor_circuit

REL = 1e-9            # agreement asked of the power: ngspice's device power, and native vs ngspice
N_EDGES = 32          # the paper's 4x4 torus
NUDGE = 0.5


def _ngspice_device_power(circuit, controls, inputs, clamps=None, field="p") -> tuple[np.ndarray, np.ndarray]:
    """(node voltages [N], ngspice's ``@m<e>[field]`` of every transistor [E]: its power ``p`` by default, or a
    terminal current ``id``, ``is``, ``ig`` (A, into the terminal)) from ``ngspice -b`` on the package's netlist."""
    text = to_spice(circuit, controls, inputs, clamps, control_block=False)
    block = [".control", "set numdgt=15", "op", "print all"]
    block += [f"print @m{e}[{field}]" for e in range(circuit.n_edges)] + ["quit 0", ".endc", ".end"]
    text = text.replace(".end\n", "\n".join(block) + "\n")
    fd, path = tempfile.mkstemp(suffix=".cir")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    try:
        out = run_batch_file(path)
    finally:
        os.unlink(path)
    values = {m.group(1).lower(): float(m.group(2))
              for m in re.finditer(r"^\s*(\S+)\s*=\s*([-+0-9.eE]+)\s*$", out, re.MULTILINE)}
    v = np.array([values[f"n{i}"] for i in range(circuit.n_nodes)])
    return v, np.array([values[f"@m{e}[{field}]"] for e in range(circuit.n_edges)])


def _mismatched_xor():
    c = xor_circuit()
    return replace(c, mismatch=draw_mismatch(c.n_edges, 0.01, 0.005, np.random.default_rng(3)))


@pytest.mark.parametrize("point", range(4))
def test_transistor_power_matches_ngspice_device_power(point):
    c = _mismatched_xor()
    gates = random_gates(c.n_edges, seed=point, low=0.5, high=3.0)
    x = xor_task().inputs[point:point + 1]
    v_free, p_free = _ngspice_device_power(c, gates, x)
    ours = transistor_power(c, gates, v_free, twin=0)[0]
    assert np.abs(ours - p_free).max() <= REL * np.abs(p_free).max()
    assert abs(ours.sum() - p_free.sum()) <= REL * p_free.sum()
    # the clamped twin (its own transistors under mismatch): outputs nudged halfway to the label
    target = -0.087 if point in (1, 2) else 0.0
    o = v_free[10] - v_free[0]
    clamps = np.array([[v_free[10] + NUDGE / 2 * (target - o), v_free[0] - NUDGE / 2 * (target - o)]])
    v_clamped, p_clamped = _ngspice_device_power(c, gates, x, clamps)
    ours = transistor_power(c, gates, v_clamped, twin=1)[0]
    assert np.abs(ours - p_clamped).max() <= REL * np.abs(p_clamped).max()


@pytest.mark.parametrize("point", [1, 3])
def test_transistor_power_is_ngspice_terminal_currents_times_node_voltages(point):
    """Independent of ngspice's own power sum: its drain, source and gate currents (``@m<e>[id]``, ``[is]``,
    ``[ig]``) times the node voltages (the drops to the grounded body) give our power; the channel current alone
    (``[id]`` less the drain junction's current) is our I_DS."""
    c = _mismatched_xor()
    gates = random_gates(c.n_edges, seed=10 + point, low=0.5, high=3.0)
    x = xor_task().inputs[point:point + 1]
    v, i_d = _ngspice_device_power(c, gates, x, field="id")
    currents = {f: _ngspice_device_power(c, gates, x, field=f)[1] for f in ("is", "ig")}
    np.testing.assert_array_equal(currents["ig"], 0.0)
    va, vb = v[c.edges[:, 0]], v[c.edges[:, 1]]  # drain and source of M<e> (netlist order)
    ours = transistor_power(c, gates, v[None], twin=0)[0]
    terminal = i_d * va + currents["is"] * vb
    assert np.abs(ours - terminal).max() <= REL * np.abs(terminal).max()
    from metamaterial.circuit import edge_currents
    from metamaterial.mos import junction_current
    channel = i_d - junction_current(c.device, v[None], c.gmin)[0][0][c.edges[:, 0]]
    i_ds = edge_currents(c, gates, v[None])[0]
    assert np.abs(i_ds - channel).max() <= REL * np.abs(channel).max()


def test_native_power_equals_ngspice_power(ngspice):
    c = xor_circuit()
    gates = random_gates(N_EDGES, seed=7, low=0.5, high=3.0)
    x = xor_task().inputs
    p_native = power_report(c, gates, NativeSolver().solve(c, gates, x).voltages)
    p_ngspice = power_report(c, gates, ngspice.solve(c, gates, x).voltages)
    assert np.abs(p_native.free - p_ngspice.free).max() <= REL * p_ngspice.free.max()
    np.testing.assert_allclose(p_native.total_free, p_ngspice.total_free, rtol=REL)


def test_power_balance_drivers_deliver_what_devices_dissipate():
    """Sum over driven nodes of V times the current leaving into the network == sum of device powers."""
    c = xor_circuit()
    gates = random_gates(N_EDGES, seed=2)
    v = NativeSolver().solve(c, gates, xor_task().inputs).voltages
    report = power_report(c, gates, v)
    from metamaterial.circuit import edge_currents
    from metamaterial.mos import junction_current
    i_e = edge_currents(c, gates, v)
    out = np.zeros_like(v)
    np.add.at(out.T, c.edges[:, 0], i_e.T)
    np.add.at(out.T, c.edges[:, 1], -i_e.T)
    out += junction_current(c.device, v, c.gmin)[0] * np.bincount(c.edges.ravel(), minlength=c.n_nodes)
    delivered = (out * v).sum(axis=1)  # free nodes carry ~0 net current, so this is the drivers' power
    np.testing.assert_allclose(delivered, report.total_free, rtol=1e-9)
    assert (report.free >= 0).all()


def test_resistor_edges_dissipate_g_dv_squared():
    g = assign_roles(lattice_network(1, 4, periodic=False), Roles(inputs=(0,), rails=((3, 0.0),), outputs=((1, None),)))
    c = compile_graph(g, ResistorParams())
    cond = np.array([1e-3, 2e-3, 5e-4])
    v = np.array([[0.4, 0.3, 0.1, 0.0]])
    np.testing.assert_allclose(transistor_power(c, cond, v)[0], cond * np.array([0.1, 0.2, 0.1]) ** 2, rtol=1e-15)
    report = power_report(c, cond, v, v)
    assert report.total[0] == pytest.approx(2 * report.total_free[0])
    assert report.summary()["clamped_max_w"] == pytest.approx(report.free.max())


def test_transistor_power_refuses_voltages_of_another_circuit():
    c = xor_circuit()
    with pytest.raises(ValidationError, match=r"energy.transistor_power: voltages must have 16 columns \(got shape "
                                              r"\(1, 5\)\); pass node voltages"):
        transistor_power(c, np.ones(N_EDGES), np.zeros((1, 5)))


# -- learning hardware ----------------------------------------------------------------------------------------
def test_update_cost_is_the_charging_circuit_in_closed_form():
    """The hardware's update dV = gain t U / (R C) moves Q = C dV, and the resistor then carries V_R = gain U:
    its heat is V_R^2 t / R."""
    hw = HardwareParams()
    contrast = np.array([0.01, -0.004, 0.0])  # V^2
    before = np.array([1.0, 2.0, 3.0])
    after = before + hw.rate * contrast
    cost = update_cost(before, after, hw)
    np.testing.assert_allclose(cost.charge, hw.capacitance * hw.rate * contrast, rtol=1e-9)
    v_r = hw.gain * contrast
    assert cost.dissipated == pytest.approx(float((v_r**2).sum() * hw.t_learn / hw.resistance), rel=1e-9)
    stored = 0.5 * hw.capacitance * (after**2 - before**2).sum()
    assert cost.stored == pytest.approx(stored, rel=1e-12)
    assert cost.total_charge == pytest.approx(float(np.abs(cost.charge).sum()))


def test_update_cost_refuses_mismatched_shapes():
    with pytest.raises(ValidationError, match=r"energy.update_cost: before and after must have one shape \(got "
                                              r"\(3,\) and \(2,\)\)"):
        update_cost(np.zeros(3), np.zeros(2), HardwareParams())


def test_learning_clock_counts_one_window_per_applied_point():
    hw = HardwareParams(t_learn=1e-4, t_settle=1e-5)
    clock = learning_clock(windows=300, presentations=4 * 100, hardware=hw)  # full batch, 4 points, 100 steps
    assert clock.learning_time == pytest.approx(300 * 1e-4)
    assert clock.hardware_time == pytest.approx(400 * (1e-4 + 1e-5))  # a slot per point, its switch closed or not
    with pytest.raises(ValidationError, match=r"energy.learning_clock: need 0 <= windows <= presentations \(got "
                                              r"windows=5, presentations=4\)"):
        learning_clock(5, 4, hw)
    with pytest.raises(ValidationError, match=re.escape("energy.learning_clock: windows must be a whole number (got "
                                                        "10.5); give a count of windows as an int")):
        learning_clock(10.5, 20, hw)  # it was 10 windows, without a word
    assert learning_clock(np.int64(10), 20, hw).learning_time == pytest.approx(10 * 1e-4)


def test_learning_band_spans_the_constants_and_names_the_dominant_one():
    rate = 5.0
    hw = HardwareParams(t_learn=HardwareParams().t_learn_for(rate))
    rng = np.random.default_rng(0)
    steps = rng.normal(0, 1e-3, (10, N_EDGES))
    gates = rng.uniform(1, 3, (10, N_EDGES))
    band = learning_band(rate, 1000, steps, gates, hw)
    assert band.nominal.t_learn == pytest.approx(hw.t_learn)
    assert band.nominal.learning_time == pytest.approx(1000 * hw.t_learn)
    lo, hi = band.range("learning_time")
    ratio = (CAPACITOR_BAND[1] / CAPACITOR_BAND[0]) * (GAIN_BAND[1] / GAIN_BAND[0])
    assert hi / lo == pytest.approx(ratio)
    assert band.dominant == "capacitance"  # 2.2/0.47 = 4.7 against the gain's 4
    # the time alone, without the energies: the same corners; at the gain the authors' code implies (x24-x121 the
    # nominal 0.1 /V) every time is that much shorter
    assert time_band(rate, 1000, hw) == pytest.approx((lo, hi), rel=1e-12)
    code = learning_band(rate, 1000, steps, gates, hw, gains=CODE_GAIN_BAND).range("learning_time")
    assert time_band(rate, 1000, hw, gains=CODE_GAIN_BAND) == pytest.approx(code, rel=1e-12)
    assert code[1] == pytest.approx(hi * GAIN_BAND[0] / CODE_GAIN_BAND[0], rel=1e-12)
    assert learning_band(rate, 1000, steps, gates, hw, gains=(0.01, 1.0)).dominant == "gain"
    # heat per window (C dV)^2 R / t_learn scales with C * gain; stored energy with C alone
    d_lo, d_hi = band.range("dissipated")
    assert d_hi / d_lo == pytest.approx(ratio)
    assert band.nominal.dissipated == pytest.approx(100 * update_cost(np.zeros(N_EDGES), steps[0], hw).dissipated
                                                    * (steps**2).sum() / (steps[0] ** 2).sum(), rel=1e-9)


@pytest.mark.parametrize("kwargs, message", [
    ({"rate": 0.0}, r"energy.learning_band: rate must be positive \(got 0.0\)"),
    ({"gates": np.zeros((2, 3))}, r"energy.learning_band: gate_steps and gates must have one shape \(got \(1, 3\) "
                                  r"and \(2, 3\)\)"),
    ({"capacitances": (2e-6, 1e-6)}, r"energy.learning_band: capacitances must be \(low, high\) with 0 < low <= "
                                     r"high \(got \(2e-06, 1e-06\)\)"),
    ({"gains": (0.0, 0.1)}, r"energy.learning_band: gains must be \(low, high\)"),
])
def test_learning_band_refuses_bad_arguments(kwargs, message):
    args = {"rate": 1.0, "windows": 10, "gate_steps": np.zeros(3), "gates": np.zeros(3), "hardware": HardwareParams()}
    with pytest.raises(ValidationError, match=message):
        learning_band(**{**args, **kwargs})


@pytest.mark.parametrize(("kind", "batch"), [("cycle", 1), ("full_batch", 1), ("mini_batch", 3)])
def test_the_trainers_hardware_time_is_a_slot_per_point_the_learning_transient_presents(kind, batch):
    """The trainer's hardware clock and its leak count the slots the learning hardware's transient runs: a step of
    ``cycle`` presents one point, of ``full_batch`` every point (2 settles a step were counted, whatever the batch);
    a mini-batch of 3 of XOR's 4 points presents 3 then 1 each epoch."""
    import math  # noqa: PLC0415

    from metamaterial.configfile import load_config  # noqa: PLC0415
    from metamaterial.experiment import build, make_trainer  # noqa: PLC0415
    from metamaterial.learning_hardware import slots  # noqa: PLC0415

    cfg = load_config("configs/xor.yaml", [f"learning.schedule={kind}", f"learning.batch_size={batch}",
                                            "learning.leak.tau=5"] if kind == "mini_batch" else
                      [f"learning.schedule={kind}", "learning.leak.tau=5"])
    setup = build(cfg)
    trainer = make_trainer(setup)
    state = trainer.init_state(np.ones((1, setup.circuit.n_edges)), [np.random.default_rng(0)])
    hw = trainer.hardware
    for steps in (1, 2, 5, 8):
        state.n_steps = steps
        if kind != "mini_batch":
            assert trainer.presentations(state) == len(slots(setup, steps)[0])
        presented = {"cycle": steps, "full_batch": 4 * steps, "mini_batch": 4 * (steps // 2) + 3 * (steps % 2)}[kind]
        assert trainer.presentations(state) == presented
        assert trainer.hardware_time(state) == pytest.approx([presented * (hw.t_settle + hw.t_learn)])
    per_step = {"cycle": 1, "full_batch": 4, "mini_batch": 3}[kind]
    assert trainer.program.leak_factor == pytest.approx(math.exp(-per_step * (hw.t_settle + hw.t_learn) / 5))


@pytest.mark.parametrize("preset", ["ald1106-fit", "ald1106-l1", "ald1106-hw"])
def test_an_edge_at_a_node_of_unknown_voltage_carries_nan_not_zero(preset):
    """A failed point's node voltages are NaN: every edge at such a node, of every law (with series resistances
    and junctions too), has an unknown current and power, and the other edges and points their own. The level-1
    law's comparisons with NaN took some of them for cut off: 0 A, 0 W in a power total."""
    from metamaterial.circuit import edge_currents  # noqa: PLC0415

    c = xor_circuit(preset)
    gates = random_gates(c.n_edges)
    v = NativeSolver().solve(c, gates, np.array([[0.45, 0.0], [0.0, 0.45]])).voltages.copy()
    node = int(np.setdiff1d(np.arange(c.n_nodes), c.source_nodes)[0])
    known = edge_currents(c, gates, v)
    v[0, node] = np.nan
    touch = (c.edges == node).any(axis=1)
    for got in (edge_currents(c, gates, v), transistor_power(c, gates, v)):
        assert np.isnan(got[0, touch]).all() and np.isfinite(got[0, ~touch]).all() and np.isfinite(got[1]).all()
    np.testing.assert_array_equal(edge_currents(c, gates, v)[:, ~touch], known[:, ~touch])
