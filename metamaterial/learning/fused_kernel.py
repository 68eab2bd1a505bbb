"""Compiled (numba) training steps on the native solver: free solve, nudge, clamped solve, contrast and gate
update for many steps in one call, with no Python in between.

The same arithmetic, in the same order, as ``Trainer.step_many`` on ``NativeSolver`` (the dense path):
``rules.CoupledLearning.clamp`` and ``contrast``, ``tasks.Task.margins`` for the hinge, ``gates.EdgeDynamics.apply``,
and each sample solved as ``NativeSolver`` solves a tagged sample (``native.TagMemory``: from the last solution of
the same data point and phase, not at all if nothing changed since).
``fused.FusedLoop`` prepares the arrays and falls back to ``Trainer.step_many`` for a step this kernel cannot
finish (a sample whose Newton does not converge here goes to the solver's retries).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..sim import native_kernels as nk

DECODE_NONE, DECODE_NEAREST, DECODE_ARGMAX = 0, 1, 2


@njit(cache=True)
def _margin(out, cls, decode, levels):
    """Signed margin (V) of the correct class for one output row (``Task.margins``)."""
    if decode == DECODE_ARGMAX:
        best = -np.inf
        for k in range(out.shape[0]):
            if k != cls:
                best = max(best, out[k])
        return out[cls] - best
    own = abs(out[0] - levels[cls])
    best = np.inf
    for k in range(levels.shape[0]):
        if k != cls:
            best = min(best, abs(out[0] - levels[k]))
    return (best - own) / 2


@njit(cache=True)
def _edge_controls(controls, kind, pot, ctrl):
    """ctrl [E] = the solver's edge controls for one replica's controls [E] (``NativeSolver._edge_controls``):
    the controls themselves, or a potentiometer's conductance g0 * ratio ** (tap / span) for pot = (g0, ratio,
    span). Returns False if a conductance is not > 0 (the Python step then reports it)."""
    for e in range(controls.shape[0]):
        if pot[0] > 0.0:
            ctrl[e] = pot[0] * pot[1] ** (controls[e] / pot[2])
        else:
            ctrl[e] = controls[e]
        if kind == nk.KIND_CONDUCTANCE and not ctrl[e] > 0.0:
            return False
    return True


@njit(cache=True)
def _same(a, b):
    for k in range(a.shape[0]):
        if a[k] != b[k]:
            return False
    return True


@njit(cache=True)
def _solve_sample(v, drv, ctrl, raw, tag, warm, memory, prep, kind, prm, ea, eb, max_iter, tol, work):
    """One tagged sample into v [N], as ``NativeSolver._solve`` does it: the remembered solution if the controls
    ``raw`` [E] and the drive are bit for bit what it solved, else Newton from it (cold if none or not ``warm``).
    Returns (iterations, residual in A, status)."""
    mem_v, mem_ctrl, mem_drv, mem_res = memory
    drv_nodes, pos, slots, unk, n_junctions, diag, vbi, beta = prep
    v[:] = mem_v[tag]
    if warm and _same(mem_ctrl[tag], raw) and _same(mem_drv[tag], drv):
        return 0, mem_res[tag], nk.CONVERGED
    cold = not warm or math.isnan(v[0])
    return nk.newton_sample(v, cold, drv_nodes, drv, ctrl, kind, prm, vbi, beta, ea, eb, pos, slots, unk, n_junctions,
                            diag, max_iter, tol, 0.0, work[0], work[1], work[2], work[3])


@njit(cache=True)
def _remember(memory, tag, v, raw, drv, residual):
    mem_v, mem_ctrl, mem_drv, mem_res = memory
    mem_v[tag] = v
    mem_ctrl[tag] = raw
    mem_drv[tag] = drv
    mem_res[tag] = residual


@njit(cache=True)
def train_steps(first, controls, idx, masks, inputs, targets, classes, levels, rule, dyn, bias, out_pos, out_neg,
                rails, kind, prm, ea, eb, pot, free_prep, clamped_prep, max_iter, tol, warm, free_memory,
                clamped_memory, moved, snap_slot, snaps):
    """Steps ``first`` .. S-1 of a plan, in place on ``controls``, the solver's memories and ``moved``.

    Args:
        controls: [R, E] controls of each replica. idx: int [S, R, n] data points of each step and replica.
        masks: bool [S, R, E] edges that may update (desynchronous learning), or [0, R, E] for all edges.
        inputs: [P, n_in] (V); targets: [P, n_out] (V); classes: int [P]; levels: [L] (V).
        rule: [4] = (nudge, hinge 1/0, hinge margin in V, decode: DECODE_*).
        dyn: [7] = (sign rule 1/0, rate, low, high, leak 1/0, leak factor exp(-dt/tau), rest).
        bias: [E] per-edge update offset, or [0] for none.
        out_pos, out_neg: int [n_out] output nodes (out_neg -1: single-ended). rails: [n_rail] (V).
        kind, prm, ea, eb: device kind, constants and edge ends (``native_kernels``). pot: [3] potentiometer
            conductance law (0, 0, 0 if the controls are the edge controls themselves).
        free_prep, clamped_prep: (driven, pos, slots, unk, n_junctions, diag, vbi, beta) of each phase.
        max_iter, tol: Newton's limits (``NativeSolver``). warm: use the memories (the solver's ``warm_start``).
        free_memory, clamped_memory: (v, controls, drive, residual) of ``native.TagMemory`` of each phase, with
            tag r P + p for replica r and data point p.
        moved: bool [S, R] out: whether each replica's learning switch closed at each step.
        snap_slot: int [S]: after step s, copy the controls into snaps[snap_slot[s]] (-1: no copy).
        snaps: [K, R, E] out: the copies (the trajectory between evaluations).
    Returns:
        (steps done up to, solves done, Newton iterations): the first value is S, or the step at which a sample
        did not converge (that step is left undone: controls and memories as before it).
    """
    reps, n_edges = controls.shape
    n_steps, _, n = idx.shape
    batch, n_nodes, n_points = reps * n, free_memory[0].shape[1], inputs.shape[0]
    n_in, n_rail, n_out = inputs.shape[1], rails.shape[0], out_pos.shape[0]
    nf, nc = free_prep[3].shape[0], clamped_prep[3].shape[0]
    wf = (np.empty(nf), np.empty(nf * nf), np.empty(nf), np.empty(nf))
    wc = (np.empty(nc), np.empty(nc * nc), np.empty(nc), np.empty(nc))
    vf = np.empty((batch, n_nodes))
    vc = np.empty((batch, n_nodes))
    drv_f = np.empty((batch, free_prep[0].shape[0]))
    drv_c = np.empty((batch, clamped_prep[0].shape[0]))
    res_f = np.empty(batch)
    res_c = np.empty(batch)
    ctrl = np.empty((reps, n_edges))
    out = np.empty(n_out)
    active = np.empty(batch, dtype=np.bool_)
    u = np.empty(n_edges)
    nudge, hinge, margin, decode = rule[0], rule[1] > 0.0, rule[2], int(rule[3])
    sign_rule, rate, low, high, leak, leak_factor, rest = dyn[0] > 0.0, dyn[1], dyn[2], dyn[3], dyn[4] > 0.0, \
        dyn[5], dyn[6]
    use_masks = masks.shape[0] > 0
    use_bias = bias.shape[0] > 0
    solves = 0
    iterations = 0
    for s in range(first, n_steps):
        for r in range(reps):
            if not _edge_controls(controls[r], kind, pot, ctrl[r]):
                return s, solves, iterations
        any_active = False
        for b in range(batch):  # free phase
            r, p = b // n, idx[s, b // n, b % n]
            for k in range(n_in):
                drv_f[b, k] = inputs[p, k]
            for k in range(n_rail):
                drv_f[b, n_in + k] = rails[k]
            it, res_f[b], status = _solve_sample(vf[b], drv_f[b], ctrl[r], controls[r], r * n_points + p, warm,
                                                 free_memory, free_prep, kind, prm, ea, eb, max_iter, tol, wf)
            iterations += it
            if status != nk.CONVERGED:
                return s, solves, iterations
            for k in range(n_out):
                out[k] = vf[b, out_pos[k]] - (vf[b, out_neg[k]] if out_neg[k] >= 0 else 0.0)
            active[b] = not hinge or _margin(out, classes[p], decode, levels) < margin
            any_active = any_active or active[b]
        if any_active:  # clamped phase, for every sample as soon as one point is active (as step_many)
            for b in range(batch):
                r, p = b // n, idx[s, b // n, b % n]
                for k in range(n_in + n_rail):
                    drv_c[b, k] = drv_f[b, k]
                n_diff = 0
                for k in range(n_out):
                    o = vf[b, out_pos[k]] - (vf[b, out_neg[k]] if out_neg[k] >= 0 else 0.0)
                    push = nudge * (targets[p, k] - o)
                    if out_neg[k] >= 0:
                        drv_c[b, n_in + n_rail + k] = vf[b, out_pos[k]] + push / 2
                        drv_c[b, n_in + n_rail + n_out + n_diff] = vf[b, out_neg[k]] - push / 2
                        n_diff += 1
                    else:
                        drv_c[b, n_in + n_rail + k] = vf[b, out_pos[k]] + push
                it, res_c[b], status = _solve_sample(vc[b], drv_c[b], ctrl[r], controls[r], r * n_points + p, warm,
                                                     clamped_memory, clamped_prep, kind, prm, ea, eb, max_iter, tol, wc)
                iterations += it
                if status != nk.CONVERGED:
                    return s, solves, iterations
        # the step is complete: remember the solutions, then update every replica
        if warm:
            for b in range(batch):
                r = b // n
                tag = r * n_points + idx[s, r, b % n]
                _remember(free_memory, tag, vf[b], controls[r], drv_f[b], res_f[b])
                if any_active:
                    _remember(clamped_memory, tag, vc[b], controls[r], drv_c[b], res_c[b])
        solves += batch * (2 if any_active else 1)
        for r in range(reps):
            u[:] = 0.0
            switch = False
            for j in range(n):
                b = r * n + j
                if not active[b]:
                    continue
                switch = True
                for e in range(n_edges):
                    dvf = vf[b, ea[e]] - vf[b, eb[e]]
                    dvc = vc[b, ea[e]] - vc[b, eb[e]]
                    u[e] += dvf * dvf - dvc * dvc
            moved[s, r] = switch
            for e in range(n_edges):
                x = controls[r, e]
                if switch and (not use_masks or masks[s, r, e]):
                    if sign_rule:
                        step = 1.0 if u[e] > 0.0 else (-1.0 if u[e] < 0.0 else 0.0)
                    else:
                        step = rate * u[e]
                    if use_bias:
                        step = step + bias[e]
                    x = x + step
                x = min(max(x, low), high)
                if leak:
                    x = rest + (x - rest) * leak_factor
                controls[r, e] = x
        if snap_slot[s] >= 0:
            snaps[snap_slot[s]] = controls
    return n_steps, solves, iterations
