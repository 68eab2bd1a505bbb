"""Power at the operating point and the cost of learning: pure functions over solved states.

A reporting stage of the flow (solve -> learn -> report); it reads node voltages a solver produced and never
imports a simulator. Two parts (docs/physics.md, section 8):

* **Operating-point power.** Per transistor P = I_DS V_DS (>= 0: the channel current flows from the higher node to
  the lower) plus the two bulk-junction terms I_j(V) V of its terminals (body at 0 V), which is what ngspice
  reports as the device's power (``@m<name>[p]``, the sum over terminals of current times voltage). For resistor
  and potentiometer edges P = G dV^2. ``power_report`` gives it per data point and per edge for the free and the
  clamped twin, with the totals.
* **Learning hardware.** One update charges each gate capacitor C through R for t_learn with a drive
  V_R = gain U independent of V_G (docs/physics.md, section 3.5): charge Q = C dV_G, heat in R
  Q^2 R / t_learn (constant current over the window), change of stored energy C V_G dV_G + C dV_G^2 / 2.
  Time is counted per learning window: every presented point whose contrast is applied closes the switch once,
  so a full-batch step over P active points takes P windows, not one. ``learning_band`` spans the uncertain
  constants (gate capacitor, the multiplier's effective gain) at a fixed learning rate alpha/eta and says which
  one moves the answer most.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .circuit import Circuit, check_state, edge_leaks
from .errors import ValidationError, whole_number
from .learning.gates import HardwareParams
from .mos import junction_current

#: the band of gate capacitors (F) the learning-time claims are reported over (docs/physics.md, section 8.3)
CAPACITOR_BAND = (0.47e-6, 2.2e-6)
#: the band of the multiplier's effective gain (1/V): the nominal 1/10 halved and doubled, our assumption
GAIN_BAND = (0.05, 0.2)
#: the effective gain (1/V) as the authors' code reads (docs/hardware.md section 3, **Rate**): 2.43 /V from its
#: own predicted update (E2 ``getTrainUpdate``), 12.1 /V if the multiplier's 1/10 acts on the x11-amplified drops
CODE_GAIN_BAND = (2.43, 12.1)


# -- operating-point power ------------------------------------------------------------------------------------
def transistor_power(c: Circuit, controls: np.ndarray, voltages: np.ndarray, twin: int = 0) -> np.ndarray:
    """[B, E] power (W) dissipated by each edge's device at the node voltages [B, N] (V).

    Transistors: I_DS |V_a - V_b| + I_j(V_a - V_B) (V_a - V_B) + I_j(V_b - V_B) (V_b - V_B) (the first term includes
    what series drain and source resistances dissipate), with I_j the bulk-junction current of one terminal
    (``mos.junction_current``, gmin included) and V_B the body (0 V, or the node it is tied to); ``twin`` (0 free,
    1 clamped) picks the mismatch. Behind series resistances the junctions sit at the internal nodes, inside the
    law's terminal currents: I_b (V_a - V_b) + I_leak V_a with the body grounded (``circuit.edge_leaks``: the
    junctions' current leaves a at V_a for ground), I_b (V_a - V_b) with it tied to a.
    Linear edges: I (V_a - V_b). ``controls`` is [E] or [B, E] as in ``circuit.edge_currents``.
    """
    controls, v = check_state(c, controls, voltages, twin, "energy.transistor_power")
    drop = v[:, c.edges[:, 0]] - v[:, c.edges[:, 1]]
    current, leak = edge_leaks(c, controls, v, twin)
    power = current * drop
    if leak is not None:  # behind series resistances the law carries its junctions: the leak leaves a to ground
        power = power + leak * v[:, c.edges[:, 0]]
    elif c.device.bulk_junctions and not (c.device.rd or c.device.rs):
        vbody = 0.0 if c.body is None else v[:, c.body]  # grounded, or tied to a node (``Circuit.body``)
        for end in (0, 1):
            over = v[:, c.edges[:, end]] - vbody
            i_out, _ = junction_current(c.law, over, c.gmin, c.thermal_voltage)  # out of the terminal into the body
            power = power + i_out * over
    return power


@dataclass(frozen=True)
class PowerReport:
    """Operating-point power of a batch of data points.

    Attributes:
        free: [B, E] power (W) of each free-twin transistor. clamped: [B, E] of the clamped twin, or None.
    """

    free: np.ndarray
    clamped: np.ndarray | None = None

    @property
    def total_free(self) -> np.ndarray:
        """[B] power (W) of the free network per data point."""
        return self.free.sum(axis=1)

    @property
    def total_clamped(self) -> np.ndarray | None:
        return None if self.clamped is None else self.clamped.sum(axis=1)

    @property
    def total(self) -> np.ndarray:
        """[B] power (W) of both twins per data point (the free twin alone when no clamped state is given)."""
        return self.total_free if self.clamped is None else self.total_free + self.total_clamped

    def summary(self) -> dict[str, float]:
        """Median and max power per transistor over every edge and point of the free twin (W), the network's
        median total (W), and the same for the clamped twin when given."""
        out = {"free_median_w": float(np.median(self.free)), "free_max_w": float(self.free.max()),
               "free_total_median_w": float(np.median(self.total_free))}
        if self.clamped is not None:
            out.update(clamped_median_w=float(np.median(self.clamped)), clamped_max_w=float(self.clamped.max()),
                       clamped_total_median_w=float(np.median(self.total_clamped)))
        return out


def power_report(c: Circuit, controls: np.ndarray, free: np.ndarray, clamped: np.ndarray | None = None) -> PowerReport:
    """``PowerReport`` from solved node voltages: ``free`` [B, N] and optionally ``clamped`` [B, N] (V)."""
    p_clamped = None if clamped is None else transistor_power(c, controls, clamped, twin=1)
    return PowerReport(free=transistor_power(c, controls, free, twin=0), clamped=p_clamped)


# -- learning hardware --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UpdateCost:
    """What one learning window costs on the gate capacitors.

    Attributes:
        charge: [E] charge (C) moved onto each gate capacitor, C dV_G (signed).
        dissipated: heat (J) in the charging resistors, sum of Q^2 R / t_learn.
        stored: change (J) of the energy held by the capacitors, sum of C V_G dV_G + C dV_G^2 / 2 (signed).
    """

    charge: np.ndarray
    dissipated: float
    stored: float

    @property
    def total_charge(self) -> float:
        """Sum of |Q| (C) over the edges."""
        return float(np.abs(self.charge).sum())


def update_cost(before: np.ndarray, after: np.ndarray, hardware: HardwareParams) -> UpdateCost:
    """``UpdateCost`` of moving the gates from ``before`` to ``after`` ([E] V) in one window of ``hardware``, the
    charging current taken as constant over the window (an integrating drive across R, docs/physics.md section
    3.5). The heat in R is the charging circuit's alone: the twin networks dissipate far more over the same time
    (their power times the learning time, docs/physics.md 8.3)."""
    before, after = np.asarray(before, float), np.asarray(after, float)
    if before.shape != after.shape:
        raise ValidationError(f"energy.update_cost: before and after must have one shape (got {before.shape} and "
                              f"{after.shape}); pass the gate voltages [E] of one network")
    dv = after - before
    q = hardware.capacitance * dv
    return UpdateCost(charge=q, dissipated=float((q**2).sum() * hardware.resistance / hardware.t_learn),
                      stored=float((hardware.capacitance * (before * dv + 0.5 * dv**2)).sum()))


@dataclass(frozen=True)
class LearningClock:
    """Time of a training run on the hardware, counted per learning window.

    Attributes:
        windows: learning windows (presented points whose contrast was applied).
        presentations: points presented (each takes a slot, ``HardwareParams.slot``: the twins settle, then the
            window, its switch closed or not).
        t_learn: switch time per window (s). t_settle: settle per presented point, both twins side by side (s).
    """

    windows: int
    presentations: int
    t_learn: float
    t_settle: float

    @property
    def learning_time(self) -> float:
        """Cumulative switch-on time (s): the paper's clock for "retrainable in seconds"."""
        return self.windows * self.t_learn

    @property
    def hardware_time(self) -> float:
        """One slot per presented point (s): t_settle + t_learn each."""
        return self.presentations * (self.t_settle + self.t_learn)


def learning_clock(windows: int, presentations: int, hardware: HardwareParams) -> LearningClock:
    """``LearningClock`` of ``windows`` learning windows over ``presentations`` presented points on ``hardware``."""
    # counts: 10.5 windows were 10 without a word
    windows = whole_number(windows, "energy.learning_clock", "windows", "give a count of windows as an int")
    presentations = whole_number(presentations, "energy.learning_clock", "presentations", "give a count as an int")
    if not (0 <= windows <= presentations):
        raise ValidationError(f"energy.learning_clock: need 0 <= windows <= presentations (got windows={windows}, "
                              f"presentations={presentations}); count one window per applied point")
    return LearningClock(windows, presentations, hardware.t_learn, hardware.t_settle)


@dataclass(frozen=True)
class BandCorner:
    """One corner of the band: constants, the switch time they need for the rate, and what a run costs."""

    capacitance: float
    gain: float
    t_learn: float
    learning_time: float
    dissipated: float
    stored: float


@dataclass(frozen=True)
class LearningBand:
    """A training run's learning time and energy over the uncertain constants, at a fixed rate alpha/eta.

    Attributes:
        corners: every (capacitance, gain) pair of the band. nominal: the run's own hardware.
        spans: max/min ratio of the learning time when only that constant moves over its band (the other at its
            nominal value): ``{"capacitance": ..., "gain": ...}``. dominant: the constant with the larger span.
    """

    corners: tuple[BandCorner, ...]
    nominal: BandCorner
    spans: dict[str, float]
    dominant: str

    def range(self, field: str) -> tuple[float, float]:
        """(min, max) of a ``BandCorner`` field over the corners."""
        values = [getattr(k, field) for k in self.corners]
        return min(values), max(values)


def time_band(rate: float, windows: float, hardware: HardwareParams, capacitances: tuple[float, float] = CAPACITOR_BAND,
              gains: tuple[float, float] = GAIN_BAND) -> tuple[float, float]:
    """(min, max) learning time (s) of ``windows`` learning windows at alpha/eta = ``rate`` (1/V) over a band of gate
    capacitors (F) and effective gains (1/V): windows x t_learn with t_learn = (alpha/eta) R C / gain."""
    per_window = windows * rate * hardware.resistance
    return per_window * min(capacitances) / max(gains), per_window * max(capacitances) / min(gains)


def learning_band(rate: float, windows: int, gate_steps: np.ndarray, gates: np.ndarray, hardware: HardwareParams,
                  capacitances: tuple[float, float] = CAPACITOR_BAND,
                  gains: tuple[float, float] = GAIN_BAND) -> LearningBand:
    """Learning time and charging energy of a run over the band of gate capacitors and multiplier gains.

    At a fixed alpha/eta the switch time is t_learn = (alpha/eta) R C / gain (docs/physics.md, section 3.5), so
    the learning time windows x t_learn scales with C / gain; the heat in R per window is
    (C dV)^2 R / t_learn = C dV^2 gain / (alpha/eta) and the stored energy scales with C.

    Args:
        rate: alpha/eta (1/V). windows: learning windows of the run.
        gate_steps: [W, E] gate change (V) of each window (or a representative sample of windows; the energies
            are scaled to ``windows``). gates: [W, E] gate voltages (V) before each of those windows.
    """
    if not (math.isfinite(rate) and rate > 0):
        raise ValidationError(f"energy.learning_band: rate must be positive (got {rate!r}); pass alpha/eta in 1/V")
    gate_steps, gates = np.atleast_2d(gate_steps), np.atleast_2d(gates)
    if gate_steps.shape != gates.shape:
        raise ValidationError(f"energy.learning_band: gate_steps and gates must have one shape (got "
                              f"{gate_steps.shape} and {gates.shape}); pass [W, E] arrays")
    for name, (lo, hi) in (("capacitances", capacitances), ("gains", gains)):
        if not (0 < lo <= hi and math.isfinite(hi)):
            raise ValidationError(f"energy.learning_band: {name} must be (low, high) with 0 < low <= high (got "
                                  f"({lo!r}, {hi!r})); give a positive band")
    scale = windows / max(len(gate_steps), 1)
    sum_dv2 = float((gate_steps**2).sum())
    sum_vdv = float((gates * gate_steps + 0.5 * gate_steps**2).sum())

    def corner(cap: float, gain: float) -> BandCorner:
        t_learn = rate * hardware.resistance * cap / gain
        return BandCorner(cap, gain, t_learn, windows * t_learn, scale * cap * sum_dv2 * gain / rate,
                          scale * cap * sum_vdv)

    corners = tuple(corner(cap, gain) for cap in capacitances for gain in gains)
    nominal = corner(hardware.capacitance, hardware.gain)
    spans = {"capacitance": max(capacitances) / min(capacitances), "gain": max(gains) / min(gains)}
    return LearningBand(corners, nominal, spans, max(spans, key=spans.get))
