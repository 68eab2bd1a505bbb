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

What a worker runs, its training process and its task's checkpoints are ``worker``'s.

By default the client starts a ``LocalCluster`` whose workers are threads of the client's process, each with its
own training process: the training runs in as many processes as there are workers, and the cluster starts in
~0.05 s instead of the ~2 s (and 0.6 s of CPU per worker) that worker processes take, which on a sweep of short
points is a real share of the whole. Given a scheduler address it uses that cluster unchanged (its workers must
import this same package and see the output folder under the absolute path the client sends; start them with
``DASK_DISTRIBUTED__WORKER__DAEMON=False`` so they may start their training process).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import pickle
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from .. import revisions
from ..errors import ConfigError
from ..replacement import folder_lock
from ..runfiles import run_in
from ..units import listed
from . import worker
from .spec import (
    Point,
    SweepSpec,
    config_key,
    points_document,
    read_saved,
    shape_key,
)
from .store import (
    PARTIAL,
    POINTS,
    RESULTS,
    adopt_results,
    clear_stale_writes,
    events_size,
    is_done,
    log_event,
    other_records,
    partial_tasks,
    read_events,
    read_result,
    remove_partial,
    result_path,
    task_key,
    write_json_atomically,
)

#: largest ensemble one task trains
MAX_BATCH = 64
#: the local cluster's workers unless ``--workers`` says otherwise
LOCAL_WORKERS = 2

#: seconds without a finished task after which the client counts the cluster's workers (``_completed``)
WORKER_CHECK_S = 5.0

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
    and other-target points run again. ``foreign``: the keys of the records (of a readable config) that are none of
    these to any point of the spec: another sweep's, or of points the spec no longer has (``check_results``)."""

    adoptable: dict[str, str]
    outdated: dict[revisions.Revision, int]
    stale_data: int
    other_target: int
    foreign: tuple[str, ...] = ()


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
    foreign = []
    for old, record in other_records(out, keys):  # only the records under no point's key: few
        saved = read_saved(record)
        if saved is None:
            continue
        if saved.key not in keys and saved.key_without_files not in by_config \
                and saved.key_without_target not in by_untargeted:
            foreign.append(old)
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
                          len(stale), len(other_target), tuple(sorted(foreign)))


def run_sweep(spec: SweepSpec, out: Path, *, workers: int | None = None, scheduler: str | None = None,
              recycle_after: int = worker.RECYCLE_AFTER, retry_failed: bool = False,
              on_progress: Callable[[int, int, int], None] | None = None,
              on_start: Callable[[int, int], None] | None = None,
              on_wait: Callable[[str], None] | None = None, earlier: EarlierResults | None = None,
              on_note: Callable[[str], None] | None = None) -> SweepRun:
    """Run every point of ``spec`` that has no result in ``out`` on Dask (``earlier``: ``earlier_results(spec,
    out)``, if the caller has it; the records it finds adoptable count as done); ``on_start(to_run, already_done)``
    once, then ``on_progress(points_done, to_run, failed)`` after every task, ``on_wait(line)`` when the
    cluster has no worker left (or again has some), and ``on_note(line)`` when it removed checkpoints of tasks
    this spec no longer has (``drop_partials``). ``workers``: the local cluster's (default ``LOCAL_WORKERS``; none
    with a ``scheduler``). Each task checkpoints its training in ``out/partial/<task key>``
    every ``learning.checkpoint_every`` epochs and resumes from there when the same spec runs again (``_train``).
    The folder's points.json becomes the spec's once the cluster is reached: a sweep that fails before (a scheduler
    it cannot reach) changes nothing in an existing folder, and removes the folders it created."""
    out = Path(out)
    check_workers(workers, scheduler)
    workers = LOCAL_WORKERS if workers is None else workers
    check_folder(spec, out)
    earlier = earlier if earlier is not None else earlier_results(spec, out)
    check_results(spec, out, earlier)
    made = next((p for p in [*reversed(out.parents), out] if not p.exists()), None)  # the highest folder made here
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{out}: cannot create the sweep folder ({err.strerror}); choose another --out") from err
    with folder_lock(out) as mine:  # two sweeps into one folder would train each point twice, into one checkpoint
        if not mine:
            raise ConfigError(f"{out}: a `sweep` into it is running in another process; wait for it to end (the same "
                              "command then runs what is left), or choose another --out")
        try:
            return _run_in_folder(spec, out, workers, scheduler, recycle_after, retry_failed, on_progress, on_start,
                                  on_wait, earlier, on_note)
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
    client.run(worker.warm_up, todo[0].config, on_error="ignore")  # returns at once; the training processes load
    if planned is None:
        planned = kept + plan_tasks(rest, max(1, len(client.scheduler_info(n_workers=-1)["workers"])))
        daemonic = [a for a, d in client.run(worker.is_daemonic, on_error="ignore").items() if d is True]
        if daemonic and on_wait is not None:  # they work, but not as the README has them started: say so, once
            on_wait(f"{len(daemonic)} worker(s) of {scheduler} are daemonic, Dask's default: each trains in itself, "
                    "so a simulator that crashes ends the worker, and --recycle-after does not apply; start workers "
                    "with DASK_DISTRIBUTED__WORKER__DAEMON=False")
    # a worker resolves a relative path in its own working directory, not the client's
    folder = os.path.abspath(out)
    futures = {client.submit(worker.run_points, t, folder, retry_failed, recycle_after,
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
                # the command in full: a plain `dask worker` is daemonic, so it trains in itself (no recycling)
                start = f"DASK_DISTRIBUTED__WORKER__DAEMON=False dask worker {scheduler or 'ADDRESS'}"
                on_wait(f"the cluster{at} has no worker: the {ready.count()} task(s) left wait for one to join (start "
                        f"one with `{start}`; Ctrl-C stops the sweep, and the same command resumes it)"
                        if n == 0 else f"{n} worker(s) on the cluster now: the sweep goes on")
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
    worker.store_record(out, worker.point_record(point, "failed", "client", 0.0,
                                                error={"class": type(err).__name__, "message": str(err)}))
    return {"key": point.key, "status": "failed", "ran": False}


#: a record stored at least this long ago (s) whose end line is missing will not get it from its writer any more
SETTLED_S = 60.0


def _log_unlogged_ends(out: Path, points: list[Point], since: int, had: dict[str, dict],
                       settled_s: float | None = None) -> None:
    """Log the end of each of ``points`` whose record was stored in this run (it is not the one it had before,
    ``had``) but whose end is not in the event log after byte ``since``: its worker died between the two writes
    (``worker.store_record`` links the record, then logs it), and the worker that ran its task again found it done.
    The line is the one that worker would have written, marked ``recovered``; called once every task has ended, so
    no worker of this run still writes it. With ``settled_s`` (an earlier run's points, at the start of a run): only
    records a sweep started (a ``started`` line under their key: not records adopted from an older key) and stored
    at least that long ago (a sweep writing into the folder meanwhile logs its own)."""
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
                worker.stop_training()
            elif cluster is not None:  # our own workers: end their training processes first (a remote cluster's stay)
                with contextlib.suppress(Exception):  # closing goes on; the training processes end with their workers
                    client.run(worker.end_training, on_error="ignore")
            client.close()
            if cluster is not None:
                cluster.close()


def check_folder(spec: SweepSpec, out: Path) -> None:
    """Refuse an ``out`` that holds another sweep (its points.json names another ``name``): this sweep's points.json
    would replace that one's, and its table and figures would no longer be those of the other's results. A folder
    whose points.json cannot be read is left to ``check_results``. Refuse as well an ``out`` that holds a run of
    ``train`` (``runfiles.run_in``): the sweep's summary.json would overwrite the run's."""
    run = run_in(Path(out))
    if run is not None:
        raise ConfigError(f"--out {out}: holds {run}, whose summary.json the sweep would overwrite; give this sweep a "
                          f"folder of its own with another --out (default runs/sweeps/{spec.name})")
    meta, _ = _points_document(out)
    if meta is not None and meta["name"] != spec.name:
        n = len(meta["points"]) if isinstance(meta.get("points"), list) else "?"
        raise ConfigError(f"--out {out}: holds the sweep '{meta['name']}' ({n} points), not '{spec.name}'; give this "
                          f"sweep a folder of its own (default runs/sweeps/{spec.name}), or remove that one")


def check_results(spec: SweepSpec, out: Path, earlier: EarlierResults) -> None:
    """Where ``out``'s points.json is damaged, its results say whose the folder is: results that are nothing to any
    point of ``spec`` (``earlier.foreign``: ``earlier_results``) are refused, as another sweep's might be (its
    points.json rewritten, the two sweeps' results and events would mix); with none, the run rewrites points.json.
    (Without a points.json the folder holds no sweep's results but those a user left there on purpose: a sweep
    writes it before its first point.)"""
    if not earlier.foreign or not (Path(out) / POINTS).exists():
        return
    meta, why = _points_document(out)
    if meta is not None:
        return
    raise ConfigError(f"--out {out}: its {POINTS} cannot be read ({why}), and {Path(out) / RESULTS} holds results "
                      f"of {len(earlier.foreign)} point(s) that are nothing to '{spec.name}' "
                      f"({listed([f'{k}.json' for k in earlier.foreign], 3)}), of another sweep or of points this one "
                      f"no longer has; give this sweep a folder of its own (default runs/sweeps/{spec.name}), or run "
                      f"the spec that wrote them there (which rewrites {POINTS})")


def _points_document(out: Path) -> tuple[dict | None, str]:
    """(``out``'s points.json, if it is a mapping that names its sweep, else None; why not: the file is missing,
    not JSON, ...)."""
    try:
        meta = json.loads((Path(out) / POINTS).read_text())
    except OSError as err:
        return None, err.strerror or "cannot be read"
    except ValueError:
        return None, "not JSON"
    named = isinstance(meta, dict) and isinstance(meta.get("name"), str)
    return (meta, "") if named else (None, "it names no sweep")


def check_workers(workers: int | None, scheduler: str | None) -> None:
    """Refuse a local cluster of no worker (``--workers``), and a number of workers with a scheduler, whose cluster
    has its own (``None``: not given)."""
    if scheduler and workers is not None:
        raise ConfigError(f"--workers: sizes the local cluster, and --scheduler runs on an existing one (got --workers "
                          f"{workers} with --scheduler {scheduler}); leave out --workers: that cluster's workers are "
                          "those its dask worker commands started")
    if not scheduler and workers is not None and workers < 1:
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


__all__ = ["MAX_BATCH", "LOCAL_WORKERS", "SweepRun", "EarlierResults", "check_folder", "check_results", "check_workers",
           "check_scheduler", "earlier_results", "run_sweep", "plan_tasks", "seed_free"]
