"""The ``solve`` and ``netlist`` commands: every data point's free and clamped phase at the initial controls (of a
large task, the first points up to ``netlist.NETLIST_EDGES`` edge copies).

The clamp values come from the free solve on the configured backend; the netlists are the exact text a
``ngspice -b`` run reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import Config, with_backend
from .experiment import Setup, build, initial_controls, make_solver
from .netlist import netlist_points, to_spice


def initial_phases(cfg: Config, backend: str | None = None, clamped: bool = True):
    """(setup, controls, free [P, N], clamps [P, n_clamp], clamped [P, N] or None, solver name) of every data
    point at the initial controls (of the first ``netlist.netlist_points`` of a large task)."""
    setup = build(with_backend(cfg, backend))
    c, task = setup.circuit, setup.task
    k = netlist_points(task.n_points, c.n_edges)
    x, classes = task.inputs[:k], None if task.classes is None else task.classes[:k]
    controls = initial_controls(setup, np.random.default_rng(cfg.seed))
    with make_solver(setup) as solver:
        free = solver.solve(c, controls, x).voltages
        clamps = setup.rule.clamp(c, free, task.targets[:k], classes)
        twin = solver.solve(c, controls, x, clamps).voltages if clamped else None
    return setup, controls, free, clamps, twin, solver.name


def solve_points(cfg: Config, backend: str | None = None) -> dict:
    """Free and clamped operating points of every data point at the initial controls."""
    setup, controls, free, _, clamped, solver_name = initial_phases(cfg, backend)
    c, task = setup.circuit, setup.task
    names = [f"n{i}" for i in range(c.n_nodes)]
    return {"nodes": names, "labels": list(c.node_labels), "backend": solver_name, "controls": controls.tolist(),
            "points": [{"input": task.inputs[p].tolist(), "target": task.targets[p].tolist(),
                        "free": dict(zip(names, free[p].tolist())), "clamped": dict(zip(names, clamped[p].tolist()))}
                       for p in range(len(free))]}


def write_netlists(cfg: Config, out_dir: Path, backend: str | None = None) -> list[Path]:
    """``free_k.cir`` and ``clamped_k.cir`` for each data point k at the initial controls."""
    setup, controls, _, clamps, _, _ = initial_phases(cfg, backend, clamped=False)
    return write_point_netlists(setup, controls, clamps, out_dir, cfg.name)


def write_point_netlists(setup: Setup, controls: np.ndarray, clamps: np.ndarray, out_dir: Path, title: str
                         ) -> list[Path]:
    """``free_k.cir`` and ``clamped_k.cir`` (nudged outputs held at ``clamps`` [P, n_clamp] V) for each of the
    first P training points k of ``setup`` at ``controls`` [E]; ``title`` heads each netlist."""
    c, task = setup.circuit, setup.task
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(len(clamps)):
        for phase, cl in (("free", None), ("clamped", clamps[k:k + 1])):
            p = out_dir / f"{phase}_{k}.cir"
            p.write_text(to_spice(c, controls, task.inputs[k:k + 1], cl, options=setup.options,
                                  title=f"{title} point {k}"))
            paths.append(p)
    return paths
