"""For every shipped config: `metamaterial solve` against standalone `ngspice -b` on the emitted netlists (every
node of every data point, both twins), and Kirchhoff's current law recomputed from the device law.

    python scripts/verify_solve.py [--backend ngspice|native]      # prints the worst case per config
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from metamaterial.circuit import kcl_residuals  # noqa: E402
from metamaterial.configfile import load_config  # noqa: E402
from metamaterial.experiment import build  # noqa: E402
from metamaterial.netlist import parse_print_all  # noqa: E402
from metamaterial.points import solve_points, write_netlists  # noqa: E402
from metamaterial.sim.ngspice import run_batch_file  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="ngspice")
    args = ap.parse_args()
    worst_all, kcl_all = 0.0, 0.0
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        cfg = load_config(path)
        result = solve_points(cfg, backend=args.backend)
        c = build(cfg).circuit
        controls = np.array(result["controls"])
        worst, worst_kcl = 0.0, 0.0
        with tempfile.TemporaryDirectory() as tmp:
            write_netlists(cfg, Path(tmp), backend=args.backend)  # the clamps of the solve compared
            for k, point in enumerate(result["points"]):
                for phase in ("free", "clamped"):
                    ref = parse_print_all(run_batch_file(str(Path(tmp) / f"{phase}_{k}.cir")))
                    got = point[phase]
                    worst = max(worst, max(abs(ref[n] - got[n]) for n in result["nodes"]))
                    v = np.array([[got[n] for n in result["nodes"]]])
                    res = kcl_residuals(c, controls, v, fixed=c.clamp_nodes if phase == "clamped" else None)
                    held = np.isnan(res)  # fixed nodes; a clamped twin whose every node is held has no KCL to check
                    if not held.all():
                        worst_kcl = max(worst_kcl, float(np.abs(res[~held]).max()))
        print(f"{path.name:24s} {len(result['points']):4d} points: max |solve - ngspice -b| = {worst:.2e} V, "
              f"max KCL residual = {worst_kcl:.2e} A", flush=True)
        worst_all, kcl_all = max(worst_all, worst), max(kcl_all, worst_kcl)
    ok = worst_all <= 1e-6 and kcl_all <= 1e-9
    print(f"worst over all configs: {worst_all:.2e} V, {kcl_all:.2e} A -> {'OK' if ok else 'FAIL'} "
          "(limits 1e-6 V, 1e-9 A)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
