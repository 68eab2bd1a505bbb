"""Latency and energy of one inference: an ngspice transient of the free network after an input step.

A simulation stage beside the DC solvers (solve -> report): it writes its own netlist text (the DC netlist's
elements plus node capacitances and the periphery), runs ``ngspice -b`` through ``sim.ngspice.run_batch_file``
and reads the waveforms ngspice writes. It never imports PySpice. docs/physics.md, section 8, gives the model
and the source of every default.

What sets the time scale:

* the transistors' own capacitances, written into the model card (``MosCapacitances``: gate-source and
  gate-drain overlap, gate-bulk, and the drain/source bulk junctions with their voltage dependence);
* a wiring capacitance on every node and the output amplifiers' input capacitance on every output node
  (``PeripheryParams``);
* the input drivers (inputs and rails): ideal sources behind an output resistance, stepping over a rise time.

The gates are ideal voltage sources over the transient: the gate capacitor (microfarads) does not move on the
network's time scale. An inference is a step of the inputs from one data point to the next; its settling time is
when every output stays within ``SettleParams.tolerance`` of the DC answer at the new point, and its energy is
the integral of the power the drivers deliver (sum of V I over inputs and rails) from the step to that time.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from dataclasses import dataclass, field, replace

import numpy as np

from .circuit import Circuit
from .devices import NmosParams, PotentiometerParams, ResistorParams
from .errors import SimulationError, ValidationError
from .netlist import SpiceOptions, node_name, num
from .sim.ngspice import run_batch_file

#: transient sample points per window (ngspice's largest step is the window over this)
DEFAULT_POINTS = 4000


@dataclass(frozen=True)
class MosCapacitances:
    """Capacitances of one edge transistor (F), written into its level-1 model card.

    ``cgs``, ``cgd``: gate-source and gate-drain capacitance (ngspice ``cgso``/``cgdo`` are these per metre of
    width); ``cgb``: gate-bulk (``cgbo`` per metre of length); ``cbd``, ``cbs``: zero-bias bulk-junction
    capacitances of drain and source, which fall with reverse bias as (1 + V_R / pb)^-mj.
    The defaults are the ``ald1106`` class of docs/physics.md, section 8.2.
    """

    cgs: float = 0.5e-12
    cgd: float = 0.5e-12
    cgb: float = 0.0
    cbd: float = 0.5e-12
    cbs: float = 0.5e-12
    pb: float = 0.8
    mj: float = 0.5

    def __post_init__(self) -> None:
        for name in ("cgs", "cgd", "cgb", "cbd", "cbs"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0 <= v < 1e-6):
                raise ValidationError(f"MosCapacitances.{name}: must be in [0, 1e-6) F (got {v!r}); give farads, "
                                      "e.g. 0.5e-12")
        if not (math.isfinite(self.pb) and self.pb > 0) or not (0 < self.mj < 1):
            raise ValidationError(f"MosCapacitances: need pb > 0 and 0 < mj < 1 (got pb={self.pb!r}, "
                                  f"mj={self.mj!r}); use e.g. pb=0.8, mj=0.5")

    def card_params(self, width: float, length: float) -> str:
        """The model-card text of these capacitances for an instance of the given width and length (m)."""
        return (f"cgso={num(self.cgs / width)} cgdo={num(self.cgd / width)} cgbo={num(self.cgb / length)} "
                f"cbd={num(self.cbd)} cbs={num(self.cbs)} pb={num(self.pb)} mj={num(self.mj)}")


#: capacitance presets of the edge transistors (docs/physics.md, section 8.2)
CAPACITANCES = {"ald1106": MosCapacitances(), "none": MosCapacitances(0.0, 0.0, 0.0, 0.0, 0.0)}


@dataclass(frozen=True)
class PeripheryParams:
    """What surrounds the network (SI units; defaults are ours, docs/physics.md section 8.2).

    Attributes:
        driver_resistance: output resistance (ohm) of each input and rail driver; 0 (the default) drives the node
            directly. A resistance also moves the DC answer (the network draws up to milliamperes from its rails),
            so the settling is then measured against the DC answer of the circuit with the drivers.
        input_rise: time (s) the inputs take to move from one data point to the next (a linear ramp).
        amplifier_capacitance: input capacitance (F) of the amplifier reading each output node.
        wiring_capacitance: capacitance (F) of the wiring of every node to ground.
    """

    driver_resistance: float = 0.0
    input_rise: float = 10e-9
    amplifier_capacitance: float = 5e-12
    wiring_capacitance: float = 5e-12

    def __post_init__(self) -> None:
        for name in ("driver_resistance", "amplifier_capacitance", "wiring_capacitance"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValidationError(f"PeripheryParams.{name}: must be finite and >= 0 (got {v!r})")
        if not (math.isfinite(self.input_rise) and self.input_rise > 0):
            raise ValidationError(f"PeripheryParams.input_rise: must be > 0 s (got {self.input_rise!r}); a step "
                                  "needs a rise time, e.g. 1e-9")


@dataclass(frozen=True)
class SettleParams:
    """When an output counts as settled, and how the transient is run.

    An output o is settled once |O(t) - O_dc| <= max(rel_tol |O_dc - O_before|, abs_tol) for good, O_dc the
    DC answer at the new data point and O_before the output before the step.

    Attributes:
        rel_tol: fraction of the output's step. abs_tol: floor of the tolerance (V).
        t_stop: transient window (s) after the step, or None to start at ``first_window`` and double it
            (up to ``max_doublings`` times) until the outputs settle within its first half.
        points: sample points per window.
    """

    rel_tol: float = 0.01
    abs_tol: float = 1e-4
    t_stop: float | None = None
    first_window: float = 1e-6
    max_doublings: int = 8
    points: int = DEFAULT_POINTS

    def __post_init__(self) -> None:
        if not (0 < self.rel_tol < 1) or not (math.isfinite(self.abs_tol) and self.abs_tol >= 0):
            raise ValidationError(f"SettleParams: need 0 < rel_tol < 1 and abs_tol >= 0 (got rel_tol="
                                  f"{self.rel_tol!r}, abs_tol={self.abs_tol!r}); e.g. rel_tol=0.01, abs_tol=1e-4")
        for name in ("t_stop", "first_window"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValidationError(f"SettleParams.{name}: must be > 0 s (got {v!r})")
        if self.points < 100:
            raise ValidationError(f"SettleParams.points: must be >= 100 (got {self.points!r})")


@dataclass(frozen=True)
class StepResponse:
    """One input step of the free network, as ngspice integrates it.

    Attributes:
        time: [T] s, from 0; the inputs start to move at ``t_step``.
        voltages: [T, N] node voltages (V). outputs: [T, n_out] output values (V).
        supply_power: [T] power (W) the input and rail drivers deliver.
        dc_before, dc_after: [N] DC operating points at the two data points (ngspice ``op`` of the same circuit).
        tolerance: [n_out] settling band (V). settling_time: s after ``t_step`` (NaN if not settled).
        energy: J the drivers deliver from ``t_step`` to ``t_step + settling_time`` (NaN if not settled).
        power_after: W the drivers deliver at the end of the window (the DC answer of the new point, once settled).
        n_transistors: transistors of the network (its edges).
    """

    time: np.ndarray
    voltages: np.ndarray
    outputs: np.ndarray
    supply_power: np.ndarray
    dc_before: np.ndarray
    dc_after: np.ndarray
    tolerance: np.ndarray
    t_step: float
    settling_time: float
    energy: float
    power_after: float
    n_transistors: int
    netlist: str = field(repr=False, default="")

    @property
    def settled(self) -> bool:
        return math.isfinite(self.settling_time)

    @property
    def energy_per_transistor(self) -> float:
        """J per transistor of one inference."""
        return self.energy / self.n_transistors

    @property
    def static_energy(self) -> float:
        """J the DC power of the new point alone would take over the settling time; the rest of ``energy`` is
        the charging of the node capacitances (and the lower power before the step)."""
        return self.power_after * self.settling_time


# -- netlist ------------------------------------------------------------------------------------------------
def _source_nodes(c: Circuit, periphery: PeripheryParams) -> tuple[list[str], list[str]]:
    """Netlist node of each input driver and each rail driver (its own node behind the driver resistance)."""
    direct = periphery.driver_resistance == 0
    ins = [node_name(int(n)) if direct else f"s_i{k}" for k, n in enumerate(c.inputs)]
    rails = [node_name(int(n)) if direct else f"s_r{k}" for k, n in enumerate(c.rails)]
    return ins, rails


def transient_netlist(c: Circuit, controls: np.ndarray, before: np.ndarray | None, after: np.ndarray, *,
                      t_step: float = 0.0, t_stop: float = 1e-6, points: int = DEFAULT_POINTS,
                      capacitances: MosCapacitances = CAPACITANCES["ald1106"],
                      periphery: PeripheryParams = PeripheryParams(), options: SpiceOptions = SpiceOptions(),
                      data_file: str = "waves.txt") -> str:
    """ngspice text of the free network with capacitances and periphery.

    With ``before`` given, the inputs ramp from ``before`` to ``after`` ([n_in] V) over ``periphery.input_rise``
    starting at ``t_step``, and the control block runs ``tran`` to ``t_stop`` and writes every node voltage and
    every driver's current to ``data_file`` (``wrdata``). With ``before=None`` the inputs sit at ``after`` and
    the control block prints the DC operating point (``op``, ``print all``).
    Node names are those of ``netlist.to_spice`` (``n{i}``); gates ``g{e}`` are held by ``VG{e}``.
    """
    controls = np.asarray(controls, float)
    after = np.asarray(after, float).ravel()
    if controls.shape != (c.n_edges,):
        raise ValidationError(f"transient: controls must have shape ({c.n_edges},) (got {controls.shape}); pass one "
                              "control per edge")
    for name, x in (("after", after), ("before", None if before is None else np.asarray(before, float).ravel())):
        if x is not None and x.shape != (c.n_inputs,):
            raise ValidationError(f"transient: {name} must hold {c.n_inputs} input voltages (got shape {x.shape}); "
                                  "pass one data point")
    dev = c.device
    if isinstance(dev, NmosParams) and not dev.bulk_junctions:
        raise ValidationError(f"transient: device {dev.name!r} ({dev.law} law) has no capacitance model; use a "
                              "level-1 preset (ald1106-fit or ald1106-l1) for transients")
    lines = [f"* metamaterial transient: {c.n_nodes} nodes, {c.n_edges} edges, device {dev.name}",
             f".options gmin={num(c.gmin)} reltol={num(options.reltol)} abstol={num(options.abstol)} "
             f"vntol={num(options.vntol)} itl1={int(options.itl1)}"]
    if isinstance(dev, NmosParams):
        lines += _mos_cards(c, capacitances)
        for e, vg in enumerate(controls):
            lines.append(f"VG{e} g{e} 0 dc {num(vg)}")
    ins, rails = _source_nodes(c, periphery)
    rd = periphery.driver_resistance
    for k, node in enumerate(c.inputs):
        if before is None:
            wave = f"dc {num(after[k])}"
        else:
            v0 = float(np.ravel(before)[k])
            wave = (f"pwl(0 {num(v0)} {num(t_step)} {num(v0)} {num(t_step + periphery.input_rise)} "
                    f"{num(after[k])})")
        lines.append(f"VI{k} {ins[k]} 0 {wave}")
        if rd > 0:
            lines.append(f"RDI{k} {ins[k]} {node_name(int(node))} {num(rd)}")
    for k, (node, volts) in enumerate(zip(c.rails, c.rail_voltages)):
        lines.append(f"VR{k} {rails[k]} 0 dc {num(volts)}")
        if rd > 0:
            lines.append(f"RDR{k} {rails[k]} {node_name(int(node))} {num(rd)}")
    for e, (a, b) in enumerate(c.edges):
        na, nb = node_name(int(a)), node_name(int(b))
        if isinstance(dev, NmosParams):
            model = dev.model_name if c.mismatch is None else f"{dev.model_name}_{e}"
            w = dev.w if c.mismatch is None else dev.w * float(c.mismatch.kscale[0, e])
            lines.append(f"M{e} {na} g{e} {nb} 0 {model} w={num(w)} l={num(dev.l)}")
        elif isinstance(dev, ResistorParams):
            lines.append(f"R{e} {na} {nb} {num(1.0 / controls[e])}")
        elif isinstance(dev, PotentiometerParams):
            lines.append(f"R{e} {na} {nb} {num(1.0 / float(dev.conductance(controls[e])))}")
    if periphery.wiring_capacitance > 0:
        lines += [f"CW{i} {node_name(i)} 0 {num(periphery.wiring_capacitance)}" for i in range(c.n_nodes)]
    if periphery.amplifier_capacitance > 0:
        lines += [f"CA{k} {node_name(int(n))} 0 {num(periphery.amplifier_capacitance)}"
                  for k, n in enumerate(c.clamp_nodes)]
    lines += [".control", "set numdgt=15"]
    if before is None:
        lines += ["op", "print all"]
    else:
        vectors = [f"v({node_name(i)})" for i in range(c.n_nodes)] + [f"v({s})" for s in ins + rails]
        vectors += [f"i(VI{k})" for k in range(c.n_inputs)] + [f"i(VR{k})" for k in range(len(c.rails))]
        t_max = t_stop / points
        lines += [f"tran {num(t_max)} {num(t_stop)} 0 {num(t_max)}", "set wr_singlescale", "set wr_vecnames",
                  "option numdgt=15", f"wrdata {data_file} " + " ".join(vectors)]
    lines += ["quit 0", ".endc", ".end"]
    return "\n".join(lines) + "\n"


def _mos_cards(c: Circuit, caps: MosCapacitances) -> list[str]:
    """The model card(s) with capacitances: a user card is used as written (its own capacitances)."""
    dev = c.device
    if dev.model_card is not None:
        if c.mismatch is not None:
            raise ValidationError("transient: mismatch needs a built-in preset (got a user model card); remove "
                                  "device.mismatch or use a preset")
        return [dev.model_card]
    extra = caps.card_params(dev.w, dev.l)
    cards = [dev] if c.mismatch is None else [
        replace(dev, vto=dev.vto + float(c.mismatch.dvto[0, e]), model_name=f"{dev.model_name}_{e}")
        for e in range(c.n_edges)]
    return [d.model_text()[:-1] + f" {extra})" for d in cards]


# -- running ------------------------------------------------------------------------------------------------
def _run(text: str, data_name: str | None = None) -> tuple[str, str | None]:
    """Run ``ngspice -b`` on ``text`` in a scratch directory; return its stdout and the data file's text."""
    with tempfile.TemporaryDirectory(prefix="metamaterial-tran-") as tmp:
        path = os.path.join(tmp, "circuit.cir")
        if data_name is not None:
            text = text.replace(f"wrdata {data_name} ", f"wrdata {os.path.join(tmp, data_name)} ")
        with open(path, "w") as f:
            f.write(text)
        out = run_batch_file(path)
        data = None
        if data_name is not None:
            data_path = os.path.join(tmp, data_name)
            if not os.path.exists(data_path):
                raise SimulationError(f"transient: ngspice wrote no waveforms (got no {data_name}); the transient "
                                      "failed: read the simulator log below", netlist=text,
                                      log="\n".join(out.splitlines()[-20:]))
            with open(data_path) as f:
                data = f.read()
    return out, data


def dc_point(c: Circuit, controls: np.ndarray, inputs: np.ndarray, *,
             periphery: PeripheryParams = PeripheryParams(), options: SpiceOptions = SpiceOptions()) -> np.ndarray:
    """[N] DC node voltages (V) of the transient's circuit (drivers included) at one data point, by ngspice."""
    text = transient_netlist(c, controls, None, inputs, periphery=periphery, options=options)
    out, _ = _run(text)
    values = {}
    for line in out.splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_#]+)\s*=\s*([-+0-9.eE]+)\s*$", line)
        if m:
            values[m.group(1).lower()] = float(m.group(2))
    missing = [node_name(i) for i in range(c.n_nodes) if node_name(i) not in values]
    if missing:
        raise SimulationError(f"transient: ngspice's operating point lacks nodes (got none for {missing[:5]}); "
                              "read the simulator log below", netlist=text,
                              log="\n".join(out.splitlines()[-20:]))
    return np.array([values[node_name(i)] for i in range(c.n_nodes)])


def step_response(c: Circuit, controls: np.ndarray, before: np.ndarray, after: np.ndarray, *,
                  capacitances: MosCapacitances = CAPACITANCES["ald1106"],
                  periphery: PeripheryParams = PeripheryParams(), settle: SettleParams = SettleParams(),
                  options: SpiceOptions = SpiceOptions()) -> StepResponse:
    """Transient of the free network when the inputs step from ``before`` to ``after`` ([n_in] V).

    The transient starts from the DC state at ``before``; the step begins after 2 % of the window. Without a
    fixed ``settle.t_stop`` the window doubles until the outputs settle within its first half; if they never
    do, the result has ``settling_time`` and ``energy`` NaN (``settled`` False) rather than raising.
    """
    before, after = np.asarray(before, float).ravel(), np.asarray(after, float).ravel()
    dc_before = dc_point(c, controls, before, periphery=periphery, options=options)
    dc_after = dc_point(c, controls, after, periphery=periphery, options=options)
    o_before, o_after = c.output_values(dc_before)[0], c.output_values(dc_after)[0]
    tol = np.maximum(settle.rel_tol * np.abs(o_after - o_before), settle.abs_tol)
    window = settle.t_stop if settle.t_stop is not None else settle.first_window
    for attempt in range(settle.max_doublings + 1):
        t_step = 0.02 * window
        t_stop = t_step + window
        text = transient_netlist(c, controls, before, after, t_step=t_step, t_stop=t_stop, points=settle.points,
                                 capacitances=capacitances, periphery=periphery, options=options)
        _, data = _run(text, "waves.txt")
        time, v, power = _parse_waves(data, c, text)
        outputs = c.output_values(v)
        t_settle = _settling_time(time, outputs, o_after, tol, t_step)
        fixed = settle.t_stop is not None
        if fixed or (math.isfinite(t_settle) and t_settle <= 0.5 * window):
            break
        if attempt == settle.max_doublings:
            t_settle = math.nan
            break
        window *= 2
    settled_at = t_step + t_settle
    energy = _integral(time, power, t_step, settled_at) if math.isfinite(t_settle) else math.nan
    return StepResponse(time=time, voltages=v, outputs=outputs, supply_power=power, dc_before=dc_before,
                        dc_after=dc_after, tolerance=tol, t_step=t_step,
                        settling_time=t_settle, energy=energy, power_after=float(power[-1]),
                        n_transistors=c.n_edges, netlist=text)


def _parse_waves(data: str, c: Circuit, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time [T], node voltages [T, N], driver power [T]) from ``wrdata`` text (one time column, names on top)."""
    rows = data.strip().splitlines()
    try:
        table = np.array([[float(x) for x in r.split()] for r in rows[1:]])
    except ValueError as err:
        raise SimulationError(f"transient: the waveform file is not a table of numbers (got {err}); see the "
                              "netlist's wrdata line", netlist=text) from err
    n_src = c.n_inputs + len(c.rails)
    if table.ndim != 2 or table.shape[1] != 1 + c.n_nodes + 2 * n_src:
        raise SimulationError(f"transient: the waveform table has the wrong shape (got {table.shape}, expected "
                              f"{1 + c.n_nodes + 2 * n_src} columns); the netlist and the reader disagree",
                              netlist=text)
    time = table[:, 0]
    v = table[:, 1:1 + c.n_nodes]
    v_src = table[:, 1 + c.n_nodes:1 + c.n_nodes + n_src]
    i_src = table[:, 1 + c.n_nodes + n_src:]
    # ngspice's branch current flows into the source's + terminal from the circuit: delivered power is -V I
    return time, v, -(v_src * i_src).sum(axis=1)


def _settling_time(time: np.ndarray, outputs: np.ndarray, final: np.ndarray, tol: np.ndarray, t0: float) -> float:
    """Seconds from ``t0`` until every output stays within ``tol`` of ``final``; NaN if the last sample is out."""
    err = np.abs(outputs - final) - tol  # > 0: out of the band
    if (err[-1] > 0).any():
        return math.nan
    t_in = t0
    for o in range(outputs.shape[1]):
        out = np.nonzero(err[:, o] > 0)[0]
        if len(out) == 0:
            continue
        k = out[-1]  # last sample out of the band; the crossing is between k and k + 1
        e0, e1 = err[k, o], err[k + 1, o]
        t_cross = time[k] + (time[k + 1] - time[k]) * e0 / (e0 - e1)
        t_in = max(t_in, t_cross)
    return t_in - t0


def _integral(time: np.ndarray, y: np.ndarray, t0: float, t1: float) -> float:
    """Trapezoidal integral of the samples y(time) from t0 to t1, the end points interpolated."""
    inside = (time > t0) & (time < t1)
    t = np.concatenate([[t0], time[inside], [t1]])
    f = np.concatenate([[np.interp(t0, time, y)], y[inside], [np.interp(t1, time, y)]])
    return float(np.sum(0.5 * (f[1:] + f[:-1]) * np.diff(t)))
