"""XOR success rate over seeds: the transistor network (configs/xor.yaml) against the linear-resistor baseline
(configs/xor_linear.yaml), same rule and schedule. Success = all four cases on the right side of the threshold
by at least 10 mV. Prints a table and writes JSON.

    python scripts/xor_seeds.py [--seeds 10] [--backend ngspice] [--out runs/xor_seeds]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from metamaterial.configfile import load_config  # noqa: E402
from metamaterial.runs import train_run  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--backend", default="ngspice")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "xor_seeds")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report = {}
    for label, cfg_name in (("transistor", "xor.yaml"), ("linear", "xor_linear.yaml")):
        rows = []
        for seed in range(args.seeds):
            cfg = load_config(ROOT / "configs" / cfg_name, [f"seed={seed}", *args.overrides])
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                s = train_run(cfg, Path(tmp) / "run", backend=args.backend, progress=False, plots=False).summary
            rows.append({"seed": seed, "success": s["success"], "min_margin_v": s["min_margin_v"],
                         "accuracy": s["accuracy"], "final_loss": s["final_loss"], "wall_s": time.perf_counter() - t0})
            print(f"{label:10s} seed {seed:3d}: {'ok  ' if s['success'] else 'FAIL'} margin "
                  f"{1e3 * s['min_margin_v']:+7.1f} mV  accuracy {s['accuracy']:.2f}  ({rows[-1]['wall_s']:.1f} s)",
                  flush=True)
        report[label] = {"config": f"configs/{cfg_name}", "backend": args.backend, "seeds": args.seeds,
                         "successes": sum(r["success"] for r in rows), "runs": rows}
    print()
    for label, r in report.items():
        print(f"{label:10s}: {r['successes']}/{r['seeds']} seeds solve XOR (all cases correct by >= 10 mV)")
    (args.out / "xor_seeds.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out / 'xor_seeds.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
