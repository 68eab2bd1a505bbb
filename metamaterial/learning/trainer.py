"""The learning loop: free solve, nudge, clamped solve, local contrast, gate-capacitor update; epoch after epoch.

Receives its solver as an argument (any ``sim.base.AbstractSolver``). State is a plain ``TrainState``
that can be checkpointed and resumed bit for bit (random generator state included). ``advance`` trains whole
chunks of epochs; on the native solver they run in a compiled loop (``fused``) that ends where the Python step
(``step_many``) ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..circuit import Circuit
from ..errors import ValidationError
from ..sim.base import AbstractSolver
from ..tasks import Task
from .fused import FusedLoop, fused_support
from .gates import EdgeDynamics, HardwareParams
from .rules import CoupledLearning, mse
from .schedules import Schedule


#: most steps ``Trainer.run`` hands to ``advance`` at once (bounds the memory of the drawn plan)
MAX_CHUNK_STEPS = 20_000


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
                 params: TrainParams, solver: AbstractSolver, hardware: HardwareParams = HardwareParams(),
                 fused: bool = True) -> None:
        if task.n_inputs != circuit.n_inputs or task.n_outputs != circuit.n_outputs:
            raise ValidationError(f"task {task.name}: needs {task.n_inputs} inputs and {task.n_outputs} outputs, but "
                                  f"roles give {circuit.n_inputs} inputs and {circuit.n_outputs} outputs")
        if rule.loss == "hinge" and not task.is_classification:
            raise ValidationError(f"learning.loss: 'hinge' needs a classification task (got {task.name})")
        self.circuit, self.task, self.rule, self.dynamics = circuit, task, rule, dynamics
        self.params, self.solver, self.hardware = params, solver, hardware
        self.step_time = 2 * hardware.t_settle + hardware.t_learn
        self.fused = fused
        self._fused: tuple[tuple, FusedLoop | None] | None = None  # (what it was built for, the loop or None)

    def fused_loop(self) -> FusedLoop | None:
        """The compiled training loop (``fused.FusedLoop``) if this run can use it (``fused_support``), else None;
        built on first use and again if a part of the trainer was replaced since."""
        key = (self.fused, self.circuit, self.task, self.rule, self.dynamics, self.params, self.solver, self.hardware)
        if self._fused is None or any(a is not b for a, b in zip(self._fused[0], key)):
            self._fused = key, (FusedLoop(self) if self.fused and fused_support(self) is None else None)
        return self._fused[1]

    def init_state(self, controls: np.ndarray, rng: np.random.Generator) -> TrainState:
        state = TrainState(epoch=0, controls=np.array(controls, float), rng_state=rng.bit_generator.state)
        self._record(state, force=True)
        return state

    # -- one step and one epoch -------------------------------------------------------------------
    def step(self, controls: np.ndarray, idx: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int, bool]:
        """One update from the points ``idx``; returns (new controls, solves used, whether the switch closed)."""
        new, solves, moved = self.step_many(controls[None, :], idx[None, :], [rng])
        return new[0], solves, bool(moved[0])

    def step_many(self, controls: np.ndarray, idx: np.ndarray, rngs: list[np.random.Generator] | None,
                  masks: np.ndarray | None = None) -> tuple[np.ndarray, int, np.ndarray]:
        """One update of R independent replicas at once, each on its own points.

        Args:
            controls: [R, E] controls of each replica. idx: [R, n] data points each replica presents.
            rngs: one generator per replica (its desynchronous mask and read noise), drawn exactly as a single
                run would; None if ``masks`` are given and there is no read noise.
            masks: bool [R, E] edges that may update (drawn beforehand), or None to draw them from ``rngs``.
        Returns:
            new controls [R, E], solves used, bool [R] whether each replica's learning switch closed.
        """
        c, task, rule = self.circuit, self.task, self.rule
        reps, n = idx.shape
        x = task.inputs[idx].reshape(reps * n, -1)
        y = task.targets[idx].reshape(reps * n, -1)
        shared = controls[0] if reps == 1 else np.repeat(controls, n, axis=0)
        tags = (np.arange(reps)[:, None] * task.n_points + idx).ravel()  # warm start per replica and data point
        free = self.solver.solve(c, shared, x, tags=tags).voltages
        solves = reps * n
        active = np.ones(reps * n, bool)
        if rule.loss == "hinge":
            active = task.margins(c.output_values(free), task.classes[idx].ravel()) < rule.margin
        p = self.params.update_probability
        if masks is None:
            masks = np.stack([rng.random(c.n_edges) < p for rng in rngs]) if p < 1 else np.ones((reps, c.n_edges), bool)
        u = np.zeros((reps, c.n_edges))
        if active.any():  # points past the hinge margin need no clamped phase
            clamped = self.solver.solve(c, shared, x, rule.clamp(c, free, y), tags=tags).voltages
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
        tags = None if test else np.arange(task.n_points)
        free = self.solver.solve(self.circuit, controls, x, tags=tags).voltages
        out = self.circuit.output_values(free)
        margin = float(task.margins(out, cls).min()) if cls is not None else None
        return Evaluation(out, mse(out, y), task.accuracy(out, cls), margin, free)

    def advance(self, controls: np.ndarray, rngs: list[np.random.Generator], epochs: int, snapshot_every: int = 0,
                first_epoch: int = 0) -> tuple[np.ndarray, int, int, np.ndarray, list[tuple[int, np.ndarray]]]:
        """Train R replicas for ``epochs`` epochs: the compiled loop if possible (``fused_loop``), else step by step.

        Args:
            controls: [R, E]. rngs: one generator per replica (data order, desynchronous masks, read noise).
            snapshot_every: keep a copy of the controls after every epoch that is a multiple of it (0: none),
                counting epochs from ``first_epoch``, the epoch the controls are at.
        Returns:
            (controls [R, E], solves, steps, int [R] updates that closed each replica's learning switch,
            [(epoch, controls [R, E])] the copies).
        """
        loop = self.fused_loop()
        sched, points, p = self.params.schedule, self.task.n_points, self.params.update_probability
        snap_epochs = [e for e in range(first_epoch + 1, first_epoch + epochs + 1)
                       if snapshot_every and e % snapshot_every == 0]
        if loop is None:
            solves = steps = 0
            updates = np.zeros(len(rngs), int)
            snapshots = []
            for epoch in range(first_epoch + 1, first_epoch + epochs + 1):
                per_replica = [sched.batches(points, rng) for rng in rngs]
                for k in range(len(per_replica[0])):
                    idx = np.stack([batches[k] for batches in per_replica])
                    controls, used, moved = self.step_many(controls, idx, rngs)
                    solves, steps, updates = solves + used, steps + 1, updates + moved
                if snapshot_every and epoch % snapshot_every == 0:
                    snapshots.append((epoch, controls.copy()))
            return controls, solves, steps, updates, snapshots
        # draw each replica's data order and masks in the order the Python step draws them
        plans, masks = [], []
        for rng in rngs:
            if p < 1:  # each epoch: its data order, then one mask per step
                orders, drawn = [], []
                for _ in range(epochs):
                    orders.append(sched.epoch_steps(points, rng))
                    drawn.append(rng.random((len(orders[-1]), self.circuit.n_edges)) < p)
                plans.append(np.concatenate(orders))
                masks.append(np.concatenate(drawn))
            else:
                plans.append(sched.epoch_steps(points, rng, epochs))
        idx = np.stack(plans, axis=1)
        per_epoch = len(idx) // epochs
        snap_after = np.array([(e - first_epoch) * per_epoch - 1 for e in snap_epochs], np.int64)
        controls, solves, moved, snaps = loop.run(controls, idx, np.stack(masks, axis=1) if masks else None, snap_after)
        return controls, solves, len(idx), moved.sum(axis=0), list(zip(snap_epochs, snaps))

    def next_stop(self, epoch: int, every: int = 1, replicas: int = 1) -> int:
        """The epoch up to which to train from ``epoch`` in one go: the next multiple of ``every`` and of
        ``eval_every``, the last epoch, or ``MAX_CHUNK_STEPS`` replica-steps on."""
        p = self.params
        cap = epoch + max(1, MAX_CHUNK_STEPS // (p.schedule.steps_per_epoch(self.task.n_points) * replicas))
        return min([p.epochs, cap] + [(epoch // k + 1) * k for k in (every, p.eval_every)])

    def run(self, state: TrainState, on_epoch: Callable[[TrainState], None] | None = None,
            every: int = 1) -> TrainState:
        """Train from ``state`` up to ``params.epochs``; calls ``on_epoch(state)`` after every epoch that is a
        multiple of ``every``, and after the last. Epochs between those run in one go (``advance``)."""
        if every < 1:
            raise ValidationError(f"Trainer.run: every must be >= 1 (got {every})")
        rng = np.random.default_rng()
        rng.bit_generator.state = state.rng_state
        while state.epoch < self.params.epochs:
            stop = self.next_stop(state.epoch, every if on_epoch is not None else self.params.epochs)
            controls, solves, steps, updates, snapshots = self.advance(
                state.controls[None, :], [rng], stop - state.epoch, self.params.record_every, state.epoch)
            for epoch, snap in snapshots:
                if epoch < stop:  # ``_record`` keeps the last one
                    state.trajectory_epochs.append(epoch)
                    state.trajectory.append(snap[0])
            state.controls = controls[0]
            state.n_solves += solves
            state.n_steps += steps
            state.n_updates += int(updates[0])
            state.epoch = stop
            state.rng_state = rng.bit_generator.state
            self._record(state)
            if on_epoch is not None and (state.epoch % every == 0 or state.epoch == self.params.epochs):
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

