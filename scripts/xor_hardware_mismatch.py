"""XOR under the hardware profile (configs/xor_hardware.yaml) on the held-out seeds 100-199, and its tolerance
curve: success against twin V_T mismatch (K matched) and against K mismatch (V_T matched), each seed its own chip.
Success = all four cases on the right side of the threshold by at least 10 mV. Prints a table, writes
xor_hardware_mismatch.json and xor_hardware_mismatch.png (default: docs/figures/). Native backend; one process.
The mismatch points train one chip per seed (no batching over replicas), so they use the first --curve-seeds.

    python scripts/xor_hardware_mismatch.py [--seeds 100] [--curve-seeds 20] [--out docs/figures]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from metamaterial.claims.base import Context  # noqa: E402
from metamaterial.claims.xor import (  # noqa: E402
    HW_CONFIG,
    HW_FIRST_SEED,
    HW_TUNING_SEEDS,
    SUCCESS_V,
    curve_figure,
    hardware_margins,
    tolerance_curve,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--curve-seeds", type=int, default=20)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "figures")
    args = ap.parse_args()
    seeds = [HW_FIRST_SEED + i for i in range(args.seeds)]
    t0, c0 = time.perf_counter(), time.process_time()
    clean = hardware_margins(seeds, "native", [])
    print(f"held-out seeds {seeds[0]}-{seeds[-1]}: {int((clean >= SUCCESS_V).sum())}/{len(seeds)} solved "
          f"({time.process_time() - c0:.0f} s CPU)", flush=True)
    n_curve = min(args.curve_seeds, len(seeds))
    curve = tolerance_curve(seeds[:n_curve], "native", [], clean[:n_curve])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    ctx = Context(out=args.out, progress=False)
    figure = curve_figure(ctx, curve, n_curve)
    print(f"configs/{HW_CONFIG}.yaml, held-out seeds {seeds[0]}-{seeds[-1]} (free values chosen on seeds "
          f"{HW_TUNING_SEEDS[0]}-{HW_TUNING_SEEDS[1]}): {int((clean >= SUCCESS_V).sum())}/{len(seeds)} solved")
    for row in curve:
        print(f"  {row['label']:<24}: {row['successes']:3d}/{n_curve}  median smallest margin "
              f"{1e3 * row['median_margin_v']:+6.1f} mV")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"wall {wall:.0f} s, CPU {cpu:.0f} s, load average {load:.1f}; figure {figure}")
    payload = {"config": f"configs/{HW_CONFIG}.yaml", "tuning_seeds": list(HW_TUNING_SEEDS), "seeds": seeds,
               "curve_seeds": seeds[:n_curve], "success_margin_v": SUCCESS_V, "margins_v": clean.tolist(),
               "tolerance": curve,
               "wall_s": wall, "cpu_s": cpu, "load_average": load}
    (args.out / "xor_hardware_mismatch.json").write_text(json.dumps(payload, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
