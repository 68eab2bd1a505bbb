"""Learning time to a task criterion, and to re-learn it after damage, counted per learning window.

A report stage over the trainer (learn -> report): it runs ``Trainer.run`` step by step and counts the learning
windows the hardware would need. Every presented point whose contrast is applied closes the learning switch once
for t_learn (docs/physics.md, section 8.3): a step presenting one point takes one window if that point is active
(``n_updates``), a full-batch step over P points takes one window per active point (under a hinge, the points
not yet past the margin), not one. The learning time is windows x t_learn; at a fixed rate alpha/eta
t_learn = (alpha/eta) R C / gain, so ``energy.learning_band`` spreads it over the uncertain gate capacitor and
multiplier gain. Each window's charge is its own point's rate x U (``point_windows``): the points of a full-batch
step push a gate in opposite directions as often as not, and the heat in R goes with the square of each window's
charge, not of their sum.

Criteria (absolute, hardware-level): a classification is done when every point is correct by
``SUCCESS_MARGIN_V`` (10 mV); a regression when the RMS error over the training points is at most
``RMS_CRITERION_V`` (5 mV, a few times the read noise of a 5 V-scale amplifier chain, our choice).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import step
from .circuit import Circuit, edge_currents, stranded_nodes, without_edges
from .energy import LearningBand, learning_band
from .errors import ValidationError
from .experiment import Setup, make_solver, make_trainer
from .learning.trainer import SUCCESS_MARGIN_V

#: V: a regression is learned when the RMS error over its training points is at most this (our choice)
RMS_CRITERION_V = 5e-3


@dataclass(frozen=True)
class LearningRun:
    """Training from given controls until the task criterion holds (or ``max_epochs``).

    Attributes:
        reached: whether the criterion held. epochs, steps: when it first held (or where training stopped).
        windows: learning windows up to then (per applied point). updates: steps that closed a switch.
        controls: [E] gates (V) when it held. gate_steps: [S, E] gate change of each step (V).
        gates: [S, E] gates before each step (V). windows_per_step: [S] windows each step took.
        presentations: points presented up to then (a full-batch step presents every point, active or not).
        t_learn, t_settle: the run's hardware clock (s; ``HardwareParams``).
        band: learning time and charging energy over the band of gate capacitors and multiplier gains, from the
            gate change of each window (``point_windows``).
    """

    reached: bool
    epochs: int
    steps: int
    windows: int
    updates: int
    controls: np.ndarray
    gate_steps: np.ndarray
    gates: np.ndarray
    windows_per_step: np.ndarray
    t_learn: float
    band: LearningBand
    presentations: int = 0
    t_settle: float = 0.0

    @property
    def learning_time(self) -> float:
        """Cumulative switch-on time (s) with the run's own hardware constants."""
        return self.windows * self.t_learn

    @property
    def hardware_time(self) -> float:
        """Time (s) on the hardware: a t_settle + t_learn slot per presented point, switch closed or not
        (``energy.LearningClock``, as ``train``'s ``hardware_time_s``). The twin networks draw their DC power all
        of it, not only the learning time."""
        return self.presentations * (self.t_settle + self.t_learn)


def criterion_met(setup: Setup, out: np.ndarray) -> bool:
    """Whether outputs [P, n_out] (V) meet the task's criterion (module docstring)."""
    task = setup.task
    if task.is_classification:
        return bool(task.margins(out, task.classes).min() >= SUCCESS_MARGIN_V)
    return bool(np.sqrt(np.mean((out - task.targets) ** 2)) <= RMS_CRITERION_V)


def active_count(setup: Setup, out: np.ndarray) -> int:
    """Points [P] of a full-batch step whose contrast is applied at outputs [P, n_out]: all, or under the hinge
    those not yet ``margin`` past their boundary (the step's own rule, ``step.active_points``)."""
    rule, task = setup.rule, setup.task
    if rule.loss != "hinge":
        return task.n_points
    return int(step.active_points(task.margins(out, task.classes), True, rule.margin).sum())


def train_to_criterion(setup: Setup, controls: np.ndarray, seed: int, max_epochs: int,
                       chunk: int = 10) -> LearningRun:
    """Train one replica from ``controls`` [E] until ``criterion_met`` (checked after every step) or
    ``max_epochs``; count the learning windows. Schedules: cycle, shuffle (one point per step) and full_batch."""
    kind = setup.params.schedule.kind
    if kind not in ("cycle", "shuffle", "full_batch"):
        raise ValidationError(f"retraining: learning.schedule {kind!r} is not counted per window; use cycle, shuffle "
                              "or full_batch")
    trainer = make_trainer(setup, epochs=max_epochs, eval_every=max_epochs, record_every=max_epochs)
    state = trainer.init_state(np.asarray(controls, float)[None], np.random.default_rng(seed), keep_trajectory=False)
    gates, steps, windows, parts = [], [], [], []
    first = trainer.evaluate(state.controls[0]).outputs
    track = {"out": first, "prev": state.controls[0].copy(), "done": criterion_met(setup, first), "updates": 0}
    rule, per_epoch = setup.rule, setup.params.schedule.steps_per_epoch(setup.task.n_points)

    def on_step(new: np.ndarray) -> None:
        if track["done"]:
            return
        before, after = track["prev"], new[0].copy()
        moved = bool(np.any(after != before))
        if kind == "full_batch":  # each active point's own window, at the rate of the step's epoch
            rate = step.epoch_rate(rule.rate, rule.rate_decay, len(steps) // per_epoch + 1)
            own = point_windows(setup, solver, before, track["out"], rate)
            if setup.params.update_probability < 1:  # the edges the step's draw left out: not known here
                own = own * (after != before)  # (an edge that moved and came back within the step goes with them)
            windows.append(len(own))
            parts.extend(own)
        else:  # one point per step: a window when the point is active; the gates move exactly then (no leak)
            windows.append(int(moved))
            parts.extend([after - before] * int(moved))
        gates.append(before)
        steps.append(after - before)
        track["updates"] += int(moved)
        track["prev"] = after
        track["out"] = trainer.evaluate(after).outputs
        track["done"] = criterion_met(setup, track["out"])

    with make_solver(setup) as solver:
        while not track["done"] and state.epoch < max_epochs:
            state = trainer.run(state, until=min(state.epoch + chunk, max_epochs), on_step=on_step)
    trainer.solver.close()
    n = len(steps)
    g, d = (np.array(x).reshape(n, len(controls)) for x in (gates, steps))  # [S, E], also when S = 0
    w = np.array(windows, int)
    win = int(w.sum())
    band = learning_band(rule.rate, win, *_window_gates(g, w, parts), setup.hardware)
    presented = n * setup.params.schedule.points_per_step(setup.task.n_points)
    return LearningRun(track["done"], -(-n // per_epoch), n, win, track["updates"], track["prev"], d, g, w,
                       setup.hardware.t_learn, band, presented, setup.hardware.t_settle)


def point_windows(setup: Setup, solver, before: np.ndarray, out: np.ndarray, rate: float) -> np.ndarray:
    """[k, E] gate change (V) of each of the k learning windows of a full-batch step from gates ``before`` [E], whose
    free outputs are ``out`` [P, n_out] (V): one per active point (``active_count``), in order, each moving the gates
    by ``rate`` times that point's own contrast U (V^2, ``CoupledLearning.contrast``), as the hardware charges them
    window by window (docs/physics.md 8.5). Window j ends at the bounds' clip of the sum of the first j, so the
    windows add up to the loop's summed and clipped step (with exact reads and no leak or bias), and the gate
    capacitors' stored energy is that of the gates the run goes through. A gate the windows move and bring back
    (one at a bound, pushed out and back in) ends the step where it began and still heats R in each window. An edge
    whose summed contrast stays inside ``learning.dead_band`` does not update, and no window moves it."""
    c, task, rule, dyn = setup.circuit, setup.task, setup.rule, setup.dynamics
    active = np.ones(task.n_points, bool) if rule.loss != "hinge" else \
        step.active_points(task.margins(out, task.classes), True, rule.margin)
    if not active.any():
        return np.zeros((0, c.n_edges))
    free = solver.solve(c, before, task.inputs[active]).voltages
    clamps = rule.clamp(c, free, task.targets[active], None if task.classes is None else task.classes[active])
    clamped = solver.solve(c, before, task.inputs[active], clamps).voltages
    before = np.asarray(before, float)
    u = rule.contrast(c, free, clamped)  # [k, E]
    if dyn.dead_band:  # the comparator of the loop's step (step.update_controls) reads the summed contrast
        u = u * (np.abs(u.sum(axis=0)) >= dyn.dead_band)
    path = np.clip(before + rate * np.cumsum(u, axis=0), dyn.low, dyn.high)
    return np.diff(np.vstack([before, path]), axis=0)


def _window_gates(gates: np.ndarray, windows: np.ndarray, parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """([W, E] gate change, [W, E] gates before) of every window, for the charging energy: ``parts`` in order, each
    step's first window starting from the gates before that step (``gates`` [S, E], ``windows`` [S] windows per
    step) and each next one where the last ended; one zero window when there is none."""
    if not parts:
        return np.zeros((1, gates.shape[1])), np.zeros((1, gates.shape[1]))
    part = np.array(parts)
    idx = np.repeat(np.arange(len(windows)), windows)
    first = np.cumsum(windows) - windows  # index of each step's first window
    done = np.cumsum(part, axis=0) - part  # charge moved by the windows before each one
    return part, gates[idx] + done - done[first[idx]]


def conductive_cut(setup: Setup, controls: np.ndarray, k: int) -> np.ndarray:
    """The k edges carrying the largest mean |current| over the training points at ``controls`` [E] whose removal
    leaves every node a path to a driven node (sorted edge indices)."""
    c = setup.circuit
    with make_solver(setup) as solver:
        free = solver.solve(c, controls, setup.task.inputs).voltages
    return busiest_cut(c, current_scores(c, controls, free), k)[0]


def current_scores(circuit: Circuit, controls: np.ndarray, free: np.ndarray) -> np.ndarray:
    """[E] each edge's mean |current| (A) over the points of the free voltages ``free`` [P, N] at ``controls`` [E]:
    how busy an edge is, the damage claims' measure of which edges matter most."""
    return np.mean(np.abs(edge_currents(circuit, controls, free)), axis=0)


def busiest_cut(circuit: Circuit, scores: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """The k edges of highest ``scores`` [E], taken greedily, skipping any that would strand a node together with
    those already taken (``circuit.stranded_nodes``): (sorted edge indices, number of edges skipped)."""
    cut: list[int] = []
    skipped = 0
    for e in np.argsort(-scores, kind="stable"):
        if len(cut) == k:
            break
        if stranded_nodes(circuit, [*cut, int(e)]):
            skipped += 1
        else:
            cut.append(int(e))
    return np.sort(np.array(cut, int)), skipped


def damaged(setup: Setup, cut: np.ndarray) -> Setup:
    """The setup with edges ``cut`` removed (their learning bias too)."""
    dyn = setup.dynamics if setup.dynamics.bias is None else replace(
        setup.dynamics, bias=np.delete(setup.dynamics.bias, cut))
    return replace(setup, circuit=without_edges(setup.circuit, cut), dynamics=dyn)
