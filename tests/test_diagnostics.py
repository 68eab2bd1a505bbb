"""Telling the user when learning cannot or did not happen (diagnostics), and device kinds' own defaults.

Real runs on ngspice produce each warning, and the physics each warning states is checked on the trained network:
outputs stay within the sources, a single-ended output never falls as its input rises, gates stop moving once hinge
training stops. One run produces none.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from metamaterial.configfile import load_config
from metamaterial.diagnostics import LOSS_ROSE, MIN_GAP_V, loss_rise_notes, source_extremes
from metamaterial.errors import ConfigError
from metamaterial.experiment import build, check_learnable, initial_controls
from metamaterial.runs import train_run
from metamaterial.sim.native import NativeSolver

XOR = ROOT / "configs" / "xor.yaml"
REGRESSION = ROOT / "configs" / "regression.yaml"
#: a single-input regression whose targets dip: no monotone network can follow it
DIP_X = [0.0, 0.06, 0.12, 0.18, 0.24, 0.3, 0.36, 0.42]
DIP_Y = [0.3, 0.2, 0.1, 0.05, 0.1, 0.2, 0.3, 0.35]
SHORT = 300  # epochs of the short runs
HELD = "is held by currents below 1e-09 A"  # diagnostics.leakage_warnings
#: XOR read single-ended at node (2, 2): its -87 mV label lies below every source and ground
SINGLE_ENDED_XOR = ["roles.outputs[0]=[2, 2]", f"learning.epochs={SHORT}", "learning.eval_every=10"]


def _train(tmp_path, config, overrides, name="run"):
    seen = []
    result = train_run(load_config(config, overrides), tmp_path / name, backend="ngspice", progress=False,
                       plots=False, on_warning=lambda kind, text: seen.append((kind, text)))
    return result, seen


def _outputs(result) -> np.ndarray:
    return np.array(result.summary["outputs_v"])


def test_single_ended_xor_is_refused_by_range_and_order_and_the_network_obeys_both(tmp_path):
    result, seen = _train(tmp_path, XOR, SINGLE_ENDED_XOR)
    warnings = result.summary["warnings"]
    assert [k for k, _ in seen if k == "warning"] == ["warning"] * len(warnings) and len(warnings) == 3, warnings
    assert warnings[0].startswith("task: point(s) 1, 2 cannot be classified correctly: point 1's class needs the "
                                  "output below -0.0435 V, but it can only lie in [0 V, 0.45 V]"), warnings[0]
    assert "the accuracy cannot exceed 50%" in warnings[0]
    assert warnings[1].startswith("task: points 0 and 1 cannot both be classified correctly"), warnings[1]
    # pushed below what it can reach, the output ends where every transistor at it is cut off
    assert warnings[2].startswith("output node (2, 2) (n10) at training point(s) ") and HELD in warnings[2]
    # what the warnings say, on the trained network: outputs inside the sources and ground, and a rising input
    # (point 0 = (0, 0) -> point 1 = (0, 0.45 V) and point 2 = (0.45 V, 0)) never lowers the output
    setup = build(load_config(XOR, SINGLE_ENDED_XOR))
    lo, hi = source_extremes(setup.circuit, setup.task.inputs)
    out = _outputs(result)[:, 0]
    assert np.all(out >= lo - 1e-9) and np.all(out <= hi + 1e-9), out
    assert out[1] >= out[0] - 1e-9 and out[2] >= out[0] - 1e-9 and out[3] >= max(out[1], out[2]) - 1e-9, out
    assert result.summary["accuracy"] <= 0.5


def test_a_dip_in_one_input_regression_is_refused_and_the_output_only_rises(tmp_path):
    overrides = [f"task.x={DIP_X}", f"task.y={DIP_Y}", f"learning.epochs={SHORT}"]
    result, _ = _train(tmp_path, REGRESSION, overrides)
    warning, held = result.summary["warnings"]
    assert HELD in held  # pushed down at the dip, the output ends where every transistor at it is cut off
    assert warning.startswith("task: single-ended output 0 cannot follow its targets: it must be at least as high "
                              "at point 3 (inputs (0.18) V) as at point 0 (inputs (0) V)"), warning
    floor = float(warning.split("the loss cannot fall below ")[1].split(" V^2")[0])
    assert floor == pytest.approx((0.3 - 0.05) ** 2 / 2 / 8, rel=1e-2)
    out = _outputs(result)[:, 0]
    assert np.all(np.diff(out) >= -1e-9), out  # the theorem the warning rests on, after 300 epochs of pushing
    assert result.summary["final_loss"] >= floor


def test_hardware_default_rate_barely_moves_the_gates_and_says_so(tmp_path):
    result, seen = _train(tmp_path, REGRESSION, ["learning.rate=null", f"learning.epochs={SHORT}"])
    (warning,) = result.summary["warnings"]
    assert ("warning", warning) in seen
    assert warning.startswith(f"the gate voltages barely moved: the largest change in {SHORT} epochs was "), warning
    assert "at learning.rate 0.00455 1/V (no learning.rate given: the hardware default gain t_learn / (R C)" in warning
    gates = np.loadtxt(tmp_path / "run" / "gates.csv", delimiter=",", skiprows=1)[:, 1:]
    moved = np.abs(gates[-1] - gates[0]).max()
    assert 0 < moved < 0.05 * 7.6
    assert f"was {moved:.3g} V" in warning
    assert result.summary["rate_per_v"] == pytest.approx(0.1 * 100e-6 / (1e3 * 2.2e-6))
    assert warning.endswith("and so would about as many times more epochs; set learning.rate, or learning.epochs "
                            "for a run kept short on purpose")


def test_a_zero_rate_is_named_as_taking_no_step_not_as_one_to_multiply(tmp_path):
    """learning.rate 0 (a network that is not to learn) takes no step: the warning says so and how to train, not
    that a rate some 1e299 times larger (still 0) would move the gates; and the gates did not move at all."""
    result, seen = _train(tmp_path, REGRESSION, ["learning.rate=0", "learning.epochs=5"])
    (warning,) = result.summary["warnings"]
    assert warning == ("the gate voltages barely moved: learning.rate is 0 1/V (learning.rate as given), so the rule "
                       "takes no step (none changed in 5 epochs); give a rate > 0 to train, or keep 0 for a network "
                       "that is not to learn"), warning
    gates = np.loadtxt(tmp_path / "run" / "gates.csv", delimiter=",", skiprows=1)[:, 1:]
    assert np.array_equal(gates[-1], gates[0])


def test_a_nudge_too_small_for_any_rate_is_named_as_what_to_raise(tmp_path):
    """A point's step grows with the nudge: at 1e-9 the rate that would move the gates is past the largest a config
    takes, so the warning names learning.nudge, not a rate the config would refuse; the gates did move, in
    proportion (1e-6 of what nudge 1e-3 moves them by, within 1 %)."""
    result, seen = _train(tmp_path, REGRESSION, ["learning.nudge=1e-9", "learning.epochs=20"])
    (warning,) = result.summary["warnings"]
    assert warning.endswith("that is past the largest learning.rate (1e+06 1/V): raise learning.nudge (now 1e-09), "
                            "with which a point's step grows, or the rate as far as it goes"), warning
    for nudge, name in (("1e-3", "full"), ("1e-9", "small")):
        _train(tmp_path, REGRESSION, [f"learning.nudge={nudge}", "learning.epochs=1"], name=name)
    gates = {n: np.loadtxt(tmp_path / n / "gates.csv", delimiter=",", skiprows=1)[:, 1:] for n in ("full", "small")}
    moved = [g[-1] - g[0] for g in gates.values()]
    np.testing.assert_allclose(moved[1] * 1e6, moved[0], rtol=0.01)


def test_under_a_hinge_barely_moved_gates_are_judged_by_the_accuracy_not_the_output_loss():
    """A hinge learns by its margins, and its output loss may rise meanwhile: gates that barely moved warn when the
    training accuracy did not rise, whatever the loss did, and not when it rose."""
    from metamaterial.diagnostics import moved_warnings

    device = build(load_config(XOR)).circuit.device
    start = np.full((1, 32), 1.0)
    moved = start + 1e-3
    common = dict(n_updates=np.array([5]), low=0.4, high=8.0, rate=0.5, rate_source="learning.rate", epochs=10)
    halved = (np.array([1e-2]), np.array([1e-3]))  # the loss fell tenfold
    (warning,) = moved_warnings(device, start, moved, losses=halved, accuracies=(np.array([0.5]), np.array([0.5])),
                                **common)
    assert "the training accuracy went from 50.0% to 50.0%, at learning.rate 0.5 1/V" in warning, warning
    risen = moved_warnings(device, start, moved, losses=(np.array([1e-3]), np.array([1e-2])),
                           accuracies=(np.array([0.5]), np.array([0.75])), **common)
    assert risen == []
    assert moved_warnings(device, start, moved, losses=halved, **common) == []  # without a hinge: the loss halved


def test_hinge_stop_is_noted_at_the_epoch_the_gates_stop(tmp_path):
    result, seen = _train(tmp_path, XOR, [])
    assert result.summary["warnings"] == [] and result.summary["success"]
    (note,) = result.summary["notes"]
    assert ("note", note) in seen
    epoch = int(note.split("stopped updating by epoch ")[1].split(" ")[0])
    assert 0 < epoch < 3000, note
    # a wider margin is suggested within what XOR's labels let a point reach (learning.margin refuses more)
    assert note.endswith("or raise learning.margin to train on towards a wider margin, below 0.0435 V, half the gap "
                         "between the labels)"), note
    gates = np.loadtxt(tmp_path / "run" / "gates.csv", delimiter=",", skiprows=1)
    after = gates[gates[:, 0] >= epoch, 1:]
    before = gates[gates[:, 0] == epoch - 10, 1:]  # record_every = eval_every = 10 in xor.yaml
    assert np.all(after == after[0]), "gates moved after the noted epoch"
    assert np.any(before != after[0]), "gates had already stopped one evaluation earlier"


def test_an_ensemble_whose_seeds_change_nothing_says_so_and_one_that_draws_does_not(tmp_path):
    """regression.yaml starts every replica from one constant gate and cycles its points in order: on ngspice the
    replicas end within ~1e-10 V of each other, one run repeated, and the note says so; drawing the initial gates
    makes them differ and the note goes."""
    from metamaterial.runs import ensemble_run  # noqa: PLC0415

    cfg = load_config(REGRESSION, ["learning.epochs=30"])
    same = ensemble_run(cfg, tmp_path / "same", 2, progress=False)
    (note,) = same["notes"]
    assert note.startswith("the 2 replicas started with identical gates and ended within 1 uV of each other")
    with np.load(tmp_path / "same" / "checkpoint.npz") as z:
        assert np.abs(z["controls"][0] - z["controls"][1]).max() <= 1e-6
    cfg = load_config(REGRESSION, ["learning.epochs=30", "learning.init={kind: uniform, low: 2.0, high: 4.0}"])
    assert ensemble_run(cfg, tmp_path / "drawn", 2, progress=False)["notes"] == []


def test_an_output_held_by_leakage_is_named_and_moves_with_gmin_where_the_network_does_not(tmp_path):
    """Trained regression.yaml's output sits on the ramp's flat end (points 5-7) where every transistor at it is
    cut off: the warning names those points, and there the output follows gmin (1e-12 -> 1e-9 S moves it by 1.6
    mV) while at the other points the network holds it (2-33 uV, the most next to the flat end)."""
    result, _ = _train(tmp_path, REGRESSION, [])
    (held,) = result.summary["warnings"]
    assert held.startswith("output node (2, 2) (n10) at training point(s) 5, 6, 7 ") and HELD in held
    with np.load(tmp_path / "run" / "checkpoint.npz") as z:
        gates = z["controls"][0]
    out = {}
    for gmin in (1e-12, 1e-9):
        setup = build(load_config(REGRESSION, [f"simulator.gmin={gmin}"]))
        out[gmin] = setup.circuit.output_values(NativeSolver().solve(setup.circuit, gates,
                                                                      setup.task.inputs).voltages)[:, 0]
    moved = np.abs(out[1e-9] - out[1e-12])
    assert moved[5:].min() > 1e-3 and moved[:5].max() < 5e-5, moved


def test_a_loss_that_rose_after_its_best_epoch_is_noted_and_a_run_stopped_there_ends_at_it(tmp_path):
    """regression.yaml past its 2,000 epochs: its MSE is lowest near epoch 1,800 and 20x higher by 5,000
    (docs/physics.md 4.2). The note names the epoch; the same run stopped there ends at the lowest loss."""
    sets = ["learning.epochs=5000", "learning.eval_every=100", "learning.record_every=100"]
    long = train_run(load_config(REGRESSION, sets), tmp_path / "long", backend="native", plots=False)
    (note,) = long.summary["notes"]
    assert note.startswith("the output loss was lowest at epoch ") and "the epochs after made it worse" in note
    best = int(note.split("lowest at epoch ")[1].split(" ")[0])
    lowest = min(row["loss"][0] for row in long.state.history)
    assert long.summary["final_loss"] > LOSS_ROSE * lowest and f"learning.epochs={best} ends at its lowest" in note
    assert (long.summary["lowest_loss"], long.summary["lowest_loss_epoch"]) == (lowest, best)  # summary.json
    short = train_run(load_config(REGRESSION, [*sets, f"learning.epochs={best}"]), tmp_path / "short",
                      backend="native", plots=False)
    assert short.summary["final_loss"] == lowest and short.summary["notes"] == []


def test_an_ensemble_counts_the_replicas_whose_loss_rose():
    history = [{"epoch": e, "loss": np.array(losses)} for e, losses in
               ((0, [1.0, 1.0, 1.0]), (10, [0.1, 0.5, 0.2]), (20, [0.3, 0.4, 0.5]))]
    assert loss_rise_notes(history, 20) == ["the output loss ended more than 2x above its lowest in 2 of 3 replicas "
                                            "(median epoch of the lowest 10 of 20)"]
    assert loss_rise_notes(history, 30) == []  # stopped before its end: nothing to say of the epochs after


def test_a_run_that_learns_has_no_warnings_or_notes(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "train", str(REGRESSION), "--out",
                           str(tmp_path / "run"), "--no-plots", "--set", f"learning.epochs={SHORT}"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "warning:" not in proc.stderr and "note:" not in proc.stderr, proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["warnings"] == [] and summary["notes"] == []
    assert summary["final_loss"] < summary["initial_loss"] / 2


def test_cli_prints_warnings_on_stderr_and_records_them(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "train", str(XOR), "--out", str(tmp_path / "run"),
                           "--no-plots", *[a for o in SINGLE_ENDED_XOR for a in ("--set", o)]],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning: ")]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert [ln.removeprefix("warning: ") for ln in lines] == summary["warnings"] and len(lines) == 3


# -- device.kind changed alone: defaults follow the kind, explicit values of another kind are errors ------------------
def test_resistor_kind_on_the_xor_config_names_each_key_of_the_other_kind(tmp_path):
    kind = ["device.kind=resistor"]
    with pytest.raises(ConfigError, match=r"learning.bounds, device.kind: resistor controls must lie in \[1e-05, "
                                          r"0.01\] S \(got \[0.4, 8\]\)"):
        build(load_config(XOR, kind))
    with pytest.raises(ConfigError, match=r"learning.init.low, learning.bounds: resistor initial controls must lie "
                                          r"within the bounds \[1e-05, 0.01\] S \(got 0.5\)"):
        build(load_config(XOR, [*kind, "learning.bounds=null"]))
    with pytest.raises(ConfigError, match=r"learning.init.value, learning.bounds: resistor initial controls must lie "
                                          r"within the bounds \[1e-05, 0.01\] S \(got 3\)"):
        build(load_config(XOR, [*kind, "learning.bounds=null", "learning.init={kind: constant, value: 3.0}"]))
    setup = build(load_config(XOR, [*kind, "learning.bounds=null", "learning.init={}"]))
    assert (setup.dynamics.low, setup.dynamics.high) == (1e-5, 1e-2)
    g = initial_controls(setup, np.random.default_rng(0))
    assert np.all((g > 1e-5) & (g < 1e-2)) and np.ptp(g) > 1e-3  # drawn in the kind's range, not clipped to it
    (warning,) = check_learnable(setup)  # rate 30 is 1/V for gates; as S/V^2 one update spans the range 600 times
    assert warning.startswith("learning.rate: 30 S/V^2 lets one update move a resistor control by up to 6.08 S"), \
        warning
    assert check_learnable(build(load_config(XOR, [*kind, "learning.bounds=null", "learning.init={}",
                                                   "learning.rate=0.05"]))) == []


@pytest.mark.parametrize("sets, message", [
    ([], "--set device.kind=resistor: learning.bounds, device.kind: resistor controls must lie in [1e-05, 0.01] S "
         "(got [0.4, 8])"),
    (["learning.bounds=null"], "--set learning.bounds=null: learning.init.low, learning.bounds: resistor initial "
                               "controls must lie within the bounds"),
    (["learning.bounds=[1e-4, 0.02]"], "--set learning.bounds=[1e-4, 0.02]: learning.bounds, device.kind: resistor "
                                       "controls must lie in [1e-05, 0.01] S (got [0.0001, 0.02])"),
    (["learning.bounds=null", "learning.init={}", "learning.rate=null"], "--set learning.rate=null: learning.rate, "
                                                                          "device.kind: a resistor network needs an "
                                                                          "explicit rate in S/V^2 (got none); give "
                                                                          "learning.rate, e.g. 0.01"),
])
def test_resistor_kind_from_the_command_line_exits_2_naming_the_key(tmp_path, sets, message):
    """``--set device.kind=resistor`` alone on the XOR config: its gate-volt bounds, then its gate-volt initial
    values, then an explicit range too wide for resistors, then a missing rate (no default in S/V^2), each named."""
    args = [a for o in ["device.kind=resistor", *sets] for a in ("--set", o)]
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "train", str(XOR), "--out", str(tmp_path / "run"),
                           *args], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and message in proc.stderr, proc.stderr
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_resistor_kind_from_the_command_line_takes_the_kinds_defaults(tmp_path):
    """With the gate-volt values removed, the resistor's own bounds and initial range are used and saved."""
    sets = ["device.kind=resistor", "learning.bounds=null", "learning.init={}", "learning.rate=0.05",
            "learning.epochs=2", "learning.eval_every=1", "learning.record_every=1"]
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "train", str(XOR), "--out", str(tmp_path / "run"),
                           "--no-plots", *[a for o in sets for a in ("--set", o)]],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0 and "warning:" not in proc.stderr, proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["rate_unit"] == "S/V^2" and summary["warnings"] == []
    gates = np.loadtxt(tmp_path / "run" / "gates.csv", delimiter=",", skiprows=1)[:, 1:]
    assert np.all((gates >= 1e-5) & (gates <= 1e-2)) and np.ptp(gates[0]) > 1e-3  # drawn over the kind's range


def test_gaps_below_a_millivolt_are_not_reported(tmp_path):
    y = [0.1, 0.2, 0.3, 0.3 - MIN_GAP_V / 2, 0.35, 0.4, 0.41, 0.42]
    assert check_learnable(build(load_config(REGRESSION, [f"task.x={DIP_X}", f"task.y={y}"]))) == []


def test_a_gate_rate_on_resistors_warns_and_the_conductances_do_jump_between_the_bounds(tmp_path):
    sets = ["device.kind=resistor", "learning.bounds=null", "learning.init={}", "learning.epochs=20",
            "learning.eval_every=10", "learning.record_every=10"]
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "train", str(XOR), "--out", str(tmp_path / "run"),
                           "--no-plots", *[a for o in sets for a in ("--set", o)]],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning: ")]
    assert line.startswith("warning: learning.rate: 30 S/V^2 lets one update move a resistor control by up to "), line
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["warnings"] == [line.removeprefix("warning: ")] and summary["rate_unit"] == "S/V^2"
    gates = np.loadtxt(tmp_path / "run" / "gates.csv", delimiter=",", skiprows=1)[:, 1:]
    assert np.all((gates[0] > 1e-5) & (gates[0] < 1e-2))  # drawn inside the resistor's range ...
    at_bounds = np.isclose(gates[-1], 1e-5, rtol=1e-9) | np.isclose(gates[-1], 1e-2, rtol=1e-9)
    assert at_bounds.mean() > 0.5, gates[-1]  # ... and thrown onto its bounds by updates larger than the range
