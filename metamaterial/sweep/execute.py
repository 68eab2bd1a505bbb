"""Running a sweep's points on Dask (``dask.distributed``): tasks, worker recycling, and the client's loop.

Each task trains one point, or several points that differ only in ``seed`` on the native backend whose built
network, task and devices do not depend on the seed (no twin mismatch or random network without its own seed, no
per-edge ``learning.bias_sigma``; a held-out split is drawn from ``task.split_seed``, not the seed): those train as
one ensemble (``runs.train_replicas``), which ends for each replica where that point alone would. A task skips
points that already have a result (resume, or a task run twice after a worker died), records each point's summary
or its error (class and message) and goes on. A task checkpoints its training as ``train`` does, every
``learning.checkpoint_every`` epochs, into a folder of its own (``store.partial_path``, keyed by its points), and
resumes from there when the sweep runs again (a killed sweep, or a worker that died), ending where it would have
uninterrupted; the folder goes once its points have results. A task that fails on the cluster before its training
started (a worker that cannot import this package, or does not see the folder) records nothing: its points stay to
do, and the client says why.

A Dask worker trains in one child process of its own, its training process (one task at a time, even on a worker
with several threads, so one ngspice per worker), replaced by a fresh one after ``recycle_after`` points, which
bounds any memory a simulator library keeps; a child that dies (a crash inside the simulator) fails its points, not
the worker, and a child whose worker has gone ends by itself. The client warms every worker's child up
(``warm_up``) while it submits the tasks, so the fixed costs of the workers are paid at once, not one after the
other.

By default the client starts a ``LocalCluster`` whose workers are threads of the client's process, each with its
own training process: the training runs in as many processes as there are workers, and the cluster starts in
~0.05 s instead of the ~2 s (and 0.6 s of CPU per worker) that worker processes take, which on a sweep of short
points is a real share of the whole. Given a scheduler address it uses that cluster unchanged (its workers must
import this same package and see the output folder under the absolute path the client sends; start them with
``DASK_DISTRIBUTED__WORKER__DAEMON=False`` so they may start their training process).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import math
import multiprocessing
import os
import pickle
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from .. import revisions
from ..datafiles import SHOWN, changed_file
from ..errors import CheckpointError, ConfigError
from ..runfiles import CHECKPOINT, Checkpoint, load_checkpoint, run_in
from .spec import (
    Point,
    SweepSpec,
    config_key,
    config_text,
    points_document,
    read_saved,
    shape_key,
)
from .store import (
    PARTIAL,
    POINTS,
    RESULTS,
    TASK,
    adopt_results,
    clear_stale_writes,
    events_size,
    is_done,
    log_event,
    other_records,
    partial_path,
    partial_tasks,
    read_events,
    read_result,
    remove_partial,
    result_path,
    task_key,
    write_json_atomically,
    write_result,
)

#: default number of points a worker's training process trains before it is replaced by a fresh one
RECYCLE_AFTER = 200
#: largest ensemble one task trains
MAX_BATCH = 64
#: seconds without a finished task after which the client counts the cluster's workers (``_completed``)
WORKER_CHECK_S = 5.0

_SLOTS: dict[str, dict] = {}  # per worker (address): its lock, training process and the points that process trained
_SLOTS_LOCK = threading.Lock()


def _slot(worker: str) -> dict:
    """The training slot of ``worker`` (several workers may share a process: a local cluster's are threads):
    ``lock`` (one task at a time, so one training process and one ngspice per worker), ``pool``, ``trained``, and
    ``stopped`` (its training process was stopped on purpose, ``stop_training``: its points did not fail)."""
    with _SLOTS_LOCK:
        return _SLOTS.setdefault(worker, {"lock": threading.Lock(), "pool": None, "trained": 0, "stopped": False})


# -- what a worker runs ---------------------------------------------------------------------------------
def run_points(points: list[Point], out: str, retry_failed: bool = False,
               recycle_after: int = RECYCLE_AFTER) -> list[dict]:
    """Train the points of one task (as one ensemble when there are several) in this worker's training process
    and store each result; returns one ``{key, status, ran}`` per point (``ran`` False: it already had a result).
    The training process is replaced after it trained ``recycle_after`` points (0: never), and after it died (its
    points are recorded as failed); a daemonic worker process (Dask's default, which may not start children) trains
    in itself instead, without recycling (see the module docstring for how to start workers)."""
    from concurrent.futures.process import BrokenProcessPool  # noqa: PLC0415

    worker = _worker_name()
    if not Path(out).is_dir():  # left to do: the client says the workers do not see its folder
        raise FileNotFoundError(f"{out}: no such folder on the worker {worker}: the workers do not see the sweep "
                                "folder (they need it under the same path)")
    slot = _slot(worker)
    with slot["lock"]:
        brief = {p.key: {"key": p.key, "status": (read_result(Path(out), p.key) or {}).get("status"), "ran": False}
                 for p in points}
        todo = [p for p in points if not is_done(Path(out), p.key, retry_failed)]
        if not todo:
            return list(brief.values())
        if multiprocessing.current_process().daemon:  # a Dask worker started without worker.daemon=False
            for r in _train(todo, Path(out), worker):
                brief[r["key"]] = {"key": r["key"], "status": r["status"], "ran": True}
            return list(brief.values())
        if slot["pool"] is None:
            _new_pool(slot)
        try:
            records = slot["pool"].submit(_train, todo, Path(out), worker).result()
        except BrokenProcessPool as err:
            _drop_pool(slot)
            if slot["stopped"]:  # stopped by the client (Ctrl-C): the points stay to do, nothing failed
                return list(brief.values())
            records = [_store(Path(out), _record(p, "failed", worker, 0.0, error={
                "class": type(err).__name__, "message": f"the training process died ({err})"})) for p in todo]
            remove_partial(Path(out), task_key(p.key for p in todo))  # a failed point keeps no checkpoint
        slot["trained"] += len(todo)
        if recycle_after and slot["trained"] >= recycle_after:
            _drop_pool(slot)
        for record in records:
            brief[record["key"]] = {"key": record["key"], "status": record["status"], "ran": True}
        return list(brief.values())


def warm_up(cfg, dask_worker=None) -> bool:
    """Start this worker's training process (unless it has one) and have it import the package and load the
    solver (numba's compiled kernels, ngspice's library) by training ``cfg`` for one epoch; returns at once (a
    client calls it with ``Client.run``, which passes ``dask_worker``). False (nothing done) in a daemonic worker,
    which has no training process, or while this worker trains."""
    slot = _slot(_worker_name(dask_worker))
    if multiprocessing.current_process().daemon or not slot["lock"].acquire(blocking=False):
        return False
    try:
        if slot["pool"] is None:
            _new_pool(slot)
        slot["pool"].submit(_warm, cfg)
        return True
    finally:
        slot["lock"].release()


def _warm(cfg) -> None:
    """One epoch of ``cfg`` (one seed), thrown away: what a training process loads before its first point."""
    from .. import runs  # noqa: PLC0415

    with contextlib.suppress(Exception):  # the point itself reports what is wrong with its config
        runs.train_replicas(cfg, [cfg.seed], epochs=1).trainer.solver.close()


def _new_pool(slot: dict) -> None:
    """A worker's training process: a one-process pool (spawned: a fresh interpreter) that ends by itself when the
    worker's process is gone."""
    from concurrent.futures import ProcessPoolExecutor  # noqa: PLC0415

    slot["pool"] = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_start_training_process, initargs=(os.getpid(),))
    slot["trained"] = 0
    global _STOPPED_AT_EXIT
    if not _STOPPED_AT_EXIT:  # before the interpreter tears its modules down: a pool left in ``_SLOTS`` was
        # collected during the teardown, where concurrent.futures' own callback fails ("Exception ignored in ...
        # weakref_cb"); a local cluster's workers are threads of the client's process, so their pools live there
        atexit.register(stop_training)
        _STOPPED_AT_EXIT = True


_STOPPED_AT_EXIT = False  # whether ``stop_training`` is registered to run at exit


def _start_training_process(parent: int) -> None:
    """Pool initializer. A terminal's Ctrl-C reaches every process of its group: a training process ignores it, and
    SIGTERM (its client or worker stops it, ``stop_training``), so that no interrupted point prints its traceback.
    And it ends within a second of its worker going away (killed, or closed), which a pool's process waiting for
    work does not notice by itself: it would be left behind."""
    import signal  # noqa: PLC0415

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the same for a SIGTERM to the whole process group

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)
    threading.Thread(target=watch, name="end-with-worker", daemon=True).start()


def _drop_pool(slot: dict, wait: bool = True) -> None:
    """End ``slot``'s training process: after its work (``wait``), or now, its queued work cancelled."""
    pool, slot["pool"] = slot["pool"], None
    if pool is not None:
        pool.shutdown(wait=wait, cancel_futures=not wait)


def stop_training() -> None:
    """Stop every training process of this process's workers at once, the points they train left to do (Ctrl-C on
    a local sweep: the client's process holds its workers)."""
    with _SLOTS_LOCK:
        slots = list(_SLOTS.values())
        _SLOTS.clear()
    for slot in slots:
        slot["stopped"] = True
        pool = slot["pool"]
        if pool is not None:
            for process in list(getattr(pool, "_processes", {}).values()):  # the executor's own processes
                process.kill()  # a training process ignores SIGTERM
            pool.shutdown(wait=False, cancel_futures=True)


def end_training(dask_worker=None) -> None:
    """Let this worker's training process end, without waiting for it (a point it is training still finishes and
    is stored): a client calls it on every worker of its local cluster before closing it, whose close otherwise
    waits about 4 s for each worker's process pool (measured: 4.0 s, and 0.8 s after this)."""
    with _SLOTS_LOCK:  # its worker is closing: forget its slot
        slot = _SLOTS.pop(_worker_name(dask_worker), None)
    if slot is not None:
        _drop_pool(slot, wait=False)


def _train(points: list[Point], out: Path, worker: str) -> list[dict]:
    """Records of ``points`` (one ensemble); if the ensemble fails, each point is tried alone, so only the points
    that fail by themselves are recorded as failed."""
    from .. import runs  # noqa: PLC0415 (workers import the training code on first use)
    from ..experiment import build, make_solver  # noqa: PLC0415

    if len({shape_key(p.config) for p in points}) > 1:  # only points that differ in seed alone share an ensemble
        return [r for p in points for r in _train([p], out, worker)]
    task = task_key(p.key for p in points)
    for p in points:
        log_event(out, "started", p.key, worker=worker, batch=len(points))
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        cfg = points[0].config
        # a file edited since the sweep was expanded would train the points on other data; the points of an
        # ensemble differ in seed alone, so they read the same files, pinned alike: each is hashed once, not once
        # a point (64 times a CSV for a full ensemble)
        for files in {json.dumps(p.files, sort_keys=True): p.files for p in points}.values():
            changed = changed_file(cfg, files)
            if changed is not None:
                key, path, now, then = changed
                raise ConfigError(f"{path}: its content changed since the sweep read it ({key}: sha256 "
                                  f"{now[:SHOWN]} now, {then[:SHOWN]} then); run the sweep again: its points on "
                                  "the new content are other points")
        make_solver(build(cfg)).reset()  # a point's result must not depend on what this process solved before
        resume = _open_partial(points, out, worker)
        # checkpointed as train checkpoints (and reset there): resumed, it ends where it would have uninterrupted
        done = runs.train_replicas(cfg, [p.config.seed for p in points], run_dir=partial_path(out, task),
                                   resume=resume, files=points[0].files)  # checked just above: not hashed again
        try:
            summaries = _summaries(done, points[0].target_loss)  # the spec's, alike for every point
        finally:
            done.trainer.solver.close()
    except Exception as err:  # noqa: BLE001 (a sweep records a failed point with its reason and goes on)
        remove_partial(out, task)  # each point alone is another task; a failed point keeps no checkpoint
        if len(points) > 1:
            return [r for p in points for r in _train([p], out, worker)]
        record = _record(points[0], "failed", worker, time.perf_counter() - t0,
                         error={"class": type(err).__name__, "message": str(err).splitlines()[0] if str(err) else ""})
        return [_store(out, record)]
    wall, cpu = time.perf_counter() - t0, round(time.process_time() - c0, 3)
    records = [_store(out, _record(p, "ok", worker, wall, task_cpu_s=cpu, summary=s))
               for p, s in zip(points, summaries)]
    remove_partial(out, task)  # its points have their results
    return records


def _open_partial(points: list[Point], out: Path, worker: str) -> Checkpoint | None:
    """The checkpoint of the task of ``points`` to resume (``runfiles.Checkpoint``; a ``resumed`` event per point
    names its epoch), or None after making its folder afresh (``store.partial_path``, opened as ``train`` opens a
    run directory). A checkpoint ``train --resume`` would refuse (one of an earlier revision of the dynamics, or of
    other data) is dropped, with a ``checkpoint_dropped`` event per point saying why, and the task trains afresh."""
    from ..runs import open_run_dir  # noqa: PLC0415

    cfg, keys = points[0].config, [p.key for p in points]
    task = task_key(keys)
    folder = partial_path(out, task)
    if (folder / CHECKPOINT).is_file():
        try:
            checkpoint = load_checkpoint(folder)
            open_run_dir(cfg, folder, resume=True, checkpoint=checkpoint)
        except CheckpointError as err:
            for key in keys:
                # what is wrong, without train's advice ("train it again (--replace)"): the task trains afresh
                reason = str(err).splitlines()[0].split("; the run directory is damaged")[0]
                log_event(out, "checkpoint_dropped", key, worker=worker, task=task, reason=reason)
        else:
            for key in keys:
                log_event(out, "resumed", key, worker=worker, task=task, epoch=checkpoint.state.epoch)
            return checkpoint
    shutil.rmtree(folder, ignore_errors=True)  # a kill before its first checkpoint left its config.yaml alone
    folder.mkdir(parents=True)
    write_json_atomically(folder / TASK, {"points": keys})
    open_run_dir(cfg, folder, resume=False)
    return None


def _record(point: Point, status: str, worker: str, wall_s: float, **fields) -> dict:
    files = {"files": point.files} if point.files else {}  # the content of the data it read (its key holds it too)
    # the target its learning time to the target was measured against (its key holds it too)
    target = {"target_loss": point.target_loss} if point.target_loss is not None else {}
    return {"key": point.key, "index": point.index, "status": status, "values": point.values, **fields,
            "worker": worker, "pid": os.getpid(), "task_wall_s": round(wall_s, 3), "config": config_text(point.config),
            "revision": revisions.CURRENT, **files, **target}


def _store(out: Path, record: dict) -> dict:
    """Write a point's record (unless it has one: then a 'duplicate' event) and log it with this process's resident
    memory (MiB: the event log shows whether a training process grows); returns the record."""
    import psutil  # noqa: PLC0415 (a dependency of dask.distributed)

    written = write_result(out, record["key"], record)
    event = ("finished" if record["status"] == "ok" else "failed") if written else "duplicate"
    extra = {"error": record["error"]} if record["status"] != "ok" else {}
    log_event(out, event, record["key"], worker=record["worker"],
              rss_mb=round(psutil.Process().memory_info().rss / 2**20, 1), **extra)
    return record


def _summaries(done, target_loss: float | None = None) -> list[dict]:
    """One summary per replica of a ``runs.Trained``: losses, accuracy, margin, success, learning time (and with
    ``target_loss`` the learning time at the first evaluation whose loss was at most it, None if none was)."""
    from ..diagnostics import lowest_loss  # noqa: PLC0415
    from ..runs import succeeded  # noqa: PLC0415

    state, trainer = done.state, done.trainer
    first, last = state.history[0], state.history[-1]
    success = succeeded(last["min_margin"])
    learning, hardware = trainer.learning_time(state), trainer.hardware_time(state)

    def value(row: dict, key: str, r: int) -> float | None:
        return None if row.get(key) is None else float(row[key][r])

    out = []
    for r, seed in enumerate(done.seeds):
        lowest = lowest_loss(state.history, r)
        s = {"task": done.setup.task.name, "backend": trainer.solver.name, "seed": seed, "epochs": state.epoch,
             "initial_loss": value(first, "loss", r), "final_loss": value(last, "loss", r),
             "lowest_loss": lowest[0], "lowest_loss_epoch": lowest[1],
             "accuracy": value(last, "accuracy", r), "min_margin_v": value(last, "min_margin", r),
             "success": None if success is None else bool(success[r]),
             "learning_time_s": float(learning[r]), "hardware_time_s": float(hardware[r]),
             "n_updates": int(state.n_updates[r]), "t_learn_s": done.setup.hardware.t_learn,
             "batch": len(done.seeds), "wall_s": round(done.wall_s, 4)}
        if target_loss is not None:
            hit = [row["learning_time_s"][r] for row in state.history if row["loss"][r] <= target_loss]
            s["learning_time_to_target_s"] = float(hit[0]) if hit else None
        if "hinge_loss" in last:  # the objective a hinge trains, as train's summary.json gives it
            s.update(initial_hinge_loss=value(first, "hinge_loss", r), final_hinge_loss=value(last, "hinge_loss", r))
        if "test_loss" in last:
            s.update(test_loss=value(last, "test_loss", r), test_accuracy=value(last, "test_accuracy", r),
                     scored_on=done.setup.task.scored)
            if "test_hinge_loss" in last:
                s["test_hinge_loss"] = value(last, "test_hinge_loss", r)
        out.append(s)
    return out


def _worker_name(dask_worker=None) -> str:
    """The address of ``dask_worker``, else of the worker running this task, else this process's id."""
    if dask_worker is not None:
        return dask_worker.address
    try:
        from distributed import get_worker  # noqa: PLC0415
        return get_worker().address
    except (ImportError, ValueError):
        return f"pid{os.getpid()}"


# -- planning -------------------------------------------------------------------------------------------
def seed_free(cfg) -> bool:
    """Whether what ``build`` makes of ``cfg`` is the same for every seed (so seeds can train as one ensemble):
    built for two seeds and compared."""
    from ..experiment import build  # noqa: PLC0415

    def built(seed: int) -> bytes:
        return pickle.dumps(replace(build(cfg.model_copy(update={"seed": seed})), config=None))
    try:
        return built(0) == built(1)
    except Exception:  # noqa: BLE001 (a point that cannot be built runs alone and records its error)
        return False


def plan_tasks(points: Iterable[Point], workers: int = 1, max_batch: int = MAX_BATCH) -> list[list[Point]]:
    """Tasks in sweep order: native points that differ only in seed (and build alike for every seed) grouped,
    each group cut into ensembles of at most ``max_batch`` points, smaller when there are too few groups to keep
    every worker busy."""
    groups: dict[str, list[Point]] = {}
    free: dict[str, bool] = {}
    for p in points:
        gk = p.key
        if p.config.simulator.backend == "native":
            shape = shape_key(p.config)  # points of one shape differ in seed alone
            if shape not in free:
                free[shape] = seed_free(p.config)
            gk = shape if free[shape] else p.key
        groups.setdefault(gk, []).append(p)
    pieces = max(1, math.ceil(workers / len(groups))) if groups else 1
    tasks = []
    for group in groups.values():
        size = max(1, min(max_batch, math.ceil(len(group) / pieces)))
        tasks += [group[i:i + size] for i in range(0, len(group), size)]
    return tasks


# -- the client -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepRun:
    """What ``run_sweep`` did: points of the spec, already done before, run now (ok, failed), wall time (s); and
    the points it ran that still have no result in ``out`` (``pending``), with why (``why_pending``)."""

    out: Path
    total: int
    skipped: int
    ok: int
    failed: int
    wall_s: float
    pending: int = 0
    why_pending: str = ""


@dataclass(frozen=True)
class EarlierResults:
    """What the records in a sweep folder under no point's key are to a spec (``earlier_results``): ``adoptable``,
    {old key: point key} of the records still their point's result, filed under a key of an older schema, of points
    without a record (``store.adopt_results`` moves them); ``outdated``, how many points without a result have one
    made before a revision of the dynamics that changed how their config trains (``revisions``), by the first such
    revision; ``stale_data``, how many have one of the same config trained on other content of the files it reads
    (``datafiles``; or made before that content was recorded); ``other_target``, how many have one of the same config
    reported against another ``target_loss`` (or none, or made before the target was recorded). The outdated, stale
    and other-target points run again."""

    adoptable: dict[str, str]
    outdated: dict[revisions.Revision, int]
    stale_data: int
    other_target: int


def earlier_results(spec: SweepSpec, out: Path) -> EarlierResults:
    """Classify the records in ``out`` under no point's key of ``spec`` (``EarlierResults``) in one pass, reading
    each record's saved config once (``spec.read_saved``: ~3.5 ms a record of the XOR config, measured 2026-12)."""
    keys = {p.key for p in spec.points}
    # the key without the files' content, and the key without the target
    by_config = {config_key(p.config, target_loss=p.target_loss): p.key for p in spec.points if p.files}
    by_untargeted = {config_key(p.config, p.files): p.key for p in spec.points}
    adoptable: dict[str, str] = {}
    outdated: dict[revisions.Revision, set[str]] = {}
    stale: set[str] = set()
    other_target: set[str] = set()
    for old, record in other_records(out, keys):  # only the records under no point's key: few
        saved = read_saved(record)
        if saved is None:
            continue
        if saved.revision is not None:
            if saved.key in keys and read_result(out, saved.key) is None:
                outdated.setdefault(saved.revision, set()).add(saved.key)
            continue
        point = by_config.get(saved.key_without_files)
        if point is not None and point != saved.key and read_result(out, point) is None:
            stale.add(point)  # the same config, trained on other content of its files (or on unrecorded content)
        elif saved.key in keys and saved.key not in adoptable.values() and read_result(out, saved.key) is None:
            adoptable[old] = saved.key
        elif (point := by_untargeted.get(saved.key_without_target)) not in (None, saved.key) \
                and read_result(out, point) is None:
            other_target.add(point)  # the same training, its learning time measured against another target
    return EarlierResults(adoptable, {r: len(found) for r, found in sorted(outdated.items(),
                                                                          key=lambda item: item[0].number)},
                          len(stale), len(other_target))


def run_sweep(spec: SweepSpec, out: Path, *, workers: int = 2, scheduler: str | None = None,
              recycle_after: int = RECYCLE_AFTER, retry_failed: bool = False,
              on_progress: Callable[[int, int, int], None] | None = None,
              on_start: Callable[[int, int], None] | None = None,
              on_wait: Callable[[str], None] | None = None, earlier: EarlierResults | None = None,
              on_note: Callable[[str], None] | None = None) -> SweepRun:
    """Run every point of ``spec`` that has no result in ``out`` on Dask (``earlier``: ``earlier_results(spec,
    out)``, if the caller has it; the records it finds adoptable count as done); ``on_start(to_run, already_done)``
    once, then ``on_progress(points_done, to_run, failed)`` after every task, ``on_wait(line)`` when the
    cluster has no worker left (or again has some), and ``on_note(line)`` when it removed checkpoints of tasks
    this spec no longer has (``drop_partials``). Each task checkpoints its training in ``out/partial/<task key>``
    every ``learning.checkpoint_every`` epochs and resumes from there when the same spec runs again (``_train``).
    The folder's points.json becomes the spec's once the cluster is reached: a sweep that fails before (a scheduler
    it cannot reach) changes nothing in an existing folder, and removes the folders it created."""
    out = Path(out)
    check_workers(workers, scheduler)
    check_folder(spec, out)
    made = next((p for p in [*reversed(out.parents), out] if not p.exists()), None)  # the highest folder made here
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{out}: cannot create the sweep folder ({err.strerror}); choose another --out") from err
    try:
        return _run_in_folder(spec, out, workers, scheduler, recycle_after, retry_failed, on_progress, on_start,
                              on_wait, earlier if earlier is not None else earlier_results(spec, out), on_note)
    except Exception:
        if made is not None and not (out / RESULTS).exists():  # no point ran: leave nothing behind
            shutil.rmtree(made, ignore_errors=True)
        raise


def _run_in_folder(spec: SweepSpec, out: Path, workers: int, scheduler: str | None, recycle_after: int,
                   retry_failed: bool, on_progress, on_start, on_wait, earlier: EarlierResults,
                   on_note: Callable[[str], None] | None = None) -> SweepRun:
    before = {new: old for old, new in earlier.adoptable.items()}
    since = events_size(out)  # the event lines from here on are this run's: of points that had no result before
    todo = [p for p in spec.points
            if not (is_done(out, p.key, retry_failed) or p.key in before and is_done(out, before[p.key], retry_failed))]
    had = {p.key: r for p in todo if (r := read_result(out, p.key)) is not None}  # failures to retry
    skipped = len(spec.points) - len(todo)

    def claim() -> None:  # the folder becomes this spec's once it runs: not when the cluster cannot be reached
        write_json_atomically(out / POINTS, points_document(spec))
        adopt_results(out, earlier.adoptable)  # records keyed under an older schema
        clear_stale_writes(out)  # what killed writers left
        running = {p.key for p in todo}  # an earlier run's points stored but not logged (a Ctrl-C, a lost worker)
        _log_unlogged_ends(out, [p for p in spec.points if p.key not in running], 0, {}, settled_s=SETTLED_S)
        dropped = drop_partials(out, todo)
        if dropped and on_note is not None:
            on_note(f"removed the checkpoints of {dropped} task(s) in training that this spec no longer has (their "
                    f"points changed, or have results): {os.path.join(out, PARTIAL)}")
    if on_start is not None:
        on_start(len(todo), skipped)
    t0 = time.perf_counter()
    ok = failed = 0
    unseen: list[str] = []
    unstarted: list[BaseException] = []
    if not todo:
        claim()
    else:
        with _Connection(workers, scheduler) as connection:
            ok, failed, unseen, unstarted = _submit_all(todo, out, since, connection, workers, scheduler,
                                                        recycle_after, retry_failed, on_progress, claim, on_wait)
        _log_unlogged_ends(out, todo, since, had)
    why = []
    if unseen:
        why.append(f"{len(unseen)} reported done by the workers have no result in {os.path.abspath(out)}: the "
                   "workers do not see this folder (they need it under the same path: a file system they share)")
    if unstarted:
        why.append(f"{len(unstarted)} never started training: their task failed on the cluster "
                   f"({_cause(unstarted[0])})")
    return SweepRun(out, len(spec.points), skipped, ok, failed, time.perf_counter() - t0, len(unseen) + len(unstarted),
                    "; ".join(why) + ("; once the cluster is fixed, the same command runs them" if why else ""))


def _submit_all(todo: list[Point], out: Path, since: int, connection: _Connection, workers: int,
                scheduler: str | None, recycle_after: int, retry_failed: bool, on_progress,
                on_connected: Callable[[], None], on_wait: Callable[[str], None] | None = None,
                ) -> tuple[int, int, list[str], list[BaseException]]:
    """Run ``todo`` on the connection's cluster (``on_connected()`` once it is reached, ``on_wait(line)`` when it
    has no worker left, and when it has again; ``since``: the length of the event log before this run); (ok,
    failed, keys of the points a worker reported done whose result is not in ``out``: that worker writes into
    another folder, the errors of the points whose task failed before their training started: left to do)."""
    kept = resumable_tasks(out, todo)  # as their checkpoints were made, whatever the number of workers now
    resumed = {p.key for t in kept for p in t}
    rest = [p for p in todo if p.key not in resumed]
    planned = kept + plan_tasks(rest, workers) if not scheduler else None  # while the local cluster starts
    client = connection.client()
    on_connected()
    client.run(warm_up, todo[0].config, on_error="ignore")  # returns at once; the training processes load
    if planned is None:
        planned = kept + plan_tasks(rest, max(1, len(client.scheduler_info(n_workers=-1)["workers"])))
    # a worker resolves a relative path in its own working directory, not the client's
    folder = os.path.abspath(out)
    futures = {client.submit(run_points, t, folder, retry_failed, recycle_after,
                             key=f"sweep-{t[0].key}-{len(t)}", pure=False, retries=0): t for t in planned}
    done = ok = failed = 0
    unseen, lost = [], []
    for future in _completed(client, futures, scheduler, on_wait):
        points = futures[future]
        try:
            brief = future.result()
        except Exception as err:  # noqa: BLE001 (the task failed outside the training: decided after the loop)
            lost += [(p, err) for p in points]
            brief = []
        unseen += [b["key"] for b in brief if b["status"] is not None and not result_path(out, b["key"]).exists()]
        ok += sum(b["status"] == "ok" for b in brief)
        failed += sum(b["status"] == "failed" for b in brief)
        done += len(points)
        if on_progress is not None:
            on_progress(done, len(todo), failed)
    started = {e["key"] for e in read_events(out, since) if e.get("event") == "started"} if lost else set()
    unstarted = []
    for p, err in lost:
        if p.key in started:  # e.g. KilledWorker: its worker died while it trained
            status = _record_lost(out, p, err)["status"]
            ok, failed = ok + (status == "ok"), failed + (status == "failed")
        else:  # it never reached the training (a worker that cannot import the package, or see the folder)
            unstarted.append(err)
    if lost:  # a task lost with its workers is recorded above: its checkpoint is no task's to resume
        for points in futures.values():
            if all(read_result(out, p.key) is not None for p in points):
                remove_partial(out, task_key(p.key for p in points))
    return ok, failed, unseen, unstarted


def resumable_tasks(out: Path, todo: list[Point]) -> list[list[Point]]:
    """The tasks of ``todo`` that have a checkpoint folder in ``out`` (``store.partial_tasks``), each with its points
    in the order of its replicas: every point of such a task is one of ``todo`` (a point with a result, or no longer
    the spec's, makes it no task of this run: ``drop_partials`` removes it)."""
    by_key = {p.key: p for p in todo}
    tasks, taken = [], set()
    for _, keys in partial_tasks(out):
        if keys is not None and all(k in by_key and k not in taken for k in keys):
            tasks.append([by_key[k] for k in keys])
            taken.update(keys)
    return tasks


def drop_partials(out: Path, todo: list[Point]) -> int:
    """Remove the checkpoint folders in ``out`` that no task of ``todo`` resumes (``resumable_tasks``): their points
    have results, or are no longer the spec's (it changed: another point is another task). Returns how many."""
    kept = {task_key(p.key for p in t) for t in resumable_tasks(out, todo)}
    dropped = [task for task, _ in partial_tasks(out) if task not in kept]
    for task in dropped:
        remove_partial(out, task)
    return len(dropped)


def _completed(client, futures: Iterable, scheduler: str | None, on_wait: Callable[[str], None] | None):
    """``futures`` as they complete. Every ``WORKER_CHECK_S`` without one, the cluster's workers are counted: a
    cluster whose workers all died (or that had none) holds its tasks until one joins, which Dask does silently, so
    ``on_wait`` gets a line when the count falls to 0 and another when workers are back."""
    from distributed import as_completed  # noqa: PLC0415

    ready, alone = as_completed(futures), False
    checked = time.monotonic()
    while not ready.is_empty():
        batch = ready.next_batch(block=False)
        if batch:
            checked = time.monotonic()
            yield from batch
            continue
        time.sleep(0.1)  # as ``as_completed`` itself polls
        if time.monotonic() - checked >= WORKER_CHECK_S:
            checked = time.monotonic()
            n = len(client.scheduler_info(n_workers=-1)["workers"])
            if on_wait is not None and (n == 0) != alone:
                at = f" at {scheduler}" if scheduler else ""
                on_wait(f"the cluster{at} has no worker: the {ready.count()} task(s) left wait for one to join (start "
                        "one with `dask worker ADDRESS`; Ctrl-C stops the sweep, and the same command resumes it)"
                        if n == 0 else f"{n} worker(s) on the cluster again: the sweep goes on")
            alone = n == 0


def _cause(err: BaseException) -> str:
    """An error of a task on the cluster, on one line, with what it likely means."""
    first = str(err).splitlines()[0].split(". ")[0] if str(err) else ""  # Dask's messages run on over lines
    text = f"{type(err).__name__}: {first}"
    if "deserializ" in str(err):
        text += "; the cluster's workers or scheduler likely cannot import metamaterial, or have another version of it"
    return text


def _record_lost(out: Path, point: Point, err: BaseException) -> dict:
    """A point whose task failed outside the training after that had started (its workers died): recorded as failed
    unless a result got stored after all."""
    record = read_result(out, point.key)
    if record is not None:
        return {"key": point.key, "status": record.get("status"), "ran": False}
    _store(out, _record(point, "failed", "client", 0.0, error={"class": type(err).__name__, "message": str(err)}))
    return {"key": point.key, "status": "failed", "ran": False}


#: a record stored at least this long ago (s) whose end line is missing will not get it from its writer any more
SETTLED_S = 60.0


def _log_unlogged_ends(out: Path, points: list[Point], since: int, had: dict[str, dict],
                       settled_s: float | None = None) -> None:
    """Log the end of each of ``points`` whose record was stored in this run (it is not the one it had before,
    ``had``) but whose end is not in the event log after byte ``since``: its worker died between the two writes
    (``_store`` links the record, then logs it), and the worker that ran its task again found it done. The line is
    the one that worker would have written, marked ``recovered``; called once every task has ended, so no worker of
    this run still writes it. With ``settled_s`` (an earlier run's points, at the start of a run): only records a
    sweep started (a ``started`` line under their key: not records adopted from an older key) and stored at least
    that long ago (a sweep writing into the folder meanwhile logs its own)."""
    events = read_events(out, since)
    ended = {e["key"] for e in events if e.get("event") in ("finished", "failed", "duplicate")}
    started = {e["key"] for e in events if e.get("event") == "started"}
    for p in points:
        if p.key in ended or settled_s is not None and p.key not in started:
            continue  # the usual case: no record read
        record = read_result(out, p.key)
        if record is None or record == had.get(p.key):
            continue
        if settled_s is not None and time.time() - result_path(out, p.key).stat().st_mtime < settled_s:
            continue
        extra = {"error": record.get("error")} if record["status"] != "ok" else {}
        log_event(out, "finished" if record["status"] == "ok" else "failed", p.key, worker=record.get("worker"),
                  recovered=True, **extra)


class _Connection:
    """A Dask client made in a background thread (``_connect``: a local cluster started, or an existing
    scheduler reached), so that the caller plans meanwhile; closing it (also on Ctrl-C) waits for the start to
    end, then closes the client and the cluster, so no worker process is left behind."""

    def __init__(self, workers: int, scheduler: str | None) -> None:
        self._made: tuple | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._make, args=(workers, scheduler), name="sweep-connect",
                                        daemon=True)
        self._thread.start()

    def _make(self, workers: int, scheduler: str | None) -> None:
        try:
            self._made = _connect(workers, scheduler)
        except BaseException as err:  # noqa: BLE001 (re-raised in the caller's thread by client())
            self._error = err

    def client(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._made[0]

    def __enter__(self) -> _Connection:
        return self

    def __exit__(self, kind, *exc) -> None:
        interrupted = kind is not None and issubclass(kind, KeyboardInterrupt)
        while self._thread.is_alive():  # a Ctrl-C while joining is taken after the cluster is up and closed
            with contextlib.suppress(KeyboardInterrupt):
                self._thread.join()
        if self._made is not None:
            client, cluster = self._made
            if cluster is not None and interrupted:  # our workers are threads of this process: stop them now
                logging.getLogger("distributed").setLevel(logging.CRITICAL)  # the tasks cut short, not news
                stop_training()
            elif cluster is not None:  # our own workers: end their training processes first (a remote cluster's stay)
                with contextlib.suppress(Exception):  # closing goes on; the training processes end with their workers
                    client.run(end_training, on_error="ignore")
            client.close()
            if cluster is not None:
                cluster.close()


def check_folder(spec: SweepSpec, out: Path) -> None:
    """Refuse an ``out`` that holds another sweep (its points.json names another ``name``): this sweep's points.json
    would replace that one's, and its table and figures would no longer be those of the other's results. A damaged
    or unreadable points.json is left to the run, which rewrites it. Refuse as well an ``out`` that holds a run of
    ``train`` (``runfiles.run_in``): the sweep's summary.json would overwrite the run's."""
    run = run_in(Path(out))
    if run is not None:
        raise ConfigError(f"--out {out}: holds {run}, whose summary.json the sweep would overwrite; give this sweep a "
                          f"folder of its own with another --out (default runs/sweeps/{spec.name})")
    try:
        meta = json.loads((Path(out) / POINTS).read_text())
        other = meta.get("name") if isinstance(meta, dict) else None
    except (OSError, ValueError):
        return
    if isinstance(other, str) and other != spec.name:
        n = len(meta["points"]) if isinstance(meta.get("points"), list) else "?"
        raise ConfigError(f"--out {out}: holds the sweep '{other}' ({n} points), not '{spec.name}'; give this sweep "
                          f"a folder of its own (default runs/sweeps/{spec.name}), or remove that one")


def check_workers(workers: int, scheduler: str | None) -> None:
    """Refuse a local cluster of no worker (``--workers``; a scheduler's cluster has its own)."""
    if not scheduler and workers < 1:
        raise ConfigError(f"--workers: must be >= 1 (got {workers}); give 1 or more")


def check_scheduler(address: str) -> None:
    """Refuse a ``--scheduler`` that is no Dask scheduler address (``tcp://HOST:PORT``), without connecting."""
    from distributed.comm import get_address_host_port  # noqa: PLC0415

    try:
        host, port = get_address_host_port(address)  # a known scheme (tcp, tls, ...), a host and a numeric port
        problem = "no host" if not host else None if 0 < port < 65536 else f"port {port} is not in 1-65535"
    except ValueError as err:
        problem = str(err)
    if problem is not None:
        dashboard = " (http://... is the scheduler's dashboard, not its address)" if address.startswith("http") else ""
        raise ConfigError(f"--scheduler {address}: not a scheduler address ({problem}){dashboard}; give "
                          "tcp://HOST:PORT, as `dask scheduler` prints it (port 8786 by default)")


def _connect(workers: int, scheduler: str | None):
    from distributed import Client, LocalCluster  # noqa: PLC0415

    if scheduler:
        check_scheduler(scheduler)
        try:
            return Client(scheduler, timeout="20s"), None
        except (OSError, TimeoutError, ValueError) as err:
            raise ConfigError(f"--scheduler {scheduler}: cannot connect ({err}); start a scheduler there (dask "
                              "scheduler) or leave out --scheduler for a local cluster") from err

    # threads; each trains in its own process. The scheduler's web server takes a free port: on dask's default,
    # 8787, any other scheduler on the machine (even one started with --no-dashboard) made it warn
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=False, dashboard_address=":0",
                           memory_limit=0, silence_logs=logging.ERROR)
    try:
        return Client(cluster), cluster
    except BaseException:
        cluster.close()
        raise


__all__ = ["RECYCLE_AFTER", "MAX_BATCH", "SweepRun", "EarlierResults", "check_folder", "check_workers",
           "check_scheduler", "earlier_results", "run_points", "run_sweep",
           "plan_tasks", "seed_free", "warm_up", "end_training"]
