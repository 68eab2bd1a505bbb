"""Ctrl-C on the ngspice backend: a SIGINT that lands in PySpice's cffi output callback (where an exception is
printed as "Exception ignored from cffi callback" and dropped) still stops the caller, right after the library
call. The end-to-end case (a real ``metamaterial train`` interrupted and resumed) is in tests/test_cli.py."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from conftest import random_gates, xor_circuit
from metamaterial.sim.ngspice import NgspiceSolver

SOLVES = 50  # far more than the one that is interrupted
INPUTS = np.array([[0.45, 0.0]])


def test_ctrl_c_inside_pyspice_output_callback_reaches_the_caller(monkeypatch):
    solver = NgspiceSolver(sweep=False)  # every op prints lines, each through PySpice's output callback
    ng = solver._ng
    forward, sent = ng.send_char, []

    def send_char(message, ngspice_id):  # called from PySpice's _send_char, inside the cffi callback
        if not sent:
            sent.append(message)
            os.kill(os.getpid(), signal.SIGINT)  # its handler runs here, in the callback
        return forward(message, ngspice_id)

    c, gates = xor_circuit(), random_gates(32)
    solver.solve(c, gates, INPUTS)  # loaded before the callback is watched
    monkeypatch.setattr(ng, "send_char", send_char)
    done = 0
    with pytest.raises(KeyboardInterrupt):
        for _ in range(SOLVES):
            solver.solve(c, gates, INPUTS)
            done += 1
    assert sent and done == 0  # the solve whose output carried the signal raised it
    monkeypatch.undo()
    v = solver.solve(c, gates, INPUTS).voltages  # the engine is still usable
    assert np.all(np.isfinite(v))
