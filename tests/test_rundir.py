"""Run directories as artifacts, end to end through the command line: ``eval`` (training points, held-out points,
new inputs, ensembles), ``netlist RUN_DIR`` (trained gates; ngspice on those netlists gives the run's saved outputs)
and ``plot RUN_DIR`` (figures redrawn from the run directory's files alone)."""

from __future__ import annotations

import csv
import json
import re
import shutil

import numpy as np
import pytest

from conftest import ROOT, cli, cli_ok, cli_refused
from metamaterial import revisions, runs
from metamaterial.configfile import load_config
from metamaterial.errors import CheckpointError, ConfigError
from metamaterial.experiment import build
from metamaterial.netlist import parse_print_all
from metamaterial.plots import plot_run_dir
from metamaterial.rundir import load_run, read_inputs_csv
from metamaterial.runfiles import CHECKPOINT
from metamaterial.sim.ngspice import run_batch_file

XOR = str(ROOT / "configs" / "xor.yaml")
EPOCHS = 300  # short native training: enough for the gates to leave their initial values
N_SEEDS = 4
SAME_BACKEND_V = 1e-9  # a fresh solve on the run's backend vs the outputs saved at the end of training
NGSPICE_V = 1e-6  # ngspice -b on the trained-gate netlists vs the native run's saved outputs
NATIVE = ["--backend", "native", "--set", f"learning.epochs={EPOCHS}", "--no-progress"]


@pytest.fixture(scope="module")
def xor_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("xor") / "run"
    cli_ok("train", XOR, "--out", str(run), *NATIVE, "--no-plots")
    return run


@pytest.fixture(scope="module")
def xor_ensemble(tmp_path_factory):
    run = tmp_path_factory.mktemp("ensemble") / "run"
    proc = cli_ok("train", XOR, "--out", str(run), *NATIVE, "--seeds", str(N_SEEDS))
    return run, proc.stdout


def test_eval_gives_the_outputs_saved_at_the_end_of_training(xor_run):
    summary = json.loads((xor_run / "summary.json").read_text())
    result = json.loads(cli_ok("eval", str(xor_run), "--json").stdout)
    assert result["backend"] == "native" and result["split"] == "train" and result["epoch"] == EPOCHS
    assert result["input_names"] == ["n15", "n13"] and result["output_names"] == ["n10-n0"]
    (rep,) = result["replicas"]
    np.testing.assert_allclose(rep["outputs"], summary["outputs_v"], rtol=0, atol=SAME_BACKEND_V)
    assert result["targets"] == summary["targets_v"]
    assert rep["loss"] == pytest.approx(summary["final_loss"], rel=1e-6)
    assert rep["accuracy"] == summary["accuracy"] and rep["success"] == summary["success"]
    assert rep["min_margin_v"] == pytest.approx(summary["min_margin_v"], abs=SAME_BACKEND_V)
    # the table a person reads carries the same numbers
    table = cli_ok("eval", str(xor_run)).stdout
    assert f"loss (MSE) {summary['final_loss']:.3g} V^2" in table
    assert f"{summary['outputs_v'][1][0]:.6g}" in table
    # outputs.csv: the same outputs per point, under the node names
    with (xor_run / "outputs.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["point", "n15", "n13", "target n10-n0", "output n10-n0", "class", "predicted"]
    assert [float(r["output n10-n0"]) for r in rows] == [o[0] for o in summary["outputs_v"]]


def test_ngspice_on_the_trained_gate_netlists_gives_the_runs_outputs(xor_run, tmp_path):
    summary = json.loads((xor_run / "summary.json").read_text())
    nudge = load_config(xor_run / "config.yaml").learning.nudge
    out = tmp_path / "netlists"
    proc = cli_ok("netlist", str(xor_run), "--out", str(out))
    assert f"at the gates of {xor_run} (seed 0, epoch {EPOCHS})" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{ph}_{k}.cir" for k in range(4)
                                                           for ph in ("free", "clamped"))
    for k, ((saved,), (target,)) in enumerate(zip(summary["outputs_v"], summary["targets_v"])):
        free = parse_print_all(run_batch_file(str(out / f"free_{k}.cir")))
        assert free["n10"] - free["n0"] == pytest.approx(saved, abs=NGSPICE_V)
        clamped = parse_print_all(run_batch_file(str(out / f"clamped_{k}.cir")))
        # the clamped twin holds the nudged output V_O^C = V_O^F + eta (L - V_O^F)
        assert clamped["n10"] - clamped["n0"] == pytest.approx(saved + nudge * (target - saved), abs=NGSPICE_V)
    # the netlists of the config itself are at the initial gates: not these
    initial = tmp_path / "initial"
    cli_ok("netlist", XOR, "--out", str(initial))
    assert (initial / "free_0.cir").read_text() != (out / "free_0.cir").read_text()


def test_netlists_of_chosen_points_are_those_points(xor_run, tmp_path):
    """``--points`` picks training points by index: each file is named by its point and ngspice on it gives that
    point's saved output; a point that does not exist is refused in one line, with no --out left behind."""
    summary = json.loads((xor_run / "summary.json").read_text())
    out = tmp_path / "chosen"
    proc = cli_ok("netlist", str(xor_run), "--out", str(out), "--points", "3,1")
    assert "(free_k.cir, clamped_k.cir for training points 3, 1 of 4" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ["clamped_1.cir", "clamped_3.cir", "free_1.cir", "free_3.cir"]
    for k in (1, 3):
        free = parse_print_all(run_batch_file(str(out / f"free_{k}.cir")))
        assert free["n10"] - free["n0"] == pytest.approx(summary["outputs_v"][k][0], abs=NGSPICE_V)
    every_index = "give indices from 0 to 3 and ranges a-b of them, separated by commas, or all"
    for spec, message in (("4", "outside the 4 training points, numbered 0 to 3 (got '4'); give indices from 0 to 3, "
                                "or all"),
                          ("2-7", "outside the 4 training points, numbered 0 to 3 (got '2-7'); give indices from 0 to "
                                  "3, or all"),
                          ("1-x", f"not a point index or a range a-b (got '1-x'); {every_index}"),
                          ("0,,1", f"not a point index or a range a-b (got ''); {every_index}"),
                          # a reversed range was "outside the 4 training points"
                          ("3-1", "a reversed range, which ends before it starts (got '3-1'); write it as 1-3")):
        for source in (str(xor_run), XOR):  # a run directory's training points, and a config's
            assert cli_refused("netlist", source, "--out", str(tmp_path / "none"), "--points", spec) == (
                f"metamaterial: {source}: --points: {message}\n")
            assert not (tmp_path / "none").exists()
    every = json.loads(cli_ok("solve", XOR, "--backend", "native").stdout)
    two = json.loads(cli_ok("solve", XOR, "--backend", "native", "--points", "2").stdout)
    assert [p["index"] for p in every["points"]] == [0, 1, 2, 3] and two["points"] == [every["points"][2]]


def test_netlists_written_over_an_earlier_call_replace_its_files(xor_run, tmp_path):
    """The files of a netlist call are a set: point 0 written into a folder holding a trained run's 8 netlists left 6
    at the trained gates beside it, without a word. Now the earlier call's netlist files this one does not rewrite
    are removed and named, with the temporary file a kill left of one; other files stay."""
    out = tmp_path / "netlists"
    cli_ok("netlist", str(xor_run), "--out", str(out))
    (out / "notes.txt").write_text("mine")
    (out / "free.cir").write_text("* not a netlist file of the command")
    (out / "free_7.cir.tmp").write_text("* half of a netlist, as a kill of its writing leaves it")
    proc = cli_ok("netlist", XOR, "--out", str(out), "--points", "0")
    assert ("removed 7 netlist file(s) an earlier call left there and this one did not rewrite: clamped_1.cir, "
            "clamped_2.cir, clamped_3.cir, free_1.cir, free_2.cir, free_3.cir, free_7.cir.tmp") in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ["clamped_0.cir", "free.cir", "free_0.cir", "notes.txt"]
    initial = tmp_path / "initial"
    cli_ok("netlist", XOR, "--out", str(initial), "--points", "0")
    assert (out / "free_0.cir").read_text() == (initial / "free_0.cir").read_text()
    again = cli_ok("netlist", XOR, "--out", str(out), "--points", "0")  # the same set again: nothing to remove
    assert "removed" not in again.stdout


def test_a_clamped_netlist_of_a_point_the_hinge_skips_says_so(tmp_path):
    """Training runs no clamped phase for a point already learning.margin past its boundary: its clamped netlist's
    title says so, the others' do not, the command counts them, and ``solve --json`` gives each point's margin.
    After 120 epochs two of XOR's points are past the margin and two are not."""
    run = tmp_path / "run"
    cli_ok("train", XOR, "--out", str(run), "--backend", "native", "--set", "learning.epochs=120", "--no-progress",
           "--no-plots")
    summary = json.loads((run / "summary.json").read_text())
    setup = build(load_config(XOR))
    margins = setup.task.margins(np.array(summary["outputs_v"]), setup.task.classes)
    skips = margins >= setup.rule.margin
    assert 0 < skips.sum() < 4 and np.abs(margins - setup.rule.margin).min() > 1e-4  # both kinds, none borderline
    out = tmp_path / "hinge"
    proc = cli_ok("netlist", str(run), "--out", str(out))
    assert f"; the hinge skips {skips.sum()} of them, and their clamped_k.cir say so)" in proc.stdout
    for k in range(4):
        title = (out / f"clamped_{k}.cir").read_text().splitlines()[0]
        assert ("(the hinge skips this point: its margin" in title) == skips[k], title
        assert "hinge" not in (out / f"free_{k}.cir").read_text().splitlines()[0]
    # the run's own batch clamped.cir marks the same points (it did not say which points the hinge skips)
    batch = (run / "clamped.cir").read_text()
    skipped = ", ".join(str(k) for k in np.flatnonzero(skips))
    assert f"\n* the hinge skips point(s) {skipped}: their margin is past learning.margin 20 mV" in batch
    for k in range(4):
        assert (f"\n* point {k} (skipped by the hinge): output n10-n0: " in batch) == skips[k]
        assert (f"\n* point {k}: output n10-n0: " in batch) != skips[k]
        assert f" (VC0_{k} on n10_{k}, VC1_{k} on n0_{k})\n" in batch  # copy k of the batch
    solved = json.loads(cli_ok("solve", XOR, "--backend", "native").stdout)["points"]
    free = np.array([[p["free"][f"n{i}"] for i in range(16)] for p in solved])
    expected = setup.task.margins(setup.circuit.output_values(free), setup.task.classes)
    assert [p["margin_v"] for p in solved] == pytest.approx(expected, abs=1e-12)
    assert [p["hinge_skips"] for p in solved] == [bool(m >= setup.rule.margin) for m in expected]


def test_eval_new_inputs_from_a_csv(xor_run, tmp_path):
    saved = json.loads((xor_run / "summary.json").read_text())["outputs_v"]
    new = tmp_path / "new.csv"  # columns in another order than the roles: matched by name
    new.write_text("n13,n15\n0,0\n0.45,0\n0,0.45\n0.45,0.45\n0.3,0.2\n")
    inside = cli_ok("eval", str(xor_run), "--inputs", str(new), "--json")
    result = json.loads(inside.stdout)
    assert "warning" not in inside.stderr  # within the training points' 0-0.45 V
    assert result["split"] == "inputs" and "targets" not in result
    assert result["inputs"] == [[0, 0], [0, 0.45], [0.45, 0], [0.45, 0.45], [0.2, 0.3]]  # in the roles' order
    (rep,) = result["replicas"]
    np.testing.assert_allclose(rep["outputs"][:4], saved, rtol=0, atol=SAME_BACKEND_V)
    assert len(rep["outputs"]) == 5 and len(rep["predicted"]) == 5
    assert "--split, --inputs: give one" in cli_refused("eval", str(xor_run), "--inputs", str(new), "--split", "train")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n0,0\n")
    err = cli_refused("eval", str(xor_run), "--inputs", str(bad))
    assert err == (f"metamaterial: {bad}: the header must name each input node once (n15 n13) (got a,b: "
                   "no column is input n15); give a header such as n15,n13 (the columns in any order)\n")
    bad.write_text("n15,n13\n0,x\n")
    assert f"{bad}:2: n13 must be a number (got 'x'); correct that value" in cli_refused("eval", str(xor_run),
                                                                                        "--inputs", str(bad))
    assert f"{tmp_path / 'nope.csv'}: cannot read the inputs" in cli_refused("eval", str(xor_run), "--inputs",
                                                                           str(tmp_path / "nope.csv"))
    raw = tmp_path / "raw.csv"  # data in another unit than the circuit's volts: evaluated, with a warning
    raw.write_text("n15,n13\n0,0\n0,4.5\n")
    proc = cli_ok("eval", str(xor_run), "--inputs", str(raw), "--json")
    assert len(json.loads(proc.stdout)["replicas"][0]["outputs"]) == 2
    assert f"warning: {raw}: 1 of 2 row(s) hold inputs outside the training points' range (row 2: n13 4.5 V, " \
        "trained on 0-0.45 V)" in proc.stderr


def test_a_refusal_naming_a_path_given_as_dot_slash_is_not_prefixed_with_it_again(xor_run, tmp_path):
    """A refusal that names its file (the config, ``--inputs``' CSV) as Path writes it (``configs/xor.yaml`` for
    ``./configs/xor.yaml``) is the file's own: not prefixed with the path as given."""
    (tmp_path / "bad.csv").write_text("a,b\n0,0\n")
    proc = cli("eval", str(xor_run), "--inputs", "./bad.csv", cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (2, "metamaterial: bad.csv: the header must name each input node once "
                                                 "(n15 n13) (got a,b: no column is input n15); give a header such as "
                                                 "n15,n13 (the columns in any order)\n")
    proc = cli("train", "./configs/xor.yaml", "--set", "learning.nudge=1.5", "--out", str(tmp_path / "out"))
    assert (proc.returncode, proc.stderr) == (2, "metamaterial: configs/xor.yaml: --set learning.nudge=1.5: "
                                                 "learning.nudge: Input should be less than or equal to 1 (got 1.5); "
                                                 "give a value in range\n")


def test_run_directory_commands_refuse_what_they_cannot_use(xor_run, tmp_path):
    assert cli_refused("eval", str(tmp_path)) == (f"metamaterial: {tmp_path}: not a run directory (no config.yaml); "
                                                  "give a directory written by `metamaterial train`\n")
    assert "--split test: the run holds out no points (task xor" in cli_refused("eval", str(xor_run), "--split", "test")
    assert "--replica: the run holds the replicas of seeds 0 (got 3)" in cli_refused("eval", str(xor_run), "--replica",
                                                                                    "3")
    assert "--set: a run directory's config" in cli_refused("netlist", str(xor_run), "--out", str(tmp_path / "n"),
                                                            "--set", "seed=1")
    assert "no config.yaml (not a finished run directory)" in cli_refused("plot", str(tmp_path))
    started = tmp_path / "started"  # a run interrupted before its end has no summary yet
    started.mkdir()
    shutil.copy(xor_run / "config.yaml", started)
    assert f"{started}: no summary.json (not a finished run directory)" in cli_refused("plot", str(started))
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    assert cli_refused("netlist", str(xor_run), "--out", str(a_file)) == (
        f"metamaterial: {a_file}: cannot create the output directory (File exists); choose another --out\n")


def test_a_yaml_file_where_a_run_directory_is_read_is_named_for_what_it_is(tmp_path):
    """A config file given to eval, plot or train --resume was "not a run directory (no config.yaml)", as if it were
    a folder missing a file: it is named a config to train first, a sweep spec to run, or a run's own config.yaml."""
    for command in ("eval", "plot"):
        assert cli_refused(command, "configs/xor.yaml") == (
            f"metamaterial: configs/xor.yaml: a config file, not a run directory; train it first (metamaterial "
            f"train configs/xor.yaml --out DIR), then metamaterial {command} DIR\n")
    assert cli_refused("train", "--resume", "configs/xor.yaml") == (
        "metamaterial: configs/xor.yaml: a config file, not a run directory, which --resume continues; train it "
        "with metamaterial train configs/xor.yaml --out DIR\n")
    spec = "configs/sweeps/corners.yaml"
    assert cli_refused("eval", spec) == (
        f"metamaterial: {spec}: a sweep spec, not a run directory (a sweep keeps no run directory of its points); "
        f"run it with metamaterial sweep {spec} --out DIR (DIR then holds its table and figures)\n")
    run = tmp_path / "run dir"  # a name the shell must quote
    run.mkdir()
    (run / "config.yaml").write_text((ROOT / "configs" / "xor.yaml").read_text())
    (run / CHECKPOINT).write_bytes(b"")
    assert cli_refused("plot", str(run / "config.yaml")) == (
        f"metamaterial: {run}/config.yaml: the config file of a run directory, not the directory; give the "
        f"directory itself, {run}\n")
    other = tmp_path / "my config.yml"
    other.write_text((ROOT / "configs" / "xor.yaml").read_text())
    assert cli_refused("eval", str(other)) == (
        f"metamaterial: {other}: a config file, not a run directory; train it first (metamaterial train "
        f"'{other}' --out DIR), then metamaterial eval DIR\n")


def test_a_path_that_does_not_exist_is_named_missing_not_a_folder_without_a_file(tmp_path):
    """eval, plot and train --resume said "not a run directory (no config.yaml)" of a mistyped path too."""
    gone = tmp_path / "runs" / "xro"
    for command in (["eval"], ["plot"], ["train", "--resume"]):
        end = ", the one to continue" if command[-1] == "--resume" else ""
        assert cli_refused(*command, str(gone)) == (
            f"metamaterial: {gone}: no such file or directory; give a run directory that metamaterial train "
            f"wrote{end} (check the path)\n")


def _rewrite_checkpoint(path, meta=None, **changes) -> None:
    """Rewrite the checkpoint at ``path`` with the arrays and meta keys of ``changes`` replaced (a meta key given
    None removed), or its whole ``meta``."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    saved = json.loads(str(arrays["meta"]))
    for key, value in changes.items():
        if key in arrays:
            arrays[key] = value
        elif value is None:
            del saved[key]
        else:
            saved[key] = value
    arrays["meta"] = np.array(json.dumps(saved if meta is None else meta))
    np.savez(path, **arrays)


DAMAGED = "; the run directory is damaged: train it again (--replace) or restore checkpoint.npz"
#: a checkpoint damaged one way -> what every command that reads it says after "<its path>: "
BAD_CHECKPOINTS = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:300]), "not a readable checkpoint: not an intact .npz file"
                  + DAMAGED),
    "empty": (lambda p: p.write_bytes(b""), "not a readable checkpoint: not an intact .npz file" + DAMAGED),
    "removed": (lambda p: p.unlink(), "no checkpoint (the run stopped before its first one, or the file was "
                "removed); train the run again, or restore the file"),
    "no-history": (lambda p: _rewrite_checkpoint(p, history=None), "not a readable checkpoint: its meta has no "
                   "history" + DAMAGED),
    "meta-a-list": (lambda p: _rewrite_checkpoint(p, meta=[1, 2]), "not a readable checkpoint: its meta is a list, "
                    "not a mapping" + DAMAGED),
    "rng-state": (lambda p: _rewrite_checkpoint(p, rng_states=["x"]), "not a readable checkpoint: rng_states[0] is "
                  "not a generator's state" + DAMAGED),
    "seeds-of-two-replicas": (lambda p: _rewrite_checkpoint(p, seeds=[0, 1]), "not a readable checkpoint: seeds must "
                              "be a list of one integer per row of controls, 1 in all (got [0, 1])" + DAMAGED),
    "no-seeds": (lambda p: _rewrite_checkpoint(p, seeds=[]), "not a readable checkpoint: seeds must be a list of one "
                 "integer per row of controls, 1 in all (got [])" + DAMAGED),
    "epoch-a-string": (lambda p: _rewrite_checkpoint(p, epoch="3000"), "not a readable checkpoint: epoch must be an "
                       "integer >= 0 (got '3000')" + DAMAGED),
    "controls-strings": (lambda p: _rewrite_checkpoint(p, controls=np.full((1, 32), "a")), "not a readable "
                         "checkpoint: controls must be numbers [replicas, edges] (got <U1 [1, 32])" + DAMAGED),
    # one bad value of a list or an array, by its position: shown() of the whole would hide it past the fifth
    "controls-nan": (lambda p: _rewrite_checkpoint(p, controls=np.where(np.arange(32) == 6, np.nan, 3.0)[None]),
                     "not a readable checkpoint: controls must be finite (got nan at replica 0, edge 6)" + DAMAGED),
    "history-a-number-among-rows": (lambda p: _rewrite_checkpoint(p, history=[{}] * 6 + [3]), "not a readable "
                                    "checkpoint: history must be a list of mappings (got 3 at index 6)" + DAMAGED),
    "trajectory-epoch-negative": (lambda p: _rewrite_checkpoint(p, trajectory=np.zeros((7, 1, 32)),
                                                                trajectory_epochs=[0, 1, 2, 3, 4, 5, -1]),
                                  "not a readable checkpoint: trajectory_epochs must be a list of one integer >= 0 per "
                                  "trajectory row, 7 in all (got -1 at index 6)" + DAMAGED),
    "fewer-edges": (lambda p: _rewrite_checkpoint(p, controls=np.full((1, 5), 3.0)), "not a readable checkpoint: "
                    "controls of 5 edges, but the network of config.yaml has 32 (the config, its network file or the "
                    "checkpoint changed since training)" + DAMAGED),
    "epoch-a-long-string": (lambda p: _rewrite_checkpoint(p, epoch="3" * 100), "not a readable checkpoint: epoch "
                            f"must be an integer >= 0 (got '{'3' * 37}...{'3' * 38}')" + DAMAGED),
    "revision-a-string": (lambda p: _rewrite_checkpoint(p, revision="x"), "not a readable checkpoint: revision must "
                          "be an integer >= 1 (got 'x')" + DAMAGED),
    "files-a-list": (lambda p: _rewrite_checkpoint(p, files=["x.csv"]), "not a readable checkpoint: files must be "
                     "a mapping of key paths to {path, sha256} (got ['x.csv'])" + DAMAGED),
    "newer-revision": (lambda p: _rewrite_checkpoint(p, revision=99), "written by a newer version of metamaterial "
                       f"(revision 99 of the training dynamics; this one knows up to {revisions.CURRENT}); use that "
                       "version, or train the run again with this one"),
}


def _damaged_copy(run, to, how: str):
    shutil.copytree(run, to)
    BAD_CHECKPOINTS[how][0](to / "checkpoint.npz")
    return to


@pytest.mark.parametrize("how", BAD_CHECKPOINTS)
def test_a_damaged_checkpoint_is_one_error_naming_the_file_and_what_is_wrong(xor_run, tmp_path, how):
    run = _damaged_copy(xor_run, tmp_path / "run", how)
    with pytest.raises(CheckpointError, match=f"^{re.escape(f'{run / CHECKPOINT}: {BAD_CHECKPOINTS[how][1]}')}$"):
        load_run(run)


@pytest.mark.parametrize("how", ["truncated", "seeds-of-two-replicas"])
def test_every_command_on_a_damaged_checkpoint_says_so_in_one_line_and_writes_nothing(xor_run, tmp_path, how):
    run = _damaged_copy(xor_run, tmp_path / "run", how)
    before = (run / CHECKPOINT).read_bytes()
    line = f"metamaterial: {run / CHECKPOINT}: {BAD_CHECKPOINTS[how][1]}\n"
    for command in (["eval", str(run)], ["netlist", str(run), "--out", str(tmp_path / "n")],
                    ["energy", str(run), "--out", str(tmp_path / "e"), "--no-plots"],
                    ["train", "--resume", str(run), "--no-progress", "--no-plots"],
                    ["train", "--resume", str(run), "--seeds", "1", "--no-progress", "--no-plots"]):
        assert cli_refused(*command) == line, command
        assert (run / CHECKPOINT).read_bytes() == before, command
    assert not (tmp_path / "n").exists() and not (tmp_path / "e").exists()


def test_a_run_checkpointed_at_no_epoch_still_ends_with_its_final_checkpoint(tmp_path):
    """``learning.checkpoint_every: 0`` writes no checkpoint on the way, and still the final one: the run directory
    is usable by eval and netlist."""
    run = tmp_path / "run"
    cli_ok("train", XOR, "--out", str(run), *NATIVE, "--no-plots", "--set", "learning.epochs=20", "--set",
           "learning.checkpoint_every=0")
    assert load_run(run).epoch == 20
    assert json.loads(cli_ok("eval", str(run), "--json").stdout)["epoch"] == 20
    cli_ok("netlist", str(run), "--out", str(tmp_path / "n"))


def test_ensemble_eval_per_replica_and_its_figures(xor_ensemble, tmp_path):
    run, stdout = xor_ensemble
    assert f"run directory: {run}/ (summary.json, ensemble.csv, loss.png, accuracy.png, success.png, " \
           "margins.png)" in stdout
    with (run / "ensemble.csv").open() as f:
        table = list(csv.DictReader(f))
    result = json.loads(cli_ok("eval", str(run), "--json").stdout)
    assert [r["seed"] for r in result["replicas"]] == list(range(N_SEEDS))
    for row, rep in zip(table, result["replicas"]):
        assert rep["loss"] == pytest.approx(float(row["final_loss"]), rel=1e-6)
        assert rep["min_margin_v"] == pytest.approx(float(row["min_margin_v"]), abs=SAME_BACKEND_V)
        assert str(rep["success"]).lower() == row["success"]
    one = json.loads(cli_ok("eval", str(run), "--replica", "2", "--json").stdout)
    (rep,) = one["replicas"]
    assert rep["seed"] == 2 and rep["outputs"] == result["replicas"][2]["outputs"]
    text = cli_ok("eval", str(run)).stdout
    solved = sum(r["success"] == "true" for r in table)
    assert f"{solved}/{N_SEEDS} replicas have every point correct by >= 10 mV" in text
    assert "--replica: the run holds 4 replicas (seeds 0..3); choose one with --replica SEED" in \
        cli_refused("netlist", str(run), "--out", str(tmp_path / "n"))
    assert not (tmp_path / "n").exists()  # a refused command creates no folder
    cli_ok("netlist", str(run), "--out", str(tmp_path / "n"), "--replica", "2")
    figures = {name: (run / name).read_bytes() for name in ("loss.png", "accuracy.png", "success.png", "margins.png")}
    for name in figures:
        (run / name).unlink()
    assert cli_ok("plot", str(run)).stdout == f"wrote loss.png, accuracy.png, success.png, margins.png to {run}/\n"
    for name, before in figures.items():
        assert (run / name).read_bytes() == before, name


def test_held_out_split_with_the_tasks_own_names(tmp_path):
    run = tmp_path / "iris"
    cli_ok("train", str(ROOT / "configs" / "iris.yaml"), "--out", str(run), "--backend", "native", "--set",
           "learning.epochs=3", "--no-progress", "--no-plots")
    summary = json.loads((run / "summary.json").read_text())
    result = json.loads(cli_ok("eval", str(run), "--split", "test", "--json").stdout)
    (rep,) = result["replicas"]
    assert result["split"] == "test" and len(result["inputs"]) == 30  # a fifth of 150 flowers
    assert rep["accuracy"] == summary["test_accuracy"]
    assert rep["loss"] == pytest.approx(summary["test_loss"], rel=1e-6)
    assert result["input_names"] == [f"V({name})" for name in  # volts, scaled from the dataset's cm
                                     ("sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm")]
    assert result["output_names"] == [f"species={s}" for s in ("setosa", "versicolor", "virginica")]
    assert set(result["true"]) == {"setosa", "versicolor", "virginica"}
    assert np.mean(np.array(rep["predicted"]) == np.array(result["true"])) == rep["accuracy"]


def test_plot_redraws_the_figures_from_the_run_directory_alone(tmp_path):
    work = tmp_path / "work"
    shutil.copytree(ROOT / "configs", work)
    run = tmp_path / "run"
    proc = cli_ok("train", str(work / "csv_example.yaml"), "--out", str(run), "--backend", "native", "--set",
                  "learning.epochs=20", "--no-progress")
    assert "outputs.csv, loss.png, gates.png, outputs.png)" in proc.stdout
    data = (work / "data" / "two_outputs.csv").read_text().splitlines()[0].split(",")
    with (run / "outputs.csv").open() as f:
        header = next(csv.reader(f))
    assert header == ["point", data[0], *(f"target {n}" for n in data[1:]), *(f"output {n}" for n in data[1:])]
    figures = {name: (run / name).read_bytes() for name in ("loss.png", "gates.png", "outputs.png")}
    for name in figures:
        (run / name).unlink()
    shutil.rmtree(work)  # the config and its data are gone: the run directory is all there is
    assert cli_ok("plot", str(run)).stdout == f"wrote loss.png, gates.png, outputs.png to {run}/\n"
    for name, before in figures.items():
        assert (run / name).read_bytes() == before, name


def test_no_plots_lists_no_figures(tmp_path):
    run = tmp_path / "run"
    proc = cli_ok("train", XOR, "--out", str(run), *NATIVE, "--no-plots", "--set", "learning.epochs=5")
    assert ".png" not in proc.stdout and not list(run.glob("*.png"))
    assert f"run directory: {run}/ (summary.json, metrics.csv, gates.csv, outputs.csv)" in proc.stdout
    proc = cli_ok("train", XOR, "--out", str(tmp_path / "ens"), *NATIVE, "--no-plots", "--set", "learning.epochs=5",
                  "--seeds", "2")
    assert ".png" not in proc.stdout and not list((tmp_path / "ens").glob("*.png"))


@pytest.mark.parametrize("text, message", [
    ("n15,n13\n", ": needs a header naming the input nodes (n15 n13) and at least one row (got only the line "
                  "n15,n13); give a header such as n15,n13 (the columns in any order), then one row of input values "
                  "per point"),
    ("\n\n", ": needs a header naming the input nodes (n15 n13) and at least one row (got an empty file); give a "
             "header such as n15,n13 (the columns in any order), then one row of input values per point"),
    ("n15,n13,n10\n0,0,0\n", ": the columns are the input nodes only (n15 n13) (got n15,n13,n10); remove the column "
                             "n10"),
    ("x,n13,n15,y\n0,0,0,0\n", ": the columns are the input nodes only (n15 n13) (got x,n13,n15,y); remove the "
                               "columns x, y"),
    ("n13,n15,n13\n0,0,0\n", ": the header must name each input node once (n15 n13) (got n13,n15,n13: columns 1 and 3 "
                             "are both input n13); give a header such as n15,n13 (the columns in any order)"),
    ("n15,n13\n0,nan\n", ":2: n13 must be a finite voltage in [-10, 10] V (got nan); correct that value"),
    ("n13,n15\n0,0\n\n1e6,0.45\n", ":4: n13 must be a finite voltage in [-10, 10] V (got 1e+06); correct that value"),
])
def test_new_inputs_csv_errors(tmp_path, text, message):
    """Each message names the file, and a bad value its line and column."""
    path = tmp_path / "new.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"^{re.escape(f'{path}{message}')}$"):
        read_inputs_csv(path, build(load_config(XOR)))


def test_plot_refuses_a_config_yaml_that_is_not_a_runs(tmp_path):
    (tmp_path / "config.yaml").write_text("name: x\n")
    (tmp_path / "summary.json").write_text("{}\n")
    with pytest.raises(CheckpointError, match=f"^{re.escape(str(tmp_path / 'config.yaml'))}: not the config.yaml of "
                                              "a run \\(no 'device'\\)"):
        plot_run_dir(tmp_path)


#: a run directory's file damaged one way -> what ``plot`` says is wrong with it
BAD_RUN_FILES = {
    "summary-cut-short": ("summary.json", '{"task": ', "not valid JSON (Expecting value at line 1)"),
    "summary-a-list": ("summary.json", "[1, 2]\n", "a JSON list, not a mapping"),
    "metrics-other-header": ("metrics.csv", "foo,bar\n1,2\n", "no column 'epoch'"),
    "metrics-empty": ("metrics.csv", "", "empty"),
    "metrics-removed": ("metrics.csv", None, "missing"),
    "gates-not-numbers": ("gates.csv", "x\nabc\n", "a row that is not comma-separated numbers"),
    "gates-removed": ("gates.csv", None, "missing"),
    "gates-cut-short": ("gates.csv", "epoch," + ",".join(f"e{i}" for i in range(32)) + "\n0,1.45,0.9\n",
                        "rows of 3 columns under a header of 33"),
    "outputs-cut-short": ("outputs.csv", "point,n15,n13,target n10-n0,output n10-n0,class,predicted\n"
                                         "0,0.0,0.0,0.0,-0.0179,0 mV,0 mV\n1,0.0,0.45,-0.087\n",
                          "2 rows of points, where summary.json has 4"),
    "outputs-a-row-cut": ("outputs.csv", "point,n15,n13,target n10-n0,output n10-n0,class,predicted\n"
                                         "0,0.0,0.0,0.0,-0.0179,0 mV,0 mV\n1,0.0,0.45,-0.087,-0.0686,-87 mV,-87 mV\n"
                                         "2,0.45,0.0,-0.087,-0.0806,-87 mV,-87 mV\n3,0.45,0.45\n",
                          "a row not of the header's 7 columns"),
    "summary-without-outputs": ("summary.json", '{"name": "x", "task": "xor", "backend": "native"}',
                                "no outputs_v, targets_v"),
    "config-not-yaml": ("config.yaml", "name: [unclosed\n", "not valid YAML (while parsing a flow sequence)"),
    "config-empty": ("config.yaml", "", "the file is empty"),
    "config-a-list": ("config.yaml", "- 1\n", "a YAML list, not a mapping of sections"),
}


#: a run directory's config.yaml that holds no config -> what eval, netlist and train --resume say is wrong with it
BAD_RUN_CONFIGS = {
    "empty": ("", "the file is empty (got 0 bytes)"),
    "not-yaml": ("x: [\n", "invalid YAML (expected the node content, but found '<stream end>') at line 2, column 1"),
    "a-list": ("- 1\n", "the top level must be a mapping of sections (got list)"),
    # the line alone (was ":2: duplicate key ...", the path cut from the reader's own message)
    "duplicate-key": ("seed: 1\nseed: 2\n", "duplicate key 'seed' (got it first at line 1) at line 2"),
    "not-utf8": (b"name: \xff\n", "not UTF-8 text (byte 0xff at offset 6)"),
    "too-long-int": ("seed: " + "9" * 5000 + "\n", "a whole number too long to read (got 5,000 characters) at line 1, "
                                                   "column 7"),
}


@pytest.mark.parametrize("how", BAD_RUN_CONFIGS)
def test_a_run_whose_config_holds_no_config_is_a_damaged_run_directory(xor_run, tmp_path, how):
    """An emptied config.yaml was answered as a config to write ("write the config in it"), and plot said "no
    'NoneType' object is not subscriptable": the run directory is damaged, with what to do, for every command."""
    text, what = BAD_RUN_CONFIGS[how]
    run = tmp_path / "run"
    shutil.copytree(xor_run, run)
    (run / "config.yaml").write_bytes(text if isinstance(text, bytes) else text.encode())
    message = (f"metamaterial: {run / 'config.yaml'}: {what}; the run directory is damaged: train it again "
               "(--replace) or restore config.yaml\n")
    for command in (["eval", str(run)], ["netlist", str(run), "--out", str(tmp_path / "cir")],
                    ["train", "--resume", str(run)]):
        assert cli_refused(*command) == message, command


@pytest.mark.parametrize("how", BAD_RUN_FILES)
def test_plot_of_a_damaged_run_directory_names_the_file_and_what_to_do(xor_run, tmp_path, how):
    name, text, what = BAD_RUN_FILES[how]
    run = tmp_path / "run"
    shutil.copytree(xor_run, run)
    if text is None:
        (run / name).unlink()
    else:
        (run / name).write_text(text)
    message = f"{run / name}: {what}; the run directory is damaged: train it again (--replace) or restore {name}"
    with pytest.raises(CheckpointError, match=f"^{re.escape(message)}$"):
        plot_run_dir(run)
    if how == "summary-a-list":
        assert cli_refused("plot", str(run)) == f"metamaterial: {message}\n"


@pytest.mark.parametrize("command", [["netlist"], ["energy", "--backend", "native"], ["transient", "--steps", "1"]])
def test_replica_needs_a_run_directory(tmp_path, command):
    out = tmp_path / "out"
    assert "--replica: names a replica of a run directory; give a run directory instead of a config" in \
        cli_refused(command[0], XOR, *command[1:], "--out", str(out), "--replica", "1")
    assert not out.exists()


def test_json_text_keeps_every_value_and_puts_a_curve_on_one_line():
    from metamaterial.runfiles import json_text

    curve = np.linspace(0.0, 1.0, 500)
    payload = {"curve": curve, "rows": [[1, 2.5], [np.float64(3.25), None]], "name": "xor", "n": np.int64(7),
               "nested": {"ok": np.bool_(True), "empty": {}, "none": []}, "items": [{"a": 1}, {"b": [True, "x"]}]}
    text = json_text(payload)
    back = json.loads(text)
    assert back["curve"] == curve.tolist()  # exact: shortest round-trip floats
    assert back["rows"] == [[1, 2.5], [3.25, None]] and back["n"] == 7 and back["nested"]["ok"] is True
    assert back["nested"]["empty"] == {} and back["nested"]["none"] == [] and back["items"][1]["b"] == [True, "x"]
    assert len(text.splitlines()) < 25  # one line per key or row, not one per number
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        json_text({"bad": object()})


def test_progress_in_a_log_file_is_plain_lines_with_the_time_left(capsys, monkeypatch):
    """Where stderr is not a terminal, training's progress is a plain line at most every ``every`` seconds (no
    redraws), naming the epoch, the time so far, the time left at the rate so far, and the last evaluation."""
    clock = iter([100.0, 110.0, 115.0, 140.0, 200.0])  # start, then one reading per update
    monkeypatch.setattr(runs.time, "monotonic", lambda: next(clock))
    lines = runs._LogLines(total=10, start=2, name="train xor", every=30.0)
    lines.set_postfix({"loss": "0.01"})
    for _ in range(4):
        lines.update(2)  # epochs 4, 6, 8, 10 at 110, 115, 140, 200 s
    out = capsys.readouterr().err.splitlines()
    # 10 s and 15 s in: too soon; 40 s in (epoch 8, 6 epochs done, 2 left): one line; the last epoch: none
    assert out == ["train xor: epoch 8/10, 40 s, about 13 s left, loss 0.01"]


def test_a_hinge_run_reports_the_hinge_loss_it_trains(tmp_path):
    """Under the multi-class hinge the summary, metrics.csv and the printed summary carry the objective trained:
    the mean over points of max(0, margin - the point's class margin), here recomputed from the saved outputs
    (held out: from ``eval``'s outputs), beside the outputs' MSE to their labels."""
    run = tmp_path / "iris"
    proc = cli_ok("train", str(ROOT / "configs" / "iris.yaml"), "--out", str(run), "--backend", "native", "--set",
               "learning.epochs=4", "--set", "learning.loss=multiclass_hinge", "--set", "learning.nudge=0.05",
               "--set", "learning.margin=0.03", "--no-progress", "--no-plots")
    summary = json.loads((run / "summary.json").read_text())
    setup = build(load_config(run / "config.yaml"))
    for outputs, classes, key in ((np.array(summary["outputs_v"]), setup.task.classes, "final_hinge_loss"),
                                  (None, setup.task.test_classes, "test_hinge_loss")):
        if outputs is None:
            (rep,) = json.loads(cli_ok("eval", str(run), "--split", "test", "--json").stdout)["replicas"]
            outputs = np.array(rep["outputs"])
            assert rep["hinge_loss"] == pytest.approx(summary[key], rel=1e-9)
        margins = np.array([o[c] - np.delete(o, c).max() for o, c in zip(outputs, classes)])
        assert summary[key] == pytest.approx(np.maximum(0.03 - margins, 0).mean(), rel=1e-9, abs=1e-12), key
    assert summary["hinge_margin_v"] == 0.03 and summary["initial_hinge_loss"] > summary["final_hinge_loss"]
    with (run / "metrics.csv").open() as f:
        last = list(csv.DictReader(f))[-1]
    assert float(last["hinge_loss"]) == summary["final_hinge_loss"]
    assert (f"hinge loss (mean shortfall of the class margin below 30 mV) {1e3 * summary['initial_hinge_loss']:.3g}"
            f" -> {1e3 * summary['final_hinge_loss']:.3g} mV; output MSE to the labels") in proc.stdout
    mse = cli_ok("train", XOR, "--out", str(tmp_path / "mse"), *NATIVE, "--no-plots", "--set", "learning.loss=mse")
    assert "loss (output MSE)" in mse.stdout and "hinge loss" not in mse.stdout
    assert "hinge_loss" not in json.loads((tmp_path / "mse" / "summary.json").read_text())
    ens = tmp_path / "ens"
    proc = cli_ok("train", str(ROOT / "configs" / "iris.yaml"), "--out", str(ens), "--backend", "native", "--seeds",
                  "2", "--set", "learning.epochs=4", "--no-progress", "--no-plots")
    with (ens / "ensemble.csv").open() as f:
        table = list(csv.DictReader(f))
    median = json.loads((ens / "summary.json").read_text())["final_hinge_loss_median"]
    assert median == pytest.approx(np.median([float(row["final_hinge_loss"]) for row in table]), rel=1e-12)
    assert f"median final hinge loss {1e3 * median:.3g} mV" in proc.stdout


def test_an_eval_table_of_many_inputs_gives_a_classifiers_classes_alone():
    """Formatting only: a point of 64 pixels does not fit a line, so the per-point table of such a classifier keeps
    the point, its class and the predicted one, and says where the rest is; a few inputs are shown in full."""
    from metamaterial.cli import TABLE_MAX_INPUTS, _eval_table  # noqa: PLC0415

    def result(n_inputs: int) -> dict:
        return {"name": "d", "task": "digits", "epoch": 3, "backend": "native", "split": "test",
                "scored_on": "held-out", "input_names": [f"n{i}" for i in range(n_inputs)],
                "output_names": ["n70-n80", "n71-n81"],
                "inputs": [[0.5] * n_inputs, [0.25] * n_inputs], "targets": [[0.3, 0.15], [0.15, 0.3]],
                "true": [0, 1], "replicas": [{"seed": 0, "outputs": [[0.2, 0.1], [0.2, 0.1]], "predicted": [0, 0]}]}

    wide = _eval_table(result(TABLE_MAX_INPUTS + 1)).splitlines()
    assert wide[1].split() == ["point", "class", "predicted"]
    assert [row.split() for row in wide[2:4]] == [["0", "0", "0"], ["1", "1", "0"]]
    assert wide[4] == f"({TABLE_MAX_INPUTS + 1} inputs and 2 outputs per point: --json)"
    narrow = _eval_table(result(2)).splitlines()
    assert narrow[1].split() == ["point", "n0", "n1", "target", "n70-n80", "target", "n71-n81", "output", "n70-n80",
                                 "output", "n71-n81", "class", "predicted"]
    assert narrow[2].split() == ["0", "0.5", "0.5", "0.3", "0.15", "0.2", "0.1", "0", "0"]


def test_new_inputs_of_a_layered_network_may_name_its_nodes_as_the_config_does(tmp_path):
    """A layered network's inputs are ``in0``.. in its config and roles: a CSV of new digits may name them so (or
    by their netlist names ``n0``..), in any order."""
    setup = build(load_config(ROOT / "configs" / "digits.yaml"))
    x = np.round(setup.task.test_inputs[:3], 6)
    by_label, by_node = tmp_path / "label.csv", tmp_path / "node.csv"
    order = np.random.default_rng(0).permutation(64)

    def table(names, columns):
        return ",".join(names) + "\n" + "".join(",".join(repr(float(v)) for v in row[columns]) + "\n" for row in x)

    by_label.write_text(table([f"in{i}" for i in order], order))
    by_node.write_text(table([f"n{i}" for i in range(64)], np.arange(64)))
    np.testing.assert_array_equal(read_inputs_csv(by_label, setup), x)
    np.testing.assert_array_equal(read_inputs_csv(by_node, setup), x)
    by_label.write_text("in0,in1\n0,0\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(by_label))}: the header must name each input node once "
                                          r"\(n0 n1 .* n63, or in0 in1 .* in63\) \(got in0,in1: no column is input "
                                          r"n2\); give a header naming each of the 64 inputs once, as listed \(the "
                                          r"columns in any order\)$"):
        read_inputs_csv(by_label, setup)
