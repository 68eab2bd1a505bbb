"""A sweep's output folder: one result file per point, keyed by the hash of its resolved config, and an event log.

Layout of ``DIR``::

    points.json          the spec's points: index, key, axis values (rewritten by every run of the spec)
    results/<key>.json   one point's record: status ok/failed, axis values, summary or error, worker, time
    events.jsonl         started / finished / failed / duplicate, one JSON line each, from every worker

A record is written to a temporary file, flushed, and hard-linked to its name, which fails if the name exists:
whatever crashes or races, a point has at most one result, and a finished one is never overwritten (a failed one
is, when ``--retry-failed`` runs it again). Event lines are single ``O_APPEND`` writes, whole even when several
processes append at once.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

RESULTS = "results"
EVENTS = "events.jsonl"
POINTS = "points.json"


def result_path(out: Path, key: str) -> Path:
    return Path(out) / RESULTS / f"{key}.json"


def read_result(out: Path, key: str) -> dict | None:
    """The record of point ``key``, or None if it has none (or only an unreadable one, which a rerun replaces)."""
    try:
        return json.loads(result_path(out, key).read_text())
    except (OSError, ValueError):
        return None


def is_done(out: Path, key: str, retry_failed: bool = False) -> bool:
    """Whether point ``key`` needs no run: it has a record, and with ``retry_failed`` a successful one."""
    record = read_result(out, key)
    return record is not None and not (retry_failed and record.get("status") != "ok")


def write_result(out: Path, key: str, record: dict) -> bool:
    """Store point ``key``'s record atomically; False (and nothing written) if it already has a successful one, or
    a failed one and ``record`` is a failure too."""
    path = result_path(out, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{key}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(record, indent=1, default=_plain) + "\n")
        f.flush()
        os.fsync(f.fileno())
    try:
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            old = read_result(out, key)
            if old is None or (old.get("status") != "ok" and record.get("status") == "ok"):
                os.replace(tmp, path)  # an unreadable record, or a failure retried with success
                return True
            return False
    finally:
        tmp.unlink(missing_ok=True)


def log_event(out: Path, event: str, key: str, **fields: Any) -> None:
    """Append one event line: time, event, point key, host and process, and ``fields``."""
    line = json.dumps({"t": round(time.time(), 3), "event": event, "key": key, "host": socket.gethostname(),
                       "pid": os.getpid(), **fields}, default=_plain) + "\n"
    fd = os.open(Path(out) / EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_events(out: Path) -> list[dict]:
    """Every whole event line of ``DIR/events.jsonl`` (a line cut by a kill is skipped)."""
    try:
        lines = (Path(out) / EVENTS).read_text().splitlines()
    except OSError:
        return []
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def write_json_atomically(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_plain) + "\n")
    os.replace(tmp, path)


def _plain(v: Any) -> Any:
    """numpy scalars and arrays as Python numbers and lists."""
    if hasattr(v, "tolist"):
        return v.tolist()
    raise TypeError(f"not JSON serializable: {type(v).__name__}")


__all__ = ["RESULTS", "EVENTS", "POINTS", "result_path", "read_result", "is_done", "write_result", "log_event",
           "read_events", "write_json_atomically"]
