"""New inputs in a dataset's own units: where a task scales a dataset's features to volts (Iris; a CSV task with
``task.scale``), ``eval --inputs`` reads a column named as the feature in the dataset's units and scales it as the
training data was, and a column named ``V(feature)`` or by its node in volts; outputs.csv and eval name the scaled
inputs ``V(feature)``, since they hold volts. A CSV task without ``task.scale`` reads its columns in volts, as its
data is. Judged by the run's own outputs: the dataset's rows fed back give the outputs training saved for them."""

from __future__ import annotations

import csv
import json
import re
from importlib import resources

import numpy as np
import pytest

from conftest import ROOT, cli, cli_ok

IRIS = str(ROOT / "configs" / "iris.yaml")
FEATURES = ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]
ROWS = 6  # flowers fed back


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("units") / "iris"
    cli_ok("train", IRIS, "--out", str(run), "--backend", "native", "--set", "learning.epochs=3", "--set",
           "task.test_fraction=0", "--no-progress", "--no-plots")
    return run


def _table(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _eval(run, path) -> dict:
    return json.loads(cli_ok("eval", str(run), "--inputs", str(path), "--json").stdout)


def test_iris_rows_in_cm_give_the_outputs_training_saved(iris_run, tmp_path):
    """With nothing held out, training point p is the dataset's row p: its centimetres, fed back under the
    dataset's own column names, are scaled to the very voltages training used and give its saved outputs."""
    header, *rows = _table(iris_run / "outputs.csv")
    assert header[1:5] == [f"V({name})" for name in FEATURES]  # volts, named as such
    with resources.files("metamaterial").joinpath("data/iris.csv").open() as f:
        data = list(csv.reader(f))
    assert data[0][:4] == FEATURES
    cm = tmp_path / "cm.csv"
    cm.write_text("\n".join(",".join(r[:4]) for r in data[:ROWS + 1]) + "\n")
    result = _eval(iris_run, cm)
    saved = np.array([[float(v) for v in r[1:5]] for r in rows[:ROWS]])
    np.testing.assert_array_equal(np.array(result["inputs"]), saved)  # the same scaling, to the bit
    outputs = np.array([[float(v) for v in r[8:11]] for r in rows[:ROWS]])
    np.testing.assert_allclose(np.array(result["replicas"][0]["outputs"]), outputs, rtol=0, atol=1e-12)
    assert result["input_names"] == [f"V({name})" for name in FEATURES]


def test_iris_inputs_in_volts_under_v_names_or_nodes(iris_run, tmp_path):
    """``V(feature)`` and node names are volts, read as given; mixed in one header, each column by its own name."""
    header, *rows = _table(iris_run / "outputs.csv")
    volts = [r[1:5] for r in rows[:ROWS]]
    named = tmp_path / "v.csv"
    named.write_text("\n".join(",".join(r) for r in [header[1:5], *volts]) + "\n")
    np.testing.assert_array_equal(np.array(_eval(iris_run, named)["inputs"]), np.array(volts, float))
    with resources.files("metamaterial").joinpath("data/iris.csv").open() as f:
        cm = list(csv.reader(f))[1:ROWS + 1]
    mixed = tmp_path / "mixed.csv"  # the first feature in cm, the others in volts
    mixed.write_text("\n".join([",".join([FEATURES[0], *header[2:5]]),
                                *(",".join([c[0], *v[1:]]) for c, v in zip(cm, volts))]) + "\n")
    np.testing.assert_array_equal(np.array(_eval(iris_run, mixed)["inputs"]), np.array(volts, float))


def test_volts_under_a_features_name_are_read_as_its_units_and_the_warning_says_so(iris_run, tmp_path):
    """0.1 under ``sepal_length_cm`` is 0.1 cm, far below every flower: the outputs extrapolate, and the warning
    says how each kind of column is read, so that a user who meant volts knows to write ``V(...)``."""
    path = tmp_path / "wrong.csv"
    path.write_text(",".join(FEATURES) + "\n0.1,0.28,0.03,0.02\n")
    proc = cli_ok("eval", str(iris_run), "--inputs", str(path), "--json")
    assert (f"warning: {path}: 1 of 1 row(s) hold inputs outside the training points' range (row 1: "
            "V(sepal_length_cm) -0.525 V") in proc.stderr
    assert ("a column named as the dataset's feature (sepal_length_cm) is read in the dataset's units and scaled "
            "as the training data was, one named V(sepal_length_cm) or by its node in volts") in proc.stderr


@pytest.mark.parametrize("scale", [True, False])
def test_a_csv_task_reads_its_columns_in_its_datas_units(tmp_path, scale):
    """A CSV task with ``task.scale`` reads new values under the data's column name in the data's units (here
    0-100) and names the scaled input ``V(...)``; without it the data are volts and so are new values."""
    data = tmp_path / "data.csv"
    x = np.linspace(0.0, 100.0 if scale else 0.4, 6)
    data.write_text("x,y\n" + "".join(f"{a:g},{0.1 + 0.1 * k / 5:g}\n" for k, a in enumerate(x)))
    config = tmp_path / "c.yaml"
    config.write_text((ROOT / "configs" / "csv_example.yaml").read_text().replace(
        "task: {name: csv, path: data/two_outputs.csv, n_inputs: 1}",
        f"task: {{name: csv, path: {data}, n_inputs: 1, scale: {str(scale).lower()}, low: 0.0, high: 0.4}}").replace(
        "outputs: [[2, 2], [0, 0]]", "outputs: [[2, 2]]"))
    run = tmp_path / "run"
    cli_ok("train", str(config), "--out", str(run), "--backend", "native", "--set", "learning.epochs=2",
           "--no-progress", "--no-plots")
    header, *rows = _table(run / "outputs.csv")
    assert header[1] == ("V(x)" if scale else "x")
    new = tmp_path / "new.csv"
    new.write_text("x\n" + "".join(f"{a:g}\n" for a in x))
    result = _eval(run, new)
    np.testing.assert_array_equal(np.array(result["inputs"])[:, 0], np.array([float(r[1]) for r in rows]))
    if scale:
        np.testing.assert_allclose(np.array(result["inputs"])[:, 0], np.linspace(0.0, 0.4, 6), rtol=0, atol=1e-15)


def test_a_feature_past_the_volts_limit_once_scaled_is_refused_naming_the_cell(iris_run, tmp_path):
    """1000 cm of sepal is a finite number, and 131.8 V once scaled as training scaled it: the solver would fail on
    it without naming the file, so it is refused where it is read, with the value it would have become."""
    path = tmp_path / "far.csv"
    path.write_text(",".join(FEATURES) + "\n5.1,3.5,1.4,0.2\n1000,3.5,1.4,0.2\n")
    proc = cli("eval", str(iris_run), "--inputs", str(path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    where = re.escape(f"{path}:3")  # the file names itself: no run directory before it
    assert re.fullmatch(rf"metamaterial: {where}: sepal_length_cm must be a finite voltage in "
                        r"\[-10, 10\] V \(got 1000, \d+\.\d V as training scaled it\); correct that value\n",
                        proc.stderr), proc.stderr


def test_a_name_that_is_a_feature_and_its_node_is_refused_as_ambiguous(tmp_path):
    """A scaled CSV task whose columns are named as the layered network names its input nodes (in0, in1): under
    that name a value could be the data's units (the feature) or volts (the node), so the header is refused."""
    data = tmp_path / "data.csv"
    data.write_text("in0,in1,y\n" + "".join(f"{10 * k},{20 - k},{0.1 + 0.02 * k}\n" for k in range(6)))
    config = tmp_path / "c.yaml"
    config.write_text(f"name: both\nseed: 0\nnetwork: {{kind: layered, n_inputs: 2, n_outputs: 1}}\n"
                      "device: {kind: nmos, preset: ald1106-fit}\n"
                      f"task: {{name: csv, path: {data}, n_inputs: 2, scale: true, low: 0.0, high: 0.4}}\n"
                      "learning: {epochs: 1}\nsimulator: {backend: native}\n")
    run = tmp_path / "run"
    cli_ok("train", str(config), "--out", str(run), "--no-progress", "--no-plots")
    new = tmp_path / "new.csv"
    new.write_text("in0,in1\n20,15\n")
    proc = cli("eval", str(run), "--inputs", str(new))
    assert proc.returncode == 2 and "the header name in0 is ambiguous: it is the node name of input n0 and the " \
        "feature name of input n0" in proc.stderr, proc.stderr
