"""The ``solve`` and ``netlist`` commands: every data point's free and clamped phase at the initial controls (of a
large task, the first points up to ``netlist.NETLIST_EDGES`` edge copies, or the points asked for: ``point_indices``).

The clamp values come from the free solve on the configured backend; the netlists are the exact text a
``ngspice -b`` run reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import Config, with_backend
from .errors import ConfigError
from .experiment import Setup, build, initial_controls, make_solver
from .netlist import netlist_points, to_spice


def point_indices(spec: str | None, n_points: int, n_edges: int) -> np.ndarray:
    """Training points named by ``spec`` (``--points``): indices and inclusive ranges separated by commas
    (``0,5,10-19``) or ``all``, in the order given; None: the first ``netlist.netlist_points`` (every point of the
    small tasks, 8 of the digits)."""
    if spec is None:
        return np.arange(netlist_points(n_points, n_edges))
    if spec.strip() == "all":
        return np.arange(n_points)
    out: dict[int, None] = {}  # in the order given, each once
    for part in spec.split(","):
        ends = part.strip().split("-")
        if len(ends) > 2 or not all(e.strip().isdigit() for e in ends):
            raise ConfigError(f"--points: {part.strip()!r} is not a point index or a range a-b; give e.g. 0,5,10-19 "
                              "or all")
        lo, hi = int(ends[0]), int(ends[-1])
        if hi < lo or hi >= n_points:
            raise ConfigError(f"--points: {part.strip()!r} is outside the {n_points:,} training points (0-"
                              f"{n_points - 1})")
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


def initial_phases(cfg: Config, backend: str | None = None, clamped: bool = True, points: str | None = None):
    """(setup, indices, controls, free [P, N], clamps [P, n_clamp], clamped [P, N] or None, solver name) of the
    data points ``indices`` (``point_indices`` of ``points``) at the initial controls."""
    setup = build(with_backend(cfg, backend))
    idx = point_indices(points, setup.task.n_points, setup.circuit.n_edges)
    controls = initial_controls(setup, np.random.default_rng(cfg.seed))
    return setup, idx, controls, *point_phases(setup, controls, idx, clamped)


def solve_points(cfg: Config, backend: str | None = None, points: str | None = None) -> dict:
    """Free and clamped operating points of the data points ``points`` (``point_indices``) at the initial
    controls."""
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


def write_netlists(cfg: Config, out_dir: Path, backend: str | None = None, points: str | None = None
                   ) -> tuple[list[Path], str]:
    """``free_k.cir`` and ``clamped_k.cir`` for each data point k of ``points`` (``point_indices``) at the initial
    controls; (their paths, which points they are: ``describe_points``)."""
    setup, idx, controls, free, clamps, _, _ = initial_phases(cfg, backend, clamped=False, points=points)
    paths, skipped = write_point_netlists(setup, idx, controls, free, clamps, out_dir, cfg.name)
    return paths, describe_points(idx, setup.task.n_points) + skipped


def hinge_margins(setup: Setup, free: np.ndarray, idx: np.ndarray) -> np.ndarray | None:
    """[P] margin (V) of each training point of ``idx`` in the free states ``free`` [P, N] under the hinge (the
    step's ``class_margins``), or None when every point updates (no hinge)."""
    if not setup.rule.hinge:
        return None
    return setup.task.margins(setup.circuit.output_values(free), setup.task.classes[idx])


def write_point_netlists(setup: Setup, idx: np.ndarray, controls: np.ndarray, free: np.ndarray, clamps: np.ndarray,
                         out_dir: Path, title: str) -> tuple[list[Path], str]:
    """``free_k.cir`` and ``clamped_k.cir`` (nudged outputs held at ``clamps`` [P, n_clamp] V) for each training
    point k of ``idx`` [P] of ``setup`` at ``controls`` [E], whose free states are ``free`` [P, N]; ``title`` heads
    each netlist. Under a hinge, a point already ``learning.margin`` past its boundary takes no step, so training
    runs no clamped phase for it: its clamped netlist says so in its title. (The paths, and "" or a clause naming
    how many points the hinge skips.)"""
    c, task = setup.circuit, setup.task
    margins = hinge_margins(setup, free, idx)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
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
            p.write_text(to_spice(c, controls, task.inputs[k:k + 1], cl, options=setup.options,
                                  title=f"{title} point {k}{more}"))
            paths.append(p)
    clause = "" if not skipped else f"; the hinge skips {skipped} of them, and " + \
        ("its clamped_k.cir says so" if skipped == 1 else "their clamped_k.cir say so")
    return paths, clause


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
