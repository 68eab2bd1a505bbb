"""What ``train`` decides before it trains (``runs.plan_train``): the checkpoint it resumes is read once, a replace
a kill cut short is finished once, and contradictory options are refused in one place, for the command line and the
library alike."""

from __future__ import annotations

import re

import numpy as np
import pytest

from conftest import ROOT, cli
from metamaterial import replacement, runs
from metamaterial.cli import main
from metamaterial.configfile import load_config
from metamaterial.errors import CheckpointError, ConfigError
from metamaterial.runfiles import CHECKPOINT, SET_ASIDE

XOR = str(ROOT / "configs" / "xor.yaml")
EPOCHS = 20
QUICK = ["--backend", "native", "--set", f"learning.epochs={EPOCHS}", "--no-progress", "--no-plots"]


@pytest.fixture
def stopped_run(tmp_path):
    """A single XOR run of EPOCHS epochs whose config.yaml asks for twice as many: a run to resume."""
    run = tmp_path / "run"
    assert main(["train", XOR, "--out", str(run), *QUICK]) == 0
    saved = run / "config.yaml"
    saved.write_text(saved.read_text().replace(f"  epochs: {EPOCHS}\n", f"  epochs: {2 * EPOCHS}\n"))
    return run


def _count_checkpoint_reads(monkeypatch) -> list[str]:
    """Every np.load of a checkpoint from here on, by the file's name."""
    reads, real = [], np.load

    def load(file, *args, **kwargs):
        name = str(getattr(file, "name", file))
        if name.endswith(CHECKPOINT):
            reads.append(name)
        return real(file, *args, **kwargs)

    monkeypatch.setattr(np, "load", load)
    return reads


def test_train_resume_reads_the_checkpoint_once(stopped_run, monkeypatch, capsys):
    """The seeds, the revision, the pinned files and the state come from one read (there were five)."""
    reads = _count_checkpoint_reads(monkeypatch)
    assert main(["train", "--resume", str(stopped_run), "--no-progress", "--no-plots"]) == 0
    assert reads == [str(stopped_run / CHECKPOINT)]
    assert f"{2 * EPOCHS} epochs" in capsys.readouterr().out


def test_train_finishes_a_killed_replace_once(stopped_run, tmp_path, monkeypatch):
    calls, real = [], replacement.finish_replace

    def finish(run_dir):
        calls.append(run_dir)
        return real(run_dir)

    monkeypatch.setattr(runs, "finish_replace", finish)
    assert main(["train", "--resume", str(stopped_run), "--no-progress", "--no-plots"]) == 0
    assert calls == [stopped_run]
    calls.clear()
    other = tmp_path / "other"
    assert main(["train", XOR, "--out", str(other), *QUICK]) == 0
    assert calls == [other]


@pytest.mark.parametrize(("train", "says"), [
    (lambda cfg, run: runs.train_run(cfg, run, resume=True, replace=True, progress=False),
     "--replace and --resume: choose one (--replace trains afresh, --resume continues)"),
    (lambda cfg, run: runs.plan_train(cfg, out=run.parent / "elsewhere", resume=run),
     "--out and --resume name different directories; give only --resume DIR"),
    (lambda cfg, run: runs.ensemble_run(cfg, run, 0, progress=False), "--seeds: must be >= 1 (got 0); give the "
                                                                       "number of seeds to train, 1 or more"),
])
def test_the_library_refuses_contradictory_options_as_the_command_line_does(stopped_run, train, says):
    cfg = load_config(stopped_run / "config.yaml")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in stopped_run.iterdir())
    with pytest.raises(ConfigError, match=f"^{says.replace('(', '[(]').replace(')', '[)]')}$"):
        train(cfg, stopped_run)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in stopped_run.iterdir()) == before


def test_a_resumed_run_whose_config_changes_its_network_is_told_so_not_called_damaged(stopped_run, capsys):
    """The checkpoint is read before the network is built; its edges are checked after the config's differences,
    so a --set of the network names the key, not a damaged checkpoint."""
    assert main(["train", "--resume", str(stopped_run), "--set", "network.rows=5", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == (f"metamaterial: {stopped_run / 'config.yaml'}: differs from the config given now in network.rows; "
                   "resume with the same config and --set options (learning.epochs alone may change), or start a new "
                   "run with --out\n")


def test_a_resume_with_another_seed_names_the_config_not_the_seeds_option(stopped_run, capsys):
    """Another seed is another config: named as such, not as a --seeds the command did not give."""
    assert main(["train", "--resume", str(stopped_run), "--set", "seed=3", "--no-progress"]) == 2
    assert capsys.readouterr().err == (
        f"metamaterial: {stopped_run / 'config.yaml'}: differs from the config given now in seed; resume with the same "
        "config and --set options (learning.epochs alone may change), or start a new run with --out\n")


def test_a_config_yaml_edited_since_its_checkpoint_is_refused_on_resume(stopped_run, capsys):
    """The checkpoint records the config it trained: a config.yaml edited since (here the nudge) would resume into a
    run neither config trains, so it is refused, naming the key, and the run stays as it was; learning.epochs
    (raised by the fixture) may differ."""
    saved = stopped_run / "config.yaml"
    saved.write_text(saved.read_text().replace("  nudge: 0.5\n", "  nudge: 0.4\n"))
    before = {p.name: p.read_bytes() for p in stopped_run.iterdir()}
    assert main(["train", "--resume", str(stopped_run), "--no-progress", "--no-plots"]) == 2
    assert capsys.readouterr().err == (
        f"metamaterial: {saved}: differs from the config its {CHECKPOINT} was trained with in learning.nudge (edited "
        "since that checkpoint was written); put those keys back to resume it, or train the config as it is now into "
        "a new --out\n")
    assert {p.name: p.read_bytes() for p in stopped_run.iterdir()} == before
    saved.write_text(saved.read_text().replace("  nudge: 0.4\n", "  nudge: 0.5\n"))
    assert main(["train", "--resume", str(stopped_run), "--no-progress", "--no-plots"]) == 0


@pytest.mark.parametrize("command", [["eval"], ["netlist", "--out", "NETLISTS"], ["energy", "--no-plots"],
                                     ["transient", "--steps", "1", "--no-plots"]])
def test_a_config_yaml_edited_since_its_checkpoint_is_refused_by_the_commands_on_a_run(stopped_run, capsys,
                                                                                          command):
    """The commands that read a run's gates read them on its config.yaml: edited since training (here the device),
    the gates would be read on a circuit they were not trained on, so each command refuses, naming the key; with
    learning.epochs changed (the fixture) or the run renamed (its name only titles what they write) they read it."""
    saved = stopped_run / "config.yaml"
    argv = [command[0], str(stopped_run), *(str(stopped_run / "n") if a == "NETLISTS" else a for a in command[1:])]
    assert main([*argv, "--no-progress"] if command[0] in ("energy", "transient") else argv) == 0
    capsys.readouterr()
    saved.write_text(saved.read_text().replace("preset: ald1106-fit", "preset: ald1106-l1"))
    assert main([*argv, "--no-progress"] if command[0] in ("energy", "transient") else argv) == 2
    assert capsys.readouterr().err == (
        f"metamaterial: {saved}: differs from the config its {CHECKPOINT} was trained with in device.preset (edited "
        "since); put those keys back: the gates fit the config they were trained with (energy and transient take "
        "--set for a what-if)\n")
    text = saved.read_text().replace("preset: ald1106-l1", "preset: ald1106-fit")
    assert text.startswith("name: xor\n")  # the run's name (task.name is xor too)
    saved.write_text("name: renamed\n" + text.removeprefix("name: xor\n"))
    assert main([*argv, "--no-progress"] if command[0] in ("energy", "transient") else argv) == 0


def _half_replaced(folder):
    """A folder as a --replace leaves it between setting the old run aside and the new run's first checkpoint."""
    aside = folder / SET_ASIDE
    aside.mkdir(parents=True)
    (aside / CHECKPOINT).write_bytes(b"the old run's checkpoint")
    (aside / "config.yaml").write_text("name: old\n")
    return aside


def test_a_replace_running_now_is_left_alone_and_one_killed_is_finished(tmp_path):
    """While a --replace holds its lock (it is running, in this process or another), no command takes its folder
    for one a kill cut short: the old run stays aside (the new run deletes it once it has a checkpoint; put back
    meanwhile, it would be mixed with the new run's files). Once the lock is gone, as with a kill, it is put back."""
    run = tmp_path / "run"
    aside = _half_replaced(run)
    with replacement.training_lock(run):
        assert replacement.is_training(run)
        assert replacement.finish_replace(run) is None
        proc = cli("eval", str(run))  # another process
        assert proc.returncode == 2 and not proc.stderr.startswith("eval: put back"), proc.stderr
        assert sorted(p.name for p in run.iterdir()) == [SET_ASIDE] and (aside / CHECKPOINT).exists()
    assert not replacement.is_training(run)
    assert replacement.finish_replace(run).startswith(f"put back the run in {run}/")
    assert sorted(p.name for p in run.iterdir()) == [CHECKPOINT, "config.yaml"]


def test_a_second_replace_into_a_folder_being_replaced_is_refused_not_left_waiting(tmp_path):
    """The lock is taken without waiting: a second --replace while one runs (another process) is refused in one
    line; it used to wait, silent, for the first one's whole training, then replace the run that had just ended."""
    run = tmp_path / "run"
    _half_replaced(run)
    with replacement.training_lock(run):
        proc = cli("train", str(ROOT / "configs" / "xor.yaml"), "--out", str(run), "--replace", "--backend",
                   "native", "--no-progress", "--no-plots")
    assert (proc.returncode, proc.stderr) == (2, f"metamaterial: {ROOT / 'configs' / 'xor.yaml'}: {run}: a `train` "
                                                 "into it is running in another process; wait for it to end, or "
                                                 "choose another --out\n")
    with pytest.raises(ConfigError, match="is running in another process"), replacement.training_lock(run), \
            replacement.training_lock(run):
        pass


def test_a_resume_while_the_run_trains_is_refused_and_touches_nothing(stopped_run):
    """Two trains into one folder wrote one checkpoint in turns; a resume while the run trains (here: while this
    process holds the folder's lock, as a running train does) is refused in one line and leaves the run as it was."""
    before = {p.name: p.read_bytes() for p in stopped_run.iterdir() if p.is_file()}
    with replacement.training_lock(stopped_run):
        proc = cli("train", "--resume", str(stopped_run), *QUICK[:2], "--no-progress", "--no-plots")
    assert (proc.returncode, proc.stderr) == (2, f"metamaterial: {stopped_run}: a `train` into it is running in "
                                                 "another process; wait for it to end\n")
    assert {p.name: p.read_bytes() for p in stopped_run.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("fresh", [True, False])
def test_every_train_holds_its_folders_lock_while_it_trains(stopped_run, tmp_path, monkeypatch, fresh):
    """A fresh run into a folder it makes, and a resumed one, both hold the lock (a replace's is tested above)."""
    run = tmp_path / "new" if fresh else stopped_run
    seen = []
    train_replicas = runs.train_replicas

    def watched(*args, **kwargs):
        seen.append(replacement.is_training(run))
        return train_replicas(*args, **kwargs)

    monkeypatch.setattr(runs, "train_replicas", watched)
    args = [XOR, "--out", str(run), *QUICK] if fresh else ["--resume", str(run), *QUICK[:2], "--no-progress",
                                                            "--no-plots"]
    assert main(["train", *args]) == 0
    assert seen == [True] and not replacement.is_training(run)


def test_a_finished_run_trains_on_with_more_epochs_alone_to_where_one_longer_run_ends(tmp_path):
    """From Python as from the command line: resuming with learning.epochs raised (and nothing else) trains on, and
    ends on the gates of one run of that many epochs (with a checkpoint where the first one ended: the solver forgets
    its warm starts at each, as the resumed run starts without them); its config.yaml then says so. Fewer epochs
    than it has, or another change beside the epochs, is refused and leaves the run as it was."""
    same = ["simulator.backend=native", f"learning.checkpoint_every={EPOCHS}"]  # the longer run's checkpoint at EPOCHS
    cfg = load_config(XOR, [*same, f"learning.epochs={EPOCHS}"])
    longer = load_config(XOR, [*same, f"learning.epochs={2 * EPOCHS}"])
    run, whole = tmp_path / "run", tmp_path / "whole"
    runs.train_run(cfg, run, plots=False)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    for refused, says in [(["learning.epochs=10"], f"learning.epochs: the run in {run} is at epoch {EPOCHS} (got 10); "
                                                   f"to train it on, give more epochs than {EPOCHS}"),
                          ([f"learning.epochs={2 * EPOCHS}", "learning.nudge=0.2"],
                           "differs from the config given now in learning.epochs, learning.nudge")]:
        with pytest.raises(CheckpointError, match=re.escape(says)):
            runs.train_run(load_config(run / "config.yaml", refused), run, resume=True, plots=False)
        assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    on = runs.train_run(load_config(run / "config.yaml", [f"learning.epochs={2 * EPOCHS}"]), run, resume=True,
                        plots=False)
    one = runs.train_run(longer, whole, plots=False)
    np.testing.assert_array_equal(on.state.controls, one.state.controls)
    assert (run / "config.yaml").read_text() == (whole / "config.yaml").read_text()
