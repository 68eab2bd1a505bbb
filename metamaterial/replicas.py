"""Replicas that differ in their circuit (one chip each: its own twin-mismatch draw), trained in step as one ensemble.

A ``Trainer`` trains many replicas of one circuit as one batch. With ``device.mismatch.per_replica`` every replica
is its own chip, so ``ChipTrainers`` holds one trainer per replica (each on its own solver) and advances them epoch
by epoch together. It offers the part of the ``Trainer`` interface that ``runs.train_replicas`` and its callers use
(``params``, ``solver``, ``init_state``, ``run``, ``evaluate``, ``learning_time``, ``hardware_time``) and keeps one
merged ``TrainState`` of all replicas, so checkpoints, resumes and reports are those of any ensemble. Replica r is
exactly the single run of its seed: the same trainer on the same circuit, advanced through the same epochs
(``Trainer.run`` ends at the same state whatever pieces it runs in).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .learning.trainer import Evaluation, Trainer, TrainParams, TrainState


class _Solvers:
    """The replicas' solvers seen as one: reset, close and ``keep_failed`` reach every one of them."""

    def __init__(self, solvers: list) -> None:
        self.solvers = solvers
        self.name = solvers[0].name

    @property
    def keep_failed(self) -> str | None:
        return getattr(self.solvers[0], "keep_failed", None)

    @keep_failed.setter
    def keep_failed(self, folder: str | None) -> None:
        for s in self.solvers:
            if hasattr(s, "keep_failed"):
                s.keep_failed = folder

    def reset(self) -> None:
        for s in self.solvers:
            s.reset()

    def close(self) -> None:
        for s in self.solvers:
            s.close()

    def __enter__(self) -> _Solvers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ChipTrainers:
    """One ``Trainer`` per replica (each its own circuit and solver), advanced together."""

    def __init__(self, trainers: list[Trainer]) -> None:
        self.trainers = trainers
        self.solver = _Solvers([t.solver for t in trainers])
        self._parts: list[TrainState] | None = None
        self._merged: TrainState | None = None

    @property
    def params(self) -> TrainParams:
        return self.trainers[0].params

    def init_state(self, controls: np.ndarray, rngs: list[np.random.Generator]) -> TrainState:
        """The merged state at epoch 0 of controls [R, E], one generator per replica (no trajectory kept)."""
        parts = [t.init_state(controls[r:r + 1], [rngs[r]], keep_trajectory=False) for r, t in enumerate(self.trainers)]
        return self._merge(parts, None)

    def run(self, state: TrainState, on_epoch: Callable[[TrainState], None] | None = None,
            every: int = 1) -> TrainState:
        """Train every replica to ``params.epochs``, stopping together after each multiple of ``every`` (and the
        last epoch) to call ``on_epoch(merged state)``."""
        parts = self._split(state) if state is not self._merged else self._parts
        end = self.params.epochs
        while state.epoch < end:
            stop = min(end, (state.epoch // every + 1) * every)
            for trainer, part in zip(self.trainers, parts):
                trainer.run(part, until=stop)
            state = self._merge(parts, state)
            if on_epoch is not None:
                on_epoch(state)
        return state

    def evaluate(self, controls: np.ndarray, test: bool = False) -> Evaluation:
        """``Trainer.evaluate`` of controls [R, E], each row on its own replica's chip."""
        evs = [t.evaluate(controls[r:r + 1], test) for r, t in enumerate(self.trainers)]
        joined = {k: None if getattr(evs[0], k) is None else np.concatenate([getattr(e, k) for e in evs])
                  for k in ("outputs", "loss", "accuracy", "min_margin", "free", "hinge_loss")}
        return Evaluation(**joined)

    def learning_time(self, state: TrainState) -> np.ndarray:
        return self.trainers[0].learning_time(state)

    def hardware_time(self, state: TrainState) -> np.ndarray:
        return self.trainers[0].hardware_time(state)

    def _merge(self, parts: list[TrainState], previous: TrainState | None) -> TrainState:
        """One state of all replicas; history rows already merged in ``previous`` are kept, new ones joined."""
        rows = [] if previous is None else list(previous.history)
        for i in range(len(rows), len(parts[0].history)):
            first = parts[0].history[i]
            rows.append({k: (np.concatenate([np.atleast_1d(p.history[i][k]) for p in parts])
                             if isinstance(v, np.ndarray) else v) for k, v in first.items()})
        merged = TrainState(parts[0].epoch, np.concatenate([p.controls for p in parts]),
                            [rng for p in parts for rng in p.rngs], np.concatenate([p.n_updates for p in parts]),
                            parts[0].n_steps, sum(p.n_solves for p in parts), False, rows)
        self._parts, self._merged = parts, merged
        return merged

    def _split(self, state: TrainState) -> list[TrainState]:
        """Per-replica states of a merged one (a resumed checkpoint); its solve count goes to replica 0."""
        parts = []
        for r in range(state.replicas):
            rows = [{k: (v[r:r + 1] if isinstance(v, np.ndarray) else v) for k, v in row.items()}
                    for row in state.history]
            parts.append(TrainState(state.epoch, state.controls[r:r + 1].copy(), [state.rngs[r]],
                                    state.n_updates[r:r + 1].copy(), state.n_steps, state.n_solves if r == 0 else 0,
                                    False, rows))
        return parts


__all__ = ["ChipTrainers"]
