"""The time scale of an inference: device capacitances, the periphery around the network, and when an output counts
as settled. Pure parameter values (SI units) with the defaults of docs/physics.md, section 8.2; the config's
``timing:`` section is built from them and ``transient`` writes them into its netlists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ValidationError, shown
from .netlist import num

#: transient sample points per window (ngspice's largest step is the window over this)
DEFAULT_POINTS = 4000


@dataclass(frozen=True)
class MosCapacitances:
    """Capacitances of one edge transistor (F), written into its level-1 model card.

    ``cgs``, ``cgd``: gate-source and gate-drain capacitance (ngspice ``cgso``/``cgdo`` are these per metre of
    width); ``cgb``: gate-bulk (``cgbo`` per metre of length); ``cbd``, ``cbs``: zero-bias bulk-junction
    capacitances of drain and source, which fall with reverse bias as (1 + V_R / pb)^-mj.
    The defaults are the ``ald1106`` preset of docs/physics.md, section 8.2, where each number's source is given.
    """

    # Source of the defaults: the ALD1106 level-1 card of the University of Maine's ECE 343 model library
    # (umaine.lib, its values attributed to the data sheets): CGSO = CGDO = 0.1p, CBD = CBS = 0.5p, no CGBO,
    # PB, MJ. Reading its 0.1p as a per-device capacitance (ngspice would read F per metre of width, 2 aF at its
    # W = 20 um) is ours. The third-party ALD1106 card (github Ma-Lab-Cal/pyclln) gives no capacitance at all.
    cgs: float = 0.1e-12
    cgd: float = 0.1e-12
    cgb: float = 0.0     # not in either card: ngspice's default cgbo
    cbd: float = 0.5e-12
    cbs: float = 0.5e-12
    pb: float = 0.8      # not in either card: ngspice's default
    mj: float = 0.5      # not in either card: ngspice's default

    def __post_init__(self) -> None:
        for name in ("cgs", "cgd", "cgb", "cbd", "cbs"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0 <= v < 1e-6):
                raise ValidationError(f"MosCapacitances.{name}: must be in [0, 1e-6) F (got {v!r}); give farads, "
                                      "e.g. 0.5e-12")
        if not (math.isfinite(self.pb) and self.pb > 0) or not (0 < self.mj < 1):
            raise ValidationError(f"MosCapacitances: need pb > 0 and 0 < mj < 1 (got pb={self.pb!r}, "
                                  f"mj={shown(self.mj)}); use e.g. pb=0.8, mj=0.5")

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



#: the shortest sample step of a transient (s, window / points): ngspice stopped with "Timestep too small" at its
#: first steps at 5e-15 s in 4,000 samples and 1e-15 s in 1,000 (not at 5e-15 s in 200), and ran at 1e-14 s and up
#: in 200 to 4,000 (measured 2026-12-03 on XOR, ngspice 46); the commands reported a failed simulation
MIN_SAMPLE_STEP = 1e-14


def check_window(window: float, points: int) -> str | None:
    """What is wrong with a transient ``window`` (s) sampled at ``points``, or None: a sample step ngspice
    cannot take (``MIN_SAMPLE_STEP``)."""
    if window / points >= MIN_SAMPLE_STEP:
        return None
    return (f"a window of {window:g} s in {points} samples steps {window / points:.2g} s, under the "
            f"{MIN_SAMPLE_STEP:g} s ngspice can step ('Timestep too small'); give a window of at least "
            f"{points * MIN_SAMPLE_STEP:g} s, or fewer points")

@dataclass(frozen=True)
class SettleParams:
    """When an output counts as settled, and how the transient is run.

    An output o is settled once |O(t) - O_dc| <= max(rel_tol |O_dc - O_before|, abs_tol) for good, O_dc the
    DC answer at the new data point and O_before the output before the step. The step counts as settled only if,
    besides, every node n ends the window with |V_n - V_n,dc| <= max(rel_tol |V_n,dc - V_n,before|, abs_tol), the
    same band on its own step: an output whose step is under ``abs_tol`` never leaves its band, and would count as
    settled at once while the network behind it still charges (driver resistances of 1 Mohm on XOR: every node
    0.11 V from its DC answer at the end of a 1 us window, the output's own step 9 uV).

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
                                  f"{shown(self.rel_tol)}, abs_tol={shown(self.abs_tol)}); e.g. rel_tol=0.01, "
                                  "abs_tol=1e-4")
        for name in ("t_stop", "first_window"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValidationError(f"SettleParams.{name}: must be > 0 s (got {v!r})")
        if self.points < 100:
            raise ValidationError(f"SettleParams.points: must be >= 100 (got {shown(self.points)})")
        for name in ("t_stop", "first_window"):
            v = getattr(self, name)
            problem = None if v is None else check_window(v, self.points)
            if problem:
                raise ValidationError(f"SettleParams.{name}, SettleParams.points: {problem}")
