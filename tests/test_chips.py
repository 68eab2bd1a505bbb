"""Monte Carlo over chips: per-replica twin-mismatch draws, and mismatch with a user's model card on both backends."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, stopped_after_checkpoint
from metamaterial.configfile import load_config
from metamaterial.devices import draw_mismatch
from metamaterial.errors import ConfigError
from metamaterial.experiment import build, make_solver
from metamaterial.runs import ensemble_run, train_replicas, train_run

XOR = ROOT / "configs" / "xor.yaml"
VTO_SIGMA, K_SIGMA = 0.01, 0.005  # V, relative: a reproduction's mismatch model (docs/physics.md)
CHIPS = 3
EPOCHS = 200
GATE_AGREEMENT_V = 1e-6  # native vs ngspice, as tests/test_backends.py
PER_REPLICA = [f"device.mismatch={{vto_sigma: {VTO_SIGMA}, k_sigma: {K_SIGMA}, per_replica: true}}",
               f"learning.epochs={EPOCHS}", "learning.eval_every=50", "learning.schedule=shuffle",
               "learning.checkpoint_every=100"]
LEVEL1_CARD = ".model mine nmos (level=1 vto=0.62 kp=8.5e-4 lambda=0.02 gamma=0.3 phi=0.7)\n"


def test_each_replica_is_the_chip_of_its_seed_and_equals_its_single_run(tmp_path):
    cfg = load_config(XOR, PER_REPLICA)
    summary = ensemble_run(cfg, tmp_path / "ens", CHIPS, backend="native", progress=False)
    assert summary["mismatch"]["per_replica"] and summary["mismatch"]["file"] == "mismatch.npz"
    with np.load(tmp_path / "ens" / "mismatch.npz") as z:
        seeds, dvto, kscale = [int(s) for s in z["seeds"]], z["dvto"], z["kscale"]
    assert seeds == list(range(CHIPS)) and dvto.shape == (CHIPS, 2, 32)
    for r, seed in enumerate(seeds):  # reproducible from the replica's seed alone
        draw = draw_mismatch(32, VTO_SIGMA, K_SIGMA, np.random.default_rng([seed, 1]))
        np.testing.assert_array_equal(dvto[r], draw.dvto)
        np.testing.assert_array_equal(kscale[r], draw.kscale)
    assert np.all(np.abs(dvto[0] - dvto[1]) > 0), "replicas must be different chips"
    with np.load(tmp_path / "ens" / "checkpoint.npz") as z:
        ensemble_gates = z["controls"].copy()
    for r, seed in enumerate(seeds):
        single = train_run(cfg.model_copy(update={"seed": seed}), tmp_path / str(seed), backend="native",
                           progress=False, plots=False)
        np.testing.assert_allclose(ensemble_gates[r], single.state.controls[0], atol=1e-9, rtol=0)
        with np.load(tmp_path / str(seed) / "mismatch.npz") as z:
            np.testing.assert_array_equal(z["dvto"][0], dvto[r])
    rows = (tmp_path / "ens" / "ensemble.csv").read_text().strip().splitlines()[1:]
    single_loss = json.loads((tmp_path / "1" / "summary.json").read_text())["final_loss"]
    assert float(rows[1].split(",")[2]) == pytest.approx(single_loss, rel=1e-9)


def test_one_replica_of_another_seed_is_that_seeds_chip():
    """``train_replicas(cfg, [s])`` with per_replica chips trains on the chip of seed s, as a run with ``seed=s``
    does, not on the config's seed's chip (the one-replica path took the config's draw: the quick digits claim's
    chip row named seed 1 and trained chip 0)."""
    cfg = load_config(XOR, [*PER_REPLICA, "learning.epochs=20"])
    assert cfg.seed == 0
    alone = train_replicas(cfg, [2], backend="native")
    as_seed = train_replicas(cfg.model_copy(update={"seed": 2}), [2], backend="native")
    shared = train_replicas(cfg.model_copy(update={"device": cfg.device.model_copy(update={
        "mismatch": cfg.device.mismatch.model_copy(update={"per_replica": False})})}), [2], backend="native")
    try:
        drawn = draw_mismatch(32, VTO_SIGMA, K_SIGMA, np.random.default_rng([2, 1]))
        np.testing.assert_array_equal(alone.setup.circuit.mismatch.dvto, drawn.dvto)
        np.testing.assert_array_equal(alone.state.controls, as_seed.state.controls)
        assert np.abs(alone.state.controls - shared.state.controls).max() > 1e-6  # the config seed's chip differs
    finally:
        for done in (alone, as_seed, shared):
            done.trainer.solver.close()


def test_shared_draw_is_the_default_and_the_same_for_every_replica(tmp_path):
    cfg = load_config(XOR, [f"device.mismatch={{vto_sigma: {VTO_SIGMA}, k_sigma: {K_SIGMA}}}", "learning.epochs=10",
                            "learning.eval_every=10"])
    summary = ensemble_run(cfg, tmp_path / "ens", CHIPS, backend="native", progress=False)
    assert not summary["mismatch"]["per_replica"]
    with np.load(tmp_path / "ens" / "mismatch.npz") as z:
        assert np.all(z["dvto"] == z["dvto"][0]) and np.all(z["kscale"] == z["kscale"][0])


def test_a_per_replica_ensemble_stopped_after_a_checkpoint_resumes_to_the_same_gates(tmp_path, monkeypatch):
    cfg = load_config(XOR, PER_REPLICA)
    ensemble_run(cfg, tmp_path / "whole", CHIPS, backend="native", progress=False)
    with stopped_after_checkpoint(monkeypatch, "save_checkpoint", 100):
        ensemble_run(cfg, tmp_path / "killed", CHIPS, backend="native", progress=False)
    ensemble_run(cfg, tmp_path / "killed", CHIPS, backend="native", progress=False, resume=True)
    assert (tmp_path / "killed" / "ensemble.csv").read_text() == (tmp_path / "whole" / "ensemble.csv").read_text()
    with np.load(tmp_path / "killed" / "checkpoint.npz") as a, np.load(tmp_path / "whole" / "checkpoint.npz") as b:
        np.testing.assert_array_equal(a["controls"], b["controls"])


def test_per_replica_chips_train_alike_on_ngspice_and_native():
    cfg = load_config(XOR, [*PER_REPLICA, "learning.epochs=60"])
    gates = {b: train_replicas(cfg, [0, 1], backend=b) for b in ("ngspice", "native")}
    for done in gates.values():
        done.trainer.solver.close()
    a, b = gates["ngspice"].state.controls, gates["native"].state.controls
    assert np.max(np.abs(a - b)) <= GATE_AGREEMENT_V
    assert np.max(np.abs(a[0] - a[1])) > 0.01  # two chips (and two seeds) end apart


def test_mismatch_with_a_level1_model_file_trains_alike_on_both_backends(tmp_path):
    card = tmp_path / "mine.lib"
    card.write_text(LEVEL1_CARD)
    cfg = load_config(XOR, [f"device.model_file={card}", f"device.mismatch={{vto_sigma: {VTO_SIGMA}, "
                            f"k_sigma: {K_SIGMA}}}", "learning.epochs=100", "learning.eval_every=50"])
    runs = {b: train_run(cfg, tmp_path / b, backend=b, progress=False, plots=False) for b in ("ngspice", "native")}
    gates = {b: r.state.controls for b, r in runs.items()}
    assert np.max(np.abs(gates["native"] - gates["ngspice"])) <= GATE_AGREEMENT_V
    free = (tmp_path / "ngspice" / "free.cir").read_text()
    assert ".model mine_f0 nmos (level=1 vto=" in free and "gamma=0.3 phi=0.7)" in free  # the user's card, shifted
    plain = train_run(load_config(XOR, [f"device.model_file={card}", "learning.epochs=100",
                                        "learning.eval_every=50"]), tmp_path / "plain", backend="native",
                      progress=False, plots=False)
    assert np.max(np.abs(plain.state.controls - gates["native"])) > 1e-3  # the mismatch changed the training


@pytest.mark.parametrize("overrides, message", [
    ([f"device.mismatch={{vto_sigma: {VTO_SIGMA}, seed: 4, per_replica: true}}"],
     "device.mismatch: per_replica draws each chip from its replica's seed, and seed fixes one chip for all (got "
     "seed 4); remove one of them"),
    (["device.kind=resistor", "learning.bounds=null", "learning.init={}", "learning.rate=0.05",
      f"device.mismatch={{vto_sigma: {VTO_SIGMA}}}"],
     "device.mismatch: twin mismatch shifts transistors, and a resistor network has none"),
])
def test_mismatch_refusals_name_the_key(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build(load_config(XOR, overrides))


def test_mismatch_with_a_level3_model_file_is_refused_naming_the_key(tmp_path):
    card = tmp_path / "l3.lib"
    card.write_text(".model fet3 nmos (level=3 vto=0.7 kp=5e-5 theta=0.1)\n")
    with pytest.raises(ConfigError, match=r"device.mismatch: a level-3 model card \(device.model_file\) cannot be "
                                          r"mismatched exactly"):
        build(load_config(XOR, [f"device.model_file={card}", f"device.mismatch={{vto_sigma: {VTO_SIGMA}}}"]))


def test_per_replica_chips_from_the_command_line_and_eval_reads_each_chip(tmp_path):
    """End to end: train --seeds with per_replica mismatch, then eval RUN_DIR evaluates each replica on its own chip
    (its loss is the one training recorded for it) and netlist RUN_DIR writes that chip's cards."""
    run = tmp_path / "chips"
    args = [sys.executable, "-m", "metamaterial", "train", str(XOR), "--backend", "native", "--seeds", str(CHIPS),
            "--out", str(run), "--no-progress", *[a for o in PER_REPLICA for a in ("--set", o)]]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    # the line naming what the run wrote names the chips' draws too
    assert proc.stdout.splitlines()[-1].startswith(f"run directory: {run}/ (summary.json, ensemble.csv, mismatch.npz")
    rows = [line.split(",") for line in (run / "ensemble.csv").read_text().strip().splitlines()[1:]]
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "eval", str(run), "--json"], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    evaluated = json.loads(proc.stdout)["replicas"]
    assert [rep["seed"] for rep in evaluated] == list(range(CHIPS))
    for rep, row in zip(evaluated, rows):
        assert rep["loss"] == pytest.approx(float(row[2]), rel=1e-9, abs=1e-15)
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "netlist", str(run), "--replica", "2", "--out",
                           str(tmp_path / "cir")], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    with np.load(run / "mismatch.npz") as z:
        vto_edge0 = 0.62 + float(z["dvto"][2, 0, 0])
        vto_clamped0 = 0.62 + float(z["dvto"][2, 1, 0])
    assert f".model nmos_edge_f0 nmos (level=1 vto={vto_edge0!r} " in (tmp_path / "cir" / "free_0.cir").read_text()
    # the clamped twin's own card under its own name: the two decks merged into one redefine nothing
    clamped = (tmp_path / "cir" / "clamped_0.cir").read_text()
    assert f".model nmos_edge_c0 nmos (level=1 vto={vto_clamped0!r} " in clamped and "nmos_edge_f0" not in clamped


def test_chip_trainers_evaluate_each_replica_on_its_own_chip():
    cfg = load_config(XOR, [*PER_REPLICA, "learning.epochs=20", "learning.eval_every=10"])
    done = train_replicas(cfg, [0, 1], backend="native")
    with done.trainer.solver:
        ev = done.trainer.evaluate(done.state.controls)
        swapped = done.trainer.evaluate(done.state.controls[::-1])  # replica 0's gates on chip 1 and back
    np.testing.assert_allclose(ev.loss, done.state.history[-1]["loss"], rtol=1e-12, atol=0)
    assert not np.allclose(swapped.loss, ev.loss[::-1], rtol=1e-6, atol=0)


def test_chip_trainers_report_each_chips_hinge_loss_as_its_single_run():
    cfg = load_config(XOR, [*PER_REPLICA, "learning.epochs=20", "learning.eval_every=10", "learning.loss=hinge"])
    done = train_replicas(cfg, [0, 1], backend="native")
    with done.trainer.solver:
        ev = done.trainer.evaluate(done.state.controls)
    hinge = done.state.history[-1]["hinge_loss"]
    assert hinge.shape == (2,) and np.all(hinge > 0)
    np.testing.assert_allclose(ev.hinge_loss, hinge, rtol=1e-12, atol=0)  # the evaluation, each on its own chip
    for r in (0, 1):
        single = train_replicas(cfg.model_copy(update={"seed": r}), [r], backend="native")
        single.trainer.solver.close()
        np.testing.assert_allclose(hinge[r], single.state.history[-1]["hinge_loss"][0], rtol=1e-12, atol=0)


@pytest.mark.parametrize("backend", ["native", "ngspice"])
def test_matched_twins_clamped_at_the_free_outputs_reproduce_the_free_state(backend):
    """``device.mismatch.twins: matched``: the chip's transistors still vary, the twins do not, so a clamped phase
    that holds the outputs at their free values (zero nudge) lands on the free state, and the contrast is zero;
    with independent twins it does not, which is the learning bias of twin mismatch."""
    sigmas = f"vto_sigma: {VTO_SIGMA}, k_sigma: {K_SIGMA}"
    gaps = {}
    for twins in ("matched", "independent"):
        setup = build(load_config(XOR, [f"device.mismatch={{{sigmas}, twins: {twins}}}",
                                        f"simulator.backend={backend}"]))
        c, mm = setup.circuit, setup.circuit.mismatch
        if twins == "matched":  # the free twin of the independent draw from the same seed
            independent = draw_mismatch(c.n_edges, VTO_SIGMA, K_SIGMA, np.random.default_rng([setup.config.seed, 1]))
            np.testing.assert_array_equal(mm.dvto, independent.dvto[[0, 0]])
            np.testing.assert_array_equal(mm.kscale, independent.kscale[[0, 0]])
        gates = np.random.default_rng(3).uniform(1.0, 3.0, c.n_edges)
        solver = make_solver(setup)
        try:
            free = solver.solve(c, gates, setup.task.inputs).voltages
            clamped = solver.solve(c, gates, setup.task.inputs, clamps=free[:, c.clamp_nodes]).voltages
        finally:
            solver.close()
        gaps[twins] = np.abs(clamped - free).max()
    assert gaps["matched"] < 1e-7, gaps  # solver tolerance (ngspice's reltol 1e-6 of ~0.4 V)
    assert gaps["independent"] > 1e-4, gaps  # 10 mV of V_T spread moves the clamped twin's nodes
