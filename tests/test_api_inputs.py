"""What a notebook hands the library by mistake: arrays of the wrong shape or kind, NaN, a graph for a circuit, a
string for a number. Each is refused where it enters, on both backends alike, as a ``MetamaterialError`` that is
also the matching built-in and says what was given and what to give; correct calls answer as before."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

import metamaterial as mm
from conftest import ROOT
from metamaterial.errors import ValidationError
from metamaterial.graph import Roles

ROWS = COLS = 3  # a small open lattice: node r * COLS + c
GATES = 1.5  # V, every edge's gate
INPUTS = [[0.1, 0.2]]  # V, one data point
ROLES = Roles(inputs=(0, 2), rails=((8, 0.0),), outputs=((4, None),))


def _graph():
    return mm.assign_roles(mm.lattice_network(ROWS, COLS, periodic=False), ROLES)


def _circuit(device=None) -> mm.Circuit:
    return mm.compile_graph(_graph(), device or mm.nmos_preset("ald1106-fit"))


@pytest.fixture(params=["native", "ngspice"])
def solver(request):
    """Each backend: the refusals live in the one interface both implement."""
    return mm.NativeSolver() if request.param == "native" else request.getfixturevalue("ngspice")


def _gates(c: mm.Circuit) -> np.ndarray:
    return np.full(c.n_edges, GATES)


@pytest.mark.parametrize("change, says", [
    (lambda g: (np.where(np.arange(len(g)) == 3, np.nan, g), INPUTS, None),
     r"controls must be finite \(got nan at edge 3\); give a finite gate voltage \(V\) to every edge"),
    (lambda g: (np.tile(g, (2, 1)), [[0.1, 0.2], [0.1, np.inf]], None),
     r"inputs must be finite \(got inf at row 1, column 1\); give a finite voltage \(V\) to every input"),
    (lambda g: (g, INPUTS, [[-np.inf]]), r"clamps must be finite \(got -inf at row 0, column 0\)"),
])
def test_non_finite_values_are_refused_by_solve_naming_the_argument(solver, change, says):
    """native refused them after its Newton ran ('controls, inputs and clamps must be finite ... in sample(s) [0]',
    not saying which); ngspice deep in its netlist writer ('netlist: refusing a non-finite value (got nan)')."""
    c = _circuit()
    controls, inputs, clamps = change(_gates(c))
    with pytest.raises(ValidationError, match=rf"^{type(solver).__name__}.solve: {says}"):
        solver.solve(c, controls, inputs, clamps)


@pytest.mark.parametrize("controls, inputs, says", [
    (["a"] * 12, INPUTS, r"controls must be real numbers, one gate voltage \(V\) per edge \(got 'a' at edge 0\); "
                         r"give a float array"),
    # the one string among numbers, named: numpy made every gate a string, and shown() of them ends at the fifth
    ([GATES] * 11 + ["a"], INPUTS, r"controls must be real numbers, .* \(got 'a' at edge 11\); give a float array"),
    (np.full(12, 1.5 + 0j), INPUTS, r"controls must be real numbers, .* \(got \(1.5\+0j\) at edge 0\)"),
    ([GATES] * 7 + [1.5 + 1j] + [GATES] * 4, INPUTS, r"controls must be real numbers, .* \(got \(1.5\+1j\) at edge "
                                                     r"7\)"),
    (np.full(12, GATES), [[0.1, None]], r"inputs must be real numbers, input voltages \(V\) \(got None at row 0, "
                                        r"column 1\)"),
    (np.full(12, GATES), [[0.1, 0.2], [0.1]], r"inputs must be an array of input voltages \(V\) \(got "
                                              r"\[\[0.1, 0.2\], \[0.1\]\]: .*\); give rows of equal length"),
])
def test_what_is_no_array_of_real_numbers_is_refused_by_solve(solver, controls, inputs, says):
    """A string was numpy's bare ValueError ('could not convert string to float'); a complex gate lost its imaginary
    part with only a ComplexWarning; None in an input became NaN, refused as a non-finite value."""
    with pytest.raises(ValidationError, match=rf"^{type(solver).__name__}.solve: {says}"):
        solver.solve(_circuit(), controls, inputs)


def test_inputs_of_the_wrong_shape_are_named_as_given(solver):
    """A row of 3 inputs for 2 input nodes was reported as '(got (1, 3))', a shape the caller never made."""
    name = type(solver).__name__
    with pytest.raises(ValidationError, match=re.escape(
            f"{name}.solve: inputs must have shape (B, 2), one row of input voltages (V) per data point (got shape "
            "(3,)); give a [B, 2] array, or one row of 2")):
        solver.solve(_circuit(), np.full(12, GATES), [0.1, 0.2, 0.3])
    with pytest.raises(ValidationError, match=re.escape(f"{name}.solve: controls must have shape (12,) or (1, 12) "
                                                        "(got (11,)); give one control (V) per edge")):
        solver.solve(_circuit(), np.full(11, GATES), INPUTS)


def test_solve_given_a_graph_says_how_to_make_a_circuit(solver):
    """It was an AttributeError: 'Graph' object has no attribute 'n_edges'."""
    with pytest.raises(ValidationError, match=rf"^{type(solver).__name__}.solve: circuit must be a Circuit \(got "
                                              r"Graph\); make one with compile_graph\(g, device\)"):
        solver.solve(_graph(), np.full(12, GATES), INPUTS)


def test_a_resistor_conductance_the_device_refuses_is_refused_on_both_backends(solver):
    """ngspice solved a network of -1 mS resistors as if they were +1 mS (native refused it)."""
    c = _circuit(mm.ResistorParams())
    with pytest.raises(ValidationError, match=r"resistor conductances must be > 0 \(got -0.001 S at edge 0\)"):
        solver.solve(c, np.full(c.n_edges, -1e-3), INPUTS)


def test_a_negative_tag_is_named_by_its_row(solver):
    """The refusal gave the tags' shape and dtype, which were right, and not the tag that was negative."""
    c = _circuit()
    with pytest.raises(ValidationError, match=re.escape(f"{type(solver).__name__}.solve: tags must be 8 integers >= 0 "
                                                        "(got -1 at row 6); give one per input row, or None")):
        solver.solve(c, _gates(c), np.tile(INPUTS, (8, 1)), tags=np.array([0, 1, 2, 3, 4, 5, -1, 7]))
    with pytest.raises(ValidationError, match=re.escape("tags must be 8 integers >= 0 (got shape (7,), dtype int64)")):
        solver.solve(c, _gates(c), np.tile(INPUTS, (8, 1)), tags=np.arange(7))


@pytest.mark.parametrize("taps, says", [
    (lambda n: np.where(np.arange(n) == 4, 300.0, 50.0), "got 300 at edge 4"),
    (lambda n: np.full(n, -1.0), "got -1 at edge 0"),
    (lambda n: np.full(n, 3.5), "got 3.5 at edge 0"),
])
def test_a_tap_the_potentiometer_does_not_have_is_refused_on_both_backends(solver, taps, says):
    """Tap 300 of 100 was solved as a resistance far below r_min (G(n) extrapolated past the last tap), tap 3.5 as a
    resistance between two taps, on either backend."""
    c = _circuit(mm.PotentiometerParams())
    with pytest.raises(ValidationError, match=re.escape(f"PotentiometerParams.check_controls: taps must be whole "
                                                        f"numbers in 0..99 ({says}); give each edge one of the 100 "
                                                        "taps")):
        solver.solve(c, taps(c.n_edges), INPUTS)
    assert solver.solve(c, np.full(c.n_edges, 99.0), INPUTS).voltages.shape == (1, c.n_nodes)


def test_the_trainer_refuses_a_leak_or_bias_on_potentiometer_taps():
    """The leak relaxed every tap toward its rest and a bias added to each step, so the taps left the device's own;
    the config refuses both for a potentiometer."""
    c = _circuit(mm.PotentiometerParams())
    for dynamics, got in ((mm.EdgeDynamics("sign", 0, 99, leak_tau=1e-3), "leak_tau 0.001, bias None"),
                          (mm.EdgeDynamics("sign", 0, 99, bias=np.full(c.n_edges, 0.1)), "leak_tau None, bias given")):
        with pytest.raises(ValidationError, match=re.escape(f"EdgeDynamics.leak_tau, EdgeDynamics.bias: a "
                                                            f"potentiometer steps one whole tap per update, with no "
                                                            f"leak or bias (got {got})")):
            mm.Trainer(c, mm.Task("t", INPUTS, [[0.1]]), mm.CoupledLearning(), dynamics, mm.TrainParams(),
                       mm.NativeSolver())


def test_an_empty_batch_gives_no_rows_on_both_backends(solver):
    """ngspice failed on it with an IndexError ('list index out of range'); native answered [0, N]."""
    c = _circuit()
    assert solver.solve(c, _gates(c), np.zeros((0, 2))).voltages.shape == (0, c.n_nodes)


def test_correct_calls_answer_alike_on_both_backends(ngspice):
    """A list of gates and a 1-D row of inputs are taken as before, and the backends agree."""
    c = _circuit()
    native = mm.NativeSolver().solve(c, list(_gates(c)), INPUTS[0]).voltages
    np.testing.assert_allclose(ngspice.solve(c, _gates(c), np.array(INPUTS)).voltages, native, atol=1e-6)


@pytest.mark.parametrize("call, says", [
    (lambda c, g, v: mm.kcl_residuals(c, g[:-1], v),
     r"kcl_residuals: controls must have shape \(12,\) or \(1, 12\) \(got \(11,\)\); give one control \(V\) per edge"),
    (lambda c, g, v: mm.edge_currents(c, g, v.T),
     r"edge_currents: voltages must have 9 columns \(got shape \(9, 1\)\); pass node voltages \[B, N\] of this "
     r"circuit"),
    (lambda c, g, v: mm.power_report(c, g, mm.OperatingPoint(v)),
     r"energy.transistor_power: voltages must be node voltages \[B, 9\] \(V\) \(got the OperatingPoint itself\); "
     r"pass its \.voltages"),
    (lambda c, g, v: mm.kcl_residuals(c, g, v, fixed=[99]),
     r"kcl_residuals: fixed must hold node indices, integers in 0..8 \(got 99 at index 0\); give the clamped nodes"),
    (lambda c, g, v: mm.kcl_residuals(c, g, v, fixed=[0, 1, 2, 3, 4, 5, 9]),
     r"kcl_residuals: fixed must hold node indices, integers in 0..8 \(got 9 at index 6\); give the clamped nodes"),
    (lambda c, g, v: mm.kcl_residuals(c, g, v, twin=2), r"kcl_residuals: twin must be 0 \(free\) or 1 \(clamped\) "
                                                        r"\(got 2\)"),
    # True == 1 and 1.0 == 1: each was taken as the clamped twin
    (lambda c, g, v: mm.kcl_residuals(c, g, v, twin=True), r"kcl_residuals: twin must be 0 \(free\) or 1 \(clamped\) "
                                                           r"\(got True\)"),
    (lambda c, g, v: mm.edge_currents(c, g, v, twin=True), r"edge_currents: twin must be 0 \(free\) or 1 \(clamped\) "
                                                           r"\(got True\)"),
    (lambda c, g, v: mm.transistor_power(c, g, v, twin=1.0), r"energy.transistor_power: twin must be 0 \(free\) or 1 "
                                                             r"\(clamped\) \(got 1.0\)"),
    (lambda c, g, v: mm.edge_currents(c, ["a"] * len(g), v), re.escape(
        "edge_currents: controls must be real numbers, one gate voltage (V) per edge (got 'a' at edge 0); pass the "
        "controls given to the solver")),
    (lambda c, g, v: mm.edge_currents(c, [*g[:-1], "a"], v), re.escape("(got 'a' at edge 11); pass the controls")),
    # the None at the ninth node was shown as [[0.1, 0.1, 0.1, 0.1, 0.1, ...]]
    (lambda c, g, v: mm.kcl_residuals(c, g, [[0.1] * 8 + [None]]), re.escape(
        "kcl_residuals: voltages must be real numbers, node voltages [B, 9] (V) (got None at row 0, node 8); pass a "
        "solver's OperatingPoint.voltages")),
    # a NaN gate gave its transistor 0 A without a word, where solve refuses it
    (lambda c, g, v: mm.power_report(c, np.where(np.arange(len(g)) == 3, np.nan, g), v), re.escape(
        "energy.transistor_power: controls must be finite (got nan at edge 3); give a finite gate voltage (V) to every "
        "edge")),
    (lambda c, g, v: mm.edge_currents(c, g, [[0.1] * 9, [0.1]]), re.escape(
        "edge_currents: voltages must be an array of node voltages [B, 9] (V) (got [[0.1, 0.1, 0.1, 0.1, 0.1, ...], "
        "[0.1]]: setting an array element with a sequence.")),
])
def test_the_physics_checks_refuse_what_is_no_state_of_the_circuit(call, says):
    """Each was numpy's own error from deep inside: 'operands could not be broadcast together', 'index 8 is out of
    bounds', 'float() argument must be ... not OperatingPoint'; twin=2 was taken without a word; a string among the
    controls was blamed on 'controls and voltages', and None among the voltages was taken as NaN."""
    c = _circuit()
    v = mm.NativeSolver().solve(c, _gates(c), INPUTS).voltages
    with pytest.raises(ValidationError, match=says):
        call(c, _gates(c), v)
    assert np.nanmax(np.abs(mm.kcl_residuals(c, list(_gates(c)), v[0].tolist()))) < 1e-12  # lists, a 1-D row: as before


def test_the_physics_checks_refuse_controls_the_device_does_not_have():
    """edge_currents, kcl_residuals and power_report took tap 200 of a 100-tap potentiometer (a current of amperes), a
    fractional tap and a negative conductance, which solve and to_spice refuse."""
    pot, res = _circuit(mm.PotentiometerParams()), _circuit(mm.ResistorParams())
    v = mm.NativeSolver().solve(pot, np.full(pot.n_edges, 50), INPUTS).voltages
    with pytest.raises(ValidationError, match=re.escape("PotentiometerParams.check_controls: taps must be whole "
                                                        "numbers in 0..99 (got 200 at edge 0)")):
        mm.edge_currents(pot, np.full(pot.n_edges, 200), v)
    with pytest.raises(ValidationError, match=re.escape("(got 50.5 at edge 0)")):
        mm.power_report(pot, np.full(pot.n_edges, 50.5), v)
    with pytest.raises(ValidationError, match=re.escape("ResistorParams.check_controls: resistor conductances must be "
                                                        "> 0 (got -0.001 S at edge 0)")):
        mm.kcl_residuals(res, np.full(res.n_edges, -1e-3), v)
    assert np.nanmax(np.abs(mm.kcl_residuals(pot, np.full(pot.n_edges, 50), v))) < 1e-15


@pytest.mark.parametrize("make, says", [
    (lambda: mm.lattice_network(3.5, 3), "lattice_network: rows must be a whole number (got 3.5); give an int"),
    (lambda: mm.lattice_network(4, "4"), "lattice_network: cols must be a whole number (got '4'); give an int"),
    (lambda: mm.random_network(6, 8.5), "random_network: n_edges must be a whole number (got 8.5); give an int"),
    (lambda: mm.random_network(6.0, 8), "random_network: n_nodes must be a whole number (got 6.0); give an int"),
    (lambda: mm.layered_network(3, 2, n_edges=2.5), "layered_network: n_edges must be a whole number (got 2.5); give "
                                                    "an int"),
    (lambda: mm.layered_network(3, True), "layered_network: n_outputs must be a whole number (got True); give an int"),
    (lambda: mm.lattice_network(4, 4, periodic="false"), "lattice_network: periodic must be True or False (got "
                                                         "'false'); give a bool"),  # the text "false" built a torus
    (lambda: mm.layered_network(3, 2, hidden=2, direct="no"), "layered_network: direct must be True or False (got "
                                                              "'no'); give a bool"),
    (lambda: mm.random_network(1, 0), "network.n_nodes: a random network needs at least 2 nodes (got 1); give 2 or "
                                      "more"),
    (lambda: mm.random_network(6, 8, seed=-1), "random_network: seed must be an int >= 0, a numpy Generator or None "
                                               "(got -1: "),
    (lambda: mm.layered_network(3, 2, seed="a"), "layered_network: seed must be an int >= 0, a numpy Generator or "
                                                 "None (got 'a': "),
    # numpy seeds with True as with 1
    (lambda: mm.random_network(6, 8, seed=True), "random_network: seed must be an int >= 0, a numpy Generator or None "
                                                 "(got True); give e.g. seed=0"),
    (lambda: mm.layered_network(3, 2, seed=True), "layered_network: seed must be an int >= 0, a numpy Generator or "
                                                  "None (got True); give e.g. seed=0"),
])
def test_builders_refuse_counts_and_seeds_they_cannot_use(make, says):
    """A float count was networkx's "'float' object is not iterable" or numpy's AxisError, and 8.5 edges silently
    became 9; a negative seed was numpy's 'expected non-negative integer'; one node, "n_edges must be in [0, 0] (got
    0)"."""
    with pytest.raises(ValidationError, match=re.escape(says)):
        make()
    seeded = mm.random_network(6, 8, seed=np.random.default_rng(0))  # a Generator seeds as its int does
    assert sorted(seeded.edges) == sorted(mm.random_network(6, 8, seed=np.random.default_rng(0)).edges)
    assert mm.lattice_network(np.int64(3), 3, periodic=False).number_of_edges() == 12


def test_assign_roles_given_a_dict_says_to_make_roles():
    """It was an AttributeError: 'dict' object has no attribute 'inputs'."""
    with pytest.raises(ValidationError, match=r"assign_roles: roles must be a Roles \(got dict \{'inputs': \(0,\), "
                                              r".*\); give Roles\(inputs="):
        mm.assign_roles(mm.lattice_network(ROWS, COLS), dict(inputs=(0,), rails=(), outputs=((4, None),)))


def test_compile_graph_given_a_preset_name_says_how_to_make_the_device():
    """It was an AttributeError: 'str' object has no attribute 'at_temperature', from inside Circuit."""
    with pytest.raises(ValidationError, match=re.escape(
            "compile_graph: device must be an edge device, NmosParams, ResistorParams or PotentiometerParams (got str "
            "'ald1106-fit'); give e.g. nmos_preset('ald1106-fit')")):
        mm.compile_graph(_graph(), "ald1106-fit")
    with pytest.raises(ValidationError, match=re.escape(
            f"compile_graph: device must be an edge device, NmosParams, ResistorParams or PotentiometerParams (got str "
            f"'{'a' * 37}...{'a' * 38}'); give e.g. nmos_preset('{'a' * 37}...{'a' * 38}')")):
        mm.compile_graph(_graph(), "a" * 500)


def test_compile_graph_refuses_an_edge_that_names_a_device_of_its_own():
    """Every edge is the one device compile_graph is given: an edge's own 'device' attribute (a pmos among the nmos)
    was ignored without a word."""
    g = _graph()
    g.edges[0, 1]["device"] = "pmos"
    with pytest.raises(ValidationError, match=re.escape("network: edge 0-1 holds a 'device' attribute (got 'pmos'), "
                                                        "and every edge of a circuit is the one device compile_graph "
                                                        "is given; remove the attribute")):
        mm.compile_graph(g, mm.nmos_preset("ald1106-fit"))
    del g.edges[0, 1]["device"]
    assert mm.compile_graph(g, mm.nmos_preset("ald1106-fit")).n_edges == 12


@pytest.mark.parametrize("change, says", [
    (dict(out_pos=np.array([20])), "Circuit.out_pos: must hold node indices, integers in 0..8 (got 20 at index 0); "
                                   "give indices of node_labels' nodes (compile_graph makes them)"),
    (dict(inputs=np.array([0, 20])), "Circuit.inputs: must hold node indices, integers in 0..8 (got 20 at index 1)"),
    (dict(edges=np.array([[0, 1], [-1, 1]])), "Circuit.edges: must hold node indices, integers in 0..8 (got -1 at "
                                              "index (1, 0))"),
    (dict(out_neg=np.array([-2])), "Circuit.out_neg: must hold node indices, integers in 0..8 (got -2 at index 0); "
                                   "give indices of node_labels' nodes (compile_graph makes them), or -1 for a "
                                   "single-ended output"),
    (dict(node_labels=("a",) * 5), "Circuit.edges: must hold node indices, integers in 0..4 (got 5 at index"),
    # an int label was a TypeError from inside to_spice; a single text was one label per character
    (dict(node_labels=tuple(range(9))), "Circuit.node_labels: must be texts, one per node (got 0 at index 0); give one "
                                        "str per node, e.g. tuple(str(i) for i in range(n_nodes))"),
    (dict(node_labels=("a",) * 8 + (None,)), "Circuit.node_labels: must be texts, one per node (got None at index 8)"),
    (dict(node_labels="abcdefghi"), "Circuit.node_labels: must be a tuple of texts, one per node (got str "
                                    "'abcdefghi'); give one str per node"),
    (dict(rail_voltages=np.array([0.0, 0.1])), "Circuit.rail_voltages: must hold one voltage per node of "
                                               "Circuit.rails (got shape (2,) for rails of shape (1,))"),
    (dict(body=np.zeros(5, int)), "Circuit.body: must have one entry per edge (12) (got 5)"),
])
def test_a_circuit_changed_by_hand_refuses_indices_past_its_nodes(change, says):
    """A Circuit made with dataclasses.replace took any index: the native solver's compiled code read and wrote past
    the voltages at an output past the last node (the clamp's write crashed Python later), an input past it was left
    out and the circuit solved without a word, on both backends; a negative node or fewer labels than nodes were
    numpy's ValueError or IndexError."""
    c = _circuit()
    with pytest.raises(ValidationError, match=re.escape(says)):
        replace(c, **change)
    moved = replace(c, out_pos=np.array([5]))  # another output within the nodes: as compile_graph would make it
    assert moved.output_values(mm.NativeSolver().solve(moved, _gates(c), INPUTS).voltages).shape == (1, 1)
    named = replace(c, node_labels=[f"hub {i}" for i in range(9)])  # a list of texts: kept as a tuple
    assert named.node_labels[8] == "hub 8" and "n8=hub%208" in mm.to_spice(named, _gates(c), INPUTS)


@pytest.fixture(scope="module")
def xor_setup():
    return mm.build(mm.load_config(ROOT / "configs" / "xor.yaml", ["simulator.backend=native", "learning.epochs=2"]))


@pytest.mark.parametrize("call, says", [
    (lambda s: mm.build(s), "build: cfg must be a Config or a config file's path (got Setup "),
    (lambda s: mm.initial_controls(s.config, np.random.default_rng(0)),
     "initial_controls: takes a Setup, what build(config) returns (got Config "),
    (lambda s: mm.initial_controls(s, 0), "initial_controls: rng must be a numpy Generator (got int 0); give "
                                          "np.random.default_rng(seed)"),
    (lambda s: mm.initial_controls(s, list(range(100))), "initial_controls: rng must be a numpy Generator (got list "
                                                         "[0, 1, 2, 3, 4, ...]); give np.random.default_rng(seed)"),
    (lambda s: mm.make_trainer(s, epoch=3), "make_trainer: TrainParams has no field 'epoch' (got ['epoch']); it has "
                                            "epochs, schedule, "),
    (lambda s: mm.make_trainer(s, "native"), "make_trainer: solver must be a solver such as NativeSolver() or "
                                             "NgspiceSolver() (got str 'native')"),
    (lambda s: mm.load_config(ROOT / "configs" / "xor.yaml", "learning.epochs=3"),
     "load_config: overrides must be a list of key.path=value texts (got the text 'learning.epochs=3'); give "
     "['learning.epochs=3']"),
    (lambda s: mm.load_config(ROOT / "configs" / "xor.yaml", ["learning.epochs=3", 3]),
     "load_config: overrides must be key.path=value texts (got 3 at index 1); write each like 'learning.epochs=200'"),
    (lambda s: mm.train_replicas(s.config, 3), "train_replicas: seeds must be a list of ints, one per replica (got "
                                               "int 3); give one seed per replica, e.g. [0, 1, 2] or list(range(4))"),
    (lambda s: mm.train_replicas(s.config, []), "train_replicas: seeds must name one replica or more (got [])"),
    (lambda s: mm.train_replicas(s.config, [0, -1]), "train_replicas: seeds must be ints >= 0 (got -1 in [0, -1])"),
    (lambda s: mm.train_replicas(s.config, [1, 2, 1]), "train_replicas: seeds must differ, one replica each (got 1 "
                                                       "twice in [1, 2, 1])"),
    (lambda s: mm.ensemble_run(s.config, ROOT / "runs" / "never", 2.0), "ensemble_run: n_seeds must be a whole number "
                                                                        "(got 2.0); give the number of seeds to train"),
    (lambda s: mm.load_config({"name": "x"}), "load_config: path must be a config file's path (got dict {'name': "
                                              "'x'}); give e.g. 'configs/xor.yaml'"),
    (lambda s: mm.train_run({"name": "x"}, ROOT / "runs" / "never"), "train_run: cfg must be a Config or a config "
                                                                     "file's path (got dict {'name': 'x'}); give e.g. "
                                                                     "'configs/xor.yaml' or load_config("),
])
def test_the_quick_start_calls_refuse_what_they_do_not_take(xor_setup, call, says):
    """Each was an AttributeError from inside ('str' object has no attribute 'device', 'int' object has no attribute
    'uniform'), a TypeError from dataclasses.replace, or (a text of overrides) one --set per character: "--set l:
    expected key.path=value". train_replicas given a count of seeds said "'int' object is not iterable", given none
    "need at least one array to stack", given -1 numpy's "expected non-negative integer", each after building the
    setup; a seed given twice trained its replica twice. ensemble_run given 2.0 seeds was "'float' object cannot be
    interpreted as an integer" from inside its training; a dict for a config file, pathlib's "expected str, bytes or
    os.PathLike object"."""
    with pytest.raises(mm.MetamaterialError, match=re.escape(says)) as caught:
        call(xor_setup)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("call", [
    lambda run: run.replicas(True),
    lambda run: run.one_replica(True),
    lambda run: mm.evaluate_run(run, seed=True),
])
def test_a_saved_run_refuses_a_bool_for_a_seed(xor_setup, call):
    """True == 1, so True was taken as seed 1 and picked that replica without a word."""
    x = mm.initial_controls(xor_setup, np.random.default_rng(0))
    run = mm.SavedRun(ROOT / "runs" / "never", xor_setup.config, np.stack([x, x + 0.1]), [0, 1], 0)
    with pytest.raises(ValidationError, match=re.escape("--replica: must be a whole number (got True); give one of "
                                                        "the run's seeds 0..1 as an int")):
        call(run)
    assert run.replicas(np.int64(1)) == [1] and run.one_replica(0) == 0


@pytest.mark.parametrize("call, says", [
    (lambda t, x, rng: t.init_state(np.where(np.arange(len(x)) == 5, np.nan, x), rng),
     "Trainer.init_state: controls must be finite (got nan at edge 5); give a finite gate voltage (V) to every edge"),
    (lambda t, x, rng: t.init_state(["a"] * len(x), rng), "Trainer.init_state: controls must be real numbers, one "
                                                          "gate voltage (V) per edge (got 'a' at edge 0); give a "
                                                          "float array"),
    (lambda t, x, rng: t.init_state([*x[:-1], None], rng), "Trainer.init_state: controls must be real numbers, one "
                                                           "gate voltage (V) per edge (got None at edge 31); give a "
                                                           "float array"),
    (lambda t, x, rng: t.evaluate(x[:-1]), "Trainer.evaluate: controls must have shape (32,) or (R, 32), one row per "
                                           "replica (got (31,)); give state.controls[0] for one replica"),
    (lambda t, x, rng: t.evaluate(np.tile(x, (2, 1)) + [[0.0], [np.inf]]),
     "Trainer.evaluate: controls must be finite (got inf at replica 1, edge 0); give a finite gate voltage (V) to "
     "every edge"),
    (lambda t, x, rng: t.run(x), "Trainer.run: state must be a TrainState (got ndarray); make it with "
                                 "trainer.init_state(controls, rng)"),
    (lambda t, x, rng: t.run(t.init_state(x, rng), until=2.5), "Trainer.run: until must be a whole number (got "
                                                               "2.5); give a number of epochs as an int"),
    (lambda t, x, rng: t.run(t.init_state(x, rng), every="x" * 300), "Trainer.run: every must be a whole number (got "
                                                                     f"'{'x' * 37}...{'x' * 38}'); give a number of "
                                                                     "epochs as an int"),
    (lambda t, x, rng: t.init_state(np.stack([x, x]), [rng, rng]),
     "Trainer.init_state: rngs must be one generator per replica, each its own (got the same Generator object at "
     "replicas 0 and 1); give [np.random.default_rng(seed) for seed in seeds]"),
    (lambda t, x, rng: t.evaluate(x, test=True), "Trainer.evaluate: test=True scores the task's held-out points, and "
                                                 "task 'xor' holds none (got test_inputs None); give test=False"),
    (lambda t, x, rng: t.rule_and_gradient(x, [0.5]), "Trainer.rule_and_gradient: idx must be training point "
                                                      "indices, integers in 0..3 (got 0.5 at index 0); give e.g. "
                                                      "np.arange(4)"),
    (lambda t, x, rng: t.rule_and_gradient(x, [-1]), "Trainer.rule_and_gradient: idx must be training point indices, "
                                                     "integers in 0..3 (got -1 at index 0)"),
    (lambda t, x, rng: t.step(x, np.array([4]), rng), "Trainer.step: idx must be training point indices, integers in "
                                                      "0..3 (got 4 at index 0)"),
    (lambda t, x, rng: t.step(x, [0], 0), "Trainer.step: rng must be a numpy Generator (got int 0); give "
                                          "np.random.default_rng(seed)"),
    (lambda t, x, rng: t.run(t.init_state(x, rng), on_epoch=5), "Trainer.run: on_epoch must be a function or None "
                                                                "(got int 5)"),
    (lambda t, x, rng: t.rule_and_gradient(np.stack([x, x]), [0, 1]), "Trainer.rule_and_gradient: controls must have "
                                                                      "shape (32,), one replica's (got (2, 32)); give "
                                                                      "e.g. state.controls[0]"),
])
def test_the_trainer_refuses_controls_and_states_where_they_enter(xor_setup, call, says):
    """NaN controls were refused by the solver ('NativeSolver.solve: ... must be finite'), a wrong length by
    the solver too, naming the batch it made; a string was numpy's ValueError, run(controls) an AttributeError
    ('no attribute replicas'), until=2.5 a TypeError from range. One generator for two replicas was taken, and the
    replicas drew from it in turn, each unlike a run of its own; evaluate(test=True) of a task with no held-out
    points was "object of type 'NoneType' has no len()". Point 0.5 was read as point 0 and -1 as the last point,
    point 4 of 4 was numpy's IndexError; rule_and_gradient of two replicas' controls at two points, numpy's
    "operands could not be broadcast together". step given a seed for its generator was taken until a
    desynchronous mask or read noise drew from it ("'int' object has no attribute 'random'"), and run given
    on_epoch=5 trained the first epoch before "'int' object is not callable"."""
    trainer = mm.make_trainer(xor_setup)
    rng = np.random.default_rng(0)
    x = mm.initial_controls(xor_setup, rng)
    with pytest.raises(ValidationError, match=re.escape(says)):
        call(trainer, x, rng)
    assert trainer.evaluate(list(x)).loss == trainer.evaluate(x).loss  # a list of one replica: a float, as before


@pytest.mark.parametrize("inputs, targets, says", [
    ([[0.1, np.nan]], [[0.0]], "Task.inputs: must be finite (got nan at point 0, column 1); give every point a "
                               "finite voltage"),
    ([[[0.1, np.nan]]], [[0.0]], "Task.inputs: must be finite (got nan at index (0, 0, 1)); give every point a finite "
                                 "voltage"),
    (np.inf, [[0.0]], "Task.inputs: must be finite (got inf); give every point a finite voltage"),
    # one value per point: the index is the point's (it was named a column)
    ([[0.1], [0.2], [0.3]], [0.1, 0.2, np.nan], "Task.targets: must be finite (got nan at point 2); give every point "
                                                "a finite voltage"),
    ([[0.1, 0.2]], [["a"]], "Task.targets: must be real numbers, volts (got 'a' at point 0, column 0); give a float "
                            "array, one row per point"),
    ([[0.1]] * 6 + [[None]], [[0.0]] * 7, "Task.inputs: must be real numbers, volts (got None at point 6, column 0); "
                                          "give a float array, one row per point"),
    ([[0.1, 0.2], [0.1]], [[0.0], [0.0]], "Task.inputs: must be an array of volts (got [[0.1, 0.2], [0.1]]: setting "
                                          "an array element with a sequence."),
])
def test_a_task_refuses_values_no_solver_can_take(inputs, targets, says):
    """A NaN input was accepted and refused by the solver at the first evaluation, naming neither task nor point;
    a list of inputs was kept as a list, and task.n_inputs failed on it ('list' object has no attribute 'shape')."""
    with pytest.raises(ValidationError, match=re.escape(says)):
        mm.Task("t", inputs, targets)
    assert mm.Task("t", [[0.1, 0.2]], [[0.0]]).n_inputs == 2


def test_evaluate_run_refuses_a_split_it_does_not_know_and_a_path(tmp_path):
    """split="tset" was evaluated as "train" without a word; a path for the run, an AttributeError."""
    cfg = mm.load_config(ROOT / "configs" / "xor.yaml", ["simulator.backend=native", "learning.epochs=2"])
    mm.train_run(cfg, tmp_path / "run", plots=False)
    run = mm.load_run(tmp_path / "run")
    with pytest.raises(mm.ConfigError, match=re.escape('evaluate_run: split must be one of train, test (got '
                                                       "'tset'); give \"train\" for the training points")):
        mm.evaluate_run(run, split="tset")
    with pytest.raises(ValidationError, match=re.escape("evaluate_run: run must be a SavedRun (got PosixPath")):
        mm.evaluate_run(tmp_path / "run")
    assert mm.evaluate_run(run, split="train")["split"] == "train"


@pytest.mark.parametrize("inputs, says", [
    ([[450.0, 0.0]], "evaluate_run: inputs must be a finite voltage in [-10, 10] V (got 450 at point 0, column 0); "
                     "give volts (0.45, not 450 mV)"),
    (np.zeros((0, 2)), "evaluate_run: inputs must have shape (P, 2), one row of 2 input voltage(s) (V) per point, one "
                       "point or more (got shape (0, 2)); give e.g. [[0.0, 0.0]]"),
    ([[0.1, 0.2, 0.3]], "evaluate_run: inputs must have shape (P, 2), one row of 2 input voltage(s) (V) per point"),
])
def test_evaluate_run_refuses_new_inputs_as_a_file_of_inputs_is_refused(tmp_path, inputs, says):
    """Inputs in millivolts, which `eval --inputs` refuses in a file, were solved at 450 V; no point was numpy's
    "cannot reshape array of size 0"."""
    cfg = mm.load_config(ROOT / "configs" / "xor.yaml", ["simulator.backend=native", "learning.epochs=2"])
    mm.train_run(cfg, tmp_path / "run", plots=False)
    run = mm.load_run(tmp_path / "run")
    with pytest.raises(ValidationError, match=re.escape(says)):
        mm.evaluate_run(run, inputs=inputs)
    trained = mm.evaluate_run(run)
    again = mm.evaluate_run(run, inputs=trained["inputs"])  # the training points, as a list
    np.testing.assert_allclose(again["replicas"][0]["outputs"], trained["replicas"][0]["outputs"], atol=1e-9)


@pytest.mark.parametrize("make, says", [
    (lambda: mm.NativeSolver(options={"reltol": 1e-6}), "NativeSolver.options: must be a SpiceOptions (got dict "
                                                        "{'reltol': 1e-06}); give e.g. SpiceOptions(reltol=1e-6)"),
    (lambda: mm.NgspiceSolver(options={"reltol": 1e-6}), "NgspiceSolver.options: must be a SpiceOptions (got dict"),
    (lambda: mm.NativeSolver(tol_v="1e-9"), "NativeSolver.tol_v: must be a positive finite number (got '1e-9')"),
    (lambda: mm.SpiceOptions(reltol="1e-6"), "SpiceOptions.reltol: must be a number (got '1e-6'); give one, in SI "
                                             "units"),
])
def test_solver_settings_of_the_wrong_kind_are_refused_when_made(make, says):
    """A dict of options was an AttributeError ('dict' object has no attribute 'itl1') on native and was taken by
    ngspice until its first solve; a string tolerance, "must be real number, not str", in SpiceOptions from
    math.isfinite."""
    with pytest.raises(ValidationError, match=re.escape(says)):
        make()


@pytest.mark.parametrize("make, says", [
    (lambda: mm.NmosParams(name=5), "NmosParams.name: must be text (got 5); give a string"),
    (lambda: mm.ResistorParams(name=None), "ResistorParams.name: must be text (got None); give a string"),
    (lambda: mm.PotentiometerParams(name=b"pot"), "PotentiometerParams.name: must be text (got b'pot'); give a "
                                                  "string"),
    (lambda: mm.CoupledLearning(loss=3), "CoupledLearning.loss: must be text (got 3); give a string"),
])
def test_a_text_field_given_no_text_is_refused_when_made(make, says):
    """A device named 5 was taken, and failed later inside the netlist's header with a bare TypeError; a field the
    code writes into a netlist or compares with names must be text where it enters."""
    with pytest.raises(ValidationError, match=re.escape(says)):
        make()


def test_a_long_value_where_a_number_goes_is_shown_short():
    """A list given for a number was written into the message whole: 100,000 numbers made a message of 689 kB."""
    with pytest.raises(ValidationError) as err:
        mm.NmosParams(kp=list(range(100_000)))
    message = str(err.value)
    assert len(message) < 300, message
    assert message == "NmosParams.kp: must be a number (got [0, 1, 2, 3, 4, ...]); give one, in SI units"
    with pytest.raises(ValidationError, match=re.escape(
            "Roles.rails: must be (node, volts) pairs, node an integer and volts a finite number (got (5, 'x') at "
            "index 0); give e.g. ((5, 0.0),)")):
        Roles(inputs=(0,), rails=[(5, "x")] * 100_000, outputs=((4, None),))


@pytest.mark.parametrize("make, says", [
    (lambda: mm.CoupledLearning(nudge=-10**5000), "CoupledLearning.nudge: must be in (0, 1]"),
    (lambda: mm.Schedule(batch_size=-10**5000), "Schedule.batch_size: must be >= 1"),
    (lambda: mm.PotentiometerParams(n_taps=-10**5000), "PotentiometerParams.n_taps: must be an integer >= 2"),
])
def test_an_int_of_thousands_of_digits_is_refused_in_words(make, says):
    """A field checked by a comparison alone takes any int: one of 5,000 digits made repr() raise its own ValueError
    (past 4,300 digits) in place of the message."""
    with pytest.raises(ValidationError, match=re.escape(f"{says} (got <an integer of about 5000 digits>)")):
        make()


def test_finite_values_near_the_largest_float_pass_the_check_without_an_overflow_warning():
    """Gates of 1e308 V are finite: the entry check takes them without a RuntimeWarning (a sum of them overflows; the
    suite turns warnings into errors), and what then refuses them is the solver's own look at its answer."""
    c = _circuit()
    with pytest.raises(ValidationError, match=r"^NativeSolver\.solve: controls, inputs and clamps must be finite"):
        mm.NativeSolver().solve(c, np.full(c.n_edges, 1e308), INPUTS)


CLASS_X = [[0.0], [0.15], [0.3], [0.45]]  # V, one input per point
CLASS_Y = [[0.1], [0.1], [0.2], [0.2]]  # V, one output per point
CLASSES = [0, 0, 1, 1]


@pytest.mark.parametrize("given, says", [
    (dict(classes=CLASSES), "Task.decode: a classification (Task.classes given) needs a decoding (got None); give "
                            "decode='nearest' with levels (one output), or 'argmax' (one output per class)"),
    (dict(classes=CLASSES, decode="nearst", levels=(0.1, 0.2)), "Task.decode: must be one of None, 'nearest', "
                                                                "'argmax' (got 'nearst'); give 'nearest'"),
    (dict(decode="nearest", levels=(0.1, 0.2)), "Task.classes: decode 'nearest' reads the outputs as classes, and no "
                                                "classes are given (got None)"),
    (dict(classes=CLASSES, decode="nearest"), "Task.levels: 'nearest' decoding needs each class's output level (got "
                                              "None); give levels, one voltage per class"),
    (dict(classes=CLASSES, decode="nearest", levels=[[0.1, 0.2]]), "Task.levels: must be one voltage per class, two "
                                                                   "or more (got shape (1, 2))"),
    (dict(classes=CLASSES, decode="argmax"), "Task.decode: 'argmax' needs one output per class, two or more (got 1 "
                                             "target column)"),
    (dict(classes=[0, 0, 1, 3], decode="nearest", levels=(0.1, 0.2)), "Task.classes: must be below 2, one level per "
                                                                      "class (got class 3)"),
    (dict(classes=[0, 0, 0.5, 1], decode="nearest", levels=(0.1, 0.2)), "Task.classes: must be class indices, whole "
                                                                        "numbers >= 0 (got [0, 0, 0.5, 1])"),
    (dict(classes=[0, 0, -1, 1], decode="nearest", levels=(0.1, 0.2)), "Task.classes: must be class indices"),
    (dict(test_inputs=CLASS_X), "Task.test_targets: needed beside Task.test_inputs (got None); give one row of "
                                "target values (V) per point"),
    (dict(test_inputs=np.hstack([CLASS_X, CLASS_X]), test_targets=CLASS_Y),
     "Task.test_inputs: must have the 1 column(s) of Task.inputs (got 2)"),
    (dict(test_targets=CLASS_Y), "Task.test_targets: given without Task.test_inputs (got None there)"),
])
def test_a_task_refuses_classes_its_decoding_cannot_read(given, says):
    """The margins are read at each point's class in compiled code without bounds checks: a class past the last level
    or an argmax of one output trained on memory past the array without a word; no decoding, no levels or a misspelt
    decoding failed at the first evaluation with "'NoneType' object is not subscriptable", a held-out set of another
    width inside a matrix product."""
    with pytest.raises(ValidationError, match=re.escape(says)):
        mm.Task("t", CLASS_X, CLASS_Y, **given)
    made = mm.Task("t", CLASS_X, CLASS_Y, classes=[0.0, 0, 1, 1], decode="nearest", levels=[0.1, 0.2])
    assert made.classes.dtype == np.int64 and made.levels.dtype == np.float64
    assert made.accuracy(np.array(CLASS_Y)) == 1.0


@pytest.mark.parametrize("make, says", [
    (lambda: mm.xor_task(labels=(0.0, -0.087, 0.3)), "xor_task: labels must be two, the output for equal inputs and "
                                                     "for different ones (got (0.0, -0.087, 0.3)); give e.g. (0.0, "
                                                     "-0.087)"),
    (lambda: mm.xor_task(labels=(0.0,)), "xor_task: labels must be two"),
    (lambda: mm.linear_regression_task(8.0, 0.4, 0.1, 0.0, 0.45), "linear_regression_task: n_points must be a whole "
                                                                  "number (got 8.0); give an int"),
    (lambda: mm.allostery_task(0.45, 0.1), "allostery_task: targets must be one voltage per output (got shape ()); "
                                           "give e.g. (0.1, 0.3)"),
    # what a config refuses of these keys: one voltage for every input, a negative held-out fraction (nothing held
    # out), a seed numpy or scikit-learn cannot take
    (lambda: mm.xor_task(0.3, 0.3), "xor_task: low must be < high (got 0.3, 0.3); give the lower voltage as low"),
    (lambda: mm.iris_task(0.0, 0.45, 0.3, 0.15, -0.1, 0), "iris_task: test_fraction must be in [0, 1) (got -0.1); "
                                                          "give the fraction of the points to hold out, or 0 for none"),
    (lambda: mm.iris_task(0.0, 0.45, 0.3, 0.15, 0.2, 1.5), "iris_task: seed must be a whole number (got 1.5)"),
    (lambda: mm.digits_task(0.0, 0.45, 0.3, 0.15, 0.2, -1), "digits_task: seed must be >= 0 (got -1)"),
])
def test_the_task_builders_refuse_what_they_cannot_make_a_task_of(make, says):
    """A third XOR label was taken as a third class's level, which the decoding could then predict; one label was an
    IndexError, a float count numpy's "'float' object cannot be interpreted as an integer", one allostery target
    an IndexError. A held-out fraction of -0.1 held out nothing, a seed of 1.5 or -1 was numpy's or scikit-learn's
    error, and low = high drove every input at one voltage."""
    with pytest.raises(ValidationError, match=re.escape(says)):
        make()
    assert mm.xor_task(labels=[0.0, np.float32(-0.087)]).levels.shape == (2,)
    assert mm.linear_regression_task(np.int64(8), 0.4, 0.1, 0.0, 0.45).n_points == 8


def test_a_task_of_no_points_is_refused_when_made():
    """It trained, then failed in the solver's warm-start memory ('zero-size array to reduction operation')."""
    with pytest.raises(ValidationError, match=re.escape("Task.inputs: needs at least one point (got shape (0, 1))")):
        mm.linear_regression_task(0, 0.5, 0.1, 0.0, 0.45)


@pytest.mark.parametrize("change, says", [
    (lambda x: (np.where(np.arange(len(x)) == 2, np.nan, x), INPUTS, None),
     "to_spice: controls must be finite (got nan at edge 2); give a finite gate voltage (V) to every edge"),
    (lambda x: (x, [[0.1, np.inf]], None), "to_spice: inputs must be finite (got inf at row 0, column 1)"),
    (lambda x: (x, INPUTS, [[np.nan]]), "to_spice: clamps must be finite (got nan at row 0, column 0)"),
    (lambda x: (x, [["a", "b"]], None), "to_spice: inputs must be real numbers, input voltages (V) (got 'a' at row 0, "
                                        "column 0)"),
    (lambda x: (x, np.zeros((1, 1, 2)), None), "to_spice: inputs must have shape (B, 2), one row of input voltages "
                                               "(V) per data point (got shape (1, 1, 2))"),
    (lambda x: (np.tile(x, (2, 1)), [[0.1, 0.2]] * 2, None), "to_spice: controls must have shape (12,), one gate "
                                                             "voltage (V) per edge (got (2, 12)); the copies of a "
                                                             "netlist share the controls"),
])
def test_to_spice_refuses_what_solve_refuses_naming_the_argument(change, says):
    """A NaN anywhere was "netlist: refusing a non-finite value (got nan)", naming no argument; a string numpy's
    "could not convert string to float", inputs of three axes "only 0-dimensional arrays can be converted"."""
    c = _circuit()
    controls, inputs, clamps = change(_gates(c))
    with pytest.raises(ValidationError, match=re.escape(says)):
        mm.to_spice(c, controls, inputs, clamps)
    assert "VI1 n2 0 dc 0.2" in mm.to_spice(c, list(_gates(c)), INPUTS[0])


@pytest.mark.parametrize("text, says", [
    (dict(title=5), "to_spice: title must be a text (got int 5); give a str, e.g. title='xor'"),
    (dict(comments="trained"), "to_spice: comments must be a list of lines of text (got str 'trained'); give e.g. "
                               "['trained 200 epochs']"),
    (dict(comments=["ok", 7]), "to_spice: comments must be lines of text, one line each (got 7 at index 1); give each "
                               "as a str without line breaks"),
    (dict(comments=["ok", "a\n.control"]), "to_spice: comments must be lines of text, one line each (got "
                                           "'a\\n.control' at index 1)"),
])
def test_to_spice_refuses_a_title_or_comments_that_are_no_lines_of_text(text, says):
    """A title of 5 or a comment of 7 was a TypeError from inside the header, and a text of comments one comment line
    per character. A title's line breaks stay inside its comment line: no netlist line of its own gets through."""
    c = _circuit()
    with pytest.raises(ValidationError, match=re.escape(says)):
        mm.to_spice(c, _gates(c), INPUTS, **text)
    plain = mm.to_spice(c, _gates(c), INPUTS, control_block=False).splitlines()
    sneaky = mm.to_spice(c, _gates(c), INPUTS, title="xor\n.control\nshell rm x\r.endc", control_block=False,
                         comments=("one", ".end")).splitlines()
    assert sneaky[0] == "* metamaterial free twin: xor?.control?shell rm x?.endc"
    assert [line for line in sneaky if not line.startswith("*")] == [line for line in plain if not line.startswith("*")]


def test_to_spice_refuses_a_conductance_ngspice_would_take():
    """A resistor of conductance <= 0 is refused by solve on both backends, and was written into a netlist."""
    c = _circuit(mm.ResistorParams())
    with pytest.raises(ValidationError, match=re.escape("ResistorParams.check_controls: resistor conductances must be "
                                                        "> 0 (got -0.001 S at edge 0)")):
        mm.to_spice(c, np.full(c.n_edges, -1e-3), INPUTS)


def test_a_task_or_a_rail_in_millivolts_is_refused_as_a_config_refuses_it():
    """Data in millivolts (450 for 0.45 V) made a Task, and a rail of 330 a Circuit: trained on without a word, or
    failed in native Newton while ngspice answered; a config or a data file refuses a voltage past 10 V."""
    with pytest.raises(ValidationError, match=re.escape("Task.inputs: must be voltages in [-10, 10] V (got 450 at "
                                                        "point 1, column 0); give volts (0.45, not 450 mV)")):
        mm.Task("mv", [[0.0], [450.0]], [[0.1], [0.2]])
    with pytest.raises(ValidationError, match=re.escape("Task.targets: must be voltages in [-10, 10] V (got -87 at "
                                                        "point 0, column 0)")):
        mm.Task("mv", [[0.0]], [[-87.0]])
    g = mm.assign_roles(mm.lattice_network(ROWS, COLS, periodic=False),
                        Roles(inputs=(0, 2), rails=((8, 0.0), (6, 330.0)), outputs=((4, None),)))
    with pytest.raises(ValidationError, match=re.escape("Circuit.rail_voltages: must be voltages in [-10, 10] V (got "
                                                        "330 at rail 1); give volts (0.33, not 330 mV)")):
        mm.compile_graph(g, mm.nmos_preset("ald1106-fit"))


@pytest.mark.parametrize("swap, says", [
    (dict(solver="native"), "Trainer: solver must be of type AbstractSolver (got str 'native'); give e.g. "
                            "NativeSolver() or NgspiceSolver()"),
    (dict(solver=mm.NativeSolver), "Trainer: solver must be of type AbstractSolver (got ABCMeta"),
    (dict(rule=mm.EdgeDynamics()), "Trainer: rule must be of type CoupledLearning (got EdgeDynamics"),
    (dict(params=None), "Trainer: params must be of type TrainParams (got NoneType None)"),
    (dict(circuit=_graph()), "Trainer: circuit must be of type Circuit (got Graph"),
    # one step of every point, a full batch under another name, where a config refuses learning.batch_size
    (dict(params=mm.TrainParams(schedule=mm.Schedule("mini_batch", 2))), "Schedule.batch_size: must be <= the 1 "
                                                                        "points of task t (got 2); give at most 1"),
])
def test_the_trainer_refuses_parts_of_the_wrong_kind_when_made(swap, says):
    """A backend's name or the solver class itself was taken and failed at the first solve ("missing 1 required
    positional argument"); the rule and the dynamics swapped, no params or a graph were AttributeErrors from
    inside."""
    parts = dict(circuit=_circuit(), task=mm.Task("t", INPUTS, [[0.1]]), rule=mm.CoupledLearning(),
                 dynamics=mm.EdgeDynamics(), params=mm.TrainParams(), solver=mm.NativeSolver())
    with pytest.raises(ValidationError, match=re.escape(says)):
        mm.Trainer(**{**parts, **swap})


def test_a_state_of_another_circuit_is_refused_by_run():
    """Trained on after without_edges with the intact circuit's state, the compiled loop failed with numpy's "cannot
    assign slice of shape (10,) from input of shape (12,)", and the Python step in the solver."""
    c = _circuit()
    task = mm.Task("t", INPUTS, [[0.1]])
    parts = (mm.CoupledLearning(), mm.EdgeDynamics(), mm.TrainParams(epochs=2), mm.NativeSolver())
    state = mm.Trainer(c, task, *parts).init_state(_gates(c), np.random.default_rng(0))
    cut = [0, 1]  # node 0's edges to (0, 1) and (1, 0): it is an input, so nothing is stranded
    damaged = mm.Trainer(mm.without_edges(c, cut), task, *parts)
    with pytest.raises(ValidationError, match=re.escape("Trainer.run: state must hold controls [R, 10], one row per "
                                                        "generator, for this trainer's circuit (got controls (1, 12) "
                                                        "with 1 generator(s))")):
        damaged.run(state)
    again = damaged.init_state(np.delete(state.controls, cut, axis=1), state.rngs)
    assert damaged.run(again).epoch == 2




@pytest.mark.parametrize("call, says", [
    # one output's labels as a 1-D [P]: read as one row, the clamps of points 1-3 came from point 0's label
    (lambda c, v, t: mm.CoupledLearning(nudge=0.5).clamp(c, v, t.targets.ravel()),
     "CoupledLearning.clamp: targets must have shape (4, 1), one row of 1 label(s) (V) per row of free (got shape "
     "(4,)); give e.g. task.targets[idx] for the points idx"),
    (lambda c, v, t: mm.CoupledLearning().clamp(c, v[:, :4], t.targets),
     "CoupledLearning.clamp: free must have 9 columns (got shape (4, 4)); pass node voltages [B, N] of this circuit"),
    (lambda c, v, t: mm.CoupledLearning().contrast(c, v, v[:2]),
     "CoupledLearning.contrast: clamped must have the shape of free, one row per point (got (2, 9) and (4, 9))"),
    (lambda c, v, t: mm.CoupledLearning().contrast(c, v[:, :4], v[:, :4]),
     "CoupledLearning.contrast: free must have 9 columns (got shape (4, 4))"),
    (lambda c, v, t: c.output_values(v[:, :4]), "Circuit.output_values: voltages must have 9 columns (got shape "
                                                "(4, 4))"),
    (lambda c, v, t: t.margins(c.output_values(v), [0, 1, 2, 1]), "Task.margins: classes must be below 2, the "
                                                                  "classes of task xor (got class 2)"),
    (lambda c, v, t: t.accuracy(c.output_values(v)[:3]), "Task.accuracy: outputs and classes must have one row per "
                                                         "point (got 3 rows of outputs and classes of shape (4,))"),
    (lambda c, v, t: t.predict(v), "Task.predict: outputs must have 1 column(s), one per output of task xor (got shape "
                                   "(4, 9))"),
    # [P, 1] against [P] broadcast to [P, P]: every output against every point's label, without a word
    (lambda c, v, t: mm.mse(c.output_values(v), t.targets.ravel()), "mse: targets must have the last axes of outputs "
                                                                    "(got outputs (4, 1) and targets (4,))"),
])
def test_the_rule_and_the_task_refuse_arrays_their_compiled_loops_would_read_past(call, says):
    """The compiled step functions read their arrays without bounds checks: labels [P] of one output, voltages of
    too few nodes, clamped voltages of fewer points or a class past the last level answered numbers read from
    past the arrays (a margin of -3e-310 V), without a word; the task's accuracy of fewer outputs than points was
    numpy's broadcast error, of a list a TypeError."""
    c, task = _circuit(), mm.xor_task()
    v = mm.NativeSolver().solve(c, _gates(c), task.inputs).voltages
    with pytest.raises(ValidationError, match=re.escape(says)):
        call(c, v, task)
    rule = mm.CoupledLearning(nudge=0.5)
    clamps = rule.clamp(c, v, task.targets)
    out = c.output_values(v)[:, 0]
    np.testing.assert_allclose(clamps[:, 0], out + 0.5 * (task.targets[:, 0] - out), atol=1e-15)  # each its own label
    assert np.array_equal(rule.clamp(c, v.tolist(), task.targets.tolist()), clamps)  # lists: as before
    assert task.accuracy(c.output_values(v).tolist()) == task.accuracy(c.output_values(v))
