"""Network description: networkx builders, node roles and their validation.

First stage of the flow (description -> compile -> emit -> solve -> learn -> report). A network is a
plain ``nx.Graph`` whose nodes are integers 0..N-1 (lattice node (r, c) is r*cols + c, with its
``pos`` attribute kept) and whose ``graph`` dict holds the roles:

  * ``inputs``: list of node ids driven by the data;
  * ``rails``: list of (node id, volts) held constant;
  * ``outputs``: list of (pos, neg) node ids, neg ``None`` for a single-ended output.

Builders: ``lattice_network`` (the paper's torus), ``random_network``, ``layered_network`` (inputs -> optional
hidden layer -> outputs, as the third-party 8x8-digits network), ``load_network`` (edge list or GraphML).

Which end of an edge is a transistor's drain matters only when its drain and source differ (series resistances
rd != rs, ``ald1106-l1``): ``circuit.compile_graph`` then makes the end an edge's ``drain`` attribute names its
drain (a network file's first name on the edge's line, a GraphML edge's source), and otherwise the lower index
(a lattice's node r*cols + c, a layered network's earlier layer: its input, the pixel of the digits networks).
"""

from __future__ import annotations

import io
import math
import numbers
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np

from .datafiles import read_bytes, read_text
from .errors import ValidationError, flag, shown, whole_number


def lattice_network(rows: int, cols: int, periodic: bool = True) -> nx.Graph:
    """Square lattice of rows x cols nodes; periodic wraps both directions (a torus).

    Node (r, c) gets id r*cols + c and attribute ``pos=(r, c)``. The default of the paper is 4x4 periodic:
    16 nodes, 32 edges. A periodic dimension needs at least 3 nodes, or edges would double up.
    """
    rows, cols = whole_number(rows, "lattice_network", "rows"), whole_number(cols, "lattice_network", "cols")
    periodic = flag(periodic, "lattice_network", "periodic")
    if rows < 1 or cols < 1 or rows * cols < 2:
        raise ValidationError(f"network: a lattice needs at least 2 nodes (got rows={rows}, cols={cols}); give rows "
                              "and cols of 2 nodes or more together")
    if periodic and (rows == 2 or cols == 2):
        side = "network.rows" if rows == 2 else "network.cols"
        raise ValidationError(f"{side}: a periodic side of length 2 would double its edges (got {rows}x{cols}); "
                              f"give that side 3 nodes or more, or network.periodic: false")
    g = nx.grid_2d_graph(rows, cols, periodic=periodic)
    out = nx.Graph(kind="lattice", rows=rows, cols=cols, periodic=periodic)
    out.add_nodes_from((r * cols + c, {"pos": (r, c)}) for r, c in sorted(g.nodes))
    out.add_edges_from(sorted(tuple(sorted((r1 * cols + c1, r2 * cols + c2))) for (r1, c1), (r2, c2) in g.edges))
    return out


def lattice_edges(rows: int, cols: int, periodic: bool = True) -> int:
    """How many edges ``lattice_network(rows, cols, periodic)`` has, without building it."""
    inside = rows * (cols - 1) + cols * (rows - 1)
    return inside + (rows * (cols >= 3) + cols * (rows >= 3) if periodic else 0)


def layered_pairs(n_inputs: int, n_outputs: int, hidden: int = 0, direct: bool = False) -> int:
    """How many node pairs a layered network may wire (``layered_network``), without listing them."""
    return n_inputs * (hidden or n_outputs) + hidden * n_outputs + (n_inputs * n_outputs if direct else 0)


def random_network(n_nodes: int, n_edges: int, seed: int | np.random.Generator | None = None) -> nx.Graph:
    """Connected random graph of ``n_nodes`` nodes (ids 0..n_nodes-1) and ``n_edges`` edges, from n_nodes - 1 (a
    tree) to all n_nodes (n_nodes - 1) / 2 pairs: a random spanning tree plus uniformly chosen extra edges.
    ``seed``: an int >= 0, a numpy ``Generator`` (drawn from, as networkx's builders take it) or None."""
    n_nodes = whole_number(n_nodes, "random_network", "n_nodes")
    n_edges = whole_number(n_edges, "random_network", "n_edges")
    if n_nodes < 2:  # no edge fits, and "n_edges must be in [0, 0] (got 0)" would contradict itself
        raise ValidationError(f"network.n_nodes: a random network needs at least 2 nodes (got {n_nodes}); give 2 or "
                              "more")
    max_edges = n_nodes * (n_nodes - 1) // 2
    if not (n_nodes - 1 <= n_edges <= max_edges):
        raise ValidationError(f"network.n_edges: must be in [{n_nodes - 1}, {max_edges}] for {n_nodes} nodes "
                              f"(got {n_edges}); give a number in that range (a connected graph needs n_nodes - 1)")
    rng = _rng(seed, "random_network")
    order = rng.permutation(n_nodes)
    edges = {tuple(sorted((int(order[i]), int(order[rng.integers(i)])))) for i in range(1, n_nodes)}
    while len(edges) < n_edges:
        a, b = rng.choice(n_nodes, size=2, replace=False)
        edges.add(tuple(sorted((int(a), int(b)))))
    g = nx.Graph(kind="random", seed=None if isinstance(seed, np.random.Generator) else seed)
    g.add_nodes_from(range(n_nodes))
    g.add_edges_from(sorted(edges))
    return g


def layered_network(n_inputs: int, n_outputs: int, hidden: int = 0, density: float = 1.0,
                    n_edges: int | None = None, seed: int | np.random.Generator | None = None,
                    direct: bool = False) -> nx.Graph:
    """Layered network: an input layer, an optional hidden layer, an output layer; edges only between adjacent
    layers (inputs -> outputs when ``hidden`` is 0, else inputs -> hidden -> outputs), and with ``direct`` also
    inputs -> outputs beside the hidden layer (skip edges).

    Nodes are numbered layer after layer: inputs 0..n_inputs-1, then the hidden nodes, then the outputs; each
    carries ``layer`` (0 input, 1 hidden, 2 output) and ``label`` (``in3``, ``h0``, ``out7``). Of the possible
    pairs between adjacent layers a seeded uniform choice of ``n_edges`` is kept (default: ``round(density x
    pairs)``; every pair when density is 1). The graph's ``layers`` attribute lists the node ids of each layer.
    A wiring that leaves a node unconnected is an error (raise the density or change the seed).
    """
    n_inputs = whole_number(n_inputs, "layered_network", "n_inputs")
    n_outputs = whole_number(n_outputs, "layered_network", "n_outputs")
    hidden = whole_number(hidden, "layered_network", "hidden")
    n_edges = None if n_edges is None else whole_number(n_edges, "layered_network", "n_edges")
    direct = flag(direct, "layered_network", "direct")
    if n_inputs < 1 or n_outputs < 1 or hidden < 0:
        raise ValidationError(f"network: a layered network needs >= 1 input and >= 1 output node and >= 0 hidden "
                              f"(got inputs={n_inputs}, outputs={n_outputs}, hidden={hidden})")
    if isinstance(density, bool) or not isinstance(density, numbers.Real) or not 0 < density <= 1:
        raise ValidationError(f"network.density: must be in (0, 1] (got {density})")
    if direct and not hidden:
        raise ValidationError("network.direct: wires inputs to outputs beside a hidden layer, and there is none "
                              "(n_hidden 0 wires them directly already); remove it or give n_hidden")
    first = range(n_inputs)
    mid = range(n_inputs, n_inputs + hidden)
    last = range(n_inputs + hidden, n_inputs + hidden + n_outputs)
    # the possible pairs, numbered without being listed: inputs x the next layer, hidden x outputs, then (direct)
    # inputs x outputs, each block row by row
    total = layered_pairs(n_inputs, n_outputs, hidden, direct)
    keep = int(round(density * total)) if n_edges is None else n_edges
    if not 1 <= keep <= total:
        raise ValidationError(f"network.n_edges: must be in [1, {total}] for these layers (got {keep}); give a "
                              "number in that range, or a density")
    rng = _rng(seed, "layered_network")
    chosen = np.sort(rng.choice(total, size=keep, replace=False)) if keep < total else np.arange(total)
    g = nx.Graph(kind="layered", seed=None if isinstance(seed, np.random.Generator) else seed,
                 layers=[list(first), list(mid), list(last)])
    for layer, (nodes, prefix) in enumerate(((first, "in"), (mid, "h"), (last, "out"))):
        g.add_nodes_from((n, {"layer": layer, "label": f"{prefix}{k}"}) for k, n in enumerate(nodes))
    g.add_edges_from(zip(*(ends.tolist() for ends in _layered_pair(chosen, n_inputs, n_outputs, hidden))))
    lonely = [g.nodes[n]["label"] for n in g if g.degree(n) == 0]
    if lonely:
        shown = ", ".join(lonely[:6]) + (", ..." if len(lonely) > 6 else "")
        raise ValidationError(f"network: the drawn wiring leaves {len(lonely)} node(s) unconnected ({shown}); raise "
                              "network.density or network.n_edges, or change network.seed")
    return g


def _rng(seed: object, where: str) -> np.random.Generator:
    """The generator of a builder's ``seed``: an int >= 0, a numpy ``Generator`` (used as it is), or None (fresh
    entropy), as networkx's builders take it. A bool is refused: numpy would seed with True as with 1."""
    if isinstance(seed, (bool, np.bool_)):
        raise ValidationError(f"{where}: seed must be an int >= 0, a numpy Generator or None (got {shown(seed)}); give "
                              "e.g. seed=0")
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as err:  # numpy's SeedSequence: "expected non-negative integer", ...
        raise ValidationError(f"{where}: seed must be an int >= 0, a numpy Generator or None (got {shown(seed)}: "
                              f"{err}); give e.g. seed=0") from None


def _layered_pair(i: np.ndarray, n_inputs: int, n_outputs: int, hidden: int) -> tuple[np.ndarray, np.ndarray]:
    """The two nodes of pairs number ``i`` [K] of a layered network (``layered_network``'s numbering)."""
    to_next = hidden or n_outputs
    first_block, second_block = n_inputs * to_next, hidden * n_outputs
    out0 = n_inputs + hidden  # the first output node
    a, b = np.empty_like(i), np.empty_like(i)
    one = i < first_block
    a[one], b[one] = i[one] // to_next, (n_inputs if hidden else out0) + i[one] % to_next
    two = (i >= first_block) & (i < first_block + second_block)
    j = i[two] - first_block
    a[two], b[two] = n_inputs + j // n_outputs, out0 + j % n_outputs
    three = i >= first_block + second_block  # direct: inputs x outputs
    k = i[three] - first_block - second_block
    a[three], b[three] = k // n_outputs, out0 + k % n_outputs
    return a, b


def load_network(path: str | Path) -> nx.Graph:
    """Graph from an edge list (``.txt``/``.edges``/``.csv``: two node names per line) or GraphML (``.graphml``,
    names are the node ids).

    Nodes are relabelled 0..N-1 in the order of their names sorted by length, then character by character, so
    names that are numbers keep their numeric order (``2`` before ``10``) and the names 0..N-1 keep their number
    as index; the original name is kept as ``label`` (roles may name it: ``resolve_node``). Each edge keeps the
    node the file names first (an edge list line's first name, a GraphML edge's ``source``) as its ``drain``
    attribute: the drain of a transistor whose drain and source differ (``circuit.compile_graph``).
    """
    p = Path(path)
    fix = "give the path of an edge list or .graphml file you can read (relative to the config's folder)"
    try:
        if p.suffix.lower() == ".graphml":
            data = read_bytes(p, ValidationError, "network.file: ", "the network file", fix)
            raw = nx.read_graphml(io.BytesIO(data))
            drains = _graphml_sources(data)
        else:
            raw, drains = nx.Graph(), {}
            text = read_text(p, ValidationError, "network.file: ", "the network file", fix,
                             "save the file as UTF-8 text, two node names a line")
            for i, written in enumerate(text.splitlines(), 1):
                line = written.split("#")[0].replace(",", " ").strip()
                if not line:
                    continue
                parts = line.split()
                if len(parts) != 2:  # shown as written: its commas are what split it
                    raise ValidationError(f"network.file: {p}:{i}: expected two node names (got "
                                          f"{shown(written.split('#')[0].strip())}); give one edge per line, as two "
                                          "node names separated by a space or a comma (a name in an edge list cannot "
                                          "hold a space, a comma or a #: give such names in a .graphml file)")
                for name in parts:
                    _check_name(name, f"network.file: {p}:{i}")
                if parts[0] == parts[1]:
                    raise ValidationError(f"network.file: {p}:{i}: the edge {parts[0]}-{parts[1]} joins node "
                                          f"{parts[0]} to itself (a transistor with its drain and source on one node); "
                                          "join two different nodes, or remove the line")
                if raw.has_edge(parts[0], parts[1]):
                    raise ValidationError(f"network.file: {p}:{i}: the edge {parts[0]}-{parts[1]} is already on line "
                                          f"{raw.edges[parts[0], parts[1]]['line']} (a pair of nodes is one "
                                          "transistor, whichever name comes first); list each pair of nodes once")
                raw.add_edge(parts[0], parts[1], line=i)
                drains[frozenset(parts)] = parts[0]
    except ElementTree.ParseError as err:
        raise ValidationError(f"network.file: {p}: cannot parse the XML ({err}); correct the XML at that line and "
                              "column, or give the network as an edge list (two node names a line)") from err
    except nx.NetworkXError as err:
        raise ValidationError(f"network.file: {p}: not a valid GraphML file ({err}); give a <graphml> document whose "
                              "<graph> holds <node> and <edge> elements, or an edge list (two node names a line)") \
            from err
    except ValidationError:
        raise
    except Exception as err:  # what networkx's GraphML reader lets through: an unknown attr.type is a KeyError
        raise ValidationError(f"network.file: {p}: cannot read it as GraphML ({type(err).__name__}: {err}); give "
                              "GraphML as networkx writes it (nx.write_graphml), or an edge list (two node names a "
                              "line)") from err
    if raw.is_directed() or raw.is_multigraph():
        pairs = Counter(frozenset(map(str, e[:2])) for e in raw.edges)
        twice = [sorted(q) for q, n in pairs.items() if n > 1]
        if twice:
            a, b = twice[0][0], twice[0][-1]
            raise ValidationError(f"network.file: {p}: the edge {a}-{b} is listed more than once (a pair of nodes is "
                                  "one transistor, whichever is the source); list each pair of nodes once")
        raw = nx.Graph(raw)
    for name in raw.nodes:
        _check_name(str(name), f"network.file: {p}")
    if not raw.number_of_edges():
        held = f"{raw.number_of_nodes()} node(s) and no edge" if raw.number_of_nodes() else "no edges"
        raise ValidationError(f"network.file: {p}: the file holds {held}; list the network's edges, "
                              + ("as GraphML <edge> elements" if p.suffix.lower() == ".graphml" else
                                 "one a line as two node names (a b)"))
    loop = next((a for a, b in raw.edges if a == b), None)
    if loop is not None:  # a GraphML edge from a node to itself (an edge list's is refused at its line)
        raise ValidationError(f"network.file: {p}: an edge joins node {str(loop)!r} to itself (a transistor with its "
                              "drain and source on one node); join two different nodes, or remove the edge")
    names = sorted(raw.nodes, key=lambda n: (len(str(n)), str(n)))
    index = {n: i for i, n in enumerate(names)}
    g = nx.Graph(kind="file", file=str(p))
    g.add_nodes_from((i, {"label": str(n)}) for i, n in enumerate(names))
    g.add_edges_from(sorted(tuple(sorted((index[a], index[b]))) for a, b in raw.edges))
    for a, b in raw.edges:
        first = drains.get(frozenset((str(a), str(b))))
        if first is not None:
            g.edges[index[a], index[b]]["drain"] = index[first]
    return g


def _check_name(name: str, where: str) -> None:
    """Refuse a node name holding a control character (a tab, a bell): it would reach messages and netlists."""
    bad = next((ch for ch in name if ord(ch) < 32 or ord(ch) == 127), None)
    if bad is not None:
        raise ValidationError(f"{where}: the node name {name!r} holds a control character (U+{ord(bad):04X}); rename "
                              "the node without it")


def _graphml_sources(data: bytes) -> dict[frozenset, str]:
    """The ``source`` of each GraphML edge of the document ``data`` by its pair of node ids (networkx's undirected
    graph forgets it)."""
    out = {}
    for el in ElementTree.fromstring(data).iter():
        if el.tag.rsplit("}", 1)[-1] == "edge" and el.get("source") is not None and el.get("target") is not None:
            out.setdefault(frozenset((el.get("source"), el.get("target"))), el.get("source"))
    return out


def resolve_node(g: nx.Graph, ref: int | str | Sequence[int], where: str) -> int:
    """Node id for a reference given as an index, as a (row, col) pair on a lattice, or as a node's name in a
    network file (``load_network``'s ``label``), or in a layered network (``in0``, ``h0``, ``out0``), or as the
    ``label`` a graph of one's own keeps (nx.convert_node_labels_to_integers(G, label_attribute="label")): a pair
    as it is (nx.grid_2d_graph's (1, 2)), any label by its text ("20" for the number 20, as ``Circuit.node_labels``
    writes it). An index ``k`` is refused where a node at another index is named ``k``: it could mean either."""
    if isinstance(ref, str):
        # a network file's and a layered network's names, or those a graph of one's own keeps as "label", of any
        # type (numbers, pairs) by their text
        index = {str(attrs["label"]): n for n, attrs in g.nodes(data=True) if "label" in attrs}
        if not index:
            named = ("a network file or a layered network" if g.graph.get("kind") else  # a config's, or one's own
                     "a graph whose nodes keep a 'label' (nx.convert_node_labels_to_integers(G, "
                     "label_attribute='label'))")
            raise ValidationError(f"{where}: nodes are named only in {named} (got {shown(ref)}); give an index"
                                  + (" or [row, col]" if g.graph.get("kind") == "lattice" else ""))
        if ref not in index:
            names = sorted(index, key=lambda n: (len(n), n))
            first = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            source = g.graph.get("file") or ("the layered network" if g.graph.get("kind") == "layered" else
                                             "the graph's labels")
            raise ValidationError(f"{where}: no node is named {ref!r} in {source} (its names: {first}); check the "
                                  "spelling")
        return index[ref]
    if isinstance(ref, np.ndarray) and ref.ndim == 1:  # a (row, col) pair as an array
        ref = ref.tolist()
    if isinstance(ref, (list, tuple)):
        own = next((n for n, attrs in g.nodes(data=True) if attrs.get("label") == tuple(ref)), None)
        if own is not None and g.graph.get("kind") is None:  # a graph of one's own named by pairs (grid_2d_graph)
            return own
        if g.graph.get("kind") != "lattice" or len(ref) != 2:
            raise ValidationError(f"{where}, network.kind: (row, col) addressing needs a lattice network (got "
                                  f"{list(ref)} on a {g.graph.get('kind', 'given')} network); give the node's index"
                                  f"{' or name' if g.graph.get('kind') in ('file', 'layered') else ''}, or use "
                                  "network.kind: lattice")
        if not all(_is_index(i) for i in ref):  # (1.5, 2) was row 1, ("a", 2) int()'s ValueError
            raise ValidationError(f"{where}: (row, col) must be two integers (got {shown(tuple(ref))}); give e.g. "
                                  "(1, 2)")
        r, c = int(ref[0]), int(ref[1])
        rows, cols = g.graph["rows"], g.graph["cols"]
        if not (0 <= r < rows and 0 <= c < cols):
            # the lattice's size may be what changed (--set network.rows=3): named beside the role
            sizes = "".join(f", network.{k}" for k, i, n in (("rows", r, rows), ("cols", c, cols)) if i >= n)
            raise ValidationError(f"{where}{sizes}: node ({r}, {c}) is outside the {rows}x{cols} lattice; give a row "
                                  f"in 0-{rows - 1} and a col in 0-{cols - 1}")
        return r * cols + c
    if not _is_index(ref):  # 2.7 was node 2, None int()'s TypeError
        raise ValidationError(f"{where}: a node is an integer index, a name or on a lattice a (row, col) pair (got "
                              f"{type(ref).__name__} {shown(ref)}); give e.g. 0")
    node = int(ref)
    # a network file's node may be named by a number that is another node's index: which one is meant?
    same = next((n for n, attrs in g.nodes(data=True) if "label" in attrs and str(attrs["label"]) == str(node)), None)
    if same is not None and same != node:
        source = g.graph.get("file") or "the network"
        if node in g:
            raise ValidationError(f'{where}: {node} reads two ways in {source}: the node at index {node} (named '
                                  f'"{node_text(g, node)}") or the node named "{node}" (index {same}) (got {node}); '
                                  f'write "{node}", quoted, for the node named {node}, or "{node_text(g, node)}" for '
                                  f'the node at index {node}')
        raise ValidationError(f'{where}: node {node} does not exist (nodes are 0..{g.number_of_nodes() - 1}), and an '
                              f'unquoted number is an index; write "{node}", quoted, for the node named {node}')
    if node not in g:
        named = ", or name a node as a string, e.g. " + repr(g.nodes[0].get("label")) if g.graph.get("kind") == "file" \
            else ""
        raise ValidationError(f"{where}: node {node} does not exist (nodes are 0..{g.number_of_nodes() - 1}); give "
                              f"an index from 0 to {g.number_of_nodes() - 1}{named}")
    return node


def _is_index(n: object) -> bool:
    """Whether ``n`` is an integer (numpy's too), not a bool."""
    return isinstance(n, (int, np.integer)) and not isinstance(n, bool)


@dataclass(frozen=True)
class Roles:
    """Node roles by node id. ``outputs`` pairs are (pos, neg) with neg None for single-ended; each field takes any
    sequence (a list, a tuple; ``inputs`` a numpy int array too: a float array of rails would make their nodes
    floats) and is kept as tuples of Python numbers.

    ``inputs``: nodes driven by the data (one column of a task's inputs each, in this order); ``rails``: (node,
    volts) held constant; ``outputs``: what is read and trained. On a lattice node (r, c) is r * cols + c; a node of
    a network file or a layered network named ``name`` is the one whose ``label`` attribute is ``name``.
    Example: ``Roles(inputs=(15, 13), rails=((5, 0.11), (7, 0.33)), outputs=((10, 0),))``."""

    inputs: tuple[int, ...]
    rails: tuple[tuple[int, float], ...]
    outputs: tuple[tuple[int, int | None], ...]

    def __post_init__(self) -> None:
        inputs = _each(self.inputs, _node_id, "Roles.inputs: must be node ids, integers", "give e.g. (0, 3)")
        rails = _each(self.rails, _rail, "Roles.rails: must be (node, volts) pairs, node an integer and volts a "
                      "finite number", "give e.g. ((5, 0.0),)")
        outputs = _each(self.outputs, _output, "Roles.outputs: must be (pos, neg) pairs, neg None for a single-ended "
                        "output", "give e.g. ((10, None),) or ((10, 11),)")
        for name, value in (("inputs", inputs), ("rails", rails), ("outputs", outputs)):
            object.__setattr__(self, name, value)


def node_id(g: nx.Graph, ref: int | str | Sequence[int]) -> int:
    """The integer id ``Roles`` takes of the node ``ref`` names: its index, its (row, col) on a lattice, or its
    name (a network file's, a layered network's ``in0``/``h0``/``out0``, or the ``label`` a graph of one's own
    keeps after ``nx.convert_node_labels_to_integers(G, label_attribute="label")``: a pair as it is, a number by
    its text), as a config's roles name nodes. ``Roles(inputs=(node_id(g, "a"), node_id(g, "b")), ...)``."""
    return resolve_node(g, ref, "node_id")


def _each(values: object, convert: Callable[[object], object], problem: str, fix: str) -> tuple:
    """``values`` converted item by item, refused as ``problem`` (``Roles.field: must be ...``) naming the first item
    ``convert`` refuses (a TypeError or ValueError) and its index: shown() of them all would hide it past the fifth.
    What holds no items (a number) or is a text is refused whole."""
    try:
        items = None if isinstance(values, (str, bytes)) else list(values)
    except TypeError:
        items = None
    if items is None:
        raise ValidationError(f"{problem} (got {shown(values)}); {fix}")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(convert(item))
        except (TypeError, ValueError):
            raise ValidationError(f"{problem} (got {shown(item)} at index {i}); {fix}") from None
    return tuple(out)


def _rail(rail: object) -> tuple[int, float]:
    node, volts = rail
    return _node_id(node), _volts(volts)


def _output(output: object) -> tuple[int, int | None]:
    pos, neg = output
    return _node_id(pos), None if neg is None else _node_id(neg)


def _volts(v: object) -> float:
    """A rail's voltage as a finite float; NaN or infinity (which ngspice and the native solver would take and turn
    into NaN node voltages blamed on the gates) is a ValueError, a text or a bool (True was 1 V) a TypeError."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(v)
    volts = float(v)
    if not math.isfinite(volts):
        raise ValueError(v)
    return volts


def _node_id(n: object) -> int:
    """A node id given as any integer (numpy's too); anything else (a float, a string, a tuple) is a TypeError."""
    if not _is_index(n):
        raise TypeError(n)
    return int(n)


def assign_roles(g: nx.Graph, roles: Roles) -> nx.Graph:
    """Return a copy of ``g`` carrying ``roles``, after validating them against the graph (``validate_network``):
    the nodes the roles name exist, each has one role, there is a source (an input or a rail) and an output, and
    the graph is connected."""
    if not isinstance(roles, Roles):
        raise ValidationError(f"assign_roles: roles must be a Roles (got {type(roles).__name__} {shown(roles)}); give "
                              "Roles(inputs=(...), rails=((node, volts), ...), outputs=((pos, neg or None), ...))")
    validate_network(g, roles)
    out = g.copy()
    out.graph.update(inputs=list(roles.inputs), rails=[list(r) for r in roles.rails],
                     outputs=[list(o) for o in roles.outputs])
    return out


def check_graph_kind(g: nx.Graph) -> None:
    """An undirected graph of one edge per pair of nodes whose nodes are the integers 0..N-1, as the builders make:
    an edge is one transistor pair between two nodes, and nodes are indexed once, in the netlist as ``n{index}``."""
    if not isinstance(g, nx.Graph) or g.is_directed() or g.is_multigraph():
        raise ValidationError(f"network: must be an undirected networkx Graph, one edge per pair of nodes (got "
                              f"{type(g).__name__}); convert it with nx.Graph(g)")
    if set(g.nodes) != set(range(g.number_of_nodes())):
        stray = next(n for n in g.nodes if not (isinstance(n, (int, np.integer)) and 0 <= n < g.number_of_nodes()))
        raise ValidationError(f"network: node ids must be the integers 0..N-1 (got node {shown(stray)}); relabel with "
                              "nx.convert_node_labels_to_integers(g, label_attribute='label'), or build the graph "
                              "with metamaterial.graph's builders")


def validate_network(g: nx.Graph, roles: Roles) -> None:
    """Connected graph, no self-loops, roles on existing nodes, distinct roles, at least one source and output."""
    check_graph_kind(g)
    if g.number_of_nodes() < 2 or g.number_of_edges() < 1:
        raise ValidationError(f"network: needs at least 2 nodes and 1 edge (got {g.number_of_nodes()} nodes, "
                              f"{g.number_of_edges()} edges)")
    loop = next(iter(nx.selfloop_edges(g)), None)
    if loop is not None:
        raise ValidationError(f"network: node {node_text(g, loop[0])} has an edge to itself; remove that self-loop")
    if not roles.inputs and not roles.rails:
        raise ValidationError("roles: at least one input or rail (a source) is required (got neither); give "
                              "roles.inputs or roles.rails")
    if not roles.outputs:
        raise ValidationError("roles.outputs: at least one output is required (got none); give a node to read")
    claims = [(n, f"roles.inputs[{i}]") for i, n in enumerate(roles.inputs)]
    claims += [(n, f"roles.rails[{i}]") for i, (n, _) in enumerate(roles.rails)]
    claims += [(n, f"roles.outputs[{i}]{end}") for i, (pos, neg) in enumerate(roles.outputs)
               for n, end in ((pos, ""), (neg, ".neg"))]
    used: dict[int, str] = {}
    for node, what in claims:
        if node is None:  # a single-ended output's neg
            continue
        if node not in g:
            raise ValidationError(f"{what}: node {node} does not exist (nodes are 0..{g.number_of_nodes() - 1})")
        if node in used:
            raise ValidationError(f"{what}: node {node_text(g, node)} already has role {used[node]}; give each node "
                                  "one role")
        used[node] = what
    if not nx.is_connected(g):
        _refuse_disconnected(g, used)


def node_text(g: nx.Graph, n: int) -> str:
    """A node as a message names it: its name in a network file or a layered network, ``(r, c)`` on a lattice, else
    its index."""
    attrs = g.nodes[n]
    if "label" in attrs:
        return str(attrs["label"])
    return f"({attrs['pos'][0]}, {attrs['pos'][1]})" if "pos" in attrs else str(n)


def _refuse_disconnected(g: nx.Graph, roles: dict[int, str]) -> None:
    """Name what a disconnected graph cuts off: the nodes outside the part holding the most role nodes, or, when
    the roles themselves are split between parts, a role node with no path to the others."""
    parts = sorted(nx.connected_components(g), key=lambda part: (-sum(n in part for n in roles), -len(part),
                                                                  min(part)))
    main = parts[0]
    source = g.graph.get("file")
    where = f" of {source}" if source else ""
    stray = [(n, what) for n, what in roles.items() if n not in main]
    if stray:
        n, what = stray[0]
        m, other = next((m, w) for m, w in roles.items() if m in main)
        raise ValidationError(f"network: the graph{where} is in {len(parts)} disconnected parts, and {what} (node "
                              f"{node_text(g, n)}) has no path to {other} (node {node_text(g, m)}); connect the parts")
    cut = sorted(set(g) - main)
    shown = ", ".join(node_text(g, n) for n in cut[:8]) + (", ..." if len(cut) > 8 else "")
    raise ValidationError(f"network: the graph{where} is disconnected: {len(cut)} node(s) have no path to the part "
                          f"holding the inputs, rails and outputs ({shown}); connect them or remove them")
