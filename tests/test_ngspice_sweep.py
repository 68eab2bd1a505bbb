"""The ngspice backend's sweep path: free and clamped solves as points of one paused dc sweep, sources fed by a
compiled callback. Agreement with the native solver and with one op per solve, Kirchhoff's law, the clamp, sweeps
ended and restarted, and a failing point."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import random_gates, xor_circuit
from metamaterial import netlist as netlist_module
from metamaterial.circuit import kcl_residuals
from metamaterial.devices import draw_mismatch
from metamaterial.errors import SimulationError, ValidationError
from metamaterial.learning.rules import CoupledLearning
from metamaterial.netlist import CLAMP_SIEMENS, to_spice_sweep
from metamaterial.sim import ngspice as ngspice_module
from metamaterial.sim.native import NativeSolver
from metamaterial.sim.ngspice import NgspiceSolver

AGREEMENT_V = 1e-6
KCL_A = 1e-9
UPDATES = 12
BATCH = 3
SHORT_SWEEP = 5  # points per sweep in the restart test: several sweeps end and start within UPDATES updates


def _train(solver, c, updates: int, batch: int = 1, seed: int = 0):
    """Coupled-learning updates (free solve, clamped solve, every gate moves); yields each update's arrays."""
    rng = np.random.default_rng(seed)
    gates = random_gates(c.n_edges, seed=seed)
    rule, targets = CoupledLearning(nudge=0.5, rate=1.0), np.full((batch, 1), 0.05)
    for _ in range(updates):
        x = rng.uniform(0, 0.45, (batch, c.n_inputs))
        free = solver.solve(c, gates, x).voltages
        clamps = rule.clamp(c, free, targets)
        clamped = solver.solve(c, gates, x, clamps).voltages
        yield gates, x, clamps, free, clamped
        gates = np.clip(gates + rule.contrast(c, free, clamped).mean(axis=0) + 1e-6, 0.4, 8.0)


@pytest.mark.parametrize("batch", [1, BATCH])
def test_sweep_agrees_with_native_and_closes_kcl_over_training_updates(ngspice, batch):
    c, native = xor_circuit(), NativeSolver()
    worst, worst_kcl, worst_clamp = 0.0, 0.0, 0.0
    for gates, x, clamps, free, clamped in _train(ngspice, c, UPDATES, batch):
        worst = max(worst, np.abs(free - native.solve(c, gates, x).voltages).max(),
                    np.abs(clamped - native.solve(c, gates, x, clamps).voltages).max())
        worst_kcl = max(worst_kcl, np.nanmax(np.abs(kcl_residuals(c, gates, free))),
                        np.nanmax(np.abs(kcl_residuals(c, gates, clamped, fixed=c.clamp_nodes))))
        worst_clamp = max(worst_clamp, np.abs(clamped[:, c.clamp_nodes] - clamps).max())
    assert worst <= AGREEMENT_V, f"sweep vs native differ by {worst} V"
    assert worst_kcl <= KCL_A, f"KCL residual {worst_kcl} A"
    # the Norton clamp holds its node to (net current) / CLAMP_SIEMENS: far below the agreement
    assert worst_clamp <= 1e-3 / CLAMP_SIEMENS, f"clamped nodes off their targets by {worst_clamp} V"


def test_sweep_agrees_with_one_op_per_solve(ngspice):
    c = xor_circuit("ald1106-l1")
    with NgspiceSolver(sweep=False) as op:
        for gates, x, clamps, free, clamped in _train(ngspice, c, UPDATES, seed=3):
            np.testing.assert_allclose(free, op.solve(c, gates, x).voltages, atol=AGREEMENT_V, rtol=0)
            np.testing.assert_allclose(clamped, op.solve(c, gates, x, clamps).voltages, atol=AGREEMENT_V, rtol=0)


def test_sweeps_end_and_restart_and_circuits_take_turns(ngspice, monkeypatch):
    """A sweep ends after its points and a new one starts; two circuits and the op path (mismatch) interleave,
    each switch ending the paused sweep; every answer still agrees with native and closes KCL."""
    monkeypatch.setattr(ngspice_module, "_SWEEP_POINTS", SHORT_SWEEP)
    a, b = xor_circuit(), xor_circuit("ald1106-l1")
    mismatched = replace(b, mismatch=draw_mismatch(b.n_edges, 0.01, 0.005, seed=0))
    native = NativeSolver()
    runs = [_train(ngspice, a, UPDATES, seed=5), _train(ngspice, b, UPDATES, batch=2, seed=6)]
    for step in range(UPDATES):
        for c, run in zip((a, b), runs):
            gates, x, clamps, free, clamped = next(run)
            assert np.abs(free - native.solve(c, gates, x).voltages).max() <= AGREEMENT_V
            assert np.abs(clamped - native.solve(c, gates, x, clamps).voltages).max() <= AGREEMENT_V
        if step % 4 == 0:  # a transistor network with mismatch goes through one op per solve
            gates = random_gates(b.n_edges, seed=step)
            v = ngspice.solve(mismatched, gates, [[0.45, 0.0]]).voltages
            assert np.nanmax(np.abs(kcl_residuals(mismatched, gates, v, twin=0))) < KCL_A


def test_reset_makes_the_next_solves_depend_only_on_their_arguments(ngspice):
    c = xor_circuit()
    list(_train(ngspice, c, 3, seed=8))  # some history in the paused sweep
    ngspice.reset()
    first = [u[3:] for u in _train(ngspice, c, 4, seed=9)]
    ngspice.reset()
    again = [u[3:] for u in _train(ngspice, c, 4, seed=9)]
    for (f1, c1), (f2, c2) in zip(first, again):
        np.testing.assert_array_equal(f1, f2)
        np.testing.assert_array_equal(c1, c2)


def test_failed_point_is_a_simulation_error_and_the_next_solve_starts_a_new_sweep(ngspice, tmp_path):
    c = xor_circuit()
    # node 15 is an input and also a rail at another voltage: two sources fight, no DC solution exists
    fighting = replace(c, rails=np.array([5, 15]), rail_voltages=np.array([0.11, 0.3]))
    with NgspiceSolver(keep_failed=str(tmp_path)) as solver:
        with pytest.raises(SimulationError, match=r"operating point failed") as info:
            solver.solve(fighting, random_gates(c.n_edges), [[0.45, 0.0]])
    assert "VR1 n15" in info.value.netlist and info.value.kept
    gates, x, clamps, free, clamped = next(_train(ngspice, c, 1, seed=10))
    assert np.nanmax(np.abs(kcl_residuals(c, gates, free))) < KCL_A
    assert np.nanmax(np.abs(kcl_residuals(c, gates, clamped, fixed=c.clamp_nodes))) < KCL_A


def test_sweep_netlist_feeds_sources_from_outside_and_refuses_mismatch():
    c = xor_circuit()
    text = to_spice_sweep(c, 2, 7)
    assert "\nIG3 0 e3.g external\nRG3 e3.g 0 1.0\n" in text and "\nVI1_1 n13_1 0 external\n" in text
    assert "\nIC0_0 0 n10_0 external\nGC0_0 n10_0 0 n10_0 0 0\n" in text
    assert "\n.dc VSWEEP 0 6 1\n.save nosub\n" in text and " dc " not in text.split("VSWEEP")[0][-400:]
    assert to_spice_sweep(c, 2, 7) == text
    mismatched = replace(c, mismatch=draw_mismatch(c.n_edges, 0.01, 0.005, seed=0))
    with pytest.raises(ValidationError, match=r"netlist: the sweep form needs a transistor network without mismatch"):
        to_spice_sweep(mismatched, 1, 7)
    with pytest.raises(ValidationError, match=r"netlist: sweep points and batch must be positive integers"):
        to_spice_sweep(c, 0, 7)


def test_the_sweep_plot_keeps_every_network_node_and_no_gate(ngspice):
    """``.save nosub`` with gate nodes named ``e{e}.g``: the plot holds each node of each copy once, the sweep's own
    node and the voltage sources' currents, and none of the 32 gate nodes (a plot of every vector would hold them)."""
    c = xor_circuit()
    ngspice.solve(c, random_gates(c.n_edges, seed=1), [[0.45, 0.0], [0.0, 0.45]])
    ffi, shared = ngspice._ffi, ngspice._ng._ngspice_shared
    listed = shared.ngSpice_AllVecs(ngspice._current_plot().encode())
    vectors = []
    while listed[len(vectors)] != ffi.NULL:
        vectors.append(ffi.string(listed[len(vectors)]).decode())
    nodes = {name for row in netlist_module.node_vector_names(c, 2) for name in row}
    assert len(nodes) == 2 * c.n_nodes - len(c.rails) == 30
    others = set(vectors) - nodes
    assert nodes <= set(vectors) and len(vectors) == len(set(vectors))
    assert others == {"sweep", "v-sweep", "vsweep#branch", "vr0#branch", "vr1#branch",
                      "vi0_0#branch", "vi0_1#branch", "vi1_0#branch", "vi1_1#branch"}


def test_a_new_process_loads_the_external_source_callback_from_numba_cache(ngspice):
    """The callback holds no address of its process (it reads its header through a symbol bound per process), so
    every process after the first loads it from numba's cache: a sweep's new training process does not compile it.
    The loaded callback feeds the sources: a sweep solve in that process closes Kirchhoff's law."""
    code = ("import numpy as np\n"
            "from conftest import random_gates, xor_circuit\n"
            "from metamaterial.circuit import kcl_residuals\n"
            "from metamaterial.sim import ngspice_feed\n"
            "from metamaterial.sim.ngspice import NgspiceSolver\n"
            "c = xor_circuit()\n"
            "gates = random_gates(c.n_edges, seed=3)\n"
            "v = NgspiceSolver().solve(c, gates, [[0.45, 0.1]]).voltages\n"
            "print(ngspice_feed._compiled['callback'].cache_hits, np.nanmax(np.abs(kcl_residuals(c, gates, v))))\n")
    tests = str(Path(__file__).parent)
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tests, timeout=300)
            for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr[-2000:]
    hits, residual = runs[1].stdout.split()
    assert hits == "1" and float(residual) < KCL_A


@pytest.mark.parametrize("sweep", [True, False])
def test_a_batch_larger_than_one_netlist_holds_is_solved_in_chunks(ngspice, monkeypatch, sweep):
    """A batch of more than NETLIST_EDGES / n_edges samples goes in chunks (the last padded): every sample's
    answer, free and clamped, is native's; the padding loads no netlist of another size."""
    c, native = xor_circuit(), NativeSolver()
    monkeypatch.setattr(netlist_module, "NETLIST_EDGES", 3 * c.n_edges)  # chunks of 3: 7 = 3 + 3 + 1 (+ 2 pad)
    rng = np.random.default_rng(11)
    gates, x = random_gates(c.n_edges, seed=11), rng.uniform(0, 0.45, (7, c.n_inputs))
    clamps = CoupledLearning(nudge=0.5).clamp(c, native.solve(c, gates, x).voltages, np.full((7, 1), 0.05))
    with NgspiceSolver(sweep=sweep) as solver:
        free = solver.solve(c, gates, x).voltages
        loads = ngspice_module._REGISTRY["loads"]
        clamped = solver.solve(c, gates, x, clamps).voltages
        assert ngspice_module._REGISTRY["loads"] - loads == (0 if sweep else 1)  # the sweep serves both phases
        assert {key[2] for key in solver._loaded if key[0] == id(c)} == {3}  # each netlist of c holds one chunk
    assert free.shape == clamped.shape == (7, c.n_nodes)
    assert np.abs(free - native.solve(c, gates, x).voltages).max() <= AGREEMENT_V
    assert np.abs(clamped - native.solve(c, gates, x, clamps).voltages).max() <= AGREEMENT_V


def test_an_op_fallback_gives_the_written_netlists_answer(tmp_path, monkeypatch):
    """A circuit whose sweep fails is solved by op at the sweep's reltol, which the netlists written for it carry
    (``netlist.solve_options``): its answer is the standalone file's under ``ngspice -b`` to 1e-12 V. At the
    config's reltol (1e-3 here, series resistances) it was 2.6e-8 V off."""
    from conftest import ROOT
    from metamaterial.configfile import load_config
    from metamaterial.experiment import build, initial_controls
    from metamaterial.netlist import parse_print_all
    from metamaterial.points import write_netlists

    cfg = load_config(ROOT / "configs" / "xor.yaml", ["simulator.reltol=1e-3", "device.preset=ald1106-l1"])
    setup = build(cfg)
    c, x = setup.circuit, setup.task.inputs[1:2]
    gates = initial_controls(setup, np.random.default_rng(cfg.seed))
    write_netlists(cfg, tmp_path, backend="native", points="1")  # the free deck's text does not depend on the backend

    def failed(self, *args):
        raise ngspice_module._SweepFailed

    monkeypatch.setattr(NgspiceSolver, "_solve_swept", failed)
    with NgspiceSolver(setup.options) as solver:
        got = solver.solve(c, gates, x).voltages[0]
        assert solver.sweep_fallbacks == 1
    printed = parse_print_all(ngspice_module.run_batch_file(str(tmp_path / "free_1.cir")))
    deck = np.array([printed[f"n{i}"] for i in range(c.n_nodes)])
    assert np.abs(got - deck).max() < 1e-12
