"""The one solver interface every backend implements.

A solver turns (circuit, per-edge controls, input drive, optional output clamps) into node voltages.
The free phase passes ``clamps=None``; the clamped phase holds ``circuit.clamp_nodes`` at ``clamps``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..circuit import Circuit, OperatingPoint
from ..errors import ValidationError, first_bad, real_array, shown
from ..netlist import SpiceOptions
from ..step import StepProgram, StepRun


class AbstractSolver(ABC):
    """DC operating points of a batch of drives.

    Attributes:
        name: backend name as used in configs and on the command line.
        n_solves: number of sample-solves done so far (one data point, one phase = one solve).
    """

    name: str = "abstract"

    def __init__(self) -> None:
        self.n_solves = 0

    @abstractmethod
    def _solve(self, circuit: Circuit, controls: np.ndarray, inputs: np.ndarray,
               clamps: np.ndarray | None, tags: np.ndarray | None, remember: bool) -> OperatingPoint:
        """Backend work; arguments already validated and shaped (see ``solve``)."""

    def solve(self, circuit: Circuit, controls: np.ndarray, inputs: np.ndarray,
              clamps: np.ndarray | None = None, tags: np.ndarray | None = None,
              remember: bool = True) -> OperatingPoint:
        """Solve B operating points.

        Args:
            controls: [E] per-edge controls shared by the batch (gate V, conductance S, or tap), or [B, E]
                one row per sample (ensembles of replicas).
            inputs: [B, n_in] input voltages (V) (a 1-D row is taken as B = 1).
            clamps: [B, n_clamp] voltages of ``circuit.clamp_nodes`` for the clamped phase, or None (free).
            tags: int [B] >= 0 naming each sample across calls (training: replica x points + data point), or
                None. A solver may start a sample from its last solution of the same tag and phase (the native
                solver does: the same data point a step ago is the closest known solution); the answer does not
                depend on it beyond the solver's tolerance.
            remember: False: start from what earlier calls left (the tags' last solutions) but leave the solver as
                it was, so that no later solve depends on this one. Evaluation solves so: it starts from
                training's solutions, and training's trajectory stays bit for bit the same whatever is evaluated
                when (a warm start moves Newton's answer within the tolerance, i.e. in its last bits).
        Returns:
            ``OperatingPoint`` with ``voltages`` [B, N] in V.
        """
        where = f"{type(self).__name__}.solve"
        if not isinstance(circuit, Circuit):
            raise ValidationError(f"{where}: circuit must be a Circuit (got {type(circuit).__name__}); make one with "
                                  "compile_graph(g, device) from a graph carrying roles (assign_roles)")
        device = circuit.device
        # NaN and infinity refused here, named by argument and position: both backends took them far, native's
        # Newton refusing them after the fact, ngspice's netlist writer deep inside the load
        label = device.control_label
        controls = real_array(controls, where, "controls", f"one {label} per edge", "give a float array",
                              finite=f"give a finite {label} to every edge", axes=("row", "edge"))
        inputs = real_array(inputs, where, "inputs", "input voltages (V)", "give a float array",
                            finite="give a finite voltage (V) to every input", axes=("row", "column"))
        given, inputs = inputs.shape, np.atleast_2d(inputs)
        if inputs.ndim != 2 or inputs.shape[1] != circuit.n_inputs:
            raise ValidationError(f"{where}: inputs must have shape (B, {circuit.n_inputs}), one row of input "
                                  f"voltages (V) per data point (got shape {given}); give a [B, {circuit.n_inputs}] "
                                  f"array, or one row of {circuit.n_inputs}")
        if controls.shape != (circuit.n_edges,) and controls.shape != (inputs.shape[0], circuit.n_edges):
            raise ValidationError(f"{where}: controls must have shape ({circuit.n_edges},) or "
                                  f"({inputs.shape[0]}, {circuit.n_edges}) (got {controls.shape}); give one control "
                                  f"({device.control_unit}) per edge, shared by the batch, or one row per input row")
        if clamps is not None:
            clamps = np.atleast_2d(real_array(clamps, where, "clamps", "clamp voltages (V)", "give a float array",
                                              finite="give a finite voltage (V) to every clamp",
                                              axes=("row", "column")))
            if clamps.shape != (inputs.shape[0], len(circuit.clamp_nodes)):
                raise ValidationError(f"{where}: clamps must have shape "
                                      f"({inputs.shape[0]}, {len(circuit.clamp_nodes)}) (got {clamps.shape}); give "
                                      "one row per input row, one voltage (V) per node of circuit.clamp_nodes")
        device.check_controls(controls)  # its own refusals (a resistor's conductance <= 0), on either backend
        if tags is not None:
            tags = np.asarray(tags)
            if tags.shape != (inputs.shape[0],) or tags.dtype.kind not in "iu":
                raise ValidationError(f"{where}: tags must be {inputs.shape[0]} integers >= 0 "
                                      f"(got shape {tags.shape}, dtype {tags.dtype}); give one per input row, or None")
            if (tags < 0).any():
                at, place = first_bad(tags < 0, ("row",))
                raise ValidationError(f"{where}: tags must be {inputs.shape[0]} integers >= 0 (got {tags[at]}{place}); "
                                      "give one per input row, or None")
        op = self._solve(circuit, controls, inputs, clamps, tags, remember)
        self.n_solves += inputs.shape[0]
        return op

    def train_steps(self, program: StepProgram, plan: StepRun, first: int) -> tuple[int, int] | None:
        """Optional capability: run planned training steps in the solver's own compiled loop.

        Applies steps ``first`` .. of ``plan`` (in place on ``plan.controls``, ``plan.windows``, ``plan.snaps``) with
        exactly the arithmetic of ``metamaterial.step`` and the answers ``solve`` would give with tags replica x
        points + data point. Returns (steps done up to, sample-solves used); it may stop early at a step it cannot
        finish (left undone, for the caller's Python step). None: this solver has no such loop, or not for this
        program; the caller runs the Python step. The default has none.
        """
        return None

    def reset(self) -> None:  # noqa: B027 (an optional hook; no-op by default)
        """Forget cached simulator state (loaded circuits, warm starts) so that the next solves depend only on
        their arguments. Training calls this at every checkpoint, which makes a resumed run bit-identical to an
        uninterrupted one. No-op by default."""

    def close(self) -> None:  # noqa: B027 (an optional hook; no-op by default)
        """Release simulator resources (no-op by default)."""

    def __enter__(self) -> AbstractSolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_options(options: object, where: str) -> None:
    """Refuse simulator options that are not a ``SpiceOptions`` (a dict of them), which a solver would read only at
    its first solve, failing there on a missing attribute."""
    if not isinstance(options, SpiceOptions):
        raise ValidationError(f"{where}.options: must be a SpiceOptions (got {type(options).__name__} "
                              f"{shown(options)}); give e.g. SpiceOptions(reltol=1e-6)")
