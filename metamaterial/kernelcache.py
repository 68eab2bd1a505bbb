"""numba's on-disk cache of the compiled kernels, kept in step with their sources.

numba files a cached function under its own source file's time stamp only. The compiled training loop
(``sim/native_loop.py``) inlines functions of ``step`` and ``sim/native_kernels``, so after those modules change
(an edit, a ``git pull``) numba would load the loop's old machine code: the old physics, silently. ``refresh()``
hashes every module that holds compiled code and, when the hash differs from the one recorded beside the cache,
deletes the cached code of all of them, so that numba compiles afresh. Each of those modules calls it before its
first compiled function can load (once per process; cheap).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import os
from pathlib import Path

from . import interrupts

PACKAGE = Path(__file__).resolve().parent
#: the modules that hold numba-compiled code kept in numba's cache (``cache=True``), relative to the package
SOURCES = ("step.py", "sim/native_kernels.py", "sim/native_loop.py", "sim/ngspice_feed.py")
#: where the hash of ``SOURCES`` the cache was compiled from is recorded, relative to the package
STAMP = "__pycache__/kernels.sha256"

_refreshed = False
#: where ``announce`` says what is being compiled (INFO: silent unless the caller's logging shows it; the command
#: line does)
LOG = logging.getLogger("metamaterial.kernels")
_announced: set = set()
#: what ``announce`` said this process compiles (a timing that includes it is not the solver's: the command line's
#: summary says so)
compiled: list[str] = []


def refresh() -> None:
    """``drop_stale`` of this package, once per process; and, as numba is about to load the cached code through
    llvmlite's callbacks, ``interrupts.install()`` (a Ctrl-C landing in them is held, not dropped)."""
    global _refreshed
    if not _refreshed:
        _refreshed = True
        drop_stale(PACKAGE)
        interrupts.install()


def drop_stale(package: Path) -> bool:
    """Delete the numba cache files (``__pycache__/<module>.*.nbi`` / ``.nbc``) of the modules ``SOURCES`` under
    ``package`` when their sources' hash differs from the recorded one, and record the new hash; True if it
    deleted. Where the package is not writable (an installed copy: numba then caches elsewhere and its sources do
    not change piecemeal) it leaves everything as it is."""
    digest = hashlib.sha256(b"".join((package / s).read_bytes() for s in SOURCES)).hexdigest()
    stamp = package / STAMP
    with contextlib.suppress(OSError):
        if stamp.read_text() == digest:
            return False
    try:
        for source in SOURCES:
            path = package / source
            for cached in (path.parent / "__pycache__").glob(f"{path.stem}.*.nb[ic]"):
                cached.unlink(missing_ok=True)
        stamp.parent.mkdir(exist_ok=True)
        tmp = stamp.with_name(f"{stamp.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(digest)
            os.replace(tmp, stamp)  # processes starting together agree on the file
        except BaseException:  # a full disk, Ctrl-C: no half-written stamp left beside the package
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise
    except OSError:
        return False
    return True


def announce(kernel, what: str) -> None:
    """Log at INFO on ``LOG`` that ``kernel`` (a numba function) is about to be compiled, ``what`` naming it for a
    reader: neither this process nor numba's cache beside its source holds its machine code, so its first call
    waits 20 s to over a minute. Once per kernel and process (later calls return at once)."""
    if kernel.py_func in _announced:
        return
    _announced.add(kernel.py_func)
    if kernel.signatures:
        return  # loaded already
    from numba.core.caching import FunctionCache  # noqa: PLC0415 (numba's import takes a second; --help needs none)

    try:  # where numba caches it: beside its source, or under NUMBA_CACHE_DIR, or a user-wide folder
        folder = Path(FunctionCache(kernel.py_func).cache_path)
    except RuntimeError:  # numba cannot cache it anywhere: it compiles every time, as it says itself
        return
    if any(folder.glob(f"{Path(inspect.getfile(kernel.py_func)).stem}.{kernel.py_func.__qualname__}-*.nbi")):
        return
    compiled.append(what)
    LOG.info("compiling %s (numba: once after an install or a change of the package's sources; 20 s to over a "
             "minute)", what)
