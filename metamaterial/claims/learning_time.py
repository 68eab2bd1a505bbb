"""Claim: retrainable in seconds. Training converted to the hardware's learning time (cumulative switch-on time of
the gate-capacitor charging circuit), per task, next to the paper's statement. Time is counted per learning window:
a step presenting one point takes one window when it updates; a full-batch step takes one window per active point
(``retraining.train_to_criterion`` counts them), not one."""

from __future__ import annotations

import numpy as np

from ..config import with_backend
from ..energy import CODE_GAIN_BAND, time_band
from ..experiment import build, initial_controls
from ..learning.gates import HardwareParams
from ..retraining import train_to_criterion
from ..runs import one_replica, succeeded, train_run
from .base import ClaimResult, Context, claim_config, pyplot, save_figure, save_json

KEY = "learning_time"
TITLE = "Learning time in seconds"
PAPER = ("The network is retrainable in seconds of learning time, the cumulative time the learning switches are "
         "closed (Dillavou et al., PNAS 2024; C = 2.2 uF, R = 1 kohm, t_learn 25-200 us per update).")
TASKS = ("xor", "regression", "linear_regression", "allostery")
#: the hardware's learning-switch time per window (s): the charging circuit's own (``HardwareParams.t_learn``)
SWITCH_S = HardwareParams.t_learn


def _time_to_criterion(history: list[dict], success: bool) -> tuple[float, float]:
    """(epoch, learning time s) at which training is done: XOR-like tasks when every point is correct by 10 mV
    (and stays so), others when the loss first comes within 2x of its final value."""
    epochs = np.array([h["epoch"] for h in history], float)
    times = np.array([h["learning_time_s"] for h in history], float)
    if success:
        ok = np.array([bool(succeeded(h["min_margin"])) for h in history])
        if not ok[-1]:
            return float("nan"), float("nan")
        first = np.flatnonzero(~ok)
        k = first[-1] + 1 if len(first) else 0
    else:
        loss = np.array([h["loss"] for h in history])
        k = int(np.flatnonzero(loss <= 2 * loss[-1])[0])
    return float(epochs[k]), float(times[k])


def run(ctx: Context) -> ClaimResult:
    rows = {}
    for name in TASKS:
        cfg = claim_config(name, ["learning.eval_every=1"] + (["learning.epochs=200"] if ctx.quick else []))
        setup = build(cfg)
        res = train_run(cfg, ctx.path(f"learning_time_{name}"), backend=ctx.backend, progress=False, plots=False)
        epoch, seconds = _time_to_criterion(one_replica(res.state).history, setup.task.is_classification)
        hw = setup.hardware
        windows = seconds / hw.t_learn if np.isfinite(seconds) else float("nan")
        # a full-batch run: counted window by window up to the first step that meets the criterion, as the
        # re-learning times are (retraining.train_to_criterion); the history reads it at evaluations only
        if setup.params.schedule.kind == "full_batch":
            start = initial_controls(setup, np.random.default_rng(cfg.seed))
            counted = train_to_criterion(build(with_backend(cfg, ctx.backend)), start, cfg.seed, cfg.learning.epochs)
            epoch, windows = (counted.epochs, counted.windows) if counted.reached else (float("nan"), float("nan"))
            seconds = windows * hw.t_learn
        rows[name] = {"epochs_to_done": epoch, "learning_time_s": seconds, "windows": windows,
                      "schedule": setup.params.schedule.kind, "t_learn_s": hw.t_learn,
                      "rate_per_v": setup.rule.rate, "updates_total": res.summary["n_updates"],
                      "final_loss": res.summary["final_loss"],
                      "at_100us_switch_s": windows * SWITCH_S if np.isfinite(seconds) else None,
                      "capacitance_F": hw.capacitance, "resistance_ohm": hw.resistance, "gain": hw.gain,
                      # the same windows at the gain the authors' code reads, this run's capacitor
                      "at_code_gain_s": (list(time_band(setup.rule.rate, windows, hw, (hw.capacitance,) * 2,
                                                        CODE_GAIN_BAND)) if np.isfinite(seconds) else None)}
    data = save_json(ctx, "learning_time.json", {"tasks": rows})
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = list(rows)
    ax.bar(names, [rows[n]["learning_time_s"] for n in names], color="C0")
    ax.axhline(1.0, color="k", ls="--", lw=1, label="1 s")
    ax.set(yscale="log", ylabel="learning time to done (s)")
    ax.set_title(f"switch-on time with C = {hw.capacitance * 1e6:g} uF, R = {hw.resistance / 1e3:g} kohm, "
                 f"gain {hw.gain:g}")
    ax.legend()
    save_figure(ctx, fig, "learning_time.png")
    lines = [f"- {n}: done after {r['epochs_to_done']:.0f} epochs, {r['windows']:.0f} learning windows "
             f"({r['schedule']}) = **{r['learning_time_s']:.3g} s** of switch-on time "
             f"(rate alpha/eta = {r['rate_per_v']:g} /V, i.e. t_learn = {r['t_learn_s']:.3g} s per window; the same "
             f"number of windows at the hardware's 100 us per window would take "
             f"{(r['at_100us_switch_s'] or float('nan')):.3g} s but move the gates "
             f"{r['t_learn_s'] / SWITCH_S:.0f}x less)"
             for n, r in rows.items()]
    lines.append("- Done: a classification when every point is correct by 10 mV (under full batch, counted step by "
                 "step until it first holds, one window per point not yet past the hinge's margin; otherwise from the "
                 "evaluations, staying so to the end), a regression when the loss first comes within 2x of its "
                 "final value.")
    lines.append("- The learning time is set by the charge the gates need: with this circuit "
                 "dV_G = gain t_learn U / (R C), so for small steps it barely depends on how the charge is split into "
                 "updates; it scales as R C / gain (the multiplier gain of 1/10 is not confirmed by the authors).")
    lo_gain, hi_gain = CODE_GAIN_BAND
    code = {n: r["at_code_gain_s"] for n, r in rows.items() if r["at_code_gain_s"]}
    lines.append(f"- At the effective gain the authors' code implies, {lo_gain:g}-{hi_gain:g} /V (docs/hardware.md "
                 "section 3, **Rate**: its predicted update, or the 1/10 acting on the x11-amplified drops), the same "
                 "windows take " + "; ".join(f"{n} {a:.3g}-{b:.3g} s" for n, (a, b) in code.items())
                 + f" (windows of {hw.gain / hi_gain:.2g}-{hw.gain / lo_gain:.2g}x the t_learn above). What would "
                 "pin the gain: one measured gate step for a known contrast and window (the authors' `checkUpdates` "
                 "compares exactly these).")
    times = [r["learning_time_s"] for r in rows.values() if np.isfinite(r["learning_time_s"])]
    worst = max(times, default=float("nan"))
    fastest = min((a for a, _ in code.values()), default=np.inf)
    slowest = max((b for _, b in code.values()), default=np.inf)
    # "partly": some task takes seconds at the nominal gain, or at the high end of the code's reading
    verdict = ("reproduced" if times and worst <= 10 else
               "partly" if times and (min(times) <= 10 or fastest <= 10) else "not reproduced")
    reason = (f"with the published C and R and a gain of 0.1 /V, the tasks need {min(times):.3g}-{worst:.3g} s of "
              f"switch-on time; at the {lo_gain:g}-{hi_gain:g} /V the authors' code implies, {fastest:.3g}-"
              f"{slowest:.3g} s (the gain is unconfirmed)" if times else "no task reached its criterion")
    return ClaimResult(KEY, TITLE, PAPER, verdict, reason, measured={"tasks": rows}, figures=["learning_time.png"],
                       data=[data], lines=lines,
                       profiles={"idealized": ", ".join(f"configs/{t}.yaml" for t in TASKS)
                                              + " as shipped; the published C = 2.2 uF and R = 1 kohm, a multiplier "
                                                "gain of 0.1 (unconfirmed)"},
                       seeds="seed 0 of each config; nothing here was tuned on seeds")
