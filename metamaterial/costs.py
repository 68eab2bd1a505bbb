"""The ``energy`` and ``transient`` commands: what a config or a trained run costs in power, time and energy.

A report stage (solve -> report) wired like ``points`` and ``runs``: it takes a validated ``Config`` and the
controls to evaluate (a run directory's trained gates, or the config's initial ones), runs the solvers and
``transient``, and writes JSON, CSV and PNG files into an output directory. The physics is ``energy``
(operating-point power) and ``transient`` (ngspice step responses); the capacitances, the periphery and the
settling criterion come from the config's ``timing:`` section (docs/physics.md, section 8).
"""

from __future__ import annotations

import csv
import hashlib
import sys
import time
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .circuit import Circuit
from .config import Config
from .configfile import config_differences, load_saved_config
from .errors import CheckpointError, ConfigError
from .experiment import Setup, build, build_network, initial_controls, make_solver, replica_setup
from .plots import MANY_EDGES, _axes, _pyplot, _save
from .replacement import folder_lock
from .runfiles import PARTIAL_STEP, json_text, replacing, write_text_atomically
from .timing import MosCapacitances, PeripheryParams, SettleParams
from .units import si


@dataclass(frozen=True)
class Source:
    """What a command evaluates: the config, the controls [E], the seed of their replica and, for a run
    directory, where they came from (the epoch of its checkpoint)."""

    config: Config
    controls: np.ndarray
    run_dir: Path | None
    epoch: int | None
    seed: int | None = None
    overrides: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """Where the controls come from, with the ``--set`` overrides the figures were computed under."""
        changed = "".join(f", --set {item}" for item in self.overrides)
        if self.run_dir is not None:
            return f"{self.run_dir} (seed {self.seed}, epoch {self.epoch}{changed})"
        return ("initial controls" if self.epoch is None else f"trained gates (epoch {self.epoch})") + \
            (f" ({changed[2:]})" if changed else "")

    def setup(self) -> Setup:
        """The typed objects of the config; under ``device.mismatch.per_replica`` the replica's own chip."""
        setup = build(self.config)
        return setup if self.seed is None else replica_setup(setup, self.seed)


def load_source(cfg: Config, run_dir: Path | None, seed: int | None = None, overrides: list[str] = ()) -> Source:
    """``Source`` of a config (its initial controls, drawn from ``cfg.seed``) or of a run directory (the
    controls of its last checkpoint: the replica trained with ``seed``, which an ensemble needs); ``cfg`` holds the
    ``--set`` ``overrides``, which the source names."""
    overrides = tuple(overrides)
    if run_dir is None:
        controls = initial_controls(build(cfg), np.random.default_rng(cfg.seed))
        return Source(cfg, controls, None, None, overrides=overrides)
    from .rundir import load_run  # noqa: PLC0415 (rundir pulls in the trainer)

    run = load_run(run_dir, config=cfg)  # the run's data points, as it was trained on them
    trained = run.controls.shape[1]  # the edges of the network of its own config.yaml
    changed = [k for k in config_differences((Path(run_dir) / "config.yaml").read_text(), cfg)
               if k.startswith(("network", "roles"))] if overrides else []
    if changed:  # a rewiring of as many edges would fit the gates' shape and not the network
        n_edges = build_network(cfg).number_of_edges()
        what = f"{trained} edges to {n_edges}" if n_edges != trained else ", ".join(changed)
        raise ConfigError(f"--set {' '.join(overrides)}: changes the network trained in {run_dir} ({what}); a run's "
                          "gates fit only its own network: leave network and roles keys out of --set on a run "
                          "directory")
    r = run.one_replica(seed)
    return Source(cfg, run.controls[r].copy(), Path(run_dir), run.epoch, run.seeds[r], overrides)


def run_dir_config(run_dir: Path, overrides: list[str]) -> Config:
    """The resolved config a run directory saved, with ``--set`` overrides (``timing.*`` changes the transient)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: not a run directory (no config.yaml); give a CONFIG file or a directory "
                              "that `metamaterial train` wrote")
    return load_saved_config(path, overrides)


def timing_params(cfg: Config) -> tuple[MosCapacitances, PeripheryParams, SettleParams]:
    """The ``timing:`` section as the transient's typed parameters."""
    t = cfg.timing
    return (MosCapacitances(**t.capacitances.model_dump()), PeripheryParams(**t.periphery.model_dump()),
            SettleParams(**t.settle.model_dump()))


def _progress(enabled: bool, total: int, desc: str, unit: str):
    """A tqdm bar, drawn only on a terminal (a log file would get every redraw); use it as a context manager."""
    from tqdm import tqdm  # noqa: PLC0415
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, mininterval=0.5,
                disable=not enabled or not sys.stderr.isatty())


# -- energy: operating-point power --------------------------------------------------------------------------
#: power.csv's largest size in rows (one per point, twin and edge) unless asked for: beyond it power.npz alone holds
#: the table (the digits' 1,437 points x 2 twins x 1,247 edges made a 230 MB CSV that took 24 s to write)
CSV_MAX_ROWS = 250_000


def energy_run(src: Source, out: Path, *, plots: bool = True, progress: bool = False,
               csv_table: bool | None = None) -> dict:
    """Operating-point power of every data point's free and clamped twin on the config's backend.

    Writes energy.json (summary, per point, per edge), power.npz (``free_w``, ``clamped_w``: each edge's
    power [point, edge] in W; ``free_drop_v``, ``clamped_drop_v``: its drop a -> b [point, edge] in V; ``edges``
    [edge, 2]: its nodes), power.csv (the same, one row per point, twin and edge: when ``csv_table``, or by default
    when it has at most ``CSV_MAX_ROWS`` rows) and power_map.png (the median power of each edge over the points on
    the network, log colour scale). Returns the JSON's content; its ``files`` lists what was written, ``removed``
    what an earlier run left in ``out`` that this one did not write (``_remove_stale``). Of the ``timing:`` section
    it reads nothing: its capacitances do not change a DC answer, and a driver resistance, which would, is refused.
    """
    from .energy import power_report  # noqa: PLC0415

    rd = src.config.timing.periphery.driver_resistance
    if rd:  # the DC solvers drive the nodes directly; the capacitances of ``timing:`` do not change a DC answer
        raise ConfigError(f"timing.periphery.driver_resistance: `energy` solves the network driven directly, without "
                          f"driver resistances (got {rd:g} ohm), so its power would not be this circuit's; set it to 0 "
                          "for `energy`, or use `metamaterial transient`, whose dc_power_after_w is what the drivers "
                          "deliver through them")
    setup = src.setup()
    c, task = setup.circuit, setup.task
    with _progress(progress, 2, f"energy {src.config.name}", "phase") as bar, make_solver(setup) as solver:
        free = solver.solve(c, src.controls, task.inputs).voltages
        bar.update(1)
        clamps = setup.rule.clamp(c, free, task.targets, task.classes)
        clamped = solver.solve(c, src.controls, task.inputs, clamps).voltages
        bar.update(1)
        backend = solver.name
    power = power_report(c, src.controls, free, clamped)
    out.mkdir(parents=True, exist_ok=True)
    drops = [v[:, c.edges[:, 0]] - v[:, c.edges[:, 1]] for v in (free, clamped)]
    with replacing(out / "power.npz") as tmp, open(tmp, "wb") as f:  # a path would get .npz added to .tmp
        np.savez(f, edges=c.edges, free_w=power.free, clamped_w=power.clamped, free_drop_v=drops[0],
                 clamped_drop_v=drops[1])
    rows = 2 * task.n_points * c.n_edges
    table = rows <= CSV_MAX_ROWS if csv_table is None else csv_table
    removed = _remove_stale(out, ([] if table else ["power.csv"]) + ([] if plots else ["power_map.png"]))
    if table:
        _write_csv(out / "power.csv", ["point", "twin", "edge", "node_a", "node_b", "drop_v", "power_w"],
                   ([d, twin, e, int(a), int(b), repr(float(drop[d, e])), repr(float(p[d, e]))]
                    for twin, drop, p in zip(("free", "clamped"), drops, (power.free, power.clamped))
                    for d in range(task.n_points) for e, (a, b) in enumerate(c.edges)))
    result = {
        "name": src.config.name, "task": task.name, "source": src.label, "backend": backend,
        "n_edges": c.n_edges, "edge_noun": c.device.edge_noun, "n_points": task.n_points, "summary": power.summary(),
        "points": [{"input_v": task.inputs[d].tolist(), "free_total_w": float(power.total_free[d]),
                    "clamped_total_w": float(power.total_clamped[d])} for d in range(task.n_points)],
        "edges": [{"edge": e, "nodes": [int(a), int(b)], "free_median_w": float(np.median(power.free[:, e])),
                   "free_max_w": float(power.free[:, e].max()),
                   "clamped_median_w": float(np.median(power.clamped[:, e]))} for e, (a, b) in enumerate(c.edges)],
        "files": ["energy.json", "power.npz"] + (["power.csv"] if table else []) + (["power_map.png"] if plots else []),
        "removed": removed, "csv_rows": rows,
    }
    write_text_atomically(out / "energy.json", json_text(result))
    if plots:
        plot_power_map(out / "power_map.png", setup, power.free, power.clamped)
    return result


# -- transient: settling and energy per inference -------------------------------------------------------------
#: bytes of waveforms a ``transient`` run may keep in memory: every step's samples stay there until waves.npz, which
#: needs them all, is written. Past it the number of steps is refused (``check_steps``): XOR fits 1,644 steps
#: (about 8 minutes of ngspice at the 0.3 s a step measured), digits 325 (its default, each of its 1,437 points
#: once, would need 8.8 GB)
TRANSIENT_MEMORY = 2e9
#: what one kept step costs in memory over the bytes of its arrays (``step_memory``): the peak resident memory grew
#: per step by 1.07x them on an 8x8 lattice, 1.22x on XOR, 1.63x on digits (24, 44 and 12 steps against 4, 4
#: and 2, figures drawn)
STEP_MEMORY_FACTOR = 2.0


def step_memory(c: Circuit, points: int) -> float:
    """Bytes one input step of ``transient_run`` keeps in memory, from above: ``STEP_MEMORY_FACTOR`` times its
    arrays of ``points`` samples (time, every node voltage, every output, the drivers' power; 8 bytes each)."""
    return STEP_MEMORY_FACTOR * 8.0 * points * (c.n_nodes + c.n_outputs + 2)


def check_steps(c: Circuit, n_points: int, steps: int | None, points: int) -> int:
    """The number of input steps ``transient_run`` takes (``steps``, or by default each data point once); a
    ``ConfigError`` naming --steps when their waveforms would not fit in ``TRANSIENT_MEMORY``."""
    n = n_points if steps is None else steps
    per_step = step_memory(c, points)
    limit = int(TRANSIENT_MEMORY // per_step)
    if n <= limit:
        return n
    got = f"{steps}" if steps is not None else f"the default, each of the {n_points:,} data points once"
    fix = (f"give --steps {limit} or fewer" if limit >= 1 else
           "lower timing.settle.points (one step does not fit)")
    raise ConfigError(f"--steps: at most {limit:,} input steps fit in the {si(TRANSIENT_MEMORY, 'B')} of "
                      f"waveforms a transient may keep in memory ({si(per_step, 'B')} a step: {points:,} samples of "
                      f"{c.n_nodes} nodes and {c.n_outputs} output{'s' * (c.n_outputs != 1)}) (got {got}, which "
                      f"would need {si(n * per_step, 'B')}); {fix}")


def is_timed(row: dict) -> bool:
    """Whether a step (a row of ``transient_run``) enters the medians and maxima of settling time and energy: it
    settled, and its outputs left their settling band on the way (a settling time > 0). A step whose outputs stay
    inside the band (an input step that barely moves them) settles in 0 s for 0 J: it has nothing to time, and
    would pull the medians down."""
    return bool(row["settled"]) and row["settling_time_s"] > 0


def inference_steps(n_points: int, steps: int) -> list[tuple[int, int]]:
    """(from, to) data points of ``steps`` successive inferences cycling the points in order; ``n_points`` steps
    take each point once, the last stepping back to the first."""
    return [(k % n_points, (k + 1) % n_points) for k in range(steps)]


def transient_run(src: Source, out: Path, *, steps: int | None = None, plots: bool = True,
                  progress: bool = False) -> dict:
    """ngspice transients of the free network for ``steps`` input steps from one data point to the next.

    Writes transient.json (settings, summary, per step), transient.csv (per step), waves.csv (outputs and the
    drivers' power against time, per step), waves.npz (every node voltage), transient_step0.cir (the netlist ngspice
    ran for the first step; the others differ in their input sources only), and the figures waveforms.png and
    settling.png. Returns the JSON's content (``files``: what was written; ``removed``: the figures of an earlier run
    this one did not draw, ``_remove_stale``) and ``resumed_steps``. Its summary's medians and maxima are over the
    steps ``is_timed`` keeps (``timed`` of them); ``inside_band`` counts the settled steps left out, ``not_settled``
    the others. A task of one data point is refused (``ConfigError``): it has no input step to time.

    Each step is kept in ``out`` as it finishes (``PARTIAL_STEP``, until the end): a run cut short (Ctrl-C, a kill)
    and started again on the same source goes on from the steps it finished (``resumed_steps`` of them) and writes
    what the uninterrupted run would have.
    """
    from .transient import step_response  # noqa: PLC0415

    setup = src.setup()
    c, x = setup.circuit, setup.task.inputs
    caps, periphery, settle = timing_params(src.config)
    if setup.task.n_points < 2:
        raise ConfigError(f"task: {setup.task.name} has one data point, so there is no input step to time (got "
                          f"{setup.task.n_points} point); give a task of two or more points, or use `metamaterial "
                          "energy` for its power")
    pairs = inference_steps(setup.task.n_points, check_steps(c, setup.task.n_points, steps, settle.points))
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out) as mine:  # two transients into one folder would write each other's steps and files
        if not mine:
            raise ConfigError(f"{out}: a `transient` into it is running in another process; wait for it to end (the "
                              "same command then goes on from its steps), or choose another --out")
        key = _steps_key(src, setup)
        responses = finished_steps(out, key, len(pairs))
        resumed = len(responses)
        with _progress(progress, len(pairs), f"transient {src.config.name}", "step") as bar:
            bar.update(resumed)
            for k, (a, b) in enumerate(pairs[resumed:], start=resumed):
                responses.append(step_response(c, src.controls, x[a], x[b], capacitances=caps, periphery=periphery,
                                               settle=settle, options=setup.options))
                _save_step(out, key, k, responses[-1])
                bar.update(1)
        figures = ["waveforms.png", "settling.png"]
        removed = [] if plots else _remove_stale(out, figures)
        rows = []
        for k, ((a, b), r) in enumerate(zip(pairs, responses)):
            o_before, o_after = c.output_values(r.dc_before)[0], c.output_values(r.dc_after)[0]
            rows.append({"step": k, "from": a, "to": b, "settled": r.settled, "settling_time_s": r.settling_time,
                         "energy_j": r.energy, "energy_per_transistor_j": r.energy_per_transistor,
                         "dc_power_after_w": r.power_after,
                         "static_fraction": r.static_energy / r.energy if r.settled and r.energy > 0 else None,
                         "output_step_v": float(np.max(np.abs(o_after - o_before))),
                         "final_vs_dc_v": float(np.max(np.abs(r.voltages[-1] - r.dc_after)))})
        _write_csv(out / "transient.csv", list(rows[0]),
                   (["" if v is None else v for v in row.values()] for row in rows))
        _write_waves(out, c, pairs, responses)
        write_text_atomically(out / "transient_step0.cir", responses[0].netlist)  # runs as it is: ngspice -b FILE
        t_s = np.array([r["settling_time_s"] for r in rows], float)
        timed = [r for r in rows if is_timed(r)]
        t_timed = np.array([r["settling_time_s"] for r in timed], float)
        e_timed = np.array([r["energy_per_transistor_j"] for r in timed], float)
        summary = {"steps": len(rows), "not_settled": int(np.isnan(t_s).sum()),
                   "inside_band": sum(r["settled"] and not is_timed(r) for r in rows), "timed": len(timed),
                   "settling_median_s": _stat(np.median, t_timed), "settling_max_s": _stat(np.max, t_timed),
                   "energy_per_transistor_median_j": _stat(np.median, e_timed),
                   "energy_per_transistor_max_j": _stat(np.max, e_timed),
                   "max_final_vs_dc_v": max(r["final_vs_dc_v"] for r in rows),
                   "ends_off_dc": sum(not r.ends_at_dc for r in responses)}
        result = {"name": src.config.name, "task": setup.task.name, "source": src.label, "simulator": "ngspice",
                  "n_edges": c.n_edges, "edge_noun": c.device.edge_noun,
                  "timing": src.config.timing.model_dump(), "summary": summary, "steps": rows,
                  "files": ["transient.json", "transient.csv", "waves.csv", "waves.npz", "transient_step0.cir"]
                  + (figures if plots else []), "removed": removed}
        write_text_atomically(out / "transient.json", json_text(result))
        if plots:
            plot_waveforms(out / "waveforms.png", c, src.controls, pairs, responses)
            plot_settling(out / "settling.png", t_s)
        _remove_partial_steps(out)
        return {**result, "resumed_steps": resumed}


#: the fields of a ``StepResponse`` a partial step keeps (its netlist only for step 0: ``transient_step0.cir``)
_STEP_FIELDS = ("time", "voltages", "outputs", "supply_power", "dc_before", "dc_after", "tolerance", "node_tolerance",
                "t_step", "settling_time", "energy", "power_after", "n_transistors")


def _steps_key(src: Source, setup: Setup) -> str:
    """What the steps of ``transient_run`` are steps of: the resolved config, the gates, the data points, the
    replica's seed and this version of the package, hashed."""
    from . import __version__  # noqa: PLC0415

    h = hashlib.sha256()
    for part in (src.config.model_dump_json(), repr(src.seed), __version__):
        h.update(part.encode() + b"\0")
    for a in (src.controls, setup.task.inputs):
        h.update(np.ascontiguousarray(a, float).tobytes())
    return h.hexdigest()


def _save_step(out: Path, key: str, k: int, r) -> None:
    """Step k's file, whole or not at all (``replacing``); not flushed to the disk: it outlasts a kill of the
    command, not a crash of the machine (with a checkpoint's ``fsync`` 24 steps of XOR took 1.09x the wall time
    of a run that kept none, median of 4 pairs; without, 0.95x, the CPU time 1.016x)."""
    with replacing(out / PARTIAL_STEP.format(k)) as tmp, open(tmp, "wb") as f:
        np.savez(f, key=np.array(key), netlist=np.array(r.netlist if k == 0 else ""),
                 **{name: np.asarray(getattr(r, name)) for name in _STEP_FIELDS})


def finished_steps(out: Path, key: str, n: int) -> list:
    """The ``StepResponse`` of steps 0, 1, ... (at most ``n``) whose partial files in ``out`` are steps of ``key``
    (``_steps_key``), up to the first missing, unreadable or another source's (which this run overwrites)."""
    from .transient import StepResponse  # noqa: PLC0415

    done = []
    for k in range(n):
        try:
            with np.load(out / PARTIAL_STEP.format(k), allow_pickle=False) as z:
                if str(z["key"]) != key:
                    break
                done.append(StepResponse(**{name: z[name] if z[name].ndim else z[name].item() for name in _STEP_FIELDS},
                                         netlist=str(z["netlist"])))
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            break
    return done


def _remove_partial_steps(out: Path) -> None:
    for path in out.glob(PARTIAL_STEP.format("*") + "*"):  # and a temporary one a kill left
        path.unlink(missing_ok=True)


def timing_sensitivity(src: Source, base: dict, factor: float = 2.0, progress: bool = False) -> dict[str, float]:
    """Which term of the ``timing:`` section sets the settling time: the same steps as ``base`` (a
    ``transient_run`` result) with one term at a time multiplied by ``factor`` (device capacitances, wiring,
    amplifier input, input rise). Returns, per term, the median over the steps the medians of ``base`` take
    (``is_timed``) of t_settle(scaled) / t_settle(base) - 1 (0: no effect; factor - 1: the term alone sets the
    time)."""
    from .transient import step_response  # noqa: PLC0415

    setup = src.setup()
    c, x = setup.circuit, setup.task.inputs
    caps, per, settle = timing_params(src.config)
    device = {k: factor * getattr(caps, k) for k in ("cgs", "cgd", "cgb", "cbd", "cbs")}
    variants = {"device capacitances": (replace(caps, **device), per),
                "wiring capacitance": (caps, replace(per, wiring_capacitance=factor * per.wiring_capacitance)),
                "amplifier capacitance": (caps, replace(per, amplifier_capacitance=factor * per.amplifier_capacitance)),
                "input rise": (caps, replace(per, input_rise=factor * per.input_rise))}
    rows = [r for r in base["steps"] if is_timed(r)]
    out = {}
    with _progress(progress, len(variants) * len(rows), f"sensitivity {src.config.name}", "step") as bar:
        for name, (cv, pv) in variants.items():
            ratios = []
            for r in rows:
                t = step_response(c, src.controls, x[r["from"]], x[r["to"]], capacitances=cv, periphery=pv,
                                  settle=settle, options=setup.options).settling_time
                ratios.append(t / r["settling_time_s"] - 1)
                bar.update(1)
            out[name] = float(np.nanmedian(ratios)) if ratios else float("nan")
    return out


# -- the learning hardware in one transient ---------------------------------------------------------------
def learning_run(src: Source, out: Path, *, steps: int = 100, plots: bool = True, progress: bool = False) -> dict:
    """``steps`` training steps of the learning hardware as one ngspice transient (``learning_hardware``), and
    the same steps of the quasi-static training loop on the config's backend, from the same gates. A full-batch
    step is one learning window per data point (a point past the hinge's margin closes none).

    Writes learning.json (settings, agreement, wall times; the windows whose switch closed at all, those it
    closed for part of the window only, the mean fraction of a window it was closed, and the windows the loop
    opened, all of them whole; the simulated time, a ``slot_s`` per presented point, beside ``hardware_time_s``,
    what ``train``'s clock counts for the same points: ``energy.learning_clock``, a t_settle + t_learn slot each,
    without the transient's input rise and switch edges; ``switch_time_s``, how long the transient's switch was
    closed, beside ``learning_time_s``, the loop's windows x t_learn, as ``train`` counts it), learning_gates.csv
    (per step and edge: both gates), learning.cir (the netlist ngspice ran) and learning_gates.png (the
    trajectories over each other; without plots, an earlier run's is removed: ``removed``). Returns the JSON's
    content.
    """
    from .energy import learning_clock  # noqa: PLC0415
    from .learning_hardware import compare, loop_windows, plan_steps, quasi_static, run_learning  # noqa: PLC0415

    setup = src.setup()
    caps, periphery, _ = timing_params(src.config)
    plan = plan_steps(setup, steps, caps, periphery, key="--steps")
    with _progress(progress, 2, f"learning transient {src.config.name}", "run") as bar:
        t0 = time.perf_counter()
        tran = run_learning(setup, src.controls, plan, caps, periphery)
        bar.update(1)
        t1 = time.perf_counter()
        ref = quasi_static(setup, src.controls, steps, seed=src.config.seed)
        bar.update(1)
    t_tran, t_ref = t1 - t0, time.perf_counter() - t1
    ref_windows = loop_windows(setup, src.controls, ref)
    agreement = compare(tran, ref, src.controls)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out / "learning.cir", tran.netlist)  # runs as it is: ngspice -b learning.cir
    _write_csv(out / "learning_gates.csv", ["step", "edge", "transient_v", "quasi_static_v"],
               ([k, e, repr(float(tran.gates_after[k, e])), repr(float(ref[k, e]))]
                for k in range(steps) for e in range(setup.circuit.n_edges)))
    hw = setup.hardware
    # train's clock for the points presented here, beside the time the transient simulates (its input rises and
    # switch edges on top): the two commands count the same slots
    clock = learning_clock(int(ref_windows.sum()), len(tran.plan.points), hw)
    result = {"name": src.config.name, "task": setup.task.name, "source": src.label, "steps": steps,
              "schedule": setup.params.schedule.kind, "loss": setup.rule.loss,
              "slots": len(tran.plan.points), "windows": tran.windows, "partial_windows": tran.partial_windows,
              "switch_on_fraction": float(tran.on_fraction.mean()), "switch_time_s": tran.switch_time,
              "quasi_static_windows": int(ref_windows.sum()),
              "t_settle_s": tran.plan.t_settle, "t_learn_s": tran.plan.t_learn, "capacitance_f": hw.capacitance,
              "resistance_ohm": hw.resistance, "gain": hw.gain, "rate_per_v": setup.rule.rate,
              "simulated_time_s": len(tran.plan.points) * tran.plan.period, "slot_s": tran.plan.period,
              "input_rise_s": tran.plan.rise,
              "switch_edges_s": tran.plan.period - tran.plan.rise - tran.plan.t_settle - tran.plan.t_learn,
              "hardware_time_s": clock.hardware_time, "learning_time_s": clock.learning_time,
              "transient_wall_s": round(t_tran, 3),
              "quasi_static_wall_s": round(t_ref, 3), "quasi_static_backend": src.config.simulator.backend,
              "time_points": int(len(tran.time)), "agreement": agreement,
              "files": ["learning.json", "learning_gates.csv", "learning.cir"]
              + (["learning_gates.png"] if plots else []),
              "removed": [] if plots else _remove_stale(out, ["learning_gates.png"])}
    write_text_atomically(out / "learning.json", json_text(result))
    if plots:
        plot_learning(out / "learning_gates.png", tran, ref, src.controls)
    return result


def plot_learning(path: Path, tran, ref: np.ndarray, start: np.ndarray) -> Path:
    """Gate trajectories of the transient (lines, against time in steps) and of the quasi-static loop (dots after
    each step), and their difference."""
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    steps_axis = tran.time / (tran.plan.period * tran.plan.per_step)
    a.plot(steps_axis, tran.gates, lw=0.8)
    a.set_prop_cycle(None)
    k = np.arange(1, len(ref) + 1)
    a.plot(k, ref, ".", ms=3)
    a.set(xlabel="training step", ylabel="gate voltage (V)")
    a.set_title("gates: ngspice transient (lines), quasi-static loop (dots)", fontsize=9)
    diff = np.abs(tran.gates_after - ref).max(axis=1)
    moved = np.abs(ref - np.asarray(start)[None]).max(axis=1)
    b.semilogy(k, np.maximum(diff, 1e-16), label="max |transient - quasi-static|")
    b.semilogy(k, np.maximum(moved, 1e-16), label="max |gate - start|")
    b.set(xlabel="training step", ylabel="V")
    b.legend(fontsize=8)
    b.set_title(f"t_settle {tran.plan.t_settle:.3g} s, t_learn {tran.plan.t_learn:.3g} s", fontsize=9)
    for ax in (a, b):
        ax.grid(alpha=0.3)
    return _save(fig, path, plt)


def _stat(fn, values: np.ndarray) -> float | None:
    """``fn`` of ``values``, or None when there are none."""
    return float(fn(values)) if len(values) else None


def _write_waves(out: Path, c, pairs, responses) -> None:
    """waves.csv: step, time from the step (s), each output (V), drivers' power (W); waves.npz: every node."""
    _write_csv(out / "waves.csv", ["step", "time_s", *(f"out{k}_v" for k in range(c.n_outputs)), "supply_power_w"],
               ([k, f"{t:.9e}", *(f"{v:.9e}" for v in o), f"{p:.9e}"] for k, r in enumerate(responses)
                for t, o, p in zip(r.time - r.t_step, r.outputs, r.supply_power)))
    arrays = {f"step{k}_time": r.time - r.t_step for k, r in enumerate(responses)}
    arrays.update({f"step{k}_voltages": r.voltages for k, r in enumerate(responses)})
    with replacing(out / "waves.npz") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, pairs=np.array(pairs), **arrays)


def _remove_stale(out: Path, names: list[str]) -> list[str]:
    """Delete the files ``names`` an earlier run left in ``out`` and this one does not write (a figure drawn from
    other data, a table that would disagree with this run's arrays); returns the names of those it found."""
    found = [name for name in names if (out / name).exists()]
    for name in found:
        (out / name).unlink()
    return found


def _write_csv(path: Path, header: list, rows) -> None:
    """``path``: a CSV table of ``header`` and ``rows``, whole or not at all (``replacing``)."""
    with replacing(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


# -- figures ------------------------------------------------------------------------------------------------
def _layout(setup: Setup) -> tuple[dict[int, np.ndarray], np.ndarray | None]:
    """Node positions (x, y) for drawing, and the periodic lattice's span (x: its columns, y: its rows) when it is
    one (else None)."""
    import networkx as nx  # noqa: PLC0415

    g = build_network(setup.config)
    if all("pos" in g.nodes[n] for n in g.nodes):
        pos = {n: np.array([g.nodes[n]["pos"][1], -g.nodes[n]["pos"][0]], float) for n in g.nodes}
        net = setup.config.network
        return pos, np.array([net.cols, net.rows], float) if net.kind == "lattice" and net.periodic else None
    return {n: np.asarray(p) for n, p in nx.spring_layout(g, seed=0).items()}, None


def _segments(setup: Setup, pos: dict, span: np.ndarray | None) -> list[list[np.ndarray]]:
    """Per edge, the line segments that draw it: one, or two half edges leaving the picture for a periodic wrap."""
    segs = []
    for a, b in setup.circuit.edges:
        pa, pb = pos[int(a)], pos[int(b)]
        d = pb - pa
        if span is not None and np.any(np.abs(d) > 1.5):
            d = d - np.sign(d) * span * (np.abs(d) > 1.5)
            segs.append([np.array([pa, pa + d / 2]), np.array([pb, pb - d / 2])])
        else:
            segs.append([np.array([pa, pb])])
    return segs


def plot_power_map(path: Path, setup: Setup, free: np.ndarray, clamped: np.ndarray) -> Path:
    """Each edge coloured by its median power over the data points (W, log scale), free and clamped twins: on the
    network's drawing, or for a layered network as a matrix per pair of connected layers (a drawing of its
    hundreds of crossing edges shows none of them)."""
    from matplotlib.collections import LineCollection  # noqa: PLC0415
    from matplotlib.colors import LogNorm  # noqa: PLC0415

    plt = _pyplot()
    c = setup.circuit
    med = [np.median(free, axis=0), np.median(clamped, axis=0)]
    positive = np.concatenate([m[m > 0] for m in med])
    hi = float(positive.max()) if len(positive) else 1e-3
    lo = max(float(positive.min()) if len(positive) else hi * 1e-6, hi * 1e-6)
    norm = LogNorm(lo, hi)
    if setup.config.network.kind == "layered":
        return _power_matrices(path, setup, med, norm, plt)
    pos, span = _layout(setup)
    segs = _segments(setup, pos, span)
    lines = [s for parts in segs for s in parts]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    roles = {**{int(n): ("input", "C0") for n in c.inputs}, **{int(n): ("rail", "C3") for n in c.rails},
             **{int(n): ("output", "C2") for n in c.clamp_nodes}}
    for ax, m, title in zip(axes, med, ("free twin", "clamped twin")):
        values = [max(float(m[e]), lo) for e, parts in enumerate(segs) for _ in parts]
        lc = LineCollection(lines, array=np.array(values), cmap="inferno", norm=norm, linewidths=4)
        ax.add_collection(lc)
        xy = np.array(list(pos.values()))
        ax.scatter(xy[:, 0], xy[:, 1], s=30, c="lightgray", edgecolors="k", zorder=3)
        for n, (label, colour) in roles.items():
            ax.scatter(*pos[n], s=90, c=colour, edgecolors="k", zorder=4, label=label)
        handles, labels = ax.get_legend_handles_labels()
        keep = dict(zip(labels, handles))
        ax.legend(keep.values(), keep.keys(), fontsize=7, loc="upper right")
        ax.set(title=f"{setup.task.name}, {title}: median power per {c.device.edge_noun}", aspect="equal")
        ax.autoscale()
        ax.margins(0.12)
        ax.set(xticks=[], yticks=[])
        fig.colorbar(lc, ax=ax, label="power (W)", shrink=0.8)
    return _save(fig, path, plt)


def _power_matrices(path: Path, setup: Setup, med: list[np.ndarray], norm, plt) -> Path:
    """``plot_power_map`` of a layered network: for each pair of connected layers (inputs -> outputs; with a hidden
    layer inputs -> hidden, hidden -> outputs and any direct edges) a matrix of the edges' median power, rows the
    first layer's nodes and columns the second's, missing pairs blank; the free twin above, the clamped below."""
    g = build_network(setup.config)
    layers = g.graph["layers"]
    layer_of = {n: k for k, nodes in enumerate(layers) for n in nodes}
    index = {n: i for nodes in layers for i, n in enumerate(nodes)}
    names = ("input", "hidden", "output")
    pairs = sorted({tuple(sorted((layer_of[int(a)], layer_of[int(b)]))) for a, b in setup.circuit.edges})
    fig, axes = plt.subplots(2, len(pairs), figsize=(4 + 3.5 * len(pairs), 9), squeeze=False)
    cmap = plt.get_cmap("inferno").with_extremes(bad="0.85")
    for row, (m, twin) in enumerate(zip(med, ("free twin", "clamped twin"))):
        for col, (lp, lq) in enumerate(pairs):
            grid = np.full((len(layers[lp]), len(layers[lq])), np.nan)
            for e, (a, b) in enumerate(setup.circuit.edges):
                a, b = sorted((int(a), int(b)), key=layer_of.get)
                if (layer_of[a], layer_of[b]) == (lp, lq):
                    grid[index[a], index[b]] = max(float(m[e]), norm.vmin)
            ax = axes[row, col]
            im = ax.imshow(grid, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
            ax.set(xlabel=f"{names[lq]} node", ylabel=f"{names[lp]} node",
                   title=f"{setup.task.name}, {twin}:\n{names[lp]} -> {names[lq]} edges, median power")
            for axis in (ax.xaxis, ax.yaxis):
                axis.get_major_locator().set_params(integer=True)
        fig.colorbar(im, ax=axes[row, -1], label=f"power per {setup.circuit.device.edge_noun} (W)\n(grey: no edge)")
    return _save(fig, path, plt)


#: waveforms.png shows the outputs and nodes up to this many times the slowest settling time (the simulated window
#: runs on long after: 28 ns of the digits' settling in a 1 us window was a vertical line at its left edge)
WAVEFORM_ZOOM = 4.0


def plot_waveforms(path: Path, c, controls: np.ndarray, pairs, responses) -> Path:
    """Outputs against time from each step (left) and every node of the slowest step (middle), up to
    ``WAVEFORM_ZOOM`` times the slowest settling time, and the gates, held at their values over an inference
    (right; of more than ``plots.MANY_EDGES`` edges, their histogram)."""
    plt = _pyplot()
    fig, (a, b, g) = plt.subplots(1, 3, figsize=(14, 4))
    for k, r in enumerate(responses):
        t = (r.time - r.t_step) * 1e6
        for o in range(r.outputs.shape[1]):
            a.plot(t, r.outputs[:, o] * 1e3, lw=1, label=f"step {pairs[k][0]}->{pairs[k][1]}" if o == 0 else None)
    a.set(xlabel="time from the step (us)", ylabel="output (mV)", title="outputs")
    if len(responses) <= 10:
        a.legend(fontsize=7)
    times = np.array([r.settling_time for r in responses])
    slow = int(np.nanargmax(times)) if np.any(np.isfinite(times)) else 0
    r = responses[slow]
    t = (r.time - r.t_step) * 1e6
    b.plot(t, r.voltages * 1e3, lw=0.8)
    if r.settled:
        b.axvline(r.settling_time * 1e6, color="k", ls="--", lw=1, label=f"settled {si(r.settling_time, 's')}")
        b.legend(fontsize=7)
    b.set(xlabel="time from the step (us)", ylabel="node voltage (mV)",
          title=f"every node, slowest step ({pairs[slow][0]}->{pairs[slow][1]})")
    if np.any(np.isfinite(times)) and np.nanmax(times) > 0:  # the step's response, not the window's rest
        end = min(WAVEFORM_ZOOM * float(np.nanmax(times)), max(float(t[-1]) / 1e6, 1e-15)) * 1e6
        for ax in (a, b):
            ax.set_xlim(-0.1 * end, end)
    if len(controls) <= MANY_EDGES:
        g.plot(t, np.broadcast_to(controls, (len(t), len(controls))), lw=0.8)
        g.set(xlabel="time from the step (us)", ylabel="gate voltage (V)",
              title="gates (held: the gate capacitors hold uF)")
    else:  # as many lines as edges would hide each other: their distribution, which the inference does not move
        g.hist(controls, bins=40, color="C0")
        g.set(xlabel="gate voltage (V)", ylabel="edges",
              title=f"the {len(controls)} gates (held over the inference)")
    for ax in (a, b, g):
        ax.grid(alpha=0.3)
    return _save(fig, path, plt)


def plot_settling(path: Path, settling: np.ndarray) -> Path:
    """Histogram of the settling times (log bins); steps whose outputs never leave the band settle in 0 s."""
    plt = _pyplot()
    moved = settling[np.isfinite(settling) & (settling > 0)]
    zero, unsettled = int(np.sum(settling == 0)), int(np.sum(np.isnan(settling)))
    fig, ax = _axes(plt, "settling time (us)", "steps",
                    f"settling: {len(moved)} steps; {zero} inside the band (0 s), {unsettled} not settled")
    if len(moved):
        lo, hi = moved.min(), moved.max()
        bins = np.geomspace(lo / 1.2, hi * 1.2, max(5, min(30, len(moved) + 1)))
        ax.hist(moved * 1e6, bins=bins * 1e6, color="C0")
        ax.set_xscale("log")
    return _save(fig, path, plt)
