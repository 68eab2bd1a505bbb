"""Compiled (numba) kernels of the native DC solver: device laws, KCL assembly, Newton on a batch.

Owned here: the scalar level-1 NMOS law and bulk junction law (the same equations as ngspice 39 ``mos1load.c``, see
``mos.nmos_current``; series drain and source resistances with the junctions on their internal nodes, solved
per edge, ``mos.series_current``), the
authors' three-regime law (``mos.three_regime_current``), the assembly of the KCL residual and its Jacobian
into "slots" of a flat matrix (dense row-major or the ``data`` array of a CSC matrix), the limited and projected
Newton update, and the whole-batch dense Newton. ``native.py`` prepares the index arrays and
calls these; nothing here knows about ``Circuit`` objects.

Conventions: voltages in V, currents in A, conductances in S. ``kind`` is ``KIND_NMOS`` (the control is the
gate voltage), ``KIND_CONDUCTANCE`` (the control is the edge conductance) or ``KIND_THREE_REGIME`` (the control
is the gate voltage; ``vbi`` is then V_T itself, and there are no bulk junctions). ``prm`` packs the device
constants shared by every edge, as indexed by the ``P_*`` names below; the two that differ per transistor
under twin mismatch come as arrays [E]: ``vbi`` = V_T0 - gamma sqrt(phi) (V) and ``beta`` = K (A/V^2).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .. import kernelcache

kernelcache.refresh()  # before numba can load this module's cached code

KIND_NMOS = 0
KIND_CONDUCTANCE = 1
KIND_THREE_REGIME = 2

# indices into the packed parameter vector ``prm`` (then: the three-regime law's join x_j (V), subthreshold exponent
# ln(10) / (V/decade) in 1/V, and overdrive cap in V; then level 1's series resistances at the drain (terminal a) and
# source (terminal b) in ohm, 0 for none; last ``P_BODY``: 0.0 when every transistor's body is grounded, 1.0 when
# every body is tied to the edge's terminal a, see ``mos_current``)
P_GAMMA, P_PHI, P_SQPHI, P_LAMBDA, P_IS, P_VT, P_GMIN, P_JOIN, P_SUBSLOPE, P_XCAP, P_RD, P_RS, P_BODY = range(13)
# 1.0 where every body is tied to terminal a behind series resistances (``series_mos_currents``; P_BODY is then
# 0.0: with series resistances that law carries the junctions itself, whatever the body)
P_BODY_SERIES = 13
# ln(I_S / (V_T (1/R + gmin))) of the drain's and the source's series resistance (``behind_resistance``'s log_c0;
# 0.0 without one), computed once per circuit (``series_constants``)
P_LOG_D, P_LOG_S = 14, 15
N_PRM = 16

#: ngspice's cap on exponent arguments (``MAX_EXP_ARG`` for IEEE doubles).
MAX_EXP_ARG = 709.0

# status per sample
CONVERGED, NOT_CONVERGED, NOT_FINITE = 0, 1, 2
#: the native KCL floor at a node is never below this fraction of the magnitudes of its devices' currents
#: (``kcl_converged``): rounding alone leaves a node's sum of currents a few 1e-16 of them off (4.6e-13 A at 1.7e3 A
#: on the 4x4 XOR with W/L = 1e7), and a residual of 1e-14 of the currents moves a node by 1e-14 of its drops
KCL_ROUNDING = 1e-14

# indices into the tolerance vector ``tol`` (``native.NativeSolver.tolerances``): the native floors of the step
# (V) and of the KCL residual (A), the step limit (V), then ngspice's reltol, vntol (V) and abstol (A)
T_V, T_I, T_DV, T_RELTOL, T_VNTOL, T_ABSTOL = range(6)
N_TOL = 6


@njit(cache=True, inline="always")
def mos_current(va, vb, vg, vbi, beta, prm, tie):
    """Level-1 NMOS channel current a -> b (A) and its derivatives in va and vb (S); body at ground (``tie`` 0.0),
    or at terminal a (``tie`` 1.0, where ``prm[P_BODY]`` is 1: then V_BS = va - V_S, and d/dva also carries the
    body's gmbs). ``tie`` is an argument so that a caller's constant folds away.

    ``vbi`` = V_T0 - gamma sqrt(phi) (V) and ``beta`` = K (A/V^2) of this transistor, so that
    V_T = vbi + gamma sarg. The lower terminal is the source. Same branches as ``mos.nmos_current``.
    """
    i, d_a, d_b, _ = mos_current_gate(va, vb, vg, vbi, beta, prm, tie)
    return i, d_a, d_b


@njit(cache=True, inline="always")
def mos_current_gate(va, vb, vg, vbi, beta, prm, tie):
    """``mos_current`` and the current's derivative in vg (S): (I, dI/dva, dI/dvb, dI/dvg). Inlined, a caller that
    drops the gate derivative compiles as if it were never computed."""
    forward = va >= vb
    if forward:
        vd, vs = va, vb
    else:
        vd, vs = vb, va
    vds = vd - vs
    vbs = tie * va - vs
    gamma = prm[P_GAMMA]
    if gamma == 0.0:  # no body effect: skip the square root
        sarg = 0.0
        dvon = 0.0
    elif vbs <= 0.0:
        sarg = math.sqrt(prm[P_PHI] - vbs)
        dvon = -gamma / (2.0 * sarg) if sarg > 0.0 else 0.0
    else:
        sarg = prm[P_SQPHI] - vbs / (2.0 * prm[P_SQPHI])
        if sarg > 0.0:
            dvon = -gamma / (2.0 * prm[P_SQPHI])
        else:
            sarg = 0.0
            dvon = 0.0
    vgst = vg - vs - (vbi + gamma * sarg)
    if vgst <= 0.0:
        return 0.0, 0.0, 0.0, 0.0
    lam = prm[P_LAMBDA]
    betap = beta * (1.0 + lam * vds)
    if vgst <= vds:  # saturation
        ids = 0.5 * betap * vgst * vgst
        gm = betap * vgst
        gds = 0.5 * lam * beta * vgst * vgst
    else:  # linear
        ids = betap * vds * (vgst - 0.5 * vds)
        gm = betap * vds
        gds = betap * (vgst - vds) + lam * beta * vds * (vgst - 0.5 * vds)
    gmbs = -gm * dvon
    d_vs = -(gm + gds + gmbs)
    if forward:
        return ids, gds + tie * gmbs, d_vs, gm
    return -ids, -d_vs - tie * gmbs, -gds, -gm


#: the local solve of ``series_mos_currents`` (as ``mos.SERIES_MAX_STEPS``, ``mos.SERIES_RTOL``,
#: ``mos.SERIES_QUADRATIC``: the Newton step, in volts at the internal nodes, that is the last one needed)
SERIES_MAX_STEPS, SERIES_RTOL, SERIES_QUADRATIC = 60, 1e-14, 1e-8
#: ``lambert_w_exp``: steps at most (from its lower bounds it takes 1-3), the relative step after which none is
#: needed (the fourth-order iteration leaves ~1e-16 of W), and the argument below which the series
#: W(a) = a - a^2 + 1.5 a^3 is exact to rounding (the next term, (8/3) a^4, is below 3e-20 of W)
W_MAX_STEPS, W_LAST, W_SERIES = 40, 1e-4, 1e-5
#: a guess farther from the root (in w + ln w - log_a) is dropped for the lower bound: far from the root the
#: iteration, unlike from below (at most 0.45 off there), can settle on a false fixed point
W_NEAR = 0.25
LOG_W_SERIES = math.log(W_SERIES)


# the edge law of a (kind, prm), decided once per call of ``assemble`` / ``kcl_converged`` rather than per edge
LAW_MOS, LAW_SERIES_MOS, LAW_THREE_REGIME, LAW_CONDUCTANCE = range(4)


@njit(cache=True, inline="always")
def edge_law(kind, prm):
    """LAW_* of the edges: level 1 (``mos_current``; ``series_mos_currents`` with series resistances), the
    three-regime law, or a conductance."""
    if kind == KIND_NMOS:
        return LAW_MOS if prm[P_RD] == 0.0 and prm[P_RS] == 0.0 else LAW_SERIES_MOS
    return LAW_THREE_REGIME if kind == KIND_THREE_REGIME else LAW_CONDUCTANCE


@njit(cache=True, inline="always")
def edge_current(law, tied, va, vb, ctrl, vbi, beta, prm):
    """An edge's currents by the law ``law`` (``edge_law``), with level 1's body at terminal a if ``tied``; ``ctrl``
    is the gate voltage (V) or the conductance (S). Returns (I_a, dI_a/dva, dI_a/dvb, I_b, dI_b/dva, dI_b/dvb): the
    current out of node a into the edge and the current out of the edge into node b (A), and their derivatives
    (S). The two are one current except behind series resistances with a grounded body, where the bulk junctions at
    the internal nodes take the difference to ground (``series_mos_currents``)."""
    if law == LAW_MOS:
        i, d_a, d_b = mos_current(va, vb, ctrl, vbi, beta, prm, 1.0 if tied else 0.0)
        return i, d_a, d_b, i, d_a, d_b
    if law == LAW_SERIES_MOS:
        return series_mos_currents(va, vb, ctrl, vbi, beta, prm, prm[P_BODY_SERIES] != 0.0)
    if law == LAW_THREE_REGIME:
        i, d_a, d_b = three_regime_current(va, vb, ctrl, vbi, beta, prm)
        return i, d_a, d_b, i, d_a, d_b
    i, d_a, d_b = ctrl * (va - vb), ctrl, -ctrl
    return i, d_a, d_b, i, d_a, d_b


@njit(cache=True, inline="always")
def lambert_w_exp(log_a, guess):
    """Lambert's W(a) at a = e^log_a: the w >= 0 with w e^w = a, found as the root of w + ln w = log_a, so that a
    need not be formed (a forward-biased junction's a overflows). The iteration of Fritsch, Shafer and Crowley
    (Comm. ACM 16, 1973; fourth order: a step of relative size eps leaves an error ~eps^4, so one of ``W_LAST`` or
    less is the last one needed), from ``guess`` if positive and near (the root for a nearby argument: one step,
    rarely two; one farther off than ``W_NEAR`` is dropped), else from a lower bound of the root (a / (1 + a) for
    log_a < 1, log_a - ln log_a above), from which it converges in 1-3 steps. Below ``W_SERIES``
    the series a - a^2 + 1.5 a^3 is exact to rounding. NaN in, NaN out."""
    if log_a < LOG_W_SERIES:
        a = math.exp(log_a)
        return a * (1.0 - a * (1.0 - 1.5 * a))
    trusted = not guess > 0.0
    w = _w_below(log_a) if trusted else guess
    for _ in range(W_MAX_STEPS):
        z = log_a - w - math.log(w)  # 0 at the root
        if not (trusted or abs(z) < W_NEAR):  # a guess far from the root: start again from below
            w = _w_below(log_a)
            trusted = True
            continue
        # eps = z / (1 + w) (q - z) / (q - 2 z), q = 2 (1 + w) (1 + w + 2 z / 3), written so that q cannot overflow
        t = z / (1.0 + w)
        r = t / (2.0 * (1.0 + w + z * (2.0 / 3.0)))
        eps = t * (1.0 - r) / (1.0 - 2.0 * r)
        w *= 1.0 + eps
        if not abs(eps) > W_LAST:
            break
    return w


@njit(cache=True, inline="always")
def _w_below(log_a):
    """A lower bound of ``lambert_w_exp``'s root: a / (1 + a) for log_a < 1, log_a - ln log_a above."""
    if log_a < 1.0:
        a = math.exp(log_a)
        return a / (1.0 + a)
    return log_a - math.log(log_a)


@njit(cache=True, inline="always")
def behind_resistance(u, c, vbody, g, log_c0, guess, prm):
    """The internal node behind a series resistance: its voltage x (V), where a terminal at u (V) feeds, through a
    conductance g > 0 (S), a current c (A) on into the channel and the bulk junction to the body at ``vbody`` (V),

        g (u - x) = c + J(x - vbody),        J = ``junction_current`` (out of the node into the body);

    and J (A) and dJ/dx (S) there, and the W below (for ``guess``, a start for the next call; 0 where none was
    needed). In closed form: past the junction's branch point (x - vbody >= 3 V_T) J = I_S + gmin (x - vbody) is
    linear and x = x_0 = (g u + gmin vbody - I_S - c) / G, G = g + gmin; short of it J is that less
    I_S e^((vbody - x) / V_T), and the law becomes G (x - x_0) = I_S e^((vbody - x) / V_T), so that
    x = x_0 + V_T W(I_S e^((vbody - x_0) / V_T) / (G V_T)) (``lambert_w_exp``; ``log_c0`` = ln(I_S / (G V_T))) and
    e^((vbody - x) / V_T) I_S = G (x - x_0): no exponential to evaluate beyond W's, exact in the junction's forward
    bias as in its reverse. ngspice's law jumps by I_S e^-3 at the branch point, so for u in a window I_S e^-3 / g
    wide neither branch has a root: the node then sits on the branch point and J = g (u - x) - c takes the value
    between the branches that closes its law, dJ/dx infinite (returned as inf). So x and J are continuous in u and
    c (and a network's Kirchhoff law with them), where ngspice's equations have a jump there."""
    vt = prm[P_VT]
    gmin = prm[P_GMIN]
    i_s = prm[P_IS]
    big = g + gmin
    x0 = (g * u + gmin * vbody - i_s - c) / big
    over = x0 - vbody
    if -over <= -3.0 * vt:  # the linear branch, tested as ``junction_current`` tests it
        return x0, i_s + gmin * over, gmin, 0.0
    w = lambert_w_exp(log_c0 - over / vt, guess)
    z = vt * w
    x = x0 + z
    if -(x - vbody) <= -3.0 * vt:  # past the branch point: the root is the jump's
        x = vbody + 3.0 * vt
        return x, g * (u - x) - c, math.inf, w
    return x, i_s + gmin * (x - vbody) - big * z, big * z / vt + gmin, w


@njit(cache=True, inline="always")
def _series_side(u, c, vbody, r, g, log_c0, guess, prm):
    """One end of ``series_mos_currents``: the internal node behind a resistance r (ohm) of conductance g (S)
    (``behind_resistance``, with its ``log_c0`` and ``guess``), or with r = 0 the terminal itself and its junction.
    Returns (x, J, k, q, gq, w): the node's voltage (V) and junction current (A); k = -dx/dc = 1 / (g + J') (1/S),
    q = J' k = dx/dvbody (1 - q = dx/du) and gq = g J' k, the conductance of resistance and junction in series (S);
    r = 0: k = q = 0 and gq = J'. On the branch point's window (J' infinite) k = 0, q = 1, gq = g. w: W's value."""
    if r > 0.0:
        x, j, gj, w = behind_resistance(u, c, vbody, g, log_c0, guess, prm)
        if gj == math.inf:
            return x, j, 0.0, 1.0, g, w
        k = 1.0 / (g + gj)
        return x, j, k, gj * k, g * gj * k, w
    j, gj = junction_current(u - vbody, prm)
    return u, j, 0.0, 0.0, gj, 0.0


def series_constants(prm):
    """Fill in ``prm``'s P_LOG_D and P_LOG_S from its I_S, V_T, gmin and series resistances (in place); -inf for
    I_S = 0 (no junction current: W's argument is 0)."""
    for slot, r in ((P_LOG_D, prm[P_RD]), (P_LOG_S, prm[P_RS])):
        if r > 0.0:
            prm[slot] = math.log(prm[P_IS] / (prm[P_VT] * (1.0 / r + prm[P_GMIN]))) if prm[P_IS] > 0.0 else -math.inf
        else:
            prm[slot] = 0.0


@njit(cache=True)
def series_mos_currents(va, vb, vg, vbi, beta, prm, tied):
    """Level 1 with series resistances R_d = prm[P_RD] at terminal a (the drain) and R_s = prm[P_RS] at b, as
    ngspice builds it: internal nodes d' and s' between each resistance and the channel, and the bulk junctions on
    d' and s' to the body at ground, or at terminal a if ``tied`` (docs/physics.md 2.1). With I the channel current
    d' -> s' (``mos_current`` with the body at V_B: voltages less V_B),

        (V_a - V_d') / R_d = I + J(V_d' - V_B),        (V_s' - V_b) / R_s = I - J(V_s' - V_B),

    J being the junction current out of a node into the body (a zero resistance pins its node: V_d' = V_a or
    V_s' = V_b). Given I, each internal node solves its own law in closed form (``behind_resistance``), V_d' falling
    and V_s' rising with I, so that g(I) = I - I_ch(V_d'(I), V_s'(I)) rises with slope D = 1 + f_d k_d - f_s k_s
    >= 1 (f_d = dI_ch/dV_d' >= 0 >= f_s = dI_ch/dV_s', k = 1 / (1/R + J') at each node) and its root lies between 0
    and I_0 = I_ch at I = 0: Newton's method from I_0 / D_0, bisecting where a step would leave that bracket. The
    derivatives follow by the implicit function theorem.

    Returns (I_a, dI_a/dva, dI_a/dvb, I_b, dI_b/dva, dI_b/dvb) as ``edge_current``: the current into b is
    I_b = I - J_s'; out of a, I_a = I + J_d' with the body grounded (the junctions' currents leave to ground) and
    I_b with the body at a (it returns to a). NaN if the local solve did not converge (never seen: the caller's
    Newton then fails the sample rather than use it)."""
    rd = prm[P_RD]
    rs = prm[P_RS]
    gd = 1.0 / rd if rd > 0.0 else 0.0
    gs = 1.0 / rs if rs > 0.0 else 0.0
    vbody = va if tied else 0.0
    tie = 1.0 if tied else 0.0
    log_d = prm[P_LOG_D]
    log_s = prm[P_LOG_S]
    xd, jd, kd, qd, gqd, wd = _series_side(va, 0.0, vbody, rd, gd, log_d, 0.0, prm)
    xs, js, ks, qs, gqs, ws = _series_side(vb, 0.0, vbody, rs, gs, log_s, 0.0, prm)
    i0, ia, ib, ig = mos_current_gate(xd - vbody, xs - vbody, vg - vbody, vbi, beta, prm, 0.0)
    lo = min(i0, 0.0)
    hi = max(i0, 0.0)
    i = i0 / (1.0 + ia * kd - ib * ks)
    converged = False
    at = i
    for _ in range(SERIES_MAX_STEPS):
        at = i
        xd, jd, kd, qd, gqd, wd = _series_side(va, i, vbody, rd, gd, log_d, wd, prm)
        xs, js, ks, qs, gqs, ws = _series_side(vb, -i, vbody, rs, gs, log_s, ws, prm)
        f, ia, ib, ig = mos_current_gate(xd - vbody, xs - vbody, vg - vbody, vbi, beta, prm, 0.0)
        g = i - f
        if g == 0.0:
            converged = True
            break
        if g < 0.0:
            lo = i
        else:
            hi = i
        new = i - g / (1.0 + ia * kd - ib * ks)
        # the current's resolution: SERIES_RTOL of itself, and of what the channel's voltages resolve (at nearly equal
        # terminals the current is a difference of two voltages, and rounding there alone moves it by more)
        res = SERIES_RTOL * (abs(new) + (ia - ib) * max(abs(xd - vbody), abs(xs - vbody), 1.0))
        inside = lo < new < hi
        # a Newton step that moves the internal nodes by at most SERIES_QUADRATIC is the last one needed: the error
        # it leaves, ~ (f_d + |f_s|) step^2 / (2 V_T) from the junctions' curvature, is below that resolution
        if abs(new - i) <= res or (inside and abs(new - i) * max(kd, ks) <= SERIES_QUADRATIC):
            i = new
            converged = True
            break
        if not inside:  # also where rounding makes Newton alternate between two points: bisect
            new = 0.5 * (lo + hi)
        i = new
        if hi - lo <= res:
            converged = True
            break
    if not converged:
        return math.nan, math.nan, math.nan, math.nan, math.nan, math.nan
    # the junctions' currents at the last evaluation, carried to the final I to first order (their derivatives in
    # I: -q_d and +q_s); the derivatives below are the last evaluation's
    jd -= qd * (i - at)
    js += qs * (i - at)
    den = 1.0 + ia * kd - ib * ks
    ibody = -(ia + ib + ig)  # dI_ch/dV_B at fixed V_d', V_s', V_G: the law depends on voltage differences only
    # I: V_d' moves with V_a by 1 - q_d, with V_B by q_d, with I by -k_d; V_s' with V_b by 1 - q_s, V_B q_s, I +k_s
    di_a = (ia * (1.0 - qd + tie * qd) + tie * (ib * qs + ibody)) / den
    di_b = ib * (1.0 - qs) / den
    # the junctions J(V_x' - V_B): J' (dV_x' - dV_B) = gq (du - dV_B) -+ q dI
    in_b = i - js
    db_a = di_a - (qs * di_a - tie * gqs)
    db_b = di_b - (gqs + qs * di_b)
    if tied:
        return in_b, db_a, db_b, in_b, db_a, db_b
    return in_b + jd + js, db_a + gqd - qd * di_a + qs * di_a, db_b - qd * di_b + gqs + qs * di_b, in_b, db_a, db_b


@njit(cache=True, inline="always")
def forward_current(x, beta, prm):
    """F(x) (A) of the three-regime law and dF/dx (S) at gate overdrive x (V) over one terminal: (K/2) x^2 above
    the join, (K/2) x_j^2 exp((x - x_j) ln10 / decade) below (``mos.three_regime_current``)."""
    join = prm[P_JOIN]
    if x > join:
        if x < prm[P_XCAP]:
            return 0.5 * beta * x * x, beta * x
        return 0.5 * beta * prm[P_XCAP] * prm[P_XCAP], 0.0
    sub = 0.5 * beta * join * join * math.exp((x - join) * prm[P_SUBSLOPE])
    return sub, sub * prm[P_SUBSLOPE]


@njit(cache=True, inline="always")
def three_regime_current(va, vb, vg, vt, beta, prm):
    """Three-regime channel current a -> b (A) and its derivatives in va and vb (S):
    F(vg - vt - vb) - F(vg - vt - va) + gmin (va - vb)."""
    f_b, g_b = forward_current(vg - vt - vb, beta, prm)
    f_a, g_a = forward_current(vg - vt - va, beta, prm)
    gmin = prm[P_GMIN]
    return f_b - f_a + gmin * (va - vb), g_a + gmin, -g_b - gmin


@njit(cache=True, inline="always")
def junction_current(v, prm):
    """Current (A) out of a node through one grounded bulk diode (with ngspice's gmin), and its derivative (S).

    As in ngspice, the current jumps up by I_S e^-3 where the node passes 3 V_T (the deep branch from there on),
    so a node's KCL can jump across zero without a zero (``native.NativeSolver._junction_corner``)."""
    vbx = -v
    vt = prm[P_VT]
    gmin = prm[P_GMIN]
    if vbx <= -3.0 * vt:
        return -(gmin * vbx - prm[P_IS]), gmin
    ev = math.exp(min(vbx / vt, MAX_EXP_ARG))
    return -(prm[P_IS] * (ev - 1.0) + gmin * vbx), prm[P_IS] * ev / vt + gmin


@njit(cache=True, inline="always")
def body_junction(va, vb, prm):
    """Current (A) out of terminal b into a body tied to terminal a through b's bulk diode (a's own diode is
    shorted), and its derivative in vb (S): ``junction_current`` at V_BX = va - vb."""
    return junction_current(vb - va, prm)


@njit(cache=True)
def assemble(v, ctrl, kind, prm, vbi, beta, ea, eb, pos, slots, unk, n_junctions, diag, f, jac):
    """KCL residual ``f`` [n_u] (A, net current out of each unknown node) and Jacobian slots ``jac`` (S).

    Args:
        v: [N] node voltages (V). ctrl: [E] gate voltages (V) or conductances (S).
        vbi, beta: [E] per-transistor V_T0 - gamma sqrt(phi) (V) and K (A/V^2); unused for conductances.
        ea, eb: [E] edge end nodes. pos: [N] unknown index of each node, -1 if driven.
        slots: [E, 4] positions in ``jac`` of d f_a/d v_a, d f_a/d v_b, d f_b/d v_a, d f_b/d v_b (-1: absent).
        unk: [n_u] node of each unknown. n_junctions: [n_u] bulk diodes at it. diag: [n_u] slot of its diagonal.
    """
    f[:] = 0.0
    jac[:] = 0.0
    law = edge_law(kind, prm)
    tied = kind == KIND_NMOS and prm[P_BODY] != 0.0
    # the common case (level 1, no series resistances, bodies grounded) gets a loop of its own: the other laws'
    # code in the loop costs it ~12% even where not taken (measured on the 4x4 torus)
    if law == LAW_MOS and not tied:
        _assemble_edges(v, ctrl, LAW_MOS, False, prm, vbi, beta, ea, eb, pos, slots, f, jac)
    else:  # a call, not inlined: the other laws' code out of the common path's way
        _assemble_general(v, ctrl, law, tied, prm, vbi, beta, ea, eb, pos, slots, f, jac)
    if kind == KIND_NMOS:
        for k in range(unk.shape[0]):
            i, g = junction_current(v[unk[k]], prm)
            f[k] += n_junctions[k] * i
            jac[diag[k]] += n_junctions[k] * g


@njit(cache=True)
def _assemble_general(v, ctrl, law, tied, prm, vbi, beta, ea, eb, pos, slots, f, jac):
    """``_assemble_edges`` for any law, compiled on its own."""
    _assemble_edges(v, ctrl, law, tied, prm, vbi, beta, ea, eb, pos, slots, f, jac)


@njit(cache=True, inline="always")
def _assemble_edges(v, ctrl, law, tied, prm, vbi, beta, ea, eb, pos, slots, f, jac):
    """The edges' part of ``assemble``: each edge's current by ``law`` (``edge_law``), and with ``tied`` its body
    junction."""
    for e in range(ea.shape[0]):
        va = v[ea[e]]
        vb = v[eb[e]]
        i_a, da_a, da_b, i_b, db_a, db_b = edge_current(law, tied, va, vb, ctrl[e], vbi[e], beta[e], prm)
        ia = pos[ea[e]]
        ib = pos[eb[e]]
        if ia >= 0:
            f[ia] += i_a
        if ib >= 0:
            f[ib] -= i_b
        s = slots[e]
        if s[0] >= 0:
            jac[s[0]] += da_a
        if s[1] >= 0:
            jac[s[1]] += da_b
        if s[2] >= 0:
            jac[s[2]] -= db_a
        if s[3] >= 0:
            jac[s[3]] -= db_b
        if tied:
            i, g = body_junction(va, vb, prm)
            if ib >= 0:
                f[ib] += i
            if ia >= 0:
                f[ia] -= i
            if s[0] >= 0:
                jac[s[0]] += g
            if s[1] >= 0:
                jac[s[1]] -= g
            if s[2] >= 0:
                jac[s[2]] -= g
            if s[3] >= 0:
                jac[s[3]] += g


@njit(cache=True)
def add_shunt(v, unk, diag, g, f, jac):
    """Add a conductance ``g`` (S) from every unknown node to ground to the residual and Jacobian (the
    continuation of gmin stepping, see ``native.NativeSolver``)."""
    for k in range(unk.shape[0]):
        f[k] += g * v[unk[k]]
        jac[diag[k]] += g


@njit(cache=True, inline="always")
def node_tolerance(new, old, tol):
    """Largest converged change (V) of a node voltage from ``old`` to ``new``: ngspice's ``NIconvTest``,
    reltol max(|new|, |old|) + vntol, capped by the native floor ``tol[T_V]``."""
    return min(tol[T_RELTOL] * max(abs(new), abs(old)) + tol[T_VNTOL], tol[T_V])


@njit(cache=True)
def step_ratio(old, dx, tol):
    """Largest |dx| / ``node_tolerance`` over nodes at voltages old [n] (V) stepping by dx [n] (V): <= 1 when the
    step is converged."""
    worst = 0.0
    for k in range(old.shape[0]):
        worst = max(worst, abs(dx[k]) / node_tolerance(old[k] + dx[k], old[k], tol))
    return worst


@njit(cache=True)
def kcl_converged(v, f, ctrl, kind, prm, vbi, beta, ea, eb, pos, unk, n_junctions, tol, total):
    """Whether the KCL residual f [n_u] (A, as ``assemble`` gives it at v [N]) is converged at every unknown node:
    |f_k| <= reltol sum_k + abstol, capped by the native floor max(``tol[T_I]``, ``KCL_ROUNDING`` sum_k), where
    sum_k (A) is the sum of the magnitudes of the device currents at node k (edges and bulk junctions). A node's
    residual is the sum of its devices' errors; ngspice's device check (``MOS1convTest``) allows each device
    reltol |I| + abstol. The sums are evaluated (into the work space ``total`` [n_u]) only when the residual alone
    does not decide."""
    n = unk.shape[0]
    fmax = 0.0
    for k in range(n):
        fmax = max(fmax, abs(f[k]))
    if fmax <= min(tol[T_ABSTOL], tol[T_I]):
        return True
    if not fmax == fmax:  # NaN
        return False
    total[:] = 0.0
    law = edge_law(kind, prm)
    tied = kind == KIND_NMOS and prm[P_BODY] != 0.0
    for e in range(ea.shape[0]):
        i_a, _, _, i_b, _, _ = edge_current(law, tied, v[ea[e]], v[eb[e]], ctrl[e], vbi[e], beta[e], prm)
        if pos[ea[e]] >= 0:
            total[pos[ea[e]]] += abs(i_a)
        if pos[eb[e]] >= 0:
            total[pos[eb[e]]] += abs(i_b)
        if tied:
            i = abs(body_junction(v[ea[e]], v[eb[e]], prm)[0])
            if pos[ea[e]] >= 0:
                total[pos[ea[e]]] += i
            if pos[eb[e]] >= 0:
                total[pos[eb[e]]] += i
    if kind == KIND_NMOS:
        for k in range(n):
            total[k] += n_junctions[k] * abs(junction_current(v[unk[k]], prm)[0])
    for k in range(n):
        if abs(f[k]) > min(tol[T_RELTOL] * total[k] + tol[T_ABSTOL], max(tol[T_I], KCL_ROUNDING * total[k])):
            return False
    return True


#: per-node step limit: factor on a reversal of the node's step, factor while the limit cuts its step, floor (V)
LIMIT_SHRINK, LIMIT_GROW, LIMIT_FLOOR = 0.5, 1.2, 1e-3


@njit(cache=True)
def apply_step(v, dx, unk, lo, hi, limit, last, tol):
    """v[unk] += dx, limited per node and kept in [lo, hi]; return the largest excess (V) of a node's change over
    its ``node_tolerance`` (the step is converged when <= 0; NaN if a step is NaN). ``tol``: see ``T_*``. (A
    difference, not a ratio: a division per node and iteration cost the 4x4 regression's compiled loop 1-3%.)

    ``limit`` [n_u] (V, start at ``dv_max``) adapts per node: halved when the node's step reverses
    direction, grown by ``LIMIT_GROW`` (up to ``dv_max``) while it cuts the node's Newton step. Why: a node
    whose transistors are all cut off is held only by junction leakage and gmin (~1e-12 S), so its Newton
    step is huge; clipped to a fixed limit, such steps throw islands of nodes across the thresholds of
    their edges and back without end. Nodes that cycle get ever smaller limits, nodes that travel keep
    large ones. Measured on ~50,000 solves of random networks of 4 to 420 nodes with gates of 0.4 to
    0.9..8 V (many nearly dead): no failures, 17 iterations on average, at most 164; with a fixed limit,
    7% of them cycle forever. Normal networks are unaffected. The floor stops the limit at 1 mV, below
    which Newton's own convergence takes over. ``last`` [n_u] holds the previous limited step.
    [lo, hi] spans 0 V and every driven voltage: by Kirchhoff's law a solution lies inside it (every edge
    and junction current flows from the higher to the lower voltage).
    """
    dv_max = tol[T_DV]
    # with ngspice's vntol at or above the native floor every node's tolerance is that floor (the common case)
    flat = tol[T_VNTOL] >= tol[T_V]
    worst = 0.0
    for k in range(unk.shape[0]):
        step = dx[k]
        if step * last[k] < 0.0:
            limit[k] = max(limit[k] * LIMIT_SHRINK, min(LIMIT_FLOOR, dv_max))
        elif abs(step) > limit[k]:
            limit[k] = min(limit[k] * LIMIT_GROW, dv_max)
        step = min(max(step, -limit[k]), limit[k])
        old = v[unk[k]]
        new = min(max(old + step, lo), hi)
        v[unk[k]] = new
        last[k] = step  # the step before the box: a node pushing against a bound still has a direction
        worst = max(worst, abs(new - old) - (tol[T_V] if flat else node_tolerance(new, old, tol)))
    return worst


@njit(cache=True)
def lu_solve(a, b):
    """Solve a x = b in place (b becomes x) by LU without pivoting; a [n, n] is overwritten.

    No pivoting is needed: the KCL Jacobian is a column diagonally dominant M-matrix (each edge adds
    equal and opposite entries to a column, junctions add to the diagonal), for which Gaussian
    elimination in natural order is stable.
    """
    n = b.shape[0]
    for k in range(n):
        inv = 1.0 / a[k, k]
        for i in range(k + 1, n):
            lik = a[i, k]
            if lik != 0.0:
                lik *= inv
                a[i, k] = lik
                for j in range(k + 1, n):
                    a[i, j] -= lik * a[k, j]
                b[i] -= lik * b[k]
    for k in range(n - 1, -1, -1):
        s = b[k]
        for j in range(k + 1, n):
            s -= a[k, j] * b[j]
        b[k] = s / a[k, k]


@njit(cache=True)
def newton_work(n_nodes, n):
    """Work space of ``newton_sample`` for N = ``n_nodes`` nodes and ``n`` unknowns, allocated once per batch:
    (f, jac, limit, last, v_old, f_old, total) with f, limit, last, f_old, total [n], jac [n * n], v_old [N]."""
    return np.empty(n), np.empty(n * n), np.empty(n), np.empty(n), np.empty(n_nodes), np.empty(n), np.empty(n)


@njit(cache=True, inline="always")
def newton_sample(v, cold, drv_nodes, drv_vals, ctrl, kind, prm, vbi, beta, ea, eb, pos, slots, unk, n_junctions,
                diag, max_iter, tol, gshunt, work):
    """Dense Newton for one sample, in place on v [N]; ``work`` is its work space (``newton_work``).

    Sets the driven nodes, starts from the mean driven voltage if ``cold``, and returns
    (iterations, max |residual| in A, status); status ``NOT_FINITE`` if a driven voltage or control is not finite.
    ``gshunt`` (S): an extra conductance from every unknown node to ground (0 for the circuit itself).

    Convergence as in ngspice's ``NIiter``: the load at the current point checks KCL there (``kcl_converged``, as
    the device tests during ``CKTload`` do), the step is solved and applied, and the new point is the answer when
    KCL closed at the point it started from and the step was converged at every node (``apply_step``, as
    ``NIconvTest``). At most ``max_iter`` steps (ngspice's itl1); the iterations returned are the steps.
    """
    n = unk.shape[0]
    f, jac, limit, last, v_old, f_old, total = work
    lo = 0.0
    hi = 0.0
    mean = 0.0
    for k in range(drv_nodes.shape[0]):
        x = drv_vals[k]
        v[drv_nodes[k]] = x
        lo = min(lo, x)
        hi = max(hi, x)
        mean += x
    check = mean
    for e in range(ctrl.shape[0]):
        check += ctrl[e]
    if not math.isfinite(check):
        return 0, np.nan, NOT_FINITE
    if cold:
        mean /= max(drv_nodes.shape[0], 1)
        for k in range(n):
            v[unk[k]] = mean
    a = jac.reshape((n, n))
    limit[:] = tol[T_DV]
    last[:] = 0.0
    fmax = np.inf
    for it in range(1, max_iter + 1):
        assemble(v, ctrl, kind, prm, vbi, beta, ea, eb, pos, slots, unk, n_junctions, diag, f, jac)
        if gshunt != 0.0:
            add_shunt(v, unk, diag, gshunt, f, jac)
        fmax = 0.0
        for k in range(n):
            fmax = max(fmax, abs(f[k]))
        # KCL closes outright below both floors; above them it needs each node's sum of device currents, evaluated
        # only if the step turns out converged (on a copy of this load's point)
        undecided = fmax > min(tol[T_ABSTOL], tol[T_I])
        if undecided:  # keep the load's point and residual for those sums
            v_old[:] = v
            f_old[:] = f
        for k in range(n):
            f[k] = -f[k]
        lu_solve(a, f)
        excess = apply_step(v, f, unk, lo, hi, limit, last, tol)
        if not (excess == excess):  # NaN: give up on this sample
            break
        if excess <= 0.0 and (not undecided or kcl_converged(
                v_old, f_old, ctrl, kind, prm, vbi, beta, ea, eb, pos, unk, n_junctions, tol, total)):
            return it, fmax, CONVERGED
    return max_iter, fmax, NOT_CONVERGED


@njit(cache=True)
def _newton_range(start, stop, v, cold, drv_nodes, drv_vals, ctrl, kind, prm, vbi, beta, ea, eb, pos, slots, unk,
                  n_junctions, diag, max_iter, tol, iters, resid, status):
    work = newton_work(v.shape[1], unk.shape[0])
    shared = ctrl.shape[0] == 1
    for b in range(start, stop):
        c = ctrl[0] if shared else ctrl[b]
        iters[b], resid[b], status[b] = newton_sample(v[b], cold[b], drv_nodes, drv_vals[b], c, kind, prm, vbi, beta,
                                                    ea, eb, pos, slots, unk, n_junctions, diag, max_iter, tol, 0.0,
                                                    work)


@njit(cache=True, nogil=True)
def newton_dense_one(v, cold, drv_nodes, drv_vals, ctrl, kind, prm, vbi, beta, ea, eb, pos, slots, unk, n_junctions,
                     diag, max_iter, tol, gshunt):
    """Dense Newton for one sample v [N] (in place) with a shunt ``gshunt`` (S) from every unknown node to
    ground; drv_vals [n_driven], ctrl [E]. Returns (iterations, max |residual| in A, status). For the
    retries of ``native.NativeSolver`` (a cold start, gmin stepping), not for the common path."""
    return newton_sample(v, cold, drv_nodes, drv_vals, ctrl, kind, prm, vbi, beta, ea, eb, pos, slots, unk, n_junctions,
                         diag, max_iter, tol, gshunt, newton_work(v.shape[0], unk.shape[0]))


@njit(cache=True, nogil=True)
def newton_dense(v, cold, drv_nodes, drv_vals, ctrl, kind, prm, vbi, beta, ea, eb, pos, slots, unk, n_junctions,
                 diag, max_iter, tol, iters, resid, status):
    """Dense Newton on every sample of a batch in turn, in place on v [B, N].

    Args:
        cold: bool [B], start this sample from its mean driven voltage (else from v).
        drv_nodes: int [n_driven]; drv_vals: [B, n_driven] their voltages (V).
        ctrl: [1, E] shared or [B, E] per sample.
        vbi, beta: [E] per-transistor constants (see ``assemble``).
        tol: [N_TOL] tolerances, indexed by ``T_*`` (see ``node_tolerance``, ``kcl_converged``, ``apply_step``).
        iters, resid (A), status: [B] outputs.
    """
    _newton_range(0, v.shape[0], v, cold, drv_nodes, drv_vals, ctrl, kind, prm, vbi, beta, ea, eb, pos, slots, unk,
                  n_junctions, diag, max_iter, tol, iters, resid, status)


@njit(cache=True, parallel=True, nogil=True)
def newton_dense_parallel(v, cold, drv_nodes, drv_vals, ctrl, kind, prm, vbi, beta, ea, eb, pos, slots, unk,
                          n_junctions, diag, max_iter, tol, iters, resid, status, n_chunks):
    """``newton_dense`` with the batch cut into ``n_chunks`` contiguous chunks run on threads."""
    batch = v.shape[0]
    for chunk in prange(n_chunks):
        _newton_range(chunk * batch // n_chunks, (chunk + 1) * batch // n_chunks, v, cold, drv_nodes, drv_vals,
                      ctrl, kind, prm, vbi, beta, ea, eb, pos, slots, unk, n_junctions, diag, max_iter, tol, iters,
                      resid, status)
