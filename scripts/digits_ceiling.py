"""The digits circuit's own ceiling: its gates fitted by gradient descent on all the images at once, not by a rule.

Every gate of a digits config's circuit (configs/digits.yaml by default) is fitted to the training images by Adam
on the softmax cross-entropy of the class scores V(k+) - V(k-) at a temperature T (V); the gradient is exact
through the native solver's free operating point (``circuit.control_gradient``: the adjoint of Kirchhoff's law at
the circuit's own device law), and the gates stay within the config's learning.bounds. A global optimiser that sees
every image in every step and knows the circuit's equations is a reference for what the circuit can do with this
layout; when it scores no better than a local learning rule, the gap to a target is the layout's, not the rule's.
A transistor below threshold at every image carries no current, so no gradient reaches its gate and the fit never
moves it (the rule does, by the drop across it): the script says how many edges start so, and a fit of every edge
starts them above threshold (configs/digits.yaml's 0.5-2.0 V draw leaves 195 of 1,247 dead; --set
"learning.init={kind: uniform, low: 1.0, high: 2.5}" none; docs/physics.md 4.4).

With --split-seed the fit runs on scripts/tune_digits.py's validation split of the training images and is scored
on its validation images (the held-out images are never solved); without, it fits all training images and is
scored on the held-out ones, a reference for the targets only (the best of the printed scores is then chosen on
the very images it scores, an upper reference).

    python scripts/digits_ceiling.py [--config FILE] [--set KEY=VALUE ...] [--split-seed S] [--loss softmax|hinge]
        [--temperature 0.03] [--iterations 400] [--lr 0.05] [--seed 0] [--every 50] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from metamaterial.circuit import control_gradient, edge_currents
from metamaterial.configfile import load_config
from metamaterial.errors import MetamaterialError
from metamaterial.experiment import build, initial_controls, make_solver

ROOT = Path(__file__).resolve().parents[1]
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-12


def softmax_loss(scores: np.ndarray, classes: np.ndarray, temperature: float) -> tuple[float, np.ndarray]:
    """(mean cross-entropy of softmax(scores / T) against the classes, its gradient in the scores [P, K] per V)."""
    z = scores / temperature
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(len(classes))
    loss = float(-np.log(np.maximum(p[rows, classes], 1e-300)).mean())
    p[rows, classes] -= 1.0
    return loss, p / temperature / len(classes)


def hinge_loss(scores: np.ndarray, classes: np.ndarray, margin: float) -> tuple[float, np.ndarray]:
    """(mean multi-class hinge max(0, margin - (s_c - s_r)), r the top rival, as the rule's loss; its gradient in the
    scores [P, K] per V): the fit of the rule's own objective, to tell the loss's part from the rule's."""
    rows = np.arange(len(classes))
    rivals = np.where(np.arange(scores.shape[1]) == classes[:, None], -np.inf, scores).argmax(axis=1)
    short = margin - (scores[rows, classes] - scores[rows, rivals])
    active = short > 0
    grad = np.zeros_like(scores)
    grad[rows[active], classes[active]] = -1.0 / len(classes)
    grad[rows[active], rivals[active]] = 1.0 / len(classes)
    return float(np.maximum(short, 0.0).mean()), grad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "digits.yaml"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--split-seed", type=int, default=None,
                    help="fit on a validation split of the training images (never solve the held-out ones)")
    ap.add_argument("--temperature", type=float, default=0.03, help="softmax temperature (V) of the class scores")
    ap.add_argument("--loss", choices=("softmax", "hinge"), default="softmax",
                    help="softmax cross-entropy, or the rule's own multi-class hinge at the config's learning.margin")
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--lr", type=float, default=0.05, help="Adam's step (V)")
    ap.add_argument("--seed", type=int, default=0, help="draw of the initial gates (the config's learning.init)")
    ap.add_argument("--every", type=int, default=50, help="score every this many iterations")
    ap.add_argument("--json", type=Path, default=None, help="write the scores per iteration here")
    a = ap.parse_args()
    # the validation split as scripts/tune_digits.py draws it: the config key task.validation
    split = [] if a.split_seed is None else [f"task.validation={{fraction: 0.2, seed: {a.split_seed}}}"]
    try:
        setup = build(load_config(a.config, ["simulator.backend=native", *a.overrides, *split]))
    except MetamaterialError as exc:  # a wrong config or override: one line, exit 2
        ap.error(str(exc))
    task = setup.task
    scored = "held-out" if a.split_seed is None else f"validation (split seed {a.split_seed})"
    if task.decode != "argmax" or not setup.circuit.differential.all():
        ap.error(f"{a.config}: this fit needs one differential output per class (a digits-like task)")
    c, solver = setup.circuit, make_solver(setup)
    low, high = setup.dynamics.low, setup.dynamics.high
    gates = initial_controls(setup, np.random.default_rng(a.seed))
    m1, m2 = np.zeros_like(gates), np.zeros_like(gates)
    margin = setup.rule.margin
    objective = (f"softmax cross-entropy at T = {a.temperature:g} V" if a.loss == "softmax" else
                 f"the multi-class hinge at a margin of {margin:g} V (the top rival)")
    print(f"{a.config}: {c.n_edges} edges, {task.n_points} training images, scored on {len(task.test_classes)} "
          f"{scored} images; Adam on {objective}, step {a.lr:g} V", flush=True)
    history, t0 = [], time.perf_counter()
    for it in range(1, a.iterations + 1):
        v = solver.solve(c, gates, task.inputs).voltages
        if it == 1:
            dead = int((edge_currents(c, gates, v) == 0.0).all(axis=0).sum())
            if dead:
                print(f"  {dead} of {c.n_edges} edges carry no current at any training image at the start (gates "
                      f"below threshold): no gradient reaches them, so this fit never moves them; start them higher "
                      f"(--set learning.init=...) for a fit of every edge", flush=True)
        scores = c.output_values(v)
        loss, d_scores = (softmax_loss(scores, task.classes, a.temperature) if a.loss == "softmax" else
                          hinge_loss(scores, task.classes, margin))
        grad = control_gradient(c, gates, v, c.output_weights(d_scores)).sum(axis=0)
        m1 = ADAM_BETAS[0] * m1 + (1 - ADAM_BETAS[0]) * grad
        m2 = ADAM_BETAS[1] * m2 + (1 - ADAM_BETAS[1]) * grad**2
        step = (m1 / (1 - ADAM_BETAS[0] ** it)) / (np.sqrt(m2 / (1 - ADAM_BETAS[1] ** it)) + ADAM_EPS)
        gates = np.clip(gates - a.lr * step, low, high)
        if it % a.every == 0 or it == a.iterations:
            test = c.output_values(solver.solve(c, gates, task.test_inputs).voltages)
            row = {"iteration": it, "loss": loss, "train_accuracy": float((scores.argmax(1) == task.classes).mean()),
                   "accuracy": float((test.argmax(1) == task.test_classes).mean())}
            history.append(row)
            print(f"  iteration {it}: loss {loss:.4f}, training {row['train_accuracy']:.4f}, {scored} "
                  f"{row['accuracy']:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    best = max(history, key=lambda r: r["accuracy"])
    print(f"{scored} accuracy: {history[-1]['accuracy']:.4f} at the last iteration, at most {best['accuracy']:.4f} "
          f"(iteration {best['iteration']}); training {history[-1]['train_accuracy']:.4f}")
    if a.json:
        a.json.write_text(json.dumps({"config": a.config, "overrides": a.overrides, "scored": scored,
                                      "loss": a.loss, "temperature": a.temperature, "lr": a.lr, "seed": a.seed,
                                      "dead_at_start": dead, "history": history}, indent=1) + "\n")


if __name__ == "__main__":
    main()
