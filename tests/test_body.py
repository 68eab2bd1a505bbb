"""Transistor bodies tied to a node (``device.body: input``): the level-1 law with the body at a terminal, its bulk
diodes between the edge's ends, native against ngspice and Kirchhoff's law at every node, and the refusals."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from conftest import ROOT
from metamaterial import circuit, devices, graph, mos
from metamaterial.configfile import load_config
from metamaterial.errors import ConfigError, ValidationError
from metamaterial.experiment import build
from metamaterial.netlist import to_spice
from metamaterial.sim import native_kernels as nk
from metamaterial.sim.native import NativeSolver, _device_constants

SEED = 0
SIZES = (16, 60, 400)          # nodes; 400 takes the sparse path
EDGES_PER_NODE = 2
PRESETS = ("ald1106-fit", "ald1106-l1")
V_MAX = 1.0                    # V: a bright digits pixel, enough to forward-bias a bulk diode
GATES = (0.4, 8.0)             # V
BATCH = 3
AGREEMENT_V = 1e-6
KCL_A = 1e-12
VTO_SIGMA, K_SIGMA = 0.01, 0.005
TIED = ["device.body=input", "device.params.rd=0.0", "device.params.rs=0.0"]  # bodies tied, as digits_chips.yaml


@pytest.fixture(scope="module")
def spice():
    from metamaterial.sim.ngspice import NgspiceSolver
    return NgspiceSolver()


def _tied_circuit(n, preset, rng, mismatch=False):
    """A random network with random roles, every transistor's body tied to a randomly chosen end of its edge."""
    g = graph.random_network(n, EDGES_PER_NODE * n, seed=rng)
    nodes = [int(x) for x in rng.permutation(n)]
    roles = graph.Roles(inputs=tuple(nodes[:3]), rails=((nodes[3], 0.2),), outputs=((nodes[4], nodes[5]),))
    c = circuit.compile_graph(graph.assign_roles(g, roles), devices.nmos_preset(preset, rd=0.0, rs=0.0))
    c = replace(c, body=c.edges[np.arange(c.n_edges), rng.integers(0, 2, c.n_edges)])
    if mismatch:
        c = replace(c, mismatch=devices.draw_mismatch(c.n_edges, VTO_SIGMA, K_SIGMA, rng))
    return c


@pytest.mark.parametrize("clamped", [False, True], ids=["free", "clamped"])
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("n", SIZES)
def test_tied_bodies_match_ngspice_and_close_kcl(n, preset, clamped, spice):
    rng = np.random.default_rng([SEED, n, PRESETS.index(preset), clamped])
    c = _tied_circuit(n, preset, rng, mismatch=n == 60)
    gates = rng.uniform(*GATES, c.n_edges)
    x = rng.uniform(0, V_MAX, (BATCH, c.n_inputs))
    clamps = rng.uniform(0, 0.45, (BATCH, len(c.clamp_nodes))) if clamped else None
    ours = NativeSolver().solve(c, gates, x, clamps)
    ref = spice.solve(c, gates, x, clamps)
    assert ours.converged.all()
    np.testing.assert_allclose(ours.voltages, ref.voltages, rtol=0, atol=AGREEMENT_V)
    fixed = c.clamp_nodes if clamped else None
    twin = int(clamped)
    assert np.nanmax(np.abs(circuit.kcl_residuals(c, gates, ours.voltages, fixed=fixed, twin=twin))) < KCL_A
    if preset == "ald1106-l1":  # body effect: the grounded-body circuit is not balanced by these voltages
        grounded = replace(c, body=None)
        residual = circuit.kcl_residuals(grounded, gates, ours.voltages, fixed=fixed, twin=twin)
        assert np.nanmax(np.abs(residual)) > 1e3 * KCL_A


def test_kernel_law_with_the_body_at_terminal_a_is_the_numpy_law_and_its_derivatives():
    """``mos_current`` with P_BODY = 1 (body at a) against ``mos.nmos_current`` at vbody = va: the current, and
    d/dva (the body's gmbs included) and d/dvb against central differences, forward and reverse, every region."""
    p = devices.nmos_preset("ald1106-l1", rd=0.0, rs=0.0)
    c = circuit.compile_graph(graph.assign_roles(graph.lattice_network(2, 2, periodic=False), graph.Roles(
        inputs=(0,), rails=(), outputs=((3, None),))), p)
    _, prm, vbi, beta = _device_constants(replace(c, body=c.edges[:, 0]), twin=0)
    assert prm[nk.P_BODY] == 1.0
    rng = np.random.default_rng(SEED)
    h = 1e-7
    for _ in range(300):
        va, vb = rng.uniform(0, V_MAX, 2)
        vg = rng.uniform(0.5, 4.0)
        i, d_a, d_b = nk.mos_current(va, vb, vg, vbi[0], beta[0], prm, prm[nk.P_BODY])
        law = lambda a, b, vg=vg: mos.nmos_current(p, a, b, vg, vbody=a).current  # noqa: E731
        assert i == pytest.approx(float(law(va, vb)), rel=1e-12, abs=1e-18)
        assert d_a == pytest.approx(float(law(va + h, vb) - law(va - h, vb)) / (2 * h), rel=1e-5, abs=1e-9)
        assert d_b == pytest.approx(float(law(va, vb + h) - law(va, vb - h)) / (2 * h), rel=1e-5, abs=1e-9)


def test_digits_body_input_ties_each_body_to_its_pixel_and_writes_it_on_the_m_line():
    setup = build(load_config(ROOT / "configs" / "digits.yaml", TIED))
    c = setup.circuit
    np.testing.assert_array_equal(c.body, c.edges[:, 0])  # inputs are nodes 0..63, every edge's lower end
    assert np.isin(c.body, c.inputs).all()
    text = to_spice(c, np.full(c.n_edges, 2.0), np.zeros((1, c.n_inputs)), control_block=False)
    m_lines = [ln.split() for ln in text.splitlines() if ln.startswith("M")]
    assert len(m_lines) == c.n_edges
    assert all(f[4] == f[1] for f in m_lines)  # M<e> drain gate source BODY: the body is the pixel node


def test_body_input_needs_one_input_end_per_edge():
    with pytest.raises(ValidationError, match=r"device.body: .*edge \d+ \(.*\) has 0 input ends .*every edge needs "
                                              "exactly one input end, or use device.body: ground"):
        build(load_config(ROOT / "configs" / "digits.yaml", [*TIED, "network.n_hidden=4", "network.n_edges=null"]))


def test_body_input_needs_a_transistor_with_a_body():
    with pytest.raises(ConfigError) as err:
        load_config(ROOT / "configs" / "digits.yaml", ["device={kind: resistor, body: input}"])
    assert str(err.value) == (f"{ROOT / 'configs' / 'digits.yaml'}: --set device={{kind: resistor, body: input}}: "
                              "device.body, device.kind: a resistor has no body terminal to tie (got body 'input'); "
                              "remove device.body, or use device.kind: nmos")
    with pytest.raises(ValidationError, match="device.body: only level-1 transistors have a body terminal"):
        build(load_config(ROOT / "configs" / "digits.yaml", ["device.body=input", "device.preset=ald1106-hw"]))
    with pytest.raises(ConfigError, match="device.body"):
        load_config(ROOT / "configs" / "digits.yaml", ["device.body=drain"])


@pytest.mark.parametrize("params", ["{}", "{rd: 0.0, rs: 50.0}", "{rd: 30.0, rs: 0.0}"],
                         ids=["card", "source-only", "drain-only"])
@pytest.mark.parametrize("mismatch", [False, True], ids=["matched", "mismatch"])
def test_tied_body_behind_series_resistances_native_matches_ngspice(params, mismatch, spice):
    """ngspice puts the bulk junctions behind the series resistances, at the internal drain and source (the
    third-party digits circuit, docs/physics.md 2.1); the native solver solves the two internal nodes per edge
    (``native_kernels.series_mos_currents``). On the digits network with bright pixels, free and clamped."""
    over = ["device.body=input", f"device.params={params}"]
    if mismatch:
        over.append(f"device.mismatch={{vto_sigma: {VTO_SIGMA}, k_sigma: {K_SIGMA}, seed: 1}}")
    setup = build(load_config(ROOT / "configs" / "digits.yaml", over))
    c = setup.circuit
    rng = np.random.default_rng(SEED)
    gates, x = rng.uniform(0.5, 4.5, c.n_edges), setup.task.inputs[:BATCH]
    free = NativeSolver().solve(c, gates, x).voltages
    np.testing.assert_allclose(free, spice.solve(c, gates, x).voltages, atol=AGREEMENT_V, rtol=0)
    # Kirchhoff's law at every free node, by the numpy law (mos.body_series_current), which the same voltages
    # do not satisfy without the resistances
    assert np.nanmax(np.abs(circuit.kcl_residuals(c, gates, free))) < KCL_A
    without = replace(c, device=replace(c.device, rd=0.0, rs=0.0))
    assert np.nanmax(np.abs(circuit.kcl_residuals(without, gates, free))) > 1e3 * KCL_A
    clamps = free[:, c.clamp_nodes] + rng.uniform(-0.025, 0.025, (BATCH, len(c.clamp_nodes)))
    clamped = NativeSolver().solve(c, gates, x, clamps).voltages
    np.testing.assert_allclose(clamped, spice.solve(c, gates, x, clamps).voltages, atol=AGREEMENT_V, rtol=0)


def test_body_series_law_numpy_and_kernel_agree_and_derivatives_are_exact():
    """The numpy reference (mos.body_series_current) and the kernel (native_kernels.series_mos_currents),
    written apart: the same current, and each one's derivatives against central differences of the numpy current,
    over random terminal and gate voltages (bright pixels forward-bias the junctions)."""
    p = devices.nmos_preset("ald1106-l1")
    roles = graph.Roles(inputs=(0, 1), rails=(), outputs=((2, 3),))
    c = circuit.compile_graph(graph.assign_roles(graph.layered_network(2, 2, seed=0), roles), p, body="input")
    _, prm, vbi, beta = _device_constants(c, twin=0)
    assert prm[nk.P_BODY_SERIES] == 1.0 and prm[nk.P_BODY] == 0.0
    rng = np.random.default_rng(SEED)
    va, vb, vg = rng.uniform(0, V_MAX, 200), rng.uniform(0, 0.6, 200), rng.uniform(*GATES, 200)
    m = mos.body_series_current(p, va, vb, vg)
    h = 1e-7
    law = lambda a, b, g: mos.body_series_current(p, a, b, g).current  # noqa: E731
    for got, num in ((m.d_va, (law(va + h, vb, vg) - law(va - h, vb, vg)) / (2 * h)),
                     (m.d_vb, (law(va, vb + h, vg) - law(va, vb - h, vg)) / (2 * h)),
                     (m.d_vg, (law(va, vb, vg + h) - law(va, vb, vg - h)) / (2 * h))):
        np.testing.assert_allclose(got, num, rtol=1e-5, atol=1e-9)
    for k in range(len(va)):
        i, d_a, d_b, i_b, db_a, db_b = nk.series_mos_currents(va[k], vb[k], vg[k], vbi[0], beta[0], prm, True)
        assert (i_b, db_a, db_b) == (i, d_a, d_b)  # a tied body takes back its junctions' current
        assert i == pytest.approx(float(m.current[k]), rel=1e-10, abs=1e-18)
        assert d_a == pytest.approx(float(m.d_va[k]), rel=1e-5, abs=1e-9)
        assert d_b == pytest.approx(float(m.d_vb[k]), rel=1e-5, abs=1e-9)


def test_tied_body_behind_series_resistances_goes_to_the_tied_body_without_them(spice):
    """As the resistances shrink, ngspice's answer goes to the native tied body without them in proportion to R;
    at the card's 22 and 73 ohm it moves by millivolts. The native solver and the numpy law (power, Kirchhoff
    check) refuse a body behind series resistances at an edge's second node, naming what to do."""
    digits = ROOT / "configs" / "digits.yaml"
    setup = build(load_config(digits, TIED))
    gates = np.random.default_rng(SEED).uniform(0.5, 4.5, setup.circuit.n_edges)
    x = setup.task.inputs[:3]
    without = NativeSolver().solve(setup.circuit, gates, x).voltages
    moved = {}
    for r in (0.1, 0.01):  # ohm at drain and source
        c = build(load_config(digits, ["device.body=input", f"device.params.rd={r}", f"device.params.rs={r}"])).circuit
        moved[r] = np.abs(spice.solve(c, gates, x).voltages - without).max()
    # first order in R (measured 1.661e-3 and 1.665e-3 V per ohm): the two circuits differ by their resistances only
    assert moved[0.01] / 0.01 == pytest.approx(moved[0.1] / 0.1, rel=0.01) and moved[0.01] < 2e-5
    card = build(load_config(digits, ["device.body=input", "device.params={}"])).circuit  # the preset's own rd, rs
    assert (card.device.rd, card.device.rs) == pytest.approx((21.96, 73.21), abs=0.01)
    with_r = spice.solve(card, gates, x).voltages
    assert np.abs(with_r - without).max() > 1e-3
    at_source = replace(card, body=card.edges[:, 1])
    with pytest.raises(ValidationError, match=r"edge 0 \(.*\): a body behind series resistances is modelled here "
                                              r"only at the edge's first node"):
        circuit.edge_currents(at_source, gates, with_r)
    with pytest.raises(ValidationError, match=r"NativeSolver: a tied body with series resistances is solved only at "
                                              r"the edge's first node, .*or use --backend ngspice"):
        NativeSolver().solve(at_source, gates, x)


def test_a_sweep_point_that_fails_falls_back_to_op_and_stays_there():
    """At 1 mohm series resistances behind a tied body ngspice's dc sweep fails ("timestep too small") where its op
    converges: the sweep-path solver then answers by op, exactly as a solver built for op, for that circuit from
    then on, and that answer is the native solver's within 1e-6 V."""
    from metamaterial.sim.ngspice import NgspiceSolver

    digits = ROOT / "configs" / "digits.yaml"
    c = build(load_config(digits, ["device.body=input", "device.params.rd=0.001", "device.params.rs=0.001"])).circuit
    gates = np.random.default_rng(SEED).uniform(0.5, 4.5, c.n_edges)
    x = build(load_config(digits)).task.inputs[:2]
    with NgspiceSolver() as swept, NgspiceSolver(sweep=False) as op:  # the failing sweep takes ngspice ~20 s
        for image in (x[:1], x[1:]):
            np.testing.assert_array_equal(swept.solve(c, gates, image).voltages, op.solve(c, gates, image).voltages)
            assert swept.sweep_fallbacks == 1  # the second image went to op directly
        native = NativeSolver().solve(c, gates, x).voltages
        assert np.abs(op.solve(c, gates, x).voltages - native).max() < 1e-6
