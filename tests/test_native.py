"""The native solver: agreement with ngspice, Kirchhoff's law, the Jacobian, ensembles, refusals, failures."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest

from metamaterial import circuit, devices, graph, mos
from metamaterial.errors import ConfigError, SimulationError, ValidationError
from metamaterial.sim import native_kernels as nk
from metamaterial.sim.native import NativeSolver, _device_constants
from metamaterial.temperature import THERMAL_VOLTAGE

SEED = 0
RANDOM_SIZES = (4, 16, 60, 400)    # nodes; 400 takes the sparse path
EDGES_PER_NODE = 2
LATTICES = ((4, 4, True), (5, 7, False))
BATCH = 3
ENSEMBLE = 4
PRESETS = ("ald1106-fit", "ald1106-l1")
V_MAX = 0.45                       # V, top of the input range
GATES = (0.4, 8.0)                 # V
AGREEMENT_V = 1e-6
KCL_A = 1e-12
MISMATCH_SIZES = (16, 60, 400)     # nodes; 400 takes the sparse path
VTO_SIGMA, K_SIGMA = 0.01, 0.005   # V, relative: twin mismatch


@pytest.fixture(scope="module")
def spice():
    from metamaterial.sim.ngspice import NgspiceSolver
    return NgspiceSolver()


def _with_roles(g, rng, n_in=2, n_rail=2, differential=True):
    """Random distinct input, rail and output nodes (at most n - 1 of them, so something is left to solve)."""
    nodes = [int(x) for x in rng.permutation(g.number_of_nodes())]
    n_in, n_rail = min(n_in, len(nodes) - 2), min(n_rail, max(0, len(nodes) - 4))
    differential = differential and len(nodes) - n_in - n_rail >= 3
    inputs, rest = tuple(nodes[:n_in]), nodes[n_in:]
    rails = tuple((n, float(rng.uniform(0, V_MAX))) for n in rest[:n_rail])
    rest = rest[n_rail:]
    outputs = ((rest[0], rest[1] if differential else None),)
    return graph.assign_roles(g, graph.Roles(inputs=inputs, rails=rails, outputs=outputs))


def _drive(c, rng, clamped, batch=BATCH):
    x = rng.uniform(0, V_MAX, (batch, c.n_inputs))
    clamps = rng.uniform(0, V_MAX, (batch, len(c.clamp_nodes))) if clamped else None
    return x, clamps


def _check_against_ngspice(c, controls, x, clamps, spice):
    ours = NativeSolver().solve(c, controls, x, clamps)
    ref = spice.solve(c, controls, x, clamps)
    assert ours.converged.all()
    np.testing.assert_allclose(ours.voltages, ref.voltages, rtol=0, atol=AGREEMENT_V)
    return ours


@pytest.mark.parametrize("clamped", [False, True], ids=["free", "clamped"])
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("n", RANDOM_SIZES)
def test_random_networks_match_ngspice(n, preset, clamped, spice):
    rng = np.random.default_rng([SEED, n, PRESETS.index(preset), clamped])
    n_edges = min(EDGES_PER_NODE * n, n * (n - 1) // 2)
    g = _with_roles(graph.random_network(n, n_edges, seed=rng), rng)
    c = circuit.compile_graph(g, devices.nmos_preset(preset))
    _check_against_ngspice(c, rng.uniform(*GATES, c.n_edges), *_drive(c, rng, clamped), spice)


@pytest.mark.parametrize("clamped", [False, True], ids=["free", "clamped"])
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("rows, cols, periodic", LATTICES)
def test_lattices_match_ngspice(rows, cols, periodic, preset, clamped, spice):
    rng = np.random.default_rng([SEED, rows, cols, PRESETS.index(preset), clamped])
    g = _with_roles(graph.lattice_network(rows, cols, periodic), rng)
    c = circuit.compile_graph(g, devices.nmos_preset(preset))
    _check_against_ngspice(c, rng.uniform(*GATES, c.n_edges), *_drive(c, rng, clamped), spice)


@pytest.mark.parametrize("clamped", [False, True], ids=["free", "clamped"])
@pytest.mark.parametrize("device", [devices.ResistorParams(), devices.PotentiometerParams()], ids=lambda d: d.kind)
def test_linear_edges_match_ngspice(device, clamped, spice):
    rng = np.random.default_rng([SEED, clamped, device.kind == "resistor"])
    c = circuit.compile_graph(_with_roles(graph.random_network(60, 120, seed=rng), rng), device)
    if isinstance(device, devices.ResistorParams):
        controls = np.exp(rng.uniform(np.log(device.g_min), np.log(device.g_max), c.n_edges))
    else:
        controls = rng.integers(0, device.n_taps, c.n_edges).astype(float)
    _check_against_ngspice(c, controls, *_drive(c, rng, clamped), spice)


def test_network_with_every_transistor_cut_off_matches_ngspice(spice):
    """Gates below threshold: every node is held only by its bulk junctions and gmin, and still converges."""
    rng = np.random.default_rng(SEED)
    c = circuit.compile_graph(_with_roles(graph.lattice_network(4, 4), rng), devices.nmos_preset("ald1106-fit"))
    ours = _check_against_ngspice(c, np.full(c.n_edges, 0.4), *_drive(c, rng, False), spice)
    unknown = np.setdiff1d(np.arange(c.n_nodes), c.source_nodes)
    np.testing.assert_allclose(ours.voltages[:, unknown], 0.0, atol=1e-12)


def test_level1_model_card_uses_ngspice_defaults_for_missing_parameters(tmp_path, spice):
    """lambda and is are not in the card: ngspice takes 0 and 1e-14, not a preset's values."""
    card = tmp_path / "edge.lib"
    card.write_text("* level-1 card\n.model myfet nmos (level=1 vto=0.7 kp=5e-5\n+ gamma=0.5 phi=0.7)\n")
    rng = np.random.default_rng(SEED)
    c = circuit.compile_graph(_with_roles(graph.lattice_network(4, 4), rng), devices.nmos_from_card(card, w=100e-6))
    assert (c.device.lambda_, c.device.is_) == (0.0, 1e-14)
    _check_against_ngspice(c, rng.uniform(*GATES, c.n_edges), *_drive(c, rng, True), spice)


@pytest.mark.parametrize("clamped", [False, True], ids=["free", "clamped"])
def test_card_with_ld_in_mils_closes_kcl_and_matches_ngspice(tmp_path, clamped, spice):
    """ld = 0.001 mil is 25.4 nm (not 1 um: "mil" is read before "m"); the native solution closes KCL under the
    law of ``devices`` and is the one ngspice finds, so all three read the card alike. Scaling every K alike
    leaves node voltages unchanged but for the bulk junctions, so a large is (1 nA) makes ld visible."""
    c = _card_circuit(tmp_path, ".model milfet nmos (level=1 vto=0.7 kp=5e-5 gamma=0.4 phi=0.7 is=1n ld=0.001mil)")
    assert c.device.ld == pytest.approx(25.4e-9, rel=1e-15)
    rng = np.random.default_rng([SEED, clamped, 2])
    gates, (x, clamps) = rng.uniform(*GATES, c.n_edges), _drive(c, rng, clamped)
    ours = _check_against_ngspice(c, gates, x, clamps, spice)
    fixed = c.clamp_nodes if clamped else None
    assert np.nanmax(np.abs(circuit.kcl_residuals(c, gates, ours.voltages, fixed=fixed))) < KCL_A
    # the old reading (1 um) gives a law this solution does not balance: the test sees the difference
    misread = replace(c, device=replace(c.device, ld=1e-6, model_card=None))
    assert np.nanmax(np.abs(circuit.kcl_residuals(misread, gates, ours.voltages, fixed=fixed))) > 100 * KCL_A


@pytest.mark.parametrize("clamped", [False, True], ids=["free", "clamped"])
@pytest.mark.parametrize("preset", PRESETS)
def test_kirchhoff_current_law_closes(preset, clamped):
    rng = np.random.default_rng([SEED, PRESETS.index(preset), clamped])
    for g in (graph.random_network(60, 150, seed=rng), graph.lattice_network(4, 4), graph.random_network(400, 800,
                                                                                                         seed=rng)):
        c = circuit.compile_graph(_with_roles(g, rng), devices.nmos_preset(preset))
        for low, high in (GATES, (0.4, 1.2)):  # (0.4, 1.2): many transistors near or below threshold
            gates = rng.uniform(low, high, c.n_edges)
            x, clamps = _drive(c, rng, clamped)
            op = NativeSolver().solve(c, gates, x, clamps)
            res = circuit.kcl_residuals(c, gates, op.voltages, fixed=c.clamp_nodes if clamped else None)
            assert np.nanmax(np.abs(res)) < KCL_A


def _mismatched(c, seed):
    return replace(c, mismatch=devices.draw_mismatch(c.n_edges, VTO_SIGMA, K_SIGMA, seed))


@pytest.mark.parametrize("clamped", [False, True], ids=["free", "clamped"])
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("n", MISMATCH_SIZES)
def test_mismatched_twins_match_ngspice(n, preset, clamped, spice):
    """Each phase solves its own twin's transistors (free: row 0 of the mismatch, clamped: row 1)."""
    rng = np.random.default_rng([SEED, n, PRESETS.index(preset), clamped, 1])
    g = _with_roles(graph.random_network(n, EDGES_PER_NODE * n, seed=rng), rng)
    c = _mismatched(circuit.compile_graph(g, devices.nmos_preset(preset)), rng)
    _check_against_ngspice(c, rng.uniform(*GATES, c.n_edges), *_drive(c, rng, clamped), spice)


@pytest.mark.parametrize("clamped", [False, True], ids=["free", "clamped"])
@pytest.mark.parametrize("preset", PRESETS)
def test_mismatched_twins_close_kcl_with_their_own_transistors(preset, clamped):
    rng = np.random.default_rng([SEED, PRESETS.index(preset), clamped, 1])
    twin = int(clamped)
    for g in (graph.lattice_network(4, 4), graph.random_network(60, 150, seed=rng),
              graph.random_network(400, 800, seed=rng)):
        c = _mismatched(circuit.compile_graph(_with_roles(g, rng), devices.nmos_preset(preset)), rng)
        gates = rng.uniform(*GATES, c.n_edges)
        x, clamps = _drive(c, rng, clamped)
        fixed = c.clamp_nodes if clamped else None
        v = NativeSolver().solve(c, gates, x, clamps).voltages
        assert np.nanmax(np.abs(circuit.kcl_residuals(c, gates, v, fixed=fixed, twin=twin))) < KCL_A
        # the other twin's transistors do not balance this solution: the mismatch was really used
        assert np.nanmax(np.abs(circuit.kcl_residuals(c, gates, v, fixed=fixed, twin=1 - twin))) > 1e3 * KCL_A


def _card_circuit(tmp_path, card_text: str):
    """The 4x4 torus with random roles whose transistors come from a user model card."""
    card = tmp_path / "edge.lib"
    card.write_text(card_text + "\n")
    return circuit.compile_graph(_with_roles(graph.lattice_network(4, 4), np.random.default_rng(SEED)),
                                 devices.nmos_from_card(card))


@pytest.mark.parametrize("clamped", [False, True], ids=["free", "clamped"])
def test_mismatch_with_a_level1_model_card_matches_ngspice(tmp_path, clamped, spice):
    """A user's level-1 card takes twin mismatch on both backends: V_T shifted in a card per transistor (every other
    parameter as the user wrote it), K scaled through the width."""
    rng = np.random.default_rng([SEED, clamped, 7])
    c = _mismatched(_card_circuit(tmp_path, ".model myfet nmos (level=1 vto=0.7 kp=5e-5 lambda=0.05 gamma=0.4 "
                                            "phi=0.7 ld=0.2u)"), rng)
    gates, (x, clamps) = rng.uniform(*GATES, c.n_edges), _drive(c, rng, clamped)
    ours = _check_against_ngspice(c, gates, x, clamps, spice)
    identical = NativeSolver().solve(replace(c, mismatch=None), gates, x, clamps)
    assert np.max(np.abs(ours.voltages - identical.voltages)) > 100 * AGREEMENT_V  # the mismatch was really used


def _nmos_point(orientation, region):
    """(va, vb, vg) in V for a transistor in the given orientation and region, body effect active."""
    va, vb = (0.40, 0.05) if region == "saturation" else (0.20, 0.15)
    vg = 0.9 if region == "saturation" else 3.0
    return (va, vb, vg) if orientation == "a_to_b" else (vb, va, vg)


@pytest.mark.parametrize("orientation", ["a_to_b", "b_to_a"])
@pytest.mark.parametrize("region", ["linear", "saturation"])
@pytest.mark.parametrize("preset", PRESETS)
def test_nmos_jacobian_matches_finite_differences(preset, region, orientation):
    p = devices.nmos_preset(preset)
    va, vb, vg = _nmos_point(orientation, region)
    h = 1e-6
    law = mos.nmos_current(p, va, vb, vg)
    vgst = vg - min(va, vb) - (p.vto + p.gamma * (np.sqrt(p.phi + min(va, vb)) - np.sqrt(p.phi)))
    assert (vgst <= abs(va - vb)) == (region == "saturation")
    assert np.sign(law.current) == (1 if orientation == "a_to_b" else -1)
    d_va = (mos.nmos_current(p, va + h, vb, vg).current - mos.nmos_current(p, va - h, vb, vg).current) / (2 * h)
    d_vb = (mos.nmos_current(p, va, vb + h, vg).current - mos.nmos_current(p, va, vb - h, vg).current) / (2 * h)
    np.testing.assert_allclose([law.d_va, law.d_vb], [d_va, d_vb], rtol=1e-6)
    # the compiled law is the same function with the same derivatives, also per transistor under mismatch
    c = circuit.compile_graph(_with_roles(graph.lattice_network(4, 4), np.random.default_rng(SEED)), p)
    _, prm, vbi, beta = _device_constants(c, twin=0)
    np.testing.assert_allclose(nk.mos_current(va, vb, vg, vbi[0], beta[0], prm, prm[nk.P_BODY]),
                               [law.current, law.d_va, law.d_vb], rtol=1e-12)
    c = replace(c, mismatch=devices.draw_mismatch(c.n_edges, VTO_SIGMA, K_SIGMA, SEED))
    for twin in (0, 1):
        _, prm, vbi, beta = _device_constants(c, twin)
        vto_e, beta_e = c.transistor_params(twin)
        for e in range(c.n_edges):
            law = mos.nmos_current(p, va, vb, vg, vto_e[e], beta_e[e])
            np.testing.assert_allclose(nk.mos_current(va, vb, vg, vbi[e], beta[e], prm, prm[nk.P_BODY]),
                                       [law.current, law.d_va, law.d_vb], rtol=1e-12)


@pytest.mark.parametrize("mismatch", [False, True], ids=["twins", "mismatch"])
@pytest.mark.parametrize("preset", PRESETS)
def test_assembled_jacobian_matches_finite_differences(preset, mismatch):
    rng = np.random.default_rng(SEED)
    c = circuit.compile_graph(_with_roles(graph.lattice_network(4, 4), rng), devices.nmos_preset(preset))
    if mismatch:
        c = _mismatched(c, SEED)
    solver = NativeSolver()
    solver.solve(c, np.ones(c.n_edges), np.zeros((1, c.n_inputs)))
    prep = solver.prepared(c, False)
    gates = rng.uniform(0.8, 3.0, c.n_edges)
    v = rng.uniform(0, V_MAX, c.n_nodes)
    n = len(prep.unk)

    def residual(volts):
        f, jac = np.empty(n), np.empty(n * n)
        nk.assemble(volts, gates, prep.kind, prep.prm, prep.vbi, prep.beta, prep.ea, prep.eb, prep.pos, prep.slots,
                    prep.unk, prep.n_junctions, prep.diag, f, jac)
        return f, jac.reshape(n, n)

    _, jac = residual(v)
    h = 1e-7
    numeric = np.empty((n, n))
    for k, node in enumerate(prep.unk):
        up, down = v.copy(), v.copy()
        up[node] += h
        down[node] -= h
        numeric[:, k] = (residual(up)[0] - residual(down)[0]) / (2 * h)
    np.testing.assert_allclose(jac, numeric, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("clamped", [False, True], ids=["free", "clamped"])
def test_ensemble_rows_equal_solving_each_row_alone(clamped):
    rng = np.random.default_rng(SEED)
    c = circuit.compile_graph(_with_roles(graph.lattice_network(4, 4), rng), devices.nmos_preset("ald1106-l1"))
    controls = rng.uniform(*GATES, (ENSEMBLE, c.n_edges))
    x, clamps = _drive(c, rng, clamped, batch=ENSEMBLE)
    together = NativeSolver().solve(c, controls, x, clamps).voltages
    for b in range(ENSEMBLE):
        alone = NativeSolver().solve(c, controls[b], x[b:b + 1], None if clamps is None else clamps[b:b + 1])
        np.testing.assert_allclose(together[b], alone.voltages[0], rtol=0, atol=1e-13)


def test_warm_start_takes_fewer_iterations_and_gives_the_same_answer():
    rng = np.random.default_rng(SEED)
    c = circuit.compile_graph(_with_roles(graph.lattice_network(4, 4), rng), devices.nmos_preset("ald1106-fit"))
    gates = rng.uniform(*GATES, c.n_edges)
    x, _ = _drive(c, rng, False)
    warm = NativeSolver()
    first = warm.solve(c, gates, x)
    again = warm.solve(c, gates + 1e-3, x)
    cold = NativeSolver(warm_start=False).solve(c, gates + 1e-3, x)
    assert (again.iterations < first.iterations).all()
    np.testing.assert_allclose(again.voltages, cold.voltages, rtol=0, atol=1e-13)


def test_tagged_samples_start_from_their_own_last_solution_and_are_not_solved_twice():
    rng = np.random.default_rng(SEED)
    c = circuit.compile_graph(_with_roles(graph.lattice_network(4, 4), rng), devices.nmos_preset("ald1106-fit"))
    gates = rng.uniform(*GATES, c.n_edges)
    x = rng.uniform(0, V_MAX, (BATCH, c.n_inputs))
    tags = np.arange(BATCH)
    solver = NativeSolver()
    first = solver.solve(c, gates, x, tags=tags)
    # the same points in another order and batch: each tag is recognised, nothing is solved again
    again = solver.solve(c, gates, x[::-1], tags=tags[::-1])
    assert (again.iterations == 0).all()
    np.testing.assert_array_equal(again.voltages, first.voltages[::-1])
    # one gate one ulp away is a new problem: solved, from the tag's last solution, to the cold answer
    nudged = gates.copy()
    nudged[3] = np.nextafter(nudged[3], np.inf)
    moved = solver.solve(c, nudged, x, tags=tags)
    cold = NativeSolver(warm_start=False).solve(c, nudged, x)
    assert (moved.iterations >= 1).all() and (moved.iterations < cold.iterations).all()
    np.testing.assert_allclose(moved.voltages, cold.voltages, rtol=0, atol=1e-13)
    assert np.isclose(moved.residual, 0, atol=KCL_A).all() and (moved.residual < solver.tol_i).all()
    # after reset nothing is remembered
    solver.reset()
    assert (solver.solve(c, gates, x, tags=tags).iterations > 0).all()


@pytest.mark.parametrize("side", [4, 20], ids=["dense", "sparse"])
def test_a_solve_that_does_not_remember_starts_warm_and_leaves_the_solver_as_it_was(side):
    """remember=False (how evaluation solves): from the tags' last solutions, to the cold answer, and every later
    solve is the one it would have been without it: the tags' memory and the sparse path's reused factorization
    are left as they were."""
    rng = np.random.default_rng([SEED, side])
    c = circuit.compile_graph(_with_roles(graph.lattice_network(side, side), rng), devices.nmos_preset("ald1106-fit"))
    gates = rng.uniform(*GATES, c.n_edges)
    x = rng.uniform(0, V_MAX, (BATCH, c.n_inputs))
    tags = np.arange(BATCH)
    solver = NativeSolver()
    assert solver.prepared(c, False).dense == (side == 4)
    first = solver.solve(c, gates, x, tags=tags)
    memory = solver.tag_memory(c, False, BATCH)
    kept = [a.copy() for a in (memory.v, memory.controls, memory.drive, memory.residual)]
    factorization = solver.prepared(c, False).lu
    moved = gates + 0.1  # far enough that the sparse path factorizes its Jacobian anew
    peek = solver.solve(c, moved, x, tags=tags, remember=False)
    cold = NativeSolver(warm_start=False).solve(c, moved, x)
    np.testing.assert_allclose(peek.voltages, cold.voltages, rtol=0, atol=1e-13)
    # warm from the tags' solutions: fewer Newton steps than cold, counted with every step a full Newton step (chord
    # steps on a reused factorization are cheaper and more, so their count says nothing of where a solve started)
    full, near = NativeSolver(reuse_factorization=False), gates + 0.01
    full.solve(c, gates, x, tags=tags)
    warm = full.solve(c, near, x, tags=tags, remember=False)
    cold = NativeSolver(warm_start=False, reuse_factorization=False).solve(c, near, x)
    assert (warm.iterations >= 1).all() and (warm.iterations < cold.iterations).all()
    for before, now in zip(kept, (memory.v, memory.controls, memory.drive, memory.residual)):
        np.testing.assert_array_equal(now, before)
    assert solver.prepared(c, False).lu is factorization
    again = solver.solve(c, gates, x, tags=tags)  # still what the tags last solved: nothing to do
    assert (again.iterations == 0).all()
    np.testing.assert_array_equal(again.voltages, first.voltages)


def test_level3_model_card_is_refused(tmp_path):
    c = _card_circuit(tmp_path, ".model fet3 nmos (level=3 vto=0.7 kp=5e-5 theta=0.1)")
    with pytest.raises(ValidationError, match="NativeSolver: device model card level 3 cannot be reproduced "
                                              "natively; use --backend ngspice"):
        NativeSolver().solve(c, np.ones(c.n_edges), np.zeros((1, c.n_inputs)))


def _xor_like(rng):
    """4x4 torus with two inputs and no rails: all-zero inputs are solved exactly by the starting point."""
    g = graph.assign_roles(graph.lattice_network(4, 4), graph.Roles(inputs=(15, 13), rails=(), outputs=((10, 0),)))
    return circuit.compile_graph(g, devices.nmos_preset("ald1106-l1")), rng.uniform(*GATES, 32)


def test_non_convergence_raises_and_names_the_sample():
    c, gates = _xor_like(np.random.default_rng(SEED))
    x = np.array([[0.0, 0.0], [0.1, 0.4]])
    with pytest.raises(SimulationError, match=r"NativeSolver: Newton did not converge for sample\(s\) 1 of 2 after "
                                              r"2 iterations \(got largest KCL residual .* A at sample 1"):
        NativeSolver(max_iter=2).solve(c, gates, x)


def test_non_convergence_without_throw_gives_nan_rows():
    c, gates = _xor_like(np.random.default_rng(SEED))
    x = np.array([[0.0, 0.0], [0.1, 0.4]])
    op = NativeSolver(max_iter=2, throw=False).solve(c, gates, x)
    np.testing.assert_array_equal(op.converged, [True, False])
    np.testing.assert_array_equal(op.voltages[0], 0.0)
    assert np.isnan(op.voltages[1]).all()


def test_bad_values_are_refused():
    c, gates = _xor_like(np.random.default_rng(SEED))
    with pytest.raises(ValidationError, match=r"NativeSolver.solve: controls must be finite \(got nan at edge 3\)"):
        NativeSolver().solve(c, np.where(np.arange(32) == 3, np.nan, gates), np.zeros((1, 2)))
    with pytest.raises(ValidationError, match=r"NativeSolver.solve: inputs must be finite \(got inf at row 0"):
        NativeSolver().solve(c, gates, [[0.1, np.inf]])
    r = circuit.compile_graph(graph.assign_roles(graph.lattice_network(4, 4), graph.Roles((0,), (), ((5, None),))),
                              devices.ResistorParams())
    with pytest.raises(ValidationError, match=r"resistor conductances must be > 0 \(got 0 S at edge 0\)"):
        NativeSolver().solve(r, np.zeros(32), [[0.1]])
    with pytest.raises(ValidationError, match=r"NativeSolver.max_iter: must be an integer >= 1 \(got 0\)"):
        NativeSolver(max_iter=0)
    with pytest.raises(ValidationError, match=r"NativeSolver.tol_v: must be a positive finite number \(got -1"):
        NativeSolver(tol_v=-1.0)


@dataclass(frozen=True)
class _Diode(devices.EdgeDevice):
    """A device kind with no solver physics yet."""

    name: str = "diode"
    kind = "diode"
    control_unit = "V"
    control_label = "bias (V)"
    rate_unit = "1/V"

    def _physical_range(self) -> tuple[float, float]:
        return (0.0, 1.0)


def test_model_cards_and_devices_the_native_law_cannot_follow_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"edge.lib: NmosParams.ld: effective length l - 2 ld must be > 0 "
                                          r"\(got l=1e-05, ld=6e-06\)"):
        _card_circuit(tmp_path, ".model nmos_edge nmos (level=1 ld=6u)")
    c = _card_circuit(tmp_path, ".model fet nmos (level=1 vto=0.7 kp=5e-5 tox=1e-7 cgso=1n)")
    assert _device_constants(c, twin=0)[3][0] == pytest.approx(5e-5)  # kp given: tox does not derive it
    with pytest.raises(ValidationError, match=r"NativeSolver: unknown edge device _Diode"):
        NativeSolver().solve(replace(c, device=_Diode()), np.ones(c.n_edges), np.zeros((1, c.n_inputs)))


def test_resistor_network_cut_in_two_is_refused():
    g = graph.assign_roles(graph.lattice_network(4, 4), graph.Roles(inputs=(0,), rails=(), outputs=((5, None),)))
    c = circuit.compile_graph(g, devices.ResistorParams())
    # node 15 loses all its edges (built by hand: ``circuit.without_edges`` itself refuses such a cut)
    cut = replace(c, edges=c.edges[~(c.edges == 15).any(axis=1)])
    with pytest.raises(ValidationError, match=r"NativeSolver: node\(s\) \[15\] have no path through the edges"):
        NativeSolver().solve(cut, np.full(cut.n_edges, 1e-3), [[0.1]])


# -- samples whose first Newton does not converge: retried, and still ngspice's answer ---------------------------

def _xor_torus():
    """The 4x4 torus of configs/xor.yaml: inputs (3,3), (3,1); rails 0.11 V at (1,1), 0.33 V at (1,3)."""
    g = graph.assign_roles(graph.lattice_network(4, 4), graph.Roles(inputs=(15, 13), rails=((5, 0.11), (7, 0.33)),
                                                                       outputs=((10, 0),)))
    return circuit.compile_graph(g, devices.nmos_preset("ald1106-fit"))


# From a 100-replica XOR ensemble (schedule cycle, nudge 1, rate 10), free phase: started warm from the
# previous step's solution (CYCLE_START), Newton cycles forever on nodes 10 and 11, each held by one transistor
# at threshold (a source follower, ~3e-8 S) and its bulk junctions; a cold start converges.
CYCLE_GATES = [0.509087673309635, 0.4, 0.8115510775917961, 0.7052350137510868, 1.1519408896727954,
               1.6587979570470583, 1.6409558975813974, 0.8271773768440516, 1.38779234186341, 1.623510347845419,
               1.2350688454845447, 1.9903983278180832, 1.5536188591714417, 1.2933955542532614, 1.9286935381709829,
               1.7031787120721287, 1.7267771072281302, 1.300964268402289, 0.41722212437251466, 0.4000000000000007,
               0.7333960280688239, 0.7362757610247063, 1.4314304380930365, 0.4, 1.5366667911282432,
               0.7276407427868229, 0.7281943651294844, 0.4004115178269819, 1.483384443868492, 0.8220791353050254,
               0.4, 0.7456328926326892]
CYCLE_X = [0.45, 0.0]
CYCLE_START = [0.14542389776971015, 0.24758151088207078, 0.18949578099228814, 0.08205998869238629,
               0.21779494403872812, 0.11, 0.18205865627809, 0.33, 0.25339035216002276, 0.2394261481219204,
               0.15301931588062373, 0.11624133974239177, 0.3265890459308177, 0.45, 0.1813652709147742, 0.0]
# Same ensemble, later: node 10's KCL jumps across zero where the junction law changes branch (3 V_T), so it has
# no zero; Newton (and ngspice at its default vntol) swings across 3 V_T forever, from any start.
CORNER_GATES = [0.4, 0.4, 0.6817802467646915, 0.4, 1.783715539930309, 1.6883937778831526, 0.4003348366668171,
                1.791763593814814, 1.8845601208395277, 1.695959257461468, 0.40000000022536997, 0.8129404408764452,
                1.087574453089649, 0.4, 1.804143504356461, 1.4646856973170674, 0.6410499460089772,
                0.40000000015013004, 0.4673817712802416, 0.4, 0.9946389786158454, 1.403829837262489, 0.4,
                0.4685598917333357, 0.4, 0.46855989290340677, 0.6976234016217713, 0.4, 1.6186072839257841,
                1.4592826844168174, 0.40133550030620874, 0.7334894130138818]
CORNER_X = [0.0, 0.0]


def _solve_from(solver, c, gates, x, start):
    """Solve with the warm start of this (circuit, phase, batch size) replaced by ``start`` [B, N]."""
    solver.solve(c, gates, x)
    solver._warm[(id(c), False, len(x))] = (c, np.array(start, float))
    return solver.solve(c, gates, x)


def test_step_limiter_cycle_from_a_warm_start_is_retried_and_matches_ngspice(spice):
    c, gates, x = _xor_torus(), np.array(CYCLE_GATES), np.array([CYCLE_X])
    solver = NativeSolver()
    op = _solve_from(solver, c, gates, x, [CYCLE_START])
    assert op.converged.all() and op.iterations[0] > solver.max_iter  # the first Newton failed, a retry converged
    np.testing.assert_allclose(op.voltages, spice.solve(c, gates, x).voltages, rtol=0, atol=AGREEMENT_V)
    assert np.nanmax(np.abs(circuit.kcl_residuals(c, gates, op.voltages))) < KCL_A
    # in a batch, only the failing row is retried (the others start from their own solutions)
    batch = NativeSolver()
    xs = np.array([[0.0, 0.45], CYCLE_X, [0.45, 0.45]])
    ref = spice.solve(c, gates, xs).voltages
    ops = _solve_from(batch, c, gates, xs, [ref[0], CYCLE_START, ref[2]])
    assert ops.converged.all()
    assert (ops.iterations > batch.max_iter).tolist() == [False, True, False]
    np.testing.assert_allclose(ops.voltages, ref, rtol=0, atol=AGREEMENT_V)


def test_gmin_stepping_alone_reaches_the_circuits_own_solution(spice):
    c, gates, x = _xor_torus(), np.array(CYCLE_GATES), np.array([CYCLE_X])
    solver = NativeSolver()
    solver.solve(c, gates, x)
    prep = solver.prepared(c, False)
    v = np.zeros(c.n_nodes)
    drv = np.concatenate([x[0], c.rail_voltages])
    _, resid, status = solver._gmin_stepping(prep, v, drv, gates)
    assert status == nk.CONVERGED and resid < solver.tol_i
    np.testing.assert_allclose(v, spice.solve(c, gates, x).voltages[0], rtol=0, atol=AGREEMENT_V)


def test_node_on_the_junction_branch_point_is_held_there():
    from metamaterial.netlist import SpiceOptions
    from metamaterial.sim.ngspice import NgspiceSolver
    c, gates, x = _xor_torus(), np.array(CORNER_GATES), np.array([CORNER_X])
    solver = NativeSolver()
    op = solver.solve(c, gates, x)
    corner = 3.0 * THERMAL_VOLTAGE
    assert op.converged.all() and op.iterations[0] > solver.max_iter
    assert op.voltages[0, 10] == corner
    kcl = circuit.kcl_residuals(c, gates, op.voltages)
    assert np.nanmax(np.abs(kcl)) < KCL_A
    # node 10's net current changes sign there: >= 0 at 3 V_T, <= 0 just below
    below = op.voltages.copy()
    below[0, 10] = np.nextafter(corner, 0.0)
    assert kcl[0, 10] >= 0.0 >= circuit.kcl_residuals(c, gates, below)[0, 10]
    # ngspice needs a looser voltage tolerance to stop there; then it agrees
    ref = NgspiceSolver(SpiceOptions(vntol=1e-7)).solve(c, gates, x)
    np.testing.assert_allclose(op.voltages, ref.voltages, rtol=0, atol=AGREEMENT_V)


STRESS_GATES = ((0.4, 1.2), (0.4, 8.0))  # V: many transistors near or below threshold; any


def test_stress_with_warm_starts_from_unrelated_solutions():
    """Random gates on the XOR torus and on random networks up to 400 nodes, each batch started warm from the
    last batch's solutions of unrelated problems or from random voltages: every sample converges, KCL closes."""
    rng = np.random.default_rng([SEED, 7])
    cases = [(_xor_torus(), 100, 20)]
    for n in (10, 30, 60, 120, 250, 400):
        g = _with_roles(graph.random_network(n, int(rng.integers(n, 3 * n)), seed=rng), rng)
        cases.append((circuit.compile_graph(g, devices.nmos_preset(PRESETS[n % 2])), 8 if n < 150 else 2, 4))
    for c, batch, reps in cases:
        solver = NativeSolver()
        for rep in range(reps):
            for low, high in STRESS_GATES:
                for clamped in (False, True):
                    gates = rng.uniform(low, high, (batch, c.n_edges))
                    x, clamps = _drive(c, rng, clamped, batch)
                    if rep % 2:
                        solver._warm[(id(c), clamped, batch)] = (c, rng.uniform(0, V_MAX, (batch, c.n_nodes)))
                    op = solver.solve(c, gates, x, clamps)
                    fixed = c.clamp_nodes if clamped else None
                    assert np.nanmax(np.abs(circuit.kcl_residuals(c, gates, op.voltages, fixed=fixed))) < KCL_A


def test_nodes_driven_onto_the_junction_branch_point_are_solved():
    """Bisect one gate until a node's voltage lands on 3 V_T, on the torus and on random networks (dense and
    sparse): every solve on the way converges, and the ones on the branch point agree with ngspice."""
    from metamaterial.netlist import SpiceOptions
    from metamaterial.sim.ngspice import NgspiceSolver
    # at the default vntol ngspice cannot stop there either; by op, as its warm-started dc sweep can stop short there
    # (seen: a dead node on the branch point behind series resistances left with 2e-12 A of KCL, 1.5e-5 V off)
    loose = NgspiceSolver(SpiceOptions(vntol=1e-7), sweep=False)
    corner = 3.0 * THERMAL_VOLTAGE
    rng = np.random.default_rng([SEED, 3])
    landed = retried = 0
    for n in (16, 16, 25, 40, 60, 200):
        g = graph.lattice_network(4, 4) if n == 16 else graph.random_network(n, 2 * n, seed=rng)
        c = circuit.compile_graph(_with_roles(g, rng), devices.nmos_preset(PRESETS[landed % 2]))
        solver = NativeSolver()
        for _ in range(20):  # a (node, edge, gate range) where the node crosses 3 V_T
            gates = rng.uniform(0.4, 2.0, c.n_edges)
            x, clamps = _drive(c, rng, bool(rng.integers(2)), 1)
            fixed = np.concatenate([c.source_nodes, [] if clamps is None else c.clamp_nodes])
            node = int(rng.choice(np.setdiff1d(np.arange(c.n_nodes), fixed)))
            edge = int(rng.choice(np.flatnonzero((c.edges == node).any(axis=1))))

            def above(gate):  # used only within this iteration, so the loop's variables are the ones meant
                gates[edge] = gate  # noqa: B023
                op = solver.solve(c, gates, x, clamps)  # noqa: B023
                return op, op.voltages[0, node] - corner  # noqa: B023

            lo, hi = 0.4, 3.0
            if above(lo)[1] * above(hi)[1] < 0:
                break
        sign_lo = np.sign(above(lo)[1])
        for _ in range(60):
            op, d = above(0.5 * (lo + hi))
            retried += int(op.iterations[0] > solver.max_iter)
            if d == 0.0:
                break
            lo, hi = (0.5 * (lo + hi), hi) if np.sign(d) == sign_lo else (lo, 0.5 * (lo + hi))
        if d == 0.0:
            landed += 1
            fixed = None if clamps is None else c.clamp_nodes
            assert np.nanmax(np.abs(circuit.kcl_residuals(c, gates, op.voltages, fixed=fixed))) < KCL_A
            np.testing.assert_allclose(op.voltages, loose.solve(c, gates, x, clamps).voltages, rtol=0,
                                       atol=AGREEMENT_V)
    assert landed >= 3 and retried >= 3


def test_sparse_factorization_reuse_matches_fresh_newton_over_gate_updates():
    """Sparse path (30x30 torus): chord steps on a reused LU (of this solve or of the previous update's) give
    the same operating points as fresh Newton (a new LU every step), over a few small gate updates, and KCL
    closes."""
    rng = np.random.default_rng(SEED)
    c = circuit.compile_graph(_with_roles(graph.lattice_network(30, 30), rng), devices.nmos_preset("ald1106-fit"))
    gates = rng.uniform(1.0, 3.0, c.n_edges)
    reuse, fresh = NativeSolver(), NativeSolver(reuse_factorization=False)
    for _ in range(4):
        x, clamps = _drive(c, rng, True, batch=1)
        for cl in (None, clamps):
            a, b = reuse.solve(c, gates, x, cl), fresh.solve(c, gates, x, cl)
            assert a.converged.all() and b.converged.all()
            np.testing.assert_allclose(a.voltages, b.voltages, rtol=0, atol=1e-9)
            fixed = c.clamp_nodes if cl is not None else None
            assert np.nanmax(np.abs(circuit.kcl_residuals(c, gates, a.voltages, fixed=fixed))) < KCL_A
        gates = np.clip(gates + rng.normal(0.0, 0.01, c.n_edges), *GATES)
    assert reuse._prepared[(id(c), False)].lu is not None  # the factorization was kept for the next solve


def test_threaded_kernel_equals_the_serial_one(monkeypatch):
    """Huge batches run the numba-parallel kernel; it must give the serial kernel's answer."""
    from metamaterial.sim import native as native_module
    rng = np.random.default_rng(11)
    c = circuit.compile_graph(graph.assign_roles(graph.lattice_network(4, 4), graph.Roles(
        inputs=(15, 13), rails=((5, 0.11), (7, 0.33)), outputs=((10, 0),))), devices.nmos_preset("ald1106-l1"))
    controls = rng.uniform(0.4, 8.0, (64, c.n_edges))
    x = rng.uniform(0, 0.45, (64, 2))
    serial = NativeSolver(warm_start=False).solve(c, controls, x).voltages
    monkeypatch.setattr(native_module, "_PARALLEL_FROM", 2)
    threaded = NativeSolver(warm_start=False).solve(c, controls, x).voltages
    np.testing.assert_allclose(threaded, serial, atol=1e-12, rtol=0)


@pytest.mark.parametrize(("overrides", "gates"), [(["device.params.w=0.01", "device.params.l=1e-9"], (0.5, 2.0)),
                                                  ([], (1e8, 2e8))], ids=["W/L=1e7", "gates=1e8V"])
def test_kcl_floor_scales_with_the_currents(overrides, gates, spice):
    """Kiloamps through the 4x4 XOR (W/L = 1e7, or gates at 1e8 V): rounding alone leaves a node's sum of currents a
    few 1e-16 of them off, above the absolute floor tol_i = 1e-13 A, and the native solver reported "did not
    converge" at a residual of 4.6e-13 A. The floor rises to 1e-14 of a node's currents
    (``native_kernels.KCL_ROUNDING``): Newton converges in a few steps, agrees with ngspice and closes Kirchhoff's
    law to that fraction of the currents."""
    from conftest import ROOT
    from metamaterial.configfile import load_config
    from metamaterial.experiment import build
    setup = build(load_config(ROOT / "configs" / "xor.yaml", overrides))
    c, x = setup.circuit, setup.task.inputs
    controls = np.random.default_rng([SEED, 11]).uniform(*gates, c.n_edges)
    ours = NativeSolver().solve(c, controls, x)
    assert ours.converged.all() and ours.iterations.max() < 20
    np.testing.assert_allclose(ours.voltages, spice.solve(c, controls, x).voltages, rtol=0, atol=AGREEMENT_V)
    biggest = np.abs(circuit.edge_currents(c, controls, ours.voltages)).max()
    assert biggest > 100.0  # A
    assert np.nanmax(np.abs(circuit.kcl_residuals(c, controls, ours.voltages))) < nk.KCL_ROUNDING * biggest
