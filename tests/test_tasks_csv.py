"""A user's own CSV data: a CSV task's file (``tasks.csv_task``) and new inputs for ``eval --inputs``
(``rundir.read_inputs_csv``). Each refusal is one line naming the file, the line and the column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from metamaterial.config import load_config
from metamaterial.errors import ConfigError, ValidationError
from metamaterial.experiment import build
from metamaterial.rundir import read_inputs_csv
from metamaterial.runfiles import column_names
from metamaterial.tasks import csv_task

LOW, HIGH = 0.0, 0.45  # V, the feature scaling's range
ON, OFF = 0.3, 0.15  # V, classification targets
ROWS = ["0.2303,0.4277,0.2546", "0.0649,0.4269,0.2048", "0.1403,0.1905,0.1802", "0.3725,0.1841,0.2486"]


def _csv(tmp_path: Path, header: str | None, rows=ROWS, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text("".join(f"{line}\n" for line in ([header] if header is not None else []) + list(rows)))
    return path


def _load(path: Path, n_inputs: int = 2, classification: bool = False, scale: bool = False,
          test_fraction: float = 0.0, seed: int = 0):
    return csv_task(path, n_inputs, classification, LOW, HIGH, ON, OFF, scale, test_fraction, seed)


def test_a_file_without_a_header_is_refused_not_read_from_its_second_row(tmp_path):
    """Its first point became the column names and the run trained on the other points, exit 0."""
    path = _csv(tmp_path, None)
    with pytest.raises(ValidationError) as err:
        _load(path)
    assert str(err.value) == (f"task.path: {path}:1: the first line holds numbers, not column names (got "
                              f"{ROWS[0]}); give a header row naming the columns")


def test_header_names_are_stripped_and_new_inputs_may_name_them_so(tmp_path):
    path = _csv(tmp_path, "v_a, v_b ,y_out")
    cfg = tmp_path / "reg.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": "padded", "network": {"kind": "lattice", "rows": 4, "cols": 4, "periodic": True},
        "roles": {"inputs": [[3, 3], [0, 1]], "rails": [{"node": [1, 1], "volts": 0.0}],
                  "outputs": [[2, 2]]},
        "device": {"kind": "resistor"}, "task": {"name": "csv", "path": path.name, "n_inputs": 2},
        "learning": {"rate": 0.01}}))
    setup = build(load_config(cfg))
    assert column_names(setup)[:2] == (["v_a", "v_b"], ["y_out"])
    new = _csv(tmp_path, "v_b,v_a", ["0.2,0.1"], "new.csv")
    np.testing.assert_array_equal(read_inputs_csv(new, setup), [[0.1, 0.2]])


@pytest.mark.parametrize("header, says", [
    ("v_a,v_a,y_out", ":1: columns 1 and 2 are both named 'v_a'; give each column its own name"),
    ("v_a, v_a ,y_out", ":1: columns 1 and 2 are both named 'v_a'; give each column its own name"),
    (",v_a,v_b,y_out", ":1: column 1 has no name (got the header ',v_a,v_b,y_out'); name it, or remove the column "
                       "(pandas's to_csv writes its index so: give it index=False)"),
    ("v_a, ,y_out", ":1: column 2 has no name (got the header 'v_a, ,y_out'); name it, or remove the column"),
])
def test_a_repeated_or_empty_column_name_is_refused_at_load(tmp_path, header, says):
    rows = [f"{k},{r}" for k, r in enumerate(ROWS)] if header.startswith(",") else ROWS
    path = _csv(tmp_path, header, rows)
    with pytest.raises(ValidationError) as err:
        _load(path)
    assert str(err.value) == f"task.path: {path}{says}"


@pytest.mark.parametrize("bad_row, says", [
    ("0.1403,abc,0.1802", ":4: v_b must be a number (got 'abc'); correct that value"),
    ("0.1403,,0.1802", ":4: v_b must be a number (got an empty cell); correct that value"),
    ("0.1403,0.1905,NA", ":4: y_out must be a number (got 'NA'); correct that value"),
    ("0.1403,0.1905,nan", ":4: y_out must be a finite voltage in [-10, 10] V (got nan); correct that value"),
])
def test_a_cell_that_is_not_a_number_names_its_line_and_column(tmp_path, bad_row, says):
    path = _csv(tmp_path, "v_a,v_b,y_out", [*ROWS[:2], bad_row, *ROWS[3:]])
    with pytest.raises(ValidationError) as err:
        _load(path)
    assert str(err.value) == f"task.path: {path}{says}"


def test_a_class_cell_may_be_any_text_but_not_empty(tmp_path):
    path = _csv(tmp_path, "a,b,species", ["0.1,0.2,setosa", "0.2,0.1,virginica", "0.3,0.3,setosa"])
    task = _load(path, classification=True)
    assert task.classes.tolist() == [0, 1, 0]
    np.testing.assert_array_equal(task.targets, [[ON, OFF], [OFF, ON], [ON, OFF]])
    path = _csv(tmp_path, "a,b,species", ["0.1,0.2,setosa", "0.2,0.1,", "0.3,0.3,setosa"])
    with pytest.raises(ValidationError) as err:
        _load(path, classification=True)
    assert str(err.value) == (f"task.path: {path}:3: species is empty, where it names the point's class; give every "
                              "row its class")


# -- eval --inputs -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def crossed(tmp_path_factory) -> tuple[Path, object]:
    """A CSV task whose columns in_b,in_a drive the nodes named in_a,in_b of a network file."""
    folder = tmp_path_factory.mktemp("crossed")
    (folder / "net.txt").write_text("in_a hub\nin_b hub\nhub out\nout gnd\nhub gnd\n")
    _csv(folder, "in_b,in_a,y", ["0.1,0.2,0.15", "0.3,0.1,0.2"])
    cfg = folder / "crossed.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": "crossed", "network": {"kind": "file", "file": "net.txt"},
        "roles": {"inputs": ["in_a", "in_b"], "rails": [{"node": "gnd", "volts": 0.0}], "outputs": ["out"]},
        "device": {"kind": "resistor"}, "task": {"name": "csv", "path": "data.csv", "n_inputs": 2},
        "learning": {"rate": 0.01}}))
    return folder, build(load_config(cfg))


def test_new_inputs_under_crossed_names_are_refused_as_ambiguous(crossed, tmp_path):
    folder, setup = crossed
    nodes = [f"n{i}" for i in setup.circuit.inputs]
    assert column_names(setup)[0] == ["in_b", "in_a"] and nodes == ["n3", "n4"]  # gnd hub out in_a in_b: 0..4
    path = _csv(tmp_path, "in_a,in_b", ["0.1,0.2"], "new.csv")
    with pytest.raises(ConfigError) as err:
        read_inputs_csv(path, setup)
    assert str(err.value) == (f"{path}: the header name in_a is ambiguous: it is the column name of input n4 and the "
                              "node name of input n3 (got in_a,in_b); name the columns by their netlist names (n3 n4, "
                              "in any order)")
    path = _csv(tmp_path, "n4,n3", ["0.1,0.2"], "by_node.csv")
    np.testing.assert_array_equal(read_inputs_csv(path, setup), [[0.2, 0.1]])


@pytest.mark.parametrize("text, says", [
    ("n3,n4\n0.1,0.2\n0.1,abc\n", ":3: n4 must be a number (got 'abc'); correct that value"),
    ("n4,n3\n0.1,0.2\n\n,0.2\n", ":4: n4 must be a number (got an empty cell); correct that value"),
    ("n3,n4\n0.1\n", ":2: 1 values, where the header names 2 columns; give one value per column"),
])
def test_a_new_inputs_cell_that_is_not_a_number_names_its_line_and_column(crossed, tmp_path, text, says):
    path = tmp_path / "new.csv"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        read_inputs_csv(path, crossed[1])
    assert str(err.value) == f"{path}{says}"
