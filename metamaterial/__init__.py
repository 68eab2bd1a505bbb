"""metamaterial: simulate learning metamaterials, analog transistor networks that learn by coupled learning.

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
    **dict.fromkeys(("Config", "load_config"), "config"),
    **dict.fromkeys(("PRESETS", "NmosParams", "PotentiometerParams", "ResistorParams", "nmos_current",
                     "nmos_from_card", "nmos_preset"), "devices"),
    **dict.fromkeys(("CheckpointError", "ConfigError", "MetamaterialError", "SimulationError", "ValidationError"),
                    "errors"),
    **dict.fromkeys(("build", "initial_controls", "make_solver", "make_trainer"), "experiment"),
    **dict.fromkeys(("Roles", "assign_roles", "lattice_network", "load_network", "random_network"), "graph"),
    **dict.fromkeys(("EdgeDynamics", "HardwareParams"), "learning.gates"),
    **dict.fromkeys(("CoupledLearning", "mse"), "learning.rules"),
    "Schedule": "learning.schedules",
    **dict.fromkeys(("Trainer", "TrainParams", "TrainState"), "learning.trainer"),
    **dict.fromkeys(("SpiceOptions", "to_spice"), "netlist"),
    **dict.fromkeys(("solve_points", "write_netlists"), "points"),
    **dict.fromkeys(("ensemble_run", "train_replicas", "train_run"), "runs"),
    **dict.fromkeys(("Task", "allostery_task", "csv_task", "iris_task", "linear_regression_task", "regression_task",
                     "xor_task"), "tasks"),
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
