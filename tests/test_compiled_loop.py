"""The native solver's compiled training loop (``sim.native_loop``) against the Python step, on the native solver.

Both paths draw the same data order and masks and start each solve from the same point, so they must end with
the same gates; every learning feature the kernel implements is exercised by one case. Training equivalence
with ngspice is tests/test_backends.py (which runs the compiled loop).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from conftest import ROOT, stopped_after_checkpoint
from metamaterial import experiment
from metamaterial.configfile import load_config
from metamaterial.errors import ConfigError, ValidationError
from metamaterial.experiment import build, initial_controls, make_solver
from metamaterial.learning import trainer as trainer_module
from metamaterial.learning.rules import CoupledLearning
from metamaterial.learning.trainer import Trainer, TrainState
from metamaterial.runfiles import load_checkpoint
from metamaterial.runs import open_run_dir, train_replicas, train_run
from metamaterial.sim import native_loop
from metamaterial.sim.native import NativeSolver

SAME_GATES_V = 1e-12  # both paths do the same arithmetic; observed bit-identical
CASES = {
    "xor: full batch, hinge, differential output": ("xor", ["learning.epochs=300"]),
    "regression: cycle, mse": ("regression", ["learning.epochs=100"]),
    "iris: shuffle, hinge on argmax, held-out set": ("iris", ["learning.epochs=8"]),
    "iris: multi-class hinge, top-rival nudge": ("iris", ["learning.epochs=8", "learning.loss=multiclass_hinge",
                                                          "learning.nudge=0.05"]),
    "desync p=0.5, shuffle, leak, bias": ("xor", ["learning.epochs=200", "learning.schedule=shuffle",
                                                   "learning.update_probability=0.5", "learning.leak.tau=20",
                                                   "learning.leak.rest=1.5", "learning.bias=0.001",
                                                   "learning.bias_sigma=0.002"]),
    "mini-batches of 4": ("linear_regression", ["learning.epochs=100", "learning.schedule=mini_batch",
                                                "learning.batch_size=4"]),
    "twin mismatch": ("xor", ["learning.epochs=200", "device.mismatch.vto_sigma=0.01",
                              "device.mismatch.k_sigma=0.005", "device.mismatch.seed=3"]),
    "potentiometers: sign rule on taps": ("pot_regression", ["learning.epochs=60"]),
    "potentiometers: dead band": ("pot_regression", ["learning.epochs=60", "learning.dead_band=0.0005"]),
    "desync p=0.25, fixed-count masks": ("regression", ["learning.epochs=100", "learning.update_probability=0.25",
                                                        "learning.update_mask=fixed_count"]),
    "linear resistors": ("xor_linear", ["learning.epochs=200"]),
    "allostery: two single-ended outputs": ("allostery", ["learning.epochs=100"]),
    "iris: only the pushed outputs' edges update": ("iris", ["learning.epochs=8", "learning.loss=multiclass_hinge",
                                                             "learning.nudge=0.05", "learning.update_edges=pushed"]),
    "iris: a rate falling by 0.7 per epoch": ("iris", ["learning.epochs=8", "learning.rate_decay=0.7"]),
    "iris: read noise under a multi-class hinge, pushed edges": ("iris", [
        "learning.epochs=8", "learning.loss=multiclass_hinge", "learning.nudge=0.05", "learning.update_edges=pushed",
        "learning.read_noise=0.002"]),
    "iris: the noisy free read decides": ("iris", ["learning.epochs=8", "learning.read_noise=0.002",
                                                   "learning.noisy_decisions=true"]),
    "read noise with desync masks and mini-batches": ("linear_regression", [
        "learning.epochs=100", "learning.schedule=mini_batch", "learning.batch_size=4",
        "learning.update_probability=0.5", "learning.read_noise=0.001"]),
}
ENSEMBLE_SEEDS = 5


def _trainer(name: str, overrides: list[str], fused: bool, solver=None) -> tuple[Trainer, experiment.Setup]:
    setup = build(load_config(ROOT / "configs" / f"{name}.yaml",
                              ["learning.eval_every=7", "learning.record_every=3", "simulator.backend=native",
                               *overrides]))
    return Trainer(setup.circuit, setup.task, setup.rule, setup.dynamics, setup.params,
                   solver or make_solver(setup), setup.hardware, compiled=fused), setup


def _rng_states(state: TrainState) -> list[dict]:
    return [rng.bit_generator.state for rng in state.rngs]


def _train(name: str, overrides: list[str], fused: bool,
           solver: NativeSolver | None = None) -> tuple[Trainer, TrainState]:
    tr, setup = _trainer(name, overrides, fused, solver)
    rng = np.random.default_rng(setup.config.seed)
    state = tr.run(tr.init_state(initial_controls(setup, rng), rng))
    return tr, state


@pytest.mark.parametrize("case", list(CASES))
def test_compiled_loop_ends_where_the_python_step_does(case):
    name, overrides = CASES[case]
    tr_py, python = _train(name, overrides, fused=False)
    tr_fused, fused = _train(name, overrides, fused=True)
    assert tr_fused.solver.loop_iterations > 0 and tr_py.solver.loop_iterations == 0  # each took its own path
    np.testing.assert_allclose(fused.controls, python.controls, rtol=0, atol=SAME_GATES_V)
    assert (fused.n_steps, fused.n_updates.tolist(), fused.n_solves) == \
        (python.n_steps, python.n_updates.tolist(), python.n_solves)
    assert [h["epoch"] for h in fused.history] == [h["epoch"] for h in python.history]
    np.testing.assert_allclose([h["loss"] for h in fused.history], [h["loss"] for h in python.history],
                               rtol=1e-9, atol=0)
    assert _rng_states(fused) == _rng_states(python)
    assert fused.trajectory_epochs == python.trajectory_epochs
    np.testing.assert_allclose(np.array(fused.trajectory), np.array(python.trajectory), rtol=0, atol=SAME_GATES_V)
    moved = np.max(np.abs(fused.controls - fused.trajectory[0])) / np.max(np.abs(fused.trajectory[0]))
    assert moved > 0.01, "the case must train for the comparison to mean anything"


def test_ensemble_compiled_equals_python():
    cfg = ["learning.epochs=150", "learning.schedule=shuffle", "learning.update_probability=0.5"]
    finals = {}
    for fused in (False, True):
        tr, setup = _trainer("xor", cfg, fused)
        rngs = [np.random.default_rng(s) for s in range(ENSEMBLE_SEEDS)]
        state = tr.run(tr.init_state(np.stack([initial_controls(setup, r) for r in rngs]), rngs))
        finals[fused] = state
    np.testing.assert_allclose(finals[True].controls, finals[False].controls, rtol=0, atol=SAME_GATES_V)
    np.testing.assert_array_equal(finals[True].n_updates, finals[False].n_updates)


def test_steps_the_kernel_cannot_converge_go_to_the_solver_retries(monkeypatch):
    """Started from unrelated voltages with 4 Newton iterations allowed, the kernel stops at the first step of each
    data point; the Python step retries it (from a cold start), and the run ends where the Python path ends."""
    calls = {"n": 0}
    real = Trainer.step_many

    def counting(self, *args, **kwargs):
        calls["n"] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "step_many", counting)
    finals = {}
    for fused in (False, True):
        calls["n"] = 0
        tr, setup = _trainer("regression", ["learning.epochs=3", "learning.eval_every=3"], fused,
                             NativeSolver(max_iter=4))
        rng = np.random.default_rng(0)
        state = tr.init_state(initial_controls(setup, rng), rng)
        points = setup.task.n_points
        unrelated = np.random.default_rng(1).uniform(0.0, 0.45, (points, setup.circuit.n_nodes))
        for clamped in (False, True):  # what each data point's next solve starts from (solved for nothing)
            memory = tr.solver.tag_memory(setup.circuit, clamped, points)
            memory.v[:], memory.controls[:] = unrelated, np.nan
        finals[fused] = tr.run(state)
        if fused:
            assert calls["n"] == points < state.n_steps  # one Python step per data point, then the kernel again
    np.testing.assert_allclose(finals[True].controls, finals[False].controls, rtol=0, atol=SAME_GATES_V)


def test_a_replaced_rule_takes_effect_in_the_compiled_loop():
    finals = {}
    for fused in (False, True):
        tr, setup = _trainer("regression", ["learning.epochs=30"], fused)
        rng = np.random.default_rng(0)
        state = tr.run(tr.init_state(initial_controls(setup, rng), rng))
        tr.rule = replace(tr.rule, rate=3 * tr.rule.rate)
        finals[fused] = tr.run(state, until=60).controls
    np.testing.assert_allclose(finals[True], finals[False], rtol=0, atol=SAME_GATES_V)


def test_a_step_of_epoch_e_takes_the_rate_times_the_decay_to_the_e_minus_1():
    """step.epoch_rate's closed form, through the Python step: a step of epoch 4 with decay 0.5 moves the gates as a
    step of epoch 1 at an eighth of the rate."""
    decayed, _ = _trainer("iris", ["learning.rate_decay=0.5"], fused=False)
    plain, setup = _trainer("iris", [], fused=False)
    plain.rule = replace(plain.rule, rate=plain.rule.rate / 8)
    gates = initial_controls(setup, np.random.default_rng(0))[None]
    idx = np.arange(setup.task.n_points)[None, :]  # every point in one step: surely some active
    new, _, windows = decayed.step_many(gates, idx, None, epoch=4)
    same, _, _ = plain.step_many(gates, idx, None, epoch=1)
    assert windows[0] > 0 and np.max(np.abs(new - gates)) > 1e-4
    np.testing.assert_allclose(new, same, rtol=0, atol=SAME_GATES_V)


@pytest.mark.parametrize("batch", [1, 7], ids=["planned: the compiled loop", "unequal mini-batches: epoch by epoch"])
def test_a_vanishing_rate_decay_stops_training_after_the_first_epoch(batch):
    """With decay 1e-9 every epoch after the first moves the gates by almost nothing, on the compiled loop's plan
    and on the epoch-by-epoch Python step (mini-batches of 7 of the 120 flowers); with decay 1 they keep moving."""
    moved = {}
    for decay in (1e-9, 1.0):
        tr, setup = _trainer("iris", ["learning.epochs=3", "learning.schedule=mini_batch",
                                      f"learning.batch_size={batch}", f"learning.rate_decay={decay}"], fused=True)
        rng = np.random.default_rng(0)
        state = tr.run(tr.init_state(initial_controls(setup, rng), rng), until=1)
        first = state.controls.copy()
        state = tr.run(state)
        assert (tr.solver.loop_iterations > 0) == (batch == 1)
        moved[decay] = np.max(np.abs(state.controls - first))
    assert moved[1e-9] < 1e-6 < 1e-3 < moved[1.0]


def test_rate_decay_is_checked():
    with pytest.raises(ValidationError, match=r"CoupledLearning.rate_decay: must be in \(0, 1\] \(got 1.5\)"):
        CoupledLearning(rate_decay=1.5)
    with pytest.raises(ConfigError) as err:
        build(load_config(ROOT / "configs" / "pot_regression.yaml", ["learning.rate_decay=0.9"]))
    assert str(err.value) == ("learning.rate_decay, device.kind: a potentiometer steps one whole tap per update (sign "
                              "rule), with no rate, decay, bias or leak (got rate_decay 0.9); remove "
                              "learning.rate_decay, or use device.kind: nmos or resistor")


def test_non_finite_controls_get_the_solver_error_on_both_paths():
    for fused in (False, True):
        tr, setup = _trainer("regression", ["learning.epochs=3"], fused)
        rng = np.random.default_rng(0)
        state = tr.init_state(initial_controls(setup, rng), rng)
        state.controls[0, 4] = np.nan
        with pytest.raises(ValidationError, match="must be finite"):
            tr.run(state)


def test_what_the_compiled_loop_does_not_cover_runs_the_python_step(ngspice):
    tr, _ = _trainer("regression", ["network.rows=16", "network.cols=16"], fused=True)
    assert "sparse" in native_loop.unsupported(tr.solver, tr.program)
    for name, overrides, solver in (("regression", ["network.rows=16", "network.cols=16"], None),
                                    ("xor", [], ngspice)):
        tr, setup = _trainer(name, [*overrides, "learning.epochs=2"], fused=True, solver=solver)
        rng = np.random.default_rng(0)
        state = tr.run(tr.init_state(initial_controls(setup, rng), rng))
        assert state.n_steps > 0 and getattr(tr.solver, "loop_iterations", 0) == 0
    tr, setup = _trainer("linear_regression", ["learning.schedule=mini_batch", "learning.batch_size=3",
                                               "learning.epochs=2"], fused=True)
    rng = np.random.default_rng(0)
    state = tr.run(tr.init_state(initial_controls(setup, rng), rng))
    assert state.n_steps == 2 * 3 and tr.solver.loop_iterations == 0  # 8 points in batches of 3, 3, 2


def test_resumed_native_run_ends_where_the_whole_run_does(tmp_path, monkeypatch):
    """A native run stopped right after a checkpoint and resumed ends with the uninterrupted run's gates."""
    cfg = load_config(ROOT / "configs" / "xor.yaml", ["learning.epochs=400", "learning.checkpoint_every=100"])
    whole = train_run(cfg, tmp_path / "whole", backend="native", progress=False, plots=False)
    with stopped_after_checkpoint(monkeypatch, "save_checkpoint", 200):
        train_run(cfg, tmp_path / "killed", backend="native", progress=False, plots=False)
    resumed = train_run(cfg, tmp_path / "killed", resume=True, backend="native", progress=False, plots=False)
    np.testing.assert_array_equal(resumed.state.controls, whole.state.controls)
    np.testing.assert_array_equal(resumed.state.n_updates, whole.state.n_updates)
    assert resumed.state.n_steps == whole.state.n_steps



def test_a_run_with_a_run_directory_ends_where_one_without_does(tmp_path):
    """Checkpoints reset the solver's warm starts (so that a resume is exact); runs without a run directory (the
    claims, sweeps, scripts) reset at the same epochs, so the same seeds end with the same gates either way. Seeds
    10, 85 and 90 of the shipped XOR ended on different sides of the success margin when they did not."""
    cfg = load_config(ROOT / "configs" / "xor.yaml")
    seeds = [10, 85, 90]
    saved = train_replicas(cfg, seeds, backend="native", run_dir=open_run_dir(cfg, tmp_path / "run", resume=False))
    bare = train_replicas(cfg, seeds, backend="native")
    np.testing.assert_array_equal(bare.state.controls, saved.state.controls)
    np.testing.assert_array_equal(load_checkpoint(tmp_path / "run")[0].controls, saved.state.controls)


@pytest.mark.parametrize("overrides", [["learning.epochs=3"], ["learning.epochs=3", "learning.read_noise=0.001"]],
                         ids=["planned steps", "steps drawn as they go"])
def test_on_step_observes_the_run_and_cannot_steer_it(overrides):
    """A callback gets the controls after every step as a read-only view: writing to it is an error, and a run
    watched step by step ends with the gates of a run not watched."""
    seen = []

    def watch(controls: np.ndarray) -> None:
        seen.append(controls.copy())
        with pytest.raises(ValueError, match="read-only"):
            controls[0, 0] = 0.0

    tr, setup = _trainer("xor", overrides, fused=True)
    rng = np.random.default_rng(0)
    watched = tr.run(tr.init_state(initial_controls(setup, rng), rng), on_step=watch)
    tr, setup = _trainer("xor", overrides, fused=True)
    rng = np.random.default_rng(0)
    plain = tr.run(tr.init_state(initial_controls(setup, rng), rng))
    assert len(seen) == 3 * setup.params.schedule.steps_per_epoch(setup.task.n_points)
    np.testing.assert_array_equal(seen[-1], plain.controls)
    np.testing.assert_array_equal(watched.controls, plain.controls)


def test_noise_beyond_the_plan_budget_is_drawn_step_by_step_to_the_same_gates(monkeypatch):
    """Read noise is drawn with the plan (both phases of every step) or, when an epoch's draws would not fit in
    ``MAX_NOISE_BYTES``, step by step on the Python step: the same draws from the same generators either way."""
    overrides = ["learning.epochs=20", "learning.read_noise=0.002"]
    planned = _train("iris", overrides, fused=True)[1]
    monkeypatch.setattr(trainer_module, "MAX_NOISE_BYTES", 0)
    tr, stepwise = _train("iris", overrides, fused=True)
    assert tr.solver.loop_iterations == 0  # nothing was planned
    np.testing.assert_allclose(stepwise.controls, planned.controls, rtol=0, atol=SAME_GATES_V)
    assert _rng_states(stepwise) == _rng_states(planned)
    assert 0 < planned.n_updates[0] < planned.n_steps  # some steps past the hinge drew noise they did not use
