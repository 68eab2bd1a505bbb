"""Claim: a trained network survives damage (cut edges) and retrains.

Train an ensemble on native, cut k edges of each trained network (``circuit.without_edges``; the remaining
edges keep their gates), chosen at random or as the k edges carrying the largest mean |current| over the
training points at the trained state, then keep training the damaged circuit with the same rule. Measured:
the error jump (loss right after the cut / loss before), the epochs and learning-switch time to recover, and for
XOR whether it re-solves (every point >= 10 mV past the threshold).

Recovery is judged on an absolute, hardware-level scale, not relative to the pre-damage loss (a trained clean
network reaches ~1.6e-6 V^2, 1.3 mV RMS, below what the hardware resolves): a damaged network has recovered when
its RMS training error is back within ``RMS_CRITERION_V`` = 5 mV, or within its own pre-damage RMS error if that
was larger (a chip whose mismatch floor is above 5 mV is not asked to beat it). 5 mV is 1.1% of the node full
scale (NODEMULT = 0.4532 V, E2:227; docs/hardware.md 4), about three steps of the 8-bit inputs (1.8 mV), and it
lies between the regression error floors the imperfection claim measures (16 draws, 2026-12-01) for the smallest
twin mismatch it sweeps (0.25 mV of V_T sigma: median 6.3e-6 V^2, 2.5 mV RMS; upper quartile 2.2e-5 V^2, 4.7 mV)
and for 1 mV of mismatch or the third party's read noise (2.25 mV: 1e-4 and 5.6e-5 V^2, 10 and 7.5 mV RMS).

Each task runs on two chips: without mismatch, and with twin mismatch at the level docs/physics.md 2.5 uses
(V_T sigma 10 mV, K sigma 0.5%; one chip, the draw of the config's seed, shared by every network).

A cut that leaves a group of nodes with no path to an input or rail (a floating island: it no longer takes part
in the task, and a fully isolated node has no element at all, which both solvers reject) is not used: random
draws are redrawn, the most-conductive pick skips to the next edge; both are counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from ..analysis import quartiles, recovery_epoch
from ..circuit import Circuit, stranded_nodes
from ..config import Config, with_backend
from ..experiment import Setup, make_trainer
from ..learning.trainer import SUCCESS_MARGIN_V as SUCCESS_V
from ..learning.trainer import Trainer
from ..retraining import RMS_CRITERION_V, busiest_cut, current_scores, damaged
from ..runs import train_replicas
from .base import ClaimResult, Context, claim_config, pyplot, save_figure, save_json

KEY = "damage"
TITLE = "Robust to damage, retrainable"
PAPER = ("A trained network keeps working when edges are cut and relearns the task by continuing to train: "
         "robust to damage and retrainable in seconds of learning time (Dillavou et al., PNAS 2024).")
KS = (1, 2, 4, 8)
#: twin mismatch of the second chip: docs/physics.md 2.5 (the third party's model [REPRO])
MISMATCH = ["device.mismatch.vto_sigma=0.01", "device.mismatch.k_sigma=0.005"]
CHIPS = {"no mismatch": [], "twin mismatch": MISMATCH}
#: XOR on the mismatched chip trains with the xor claim's settings for one (eta 1, alpha/eta 10 /V: 10/20 seeds
#: solved there against 5/20 with the shipped ones), so that enough networks are solved before the cut
CHIP_SETTINGS = {("xor", "twin mismatch"): ["learning.nudge=1.0", "learning.rate=10"]}
#: the regression networks start from per-seed random gates (as in the modes claim) so that they differ
REGRESSION_INIT = ["learning.init={kind: uniform, low: 2.0, high: 4.0}"]
TASKS = {"regression": ("regression", REGRESSION_INIT), "xor": ("xor", [])}
#: epochs between evaluations while retraining (the resolution of the recovery epoch)
EVAL_EVERY = {"regression": 5, "xor": 2}


# -- choosing cuts ----------------------------------------------------------------------------------------
def random_cuts(circuit: Circuit, k: int, n_draws: int, rng: np.random.Generator) -> tuple[list[np.ndarray], int]:
    """``n_draws`` valid random k-edge cuts (sorted edge indices) and the number of refused draws."""
    cuts, refused = [], 0
    while len(cuts) < n_draws and refused < 100 * n_draws:
        cut = np.sort(rng.choice(circuit.n_edges, k, replace=False))
        if not stranded_nodes(circuit, cut):
            cuts.append(cut)
        else:
            refused += 1
    return cuts, refused


# -- training ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Retrain:
    """Retraining of R damaged replicas: history of the ensemble and the cumulative switch-on time."""

    epochs: np.ndarray          # [T] evaluated epochs (0 = right after the cut)
    loss: np.ndarray            # [T, R] V^2
    min_margin: np.ndarray | None  # [T, R] V (classification) or None
    learning_time: np.ndarray   # [epochs + 1, R] cumulative learning-switch time (s) after each epoch
    final_controls: np.ndarray  # [R, E - k]


def damaged_trainer(setup: Setup, cut: np.ndarray, epochs: int, eval_every: int, backend: str) -> Trainer:
    """A trainer of the setup with the edges ``cut`` removed (and their learning bias)."""
    cut_setup = replace(damaged(setup, cut), config=with_backend(setup.config, backend))
    return make_trainer(cut_setup, epochs=epochs, eval_every=eval_every, record_every=max(epochs, 1))


def retrain(trainer: Trainer, controls: np.ndarray, seeds: list[int], before: np.ndarray | None = None,
            solved_before: np.ndarray | None = None, chunk: int = 100) -> Retrain:
    """Keep training replicas [R, E'] of the damaged circuit; epoch 0 is evaluated right after the cut.

    With ``before`` [R] (pre-damage losses), training stops at the end of the first ``chunk`` of epochs after which
    every replica has recovered (``recovery_threshold``) at least once and, with ``solved_before`` [R] (bool,
    classification), every replica solved before the cut has been solved again: the first recovery, the quantity
    measured, does not depend on what follows it. ``chunk`` is a multiple of the trainer's
    ``eval_every``, so each chunk ends with an evaluation.
    """
    state = trainer.init_state(controls, [np.random.default_rng([s, 7]) for s in seeds], keep_trajectory=False)
    t_learn = trainer.hardware.t_learn
    times = [np.zeros(len(controls))]
    end = trainer.params.epochs
    while state.epoch < end:
        state = trainer.run(state, lambda st: times.append(st.n_updates * t_learn), until=min(state.epoch + chunk, end))
        if before is not None and _all_recovered(state.history, before, solved_before):
            break
    hist = state.history
    margins = None if hist[0]["min_margin"] is None else np.array([h["min_margin"] for h in hist])
    return Retrain(np.array([h["epoch"] for h in hist]), np.array([h["loss"] for h in hist]), margins,
                   np.array(times), state.controls)


def recovery_threshold(before: np.ndarray | float) -> np.ndarray:
    """The MSE (V^2) a damaged network must get back to: RMS_CRITERION_V^2, or its pre-damage MSE if larger."""
    return np.maximum(RMS_CRITERION_V ** 2, np.asarray(before, float))


def _all_recovered(history: list[dict], before: np.ndarray, solved_before: np.ndarray | None) -> bool:
    loss = np.array([h["loss"] for h in history])
    done = np.any(loss <= recovery_threshold(before)[None, :], axis=0)
    if solved_before is not None:
        done &= np.any(np.array([h["min_margin"] for h in history]) >= SUCCESS_V, axis=0) | ~solved_before
    return bool(done.all())


def pretrain(cfg: Config, seeds: list[int], backend: str
             ) -> tuple[Setup, Trainer, np.ndarray, np.ndarray, np.ndarray | None]:
    """(setup, trainer, trained controls [R, E], loss [R], min margin [R] or None) of one replica per seed."""
    done = train_replicas(cfg, seeds, backend=backend)
    last = done.state.history[-1]
    return done.setup, done.trainer, done.state.controls, np.asarray(last["loss"]), last["min_margin"]


@dataclass
class Outcome:
    """Per damaged replica: strategy, k, seed, cut, losses, recovery."""

    strategy: str
    k: int
    seed: int
    cut: list[int]
    loss_before: float
    loss_after: float
    loss_final: float
    recovery_epoch: float
    recovery_time_s: float
    margin_before: float | None = None
    margin_after: float | None = None
    margin_final: float | None = None
    resolve_epoch: float | None = None
    resolve_time_s: float | None = None

    @property
    def jump(self) -> float:
        return self.loss_after / self.loss_before


def outcomes(strategy: str, k: int, seeds: list[int], cut: np.ndarray, before: np.ndarray,
             margin_before: np.ndarray | None, rt: Retrain) -> list[Outcome]:
    out = []
    for r, seed in enumerate(seeds):
        rec = recovery_epoch(rt.epochs, rt.loss[:, r], float(recovery_threshold(before[r])), 1.0)
        o = Outcome(strategy, k, seed, cut.tolist(), float(before[r]), float(rt.loss[0, r]), float(rt.loss[-1, r]),
                    rec, float("nan") if np.isnan(rec) else float(rt.learning_time[int(rec), r]))
        if rt.min_margin is not None:
            m = rt.min_margin[:, r]
            hit = np.flatnonzero(m >= SUCCESS_V)
            o.margin_before, o.margin_after, o.margin_final = float(margin_before[r]), float(m[0]), float(m[-1])
            o.resolve_epoch = float(rt.epochs[hit[0]]) if len(hit) else float("nan")
            o.resolve_time_s = float(rt.learning_time[int(o.resolve_epoch), r]) if len(hit) else float("nan")
        out.append(o)
    return out


def damage_study(name: str, overrides: list[str], seeds: list[int], draws: int, retrain_epochs: int,
                 eval_every: int, backend: str) -> tuple[list[Outcome], dict]:
    """Pretrain one replica per seed, then every (strategy, k) cut and its retraining."""
    t0 = time.perf_counter()
    setup, trainer, trained, loss, margin = pretrain(claim_config(name, overrides), seeds, backend)
    t_pre = time.perf_counter() - t0
    rng = np.random.default_rng([len(name), 2024])
    scores = np.stack([current_scores(trainer.circuit, c, trainer.evaluate(c).free) for c in trained])
    results: list[Outcome] = []
    refused = {"random_draws_refused": {}, "conductive_edges_skipped": {}}

    def cut_and_retrain(strategy: str, k: int, cut: np.ndarray, reps: list[int]) -> None:
        margins = None if margin is None else margin[reps]
        rt = retrain(damaged_trainer(setup, cut, retrain_epochs, eval_every, backend),
                     np.delete(trained[reps], cut, axis=1), [seeds[r] for r in reps], loss[reps],
                     None if margins is None else margins >= SUCCESS_V)
        results.extend(outcomes(strategy, k, [seeds[r] for r in reps], cut, loss[reps], margins, rt))

    for k in KS:
        cuts, refused["random_draws_refused"][k] = random_cuts(setup.circuit, k, draws, rng)
        for d, cut in enumerate(cuts):  # each draw damages every other network: more distinct cuts per cost
            cut_and_retrain("random", k, cut, list(range(d % 2, len(seeds), 2)) if len(seeds) > 1 else [0])
        groups: dict[tuple, list[int]] = {}
        skipped = 0
        for r in range(len(seeds)):
            cut, sk = busiest_cut(setup.circuit, scores[r], k)
            groups.setdefault(tuple(cut.tolist()), []).append(r)
            skipped += sk
        refused["conductive_edges_skipped"][k] = skipped
        for cut_t, reps in groups.items():
            cut_and_retrain("conductive", k, np.array(cut_t, int), reps)
    info = {"config": f"configs/{name}.yaml", "overrides": overrides, "seeds": seeds, "draws_per_k": draws,
            "retrain_epochs": retrain_epochs, "eval_every": eval_every, "pretrain_epochs": setup.params.epochs,
            "t_learn_s": setup.hardware.t_learn, "pretrain_wall_s": round(t_pre, 1),
            "wall_s": round(time.perf_counter() - t0, 1),
            "loss_before_median": float(np.median(loss)), "loss_before_max": float(np.max(loss)), **refused}
    if margin is not None:
        info["solved_before"] = int(np.sum(margin >= SUCCESS_V))
    return results, info


def summarize(results: list[Outcome], classification: bool) -> dict:
    """Per strategy and k: medians and quartiles of the jump and the recovery, fractions recovered/re-solved."""
    out: dict = {}
    for strategy in ("random", "conductive"):
        out[strategy] = {}
        for k in KS:
            rows = [o for o in results if o.strategy == strategy and o.k == k]
            if not rows:
                continue
            jump = np.array([o.jump for o in rows])
            rec = np.array([o.recovery_epoch for o in rows])
            rtime = np.array([o.recovery_time_s for o in rows])
            s = {"n": len(rows), "jump": quartiles(jump),
                 "loss_after_median": float(np.median([o.loss_after for o in rows])),
                 "recovered_fraction": float(np.mean(np.isfinite(rec))), "recovery_epoch": quartiles(rec),
                 "recovery_time_s": quartiles(rtime), "jump_above_1_fraction": float(np.mean(jump > 1)),
                 "final_over_before_median": float(np.median([o.loss_final / o.loss_before for o in rows])),
                 "rms_before_mv": quartiles(1e3 * np.sqrt([o.loss_before for o in rows])),
                 "rms_after_mv": quartiles(1e3 * np.sqrt([o.loss_after for o in rows])),
                 "rms_final_mv": quartiles(1e3 * np.sqrt([o.loss_final for o in rows])),
                 "within_criterion_before": int(sum(o.loss_before <= RMS_CRITERION_V ** 2 for o in rows)),
                 "within_criterion_at_end": int(sum(o.loss_final <= RMS_CRITERION_V ** 2 for o in rows))}
            if classification:
                pre = [o for o in rows if o.margin_before >= SUCCESS_V]
                s["pre_solved"] = len(pre)
                s["still_solved_after_cut"] = int(sum(o.margin_after >= SUCCESS_V for o in pre))
                s["resolved"] = int(sum(np.isfinite(o.resolve_epoch) for o in pre))
                s["solved_at_end"] = int(sum(o.margin_final >= SUCCESS_V for o in pre))
                s["resolve_epoch"] = quartiles(np.array([o.resolve_epoch for o in pre]))
                s["resolve_time_s"] = quartiles(np.array([o.resolve_time_s for o in pre]))
            out[strategy][k] = s
    return out


def backend_agreement(name: str, overrides: list[str], pre_epochs: int, epochs: int) -> dict:
    """Seed 0 pretrained on native, its most conductive edge cut, then retrained on native and on ngspice."""
    setup, trainer, trained, loss, _ = pretrain(claim_config(name, [*overrides, f"learning.epochs={pre_epochs}"]),
                                                [0], "native")
    busy = current_scores(trainer.circuit, trained[0], trainer.evaluate(trained[0]).free)
    cut, _ = busiest_cut(setup.circuit, busy, 1)
    res = {b: retrain(damaged_trainer(setup, cut, epochs, epochs, b), np.delete(trained, cut, axis=1), [0])
           for b in ("native", "ngspice")}
    n, s = res["native"], res["ngspice"]
    return {"pretrain_epochs": pre_epochs, "retrain_epochs": epochs, "cut": cut.tolist(),
            "loss_before": float(loss[0]), "loss_after_cut_native": float(n.loss[0, 0]),
            "loss_after_cut_ngspice": float(s.loss[0, 0]), "loss_final_native": float(n.loss[-1, 0]),
            "loss_final_ngspice": float(s.loss[-1, 0]),
            "loss_rel_diff": float(abs(n.loss[-1, 0] - s.loss[-1, 0]) / max(abs(s.loss[-1, 0]), 1e-30)),
            "max_gate_diff_v": float(np.max(np.abs(n.final_controls - s.final_controls))),
            "max_gate_move_v": float(np.max(np.abs(n.final_controls - np.delete(trained, cut, axis=1))))}


def _plot(ctx: Context, summaries: dict[str, dict]) -> str:
    plt = pyplot()
    fig, axes = plt.subplots(len(summaries), 3, figsize=(13, 3.4 * len(summaries)), squeeze=False)
    styles = (("random", "o", "random cut"), ("conductive", "s", "most conductive cut"))
    for row, (task, summ) in zip(axes, summaries.items()):
        solved = "resolve_time_s" in next(iter(summ["random"].values()))
        for j, (strategy, marker, label) in enumerate(styles):
            by_k = summ[strategy]
            ks = np.array(list(by_k)) * (0.95 if j == 0 else 1.05)
            for ax, field in zip((row[0], row[2]), ("jump", "resolve_time_s" if solved else "recovery_time_s")):
                pts = [(k, by_k[k0][field]) for k, k0 in zip(ks, by_k) if by_k[k0][field]["median"] is not None]
                med = np.array([q["median"] for _, q in pts])
                err = [med - [q["q25"] for _, q in pts], [q["q75"] for _, q in pts] - med]
                ax.errorbar([k for k, _ in pts], med, yerr=err, marker=marker, capsize=3, label=label)
            frac = [by_k[k]["resolved"] / max(by_k[k]["pre_solved"], 1) if solved
                    else by_k[k]["recovered_fraction"] for k in by_k]
            row[1].plot(ks, frac, marker=marker, label=label)
        row[0].axhline(1.0, color="k", lw=0.8, ls=":")
        row[0].set(yscale="log", ylabel="loss right after the cut / before")
        crit = f"RMS <= {1e3 * RMS_CRITERION_V:g} mV"
        row[1].set(ylim=(-0.05, 1.05), ylabel=("fraction re-solved (min margin >= 10 mV)" if solved else
                                               f"fraction back within {crit}\n(or the pre-damage RMS)"))
        row[2].set(yscale="symlog", ylabel="learning time to " + ("re-solve (s)" if solved else f"{crit} (s)"))
        row[2].yaxis.set_minor_locator(plt.NullLocator())
        for ax in row:
            ax.set(xscale="log", xlabel="edges cut k (of 32)", title=task)
            ax.set_xticks(list(KS), [str(k) for k in KS])
            ax.xaxis.set_minor_locator(plt.NullLocator())
            ax.legend(fontsize=8)
    fig.suptitle("damage and retraining: median and quartiles over networks and draws; learning times of the "
                 "recovered cases", fontsize=9)
    return save_figure(ctx, fig, f"{KEY}_vs_k.png", dpi=120)


def _csv(results: dict[str, list[Outcome]], infos: dict[str, dict]) -> str:
    rows = ["task,chip,strategy,k,seed,cut,loss_before,loss_after,loss_final,jump,recovery_epoch,recovery_time_s,"
            "margin_before,margin_after,margin_final,resolve_epoch"]
    for label, outs in results.items():
        task, chip = infos[label]["task"], infos[label]["chip"]
        for o in outs:
            vals = [o.loss_before, o.loss_after, o.loss_final, o.jump, o.recovery_epoch, o.recovery_time_s,
                    o.margin_before, o.margin_after, o.margin_final, o.resolve_epoch]
            rows.append(f"{task},{chip},{o.strategy},{o.k},{o.seed},{' '.join(map(str, o.cut))},"
                        + ",".join("" if v is None else f"{v:.6g}" for v in vals))
    return "\n".join(rows) + "\n"


def _fmt(q: dict, unit: str = "", digits: str = ".3g") -> str:
    if q["median"] is None:
        return "never"
    return f"{q['median']:{digits}}{unit} [{q['q25']:{digits}}-{q['q75']:{digits}}]"


def run(ctx: Context) -> ClaimResult:
    seeds = ctx.seeds(8, 2)
    draws = 2 if ctx.quick else 8
    plan = {  # task -> (pretrain overrides, retrain epochs, ngspice pretrain/retrain epochs)
        "regression": ([*TASKS["regression"][1], "learning.epochs=" + ("200" if ctx.quick else "2000")],
                       40 if ctx.quick else 1000, (50, 3) if ctx.quick else (300, 60)),
        "xor": ([*TASKS["xor"][1], *(["learning.epochs=300"] if ctx.quick else [])],
                60 if ctx.quick else 1000, (100, 5) if ctx.quick else (1000, 300)),
    }
    results, infos, summaries, agreement = {}, {}, {}, {}
    for task, (overrides, epochs, (ng_pre, ng_epochs)) in plan.items():
        name = TASKS[task][0]
        for chip, extra in CHIPS.items():
            label = f"{task}, {chip}"
            chip_overrides = [*overrides, *extra, *CHIP_SETTINGS.get((task, chip), [])]
            results[label], infos[label] = damage_study(name, chip_overrides, seeds, draws, epochs,
                                                        EVAL_EVERY[task], ctx.backend)
            infos[label].update(task=task, chip=chip)
            summaries[label] = summarize(results[label], task == "xor")
        agreement[task] = backend_agreement(name, [o for o in overrides if not o.startswith("learning.epochs")],
                                            ng_pre, ng_epochs)
    ctx.path(f"{KEY}_cuts.csv").write_text(_csv(results, infos))
    measured = {"setup": infos, "summary": summaries, "ngspice_agreement": agreement,
                "rms_criterion_v": RMS_CRITERION_V, "success_margin_v": SUCCESS_V}
    data = [f"{KEY}_cuts.csv", save_json(ctx, f"{KEY}_summary.json", measured)]
    figures = [_plot(ctx, summaries)]
    lines = _lines(infos, summaries, agreement)
    verdict, reason = _verdict(summaries)
    profiles = {"idealized": "configs/regression.yaml (with per-seed uniform initial gates 2.0-4.0 V) and "
                             "configs/xor.yaml as shipped (level-1 `ald1106-fit`, gate bounds [0.4, 8] V), each on a "
                             "chip without mismatch and on one with twin mismatch (V_T sigma 10 mV, K sigma 0.5%, "
                             "docs/physics.md 2.5). No hardware profile of these tasks is run here."}
    seeds_text = (f"networks from seeds 0-{seeds[-1]}; cuts drawn from a fixed generator. None of this claim's "
                  "settings was tuned on a seed range, so there is no held-out split.")
    return ClaimResult(KEY, TITLE, PAPER, verdict, reason, measured, figures, data, lines, profiles, seeds_text)


def _lines(infos: dict, summaries: dict, agreement: dict) -> list[str]:
    crit = f"RMS <= {1e3 * RMS_CRITERION_V:g} mV"
    lines = [f"- Recovered: RMS training error back within {1e3 * RMS_CRITERION_V:g} mV (MSE "
             f"{RMS_CRITERION_V ** 2:.2g} V^2), or within the network's own pre-damage RMS if that was larger: 1.1% of "
             "the 0.4532 V node full scale (E2:227), about three 8-bit input steps, and between the regression error "
             "floors the imperfection claim measures at 0.25 mV of V_T mismatch and at 1 mV of mismatch or 2.25 mV of "
             "read noise (see its section). Re-solved (XOR): every point >= 10 mV past the threshold."]
    for task, info in infos.items():
        lines.append(
            f"- **{task}** ({info['config']} {' '.join(info['overrides'])}; {len(info['seeds'])} trained networks, "
            f"loss before damage {info['loss_before_median']:.2g} V^2 median = "
            f"{1e3 * np.sqrt(info['loss_before_median']):.2g} mV RMS (worst {info['loss_before_max']:.2g} V^2)"
            + (f", {info['solved_before']}/{len(info['seeds'])} solved (min margin >= 10 mV)"
               if "solved_before" in info else "")
            + f"; {info['draws_per_k']} random cuts per k, each applied to every other network; retrained up to "
            f"{info['retrain_epochs']} epochs, evaluated every {info['eval_every']} (a batch stops at the first "
            f"100-epoch mark at which all its networks have recovered once, and re-solved if solved before); "
            f"learning-switch time {info['t_learn_s']:.3g} s per update). "
            f"Refused random draws (floating island) per k: {info['random_draws_refused']}; most-conductive "
            f"edges skipped for the same reason: {info['conductive_edges_skipped']}.")
        for strategy, by_k in summaries[task].items():
            for k, s in by_k.items():
                line = (f"  - {strategy}, k = {k} (n = {s['n']}): jump x{_fmt(s['jump'])}; RMS error (mV) before "
                        f"{_fmt(s['rms_before_mv'])}, right after the cut {_fmt(s['rms_after_mv'])}, at the end "
                        f"{_fmt(s['rms_final_mv'])}")
                if "pre_solved" not in s:  # XOR's hinge does not minimise the RMS error: judged by re-solving
                    line += (f"; recovered in {s['recovered_fraction']:.0%}, after "
                             f"{_fmt(s['recovery_epoch'], '', '.0f')} epochs = {_fmt(s['recovery_time_s'], ' s')} "
                             f"learning time; {crit} before the cut in {s['within_criterion_before']}/{s['n']}, at "
                             f"the end in {s['within_criterion_at_end']}/{s['n']}")
                else:
                    line += (f"; of {s['pre_solved']} solved networks {s['still_solved_after_cut']} still solved right "
                             f"after the cut, {s['resolved']} re-solved within the budget (at epoch "
                             f"{_fmt(s['resolve_epoch'], '', '.0f')} = {_fmt(s['resolve_time_s'], ' s')} learning "
                             f"time), {s['solved_at_end']} solved at the end")
                lines.append(line + ".")
    return lines + [f"- ngspice vs native, {task}, seed 0 pretrained {a['pretrain_epochs']} epochs, edge {a['cut']} "
                    f"cut, retrained {a['retrain_epochs']} epochs (gates moved up to {a['max_gate_move_v']:.2g} V): "
                    f"loss right after the cut {a['loss_after_cut_ngspice']:.4g} (ngspice) vs "
                    f"{a['loss_after_cut_native']:.4g} V^2 (native); final {a['loss_final_ngspice']:.4g} vs "
                    f"{a['loss_final_native']:.4g} (relative {a['loss_rel_diff']:.1g}); max gate difference "
                    f"{a['max_gate_diff_v']:.2g} V." for task, a in agreement.items()]


def _verdict(summaries: dict[str, dict]) -> tuple[str, str]:
    """Retrainable: most damaged regression networks recover (``recovery_threshold``: RMS back within 5 mV, or the
    pre-damage RMS if larger); most solved XOR networks re-solve (the hinge stops training 20 mV past the threshold,
    so XOR's MSE is not what it minimises). Reproduced if that holds for every task, chip, strategy and k; partly if
    for some; not reproduced if for none. A case with no solved XOR network before the cut is not judged."""
    def fraction(s: dict) -> float:
        return s["resolved"] / s["pre_solved"] if "pre_solved" in s else s["recovered_fraction"]

    table = {(t, st, k): fraction(s) for t, summ in summaries.items() for st, by_k in summ.items()
             for k, s in by_k.items() if s.get("pre_solved", 1) > 0}
    what = {t: "re-solved" if "pre_solved" in next(iter(summ["random"].values())) else
            f"back within {1e3 * RMS_CRITERION_V:g} mV RMS, or their own RMS before the cut if larger"
            for t, summ in summaries.items()}
    nums = "; ".join(f"{t} {what[t]}: " + ", ".join(
        f"{'random' if st == 'random' else 'most conductive'} k={k} {table[(t, st, k)]:.0%}"
        for st in ("random", "conductive") for k in (min(KS), max(KS)) if (t, st, k) in table)
        for t in summaries if any(key[0] == t for key in table))
    unjudged = [(t, st, k) for t, summ in summaries.items() for st, by_k in summ.items() for k, s in by_k.items()
                if s.get("pre_solved", 1) == 0]
    if unjudged:
        nums += f"; not judged where no network was solved before the cut: {_cuts(unjudged)}"
    good = [key for key, v in table.items() if v > 0.5]
    if not table:
        return "not reproduced", "no damaged network could be judged (no XOR network was solved before the cut)."
    if len(good) == len(table):
        return "reproduced", f"after every cut of k = 1-8 edges most networks retrained ({nums})."
    if good:
        return "partly", (f"most networks retrained after some cuts, but not within the retraining budget after "
                          f"these ({_cuts([key for key, v in table.items() if v <= 0.5])}; {nums}).")
    return "not reproduced", f"after no kind of cut did most networks retrain ({nums})."


def _cuts(keys: list[tuple[str, str, int]]) -> str:
    """(task, strategy, k) cuts grouped by task and strategy: "regression, no mismatch: random (k = 4, 8); ..."."""
    by_task: dict[str, dict[str, list[int]]] = {}
    for t, st, k in keys:
        by_task.setdefault(t, {}).setdefault(st, []).append(k)
    return "; ".join(f"{t}: " + ", ".join(f"{'random' if st == 'random' else 'most conductive'} (k = "
                                          + ", ".join(str(k) for k in sorted(ks)) + ")" for st, ks in by_st.items())
                     for t, by_st in by_task.items())
