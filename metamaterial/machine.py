"""What machine and software a measurement ran on, so that a time read later can be put beside its conditions.

Times in this package (a claim's seconds per epoch, a benchmark's ratio) are measured on shared machines whose speed
drifts from day to day: the same commit's digits epoch took 0.20 s of CPU on one day and 0.33 s on another, with
the same package versions. A time without its machine cannot be compared; ``describe`` is what goes beside it.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

#: the libraries whose versions set the native backend's speed (ngspice's own is added once its library is loaded)
LIBRARIES = ("numpy", "scipy", "numba")


def cpu_model() -> str:
    """The processor's model name as the operating system reports it ("Intel(R) Xeon(R) Processor"), or the
    architecture where it does not say."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> dict:
    """The machine and software now: processor, CPUs, 1-minute load average, Python, the native backend's
    libraries and, when this process has loaded it, ngspice's version (``None`` otherwise: loading the library only
    to name it would cost a second)."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    ngspice = sys.modules.get(f"{__package__}.sim.ngspice")  # imported only where a solver was made
    loaded = ngspice.loaded_version() if ngspice is not None else None
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:  # not on this platform
        load = None
    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "load_1min": load, "python": platform.python_version(),
            **versions, "ngspice": loaded}


def summary(machine: dict) -> str:
    """``describe()``'s record as one phrase: "Intel(R) Xeon(R) Processor, 2 CPUs, load 0.3; Python 3.11.7,
    numpy 2.4.6, scipy 1.17.1, numba 0.68.1, ngspice 46" (what it does not hold is left out)."""
    head = [machine.get("cpu") or "unknown processor"]
    if machine.get("cpus"):
        head.append(f"{machine['cpus']} CPUs")
    if machine.get("load_1min") is not None:
        head.append(f"load {machine['load_1min']:.1f}")
    soft = [f"Python {machine['python']}"] if machine.get("python") else []
    soft += [f"{name} {machine[name]}" for name in (*LIBRARIES, "ngspice") if machine.get(name)]
    return ", ".join(head) + ("; " + ", ".join(soft) if soft else "")
