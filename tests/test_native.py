"""The native solver: agreement with ngspice, Kirchhoff's law, the Jacobian, ensembles, refusals, failures."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from metamaterial import circuit, devices, graph
from metamaterial.errors import SimulationError, ValidationError
from metamaterial.sim import native_kernels as nk
from metamaterial.sim.native import NativeSolver, _device_constants, card_parameters

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
    assert card_parameters(c.device.model_card)["lambda_"] == 0.0
    # the card's parser here and the one in devices agree, so the analytic law is the one ngspice uses
    assert card_parameters(c.device.model_card) == {k: getattr(c.device, k) for k in devices.NGSPICE_MOS1_DEFAULTS}
    _check_against_ngspice(c, rng.uniform(*GATES, c.n_edges), *_drive(c, rng, True), spice)


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


def test_mismatch_with_a_model_card_is_refused(tmp_path):
    card = tmp_path / "edge.lib"
    card.write_text(".model myfet nmos (level=1 vto=0.7 kp=5e-5)\n")
    c = circuit.compile_graph(_with_roles(graph.lattice_network(4, 4), np.random.default_rng(SEED)),
                              devices.nmos_from_card(card))
    with pytest.raises(ValidationError, match=r"NativeSolver: twin mismatch needs a built-in preset"):
        NativeSolver().solve(_mismatched(c, SEED), np.ones(c.n_edges), np.zeros((1, c.n_inputs)))


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
    law = devices.nmos_current(p, va, vb, vg)
    vgst = vg - min(va, vb) - (p.vto + p.gamma * (np.sqrt(p.phi + min(va, vb)) - np.sqrt(p.phi)))
    assert (vgst <= abs(va - vb)) == (region == "saturation")
    assert np.sign(law.current) == (1 if orientation == "a_to_b" else -1)
    d_va = (devices.nmos_current(p, va + h, vb, vg).current - devices.nmos_current(p, va - h, vb, vg).current) / (2 * h)
    d_vb = (devices.nmos_current(p, va, vb + h, vg).current - devices.nmos_current(p, va, vb - h, vg).current) / (2 * h)
    np.testing.assert_allclose([law.d_va, law.d_vb], [d_va, d_vb], rtol=1e-6)
    # the compiled law is the same function with the same derivatives, also per transistor under mismatch
    c = circuit.compile_graph(_with_roles(graph.lattice_network(4, 4), np.random.default_rng(SEED)), p)
    _, prm, vbi, beta = _device_constants(c, twin=0)
    np.testing.assert_allclose(nk.mos_current(va, vb, vg, vbi[0], beta[0], prm), [law.current, law.d_va, law.d_vb],
                               rtol=1e-12)
    c = replace(c, mismatch=devices.draw_mismatch(c.n_edges, VTO_SIGMA, K_SIGMA, SEED))
    for twin in (0, 1):
        _, prm, vbi, beta = _device_constants(c, twin)
        vto_e, beta_e = c.transistor_params(twin)
        for e in range(c.n_edges):
            law = devices.nmos_current(p, va, vb, vg, vto_e[e], beta_e[e])
            np.testing.assert_allclose(nk.mos_current(va, vb, vg, vbi[e], beta[e], prm),
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
    prep = solver._prepare(c, False)
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


def test_level3_model_card_is_refused(tmp_path):
    card = tmp_path / "level3.lib"
    card.write_text(".model fet3 nmos (level=3 vto=0.7 kp=5e-5 theta=0.1)\n")
    c = circuit.compile_graph(_with_roles(graph.lattice_network(4, 4), np.random.default_rng(SEED)),
                              devices.nmos_from_card(card))
    with pytest.raises(ValidationError, match="NativeSolver: device model card level 3 cannot be reproduced "
                                              "natively; use --backend ngspice"):
        NativeSolver().solve(c, np.ones(c.n_edges), np.zeros((1, c.n_inputs)))


def test_level1_card_with_series_resistance_is_refused(tmp_path):
    card = tmp_path / "rd.lib"
    card.write_text(".model fetr nmos (level=1 vto=0.7 kp=5e-5 rd=10)\n")
    c = circuit.compile_graph(_with_roles(graph.lattice_network(4, 4), np.random.default_rng(SEED)),
                              devices.nmos_from_card(card))
    with pytest.raises(ValidationError, match=r"model card parameter\(s\) rd=10 change the DC answer"):
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
    with pytest.raises(ValidationError, match=r"NativeSolver.solve: controls, inputs and clamps must be finite"):
        NativeSolver().solve(c, np.where(np.arange(32) == 3, np.nan, gates), np.zeros((1, 2)))
    with pytest.raises(ValidationError, match=r"NativeSolver.solve: controls, inputs and clamps must be finite"):
        NativeSolver().solve(c, gates, [[0.1, np.inf]])
    r = circuit.compile_graph(graph.assign_roles(graph.lattice_network(4, 4), graph.Roles((0,), (), ((5, None),))),
                              devices.ResistorParams())
    with pytest.raises(ValidationError, match=r"resistor conductances must be > 0 \(got min 0 S\)"):
        NativeSolver().solve(r, np.zeros(32), [[0.1]])
    with pytest.raises(ValidationError, match=r"NativeSolver.max_iter: must be an integer >= 1 \(got 0\)"):
        NativeSolver(max_iter=0)
    with pytest.raises(ValidationError, match=r"NativeSolver.tol_v: must be a positive finite number \(got -1"):
        NativeSolver(tol_v=-1.0)


def test_model_cards_the_native_law_cannot_follow_are_refused():
    with pytest.raises(ValidationError, match=r"NativeSolver: model card parameter vto is not a number \(got 'x1'\)"):
        card_parameters(".model m nmos (level=1 vto=x1)")
    with pytest.raises(ValidationError, match=r"model card parameter\(s\) tox=1e-07, uo=500 change the DC answer"):
        card_parameters(".model m nmos (level=1 vto=0.7 tox=1e-7 uo=500)")  # kp would come from uo and tox
    assert card_parameters(".model m nmos (level=1 vto=0.7 kp=5e-5 tox=1e-7 cgso=1n)")["kp"] == 5e-5
    rng = np.random.default_rng(SEED)
    c = circuit.compile_graph(_with_roles(graph.lattice_network(4, 4), rng),
                              devices.NmosParams(model_card=".model nmos_edge nmos (level=1 ld=6u)"))
    with pytest.raises(ValidationError, match=r"NativeSolver: model card gives l - 2 ld = -2e-06 m"):
        NativeSolver().solve(c, np.ones(c.n_edges), np.zeros((1, c.n_inputs)))
    with pytest.raises(ValidationError, match=r"NativeSolver: unknown edge device str"):
        NativeSolver().solve(replace(c, device="diode"), np.ones(c.n_edges), np.zeros((1, c.n_inputs)))


def test_resistor_network_cut_in_two_is_refused():
    g = graph.assign_roles(graph.lattice_network(4, 4), graph.Roles(inputs=(0,), rails=(), outputs=((5, None),)))
    c = circuit.compile_graph(g, devices.ResistorParams())
    cut = circuit.without_edges(c, np.flatnonzero((c.edges == 15).any(axis=1)))  # node 15 loses all its edges
    with pytest.raises(ValidationError, match=r"NativeSolver: node\(s\) \[15\] have no path through the edges"):
        NativeSolver().solve(cut, np.full(cut.n_edges, 1e-3), [[0.1]])
