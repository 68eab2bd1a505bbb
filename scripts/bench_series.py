"""What level-1 series resistances cost the native solver: the same solves with and without them, side by side.

For each torus size, the XOR roles scaled to the size, the ``ald1106-l1`` preset as shipped (drain 21.96 ohm,
source 73.21 ohm, each edge's current found by a local Newton solve) and the same preset with rd = rs = 0 (the
plain level-1 law, no local solve) solve the same batch of data points at the same gates, in alternating rounds:

  * cold: a fresh solver each time (Newton from the mean driven voltage);
  * warm: one solver, gates nudged by up to 1 mV between solves as training does (warm starts).

Prints the best (min over rounds) CPU time per solve of each (time.process_time: the machine is shared) and the
ratio with/without, and the Newton iterations of both (they differ only by where Newton's path goes).

    python scripts/bench_series.py [--sizes 4 10 20] [--rounds 7] [--batch 4]
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import numpy as np

from metamaterial.circuit import compile_graph
from metamaterial.devices import nmos_preset
from metamaterial.graph import Roles, assign_roles, lattice_network
from metamaterial.sim.native import NativeSolver

GATES = (0.5, 5.0)  # V
V_MAX = 0.45  # V
NUDGE = 1e-3  # V: the largest gate change between warm solves
MIN_CPU_S = 0.2  # each timing repeats its solve until this much CPU time is spent


def torus_circuit(n: int, device):
    """n x n torus with the 4x4 XOR placement scaled to n (as scripts/bench_solvers.py)."""
    def node(r4: int, c4: int) -> int:
        return (r4 * n // 4) * n + (c4 * n // 4)

    roles = Roles(inputs=(node(3, 3), node(3, 1)), rails=((node(1, 1), 0.11), (node(1, 3), 0.33)),
                  outputs=((node(2, 2), node(0, 0)),))
    return compile_graph(assign_roles(lattice_network(n, n), roles), device)


def cpu_per_solve(solve) -> tuple[float, int]:
    """CPU seconds per call of ``solve(i)``, repeated until ``MIN_CPU_S`` is spent; and the iterations of the last."""
    t0, reps, iters = time.process_time(), 0, 0
    while time.process_time() - t0 < MIN_CPU_S:
        iters = solve(reps)
        reps += 1
    return (time.process_time() - t0) / reps, iters


def measure(c, gates: np.ndarray, x: np.ndarray, rng: np.random.Generator) -> dict[str, tuple[float, int]]:
    def cold(_):
        return int(NativeSolver(warm_start=False).solve(c, gates, x).iterations.sum())

    solver = NativeSolver()
    solver.solve(c, gates, x)
    nudges = rng.uniform(-NUDGE, NUDGE, (64, len(gates)))

    def warm(i):
        return int(solver.solve(c, gates + nudges[i % len(nudges)], x).iterations.sum())

    return {"cold": cpu_per_solve(cold), "warm": cpu_per_solve(warm)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 10, 20])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with_r = nmos_preset("ald1106-l1")
    without = replace(with_r, rd=0.0, rs=0.0)
    print(f"ald1106-l1: rd = {with_r.rd:.4g} ohm, rs = {with_r.rs:.4g} ohm; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'torus':>7} {'edges':>6} {'mode':>5} {'no R (ms)':>10} {'with R (ms)':>12} {'ratio':>6} "
          f"{'iters no R':>11} {'iters R':>8}")
    for n in args.sizes:
        rng = np.random.default_rng([args.seed, n])
        circuits = {"no R": torus_circuit(n, without), "R": torus_circuit(n, with_r)}
        gates = rng.uniform(*GATES, circuits["R"].n_edges)
        x = rng.uniform(0, V_MAX, (args.batch, 2))
        best: dict[tuple[str, str], float] = {}
        iters: dict[tuple[str, str], int] = {}
        for _ in range(args.rounds):  # alternate, so both see the same machine load
            for name, c in circuits.items():
                for mode, (cpu, it) in measure(c, gates, x, np.random.default_rng(args.seed)).items():
                    best[name, mode] = min(best.get((name, mode), np.inf), cpu)
                    iters[name, mode] = it
        for mode in ("cold", "warm"):
            a, b = best["no R", mode], best["R", mode]
            size = f"{n}x{n}"
            print(f"{size:>7} {circuits['R'].n_edges:>6} {mode:>5} {a * 1e3:>10.3f} {b * 1e3:>12.3f} {b / a:>6.2f} "
                  f"{iters['no R', mode]:>11} {iters['R', mode]:>8}", flush=True)
    print(f"load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
