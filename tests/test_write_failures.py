"""Writes that fail: a full disk, a file over the size limit, a read-only run directory. A temporary file is removed
whatever stops its write (an error, Ctrl-C), the old file stays whole, and the command says in one line which file,
what is wrong and what to do (resume from the checkpoint kept); a resume into a run directory that cannot be written
is refused before it trains."""

from __future__ import annotations

import errno
import json
import resource
import shutil
import signal
import sys

import numpy as np
import pytest

from conftest import ROOT, cli
from metamaterial import runfiles
from metamaterial.cli import main
from metamaterial.runfiles import CHECKPOINT, load_checkpoint, write_atomically
from metamaterial.sweep import store

REGRESSION = str(ROOT / "configs" / "regression.yaml")
#: regression.yaml on native: 2,000 epochs, a checkpoint every 500 (40,204 bytes at epoch 500, 77,012 at 1,000)
NATIVE = ["--backend", "native", "--no-plots", "--no-progress"]
#: a limit on a file's size between the checkpoints of epochs 500 and 1,000
FSIZE = 60_000


def _no_space() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("stop", [_no_space, KeyboardInterrupt])
def test_a_checkpoint_write_that_stops_keeps_the_old_checkpoint_and_leaves_no_temporary_file(tmp_path, monkeypatch,
                                                                                            stop):
    """np.savez stopped part way (the disk full, or Ctrl-C): the old checkpoint is as it was, the half-written
    checkpoint.npz.tmp is gone (on a full disk it held the space the user needs back), and the error names the
    checkpoint, which the disk's error does not."""
    path = tmp_path / CHECKPOINT
    write_atomically(path, controls=np.arange(3.0))
    old = path.read_bytes()

    def savez(f, **arrays):
        f.write(b"\0" * 4096)  # part of the new file, then the write fails
        raise stop()

    monkeypatch.setattr(runfiles.np, "savez", savez)
    with pytest.raises((OSError, KeyboardInterrupt)) as info:
        write_atomically(path, controls=np.arange(5.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT] and path.read_bytes() == old
    if stop is _no_space:
        assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    else:
        assert type(info.value) is KeyboardInterrupt


def test_a_sweeps_record_or_points_json_that_fails_to_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    """The sweep's writers alike: a record whose write fails leaves nothing in .writing/ (nor a result), and a
    points.json whose rename is cut short by Ctrl-C leaves the old one and no temporary file beside it."""
    def fsync(fd):
        raise _no_space()

    monkeypatch.setattr(store.os, "fsync", fsync)
    with pytest.raises(OSError, match="No space left"):
        store.write_result(tmp_path, "k", {"key": "k", "status": "ok", "summary": {}})
    assert list((tmp_path / store.WRITING).iterdir()) == [] and store.read_result(tmp_path, "k") is None
    monkeypatch.undo()
    points = tmp_path / store.POINTS
    store.write_json_atomically(points, {"name": "old"})

    def replace(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(store.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        store.write_json_atomically(points, {"name": "new"})
    assert json.loads(points.read_text()) == {"name": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [store.WRITING, store.POINTS, store.RESULTS]


def _limit_file_size():
    """In the child: writes past ``FSIZE`` bytes fail with EFBIG (SIGXFSZ, which would kill it, ignored)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE, FSIZE))


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_run_whose_checkpoint_exceeds_the_file_size_limit_says_which_file_and_resumes(tmp_path):
    """The epoch-1,000 checkpoint cannot be written: exit 1 (a failure, not bad input) in one line naming the
    checkpoint, what is wrong and the resume command; the epoch-500 checkpoint is kept whole, no temporary file is
    left, and the command printed, run once the limit is lifted, trains the run to its end."""
    run = tmp_path / "run"
    proc = cli("train", REGRESSION, "--out", str(run), *NATIVE, preexec_fn=_limit_file_size)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == (f"metamaterial: {run}/{CHECKPOINT}: larger than the limit on a file's size (ulimit -f) or "
                           f"than its file system takes; raise the limit, then resume with: metamaterial train "
                           f"--resume {run} ({run} holds the checkpoint of epoch 500)\n")
    assert sorted(p.name for p in run.iterdir()) == [CHECKPOINT, "config.yaml"]
    assert load_checkpoint(run).state.epoch == 500
    resumed = cli("train", "--resume", str(run), "--no-progress", "--no-plots")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "summary.json").read_text())["epochs"] == 2000


@pytest.mark.parametrize("at", [1, 3])
def test_a_full_disk_during_training_names_the_file_and_what_to_do(tmp_path, monkeypatch, capsys, at):
    """The disk fills at the epoch-0 checkpoint (nothing trained is kept: the folder made for the run goes, and the
    line says to run the command again) or at the epoch-1,000 one (the epoch-500 checkpoint is kept, and the line
    gives the command that resumes it): exit 1, no temporary file."""
    calls, real = [0], np.savez

    def savez(f, **arrays):
        calls[0] += 1
        if calls[0] == at:
            raise _no_space()
        real(f, **arrays)

    monkeypatch.setattr(runfiles.np, "savez", savez)
    run = tmp_path / "run"
    assert main(["train", REGRESSION, "--out", str(run), *NATIVE]) == 1
    then = (f"resume with: metamaterial train --resume {run} ({run} holds the checkpoint of epoch 500)" if at == 3
            else "run the same command again")
    assert capsys.readouterr().err == (f"metamaterial: {run}/{CHECKPOINT}: no space left on the device holding it; "
                                       f"free space, then {then}\n")
    if at == 1:
        assert not run.exists()
    else:
        assert sorted(p.name for p in run.iterdir()) == [CHECKPOINT, "config.yaml"]


def _read_only(monkeypatch, folder):
    """Creating a file in ``folder`` fails as on a read-only file system (root ignores permission bits, and a
    read-only mount needs privileges a test does not have)."""
    real = runfiles.tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and str(dir) == str(folder):
            raise OSError(errno.EROFS, "Read-only file system", str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(runfiles.tempfile, "mkstemp", mkstemp)


def test_a_run_directory_that_cannot_be_written_is_refused_before_training(tmp_path, monkeypatch, capsys):
    """train --resume into a read-only run directory trained up to its first checkpoint before failing: now it is
    refused at once, the run left as it was; a fresh train into such a folder is told to choose another --out."""
    run = tmp_path / "run"
    assert main(["train", REGRESSION, "--out", str(run), *NATIVE, "--set", "learning.epochs=500"]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    _read_only(monkeypatch, run)
    assert main(["train", "--resume", str(run), "--set", "learning.epochs=1000", "--no-progress"]) == 2
    assert capsys.readouterr().err == (f"metamaterial: {run}: cannot write there (Read-only file system); the run "
                                       "directory must be writable to resume: make it writable, or resume a copy in "
                                       "a writable place\n")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert main(["train", REGRESSION, "--out", str(run), *NATIVE, "--replace"]) == 2
    assert capsys.readouterr().err == (f"metamaterial: {run}: cannot write there (Read-only file system); choose "
                                       "another --out\n")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_a_reproduce_folder_that_cannot_be_written_is_refused_before_any_claim_runs(tmp_path, monkeypatch, capsys):
    """reproduce into a read-only --out ran its claims (half a minute for energy) and failed at the first result it
    wrote: now it is refused at once, nothing run."""
    out = tmp_path / "report"
    out.mkdir()
    _read_only(monkeypatch, out)
    assert main(["reproduce", "energy", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"metamaterial: {out}: cannot write there (Read-only file system); choose another --out\n"
    assert "[1/1]" not in captured.out and not any(out.iterdir())


@pytest.mark.parametrize("command", ["plot", "resume"])
def test_a_write_refused_in_a_run_directory_says_it_must_be_writable(tmp_path, monkeypatch, capsys, command):
    """A run directory made read-only after the check (plot writes its figures there; a resume's checkpoint):
    exit 2, naming the file and that the folder must be writable (plot and a resume have no other --out)."""
    import matplotlib.figure  # noqa: PLC0415

    run = tmp_path / "run"
    assert main(["train", REGRESSION, "--out", str(run), *NATIVE, "--set", "learning.epochs=500"]) == 0
    capsys.readouterr()

    def refused(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")  # as a write into an open file: no file named

    if command == "plot":
        monkeypatch.setattr(matplotlib.figure.Figure, "savefig", refused)
        assert main(["plot", str(run)]) == 2
        assert capsys.readouterr().err == (f"metamaterial: cannot write {run}/loss.png (Read-only file system); plot "
                                           "draws into the run directory: make it writable, or plot a copy in a "
                                           "writable place\n")
    else:
        monkeypatch.setattr(runfiles.np, "savez", refused)
        assert main(["train", "--resume", str(run), "--set", "learning.epochs=1000", "--no-progress"]) == 2
        assert capsys.readouterr().err == (f"metamaterial: cannot write {run}/{CHECKPOINT} (Read-only file system); "
                                           "the run directory must be writable to resume: make it writable, or "
                                           "resume a copy in a writable place\n")
        assert load_checkpoint(run).state.epoch == 500 and not (run / f"{CHECKPOINT}.tmp").exists()


# -- the commands that write into an output folder: energy, netlist, transient --------------------------------
XOR = str(ROOT / "configs" / "xor.yaml")


def _size_limit(limit: int):
    """A child's preexec function: writes past ``limit`` bytes fail with EFBIG (SIGXFSZ ignored)."""
    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return limited


def _too_large(path) -> str:
    return (f"metamaterial: {path}: larger than the limit on a file's size (ulimit -f) or than its file system "
            "takes; raise the limit, then run the same command again\n")


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_energy_over_the_file_size_limit_names_the_file_and_leaves_no_part_of_it(tmp_path):
    """energy said "a file in OUT" and left power.csv cut at the limit, a table that reads as fewer rows: now the
    line names power.csv, and OUT holds what was written whole before it (power.npz) and no temporary file."""
    ref, out = tmp_path / "ref", tmp_path / "out"
    args = ["energy", XOR, "--no-progress", "--no-plots", "--out"]
    assert cli(*args, str(ref)).returncode == 0
    limit = (ref / "power.csv").stat().st_size - 1
    assert (ref / "power.npz").stat().st_size < limit  # power.npz, written first, fits; power.csv does not
    proc = cli(*args, str(out), preexec_fn=_size_limit(limit))
    assert (proc.returncode, proc.stderr) == (1, _too_large(out / "power.csv"))
    assert sorted(p.name for p in out.iterdir()) == ["power.npz"]
    with np.load(out / "power.npz") as new, np.load(ref / "power.npz") as whole:
        assert sorted(new.files) == sorted(whole.files)
        for key in whole.files:
            np.testing.assert_array_equal(new[key], whole[key])


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_netlist_over_the_file_size_limit_names_the_file_and_keeps_the_old_one_whole(tmp_path):
    """netlist into a folder holding an earlier call's netlists, its largest file over the limit: the line named
    "a file in OUT", and that netlist was left cut at the limit; now the line names it, the old one stays whole,
    every other file is whole, and no temporary file is left."""
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert cli("netlist", XOR, "--out", str(ref)).returncode == 0
    sizes = {p.name: p.stat().st_size for p in ref.iterdir()}
    largest = max(sizes, key=sizes.get)
    assert sorted(sizes.values())[-2] < sizes[largest]  # one file alone over the limit
    shutil.copytree(ref, out)
    proc = cli("netlist", XOR, "--out", str(out), preexec_fn=_size_limit(sizes[largest] - 1))
    assert (proc.returncode, proc.stderr) == (1, _too_large(out / largest))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {p.name: p.read_bytes() for p in ref.iterdir()}


def test_a_table_whose_write_fails_part_way_keeps_the_old_one_and_names_it(tmp_path):
    """The tables of energy, transient and transient --learning (``costs._write_csv``): a disk that fills after
    some rows left them as the table, cut short; now the old table stays and the error names it."""
    from metamaterial import costs  # noqa: PLC0415

    path = tmp_path / "waves.csv"
    costs._write_csv(path, ["step", "v"], [[0, 1.0], [1, 2.0]])
    old = path.read_bytes()

    def rows():
        yield [0, 3.0]
        raise _no_space()

    with pytest.raises(OSError) as info:
        costs._write_csv(path, ["step", "v"], rows())
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["waves.csv"] and path.read_bytes() == old


def test_a_temporary_file_a_kill_left_in_a_commands_folder_counts_as_the_commands(tmp_path):
    """``train --replace`` removes what the commands on a run wrote (``run_files``): a kill in the middle of a
    write leaves its temporary file (``runfiles.replacing``), which goes with them; a file of the user's stays."""
    folder = tmp_path / "energy"
    folder.mkdir()
    for name in ("power.csv" + runfiles.TMP, "mine.csv" + runfiles.TMP):
        (folder / name).write_text("")
    assert runfiles.run_files(tmp_path) == ([f"energy/power.csv{runfiles.TMP}"], [f"energy/mine.csv{runfiles.TMP}"])
