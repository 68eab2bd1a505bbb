"""A user's own network file (``graph.load_network``) and the roles that name its nodes (``graph.resolve_node``):
each refusal names the file, the line where there is one, and the node."""

from __future__ import annotations

from pathlib import Path

import pytest

from metamaterial.errors import ValidationError
from metamaterial.graph import Roles, load_network, resolve_node, validate_network

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


def test_roles_without_an_output_built_in_python_say_what_to_give(tmp_path):
    """A config cannot leave roles.outputs empty (it needs an item); roles built in Python can."""
    g = load_network(_file(tmp_path, "in hub\nhub out\n"))
    roles = Roles(inputs=(resolve_node(g, "in", "roles"),), rails=(), outputs=())
    with pytest.raises(ValidationError) as err:
        validate_network(g, roles)
    assert str(err.value) == "roles.outputs: at least one output is required (got none); give a node to read"
