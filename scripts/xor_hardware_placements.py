"""Screen node placements for XOR under the hardware profile (configs/xor_hardware.yaml) on tuning seeds: random
placements of the two inputs, the V- and V+ rails (0.11 and 0.33 V) and the differential output's two nodes on
the 4x4 torus, each distinct under the torus's translations, rotations and reflections (inputs unordered), the
first row always the placement of configs/xor.yaml. Success = all four cases right by >= 10 mV. Prints one JSON
line per placement (docs/hardware.md section 6.7 was made with ``--rng 12345 --margin 0.01`` for 40 rows and
``--rng 777 --margin 0.0108764`` for 80). Native backend.

    python scripts/xor_hardware_placements.py [--placements 40] [--seeds 20] [--epochs 6000] [--margin 0.01]
        [--rng 12345]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from metamaterial.claims.base import claim_config  # noqa: E402
from metamaterial.learning.trainer import SUCCESS_MARGIN_V  # noqa: E402
from metamaterial.runs import train_replicas  # noqa: E402

SIZE = 4
#: inputs V1, V2; rails V-, V+; output pos, neg: the placement of configs/xor.yaml
FIRST = ((3, 3), (3, 1), (1, 1), (1, 3), (2, 2), (0, 0))
RAILS_V = (0.11, 0.33)


def _symmetry(p: tuple[int, int], turns: int, mirror: bool, dr: int, dc: int) -> tuple[int, int]:
    r, c = p
    if mirror:
        c = -c
    for _ in range(turns):
        r, c = c, -r
    return (r + dr) % SIZE, (c + dc) % SIZE


def canonical(placement: tuple) -> tuple:
    """The smallest image of a placement under the torus's 128 symmetries (the two inputs sorted)."""
    best = None
    for turns in range(4):
        for mirror in (False, True):
            for dr in range(SIZE):
                for dc in range(SIZE):
                    moved = [_symmetry(p, turns, mirror, dr, dc) for p in placement]
                    key = (*sorted(moved[:2]), *moved[2:])
                    best = key if best is None or key < best else best
    return best


def placements(n: int, rng: np.random.Generator) -> list[tuple]:
    """FIRST, then n - 1 random placements, no two related by a symmetry."""
    seen, out = {canonical(FIRST)}, [FIRST]
    while len(out) < n:
        nodes = rng.choice(SIZE * SIZE, 6, replace=False)
        placement = tuple((int(k) // SIZE, int(k) % SIZE) for k in nodes)
        key = canonical(placement)
        if key not in seen:
            seen.add(key)
            out.append(placement)
    return out


def overrides(placement: tuple) -> list[str]:
    i1, i2, lo, hi, pos, neg = (list(p) for p in placement)
    return [f"roles.inputs=[{i1},{i2}]",
            f"roles.rails=[{{node: {lo}, volts: {RAILS_V[0]}}}, {{node: {hi}, volts: {RAILS_V[1]}}}]",
            f"roles.outputs=[{{pos: {pos}, neg: {neg}}}]"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--placements", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=6000)
    ap.add_argument("--margin", type=float, default=0.01)
    ap.add_argument("--rng", type=int, default=12345)
    args = ap.parse_args()
    for placement in placements(args.placements, np.random.default_rng(args.rng)):
        cfg = claim_config("xor_hardware", [*overrides(placement), f"learning.margin={args.margin}",
                                            f"learning.epochs={args.epochs}"])
        t0 = time.process_time()
        done = train_replicas(cfg, list(range(args.seeds)), backend="native")
        done.trainer.solver.close()
        m = np.asarray(done.state.history[-1]["min_margin"], float)
        print(json.dumps({"placement": placement, "solved": int((m >= SUCCESS_MARGIN_V).sum()),
                          "all_right": int((m > 0).sum()), "seeds": args.seeds,
                          "median_margin_mv": round(float(1e3 * np.median(m)), 2),
                          "cpu_s": round(time.process_time() - t0, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
