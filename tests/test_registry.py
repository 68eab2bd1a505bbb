"""The solver registry: the one list of backends, lazy imports, and solvers that honour the simulator options."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from metamaterial import circuit, devices, graph
from metamaterial.config import load_config, with_backend
from metamaterial.errors import ConfigError, SimulationError
from metamaterial.sim import registry
from metamaterial.sim.native import NativeSolver
from metamaterial.sim.registry import SolverOptions, backend_names, make_solver

SEED = 0
ROWS, COLS = 4, 4
BATCH = 4
V_MAX = 0.45        # V, top of the input range
GATES = (0.4, 8.0)  # V
AGREEMENT_V = 1e-6


def _torus(rng) -> circuit.Circuit:
    g = graph.lattice_network(ROWS, COLS, periodic=True)
    roles = graph.Roles(inputs=(15, 13), rails=((5, 0.11), (7, 0.33)), outputs=((10, 0),))
    return circuit.compile_graph(graph.assign_roles(g, roles), devices.nmos_preset("ald1106-fit"))


def test_backend_names_are_the_registry_keys_reference_first():
    assert backend_names() == tuple(registry.SOLVERS) == ("ngspice", "native")


def test_unknown_backend_names_the_config_key_and_the_choices():
    with pytest.raises(ConfigError, match=r"^simulator\.backend: unknown backend \(got 'spectre'\); choose one of "
                                          r"ngspice, native$"):
        make_solver("spectre", SolverOptions())


def test_an_unknown_backend_is_refused_alike_by_the_config_the_backend_switch_and_the_registry():
    expected = "simulator.backend: unknown backend (got 'spectre'); choose one of ngspice, native"
    with pytest.raises(ConfigError) as by_config:
        load_config(ROOT / "configs" / "xor.yaml", ["simulator.backend=spectre"])
    with pytest.raises(ConfigError) as by_switch:
        with_backend(load_config(ROOT / "configs" / "xor.yaml"), "spectre")
    assert str(by_config.value).endswith(expected) and str(by_switch.value) == expected


def test_importing_the_registry_loads_no_backend():
    code = ("import sys, metamaterial.sim.registry; "
            "print(sorted(m for m in ('PySpice', 'numba', 'metamaterial.sim.native', 'metamaterial.sim.ngspice') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_each_backend_is_made_with_the_options():
    options = SolverOptions(reltol=1e-5, abstol=1e-14, vntol=1e-8, itl1=77)
    with make_solver("ngspice", options) as spice:
        assert spice.name == "ngspice"
        assert (spice.options.reltol, spice.options.abstol, spice.options.vntol, spice.options.itl1) == \
            (1e-5, 1e-14, 1e-8, 77)
    native = make_solver("native", options)
    assert native.name == "native" and native.max_iter == 77 and native.options == options


def test_both_backends_of_the_registry_agree():
    rng = np.random.default_rng(SEED)
    c = _torus(rng)
    gates, x = rng.uniform(*GATES, c.n_edges), rng.uniform(0, V_MAX, (BATCH, c.n_inputs))
    with make_solver("ngspice", SolverOptions()) as spice:
        ref = spice.solve(c, gates, x).voltages
    ours = make_solver("native", SolverOptions()).solve(c, gates, x)
    assert ours.converged.all()
    np.testing.assert_allclose(ours.voltages, ref, rtol=0, atol=AGREEMENT_V)


def test_native_itl1_caps_the_newton_steps():
    rng = np.random.default_rng(SEED)
    c = _torus(rng)
    gates, x = rng.uniform(*GATES, c.n_edges), rng.uniform(0, V_MAX, (1, c.n_inputs))
    steps = int(make_solver("native", SolverOptions()).solve(c, gates, x).iterations[0])
    assert steps > 2
    with pytest.raises(SimulationError, match=r"did not converge for sample\(s\) 0 of 1 after 2 iterations"):
        make_solver("native", SolverOptions(itl1=2)).solve(c, gates, x)


def test_native_steps_follow_reltol_and_vntol_once_the_floors_are_lifted():
    """With its floors lifted (``tol_v``, ``tol_i`` of 1), the native test is ngspice's alone: each answer lies
    within reltol |v| + vntol of the tight answer (the floors') at every node, and looser tolerances take fewer
    Newton steps. At the floors the default options never decide (see ``NativeSolver``)."""
    rng = np.random.default_rng(SEED)
    c = _torus(rng)
    gates, x = rng.uniform(*GATES, c.n_edges), rng.uniform(0, V_MAX, (BATCH, c.n_inputs))
    tight = make_solver("native", SolverOptions()).solve(c, gates, x)
    steps = [tight.iterations]
    for reltol, vntol in ((1e-6, 1e-9), (1e-3, 1e-6), (1e-1, 1e-3)):
        op = NativeSolver(tol_v=1.0, tol_i=1.0, warm_start=False,
                          options=SolverOptions(reltol=reltol, vntol=vntol)).solve(c, gates, x)
        assert op.converged.all()
        assert (np.abs(op.voltages - tight.voltages) <= reltol * np.abs(tight.voltages) + vntol).all()
        steps.append(op.iterations)
    assert all((a >= b).all() for a, b in zip(steps, steps[1:])) and (steps[0] > steps[-1]).any()
