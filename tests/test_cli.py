"""The command line end to end on ngspice: train, outputs, kill -9 and resume, netlist and solve commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT

XOR = str(ROOT / "configs" / "xor.yaml")
KILL_EPOCHS = 3000
SHORT = ["--set", "learning.epochs=300", "--no-progress"]


def _cli(*args, cwd=ROOT, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "metamaterial", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, **kw)


def _final_gates(run_dir) -> np.ndarray:
    """[E] the checkpointed gates of a single run (its one replica)."""
    with np.load(run_dir / "checkpoint.npz") as z:
        return z["controls"][0].copy()


def test_train_writes_a_complete_run_directory(tmp_path):
    out = tmp_path / "run"
    proc = _cli("train", XOR, "--out", str(out), *SHORT)
    assert proc.returncode == 0, proc.stderr
    assert f"run directory: {out}" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    for key in ("task", "backend", "epochs", "initial_loss", "final_loss", "accuracy", "wall_s", "n_solves",
                "learning_time_s", "hardware_time_s"):
        assert key in summary
    assert summary["backend"] == "ngspice" and summary["epochs"] == 300
    assert summary["final_loss"] < summary["initial_loss"]
    metrics = (out / "metrics.csv").read_text().splitlines()
    assert metrics[0].startswith("epoch,") and len(metrics) == 1 + 300 // 10 + 1
    gates = np.loadtxt(out / "gates.csv", delimiter=",", skiprows=1)
    assert gates.shape == (300 // 10 + 1, 1 + 32)
    np.testing.assert_array_equal(gates[-1, 1:], _final_gates(out))
    for name in ("config.yaml", "free.cir", "clamped.cir", "loss.png", "gates.png", "outputs.png"):
        assert (out / name).stat().st_size > 0, name
    # learning time is the switch-on time of the updates that moved the gates
    assert summary["learning_time_s"] == pytest.approx(summary["n_updates"] * summary["t_learn_s"])
    # training again into the same directory is refused rather than overwriting it
    again = _cli("train", XOR, "--out", str(out), *SHORT)
    assert again.returncode == 2 and "already holds a run" in again.stderr


def test_killed_run_resumes_to_the_same_gates(tmp_path):
    args = ["--set", f"learning.epochs={KILL_EPOCHS}", "--set", "learning.checkpoint_every=50", "--no-progress",
            "--no-plots"]
    whole = tmp_path / "whole"
    assert _cli("train", XOR, "--out", str(whole), *args).returncode == 0
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "metamaterial", "train", XOR, "--out", str(killed), *args],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            with np.load(killed / "checkpoint.npz") as z:
                if json.loads(str(z["meta"]))["epoch"] >= 200:
                    break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.01)
    assert proc.poll() is None, "training finished before it could be killed; raise KILL_EPOCHS"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with np.load(killed / "checkpoint.npz") as z:
        stopped_at = json.loads(str(z["meta"]))["epoch"]
    assert 200 <= stopped_at < KILL_EPOCHS
    resumed = _cli("train", XOR, "--resume", str(killed), *args)
    assert resumed.returncode == 0, resumed.stderr
    np.testing.assert_array_equal(_final_gates(killed), _final_gates(whole))
    a = json.loads((whole / "summary.json").read_text())
    b = json.loads((killed / "summary.json").read_text())
    for key in ("final_loss", "n_updates", "n_steps", "learning_time_s", "epochs"):
        assert a[key] == b[key], key


def test_resume_with_another_config_is_refused(tmp_path):
    out = tmp_path / "run"
    assert _cli("train", XOR, "--out", str(out), *SHORT).returncode == 0
    proc = _cli("train", XOR, "--resume", str(out), "--set", "learning.nudge=0.9", "--no-progress")
    assert proc.returncode == 2 and "from the config given now" in proc.stderr, proc.stderr
    assert "learning.nudge" in proc.stderr  # the key that differs is named
    assert len(proc.stderr.strip().splitlines()) == 1


def test_backend_option_is_saved_and_a_resume_on_another_backend_is_refused(tmp_path):
    out = tmp_path / "run"
    proc = _cli("train", XOR, "--out", str(out), "--backend", "native", "--set", "learning.epochs=20",
                "--no-progress", "--no-plots")
    assert proc.returncode == 0, proc.stderr
    assert "simulator:\n  backend: native\n" in (out / "config.yaml").read_text()
    assert json.loads((out / "summary.json").read_text())["backend"] == "native"
    proc = _cli("train", XOR, "--resume", str(out), "--backend", "ngspice", "--set", "learning.epochs=20",
                "--no-progress")
    assert proc.returncode == 2 and "from the config given now" in proc.stderr, proc.stderr
    assert "simulator.backend" in proc.stderr and "learning." not in proc.stderr  # the one key that differs
    assert len(proc.stderr.strip().splitlines()) == 1


def test_backend_choices_come_from_the_registry():
    for argv in (["solve", XOR, "--backend", "spectre"], ["reproduce", "--backend", "spectre"]):
        proc = _cli(*argv)
        assert proc.returncode == 2
        assert "invalid choice: 'spectre' (choose from ngspice, native)" in proc.stderr or \
            "invalid choice: 'spectre' (choose from 'ngspice', 'native')" in proc.stderr, proc.stderr


def test_netlist_command_writes_pairs_that_ngspice_runs(tmp_path):
    proc = _cli("netlist", XOR, "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([f"{ph}_{k}.cir" for k in range(4) for ph in ("free", "clamped")])
    run = subprocess.run(["ngspice", "-b", str(tmp_path / "clamped_3.cir")], capture_output=True, text=True)
    assert run.returncode == 0 and "n10 = " in run.stdout


def test_solve_json_shape():
    proc = _cli("solve", XOR, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["backend"] == "ngspice"
    assert result["nodes"] == [f"n{i}" for i in range(16)] and len(result["points"]) == 4
    p = result["points"][1]
    assert p["input"] == [0.0, 0.45] and set(p["free"]) == set(result["nodes"]) == set(p["clamped"])
    assert p["free"]["n15"] == 0.0 and p["free"]["n13"] == 0.45 and p["free"]["n5"] == 0.11


def test_solve_on_the_native_backend_agrees_with_ngspice():
    runs = {b: _cli("solve", XOR, "--json", "--backend", b) for b in ("ngspice", "native")}
    assert all(p.returncode == 0 for p in runs.values()), [p.stderr for p in runs.values()]
    spice, native = (json.loads(runs[b].stdout) for b in ("ngspice", "native"))
    assert native["backend"] == "native"
    for a, b in zip(spice["points"], native["points"]):
        for phase in ("free", "clamped"):
            np.testing.assert_allclose(list(b[phase].values()), list(a[phase].values()), rtol=0, atol=1e-6)
