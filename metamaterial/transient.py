"""Latency and energy of one inference: an ngspice transient of the free network after an input step.

A simulation stage beside the DC solvers (solve -> report): it writes its own netlist text (the DC netlist's
elements plus node capacitances and the periphery), runs ``ngspice -b`` through ``sim.ngspice``'s runner
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
when every output stays within its band (``SettleParams``) of the DC answer at the new point, and its energy is
the integral of the power the drivers deliver (sum of V I over inputs and rails) from the step to that time. The
step counts as settled only if, besides, every node ends the window within its own band of that DC answer.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .cards import comment_text
from .circuit import Circuit
from .devices import NmosParams
from .errors import SimulationError, ValidationError
from .netlist import SpiceOptions, edge_model, node_lines, node_name, num, temperature_options
from .runfiles import writing
from .sim.ngspice import _run_ngspice, keep_failed_deck, program_linear_solver
from .timing import CAPACITANCES, DEFAULT_POINTS, MosCapacitances, PeripheryParams, SettleParams

#: A (ngspice's default abstol): the transient's current tolerance is at least this. The gate sources carry only
#: the overlap capacitances' currents; with the DC solvers' 1e-15 A and reltol 1e-6 ngspice's timestep collapses
#: at the first input edge ("timestep too small" on a gate or rail branch) whenever a driven node has a capacitor
#: of its own. The DC answers it gives stay within 1e-6 V of the package's solvers (tests/test_transient.py).
ABSTOL_FLOOR = 1e-12
#: a transient that ends more than this fraction of its length before its stop time stopped early (aborted)
STOP_TOLERANCE = 1e-9
#: a line of ngspice's ``print all``: ``name = value``
_OP_LINE = re.compile(r"^\s*([A-Za-z0-9_#]+)\s*=\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class StepResponse:
    """One input step of the free network, as ngspice integrates it.

    Attributes:
        time: [T] s, from 0; the inputs start to move at ``t_step``.
        voltages: [T, N] node voltages (V). outputs: [T, n_out] output values (V).
        supply_power: [T] power (W) the input and rail drivers deliver.
        dc_before, dc_after: [N] DC operating points at the two data points (ngspice ``op`` of the same circuit).
        tolerance: [n_out] settling band (V) of each output. node_tolerance: [N] the same band of each node, which
            its voltage at the end of the window must be in (``ends_at_dc``) for the step to count as settled.
        settling_time: s after ``t_step`` (NaN if not settled).
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
    node_tolerance: np.ndarray
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
    def ends_at_dc(self) -> bool:
        """Whether every node ends the window within ``node_tolerance`` of its DC answer at the new point."""
        return _at_dc(self.voltages[-1], self.dc_after, self.node_tolerance)

    @property
    def energy_per_transistor(self) -> float:
        """J per transistor of one inference."""
        return self.energy / self.n_transistors

    @property
    def static_energy(self) -> float:
        """J the DC power of the new point alone would take over the settling time. The rest of ``energy``, of
        either sign, is the change of the energy the node capacitances hold plus the devices' power along the way
        short of or beyond the new point's: ``energy`` can be below this (a step to a point of higher power, or
        nodes that fall and give back their charge)."""
        return self.power_after * self.settling_time


# -- netlist ------------------------------------------------------------------------------------------------
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
    before = None if before is None else np.asarray(before, float).ravel()
    if controls.shape != (c.n_edges,):
        raise ValidationError(f"transient: controls must have shape ({c.n_edges},) (got {controls.shape}); pass one "
                              "control per edge")
    for name, x in (("after", after), ("before", before)):
        if x is not None and x.shape != (c.n_inputs,):
            raise ValidationError(f"transient: {name} must hold {c.n_inputs} input voltages (got shape {x.shape}); "
                                  "pass one data point")
    dev = c.device
    if isinstance(dev, NmosParams) and not dev.bulk_junctions:
        raise ValidationError(f"transient: device {dev.name!r} ({dev.law} law) has no capacitance model; use a "
                              "level-1 preset (ald1106-fit or ald1106-l1) for transients")
    lines = [f"* metamaterial transient: {c.n_nodes} nodes, {c.n_edges} edges, device {comment_text(dev.name)}",
             *node_lines(c), *_options(c, options)]
    if isinstance(dev, NmosParams):
        lines += _mos_cards(c, capacitances)
        for e, vg in enumerate(controls):
            lines.append(f"VG{e} g{e} 0 dc {num(vg)}")
    # each driver sits on its network node, or on a node of its own behind the driver resistance
    rd = periphery.driver_resistance
    ins = [node_name(int(n)) if rd == 0 else f"s_i{k}" for k, n in enumerate(c.inputs)]
    rails = [node_name(int(n)) if rd == 0 else f"s_r{k}" for k, n in enumerate(c.rails)]
    if before is None:
        waves = [f"dc {num(v)}" for v in after]
    else:
        rise = num(t_step + periphery.input_rise)
        waves = [f"pwl(0 {num(v0)} {num(t_step)} {num(v0)} {rise} {num(v1)})" for v0, v1 in zip(before, after)]
    for tag, nodes, drivers, wave in (("I", c.inputs, ins, waves),
                                      ("R", c.rails, rails, [f"dc {num(v)}" for v in c.rail_voltages])):
        for k, node in enumerate(nodes):
            lines.append(f"V{tag}{k} {drivers[k]} 0 {wave[k]}")
            if rd > 0:
                lines.append(f"RD{tag}{k} {drivers[k]} {node_name(int(node))} {num(rd)}")
    for e, (a, b) in enumerate(c.edges):
        na, nb = node_name(int(a)), node_name(int(b))
        if isinstance(dev, NmosParams):
            model = dev.model_name if c.mismatch is None else edge_model(dev, 0, e)
            w = dev.w if c.mismatch is None else dev.w * float(c.mismatch.kscale[0, e])
            bulk = "0" if c.body is None else node_name(int(c.body[e]))
            lines.append(f"M{e} {na} g{e} {nb} {bulk} {model} w={num(w)} l={num(dev.l)}")
        else:  # a resistor's or a potentiometer's conductance
            lines.append(f"R{e} {na} {nb} {num(1.0 / dev.conductance(controls[e]))}")
    if periphery.wiring_capacitance > 0:
        lines += [f"CW{i} {node_name(i)} 0 {num(periphery.wiring_capacitance)}" for i in range(c.n_nodes)]
    if periphery.amplifier_capacitance > 0:
        lines += [f"CA{k} {node_name(int(n))} 0 {num(periphery.amplifier_capacitance)}"
                  for k, n in enumerate(c.clamp_nodes)]
    if before is None:
        commands = ["op", "print all"]
    else:
        vectors = [f"v({node_name(i)})" for i in range(c.n_nodes)] + [f"v({s})" for s in ins + rails]
        vectors += [f"i(VI{k})" for k in range(c.n_inputs)] + [f"i(VR{k})" for k in range(len(c.rails))]
        commands = _tran(t_stop / points, t_stop, data_file, vectors)
    return "\n".join([*lines, *control_block(commands)]) + "\n"


def control_block(commands: list[str]) -> list[str]:
    """The ``.control`` block (and ``.end``) of a deck of this module or ``learning_hardware`` running ``commands``
    (``op``, or ``_tran``'s): ``ngspice -b`` exits 0 when they ran through and non-zero when they failed.
    ``strict_errorhandling`` ends ngspice with exit code 1 at a failed operating point (an ``op``, or the one a
    ``tran`` starts from; without it ngspice goes on and exits 0); a ``tran`` that aborts later ("timestep too
    small") ends with ngspice's exit code 0 even so: ``_tran`` checks where it stopped."""
    return [".control", "set numdgt=15", "set strict_errorhandling", *commands, "quit 0", ".endc", ".end"]


def _options(c: Circuit, options: SpiceOptions) -> list[str]:
    """The ``.options`` lines of a transient: the DC solvers' tolerances, abstol raised to ``ABSTOL_FLOOR``, and the
    linear solver (KLU where the ngspice program has it: ``program_linear_solver``)."""
    return [f".options gmin={num(c.gmin)} reltol={num(options.reltol)} abstol={num(max(options.abstol, ABSTOL_FLOOR))} "
            f"vntol={num(options.vntol)} itl1={int(options.itl1)}",
            f".options {program_linear_solver(options.linear_solver)}", *temperature_options(c)]


def _tran(t_max: float, t_stop: float, data_file: str, vectors: list[str]) -> list[str]:
    """Control commands of a transient to ``t_stop`` (s), steps of at most ``t_max``, writing ``vectors`` to
    ``data_file`` (one time column, names on top: ``_parse_waves``). A transient that stopped before ``t_stop``
    (ngspice keeps the samples it had and exits 0) ends ngspice with exit code 1, after writing what it has."""
    return [f"tran {num(t_max)} {num(t_stop)} 0 {num(t_max)}", "set wr_singlescale", "set wr_vecnames",
            "option numdgt=15", f"wrdata {data_file} " + " ".join(vectors),
            "let t_end = time[length(time) - 1]", f"if t_end < {num(t_stop * (1 - STOP_TOLERANCE))}",
            f'echo "Error: the transient stopped at t = $&t_end s of {num(t_stop)} s"', "quit 1", "end"]


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
        replace(dev, vto=dev.vto + float(c.mismatch.dvto[0, e]), model_name=edge_model(dev, 0, e))
        for e in range(c.n_edges)]
    return [d.model_text()[:-1] + f" {extra})" for d in cards]


# -- running ------------------------------------------------------------------------------------------------
def _run(text: str, data_name: str | None = None, timeout: float = 120.0, *, where: str = "transient",
         t_stop: float | None = None, hint: str = "") -> tuple[str, str | None]:
    """Run ``ngspice -b`` on ``text`` in a scratch directory (given up after ``timeout`` s); return its output
    (stdout, then stderr) and the data file's text. A run that exits non-zero, or whose data file ends before
    ``t_stop`` (s), raises ``SimulationError`` in one line that starts with ``where`` and names the deck, kept
    in the temp directory (``hint``: what else to check)."""
    with tempfile.TemporaryDirectory(prefix="metamaterial-tran-") as tmp:
        path = os.path.join(tmp, "circuit.cir")
        run = text if data_name is None else \
            text.replace(f"wrdata {data_name} ", f"wrdata {os.path.join(tmp, data_name)} ")
        with writing(Path(path)):  # a full disk names the deck, in the temporary folder, not the output's
            Path(path).write_text(run)
        proc = _run_ngspice(path, timeout)
        data_path = None if data_name is None else Path(tmp, data_name)
        data = data_path.read_text() if data_path is not None and data_path.exists() else None
    # ngspice says why a transient stopped ("timestep too small ...") on stderr: keep it with the output
    out = proc.stdout + ("\n" + proc.stderr if proc.stderr.strip() else "")
    log = "\n".join(out.splitlines()[-20:])
    end = _last_time(data) if t_stop is not None and data is not None else None
    if end is not None and end < t_stop * (1 - STOP_TOLERANCE):  # ngspice aborted, keeping what it had
        kept = keep_failed_deck(text)
        raise SimulationError(f"{where}: ngspice stopped at t = {end:.4g} s of {t_stop:.4g} s (got an aborted "
                              f"transient); read the simulator log below, or run the deck kept at {kept}{hint}",
                              netlist=text, log=log, kept=kept)
    if proc.returncode != 0:
        kept = keep_failed_deck(text)
        raise SimulationError(f"{where}: ngspice -b exited with code {proc.returncode} (got no answer); read the "
                              f"simulator log below, or run the deck kept at {kept}{hint}", netlist=text,
                              log=proc.stderr[-2000:] or log, kept=kept)
    if data_name is not None and data is None:
        raise SimulationError(f"{where}: ngspice wrote no waveforms (got no {data_name}); the transient "
                              "failed: read the simulator log below", netlist=text, log=log)
    return out, data


def _last_time(data: str) -> float | None:
    """The time (s) of the last row of ``wrdata`` text (its first column), or None if there is none to read."""
    rows = data.strip().splitlines()
    try:
        return float(rows[-1].split()[0]) if len(rows) > 1 else None
    except (ValueError, IndexError):
        return None


def dc_point(c: Circuit, controls: np.ndarray, inputs: np.ndarray, *,
             periphery: PeripheryParams = PeripheryParams(), options: SpiceOptions = SpiceOptions()) -> np.ndarray:
    """[N] DC node voltages (V) of the transient's circuit (drivers included) at one data point, by ngspice."""
    text = transient_netlist(c, controls, None, inputs, periphery=periphery, options=options)
    out, _ = _run(text)
    values = {m.group(1).lower(): float(m.group(2)) for m in map(_OP_LINE.match, out.splitlines()) if m}
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
    fixed ``settle.t_stop`` the window doubles until the outputs settle within its first half and every node ends
    it at its DC answer (within its band: an output can stay inside its own band while the network behind it is
    still charging); if they never do, the result has ``settling_time`` and ``energy`` NaN (``settled`` False)
    rather than raising. A window that did not fit skips the doublings its tail says cannot fit either (its
    slowest decay over the second half, extrapolated as one exponential: ``_time_to_band``), so the windows tried
    are those doubling tries, fewer of them.
    """
    before, after = np.asarray(before, float).ravel(), np.asarray(after, float).ravel()
    dc_before = dc_point(c, controls, before, periphery=periphery, options=options)
    dc_after = dc_point(c, controls, after, periphery=periphery, options=options)
    o_before, o_after = c.output_values(dc_before)[0], c.output_values(dc_after)[0]
    tol = np.maximum(settle.rel_tol * np.abs(o_after - o_before), settle.abs_tol)
    node_tol = np.maximum(settle.rel_tol * np.abs(dc_after - dc_before), settle.abs_tol)
    window = settle.t_stop if settle.t_stop is not None else settle.first_window
    longest = settle.first_window * 2 ** settle.max_doublings
    while True:
        t_step = 0.02 * window
        t_stop = t_step + window
        text = transient_netlist(c, controls, before, after, t_step=t_step, t_stop=t_stop, points=settle.points,
                                 capacitances=capacitances, periphery=periphery, options=options)
        _, data = _run(text, "waves.txt", t_stop=t_stop, hint="; and check the timing: and simulator: tolerances")
        time, v, power = _parse_waves(data, c, text)
        outputs = c.output_values(v)
        t_settle = _settling_time(time, outputs, o_after, tol, t_step)
        if not _at_dc(v[-1], dc_after, node_tol):
            t_settle = math.nan
        if settle.t_stop is not None or (math.isfinite(t_settle) and t_settle <= 0.5 * window):
            break
        if window >= longest:
            t_settle = math.nan
            break
        needed = max(2 * _time_to_band(time, np.abs(outputs - o_after) / tol, t_step, window, t_settle),
                     _time_to_band(time, np.abs(v - dc_after) / node_tol, t_step, window))
        # the window doubled until it fit; it now skips the doublings the tail's decay says cannot fit
        window = min(max(2 * window, settle.first_window * 2 ** math.ceil(math.log2(needed / settle.first_window))),
                     longest) if math.isfinite(needed) and needed > 0 else min(2 * window, longest)
    settled_at = t_step + t_settle
    energy = _integral(time, power, t_step, settled_at) if math.isfinite(t_settle) else math.nan
    return StepResponse(time=time, voltages=v, outputs=outputs, supply_power=power, dc_before=dc_before,
                        dc_after=dc_after, tolerance=tol, node_tolerance=node_tol, t_step=t_step,
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
    time, v, v_src, i_src = np.split(table, np.cumsum([1, c.n_nodes, n_src]), axis=1)
    # ngspice's branch current flows into the source's + terminal from the circuit: delivered power is -V I.
    # Copies, not views: a view would keep the whole table (the drivers' columns too) alive with every step kept
    return time[:, 0].copy(), v.copy(), -(v_src * i_src).sum(axis=1)


def _time_to_band(time: np.ndarray, err: np.ndarray, t_step: float, window: float, measured: float = 0.0) -> float:
    """Seconds after ``t_step`` at which the errors ``err`` [T, K] (each in units of its band) are all within 1. When
    they are at the window's end: ``measured`` (the entry the caller measured) if finite, else 0; when they are not:
    extrapolated from the decay of the largest over the window's second half as one exponential (NaN when it did
    not decay there)."""
    worst = err.max(axis=1)
    if worst[-1] <= 1:
        return measured if math.isfinite(measured) else 0.0
    mid = float(np.interp(t_step + 0.5 * window, time, worst))
    if not mid > worst[-1]:
        return math.nan
    tau = 0.5 * window / math.log(mid / worst[-1])
    return window + tau * math.log(worst[-1])


def _at_dc(end: np.ndarray, dc: np.ndarray, tol: np.ndarray) -> bool:
    """Whether the node voltages ``end`` [N] (V) are within ``tol`` [N] of the DC answer ``dc`` [N]."""
    return bool(np.all(np.abs(end - dc) <= tol))


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
