"""Presentation schedules: which data points form each update step of an epoch.

``cycle``: one point per step, in order (the hardware's schedule). ``shuffle``: one point per step, a
fresh permutation each epoch. ``full_batch``: one step per epoch, contrasts summed over all points.
``mini_batch``: steps of ``batch_size`` points from a fresh permutation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ValidationError, check_numbers, shown, whole_number

KINDS = ("cycle", "shuffle", "full_batch", "mini_batch")


@dataclass(frozen=True)
class Schedule:
    """Which data points each update step of an epoch presents.

    Attributes:
        kind: ``"cycle"`` (one point per step, in order: the hardware's schedule), ``"shuffle"`` (one point per
            step, a fresh permutation every epoch), ``"full_batch"`` (one step per epoch, the contrasts of every
            point summed) or ``"mini_batch"`` (steps of ``batch_size`` points from a fresh permutation).
        batch_size: points per step of ``"mini_batch"``; the other kinds take only 1, the default (each sets its
            own steps, and a batch size given them was ignored).
    """

    kind: str = "cycle"
    batch_size: int = 1

    def __post_init__(self) -> None:
        check_numbers(self)
        if self.kind not in KINDS:
            raise ValidationError(f"Schedule.kind: must be one of {KINDS} (got {shown(self.kind)})")
        whole_number(self.batch_size, "Schedule.batch_size")  # 2.5 failed in the first epoch's slicing
        if self.batch_size < 1:
            raise ValidationError(f"Schedule.batch_size: must be >= 1 (got {shown(self.batch_size)})")
        if self.batch_size != 1 and self.kind != "mini_batch":  # as a config refuses learning.batch_size
            raise ValidationError(f"Schedule.batch_size: only kind 'mini_batch' steps in batches (got batch_size "
                                  f"{shown(self.batch_size)} with kind {self.kind!r}); give "
                                  f"Schedule('mini_batch', {shown(self.batch_size)}), or leave batch_size out")

    @property
    def _size(self) -> int:
        """Points per step of ``cycle``, ``shuffle`` and ``mini_batch`` (``full_batch``, one step of every point, is
        drawn apart)."""
        return self.batch_size if self.kind == "mini_batch" else 1

    def batches(self, n_points: int, rng: np.random.Generator) -> list[np.ndarray]:
        """Index arrays, one per update step of one epoch."""
        if self.kind == "full_batch":
            return [np.arange(n_points)]
        order = np.arange(n_points) if self.kind == "cycle" else rng.permutation(n_points)
        return [order[i:i + self._size] for i in range(0, n_points, self._size)]

    def steps_per_epoch(self, n_points: int) -> int:
        return 1 if self.kind == "full_batch" else -(-n_points // self._size)

    def points_per_step(self, n_points: int) -> int:
        """Points each step presents (the last step of an epoch may present fewer unless ``equal_steps``)."""
        return n_points if self.kind == "full_batch" else min(self._size, n_points)

    def equal_steps(self, n_points: int) -> bool:
        """Whether every step of an epoch presents the same number of points (see ``epoch_steps``)."""
        return self.kind != "mini_batch" or n_points % self.batch_size == 0

    def epoch_steps(self, n_points: int, rng: np.random.Generator, epochs: int = 1) -> np.ndarray:
        """int [epochs x steps per epoch, points per step]: the ``batches`` of ``epochs`` epochs in a row, drawn
        from ``rng`` exactly as that many calls of ``batches`` draw them. Needs ``equal_steps``."""
        if not self.equal_steps(n_points):
            raise ValidationError(f"Schedule.epoch_steps: {n_points} points do not split into mini-batches of "
                                  f"{self.batch_size}; use batches()")
        if self.kind == "cycle":
            return np.tile(np.arange(n_points), epochs)[:, None]
        if self.kind == "full_batch":
            return np.tile(np.arange(n_points), (epochs, 1))
        return np.stack([rng.permutation(n_points) for _ in range(epochs)]).reshape(-1, self._size)
