"""One coupled-learning training step, written once: its description and its arithmetic as array functions.

``StepProgram`` is the frozen description of a step (the task's arrays, the nudge, the hinge, the update with
its clip, leak, bias and sign rule); ``StepRun`` is a plan of steps to apply (data points and desynchronous
masks drawn beforehand) with room for what they produce. The functions below are the step's math (docs/physics.md,
section 3):

    push            p_k = eta (L_k - O^F_k)                        (a target for every output)
                    p_c = +delta, p_r = -delta, others 0           (multi-class hinge: c the true class, r the
                                                                    top rival, delta = the nudge in V)
    clamped output  V_O^C = V_O^F + p                              (single-ended)
                    O^C_(+/-) = O^F_(+/-) +/- p/2                  (differential, O = V(+) - V(-))
    read            V -> V + sigma z                               (read noise: z standard normal, drawn
                                                                    for both phases at every step)
    contrast        U_i = sum over the step's active points of (dV_i^F)^2 - (dV_i^C)^2         (V^2)
                    (with ``pushed_only``: a point counts only on the edges touching a node of an output
                    it pushes, p_k != 0; the third-party digits trainer's rule)
    update          x_i <- rest + (clip(x_i + s_i, low, high) - rest) * exp(-dt / tau)
                    s_i = rate_e U_i (continuous) or sign(U_i) (one potentiometer tap), plus the edge's bias,
                    rate_e = rate * decay ** (e - 1) in epoch e = 1, 2, ... (``epoch_rate``),
                    where the edge's learning switch closes (its replica had an active point and its
                    desynchronous mask allows it) and |U_i| >= the dead band, else 0

They are plain loops in the subset of Python that numba compiles; each takes an optional last argument, the array
to write its result into (a compiled loop allocates its arrays once, not per step). ``compiled()`` gives them
compiled (on first use; numba's cache keeps them between runs), and both the Python step (``learning.trainer``)
and a solver's compiled training loop (``sim.native_loop``) call those same compiled functions, so the two paths
do the same arithmetic by construction. This module imports only numpy at import time: it sits beside ``circuit`` and
``tasks`` at the bottom of the flow.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

DECODE_NONE, DECODE_NEAREST, DECODE_ARGMAX = 0, 1, 2
DECODES = {None: DECODE_NONE, "nearest": DECODE_NEAREST, "argmax": DECODE_ARGMAX}


@dataclass(frozen=True, eq=False)
class StepProgram:
    """What one training step does, as arrays and numbers a compiled loop can take.

    Attributes:
        circuit: the ``circuit.Circuit`` trained (its outputs, edges, rails and device).
        inputs: [P, n_in] V; targets: [P, n_out] V; classes: int [P] (zeros for regression); levels: [L] V;
            decode: DECODE_* of the task (how outputs are read as classes, for the hinge).
        nudge: eta in (0, 1], or with ``rival`` the push delta (V). hinge: stop updating a point once it is
            ``margin`` volts past its boundary. rival: the multi-class hinge's nudge (push the true class's output
            up by ``nudge`` and the top rival's down by as much, hold the others at their free values).
        sign_rule: step one unit in the direction of U (potentiometer taps) instead of ``rate`` U.
        rate: alpha / eta (control units per V^2) in the first epoch. rate_decay: the factor on the rate from one
            epoch to the next (``epoch_rate``; 1.0: a constant rate). low, high: control range.
        leak_factor: exp(-dt / tau) per step (1.0: no leak); rest: what the leak relaxes toward.
        bias: [E] per-edge offset added to each applied update, or [0] for none.
        read_noise: std (V) of noise on every node voltage the learning circuit reads (``noisy_reads``); the draws
            come with the plan (``StepRun.noise``) or from the replica's generator, two phases every step.
        noisy_decisions: the free phase's noisy read also decides the hinge, the rival and the clamp values;
            False: they come from the exact free voltages and the noise enters through the contrast only.
        dead_band: |U| (V^2) below which an edge does not update (its comparator does not fire); 0: none.
        pushed_only: a point's contrast reaches only the edges touching a node of an output it pushes
            (``pushed_nodes``), not every edge.
    """

    circuit: object
    inputs: np.ndarray
    targets: np.ndarray
    classes: np.ndarray
    levels: np.ndarray
    decode: int
    nudge: float
    hinge: bool
    margin: float
    sign_rule: bool
    rate: float
    low: float
    high: float
    leak_factor: float
    rest: float
    bias: np.ndarray
    read_noise: float = 0.0
    rival: bool = False
    dead_band: float = 0.0
    pushed_only: bool = False
    rate_decay: float = 1.0
    noisy_decisions: bool = False


@dataclass
class StepRun:
    """A plan of S steps for R replicas, and where its results go (filled in place by whoever runs it).

    Attributes:
        controls: [R, E] controls, updated in place step by step.
        idx: int [S, R, n] data points each replica presents at each step.
        epochs: int [S] the epoch (1, 2, ...) each step belongs to (its rate: ``epoch_rate``).
        masks: bool [S, R, E] edges allowed to update (desynchronous learning), or [0, R, E] for all.
        windows: int [S, R] out: learning windows each replica opened at each step (one per active point).
        snap_slot: int [S]: after step s copy the controls into ``snaps[snap_slot[s]]`` (-1: no copy).
        snaps: [K, R, E] out: those copies.
        noise: [S, 2, R n, N] standard normal draws of each step's reads (free, then clamped; row r n + j is
            replica r's point j), or [0, 2, R n, N] without read noise. Every step and both phases draw, whether
            or not the clamped phase runs, so a replica's draws do not depend on its or any other replica's hinge.
    """

    controls: np.ndarray
    idx: np.ndarray
    epochs: np.ndarray
    masks: np.ndarray
    windows: np.ndarray
    snap_slot: np.ndarray
    snaps: np.ndarray
    noise: np.ndarray

    @property
    def n_steps(self) -> int:
        return self.idx.shape[0]


def output_values(v, out_pos, out_neg, out=None):
    """[B, n_out] output values (V) of node voltages v [B, N]: V(pos), or V(pos) - V(neg) where out_neg >= 0."""
    if out is None:
        out = np.empty((v.shape[0], out_pos.shape[0]))
    for b in range(v.shape[0]):
        for k in range(out_pos.shape[0]):
            out[b, k] = v[b, out_pos[k]] - v[b, out_neg[k]] if out_neg[k] >= 0 else v[b, out_pos[k]]
    return out


def output_pushes(out, targets, classes, nudge, rival, push=None):
    """[B, n_out] how far (V) the clamped phase moves each output from its free value ``out`` [B, n_out]:
    nudge (L - O) toward the labels ``targets`` [B, n_out], or with ``rival`` (multi-class hinge) +nudge on the
    true class ``classes`` [B], -nudge on the largest other output (the first of equals) and 0 elsewhere."""
    if push is None:
        push = np.empty(out.shape)
    for b in range(out.shape[0]):
        if rival:
            c = classes[b]
            r = -1
            for k in range(out.shape[1]):
                push[b, k] = 0.0
                if k != c and (r < 0 or out[b, k] > out[b, r]):
                    r = k
            push[b, c] = nudge
            if r >= 0:
                push[b, r] = -nudge
        else:
            for k in range(out.shape[1]):
                push[b, k] = nudge * (targets[b, k] - out[b, k])
    return push


def clamp_values(v, push, out_pos, out_neg, cl=None):
    """[B, n_clamp] clamped-phase voltages of the clamp nodes (every output's pos node, then the neg node of each
    differential output in order), from the free voltages v [B, N] and each output's push [B, n_out]
    (``output_pushes``): a differential output moves each of its nodes by half its push, in opposite ways."""
    n_out = out_pos.shape[0]
    n_diff = 0
    for k in range(n_out):
        if out_neg[k] >= 0:
            n_diff += 1
    if cl is None:
        cl = np.empty((v.shape[0], n_out + n_diff))
    for b in range(v.shape[0]):
        j = n_out
        for k in range(n_out):
            if out_neg[k] >= 0:
                cl[b, k] = v[b, out_pos[k]] + push[b, k] / 2
                cl[b, j] = v[b, out_neg[k]] - push[b, k] / 2
                j += 1
            else:
                cl[b, k] = v[b, out_pos[k]] + push[b, k]
    return cl


def class_margins(out, classes, decode, levels, margins=None):
    """[B] signed margin (V) of each point's correct class; > 0 means correctly classified.

    DECODE_NEAREST: half the gap between the distance to the nearest wrong level and to the right one (for two
    levels, the distance past the midpoint). DECODE_ARGMAX: the correct output minus the largest other one.
    """
    if margins is None:
        margins = np.empty(out.shape[0])
    for b in range(out.shape[0]):
        c = classes[b]
        if decode == DECODE_ARGMAX:
            best = -np.inf
            for k in range(out.shape[1]):
                if k != c:
                    best = max(best, out[b, k])
            margins[b] = out[b, c] - best
        else:
            best = np.inf
            for k in range(levels.shape[0]):
                if k != c:
                    best = min(best, abs(out[b, 0] - levels[k]))
            margins[b] = (best - abs(out[b, 0] - levels[c])) / 2
    return margins


def active_points(margins, hinge, margin, active=None):
    """bool [B]: points that update: all of them, or under the hinge those whose ``margins`` [B] (``class_margins``)
    are not yet ``margin`` past the boundary."""
    if active is None:
        active = np.empty(margins.shape[0], np.bool_)
    for b in range(margins.shape[0]):
        active[b] = not hinge or margins[b] < margin
    return active


def pushed_nodes(push, out_pos, out_neg, n_nodes, touch=None):
    """bool [B, N]: the nodes of the outputs each point pushes (``output_pushes`` [B, n_out] != 0): an output's
    pos node, and its neg node if differential."""
    if touch is None:
        touch = np.empty((push.shape[0], n_nodes), np.bool_)
    for b in range(push.shape[0]):
        touch[b, :] = False
        for k in range(push.shape[1]):
            if push[b, k] != 0.0:
                touch[b, out_pos[k]] = True
                if out_neg[k] >= 0:
                    touch[b, out_neg[k]] = True
    return touch


def summed_contrast(vf, vc, ea, eb, active, reps, touch=None, u=None):
    """[R, E] contrast U summed over each replica's active points (V^2); vf, vc [R n, N], replica r's points
    being rows r n .. r n + n - 1 (vc is read only at active points); ea, eb int [E] edge ends. ``touch``: bool
    [R n, N] (``pushed_nodes``) to count a point only on the edges with an end among its True nodes, or None
    (or 0 rows) for every edge."""
    n = vf.shape[0] // reps
    if u is None:
        u = np.empty((reps, ea.shape[0]))
    u[:] = 0.0
    if touch is None:
        touch = np.zeros((0, 0), np.bool_)
    some = touch.shape[0] > 0
    for b in range(vf.shape[0]):
        if active[b]:
            r = b // n
            for e in range(ea.shape[0]):
                if some and not (touch[b, ea[e]] or touch[b, eb[e]]):
                    continue
                dvf = vf[b, ea[e]] - vf[b, eb[e]]
                dvc = vc[b, ea[e]] - vc[b, eb[e]]
                u[r, e] += dvf * dvf - dvc * dvc
    return u


def learning_windows(active, reps, windows=None):
    """int [R]: learning windows each replica opens: one per active point (the hardware closes the learning switch
    once per presented point whose contrast it applies; a full-batch step of P active points takes P windows). A
    replica with no window leaves its gates unmoved (bar the leak)."""
    n = active.shape[0] // reps
    if windows is None:
        windows = np.empty(reps, np.int64)
    windows[:] = 0
    for b in range(active.shape[0]):
        if active[b]:
            windows[b // n] += 1
    return windows


def noisy_reads(v, z, sigma, out=None):
    """[B, N] what the learning circuit reads of node voltages v [B, N] (V): v + sigma z, z [B, N] standard normal
    draws, sigma the read noise (V)."""
    if out is None:
        out = np.empty(v.shape)
    for b in range(v.shape[0]):
        for k in range(v.shape[1]):
            out[b, k] = v[b, k] + sigma * z[b, k]
    return out


def epoch_rate(rate, decay, epoch):
    """The rate (control units per V^2) of the steps of epoch ``epoch`` (1, 2, ...): rate * decay ** (epoch - 1),
    a rate that falls by the factor ``decay`` from one epoch to the next (1.0: constant). Per-sample steps at a
    constant rate keep jumping around a minimum; a falling rate lets them settle."""
    return rate * decay ** (epoch - 1)


def update_controls(controls, u, mask, sign_rule, rate, bias, low, high, leak_factor, rest, dead_band, new=None):
    """[R, E] controls after one update: where ``mask`` [R, E] (the switch closed and the edge may update) and
    |U| >= ``dead_band`` (V^2) add rate U or sign(U), plus ``bias`` [E] if it has entries; clip to [low, high];
    relax toward ``rest`` by ``leak_factor`` (every edge: time passes for all). ``new`` may be ``controls`` itself
    (updated in place). A dead band of 0 moves every masked edge."""
    if new is None:
        new = np.empty(controls.shape)
    for r in range(controls.shape[0]):
        for e in range(controls.shape[1]):
            x = controls[r, e]
            if mask[r, e] and abs(u[r, e]) >= dead_band:
                step = (1.0 if u[r, e] > 0 else (-1.0 if u[r, e] < 0 else 0.0)) if sign_rule else rate * u[r, e]
                if bias.shape[0] > 0:
                    step = step + bias[e]
                x = x + step
            x = min(max(x, low), high)
            if leak_factor != 1.0:
                x = rest + (x - rest) * leak_factor
            new[r, e] = x
    return new


_FUNCTIONS = ("output_values", "output_pushes", "clamp_values", "class_margins", "active_points", "pushed_nodes",
              "summed_contrast", "learning_windows", "noisy_reads", "epoch_rate", "update_controls")
_compiled: SimpleNamespace | None = None


def compiled() -> SimpleNamespace:
    """The step's functions compiled by numba (attributes named as above); compiled, or loaded from numba's cache,
    on first use. A compiled caller (``sim.native_loop``) inlines them: called, they cost the 4x4 XOR loop ~10%."""
    global _compiled
    if _compiled is None:
        from numba import njit  # noqa: PLC0415 (numba loads only when a step is taken)

        from . import kernelcache  # noqa: PLC0415

        kernelcache.refresh()  # before numba can load the cached code
        _compiled = SimpleNamespace(**{name: njit(cache=True, inline="always")(globals()[name]) for name in _FUNCTIONS})
    return _compiled
