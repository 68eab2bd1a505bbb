"""Native against ngspice where it matters most: whole training runs, ensembles against single runs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, stopped_after_checkpoint
from metamaterial.configfile import load_config
from metamaterial.experiment import build, initial_controls, make_trainer
from metamaterial.runs import ensemble_run, train_replicas, train_run

EQUIVALENCE_EPOCHS = 1000
GATE_AGREEMENT_V = 1e-6
ENSEMBLE_SEEDS = 6
HELD_OUT_SEEDS = 3
NOISY_EPOCHS = 20
READ_NOISE_V = 0.002


@pytest.mark.parametrize("config", ["xor", "regression"])
def test_training_ends_with_the_same_gates_on_both_backends(config, tmp_path):
    cfg = load_config(ROOT / "configs" / f"{config}.yaml",
                      [f"learning.epochs={EQUIVALENCE_EPOCHS}", "learning.eval_every=100", "learning.record_every=100"])
    runs = {b: train_run(cfg, tmp_path / b, backend=b, progress=False, plots=False) for b in ("ngspice", "native")}
    gates = {b: r.state.controls for b, r in runs.items()}
    assert np.max(np.abs(gates["native"] - gates["ngspice"])) <= GATE_AGREEMENT_V
    assert runs["native"].summary["final_loss"] == pytest.approx(runs["ngspice"].summary["final_loss"], rel=1e-4)
    moved = np.max(np.abs(runs["native"].state.trajectory[0] - gates["native"]))
    assert moved > 0.1, "training must move the gates for this comparison to mean anything"


def test_ensemble_replicas_equal_single_runs(tmp_path):
    cfg = load_config(ROOT / "configs" / "xor.yaml", ["learning.epochs=400", "learning.eval_every=400",
                                                      "learning.schedule=shuffle", "learning.update_probability=0.5"])
    seeds = list(range(ENSEMBLE_SEEDS))
    state = train_replicas(cfg, seeds, backend="native").state
    for r, seed in enumerate(seeds):
        single = train_run(cfg.model_copy(update={"seed": seed}), tmp_path / str(seed), backend="native",
                           progress=False, plots=False)
        np.testing.assert_allclose(state.controls[r], single.state.controls[0], atol=1e-9, rtol=0)


def test_with_read_noise_and_a_hinge_replicas_equal_single_runs():
    """Every step draws its read noise for both phases, whether or not a point is past the hinge, so a replica's
    noise does not depend on the other replicas' hinges. (It once did: a replica drew the clamped phase's noise
    whenever any replica had an active point, and these ensembles ended 0.2 V from their single runs.) Bit for bit,
    with evaluations between epochs: a replica's solves start where its single run's do (its clamped phase runs only
    when it has an active point, and evaluation leaves the warm starts as it found them); a warm start moves the
    operating point Newton converges to in its last bits (2.2e-16 V in a gate after 20 epochs, when it did not)."""
    cfg = load_config(ROOT / "configs" / "iris.yaml", [f"learning.epochs={NOISY_EPOCHS}", "learning.eval_every=1",
                                                       f"learning.read_noise={READ_NOISE_V}"])
    seeds = list(range(HELD_OUT_SEEDS))
    ensemble = train_replicas(cfg, seeds, backend="native").state
    assert 0 < ensemble.n_updates.min() and ensemble.n_updates.max() < ensemble.n_steps, \
        "some steps must be past the hinge for this test to mean anything"
    for r, seed in enumerate(seeds):
        single = train_replicas(cfg, [seed], backend="native").state
        np.testing.assert_array_equal(ensemble.controls[r], single.controls[0])
        assert ensemble.n_updates[r] == single.n_updates[0]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled loop", "python step"])
def test_evaluating_inside_a_run_does_not_change_what_it_trains(compiled):
    """Final gates bit for bit the same whether the run evaluates after every epoch or only at the end, for a
    single run and an ensemble (read noise, hinge, held-out set); and so are the final evaluations, which read the
    same warm starts. Evaluation once overwrote the training points' warm starts, and these gates moved by up to
    5.3e-15 V with the schedule."""
    cfg = load_config(ROOT / "configs" / "iris.yaml", [f"learning.epochs={NOISY_EPOCHS}", "simulator.backend=native",
                                                       f"learning.read_noise={READ_NOISE_V}"])
    setup = build(cfg)
    for seeds in ([0], list(range(HELD_OUT_SEEDS))):
        ends = []
        for eval_every in (1, NOISY_EPOCHS):
            trainer = make_trainer(setup, eval_every=eval_every)
            trainer.compiled = compiled
            rngs = [np.random.default_rng(s) for s in seeds]
            state = trainer.run(trainer.init_state(np.stack([initial_controls(setup, r) for r in rngs]), rngs))
            assert len(state.history) == (NOISY_EPOCHS // eval_every) + 1
            ends.append(state)
        every, at_end = ends
        assert 0 < every.n_updates.min() and every.n_updates.max() < every.n_steps, \
            "some steps must be past the hinge for this test to mean anything"
        np.testing.assert_array_equal(every.controls, at_end.controls)
        per_evaluation = len(seeds) * (setup.task.n_points + len(setup.task.test_inputs))
        assert every.n_solves - at_end.n_solves == (NOISY_EPOCHS - 1) * per_evaluation
        for key in ("loss", "accuracy", "test_loss", "test_accuracy"):
            np.testing.assert_array_equal(every.history[-1][key], at_end.history[-1][key])


def test_cli_ensemble_reports_the_success_rate(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "train", str(ROOT / "configs" / "xor.yaml"),
                           "--backend", "native", "--seeds", "8", "--out", str(tmp_path), "--no-progress",
                           "--set", "learning.epochs=600"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = (tmp_path / "ensemble.csv").read_text().strip().splitlines()[1:]
    assert len(rows) == 8 and summary["seeds"] == list(range(8))
    assert summary["success_count"] == sum(r.endswith(",true") for r in rows)
    assert f"{summary['success_count']}/8 seeds" in proc.stdout


def test_cli_ensemble_leads_with_the_held_out_accuracy_and_its_spread(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "train", str(ROOT / "configs" / "iris.yaml"),
                           "--backend", "native", "--seeds", str(HELD_OUT_SEEDS), "--out", str(tmp_path),
                           "--no-progress", "--no-plots", "--set", "learning.epochs=40"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = (tmp_path / "ensemble.csv").read_text().split()
    acc = [float(dict(zip(lines[0].split(","), line.split(",")))["test_accuracy"]) for line in lines[1:]]
    assert len(set(acc)) > 1, "the seeds must differ for the spread to mean anything"
    pct = [f"{a:.0%}" if round(a * 100, 1) % 1 == 0 else f"{a:.1%}" for a in (min(acc), max(acc))]
    assert "held-out accuracy mean" in proc.stdout and f"{pct[0]}-{pct[1]} over seeds" in proc.stdout, proc.stdout


def test_ensemble_reports_held_out_accuracy_of_each_replica(tmp_path):
    """Held-out loss and accuracy per replica, as the single-run evaluation gives them for that replica's gates;
    the held-out split comes from task.split_seed, not the run's seed, so replica r is also the single run of seed
    r (replicas 0 and the last checked)."""
    cfg = load_config(ROOT / "configs" / "iris.yaml", ["learning.epochs=6", "learning.eval_every=3"])
    seeds = list(range(cfg.seed, cfg.seed + HELD_OUT_SEEDS))
    done = train_replicas(cfg, seeds, backend="native")
    state, last = done.state, done.state.history[-1]
    for r in range(HELD_OUT_SEEDS):
        single = done.trainer.evaluate(state.controls[r], test=True)
        assert last["test_accuracy"][r] == single.accuracy
        assert last["test_loss"][r] == pytest.approx(single.loss, rel=1e-9)
    summary = ensemble_run(cfg, tmp_path / "ens", HELD_OUT_SEEDS, backend="native", progress=False)
    lines = (tmp_path / "ens" / "ensemble.csv").read_text().split()
    rows = [dict(zip(lines[0].split(","), line.split(","))) for line in lines[1:]]
    assert [float(row["test_accuracy"]) for row in rows] == pytest.approx(list(last["test_accuracy"]))
    assert summary["test_accuracy_mean"] == pytest.approx(np.mean(last["test_accuracy"]))
    assert summary["test_accuracy_sd"] == pytest.approx(np.std(last["test_accuracy"], ddof=1))
    assert (summary["test_accuracy_min"], summary["test_accuracy_max"]) == \
        (min(last["test_accuracy"]), max(last["test_accuracy"]))
    for r in (0, HELD_OUT_SEEDS - 1):
        one = cfg.model_copy(update={"seed": cfg.seed + r})
        single = train_run(one, tmp_path / f"single{r}", backend="native", progress=False, plots=False).summary
        assert float(rows[r]["test_accuracy"]) == pytest.approx(single["test_accuracy"], abs=1e-12)
        assert float(rows[r]["test_loss"]) == pytest.approx(single["test_loss"], rel=1e-9)


def test_killed_ensemble_resumes_to_the_same_gates(tmp_path, monkeypatch):
    """An ensemble stopped right after a checkpoint and resumed (CLI --resume with --seeds) ends where the
    uninterrupted ensemble ends."""
    overrides = ["learning.epochs=300", "learning.checkpoint_every=100", "learning.schedule=shuffle",
                 "learning.update_probability=0.5"]
    cfg = load_config(ROOT / "configs" / "xor.yaml", overrides)
    whole = ensemble_run(cfg, tmp_path / "whole", HELD_OUT_SEEDS, backend="native", progress=False)
    with stopped_after_checkpoint(monkeypatch, "save_checkpoint", 200):
        ensemble_run(cfg, tmp_path / "killed", HELD_OUT_SEEDS, backend="native", progress=False)
    args = [sys.executable, "-m", "metamaterial", "train", str(ROOT / "configs" / "xor.yaml"), "--backend", "native",
            "--no-progress", "--seeds", str(HELD_OUT_SEEDS), *[a for o in overrides for a in ("--set", o)]]
    again = subprocess.run([*args, "--resume", str(tmp_path / "killed"), "--seeds", "2"], capture_output=True,
                           text=True, cwd=ROOT, timeout=600)
    assert again.returncode == 2 and "resume with the same --seeds" in again.stderr
    resumed = subprocess.run([*args, "--resume", str(tmp_path / "killed")], capture_output=True, text=True, cwd=ROOT,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    for name in ("ensemble.csv",):
        assert (tmp_path / "killed" / name).read_text() == (tmp_path / "whole" / name).read_text()
    killed = json.loads((tmp_path / "killed" / "summary.json").read_text())
    for key in ("final_loss_median", "success_count", "n_solves", "epochs"):
        assert killed[key] == whole[key], key
    with np.load(tmp_path / "killed" / "checkpoint.npz") as a, \
            np.load(tmp_path / "whole" / "checkpoint.npz") as b:
        np.testing.assert_array_equal(a["controls"], b["controls"])
