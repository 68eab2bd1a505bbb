"""Claim: XOR needs nonlinearity. Transistor vs linear-resistor networks, same rule and schedule, many seeds;
the hardware's schedule; twin mismatch; how sensitive the success rate is to each knob; and the hardware profile
(configs/xor_hardware.yaml: the authors' device law, gate range, start, labels and presentation) on held-out
seeds, with its tolerance to twin mismatch."""

from __future__ import annotations

import numpy as np

from ..learning.trainer import SUCCESS_MARGIN_V as SUCCESS_V
from ..runs import train_replicas, train_run
from .base import ClaimResult, Context, claim_config, pyplot, save_figure, save_json

KEY = "xor"
TITLE = "XOR needs nonlinearity"
PAPER = ("The nonlinear transistor network learns XOR, a task no linear network can do (Dillavou et al., PNAS "
         "2024). A third-party ngspice reproduction solved it in 2 of 5 seeds and lost it under twin mismatch.")
#: the hardware's schedule: points cycled in order, one gate update per presentation. With the shipped eta = 0.5
#: this solved 84/100 seeds; a smaller nudge (eta = 0.25, same alpha/eta) solved 95/100 (sweep of 2026-11-29 on
#: seeds 0-99, which chose eta): reported on the held-out seeds from HW_FIRST_SEED on.
HARDWARE = ["learning.schedule=cycle", "learning.nudge=0.25"]
SCHEDULE_LABEL = "transistor, points in order (eta 0.25 chosen on seeds 0-99; held-out seeds)"
MISMATCH = ["device.mismatch.vto_sigma=0.01", "device.mismatch.k_sigma=0.005"]
#: settings for mismatched twins: the full nudge (eta = 1) and a smaller step beat the shipped eta = 0.5, rate 30
MISMATCH_SETTINGS = ["learning.nudge=1.0", "learning.rate=10"]
#: the small sweep reported next to the mismatch rate (first entry: the shipped settings)
MISMATCH_SWEEP = {"shipped (eta 0.5, rate 30)": [], "eta 1, rate 10": MISMATCH_SETTINGS,
                  "eta 1, rate 30": ["learning.nudge=1.0"], "eta 1, rate 10, points in order": [
                      *MISMATCH_SETTINGS, "learning.schedule=cycle"]}
#: the hardware profile: its free values (node placement, nudge, hinge margin, rate, epochs) were chosen on seeds 0-99
#: (docs/hardware.md section 6); it is reported on the held-out seeds 100-199, which were not used to choose them
HW_CONFIG = "xor_hardware"
HW_TUNING_SEEDS = (0, 99)
HW_FIRST_SEED = 100
#: the tolerance curve under the hardware profile, each seed its own chip: twin V_T mismatch (V) with K matched,
#: then K mismatch (relative) with V_T matched
HW_VTO = [0.0, 0.001, 0.0025, 0.005, 0.01]
HW_K = [0.005, 0.01, 0.02]
#: seeds per point of the tolerance curve (the first of the held-out seeds): a mismatched replica trains as its own
#: chip, unbatched; ``scripts/xor_hardware_mismatch.py`` draws the same curve (docs/figures/xor_hardware_mismatch.png)
HW_CURVE_SEEDS = 20
PROFILES = {
    "idealized": "configs/xor.yaml: level-1 `ald1106-fit`, gates U(0.5, 2.0) V in [0.4, 8] V, labels {0, -87 mV} (the "
                 "third party's), four updates summed per epoch, hinge 20 mV, eta 0.5, alpha/eta 30 /V",
    "hardware": "configs/xor_hardware.yaml: the authors' three-regime law (`ald1106-hw`), gate floor 0.75 V and start "
                "~5.03 V, labels +/-87 mV, one point per step in order, hinge (E2:N citations in the config and "
                "docs/hardware.md); node placement, nudge, margin, rate and epochs are ours, chosen on the tuning "
                "seeds",
}
KNOBS = {  # knob -> values; the shipped value is in each list
    "learning.rate": [10.0, 30.0, 100.0],
    "learning.nudge": [0.25, 0.5, 1.0],
    "learning.margin": [0.01, 0.02, 0.04],
    "learning.init.high": [1.0, 2.0, 4.0],
}


def _margins(name: str, overrides: list[str], seeds: list[int], backend: str) -> np.ndarray:
    state = train_replicas(claim_config(name, overrides), seeds, backend=backend).state
    return np.asarray(state.history[-1]["min_margin"], float)


def _mismatch_margins(seeds: list[int], backend: str, extra: list[str]) -> np.ndarray:
    """Each seed draws its own twin mismatch, so each replica is its own circuit: one run per seed."""
    out = []
    for s in seeds:
        state = train_replicas(claim_config("xor", [*MISMATCH, *extra, f"seed={s}"]), [s], backend=backend).state
        out.append(float(state.history[-1]["min_margin"][0]))
    return np.array(out)


def run(ctx: Context) -> ClaimResult:
    seeds = ctx.seeds(100, 4)
    short = ["learning.epochs=300"] if ctx.quick else []
    held_out = [HW_FIRST_SEED + s for s in seeds]
    variants = {
        "transistor, summed updates (configs/xor.yaml)": ("xor", short, seeds),
        SCHEDULE_LABEL: ("xor", [*HARDWARE, *short], held_out),
        "linear resistors, same rule (configs/xor_linear.yaml)": ("xor_linear", short, seeds),
    }
    margins = {label: _margins(name, ov, s, ctx.backend) for label, (name, ov, s) in variants.items()}
    mm_seeds = seeds[: (4 if ctx.quick else 100)]
    margins["transistor with twin mismatch (V_T 10 mV, K 0.5%; eta 1, rate 10)"] = _mismatch_margins(
        mm_seeds, ctx.backend, [*MISMATCH_SETTINGS, *short])
    mm_sweep_seeds = seeds[: (2 if ctx.quick else 20)]
    mm_sweep = {label: int((_mismatch_margins(mm_sweep_seeds, ctx.backend, [*ov, *short]) >= SUCCESS_V).sum())
                for label, ov in MISMATCH_SWEEP.items()}
    rates = {k: int((m >= SUCCESS_V).sum()) for k, m in margins.items()}

    sweep_seeds = seeds[: (2 if ctx.quick else 30)]
    sensitivity = {knob: {str(v): int((_margins("xor", [f"{knob}={v}", *short], sweep_seeds, ctx.backend)
                                       >= SUCCESS_V).sum()) for v in values} for knob, values in KNOBS.items()}

    cfg = claim_config("xor", short)
    ng = train_run(cfg, ctx.path("xor_ngspice_run"), backend="ngspice", progress=False, plots=False)
    nat = train_run(cfg, ctx.path("xor_native_run"), backend="native", progress=False, plots=False)
    gate_diff = float(np.max(np.abs(ng.state.controls - nat.state.controls)))

    hw_seeds = [HW_FIRST_SEED + i for i in range(2 if ctx.quick else 100)]
    hw_margins = hardware_margins(hw_seeds, ctx.backend, short)
    hw_ok = int((hw_margins >= SUCCESS_V).sum())
    n_curve = min(HW_CURVE_SEEDS, len(hw_seeds))
    curve = tolerance_curve(hw_seeds[:n_curve], ctx.backend, short, hw_margins[:n_curve])

    figures = [_figure(ctx, margins, sensitivity, len(sweep_seeds)), curve_figure(ctx, curve, n_curve)]
    data = save_json(ctx, "xor_results.json", {"seeds": seeds, "margins_v": margins, "successes": rates,
                                               "sensitivity_successes": sensitivity, "sensitivity_seeds": sweep_seeds,
                                               "mismatch_settings_successes": mm_sweep,
                                               "hardware_profile": {"config": f"configs/{HW_CONFIG}.yaml",
                                                                    "tuning_seeds": list(HW_TUNING_SEEDS),
                                                                    "seeds": hw_seeds, "margins_v": hw_margins,
                                                                    "successes": hw_ok, "tolerance": curve,
                                                                    "tolerance_seeds": hw_seeds[:n_curve]},
                                               "ngspice_vs_native_max_gate_diff_v": gate_diff})
    n = len(seeds)
    lines = [f"- {label}: **{rates[label]}/{len(m)}** seeds with all four cases correct by >= 10 mV "
             f"(median smallest margin {1e3 * np.median(m):+.1f} mV)" for label, m in margins.items()]
    lines += [f"- sensitivity ({len(sweep_seeds)} seeds per value, successes): " + "; ".join(
        f"{knob.split('.')[-1]} " + ", ".join(f"{v}: {c}" for v, c in vals.items())
        for knob, vals in sensitivity.items())]
    lines += [f"- twin mismatch, settings ({len(mm_sweep_seeds)} seeds each, successes): "
              + "; ".join(f"{k}: {v}" for k, v in mm_sweep.items())]
    lines += [f"- **hardware profile** (configs/{HW_CONFIG}.yaml; free values chosen on seeds {HW_TUNING_SEEDS[0]}-"
              f"{HW_TUNING_SEEDS[1]}), held-out seeds {hw_seeds[0]}-{hw_seeds[-1]}: **{hw_ok}/{len(hw_seeds)}** "
              f"(median smallest margin {1e3 * np.median(hw_margins):+.1f} mV)"]
    lines += ["- hardware profile under twin mismatch (held-out seeds, each its own chip, successes): " + "; ".join(
        f"{row['label']}: {row['successes']}/{n_curve}" for row in curve)]
    lines += [f"- ngspice vs native, seed 0 of configs/xor.yaml: gates agree to {gate_diff:.1e} V; smallest margin "
              f"{1e3 * ng.summary['min_margin_v']:.2f} mV (ngspice) vs {1e3 * nat.summary['min_margin_v']:.2f} mV "
              "(native)"]
    t, hw, lin, mm = (rates[k] for k in margins)
    hw_profile_ok = hw_ok >= 0.9 * len(hw_seeds)
    verdict = "reproduced" if lin == 0 and t >= 0.95 * n and hw >= 0.9 * n and hw_profile_ok else (
        "partly" if lin == 0 and t > 0 else "not reproduced")
    reason = (f"transistors solve XOR in {t}/{n} seeds ({hw}/{n} in order, held-out seeds), linear resistors in "
              f"{lin}/{n}; with twin mismatch {mm}/{len(mm_seeds)}")
    if verdict == "partly" and not (t >= 0.95 * n and hw >= 0.9 * n):
        reason += " (targets: >= 95 and >= 90 of 100)"
    if mm < 0.8 * len(mm_seeds):
        reason += "; the mismatch rate is below the 80% aimed for"
    reason += (f"; hardware profile (the authors' law, gate range, start, labels, one point per step) "
               f"{hw_ok}/{len(hw_seeds)} on held-out seeds" + ("" if hw_profile_ok else " (target >= 90%)"))
    return ClaimResult(KEY, TITLE, PAPER, verdict, reason,
                       measured={"successes": rates, "seeds": n, "sensitivity": sensitivity, "mismatch_sweep": mm_sweep,
                                 "ngspice_native_gate_diff_v": gate_diff, "hardware_successes": hw_ok,
                                 "hardware_seeds": len(hw_seeds),
                                 "hardware_tolerance": {row["label"]: row["successes"] for row in curve}},
                       figures=figures, data=[data], lines=lines, profiles=PROFILES,
                       seeds=(f"idealized: seeds {seeds[0]}-{seeds[-1]} (the shipped settings were chosen on seeds "
                              f"0-99 on 2026-11-29, so these are not held out); in-order schedule and hardware profile:"
                              f" held-out seeds {held_out[0]}-{held_out[-1]} (their free values chosen on seeds "
                              f"{HW_TUNING_SEEDS[0]}-{HW_TUNING_SEEDS[1]}); tolerance curve: the first {n_curve} of "
                              "those"))


def hardware_margins(seeds: list[int], backend: str, extra: list[str]) -> np.ndarray:
    """Smallest margins of the hardware profile; under ``per_replica`` mismatch each seed is its own chip."""
    return _margins(HW_CONFIG, extra, seeds, backend)


def tolerance_curve(seeds: list[int], backend: str, extra: list[str], clean: np.ndarray) -> list[dict]:
    """Successes of the hardware profile against twin V_T mismatch (K matched) and K mismatch (V_T matched);
    ``clean`` holds the margins of the same seeds without mismatch. Each spread twice: with independent twins
    (twin mismatch) and with matched twins (``device.mismatch.twins: matched``: the same devices' spread, no
    difference between the twins)."""
    rows = []
    for twins in ("independent", "matched"):
        for kind, values in (("vto_sigma", HW_VTO), ("k_sigma", HW_K)):
            for v in values:
                if v == 0.0 and twins == "matched":
                    continue  # the clean row serves both
                m = clean if v == 0.0 else hardware_margins(seeds, backend, [
                    *extra, f"device.mismatch.{kind}={v}", "device.mismatch.per_replica=true",
                    f"device.mismatch.twins={twins}"])
                label = f"V_T {1e3 * v:g} mV" if kind == "vto_sigma" else f"K {1e2 * v:g}%"
                rows.append({"kind": kind, "sigma": v, "twins": twins,
                             "label": label + (", matched twins" if twins == "matched" else ""),
                             "successes": int((m >= SUCCESS_V).sum()), "median_margin_v": float(np.median(m))})
    return rows


def curve_figure(ctx: Context, curve: list[dict], n: int) -> str:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for ax, kind, scale, unit in ((a, "vto_sigma", 1e3, "V_T sigma per transistor (mV), K not spread"),
                                  (b, "k_sigma", 1e2, "K sigma per transistor (%), V_T not spread")):
        for twins, style in (("independent", "o-"), ("matched", "s--")):
            rows = [r for r in curve if r["sigma"] == 0.0 or (r["kind"] == kind and r["twins"] == twins)]
            rows.sort(key=lambda r: r["sigma"])
            ax.plot([scale * r["sigma"] for r in rows], [r["successes"] / n for r in rows], style,
                    label=f"{twins} twins")
        ax.axhline(0.8, color="k", ls="--", lw=1)
        ax.set(xlabel=unit, ylim=(-0.05, 1.05))
    a.set_ylabel(f"success rate ({n} held-out seeds)")
    a.legend(fontsize=8)
    fig.suptitle(f"XOR, hardware profile (configs/{HW_CONFIG}.yaml): device spread with independent twins (twin "
                 "mismatch) or matched twins", fontsize=9)
    return save_figure(ctx, fig, "xor_hardware_mismatch.png")


def _figure(ctx: Context, margins: dict, sensitivity: dict, n_sweep: int) -> str:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    bins = np.linspace(-60, 40, 41)
    for label, m in margins.items():
        a.hist(1e3 * np.clip(m, -0.06, 0.04), bins=bins, alpha=0.5, label=label.split(" (")[0])
    a.axvline(10, color="k", ls="--", lw=1)
    a.set(xlabel="smallest margin over the 4 cases (mV)", ylabel="seeds")
    a.legend(fontsize=7)
    for knob, vals in sensitivity.items():
        xs = list(vals)
        b.plot(range(len(xs)), [vals[x] / n_sweep for x in xs], "o-", label=f"{knob.split('.', 1)[1]} {xs}")
    b.set_xticks(range(3), ["low", "shipped", "high"])
    b.set(ylabel="success rate", ylim=(-0.05, 1.05))
    b.legend(fontsize=7)
    b.set_title("sensitivity of the success rate")
    return save_figure(ctx, fig, "xor_margins.png")
