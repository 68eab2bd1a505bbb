"""Validation accuracy of the 8x8 digits recipe, without looking at the held-out images.

A seeded validation split is carved from the config's 1,437 training images (stratified by class, ``--val-fraction``
of each class, drawn from ``--split-seed``: the config key ``task.validation``, which a sweep spec can set as well);
the network trains on the rest and is scored on the validation images
after every epoch. Each ``--try`` is one recipe (config overrides separated by commas, or "config" for the config
as shipped), trained for every seed of ``--seeds`` (one batch of replicas). The held-out 360 images are never solved.

    python scripts/tune_digits.py --try config --try device.body=input --seeds 0-3 [--split-seed 0]

Prints, per recipe: the validation accuracy of each seed at the last epoch, their mean, and the mean's best epoch.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from metamaterial.configfile import load_config
from metamaterial.errors import MetamaterialError
from metamaterial.experiment import build, initial_controls, make_trainer

ROOT = Path(__file__).resolve().parents[1]


def _overrides(recipe: str) -> list[str]:
    """A recipe's KEY=VALUE overrides: split on the commas outside YAML brackets, so a flow map or list
    (``device.mismatch={vto_sigma: 0.01, k_sigma: 0.005}``) stays one override."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(recipe):
        depth += (ch in "[{") - (ch in "]}")
        if ch == "," and depth == 0:
            parts.append(recipe[start:i])
            start = i + 1
    return [*parts, recipe[start:]]


def _seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "digits.yaml"))
    ap.add_argument("--try", dest="tries", action="append", default=[], metavar="K=V,K=V",
                    help="a recipe: config overrides separated by commas outside brackets ('config': as shipped)")
    ap.add_argument("--seeds", default="0-3", help="training seeds, e.g. 0-3")
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--val-fraction", type=float, default=0.2)
    a = ap.parse_args()
    seeds = _seeds(a.seeds)
    for recipe in a.tries or ["config"]:
        overrides = [] if recipe == "config" else _overrides(recipe)
        split = f"task.validation={{fraction: {a.val_fraction}, seed: {a.split_seed}}}"
        try:
            setup = build(load_config(a.config, ["simulator.backend=native", *overrides, split]))
        except MetamaterialError as err:
            ap.error(f"--try {recipe}: {err}")
        trainer = make_trainer(setup)
        rngs = [np.random.default_rng(s) for s in seeds]
        gates = np.stack([initial_controls(setup, rng) for rng in rngs])
        t0, c0 = time.perf_counter(), time.process_time()
        state = trainer.run(trainer.init_state(gates, rngs))
        curve = np.array([np.atleast_1d(h["test_accuracy"]) for h in state.history if h["epoch"] > 0])
        mean = curve.mean(axis=1)
        n_val = len(setup.task.test_inputs)
        print(f"{recipe}: validation accuracy (split seed {a.split_seed}, {n_val} of {setup.task.n_points + n_val} "
              "training images)"
              f" seeds {a.seeds}: {' '.join(f'{x:.4f}' for x in curve[-1])}, mean {mean[-1]:.4f} at "
              f"epoch {len(mean)} (best mean {mean.max():.4f} at epoch {int(np.argmax(mean)) + 1}); "
              f"{time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU, load "
              f"{os.getloadavg()[0]:.1f}\n  mean by epoch: {' '.join(f'{x:.3f}' for x in mean)}", flush=True)
        trainer.solver.close()


if __name__ == "__main__":
    main()
