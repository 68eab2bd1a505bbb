"""The learning loop: free solve, nudge, clamped solve, local contrast, gate-capacitor update; epoch after epoch.

One replica axis: a ``TrainState`` holds R replicas of one circuit and task (each with its own controls and
random generator), and a single run is the case R = 1. Replica r draws its data order, desynchronous masks and
read noise from its own generator exactly as a run of that generator alone would, so an ensemble of seeds is
that many single runs trained as one batch.

The step's arithmetic is ``metamaterial.step``; a solver that has a compiled training loop
(``AbstractSolver.train_steps``) runs whole chunks of planned steps in it, and the Python step here
(``step_many``) runs everything else. Both draw the same plan and end with the same controls. The trainer
receives its solver as an argument; state can be checkpointed and resumed bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from .. import step as st
from ..circuit import Circuit, control_gradient, kcl_residuals
from ..errors import ValidationError, check_indices, check_numbers, real_array, shown, whole_number
from ..sim.base import AbstractSolver
from ..tasks import Task
from .gates import EdgeDynamics, HardwareParams
from .rules import CoupledLearning
from .schedules import Schedule

#: most replica-steps ``Trainer.run`` plans at once (bounds the memory of the drawn plan)
MAX_CHUNK_STEPS = 20_000
#: most bytes of read-noise draws a plan holds; an epoch that needs more runs epoch by epoch (draws as it goes)
MAX_NOISE_BYTES = 64 * 2**20
#: a classification is "solved" when every point is correct by at least this much (V)
SUCCESS_MARGIN_V = 0.010
#: how the desynchronous masks are drawn (``TrainParams.update_mask``)
MASK_KINDS = ("bernoulli", "fixed_count")


def draw_masks(rng: np.random.Generator, n_steps: int, n_edges: int, p: float, kind: str = "bernoulli") -> np.ndarray:
    """bool [n_steps, n_edges] desynchronous masks from ``rng``: Bernoulli(p) per edge and step, or with
    ``kind="fixed_count"`` exactly max(1, round(p n_edges)) edges per step, drawn uniformly without replacement."""
    draws = rng.random((n_steps, n_edges))
    if kind == "bernoulli":
        return draws < p
    k = max(1, round(p * n_edges))
    ranks = np.argsort(np.argsort(draws, axis=1), axis=1)  # a uniform random permutation of the edges per step
    return ranks < k


@dataclass(frozen=True)
class TrainParams:
    """How long and how to present the data.

    Attributes:
        update_probability: p of desynchronous learning: each edge applies each update with probability p.
        update_mask: how the edges that update are drawn when p < 1: ``"bernoulli"``, each edge independently
            with probability p; ``"fixed_count"``, exactly max(1, round(p E)) of the E edges, uniformly without
            replacement (the same mean as Bernoulli, no spread in the count).
        read_noise: standard deviation (V) of Gaussian noise on every node voltage the learning circuit reads
            (both phases), drawn from the replica's generator for both phases at every step, whether or not the
            clamped phase runs; 0 for an ideal read.
        noisy_decisions: the free phase's noisy read also decides the hinge, the rival and the clamp values (as
            the third-party digits trainer reads once per phase); False: they come from the exact free voltages and
            the noise enters through the contrast only. Needs read noise.
        eval_every: epochs between loss evaluations (a batched free solve of every point); it does not change the
            gates trained (``Trainer.evaluate``).
        record_every: epochs between stored snapshots of the controls (the gate trajectory).
    """

    epochs: int = 100
    schedule: Schedule = Schedule()
    update_probability: float = 1.0
    eval_every: int = 1
    record_every: int = 1
    read_noise: float = 0.0
    update_mask: str = "bernoulli"
    noisy_decisions: bool = False

    def __post_init__(self) -> None:
        check_numbers(self)
        if not isinstance(self.schedule, Schedule):  # a kind's name failed in the first epoch ('no attribute ...')
            raise ValidationError(f"TrainParams.schedule: must be a Schedule (got {type(self.schedule).__name__} "
                                  f"{shown(self.schedule)}); give e.g. Schedule('full_batch')")
        for name in ("epochs", "eval_every", "record_every"):
            whole_number(getattr(self, name), f"TrainParams.{name}")
        if self.epochs < 0:
            raise ValidationError(f"TrainParams.epochs: must be >= 0 (got {self.epochs})")
        if not (0 < self.update_probability <= 1):
            raise ValidationError(f"TrainParams.update_probability: must be in (0, 1] (got {self.update_probability})")
        if self.update_mask not in MASK_KINDS:
            raise ValidationError(f"TrainParams.update_mask: must be one of {', '.join(MASK_KINDS)} "
                                  f"(got {shown(self.update_mask)})")
        if not (0 <= self.read_noise < 1):
            raise ValidationError(f"TrainParams.read_noise: must be in [0, 1) V (got {self.read_noise})")
        if self.noisy_decisions and self.read_noise == 0:
            raise ValidationError("learning.noisy_decisions: needs read noise (got read_noise 0); set "
                                  "learning.read_noise > 0 or noisy_decisions: false")
        if self.eval_every < 1 or self.record_every < 1:
            raise ValidationError("TrainParams: eval_every and record_every must be >= 1")


@dataclass
class TrainState:
    """Everything R replicas need to continue exactly where they stopped.

    Attributes:
        controls: [R, E] controls. rngs: R generators (data order, masks, noise). n_updates: int [R] learning windows
            each replica opened (one per presented point whose contrast was applied: a full-batch step of P
            active points counts P, as the hardware presents them one by one). n_steps: steps taken (the same for
            every replica).
        history: one row per evaluation: ``epoch`` and per-replica arrays [R] (``loss``, ``accuracy``,
            ``min_margin``, ``learning_time_s``, and ``test_loss``/``test_accuracy`` with a held-out set).
        trajectory: the controls [R, E] at ``trajectory_epochs`` (kept only if ``keep_trajectory``).
    """

    epoch: int
    controls: np.ndarray
    rngs: list[np.random.Generator]
    n_updates: np.ndarray
    n_steps: int = 0
    n_solves: int = 0
    keep_trajectory: bool = True
    history: list[dict] = field(default_factory=list)
    trajectory_epochs: list[int] = field(default_factory=list)
    trajectory: list[np.ndarray] = field(default_factory=list)

    @property
    def replicas(self) -> int:
        return self.controls.shape[0]


@dataclass(frozen=True)
class Evaluation:
    """Free outputs of every point for every replica. outputs [R, P, n_out] V; loss [R] V^2 (the outputs' mean
    squared error to their labels); accuracy and min_margin [R] or None; free [R P, N] node voltages (V);
    hinge_loss [R] V or None: under a hinge loss the objective trained, the mean over points of
    max(0, margin - the point's class margin). ``Trainer.evaluate`` of one replica's controls [E] gives the same
    without the replica axis (loss a float)."""

    outputs: np.ndarray
    loss: np.ndarray | float
    accuracy: np.ndarray | float | None
    min_margin: np.ndarray | float | None
    free: np.ndarray
    hinge_loss: np.ndarray | float | None = None


class RuleAndGradient(NamedTuple):
    """``Trainer.rule_and_gradient``: per point [B, E], the contrast the rule applies (the step moves the controls
    by rate U; zero where the point is inactive or, with ``update_edges: pushed``, on edges it does not reach), and
    dL/dx of the task's and of the clamps' loss; which points are active [B]. ``analysis.direction_noise(u,
    -task)`` row by row is 1 - the cosine between the rule's step and steepest descent. free: [B, N] the free
    operating point (V) both were taken at."""

    u: np.ndarray
    task: np.ndarray
    clamps: np.ndarray
    active: np.ndarray
    free: np.ndarray


class Trainer:
    """Coupled learning of one circuit on one task, on the given solver, for any number of replicas.

    ``hardware`` gives the clock: t_learn per learning window (one per active point presented), t_settle per
    phase; by default (None) the default charging circuit (``HardwareParams()``) with, on gate voltages, the switch
    time that realises the rule's rate (``HardwareParams.t_learn_for``), as a config resolves ``hardware.t_learn``
    beside ``learning.rate``. With ``compiled=False`` the solver's compiled loop is never used (the reference for
    tests and benchmarks).

    Args:
        circuit: the network (``compile_graph``); its inputs and outputs must match the task's columns.
        task: the data, inputs [P, n_in] and targets [P, n_out] in V (``xor_task()``, ...).
        rule: the nudge, rate and loss (``CoupledLearning``); dynamics: how controls move and their bounds
            (``EdgeDynamics``, in the device's unit: V, S or taps; its kind the device's ``update_kind`` and its
            bounds inside the device's range, so a resistor or potentiometer needs its own: the defaults are gate
            voltages, ``device.default_bounds()`` gives the device's); params: epochs, schedule, evaluation
            (``TrainParams``); solver: ``NativeSolver()`` or ``NgspiceSolver()``.

    Use: ``state = trainer.run(trainer.init_state(controls [E], np.random.default_rng(seed)))``, then
    ``trainer.evaluate(state.controls[0])``.
    """

    def __init__(self, circuit: Circuit, task: Task, rule: CoupledLearning, dynamics: EdgeDynamics,
                 params: TrainParams, solver: AbstractSolver, hardware: HardwareParams | None = None,
                 compiled: bool = True) -> None:
        given = (("circuit", circuit, Circuit, "compile_graph(g, device)"), ("task", task, Task, "Task(name, x, y)"),
                 ("rule", rule, CoupledLearning, "CoupledLearning(nudge=0.5, rate=30.0)"),
                 ("dynamics", dynamics, EdgeDynamics, "EdgeDynamics(low=0.4, high=8.0)"),
                 ("params", params, TrainParams, "TrainParams(epochs=100)"),
                 ("solver", solver, AbstractSolver, "NativeSolver() or NgspiceSolver()"),
                 ("hardware", hardware, HardwareParams, "HardwareParams()"))
        for name, value, kind, example in given:  # each was an AttributeError from inside, or (a name) one at run
            if not isinstance(value, kind) and not (name == "hardware" and value is None):
                raise ValidationError(f"Trainer: {name} must be of type {kind.__name__} (got {type(value).__name__} "
                                      f"{shown(value)}); give e.g. {example}")
        if task.n_inputs != circuit.n_inputs or task.n_outputs != circuit.n_outputs:
            raise ValidationError(f"task {task.name}: needs {task.n_inputs} inputs and {task.n_outputs} outputs, but "
                                  f"roles give {circuit.n_inputs} inputs and {circuit.n_outputs} outputs")
        batch = params.schedule.batch_size
        if params.schedule.kind == "mini_batch" and batch > task.n_points:  # as a config refuses learning.batch_size
            raise ValidationError(f"Schedule.batch_size: must be <= the {task.n_points} points of task {task.name} "
                                  f"(got {batch}); give at most {task.n_points}, or Schedule('full_batch') for every "
                                  "point in one step")
        if rule.hinge and not task.is_classification:
            raise ValidationError(f"learning.loss: {rule.loss!r} needs a classification task (got {task.name})")
        if rule.rival and task.decode != "argmax":
            raise ValidationError(f"learning.loss: 'multiclass_hinge' needs one output per class (argmax decoding; "
                                  f"got task {task.name})")
        device = circuit.device
        if dynamics.kind != device.update_kind:  # the config always matches them; a hand-made pair may not
            moves = "one tap per update" if device.update_kind == "sign" else "by rate x contrast"
            makes = "fractional taps" if device.discrete else "steps of one unit whatever the rate"
            raise ValidationError(f"EdgeDynamics.kind: a {device.kind} edge's control moves {moves} "
                                  f"({device.update_kind!r}) (got {dynamics.kind!r}, which makes {makes}); give "
                                  f"EdgeDynamics({device.update_kind!r}, low, high)")
        if device.discrete and (dynamics.leak_tau is not None or dynamics.bias is not None):
            raise ValidationError(f"EdgeDynamics.leak_tau, EdgeDynamics.bias: a {device.kind} steps one whole tap per "
                                  f"update, with no leak or bias (got leak_tau {dynamics.leak_tau!r}, bias "
                                  f"{'None' if dynamics.bias is None else 'given'}), which would leave it between "
                                  "taps; give neither")
        if device.update_kind == "sign" and (rule.rate != 1.0 or rule.rate_decay != 1.0):
            # the sign rule moves one tap whatever the rate: a rate given was ignored without a word
            raise ValidationError(f"CoupledLearning.rate, CoupledLearning.rate_decay: a {device.kind} steps one whole "
                                  f"tap per update, with no rate or decay (got rate {rule.rate:g}, rate_decay "
                                  f"{rule.rate_decay:g}); leave both at 1.0, or use a transistor or resistor network")
        # EdgeDynamics' default bounds are gate voltages: a resistor's conductances were clipped to 0.4-8 S
        device.check_bounds(dynamics.low, dynamics.high, "EdgeDynamics.low, EdgeDynamics.high")
        if dynamics.bias is not None and dynamics.bias.shape != (circuit.n_edges,):
            raise ValidationError(f"EdgeDynamics.bias: needs one value per edge ({circuit.n_edges}) "
                                  f"(got shape {dynamics.bias.shape})")
        if hardware is None:
            hardware = HardwareParams()
            if device.control_unit == "V" and rule.rate > 0:
                # the clock of the rule's own rate: the default 100 us realises 0.0045 /V, and a trainer of rate 30 /V
                # counted 100 us a window where its config's run (t_learn 0.66 s) counted 6,600 times as long
                hardware = replace(hardware, t_learn=hardware.t_learn_for(rule.rate))
        self.circuit, self.task, self.rule, self.dynamics = circuit, task, rule, dynamics
        self.params, self.solver, self.hardware = params, solver, hardware
        self.compiled = compiled
        self._program_for: tuple | None = None
        self._nearest: tuple[Task, np.ndarray] | None = None  # (task, ``_nearest_training_points``)

    @property
    def program(self) -> st.StepProgram:
        """The step as ``step.StepProgram`` (rebuilt if a part of the trainer was replaced since)."""
        parts = (self.circuit, self.task, self.rule, self.dynamics, self.params, self.hardware)
        if self._program_for is None or any(a is not b for a, b in zip(self._program_for[0], parts)):
            task, rule, dyn, hw = self.task, self.rule, self.dynamics, self.hardware
            # the time a step takes on the hardware: a slot per point it presents (a last, shorter mini-batch of
            # an epoch counts as a whole one)
            step_time = self.params.schedule.points_per_step(task.n_points) * hw.slot
            self._program_for = parts, st.StepProgram(
                circuit=self.circuit, inputs=np.ascontiguousarray(task.inputs, float),
                targets=np.ascontiguousarray(task.targets, float),
                classes=(np.zeros(task.n_points, np.int64) if task.classes is None
                         else np.ascontiguousarray(task.classes, np.int64)),
                levels=np.ascontiguousarray(task.levels if task.levels is not None else np.zeros(1), float),
                decode=st.DECODES[task.decode], nudge=rule.nudge, hinge=rule.hinge, margin=rule.margin,
                sign_rule=dyn.kind == "sign", rate=rule.rate, low=dyn.low, high=dyn.high,
                leak_factor=1.0 if dyn.leak_tau is None else math.exp(-step_time / dyn.leak_tau), rest=dyn.rest,
                bias=np.zeros(0) if dyn.bias is None else np.ascontiguousarray(dyn.bias, float),
                read_noise=self.params.read_noise, rival=rule.rival, dead_band=dyn.dead_band,
                pushed_only=rule.update_edges == "pushed", rate_decay=rule.rate_decay,
                noisy_decisions=self.params.noisy_decisions)
        return self._program_for[1]

    def init_state(self, controls: np.ndarray, rngs: list[np.random.Generator] | np.random.Generator,
                   keep_trajectory: bool | None = None) -> TrainState:
        """The state at epoch 0 (evaluated). controls: [R, E], or [E] for one replica; rngs: one generator per
        replica (or one generator). The trajectory is kept by default for a single replica only. Controls outside
        the dynamics' [low, high] are taken as given (a leak toward a rest below ``low`` leaves trained gates there)
        and clipped by the first update."""
        controls = np.atleast_2d(self._controls(controls, "Trainer.init_state"))
        given = rngs
        rngs = [given] if isinstance(given, np.random.Generator) else list(given) if isinstance(given, (list, tuple)) \
            else []
        stray = next((i for i, r in enumerate(rngs) if not isinstance(r, np.random.Generator)), None)
        if not rngs or stray is not None:
            got = shown(given) if stray is None else f"{shown(rngs[stray])} at replica {stray}"
            raise ValidationError(f"Trainer.init_state: rngs must be a numpy Generator, or a list of one per replica "
                                  f"(got {got}); give np.random.default_rng(seed)")
        shared = next((i for i, r in enumerate(rngs) if any(r is q for q in rngs[:i])), None)
        if shared is not None:  # the replicas would draw in turn from it, each unlike a run of its own
            raise ValidationError(f"Trainer.init_state: rngs must be one generator per replica, each its own (got the "
                                  f"same Generator object at replicas {[r is rngs[shared] for r in rngs].index(True)} "
                                  f"and {shared}); give [np.random.default_rng(seed) for seed in seeds]")
        if controls.shape != (len(rngs), self.circuit.n_edges):
            raise ValidationError(f"Trainer.init_state: controls must have shape ({len(rngs)}, "
                                  f"{self.circuit.n_edges}) for {len(rngs)} generator(s) (got {controls.shape})")
        keep = len(rngs) == 1 if keep_trajectory is None else keep_trajectory
        state = TrainState(0, controls, rngs, np.zeros(len(rngs), np.int64), keep_trajectory=keep)
        self._record(state, force=True)
        return state

    def _controls(self, controls: object, where: str) -> np.ndarray:
        """``controls`` as a float array (a copy), refusing what holds no real numbers or a value that is not finite,
        which the solver would refuse only later, naming itself."""
        label = self.circuit.device.control_label
        return real_array(controls, where, "controls", f"one {label} per edge", "give a float array",
                          finite=f"give a finite {label} to every edge", axes=("replica", "edge"), copy=True)

    def _point_indices(self, idx: object, where: str) -> np.ndarray:
        """int64 [n] indices of training points, refusing what is none (0.5 was read as point 0, -1 as the last
        point, a point past the end was numpy's IndexError) by its first bad item, and no list or an empty one."""
        arr = np.asarray(idx)
        n = self.task.n_points
        what = f"{where}: idx must be training point indices"
        fix = f"give e.g. np.arange({n}) for every point"
        if arr.ndim != 1 or not len(arr):
            raise ValidationError(f"{what}, a list of integers in 0..{n - 1} (got {shown(idx)}); {fix}")
        check_indices(arr, n, what, fix)
        return arr.astype(np.int64)

    # -- the Python step ------------------------------------------------------------------------------
    def step(self, controls: np.ndarray, idx: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int, bool]:
        """One update of one replica from the points ``idx`` (its desynchronous mask drawn from ``rng``) at the
        first epoch's rate; returns (new controls [E], solves used, whether the learning switch closed)."""
        idx = self._point_indices(idx, "Trainer.step")
        controls = self._controls(controls, "Trainer.step")
        if not isinstance(rng, np.random.Generator):  # it draws the desynchronous mask and the read noise
            raise ValidationError(f"Trainer.step: rng must be a numpy Generator (got {type(rng).__name__} "
                                  f"{shown(rng)}); give np.random.default_rng(seed)")
        masks = self._draw_masks([rng], 1)
        new, solves, windows = self.step_many(controls[None, :], idx[None, :], [rng],
                                              None if masks is None else masks[0])
        return new[0], solves, bool(windows[0])

    def step_many(self, controls: np.ndarray, idx: np.ndarray, rngs: list[np.random.Generator] | None,
                  masks: np.ndarray | None = None, epoch: int = 1, noise: np.ndarray | None = None
                  ) -> tuple[np.ndarray, int, np.ndarray]:
        """One update of R replicas at once, each on its own points, through ``solver.solve``.

        Args:
            controls: [R, E]. idx: int [R, n] data points each replica presents.
            rngs: one generator per replica (read noise only, ``draw_noise``); may be None without read noise or
                with ``noise``.
            masks: bool [R, E] edges allowed to update (desynchronous learning), or None for all.
            epoch: the epoch (1, 2, ...) the step belongs to, which sets its rate (``step.epoch_rate``).
            noise: [2, R n, N] this step's read-noise draws (``step.StepRun.noise``), or None to draw them.
        Returns:
            new controls [R, E], solves used, int [R] learning windows each replica opened (its active points).
        """
        c, pr = self.circuit, self.program
        reps, n = idx.shape
        points = idx.ravel()
        x = pr.inputs[points]
        shared = controls[0] if reps == 1 else np.repeat(controls, n, axis=0)
        tags = (np.arange(reps)[:, None] * self.task.n_points + idx).ravel()  # warm start per replica and point
        if pr.read_noise > 0 and noise is None:
            noise = self.draw_noise(rngs, n)
        free = self.solver.solve(c, shared, x, tags=tags).voltages
        solves = reps * n
        f = st.compiled()
        decide = pr.read_noise > 0 and pr.noisy_decisions
        read = f.noisy_reads(free, noise[0], pr.read_noise) if decide else free  # decides, clamps, contrast
        out = f.output_values(read, c.out_pos, c.out_neg)
        active = f.active_points(f.class_margins(out, pr.classes[points], pr.decode, pr.levels), pr.hinge, pr.margin)
        windows = f.learning_windows(active, reps)
        u = np.zeros((reps, c.n_edges))
        if active.any():  # points past the hinge margin need no clamped phase
            push = f.output_pushes(out, pr.targets[points], pr.classes[points], pr.nudge, pr.rival)
            clamps = f.clamp_values(read, push, c.out_pos, c.out_neg)
            # only the replicas with an active point, as each one's single run: a clamped solve moves its samples'
            # warm starts, and so the last bits of their later answers
            rows = np.flatnonzero(np.repeat(windows > 0, n))
            clamped = free.copy()  # the other replicas' rows are not read (``step.summed_contrast``)
            clamped[rows] = self.solver.solve(c, shared if reps == 1 else shared[rows], x[rows], clamps[rows],
                                              tags=tags[rows]).voltages
            solves += len(rows)
            if pr.read_noise > 0:  # what the contrast reads (the free read taken once, by now if it decided)
                if not decide:
                    read = f.noisy_reads(free, noise[0], pr.read_noise)
                clamped = f.noisy_reads(clamped, noise[1], pr.read_noise)
            touch = f.pushed_nodes(push, c.out_pos, c.out_neg, c.n_nodes) if pr.pushed_only else None
            u = f.summed_contrast(read, clamped, c.edges[:, 0], c.edges[:, 1], active, reps, touch)
        closed = (windows > 0)[:, None]
        mask = np.broadcast_to(closed if masks is None else masks & closed, controls.shape)
        new = f.update_controls(controls, u, mask, pr.sign_rule, f.epoch_rate(pr.rate, pr.rate_decay, epoch), pr.bias,
                                pr.low, pr.high, pr.leak_factor, pr.rest, pr.dead_band)
        return new, solves, windows

    def rule_and_gradient(self, controls: np.ndarray, idx: np.ndarray) -> RuleAndGradient:
        """Each point's own step against the gradients of the losses its clamped phase asks to lower (exact reads).

        Two losses, to first order in the push (docs/physics.md 3.10): the task's, L = -p . O with the outputs' push
        p held fixed (``step.output_pushes``: nudge (L - O), or the hinge's +/- delta on the true class and its top
        rival); and the clamps', L = -f . V over the clamped nodes, f the current each clamp source drives into its
        node (the clamped twin's Kirchhoff residual there). For a reciprocal network (resistors) the rule's
        contrast is exactly -2 dL/dx of the clamps' loss as the nudge goes to 0; the task's loss differs from it by
        the network's own response between the clamped nodes, unless one node is clamped. ``controls``: [E], one
        replica's; ``idx``: the training points.
        """
        c, pr, f = self.circuit, self.program, st.compiled()
        idx = self._point_indices(idx, "Trainer.rule_and_gradient")
        controls = self._controls(controls, "Trainer.rule_and_gradient")
        if controls.shape != (c.n_edges,):  # [R, E] of as many replicas as points was numpy's broadcast error
            raise ValidationError(f"Trainer.rule_and_gradient: controls must have shape ({c.n_edges},), one "
                                  f"replica's (got {controls.shape}); give e.g. state.controls[0]")
        x = pr.inputs[idx]
        free = self.solver.solve(c, controls, x).voltages
        out = f.output_values(free, c.out_pos, c.out_neg)
        active = f.active_points(f.class_margins(out, pr.classes[idx], pr.decode, pr.levels), pr.hinge, pr.margin)
        push = f.output_pushes(out, pr.targets[idx], pr.classes[idx], pr.nudge, pr.rival)
        clamped = self.solver.solve(c, controls, x, f.clamp_values(free, push, c.out_pos, c.out_neg)).voltages
        touch = f.pushed_nodes(push, c.out_pos, c.out_neg, c.n_nodes) if pr.pushed_only else None
        u = f.summed_contrast(free, clamped, c.edges[:, 0], c.edges[:, 1], active, len(idx), touch)
        task = c.output_weights(-push)  # dL/dV of L = -p . O
        nodes = c.clamp_nodes
        clamps = np.zeros(free.shape)  # dL/dV of L = -f . V: f the current the clamps drive in, the net leaving
        clamps[:, nodes] = -kcl_residuals(c, controls, clamped, twin=1)[:, nodes]
        grads = control_gradient(c, controls, np.concatenate([free, free]), np.concatenate([task, clamps]))
        return RuleAndGradient(u, grads[:len(idx)], grads[len(idx):], active, free)

    def draw_noise(self, rngs: list[np.random.Generator], n: int, steps: int | None = None) -> np.ndarray:
        """Standard normal read-noise draws for steps of n points per replica: [2, R n, N] for one step, or
        [steps, 2, R n, N]; each replica draws [steps, 2, n, N] from its own generator (free phase, then clamped)."""
        shape = (1 if steps is None else steps, 2, n, self.circuit.n_nodes)
        z = np.stack([rng.standard_normal(shape) for rng in rngs], axis=2)  # [S, 2, R, n, N]
        z = z.reshape(shape[0], 2, len(rngs) * n, shape[3])
        return z[0] if steps is None else z

    # -- evaluation -----------------------------------------------------------------------------------
    def evaluate(self, controls: np.ndarray, test: bool = False) -> Evaluation:
        """Free outputs of every training (or held-out) point, with loss, accuracy and smallest margin, for
        controls [R, E] (or one replica's [E]: the same without the replica axis). It starts from training's warm
        starts and leaves the solver as it was (``AbstractSolver.solve`` with ``remember=False``): what is
        evaluated when does not change what is trained, and an evaluation depends only on the training before it."""
        task, c = self.task, self.circuit
        controls = self._controls(controls, "Trainer.evaluate")
        if controls.ndim not in (1, 2) or controls.shape[-1] != c.n_edges:
            raise ValidationError(f"Trainer.evaluate: controls must have shape ({c.n_edges},) or (R, {c.n_edges}), one "
                                  f"row per replica (got {controls.shape}); give state.controls[0] for one replica")
        if test and (task.test_inputs is None or not len(task.test_inputs)):
            raise ValidationError(f"Trainer.evaluate: test=True scores the task's held-out points, and task "
                                  f"{task.name!r} holds none (got test_inputs None); give test=False, or a Task "
                                  "with test_inputs and test_targets")
        x, y, cls = (task.test_inputs, task.test_targets, task.test_classes) if test else \
            (task.inputs, task.targets, task.classes)
        many = np.atleast_2d(controls)
        reps, points = len(many), len(x)
        # warm start from training's last solutions, read only: training point p of replica r is tag r P + p (as in
        # training), a held-out point starts from the training point nearest to it. Evaluation leaves the solver's
        # warm starts as they were: they move Newton's answers in their last bits, and training's must not depend on
        # what was evaluated when (nor evaluation's on earlier evaluations)
        start = self._nearest_training_points() if test else np.arange(points)
        tags = (np.arange(reps)[:, None] * task.n_points + start).ravel()
        shared = many[0] if reps == 1 else np.repeat(many, points, axis=0)
        free = self.solver.solve(c, shared, np.tile(x, (reps, 1)), tags=tags, remember=False).voltages
        out = st.compiled().output_values(free, c.out_pos, c.out_neg).reshape(reps, points, -1)
        loss = np.mean((out - y[None]) ** 2, axis=(1, 2))
        acc = margin = hinge = None
        if cls is not None:
            acc = np.array([task.accuracy(o, cls) for o in out])
            margins = np.array([task.margins(o, cls) for o in out])  # [R, P]
            margin = margins.min(axis=1)
            if self.rule.hinge:
                hinge = np.maximum(self.rule.margin - margins, 0.0).mean(axis=1)
        if np.ndim(controls) == 1:  # one replica: no replica axis
            loss, acc, margin, hinge = (None if a is None else float(a[0]) for a in (loss, acc, margin, hinge))
            out = out[0]
        return Evaluation(out, loss, acc, margin, free, hinge)

    def _nearest_training_points(self) -> np.ndarray:
        """int [T]: for each held-out point, the training point whose inputs are nearest (Euclidean, in V)."""
        task = self.task
        if self._nearest is None or self._nearest[0] is not task:
            x, held = np.asarray(task.inputs, float), np.asarray(task.test_inputs, float)
            # |h - x|^2 up to |h|^2, which does not change the argmin: [T, P] without a [T, P, n_in] difference
            d = np.sum(x ** 2, axis=1)[None, :] - 2 * held @ x.T
            self._nearest = task, np.argmin(d, axis=1)
        return self._nearest[1]

    def learning_time(self, state: TrainState) -> np.ndarray:
        """[R] cumulative learning-switch time (s): learning windows x t_learn."""
        return state.n_updates * self.hardware.t_learn

    def presentations(self, state: TrainState) -> int:
        """Points the hardware has presented in ``state.n_steps`` steps (every point once an epoch)."""
        sched, n = self.params.schedule, self.task.n_points
        epochs, steps = divmod(state.n_steps, sched.steps_per_epoch(n))
        return epochs * n + steps * sched.points_per_step(n)

    def hardware_time(self, state: TrainState) -> np.ndarray:
        """[R] estimated hardware time (s): a slot per presented point (``HardwareParams.slot``: the twins settle,
        then the learning window), as ``energy.LearningClock`` and ``learning_hardware``'s transient count it."""
        return np.full(state.replicas, self.presentations(state) * self.hardware.slot)

    # -- many epochs ----------------------------------------------------------------------------------
    def run(self, state: TrainState, on_epoch: Callable[[TrainState], None] | None = None, every: int = 1,
            until: int | None = None, on_step: Callable[[np.ndarray], None] | None = None) -> TrainState:
        """Train from ``state`` up to epoch ``until`` (default ``params.epochs``); calls ``on_epoch(state)``
        after every epoch that is a multiple of ``every``, and after the last, and ``on_step(controls [R, E])``
        after every step if given (a read-only view: a callback observes the run, it cannot steer it; copy what
        it keeps). Evaluations (``eval_every``) and trajectory snapshots (``record_every``) happen
        at the same epochs whatever ``every`` and ``until`` are, so a run continued in pieces ends where one
        whole run does. ``state`` advances in place and is returned (copy it first to keep where it was)."""
        if not isinstance(state, TrainState):
            raise ValidationError(f"Trainer.run: state must be a TrainState (got {type(state).__name__}); make it with "
                                  "trainer.init_state(controls, rng)")
        shape = np.shape(state.controls)
        if len(shape) != 2 or shape != (len(state.rngs), self.circuit.n_edges):
            # another circuit's state (before without_edges) failed in the compiled loop: "cannot assign slice"
            raise ValidationError(f"Trainer.run: state must hold controls [R, {self.circuit.n_edges}], one row per "
                                  f"generator, for this trainer's circuit (got controls {shape} with "
                                  f"{len(state.rngs)} generator(s)); make it with this trainer's init_state (after "
                                  "without_edges: init_state(np.delete(state.controls, cut, axis=1), state.rngs))")
        for name, value in (("every", every), ("until", until)):
            if value is not None:
                whole_number(value, "Trainer.run", name, "give a number of epochs as an int")
        for name, value in (("on_epoch", on_epoch), ("on_step", on_step)):
            if value is not None and not callable(value):  # it was "not callable" once the first epoch had trained
                raise ValidationError(f"Trainer.run: {name} must be a function or None (got {type(value).__name__} "
                                      f"{shown(value)}); give e.g. lambda state: print(state.epoch)")
        if every < 1:
            raise ValidationError(f"Trainer.run: every must be >= 1 (got {every})")
        p = self.params
        end = p.epochs if until is None else until
        chunk = max(1, min(MAX_CHUNK_STEPS // (p.schedule.steps_per_epoch(self.task.n_points) * state.replicas),
                           MAX_NOISE_BYTES // max(1, self._noise_bytes(state.replicas))))
        periods = (p.eval_every,) if on_epoch is None else (p.eval_every, every)
        while state.epoch < end:
            # in one go: to the next multiple of a period, the end, or MAX_CHUNK_STEPS replica-steps on
            stop = min(end, state.epoch + chunk, *((state.epoch // k + 1) * k for k in periods))
            snap_every = p.record_every if state.keep_trajectory else 0
            controls, solves, steps, updates, snapshots = self.advance(
                state.controls, state.rngs, stop - state.epoch, snap_every, state.epoch, on_step)
            for epoch, snap in snapshots:
                if epoch < stop:  # ``_record`` keeps the last one
                    state.trajectory_epochs.append(epoch)
                    state.trajectory.append(snap)
            state.controls = controls
            state.n_solves += solves
            state.n_steps += steps
            state.n_updates = state.n_updates + updates
            state.epoch = stop
            self._record(state)
            if on_epoch is not None and (state.epoch % every == 0 or state.epoch == end):
                on_epoch(state)
        return state

    def advance(self, controls: np.ndarray, rngs: list[np.random.Generator], epochs: int, snapshot_every: int = 0,
                first_epoch: int = 0, on_step: Callable[[np.ndarray], None] | None = None
                ) -> tuple[np.ndarray, int, int, np.ndarray, list[tuple[int, np.ndarray]]]:
        """Train R replicas for ``epochs`` epochs: the solver's compiled loop where it has one, else the Python step.

        Args:
            controls: [R, E]. rngs: one generator per replica (data order, desynchronous masks, read noise).
            snapshot_every: keep a copy of the controls after every epoch that is a multiple of it (0: none),
                counting epochs from ``first_epoch``, the epoch the controls are at.
            on_step: called with a read-only view of the controls [R, E] after every step (the compiled loop then
                runs one step a call).
        Returns:
            (controls [R, E], solves, steps, int [R] updates that closed each replica's learning switch,
            [(epoch, controls [R, E])] the copies).
        """
        controls = np.array(controls, float, order="C")
        snap_epochs = [e for e in range(first_epoch + 1, first_epoch + epochs + 1)
                       if snapshot_every and e % snapshot_every == 0]
        planned = self.params.schedule.equal_steps(self.task.n_points) and \
            self._noise_bytes(len(rngs)) * epochs <= MAX_NOISE_BYTES
        if not planned:  # epoch by epoch: this epoch's plan, then its steps (noise drawn as the steps go)
            solves = steps = 0
            updates = np.zeros(len(rngs), np.int64)
            snapshots = []
            for epoch in range(first_epoch + 1, first_epoch + epochs + 1):
                per_replica = [self.params.schedule.batches(self.task.n_points, rng) for rng in rngs]
                batches = [np.stack(b) for b in zip(*per_replica)]  # idx int [R, n] per step
                masks = self._draw_masks(rngs, len(batches))  # bool [S, R, E] or None
                for k, idx in enumerate(batches):
                    controls, used, windows = self.step_many(controls, idx, rngs, None if masks is None else masks[k],
                                                             epoch)
                    solves, steps, updates = solves + used, steps + 1, updates + windows
                    if on_step is not None:
                        on_step(_read_only(controls))
                if epoch in snap_epochs:
                    snapshots.append((epoch, controls.copy()))
            return controls, solves, steps, updates, snapshots
        plan = self._plan(controls, rngs, epochs, snap_epochs, first_epoch)
        if on_step is None:
            solves = self._run_plan(plan)
        else:
            solves = 0
            for s in range(plan.n_steps):
                one = st.StepRun(plan.controls, plan.idx[s:s + 1], plan.epochs[s:s + 1], plan.masks[s:s + 1],
                                 plan.windows[s:s + 1], plan.snap_slot[s:s + 1], plan.snaps, plan.noise[s:s + 1])
                solves += self._run_plan(one)
                on_step(_read_only(plan.controls))
        return plan.controls, solves, plan.n_steps, plan.windows.sum(axis=0), list(zip(snap_epochs, plan.snaps))

    def _noise_bytes(self, reps: int) -> int:
        """Bytes of one epoch's read-noise draws for ``reps`` replicas (0 without read noise)."""
        if self.program.read_noise == 0:
            return 0
        sched, points = self.params.schedule, self.task.n_points
        return sched.steps_per_epoch(points) * 2 * reps * sched.points_per_step(points) * self.circuit.n_nodes * 8

    def _run_plan(self, plan: st.StepRun) -> int:
        """Apply every step of ``plan``: the compiled loop while it can, the Python step for the rest."""
        solves, first = 0, 0
        while first < plan.n_steps:
            got = self.solver.train_steps(self.program, plan, first) if self.compiled else None
            done = first if got is None else got[0]
            solves += 0 if got is None else got[1]
            stop = plan.n_steps if got is None else min(done + 1, plan.n_steps)
            for s in range(done, stop):  # the Python step (after the compiled loop: the step it stopped at)
                plan.controls[:], used, plan.windows[s] = self.step_many(
                    plan.controls, plan.idx[s], None, plan.masks[s] if plan.masks.shape[0] else None,
                    int(plan.epochs[s]), plan.noise[s] if plan.noise.shape[0] else None)
                solves += used
                if plan.snap_slot[s] >= 0:
                    plan.snaps[plan.snap_slot[s]] = plan.controls
            first = stop
        return solves

    def _plan(self, controls: np.ndarray, rngs: list[np.random.Generator], epochs: int, snap_epochs: list[int],
              first_epoch: int) -> st.StepRun:
        """Draw ``epochs`` epochs of data order, masks and read noise of every replica, in the order the
        epoch-by-epoch path draws them (per epoch: the order, then one mask per step, then each step's noise)."""
        sched, points, n_edges, p = self.params.schedule, self.task.n_points, self.circuit.n_edges, \
            self.params.update_probability
        per_epoch, noisy = sched.steps_per_epoch(points), self.program.read_noise > 0
        orders, masks, noise = [], [], []  # per replica: [S, n], [S, E], [S, 2, n, N]
        for rng in rngs:
            if p == 1 and not noisy:
                orders.append(sched.epoch_steps(points, rng, epochs))
                continue
            drawn = []
            for _ in range(epochs):
                order = sched.epoch_steps(points, rng)
                mask = draw_masks(rng, per_epoch, n_edges, p, self.params.update_mask) if p < 1 else None
                drawn.append((order, mask, self.draw_noise([rng], order.shape[1], per_epoch) if noisy else None))
            orders.append(np.concatenate([order for order, _, _ in drawn]))
            if p < 1:
                masks.append(np.concatenate([mask for _, mask, _ in drawn]))
            if noisy:
                noise.append(np.concatenate([z for _, _, z in drawn]))
        idx = np.ascontiguousarray(np.stack(orders, axis=1), np.int64)
        n_steps, reps = idx.shape[:2]
        snap_slot = np.full(n_steps, -1, np.int64)
        snap_slot[(np.array(snap_epochs, np.int64) - first_epoch) * per_epoch - 1] = np.arange(len(snap_epochs))
        epoch_of_step = first_epoch + 1 + np.arange(n_steps, dtype=np.int64) // per_epoch
        return st.StepRun(controls=controls, idx=idx, epochs=epoch_of_step,
                          masks=np.ascontiguousarray(np.stack(masks, axis=1)) if masks else
                          np.zeros((0, reps, n_edges), np.bool_),
                          windows=np.zeros((n_steps, reps), np.int64), snap_slot=snap_slot,
                          snaps=np.empty((len(snap_epochs), reps, n_edges)),
                          noise=np.ascontiguousarray(np.concatenate(noise, axis=2)) if noise else
                          np.zeros((0, 2, reps * idx.shape[2], self.circuit.n_nodes)))

    def _draw_masks(self, rngs: list[np.random.Generator], n_steps: int) -> np.ndarray | None:
        """bool [S, R, E] desynchronous masks (``draw_masks``), or None when p = 1."""
        p = self.params.update_probability
        if p >= 1:
            return None
        return np.stack([draw_masks(rng, n_steps, self.circuit.n_edges, p, self.params.update_mask) for rng in rngs],
                        axis=1)

    def _record(self, state: TrainState, force: bool = False) -> None:
        p = self.params
        last = state.epoch == p.epochs
        if force or last or state.epoch % p.eval_every == 0:
            ev = self.evaluate(state.controls)
            state.n_solves += state.replicas * self.task.n_points
            row = {"epoch": state.epoch, "loss": ev.loss, "accuracy": ev.accuracy, "min_margin": ev.min_margin,
                   "learning_time_s": self.learning_time(state)}
            if ev.hinge_loss is not None:
                row["hinge_loss"] = ev.hinge_loss
            if self.task.test_inputs is not None and len(self.task.test_inputs):
                tv = self.evaluate(state.controls, test=True)
                state.n_solves += state.replicas * len(self.task.test_inputs)
                row.update(test_loss=tv.loss, test_accuracy=tv.accuracy)
                if tv.hinge_loss is not None:
                    row["test_hinge_loss"] = tv.hinge_loss
            if not state.history or state.history[-1]["epoch"] != state.epoch:
                state.history.append(row)
        if state.keep_trajectory and (force or last or state.epoch % p.record_every == 0):
            if not state.trajectory_epochs or state.trajectory_epochs[-1] != state.epoch:
                state.trajectory_epochs.append(state.epoch)
                state.trajectory.append(state.controls.copy())


def _read_only(controls: np.ndarray) -> np.ndarray:
    view = controls.view()
    view.flags.writeable = False
    return view
