"""Sparse-path benchmark of the native solver: chord-Newton settings side by side on large XOR lattices.

The native sparse path (``NativeSolver._newton_sparse``) reuses a SuperLU factorization while the true residual
falls by ``_CHORD_CONTRACTION`` per step, for at most ``_CHORD_MAX_RUN`` chord steps in a row, a chord step ending
the solve only within ``_CHORD_TOLERANCE`` of the node tolerance. This script times settings of those three
constants against each other, the first one given being the reference, in one process
and taking turns (the order alternates round by round, every setting on a fresh solver), on the shipped
configs/xor.yaml scaled to n x n tori (its 4x4 placement scaled as r * n // 4, or with ``--corner`` left in
one corner as the config writes it; its gates drawn as the config draws them, uniform 0.5-2.0 V). For each size
and setting:

  * cold: one solve of one data point (``--point``) from nothing (no warm start, no factorization to reuse; the
    per-circuit preparation, the same for every setting, is made before the clock starts);
  * warm: then ``--warm`` re-solves of that point, each after every gate moved by a learning-sized step
    (normal, ``--dgate`` V), as training on a large lattice does (``--warm 0``: none);
  * update: then ``--updates`` learning updates, cycling over the task's points, each one point's free and
    clamped solves with every gate moved by its contrast (nudge 0.5, rate 1 /V; the update of
    ``bench_solvers.py``), as training on a large lattice steps: the reuse across solves that matters most;
  * train: ``--steps`` Python training steps (full batch: the four XOR points free, the active ones clamped)
    after a first step that starts every point cold (not counted), up to ``--train-max``.

It prints SuperLU factorizations, Newton iterations, wall and CPU time (medians over the rounds), their ratios to
the reference, and the largest difference to the reference's answer of the same round (voltages in V; for
training, the gates after the steps in V). Sizes: 40x40 = 3,200 edges, 100x100 = 20,000, 200x200 = 80,000,
300x300 = 180,000 (``--big``, 10-20 s per cold solve on a shared 2-core machine).

    python scripts/bench_sparse.py [--sizes 40 100 200] [--big] [--settings 0.8:40:0.1 0.25:12:1] [--rounds 3]
                                   [--point 1] [--corner] [--warm 3] [--updates 10] [--steps 3]

How many factorizations a solve takes depends on the point and the placement (in a warm re-solve a few nodes with
almost no conductance take a full ``dv_max`` step and the whole lattice moves after them), so judge a setting
over several.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from metamaterial.configfile import load_config  # noqa: E402
from metamaterial.experiment import build, initial_controls, make_trainer  # noqa: E402
from metamaterial.learning.rules import CoupledLearning  # noqa: E402
from metamaterial.sim import native  # noqa: E402
from metamaterial.sim.native import NativeSolver  # noqa: E402


def xor_setup(n: int, scaled: bool = True):
    """configs/xor.yaml on an n x n torus, on the native backend, its 4x4 placement scaled to n x n (node (r, c) at
    (r n // 4, c n // 4)), or (``scaled=False``) kept where the config puts it, in one corner of the lattice."""
    def at(r4: int, c4: int) -> list[int]:
        return [r4 * n // 4, c4 * n // 4] if scaled else [r4, c4]

    sets = [f"network.rows={n}", f"network.cols={n}", "simulator.backend=native",
            f"roles.inputs=[{at(3, 3)}, {at(3, 1)}]", f"roles.rails[0].node={at(1, 1)}",
            f"roles.rails[1].node={at(1, 3)}", f"roles.outputs[0].pos={at(2, 2)}", f"roles.outputs[0].neg={at(0, 0)}"]
    return build(load_config(ROOT / "configs" / "xor.yaml", sets))


@contextmanager
def chord(setting: tuple[float, int, float]):
    """The native module's chord constants set to ``setting`` (contraction, max run, tolerance) for the block."""
    saved = native._CHORD_CONTRACTION, native._CHORD_MAX_RUN, native._CHORD_TOLERANCE
    native._CHORD_CONTRACTION, native._CHORD_MAX_RUN, native._CHORD_TOLERANCE = setting
    try:
        yield
    finally:
        native._CHORD_CONTRACTION, native._CHORD_MAX_RUN, native._CHORD_TOLERANCE = saved


def _measure(solver: NativeSolver, fn) -> dict:
    """Factorizations, wall and CPU seconds of ``fn()``, which returns (Newton iterations, the most of one solve,
    answer)."""
    f0, w0, c0 = solver.factorizations, time.perf_counter(), time.process_time()
    iters, most, answer = fn()
    return {"fact": solver.factorizations - f0, "iters": int(iters), "most": int(most),
            "wall": time.perf_counter() - w0, "cpu": time.process_time() - c0, "answer": answer}


def one_round(setup, setting: tuple[float, int, float], gates: np.ndarray, moves: np.ndarray, steps: int,
              point: int = 1, updates: int = 0) -> dict:
    """Cold, warm, (updates > 0) update and (steps > 0) training measurements of one setting on a fresh solver;
    cold and warm solve the task's data point ``point`` (XOR's 1: inputs (0, 0.45) V)."""
    c, x = setup.circuit, setup.task.inputs[point:point + 1]
    out = {}
    with chord(setting):
        solver = NativeSolver(options=setup.options)
        for clamped in (False, True):
            solver.prepared(c, clamped)  # the elimination order, the same for every setting: off the clock

        def solve(g):
            op = solver.solve(c, g, x)
            return int(op.iterations.sum()), int(op.iterations.max()), op.voltages[0]

        out["cold"] = _measure(solver, lambda: solve(gates))

        def warm():
            total, most, g = 0, 0, gates
            for dg in moves:
                g = g + dg
                it, m, v = solve(g)
                total, most = total + it, max(most, m)
            return total, most, v

        if len(moves):
            out["warm"] = _measure(solver, warm)
        if updates:
            rule, targets = CoupledLearning(nudge=0.5, rate=1.0), np.full((1, c.n_outputs), -0.05)

            def update(g, k):  # one point's free and clamped solves, every gate moved by its contrast
                # tagged by point, as the trainer does: each starts from its own last solution
                xk, tag = setup.task.inputs[k % setup.task.n_points][None, :], np.array([k % setup.task.n_points])
                free = solver.solve(c, g, xk, tags=tag).voltages
                clamped = solver.solve(c, g, xk, rule.clamp(c, free, targets), tags=tag).voltages
                return np.clip(g + rule.contrast(c, free, clamped)[0] + 1e-6, 0.4, 8.0)

            start = gates
            for k in range(setup.task.n_points):  # each point's first solves start cold: not counted
                start = update(start, k)

            def learn():
                g = start
                for k in range(updates):
                    g = update(g, k)
                return -1, -1, g

            out["update"] = _measure(solver, learn)
        if steps:
            tr = make_trainer(setup, solver=NativeSolver(options=setup.options))
            for clamped in (False, True):
                tr.solver.prepared(c, clamped)
            idx, rng = np.arange(setup.task.n_points), np.random.default_rng(0)
            g, _, _ = tr.step(gates, idx, rng)  # every point starts cold here: not counted

            def train():
                nonlocal g
                for _ in range(steps):
                    g, _, _ = tr.step(g, idx, rng)
                return -1, -1, g

            out["train"] = _measure(tr.solver, train)
    return out


def _draws(setup, warm: int, dgate: float) -> tuple[np.ndarray, np.ndarray]:
    """The config's initial gates [E] (V) and ``warm`` gate moves [warm, E] (V), from the config's seed."""
    rng = np.random.default_rng(setup.config.seed)
    gates = initial_controls(setup, rng)
    return gates, rng.normal(0.0, dgate, (warm, setup.circuit.n_edges))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[40, 100, 200], help="torus sizes n (n x n)")
    ap.add_argument("--big", action="store_true", help="add 300x300 (180,000 edges)")
    ap.add_argument("--settings", nargs="+", default=["0.8:40:0.1", "0.25:12:1", "0.8:40:1", "0.6:24:0.1"],
                    help="contraction:max_run[:tolerance] settings (tolerance: of a chord step's convergence, as a "
                         "fraction of the node tolerance; default 1), the first the reference")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per size")
    ap.add_argument("--warm", type=int, default=3, help="warm re-solves per round")
    ap.add_argument("--dgate", type=float, default=5e-3, help="spread (V) of each gate's move between re-solves")
    ap.add_argument("--updates", type=int, default=10, help="one-point learning updates per round (0: none)")
    ap.add_argument("--steps", type=int, default=3, help="training steps per round (0: none)")
    ap.add_argument("--train-max", type=int, default=100, help="largest size trained")
    ap.add_argument("--point", type=int, default=1, help="the XOR point (0-3) solved cold and warm")
    ap.add_argument("--corner", action="store_true", help="keep the config's placement (one corner), not scaled")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_sparse.json")
    args = ap.parse_args()
    settings = [(float(p[0]), int(p[1]), float(p[2]) if len(p) > 2 else 1.0) for p in
                (s.split(":") for s in args.settings)]
    names = [f"{a:g}:{b}:{t:g}" for a, b, t in settings]
    sizes = args.sizes + ([300] if args.big and 300 not in args.sizes else [])
    print(f"native sparse path, chord settings contraction:max_run, reference {names[0]}; medians of "
          f"{args.rounds} alternating rounds; warm = {args.warm} re-solves after gate moves of {args.dgate:g} V; "
          f"update = {args.updates} one-point updates; "
          f"train = {args.steps} steps; placement {'in a corner' if args.corner else 'scaled'}; point {args.point}",
          flush=True)
    print(f"{'size':>8} {'kind':>6} {'setting':>8} {'fact':>6} {'iters/max':>9} {'wall s':>8} {'cpu s':>8} "
          f"{'fact/ref':>8} {'wall/ref':>8} {'cpu/ref':>8} {'max|d| V':>9}")
    rows = []
    one_round(xor_setup(8), settings[0], *_draws(xor_setup(8), 1, args.dgate), 1)  # compiles the kernels, untimed
    for n in sizes:
        setup = xor_setup(n, scaled=not args.corner)
        gates, moves = _draws(setup, args.warm, args.dgate)
        steps = args.steps if n <= args.train_max else 0
        runs: dict[str, list[dict]] = {name: [] for name in names}
        for r in range(args.rounds):
            order = list(zip(names, settings))
            for name, setting in order if r % 2 == 0 else order[::-1]:
                runs[name].append(one_round(setup, setting, gates, moves, steps, args.point, args.updates))
        for kind in ("cold", "warm", "update", "train"):
            if kind not in runs[names[0]][0]:
                continue
            ref = runs[names[0]]
            for name in names:
                mine = [m[kind] for m in runs[name]]
                med = {k: float(np.median([m[k] for m in mine])) for k in ("fact", "iters", "wall", "cpu")}
                most = max(m["most"] for m in mine)
                ratio = {k: float(np.median([m[k] / max(q[kind][k], 1e-300) for m, q in zip(mine, ref)]))
                         for k in ("fact", "wall", "cpu")}
                diff = max(float(np.max(np.abs(m["answer"] - q[kind]["answer"]))) for m, q in zip(mine, ref))
                iters = "-" if kind in ("update", "train") else f"{med['iters']:.0f}/{most}"
                print(f"{n:>4}x{n:<3} {kind:>6} {name:>8} {med['fact']:>6.0f} {iters:>9} {med['wall']:>8.3f} "
                      f"{med['cpu']:>8.3f} {ratio['fact']:>8.2f} {ratio['wall']:>8.2f} {ratio['cpu']:>8.2f} "
                      f"{diff:>9.1e}", flush=True)
                rows.append({"size": n, "edges": int(setup.circuit.n_edges), "kind": kind, "setting": name,
                             **med, **{f"{k}_ratio": v for k, v in ratio.items()}, "max_diff": diff, "most": most,
                             "per_round": [{k: m[k] for k in ("fact", "iters", "most", "wall", "cpu")} for m in mine]})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"settings": names, "args": {k: str(v) for k, v in vars(args).items()},
                                    "rows": rows}, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
