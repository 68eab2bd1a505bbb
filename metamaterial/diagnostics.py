"""Whether learning can happen, and whether it did: checks of a run before training and after, as sentences.

Before training (``before_training``): targets a passive network cannot output, target orders a network of
monotone devices cannot follow, and a rate so large for the device's unit that one update crosses the whole control
range. After training (``after_training``): controls that barely moved (the rate in use, and how to choose one),
hinge training that stopped updating because every point was past its margin, and an output loss that ended well
above its lowest. Pure numpy over a ``Circuit``, a
``Task`` and a run's numbers; ``runs`` records the sentences in summary.json, the command line prints them.

The two facts the checks before training rest on (docs/physics.md states the device laws):

* **Range.** Every device passes current from its higher terminal to its lower one (I (V_a - V_b) >= 0), and an
  NMOS edge also leaks to its grounded body. So no free node can sit above the highest source or below the lowest
  (at its extreme, every current would flow out of it or into it and Kirchhoff's law would fail): every node lies
  between the lowest and highest of the data point's inputs, the rails and, for transistors, ground (0 V).
* **Order.** Every device's current out of a terminal grows with that terminal's voltage and falls with the other
  terminal's (resistors, potentiometers, and ngspice's level-1 MOSFET, whose gm, gds and gmbs are >= 0). The
  Jacobian of Kirchhoff's law over the free nodes is then a Z-matrix whose columns sum to >= 0 (an M-matrix on a
  connected network), its inverse is >= 0, and every node voltage is a non-decreasing function of every source.
  So a single-ended output is at least as high at a data point whose inputs are all at least as high.
"""

from __future__ import annotations

import numpy as np

from .circuit import Circuit, edge_currents
from .devices import LEVEL1, EdgeDevice, NmosParams
from .errors import ValidationError
from .learning.rules import MAX_RATE
from .tasks import Task
from .units import listed

#: controls "barely moved" when none moved by this fraction of its range and the loss did not fall by half
BARELY_MOVED = 0.05
#: a rate whose largest possible update exceeds this many times the control range is in the wrong unit
RATE_TOO_LARGE = 10.0
#: pairwise order checks run on training sets up to this many points
MAX_ORDER_POINTS = 2000
#: targets out of reach or out of order by less than this (V) are not reported: noise-sized, not a design error
MIN_GAP_V = 1e-3
_TOL = 1e-12


def source_extremes(circuit: Circuit, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([P], [P]) lowest and highest voltage (V) any node can take at each data point of ``inputs`` [P, n_in]:
    the extremes of its sources (that point's inputs, the rails) and of ground when the device conducts to it."""
    v = circuit.source_voltages(inputs)
    if circuit.device.conducts_to_ground or v.shape[1] == 0:
        v = np.concatenate([v, np.zeros((v.shape[0], 1))], axis=1)
    return v.min(axis=1), v.max(axis=1)


def output_extremes(circuit: Circuit, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([P, n_out], [P, n_out]) range (V) each output can take at each data point: within the source extremes
    for a single-ended output, within plus or minus their span for a differential one."""
    lo, hi = source_extremes(circuit, inputs)
    span = hi - lo
    diff = circuit.differential[None, :]
    return np.where(diff, -span[:, None], lo[:, None]), np.where(diff, span[:, None], hi[:, None])


def _points(idx, limit: int = 6) -> str:
    return listed(idx, limit)


def _volts(x: float) -> str:
    return f"{x:.4g} V"


def _class_regions(task: Task) -> tuple[np.ndarray, np.ndarray]:
    """([C], [C]) output interval (V) read as each class under ``"nearest"`` decoding: between the midpoints
    to the neighbouring levels."""
    levels = np.asarray(task.levels, float)
    order = np.argsort(levels)
    mids = (levels[order][1:] + levels[order][:-1]) / 2
    lo, hi = np.empty(len(levels)), np.empty(len(levels))
    lo[order] = np.concatenate([[-np.inf], mids])
    hi[order] = np.concatenate([mids, [np.inf]])
    return lo, hi


def range_warnings(circuit: Circuit, task: Task) -> list[str]:
    """Targets (regression) or class sides (one-output classification) outside what the outputs can reach."""
    lo, hi = output_extremes(circuit, task.inputs)
    why = ("a passive network's node voltages stay between its lowest and highest source (the point's inputs, the "
           "rails" + (", and ground through the transistors' bodies" if circuit.device.conducts_to_ground else "")
           + ")")
    out = []
    if not task.is_classification:
        miss = np.maximum(lo - task.targets, 0) + np.maximum(task.targets - hi, 0)  # distance outside [lo, hi]
        for k in np.flatnonzero((miss > MIN_GAP_V).any(axis=0)):
            bad = np.flatnonzero(miss[:, k] > MIN_GAP_V)
            kind = "differential output" if circuit.differential[k] else "single-ended output"
            floor = float(np.sum(miss[:, k] ** 2) / miss.size)
            out.append(f"task: {kind} {k} cannot reach the targets of point(s) {_points(bad)} (e.g. "
                       f"{_volts(task.targets[bad[0], k])} at point {bad[0]}, where it can only lie in "
                       f"[{_volts(lo[bad[0], k])}, {_volts(hi[bad[0], k])}]): {why}, so the loss cannot fall below "
                       f"{floor:.3g} V^2; move the targets inside, add a rail beyond them, or use a differential "
                       "output {pos, neg}")
    elif task.decode == "nearest":
        rlo, rhi = _class_regions(task)
        c = task.classes
        bad = np.flatnonzero((rhi[c] <= lo[:, 0] + _TOL) | (rlo[c] >= hi[:, 0] - _TOL))
        if len(bad):
            b = bad[0]
            side = f"below {_volts(rhi[c[b]])}" if np.isfinite(rhi[c[b]]) else f"above {_volts(rlo[c[b]])}"
            out.append(f"task: point(s) {_points(bad)} cannot be classified correctly: point {b}'s class needs the "
                       f"output {side}, but it can only lie in [{_volts(lo[b, 0])}, {_volts(hi[b, 0])}]: {why}; the "
                       f"accuracy cannot exceed {1 - len(bad) / task.n_points:.0%}; move the labels (task.labels) "
                       "inside, add a rail beyond them, or use a differential output {pos, neg}")
    return out


def order_warnings(circuit: Circuit, task: Task) -> list[str]:
    """Single-ended outputs asked to fall where every input rises (on devices whose currents are monotone)."""
    if not circuit.device.monotone or task.n_points > MAX_ORDER_POINTS or circuit.n_inputs == 0:
        return []
    x = task.inputs
    below = np.all(x[:, None, :] <= x[None, :, :] + _TOL, axis=2)  # below[a, b]: every input of a <= that of b
    np.fill_diagonal(below, False)
    why = ("every input is at least as high there, and in a network of monotone devices (resistors, level-1 "
           "transistors) a rise of any source reaches every node as a rise, never a fall")
    out = []
    if not task.is_classification:
        for k in np.flatnonzero(~circuit.differential):
            t = task.targets[:, k]
            drop = np.where(below, t[:, None] - t[None, :], 0.0)  # drop[a, b] > 0: the target falls from a to b
            if drop.max() <= MIN_GAP_V:
                continue
            a, b = np.unravel_index(np.argmax(drop), drop.shape)
            n_pairs = int((drop > MIN_GAP_V).sum())
            floor = float(drop[a, b]) ** 2 / 2 / task.targets.size
            out.append(f"task: single-ended output {k} cannot follow its targets: it must be at least as high at "
                       f"point {b} (inputs {_row(x[b])}) as at point {a} (inputs {_row(x[a])}) since {why}, but the "
                       f"targets fall from {_volts(t[a])} to {_volts(t[b])} ({n_pairs} such pair(s)); the loss cannot "
                       f"fall below {floor:.3g} V^2; use a differential output {{pos, neg}} or targets that rise "
                       "with the inputs")
    elif task.decode == "nearest" and not circuit.differential[0]:
        level = np.asarray(task.levels, float)[task.classes]
        conflict = below & (level[:, None] > level[None, :] + _TOL)
        if conflict.any():
            a, b = np.argwhere(conflict)[0]
            out.append(f"task: points {a} and {b} cannot both be classified correctly: the single-ended output must "
                       f"be at least as high at point {b} (inputs {_row(x[b])}) as at point {a} (inputs "
                       f"{_row(x[a])}) since {why}, but their classes ask for {_volts(level[a])} then "
                       f"{_volts(level[b])} ({int(conflict.sum())} such pair(s)); use a differential output "
                       "{pos, neg}")
    return out


def _row(x: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in x) + ") V"


def rate_warnings(circuit: Circuit, task: Task, rate: float, low: float, high: float, rate_key: str) -> list[str]:
    """A continuous rate whose largest possible update (the rate times the largest contrast, the squared span of
    the sources) exceeds ``RATE_TOO_LARGE`` times the control range: a rate given in another kind's unit."""
    dev: EdgeDevice = circuit.device
    if dev.update_kind != "continuous" or rate <= 0:
        return []
    lo, hi = source_extremes(circuit, task.inputs)
    span2 = float(hi.max() - lo.min()) ** 2
    jump = rate * span2
    if jump <= RATE_TOO_LARGE * (high - low):
        return []
    return [f"{rate_key}: {rate:g} {dev.rate_unit} lets one update move a {dev.kind} control by up to {jump:.3g} "
            f"{dev.control_unit} (the rate times the largest contrast, ({span2 ** 0.5:.3g} V)^2), "
            f"{jump / (high - low):.3g}x its whole range [{low:g}, {high:g}] {dev.control_unit}: controls will jump "
            f"between the bounds. The rate is in {dev.rate_unit} for a {dev.kind}; about "
            f"{(high - low) / span2:.3g} {dev.rate_unit} crosses the range only at the largest contrast"]


def before_training(circuit: Circuit, task: Task, rate: float, low: float, high: float,
                    rate_key: str = "learning.rate") -> list[str]:
    """Every check before training, in order: reachable range, order, rate."""
    return [*range_warnings(circuit, task), *order_warnings(circuit, task),
            *rate_warnings(circuit, task, rate, low, high, rate_key)]


def moved_warnings(device: EdgeDevice, initial: np.ndarray, final: np.ndarray, n_updates: np.ndarray,
                   losses: tuple[np.ndarray, np.ndarray], low: float, high: float, rate: float, rate_source: str,
                   epochs: int, accuracies: tuple[np.ndarray, np.ndarray] | None = None,
                   nudge: float | None = None) -> list[str]:
    """Replicas whose controls [R, E] barely moved (none by ``BARELY_MOVED`` of the range) although updates
    happened, while they did not learn: their loss (``losses``: initial and final [R], V^2) did not fall by half,
    or with ``accuracies`` (initial and final [R]: a hinge, under which the output loss may rise while it learns)
    their training accuracy did not rise; with the rate in use (``rate_source`` says where it came from) and how
    much larger a rate would move them; where that rate is past ``MAX_RATE``, the rule's ``nudge`` (a point's step
    grows with it) is named as what to raise."""
    if device.update_kind != "continuous" or epochs == 0:
        return []
    moved = np.max(np.abs(np.atleast_2d(final) - np.atleast_2d(initial)), axis=1)
    first, last = (np.atleast_1d(np.asarray(v, float)) for v in (accuracies or losses))
    stuck = last <= first if accuracies is not None else last > first / 2
    still = (moved < BARELY_MOVED * (high - low)) & (np.asarray(n_updates) > 0) & stuck
    if not still.any():
        return []
    r = int(np.flatnonzero(still)[0])
    unit = device.control_unit
    count = "" if len(moved) == 1 else f" in {int(still.sum())} of {len(moved)} replicas"
    if rate == 0:  # no step at all: what moved, moved by leak or noise, and no larger multiple of 0 helps
        what = (f"none changed in {epochs} epochs" if moved[r] == 0 else
                f"the largest change in {epochs} epochs, {moved[r]:.3g} {unit}, is the leak's or the noise's")
        return [f"the {device.control_label.split(' (')[0]}s barely moved{count}: learning.rate is 0 "
                f"{device.rate_unit} ({rate_source}), so the rule takes no step ({what}); give a rate > 0 to train, "
                "or keep 0 for a network that is not to learn"]
    grow = 0.1 * (high - low) / max(float(moved[r]), 1e-300)
    went = (f"training accuracy went from {first[r]:.1%} to {last[r]:.1%}" if accuracies is not None else
            f"loss went from {first[r]:.3g} to {last[r]:.3g} V^2")
    advice = ("set learning.rate, or learning.epochs for a run kept short on purpose" if rate * grow <= MAX_RATE else
              f"that is past the largest learning.rate ({MAX_RATE:g} {device.rate_unit}): raise learning.nudge"
              f"{'' if nudge is None else f' (now {nudge:g})'}, with which a point's step grows, or the rate as far "
              "as it goes")
    return [f"the {device.control_label.split(' (')[0]}s barely moved{count}: the largest change in {epochs} epochs "
            f"was {moved[r]:.3g} {unit} ({moved[r] / (high - low):.2%} of the {low:g}-{high:g} {unit} range) and the "
            f"{went}, at learning.rate {rate:.3g} {device.rate_unit} ({rate_source}). Small steps move the controls "
            f"in proportion to the rate: a rate {grow:.3g}x larger ({rate * grow:.3g} {device.rate_unit}) would move "
            f"them by a tenth of their range in as many epochs, and so would about as many times more epochs; {advice}"]


def hinge_notes(history: list[dict], epochs: int, margin: float, reach: float | None = None) -> list[str]:
    """When hinge training stopped updating (every point past ``margin``), from the evaluated history (per
    replica arrays of ``learning_time_s``): the first evaluated epoch after which the learning switch never
    closed again, if that is before ``epochs``. ``reach``: the largest margin the task lets a point reach
    (``experiment.reachable_margin``), named where the note suggests a wider one; None where there is none."""
    if len(history) < 2:
        return []
    ep = np.array([row["epoch"] for row in history])
    lt = np.array([np.atleast_1d(row["learning_time_s"]) for row in history])  # [T, R]
    changed = np.diff(lt, axis=0) != 0  # [T-1, R]: an update closed the switch between evaluations t and t+1
    last = np.array([ep[np.flatnonzero(col)[-1] + 1] if col.any() else ep[0] for col in changed.T])
    stopped = last < epochs
    if not stopped.any() or ep[-1] != epochs:
        return []
    if lt.shape[1] == 1:
        e = int(last[0])
        if not changed.any():
            return [f"hinge training never updated: every point was already {margin:g} V past its decision "
                    "boundary at the start, so the gates stayed as initialised"]
        return [f"hinge training stopped updating by epoch {e} of {epochs}: every point was {margin:g} V past its "
                f"decision boundary (learning.margin), so the learning switch stayed open for the last {epochs - e} "
                "epochs: the task is learned, and they cost only simulation time (lower learning.epochs to save it, "
                "or raise learning.margin to train on towards a wider margin"
                + (f", below {reach:.4g} V, half the gap between the labels)" if reach is not None else ")")]
    return [f"hinge training stopped updating before the end in {int(stopped.sum())} of {len(last)} replicas "
            f"(median epoch {int(np.median(last[stopped]))} of {epochs}): every point was {margin:g} V past its "
            "decision boundary (learning.margin)"]




def lowest_loss(history: list[dict], replica: int = 0) -> tuple[float | None, int | None]:
    """(the lowest output loss of replica ``replica`` over the evaluated history, the first epoch it was reached);
    (None, None) where no evaluation has one."""
    rows = [(float(np.atleast_1d(row["loss"])[replica]), int(row["epoch"])) for row in history
            if row.get("loss") is not None and np.isfinite(np.atleast_1d(row["loss"])[replica])]
    return min(rows, key=lambda lr: lr[0]) if rows else (None, None)


#: a run's final output loss this many times its lowest evaluated one is worth a note (``loss_rise_notes``)
LOSS_ROSE = 2.0


def loss_rise_notes(history: list[dict], epochs: int) -> list[str]:
    """When the output loss ended well above its lowest (``LOSS_ROSE`` times), from the evaluated history (per
    replica arrays of ``loss``): more epochs made the run worse (docs/physics.md 4.2 shows why a run can)."""
    if len(history) < 3 or history[-1]["epoch"] != epochs:
        return []
    final = np.atleast_1d(history[-1]["loss"]).astype(float)
    lows = [lowest_loss(history, r) for r in range(final.size)]
    if any(low is None for low, _ in lows):
        return []
    lowest, at = np.array([low for low, _ in lows]), np.array([e for _, e in lows])
    rose = final > LOSS_ROSE * lowest
    if not rose.any():
        return []
    if final.size == 1:
        step = history[1]["epoch"] - history[0]["epoch"]
        every = f", evaluated every {step} epochs" if step > 1 else ""
        return [f"the output loss was lowest at epoch {at[0]} ({lowest[0]:.3g} V^2{every}) and ended at "
                f"{final[0]:.3g} V^2, {final[0] / lowest[0]:.1f}x higher: the epochs after made it worse; the same run "
                f"with learning.epochs={at[0]} ends at its lowest (docs/physics.md 4.2 shows how coupled learning can "
                "drift after its best epoch)"]
    return [f"the output loss ended more than {LOSS_ROSE:g}x above its lowest in {int(rose.sum())} of {len(rose)} "
            f"replicas (median epoch of the lowest {int(np.median(at[rose]))} of {epochs})"]


#: replicas whose final controls agree to this (V; ngspice's iterations leave ~1e-10 V between equal runs) are one
SAME_CONTROLS = 1e-6


def identical_replicas_notes(initial: np.ndarray, final: np.ndarray) -> list[str]:
    """A note when the replicas [R, E] of an ensemble started with the same controls and ended with them within
    ``SAME_CONTROLS``: nothing the config draws depends on the seed, so the ensemble is one run R times and its
    spread says nothing."""
    if len(final) < 2 or not (np.all(initial == initial[:1]) and np.abs(final - final[:1]).max() <= SAME_CONTROLS):
        return []
    return [f"the {len(final)} replicas started with identical gates and ended within {1e6 * SAME_CONTROLS:g} uV of "
            "each other: nothing this config draws depends on "
            "the seed (constant initial gates, points in a fixed order, no mismatch or read noise), so the ensemble "
            "is one run repeated; to make the seeds differ, draw the initial gates (learning.init: {kind: uniform, "
            "low: ..., high: ...}), shuffle the points (learning.schedule: shuffle) or give the chips mismatch"]


#: an output node whose every transistor carries less than this (A) at a point is held by leakage there: the
#: network's currents are microamperes, gmin's (1e-12 S) and the junctions' (I_S 1e-14 A) picoamperes
LEAKAGE_HELD_A = 1e-9


def leakage_warnings(c: Circuit, controls: np.ndarray, free: np.ndarray) -> list[str]:
    """A warning when, at the trained gates ``controls`` [E] and free operating points ``free`` [P, N], an output
    node has every transistor below ``LEAKAGE_HELD_A`` at some point: all of them cut off, and the level-1 law
    conducts nothing below threshold, so the node's voltage is set by gmin and junction leakage, not by the network
    (it moves with simulator.gmin by a millivolt per decade; a real transistor, or the three-regime law, would
    conduct there)."""
    if not isinstance(c.device, NmosParams) or c.device.law != LEVEL1:
        return []
    try:
        current = np.abs(edge_currents(c, controls, free))  # [P, E]
    except ValidationError:  # a body behind series resistances away from the drain: currents not modelled here
        return []
    held = []
    for node in dict.fromkeys(int(n) for n in (*c.out_pos, *c.out_neg) if n >= 0):
        largest = current[:, (c.edges[:, 0] == node) | (c.edges[:, 1] == node)].max(axis=1)  # [P]
        points = np.flatnonzero(largest < LEAKAGE_HELD_A)
        if points.size:
            held.append((node, points, largest[points].max()))
    if not held:
        return []
    node, points, top = held[0]
    more = f"; {len(held) - 1} more output node(s) likewise" if len(held) > 1 else ""
    return [f"output node {c.node_labels[node]} (n{node}) at training point(s) {_points(points)} is held by "
            f"currents below {LEAKAGE_HELD_A:g} A (at most {top:.2g} A){more}: every transistor there is cut off, and "
            "the level-1 law conducts nothing below threshold, so the voltage is set by gmin and junction leakage, "
            "not by the network (it moves with simulator.gmin; a real transistor would conduct there)"]


__all__ = ["BARELY_MOVED", "RATE_TOO_LARGE", "SAME_CONTROLS", "LEAKAGE_HELD_A", "source_extremes", "output_extremes",
           "range_warnings", "order_warnings", "rate_warnings", "before_training", "moved_warnings", "hinge_notes",
           "identical_replicas_notes", "leakage_warnings"]
