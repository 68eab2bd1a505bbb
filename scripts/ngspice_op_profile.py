"""Where ngspice's own time goes in one operating point of a large torus: ngspice's statistics, not ours.

For each size, the free netlist the backend loads (gates uniform in 1-3 V) runs in a standalone ``ngspice -b``
with a control block: ``op``; ``alter`` of every gate; ``op`` again (what one training solve costs); then a
``dc`` sweep of one input over a few points. After each analysis ``rusage all`` reports ngspice's cumulative
matrix reorder, factor, load and solve times and Newton iterations; the table shows the second ``op``'s share
of each, and the cost of one more ``dc`` point (same matrix, ordering kept) next to an ``op`` (ordering redone).

    python scripts/ngspice_op_profile.py [--sizes 30 50 100] [--points 5] [--out runs/ngspice_op_profile.json]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

STATS = {"iterations": "Total iterations", "reorder_s": "Matrix reorder time", "factor_s": "Matrix factor time",
         "load_s": "Matrix load time", "solve_s": "Matrix solve time", "analysis_s": "Total analysis time",
         "equations": "Circuit Equations", "fill_in": "Circuit fill-in non-zeroes"}


def profile(n: int, points: int) -> dict:
    from bench_solvers import torus_circuit
    from metamaterial.netlist import num, to_spice

    c = torus_circuit(n)
    rng = np.random.default_rng(0)
    gates, again = rng.uniform(1.0, 3.0, (2, c.n_edges))
    netlist = to_spice(c, gates, np.zeros((1, c.n_inputs)), control_block=False, title=f"profile {n}x{n}")
    alters = "\n".join(f"alter VG{e} dc = {num(v)}" for e, v in enumerate(again))
    control = (f".control\nop\nrusage all\ndestroy all\n{alters}\nop\nrusage all\ndestroy all\n"
               f"dc VI0 0 0.45 {0.45 / max(points - 1, 1)!r}\nrusage all\nquit 0\n.endc\n")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "profile.cir"
        path.write_text(netlist.replace("\n.end", "\n" + control + ".end"))
        t0 = time.perf_counter()
        proc = subprocess.run(["ngspice", "-b", str(path)], capture_output=True, text=True, timeout=3600)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"ngspice failed on {n}x{n}: {proc.stderr.strip().splitlines()[-3:]}")
    blocks = _rusage_blocks(proc.stdout + proc.stderr)
    if len(blocks) != 3:
        raise SystemExit(f"ngspice printed {len(blocks)} rusage blocks for {n}x{n}, expected 3")
    first, second, sweep = blocks
    op2 = {k: second[k] - first[k] for k in ("iterations", "reorder_s", "factor_s", "load_s", "solve_s", "analysis_s")}
    dc = {k: sweep[k] - second[k] for k in ("iterations", "reorder_s", "factor_s", "analysis_s")}
    return {"size": f"{n}x{n}", "edges": int(c.n_edges), "equations": int(second["equations"]),
            "fill_in": int(second["fill_in"]), "op": op2, "dc_points": points, "dc": dc, "wall_s": wall}


def _ms(seconds: float, width: int = 7) -> str:
    return f"{seconds * 1e3:.1f}ms".rjust(width)


def _rusage_blocks(text: str) -> list[dict]:
    """Cumulative statistics after each ``rusage all``, in order (ngspice prints 0 for what has not run)."""
    blocks, current = [], {}
    for line in text.splitlines():
        for key, label in STATS.items():
            m = re.match(rf"^{re.escape(label)}(?: \(seconds\))?\s*=\s*([-+0-9.eE]+)", line.strip())
            if m:
                current[key] = float(m.group(1))
        if line.strip().startswith("AC solve time") and current:
            blocks.append({k: current.get(k, 0.0) for k in STATS})
            current = {}
    return blocks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[30, 50, 100])
    ap.add_argument("--points", type=int, default=5, help="points of the dc sweep")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "ngspice_op_profile.json")
    args = ap.parse_args()
    print(f"{'size':>8} {'edges':>6} {'eqs':>6} {'fill-in':>8} | second op: {'total':>7} {'reorder':>8} {'factor':>7} "
          f"{'load+solve':>10} {'iters':>5} | dc sweep: per extra point {'time':>7} {'reorder':>8}")
    rows = []
    for n in args.sizes:
        r = profile(n, args.points)
        rows.append(r)
        op, dc = r["op"], r["dc"]
        extra = (dc["analysis_s"] - op["analysis_s"]) / max(args.points - 1, 1)
        r["dc_extra_point_s"] = extra
        print(f"{r['size']:>8} {r['edges']:>6} {r['equations']:>6} {r['fill_in']:>8} | {'':>10} {_ms(op['analysis_s'])} "
              f"{_ms(op['reorder_s'], 8)} {_ms(op['factor_s'])} {_ms(op['load_s'] + op['solve_s'], 10)} "
              f"{op['iterations']:>5.0f} | {'':>24} {_ms(extra)} {_ms(dc['reorder_s'], 8)}", flush=True)
    print("\nngspice reorders the matrix (Markowitz, Sparse 1.3) at every op and keeps the ordering across the points"
          " of a dc sweep; per op it reorders in 'reorder' and refactors in 'factor' (ngspice's own clock)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
