"""What a sweep's worker runs (``run_points``): the points of one task trained in the worker's training process,
checkpointed, and each result stored; the client's side is ``execute``.

A Dask worker trains in one child process of its own, its training process (one task at a time, even on a worker
with several threads, so one ngspice per worker), replaced by a fresh one after ``recycle_after`` points, which
bounds any memory a simulator library keeps; a child that dies (a crash inside the simulator) fails its points, not
the worker, and a child whose worker has gone ends by itself. The client warms every worker's child up
(``warm_up``) while it submits the tasks, so the fixed costs of the workers are paid at once, not one after the
other. A task checkpoints its training as ``train`` does, every ``learning.checkpoint_every`` epochs, into a folder
of its own (``store.partial_path``, keyed by its points), and resumes from there when the sweep runs again.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import multiprocessing
import multiprocessing.util
import os
import shutil
import threading
import time
from pathlib import Path

from .. import revisions
from ..datafiles import SHOWN, changed_file
from ..errors import CheckpointError, ConfigError
from ..runfiles import CHECKPOINT, FAILED_NETLISTS, Checkpoint, load_checkpoint
from .spec import Point, config_text, shape_key
from .store import (
    FAILED,
    TASK,
    is_done,
    log_event,
    partial_path,
    read_result,
    remove_partial,
    task_key,
    write_json_atomically,
    write_result,
)

#: default number of points a worker's training process trains before it is replaced by a fresh one
RECYCLE_AFTER = 200

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
            records = [store_record(Path(out), point_record(p, "failed", worker, 0.0, error={
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


def is_daemonic(dask_worker=None) -> bool:
    """Whether this worker's process is daemonic (Dask's default), so that it trains in itself: no training process
    of its own, no recycling (a client calls it with ``Client.run``, which passes ``dask_worker``)."""
    return multiprocessing.current_process().daemon


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
        # and before multiprocessing joins this process's children as it ends: a Dask worker under a nanny is a
        # multiprocessing child, which runs no atexit hook, and waited there for its training process (which
        # waits for work) until the nanny killed it ("Worker process still alive after 8.0 seconds, killing")
        multiprocessing.util.Finalize(None, stop_training, exitpriority=0)
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
        kept = keep_failed(out, task, points[0].key) if len(points) == 1 else None  # before its folder goes
        remove_partial(out, task)  # each point alone is another task; a failed point keeps no checkpoint
        if len(points) > 1:
            return [r for p in points for r in _train([p], out, worker)]
        message = (str(err).splitlines()[0] if str(err) else "") + (f" (netlist kept at {kept})" if kept else "")
        record = point_record(points[0], "failed", worker, time.perf_counter() - t0,
                              error={"class": type(err).__name__, "message": message})
        return [store_record(out, record)]
    wall, cpu = time.perf_counter() - t0, round(time.process_time() - c0, 3)
    records = [store_record(out, point_record(p, "ok", worker, wall, task_cpu_s=cpu, summary=s))
               for p, s in zip(points, summaries)]
    remove_partial(out, task)  # its points have their results
    for p in points:  # a netlist an earlier try of the point failed on (--retry-failed) says nothing of it now
        (Path(out) / FAILED / f"{p.key}.cir").unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # another point's is still there
        (Path(out) / FAILED).rmdir()
    return records


def keep_failed(out: Path, task: str, key: str) -> Path | None:
    """Move the netlist ngspice failed on in the folder of ``task`` (a run directory keeps it: ``FAILED_NETLISTS``),
    which goes with its task, to ``out/failed/`` under the point's ``key``; its path, or None if there is none."""
    netlists = sorted(partial_path(out, task).glob(FAILED_NETLISTS), key=lambda p: p.stat().st_mtime)
    if not netlists:
        return None
    (Path(out) / FAILED).mkdir(exist_ok=True)
    kept = Path(out) / FAILED / f"{key}.cir"
    os.replace(netlists[-1], kept)  # the last written: the one the point failed on
    return kept


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


def point_record(point: Point, status: str, worker: str, wall_s: float, **fields) -> dict:
    """The record of ``point`` (``status`` "ok" or "failed", with ``fields``: its summary or error) as results/
    keeps it: with its config's text, the revision of the dynamics it trained under and the files it read."""
    files = {"files": point.files} if point.files else {}  # the content of the data it read (its key holds it too)
    # the target its learning time to the target was measured against (its key holds it too)
    target = {"target_loss": point.target_loss} if point.target_loss is not None else {}
    return {"key": point.key, "index": point.index, "status": status, "values": point.values, **fields,
            "worker": worker, "pid": os.getpid(), "task_wall_s": round(wall_s, 3), "config": config_text(point.config),
            "revision": revisions.CURRENT, **files, **target}


def store_record(out: Path, record: dict) -> dict:
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
    """One summary per replica of a ``runs.Trained``: losses, accuracy, margin, success, learning time, the trained
    network's power (``_trained_power``), and with ``target_loss`` the learning time at the first evaluation whose
    loss was at most it (None if none was)."""
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
    for s, power in zip(out, _trained_power(done)):
        s.update(power)
    return out


def _trained_power(done) -> list[dict]:
    """Per replica, the DC power of its trained network at the training points, free twin, as ``metamaterial energy``
    of its gates gives it: ``network_power_w``, the network's total (median over the points: energy's
    ``free_total_median_w``), and ``edge_power_w``, one edge's (median over the edges and points: its
    ``free_median_w``). A replica with a chip of its own (``replicas.ChipTrainers``) on its own circuit."""
    from ..energy import power_report  # noqa: PLC0415

    controls = done.state.controls
    chips = getattr(done.trainer, "trainers", None)
    parts = [(t, controls[r:r + 1]) for r, t in enumerate(chips)] if chips else [(done.trainer, controls)]
    out = []
    for trainer, gates in parts:
        free = trainer.evaluate(gates).free.reshape(len(gates), -1, trainer.circuit.n_nodes)  # [R, P, N]
        for x, v in zip(gates, free):
            power = power_report(trainer.circuit, x, v).summary()
            out.append({"network_power_w": power["free_total_median_w"], "edge_power_w": power["free_median_w"]})
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


__all__ = ["RECYCLE_AFTER", "run_points", "warm_up", "is_daemonic", "stop_training", "end_training", "point_record",
           "store_record"]
