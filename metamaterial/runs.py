"""Training into a run directory: one orchestrator for one replica or many, checkpoints, and what a run leaves.

``train_replicas`` trains one replica per seed as one batch (a single run is the case of one seed), checkpointed
every ``learning.checkpoint_every`` epochs and resumable from its directory; ``train_run`` and ``ensemble_run``
are the ``train`` command's two reports of it: a single run's metrics, gate trajectory, netlists and plots, or an
ensemble's per-seed table and success rate.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from . import diagnostics
from .analysis import confusion_matrix, spread
from .config import Config, with_backend
from .configfile import as_config, config_differences, dump_config, load_saved_config, read_document
from .datafiles import check_files, pin_files
from .errors import CheckpointError, ConfigError, ValidationError, shown, whole_number
from .experiment import (
    Setup,
    build,
    check_learnable,
    chips_per_replica,
    initial_controls,
    make_trainer,
    rate_source,
    reachable_margin,
    replica_setup,
)
from .learning.trainer import SUCCESS_MARGIN_V, Trainer, TrainState
from .points import run_netlists
from .replacement import (
    discard_set_aside,
    failed_netlists,
    finish_replace,
    folder_lock,
    put_back,
    remove_failed_netlists,
    remove_run_files,
    replaced_line,
    set_aside,
    training_lock,
)
from .replicas import ChipTrainers
from .revisions import changed_since
from .runfiles import (
    CHECKPOINT,
    RUN_FILES,
    Checkpoint,
    check_edges,
    check_writable,
    column_names,
    json_text,
    load_checkpoint,
    refuse_a_yaml_file,
    save_checkpoint,
    write_atomically,
    write_outputs_csv,
    writing,
)
from .sweep.store import sweep_in
from .units import listed

#: ``on_warning(kind, text)``: kind "warning" (learning cannot or did not happen) or "note" (how it ended);
#: ``on_replace(kind, text)``: kind "removed" (a run replaced) or "restored" (put back: ``_train_into``), or
#: "finished" (a ``train --replace`` a kill had cut short, finished before anything else: ``finish_replace``)
Report = Callable[[str, str], None]


# -- what a train command does -------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainPlan:
    """What ``train`` does, decided before anything is trained (``plan_train``): the config, the run directory,
    how many seeds (replicas), the checkpoint it continues from (read once; None: it trains afresh) and whether it
    replaces the run the directory holds."""

    config: Config
    run_dir: Path
    n_seeds: int
    resume: Checkpoint | None = None
    replace: bool = False


def plan_train(config: Config | str | Path | None, *, out: Path | None = None, resume: Path | None = None,
               replace: bool = False, seeds: int | None = None, overrides: list[str] = (),
               on_replace: Report | None = None) -> TrainPlan:
    """The decisions of ``train`` before it trains: ``config`` (a config, a config file read with ``overrides``,
    or None for ``resume``'s own config.yaml with them) into ``out`` (default runs/<name>), or continuing the run in
    ``resume``; ``replace``: train afresh where a run is; ``seeds`` replicas (default 1, or the resumed run's own).
    Refuses contradictory options; finishes a ``train --replace`` of the run directory that a kill cut short
    (``finish_replace``, told to ``on_replace("finished", text)``) before anything there is read; reads the
    checkpoint to resume, once for every later use (``open_run_dir``, ``train_replicas``)."""
    if resume is not None and replace:
        raise ConfigError("--replace and --resume: choose one (--replace trains afresh, --resume continues)")
    if resume is not None and out is not None and Path(out) != Path(resume):
        raise ConfigError("--out and --resume name different directories; give only --resume DIR")
    if seeds is not None and seeds < 1:
        raise ConfigError(f"--seeds: must be >= 1 (got {seeds}); give the number of seeds to train, 1 or more")
    if config is None and resume is None:
        raise ConfigError("train: give a CONFIG file, or --resume DIR to continue a run")
    if resume is not None:
        refuse_a_yaml_file(Path(resume), "--resume")
        _refuse_a_sweep(Path(resume), "--resume")
        _check_writable(Path(resume), resume=True)  # not at its first checkpoint, after training up to it
        _tell_finished(on_replace, Path(resume))  # before its config.yaml and checkpoint are read
        if not (Path(resume) / "config.yaml").is_file():
            raise CheckpointError(f"{resume}: not a run directory (no config.yaml); check --resume")
    cfg = _resumed_config(Path(resume), overrides) if config is None else as_config(config, "train", overrides)
    if resume is None:
        run_dir = Path(out) if out is not None else Path("runs") / cfg.name
        _refuse_a_sweep(run_dir, "--out", replace)
        _check_writable(run_dir)
        _tell_finished(on_replace, run_dir)
        return TrainPlan(cfg, run_dir, 1 if seeds is None else seeds, None, replace)
    checkpoint = load_checkpoint(Path(resume))  # its edges are checked once the network is built
    n_seeds = len(checkpoint.seeds) if seeds is None else seeds
    try:
        _check_seeds(Path(resume), checkpoint.seeds, list(range(cfg.seed, cfg.seed + n_seeds)))
    except CheckpointError:
        _check_same_config(Path(resume), cfg, checkpoint)  # another config (its seed too) is named as such
        raise
    return TrainPlan(cfg, Path(resume), n_seeds, checkpoint)


def _refuse_a_sweep(run_dir: Path, option: str, replace: bool = False) -> None:
    """Refuse a run directory that holds a sweep (``sweep.store.sweep_in``), before anything is written there: the
    run's summary.json would overwrite the sweep's, and ``--replace`` would take the sweep's files for the user's."""
    sweep = sweep_in(run_dir)
    if sweep is None:
        return
    if option == "--resume":
        raise CheckpointError(f"{run_dir}: holds {sweep}, not a run to resume (a sweep resumes its points "
                              f"itself); give the run directory of a `metamaterial train`, or run the sweep's "
                              "command again to finish its points")
    never = " (--replace replaces a run, never a sweep)" if replace else ""
    raise CheckpointError(f"{run_dir}: holds {sweep}, whose summary.json a run would overwrite{never}; train "
                          "into another --out")


def _check_writable(run_dir: Path, resume: bool = False) -> None:
    """Refuse an existing run directory where no file can be created (``runfiles.check_writable``): a resume would
    otherwise train up to its first checkpoint before failing to write it."""
    check_writable(run_dir, "the run directory must be writable to resume: make it writable, or resume a copy in a "
                   "writable place" if resume else "choose another --out")


def _check_seeds(run_dir: Path, saved: list[int], seeds: list[int]) -> None:
    if list(saved) != list(seeds):
        raise CheckpointError(f"{run_dir}: holds a run of seeds {seed_span(saved)} ({len(saved)}), not "
                              f"{seed_span(seeds)} ({len(seeds)}); resume with the same --seeds")


def _resumed_config(run_dir: Path, overrides: list[str]) -> Config:
    return load_saved_config(run_dir / "config.yaml", overrides)


def _tell_finished(on_replace: Report | None, run_dir: Path) -> None:
    said = finish_replace(run_dir)
    _tell(on_replace, None if said is None else ("finished", said))


# -- run directories and checkpoints ------------------------------------------------------------------------
def open_run_dir(cfg: Config, run_dir: Path, resume: bool, checkpoint: Checkpoint | None = None) -> Path:
    """Check a run directory to resume (same resolved config, key by key; a checkpoint of a revision of the dynamics
    that trains it alike, of the same data; ``checkpoint``: its checkpoint, read here if not given), or create a new
    one (refusing one that holds a run) and write config.yaml into it."""
    if resume:
        saved = run_dir / "config.yaml"
        if not saved.exists():
            raise CheckpointError(f"{run_dir}: not a run directory (no config.yaml); check --resume")
        checkpoint = checkpoint or load_checkpoint(run_dir)
        differ = _check_same_config(run_dir, cfg, checkpoint)
        epoch = checkpoint.state.epoch
        if differ == ["learning.epochs"] and cfg.learning.epochs <= epoch:
            raise CheckpointError(f"learning.epochs: the run in {run_dir} is at epoch {epoch} (got "
                                  f"{cfg.learning.epochs}); to train it on, give more epochs than {epoch}")
        change = changed_since(cfg, checkpoint.revision)
        if change is not None:
            raise CheckpointError(f"{run_dir}: was trained before revision {change.number} of the dynamics "
                                  f"({change.date}: {change.what}), which changed how this config trains: resumed, it "
                                  "would not end where an uninterrupted run does; train it anew with another --out "
                                  "(this run directory stays as it is)")
        check_files(cfg, checkpoint.files, run_dir)  # resumed on other data, it would end elsewhere
        if differ:  # trained on to other epochs: the run's config.yaml says how far it now goes
            _write_atomically(saved, dump_config(cfg))
        return run_dir
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CheckpointError(f"{run_dir}: cannot create the run directory ({err.strerror}); choose another --out") \
            from err
    if (run_dir / CHECKPOINT).exists():
        raise _holds_a_run(cfg, run_dir)
    if (run_dir / "config.yaml").exists():
        raise CheckpointError(f"{run_dir}: holds a config.yaml but no {CHECKPOINT} (not a run directory, or a run "
                              "killed before its first checkpoint), which training would overwrite; choose another "
                              "--out, or remove that config.yaml")
    held = [name for name in RUN_FILES if (run_dir / name).exists()]
    if held:  # a run writes config.yaml before any of them: these are not a run's
        raise CheckpointError(f"{run_dir}: holds {listed(held, 4)} but no {CHECKPOINT} (not a run's), which "
                              "training would overwrite; choose another --out, or move "
                              + ("that file" if len(held) == 1 else "those files"))
    _write_text(run_dir / "config.yaml", dump_config(cfg))
    return run_dir


def _check_same_config(run_dir: Path, cfg: Config, checkpoint: Checkpoint) -> list[str]:
    """Refuse to resume the run in ``run_dir`` with ``cfg`` unless it is the config of the run's config.yaml and the
    one its checkpoint trained (where the checkpoint recorded it), ``learning.epochs`` aside; the key paths at which
    config.yaml and ``cfg`` differ (at most ``learning.epochs``)."""
    saved = run_dir / "config.yaml"
    differ = config_differences(saved.read_text(), cfg)
    if differ and differ != ["learning.epochs"]:
        raise CheckpointError(f"{saved}: differs from the config given now in {', '.join(differ)}; resume with "
                              "the same config and --set options (learning.epochs alone may change), or start a "
                              "new run with --out")
    edited = [] if checkpoint.config is None else \
        [k for k in config_differences(checkpoint.config, cfg) if k != "learning.epochs"]
    if edited:  # config.yaml was edited since: resumed, the run would end where neither config's run ends
        raise CheckpointError(f"{saved}: differs from the config its {CHECKPOINT} was trained with in "
                              f"{', '.join(edited)} (edited since that checkpoint was written); put those keys back "
                              "to resume it, or train the config as it is now into a new --out")
    return differ


def _write_atomically(path: Path, text: str) -> None:
    """``path`` holds ``text`` whole or is left as it was, however the process ends (an error or Ctrl-C on the way
    leaves no part file: ``writing``)."""
    part = path.with_name(path.name + ".part")
    with writing(path, part):
        part.write_text(text)
        os.replace(part, path)


def _write_text(path: Path, text: str) -> None:
    """``path.write_text(text)``, whose failure names ``path`` (``writing``)."""
    with writing(path):
        path.write_text(text)


def _holds_a_run(cfg: Config, run_dir: Path) -> CheckpointError:
    """The refusal to train ``cfg`` afresh into ``run_dir``, which holds a run, saying what that run is by its own
    config.yaml (it is finished when its checkpoint reached that config's ``learning.epochs``, whatever ``cfg``
    asks) and what to do: continue a stopped run (the exact command), or train anew with --replace or elsewhere;
    when ``cfg`` asks a finished run for more epochs and for nothing else, how to train it on."""
    anew = "train it again there with --replace, or choose another --out"
    resume = f"metamaterial train --resume {shlex.quote(str(run_dir))}"
    try:
        epoch = load_checkpoint(run_dir).state.epoch
    except CheckpointError:
        return CheckpointError(f"{run_dir}: already holds a run, whose {CHECKPOINT} cannot be read; {anew}")
    saved = run_dir / "config.yaml"
    try:
        epochs = read_document(saved).get("learning", {}).get("epochs")
    except (ConfigError, AttributeError):
        epochs = None
    if not isinstance(epochs, int) or isinstance(epochs, bool):
        return CheckpointError(f"{run_dir}: already holds a run at epoch {epoch}, with no learning.epochs readable "
                               f"in its config.yaml; {anew}")
    if epoch < epochs:
        return CheckpointError(f"{run_dir}: already holds a run stopped at epoch {epoch} of its {epochs}; train it "
                               f"again there with --replace, choose another --out, or continue it with: {resume}")
    more = ""
    with contextlib.suppress(ConfigError):
        if cfg.learning.epochs > epochs and config_differences(saved.read_text(), cfg) == ["learning.epochs"]:
            n = cfg.learning.epochs
            more = f"; to train it on to epoch {n}: {resume} --set learning.epochs={n}"
    return CheckpointError(f"{run_dir}: already holds a finished run (epoch {epoch} of its {epochs}); {anew}{more}")


# -- the one orchestrator -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trained:
    """What ``train_replicas`` gives: the setup, its trainer (its solver still open: close it when done; one trainer
    per chip under per-replica mismatch), the final state, the seeds, the wall time (s, of the training loop;
    including the time before a resume as its checkpoint saved it, so not the epochs a kill lost after that
    checkpoint, which the resumed run trains again) and the warnings of the checks before training."""

    setup: Setup
    trainer: Trainer | ChipTrainers
    state: TrainState
    seeds: list[int]
    wall_s: float
    warnings: list[str]


def train_replicas(cfg: Config | str | Path, seeds: list[int], *, run_dir: Path | None = None,
                   resume: Checkpoint | None = None, progress: bool = False,
                   on_epoch: Callable[[Trainer, TrainState], None] | None = None, every: int = 1,
                   backend: str | None = None, on_warning: Report | None = None,
                   files: dict | None = None, **params) -> Trained:
    """Train one replica per seed as one batch. Replica r draws its initial controls, data order, desynchronous
    masks and read noise exactly as a run with ``seed=seeds[r]`` does; what ``build`` draws from the config's own
    seed (twin mismatch without its own seed, the per-edge learning bias) is shared by every replica, except the
    mismatch under ``device.mismatch.per_replica``: then replica r is the chip a run with ``seed=seeds[r]`` draws
    (``replicas.ChipTrainers`` trains such replicas in step).

    Every ``learning.checkpoint_every`` epochs the solver forgets its warm starts, so that what follows does not
    depend on what preceded; with ``run_dir`` (already opened by ``open_run_dir``) the state is also checkpointed
    there then and at the end, and ``resume`` (its checkpoint, ``load_checkpoint``) continues from it: a resumed
    run ends where an uninterrupted one does,
    and a run with a run directory ends where one without does, to the last bit. ``on_epoch(trainer, state)`` is
    called at the start (a new run's epoch 0) and after every epoch that is a multiple of ``every``.
    ``params`` change ``TrainParams`` (e.g. ``eval_every``) without touching the config; ``backend`` replaces
    ``simulator.backend`` (``config.with_backend``). The checks before training (``experiment.check_learnable``)
    are passed to ``on_warning("warning", text)`` before the first epoch and returned in ``Trained.warnings``.
    ``files``: the content hashes of the files the config reads (``datafiles.pin_files``) that a new run directory
    records, when the caller has just checked them against the files (a sweep's point); by default hashed here.
    ``cfg``: a Config, or a config file's path (``configfile.as_config``).
    """
    cfg = as_config(cfg, "train_replicas")
    seeds = _seed_list(seeds)
    setup = build(with_backend(cfg, backend))
    warnings = check_learnable(setup)
    for text in warnings:
        if on_warning is not None:
            on_warning("warning", text)
    if chips_per_replica(setup) and len(seeds) > 1:  # one chip per replica: one trainer (and solver) each
        trainer = ChipTrainers([make_trainer(replica_setup(setup, s), **params) for s in seeds])
    else:  # one replica is the chip its seed draws, whatever the config's seed (the same setup without per_replica)
        setup = replica_setup(setup, seeds[0])
        trainer = make_trainer(setup, **params)
    if run_dir is not None and hasattr(trainer.solver, "keep_failed"):
        trainer.solver.keep_failed = str(run_dir)  # a failing netlist is kept with the run, not in the temp folder
    every_reset = cfg.learning.checkpoint_every
    every_ckpt = every_reset if run_dir is not None else 0
    try:
        # the content of the files the run reads, recorded with it when it is created (``datafiles``); a resumed
        # run keeps what it recorded (a run made before they were recorded, none)
        files = None if run_dir is None else resume.files if resume is not None else \
            files if files is not None else pin_files(setup.config)
        text = None if run_dir is None else dump_config(cfg)  # what a resume checks the run's config.yaml against
        if resume is not None:
            check_edges(resume, setup.circuit.n_edges)
            state, saved_seeds, wall_before = resume.state, resume.seeds, resume.wall_s
            _check_seeds(run_dir, saved_seeds, seeds)
        else:
            rngs = [np.random.default_rng(s) for s in seeds]
            state = trainer.init_state(np.stack([initial_controls(setup, rng) for rng in rngs]), rngs)
            wall_before = 0.0
            if every_ckpt:
                save_checkpoint(run_dir, state, seeds, 0.0, files, text)
            if on_epoch is not None:
                on_epoch(trainer, state)
        t0 = time.perf_counter()
        bar = _progress(progress, trainer.params.epochs, state.epoch,
                        cfg.name if len(seeds) == 1 else f"{cfg.name} x{len(seeds)}")

        def after_epoch(st: TrainState) -> None:
            if bar is not None:
                if st.history and st.history[-1]["epoch"] == st.epoch:
                    bar.set_postfix(_postfix(st.history[-1]), refresh=False)
                bar.update(st.epoch - bar.n)
            if every_reset and st.epoch % every_reset == 0:
                if every_ckpt:
                    save_checkpoint(run_dir, st, seeds, wall_before + time.perf_counter() - t0, files, text)
                trainer.solver.reset()  # what follows a checkpoint must not depend on what preceded it
            if on_epoch is not None and st.epoch % every == 0:
                on_epoch(trainer, st)

        stops = [k for k in (every_reset, every if on_epoch else 0) if k]
        try:
            # called at every checkpoint, callback and evaluation; the epochs between run in one go
            state = trainer.run(state, after_epoch, every=math.gcd(*stops, trainer.params.eval_every))
        finally:
            if bar is not None:
                bar.close()
        wall = wall_before + time.perf_counter() - t0
        if run_dir is not None:  # the final gates, also under checkpoint_every 0 (no checkpoint on the way)
            save_checkpoint(run_dir, state, seeds, wall, files, text)
    except BaseException:
        trainer.solver.close()
        raise
    return Trained(setup, trainer, state, seeds, wall, warnings)


def _seed_list(seeds: object) -> list[int]:
    """``train_replicas``' seeds as a list of ints, refusing what is not one or more seeds a config takes (a count of
    seeds was "'int' object is not iterable", no seed "need at least one array to stack")."""
    fix = "give one seed per replica, e.g. [0, 1, 2] or list(range(4))"
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise ValidationError(f"train_replicas: seeds must be a list of ints, one per replica (got "
                              f"{type(seeds).__name__} {shown(seeds)}); {fix}")
    given, out = list(seeds), []
    for s in given:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise ValidationError(f"train_replicas: seeds must be ints >= 0 (got {shown(s)} in "
                                  f"{shown(given)}); {fix}")
        out.append(int(s))
    if not out:
        raise ValidationError(f"train_replicas: seeds must name one replica or more (got {shown(seeds)}); {fix}")
    twice = next((s for k, s in enumerate(out) if s in out[:k]), None)
    if twice is not None:  # the same replica trained twice: it counted twice in every median over the seeds
        raise ValidationError(f"train_replicas: seeds must differ, one replica each (got {twice} twice in "
                              f"{shown(given)}); {fix}")
    return out


def mismatch_record(done: Trained, run_dir: Path | None = None) -> dict | None:
    """How the replicas' twin mismatch was drawn (None without one), for summary.json; with ``run_dir``, also the
    draws themselves in mismatch.npz: ``seeds`` [R], ``dvto`` [R, 2, E] (V) and ``kscale`` [R, 2, E] (row 0 of each
    replica's pair the free twin)."""
    setup = done.setup
    if setup.circuit.mismatch is None:
        return None
    mm = setup.config.device.mismatch
    per = chips_per_replica(setup)
    shared = setup.config.seed if mm.seed is None else mm.seed
    draws = [replica_setup(setup, s).circuit.mismatch for s in done.seeds]
    if run_dir is not None:
        write_atomically(run_dir / "mismatch.npz", seeds=np.array(done.seeds),
                         dvto=np.stack([m.dvto for m in draws]), kscale=np.stack([m.kscale for m in draws]))
    return {"vto_sigma_v": mm.vto_sigma, "k_sigma": mm.k_sigma, "per_replica": per, "twins": mm.twins,
            "drawn_from": ("numpy.random.default_rng([replica seed, 1]), one chip per replica" if per else
                           f"numpy.random.default_rng([{shared}, 1]), shared by every replica"),
            "file": None if run_dir is None else "mismatch.npz"}


def after_training(done: Trained, on_warning: Report | None = None, free: np.ndarray | None = None
                   ) -> tuple[list[str], list[str]]:
    """(warnings, notes) after training: controls that barely moved (``diagnostics.moved_warnings``, measured from
    each replica's initial controls, drawn again from its seed), with a single run's final free operating points
    ``free`` [P, N] an output held by leakage (``diagnostics.leakage_warnings``), when hinge training stopped
    updating, and replicas that could not differ; each is also passed to ``on_warning(kind, text)`` with kind
    "warning" or "note"."""
    setup, state = done.setup, done.state
    initial = np.stack([initial_controls(setup, np.random.default_rng(s)) for s in done.seeds])
    dyn = setup.dynamics
    first, last = state.history[0], state.history[-1]
    accuracies = (first["accuracy"], last["accuracy"]) if setup.rule.hinge and first.get("accuracy") is not None \
        else None  # a hinge learns by its margins: the output loss may rise meanwhile
    warnings = diagnostics.moved_warnings(setup.circuit.device, initial, state.controls, state.n_updates,
                                          (first["loss"], last["loss"]), dyn.low, dyn.high, setup.rule.rate,
                                          rate_source(setup), state.epoch, accuracies, setup.rule.nudge)
    if free is not None:
        warnings += diagnostics.leakage_warnings(setup.circuit, state.controls[0], free)
    # a hinge learns by its margins: its output loss may rise meanwhile, by design
    notes = diagnostics.hinge_notes(state.history, state.epoch, setup.rule.margin,
                                    reachable_margin(setup.task)) if setup.rule.hinge else \
        diagnostics.loss_rise_notes(state.history, state.epoch)
    notes += diagnostics.identical_replicas_notes(initial, state.controls)
    if on_warning is not None:
        for kind, texts in (("warning", warnings), ("note", notes)):
            for text in texts:
                on_warning(kind, text)
    return warnings, notes


def seed_span(seeds: list[int]) -> str:
    """Consecutive seeds as one would write them: ``0..7``, or ``3`` for one."""
    return str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}..{seeds[-1]}"


def _postfix(row: dict) -> dict[str, str]:
    """The progress bar's postfix of one history row: the loss trained (under a hinge the hinge loss, in mV, else
    the MSE in V^2), then training and held-out accuracy where the task has them (medians over replicas)."""
    if row.get("hinge_loss") is not None:
        out = {"hinge_mV": f"{1e3 * float(np.median(row['hinge_loss'])):.3g}"}
    else:
        out = {"loss": f"{float(np.median(row['loss'])):.3g}"}
    for key, name in (("accuracy", "acc"), ("test_accuracy", "test_acc")):
        if row.get(key) is not None:
            out[name] = f"{float(np.median(row[key])):.4f}"
    return out


def _progress(enabled: bool, total: int, start: int, name: str):
    if not enabled:
        return None
    if not sys.stderr.isatty():  # a log file would get every redraw: a plain line now and then instead
        return _LogLines(total, start, f"train {name}")
    from tqdm import tqdm  # noqa: PLC0415
    return tqdm(total=total, initial=start, desc=f"train {name}", unit="epoch", dynamic_ncols=True, mininterval=0.5)


class _LogLines:
    """Progress where stderr is not a terminal (a log file, a batch job): one line per ``every`` seconds at most,
    the first after ``every`` seconds (a short run prints none), with the epoch, the elapsed time, an estimate of
    the time left and the last evaluation (the calls tqdm's bar takes in ``train_replicas``)."""

    def __init__(self, total: int, start: int, name: str, every: float = 30.0) -> None:
        self.total, self.n, self.first, self.name, self.every = total, start, start, name, every
        self.t0 = self.last = time.monotonic()
        self.postfix: dict[str, str] = {}

    def set_postfix(self, postfix: dict[str, str], refresh: bool = False) -> None:
        self.postfix = postfix

    def update(self, k: int) -> None:
        self.n += k
        now = time.monotonic()
        if now - self.last < self.every or self.n >= self.total:
            return
        self.last, took = now, now - self.t0
        left = took / max(self.n - self.first, 1) * (self.total - self.n)
        shown = "".join(f", {k} {v}" for k, v in self.postfix.items())
        print(f"{self.name}: epoch {self.n}/{self.total}, {took:.0f} s, about {left:.0f} s left{shown}",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


def succeeded(min_margin: np.ndarray | float | None) -> np.ndarray | bool | None:
    """Whether a classification is solved: every point correct by ``SUCCESS_MARGIN_V`` (None for regression)."""
    if min_margin is None:
        return None
    return np.asarray(min_margin) >= SUCCESS_MARGIN_V


# -- the train command's reports ------------------------------------------------------------------------
@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    summary: dict
    state: TrainState
    figures: list[Path] = field(default_factory=list)  # the PNG files drawn (none with plots off)


def train_run(cfg: Config | str | Path, run_dir: Path, *, resume: bool = False, replace: bool = False,
              backend: str | None = None, progress: bool = False, plots: bool = True, on_warning: Report | None = None,
              on_replace: Report | None = None) -> RunResult:
    """Train ``cfg`` (one replica, seed ``cfg.seed``) into ``run_dir``; with ``resume`` continue from its checkpoint,
    with ``replace`` train afresh where a run was (its files deleted once the new run has a checkpoint, and
    ``on_replace`` told: ``_train_into``).

    Writes config.yaml, metrics.csv, summary.json (with the ``warnings`` and ``notes`` of the checks before and
    after training, each also passed to ``on_warning``), gates.csv, outputs.csv (per training point: inputs,
    targets, final outputs), free.cir/clamped.cir (final gates, all training points), PNG plots and checkpoint.npz
    every ``learning.checkpoint_every`` epochs. ``cfg``: a Config, or a config file's path (``configfile.as_config``).
    """
    plan = plan_train(as_config(cfg, "train_run"), out=None if resume else run_dir, resume=run_dir if resume else None,
                      replace=replace, seeds=1, on_replace=on_replace)
    return train_single(plan, backend=backend, progress=progress, plots=plots, on_warning=on_warning,
                        on_replace=on_replace)


def train_single(plan: TrainPlan, *, backend: str | None = None, progress: bool = False, plots: bool = True,
                 on_warning: Report | None = None, on_replace: Report | None = None) -> RunResult:
    """``train_run`` of a ``plan_train`` of one seed."""
    run_dir, done = _train_into(plan, backend, progress, on_warning, on_replace)
    with done.trainer.solver:
        one = one_replica(done.state)
        final = done.trainer.evaluate(one.controls)
        summary = _summary(done, one, final)
    warnings, notes = after_training(done, on_warning, final.free)
    summary.update(mismatch=mismatch_record(done, run_dir), warnings=done.warnings + warnings, notes=notes)
    figures = _write_single(run_dir, done.setup, one, final, summary, plots)
    return RunResult(run_dir, summary, done.state, figures)


def _train_into(plan: TrainPlan, backend: str | None, progress: bool, on_warning: Report | None,
                on_replace: Report | None) -> tuple[Path, Trained]:
    """``train_replicas`` of the plan's seeds cfg.seed .. cfg.seed + n_seeds - 1 into its run directory
    (``open_run_dir``); with ``replace``, the run there is set aside (``set_aside``) and deleted once the new run has
    a checkpoint to keep, or put back if it stops before (``put_back``): a refused or failed start leaves the folder
    as it was. What happened to the old run is told to ``on_replace(kind, text)``, kind "removed" or "restored".
    Every train holds its folder's lock until its end (``replacement.training_lock``), so that no second train writes
    into it and no other command takes a running replace for one a kill cut short (``finish_replace``)."""
    cfg = with_backend(plan.config, backend)  # the run directory's config.yaml names the backend it ran on
    run_dir, resume, replace = plan.run_dir, plan.resume, plan.replace
    with contextlib.ExitStack() as held:
        created = not run_dir.exists()
        held.enter_context(training_lock(run_dir, resume is not None))
        kept = set_aside(run_dir) if replace else None
        # where no run was set aside, the netlists ngspice failed on in an earlier run there are what metamaterial
        # wrote all the same: removed as a run's files are, once the new run has a checkpoint
        stale = failed_netlists(run_dir) if replace and kept is None else []
        found = set() if created or not run_dir.is_dir() else {p.name for p in run_dir.iterdir()}
        try:
            open_run_dir(cfg, run_dir, resume is not None, resume)
            if created:  # the folder is ours now: lock it (another train into it then had to find it first)
                held.enter_context(folder_lock(run_dir))
            done = train_replicas(cfg, list(range(cfg.seed, cfg.seed + plan.n_seeds)), run_dir=run_dir, resume=resume,
                                  progress=progress, backend=backend, on_warning=on_warning)
        except BaseException as err:  # refused or failed before it trained anything: leave the folder as it was found
            if resume is not None or not _untrained(run_dir, interrupted=isinstance(err, KeyboardInterrupt)):
                if kept is not None:  # the new run keeps its checkpoint, to resume
                    _tell(on_replace, ("removed", replaced_line(run_dir, discard_set_aside(run_dir), kept)))
                _tell_removed(on_replace, remove_failed_netlists(run_dir, stale))
            elif kept is not None:
                put_back(run_dir)
                _tell(on_replace, ("restored", f"the run in {run_dir}/ is back as it was: the run that was to replace "
                                               "it stopped before training"))
            else:
                remove_run_files(run_dir, spare=found)  # what the run wrote; a netlist ngspice refused stays
                if created and run_dir.is_dir() and not any(run_dir.iterdir()):
                    run_dir.rmdir()
            raise
        if kept is not None:
            _tell(on_replace, ("removed", replaced_line(run_dir, discard_set_aside(run_dir), kept)))
        _tell_removed(on_replace, remove_failed_netlists(run_dir, stale))
    return run_dir, done


def _tell(report: Report | None, said: tuple[str, str] | None) -> None:
    if report is not None and said is not None:
        report(*said)


def _tell_removed(report: Report | None, said: str | None) -> None:
    _tell(report, None if said is None else ("removed", said))


def _untrained(run_dir: Path, interrupted: bool) -> bool:
    """Whether a run that stopped in ``run_dir`` trained nothing to keep: no checkpoint, or (when it failed rather
    than being interrupted, which names the checkpoint to resume from) one of epoch 0."""
    if not (run_dir / CHECKPOINT).exists():
        return True
    if interrupted:
        return False
    try:
        return load_checkpoint(run_dir).state.epoch == 0
    except CheckpointError:
        return False


def one_replica(state: TrainState, r: int = 0) -> SimpleNamespace:
    """Replica r of a state as a single run reads it: controls [E], counters, history rows of numbers, trajectory
    [T, E]."""
    rows = [{k: (v[r].item() if isinstance(v, np.ndarray) else v) for k, v in row.items()} for row in state.history]
    return SimpleNamespace(epoch=state.epoch, controls=state.controls[r], n_steps=state.n_steps,
                           n_updates=int(state.n_updates[r]), n_solves=state.n_solves, history=rows,
                           trajectory_epochs=state.trajectory_epochs, trajectory=[t[r] for t in state.trajectory])


def _summary(done: Trained, one: SimpleNamespace, final) -> dict:
    setup, trainer, state = done.setup, done.trainer, done.state
    task = setup.task
    out = {
        "name": setup.config.name, "task": task.name, "backend": trainer.solver.name, "seed": done.seeds[0],
        "device": setup.circuit.device.name, "n_nodes": setup.circuit.n_nodes, "n_edges": setup.circuit.n_edges,
        "epochs": state.epoch, "initial_loss": one.history[0]["loss"], "final_loss": final.loss,
        **dict(zip(("lowest_loss", "lowest_loss_epoch"), diagnostics.lowest_loss(one.history))),
        "accuracy": final.accuracy, "min_margin_v": final.min_margin,
        "success": None if final.min_margin is None else bool(succeeded(final.min_margin)),
        "wall_s": round(done.wall_s, 3), "n_solves": state.n_solves, "n_steps": state.n_steps,
        "n_updates": one.n_updates, "learning_time_s": float(trainer.learning_time(state)[0]),
        "hardware_time_s": float(trainer.hardware_time(state)[0]), "t_learn_s": setup.hardware.t_learn,
        "charging_rc_s": setup.hardware.resistance * setup.hardware.capacitance,
        "rate_per_v": setup.rule.rate, "rate_unit": setup.circuit.device.rate_unit,
        "outputs_v": final.outputs.tolist(), "targets_v": task.targets.tolist(),
    }
    fallbacks = getattr(trainer.solver, "sweep_fallbacks", 0)
    if fallbacks:  # ngspice solved these circuits by one op per solve after their dc sweep failed: slower, same points
        out["sweep_fallbacks"] = fallbacks
    if final.hinge_loss is not None:  # the objective a hinge trains (the loss above is the outputs' MSE)
        out.update(hinge_margin_v=setup.rule.margin, initial_hinge_loss=one.history[0].get("hinge_loss"),
                   final_hinge_loss=final.hinge_loss)
    if task.test_inputs is not None and len(task.test_inputs):
        tv = trainer.evaluate(one.controls, test=True)
        out.update(test_loss=tv.loss, test_accuracy=tv.accuracy, scored_on=task.scored)
        if tv.hinge_loss is not None:
            out["test_hinge_loss"] = tv.hinge_loss
    if task.is_classification:  # rows: true class, columns: predicted class (confusion.png)
        n = task.n_outputs if task.decode == "argmax" else len(task.levels)
        out["confusion"] = confusion_matrix(task.classes, task.predict(final.outputs), n).tolist()
        out["class_names"] = column_names(setup)[2] or [str(k) for k in range(n)]  # as eval and outputs.csv name them
        if "test_accuracy" in out:
            out["test_confusion"] = confusion_matrix(task.test_classes, task.predict(tv.outputs), n).tolist()
    return out


def _write_single(run_dir: Path, setup: Setup, one: SimpleNamespace, final, summary: dict, plots: bool
                  ) -> list[Path]:
    keys = sorted({k for row in one.history for k in row}, key=lambda k: (k != "epoch", k))
    with writing(run_dir / "metrics.csv"), (run_dir / "metrics.csv").open("w") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows({k: ("" if row.get(k) is None else row.get(k)) for k in keys} for row in one.history)
    header = "epoch," + ",".join(f"e{e}" for e in range(setup.circuit.n_edges))
    rows = np.column_stack([np.array(one.trajectory_epochs), np.array(one.trajectory)])
    with writing(run_dir / "gates.csv"):
        np.savetxt(run_dir / "gates.csv", rows, delimiter=",", header=header, comments="", fmt="%.17g")
    _write_text(run_dir / "summary.json", json_text(summary))
    free_text, clamped_text = run_netlists(setup, one.controls, final.free, setup.config.name)
    _write_text(run_dir / "free.cir", free_text)
    _write_text(run_dir / "clamped.cir", clamped_text)
    write_outputs_csv(run_dir, setup, final.outputs)
    if not plots:
        return []
    from .plots import plot_run_dir  # noqa: PLC0415 (drawn from the files just written, as `plot RUN_DIR` does)
    return plot_run_dir(run_dir)


def ensemble_run(cfg: Config | str | Path, run_dir: Path, n_seeds: int, backend: str | None = None,
                 progress: bool = False, resume: bool = False, on_warning: Report | None = None,
                 replace: bool = False, on_replace: Report | None = None) -> dict:
    """Train seeds cfg.seed .. cfg.seed + n_seeds - 1 as one batch into ``run_dir`` (checkpointed; ``resume``
    continues, ``replace`` trains afresh where a run was, as in ``train_run``); write ensemble.csv and summary.json
    (with the ``warnings`` and ``notes`` of ``train_run``; ``cfg`` as there)."""
    cfg = as_config(cfg, "ensemble_run")
    n_seeds = whole_number(n_seeds, "ensemble_run", "n_seeds", "give the number of seeds to train, as an int")
    plan = plan_train(cfg, out=None if resume else run_dir, resume=run_dir if resume else None, replace=replace,
                      seeds=n_seeds, on_replace=on_replace)
    return train_ensemble(plan, backend=backend, progress=progress, on_warning=on_warning, on_replace=on_replace)


def train_ensemble(plan: TrainPlan, *, backend: str | None = None, progress: bool = False,
                   on_warning: Report | None = None, on_replace: Report | None = None) -> dict:
    """``ensemble_run`` of a ``plan_train``."""
    run_dir, done = _train_into(plan, backend, progress, on_warning, on_replace)
    seeds = done.seeds
    cfg = plan.config
    done.trainer.solver.close()
    warnings, notes = after_training(done, on_warning)
    state = done.state
    last, first = state.history[-1], state.history[0]
    held_out = "test_loss" in last
    hinge = last.get("hinge_loss") is not None
    rows = ["seed,initial_loss,final_loss," + ("final_hinge_loss," if hinge else "") + "accuracy,min_margin_v,"
            + ("test_loss,test_accuracy," if held_out else "") + "success"]
    success = succeeded(last["min_margin"])

    def cell(key: str, r: int) -> str:
        return "" if last.get(key) is None else repr(float(last[key][r]))

    for r, seed in enumerate(seeds):
        ok = "" if success is None else str(bool(success[r])).lower()
        test = f"{cell('test_loss', r)},{cell('test_accuracy', r)}," if held_out else ""
        rows.append(f"{seed},{float(first['loss'][r])!r},{float(last['loss'][r])!r},"
                    + (f"{cell('hinge_loss', r)}," if hinge else "") + f"{cell('accuracy', r)},"
                    f"{cell('min_margin', r)},{test}{ok}")
    _write_text(run_dir / "ensemble.csv", "\n".join(rows) + "\n")
    summary = {"name": cfg.name, "task": done.setup.task.name, "backend": done.trainer.solver.name, "seeds": seeds,
               "epochs": state.epoch, "wall_s": round(done.wall_s, 3), "n_solves": state.n_solves,
               "final_loss_median": float(np.median(last["loss"])),
               "final_hinge_loss_median": float(np.median(last["hinge_loss"])) if hinge else None,
               "success_count": None if success is None else int(success.sum()),
               "success_rate": None if success is None else float(success.mean()),
               "accuracy_mean": None if last["accuracy"] is None else float(np.mean(last["accuracy"]))}
    if held_out:
        summary["scored_on"] = done.setup.task.scored
        summary["test_loss_median"] = float(np.median(last["test_loss"]))
        acc = None if last["test_accuracy"] is None else spread(last["test_accuracy"])
        summary.update({f"test_accuracy_{k}": None if acc is None else acc[k] for k in ("mean", "sd", "min", "max")})
    summary.update(mismatch=mismatch_record(done, run_dir), warnings=done.warnings + warnings, notes=notes)
    _write_text(run_dir / "summary.json", json_text(summary))
    return summary


__all__ = ["RunResult", "TrainPlan", "Trained", "open_run_dir", "save_checkpoint", "load_checkpoint", "train_replicas",
           "after_training", "mismatch_record", "plan_train", "train_run", "train_single", "ensemble_run",
           "train_ensemble", "one_replica", "succeeded"]
