"""The authors' three-regime transistor law (preset ``ald1106-hw``): closed forms, both backends, the joins.

The law (``mos.three_regime_current``, docs/hardware.md) is I = F(V_G - V_T - V_b) - F(V_G - V_T - V_a)
+ gmin (V_a - V_b), F the authors' forward current. Checked here: that it equals the authors' own branch formulas
(Experiment2.m ``Ohmic``, ``Sat``, ``Sub``) where they apply; that ngspice's behavioural source computes the same
single-transistor currents to 1e-9 relative in every regime and right at the joins; that the native kernel and its
analytic Jacobian are the same law; and that native and ngspice node voltages agree to 1e-6 V on random circuits.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from metamaterial import circuit, devices, graph, mos, netlist
from metamaterial.errors import ValidationError
from metamaterial.sim import native_kernels as nk
from metamaterial.sim.native import NativeSolver, _device_constants
from metamaterial.sim.ngspice import run_batch_file

SEED = 13
PRESET = "ald1106-hw"
GMIN = 1e-12                       # S, the circuits' default
CLOSED_FORM_REL = 1e-9             # relative agreement of single-transistor currents
AGREEMENT_V = 1e-6                 # V, native vs ngspice node voltages
KCL_A = 1e-12
V_MAX = 0.45                       # V, top of the input range
GATES = (0.4, 8.0)                 # V: the shipped configs' bounds
LOW_GATES = (0.0, 1.2)             # V: most edges subthreshold
RANDOM_SIZES = (4, 16, 60, 400)    # nodes; 400 takes the sparse path
EDGES_PER_NODE = 2
BATCH = 3
N_POINTS = 400                     # random single-transistor bias points
JOIN_EPS = (1e-9, 1e-6, 1e-3)      # V, offsets either side of a join
VTO_SIGMA, K_SIGMA = 0.01, 0.005   # V, relative: twin mismatch

DEV = devices.nmos_preset(PRESET)
K, VT, XJ, DECADE = DEV.beta, DEV.vto, DEV.sub_join, DEV.sub_decade


# -- the authors' branch formulas, written out from Experiment2.m (Ohmic, Sat, Sub), current from high to low --
def _authors_ohmic(hi, lo, vg):
    return K * (vg - VT - (hi + lo) / 2) * (hi - lo)


def _authors_sat(lo, vg):
    return 0.5 * K * (vg - VT - lo) ** 2


def _authors_sub(lo, vg):
    g_crit = lo + XJ + VT
    return 0.5 * K * XJ**2 * 10 ** ((vg - g_crit) / DECADE)


def _bias_points(rng, n):
    """Random (va, vb, vg): nodes in [0, 0.45] V, gates from deep subthreshold to strongly on."""
    va, vb = rng.uniform(0, V_MAX, (2, n))
    vg = rng.uniform(0.0, 3.0, n)
    return va, vb, vg


def _join_points():
    """Bias points right at, and either side of, each join: the source's and the drain's overdrive at x_j, and the
    authors' ohmic/saturation boundary V_G - V_T = V_hi, both orientations."""
    rows = []
    for lo, hi in ((0.05, 0.3), (0.1, 0.12), (0.2, 0.45)):
        for eps in (0.0, *JOIN_EPS, *(-e for e in JOIN_EPS)):
            for vg in (VT + lo + XJ + eps, VT + hi + XJ + eps, VT + hi + eps):
                rows += [(hi, lo, vg), (lo, hi, vg)]
    return tuple(np.array(col) for col in zip(*rows))


def _spice_currents(va, vb, vg, vto=VT, beta=K):
    """Current a -> b of one behavioural transistor per point, measured by ngspice: each point has its own driven
    nodes a, b, g and one B source, the netlist's own expression (``netlist.three_regime_expression``)."""
    lines = ["* single three-regime transistors", ".options gmin=1e-12 reltol=1e-9 abstol=1e-18"]
    for k, (a, b, g) in enumerate(zip(va, vb, vg)):
        current = netlist.three_regime_expression(DEV, f"a{k}", f"b{k}", f"g{k}", vto, beta, GMIN)
        lines += [f"VA{k} a{k} 0 dc {netlist.num(a)}", f"VB{k} b{k} 0 dc {netlist.num(b)}",
                  f"VG{k} g{k} 0 dc {netlist.num(g)}", f"B{k} a{k} b{k} I={current}"]
    lines += [".control", "set numdgt=17", "op", "print all", "quit 0", ".endc", ".end"]
    return lines


@pytest.fixture(scope="module")
def spice():
    from metamaterial.sim.ngspice import NgspiceSolver
    return NgspiceSolver()


def _measure(tmp_path, va, vb, vg):
    path = tmp_path / "single.cir"
    path.write_text("\n".join(_spice_currents(va, vb, vg)) + "\n")
    values = netlist.parse_print_all(run_batch_file(str(path)))
    # the source at node a delivers the current that enters the transistor there: i(VA) = -I(a -> b)
    return -np.array([values[f"va{k}#branch"] for k in range(len(va))])


def _law(va, vb, vg):
    return mos.three_regime_current(DEV, va, vb, vg, gmin=GMIN)


# -- closed forms ----------------------------------------------------------------------------------------------
def test_law_is_the_authors_branches_where_they_apply():
    """Both overdrives above the join: the authors' ohmic law; drain below: their saturation less the reverse
    subthreshold current; source below: their subthreshold branch times (1 - 10^(-drop/decade))."""
    rng = np.random.default_rng(SEED)
    va, vb, vg = _bias_points(rng, 20 * N_POINTS)
    hi, lo = np.maximum(va, vb), np.minimum(va, vb)
    sign = np.where(va >= vb, 1.0, -1.0)
    i = _law(va, vb, vg).current - GMIN * (va - vb)
    x_hi, x_lo = vg - VT - hi, vg - VT - lo
    f_hi = 0.5 * K * XJ**2 * 10 ** ((x_hi - XJ) / DECADE)
    ohmic, sat, sub = x_hi > XJ, (x_hi <= XJ) & (x_lo > XJ), x_lo <= XJ
    assert ohmic.sum() > 100 and sat.sum() > 100 and sub.sum() > 100
    np.testing.assert_allclose(i[ohmic], sign[ohmic] * _authors_ohmic(hi, lo, vg)[ohmic], rtol=CLOSED_FORM_REL)
    np.testing.assert_allclose(i[sat], sign[sat] * (_authors_sat(lo, vg) - f_hi)[sat], rtol=CLOSED_FORM_REL)
    reverse = 1 - 10 ** (-(hi - lo) / DECADE)
    np.testing.assert_allclose(i[sub], sign[sub] * (_authors_sub(lo, vg) * reverse)[sub], rtol=CLOSED_FORM_REL,
                               atol=1e-300)


def test_law_is_continuous_at_the_joins_and_zero_at_zero_drop():
    va, vb, vg = _join_points()
    for eps in JOIN_EPS:
        up, mid, down = (_law(va, vb, vg + d) for d in (eps, 0.0, -eps))
        # a continuous law changes by at most its largest slope nearby times the step (plus rounding); a jump as in
        # the authors' law as written (~4e-7 A at the ohmic/subthreshold boundary) would not fit in it
        slope = np.max([np.abs(x.d_vg) for x in (up, mid, down)], axis=0)
        assert np.all(np.abs(up.current - down.current) <= 2.2 * eps * slope + 1e-12 * np.abs(mid.current) + 1e-18)
    v = np.linspace(0, V_MAX, 7)
    for gate in (0.0, 0.7, 1.5, 5.0):
        np.testing.assert_array_equal(_law(v, v, np.full_like(v, gate)).current, 0.0)


def test_law_is_source_drain_symmetric_and_passive():
    rng = np.random.default_rng(SEED + 1)
    va, vb, vg = _bias_points(rng, N_POINTS)
    forward, backward = _law(va, vb, vg), _law(vb, va, vg)
    np.testing.assert_array_equal(forward.current, -backward.current)
    np.testing.assert_array_equal(forward.d_va, -backward.d_vb)
    assert np.all(forward.current * (va - vb) >= 0)            # current flows from the higher to the lower node
    assert np.all(forward.d_va > 0) and np.all(forward.d_vb < 0)


def test_level1_preset_is_unchanged_and_differs_below_threshold():
    """The new law is its own preset: ``ald1106-fit`` keeps level 1, which conducts nothing below V_T."""
    fit = devices.nmos_preset("ald1106-fit")
    assert fit.law == devices.LEVEL1 and fit.bulk_junctions and not DEV.bulk_junctions
    va, vb, vg = np.array([0.3]), np.array([0.1]), np.array([0.6])   # V_GS = 0.5 V < V_T
    assert mos.nmos_current(fit, va, vb, vg).current[0] == 0.0
    assert _law(va, vb, vg).current[0] > 1e-8


# -- ngspice's behavioural source ------------------------------------------------------------------------------
def test_ngspice_single_transistor_currents_equal_the_closed_form(tmp_path):
    rng = np.random.default_rng(SEED + 2)
    va, vb, vg = (np.concatenate(p) for p in zip(_bias_points(rng, N_POINTS), _join_points()))
    measured = _measure(tmp_path, va, vb, vg)
    expected = _law(va, vb, vg).current
    np.testing.assert_allclose(measured, expected, rtol=CLOSED_FORM_REL, atol=1e-30)
    x_lo = vg - VT - np.minimum(va, vb)
    assert (x_lo <= XJ).sum() > 50 and (vg - VT - np.maximum(va, vb) > XJ).sum() > 50   # every regime was hit


# -- native kernel and its Jacobian ----------------------------------------------------------------------------
def test_native_kernel_is_the_law_with_its_analytic_jacobian():
    rng = np.random.default_rng(SEED + 3)
    va, vb, vg = (np.concatenate(p) for p in zip(_bias_points(rng, N_POINTS), _join_points()))
    prm = np.zeros(nk.N_PRM)
    prm[nk.P_GMIN], prm[nk.P_JOIN] = GMIN, XJ
    prm[nk.P_SUBSLOPE], prm[nk.P_XCAP] = math.log(10) / DECADE, mos.OVERDRIVE_CAP
    law = _law(va, vb, vg)
    h = 1e-7
    for k in range(len(va)):
        i, d_a, d_b = nk.three_regime_current(va[k], vb[k], vg[k], VT, K, prm)
        np.testing.assert_allclose([i, d_a, d_b], [law.current[k], law.d_va[k], law.d_vb[k]], rtol=1e-13, atol=1e-30)
        if min(abs(vg[k] - VT - va[k] - XJ), abs(vg[k] - VT - vb[k] - XJ)) > 10 * h:   # away from the kink
            fd_a = (nk.three_regime_current(va[k] + h, vb[k], vg[k], VT, K, prm)[0]
                    - nk.three_regime_current(va[k] - h, vb[k], vg[k], VT, K, prm)[0]) / (2 * h)
            fd_b = (nk.three_regime_current(va[k], vb[k] + h, vg[k], VT, K, prm)[0]
                    - nk.three_regime_current(va[k], vb[k] - h, vg[k], VT, K, prm)[0]) / (2 * h)
            np.testing.assert_allclose([d_a, d_b], [fd_a, fd_b], rtol=1e-5, atol=1e-15)


def test_native_uses_the_three_regime_kernel_without_junctions():
    c = circuit.compile_graph(_with_roles(graph.lattice_network(4, 4), np.random.default_rng(SEED)), DEV)
    kind, prm, vt, beta = _device_constants(c, twin=0)
    assert kind == nk.KIND_THREE_REGIME
    np.testing.assert_array_equal(vt, np.full(c.n_edges, VT))
    np.testing.assert_array_equal(beta, np.full(c.n_edges, K))
    assert (prm[nk.P_JOIN], prm[nk.P_GMIN]) == (XJ, c.gmin)


# -- networks: native == ngspice -------------------------------------------------------------------------------
def _with_roles(g, rng, n_in=2, n_rail=2):
    nodes = [int(x) for x in rng.permutation(g.number_of_nodes())]
    n_in, n_rail = min(n_in, len(nodes) - 2), min(n_rail, max(0, len(nodes) - 4))
    inputs, rest = tuple(nodes[:n_in]), nodes[n_in:]
    rails = tuple((n, float(rng.uniform(0, V_MAX))) for n in rest[:n_rail])
    rest = rest[n_rail:]
    differential = len(rest) >= 2
    outputs = ((rest[0], rest[1] if differential else None),)
    return graph.assign_roles(g, graph.Roles(inputs=inputs, rails=rails, outputs=outputs))


def _check(c, gates, rng, clamped, spice):
    x = rng.uniform(0, V_MAX, (BATCH, c.n_inputs))
    clamps = rng.uniform(0, V_MAX, (BATCH, len(c.clamp_nodes))) if clamped else None
    ours = NativeSolver().solve(c, gates, x, clamps)
    ref = spice.solve(c, gates, x, clamps)
    assert ours.converged.all()
    np.testing.assert_allclose(ours.voltages, ref.voltages, rtol=0, atol=AGREEMENT_V)
    fixed = c.clamp_nodes if clamped else None
    residuals = circuit.kcl_residuals(c, gates, ours.voltages, fixed=fixed)
    assert np.all(np.abs(residuals[np.isfinite(residuals)]) < KCL_A)


@pytest.mark.parametrize("clamped", [False, True], ids=["free", "clamped"])
@pytest.mark.parametrize("gates", [GATES, LOW_GATES], ids=["on", "mostly-subthreshold"])
@pytest.mark.parametrize("n", RANDOM_SIZES)
def test_random_networks_match_ngspice(n, gates, clamped, spice):
    rng = np.random.default_rng([SEED, n, clamped, gates == GATES])
    g = _with_roles(graph.random_network(n, min(EDGES_PER_NODE * n, n * (n - 1) // 2), seed=rng), rng)
    c = circuit.compile_graph(g, DEV)
    _check(c, rng.uniform(*gates, c.n_edges), rng, clamped, spice)


@pytest.mark.parametrize("clamped", [False, True], ids=["free", "clamped"])
def test_xor_lattice_and_mismatched_twins_match_ngspice(clamped, spice):
    rng = np.random.default_rng([SEED, clamped, 2])
    c = circuit.compile_graph(_with_roles(graph.lattice_network(4, 4, True), rng), DEV)
    _check(c, rng.uniform(*GATES, c.n_edges), rng, clamped, spice)
    mismatched = replace(c, mismatch=devices.draw_mismatch(c.n_edges, VTO_SIGMA, K_SIGMA, rng))
    _check(mismatched, rng.uniform(*LOW_GATES, c.n_edges), rng, clamped, spice)


def test_three_regime_law_refuses_what_it_does_not_model():
    with pytest.raises(ValidationError, match="three-regime law has no model card, body effect, lambda or series "):
        devices.nmos_preset(PRESET, lambda_=0.02)
    with pytest.raises(ValidationError, match="NmosParams.law: must be one of"):
        replace(DEV, law="level3")
    with pytest.raises(ValidationError, match="NmosParams.sub_decade: must be a positive finite number"):
        replace(DEV, sub_decade=0.0)


def test_transients_refuse_the_three_regime_law():
    from metamaterial.transient import transient_netlist
    c = circuit.compile_graph(_with_roles(graph.lattice_network(4, 4), np.random.default_rng(SEED)), DEV)
    with pytest.raises(ValidationError, match="three-regime law\\) has no capacitance model"):
        transient_netlist(c, np.full(c.n_edges, 2.0), None, np.zeros(c.n_inputs))
