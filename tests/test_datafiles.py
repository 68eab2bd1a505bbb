"""A run pins the content of the files it reads (``datafiles``): a CSV task's data edited after training is refused
by every command that reads the run's data again (eval, netlist RUN_DIR, energy, train --resume), in one line
naming the file and both hashes; an unchanged file passes, a run made before pins were recorded still works, and a
sweep's point trained on other data is another point."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import yaml

from conftest import ROOT, cli_ok, cli_refused, stopped_after_checkpoint
from metamaterial import datafiles, runs
from metamaterial.cli import main
from metamaterial.configfile import load_config
from metamaterial.datafiles import files_read, pin_files
from metamaterial.errors import CheckpointError, ConfigError, ValidationError
from metamaterial.experiment import build
from metamaterial.rundir import load_run
from metamaterial.runfiles import CHECKPOINT, load_checkpoint
from metamaterial.sweep import load_sweep
from metamaterial.sweep.execute import earlier_results, run_sweep
from metamaterial.sweep.spec import config_key, saved_config_key
from metamaterial.sweep.store import read_result

QUICK = ["--backend", "native", "--set", "learning.epochs=20", "--set", "learning.checkpoint_every=10",
         "--no-progress", "--no-plots"]
ROW = ("0.0500,0.1435,0.1150", "0.0500,0.1935,0.1150")  # one target of one row, before and after the edit


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy_example(to):
    """configs/csv_example.yaml and its CSV in a folder of their own: (config, CSV)."""
    to.mkdir()
    shutil.copy(ROOT / "configs" / "csv_example.yaml", to)
    (to / "data").mkdir()
    shutil.copy(ROOT / "configs" / "data" / "two_outputs.csv", to / "data")
    return to / "csv_example.yaml", to / "data" / "two_outputs.csv"


def _edit(csv):
    text = csv.read_text()
    assert ROW[0] in text
    csv.write_text(text.replace(ROW[0], ROW[1]))


def _meta(run) -> dict:
    with np.load(run / CHECKPOINT) as z:
        return json.loads(str(z["meta"]))


def _without_pins(run) -> None:
    """The checkpoint as a run made before pins were recorded wrote it: no ``files`` in its meta."""
    with np.load(run / CHECKPOINT) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    del meta["files"]
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(run / CHECKPOINT, **arrays)


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    """A finished run of the CSV example, its config and CSV in a folder of their own: (run, config, CSV)."""
    folder = tmp_path_factory.mktemp("csv")
    config, csv = _copy_example(folder / "work")
    run = folder / "run"
    cli_ok("train", str(config), "--out", str(run), *QUICK)
    return run, config, csv


def test_a_run_records_the_content_of_its_data_file_and_an_unchanged_file_passes(csv_run):
    run, _, csv = csv_run
    assert _meta(run)["files"] == {"task.path": {"path": str(csv), "sha256": _sha(csv)}}
    summary = json.loads((run / "summary.json").read_text())
    result = json.loads(cli_ok("eval", str(run), "--json").stdout)
    assert result["replicas"][0]["loss"] == pytest.approx(summary["final_loss"], rel=1e-6)
    assert result["targets"] == summary["targets_v"]


def test_every_command_on_a_run_refuses_a_data_file_edited_since_and_writes_nothing(csv_run, tmp_path):
    run, _, csv = csv_run
    trained = _sha(csv)
    kept = {p.name: p.read_bytes() for p in run.iterdir()}
    _edit(csv)
    try:
        line = (f"metamaterial: {csv}: its content differs from what the run in {run} was trained on (task.path: "
                f"sha256 {_sha(csv)[:12]} now, {trained[:12]} at training); restore the file, or train a new run "
                "on it (another --out); eval --inputs CSV evaluates the run on other points\n")
        for command in (["eval", str(run)], ["eval", str(run), "--split", "train", "--json"],
                        ["netlist", str(run), "--out", str(tmp_path / "n")],
                        ["energy", str(run), "--out", str(tmp_path / "e"), "--no-plots"],
                        ["train", "--resume", str(run), "--no-progress", "--no-plots"]):
            assert cli_refused(*command) == line, command
        assert {p.name: p.read_bytes() for p in run.iterdir()} == kept  # summary.json not rewritten
        assert not (tmp_path / "n").exists() and not (tmp_path / "e").exists()
        new = tmp_path / "new.csv"  # new points are not the task's: how to evaluate the run on new data
        new.write_text("v_in\n0.05\n")
        assert json.loads(cli_ok("eval", str(run), "--inputs", str(new), "--json").stdout)["split"] == "inputs"
    finally:
        _edit_back(csv)
    assert _sha(csv) == trained
    cli_ok("eval", str(run))  # restored: the run is usable again


def _edit_back(csv):
    csv.write_text(csv.read_text().replace(ROW[1], ROW[0]))


def test_a_missing_data_file_is_one_line_saying_to_restore_it(csv_run):
    run, _, csv = csv_run
    moved = csv.rename(csv.with_name("elsewhere.csv"))
    try:
        assert cli_refused("eval", str(run)) == (
            f"metamaterial: {run / 'config.yaml'}: file not found: {csv} (task.path); the run was trained on the file "
            "there: restore it, or train a new run with another --out\n")
    finally:
        moved.rename(csv)


def test_a_run_stopped_midway_is_not_resumed_on_edited_data_and_keeps_its_pins_when_resumed(tmp_path, monkeypatch):
    config, csv = _copy_example(tmp_path / "work")
    cfg = load_config(config, ["simulator.backend=native", "learning.epochs=20", "learning.checkpoint_every=10"])
    run = tmp_path / "run"
    with stopped_after_checkpoint(monkeypatch, "save_checkpoint", 10):
        runs.train_run(cfg, run, progress=False, plots=False)
    before = (run / CHECKPOINT).read_bytes()
    pins = _meta(run)["files"]
    _edit(csv)
    with pytest.raises(CheckpointError, match=r"two_outputs.csv: its content differs from what the run in .* was "
                                              r"trained on \(task.path: sha256 [0-9a-f]{12} now, [0-9a-f]{12} at "):
        runs.train_run(cfg, run, resume=True, progress=False, plots=False)
    assert (run / CHECKPOINT).read_bytes() == before
    _edit_back(csv)
    resumed = runs.train_run(cfg, run, resume=True, progress=False, plots=False)
    assert resumed.state.epoch == 20 and _meta(run)["files"] == pins
    whole = runs.train_replicas(cfg, [cfg.seed])  # the same data: where an uninterrupted run ends
    whole.trainer.solver.close()
    np.testing.assert_array_equal(resumed.state.controls, whole.state.controls)


def test_a_run_made_before_pins_were_recorded_still_works_unchecked(csv_run, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(csv_run[0], old)
    _without_pins(old)
    csv = csv_run[2]
    _edit(csv)
    try:
        assert load_run(old).epoch == 20
        cli_ok("eval", str(old))
        cli_ok("train", "--resume", str(old), "--no-progress", "--no-plots")
        assert "files" not in _meta(old)  # not pinned after the fact: what it first trained on is unknown
        load_checkpoint(old)
    finally:
        _edit_back(csv)


def test_a_model_card_is_pinned_too(tmp_path):
    card = tmp_path / "mine.lib"
    card.write_text(".model mine nmos (level=1 vto=0.7 kp=1e-4 gamma=0.3 phi=0.7)\n")
    cfg = load_config(ROOT / "configs" / "xor.yaml", [f"device.model_file={card}", "simulator.backend=native",
                                                      "learning.epochs=2"])
    assert files_read(cfg) == {"device.model_file": str(card)}
    runs.train_run(cfg, tmp_path / "run", progress=False, plots=False)
    card.write_text(card.read_text().replace("vto=0.7", "vto=0.8"))
    with pytest.raises(CheckpointError, match=rf"^{card}: its content differs .* \(device.model_file: sha256 .*; "
                                              r"restore the file, or train a new run on it \(another --out\)$"):
        load_run(tmp_path / "run")


def test_a_network_file_edited_since_is_named_as_such_not_as_a_damaged_checkpoint(tmp_path):
    """An edge added to a network file after training changes the network's size too: eval and netlist name the
    edited file (its content is checked before the checkpoint's edges), as train --resume does."""
    edges = tmp_path / "net.edges"
    edges.write_text("in n10\nn10 n2\nn2 out\nrail n2\nin out\nout rail\nn10 rail\n")
    config = tmp_path / "net.yaml"
    config.write_text(yaml.safe_dump({
        "name": "net", "network": {"kind": "file", "file": str(edges)},
        "roles": {"inputs": ["in"], "rails": [{"node": "rail", "volts": 0.45}], "outputs": ["out"]},
        "device": {"kind": "resistor"}, "task": {"name": "regression"}, "learning": {"rate": 0.01}}))
    run = tmp_path / "run"
    cli_ok("train", str(config), "--out", str(run), *QUICK)
    trained = _sha(edges)
    edges.write_text(edges.read_text() + "in rail\n")
    line = (f"metamaterial: {edges}: its content differs from what the run in {run} was trained on (network.file: "
            f"sha256 {_sha(edges)[:12]} now, {trained[:12]} at training); restore the file, or train a new run on it "
            "(another --out)\n")
    for command in (["eval", str(run)], ["netlist", str(run), "--out", str(tmp_path / "n")],
                    ["train", "--resume", str(run), "--no-progress", "--no-plots"]):
        assert cli_refused(*command) == line, command


def test_a_sweep_point_trained_on_other_data_is_another_point(tmp_path, capsys):
    config, csv = _copy_example(tmp_path / "work")
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump({"base": str(config), "set": ["simulator.backend=native",
                                                                      "learning.epochs=3"],
                                         "grid": {"learning.nudge": [0.5, 1.0]}}))
    spec = load_sweep(spec_file)
    first = spec.points[0]
    assert first.files == pin_files(first.config) == {"task.path": {"path": str(csv), "sha256": _sha(csv)}}
    assert first.key == config_key(first.config, first.files) != config_key(first.config)
    out = tmp_path / "out"
    assert run_sweep(spec, out, workers=1).ok == 2
    record = read_result(out, first.key)
    assert record["files"] == first.files and saved_config_key(record) == first.key
    _edit(csv)
    edited = load_sweep(spec_file)
    assert [p.key for p in edited.points] != [p.key for p in spec.points]  # not taken for done
    assert earlier_results(edited, out).stale_data == 2
    assert main(["sweep", str(spec_file), "--out", str(out), "--dry-run"]) == 0
    assert "sweep: 2 point(s) have a result trained on other content of their data file" in capsys.readouterr().err
    # a point whose file is edited after the sweep read it fails, rather than train on other data under its key
    stale = run_sweep(spec, tmp_path / "during", workers=1)
    assert (stale.ok, stale.failed) == (0, 2)
    error = read_result(tmp_path / "during", first.key)["error"]["message"]
    assert error.startswith(f"{csv}: its content changed since the sweep read it (task.path: sha256 ")


@pytest.mark.parametrize("key, sets, error, fragment, what", [
    ("network.file", ["network.kind=file", "network.file=big.txt"], ValidationError, "network.file: ", "network file"),
    ("device.model_file", ["device.model_file=big.txt"], ConfigError, "", "model card"),
    ("task.path", ["task.name=csv", "task.path=big.txt", "task.n_inputs=1"], ValidationError, "task.path: ", "CSV"),
])
def test_a_file_too_large_to_read_whole_is_refused_naming_its_key(tmp_path, monkeypatch, key, sets, error, fragment,
                                                                     what):
    # a path to a device that never ends (a stream of zeros) was read until memory ran out; a smaller limit here
    # stands for it
    monkeypatch.setattr(datafiles, "MAX_FILE_BYTES", 1 << 20)
    (tmp_path / "big.txt").write_text("0 1\n" * (1 << 19))
    config = tmp_path / "xor.yaml"
    shutil.copy(ROOT / "configs" / "xor.yaml", config)
    with pytest.raises(error, match=rf"^{fragment}\S*big.txt: the {what} holds more than 1 MiB, the most read from one "
                                    r"file \(or never ends, as a device may\); ") as info:
        build(load_config(config, sets))
    assert key in str(info.value)
