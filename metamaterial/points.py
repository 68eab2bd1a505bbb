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
    return {"nodes": names, "labels": list(c.node_labels), "backend": solver_name, "controls": controls.tolist(),
            "n_points": task.n_points,
            "points": [{"index": int(k), "input": task.inputs[k].tolist(), "target": task.targets[k].tolist(),
                        "free": dict(zip(names, free[j].tolist())), "clamped": dict(zip(names, clamped[j].tolist()))}
                       for j, k in enumerate(idx)]}


def write_netlists(cfg: Config, out_dir: Path, backend: str | None = None, points: str | None = None
                   ) -> tuple[list[Path], str]:
    """``free_k.cir`` and ``clamped_k.cir`` for each data point k of ``points`` (``point_indices``) at the initial
    controls; (their paths, which points they are: ``describe_points``)."""
    setup, idx, controls, _, clamps, _, _ = initial_phases(cfg, backend, clamped=False, points=points)
    paths = write_point_netlists(setup, idx, controls, clamps, out_dir, cfg.name)
    return paths, describe_points(idx, setup.task.n_points)


def write_point_netlists(setup: Setup, idx: np.ndarray, controls: np.ndarray, clamps: np.ndarray, out_dir: Path,
                         title: str) -> list[Path]:
    """``free_k.cir`` and ``clamped_k.cir`` (nudged outputs held at ``clamps`` [P, n_clamp] V) for each training
    point k of ``idx`` [P] of ``setup`` at ``controls`` [E]; ``title`` heads each netlist."""
    c, task = setup.circuit, setup.task
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for j, k in enumerate(idx):
        for phase, cl in (("free", None), ("clamped", clamps[j:j + 1])):
            p = out_dir / f"{phase}_{k}.cir"
            p.write_text(to_spice(c, controls, task.inputs[k:k + 1], cl, options=setup.options,
                                  title=f"{title} point {k}"))
            paths.append(p)
    return paths


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
