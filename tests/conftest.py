"""Shared fixtures: the shipped configs, the paper's XOR circuit and one ngspice solver per session."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from metamaterial.circuit import compile_graph
from metamaterial.devices import nmos_preset
from metamaterial.graph import Roles, assign_roles, lattice_network

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
XOR_ROLES = Roles(inputs=(15, 13), rails=((5, 0.11), (7, 0.33)), outputs=((10, 0),))


@pytest.fixture(scope="session")
def ngspice():
    from metamaterial.sim.ngspice import NgspiceSolver
    solver = NgspiceSolver()
    yield solver
    solver.close()


def xor_circuit(preset: str = "ald1106-fit"):
    return compile_graph(assign_roles(lattice_network(4, 4), XOR_ROLES), nmos_preset(preset))


def random_gates(n: int, seed: int = 0, low: float = 0.5, high: float = 3.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, n)


@contextmanager
def stopped_after_checkpoint(monkeypatch, writer: str, epoch: int):
    """Within the block, ``experiment.<writer>`` (a checkpoint writer whose second argument is the state) raises
    KeyboardInterrupt right after writing the checkpoint of ``epoch``, as a kill at that moment would."""
    from metamaterial import experiment
    saved = getattr(experiment, writer)

    def write_then_stop(run_dir, state, *args):
        saved(run_dir, state, *args)
        if state.epoch == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(experiment, writer, write_then_stop)
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        monkeypatch.setattr(experiment, writer, saved)
