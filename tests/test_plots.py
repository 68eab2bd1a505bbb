"""What a run directory's figures show, read from the drawn figures themselves: the run's name in every title,
one integer tick per data point, legends with the task's column names, the loss axis and title naming the loss
trained on (the hinge's panel shows the margin it acts on); an ensemble gets its accuracy per epoch (training and
held-out, ending at ensemble.csv's medians), a success rate per epoch and a histogram of every replica's smallest
margin, whose counts add up to the replicas and match ensemble.csv."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from conftest import ROOT
from metamaterial import plots
from metamaterial.configfile import load_config
from metamaterial.runfiles import load_checkpoint
from metamaterial.runs import ensemble_run, train_run

EPOCHS = 30  # short native trainings: the figures' content, not the learning, is under test
N_SEEDS = 5
NAME = "first_hour"  # a run name that is neither a config's nor a task's
CONFIGS = ROOT / "configs"


@pytest.fixture
def drawn(monkeypatch):
    """file name -> the matplotlib figure ``plots`` saved under it (a closed figure keeps its axes and texts)."""
    figures = {}
    save = plots._save

    def keep(fig, path, plt):
        figures[path.name] = fig
        return save(fig, path, plt)

    monkeypatch.setattr(plots, "_save", keep)
    return figures


def _train(tmp_path, config: str, *overrides: str, seeds: int = 1):
    cfg = load_config(CONFIGS / config, ["simulator.backend=native", f"learning.epochs={EPOCHS}", f"name={NAME}",
                                         *overrides])
    run = tmp_path / "run"
    if seeds > 1:
        ensemble_run(cfg, run, seeds)
    else:
        train_run(cfg, run, plots=False)
    return run


def _legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_a_hinge_run_names_its_loss_its_points_and_its_output(tmp_path, drawn):
    run = _train(tmp_path, "xor.yaml")
    assert [p.name for p in plots.plot_run_dir(run)] == ["loss.png", "accuracy.png", "gates.png", "outputs.png",
                                                         "confusion.png"]
    for name, fig in drawn.items():
        assert all(ax.get_title().startswith(f"{NAME}: ") for ax in fig.axes if ax.get_title()), name
    loss, margin = drawn["loss.png"].axes
    assert loss.get_title() == f"{NAME}: trained on the hinge loss (margin 20 mV)"
    # the objective trained, from metrics.csv, in mV (it reaches 0 once every point is past the margin)
    assert loss.get_ylabel() == "hinge loss (mV)" and loss.get_yscale() == "linear"
    with (run / "metrics.csv").open() as f:
        hinge = [1e3 * float(row["hinge_loss"]) for row in csv.DictReader(f)]
    (curve,) = loss.get_lines()
    assert list(curve.get_ydata()) == pytest.approx(hinge, rel=1e-12) and hinge[-1] < hinge[0]
    assert margin.get_ylabel() == "smallest margin (mV)" and margin.get_xlabel() == "epoch"
    assert _legend(margin) == ["smallest margin", "hinge margin (updates stop)"]
    assert 20.0 in [line.get_ydata()[0] for line in margin.get_lines()]  # the hinge margin, in mV
    (out,) = drawn["outputs.png"].axes
    assert list(out.get_xticks()) == [0, 1, 2, 3]  # one integer tick per XOR point
    assert out.get_xlabel() == "data point (n15, n13)"  # the input nodes, as outputs.csv names them
    assert _legend(out) == ["target n10-n0", "output n10-n0", "threshold"]
    assert out.get_title() == f"{NAME}: outputs vs targets (xor, native)"
    (gates,) = drawn["gates.png"].axes
    assert gates.get_title() == f"{NAME}: 32 edges" and len(gates.get_lines()) == 32
    confusion = drawn["confusion.png"].axes[0]  # the classes as eval and outputs.csv name them
    with (run / "outputs.csv").open() as f:
        classes = sorted({row["class"] for row in csv.DictReader(f)}, key=lambda c: -float(c.split()[0]))
    assert [t.get_text() for t in confusion.get_xticklabels()] == classes == ["0 mV", "-87 mV"]
    assert [t.get_text() for t in confusion.get_yticklabels()] == classes


def test_an_mse_run_names_its_loss_and_a_csv_tasks_columns(tmp_path, drawn):
    run = _train(tmp_path, "csv_example.yaml")
    plots.plot_run_dir(run)
    (loss,) = drawn["loss.png"].axes
    assert loss.get_title() == f"{NAME}: trained on the MSE loss" and loss.get_ylabel() == "MSE loss (V$^2$)"
    with (CONFIGS / "data" / "two_outputs.csv").open() as f:
        x_name, *y_names = next(csv.reader(f))
    (out,) = drawn["outputs.png"].axes
    assert out.get_xlabel() == f"{x_name} (V)"  # one input: the outputs against it
    assert _legend(out) == [f"{kind} {n}" for n in y_names for kind in ("target", "output")]


def test_many_points_get_integer_ticks_only(tmp_path, drawn):
    run = _train(tmp_path, "iris.yaml", "learning.epochs=2")
    plots.plot_run_dir(run)
    (out,) = drawn["outputs.png"].axes
    ticks = [t for t in out.get_xticks() if out.get_xlim()[0] <= t <= out.get_xlim()[1]]
    assert len(ticks) < plots.MANY_TICKS and all(float(t).is_integer() for t in ticks), ticks
    loss = drawn["loss.png"].axes[0]
    assert _legend(loss) == ["training points", "held-out"]  # iris holds out a fifth of its flowers


def test_an_ensemble_shows_its_success_rate_and_every_replicas_margin(tmp_path, drawn):
    run = _train(tmp_path, "xor.yaml", "learning.epochs=300", seeds=N_SEEDS)
    names = [p.name for p in plots.plot_run_dir(run)]
    assert names == ["loss.png", "accuracy.png", "success.png", "margins.png"]
    with (run / "ensemble.csv").open() as f:
        table = list(csv.DictReader(f))
    solved = sum(row["success"] == "true" for row in table)
    (loss,) = drawn["loss.png"].axes
    assert loss.get_title() == f"{NAME}: trained on the hinge loss (margin 20 mV), {N_SEEDS} seeds"
    assert _legend(loss) == ["10-90% of replicas", "median"]
    # the objective trained, as a single run draws it: the hinge loss in mV, its median over the replicas
    assert loss.get_ylabel() == "hinge loss (mV)" and loss.get_yscale() == "linear"
    state = load_checkpoint(run)[0]
    np.testing.assert_allclose(loss.get_lines()[0].get_ydata(),
                               [1e3 * np.median(h["hinge_loss"]) for h in state.history])
    (success,) = drawn["success.png"].axes
    assert success.get_title() == f"{NAME}: {solved}/{N_SEEDS} seeds solved at epoch 300"
    (line,) = success.get_lines()
    assert line.get_ydata()[-1] == pytest.approx(100 * solved / N_SEEDS)  # the curve ends at the table's count
    (hist,) = drawn["margins.png"].axes
    heights = np.array([p.get_height() for p in hist.patches])
    counts, edges = np.histogram([1e3 * float(row["min_margin_v"]) for row in table], bins=len(heights))
    assert heights.sum() == N_SEEDS  # every replica counted once, in the bin of its margin in ensemble.csv
    np.testing.assert_array_equal(heights, counts)
    np.testing.assert_allclose([p.get_x() for p in hist.patches], edges[:-1], rtol=0, atol=1e-12)
    assert [line.get_xdata()[0] for line in hist.get_lines()] == [10.0]  # the success line, in mV
    assert hist.get_title() == f"{NAME}: smallest margin of each of {N_SEEDS} seeds"


def test_an_ensemble_with_a_held_out_split_shows_both_accuracies(tmp_path, drawn):
    run = _train(tmp_path, "iris.yaml", "learning.eval_every=5", seeds=N_SEEDS)
    plots.plot_run_dir(run)
    with (run / "ensemble.csv").open() as f:
        table = list(csv.DictReader(f))
    (ax,) = drawn["accuracy.png"].axes
    assert ax.get_title() == f"{NAME}: accuracy of {N_SEEDS} seeds"
    assert _legend(ax) == ["training: median", "training: 10-90% of replicas", "held-out: median",
                           "held-out: 10-90% of replicas"]
    training, held_out = ax.get_lines()
    assert training.get_xdata()[-1] == held_out.get_xdata()[-1] == EPOCHS
    assert training.get_ydata()[-1] == pytest.approx(100 * np.median([float(r["accuracy"]) for r in table]))
    assert held_out.get_ydata()[-1] == pytest.approx(100 * np.median([float(r["test_accuracy"]) for r in table]))


def test_a_classifier_of_many_classes_and_edges_shows_margins_and_the_spread_of_its_gates(tmp_path, drawn):
    """The digits (10 classes, 1,437 points, 1,247 edges): outputs.png is each training point's class margin as a
    histogram (its counts add up to the points, those below 0 to the misclassified ones), gates.png the gates'
    median and spread over edges, not 1,247 lines."""
    run = _train(tmp_path, "digits.yaml", "learning.epochs=2")
    plots.plot_run_dir(run)
    summary = json.loads((run / "summary.json").read_text())
    (out,) = drawn["outputs.png"].axes
    heights = [bar.get_height() for bar in out.patches]
    lefts = np.array([bar.get_x() for bar in out.patches])
    n = len(summary["outputs_v"])
    wrong = n - round(summary["accuracy"] * n)
    assert sum(heights) == n == 1437 and f"{wrong} below 0 (misclassified)" in out.get_title()
    assert 0 < wrong < n and sum(h for h, x in zip(heights, lefts) if x < 0) >= wrong  # the bars left of 0
    assert _legend(out) == ["0: misclassified below", "hinge margin 50 mV"]
    (acc,) = drawn["accuracy.png"].axes  # per epoch, ending at the summary's figures
    curves = {line.get_label().split(":")[0]: line.get_ydata() for line in acc.get_lines()}
    assert set(curves) == {"training points", "held-out"}
    assert curves["training points"][-1] == pytest.approx(100 * summary["accuracy"], rel=1e-12)
    assert curves["held-out"][-1] == pytest.approx(100 * summary["test_accuracy"], rel=1e-12)
    (gates,) = drawn["gates.png"].axes
    traj = np.loadtxt(run / "gates.csv", delimiter=",", skiprows=1, ndmin=2)
    median = [line for line in gates.get_lines() if line.get_label() == "median"][0]
    np.testing.assert_allclose(median.get_ydata(), np.median(traj[:, 1:], axis=1), rtol=1e-12)
    assert len(gates.get_lines()) == 1 + 5 and gates.get_title() == f"{NAME}: 1247 edges"


def test_one_point_of_many_outputs_shows_each_output_beside_its_target_by_name(tmp_path, drawn):
    """Allostery has one data point and five outputs: against the input voltage they stood on one vertical line,
    where an output off its target sat on another's target unseen; now by name, with each error written."""
    run = _train(tmp_path, "flow_allostery.yaml")
    plots.plot_run_dir(run)
    (ax,) = drawn["outputs.png"].axes
    with (run / "outputs.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    names = [k[len("output "):] for k in row if k.startswith("output ")]
    assert [t.get_text() for t in ax.get_xticklabels()] == names and len(names) == 5
    target, output = ax.get_lines()
    np.testing.assert_allclose(target.get_ydata(), [float(row[f"target {n}"]) for n in names])
    np.testing.assert_allclose(output.get_ydata(), [float(row[f"output {n}"]) for n in names])
    errors = [float(t.get_text().removesuffix(" mV")) for t in ax.texts]
    np.testing.assert_allclose(errors, [1e3 * (float(row[f"output {n}"]) - float(row[f"target {n}"]))
                                        for n in names], rtol=0.05, atol=0.01)
