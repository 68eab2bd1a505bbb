"""Shared fixtures: the shipped configs, the paper's XOR circuit and one ngspice solver per session.

Tests that need the real simulator carry the ``ngspice`` marker. It is applied at collection to every test
that uses a fixture creating an ngspice solver, whose module imports ``metamaterial.sim.ngspice``, whose own
source names the ngspice backend, or that is listed in ``NGSPICE_INDIRECT`` (it reaches ngspice in a child
process or deep inside a claim). When libngspice or the ``ngspice`` program is missing these tests skip with
one line saying what to install, and any other test that reaches ngspice's library in this process skips with
the same line (the summary then names it, so its marking can be fixed). ``--require-ngspice``, or the environment
variable ``CI=true``, turns that skip into a failure, so a CI run can never pass by skipping them.
"""

from __future__ import annotations

import ctypes
import inspect
import os
import re
import shutil
import signal
import subprocess
import sys
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

INSTALL_HINT = ("install it with `apt-get install ngspice libngspice0-dev` (Debian 12: from bookworm-backports, "
                "`apt-get install -t bookworm-backports ngspice libngspice0-dev`) or run `make setup`")
MARKER = "ngspice"
#: source text that means a test drives ngspice itself: the backend module, its solver, the backend by name
NGSPICE_USE = re.compile(r"metamaterial\.sim\.ngspice|NgspiceSolver|run_batch_file|backend\s*=\s*['\"]ngspice['\"]"
                         r"|['\"]ngspice['\"]\s*[,)\]]")
#: tests that reach ngspice indirectly: in a child process (the command line on a shipped config, whose backend is
#: ngspice) or inside a claim (its ngspice cross-check): test module -> test names, "*" for all of the module's
NGSPICE_INDIRECT = {
    "test_cli.py": {"*"},
    "test_costs.py": {"*"},
    "test_learning_hardware.py": {"*"},
    "test_reproduce.py": {"test_quick_reproduction_writes_a_complete_report"},
    "test_claims_desync_imperfection.py": {"test_desync_quick", "test_imperfection_quick"},
    "test_claims_modes_damage.py": {"test_modes_claim_quick", "test_damage_claim_quick"},
    "test_sweep_cluster.py": {"*"},
}


def pytest_configure(config: pytest.Config) -> None:
    # A launcher without job control (a shell's background job, some CI runners) starts the suite with SIGINT
    # ignored, and every child inherits that: the tests of Ctrl-C would see nothing arrive. Restore Python's own
    # handler here, so this process and its children receive SIGINT as from a terminal.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--require-ngspice", action="store_true", default=False,
                     help="fail, rather than skip, the tests marked 'ngspice' when ngspice is missing "
                          "(implied by the environment variable CI=true)")


def _required(config: pytest.Config) -> bool:
    return config.getoption("--require-ngspice") or os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _ngspice_missing() -> str | None:
    """What is missing for ngspice to run here (None: nothing). The library is looked up as PySpice does
    (``NGSPICE_LIBRARY_PATH``, else ``libngspice.so``)."""
    default = "libngspice{}.dylib" if sys.platform == "darwin" else "libngspice{}.so"
    library = os.environ.get("NGSPICE_LIBRARY_PATH", default).format("")
    try:
        ctypes.CDLL(library)
    except OSError:
        return f"libngspice ({library}) cannot be loaded"
    if shutil.which("ngspice") is None:
        return "the 'ngspice' program is not on PATH"
    return None


_MISSING: list[str | None] = []  # filled once per session


def _missing_reason() -> str | None:
    if not _MISSING:
        missing = _ngspice_missing()
        _MISSING.append(None if missing is None else f"ngspice is missing ({missing}): {INSTALL_HINT}")
    return _MISSING[0]


def _skip_or_fail(config: pytest.Config) -> None:
    """Skip (or with --require-ngspice / CI=true, fail) the current test when ngspice is missing."""
    reason = _missing_reason()
    if reason is None:
        return
    if _required(config):
        pytest.fail(f"{reason} [--require-ngspice or CI=true]", pytrace=False)
    pytest.skip(reason)


def _needs_ngspice(item: pytest.Item) -> bool:
    module = getattr(item, "module", None)
    if module is None:
        return False
    names = NGSPICE_INDIRECT.get(Path(str(item.fspath)).name, set())
    if "*" in names or getattr(item, "originalname", item.name) in names:
        return True
    if any(getattr(v, "__name__", "") == "metamaterial.sim.ngspice" or getattr(v, "__module__", "") ==
           "metamaterial.sim.ngspice" for v in vars(module).values()):
        return True
    if MARKER in getattr(item, "fixturenames", ()):  # the session solver below
        return True
    funcs = [getattr(item, "obj", None)]
    for name, defs in getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {}).items():
        if name != "_ngspice_library_guard":  # the project's fixtures, not pytest's nor the guard below
            funcs += [d.func for d in defs if getattr(d, "baseid", None) != ""]
    for f in funcs:
        try:
            if f is not None and NGSPICE_USE.search(inspect.getsource(f)):
                return True
        except (OSError, TypeError):
            continue
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    modules = {}
    for item in items:
        if _needs_ngspice(item):
            item.add_marker(pytest.mark.ngspice)
        if getattr(item, "module", None) is not None:
            modules[Path(str(item.fspath)).name] = item.module
    stale = [f"{m}::{n}" for m, names in NGSPICE_INDIRECT.items() if m in modules
             for n in sorted(names - {"*"}) if not hasattr(modules[m], n)]
    if stale:
        raise pytest.UsageError(f"tests/conftest.py: NGSPICE_INDIRECT names tests that do not exist: {stale}")


def pytest_report_header(config: pytest.Config) -> str:
    reason = _missing_reason()
    if reason is None:
        return "ngspice: available"
    return f"{reason} -- tests marked 'ngspice' will {'FAIL' if _required(config) else 'skip'}"


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker(MARKER) is not None:
        _skip_or_fail(item.config)


_UNMARKED: list[str] = []


@pytest.fixture(autouse=True)
def _ngspice_library_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """When ngspice is missing (and not required), a test without the marker that still loads ngspice's library
    skips with the same line instead of failing deep inside the solver; the summary names it."""
    if _missing_reason() is None or _required(request.config) or request.node.get_closest_marker(MARKER):
        yield
        return
    from PySpice.Spice.NgSpice.Shared import NgSpiceShared

    def refuse(*args, **kwargs):
        _UNMARKED.append(request.node.nodeid)
        _skip_or_fail(request.config)

    monkeypatch.setattr(NgSpiceShared, "new_instance", classmethod(refuse))
    yield


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _UNMARKED:
        terminalreporter.write_line(f"tests/conftest.py: {len(_UNMARKED)} test(s) reached ngspice without the "
                                    f"'ngspice' marker (extend NGSPICE_USE or NGSPICE_INDIRECT): "
                                    + ", ".join(sorted(set(_UNMARKED))), yellow=True)


@pytest.fixture(scope="session")
def ngspice(request: pytest.FixtureRequest):
    _skip_or_fail(request.config)
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
    """Within the block, ``runs.<writer>`` (a checkpoint writer whose second argument is the state) raises
    KeyboardInterrupt right after writing the checkpoint of ``epoch``, as a kill at that moment would."""
    from metamaterial import runs
    saved = getattr(runs, writer)

    def write_then_stop(run_dir, state, *args):
        saved(run_dir, state, *args)
        if state.epoch == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(runs, writer, write_then_stop)
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        monkeypatch.setattr(runs, writer, saved)


def cli(*args, cwd=ROOT, **kw) -> subprocess.CompletedProcess:
    """``python -m metamaterial ARGS`` from the repository's root (or ``cwd``), its output captured; ``kw`` go to
    ``subprocess.run``. Every test that runs the command line in a child process runs it through here."""
    return subprocess.run([sys.executable, "-m", "metamaterial", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=900, **kw)


def cli_ok(*args) -> subprocess.CompletedProcess:
    """``cli``, which must exit 0."""
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    return proc


def cli_refused(*args) -> str:
    """The one-line message of a command that must exit 2."""
    proc = cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr
