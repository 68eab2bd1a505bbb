"""Many-class classification at scale: the layered builder, the 8x8 digits task, the multi-class hinge's top-rival
nudge (closed forms and invariants), and its training on both step paths and both backends on a subset."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from conftest import ROOT
from metamaterial import step as st
from metamaterial.analysis import confusion_matrix
from metamaterial.configfile import load_config
from metamaterial.errors import ConfigError, ValidationError
from metamaterial.experiment import build, initial_controls, make_solver
from metamaterial.graph import layered_network
from metamaterial.learning.rules import CoupledLearning
from metamaterial.learning.trainer import Trainer
from metamaterial.sim import registry

datasets = pytest.importorskip("sklearn.datasets", reason="the digits task needs scikit-learn: pip install '.[digits]'")

N_IN, N_HIDDEN, N_OUT = 12, 5, 6
PEER_EDGES, PEER_TRAIN, PEER_TEST = 1247, 1437, 360
SUBSET = 40              # training points of the step-path and backend comparisons
SUBSET_EPOCHS = 2
SAME_GATES_V = 1e-12     # the two step paths do the same arithmetic
GATE_AGREEMENT_V = 1e-6  # native against ngspice
NOISE_V = 0.005           # read noise of the mismatched-chip config


def test_layered_network_wires_only_adjacent_layers():
    full = layered_network(N_IN, N_OUT)
    assert full.number_of_edges() == N_IN * N_OUT
    assert all(full.nodes[a]["layer"] == 0 and full.nodes[b]["layer"] == 2 for a, b in full.edges)
    deep = layered_network(N_IN, N_OUT, hidden=N_HIDDEN)
    assert deep.number_of_edges() == N_IN * N_HIDDEN + N_HIDDEN * N_OUT
    assert {(deep.nodes[a]["layer"], deep.nodes[b]["layer"]) for a, b in deep.edges} == {(0, 1), (1, 2)}
    assert [deep.nodes[n]["label"] for n in (0, N_IN, N_IN + N_HIDDEN)] == ["in0", "h0", "out0"]


def test_direct_edges_wire_inputs_to_outputs_beside_the_hidden_layer():
    skip = layered_network(N_IN, N_OUT, hidden=N_HIDDEN, direct=True)
    assert skip.number_of_edges() == N_IN * N_HIDDEN + N_HIDDEN * N_OUT + N_IN * N_OUT
    assert {(skip.nodes[a]["layer"], skip.nodes[b]["layer"]) for a, b in skip.edges} == {(0, 1), (1, 2), (0, 2)}
    with pytest.raises(ValidationError, match="network.direct: .*there is none"):
        layered_network(N_IN, N_OUT, direct=True)


def test_layered_network_draws_its_edges_from_the_seed():
    pairs = N_IN * N_OUT
    a, b, c = (layered_network(N_IN, N_OUT, n_edges=pairs - 7, seed=s) for s in (3, 3, 4))
    assert a.number_of_edges() == pairs - 7
    assert sorted(a.edges) == sorted(b.edges) != sorted(c.edges)
    assert layered_network(N_IN, N_OUT, density=0.5, seed=0).number_of_edges() == round(0.5 * pairs)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"density": 0.0}, r"network.density: must be in \(0, 1\]"),
    ({"n_edges": N_IN * N_OUT + 1}, r"network.n_edges: must be in \[1, 72\]"),
    ({"n_edges": 3}, "unconnected .*raise network.density or network.n_edges, or change network.seed"),
])
def test_layered_network_errors_name_the_key(kwargs, fragment):
    with pytest.raises(ValidationError, match=fragment):
        layered_network(N_IN, N_OUT, seed=0, **kwargs)


def test_digits_config_is_the_peer_layout_task_and_split():
    setup = build(load_config(ROOT / "configs" / "digits.yaml"))
    c, task = setup.circuit, setup.task
    assert (c.n_nodes, c.n_edges, c.n_inputs, c.n_outputs) == (84, PEER_EDGES, 64, 10)
    np.testing.assert_array_equal(c.out_neg - c.out_pos, 10)  # class k: (out k, out 10 + k), as the peer's rails
    assert (task.n_points, len(task.test_inputs)) == (PEER_TRAIN, PEER_TEST)
    x, y = datasets.load_digits(return_X_y=True)
    np.testing.assert_array_equal(np.bincount(task.test_classes), np.bincount(y) - np.bincount(task.classes))
    rows = {tuple(r) for r in x / 16.0}
    assert all(tuple(r) in rows for r in task.inputs[:50])  # each input row is some image's pixels / 16, in V
    assert setup.rule.rival and setup.rule.hinge and setup.rule.nudge == 0.05


def test_rival_push_moves_the_true_score_up_and_the_top_rival_down():
    rng = np.random.default_rng(0)
    out = rng.uniform(-0.1, 0.1, (5, 10))
    classes = np.array([0, 3, 9, 3, 7])
    delta = 0.05
    push = st.compiled().output_pushes(out, np.zeros_like(out), classes, delta, True)
    for b, c in enumerate(classes):
        rival = max((k for k in range(10) if k != c), key=lambda k: out[b, k])
        expected = np.zeros(10)
        expected[c], expected[rival] = delta, -delta
        np.testing.assert_array_equal(push[b], expected)


def test_rival_clamp_holds_every_other_output_and_leaves_its_edges_unchanged(ngspice):
    """On a layered network without a hidden layer every output node hangs between driven inputs only, so holding
    the other outputs at their free values changes nothing: their edges' contrast is exactly 0 (the peer updates
    only the clamped rails' edges) and the true and rival scores move by +/- delta in the clamped solve."""
    setup = build(load_config(ROOT / "configs" / "digits.yaml", ["simulator.backend=ngspice"]))
    c, task, rule = setup.circuit, setup.task, setup.rule
    gates = initial_controls(setup, np.random.default_rng(0))
    x, cls = task.inputs[:3], task.classes[:3]
    for solver in (ngspice, registry.make_solver("native", setup.options)):
        free = solver.solve(c, gates, x).voltages
        clamped = solver.solve(c, gates, x, rule.clamp(c, free, task.targets[:3], cls)).voltages
        o_free, o_clamped = c.output_values(free), c.output_values(clamped)
        f = st.compiled()
        u = f.summed_contrast(free, clamped, c.edges[:, 0], c.edges[:, 1], np.ones(3, np.bool_), 3)
        for b in range(3):
            rival = int(np.argmax(np.where(np.arange(10) == cls[b], -np.inf, o_free[b])))
            np.testing.assert_allclose(o_clamped[b, cls[b]] - o_free[b, cls[b]], rule.nudge, atol=1e-9)
            np.testing.assert_allclose(o_clamped[b, rival] - o_free[b, rival], -rule.nudge, atol=1e-9)
            held = [k for k in range(10) if k not in (cls[b], rival)]
            np.testing.assert_allclose(o_clamped[b, held], o_free[b, held], atol=1e-9)
            moved_nodes = {int(c.out_pos[k]) for k in (cls[b], rival)} | {int(c.out_neg[k]) for k in (cls[b], rival)}
            others = [e for e, (a, z) in enumerate(c.edges) if a not in moved_nodes and z not in moved_nodes]
            assert np.max(np.abs(u[b, others])) < 1e-12
            assert np.max(np.abs(u[b])) > 1e-6


def test_rival_clamp_needs_the_classes():
    setup = build(load_config(ROOT / "configs" / "digits.yaml"))
    with pytest.raises(ValidationError, match="multiclass_hinge nudge needs each point's class"):
        setup.rule.clamp(setup.circuit, np.zeros((1, setup.circuit.n_nodes)), setup.task.targets[:1])


def test_multiclass_hinge_needs_an_argmax_task():
    with pytest.raises(ValidationError, match="'multiclass_hinge' needs one output per class"):
        setup = build(load_config(ROOT / "configs" / "xor.yaml", ["simulator.backend=native"]))
        Trainer(setup.circuit, setup.task, CoupledLearning(nudge=0.05, loss="multiclass_hinge"), setup.dynamics,
                setup.params, make_solver(setup), setup.hardware)


def _subset_trainer(backend: str, compiled: bool, solver=None, overrides=()) -> tuple[Trainer, np.ndarray]:
    setup = build(load_config(ROOT / "configs" / "digits.yaml", [f"simulator.backend={backend}",
                                                                 f"learning.epochs={SUBSET_EPOCHS}", *overrides]))
    t = setup.task
    task = replace(t, inputs=t.inputs[:SUBSET], targets=t.targets[:SUBSET], classes=t.classes[:SUBSET],
                   test_inputs=t.test_inputs[:SUBSET], test_targets=t.test_targets[:SUBSET],
                   test_classes=t.test_classes[:SUBSET])
    tr = Trainer(setup.circuit, task, setup.rule, setup.dynamics, setup.params, solver or make_solver(setup),
                 setup.hardware, compiled=compiled)
    return tr, initial_controls(setup, np.random.default_rng(0))


def _train_subset(backend: str, compiled: bool, solver=None, overrides=()):
    tr, gates = _subset_trainer(backend, compiled, solver, overrides)
    rng = np.random.default_rng(0)
    return tr, tr.run(tr.init_state(gates, rng))


def test_compiled_loop_trains_the_digits_subset_as_the_python_step():
    tr_py, python = _train_subset("native", compiled=False)
    tr_fused, fused = _train_subset("native", compiled=True)
    assert tr_fused.solver.loop_iterations > 0 and tr_py.solver.loop_iterations == 0
    np.testing.assert_allclose(fused.controls, python.controls, rtol=0, atol=SAME_GATES_V)
    assert fused.n_updates.tolist() == python.n_updates.tolist() and fused.n_solves == python.n_solves
    assert np.max(np.abs(fused.controls - fused.trajectory[0])) > 0.01, "the subset must train"


def test_ngspice_trains_the_digits_subset_to_the_native_gates(ngspice):
    _, native = _train_subset("native", compiled=True)
    _, spice = _train_subset("ngspice", compiled=True, solver=ngspice)
    assert np.max(np.abs(spice.controls - native.controls)) <= GATE_AGREEMENT_V
    assert spice.n_updates.tolist() == native.n_updates.tolist()
    assert np.max(np.abs(native.controls - native.trajectory[0])) > 0.01, "the subset must train"


def test_pushed_edges_only_is_the_same_training_on_the_peer_layout():
    """Without a hidden layer the held outputs' edges see a contrast of exactly 0, so updating only the pushed
    outputs' edges (the peer's rule) trains to the same gates as updating every edge."""
    _, every = _train_subset("native", compiled=True, overrides=["learning.update_edges=all"])
    _, pushed = _train_subset("native", compiled=True, overrides=["learning.update_edges=pushed"])
    np.testing.assert_allclose(pushed.controls, every.controls, rtol=0, atol=SAME_GATES_V)
    assert np.max(np.abs(every.controls - every.trajectory[0])) > 0.01, "the subset must train"


def test_with_read_noise_only_the_pushed_outputs_edges_move():
    """Read noise gives every edge a contrast; with update_edges: pushed a step moves only the edges of the true
    class's and the top rival's output nodes, with 'all' the others move too."""
    moved = {}
    for edges in ("all", "pushed"):
        tr, gates = _subset_trainer("native", compiled=False,
                                    overrides=[f"learning.update_edges={edges}", f"learning.read_noise={NOISE_V}"])
        point = np.array([0])
        free = tr.solver.solve(tr.circuit, gates, tr.task.inputs[point]).voltages
        out = tr.circuit.output_values(free)[0]
        cls = int(tr.task.classes[0])
        rival = int(np.argmax(np.where(np.arange(10) == cls, -np.inf, out)))
        assert out[cls] - out[rival] < tr.rule.margin, "the point must be active"
        new, _, windows = tr.step_many(gates[None], point[None], [np.random.default_rng(0)])
        assert windows.tolist() == [1]
        c = tr.circuit
        nodes = {int(c.out_pos[k]) for k in (cls, rival)} | {int(c.out_neg[k]) for k in (cls, rival)}
        touching = np.array([a in nodes or b in nodes for a, b in c.edges])
        moved[edges] = np.abs(new[0] - gates)
        assert np.min(moved[edges][touching]) > 0
    assert np.max(moved["pushed"][~touching]) == 0
    assert np.min(moved["all"][~touching]) > 0


@pytest.mark.parametrize("decide", [False, True])
def test_ngspice_trains_the_digits_subset_with_read_noise_and_pushed_edges_to_the_native_gates(ngspice, decide):
    noisy = [f"learning.read_noise={NOISE_V}", "learning.update_edges=pushed", f"learning.noisy_decisions={decide}"]
    _, native = _train_subset("native", compiled=False, overrides=noisy)
    _, spice = _train_subset("ngspice", compiled=False, solver=ngspice, overrides=noisy)
    assert np.max(np.abs(spice.controls - native.controls)) <= GATE_AGREEMENT_V
    assert spice.n_updates.tolist() == native.n_updates.tolist()
    assert np.max(np.abs(native.controls - native.trajectory[0])) > 0.01, "the subset must train"


def test_noisy_decisions_clamp_from_the_noisy_free_read():
    """With learning.noisy_decisions one noisy read of the free phase decides the rival and sets the clamps, and
    the clamped read adds its own noise: the step equals that computed by hand from the same generator, and
    differs from the step whose decisions and clamps use the exact free voltages."""
    tr, gates = _subset_trainer("native", compiled=False, overrides=[
        f"learning.read_noise={NOISE_V}", "learning.update_edges=pushed", "learning.noisy_decisions=true"])
    c, rule, f = tr.circuit, tr.rule, st.compiled()
    point = np.array([0])
    x, cls = tr.task.inputs[point], tr.task.classes[point]
    new, _, windows = tr.step_many(gates[None], point[None], [np.random.default_rng(1)])
    assert windows.tolist() == [1]
    rng = np.random.default_rng(1)
    free = tr.solver.solve(c, gates, x).voltages + NOISE_V * rng.standard_normal((1, c.n_nodes))
    push = f.output_pushes(f.output_values(free, c.out_pos, c.out_neg), tr.task.targets[point], cls, rule.nudge, True)
    clamped = tr.solver.solve(c, gates, x, f.clamp_values(free, push, c.out_pos, c.out_neg)).voltages
    clamped = clamped + NOISE_V * rng.standard_normal((1, c.n_nodes))
    touch = f.pushed_nodes(push, c.out_pos, c.out_neg, c.n_nodes)
    u = f.summed_contrast(free, clamped, c.edges[:, 0], c.edges[:, 1], np.ones(1, np.bool_), 1, touch)
    low, high = tr.dynamics.low, tr.dynamics.high
    np.testing.assert_allclose(new[0], np.clip(gates + rule.rate * u[0], low, high), rtol=0, atol=SAME_GATES_V)
    exact = replace(tr.params, noisy_decisions=False)
    tr_exact = Trainer(c, tr.task, rule, tr.dynamics, exact, tr.solver, tr.hardware, compiled=False)
    other, _, _ = tr_exact.step_many(gates[None], point[None], [np.random.default_rng(1)])
    assert np.max(np.abs(other[0] - new[0])) > 1e-4


def test_update_edges_is_checked():
    with pytest.raises(ValidationError, match="CoupledLearning.update_edges: must be one of all, pushed"):
        CoupledLearning(update_edges="rails")
    with pytest.raises(ConfigError, match="learning.update_edges"):
        load_config(ROOT / "configs" / "digits.yaml", ["learning.update_edges=rails"])


def test_noisy_decisions_need_read_noise():
    with pytest.raises(ValidationError, match=r"learning.noisy_decisions: needs read noise \(got read_noise 0\)"):
        build(load_config(ROOT / "configs" / "digits.yaml", ["learning.noisy_decisions=true"]))


def test_confusion_matrix_counts_true_against_predicted():
    true, predicted = np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2])
    counts = confusion_matrix(true, predicted, 3)
    np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert counts.sum() == len(true) and np.trace(counts) / counts.sum() == np.mean(true == predicted)


def test_the_claims_references_are_fitted_on_scikit_learns_own_split():
    """``claims.digits.references`` scores classifiers on the digits task's split and inputs: the same figure as
    scikit-learn on its bundled digits / 16 split by ``train_test_split(test_size=0.2, stratify, random_state=0)``
    (the peer's split), and an additive score (level indicators per pixel) is at least the linear one there."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from metamaterial.claims.digits import references

    task = build(load_config(ROOT / "configs" / "digits.yaml")).task
    refs = references(task, quick=True)
    x, y = datasets.load_digits(return_X_y=True)
    xa, xt, ya, yt = train_test_split(x / 16, y, test_size=0.2, stratify=y, random_state=0)
    assert refs["pixels"]["best"] == LogisticRegression(C=1.0, max_iter=20_000).fit(xa, ya).score(xt, yt)
    assert refs["level indicators x >= k/16, k = 1, 3, ..., 15"]["best"] >= refs["pixels"]["best"]


def test_the_digits_task_without_scikit_learn_says_how_to_install_it(monkeypatch):
    import sys  # noqa: PLC0415

    from metamaterial.tasks import digits_task  # noqa: PLC0415

    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # an import of it then raises ImportError
    with pytest.raises(ValidationError, match=r"^task.name: the digits task needs scikit-learn \(got none installed\); "
                                              r"install it with `make setup` or, in the checkout, pip install "
                                              r"'\.\[digits\]'$"):
        digits_task(0.0, 1.0, 1.0, 0.0, 0.2, 0)
