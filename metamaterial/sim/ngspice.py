"""ngspice backend: the reference solver, through ngspice's shared library via PySpice.

The ONLY module that imports PySpice. One ngspice instance per process. Each (circuit, phase, batch size)
is loaded once as netlist text; afterwards every solve changes sources in place with ``alter`` (only
those whose value changed, sent straight to the library with one check of ngspice's output per solve),
runs ``op``, reads node vectors straight from ngspice memory and destroys the plot, so memory stays
bounded over any number of solves.

Netlists ask for KLU (``.options klu``) when this ngspice was compiled with it (``version`` says so,
ngspice >= 42), else Sparse 1.3; ``info()`` reports the version and the solver ngspice says it used.
Gates are Norton current sources, which keep a repeated ``op`` linear in the circuit size (``netlist`` says why).

PySpice 1.5 treats every stderr line as an error and refuses ngspice > 34 with a warning; we send
commands through the shared library ourselves and classify ngspice's output: notes and warnings are
logged at debug level, real failures become ``SimulationError`` with the netlist and the last log lines.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass, field, replace

import numpy as np

from .. import interrupts
from ..circuit import Circuit, OperatingPoint
from ..devices import SERIES_MIN_OHMS, NmosParams, PotentiometerParams
from ..errors import SimulationError
from ..netlist import (
    CLAMP_SIEMENS,
    GATE_OHMS,
    SpiceOptions,
    netlist_points,
    node_vector_names,
    num,
    solve_options,
    swept,
    to_spice,
    to_spice_sweep,
)
from .base import AbstractSolver, check_options

_log = logging.getLogger(__name__)
_FAILURE = re.compile(r"error|singular matrix|iteration limit|no convergence|aborted|failed|too small|"
                      r"unknown|could not|can't find|not found|fatal", re.IGNORECASE)
_HARMLESS = re.compile(r"^\s*(note:|warning:|using \S+( \S+)? as direct linear solver|circuit:|doing analysis|"
                       r"no\. of data rows|reference value|\*{3}|$)", re.IGNORECASE)
_LINEAR_SOLVER = re.compile(r"using (\S+(?: [0-9.]+)?) as direct linear solver", re.IGNORECASE)
_STATISTICS = {"iterations": "Total iterations", "reorder_s": "Matrix reorder time", "factor_s": "Matrix factor time",
               "load_s": "Matrix load time", "solve_s": "Matrix solve time", "analysis_s": "Total analysis time",
               "equations": "Circuit Equations", "fill_in": "Circuit fill-in non-zeroes"}
_MAX_CACHED_CIRCUITS = 8
_FREE_HISTORY_EVERY = 5000
_instance = None
_SWEEP_POINTS = 256  # operating points per dc sweep before it is ended and started afresh (bounds its plot)
_REGISTRY: dict = {"loaded": {}, "order": [], "commands": 0, "dead": None, "checked_cards": set(), "loads": 0,
                   "version": None, "linear_solver": None, "paused": None, "callbacks": None, "program_klu": None}
#: what the compiled callback reads: address of the values, edges, inputs, clamps, batch, and a flag it sets when
#: ngspice asks for a name outside that layout
_FEED_HEADER = np.zeros(6, dtype=np.int64)


class _SweepFailed(Exception):
    """A dc-sweep point did not converge (ngspice ended the sweep): the solve falls back to ``op``."""


def loaded_version() -> str | None:
    """The version of the ngspice shared library this process has loaded ("46"), or None before a solver loaded
    it."""
    found = _REGISTRY["version"]
    return found[0] if found else None


def _shared():
    """The process-wide ngspice shared instance (created on first use)."""
    global _instance
    if _instance is None:
        logging.getLogger("PySpice").setLevel(logging.CRITICAL)
        try:
            from PySpice.Spice.NgSpice.Shared import NgSpiceShared
        except ImportError as err:  # this Python lacks the package's dependencies: another than the environment's
            raise SimulationError(
                f"ngspice: PySpice is not installed in this Python ({sys.executable}: {err}); run metamaterial with "
                "the Python 'make setup' installed it into (.venv/bin/metamaterial, or '. .venv/bin/activate' "
                "first), or 'pip install .' here, or choose --backend native") from err
        try:
            _instance = NgSpiceShared.new_instance()
        except (OSError, ImportError, NameError) as err:
            raise SimulationError(
                f"ngspice: cannot load ngspice's shared library through PySpice ({err}); install Debian's "
                "'ngspice' and 'libngspice0-dev' (or run 'make setup') or choose --backend native") from err
        interrupts.install()  # a Ctrl-C in PySpice's output callback is held, not dropped (raised as calls return)
    return _instance


@dataclass
class _Loaded:
    """A netlist resident in ngspice, with the source values it currently holds."""

    slot: int
    circuit: Circuit
    names: list[list[str]]
    netlist: str
    values: dict[str, float] = field(default_factory=dict)


@dataclass
class _Swept(_Loaded):
    """A sweep netlist (``netlist.to_spice_sweep``) resident in ngspice: both twins, sources fed by callback.

    ``feed`` holds the values of its external sources (``_feed_values``). ngspice asks for every one at every matrix
    load; the callback is compiled and finds them through ``_FEED_HEADER``, so a load costs nanoseconds per source
    instead of a Python call. ``plot`` is the dc plot of its running (paused) sweep and ``points`` how many
    operating points that sweep has solved; ``clamped`` what the clamp conductances hold now (None: unknown).
    """

    feed: np.ndarray | None = None
    plot: str | None = None
    points: int = 0
    clamped: bool | None = None


class NgspiceSolver(AbstractSolver):
    """DC operating points with ngspice (shared library, PySpice). ``close`` has nothing to release: loaded
    circuits are a bounded process-wide cache.

    Args:
        options: simulator tolerances and linear solver written into every netlist. KLU is asked for only when
            this ngspice has it (``self.options`` then says ``sparse``).
        keep_failed: directory where a failing netlist is written (default: the system temp dir).
        sweep: solve transistor networks without mismatch as points of one paused dc sweep (see ``_solve_swept``);
            False: one ``op`` per solve, every solve from ngspice's own initial guess. A circuit whose sweep point
            fails is solved by ``op`` instead, from then on (``sweep_fallbacks`` counts such circuits): a dc sweep
            can fail where ``op``, with its gmin and source stepping from ngspice's initial guess, converges (a
            tied body behind 1 mohm series resistances). That op keeps the sweep's reltol (``netlist.solve_options``,
            which the netlists written carry), and takes the config's only if it fails at that reltol too.
    """

    name = "ngspice"

    def __init__(self, options: SpiceOptions = SpiceOptions(), keep_failed: str | None = None,
                 sweep: bool = True) -> None:
        super().__init__()
        check_options(options, "NgspiceSolver")
        self.keep_failed = keep_failed
        self.sweep = sweep
        self._ng = _shared()
        from PySpice.Spice.NgSpice.Shared import ffi  # noqa: PLC0415 (PySpice stays inside this module)
        self._ffi = ffi
        self._log_tail: list[str] = []
        if _REGISTRY["version"] is None:  # ngspice's version and whether it was compiled with KLU
            lines = self._command("version")
            m = next((re.search(r"ngspice-(\S+)", ln) for ln in lines if "ngspice-" in ln), None)
            has_klu = any("compiled with klu" in ln.lower() for ln in lines)
            _REGISTRY["version"] = (m.group(1) if m else "unknown", has_klu)
        self.ngspice_version, self.has_klu = _REGISTRY["version"]
        self.options = options if self.has_klu or options.linear_solver != "klu" else \
            replace(options, linear_solver="sparse")
        # ngspice holds one set of circuits per process, so the record of what is loaded is process-wide too
        self._loaded: dict[tuple, _Loaded] = _REGISTRY["loaded"]
        self._order: list[tuple] = _REGISTRY["order"]
        #: wall seconds spent in each part of the solves so far (load, alter, op, read, destroy), for profiling
        self.timings: dict[str, float] = dict.fromkeys(("load", "alter", "op", "read", "destroy"), 0.0)
        #: circuits whose dc-sweep point failed, solved by ``op`` since (held weakly: a circuit dropped leaves it)
        self._op_only: weakref.WeakSet[Circuit] = weakref.WeakSet()
        self.sweep_fallbacks = 0
        #: of those, circuits whose op failed at the sweep's reltol too, solved at the config's since
        self._loose: weakref.WeakSet[Circuit] = weakref.WeakSet()

    # -- what ngspice this is ---------------------------------------------------------------------
    def info(self) -> dict[str, str]:
        """ngspice's version and the direct linear solver it uses, both as ngspice itself reports them.

        Returns:
            ``{"ngspice_version": "46", "linear_solver": "KLU"}`` (``"SPARSE 1.3"`` on an ngspice without KLU).
            The solver is the one ngspice named at this process's last ``op``; before any, a two-element probe
            circuit with this solver's options is solved once to ask it.
        """
        if _REGISTRY["linear_solver"] is None:
            self._check_alive()
            self._end_sweep()  # the probe ends with "destroy all", which would take the paused sweep's plot
            before = self._n_circuits()
            self._ng.clear_output()
            self._ng.load_circuit(f"* metamaterial linear-solver probe\n.options {self.options.linear_solver}\n"
                                  "VP1 p1 0 dc 1\nRP1 p1 0 1\n.end\n")
            try:
                self._command("op")
            finally:
                self._ng._ngspice_shared.ngSpice_Command(b"destroy all")
                if self._n_circuits() > before:  # the probe is the newest and current circuit: drop it
                    self._ng._ngspice_shared.ngSpice_Command(b"remcirc")
        return {"ngspice_version": self.ngspice_version, "linear_solver": _REGISTRY["linear_solver"] or "unknown"}

    # -- ngspice I/O ----------------------------------------------------------------------------
    def _command(self, command: str) -> list[str]:
        """Run one ngspice command; return its output lines; raise on a real failure."""
        ng = self._ng
        if _REGISTRY["commands"] >= _FREE_HISTORY_EVERY:
            ng._ngspice_shared.ngSpice_Command(self._ffi.NULL)  # frees ngspice's command history
            _REGISTRY["commands"] = 0
        _REGISTRY["commands"] += 1
        ng.clear_output()
        rc = ng._ngspice_shared.ngSpice_Command(command.encode("ascii"))
        lines = list(ng._stdout) + list(ng._stderr)
        self._log_tail = (self._log_tail + [f"> {command}"] + lines)[-40:]
        bad = [ln for ln in lines if _FAILURE.search(ln) and not _HARMLESS.match(ln)]
        if rc or bad:
            raise self._error(f"ngspice: command {command!r} failed: {bad[0] if bad else f'return code {rc}'}")
        for ln in lines:
            _log.debug("ngspice: %s", ln)
            m = _LINEAR_SOLVER.search(ln)
            if m:
                _REGISTRY["linear_solver"] = m.group(1)
        return lines

    def _alter_all(self, commands: list[str]) -> None:
        """Send many ``alter`` commands straight to the library (no Python per output line: a good alter prints
        nothing), then look at what ngspice printed once."""
        if not commands:
            return
        ng = self._ng
        send = ng._ngspice_shared.ngSpice_Command
        ng.clear_output()
        bad_rc = [c for c in commands if send(c.encode("ascii"))]
        _REGISTRY["commands"] += len(commands)
        lines = list(ng._stdout) + list(ng._stderr)
        bad = [ln for ln in lines if _FAILURE.search(ln) and not _HARMLESS.match(ln)]
        if bad or bad_rc:
            self._log_tail = (self._log_tail + [f"> {len(commands)} alter commands"] + lines)[-40:]
            raise self._error(f"ngspice: alter failed: {bad[0] if bad else f'{bad_rc[0]!r} returned an error'}")
        if _REGISTRY["commands"] >= _FREE_HISTORY_EVERY:
            send(self._ffi.NULL)  # frees ngspice's command history, which keeps every command sent
            _REGISTRY["commands"] = 0

    def _load(self, key: tuple, circuit: Circuit, netlist: str, batch: int, kind: type[_Loaded] = _Loaded) -> _Loaded:
        """Load ``netlist`` (``batch`` samples) into ngspice as a ``kind`` under ``key``, made the current circuit."""
        self._check_alive()
        if len(self._order) >= _MAX_CACHED_CIRCUITS:
            self.reset()
        self._precheck_user_card(circuit, netlist)
        ng = self._ng
        before = self._n_circuits()
        ng.clear_output()
        try:
            ng.load_circuit(netlist)
        except Exception as err:  # PySpice raises NameError subclasses here
            self._log_tail = (list(ng._stdout) + list(ng._stderr))[-20:]
            if any("cannot recover" in ln for ln in self._log_tail):
                _REGISTRY["dead"] = "a netlist it could not parse"
            self._fail("ngspice rejected the netlist", netlist, err)
        lines = list(ng._stdout) + list(ng._stderr)
        bad = [ln for ln in lines if _FAILURE.search(ln) and not _HARMLESS.match(ln)]
        if bad or self._n_circuits() != before + 1:
            self._log_tail = lines[-20:]
            if self._n_circuits() > before:  # half-loaded: drop it so slot numbers stay right
                self._ng._ngspice_shared.ngSpice_Command(b"remcirc")
            self._fail(f"ngspice rejected the netlist: {bad[0] if bad else 'circuit not loaded'}", netlist)
        self._order.append(key)
        loaded = kind(slot=len(self._order) - 1, circuit=circuit, names=node_vector_names(circuit, batch),
                      netlist=netlist)
        self._loaded[key] = loaded
        if not self._select(loaded):
            raise self._error("ngspice: a freshly loaded circuit could not be selected")
        return loaded

    def _resident(self, key: tuple, circuit: Circuit) -> _Loaded | None:
        """The netlist loaded under ``key``, made current; None if a dead circuit's id was reused, or someone else
        changed ngspice's circuit list."""
        loaded = self._loaded.get(key)
        return loaded if loaded is not None and loaded.circuit is circuit and self._select(loaded) else None

    @staticmethod
    def _check_alive() -> None:
        if _REGISTRY["dead"]:
            raise SimulationError(f"ngspice: the shared library stopped after {_REGISTRY['dead']} and cannot be "
                                  "reused in this process; fix the input and start a new process")

    def _precheck_user_card(self, circuit: Circuit, netlist: str) -> None:
        """A user model card is text we did not write: try it in a separate ``ngspice -b`` first, because a
        parse error inside the shared library is fatal to it for the rest of the process."""
        card = getattr(circuit.device, "model_card", None)
        if card is None or card in _REGISTRY["checked_cards"]:
            return
        # standalone ngspice has no shared-library callback: an ``external`` source is read as a 0 V/A one there
        standalone = re.sub(r" external$", " dc 0", netlist, flags=re.MULTILINE)
        with tempfile.NamedTemporaryFile("w", prefix="metamaterial-card-", suffix=".cir") as f:
            f.write(standalone.replace("\n.end\n", "\n.control\nop\nquit 0\n.endc\n.end\n"))
            f.flush()
            proc = _run_ngspice(f.name)
        lines = (proc.stdout + proc.stderr).splitlines()
        bad = [ln for ln in lines if _FAILURE.search(ln) and not _HARMLESS.match(ln)]
        if proc.returncode != 0 or bad:
            self._log_tail = lines[-20:]
            self._fail(f"ngspice rejected the netlist with model card {circuit.device.name!r}: "
                       f"{bad[0] if bad else f'exit code {proc.returncode}'}; check the card", netlist)
        _REGISTRY["checked_cards"].add(card)

    def _n_circuits(self) -> int:
        self._ng.clear_output()
        self._ng._ngspice_shared.ngSpice_Command(b"setcirc")
        return sum(1 for ln in self._ng._stdout if re.match(r"^(Current\s+)?\d+\t", ln))

    def _select(self, loaded: _Loaded) -> bool:
        """Make ``loaded`` ngspice's current circuit; False if ngspice's list is not what we recorded (another
        user of the shared library, e.g. PySpice's own simulator, added or removed circuits): then start over."""
        # ngspice numbers circuits newest first: the k-th loaded of T is number T - k.
        number = len(self._order) - loaded.slot
        self._ng.clear_output()
        self._ng._ngspice_shared.ngSpice_Command(f"setcirc {number}".encode())
        title = loaded.netlist.split("\n", 1)[0].lstrip("* ").strip()
        if any(ln.strip().lstrip("* ").strip() == title for ln in self._ng._stdout):
            return True
        self.reset()
        return False

    def reset(self) -> None:
        """Unload every circuit, so the next solves load afresh and are independent of history to the last bit
        (Sparse 1.3 keeps its pivot order from the first factorization; KLU orders anew at every ``op``)."""
        self._end_sweep()
        for _ in range(self._n_circuits()):
            self._ng._ngspice_shared.ngSpice_Command(b"remcirc")
        self._loaded.clear()
        self._order.clear()

    def _fail(self, message: str, netlist: str, err: Exception | None = None) -> None:
        raise self._error(message, netlist=netlist, kept=keep_failed_deck(netlist, self.keep_failed)) from err

    def _fail_solve(self, err: SimulationError, circuit: Circuit, controls: np.ndarray, inputs: np.ndarray,
                    clamps: np.ndarray | None, options: SpiceOptions | None = None) -> None:
        """An operating point that failed: raise with the netlist one ``op`` of these values loads, kept, and for a
        singular matrix what can make it one (``_singular_hint``)."""
        singular = "singular matrix" in f"{err.summary}\n{err.log}".lower()
        hint = _singular_hint(circuit) if singular else ""
        self._fail(f"ngspice: operating point failed ({err.summary}){hint}",
                   to_spice(circuit, controls, inputs, clamps, options=options or self.options, title="failed solve"))

    # -- solving --------------------------------------------------------------------------------
    def _solve(self, circuit: Circuit, controls: np.ndarray, inputs: np.ndarray,
               clamps: np.ndarray | None, tags: np.ndarray | None = None, remember: bool = True) -> OperatingPoint:
        # tags and remember are not used: ngspice starts every op from its own initial guess, so no solve depends on
        # an earlier one
        interrupts.raise_pending()
        batch, per_sample = inputs.shape[0], controls.ndim == 2
        if not batch:  # nothing to solve, as the native solver answers (a netlist of no copies cannot be written)
            return OperatingPoint(voltages=np.empty((0, circuit.n_nodes)))
        # a batch netlist holds a network copy per sample, and they share the gates: one control vector per sample
        # is solved row by row
        size = 1 if per_sample else netlist_points(batch, circuit.n_edges)
        if batch > size or per_sample:  # in chunks of ``size``, the last padded with its own last sample
            parts = []
            for lo in range(0, batch, size):
                rows = np.minimum(np.arange(lo, lo + size), batch - 1)
                op = self._solve(circuit, controls[lo] if per_sample else controls, inputs[rows],
                                 None if clamps is None else clamps[rows])
                parts.append(op.voltages[:batch - lo])
            return OperatingPoint(voltages=np.concatenate(parts))
        if self.sweep and swept(circuit) and circuit not in self._op_only:  # the netlists written decide alike
            try:
                return self._solve_swept(circuit, controls, inputs, clamps)
            except _SweepFailed:  # solved below by op instead, and so from now on
                self._op_only.add(circuit)
                self.sweep_fallbacks += 1
        self._end_sweep()  # the op below ends with 'destroy all', which would take the paused sweep's plot
        options = self._op_options(circuit)
        try:
            voltages = self._solve_op(circuit, controls, inputs, clamps, options)
        except SimulationError as err:
            if options == self.options:
                self._fail_solve(err, circuit, controls, inputs, clamps, options)
            # the op cannot meet SWEEP_RELTOL either (seen: a tied body behind series resistances at their 1 mohm
            # floor, where ngspice's answer moves by ~1e-10 V): the config's reltol, for this circuit from now on
            self._loose.add(circuit)
            try:
                voltages = self._solve_op(circuit, controls, inputs, clamps, self.options)
            except SimulationError as again:
                self._fail_solve(again, circuit, controls, inputs, clamps, self.options)
        interrupts.raise_pending()
        return OperatingPoint(voltages=voltages)

    def _op_options(self, circuit: Circuit) -> SpiceOptions:
        """The options of ``circuit``'s op: the config's, and after a failed sweep (``sweep_fallbacks``) those the
        sweep and the netlists written for it use (``netlist.solve_options``: reltol at most ``SWEEP_RELTOL``), so
        that a fallback's answer is the written netlist's under ``ngspice -b``; the config's again once an op at that
        reltol has failed too."""
        if circuit in self._op_only and circuit not in self._loose:
            return solve_options(circuit, self.options)
        return self.options

    def _solve_op(self, circuit: Circuit, controls: np.ndarray, inputs: np.ndarray, clamps: np.ndarray | None,
                  options: SpiceOptions) -> np.ndarray:
        """[B, N] node voltages (V) of one ``op`` of the netlist ``to_spice`` writes with ``options`` (loaded once,
        its sources altered afterwards); a failed op raises ngspice's ``SimulationError``."""
        batch = inputs.shape[0]
        key = (id(circuit), clamps is None, batch, options)
        loaded = self._resident(key, circuit)
        clock = time.perf_counter()
        if loaded is None:
            _REGISTRY["loads"] += 1
            text = to_spice(circuit, controls, inputs, clamps, options=options, control_block=False,
                            title=f"{'free' if clamps is None else 'clamped'} batch {batch} load {_REGISTRY['loads']}")
            loaded = self._load(key, circuit, text, batch)
            loaded.values.update(self._source_values(circuit, controls, inputs, clamps))
            clock = self._tick("load", clock)
        else:
            changed = {name: value for name, value in self._source_values(circuit, controls, inputs, clamps).items()
                       if loaded.values.get(name) != value}
            try:
                self._alter_all([self._alter(name, value) for name, value in changed.items()])
            except SimulationError:
                loaded.values.clear()  # what ngspice holds is unknown now: alter everything next time
                raise
            loaded.values.update(changed)
            clock = self._tick("alter", clock)
        self._check_alive()
        try:
            self._command("op")
            clock = self._tick("op", clock)
            voltages = self._read(loaded, self._current_plot("op"))
            clock = self._tick("read", clock)
        finally:
            self._ng._ngspice_shared.ngSpice_Command(b"destroy all")
        self._tick("destroy", clock)
        return voltages

    # -- solving as points of a paused dc sweep ---------------------------------------------------
    def _solve_swept(self, circuit: Circuit, controls: np.ndarray, inputs: np.ndarray,
                     clamps: np.ndarray | None) -> OperatingPoint:
        """One operating point as the next point of a dc sweep that ngspice keeps paused between solves.

        An ``op`` sets the circuit up afresh (``CKTdoJob`` with reset: ``CKTunsetup``, ``CKTsetup``, ``CKTtemp``),
        orders and factors the matrix anew, and starts Newton from ngspice's initial guess. A dc sweep does the setup
        and the ordering once, and starts each point from the last point's solution (``DCtrCurv``: ``MODEINITPRED``,
        KLU refactors on the kept pivot order). ``step`` runs exactly one more point and pauses the sweep again
        (``com_step``), without setup (``CKTdoJob`` without reset). Between points nothing is sent as a command for
        the gates and inputs: they are ``external`` sources whose values our callback gives at every load; only the
        clamp conductances are altered, when the phase changes. The answer is the operating point of the same
        equations to ngspice's tolerances; it depends on the previous point only through Newton's starting point.
        """
        batch = inputs.shape[0]
        key = (id(circuit), "sweep", batch, self.options)
        swept = self._resident(key, circuit)
        clock = time.perf_counter()
        if swept is None:
            self._end_sweep()
            _REGISTRY["loads"] += 1
            # a warm start stops Newton as soon as the step is within reltol, where a cold op's last quadratic step
            # lands far inside it: the sweep asks for netlist.SWEEP_RELTOL so its answers stay those of an op (the
            # netlists written for people carry the same options: netlist.solve_options)
            text = to_spice_sweep(circuit, batch, _SWEEP_POINTS, options=solve_options(circuit, self.options),
                                  title=f"sweep batch {batch} load {_REGISTRY['loads']}")
            self._install_callbacks()
            swept = self._load(key, circuit, text, batch, _Swept)
            clock = self._tick("load", clock)
        paused = _REGISTRY["paused"]
        if paused is not None and (paused is not swept or paused.points >= _SWEEP_POINTS):
            self._end_sweep()  # only one dc sweep can be paused in ngspice (its output plot is a static of DCtrCurv)
            if not self._select(swept):  # someone else changed ngspice's circuit list: everything was unloaded
                return self._solve_swept(circuit, controls, inputs, clamps)
            clock = self._tick("destroy", clock)
        swept.feed = _feed_values(circuit, controls, inputs, clamps)  # the callback reads it by address from now on
        _FEED_HEADER[:] = (swept.feed.ctypes.data, circuit.n_edges, circuit.n_inputs, len(circuit.clamp_nodes),
                           batch, 0)
        if swept.clamped != (clamps is not None):
            siemens = num(CLAMP_SIEMENS if clamps is not None else 0.0)
            sfx = [""] if batch == 1 else [f"_{b}" for b in range(batch)]
            self._alter_all([f"alter GC{k}{s} gain = {siemens}" for s in sfx for k in range(len(circuit.clamp_nodes))])
            swept.clamped = clamps is not None
        clock = self._tick("alter", clock)
        self._check_alive()
        try:
            self._command("step")  # starts the netlist's .dc when none is paused (com_resume runs it)
        except SimulationError as err:  # ngspice ended the sweep itself ("dc simulation(s) aborted"):
            if _REGISTRY["paused"] is swept:  # forget it, and drop whatever plot it left
                _REGISTRY["paused"] = None
            swept.plot = swept.plot or self._current_plot(required=False)
            self._drop_plot(swept)
            swept.clamped = None
            raise _SweepFailed from err
        try:
            if swept.plot is None:
                swept.plot = self._current_plot()
                _REGISTRY["paused"] = swept
            swept.points += 1
            if _FEED_HEADER[5]:  # the callback gave 0 for a name outside the layout
                raise SimulationError("ngspice: asked for an external source the sweep netlist does not feed")
            clock = self._tick("op", clock)
            voltages = self._read(swept, swept.plot)
            self._tick("read", clock)
        except SimulationError as err:
            self._end_sweep()
            self._fail_solve(err, circuit, controls, inputs, clamps, solve_options(circuit, self.options))
        interrupts.raise_pending()
        return OperatingPoint(voltages=voltages)

    def _install_callbacks(self) -> None:
        """Register the compiled external-source callback with ngspice once per process (``ngSpice_Init_Sync``)."""
        if _REGISTRY["callbacks"] is not None:
            return
        # the callback reads _FEED_HEADER (``ngspice_feed``: loaded from numba's cache once per process)
        from .ngspice_feed import callback_address  # noqa: PLC0415 (numba loads only when a sweep netlist does)

        ffi, ng = self._ffi, self._ng
        pointer = ffi.cast("int (*)(double *, double, char *, int, void *)", callback_address(_FEED_HEADER.ctypes.data))
        # PySpice's own identity and user data, so its other callbacks keep theirs
        rc = ng._ngspice_shared.ngSpice_Init_Sync(pointer, pointer, ffi.NULL, ng._ngspice_id, ng._self_c)
        if rc:
            raise SimulationError(f"ngspice: ngSpice_Init_Sync returned {rc}")
        _REGISTRY["callbacks"] = pointer

    def _end_sweep(self) -> None:
        """Finish the paused dc sweep, if any, without solving another point: move its swept source past the end,
        resume (``DCtrCurv`` then restores the source and closes its plot) and drop the plot."""
        swept = _REGISTRY["paused"]
        if swept is None:
            return
        _REGISTRY["paused"] = None
        try:
            if self._select(swept):
                self._command("alter VSWEEP dc = 1e30")
                self._command("resume")
        finally:
            self._drop_plot(swept)

    def _drop_plot(self, swept: _Swept) -> None:
        if swept.plot:
            self._ng._ngspice_shared.ngSpice_Command(f"destroy {swept.plot}".encode())
        swept.plot, swept.points = None, 0

    def _current_plot(self, kind: str = "dc", required: bool = True) -> str | None:
        """ngspice's current plot if it is of ``kind`` (``dc`` of the sweep, ``op``); else raise, or None."""
        plot = self._ffi.string(self._ng._ngspice_shared.ngSpice_CurPlot()).decode()
        if plot.startswith(kind):
            return plot
        if required:
            what = "the sweep produced no dc plot" if kind == "dc" else "no operating point was produced"
            raise self._error(f"ngspice: {what} (current plot {plot!r})")
        return None

    def _error(self, message: str, **details) -> SimulationError:
        return SimulationError(message, log="\n".join(self._log_tail[-20:]), **details)

    def _tick(self, part: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[part] += now - since
        return now

    def statistics(self) -> dict[str, float]:
        """ngspice's own cumulative statistics (``rusage all``) of the circuit solved last: Newton iterations,
        matrix load, reorder, factor and solve seconds, analysis seconds, equations and fill-in. ngspice keeps
        them per loaded circuit over all its analyses; difference two calls to get one solve's share."""
        out = {}
        for line in self._command("rusage all"):
            for key, label in _STATISTICS.items():
                m = re.match(rf"^{re.escape(label)}(?: \(seconds\))?\s*=\s*([-+0-9.eE]+)", line.strip())
                if m:
                    out[key] = float(m.group(1))
        return out

    @staticmethod
    def _alter(name: str, value: float) -> str:
        # a resistor's value is its resistance; VI, VC and the gates' IG (1 ohm: amperes = volts) have a dc value
        return f"alter {name}{'' if name.startswith('R') else ' dc'} = {num(value)}"

    @staticmethod
    def _source_values(circuit: Circuit, controls: np.ndarray, inputs: np.ndarray,
                       clamps: np.ndarray | None) -> dict[str, float]:
        """Value of every alterable element by its netlist name (matches ``netlist.to_spice``)."""
        dev = circuit.device
        sfx = [""] if inputs.shape[0] == 1 else [f"_{b}" for b in range(inputs.shape[0])]
        if isinstance(dev, NmosParams):
            out = {f"IG{e}": float(v) / GATE_OHMS for e, v in enumerate(controls)}
        else:  # resistors carry one element per copy; their value is the resistance
            g = dev.conductance(controls) if isinstance(dev, PotentiometerParams) else controls
            out = {f"R{e}{s}": 1.0 / float(ge) for s in sfx for e, ge in enumerate(g)}
        for b, s in enumerate(sfx):
            out.update({f"VI{k}{s}": float(inputs[b, k]) for k in range(circuit.n_inputs)})
            if clamps is not None:
                out.update({f"VC{k}{s}": float(clamps[b, k]) for k in range(clamps.shape[1])})
        return out

    def _read(self, loaded: _Loaded, plot: str) -> np.ndarray:
        """Node voltages [B, N] (V): the last value of each node's vector in ``plot``."""
        shared = self._ng._ngspice_shared
        out = np.empty((len(loaded.names), len(loaded.names[0])))
        for b, row in enumerate(loaded.names):
            for i, name in enumerate(row):
                info = shared.ngGet_Vec_Info(f"{plot}.{name}".encode())
                if info == self._ffi.NULL or info.v_realdata == self._ffi.NULL:
                    raise self._error(f"ngspice: node vector {name!r} missing from plot {plot!r}")
                out[b, i] = info.v_realdata[info.v_length - 1]
        return out


def _singular_hint(circuit: Circuit) -> str:
    """What to say of a singular matrix. Series resistances below ``devices.SERIES_MIN_OHMS`` make ngspice's matrix
    singular (measured from ~1e-7 ohm down), but the config refuses them; at or above it (measured regular at 1e-3
    ohm with every transistor off and gmin down to 1e-30 S) what is left is what makes any MNA matrix singular: a
    node without a DC path to ground, or conductances too far apart for ngspice's pivoting."""
    dev = circuit.device
    series = {k: getattr(dev, k, 0.0) for k in ("rd", "rs") if getattr(dev, k, 0.0)}
    named = ", ".join(f"{k}={v!r}" for k, v in series.items())
    if any(v < SERIES_MIN_OHMS for v in series.values()):  # only past the config's refusal
        return (f"; the transistors' series resistances ({named} ohm) are below {SERIES_MIN_OHMS!r} ohm, which make "
                "ngspice's matrix singular: give 0 for none or at least that (device.params.rd, rs), or use "
                "--backend native")
    regular = f" (not the series resistances, {named} ohm: from {SERIES_MIN_OHMS!r} ohm up ngspice's matrix was " \
        "measured regular)" if series else ""
    return (f"; a singular matrix comes from a node without a DC path to ground, or from conductances too far apart "
            f"for ngspice's pivoting{regular}: check the netlist kept below (a user model card, an extreme "
            "simulator.gmin or device parameter), or use --backend native")


def _feed_values(circuit: Circuit, controls: np.ndarray, inputs: np.ndarray, clamps: np.ndarray | None) -> np.ndarray:
    """Gate currents (1 ohm: amperes = volts), input volts [B, n_in] and clamp currents [B, n_clamp], flat."""
    clamp_amps = np.zeros((inputs.shape[0], len(circuit.clamp_nodes))) if clamps is None else clamps * CLAMP_SIEMENS
    return np.concatenate([np.asarray(controls, float) / GATE_OHMS, inputs.ravel(), clamp_amps.ravel()])


def keep_failed_deck(text: str, folder: str | None = None) -> str:
    """Write a netlist ngspice failed on where it stays (``folder``, default the system temp directory), so that a
    user can run it by hand; return its path."""
    with tempfile.NamedTemporaryFile("w", prefix="metamaterial-failed-", suffix=".cir", dir=folder,
                                     delete=False) as f:
        f.write(text)
    return f.name


def _run_ngspice(path: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["ngspice", "-b", path], capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as err:
        raise SimulationError("ngspice: the 'ngspice' program is not installed; install Debian's 'ngspice'") from err
    except subprocess.TimeoutExpired as err:
        raise SimulationError(f"ngspice -b {path}: no answer within {timeout:g} s") from err


def program_linear_solver(wanted: str) -> str:
    """The linear solver a deck run by the ngspice program (``ngspice -b``: the transients) asks for: ``wanted``, or
    ``sparse`` where ``wanted`` is ``klu`` and the program was not compiled with KLU (its ``--version``, read
    once). ngspice's options select Sparse 1.3 without it; with KLU one step of the XOR placement on a 40x40 torus
    (3,200 edges) ran 2.36x faster, its waveforms within 8.6e-12 V of Sparse's (``python scripts/bench_transient.py``,
    2026-12-04)."""
    if wanted != "klu":
        return wanted
    if _REGISTRY["program_klu"] is None:
        try:
            proc = subprocess.run(["ngspice", "--version"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):  # running the deck says what is wrong with the program
            return "sparse"
        _REGISTRY["program_klu"] = "compiled with klu" in (proc.stdout + proc.stderr).lower()
    return "klu" if _REGISTRY["program_klu"] else "sparse"


def run_batch_file(path: str, timeout: float = 120.0) -> str:
    """Run ``ngspice -b FILE`` as a separate process and return its standard output (for verification)."""
    proc = _run_ngspice(path, timeout)
    if proc.returncode != 0:
        raise SimulationError(f"ngspice -b {path}: exit code {proc.returncode}", log=proc.stderr[-2000:])
    return proc.stdout
