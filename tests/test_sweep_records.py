"""The records a sweep folder holds under no point's key (an older schema's keys, results made before a revision of
the dynamics, or on other content of a data file) are classified in one pass, each saved config read once
(``execute.earlier_results``), whatever the command then does with them (a dry run, a run, a resume). And the data
file an ensemble's points read is hashed once before they train; a worker killed while it stores a point's record
leaves, once the task ran again, one record in results/ and one end in the event log."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import ROOT
from metamaterial import datafiles, revisions
from metamaterial.cli import main
from metamaterial.sweep import execute, load_sweep, worker
from metamaterial.sweep import spec as spec_module
from metamaterial.sweep.execute import earlier_results, plan_tasks
from metamaterial.sweep.spec import config_text, points_document
from metamaterial.sweep.store import (
    STALE_WRITE_S,
    WRITING,
    partial_path,
    read_events,
    read_result,
    task_key,
    write_result,
)

REGRESSION = str(ROOT / "configs" / "regression.yaml")
CSV_EXAMPLE = str(ROOT / "configs" / "csv_example.yaml")
QUICK = ["simulator.backend=native", "learning.epochs=3"]
NUDGES = [0.5, 1.0]
N_ENSEMBLE = 4


def _spec(tmp_path, base: str) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"base": base, "set": QUICK, "grid": {"learning.nudge": NUDGES}}))
    return str(path)


def _record(key: str, text: str, **fields) -> dict:
    return {"key": key, "status": "ok", "summary": {"final_loss": 1e-3}, "config": text, **fields}


def _older_schema(cfg) -> tuple[str, str]:
    """(key, config text) of ``cfg`` as a sweep wrote it before ``simulator.temperature`` existed."""
    doc = cfg.model_dump(mode="json", by_alias=True)
    del doc["simulator"]["temperature"]
    text = yaml.safe_dump(doc, sort_keys=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16], text


def _count_reads(monkeypatch) -> list[str]:
    """The saved configs validated from here on (``spec.read_saved``), by source."""
    seen = []
    validate = spec_module.validate_config

    def counted(raw, source="<config>"):
        seen.append(source)
        return validate(raw, source)
    monkeypatch.setattr(spec_module, "validate_config", counted)
    return seen


def test_a_sweep_reads_each_earlier_record_once_per_command(tmp_path, monkeypatch, capsys):
    """Every point filed under an older schema's key, and a record of another point: a dry run, then the run that
    adopts them (no point to train), each read the three saved configs once (they were read up to three times
    each: to count outdated results, to find the adoptable ones, and again to move them)."""
    spec_file = _spec(tmp_path, REGRESSION)
    spec = load_sweep(spec_file)
    out = tmp_path / "out"
    old = []
    for p in spec.points:
        key, text = _older_schema(p.config)
        assert write_result(out, key, _record(key, text))
        old.append(key)
    other = load_sweep(spec_file, ["learning.epochs=4"]).points[0]  # another point: stays where it is
    assert write_result(out, other.key, _record(other.key, config_text(other.config)))
    seen = _count_reads(monkeypatch)
    assert main(["sweep", spec_file, "--out", str(out), "--dry-run"]) == 0
    assert seen == ["saved config"] * 3 and "2 already done in" in capsys.readouterr().out
    seen.clear()
    assert main(["sweep", spec_file, "--out", str(out), "--no-plots", "--no-progress"]) == 0
    assert seen == ["saved config"] * 3
    assert "2 points, 2 already done" in capsys.readouterr().out
    assert [read_result(out, p.key)["key_before"] for p in spec.points] == old
    assert sorted(f.name for f in (out / "results").iterdir()) == \
        sorted(f"{k}.json" for k in [*(p.key for p in spec.points), other.key])


def test_a_data_reading_point_filed_under_an_older_key_is_adopted_not_taken_for_stale_data(tmp_path, capsys):
    """A point of a config that reads a CSV, whose record (on today's content of the CSV) is filed under another
    key, is adopted; only a record trained on other content of the CSV counts as stale data (both were counted
    stale before)."""
    spec_file = _spec(tmp_path, CSV_EXAMPLE)
    first, second = load_sweep(spec_file).points
    assert first.files  # task.path, pinned
    out = tmp_path / "out"
    write_result(out, "0123456789abcdef", _record("0123456789abcdef", config_text(first.config), files=first.files,
                                                  revision=revisions.CURRENT))
    other_content = {k: {**pin, "sha256": "0" * 64} for k, pin in second.files.items()}
    write_result(out, "fedcba9876543210", _record("fedcba9876543210", config_text(second.config),
                                                  files=other_content, revision=revisions.CURRENT))
    earlier = earlier_results(load_sweep(spec_file), out)
    assert (earlier.adoptable, earlier.outdated, earlier.stale_data) == ({"0123456789abcdef": first.key}, {}, 1)
    assert main(["sweep", spec_file, "--out", str(out), "--dry-run"]) == 0
    said = capsys.readouterr()
    assert "1 already done in" in said.out
    assert said.err == "sweep: 1 point(s) have a result trained on other content of their data file (or before its " \
                       "content was recorded with the result): they run again\n"


def test_an_ensemble_hashes_its_data_file_once_and_still_notices_it_edited(tmp_path, monkeypatch):
    """The points of one ensemble read one CSV: before they train, it is hashed once to check that it still holds
    what the sweep read (it was hashed once a point); edited since, every point fails, naming it."""
    (tmp_path / "data").mkdir()
    shutil.copy(CSV_EXAMPLE, tmp_path)
    csv = tmp_path / "data" / "two_outputs.csv"
    shutil.copy(ROOT / "configs" / "data" / "two_outputs.csv", csv)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump({"base": "csv_example.yaml", "set": QUICK, "seeds": N_ENSEMBLE}))
    points = list(load_sweep(spec_file).points)
    assert plan_tasks(points) == [points]  # one ensemble
    hashed = []
    sha256 = datafiles.file_sha256

    def counted(path, key):
        hashed.append((key, str(path)))
        return sha256(path, key)
    monkeypatch.setattr(datafiles, "file_sha256", counted)
    for out in ("out", "edited"):
        (tmp_path / out).mkdir()
    done = worker._train(points, tmp_path / "out", "worker")
    assert [r["status"] for r in done] == ["ok"] * N_ENSEMBLE and hashed == [("task.path", str(csv))]
    csv.write_text(csv.read_text() + csv.read_text().splitlines()[-1] + "\n")  # a row more
    stale = worker._train(points, tmp_path / "edited", "worker")
    assert [r["status"] for r in stale] == ["failed"] * N_ENSEMBLE
    for r in stale:
        assert r["error"]["message"].startswith(f"{csv}: its content changed since the sweep read it (task.path: "
                                                "sha256 ")


#: a worker's training process that trains the points of a spec with the given keys and is killed (SIGKILL: nothing
#: of it runs after) at one step of storing the first one's record: "link", the record written to its temporary
#: file, not yet linked into results/; "event", the record linked, its finished line not yet logged
KILLED_STORING = """
import os, signal, sys
from types import SimpleNamespace
from metamaterial.sweep import load_sweep, store, worker

spec, out, step, *keys = sys.argv[1:]
link, log_event = os.link, worker.log_event

def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
if step == "link":
    os.link = lambda src, dst, **kw: (killed if os.path.basename(os.path.dirname(dst)) == store.RESULTS else link)(
        src, dst, **kw)
else:
    worker.log_event = lambda out, event, *a, **kw: (log_event if event == "started" else killed)(out, event, *a, **kw)
worker.multiprocessing.current_process = lambda: SimpleNamespace(daemon=True)  # trains in this process
worker.run_points([p for p in load_sweep(spec).points if p.key in keys], out)
"""


@pytest.mark.parametrize("step", ["link", "event"])
def test_a_worker_killed_storing_a_record_leaves_one_record_and_one_end(tmp_path, monkeypatch, step):
    """A worker killed while its point trains loses that point's training, which Dask runs again on another worker;
    killed while it stores the record, at either step of that, the sweep still ends with one record per point in
    results/ (a temporary file was left among them) and one end per point in the event log, naming the worker that
    stored the record (the worker that ran the task again found the point done and logged nothing: it had no end).
    The cluster test of a killed worker landed there by chance, once in 11 runs on a loaded machine."""
    path = _spec(tmp_path, REGRESSION)
    out = tmp_path / "out"
    run, children = worker.run_points, tmp_path / "children.txt"

    def killed_then_run_again(points, folder, *args):  # a file: Dask runs a copy of this function
        child = subprocess.run([sys.executable, "-c", KILLED_STORING, path, folder, step, *(p.key for p in points)],
                               cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                               timeout=300)
        with open(children, "a") as f:
            f.write(f"{child.returncode} {child.stderr!r}\n")
        return run(points, folder, *args)
    monkeypatch.setattr(worker, "run_points", killed_then_run_again)
    assert main(["sweep", path, "--out", str(out), "--workers", "1", "--no-plots", "--no-progress"]) == 0
    ended = children.read_text().splitlines()
    assert [line.split()[0] for line in ended] == [str(-signal.SIGKILL)] * len(NUDGES), ended
    keys = [p.key for p in load_sweep(path).points]
    assert sorted(f.name for f in (out / "results").iterdir()) == sorted(f"{k}.json" for k in keys)
    events = read_events(out)
    for key in keys:
        ends = [e for e in events if e["key"] == key and e["event"] in ("finished", "failed", "duplicate")]
        assert [e["event"] for e in ends] == ["finished"], ends
        assert ends[0]["worker"] == read_result(out, key)["worker"]
    # what the killed writers left in .writing/ is removed by a later run once an hour old, and only then
    left = sorted((out / WRITING).glob("*.tmp"))
    assert len(left) == (len(NUDGES) if step == "link" else 0), left
    if left:
        old = time.time() - STALE_WRITE_S - 1
        os.utime(left[0], (old, old))
        monkeypatch.setattr(worker, "run_points", run)
        assert main(["sweep", path, "--out", str(out), "--workers", "1", "--no-plots", "--no-progress"]) == 0
        assert sorted((out / WRITING).glob("*.tmp")) == left[1:]


def test_an_earlier_runs_point_stored_without_its_end_line_gets_it_from_the_next_run_once_settled(tmp_path):
    """A Ctrl-C (or a lost worker) between storing a record and logging its end leaves the point done with no end
    line; the next run of the sweep logs it, marked recovered, once the record is ``SETTLED_S`` old (a sweep writing
    into the folder meanwhile would log its own), and never twice."""
    path = _spec(tmp_path, REGRESSION)
    out = tmp_path / "out"
    sweep = ["sweep", path, "--out", str(out), "--workers", "1", "--no-plots", "--no-progress"]
    assert main(sweep) == 0
    key = load_sweep(path).points[0].key
    log = out / "events.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(ln for ln in lines if not (f'"{key}"' in ln and '"finished"' in ln)))

    def ends() -> list[dict]:
        return [e for e in read_events(out) if e["key"] == key and e["event"] in ("finished", "failed", "duplicate")]
    assert main(sweep) == 0 and ends() == []  # stored just now: its writer may still be logging it
    old = time.time() - execute.SETTLED_S - 1
    os.utime(out / "results" / f"{key}.json", (old, old))
    assert main(sweep) == 0 and main(sweep) == 0
    (end,) = ends()
    assert end["event"] == "finished" and end["recovered"] and end["worker"] == read_result(out, key)["worker"]


#: a task cut at epoch ``CUT`` of its ``LONG``: its checkpoint stays in the sweep folder's partial/
LONG, CUT = 60, 20
RESUMABLE = ["simulator.backend=native", f"learning.epochs={LONG}", f"learning.checkpoint_every={CUT // 2}",
             "learning.init={kind: uniform, low: 1.0, high: 5.0}"]


def _cut_task(tmp_path, out, overrides=()) -> tuple[str, list]:
    """A spec of ``N_ENSEMBLE`` seeds (one ensemble) whose task trained up to epoch ``CUT`` into its checkpoint folder
    in ``out``, as a task killed there leaves it; (spec file, its points)."""
    from metamaterial import runs

    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"name": "cut", "base": REGRESSION, "set": RESUMABLE, "seeds": N_ENSEMBLE}))
    points = list(load_sweep(path, list(overrides)).points)
    out.mkdir(parents=True, exist_ok=True)
    assert worker._open_partial(points, out, "worker") is None  # a new task: its folder made afresh
    folder = partial_path(out, task_key(p.key for p in points))
    runs.train_replicas(points[0].config, [p.config.seed for p in points], run_dir=folder,
                        epochs=CUT).trainer.solver.close()
    return str(path), points


def test_a_cut_task_resumes_from_its_checkpoint_whatever_the_workers_and_ends_as_uninterrupted(tmp_path):
    """A task's checkpoint folder is planned as that task again, also with more workers (which would split its
    seeds otherwise): it resumes from epoch ``CUT``, its folder goes once its results are stored, and they are those
    of a sweep never cut, to the last bit (the wall time aside)."""
    out, whole = tmp_path / "out", tmp_path / "whole"
    path, points = _cut_task(tmp_path, out)
    assert plan_tasks(points, 2) != [points]  # two workers would split the seeds into two tasks
    assert main(["sweep", path, "--out", str(out), "--workers", "2", "--no-plots", "--no-progress"]) == 0
    resumed = [e for e in read_events(out) if e["event"] == "resumed"]
    assert sorted(e["key"] for e in resumed) == sorted(p.key for p in points) and {e["epoch"] for e in resumed} \
        == {CUT}
    assert not (out / "partial").exists()
    assert main(["sweep", path, "--out", str(whole), "--workers", "1", "--no-plots", "--no-progress"]) == 0
    for p in points:
        a, b = read_result(out, p.key)["summary"], read_result(whole, p.key)["summary"]
        del a["wall_s"], b["wall_s"]
        assert a["epochs"] == LONG and a == b


def test_a_checkpoint_of_a_task_the_spec_no_longer_has_is_removed_and_said_so(tmp_path, capsys):
    """A spec changed since its task was cut (another epoch count: other points, so another task) trains afresh,
    and the run removes the old task's checkpoint, saying so in one line."""
    out = tmp_path / "out"
    path, old = _cut_task(tmp_path, out)
    (folder,) = (out / "partial").iterdir()
    capsys.readouterr()
    assert main(["sweep", path, "--out", str(out), "--set", "learning.epochs=30", "--workers", "1", "--no-plots",
                 "--no-progress"]) == 0
    said = capsys.readouterr()
    assert said.err == (f"sweep: removed the checkpoints of 1 task(s) in training that this spec no longer has (their "
                        f"points changed, or have results): {out / 'partial'}\n")
    assert not folder.exists() and not any(e["event"] == "resumed" for e in read_events(out))
    assert f"{N_ENSEMBLE}/{N_ENSEMBLE} ok" in said.out and all(read_result(out, p.key) is None for p in old)


def test_a_sweep_folder_with_a_task_in_training_is_still_a_sweeps(tmp_path, capsys):
    """train refuses it (its partial/ holds a run directory's files, one level down), ``sweep-report`` counts the
    points of the task pending, and the hint of an interrupt names what it kept."""
    from types import SimpleNamespace

    from metamaterial.cli import _resume_hint

    out = tmp_path / "out"
    path, points = _cut_task(tmp_path, out)
    (out / "points.json").write_text(json.dumps(points_document(load_sweep(path))))  # as a sweep cut there left it
    capsys.readouterr()
    assert main(["train", REGRESSION, "--out", str(out), "--backend", "native", "--no-progress", "--no-plots"]) == 2
    assert "holds the sweep 'cut' (points.json)" in capsys.readouterr().err
    assert main(["sweep-report", str(out)]) == 0
    assert f"0/{N_ENSEMBLE} ok, 0 failed, {N_ENSEMBLE} pending" in capsys.readouterr().out
    hint = _resume_hint(SimpleNamespace(command="sweep", sweep_started=True, out=out))
    assert hint == (f"no point had finished (its plan is in {out}), but {N_ENSEMBLE} points in training kept their "
                    f"last checkpoint (epoch {CUT}); the same command runs them, resuming those from there")
    # on a cluster, the workers go on with a task they started, whether its checkpoint was past epoch 0 yet or not
    workers = " (the workers of tcp://h:1 train the points they had started to the end, and their results are kept: " \
              "the same command then finds them done)"
    on_cluster = SimpleNamespace(command="sweep", sweep_started=True, out=out, scheduler="tcp://h:1")
    assert _resume_hint(on_cluster) == hint + workers
    for checkpoint in (out / "partial").glob("*/checkpoint.npz"):
        checkpoint.unlink()  # as a task that had just started left it
    assert _resume_hint(on_cluster) == f"no point had finished (its plan is in {out}); the same command runs them" + \
        workers


def test_a_failed_task_leaves_no_checkpoint_folder(tmp_path):
    """An ensemble whose training fails is tried point by point (each its own task), and every point that fails
    by itself is recorded failed: no checkpoint folder is left of the ensemble or of a point."""
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"base": REGRESSION, "set": [*QUICK, "simulator.itl1=2"], "seeds": 2}))
    points = list(load_sweep(path).points)
    assert plan_tasks(points) == [points]
    out = tmp_path / "out"
    out.mkdir()
    records = worker._train(points, out, "worker")
    assert [r["status"] for r in records] == ["failed"] * 2
    assert [e["batch"] for e in read_events(out) if e["event"] == "started"] == [2, 2, 1, 1]  # the ensemble, then alone
    assert not (out / "partial").exists()


def test_a_damaged_checkpoint_of_a_task_is_dropped_saying_why_and_the_task_trains_afresh(tmp_path):
    """A checkpoint ``train --resume`` would refuse (here cut short) is not resumed: a ``checkpoint_dropped`` event
    per point names why, the task trains from the start, and its folder goes once its results are stored."""
    out = tmp_path / "out"
    path, points = _cut_task(tmp_path, out)
    (checkpoint,) = (out / "partial").glob("*/checkpoint.npz")
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    assert main(["sweep", path, "--out", str(out), "--workers", "1", "--no-plots", "--no-progress"]) == 0
    dropped = [e for e in read_events(out) if e["event"] == "checkpoint_dropped"]
    assert sorted(e["key"] for e in dropped) == sorted(p.key for p in points)
    # what is wrong; not train's advice (train it again with --replace), which a sweep does not need
    assert dropped[0]["reason"] == f"{checkpoint}: not a readable checkpoint: not an intact .npz file"
    assert not any(e["event"] == "resumed" for e in read_events(out)) and not (out / "partial").exists()
    assert all(read_result(out, p.key)["summary"]["epochs"] == LONG for p in points)


def test_a_point_that_fails_on_ngspice_keeps_its_netlist_in_failed_and_a_retry_that_trains_drops_it(tmp_path):
    """The netlist ngspice failed on was kept in the task's checkpoint folder, which goes with the failed task: the
    record named no netlist and none was left. It is moved to failed/<point key>.cir and the record's message names
    it; a point that trains (a --retry-failed that succeeds) drops the one an earlier try left."""
    card = tmp_path / "broken.lib"  # ngspice rejects it: "Nsub < Ni"
    card.write_text(".model badnmos nmos (level=1 vto=0.7 kp=1e-4 gamma=0.5 phi=0.6 tox=1e-7 nsub=1)\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"base": str(ROOT / "configs" / "xor.yaml"), "set": [
        f"device.model_file={card}", "learning.epochs=5", "simulator.backend=ngspice"],
        "grid": {"learning.nudge": [0.5]}}))
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "1", "--no-plots", "--no-progress"]) == 1
    (key,) = [p.key for p in load_sweep(str(spec)).points]
    kept = out / "failed" / f"{key}.cir"
    assert "badnmos" in kept.read_text()
    record = json.loads((out / "results" / f"{key}.json").read_text())
    assert record["error"]["message"].endswith(f"Nsub < Ni; check the card (netlist kept at {kept})")
    assert not (out / "partial").exists()
    good = tmp_path / "good"
    regression = list(load_sweep(_spec(tmp_path, REGRESSION)).points)
    (good / "failed").mkdir(parents=True)
    (good / "failed" / f"{regression[0].key}.cir").write_text("* an earlier try's\n")
    assert main(["sweep", str(tmp_path / "spec.yaml"), "--out", str(good), "--workers", "1", "--no-plots",
                 "--no-progress"]) == 0
    assert not (good / "failed").exists()
