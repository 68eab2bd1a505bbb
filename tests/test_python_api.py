"""The library as a notebook uses it: the package docstring's quick start runs as written, values a solver would
take silently (a negative gmin, an edge index past the end, mismatched task arrays, a circuit changed in place) are
refused where they enter, and library calls print nothing unless asked."""

from __future__ import annotations

import re
import textwrap
from dataclasses import replace

import networkx as nx
import numpy as np
import pytest

import metamaterial as mm
from conftest import ROOT
from metamaterial import runs
from metamaterial.circuit import without_edges
from metamaterial.devices import Mismatch
from metamaterial.errors import ValidationError
from metamaterial.graph import Roles

XOR = ROOT / "configs" / "xor.yaml"
ROWS = COLS = 3  # a small open lattice: node r * COLS + c
GATES = 1.5  # V, every edge's gate
INPUTS = [[0.1, 0.2]]  # V


def _circuit(**kwargs) -> mm.Circuit:
    g = mm.assign_roles(mm.lattice_network(ROWS, COLS, periodic=False),
                        Roles(inputs=(0, 2), rails=((8, 0.0),), outputs=((4, None),)))
    return mm.compile_graph(g, mm.nmos_preset("ald1106-fit"), **kwargs)


def test_the_package_docstrings_quick_start_runs_as_written(monkeypatch):
    monkeypatch.chdir(ROOT)
    code = textwrap.dedent(mm.__doc__.split("::", 1)[1].split("\n\n")[1])
    last = "trainer.evaluate(state.controls[0]).accuracy"
    assert last in code and "# 1.0" in code
    scope: dict = {}
    exec(code.replace(last, f"accuracy = {last}"), scope)  # noqa: S102 (the docstring's own example)
    assert scope["accuracy"] == 1.0


def test_the_readmes_python_example_runs_as_written():
    """It trains XOR on ngspice and holds its own answer to Kirchhoff's law (its last line)."""
    readme = (ROOT / "README.md").read_text()
    blocks = readme.split("## Python\n", 1)[1].split("\n## ", 1)[0].split("```python\n")[1:]
    assert len(blocks) == 1
    scope: dict = {}
    exec(blocks[0].split("```", 1)[0], scope)  # noqa: S102 (the README's own example)
    assert scope["result"].accuracy == 1.0 and scope["free"].shape == (4, 16)


def test_a_trainer_made_by_hand_clocks_its_rate_as_the_config_does():
    """The README's trainer is configs/xor.yaml by hand, rate 30 /V: its clock counted the default 100 us a window,
    which realises 0.0045 /V, where the config's run counts the 0.66 s that realise 30 /V, 6,600 times as long.
    Without a rate to realise (a resistor's is in S/V^2) the default circuit's 100 us stays."""
    setup = mm.build(mm.load_config(XOR, ["simulator.backend=native"]))
    rule = mm.CoupledLearning(nudge=0.5, rate=30.0, loss="hinge", margin=0.02)
    parts = (setup.task, rule, mm.EdgeDynamics(low=0.4, high=8.0), mm.TrainParams(epochs=1), mm.NativeSolver())
    trainer = mm.Trainer(setup.circuit, *parts)
    assert trainer.hardware == setup.hardware and trainer.hardware.t_learn == pytest.approx(0.66)
    assert trainer.hardware.rate == pytest.approx(rule.rate)
    given = mm.HardwareParams(t_learn=1e-3)
    assert mm.Trainer(setup.circuit, *parts, hardware=given).hardware is given
    resistors = mm.compile_graph(mm.assign_roles(mm.lattice_network(ROWS, COLS, periodic=False), Roles(
        inputs=(0,), rails=((8, 0.0),), outputs=((4, None),))), mm.ResistorParams())
    linear = mm.Trainer(resistors, mm.regression_task(), mm.CoupledLearning(rate=1e-3), mm.EdgeDynamics(low=1e-5,
                        high=1e-2), mm.TrainParams(), mm.NativeSolver())
    assert linear.hardware == mm.HardwareParams()


@pytest.mark.parametrize("gmin", [-1.0, float("nan"), 0.0, 1.0])
def test_a_gmin_no_solver_can_take_is_refused_where_the_circuit_is_made(gmin):
    """ngspice took gmin -1 and answered 0 V at every free node; native, NaN voltages reported as converged."""
    with pytest.raises(ValidationError, match=r"simulator.gmin: must be a conductance in \(0, 0.001\) S \(got "):
        _circuit(gmin=gmin)


def test_a_circuit_cannot_be_changed_in_place():
    """The solvers cache what they built from a circuit by its identity: a rail voltage written in place reached the
    native solver and not ngspice's loaded netlist (0.45 V against 0.33 V at one node)."""
    c = _circuit()
    for name in ("edges", "inputs", "rails", "rail_voltages", "out_pos", "out_neg"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(c, name)[0] = 1


def test_a_circuits_mismatch_cannot_be_changed_in_place():
    """A V_T shift written in place into circuit.mismatch reached a new solver and not one that had solved the circuit
    before (3.6 mV apart at a node, native against native), as a rail voltage did before the circuit's own
    arrays were frozen. The drawn arrays stay the caller's to change."""
    dvto, kscale = np.zeros((2, 12)), np.ones((2, 12))
    c = replace(_circuit(), mismatch=Mismatch(dvto, kscale))
    for name in ("dvto", "kscale"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(c.mismatch, name)[0, 0] = 0.5
    dvto[0, 0] = 0.3
    assert c.mismatch.dvto[0, 0] == 0.0


def test_a_task_cannot_be_changed_in_place_and_leaves_the_callers_arrays_alone():
    """A trainer compiles a task's points once: a target written in place after it was made trained on the old
    value and was scored on the new. The caller's own arrays stay theirs to change. A task's feature map (Iris's)
    could be changed in place, and new data scaled otherwise than training's."""
    x, y = np.array([[0.0, 0.45], [0.45, 0.0]]), np.array([[0.1], [0.2]])
    task = mm.Task("t", x, y, test_inputs=x.copy(), test_targets=y.copy())
    for name in ("inputs", "targets", "test_inputs", "test_targets"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(task, name)[0, 0] = 0.3
    x[0, 0] = 0.3
    assert task.inputs[0, 0] == 0.0
    for name in ("classes", "levels"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(mm.xor_task(), name)[0] = 1
    iris = mm.iris_task(0.0, 0.45, 0.3, 0.15, 0.2, 0)  # its feature map: new data is scaled as training's was
    for name in ("lo", "span"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(iris.scale, name)[0] = 1.0


@pytest.mark.parametrize("cut, got", [
    ([99], "99 at index 0"), ([-1], "-1 at index 0"), ([0.7], "0.7 at index 0"),
    # the first item that is no edge index, named past the fifth, where the cut was shown as its first ten items
    ([0, 1, 2, 3, 4, 5, 99], "99 at index 6"), ([0, 1, 2, 3, 4, 5, 0.7], "0.7 at index 6"),
    ([0, 1, 2, 3, 4, 5, None], "None at index 6"), (np.array([1.0, 2.0]), "1.0 at index 0"),
])
def test_without_edges_refuses_what_is_not_an_edge_index(cut, got):
    """[99] returned every edge, [-1] and [0.7] cut an edge nobody named."""
    c = _circuit()
    with pytest.raises(ValidationError, match=re.escape(f"without_edges: cut must hold edge indices, integers in "
                                                        f"0..{c.n_edges - 1} (got {got}); give the indices of the "
                                                        "edges to remove")):
        without_edges(c, cut)
    assert without_edges(c, [c.n_edges - 1]).n_edges == c.n_edges - 1


def test_a_task_whose_arrays_disagree_is_refused_when_made():
    """It was accepted and failed at the first evaluation with a numpy broadcast error."""
    with pytest.raises(ValidationError, match=r"Task.targets: must be \[P, n_out\] beside Task.inputs \[P, n_in\] "
                                              r"\(got \(3, 1\) and \(4, 2\)\)"):
        mm.Task("t", np.zeros((4, 2)), np.zeros((3, 1)))
    with pytest.raises(ValidationError, match=r"Task.classes: must be \[P\], one class per point"):
        mm.Task("t", np.zeros((4, 2)), np.zeros((4, 1)), classes=np.zeros(3, int))


def test_make_solver_given_a_backend_name_says_what_it_takes():
    with pytest.raises(ValidationError, match=r"make_solver: takes a Setup, what build\(config\) returns \(got str "
                                              r"'native'\); for a solver by name, NativeSolver\(\) or NgspiceSolver"):
        mm.make_solver("native")


def test_library_calls_print_nothing_unless_asked(tmp_path, capfd, monkeypatch):
    """train_run wrote its progress lines to stderr in a notebook by default (one every 30 s: a short run showed
    none, so the progress the run asks for is recorded too); only the command line prints."""
    asked = []
    progress = runs._progress
    monkeypatch.setattr(runs, "_progress", lambda enabled, *args: asked.append(enabled) or progress(enabled, *args))
    cfg = mm.load_config(XOR, ["simulator.backend=native", "learning.epochs=50"])
    result = mm.train_run(cfg, tmp_path / "run", plots=False)
    assert result.summary["epochs"] == 50
    assert asked == [False] and capfd.readouterr() == ("", "")


@pytest.mark.parametrize("roles, says", [
    (dict(inputs=(0,), rails=(), outputs=(4,)), r"Roles.outputs: must be \(pos, neg\) pairs, neg None for a "
                                                r"single-ended output \(got 4 at index 0\); give e.g. "
                                                r"\(\(10, None\),\)"),
    (dict(inputs=(0.5,), rails=(), outputs=((4, None),)), r"Roles.inputs: must be node ids, integers \(got 0.5 at "
                                                          r"index 0\); give e.g. \(0, 3\)"),
    (dict(inputs=(0,), rails=((8,),), outputs=((4, None),)), r"Roles.rails: must be \(node, volts\) pairs"),
    (dict(inputs=(0,), rails=((8, float("nan")),), outputs=((4, None),)), r"volts a finite number \(got \(8, nan\) "
                                                                          r"at index 0\)"),
    (dict(inputs=(0,), rails=((8, float("inf")),), outputs=((4, None),)), r"volts a finite number \(got \(8, inf"),
    # the first item refused, named past the fifth, where shown() of them all ended at the fifth
    (dict(inputs=(0, 1, 2, 3, 4, 5, 6.0), rails=(), outputs=((8, None),)), r"Roles.inputs: must be node ids, integers "
                                                                          r"\(got 6.0 at index 6\)"),
    (dict(inputs=(0,), rails=[(n, 0.0) for n in range(1, 7)] + [(7, "x")], outputs=((8, None),)),
     r"Roles.rails: must be \(node, volts\) pairs, node an integer and volts a finite number \(got \(7, 'x'\) at "
     r"index 6\)"),
    # a text was read as a number and True as 1 V; a float array makes the nodes floats
    (dict(inputs=(0,), rails=((8, "0.3"),), outputs=((4, None),)), r"volts a finite number \(got \(8, '0.3'\)"),
    (dict(inputs=(0,), rails=((8, True),), outputs=((4, None),)), r"volts a finite number \(got \(8, True\)"),
    (dict(inputs=(0,), rails=np.array([[8, 0.3]]), outputs=((4, None),)), r"node an integer .* \(got array\(\[8\. "),
    (dict(inputs=(0,), rails=(), outputs=[(n, None) for n in range(2, 8)] + [(8, 9, 10)]),
     r"Roles.outputs: must be \(pos, neg\) pairs, .* \(got \(8, 9, 10\) at index 6\)"),
    # what holds no items is refused whole
    (dict(inputs=3, rails=(), outputs=((4, None),)), r"Roles.inputs: must be node ids, integers \(got 3\)"),
    (dict(inputs="03", rails=(), outputs=((4, None),)), r"Roles.inputs: must be node ids, integers \(got '03'\)"),
])
def test_roles_that_are_not_node_ids_are_refused_when_made(roles, says):
    """(4,) as outputs was a TypeError 'cannot unpack'; a numpy array of inputs, 'truth value ... ambiguous'; a rail of
    "0.3" V was taken as 0.3 V and one of True as 1 V."""
    with pytest.raises(ValidationError, match=says):
        Roles(**roles)
    made = Roles(inputs=np.array([0, 2]), rails=[(np.int64(8), 0)], outputs=[[4, None]])
    assert made == Roles(inputs=(0, 2), rails=((8, 0.0),), outputs=((4, None),))


@pytest.mark.parametrize("graph, says", [
    (nx.DiGraph([(0, 1), (1, 2)]), r"network: must be an undirected networkx Graph, one edge per pair of nodes \(got "
                                   r"DiGraph\); convert it with nx.Graph\(g\)"),
    (nx.MultiGraph([(0, 1), (0, 1), (1, 2)]), r"\(got MultiGraph\)"),
    (nx.grid_2d_graph(3, 3), r"network: node ids must be the integers 0..N-1 \(got node \(0, 0\)\); relabel with "
                             r"nx.convert_node_labels_to_integers"),
])
def test_a_graph_the_circuit_cannot_index_is_refused_with_how_to_convert_it(graph, says):
    """A MultiGraph's parallel edge ended in 'cannot reshape array of size 57'; a DiGraph in networkx's own error."""
    with pytest.raises(ValidationError, match=says):
        mm.assign_roles(graph, Roles(inputs=(0,), rails=(), outputs=((2, None),)))


def test_a_circuit_refuses_a_rail_without_a_finite_voltage():
    """A NaN rail reached both solvers, whose NaN node voltages were then blamed on the gates."""
    c = _circuit()
    fields = {f: getattr(c, f) for f in c.__dataclass_fields__}
    with pytest.raises(ValidationError, match=r"^Circuit.rail_voltages: must be finite \(got nan at rail 0\); give "
                                              r"each rail a finite voltage$"):
        mm.Circuit(**{**fields, "rail_voltages": np.array([np.nan])})
    # the sixth of six rails: shown() of the array would hide it behind "..."
    with pytest.raises(ValidationError, match=r"\(got inf at rail 5\)"):
        mm.Circuit(**{**fields, "rails": np.arange(6), "rail_voltages": np.array([0.0] * 5 + [np.inf])})


def test_train_params_and_init_state_refuse_what_they_cannot_use():
    """epochs=2.5 was accepted and failed in the loop with a TypeError; a seed for the generator, with "'int' object
    is not iterable"."""
    with pytest.raises(ValidationError, match=r"^TrainParams.epochs: must be a whole number \(got 2.5\); give an int$"):
        mm.TrainParams(epochs=2.5)
    setup = mm.build(mm.load_config(XOR, ["simulator.backend=native"]))
    trainer = mm.make_trainer(setup)
    with pytest.raises(ValidationError, match=r"Trainer.init_state: rngs must be a numpy Generator, or a list of one "
                                              r"per replica \(got 0\); give np.random.default_rng\(seed\)"):
        trainer.init_state(np.full(setup.circuit.n_edges, GATES), 0)
    # the one seed among generators, named by its replica: shown() of the list ended at the fifth
    rngs = [np.random.default_rng(s) for s in range(6)] + [6]
    with pytest.raises(ValidationError, match=r"Trainer.init_state: rngs must be a numpy Generator, or a list of one "
                                              r"per replica \(got 6 at replica 6\); give np.random.default_rng"):
        trainer.init_state(np.full((7, setup.circuit.n_edges), GATES), rngs)


@pytest.mark.parametrize("make, says", [
    (lambda: mm.HardwareParams(capacitance="2.2u"), "HardwareParams.capacitance: must be a number (got '2.2u')"),
    (lambda: mm.CoupledLearning(rate="30"), "CoupledLearning.rate: must be a number (got '30')"),
    (lambda: mm.EdgeDynamics(leak_tau="1s"), "EdgeDynamics.leak_tau: must be a number (got '1s')"),
    (lambda: _circuit(temperature="hot"), "Circuit.temperature: must be a number (got 'hot')"),
    (lambda: mm.NmosParams(vto="0.6"), "NmosParams.vto: must be a number (got '0.6')"),
    (lambda: mm.nmos_preset("ald1106-fit", vth=0.5), "nmos_preset: no parameter 'vth' (got ['vth']); NmosParams "
                                                     "takes vto, kp, w, l, lambda_"),
])
def test_a_string_where_a_number_goes_names_the_field(make, says):
    """Each was a bare TypeError, from a comparison ("'>' not supported between 'str' and 'int'") or from
    dataclasses.replace (an unknown keyword), naming neither the field nor the ones there are."""
    with pytest.raises(ValidationError, match=re.escape(says)):
        make()
    assert mm.EdgeDynamics(leak_tau=None).leak_tau is None and mm.CoupledLearning(rate=np.float32(3)).rate == 3


@pytest.mark.parametrize("device, dynamics, says", [
    (mm.ResistorParams(), mm.EdgeDynamics(), "EdgeDynamics.low, EdgeDynamics.high: resistor controls must lie in "
                                             "[1e-05, 0.01] S (got [0.4, 8]); keep the bounds inside device.g_min and "
                                             "device.g_max"),
    (mm.PotentiometerParams(), mm.EdgeDynamics("sign", 0, 200), "potentiometer controls must lie in [0, 99] tap (got "
                                                                "[0, 200])"),
    (mm.PotentiometerParams(), mm.EdgeDynamics(low=0, high=99),
     "EdgeDynamics.kind: a potentiometer edge's control moves one tap per update ('sign') (got 'continuous', which "
     "makes fractional taps); give EdgeDynamics('sign', low, high)"),
    (mm.nmos_preset("ald1106-fit"), mm.EdgeDynamics("sign"),
     "EdgeDynamics.kind: a nmos edge's control moves by rate x contrast ('continuous') (got 'sign', which makes steps "
     "of one unit whatever the rate)"),
])
def test_the_trainer_refuses_edge_dynamics_its_device_cannot_follow(device, dynamics, says):
    """EdgeDynamics' defaults are gate voltages: a resistor network trained with them had its conductances clipped
    up to 0.4 S (40 times its g_max) at the first update, without a word; a potentiometer under the continuous rule
    reached taps such as 7.98, and a transistor under the sign rule moved its gates 1 V per update whatever the
    rate. The config never pairs them so; a notebook did."""
    c = mm.compile_graph(mm.assign_roles(mm.lattice_network(ROWS, COLS, periodic=False),
                                         Roles(inputs=(0,), rails=((8, 0.0),), outputs=((4, None),))), device)
    task = mm.regression_task()
    with pytest.raises(mm.MetamaterialError, match=re.escape(says)) as caught:
        mm.Trainer(c, task, mm.CoupledLearning(), dynamics, mm.TrainParams(), mm.NativeSolver())
    assert isinstance(caught.value, ValueError)
    low, high = device.default_bounds()
    mm.Trainer(c, task, mm.CoupledLearning(), mm.EdgeDynamics(device.update_kind, low, high), mm.TrainParams(),
               mm.NativeSolver())


def test_the_trainer_refuses_a_rate_the_potentiometers_sign_rule_would_ignore():
    """A potentiometer steps one tap per update by the contrast's sign: rate 0.1 trained exactly as rate 1 did, without
    a word (the config refuses learning.rate there)."""
    device = mm.PotentiometerParams()
    c = mm.compile_graph(mm.assign_roles(mm.lattice_network(ROWS, COLS, periodic=False),
                                         Roles(inputs=(0,), rails=((8, 0.0),), outputs=((4, None),))), device)
    dyn = mm.EdgeDynamics("sign", *device.default_bounds())
    for rule, got in ((mm.CoupledLearning(rate=0.1), "rate 0.1, rate_decay 1"),
                      (mm.CoupledLearning(rate_decay=0.9), "rate 1, rate_decay 0.9")):
        with pytest.raises(ValidationError, match=re.escape(
                "CoupledLearning.rate, CoupledLearning.rate_decay: a potentiometer steps one whole tap per update, "
                f"with no rate or decay (got {got}); leave both at 1.0")):
            mm.Trainer(c, mm.regression_task(), rule, dyn, mm.TrainParams(), mm.NativeSolver())


@pytest.mark.parametrize("make, says", [
    (lambda: mm.CoupledLearning(loss="hinge", margin=float("nan")),
     "CoupledLearning.margin: must be a finite number of volts (got nan); give e.g. margin=0.02"),
    (lambda: mm.Schedule("mini_batch", 2.5), "Schedule.batch_size: must be a whole number (got 2.5); give an int"),
    # shuffled steps of one point, where batches of two were meant, without a word (a config refuses it)
    (lambda: mm.Schedule("shuffle", 2), "Schedule.batch_size: only kind 'mini_batch' steps in batches (got batch_size "
                                        "2 with kind 'shuffle'); give Schedule('mini_batch', 2), or leave batch_size "
                                        "out"),
    (lambda: mm.TrainParams(schedule="full_batch"), "TrainParams.schedule: must be a Schedule (got str 'full_batch'); "
                                                    "give e.g. Schedule('full_batch')"),
    (lambda: mm.EdgeDynamics(leak_tau=1.0, rest=float("nan")), "EdgeDynamics.rest: must be finite (got nan)"),
    (lambda: mm.EdgeDynamics(bias=np.full(3, np.nan)), "EdgeDynamics.bias: must be finite (got nan at edge 0); give "
                                                       "every edge a finite offset"),
    (lambda: mm.EdgeDynamics(bias=np.zeros((2, 3))), "EdgeDynamics.bias: must be one offset per edge, shape [E] (got "
                                                     "shape (2, 3))"),
])
def test_learning_parameters_refuse_what_would_fail_or_stall_training(make, says):
    """A NaN hinge margin stopped every point (the run trained nothing, without a word); batch_size 2.5 failed in the
    first epoch's slicing, a schedule's name with "'str' object has no attribute 'steps_per_epoch'", a bias list
    with "'list' object has no attribute 'shape'"; a NaN rest or bias made the controls NaN, refused as the
    controls' own fault at the next evaluation."""
    with pytest.raises(ValidationError, match=re.escape(says)):
        make()
    assert mm.EdgeDynamics(bias=[0.0, 0.1]).bias.tolist() == [0.0, 0.1]


def test_compile_graph_refuses_a_graph_edited_after_its_roles_were_assigned():
    """A node cut off after assign_roles compiled, and the solvers failed on it: native with a ZeroDivisionError,
    ngspice with "node vector 'n2' missing from plot"."""
    g = mm.assign_roles(mm.lattice_network(ROWS, COLS, periodic=False),
                        Roles(inputs=(0, 2), rails=((8, 0.0),), outputs=((4, None),)))
    g.remove_edges_from([(3, 6), (6, 7)])  # node 6, (2, 0), loses its two edges
    with pytest.raises(ValidationError, match=re.escape("network: the graph is disconnected: 1 node(s) have no path "
                                                        "to the part holding the inputs, rails and outputs ((2, 0)); "
                                                        "connect them or remove them")):
        mm.compile_graph(g, mm.nmos_preset("ald1106-fit"))


def test_the_native_solver_refuses_a_circuit_node_with_no_edge():
    """A Circuit made by hand with a node of no edge (no channel, no bulk junction) was a ZeroDivisionError."""
    c = _circuit()
    bare = replace(c, edges=c.edges[~(c.edges == 6).any(axis=1)])
    with pytest.raises(ValidationError, match=re.escape("NativeSolver: node(s) [6] have no edge and are not driven, "
                                                        "so their voltage is undefined (got 1 such nodes)")):
        mm.NativeSolver().solve(bare, np.full(bare.n_edges, GATES), INPUTS)


def test_node_id_finds_a_node_by_the_name_a_graph_of_ones_own_keeps():
    """Roles take integers only: a graph of named nodes, relabelled as the package docstring says, had no public way
    back from a name (or a lattice's (row, col)) to the integer; the config's way of naming nodes is node_id."""
    own = nx.Graph([("in_a", "mid"), ("in_b", "mid"), ("mid", "out"), ("out", "ground"), ("in_a", "out")])
    g = nx.convert_node_labels_to_integers(own, label_attribute="label")
    ids = {name: mm.node_id(g, name) for name in ("in_a", "in_b", "out", "ground")}
    assert all(g.nodes[i]["label"] == name for name, i in ids.items())
    c = mm.compile_graph(mm.assign_roles(g, Roles(inputs=(ids["in_a"], ids["in_b"]), rails=((ids["ground"], 0.0),),
                                                  outputs=((ids["out"], None),))), mm.ResistorParams())
    v = mm.NativeSolver().solve(c, np.full(c.n_edges, 1e-3), np.array([[0.3, 0.1]])).voltages[0]
    assert v[ids["in_a"]] == pytest.approx(0.3) and v[ids["ground"]] == 0.0 and 0.0 < v[ids["out"]] < 0.3
    assert mm.node_id(mm.lattice_network(3, 3), (1, 2)) == 5
    with pytest.raises(ValidationError, match=re.escape("node_id: no node is named 'outt' in the graph's labels")):
        mm.node_id(g, "outt")
    with pytest.raises(ValidationError, match=re.escape("node_id: nodes are named only in a graph whose nodes keep "
                                                        "a 'label'")):
        mm.node_id(nx.path_graph(3), "a")


def test_node_id_finds_a_node_by_a_label_that_is_no_text():
    """A graph of one's own relabelled as the README says keeps its names as they were: nx.grid_2d_graph's (row, col)
    pairs were refused as "(row, col) addressing needs a lattice network ... or use network.kind: lattice", and a
    number's text "20" as "nodes are named only in a graph whose nodes keep a 'label'", though they did."""
    grid = nx.convert_node_labels_to_integers(nx.grid_2d_graph(ROWS, COLS), label_attribute="label")
    assert grid.nodes[mm.node_id(grid, (1, 2))]["label"] == (1, 2)
    assert mm.node_id(grid, "(1, 2)") == mm.node_id(grid, (1, 2))  # as Circuit.node_labels writes it
    numbered = nx.convert_node_labels_to_integers(nx.path_graph([10, 20, 30]), label_attribute="label")
    assert numbered.nodes[mm.node_id(numbered, "20")]["label"] == 20
    with pytest.raises(ValidationError, match=re.escape('node_id: node 20 does not exist (nodes are 0..2), and an '
                                                        'unquoted number is an index; write "20", quoted')):
        mm.node_id(numbered, 20)
    assert mm.node_id(numbered, 2) == 2  # no node is named 2: the index


@pytest.mark.parametrize("ref, says", [
    (2.7, "node_id: a node is an integer index, a name or on a lattice a (row, col) pair (got float 2.7); give e.g. 0"),
    (None, "node_id: a node is an integer index, a name or on a lattice a (row, col) pair (got NoneType None)"),
    ((1.5, 2), "node_id: (row, col) must be two integers (got (1.5, 2)); give e.g. (1, 2)"),
    (("a", 2), "node_id: (row, col) must be two integers (got ('a', 2)); give e.g. (1, 2)"),
])
def test_node_id_refuses_what_is_no_node_rather_than_round_it(ref, says):
    """2.7 was node 2 and (1.5, 2) node (1, 2), without a word, where Roles refuses a float; None and ('a', 2) were
    int()'s TypeError and ValueError. A (row, col) pair as a numpy array is a pair."""
    g = mm.lattice_network(ROWS, COLS)
    with pytest.raises(ValidationError, match=re.escape(says)):
        mm.node_id(g, ref)
    assert mm.node_id(g, np.array([1, 2])) == mm.node_id(g, (np.int64(1), 2)) == mm.node_id(g, np.int64(5)) == 5


TINY_EPOCHS = 3  # a path and its Config must agree to the bit; nothing needs to be learned
#: each public entry point that takes a config, as a call on (config, a folder of its own) giving what it made
CONFIG_ENTRY_POINTS = {
    "build": lambda cfg, out: mm.to_spice((s := mm.build(cfg)).circuit,
                                          mm.initial_controls(s, np.random.default_rng(0)), s.task.inputs),
    "train_replicas": lambda cfg, out: _closed(mm.train_replicas(cfg, [0, 1])).state.controls.tolist(),
    "train_run": lambda cfg, out: mm.train_run(cfg, out / "run", plots=False).state.controls.tolist(),
    "ensemble_run": lambda cfg, out: _ensemble_csv(mm.ensemble_run(cfg, out / "run", 2), out / "run"),
    "write_netlists": lambda cfg, out: [p.read_text() for p in mm.write_netlists(cfg, out / "nl", points="0-1")[0]],
    "solve_points": lambda cfg, out: mm.solve_points(cfg, points="2"),
}


def _ensemble_csv(summary: dict, run_dir) -> str:
    assert summary["seeds"] == [0, 1]
    return (run_dir / "ensemble.csv").read_text()


def _closed(done: runs.Trained) -> runs.Trained:
    done.trainer.solver.close()
    return done


@pytest.fixture(scope="module")
def tiny_xor(tmp_path_factory):
    """configs/xor.yaml, trained for TINY_EPOCHS on the native backend."""
    text = XOR.read_text()
    assert "epochs: 3000" in text and "backend: ngspice" in text
    path = tmp_path_factory.mktemp("config") / "xor.yaml"
    path.write_text(text.replace("epochs: 3000", f"epochs: {TINY_EPOCHS}").replace("backend: ngspice",
                                                                                  "backend: native"))
    return path


@pytest.mark.parametrize("name", list(CONFIG_ENTRY_POINTS))
def test_each_entry_point_takes_a_config_or_its_path_alike(tiny_xor, tmp_path, name):
    """train_run and ensemble_run took a config file's path where build, train_replicas, write_netlists and
    solve_points refused one (build by name, the others with "'str' object has no attribute 'simulator'"); each
    now takes a Config, or a path as str or Path, and makes the same from each."""
    call = CONFIG_ENTRY_POINTS[name]
    made = [call(cfg, tmp_path / str(k)) for k, cfg in enumerate((mm.load_config(tiny_xor), tiny_xor, str(tiny_xor)))]
    assert made[0] and made[1] == made[0] and made[2] == made[0]


@pytest.mark.parametrize("given, got", [(3, "int 3"), ({"name": "xor"}, "dict {'name': 'xor'}")])
@pytest.mark.parametrize("name", list(CONFIG_ENTRY_POINTS))
def test_each_entry_point_refuses_what_is_no_config_by_name(tmp_path, name, given, got):
    """An int or a dict was an AttributeError from inside (or, where a path was read, load_config's own words):
    each entry point names itself and its argument, what it was given and what to give, and makes nothing."""
    fix = "give e.g. 'configs/xor.yaml' or load_config('configs/xor.yaml')"
    with pytest.raises(mm.ConfigError, match=re.escape(f"{name}: cfg must be a Config or a config file's path (got "
                                                       f"{got}); {fix}")) as caught:
        CONFIG_ENTRY_POINTS[name](given, tmp_path)
    assert isinstance(caught.value, ValueError) and list(tmp_path.iterdir()) == []
