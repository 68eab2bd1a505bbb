"""Claim: desynchronous learning (Wycoff, Dillavou, Stern, Liu, Durian, J. Chem. Phys. 156, 144903, 2022).

Each edge applies each update with probability p (``learning.update_probability``, independent Bernoulli masks
per replica). A run at p < 1 is trained for epochs / p with the rate unchanged, so every p gets the same
expected number of updates per edge; losses are compared at equal updates per edge (evaluations fall at the
same update counts for every p).

(a) continuous gates (transistor regression and allostery): does the error get worse as p falls?
(b) the first-generation network, digital-potentiometer edges stepped one tap by the sign of the contrast
    (pot_allostery, pot_regression, pot_iris): does the error floor fall as p falls?
(c) the mini-batch analogy, on transistor regression: full batch at p in PS against mini-batches at p = 1
    (equal epochs, so equal data presentations and equal summed contrast per epoch), and the noise of the
    update direction (``analysis.direction_noise``) against the full-batch contrast sum at the same gates.

(d) the idealised setting of the paper: large disordered *linear* flow networks (continuous resistor conductances
    on a 150-node, 375-edge random graph: configs/flow_allostery.yaml, five targets; configs/flow_regression.yaml)
    at p in LINEAR_PS, equal updates per edge (epochs / p, rate unchanged): is the loss curve the same for every p?
(e) controls that separate the randomness of desynchronization from its smaller collective step, at p = 0.1:
    a synchronous run with the rate scaled by p (the same mean step, no randomness; the linear networks); for
    potentiometers ``fixed_count`` masks (exactly round(p E) edges per step: no spread in the count) and a synchronous
    sign rule with a dead band (``learning.dead_band``, tuned on seeds TUNE_SEEDS, reported on the held-out ones),
    and the limit cycle each variant ends in: the tap span over the last quarter, sampled at the evaluations (the end
    of an epoch), so a cycle that returns to the same taps every epoch shows a span of 0.

The error floor of a run is the mean loss over the last quarter of its updates. Settings chosen by us (the flow
networks' rates, the dead band) were chosen on seeds 100 and up; every reported number is on seeds from 0.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from scipy.stats import mannwhitneyu

from ..analysis import direction_noise
from ..config import Config
from ..learning.trainer import Trainer, TrainState
from ..runs import train_replicas
from .base import ClaimResult, Context, backend_check, claim_config, pyplot, save_figure, save_json

KEY = "desync"
TITLE = "Desynchronous learning"
PAPER = ("Edges that update randomly and independently (probability p per update) learn as well as synchronous "
         "ones in simulation; on the first-generation network of digital potentiometers desynchronization "
         "improves the result by helping it explore the discrete states; it acts like mini-batching in SGD "
         "(Wycoff et al., J. Chem. Phys. 2022).")
PS = (1.0, 0.5, 0.25, 0.1)
N_EVALS = 40
TAIL = 0.25
#: per-seed initial gates around the shipped constant 3.0 V, so that seeds differ at p = 1 too
RANDOM_INIT = ("learning.init={kind: uniform, low: 2.5, high: 3.5}",)
BATCHES = (1, 2, 4, 8)     # part (c): mini-batch sizes of the 8-point ramp (8 = full batch)
N_DRAWS = 200              # part (c): masks or batches drawn per gate state for the direction noise


@dataclass(frozen=True)
class Study:
    """One task of parts (a) and (b): a shipped config, overrides, and its update budget at p = 1."""

    label: str
    config: str
    overrides: tuple[str, ...]
    epochs: int
    quick_epochs: int
    continuous: bool
    ngspice_epochs: int


STUDIES = (
    Study("regression", "regression", RANDOM_INIT, 500, 40, True, 6),
    Study("allostery", "allostery", (), 150, 30, True, 30),
    Study("pot_allostery", "pot_allostery", (), 200, 40, False, 30),
    Study("pot_regression", "pot_regression", (), 100, 20, False, 6),
    Study("pot_iris", "pot_iris", (), 100, 10, False, 4),
)
MINIBATCH = Study("regression_full_batch", "regression", (*RANDOM_INIT, "learning.schedule=full_batch"), 500, 40,
                  True, 6)
#: (d) linear flow networks: the epochs at p = 1 are the shipped configs' (rates chosen on seeds 100-103)
LINEAR = (
    Study("flow_allostery", "flow_allostery", (), 400, 60, True, 3),
    Study("flow_regression", "flow_regression", (), 30, 8, True, 1),
)
LINEAR_PS = (1.0, 0.5, 0.1)
#: (e) the controls run at this p; the potentiometer tasks they run on
CONTROL_P = 0.1
POT_CONTROLS = ("pot_allostery", "pot_regression")
#: (e) dead bands tried (V^2) on the tuning seeds; the one with the lowest median floor is reported on held-out seeds
DEAD_BANDS = (1e-6, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
TUNE_SEEDS = (100, 106, 102)  # range(start, stop, quick stop)
N_TAIL_SNAPS = 10        # tail snapshots of the taps (at the last evaluations) for the limit-cycle span


def study_config(study: Study, p: float, quick: bool, extra: tuple[str, ...] = ()) -> Config:
    """The config of ``study`` at update probability ``p``: epochs / p, evaluations at equal updates per edge;
    ``extra`` overrides come last."""
    base = study.quick_epochs if quick else study.epochs
    every = max(1, base // N_EVALS)
    return claim_config(study.config, [*study.overrides, f"learning.update_probability={p}",
                                       f"learning.epochs={round(base / p)}", f"learning.eval_every={round(every / p)}",
                                       f"learning.record_every={round(base / p)}", *extra])


def variant_config(study: Study, kind: str, quick: bool, dead_band: float = 0.0) -> Config:
    """(e) one control of ``study`` at CONTROL_P, at the same updates per edge as Bernoulli desync at CONTROL_P:
    ``bernoulli`` (desync itself), ``fixed_count`` (exactly round(p E) edges per step), ``sync_scaled`` (p = 1,
    rate x p, epochs / p: the same mean step without randomness), ``dead_band`` (p = 1 with ``dead_band``, epochs
    at p = 1 as the synchronous run)."""
    p = CONTROL_P
    if kind == "bernoulli":
        return study_config(study, p, quick)
    if kind == "fixed_count":
        return study_config(study, p, quick, ("learning.update_mask=fixed_count",))
    if kind == "sync_scaled":
        rate = claim_config(study.config, list(study.overrides)).learning.rate
        return study_config(study, p, quick, ("learning.update_probability=1", f"learning.rate={rate * p!r}"))
    if kind == "dead_band":
        return study_config(study, 1.0, quick, (f"learning.dead_band={dead_band!r}",))
    raise ValueError(f"variant_config: unknown kind {kind!r}")


@contextmanager
def serial_native():
    """Run numba's kernels on one thread: on a shared 2-core machine its worker threads wait on each other
    (measured 10-30x slower from 32 samples per solve while other jobs ran)."""
    import numba  # noqa: PLC0415
    n = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(n)


def run_ensemble(cfg: Config, seeds: list[int], backend: str, snapshot_epochs: tuple[int, ...] = ()):
    """``runs.train_replicas`` plus snapshots: (setup, final state, trainer, {epoch: [R, E]})."""
    snaps = {}

    def on_epoch(_: Trainer, st: TrainState) -> None:
        if st.epoch in snapshot_epochs:
            snaps[st.epoch] = st.controls.copy()

    # stop the training loop only where a snapshot falls
    done = train_replicas(cfg, seeds, backend=backend, on_epoch=on_epoch if snapshot_epochs else None,
                          every=max(1, math.gcd(*snapshot_epochs)))
    return done.setup, done.state, done.trainer, snaps


def _tail_epochs(cfg: Config) -> tuple[int, ...]:
    """The last N_TAIL_SNAPS evaluation epochs of ``cfg`` (all in its last quarter, at equal updates for every p)."""
    lc = cfg.learning
    evals = [e for e in range(0, lc.epochs + 1, lc.eval_every) if e >= (1 - TAIL) * lc.epochs]
    return tuple(evals[-N_TAIL_SNAPS:])


def _tail_span(snaps: dict) -> dict:
    """Limit cycle in the tail: per seed, the mean over edges of the control's span (max - min over the tail
    snapshots; taps for potentiometers) and the fraction of edges that still move."""
    stack = np.stack([snaps[e] for e in sorted(snaps)])                            # [K, R, E]
    span = stack.max(axis=0) - stack.min(axis=0)
    return {"tail_span": span.mean(axis=1), "tail_moving": (span > 0).mean(axis=1)}


def _train_curves(cfg: Config, seeds: list[int], backend: str, p_axis: float, tail: bool = True) -> dict:
    """Train ``cfg`` on ``seeds``: ``_curves`` at ``p_axis``, and ``_tail_span`` if ``tail``."""
    setup, state, trainer, snaps = run_ensemble(cfg, seeds, backend, _tail_epochs(cfg) if tail else ())
    return {**_curves(setup, state, trainer, p_axis), **(_tail_span(snaps) if tail else {})}


def _curves(setup, state: TrainState, trainer: Trainer, p: float) -> dict:
    """Loss (and accuracy) against updates per edge, the floor per seed and the final controls."""
    hist = state.history
    steps_per_epoch = len(setup.params.schedule.batches(setup.task.n_points, np.random.default_rng(0)))
    updates = np.array([h["epoch"] for h in hist], float) * steps_per_epoch * p
    loss = np.array([h["loss"] for h in hist])                                     # [T, R]
    tail = updates >= (1 - TAIL) * updates[-1]
    out = {"updates_per_edge": updates, "loss": loss, "floor": loss[tail].mean(axis=0),
           "final_controls": state.controls}
    if hist[-1]["accuracy"] is not None:
        acc = np.array([h["accuracy"] for h in hist])
        test = trainer.task.test_inputs
        out.update(accuracy=acc, accuracy_floor=acc[tail].mean(axis=0),
                   test_accuracy=None if test is None or not len(test) else
                   trainer.evaluate(state.controls, test=True).accuracy)
    return out


def _study(study: Study, seeds: list[int], ctx: Context, ps: tuple[float, ...] = PS) -> dict:
    """Every p of ``ps`` on ``seeds``; potentiometer runs also record their tail span (the limit cycle)."""
    runs = {p: _train_curves(study_config(study, p, ctx.quick), seeds, ctx.backend, p, tail=not study.continuous)
            for p in ps}
    if not study.continuous:
        runs["n_taps"] = claim_config(study.config).device.n_taps
    return runs


def _tune_dead_band(study: Study, ctx: Context) -> tuple[float, dict]:
    """The dead band of DEAD_BANDS with the lowest median floor at p = 1 on the tuning seeds (never reported)."""
    start, stop, quick_stop = TUNE_SEEDS
    seeds = list(range(start, quick_stop if ctx.quick else stop))
    floors = {band: float(np.median(_train_curves(variant_config(study, "dead_band", ctx.quick, band), seeds,
                                                  ctx.backend, 1.0, tail=False)["floor"])) for band in DEAD_BANDS}
    best = min(DEAD_BANDS, key=lambda b: floors[b])
    return best, {"seeds": seeds, "median_floor": {str(b): f for b, f in floors.items()}}


def _controls(seeds: list[int], pot_seeds: list[int], ctx: Context, linear: dict, pots: dict) -> dict:
    """(e) the controls at CONTROL_P. ``linear`` and ``pots`` hold the Bernoulli and p = 1 runs of (d) on ``seeds``
    and of (b) on ``pot_seeds``."""
    out = {}
    for s in LINEAR:
        out[s.label] = {"runs": {"sync": linear[s.label][1.0], "bernoulli": linear[s.label][CONTROL_P],
                                 "sync_scaled": _train_curves(variant_config(s, "sync_scaled", ctx.quick), seeds,
                                                              ctx.backend, CONTROL_P, tail=False)}}
    by_label = {s.label: s for s in STUDIES}
    for label in POT_CONTROLS:
        s = by_label[label]
        band, tuning = _tune_dead_band(s, ctx)
        runs = {"sync": pots[label][1.0], "bernoulli": pots[label][CONTROL_P],
                "fixed_count": _train_curves(variant_config(s, "fixed_count", ctx.quick), pot_seeds, ctx.backend,
                                             CONTROL_P),
                "dead_band": _train_curves(variant_config(s, "dead_band", ctx.quick, band), pot_seeds, ctx.backend,
                                           1.0)}
        out[label] = {"runs": runs, "dead_band": band, "tuning": tuning}
    return out


def _ngspice_check(study: Study, quick: bool, p: float = 0.5, extra: tuple[str, ...] = ()) -> dict:
    """One seed at ``p`` for a few epochs on both backends: largest control and loss differences."""
    epochs = max(2, study.ngspice_epochs // (3 if quick else 1))
    cfg = study_config(study, p, quick, (f"learning.epochs={epochs}", "learning.eval_every=1",
                                         f"learning.record_every={epochs}", *extra))
    return {"epochs": epochs, "p": p, "extra": list(extra), **backend_check(cfg)}


# -- (c) mini-batching -------------------------------------------------------------------------------------
def _contrasts(setup, controls: np.ndarray, solver) -> np.ndarray:
    """[S, P, E] per-point contrasts U (V^2) at each of S gate states [S, E]."""
    c, task, rule = setup.circuit, setup.task, setup.rule
    s, p = len(controls), task.n_points
    shared = np.repeat(controls, p, axis=0)
    x, y = np.tile(task.inputs, (s, 1)), np.tile(task.targets, (s, 1))
    free = solver.solve(c, shared, x).voltages
    clamped = solver.solve(c, shared, x, rule.clamp(c, free, y)).voltages
    return rule.contrast(c, free, clamped).reshape(s, p, -1)


def _direction_noise(u: np.ndarray, rng: np.random.Generator) -> dict:
    """Mean direction noise per gate state [S] of desync masks (each p) and of mini-batches (each size)."""
    s, n, e = u.shape
    full = u.sum(axis=1)
    desync = {p: np.array([direction_noise(full[k] * (rng.random((N_DRAWS, e)) < p), full[k]).mean()
                           for k in range(s)]) for p in PS}
    batch = {}
    for b in BATCHES:
        picks = np.array([rng.permutation(n)[:b] for _ in range(N_DRAWS)])
        batch[b] = np.array([direction_noise(u[k][picks].sum(axis=1), full[k]).mean() for k in range(s)])
    return {"desync": desync, "batch": batch, "full_norm": np.linalg.norm(full, axis=1)}


def _minibatch(seeds: list[int], ctx: Context) -> dict:
    study = MINIBATCH
    base = study.quick_epochs if ctx.quick else study.epochs
    stages = (0, base // 8, base // 4, base // 2, base)
    desync, batch = {}, {}
    for p in PS:
        snaps_at = stages if p == 1.0 else ()
        setup, state, trainer, snaps = run_ensemble(study_config(study, p, ctx.quick), seeds, ctx.backend, snaps_at)
        desync[p] = _curves(setup, state, trainer, p)
        if p == 1.0:
            batch[setup.task.n_points] = desync[p]
            states = np.concatenate([snaps[t] for t in stages])
            u = _contrasts(setup, states, trainer.solver)
    n_points = setup.task.n_points
    for b in BATCHES:
        if b != n_points:
            cfg = study_config(study, 1.0, ctx.quick, ("learning.schedule=mini_batch", f"learning.batch_size={b}"))
            batch[b] = _train_curves(cfg, seeds, ctx.backend, 1.0, tail=False)
    noise = _direction_noise(u, np.random.default_rng(0))
    r = len(seeds)
    per_stage = {k: {key: v.reshape(len(stages), r).mean(axis=1) for key, v in noise[k].items()}
                 for k in ("desync", "batch")}
    return {"desync": desync, "batch": batch, "stages": stages, "noise": per_stage,
            "full_norm": noise["full_norm"].reshape(len(stages), r).mean(axis=1), "n_points": n_points}


# -- the claim ----------------------------------------------------------------------------------------------
def _med_iqr(x: np.ndarray) -> tuple[float, float, float]:
    q1, m, q3 = np.percentile(x, [25, 50, 75])
    return float(m), float(q1), float(q3)


def _floors(runs: dict, ps: tuple[float, ...]) -> tuple[dict, str, bool]:
    """(summary entry, report text) of the floors' median [IQR] per p, and whether no p has a median floor above
    max(2 x the p = 1 median, the p = 1 upper quartile)."""
    stats = {p: _med_iqr(runs[p]["floor"]) for p in ps}
    m1, _, q3 = stats[1.0]
    entry = {"floor_median_iqr": {str(p): stats[p] for p in ps},
             "ratio_to_p1": {str(p): stats[p][0] / m1 if m1 > 0 else float("nan") for p in ps}}
    text = ", ".join(f"p={p:g}: {stats[p][0]:.2g} [{stats[p][1]:.2g}, {stats[p][2]:.2g}]" for p in ps)
    return entry, text, all(stats[p][0] <= max(2 * m1, q3) for p in ps)


def _judge_study(s: Study, runs: dict, n_seeds: int, epochs: int) -> tuple[dict, bool, str]:
    """(summary, passed, report line) of one task. (a) passes when no p has a median floor above
    max(2 x the p = 1 median, the p = 1 upper quartile); (b) when a one-sided Mann-Whitney test finds the p = 0.1
    floor below p = 1's (p-value < 0.05) and, for a classifier, its accuracy above."""
    entry, floors, passed = _floors(runs, PS)
    line = (f"- {'(a) transistors' if s.continuous else '(b) potentiometers'}, {s.label} ({n_seeds} seeds, {epochs}/p "
            f"epochs): error floor (V^2, median [IQR]) {floors}")
    if not s.continuous:
        entry["mannwhitney_p_0.1_vs_1"] = float(mannwhitneyu(runs[0.1]["floor"], runs[1.0]["floor"],
                                                             alternative="less").pvalue)
        passed = entry["mannwhitney_p_0.1_vs_1"] < 0.05
        line += f"; floor at p=0.1 below p=1: Mann-Whitney one-sided p = {entry['mannwhitney_p_0.1_vs_1']:.2g}"
    if "accuracy_floor" in runs[1.0]:
        entry["accuracy_median"] = {str(p): float(np.median(runs[p]["accuracy_floor"])) for p in PS}
        entry["test_accuracy_median"] = {str(p): float(np.median(runs[p]["test_accuracy"])) for p in PS}
        entry["mannwhitney_accuracy_p_0.1_vs_1"] = float(mannwhitneyu(
            runs[0.1]["accuracy_floor"], runs[1.0]["accuracy_floor"], alternative="greater").pvalue)
        passed = passed and entry["mannwhitney_accuracy_p_0.1_vs_1"] < 0.05
        acc = ", ".join(f"p={k}: {v:.2f}" for k, v in entry["accuracy_median"].items())
        test = ", ".join(f"p={k}: {v:.2f}" for k, v in entry["test_accuracy_median"].items())
        line += (f"; training accuracy (median) {acc} (p=0.1 above p=1: Mann-Whitney p = "
                 f"{entry['mannwhitney_accuracy_p_0.1_vs_1']:.2g}); test accuracy {test}")
    return entry, bool(passed), line


def _judge_minibatch(mb: dict, n_seeds: int) -> tuple[dict, bool, list[str]]:
    """Desync and mini-batching "act alike" when the noisiest desync (p = 0.1) and the smallest batch (B = 1) move
    the full-batch floor the same way and their direction noise, averaged along training, is within a factor 3."""
    floor = {f"p={p:g}": _med_iqr(mb["desync"][p]["floor"]) for p in PS}
    floor.update({f"B={b}": _med_iqr(mb["batch"][b]["floor"]) for b in BATCHES})
    noise = {}
    for name, pick in (("mean", np.mean), ("initial", lambda v: v[0]), ("end", lambda v: v[-1])):
        noise[name] = {f"p={p:g}": float(pick(mb["noise"]["desync"][p])) for p in PS}
        noise[name].update({f"B={b}": float(pick(mb["noise"]["batch"][b])) for b in BATCHES})
    full = floor["p=1"][0]
    same_way = np.sign(floor["p=0.1"][0] - full) == np.sign(floor["B=1"][0] - full)
    nd, nb = noise["mean"]["p=0.1"], noise["mean"]["B=1"]
    similar = bool(same_way and nb > 0 and 1 / 3 <= nd / nb <= 3)
    fmt = lambda d, f: ", ".join(f"{k}: {v:{f}}" for k, v in d.items())  # noqa: E731
    lines = [f"- (c) regression, full batch at p (epochs/p) vs mini-batches of B of the {mb['n_points']} points at "
             f"p = 1 (equal epochs), {n_seeds} seeds: error floor (median, V^2) "
             + fmt({k: v[0] for k, v in floor.items()}, ".2g"),
             "- (c) direction noise 1 - cos(update, full-batch contrast sum) at the gates of the full-batch run "
             f"(epochs {', '.join(map(str, mb['stages']))}; {N_DRAWS} masks or batches per state): mean over those "
             f"states {fmt(noise['mean'], '.2f')}; at the initial gates {fmt(noise['initial'], '.2f')}; at the end "
             f"{fmt(noise['end'], '.2f')}"]
    return {"floor_median_iqr": floor, "direction_noise": noise, "similar": similar,
            "floor_ratio_p0.1": floor["p=0.1"][0] / full, "floor_ratio_B1": floor["B=1"][0] / full}, similar, lines


def _curve_ratio(run: dict, ref: dict) -> np.ndarray:
    """Per seed: the geometric mean over the evaluations after the first (equal updates per edge) of
    loss(run) / loss(ref); 1 when the two learning curves are the same."""
    a, b = np.asarray(run["loss"])[1:], np.asarray(ref["loss"])[1:]
    tiny = np.finfo(float).tiny
    return np.exp(np.mean(np.log(np.maximum(a, tiny) / np.maximum(b, tiny)), axis=0))


def _judge_linear(s: Study, runs: dict, n_seeds: int, epochs: int) -> tuple[dict, bool, str]:
    """(d) passes as (a): no p has a median floor above max(2 x the p = 1 median, the p = 1 upper quartile); the
    learning curves' ratio to p = 1 (``_curve_ratio``, median over seeds) is reported beside it."""
    entry, floors, passed = _floors(runs, LINEAR_PS)
    curve = {p: float(np.median(_curve_ratio(runs[p], runs[1.0]))) for p in LINEAR_PS}
    ratios = ", ".join(f"p={p:g}: x{curve[p]:.2g}" for p in LINEAR_PS[1:])
    line = (f"- (d) linear flow network, {s.label} ({n_seeds} seeds, {epochs}/p epochs, equal updates per edge): "
            f"error floor (V^2, median [IQR]) {floors}; loss along the curve vs p=1 (geometric mean, median over "
            f"seeds) {ratios}: {'no degradation' if passed else 'degraded'}")
    entry.update(curve_ratio_to_p1={str(p): curve[p] for p in LINEAR_PS}, no_degradation=passed)
    return entry, passed, line


CONTROL_NAMES = {"sync": "synchronous (p = 1)", "bernoulli": f"Bernoulli p = {CONTROL_P:g}",
                 "fixed_count": f"fixed count round({CONTROL_P:g} E)", "sync_scaled": f"p = 1, rate x {CONTROL_P:g}",
                 "dead_band": "p = 1, dead band"}


def _judge_controls(ctrl: dict) -> tuple[dict, list[str]]:
    """(e) per task and variant: floor median [IQR], its ratio to the Bernoulli run, the learning curve's ratio to
    it, a two-sided Mann-Whitney test against Bernoulli and a one-sided one (variant below p = 1); potentiometers
    also the tail span (taps) and the fraction of edges still moving."""
    summary, lines = {}, []
    for label, entry in ctrl.items():
        runs = entry["runs"]
        bern, sync = runs["bernoulli"], runs["sync"]
        rows = {}
        for kind, r in runs.items():
            row = {"floor_median_iqr": _med_iqr(r["floor"]),
                   "floor_ratio_to_bernoulli": float(np.median(r["floor"]) / np.median(bern["floor"])),
                   "floor_ratio_to_sync": float(np.median(r["floor"]) / np.median(sync["floor"]))}
            if kind not in ("bernoulli", "sync"):
                row["mannwhitney_vs_bernoulli"] = float(mannwhitneyu(r["floor"], bern["floor"]).pvalue)
            if kind != "sync":
                row["mannwhitney_below_sync"] = float(mannwhitneyu(r["floor"], sync["floor"],
                                                                   alternative="less").pvalue)
            if len(r["loss"]) == len(bern["loss"]) and kind != "dead_band":
                row["curve_ratio_to_bernoulli"] = float(np.median(_curve_ratio(r, bern)))
            if "tail_span" in r:
                row["tail_span_taps"] = float(np.median(r["tail_span"]))
                row["tail_moving_fraction"] = float(np.median(r["tail_moving"]))
            rows[kind] = row
        summary[label] = {"variants": rows, **{k: v for k, v in entry.items() if k != "runs"}}
        parts = []
        for kind, row in rows.items():
            m, q1, q3 = row["floor_median_iqr"]
            name = CONTROL_NAMES[kind] + (f" {entry['dead_band']:g} V^2" if kind == "dead_band" else "")
            text = f"{name} {m:.2g} [{q1:.2g}, {q3:.2g}]"
            if "mannwhitney_below_sync" in row:
                text += f" (below p=1: MW p = {row['mannwhitney_below_sync']:.2g}"
                if "mannwhitney_vs_bernoulli" in row:
                    text += f"; vs Bernoulli x{row['floor_ratio_to_bernoulli']:.2g}, MW p = " \
                            f"{row['mannwhitney_vs_bernoulli']:.2g}"
                text += ")"
            if "tail_span_taps" in row:
                text += (f", tail span {row['tail_span_taps']:.2f} taps at epoch ends "
                         f"({row['tail_moving_fraction']:.0%} of edges moving)")
            parts.append(text)
        lines.append(f"- (e) controls, {label}, at equal updates per edge: error floor (V^2, median [IQR]) "
                     + "; ".join(parts))
    return summary, lines


def _controls_reason(ctrl: dict) -> str:
    """One clause of the verdict: what the potentiometers' improvement survives."""
    parts = []
    for label in POT_CONTROLS:
        v = ctrl[label]["variants"]
        parts.append(f"{label} floor vs p=1: Bernoulli x{v['bernoulli']['floor_ratio_to_sync']:.2g}, fixed count "
                     f"x{v['fixed_count']['floor_ratio_to_sync']:.2g}, synchronous dead band "
                     f"x{v['dead_band']['floor_ratio_to_sync']:.2g} (tail span {v['sync']['tail_span_taps']:.2f} -> "
                     f"{v['dead_band']['tail_span_taps']:.2f} taps)")
    lin = [f"{label} loss along the curve, p = 1 at rate x p vs Bernoulli: "
           f"x{ctrl[label]['variants']['sync_scaled']['curve_ratio_to_bernoulli']:.2g}"
           for label in ctrl if label not in POT_CONTROLS]
    return "controls at p = 0.1: " + "; ".join(parts + lin)


def run(ctx: Context) -> ClaimResult:
    t0 = time.perf_counter()
    seeds = ctx.seeds(12, 3)
    linear_seeds = ctx.seeds(6, 3)
    with serial_native():
        results = {s.label: _study(s, seeds, ctx) for s in STUDIES}
        mb = _minibatch(seeds, ctx)
        linear = {s.label: _study(s, linear_seeds, ctx, LINEAR_PS) for s in LINEAR}
        ctrl = _controls(linear_seeds, seeds, ctx, linear, results)
    native_s = time.perf_counter() - t0
    checks = {s.label: _ngspice_check(s, ctx.quick) for s in (*STUDIES, MINIBATCH, *LINEAR)}
    band = ctrl["pot_allostery"]["dead_band"]
    pot = next(s for s in STUDIES if s.label == "pot_allostery")
    checks["pot_allostery_dead_band"] = _ngspice_check(pot, ctx.quick, 1.0, (f"learning.dead_band={band!r}",))

    summary, passed, lines = {}, {}, []
    for s in STUDIES:
        summary[s.label], passed[s.label], line = _judge_study(s, results[s.label], len(seeds),
                                                               s.quick_epochs if ctx.quick else s.epochs)
        lines.append(line)
    summary["minibatch"], similar, mb_lines = _judge_minibatch(mb, len(seeds))
    lines += mb_lines
    for s in LINEAR:
        summary[s.label], passed[s.label], line = _judge_linear(s, linear[s.label], len(linear_seeds),
                                                                s.quick_epochs if ctx.quick else s.epochs)
        lines.append(line)
    summary["controls"], ctrl_lines = _judge_controls(ctrl)
    lines += ctrl_lines
    lines += [f"- ngspice vs native, {label} (seed 0, p = {ch['p']:g}{''.join(', ' + e for e in ch['extra'])}, "
              f"{ch['epochs']} epochs): controls agree to {ch['max_control_diff']:.1e}; loss {ch['loss_ngspice']:.4g} "
              f"vs {ch['loss_native']:.4g} V^2" for label, ch in checks.items()]

    figures = [_figure_floors(ctx, results), _figure_curves(ctx, results), _figure_minibatch(ctx, mb),
               _figure_linear_controls(ctx, linear, ctrl)]
    data = [save_json(ctx, f"{KEY}_results.json", {
        "ps": PS, "seeds": seeds, "tail_fraction": TAIL, "quick": ctx.quick,
        "studies": {s.label: {"config": s.config, "overrides": s.overrides, "continuous": s.continuous,
                              "epochs_at_p1": s.quick_epochs if ctx.quick else s.epochs,
                              "runs": {str(p): results[s.label][p] for p in PS},
                              **({"n_taps": results[s.label]["n_taps"]} if "n_taps" in results[s.label] else {})}
                    for s in STUDIES},
        "minibatch": {"desync": {str(p): mb["desync"][p] for p in PS},
                      "batch": {str(b): mb["batch"][b] for b in BATCHES}, "noise_stages_epochs": mb["stages"],
                      "noise": {k: {str(kk): vv for kk, vv in v.items()} for k, v in mb["noise"].items()},
                      "full_contrast_norm": mb["full_norm"]},
        "linear": {"ps": LINEAR_PS, "seeds": linear_seeds,
                   "studies": {s.label: {"config": s.config, "epochs_at_p1": s.quick_epochs if ctx.quick else s.epochs,
                                         "runs": {str(p): linear[s.label][p] for p in LINEAR_PS}} for s in LINEAR}},
        "controls": {"p": CONTROL_P, "dead_bands_tried": DEAD_BANDS, "tasks": ctrl},
        "ngspice_checks": checks, "summary": summary})]

    cont = {s.label: passed[s.label] for s in STUDIES if s.continuous}
    lin = {s.label: passed[s.label] for s in LINEAR}
    pots = {s.label: passed[s.label] for s in STUDIES if not s.continuous}
    iris, m = summary["pot_iris"], summary["minibatch"]
    reason = (f"no degradation with p on {sum(lin.values())}/{len(lin)} linear flow-network tasks (150 nodes, "
              f"p down to {min(LINEAR_PS):g}) and {sum(cont.values())}/{len(cont)} transistor tasks; with "
              f"potentiometers p = 0.1 improves {sum(pots.values())}/{len(pots)} tasks significantly (floor x"
              + ", x".join(f"{summary[k]['ratio_to_p1']['0.1']:.2g} {k}" for k in pots)
              + f"; Iris accuracy {iris['accuracy_median']['0.1']:.2f} vs {iris['accuracy_median']['1.0']:.2f}); "
              + _controls_reason(summary["controls"]) + "; "
              f"desync and mini-batching {'act alike' if similar else 'differ'} on regression (floor vs full batch: "
              f"p=0.1 x{m['floor_ratio_p0.1']:.2g}, B=1 x{m['floor_ratio_B1']:.2g}; direction noise "
              f"{m['direction_noise']['mean']['p=0.1']:.2f} vs {m['direction_noise']['mean']['B=1']:.2f})")
    n_pass = sum(passed.values()) + similar
    verdict = "reproduced" if n_pass == len(passed) + 1 else ("partly" if n_pass else "not reproduced")
    measured = {"summary": summary, "no_degradation": {**lin, **cont}, "improves": pots, "minibatch_similar": similar,
                "ngspice_max_control_diff": {k: v["max_control_diff"] for k, v in checks.items()},
                "native_s": round(native_s, 1)}
    profiles = {"idealized": "transistors: configs/regression.yaml and allostery.yaml as shipped (4x4 torus, "
                             "level-1 `ald1106-fit`, gates [0.4, 8] V); potentiometers: configs/pot_*.yaml (100 "
                             "geometric taps, sign rule); linear flow networks: configs/flow_allostery.yaml and "
                             "flow_regression.yaml (150-node, 375-edge random resistor graph, conductances in "
                             "[1e-5, 1e-2] S, nudge 0.1). Every p trains epochs / p at the same rate"}
    start, stop, quick_stop = TUNE_SEEDS
    seeds_text = (f"reported on seeds {seeds[0]}-{seeds[-1]} (transistors, potentiometers and their controls) and "
                  f"{linear_seeds[0]}-{linear_seeds[-1]} (linear networks); tuned: the dead band on seeds "
                  f"{start}-{(quick_stop if ctx.quick else stop) - 1} (best median floor of {len(DEAD_BANDS)} "
                  "bands at p = 1), the flow networks' rates on seeds 100-103 (by hand, in the configs)")
    return ClaimResult(KEY, TITLE, PAPER, verdict, reason, measured, figures, data, lines, profiles, seeds_text)


# -- figures ------------------------------------------------------------------------------------------------
def _scatter(ax, xs, values, color, label):
    med = [np.median(v) for v in values]
    for x, v in zip(xs, values):
        jitter = x * np.exp(np.random.default_rng(0).uniform(-0.06, 0.06, len(v)))
        ax.plot(jitter, v, ".", color=color, alpha=0.35, ms=4)
    ax.plot(xs, med, "o-", color=color, label=label)


def _figure_floors(ctx: Context, results: dict) -> str:
    plt = pyplot()
    panels = [(s.label, "floor") for s in STUDIES] + [("pot_iris", "accuracy_floor")]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.1 * len(panels), 3.2))
    for ax, (label, key) in zip(axes, panels):
        runs = results[label]
        _scatter(ax, PS, [runs[p][key] for p in PS], "C0" if "pot" in label else "C1", "median")
        ax.set(xscale="log", xlabel="update probability p")
        if key == "floor":
            ax.set(yscale="log", ylabel="error floor (V$^2$)")
        else:
            ax.set_ylabel("training accuracy")
        ax.set_title(label + (" (accuracy)" if key != "floor" else ""), fontsize=9)
    return save_figure(ctx, fig, f"{KEY}_error_vs_p.png")


def _figure_curves(ctx: Context, results: dict) -> str:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(STUDIES), figsize=(3.1 * len(STUDIES), 3.2))
    for ax, s in zip(axes, STUDIES):
        for i, p in enumerate(PS):
            r = results[s.label][p]
            ax.plot(r["updates_per_edge"], np.median(r["loss"], axis=1), color=f"C{i}", label=f"p={p:g}")
        ax.set(yscale="log", xlabel="updates per edge")
        ax.set_title(s.label, fontsize=9)
    axes[0].set_ylabel("loss (V$^2$, median over seeds)")
    axes[0].legend(fontsize=7)
    return save_figure(ctx, fig, f"{KEY}_curves.png")


def _figure_minibatch(ctx: Context, mb: dict) -> str:
    plt = pyplot()
    n = mb["n_points"]
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(12, 3.4))
    _scatter(a, PS, [mb["desync"][p]["floor"] for p in PS], "C0", "full batch, desync p")
    _scatter(a, [bb / n for bb in BATCHES], [mb["batch"][bb]["floor"] for bb in BATCHES], "C3", "mini-batch B/N, p=1")
    a.set(xscale="log", yscale="log", xlabel="p, or B/N", ylabel="error floor (V$^2$)")
    a.legend(fontsize=7)
    a.set_title("regression: error floor", fontsize=9)
    stages = mb["stages"]
    for i, t in enumerate(stages):
        b.plot(PS, [mb["noise"]["desync"][p][i] for p in PS], "o-", color=plt.cm.Blues(0.35 + 0.6 * i / len(stages)),
               label=f"desync, epoch {t}")
        b.plot([bb / n for bb in BATCHES], [mb["noise"]["batch"][bb][i] for bb in BATCHES], "s--",
               color=plt.cm.Reds(0.35 + 0.6 * i / len(stages)), label=f"mini-batch, epoch {t}")
    b.set(xscale="log", xlabel="p, or B/N", ylabel="1 - cos(update, full-batch sum)")
    b.set_title("direction noise vs p and vs batch size", fontsize=9)
    b.legend(fontsize=6, ncol=2)
    for p in PS[1:]:
        c.plot(stages, mb["noise"]["desync"][p], "o-", label=f"desync p={p:g}")
    for bb in BATCHES[:-1]:
        c.plot(stages, mb["noise"]["batch"][bb], "s--", label=f"mini-batch B={bb}")
    c.set(xlabel="full-batch training epoch of the gate state", ylabel="direction noise")
    c.legend(fontsize=6)
    c.set_title("noise along training", fontsize=9)
    return save_figure(ctx, fig, f"{KEY}_minibatch.png")


def _figure_linear_controls(ctx: Context, linear: dict, ctrl: dict) -> str:
    """(d) and (e): the linear flow networks' learning curves for every p and control; the potentiometers' floors
    and tail spans per variant."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(LINEAR) + len(POT_CONTROLS) + 1, figsize=(3.3 * (len(LINEAR) + 3), 3.4))
    for ax, s in zip(axes, LINEAR):
        for i, p in enumerate(LINEAR_PS):
            r = linear[s.label][p]
            ax.plot(r["updates_per_edge"], np.median(r["loss"], axis=1), color=f"C{i}", label=f"Bernoulli p={p:g}")
        r = ctrl[s.label]["runs"]["sync_scaled"]
        ax.plot(r["updates_per_edge"], np.median(r["loss"], axis=1), ":", color="k", label=CONTROL_NAMES["sync_scaled"])
        ax.set(yscale="log", xlabel="updates per edge")
        ax.set_title(f"{s.label} (linear, 150 nodes)", fontsize=9)
    axes[0].set_ylabel("loss (V$^2$, median over seeds)")
    axes[0].legend(fontsize=6)
    kinds = ("sync", "bernoulli", "fixed_count", "dead_band")
    for ax, label in zip(axes[len(LINEAR):], POT_CONTROLS):
        runs = ctrl[label]["runs"]
        for i, kind in enumerate(kinds):
            v = runs[kind]["floor"]
            ax.plot(np.full(len(v), i) + np.random.default_rng(0).uniform(-0.1, 0.1, len(v)), v, ".", color=f"C{i}",
                    alpha=0.5)
            ax.plot([i], [np.median(v)], "o", color=f"C{i}")
        ax.set_xticks(range(len(kinds)), ["p=1", f"p={CONTROL_P:g}", "fixed", "band"], fontsize=8)
        ax.set(yscale="log", ylabel="error floor (V$^2$)")
        ax.set_title(f"{label}: controls", fontsize=9)
    ax = axes[-1]
    width = 0.8 / len(POT_CONTROLS)
    for j, label in enumerate(POT_CONTROLS):
        runs = ctrl[label]["runs"]
        ax.bar(np.arange(len(kinds)) + j * width, [np.median(runs[k]["tail_span"]) for k in kinds], width, label=label)
    ax.set_xticks(np.arange(len(kinds)) + width / 2, ["p=1", f"p={CONTROL_P:g}", "fixed", "band"], fontsize=8)
    ax.set_ylabel("tail span (taps at epoch ends, mean over edges)")
    ax.set_title("limit cycle in the last quarter", fontsize=9)
    ax.legend(fontsize=7)
    return save_figure(ctx, fig, f"{KEY}_linear_controls.png")
