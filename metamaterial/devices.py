"""Edge devices: the parameter sets of each kind of edge, SI units, and what each kind says about its control.

An edge of the network is one of
  * ``NmosParams``: an NMOS transistor used as a gate-controlled resistor, body to ground, with one of two laws
    (``mos``): ngspice MOS level 1 (Shichman-Hodges, exactly as ngspice's ``mos1load.c`` computes it), or the
    authors' three-regime fit of their transistor (docs/hardware.md);
  * ``ResistorParams``: a linear resistor whose conductance is the learning degree of freedom;
  * ``PotentiometerParams``: a digital potentiometer with N taps, geometrically spaced conductances.

The per-edge learning degree of freedom ("control") is the gate voltage (V) for a transistor, the
conductance (S) for a resistor and the integer tap index for a potentiometer. Each kind says itself what its
control means (unit, label, default range, how it is updated, what the solver sees), so layers above never
switch on the type. The module also owns the transistor presets, process corners, twin mismatch and the devices
built from a user's model card (read by ``cards``); the current laws live in ``mos``, the temperature physics in
``temperature``. It sits at the bottom of the flow, above those two and ``cards``: graph -> circuit ->
netlist/solver all read it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import ClassVar

import numpy as np

from .cards import IDENTIFIER, card_with, comment_text, load_model_card, num, parse_model_card
from .errors import ConfigError, ValidationError, check_numbers, first_bad, real_array, shown, whole_number
from .mos import MosCurrents, nmos_current, series_current, three_regime_current
from .temperature import KELVIN, NOMINAL_CELSIUS, THERMAL_VOLTAGE, band_gap, phi_shift, thermal_voltage

#: the smallest nonzero series resistance (ohm) of a level-1 transistor (``NmosParams.rd``, ``rs``): ngspice's answer
#: moves by ~1e-13 V ohm / R (1e-7 V at 1e-6 ohm, 1e-10 V at 1e-3 ohm, measured on the 4x4 XOR), and from ~1e-7 ohm
#: down its matrix is singular ("singular matrix", no operating point), while the native solver, whose internal
#: nodes are no unknowns, solves any R; any real contact or diffusion resistance is ohms
SERIES_MIN_OHMS = 1e-3


#: the transistor laws ``NmosParams.law`` names
LEVEL1, THREE_REGIME = "level1", "three-regime"
LAWS = (LEVEL1, THREE_REGIME)


class EdgeDevice(ABC):
    """What an edge kind says about its control; the kinds below are frozen dataclasses over it.

    ``control_unit`` ("V", "S" or "tap") and ``control_label`` name the control; ``update_kind`` is
    "continuous" (a rate times the contrast) or "sign" (one step of fixed size per update); ``discrete`` controls
    are integers; ``rate_unit`` is the unit of the learning rate ("" when there is none).
    """

    kind: ClassVar[str]
    control_unit: ClassVar[str]
    control_label: ClassVar[str]
    update_kind: ClassVar[str] = "continuous"
    discrete: ClassVar[bool] = False
    rate_unit: ClassVar[str]

    #: what one edge is called in printed text ("per transistor" is wrong of a resistor network)
    edge_noun: ClassVar[str] = "edge"
    #: whether the edge also conducts to ground (a transistor's grounded body), which then acts as a 0 V source
    conducts_to_ground: ClassVar[bool] = False
    #: whether each terminal has a bulk diode to ground (``junction_current``)
    bulk_junctions: ClassVar[bool] = False
    #: whether twin mismatch (``Mismatch``) can be applied to this device
    supports_mismatch: ClassVar[bool] = False
    #: whether the current out of each terminal is known to grow with that terminal's voltage and fall with the
    #: other's (then every node voltage is a non-decreasing function of every source: ``diagnostics``)
    monotone: ClassVar[bool] = True

    def edge_current(self, va: np.ndarray, vb: np.ndarray, controls: np.ndarray, vto: np.ndarray | None = None,
                     beta: np.ndarray | None = None, gmin: float = 1e-12,
                     vbody: np.ndarray | None = None, vt: float = THERMAL_VOLTAGE) -> np.ndarray:
        """Current a -> b (A) through edges with these controls at node voltages va, vb (V), all of one shape;
        ``vto``, ``beta``: per-transistor values under twin mismatch, ``vbody``: body voltages of tied bodies
        (transistors only); ``gmin`` (S) and ``vt`` (kT/q in V) for the bulk junctions, where the current depends on
        them. A linear edge: its conductance times the drop."""
        return self.conductance(controls) * (va - vb)

    def conductance(self, controls: np.ndarray) -> np.ndarray:
        """Conductance (S) of a linear edge's controls (the controls themselves, unless a kind says otherwise)."""
        return np.asarray(controls, float)

    def mismatch_refusal(self, where: str) -> str:
        """Why this device cannot take twin mismatch, as an error message naming ``where``."""
        return (f"{where}: twin mismatch shifts transistors, and a {self.kind} network has none (got device.kind="
                f"{self.kind}); remove device.mismatch or use device.kind: nmos")

    def default_bounds(self) -> tuple[float, float]:
        """(low, high) the controls are kept in when the configuration gives no bounds."""
        return self._physical_range()

    def default_init(self) -> tuple[float, float]:
        """(low, high) of the uniform draw of initial controls."""
        return self.default_bounds()

    def check_bounds(self, low: float, high: float, where: str, kind: str | None = None) -> None:
        """Raise ``ConfigError`` unless low < high are finite and inside the kind's physical range; ``where`` names
        the bounds, and ``kind`` (if given) the key that chose the device, which a range refusal names too."""
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ConfigError(f"{where}: must be two finite numbers with low < high (got [{low!r}, {high!r}]); "
                              "give [low, high]")
        lo, hi = self._physical_range()
        if low < lo or high > hi:
            raise ConfigError(f"{where}{', ' + kind if kind else ''}: {self.kind} controls must lie in [{lo:g}, "
                              f"{hi:g}] {self.control_unit} (got [{low:g}, {high:g}]); {self._range_hint}")

    def edge_controls(self, controls: np.ndarray) -> np.ndarray:
        """What the solver sees per edge (gate voltage in V or conductance in S) for controls of any shape."""
        return controls

    def check_controls(self, controls: np.ndarray) -> None:  # noqa: B027 (an optional check: none by default)
        """Refuse controls this kind cannot be solved with (checked by ``solve`` on either backend); none by
        default."""

    def at_corner(self, corner: ProcessCorner) -> EdgeDevice:
        """The device at process corner ``corner``. A kind without transistors has no corners: it is itself at the
        typical one and refuses any other (``ValidationError``)."""
        if corner.is_typical:
            return self
        raise ValidationError(f"device.corner: a {self.kind} network has no transistors whose V_T and K a process "
                              f"corner shifts (got device.corner={corner.name} with device.kind={self.kind}); remove "
                              "device.corner or use device.kind: nmos")

    def at_temperature(self, celsius: float) -> EdgeDevice:
        """The device as its law sees it at circuit temperature ``celsius`` (C). A kind without a temperature model
        is itself at the nominal 27 C and refuses any other temperature (``ValidationError``), so that a run never
        claims a temperature it did not simulate."""
        if celsius == NOMINAL_CELSIUS:
            return self
        raise ValidationError(f"simulator.temperature: a {self.kind} edge has no temperature model in either backend "
                              f"(got {celsius:g} C with device.kind={self.kind}); leave simulator.temperature at "
                              f"{NOMINAL_CELSIUS:g} or use a level-1 transistor (device.kind: nmos, preset ald1106-fit "
                              "or ald1106-l1)")

    @abstractmethod
    def _physical_range(self) -> tuple[float, float]:
        """(low, high) any control of this kind can take."""

    _range_hint: ClassVar[str] = ""


@dataclass(frozen=True)
class NmosParams(EdgeDevice):
    """NMOS parameters (ngspice names, SI units) and the law the transistor follows.

    K = kp * w / (l - 2 ld) is the transconductance factor of the ohmic law
    I = K (V_G - V_T - Vbar)(V_a - V_b)(1 + lambda |V_ab|), Vbar the mean terminal voltage.
    ``law`` is ``"level1"`` (ngspice MOS level 1, ``nmos_current``, with bulk junctions) or ``"three-regime"``
    (the authors' fit, ``three_regime_current``: subthreshold ``sub_decade`` V/decade below V_T + ``sub_join``,
    no body effect, no lambda, no bulk junctions; netlists write it as a behavioural source).
    ``model_card`` is the text of a user-supplied ``.model`` card (``nmos_from_card``); when set, the netlist
    uses it verbatim, the DC fields must be the card's values (``parse_model_card``), and the analytic law is
    available only if the card is level 1.
    ``rd`` and ``rs`` (ohm, level 1 only) are the series resistances of the transistor's drain and source, in a
    netlist the edge's first and second node: the channel then sees its terminals through them, and the bulk
    junctions sit at the internal nodes between (``series_current``). 0 (the default) is none, and the law is
    ``nmos_current`` itself; a nonzero one is at least ``SERIES_MIN_OHMS``.
    """

    vto: float = 0.62
    kp: float = 8.5e-4
    w: float = 10e-6
    l: float = 10e-6
    lambda_: float = 0.02
    gamma: float = 0.0
    phi: float = 0.6
    ld: float = 0.0
    is_: float = 1e-14
    name: str = "ald1106-fit"
    model_card: str | None = None
    model_name: str = "nmos_edge"
    law: str = LEVEL1
    sub_join: float = 0.096
    sub_decade: float = 0.1
    rd: float = 0.0
    rs: float = 0.0

    kind = "nmos"
    edge_noun = "transistor"
    control_unit = "V"
    control_label = "gate voltage (V)"
    rate_unit = "1/V"

    def __post_init__(self) -> None:
        check_numbers(self)
        for attr in ("kp", "w", "l", "phi"):
            value = getattr(self, attr)
            if not (math.isfinite(value) and value > 0):
                raise ValidationError(f"NmosParams.{attr}: must be a positive finite number (got {value!r})")
        for attr in ("vto", "lambda_", "gamma", "ld", "is_", "rd", "rs"):
            value = getattr(self, attr)
            if not math.isfinite(value):
                raise ValidationError(f"NmosParams.{attr}: must be finite (got {value!r})")
        if self.lambda_ < 0 or self.gamma < 0 or self.is_ < 0 or self.ld < 0:
            raise ValidationError("NmosParams: lambda_, gamma, is_ and ld must be >= 0")
        if self.rd < 0 or self.rs < 0:
            raise ValidationError(f"NmosParams: the series resistances rd and rs must be >= 0 ohm (got rd={self.rd!r}, "
                                  f"rs={self.rs!r}); give 0 for none")
        for attr in ("rd", "rs"):
            value = getattr(self, attr)
            if 0 < value < SERIES_MIN_OHMS:
                raise ValidationError(f"device.params.{attr} (or a model card's {attr.upper()} or RSH): "
                                      f"{value!r} ohm is below {SERIES_MIN_OHMS!r} ohm; use 0 for no series resistance "
                                      f"(smaller values cost ngspice digits, and below ~1e-7 ohm make its matrix "
                                      f"singular)")
        if self.l - 2 * self.ld <= 0:
            raise ValidationError(f"NmosParams.ld: effective length l - 2 ld must be > 0 "
                                  f"(got l={self.l}, ld={self.ld})")
        if not IDENTIFIER.match(self.model_name):
            raise ValidationError(f"NmosParams.model_name: must match {IDENTIFIER.pattern} (got "
                                  f"{shown(self.model_name)})")
        if self.law not in LAWS:
            raise ValidationError(f"NmosParams.law: must be one of {', '.join(LAWS)} (got {shown(self.law)})")
        if self.law == THREE_REGIME:
            if self.model_card is not None or self.gamma != 0 or self.lambda_ != 0 or self.rd != 0 or self.rs != 0:
                raise ValidationError(f"NmosParams: the {THREE_REGIME} law has no model card, body effect, lambda or "
                                      f"series resistances (got model card {self.model_card is not None}, "
                                      f"gamma={self.gamma!r}, lambda={self.lambda_!r}, rd={self.rd!r}, rs={self.rs!r});"
                                      " leave device.params.gamma, lambda, rd and rs unset")
            for attr in ("sub_join", "sub_decade"):
                value = getattr(self, attr)
                if not (math.isfinite(value) and value > 0):
                    raise ValidationError(f"NmosParams.{attr}: must be a positive finite number (got {value!r})")
        if self.model_card is not None:  # the fields are the card's values: the law and ngspice then agree
            card = parse_model_card(self.model_card, "NmosParams.model_card")
            if card.name != self.model_name:
                raise ValidationError(f"NmosParams.model_name: must be the card's model name (got "
                                      f"{shown(self.model_name)}, card {shown(card.name)}); build it with "
                                      "nmos_from_card")
            for attr, value in card.nmos_values().items():
                if getattr(self, attr) != value:
                    raise ValidationError(f"NmosParams.{attr}: must equal the model card's value (got "
                                          f"{getattr(self, attr)!r}, card {value!r}); build it with nmos_from_card")

    @property
    def beta(self) -> float:
        """K = kp w / l_eff in A/V^2."""
        return self.kp * self.w / (self.l - 2 * self.ld)

    @property
    def supports_mismatch(self) -> bool:  # type: ignore[override]
        """A built-in preset or a level-1 card: V_T is shifted in a card per transistor, K scaled through the width
        (exact at level 1, K = kp W / (L - 2 LD)); a level-2 or 3 card is refused (``mismatch_refusal``)."""
        return card_level(self) == 1

    def mismatch_refusal(self, where: str) -> str:
        return (f"{where}: a level-{card_level(self)} model card (device.model_file) cannot be mismatched exactly (K "
                "scales with the width only at level 1, and the native backend reads level 1 only); use a level-1 "
                "card or remove device.mismatch")

    def mismatch_card(self, model_name: str, vto: float) -> str:
        """The ``.model`` card of one mismatched transistor: this device's card (preset or user card, every
        parameter as given) named ``model_name``, with threshold ``vto`` (V)."""
        if self.model_card is None:
            return replace(self, vto=vto, model_name=model_name).model_text()
        return card_with(self.model_card, model_name, vto=vto)

    def at_corner(self, corner: ProcessCorner) -> NmosParams:
        """This transistor at process corner ``corner``, named ``<name>:<corner>``. A level-1 user card is rewritten
        with the corner's vto and kp (every other parameter as given), so that the netlist carries the corner; a
        level-2 or 3 card is refused (kp and vto are not the whole of K and V_T there)."""
        if corner.is_typical:
            return self
        vto, kp, name = self.vto + corner.vto_shift, self.kp * corner.k_scale, f"{self.name}:{corner.name}"
        if self.model_card is None:
            return replace(self, vto=vto, kp=kp, name=name)
        if card_level(self) != 1:
            raise ValidationError(f"device.corner: a level-{card_level(self)} model card cannot be moved to a corner "
                                  f"by V_T and K alone (got device.corner={corner.name}); use a level-1 card, or give "
                                  "each corner its own device.model_file")
        return replace(self, vto=vto, kp=kp, name=name,
                       model_card=card_with(self.model_card, self.model_name, vto=vto, kp=kp))

    @property
    def bulk_junctions(self) -> bool:
        """Whether each terminal has a bulk diode to the grounded body (level 1 does; the three-regime law not)."""
        return self.law == LEVEL1

    def edge_current(self, va: np.ndarray, vb: np.ndarray, controls: np.ndarray, vto: np.ndarray | None = None,
                     beta: np.ndarray | None = None, gmin: float = 1e-12,
                     vbody: np.ndarray | None = None, vt: float = THERMAL_VOLTAGE) -> np.ndarray:
        return self.channel_current(va, vb, controls, vto, beta, gmin, vbody, vt).current

    def channel_current(self, va: np.ndarray, vb: np.ndarray, vg: np.ndarray, vto: np.ndarray | float | None = None,
                        beta: np.ndarray | float | None = None, gmin: float = 1e-12,
                        vbody: np.ndarray | None = None, vt: float = THERMAL_VOLTAGE) -> MosCurrents:
        """Current a -> b (A) and its derivatives, by this transistor's law (``nmos_current``; ``series_current``
        when it has series resistances, which carries the bulk junctions at its internal nodes, at ``gmin`` (S) and
        kT/q ``vt`` (V): its ``current`` is the current into b, its ``leak`` what of a's current goes to a grounded
        body; or ``three_regime_current``, with its ``gmin`` across the channel). ``vbody``: body voltages (V) of
        level-1 transistors whose body is tied to a node (None: grounded); with series resistances the body must be
        terminal a (``vbody`` equal to ``va``)."""
        if self.law == THREE_REGIME:
            return three_regime_current(self, va, vb, vg, vto, beta, gmin)
        if self.rd or self.rs:
            return series_current(self, va, vb, vg, vto, beta, gmin, vt, vbody)
        return nmos_current(self, va, vb, vg, vto, beta, vbody)

    def at_temperature(self, celsius: float) -> NmosParams:
        """This level-1 transistor's law at circuit temperature ``celsius`` (C), its parameters given at the nominal
        27 C (ngspice's ``mos1temp.c``, the SPICE level-1 temperature equations; T in K, T_0 = 300.15 K):

          kp(T) = kp (T/T_0)^-1.5                              (mobility)
          phi(T) = (T/T_0) phi - 2 V_t(T) [1.5 ln(T/T_0) + q a(T)] + (T/T_0) 2 V_t(T_0) q a(T_0)
          vbi(T) = vto - gamma sqrt(phi) + (E_g(T_0) - E_g(T))/2 + (phi(T) - phi)/2
          vto(T) = vbi(T) + gamma sqrt(phi(T))
          is(T) = is exp(E_g(T_0)/V_t(T_0) - E_g(T)/V_t(T))   (bulk junctions, whose V_t is kT/q at T too)

        with the silicon band gap E_g(T) = 1.16 - 7.02e-4 T^2 / (T + 1108) (eV) and
        a(T) = -E_g(T) / (2 k T) + 1.1150877 / (2 k T_0). Mismatch and process corners shift the nominal vto
        and scale the nominal K, so they carry over unchanged. The result is for the analytic law and the native
        solver (``model_card`` cleared); netlists keep the nominal card and tell ngspice the temperature, which
        applies the same equations. The three-regime law (a behavioural source) and level-2 and 3 cards are refused:
        the first has no temperature model in either backend, the second none the native solver follows.
        """
        if celsius == NOMINAL_CELSIUS:
            return self
        if self.law == THREE_REGIME or card_level(self) != 1:
            what = f"the {THREE_REGIME} law (a behavioural source)" if self.law == THREE_REGIME else \
                f"a level-{card_level(self)} model card"
            raise ValidationError(f"simulator.temperature: {what} has no temperature model both backends follow "
                                  f"(got {celsius:g} C with device {self.name}); leave simulator.temperature at "
                                  f"{NOMINAL_CELSIUS:g} or use a level-1 transistor (preset ald1106-fit or ald1106-l1)")
        t0, t = NOMINAL_CELSIUS + KELVIN, celsius + KELVIN
        ratio = t / t0
        phi = ratio * (self.phi - phi_shift(t0)) + phi_shift(t)
        if not phi > 0:
            raise ValidationError(f"simulator.temperature: the surface potential phi falls to {phi:.3g} V at "
                                  f"{celsius:g} C (phi = {self.phi:g} V at {NOMINAL_CELSIUS:g} C); raise "
                                  "device.params.phi or the temperature")
        gap = 0.5 * (band_gap(t0) - band_gap(t))
        vbi = self.vto - self.gamma * math.sqrt(self.phi) + gap + 0.5 * (phi - self.phi)
        return replace(self, vto=vbi + self.gamma * math.sqrt(phi), kp=self.kp / (ratio * math.sqrt(ratio)), phi=phi,
                       is_=self.is_ * math.exp(band_gap(t0) / thermal_voltage(NOMINAL_CELSIUS)
                                               - band_gap(t) / thermal_voltage(celsius)),
                       model_card=None)

    conducts_to_ground = bulk_junctions  # through the bulk junctions of level 1; the three-regime law has none

    @property
    def monotone(self) -> bool:  # type: ignore[override]
        """True at level 1 (gm, gds, gmbs >= 0 in every region) and for the three-regime law (forward minus reverse
        current of one increasing function); not established for a level-2 or 3 card."""
        return card_level(self) == 1

    def default_bounds(self) -> tuple[float, float]:
        # A reproduction's [0.4, 8] V: below threshold up to well into the ohmic region of the ALD1106 (the
        # authors' hardware floor is 0.75 V: docs/hardware.md section 2).
        return (0.4, 8.0)

    def default_init(self) -> tuple[float, float]:
        return (0.5, 2.0)

    def _physical_range(self) -> tuple[float, float]:
        return (-math.inf, math.inf)  # any gate voltage can be applied

    def model_text(self) -> str:
        """The ``.model`` card this edge uses in netlists."""
        if self.model_card is not None:
            return self.model_card
        if self.law == THREE_REGIME:
            return f"* {self.model_name}: {THREE_REGIME} law, one behavioural current source per transistor"
        series = f" rd={num(self.rd)} rs={num(self.rs)}" if self.rd or self.rs else ""
        return (
            f".model {self.model_name} nmos (level=1 vto={num(self.vto)} kp={num(self.kp)} "
            f"lambda={num(self.lambda_)} gamma={num(self.gamma)} phi={num(self.phi)} "
            f"ld={num(self.ld)} is={num(self.is_)}{series})"
        )


@dataclass(frozen=True)
class ResistorParams(EdgeDevice):
    """A linear resistor edge; the control is its conductance in S, kept in [g_min, g_max]."""

    g_min: float = 1e-5
    g_max: float = 1e-2
    name: str = "resistor"

    kind = "resistor"
    control_unit = "S"
    control_label = "conductance (S)"
    rate_unit = "S/V^2"
    _range_hint = "keep the bounds inside device.g_min and device.g_max"

    def __post_init__(self) -> None:
        check_numbers(self)
        if not (0 < self.g_min < self.g_max and math.isfinite(self.g_max)):
            raise ValidationError(f"ResistorParams: need 0 < g_min < g_max "
                                  f"(got g_min={self.g_min}, g_max={self.g_max})")

    def edge_controls(self, controls: np.ndarray) -> np.ndarray:
        """The conductances themselves (S), which must be > 0 (``check_controls``)."""
        self.check_controls(controls)
        return controls

    def check_controls(self, controls: np.ndarray) -> None:
        """Refuse a conductance <= 0 (a zero conductance leaves nodes floating)."""
        if not np.min(controls) > 0:
            x = np.asarray(controls)
            at, place = first_bad(~(x > 0), ("row", "edge"))  # the first, by its place: the smallest said not where
            raise ValidationError(f"ResistorParams.check_controls: resistor conductances must be > 0 (got "
                                  f"{x[at]:.3g} S{place}); keep the controls inside [g_min, g_max]")

    def _physical_range(self) -> tuple[float, float]:
        return (self.g_min, self.g_max)


@dataclass(frozen=True)
class PotentiometerParams(EdgeDevice):
    """A digital potentiometer edge (first-generation hardware): N taps, geometric spacing.

    Tap n in 0..n_taps-1 has conductance G(n) = (1/r_max) (r_max/r_min)^(n/(n_taps-1)),
    so tap 0 is the most resistive and the top tap the most conductive. Defaults: X9C303, 40 ohm to
    32 kohm, 100 taps.
    """

    r_min: float = 40.0
    r_max: float = 32e3
    n_taps: int = 100
    name: str = "potentiometer"

    kind = "potentiometer"
    control_unit = "tap"
    control_label = "tap"
    update_kind = "sign"  # the hardware steps one tap per update: no rate
    discrete = True
    rate_unit = ""
    _range_hint = "keep the bounds inside 0 and device.n_taps - 1"

    def __post_init__(self) -> None:
        check_numbers(self)
        if not (0 < self.r_min < self.r_max and math.isfinite(self.r_max)):
            raise ValidationError(f"PotentiometerParams: need 0 < r_min < r_max (got {self.r_min}, {self.r_max})")
        whole_number(self.n_taps, "PotentiometerParams.n_taps")  # 100.0 was kept as a float count
        if self.n_taps < 2:
            raise ValidationError(f"PotentiometerParams.n_taps: must be an integer >= 2 (got {shown(self.n_taps)})")

    def conductance(self, taps: np.ndarray) -> np.ndarray:
        """Conductance in S of integer taps (any shape)."""
        frac = np.asarray(taps, dtype=float) / (self.n_taps - 1)
        return (1.0 / self.r_max) * (self.r_max / self.r_min) ** frac

    edge_controls = conductance  # the solver sees each tap's conductance (S)

    def check_controls(self, controls: np.ndarray) -> None:
        """Refuse a tap the potentiometer does not have: a fraction, or one outside 0..n_taps-1, where G(n) would go
        on past r_min or r_max (tap 300 of 100 was solved as a resistance far below r_min)."""
        taps = np.asarray(controls, float)
        bad = (taps != np.round(taps)) | (taps < 0) | (taps > self.n_taps - 1)
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            names = ("row", "edge")[2 - len(at):] if len(at) <= 2 else ()
            place = (" at " + ", ".join(f"{axis} {i}" for axis, i in zip(names, at)) if names else
                     f" at index {at}" if at else "")
            raise ValidationError(f"PotentiometerParams.check_controls: taps must be whole numbers in "
                                  f"0..{self.n_taps - 1} (got {float(taps[at]):g}{place}); give each edge one of "
                                  f"the {self.n_taps} taps (np.round, np.clip)")

    def _physical_range(self) -> tuple[float, float]:
        return (0.0, float(self.n_taps - 1))


EdgeParams = NmosParams | ResistorParams | PotentiometerParams


@dataclass(frozen=True)
class ProcessCorner:
    """A process corner: every transistor's V_T shifted by ``vto_shift`` (V) and its K scaled by ``k_scale``."""

    name: str
    vto_shift: float = 0.0
    k_scale: float = 1.0

    def __post_init__(self) -> None:
        check_numbers(self)
        if not (math.isfinite(self.vto_shift) and math.isfinite(self.k_scale) and self.k_scale > 0):
            raise ValidationError(f"ProcessCorner.{self.name}: vto_shift must be finite and k_scale > 0 (got "
                                  f"{self.vto_shift!r}, {self.k_scale!r})")

    @property
    def is_typical(self) -> bool:
        return self.vto_shift == 0 and self.k_scale == 1


#: the built-in corners (``device.corner``). There is no foundry corner data for this part, and no data-sheet spread
#: was at hand: slow and fast are an **assumption**, V_T +-0.1 V and K -+20 % around the preset, the same order as
#: the spread between the two ALD1106 fits shipped here (V_T 0.62 and 0.75 V). Define other corners under
#: ``device.corners`` in a config.
CORNERS: dict[str, ProcessCorner] = {
    "typical": ProcessCorner("typical"),
    "slow": ProcessCorner("slow", vto_shift=0.1, k_scale=0.8),
    "fast": ProcessCorner("fast", vto_shift=-0.1, k_scale=1.2),
}


@dataclass(frozen=True, eq=False)
class Mismatch:
    """Per-transistor deviations of the twin networks: ``dvto`` [2, E] (V) and ``kscale`` [2, E] (relative K),
    row 0 the free twin's transistor of each edge, row 1 the clamped twin's. Frozen to the last element, as a
    ``Circuit``'s arrays are (draw another to change one)."""

    dvto: np.ndarray
    kscale: np.ndarray

    def __post_init__(self) -> None:
        for name in ("dvto", "kscale"):
            # a copy, read-only: a solver caches what it built from a circuit by its identity, so a shift changed in
            # place reached a new solver and not one that had solved the circuit before
            value = np.array(getattr(self, name))
            value.flags.writeable = False
            object.__setattr__(self, name, value)
        if self.dvto.shape != self.kscale.shape or self.dvto.ndim != 2 or self.dvto.shape[0] != 2:
            raise ValidationError(f"Mismatch: dvto and kscale must both be [2, E] (got {self.dvto.shape}, "
                                  f"{self.kscale.shape})")
        real_array(self.dvto, "Mismatch", "dvto", "V_T shifts (V)", "give a float array [2, E]",
                   finite="give every transistor a finite V_T shift", axes=("twin", "edge"))
        if not np.all(self.kscale > 0):
            at, place = first_bad(~(self.kscale > 0), ("twin", "edge"))
            raise ValidationError(f"Mismatch: kscale must be > 0 (got {self.kscale[at]:g}{place}); give every "
                                  "transistor a relative K > 0")


def draw_mismatch(n_edges: int, vto_sigma: float, k_sigma: float, seed: int | np.random.Generator | None,
                  matched_twins: bool = False) -> Mismatch:
    """Independent Gaussian V_T shifts (V) and relative K errors for every transistor of both twins; with
    ``matched_twins`` each clamped transistor takes its free twin's (the same draw's free row): the chip's devices
    still vary, the twins do not differ."""
    if vto_sigma < 0 or k_sigma < 0:
        raise ValidationError(f"device.mismatch: sigmas must be >= 0 (got vto {vto_sigma}, k {k_sigma})")
    rng = np.random.default_rng(seed)
    dvto = rng.normal(0.0, vto_sigma, (2, n_edges))
    kscale = np.clip(1.0 + rng.normal(0.0, k_sigma, (2, n_edges)), 0.05, None)
    if matched_twins:
        dvto[1], kscale[1] = dvto[0], kscale[0]
    return Mismatch(dvto, kscale)

# In transients these presets carry the capacitances of timing.CAPACITANCES["ald1106"] (each number's source there and
# in docs/physics.md 8.2).
PRESETS: dict[str, NmosParams] = {
    # Authors' fit (Dillavou et al. 2024, Experiment2.m): K = 8.5e-4 A/V^2, V_T = 0.62 V, no body effect, in level 1
    # (no subthreshold current); lambda = 0.02 /V is the value of their lambda(), which their law never applies.
    "ald1106-fit": NmosParams(vto=0.62, kp=8.5e-4, w=10e-6, l=10e-6, lambda_=0.02, gamma=0.0, phi=0.6,
                              name="ald1106-fit"),
    # The authors' three-regime law (Experiment2.m: Vt, C0, Ohmic, Sat, Sub, SubDecade, SubTransV; docs/hardware.md):
    # ohmic and saturation as level 1 with lambda = 0 (their lambda() is never called), subthreshold 0.1 V/decade
    # below V_T + 0.096 V, as forward minus reverse current so that it is continuous and zero at zero drop.
    "ald1106-hw": NmosParams(vto=0.62, kp=8.5e-4, w=10e-6, l=10e-6, lambda_=0.0, gamma=0.0, phi=0.6,
                             name="ald1106-hw", law=THREE_REGIME, sub_join=0.096, sub_decade=0.1),
    # The ALD1106 level-1 card of a third-party ngspice reproduction (pyclln, device_model/nmos_lvl1_ald1106.lib),
    # every DC parameter at the card's own digits, with body effect, and its series resistances: the card gives
    # rsh = 73.21306042358299 ohm per square and the instance nrd = 0.3, nrs = 1 squares, so ngspice's level 1 puts
    # rsh * nrd on the drain and rsh * nrs on the source. The card's tpg (with no tox) and junction areas (with no
    # js) do not change a DC operating point.
    "ald1106-l1": NmosParams(vto=0.75, kp=6.249608378152027e-05, w=138e-6, l=7.8e-6, lambda_=0.19998491299329302,
                             gamma=1.09, phi=0.9499477708465783, rd=73.21306042358299 * 0.3, rs=73.21306042358299,
                             name="ald1106-l1"),
}


def nmos_preset(preset: str, /, **overrides: float) -> NmosParams:
    """A named NMOS preset (a key of ``PRESETS``: ``ald1106-fit``, ``ald1106-hw``, ``ald1106-l1``) with any
    ``NmosParams`` field overridden in SI units (``vto=0.7`` in V, ``kp`` in A/V^2, ``lambda_`` for lambda in 1/V).
    The device is named by the preset and what differs from it (``ald1106-fit (vto 0.7)``), or by ``name=``.
    An unknown preset or field is a ``ValidationError`` listing the ones there are."""
    if not isinstance(preset, str) or preset not in PRESETS:  # a list was "unhashable type"
        raise ValidationError(f"device.preset: unknown preset (got {shown(preset)}); choose one of {sorted(PRESETS)}")
    name = overrides.pop("name", None)  # NmosParams refuses one that is no text (check_numbers)
    known = [f.name for f in fields(NmosParams) if f.init]
    unknown = [k for k in overrides if k not in known]
    if unknown:
        raise ValidationError(f"nmos_preset: no parameter {unknown[0]!r} (got {unknown}); NmosParams takes "
                              f"{', '.join(known)}")
    base = PRESETS[preset]
    if name is None:
        # named by what differs from the preset too: a netlist's header and a run's summary.json said "ald1106-fit"
        # of a transistor with another threshold
        changed = [f"{k.rstrip('_')} {v:g}" if isinstance(v, (int, float)) else f"{k.rstrip('_')} {v}"
                   for k, v in overrides.items() if v != getattr(base, k)]
        name = f"{preset} ({', '.join(changed)})" if changed else preset
    return replace(base, **overrides, name=name)


def nmos_from_card(path: str | Path, w: float = 10e-6, l: float = 10e-6) -> NmosParams:
    """NmosParams for a user model card (used verbatim in netlists); ``w`` and ``l`` are the instance size (m).

    The DC fields are the card's values, missing ones taking ngspice's defaults, so that for a level-1 card the
    analytic law is what ngspice computes."""
    NmosParams(w=w, l=l)  # the instance size is the caller's: refused as such, not as the card's ("fix the card")
    text, card = load_model_card(path)
    name = f"card:{comment_text(Path(path).name)}" + ("" if card.level == 1 else f":level{card.level}")
    try:
        return NmosParams(**card.nmos_values(), w=w, l=l, name=name, model_card=text, model_name=card.name)
    except ValidationError as err:
        raise ConfigError(f"{path}: {err}; fix the card") from err


def card_level(params: NmosParams) -> int:
    """The MOS level a model card declares (1 for the built-in presets)."""
    return 1 if params.model_card is None else parse_model_card(params.model_card, "NmosParams.model_card").level
