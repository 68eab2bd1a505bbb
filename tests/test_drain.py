"""Which end of an edge is its transistor's drain (docs/physics.md 2.1).

``ald1106-l1`` has 21.96 ohm on the drain and 73.21 ohm on the source, so an edge's current depends on which end is
which. An edge ran from its lower node index, and a network file's indices follow the sorted names: renaming the
nodes of one 4x4 torus file moved its node voltages by 2.25 mV on both backends. A network file's edge now takes
its drain from the file (the first name on its line, a GraphML edge's source); a lattice's and a layered network's
stay at the lower index (the layered input, the digits' pixel). Symmetric devices keep their netlists byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ROOT
from metamaterial import revisions
from metamaterial.configfile import load_config
from metamaterial.experiment import build, make_solver
from metamaterial.graph import lattice_network
from metamaterial.netlist import parse_print_all, to_spice
from metamaterial.sim.ngspice import run_batch_file

TORUS = sorted(tuple(sorted(e)) for e in lattice_network(4, 4, True).edges)
SAME_V = 1e-9  # one circuit, its nodes named otherwise: the same voltages to the solvers' tolerances


def _torus_config(folder: Path, names: dict[int, str], preset: str, backend: str, tag: str,
                  graphml: bool = False) -> Path:
    """XOR's config on the 4x4 torus as a network file whose node i is named ``names[i]``, each edge listed from
    its lower lattice index (the drain) to its higher."""
    if graphml:
        net = folder / f"{tag}.graphml"
        net.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<graphml xmlns="http://graphml.graphdrawing.org/'
                       'xmlns">\n<graph edgedefault="undirected">\n'
                       + "".join(f'<node id="{names[i]}"/>\n' for i in range(16))
                       + "".join(f'<edge source="{names[a]}" target="{names[b]}"/>\n' for a, b in TORUS)
                       + "</graph>\n</graphml>\n")
    else:
        net = folder / f"{tag}.edges"
        net.write_text("".join(f"{names[a]} {names[b]}\n" for a, b in TORUS))
    roles = {"inputs": [names[15], names[13]], "rails": [{"node": names[5], "volts": 0.11},
                                                          {"node": names[7], "volts": 0.33}],
             "outputs": [{"pos": names[10], "neg": names[0]}]}
    doc = {"name": tag, "network": {"kind": "file", "file": net.name}, "roles": roles, "device": {"preset": preset},
           "task": {"name": "xor"}, "simulator": {"backend": backend}}
    path = folder / f"{tag}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _lattice_voltages(path: Path, names: dict[int, str]) -> np.ndarray:
    """[4, 16] free node voltages of the four XOR points by lattice node, at the same gates per lattice edge."""
    setup = build(load_config(path))
    c = setup.circuit
    lattice = {name: i for i, name in names.items()}
    pairs = [tuple(sorted((lattice[c.node_labels[a]], lattice[c.node_labels[b]]))) for a, b in c.edges]
    gates = np.random.default_rng(3).uniform(0.5, 5.0, len(TORUS))
    per_edge = np.array([gates[TORUS.index(p)] for p in pairs])
    with make_solver(setup) as solver:
        v = solver.solve(c, per_edge, setup.task.inputs).voltages
    return v[:, [c.node_labels.index(names[i]) for i in range(16)]]


ORDERED = {i: f"n{i:02d}" for i in range(16)}  # names sorting as the lattice indices
REVERSED = {i: f"n{15 - i:02d}" for i in range(16)}  # names sorting the other way: every drain the higher index


@pytest.mark.parametrize("backend", ["native", "ngspice"])
def test_renaming_a_network_file_s_nodes_leaves_its_voltages(tmp_path, backend):
    one = _lattice_voltages(_torus_config(tmp_path, ORDERED, "ald1106-l1", backend, "a"), ORDERED)
    other = _lattice_voltages(_torus_config(tmp_path, REVERSED, "ald1106-l1", backend, "b"), REVERSED)
    assert np.abs(one - other).max() < SAME_V  # 2.25 mV when the drain followed the sorted names
    graphml = _lattice_voltages(_torus_config(tmp_path, REVERSED, "ald1106-l1", backend, "c", graphml=True), REVERSED)
    assert np.abs(one - graphml).max() < SAME_V  # a GraphML edge's source is its drain


def test_the_netlist_puts_the_file_s_first_name_at_the_drain_and_ngspice_agrees(tmp_path):
    """The M line's first node is the drain: the file's first name with rd != rs; the lower index (the sorted
    pair, as before) for a symmetric device, whose netlist does not depend on the file's order."""
    path = _torus_config(tmp_path, REVERSED, "ald1106-l1", "ngspice", "l1")
    setup = build(load_config(path))
    c = setup.circuit
    label = {name: i for i, name in enumerate(c.node_labels)}
    assert [tuple(e) for e in c.edges] == sorted(((label[REVERSED[a]], label[REVERSED[b]]) for a, b in TORUS),
                                                 key=lambda e: tuple(sorted(e)))
    gates = np.full(c.n_edges, 2.0)
    text = to_spice(c, gates, setup.task.inputs[1:2])
    a, b = c.edges[0]
    assert f"\nM0 n{a} g0 n{b} 0 nmos_edge " in text and a > b
    assert "\n* drain and source differ (rd 21.963918127074894 ohm, rs 73.21306042358299 ohm): each M line's first " \
           "node is the drain" in text
    deck = tmp_path / "free.cir"
    deck.write_text(text)
    printed = parse_print_all(run_batch_file(str(deck)))
    with make_solver(setup) as solver:
        solved = solver.solve(c, gates, setup.task.inputs[1:2]).voltages[0]
    assert max(abs(printed[f"n{i}"] - solved[i]) for i in range(16)) < 1e-9
    fit = [build(load_config(_torus_config(tmp_path, names, "ald1106-fit", "ngspice", tag))).circuit
           for names, tag in ((ORDERED, "fa"), (REVERSED, "fb"))]
    assert all((f.edges[:, 0] < f.edges[:, 1]).all() for f in fit)
    assert "drain and source differ" not in to_spice(fit[1], gates, setup.task.inputs[1:2])


def test_a_layered_network_s_drain_is_its_input_the_pixel():
    """As the third-party digits trainer wires it: the pixel (input layer, the lower indices) is the drain."""
    c = build(load_config(ROOT / "configs" / "digits_peer.yaml")).circuit
    assert c.device.rd != c.device.rs and np.isin(c.edges[:, 0], c.inputs).all()


def test_revision_3_touches_network_files_of_transistors_whose_ends_differ(tmp_path):
    """Their gates change with the drains (sweep results and checkpoints made before are not taken for them); no
    other config is touched."""
    l1 = load_config(_torus_config(tmp_path, ORDERED, "ald1106-l1", "native", "l1"))
    fit = load_config(_torus_config(tmp_path, ORDERED, "ald1106-fit", "native", "fit"))
    assert revisions.revision_of(l1) == 3 and revisions.revision_of(fit) == 1
    assert all(revisions.revision_of(load_config(p)) < 3 for p in sorted((ROOT / "configs").glob("*.yaml")))
