"""The ``solve`` and ``netlist`` commands: every data point's free and clamped phase at the initial controls (of a
large task, the first points up to ``netlist.NETLIST_EDGES`` edge copies, or the points asked for: ``point_indices``).

The clamp values come from the free solve on the configured backend; the netlists are the exact text a
``ngspice -b`` run reads, with the options ngspice's backend solves that circuit with (``netlist.solve_options``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .cards import comment_text
from .config import Config, with_backend
from .configfile import as_config
from .errors import ConfigError, shown
from .experiment import Setup, build, initial_controls, make_solver
from .netlist import SpiceOptions, netlist_points, options_comments, solve_options, to_spice
from .runfiles import TMP, column_names, is_point_netlist, write_text_atomically
from .units import listed


def point_indices(spec: str | None, n_points: int, n_edges: int) -> np.ndarray:
    """Training points named by ``spec`` (``--points``): indices and inclusive ranges separated by commas
    (``0,5,10-19``) or ``all``, in the order given; None: the first ``netlist.netlist_points`` (every point of the
    small tasks, 8 of the digits)."""
    if spec is None:
        return np.arange(netlist_points(n_points, n_edges))
    if not isinstance(spec, str):  # a point's index as an int was "'int' object has no attribute 'strip'"
        raise ConfigError(f"--points: must be a text of indices and ranges (got {type(spec).__name__} {shown(spec)}); "
                          "give e.g. '3', '0,5,10-19' or 'all'")
    if spec.strip() == "all":
        return np.arange(n_points)
    out: dict[int, None] = {}  # in the order given, each once
    for part in spec.split(","):
        ends = part.strip().split("-")
        valid = f"give indices from 0 to {n_points - 1:,}"
        if len(ends) > 2 or not all(e.strip().isdigit() for e in ends):
            raise ConfigError(f"--points: not a point index or a range a-b (got {shown(part.strip())}); {valid} and "
                              "ranges a-b of them, separated by commas, or all")
        lo, hi = int(ends[0]), int(ends[-1])
        if hi < lo:
            raise ConfigError(f"--points: a reversed range, which ends before it starts (got {shown(part.strip())}); "
                              f"write it as {hi}-{lo}")
        if hi >= n_points:
            raise ConfigError(f"--points: outside the {n_points:,} training points, numbered 0 to {n_points - 1:,} "
                              f"(got {shown(part.strip())}); {valid}, or all")
        out.update(dict.fromkeys(range(lo, hi + 1)))
    return np.array(list(out), int)


def point_phases(setup: Setup, controls: np.ndarray, idx: np.ndarray, clamped: bool = True):
    """(free [P, N], clamps [P, n_clamp], clamped [P, N] or None, solver name) of the training points ``idx`` at
    ``controls``, on the setup's backend: the clamp values come from its free solve."""
    c, task = setup.circuit, setup.task
    x, classes = task.inputs[idx], None if task.classes is None else task.classes[idx]
    with make_solver(setup) as solver:
        free = solver.solve(c, controls, x).voltages
        clamps = setup.rule.clamp(c, free, task.targets[idx], classes)
        twin = solver.solve(c, controls, x, clamps).voltages if clamped else None
    return free, clamps, twin, solver.name


def initial_points(cfg: Config, backend: str | None = None, points: str | None = None
                   ) -> tuple[Setup, np.ndarray, np.ndarray]:
    """(setup, indices, controls): the setup of ``cfg`` on ``backend``, the data points ``points`` names
    (``point_indices``) and the initial controls [E] (V), before anything is solved."""
    setup = build(with_backend(cfg, backend))
    idx = point_indices(points, setup.task.n_points, setup.circuit.n_edges)
    return setup, idx, initial_controls(setup, np.random.default_rng(cfg.seed))


def initial_phases(cfg: Config, backend: str | None = None, clamped: bool = True, points: str | None = None):
    """(setup, indices, controls, free [P, N], clamps [P, n_clamp], clamped [P, N] or None, solver name) of the
    data points ``indices`` (``point_indices`` of ``points``) at the initial controls."""
    setup, idx, controls = initial_points(cfg, backend, points)
    return setup, idx, controls, *point_phases(setup, controls, idx, clamped)


def solve_points(cfg: Config | str | Path, backend: str | None = None, points: str | None = None) -> dict:
    """Free and clamped operating points of the data points ``points`` (``point_indices``) at the initial
    controls of ``cfg`` (a Config, or a config file's path: ``configfile.as_config``)."""
    cfg = as_config(cfg, "solve_points")
    setup, idx, controls, free, _, clamped, solver_name = initial_phases(cfg, backend, points=points)
    c, task = setup.circuit, setup.task
    names = [f"n{i}" for i in range(c.n_nodes)]
    margins = hinge_margins(setup, free, idx)
    hinge = [{} if margins is None else {"margin_v": float(m), "hinge_skips": bool(m >= setup.rule.margin)}
             for m in (margins if margins is not None else idx)]
    return {"nodes": names, "labels": list(c.node_labels), "backend": solver_name, "controls": controls.tolist(),
            "n_points": task.n_points,
            "points": [{"index": int(k), "input": task.inputs[k].tolist(), "target": task.targets[k].tolist(),
                        **hinge[j], "free": dict(zip(names, free[j].tolist())),
                        "clamped": dict(zip(names, clamped[j].tolist()))}
                       for j, k in enumerate(idx)]}


def write_netlists(cfg: Config | str | Path, out_dir: Path, backend: str | None = None, points: str | None = None
                   ) -> tuple[list[Path], str, list[str]]:
    """``free_k.cir`` and ``clamped_k.cir`` for each data point k of ``points`` (``point_indices``) at the initial
    controls of ``cfg`` (a Config, or a config file's path: ``configfile.as_config``); (their paths, which points
    they are: ``describe_points``, the names of an earlier call's netlist files removed: ``write_point_netlists``)."""
    cfg = as_config(cfg, "write_netlists")
    setup, idx, controls = initial_points(cfg, backend, points)
    netlist_folder(out_dir, idx)  # a folder that cannot be written is refused before the solve, not after it
    free, clamps = point_phases(setup, controls, idx, clamped=False)[:2]
    paths, skipped, removed = write_point_netlists(setup, idx, controls, free, clamps, out_dir, cfg.name)
    return paths, describe_points(idx, setup.task.n_points) + skipped, removed


def netlist_folder(out_dir: str | Path, idx: np.ndarray) -> Path:
    """``out_dir`` as a Path, created with its missing parents, where ``free_k.cir`` and ``clamped_k.cir`` of each
    data point k of ``idx`` [P] can be written: a folder where one of them (or its temporary file) goes is refused
    by name, as is an ``out_dir`` that cannot be created."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a file where the folder goes: the command line's message, not a bare FileExistsError
        raise ConfigError(f"{out_dir}: cannot create the output directory ({err.strerror}); choose another --out") \
            from err
    for k in idx:
        for phase in ("free", "clamped"):
            p = out_dir / f"{phase}_{k}.cir"
            for q in (p, p.with_name(p.name + TMP)):
                if q.is_dir() and not q.is_symlink():  # was a bare IsADirectoryError once the points were solved
                    raise ConfigError(f"{q}: a folder where the netlist {p.name} is written; remove or rename it, "
                                      "or choose another --out")
    return out_dir


def hinge_margins(setup: Setup, free: np.ndarray, idx: np.ndarray) -> np.ndarray | None:
    """[P] margin (V) of each training point of ``idx`` in the free states ``free`` [P, N] under the hinge (the
    step's ``class_margins``), or None when every point updates (no hinge)."""
    if not setup.rule.hinge:
        return None
    return setup.task.margins(setup.circuit.output_values(free), setup.task.classes[idx])


def write_point_netlists(setup: Setup, idx: np.ndarray, controls: np.ndarray, free: np.ndarray, clamps: np.ndarray,
                         out_dir: Path, title: str) -> tuple[list[Path], str, list[str]]:
    """``free_k.cir`` and ``clamped_k.cir`` (nudged outputs held at ``clamps`` [P, n_clamp] V) for each training
    point k of ``idx`` [P] of ``setup`` at ``controls`` [E], whose free states are ``free`` [P, N]; ``title`` heads
    each netlist. Under a hinge, a point already ``learning.margin`` past its boundary takes no step, so training
    runs no clamped phase for it: its clamped netlist says so in its title.

    The files of one call are a set: netlist files (``free_k.cir``, ``clamped_k.cir``) an earlier call left in
    ``out_dir`` that this one does not rewrite are removed, so the folder never mixes gates, points or networks of
    two calls; other files stay. (The paths, "" or a clause naming how many points the hinge skips, and the names of
    the files removed.)"""
    c, task = setup.circuit, setup.task
    margins = hinge_margins(setup, free, idx)
    options, why = netlist_options(setup)
    out_dir = netlist_folder(out_dir, idx)
    paths, skipped = [], 0
    for j, k in enumerate(idx):
        past = margins is not None and margins[j] >= setup.rule.margin
        skipped += past
        note = (f" (the hinge skips this point: its margin {1e3 * margins[j]:.3g} mV is past learning.margin "
                f"{1e3 * setup.rule.margin:.3g} mV, so training runs no clamped phase for it"
                + (" unless a noisy read says otherwise (learning.noisy_decisions)" if setup.params.noisy_decisions
                   else "") + ", and the clamps are those it would apply)") if past else ""
        for phase, cl, more in (("free", None, ""), ("clamped", clamps[j:j + 1], note)):
            p = out_dir / f"{phase}_{k}.cir"
            said = why + (clamp_comments(setup, free[j:j + 1], cl, [int(k)]) if cl is not None else [])
            write_text_atomically(p, to_spice(c, controls, task.inputs[k:k + 1], cl, options=options,
                                              title=f"{title} point {k}{more}", comments=said))
            paths.append(p)
    written = {p.name for p in paths}

    def own(name: str) -> str | None:  # the netlist a file is, or the temporary file a kill left of it is
        return name.removesuffix(TMP) if is_point_netlist(name) else None

    removed = sorted((p for p in out_dir.iterdir() if own(p.name) and p.name not in written and p.is_file()),
                     key=lambda p: (p.name.split("_")[0], int(own(p.name)[:-4].split("_")[1]), p.name))
    for p in removed:
        p.unlink()
    clause = "" if not skipped else f"; the hinge skips {skipped} of them, and " + \
        ("its clamped_k.cir says so" if skipped == 1 else "their clamped_k.cir say so")
    return paths, clause, [p.name for p in removed]


def netlist_options(setup: Setup) -> tuple[SpiceOptions, list[str]]:
    """(the options a netlist of ``setup``'s circuit is written with, the comment lines saying why they differ from
    the config's): those ngspice's backend solves it with (``netlist.solve_options``)."""
    return solve_options(setup.circuit, setup.options), options_comments(setup.circuit, setup.options)


def run_netlists(setup: Setup, controls: np.ndarray, free: np.ndarray, title: str) -> tuple[str, str]:
    """The text of a run's ``free.cir`` and ``clamped.cir``: its first ``netlist.netlist_points`` training points as
    one batch at ``controls`` [E], whose free states are ``free`` [>= P, N]; the clamped twin holds the clamps
    training applies to them, and says which points the hinge skips (as ``clamped_k.cir`` of ``netlist RUN_DIR``
    does)."""
    c, task = setup.circuit, setup.task
    k = netlist_points(task.n_points, c.n_edges)
    idx = np.arange(k)
    some = "" if k == task.n_points else f", training points 0-{k - 1} of {task.n_points}"
    free = np.atleast_2d(free)[:k]
    clamps = setup.rule.clamp(c, free, task.targets[:k], None if task.classes is None else task.classes[:k])
    options, why = netlist_options(setup)
    margins = hinge_margins(setup, free, idx)
    skips = [] if margins is None else np.flatnonzero(margins >= setup.rule.margin).tolist()
    skipped = [] if not skips else [
        f"the hinge skips point(s) {_list(skips)}: their margin is past learning.margin {1e3 * setup.rule.margin:.3g} "
        "mV, so training runs no clamped phase for them" + (" unless a noisy read says otherwise "
                                                           "(learning.noisy_decisions)" if setup.params.noisy_decisions
                                                           else "") + "; their copies hold the clamps it would apply"]
    free_text = to_spice(c, controls, task.inputs[:k], options=options, title=f"{title} final free{some}",
                         comments=why)
    clamped_text = to_spice(c, controls, task.inputs[:k], clamps, options=options,
                            title=f"{title} final clamped{some}",
                            comments=why + skipped + clamp_comments(setup, free, clamps, idx.tolist(), skips))
    return free_text, clamped_text


def clamp_comments(setup: Setup, free: np.ndarray, clamps: np.ndarray, points: list[int],
                   skipped: list[int] = ()) -> list[str]:
    """Comment lines saying what the clamp values of training points ``points`` are: each output (its netlist name,
    and the task's where it has its own), its free value and label, the nudge that moved it, and the VC sources and
    nodes holding it. ``free`` [P, N] are the points' free states, ``clamps`` [P, n_clamp] their clamp values, in
    a netlist of one point or of the batch ``points`` (copy j: ``VC0_j``); a point of ``skipped`` is marked as one
    the hinge skips."""
    c, task, rule = setup.circuit, setup.task, setup.rule
    outputs, classes = column_names(setup)[1:]
    names = [comment_text(n.replace("=", ": ")) for n in outputs]  # Iris's species=setosa: species: setosa
    nets = [f"n{p}" if n < 0 else f"n{p}-n{n}" for p, n in zip(c.out_pos.tolist(), c.out_neg.tolist())]
    if task.decode == "argmax" and not task.columns:  # output k reads class k, which the task does not name
        names = [f"class {comment_text(str(k))}" for k in (classes or range(c.n_outputs))]
    neg_slot = {int(k): len(c.out_pos) + j for j, k in enumerate(np.flatnonzero(c.out_neg >= 0))}
    out = c.output_values(free)
    nudge = f"learning.nudge {rule.nudge:.6g}"
    lines = [f"clamps (VC): the true class's output pushed up by {nudge} V and its largest rival's down by as much, "
             "the others held at their free values (multiclass_hinge)" if rule.rival else
             f"clamps (VC): each output held at its free value nudged toward its label, O_C = O_F + eta (L - O_F), "
             f"eta = {nudge}"]
    if c.differential.any():
        lines[0] += "; a differential output moves each of its nodes by half of that, in opposite ways"
    for j, k in enumerate(points):
        cls = None if task.classes is None else int(task.classes[k])
        head = f"point {k}{' (skipped by the hinge)' if k in skipped else ''}: " if len(points) > 1 else ""
        for o in range(c.n_outputs):
            held = clamps[j, o] - (clamps[j, neg_slot[o]] if o in neg_slot else 0.0)
            name = nets[o] + ("" if names[o] == nets[o] else f" ({names[o]})")
            free_v = f"free {out[j, o]:.6g} V"
            if not rule.rival:
                what = f"{free_v}, label {task.targets[k, o]:.6g} V, clamped to {held:.6g} V"
            elif o == cls:
                what = f"true class, {free_v}, pushed up to {held:.6g} V"
            elif held < out[j, o]:
                what = f"largest rival, {free_v}, pushed down to {held:.6g} V"
            else:
                what = f"{free_v}, held there"
            sfx = f"_{j}" if len(points) > 1 else ""  # copy j of a batch: VC0_j on n10_j
            on = f"VC{o}{sfx} on n{c.out_pos[o]}{sfx}" + (f", VC{neg_slot[o]}{sfx} on n{c.out_neg[o]}{sfx}"
                                                          if o in neg_slot else "")
            lines.append(f"{head}output {name}: {what} ({on})")
    return lines


def _list(idx: list[int]) -> str:
    """``0, 3, 5`` (the first 20, then a count)."""
    return listed(idx, 20)


def describe_points(idx: np.ndarray, n_points: int) -> str:
    """``training points 0-7 of 1,437`` / ``every training point (4)`` / ``training points 3, 5 of 150``."""
    if len(idx) == n_points and (idx == np.arange(n_points)).all():
        return f"every training point ({n_points:,})"
    runs, start = [], 0
    for j in range(1, len(idx) + 1):
        if j == len(idx) or idx[j] != idx[j - 1] + 1:
            runs.append(f"{idx[start]}" if j - 1 == start else f"{idx[start]}-{idx[j - 1]}")
            start = j
    shown = ", ".join(runs[:6]) + (", ..." if len(runs) > 6 else "")
    return f"training point{'s' if len(idx) > 1 else ''} {shown} of {n_points:,}"
