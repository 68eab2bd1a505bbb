"""Ctrl-C inside a library's callback: held, then answered once the callback has returned.

Python runs a SIGINT handler in the main thread at its next bytecode, and a KeyboardInterrupt raised inside a Python
callback that C code called is printed as "Exception ignored ..." and dropped: the run goes on as if no Ctrl-C had
come. Two libraries we use call back into Python that way: PySpice (ngspice's output, through cffi) and llvmlite
(numba's cache of compiled code, through ctypes, as the kernels load about a second into a command).

``install()`` puts a SIGINT handler in place that raises KeyboardInterrupt at once, unless the signal landed in one
of those libraries' frames: then it holds the interrupt and sends it again ``RESEND_S`` later (until it lands in
other code), and a caller that wraps a library call may raise it as soon as the call returns (``raise_pending``).
This module imports only the standard library.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import threading

#: packages whose Python code C calls back into, where an exception raised is printed and dropped
LIBRARIES = ("PySpice", "llvmlite")
#: delay (s) before a held interrupt is sent again
RESEND_S = 0.05

_state: dict = {"pending": False, "resent": False, "dirs": None, "timer": None}


def install() -> None:
    """Our SIGINT handler, if Python's default one is in place and this is the main thread; otherwise nothing (a
    host program's own handler, or an ignored SIGINT, is left as it is). Idempotent."""
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        _library_dirs()  # found now, not by the handler in the middle of whatever the signal interrupts
        signal.signal(signal.SIGINT, _on_sigint)


def finish() -> None:
    """The command is done (its message printed, its exit code chosen): from here a Ctrl-C is ignored, and a held
    interrupt is not sent again. A resend that came during interpreter shutdown, once Python had put back the
    default handler, killed the process by SIGINT after its message, in place of exit code 130. Only for the
    process's own entry point (``__main__.run``): a host program keeps its Ctrl-C."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _state["pending"] = False
    timer = _state["timer"]
    if timer is not None:
        timer.cancel()
        timer.join()


def raise_pending() -> None:
    """Raise the KeyboardInterrupt held while a library's code ran (call it when the library call has returned)."""
    if _state["pending"]:
        _state["pending"] = False
        raise KeyboardInterrupt


def _library_dirs() -> tuple[str, ...]:
    if _state["dirs"] is None:
        found = (importlib.util.find_spec(name) for name in LIBRARIES)
        _state["dirs"] = tuple(os.path.dirname(spec.origin) + os.sep for spec in found
                               if spec is not None and spec.origin)
    return _state["dirs"]


def _in_library(frame) -> bool:
    dirs = _library_dirs()
    while frame is not None:
        if frame.f_code.co_filename.startswith(dirs):
            return True
        frame = frame.f_back
    return False


def _on_sigint(signum, frame) -> None:
    if _state["resent"]:
        _state["resent"] = False
        if not _state["pending"]:  # raise_pending answered it before this resend arrived
            return
    if _in_library(frame):
        _state["pending"] = True
        timer = _state["timer"] = threading.Timer(RESEND_S, _resend)
        timer.daemon = True
        timer.start()
        return
    _state["pending"] = False
    raise KeyboardInterrupt


def _resend() -> None:
    if _state["pending"]:
        _state["resent"] = True
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # to the main thread: wakes a sleep


__all__ = ["LIBRARIES", "RESEND_S", "install", "raise_pending", "finish"]
