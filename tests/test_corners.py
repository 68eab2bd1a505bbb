"""Process corners (``device.corner``, ``device.corners``): the corner's V_T and K reach both backends identically
(the netlist carries the shifted card, the native law the same values), together with temperature and mismatch;
bad corners are refused naming the key."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from metamaterial import devices
from metamaterial.configfile import load_config
from metamaterial.errors import ConfigError
from metamaterial.experiment import build
from metamaterial.netlist import num, to_spice
from metamaterial.sim.native import NativeSolver

XOR = ROOT / "configs" / "xor.yaml"
AGREEMENT_V = 1e-6
GATES_SEED = 5
FIT = devices.PRESETS["ald1106-fit"]


def _setup(*sets: str):
    return build(load_config(XOR, list(sets)))


def _gates(n: int) -> np.ndarray:
    return np.random.default_rng(GATES_SEED).uniform(0.5, 3.0, n)


@pytest.mark.parametrize(("corner", "dvto", "k"), [("slow", 0.1, 0.8), ("fast", -0.1, 1.2)])
def test_the_netlist_carries_the_shifted_card(corner, dvto, k):
    s = _setup(f"device.corner={corner}")
    text = to_spice(s.circuit, _gates(s.circuit.n_edges), s.task.inputs[:1])
    assert f"vto={num(FIT.vto + dvto)} kp={num(FIT.kp * k)} " in text
    assert s.circuit.law.beta == pytest.approx(FIT.beta * k, rel=1e-15)


def test_a_user_corner_shifts_a_level_1_card_and_keeps_its_other_parameters(tmp_path):
    card = tmp_path / "l1.mod"
    card.write_text("* a level-1 card\n.model mine nmos (level=1 vto=0.7 kp=5e-5 gamma=0.4 phi=0.7 cbd=1p)\n")
    s = _setup(f"device.model_file={card}", "device.corners={cold: {vto_shift: 0.05, k_scale: 1.5}}",
               "device.corner=cold")
    text = to_spice(s.circuit, _gates(s.circuit.n_edges), s.task.inputs[:1])
    assert f".model mine nmos (level=1 vto={num(0.7 + 0.05)} kp={num(5e-5 * 1.5)} gamma=0.4 phi=0.7 cbd=1e-12)" in text
    assert s.circuit.device.name == "card:l1.mod:cold"


@pytest.mark.parametrize(("sets", "temperature"), [
    (["device.corner=slow"], -40.0), (["device.corner=fast"], 125.0), (["device.corner=typical"], 27.0),
    (["device.corner=slow", "device.preset=ald1106-l1"], 125.0),
    (["device.corner=fast", "device.mismatch.vto_sigma=0.01", "device.mismatch.k_sigma=0.005"], -40.0),
    (["device.corners={mine: {vto_shift: 0.2, k_scale: 0.5}}", "device.corner=mine", "device.preset=ald1106-hw"], 27.0),
])
def test_native_equals_ngspice_at_corners_and_temperatures(ngspice, sets, temperature):
    s = _setup(*sets, f"simulator.temperature={temperature}")
    c, x = s.circuit, s.task.inputs
    gates = _gates(c.n_edges)
    clamps = np.tile([0.25, 0.1], (len(x), 1))
    for phase in (None, clamps):
        ref = ngspice.solve(c, gates, x, phase).voltages
        ours = NativeSolver().solve(c, gates, x, phase).voltages
        assert np.max(np.abs(ref - ours)) <= AGREEMENT_V, sets
    typical = NativeSolver().solve(_setup(f"simulator.temperature={temperature}").circuit, gates, x).voltages
    if "device.corner=typical" not in sets:
        assert np.max(np.abs(typical - NativeSolver().solve(c, gates, x).voltages)) > 1e-3, "the corner must matter"


def test_mismatch_is_drawn_around_the_corner():
    s, t = _setup("device.corner=slow", "device.mismatch.vto_sigma=0.01"), _setup("device.mismatch.vto_sigma=0.01")
    (vto_s, beta_s), (vto_t, beta_t) = s.circuit.transistor_params(0), t.circuit.transistor_params(0)
    np.testing.assert_allclose(vto_s - vto_t, 0.1, atol=1e-12)
    np.testing.assert_allclose(beta_s / beta_t, 0.8, rtol=1e-12)


@pytest.mark.parametrize(("sets", "message"), [
    (["device.corner=slowest"], "xor.yaml: --set device.corner=slowest: device.corner: unknown corner (got "
                                "'slowest'); choose one of typical, slow, fast, or define it under device.corners"),
    (["device.corners={fast: {vto_shift: -0.2}}"], "xor.yaml: --set device.corners={fast: {vto_shift: -0.2}}: "
                                                   "device.corners: fast is a built-in corner"),
    (["device.corners={hot: {k_scale: -1}}"], "xor.yaml: --set device.corners={hot: {k_scale: -1}}: "
                                              "device.corners.hot.k_scale: Input should be greater than 0 (got -1); "
                                              "give a value in range"),
    (["device.corners={hot: {vto_shift: 2}}"], "xor.yaml: --set device.corners={hot: {vto_shift: 2}}: "
                                               "device.corners.hot.vto_shift: Input should be less than or equal to 1"),
    # it read device.corners.1x.[key], pydantic's name for a mapping's key
    (["device.corners={'1x': {}}"], "xor.yaml: --set device.corners={'1x': {}}: device.corners.1x: String should "
                                    "match pattern '^[A-Za-z][A-Za-z0-9_-]{0,31}$' (got '1x'); give a name that "
                                    "matches it"),
])
def test_bad_corners_are_refused_naming_the_key(sets, message):
    with pytest.raises(ConfigError) as err:
        load_config(XOR, sets)
    assert message in str(err.value)


def test_kinds_without_corners_refuse_one(tmp_path):
    with pytest.raises(ValueError, match="device.corner: a resistor network has no transistors"):
        build(load_config(ROOT / "configs" / "xor_linear.yaml", ["device.corner=fast"]))
    card = tmp_path / "l3.mod"
    card.write_text(".model m3 nmos (level=3 vto=0.7 kp=5e-5)\n")
    with pytest.raises(ValueError, match="device.corner: a level-3 model card cannot be moved to a corner"):
        _setup(f"device.model_file={card}", "device.corner=slow")


def test_cli_exits_2_on_a_bad_corner_and_a_sweep_axis_over_corners_validates(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "netlist", str(XOR), "--out", str(tmp_path / "n"),
                           "--set", "device.corner=medium"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "xor.yaml: --set device.corner=medium: device.corner: unknown corner (got 'medium')" in proc.stderr, \
        proc.stderr
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "sweep", str(ROOT / "configs" / "sweeps" /
                                                                             "corners.yaml"),
                           "--out", str(tmp_path / "s"), "--dry-run"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("\t") for line in proc.stdout.splitlines() if line[:1].isdigit()]
    assert {(r[3], r[4]) for r in rows} == {(f'"{c}"', f"{t:.1f}") for c in ("slow", "typical", "fast")
                                            for t in (-40, 27, 125)}
