"""Circuit + controls + drive -> deterministic ngspice netlist text. No file I/O, no simulator import.

Third stage of the flow. Every identifier comes from an index (``n12`` node, ``g3`` gate node, ``M3`` transistor
(``B3``, a behavioural current source, under the three-regime law), ``IG3`` and ``RG3`` gate source, ``VI0`` input,
``VR0`` rail, ``VC0`` clamp), and every number is written as its shortest round-trip decimal, so the same input
gives the same bytes.

A batch of B data points is emitted as B copies of the network (node ``n12_b``) that share the gate
nodes and the rails: one ngspice operating point then solves the whole batch.

The gate node of each edge is explicit and held at the gate capacitor's stored voltage (in a DC operating
point a capacitor is an open circuit) by a Norton source: ``IG{e}`` drives ``vg`` amperes into ``RG{e}`` = 1 ohm,
so the node sits at exactly ``vg`` volts (the MOS gate draws no DC current). A current source, unlike a voltage
source, adds no branch equation: the matrix has one row per gate instead of two, and ngspice's per-``op``
teardown, which deletes every branch equation with a walk over the whole node list (``CKTdltNNum``), stays
linear in the circuit size instead of quadratic.

``.options klu`` selects ngspice's KLU sparse solver (ngspice >= 42 when compiled with it); ``sparse`` selects
Sparse 1.3, ngspice's default and the only solver of older versions.

A file written for people (``control_block``) ends with ``.control ... .endc``: ``ngspice -b FILE`` prints every
node voltage, and ``set strict_errorhandling`` makes a failed operating point end ngspice with exit code 1 (without
it ngspice exits 0 after "DC solution failed" and prints whatever the last iterate held).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .cards import comment_text, num
from .circuit import Circuit, has_drain
from .devices import THREE_REGIME, NmosParams, ResistorParams
from .errors import ValidationError, check_numbers, real_array, shown
from .mos import OVERDRIVE_CAP
from .temperature import NOMINAL_CELSIUS

LINEAR_SOLVERS = ("klu", "sparse")
GATE_OHMS = 1.0  # the Norton resistor of each gate source: 1 ohm makes the gate node's voltage equal the current
#: the netlist's note on the gate sources: their amperes are volts, and their power is none of the circuit's
GATE_COMMENT = ("* gates: IGe drives V_G amperes into RGe = 1 ohm, so gate node ge sits at V_G, the DC value of its "
                "capacitor; these sources' power (V_G^2 / 1 ohm) is not the network's")
_LABEL_SAFE = re.compile(r"[A-Za-z0-9_(),.:+-]")
_LATTICE_LABEL = re.compile(r"\(\d+, \d+\)")

#: node labels a netlist's header lists: the first 64 nodes and every input, rail and output node (of a larger
#: network the rest are counted)
LABELLED_NODES = 64
GATE = "g{}"  # edge e's gate node in the netlists written for people
SWEEP_GATE = "e{}.g"  # and in the sweep form, where the '.' keeps it out of the plot (``to_spice_sweep``)
CLAMP_SIEMENS = 1e9  # the sweep form's clamp conductance: a clamped node is off its target by (net current) / 1e9 S


@dataclass(frozen=True)
class SpiceOptions:
    """Simulator options written to ``.options`` (ngspice names). Tight defaults: ngspice stops when every node
    voltage and device current has settled to reltol relative, plus vntol or abstol, so the KCL residual left
    scales with the currents (~1e-12 A on the XOR lattice, more where edges carry milliamperes).

    ``linear_solver``: ``"klu"`` (ngspice >= 42 compiled with KLU) or ``"sparse"`` (Sparse 1.3, every ngspice).
    """

    reltol: float = 1e-6
    abstol: float = 1e-15
    vntol: float = 1e-9
    itl1: int = 500
    linear_solver: str = "klu"

    def __post_init__(self) -> None:
        check_numbers(self)  # a text ("1e-6") was math.isfinite's TypeError
        for name in ("reltol", "abstol", "vntol"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0 < v < 1):
                raise ValidationError(f"SpiceOptions.{name}: must be in (0, 1) (got {v!r})")
        if int(self.itl1) != self.itl1 or not 2 <= self.itl1 <= 100000:
            raise ValidationError(f"SpiceOptions.itl1: must be an integer in [2, 100000] (got {shown(self.itl1)})")
        if self.linear_solver not in LINEAR_SOLVERS:
            raise ValidationError(f"SpiceOptions.linear_solver: must be one of {', '.join(LINEAR_SOLVERS)} "
                                  f"(got {shown(self.linear_solver)})")


#: the reltol ngspice's backend solves a transistor network without mismatch at, at most (``sim.ngspice``: such a
#: network is solved as the points of a paused dc sweep, each started from the last one's solution; Newton stops
#: as soon as a step is within reltol, where a cold op's last quadratic step lands far inside it, so the sweep asks
#: for this reltol to keep its answers those of an op, within vntol: 2.4e-10 V at most on the shipped configs,
#: measured 2026-12-04)
SWEEP_RELTOL = 1e-10


def swept(c: Circuit) -> bool:
    """Whether ngspice's backend solves ``c`` as the points of a dc sweep (``sim.ngspice``: transistors without
    mismatch; it falls back to one ``op`` per solve for a circuit whose sweep fails to converge)."""
    return isinstance(c.device, NmosParams) and c.mismatch is None


def solve_options(c: Circuit, options: SpiceOptions) -> SpiceOptions:
    """The options ngspice's backend solves ``c`` with: ``options``, with reltol at most ``SWEEP_RELTOL`` for a swept
    circuit (``swept``). A looser reltol than that does not loosen such a solve (as the native solver's floors do
    not loosen it): a warm-started point stops at the first step within reltol, so its answer would depend on the
    point solved before it (the order of solves, a resumed run) by up to reltol."""
    return replace(options, reltol=min(options.reltol, SWEEP_RELTOL)) if swept(c) else options


def options_comments(c: Circuit, given: SpiceOptions) -> list[str]:
    """Comment lines of a netlist written with ``solve_options(c, given)`` that say why its reltol is not the
    config's ``simulator.reltol`` (none when it is)."""
    used = solve_options(c, given)
    if used.reltol == given.reltol:
        return []
    return [f"reltol {num(used.reltol)}, not simulator.reltol {num(given.reltol)}: ngspice's backend solves this "
            "network as warm-started points of a dc sweep, whose Newton stops at the first step within reltol; "
            f"{num(SWEEP_RELTOL)} keeps those answers within vntol of a cold op's, and a looser simulator.reltol "
            "does not loosen them (README, config reference: simulator.reltol)"]


#: netlists of many data points (a run's free.cir, the netlist and solve commands) take the first points whose
#: copies of the network stay within this many edges: every point of the small tasks, 8 of the 8x8 digits' 1,437
#: on its 1,247 edges (all of them would be 117 MB of text per phase); the ngspice solver solves a larger batch in
#: chunks of as many points (loading all 1,437 copies took 301 s, the chunks 4.4 s)
NETLIST_EDGES = 10_000


def netlist_points(n_points: int, n_edges: int) -> int:
    """How many of ``n_points`` data points a netlist of many points holds (the first ones; at least one)."""
    return min(n_points, max(1, NETLIST_EDGES // n_edges))


def node_name(i: int, b: int | None = None) -> str:
    return f"n{i}" if b is None else f"n{i}_{b}"


def to_spice(
    c: Circuit,
    controls: np.ndarray,
    inputs: np.ndarray,
    clamps: np.ndarray | None = None,
    *,
    options: SpiceOptions = SpiceOptions(),
    title: str = "network",
    control_block: bool = True,
    comments: Sequence[str] = (),
) -> str:
    """Netlist of the free (``clamps is None``) or clamped twin for B data points.

    Args:
        controls: [E] gate voltages (V), conductances (S) or integer taps, per ``c.device``.
        inputs: [B, n_in] input voltages (V); B = 1 gives plain node names ``n{i}``.
        clamps: [B, n_clamp] voltages (V) of ``c.clamp_nodes`` in the clamped twin, or None.
        control_block: append ``.control op / print .endc`` so ``ngspice -b`` prints every node voltage (and exits
            with code 1 when the operating point fails).
        comments: lines of text written as ``*`` comments after the header (what the clamp values are, why an
            option differs from the config's); text a user chose must have passed ``cards.comment_text``.
    """
    _check_text(title, comments)
    controls, inputs, clamps = _drive(c, controls, inputs, clamps)
    batch = inputs.shape[0]
    nn = _namer(c)
    twin = 0 if clamps is None else 1
    lines = _head_lines(c, ("free", "clamped")[twin], batch, options, title, twin, comments,
                        control_block=control_block)
    if isinstance(c.device, NmosParams):
        lines.append(GATE_COMMENT)
        for e, vg in enumerate(controls):
            gate = GATE.format(e)
            lines += [f"IG{e} 0 {gate} dc {num(vg / GATE_OHMS)}", f"RG{e} {gate} 0 {num(GATE_OHMS)}"]
    clamped = ", VC clamped outputs (the nudged values)" if clamps is not None else ""
    lines.append(f"* sources: VR rails (above), VI inputs{clamped}")
    for b in [None] if batch == 1 else range(batch):
        sfx = "" if b is None else f"_{b}"
        row = 0 if b is None else b
        lines += [f"VI{k}{sfx} {nn(int(node), b)} 0 dc {num(inputs[row, k])}" for k, node in enumerate(c.inputs)]
        if clamps is not None:
            for k, node in enumerate(c.clamp_nodes):
                lines.append(f"VC{k}{sfx} {nn(int(node), b)} 0 dc {num(clamps[row, k])}")
        lines += _edge_lines(c, controls, b, twin)
    if control_block:
        lines += [".control", "set numdgt=15", "set strict_errorhandling", "op", "print all", "quit 0", ".endc"]
    lines.append(".end")
    return "\n".join(lines) + "\n"


def _check_text(title: object, comments: object) -> None:
    """Refuse a ``to_spice`` title or comments that are no text (an int was a TypeError from inside the header, a
    single text of comments one comment line per character) or a comment of more than one line (a line break would
    start a netlist line of its own: ``.control``, ``shell``); the title's own line breaks become ``?`` there."""
    if not isinstance(title, str):
        raise ValidationError(f"to_spice: title must be a text (got {type(title).__name__} {shown(title)}); give a "
                              "str, e.g. title='xor'")
    if not isinstance(comments, (tuple, list)):
        raise ValidationError(f"to_spice: comments must be a list of lines of text (got {type(comments).__name__} "
                              f"{shown(comments)}); give e.g. ['trained 200 epochs']")
    bad = next((i for i, line in enumerate(comments)
                if not isinstance(line, str) or "\n" in line or "\r" in line), None)
    if bad is not None:
        raise ValidationError(f"to_spice: comments must be lines of text, one line each (got {shown(comments[bad])} "
                              f"at index {bad}); give each as a str without line breaks")


def _drive(c: Circuit, controls: object, inputs: object, clamps: object) -> tuple[np.ndarray, np.ndarray,
                                                                                np.ndarray | None]:
    """``to_spice``'s controls [E], inputs [B, n_in] and clamps [B, n_clamp] or None as float arrays, each refused
    by name as ``AbstractSolver.solve`` refuses it (a NaN was "netlist: refusing a non-finite value (got nan)",
    naming no argument; a string numpy's "could not convert string to float"), and controls the device cannot take
    (a resistor's conductance <= 0, which ngspice would take)."""
    label = c.device.control_label
    x = real_array(controls, "to_spice", "controls", f"one {label} per edge", "give a float array",
                   finite=f"give a finite {label} to every edge", axes=("edge",))
    if x.shape != (c.n_edges,):
        raise ValidationError(f"to_spice: controls must have shape ({c.n_edges},), one {label} per edge (got "
                              f"{x.shape}); the copies of a netlist share the controls: write one netlist per row of "
                              "[B, E] controls")
    c.device.check_controls(x)
    given = real_array(inputs, "to_spice", "inputs", "input voltages (V)", "give a float array",
                       finite="give a finite voltage (V) to every input", axes=("row", "column"))
    v = np.atleast_2d(given)
    if v.ndim != 2 or v.shape[1] != c.n_inputs:
        raise ValidationError(f"to_spice: inputs must have shape (B, {c.n_inputs}), one row of input voltages (V) "
                              f"per data point (got shape {given.shape}); give a [B, {c.n_inputs}] array, or one row "
                              f"of {c.n_inputs}")
    if clamps is None:
        return x, v, None
    held = np.atleast_2d(real_array(clamps, "to_spice", "clamps", "clamp voltages (V)", "give a float array",
                                    finite="give a finite voltage (V) to every clamp", axes=("row", "column")))
    if held.shape != (len(v), len(c.clamp_nodes)):
        raise ValidationError(f"to_spice: clamps must have shape ({len(v)}, {len(c.clamp_nodes)}) (got "
                              f"{held.shape}); give one row per input row, one voltage (V) per node of "
                              "circuit.clamp_nodes")
    return x, v, held


def to_spice_sweep(c: Circuit, batch: int, points: int, *, options: SpiceOptions = SpiceOptions(),
                   title: str = "network") -> str:
    """One netlist for both twins of B data points, for solvers that feed its sources from a running analysis.

    Gates ``IG{e}``, inputs ``VI{k}_b`` and clamp currents ``IC{k}_b`` are ``external`` sources: ngspice asks the
    program that loaded the netlist for their values at every matrix load. Each clamped node has a Norton clamp:
    ``IC{k}_b`` drives ``CLAMP_SIEMENS * V`` amperes into ``GC{k}_b``, a conductance from the node to ground whose
    value is switched between ``CLAMP_SIEMENS`` (clamped twin: the node sits at ``V`` less its net current over
    ``CLAMP_SIEMENS``) and exactly 0 (free twin: the clamp stamps zeros). ``.dc`` sweeps ``VSWEEP``, a source
    on its own ``RSWEEP`` loop that touches nothing else, over ``points`` points; each point is one operating point
    started from the previous one. A batch of B copies shares gates and rails as in ``to_spice``. Only transistor
    networks without mismatch (both twins are the same circuit).

    The plot keeps the network nodes and not the gates: each gate node is named ``e{e}.g`` (``SWEEP_GATE``), as
    ngspice names a node inside a subcircuit instance, and ``.save nosub`` saves every vector but those (ngspice's
    ``beginPlot`` skips any name holding a '.'). A ``.save`` listing the N network nodes would do the same, but
    ``beginPlot`` looks each listed name up by comparing it with every node name in turn, once per sweep started:
    on the 141x141 torus (39,762 edges) that took 13 s of the first solve's 18, and it grows as N^2.
    """
    if not isinstance(c.device, NmosParams) or c.mismatch is not None:
        raise ValidationError("netlist: the sweep form needs a transistor network without mismatch "
                              f"(got device {c.device.name!r}, mismatch {c.mismatch is not None})")
    if int(points) != points or not 1 <= points <= 10**9 or int(batch) != batch or batch < 1:
        raise ValidationError(f"netlist: sweep points and batch must be positive integers (got {shown(points)}, "
                              f"{shown(batch)})")
    nn = _namer(c)
    lines = _head_lines(c, "free-and-clamped", batch, options, title, twin=0)
    for e in range(c.n_edges):
        gate = SWEEP_GATE.format(e)
        lines += [f"IG{e} 0 {gate} external", f"RG{e} {gate} 0 {num(GATE_OHMS)}"]
    controls = np.zeros(c.n_edges)
    for b in [None] if batch == 1 else range(batch):
        sfx = "" if b is None else f"_{b}"
        lines += [f"VI{k}{sfx} {nn(int(node), b)} 0 external" for k, node in enumerate(c.inputs)]
        for k, node in enumerate(c.clamp_nodes):
            lines.append(f"IC{k}{sfx} 0 {nn(int(node), b)} external")
            lines.append(f"GC{k}{sfx} {nn(int(node), b)} 0 {nn(int(node), b)} 0 0")
        lines += _edge_lines(c, controls, b, twin=0, gate=SWEEP_GATE)
    lines += ["VSWEEP sweep 0 dc 0", "RSWEEP sweep 0 1", f".dc VSWEEP 0 {int(points) - 1} 1", ".save nosub", ".end"]
    return "\n".join(lines) + "\n"


def temperature_options(c: Circuit) -> list[str]:
    """The ``.options temp=`` line of a circuit away from the nominal 27 C (none at 27 C, so netlists of nominal
    circuits keep their text): ngspice then adjusts the nominal card's parameters itself (``mos1temp.c``)."""
    return [] if c.temperature == NOMINAL_CELSIUS else [f".options temp={num(c.temperature)}"]


def _namer(c: Circuit):
    """Node name in copy ``b`` of the batch (rails are shared by all copies)."""
    shared = set(c.rails.tolist())
    return lambda i, b: node_name(i) if i in shared else node_name(i, b)


def _head_lines(c: Circuit, phase: str, batch: int, options: SpiceOptions, title: str, twin: int,
                comments: Sequence[str] = (), control_block: bool = False) -> list[str]:
    """Title, comments, options, model cards and rails: everything before the sources and edges."""
    lines = [f"* metamaterial {phase} twin: {comment_text(title)}",
             f"* {c.n_nodes} nodes, {c.n_edges} edges, device {comment_text(c.device.name)}, batch {batch}"
             + (" (copy b of node nK is nK_b)" if batch > 1 else ""),
             *node_lines(c), *_orientation_lines(c), *(f"* {line}" for line in comments),
             *(["* ngspice -b FILE prints every node voltage, and exits with code 1 if the operating point fails "
                "(strict_errorhandling)"] if control_block else []),
             f".options gmin={num(c.gmin)} reltol={num(options.reltol)} abstol={num(options.abstol)} "
             f"vntol={num(options.vntol)} itl1={int(options.itl1)}",
             f".options {options.linear_solver}", *temperature_options(c)]
    dev = c.device
    if isinstance(dev, NmosParams):
        lines.append(dev.model_text())
        if c.mismatch is not None and dev.law != THREE_REGIME:  # one card per transistor: V_T shifted, K via the width
            if not dev.supports_mismatch:
                raise ValidationError(dev.mismatch_refusal("netlist"))
            for e in range(c.n_edges):
                lines.append(dev.mismatch_card(edge_model(dev, twin, e), dev.vto + float(c.mismatch.dvto[twin, e])))
    for k, (node, volts) in enumerate(zip(c.rails, c.rail_voltages)):
        lines.append(f"VR{k} {node_name(int(node))} 0 dc {num(volts)}")
    return lines


def _role_nodes(c: Circuit) -> list[int]:
    """Every input, rail and output node of ``c``."""
    return [int(n) for n in (*c.inputs, *c.rails, *c.out_pos, *c.out_neg[c.out_neg >= 0])]


def node_lines(c: Circuit) -> list[str]:
    """The header's lines naming the nodes: the labels of the first ``LABELLED_NODES`` and of every role node
    (``n3=(0,3) n5=in0``), and the outputs (``n10-n0`` is V(n10) - V(n0)): what a reader of the printed node
    voltages computes, and which nodes the clamped twin holds."""
    labelled = sorted(set(range(min(c.n_nodes, LABELLED_NODES))) | set(_role_nodes(c)))
    more = c.n_nodes - len(labelled)
    parts, last, encoded = [], -1, False
    for i in labelled:
        if i > last + 1 and last >= 0:
            parts.append("...")
        label = label_text(c.node_labels[i])
        encoded |= "%" in label
        parts.append(f"n{i}={label}")
        last = i
    outs = [f"n{p}" if n < 0 else f"n{p}-n{n}" for p, n in zip(c.out_pos.tolist(), c.out_neg.tolist())]
    shown = " ".join(outs[:32]) + (f" ... ({len(outs) - 32} more)" if len(outs) > 32 else "")
    return ["* node labels: " + " ".join(parts) + (f" ... ({more} more)" if more > 0 else "")
            + (" (other characters of a label as %XX, the hex of its UTF-8 bytes)" if encoded else ""),
            "* outputs: " + shown
            + (" (nA-nB: the differential output V(nA) - V(nB))" if (c.out_neg >= 0).any() else "")]


def label_text(label: str) -> str:
    """A node's label for a ``*`` comment line, exact and one word: letters, digits and ``_(),.:+-`` as they are,
    every other character (a space, ``#``, ``%``, a line break) as ``%XX`` per UTF-8 byte, so that no two labels
    read alike and no SPICE syntax gets through (``hub 1`` is ``hub%201``). One exception keeps a lattice's
    headers as they were: a label of the form ``(r, c)`` loses its space, so a file's node named ``(0, 3)`` reads
    as one named ``(0,3)`` would."""
    if _LATTICE_LABEL.fullmatch(label):  # a lattice's (row, col), as it has always been written
        return label.replace(" ", "")
    return escaped(label, _LABEL_SAFE)


def escaped(text: str, safe: re.Pattern[str]) -> str:
    """``text`` with each character that ``safe`` does not match (it must not match ``%``) written as ``%XX`` per
    UTF-8 byte: one word, exact, and no two texts alike (``hub 1`` is ``hub%201``, ``100%`` is ``100%25``)."""
    return "".join(ch if safe.match(ch) else "".join(f"%{b:02X}" for b in ch.encode()) for ch in text)


def _orientation_lines(c: Circuit) -> list[str]:
    """A line saying which end of an edge is the drain, for transistors whose drain and source differ."""
    dev = c.device
    if not has_drain(dev):
        return []
    return [f"* drain and source differ (rd {num(dev.rd)} ohm, rs {num(dev.rs)} ohm): each M line's first node is "
            "the drain, the edge's first node (docs/physics.md 2.1)"]


def edge_model(dev: NmosParams, twin: int, e: int) -> str:
    """The model name of edge ``e``'s own card (under mismatch) in twin ``twin`` (0 free, 1 clamped): the twins'
    names differ (``nmos_edge_f3``, ``nmos_edge_c3``), so the free and clamped decks merged into one do not
    redefine each other's cards."""
    return f"{dev.model_name}_{'fc'[twin]}{e}"


def _edge_lines(c: Circuit, controls: np.ndarray, b: int | None, twin: int, gate: str = GATE) -> list[str]:
    """One element per edge in copy ``b`` (transistor, or resistor of the control's resistance); edge e's gate is
    the node ``gate.format(e)``."""
    dev, nn, sfx = c.device, _namer(c), "" if b is None else f"_{b}"
    three = isinstance(dev, NmosParams) and dev.law == THREE_REGIME
    vto, beta = c.transistor_params(twin) if three else (None, None)
    lines = []
    for e, (a, z) in enumerate(c.edges):
        na, nz = nn(int(a), b), nn(int(z), b)
        bulk = "0" if c.body is None else nn(int(c.body[e]), b)  # the body: ground, or the node it is tied to
        if three:
            vt, k = (dev.vto, dev.beta) if vto is None else (float(vto[e]), float(beta[e]))
            lines.append(f"B{e}{sfx} {na} {nz} I={three_regime_expression(dev, na, nz, gate.format(e), vt, k, c.gmin)}")
        elif isinstance(dev, NmosParams):
            model, w = (dev.model_name, dev.w) if c.mismatch is None else \
                (edge_model(dev, twin, e), dev.w * float(c.mismatch.kscale[twin, e]))
            lines.append(f"M{e}{sfx} {na} {gate.format(e)} {nz} {bulk} {model} w={num(w)} l={num(dev.l)}")
        else:  # resistor or potentiometer: the control's resistance
            g = controls[e] if isinstance(dev, ResistorParams) else float(dev.conductance(controls[e]))
            lines.append(f"R{e}{sfx} {na} {nz} {num(1.0 / g)}")
    return lines


def three_regime_expression(dev: NmosParams, na: str, nb: str, gate: str, vto: float, beta: float,
                            gmin: float) -> str:
    """The B-source current a -> b of ``mos.three_regime_current`` between nodes ``na`` and ``nb`` with gate node
    ``gate``, threshold ``vto`` (V) and K ``beta`` (A/V^2): F(V_G - V_T - V_b) - F(V_G - V_T - V_a) + gmin (V_a - V_b),
    the same operations in the same order as the numpy law, so that the two agree to rounding."""
    join, slope = dev.sub_join, math.log(10.0) / dev.sub_decade

    def forward(node: str) -> str:
        x = f"(v({gate})-{num(vto)}-v({node}))"
        xc = f"min({x},{num(OVERDRIVE_CAP)})"
        return (f"({x}>{num(join)} ? {num(0.5 * beta)}*{xc}*{xc} : "
                f"{num(0.5 * beta * join * join)}*exp(({x}-{num(join)})*{num(slope)}))")

    return f"{forward(nb)}-{forward(na)}+{num(gmin)}*(v({na})-v({nb}))"


def node_vector_names(c: Circuit, batch: int) -> list[list[str]]:
    """ngspice vector name of every node of every copy: [B][N] (rails are shared across copies)."""
    nn = _namer(c)
    return [[nn(i, b) for i in range(c.n_nodes)] for b in ([None] if batch == 1 else range(batch))]


def parse_print_all(text: str) -> dict[str, float]:
    """Parse ``print all`` output of ``ngspice -b`` (``name = value`` lines) into a dict of floats."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_#().]+)\s*=\s*([-+0-9.eE]+)\s*$", line)
        if m:
            out[m.group(1).lower()] = float(m.group(2))
    return out
