"""The files of a run directory, as ``runs`` writes them and ``rundir``, ``plots`` and the CLI read them back:
their names, the checkpoint's format and the per-point table ``outputs.csv``.

Sits below ``runs`` (which trains into a run directory), ``rundir`` (which uses a finished one) and ``plots``
(which draws one from these files alone), so that none of them needs another to read a run.
"""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import json
import math
import os
import re
import shlex
import tempfile
import zipfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from . import datafiles, revisions
from .errors import CheckpointError, first_bad, shown
from .learning.trainer import TrainState
from .netlist import escaped
from .units import listed

if TYPE_CHECKING:
    from .experiment import Setup

#: the state of every replica at the last checkpoint (``save_checkpoint``)
CHECKPOINT = "checkpoint.npz"
#: the per-point table of a single run: inputs, targets and final outputs under the task's own column names
OUTPUTS_CSV = "outputs.csv"
#: what ``train`` writes into a run directory (a single run's, an ensemble's, the figures of both): with the
#: netlists ngspice failed on (``FAILED_NETLISTS``) and the ``COMMAND_FILES``, what ``train --replace`` removes
#: (``run_files``; nothing else)
RUN_FILES = (CHECKPOINT, CHECKPOINT + ".tmp", "config.yaml", "metrics.csv", "gates.csv", "summary.json", OUTPUTS_CSV,
             "free.cir", "clamped.cir", "ensemble.csv", "mismatch.npz", "mismatch.npz.tmp", "loss.png",
             "accuracy.png", "gates.png", "outputs.png", "confusion.png", "success.png", "margins.png")
#: a netlist ngspice failed on, kept in the run directory (``sim.ngspice``'s ``keep_failed``)
FAILED_NETLISTS = "metamaterial-failed-*.cir"
#: input step k of a ``transient`` not finished yet, written as it finishes (``costs.transient_run``, which goes on
#: from them and removes them at its end)
PARTIAL_STEP = "transient_partial_step{}.npz"
#: folder -> the files the command on a run directory writes into it (names, or ``fnmatch`` patterns):
#: ``energy`` into RUN_DIR/energy, ``transient`` into RUN_DIR/transient, ``transient --learning`` into
#: RUN_DIR/learning (``costs``), and the same into a ``seed_N`` folder there for ``--replica N``; a file of another
#: name there is not theirs (but one of these names + ``TMP``, which a kill in the middle of its write leaves:
#: ``replacing``)
COMMAND_FILES = {
    "energy": ("energy.json", "power.npz", "power.csv", "power_map.png"),
    "transient": ("transient.json", "transient.csv", "waves.csv", "waves.npz", "transient_step0.cir", "waveforms.png",
                  "settling.png", PARTIAL_STEP.format("*")),
    "learning": ("learning.json", "learning_gates.csv", "learning.cir", "learning_gates.png"),
}
#: the files a netlist command writes (``points.write_point_netlists``): any other file in its folder is left alone.
#: A folder of a run directory holding these and nothing else (``netlist RUN_DIR --out RUN_DIR/netlists``) is the
#: run's (``run_files``)
POINT_NETLIST = re.compile(r"^(free|clamped)_[0-9]+\.cir$")
#: the folder inside a run directory where ``train --replace`` keeps the old run's files until the new run has a
#: checkpoint, and the one they pass through on the way there and back (``replacement.set_aside``)
SET_ASIDE = ".replaced-run"
MOVING = ".replaced-run.moving"


def json_text(payload, default=None) -> str:
    """``payload`` as JSON text, indented by two spaces, with every list of plain values (numbers, strings,
    booleans, null) on one line: a per-epoch curve is one line, not one line per number. ``default`` converts
    what ``json`` cannot (as in ``json.dumps``); numpy arrays and scalars are always converted."""

    def plain(x):
        if isinstance(x, (np.ndarray, np.generic)):
            return x.tolist()
        if default is not None:
            return default(x)
        raise TypeError(f"{type(x).__name__} is not JSON serializable")

    def text(x, indent: str) -> str:
        inner = indent + "  "
        if isinstance(x, dict) and x:
            body = ",\n".join(f"{inner}{json.dumps(str(k))}: {text(v, inner)}" for k, v in x.items())
            return "{\n" + body + "\n" + indent + "}"
        if isinstance(x, list) and any(isinstance(v, (dict, list)) for v in x):
            return "[\n" + ",\n".join(inner + text(v, inner) for v in x) + "\n" + indent + "]"
        return json.dumps(x)

    return text(json.loads(json.dumps(payload, default=plain)), "") + "\n"


@contextlib.contextmanager
def writing(path: Path, tmp: Path | None = None):
    """Around the writing of ``path`` (by way of ``tmp``, a temporary file renamed over it, if given): an OSError
    raised without a file name (a write that finds the disk full names none) is raised again naming ``path``, for
    the one line that tells what to do; and ``tmp`` is removed however the writing stops short (an error, Ctrl-C),
    so that a full disk is not left fuller by half a file, nor a run directory holding it."""
    try:
        yield
    except BaseException as err:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.filename is None and err.errno is not None:
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise


#: the suffix of the temporary file ``replacing`` writes beside a file
TMP = ".tmp"


def is_point_netlist(name: str) -> bool:
    """Whether a file's name (or the last part of a path with ``/``) is a netlist of the netlist command
    (``POINT_NETLIST``), or the temporary file a kill left of one."""
    return POINT_NETLIST.match(name.rsplit("/", 1)[-1].removesuffix(TMP)) is not None


@contextlib.contextmanager
def replacing(path: Path):
    """The temporary file to write ``path``'s new content into (``path`` + ``TMP``), renamed over ``path`` when the
    block ends: a reader finds the old file or the whole new one, never part of it (a full disk stops a write part
    way); a write that fails names ``path``, and an error or Ctrl-C leaves the old file and no temporary one
    (``writing``)."""
    tmp = path.with_name(path.name + TMP)
    with writing(path, tmp):
        yield tmp
        os.replace(tmp, path)


def write_text_atomically(path: Path, text: str) -> None:
    """``path.write_text(text)`` by way of a temporary file (``replacing``)."""
    with replacing(path) as tmp:
        tmp.write_text(text)


def write_atomically(path: Path, **arrays: np.ndarray) -> None:
    """np.savez to a temporary file, flushed to disk, then renamed over ``path``: a kill leaves the old or the new;
    an error or Ctrl-C on the way leaves the old and no temporary file (``replacing``)."""
    with replacing(path) as tmp, open(tmp, "wb") as f:  # closed, then renamed
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(run_dir: Path, state: TrainState, seeds: list[int], wall_s: float,
                    files: dict | None = None, config: str | None = None) -> None:
    """Atomically write the state of every replica: controls, generators, counters, history, trajectory; ``files``,
    the content hashes of the files the run reads (``datafiles.pin_files``; None: not recorded); and ``config``, the
    text of the resolved config it trains (``configfile.dump_config``; None: not recorded), against which a resume
    checks the run's config.yaml."""
    history = [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in row.items()} for row in state.history]
    meta = {"epoch": state.epoch, "seeds": seeds, "rng_states": [rng.bit_generator.state for rng in state.rngs],
            "n_steps": state.n_steps, "n_solves": state.n_solves, "history": history,
            "keep_trajectory": state.keep_trajectory, "trajectory_epochs": state.trajectory_epochs, "wall_s": wall_s,
            "revision": revisions.CURRENT}
    if files is not None:
        meta["files"] = files
    if config is not None:
        meta["config"] = config
    trajectory = np.array(state.trajectory) if state.trajectory else np.zeros((0, *state.controls.shape))
    write_atomically(run_dir / CHECKPOINT, controls=state.controls, n_updates=state.n_updates,
                     trajectory=trajectory, meta=np.array(json.dumps(meta)))


def _meta(run_dir: Path) -> dict | None:
    """The meta of the run's checkpoint alone (not its arrays: an ensemble's gates and trajectory may be large), read
    from a checkpoint ``load_checkpoint`` refuses as well as any other; None where there is none to read."""
    try:
        with open(run_dir / CHECKPOINT, "rb") as f, np.load(f, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
    except (OSError, KeyError, AttributeError, json.JSONDecodeError, *_NOT_NPZ):
        return None
    return meta if isinstance(meta, dict) else None


def pinned_files(run_dir: Path) -> dict | None:
    """The content hashes of the files a run reads, as its checkpoint recorded them (``datafiles.pin_files``); None
    where there are none to read (``_meta``)."""
    files = (_meta(run_dir) or {}).get("files")
    return files if datafiles.is_pins(files) else None


def checkpoint_epoch(run_dir: Path) -> int | None:
    """The epoch of the run's checkpoint; None where there is none to read (``_meta``)."""
    epoch = (_meta(run_dir) or {}).get("epoch")
    return epoch if _is_count(epoch) else None


def damaged(path: Path, what: str) -> CheckpointError:
    """The error of a file of a run directory that cannot be used, with what to do about it: the same advice for
    every command that reads the file (train --resume, eval, netlist, energy, plot)."""
    return CheckpointError(f"{path}: {what}; the run directory is damaged: train it again (--replace) or restore "
                           f"{path.name}")


#: what numpy raises on a file that is not an intact .npz (or holds other than plain arrays)
_NOT_NPZ = (EOFError, TypeError, ValueError, zipfile.BadZipFile)
#: the keys ``save_checkpoint`` writes into a checkpoint's meta (``revision`` since revisions were recorded, ``files``
#: since the files a run reads were pinned)
_META = ("epoch", "seeds", "rng_states", "n_steps", "n_solves", "history", "keep_trajectory", "trajectory_epochs",
         "wall_s")


class Checkpoint(NamedTuple):
    """A run's checkpoint as ``load_checkpoint`` reads it: the state of every replica, their seeds, the wall time
    of the training so far (s), the revision of the dynamics it was made under (``revisions``; 1: before they were
    recorded), the content hashes of the files the run reads (``datafiles.pin_files``; None: a run made before they
    were recorded), the file it was read from and the text of the config it trained (None: a run made before it was
    recorded)."""

    state: TrainState
    seeds: list[int]
    wall_s: float
    revision: int
    files: dict | None
    path: Path
    config: str | None = None


def load_checkpoint(run_dir: Path, n_edges: int | None = None) -> Checkpoint:
    """The checkpoint of the run in ``run_dir``, read once for every caller. Every part of the file is checked here,
    and with ``n_edges`` the edges of its controls against the config's network, so that a damaged checkpoint is
    one ``CheckpointError`` whichever command reads it, before anything is computed or written."""
    path = run_dir / CHECKPOINT
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:  # closed also when numpy fails
            missing = [k for k in ("controls", "n_updates", "trajectory", "meta") if k not in z.files]
            if not missing:
                controls, n_updates, trajectory = z["controls"].copy(), z["n_updates"].copy(), z["trajectory"]
                meta = json.loads(str(z["meta"]))
    except FileNotFoundError as err:
        raise CheckpointError(f"{path}: no checkpoint (the run stopped before its first one, or the file was "
                              "removed); train the run again, or restore the file") from err
    except OSError as err:
        raise damaged(path, f"not a readable checkpoint: {err.strerror}") from err
    except _NOT_NPZ as err:  # numpy's words would advise pickles
        raise damaged(path, "not a readable checkpoint: not an intact .npz file") from err
    problem = (f"no {' or '.join(missing)} array" if missing else
               _problem(controls, n_updates, trajectory, meta, n_edges))
    if problem is not None:
        raise damaged(path, f"not a readable checkpoint: {problem}")
    revision = meta.get("revision", 1)
    if revision > revisions.CURRENT:
        raise CheckpointError(f"{path}: written by a newer version of metamaterial (revision {revision} of "
                              f"the training dynamics; this one knows up to {revisions.CURRENT}); use that version, "
                              "or train the run again with this one")
    rngs = [np.random.default_rng() for _ in meta["rng_states"]]
    for i, (rng, saved) in enumerate(zip(rngs, meta["rng_states"])):
        try:
            rng.bit_generator.state = saved
        except (KeyError, TypeError, ValueError) as err:
            raise damaged(path, f"not a readable checkpoint: rng_states[{i}] is not a generator's state") from err
    history = [{k: (np.array(v) if isinstance(v, list) else v) for k, v in row.items()} for row in meta["history"]]
    state = TrainState(meta["epoch"], controls, rngs, n_updates, meta["n_steps"], meta["n_solves"],
                       meta["keep_trajectory"], history, meta["trajectory_epochs"], list(trajectory))
    return Checkpoint(state, meta["seeds"], float(meta["wall_s"]), revision, meta.get("files"), path,
                      meta.get("config"))


def _problem(controls: np.ndarray, n_updates: np.ndarray, trajectory: np.ndarray, meta, n_edges: int | None
             ) -> str | None:
    """What makes a checkpoint's arrays and meta unusable, in a few words; None if nothing does."""
    if not isinstance(meta, dict):
        return f"its meta is a {type(meta).__name__}, not a mapping"
    absent = [k for k in _META if k not in meta]
    if absent:
        return f"its meta has no {', '.join(absent)}"
    if controls.ndim != 2 or controls.dtype.kind != "f":
        return f"controls must be numbers [replicas, edges] (got {controls.dtype} {list(controls.shape)})"
    if not np.isfinite(controls).all():
        at, place = first_bad(~np.isfinite(controls), ("replica", "edge"))
        return f"controls must be finite (got {controls[at]}{place})"
    r = len(controls)
    if n_edges is not None and controls.shape[1] != n_edges:
        return _other_edges(controls, n_edges)
    if n_updates.shape != (r,) or n_updates.dtype.kind not in "iu":
        return f"n_updates must be {r} integers (got {n_updates.dtype} {list(n_updates.shape)})"
    if trajectory.ndim != 3 or trajectory.shape[1:] != controls.shape or trajectory.dtype.kind != "f":
        return (f"trajectory must be numbers [records, {r}, {controls.shape[1]}] (got {trajectory.dtype} "
                f"{list(trajectory.shape)})")
    seeds, epochs, history, rng_states = meta["seeds"], meta["trajectory_epochs"], meta["history"], meta["rng_states"]
    # (key, whether its value will do, what each item of a list must be or None, what the value must be)
    checks = (
        ("seeds", isinstance(seeds, list) and len(seeds) == r > 0, _is_int,
         f"a list of one integer per row of controls, {r} in all"),
        ("epoch", _is_count(meta["epoch"]), None, "an integer >= 0"),
        ("n_steps", _is_count(meta["n_steps"]), None, "an integer >= 0"),
        ("n_solves", _is_count(meta["n_solves"]), None, "an integer >= 0"),
        ("history", isinstance(history, list), lambda row: isinstance(row, dict), "a list of mappings"),
        ("rng_states", isinstance(rng_states, list) and len(rng_states) == r, None,
         f"a list of one generator state per row of controls, {r} in all"),
        ("keep_trajectory", isinstance(meta["keep_trajectory"], bool), None, "true or false"),
        ("trajectory_epochs", isinstance(epochs, list) and len(epochs) == len(trajectory), _is_count,
         f"a list of one integer >= 0 per trajectory row, {len(trajectory)} in all"),
        ("wall_s", _is_real(meta["wall_s"]) and meta["wall_s"] >= 0, None, "a number of seconds >= 0"),
        ("revision", _is_int(meta.get("revision", 1)) and meta.get("revision", 1) >= 1, None, "an integer >= 1"),
        ("files", datafiles.is_pins(meta.get("files", {})), None, "a mapping of key paths to {path, sha256}"),
        ("config", isinstance(meta.get("config", ""), str), None, "the text of a config"),
    )
    for key, ok, item_ok, want in checks:
        # a list's first bad item by its index: shown() of the list would hide it past the fifth
        stray = next((i for i, item in enumerate(meta[key]) if not item_ok(item)), None) if ok and item_ok else None
        if not ok or stray is not None:
            got = shown(meta[key]) if stray is None else f"{shown(meta[key][stray])} at index {stray}"
            return f"{key} must be {want} (got {got})"
    return None


def _other_edges(controls: np.ndarray, n_edges: int) -> str:
    return (f"controls of {controls.shape[1]} edges, but the network of config.yaml has {n_edges} (the config, its "
            "network file or the checkpoint changed since training)")


def check_edges(checkpoint: Checkpoint, n_edges: int) -> None:
    """Refuse, as ``load_checkpoint`` with ``n_edges`` does, a checkpoint read without them whose controls do not
    fit a network of ``n_edges`` edges."""
    controls = checkpoint.state.controls
    if controls.shape[1] != n_edges:
        raise damaged(checkpoint.path, f"not a readable checkpoint: {_other_edges(controls, n_edges)}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)  # JSON's true is not a number


def _is_count(v) -> bool:
    return _is_int(v) and v >= 0


def _is_real(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def run_files(run_dir: Path) -> tuple[list[str], list[str]]:
    """(the files of ``run_dir`` that metamaterial wrote there, what else it holds): paths relative to ``run_dir``
    with ``/``, sorted. Written: the ``RUN_FILES`` and ``FAILED_NETLISTS`` in it, in each ``COMMAND_FILES``
    folder and its ``seed_N`` folders that command's files, and netlists of the netlist command in it or in a
    folder holding them and nothing else (``POINT_NETLIST``: their folder is the user's choice, their names are
    not); known by their names alone, so that what a run left is told from a file of the user's without a record
    of what was written. The rest (but ``SET_ASIDE`` and ``MOVING``) is named as found, a folder as ``name/`` (not
    looked into, but for those folders)."""
    written: list[str] = []
    other: list[str] = []
    for path in sorted(run_dir.iterdir()):
        if path.name in (SET_ASIDE, MOVING):
            continue
        if path.name in COMMAND_FILES and _is_folder(path):
            _sort_folder(path, path.name + "/", COMMAND_FILES[path.name], written, other, replicas=True)
        elif not _is_folder(path) and (path.name in RUN_FILES or fnmatch.fnmatchcase(path.name, FAILED_NETLISTS)
                                       or is_point_netlist(path.name)):
            written.append(path.name)
        elif netlists := _netlists_only(path):
            written += [f"{path.name}/{name}" for name in netlists]
        else:
            other.append(path.name + ("/" if path.is_dir() else ""))
    return written, other


def check_writable(folder: Path, fix: str) -> None:
    """Refuse an existing ``folder`` where no file can be created (a read-only file system, no permission), found by
    creating and removing an empty file there, before work whose results would go there; ``fix``: what to do. A
    folder that does not exist yet is left to the command that makes it."""
    if not folder.is_dir():
        return
    try:
        fd, probe = tempfile.mkstemp(prefix=".metamaterial-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise CheckpointError(f"{folder}: cannot write there ({err.strerror}); {fix}") from err


def run_in(folder: Path) -> str | None:
    """What of a run ``folder`` holds, in words for a refusal: ``a run of `metamaterial train` (checkpoint.npz,
    config.yaml, ...)``, the files ``run_files`` knows as a run's (and a ``train --replace``'s ``SET_ASIDE``); None if
    it holds none but a summary.json, which a sweep writes too (a sweep refuses such a folder: its summary.json
    would overwrite the run's), and a folder of netlists, which ``netlist CONFIG`` writes too."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    written = [name for name in run_files(folder)[0] if not is_point_netlist(name)]
    written += [name + "/" for name in (SET_ASIDE, MOVING) if (folder / name).is_dir()]
    if not [name for name in written if name != "summary.json"]:
        return None
    return f"a run of `metamaterial train` ({listed(written, 4)})"


def refuse_a_yaml_file(path: Path, reader: str) -> None:
    """Refuse a path that does not exist, or a YAML file, given where ``reader`` (``eval``, ``plot``, ``--resume``)
    reads a run directory, named for what it is, with how to get from it to a run directory: a run directory's own
    config.yaml (give its folder), a sweep spec (whose points keep no run directory) or a config (train it first)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise CheckpointError(f"{path}: no such file or directory; give a run directory that metamaterial train "
                              f"wrote{', the one to continue' if reader == '--resume' else ''} (check the path)")
    from .sweep.spec import is_sweep_spec, yaml_file  # noqa: PLC0415 (the sweep's spec imports the run's machinery)

    doc = yaml_file(path)
    if doc is None:
        return
    if path.name == "config.yaml" and (path.parent / CHECKPOINT).is_file():
        raise CheckpointError(f"{path}: the config file of a run directory, not the directory; give the directory "
                              f"itself, {path.parent}")
    q = shlex.quote(str(path))
    if is_sweep_spec(doc):
        raise CheckpointError(f"{path}: a sweep spec, not a run directory (a sweep keeps no run directory of its "
                              f"points); run it with metamaterial sweep {q} --out DIR (DIR then holds its table and "
                              "figures)")
    if reader == "--resume":
        raise CheckpointError(f"{path}: a config file, not a run directory, which --resume continues; train it with "
                              f"metamaterial train {q} --out DIR")
    raise CheckpointError(f"{path}: a config file, not a run directory; train it first (metamaterial train {q} "
                          f"--out DIR), then metamaterial {reader} DIR")


def _sort_folder(folder: Path, prefix: str, names: tuple[str, ...], written: list[str], other: list[str],
                 replicas: bool) -> None:
    for path in sorted(folder.iterdir()):
        rel = prefix + path.name
        if replicas and _is_folder(path) and re.fullmatch(r"seed_-?[0-9]+", path.name):
            _sort_folder(path, rel + "/", names, written, other, replicas=False)
        elif any(fnmatch.fnmatchcase(path.name.removesuffix(TMP), name) for name in names) and not _is_folder(path):
            written.append(rel)
        else:
            other.append(rel + ("/" if path.is_dir() else ""))


def _netlists_only(folder: Path) -> list[str]:
    """The names of the files in ``folder`` if it is a folder holding only netlists of the netlist command (or the
    temporary files a kill left of them), sorted; else none."""
    if not _is_folder(folder):
        return []
    names = sorted(p.name for p in folder.iterdir())
    ok = all(is_point_netlist(name) and not (folder / name).is_dir() for name in names)
    return names if ok else []


def files_under(folder: Path) -> list[str]:
    """Every file in ``folder`` and its folders, as paths relative to it with ``/``, sorted."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not _is_folder(p))


def _is_folder(path: Path) -> bool:
    """A folder itself, not a link to one (whose files are not the run directory's)."""
    return path.is_dir() and not path.is_symlink()


# -- names of a task's columns -------------------------------------------------------------------------------
def column_names(setup: Setup) -> tuple[list[str], list[str], list[str] | None]:
    """(input names, output names, class names or None) of a run: a CSV task's (and Iris's) own column and class
    names, an input made from a dataset's feature by scaling it written ``V(name)`` (it holds volts, not the
    feature's units); otherwise the names of the input nodes and of the outputs (``node_names``: in a network file
    the file's, elsewhere the netlist's; ``n10-n0`` for a differential one)."""
    c = setup.circuit
    node = node_names(setup)
    inputs = [node[i] for i in c.inputs]
    outputs = [node[p] if n < 0 else f"{node[p]}-{node[n]}" for p, n in zip(c.out_pos, c.out_neg)]
    classes = None
    task = setup.task
    if task.columns:  # the data file's own names (Task.columns)
        n_in = task.n_inputs
        names = task.columns[:n_in]
        inputs = [f"V({name})" for name in names] if task.scale is not None else list(names)
        if task.class_names:
            classes = list(task.class_names)
            outputs = [f"{task.columns[n_in]}={name}" for name in classes]
        else:
            outputs = list(task.columns[n_in:])
    elif task.is_classification and task.decode == "nearest":
        classes = [f"{v * 1e3:g} mV" for v in task.levels]
    return inputs, outputs, classes


#: the columns of outputs.csv that are no node's (``write_outputs_csv``)
FIXED_COLUMNS = ("point", "class", "predicted")
#: the characters of a node's name in a CSV header kept as they are (``node_names``); the others are %XX, ``-``
#: too, which joins the two nodes of a differential output (``a-b``)
_HEADER_SAFE = re.compile(r"[A-Za-z0-9_().:+]")


def node_names(setup: Setup) -> list[str]:
    """[N] the name of each node in outputs.csv's header and ``eval``'s output: in a network file the file's own
    name, one word without a comma or a dash (a character other than letters, digits and ``_().:+`` as ``%XX`` per
    UTF-8 byte: ``hub 1`` is ``hub%201``, ``a-b`` is ``a%2Db``), followed by its netlist name in parentheses where
    the name alone is another node's netlist name or one of the ``FIXED_COLUMNS`` (node 0 named ``n1`` is
    ``n1(n0)``), so that a header names each node once and ``eval --inputs`` reads it back; in any other network
    the netlist name (``n12``)."""
    c = setup.circuit
    netlist = [f"n{i}" for i in range(c.n_nodes)]
    if setup.config.network.kind != "file":  # a lattice's labels are positions, a layered network's ``in0``..
        return netlist
    taken = {*netlist, *FIXED_COLUMNS}
    names = [escaped(label, _HEADER_SAFE) for label in c.node_labels]
    names = [name if name == own or (name and name not in taken) else f"{name}({own})"
             for name, own in zip(names, netlist)]
    seen = Counter(names)  # a file naming one node n1(n0) and another n1: the netlist name tells them apart
    return [own if seen[name] > 1 else name for name, own in zip(names, netlist)]


def feature_names(setup: Setup) -> list[str] | None:
    """The dataset's own names of the features a run's inputs are scaled from (Iris's ``sepal_length_cm``, ...; a
    CSV task with ``task.scale``), whose values are in the dataset's units (``Task.scale`` maps them to volts);
    None when the inputs are not scaled from a dataset."""
    scale = setup.task.scale
    return None if scale is None else list(scale.names)


def write_outputs_csv(run_dir: Path, setup: Setup, outputs: np.ndarray) -> Path:
    """``outputs.csv``: one row per training point: its inputs, targets and final outputs [P, n_out] (V), and for
    a classification its class and the predicted one."""
    task = setup.task
    ins, outs, classes = column_names(setup)
    header = ["point", *ins, *(f"target {n}" for n in outs), *(f"output {n}" for n in outs)]
    body = [[p, *task.inputs[p], *task.targets[p], *outputs[p]] for p in range(task.n_points)]
    if task.is_classification:
        header += ["class", "predicted"]
        predicted = task.predict(outputs)
        name = (lambda k: k) if classes is None else (lambda k: classes[k])
        body = [[*row, name(task.classes[p]), name(predicted[p])] for p, row in enumerate(body)]
    path = run_dir / OUTPUTS_CSV
    with writing(path), path.open("w") as f:  # as write_text: newlines translated
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows([[repr(float(v)) if isinstance(v, (float, np.floating)) else v for v in row] for row in body])
    return path
