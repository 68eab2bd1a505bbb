"""A Ctrl-C that lands in a library's callback (``metamaterial.interrupts``), where an exception is printed as
"Exception ignored ..." and dropped: held while the callback runs, then answered, never lost. First on ngspice (a
SIGINT in PySpice's cffi output callback stops the caller right after the library call), then the mechanism with
real signals sent to this process and a "library" module written to a temporary folder (llvmlite's ctypes
callbacks, as numba loads its cached kernels, are held the same way). The end-to-end case (a real ``metamaterial
train`` interrupted and resumed) is in tests/test_cli.py."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, random_gates, xor_circuit
from metamaterial import interrupts
from metamaterial.sim.ngspice import NgspiceSolver

SOLVES = 50  # far more than the one that is interrupted
INPUTS = np.array([[0.45, 0.0]])
NO_HANG_S = 5  # only keeps a lost interrupt from hanging the suite; the resend comes after interrupts.RESEND_S


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


CALLBACK = """import os, signal

def callback():
    os.kill(os.getpid(), signal.SIGINT)  # lands in this frame: the handler runs at the next bytecode
    total = 0
    for k in range(10000):
        total += k
    return "returned"
"""


@pytest.fixture
def library(tmp_path, monkeypatch):
    """A module in a folder that ``interrupts`` treats as a library's, with our handler installed."""
    folder = tmp_path / "somelib"
    folder.mkdir()
    (folder / "callbacks.py").write_text(CALLBACK)
    monkeypatch.setitem(interrupts._state, "dirs", (str(folder) + os.sep,))
    monkeypatch.setitem(interrupts._state, "pending", False)
    monkeypatch.setitem(interrupts._state, "resent", False)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupts.install()
    assert signal.getsignal(signal.SIGINT) is interrupts._on_sigint
    spec = importlib.util.spec_from_file_location("somelib_callbacks", folder / "callbacks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_in_a_library_frame_lets_it_return_then_arrives(library):
    assert library.callback() == "returned"  # not cut short (where C called it, it would have been dropped)
    with pytest.raises(KeyboardInterrupt):
        time.sleep(NO_HANG_S)  # sent again, and this time it lands outside the library


def test_a_held_ctrl_c_raised_as_the_library_call_returns_is_answered_once(library):
    assert library.callback() == "returned"
    with pytest.raises(KeyboardInterrupt):
        interrupts.raise_pending()
    time.sleep(5 * interrupts.RESEND_S)  # the resend that was already on its way is not a second Ctrl-C
    interrupts.raise_pending()  # nothing left


def test_a_held_ctrl_c_is_not_sent_again_once_the_command_is_done(library, monkeypatch):
    """The resend of a held Ctrl-C could come after the command had answered it and returned 130, during the
    interpreter's shutdown, where Python's default handler killed the process by SIGINT (exit -2, 2 of ~40 Ctrl-Cs
    in an audit). ``finish`` cancels it and ignores any later Ctrl-C."""
    monkeypatch.setattr(interrupts, "RESEND_S", 0.5)
    assert library.callback() == "returned"  # held, its resend due in 0.5 s
    timer = interrupts._state["timer"]
    with pytest.raises(KeyboardInterrupt):
        interrupts.raise_pending()  # answered as the command answers it: message, exit code 130
    interrupts.finish(0)
    assert not timer.is_alive() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    os.kill(os.getpid(), signal.SIGINT)  # a Ctrl-C during shutdown: ignored
    time.sleep(0.2)


def test_a_ctrl_c_outside_the_libraries_raises_at_once(library):
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(NO_HANG_S)


def test_a_handler_of_the_host_program_is_left_alone():
    def host(signum, frame):
        pass

    previous = signal.signal(signal.SIGINT, host)
    try:
        interrupts.install()
        assert signal.getsignal(signal.SIGINT) is host
    finally:
        signal.signal(signal.SIGINT, previous)


FLAGGED_EXIT = """import ctypes, sys
from metamaterial import interrupts
# as a Ctrl-C leaves it when it passes through a library's call into Python code, the command answering it later
ctypes.c_int.in_dll(ctypes.pythonapi, "_Py_UnhandledKeyboardInterrupt").value = 1
if sys.argv[1] == "finish":
    interrupts.finish(interrupts.INTERRUPTED)
sys.exit(interrupts.INTERRUPTED)
"""


def test_an_answered_ctrl_c_exits_130_not_by_the_signal(tmp_path):
    """CPython kills itself by SIGINT at exit when its unhandled-KeyboardInterrupt flag is set, as a Ctrl-C landing
    in numba's kernel load sets it although the command answered it (-2 in 4 of 30 Ctrl-Cs at 1.05-1.55 s):
    ``finish`` clears it."""
    import ctypes  # noqa: PLC0415

    try:
        ctypes.c_int.in_dll(ctypes.pythonapi, "_Py_UnhandledKeyboardInterrupt")
    except ValueError:
        pytest.skip("this Python keeps the flag elsewhere")
    (tmp_path / "flagged.py").write_text(FLAGGED_EXIT)  # run with -m, as the command is: CPython checks the flag
    codes = [subprocess.run([sys.executable, "-m", "flagged", how], cwd=tmp_path, timeout=60,  # after -m only
                            env={**os.environ, "PYTHONPATH": str(ROOT)}).returncode for how in ("exit", "finish")]
    assert codes == [-signal.SIGINT, 130]


STUCK = """import sys, numba, numpy as np
from metamaterial import interrupts

@numba.njit(nogil=True, cache=False)
def spin(n):  # one long call that neither returns nor calls back, as one ngspice operating point of a large network
    x = np.uint64(88172645463325252)
    for _ in range(n):  # xorshift: each step needs the last, so no compiler folds the loop away
        x ^= x << np.uint64(13)
        x ^= x >> np.uint64(7)
        x ^= x << np.uint64(17)
    return x

spin(10)  # compiled before the call that is watched
interrupts.install()
interrupts.watch(lambda: "what the command keeps")
print("ready", flush=True)
spin(10**13)  # hours: only a signal ends it
print("returned", flush=True)
"""
STUCK_TIMEOUT_S = 60  # only keeps a broken watcher from hanging the suite


def _read_line(proc: subprocess.Popen) -> str:
    line = proc.stderr.readline()
    assert line, f"the process ended (exit {proc.wait(STUCK_TIMEOUT_S)}) before saying anything more"
    return line


@contextlib.contextmanager
def _child(tmp_path, script: str, **modules: str):
    """A Python process running ``script`` (``modules``: more modules beside it, by name), once it has printed
    "ready"; killed at the end if it still runs."""
    (tmp_path / "child.py").write_text(script)
    for name, text in modules.items():
        (tmp_path / f"{name}.py").write_text(text)
    proc = subprocess.Popen([sys.executable, str(tmp_path / "child.py")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"})
    try:
        assert proc.stdout.readline() == "ready\n"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(STUCK_TIMEOUT_S)
        proc.stdout.close(), proc.stderr.close()


@contextlib.contextmanager
def _stuck(tmp_path):
    with _child(tmp_path, STUCK) as proc:
        time.sleep(0.5)  # lets print("ready") return into the call: a signal landing in print is taken there, at once
        yield proc


def test_a_ctrl_c_inside_a_long_call_is_answered_at_once_and_a_second_stops_it(tmp_path):
    """Python runs no handler while the main thread is in one long C call: the watching thread says, after
    ``STUCK_S``, that the command stops when the call returns; Ctrl-C again ends the process at once with what it
    keeps, exit code 130."""
    with _stuck(tmp_path) as proc:
        proc.send_signal(signal.SIGINT)
        assert _read_line(proc) == (
            "metamaterial: interrupted; stopping when the solver's current call returns (one ngspice operating point "
            "of a large network can take minutes); Ctrl-C again stops at once, as a kill would\n")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(STUCK_TIMEOUT_S) == 130
        assert proc.stderr.read() == "metamaterial: interrupted again; stopped at once: what the command keeps\n"
        assert proc.stdout.read() == ""  # the call never returned


def test_a_sigterm_inside_a_long_call_stops_it_after_term_s_without_a_second(tmp_path):
    """A SIGTERM comes once (a batch system's time limit, ``docker stop``: a SIGKILL follows it), so one that the
    main thread cannot take within ``TERM_S`` ends the process then, with what it keeps and exit code 143, rather
    than waiting out the call into a kill that says nothing."""
    with _stuck(tmp_path) as proc:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(STUCK_TIMEOUT_S) == 143
        assert proc.stderr.read() == ("metamaterial: terminated (SIGTERM) inside a long call; stopped at once: what "
                                      "the command keeps\n")
        assert proc.stdout.read() == ""  # the call never returned


TAKEN = """import time
from metamaterial import interrupts

interrupts.install()
interrupts.watch(lambda: "what the command keeps")
end = None
while True:
    try:  # Python code: the handler runs at once, usually before the watching thread reads the signal
        if end is None:
            print("ready", flush=True)  # inside the try: the signal may land before print returns
        while end is None or time.monotonic() < end:
            sum(range(100))
        break
    except KeyboardInterrupt:
        print("taken", flush=True)
        end = end or time.monotonic() + 2 * interrupts.STUCK_S  # a cleanup longer than STUCK_S (a sweep's cluster)
print("done", flush=True)
"""


def test_a_signal_the_main_thread_takes_is_not_called_stuck_and_a_second_is_taken_too(tmp_path):
    """A signal answered by a KeyboardInterrupt before the watching thread reads it draws no "stopping when the
    solver's current call returns" line, however long the command takes to stop; and the same signal again, while
    the command cleans up, is the handler's to answer, not a stop at once."""
    with _child(tmp_path, TAKEN) as proc:
        proc.send_signal(signal.SIGINT)
        assert proc.stdout.readline() == "taken\n"
        time.sleep(interrupts.STUCK_S / 2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=STUCK_TIMEOUT_S)
        assert (proc.returncode, out, err) == (0, "taken\ndone\n", "")


HELD = """import signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a job a script started with &: SIGINT ignored
from metamaterial import interrupts

interrupts.install()
interrupts.watch(lambda: "what the command keeps")
try:
    import slow  # Python code in the import system's frames, for longer than TERM_S: a signal there is held
    while True:
        pass
except KeyboardInterrupt:
    print("taken", "after the import" if getattr(sys.modules.get("slow"), "finished", False) else "in the import",
          flush=True)
    sys.exit(interrupts.exit_code())
"""
SLOW = """import time
print("ready", flush=True)
end = time.monotonic() + {seconds}
while time.monotonic() < end:
    sum(range(100))
finished = True
"""


def test_a_sigterm_held_in_an_import_is_raised_after_it_not_lost_nor_taken_for_a_stuck_call(tmp_path):
    """A SIGTERM that lands while the main thread runs an import is held and sent again until it lands outside:
    it was sent again as SIGINT, which a job started with & ignores, so it was lost and the command ran on; and the
    watching thread took the wait for a stuck call and ended the process mid-import. It is raised once the import
    is done."""
    with _child(tmp_path, HELD, slow=SLOW.format(seconds=interrupts.TERM_S + 1.0)) as proc:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=STUCK_TIMEOUT_S)
        assert (proc.returncode, out, err) == (143, "taken after the import\n", "")


def test_the_line_of_a_run_stopped_before_its_first_checkpoint_says_to_remove_the_config_it_left(tmp_path):
    """Stopped at once by the watching thread (no clean-up), a run that had written its config.yaml but no checkpoint
    was told to "run the same command again", which refuses a folder holding a config.yaml: it says to remove it."""
    import argparse

    from metamaterial.cli import _resume_hint

    args = argparse.Namespace(command="train", run_dir=tmp_path / "run")
    assert _resume_hint(args) == f"nothing was kept in {tmp_path / 'run'}; run the same command again to start over"
    (tmp_path / "run").mkdir()
    assert _resume_hint(args) == f"{tmp_path / 'run'} holds no checkpoint yet; run the same command again to start over"
    (tmp_path / "run" / "config.yaml").write_text("name: x\n")
    assert _resume_hint(args) == (f"{tmp_path / 'run'} holds no checkpoint yet, only the run's config.yaml; remove it "
                                  f"(rm {tmp_path / 'run' / 'config.yaml'}), then run the same command again to start "
                                  "over")
