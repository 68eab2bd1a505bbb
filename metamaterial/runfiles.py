"""The files of a run directory, as ``runs`` writes them and ``rundir``, ``plots`` and the CLI read them back:
their names, the checkpoint's format and the per-point table ``outputs.csv``.

Sits below ``runs`` (which trains into a run directory), ``rundir`` (which uses a finished one) and ``plots``
(which draws one from these files alone), so that none of them needs another to read a run.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import revisions
from .errors import CheckpointError
from .learning.trainer import TrainState

if TYPE_CHECKING:
    from .experiment import Setup

#: the state of every replica at the last checkpoint (``save_checkpoint``)
CHECKPOINT = "checkpoint.npz"
#: the per-point table of a single run: inputs, targets and final outputs under the task's own column names
OUTPUTS_CSV = "outputs.csv"
#: what ``train`` writes into a run directory (a single run's, an ensemble's, the figures of both) and the folders
#: ``energy``, ``transient`` and ``transient --learning`` write into it: ``train --replace`` removes these and
#: nothing else (``runs.clear_run``)
RUN_FILES = (CHECKPOINT, CHECKPOINT + ".tmp", "config.yaml", "metrics.csv", "gates.csv", "summary.json", OUTPUTS_CSV,
             "free.cir", "clamped.cir", "ensemble.csv", "mismatch.npz", "mismatch.npz.tmp", "loss.png",
             "accuracy.png", "gates.png", "outputs.png", "confusion.png", "success.png", "margins.png")
RUN_FOLDERS = ("energy", "transient", "learning")


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


def write_atomically(path: Path, **arrays: np.ndarray) -> None:
    """np.savez to a temporary file, flushed to disk, then renamed over ``path``: a kill leaves the old or the new."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(run_dir: Path, state: TrainState, seeds: list[int], wall_s: float) -> None:
    """Atomically write the state of every replica: controls, generators, counters, history, trajectory."""
    history = [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in row.items()} for row in state.history]
    meta = {"epoch": state.epoch, "seeds": seeds, "rng_states": [rng.bit_generator.state for rng in state.rngs],
            "n_steps": state.n_steps, "n_solves": state.n_solves, "history": history,
            "keep_trajectory": state.keep_trajectory, "trajectory_epochs": state.trajectory_epochs, "wall_s": wall_s,
            "revision": revisions.CURRENT}
    trajectory = np.array(state.trajectory) if state.trajectory else np.zeros((0, *state.controls.shape))
    write_atomically(run_dir / CHECKPOINT, controls=state.controls, n_updates=state.n_updates,
                     trajectory=trajectory, meta=np.array(json.dumps(meta)))


def load_checkpoint(run_dir: Path) -> tuple[TrainState, list[int], float]:
    """(state, seeds, wall time so far in s) of the run in ``run_dir``."""
    path = run_dir / CHECKPOINT
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            controls, n_updates, trajectory = z["controls"].copy(), z["n_updates"].copy(), list(z["trajectory"])
    except (OSError, KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot resume: no readable checkpoint ({err}); start a new run") from err
    rngs = [np.random.default_rng() for _ in meta["rng_states"]]
    for rng, saved in zip(rngs, meta["rng_states"]):
        rng.bit_generator.state = saved
    history = [{k: (np.array(v) if isinstance(v, list) else v) for k, v in row.items()} for row in meta["history"]]
    state = TrainState(meta["epoch"], controls, rngs, n_updates, meta["n_steps"], meta["n_solves"],
                       meta["keep_trajectory"], history, meta["trajectory_epochs"], trajectory)
    return state, meta["seeds"], float(meta["wall_s"])


def checkpoint_revision(run_dir: Path) -> int | None:
    """The revision of the training dynamics (``revisions``) the checkpoint in ``run_dir`` was trained under (1:
    before the first); None if it has no readable checkpoint."""
    try:
        with np.load(run_dir / CHECKPOINT, allow_pickle=False) as z:
            made_under = json.loads(str(z["meta"])).get("revision", 1)
    except (OSError, KeyError, ValueError):
        return None
    return made_under if isinstance(made_under, int) else 1


# -- names of a task's columns -------------------------------------------------------------------------------
def column_names(setup: Setup) -> tuple[list[str], list[str], list[str] | None]:
    """(input names, output names, class names or None) of a run: a CSV task's (and Iris's) own column and class
    names; otherwise the netlist names of the input nodes and of the outputs (``n10-n0`` for a differential one)."""
    c, cfg = setup.circuit, setup.config
    inputs = [f"n{i}" for i in c.inputs]
    outputs = [f"n{p}" if n < 0 else f"n{p}-n{n}" for p, n in zip(c.out_pos, c.out_neg)]
    classes = None
    header: list[str] | None = None  # with the rows below it, when the task reads a CSV file
    if cfg.task.name == "iris":
        with resources.files("metamaterial").joinpath("data/iris.csv").open() as f:
            header, *rows = [r for r in csv.reader(f) if r]
        n_in, is_class = 4, True
    elif cfg.task.name == "csv":
        # the training data may have moved away since: then the nodes' names still describe the run
        with contextlib.suppress(OSError), open(cfg.task.path, newline="") as f:
            header, *rows = [r for r in csv.reader(f) if r]
        n_in, is_class = cfg.task.n_inputs, cfg.task.classification
    if header is not None:
        inputs = header[:n_in]
        if is_class:
            classes = sorted({r[n_in] for r in rows})
            outputs = [f"{header[n_in]}={name}" for name in classes]
        else:
            outputs = header[n_in:]
    elif setup.task.is_classification and setup.task.decode == "nearest":
        classes = [f"{v * 1e3:g} mV" for v in setup.task.levels]
    return inputs, outputs, classes


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
    with path.open("w") as f:  # as write_text: newlines translated
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows([[repr(float(v)) if isinstance(v, (float, np.floating)) else v for v in row] for row in body])
    return path
