"""A run folder's lock, and the old run a ``train --replace`` keeps aside until the new one has a checkpoint.

Every ``train`` holds its folder's lock to its end (``training_lock``), so a second train into it is refused and
no other command takes a running replace for one a kill cut short. A replace moves the old run's files into the
``SET_ASIDE`` folder (``set_aside``), and deletes them once the new run has a checkpoint (``discard_set_aside``) or
puts them back if it stops before (``put_back``); ``finish_replace`` completes one a kill interrupted. Used by
``runs`` (which trains) and by every command that opens a run folder; sits on ``runfiles``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
from pathlib import Path, PurePosixPath

from .errors import ConfigError
from .runfiles import (
    CHECKPOINT,
    FAILED_NETLISTS,
    MOVING,
    RUN_FILES,
    SET_ASIDE,
    files_under,
    run_files,
)
from .units import listed

try:
    import fcntl  # the lock of a running train (``training_lock``); without it (Windows), no lock
except ImportError:  # pragma: no cover
    fcntl = None


def remove_run_files(run_dir: Path, spare: set[str] = frozenset()) -> list[str]:
    """Remove the ``RUN_FILES`` in ``run_dir`` but those named in ``spare``; their names."""
    removed = []
    for name in RUN_FILES:
        path = run_dir / name
        if name in spare or not path.is_file():
            continue
        path.unlink()
        removed.append(name)
    return removed


def set_aside(run_dir: Path) -> list[str] | None:
    """Move the files of the run in ``run_dir`` (``runfiles.run_files``: what train and the commands on its run
    wrote there) into its ``SET_ASIDE`` folder, so that a new run can start there while the old one can still come
    back (``put_back``) until the new one has a checkpoint (``discard_set_aside``). They go first into the
    ``MOVING`` folder, the checkpoint first, which is renamed ``SET_ASIDE`` once all are in: a kill part way leaves
    them there, and ``finish_replace`` moves them back. Returns what else ``run_dir`` holds, which stays where it
    is; None if it holds no run (no checkpoint), when nothing is moved."""
    if not (run_dir / CHECKPOINT).is_file():
        return None
    written, other = run_files(run_dir)
    try:
        _move(run_dir, run_dir / MOVING, sorted(written, key=lambda name: name != CHECKPOINT))
        os.replace(run_dir / MOVING, run_dir / SET_ASIDE)
    except BaseException:  # a file that would not move (or a Ctrl-C): those that did go back
        _move_back(run_dir)
        raise
    return other


def put_back(run_dir: Path) -> None:
    """Undo ``set_aside``: delete the files the new run wrote (its checkpoint first), then move the old run's back
    by way of the ``MOVING`` folder (a kill part way: ``finish_replace`` deletes no more and moves the rest). A
    netlist ngspice failed on in the new run stays."""
    remove_run_files(run_dir)  # RUN_FILES name the checkpoint first
    os.replace(run_dir / SET_ASIDE, run_dir / MOVING)
    _move_back(run_dir)


def discard_set_aside(run_dir: Path) -> int:
    """Delete the old run ``set_aside`` kept (once the new run has a checkpoint), and the folders its files left
    empty (those of the commands on it, a folder of its netlists); how many files it had."""
    aside = run_dir / SET_ASIDE
    names = files_under(aside)
    shutil.rmtree(aside)
    folders = {parent for name in names for parent in PurePosixPath(name).parents if parent.parts}
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):  # the deepest first
        path = run_dir / folder
        if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()
    return len(names)


@contextlib.contextmanager
def folder_lock(run_dir: Path):
    """Within the block, an exclusive lock (``flock``) on the folder ``run_dir``, taken without waiting: yields
    False if another process (or another open of it in this one) holds it, else True (also where there is no lock
    to take: no folder, no ``fcntl``, a filesystem without locks). The operating system lets a lock go with the
    process that held it, however that ended, so a held lock is a ``train`` running now, not one killed."""
    try:
        fd = os.open(run_dir, os.O_RDONLY)
    except OSError:
        yield True
        return
    try:
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        except OSError:  # no locks on this filesystem: as without fcntl
            pass
        yield True
    finally:
        os.close(fd)  # and with it the lock


@contextlib.contextmanager
def training_lock(run_dir: Path, resume: bool = False):
    """A ``train`` into ``run_dir`` (fresh, resumed or replacing) holds its folder's lock to its end
    (``folder_lock``): a second train, resume or replace into it is refused (two runs would write one checkpoint),
    and no other command takes a running replace for one a kill cut short (``finish_replace``). A folder that does
    not exist yet has no lock to take: the run takes it once it has made the folder (``runs._train_into``)."""
    with folder_lock(run_dir) as mine:
        if not mine:
            raise ConfigError(f"{run_dir}: a `train` into it is running in another process; wait for it to end"
                              + ("" if resume else ", or choose another --out"))
        yield


def is_training(run_dir: Path) -> bool:
    """Whether a ``train`` into ``run_dir`` is running now, in another process or this one (it holds its folder's
    lock): a replace's old run set aside, or its files on their way, are then not left by a kill."""
    with folder_lock(run_dir) as free:
        return not free


def finish_replace(run_dir: Path) -> str | None:
    """Finish a ``train --replace`` into ``run_dir`` that a kill cut short (one running now, ``is_training``, is
    left alone, as if there were nothing to finish). Files left in the ``MOVING`` folder go
    back (the old run was being set aside or put back); with the old run in the ``SET_ASIDE`` folder, a checkpoint
    in ``run_dir`` is the new run's (the old one's went aside first), which had started and can be resumed, so the
    old run is deleted, and without one the new run had trained nothing, so the old run is put back. What was
    done, in one line; None if there was nothing to finish."""
    restored = (f"put back the run in {run_dir}/ that a killed `train --replace` had set aside: the run that was to "
                "replace it had not reached its first checkpoint")
    if not ((run_dir / MOVING).is_dir() or (run_dir / SET_ASIDE).is_dir()):
        return None
    with folder_lock(run_dir) as free:  # held while it works: two commands do not finish it at once
        return _finish_replace(run_dir, restored) if free else None


def _finish_replace(run_dir: Path, restored: str) -> str | None:
    if (run_dir / MOVING).is_dir():
        return restored if _move_back(run_dir) else None
    aside = run_dir / SET_ASIDE
    if not aside.is_dir() or aside.is_symlink():
        return None
    if (run_dir / CHECKPOINT).is_file():
        n = discard_set_aside(run_dir)
        return (f"removed the earlier run ({n} files) that a killed `train --replace` had set aside in {aside}: the "
                "run that replaced it had reached its first checkpoint")
    put_back(run_dir)
    return restored


def _move(source: Path, target: Path, names: list[str]) -> None:
    for name in names:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(source / name, target / name)


def _move_back(run_dir: Path) -> int:
    """Move the files in ``run_dir``'s ``MOVING`` folder back where they were and remove it; how many moved."""
    moving = run_dir / MOVING
    if not moving.is_dir():
        return 0
    names = files_under(moving)
    _move(moving, run_dir, names)
    shutil.rmtree(moving)
    return len(names)


#: how many of the files and folders kept in a replaced run's directory the line of ``replaced_line`` names
KEPT_SHOWN = 5


def failed_netlists(run_dir: Path) -> list[str]:
    """The names of the netlists ngspice failed on that ``run_dir`` holds (``FAILED_NETLISTS``), sorted."""
    if not run_dir.is_dir():
        return []
    return sorted(p.name for p in run_dir.iterdir() if fnmatch.fnmatchcase(p.name, FAILED_NETLISTS) and p.is_file())


def remove_failed_netlists(run_dir: Path, names: list[str]) -> str | None:
    """Remove the netlists ``names`` (``failed_netlists``) that an earlier run which failed left in ``run_dir``,
    where a ``train --replace`` found no run to set aside; the line saying so (None if there were none)."""
    for name in names:
        (run_dir / name).unlink(missing_ok=True)
    return (f"removed from {run_dir}/ what an earlier run that failed left there: {listed(names, KEPT_SHOWN)}"
            if names else None)


def replaced_line(run_dir: Path, n: int, other: list[str]) -> str:
    """The line saying that the run in ``run_dir`` was replaced: files removed, and what was kept."""
    shown = listed(other, KEPT_SHOWN)
    return (f"replaced the run in {run_dir}/ ({n} files removed"
            + (f"; kept what metamaterial did not write: {shown}" if other else "") + ")")


__all__ = ["remove_run_files", "set_aside", "put_back", "discard_set_aside", "folder_lock", "training_lock",
           "is_training", "finish_replace", "KEPT_SHOWN", "replaced_line", "failed_netlists", "remove_failed_netlists"]
