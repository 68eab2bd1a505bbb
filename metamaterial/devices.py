"""Edge devices: parameter sets and their current laws, pure numpy, SI units.

An edge of the network is one of
  * ``NmosParams``: an NMOS transistor used as a gate-controlled resistor, body to ground
    (ngspice MOS level 1, Shichman-Hodges, exactly as ngspice's ``mos1load.c`` computes it);
  * ``ResistorParams``: a linear resistor whose conductance is the learning degree of freedom;
  * ``PotentiometerParams``: a digital potentiometer with N taps, geometrically spaced conductances.

The per-edge learning degree of freedom ("control") is the gate voltage (V) for a transistor, the
conductance (S) for a resistor and the integer tap index for a potentiometer.
This module sits at the bottom of the flow: graph -> circuit -> netlist/solver all read it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import ValidationError

#: Thermal voltage kT/q (V) at ngspice's default 27 C, with ngspice 39's constants (CODATA 2014).
THERMAL_VOLTAGE = 1.38064852e-23 / 1.6021766208e-19 * (27.0 + 273.15)

_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")


@dataclass(frozen=True)
class NmosParams:
    """NMOS level-1 parameters (ngspice names, SI units).

    K = kp * w / (l - 2 ld) is the transconductance factor of the ohmic law
    I = K (V_G - V_T - Vbar)(V_a - V_b)(1 + lambda |V_ab|), Vbar the mean terminal voltage.
    ``model_card`` is the text of a user-supplied ``.model`` card; when set, the netlist uses it
    verbatim (after validation) and the analytic law is available only if the card is level 1.
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

    kind = "nmos"

    def __post_init__(self) -> None:
        for attr in ("kp", "w", "l", "phi"):
            value = getattr(self, attr)
            if not (math.isfinite(value) and value > 0):
                raise ValidationError(f"NmosParams.{attr}: must be a positive finite number (got {value!r})")
        for attr in ("vto", "lambda_", "gamma", "ld", "is_"):
            value = getattr(self, attr)
            if not math.isfinite(value):
                raise ValidationError(f"NmosParams.{attr}: must be finite (got {value!r})")
        if self.lambda_ < 0 or self.gamma < 0 or self.is_ < 0 or self.ld < 0:
            raise ValidationError("NmosParams: lambda_, gamma, is_ and ld must be >= 0")
        if self.l - 2 * self.ld <= 0:
            raise ValidationError(f"NmosParams.ld: effective length l - 2 ld must be > 0 (got l={self.l}, ld={self.ld})")
        if not _IDENT.match(self.model_name):
            raise ValidationError(f"NmosParams.model_name: must match {_IDENT.pattern} (got {self.model_name!r})")

    @property
    def beta(self) -> float:
        """K = kp w / l_eff in A/V^2."""
        return self.kp * self.w / (self.l - 2 * self.ld)

    def model_text(self) -> str:
        """The ``.model`` card this edge uses in netlists."""
        if self.model_card is not None:
            return self.model_card
        return (
            f".model {self.model_name} nmos (level=1 vto={_num(self.vto)} kp={_num(self.kp)} "
            f"lambda={_num(self.lambda_)} gamma={_num(self.gamma)} phi={_num(self.phi)} "
            f"ld={_num(self.ld)} is={_num(self.is_)})"
        )


@dataclass(frozen=True)
class ResistorParams:
    """A linear resistor edge; the control is its conductance in S, kept in [g_min, g_max]."""

    g_min: float = 1e-5
    g_max: float = 1e-2
    name: str = "resistor"

    kind = "resistor"

    def __post_init__(self) -> None:
        if not (0 < self.g_min < self.g_max and math.isfinite(self.g_max)):
            raise ValidationError(f"ResistorParams: need 0 < g_min < g_max (got g_min={self.g_min}, g_max={self.g_max})")


@dataclass(frozen=True)
class PotentiometerParams:
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

    def __post_init__(self) -> None:
        if not (0 < self.r_min < self.r_max and math.isfinite(self.r_max)):
            raise ValidationError(f"PotentiometerParams: need 0 < r_min < r_max (got {self.r_min}, {self.r_max})")
        if int(self.n_taps) != self.n_taps or self.n_taps < 2:
            raise ValidationError(f"PotentiometerParams.n_taps: must be an integer >= 2 (got {self.n_taps!r})")

    def conductance(self, taps: np.ndarray) -> np.ndarray:
        """Conductance in S of integer taps (any shape)."""
        frac = np.asarray(taps, dtype=float) / (self.n_taps - 1)
        return (1.0 / self.r_max) * (self.r_max / self.r_min) ** frac


EdgeParams = NmosParams | ResistorParams | PotentiometerParams


@dataclass(frozen=True, eq=False)
class Mismatch:
    """Per-transistor deviations of the twin networks: ``dvto`` [2, E] (V) and ``kscale`` [2, E] (relative K),
    row 0 the free twin's transistor of each edge, row 1 the clamped twin's."""

    dvto: np.ndarray
    kscale: np.ndarray

    def __post_init__(self) -> None:
        if self.dvto.shape != self.kscale.shape or self.dvto.ndim != 2 or self.dvto.shape[0] != 2:
            raise ValidationError(f"Mismatch: dvto and kscale must both be [2, E] (got {self.dvto.shape}, "
                                  f"{self.kscale.shape})")
        if not (np.all(np.isfinite(self.dvto)) and np.all(self.kscale > 0)):
            raise ValidationError("Mismatch: dvto must be finite and kscale > 0")


def draw_mismatch(n_edges: int, vto_sigma: float, k_sigma: float, seed: int | np.random.Generator | None) -> Mismatch:
    """Independent Gaussian V_T shifts (V) and relative K errors for every transistor of both twins."""
    if vto_sigma < 0 or k_sigma < 0:
        raise ValidationError(f"device.mismatch: sigmas must be >= 0 (got vto {vto_sigma}, k {k_sigma})")
    rng = np.random.default_rng(seed)
    dvto = rng.normal(0.0, vto_sigma, (2, n_edges))
    kscale = np.clip(1.0 + rng.normal(0.0, k_sigma, (2, n_edges)), 0.05, None)
    return Mismatch(dvto, kscale)

PRESETS: dict[str, NmosParams] = {
    # Authors' fit (Dillavou et al. 2024, Experiment2.m): K = 8.5e-4 A/V^2, V_T = 0.62 V, no body effect.
    "ald1106-fit": NmosParams(vto=0.62, kp=8.5e-4, w=10e-6, l=10e-6, lambda_=0.02, gamma=0.0, phi=0.6,
                              name="ald1106-fit"),
    # ALD1106 level-1 card used by a third-party ngspice reproduction, with body effect.
    "ald1106-l1": NmosParams(vto=0.75, kp=6.2496e-5, w=138e-6, l=7.8e-6, lambda_=0.19998, gamma=1.09,
                             phi=0.94995, name="ald1106-l1"),
}


def nmos_preset(name: str, **overrides: float) -> NmosParams:
    """A named NMOS preset with any parameter overridden (``lambda_`` for lambda)."""
    if name not in PRESETS:
        raise ValidationError(f"device.preset: unknown preset (got {name!r}); choose one of {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)


_CARD_LINE = re.compile(r"^\s*(\*.*|\.model\s+.*|\+.*|)$", re.IGNORECASE)
_CARD_PARAM = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([-+0-9.eE]+[a-zA-Z]*)")
_SUFFIX = {"t": 1e12, "g": 1e9, "meg": 1e6, "k": 1e3, "m": 1e-3, "u": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15}


def load_model_card(path: str | Path, where: str = "device.model_file") -> tuple[str, str, dict[str, float]]:
    """Read a user ``.model`` card file; return (card text, model name, numeric parameters).

    Only comment lines, one ``.model NAME nmos ...`` line and ``+`` continuation lines are accepted,
    so a card cannot smuggle netlist elements or control commands into a netlist.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as err:
        raise ValidationError(f"{where}: cannot read model card (got {str(p)!r}): {err.strerror}") from err
    lines = [ln.rstrip() for ln in text.splitlines()]
    models = []
    for i, ln in enumerate(lines, 1):
        if not _CARD_LINE.match(ln) or any(c in ln for c in ";`$\\") or ln.lower().lstrip().startswith((".control", ".endc")):
            raise ValidationError(
                f"{where}: {p}:{i}: only comments, one '.model NAME nmos (...)' line and '+' continuations are "
                f"allowed (got {ln.strip()[:60]!r})")
        if ln.lower().lstrip().startswith(".model"):
            models.append(i)
    if len(models) != 1:
        raise ValidationError(f"{where}: {p}: expected exactly one .model line (got {len(models)})")
    body = " ".join(ln.lstrip("+ ").strip() if ln.lstrip().startswith("+") else ln.strip()
                    for ln in lines if ln.strip() and not ln.lstrip().startswith("*"))
    head = body.split()
    if len(head) < 3 or not _IDENT.match(head[1]) or not head[2].lower().startswith("nmos"):
        raise ValidationError(f"{where}: {p}: the .model line must read '.model NAME nmos (...)' with NAME a plain "
                              f"identifier (got {' '.join(head[:3])!r})")
    params = {}
    for key, raw in _CARD_PARAM.findall(body):
        params[key.lower()] = _parse_number(raw, f"{where}: {p}: parameter {key}")
    card = "\n".join(ln for ln in lines if ln.strip() and not ln.lstrip().startswith("*"))
    return card, head[1], params


def _parse_number(raw: str, where: str) -> float:
    m = re.match(r"^([-+0-9.eE]+?)(meg|[tgkmunpf])?[a-zA-Z]*$", raw, re.IGNORECASE)
    try:
        value = float(m.group(1)) if m else float(raw)
    except (ValueError, AttributeError) as err:
        raise ValidationError(f"{where}: not a number (got {raw!r})") from err
    if m and m.group(2):
        value *= _SUFFIX[m.group(2).lower()]
    return value


#: ngspice's MOS level-1 defaults, used for parameters a user card leaves out
NGSPICE_MOS1_DEFAULTS = {"vto": 0.0, "kp": 2e-5, "lambda_": 0.0, "gamma": 0.0, "phi": 0.6, "ld": 0.0, "is_": 1e-14}


def nmos_from_card(path: str | Path, w: float = 10e-6, l: float = 10e-6) -> NmosParams:
    """NmosParams for a user model card (used verbatim in netlists). The level-1 parameters are parsed, missing
    ones taking ngspice's defaults, so that the analytic law matches what ngspice computes; ``w`` and ``l``
    are the instance size."""
    card, name, params = load_model_card(path)
    level = params.get("level", 1.0)
    mapping = {"vto": "vto", "kp": "kp", "lambda": "lambda_", "gamma": "gamma", "phi": "phi", "ld": "ld", "is": "is_"}
    values = {**NGSPICE_MOS1_DEFAULTS, **{mapping[k]: v for k, v in params.items() if k in mapping}}
    return NmosParams(**values, w=w, l=l, name=f"card:{Path(path).name}" + ("" if level == 1 else f":level{level:g}"),
                      model_card=card, model_name=name)


def card_level(params: NmosParams) -> int:
    """The MOS level a model card declares (1 for the built-in presets)."""
    if params.model_card is None:
        return 1
    m = re.search(r"level\s*=\s*([0-9.]+)", params.model_card, re.IGNORECASE)
    return int(float(m.group(1))) if m else 1


@dataclass(frozen=True)
class MosCurrents:
    """Drain current of an NMOS edge from node a to node b and its partial derivatives.

    Shapes follow the broadcast of the inputs. Units: A, and A/V for the derivatives.
    """

    current: np.ndarray
    d_va: np.ndarray
    d_vb: np.ndarray
    d_vg: np.ndarray = field(repr=False)


def nmos_current(p: NmosParams, va: np.ndarray, vb: np.ndarray, vg: np.ndarray,
                 vto: np.ndarray | float | None = None, beta: np.ndarray | float | None = None) -> MosCurrents:
    """Channel current a -> b of a level-1 NMOS with body at ground, ngspice ``mos1load.c`` semantics.

    The terminal at the lower voltage acts as source (source/drain symmetry). Threshold
    V_T = vto + gamma (sqrt(phi - V_BS) - sqrt(phi)); linear region
    I = beta (1 + lambda V_DS) V_DS (V_GS - V_T - V_DS/2); saturation I = beta/2 (1 + lambda V_DS)(V_GS - V_T)^2;
    zero below threshold (level 1 has no subthreshold branch). Bulk junction currents are not included
    (see ``junction_current``). ``vto`` and ``beta`` override the card's values per transistor (mismatch),
    broadcasting like the voltages.
    """
    va, vb, vg = np.broadcast_arrays(np.asarray(va, float), np.asarray(vb, float), np.asarray(vg, float))
    forward = va >= vb
    vd = np.where(forward, va, vb)
    vs = np.where(forward, vb, va)
    vds = vd - vs
    vgs = vg - vs
    vbs = -vs
    sqphi = math.sqrt(p.phi)
    neg = vbs <= 0
    sarg = np.where(neg, np.sqrt(np.maximum(p.phi - vbs, 0.0)), np.maximum(sqphi - vbs / (2 * sqphi), 0.0))
    von = ((p.vto if vto is None else vto) - p.gamma * sqphi) + p.gamma * sarg
    dvon_dvbs = np.where(sarg > 0, np.where(neg, -p.gamma / (2 * np.where(sarg > 0, sarg, 1.0)), -p.gamma / (2 * sqphi)), 0.0)
    # ngspice uses arg = gamma / (2 sarg) for gmbs; identical to -dvon/dvbs in the vbs<=0 branch.
    vgst = vgs - von
    beta = p.beta if beta is None else beta
    betap = beta * (1 + p.lambda_ * vds)
    on = vgst > 0
    sat = on & (vgst <= vds)
    lin = on & ~sat
    ids = np.where(sat, 0.5 * betap * vgst**2, np.where(lin, betap * vds * (vgst - 0.5 * vds), 0.0))
    gm = np.where(sat, betap * vgst, np.where(lin, betap * vds, 0.0))
    gds = np.where(sat, 0.5 * p.lambda_ * beta * vgst**2,
                   np.where(lin, betap * (vgst - vds) + p.lambda_ * beta * vds * (vgst - 0.5 * vds), 0.0))
    gmbs = -gm * dvon_dvbs
    # d ids / d vs = -(gm + gds + gmbs) since vgs, vds, vbs all fall with vs; d/dvd = gds; d/dvg = gm.
    d_vd = gds
    d_vs = -(gm + gds + gmbs)
    sign = np.where(forward, 1.0, -1.0)
    current = sign * ids
    d_va = sign * np.where(forward, d_vd, d_vs)
    d_vb = sign * np.where(forward, d_vs, d_vd)
    return MosCurrents(current=current, d_va=d_va, d_vb=d_vb, d_vg=sign * gm)


def junction_current(p: NmosParams, v_node: np.ndarray, gmin: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """Current (A) flowing *out of* a drain/source node into the grounded body through one bulk diode,
    and its derivative (S). Includes ngspice's gmin across the junction.

    V_BX = -v_node. ngspice: for V_BX <= -3 V_t, I_BX = gmin V_BX - I_S (1 + (3 V_t / (e V_BX))^3) ...
    we use the form of ngspice 39 ``mos1load.c``: I_BX = I_S (exp(V_BX/V_t) - 1) + gmin V_BX for V_BX > -3 V_t
    and gmin V_BX - I_S for V_BX <= -3 V_t. The returned current is -I_BX (out of the node).
    """
    vbx = -np.asarray(v_node, float)
    vt = THERMAL_VOLTAGE
    deep = vbx <= -3 * vt
    ev = np.exp(np.minimum(vbx / vt, 709.0))  # ngspice's MAX_EXP_ARG
    ibx = np.where(deep, gmin * vbx - p.is_, p.is_ * (ev - 1) + gmin * vbx)
    gbx = np.where(deep, gmin, p.is_ * ev / vt + gmin)
    return -ibx, gbx


def _num(x: float) -> str:
    """Format a number for a netlist: shortest round-trip repr, so text is deterministic and exact."""
    return repr(float(x))
