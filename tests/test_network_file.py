"""A user's own network file (``graph.load_network``) and the roles that name its nodes (``graph.resolve_node``):
each refusal names the file, the line where there is one, and the node. A run on such a network names its nodes as
the file does in outputs.csv and ``eval`` (``runfiles.node_names``), and ``eval --inputs`` reads those names back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, cli_ok, cli_refused
from metamaterial.configfile import load_config
from metamaterial.errors import ConfigError, ValidationError
from metamaterial.experiment import build
from metamaterial.graph import Roles, load_network, resolve_node, validate_network
from metamaterial.rundir import read_inputs_csv
from metamaterial.runfiles import column_names

#: a network whose nodes are named 1..7: sorted by name, node "k" has index k - 1
NUMBERED = "1 5\n2 5\n1 6\n2 6\n5 7\n6 7\n5 3\n6 4\n7 3\n7 4\n5 6\n"


def _file(tmp_path: Path, text: str, name: str = "net.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _graphml(tmp_path: Path, nodes: list[str], edges: list[tuple[str, str]]) -> Path:
    return _file(tmp_path, '<?xml version="1.0" encoding="UTF-8"?>\n<graphml xmlns="http://graphml.graphdrawing.org/'
                 'xmlns">\n<graph edgedefault="undirected">\n' + "".join(f'<node id="{n}"/>\n' for n in nodes)
                 + "".join(f'<edge source="{a}" target="{b}"/>\n' for a, b in edges) + "</graph>\n</graphml>\n",
                 "net.graphml")


def _refusal(path: Path) -> str:
    with pytest.raises(ValidationError) as err:
        load_network(path)
    return str(err.value)


def test_a_self_loop_names_its_line_and_node(tmp_path):
    path = _file(tmp_path, "# my network\nin hub\nhub out\n\nhub hub\nout gnd\n")
    assert _refusal(path) == (f"network.file: {path}:5: the edge hub-hub joins node hub to itself (a transistor with "
                              "its drain and source on one node); join two different nodes, or remove the line")


def test_a_name_holding_a_space_is_refused_saying_where_it_can_be_given(tmp_path):
    """An edge list splits a line at spaces and commas, so no name there can hold one: the refusal said only to
    separate the names by a space or a comma, which a name holding a space cannot be, and showed the line with its
    comma already read as a space ('hub 1 a')."""
    path = _file(tmp_path, "in hub\nhub 1,a  # the hub's first leg\n")
    assert _refusal(path) == (f"network.file: {path}:2: expected two node names (got 'hub 1,a'); give one edge per "
                              "line, as two node names separated by a space or a comma (a name in an edge list cannot "
                              "hold a space, a comma or a #: give such names in a .graphml file)")
    g = load_network(_graphml(tmp_path, ["in", "hub 1", "a"], [("in", "hub 1"), ("hub 1", "a")]))
    assert sorted(label for _, label in g.nodes(data="label")) == ["a", "hub 1", "in"]


def test_a_graphml_self_loop_names_its_node(tmp_path):
    path = _graphml(tmp_path, ["in", "hub #1", "out"], [("in", "hub #1"), ("hub #1", "hub #1"), ("hub #1", "out")])
    assert _refusal(path) == (f"network.file: {path}: an edge joins node 'hub #1' to itself (a transistor with its "
                              "drain and source on one node); join two different nodes, or remove the edge")


@pytest.mark.parametrize("text", ["", "# only a comment\n\n   \n"])
def test_an_edge_list_without_edges_says_so(tmp_path, text):
    """It was read as a network of no nodes, and the first role was refused: no node named 'in_a' (its names: )."""
    path = _file(tmp_path, text)
    assert _refusal(path) == (f"network.file: {path}: the file holds no edges; list the network's edges, one a line "
                              "as two node names (a b)")


def test_a_graphml_file_without_edges_says_so(tmp_path):
    path = _graphml(tmp_path, ["a", "b", "c"], [])
    assert _refusal(path) == (f"network.file: {path}: the file holds 3 node(s) and no edge; list the network's edges, "
                              "as GraphML <edge> elements")


def test_an_unquoted_number_that_is_also_another_nodes_name_is_refused(tmp_path):
    """In a file naming its nodes 1..7 the role 1 was silently node index 1, the node named "2"."""
    path = _file(tmp_path, NUMBERED)
    g = load_network(path)
    assert [g.nodes[i]["label"] for i in range(7)] == ["1", "2", "3", "4", "5", "6", "7"]
    with pytest.raises(ValidationError) as err:
        resolve_node(g, 1, "roles.inputs[0]")
    assert str(err.value) == (f'roles.inputs[0]: 1 reads two ways in {path}: the node at index 1 (named "2") or the '
                              'node named "1" (index 0) (got 1); write "1", quoted, for the node named 1, or "2" for '
                              "the node at index 1")
    with pytest.raises(ValidationError) as err:
        resolve_node(g, 7, "roles.outputs[0]")
    assert str(err.value) == ('roles.outputs[0]: node 7 does not exist (nodes are 0..6), and an unquoted number is an '
                              'index; write "7", quoted, for the node named 7')
    assert [resolve_node(g, name, "roles") for name in ("1", "2", "7")] == [0, 1, 6]
    assert resolve_node(g, 0, "roles") == 0  # no node is named 0: the index alone


def test_numbers_naming_their_own_index_stay_unambiguous(tmp_path):
    path = _file(tmp_path, "0 1\n1 2\n2 3\n3 0\n")
    g = load_network(path)
    assert [resolve_node(g, k, "roles") for k in range(4)] == [0, 1, 2, 3]
    assert [resolve_node(g, str(k), "roles") for k in range(4)] == [0, 1, 2, 3]


def test_two_roles_on_one_node_name_it_as_the_file_does(tmp_path):
    """The message named the node by its index ("node 1 already has role"), which a file of named nodes never shows."""
    g = load_network(_file(tmp_path, "in hub\nhub out\nout gnd\n"))
    hub = resolve_node(g, "hub", "roles")
    roles = Roles(inputs=(resolve_node(g, "in", "roles"), hub), rails=((resolve_node(g, "gnd", "roles"), 0.0),),
                  outputs=((hub, None),))
    with pytest.raises(ValidationError) as err:
        validate_network(g, roles)
    assert str(err.value) == "roles.outputs[0]: node hub already has role roles.inputs[1]; give each node one role"


def test_a_self_loop_in_a_graph_built_in_python_names_its_node(tmp_path):
    g = load_network(_file(tmp_path, "in hub\nhub out\n"))
    out = resolve_node(g, "out", "roles")
    g.add_edge(out, out)
    roles = Roles(inputs=(resolve_node(g, "in", "roles"),), rails=(),
                  outputs=((resolve_node(g, "hub", "roles"), None),))
    with pytest.raises(ValidationError) as err:
        validate_network(g, roles)
    assert str(err.value) == "network: node out has an edge to itself; remove that self-loop"


# -- outputs.csv and eval name a network file's nodes as the file does ---------------------------------------
#: node names that a CSV header cannot take as they are: n1 and n3 (nodes 0 and 1) are the netlist names of other
#: nodes, "point" a column of outputs.csv, "in,b" and "hub 1" hold a comma and a space
ODD_NAMES = ["n1", "n3", "gnd", "in,b", "hub 1", "point"]
ODD_EDGES = [("n1", "hub 1"), ("n3", "hub 1"), ("hub 1", "in,b"), ("in,b", "gnd"), ("hub 1", "point"),
             ("point", "gnd"), ("n1", "in,b")]


def _odd_config(tmp_path: Path, inputs: list[str], output: dict) -> Path:
    _graphml(tmp_path, ODD_NAMES, ODD_EDGES)
    path = tmp_path / "odd.yaml"
    path.write_text(yaml.safe_dump({
        "name": "odd", "seed": 0, "network": {"kind": "file", "file": "net.graphml"},
        "roles": {"inputs": inputs, "rails": [{"node": "gnd", "volts": 0.0}], "outputs": [output]},
        "device": {"kind": "nmos", "preset": "ald1106-fit"}, "task": {"name": "xor"},
        "learning": {"epochs": 1}, "simulator": {"backend": "native"}}))
    return path


def test_outputs_csv_and_eval_name_a_network_files_nodes_as_the_file_does(tmp_path):
    """outputs.csv and eval named the nodes n0, n1, n3-n5 (indices the file never shows): now by the file's names,
    one word each (%XX for a comma or a space), and with the netlist name beside a name that is another node's
    netlist name or a column of outputs.csv; eval --inputs reads those names in any order. A CSV of the old
    names (n0,n1), where n1 is also the file's name of node 0, is refused naming the headers to write."""
    run = tmp_path / "run"
    cli_ok("train", str(_odd_config(tmp_path, ["n1", "n3"], {"pos": "in,b", "neg": "point"})), "--out", str(run),
           "--no-progress", "--no-plots")
    header = (run / "outputs.csv").read_text().splitlines()[0]
    assert header == "point,n1(n0),n3(n1),target in%2Cb-point(n5),output in%2Cb-point(n5),class,predicted"
    result = json.loads(cli_ok("eval", str(run), "--json").stdout)
    assert (result["input_names"], result["output_names"]) == (["n1(n0)", "n3(n1)"], ["in%2Cb-point(n5)"])
    assert cli_ok("eval", str(run)).stdout.splitlines()[1].split()[:3] == ["point", "n1(n0)", "n3(n1)"]
    new = tmp_path / "new.csv"
    new.write_text("n3(n1),n1(n0)\n0.2,0.1\n")
    assert json.loads(cli_ok("eval", str(run), "--inputs", str(new), "--json").stdout)["inputs"] == [[0.1, 0.2]]
    new.write_text("n0,n1\n0.1,0.2\n")
    assert cli_refused("eval", str(run), "--inputs", str(new)).endswith(
        f"{new}: the header name n1 is ambiguous: it is the netlist name of input n1 and the node name of input n0 "
        "(got n0,n1); name the columns as outputs.csv names them (n1(n0) n3(n1), in any order)\n")


def test_new_inputs_under_a_network_files_names_or_the_old_netlist_names_are_read(tmp_path):
    """A CSV written with the names outputs.csv gives now (in%2Cb), with the file's own names (in,b, quoted) or,
    as before, with the netlist names (n3 n0): each reads the same inputs."""
    setup = build(load_config(_odd_config(tmp_path, ["point", "in,b"], {"pos": "hub 1", "neg": "n1"})))
    assert column_names(setup)[:2] == (["point(n5)", "in%2Cb"], ["hub%201-n1(n0)"])
    for header in ('in%2Cb,point(n5)', '"in,b",point', "n3,n5"):
        path = _file(tmp_path, f"{header}\n0.2,0.1\n", "new.csv")
        assert read_inputs_csv(path, setup).tolist() == [[0.1, 0.2]], header
    path = _file(tmp_path, "in_b,point\n0.2,0.1\n", "new.csv")
    with pytest.raises(ConfigError, match=r"each input node once \(n5 n3, or point\(n5\) in%2Cb, or point in,b\)"):
        read_inputs_csv(path, setup)


def test_a_node_named_with_a_dash_is_not_read_as_a_differential_output(tmp_path):
    """A column ``a-b`` is the differential output V(a) - V(b): a node the file names ``a-b`` is written ``a%2Db``,
    so its single-ended output and that differential one no longer share a name."""
    _graphml(tmp_path, ["x", "y", "gnd", "a", "b", "a-b"],
             [("x", "a"), ("y", "b"), ("a", "a-b"), ("b", "a-b"), ("a-b", "gnd"), ("a", "gnd"), ("b", "gnd")])
    names = {}
    for output in ({"pos": "a-b"}, {"pos": "a", "neg": "b"}):
        path = tmp_path / "dash.yaml"
        path.write_text(yaml.safe_dump({
            "name": "dash", "seed": 0, "network": {"kind": "file", "file": "net.graphml"},
            "roles": {"inputs": ["x", "y"], "rails": [{"node": "gnd", "volts": 0.0}], "outputs": [output]},
            "device": {"kind": "nmos", "preset": "ald1106-fit"}, "task": {"name": "xor"},
            "simulator": {"backend": "native"}}))
        names[len(output)] = column_names(build(load_config(path)))[1]
    assert names == {1: ["a%2Db"], 2: ["a-b"]}


def test_a_lattice_and_a_layered_network_keep_their_netlist_names(tmp_path):
    assert column_names(build(load_config(ROOT / "configs" / "xor.yaml")))[:2] == (["n15", "n13"], ["n10-n0"])
    path = _file(tmp_path, "name: lay\nseed: 0\nnetwork: {kind: layered, n_inputs: 2, n_outputs: 1}\n"
                 "device: {kind: nmos, preset: ald1106-fit}\ntask: {name: xor}\nsimulator: {backend: native}\n",
                 "lay.yaml")
    assert column_names(build(load_config(path)))[:2] == (["n0", "n1"], ["n2"])


def test_roles_without_an_output_built_in_python_say_what_to_give(tmp_path):
    """A config cannot leave roles.outputs empty (it needs an item); roles built in Python can."""
    g = load_network(_file(tmp_path, "in hub\nhub out\n"))
    roles = Roles(inputs=(resolve_node(g, "in", "roles"),), rails=(), outputs=())
    with pytest.raises(ValidationError) as err:
        validate_network(g, roles)
    assert str(err.value) == "roles.outputs: at least one output is required (got none); give a node to read"


# -- a file that cannot be read as a network: what is wrong with it, and what to give instead ---------------------
#: (file name, its bytes, the message after "network.file: PATH: ")
UNREADABLE = {
    "xml-cut-short": ("net.graphml", b'<graphml><graph><node id="a"/>\n<edge source="a" target="b"\n</graph>',
                      "cannot parse the XML (not well-formed (invalid token): line 3, column 0); correct the XML at "
                      "that line and column, or give the network as an edge list (two node names a line)"),
    "xml-not-graphml": ("net.graphml", b'<?xml version="1.0"?><foo/>', "not a valid GraphML file (file not "
                        "successfully read as graphml); give a <graphml> document whose <graph> holds <node> and "
                        "<edge> elements, or an edge list (two node names a line)"),
    "graphml-unknown-type": ("net.graphml", b'<?xml version="1.0"?><graphml xmlns="http://graphml.graphdrawing.org/'
                             b'xmlns"><key id="d0" for="edge" attr.name="w" attr.type="complex"/><graph edgedefault='
                             b'"undirected"><node id="a"/><node id="b"/><edge source="a" target="b"><data key="d0">1'
                             b'</data></edge></graph></graphml>', "cannot read it as GraphML (KeyError: 'complex'); "
                             "give GraphML as networkx writes it (nx.write_graphml), or an edge list (two node names "
                             "a line)"),
    "edge-list-not-utf8": ("net.txt", b"a b\n\xff\xfe c\n", "not UTF-8 text (byte 0xff at offset 4); save the file as "
                           "UTF-8 text, two node names a line"),
}


@pytest.mark.parametrize("case", UNREADABLE)
def test_a_file_that_is_not_a_network_says_what_to_give(tmp_path, case):
    name, data, message = UNREADABLE[case]
    (tmp_path / name).write_bytes(data)
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({**yaml.safe_load((ROOT / "configs" / "xor.yaml").read_text()),
                                      "network": {"kind": "file", "file": name}}))
    assert cli_refused("train", str(config), "--out", str(tmp_path / "run")) == (
        f"metamaterial: {config}: network.file: {tmp_path / name}: {message}\n")


def test_a_folder_given_as_the_network_file_is_refused_saying_what_to_give(tmp_path):
    """The config refuses a folder as network.file itself; the library's ``load_network`` reads the path it is
    given."""
    assert _refusal(tmp_path) == (f"network.file: {tmp_path}: cannot read the network file (Is a directory); give "
                                  "the path of an edge list or .graphml file you can read (relative to the config's "
                                  "folder)")
