"""metamaterial: simulate learning metamaterials, analog transistor networks that learn by coupled learning.

Flow: description (``graph``) -> compile (``circuit``) -> emit (``netlist``) -> solve (``sim``) -> learn
(``learning``) -> report. This file declares the public API by explicit re-exports.
"""

from .circuit import Circuit, OperatingPoint, compile_graph, edge_currents, kcl_residuals, without_edges
from .config import Config, load_config
from .devices import PRESETS, NmosParams, PotentiometerParams, ResistorParams, nmos_current, nmos_from_card, nmos_preset
from .errors import CheckpointError, ConfigError, MetamaterialError, SimulationError, ValidationError
from .experiment import build, initial_controls, make_solver, make_trainer
from .graph import Roles, assign_roles, lattice_network, load_network, random_network
from .learning.gates import EdgeDynamics, HardwareParams
from .learning.rules import CoupledLearning, mse
from .learning.schedules import Schedule
from .learning.trainer import Trainer, TrainParams, TrainState
from .netlist import SpiceOptions, to_spice
from .points import solve_points, write_netlists
from .runs import ensemble_run, train_replicas, train_run
from .tasks import Task, allostery_task, csv_task, iris_task, linear_regression_task, regression_task, xor_task

__version__ = "0.1.0"

__all__ = [
    "Circuit", "OperatingPoint", "compile_graph", "edge_currents", "kcl_residuals", "without_edges",
    "Config", "load_config",
    "NmosParams", "PotentiometerParams", "ResistorParams", "nmos_current", "nmos_from_card", "nmos_preset", "PRESETS",
    "CheckpointError", "ConfigError", "MetamaterialError", "SimulationError", "ValidationError",
    "build", "initial_controls", "make_solver", "make_trainer", "solve_points", "write_netlists",
    "ensemble_run", "train_replicas", "train_run",
    "Roles", "assign_roles", "lattice_network", "load_network", "random_network",
    "EdgeDynamics", "HardwareParams", "CoupledLearning", "mse", "Schedule", "Trainer", "TrainParams", "TrainState",
    "SpiceOptions", "to_spice",
    "Task", "allostery_task", "csv_task", "iris_task", "linear_regression_task", "regression_task", "xor_task",
]
