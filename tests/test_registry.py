"""The solver registry: the one list of backends, lazy imports, and solvers that honour the simulator options."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, cli_refused
from metamaterial import circuit, devices, experiment, graph
from metamaterial.config import with_backend
from metamaterial.configfile import load_config
from metamaterial.errors import ConfigError, SimulationError, ValidationError
from metamaterial.experiment import build, planned_edges
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


def test_a_network_larger_than_the_free_memory_is_refused_before_it_is_solved(monkeypatch, tmp_path):
    """``build`` compares the backend's memory line (``registry.MEMORY``) with the free memory and refuses, in one
    line naming the key, the size and a backend that would fit; it says nothing where the memory is not known."""
    edges = 2 * 100 * 100
    assert registry.memory_need("ngspice", edges) > registry.memory_need("native", edges) > 1e8
    assert registry.memory_refusal("ngspice", edges, available=64e9) is None
    why = registry.memory_refusal("ngspice", edges, available=0.35e9)
    assert why == ("20,000 edges need at least 0.4 GB on the ngspice backend (11 kB per edge), more than the "
                   "0.3 GB this machine has free")
    cfg = load_config(ROOT / "configs" / "xor.yaml")
    big = cfg.model_copy(update={"network": cfg.network.model_copy(update={"rows": 100, "cols": 100})})
    monkeypatch.setattr(registry, "available_memory", lambda: 0.35e9)
    with pytest.raises(ConfigError) as err:
        build(with_backend(big, "ngspice"))
    assert str(err.value) == ("network.rows, network.cols: 20,000 edges need at least 0.4 GB on the ngspice backend "
                              "(11 kB per edge), more than the 0.3 GB this machine has free (got a 100x100 lattice); "
                              "lower network.rows or network.cols, or set simulator.backend: native (at least 0.2 GB)")
    assert build(with_backend(big, "native")).circuit.n_edges == edges
    monkeypatch.setattr(registry, "available_memory", lambda: None)
    assert build(with_backend(big, "ngspice")).circuit.n_edges == edges


def test_free_memory_is_the_smaller_of_the_machines_and_its_control_groups(monkeypatch, tmp_path):
    meminfo, limit, usage = tmp_path / "meminfo", tmp_path / "limit", tmp_path / "usage"
    meminfo.write_text("MemTotal:       24000000 kB\nMemFree:         1000000 kB\nMemAvailable:    5000000 kB\n")
    limit.write_text("3000000000\n")
    usage.write_text("1000000000\n")
    monkeypatch.setattr(registry, "_MEMINFO", str(meminfo))
    monkeypatch.setattr(registry, "_CGROUP_FILES", ((str(limit), str(usage)),))
    assert registry.available_memory() == 2e9  # the group's 3 GB less its 1 GB used, under the machine's 5.12 GB
    limit.write_text("max\n")  # cgroup v2: no limit
    assert registry.available_memory() == 5000000 * 1024.0
    limit.write_text("9223372036854771712\n")  # cgroup v1: no limit
    assert registry.available_memory() == 5000000 * 1024.0
    monkeypatch.setattr(registry, "_MEMINFO", str(tmp_path / "absent"))
    assert registry.available_memory() is None


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_the_edges_planned_before_building_are_the_edges_built(config):
    cfg = load_config(config)
    if cfg.task.name == "digits":
        pytest.importorskip("sklearn")
    assert planned_edges(cfg) in (None, build(with_backend(cfg, "native")).circuit.n_edges)


@pytest.mark.parametrize("network", [
    {"kind": "lattice", "rows": 5, "cols": 3, "periodic": True}, {"kind": "lattice", "rows": 1, "cols": 7},
    {"kind": "lattice", "rows": 6, "cols": 4, "periodic": False}, {"kind": "random", "n_nodes": 30, "n_edges": 70},
    {"kind": "layered", "n_inputs": 7, "n_outputs": 6, "n_hidden": 5, "density": 0.6, "direct": True},
    {"kind": "layered", "n_inputs": 7, "n_outputs": 4, "density": 0.9, "differential": True},
    {"kind": "layered", "n_inputs": 7, "n_outputs": 6, "n_hidden": 3, "n_edges": 30}])
def test_planned_edges_of_each_network_kind(network):
    cfg = load_config(ROOT / "configs" / "xor.yaml")
    n = type(cfg.network)(**network)
    cfg = cfg.model_copy(update={"network": n})
    if n.kind == "lattice":
        built = graph.lattice_network(n.rows, n.cols, n.periodic)
    elif n.kind == "random":
        built = graph.random_network(n.n_nodes, n.n_edges, seed=0)
    else:
        built = experiment.build_network(cfg.model_copy(update={"roles": None}))
    assert planned_edges(cfg) == built.number_of_edges()


#: the refusal of a layered network of 10^10 edges on the native backend, the free memory written X
TEN_BILLION_EDGES = ("network.n_inputs, network.n_hidden, network.n_outputs, network.density: 10,000,000,000 "
                     "edges need at least 17500.1 GB on the native backend (1.75 kB per edge), more than the X GB this "
                     "machine has free (got layers of 100000, 0 and 100000 nodes, density 1); give network.n_edges, "
                     "or lower network.density or the layers' sizes")


def _free_as_x(message: str) -> str:
    """``message`` with this machine's free memory (it changes from one moment to the next) written X."""
    return re.sub(r"more than the \d+\.\d GB this machine has free", "more than the X GB this machine has free",
                  message)


def test_a_layered_network_of_ten_billion_pairs_is_refused_before_any_pair_is_listed():
    cfg = load_config(ROOT / "configs" / "xor.yaml")
    layered = type(cfg.network)(kind="layered", n_inputs=100_000, n_outputs=100_000)
    with pytest.raises(ConfigError) as err:
        build(with_backend(cfg.model_copy(update={"network": layered, "roles": None}), "native"))
    assert _free_as_x(str(err.value)) == TEN_BILLION_EDGES
    with pytest.raises(ValidationError, match=r"the drawn wiring leaves 199990 node\(s\) unconnected"):
        graph.layered_network(100_000, 100_000, n_edges=5, seed=1)  # 10^10 pairs numbered, not listed: 5 drawn


def test_a_network_too_large_for_the_free_memory_names_the_set_that_sized_it(tmp_path):
    """The refusal named the whole network section and said "use a smaller network": it names the keys that size
    the network (so the --set that gave one), and what to lower."""
    config = tmp_path / "big.yaml"
    config.write_text("name: big\nnetwork: {kind: layered, n_inputs: 100000, n_outputs: 2}\ntask: {name: xor}\n")
    stderr = cli_refused("train", str(config), "--out", str(tmp_path / "run"), "--backend", "native", "--set",
                         "network.n_outputs=100000")
    assert _free_as_x(stderr) == f"metamaterial: {config}: --set network.n_outputs=100000: {TEN_BILLION_EDGES}\n"
