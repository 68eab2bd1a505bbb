"""A sweep's output folder: one result file per point, keyed by the hash of its resolved config, and an event log.

Layout of ``DIR``::

    points.json          the spec's points: index, key, axis values (rewritten by every run of a spec once its
                         cluster is reached)
    results/<key>.json   one point's record: status ok/failed, axis values, resolved config, summary or error,
                         worker, time
    events.jsonl         started / resumed / finished / failed / duplicate, one JSON line each, from every worker
    .writing/            records being written
    partial/<task key>/  the checkpoint of a task in training (a run directory of ``train``'s layout: config.yaml,
                         checkpoint.npz, and task.json naming its points), removed once its points have results

A task's key hashes the keys of its points in order (``task_key``): a task of other points or seeds has another
folder, so a checkpoint is only ever resumed by the task that wrote it; a folder no task of the next run is
(its points changed, or have results) is removed by that run.

A record is written to a temporary file in ``.writing/``, flushed, and hard-linked to its name in ``results/``,
which fails if the name exists: whatever crashes or races, a point has at most one result, and a finished one is
never overwritten (a failed one is, when ``--retry-failed`` runs it again); a writer killed before the link leaves
its temporary file in ``.writing/``, never in ``results/``, which holds records only (the next run removes it once
it is an hour old, ``clear_stale_writes``). A key hashes the whole
resolved config, so a config key added to the schema since a record was written changes its point's key:
``adopt_results`` files such records under the keys their saved configs have today (a new key takes its default;
``execute.earlier_results`` finds them), so resuming does not run them again, unless a revision of the training
dynamics since changed what their config trains to (``revisions``). Event lines are single ``O_APPEND`` writes,
whole even when several processes append at once; a point's finished or failed line follows its record, and one
that a worker killed in between did not write is written by the client, marked ``recovered``
(``execute._log_unlogged_ends``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import shown

RESULTS = "results"
#: where a record is written before it is linked into ``results/`` (beside it: the same file system)
WRITING = ".writing"
EVENTS = "events.jsonl"
POINTS = "points.json"
#: the checkpoint folders of the tasks in training, one per task (``partial_path``)
PARTIAL = "partial"
#: the file of a task's checkpoint folder naming its points' keys, in the order of its replicas
TASK = "task.json"
#: the netlists ngspice failed on at points that failed, each named by its point's key (``worker.keep_failed``)
FAILED = "failed"


def result_path(out: Path, key: str) -> Path:
    return Path(out) / RESULTS / f"{key}.json"


#: a record's status: the point trained, or it raised (its error recorded)
STATUSES = ("ok", "failed")
#: the numbers a successful record's summary holds (``worker._summaries``): the metrics of a sweep's table and
#: figures (``--metric``), in table order, each with why it may be None at a point ("": it never is)
SUMMARY_METRICS = {
    "final_loss": "", "initial_loss": "",
    **dict.fromkeys(("lowest_loss", "lowest_loss_epoch"), "points recorded before 2026-12-03 lack it"),
    **dict.fromkeys(("accuracy", "min_margin_v", "success"), "their task is no classification"),
    **dict.fromkeys(("initial_hinge_loss", "final_hinge_loss"), "they train no hinge loss (or were recorded before "
                                                                   "2026-12-03)"),
    "test_loss": "their task is scored on no held-out or validation points",
    "test_hinge_loss": "they train no hinge loss on held-out or validation points",
    "test_accuracy": "their task is no classification scored on held-out or validation points",
    "learning_time_s": "", "learning_time_to_target_s": "no point reached the spec's target_loss, or it sets none",
    "hardware_time_s": "points recorded before 2026-12-04 counted it otherwise (2 t_settle a step; now a t_settle + "
                       "t_learn slot per presented point): their value is left out",
    **dict.fromkeys(("network_power_w", "edge_power_w"), "points recorded before 2026-12-04 lack it"),
    "n_updates": "", "t_learn_s": "", "epochs": "", "batch": "", "wall_s": ""}
#: the revision of the dynamics (``revisions``) records made since count ``hardware_time_s`` as a slot per presented
#: point (``Trainer.hardware_time``); a record made under an earlier one counted 2 t_settle a step
SLOT_CLOCK_SINCE = 4
#: the rest of a summary: labels, not metrics
SUMMARY_LABELS = ("task", "backend", "seed", "scored_on")


def read_result(out: Path, key: str) -> dict | None:
    """The record of point ``key``, or None if it has none (or only a damaged one, ``read_record``, which a rerun
    replaces)."""
    return read_record(out, key)[0]


def read_record(out: Path, key: str) -> tuple[dict | None, str | None]:
    """(record, None) of point ``key``; (None, None) if it has no record, (None, what is wrong) if its file is
    damaged: not JSON, or not a mapping with a status in ``STATUSES``, a mapping (if any) as its error, and (status
    ok) a summary mapping whose metrics (``SUMMARY_METRICS``) are numbers or None."""
    try:
        record = json.loads(result_path(out, key).read_text())
    except FileNotFoundError:
        return None, None
    except OSError as err:
        return None, f"unreadable ({err.strerror})"
    except ValueError:
        return None, "not JSON"
    problem = _record_problem(record)
    return (None, problem) if problem else (record, None)


def _record_problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return f"not a mapping (got {type(record).__name__})"
    if record.get("status") not in STATUSES:
        return f"status {shown(record.get('status'))} is none of {', '.join(STATUSES)}"
    for part in ("summary", "error"):
        if not isinstance(record.get(part) or {}, dict):
            return f"its {part} is not a mapping"
    summary = record.get("summary")
    if record["status"] == "ok" and not isinstance(summary, dict):
        return "status ok without a summary"
    for metric in SUMMARY_METRICS:
        value = (summary or {}).get(metric)
        if not (value is None or isinstance(value, (int, float))):
            return f"summary.{metric} is not a number (got {shown(value)})"
    return None


def is_done(out: Path, key: str, retry_failed: bool = False) -> bool:
    """Whether point ``key`` needs no run: it has a record, and with ``retry_failed`` a successful one."""
    record = read_result(out, key)
    return record is not None and not (retry_failed and record.get("status") != "ok")


#: a file in ``.writing/`` untouched for this long (s) is a killed writer's: a record is written in milliseconds
STALE_WRITE_S = 3600.0


def clear_stale_writes(out: Path) -> None:
    """Remove what killed writers left in ``.writing/`` (files older than ``STALE_WRITE_S``; a sweep writing into the
    same folder meanwhile keeps its own, seconds old)."""
    for f in (Path(out) / WRITING).glob("*.tmp"):
        with contextlib.suppress(OSError):  # gone meanwhile: another run cleared it
            if time.time() - f.stat().st_mtime > STALE_WRITE_S:
                f.unlink()


def write_result(out: Path, key: str, record: dict) -> bool:
    """Store point ``key``'s record atomically; False (and nothing written) if it already has a successful one, or
    a failed one and ``record`` is a failure too."""
    path = result_path(out, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    writing = Path(out) / WRITING  # not results/: a writer killed before the link leaves its file there
    writing.mkdir(exist_ok=True)
    tmp = writing / f"{key}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(json.dumps(record, indent=1, default=_plain) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
        return True
    except FileExistsError:
        old = read_result(out, key)
        if old is None or (old.get("status") != "ok" and record.get("status") == "ok"):
            os.replace(tmp, path)  # an unreadable record, or a failure retried with success
            return True
        return False
    finally:  # linked, or failed (a full disk, Ctrl-C): either way the temporary file goes
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def other_records(out: Path, keys: Iterable[str]) -> Iterator[tuple[str, dict]]:
    """(key, record) of each readable record in ``out/results`` whose key is not one of ``keys``, by key."""
    wanted = set(keys)
    try:
        names = sorted(os.listdir(Path(out) / RESULTS))
    except OSError:
        return
    for name in names:
        key = name.removesuffix(".json")
        if name.startswith(".") or key == name or key in wanted:
            continue
        record = read_result(out, key)
        if record is not None:
            yield key, record


def adopt_results(out: Path, adoptable: dict[str, str]) -> dict[str, str]:
    """File the records of earlier runs under the keys their points have today: each record ``old`` of
    ``adoptable`` ({old key: its point's key today}, ``execute.earlier_results``) moves to its new key unless that
    has a record by now (its ``key`` updated, the old one kept as ``key_before``). Returns {old key: new key} of the
    records moved."""
    adopted: dict[str, str] = {}
    for old, new in adoptable.items():
        record = read_result(out, old)
        if record is None or read_result(out, new) is not None:
            continue
        if not write_result(out, new, {**record, "key": new, "key_before": old}):
            continue
        result_path(out, old).unlink(missing_ok=True)
        adopted[old] = new
    return adopted


def log_event(out: Path, event: str, key: str, **fields: Any) -> None:
    """Append one event line: time, event, point key, host and process, and ``fields``."""
    line = json.dumps({"t": round(time.time(), 3), "event": event, "key": key, "host": socket.gethostname(),
                       "pid": os.getpid(), **fields}, default=_plain) + "\n"
    fd = os.open(Path(out) / EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def events_size(out: Path) -> int:
    """The length of ``DIR/events.jsonl`` (bytes; 0 if there is none): ``read_events(out, since)`` reads the lines
    written after it."""
    try:
        return (Path(out) / EVENTS).stat().st_size
    except OSError:
        return 0


def read_events(out: Path, since: int = 0) -> list[dict]:
    """Every whole event line of ``DIR/events.jsonl`` from byte ``since`` on (a line cut by a kill is skipped)."""
    try:
        with open(Path(out) / EVENTS, "rb") as f:
            f.seek(since)
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return []
    events = []
    for line in lines:
        with contextlib.suppress(ValueError):
            events.append(json.loads(line))
    return events


def sweep_in(folder: Path) -> str | None:
    """What of a sweep ``folder`` holds, in words for a refusal: ``the sweep 'NAME' (points.json, events.jsonl,
    results/)``, named by its points.json (``a sweep`` without a readable one); None if it holds neither a
    points.json nor an events.jsonl, which every sweep that ran writes first. ``train`` and the commands on a run
    directory refuse such a folder: a run there would overwrite the sweep's summary.json."""
    folder = Path(folder)
    found = [name for name in (POINTS, EVENTS) if (folder / name).is_file()]
    if not found:
        return None
    if (folder / RESULTS).is_dir():
        found.append(RESULTS + "/")
    try:
        name = json.loads((folder / POINTS).read_text()).get("name")
    except (OSError, ValueError, AttributeError):  # no points.json, or a damaged one: still a sweep's folder
        name = None
    what = f"the sweep '{name}'" if isinstance(name, str) else "a sweep"
    return f"{what} ({', '.join(found)})"


def task_key(keys: Iterable[str]) -> str:
    """The key of the task that trains the points of ``keys`` (in this order: the order of its replicas)."""
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


def partial_path(out: Path, key: str) -> Path:
    """The checkpoint folder of the task ``key`` (``task_key``)."""
    return Path(out) / PARTIAL / key


def partial_tasks(out: Path) -> Iterator[tuple[str, list[str] | None]]:
    """(task key, its points' keys) of each checkpoint folder in ``out/partial``, by key; the keys are None when
    its task.json cannot be read or does not hash to the folder's name (a folder left by a kill as it was made)."""
    try:
        names = sorted(os.listdir(Path(out) / PARTIAL))
    except OSError:
        return
    for name in names:
        try:
            keys = json.loads((Path(out) / PARTIAL / name / TASK).read_text())["points"]
        except (OSError, ValueError, TypeError, KeyError):
            keys = None
        ok = isinstance(keys, list) and all(isinstance(k, str) for k in keys) and keys and task_key(keys) == name
        yield name, keys if ok else None


def remove_partial(out: Path, key: str) -> None:
    """Remove the checkpoint folder of task ``key``, and ``out/partial`` once it is empty."""
    shutil.rmtree(partial_path(out, key), ignore_errors=True)
    with contextlib.suppress(OSError):  # another task's folder is still there
        (Path(out) / PARTIAL).rmdir()


def write_json_atomically(path: Path, data: Any) -> None:
    """``path`` holds ``data`` as JSON whole or is left as it was; a write that fails (a full disk, Ctrl-C) leaves
    no temporary file."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1, default=_plain) + "\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def _plain(v: Any) -> Any:
    """numpy scalars and arrays as Python numbers and lists."""
    if hasattr(v, "tolist"):
        return v.tolist()
    raise TypeError(f"not JSON serializable: {type(v).__name__}")


__all__ = ["RESULTS", "WRITING", "EVENTS", "POINTS", "STATUSES", "SUMMARY_METRICS", "SUMMARY_LABELS", "result_path",
           "read_result", "read_record", "is_done", "clear_stale_writes", "write_result", "adopt_results", "log_event",
           "events_size", "read_events", "sweep_in", "write_json_atomically", "PARTIAL", "TASK", "task_key",
           "partial_path", "partial_tasks", "remove_partial"]
