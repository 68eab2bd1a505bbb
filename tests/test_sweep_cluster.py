"""Sweeps on a real Dask cluster on 127.0.0.1: a ``dask scheduler`` and two ``dask worker`` processes started here,
ngspice points. A worker killed mid-sweep: every point still ends with exactly one result, run to the end once.
The client killed: the same command resumes and runs no finished point again. A point whose config fails at run
time is recorded as failed while the others finish. A task cut after a checkpoint (its worker killed, or Ctrl-C on
a local sweep) resumes from it and ends with an uninterrupted sweep's summaries. Every process started here is
killed at the end, pass or fail; every wait has a deadline."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from metamaterial.sweep.cli import training_kept
from metamaterial.sweep.store import read_events, read_result

N_POINTS = 8
EPOCHS = 60          # about a second per point on ngspice
FAILING = 3          # the zip's point whose operating point does not converge (native, 2 Newton iterations)
STARTUP_S = 180      # scheduler and workers up (imports, a loaded machine)
SWEEP_S = 600        # a whole sweep


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}


class Cluster:
    """A scheduler and named workers, each its own process session (killed as a whole). Every process binds a port
    of its own choosing (no port is picked here and handed over, so none can be taken in between); the scheduler's
    address comes from its scheduler file, a worker's from the scheduler, by name."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.procs, self.logs = tmp, {}, {}
        self.file = tmp / "scheduler.json"
        self._start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                  "--scheduler-file", str(self.file)])

    def _start(self, name: str, args: list[str], daemon: bool = False) -> None:
        log = open(self.tmp / f"{name}.log", "w")
        self.logs[name] = log
        env = {**_env(), "DASK_DISTRIBUTED__WORKER__DAEMON": str(daemon)}
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=log, stderr=log,
                                            env=env, cwd=self.tmp, start_new_session=True)

    def _logs(self) -> str:
        for log in self.logs.values():
            log.flush()
        return "\n".join(f"--- {name}.log (last lines):\n" + "\n".join(
            (self.tmp / f"{name}.log").read_text(errors="replace").splitlines()[-15:]) for name in self.logs)

    def _check_alive(self, what: str, deadline: float) -> None:
        dead = {name: proc.returncode for name, proc in self.procs.items() if proc.poll() is not None}
        assert not dead, f"{what}: process(es) ended {dead}\n{self._logs()}"
        assert time.monotonic() < deadline, f"{what}: timed out\n{self._logs()}"

    @property
    def address(self) -> str:
        deadline = time.monotonic() + STARTUP_S
        while True:
            try:
                return json.loads(self.file.read_text())["address"]
            except (OSError, ValueError, KeyError):  # not written yet, or half written
                self._check_alive("the scheduler did not write its address", deadline)
                time.sleep(0.2)

    def add_worker(self, name: str, daemon: bool = False) -> None:
        """A worker as the README starts one (not daemonic: it trains in a process of its own), or ``daemon``."""
        self._start(name, ["worker", "--scheduler-file", str(self.file), "--host", "127.0.0.1", "--nthreads", "1",
                           "--nworkers", "1", "--no-dashboard", "--name", name], daemon)

    def wait_for_workers(self, *names: str) -> dict[str, str]:
        """Wait until every named worker is connected; return each one's address."""
        from distributed import Client
        deadline = time.monotonic() + STARTUP_S
        with Client(self.address, timeout=f"{STARTUP_S}s") as client:
            while True:
                by_name = {w["name"]: addr for addr, w in client.scheduler_info(n_workers=-1)["workers"].items()}
                if all(n in by_name for n in names):
                    return {n: by_name[n] for n in names}
                self._check_alive(f"workers {names} did not all connect (connected: {sorted(by_name)})", deadline)
                time.sleep(0.5)

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def close(self) -> None:
        for name in list(self.procs):
            self.kill(name)
        for log in self.logs.values():
            log.close()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.close()


def _spec(tmp_path: Path) -> Path:
    # the failing point: a native operating point allowed 2 Newton iterations does not converge, known only when it
    # runs (a config the spec can check, such as roles the task refuses, is refused before anything runs)
    doc = {"name": "cluster", "base": str(ROOT / "configs" / "regression.yaml"),
           "set": [f"learning.epochs={EPOCHS}", "learning.eval_every=20", "learning.record_every=20"],
           "zip": {"learning.rate": [float(2 + i) for i in range(N_POINTS)],
                   "simulator.backend": ["native" if i == FAILING else "ngspice" for i in range(N_POINTS)],
                   "simulator.itl1": [2 if i == FAILING else 500 for i in range(N_POINTS)]}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _sweep(spec: Path, out: Path, address: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "metamaterial", "sweep", str(spec), "--out", str(out),
                             "--scheduler", address, "--no-plots"], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait(predicate, what: str, proc: subprocess.Popen, deadline_s: float = SWEEP_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not predicate():
        assert proc.poll() is None, f"the sweep ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=SWEEP_S)
    finally:
        _kill(proc)
    return proc.returncode, out, err


def _kill(proc: subprocess.Popen) -> None:
    """Kill a sweep command (and its session) if it still runs, and close its pipes."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    if not proc.stdout.closed:
        proc.communicate(timeout=30)


def _keys(out: Path) -> list[str]:
    return [p["key"] for p in json.loads((out / "points.json").read_text())["points"]]


def _check_all_done_once(out: Path) -> list[dict]:
    keys = _keys(out)
    assert len(keys) == N_POINTS
    assert sorted(p.name for p in (out / "results").iterdir()) == sorted(f"{k}.json" for k in keys)
    events = read_events(out)
    for i, key in enumerate(keys):
        record = read_result(out, key)
        assert record["status"] == ("failed" if i == FAILING else "ok"), (i, record.get("error"))
        ends = [e for e in events if e["key"] == key and e["event"] in ("finished", "failed", "duplicate")]
        assert [e["event"] for e in ends] == ["failed" if i == FAILING else "finished"], (i, ends)
    failed = read_result(out, keys[FAILING])
    assert failed["error"]["class"] == "SimulationError" and "Newton did not converge" in failed["error"]["message"]
    return events


def test_a_worker_killed_mid_sweep_loses_no_point_and_repeats_none(cluster, tmp_path):
    cluster.add_worker("a"), cluster.add_worker("b")
    workers = cluster.wait_for_workers("a", "b")
    a, b = workers["a"], workers["b"]
    out = tmp_path / "out"
    proc = _sweep(_spec(tmp_path), out, cluster.address)
    try:
        def busy_on_a() -> bool:  # a point started on worker a after one point finished somewhere, not yet ended
            # it started at most one check ago, so the kill cuts its training (a point trains about a second), not
            # its end; a's first point often still runs when b's first ends, about to end too, and a kill there
            # came after its result was stored (it was not cut) or while storing it
            events = read_events(out)
            first_end = next((i for i, e in enumerate(events) if e["event"] != "started"), len(events))
            ended = {e["key"] for e in events if e["event"] != "started"}
            return any(e["event"] == "started" and e["worker"] == a and e["key"] not in ended
                       for e in events[first_end:])
        _wait(busy_on_a, "a point running on worker a", proc)
        cluster.kill("a")
        code, stdout, stderr = _finish(proc)
    finally:
        _kill(proc)
    assert code == 1, stderr  # one point failed
    assert f"{N_POINTS - 1}/{N_POINTS} ok, 1 failed (SimulationError x1)" in stdout
    events = _check_all_done_once(out)
    cut = [e["key"] for e in events if e["event"] == "started" and e["worker"] == a
           and not any(f["key"] == e["key"] and f["worker"] == a and f["event"] != "started" for f in events)]
    assert cut, "no point was cut by the kill"
    for key in cut:  # run again, to the end, on the worker left
        assert read_result(out, key)["worker"] == b


def test_a_killed_client_resumes_without_repeating_finished_points(cluster, tmp_path):
    cluster.add_worker("a"), cluster.add_worker("b")
    cluster.wait_for_workers("a", "b")
    out, spec = tmp_path / "out", _spec(tmp_path)
    first = _sweep(spec, out, cluster.address)
    try:
        _wait(lambda: sum(e["event"] == "finished" for e in read_events(out)) >= 2, "two finished points", first)
    finally:
        _kill(first)
    killed_at = time.time()
    done_before = {e["key"] for e in read_events(out) if e["event"] in ("finished", "failed")}
    assert 2 <= len(done_before) < N_POINTS
    code, stdout, stderr = _finish(_sweep(spec, out, cluster.address))
    assert code == 1, stderr
    assert f"{N_POINTS - 1}/{N_POINTS} ok, 1 failed" in stdout
    _check_all_done_once(out)
    again = [e for e in read_events(out) if e["event"] == "started" and e["t"] > killed_at and e["key"] in done_before]
    assert again == [], "a point finished before the kill was started again"


def test_ctrl_c_on_a_cluster_sweep_says_its_workers_finish_the_points_they_started(cluster, tmp_path):
    """Ctrl-C on the client of an existing cluster said the point in training kept its checkpoint and that the same
    command resumes it from there; but Dask runs a started task to its end on its worker, whose result is stored.
    The line says so, and the same command finds that point done: it does not train it again."""
    cluster.add_worker("a")
    cluster.wait_for_workers("a")
    doc = {"name": "cut", "base": str(ROOT / "configs" / "regression.yaml"),
           "set": ["simulator.backend=native", "learning.epochs=4000", "learning.checkpoint_every=100"],
           "grid": {"learning.rate": [2.0, 3.0]}}
    spec, out = tmp_path / "cut.yaml", tmp_path / "out"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = _sweep(spec, out, cluster.address)
    try:
        # past epoch 0: the checkpoint a task writes as it starts is not one the line names as kept
        _wait(lambda: training_kept(out)[1] > 0, "a checkpoint of a point in training past epoch 0", proc)
        os.kill(proc.pid, signal.SIGINT)
        code, _, stderr = _finish(proc)
    finally:
        _kill(proc)
    assert code == 130, stderr
    assert stderr.startswith("metamaterial: interrupted; no point had finished") and stderr.endswith(
        f"resuming those from there (the workers of {cluster.address} train the points they had started to the end, "
        "and their results are kept: the same command then finds them done)\n"), stderr
    (started,) = {e["key"] for e in read_events(out) if e["event"] == "started"}
    deadline = time.monotonic() + SWEEP_S
    while read_result(out, started) is None:
        assert time.monotonic() < deadline, "the point started before Ctrl-C did not finish on its worker"
        time.sleep(0.2)
    code, stdout, stderr = _finish(_sweep(spec, out, cluster.address))
    assert code == 0, stderr
    assert "2/2 ok" in stdout
    assert [e["key"] for e in read_events(out) if e["event"] == "started"].count(started) == 1


def test_a_sweep_on_daemonic_workers_says_so_and_trains_in_them(cluster, tmp_path):
    """A plain `dask worker` is daemonic: it may not start a child, so it trains in itself, without the isolation
    and recycling of a training process, and the sweep said nothing. It now says so once, and the points train."""
    cluster.add_worker("a", daemon=True)
    workers = cluster.wait_for_workers("a")
    doc = {"name": "daemonic", "base": str(ROOT / "configs" / "regression.yaml"),
           "set": ["simulator.backend=native", "learning.epochs=20"], "grid": {"learning.rate": [2.0, 3.0]}}
    spec, out = tmp_path / "daemonic.yaml", tmp_path / "out"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, stdout, stderr = _finish(_sweep(spec, out, cluster.address))
    assert code == 0, stderr
    assert "2/2 ok" in stdout
    said = [line for line in stderr.splitlines() if "daemonic" in line]
    assert said == [f"sweep: 1 worker(s) of {cluster.address} are daemonic, Dask's default: each trains in itself, so "
                    "a simulator that crashes ends the worker, and --recycle-after does not apply; start workers with "
                    "DASK_DISTRIBUTED__WORKER__DAEMON=False"], stderr
    assert {e["worker"] for e in read_events(out)} == {workers["a"]}


def test_a_relative_out_is_the_clients_folder_whatever_the_workers_working_directory(cluster, tmp_path):
    """The workers run in tmp_path, the client in tmp_path/client with --out out: the results land in the client's
    out (a worker resolved the relative path in its own directory: its points failed for good)."""
    cluster.add_worker("a")
    cluster.wait_for_workers("a")
    doc = {"name": "relative", "base": str(ROOT / "configs" / "regression.yaml"),
           "set": ["simulator.backend=native", "learning.epochs=20"], "grid": {"learning.rate": [2.0, 3.0]}}
    spec, client = tmp_path / "relative.yaml", tmp_path / "client"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    client.mkdir()
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "sweep", str(spec), "--out", "out", "--scheduler",
                           cluster.address, "--no-plots", "--no-progress"], cwd=client, env=_env(),
                          capture_output=True, text=True, timeout=SWEEP_S)
    assert proc.returncode == 0, proc.stderr
    assert "2/2 ok, 0 failed, 0 pending" in proc.stdout
    assert len(list((client / "out" / "results").iterdir())) == 2 and not (tmp_path / "out").exists()
    assert not (client / "out" / "partial").exists()  # a task's checkpoints, gone once it is stored


def test_a_local_sweep_leaves_no_training_process_behind(tmp_path):
    """`metamaterial sweep` on its own local cluster: once it has ended, so have its workers' training processes
    (a process pool's child waiting for work does not notice that its worker is gone; it ends by itself)."""
    import psutil

    doc = {"name": "local", "base": str(ROOT / "configs" / "regression.yaml"),
           "set": ["simulator.backend=native", "learning.epochs=20"], "seeds": 2}
    spec, out = tmp_path / "spec.yaml", tmp_path / "out"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    with open(tmp_path / "sweep.log", "w") as log:  # a file, not a pipe: a process left behind would hold a pipe
        proc = subprocess.run([sys.executable, "-m", "metamaterial", "sweep", str(spec), "--out", str(out),
                               "--workers", "1", "--no-plots", "--no-progress"], cwd=ROOT, env=_env(), stdout=log,
                              stderr=subprocess.STDOUT, timeout=SWEEP_S, start_new_session=True)
    assert proc.returncode == 0, (tmp_path / "sweep.log").read_text()
    trainers = {e["pid"] for e in read_events(out) if e["event"] == "finished"}
    assert len(trainers) == 1 and os.getpid() not in trainers

    def alive(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
    deadline = time.monotonic() + 10
    while any(alive(p) for p in trainers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in trainers), f"training process(es) {trainers} left behind"


def test_a_worker_process_that_trained_ends_when_its_work_ends(tmp_path):
    """A Dask worker under its nanny is a multiprocessing child, and multiprocessing joins a child's non-daemonic
    children as it ends, before (and instead of) its atexit hooks: a worker that had trained waited there for its
    training process, which waits for work, until the nanny killed it ("Worker process still alive after 8.0
    seconds, killing"). Here such a process trains a task and returns: it ends, its training process with it."""
    import multiprocessing

    import psutil

    from metamaterial.sweep import load_sweep, worker

    doc = {"base": str(ROOT / "configs" / "regression.yaml"), "set": ["simulator.backend=native", "learning.epochs=5"]}
    spec, out = tmp_path / "spec.yaml", tmp_path / "out"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    out.mkdir()
    child = multiprocessing.get_context("spawn").Process(target=worker.run_points,
                                                         args=(list(load_sweep(spec).points), str(out)))
    child.start()
    try:
        child.join(STARTUP_S)  # a deadline, not a timing: without the fix it never ends by itself
        assert child.exitcode == 0, "the process did not end: it waits for its training process"
        assert [e["event"] for e in read_events(out)] == ["started", "finished"]
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            for process in psutil.Process(child.pid).children(recursive=True):
                process.kill()
        child.kill()
        child.join()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_on_a_local_sweep_stops_it_at_once_in_one_line_and_the_same_command_finishes(tmp_path, signum):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it), or SIGTERM to the group (a batch system's
    time limit), while points train: exit 128 + the signal within seconds, one line on stderr, no point recorded as
    failed, no training process left; the same command then runs the rest, and no point finished before the
    interrupt runs again."""
    import psutil

    doc = {"name": "interrupted", "base": str(ROOT / "configs" / "regression.yaml"),
           "set": ["simulator.backend=ngspice", f"learning.epochs={EPOCHS}"], "seeds": 6}
    spec, out = tmp_path / "spec.yaml", tmp_path / "out"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    cmd = [sys.executable, "-m", "metamaterial", "sweep", str(spec), "--out", str(out), "--workers", "2",
           "--no-plots", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + SWEEP_S
        while not any(e["event"] == "started" for e in read_events(out)):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        time.sleep(0.3)  # inside a point's training
        trainers = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        os.killpg(proc.pid, signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signum, stderr
    how = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted"
    # a point may finish, and a task checkpoint past epoch 0, in the 0.3 s before the signal (more on a loaded
    # machine): the line says which, in one of its forms
    finished = len(list((out / "results").glob("*.json")))
    training = r"(, but|, and) \d+ points? in training kept (its|their) last checkpoint \(epoch \d+(-\d+)?\)"
    kept = (rf"no point had finished \(its plan is in {re.escape(str(out))}\)({training})?; the same command runs "
            r"them(, resuming those from there)?" if not finished else
            rf"the {finished} points? finished so far (are|is) kept in {re.escape(str(out))}({training})?; the same "
            r"command runs the others(, resuming those from there)?")
    (line,) = stderr.splitlines()
    assert re.fullmatch(rf"metamaterial: {re.escape(how)}; {kept}", line), line
    def alive() -> list[str]:
        names = []
        for pid in trainers:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    names.append(" ".join(psutil.Process(pid).cmdline())[:120])
            except psutil.NoSuchProcess:
                pass
        return names
    deadline = time.monotonic() + 10  # a training process notices within a second that its parent is gone
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert trainers and not alive(), alive()
    keys = _keys(out)
    before = {k for k in keys if read_result(out, k) is not None}  # the results are the truth; events a log
    assert all(read_result(out, k)["status"] == "ok" for k in before)
    stopped_at = time.time()
    again = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=SWEEP_S)
    assert again.returncode == 0, again.stderr
    assert len(keys) == 6 and all(read_result(out, k)["status"] == "ok" for k in keys)
    rerun = [e["key"] for e in read_events(out) if e["event"] == "started" and e["t"] > stopped_at]
    assert sorted(rerun) == sorted(set(keys) - before)  # the rest, each once; none finished before ran again


#: an XOR ensemble long enough (~3 s of native training) that a Ctrl-C after its first checkpoint past epoch 0 cuts
#: it, checkpointed often enough that the checkpoint comes early
RESUMED_EPOCHS, RESUMED_EVERY, RESUMED_SEEDS = 40000, 2000, 3


def _checkpoint_epoch(out: Path) -> int:
    """The epoch of the one checkpoint in the sweep folder's ``partial/`` (0: none yet, or only epoch 0's)."""
    from metamaterial.errors import CheckpointError
    from metamaterial.runfiles import load_checkpoint

    found = list((out / "partial").glob("*/checkpoint.npz"))
    assert len(found) <= 1, found
    try:
        return load_checkpoint(found[0].parent).state.epoch if found else 0
    except CheckpointError:  # being made: its folder is there, its config.yaml not yet
        return 0


def test_a_sweep_interrupted_mid_task_resumes_it_from_its_checkpoint_and_ends_as_uninterrupted(tmp_path):
    """Ctrl-C (SIGINT to the process group) once a task (an ensemble of 3 seeds) wrote a checkpoint past epoch 0:
    the line says so, the checkpoint stays in DIR/partial/; the same command resumes the task from that epoch (a
    ``resumed`` event per point names it), removes the folder once the results are stored, and every summary equals
    an uninterrupted sweep's to the last bit (the wall time aside)."""
    doc = {"name": "resumed", "base": str(ROOT / "configs" / "xor.yaml"), "seeds": RESUMED_SEEDS,
           "set": ["simulator.backend=native", f"learning.epochs={RESUMED_EPOCHS}",
                   f"learning.checkpoint_every={RESUMED_EVERY}"]}
    spec, out, whole = tmp_path / "spec.yaml", tmp_path / "out", tmp_path / "whole"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))

    def cmd(folder: Path) -> list[str]:
        return [sys.executable, "-m", "metamaterial", "sweep", str(spec), "--out", str(folder), "--workers", "1",
                "--no-plots", "--no-progress"]
    proc = subprocess.Popen(cmd(out), cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        _wait(lambda: _checkpoint_epoch(out) > 0, "a checkpoint past epoch 0", proc, 300)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        _kill(proc)
    assert proc.returncode == 130, stderr
    assert not (out / "results").exists(), "the task finished before the interrupt"
    kept = _checkpoint_epoch(out)
    assert 0 < kept < RESUMED_EPOCHS and kept % RESUMED_EVERY == 0
    assert stderr.splitlines() == [f"metamaterial: interrupted; no point had finished (its plan is in {out}), but "
                                   f"{RESUMED_SEEDS} points in training kept their last checkpoint (epoch {kept}); "
                                   "the same command runs them, resuming those from there"]
    stopped_at = time.time()
    again = subprocess.run(cmd(out), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=SWEEP_S)
    assert again.returncode == 0, again.stderr
    keys = _keys(out)
    resumed = [e for e in read_events(out) if e["t"] >= stopped_at and e["event"] == "resumed"]
    assert sorted(e["key"] for e in resumed) == sorted(keys) and {e["epoch"] for e in resumed} == {kept}
    assert not (out / "partial").exists()
    uninterrupted = subprocess.run(cmd(whole), cwd=ROOT, env=_env(), capture_output=True, text=True,
                                   timeout=SWEEP_S)
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    assert not any(e["event"] == "resumed" for e in read_events(whole))
    for key in keys:
        a, b = read_result(out, key)["summary"], read_result(whole, key)["summary"]
        a.pop("wall_s"), b.pop("wall_s")  # the one field a resumed run does not share
        assert a["epochs"] == RESUMED_EPOCHS and a == b, key
    assert len({read_result(out, k)["summary"]["final_loss"] for k in keys}) == RESUMED_SEEDS  # three replicas


def test_a_task_cut_with_its_worker_resumes_on_another_from_its_checkpoint(cluster, tmp_path):
    """On a cluster of its own (``--scheduler``), the worker training a task is killed once the task wrote a
    checkpoint past epoch 0 in the sweep folder (which the workers see under its absolute path): a worker that joins
    resumes the task from a checkpoint past epoch 0, and its summaries equal a local sweep's never cut."""
    cluster.add_worker("a")
    cluster.wait_for_workers("a")
    doc = {"name": "moved", "base": str(ROOT / "configs" / "xor.yaml"), "seeds": RESUMED_SEEDS,
           "set": ["simulator.backend=native", f"learning.epochs={RESUMED_EPOCHS}",
                   f"learning.checkpoint_every={RESUMED_EVERY}"]}
    spec, out, whole = tmp_path / "moved.yaml", tmp_path / "out", tmp_path / "whole"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = _sweep(spec, out, cluster.address)
    try:
        _wait(lambda: _checkpoint_epoch(out) > 0, "a checkpoint past epoch 0", proc, 300)
        cluster.kill("a")
        assert not (out / "results").exists(), "the task finished before its worker was killed"
        cluster.add_worker("b")
        code, stdout, stderr = _finish(proc)
    finally:
        _kill(proc)
    assert code == 0, stderr
    b = cluster.wait_for_workers("b")["b"]
    keys = _keys(out)
    resumed = [e for e in read_events(out) if e["event"] == "resumed"]
    assert sorted(e["key"] for e in resumed) == sorted(keys) and {e["worker"] for e in resumed} == {b}
    (epoch,) = {e["epoch"] for e in resumed}
    assert 0 < epoch < RESUMED_EPOCHS and not (out / "partial").exists()
    local = subprocess.run([sys.executable, "-m", "metamaterial", "sweep", str(spec), "--out", str(whole),
                            "--workers", "1", "--no-plots", "--no-progress"], cwd=ROOT, env=_env(),
                           capture_output=True, text=True, timeout=SWEEP_S)
    assert local.returncode == 0, local.stderr
    for key in keys:
        x, y = read_result(out, key)["summary"], read_result(whole, key)["summary"]
        del x["wall_s"], y["wall_s"]
        assert x == y and read_result(out, key)["worker"] == b


def test_a_local_cluster_starts_quietly_beside_another_scheduler_on_dasks_default_port():
    """Any dask scheduler on the machine holds port 8787 (its web server, even with --no-dashboard); the local
    cluster of a sweep then takes a free port instead of warning (warnings are errors in these tests)."""
    import socket

    from metamaterial.sweep.execute import _connect

    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            other.bind(("0.0.0.0", 8787))
        except OSError:
            pass  # something holds it already: the same situation
        else:
            other.listen()
        client, cluster = _connect(1, None)
        try:
            assert client.submit(sum, [1, 2]).result() == 3
            assert cluster.scheduler.http_server.port != 8787
        finally:
            client.close()
            cluster.close()


def test_a_sweep_whose_cluster_loses_every_worker_says_so_and_goes_on_when_one_joins(cluster, tmp_path):
    """Dask holds the tasks of a cluster without workers until one joins, silently: the sweep says (once) that it
    waits and why, and ends normally, every point run once to the end, when a worker joins."""
    cluster.add_worker("a")
    cluster.wait_for_workers("a")
    doc = {"name": "orphaned", "base": str(ROOT / "configs" / "regression.yaml"),
           "set": ["simulator.backend=native", "learning.epochs=4000"], "grid": {"learning.rate": [2.0, 3.0]}}
    spec, out, log = tmp_path / "orphaned.yaml", tmp_path / "out", tmp_path / "sweep.err"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    with open(log, "w") as err:  # a file: read while the sweep runs
        proc = subprocess.Popen([sys.executable, "-m", "metamaterial", "sweep", str(spec), "--out", str(out),
                                 "--scheduler", cluster.address, "--no-plots", "--no-progress"], cwd=ROOT, env=_env(),
                                stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
    try:
        _wait(lambda: any(e["event"] == "started" for e in read_events(out)), "a point started", proc)
        cluster.kill("a")
        _wait(lambda: "has no worker" in log.read_text(), "the line on the missing workers", proc, 120)
        cluster.add_worker("b")
        code, stdout, _ = _finish(proc)
    finally:
        _kill(proc)
    lines = log.read_text().splitlines()
    assert code == 0, lines
    waiting = [x for x in lines if "has no worker" in x]
    assert len(waiting) == 1, lines  # the point cut by the kill, and the other unless it had finished
    # the command to run as it is, its address filled in (a worker started as the README says)
    assert re.fullmatch(f"sweep: the cluster at {re.escape(cluster.address)} has no worker: the [12] task\\(s\\) left "
                        r"wait for one to join \(start one with `DASK_DISTRIBUTED__WORKER__DAEMON=False dask worker "
                        f"{re.escape(cluster.address)}`; Ctrl-C stops the sweep, and the same command resumes it\\)",
                        waiting[0]), waiting
    assert "2/2 ok, 0 failed, 0 pending" in stdout
    for key in _keys(out):
        record = read_result(out, key)
        assert record["status"] == "ok" and record["worker"] != "client"
        # the point cut by the kill resumes on b from its last checkpoint (``resumed``) or from the start
        assert [e["event"] for e in read_events(out) if e["key"] == key
                and e["event"] not in ("started", "resumed")] == ["finished"]
    assert not (out / "partial").exists()
