"""The solver registry: the one place a backend is named.

``SOLVERS`` maps each backend name (``simulator.backend`` in a config, ``--backend`` on the command line) to
where its class lives. A backend's module is imported only when ``make_solver`` makes that backend, so importing
this registry loads neither PySpice nor numba. Config validation, the command line and the experiment wiring
all take their choices from ``backend_names()``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from ..errors import ConfigError, shown
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


#: backend name -> (bytes, bytes per edge): the peak resident memory of a process that solves one copy of a
#: network is at least about the first plus the second times its edges. A line fitted on 2026-12-02 by ``python
#: scripts/bench_memory.py`` (``metamaterial netlist`` of the XOR config on tori, one free solve and two netlists
#: written): ngspice 412-1,071 MB at 20,000-80,000 edges, on a line of 193 MB + 11.0 kB per edge. Native, measured
#: again on 2026-12-04: 250, 362, 476, 691 and 1,505 MB at 39,762, 80,000, 180,000, 320,000 and 640,712 edges. Its
#: peaks bend upward with the sparse LU's fill, so the line fitted through them (121 MB + 2.09 kB per edge, this
#: table's figure until then) stood 15 % above the peak at 320,000 edges: not a floor. The native line is the one
#: with the fit's fixed part under every peak (10 MB under at 320,000 edges); the curve only steepens past the largest.
#: A batch of B points holds B copies (ngspice solves a batch in chunks of ``NETLIST_EDGES`` transistors); this
#: counts one: a floor.
MEMORY: dict[str, tuple[float, float]] = {
    "ngspice": (193e6, 11.0e3),
    "native": (121e6, 1.75e3),
}


def memory_need(name: str, n_edges: int) -> float:
    """Bytes that backend ``name`` needs at least to solve a network of ``n_edges`` edges (``MEMORY``)."""
    fixed, per_edge = MEMORY[name]
    return fixed + per_edge * n_edges


_MEMINFO = "/proc/meminfo"
#: (limit, usage) files of this process's memory control group: cgroup v2, then v1
_CGROUP_FILES = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                 ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))


def _read_number(path: str) -> float | None:
    try:
        with open(path, encoding="ascii") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):  # absent, unreadable, or "max" (no limit)
        return None


def available_memory() -> float | None:
    """Bytes this machine can give a new process now: Linux's MemAvailable, or less where a memory control group
    (a container's limit) leaves less; None where neither is known."""
    free = None
    try:
        with open(_MEMINFO, encoding="ascii") as f:
            free = next((float(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")), None)
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in _CGROUP_FILES:
        limit, usage = _read_number(limit_file), _read_number(usage_file)
        if limit is not None and usage is not None and limit < 2.0**60:  # v1 writes ~2^63 for "no limit"
            free = limit - usage if free is None else min(free, limit - usage)
            break
    return free


def memory_refusal(name: str, n_edges: int, available: float | None = None) -> str | None:
    """Why a network of ``n_edges`` edges cannot be solved on backend ``name`` here (it needs more memory than
    ``available``, by default ``available_memory()``), or None when it fits or the memory is not known. The reason
    only: what to change is the caller's to say (``experiment.check_memory`` names the config keys and a backend
    that fits, ``memory_need``)."""
    available = available_memory() if available is None else available
    need = memory_need(name, n_edges)
    if available is None or need <= available:
        return None
    return (f"{n_edges:,} edges need at least {need / 1e9:.1f} GB on the {name} backend "
            f"({MEMORY[name][1] / 1e3:.3g} kB per edge), more than the {available / 1e9:.1f} GB this machine has free")


def backend_names() -> tuple[str, ...]:
    """The backend names, in registry order (the reference first)."""
    return tuple(SOLVERS)


def backend_refusal(name: str) -> str | None:
    """Why ``name`` is not a backend (to follow the key ``simulator.backend``), or None if it is one."""
    if name in SOLVERS:
        return None
    return f"unknown backend (got {shown(name)}); choose one of {', '.join(backend_names())}"


def make_solver(name: str, options: SolverOptions) -> AbstractSolver:
    """A new solver of backend ``name`` (its module imported on first use) that honours the simulator tolerances
    ``options``."""
    if why := backend_refusal(name):
        raise ConfigError(f"simulator.backend: {why}")
    module, cls = SOLVERS[name]
    return getattr(import_module(f"{__package__}.{module}"), cls)(options=options)


__all__ = ["SOLVERS", "MEMORY", "SolverOptions", "backend_names", "backend_refusal", "make_solver", "memory_need",
           "available_memory", "memory_refusal"]
