"""Compile a described network into a frozen, index-aligned ``Circuit``; the value every solver reads.

Second stage of the flow: graph (roles, device) -> ``Circuit`` -> netlist / solver.
Nodes are indexed 0..N-1 once, edges 0..E-1 once; every array below is aligned with those indices.
Also here: ``OperatingPoint`` (what a solver returns) and Kirchhoff residuals recomputed from the device law.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import networkx as nx
import numpy as np

from . import step
from .devices import EdgeDevice, EdgeParams, Mismatch, NmosParams
from .errors import ValidationError, check_indices, check_numbers, real_array, shown
from .graph import Roles, check_graph_kind, validate_network
from .mos import junction_current
from .tasks import refuse_far_volts
from .temperature import NOMINAL_CELSIUS, TEMPERATURE_RANGE, thermal_voltage

#: the largest gmin (S) a circuit takes (``simulator.gmin``): ngspice's own default is 1e-12 S, and past a
#: millisiemens the leak is no longer a convergence aid but a resistor comparable to the edges
MAX_GMIN = 1e-3


@dataclass(frozen=True, eq=False)
class Circuit:
    """A network ready to simulate.

    Attributes:
        node_labels: human name of each node, e.g. ``(2, 2)`` on a lattice; netlists use ``n{index}``.
        edges: int [E, 2], node indices (a, b) of each edge, in the order of the sorted pairs; a < b, except for
            transistors whose drain and source differ (rd != rs), where a is the drain: the end the graph's edge names
            as its ``drain`` (a network file's first name), else the lower index (``compile_graph``).
        device: the edge device shared by all edges.
        mismatch: per-transistor V_T and K deviations of the two twins, or None (identical twins).
        inputs: int [n_in], nodes driven by the data.
        rails: int [n_rail], nodes held at ``rail_voltages`` (V).
        out_pos, out_neg: int [n_out]; ``out_neg`` is -1 for a single-ended output.
        temperature: the circuit's temperature (C), in ``temperature.TEMPERATURE_RANGE``; ``device`` holds the
            parameters at the nominal 27 C (what a netlist's card says) and ``law`` the device at ``temperature``
            (``EdgeDevice.at_temperature``), which the analytic law and the native solver use.
        body: int [E], the node each edge's transistor has its body tied to (one of the edge's two ends), or None
            (every body grounded). A tied body conducts through the bulk diode of the edge's other terminal.
    """

    node_labels: tuple[str, ...]
    edges: np.ndarray
    device: EdgeParams
    inputs: np.ndarray
    rails: np.ndarray
    rail_voltages: np.ndarray
    out_pos: np.ndarray
    out_neg: np.ndarray
    gmin: float = 1e-12
    mismatch: Mismatch | None = None
    temperature: float = NOMINAL_CELSIUS
    body: np.ndarray | None = None

    def __post_init__(self) -> None:
        check_numbers(self)
        low, high = TEMPERATURE_RANGE
        if not (math.isfinite(self.temperature) and low <= self.temperature <= high):
            raise ValidationError(f"simulator.temperature: must be a temperature in C from {low:g} to {high:g} (got "
                                  f"{self.temperature!r}); give one in that range")
        if not 0 < self.gmin < MAX_GMIN:  # NaN fails too
            # ngspice took a negative gmin without a word and answered 0 V at every free node; native NaN
            raise ValidationError(f"simulator.gmin: must be a conductance in (0, {MAX_GMIN:g}) S (got "
                                  f"{shown(self.gmin)}); give one in that range (default 1e-12 S)")
        self._check_labels()
        self._check_indices()
        rails = real_array(self.rail_voltages, "Circuit.rail_voltages", "", "volts", "give each rail a voltage",
                           finite="give each rail a finite voltage", axes=("rail",))  # named by its rail, not a list
        if np.shape(rails) != np.shape(self.rails):
            raise ValidationError(f"Circuit.rail_voltages: must hold one voltage per node of Circuit.rails (got shape "
                                  f"{np.shape(rails)} for rails of shape {np.shape(self.rails)}); give each rail a "
                                  "voltage")
        # as a config's rail is: 330 for 0.33 V trained on without a word, or failed in Newton
        refuse_far_volts(np.atleast_1d(rails), "Circuit.rail_voltages",
                         "give volts (0.33, not 330 mV) in the Roles' rails", ("rail",))
        for name in ("edges", "inputs", "rails", "rail_voltages", "out_pos", "out_neg", "body"):
            # frozen to the last element: the solvers cache what they built from a circuit by its identity, so an
            # array changed in place would reach one backend and not the other; build a new circuit instead
            value = getattr(self, name)
            if value is not None:
                value = np.array(value)
                value.flags.writeable = False
                object.__setattr__(self, name, value)
        object.__setattr__(self, "_law", self.device.at_temperature(self.temperature))

    def _check_labels(self) -> None:
        """Refuse labels that are not one text per node, kept as a tuple: a netlist's header writes each as text (an
        int was a TypeError from inside ``to_spice``), and a single text was taken as one label per character."""
        labels, fix = self.node_labels, "give one str per node, e.g. tuple(str(i) for i in range(n_nodes))"
        if not isinstance(labels, (tuple, list, np.ndarray)):
            raise ValidationError(f"Circuit.node_labels: must be a tuple of texts, one per node (got "
                                  f"{type(labels).__name__} {shown(labels)}); {fix}")
        bad = next((i for i, label in enumerate(labels) if not isinstance(label, str)), None)
        if bad is not None:
            raise ValidationError(f"Circuit.node_labels: must be texts, one per node (got {shown(labels[bad])} at "
                                  f"index {bad}); {fix}")
        object.__setattr__(self, "node_labels", tuple(str(label) for label in labels))

    def _check_indices(self) -> None:
        """Refuse node indices past ``node_labels`` and arrays not aligned with the edges, in a circuit made by hand or
        by ``dataclasses.replace``: the compiled solver and step functions index with them unchecked (an output past
        the last node read memory beyond the voltages, and its clamp wrote there), numpy failed on the rest."""
        n, fix = len(self.node_labels), "give indices of node_labels' nodes (compile_graph makes them)"
        edges = np.asarray(self.edges)
        if edges.ndim != 2 or edges.shape[1:] != (2,) or not len(edges):
            raise ValidationError(f"Circuit.edges: must be node index pairs [E, 2], one edge or more (got shape "
                                  f"{edges.shape}); {fix}")
        check_indices(edges, n, "Circuit.edges: must hold node indices", fix)
        arrays = [("inputs", self.inputs), ("rails", self.rails), ("out_pos", self.out_pos), ("out_neg", self.out_neg)]
        arrays += [] if self.body is None else [("body", self.body)]
        for name, value in arrays:
            arr = np.asarray(value)
            if arr.ndim != 1:
                raise ValidationError(f"Circuit.{name}: must be a list of node indices (got shape {arr.shape}); {fix}")
            # a single-ended output's out_neg is -1
            check_indices(arr[arr != -1] if name == "out_neg" else arr, n, f"Circuit.{name}: must hold node indices",
                          fix + (", or -1 for a single-ended output" if name == "out_neg" else ""))
        for name, value, per, length in (("out_neg", self.out_neg, "output", len(self.out_pos)),
                                         ("body", self.body, "edge", len(edges))):
            if value is not None and len(value) != length:
                raise ValidationError(f"Circuit.{name}: must have one entry per {per} ({length}) (got {len(value)}); "
                                      f"{fix}")
        if self.mismatch is not None and self.mismatch.dvto.shape != (2, len(edges)):
            raise ValidationError(f"Circuit.mismatch: must be [2, E] for the {len(edges)} edges (got "
                                  f"{self.mismatch.dvto.shape}); draw it for these edges (devices.draw_mismatch)")

    @property
    def law(self) -> EdgeParams:
        return self._law

    @property
    def thermal_voltage(self) -> float:
        """kT/q (V) at the circuit's temperature, for the bulk junctions."""
        return thermal_voltage(self.temperature)

    def transistor_params(self, twin: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(vto [E], beta [E]) at the circuit's temperature of the given twin (0 free, 1 clamped) under mismatch,
        or (None, None)."""
        if self.mismatch is None or not self.device.supports_mismatch:
            return None, None
        return self.law.vto + self.mismatch.dvto[twin], self.law.beta * self.mismatch.kscale[twin]

    @property
    def n_nodes(self) -> int:
        return len(self.node_labels)

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    @property
    def n_inputs(self) -> int:
        return len(self.inputs)

    @property
    def n_outputs(self) -> int:
        return len(self.out_pos)

    @property
    def differential(self) -> np.ndarray:
        """bool [n_out]: which outputs are differential pairs."""
        return self.out_neg >= 0

    @property
    def clamp_nodes(self) -> np.ndarray:
        """int [n_clamp]: nodes held in the clamped phase: every output's pos, then the neg of differential ones."""
        return np.concatenate([self.out_pos, self.out_neg[self.out_neg >= 0]]).astype(int)

    @property
    def source_nodes(self) -> np.ndarray:
        return np.concatenate([self.inputs, self.rails]).astype(int)

    def source_voltages(self, inputs: np.ndarray) -> np.ndarray:
        """[B, n_in + n_rail] voltages of ``source_nodes`` for input rows [B, n_in]."""
        inputs = np.atleast_2d(np.asarray(inputs, float))
        rails = np.broadcast_to(self.rail_voltages, (inputs.shape[0], len(self.rails)))
        return np.concatenate([inputs, rails], axis=1)

    def output_values(self, voltages: np.ndarray) -> np.ndarray:
        """[B, n_out] output values (V) of node voltages [B, N] (or one row [N]): V(pos), or V(pos) - V(neg) for
        differential outputs."""
        v = node_voltages(self, voltages, "Circuit.output_values")
        return step.compiled().output_values(v, self.out_pos, self.out_neg)

    def output_weights(self, d_outputs: np.ndarray) -> np.ndarray:
        """[B, N] dL/dV of a loss whose gradient in the output values is ``d_outputs`` [B, n_out]: at each output's
        pos node, and with the opposite sign at its neg node (the transpose of ``output_values``)."""
        d_outputs = np.atleast_2d(d_outputs)
        out = np.zeros((len(d_outputs), self.n_nodes))
        rows = np.arange(len(d_outputs))[:, None]
        np.add.at(out, (rows, self.out_pos[None, :]), d_outputs)
        diff = self.out_neg >= 0
        np.add.at(out, (rows, self.out_neg[None, diff]), -d_outputs[:, diff])
        return out


#: where transistors' bodies go (``compile_graph``): all to ground, or each to its edge's input end
BODY_GROUND, BODY_INPUT = "ground", "input"
BODY_CHOICES = (BODY_GROUND, BODY_INPUT)


def compile_graph(g: nx.Graph, device: EdgeParams, gmin: float = 1e-12,
                  temperature: float = NOMINAL_CELSIUS, body: str = BODY_GROUND) -> Circuit:
    """Freeze a role-carrying graph (see ``graph.assign_roles``) into a ``Circuit`` at ``temperature`` (C).

    Edges are numbered in the order of their sorted node pairs (edge e's control is entry e of every control
    vector) and run from the lower index to the higher, except for a transistor whose drain and source differ
    (``has_drain``): its edge runs from the drain, the node the graph's edge names as its ``drain`` attribute (a
    network file's first name on the edge's line, a GraphML edge's source: ``graph.load_network``) or else the lower
    index (a lattice's node r*cols + c, a layered network's earlier layer).

    ``body``: ``"ground"`` (every transistor's body at 0 V) or ``"input"`` (each transistor's body tied to the end
    of its edge that is an input node: every edge needs exactly one such end; level-1 transistors only)."""
    check_graph_kind(g)
    if not isinstance(device, EdgeDevice):
        hint = f"nmos_preset({shown(device)})" if isinstance(device, str) else 'nmos_preset("ald1106-fit")'
        raise ValidationError(f"compile_graph: device must be an edge device, NmosParams, ResistorParams or "
                              f"PotentiometerParams (got {type(device).__name__} {shown(device)}); give e.g. {hint}")
    n = g.number_of_nodes()
    if "inputs" not in g.graph or "outputs" not in g.graph:
        raise ValidationError("network: roles missing; call graph.assign_roles first")
    # validated again here: a graph edited after assign_roles (an edge removed, a node cut off) compiled, and the
    # solvers failed on it (native: ZeroDivisionError; ngspice: "node vector 'n2' missing")
    validate_network(g, Roles(inputs=g.graph["inputs"], rails=g.graph.get("rails", ()), outputs=g.graph["outputs"]))
    own = next(((a, b, d["device"]) for a, b, d in g.edges(data=True) if "device" in d), None)
    if own is not None:  # every edge is ``device``: a device of one's own on an edge was ignored without a word
        a, b, value = own
        raise ValidationError(f"network: edge {a}-{b} holds a 'device' attribute (got {shown(value)}), and every edge "
                              "of a circuit is the one device compile_graph is given; remove the attribute, and give "
                              "the device to compile_graph")
    attrs = [g.nodes[i] for i in range(n)]
    labels = [f"({a['pos'][0]}, {a['pos'][1]})" if "pos" in a else str(a.get("label", i)) for i, a in enumerate(attrs)]
    edges = np.array(sorted(tuple(sorted(e)) for e in g.edges), dtype=int).reshape(-1, 2)
    if has_drain(device):  # the drain first: where a network file puts it, else the lower index
        drains = np.array([g.edges[int(a), int(b)].get("drain", a) for a, b in edges], dtype=int)
        edges = np.where((drains == edges[:, 0])[:, None], edges, edges[:, ::-1])
    inputs, rails, outputs = np.array(g.graph["inputs"], dtype=int), g.graph.get("rails", []), g.graph["outputs"]
    return Circuit(node_labels=tuple(labels), edges=edges, device=device, inputs=inputs,
                   rails=np.array([r[0] for r in rails], dtype=int),
                   rail_voltages=np.array([r[1] for r in rails], dtype=float),
                   out_pos=np.array([o[0] for o in outputs], dtype=int),
                   out_neg=np.array([-1 if o[1] is None else o[1] for o in outputs], dtype=int),
                   gmin=gmin, temperature=temperature, body=_body_nodes(edges, inputs, device, body, labels))


def has_drain(device: EdgeParams) -> bool:
    """Whether ``device``'s ends differ: a transistor whose drain and source series resistances differ (rd != rs),
    so that which end of an edge is its drain changes the current (``ald1106-l1``: 21.96 and 73.21 ohm)."""
    return isinstance(device, NmosParams) and device.rd != device.rs


def _body_nodes(edges: np.ndarray, inputs: np.ndarray, device: EdgeParams, body: str,
                labels: list[str]) -> np.ndarray | None:
    """int [E] body node of each edge's transistor for ``compile_graph``'s ``body``, or None (grounded)."""
    if body not in BODY_CHOICES:
        raise ValidationError(f"device.body: must be one of {', '.join(BODY_CHOICES)} (got {shown(body)})")
    if body == BODY_GROUND:
        return None
    if not device.bulk_junctions:  # the body terminal of a level-1 transistor, where its bulk junctions sit
        raise ValidationError(f"device.body: only level-1 transistors have a body terminal (got device "
                              f"{getattr(device, 'name', device.kind)!r}); remove device.body or use device.kind: "
                              "nmos with a level-1 preset or card")
    is_input = np.isin(edges, inputs)
    bad = np.flatnonzero(is_input.sum(axis=1) != 1)
    if len(bad):
        a, b = edges[bad[0]]
        raise ValidationError(f"device.body: input ties each body to its edge's input end, and edge {int(bad[0])} "
                              f"({labels[a]} - {labels[b]}) has {int(is_input[bad[0]].sum())} input ends (got "
                              f"{len(bad)} such edges); every edge needs exactly one input end, or use device.body: "
                              "ground")
    return np.where(is_input[:, 0], edges[:, 0], edges[:, 1]).astype(int)


def stranded_nodes(c: Circuit, cut: np.ndarray) -> list[int]:
    """Nodes (sorted) left with no path to a driven node (an input or a rail) once the edges ``cut`` are removed."""
    keep = np.setdiff1d(np.arange(c.n_edges), np.asarray(cut, int))
    g = nx.Graph()
    g.add_nodes_from(range(c.n_nodes))
    g.add_edges_from(map(tuple, c.edges[keep]))
    reached = set().union(*(nx.node_connected_component(g, int(s)) for s in c.source_nodes))
    return sorted(set(range(c.n_nodes)) - reached)


def without_edges(c: Circuit, cut: np.ndarray) -> Circuit:
    """The circuit with the given edge indices removed (damage). Refuses a cut that leaves a node with no path
    to a driven node (``stranded_nodes``): its voltage would be set by leakage alone. The remaining edges keep their
    order, so the controls of the damaged circuit are ``np.delete(controls, cut)``."""
    given = np.asarray(cut)
    # an index past the end was dropped without a word, -1 and 0.7 cut edges nobody named
    check_indices(given, c.n_edges, "without_edges: cut must hold edge indices",
                   "give the indices of the edges to remove")
    cut = given.astype(int)
    keep = np.setdiff1d(np.arange(c.n_edges), cut)
    stranded = stranded_nodes(c, cut)
    if stranded:
        raise ValidationError(f"without_edges: cutting edges {sorted(cut.tolist())} leaves nodes "
                              f"{stranded[:10]} with no path to a source; cut fewer or other edges")
    mm = None if c.mismatch is None else Mismatch(c.mismatch.dvto[:, keep], c.mismatch.kscale[:, keep])
    return replace(c, edges=c.edges[keep], mismatch=mm, body=None if c.body is None else c.body[keep])


@dataclass(frozen=True)
class OperatingPoint:
    """Node voltages of a batch of DC solves: ``voltages`` [B, N] in V; ``iterations`` [B] where known."""

    voltages: np.ndarray
    iterations: np.ndarray | None = None


def node_voltages(c: Circuit, voltages: np.ndarray, where: str, name: str = "voltages") -> np.ndarray:
    """``voltages`` as a float array [B, N] of node voltages of ``c`` (a row [N] is one point), refusing, named
    ``where`` and ``name``, what is none: an ``OperatingPoint`` itself, no real numbers, the wrong number of nodes
    (which the compiled step functions would read past, without a word). NaN passes."""
    if isinstance(voltages, OperatingPoint):
        raise ValidationError(f"{where}: {name} must be node voltages [B, {c.n_nodes}] (V) (got the "
                              f"{type(voltages).__name__} itself); pass its .voltages")
    v = np.atleast_2d(real_array(voltages, where, name, f"node voltages [B, {c.n_nodes}] (V)",
                                 "pass a solver's OperatingPoint.voltages", axes=("row", "node")))
    if v.ndim != 2 or v.shape[1] != c.n_nodes:
        raise ValidationError(f"{where}: {name} must have {c.n_nodes} columns (got shape {np.shape(voltages)}); "
                              "pass node voltages [B, N] of this circuit (a solver's OperatingPoint.voltages)")
    return v


def check_state(c: Circuit, controls: np.ndarray, voltages: np.ndarray, twin: int | None,
                where: str) -> tuple[np.ndarray, np.ndarray]:
    """(controls, voltages [B, N]) as float arrays, refusing, named ``where``, what no node voltages of ``c`` are (an
    ``OperatingPoint`` itself, no real numbers, the wrong number of nodes), controls of no real numbers or of neither
    [E] nor [B, E], and a twin that is neither 0 nor 1: numpy would fail on them with an index or broadcast error.
    Controls the solver refuses are refused as it refuses them (not finite, or ``device.check_controls``: a NaN gate
    gave a transistor 0 A, tap 200 of 100 a current of amperes). NaN voltages pass (a failed point's)."""
    v = node_voltages(c, voltages, where)
    x = real_array(controls, where, "controls", f"one {c.device.control_label} per edge",
                   "pass the controls given to the solver", axes=("row", "edge"),
                   finite=f"give a finite {c.device.control_label} to every edge")
    if x.shape[-1:] != (c.n_edges,) or x.ndim > 2 or (x.ndim == 2 and x.shape[0] not in (1, len(v))):
        raise ValidationError(f"{where}: controls must have shape ({c.n_edges},) or ({len(v)}, {c.n_edges}) (got "
                              f"{x.shape}); give one control ({c.device.control_unit}) per edge, as to the solver")
    if twin is not None and (isinstance(twin, bool) or not isinstance(twin, (int, np.integer)) or twin not in (0, 1)):
        raise ValidationError(f"{where}: twin must be 0 (free) or 1 (clamped) (got {shown(twin)})")
    c.device.check_controls(x)
    return x, v


def edge_currents(c: Circuit, controls: np.ndarray, voltages: np.ndarray, twin: int = 0) -> np.ndarray:
    """[B, E] current (A) through each edge from node a to node b at the given node voltages [B, N] (behind series
    resistances with a grounded body: the current into b, ``edge_leaks`` saying what else leaves a).

    ``controls`` is [E] or [B, E]: gate voltages (V), conductances (S) or taps, per ``c.device``;
    ``twin`` (0 free, 1 clamped) picks the transistors' mismatch. An edge at a node whose voltage is NaN (a failed
    point's) carries NaN.
    """
    controls, voltages = check_state(c, controls, voltages, twin, "edge_currents")
    return edge_leaks(c, controls, voltages, twin)[0]


def edge_leaks(c: Circuit, controls: np.ndarray, voltages: np.ndarray,
               twin: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """(``edge_currents``, leak): the leak [B, E] (A) is the current that leaves each edge's node a into a grounded
    body through the bulk junctions behind series resistances (``mos.series_current``), which ngspice puts at
    the internal nodes; None where the edges have no such current (their junctions, if any, are ``_junctions``)."""
    if c.body is not None and (c.device.rd or c.device.rs) and (c.body != c.edges[:, 0]).any():
        e = int(np.flatnonzero(c.body != c.edges[:, 0])[0])
        raise ValidationError(f"edge {e} ({c.node_labels[c.edges[e, 0]]} - {c.node_labels[c.edges[e, 1]]}): a body "
                              "behind series resistances is modelled here only at the edge's first node, its drain; "
                              "set device.params.rd and rs to 0 for its currents (power, Kirchhoff check)")
    v = np.atleast_2d(voltages)
    va, vb = v[:, c.edges[:, 0]], v[:, c.edges[:, 1]]
    ctrl = np.broadcast_to(np.asarray(controls, float), va.shape)
    vbody = None if c.body is None else v[:, c.body]
    if isinstance(c.law, NmosParams):
        law = c.law.channel_current(va, vb, ctrl, *c.transistor_params(twin), c.gmin, vbody, c.thermal_voltage)
        current, leak = law.current, None if law.leak is None else law.leak.current
    else:
        current, leak = c.law.edge_current(va, vb, ctrl, *c.transistor_params(twin), c.gmin, vbody,
                                           c.thermal_voltage), None
    # a node voltage that is not known (a failed point's NaN) gives its edges no current: the law's comparisons
    # with NaN took some of them for cut off, 0 A
    unknown = np.isnan(va) | np.isnan(vb) | (False if vbody is None else np.isnan(np.broadcast_to(vbody, va.shape)))
    if unknown.any():
        current = np.where(unknown, np.nan, current)
        leak = None if leak is None else np.where(unknown, np.nan, leak)
    return current, leak


def kcl_residuals(c: Circuit, controls: np.ndarray, voltages: np.ndarray, fixed: np.ndarray | None = None,
                  twin: int | None = None) -> np.ndarray:
    """[B, N] net current (A) leaving each node through the edges and bulk junctions; NaN at driven nodes.

    ``fixed`` lists extra driven node indices (the clamped outputs); sources are always excluded.
    At a correct DC operating point every finite entry is ~0 (Kirchhoff's current law). ``twin`` defaults to
    the clamped twin when ``fixed`` is given, else the free twin.
    """
    controls, v = check_state(c, controls, voltages, twin, "kcl_residuals")
    fixed = None if fixed is None else np.asarray(fixed)
    if fixed is not None:
        check_indices(fixed, c.n_nodes, "kcl_residuals: fixed must hold node indices",
                       "give the clamped nodes (circuit.clamp_nodes)")
    i_edge, leak = edge_leaks(c, controls, v, twin=(0 if fixed is None else 1) if twin is None else twin)
    out = np.zeros_like(v)
    np.add.at(out.T, c.edges[:, 0], i_edge.T if leak is None else (i_edge + leak).T)
    np.add.at(out.T, c.edges[:, 1], -i_edge.T)
    for node, body, i_j, _ in _junctions(c, v):
        np.add.at(out.T, node, i_j.T)
        if body is not None:
            np.add.at(out.T, body, -i_j.T)
    driven = np.concatenate([c.source_nodes, [] if fixed is None else fixed.astype(int).ravel()]).astype(int)
    out[:, driven] = np.nan
    return out


def _junctions(c: Circuit, v: np.ndarray) -> list[tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]]:
    """The bulk junctions outside the edges' own law, at node voltages v [B, N]: per group (terminal nodes [k],
    their bodies [k] or None for ground, current out of each terminal into its body [B, k] (A), its derivative in
    the terminal's voltage [B, k] (S; minus that in the body's))."""
    if not c.device.bulk_junctions or c.device.rd or c.device.rs:
        return []  # behind series resistances they sit inside the edge's own law (``mos.series_current``)
    if c.body is None:
        # each transistor has a bulk diode at each of its two terminals (free twin: one transistor per edge)
        degree = np.bincount(c.edges.ravel(), minlength=c.n_nodes)
        i_j, g_j = junction_current(c.law, v, c.gmin, c.thermal_voltage)
        return [(np.arange(c.n_nodes), None, i_j * degree, g_j * degree)]
    # the diodes conduct from each terminal into the tied body (its own: 0 V, 0 A)
    return [(c.edges[:, end], c.body, *junction_current(c.law, v[:, c.edges[:, end]] - v[:, c.body], c.gmin,
                                                         c.thermal_voltage)) for end in (0, 1)]


#: relative step of the central differences in ``control_gradient``: node voltages move by this many volts, and
#: each control by this fraction of its magnitude (gates ~1 V: 1 uV; conductances ~1e-4 S: 1e-10 S); the
#: truncation error is of order step^2 and the rounding error of order 1e-16 / step, both far below 1e-6 relative
GRADIENT_STEP = 1e-6


def control_gradient(c: Circuit, controls: np.ndarray, voltages: np.ndarray, d_loss: np.ndarray) -> np.ndarray:
    """[B, E] each point's dL/dx_e: how a loss L of the free state's node voltages changes with each edge's control,
    the node voltages following by Kirchhoff's law (the solver's free operating point), by the adjoint method.

    With r(V, x) the net currents leaving the free nodes (``kcl_residuals``: edges and bulk junctions) and J = dr/dV
    there, the free state moves as dV = -J^-1 (dr/dx) dx, so dL/dx_e = -lambda . dr/dx_e with J^T lambda = dL/dV.
    Edge e's control moves only its own current I_e (a -> b), so dr/dx_e is +dI_e/dx_e at a and -dI_e/dx_e at b:
    dL/dx_e = -(lambda_a - lambda_b) dI_e/dx_e (behind series resistances to a grounded body, less lambda_a times the
    derivative of the edge's leak, ``edge_leaks``, which leaves a alone). Each edge's derivatives in V_a, V_b and x_e
    are the transistor law's own (``channel_current``) where the bodies are grounded, else central differences of the
    circuit's law (``GRADIENT_STEP``; a body tied to an end moves with it), so every device, body and mismatch is
    covered; the junctions' derivatives are their law's. J is dense per point: meant for up to a few hundred free
    nodes (hidden and output nodes).

    Args:
        controls: [E] or [B, E], as given to the solver (the free twin's transistors).
        voltages: [B, N] the free operating point at those controls (V).
        d_loss: [B, N] dL/dV (per V); entries at driven nodes are ignored.
    """
    v = np.atleast_2d(np.asarray(voltages, float))
    d_loss = np.atleast_2d(np.asarray(d_loss, float))
    n_points, h = v.shape[0], GRADIENT_STEP
    x = np.broadcast_to(np.asarray(controls, float), (n_points, c.n_edges))
    a, b = c.edges[:, 0], c.edges[:, 1]
    vto, beta = c.transistor_params(0)

    def current(ctrl, da=0.0, db=0.0):
        """[B, E] edge currents at controls ``ctrl`` with every end a moved by da and end b by db (V); a tied
        body moves with the end it is tied to."""
        body = None if c.body is None else v[:, c.body] + np.where(c.body == a, da, db)
        return c.law.edge_current(v[:, a] + da, v[:, b] + db, ctrl, vto, beta, c.gmin, body, c.thermal_voltage)

    leak = None  # the series law's junctions to a grounded body: a current out of a alone (``mos.series_current``)
    if c.body is None and isinstance(c.law, NmosParams):  # a transistor law gives its own derivatives
        own = c.law.channel_current(v[:, a], v[:, b], x, vto, beta, c.gmin, None, c.thermal_voltage)
        slopes, d_current, leak = (own.d_va, own.d_vb), own.d_vg, own.leak
    else:
        slopes = ((current(x, da=h) - current(x, da=-h)) / (2 * h), (current(x, db=h) - current(x, db=-h)) / (2 * h))
        dx = h * np.maximum(np.abs(x), 1e-300)
        d_current = (current(x + dx) - current(x - dx)) / (2 * dx)
    free = np.setdiff1d(np.arange(c.n_nodes), c.source_nodes)
    column = np.full(c.n_nodes, -1)
    column[free] = np.arange(len(free))
    jac = np.zeros((n_points, len(free) + 1, len(free) + 1))  # the last row and column collect driven nodes
    for row, sign in ((a, 1.0), (b, -1.0)):  # the current leaves a and enters b
        for col, slope in ((a, slopes[0]), (b, slopes[1])):
            np.add.at(jac, (slice(None), column[row], column[col]), sign * slope)
    if leak is not None:
        for col, slope in ((a, leak.d_va), (b, leak.d_vb)):
            np.add.at(jac, (slice(None), column[a], column[col]), slope)
    for node, tied, _, g_j in _junctions(c, v):
        np.add.at(jac, (slice(None), column[node], column[node]), g_j)
        if tied is not None:
            for row, col, sign in ((node, tied, -1.0), (tied, node, -1.0), (tied, tied, 1.0)):
                np.add.at(jac, (slice(None), column[row], column[col]), sign * g_j)
    jac = jac[:, :-1, :-1]
    lam = np.zeros((n_points, c.n_nodes))
    lam[:, free] = np.linalg.solve(np.swapaxes(jac, 1, 2), d_loss[:, free, None])[..., 0]
    grad = -(lam[:, a] - lam[:, b]) * d_current
    return grad if leak is None else grad - lam[:, a] * leak.d_vg
