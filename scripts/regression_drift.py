"""Why a run's output error rises again after its best epoch: the transistors cut off at every training point, measured.

Trains a config (by default ``configs/regression.yaml``, whose MSE is lowest around epoch 1,500 and rises after)
for --epochs epochs, keeping the gates every --every epochs, and prints, per kept epoch:

* the output MSE and each training point's error (mV);
* each transistor at an output node: its control (gate, V) and the training points at which it is cut off (current
  below ``OFF`` of the point's largest edge current: below threshold, where a level-1 transistor conducts nothing
  and no loss depends on its gate, docs/physics.md 3.10);
* the contrast objective of coupled learning, the sum over the points of the clamped twin's power less the free
  twin's (W, at the config's nudge; docs/physics.md 3.2: for resistors the rule descends it at nudge 1);
* the step the P contrasts at these gates summed would take (``full``, one full-batch update), the net move of one
  epoch of the config's own schedule from the same gates (``epoch``), both in V (norm over edges), and the
  first-order change of the MSE along each (V^2): where they differ, the order of the per-point steps decides
  where the run goes.

Then, from the gates at epoch --start, it continues --more epochs three ways and prints the MSE every --every
epochs: the config's own step; the same with the transistors that are cut off at every training point at --start
held fixed; and full batch (the contrasts of all points at the same gates summed into one update per epoch).

    python scripts/regression_drift.py [--config configs/regression.yaml] [--set KEY=VALUE ...] [--epochs 8000]
        [--every 500] [--start 1500] [--more 4000] [--backend native]

The continuations step in Python (``Trainer.step_many``): about 1 minute per 4,000 epochs of the regression on
native on an idle core.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from metamaterial import step as st
from metamaterial.circuit import control_gradient, edge_currents
from metamaterial.configfile import load_config
from metamaterial.energy import transistor_power
from metamaterial.errors import MetamaterialError
from metamaterial.experiment import build, initial_controls, make_trainer

#: a transistor is cut off at a point when its current is below this fraction of the point's largest edge current
OFF = 1e-6


def edge_name(c, e: int) -> str:
    """An edge as its two nodes' labels, e.g. ``(1, 2)-(2, 2)``."""
    return "-".join(c.node_labels[n] for n in c.edges[e])


def cut_off(trainer, controls: np.ndarray, free: np.ndarray) -> np.ndarray:
    """bool [P, E]: edges cut off at each training point, from its free node voltages [P, N]."""
    current = np.abs(edge_currents(trainer.circuit, controls, free))
    return current < OFF * current.max(axis=1, keepdims=True)


def errors(trainer, controls: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(MSE in V^2, errors [P, n_out] in V, free node voltages [P, N]) of the training points."""
    ev = trainer.evaluate(controls)
    return ev.loss, ev.outputs - trainer.task.targets, ev.free


def mse_gradient(trainer, controls: np.ndarray, err: np.ndarray, free: np.ndarray) -> np.ndarray:
    """[E] the gradient of the training MSE in the controls (adjoint of Kirchhoff's law, ``control_gradient``)."""
    c = trainer.circuit
    return control_gradient(c, controls, free, c.output_weights(2 * err / err.size)).sum(0)


def power_contrast(trainer, controls: np.ndarray, free: np.ndarray) -> float:
    """Sum over the training points of the clamped twin's power less the free twin's (W), at the config's nudge."""
    c, pr, f = trainer.circuit, trainer.program, st.compiled()
    out = f.output_values(free, c.out_pos, c.out_neg)
    push = f.output_pushes(out, pr.targets, pr.classes, pr.nudge, pr.rival)
    clamped = trainer.solver.solve(c, controls, pr.inputs, f.clamp_values(free, push, c.out_pos, c.out_neg),
                                   remember=False).voltages
    return float((transistor_power(c, controls, clamped, twin=1) - transistor_power(c, controls, free)).sum())


def advance(trainer, controls: np.ndarray, epoch: int, rng: np.random.Generator, full_batch: bool = False,
            frozen: np.ndarray | None = None) -> np.ndarray:
    """[E] the controls after epoch ``epoch`` (1, 2, ...) of the config's schedule (or one full-batch update),
    with the ``frozen`` edges (bool [E]) held."""
    n = trainer.task.n_points
    batches = [np.arange(n)] if full_batch else trainer.params.schedule.batches(n, rng)
    masks = None if frozen is None else ~frozen[None, :]
    x = controls[None, :]
    for idx in batches:
        x = trainer.step_many(x, idx[None, :], [rng], masks, epoch=epoch)[0]
    return x[0]


def survey(trainer, controls: np.ndarray, epoch: int, outputs_edges: np.ndarray) -> str:
    """One line of the first table (see the module docstring)."""
    mse, err, free = errors(trainer, controls)
    off = cut_off(trainer, controls, free)
    grad = mse_gradient(trainer, controls, err, free)
    rng = np.random.default_rng(0)  # only a shuffled schedule or read noise draws from it
    full = advance(trainer, controls, 1, rng, full_batch=True) - controls
    one = advance(trainer, controls, epoch + 1, rng) - controls
    text = (f"{epoch:6d} {mse:.3e} | " + " ".join(f"{e * 1e3:+.2f}" for e in err.ravel())
            + f" | {power_contrast(trainer, controls, free):+.1e} |")
    for e in outputs_edges:
        text += f" {edge_name(trainer.circuit, e)} {controls[e]:.3f} off {np.flatnonzero(off[:, e]).tolist() or '-'};"
    return (text + f" | full {np.linalg.norm(full):.1e} epoch {np.linalg.norm(one):.1e} | dMSE full "
            f"{grad @ full:+.1e} epoch {grad @ one:+.1e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/regression.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--epochs", type=int, default=8000, help="epochs to train and survey (default 8000)")
    ap.add_argument("--every", type=int, default=500, help="survey and print every this many epochs (default 500)")
    ap.add_argument("--start", type=int, default=1500, help="continue from the gates of this epoch, a multiple of "
                    "--every (default 1500); 0: no continuations")
    ap.add_argument("--more", type=int, default=4000, help="epochs each continuation runs (default 4000)")
    ap.add_argument("--backend", default="native", help="simulator backend (default native)")
    args = ap.parse_args()
    if args.every < 1 or args.start % args.every or not 0 <= args.start <= args.epochs:
        ap.error(f"--start must be a multiple of --every within [0, --epochs] (got {args.start}, every {args.every}, "
                 f"epochs {args.epochs})")
    try:
        cfg = load_config(args.config, [*args.overrides, f"simulator.backend={args.backend}",
                                        f"learning.epochs={args.epochs}", f"learning.eval_every={args.every}",
                                        f"learning.record_every={args.every}"])
        setup = build(cfg)
    except MetamaterialError as err:
        ap.error(str(err))
    trainer = make_trainer(setup)
    rng = np.random.default_rng(cfg.seed)
    state = trainer.init_state(initial_controls(setup, rng), rng, keep_trajectory=True)
    state = trainer.run(state)
    c = trainer.circuit
    nodes = np.concatenate([c.out_pos, c.out_neg[c.out_neg >= 0]])
    outputs_edges = np.flatnonzero(np.isin(c.edges, nodes).any(axis=1))
    print(f"{args.config} on {args.backend}, {args.epochs} epochs; per kept epoch: MSE (V^2) | error per point (mV) | "
          f"contrast, clamped less free power (W) | each transistor at an output: control (V), points where it is "
          f"cut off | norm of the summed-contrast step and of one epoch's net move (V) | first-order MSE change "
          f"along each (V^2)")
    kept = dict(zip(state.trajectory_epochs, state.trajectory))
    kept[state.epoch] = state.controls
    for epoch in sorted(kept):
        print(survey(trainer, kept[epoch][0], epoch, outputs_edges), flush=True)
    if not args.start:
        return
    start = kept[args.start][0]
    off_everywhere = cut_off(trainer, start, errors(trainer, start)[2]).all(axis=0)
    held = np.flatnonzero(off_everywhere)
    print(f"\ncontinued from epoch {args.start}; cut off at every training point there: "
          f"{', '.join(edge_name(c, e) for e in held) or 'none'} (held in the second run)")
    runs = {"as configured": {}, "those held": {"frozen": off_everywhere}, "full batch": {"full_batch": True}}
    lines, ends = {name: [] for name in runs}, {}
    for name, how in runs.items():
        x, step_rng = start.copy(), np.random.default_rng([cfg.seed, args.start])
        for epoch in range(args.start, args.start + args.more + 1):
            if (epoch - args.start) % args.every == 0:
                lines[name].append((epoch, errors(trainer, x)[0]))
            if epoch < args.start + args.more:
                x = advance(trainer, x, epoch + 1, step_rng, **how)
        ends[name] = x
    print("epoch  " + "  ".join(f"{name:>14s}" for name in runs))
    for i, (epoch, _) in enumerate(lines["as configured"]):
        print(f"{epoch:5d}  " + "  ".join(f"{lines[name][i][1]:14.3e}" for name in runs))
    for e in held:
        print(f"control of {edge_name(c, e)} (V): at {args.start} {start[e]:.3f}, at {args.start + args.more} "
              + ", ".join(f"{name} {ends[name][e]:.3f}" for name in runs))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
