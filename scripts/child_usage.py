"""Peak resident memory and wall time of one command run in a process of its own, for the benchmark scripts."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path


def peak_and_wall(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(peak resident bytes, wall s) of ``cmd`` run in ``cwd``: the largest of the process and the children it
    waited for (``os.wait4``). A command that fails stops the benchmark with its last error lines. Its messages go
    to a file, not a pipe, so that a talkative command cannot block on a full pipe while it is waited for."""
    with tempfile.TemporaryFile() as errors:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed:\n{errors.read().decode()[-2000:]}")
    return usage.ru_maxrss * 1024.0, wall


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process so far (all its threads), from ``/proc``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
