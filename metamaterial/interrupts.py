"""Ctrl-C inside a library's callback: held, then answered once the callback has returned.

Python runs a SIGINT handler in the main thread at its next bytecode, and a KeyboardInterrupt raised inside a Python
callback that C code called is printed as "Exception ignored ..." and dropped: the run goes on as if no Ctrl-C had
come. Two libraries we use call back into Python that way: PySpice (ngspice's output, through cffi) and llvmlite
(numba's cache of compiled code, through ctypes, as the kernels load about a second into a command); and so does the
import system (a module lock's weakref callback), which also turns an interrupted import of a compiled module into
an ImportError: an interrupt is held there too (``IMPORT_SYSTEM``).

``install()`` puts a SIGINT handler in place that raises KeyboardInterrupt at once, unless the signal landed in one
of those libraries' frames: then it holds the interrupt and sends it again ``RESEND_S`` later (until it lands in
other code), and a caller that wraps a library call may raise it as soon as the call returns (``raise_pending``).
SIGTERM (what ``kill``, a batch system's time limit or a container's stop send) is taken the same way, so a
terminated command also keeps what it has done and says how to go on; its exit code is 143 (``exit_code``).

Python runs no handler at all while the main thread is inside one long C call that does not call back (one ngspice
operating point of a large network can take a minute). For the command line, ``watch`` answers such a signal from a
thread of its own: after ``STUCK_S`` unanswered it says what the command waits for, and a second one ends the process
at once, keeping what a kill keeps; a SIGTERM ends it so after ``TERM_S`` without waiting for a second. This module
imports only the standard library.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable

#: packages whose Python code C calls back into, where an exception raised is printed and dropped
LIBRARIES = ("PySpice", "llvmlite")
#: the import system's own code: an interrupt raised there is dropped when it lands in a module lock's weakref
#: callback ("Exception ignored in ... _get_module_lock"), and cuts a compiled module's import short into an
#: ImportError with a traceback (numba._devicearray), so it is held until the import is done, as in a library
IMPORT_SYSTEM = ("<frozen importlib.",)
#: delay (s) before a held interrupt is sent again
RESEND_S = 0.05
#: the exit code of an interrupted command (128 + SIGINT)
INTERRUPTED = 130
#: the exit code of a command stopped by SIGTERM (128 + SIGTERM)
TERMINATED = 128 + signal.SIGTERM

#: how long (s) a signal may go unanswered by the main thread before ``watch`` says what the command waits for
STUCK_S = 1.0
#: how long (s) a SIGTERM may go unanswered before ``watch`` ends the process: short of the SIGKILL that follows it
#: (``docker stop`` 10 s, Slurm's KillWait 30 s), long enough for most calls to return into the usual clean-up
TERM_S = 3.0

#: the byte ``watch``'s pipe carries for "a KeyboardInterrupt was raised" (no signal's number: a signal writes its own)
ANSWERED = 0

_state: dict = {"pending": False, "resent": False, "dirs": None, "timer": None, "signal": signal.SIGINT,
                # the write end of the watcher's pipe (None: no watcher), resends not yet seen by it, whether it is done
                "wake": None, "resends": 0, "done": False}


def install() -> None:
    """Our SIGINT and SIGTERM handler, for each signal whose handler is Python's default and in the main thread;
    otherwise nothing (a host program's own handler, or an ignored signal, is left as it is). Idempotent."""
    if threading.current_thread() is not threading.main_thread():
        return
    _library_dirs()  # found now, not by the handler in the middle of whatever the signal interrupts
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigint)


def exit_code() -> int:
    """The exit code of a command stopped by a KeyboardInterrupt: 143 when the last signal taken was SIGTERM, else
    130."""
    return TERMINATED if _state["signal"] == signal.SIGTERM else INTERRUPTED


def signal_name() -> str:
    """How the last interrupt came: ``interrupted`` (Ctrl-C, SIGINT) or ``terminated (SIGTERM)``."""
    return "terminated (SIGTERM)" if _state["signal"] == signal.SIGTERM else "interrupted"


def finish(code: int) -> None:
    """The command is done with exit code ``code`` (its message printed): from here a Ctrl-C is ignored and a held
    interrupt is not sent again. Only for the process's own entry point (``__main__.run``): a host program keeps
    its Ctrl-C.

    When the command was interrupted (130), CPython's flag that a KeyboardInterrupt went unhandled is cleared: a
    Ctrl-C that lands while a library runs Python code through the C API (numba's kernels load about a second into
    a command) sets it as the interrupt passes through that call, although the command then answers it, and at exit
    CPython kills the process by SIGINT to report that (-2 after our one line, in place of 130: 4 to 5 of 30-60
    Ctrl-Cs at 1.05-1.55 s in a measurement, 2026-12-02). The flag is a private C global in CPython 3.10 and 3.11;
    where it is not found nothing is changed."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if signal.getsignal(signal.SIGTERM) is _on_sigint:  # a SIGTERM from here ends the process at once
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _state["pending"] = False
    _state["done"] = True
    timer = _state["timer"]
    if timer is not None:
        timer.cancel()
        timer.join()
    if code in (INTERRUPTED, TERMINATED):
        try:
            ctypes.c_int.in_dll(ctypes.pythonapi, "_Py_UnhandledKeyboardInterrupt").value = 0
        except (ValueError, AttributeError, OSError):  # another Python: the symbol is not there
            pass


def raise_pending() -> None:
    """Raise the KeyboardInterrupt held while a library's code ran (call it when the library call has returned)."""
    if _state["pending"]:
        _state["pending"] = False
        _answered()
        raise KeyboardInterrupt


def _library_dirs() -> tuple[str, ...]:
    if _state["dirs"] is None:
        found = (importlib.util.find_spec(name) for name in LIBRARIES)
        _state["dirs"] = tuple(os.path.dirname(spec.origin) + os.sep for spec in found
                               if spec is not None and spec.origin) + IMPORT_SYSTEM
    return _state["dirs"]


def _in_library(frame) -> bool:
    dirs = _library_dirs()
    while frame is not None:
        if frame.f_code.co_filename.startswith(dirs):
            return True
        frame = frame.f_back
    return False


def _on_sigint(signum, frame) -> None:
    """SIGINT's and SIGTERM's handler (a held interrupt is sent again as the signal that began it)."""
    if _state["resent"]:
        _state["resent"] = False
        if not _state["pending"]:  # raise_pending answered it before this resend arrived
            return
    else:
        _state["signal"] = signum
    if _in_library(frame):
        _state["pending"] = True
        timer = _state["timer"] = threading.Timer(RESEND_S, _resend)
        timer.daemon = True
        timer.start()
        return
    _state["pending"] = False
    _answered()
    raise KeyboardInterrupt


def _answered() -> None:
    """Tell the watcher (``watch``) that a KeyboardInterrupt is raised, in its pipe after the signal's own byte (the
    C handler writes that before Python runs ours): the main thread usually answers before the watcher reads the
    signal, so only the order in the pipe tells an answered signal from a stuck one."""
    if _state["wake"] is not None:
        with contextlib.suppress(OSError):  # a full pipe drops it: the watcher may then say it waits, no more
            os.write(_state["wake"], bytes([ANSWERED]))


def _resend() -> None:
    if _state["pending"]:
        _state["resent"] = True
        _state["resends"] += 1  # counted before it is sent: the watcher takes its byte for ours, not the user's
        # the signal that began it, to the main thread (wakes a sleep): SIGINT may be ignored (a job started with &
        # by a script), and a SIGTERM re-sent as it would then never arrive
        signal.pthread_kill(threading.main_thread().ident, _state["signal"])


def watch(kept: Callable[[], str]) -> None:
    """For the command line (a library prints nothing): answer a SIGINT or SIGTERM that the main thread cannot take
    because it is inside one long C call (Python runs its handler only when the call returns or calls back). After
    ``STUCK_S`` without a KeyboardInterrupt raised, a SIGINT gets one line saying that the command stops when the
    call returns and that Ctrl-C again stops it at once; a second signal then ends the process at once with
    ``kept()``'s words (what a kill would keep: files are replaced whole, so the last checkpoint stands) and
    ``exit_code``. A SIGTERM unanswered after ``TERM_S`` ends the process so without a second: it is sent once, by
    ``kill``, a batch system's time limit or a container's stop, the last two sending SIGKILL some seconds later
    (Slurm's KillWait 30 s, ``docker stop`` 10 s), so waiting out a call of minutes would end in a kill without a
    word. A signal held while the main thread runs a library's Python code (``install``) is not unanswered: its
    re-sends show that the main thread runs, and it raises it once out of the library.

    The main thread's C-level handler writes every signal to a pipe (``signal.set_wakeup_fd``) that a daemon thread
    reads; the GIL is free while the main thread is in the call (cffi releases it around ngspice's). Once per
    process, in the main thread, and only where no one else set a wakeup fd (an asyncio loop's)."""
    if _state["wake"] is not None or threading.current_thread() is not threading.main_thread():
        return
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        previous = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    except ValueError:  # not the main interpreter
        previous = -2
    if previous != -1:
        if previous != -2:
            signal.set_wakeup_fd(previous)
        os.close(r), os.close(w)
        return
    _state["wake"] = w
    threading.Thread(target=_watch, args=(r, kept), name="metamaterial-signal-watch", daemon=True).start()


def _watch(r: int, kept: Callable[[], str]) -> None:
    since, first, told = None, 0, False  # the signal unanswered: when, which, whether said
    while True:
        ready, _, _ = select.select([r], [], [], 0.1 if since is not None else None)
        if _state["done"]:
            return
        again = False
        for byte in os.read(r, 64) if ready else b"":  # in the order written: a signal, then its answer
            if byte == ANSWERED:  # the main thread took every signal before it
                since, told, again = None, False, False
            elif byte not in (signal.SIGINT, signal.SIGTERM):
                continue
            elif _state["resends"] > 0:  # a held interrupt sent again, not the user: the main thread took the last
                _state["resends"] -= 1  # one in a library's Python frame, so it runs Python, and will raise it
                since = since if since is None else time.monotonic()
            elif since is None:
                since, first = time.monotonic(), byte
            else:
                again = True
        waited = -1.0 if since is None else time.monotonic() - since
        stuck = waited >= STUCK_S
        if _state["done"]:
            return
        if again or (first == signal.SIGTERM and waited >= TERM_S):  # a SIGTERM is not asked twice: a kill follows
            _state["signal"] = first
            how = "again" if again else "inside a long call"
            try:
                print(f"metamaterial: {signal_name()} {how}; stopped at once: {kept()}", file=sys.stderr, flush=True)
            finally:
                os._exit(exit_code())
        if stuck and not told and first == signal.SIGINT:
            _state["signal"] = first  # as the main thread's handler will set it, when it runs
            print(f"metamaterial: {signal_name()}; stopping when the solver's current call returns (one ngspice "
                  "operating point of a large network can take minutes); Ctrl-C again stops at once, as a kill would",
                  file=sys.stderr, flush=True)
            told = True


__all__ = ["LIBRARIES", "RESEND_S", "INTERRUPTED", "TERMINATED", "STUCK_S", "TERM_S", "install", "raise_pending",
           "finish", "exit_code", "signal_name", "watch"]
