"""Peak resident memory against network size, per backend: the figures behind ``sim.registry.MEMORY``, which
refuses a network that cannot fit in this machine's free memory before anything is solved.

Each size runs ``metamaterial netlist configs/xor.yaml --points 0`` on an n x n torus (2 n^2 edges) in a process
of its own, which builds the network, solves its free state for one training point on the backend and writes
two netlists; the peak resident memory is that process's (``os.wait4``). A line through the points gives the
fixed part and the part per edge, printed beside the registry's.

    python scripts/bench_memory.py [--ngspice 100 141 200] [--native 200 300 400 566]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from child_usage import peak_and_wall  # noqa: E402


def peak_rss(backend: str, n: int) -> tuple[float, float]:
    """(peak resident bytes, wall s) of one ``netlist --points 0`` on the n x n torus."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "metamaterial", "netlist", str(ROOT / "configs" / "xor.yaml"), "--backend",
               backend, "--points", "0", "--set", f"network.rows={n}", "--set", f"network.cols={n}", "--out",
               str(Path(tmp) / "out")]
        return peak_and_wall(cmd, ROOT)


def main() -> int:
    from metamaterial.sim.registry import MEMORY

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ngspice", type=int, nargs="*", default=[100, 141, 200], help="torus sides on ngspice")
    ap.add_argument("--native", type=int, nargs="*", default=[200, 300, 400, 566],
                    help="torus sides on native (default: the 80,000-640,712 edges the registry's line is drawn on)")
    args = ap.parse_args()
    print(f"{'backend':>8} {'size':>8} {'edges':>8} {'peak MB':>8} {'wall s':>7} {'registry MB':>11}")
    for backend, sides in (("ngspice", args.ngspice), ("native", args.native)):
        edges, peaks = [], []
        for n in sides:
            peak, wall = peak_rss(backend, n)
            fixed, per_edge = MEMORY[backend]
            edges.append(2 * n * n)
            peaks.append(peak)
            print(f"{backend:>8} {f'{n}x{n}':>8} {2 * n * n:>8,} {peak / 1e6:>8.0f} {wall:>7.1f} "
                  f"{(fixed + per_edge * 2 * n * n) / 1e6:>11.0f}", flush=True)
        if len(sides) >= 2:
            slope, intercept = np.polyfit(edges, peaks, 1)
            print(f"{backend}: fitted {intercept / 1e6:.0f} MB + {slope / 1e3:.2f} kB per edge; registry "
                  f"{MEMORY[backend][0] / 1e6:.0f} MB + {MEMORY[backend][1] / 1e3:.2f} kB per edge")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
