"""The user's files a config reads (a CSV task's data, a network file, a model card), pinned by their content.

A run directory keeps only the absolute path of such a file in its config.yaml, so a file edited after training
would silently give another loss in ``eval``, other netlists, or a resumed run that trains on other data than it
began with (and no longer ends where an uninterrupted run does). A run therefore records, when it is created, the
SHA-256 of each file it reads (``pin_files``, stored in the checkpoint's meta by ``runfiles.save_checkpoint``), and
every command that reads the run's data again checks that the file still holds that content (``check_files``). A
sweep's point key includes the same hashes (``sweep.spec.config_key``), so a point whose data changed is another
point, not one already done.

Also here: the one reader of such a file (``read_bytes``, ``read_text``), whose refusals say the same of every
file a user gives (the config, a CSV, a network file, a model card, ``eval --inputs``). Hashing, comparison and
reading: nothing here reads a run directory.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import CheckpointError, MetamaterialError, refusal

if TYPE_CHECKING:
    from .config import Config

#: the most bytes a user's file may hold: each is read whole into memory, so a path to a device that never ends
#: (a stream of zeros) or a file of gigabytes would fill it; 256 MiB is far more than any circuit here trains on
MAX_FILE_BYTES = 256 << 20
#: digits of a SHA-256 an error message shows: enough to tell two contents apart at a glance
SHOWN = 12
_HEX = re.compile(r"[0-9a-f]{64}")


def files_read(cfg: Config) -> dict[str, str]:
    """{key path: absolute path} of the user's files ``cfg`` reads: ``task.path`` of a CSV task, ``network.file``
    of a file network, ``device.model_file``. (Iris and the digits are bundled with the package or scikit-learn.)"""
    files = {}
    if cfg.task.name == "csv" and cfg.task.path:
        files["task.path"] = cfg.task.path
    if cfg.network.kind == "file" and cfg.network.file:
        files["network.file"] = cfg.network.file
    if cfg.device.model_file:
        files["device.model_file"] = cfg.device.model_file
    return files


def read_bytes(path: str | Path, error: type[MetamaterialError], where: str, what: str, fix: str) -> bytes:
    """The bytes of the user's file ``path`` (``what``: "the CSV", ...); one that cannot be read (missing, a folder,
    no permission) is ``error`` saying ``{where}{path}: cannot read {what} (the system's reason); {fix}``, and one
    of more than ``MAX_FILE_BYTES`` is refused after reading no more than that."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise refusal(error, f"{where}{path}", f"cannot read {what} ({err.strerror or err})", fix) from err
    if len(data) > MAX_FILE_BYTES:
        raise refusal(error, f"{where}{path}", f"{what} holds more than {MAX_FILE_BYTES >> 20} MiB, the most read "
                      "from one file (or never ends, as a device may)", fix)
    return data


def read_text(path: str | Path, error: type[MetamaterialError], where: str, what: str, fix: str, text_fix: str,
              encoding: str = "utf-8") -> str:
    """The text of the user's file ``path`` decoded as UTF-8 (``encoding`` "utf-8-sig" also drops a byte-order
    mark): ``read_bytes``'s refusal, or ``error`` saying ``{where}{path}: not UTF-8 text (byte 0xff at offset 4);
    {text_fix}``."""
    data = read_bytes(path, error, where, what, fix)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:  # err.object: the bytes decoded (after a byte-order mark, for utf-8-sig)
        at = err.start + len(data) - len(err.object)
        raise refusal(error, f"{where}{path}", f"not UTF-8 text (byte {data[at]:#04x} at offset {at})",
                      text_fix) from err


def file_sha256(path: str | Path, key: str) -> str:
    """The SHA-256 (hex) of the file at ``path``, which ``key`` names; one that cannot be read is a
    ``CheckpointError`` naming both."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read {key} ({err.strerror}); restore the file, or give another "
                              f"{key}") from err
    return digest.hexdigest()


def pin_files(cfg: Config, cache: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    """{key path: {"path", "sha256"}} of every file ``cfg`` reads (``files_read``); ``cache`` (path -> hash, filled
    here) hashes a file shared by many configs once."""
    cache = {} if cache is None else cache
    pins = {}
    for key, path in files_read(cfg).items():
        if path not in cache:
            cache[path] = file_sha256(path, key)
        pins[key] = {"path": path, "sha256": cache[path]}
    return pins


def is_pins(value) -> bool:
    """Whether ``value`` is what ``pin_files`` gives (a checkpoint's meta ``files``)."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, dict) and isinstance(v.get("path"), str)
        and isinstance(v.get("sha256"), str) and _HEX.fullmatch(v["sha256"]) is not None for k, v in value.items())


def changed_file(cfg: Config, pinned: dict | None, skip: tuple[str, ...] = ()) -> tuple[str, str, str, str] | None:
    """The first file ``cfg`` reads that no longer holds the content ``pinned`` (``pin_files``) recorded, as (key
    path, path, its SHA-256 now, the one recorded); None if there is none. Checked are the pinned keys but those in
    ``skip``, where ``cfg`` names the same path as when they were pinned (a ``--set`` that gives another file is
    the user's choice); nothing pinned (a run made before pins were recorded) is nothing to check."""
    files = files_read(cfg)
    for key, pin in (pinned or {}).items():
        if key in skip or files.get(key) != pin["path"]:
            continue
        now = file_sha256(pin["path"], key)
        if now != pin["sha256"]:
            return key, pin["path"], now, pin["sha256"]
    return None


def check_files(cfg: Config, pinned: dict | None, run_dir: str | Path, skip: tuple[str, ...] = ()) -> None:
    """Refuse (``CheckpointError``, one line) a run in ``run_dir`` whose files no longer hold the content it was
    trained on (``pinned``: its ``pin_files``; ``changed_file``): its loss, netlists or resumed training would be
    those of other data, without a word."""
    changed = changed_file(cfg, pinned, skip)
    if changed is not None:
        key, path, now, then = changed
        other = "; eval --inputs CSV evaluates the run on other points" if key == "task.path" else ""
        raise CheckpointError(f"{path}: its content differs from what the run in {run_dir} was trained on ({key}: "
                              f"sha256 {now[:SHOWN]} now, {then[:SHOWN]} at training); restore the file, or train a "
                              f"new run on it (another --out){other}")


__all__ = ["files_read", "file_sha256", "pin_files", "is_pins", "changed_file", "check_files"]
