"""The native solver's compiled training loop: many training steps in one numba call, no Python in between.

Python orchestration costs ~50-100 us per step (two solver calls, the nudge, the hinge, the update), ten times
the 4x4 torus's own solves. ``NativeSolver.train_steps`` (the optional capability of ``base.AbstractSolver``)
runs a ``step.StepRun`` here: each step's free solve, the nudge, the hinge, the clamped solve, the contrast and
the update, with the step's arithmetic compiled from the very functions of ``metamaterial.step`` that the Python
step calls, and each sample solved as ``NativeSolver`` solves a tagged sample (``native.TagMemory``: from the
last solution of the same replica, data point and phase; not at all if nothing it depends on changed).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .. import kernelcache
from .. import step as st
from ..devices import PotentiometerParams
from . import native_kernels as nk  # refreshes numba's cache (kernelcache) first

_step = st.compiled()
_outputs, _pushes, _clamps = _step.output_values, _step.output_pushes, _step.clamp_values
_margins, _active, _pushed = _step.class_margins, _step.active_points, _step.pushed_nodes
_contrast, _windows, _update = _step.summed_contrast, _step.learning_windows, _step.update_controls
_rate, _reads = _step.epoch_rate, _step.noisy_reads


def unsupported(solver, program: st.StepProgram) -> str | None:
    """Why the compiled loop cannot run ``program`` on ``solver``, or None if it can."""
    c = program.circuit
    if not (solver.prepared(c, False).dense and solver.prepared(c, True).dense):
        return f"{c.n_nodes} nodes: the native solver takes its sparse path, which is not compiled"
    return None


def run(solver, program: st.StepProgram, plan: st.StepRun, first: int) -> tuple[int, int] | None:
    """Steps ``first`` .. of ``plan`` on ``solver`` (a ``NativeSolver``): (steps done up to, solves), or None if
    the compiled loop cannot run this program (``unsupported``). Stops early at a step whose samples it cannot
    converge; that step is left undone for the caller's Python step (with the solver's retries)."""
    if unsupported(solver, program) is not None:
        return None
    c = program.circuit
    pf, pc = solver.prepared(c, False), solver.prepared(c, True)
    dev = c.device
    pot = (np.array([1.0 / dev.r_max, dev.r_max / dev.r_min, dev.n_taps - 1.0])
           if isinstance(dev, PotentiometerParams) else np.zeros(3))
    reps = plan.controls.shape[0]
    n_tags = reps * program.inputs.shape[0]  # replica r, data point p: tag r P + p (as the Python step)
    kernelcache.announce(_train_steps, "the training loop")
    done, solves, iterations = _train_steps(
        first, plan.controls, plan.idx, plan.epochs, plan.masks, plan.windows, plan.snap_slot, plan.snaps,
        program.inputs, program.targets, program.classes, program.levels, program.decode,
        program.nudge, program.rival, program.hinge, program.margin, program.pushed_only, program.sign_rule,
        program.rate, program.rate_decay, program.bias, program.low, program.high, program.leak_factor, program.rest,
        program.dead_band, plan.noise, program.read_noise, program.noisy_decisions,
        np.ascontiguousarray(c.out_pos, np.int64), np.ascontiguousarray(c.out_neg, np.int64),
        np.ascontiguousarray(c.rail_voltages, float), pf.kind, pf.prm, pf.ea, pf.eb, pot, _phase(pf), _phase(pc),
        solver.max_iter, solver.tolerances, solver.warm_start,
        _memory(solver.tag_memory(c, False, n_tags)), _memory(solver.tag_memory(c, True, n_tags)))
    solver.n_solves += solves
    solver.loop_iterations += iterations
    return done, solves


def _phase(prep) -> tuple:
    return (prep.driven, prep.pos, prep.slots, prep.unk, prep.n_junctions, prep.diag, prep.vbi, prep.beta)


def _memory(memory) -> tuple:
    return (memory.v, memory.controls, memory.drive, memory.residual)


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


@njit(cache=True, inline="always")
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
                            diag, max_iter, tol, 0.0, work)


@njit(cache=True, inline="always")
def _solve_phase(v, drv, res, ctrl, controls, tags, n, on, warm, memory, prep, kind, prm, ea, eb, max_iter, tol,
                 work):
    """Every sample b of a phase (replica b // n) whose replica r has on[r] > 0 (the others' rows are left as they
    were), with Newton's work space ``work`` (``native_kernels.newton_work``); returns (iterations, whether all
    converged)."""
    iterations = 0
    for b in range(v.shape[0]):
        r = b // n
        if on[r] <= 0:
            continue
        it, res[b], status = _solve_sample(v[b], drv[b], ctrl[r], controls[r], tags[b], warm, memory, prep, kind,
                                           prm, ea, eb, max_iter, tol, work)
        iterations += it
        if status != nk.CONVERGED:
            return iterations, False
    return iterations, True


@njit(cache=True, inline="always")
def _remember(memory, tags, n, on, v, controls, drv, residual):
    mem_v, mem_ctrl, mem_drv, mem_res = memory
    for b in range(v.shape[0]):
        if on[b // n] <= 0:
            continue
        mem_v[tags[b]] = v[b]
        mem_ctrl[tags[b]] = controls[b // n]
        mem_drv[tags[b]] = drv[b]
        mem_res[tags[b]] = residual[b]


# nogil: another thread runs meanwhile (a second training in a thread of the same process)
@njit(cache=True, nogil=True)
def _train_steps(first, controls, idx, epochs, masks, windows, snap_slot, snaps, inputs, targets, classes, levels,
                 decode, nudge, rival, hinge, margin, pushed_only, sign_rule, rate, rate_decay, bias, low, high,
                 leak_factor, rest, dead_band, noise, sigma, decide, out_pos, out_neg, rails, kind, prm, ea, eb, pot,
                 free_prep, clamped_prep, max_iter, tol, warm, free_memory, clamped_memory):
    """Steps ``first`` .. S-1 of a plan (``step.StepRun``'s arrays), in place on the controls, the solver's memories,
    ``windows`` and ``snaps``; the program's numbers as in ``step.StepProgram``; the solver's arrays as in
    ``native._Prepared`` (``free_prep``, ``clamped_prep``: driven, pos, slots, unk, n_junctions, diag, vbi, beta)
    and ``native.TagMemory`` (v, controls, drive, residual). ``noise`` [S, 2, R n, N] (or no steps without read
    noise): each step's standard normal draws, read as v + ``sigma`` z (``step.noisy_reads``); ``decide``: the noisy
    free read also decides the hinge, the rival and the clamps (``StepProgram.noisy_decisions``).

    Returns (steps done up to, solves, Newton iterations): S, or the step at which a sample did not converge
    (that step is left undone: controls and memories as before it).
    """
    reps, n_edges = controls.shape
    n_steps, _, n = idx.shape
    batch, n_points = reps * n, inputs.shape[0]
    n_in, n_rail = inputs.shape[1], rails.shape[0]
    n_clamp = clamped_prep[0].shape[0] - n_in - n_rail
    vf = np.empty((batch, free_memory[0].shape[1]))
    vc = np.empty_like(vf)
    noisy = noise.shape[0] > 0
    rf = np.empty_like(vf) if noisy else vf  # what the learning circuit reads of each phase
    rc = np.empty_like(vf) if noisy else vc
    drv_f = np.empty((batch, n_in + n_rail))
    drv_c = np.empty((batch, n_in + n_rail + n_clamp))
    res_f = np.empty(batch)
    res_c = np.empty(batch)
    ctrl = np.empty((reps, n_edges))
    tags = np.empty(batch, np.int64)
    cls = np.empty(batch, np.int64)
    tgt = np.empty((batch, targets.shape[1]))
    out = np.empty((batch, out_pos.shape[0]))
    push = np.empty_like(out)
    margins = np.zeros(batch)  # (regression: unused)
    active = np.empty(batch, np.bool_)
    opened = np.empty(reps, np.int64)
    u = np.empty((reps, n_edges))
    touch = np.zeros((batch if pushed_only else 0, vf.shape[1]), np.bool_)
    use_masks = masks.shape[0] > 0
    work_f = nk.newton_work(vf.shape[1], free_prep[3].shape[0])
    work_c = nk.newton_work(vf.shape[1], clamped_prep[3].shape[0])
    mask = np.empty((reps, n_edges), np.bool_)
    every = np.ones(reps, np.int64)
    solves = 0
    iterations = 0
    for s in range(first, n_steps):
        for r in range(reps):
            if not _edge_controls(controls[r], kind, pot, ctrl[r]):
                return s, solves, iterations
        for b in range(batch):
            p = idx[s, b // n, b % n]
            tags[b] = (b // n) * n_points + p
            cls[b] = classes[p]
            for k in range(tgt.shape[1]):
                tgt[b, k] = targets[p, k]
            for k in range(n_in):
                drv_f[b, k] = inputs[p, k]
            for k in range(n_rail):
                drv_f[b, n_in + k] = rails[k]
        it, ok = _solve_phase(vf, drv_f, res_f, ctrl, controls, tags, n, every, warm, free_memory, free_prep, kind,
                              prm, ea, eb, max_iter, tol, work_f)
        iterations += it
        if not ok:
            return s, solves, iterations
        if noisy and decide:
            _reads(vf, noise[s, 0], sigma, rf)
        fd = rf if decide else vf  # what decides the hinge, the rival and the clamps
        _outputs(fd, out_pos, out_neg, out)
        if hinge:
            _margins(out, cls, decode, levels, margins)
        _active(margins, hinge, margin, active)
        _windows(active, reps, opened)
        any_active = active.any()
        if any_active:  # clamped phase, for the samples of each replica with an active point (as the Python step)
            for b in range(batch):
                for k in range(n_in + n_rail):
                    drv_c[b, k] = drv_f[b, k]
            _pushes(out, tgt, cls, nudge, rival, push)
            _clamps(fd, push, out_pos, out_neg, drv_c[:, n_in + n_rail:])
            if pushed_only:
                _pushed(push, out_pos, out_neg, vf.shape[1], touch)
            it, ok = _solve_phase(vc, drv_c, res_c, ctrl, controls, tags, n, opened, warm, clamped_memory, clamped_prep,
                                  kind, prm, ea, eb, max_iter, tol, work_c)
            iterations += it
            if not ok:
                return s, solves, iterations
            if noisy:  # what the contrast reads (the free read taken once, by now if it decided)
                if not decide:
                    _reads(vf, noise[s, 0], sigma, rf)
                _reads(vc, noise[s, 1], sigma, rc)
        # the step is complete: remember the solutions, then update every replica
        if warm:
            _remember(free_memory, tags, n, every, vf, controls, drv_f, res_f)
            if any_active:
                _remember(clamped_memory, tags, n, opened, vc, controls, drv_c, res_c)
        solves += batch
        for r in range(reps):
            solves += n if opened[r] > 0 else 0
        windows[s] = opened
        _contrast(rf, rc, ea, eb, active, reps, touch, u)
        for r in range(reps):
            for e in range(n_edges):
                mask[r, e] = opened[r] > 0 and (not use_masks or masks[s, r, e])
        _update(controls, u, mask, sign_rule, _rate(rate, rate_decay, epochs[s]), bias, low, high, leak_factor, rest,
                dead_band, controls)
        if snap_slot[s] >= 0:
            snaps[snap_slot[s]] = controls
    return n_steps, solves, iterations
