"""A run directory as an artifact: load a trained run, evaluate it, write its netlists at the trained gates, and
the per-point table its figures are drawn from.

Sits after ``runs`` (which writes a run directory) in the flow: everything here reads ``config.yaml`` and
``checkpoint.npz`` of a finished (or interrupted) run and rebuilds the network with ``experiment.build``; the
trained controls are the checkpoint's. The ``eval``, ``netlist RUN_DIR`` and ``plot`` commands are these functions.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .config import Config, with_backend
from .configfile import config_differences, load_saved_config
from .datafiles import check_files, read_text
from .errors import CheckpointError, ConfigError, ValidationError, real_array, shown, whole_number
from .experiment import Setup, build, build_network, chips_per_replica, make_solver, make_trainer, replica_setup
from .learning.trainer import Evaluation
from .points import describe_points, netlist_folder, point_indices, point_phases, write_point_netlists
from .revisions import circuit_changed_since
from .runfiles import OUTPUTS_CSV, column_names, feature_names, load_checkpoint, pinned_files, write_outputs_csv
from .runs import seed_span, succeeded
from .tasks import bad_value
from .units import listed


@dataclass(frozen=True)
class SavedRun:
    """A trained run read back from its directory: the resolved config, the controls [R, E] of its R replicas
    (one per seed) and the epoch they were saved at."""

    run_dir: Path
    config: Config
    controls: np.ndarray
    seeds: list[int]
    epoch: int

    def replicas(self, seed: int | None) -> list[int]:
        """Indices of the replicas to use: all of them, or the one trained with ``seed``."""
        if seed is None:
            return list(range(len(self.seeds)))
        # True == 1: without this, True picked seed 1's replica
        whole_number(seed, "--replica", fix=f"give one of the run's seeds {seed_span(self.seeds)} as an int")
        if seed not in self.seeds:
            raise ConfigError(f"--replica: the run holds the replicas of seeds {seed_span(self.seeds)} (got {seed}); "
                              "give one of those seeds")
        return [self.seeds.index(seed)]

    def one_replica(self, seed: int | None) -> int:
        """Index of one replica: the run's only one, or the one trained with ``seed``."""
        if seed is None and len(self.seeds) > 1:
            raise ConfigError(f"--replica: the run holds {len(self.seeds)} replicas (seeds {seed_span(self.seeds)}); "
                              "choose one with --replica SEED")
        return self.replicas(seed)[0]


#: keys of a run's config.yaml that may differ from its checkpoint's for the commands that read its gates: the
#: epochs a resume may raise, and the name, which titles what they write and changes no number
FREE_TO_EDIT = ("learning.epochs", "name")


def load_run(run_dir: str | Path, skip: tuple[str, ...] = (), config: Config | None = None) -> SavedRun:
    """Read ``run_dir``'s config.yaml and checkpoint.npz (the controls every replica ended with, checked against the
    network of that config), refusing a run whose files (its task's data, a network file, a model card) no longer
    hold what it was trained on (``datafiles.check_files``; ``skip``: key paths not to check, such as ``task.path``
    for new inputs; ``config``: the run's config as the command uses it, its own with ``--set`` overrides, whose
    files are the ones checked: a file an override names anew is the user's choice). A run made before a revision
    that changed the circuit ``config`` builds is refused (``revisions.circuit_changed_since``), and so is one whose
    config.yaml was edited since its checkpoint (``FREE_TO_EDIT`` aside)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise CheckpointError(f"{run_dir}: not a run directory (no config.yaml); give a directory written by "
                              "`metamaterial train`")
    cfg = load_saved_config(run_dir / "config.yaml")
    used = cfg if config is None else config
    try:
        checkpoint = load_checkpoint(run_dir, build_network(cfg).number_of_edges())
    except CheckpointError:  # a network file edited since training is named as such, not as a damaged checkpoint
        pins = pinned_files(run_dir)
        if pins is not None:
            check_files(used, pins, run_dir, skip)
        raise
    edited = [] if checkpoint.config is None else \
        [k for k in config_differences(checkpoint.config, cfg) if k not in FREE_TO_EDIT]
    if edited:  # its gates were trained on the config the checkpoint holds, not on the edited one
        raise CheckpointError(f"{run_dir / 'config.yaml'}: differs from the config its checkpoint.npz was trained "
                              f"with in {listed(edited, 4)} (edited since); put those keys back: the gates fit the "
                              "config they were trained with (energy and transient take --set for a what-if)")
    change = circuit_changed_since(used, checkpoint.revision)
    if change is not None:
        raise CheckpointError(f"{run_dir}: was trained before revision {change.number} of the dynamics "
                              f"({change.date}: {change.what}), which changed the circuit this config builds: its "
                              "gates would be read on another circuit than they were trained on; train it anew with "
                              "another --out (this run directory stays as it is)")
    check_files(used, checkpoint.files, run_dir, skip)
    return SavedRun(run_dir, cfg, checkpoint.state.controls, list(checkpoint.seeds), checkpoint.state.epoch)


# -- eval ----------------------------------------------------------------------------------------------------
def read_inputs_csv(path: str | Path, setup: Setup) -> np.ndarray:
    """[P, n_in] input voltages from a CSV whose header names the run's inputs, in any order, one row per point:
    by the input nodes (``n15``), by a CSV task's input column names, or in a layered network or a network file by
    the nodes' own names (``in0``), each column in volts; where the task scales a dataset's features to volts
    (Iris, a CSV task with ``task.scale``), by the features' names in the dataset's own units (``sepal_length_cm``,
    scaled as the training data was) or as ``V(sepal_length_cm)`` in volts."""
    p = Path(path)
    nodes = [f"n{i}" for i in setup.circuit.inputs]
    kinds = [("netlist name", nodes), ("column name", column_names(setup)[0])]  # what each list of names is
    if setup.config.network.kind in ("layered", "file"):
        g = build_network(setup.config)
        kinds.append(("node name", [str(g.nodes[i].get("label", f"n{i}")) for i in setup.circuit.inputs]))
    features = feature_names(setup)  # in the dataset's units, not volts
    if features is not None:
        kinds.append(("feature name", features))
    choices = [names for _, names in kinds]
    others = [names for k, names in enumerate(choices) if names != nodes and names not in choices[:k]]
    text = read_text(p, ConfigError, "", "the inputs", "give a CSV file", "give a CSV file",
                     encoding="utf-8-sig")  # a spreadsheet may start it with a byte-order mark
    reader = csv.reader(io.StringIO(text, newline=""))
    numbered = [(reader.line_num, r) for r in reader if r]  # the line of each row, to name a bad value's
    rows = [r for _, r in numbered]
    want = ", or ".join(" ".join(names) for names in [nodes, *others])
    example = (f"give a header such as {','.join(nodes)} (the columns in any order)" if len(nodes) <= 8 else
               f"give a header naming each of the {len(nodes)} inputs once, as listed (the columns in any order)")
    if len(rows) < 2:
        got = "an empty file" if not rows else f"only the line {','.join(rows[0])}"
        raise ConfigError(f"{p}: needs a header naming the input nodes ({want}) and at least one row (got {got}); "
                          f"{example}, then one row of input values per point")
    header = [h.strip() for h in rows[0]]
    _refuse_ambiguous(p, header, kinds)
    order = []
    for k in range(len(nodes)):
        hit = [j for j, h in enumerate(header) if h in {names[k] for names in choices}]
        if len(hit) != 1:
            which = (f"no column is input {nodes[k]}" if not hit else
                     f"columns {' and '.join(str(j + 1) for j in hit)} are both input {nodes[k]}")
            raise ConfigError(f"{p}: the header must name each input node once ({want}) (got {','.join(header)}: "
                              f"{which}); {example}")
        order.append(hit[0])
    if len(header) != len(nodes):
        extra = [h for j, h in enumerate(header) if j not in order]
        raise ConfigError(f"{p}: the columns are the input nodes only ({want}) (got {','.join(header)}); remove the "
                          f"column{'s' if len(extra) > 1 else ''} {listed(extra, 8)}")
    x = np.empty((len(rows) - 1, len(nodes)))
    for i, (line, r) in enumerate(numbered[1:]):
        if len(r) != len(header):
            raise ConfigError(f"{p}:{line}: {len(r)} values, where the header names {len(header)} columns; give one "
                              "value per column")
        for k, j in enumerate(order):
            try:
                x[i, k] = float(r[j])
            except ValueError:
                got = repr(r[j]) if r[j].strip() else "an empty cell"
                raise ConfigError(f"{p}:{line}: {header[j]} must be a number (got {got}); correct that value") from None
    raw = np.array([features is not None and header[j] == features[k] for k, j in enumerate(order)])
    volts = np.where(raw, setup.task.scale.volts(x), x) if raw.any() else x
    bad = bad_value(np.where(raw, x, 0.0), volts=False) or bad_value(volts)  # a feature's own value first
    if bad is not None:
        i, j, want = bad
        scaled = f", {volts[i, j]:.4g} V as training scaled it" if raw[j] and np.isfinite(x[i, j]) else ""
        raise ConfigError(f"{p}:{numbered[i + 1][0]}: {header[order[j]]} must be {want} (got {x[i, j]:g}{scaled}); "
                          "correct that value")
    return volts


def _refuse_ambiguous(p: Path, header: list[str], kinds: list[tuple[str, list[str]]]) -> None:
    """Refuse a header name that reads as two different inputs, or as one in two units (``kinds``: what each list
    of the inputs' names is, the first their netlist names, the second their column names): a CSV task's column
    name of one input that is the network's name of another's node, as columns in_b,in_a on the nodes named
    in_a,in_b; a feature's name, read in the data's units, that is also its node's name, read in volts; a network
    file's node named n1 that is not node 1. The fix names the netlist names or, where one of them is ambiguous
    too (n1 above), the column names as outputs.csv writes them (``runfiles.node_names`` keeps them apart)."""
    nodes, columns = kinds[0][1], kinds[1][1]

    def readings(h: str) -> list[tuple[str, str]]:
        return [(kind, nodes[k]) for kind, names in kinds for k, name in enumerate(names) if name == h]

    def ambiguous(h: str) -> bool:
        read = readings(h)
        units = {kind == "feature name" for kind, _ in read}  # the data's own units, or volts
        return len({node for _, node in read}) > 1 or len(units) > 1

    for h in header:
        if ambiguous(h):
            said = " and ".join(f"the {kind} of input {node}" for kind, node in readings(h))
            fix = (f"as outputs.csv names them ({' '.join(columns)}" if any(map(ambiguous, nodes))
                   and not any(map(ambiguous, columns)) else f"by their netlist names ({' '.join(nodes)}")
            raise ConfigError(f"{p}: the header name {h} is ambiguous: it is {said} (got {','.join(header)}); name "
                              f"the columns {fix}, in any order)")


#: the points ``evaluate_run`` can evaluate besides new inputs
SPLITS = ("train", "test")


def evaluate_run(run: SavedRun, split: str = "train", inputs: np.ndarray | None = None, seed: int | None = None,
                 backend: str | None = None) -> dict:
    """Outputs of the trained network for each chosen replica (all, or the one of ``seed``): on the training
    points (``split="train"``), the held-out ones (``"test"``; under ``task.validation`` its validation set), or
    new ``inputs`` [P, n_in] (V; no targets, so no loss). Returns a JSON-ready dict; outputs [P, n_out] V, loss
    (MSE to the targets) V^2, and under a hinge loss hinge_loss V (``Trainer.evaluate``)."""
    if not isinstance(run, SavedRun):
        raise ValidationError(f"evaluate_run: run must be a SavedRun (got {type(run).__name__} {shown(run)}); give "
                              "load_run(run_dir)")
    if split not in SPLITS:  # anything else was evaluated as "train" without a word
        raise ConfigError(f"evaluate_run: split must be one of {', '.join(SPLITS)} (got {shown(split)}); give "
                          "\"train\" for the training points or \"test\" for the held-out ones")
    setup = build(with_backend(run.config, backend))
    task = setup.task
    picked = run.replicas(seed)
    controls = run.controls[picked]
    ins, outs, classes = column_names(setup)
    result = {"run": str(run.run_dir), "name": run.config.name, "task": task.name, "epoch": run.epoch,
              "input_names": ins, "output_names": outs, "classes": classes}
    # replicas sharing a circuit are solved together; under per-replica mismatch each is its own chip
    groups = ([(replica_setup(setup, run.seeds[r]), [i]) for i, r in enumerate(picked)] if chips_per_replica(setup)
              else [(setup, list(range(len(picked))))])
    if inputs is not None:
        x, y, split = _new_inputs(inputs, setup.circuit.n_inputs), None, "inputs"
    elif split == "test" and (task.test_inputs is None or not len(task.test_inputs)):
        raise ConfigError(f"--split test: the run holds out no points (task {task.name}, task.test_fraction "
                          f"{run.config.task.test_fraction}); evaluate --split train or new --inputs")
    else:
        x, y = (task.test_inputs, task.test_targets) if split == "test" else (task.inputs, task.targets)
    parts = []
    for s, idx in groups:
        with make_solver(s) as solver:
            result["backend"] = solver.name
            if inputs is None:
                parts.append(make_trainer(s, solver).evaluate(controls[idx], test=split == "test"))
            else:  # new inputs: the outputs only
                reps, points = len(idx), len(x)
                shared = controls[idx[0]] if reps == 1 else np.repeat(controls[idx], points, axis=0)
                free = solver.solve(s.circuit, shared, np.tile(x, (reps, 1))).voltages
                out = s.circuit.output_values(free).reshape(reps, points, -1)
                parts.append(Evaluation(out, None, None, None, free))
    ev = SimpleNamespace(**{k: None if getattr(parts[0], k) is None else np.concatenate([getattr(p, k) for p in parts])
                            for k in ("outputs", "loss", "accuracy", "min_margin", "hinge_loss")})
    rows = []
    for i, r in enumerate(picked):
        row = {"seed": run.seeds[r], "outputs": ev.outputs[i].tolist()}
        row.update({k: float(getattr(ev, k)[i]) for k in ("loss", "hinge_loss") if getattr(ev, k) is not None})
        if ev.accuracy is not None:
            margin = float(ev.min_margin[i])
            row.update(accuracy=float(ev.accuracy[i]), min_margin_v=margin, success=bool(succeeded(margin)))
        if task.is_classification:
            row["predicted"] = _names(task.predict(ev.outputs[i]), classes)
        rows.append(row)
    if y is not None:
        result["targets"] = y.tolist()
        if task.is_classification:
            result["true"] = _names((task.test_classes if split == "test" else task.classes), classes)
    result.update(split=split, inputs=np.asarray(x).tolist(), replicas=rows)
    if split == "test":
        result["scored_on"] = task.scored  # held-out points, or the validation set of task.validation
    return result


def _new_inputs(inputs: object, n_inputs: int) -> np.ndarray:
    """``evaluate_run``'s new ``inputs`` as float [P, n_inputs] (V; a row [n_inputs] is one point), refused as
    ``read_inputs_csv`` refuses a file's: no point (a reshape's ValueError), or a voltage past ``MAX_VOLTS`` (data in
    millivolts, which a file's inputs are refused for and these were solved at)."""
    x = np.atleast_2d(real_array(inputs, "evaluate_run", "inputs", "input voltages (V)",
                                 "give a float array, one row per point", axes=("point", "column"), leading=True))
    if x.ndim != 2 or x.shape[1] != n_inputs or not len(x):
        raise ValidationError(f"evaluate_run: inputs must have shape (P, {n_inputs}), one row of {n_inputs} input "
                              f"voltage(s) (V) per point, one point or more (got shape {np.shape(inputs)}); give e.g. "
                              f"{[[0.0] * n_inputs]}")
    bad = bad_value(x)
    if bad is not None:
        i, j, want = bad
        raise ValidationError(f"evaluate_run: inputs must be {want} (got {x[i, j]:g} at point {i}, column {j}); give "
                              "volts (0.45, not 450 mV)")
    return x


def _names(idx: np.ndarray, classes: list[str] | None) -> list:
    return [int(k) if classes is None else classes[k] for k in idx]


# -- netlist RUN_DIR -----------------------------------------------------------------------------------------
def write_run_netlists(run: SavedRun, out_dir: Path, seed: int | None = None, backend: str | None = None,
                       points: str | None = None) -> tuple[list[Path], str, list[str]]:
    """``free_k.cir`` and ``clamped_k.cir`` for each training point k of ``points`` (``points.point_indices``) at
    the trained controls of one replica (the run's only one, or the one of ``seed``); the clamped values come from
    the free solve on the run's backend (or ``backend``). (Their paths, which points they are, the names of an
    earlier call's netlist files removed from ``out_dir``: ``points.write_point_netlists``.)"""
    r = run.one_replica(seed)
    setup = replica_setup(build(with_backend(run.config, backend)), run.seeds[r])  # its own chip, if per replica
    controls = run.controls[r]
    task = setup.task
    idx = point_indices(points, task.n_points, setup.circuit.n_edges)
    netlist_folder(out_dir, idx)  # before the solve
    free, clamps = point_phases(setup, controls, idx, clamped=False)[:2]
    paths, skipped, removed = write_point_netlists(setup, idx, controls, free, clamps, out_dir,
                                                   f"{run.config.name} seed {run.seeds[r]} epoch {run.epoch}")
    return paths, describe_points(idx, task.n_points) + skipped, removed


def outside_training(setup: Setup, x: np.ndarray, source: str | Path) -> list[str]:
    """A warning when new inputs ``x`` [P, n_in] (V) leave the range of the training points' inputs by more than a
    millivolt: the outputs there extrapolate what the network learned. It names what the CSV's columns are read as,
    since values in the wrong units (volts under a feature's name, or a feature's units under a node's) land there."""
    trained = setup.task.inputs
    lo, hi = trained.min(axis=0), trained.max(axis=0)
    out = (x < lo - 1e-3) | (x > hi + 1e-3)  # [P, n_in]
    if not out.any():
        return []
    names = column_names(setup)[0]
    row, k = np.argwhere(out)[0]
    features = feature_names(setup)
    units = ("; the inputs are the voltages the circuit sees" if features is None else
             f"; a column named as the dataset's feature ({features[k]}) is read in the dataset's units and scaled "
             f"as the training data was, one named {names[k]} or by its node in volts")
    return [f"{source}: {int(out.any(axis=1).sum())} of {len(x)} row(s) hold inputs outside the training points' "
            f"range (row {row + 1}: {names[k]} {x[row, k]:.4g} V, trained on {lo[k]:.4g}-{hi[k]:.4g} V), where the "
            f"outputs extrapolate{units}"]


__all__ = ["OUTPUTS_CSV", "SavedRun", "load_run", "column_names", "write_outputs_csv", "read_inputs_csv",
           "outside_training",
           "evaluate_run", "write_run_netlists"]
