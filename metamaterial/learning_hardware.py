"""The learning hardware in one ngspice transient: twin networks, gate capacitors, and a charging current that
follows the local rule, for N training steps with the data sequenced by sources.

A simulation stage beside ``transient`` (learn, in the circuit itself): it writes its own netlist and runs
``ngspice -b`` through ``transient``'s runner. What the netlist holds (docs/physics.md, section 8.5):

* the free twin (nodes ``f{i}``) and the clamped twin (``c{i}``); the two transistors of edge e share the gate
  node ``g{e}``, which holds a gate capacitor C (``hardware.capacitance``) started at the initial gates (``.ic``);
* inputs and rails as sources on both twins; the inputs step through the presented data points (PWL), and the
  labels are PWL sources too;
* each clamped output held at the nudged value by a behavioural source, V(c_O) = V(f_O) + eta (L - V(f_O))
  (for a differential output, +/- eta/2 (L - O^F) on its two nodes), computed from the free twin live;
* per edge, the contrast U_e = (dV_e^F)^2 - (dV_e^C)^2 from the twins' node voltages (the squarer) and a charging
  current gain U_e / R into the gate capacitor (the multiplier's output through R), gated by the learning switch
  (a PWL signal from 0 to 1 for t_learn after t_settle of every step) and stopped at the gate bounds;
* the transistors' and the periphery's capacitances of the ``timing:`` section (ideal drivers).

One step: the inputs move to the next point, the twins settle for ``hardware.t_settle``, the switch closes for
``hardware.t_learn``. The quasi-static training loop takes the same step as: solve both twins, then
V_G += (alpha/eta) U. They agree while the gates move little within a window and the window starts after the
network has settled; they part when the window is shorter than the settling (``compare``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .devices import NmosParams
from .errors import SimulationError, ValidationError
from .experiment import Setup, make_trainer
from .netlist import num
from .timing import MosCapacitances, PeripheryParams
from .transient import ABSTOL_FLOOR, _mos_cards, _run

#: samples of the gate waveforms per step (ngspice's largest step is the step's period over this)
POINTS_PER_STEP = 40
#: the learning switch's edges, as a fraction of t_learn (the integral of the switch signal is t_learn)
SWITCH_EDGE = 0.01


@dataclass(frozen=True)
class StepPlan:
    """Timing of N training steps: step k presents ``points[k]`` from ``k * period``."""

    points: np.ndarray
    t_settle: float
    t_learn: float
    rise: float

    @property
    def period(self) -> float:
        return self.rise + self.t_settle + self.t_learn * (1 + SWITCH_EDGE)

    def window_start(self, k: int) -> float:
        return k * self.period + self.rise + self.t_settle

    def window_end(self, k: int) -> float:
        """When the switch of step k is fully open again."""
        return self.window_start(k) + self.t_learn * (1 + SWITCH_EDGE)


def _check(setup: Setup) -> None:
    c, rule = setup.circuit, setup.rule
    if not isinstance(c.device, NmosParams):
        raise ValidationError(f"learning_hardware: needs a transistor network (got device {c.device.name}); set "
                              "device.kind: nmos")
    if c.mismatch is not None:
        raise ValidationError("learning_hardware: twin mismatch is not modelled in the learning transient (got "
                              "device.mismatch); remove it")
    if setup.params.schedule.kind != "cycle" or rule.loss != "mse" or setup.params.update_probability != 1.0:
        raise ValidationError(f"learning_hardware: the learning transient presents points in order and applies "
                              f"every contrast (got learning.schedule={setup.params.schedule.kind}, "
                              f"loss={rule.loss}, update_probability={setup.params.update_probability}); use "
                              "schedule: cycle, loss: mse, update_probability: 1")
    if setup.dynamics.leak_tau is not None or setup.dynamics.bias is not None or setup.params.read_noise:
        raise ValidationError("learning_hardware: leak, learning bias and read noise are not modelled in the "
                              "learning transient; remove learning.leak, learning.bias/bias_sigma, learning.read_noise")


def _pwl(times: list[float], values: list[float]) -> str:
    return "pwl(" + " ".join(f"{num(t)} {num(v)}" for t, v in zip(times, values)) + ")"


def _stepped(plan: StepPlan, values: np.ndarray) -> str:
    """PWL that holds values[k] over step k, ramping over ``plan.rise`` at the start of each step."""
    t, v = [0.0], [float(values[0])]
    for k in range(1, len(values)):
        t0 = k * plan.period
        t += [t0, t0 + plan.rise]
        v += [float(values[k - 1]), float(values[k])]
    return _pwl(t, v)


def _switch(plan: StepPlan) -> str:
    """PWL of the learning switch: 0, ramping to 1 over SWITCH_EDGE t_learn, held, ramping back (area t_learn)."""
    e = SWITCH_EDGE * plan.t_learn
    t, v = [0.0], [0.0]
    for k in range(len(plan.points)):
        s = plan.window_start(k)
        t += [s, s + e, s + plan.t_learn, s + plan.t_learn + e]
        v += [0.0, 1.0, 1.0, 0.0]
    return _pwl(t, v)


def learning_netlist(setup: Setup, controls: np.ndarray, plan: StepPlan, capacitances: MosCapacitances,
                     periphery: PeripheryParams, data_file: str = "gates.txt") -> str:
    """ngspice text of the learning hardware for the steps of ``plan`` from gates ``controls`` [E] (V)."""
    _check(setup)
    c, task, rule, hw, dyn = setup.circuit, setup.task, setup.rule, setup.hardware, setup.dynamics
    controls = np.asarray(controls, float)
    if controls.shape != (c.n_edges,):
        raise ValidationError(f"learning_hardware: controls must have shape ({c.n_edges},) (got {controls.shape}); "
                              "pass one gate voltage per edge")
    opt = setup.options
    lines = [f"* metamaterial learning hardware: {len(plan.points)} steps, {c.n_edges} edges x 2 twins",
             f".options gmin={num(c.gmin)} reltol={num(opt.reltol)} abstol={num(max(opt.abstol, ABSTOL_FLOOR))} "
             f"vntol={num(opt.vntol)} itl1={int(opt.itl1)}"]
    lines += _mos_cards(c, capacitances)
    x, y = task.inputs[plan.points], task.targets[plan.points]
    for twin in ("f", "c"):
        for k, node in enumerate(c.inputs):
            lines.append(f"VI{k}{twin} {twin}{int(node)} 0 {_stepped(plan, x[:, k])}")
        for k, (node, volts) in enumerate(zip(c.rails, c.rail_voltages)):
            lines.append(f"VR{k}{twin} {twin}{int(node)} 0 dc {num(volts)}")
    for k in range(c.n_outputs):
        lines.append(f"VL{k} lab{k} 0 {_stepped(plan, y[:, k])}")
    lines.append(f"VLW lw 0 {_switch(plan)}")
    eta = rule.nudge
    for k, (p, n) in enumerate(zip(c.out_pos, c.out_neg)):
        if n < 0:
            lines.append(f"BCL{k} c{p} 0 V = V(f{p}) + {num(eta)} * (V(lab{k}) - V(f{p}))")
        else:
            push = f"{num(eta / 2)} * (V(lab{k}) - (V(f{p}) - V(f{n})))"
            lines.append(f"BCL{k} c{p} 0 V = V(f{p}) + {push}")
            lines.append(f"BCN{k} c{n} 0 V = V(f{n}) - {push}")
    dev = c.device
    k_q = hw.gain / hw.resistance  # A per V^2: the multiplier's gain U into R
    for e, (a, b) in enumerate(c.edges):
        for twin in ("f", "c"):
            lines.append(f"M{twin}{e} {twin}{a} g{e} {twin}{b} 0 {dev.model_name} w={num(dev.w)} l={num(dev.l)}")
        lines.append(f"CG{e} g{e} 0 {num(hw.capacitance)}")
        lines.append(f"BU{e} u{e} 0 V = (V(f{a}) - V(f{b}))^2 - (V(c{a}) - V(c{b}))^2")
        stop = (f"(V(g{e}) >= {num(dyn.high)} && V(u{e}) > 0) || (V(g{e}) <= {num(dyn.low)} && V(u{e}) < 0)")
        lines.append(f"BQ{e} 0 g{e} I = V(lw) * {num(k_q)} * ({stop} ? 0 : V(u{e}))")
    if periphery.wiring_capacitance > 0:
        lines += [f"CW{t}{i} {t}{i} 0 {num(periphery.wiring_capacitance)}" for t in "fc" for i in range(c.n_nodes)]
    if periphery.amplifier_capacitance > 0:
        lines += [f"CA{k} f{int(n)} 0 {num(periphery.amplifier_capacitance)}" for k, n in enumerate(c.clamp_nodes)]
    lines.append(".ic " + " ".join(f"v(g{e})={num(v)}" for e, v in enumerate(controls)))
    t_stop = len(plan.points) * plan.period
    t_max = plan.period / POINTS_PER_STEP
    vectors = [f"v(g{e})" for e in range(c.n_edges)] + [f"v(f{i})" for i in range(c.n_nodes)]
    lines += [".control", "set numdgt=15", f"tran {num(t_max)} {num(t_stop)} 0 {num(t_max)}", "set wr_singlescale",
              "set wr_vecnames", "option numdgt=15", f"wrdata {data_file} " + " ".join(vectors), "quit 0", ".endc",
              ".end"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class LearningTransient:
    """N training steps as ngspice integrates them.

    Attributes:
        time: [T] s. gates: [T, E] gate voltages (V). free: [T, N] free-twin node voltages (V).
        gates_after: [S, E] gates at the end of each step's learning window (V).
        plan: the steps' timing. netlist: the text ngspice ran.
    """

    time: np.ndarray
    gates: np.ndarray
    free: np.ndarray
    gates_after: np.ndarray
    plan: StepPlan
    netlist: str


def run_learning(setup: Setup, controls: np.ndarray, steps: int, capacitances: MosCapacitances,
                 periphery: PeripheryParams, t_settle: float | None = None) -> LearningTransient:
    """``steps`` training steps (points cycled in order) of the learning hardware from gates ``controls`` [E];
    ``t_settle`` (s) replaces ``hardware.t_settle``."""
    if steps < 1:
        raise ValidationError(f"learning_hardware: steps must be >= 1 (got {steps}); give a number of steps")
    hw = setup.hardware
    plan = StepPlan(np.arange(steps) % setup.task.n_points, hw.t_settle if t_settle is None else t_settle,
                    hw.t_learn, periphery.input_rise)
    text = learning_netlist(setup, controls, plan, capacitances, periphery)
    log, data = _run(text, "gates.txt")
    rows = data.strip().splitlines()
    c = setup.circuit
    table = np.array([[float(v) for v in r.split()] for r in rows[1:]])
    if table.ndim != 2 or table.shape[1] != 1 + c.n_edges + c.n_nodes:
        raise SimulationError(f"learning_hardware: the waveform table has the wrong shape (got {table.shape}); the "
                              "netlist and the reader disagree", netlist=text)
    time = table[:, 0]
    t_stop = steps * plan.period
    if time[-1] < t_stop * (1 - 1e-9):
        raise SimulationError(f"learning_hardware: ngspice stopped at t = {time[-1]:.4g} s of {t_stop:.4g} s (got an "
                              "aborted transient); read the simulator log below", netlist=text,
                              log="\n".join(log.splitlines()[-20:]))
    gates, free = table[:, 1:1 + c.n_edges], table[:, 1 + c.n_edges:]
    ends = np.array([min(plan.window_end(k), time[-1]) for k in range(steps)])
    after = np.stack([np.interp(ends, time, gates[:, e]) for e in range(c.n_edges)], axis=1)
    return LearningTransient(time, gates, free, after, plan, text)


def quasi_static(setup: Setup, controls: np.ndarray, steps: int, seed: int = 0) -> np.ndarray:
    """[S, E] gates after each of ``steps`` steps of the training loop (points cycled in order) from ``controls``."""
    per_epoch = setup.params.schedule.steps_per_epoch(setup.task.n_points)
    trainer = make_trainer(setup, epochs=math.ceil(steps / per_epoch), eval_every=10**9, record_every=10**9)
    out: list[np.ndarray] = []
    with trainer.solver:
        state = trainer.init_state(np.asarray(controls, float)[None], np.random.default_rng(seed),
                                   keep_trajectory=False)
        trainer.run(state, on_step=lambda g: out.append(g[0].copy()))
    return np.array(out[:steps])


def compare(transient: LearningTransient, reference: np.ndarray, start: np.ndarray) -> dict[str, float]:
    """How far the transient's gates after each step are from the quasi-static loop's [S, E] (V), next to how far
    the gates moved from ``start`` [E]."""
    diff = np.abs(transient.gates_after - reference)
    moved = np.abs(reference - np.asarray(start)[None])
    return {"max_diff_v": float(diff.max()), "final_max_diff_v": float(diff[-1].max()),
            "max_moved_v": float(moved.max()), "relative": float(diff.max() / max(moved.max(), 1e-300))}


__all__ = ["StepPlan", "LearningTransient", "learning_netlist", "run_learning", "quasi_static", "compare"]
