"""Ensembles: R independent replicas of one circuit and task trained as one batch.

Each replica has its own initial controls and its own random generator (shuffles, desynchronous masks),
drawn exactly as a single run with that generator would draw them, so replica r reproduces the single run
of its seed; the solver sees one batch of R x n samples per phase. On the native backend a 100-seed study
costs about one run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .trainer import Trainer


@dataclass
class EnsembleState:
    """Controls and counters of every replica; ``history`` rows hold per-replica arrays."""

    epoch: int
    controls: np.ndarray
    rngs: list[np.random.Generator]
    n_steps: int = 0
    n_updates: np.ndarray | None = None
    n_solves: int = 0
    history: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class EnsembleEvaluation:
    """outputs [R, P, n_out] V; loss [R] V^2; accuracy and min_margin [R] or None."""

    outputs: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray | None
    min_margin: np.ndarray | None


class EnsembleTrainer:
    """Train replicas in lockstep through ``Trainer.advance`` (one code path with single runs)."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def init_state(self, controls: np.ndarray, rngs: list[np.random.Generator]) -> EnsembleState:
        controls = np.array(controls, float)
        state = EnsembleState(0, controls, rngs, n_updates=np.zeros(len(controls), int))
        self._record(state)
        return state

    def evaluate(self, controls: np.ndarray, test: bool = False) -> EnsembleEvaluation:
        """Free outputs of every training (or held-out) point for every replica, with loss, accuracy, margin."""
        tr = self.trainer
        task, c = tr.task, tr.circuit
        x, y, cls = (task.test_inputs, task.test_targets, task.test_classes) if test else \
            (task.inputs, task.targets, task.classes)
        reps, points = len(controls), len(x)
        tags = None if test else np.arange(reps * points)  # training points: replica r, point p -> r P + p
        free = tr.solver.solve(c, np.repeat(controls, points, axis=0), np.tile(x, (reps, 1)), tags=tags).voltages
        out = c.output_values(free).reshape(reps, points, -1)
        loss = np.mean((out - y[None]) ** 2, axis=(1, 2))
        if cls is None:
            return EnsembleEvaluation(out, loss, None, None)
        acc = np.array([task.accuracy(o, cls) for o in out])
        margin = np.array([task.margins(o, cls).min() for o in out])
        return EnsembleEvaluation(out, loss, acc, margin)

    def run(self, state: EnsembleState, on_epoch: Callable[[EnsembleState], None] | None = None,
            every: int = 1) -> EnsembleState:
        """Train every replica up to ``params.epochs``; calls ``on_epoch(state)`` after every epoch that is a
        multiple of ``every``, and after the last."""
        tr = self.trainer
        epochs, reps = tr.params.epochs, len(state.controls)
        while state.epoch < epochs:
            stop = tr.next_stop(state.epoch, every if on_epoch is not None else epochs, reps)
            state.controls, solves, steps, updates, _ = tr.advance(state.controls, state.rngs, stop - state.epoch)
            state.n_solves += solves
            state.n_steps += steps
            state.n_updates += updates
            state.epoch = stop
            if state.epoch % tr.params.eval_every == 0 or state.epoch == epochs:
                self._record(state)
            if on_epoch is not None and (state.epoch % every == 0 or state.epoch == epochs):
                on_epoch(state)
        return state

    def _record(self, state: EnsembleState) -> None:
        ev = self.evaluate(state.controls)
        task = self.trainer.task
        state.n_solves += state.controls.shape[0] * task.n_points
        row = {"epoch": state.epoch, "loss": ev.loss, "accuracy": ev.accuracy, "min_margin": ev.min_margin}
        if task.test_inputs is not None and len(task.test_inputs):
            tv = self.evaluate(state.controls, test=True)
            state.n_solves += state.controls.shape[0] * len(task.test_inputs)
            row.update(test_loss=tv.loss, test_accuracy=tv.accuracy)
        state.history.append(row)
