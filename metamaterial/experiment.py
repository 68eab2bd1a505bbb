"""The single place that wires a config to typed objects: graph -> circuit -> task -> rule -> solver -> trainer.

``build(cfg)`` gives the typed objects of a run (``Setup``), ``check_config(cfg)`` makes its checks that need no
network (cheap: a sweep makes them on every point before anything runs), ``initial_controls`` each replica's
starting controls, ``make_solver`` / ``make_trainer`` the backend (from ``sim.registry``) and the trainer. Run
directories and checkpoints are ``runs``; the ``solve`` and ``netlist`` commands are ``points``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from . import diagnostics, tasks
from . import graph as graphs
from .circuit import Circuit, compile_graph
from .config import Config, NetworkConfig
from .configfile import as_config
from .devices import (
    LEVEL1,
    THREE_REGIME,
    EdgeParams,
    NmosParams,
    PotentiometerParams,
    ResistorParams,
    card_level,
    draw_mismatch,
    nmos_from_card,
    nmos_preset,
)
from .errors import ConfigError, ValidationError, shown
from .learning.gates import EdgeDynamics, HardwareParams
from .learning.rules import HINGE_LOSSES, CoupledLearning
from .learning.schedules import Schedule
from .learning.trainer import Trainer, TrainParams
from .mos import OVERDRIVE_CAP
from .netlist import SpiceOptions
from .sim import registry
from .sim.base import AbstractSolver
from .tasks import Task


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
    elif n.kind == "layered":
        g = graphs.layered_network(n.n_inputs, n.n_outputs, n.n_hidden, n.density, n.n_edges,
                                   seed=cfg.seed if n.seed is None else n.seed, direct=n.direct)
    else:
        g = graphs.load_network(n.file)
    r = cfg.roles
    if r is None:  # a layered network's own roles: its input layer, its output layer (as pairs if differential)
        ins, _, outs = g.graph["layers"]
        half = len(outs) // 2
        outputs = tuple(zip(outs[:half], outs[half:])) if n.differential else tuple((o, None) for o in outs)
        return graphs.assign_roles(g, graphs.Roles(inputs=tuple(ins), rails=(), outputs=outputs))
    roles = graphs.Roles(
        inputs=tuple(graphs.resolve_node(g, ref, f"roles.inputs[{i}]") for i, ref in enumerate(r.inputs)),
        rails=tuple((graphs.resolve_node(g, rail.node, f"roles.rails[{i}].node"), rail.volts)
                    for i, rail in enumerate(r.rails)),
        outputs=tuple(_output(g, o, i) for i, o in enumerate(r.outputs)),
    )
    return graphs.assign_roles(g, roles)


def _output(g, o, i: int) -> tuple[int, int | None]:
    if isinstance(o, (int, str, list)):
        return graphs.resolve_node(g, o, f"roles.outputs[{i}]"), None
    neg = None if o.neg is None else graphs.resolve_node(g, o.neg, f"roles.outputs[{i}].neg")
    return graphs.resolve_node(g, o.pos, f"roles.outputs[{i}].pos"), neg


def build_device(cfg: Config) -> EdgeParams:
    """The edge device at its ``device.corner`` (a kind without transistors refuses any but typical)."""
    d = cfg.device
    if d.kind == "resistor":
        device = ResistorParams(g_min=d.g_min, g_max=d.g_max)
    elif d.kind == "potentiometer":
        device = PotentiometerParams(r_min=d.r_min, r_max=d.r_max, n_taps=d.n_taps)
    else:
        overrides = {k: v for k, v in d.params.model_dump().items() if v is not None}
        if d.model_file:
            size = {k: overrides.pop(k) for k in ("w", "l") if k in overrides}
            if overrides:
                raise ConfigError(f"device.params: {sorted(overrides)} cannot override a model_file card (ngspice "
                                  "reads the card as written); edit the card, or set only w and l")
            device = nmos_from_card(d.model_file, **size)
        else:
            law = nmos_preset(d.preset).law
            owner = {THREE_REGIME: "the subthreshold branch of the three-regime law (preset ald1106-hw)",
                     LEVEL1: "level 1's bulk junctions, which the three-regime law does not have"}
            for key, only in (("sub_join", THREE_REGIME), ("sub_decade", THREE_REGIME), ("is_", LEVEL1)):
                if key in overrides and law != only:
                    what = owner[only]
                    raise ConfigError(f"device.params.{key.rstrip('_')}: sets {what} (got preset {d.preset}); remove "
                                      "it or choose a preset that has it")
            device = nmos_preset(d.preset, **overrides)
    return device.at_corner(d.process_corner())


def build_task(cfg: Config) -> Task:
    task = _data_task(cfg)
    v = cfg.task.validation
    return task if v is None else tasks.validation_split(task, v.fraction, v.seed)


def _data_task(cfg: Config) -> Task:
    t = cfg.task
    if t.name == "xor":
        return tasks.xor_task(t.low, t.high, tuple(t.labels))
    if t.name == "regression":
        return tasks.regression_task(np.array(t.x), np.array(t.y))
    if t.name == "linear_regression":
        return tasks.linear_regression_task(t.n_points, t.slope, t.offset, t.low, t.high)
    if t.name == "allostery":
        return tasks.allostery_task(t.source, tuple(t.targets))
    if t.name in ("iris", "digits"):
        build_labelled = tasks.iris_task if t.name == "iris" else tasks.digits_task
        return build_labelled(t.low, t.high, t.target_on, t.target_off, t.test_fraction, t.split_seed)
    return tasks.csv_task(t.path, t.n_inputs, t.classification, t.low, t.high, t.target_on, t.target_off, t.scale,
                          t.test_fraction, t.split_seed)


def build(cfg: Config | str | Path) -> Setup:
    """Typed objects of a run (``cfg``: a Config, or a config file's path: ``configfile.as_config``); every
    cross-section check happens here (``check_config`` makes the ones that need no network, without building it)."""
    cfg = as_config(cfg, "build")
    device, task = build_device(cfg), build_task(cfg)
    _check_backend(cfg, device)
    low, high, rate = resolve_learning(cfg, device, task)
    check_memory(cfg, planned_edges(cfg))  # before the graph is built: a layered network can ask for 10^10 edges
    # a device kind without a temperature model refuses a non-nominal simulator.temperature here (exit 2)
    circuit = compile_graph(build_network(cfg), device, gmin=cfg.simulator.gmin, temperature=cfg.simulator.temperature,
                            body=cfg.device.body)
    if cfg.network.kind == "file":
        check_memory(cfg, circuit.n_edges)
    if _draws_mismatch(cfg, device):
        mm = cfg.device.mismatch
        circuit = _with_mismatch(cfg, circuit, cfg.seed if mm.seed is None else mm.seed)
    _check_role_counts(task, cfg, circuit.n_inputs, circuit.n_outputs)
    lc = cfg.learning
    # a constant per-edge learning bias, drawn once from the run's seed
    bias = (lc.bias + lc.bias_sigma * np.random.default_rng([cfg.seed, 2]).standard_normal(circuit.n_edges)
            if lc.bias or lc.bias_sigma else None)
    dyn = EdgeDynamics(device.update_kind, low, high, lc.leak.tau if lc.leak else None,
                       lc.leak.rest if lc.leak else 0.0, bias, lc.dead_band)
    rule = CoupledLearning(nudge=lc.nudge, rate=rate, loss=lc.loss, margin=lc.margin, update_edges=lc.update_edges,
                           rate_decay=lc.rate_decay)
    params = TrainParams(lc.epochs, Schedule(lc.schedule, lc.batch_size), lc.update_probability, lc.eval_every,
                         lc.record_every, lc.read_noise, lc.update_mask, lc.noisy_decisions)
    s = cfg.simulator
    return Setup(cfg, circuit, task, rule, dyn, HardwareParams(**cfg.hardware.model_dump()), params,
                 SpiceOptions(s.reltol, s.abstol, s.vntol, s.itl1))


def planned_edges(cfg: Config) -> int | None:
    """How many edges the config's network has, known without building it (None for a network file)."""
    n = cfg.network
    if n.kind == "lattice":
        return graphs.lattice_edges(n.rows, n.cols, n.periodic)
    if n.kind == "random":
        return n.n_edges
    if n.kind == "layered":
        return n.n_edges or int(round(n.density * graphs.layered_pairs(n.n_inputs, n.n_outputs, n.n_hidden,
                                                                         n.direct)))
    return None


def check_memory(cfg: Config, n_edges: int | None) -> None:
    """Refuse a network of ``n_edges`` edges that the config's backend cannot solve in this machine's free memory
    (``registry.memory_refusal``), naming the keys that size it and a backend that would fit; None: not known yet."""
    available = registry.available_memory() if n_edges is not None else None
    backend = cfg.simulator.backend
    if available is None or not (why := registry.memory_refusal(backend, n_edges, available)):
        return
    keys, got, fix = _size_keys(cfg.network)
    other = [b for b in registry.backend_names() if b != backend and registry.memory_need(b, n_edges) <= available]
    if other:
        fix += (f", or set simulator.backend: {other[0]} (at least {registry.memory_need(other[0], n_edges) / 1e9:.1f} "
                "GB)")
    raise ConfigError(f"{keys}: {why} (got {got}); {fix}")


def _size_keys(n: NetworkConfig) -> tuple[str, str, str]:
    """(the key paths that set how many edges the network ``n`` has, what they hold, how to make it smaller)."""
    if n.kind == "lattice":
        return "network.rows, network.cols", f"a {n.rows}x{n.cols} lattice", "lower network.rows or network.cols"
    if n.kind == "file":
        return "network.file", str(n.file), "give a network file of fewer edges"
    if n.kind == "random" or n.n_edges is not None:
        return "network.n_edges", f"n_edges {n.n_edges}", "lower network.n_edges"
    return ("network.n_inputs, network.n_hidden, network.n_outputs, network.density",
            f"layers of {n.n_inputs}, {n.n_hidden} and {n.n_outputs} nodes, density {n.density:g}",
            "give network.n_edges, or lower network.density or the layers' sizes")


def check_config(cfg: Config) -> None:
    """Every check of ``build`` that needs no network (no graph built, no circuit compiled: about 0.1 ms on XOR, so
    a sweep makes it on each point before anything runs): the device and the task are built, the device is asked
    for ``simulator.temperature`` and the mismatch, and the learning keys are checked against both
    (``resolve_learning``). Left to ``build``: roles against the graph and the task, ``device.body``."""
    device = build_device(cfg)
    _check_backend(cfg, device)
    device.at_temperature(cfg.simulator.temperature)
    _draws_mismatch(cfg, device)
    resolve_learning(cfg, device, build_task(cfg))


def check_roles(cfg: Config) -> None:
    """The checks of ``build`` that need the graph but no circuit: the network is built (a network file read) and
    the roles are checked against it and against the task's inputs and outputs; what a sweep makes once per
    distinct network, roles and task before anything runs."""
    check_memory(cfg, planned_edges(cfg))  # before the graph is built, as build does
    g = build_network(cfg)
    _check_role_counts(build_task(cfg), cfg, len(g.graph["inputs"]), len(g.graph["outputs"]))


def drawn_from_run_seed(cfg: Config) -> bool:
    """Whether ``cfg``'s network is drawn from the run's seed (a random or layered one without ``network.seed``):
    then each seed builds another graph, and one may be refused where another is not."""
    return cfg.network.kind in ("random", "layered") and cfg.network.seed is None


def _check_role_counts(task: Task, cfg: Config, n_inputs: int, n_outputs: int) -> None:
    """The roles give as many input nodes and outputs as the task has columns: named by the task key that sets the
    task's count (so that a --set of it is blamed), ``task.name`` where the task fixes it, and by the keys that set
    the roles: ``roles`` or, for a layered network's default roles, its layer sizes."""
    kind = cfg.task.name
    csv = kind == "csv"
    layers = cfg.roles is None  # a layered network's own roles (Config._roles_given): its layers set the counts
    if task.n_inputs != n_inputs:
        key, other = (("task.n_inputs", f"set task.n_inputs to {n_inputs}, the roles' count") if csv
                      else ("task.name", "choose another task"))
        where, give = (("network.n_inputs", f"set network.n_inputs to {task.n_inputs}") if layers else
                       ("roles.inputs", f"give roles.inputs {task.n_inputs} node(s)"))
        raise ConfigError(f"{where}, {key}: task {task.name} needs {task.n_inputs} input node(s) (got "
                          f"{n_inputs}); {give}, or {other}")
    if task.n_outputs != n_outputs:
        key, other = (("task.targets", "give task.targets one voltage per output") if kind == "allostery" else
                      ("task.n_inputs", "move the split of the CSV's columns with task.n_inputs")
                      if csv and not task.is_classification else ("task.name", "choose another task"))
        if layers:
            pairs = cfg.network.differential
            where, give = "network.n_outputs", (f"set network.n_outputs to {2 * task.n_outputs} (output nodes, paired "
                                                "by network.differential)" if pairs else
                                                f"set network.n_outputs to {task.n_outputs}")
        else:
            where, give = "roles.outputs", f"give roles.outputs {task.n_outputs} output(s)"
        raise ConfigError(f"{where}, {key}: task {task.name} needs {task.n_outputs} output(s) (got "
                          f"{n_outputs}); {give}, or {other}")


def _check_backend(cfg: Config, device: EdgeParams) -> None:
    """A model card of level 2 or 3 runs on ngspice only: the native solver follows the level-1 law."""
    level = card_level(device) if isinstance(device, NmosParams) else 1
    if cfg.simulator.backend == "native" and level != 1:
        raise ConfigError(f"device.model_file, simulator.backend: a level-{level} card runs on ngspice only (the "
                          "native solver follows the level-1 law) (got simulator.backend native); set "
                          "simulator.backend: ngspice, or give a level-1 card")


def _draws_mismatch(cfg: Config, device: EdgeParams) -> bool:
    """Whether ``cfg`` asks for a mismatch to draw; refused for a device that has none."""
    mm = cfg.device.mismatch
    if mm is None or not (mm.vto_sigma > 0 or mm.k_sigma > 0):
        return False
    if not device.supports_mismatch:
        raise ConfigError(device.mismatch_refusal("device.mismatch"))
    return True


def resolve_learning(cfg: Config, device: EdgeParams, task: Task) -> tuple[float, float, float]:
    """The control bounds (low, high, in the device's control unit) and the rate of ``cfg``'s learning on
    ``device`` and ``task``, after checking the learning keys against them: bounds the device takes, initial
    controls within the bounds, where the rate comes from, the loss against the task, the batch size against its
    points. Raises ``ConfigError`` naming the key."""
    lc, hc = cfg.learning, cfg.hardware
    low, high = lc.bounds or device.default_bounds()
    device.check_bounds(low, high, "learning.bounds", "device.kind")
    _check_overdrive(cfg, device, task, high)
    for key in ("value",) if lc.init.kind == "constant" else ("low", "high"):
        v = getattr(lc.init, key)
        if v is not None and not low <= v <= high:
            raise ConfigError(f"learning.init.{key}, learning.bounds: {device.kind} initial controls must lie within "
                              "the bounds "
                              f"[{low:g}, {high:g}] {device.control_unit} (got {v:g}); give values in "
                              f"{device.control_unit} inside them, or leave learning.init unset for the "
                              f"{device.kind}'s default")
    if device.update_kind == "sign":
        given = {k: v for k, v, unset in (("rate", lc.rate, None), ("rate_decay", lc.rate_decay, 1),
                                          ("bias", lc.bias, 0), ("bias_sigma", lc.bias_sigma, 0),
                                          ("leak", lc.leak and lc.leak.model_dump(), None)) if v != unset}
        if given:
            keys = ", ".join(f"learning.{k}" for k in given)
            got = ", ".join(f"{k} {shown(v)}" for k, v in given.items())
            raise ConfigError(f"{keys}, device.kind: a {device.kind} steps one whole tap per update (sign rule), "
                              f"with no rate, decay, bias or leak (got {got}); remove {keys}, or use device.kind: nmos "
                              "or resistor")
        rate = 1.0
    elif lc.rate is not None:
        rate = lc.rate
    elif device.control_unit == "V":  # a gate voltage: the charging circuit (hardware.*) sets the rate
        rate = HardwareParams(**hc.model_dump()).rate  # t_learn resolved by the config (from the rate, if given)
    else:
        raise ConfigError(f"learning.rate, device.kind: a {device.kind} network needs an explicit rate in "
                          f"{device.rate_unit} (got none); give learning.rate, e.g. 0.01")
    if lc.loss in HINGE_LOSSES and not task.is_classification:
        raise ConfigError(f"learning.loss, task.name: {lc.loss!r} needs a classification task (got task.name="
                          f"{task.name}); use loss mse, or a classification task")
    if lc.loss == "multiclass_hinge" and task.decode != "argmax":
        raise ConfigError(f"learning.loss, task.name: 'multiclass_hinge' needs one output per class (got task.name="
                          f"{task.name}, which reads one output against levels); use 'hinge'")
    if lc.loss == "hinge":
        _check_reachable_margin(lc.margin, task)
    if lc.schedule == "mini_batch" and lc.batch_size > task.n_points:
        raise ConfigError(f"learning.batch_size: must be <= the {task.n_points} data points (got {lc.batch_size}); "
                          f"give at most {task.n_points}")
    return low, high, rate


def reachable_margin(task: Task) -> float | None:
    """The class margin (V) every point of ``task`` can reach under nearest-level decoding, half the smallest gap
    between its levels: a point's margin (``step.class_margins``) grows as its output nears its own level and stays
    at half the gap to the nearest other level on and past it. None for argmax decoding (no bound) or a
    regression."""
    if task.decode != "nearest":
        return None
    return float(np.min(np.diff(np.sort(np.asarray(task.levels, float))))) / 2


def _check_reachable_margin(margin: float, task: Task) -> None:
    """Refuse a hinge margin no point can reach (``reachable_margin``): it keeps every point updating for ever
    (the loop then drives the outputs onto the levels, an MSE rule in effect)."""
    reach = reachable_margin(task)
    if reach is not None and margin >= reach:
        raise ConfigError(f"learning.margin, task.labels: a margin of {margin:g} V cannot be reached: a point's "
                          f"margin is at most half the gap between the labels ({reach:.6g} V for labels "
                          f"{' and '.join(f'{v:g}' for v in task.levels)} V), which it has on its own label and past "
                          f"it, so every point would go on updating (got margin {margin:g}); give learning.margin "
                          f"below {reach:.6g}, or labels further apart")


def _check_overdrive(cfg: Config, device: EdgeParams, task: Task, high: float) -> None:
    """Refuse gate bounds above the three-regime law's valid range: the law caps each terminal's overdrive
    V_G - V_T - V at ``mos.OVERDRIVE_CAP`` (100 V), past which its current stops growing, and once both terminals
    are past it, the current falls to gmin's. A node sits at or above the lowest source (the passive network's
    inputs and rails; the law has no junctions to ground) and V_T is at least its value less 8 sigma of the twin
    mismatch, so gates up to OVERDRIVE_CAP + min(V_T, 0) + min(lowest source, 0) stay within it (100 V on every
    shipped config)."""
    if not (isinstance(device, NmosParams) and device.law == THREE_REGIME):
        return
    mm = cfg.device.mismatch
    vt = device.vto - (8 * mm.vto_sigma if mm is not None else 0.0)
    rails = [r.volts for r in cfg.roles.rails] if cfg.roles is not None else []
    lowest = min([float(np.min(x)) for x in (task.inputs, task.test_inputs) if x is not None and x.size] + rails
                 + [0.0])
    limit = OVERDRIVE_CAP + min(vt, 0.0) + lowest
    if high > limit:
        raise ConfigError(f"learning.bounds: the three-regime law ({device.name}) holds only while each terminal's "
                          f"gate overdrive V_G - V_T - V stays below {OVERDRIVE_CAP:g} V, past which its current stops "
                          f"growing and then collapses, so gates may reach at most {limit:.6g} V here (got a high "
                          f"bound of {high:g} V); lower learning.bounds[1]")


def _with_mismatch(cfg: Config, circuit: Circuit, seed: int) -> Circuit:
    mm = cfg.device.mismatch
    return replace(circuit, mismatch=draw_mismatch(circuit.n_edges, mm.vto_sigma, mm.k_sigma,
                                                   np.random.default_rng([seed, 1]), mm.twins == "matched"))


def chips_per_replica(setup: Setup) -> bool:
    """Whether every replica is its own chip (``device.mismatch.per_replica`` with a mismatch to draw)."""
    mm = setup.config.device.mismatch
    return setup.circuit.mismatch is not None and mm is not None and mm.per_replica


def replica_setup(setup: Setup, seed: int) -> Setup:
    """The setup of the replica trained from ``seed``: its own chip under ``device.mismatch.per_replica`` (the
    draw a single run with ``seed`` makes, from ``numpy.random.default_rng([seed, 1])``), else ``setup``."""
    if not chips_per_replica(setup):
        return setup
    return replace(setup, circuit=_with_mismatch(setup.config, setup.circuit, seed))


def rate_source(setup: Setup) -> str:
    """Where the rate in use came from, in words: the config's ``learning.rate``, or the charging circuit."""
    if setup.circuit.device.update_kind == "sign":
        return "potentiometers step one tap per update"
    if setup.config.learning.rate is not None:
        return "learning.rate as given"
    hw = setup.hardware
    return (f"no learning.rate given: the hardware default gain t_learn / (R C) = {hw.gain:g} x {hw.t_learn:g} s / "
            f"({hw.resistance:g} ohm x {hw.capacitance:g} F)")


def check_learnable(setup: Setup) -> list[str]:
    """Warnings before training (``diagnostics.before_training``): targets the network cannot output, target
    orders it cannot follow, a rate that crosses the whole control range in one update."""
    return diagnostics.before_training(setup.circuit, setup.task, setup.rule.rate, setup.dynamics.low,
                                       setup.dynamics.high)


def initial_controls(setup: Setup, rng: np.random.Generator) -> np.ndarray:
    """[E] initial controls (the device's unit: V, S or taps) from ``learning.init``, drawn from ``rng`` (a numpy
    ``Generator``); unset bounds of a uniform draw take the device's range."""
    _check_setup(setup, "initial_controls")
    if not isinstance(rng, np.random.Generator):
        raise ValidationError(f"initial_controls: rng must be a numpy Generator (got {type(rng).__name__} "
                              f"{shown(rng)}); give np.random.default_rng(seed)")
    init, dev, n = setup.config.learning.init, setup.circuit.device, setup.circuit.n_edges
    lo, hi = dev.default_init()
    lo, hi = (lo if init.low is None else init.low), (hi if init.high is None else init.high)
    values = np.full(n, float(init.value)) if init.kind == "constant" else rng.uniform(lo, hi, n)
    if dev.discrete:
        values = np.round(values)
    return np.clip(values, setup.dynamics.low, setup.dynamics.high)


def _check_setup(setup: object, where: str, hint: str = "") -> None:
    """Refuse, named ``where``, what is not a ``Setup`` (a Config, a path) with how to make one."""
    if not isinstance(setup, Setup):
        raise ValidationError(f"{where}: takes a Setup, what build(config) returns (got {type(setup).__name__} "
                              f"{shown(setup)}){hint or '; give build(load_config(path))'}")


def make_solver(setup: Setup) -> AbstractSolver:
    """The setup's solver: ``simulator.backend``, made by ``sim.registry`` with the config's tolerances (to run a
    config on another backend, ``config.with_backend``)."""
    _check_setup(setup, "make_solver", "; for a solver by name, NativeSolver() or NgspiceSolver()")
    return registry.make_solver(setup.config.simulator.backend, setup.options)


def make_trainer(setup: Setup, solver: AbstractSolver | None = None, **params) -> Trainer:
    """The trainer of a setup on its solver (``make_solver``, or the one given), with ``TrainParams`` changes
    (``epochs=10``: any of its fields by name)."""
    _check_setup(setup, "make_trainer")
    known = [f.name for f in fields(TrainParams)]
    unknown = [k for k in params if k not in known]
    if unknown:
        raise ValidationError(f"make_trainer: TrainParams has no field {unknown[0]!r} (got {unknown}); it has "
                              f"{', '.join(known)}")
    if solver is not None and not isinstance(solver, AbstractSolver):
        raise ValidationError(f"make_trainer: solver must be a solver such as NativeSolver() or NgspiceSolver() (got "
                              f"{type(solver).__name__} {shown(solver)}); give one, or None for the config's backend")
    return Trainer(setup.circuit, setup.task, setup.rule, setup.dynamics, replace(setup.params, **params),
                   solver or make_solver(setup), setup.hardware)


__all__ = ["Setup", "build", "check_config", "resolve_learning", "check_learnable", "rate_source", "chips_per_replica",
           "reachable_margin",
           "replica_setup", "build_network", "build_device", "build_task", "initial_controls", "make_solver",
           "make_trainer", "planned_edges", "check_memory"]
