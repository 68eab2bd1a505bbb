"""Compiled (numba) kernels of the native DC solver: device laws, KCL assembly, Newton on a batch.

Owned here: the scalar level-1 NMOS law and bulk junction law (the same equations as ngspice 39 ``mos1load.c``, see
``devices.nmos_current``; series drain and source resistances solved per edge, ``devices.series_current``), the
authors' three-regime law (``devices.three_regime_current``), the assembly of the KCL residual and its Jacobian
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
# 1.0 where every body is tied to terminal a behind series resistances (``body_series_mos_current``; P_BODY is
# then 0.0: that law carries the junctions itself)
P_BODY_SERIES = 13
N_PRM = 14

#: ngspice's cap on exponent arguments (``MAX_EXP_ARG`` for IEEE doubles).
MAX_EXP_ARG = 709.0

# status per sample
CONVERGED, NOT_CONVERGED, NOT_FINITE = 0, 1, 2

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
    V_T = vbi + gamma sarg. The lower terminal is the source. Same branches as ``devices.nmos_current``.
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


#: the local solve of ``series_mos_current`` (as ``devices.SERIES_MAX_STEPS``, ``devices.SERIES_RTOL``)
SERIES_MAX_STEPS, SERIES_RTOL = 60, 1e-14


# the edge law of a (kind, prm), decided once per call of ``assemble`` / ``kcl_converged`` rather than per edge
LAW_MOS, LAW_SERIES_MOS, LAW_THREE_REGIME, LAW_CONDUCTANCE, LAW_BODY_SERIES_MOS = range(5)
#: ``body_series_mos_current``'s Newton stops at a step this small relative to its voltages (V/V): quadratic
#: convergence leaves an error ~ step^2 / (2 V_T) below SERIES_RTOL's 1e-14 V
SERIES_QUADRATIC = 1e-8


@njit(cache=True, inline="always")
def edge_law(kind, prm):
    """LAW_* of the edges: level 1 (``mos_current``; ``series_mos_current`` with series resistances), the
    three-regime law, or a conductance."""
    if kind == KIND_NMOS:
        if prm[P_BODY_SERIES] != 0.0:
            return LAW_BODY_SERIES_MOS
        return LAW_MOS if prm[P_RD] == 0.0 and prm[P_RS] == 0.0 else LAW_SERIES_MOS
    return LAW_THREE_REGIME if kind == KIND_THREE_REGIME else LAW_CONDUCTANCE


@njit(cache=True, inline="always")
def edge_current(law, tied, va, vb, ctrl, vbi, beta, prm):
    """Edge current a -> b (A) and its derivatives in va and vb (S) by the law ``law`` (``edge_law``), with level
    1's body at terminal a if ``tied``; ``ctrl`` is the gate voltage (V) or the conductance (S)."""
    if law == LAW_MOS:
        return mos_current(va, vb, ctrl, vbi, beta, prm, 1.0 if tied else 0.0)
    if law == LAW_SERIES_MOS:
        return series_mos_current(va, vb, ctrl, vbi, beta, prm)
    if law == LAW_THREE_REGIME:
        return three_regime_current(va, vb, ctrl, vbi, beta, prm)
    if law == LAW_BODY_SERIES_MOS:
        return body_series_mos_current(va, vb, ctrl, vbi, beta, prm)
    return ctrl * (va - vb), ctrl, -ctrl


@njit(cache=True)
def series_mos_current(va, vb, vg, vbi, beta, prm):
    """``mos_current`` through series resistances R_d = prm[P_RD] at terminal a and R_s = prm[P_RS] at terminal b:
    the current I with I = f(va - I R_d, vb + I R_s), by a scalar Newton iteration safeguarded by bisection inside
    [0, f(va, vb)], and dI/dv_a = f_a / D, dI/dv_b = f_b / D with D = 1 + f_a R_d - f_b R_s at the root (the implicit
    function theorem). As there, the resistances also carry the bulk junctions' currents, taken at the terminals
    (A = va - J(va) R_d and B = vb - J(vb) R_s in place of va and vb, and dI/dv_a, dI/dv_b times 1 - J' R)."""
    ra = prm[P_RD]
    rb = prm[P_RS]
    j_a, dj_a = junction_current(va, prm)
    j_b, dj_b = junction_current(vb, prm)
    va = va - j_a * ra
    vb = vb - j_b * rb
    i0, fa, fb = mos_current(va, vb, vg, vbi, beta, prm, 0.0)
    lo = min(i0, 0.0)
    hi = max(i0, 0.0)
    i = i0 / (1.0 + fa * ra - fb * rb)
    for _ in range(SERIES_MAX_STEPS):
        f, fa, fb = mos_current(va - i * ra, vb + i * rb, vg, vbi, beta, prm, 0.0)
        g = i - f
        if g == 0.0:
            break
        if g < 0.0:
            lo = i
        else:
            hi = i
        new = i - g / (1.0 + fa * ra - fb * rb)
        if abs(new - i) <= SERIES_RTOL * abs(new):
            i = new
            break
        if not lo < new < hi:  # also where rounding makes Newton alternate between two points: bisect
            new = 0.5 * (lo + hi)
        i = new
        if hi - lo <= SERIES_RTOL * abs(new):
            break
    den = 1.0 + fa * ra - fb * rb
    return i, fa / den * (1.0 - dj_a * ra), fb / den * (1.0 - dj_b * rb)


@njit(cache=True, inline="always")
def _body_series_system(d, s, va, vb, vg, vbi, beta, prm):
    """``body_series_mos_current``'s system at internal drain d and source s (V): the channel current and its
    derivatives in d, s and the gate, the source junction's current out of s' and the two junctions' conductances,
    the two residuals and the Jacobian (a11, a12; a21, a22) in (d, s)."""
    rd = prm[P_RD]
    rs = prm[P_RS]
    ich, ia, ib, ig = mos_current_gate(d - va, s - va, vg - va, vbi, beta, prm, 0.0)
    jd, gjd = junction_current(d - va, prm)  # out of d' into the body: J(va - d) = -jd, dJ/dd = -gjd
    js, gjs = junction_current(s - va, prm)
    if rd > 0.0:
        f1, a11, a12 = (va - d) / rd - jd - ich, -1.0 / rd - gjd - ia, -ib
    else:
        f1, a11, a12 = d - va, 1.0, 0.0
    if rs > 0.0:
        f2, a21, a22 = ich - js - (s - vb) / rs, ia, ib - gjs - 1.0 / rs
    else:
        f2, a21, a22 = s - vb, 0.0, 1.0
    return ich, ia, ib, ig, js, gjd, gjs, f1, f2, a11, a12, a21, a22


@njit(cache=True)
def body_series_mos_current(va, vb, vg, vbi, beta, prm):
    """Level-1 channel a -> b with series resistances R_d = prm[P_RD] at a and R_s = prm[P_RS] at b and its body
    tied to a: ngspice's bulk junctions then join the body to the internal drain d' and source s', behind the
    resistances (docs/physics.md 2.1). Newton on Kirchhoff's law at d' and s',

        (va - d) / R_d + J(va - d) = I_ch(d, s),    I_ch(d, s) + J(va - s) = (s - vb) / R_s

    (a zero resistance pins its node: d = va or s = vb), with I_ch the channel current with the body at va
    (``mos_current`` on the voltages less va, prm[P_BODY] being 0 for this law) and J the junction current from the
    body into a node (``junction_current``). Returns the edge current I = I_ch + J(va - s), which leaves a and
    enters b, and dI/dva, dI/dvb by the implicit function theorem (dI_ch/dv_body = -(dI_ch/dd + dI_ch/ds +
    dI_ch/dvg): the law depends on voltage differences only).

    Newton starts from the drops the channel current without the resistances would cause (one evaluation of the
    law, no junctions; 3.0 steps on average instead of 3.7 from d = va, s = vb) and stops once its step is within
    ``SERIES_QUADRATIC`` of the larger of |d|, |s| and 1 V: it converges quadratically there, so the error left
    (~ step^2 / 2 V_T from the junctions' curvature, < 1e-14 V) is below the step it would take next, and the
    currents at the last evaluation carried over that step to first order are exact to rounding (the
    derivatives, to 1e-8 of themselves: the Jacobian's, not the residual's, accuracy)."""
    rd = prm[P_RD]
    rs = prm[P_RS]
    gd = 1.0 / rd if rd > 0.0 else 0.0
    gs = 1.0 / rs if rs > 0.0 else 0.0
    i0 = mos_current(0.0, vb - va, vg - va, vbi, beta, prm, 0.0)[0]
    d = va - i0 * rd
    s = vb + i0 * rs
    converged = False
    for _ in range(SERIES_MAX_STEPS):
        ich, ia, ib, ig, js, gjd, gjs, f1, f2, a11, a12, a21, a22 = _body_series_system(d, s, va, vb, vg, vbi, beta,
                                                                                        prm)
        det = a11 * a22 - a12 * a21
        dd = (-f1 * a22 + f2 * a12) / det
        ds = (-f2 * a11 + f1 * a21) / det
        big = max(abs(dd), abs(ds))
        if big > 0.05:  # the junctions are exponential: at most 50 mV a step
            dd *= 0.05 / big
            ds *= 0.05 / big
        d += dd
        s += ds
        if big <= SERIES_QUADRATIC * max(abs(d), abs(s), 1.0):
            converged = True
            break
    if converged:  # the last evaluation's currents, carried to the final d and s
        ich += ia * dd + ib * ds
        js += gjs * ds
    else:
        ich, ia, ib, ig, js, gjd, gjs, f1, f2, a11, a12, a21, a22 = _body_series_system(d, s, va, vb, vg, vbi, beta,
                                                                                        prm)
    ibody = -(ia + ib + ig)  # dI_ch / dva at fixed d, s, vg
    det = a11 * a22 - a12 * a21
    # dF/dva and dF/dvb of the two equations; then [dd, ds]/dv = -A^-1 dF/dv
    f1a, f1b = (gd + gjd - ibody, 0.0) if rd > 0.0 else (-1.0, 0.0)
    f2a, f2b = (ibody + gjs, gs) if rs > 0.0 else (0.0, -1.0)
    dda = -(a22 * f1a - a12 * f2a) / det
    dsa = -(a11 * f2a - a21 * f1a) / det
    ddb = -(a22 * f1b - a12 * f2b) / det
    dsb = -(a11 * f2b - a21 * f1b) / det
    # I = I_ch(d, s; body va) - js(s - va): dI/dd = ia, dI/ds = ib - gjs, dI/dva directly = ibody + gjs
    di_a = ia * dda + (ib - gjs) * dsa + ibody + gjs
    di_b = ia * ddb + (ib - gjs) * dsb
    return ich - js, di_a, di_b


@njit(cache=True, inline="always")
def forward_current(x, beta, prm):
    """F(x) (A) of the three-regime law and dF/dx (S) at gate overdrive x (V) over one terminal: (K/2) x^2 above
    the join, (K/2) x_j^2 exp((x - x_j) ln10 / decade) below (``devices.three_regime_current``)."""
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
        i, d_a, d_b = edge_current(law, tied, va, vb, ctrl[e], vbi[e], beta[e], prm)
        ia = pos[ea[e]]
        ib = pos[eb[e]]
        if ia >= 0:
            f[ia] += i
        if ib >= 0:
            f[ib] -= i
        s = slots[e]
        if s[0] >= 0:
            jac[s[0]] += d_a
        if s[1] >= 0:
            jac[s[1]] += d_b
        if s[2] >= 0:
            jac[s[2]] -= d_a
        if s[3] >= 0:
            jac[s[3]] -= d_b
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
    |f_k| <= reltol sum_k + abstol, capped by the native floor ``tol[T_I]``, where sum_k (A) is the sum of the
    magnitudes of the device currents at node k (edges and bulk junctions). A node's residual is the sum of its
    devices' errors; ngspice's device check (``MOS1convTest``) allows each device reltol |I| + abstol.
    The sums are evaluated (into the work space ``total`` [n_u]) only when the residual alone does not decide."""
    n = unk.shape[0]
    fmax = 0.0
    for k in range(n):
        fmax = max(fmax, abs(f[k]))
    if fmax <= min(tol[T_ABSTOL], tol[T_I]):
        return True
    if not fmax <= tol[T_I]:
        return False
    total[:] = 0.0
    law = edge_law(kind, prm)
    tied = kind == KIND_NMOS and prm[P_BODY] != 0.0
    for e in range(ea.shape[0]):
        i = edge_current(law, tied, v[ea[e]], v[eb[e]], ctrl[e], vbi[e], beta[e], prm)[0]
        if pos[ea[e]] >= 0:
            total[pos[ea[e]]] += abs(i)
        if pos[eb[e]] >= 0:
            total[pos[eb[e]]] += abs(i)
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
        if abs(f[k]) > min(tol[T_RELTOL] * total[k] + tol[T_ABSTOL], tol[T_I]):
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
        # KCL closes outright below both floors and fails above tol_i; in between it needs each node's sum of
        # device currents, evaluated only if the step turns out converged (on a copy of this load's point)
        undecided = min(tol[T_ABSTOL], tol[T_I]) < fmax <= tol[T_I]
        if undecided:  # keep the load's point and residual for those sums
            v_old[:] = v
            f_old[:] = f
        for k in range(n):
            f[k] = -f[k]
        lu_solve(a, f)
        excess = apply_step(v, f, unk, lo, hi, limit, last, tol)
        if not (excess == excess):  # NaN: give up on this sample
            break
        if excess <= 0.0 and fmax <= tol[T_I] and (not undecided or kcl_converged(
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


@njit(cache=True)
def newton_dense_one(v, cold, drv_nodes, drv_vals, ctrl, kind, prm, vbi, beta, ea, eb, pos, slots, unk, n_junctions,
                     diag, max_iter, tol, gshunt):
    """Dense Newton for one sample v [N] (in place) with a shunt ``gshunt`` (S) from every unknown node to
    ground; drv_vals [n_driven], ctrl [E]. Returns (iterations, max |residual| in A, status). For the
    retries of ``native.NativeSolver`` (a cold start, gmin stepping), not for the common path."""
    return newton_sample(v, cold, drv_nodes, drv_vals, ctrl, kind, prm, vbi, beta, ea, eb, pos, slots, unk, n_junctions,
                         diag, max_iter, tol, gshunt, newton_work(v.shape[0], unk.shape[0]))


@njit(cache=True)
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


@njit(cache=True, parallel=True)
def newton_dense_parallel(v, cold, drv_nodes, drv_vals, ctrl, kind, prm, vbi, beta, ea, eb, pos, slots, unk,
                          n_junctions, diag, max_iter, tol, iters, resid, status, n_chunks):
    """``newton_dense`` with the batch cut into ``n_chunks`` contiguous chunks run on threads."""
    batch = v.shape[0]
    for chunk in prange(n_chunks):
        _newton_range(chunk * batch // n_chunks, (chunk + 1) * batch // n_chunks, v, cold, drv_nodes, drv_vals,
                      ctrl, kind, prm, vbi, beta, ea, eb, pos, slots, unk, n_junctions, diag, max_iter, tol, iters,
                      resid, status)
