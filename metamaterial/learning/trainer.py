"""The learning loop: free solve, nudge, clamped solve, local contrast, gate-capacitor update; epoch after epoch.

Receives its solver as an argument (any ``sim.base.AbstractSolver``). State is a plain ``TrainState``
that can be checkpointed and resumed bit for bit (random generator state included).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..circuit import Circuit
from ..errors import ValidationError
from ..sim.base import AbstractSolver
from ..tasks import Task
from .gates import EdgeDynamics, HardwareParams
from .rules import CoupledLearning, mse
from .schedules import Schedule


@dataclass(frozen=True)
class TrainParams:
    """How long and how to present the data.

    Attributes:
        update_probability: p of desynchronous learning: each edge applies each update with probability p.
        read_noise: standard deviation (V) of Gaussian noise on every node voltage the learning circuit reads
            (both phases), drawn from the run's generator; 0 for an ideal read.
        eval_every: epochs between loss evaluations (a batched free solve of every point).
        record_every: epochs between stored snapshots of the controls (the gate trajectory).
    """

    epochs: int = 100
    schedule: Schedule = Schedule()
    update_probability: float = 1.0
    eval_every: int = 1
    record_every: int = 1
    read_noise: float = 0.0

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ValidationError(f"TrainParams.epochs: must be >= 0 (got {self.epochs})")
        if not (0 < self.update_probability <= 1):
            raise ValidationError(f"TrainParams.update_probability: must be in (0, 1] (got {self.update_probability})")
        if not (0 <= self.read_noise < 1):
            raise ValidationError(f"TrainParams.read_noise: must be in [0, 1) V (got {self.read_noise})")
        if self.eval_every < 1 or self.record_every < 1:
            raise ValidationError("TrainParams: eval_every and record_every must be >= 1")


@dataclass
class TrainState:
    """Everything a run needs to continue exactly where it stopped."""

    epoch: int
    controls: np.ndarray
    rng_state: dict
    n_steps: int = 0
    n_updates: int = 0
    n_solves: int = 0
    history: list[dict] = field(default_factory=list)
    trajectory_epochs: list[int] = field(default_factory=list)
    trajectory: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class Evaluation:
    outputs: np.ndarray
    loss: float
    accuracy: float | None
    min_margin: float | None
    free: np.ndarray


class Trainer:
    """Coupled learning of one circuit on one task, on the given solver.

    ``hardware`` gives the clock: t_learn per update that moved a gate, t_settle per phase.
    """

    def __init__(self, circuit: Circuit, task: Task, rule: CoupledLearning, dynamics: EdgeDynamics,
                 params: TrainParams, solver: AbstractSolver, hardware: HardwareParams = HardwareParams()) -> None:
        if task.n_inputs != circuit.n_inputs or task.n_outputs != circuit.n_outputs:
            raise ValidationError(f"task {task.name}: needs {task.n_inputs} inputs and {task.n_outputs} outputs, but "
                                  f"roles give {circuit.n_inputs} inputs and {circuit.n_outputs} outputs")
        if rule.loss == "hinge" and not task.is_classification:
            raise ValidationError(f"learning.loss: 'hinge' needs a classification task (got {task.name})")
        self.circuit, self.task, self.rule, self.dynamics = circuit, task, rule, dynamics
        self.params, self.solver, self.hardware = params, solver, hardware
        self.step_time = 2 * hardware.t_settle + hardware.t_learn

    def init_state(self, controls: np.ndarray, rng: np.random.Generator) -> TrainState:
        state = TrainState(epoch=0, controls=np.array(controls, float), rng_state=rng.bit_generator.state)
        self._record(state, force=True)
        return state

    # -- one step and one epoch -------------------------------------------------------------------
    def step(self, controls: np.ndarray, idx: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int, bool]:
        """One update from the points ``idx``; returns (new controls, solves used, whether the switch closed)."""
        new, solves, moved = self.step_many(controls[None, :], idx[None, :], [rng])
        return new[0], solves, bool(moved[0])

    def step_many(self, controls: np.ndarray, idx: np.ndarray, rngs: list[np.random.Generator]
                  ) -> tuple[np.ndarray, int, np.ndarray]:
        """One update of R independent replicas at once, each on its own points.

        Args:
            controls: [R, E] controls of each replica. idx: [R, n] data points each replica presents.
            rngs: one generator per replica (its desynchronous mask), drawn exactly as a single run would.
        Returns:
            new controls [R, E], solves used, bool [R] whether each replica's learning switch closed.
        """
        c, task, rule = self.circuit, self.task, self.rule
        reps, n = idx.shape
        x = task.inputs[idx].reshape(reps * n, -1)
        y = task.targets[idx].reshape(reps * n, -1)
        shared = controls[0] if reps == 1 else np.repeat(controls, n, axis=0)
        free = self.solver.solve(c, shared, x).voltages
        solves = reps * n
        active = np.ones(reps * n, bool)
        if rule.loss == "hinge":
            active = task.margins(c.output_values(free), task.classes[idx].ravel()) < rule.margin
        p = self.params.update_probability
        masks = np.stack([rng.random(c.n_edges) < p if p < 1 else np.ones(c.n_edges, bool) for rng in rngs])
        u = np.zeros((reps, c.n_edges))
        if active.any():  # points past the hinge margin need no clamped phase
            clamped = self.solver.solve(c, shared, x, rule.clamp(c, free, y)).voltages
            solves += reps * n
            if self.params.read_noise > 0:
                free, clamped = (v + self.params.read_noise * np.concatenate(
                    [rng.standard_normal((n, v.shape[1])) for rng in rngs]) for v in (free, clamped))
            u = (rule.contrast(c, free, clamped) * active[:, None]).reshape(reps, n, -1).sum(axis=1)
        moved = active.reshape(reps, n).any(axis=1)
        # the leak acts on every replica (time passes); the switch closes only where a point was active
        return self.dynamics.apply(controls, u, masks & moved[:, None], rule.rate, self.step_time), solves, moved

    def evaluate(self, controls: np.ndarray, test: bool = False) -> Evaluation:
        """Free outputs of every training (or held-out) point, with loss, accuracy and smallest margin."""
        task = self.task
        x, y, cls = (task.test_inputs, task.test_targets, task.test_classes) if test else \
            (task.inputs, task.targets, task.classes)
        free = self.solver.solve(self.circuit, controls, x).voltages
        out = self.circuit.output_values(free)
        margin = float(task.margins(out, cls).min()) if cls is not None else None
        return Evaluation(out, mse(out, y), task.accuracy(out, cls), margin, free)

    def run(self, state: TrainState, on_epoch: Callable[[TrainState], None] | None = None) -> TrainState:
        """Train from ``state`` up to ``params.epochs``; calls ``on_epoch(state)`` after each epoch."""
        rng = np.random.default_rng()
        rng.bit_generator.state = state.rng_state
        sched = self.params.schedule
        while state.epoch < self.params.epochs:
            for idx in sched.batches(self.task.n_points, rng):
                state.controls, solves, moved = self.step(state.controls, idx, rng)
                state.n_solves += solves
                state.n_steps += 1
                state.n_updates += int(moved)
            state.epoch += 1
            state.rng_state = rng.bit_generator.state
            self._record(state)
            if on_epoch is not None:
                on_epoch(state)
        return state

    def _record(self, state: TrainState, force: bool = False) -> None:
        p = self.params
        last = state.epoch == p.epochs
        if force or last or state.epoch % p.eval_every == 0:
            ev = self.evaluate(state.controls)
            state.n_solves += self.task.n_points
            row = {"epoch": state.epoch, "loss": ev.loss, "accuracy": ev.accuracy, "min_margin": ev.min_margin,
                   "learning_time_s": self.learning_time(state)}
            if self.task.test_inputs is not None and len(self.task.test_inputs):
                tv = self.evaluate(state.controls, test=True)
                state.n_solves += len(self.task.test_inputs)
                row.update(test_loss=tv.loss, test_accuracy=tv.accuracy)
            state.history.append(row)
        if force or last or state.epoch % p.record_every == 0:
            state.trajectory_epochs.append(state.epoch)
            state.trajectory.append(state.controls.copy())

    def learning_time(self, state: TrainState) -> float:
        """Cumulative learning-switch time (s): updates that moved an edge x t_learn."""
        return state.n_updates * self.hardware.t_learn

    def hardware_time(self, state: TrainState) -> float:
        """Estimated hardware wall time (s): every step settles twice and, if it updates, closes the switch."""
        return state.n_steps * 2 * self.hardware.t_settle + self.learning_time(state)

