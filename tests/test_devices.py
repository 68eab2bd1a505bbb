"""The level-1 NMOS law against closed forms and its symmetries; device presets; what each device kind says
about its control; model cards and SPICE numbers read as ngspice reads them."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from metamaterial.cards import load_model_card, parse_model_card, parse_number
from metamaterial.devices import (
    Mismatch,
    NmosParams,
    PotentiometerParams,
    ResistorParams,
    card_level,
    nmos_from_card,
    nmos_preset,
)
from metamaterial.errors import ConfigError, ValidationError
from metamaterial.mos import nmos_current
from metamaterial.sim.ngspice import run_batch_file

FIT = nmos_preset("ald1106-fit")
L1 = nmos_preset("ald1106-l1")
RNG_POINTS = 2000
# SPICE numbers and what they mean; the test asks ngspice for each one. Values stay above 1e-12, the smallest
# resistance ngspice keeps, so that a resistor can carry them.
SPICE_NUMBERS = ("2T", "3g", "5Meg", "2MEG", "1mega", "4k", "4K", "1.5kOhm", "0.001mil", "7MIL", "3milli", "2m",
                 "1meter", "3u", "3U", "10n", "47p", "2e6f", "3e9a", "10V", "1e", "1ek", "2e-", "1.e3", ".5", "-.5e1k",
                 "1.25E-3", "+7", "1e-3u", "12345.678e-2meg")
CARD_RTOL = 1e-5  # showmod prints 6 significant digits


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


def test_each_kind_says_what_its_control_is():
    nmos, res, pot = FIT, ResistorParams(g_min=1e-4, g_max=1e-3), PotentiometerParams(n_taps=64)
    assert [(d.control_unit, d.control_label, d.update_kind, d.discrete, d.rate_unit) for d in (nmos, res, pot)] == [
        ("V", "gate voltage (V)", "continuous", False, "1/V"),
        ("S", "conductance (S)", "continuous", False, "S/V^2"),
        ("tap", "tap", "sign", True, "")]
    assert [d.default_bounds() for d in (nmos, res, pot)] == [(0.4, 8.0), (1e-4, 1e-3), (0, 63)]
    assert [d.default_init() for d in (nmos, res, pot)] == [(0.5, 2.0), (1e-4, 1e-3), (0, 63)]
    assert [d.supports_mismatch for d in (nmos, res, pot)] == [True, False, False]
    # the solver sees gate voltages and conductances: a potentiometer's taps become its conductances
    taps = np.array([[0.0, 63.0]])
    np.testing.assert_array_equal(pot.edge_controls(taps), pot.conductance(taps))
    np.testing.assert_array_equal(res.edge_controls(np.array([2e-4])), [2e-4])
    np.testing.assert_array_equal(nmos.edge_controls(np.array([-1.0, 9.0])), [-1.0, 9.0])
    for d in (nmos, res, pot):
        d.check_bounds(*d.default_bounds(), "learning.bounds")
    nmos.check_bounds(-1.0, 20.0, "learning.bounds")  # any gate voltage can be applied


def test_bounds_outside_a_kinds_range_are_refused():
    with pytest.raises(ConfigError, match=r"learning.bounds: must be two finite numbers with low < high "
                                          r"\(got \[2.0, 1.0\]\); give \[low, high\]"):
        FIT.check_bounds(2.0, 1.0, "learning.bounds")
    with pytest.raises(ConfigError, match=r"learning.bounds: must be two finite numbers .*\(got \[0.4, inf\]\)"):
        FIT.check_bounds(0.4, math.inf, "learning.bounds")
    with pytest.raises(ConfigError, match=r"learning.bounds: resistor controls must lie in \[1e-05, 0.01\] S "
                                          r"\(got \[0, 0.01\]\); keep the bounds inside device.g_min and"):
        ResistorParams().check_bounds(0.0, 1e-2, "learning.bounds")
    with pytest.raises(ConfigError, match=r"learning.bounds: potentiometer controls must lie in \[0, 99\] tap "
                                          r"\(got \[0, 100\]\); keep the bounds inside 0 and device.n_taps - 1"):
        PotentiometerParams().check_bounds(0, 100, "learning.bounds")
    with pytest.raises(ValidationError, match=r"ResistorParams.check_controls: resistor conductances must be > 0 "
                                              r"\(got -1e-05 S at edge 1\); keep the controls inside"):
        ResistorParams().edge_controls(np.array([1e-3, -1e-5]))
    # the first one refused, by its edge (and row): the smallest alone did not say where it was
    with pytest.raises(ValidationError, match=r"must be > 0 \(got 0 S at edge 6\)"):
        ResistorParams().edge_controls(np.array([1e-3] * 6 + [0.0, -1e-5]))
    with pytest.raises(ValidationError, match=r"must be > 0 \(got -2e-05 S at row 1, edge 6\)"):
        ResistorParams().edge_controls(np.array([[1e-3] * 7, [1e-3] * 6 + [-2e-5]]))



def test_a_mismatch_names_the_transistor_it_refuses():
    """It said only "dvto must be finite and kscale > 0", naming neither the array, the value nor the transistor."""
    dvto, kscale = np.zeros((2, 8)), np.ones((2, 8))
    with pytest.raises(ValidationError, match=re.escape("Mismatch: dvto must be finite (got nan at twin 1, edge 6); "
                                                        "give every transistor a finite V_T shift")):
        Mismatch(np.vstack([dvto[0], np.where(np.arange(8) == 6, np.nan, 0.0)]), kscale)
    with pytest.raises(ValidationError, match=re.escape("Mismatch: kscale must be > 0 (got -0.5 at twin 0, edge 7); "
                                                        "give every transistor a relative K > 0")):
        Mismatch(dvto, np.where(np.arange(8) == 7, -0.5, kscale))

def test_bad_parameters_are_refused():
    with pytest.raises(ValidationError, match=r"NmosParams.kp: must be a positive"):
        NmosParams(kp=-1.0)
    with pytest.raises(ValidationError, match=r"device.preset: unknown preset"):
        nmos_preset("ald9999")
    with pytest.raises(ValidationError, match=r"ResistorParams: need 0 < g_min < g_max"):
        ResistorParams(g_min=1.0, g_max=0.5)
    with pytest.raises(ValidationError, match=r"PotentiometerParams.n_taps"):
        PotentiometerParams(n_taps=1)
    # a count of taps: 100.0 was kept as a float, where Schedule.batch_size and the builders refuse one
    with pytest.raises(ValidationError, match=re.escape("PotentiometerParams.n_taps: must be a whole number (got "
                                                        "100.0); give an int")):
        PotentiometerParams(n_taps=100.0)
    assert PotentiometerParams(n_taps=np.int64(64)).conductance(63) == pytest.approx(1 / 40.0)


def test_nmos_preset_takes_a_name_of_the_devices_own():
    """name= clashed with the preset's own positional argument: "nmos_preset() got multiple values for argument
    'name'"."""
    mine = nmos_preset("ald1106-fit", name="my-nmos", vto=0.7)
    assert (mine.name, mine.vto, mine.kp) == ("my-nmos", 0.7, FIT.kp)
    assert nmos_preset("ald1106-fit", vto=0.7).name == "ald1106-fit (vto 0.7)"  # unnamed: the preset and what differs
    with pytest.raises(ValidationError, match=re.escape("NmosParams.name: must be text (got 5); give a string")):
        nmos_preset("ald1106-fit", name=5)


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
    assert (p.ld, p.is_) == (0.0, 1e-14)  # ngspice's defaults for what the card leaves out
    assert "mynmos" in p.model_text() and p.supports_mismatch  # level 1: V_T per card, K through the width
    shifted = p.mismatch_card("mynmos_3", 0.71)
    assert shifted == ".model mynmos_3 nmos (level=1 vto=0.71 kp=0.0001 lambda=0.05 gamma=0.5 phi=0.9)"
    level3 = tmp_path / "l3.lib"
    level3.write_text(".model fet3 nmos (level=3 vto=0.7 kp=5e-5 theta=0.1)\n")
    assert (card_level(nmos_from_card(level3)), nmos_from_card(level3).name) == (3, "card:l3.lib:level3")
    assert not nmos_from_card(level3).supports_mismatch
    assert nmos_from_card(level3).mismatch_refusal("device.mismatch").startswith(
        "device.mismatch: a level-3 model card (device.model_file) cannot be mismatched exactly")


@pytest.mark.parametrize("text, rd, rs", [
    ("rsh=50", 50.0, 50.0),  # our instances give no nrd, nrs: ngspice's 1 square each
    ("rd=10 rsh=50", 10.0, 50.0),  # a given rd wins over rsh
    ("rd=10 rs=0.02k", 10.0, 20.0),
    ("rd=0 rs=0 rsh=0", 0.0, 0.0),
])
def test_model_card_series_resistances_are_ngspices(tmp_path, text, rd, rs):
    card = tmp_path / "r.lib"
    card.write_text(f".model rfet nmos (level=1 vto=0.7 kp=5e-5 {text})\n")
    p = nmos_from_card(card)
    assert (p.rd, p.rs) == (rd, rs)
    assert p.model_text() == card.read_text().strip()  # the card itself goes to the netlist


def test_negative_series_resistance_is_refused(tmp_path):
    card = tmp_path / "neg.lib"
    card.write_text(".model rfet nmos (level=1 vto=0.7 kp=5e-5 rs=-5)\n")
    with pytest.raises(ConfigError, match=r"neg.lib: NmosParams: the series resistances rd and rs must be >= 0 ohm "
                                          r"\(got rd=0.0, rs=-5.0\); give 0 for none; fix the card"):
        nmos_from_card(card)
    with pytest.raises(ValidationError, match=r"NmosParams: the three-regime law has no model card, body effect, "
                                              r"lambda or series resistances .*rd=1.0"):
        nmos_preset("ald1106-hw", rd=1.0)


def _ngspice_output(tmp_path, lines: list[str]) -> str:
    path = tmp_path / "probe.cir"
    path.write_text("* what ngspice reads\n" + "\n".join(lines) + "\n.end\n")
    return run_batch_file(str(path))


def test_spice_numbers_read_as_ngspice_reads_them(tmp_path):
    """Each number is a resistor's value; ngspice prints the resistance it read, to 17 digits."""
    lines = [f"R{i} a 0 {raw}" for i, raw in enumerate(SPICE_NUMBERS)] + ["V1 a 0 1", ".control", "set numdgt=17"]
    lines += [f"print @r{i}[resistance]" for i in range(len(SPICE_NUMBERS))] + ["quit 0", ".endc"]
    out = _ngspice_output(tmp_path, lines)
    theirs = {int(i): float(v) for i, v in re.findall(r"@r(\d+)\[resistance\] = (\S+)", out)}
    assert sorted(theirs) == list(range(len(SPICE_NUMBERS)))
    for i, raw in enumerate(SPICE_NUMBERS):
        assert parse_number(raw, "test") == pytest.approx(theirs[i], rel=1e-14, abs=0), raw


def test_model_card_values_read_as_ngspice_reads_them(tmp_path):
    """``showmod`` of the transistor prints the parameters ngspice read from its card; ours must be the same."""
    card = (".model fet NMOS(LEVEL 1, VTO=0.7 KP=5E-5u\n+ lambda = 30milli gamma=0.5 PHI=0.65 ld=0.001mil, "
            "is=2e3a cgso=1nF)")
    ours = parse_model_card(card, "test").nmos_values()
    assert ours["ld"] == pytest.approx(25.4e-9) and ours["lambda_"] == pytest.approx(30 * 25.4e-6)
    out = _ngspice_output(tmp_path, [card, "M1 d g 0 0 fet w=10u l=10u", "V1 d 0 1", "V2 g 0 2", ".control",
                                     "showmod m1", "quit 0", ".endc"])
    theirs = {k: float(v) for k, v in re.findall(r"^\s*(vto|kp|lambda|gamma|phi|ld|is)\s+(\S+)\s*$", out, re.M)}
    assert len(theirs) == 7
    for name, field in (("vto", "vto"), ("kp", "kp"), ("lambda", "lambda_"), ("gamma", "gamma"), ("phi", "phi"),
                        ("ld", "ld"), ("is", "is_")):
        assert ours[field] == pytest.approx(theirs[name], rel=CARD_RTOL), name


def test_end_of_line_comments_of_a_card_are_dropped_as_ngspice_drops_them(tmp_path):
    """``;``, ``$ ``, ``//`` and ``--`` start a comment to the line's end in ngspice: the card file with them gives
    the parameters ngspice reads from it (``showmod``), and the text a netlist gets holds none of them."""
    text = (".model fet nmos (level=1 vto=0.7 kp=1e-4 ; lambda=0.5\n+ gamma=0.4 phi=0.6   $ body effect\n"
            "+ lambda=0.02 // channel length\n+ is=2e-14) -- junctions\n* the end; $ here is a comment line\n")
    (tmp_path / "fet.lib").write_text(text)
    card, parsed = load_model_card(tmp_path / "fet.lib")
    assert card == ".model fet nmos (level=1 vto=0.7 kp=1e-4\n+ gamma=0.4 phi=0.6\n+ lambda=0.02\n+ is=2e-14)"
    out = _ngspice_output(tmp_path, [*text.splitlines(), "M1 d g 0 0 fet w=10u l=10u", "V1 d 0 1", "V2 g 0 2",
                                     ".control", "showmod m1", "quit 0", ".endc"])
    theirs = {k: float(v) for k, v in re.findall(r"^\s*(vto|kp|lambda|gamma|phi|is)\s+(\S+)\s*$", out, re.M)}
    assert theirs == pytest.approx({name: parsed.given[name] for name in theirs}, rel=CARD_RTOL)
    assert sorted(theirs) == ["gamma", "is", "kp", "lambda", "phi", "vto"] and theirs["lambda"] == 0.02


@pytest.mark.parametrize("raw, fragment", [
    ("abc", r"f.lib: model card parameter vto is not a number \(got 'abc'\); write digits with an optional"),
    ("1k2", r"model card parameter vto is not a number \(got '1k2'\)"),
    ("e3", r"model card parameter vto is not a number \(got 'e3'\)"),
    ("1e999", r"model card parameter vto is not a finite number \(got '1e999'\); write a value within double"),
])
def test_bad_numbers_are_config_errors(raw, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_number(raw, "f.lib: model card parameter vto")


@pytest.mark.parametrize("card, fragment", [
    (".model m1 pmos (level=1)", r"f.lib: the card must read '.model NAME nmos \(...\)' with NAME a plain "
                                 r"identifier \(got '.model m1 pmos'\); write one such .model line"),
    (".model m1 nmos (level=1 vto=abc)", r"f.lib: model card parameter vto is not a number \(got 'abc'\)"),
    (".model m1 nmos (level=1 vto= kp=1e-4)", r"f.lib: model card parameter vto is not a number \(got 'kp'\)"),
    (".model m1 nmos (level=1 = 3)", r"f.lib: expected a parameter name \(got '='\); write name=value pairs"),
    (".model m1 nmos (level=1 vto)", r"f.lib: model card parameter vto has no value \(got 'vto' at the end of the "
                                     r"card\); write vto=<number>"),
    (".model m1 nmos (vto=0.7 vt0=0.9)", r"f.lib: model card parameter vto is given twice \(got 0.7 and 0.9\); keep"),
    (".model m1 nmos (level=8)", r"f.lib: model card level must be 1, 2 or 3 \(got level=8\); the native backend"),
    (".model m1 nmos (level=1 lamda=0.05)", r"f.lib: model card parameter lamda is not a level-1 MOS parameter "
                                            r"\(got lamda=0.05\); remove it or correct its spelling"),
    (".model m1 nmos (level=3 lambda=0.05)", r"model card parameter lambda is not a level-3 MOS parameter"),
    (".model m1 nmos (level=1 vto=0.7 pmos=1)", r"model card parameter pmos is not a level-1 MOS parameter"),
    (".model m1 nmos (level=1 vto=0.7 tox=1e-7 uo=500)", r"f.lib: model card parameters change the DC answer in "
                                                         r"ways the level-1 law does not model \(got tox=1e-07, "
                                                         r"uo=500\); remove them"),
    (".model m1 nmos (level=1 kp=5e-5 tox=1e-7 nsub=1e15)", r"does not model \(got nsub=1e\+15\)"),
    (".model m1 nmos (level=1 tnom=50)", r"does not model \(got tnom=50\)"),
])
def test_model_cards_outside_the_shared_rule_are_refused(card, fragment):
    """One rule for both backends: what the level-1 law cannot follow, and what ngspice would ignore, is refused."""
    with pytest.raises(ConfigError, match=fragment):
        parse_model_card(card, "f.lib")


def test_model_cards_the_law_follows_are_accepted():
    """Capacitances, noise, zero series resistances, tnom = 27 and process parameters whose results are given."""
    card = parse_model_card(".model m nmos (level=1 vto=0.7 kp=5e-5 gamma=0.4 phi=0.7 tox=1e-7 uo=500 nsub=1e15 "
                            "cgso=1n cj=2e-4 rd=0 rs=0 tnom=27 kf=1e-25)", "f.lib")
    assert (card.name, card.level, card.nmos_values()["kp"]) == ("m", 1, 5e-5)


def test_nmos_params_must_carry_their_cards_values():
    card = ".model fet nmos (level=1 vto=0.7 kp=5e-5)"
    with pytest.raises(ValidationError, match=r"NmosParams.vto: must equal the model card's value \(got 0.62, card "
                                              r"0.7\); build it with nmos_from_card"):
        NmosParams(model_card=card, model_name="fet")
    with pytest.raises(ValidationError, match=r"NmosParams.model_name: must be the card's model name \(got "
                                              r"'nmos_edge', card 'fet'\); build it with nmos_from_card"):
        NmosParams(vto=0.7, kp=5e-5, model_card=card)
    with pytest.raises(ConfigError, match=r"NmosParams.model_card: model card parameter vto is not a number"):
        NmosParams(model_card=".model nmos_edge nmos (vto=x)")


def test_model_card_values_the_device_refuses_name_the_file(tmp_path):
    card = tmp_path / "neg.lib"
    card.write_text(".model fet nmos (level=1 kp=-1e-4)\n")
    with pytest.raises(ConfigError, match=r"neg.lib: NmosParams.kp: must be a positive finite number "
                                          r"\(got -0.0001\); fix the card"):
        nmos_from_card(card)


def test_nmos_current_refuses_a_device_of_another_law():
    """nmos_current is the level-1 law: given ald1106-hw it answered level 1's 0 A below threshold, where the
    device's own three-regime law conducts (its subthreshold branch), and given a resistor, "no attribute 'phi'"."""
    hw = nmos_preset("ald1106-hw")
    below = hw.vto - 0.05  # V of gate overdrive below threshold, source at 0 V
    assert hw.channel_current(np.array(0.1), np.array(0.0), np.array(below)).current > 0
    with pytest.raises(ValidationError, match=re.escape("nmos_current: computes the level-1 law, and the device given "
                                                        "follows the three-regime law (got NmosParams 'ald1106-hw'); "
                                                        "use the device's own channel_current(va, vb, vg)")):
        nmos_current(hw, 0.1, 0.0, below)
    with pytest.raises(ValidationError, match=re.escape("follows no transistor law (got ResistorParams")):
        nmos_current(ResistorParams(), 0.1, 0.0, 1.5)
    assert nmos_current(FIT, 0.1, 0.0, below).current == 0.0


def test_an_instance_size_the_device_refuses_is_not_blamed_on_the_card(tmp_path):
    """A negative w given beside a good card read "c.lib: NmosParams.w: ...; fix the card", and a preset's name given
    as a list was Python's "unhashable type"."""
    card = tmp_path / "c.lib"
    card.write_text(".model fet nmos (level=1 vto=0.7 kp=1e-4)\n")
    with pytest.raises(ValidationError, match=r"^NmosParams.w: must be a positive finite number \(got -1e-05\)$"):
        nmos_from_card(card, w=-1e-5)
    with pytest.raises(ValidationError, match=re.escape("device.preset: unknown preset (got ['ald1106-fit']); choose "
                                                        "one of")):
        nmos_preset(["ald1106-fit"])
    assert nmos_from_card(card, w=20e-6).w == 20e-6


@pytest.mark.parametrize("text, fragment", [
    (".model m nmos (level=1)\nV1 a 0 dc 1\n", r"bad.lib:2: only comments, one '.model NAME nmos \(...\)' line"),
    (".model m nmos (level=1)\n.control\nshell rm -rf /\n.endc\n", "only comments"),
    (".model m nmos (level=1 vto=1) $x\n", r"bad.lib:1: '\$' has no place in a model card \(got '.model m nmos "
                                            r"\(level=1 vto=1\) \$x'\); remove it \(an end-of-line comment starts"),
    (".model m nmos (level=1 vto=1) `rm`\n", r"bad.lib:1: '`' has no place in a model card"),
    # a long line is shown elided with "...", not cut at 60 characters without a mark
    (".model m nmos (level=1 vto=1) $" + "x" * 500 + "\n", r"bad.lib:1: '\$' has no place in a model card \(got "
                                                         r"'.model m nmos \(level=1 vto=1\) \$x{6}\.\.\.x{38}'\); "),
    (".model m pmos (level=1)\n", "must read '.model NAME nmos"),
    ("* nothing here\n", r"bad.lib: expected exactly one .model line \(got 0\); keep one card per file"),
])
def test_model_card_cannot_inject_netlist_lines(tmp_path, text, fragment):
    card = tmp_path / "bad.lib"
    card.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_model_card(card)


def test_a_model_card_that_is_not_text_is_a_config_error(tmp_path):
    card = tmp_path / "binary.lib"
    card.write_bytes(b"\xff\xfe.model m nmos (level=1)\n")
    with pytest.raises(ConfigError, match=r"binary.lib: not UTF-8 text \(byte 0xff at offset 0\); "
                                          r"give a .model card in device.model_file$"):
        load_model_card(card)


def test_missing_model_card_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"absent.lib: cannot read the model card \(No such file or "
                                          r"directory\); check device.model_file"):
        nmos_from_card(tmp_path / "absent.lib")
