"""Presentation schedules: which data points form each update step of an epoch.

``cycle``: one point per step, in order (the hardware's schedule). ``shuffle``: one point per step, a
fresh permutation each epoch. ``full_batch``: one step per epoch, contrasts summed over all points.
``mini_batch``: steps of ``batch_size`` points from a fresh permutation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ValidationError

KINDS = ("cycle", "shuffle", "full_batch", "mini_batch")


@dataclass(frozen=True)
class Schedule:
    kind: str = "cycle"
    batch_size: int = 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValidationError(f"Schedule.kind: must be one of {KINDS} (got {self.kind!r})")
        if self.batch_size < 1:
            raise ValidationError(f"Schedule.batch_size: must be >= 1 (got {self.batch_size!r})")

    def batches(self, n_points: int, rng: np.random.Generator) -> list[np.ndarray]:
        """Index arrays, one per update step of one epoch."""
        if self.kind == "cycle":
            return [np.array([i]) for i in range(n_points)]
        if self.kind == "full_batch":
            return [np.arange(n_points)]
        order = rng.permutation(n_points)
        size = 1 if self.kind == "shuffle" else self.batch_size
        return [order[i:i + size] for i in range(0, n_points, size)]
