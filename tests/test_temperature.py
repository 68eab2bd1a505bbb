"""Circuit temperature (``simulator.temperature``): ngspice runs at it, the native solver applies ngspice's level-1
temperature equations (``NmosParams.at_temperature``), and both agree; device kinds without a temperature model
refuse any other temperature, naming the key and the kind."""

from __future__ import annotations

import re
import sys
from dataclasses import replace

import numpy as np
import pytest

from conftest import ROOT, cli, random_gates, xor_circuit
from metamaterial import circuit, devices
from metamaterial.configfile import load_config
from metamaterial.errors import ConfigError
from metamaterial.experiment import build
from metamaterial.netlist import to_spice
from metamaterial.runs import train_run
from metamaterial.sim.native import NativeSolver
from metamaterial.temperature import NOMINAL_CELSIUS
from metamaterial.transient import dc_point

sys.path.insert(0, str(ROOT / "scripts"))
from compare_backends import random_case  # noqa: E402 (the random circuits of the backend comparison)

TEMPERATURES = (-40.0, 125.0, 27.0)  # nominal last: ngspice must return to it after a hot or cold circuit
AGREEMENT_V = 1e-6
KCL_A = 1e-9
N_RANDOM = 12  # random transistor circuits, each at every temperature
TRAIN_EPOCHS = 100  # the 125 C XOR run amplifies solver-tolerance differences after ~140 epochs
XOR_POINTS = np.array([[0.0, 0.0], [0.0, 0.45], [0.45, 0.0], [0.45, 0.45]])


@pytest.mark.parametrize("preset", ["ald1106-fit", "ald1106-l1"])
def test_native_equals_ngspice_on_the_torus_at_every_temperature(ngspice, preset):
    c0 = xor_circuit(preset)
    gates = random_gates(c0.n_edges, 3)
    nominal = None
    for t in TEMPERATURES:
        c = replace(c0, temperature=t)
        for clamps in (None, np.tile([0.25, 0.1], (len(XOR_POINTS), 1))):
            ref = ngspice.solve(c, gates, XOR_POINTS, clamps).voltages
            ours = NativeSolver().solve(c, gates, XOR_POINTS, clamps).voltages
            assert np.max(np.abs(ref - ours)) <= AGREEMENT_V, (preset, t)
            fixed = None if clamps is None else c.clamp_nodes
            assert np.nanmax(np.abs(circuit.kcl_residuals(c, gates, ours, fixed=fixed))) <= KCL_A
        if t == NOMINAL_CELSIUS:
            nominal = ngspice.solve(c, gates, XOR_POINTS).voltages
    # the temperature moves the answer by millivolts, so agreement is not both backends ignoring it
    hot = ngspice.solve(replace(c0, temperature=125.0), gates, XOR_POINTS).voltages
    assert np.max(np.abs(hot - nominal)) > 1e-3


def test_native_equals_ngspice_on_random_circuits_at_every_temperature(ngspice):
    rng = np.random.default_rng(12)
    done = 0
    while done < N_RANDOM:
        case = random_case(rng)
        if not isinstance(case.circuit.device, devices.NmosParams):
            continue
        done += 1
        for t in TEMPERATURES:
            c = replace(case.circuit, temperature=t)
            ref = ngspice.solve(c, case.controls, case.inputs, case.clamps).voltages
            ours = NativeSolver().solve(c, case.controls, case.inputs, case.clamps).voltages
            assert np.max(np.abs(ref - ours)) <= AGREEMENT_V, (t, case.description)


def test_training_at_125_c_ends_with_the_same_gates_on_both_backends(tmp_path):
    cfg = load_config(ROOT / "configs" / "xor.yaml", [f"learning.epochs={TRAIN_EPOCHS}", "learning.eval_every=100",
                                                      "simulator.temperature=125"])
    runs = {b: train_run(cfg, tmp_path / b, backend=b, progress=False, plots=False) for b in ("ngspice", "native")}
    gates = {b: r.state.controls for b, r in runs.items()}
    assert np.max(np.abs(gates["native"] - gates["ngspice"])) <= AGREEMENT_V
    nominal = train_run(load_config(ROOT / "configs" / "xor.yaml", [f"learning.epochs={TRAIN_EPOCHS}"]),
                        tmp_path / "nominal", backend="native", progress=False, plots=False).state.controls
    assert np.max(np.abs(nominal - gates["native"])) > 1e-3, "the temperature must change the training"


def test_at_temperature_is_the_identity_at_27_c_and_moves_vto_kp_phi_the_known_way():
    fit = devices.PRESETS["ald1106-fit"]
    assert fit.at_temperature(27.0) is fit
    hot, cold = fit.at_temperature(125.0), fit.at_temperature(-40.0)
    # mobility ~ T^-1.5, threshold and surface potential fall with temperature, junction leakage rises steeply
    assert hot.kp == pytest.approx(fit.kp * (300.15 / 398.15) ** 1.5, rel=1e-12)
    assert cold.vto > fit.vto > hot.vto and cold.phi > fit.phi > hot.phi
    assert hot.is_ > 1e3 * fit.is_ > 1e6 * cold.is_
    # no body effect: dV_T/dT is the band-gap and phi terms alone, about -1 mV/K for this part
    assert (hot.vto - fit.vto) / 98.0 == pytest.approx(-1.0e-3, rel=0.1)


def test_netlist_states_the_temperature_only_away_from_27_c():
    c = xor_circuit()
    gates = random_gates(c.n_edges)
    assert ".options temp" not in to_spice(c, gates, XOR_POINTS[:1])
    text = to_spice(replace(c, temperature=-40.0), gates, XOR_POINTS[:1])
    assert ".options temp=-40.0\n" in text
    assert devices.PRESETS["ald1106-fit"].model_text() in text  # the nominal card: ngspice adjusts it itself


@pytest.mark.parametrize(("config", "sets", "message"), [
    ("xor.yaml", ["device.preset=ald1106-hw"], "simulator.temperature: the three-regime law (a behavioural source) "
                                               "has no temperature model both backends follow (got 85 C"),
    ("xor_linear.yaml", [], "simulator.temperature: a resistor edge has no temperature model in either backend (got "
                            "85 C with device.kind=resistor)"),
    ("pot_regression.yaml", [], "simulator.temperature: a potentiometer edge has no temperature model"),
])
def test_devices_without_a_temperature_model_refuse_one(config, sets, message):
    build(load_config(ROOT / "configs" / config, sets))  # nominal: accepted
    with pytest.raises(ValueError, match=re.escape(message)):
        build(load_config(ROOT / "configs" / config, [*sets, "simulator.temperature=85"]))


@pytest.mark.parametrize("value", ["-60", ".nan", "'hot'"])
def test_a_temperature_out_of_range_is_refused_naming_the_key(value):
    with pytest.raises(ConfigError, match=r"xor.yaml: --set simulator.temperature=.*: simulator.temperature: "):
        load_config(ROOT / "configs" / "xor.yaml", [f"simulator.temperature={value}"])


def test_cli_exits_2_naming_the_key_and_the_kind(tmp_path):
    proc = cli("netlist", str(ROOT / "configs" / "xor_linear.yaml"), "--out", str(tmp_path),
               "--set", "simulator.temperature=85")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "simulator.temperature: a resistor edge has no temperature model" in proc.stderr, proc.stderr
    proc = cli("netlist", str(ROOT / "configs" / "xor.yaml"), "--out", str(tmp_path), "--set",
               "simulator.temperature=200")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert ("xor.yaml: --set simulator.temperature=200: simulator.temperature: Input should be less than or equal to "
            "150 (got 200); give a value in range") in proc.stderr, \
        proc.stderr


def test_a_circuit_refuses_a_temperature_outside_the_range():
    with pytest.raises(ValueError, match=r"simulator.temperature: must be a temperature in C from -55 to 150 "
                                         r"\(got 151.0\)"):
        replace(xor_circuit(), temperature=151.0)


def test_a_level_2_card_refuses_a_non_nominal_temperature(tmp_path):
    card = tmp_path / "l2.mod"
    card.write_text(".model m2 nmos (level=2 vto=0.7 kp=5e-5)\n")
    dev = devices.nmos_from_card(card)
    assert dev.at_temperature(27.0) is dev
    with pytest.raises(ValueError, match="simulator.temperature: a level-2 model card has no temperature model"):
        dev.at_temperature(60.0)


def test_the_transient_netlist_runs_at_the_temperature_too(ngspice):  # ngspice: its program runs the netlist
    """The transient's own netlist (capacitances, drivers) states the temperature: its DC point equals native's."""
    for t in (125.0, -40.0):
        c = replace(xor_circuit(), temperature=t)
        gates = random_gates(c.n_edges, 1)
        ref = dc_point(c, gates, XOR_POINTS[2])
        ours = NativeSolver().solve(c, gates, XOR_POINTS[2:3]).voltages[0]
        assert np.max(np.abs(ref - ours)) <= AGREEMENT_V, t
