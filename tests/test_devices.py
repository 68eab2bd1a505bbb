"""The level-1 NMOS law against closed forms and its symmetries; device presets and model cards."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metamaterial.devices import (NmosParams, PotentiometerParams, ResistorParams, card_level, load_model_card,
                                  nmos_current, nmos_from_card, nmos_preset)
from metamaterial.errors import ValidationError

FIT = nmos_preset("ald1106-fit")
L1 = nmos_preset("ald1106-l1")
RNG_POINTS = 2000


def test_fit_preset_is_the_authors_ohmic_law():
    # I = K (V_G - V_T - Vbar)(V_a - V_b)(1 + lambda (V_a - V_b)) in the linear region, K = 8.5e-4 A/V^2
    assert FIT.beta == pytest.approx(8.5e-4)
    va, vb, vg = 0.30, 0.10, 2.0
    expected = 8.5e-4 * (vg - 0.62 - (va + vb) / 2) * (va - vb) * (1 + 0.02 * (va - vb))
    assert nmos_current(FIT, va, vb, vg).current == pytest.approx(expected, rel=1e-14)


def test_l1_preset_threshold_has_body_effect():
    # with the source at 0.3 V, V_T = vto + gamma (sqrt(phi + 0.3) - sqrt(phi)); current vanishes just below it
    vt = 0.75 + 1.09 * (math.sqrt(0.94995 + 0.3) - math.sqrt(0.94995))
    below = nmos_current(L1, 0.35, 0.30, 0.30 + vt - 1e-6).current
    above = nmos_current(L1, 0.35, 0.30, 0.30 + vt + 1e-3).current
    assert below == 0.0 and above > 0


@pytest.mark.parametrize("p", [FIT, L1], ids=["fit", "l1"])
def test_source_drain_symmetry_and_continuity(p):
    rng = np.random.default_rng(1)
    va, vb, vg = rng.uniform(0, 0.45, RNG_POINTS), rng.uniform(0, 0.45, RNG_POINTS), rng.uniform(0.4, 8, RNG_POINTS)
    forward, backward = nmos_current(p, va, vb, vg), nmos_current(p, vb, va, vg)
    np.testing.assert_allclose(forward.current, -backward.current, rtol=0, atol=1e-18)
    np.testing.assert_allclose(forward.d_va, -backward.d_vb, rtol=0, atol=1e-15)
    # continuity across the saturation boundary V_DS = V_GS - V_T
    vgst = 0.2
    i_lin = nmos_current(p, vgst - 1e-9, 0.0, p.vto + vgst).current
    i_sat = nmos_current(p, vgst + 1e-9, 0.0, p.vto + vgst).current
    assert abs(i_lin - i_sat) < 1e-12


@pytest.mark.parametrize("p", [FIT, L1], ids=["fit", "l1"])
def test_jacobian_matches_finite_differences(p):
    rng = np.random.default_rng(2)
    va, vb, vg = rng.uniform(0, 0.45, 200), rng.uniform(0, 0.45, 200), rng.uniform(0.8, 6, 200)
    h = 1e-7
    m = nmos_current(p, va, vb, vg)
    num_a = (nmos_current(p, va + h, vb, vg).current - nmos_current(p, va - h, vb, vg).current) / (2 * h)
    num_b = (nmos_current(p, va, vb + h, vg).current - nmos_current(p, va, vb - h, vg).current) / (2 * h)
    num_g = (nmos_current(p, va, vb, vg + h).current - nmos_current(p, va, vb, vg - h).current) / (2 * h)
    for analytic, numeric in ((m.d_va, num_a), (m.d_vb, num_b), (m.d_vg, num_g)):
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-10)


def test_bad_parameters_are_refused():
    with pytest.raises(ValidationError, match=r"NmosParams.kp: must be a positive"):
        NmosParams(kp=-1.0)
    with pytest.raises(ValidationError, match=r"device.preset: unknown preset"):
        nmos_preset("ald9999")
    with pytest.raises(ValidationError, match=r"ResistorParams: need 0 < g_min < g_max"):
        ResistorParams(g_min=1.0, g_max=0.5)
    with pytest.raises(ValidationError, match=r"PotentiometerParams.n_taps"):
        PotentiometerParams(n_taps=1)


def test_potentiometer_taps_are_geometric():
    p = PotentiometerParams()
    g = p.conductance(np.arange(100))
    assert g[0] == pytest.approx(1 / 32e3) and g[-1] == pytest.approx(1 / 40.0)
    np.testing.assert_allclose(g[1:] / g[:-1], (32e3 / 40.0) ** (1 / 99))


def test_model_card_file(tmp_path):
    card = tmp_path / "my.lib"
    card.write_text("* my transistor\n.model mynmos nmos (level=1 vto=0.7 kp=1e-4\n+ lambda=0.05 gamma=0.5 phi=0.9)\n")
    p = nmos_from_card(card, w=20e-6, l=10e-6)
    assert (p.vto, p.kp, p.lambda_, p.gamma, p.model_name, card_level(p)) == (0.7, 1e-4, 0.05, 0.5, "mynmos", 1)
    assert "mynmos" in p.model_text()


@pytest.mark.parametrize("text, fragment", [
    (".model m nmos (level=1)\nV1 a 0 dc 1\n", "only comments"),
    (".model m nmos (level=1)\n.control\nshell rm -rf /\n.endc\n", "only comments"),
    (".model m nmos (level=1 vto=1; shell)\n", "only comments"),
    (".model m pmos (level=1)\n", "must read '.model NAME nmos"),
    ("* nothing here\n", "expected exactly one .model line"),
])
def test_model_card_cannot_inject_netlist_lines(tmp_path, text, fragment):
    card = tmp_path / "bad.lib"
    card.write_text(text)
    with pytest.raises(ValidationError, match=fragment):
        load_model_card(card)
