"""The learning hardware in one ngspice transient (metamaterial.learning_hardware) against the quasi-static
training loop: the continuous charging and the loop's Euler step agree to first order in the step, so their
difference shrinks in proportion to the rate, point by point (regression, cycle) and for XOR's full-batch hinge
(one window per point, the hinge's comparator closing the windows of the points the loop finds active); a
learning window that opens before the twins have settled parts them; a window counts as closed when its switch
was closed at all; the command line writes what it reports; what the transient does not model, and hardware whose
time scales or gate capacitor it cannot follow, is refused in one line."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import metamaterial.learning_hardware as lh
import metamaterial.transient as tr
from conftest import ROOT
from metamaterial.configfile import load_config
from metamaterial.costs import load_source, run_dir_config, timing_params
from metamaterial.errors import SimulationError, ValidationError
from metamaterial.experiment import build, initial_controls
from metamaterial.learning_hardware import (
    MAX_SLOTS,
    MAX_TIME_OVER_RISE,
    SWITCH_EDGE,
    check,
    compare,
    gate_capacitance,
    loop_windows,
    max_steps,
    plan_steps,
    quasi_static,
    run_learning,
    timing,
)
from metamaterial.sim.native import NativeSolver

REGRESSION = ROOT / "configs" / "regression.yaml"
XOR = ROOT / "configs" / "xor.yaml"
STEPS = 8                       # one pass over the regression's points
SLOW_RATES = (0.5, 0.05)        # alpha/eta (1/V): a tenth and a hundredth of the shipped 5
XOR_STEPS = 3                   # full-batch epochs: 12 learning windows, one per point
XOR_RATES = (3.0, 0.3)          # a tenth and a hundredth of the shipped 30 /V
GATE_OVERLAPS = 4e-13           # F: the two twins' gate-source and gate-drain capacitances (0.1 pF each)
#: "fast hardware": R 1 ohm and C 2 nF make t_learn 10 ns at rate 0.5, shorter than the network's settling
FAST = ["hardware.resistance=1", "hardware.capacitance=2e-9"]


def _run(overrides: list[str], steps: int = STEPS, config=REGRESSION):
    cfg = load_config(config, ["simulator.backend=native", *overrides])
    setup = build(cfg)
    start = initial_controls(setup, np.random.default_rng(cfg.seed))
    caps, periphery, _ = timing_params(cfg)
    tran = run_learning(setup, start, plan_steps(setup, steps, caps, periphery), caps, periphery)
    ref = quasi_static(setup, start, steps)
    return tran, ref, start


def test_transient_gates_follow_the_quasi_static_loop_to_first_order_in_the_rate():
    rel = []
    for rate in SLOW_RATES:
        tran, ref, start = _run([f"learning.rate={rate}"])
        agreement = compare(tran, ref, start)
        rel.append(agreement["relative"])
        assert agreement["max_moved_v"] > 0
        # the transient's own end of each window is where its waveform says
        np.testing.assert_allclose(tran.gates_after[-1], tran.gates[-1], atol=1e-9)
    assert rel[0] < 0.01 and rel[1] < 0.001
    assert 5 < rel[0] / rel[1] < 20  # a tenth of the rate, a tenth of the difference


def test_full_batch_hinge_opens_one_window_per_active_point_and_follows_the_loop():
    rel = []
    for rate in XOR_RATES:
        tran, ref, start = _run([f"learning.rate={rate}"], XOR_STEPS, XOR)
        setup = build(load_config(XOR))
        n = setup.task.n_points
        assert tran.plan.per_step == n and len(tran.active) == XOR_STEPS * n and ref.shape == (XOR_STEPS, 32)
        # the circuit's hinge closes the first step's windows of exactly the points the loop finds active
        free = NativeSolver().solve(setup.circuit, start, setup.task.inputs).voltages
        active = setup.task.margins(setup.circuit.output_values(free), setup.task.classes) < setup.rule.margin
        assert 0 < active.sum() < n  # both kinds of point, or the hinge goes untested
        np.testing.assert_array_equal(tran.active[:n], active)
        agreement = compare(tran, ref, start)
        assert agreement["max_moved_v"] > 0
        rel.append(agreement["relative"])
    assert rel[0] < 0.05 and rel[1] < 0.005
    assert 5 < rel[0] / rel[1] < 20


def test_a_window_that_opens_before_the_network_settles_parts_the_two():
    settled, ref, start = _run([f"learning.rate={SLOW_RATES[0]}", *FAST, "hardware.t_settle=1e-5"])
    early, _, _ = _run([f"learning.rate={SLOW_RATES[0]}", *FAST, "hardware.t_settle=0"])
    assert settled.plan.t_learn == pytest.approx(1e-8)
    apart, together = compare(early, ref, start)["relative"], compare(settled, ref, start)["relative"]
    assert apart > 0.1 and apart > 5 * together


def test_the_learning_command_writes_what_it_reports(tmp_path):
    out = tmp_path / "learning"
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "transient", str(REGRESSION), "--learning",
                           "--steps", "4", "--out", str(out), "--no-progress", "--set", "simulator.backend=native"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "learning.json").read_text())
    assert result["steps"] == 4 and result["quasi_static_backend"] == "native"
    assert result["windows"] == result["quasi_static_windows"] == 4 and result["partial_windows"] == 0
    assert result["switch_on_fraction"] == pytest.approx(1, abs=1e-9)
    assert "4 of 4 learning windows closed, each whole (no comparator under mse)" in proc.stdout
    with open(out / "learning_gates.csv") as f:
        rows = list(csv.DictReader(f))
    diff = max(abs(float(r["transient_v"]) - float(r["quasi_static_v"])) for r in rows)
    assert len(rows) == 4 * 32 and diff == pytest.approx(result["agreement"]["max_diff_v"], rel=1e-12)
    assert f"max difference {result['agreement']['max_diff_v']:.3g} V" in proc.stdout
    assert (out / "learning_gates.png").stat().st_size > 0
    # the netlist kept is the one ngspice ran: run as it is, its gates after the last step are the transient's
    alone = subprocess.run(["ngspice", "-b", str(out / "learning.cir")], cwd=tmp_path, capture_output=True,
                           text=True, timeout=600)
    assert alone.returncode == 0, alone.stderr
    gates = np.loadtxt(tmp_path / "gates.txt", skiprows=1)[-1, 1:33]
    last = [float(r["transient_v"]) for r in rows if int(r["step"]) == 3]
    np.testing.assert_allclose(gates, last, rtol=0, atol=1e-6)


def test_the_learning_command_runs_xors_full_batch_hinge(tmp_path):
    out = tmp_path / "xor"
    out.mkdir()
    (out / "learning_gates.png").write_bytes(b"an earlier run's figure")  # --no-plots removes it, and says so
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "transient", str(XOR), "--learning", "--steps", "1",
                           "--out", str(out), "--no-progress", "--no-plots", "--set", "simulator.backend=native"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "learning.json").read_text())
    assert result["schedule"] == "full_batch" and result["loss"] == "hinge" and result["slots"] == 4
    assert result["removed"] == ["learning_gates.png"] and not (out / "learning_gates.png").exists()
    assert "removed what an earlier run left there and this one did not write: learning_gates.png" in proc.stdout
    assert 0 < result["windows"] < 4  # the initial gates leave one point past the margin (see the test above)
    assert 0 <= result["partial_windows"] <= result["windows"] and result["quasi_static_windows"] > 0
    assert 0 < result["switch_on_fraction"] <= result["windows"] / 4
    assert result["switch_time_s"] == pytest.approx(4 * result["switch_on_fraction"] * result["t_learn_s"], rel=1e-12)
    assert (f"{result['windows']} of 4 learning windows closed, {result['partial_windows']} of them for part of the "
            f"window only (the switch was closed {result['switch_on_fraction']:.1%} of the windows' time); the "
            f"quasi-static loop opened {result['quasi_static_windows']}, each whole") in proc.stdout
    # train's clock for the same step counts the same slots: the transient adds to each its input rise and its
    # switch's edges (SWITCH_EDGE of t_learn), and says so
    run = tmp_path / "run"
    assert subprocess.run([sys.executable, "-m", "metamaterial", "train", str(XOR), "--backend", "native", "--no-plots",
                           "--no-progress", "--out", str(run), "--set", "learning.epochs=1"], cwd=ROOT, timeout=600,
                          capture_output=True).returncode == 0
    trained = json.loads((run / "summary.json").read_text())
    assert result["hardware_time_s"] == pytest.approx(trained["hardware_time_s"], rel=1e-12)
    assert result["learning_time_s"] == pytest.approx(trained["learning_time_s"], rel=1e-12)
    assert result["quasi_static_windows"] == trained["n_updates"]
    assert result["switch_edges_s"] == pytest.approx(SWITCH_EDGE * result["t_learn_s"], rel=1e-9)
    extra = result["simulated_time_s"] - result["hardware_time_s"]
    assert extra == pytest.approx(4 * (result["input_rise_s"] + result["switch_edges_s"]), rel=1e-9)
    assert result["simulated_time_s"] == pytest.approx(4 * result["slot_s"], rel=1e-12)
    assert (f"{result['simulated_time_s']:.4g} s simulated, 4 presented points of t_settle "
            f"{result['t_settle_s']:.3g} s + t_learn {result['t_learn_s']:.3g} s, each with its input rise"
            ) in proc.stdout
    assert f"train's clock counts {trained['hardware_time_s']:.4g} s for them" in proc.stdout



@pytest.fixture(scope="module")
def trained_xor(tmp_path_factory):
    """A run directory of XOR trained on the native backend: its hinge stops updating by epoch 210 (every point
    20 mV past its boundary), so 300 epochs leave the gates of the shipped 3000."""
    run = tmp_path_factory.mktemp("trained") / "run"
    assert subprocess.run([sys.executable, "-m", "metamaterial", "train", str(XOR), "--backend", "native",
                           "--no-plots", "--no-progress", "--out", str(run), "--set", "learning.epochs=300"],
                          cwd=ROOT, timeout=600).returncode == 0
    return run


def test_a_window_counts_as_closed_exactly_when_its_switch_moved_a_gate(trained_xor):
    """Trained XOR at 100 C: two points fall just short of their margin, so their windows close the switch and the
    live comparator opens it again within a quarter of the window. A count from one sample at mid-window saw none
    of them (0 of 8) while they moved a gate by 24 mV; the switch's on-time sees them all."""
    cfg = run_dir_config(trained_xor, ["simulator.temperature=100"])
    src = load_source(cfg, trained_xor)
    setup = src.setup()
    caps, periphery, _ = timing_params(cfg)
    tran = run_learning(setup, src.controls, plan_steps(setup, 2, caps, periphery), caps, periphery)
    plan = tran.plan
    start = np.array([plan.window_start(k) for k in range(len(plan.points))])
    ends = start + plan.t_learn * (1 + SWITCH_EDGE)
    moved = np.abs(np.stack([np.interp(ends, tran.time, g) - np.interp(start, tran.time, g)
                             for g in tran.gates.T])).max(axis=0)  # [slots] V
    assert moved.max() > 0.01
    np.testing.assert_array_equal(tran.active, moved > 1e-9)  # a window moved a gate iff its switch closed
    assert 0 < tran.windows == tran.partial_windows < len(plan.points)
    assert np.all(tran.on_fraction[tran.active] < 0.5) and np.all(tran.on_fraction[~tran.active] == 0)
    assert tran.switch_time == pytest.approx(tran.on_fraction.sum() * plan.t_learn, rel=1e-12)
    # the loop decides from the gates before the step, as the circuit's comparator does at its first window; then
    # its whole Euler step carries those points past their margin, where the circuit stopped at it
    ref = quasi_static(setup, src.controls, 2)
    loop = loop_windows(setup, src.controls, ref)
    n = plan.per_step
    np.testing.assert_array_equal(loop[:n], tran.active[:n])
    assert not (loop[n:] & tran.active[n:]).any()


def test_a_run_where_no_window_closes_says_so_instead_of_a_ratio(trained_xor):
    """Trained XOR has every point past its margin: no gate moves in either form, so there is no ratio to print
    (it was the difference over 1e-300 V, a 300-digit percentage)."""
    run = trained_xor
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "transient", str(run), "--learning", "--steps", "2",
                           "--no-progress", "--no-plots"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    agreement = next(line for line in proc.stdout.splitlines() if line.startswith("gates after each step"))
    assert "0 of 8 learning windows closed" in proc.stdout and agreement.endswith(
        "(no gate moved in the quasi-static loop either)") and "%" not in agreement
    assert json.loads((run / "learning" / "learning.json").read_text())["agreement"]["relative"] is None


@pytest.mark.parametrize("config, overrides, message", [
    ("xor", ["learning.schedule=shuffle"], r"learning_hardware: the learning transient presents the points in "
                                           r"order, one learning window each, on every edge; change "
                                           r"learning.schedule=shuffle \(use cycle or full_batch\)$"),
    ("xor", ["learning.update_probability=0.5"], r"on every edge; change learning.update_probability=0.5 \(use 1\)$"),
    ("iris", ["learning.schedule=cycle"], r"learning_hardware: the hinge in the transient compares one output "
                                          r"with its class levels \(got decode=argmax, 3 outputs\)"),
    ("regression", ["learning.leak.tau=1.0"], r"learning_hardware: leak, learning bias, read noise and a dead band "
                                              r"are not modelled"),
    ("regression", ["learning.dead_band=1e-4"], r"learning_hardware: leak, learning bias, read noise and a dead "
                                                r"band are not modelled"),
    ("regression", ["device.mismatch.vto_sigma=0.01"], r"learning_hardware: twin mismatch is not modelled"),
    ("regression", ["learning.update_edges=pushed"], r"learning_hardware: the learning transient charges every "
                                                     r"edge's gate \(got learning.update_edges=pushed\)"),
    ("regression", ["learning.rate_decay=0.9"], r"learning_hardware: the learning transient keeps one switch time, "
                                                r"one rate \(got learning.rate_decay=0.9\)"),
    ("xor_hardware", [], r"learning_hardware: device 'ald1106-hw' \(three-regime law\) has no capacitance model; use "
                         r"a level-1 preset \(ald1106-fit or ald1106-l1\) for the learning transient"),
])
def test_what_the_transient_does_not_model_is_refused(config, overrides, message):
    cfg = load_config(ROOT / "configs" / f"{config}.yaml", overrides)
    setup = build(cfg)
    caps, periphery, _ = timing_params(cfg)
    with pytest.raises(ValidationError, match=message):
        check(setup, caps, periphery)


@pytest.mark.parametrize("config, extra, message", [
    ("xor_hardware", [], "learning_hardware: device 'ald1106-hw' (three-regime law) has no capacitance model; use a "
                         "level-1 preset (ald1106-fit or ald1106-l1) for the learning transient"),
    # the --set to blame is named (configfile.set_by)
    # (a capacitance of 1e6 F is the config's refusal since: its t_learn 5e10 s is past hardware.t_learn's 1e6 s)
    ("regression", ["--set", "hardware.capacitance=1e-3"], "--set hardware.capacitance=1e-3: hardware.capacitance, "
     "hardware.gain, learning.rate: a "
     "presented point (input rise + t_settle + t_learn + the switch's edges, 1% of t_learn) must take at most "
     "1e+08 times timing.periphery.input_rise (1e-08 s) for "
     "ngspice to integrate its input ramps (measured: it aborts from 2e8, 'timestep too small') (got 50.5 s, "
     "5.1e+09 times, t_learn 50 s); lower hardware.capacitance or learning.rate, or raise hardware.gain, to a "
     "t_learn (rate R C / gain) of at most 0.99 s"),
    # 1e9 steps made a 30 GB array of slots (a MemoryError traceback)
    ("regression", ["--steps", "1000000000"], "--steps: the learning transient of this config takes at most 2,000 "
     "training steps: one transient presents at most 2,000 points (1 per step), each about 0.7 MB and 0.1 s "
     "(measured on XOR) (got 1,000,000,000); give --steps <= 2000"),
    ("xor", ["--steps", "200"], "--steps: the learning transient of this config takes at most 101 training steps: one "
     "transient runs at most 2.7e+10 input rises of 1e-08 s (270 s; 0.667 s per point, 4 per step), beyond which "
     "ngspice aborts at an input ramp (measured from 2.6e10: 'timestep too small') (got 200); give --steps <= 101"),
])
def test_the_learning_command_refuses_in_one_line(tmp_path, config, extra, message):
    path = ROOT / "configs" / f"{config}.yaml"
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "transient", str(path), "--learning", "--steps", "2",
                           "--no-progress", "--no-plots", "--out", str(tmp_path / "out"), *extra],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"metamaterial: {path}: {message}\n"
    assert not (tmp_path / "out").exists()


def _check(config: str, overrides: list[str]):
    cfg = load_config(ROOT / "configs" / f"{config}.yaml", overrides)
    caps, periphery, _ = timing_params(cfg)
    return check(build(cfg), caps, periphery)


@pytest.mark.parametrize("overrides, message", [
    # t_learn = rate R C / gain: 5 x 1 kohm x 1 F / 0.1 = 5e4 s, which ngspice aborted on after 5 s
    (["hardware.capacitance=1"], r"hardware.capacitance, hardware.gain, learning.rate: a presented point \(input rise "
                                 r"\+ t_settle \+ t_learn \+ the switch's edges, 1% of t_learn\) must take at most "
                                 r"1e\+08 times timing.periphery.input_rise \(1e-08 s\) "
                                 r".* \(got 5.05e\+04 s, 5.1e\+12 times, t_learn 5e\+04 s\); lower "
                                 r"hardware.capacitance or learning.rate, or raise hardware.gain, to a t_learn "
                                 r"\(rate R C / gain\) of at most 0.99 s$"),
    (["hardware.gain=1e-5"], r"hardware.capacitance, hardware.gain, learning.rate: .*\(got 1.11e\+03 s, 1.1e\+11 "
                             r"times, t_learn 1.1e\+03 s\)"),
    (["learning.rate=null", "hardware.t_learn=2"], r"hardware.t_learn: a presented point .*\(got 2.02 s, 2e\+08 "
                                                   r"times, t_learn 2 s\); give hardware.t_learn <= 0.99 s$"),
    (["hardware.t_settle=10"], r"hardware.t_settle: .*; give hardware.t_settle < 1 s$"),
    (["timing.periphery.input_rise=1e-10"], r"hardware.capacitance, hardware.gain, learning.rate: .*\(1e-10 s\).*"
                                            r"\(got 0.111 s, 1.1e\+09 times"),
    # the two twins' gate overlaps put 4 x 0.1 pF on the gate node: 1 fF parted the transient from the loop by 214 %
    (["hardware.capacitance=1e-15"], r"hardware.capacitance, timing.capacitances: must be at least 100 times the gate "
                                     r"capacitance of the edge's two transistors on its node, 4e-13 F, .* \(got 1e-15 "
                                     r"F, 0.0025 times\); give hardware.capacitance >= 4e-11 F, or smaller "
                                     r"timing.capacitances$"),
    (["hardware.capacitance=3.9e-11", "hardware.resistance=5.64e7"], r"\(got 3.9e-11 F, 97.5 times\)"),
    # the config left hardware.capacitance alone: the refusal named only it
    (["timing.capacitances.cgs=5e-7"], r"^hardware.capacitance, timing.capacitances: .* or smaller "
                                       r"timing.capacitances$"),
])
def test_hardware_the_transient_cannot_follow_is_refused_naming_the_key(overrides, message):
    with pytest.raises(ValidationError, match=message):
        _check("regression", overrides)


def test_the_limits_admit_the_shipped_configs_and_follow_the_device_capacitances(tmp_path):
    for config in ("regression", "xor", "parabola", "allostery"):
        _check(config, [])  # XOR's 0.66 s over 10 ns is 6.6e7 input rises
    _check("regression", ["hardware.capacitance=4e-11", "hardware.resistance=5.5e7"])  # 100 x 0.4 pF
    _check("regression", ["hardware.capacitance=1e-15", "timing.capacitances.cgs=0", "timing.capacitances.cgd=0"])
    card = tmp_path / "mine.lib"
    card.write_text(".model mine nmos (level=1 vto=0.62 kp=8.5e-4 cgso=5e-8 cgdo=5e-8 cgbo=1e-8)\n")
    cfg = load_config(REGRESSION, [f"device.model_file={card}"])
    dev = build(cfg).circuit.device
    assert gate_capacitance(build(cfg), *timing_params(cfg)[:1]) == pytest.approx(2 * (1e-7 * dev.w + 1e-8 * dev.l))
    with pytest.raises(ValidationError, match=r"hardware.capacitance, device.model_file: must be at least 100 times "
                                              r".* on its node, 2.2e-12 F.* or a card of smaller cgso, cgdo, cgbo or "
                                              r"oxide$"):
        _check("regression", [f"device.model_file={card}", "hardware.capacitance=1e-10"])


def test_the_limits_sit_where_the_transient_parts_from_its_model(monkeypatch):
    """The basis of the two limits, in ngspice: a gate capacitor of 100 times the transistors' gate capacitance keeps
    the regression ramp within a point of its usual agreement with the loop, 10 times parts them (the charge
    divides); XOR's transient runs at 1e8 input rises per presented point and aborts at 3e8."""
    monkeypatch.setattr(lh, "MIN_GATE_CAPACITOR_RATIO", 1.0)
    rel = {}
    for ratio in (100, 10):  # R holds t_learn at the shipped 0.11 s
        c = ratio * GATE_OVERLAPS
        tran, ref, start = _run([f"hardware.capacitance={c}", f"hardware.resistance={0.11 * 0.1 / 5 / c}"])
        rel[ratio] = compare(tran, ref, start)["relative"]
    usual = compare(*_run([]))["relative"]
    assert rel[100] - usual < 0.015 and rel[10] - usual > 0.1
    monkeypatch.setattr(lh, "MAX_PERIOD_OVER_RISE", 1e9)
    c_per_ratio = 1e-8 / (30 * 1e3 / 0.1)  # F of gate capacitor per input rise of t_learn at XOR's 30 /V
    _run([f"hardware.capacitance={1e8 * c_per_ratio}"], 2, XOR)
    with pytest.raises(SimulationError, match=r"learning_hardware: ngspice stopped at t = ") as err:
        _run([f"hardware.capacitance={3e8 * c_per_ratio}"], 2, XOR)
    Path(err.value.kept).unlink()


def test_one_transient_takes_at_most_max_slots_points_and_max_time_over_rise_rises():
    def most(config, overrides=()):
        cfg = load_config(ROOT / "configs" / f"{config}.yaml", list(overrides))
        setup = build(cfg)
        return max_steps(setup, timing(setup, timing_params(cfg)[1]))[0]

    assert most("regression") == MAX_SLOTS  # 2,000 slots of 0.111 s: 8.2e9 input rises
    assert most("xor", ["learning.rate=null", "hardware.t_learn=1e-4"]) == MAX_SLOTS // 4  # full batch: 4 per step
    assert most("xor") == int(MAX_TIME_OVER_RISE * 1e-8 / (0.66 * (1 + SWITCH_EDGE) + 1e-5 + 1e-8)) // 4 == 101
    # a larger network keeps more per slot (measured 7.4-8.8 MB at 288 edges: 2,000 slots would take 15-18 GB)
    assert most("xor", ["network.rows=12", "network.cols=12"]) == int(lh.LEARNING_MEMORY // (
        lh.SLOT_BYTES_PER_EDGE2 * 288 ** 2)) // 4 == 56
    cfg = load_config(REGRESSION)
    caps, periphery, _ = timing_params(cfg)
    with pytest.raises(ValidationError, match=r"steps: the learning transient of this config takes at most 2,000 "
                                              r"training steps: one transient presents at most 2,000 points \(1 per "
                                              r"step\), .* \(got 2,001\); give steps <= 2000"):
        plan_steps(build(cfg), MAX_SLOTS + 1, caps, periphery)


def test_a_transient_longer_than_max_time_over_rise_rises_aborts_in_ngspice(monkeypatch):
    """The basis of MAX_TIME_OVER_RISE: ngspice's time is absolute, and late in a long run an input ramp needs finer
    steps than it can take there. The regression ramp with 1 ns inputs (0.0909 s per point, 9e7 rises) runs its
    296 allowed steps through and aborts at 32 s (3.2e10 rises) of 400."""
    fast = ["timing.periphery.input_rise=1e-9", "hardware.capacitance=1.8e-6"]
    cfg = load_config(REGRESSION, fast)
    setup = build(cfg)
    allowed = max_steps(setup, timing(setup, timing_params(cfg)[1]))[0]
    assert allowed == 296
    tran, _, _ = _run(fast, allowed)
    assert tran.time[-1] == pytest.approx(allowed * tran.plan.period, rel=1e-9)
    monkeypatch.setattr(lh, "MAX_TIME_OVER_RISE", 1e12)
    with pytest.raises(SimulationError, match=r"learning_hardware: ngspice stopped at t = ") as err:
        _run(fast, 400)
    # the deck's own check ended ngspice (exit code 1) where it used to exit 0 after the aborted transient
    assert "Timestep too small" in err.value.log and "Error: the transient stopped at t = " in err.value.log
    Path(err.value.kept).unlink()


def test_steps_must_be_positive():
    cfg = load_config(REGRESSION)
    caps, periphery, _ = timing_params(cfg)
    with pytest.raises(ValidationError, match=r"learning_hardware: steps must be >= 1 \(got 0\)"):
        plan_steps(build(cfg), 0, caps, periphery)


def test_wrong_gates_and_unreadable_waveforms_are_errors(monkeypatch):
    cfg = load_config(REGRESSION)
    setup = build(cfg)
    caps, periphery, _ = timing_params(cfg)
    one = plan_steps(setup, 1, caps, periphery)
    with pytest.raises(ValidationError, match=r"learning_hardware: controls must have shape \(32,\) \(got \(3,\)\)"):
        run_learning(setup, np.ones(3), one, caps, periphery)
    monkeypatch.setattr(lh, "_run", lambda *_, **__: ("", "time v(g0)\n0 1\n"))
    with pytest.raises(SimulationError, match=r"learning_hardware: the waveform table has the wrong shape \(got "
                                              r"\(1, 2\)\)"):
        run_learning(setup, np.full(32, 3.0), one, caps, periphery)
    monkeypatch.undo()

    def stopped(path, timeout):  # ngspice ended the transient at its start, after writing what it had
        Path(path).with_name("gates.txt").write_text("time\n" + "0 " * (1 + 32 + 16) + "\n")
        return subprocess.CompletedProcess([], 1, "", "")

    monkeypatch.setattr(tr, "_run_ngspice", stopped)
    with pytest.raises(SimulationError, match=r"learning_hardware: ngspice stopped at t = 0 s of ") as err:
        run_learning(setup, np.full(32, 3.0), one, caps, periphery)
    Path(err.value.kept).unlink()


@pytest.mark.parametrize("schedule, per_step", [("cycle", 1), ("full_batch", 4)])
def test_the_loops_windows_solve_only_the_points_each_step_presents(monkeypatch, schedule, per_step):
    """Under the hinge the loop's windows are its decisions at the gates before each step: one solve of the points
    that step presents (one under cycle, all four of XOR's under full batch), and the same decisions as solving
    every point at every step."""
    cfg = load_config(XOR, ["simulator.backend=native", f"learning.schedule={schedule}"])
    setup = build(cfg)
    start = initial_controls(setup, np.random.default_rng(cfg.seed))
    steps = 6
    ref = quasi_static(setup, start, steps)
    solved = []
    solve = NativeSolver.solve

    def counted(self, c, controls, inputs, *args, **kwargs):
        solved.append(len(inputs))
        return solve(self, c, controls, inputs, *args, **kwargs)

    monkeypatch.setattr(NativeSolver, "solve", counted)
    windows = loop_windows(setup, start, ref)
    assert solved == [per_step] * steps
    monkeypatch.undo()
    task, c = setup.task, setup.circuit
    before = np.vstack([start[None], ref[:-1]])
    with NativeSolver() as solver:  # every point at every step, as the loop's windows were found before
        every = np.array([task.margins(c.output_values(solver.solve(c, g, task.inputs).voltages), task.classes)
                          for g in before]) < setup.rule.margin
    points = lh.slots(setup, steps)[0]
    np.testing.assert_array_equal(windows, every[np.arange(len(points)) // per_step, points])
    assert 0 < windows.sum()


def test_a_learning_run_checks_and_limits_once(monkeypatch, tmp_path):
    """The command's learning run checks the config, finds its step limit and builds the slots' timing once each."""
    from metamaterial.costs import learning_run

    calls = {"check": 0, "max_steps": 0, "timing": 0}

    def counting(name):
        real = getattr(lh, name)

        def wrapped(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)
        return wrapped

    for name in calls:
        monkeypatch.setattr(lh, name, counting(name))
    cfg = load_config(REGRESSION, ["simulator.backend=native"])
    result = learning_run(load_source(cfg, None), tmp_path, steps=2, plots=False, progress=False)
    assert calls == {"check": 1, "max_steps": 1, "timing": 1} and result["slots"] == 2
