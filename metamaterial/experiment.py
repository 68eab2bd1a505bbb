"""The single place that wires config -> graph -> circuit -> solver -> trainer -> run directory.

``build(cfg)`` gives the typed objects of a run (``Setup``); ``train_run`` trains with checkpoints and
writes the run directory; ``solve_points`` and ``write_netlists`` serve the ``solve`` and ``netlist``
commands.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import graph as graphs
from .circuit import Circuit, compile_graph
from .config import Config, dump_config
from .devices import EdgeParams, NmosParams, draw_mismatch, PotentiometerParams, ResistorParams, nmos_from_card, nmos_preset
from .errors import CheckpointError, ConfigError
from .learning.gates import EdgeDynamics, HardwareParams
from .learning.rules import CoupledLearning
from .learning.schedules import Schedule
from .learning.ensemble import EnsembleState, EnsembleTrainer
from .learning.trainer import Trainer, TrainParams, TrainState
from .netlist import SpiceOptions, to_spice
from .sim.base import AbstractSolver
from .tasks import Task, allostery_task, csv_task, iris_task, linear_regression_task, regression_task, xor_task


def _solver_classes() -> dict[str, type]:
    from .sim.ngspice import NgspiceSolver  # noqa: PLC0415 (PySpice loads only when asked for)
    solvers: dict[str, type] = {"ngspice": NgspiceSolver}
    try:
        from .sim.native import NativeSolver  # noqa: PLC0415
        solvers["native"] = NativeSolver
    except ImportError:
        pass
    return solvers


@dataclass(frozen=True)
class Setup:
    """Everything a run is made of, built from one ``Config``."""

    config: Config
    circuit: Circuit
    task: Task
    rule: CoupledLearning
    dynamics: EdgeDynamics
    hardware: HardwareParams
    params: TrainParams
    options: SpiceOptions


def build_network(cfg: Config):
    n = cfg.network
    if n.kind == "lattice":
        g = graphs.lattice_network(n.rows, n.cols, n.periodic)
    elif n.kind == "random":
        g = graphs.random_network(n.n_nodes, n.n_edges, seed=cfg.seed if n.seed is None else n.seed)
    else:
        g = graphs.load_network(n.file)
    r = cfg.roles
    roles = graphs.Roles(
        inputs=tuple(graphs.resolve_node(g, ref, f"roles.inputs[{i}]") for i, ref in enumerate(r.inputs)),
        rails=tuple((graphs.resolve_node(g, rail.node, f"roles.rails[{i}].node"), rail.volts)
                    for i, rail in enumerate(r.rails)),
        outputs=tuple(_output(g, o, i) for i, o in enumerate(r.outputs)),
    )
    return graphs.assign_roles(g, roles)


def _output(g, o, i: int) -> tuple[int, int | None]:
    if isinstance(o, (int, list)):
        return graphs.resolve_node(g, o, f"roles.outputs[{i}]"), None
    neg = None if o.neg is None else graphs.resolve_node(g, o.neg, f"roles.outputs[{i}].neg")
    return graphs.resolve_node(g, o.pos, f"roles.outputs[{i}].pos"), neg


def build_device(cfg: Config) -> EdgeParams:
    d = cfg.device
    if d.kind == "resistor":
        return ResistorParams(g_min=d.g_min, g_max=d.g_max)
    if d.kind == "potentiometer":
        return PotentiometerParams(r_min=d.r_min, r_max=d.r_max, n_taps=d.n_taps)
    overrides = {k: v for k, v in d.params.model_dump().items() if v is not None}
    if d.model_file:
        size = {k: overrides.pop(k) for k in ("w", "l") if k in overrides}
        if overrides:
            raise ConfigError(f"device.params: {sorted(overrides)} cannot override a model_file card (ngspice reads "
                              "the card as written); edit the card, or set only w and l")
        return nmos_from_card(d.model_file, **size)
    return nmos_preset(d.preset, **overrides)


def build_task(cfg: Config) -> Task:
    t = cfg.task
    if t.name == "xor":
        return xor_task(t.low, t.high, tuple(t.labels) if t.labels else (0.0, -0.087))
    if t.name == "regression":
        return regression_task() if t.x is None else regression_task(np.array(t.x), np.array(t.y))
    if t.name == "linear_regression":
        return linear_regression_task(t.n_points, t.slope, t.offset, t.low, t.high)
    if t.name == "allostery":
        return allostery_task(t.source, tuple(t.targets) if t.targets else (0.1, 0.3))
    if t.name == "iris":
        return iris_task(t.low, t.high, t.target_on, t.target_off, t.test_fraction or 0.2, cfg.seed)
    return csv_task(t.path, t.n_inputs, t.classification, t.low, t.high, t.target_on, t.target_off, t.scale, t.test_fraction,
                    cfg.seed)


def build(cfg: Config) -> Setup:
    """Typed objects of a run; every cross-section check happens here."""
    device = build_device(cfg)
    circuit = compile_graph(build_network(cfg), device, gmin=cfg.simulator.gmin)
    mm = cfg.device.mismatch
    if mm is not None and (mm.vto_sigma > 0 or mm.k_sigma > 0):
        if not isinstance(device, NmosParams) or device.model_card is not None:
            raise ConfigError("device.mismatch: needs an nmos device with a built-in preset")
        seed = cfg.seed if mm.seed is None else mm.seed
        circuit = replace(circuit, mismatch=draw_mismatch(circuit.n_edges, mm.vto_sigma, mm.k_sigma,
                                                          np.random.default_rng([seed, 1])))
    task = build_task(cfg)
    if task.n_inputs != circuit.n_inputs:
        raise ConfigError(f"roles.inputs: task {task.name} needs {task.n_inputs} input node(s) (got {circuit.n_inputs})")
    if task.n_outputs != circuit.n_outputs:
        raise ConfigError(f"roles.outputs: task {task.name} needs {task.n_outputs} output(s) (got {circuit.n_outputs})")
    lc, hc = cfg.learning, cfg.hardware
    hw_kwargs = {k: v for k, v in hc.model_dump().items() if v is not None}
    if isinstance(device, NmosParams):
        low, high = lc.bounds or (0.4, 8.0)
        dyn = EdgeDynamics("continuous", low, high, lc.leak.tau if lc.leak else None, lc.leak.rest if lc.leak else 0.0)
        rate = lc.rate if lc.rate is not None else HardwareParams(**hw_kwargs).rate
        if lc.rate is not None:
            hw_kwargs["t_learn"] = HardwareParams(**hw_kwargs).t_learn_for(lc.rate) if lc.rate > 0 else 100e-6
    elif isinstance(device, ResistorParams):
        low, high = lc.bounds or (device.g_min, device.g_max)
        if lc.rate is None:
            raise ConfigError("learning.rate: a resistor network needs an explicit rate in S/V^2 (e.g. 0.01)")
        rate = lc.rate
        dyn = EdgeDynamics("continuous", low, high, lc.leak.tau if lc.leak else None, lc.leak.rest if lc.leak else 0.0)
    else:
        if lc.rate is not None or lc.bias or lc.bias_sigma:
            raise ConfigError("learning.rate, learning.bias: potentiometers step one whole tap per update (sign rule); "
                              "remove these keys")
        low, high = lc.bounds or (0, device.n_taps - 1)
        if not (0 <= low < high <= device.n_taps - 1):
            raise ConfigError(f"learning.bounds: taps must lie in [0, {device.n_taps - 1}] (got {[low, high]})")
        rate = 1.0
        dyn = EdgeDynamics("sign", low, high)
    if lc.loss == "hinge" and not task.is_classification:
        raise ConfigError(f"learning.loss: 'hinge' needs a classification task (got task.name={task.name})")
    if lc.schedule == "mini_batch" and lc.batch_size > task.n_points:
        raise ConfigError(f"learning.batch_size: must be <= the {task.n_points} data points (got {lc.batch_size})")
    if lc.bias or lc.bias_sigma:  # a constant per-edge learning bias, drawn once from the run's seed
        bias_rng = np.random.default_rng([cfg.seed, 2])
        dyn = replace(dyn, bias=lc.bias + lc.bias_sigma * bias_rng.standard_normal(circuit.n_edges))
    rule = CoupledLearning(nudge=lc.nudge, rate=rate, loss=lc.loss, margin=lc.margin)
    params = TrainParams(lc.epochs, Schedule(lc.schedule, lc.batch_size), lc.update_probability, lc.eval_every,
                         lc.record_every, lc.read_noise)
    s = cfg.simulator
    return Setup(cfg, circuit, task, rule, dyn, HardwareParams(**hw_kwargs), params,
                 SpiceOptions(s.reltol, s.abstol, s.vntol, s.itl1))


def initial_controls(setup: Setup, rng: np.random.Generator) -> np.ndarray:
    """[E] initial controls from ``learning.init`` with the device's defaults."""
    init, dev, n = setup.config.learning.init, setup.circuit.device, setup.circuit.n_edges
    if isinstance(dev, NmosParams):
        lo, hi = init.low if init.low is not None else 0.5, init.high if init.high is not None else 2.0
    elif isinstance(dev, ResistorParams):
        lo, hi = init.low if init.low is not None else dev.g_min, init.high if init.high is not None else dev.g_max
    else:
        lo, hi = init.low if init.low is not None else 0, init.high if init.high is not None else dev.n_taps - 1
    if init.kind == "constant":
        values = np.full(n, float(init.value))
    else:
        values = rng.uniform(lo, hi, n)
    if isinstance(dev, PotentiometerParams):
        values = np.round(values)
    return np.clip(values, setup.dynamics.low, setup.dynamics.high)


def make_solver(setup: Setup, backend: str | None = None) -> AbstractSolver:
    name = backend or setup.config.simulator.backend
    solvers = _solver_classes()
    if name not in solvers:
        raise ConfigError(f"simulator.backend: unknown or unavailable backend (got {name!r}); choose one of "
                          f"{sorted(solvers)}")
    if name == "ngspice":
        return solvers[name](options=setup.options)
    return solvers[name]()


def make_trainer(setup: Setup, backend: str | None = None) -> Trainer:
    """The trainer of a setup on the chosen backend (default: the config's)."""
    return Trainer(setup.circuit, setup.task, setup.rule, setup.dynamics, setup.params, make_solver(setup, backend),
                   setup.hardware)


# -- training with a run directory ------------------------------------------------------------------------
CHECKPOINT = "checkpoint.npz"
ENSEMBLE_CHECKPOINT = "ensemble_checkpoint.npz"


def _open_run_dir(cfg: Config, run_dir: Path, resume: bool) -> Path:
    """Check a run directory to resume (same resolved config), or create a new one (refusing one that holds a
    run) and write config.yaml into it."""
    resolved = dump_config(cfg)
    if resume:
        saved = run_dir / "config.yaml"
        if not saved.exists():
            raise CheckpointError(f"{run_dir}: not a run directory (no config.yaml); check --resume")
        if saved.read_text() != resolved:
            raise CheckpointError(f"{run_dir}/config.yaml: differs from the config given now; resume with the same "
                                  "config and --set options, or start a new run with --out")
        return run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    if (run_dir / CHECKPOINT).exists() or (run_dir / ENSEMBLE_CHECKPOINT).exists():
        raise CheckpointError(f"{run_dir}: already holds a run; use --resume {run_dir} or another --out")
    (run_dir / "config.yaml").write_text(resolved)
    return run_dir


def _write_atomically(path: Path, **arrays: np.ndarray) -> None:
    """np.savez to a temporary file, flushed to disk, then renamed over ``path``: a kill leaves the old or the new."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(run_dir: Path, state: TrainState, wall_s: float) -> None:
    """Atomically write the state (write to a temp file, then rename)."""
    meta = {"epoch": state.epoch, "rng_state": state.rng_state, "n_steps": state.n_steps, "n_updates": state.n_updates,
            "n_solves": state.n_solves, "history": state.history, "trajectory_epochs": state.trajectory_epochs,
            "wall_s": wall_s}
    _write_atomically(run_dir / CHECKPOINT, controls=state.controls, trajectory=np.array(state.trajectory),
                      meta=np.array(json.dumps(meta)))


def load_checkpoint(run_dir: Path) -> tuple[TrainState, float]:
    path = run_dir / CHECKPOINT
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            traj = [row for row in z["trajectory"]]
            controls = z["controls"].copy()
    except (OSError, KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot resume: no readable checkpoint ({err}); start a new run") from err
    state = TrainState(epoch=meta["epoch"], controls=controls, rng_state=meta["rng_state"], n_steps=meta["n_steps"],
                       n_updates=meta["n_updates"], n_solves=meta["n_solves"], history=meta["history"],
                       trajectory_epochs=meta["trajectory_epochs"], trajectory=traj)
    return state, float(meta["wall_s"])


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    summary: dict
    state: TrainState


def train_run(cfg: Config, run_dir: Path, *, resume: bool = False, backend: str | None = None,
              checkpoint_every: int | None = None, progress: bool = True, plots: bool = True) -> RunResult:
    """Train ``cfg`` into ``run_dir`` (created); with ``resume`` continue from its checkpoint.

    Writes config.yaml, metrics.csv, summary.json, gates.csv, free.cir/clamped.cir (final gates, all
    training points), PNG plots and checkpoint.npz every ``learning.checkpoint_every`` epochs.
    """
    setup = build(cfg)
    run_dir = _open_run_dir(cfg, Path(run_dir), resume)
    every = cfg.learning.checkpoint_every if checkpoint_every is None else checkpoint_every
    trainer = make_trainer(setup, backend)
    with trainer.solver as solver:
        if resume:
            state, wall_before = load_checkpoint(run_dir)
        else:
            rng = np.random.default_rng(cfg.seed)
            state = trainer.init_state(initial_controls(setup, rng), rng)
            wall_before = 0.0
            save_checkpoint(run_dir, state, 0.0)
        t0 = time.perf_counter()
        bar = _progress(progress, setup.params.epochs, state.epoch, cfg.name)

        def on_epoch(st: TrainState) -> None:
            if bar is not None:
                bar.update(st.epoch - bar.n)
                if st.history and st.history[-1]["epoch"] == st.epoch:
                    bar.set_postfix(loss=f"{st.history[-1]['loss']:.3g}")
            if every and st.epoch % every == 0:
                save_checkpoint(run_dir, st, wall_before + time.perf_counter() - t0)
                solver.reset()  # what follows a checkpoint must not depend on what preceded it

        try:
            # called at least at every checkpoint and evaluation; the epochs between run in one go
            state = trainer.run(state, on_epoch, every=math.gcd(every, setup.params.eval_every))
        finally:
            if bar is not None:
                bar.close()
        wall = wall_before + time.perf_counter() - t0
        save_checkpoint(run_dir, state, wall)
        final = trainer.evaluate(state.controls)
        summary = _summary(setup, solver.name, state, trainer, final, wall)
        _write_outputs(run_dir, setup, state, final, summary, plots)
    return RunResult(run_dir, summary, state)


def _progress(enabled: bool, total: int, start: int, name: str):
    if not enabled:
        return None
    from tqdm import tqdm  # noqa: PLC0415
    return tqdm(total=total, initial=start, desc=f"train {name}", unit="epoch", dynamic_ncols=True, mininterval=0.5)


def _summary(setup: Setup, backend: str, state: TrainState, trainer: Trainer, final, wall: float) -> dict:
    hist = state.history
    task = setup.task
    out = {
        "name": setup.config.name, "task": task.name, "backend": backend, "seed": setup.config.seed,
        "device": setup.circuit.device.name, "n_nodes": setup.circuit.n_nodes, "n_edges": setup.circuit.n_edges,
        "epochs": state.epoch, "initial_loss": hist[0]["loss"], "final_loss": final.loss,
        "accuracy": final.accuracy, "min_margin_v": final.min_margin,
        "success": None if final.min_margin is None else bool(final.min_margin >= 0.010),
        "wall_s": round(wall, 3), "n_solves": state.n_solves, "n_steps": state.n_steps, "n_updates": state.n_updates,
        "learning_time_s": trainer.learning_time(state), "hardware_time_s": trainer.hardware_time(state),
        "t_learn_s": setup.hardware.t_learn, "rate_per_v": setup.rule.rate,
        "outputs_v": final.outputs.tolist(), "targets_v": task.targets.tolist(),
    }
    if task.test_inputs is not None and len(task.test_inputs):
        tv = trainer.evaluate(state.controls, test=True)
        out.update(test_loss=tv.loss, test_accuracy=tv.accuracy)
    return out


def _write_outputs(run_dir: Path, setup: Setup, state: TrainState, final, summary: dict, plots: bool) -> None:
    keys = sorted({k for row in state.history for k in row}, key=lambda k: (k != "epoch", k))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows({k: ("" if row.get(k) is None else row.get(k)) for k in keys} for row in state.history)
    (run_dir / "metrics.csv").write_text(buf.getvalue())
    traj = np.array(state.trajectory)
    header = "epoch," + ",".join(f"e{e}" for e in range(setup.circuit.n_edges))
    rows = np.column_stack([np.array(state.trajectory_epochs), traj])
    np.savetxt(run_dir / "gates.csv", rows, delimiter=",", header=header, comments="", fmt="%.17g")
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    c, task = setup.circuit, setup.task
    (run_dir / "free.cir").write_text(to_spice(c, state.controls, task.inputs, options=setup.options,
                                               title=f"{setup.config.name} final free"))
    clamps = setup.rule.clamp(c, final.free, task.targets)
    (run_dir / "clamped.cir").write_text(to_spice(c, state.controls, task.inputs, clamps, options=setup.options,
                                                  title=f"{setup.config.name} final clamped"))
    if plots:
        from .plots import plot_run  # noqa: PLC0415
        plot_run(run_dir, state, task, final.outputs, setup.circuit.device)


# -- ensembles ----------------------------------------------------------------------------------------------
def train_ensemble(cfg: Config, seeds: list[int], backend: str | None = None, progress: bool = False,
                   run_dir: Path | None = None, resume: bool = False) -> tuple[Setup, EnsembleState, EnsembleTrainer]:
    """Train one replica per seed as one batch. Replica r draws its initial gates, shuffles and desynchronous
    masks exactly as a run with ``seed=seeds[r]`` would; what ``build`` draws from the config's own seed (twin
    mismatch without its own seed, the per-edge learning bias) is shared by every replica.

    With ``run_dir``, the state is checkpointed there (ensemble_checkpoint.npz) every ``learning.checkpoint_every``
    epochs, and ``resume`` continues from it; a resumed ensemble ends where an uninterrupted one does.
    """
    setup = build(cfg)
    trainer = make_trainer(setup, backend)
    ens = EnsembleTrainer(trainer)
    every = cfg.learning.checkpoint_every if run_dir is not None else 0
    if resume:
        state, saved_seeds = load_ensemble_checkpoint(run_dir)
        if saved_seeds != seeds:
            raise CheckpointError(f"{run_dir}: holds an ensemble of seeds {saved_seeds[0]}..{saved_seeds[-1]} "
                                  f"({len(saved_seeds)}), not {seeds[0]}..{seeds[-1]} ({len(seeds)}); resume with the "
                                  "same --seeds")
    else:
        rngs = [np.random.default_rng(s) for s in seeds]
        state = ens.init_state(np.stack([initial_controls(setup, rng) for rng in rngs]), rngs)
        if every:
            save_ensemble_checkpoint(run_dir, state, seeds)
    bar = _progress(progress, setup.params.epochs, state.epoch, f"{cfg.name} x{len(seeds)}")

    def on_epoch(st: EnsembleState) -> None:
        if bar is not None:
            bar.update(st.epoch - bar.n)
        if every and st.epoch % every == 0:
            save_ensemble_checkpoint(run_dir, st, seeds)
            trainer.solver.reset()  # what follows a checkpoint must not depend on what preceded it

    try:
        state = ens.run(state, on_epoch, every=math.gcd(every, cfg.learning.eval_every))
    finally:
        if bar is not None:
            bar.close()
    if every:
        save_ensemble_checkpoint(run_dir, state, seeds)
    return setup, state, ens


def save_ensemble_checkpoint(run_dir: Path, state: EnsembleState, seeds: list[int]) -> None:
    """Atomically write an ensemble's state: controls, each replica's generator, counters, history."""
    history = [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in row.items()} for row in state.history]
    meta = {"epoch": state.epoch, "seeds": seeds, "rng_states": [rng.bit_generator.state for rng in state.rngs],
            "n_steps": state.n_steps, "n_solves": state.n_solves, "history": history}
    _write_atomically(run_dir / ENSEMBLE_CHECKPOINT, controls=state.controls, n_updates=state.n_updates,
                      meta=np.array(json.dumps(meta)))


def load_ensemble_checkpoint(run_dir: Path) -> tuple[EnsembleState, list[int]]:
    path = run_dir / ENSEMBLE_CHECKPOINT
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            controls, n_updates = z["controls"].copy(), z["n_updates"].copy()
    except (OSError, KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot resume: no readable ensemble checkpoint ({err}); start a new run") \
            from err
    rngs = []
    for saved in meta["rng_states"]:
        rng = np.random.default_rng()
        rng.bit_generator.state = saved
        rngs.append(rng)
    history = [{k: (np.array(v) if isinstance(v, list) else v) for k, v in row.items()} for row in meta["history"]]
    return EnsembleState(meta["epoch"], controls, rngs, meta["n_steps"], n_updates, meta["n_solves"], history), \
        meta["seeds"]


def ensemble_run(cfg: Config, run_dir: Path, n_seeds: int, backend: str | None = None,
                 progress: bool = True, resume: bool = False) -> dict:
    """Train seeds cfg.seed .. cfg.seed + n_seeds - 1 as one batch into ``run_dir`` (checkpointed; ``resume``
    continues); write ensemble.csv and summary.json."""
    run_dir = _open_run_dir(cfg, Path(run_dir), resume)
    seeds = list(range(cfg.seed, cfg.seed + n_seeds))
    t0 = time.perf_counter()
    setup, state, ens = train_ensemble(cfg, seeds, backend, progress, run_dir=run_dir, resume=resume)
    wall = time.perf_counter() - t0
    last, first = state.history[-1], state.history[0]
    held_out = "test_loss" in last
    rows = ["seed,initial_loss,final_loss,accuracy,min_margin_v," + ("test_loss,test_accuracy," if held_out else "")
            + "success"]
    success = None if last["min_margin"] is None else last["min_margin"] >= 0.010

    def cell(key: str, r: int) -> str:
        return "" if last.get(key) is None else repr(float(last[key][r]))

    for r, seed in enumerate(seeds):
        ok = "" if success is None else str(bool(success[r])).lower()
        test = f"{cell('test_loss', r)},{cell('test_accuracy', r)}," if held_out else ""
        rows.append(f"{seed},{float(first['loss'][r])!r},{float(last['loss'][r])!r},{cell('accuracy', r)},"
                    f"{cell('min_margin', r)},{test}{ok}")
    (run_dir / "ensemble.csv").write_text("\n".join(rows) + "\n")
    summary = {"name": cfg.name, "task": setup.task.name, "backend": ens.trainer.solver.name, "seeds": seeds,
               "epochs": state.epoch, "wall_s": round(wall, 3), "n_solves": state.n_solves,
               "final_loss_median": float(np.median(last["loss"])),
               "success_count": None if success is None else int(success.sum()),
               "success_rate": None if success is None else float(success.mean()),
               "accuracy_mean": None if last["accuracy"] is None else float(np.mean(last["accuracy"]))}
    if held_out:
        summary["test_loss_median"] = float(np.median(last["test_loss"]))
        summary["test_accuracy_mean"] = (None if last["test_accuracy"] is None
                                         else float(np.mean(last["test_accuracy"])))
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


# -- solve and netlist commands ---------------------------------------------------------------------------
def initial_phases(cfg: Config, backend: str | None = None, clamped: bool = True):
    """(setup, controls, free [P, N], clamps [P, n_clamp], clamped [P, N] or None, solver name) of every data
    point at the initial controls; the clamp values come from the free solve."""
    setup = build(cfg)
    c, task = setup.circuit, setup.task
    controls = initial_controls(setup, np.random.default_rng(cfg.seed))
    with make_solver(setup, backend) as solver:
        free = solver.solve(c, controls, task.inputs).voltages
        clamps = setup.rule.clamp(c, free, task.targets)
        twin = solver.solve(c, controls, task.inputs, clamps).voltages if clamped else None
    return setup, controls, free, clamps, twin, solver.name


def solve_points(cfg: Config, backend: str | None = None) -> dict:
    """Free and clamped operating points of every data point at the initial controls."""
    setup, controls, free, _, clamped, solver_name = initial_phases(cfg, backend)
    c, task = setup.circuit, setup.task
    names = [f"n{i}" for i in range(c.n_nodes)]
    return {"nodes": names, "labels": list(c.node_labels), "backend": solver_name,
            "controls": controls.tolist(),
            "points": [{"input": task.inputs[p].tolist(), "target": task.targets[p].tolist(),
                        "free": dict(zip(names, free[p].tolist())), "clamped": dict(zip(names, clamped[p].tolist()))}
                       for p in range(task.n_points)]}


def write_netlists(cfg: Config, out_dir: Path, backend: str | None = None) -> list[Path]:
    """``free_k.cir`` and ``clamped_k.cir`` for each data point k at the initial controls; the clamped values
    come from the free solve (on the configured backend)."""
    setup, controls, _, clamps, _, _ = initial_phases(cfg, backend, clamped=False)
    c, task = setup.circuit, setup.task
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(task.n_points):
        for phase, cl in (("free", None), ("clamped", clamps[k:k + 1])):
            p = out_dir / f"{phase}_{k}.cir"
            p.write_text(to_spice(c, controls, task.inputs[k:k + 1], cl, options=setup.options,
                                  title=f"{cfg.name} point {k}"))
            paths.append(p)
    return paths


__all__ = ["Setup", "RunResult", "build", "build_network", "build_device", "build_task", "initial_controls",
           "make_solver", "train_run", "solve_points", "write_netlists", "save_checkpoint", "load_checkpoint",
           "save_ensemble_checkpoint", "load_ensemble_checkpoint"]
