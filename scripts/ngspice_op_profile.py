"""Where the time of one training update goes on the ngspice backend, per torus size.

An update is what the trainer does: free solve, clamped solve (clamps from the free solution), every gate
written back (all change). For each size this runs a few updates through ``NgspiceSolver`` in this process and
splits each update's wall time into our parts (load, alter, op, vector reads, plot destroy: the solver's own
clocks) and, inside ``op``, ngspice's own statistics (``rusage all``: matrix load, reorder, factor, solve, the
rest of the analysis, Newton iterations per solve). The first solve of each twin loads its netlist; it is
reported apart ('first': the first update's wall time, loads and cold operating points included) and not counted
in the update. ``--modes savelist`` runs the sweep netlist as it was before 2026-12-02 (a ``.save`` of every
network node) beside today's, and prints the ratio of their first updates per size.

    python scripts/ngspice_op_profile.py [--sizes 3 10 20 50 100] [--updates 3] [--out runs/ngspice_op_profile.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

MATRIX = ("load_s", "reorder_s", "factor_s", "solve_s")


@contextlib.contextmanager
def save_list():
    """The sweep netlist as it was before 2026-12-02: gate nodes ``g{e}`` and a ``.save`` naming every network node,
    which ngspice matches against every node name in turn when a sweep starts (``netlist.to_spice_sweep``)."""
    from metamaterial.netlist import node_vector_names
    from metamaterial.sim import ngspice as ngspice_module

    form = ngspice_module.to_spice_sweep

    def listed(c, batch, *args, **kwargs):
        text = re.sub(r"\be(\d+)\.g\b", r"g\1", form(c, batch, *args, **kwargs))
        names = list(dict.fromkeys(name for row in node_vector_names(c, batch) for name in row))
        saves = "\n".join(".save " + " ".join(names[i:i + 100]) for i in range(0, len(names), 100))
        return text.replace("\n.save nosub\n", "\n" + saves + "\n")

    ngspice_module.to_spice_sweep = listed
    try:
        yield
    finally:
        ngspice_module.to_spice_sweep = form


def profile(n: int, updates: int, mode: str = "sweep") -> dict:
    with save_list() if mode == "savelist" else contextlib.nullcontext():
        return _profile(n, updates, sweep=mode != "op") | {"mode": mode}


def _profile(n: int, updates: int, sweep: bool) -> dict:
    from bench_solvers import torus_circuit

    from metamaterial.learning.rules import CoupledLearning
    from metamaterial.sim.ngspice import NgspiceSolver

    c = torus_circuit(n)
    rng = np.random.default_rng(0)
    gates = rng.uniform(1.0, 3.0, c.n_edges)
    xs = rng.uniform(0, 0.45, (updates + 1, c.n_inputs))
    rule = CoupledLearning(nudge=0.5, rate=1.0)
    targets = np.full((1, 1), -0.05)
    solver = NgspiceSolver(sweep=sweep)
    ngspice = dict.fromkeys((*MATRIX, "analysis_s", "iterations"), 0.0)
    last = {}

    def solve(phase: str, x, clamps=None):
        v = solver.solve(c, gates, x, clamps).voltages
        # ngspice's statistics are cumulative per loaded circuit: one per twin (op), or one for both (sweep)
        circuit_key = "both" if sweep else phase
        s = solver.statistics()
        if circuit_key in last:
            for k in ngspice:
                ngspice[k] += s[k] - last[circuit_key][k]
        last[circuit_key] = s
        return v, s

    t0 = time.perf_counter()
    free, s = solve("free", xs[:1])
    solve("clamped", xs[:1], rule.clamp(c, free, targets))
    first = {"wall_s": time.perf_counter() - t0, "load_s": solver.timings["load"], "equations": int(s["equations"]),
             "fill_in": int(s["fill_in"])}
    ngspice = dict.fromkeys(ngspice, 0.0)
    solver.timings = dict.fromkeys(solver.timings, 0.0)
    wall = 0.0
    for i in range(1, updates + 1):
        gates = np.clip(gates + rng.normal(0, 1e-3, c.n_edges) + 1e-6, 0.4, 8.0)
        t0 = time.perf_counter()
        free, _ = solve("free", xs[i:i + 1])
        solve("clamped", xs[i:i + 1], rule.clamp(c, free, targets))
        wall += time.perf_counter() - t0  # includes the statistics calls, which are also in the parts below
    per = {k: v / updates for k, v in solver.timings.items()}
    per.update({f"ngspice_{k}": v / updates for k, v in ngspice.items()})
    per["op_outside_matrix_s"] = per["op"] - sum(per[f"ngspice_{k}"] for k in MATRIX)
    per["iterations_per_solve"] = ngspice["iterations"] / (2 * updates)
    per["update_s"] = sum(solver.timings.values()) / updates
    per["wall_with_statistics_s"] = wall / updates
    return {"size": f"{n}x{n}", "edges": int(c.n_edges), "first": first, "per_update": per, "updates": updates,
            **solver.info()}


def _ms(seconds: float, width: int = 8) -> str:
    return f"{seconds * 1e3:.1f}ms".rjust(width)


def growth(rows: list[dict], part) -> float:
    """Exponent a of part ~ edges^a between the first and the last of ``rows`` (one mode, sizes ascending)."""
    lo, hi = rows[0], rows[-1]
    return float(np.log(part(hi) / part(lo)) / np.log(hi["edges"] / lo["edges"]))


def factorization_s(row: dict) -> float:
    """ngspice's sparse factorization time per update (reorder + factor, s) of one profile row."""
    return row["per_update"]["ngspice_reorder_s"] + row["per_update"]["ngspice_factor_s"]


def print_growth(rows: list[dict]) -> None:
    """Growth exponents per mode from the smallest size of 800 edges or more to the largest: the whole update,
    ngspice's sparse factorization (reorder + factor), and the update without it (what is on our side of the
    linear algebra: device loads, callbacks, reads, setup), plus the fill-in that drives the factorization."""
    for mode in dict.fromkeys(r["mode"] for r in rows):
        mine = [r for r in rows if r["mode"] == mode and r["edges"] >= 800]
        if len(mine) < 2:
            continue
        update = growth(mine, lambda r: r["per_update"]["update_s"])
        fill = growth(mine, lambda r: r["first"]["fill_in"])
        rest = growth(mine, lambda r: r["per_update"]["update_s"] - factorization_s(r))
        print(f"growth ({mode}, {mine[0]['edges']:,} -> {mine[-1]['edges']:,} edges): update edges^{update:.2f}, "
              f"sparse factorization edges^{growth(mine, factorization_s):.2f} (fill-in edges^{fill:.2f}), "
              f"the rest of the update edges^{rest:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[3, 10, 20, 50, 100])
    ap.add_argument("--updates", type=int, default=3, help="updates measured per size (after the loading solves)")
    ap.add_argument("--modes", nargs="+", choices=("sweep", "op", "savelist"), default=["sweep", "op"],
                    help="sweep: the backend's paused dc sweep; op: one op per solve; savelist: the sweep with the "
                         "old .save list of every node (side by side, same process)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "ngspice_op_profile.json")
    args = ap.parse_args()
    head = ["update", "alter", "op", "reorder", "factor", "mat.load", "mat.solve", "op other", "read", "destroy"]
    print(f"{'size':>8} {'edges':>6} {'mode':>8} {'eqs':>6} {'load':>8} {'first':>8} | per update: "
          + " ".join(f"{h:>8}" for h in head) + f" {'iters/solve':>11}")
    rows = []
    profile(3, 1, args.modes[0])  # the process's one-time costs (ngspice's start, the callback's compiled code) apart
    for n in args.sizes:
        for mode in args.modes:
            r = profile(n, args.updates, mode)
            rows.append(r)
            p = r["per_update"]
            parts = [p["update_s"], p["alter"], p["op"], p["ngspice_reorder_s"], p["ngspice_factor_s"],
                     p["ngspice_load_s"], p["ngspice_solve_s"], p["op_outside_matrix_s"], p["read"], p["destroy"]]
            print(f"{r['size']:>8} {r['edges']:>6} {mode:>8} {r['first']['equations']:>6} "
                  f"{_ms(r['first']['load_s'])} {_ms(r['first']['wall_s'])} | {'':>11} "
                  + " ".join(_ms(v) for v in parts) + f" {p['iterations_per_solve']:>11.1f}", flush=True)
    print(f"\nngspice {rows[0]['ngspice_version']}, linear solver {rows[0]['linear_solver']}. 'op other' is the op's "
          "wall time outside ngspice's matrix routines: circuit setup and teardown (every op; once per sweep), device\n"
          "evaluation (with the sweep: our callbacks for the external sources), output. 'alter' is the clamp switch "
          "(sweep) or every changed source (op); 'destroy' ending a sweep (sweep) or the op's plot (op)")
    print_growth(rows)
    for n in args.sizes:
        mine = {r["mode"]: r for r in rows if r["size"] == f"{n}x{n}"}
        if {"sweep", "savelist"} <= mine.keys():
            old, new = mine["savelist"]["first"]["wall_s"], mine["sweep"]["first"]["wall_s"]
            print(f"first update, {n}x{n} ({mine['sweep']['edges']:,} edges): .save list {old:.2f} s, .save nosub "
                  f"{new:.2f} s, {old / new:.1f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
