"""Malformed configs: each gives exit code 2 and one line naming the file and key; none reaches ngspice."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import CONFIGS, ROOT
from metamaterial.cli import _parser, config_overrides
from metamaterial.config import T_LEARN, validate_config
from metamaterial.configfile import apply_override, config_differences, dump_config, load_config, load_saved_config
from metamaterial.errors import SHOWN_MAX, ConfigError, ValidationError, shown
from metamaterial.experiment import build
from metamaterial.sweep import load_sweep
from metamaterial.sweep.execute import seed_free
from metamaterial.tasks import REGRESSION_X, REGRESSION_Y, iris_task

XOR = yaml.safe_load((ROOT / "configs" / "xor.yaml").read_text())


def _edit(path: str, value, base=None) -> dict:
    doc = yaml.safe_load(yaml.safe_dump(base or XOR))
    node = doc
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node.setdefault(k, {})
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[int(keys[-1]) if isinstance(node, list) else keys[-1]] = value
    return doc


_DELETE = object()
REG = yaml.safe_load((ROOT / "configs" / "regression.yaml").read_text())
CSV = yaml.safe_load((ROOT / "configs" / "csv_example.yaml").read_text())
CSV["task"]["path"] = str(ROOT / "configs" / CSV["task"]["path"])  # the config is written elsewhere
ALLOSTERY = yaml.safe_load((ROOT / "configs" / "allostery.yaml").read_text())
POT = yaml.safe_load((ROOT / "configs" / "pot_regression.yaml").read_text())
DIGITS = yaml.safe_load((ROOT / "configs" / "digits.yaml").read_text())

# (id, document or raw text, extra CLI args, fragment the one-line message must contain)
CASES = [
    ("yaml-syntax", "name: xor\nroles: [unclosed\n", [], "invalid YAML"),
    ("top-level-list", "- 1\n- 2\n", [], "top level must be a mapping"),
    ("unknown-top-key", {**XOR, "learnig": {}}, [], "learnig: unknown key"),
    ("unknown-nested-key", _edit("learning.nudg", 0.5), [], "learning.nudg: unknown key"),
    ("wrong-type", _edit("learning.epochs", "many"), [], "yaml: learning.epochs: Input should be a valid integer (got "
     "'many'); give a whole number"),
    ("nudge-out-of-range", _edit("learning.nudge", 1.5), [], "yaml: learning.nudge: Input should be less than or equal "
     "to 1 (got 1.5); give a value in range"),
    ("negative-rate", _edit("learning.rate", -3), [], "yaml: learning.rate: Input should be greater than or equal to 0 "
     "(got -3); give a value in range"),
    ("node-off-lattice", _edit("roles.inputs.0", [5, 5]), [], "roles.inputs[0], network.rows, network.cols: node "
     "(5, 5) is outside"),
    ("node-index-missing", _edit("roles.inputs.0", 99), [], "roles.inputs[0]: node 99 does not exist (nodes are "
     "0..15); give an index from 0 to 15"),
    ("duplicate-role", _edit("roles.inputs.0", [1, 1]), [], "already has role"),
    ("missing-section", _edit("task", _DELETE), [], "task: required key is missing; add it"),
    ("unknown-task", _edit("task.name", "sudoku"), [], "task.name: Input should be 'xor', 'regression', "
     "'linear_regression', 'allostery', 'iris', 'digits' or 'csv' (got 'sudoku'); choose one of them"),
    ("unknown-preset", _edit("device.preset", "ald9999"), [], "device.preset: Input should be 'ald1106-fit', "
     "'ald1106-hw' or 'ald1106-l1' (got 'ald9999'); choose one of them"),
    ("bounds-reversed", _edit("learning.bounds", [8.0, 0.4]), [], "learning.bounds"),
    ("name-injection", _edit("name", "xor\n.control\nshell touch /tmp/pwned\n.endc"), [], "name: must be a plain name"),
    ("rail-not-number", _edit("roles.rails.0.volts", ".endc"), [], "roles.rails[0].volts: Input should be a valid "
     "number (got '.endc'); give a number in SI units (0.6, 6e-1; no SPICE suffixes like 600m)"),
    ("rail-infinite", _edit("roles.rails.0.volts", float("inf")), [], "roles.rails[0].volts: Input should be a finite "
     "number (got inf); give a finite number (not .nan or .inf)"),
    # a key a --set gave was blamed on the file, which holds another value (or none)
    ("kp-absurd", XOR, ["--set", "device.params.kp=1e300"], "yaml: --set device.params.kp=1e300: device.params.kp: "
     "Input should be less than or equal to 1 (got 1e+300); give a value in range"),
    ("leak-rest-nan", XOR, ["--set", "learning.leak={tau: 1, rest: .nan}"], "yaml: --set learning.leak={tau: 1, rest: "
     ".nan}: learning.leak.rest: Input should be a finite number (got nan); give a finite number (not .nan or .inf)"),
    ("set-epochs-not-a-number", XOR, ["--set", "learning.epochs=abc"], "yaml: --set learning.epochs=abc: "
     "learning.epochs: Input should be a valid integer (got 'abc'); give a whole number"),
    # a --set of another key does not take the blame for the file's
    ("file-error-beside-a-set", _edit("learning.epochs", "many"), ["--set", "learning.nudge=0.2"],
     "yaml: learning.epochs: Input should be a valid integer (got 'many'); give a whole number"),
    # YAML reads an empty value as null: it said (got None)
    ("set-empty-value", XOR, ["--set", "learning.epochs="], "yaml: --set learning.epochs=: learning.epochs: Input "
     "should be a valid integer (got an empty value); give a whole number"),
    ("set-list-item-by-dot", XOR, ["--set", "roles.inputs.0=[1,2,3]"], "yaml: --set roles.inputs.0=[1,2,3]: "
     "roles.inputs[0]: a [row, col] node needs two indices >= 0 (got [1, 2, 3]); write it as [row, col]"),
    ("set-a-whole-section", XOR, ["--set", "learning.init={kind: uniform, low: 1, high: 0}"], "yaml: --set "
     "learning.init={kind: uniform, low: 1, high: 0}: learning.init: low must be <= high (got 1.0, 0.0); give "
     "the lower value as low"),
    ("set-a-key-inside-the-refused-section", XOR, ["--set", "learning.init.low=5"], "yaml: --set learning.init.low=5: "
     "learning.init: low must be <= high (got 5.0, 2.0); give the lower value as low"),
    # a role is checked after validation (by build): the --set is named there too
    ("set-a-role-off-the-lattice", XOR, ["--set", "roles.inputs[0]=[9,9]"], "yaml: --set roles.inputs[0]=[9,9]: "
     "roles.inputs[0], network.rows, network.cols: node (9, 9) is outside the 4x4 lattice; give a row in 0-3 and a "
     "col in 0-3"),
    # it was "NmosParams.ld: effective length ...", a class of the library, not a key of the config
    ("set-lateral-diffusion-past-half-the-length", XOR, ["--set", "device.params.ld=1e-5"], "yaml: --set "
     "device.params.ld=1e-5: device.params.ld: the effective length l - 2 ld must be > 0 (got l=1e-05, ld=1e-05); "
     "give ld < l/2 (5e-06 m)"),
    ("set-reversed-bounds", XOR, ["--set", "learning.bounds=[8, 0.4]"], "yaml: --set learning.bounds=[8, 0.4]: "
     "learning.bounds: must be [low, high] with low < high (got [8.0, 0.4]); give two finite numbers, the lower "
     "first"),
    ("set-a-spice-suffix", XOR, ["--set", "learning.rate=600m"], "yaml: --set learning.rate=600m: learning.rate: "
     "Input should be a valid number (got '600m'); give a number in SI units (0.6, 6e-1; no SPICE suffixes like "
     "600m)"),
    # it was "Input should be a valid dictionary or instance of TaskConfig", a class of ours
    ("task-empty", _edit("task", None), [], "yaml: task: Input should be a mapping (got an empty value); give its "
     "keys, as key: value lines or {key: value}"),
    ("three-bad-keys", XOR, ["--set", "learning={epochs: abc, nudge: x, rate: y}"], "yaml: --set learning={epochs: "
     "abc, nudge: x, rate: y}: learning.epochs: Input should be a valid integer (got 'abc'); give a whole number "
     "[also: learning.nudge, learning.rate]"),
    # Python reads at most 4300 digits: PyYAML's ValueError was a traceback (exit 1)
    ("huge-integer", "name: xor\nseed: " + "9" * 5000 + "\n", [], "yaml:2:7: a whole number too long to read (got "
     "5,000 characters); give at most 4,300 digits"),
    ("impossible-date", XOR, ["--set", "seed=2020-13-45"], "yaml: --set seed:1:1: invalid YAML (month must be in "
     "1..12: '2020-13-45'); fix the value, or quote it to give text"),
    ("input-name-on-lattice", _edit("roles.inputs.1", "abc"), [], "roles.inputs[1]: nodes are named only in a "
     "network file or a layered network (got 'abc')"),
    ("input-not-a-node", _edit("roles.inputs.1", {"a": 1}), [], "roles.inputs[1]: a node is an index, a [row, col] "
     "pair on a lattice or a node's name (got {'a': 1})"),
    # a node name with a control character was "Input should be a valid integer" (the first type of a union)
    ("input-name-control-character", _edit("roles.inputs.1", "in\x07"), [], "roles.inputs[1]: a node's name must not "
     "contain a control character (got 'in\\x07', holding U+0007 at index 2)"),
    # past 80 characters shown() leaves out the middle, where the character may be: its index says where
    ("long-input-name-control-character", _edit("roles.inputs.1", "n" * 50 + "\t" + "n" * 49), [], "roles.inputs[1]: "
     f"a node's name must not contain a control character (got '{'n' * 37}...{'n' * 38}', holding U+0009 at index "
     "50)"),
    ("output-index-negative", _edit("roles.outputs.0.pos", -3), [], "roles.outputs[0].pos: a node index must be >= 0 "
     "(got -3)"),
    ("roles-empty-on-a-lattice", _edit("roles", {}), [], "roles.outputs: required key is missing (only a layered "
     "network has default roles)"),
    # keys that describe transistors were ignored on a resistor network (corner, mismatch, temperature were refused)
    ("resistor-params", _edit("device", {"kind": "resistor", "params": {"vto": 0.7}}), [],
     "device.params, device.kind: sets transistor parameters, and a resistor network has no transistors (got vto); "
     "remove device.params or use device.kind: nmos"),
    ("resistor-preset", _edit("device", {"kind": "resistor", "preset": "ald1106-l1"}), [],
     "device.preset, device.kind: names a transistor, and a resistor network has no transistors (got 'ald1106-l1'); "
     "remove device.preset or use device.kind: nmos"),
    ("potentiometer-model-file", _edit("device", {"kind": "potentiometer", "model_file": "card.lib"}), [],
     "device.model_file, device.kind: is a transistor's model card, and a potentiometer network has no transistors"),
    ("sub-join-on-level-1", _edit("device.params", {"sub_join": 0.1}), [], "device.params.sub_join: sets the "
     "subthreshold branch of the three-regime law (preset ald1106-hw) (got preset ald1106-fit)"),
    ("is-on-the-three-regime-law", _edit("device", {"preset": "ald1106-hw", "params": {"is": 1e-15}}), [],
     "device.params.is: sets level 1's bulk junctions, which the three-regime law does not have"),
    # the three-regime law caps each terminal's overdrive at 100 V: past it the current collapses (2e-13 A at 101 V)
    ("three-regime-gates-past-the-cap", _edit("device.preset", "ald1106-hw"), ["--set", "learning.bounds=[0.75, 101]"],
     "yaml: --set learning.bounds=[0.75, 101]: learning.bounds: the three-regime law (ald1106-hw) holds only while "
     "each terminal's gate overdrive V_G - V_T - V stays below 100 V"),
    ("epochs-bool", _edit("learning.epochs", True), [], "learning.epochs: Input should be a valid integer (got True); "
     "give a whole number"),
    ("epochs-string", _edit("learning.epochs", "300"), [], "learning.epochs: Input should be a valid integer "
     "(got '300'); give a whole number"),
    ("periodic-string", _edit("network.periodic", "yes"), [], "network.periodic: Input should be a valid boolean "
     "(got 'yes'); give true or false"),
    ("unknown-backend", _edit("simulator.backend", "spectre"), [], "simulator.backend: unknown backend (got "
     "'spectre'); choose one of ngspice, native"),
    ("duplicate-key", "name: xor\nlearning:\n  epochs: 3\n  nudge: 0.5\n  epochs: 4\n", [],
     ":5: duplicate key 'epochs' (got it first at line 3); keep one of them"),
    ("task-needs-two-inputs", _edit("roles.inputs", [[3, 3]]), [], "roles.inputs, task.name: task xor needs 2 input "
     "node(s) (got 1); give roles.inputs 2 node(s), or choose another task"),
    ("hinge-on-regression", _edit("learning.loss", "hinge", REG), [], "learning.loss, task.name: 'hinge' needs a "
     "classification task (got task.name=regression); use loss mse, or a classification task"),
    ("rate-and-t-learn", _edit("hardware.t_learn", 1e-4), [], "learning.rate, hardware.t_learn: both given, and the "
     "rate fixes the gate's switch time (got t_learn 0.0001 s; the rate needs 0.66 s); give only one of them "
     "(hardware.t_learn=null lets the rate fix it)"),
    # each key is positive and finite and the switch time or rate they make was not: 0 or inf (a ZeroDivisionError
    # where R C underflowed to 0), refused as "HardwareParams.t_learn" or "CoupledLearning.rate" after the config
    ("rate-fixes-no-switch-time", XOR, ["--set", "hardware.resistance=1e-320"], "yaml: --set "
     "hardware.resistance=1e-320: learning.rate, hardware.resistance, hardware.capacitance, hardware.gain: the gate's "
     "switch time they fix, rate R C / gain, must be in (0, 1e+06] s (got 0 s); give values nearer the defaults "
     "(resistance 1000 ohm, capacitance 2.2e-06 F, gain 0.1)"),
    ("charging-sets-no-rate", _edit("learning.rate", _DELETE), ["--set", "hardware.capacitance=1e-320"], "yaml: --set "
     "hardware.capacitance=1e-320: hardware.t_learn, hardware.resistance, hardware.capacitance, hardware.gain: the "
     "learning rate they set, gain t_learn / (R C), must be in (0, 1e+06] 1/V, as learning.rate (got inf 1/V); give "
     "values nearer the defaults (t_learn 0.0001 s, resistance 1000 ohm, capacitance 2.2e-06 F, gain 0.1), or give "
     "learning.rate"),
    # an infinite hardware time in summary.json (written as Infinity, which JSON does not have)
    ("settling-for-ever", XOR, ["--set", "hardware.t_settle=1e308"], "yaml: --set hardware.t_settle=1e308: "
     "hardware.t_settle: Input should be less than or equal to 1e+06 (got 1e+308); give a value in range"),
    ("switch-time-past-the-limit", XOR, ["--set", "hardware.capacitance=1e300"], "yaml: --set "
     "hardware.capacitance=1e300: learning.rate, hardware.resistance, hardware.capacitance, hardware.gain: the gate's "
     "switch time they fix, rate R C / gain, must be in (0, 1e+06] s (got 3e+305 s)"),
    ("layered-negative-seed", DIGITS, ["--set", "network.seed=-1"], "yaml: --set network.seed=-1: network.seed: "
     "Input should be greater than or equal to 0 (got -1); give a value in range"),
    # a layered network's roles are its layers: the message names the layer size to change, not roles
    ("layered-single-ended-digits", _edit("network.differential", False, DIGITS), [], "network.n_outputs, task.name: "
     "task digits needs 10 output(s) (got 20); set network.n_outputs to 10, or choose another task"),
    ("layered-too-few-pairs", DIGITS, ["--set", "network.n_outputs=8", "--set", "network.n_edges=300"], "yaml: --set "
     "network.n_outputs=8: network.n_outputs, task.name: task digits needs 10 output(s) (got 4); set "
     "network.n_outputs to 20 (output nodes, paired by network.differential), or choose another task"),
    ("layered-too-few-inputs", DIGITS, ["--set", "network.n_inputs=32", "--set", "network.n_edges=300"], "yaml: --set "
     "network.n_inputs=32: network.n_inputs, task.name: task digits needs 64 input node(s) (got 32); set "
     "network.n_inputs to 64, or choose another task"),
    # K = kp w / l was inf, and a native run stopped at its first clamp as "to_spice: clamps must be finite"
    ("channel-too-short", XOR, ["--set", "device.params.l=5e-324"], "yaml: --set device.params.l=5e-324: "
     "device.params.l, device.params.ld: the effective length l - 2 ld must be at least 1e-09 m (1 nm, below any "
     "transistor's channel) (got l=4.94066e-324, ld=0); give a longer l, or a smaller ld"),
    ("negative-capacitance", _edit("hardware.capacitance", -1e-6), [], "hardware.capacitance: Input should be greater "
     "than 0 (got -1e-06); give a value in range"),
    ("random-too-few-edges", _edit("network", {"kind": "random", "n_nodes": 20, "n_edges": 5}), [],
     "network.n_edges: must be in [19,"),
    ("set-unknown-key", XOR, ["--set", "learning.speed=3"], "yaml: --set learning.speed=3: learning.speed: unknown "
     "key"),
    # a misspelt required key is named as the misspelling, not as the right key missing
    ("set-misspelt-required-key", XOR, ["--set", "task.validation={fractio: 0.2}"],
     "yaml: --set task.validation={fractio: 0.2}: task.validation.fractio: unknown key"),
    ("set-bad-range", XOR, ["--set", "learning.update_probability=0"], "yaml: --set learning.update_probability=0: "
     "learning.update_probability: Input should be greater than 0 (got 0); give a value in range"),
    # it was silently ignored: one point per step
    ("batch-size-without-mini-batches", XOR, ["--set", "learning.batch_size=4"], "yaml: --set learning.batch_size=4: "
     "learning.batch_size, learning.schedule: only schedule mini_batch steps in batches (got batch_size 4 with "
     "schedule full_batch); set learning.schedule=mini_batch, or leave batch_size out"),
    ("set-bracket-index", XOR, ["--set", "roles.rails[0].volts=abc"], "yaml: --set roles.rails[0].volts=abc: "
     "roles.rails[0].volts: Input should be a valid number (got 'abc'); give a number in SI units"),
    ("set-no-equals", XOR, ["--set", "learning"], "--set learning: expected key.path=value (got no '=')"),
    ("set-not-a-path", XOR, ["--set", "learning..nudge=1"], "--set learning..nudge: not a key path (got "
     "'learning..nudge'); write it like learning.nudge or roles.rails[0].volts"),
    ("set-index-out-of-range", XOR, ["--set", "roles.rails[5].volts=0.1"], "--set roles.rails[5].volts: roles.rails "
     "is a list of 2 item(s) (got index '5'); give an index from 0 to 1"),
    ("set-inside-a-value", XOR, ["--set", "learning.epochs.x=1"], "--set learning.epochs.x: learning.epochs is a "
     "value, not a section (got 3000); check the key path"),
    ("set-bad-yaml", XOR, ["--set", "learning.epochs=[1"], "--set learning.epochs:1:3: invalid YAML"),
    # PyYAML checks the characters as its loader is made: a control character was a traceback (exit 1)
    ("control-character", "name: xor\x07\n", [], ":1:10: invalid YAML (control character U+0007, which YAML does "
     "not allow); remove it"),
    ("nul-byte", "name: xor\nlearning:\x00\n", [], ":2:10: invalid YAML (control character U+0000"),
    ("set-control-character", XOR, ["--set", "learning.rate=\x07"], "--set learning.rate:1:1: invalid YAML (control "
     "character U+0007"),
    ("no-outputs", _edit("roles.outputs", []), [], "yaml: roles.outputs: List should have at least 1 item after "
     "validation, not 0 (got []); add items"),
    ("no-roles-on-a-lattice", _edit("roles", _DELETE), [], "roles: required key is missing (only a layered network "
     "has default roles)"),
    ("layered-without-sizes", _edit("network", {"kind": "layered", "n_inputs": 2}), [],
     "network: a layered network needs n_inputs and n_outputs"),
    ("layered-odd-pairs", _edit("network", {"kind": "layered", "n_inputs": 2, "n_outputs": 3, "differential": True}),
     [], "differential outputs pair the output layer's nodes: n_outputs must be even (got 3)"),
    ("layered-lonely-node", _edit("network", {"kind": "layered", "n_inputs": 2, "n_outputs": 2, "n_edges": 1}),
     ["--set", "roles=null"], "network: the drawn wiring leaves"),
    ("csv-path-newline", _edit("task", {"name": "csv", "path": "a\nb.csv", "n_inputs": 1}), [],
     "task.path: a file name must not contain control characters such as newlines (got 'a\\nb.csv', holding U+000A "
     "at index 1); rename"),
    ("long-csv-path-newline", _edit("task", {"name": "csv", "path": "d" * 50 + "\n" + "d" * 45 + ".csv",
                                             "n_inputs": 1}),
     [], f"task.path: a file name must not contain control characters such as newlines (got '{'d' * 37}...{'d' * 34}"
     ".csv', holding U+000A at index 50); rename"),
    ("model-file-escape", _edit("device.model_file", "card\x1b[2J.lib"), [], "device.model_file: a file name must not "
     "contain control characters"),
    ("unreachable-hinge-margin", _edit("learning.margin", 0.05), [],
     "learning.margin, task.labels: a margin of 0.05 V cannot be reached: a point's margin is at most half the gap "
     "between the labels (0.0435 V for labels 0 and -0.087 V)"),
    ("multiclass-hinge-on-xor", _edit("learning.loss", "multiclass_hinge"), [],
     "learning.loss, task.name: 'multiclass_hinge' needs one output per class"),
    # a key the network, task or device does not read was silently ignored: the run trained on something else
    ("file-on-a-lattice", XOR, ["--set", "network.file=net.txt"], "yaml: --set network.file=net.txt: network.file, "
     "network.kind: a network file is read only by a network of kind file (got kind lattice, which ignores it); set "
     "network.kind: file to train on that file, or remove network.file"),
    ("rows-on-a-random-network", XOR, ["--set", "network={kind: random, n_nodes: 16, n_edges: 32, rows: 7}"],
     "yaml: --set network={kind: random, n_nodes: 16, n_edges: 32, rows: 7}: network.rows, network.kind: a random "
     "network does not read rows (got 7); remove it (a random network reads only n_nodes, n_edges, seed)"),
    ("csv-path-on-xor", XOR, ["--set", "task.path=data.csv"], "yaml: --set task.path=data.csv: task.path, "
     "task.name: the xor task does not read path (got 'data.csv'); remove it (the xor task reads only low, high, "
     "labels)"),
    ("held-out-on-xor", XOR, ["--set", "task.test_fraction=0.2"], "yaml: --set task.test_fraction=0.2: "
     "task.test_fraction, task.name: the xor task does not read test_fraction (got 0.2); remove it"),
    ("labels-on-regression", REG, ["--set", "task.labels=[0.1, 0.2]"], "yaml: --set task.labels=[0.1, 0.2]: "
     "task.labels, task.name: the regression task does not read labels"),
    ("resistor-range-on-nmos", XOR, ["--set", "device.g_min=1e-4"], "yaml: --set device.g_min=1e-4: device.g_min, "
     "device.kind: only a resistor device reads g_min (got 0.0001 with kind nmos); remove it, or set device.kind: "
     "resistor"),
    ("preset-with-a-card", XOR, ["--set", "device.model_file=card.lib", "--set", "device.preset=ald1106-l1"],
     "yaml: --set device.preset=ald1106-l1: device.preset, device.model_file: a model card replaces the preset, "
     "which would be ignored (got preset 'ald1106-l1' and model_file 'card.lib'); give one of them"),
]


def _run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # PySpice made unimportable: a config that reached the simulator would fail with exit 1, not 2
    code = ("import sys; sys.modules['PySpice'] = None; from metamaterial.cli import main; "
            f"sys.exit(main({args!r}))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize("case_id, doc, extra, fragment", CASES, ids=[c[0] for c in CASES])
def test_malformed_config_exits_2_with_one_line(tmp_path, case_id, doc, extra, fragment):
    for name in ("net.txt", "data.csv", "card.lib"):  # files the cases name exist: the key is what is refused
        (tmp_path / name).write_text("")
    path = tmp_path / f"{case_id}.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    proc = _run_cli(["train", str(path), "--out", str(tmp_path / "run"), "--no-progress", *extra], tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith(f"metamaterial: {path}"), lines[0]
    assert fragment in lines[0], lines[0]
    # a --set is named where it set the key at fault, and only there (the file held another value, or none)
    assert ("--set" in lines[0]) == ("--set" in fragment), lines[0]
    assert lines[0].count("(got ") <= 1, lines[0]
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


_MINI_BATCH = _edit("learning.batch_size", 2, _edit("learning.schedule", "mini_batch"))
#: a refusal that names two keys, given once by the file and once by --set, each way round: (the file, the --set,
#: the message after "--set ...: "); the --set is named whichever of the two keys it gave
TWO_KEYS = {
    "csv-inputs-given-roles-in-file": (CSV, "task.n_inputs=2", "roles.inputs, task.n_inputs: task two_outputs needs 2 "
                                       "input node(s) (got 1); give roles.inputs 2 node(s), or set task.n_inputs to "
                                       "1, the roles' count"),
    "csv-outputs-given-task-in-file": (CSV, "roles.outputs=[[2,2]]", "roles.outputs, task.n_inputs: task two_outputs "
                                       "needs 2 output(s) (got 1); give roles.outputs 2 output(s), or move the split "
                                       "of the CSV's columns with task.n_inputs"),
    "allostery-targets-given-roles-in-file": (ALLOSTERY, "task.targets=[0.1,0.2,0.3]", "roles.outputs, task.targets: "
                                              "task allostery needs 3 output(s) (got 2); give roles.outputs 3 "
                                              "output(s), or give task.targets one voltage per output"),
    "rate-given-t_learn-in-file": (_edit("learning.rate", _DELETE, _edit("hardware.t_learn", 1.0)),
                                   "learning.rate=10", "learning.rate, hardware.t_learn: both given, and the "
                                   "rate fixes the gate's switch time (got t_learn 1 s; the rate needs 0.22 s); give "
                                   "only one of them (hardware.t_learn=null lets the rate fix it)"),
    "t_learn-given-rate-in-file": (XOR, "hardware.t_learn=1", "learning.rate, hardware.t_learn: both given, and the "
                                   "rate fixes the gate's switch time (got t_learn 1 s; the rate needs 0.66 s); give "
                                   "only one of them (hardware.t_learn=null lets the rate fix it)"),
    "schedule-given-batch-size-in-file": (_MINI_BATCH, "learning.schedule=cycle", "learning.batch_size, "
                                          "learning.schedule: only schedule mini_batch steps in batches (got "
                                          "batch_size 2 with schedule cycle); set learning.schedule=mini_batch, or "
                                          "leave batch_size out"),
    "batch-size-given-schedule-in-file": (XOR, "learning.batch_size=2", "learning.batch_size, learning.schedule: only "
                                          "schedule mini_batch steps in batches (got batch_size 2 with schedule "
                                          "full_batch); set learning.schedule=mini_batch, or leave batch_size out"),
    "task-given-hinge-in-file": (XOR, "task.name=regression", "learning.loss, task.name: 'hinge' needs a "
                                 "classification task (got task.name=regression); use loss mse, or a classification "
                                 "task"),
    "hinge-given-task-in-file": (REG, "learning.loss=hinge", "learning.loss, task.name: 'hinge' needs a classification "
                                 "task (got task.name=regression); use loss mse, or a classification task"),
    "rows-given-roles-in-file": (XOR, "network.rows=3", "roles.inputs[0], network.rows: node (3, 3) is outside the 3x4 "
                                 "lattice; give a row in 0-2 and a col in 0-3"),
    "roles-given-rows-in-file": (_edit("network.rows", 3, _edit("roles.inputs", [[2, 3], [2, 1]])),
                                 "roles.inputs[1]=[3,1]", "roles.inputs[1], network.rows: node (3, 1) is outside the "
                                 "3x4 lattice; give a row in 0-2 and a col in 0-3"),
    "kind-given-network-file-in-file": (_edit("network.file", "net.txt"), "network.kind=lattice", "network.file, "
                                        "network.kind: a network file is read only by a network of kind file (got kind "
                                        "lattice, which ignores it); set network.kind: file to train on that file, or "
                                        "remove network.file"),
    "kind-given-lattice-roles-in-file": (XOR, "network={kind: random, n_nodes: 16, n_edges: 32}", "roles.inputs[0], "
                                         "network.kind: (row, col) addressing needs a lattice network (got [3, 3] on a "
                                         "random network); give the node's index, or use network.kind: lattice"),
    "kind-given-preset-in-file": (_edit("device.preset", "ald1106-l1"), "device.kind=resistor", "device.preset, "
                                  "device.kind: names a transistor, and a resistor network has no transistors (got "
                                  "'ald1106-l1'); remove device.preset or use device.kind: nmos"),
    "kind-given-bounds-in-file": (XOR, "device.kind=resistor", "learning.bounds, device.kind: resistor controls "
                                  "must lie in [1e-05, 0.01] S (got [0.4, 8]); keep the bounds inside device.g_min and "
                                  "device.g_max"),
    "kind-given-body-in-file": (_edit("device.body", "input"), "device.kind=resistor", "device.body, device.kind: a "
                                "resistor has no body terminal to tie (got body 'input'); remove device.body, or use "
                                "device.kind: nmos"),
    "body-given-kind-in-file": (_edit("device", {"kind": "resistor"}), "device.body=input", "device.body, device.kind: "
                                "a resistor has no body terminal to tie (got body 'input'); remove device.body, or use "
                                "device.kind: nmos"),
    "kind-given-rate-in-file": (REG, "device.kind=potentiometer", "learning.rate, device.kind: a potentiometer steps "
                                "one whole tap per update (sign rule), with no rate, decay, bias or leak (got rate "
                                "5.0); remove learning.rate, or use device.kind: nmos or resistor"),
    "rate-decay-given-kind-in-file": (POT, "learning.rate_decay=0.9", "learning.rate_decay, device.kind: a "
                                      "potentiometer steps one whole tap per update (sign rule), with no rate, decay, "
                                      "bias or leak (got rate_decay 0.9); remove learning.rate_decay, or use "
                                      "device.kind: nmos or resistor"),
}


@pytest.mark.parametrize("case", TWO_KEYS)
def test_a_refusal_naming_two_keys_names_the_set_that_gave_either(tmp_path, case):
    """A refusal about two keys names both ("learning.batch_size, learning.schedule: ..."), and so the --set that
    gave either of them: it was blamed on the config file when the --set gave the key named second (or a key a
    message named only in its text), as if the file were wrong alone."""
    doc, item, message = TWO_KEYS[case]
    (tmp_path / "net.txt").write_text("")
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(doc))
    proc = _run_cli(["train", str(path), "--out", str(tmp_path / "run"), "--no-progress", "--set", item], tmp_path)
    assert proc.returncode == 2 and proc.stderr == f"metamaterial: {path}: --set {item}: {message}\n", proc.stderr


#: a refusal about one key of a pair in device, given by the first --set when a later one set another key of device:
#: (the file, the --sets, the message after "--set FIRST: ")
ONE_DEVICE_KEY = {
    "g_max": (XOR, ["device.g_max=1e-6", "device.kind=resistor"], "device.g_min, device.g_max: g_min must be < g_max "
              "(got g_min 1e-05, g_max 1e-06); give the lower conductance as g_min"),
    "r_min": (POT, ["device.r_min=1e5", "device.n_taps=50"], "device.r_min, device.r_max: r_min must be < r_max (got "
              "r_min 100000.0, r_max 32000.0); give the lower resistance as r_min"),
}


@pytest.mark.parametrize("case", ONE_DEVICE_KEY)
def test_a_refusal_about_one_device_key_names_that_key_and_its_set(tmp_path, case):
    """"device: g_min must be < g_max" named the whole section, and so the last --set of any device key: the
    --set device.kind=resistor that came after the --set device.g_max that the message is about."""
    doc, items, message = ONE_DEVICE_KEY[case]
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(doc))
    sets = [arg for item in items for arg in ("--set", item)]
    proc = _run_cli(["train", str(path), "--out", str(tmp_path / "run"), "--no-progress", *sets], tmp_path)
    assert proc.returncode == 2 and proc.stderr == f"metamaterial: {path}: --set {items[0]}: {message}\n", proc.stderr


#: refusals that said what is wrong and not how to fix it: (the config, more arguments, the whole message after
#: "metamaterial: CONFIG: "; {tmp} is the config's folder)
WITH_A_FIX = {
    "node-a-mapping": (_edit("roles.inputs.1", {"a": 1}), [], "roles.inputs[1]: a node is an index, a [row, col] pair "
                       "on a lattice or a node's name (got {'a': 1}); give one of them"),
    "layered-without-sizes": (_edit("network", {"kind": "layered", "n_inputs": 2}), ["--set", "roles=null"],
                              "network: a layered network needs n_inputs and n_outputs (got n_inputs 2, n_outputs "
                              "None); give both"),
    "layered-odd-pairs": (_edit("network", {"kind": "layered", "n_inputs": 2, "n_outputs": 3, "differential": True}),
                          [], "network: differential outputs pair the output layer's nodes: n_outputs must be even "
                          "(got 3); give an even n_outputs, or differential: false"),
    "random-without-sizes": (_edit("network", {"kind": "random", "n_nodes": 16}), [], "network: a random network needs "
                             "n_nodes and n_edges (got n_nodes 16, n_edges None); give both"),
    "file-network-without-file": (_edit("network", {"kind": "file"}), [], "network: a file network needs 'file' (got "
                                  "none); give network.file, an edge list or .graphml path"),
    "resistor-range-reversed": (_edit("device", {"kind": "resistor", "g_min": 1e-3, "g_max": 1e-4}), [],
                                "device.g_min, device.g_max: g_min must be < g_max (got g_min 0.001, g_max 0.0001); "
                                "give the lower conductance as g_min"),
    "potentiometer-range-reversed": (_edit("device", {"kind": "potentiometer", "r_min": 1e4, "r_max": 1e3}), [],
                                     "device.r_min, device.r_max: r_min must be < r_max (got r_min 10000.0, r_max "
                                     "1000.0); give the lower resistance as r_min"),
    "csv-without-n-inputs": (_edit("task", {"name": "csv", "path": "data.csv"}), [], "task: a csv task needs 'path' "
                             "and 'n_inputs' (got path 'data.csv', n_inputs None); give the CSV file as path and how "
                             "many of its first columns are inputs as n_inputs"),
    "regression-x-y-lengths": (_edit("task", {"name": "regression", "x": [0.1, 0.2], "y": [0.1]}, REG), [], "task: x "
                               "and y must have equal length (got 2 and 1); give one y per x"),
    "xor-low-above-high": (_edit("task.low", 0.5), [], "task: low must be < high (got 0.5, 0.45); give the lower "
                           "voltage as low"),
    "init-infinite": (_edit("learning.init", {"kind": "uniform", "low": float("inf"), "high": 2.0}), [],
                      "learning.init: init values must be finite (got low inf, high 2.0, value None); give finite "
                      "numbers"),
    "constant-init-without-value": (_edit("learning.init", {"kind": "constant"}), [], "learning.init: a constant init "
                                    "needs 'value' (got none); give learning.init.value, or kind: uniform"),
    # ignored without a word: the gates were drawn from the device's default range, not around the value
    "uniform-init-with-a-value": (_edit("learning.init", {"kind": "constant", "value": 3.0}),
                                  ["--set", "learning.init.kind=uniform"],
                                  "--set learning.init.kind=uniform: learning.init.value, learning.init.kind: a "
                                  "uniform init reads only low and high, so value would be ignored (got value 3); "
                                  "remove it (learning.init.value=null), or give learning.init={kind: ..., ...} whole"),
    "constant-init-with-low-high": (_edit("learning.init", {"kind": "constant", "value": 3.0, "low": 1.0, "high": 4.0}),
                                    [], "learning.init.low, learning.init.high, learning.init.kind: a constant init "
                                    "reads only value, so low and high would be ignored (got low 1, high 4); remove "
                                    "them (learning.init.low=null, learning.init.high=null), or give "
                                    "learning.init={kind: ..., ...} whole"),
    "name-with-a-space": (_edit("name", "my run"), [], "name: must be a plain name matching "
                          "^[A-Za-z][A-Za-z0-9_-]{0,63}$ (got 'my run'); start with a letter, then up to 63 letters, "
                          "digits, '_' or '-'"),
    "no-roles": (_edit("roles", _DELETE), [], "roles: required key is missing (only a layered network has default "
                 "roles); add roles with inputs and outputs (see configs/)"),
    "lattice-of-one-node": (_edit("network", {"kind": "lattice", "rows": 1, "cols": 1}),
                            ["--set", "roles.inputs=[[0,0]]"], "network: a lattice needs at least 2 nodes (got "
                            "rows=1, cols=1); give rows and cols of 2 nodes or more together"),
    "periodic-side-of-two": (_edit("network.rows", 2), ["--set", "roles={inputs: [[0, 0], [0, 1]], outputs: [[1, 1]]}"],
                             "network.rows: a periodic side of length 2 would double its edges (got 2x4); give "
                             "that side 3 nodes or more, or network.periodic: false"),
    "random-too-few-edges": (_edit("network", {"kind": "random", "n_nodes": 20, "n_edges": 5}), [], "network.n_edges: "
                             "must be in [19, 190] for 20 nodes (got 5); give a number in that range (a connected "
                             "graph needs n_nodes - 1)"),
    "layered-too-many-edges": (_edit("network", {"kind": "layered", "n_inputs": 2, "n_outputs": 2, "n_edges": 9}),
                               ["--set", "roles=null"], "network.n_edges: must be in [1, 4] for these layers (got 9); "
                               "give a number in that range, or a density"),
    "no-sources": (_edit("roles", {"inputs": [], "outputs": [[2, 2]]}), [], "roles: at least one input or rail (a "
                   "source) is required (got neither); give roles.inputs or roles.rails"),
    "xor-labels-equal": (_edit("task.labels", [0.1, 0.1]), [], "task.labels: the two XOR labels must differ (got [0.1, "
                         "0.1]); give the output for equal inputs first, then another for different inputs"),
    "mini-batch-past-the-points": (_edit("learning.batch_size", 8, _edit("learning.schedule", "mini_batch")), [],
                                   "learning.batch_size: must be <= the 4 data points (got 8); give at most 4"),
    "seeds-zero": (XOR, ["--seeds", "0"], "--seeds: must be >= 1 (got 0); give the number of seeds to train, 1 or "
                   "more"),
    "network-file-line-of-three": (_edit("network", {"kind": "file", "file": "three.txt"}), [], "network.file: "
                                   "{tmp}/three.txt:1: expected two node names (got 'a b c'); give one edge per line, "
                                   "as two node names separated by a space or a comma (a name in an edge list cannot "
                                   "hold a space, a comma or a #: give such names in a .graphml file)"),
}


@pytest.mark.parametrize("case", WITH_A_FIX)
def test_a_refusal_says_how_to_fix_it(tmp_path, case):
    doc, extra, message = WITH_A_FIX[case]
    (tmp_path / "data.csv").write_text("a,b\n0,1\n")
    (tmp_path / "three.txt").write_text("a b c\n")
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(doc))
    proc = _run_cli(["train", str(path), "--out", str(tmp_path / "run"), "--no-progress", *extra], tmp_path)
    expected = message.replace("{tmp}", str(tmp_path)) if "{tmp}" in message else message
    assert proc.returncode == 2 and proc.stderr == f"metamaterial: {path}: {expected}\n", proc.stderr


def _alias_bomb(levels: int) -> str:
    """A YAML list of anchors and aliases that expands to 10^levels items (a "billion laughs")."""
    names = [f"l{i}" for i in range(levels)]
    text = f"&{names[-1]} [{', '.join(['1'] * 10)}]"
    for inner, outer in zip(names[:0:-1], names[-2::-1]):
        text = f"&{outer} [{text}, {', '.join([f'*{inner}'] * 9)}]"
    return text


def test_an_alias_bomb_is_refused_in_one_short_line(tmp_path):
    """A value of 10^9 items (a few hundred bytes of anchors and aliases) was printed in full after "(got": 10^7
    made a 3.2 MB line, 10^9 minutes of CPU, gigabytes and a MemoryError traceback (here: the timeout)."""
    path = tmp_path / "bomb.yaml"
    path.write_text((ROOT / "configs" / "regression.yaml").read_text().replace(
        "task: {name: regression}", f"task: {{name: regression, x: {_alias_bomb(9)}}}"))
    proc = _run_cli(["train", str(path), "--out", str(tmp_path / "run"), "--no-progress"], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and len(proc.stderr) < 500, proc.stderr[:1000]
    assert proc.stderr.startswith(f"metamaterial: {path}: task.x[0]: Input should be a valid number (got [[[["), \
        proc.stderr
    assert proc.stderr.endswith("; give a number in SI units (0.6, 6e-1; no SPICE suffixes like 600m) "
                                "[also: task.x[1], task.x[2], task.x[3], task.x[4] and 5 more]\n"), proc.stderr


def test_shown_values_are_short_and_walk_only_what_they_show():
    billion = [1] * 10
    for _ in range(8):
        billion = [billion] * 10  # shared: 10^9 items that cost nothing until something walks them
    assert shown(billion).startswith("[[[[...], [...], [...], [...], [...], ...], [[...],")
    assert len(shown(billion)) <= SHOWN_MAX
    assert shown("x" * 1000) == "'" + "x" * 37 + "..." + "x" * 38 + "'"
    assert shown({"a": 1, "b": [1, 2, 3]}) == "{'a': 1, 'b': [1, 2, 3]}"  # a short value as repr() gives it
    assert [shown(v) for v in (1.5, True, None, "in\x07", -3)] == ["1.5", "True", "None", "'in\\x07'", "-3"]
    # repr() raises ValueError past 4300 digits
    assert shown([10**5000, 2]) == "[<an integer of about 5000 digits>, 2]"
    # a short value reads as repr() gives it; a mapping or a set in its own order, not sorted
    for value in ({"b": 1, "a": [2, {"d": 3, "c": 4}]}, {3, 1, 2}, frozenset("ba"), set(), tuple("abcde"),
                  "y" * 78, 2**100, {"x": np.float64(0.5)}, np.arange(6.0)):
        assert shown(value) == repr(value)
    assert shown({str(k): k for k in range(10**5, 0, -1)}) == ("{'100000': 100000, '99999': 99999, '99998': 99998, "
                                                               "'99997': 99997, '99996': 99996, ...}")


def test_an_empty_config_or_spec_is_named_empty_with_the_keys_it_holds(tmp_path):
    """YAML reads a file of nothing, or of comments alone, as null: it was refused as "the top level must be a
    mapping of sections (got NoneType)"."""
    files = {"": "0 bytes", "\n  \n": "only blank lines", "# name: xor\n\n# task: {name: xor}\n": "only comments",
             "---\n": "no keys"}
    for i, (text, got) in enumerate(files.items()):
        path = tmp_path / f"empty{i}.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError) as err:
            load_config(path)
        assert str(err.value) == (f"{path}: the file is empty (got {got}); write the config in it, starting with "
                                  "keys such as name:, roles:, task:")
        with pytest.raises(ConfigError) as err:
            load_sweep(path)
        assert str(err.value) == (f"{path}: the file is empty (got {got}); write the sweep spec in it, starting "
                                  "with keys such as name:, base:, grid:")
    proc = _run_cli(["train", "empty0.yaml"], tmp_path)
    assert (proc.returncode, proc.stderr) == (2, "metamaterial: empty0.yaml: the file is empty (got 0 bytes); write "
                                                 "the config in it, starting with keys such as name:, roles:, "
                                                 "task:\n")
    path = tmp_path / "null.yaml"  # a null written out is not an empty file
    path.write_text("null\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (f"{path}: the top level must be a mapping of sections (got null); start the file with "
                              "keys such as name:, roles:, task:")


def test_the_other_problems_are_named_each_once_by_their_key_paths():
    """Beside the first problem, the others were only counted ("[1 more problem(s)]"): which key was also wrong
    was not said."""
    with pytest.raises(ConfigError) as err:  # the key it meant is missing too: the same problem
        validate_config(_edit("task.validation", {"fractio": 0.2}), "x.yaml")
    assert str(err.value) == ("x.yaml: task.validation.fractio: unknown key (did you mean task.validation.fraction?); "
                              "remove it or check its spelling (see README, config reference)")
    with pytest.raises(ConfigError) as err:
        validate_config(_edit("learning", {"epochs": "abc", "nudge": "x", "rate": "y"}), "x.yaml")
    assert str(err.value) == ("x.yaml: learning.epochs: Input should be a valid integer (got 'abc'); give a whole "
                              "number [also: learning.nudge, learning.rate]")
    proc = _run_cli(["solve", str(ROOT / "configs" / "xor.yaml"), "--set", "network.rows=2000", "--set",
                     "network.cols=2000"], ROOT)
    assert (proc.returncode, proc.stderr) == (2, f"metamaterial: {ROOT}/configs/xor.yaml: --set network.rows=2000: "
                                                 "network.rows: Input should be less than or equal to 1000 (got "
                                                 "2000); give a value in range [also: network.cols]\n")


def test_disconnected_edge_list_is_refused(tmp_path):
    edges = tmp_path / "two_islands.txt"
    edges.write_text("a b\nb c\nc a\nx y\ny z\nz x\n")
    doc = _edit("network", {"kind": "file", "file": str(edges)})
    doc["roles"] = {"inputs": [0], "rails": [{"node": 1, "volts": 0.0}], "outputs": [2]}
    doc["task"] = {"name": "regression"}
    doc["learning"]["loss"] = "mse"
    path = tmp_path / "disconnected.yaml"
    path.write_text(yaml.safe_dump(doc))
    proc = _run_cli(["train", str(path), "--no-progress"], tmp_path)
    # the part cut off is named, by the file's names (it named the part holding the roles "cut off", by index)
    assert proc.returncode == 2 and proc.stderr.strip().endswith(
        "network: the graph of " + str(edges) + " is disconnected: 3 node(s) have no path to the part holding the "
        "inputs, rails and outputs (x, y, z); connect them or remove them"), proc.stderr


def test_roles_split_between_parts_of_a_disconnected_graph_name_the_role_cut_off(tmp_path):
    edges = tmp_path / "two_islands.txt"
    edges.write_text("a b\nb c\nc a\nx y\ny z\nz x\n")
    doc = _edit("network", {"kind": "file", "file": str(edges)})
    doc["roles"] = {"inputs": ["a"], "rails": [{"node": "b", "volts": 0.0}], "outputs": ["y"]}
    doc["task"] = {"name": "regression"}
    doc["learning"]["loss"] = "mse"
    path = tmp_path / "split.yaml"
    path.write_text(yaml.safe_dump(doc))
    proc = _run_cli(["netlist", str(path), "--out", str(tmp_path / "nl")], tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().endswith(
        "is in 2 disconnected parts, and roles.outputs[0] (node y) has no path to roles.inputs[0] (node a); connect "
        "the parts"), proc.stderr


def test_a_control_character_in_a_network_file_s_node_name_is_named(tmp_path):
    edges = tmp_path / "bell.txt"
    edges.write_text("a b\nb c\x07\nc\x07 a\n")
    doc = _edit("network", {"kind": "file", "file": str(edges)})
    doc["roles"] = {"inputs": ["a"], "outputs": ["b"]}
    path = tmp_path / "bell.yaml"
    path.write_text(yaml.safe_dump(doc))
    proc = _run_cli(["netlist", str(path), "--out", str(tmp_path / "nl")], tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().endswith(
        f"network.file: {edges}:2: the node name 'c\\x07' holds a control character (U+0007); rename the node "
        "without it"), proc.stderr


def test_empty_roles_on_a_layered_network_are_its_default_roles():
    """README: a layered network's roles default to its input and output layers; ``roles: {}`` said "required key is
    missing"."""
    digits = yaml.safe_load((ROOT / "configs" / "digits.yaml").read_text())
    digits.pop("roles", None)
    default = validate_config(copy.deepcopy(digits))
    empty = validate_config({**copy.deepcopy(digits), "roles": {}})
    assert default.roles is None and empty == default
    with pytest.raises(ConfigError, match=r"roles.outputs: required key is missing \(a layered network takes its "
                                          r"default roles only when roles is left out or empty"):
        validate_config({**copy.deepcopy(digits), "roles": {"inputs": [0]}})


def test_missing_config_file(tmp_path):
    proc = _run_cli(["train", str(tmp_path / "nope.yaml")], tmp_path)
    assert proc.returncode == 2 and "nope.yaml: cannot read config" in proc.stderr
    assert proc.stderr.rstrip().endswith("; check the path")


@pytest.mark.parametrize("given, shipped", [("configs/xor.yaml", "xor.yaml"), ("xor", "xor.yaml"),
                                            ("configs/sweeps/corners.yaml", "sweeps/corners.yaml")])
def test_a_shipped_config_named_from_another_folder_is_pointed_to(tmp_path, given, shipped):
    """The README's commands name configs/xor.yaml from the repository's root; run from anywhere else they said
    only "No such file or directory"."""
    command = "sweep" if "sweeps" in given else "train"
    proc = _run_cli([command, given], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.rstrip().endswith(f"; check the path; the shipped one is {ROOT / 'configs' / shipped}")


def test_a_config_that_is_not_text_is_refused_by_load_config(tmp_path):
    png = tmp_path / "picture.yaml"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ConfigError, match=r"^.*picture\.yaml: not UTF-8 text \(byte 0x89 at offset 0\); give a "
                                          r"YAML config$"):
        load_config(png)


CSV_TASK = yaml.safe_load((ROOT / "configs" / "csv_example.yaml").read_text())
CSV_HEADER = b"v_in,target_a,target_b\n0.0,0.12,0.10\n"
#: a CSV task's data, damaged in its third line -> what the one line says after the file's name
BAD_CSV_TASKS = {
    "not-text": (CSV_HEADER + b"\xff\xfe,0.16,0.13\n", ": not UTF-8 text (byte 0xff at offset 37); "
                 "give a CSV file"),
    # the offset in the file, byte-order mark included (the decoder counts from after it)
    "not-text-after-a-byte-order-mark": (b"\xef\xbb\xbf" + CSV_HEADER + b"\xff\xfe,0.16,0.13\n",
                                         ": not UTF-8 text (byte 0xff at offset 40); give a CSV file"),
    "nan-input": (CSV_HEADER + b"nan,0.16,0.13\n", ":3: v_in must be a finite voltage in [-10, 10] V (got nan); "
                  "correct that value"),
    "inf-target": (CSV_HEADER + b"\n0.1,0.16,-inf\n", ":4: target_b must be a finite voltage in [-10, 10] V (got "
                   "-inf); correct that value"),
    "input-beyond-10-V": (CSV_HEADER + b"500,0.16,0.13\n", ":3: v_in must be a finite voltage in [-10, 10] V (got "
                          "500); correct that value"),
    "scaled-nan": (CSV_HEADER + b"nan,0.16,0.13\n", ":3: v_in must be a finite number (got nan); correct that value"),
    "a-row-too-wide": (CSV_HEADER + b"0.1,0.16,0.13,5\n", ":3: 4 values, where the header names 3 columns; give one "
                       "value per column"),
    "semicolons": (b"v_in;target_a;target_b\n0.0;0.12;0.10\n", ": the header names one column (got "
                   "'v_in;target_a;target_b'); name an input and a target column at least, separated by commas, not "
                   "semicolons"),
    "tabs": (b"v_in\ttarget_a\n0.0\t0.12\n", ": the header names one column (got 'v_in\\ttarget_a'); name an input "
             "and a target column at least, separated by commas, not tabs"),
    "one-column": (b"v_in\n0.0\n", ": the header names one column (got 'v_in'); name an input and a target column at "
                   "least, separated by commas"),
    "header-alone": (CSV_HEADER.splitlines(keepends=True)[0], ": needs a header row and at least one data row (got "
                     "only the line 'v_in,target_a,target_b'); give a first line naming the columns (the 1 input "
                     "column(s) first, then the target column(s)) and one line per point"),
    "empty": (b"\n\n", ": needs a header row and at least one data row (got an empty file); give a first line naming "
              "the columns (the 1 input column(s) first, then the target column(s)) and one line per point"),
}


@pytest.mark.parametrize("case", BAD_CSV_TASKS)
def test_a_bad_csv_task_is_one_line_naming_the_file_and_the_line(tmp_path, case):
    data, what = BAD_CSV_TASKS[case]
    (tmp_path / "data.csv").write_bytes(data)
    path = tmp_path / "task.yaml"
    task = {**CSV_TASK["task"], "path": "data.csv", "scale": case.startswith("scaled")}
    path.write_text(yaml.safe_dump(_edit("task", task, CSV_TASK)))
    proc = _run_cli(["train", str(path), "--backend", "native", "--out", str(tmp_path / "run"), "--no-progress"],
                    tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"metamaterial: {path}: task.path: {tmp_path / 'data.csv'}{what}\n"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("classification, rest", [(False, "the rest are targets"), (True, "the next is the class")])
def test_a_csv_task_of_too_many_inputs_names_its_columns(tmp_path, classification, rest):
    """``task.n_inputs`` counts the CSV's first columns; one that leaves no target column names the columns there
    are; a task.path that is a folder says it cannot be read."""
    (tmp_path / "data.csv").write_bytes(CSV_HEADER)
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(_edit("task", {**CSV_TASK["task"], "path": "data.csv"}, CSV_TASK)))
    args = ["train", str(path), "--backend", "native", "--out", str(tmp_path / "run"), "--no-progress",
            "--set", f"task.classification={str(classification).lower()}"]
    proc = _run_cli([*args, "--set", "task.n_inputs=3"], tmp_path)
    assert proc.returncode == 2 and proc.stderr == (
        f"metamaterial: {path}: --set task.n_inputs=3: task.n_inputs: must be in [1, 2] for {tmp_path / 'data.csv'} "
        f"(got 3); give how many of its columns (v_in, target_a, target_b), from the first, are inputs: {rest}\n")
    (tmp_path / "folder").mkdir()
    proc = _run_cli([*args, "--set", "task.path=folder"], tmp_path)
    assert proc.returncode == 2 and proc.stderr == (
        f"metamaterial: {path}: --set task.path=folder: task.path: {tmp_path / 'folder'}: cannot read the CSV (Is a "
        "directory); check the path, or give a CSV file\n")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("cfg_path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_round_trip(cfg_path, tmp_path):
    cfg = load_config(cfg_path)
    resolved = tmp_path / "resolved.yaml"
    resolved.write_text(dump_config(cfg))
    assert load_config(resolved) == cfg


# -- defaults live in the config models, and the resolved config spells each one out ----------------------------
def _load(doc: dict, tmp_path: Path, overrides: list[str] | None = None):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_config(path, overrides)


def test_task_defaults_are_resolved_in_the_config(tmp_path):
    xor = _load(_edit("task", {"name": "xor"}), tmp_path).task
    assert xor.labels == [0.0, -0.087] and xor.targets == [0.1, 0.3] and xor.test_fraction == 0.0
    assert xor.x is None and xor.y is None  # the ramp is the regression task's only
    reg = load_config(ROOT / "configs" / "regression.yaml").task
    assert reg.x == REGRESSION_X.tolist() and reg.y == REGRESSION_Y.tolist()
    text = dump_config(load_config(ROOT / "configs" / "xor.yaml"))
    assert "null" not in yaml.safe_dump(yaml.safe_load(text)["task"]["labels"])
    for key in ("labels:", "targets:", "test_fraction: 0.0", "t_learn: null", "backend: ngspice", "itl1: 500"):
        assert key in text, key


def test_iris_holds_out_a_fifth_by_default_and_none_when_told(tmp_path):
    iris = ROOT / "configs" / "iris.yaml"
    assert load_config(iris).task.test_fraction == 0.2
    zero = load_config(iris, ["task.test_fraction=0"]).task
    assert zero.test_fraction == 0.0
    task = iris_task(zero.low, zero.high, zero.target_on, zero.target_off, zero.test_fraction, 0)
    assert task.n_points == 150 and (task.test_inputs is None or len(task.test_inputs) == 0)
    assert load_config(iris, ["task.test_fraction=null"]).task.test_fraction == 0.2


def test_t_learn_is_the_rate_s_switch_time_or_the_default(tmp_path):
    xor = load_config(ROOT / "configs" / "xor.yaml")  # nmos, rate 30 / V
    hw = xor.hardware
    assert hw.t_learn == xor.learning.rate * hw.resistance * hw.capacitance / hw.gain == pytest.approx(0.66)
    no_rate = load_config(ROOT / "configs" / "xor.yaml", ["learning.rate=null"])
    assert no_rate.hardware.t_learn == T_LEARN
    # a resistor network's rate is in S per V^2: it does not set a gate's switch time
    assert load_config(ROOT / "configs" / "xor_linear.yaml").hardware.t_learn == T_LEARN
    # a saved resolved config loads again as itself; its t_learn stays null where the rate fixes it, so a copy
    # with another rate reads as that rate
    saved = tmp_path / "config.yaml"
    saved.write_text(dump_config(xor))
    assert load_config(saved) == xor
    assert yaml.safe_load(saved.read_text())["hardware"]["t_learn"] is None
    faster = load_config(saved, ["learning.rate=60"])
    assert faster.hardware.t_learn == pytest.approx(2 * hw.t_learn) and faster == load_config(
        ROOT / "configs" / "xor.yaml", ["learning.rate=60"])
    # a t_learn the hardware fixes (no rate) is spelled out
    saved.write_text(dump_config(no_rate))
    assert yaml.safe_load(saved.read_text())["hardware"]["t_learn"] == T_LEARN and load_config(saved) == no_rate


# -- YAML strictness --------------------------------------------------------------------------------------------
def test_duplicate_key_is_refused_naming_key_and_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("name: xor\nseed: 1\nseed: 2\n")
    with pytest.raises(ConfigError, match=rf"^{path}:3: duplicate key 'seed' \(got it first at line 2\); keep one"):
        load_config(path)


def test_yaml_floats_without_a_dot_are_numbers(tmp_path):
    cfg = load_config(ROOT / "configs" / "xor.yaml", ["learning.rate=null", "hardware.t_learn=1e-4"])
    assert cfg.hardware.t_learn == 1e-4


@pytest.mark.parametrize("key", ["roles.rails.1.volts", "roles.rails[1].volts"])
def test_set_reads_list_items_with_dots_or_brackets(key):
    assert load_config(ROOT / "configs" / "xor.yaml", [f"{key}=0.2"]).roles.rails[1].volts == 0.2


def test_set_errors_name_the_override():
    raw = yaml.safe_load(yaml.safe_dump(XOR))
    with pytest.raises(ConfigError, match=r"^--set x\[0\]\[: not a key path"):
        apply_override(raw, "x[0][=1")


# -- --backend is --set simulator.backend, and what a resume compares ---------------------------------------------
def _cli_config(*argv: str):
    args = _parser().parse_args(list(argv))
    return load_config(args.config, config_overrides(args))


@pytest.mark.parametrize("command", ["train", "netlist", "solve"])
def test_backend_option_is_the_simulator_backend_override(command):
    extra = ["--out", "unused"] if command == "netlist" else []
    by_option = _cli_config(command, str(ROOT / "configs" / "xor.yaml"), "--backend", "native", *extra)
    by_set = _cli_config(command, str(ROOT / "configs" / "xor.yaml"), "--set", "simulator.backend=native", *extra)
    assert by_option == by_set and by_option.simulator.backend == "native"
    assert "backend: native" in dump_config(by_option)


def test_resuming_a_native_run_with_backend_ngspice_names_simulator_backend():
    xor = str(ROOT / "configs" / "xor.yaml")
    saved = dump_config(_cli_config("train", xor, "--backend", "native"))
    assert config_differences(saved, _cli_config("train", xor, "--backend", "native", "--resume", "r")) == []
    again = _cli_config("train", xor, "--backend", "ngspice", "--resume", "r")
    assert config_differences(saved, again) == ["simulator.backend"]


def test_config_differences_name_each_key_path():
    xor = load_config(ROOT / "configs" / "xor.yaml")
    saved = yaml.safe_load(dump_config(xor))
    saved["roles"]["inputs"][1] = [3, 2]          # an item of a list in a list
    saved["roles"]["rails"].append({"node": 0, "volts": 0.0})  # a list of another length
    saved["network"]["periodic"] = 1              # a bool is not a number
    saved["learning"]["epochs"] = 3000.0          # an int and an equal float are the same value
    del saved["simulator"]["gmin"]                # a key only the new config has
    saved["task"]["old_key"] = 1                  # a key only the saved config has
    assert config_differences(yaml.safe_dump(saved, sort_keys=False), xor) == [
        "network.periodic", "roles.inputs[1][1]", "roles.rails", "task.old_key", "simulator.gmin"]


def test_a_run_saved_before_a_section_existed_resumes_when_the_new_keys_keep_their_defaults():
    xor = load_config(ROOT / "configs" / "xor.yaml")
    saved = yaml.safe_load(dump_config(xor))
    del saved["timing"]                           # a section this version added since
    del saved["simulator"]["gmin"]                # and a key
    assert config_differences(yaml.safe_dump(saved, sort_keys=False), xor) == []
    changed = load_config(ROOT / "configs" / "xor.yaml", ["simulator.gmin=1e-10"])
    assert config_differences(yaml.safe_dump(saved, sort_keys=False), changed) == ["simulator.gmin"]


def test_a_run_saved_before_split_seed_keeps_the_held_out_split_of_its_seed(tmp_path):
    """Until task.split_seed existed (2026-12-02) the held-out split came from the run's seed: a run directory saved
    then (no split_seed key) reads back with split_seed = its seed, so eval scores, and a resume trains on, the
    points it was trained on; resuming it with today's config (split 0) names the key."""
    iris3 = load_config(ROOT / "configs" / "iris.yaml", ["seed=3"])
    saved = yaml.safe_load(dump_config(iris3))
    del saved["task"]["split_seed"]
    old = tmp_path / "old" / "config.yaml"
    old.parent.mkdir()
    old.write_text(yaml.safe_dump(saved, sort_keys=False))
    assert load_saved_config(old).task.split_seed == 3
    assert config_differences(old.read_text(), iris3) == ["task.split_seed"]
    assert config_differences(old.read_text(), load_config(ROOT / "configs" / "iris.yaml",
                                                           ["seed=3", "task.split_seed=3"])) == []
    new = tmp_path / "new" / "config.yaml"
    new.parent.mkdir()
    new.write_text(dump_config(iris3))
    assert load_saved_config(new).task.split_seed == 0 and config_differences(new.read_text(), iris3) == []


def test_config_differences_refuse_a_saved_file_that_is_not_a_config():
    xor = load_config(ROOT / "configs" / "xor.yaml")
    with pytest.raises(ConfigError, match=r"^saved config.yaml: the top level must be a mapping of sections \(got "
                                          r"list\); resume only a run directory that train wrote$"):
        config_differences("- 1\n", xor)
    with pytest.raises(ConfigError, match=r"^saved config.yaml:2:1: invalid YAML"):
        config_differences("name: [\n", xor)


# -- network files: roles by node name, the documented index order, a missing file named as such ------------------
NAMED_EDGES = "in n10\nn10 n2\nn2 out\nrail n2\nin out\nout rail\nn10 rail\n"
#: load_network's index order: names sorted by length, then character by character
NAMED_ORDER = ["in", "n2", "n10", "out", "rail"]
NAMED_ROLES_BY_NAME = {"inputs": ["in"], "rails": [{"node": "rail", "volts": 0.45}], "outputs": ["out"]}
NAMED_ROLES_BY_INDEX = {"inputs": [0], "rails": [{"node": 4, "volts": 0.45}], "outputs": [3]}


def _named_network_doc(path: Path, roles: dict) -> dict:
    return {"name": "named", "network": {"kind": "file", "file": str(path)}, "roles": roles,
            "device": {"kind": "resistor"}, "task": {"name": "regression"}, "learning": {"rate": 0.01}}


def _graphml(path: Path) -> Path:
    edges = [line.split() for line in NAMED_EDGES.splitlines()]
    nodes = sorted({n for e in edges for n in e})
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<graphml xmlns="http://graphml.graphdrawing.org/xmlns">\n'
                    '<graph edgedefault="undirected">\n' + "".join(f'<node id="{n}"/>\n' for n in nodes)
                    + "".join(f'<edge source="{a}" target="{b}"/>\n' for a, b in edges) + "</graph>\n</graphml>\n")
    return path


@pytest.mark.parametrize("kind", ["edges", "graphml"])
def test_network_file_roles_by_name_are_the_documented_indices(tmp_path, kind):
    from metamaterial.experiment import build_network  # noqa: PLC0415

    path = tmp_path / "named.edges"
    path.write_text(NAMED_EDGES)
    if kind == "graphml":
        path = _graphml(tmp_path / "named.graphml")
    by_name = build_network(_load(_named_network_doc(path, NAMED_ROLES_BY_NAME), tmp_path))
    by_index = build_network(_load(_named_network_doc(path, NAMED_ROLES_BY_INDEX), tmp_path))
    assert [by_name.nodes[i]["label"] for i in range(len(NAMED_ORDER))] == NAMED_ORDER
    for key in ("inputs", "rails", "outputs"):
        assert by_name.graph[key] == by_index.graph[key], key
    assert by_name.graph["inputs"] == [NAMED_ORDER.index("in")]
    assert by_name.graph["outputs"] == [[NAMED_ORDER.index("out"), None]]
    assert sorted(map(sorted, by_name.edges)) == sorted(sorted(NAMED_ORDER.index(n) for n in line.split())
                                                        for line in NAMED_EDGES.splitlines())


@pytest.mark.parametrize("roles, fragment", [
    ({**NAMED_ROLES_BY_NAME, "outputs": ["outt"]}, "roles.outputs[0]: no node is named 'outt' in"),
    ({**NAMED_ROLES_BY_NAME, "inputs": [9]}, "roles.inputs[0]: node 9 does not exist (nodes are 0..4); give an "
                                             "index from 0 to 4, or name a node as a string, e.g. 'in'"),
    ({**NAMED_ROLES_BY_NAME, "rails": [{"node": [0, 1], "volts": 0.1}]}, "roles.rails[0].node, network.kind: (row, "
     "col) addressing needs a lattice network (got [0, 1] on a file network); give the node's index or name, or use "
     "network.kind: lattice"),
])
def test_network_file_role_errors_name_the_key(tmp_path, roles, fragment):
    (tmp_path / "named.edges").write_text(NAMED_EDGES)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(_named_network_doc(Path("named.edges"), roles)))
    proc = _run_cli(["train", str(path), "--out", str(tmp_path / "run"), "--no-progress"], tmp_path)
    assert proc.returncode == 2 and fragment in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr


@pytest.mark.parametrize("kind, extra, fragment", [
    ("edges", "out in\n", "named.edges:8: the edge out-in is already on line 5 (a pair of nodes is one transistor, "
                          "whichever name comes first); list each pair of nodes once"),
    ("graphml", "out in\n", "named.graphml: the edge in-out is listed more than once"),
])
def test_a_network_file_listing_an_edge_twice_is_refused_not_merged(tmp_path, kind, extra, fragment):
    """A repeated pair was merged into one transistor without a word (5 lines, 3 edges)."""
    path = tmp_path / "named.edges"
    path.write_text(NAMED_EDGES + extra)
    if kind == "graphml":  # a directed GraphML: a -> b and b -> a are one undirected edge
        _graphml(tmp_path / "named.graphml")
        text = (tmp_path / "named.graphml").read_text().replace("undirected", "directed")
        path = tmp_path / "named.graphml"
        path.write_text(text.replace("</graph>", '<edge source="out" target="in"/>\n</graph>'))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(_named_network_doc(Path(path.name), NAMED_ROLES_BY_NAME)))
    proc = _run_cli(["netlist", str(cfg), "--out", str(tmp_path / "nl")], tmp_path)
    assert proc.returncode == 2 and fragment in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert not (tmp_path / "nl").exists()


@pytest.mark.parametrize("roles", [NAMED_ROLES_BY_NAME, NAMED_ROLES_BY_INDEX])
def test_missing_network_file_is_reported_before_roles(tmp_path, roles):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(_named_network_doc(Path("absent.edges"), roles)))
    proc = _run_cli(["train", str(path), "--out", str(tmp_path / "run"), "--no-progress"], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (f"metamaterial: {path}: file not found: {tmp_path / 'absent.edges'} "
                                   "(network.file); check the path (relative to the config's folder)"), proc.stderr


def test_the_held_out_split_is_drawn_from_task_split_seed_not_the_run_seed():
    """Every seed of a run, an ensemble or a sweep is scored on the same held-out points: the run's seed does not
    move the split (nor the digits' wiring, which its configs pin with network.seed); task.split_seed does."""
    iris = ROOT / "configs" / "iris.yaml"
    base = build(load_config(iris)).task
    other_seed = build(load_config(iris, ["seed=3"])).task
    other_split = build(load_config(iris, ["task.split_seed=3"])).task
    np.testing.assert_array_equal(base.test_inputs, other_seed.test_inputs)
    assert not np.array_equal(base.test_inputs, other_split.test_inputs)
    assert len(other_split.test_inputs) == len(base.test_inputs)
    assert seed_free(load_config(iris, ["simulator.backend=native"]))  # so a sweep's seeds train as one ensemble
    pytest.importorskip("sklearn")
    digits = ROOT / "configs" / "digits.yaml"
    a, b = build(load_config(digits)), build(load_config(digits, ["seed=5"]))
    np.testing.assert_array_equal(a.task.test_classes, b.task.test_classes)
    np.testing.assert_array_equal(a.circuit.edges, b.circuit.edges)


def test_task_validation_carves_a_validation_set_from_the_training_points_and_drops_the_held_out_ones():
    """task.validation: the run trains on the rest of the training points and is scored on the validation set; the
    held-out points are not part of the run at all (a recipe chosen on it never saw them)."""
    iris = ROOT / "configs" / "iris.yaml"
    whole = build(load_config(iris)).task
    task = build(load_config(iris, ["task.validation={fraction: 0.25, seed: 1}"])).task
    assert task.scored == "validation" and whole.scored == "held-out"
    rows = {tuple(x) for x in whole.features}  # in cm: the scale is fitted again without the validation flowers
    assert {tuple(x) for x in task.features} | {tuple(x) for x in task.test_features} == rows
    assert not {tuple(x) for x in task.features} & {tuple(x) for x in task.test_features}
    assert not {tuple(x) for x in task.test_features} & {tuple(x) for x in whole.test_features}
    assert np.bincount(task.test_classes).tolist() == [10, 10, 10]  # a quarter of each class's 40
    again = build(load_config(iris, ["task.validation={fraction: 0.25, seed: 2}"])).task
    assert not np.array_equal(again.test_inputs, task.test_inputs)
    for fraction, says in (("0.999", "class 0 keeps no training point"), ("0.001", "rounds to none")):
        with pytest.raises(ValidationError, match=rf"task\.validation\.fraction: .*{fraction} .*{says}"):
            build(load_config(iris, [f"task.validation={{fraction: {fraction}}}"]))


def test_a_saved_run_with_a_key_it_did_not_read_still_loads(tmp_path):
    """A run saved before unread keys were refused holds them as it trained: ignored. Its config.yaml loads (they
    are dropped, as training dropped them) and gives the config it trained on; as a new config it is refused."""
    doc = yaml.safe_load(dump_config(load_config(ROOT / "configs" / "xor.yaml")))
    trained = validate_config(yaml.safe_load(yaml.safe_dump(doc)))
    doc["network"]["file"] = str(tmp_path / "gone.txt")
    doc["task"]["test_fraction"] = 0.2
    doc["device"]["g_min"] = 1e-4
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=r"network.file, network.kind: a network file is read only by a network of "
                                          "kind file"):
        load_config(tmp_path / "config.yaml")
    assert load_saved_config(tmp_path / "config.yaml") == trained
    card = doc["device"]["model_file"] = str(tmp_path / "card.lib")
    (tmp_path / "card.lib").write_text(".model fet nmos (level=1 vto=0.7 kp=1e-4)\n")
    doc["device"]["preset"] = "ald1106-l1"  # ignored beside the card
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(doc))
    saved = load_saved_config(tmp_path / "config.yaml")
    assert saved.device.model_file == card and saved.device.preset == "ald1106-fit"


def test_a_folder_given_as_the_config_says_what_to_give(tmp_path):
    """``solve RUN`` or ``train RUN`` read a folder as a file ("Is a directory"); they say what the folder is and
    which command reads it."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(XOR))
    cases = [(["solve", str(run), "--json"], f"{run}: a run directory, and solve reads a config file (.yaml); for its "
              f"trained outputs use eval {run} --json, for its netlists netlist {run}, for its initial gates solve "
              f"{run}/config.yaml"),
             (["train", str(run)], f"{run}: a run directory, and train reads a config file (.yaml); to train that "
              f"run on, use train --resume {run}"),
             (["solve", str(tmp_path)], f"{tmp_path}: a folder, and solve reads a config file (.yaml); give a config "
              "file")]
    for args, line in cases:
        proc = _run_cli(args, tmp_path)
        assert (proc.returncode, proc.stderr) == (2, f"metamaterial: {line}\n"), args


@pytest.mark.parametrize("text", ["2e3", "2.0e3", "2000.0"])
def test_a_whole_number_read_as_a_float_is_told_how_to_write_it(tmp_path, text):
    """YAML reads 2e3 as the float 2000.0, which an integer key refuses: "give a whole number" left the user who
    wrote one puzzled; the refusal says how to write it."""
    path = tmp_path / "e.yaml"
    path.write_text((ROOT / "configs" / "xor.yaml").read_text().replace("epochs: 3000", f"epochs: {text}"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (f"{path}: learning.epochs: Input should be a valid integer (got 2000.0); write the "
                              "whole number without a decimal point or exponent: 2000")


@pytest.mark.parametrize(("key", "meant"), [
    ("learning.nuge", "learning.nudge"), ("learnig", "learning"), ("device.params.vt0", "device.params.vto"),
    ("roles.rails[0].volt", "roles.rails[0].volts"), ("learning.init.hi", "learning.init.high"),
    ("device.mismatch.vto_sgima", "device.mismatch.vto_sigma"), ("simulator.reltoll", "simulator.reltol"),
    ("timing.settle.t_stp", "timing.settle.t_stop"), ("foo", None), ("learning.x", None)])
def test_a_misspelt_key_is_told_the_key_of_its_section_it_is_closest_to(key, meant):
    """A misspelt key named only itself; the key it most likely meant, of the same section (a rail's keys inside
    roles.rails, a preset's parameters inside device.params), is named beside it, and nothing when none is close."""
    raw = copy.deepcopy(XOR)
    raw["roles"]["rails"] = [{"node": [0, 0], "volts": 1.0}]
    section, *rest = key.replace("[0]", ".0").split(".")
    node = raw.setdefault(section, {}) if rest else raw
    for part in rest[:-1]:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[rest[-1] if rest else section] = 1
    with pytest.raises(ConfigError) as err:
        validate_config(raw, "x.yaml")
    hint = f" (did you mean {meant}?)" if meant else ""
    assert str(err.value).startswith(f"x.yaml: {key}: unknown key{hint}; remove it or check its spelling"), err.value


@pytest.mark.parametrize("config", ["iris", "digits"])
@pytest.mark.parametrize(("on", "off"), [(0.1, 0.2), (0.2, 0.2)])
def test_a_class_target_not_above_the_others_is_refused(config, on, off):
    """argmax reads the highest output as the class: with target_on at or below target_off the right class was
    trained to the lower output, and the accuracy scored the network's worst guess (or nothing was learned)."""
    cfg = load_config(ROOT / "configs" / f"{config}.yaml", [f"task.target_on={on}", f"task.target_off={off}"])
    with pytest.raises(ValidationError) as err:
        build(cfg)
    assert str(err.value) == (f"task.target_on, task.target_off: the right class's target must be above the others' "
                              f"(got on {on}, off {off}); the highest output is the predicted class, so give "
                              "target_on > target_off")


def test_a_nearest_level_margin_stops_at_half_the_gap_and_a_margin_below_it_is_taken():
    """The margin ``learning.margin`` is compared with grows as an output nears its own label and is half the gap
    on it and past it (XOR's labels 0 and -0.087 V: 43.5 mV), so a margin of that or more is refused and one just
    below it builds."""
    task = build(load_config(ROOT / "configs" / "xor.yaml")).task
    past = task.margins(np.array([[-0.087], [-0.1], [-0.5], [0.2]]), np.array([1, 1, 1, 0]))
    assert np.allclose(past, 0.0435, rtol=0, atol=1e-15)
    assert task.margins(np.array([[-0.05]]), np.array([1]))[0] == pytest.approx(0.0065, abs=1e-15)
    for margin in (0.0435, 0.05):
        with pytest.raises(ConfigError, match=rf"a margin of {margin} V cannot be reached"):
            build(validate_config(_edit("learning.margin", margin), "xor.yaml"))
    assert build(validate_config(_edit("learning.margin", 0.0434), "xor.yaml")).rule.margin == 0.0434
