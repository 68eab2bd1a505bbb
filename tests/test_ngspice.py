"""The ngspice backend: agreement with standalone `ngspice -b`, Kirchhoff's law, failures, bounded memory."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from conftest import CONFIGS, ROOT, random_gates, xor_circuit
from metamaterial.circuit import kcl_residuals
from metamaterial.configfile import load_config
from metamaterial.devices import draw_mismatch, nmos_from_card
from metamaterial.errors import SimulationError
from metamaterial.experiment import build, initial_controls
from metamaterial.netlist import SpiceOptions, parse_print_all
from metamaterial.sim.ngspice import NgspiceSolver, run_batch_file

try:
    from metamaterial.points import write_netlists
except ImportError:  # a checkout from before the netlist command moved to metamaterial.points
    from metamaterial.experiment import write_netlists

AGREEMENT_V = 1e-6
KCL_A = 1e-9
MEMORY_SOLVES = 6000


@pytest.fixture()
def op_solver(ngspice):
    """The op path (one ``op`` per solve, sources altered in place), for the tests of that path."""
    with NgspiceSolver(sweep=False) as solver:
        yield solver


def _cli_solve(cfg_path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "solve", str(cfg_path), "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("cfg_path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_solve_agrees_with_standalone_ngspice_and_closes_kcl(cfg_path, tmp_path):
    cfg = load_config(cfg_path)
    result = _cli_solve(cfg_path)
    write_netlists(cfg, tmp_path)
    setup = build(cfg)
    c = setup.circuit
    controls = np.array(result["controls"])
    np.testing.assert_array_equal(controls, initial_controls(setup, np.random.default_rng(cfg.seed)))
    worst, worst_kcl = 0.0, 0.0
    points = result["points"][:12]  # iris has 120 points; a dozen exercise the same code
    for k, point in enumerate(points):
        for phase in ("free", "clamped"):
            ref = parse_print_all(run_batch_file(str(tmp_path / f"{phase}_{k}.cir")))
            got = point[phase]
            worst = max(worst, max(abs(ref[name] - got[name]) for name in result["nodes"]))
            v = np.array([[got[name] for name in result["nodes"]]])
            res = kcl_residuals(c, controls, v, fixed=c.clamp_nodes if phase == "clamped" else None)
            if np.isfinite(res).any():  # (a clamped layered network without a hidden layer has no free node)
                worst_kcl = max(worst_kcl, float(np.nanmax(np.abs(res))))
    assert worst <= AGREEMENT_V, f"solve vs ngspice -b differ by {worst} V"
    assert worst_kcl <= KCL_A, f"KCL residual {worst_kcl} A"


def test_batched_solve_equals_one_point_at_a_time(op_solver):
    ngspice = op_solver  # one op per solve: every answer from ngspice's own initial guess, so equal to 1e-9 V
    c = xor_circuit("ald1106-l1")
    gates = random_gates(c.n_edges, seed=3, low=0.4, high=8.0)
    x = np.random.default_rng(4).uniform(0, 0.45, (7, 2))
    batch = ngspice.solve(c, gates, x).voltages
    single = np.concatenate([ngspice.solve(c, gates, row).voltages for row in x])
    np.testing.assert_allclose(batch, single, atol=1e-9, rtol=0)
    # a physical check of the clamped phase: power delivered by the sources equals power dissipated
    clamps = np.full((7, 2), 0.2)
    v = ngspice.solve(c, gates, x, clamps).voltages
    res = kcl_residuals(c, gates, v, fixed=c.clamp_nodes)
    assert np.nanmax(np.abs(res)) < KCL_A


def test_in_place_updates_match_a_fresh_load(op_solver):
    ngspice = op_solver
    c = xor_circuit()
    x = np.array([[0.45, 0.0]])
    for seed in range(5):  # alter gates in place, then compare with a solver that loads afresh
        gates = random_gates(c.n_edges, seed=seed)
        in_place = ngspice.solve(c, gates, x).voltages
        with NgspiceSolver(sweep=False) as fresh:
            fresh_v = fresh.solve(xor_circuit(), gates, x).voltages
        np.testing.assert_allclose(in_place, fresh_v, atol=1e-12, rtol=0)


def test_rejected_model_card_is_a_simulation_error_and_spares_the_engine(ngspice, tmp_path):
    card = tmp_path / "broken.lib"
    # passes our checks (known parameters, numbers); ngspice rejects it: "Nsub < Ni"
    card.write_text(".model badnmos nmos (level=1 vto=0.7 kp=1e-4 gamma=0.5 phi=0.6 tox=1e-7 nsub=1)\n")
    c = replace(xor_circuit(), device=nmos_from_card(card))
    with NgspiceSolver(keep_failed=str(tmp_path)) as solver:
        with pytest.raises(SimulationError, match=r"ngspice rejected the netlist with model card") as info:
            solver.solve(c, random_gates(c.n_edges), [[0.0, 0.45]])
    assert info.value.netlist and "M0" in info.value.netlist and info.value.log
    assert info.value.kept
    with open(info.value.kept) as kept:
        assert kept.read() == info.value.netlist
    good = xor_circuit()  # the shared engine never saw the broken card and still works
    gates = random_gates(good.n_edges)
    v = ngspice.solve(good, gates, [[0.0, 0.45]]).voltages
    assert np.nanmax(np.abs(kcl_residuals(good, gates, v))) < KCL_A


def test_operating_point_without_solution_is_a_simulation_error(ngspice, tmp_path):
    """The one-op-per-solve path (the sweep path's failure: tests/test_ngspice_sweep.py)."""
    c = xor_circuit()
    # node 15 is an input and also a rail at another voltage: two sources fight, no DC solution exists.
    # Roles validation forbids this; the Circuit is built by hand to reach ngspice's own failure path.
    fighting = replace(c, rails=np.array([5, 15]), rail_voltages=np.array([0.11, 0.3]))
    with NgspiceSolver(keep_failed=str(tmp_path), sweep=False) as solver:
        with pytest.raises(SimulationError, match=r"operating point failed") as info:
            solver.solve(fighting, random_gates(c.n_edges), [[0.45, 0.0]])
    assert "op simulation(s) aborted" in info.value.log or "failed" in info.value.log
    assert "VR1 n15" in info.value.netlist and info.value.kept
    # the engine recovers: the next solve of a sound circuit works and closes KCL
    gates = random_gates(c.n_edges)
    v = ngspice.solve(c, gates, [[0.45, 0.0]]).voltages
    assert np.nanmax(np.abs(kcl_residuals(c, gates, v))) < KCL_A


def test_memory_stays_bounded_over_many_solves(ngspice):
    c = xor_circuit()
    x = np.array([[0.45, 0.0]])
    gates = random_gates(c.n_edges)

    def run(n):
        for i in range(n):
            ngspice.solve(c, gates + 1e-6 * (i % 100), x)

    run(MEMORY_SOLVES // 3)  # warm up allocators and caches
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run(MEMORY_SOLVES)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    # an ngspice plot left behind per solve would cost > 2 KiB each (> 12 MiB here)
    assert grown_kib < 4096, f"peak RSS grew by {grown_kib} KiB over {MEMORY_SOLVES} solves"


def test_twin_mismatch_closes_kcl_with_each_twins_own_transistors(ngspice):
    c0 = xor_circuit("ald1106-l1")
    c = replace(c0, mismatch=draw_mismatch(c0.n_edges, 0.01, 0.005, seed=0))
    gates = random_gates(c.n_edges, seed=1)
    x = np.array([[0.45, 0.0], [0.0, 0.45]])
    clamps = np.array([[0.10, 0.20], [0.15, 0.20]])
    free = ngspice.solve(c, gates, x).voltages
    clamped = ngspice.solve(c, gates, x, clamps).voltages
    assert np.nanmax(np.abs(kcl_residuals(c, gates, free, twin=0))) < KCL_A
    assert np.nanmax(np.abs(kcl_residuals(c, gates, clamped, fixed=c.clamp_nodes, twin=1))) < KCL_A
    # the mismatch is physical: the identical-twin law does not balance the mismatched solution
    assert np.nanmax(np.abs(kcl_residuals(c0, gates, free))) > 1e3 * KCL_A
    # and the twins really differ: the clamped twin's law does not balance the free solution
    assert np.nanmax(np.abs(kcl_residuals(c, gates, free, twin=1))) > 1e3 * KCL_A


def test_info_reports_the_version_and_the_linear_solver_ngspice_used(ngspice):
    standalone = subprocess.run(["ngspice", "--version"], capture_output=True, text=True, timeout=60).stdout
    assert f"ngspice-{ngspice.info()['ngspice_version']} " in standalone
    c = xor_circuit()
    gates, x = random_gates(c.n_edges, seed=11), np.array([[0.45, 0.0], [0.1, 0.3]])
    klu = ngspice.solve(c, gates, x).voltages
    assert ngspice.info()["linear_solver"] == ("KLU" if ngspice.has_klu else "SPARSE 1.3")
    with NgspiceSolver(SpiceOptions(linear_solver="sparse")) as sparse_solver:
        sparse = sparse_solver.solve(c, gates, x).voltages
        assert sparse_solver.info()["linear_solver"] == "SPARSE 1.3"
    np.testing.assert_allclose(klu, sparse, atol=1e-9, rtol=0)
    assert np.nanmax(np.abs(kcl_residuals(c, gates, klu))) < KCL_A


def test_failed_alter_is_a_simulation_error_and_the_next_solve_rewrites_every_source(op_solver, monkeypatch):
    ngspice = op_solver  # the sweep feeds gates and inputs by callback; only the op path alters them
    c = xor_circuit()
    x = np.array([[0.45, 0.0]])
    ngspice.solve(c, random_gates(c.n_edges, seed=20), x)
    gates = random_gates(c.n_edges, seed=21)
    with monkeypatch.context() as m:
        m.setattr(NgspiceSolver, "_alter", staticmethod(lambda name, value: f"alter no_such_{name} dc = {value!r}"))
        with pytest.raises(SimulationError, match=r"ngspice: alter failed: .*no_such_ig0"):
            ngspice.solve(c, gates, x)
    v = ngspice.solve(c, gates, x).voltages  # ngspice still holds seed 20's gates: all must be written again
    with NgspiceSolver(sweep=False) as fresh:
        fresh.reset()
        np.testing.assert_allclose(v, fresh.solve(c, gates, x).voltages, atol=1e-12, rtol=0)
    assert np.nanmax(np.abs(kcl_residuals(c, gates, v))) < KCL_A


def test_a_singular_matrix_names_the_series_resistances_only_below_their_floor(tmp_path):
    """The config refuses series resistances below devices.SERIES_MIN_OHMS, which make ngspice's matrix singular; at
    that floor a singular matrix has other causes, and the failure names those instead of telling to shrink rd, rs."""
    from metamaterial import devices

    c = xor_circuit("ald1106-l1")
    floor = replace(c, device=replace(c.device, rd=devices.SERIES_MIN_OHMS, rs=devices.SERIES_MIN_OHMS))
    gates, x = random_gates(c.n_edges), np.zeros((1, 2))
    singular = SimulationError("ngspice: command 'op' failed: singular matrix:  check node n3")
    with NgspiceSolver(keep_failed=str(tmp_path)) as solver:
        with pytest.raises(SimulationError, match=r"singular matrix.*\); a singular matrix comes from a node without "
                                                  r"a DC path to ground, or from conductances too far apart for "
                                                  r"ngspice's pivoting \(not the series resistances, rd=0.001, "
                                                  r"rs=0.001 ohm: from 0.001 ohm up") as err:
            solver._fail_solve(singular, floor, gates, x, None)
        assert "give 0 for none" not in str(err.value)
        plain = replace(c, device=replace(c.device, rd=0.0, rs=0.0))
        with pytest.raises(SimulationError, match=r"for ngspice's pivoting: check the netlist kept below"):
            solver._fail_solve(singular, plain, gates, x, None)


def test_a_python_without_pyspice_is_told_which_python_to_use(monkeypatch):
    """Run by another Python than the environment's (``python3 -m metamaterial`` outside .venv), the import of
    PySpice fails: the message said to install ngspice, which was installed; it names this Python and the
    environment's."""
    from metamaterial.sim import ngspice as module

    monkeypatch.setattr(module, "_instance", None)
    monkeypatch.setitem(sys.modules, "PySpice.Spice.NgSpice.Shared", None)  # importing it raises ImportError
    with pytest.raises(SimulationError) as err:
        module._shared()
    assert str(err.value) == (
        f"ngspice: PySpice is not installed in this Python ({sys.executable}: import of PySpice.Spice.NgSpice.Shared "
        "halted; None in sys.modules); run metamaterial with the Python 'make setup' installed it into "
        "(.venv/bin/metamaterial, or '. .venv/bin/activate' first), or 'pip install .' here, or choose --backend "
        "native")
