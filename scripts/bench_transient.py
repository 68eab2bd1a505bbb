"""What KLU buys the step transients: one input step of the XOR placement on n x n tori, as `metamaterial
transient` runs it (``transient.transient_netlist``, run by ``ngspice -b``), on KLU and on Sparse 1.3 side by side.

For each size the same deck is run with ``.options klu`` and with ``.options sparse`` in alternating rounds; prints
the wall time of each (the median over rounds: ngspice runs as a child process, whose CPU time is its own), their
ratio, and the largest difference between the two runs' waveforms (same time points). Needs an ngspice compiled with
KLU (ngspice >= 42).

    python scripts/bench_transient.py [--sizes 10 20 40] [--rounds 3] [--window 1.3e-5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from metamaterial.devices import nmos_preset
from metamaterial.sim.ngspice import program_linear_solver
from metamaterial.transient import transient_netlist

sys.path.insert(0, os.path.dirname(__file__))
from bench_series import torus_circuit  # noqa: E402 (the XOR placement scaled to n, as bench_solvers)

GATES = (0.5, 2.0)  # V, XOR's initial range
POINTS = 200  # samples of the window


def run(text: str, tmp: Path, name: str) -> tuple[float, np.ndarray]:
    """Wall seconds of ``ngspice -b`` on ``text`` and its waveforms [T, 1 + vectors]."""
    deck, waves = tmp / f"{name}.cir", tmp / f"{name}.txt"
    deck.write_text(text.replace("wrdata waves.txt ", f"wrdata {waves} "))
    t0 = time.perf_counter()
    proc = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"bench_transient: ngspice -b {deck} exited with code {proc.returncode}:\n{proc.stdout[-1500:]}")
    return wall, np.loadtxt(waves, skiprows=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 40])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--window", type=float, default=1.3e-5, help="transient window (s)")
    args = ap.parse_args()
    if program_linear_solver("klu") != "klu":
        sys.exit("bench_transient: this ngspice is not compiled with KLU (ngspice >= 42 is); nothing to compare")
    print(f"one input step (0 V -> 0.45 V), {POINTS} samples over {args.window:g} s, median wall time of "
          f"{args.rounds} rounds taking turns; 1-minute load average {os.getloadavg()[0]:.1f}")
    print(f"{'torus':>7} {'edges':>6} {'KLU s':>8} {'Sparse s':>9} {'Sparse/KLU':>11} {'max |dV| V':>11}")
    rng = np.random.default_rng(0)
    for n in args.sizes:
        c = torus_circuit(n, nmos_preset("ald1106-fit"))
        gates = rng.uniform(*GATES, c.n_edges)
        text = transient_netlist(c, gates, np.zeros(2), np.full(2, 0.45), t_stop=args.window, points=POINTS)
        if "\n.options klu\n" not in text:
            sys.exit("bench_transient: the transient deck does not ask for KLU")
        decks = {"klu": text, "sparse": text.replace("\n.options klu\n", "\n.options sparse\n")}
        walls: dict[str, list[float]] = {k: [] for k in decks}
        waves: dict[str, np.ndarray] = {}
        with tempfile.TemporaryDirectory(prefix="bench-transient-") as tmp:
            for _ in range(args.rounds):
                for name, deck in decks.items():
                    wall, waves[name] = run(deck, Path(tmp), name)
                    walls[name].append(wall)
        klu, sparse = (statistics.median(walls[k]) for k in ("klu", "sparse"))
        same = waves["klu"].shape == waves["sparse"].shape
        diff = np.abs(waves["klu"][:, 1:] - waves["sparse"][:, 1:]).max() if same else float("nan")
        print(f"{n:>3}x{n:<3} {c.n_edges:>6} {klu:>8.2f} {sparse:>9.2f} {sparse / klu:>10.2f}x {diff:>11.2g}"
              + ("" if same else "  (different time points)"))


if __name__ == "__main__":
    main()
