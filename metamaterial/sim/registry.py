"""The solver registry: the one place a backend is named.

``SOLVERS`` maps each backend name (``simulator.backend`` in a config, ``--backend`` on the command line) to
where its class lives. A backend's module is imported only when ``make_solver`` makes that backend, so importing
this registry loads neither PySpice nor numba. Config validation, the command line and the experiment wiring
all take their choices from ``backend_names()``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..netlist import SpiceOptions

if TYPE_CHECKING:
    from .base import AbstractSolver

#: The simulator tolerances every backend takes (``simulator.reltol``, ``abstol``, ``vntol``, ``itl1``).
SolverOptions = SpiceOptions

#: backend name -> (module inside ``metamaterial.sim``, class name). ``ngspice`` is the reference.
SOLVERS: dict[str, tuple[str, str]] = {
    "ngspice": ("ngspice", "NgspiceSolver"),
    "native": ("native", "NativeSolver"),
}


def backend_names() -> tuple[str, ...]:
    """The backend names, in registry order (the reference first)."""
    return tuple(SOLVERS)


def backend_refusal(name: str) -> str | None:
    """Why ``name`` is not a backend (to follow the key ``simulator.backend``), or None if it is one."""
    return None if name in SOLVERS else f"unknown backend (got {name!r}); choose one of {', '.join(backend_names())}"


def make_solver(name: str, options: SolverOptions) -> AbstractSolver:
    """A new solver of backend ``name`` (its module imported on first use) that honours the simulator tolerances
    ``options``."""
    if why := backend_refusal(name):
        raise ConfigError(f"simulator.backend: {why}")
    module, cls = SOLVERS[name]
    return getattr(import_module(f"{__package__}.{module}"), cls)(options=options)


__all__ = ["SOLVERS", "SolverOptions", "backend_names", "backend_refusal", "make_solver"]
