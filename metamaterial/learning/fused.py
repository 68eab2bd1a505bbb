"""The training loop's fast path on the native backend: many steps in one compiled call (``fused_kernel``).

Python orchestration costs ~50-100 us per step (two solver calls, the nudge, the hinge, the update), ten
times the 4x4 torus's own solves. ``Trainer.advance`` hands whole chunks of steps to ``FusedLoop`` when
``fused_support`` allows it, with the data order and desynchronous masks drawn beforehand from the run's
generators exactly as the Python step draws them, so both paths give the same controls (tests/test_fused.py).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..devices import PotentiometerParams
from ..errors import ValidationError
from ..sim.native import NativeSolver
from . import fused_kernel as fk

if TYPE_CHECKING:
    from .trainer import Trainer


def fused_support(trainer: Trainer) -> str | None:
    """Why ``FusedLoop`` cannot run this trainer's steps, or None if it can."""
    solver, c, p = trainer.solver, trainer.circuit, trainer.params
    if not isinstance(solver, NativeSolver):
        return f"the {solver.name} backend solves through its own interface"
    if not (solver.prepared(c, False).dense and solver.prepared(c, True).dense):
        return f"{c.n_nodes} nodes: the native solver takes its sparse path, which is not compiled"
    if p.read_noise > 0:
        return "read noise is drawn per step, depending on the hinge"
    if not p.schedule.equal_steps(trainer.task.n_points):
        return "mini-batches of unequal size"
    return None


class FusedLoop:
    """Runs planned steps of a ``Trainer`` in the compiled kernel; constant arrays are built once."""

    def __init__(self, trainer: Trainer) -> None:
        reason = fused_support(trainer)
        if reason is not None:
            raise ValidationError(f"FusedLoop: cannot run this trainer ({reason}); use Trainer.step_many")
        self.trainer = trainer
        c, task, rule, dyn = trainer.circuit, trainer.task, trainer.rule, trainer.dynamics
        self.inputs = np.ascontiguousarray(task.inputs, float)
        self.targets = np.ascontiguousarray(task.targets, float)
        self.classes = (np.zeros(task.n_points, np.int64) if task.classes is None
                        else np.ascontiguousarray(task.classes, np.int64))
        self.levels = np.ascontiguousarray(task.levels if task.levels is not None else np.zeros(1), float)
        decode = {None: fk.DECODE_NONE, "nearest": fk.DECODE_NEAREST, "argmax": fk.DECODE_ARGMAX}[task.decode]
        self.rule = np.array([rule.nudge, float(rule.loss == "hinge"), rule.margin, decode], float)
        leak = dyn.leak_tau is not None
        self.dyn = np.array([float(dyn.kind == "sign"), rule.rate, dyn.low, dyn.high, float(leak),
                             math.exp(-trainer.step_time / dyn.leak_tau) if leak else 1.0, dyn.rest], float)
        self.bias = np.zeros(0) if dyn.bias is None else np.ascontiguousarray(dyn.bias, float)
        dev = c.device
        self.pot = (np.array([1.0 / dev.r_max, dev.r_max / dev.r_min, dev.n_taps - 1.0])
                    if isinstance(dev, PotentiometerParams) else np.zeros(3))
        self.out_pos = np.ascontiguousarray(c.out_pos, np.int64)
        self.out_neg = np.ascontiguousarray(c.out_neg, np.int64)
        self.rails = np.ascontiguousarray(c.rail_voltages, float)
        self.iterations = 0  # Newton iterations spent in the kernel so far
        self._empty_masks: np.ndarray | None = None

    def run(self, controls: np.ndarray, idx: np.ndarray, masks: np.ndarray | None, snap_after: np.ndarray
            ) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
        """Apply the steps idx [S, R, n] (masks [S, R, E] or None) to controls [R, E].

        Returns (new controls [R, E], solves, bool [S, R] whether each replica's switch closed at each step,
        [K, R, E] the controls after each step of ``snap_after`` (int [K], increasing step indices)).
        A step the kernel stops at (a sample it could not converge) is done by ``Trainer.step_many``, whose
        solver retries it, and the kernel goes on after it.
        """
        tr = self.trainer
        solver, c = tr.solver, tr.circuit
        controls = np.array(controls, float, order="C")
        idx = np.ascontiguousarray(idx, np.int64)
        n_steps, reps, _ = idx.shape
        masks_arr = self._no_masks(reps) if masks is None else np.ascontiguousarray(masks)
        moved = np.zeros((n_steps, reps), bool)
        snap_slot = np.full(n_steps, -1, np.int64)
        snap_slot[snap_after] = np.arange(len(snap_after))
        snaps = np.empty((len(snap_after), reps, c.n_edges))
        n_tags = reps * tr.task.n_points  # replica r, data point p: tag r P + p, as step_many
        solves, first = 0, 0
        while first < n_steps:
            pf, pc = solver.prepared(c, False), solver.prepared(c, True)
            done, used, iterations = fk.train_steps(
                first, controls, idx, masks_arr, self.inputs, self.targets, self.classes, self.levels, self.rule,
                self.dyn, self.bias, self.out_pos, self.out_neg, self.rails, pf.kind, pf.prm, pf.ea, pf.eb, self.pot,
                _phase(pf), _phase(pc), solver.max_iter, solver.tolerances, solver.warm_start,
                _memory(solver.tag_memory(c, False, n_tags)), _memory(solver.tag_memory(c, True, n_tags)), moved,
                snap_slot, snaps)
            solves += used
            solver.n_solves += used
            self.iterations += iterations
            if done < n_steps:  # the Python step, with the solver's retries (or its error message)
                controls, used, moved[done] = tr.step_many(controls, idx[done], None,
                                                           masks=None if masks is None else masks[done])
                solves += used
                if snap_slot[done] >= 0:
                    snaps[snap_slot[done]] = controls
                done += 1
            first = done
        return controls, solves, moved, snaps

    def _no_masks(self, reps: int) -> np.ndarray:
        if self._empty_masks is None or self._empty_masks.shape[1] != reps:
            self._empty_masks = np.zeros((0, reps, self.trainer.circuit.n_edges), bool)
        return self._empty_masks


def _phase(prep) -> tuple:
    return (prep.driven, prep.pos, prep.slots, prep.unk, prep.n_junctions, prep.diag, prep.vbi, prep.beta)


def _memory(memory) -> tuple:
    return (memory.v, memory.controls, memory.drive, memory.residual)
