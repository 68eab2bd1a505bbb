"""How much of the learning transient's difference from the quasi-static loop the hinge's live comparator makes:
the figures of docs/physics.md 8.5.

The same learning transient (``learning_hardware.run_learning``) is run twice: as built, the comparator gating
the charging current live, and with the comparator sampled once before each window by a track-and-hold (a
capacitor that follows the comparator through a short pulse 20 to 10 % of t_settle before the window opens and
holds it through the window), which decides each window as the loop does, from the gates before it. Both are
compared with the loop's gates after every step, relative to the loop's largest movement (``compare``).

    python scripts/learning_comparator.py RUN_DIR|CONFIG STEPS [KEY=VALUE ...]

e.g. ``runs/xor 2 simulator.temperature=100`` (XOR trained natively, run hot: its points sit just short of their
margin) and the same with ``learning.rate=3 hardware.t_learn=0.066`` (a run directory's config keeps both).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import metamaterial.learning_hardware as lh  # noqa: E402
from metamaterial.configfile import load_config  # noqa: E402
from metamaterial.costs import load_source, run_dir_config, timing_params  # noqa: E402

#: the hold capacitor (F) and the tracking transconductance (A/V): a 0.1 us time constant while tracking
HOLD_C, TRACK_G = 1e-9, 1e-2
#: the learning transient's own netlist builder
BUILT = lh.learning_netlist


def sampled_netlist(setup, controls, plan, capacitances, periphery, data_file="gates.txt") -> str:
    """``learning_netlist`` with the charging current gated by the comparator as sampled before each window."""
    text = BUILT(setup, controls, plan, capacitances, periphery, data_file)
    t, v = [0.0], [0.0]
    for k in range(len(plan.points)):
        s, e = plan.window_start(k), 0.01 * plan.t_settle
        t += [s - 0.2 * plan.t_settle, s - 0.2 * plan.t_settle + e, s - 0.1 * plan.t_settle,
              s - 0.1 * plan.t_settle + e]
        v += [0.0, 1.0, 1.0, 0.0]
    hold = [f"VSMP smp 0 {lh._pwl(t, v)}", f"CHOLD hold 0 {HOLD_C}", "RHOLD hold 0 1e12",
            f"BHOLD 0 hold I = V(smp) * {TRACK_G} * (V(act) - V(hold))", "BHA hact 0 V = V(hold) > 0.5 ? 1 : 0"]
    text = text.replace("V(lw) * V(act)", "V(lw) * V(hact)").replace("v(act)\n", "v(hact)\n")
    at = text.index(".ic ")
    return text[:at] + "\n".join(hold) + "\n" + text[at:]


def main(target: str, steps: int, overrides: list[str]) -> None:
    path = Path(target)
    cfg = run_dir_config(path, overrides) if path.is_dir() else load_config(path, overrides)
    src = load_source(cfg, path if path.is_dir() else None)
    setup = src.setup()
    caps, periphery, _ = timing_params(cfg)
    ref = lh.quasi_static(setup, src.controls, steps, seed=cfg.seed)
    plan = lh.plan_steps(setup, steps, caps, periphery)
    live = lh.run_learning(setup, src.controls, plan, caps, periphery)
    lh.learning_netlist = sampled_netlist  # run_learning builds its netlist through the module's name
    try:
        sampled = lh.run_learning(setup, src.controls, plan, caps, periphery)
    finally:
        lh.learning_netlist = BUILT
    moved = float(np.abs(ref - src.controls).max())
    print(f"{target} {' '.join(overrides)}: {steps} steps, the loop's gates moved up to {moved:.4g} V "
          f"({int(lh.loop_windows(setup, src.controls, ref).sum())} whole windows)")
    for name, tran in (("live comparator", live), ("sampled comparator", sampled)):
        print(f"  {name}: {tran.windows} windows closed, {tran.partial_windows} partly, switch closed "
              f"{tran.on_fraction.mean():.1%} of the windows' time; gates vs the loop "
              f"{np.abs(tran.gates_after - ref).max() / moved:.3g} of the movement")
    print(f"  live vs sampled: {np.abs(live.gates_after - sampled.gates_after).max() / moved:.3g} of the movement")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", metavar="RUN_DIR|CONFIG", help="a run directory written by train, or a YAML config")
    parser.add_argument("steps", type=int, metavar="STEPS", help="learning steps of the transient (whole number)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, as train's --set takes")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error(f"STEPS must be at least 1 (got {args.steps})")
    main(args.target, args.steps, args.overrides)
