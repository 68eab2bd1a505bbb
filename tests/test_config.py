"""Malformed configs: each gives exit code 2 and one line naming the file and key; none reaches ngspice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import CONFIGS, ROOT
from metamaterial.config import dump_config, load_config

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

# (id, document or raw text, extra CLI args, fragment the one-line message must contain)
CASES = [
    ("yaml-syntax", "name: xor\nroles: [unclosed\n", [], "invalid YAML"),
    ("top-level-list", "- 1\n- 2\n", [], "top level must be a mapping"),
    ("unknown-top-key", {**XOR, "learnig": {}}, [], "learnig: unknown key"),
    ("unknown-nested-key", _edit("learning.nudg", 0.5), [], "learning.nudg: unknown key"),
    ("wrong-type", _edit("learning.epochs", "many"), [], "learning.epochs"),
    ("nudge-out-of-range", _edit("learning.nudge", 1.5), [], "learning.nudge"),
    ("negative-rate", _edit("learning.rate", -3), [], "learning.rate"),
    ("node-off-lattice", _edit("roles.inputs.0", [5, 5]), [], "roles.inputs[0]: node (5, 5) is outside"),
    ("node-index-missing", _edit("roles.inputs.0", 99), [], "roles.inputs[0]: node 99 does not exist"),
    ("duplicate-role", _edit("roles.inputs.0", [1, 1]), [], "already has role"),
    ("missing-section", _edit("task", _DELETE), [], "task: required key is missing"),
    ("unknown-task", _edit("task.name", "sudoku"), [], "task.name"),
    ("unknown-preset", _edit("device.preset", "ald9999"), [], "device.preset"),
    ("bounds-reversed", _edit("learning.bounds", [8.0, 0.4]), [], "learning.bounds"),
    ("name-injection", _edit("name", "xor\n.control\nshell touch /tmp/pwned\n.endc"), [], "name: must be a plain name"),
    ("rail-not-number", _edit("roles.rails.0.volts", ".endc"), [], "roles.rails.0.volts"),
    ("rail-infinite", _edit("roles.rails.0.volts", float("inf")), [], "roles.rails.0.volts"),
    ("task-needs-two-inputs", _edit("roles.inputs", [[3, 3]]), [], "roles.inputs: task xor needs 2 input"),
    ("hinge-on-regression", _edit("learning.loss", "hinge", REG), [], "learning.loss: 'hinge' needs a classification"),
    ("rate-and-t-learn", _edit("hardware.t_learn", 1e-4), [], "give learning.rate or hardware.t_learn"),
    ("negative-capacitance", _edit("hardware.capacitance", -1e-6), [], "hardware.capacitance"),
    ("random-too-few-edges", _edit("network", {"kind": "random", "n_nodes": 20, "n_edges": 5}), [],
     "network.n_edges: must be in [19,"),
    ("set-unknown-key", XOR, ["--set", "learning.speed=3"], "learning.speed: unknown key"),
    ("set-bad-range", XOR, ["--set", "learning.update_probability=0"], "learning.update_probability"),
    ("no-outputs", _edit("roles.outputs", []), [], "roles.outputs"),
]


def _run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # PySpice made unimportable: a config that reached the simulator would fail with exit 1, not 2
    code = ("import sys; sys.modules['PySpice'] = None; from metamaterial.cli import main; "
            f"sys.exit(main({args!r}))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize("case_id, doc, extra, fragment", CASES, ids=[c[0] for c in CASES])
def test_malformed_config_exits_2_with_one_line(tmp_path, case_id, doc, extra, fragment):
    path = tmp_path / f"{case_id}.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    proc = _run_cli(["train", str(path), "--out", str(tmp_path / "run"), "--no-progress", *extra], tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith(f"metamaterial: {path}"), lines[0]
    assert fragment in lines[0], lines[0]
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


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
    assert proc.returncode == 2 and "network: graph is disconnected (2 components" in proc.stderr, proc.stderr


def test_missing_config_file(tmp_path):
    proc = _run_cli(["train", str(tmp_path / "nope.yaml")], tmp_path)
    assert proc.returncode == 2 and "nope.yaml: cannot read config" in proc.stderr


@pytest.mark.parametrize("cfg_path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_configs_round_trip(cfg_path, tmp_path):
    cfg = load_config(cfg_path)
    resolved = tmp_path / "resolved.yaml"
    resolved.write_text(dump_config(cfg))
    assert load_config(resolved) == cfg
