"""Edge learning state: how each edge's control (gate voltage, conductance or tap) changes and is bounded.

The gate capacitor is real state: each update charges it through the learning switch for ``t_learn``,
dV_G = gain * t_learn / (R C) * U (docs/physics.md, section 3.5), so a rate alpha/eta corresponds to a switch time
t_learn = (alpha/eta) R C / gain. Gates are clipped to [low, high] and may leak toward a rest voltage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import ValidationError, check_numbers, real_array, shown


@dataclass(frozen=True)
class HardwareParams:
    """The gate-capacitor charging circuit. SI units.

    Attributes:
        capacitance: gate capacitor C (F). resistance: charging resistor R (ohm).
        t_learn: learning-switch on time per update (s). gain: multiplier gain (the 1/10; docs/physics.md 3.5).
        t_settle: time for the twins to settle before the contrast is read (s), per presented point: the free and
            clamped twins settle side by side, the clamp following the free output (as ``learning_hardware``'s
            transient runs them).
    """

    capacitance: float = 2.2e-6
    resistance: float = 1e3
    t_learn: float = 100e-6
    gain: float = 0.1
    t_settle: float = 10e-6

    def __post_init__(self) -> None:
        check_numbers(self)
        for name in ("capacitance", "resistance", "t_learn", "gain"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValidationError(f"HardwareParams.{name}: must be positive and finite (got {v!r})")
        if not (math.isfinite(self.t_settle) and self.t_settle >= 0):
            raise ValidationError(f"HardwareParams.t_settle: must be >= 0 (got {self.t_settle!r})")

    @property
    def rate(self) -> float:
        """alpha/eta (1/V) this hardware realises: gain t_learn / (R C)."""
        return self.gain * self.t_learn / (self.resistance * self.capacitance)

    @property
    def slot(self) -> float:
        """Seconds of one presented point on the hardware: the twins settle, then the learning window, whether or
        not its switch closes (the slot of ``learning_hardware``'s transient, ``StepPlan.period``, less its input
        rise and the switch's edges)."""
        return self.t_settle + self.t_learn

    def t_learn_for(self, rate: float) -> float:
        """Switch time (s) that realises a given alpha/eta with this R, C and gain."""
        return rate * self.resistance * self.capacitance / self.gain


@dataclass(frozen=True)
class EdgeDynamics:
    """How controls move: ``"continuous"`` (gate voltage or conductance += rate U) or ``"sign"``
    (potentiometer: one tap in the direction of U), then clipped to [low, high], then optional leak.

    Attributes:
        leak_tau: time constant (s) of relaxation toward ``rest`` between updates, or None for no leak.
        bias: [E] constant offset (control units) each edge adds to every update it applies (a learning bias,
            e.g. an amplifier offset; Dillavou, Guzman et al. 2025), or None.
        dead_band: |U| (V^2) below which an edge does not update (a comparator threshold); 0 for none.
    """

    kind: str = "continuous"
    low: float = 0.4
    high: float = 8.0
    leak_tau: float | None = None
    rest: float = 0.0
    bias: np.ndarray | None = field(default=None, compare=False)
    dead_band: float = 0.0

    def __post_init__(self) -> None:
        check_numbers(self)
        if self.kind not in ("continuous", "sign"):
            raise ValidationError(f"EdgeDynamics.kind: must be 'continuous' or 'sign' (got {shown(self.kind)})")
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValidationError(f"EdgeDynamics: need low < high (got low={self.low}, high={self.high})")
        if self.leak_tau is not None and not (self.leak_tau > 0):
            raise ValidationError(f"EdgeDynamics.leak_tau: must be > 0 (got {shown(self.leak_tau)})")
        if not (math.isfinite(self.dead_band) and self.dead_band >= 0):
            raise ValidationError(f"EdgeDynamics.dead_band: must be >= 0 V^2 (got {self.dead_band!r})")
        if not math.isfinite(self.rest):  # the leak turned every control into NaN, refused later as the controls'
            raise ValidationError(f"EdgeDynamics.rest: must be finite (got {self.rest!r}); give the value the leak "
                                  "relaxes the controls toward, in their unit")
        if self.bias is not None:  # a list failed in the trainer ('list' object has no attribute 'shape')
            bias = real_array(self.bias, "EdgeDynamics.bias", "", "one offset per edge (control units)",
                              "give a float array [E]", finite="give every edge a finite offset", axes=("edge",),
                              copy=True)
            if bias.ndim != 1:
                raise ValidationError(f"EdgeDynamics.bias: must be one offset per edge, shape [E] (got shape "
                                      f"{bias.shape}); give a float array [E], or None")
            object.__setattr__(self, "bias", bias)
