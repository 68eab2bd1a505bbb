"""Native batched DC solver: Newton's method on Kirchhoff's current law, reproducing ngspice's answer.

A backend behind ``base.AbstractSolver`` (name ``native``). It owns: turning a ``Circuit`` into index
arrays once (cached per circuit and phase), the warm start of each (circuit, phase, batch size) or, for tagged
samples, of each (circuit, phase, tag) (``TagMemory``: an unchanged tagged sample is not solved again), the
choice between a dense path (numba, one small LU per sample, the whole batch in one call, threads only
for batches of thousands) and a sparse path (``scipy.sparse`` SuperLU, for large networks), and reporting
samples that do not converge. The compiled kernels live in ``native_kernels``.

Physics (ngspice 39, ``mos1load.c``, the options of ``netlist.SpiceOptions``): every node that is not driven obeys
KCL with the edge currents (level-1 NMOS with body effect, lambda and source/drain symmetry, V_T and K per
transistor under twin mismatch: the free phase uses twin 0, the clamped phase twin 1; or linear conductances) plus,
for transistors, one grounded bulk diode with ngspice's gmin per transistor terminal (behind series resistances, on
the internal node, inside the edge's law: ``native_kernels.series_mos_currents``). Newton steps are limited per node
(to ``dv_max``, less for a node whose steps keep reversing) and kept inside the span of 0 V and the driven voltages,
where every solution lies. A sample is converged by ngspice's test on its last Newton step and its KCL residual,
capped by the native floors ``tol_v`` and ``tol_i`` (``NativeSolver`` states the test). A sample that is not, after
``max_iter`` iterations (ngspice's itl1), is retried alone (``NativeSolver._retry``): from a cold start, by gmin
stepping the way SPICE does, and with nodes held at the point where ngspice's junction current jumps; each retry
ends with plain Newton on the circuit itself, to the same tolerances. One that still fails raises
``SimulationError`` (or, with ``throw=False``, comes back as a NaN row flagged in
``NativeOperatingPoint.converged``).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import get_num_threads
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import splu

from .. import kernelcache
from ..circuit import Circuit, OperatingPoint, compile_graph
from ..devices import (
    THREE_REGIME,
    NmosParams,
    PotentiometerParams,
    ResistorParams,
    card_level,
    nmos_preset,
)
from ..errors import SimulationError, ValidationError, shown
from ..mos import OVERDRIVE_CAP
from ..netlist import SpiceOptions
from ..step import StepProgram, StepRun
from . import native_kernels as nk
from .base import AbstractSolver, check_options

_MAX_CACHED_CIRCUITS = 16
_MAX_WARM_STARTS = 64
_PARALLEL_FROM = 2048  # samples; threads pay off from ~32 samples on an idle machine, but numba threads
#: slow down 10-30x when other processes hold the cores (seen on 2-core machines), so only huge batches use them
# sparse path: a chord step must cut the residual to _CHORD_CONTRACTION of the last, else refactor; at most
# _CHORD_MAX_RUN chord steps in a row on one factorization. A factorization costs tens of chord steps on a large
# lattice, and a learning update moves the gates so little that one factorization often serves many solves. A chord
# step converges linearly, so the error it leaves can be several times its size (at a contraction of 0.8, 4x): a
# chord step ends the solve only within _CHORD_TOLERANCE of the node tolerance. Measured against 0.25 and 12 with
# the full tolerance (``python scripts/bench_sparse.py``, 2026-12-03): CPU per learning update x0.73 at 100x100,
# training steps x0.70, cold solves x0.65 (x1.3 at 300x300); the error to the exact operating point over 12 XOR
# updates at 100x100 1.3e-13 V (was 2.0e-13; at the full tolerance 1.4e-12, past tol_v)
_CHORD_CONTRACTION = 0.8
_CHORD_MAX_RUN = 40
_CHORD_TOLERANCE = 0.1
# gmin stepping (ngspice's dynamic gmin stepping, cktop.c): the shunt (S) of the first stage, the largest factor
# between stages, the smallest factor before giving up, and the shunt below which the next stage is the circuit itself
_GMIN_START, _GMIN_FACTOR, _GMIN_MIN_FACTOR, _GMIN_LAST = 1e-3, 10.0, 1.00005, 1e-12
_GMIN_MAX_STAGES = 200
_CORNER_WINDOW = 1e-3  # V: nodes this close to the junctions' branch point 3 V_T may sit on it (``_junction_corner``)
_CORNER_TRIES = 24     # sets of such nodes tried


@dataclass(frozen=True)
class NativeOperatingPoint(OperatingPoint):
    """``OperatingPoint`` plus convergence: ``converged`` bool [B]; ``residual`` [B] largest KCL residual (A)."""

    converged: np.ndarray | None = None
    residual: np.ndarray | None = None


@dataclass(eq=False)
class TagMemory:
    """What the native solver remembers per tag (``base.AbstractSolver.solve``) of one (circuit, phase): the last
    solution v [T, N] (V) and what it solved, controls [T, E] and driven voltages [T, n_driven] (V), with its
    largest KCL residual [T] (A). NaN rows: nothing yet (or a failed sample). A tagged sample starts Newton from its
    last solution; one whose controls and drive are bit for bit the same as then is not solved again. A solve with
    ``remember=False`` reads it and leaves it as it was."""

    circuit: Circuit
    v: np.ndarray
    controls: np.ndarray
    drive: np.ndarray
    residual: np.ndarray

    @classmethod
    def empty(cls, circuit: Circuit, n_driven: int) -> TagMemory:
        return cls(circuit, np.full((0, circuit.n_nodes), np.nan), np.full((0, circuit.n_edges), np.nan),
                   np.full((0, n_driven), np.nan), np.full(0, np.nan))

    def grow(self, n_tags: int) -> None:
        extra = n_tags - len(self.v)
        if extra > 0:
            for name in ("v", "controls", "drive", "residual"):
                old = getattr(self, name)
                setattr(self, name, np.concatenate([old, np.full((extra, *old.shape[1:]), np.nan)]))


@dataclass(eq=False)
class _Prepared:
    """Index arrays and device constants of one (circuit, phase), built once. Unknowns are numbered in
    elimination order."""

    circuit: Circuit
    clamped: bool
    driven: np.ndarray       # int [n_driven]: inputs, rails, then clamps (clamped phase), then held nodes
    kind: int
    prm: np.ndarray          # [nk.N_PRM] device constants shared by every edge
    vbi: np.ndarray          # [E] V_T0 - gamma sqrt(phi) (V) of each edge's transistor in this phase's twin
    beta: np.ndarray         # [E] K (A/V^2) of each edge's transistor in this phase's twin
    ea: np.ndarray           # int [E]
    eb: np.ndarray           # int [E]
    pos: np.ndarray          # int [N]: unknown index of each node, -1 if driven
    unk: np.ndarray          # int [n_u]
    n_junctions: np.ndarray  # float [n_u]: bulk diodes at each unknown (its degree for transistors)
    slots: np.ndarray        # int [E, 4]: Jacobian slots (dense row-major, or CSC data positions)
    diag: np.ndarray         # int [n_u]
    dense: bool
    indices: np.ndarray | None = None  # CSC structure of the sparse path
    indptr: np.ndarray | None = None
    lu: object = None  # sparse path: the last LU factorization of the Jacobian (SuperLU), reused by chord steps


class NativeSolver(AbstractSolver):
    """DC operating points by Newton's method, batched, with an analytic Jacobian.

    Convergence is ngspice's test (``NIconvTest`` and the devices' current checks) with ``options``, capped by
    two native floors. As in ngspice's ``NIiter``, a Newton step from v_old to v makes v the answer when, at every
    unknown node k,

    * the KCL residual at v_old (the load the step was solved from) is within min(reltol S_k + abstol,
      max(``tol_i``, 1e-14 S_k)), S_k being the sum of the magnitudes of the currents of node k's edges and bulk
      junctions (A); ngspice allows each device reltol |I| + abstol, and a node's residual is the sum of its
      devices' errors (1e-14 S_k, ``native_kernels.KCL_ROUNDING``: where S_k exceeds 10 A, rounding alone leaves
      more than ``tol_i``); and
    * the step is within min(reltol max(|v_k|, |v_k,old|) + vntol, ``tol_v``) (``NIconvTest``).

    At the default options (reltol 1e-6, vntol 1e-9 V, abstol 1e-15 A) the floors decide: every step below
    1e-12 V and every residual below 1e-13 A, except where S_k is so small that reltol S_k + abstol is tighter.
    Why floors tighter than ngspice's: an answer then does not depend on where Newton started (warm starts,
    the training loop, a resumed run) beyond 1e-13 V, and it closes KCL to 1e-13 A. Options tighter than the
    floors tighten the test; looser ones cannot loosen it.

    Args:
        throw: raise ``SimulationError`` when a sample does not converge (default); if False, return its row
            as NaN and flag it in ``NativeOperatingPoint.converged``.
        max_iter: Newton steps allowed per sample and attempt (the first one, and each retry or gmin
            stepping stage of a sample that failed it); default ``options.itl1``.
        tol_v: floor of the step test (V): no node's converged step exceeds it.
        tol_i: floor of the KCL test (A): no node's converged residual exceeds it, or 1e-14 of the node's currents
            where that is more.
        dv_max: largest change of one node voltage in one Newton step (V), like SPICE's limiting; each node's
            limit shrinks while its steps keep reversing (``native_kernels.apply_step``).
        dense_limit: up to this many unknown nodes the dense path is used, above it the sparse one.
        warm_start: start each solve from the last solution of the same (circuit, phase, batch size).
        options: ngspice's tolerances (reltol, abstol in A, vntol in V, itl1); ``linear_solver`` is not used.
    """

    name = "native"

    def __init__(self, throw: bool = True, max_iter: int | None = None, tol_v: float = 1e-12, tol_i: float = 1e-13,
                 dv_max: float = 0.3, dense_limit: int = 150, warm_start: bool = True,
                 reuse_factorization: bool = True, options: SpiceOptions = SpiceOptions()) -> None:
        super().__init__()
        check_options(options, "NativeSolver")
        max_iter = options.itl1 if max_iter is None else max_iter
        if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Real) or int(max_iter) != max_iter \
                or max_iter < 1:
            raise ValidationError(f"NativeSolver.max_iter: must be an integer >= 1 (got {shown(max_iter)})")
        for attr, value in (("tol_v", tol_v), ("tol_i", tol_i), ("dv_max", dv_max)):
            real = isinstance(value, numbers.Real) and not isinstance(value, bool)
            if not (real and math.isfinite(value) and value > 0):
                raise ValidationError(f"NativeSolver.{attr}: must be a positive finite number (got {shown(value)})")
            setattr(self, attr, float(value))
        self.throw = throw
        self.max_iter = int(max_iter)
        self.dense_limit = int(dense_limit)
        self.warm_start = warm_start
        self.reuse_factorization = bool(reuse_factorization)
        self.options = options
        #: [``native_kernels.N_TOL``] = (tol_v in V, tol_i in A, dv_max in V, reltol, vntol in V, abstol in A),
        #: indexed by ``native_kernels.T_*``, as the kernels take them
        self.tolerances = np.zeros(nk.N_TOL)
        self.tolerances[[nk.T_V, nk.T_I, nk.T_DV, nk.T_RELTOL, nk.T_VNTOL, nk.T_ABSTOL]] = (
            self.tol_v, self.tol_i, self.dv_max, options.reltol, options.vntol, options.abstol)
        self._prepared: dict[tuple, _Prepared] = {}
        self._warm: dict[tuple, tuple[Circuit, np.ndarray]] = {}  # (circuit, phase, batch size): last solution
        self._tagged: dict[tuple, TagMemory] = {}  # (circuit, phase): last solution per tag
        self.loop_iterations = 0  # Newton iterations spent in the compiled training loop so far
        self.factorizations = 0  # sparse path: SuperLU factorizations made so far (the cost chord steps save)

    # -- solving --------------------------------------------------------------------------------
    def _solve(self, circuit: Circuit, controls: np.ndarray, inputs: np.ndarray,
               clamps: np.ndarray | None, tags: np.ndarray | None = None,
               remember: bool = True) -> NativeOperatingPoint:
        clamped = clamps is not None
        prep = self.prepared(circuit, clamped)
        factorization = prep.lu  # the sparse path's chord steps start from it; put back unless remembering
        ctrl = self._edge_controls(circuit, controls)
        batch, n_in, n_rail = inputs.shape[0], circuit.n_inputs, len(circuit.rails)
        drv = np.empty((batch, len(prep.driven)))  # voltages of prep.driven: inputs, rails, clamps
        drv[:, :n_in] = inputs
        drv[:, n_in:n_in + n_rail] = circuit.rail_voltages
        if clamped:
            drv[:, n_in + n_rail:] = clamps
        iters = np.zeros(batch, dtype=np.int64)
        resid = np.empty(batch)
        status = np.zeros(batch, dtype=np.int64)  # nk.CONVERGED
        if tags is None:
            warm = self._warm.get((id(circuit), clamped, batch)) if self.warm_start else None
            v = warm[1].copy() if warm is not None and warm[0] is circuit else np.full((batch, circuit.n_nodes), np.nan)
            todo = None
        else:
            memory = self.tag_memory(circuit, clamped, int(tags.max()) + 1)
            v = memory.v[tags]
            raw = np.broadcast_to(controls, (batch, circuit.n_edges))
            same = (memory.controls[tags] == raw).all(axis=1) & (memory.drive[tags] == drv).all(axis=1)
            resid[same] = memory.residual[tags[same]]  # solved for exactly this before: nothing to do
            todo = np.flatnonzero(~same)
        if todo is None or len(todo) == batch:
            self._newton_batch(prep, v, drv, ctrl, iters, resid, status)
        elif len(todo):
            sub = [a[todo] for a in (v, drv, iters, resid, status)]
            self._newton_batch(prep, sub[0], sub[1], ctrl if len(ctrl) == 1 else ctrl[todo], *sub[2:])
            for a, b in zip((v, drv, iters, resid, status), sub):
                a[todo] = b
        converged = status == nk.CONVERGED
        failed = bool(status.any())
        if failed:
            v[~converged] = np.nan
        if not remember:
            prep.lu = factorization
        elif tags is not None:
            memory.v[tags], memory.controls[tags], memory.drive[tags], memory.residual[tags] = (
                v, np.where(converged[:, None], raw, np.nan), drv, resid)
        elif self.warm_start:
            if len(self._warm) >= _MAX_WARM_STARTS:
                self._warm.clear()
            self._warm[(id(circuit), clamped, batch)] = (circuit, v.copy())
        if failed and self.throw:
            raise SimulationError(self._failure_message(circuit, converged, resid))
        return NativeOperatingPoint(voltages=v, iterations=iters, converged=converged, residual=resid)

    def _newton_batch(self, prep: _Prepared, v: np.ndarray, drv: np.ndarray, ctrl: np.ndarray, iters: np.ndarray,
                      resid: np.ndarray, status: np.ndarray) -> None:
        """Newton on every row of v [B, N] in place (rows of NaN start cold), with retries for those that fail."""
        batch = v.shape[0]
        cold = np.isnan(v[:, 0])
        if not prep.dense:
            kernelcache.announce(nk.assemble, "the native solver's sparse path")
            for b in range(batch):
                iters[b], resid[b], status[b] = self._newton_sparse(prep, v[b], bool(cold[b]), drv[b],
                                                                    ctrl[0 if len(ctrl) == 1 else b])
        elif batch < _PARALLEL_FROM:
            kernelcache.announce(nk.newton_dense, "the native solver")
            nk.newton_dense(v, cold, prep.driven, drv, ctrl, prep.kind, prep.prm, prep.vbi, prep.beta, prep.ea,
                            prep.eb, prep.pos, prep.slots, prep.unk, prep.n_junctions, prep.diag, self.max_iter,
                            self.tolerances, iters, resid, status)
        else:
            kernelcache.announce(nk.newton_dense_parallel, "the native solver's batch path")
            nk.newton_dense_parallel(v, cold, prep.driven, drv, ctrl, prep.kind, prep.prm, prep.vbi, prep.beta,
                                     prep.ea, prep.eb, prep.pos, prep.slots, prep.unk, prep.n_junctions, prep.diag,
                                     self.max_iter, self.tolerances, iters, resid, status,
                                     min(batch, get_num_threads()))
        if status.any():  # CONVERGED is 0
            if (status == nk.NOT_FINITE).any():
                raise ValidationError("NativeSolver.solve: controls, inputs and clamps must be finite "
                                      f"(got NaN or infinity in sample(s) {np.flatnonzero(status == nk.NOT_FINITE)})")
            self._retry(prep, v, cold, drv, ctrl, iters, resid, status)

    def tag_memory(self, circuit: Circuit, clamped: bool, n_tags: int) -> TagMemory:
        """The live ``TagMemory`` of (circuit, phase), with room for ``n_tags`` tags; callers that solve tagged
        samples themselves (the compiled training loop) update it in place. With ``warm_start=False``, an empty
        one that is not kept (every solve starts cold)."""
        key = (id(circuit), clamped)
        memory = self._tagged.get(key)
        if memory is None or memory.circuit is not circuit or not self.warm_start:
            memory = TagMemory.empty(circuit, len(self.prepared(circuit, clamped).driven))
            if self.warm_start:
                if len(self._tagged) >= _MAX_WARM_STARTS:
                    self._tagged.clear()
                self._tagged[key] = memory
        memory.grow(n_tags)
        return memory

    def _retry(self, prep: _Prepared, v: np.ndarray, cold: np.ndarray, drv: np.ndarray, ctrl: np.ndarray,
               iters: np.ndarray, resid: np.ndarray, status: np.ndarray) -> None:
        """Solve again, one at a time and in place, the samples whose Newton did not converge (rare).

        Two ways Newton fails here, both seen in training ensembles:

        * a cycle of the step limiter: two nodes, each held only by one transistor at its threshold as a source
          follower (a few 1e-8 S) and by bulk junctions (a few 1e-12 S); started warm from a neighbouring
          solution, the limited steps throw them across their thresholds and back without end. A cold start
          or gmin stepping (``_gmin_stepping``) reaches the solution.
        * no zero to find: ngspice's junction law (``native_kernels.junction_current``) jumps by I_S e^-3 per
          junction at 3 V_T, and a node's KCL can jump across zero there. Newton then swings across 3 V_T
          forever with a residual of ~1e-15 A (ngspice fails too). ``_junction_corner`` pins the node at 3 V_T
          and checks that its KCL changes sign there.

        Tried in turn until one converges: a cold start (if the sample started warm), the junction corner (if a
        node is near 3 V_T), gmin stepping, the junction corner again. ``iters`` counts every attempt.
        """
        for b in np.flatnonzero(status == nk.NOT_CONVERGED):
            row, c, x = drv[b], ctrl[0 if len(ctrl) == 1 else b], v[b]
            spent, r, st = int(iters[b]), float(resid[b]), nk.NOT_CONVERGED
            for attempt in ("corner", "gmin", "corner") if cold[b] else ("cold", "corner", "gmin", "corner"):
                if attempt == "cold":
                    it, r_new, st = self._newton_one(prep, x, True, row, c, 0.0)
                else:
                    retry = self._gmin_stepping if attempt == "gmin" else self._junction_corner
                    it, r_new, st = retry(prep, x, row, c)
                spent += it
                r = r_new if it else r
                if st == nk.CONVERGED:
                    break
            iters[b], resid[b], status[b] = spent, r, st

    def _newton_one(self, prep: _Prepared, x: np.ndarray, cold: bool, drv: np.ndarray, ctrl: np.ndarray,
                    gshunt: float) -> tuple[int, float, int]:
        """Newton for one sample x [N] in place, on either path; drv [n_driven] (V), ctrl [E]; ``gshunt`` (S):
        an extra conductance from every unknown node to ground. Returns (iterations, residual in A, status)."""
        if prep.dense:
            return nk.newton_dense_one(x, cold, prep.driven, drv, ctrl, prep.kind, prep.prm, prep.vbi, prep.beta,
                                       prep.ea, prep.eb, prep.pos, prep.slots, prep.unk, prep.n_junctions, prep.diag,
                                       self.max_iter, self.tolerances, gshunt)
        return self._newton_sparse(prep, x, cold, drv, ctrl, gshunt)

    def _gmin_stepping(self, prep: _Prepared, x: np.ndarray, drv: np.ndarray,
                       ctrl: np.ndarray) -> tuple[int, float, int]:
        """ngspice's dynamic gmin stepping (``cktop.c``) for one sample x [N], in place: a shunt from every
        unknown node to ground, ``_GMIN_START`` at first (from a cold start: a well-conditioned, nearly linear
        problem), cut by up to ``_GMIN_FACTOR`` per stage, each stage started from the last one's solution; a
        stage that fails is started again from there with a smaller cut (down to ``_GMIN_MIN_FACTOR``), a
        fast one lets the cut grow back. Below ``_GMIN_LAST`` the last stage is the circuit itself (no shunt),
        so the answer is the circuit's own, to the usual tolerances. At most ``_GMIN_MAX_STAGES`` stages.
        """
        spent, r, st = self._newton_one(prep, x, True, drv, ctrl, _GMIN_START)
        if st != nk.CONVERGED:
            return spent, r, st
        g, factor, saved = _GMIN_START, _GMIN_FACTOR, x.copy()
        for _ in range(_GMIN_MAX_STAGES):
            g_next = g / factor if g / factor >= _GMIN_LAST else 0.0
            it, r, st = self._newton_one(prep, x, False, drv, ctrl, g_next)
            spent += it
            if st == nk.CONVERGED:
                if g_next == 0.0:
                    return spent, r, st
                g = g_next
                saved[:] = x
                if it <= self.max_iter // 4:
                    factor = min(factor * math.sqrt(factor), _GMIN_FACTOR)
            else:
                x[:] = saved
                factor = math.sqrt(math.sqrt(factor))
                if factor < _GMIN_MIN_FACTOR:
                    break
        return spent, r, nk.NOT_CONVERGED

    def _junction_corner(self, prep: _Prepared, x: np.ndarray, drv: np.ndarray,
                         ctrl: np.ndarray) -> tuple[int, float, int]:
        """The solution of one sample x [N] (in place, started from x) in which some nodes sit exactly at the
        branch point V_C = 3 V_T of the bulk junctions, where ngspice's junction current jumps up by I_S e^-3
        (``native_kernels.junction_current``): such a node's KCL has no zero, only a jump across zero (or a
        zero closer to V_C than floating point resolves, which Newton cannot settle on either).

        A set of the nodes within ``_CORNER_WINDOW`` of V_C is held at V_C and the other nodes solved by Newton,
        to the usual tolerances. Then each held node's KCL residual (net current out, increasing with its
        voltage) should be <= 0 just below V_C and >= 0 at V_C: the node is where its current changes sign,
        the only solution there is. The check: KCL must close at the other nodes, a held node's residual at V_C
        (ngspice's branch) must be below ``tol_i``, and one more Newton step of the whole circuit, in which a held
        node has the residual of the side that has the wrong sign (0 if neither), must be converged -- the usual
        tests (``native_kernels.kcl_converged``, ``step_ratio``). Sets tried in turn
        (at most ``_CORNER_TRIES``): each node alone (the 8 closest to V_C, closest first), all of them, then
        pairs (two nodes joined by a conducting transistor straddle V_C together, but only one sits on it).
        Returns (iterations, residual, status); (0, NaN, not converged) if no node is near V_C.
        """
        if prep.kind != nk.KIND_NMOS:
            return 0, math.nan, nk.NOT_CONVERGED
        if not prep.n_junctions.any():  # the junctions sit behind series resistances, inside the edges' law
            if prep.prm[nk.P_BODY_SERIES] or not (prep.prm[nk.P_RD] or prep.prm[nk.P_RS]):
                return 0, math.nan, nk.NOT_CONVERGED
            return self._series_corner(prep, x, drv, ctrl)
        corner = 3.0 * prep.prm[nk.P_VT]  # as the kernel writes it: exactly its branch point
        jump = nk.junction_current(corner, prep.prm)[0] - nk.junction_current(np.nextafter(corner, 0.0), prep.prm)[0]
        near = prep.unk[np.abs(x[prep.unk] - corner) < _CORNER_WINDOW]
        near = near[np.argsort(np.abs(x[near] - corner), kind="stable")]
        closest = near[:8]
        tries = [closest[i:i + 1] for i in range(len(closest))]
        if len(near) > 1:
            tries += [near] + [closest[[i, j]] for i in range(len(closest)) for j in range(i + 1, len(closest))]
        spent, r, start = 0, math.nan, x.copy()
        n = len(prep.unk)
        f, jac = np.empty(n), np.empty(n * n if prep.dense else len(prep.indices))
        for held in tries[:_CORNER_TRIES]:
            x[:] = start
            sub = _index_arrays(prep.circuit, prep.clamped, self.dense_limit, held)
            it, r, st = self._newton_one(sub, x, False, np.concatenate([drv, np.full(len(held), corner)]), ctrl, 0.0)
            spent += it
            if st != nk.CONVERGED:
                continue
            nk.assemble(x, ctrl, prep.kind, prep.prm, prep.vbi, prep.beta, prep.ea, prep.eb, prep.pos, prep.slots,
                        prep.unk, prep.n_junctions, prep.diag, f, jac)
            r = float(np.abs(f).max())
            k = prep.pos[held]
            at = f[k].copy()  # at V_C, where the kernel takes the deep branch
            # a held node's KCL jumps across zero at V_C (checked below), within the native floor only
            f[k] = 0.0
            closed = np.abs(at).max() < self.tol_i and nk.kcl_converged(
                x, f, ctrl, prep.kind, prep.prm, prep.vbi, prep.beta, prep.ea, prep.eb, prep.pos, prep.unk,
                prep.n_junctions, self.tolerances, np.empty(n))
            below = at - prep.n_junctions[k] * jump
            f[k] = np.where(at < 0.0, at, np.where(below > 0.0, below, 0.0))
            if not closed:
                continue
            step = np.linalg.solve(jac.reshape(n, n), -f) if prep.dense else \
                splu(sp.csc_matrix((jac, prep.indices, prep.indptr), shape=(n, n))).solve(-f)
            if nk.step_ratio(x[prep.unk], step, self.tolerances) <= 1.0:
                return spent, r, nk.CONVERGED
        x[:] = start
        return spent, r, nk.NOT_CONVERGED

    def _series_corner(self, prep: _Prepared, x: np.ndarray, drv: np.ndarray,
                       ctrl: np.ndarray) -> tuple[int, float, int]:
        """``_junction_corner`` where the junctions sit behind series resistances with the bodies grounded
        (``native_kernels.series_mos_currents``). There an internal node on the branch point pins its terminal's
        current over a window only I_S e^-3 R wide (3.6e-14 V at 73 ohm; narrower than rounding below 0.03 ohm),
        which a node held by little else steps across back and forth (seen: 3e-8 V steps at 3e-8 S).

        A node within ``_CORNER_WINDOW`` of 3 V_T (closest first, at most 8) is held at a voltage h and the other
        nodes solved by Newton; its KCL residual r(h) (net current out, increasing with h) is bisected to its sign
        change, down to ``tol_v``. Then Newton on the whole circuit from there, to the usual tolerances; if that
        still swings across, the answer is the held point itself when KCL closed at the other nodes, |r(h)| is
        below ``tol_i`` and r changes sign within ``tol_v`` of h: the node is then within ``tol_v`` of where its
        current balances, what the step test asks. Returns (iterations, residual, status)."""
        corner = 3.0 * prep.prm[nk.P_VT]
        near = prep.unk[np.abs(x[prep.unk] - corner) < _CORNER_WINDOW]
        near = near[np.argsort(np.abs(x[near] - corner), kind="stable")][:8]
        spent, r, start = 0, math.nan, x.copy()
        n = len(prep.unk)
        f, jac = np.empty(n), np.empty(n * n if prep.dense else len(prep.indices))

        def held_at(sub: _Prepared, node: int, h: float) -> float | None:
            """r(h) (A) with the other nodes solved (x in place), or None if they do not converge."""
            nonlocal spent
            it, _, st = self._newton_one(sub, x, False, np.concatenate([drv, [h]]), ctrl, 0.0)
            spent += it
            if st != nk.CONVERGED:
                return None
            nk.assemble(x, ctrl, prep.kind, prep.prm, prep.vbi, prep.beta, prep.ea, prep.eb, prep.pos, prep.slots,
                        prep.unk, prep.n_junctions, prep.diag, f, jac)
            return float(f[prep.pos[node]])

        for node in near:
            x[:] = start
            sub = _index_arrays(prep.circuit, prep.clamped, self.dense_limit, np.array([node]))
            lo, hi = corner - _CORNER_WINDOW, corner + _CORNER_WINDOW
            r_lo, r_hi = held_at(sub, node, lo), held_at(sub, node, hi)
            if r_lo is None or r_hi is None or not r_lo < 0.0 < r_hi:
                continue
            r_mid = None
            while hi - lo > self.tol_v:  # ~31 halvings of the window: what the step test asks of the held node
                mid = 0.5 * (lo + hi)
                if not lo < mid < hi:  # a tol_v below the floats' spacing here: the window cannot halve further
                    break
                r_mid = held_at(sub, node, mid)
                if r_mid is None:
                    break
                if r_mid == 0.0:
                    lo = hi = mid
                    break
                lo, hi = (mid, hi) if r_mid < 0.0 else (lo, mid)
            if r_mid is None:
                continue
            held = x.copy()
            it, r, st = self._newton_one(prep, x, False, drv, ctrl, 0.0)
            spent += it
            if st == nk.CONVERGED:
                return spent, r, st
            x[:] = held
            nk.assemble(x, ctrl, prep.kind, prep.prm, prep.vbi, prep.beta, prep.ea, prep.eb, prep.pos, prep.slots,
                        prep.unk, prep.n_junctions, prep.diag, f, jac)
            k = prep.pos[node]
            r = float(np.abs(f).max())
            at = f[k]
            f[k] = 0.0  # the held node's own balance is the bisection's
            if abs(at) < self.tol_i and nk.kcl_converged(x, f, ctrl, prep.kind, prep.prm, prep.vbi, prep.beta, prep.ea,
                                                         prep.eb, prep.pos, prep.unk, prep.n_junctions,
                                                         self.tolerances, np.empty(n)):
                return spent, r, nk.CONVERGED
        x[:] = start
        return spent, r, nk.NOT_CONVERGED

    def _newton_sparse(self, prep: _Prepared, v: np.ndarray, cold: bool, drv: np.ndarray,
                       ctrl: np.ndarray, gshunt: float = 0.0) -> tuple[int, float, int]:
        """Newton for one sample of a large network, in place on v [N]: chord steps on the last SuperLU
        factorization while the true residual falls fast enough, a new one when it does not; the convergence test
        is the dense path's (``native_kernels.newton_sample``: the step, then KCL at the true residual).
        drv [n_driven] (V); ``gshunt`` (S): an extra conductance from every unknown node to ground (0: none)."""
        v[prep.driven] = drv
        if cold:
            v[prep.unk] = drv.mean() if len(drv) else 0.0
        if not math.isfinite(drv.sum() + ctrl.sum()):
            return 0, math.nan, nk.NOT_FINITE
        lo, hi = min(drv.min(initial=0.0), 0.0), max(drv.max(initial=0.0), 0.0)
        n = len(prep.unk)
        limit, last = np.full(n, self.dv_max), np.zeros(n)
        f, total, v_old = np.empty(n), np.empty(n), np.empty_like(v)
        data = np.empty(len(prep.indices))
        fmax = math.inf
        # chord (modified) Newton: the last factorization (of this solve, or of the previous solve of this circuit
        # and phase) is reused while the true residual falls by _CHORD_CONTRACTION per step; else refactor here
        reuse = self.reuse_factorization
        lu = prep.lu if reuse and not gshunt else None
        chord_run = 0
        chord_tol = self.tolerances.copy()
        chord_tol[[nk.T_V, nk.T_RELTOL, nk.T_VNTOL]] *= _CHORD_TOLERANCE
        for it in range(1, self.max_iter + 1):
            nk.assemble(v, ctrl, prep.kind, prep.prm, prep.vbi, prep.beta, prep.ea, prep.eb, prep.pos, prep.slots,
                        prep.unk, prep.n_junctions, prep.diag, f, data)
            if gshunt:
                nk.add_shunt(v, prep.unk, prep.diag, gshunt, f, data)
            fprev, fmax = fmax, float(np.abs(f).max())
            # KCL closes outright below both floors, else it is checked if the step turns out converged
            undecided = not fmax <= min(self.options.abstol, self.tol_i)
            if undecided:
                v_old[:] = v
            chord_run += 1
            if (not reuse or lu is None or chord_run > _CHORD_MAX_RUN
                    or not (fmax < self.tol_i or fmax <= _CHORD_CONTRACTION * fprev)):
                # unknowns are already in a fill-reducing order, and the Jacobian is an M-matrix: no pivoting
                try:
                    lu = splu(sp.csc_matrix((data, prep.indices, prep.indptr), shape=(n, n)), permc_spec="NATURAL",
                              diag_pivot_thresh=0.0, options={"SymmetricMode": True})
                except RuntimeError as err:  # SuperLU: singular factor, cannot happen for an M-matrix
                    raise SimulationError(f"NativeSolver: sparse LU failed at Newton iteration {it} "
                                          f"({err})") from err
                chord_run = 0
                self.factorizations += 1
            step = lu.solve(-f)
            excess = nk.apply_step(v, step, prep.unk, lo, hi, limit, last, chord_tol if chord_run else self.tolerances)
            if math.isnan(excess):
                break
            # as the dense kernel (``native_kernels.newton_sample``)
            if excess <= 0.0 and (not undecided or nk.kcl_converged(
                    v_old, f, ctrl, prep.kind, prep.prm, prep.vbi, prep.beta, prep.ea, prep.eb, prep.pos, prep.unk,
                    prep.n_junctions, self.tolerances, total)):
                if reuse and not gshunt:
                    prep.lu = lu
                return it, fmax, nk.CONVERGED
        return self.max_iter, fmax, nk.NOT_CONVERGED

    def _failure_message(self, circuit: Circuit, converged: np.ndarray, resid: np.ndarray) -> str:
        bad = np.flatnonzero(~converged)
        worst = int(bad[np.nanargmax(np.where(np.isnan(resid[bad]), np.inf, resid[bad]))])
        shown = ", ".join(str(b) for b in bad[:10]) + (", ..." if len(bad) > 10 else "")
        return (f"NativeSolver: Newton did not converge for sample(s) {shown} of {len(converged)} after "
                f"{self.max_iter} iterations (got largest KCL residual {resid[worst]:.3g} A at sample {worst}; "
                f"circuit of {circuit.n_nodes} nodes, {circuit.n_edges} edges, device {circuit.device.name}; "
                "also retried from a cold start, with gmin stepping and at the junctions' branch point); "
                "check the device's parameters and the input voltages, raise simulator.itl1 (the iterations "
                "allowed), or use --backend ngspice")

    @staticmethod
    def _edge_controls(circuit: Circuit, controls: np.ndarray) -> np.ndarray:
        """[1, E] or [B, E] gate voltages (V) or conductances (S), C-contiguous (finiteness: see the kernels)."""
        ctrl = np.ascontiguousarray(controls.reshape(1, -1) if controls.ndim == 1 else controls)
        return np.ascontiguousarray(circuit.device.edge_controls(ctrl))

    def train_steps(self, program: StepProgram, plan: StepRun, first: int) -> tuple[int, int] | None:
        """The compiled training loop (``native_loop``) on the dense path; None on the sparse path
        (``native_loop.unsupported``)."""
        from . import native_loop  # noqa: PLC0415 (compiles on first use)
        return native_loop.run(self, program, plan, first)

    # -- per-circuit preparation -----------------------------------------------------------------
    def prepared(self, circuit: Circuit, clamped: bool) -> _Prepared:
        """The index arrays and device constants of (circuit, phase), built on first use and cached."""
        key = (id(circuit), clamped)
        prep = self._prepared.get(key)
        if prep is not None and prep.circuit is circuit:  # ids of dead circuits get reused
            return prep
        if len(self._prepared) >= _MAX_CACHED_CIRCUITS:
            self.reset()
        prep = _index_arrays(circuit, clamped, self.dense_limit)
        self._prepared[key] = prep
        return prep

    def reset(self) -> None:
        """Forget warm starts and reused factorizations: the next solves depend only on their arguments."""
        self._prepared.clear()
        self._warm.clear()
        self._tagged.clear()

    def close(self) -> None:
        self.reset()


def compile_kernels() -> None:
    """Have numba compile, and cache, the native solver's batch and sparse paths (``kernelcache``): a 4x4 lattice
    solved as ``_PARALLEL_FROM`` samples at once, then on the sparse path. ``make setup`` calls it after a short
    training (which compiles the one-sample path and the training loop), so that no first run waits for them."""
    from ..graph import Roles, assign_roles, lattice_network  # noqa: PLC0415 (the solver itself builds no graph)

    g = assign_roles(lattice_network(4, 4, periodic=True), Roles(inputs=(0, 5), rails=((10, 0.0),),
                                                                 outputs=((15, None),)))
    circuit = compile_graph(g, nmos_preset("ald1106-fit"))
    gates = np.full(circuit.n_edges, 1.5)
    inputs = np.random.default_rng(0).uniform(0, 0.45, (_PARALLEL_FROM, circuit.n_inputs))
    NativeSolver().solve(circuit, gates, inputs)
    NativeSolver(dense_limit=0).solve(circuit, gates, inputs[:2])


def _index_arrays(c: Circuit, clamped: bool, dense_limit: int, held: np.ndarray | None = None) -> _Prepared:
    """Everything the kernels need about one circuit and phase (see ``_Prepared``); ``held``: more nodes whose
    voltage is given (driven after the others)."""
    kind, prm, vbi, beta = _device_constants(c, twin=1 if clamped else 0)
    parts = [c.source_nodes] + ([c.clamp_nodes] if clamped else []) + ([] if held is None else [held])
    driven = np.concatenate(parts).astype(np.int64)
    unk = np.setdiff1d(np.arange(c.n_nodes), driven).astype(np.int64)
    n = len(unk)
    ea, eb = c.edges[:, 0].astype(np.int64), c.edges[:, 1].astype(np.int64)
    if c.body is not None:  # the kernels take a tied body at terminal a: swap the ends of edges whose body is b
        elsewhere = np.flatnonzero((c.body != ea) & (c.body != eb))
        if len(elsewhere):
            e = int(elsewhere[0])
            raise ValidationError(f"NativeSolver: edge {e} ({c.node_labels[ea[e]]} - {c.node_labels[eb[e]]}) has its "
                                  f"body at node {c.node_labels[c.body[e]]}, not at one of its ends (got "
                                  f"{len(elsewhere)} such edges); tie each body to an end of its edge, or use "
                                  "--backend ngspice")
        flip = c.body == eb
        if prm[nk.P_BODY_SERIES] and flip.any():
            e = int(np.flatnonzero(flip)[0])
            raise ValidationError(f"NativeSolver: a tied body with series resistances is solved only at the edge's "
                                  f"first node, its drain, and edge {e} ({c.node_labels[ea[e]]} - "
                                  f"{c.node_labels[eb[e]]}) has it at its second (got {int(flip.sum())} such edges); "
                                  "set device.params.rd and rs to 0, or use --backend ngspice")
        ea[flip], eb[flip] = eb[flip], ea[flip].copy()
    if kind != nk.KIND_NMOS:
        _check_every_node_is_held(c, driven)
    else:  # bulk junctions may hold a part with no driven node, but a node with no edge has none: 0 / 0 in Newton
        bare = np.setdiff1d(np.flatnonzero(np.bincount(c.edges.ravel(), minlength=c.n_nodes) == 0), driven)
        if len(bare):
            raise ValidationError(f"NativeSolver: node(s) {bare[:10].tolist()} have no edge and are not driven, so "
                                  f"their voltage is undefined (got {len(bare)} such nodes); connect them or remove "
                                  "them")
    dense = n <= dense_limit
    if not dense:
        unk = unk[_elimination_order(c, unk)]
    pos = np.full(c.n_nodes, -1, dtype=np.int64)
    pos[unk] = np.arange(n)
    degree = np.bincount(c.edges.ravel(), minlength=c.n_nodes)
    # tied bodies: the diodes join the edge's ends instead; behind series resistances the edge's law carries them
    grounded = kind == nk.KIND_NMOS and c.body is None and not (prm[nk.P_RD] or prm[nk.P_RS])
    n_junctions = (degree[unk] if grounded else np.zeros(n)).astype(float)
    ia, ib = pos[ea], pos[eb]
    rows = np.stack([ia, ia, ib, ib], axis=1)
    cols = np.stack([ia, ib, ia, ib], axis=1)
    present = (rows >= 0) & (cols >= 0)
    prep = dict(circuit=c, clamped=clamped, driven=driven, kind=kind, prm=prm, vbi=vbi, beta=beta, ea=ea, eb=eb,
                pos=pos, unk=unk, n_junctions=n_junctions, dense=dense)
    if dense:
        slots = np.where(present, rows * n + cols, -1)
        return _Prepared(**prep, slots=slots.astype(np.int64), diag=np.arange(n, dtype=np.int64) * (n + 1))
    # CSC with sorted row indices: the position of entry (r, c) is its rank among the keys c * n + r
    keys = np.concatenate([(cols * n + rows)[present], np.arange(n) * (n + 1)])
    uniq, rank = np.unique(keys, return_inverse=True)
    slots = np.full(rows.shape, -1, dtype=np.int64)
    slots[present] = rank[:present.sum()]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(uniq // n, minlength=n))])
    return _Prepared(**prep, slots=slots, diag=rank[present.sum():].astype(np.int64),
                     indices=(uniq % n).astype(np.int32), indptr=indptr.astype(np.int32))


def _check_every_node_is_held(c: Circuit, driven: np.ndarray) -> None:
    """Without bulk junctions, a part of the network with no driven node has no defined voltage."""
    adjacency = sp.coo_matrix((np.ones(c.n_edges), (c.edges[:, 0], c.edges[:, 1])), shape=(c.n_nodes, c.n_nodes))
    _, part = connected_components(adjacency, directed=False)
    floating = np.flatnonzero(~np.isin(part, part[driven]))
    if len(floating):
        raise ValidationError(f"NativeSolver: node(s) {floating[:10].tolist()} have no path through the edges to an "
                              f"input, rail or clamp, so their voltage is undefined (got {len(floating)} such nodes); "
                              "reconnect them or remove them")


def _elimination_order(c: Circuit, unk: np.ndarray) -> np.ndarray:
    """A fill-reducing order of the unknown nodes (SuperLU's minimum degree on A^T + A), computed once."""
    n = len(unk)
    pos = np.full(c.n_nodes, -1)
    pos[unk] = np.arange(n)
    a, b = pos[c.edges[:, 0]], pos[c.edges[:, 1]]
    keep = (a >= 0) & (b >= 0)
    a, b = a[keep], b[keep]
    laplacian = sp.coo_matrix((np.full(2 * len(a), -1.0), (np.concatenate([a, b]), np.concatenate([b, a]))),
                              shape=(n, n)).tocsc()
    laplacian = (laplacian + sp.diags(1.0 - np.asarray(laplacian.sum(axis=0)).ravel())).tocsc()
    return np.argsort(splu(laplacian, permc_spec="MMD_AT_PLUS_A").perm_c)


def _device_constants(c: Circuit, twin: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """(kernel kind, shared constants ``prm``, per-edge ``vbi`` [E] in V, per-edge ``beta`` [E] in A/V^2) of the
    circuit's edge device, with the transistors of the given twin (0 free, 1 clamped) under mismatch."""
    dev = c.law  # at the circuit's temperature (a netlist gives ngspice the nominal card and the temperature)
    prm = np.zeros(nk.N_PRM)
    if isinstance(dev, (ResistorParams, PotentiometerParams)):
        return nk.KIND_CONDUCTANCE, prm, np.zeros(c.n_edges), np.zeros(c.n_edges)
    if not isinstance(dev, NmosParams):
        raise ValidationError(f"NativeSolver: unknown edge device {type(dev).__name__}")
    level = card_level(dev)
    if level != 1:
        raise ValidationError(f"NativeSolver: device model card level {level} cannot be reproduced natively; "
                              "use --backend ngspice")
    if not dev.supports_mismatch and c.mismatch is not None:
        raise ValidationError(dev.mismatch_refusal("NativeSolver"))
    # a user card's values are NmosParams' fields (cards.parse_model_card), the ones the KCL check uses too
    vto, beta = c.transistor_params(twin)  # per transistor under mismatch (presets and level-1 cards)
    if vto is None:
        vto, beta = np.full(c.n_edges, dev.vto), np.full(c.n_edges, dev.beta)
    if dev.law == THREE_REGIME:  # V_T per transistor in place of vbi; gmin across each channel
        prm[[nk.P_GMIN, nk.P_JOIN, nk.P_SUBSLOPE, nk.P_XCAP]] = (
            c.gmin, dev.sub_join, math.log(10.0) / dev.sub_decade, OVERDRIVE_CAP)
        return nk.KIND_THREE_REGIME, prm, np.ascontiguousarray(vto, float), np.ascontiguousarray(beta, float)
    # rd at the drain, the edge's first node, as in the netlist's instance line
    prm[[nk.P_GAMMA, nk.P_PHI, nk.P_SQPHI, nk.P_LAMBDA, nk.P_IS, nk.P_VT, nk.P_GMIN, nk.P_RD, nk.P_RS]] = (
        dev.gamma, dev.phi, math.sqrt(dev.phi), dev.lambda_, dev.is_, c.thermal_voltage, c.gmin, dev.rd, dev.rs)
    tied, series = c.body is not None, bool(dev.rd or dev.rs)
    prm[nk.P_BODY] = 1.0 if tied and not series else 0.0  # with series resistances the law carries the junctions
    prm[nk.P_BODY_SERIES] = 1.0 if tied and series else 0.0
    nk.series_constants(prm)
    vbi = vto - dev.gamma * math.sqrt(dev.phi)
    return nk.KIND_NMOS, prm, np.ascontiguousarray(vbi, float), np.ascontiguousarray(beta, float)

