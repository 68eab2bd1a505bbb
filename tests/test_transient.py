"""Latency and energy per inference from ngspice transients (metamaterial.transient).

Closed forms first: a single RC pole and a resistor ladder behind driver resistances, whose step responses are
sums of exponentials (settling time and the drivers' energy analytic), to 2 %. Then the NMOS lattice: the
transient's end state is the DC operating point of the package's solvers to 1e-6 V.
"""

from __future__ import annotations

import math
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import brentq

from metamaterial.circuit import compile_graph
from metamaterial.devices import ResistorParams, draw_mismatch
from metamaterial.energy import power_report
from metamaterial.errors import SimulationError, ValidationError
from metamaterial.graph import Roles, assign_roles, lattice_network
from metamaterial.sim.native import NativeSolver
from metamaterial.sim.ngspice import run_batch_file  # noqa: F401 (the transient runs ngspice -b)
from metamaterial.tasks import xor_task
from metamaterial.timing import MIN_SAMPLE_STEP
from metamaterial.transient import (
    CAPACITANCES,
    MosCapacitances,
    PeripheryParams,
    SettleParams,
    dc_point,
    step_response,
    transient_netlist,
)
from tests.conftest import ROOT, random_gates, xor_circuit

CLOSED_FORM_REL = 0.02   # the bar for settling time and energy against the analytic answer
DC_ATOL = 1e-6           # V: end of the transient against the DC operating point
RISE = 1e-12             # s: an input edge far shorter than every time constant below (an ideal step)


def _chain(n_nodes: int, output: int, rail_volts: float):
    g = lattice_network(1, n_nodes, periodic=False)
    roles = Roles(inputs=(0,), rails=((n_nodes - 1, rail_volts),), outputs=((output, None),))
    return compile_graph(assign_roles(g, roles), ResistorParams())


def test_single_rc_pole_settles_and_costs_what_the_closed_form_says():
    """input -- G1 -- out (C) -- G2 -- 0 V: V_out relaxes with tau = C / (G1 + G2)."""
    c = _chain(3, 1, 0.0)
    g1, g2, cap = 1e-3, 2e-3, 10e-12
    v0, v1 = 0.1, 0.4
    per = PeripheryParams(driver_resistance=0.0, input_rise=RISE, amplifier_capacitance=cap, wiring_capacitance=0.0)
    tau = cap / (g1 + g2)
    r = step_response(c, np.array([g1, g2]), [v0], [v1], periphery=per, settle=SettleParams(t_stop=15 * tau))
    vi, vf = v0 * g1 / (g1 + g2), v1 * g1 / (g1 + g2)
    t_s = tau * math.log(abs(vf - vi) / (0.01 * abs(vf - vi)))
    energy = v1 * g1 * ((v1 - vf) * t_s - (vi - vf) * tau * (1 - math.exp(-t_s / tau)))
    assert r.settled
    assert r.settling_time == pytest.approx(t_s, rel=CLOSED_FORM_REL)
    assert r.energy == pytest.approx(energy, rel=CLOSED_FORM_REL)
    assert r.power_after == pytest.approx(v1**2 * g1 * g2 / (g1 + g2) + 0.0, rel=1e-6)
    assert r.voltages[-1, 1] == pytest.approx(vf, abs=DC_ATOL)


def test_energy_per_inference_is_the_heat_plus_the_stored_energy_and_can_be_below_the_static_energy():
    """Power balance over the settle: what the drivers deliver is what the edges dissipate plus the change of the
    energy the capacitor holds. On a step down the capacitor gives charge back, so the drivers deliver less than the
    new point's DC power times the settling time: ``static_energy / energy`` (transient.json's static_fraction)
    is then above 1."""
    c = _chain(3, 1, 0.0)
    g1, g2, cap = 1e-3, 2e-3, 10e-12
    per = PeripheryParams(driver_resistance=0.0, input_rise=RISE, amplifier_capacitance=cap, wiring_capacitance=0.0)
    tau = cap / (g1 + g2)
    for v0, v1, above_one in ((0.1, 0.4, False), (0.4, 0.1, True)):
        r = step_response(c, np.array([g1, g2]), [v0], [v1], periphery=per, settle=SettleParams(t_stop=15 * tau))
        t = np.linspace(r.t_step, r.t_step + r.settling_time, 20001)
        v = np.stack([np.interp(t, r.time, r.voltages[:, i]) for i in range(c.n_nodes)], axis=1)
        heat = np.trapezoid(g1 * (v[:, 0] - v[:, 1]) ** 2 + g2 * (v[:, 1] - v[:, 2]) ** 2, t)
        stored = 0.5 * cap * (v[-1, 1] ** 2 - v[0, 1] ** 2)
        assert r.energy == pytest.approx(heat + stored, rel=1e-3)
        assert (r.static_energy > r.energy) == above_one


def _ladder_reference(c, cond, caps, r_d, v_before, v_after, out, rel_tol, abs_tol):
    """Exact step response of a linear network whose sources sit behind r_d: (settling time, drivers' energy)."""
    n = c.n_nodes
    lap = np.zeros((n, n))
    for (a, b), g in zip(c.edges, cond):
        lap[a, a] += g
        lap[b, b] += g
        lap[a, b] -= g
        lap[b, a] -= g
    src = c.source_nodes
    lap[src, src] += 1 / r_d

    def steady(v_src):
        rhs = np.zeros(n)
        rhs[src] = v_src / r_d
        return np.linalg.solve(lap, rhs)

    s_after = np.concatenate([v_after, c.rail_voltages])
    x0, xf = steady(np.concatenate([v_before, c.rail_voltages])), steady(s_after)
    ch = np.sqrt(caps)
    lam, q = np.linalg.eigh(lap / np.outer(ch, ch))
    coef = (q / ch[:, None]) * (q.T @ (ch * (x0 - xf)))[None, :]   # V(t) - xf = coef @ exp(-lam t)

    def dev(t):
        return float(coef[out] @ np.exp(-lam * t))

    tol = max(rel_tol * abs(xf[out] - x0[out]), abs_tol)
    grid = np.linspace(0, 40 / lam.min(), 200001)
    outside = np.nonzero(np.abs(coef[out] @ np.exp(-np.outer(lam, grid))) > tol)[0]
    k = outside[-1]
    t_s = brentq(lambda t: abs(dev(t)) - tol, grid[k], grid[k + 1], xtol=1e-18)
    integral = xf * t_s + coef @ ((1 - np.exp(-lam * t_s)) / lam)  # integral of V(t) over [0, t_s]
    energy = float(np.sum(s_after * (s_after * t_s - integral[src]) / r_d))
    return t_s, energy


def test_resistor_ladder_behind_driver_resistances_matches_the_exact_solution():
    c = _chain(5, 2, 0.05)
    cond = np.array([1e-3, 2e-3, 5e-4, 1.5e-3])
    per = PeripheryParams(driver_resistance=200.0, input_rise=RISE, amplifier_capacitance=8e-12,
                          wiring_capacitance=3e-12)
    caps = np.full(c.n_nodes, per.wiring_capacitance)
    caps[2] += per.amplifier_capacitance
    settle = SettleParams(t_stop=400e-9)
    r = step_response(c, cond, [0.0], [0.45], periphery=per, settle=settle)
    t_s, energy = _ladder_reference(c, cond, caps, per.driver_resistance, np.array([0.0]), np.array([0.45]), 2,
                                    settle.rel_tol, settle.abs_tol)
    assert r.settled
    assert r.settling_time == pytest.approx(t_s, rel=CLOSED_FORM_REL)
    assert r.energy == pytest.approx(energy, rel=CLOSED_FORM_REL)
    assert np.abs(r.voltages[-1] - r.dc_after).max() < DC_ATOL


@pytest.mark.parametrize("points", [(0, 1), (1, 3), (3, 2)])
def test_nmos_transient_ends_at_the_dc_operating_point(ngspice, points):
    c = xor_circuit()
    gates = random_gates(c.n_edges, seed=sum(points), low=1.0, high=3.0)
    x = xor_task().inputs
    r = step_response(c, gates, x[points[0]], x[points[1]])
    assert r.settled and r.settling_time > 0 and r.energy > 0
    native = NativeSolver().solve(c, gates, x[points[1]]).voltages[0]
    reference = ngspice.solve(c, gates, x[points[1]]).voltages[0]
    assert np.abs(r.voltages[-1] - native).max() < DC_ATOL
    assert np.abs(r.voltages[-1] - reference).max() < DC_ATOL
    assert np.abs(r.voltages[0] - ngspice.solve(c, gates, x[points[0]]).voltages[0]).max() < DC_ATOL
    assert np.abs(r.outputs[-1] - c.output_values(reference)[0]).max() <= r.tolerance.max()
    # the drivers deliver what the devices dissipate at each point's operating point: `transient`'s DC power
    # before and after the step is `energy`'s free-twin total there (to how far the end state is from it)
    before = NativeSolver().solve(c, gates, x[points[0]]).voltages
    for power, v in ((r.supply_power[0], before), (r.power_after, native[None])):
        assert power == pytest.approx(power_report(c, gates, v).total_free[0], rel=1e-5)


def test_a_transient_deck_asks_for_klu_and_sparse_gives_the_same_waveforms(ngspice, monkeypatch):
    """Transient decks asked for no linear solver, so ngspice ran them on Sparse 1.3 where its DC netlists use KLU
    (2.4x slower at 3,200 edges: scripts/bench_transient.py); the same transient on either solver gives the same
    waveforms."""
    from metamaterial import transient

    if not ngspice.has_klu:
        pytest.skip("this ngspice is not compiled with KLU (ngspice >= 42 is)")
    c = xor_circuit()
    gates = random_gates(c.n_edges, seed=3, low=1.0, high=3.0)
    x = xor_task().inputs
    assert "\n.options klu\n" in transient_netlist(c, gates, x[0], x[1])
    klu = step_response(c, gates, x[0], x[1])
    monkeypatch.setattr(transient, "program_linear_solver", lambda wanted: "sparse")
    assert "\n.options sparse\n" in transient_netlist(c, gates, x[0], x[1])
    sparse = step_response(c, gates, x[0], x[1])
    np.testing.assert_allclose(klu.time, sparse.time, rtol=0, atol=1e-18)  # measured 3e-20 s apart
    assert np.abs(klu.voltages - sparse.voltages).max() < 1e-9  # measured 1.3e-12 V
    assert klu.settling_time == pytest.approx(sparse.settling_time, rel=1e-6)


def test_drivers_with_resistance_end_at_their_own_dc_point():
    c = replace(xor_circuit(), mismatch=draw_mismatch(32, 0.01, 0.005, np.random.default_rng(1)))
    gates = random_gates(c.n_edges, seed=4, low=1.0, high=3.0)
    per = PeripheryParams(driver_resistance=10.0)
    r = step_response(c, gates, [0.45, 0.45], [0.0, 0.45], periphery=per)
    assert np.abs(r.voltages[-1] - r.dc_after).max() < DC_ATOL
    assert np.abs(r.dc_after - dc_point(c, gates, [0.0, 0.45], periphery=per)).max() == 0.0
    # a slower network: no capacitances in the devices, more on the wires, settles later
    slow = step_response(c, gates, [0.45, 0.45], [0.0, 0.45], capacitances=CAPACITANCES["none"],
                         periphery=replace(per, wiring_capacitance=50e-12))
    assert slow.settling_time > r.settling_time


def test_a_step_counts_as_settled_only_once_every_node_is_at_its_dc_answer():
    """input -- G -- n1 (C) -- G -- rail 0 V -- G -- out: the output sits at the rail and never leaves its band,
    while n1 relaxes to half the input with tau = C / 2G. The step is settled (in 0 s: the output never moved) only
    in a window that ends with n1 within 1 % of its own step of the DC answer, i.e. longer than tau ln(100): the
    window doubles from 1 ns to the first power of two past it (32 ns), and a fixed window of tau is not settled."""
    roles = Roles(inputs=(0,), rails=((2, 0.0),), outputs=((3, None),))
    c = compile_graph(assign_roles(lattice_network(1, 4, periodic=False), roles), ResistorParams())
    g, cap = 1e-3, 10e-12
    tau = cap / (2 * g)  # 5 ns: n1 is 0.2 exp(-W / tau) V from its answer after a window W; its band is 2 mV
    per = PeripheryParams(input_rise=RISE, amplifier_capacitance=0.0, wiring_capacitance=cap)
    doubling = SettleParams(first_window=1e-9)
    r = step_response(c, np.full(3, g), [0.0], [0.4], periphery=per, settle=doubling)
    assert r.settled and r.ends_at_dc and r.settling_time == 0.0 and r.energy == 0.0
    window = r.time[-1] - r.t_step
    assert window == pytest.approx(doubling.first_window * 2 ** math.ceil(math.log2(tau * math.log(100) / 1e-9)))
    assert r.dc_after[1] == pytest.approx(0.2, abs=DC_ATOL)
    assert abs(r.voltages[-1, 1] - 0.2) == pytest.approx(0.2 * math.exp(-window / tau), rel=CLOSED_FORM_REL)
    short = step_response(c, np.full(3, g), [0.0], [0.4], periphery=per, settle=SettleParams(t_stop=tau))
    assert np.abs(short.outputs - short.outputs[0]).max() < short.tolerance[0]  # the output never left its band
    assert not short.ends_at_dc and not short.settled and math.isnan(short.energy)


def test_a_window_that_does_not_fit_skips_the_doublings_its_decay_says_cannot_fit(monkeypatch):
    """The chain of the test above from a window of 10 ps: doubling ran ngspice 13 times (10 ps to 41 ns, the first
    power of two past tau ln(100)) for the one answer; the window now jumps to where n1's decay over the window's
    second half extrapolates into its band, and ends on the same window with the same waveforms, in 2 runs."""
    from metamaterial import transient

    roles = Roles(inputs=(0,), rails=((2, 0.0),), outputs=((3, None),))
    c = compile_graph(assign_roles(lattice_network(1, 4, periodic=False), roles), ResistorParams())
    g, cap = 1e-3, 10e-12
    per = PeripheryParams(input_rise=RISE, amplifier_capacitance=0.0, wiring_capacitance=cap)
    settle = SettleParams(first_window=1e-11, max_doublings=20, points=400)
    doublings = math.ceil(math.log2(cap / (2 * g) * math.log(100) / settle.first_window))  # 12
    run, windows = transient._run, []

    def counted(text, *args, **kwargs):
        if kwargs.get("t_stop") is not None:  # a transient (the DC points run too)
            windows.append(kwargs["t_stop"] / 1.02)
        return run(text, *args, **kwargs)
    monkeypatch.setattr(transient, "_run", counted)
    r = step_response(c, np.full(3, g), [0.0], [0.4], periphery=per, settle=settle)
    assert r.settled and r.ends_at_dc
    assert windows == pytest.approx([settle.first_window, settle.first_window * 2 ** doublings])
    fixed = step_response(c, np.full(3, g), [0.0], [0.4], periphery=per,
                          settle=replace(settle, t_stop=windows[-1]))
    np.testing.assert_array_equal(r.voltages, fixed.voltages)


def test_the_shortest_sample_step_runs_and_a_shorter_one_is_what_ngspice_cannot_step():
    """A 20 ps window in 4,000 samples ended in ngspice's "Timestep too small" on Sparse 1.3 (a failed simulation
    and its log; KLU ran it, and stops at 1e-15 s per sample); a window is now refused below MIN_SAMPLE_STEP per
    sample (a bound on the safe side: 200 samples of 5e-15 s ran), and one at it runs (the step reported not
    settled)."""
    c = xor_circuit()
    gates = random_gates(c.n_edges, seed=0, low=1.0, high=3.0)
    for points in (200, 4000):
        r = step_response(c, gates, [0.0, 0.0], [0.45, 0.45],
                          settle=SettleParams(t_stop=points * MIN_SAMPLE_STEP, points=points))
        assert not r.settled and r.time[-1] == pytest.approx(1.02 * points * MIN_SAMPLE_STEP)
    shorter = SettleParams()  # 4,000 points
    object.__setattr__(shorter, "t_stop", shorter.points * MIN_SAMPLE_STEP / 10)  # past the check: what ngspice does
    with pytest.raises(SimulationError, match="stopped at t = "):
        step_response(c, gates, [0.0, 0.0], [0.45, 0.45], settle=shorter)


def test_window_too_short_reports_not_settled():
    c = xor_circuit()
    gates = random_gates(c.n_edges, seed=0, low=1.0, high=3.0)
    r = step_response(c, gates, [0.0, 0.0], [0.45, 0.45], settle=SettleParams(t_stop=1e-9, points=200))
    assert not r.settled and math.isnan(r.energy)


@pytest.mark.parametrize("make, message", [
    (lambda: MosCapacitances(cgs=-1.0), r"MosCapacitances.cgs: must be in \[0, 1e-6\) F \(got -1.0\); give farads"),
    (lambda: MosCapacitances(mj=1.5), r"MosCapacitances: need pb > 0 and 0 < mj < 1 \(got pb=0.8, mj=1.5\)"),
    (lambda: PeripheryParams(wiring_capacitance=math.inf),
     r"PeripheryParams.wiring_capacitance: must be finite and >= 0 \(got inf\)"),
    (lambda: PeripheryParams(input_rise=0.0), r"PeripheryParams.input_rise: must be > 0 s \(got 0.0\); a step needs"),
    (lambda: SettleParams(rel_tol=2.0), r"SettleParams: need 0 < rel_tol < 1 and abs_tol >= 0 \(got rel_tol=2.0, "
                                        r"abs_tol=0.0001\)"),
    (lambda: SettleParams(t_stop=-1.0), r"SettleParams.t_stop: must be > 0 s \(got -1.0\)"),
    (lambda: SettleParams(first_window=2e-11), r"SettleParams.first_window, SettleParams.points: a window of 2e-11 s "
                                               r"in 4000 samples steps 5e-15 s, under the 1e-14 s ngspice can step "
                                               r"\('Timestep too small'\); give a window of at least 4e-11 s, or "
                                               r"fewer points"),
    (lambda: SettleParams(points=10), r"SettleParams.points: must be >= 100 \(got 10\)"),
    (lambda: transient_netlist(xor_circuit(), np.ones(3), None, [0.0, 0.0]),
     r"transient: controls must have shape \(32,\) \(got \(3,\)\); pass one control per edge"),
    (lambda: transient_netlist(xor_circuit(), np.ones(32), [0.0], [0.0, 0.0]),
     r"transient: before must hold 2 input voltages \(got shape \(1,\)\); pass one data point"),
])
def test_bad_values_are_refused_with_where_what_and_how(make, message):
    with pytest.raises(ValidationError, match=message):
        make()


def test_user_card_with_mismatch_is_refused(tmp_path):
    from metamaterial.devices import nmos_from_card
    card = tmp_path / "edge.lib"
    card.write_text(".model mine nmos (level=1 vto=0.7 kp=1e-4)\n")
    c = replace(xor_circuit(), device=nmos_from_card(card))
    text = transient_netlist(c, np.ones(32), None, [0.0, 0.0])
    assert ".model mine nmos (level=1 vto=0.7 kp=1e-4)" in text  # used as written
    c = replace(c, mismatch=draw_mismatch(32, 0.01, 0.0, 0))
    with pytest.raises(ValidationError, match=r"transient: mismatch needs a built-in preset \(got a user model "
                                              r"card\); remove device.mismatch"):
        transient_netlist(c, np.ones(32), None, [0.0, 0.0])


def test_simulator_output_that_cannot_be_read_raises(monkeypatch):
    import metamaterial.transient as tr
    c = xor_circuit()
    monkeypatch.setattr(tr, "_run_ngspice", lambda *_: subprocess.CompletedProcess([], 0, "no numbers here\n", ""))
    with pytest.raises(SimulationError, match=r"transient: ngspice's operating point lacks nodes \(got none for "
                                              r"\['n0'"):
        dc_point(c, np.ones(32), [0.0, 0.0])
    with pytest.raises(SimulationError, match=r"transient: ngspice wrote no waveforms \(got no waves.txt\); the "
                                              r"transient failed"):
        tr._run(transient_netlist(c, np.ones(32), [0.0, 0.0], [0.45, 0.0]), "waves.txt")
    with pytest.raises(SimulationError, match=r"transient: the waveform file is not a table of numbers \(got "
                                              r"could not"):
        tr._parse_waves("time v\n1 x\n", c, "")
    with pytest.raises(SimulationError, match=r"transient: the waveform table has the wrong shape \(got \(1, 2\), "
                                              r"expected 25 columns\)"):
        tr._parse_waves("time v\n1 2\n", c, "")


def test_an_aborted_transient_raises_and_the_abstol_floor_prevents_it(monkeypatch):
    """configs/xor.yaml's initial gates, step 00 -> 01: with the DC solvers' abstol (1e-15 A) ngspice's timestep
    collapses at the input edge and it keeps only the samples before it; that is an error, not a short window."""
    import metamaterial.transient as tr
    from metamaterial.configfile import load_config
    from metamaterial.costs import load_source
    from metamaterial.experiment import build

    cfg = load_config(ROOT / "configs" / "xor.yaml")
    setup, gates = build(cfg), load_source(cfg, None).controls
    x = setup.task.inputs
    r = step_response(setup.circuit, gates, x[0], x[1], options=setup.options)
    assert r.settled and np.abs(r.voltages[-1] - r.dc_after).max() < DC_ATOL
    monkeypatch.setattr(tr, "ABSTOL_FLOOR", setup.options.abstol)
    with pytest.raises(SimulationError, match=r"transient: ngspice stopped at t = 2e-08 s of 1.02e-06 s \(got an "
                                              r"aborted transient\)") as err:
        step_response(setup.circuit, gates, x[0], x[1], options=setup.options)
    assert "Timestep too small" in err.value.log  # ngspice's own reason, from its stderr
    Path(err.value.kept).unlink()  # the deck the error names


def test_a_failing_ngspice_is_an_error_with_its_log(monkeypatch):
    import metamaterial.transient as tr
    monkeypatch.setattr(tr, "_run_ngspice", lambda *_: subprocess.CompletedProcess([], 1, "", "Error: boom\n"))
    with pytest.raises(SimulationError, match=r"transient: ngspice -b exited with code 1 \(got no answer\)") as err:
        dc_point(xor_circuit(), np.ones(32), [0.0, 0.0])
    assert "Error: boom" in err.value.log
