"""Coupled learning's parameters: the nudge eta, the rate alpha/eta (its one owner), the loss and its margin.

Dillavou et al., PNAS 2024; the equations are in ``metamaterial.step``, whose functions ``clamp`` and
``contrast`` call (compiled by numba on first use; this module itself imports only numpy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import step
from ..circuit import Circuit, node_voltages
from ..errors import ValidationError, check_indices, check_numbers, real_array, shown

#: the losses under which a point past the margin stops updating
HINGE_LOSSES = ("hinge", "multiclass_hinge")
LOSSES = ("mse", *HINGE_LOSSES)
#: the largest rate a config gives (learning.rate, 1/V or S/V^2): far past any circuit here, so that a slip of the
#: exponent is refused rather than met as an infinite step
MAX_RATE = 1e6
#: which edges a point's contrast reaches (``CoupledLearning.update_edges``)
UPDATE_EDGES = ("all", "pushed")


@dataclass(frozen=True)
class CoupledLearning:
    """Parameters of the rule.

    Attributes:
        nudge: eta in (0, 1].
        rate: alpha / eta, control units per V^2 (1/V for gate voltages), in the first epoch.
        rate_decay: the factor on the rate from one epoch to the next (``step.epoch_rate``: rate * rate_decay **
            (epoch - 1)); 1.0, the default, keeps the rate constant.
        loss: ``"mse"`` (every point updates), ``"hinge"`` (a classified point stops updating once it is
            ``margin`` volts past its decision boundary) or ``"multiclass_hinge"`` (the hinge on an argmax
            classification, whose clamped phase pushes the true class's output up by ``nudge`` volts and the top
            rival's down by as much, holding the other outputs at their free values: the rule of the third-party
            8x8-digits trainer, github Ma-Lab-Cal/pyclln, scikit_digits/README.md).
        margin: hinge margin (V).
        update_edges: ``"all"`` (every edge takes a point's contrast) or ``"pushed"`` (only the edges touching a
            node of an output the clamped phase pushes: under ``multiclass_hinge`` the true class's and the top
            rival's, as the third-party digits trainer updates only its clamped rails' edges). Where the other
            outputs hang between driven nodes only (a layered network without a hidden layer) their edges' contrast
            is exactly 0 and the two agree, unless read noise is added to what the learning circuit reads.
    """

    nudge: float = 1.0
    rate: float = 1.0
    loss: str = "mse"
    margin: float = 0.02
    update_edges: str = "all"
    rate_decay: float = 1.0

    def __post_init__(self) -> None:
        check_numbers(self)
        if not (0 < self.nudge <= 1):
            raise ValidationError(f"CoupledLearning.nudge: must be in (0, 1] (got {shown(self.nudge)})")
        if not (math.isfinite(self.rate) and self.rate >= 0):
            raise ValidationError(f"CoupledLearning.rate: must be finite and >= 0 (got {self.rate!r})")
        if not math.isfinite(self.margin):  # a NaN margin stopped every point under the hinge: nothing trained
            raise ValidationError(f"CoupledLearning.margin: must be a finite number of volts (got {self.margin!r}); "
                                  "give e.g. margin=0.02")
        if not (0 < self.rate_decay <= 1):
            raise ValidationError(f"CoupledLearning.rate_decay: must be in (0, 1] (got {shown(self.rate_decay)})")
        if self.loss not in LOSSES:
            raise ValidationError(f"CoupledLearning.loss: must be one of {', '.join(LOSSES)} (got {shown(self.loss)})")
        if self.update_edges not in UPDATE_EDGES:
            raise ValidationError(f"CoupledLearning.update_edges: must be one of {', '.join(UPDATE_EDGES)} "
                                  f"(got {shown(self.update_edges)})")

    @property
    def hinge(self) -> bool:
        """Whether points past the margin stop updating."""
        return self.loss in HINGE_LOSSES

    @property
    def rival(self) -> bool:
        """Whether the clamped phase pushes the true class and its top rival (``step.output_pushes``)."""
        return self.loss == "multiclass_hinge"

    def clamp(self, c: Circuit, free: np.ndarray, targets: np.ndarray, classes: np.ndarray | None = None) -> np.ndarray:
        """[B, n_clamp] voltages of ``c.clamp_nodes`` in the clamped phase.

        Args:
            free: [B, N] free-state node voltages (V).
            targets: [B, n_out] labels L (V).
            classes: int [B] true classes (needed by ``multiclass_hinge``).
        """
        where, f = "CoupledLearning.clamp", step.compiled()
        # the compiled functions read these arrays unchecked: a 1-D targets [B] of one output was read as one row
        free = node_voltages(c, free, where, "free")
        given = real_array(targets, where, "targets", "labels (V)", "give the points' targets", axes=("row", "output"))
        targets = np.atleast_2d(given)
        if targets.shape != (len(free), c.n_outputs):
            raise ValidationError(f"{where}: targets must have shape ({len(free)}, {c.n_outputs}), one row of "
                                  f"{c.n_outputs} label(s) (V) per row of free (got shape {given.shape}); give "
                                  "e.g. task.targets[idx] for the points idx")
        if self.rival and classes is None:
            raise ValidationError("CoupledLearning.clamp: the multiclass_hinge nudge needs each point's class")
        cls = np.zeros(len(free), np.int64)
        if self.rival:
            given = np.asarray(classes)
            if given.shape != (len(free),):
                raise ValidationError(f"{where}: classes must have shape ({len(free)},), one class per row of free "
                                      f"(got shape {given.shape}); give e.g. task.classes[idx]")
            check_indices(given, c.n_outputs, f"{where}: classes must be output indices",
                          "give each point's class, one output per class")
            cls = given.astype(np.int64)
        out = f.output_values(free, c.out_pos, c.out_neg)
        push = f.output_pushes(out, targets, cls, self.nudge, self.rival)
        return f.clamp_values(free, push, c.out_pos, c.out_neg)

    @staticmethod
    def contrast(c: Circuit, free: np.ndarray, clamped: np.ndarray) -> np.ndarray:
        """[B, E] U = (dV^F)^2 - (dV^C)^2 per edge, V^2, of free and clamped node voltages [B, N]."""
        free = node_voltages(c, free, "CoupledLearning.contrast", "free")
        clamped = node_voltages(c, clamped, "CoupledLearning.contrast", "clamped")
        if clamped.shape != free.shape:  # the compiled contrast read past the shorter one
            raise ValidationError(f"CoupledLearning.contrast: clamped must have the shape of free, one row per point "
                                  f"(got {clamped.shape} and {free.shape}); give the clamped solve of free's points")
        every = np.ones(len(free), np.bool_)
        return step.compiled().summed_contrast(free, clamped, c.edges[:, 0], c.edges[:, 1], every, len(free))


def mse(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Mean squared error over points and outputs (V^2): ``outputs`` [..., P, n_out] (e.g. [R, P, n_out] of R
    replicas) against ``targets`` [P, n_out]."""
    outputs, targets = np.asarray(outputs, float), np.asarray(targets, float)
    if outputs.shape[outputs.ndim - targets.ndim:] != targets.shape:
        # [P, 1] against [P] broadcast to [P, P]: the mean of every output against every point's target
        raise ValidationError(f"mse: targets must have the last axes of outputs (got outputs {outputs.shape} and "
                              f"targets {targets.shape}); give both with the points and outputs as [P, n_out]")
    return float(np.mean((outputs - targets) ** 2))
