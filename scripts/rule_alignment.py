"""How closely a config's coupled-learning step follows gradient descent, before and during training.

For each data point the rule's contrast U (the step is rate x U) is set against the gradient, by the adjoint of
Kirchhoff's law, of two losses its clamped phase asks to lower (``Trainer.rule_and_gradient``, docs/physics.md
3.10): the task's, -p . O (p the push on the outputs), and the clamps', -f . V (f the current each clamp drives
in). Printed per gate state (the config's initial draw, then after each of --epochs of its own training) and per
nudge (--nudges, the config's when not given): the cosine between U and the steepest descent of each loss, point by
point (median and quartiles over the active points) and summed over them (a full-batch step); the edges off at a
point (current below ``OFF`` of its largest: transistors below threshold, where the gradient is 0), their share of
the step's length and the cosine on the other edges; and for networks with edges away from the outputs (a hidden
layer), that edge group's share of the step's and of the gradient's length.
A cosine of 1 is gradient descent; resistors reach it against the clamps' loss as the nudge goes to 0.

    python scripts/rule_alignment.py [--config configs/xor.yaml] [--set KEY=VALUE ...] [--epochs 5,30]
        [--nudges 1e-3,0.05] [--points 400] [--seed 0] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from metamaterial.analysis import direction_noise
from metamaterial.circuit import edge_currents
from metamaterial.configfile import load_config
from metamaterial.errors import MetamaterialError
from metamaterial.experiment import build, initial_controls, make_trainer

ROOT = Path(__file__).resolve().parents[1]
#: an edge is off at a point when its current is below this fraction of the point's largest edge current
OFF = 1e-6


def _floats(text: str) -> list[float]:
    return [float(t) for t in text.split(",") if t.strip()]


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def alignment(trainer, controls: np.ndarray, idx: np.ndarray) -> dict:
    """The cosines and edge-group shares of one gate state at one trainer's nudge."""
    r = trainer.rule_and_gradient(controls, idx)
    a = r.active
    row = {"active": int(a.sum()), "points": len(idx)}
    if not a.any():
        return row
    for name, grad in (("task", r.task), ("clamps", r.clamps)):
        cos = 1.0 - direction_noise(r.u[a], -grad[a])
        row[name] = {"median": float(np.median(cos)), "q1": float(np.quantile(cos, 0.25)),
                     "q3": float(np.quantile(cos, 0.75)),
                     "summed": float(1.0 - direction_noise(r.u[a].sum(0), -grad[a].sum(0))[0])}
    c = trainer.circuit
    current = np.abs(edge_currents(c, controls, r.free[a]))
    off = current < OFF * current.max(axis=1, keepdims=True)
    if off.any():
        u, grad = r.u[a] * ~off, r.clamps[a] * ~off
        row["off"] = {"edges": float(off.mean()),
                      "step": float(np.median(np.linalg.norm(r.u[a] * off, axis=1) / np.linalg.norm(r.u[a], axis=1))),
                      "clamps_on": float(np.median(1.0 - direction_noise(u, -grad)))}
    at_output = np.isin(c.edges, c.clamp_nodes).any(axis=1)
    if not at_output.all():
        step, grad = r.u[a].sum(0), r.task[a].sum(0)
        row["inner_share"] = {"step": float(np.linalg.norm(step[~at_output]) / np.linalg.norm(step)),
                              "task_gradient": float(np.linalg.norm(grad[~at_output]) / np.linalg.norm(grad)),
                              "edges": int((~at_output).sum())}
    return row


def _line(row: dict) -> str:
    if "task" not in row:
        return f"{row['active']} of {row['points']} points active: no step"
    t, k = row["task"], row["clamps"]
    text = (f"{row['active']:4d} active | task: {t['median']:.4f} [{t['q1']:.4f}, {t['q3']:.4f}], summed "
            f"{t['summed']:.4f} | clamps: {k['median']:.4f} [{k['q1']:.4f}, {k['q3']:.4f}], summed {k['summed']:.4f}")
    if "off" in row:
        o = row["off"]
        text += (f" | off: {o['edges']:.0%} of edges, {o['step']:.2f} of the step; clamps on the others "
                 f"{o['clamps_on']:.4f}")
    if "inner_share" in row:
        s = row["inner_share"]
        text += f" | {s['edges']} inner edges: {s['step']:.3f} of the step, {s['task_gradient']:.3f} of the gradient"
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "xor.yaml"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--epochs", type=_ints, default=[], help="also measure after these epochs of training (e.g. 5,30)")
    ap.add_argument("--nudges", type=_floats, default=None, help="learning.nudge values to measure at (default: the "
                    "config's)")
    ap.add_argument("--points", type=int, default=400, help="at most this many training points (a seeded subset)")
    ap.add_argument("--seed", type=int, default=0, help="the initial gates' draw, the training order, the subset")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    try:
        setup = build(load_config(args.config, args.overrides + ["simulator.backend=native"]))
        nudges = args.nudges or [setup.config.learning.nudge]
        measuring = {n: make_trainer(build(load_config(args.config, args.overrides + [
            "simulator.backend=native", f"learning.nudge={n}"]))) for n in nudges}
    except MetamaterialError as err:
        ap.error(str(err))
    rng = np.random.default_rng(args.seed)
    trainer = make_trainer(setup)
    state = trainer.init_state(initial_controls(setup, rng), rng)
    n = setup.task.n_points
    idx = np.sort(np.random.default_rng(args.seed).permutation(n)[:args.points])
    print(f"{args.config}: {setup.circuit.n_edges} edges, {len(idx)} of {n} training points; cosine of the step "
          f"with steepest descent, median [quartiles] over active points")
    rows = []
    for epoch in [0, *sorted(args.epochs)]:
        if epoch > state.epoch:
            state = trainer.run(state, until=epoch)
        for nudge, t in measuring.items():
            row = {"epoch": epoch, "nudge": nudge, **alignment(t, state.controls[0], idx)}
            rows.append(row)
            print(f"epoch {epoch:3d} nudge {nudge:g}: {_line(row)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"config": args.config, "overrides": args.overrides, "rows": rows}, indent=1))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
