"""The NMOS current laws, pure numpy, SI units: ngspice MOS level 1 (``nmos_current``, exactly as ngspice's
``mos1load.c`` computes it), its bulk junctions (``junction_current``) and series drain and source resistances
(``series_current``), and the authors' three-regime fit of their transistor (``three_regime_current``;
docs/hardware.md). Each takes a transistor's parameters (``devices.NmosParams``) and node voltages, and returns the
current with its derivatives (``MosCurrents``).

Below ``devices`` (whose ``NmosParams.channel_current`` picks the law) and beside its numba twins in
``sim.native_kernels``; the circuit's KCL check and the energy estimate read it too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from .errors import ValidationError, shown
from .temperature import THERMAL_VOLTAGE

if TYPE_CHECKING:
    from .devices import NmosParams

#: gate overdrive (V) above which the three-regime law's square branch stops growing. No operating point comes near
#: it (gates of at most ~10 V, nodes inside the driven range); it keeps a diverging Newton iterate from overflowing
#: ngspice's expression evaluator, which has no voltage limiting for behavioural sources.
OVERDRIVE_CAP = 100.0


@dataclass(frozen=True)
class MosCurrents:
    """Drain current (A) of an NMOS edge from node a to node b and its partial derivatives (A/V), shaped as the
    broadcast of the inputs."""

    current: np.ndarray
    d_va: np.ndarray
    d_vb: np.ndarray
    d_vg: np.ndarray = field(repr=False)
    #: behind series resistances with the body grounded (``series_current``): the current that leaves terminal a
    #: through the bulk junctions to ground and so does not reach b, with its derivatives; None where there is none
    #: (``current`` is then both terminals' current)
    leak: MosCurrents | None = field(default=None, repr=False)


def nmos_current(p: NmosParams, va: np.ndarray, vb: np.ndarray, vg: np.ndarray,
                 vto: np.ndarray | float | None = None, beta: np.ndarray | float | None = None,
                 vbody: np.ndarray | float | None = None) -> MosCurrents:
    """Channel current a -> b of a level-1 NMOS, ngspice ``mos1load.c`` semantics; body at ground, or at the
    voltages ``vbody`` (V, broadcasting like va: a body tied to a node).

    The terminal at the lower voltage acts as source (source/drain symmetry). Threshold
    V_T = vto + gamma (sqrt(phi - V_BS) - sqrt(phi)) for V_BS <= 0, ngspice's linearised
    vto + gamma (sqrt(phi) - V_BS / (2 sqrt(phi)) - sqrt(phi)) above (clipped at sarg = 0); linear region
    I = beta (1 + lambda V_DS) V_DS (V_GS - V_T - V_DS/2); saturation I = beta/2 (1 + lambda V_DS)(V_GS - V_T)^2;
    zero below threshold (level 1 has no subthreshold branch). Bulk junction currents are not included
    (see ``junction_current``), nor are series resistances ``rd``, ``rs`` (``series_current``): a device's current at
    its terminals, by whichever law it follows, is ``NmosParams.channel_current``. A device that does not follow the
    level-1 law (``ald1106-hw``'s three-regime law) is refused. ``vto`` and ``beta`` override the card's values per
    transistor (mismatch),
    broadcasting like the voltages. ``d_va`` and ``d_vb`` hold the terminals' own derivatives; the body's,
    gmbs = -d_vs - gm - gds, is not returned (a body tied to a terminal adds it to that terminal's).
    """
    law = getattr(p, "law", None)
    if law != "level1":  # the three-regime law was computed as level 1 (no subthreshold current) without a word
        raise ValidationError(f"nmos_current: computes the level-1 law, and the device given follows "
                              f"{'the ' + law + ' law' if isinstance(law, str) else 'no transistor law'} (got "
                              f"{type(p).__name__} {shown(getattr(p, 'name', p))}); use the device's own "
                              "channel_current(va, vb, vg), or a level-1 device")
    va, vb, vg = np.broadcast_arrays(np.asarray(va, float), np.asarray(vb, float), np.asarray(vg, float))
    forward = va >= vb
    vd = np.where(forward, va, vb)
    vs = np.where(forward, vb, va)
    vds = vd - vs
    vgs = vg - vs
    vbs = (0.0 if vbody is None else np.asarray(vbody, float)) - vs
    sqphi = math.sqrt(p.phi)
    neg = vbs <= 0
    sarg = np.where(neg, np.sqrt(np.maximum(p.phi - vbs, 0.0)), np.maximum(sqphi - vbs / (2 * sqphi), 0.0))
    von = ((p.vto if vto is None else vto) - p.gamma * sqphi) + p.gamma * sarg
    dvon_dvbs = np.where(sarg > 0, np.where(neg, -p.gamma / (2 * np.where(sarg > 0, sarg, 1.0)),
                                            -p.gamma / (2 * sqphi)), 0.0)
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
    d_vs = -(gm + gds + gmbs)
    sign = np.where(forward, 1.0, -1.0)
    return MosCurrents(current=sign * ids, d_va=sign * np.where(forward, gds, d_vs),
                       d_vb=sign * np.where(forward, d_vs, gds), d_vg=sign * gm)


#: the local solve of ``series_current``: Newton steps at most (each bisects when it would leave the bracket), the
#: relative change of the current, or width of the bracket, below which it stops (a few units of rounding; where a
#: small drop makes the law's own rounding larger, Newton's steps alternate in sign and the bracket closes instead),
#: and the Newton step (V, at the internal nodes) that is the last one needed (quadratic convergence: the error it
#: leaves, ~ step^2 / (2 V_T) in volts from the junctions' curvature, is below the resolution)
SERIES_MAX_STEPS, SERIES_RTOL, SERIES_QUADRATIC = 60, 1e-14, 1e-8
#: ``lambert_w_exp``: Newton steps at most, the relative step it stops at, and the argument below which its series is
#: exact to rounding (as ``native_kernels.W_MAX_STEPS``, ``W_RTOL``, ``W_SERIES``)
W_MAX_STEPS, W_RTOL, W_SERIES = 40, 4.5e-16, 1e-5


def lambert_w_exp(log_a: np.ndarray) -> np.ndarray:
    """Lambert's W(a) at a = e^log_a (the w >= 0 with w e^w = a), without forming a: the root of w + ln w = log_a,
    by Newton's method from a lower bound (a / (1 + a) below log_a = 1, log_a - ln log_a above), from which it climbs
    monotonically; the series a - a^2 + 1.5 a^3 below a = ``W_SERIES``. Element-wise; NaN in, NaN out."""
    log_a = np.asarray(log_a, float)
    a = np.exp(np.minimum(log_a, 1.0))
    small = a < W_SERIES
    w = np.where(log_a < 1.0, a / (1.0 + a), log_a - np.log(np.maximum(log_a, 1.0)))
    todo = ~small & ~np.isnan(log_a)
    for _ in range(W_MAX_STEPS):
        if not todo.any():
            break
        wt = np.where(todo, w, 1.0)
        step = wt * (log_a - wt - np.log(wt)) / (1.0 + wt)
        w = np.where(todo, w + step, w)
        todo &= np.abs(step) > W_RTOL * w
    return np.where(small, a * (1.0 - a * (1.0 - 1.5 * a)), w)


def behind_resistance(p: NmosParams, u: np.ndarray, c: np.ndarray, vbody: np.ndarray | float, g: float,
                      gmin: float = 1e-12, vt: float = THERMAL_VOLTAGE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The internal node x (V) behind a series resistance of conductance g > 0 (S) from a terminal at u (V), which
    feeds a current c (A) on into the channel and the bulk junction to the body at ``vbody`` (V),
    g (u - x) = c + J(x - vbody) with J the junction's current out of the node (``junction_current``), and J (A)
    and dJ/dx (S) there. Closed form: past the junction's branch point (x - vbody >= 3 V_T) J is linear and
    x = x_0 = (g u + gmin vbody - I_S - c) / (g + gmin); short of it G (x - x_0) = I_S e^((vbody - x) / V_T), G = g +
    gmin, so x = x_0 + V_T W(I_S e^((vbody - x_0) / V_T) / (G V_T)) (``lambert_w_exp``); where the root is the jump
    of ngspice's law at the branch point, x sits on it and J = g (u - x) - c, dJ/dx = inf. The numpy twin of
    ``native_kernels.behind_resistance``."""
    big = g + gmin
    x0 = (g * u + gmin * vbody - p.is_ - c) / big
    over = x0 - vbody
    deep = -over <= -3.0 * vt
    with np.errstate(divide="ignore"):  # I_S = 0: no junction, W(0) = 0
        log_a = np.log(p.is_ / (big * vt)) - over / vt
    z = np.where(deep, 0.0, vt * lambert_w_exp(np.where(deep, 0.0, log_a)))
    x = x0 + z
    jump = ~deep & (-(x - vbody) <= -3.0 * vt)
    x = np.where(jump, vbody + 3.0 * vt, x)
    j = np.where(jump, g * (u - x) - c, p.is_ + gmin * (x - vbody) - big * z)
    return x, j, np.where(deep, gmin, np.where(jump, np.inf, big * z / vt + gmin))


def series_current(p: NmosParams, va: np.ndarray, vb: np.ndarray, vg: np.ndarray,
                   vto: np.ndarray | float | None = None, beta: np.ndarray | float | None = None, gmin: float = 1e-12,
                   vt: float = THERMAL_VOLTAGE, vbody: np.ndarray | None = None) -> MosCurrents:
    """Currents of a level-1 NMOS with series resistances ``p.rd`` at terminal a (the drain of the netlist's
    instance) and ``p.rs`` at terminal b (its source), and their derivatives, as ngspice builds it: internal nodes
    d' and s' between each resistance and the channel, and the bulk junctions on d' and s' to the body, grounded
    (``vbody`` None) or tied to terminal a (``vbody`` = ``va``; docs/physics.md 2.1). With I the channel current
    d' -> s' (``nmos_current`` with the body at V_B) and J a junction's current out of its node into the body
    (``junction_current`` with ``gmin`` in S and kT/q ``vt`` in V),

        (V_a - V_d') / R_d = I + J(V_d' - V_B),        (V_s' - V_b) / R_s = I - J(V_s' - V_B)

    (a zero resistance pins its node to its terminal). Given I each internal node has a closed form
    (``behind_resistance``), V_d' falling and V_s' rising with I, so g(I) = I - I_ch(V_d'(I), V_s'(I)) grows with
    slope D = 1 + f_d k_d - f_s k_s >= 1 (f_d >= 0 >= f_s the channel's derivatives, k = 1 / (1/R + J') at each
    node) and its root lies between 0 and I_ch at I = 0: a safeguarded Newton iteration from I_0 / D_0, stopped
    after a step that moves the internal nodes by at most ``SERIES_QUADRATIC``, the junctions' currents carried
    over that step to first order. The derivatives follow by the implicit function theorem (the channel's in V_B:
    -(f_d + f_s + f_g), the law depending on voltage differences only), at the last evaluation.

    ``current`` is the current into terminal b, I - J(V_s' - V_B). With the body grounded, ``leak`` is the current
    that leaves terminal a and does not reach b, J(V_d') + J(V_s'), into ground (the terminal current out of a is
    current + leak); with the body at a the junctions' currents return to a, and there is no leak. The numpy twin
    of ``native_kernels.series_mos_currents``.
    """
    va, vb, vg = np.broadcast_arrays(np.asarray(va, float), np.asarray(vb, float), np.asarray(vg, float))
    tied = vbody is not None
    body = va if tied else np.zeros_like(va)
    tie = 1.0 if tied else 0.0
    gd = 1.0 / p.rd if p.rd else 0.0
    gs = 1.0 / p.rs if p.rs else 0.0

    def side(u, c, r, g):
        """(x, J, k, q, gq) of one internal node (``native_kernels._series_side``); the terminal itself for r = 0."""
        if r:
            x, j, gj = behind_resistance(p, u, c, body, g, gmin, vt)
            pinned = np.isinf(gj)
            gj = np.where(pinned, 0.0, gj)
            k = np.where(pinned, 0.0, 1.0 / (g + gj))
            return x, j, k, np.where(pinned, 1.0, gj * k), np.where(pinned, g, g * gj * k)
        j, gj = junction_current(p, u - body, gmin, vt)
        return u, j, np.zeros_like(u), np.zeros_like(u), gj

    def channel(i):
        (xd, jd, kd, qd, gqd), (xs, js, ks, qs, gqs) = side(va, i, p.rd, gd), side(vb, -i, p.rs, gs)
        m = nmos_current(p, xd - body, xs - body, vg - body, vto, beta)
        swing = np.maximum(np.maximum(np.abs(xd - body), np.abs(xs - body)), 1.0)
        return m, (jd, kd, qd, gqd), (js, ks, qs, gqs), swing

    m, (_, kd, _, _), (_, ks, _, _), _ = channel(np.zeros_like(va))
    lo, hi = np.minimum(m.current, 0.0), np.maximum(m.current, 0.0)
    i = m.current / (1.0 + m.d_va * kd - m.d_vb * ks)
    done = np.zeros(i.shape, bool)
    at = i  # per element, the current of its last evaluation before it was done
    for _ in range(SERIES_MAX_STEPS):
        m, (_, kd, _, _), (_, ks, _, _), swing = channel(i)
        g = i - m.current
        lo, hi = np.where(g < 0, i, lo), np.where(g > 0, i, hi)
        new = i - g / (1.0 + m.d_va * kd - m.d_vb * ks)
        # stop at an exact root, a converged step, or a Newton step that moves the internal nodes by at most
        # SERIES_QUADRATIC (the error it leaves is below the resolution); else bisect where the step leaves the
        # bracket (also where rounding makes Newton alternate between two points), and stop when the bracket has
        # closed; the current's resolution is SERIES_RTOL of itself and of what the channel's voltages resolve
        res = SERIES_RTOL * (np.abs(new) + (m.d_va - m.d_vb) * swing)
        inside = (lo < new) & (new < hi)
        last = inside & (np.abs(new - i) * np.maximum(kd, ks) <= SERIES_QUADRATIC)
        stop = (g == 0) | (np.abs(new - i) <= res) | last
        new = np.where(stop | inside, np.where(g == 0, i, new), 0.5 * (lo + hi))
        at = np.where(done, at, i)
        i = np.where(done, i, new)
        done |= stop | (hi - lo <= res)
        if done.all():
            break
    # each element's last evaluation, once more (element-wise: the same numbers as in the loop)
    m, (jd, kd, qd, gqd), (js, ks, qs, gqs), _ = channel(at)
    i = np.where(done, i, np.nan)  # never an unconverged current (never seen)
    # the junctions' currents at the last evaluation, carried to the final I to first order (their derivatives in
    # I: -q_d and +q_s; as the kernel carries them); the derivatives below are the last evaluation's
    jd, js = jd - qd * (i - at), js + qs * (i - at)
    fd, fs, fg = m.d_va, m.d_vb, m.d_vg
    den = 1.0 + fd * kd - fs * ks
    f_body = -(fd + fs + fg)  # the channel's derivative in V_B: it depends on voltage differences only
    di_a = (fd * (1.0 - qd + tie * qd) + tie * (fs * qs + f_body)) / den
    di_b, di_g = fs * (1.0 - qs) / den, fg / den
    # J(V_x' - V_B) moves by gq (du - dV_B) - q dc, c being I at d' and -I at s'
    dj_d = (gqd * (1.0 - tie) - qd * di_a, -qd * di_b, -qd * di_g)
    dj_s = (qs * di_a - tie * gqs, gqs + qs * di_b, qs * di_g)
    into_b = MosCurrents(current=i - js, d_va=di_a - dj_s[0], d_vb=di_b - dj_s[1], d_vg=di_g - dj_s[2])
    if tied:
        return into_b
    leak = MosCurrents(current=jd + js, d_va=dj_d[0] + dj_s[0], d_vb=dj_d[1] + dj_s[1], d_vg=dj_d[2] + dj_s[2])
    return replace(into_b, leak=leak)


def body_series_current(p: NmosParams, va: np.ndarray, vb: np.ndarray, vg: np.ndarray,
                        vto: np.ndarray | float | None = None, beta: np.ndarray | float | None = None,
                        gmin: float = 1e-12, vt: float = THERMAL_VOLTAGE) -> MosCurrents:
    """``series_current`` with the body tied to terminal a: the current a -> b (A) and its derivatives."""
    return series_current(p, va, vb, vg, vto, beta, gmin, vt, vbody=np.asarray(va, float))


def three_regime_current(p: NmosParams, va: np.ndarray, vb: np.ndarray, vg: np.ndarray,
                         vto: np.ndarray | float | None = None, beta: np.ndarray | float | None = None,
                         gmin: float = 1e-12) -> MosCurrents:
    """Channel current a -> b (A) of the authors' three-regime law, and its derivatives (docs/hardware.md).

    I = F(V_G - V_T - V_b) - F(V_G - V_T - V_a) + gmin (V_a - V_b), with the forward current
    F(x) = (K/2) x^2 for x > x_j and F(x) = (K/2) x_j^2 10^((x - x_j)/s) below, x_j = ``sub_join`` (V),
    s = ``sub_decade`` (V/decade), x capped at ``OVERDRIVE_CAP`` (far from any operating point).
    Where both terminals see x > x_j this is the authors' ohmic law K (V_G - V_T - Vbar)(V_a - V_b); with the
    drain's x <= x_j, their saturation (K/2)(V_G - V_T - V_S)^2 less a reverse subthreshold current; with the
    source's x <= x_j, their subthreshold branch times (1 - 10^(-|V_a - V_b|/s)). So the current is continuous and
    zero at zero drop (the authors' law as written is neither). Source/drain symmetric by construction; no body
    effect, no lambda. ``vto`` and ``beta`` override V_T and K per transistor (mismatch); ``gmin`` (S) keeps
    cut-off edges from leaving nodes undefined.
    """
    va, vb, vg = np.broadcast_arrays(np.asarray(va, float), np.asarray(vb, float), np.asarray(vg, float))
    vt = p.vto if vto is None else vto
    k = p.beta if beta is None else beta
    f_b, g_b = _forward_current(vg - vt - vb, k, p.sub_join, p.sub_decade)
    f_a, g_a = _forward_current(vg - vt - va, k, p.sub_join, p.sub_decade)
    return MosCurrents(current=f_b - f_a + gmin * (va - vb), d_va=g_a + gmin, d_vb=-g_b - gmin, d_vg=g_b - g_a)


def _forward_current(x: np.ndarray, k: np.ndarray | float, join: float, decade: float) -> tuple[np.ndarray, np.ndarray]:
    """F(x) of ``three_regime_current`` (A) and dF/dx (S) at gate overdrives x (V) over one terminal."""
    slope = math.log(10.0) / decade
    sub = 0.5 * k * join * join * np.exp(np.minimum(x - join, 0.0) * slope)
    above = x > join
    xc = np.minimum(x, OVERDRIVE_CAP)
    return (np.where(above, 0.5 * k * xc * xc, sub),
            np.where(above, np.where(x < OVERDRIVE_CAP, k * xc, 0.0), sub * slope))


def junction_current(p: NmosParams, v_node: np.ndarray, gmin: float = 1e-12,
                     vt: float = THERMAL_VOLTAGE) -> tuple[np.ndarray, np.ndarray]:
    """Current (A) flowing *out of* a drain/source node into the grounded body through one bulk diode,
    and its derivative (S). Includes ngspice's gmin across the junction; ``vt`` is kT/q (V) at the circuit's
    temperature (``thermal_voltage``), ``p.is_`` the saturation current at it (``NmosParams.at_temperature``).

    V_BX = -v_node. ngspice: for V_BX <= -3 V_t, I_BX = gmin V_BX - I_S (1 + (3 V_t / (e V_BX))^3) ...
    we use the form of ngspice 39 ``mos1load.c``: I_BX = I_S (exp(V_BX/V_t) - 1) + gmin V_BX for V_BX > -3 V_t
    and gmin V_BX - I_S for V_BX <= -3 V_t. The returned current is -I_BX (out of the node).
    """
    vbx = -np.asarray(v_node, float)
    deep = vbx <= -3 * vt
    ev = np.exp(np.minimum(vbx / vt, 709.0))  # ngspice's MAX_EXP_ARG
    ibx = np.where(deep, gmin * vbx - p.is_, p.is_ * (ev - 1) + gmin * vbx)
    gbx = np.where(deep, gmin, p.is_ * ev / vt + gmin)
    return -ibx, gbx

