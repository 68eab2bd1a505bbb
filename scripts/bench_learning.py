"""Wall time and peak memory of the learning transient against its number of presented points (slots): the
figures behind ``learning_hardware.MAX_SLOTS``, which refuses a longer ``transient --learning`` before it runs.

Each run is ``metamaterial transient CONFIG --learning --steps N --no-plots`` in a process of its own (the
transient, then the quasi-static loop on the native backend); its peak resident memory is the largest of that
process and the ngspice it ran (``os.wait4``). A line through the points gives the fixed part and the part per slot.

    python scripts/bench_learning.py [--config configs/regression.yaml] [--steps 250 500 1000 2000] [--set K=V ...]

The defaults run the regression ramp (one slot per step, 32 edges) at the authors' switch time (t_learn 100 us, so
the simulated time stays far from ``MAX_TIME_OVER_RISE``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from child_usage import peak_and_wall  # noqa: E402


def run(config: str, steps: int, overrides: list[str]) -> tuple[int, float, float]:
    """(slots, peak resident bytes, wall s) of one learning transient of ``steps`` training steps."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        cmd = [sys.executable, "-m", "metamaterial", "transient", config, "--learning", "--steps", str(steps),
               "--no-plots", "--no-progress", "--out", str(out), "--set", "simulator.backend=native",
               *(a for o in overrides for a in ("--set", o))]
        peak, wall = peak_and_wall(cmd, ROOT)
        slots = json.loads((out / "learning.json").read_text())["slots"]
    return slots, peak, wall


def main() -> int:
    from metamaterial.learning_hardware import MAX_SLOTS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "regression.yaml"))
    ap.add_argument("--steps", type=int, nargs="*", default=[250, 500, 1000, 2000])
    ap.add_argument("--set", dest="overrides", action="append",
                    default=None, help="config override (default: learning.rate=null, hardware.t_learn=1e-4)")
    args = ap.parse_args()
    overrides = ["learning.rate=null", "hardware.t_learn=1e-4"] if args.overrides is None else args.overrides
    print(f"{'steps':>7} {'slots':>7} {'peak MB':>8} {'wall s':>7}  ({Path(args.config).name}, {overrides}; load "
          f"{os.getloadavg()[0]:.1f})")
    slots, peaks, walls = [], [], []
    for steps in args.steps:
        n, peak, wall = run(args.config, steps, overrides)
        slots.append(n)
        peaks.append(peak)
        walls.append(wall)
        print(f"{steps:>7} {n:>7} {peak / 1e6:>8.0f} {wall:>7.1f}", flush=True)
    if len(slots) >= 2:
        (m_slope, m0), (t_slope, t0) = np.polyfit(slots, peaks, 1), np.polyfit(slots, walls, 1)
        print(f"fitted: {m0 / 1e6:.0f} MB + {m_slope / 1e3:.0f} kB per slot, {t0:.1f} s + {t_slope * 1e3:.0f} ms per "
              f"slot; at MAX_SLOTS = {MAX_SLOTS:,}: {(m0 + m_slope * MAX_SLOTS) / 1e9:.1f} GB, "
              f"{(t0 + t_slope * MAX_SLOTS) / 60:.0f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
