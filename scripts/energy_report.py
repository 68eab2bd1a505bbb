"""Power, latency and energy of trained XOR and regression networks, beside the paper's orders of magnitude.

Trains the shipped configs (configs/xor.yaml, configs/regression.yaml) on the native backend, or loads run
directories given with --xor-run / --regression-run (their checkpoint.npz and config.yaml), then reports:

* operating-point power per transistor (median, max over every edge and data point) of the free and clamped
  twins, and the network total (metamaterial.energy, docs/physics.md section 8.1);
* for every step from one data point to the next, an ngspice transient of the free network with the default
  capacitances and periphery: settling time and energy per inference per transistor (metamaterial.transient,
  section 8.2), and which capacitance term dominates (the same steps with each term alone doubled);
* learning time and charging energy over the band of gate capacitors and multiplier gains (section 8.3).

The paper (Dillavou et al., PNAS 2024) claims learned tasks performed "in microseconds" while dissipating
"picojoules of energy across each transistor". Usage:

    python scripts/energy_report.py [--xor-run DIR] [--regression-run DIR] [--epochs N]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from metamaterial.config import load_config
from metamaterial.energy import learning_band, learning_clock, power_report
from metamaterial.experiment import build
from metamaterial.runs import load_checkpoint, train_replicas
from metamaterial.sim.native import NativeSolver
from metamaterial.transient import CAPACITANCES, PeripheryParams, step_response

ROOT = Path(__file__).resolve().parents[1]
PAPER = "paper: microseconds per inference, picojoules per transistor"


def trained(config: Path, run_dir: Path | None, epochs: int | None):
    """(setup, controls [E], state) of a trained run: loaded from ``run_dir`` or trained now on native."""
    if run_dir is not None:
        cfg = load_config(run_dir / "config.yaml")
        state, _, _ = load_checkpoint(run_dir)
        return build(cfg), state.controls[0], state
    overrides = ["simulator.backend=native"] + ([f"learning.epochs={epochs}"] if epochs else [])
    cfg = load_config(config, overrides)
    done = train_replicas(cfg, [cfg.seed], backend="native")
    done.trainer.solver.close()
    return done.setup, done.state.controls[0], done.state


def report(name: str, setup, controls: np.ndarray, state) -> None:
    c, task, rule = setup.circuit, setup.task, setup.rule
    x = task.inputs
    solver = NativeSolver()
    free = solver.solve(c, controls, x).voltages
    out = c.output_values(free)
    clamps = rule.clamp(c, free, task.targets, task.classes)
    clamped = solver.solve(c, controls, x, clamps).voltages
    power = power_report(c, controls, free, clamped)
    s = power.summary()
    loss = float(np.mean((out - task.targets) ** 2))
    print(f"\n== {name}: {c.n_edges} edges, {task.n_points} points, epoch {state.epoch}, training MSE {loss:.3g} V^2")
    print(f"power per transistor, free twin:    median {s['free_median_w'] * 1e6:8.2f} uW   max "
          f"{s['free_max_w'] * 1e6:8.2f} uW   (network {s['free_total_median_w'] * 1e3:.3f} mW, median over points)")
    print(f"power per transistor, clamped twin: median {s['clamped_median_w'] * 1e6:8.2f} uW   max "
          f"{s['clamped_max_w'] * 1e6:8.2f} uW")

    steps = [(d, (d + 1) % task.n_points) for d in range(task.n_points)]
    base = PeripheryParams()
    runs = [step_response(c, controls, x[a], x[b], periphery=base) for a, b in steps]
    t_s = np.array([r.settling_time for r in runs])
    e_t = np.array([r.energy_per_transistor for r in runs])
    print(f"settling time (1% of the step, 0.1 mV floor): median {np.nanmedian(t_s) * 1e9:7.1f} ns   max "
          f"{np.nanmax(t_s) * 1e9:7.1f} ns   ({int(np.isnan(t_s).sum())} of {len(t_s)} steps not settled)")
    static = np.nanmedian([r.static_energy / r.energy for r in runs if r.energy > 0])
    print(f"energy per inference per transistor:          median {np.nanmedian(e_t) * 1e12:7.3f} pJ   max "
          f"{np.nanmax(e_t) * 1e12:7.3f} pJ   (DC power x settling time: {static:.0%} of it)")
    print(f"  per step (ns): {' '.join(f'{t * 1e9:.0f}' for t in t_s)}; a step whose outputs stay inside the band "
          "settles in 0 s and costs 0 J")
    print(f"  assumptions: device capacitances {CAPACITANCES['ald1106']}, {base}")
    variants = {
        "device capacitances x2": dict(capacitances=replace(CAPACITANCES["ald1106"], **{
            k: 2 * getattr(CAPACITANCES["ald1106"], k) for k in ("cgs", "cgd", "cbd", "cbs")})),
        "wiring capacitance x2": dict(periphery=replace(base, wiring_capacitance=2 * base.wiring_capacitance)),
        "amplifier capacitance x2": dict(periphery=replace(base, amplifier_capacitance=2 * base.amplifier_capacitance)),
        "input rise x2": dict(periphery=replace(base, input_rise=2 * base.input_rise)),
    }
    for label, kwargs in variants.items():
        t2 = np.array([step_response(c, controls, x[a], x[b], **kwargs).settling_time for a, b in steps])
        moved = t_s > 0
        change = np.nanmedian(t2[moved] / t_s[moved]) - 1
        print(f"  {label:26s} median settling {np.nanmedian(t2) * 1e9:7.1f} ns ({change:+.0%} per step, median)")

    hw = setup.hardware
    per_step = task.n_points if setup.params.schedule.kind == "full_batch" else setup.params.schedule.batch_size
    updates = int(state.n_updates[0])
    windows = updates * per_step  # an upper bound under a hinge: points already past the margin close no window
    clock = learning_clock(windows, state.n_steps * per_step, hw)
    traj = np.array(state.trajectory)[:, 0] if state.trajectory else np.stack([controls, controls])
    gate_steps = np.diff(traj, axis=0) / max(windows / max(len(traj) - 1, 1), 1)
    band = learning_band(rule.rate, windows, gate_steps, traj[:-1], hw)
    lo, hi = band.range("learning_time")
    print(f"learning: {updates} updates, <= {windows} learning windows of {hw.t_learn * 1e3:.3g} ms "
          f"(alpha/eta = {rule.rate:g} /V): learning time {clock.learning_time:.3g} s, with settles "
          f"{clock.hardware_time:.3g} s")
    print(f"  band over C 0.47-2.2 uF and gain 0.05-0.2 /V: learning time {lo:.3g} .. {hi:.3g} s; dominant constant: "
          f"{band.dominant} (span x{band.spans[band.dominant]:.2f})")
    d_lo, d_hi = band.range("dissipated")
    print(f"  heat in the charging resistors over the run: {d_lo:.3g} .. {d_hi:.3g} J (from the recorded "
          "gate trajectory, one mean step per window)")
    print(f"  {PAPER}; 'retrainable in seconds'")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--xor-run", type=Path, help="run directory of a trained XOR run (else train now)")
    parser.add_argument("--regression-run", type=Path, help="run directory of a trained regression run")
    parser.add_argument("--epochs", type=int, help="train for this many epochs instead of the config's")
    args = parser.parse_args()
    for name, cfg, run in (("XOR", ROOT / "configs/xor.yaml", args.xor_run),
                           ("regression", ROOT / "configs/regression.yaml", args.regression_run)):
        setup, controls, state = trained(cfg, run, args.epochs)
        report(name, setup, controls, state)


if __name__ == "__main__":
    main()
