"""metamaterial: simulate learning metamaterials, analog transistor networks that learn by coupled learning.

Quick start (a config, as the command line runs it)::

    import numpy as np
    import metamaterial as mm
    setup = mm.build(mm.load_config("configs/xor.yaml"))      # graph -> Circuit, task, rule, solver settings
    trainer = mm.make_trainer(setup)                            # on the config's backend (make_solver)
    rng = np.random.default_rng(0)
    state = trainer.run(trainer.init_state(mm.initial_controls(setup, rng), rng))   # state changes in place
    trainer.evaluate(state.controls[0]).accuracy                # 1.0

or piece by piece: ``lattice_network`` (or ``random_network``, ``layered_network``, ``load_network``, or your own
undirected ``nx.Graph`` whose nodes are 0..N-1: ``nx.convert_node_labels_to_integers(G, label_attribute="label")``
makes one of any graph, keeping each node's name) -> ``assign_roles`` (roles by those integers; ``node_id(G, name)``
or ``node_id(G, (row, col))`` finds one) ->
``compile_graph(G, nmos_preset("ald1106-fit"))`` -> ``NativeSolver()`` or ``NgspiceSolver()``,
``.solve(circuit, gates, inputs)`` -> ``kcl_residuals``, ``edge_currents``, ``power_report``; ``to_spice`` writes
the netlist. Where a config is taken (``build``, ``train_replicas``, ``train_run``, ``ensemble_run``,
``solve_points``, ``write_netlists``), a config file's path does as well as its ``load_config``. A run directory
the command line wrote: ``load_run``, ``evaluate_run``. Library calls print nothing (``progress=True`` asks for a
progress line); every error is a ``MetamaterialError`` that is also the matching built-in (``ValueError``,
``RuntimeError``).

Flow: description (``graph``) -> compile (``circuit``) -> emit (``netlist``) -> solve (``sim``) -> learn
(``learning``) -> report. This file declares the public API by explicit re-exports (``_EXPORTS``: each name and
its module), each loaded from its module on first use: ``import metamaterial`` itself loads nothing, so the command
line starts at once and a Ctrl-C while it loads the rest is answered like any other (``__main__.run``).
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    **dict.fromkeys(("Circuit", "OperatingPoint", "compile_graph", "edge_currents", "kcl_residuals",
                     "without_edges"), "circuit"),
    "Config": "config",
    "load_config": "configfile",
    **dict.fromkeys(("PRESETS", "NmosParams", "PotentiometerParams", "ResistorParams", "nmos_from_card",
                     "nmos_preset"), "devices"),
    **dict.fromkeys(("CheckpointError", "ConfigError", "MetamaterialError", "SimulationError", "ValidationError"),
                    "errors"),
    **dict.fromkeys(("build", "initial_controls", "make_solver", "make_trainer"), "experiment"),
    **dict.fromkeys(("Roles", "assign_roles", "lattice_network", "layered_network", "load_network", "node_id",
                     "random_network"),
                    "graph"),
    **dict.fromkeys(("PowerReport", "power_report", "transistor_power"), "energy"),
    **dict.fromkeys(("SavedRun", "evaluate_run", "load_run"), "rundir"),
    "AbstractSolver": "sim.base",
    "NativeSolver": "sim.native",
    "NgspiceSolver": "sim.ngspice",
    **dict.fromkeys(("EdgeDynamics", "HardwareParams"), "learning.gates"),
    **dict.fromkeys(("CoupledLearning", "mse"), "learning.rules"),
    "Schedule": "learning.schedules",
    **dict.fromkeys(("Evaluation", "Trainer", "TrainParams", "TrainState"), "learning.trainer"),
    "nmos_current": "mos",
    **dict.fromkeys(("SpiceOptions", "to_spice"), "netlist"),
    **dict.fromkeys(("solve_points", "write_netlists"), "points"),
    **dict.fromkeys(("ensemble_run", "train_replicas", "train_run"), "runs"),
    **dict.fromkeys(("Task", "allostery_task", "csv_task", "digits_task", "iris_task", "linear_regression_task",
                     "regression_task", "xor_task"), "tasks"),
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # loaded once
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
