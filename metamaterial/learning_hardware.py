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
  (a PWL signal from 0 to 1 for t_learn after t_settle of every presented point) and stopped at the gate bounds;
* under the hinge loss, a comparator on the free output (``act``: 1 while the presented point is less than the
  margin past its decision boundary, from its class's level and the nearest other level, both sources) that
  gates the charging current, so a point already past the margin closes no switch, and one that reaches it
  within its window opens the switch there;
* the transistors' and the periphery's capacitances of the ``timing:`` section (ideal drivers).

One presented point (a *slot*): the inputs move to it, the twins settle for ``hardware.t_settle``, the switch
closes for ``hardware.t_learn``. A training step is one slot under ``schedule: cycle`` and one slot per data
point under ``full_batch`` (the hardware opens one window per presented point: the summed update of the loop is
applied point by point). The quasi-static training loop takes the same step as: solve both twins (at every point
of the batch, with the gates before the step), then V_G += (alpha/eta) sum of U over the active points. They agree
while the gates move little within a step and each window starts after the network has settled; they part when
the window is shorter than the settling (``compare``). Within a full-batch step the transient's later points see
the gates the earlier windows moved: a difference second order in the rate. The hinge's comparator is read live:
a window whose point reaches the margin stops charging there, where the loop takes its whole Euler step, a
difference first order in the rate (``LearningTransient.on_fraction``: how much of each window the switch was
closed; docs/physics.md 8.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from . import step
from .cards import parse_model_card
from .devices import NmosParams
from .errors import SimulationError, ValidationError
from .experiment import Setup, make_solver, make_trainer
from .netlist import num
from .timing import MosCapacitances, PeripheryParams
from .transient import _mos_cards, _options, _run, _tran, control_block
from .units import si

#: samples of the gate waveforms per slot (ngspice's largest step is the slot's period over this)
POINTS_PER_STEP = 40
#: the learning switch's edges, as a fraction of t_learn (the integral of the switch signal is t_learn)
SWITCH_EDGE = 0.01
#: s of ngspice allowed per slot before a learning transient is taken for hung (plus a fixed 120 s): a guard
#: against a stuck simulator, generous for a loaded machine (100 full-batch XOR steps, 400 slots, ran in minutes)
SECONDS_PER_SLOT = 5.0
#: most presented points (slots) one learning transient takes: its memory and time grow with them (the PWL
#: sources, ngspice's vectors, the waveform table). Measured with scripts/bench_learning.py (2026-12-02, 2 cores at
#: load 2-3, t_learn 100 us): the regression ramp (32 edges, one slot per step) 99 MB + 461 kB and 30 ms per slot,
#: XOR (32 edges, hinge, 4 slots per step) 73 MB + 708 kB and 81 ms per slot: 2,000 slots take about 1.5 GB and 3
#: min. A network of more edges and nodes costs more per slot (a waveform column each).
MAX_SLOTS = 2000
#: bytes of memory a learning transient may take (as ``costs.TRANSIENT_MEMORY``): a larger network keeps more per
#: slot, so it takes fewer slots than ``MAX_SLOTS``
LEARNING_MEMORY = 2e9
#: bytes one slot keeps, per edge squared: ngspice's time points per slot and the columns of each (gates, nodes)
#: both grow with the network. Measured (scripts/bench_learning.py, XOR on periodic lattices at its shipped
#: rate, 2026-12-02, load ~2): 4x4 (32 edges) 44-75 kB per slot, 8x8 (128) 1.5 MB, 12x12 (288) 7.4-8.8 MB
#: (2.4 s per slot); 106 B x E^2 is the 12x12 figure, above the other two
SLOT_BYTES_PER_EDGE2 = 106.0
#: most input rises (timing.periphery.input_rise) of simulated time one learning transient runs. ngspice's time is
#: absolute: at t its steps cannot be finer than about 1e-16 t, while an input ramp needs steps down to ~1e-5 of
#: the rise. Measured (2026-12-02): XOR aborted ("timestep too small", at an input ramp) at 2.59e10, 2.63e10,
#: 2.64e10, 2.76e10 and 3.61e10 rises (t_learn 0.3 to 1 s, rise 1e-8 s: about the same time whatever the slot) and
#: at 4.19e10 (rise 1e-9 s), the regression ramp at 3.2e10 (rise 1e-9 s); the shipped 100 XOR steps end at 2.67e10
#: and ran through. A run just below the limit may still abort (an ngspice error, exit 1).
MAX_TIME_OVER_RISE = 2.7e10
#: largest slot period (``StepPlan.period``: rise + t_settle + t_learn + the switch's edges) over
#: ``timing.periphery.input_rise`` the transient accepts. ngspice's
#: smallest time step is 1e-11 of its largest (the period over POINTS_PER_STEP), and at each input ramp it needs
#: steps far below the rise: beyond some ratio it aborts there ("timestep too small"), or hangs. Measured (2026-12-02,
#: C scaled at the shipped rate): XOR (4x4 and 8x8 lattice, cycle and full batch, mse and hinge) aborts from
#: t_learn/rise = 3e8 (rise 1e-8 and 1e-9 s) and from 2e8 (rise 1e-7 s); regression, parabola and linear_regression
#: from 5e9; allostery, csv_example and iris ran to 1e9 and beyond (2 to 8 points each). 1e8 keeps XOR's shipped
#: 6.6e7 (0.66 s over 10 ns) and a factor 2 below its first failure; a long run is bounded by MAX_TIME_OVER_RISE
#: too (100 XOR steps at 1e8 aborted at 2.63e10 rises).
MAX_PERIOD_OVER_RISE = 1e8
#: least gate capacitor, in units of the gate capacitance the edge's two transistors put on the same node: the
#: learning current's charge divides between them, so an update falls short by about their ratio. Measured on the
#: regression ramp (8 steps at its shipped 5 /V, t_learn held at 0.11 s by R, 0.4 pF of transistor gate): the
#: transient parts from the loop by 2.11 % of the gate movement at C = 25,000 x, 2.16 % at 1,000 x, 2.31 % at 250 x,
#: 3.13 % at 100 x, 8.2 % at 25 x, 19 % at 10 x, 61 % at 2.5 x and 214 % at 1 fF. 100 x: the update within 1 %.
MIN_GATE_CAPACITOR_RATIO = 100.0
#: F/m: ngspice's oxide permittivity (3.9 eps_0), for a model card's intrinsic gate capacitance W L eps_ox / tox
EPS_OX = 3.9 * 8.854214871e-12
#: a window whose switch was closed for at least 1 - this of t_learn counts as whole, not partial (a full window's
#: integral is exact to rounding: ngspice's time points land on the switch's breakpoints)
FULL_WINDOW_TOLERANCE = 1e-6


@dataclass(frozen=True)
class StepPlan:
    """Timing of the slots: slot k presents ``points[k]`` from ``k * period``; ``per_step`` slots make one training
    step (1 under ``cycle``, the number of data points under ``full_batch``)."""

    points: np.ndarray
    t_settle: float
    t_learn: float
    rise: float
    per_step: int = 1

    @property
    def period(self) -> float:
        """Seconds of one slot."""
        return self.rise + self.t_settle + self.t_learn * (1 + SWITCH_EDGE)

    def with_steps(self, setup: Setup, steps: int) -> StepPlan:
        """This timing with the slots of ``steps`` training steps of ``setup`` (``slots``)."""
        if steps < 1:
            raise ValidationError(f"learning_hardware: steps must be >= 1 (got {steps}); give a number of steps")
        points, per_step = slots(setup, steps)
        return replace(self, points=points, per_step=per_step)

    def window_start(self, k: int) -> float:
        return k * self.period + self.rise + self.t_settle

    def step_end(self, s: int) -> float:
        """When the switch of the last window of training step s is fully open again."""
        return self.window_start((s + 1) * self.per_step - 1) + self.t_learn * (1 + SWITCH_EDGE)


def slots_per_step(setup: Setup) -> int:
    """Presented points of one training step: 1 under ``cycle``, every data point under ``full_batch``."""
    return setup.task.n_points if setup.params.schedule.kind == "full_batch" else 1


def slots(setup: Setup, steps: int) -> tuple[np.ndarray, int]:
    """(data point of every slot of ``steps`` training steps, slots per step): points in order, one slot per
    step under ``cycle``, every point once per step under ``full_batch``."""
    n, per_step = setup.task.n_points, slots_per_step(setup)
    return (np.tile(np.arange(n), steps) if per_step > 1 else np.arange(steps) % n), per_step


def timing(setup: Setup, periphery: PeripheryParams, t_settle: float | None = None) -> StepPlan:
    """The slots' timing (a ``StepPlan`` without points yet: ``with_steps`` gives them) of ``setup`` with the input
    rise of ``periphery``; ``t_settle`` (s) replaces ``hardware.t_settle``."""
    hw = setup.hardware
    return StepPlan(np.empty(0, int), hw.t_settle if t_settle is None else t_settle, hw.t_learn, periphery.input_rise,
                    slots_per_step(setup))


def max_steps(setup: Setup, plan: StepPlan) -> tuple[int, str]:
    """(most training steps one learning transient of ``setup`` with the timing ``plan`` runs, why): ``MAX_SLOTS``
    presented points, fewer on a network whose slots (``SLOT_BYTES_PER_EDGE2``) would not fit in
    ``LEARNING_MEMORY``, and ``MAX_TIME_OVER_RISE`` input rises of simulated time."""
    per_step, rise, period = plan.per_step, plan.rise, plan.period
    by_time = int(MAX_TIME_OVER_RISE * rise / period) // per_step
    per_slot = SLOT_BYTES_PER_EDGE2 * setup.circuit.n_edges ** 2
    by_memory = int(LEARNING_MEMORY // per_slot)
    if by_memory < MAX_SLOTS and by_memory // per_step <= by_time:
        return by_memory // per_step, (f"one transient of {setup.circuit.n_edges:,} edges keeps about "
                                       f"{si(per_slot, 'B')} per presented point ({per_step} per step): "
                                       f"{by_memory:,} points fit in {si(LEARNING_MEMORY, 'B')}")
    if MAX_SLOTS // per_step <= by_time:
        return MAX_SLOTS // per_step, (f"one transient presents at most {MAX_SLOTS:,} points ({per_step} per step), "
                                       "each about 0.7 MB and 0.1 s (measured on XOR)")
    return by_time, (f"one transient runs at most {MAX_TIME_OVER_RISE:.2g} input rises of {rise:.3g} s "
                     f"({MAX_TIME_OVER_RISE * rise:.3g} s; {period:.3g} s per point, {per_step} per step), beyond "
                     "which ngspice aborts at an input ramp (measured from 2.6e10: 'timestep too small')")


def _check(setup: Setup) -> None:
    c, rule, task, dyn = setup.circuit, setup.rule, setup.task, setup.dynamics
    if not isinstance(c.device, NmosParams):
        raise ValidationError(f"learning_hardware: needs a transistor network (got device {c.device.name}); set "
                              "device.kind: nmos")
    if not c.device.bulk_junctions:  # the three-regime law: no level-1 card to carry capacitances (as ``transient``)
        raise ValidationError(f"learning_hardware: device {c.device.name!r} ({c.device.law} law) has no capacitance "
                              "model; use a level-1 preset (ald1106-fit or ald1106-l1) for the learning transient")
    if c.mismatch is not None:
        raise ValidationError("learning_hardware: twin mismatch is not modelled in the learning transient (got "
                              "device.mismatch); remove it")
    kind, p = setup.params.schedule.kind, setup.params.update_probability
    wrong = ([f"learning.schedule={kind} (use cycle or full_batch)"] if kind not in ("cycle", "full_batch") else []) \
        + ([f"learning.loss={rule.loss} (use mse or hinge)"] if rule.rival else []) \
        + ([f"learning.update_probability={p} (use 1)"] if p != 1.0 else [])
    if wrong:  # only what is wrong: a key named with an allowed value reads as the fault
        raise ValidationError("learning_hardware: the learning transient presents the points in order, one "
                              f"learning window each, on every edge; change {', '.join(wrong)}")
    if rule.update_edges != "all":
        raise ValidationError(f"learning_hardware: the learning transient charges every edge's gate (got "
                              f"learning.update_edges={rule.update_edges}); use update_edges: all")
    if rule.rate_decay != 1.0:
        raise ValidationError(f"learning_hardware: the learning transient keeps one switch time, one rate (got "
                              f"learning.rate_decay={rule.rate_decay}); remove learning.rate_decay")
    if rule.hinge and (task.decode != "nearest" or c.n_outputs != 1 or task.levels is None):
        raise ValidationError(f"learning_hardware: the hinge in the transient compares one output with its class "
                              f"levels (got decode={task.decode}, {c.n_outputs} outputs); use a task read by "
                              "its nearest level on one output, or loss: mse")
    if dyn.leak_tau is not None or dyn.bias is not None or setup.params.read_noise or dyn.dead_band:
        raise ValidationError("learning_hardware: leak, learning bias, read noise and a dead band are not modelled "
                              "in the learning transient; remove learning.leak, learning.bias/bias_sigma, "
                              "learning.read_noise, learning.dead_band")


def gate_capacitance(setup: Setup, capacitances: MosCapacitances) -> float:
    """F the two transistors of an edge (one per twin) put on its gate node, as the netlist writes them: twice the
    gate-source, gate-drain and gate-bulk capacitances of ``capacitances``, or of a user model card (its cgso and
    cgdo per metre of width, cgbo per metre of length, and with tox its whole oxide W L eps_ox / tox)."""
    dev = setup.circuit.device
    if dev.model_card is None:
        return 2 * (capacitances.cgs + capacitances.cgd + capacitances.cgb)
    given = parse_model_card(dev.model_card, "device.model_file").given
    oxide = EPS_OX * dev.w * dev.l / given["tox"] if given.get("tox") else 0.0
    return 2 * ((given.get("cgso", 0.0) + given.get("cgdo", 0.0)) * dev.w + given.get("cgbo", 0.0) * dev.l + oxide)


def check(setup: Setup, capacitances: MosCapacitances, periphery: PeripheryParams,
          t_settle: float | None = None) -> StepPlan:
    """Refuse what the learning transient does not model, and hardware constants its update model or ngspice
    cannot follow (``MAX_PERIOD_OVER_RISE``, ``MIN_GATE_CAPACITOR_RATIO``: what each limit rests on); ``t_settle``
    (s) replaces ``hardware.t_settle``. Returns the timing it checked (``timing``)."""
    _check(setup)
    hw = setup.hardware
    plan = timing(setup, periphery, t_settle)
    ratio = plan.period / plan.rise
    if ratio > MAX_PERIOD_OVER_RISE:
        longest = ((MAX_PERIOD_OVER_RISE - 1) * plan.rise - plan.t_settle) / (1 + SWITCH_EDGE)  # of t_learn
        if longest <= 0:
            keys, fix = "hardware.t_settle", f"give hardware.t_settle < {MAX_PERIOD_OVER_RISE * plan.rise:.3g} s"
        elif setup.config.learning.rate is None:
            keys, fix = "hardware.t_learn", f"give hardware.t_learn <= {longest:.3g} s"
        else:
            keys = "hardware.capacitance, hardware.gain, learning.rate"
            fix = (f"lower hardware.capacitance or learning.rate, or raise hardware.gain, to a t_learn (rate R C / "
                   f"gain) of at most {longest:.3g} s")
        raise ValidationError(f"{keys}: a presented point (input rise + t_settle + t_learn + the switch's edges, "
                              f"{SWITCH_EDGE:.0%} of t_learn) must take at most "
                              f"{MAX_PERIOD_OVER_RISE:.0e} times timing.periphery.input_rise ({plan.rise:.3g} s) for "
                              f"ngspice to integrate its input ramps (measured: it aborts from 2e8, 'timestep too "
                              f"small') (got {plan.period:.3g} s, {ratio:.2g} times, t_learn {plan.t_learn:.3g} s); "
                              f"{fix}")
    c_dev = gate_capacitance(setup, capacitances)
    if hw.capacitance < MIN_GATE_CAPACITOR_RATIO * c_dev * (1 - 1e-9):
        # the transistors' part comes from timing.capacitances or the model card: either may be the one to change
        card = setup.circuit.device.model_card is not None
        keys, other = (("hardware.capacitance, device.model_file", "a card of smaller cgso, cgdo, cgbo or oxide")
                       if card else ("hardware.capacitance, timing.capacitances", "smaller timing.capacitances"))
        raise ValidationError(f"{keys}: must be at least {MIN_GATE_CAPACITOR_RATIO:g} times the gate "
                              f"capacitance of the edge's two transistors on its node, {c_dev:.3g} F, or the learning "
                              f"current's charge divides between them and the update falls short (measured: by 1 % "
                              f"of the gate movement at 100 times, 17 % at 10 times) (got {hw.capacitance:.3g} F, "
                              f"{hw.capacitance / c_dev:.3g} times); give hardware.capacitance >= "
                              f"{MIN_GATE_CAPACITOR_RATIO * c_dev:.3g} F, or {other}")
    return plan


def plan_steps(setup: Setup, steps: int, capacitances: MosCapacitances, periphery: PeripheryParams,
               t_settle: float | None = None, key: str = "steps") -> StepPlan:
    """The slots of ``steps`` training steps of ``setup`` (``slots``: points in order), once ``check`` has passed and
    ``steps`` is within ``max_steps``: what ``run_learning`` runs. ``t_settle`` (s) replaces ``hardware.t_settle``;
    ``key`` is what a refusal of ``steps`` calls it (the command's ``--steps``)."""
    plan = check(setup, capacitances, periphery, t_settle)
    most, why = max_steps(setup, plan)
    if steps > most:
        raise ValidationError(f"{key}: the learning transient of this config takes at most {most:,} training steps: "
                              f"{why} (got {steps:,}); give {key} <= {most}")
    return plan.with_steps(setup, steps)


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


def _switch(plan: StepPlan) -> tuple[list[float], list[float]]:
    """Breakpoints (s, 1) of the learning switch: 0, ramping to 1 over SWITCH_EDGE t_learn, held, ramping back
    (area t_learn per slot)."""
    e = SWITCH_EDGE * plan.t_learn
    t, v = [0.0], [0.0]
    for k in range(len(plan.points)):
        s = plan.window_start(k)
        t += [s, s + e, s + plan.t_learn, s + plan.t_learn + e]
        v += [0.0, 1.0, 1.0, 0.0]
    return t, v


def learning_netlist(setup: Setup, controls: np.ndarray, plan: StepPlan, capacitances: MosCapacitances,
                     periphery: PeripheryParams, data_file: str = "gates.txt") -> str:
    """ngspice text of the learning hardware for the steps of ``plan`` (``plan_steps``: checked) from gates
    ``controls`` [E] (V)."""
    c, task, rule, hw, dyn = setup.circuit, setup.task, setup.rule, setup.hardware, setup.dynamics
    controls = np.asarray(controls, float)
    if controls.shape != (c.n_edges,):
        raise ValidationError(f"learning_hardware: controls must have shape ({c.n_edges},) (got {controls.shape}); "
                              "pass one gate voltage per edge")
    # on Sparse: with KLU ngspice 46 stopped XOR's learning decks ("timestep too small" at 0.067 s of 0.8 s) that
    # Sparse runs through (2026-12-04); the step transients take KLU (transient._options)
    sparse = replace(setup.options, linear_solver="sparse")
    lines = [f"* metamaterial learning hardware: {len(plan.points)} steps, {c.n_edges} edges x 2 twins",
             *_options(c, sparse), *_mos_cards(c, capacitances)]
    x, y = task.inputs[plan.points], task.targets[plan.points]
    for twin in ("f", "c"):
        for k, node in enumerate(c.inputs):
            lines.append(f"VI{k}{twin} {twin}{int(node)} 0 {_stepped(plan, x[:, k])}")
        for k, (node, volts) in enumerate(zip(c.rails, c.rail_voltages)):
            lines.append(f"VR{k}{twin} {twin}{int(node)} 0 dc {num(volts)}")
    for k in range(c.n_outputs):
        lines.append(f"VL{k} lab{k} 0 {_stepped(plan, y[:, k])}")
    lines += [f"VLW lw 0 {_pwl(*_switch(plan))}", *(_hinge(setup, plan) if rule.hinge else [])]
    switch = "V(lw) * V(act)" if rule.hinge else "V(lw)"
    eta = rule.nudge
    for k, (p, n) in enumerate(zip(c.out_pos, c.out_neg)):
        if n < 0:
            lines.append(f"BCL{k} c{p} 0 V = V(f{p}) + {num(eta)} * (V(lab{k}) - V(f{p}))")
        else:
            push = f"{num(eta / 2)} * (V(lab{k}) - (V(f{p}) - V(f{n})))"
            lines += [f"BCL{k} c{p} 0 V = V(f{p}) + {push}", f"BCN{k} c{n} 0 V = V(f{n}) - {push}"]
    dev = c.device
    k_q = hw.gain / hw.resistance  # A per V^2: the multiplier's gain U into R
    for e, (a, b) in enumerate(c.edges):
        for twin in ("f", "c"):
            bulk = "0" if c.body is None else f"{twin}{int(c.body[e])}"
            lines.append(f"M{twin}{e} {twin}{a} g{e} {twin}{b} {bulk} {dev.model_name} w={num(dev.w)} "
                         f"l={num(dev.l)}")
        lines.append(f"CG{e} g{e} 0 {num(hw.capacitance)}")
        lines.append(f"BU{e} u{e} 0 V = (V(f{a}) - V(f{b}))^2 - (V(c{a}) - V(c{b}))^2")
        stop = (f"(V(g{e}) >= {num(dyn.high)} && V(u{e}) > 0) || (V(g{e}) <= {num(dyn.low)} && V(u{e}) < 0)")
        lines.append(f"BQ{e} 0 g{e} I = {switch} * {num(k_q)} * ({stop} ? 0 : V(u{e}))")
    if periphery.wiring_capacitance > 0:
        lines += [f"CW{t}{i} {t}{i} 0 {num(periphery.wiring_capacitance)}" for t in "fc" for i in range(c.n_nodes)]
    if periphery.amplifier_capacitance > 0:
        lines += [f"CA{k} f{int(n)} 0 {num(periphery.amplifier_capacitance)}" for k, n in enumerate(c.clamp_nodes)]
    lines.append(".ic " + " ".join(f"v(g{e})={num(v)}" for e, v in enumerate(controls)))
    vectors = [f"v(g{e})" for e in range(c.n_edges)] + [f"v(f{i})" for i in range(c.n_nodes)]
    vectors += ["v(act)"] if rule.hinge else []
    tran = _tran(plan.period / POINTS_PER_STEP, len(plan.points) * plan.period, data_file, vectors)
    return "\n".join([*lines, *control_block(tran)]) + "\n"


def _hinge(setup: Setup, plan: StepPlan) -> list[str]:
    """Sources of the hinge's comparator ``act``: 1 while the presented point's margin (``step.class_margins``,
    nearest-level decoding) is below ``rule.margin``, else 0."""
    c, task, rule = setup.circuit, setup.task, setup.rule
    levels, classes = np.asarray(task.levels, float), np.asarray(task.classes)[plan.points]
    others = np.array([[lv for j, lv in enumerate(levels) if j != k] for k in classes])
    lines = [f"VLC lc 0 {_stepped(plan, levels[classes])}"]
    lines += [f"VLO{j} lo{j} 0 {_stepped(plan, others[:, j])}" for j in range(others.shape[1])]
    p, n = int(c.out_pos[0]), int(c.out_neg[0])
    out = f"(V(f{p}) - V(f{n}))" if n >= 0 else f"V(f{p})"
    nearest = f"abs({out} - V(lo0))"
    for j in range(1, others.shape[1]):
        nearest = f"min({nearest}, abs({out} - V(lo{j})))"
    return lines + [f"BACT act 0 V = (({nearest} - abs({out} - V(lc))) / 2 < {num(rule.margin)}) ? 1 : 0"]


@dataclass(frozen=True)
class LearningTransient:
    """N training steps as ngspice integrates them.

    Attributes:
        time: [T] s. gates: [T, E] gate voltages (V). free: [T, N] free-twin node voltages (V).
        gates_after: [S, E] gates at the end of each training step's last learning window (V).
        on_fraction: [slots] how much of each slot's window the learning switch was closed: the integral of the
            switch signal times the hinge's comparator (1 without a hinge) over the window, over t_learn (1: the
            whole window; less where the live comparator opened the switch once the margin was reached, or closed
            it late). plan: the slots' timing. netlist: the text ngspice ran.
    """

    time: np.ndarray
    gates: np.ndarray
    free: np.ndarray
    gates_after: np.ndarray
    on_fraction: np.ndarray
    plan: StepPlan
    netlist: str

    @property
    def active(self) -> np.ndarray:
        """bool [slots]: whether each slot's switch was closed at all."""
        return self.on_fraction > 0

    @property
    def windows(self) -> int:
        """Learning windows that closed a switch, for any time."""
        return int(self.active.sum())

    @property
    def partial_windows(self) -> int:
        """Learning windows whose switch was closed for some of the window only (the comparator opened it)."""
        return int(np.sum(self.active & (self.on_fraction < 1 - FULL_WINDOW_TOLERANCE)))

    @property
    def switch_time(self) -> float:
        """s the learning switch was closed over the whole transient (on_fraction summed, times t_learn)."""
        return float(self.on_fraction.sum() * self.plan.t_learn)


def _on_fractions(plan: StepPlan, time: np.ndarray, comparator: np.ndarray) -> np.ndarray:
    """[slots] fraction of t_learn the switch was closed in each slot: the switch signal times ``comparator`` [T]
    (1 while the hinge's comparator lets the current through) integrated over the slot's window (trapezoids
    on ngspice's time points, which land on the switch's breakpoints)."""
    closed = np.interp(time, *_switch(plan)) * comparator
    charge = np.concatenate([[0.0], np.cumsum(0.5 * (closed[1:] + closed[:-1]) * np.diff(time))])
    starts = np.array([plan.window_start(k) for k in range(len(plan.points))])
    ends = starts + plan.t_learn * (1 + SWITCH_EDGE)
    return (np.interp(ends, time, charge) - np.interp(starts, time, charge)) / plan.t_learn


def run_learning(setup: Setup, controls: np.ndarray, plan: StepPlan, capacitances: MosCapacitances,
                 periphery: PeripheryParams) -> LearningTransient:
    """The training steps of ``plan`` (``plan_steps``) of the learning hardware from gates ``controls`` [E]."""
    points, steps = plan.points, len(plan.points) // plan.per_step
    text = learning_netlist(setup, controls, plan, capacitances, periphery)
    t_stop = len(points) * plan.period
    _, data = _run(text, "gates.txt", timeout=120.0 + SECONDS_PER_SLOT * len(points), where="learning_hardware",
                   t_stop=t_stop)
    c = setup.circuit
    table = np.array([[float(v) for v in r.split()] for r in data.strip().splitlines()[1:]])
    hinge = setup.rule.hinge
    if table.ndim != 2 or table.shape[1] != 1 + c.n_edges + c.n_nodes + hinge:
        raise SimulationError(f"learning_hardware: the waveform table has the wrong shape (got {table.shape}); the "
                              "netlist and the reader disagree", netlist=text)
    time = table[:, 0]
    gates, free = table[:, 1:1 + c.n_edges], table[:, 1 + c.n_edges:1 + c.n_edges + c.n_nodes]
    ends = np.array([min(plan.step_end(k), time[-1]) for k in range(steps)])
    after = np.stack([np.interp(ends, time, gates[:, e]) for e in range(c.n_edges)], axis=1)
    # the live comparator opens the switch once the margin is reached (and may close it late): read its on-time
    # over the whole window, not one sample of it
    on = _on_fractions(plan, time, table[:, -1] if hinge else np.ones_like(time))
    return LearningTransient(time, gates, free, after, on, plan, text)


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


def loop_windows(setup: Setup, controls: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """bool [slots]: the learning windows the quasi-static loop opens in the slots of its steps ``reference``
    [S, E] from ``controls`` [E]: every one, or under the hinge those of the points not yet ``margin`` past their
    boundary at the gates before the step (the loop's own decision, ``step.active_points``). The loop's windows
    are whole; the transient's ``on_fraction`` says how much of each of its own the switch was closed."""
    points, per_step = slots(setup, len(reference))
    if not setup.rule.hinge:
        return np.ones(len(points), bool)
    c, task = setup.circuit, setup.task
    before = np.vstack([np.asarray(controls, float)[None], reference[:-1]])
    by_step = points.reshape(len(reference), per_step)  # the points each step presents: only those are solved
    with make_solver(setup) as solver:
        margins = np.concatenate([task.margins(c.output_values(solver.solve(c, g, task.inputs[p]).voltages),
                                               task.classes[p]) for g, p in zip(before, by_step)])
    return step.active_points(margins, True, setup.rule.margin)


def compare(transient: LearningTransient, reference: np.ndarray, start: np.ndarray) -> dict[str, float]:
    """How far the transient's gates after each step are from the quasi-static loop's [S, E] (V), next to how far
    the gates moved from ``start`` [E]; ``relative`` is None when no gate moved (no step closed its window)."""
    diff = np.abs(transient.gates_after - reference)
    moved = np.abs(reference - np.asarray(start)[None])
    return {"max_diff_v": float(diff.max()), "final_max_diff_v": float(diff[-1].max()),
            "max_moved_v": float(moved.max()),
            "relative": float(diff.max() / moved.max()) if moved.max() > 0 else None}


__all__ = ["LEARNING_MEMORY", "SLOT_BYTES_PER_EDGE2", "StepPlan", "LearningTransient", "slots", "slots_per_step",
           "timing", "max_steps", "check", "plan_steps", "gate_capacitance", "learning_netlist", "run_learning",
           "quasi_static", "loop_windows", "compare"]
