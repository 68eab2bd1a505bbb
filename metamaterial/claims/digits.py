"""Claim: beyond the 4x4 torus. The 8x8 handwritten digits on a 1,247-edge layered network (configs/digits.yaml) and
on three mismatched chips (configs/digits_chips.yaml), trained on the native backend, beside the published numbers
of the third-party ngspice trainer of the same task and network size (github Ma-Lab-Cal/pyclln, scikit_digits/).

Measured: held-out accuracy after every epoch (the last epoch's is the result), and the time per epoch (wall and
CPU) and per training image of what the peer's figure covers: an epoch's training steps plus the evaluation of the
360 held-out images, timed on a separate trainer of the clean config, the median over ``TIMED_EPOCHS`` epochs after
an untimed first one (which loads or compiles the kernels). The verdict is against
issue 14's targets: held-out accuracy >= 0.98 clean and >= 0.97 on each of three chips, in under a tenth of the
peer's ~7.5 s per epoch (compared here with our CPU time, the peer's figure being its own machine's wall time).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from ..analysis import spread
from ..experiment import build, initial_controls, make_trainer
from ..runs import one_replica, seed_span, train_replicas
from .base import ClaimResult, Context, claim_config, pyplot, save_figure, save_json

KEY = "digits"
TITLE = "Beyond the 4x4 torus: 8x8 digits"
PAPER = ("Not a claim of the paper: a third-party ngspice trainer (github Ma-Lab-Cal/pyclln, scikit_digits/) trains "
         "scikit-learn's 8x8 digits on a 1,247-edge transistor network to 0.9806 held-out accuracy after 15 epochs "
         "clean and 0.9694 on each of three mismatched chips after 30, at about 7.5 s per epoch; issue 14 asks for "
         ">= 0.98 clean and >= 0.97 on three chips on the native backend, in under a tenth of that time per epoch.")
#: the peer's published numbers (github Ma-Lab-Cal/pyclln, scikit_digits/README.md and results/results.json)
PEER = {"clean_accuracy": 0.9806, "chip_accuracy": 0.9694, "epoch_s": 7.5, "clean_epochs": 15, "chip_epochs": 30}
CLEAN_TARGET, CHIP_TARGET, SPEEDUP_TARGET = 0.98, 0.97, 10.0
CHIPS = (1, 2, 3)
#: the clean config trained from each of these seeds on the same split: the spread of one run's held-out accuracy
CLEAN_SEEDS = tuple(range(8))
QUICK_EPOCHS = 2  # the smoke run: two epochs of the clean config and of chip 1
#: accuracy against mismatch level: multiples of the peer's spreads (V_T 10 mV, K 0.5 %) on the chips config (its
#: read noise included), each a batch of chips, replica r being the chip and the training of seed CURVE_SEEDS[r]
PEER_SPREADS = (0.01, 0.005)
CURVE_MULTIPLES = (0, 1, 4, 16, 32)
CURVE_SEEDS = (1, 2, 3)
TIMED_EPOCHS = 3  # epochs timed after the untimed first one (1 in the smoke run)
#: per-pixel feature maps of the inputs x = pixel/16 in [0, 1] (V): a linear classifier of any of them is an additive
#: one, a function of each pixel on its own summed over pixels, which is what a network without a hidden layer
#: approaches (docs/physics.md 4.4)
FEATURES = {
    "pixels": lambda x: x,
    "pixels and their squares": lambda x: np.hstack([x, x ** 2]),
    "ramps max(0, x - t), t = 0, 1/4, 1/2, 3/4": lambda x: np.hstack([np.maximum(x - t, 0) for t in (0, .25, .5, .75)]),
    "level indicators x >= k/16, k = 1, 3, ..., 15":
        lambda x: np.hstack([(x >= k / 16) * 1.0 for k in range(1, 17, 2)]),
}
LOGISTIC_C, SVM_C = (0.1, 1.0, 10.0), (0.01, 0.1, 1.0)


def _epoch_time(name: str, backend: str, epochs: int) -> dict:
    """Wall and CPU time (s) of an epoch's training steps plus the held-out evaluation (the peer's per-epoch work),
    medians over ``epochs`` epochs after an untimed first one; no training-set evaluation."""
    cfg = claim_config(name, [f"simulator.backend={backend}"])
    setup = build(cfg)
    trainer = make_trainer(setup, epochs=epochs + 2, eval_every=10**9, record_every=10**9)
    rng = np.random.default_rng(cfg.seed)
    state = trainer.run(trainer.init_state(initial_controls(setup, rng), rng, keep_trajectory=False), until=1)
    wall, cpu = [], []
    with trainer.solver:
        for epoch in range(2, epochs + 2):
            t0, c0 = time.perf_counter(), time.process_time()
            state = trainer.run(state, until=epoch)
            trainer.evaluate(state.controls[0], test=True)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - t0)
    return {"epoch_wall_s": wall, "epoch_cpu_s": cpu, "median_epoch_wall_s": statistics.median(wall),
            "median_epoch_cpu_s": statistics.median(cpu),
            "cpu_per_point_s": statistics.median(cpu) / setup.task.n_points}


def _train_timed(name: str, overrides: list[str], backend: str) -> dict:
    """Train a shipped config once; per epoch: held-out and training accuracy, wall and CPU time (s) with the
    evaluations."""
    cfg = claim_config(name, overrides)
    marks = []

    def on_epoch(trainer, state) -> None:
        marks.append((state.epoch, time.perf_counter(), time.process_time()))

    done = train_replicas(cfg, [cfg.seed], backend=backend, on_epoch=on_epoch)
    with done.trainer.solver:
        one = one_replica(done.state)
    history = [h for h in one.history if h["epoch"] > 0]
    return {"config": name, "overrides": overrides, "seed": cfg.seed, "epochs": one.epoch,
            "training_points": done.setup.task.n_points, "held_out_points": len(done.setup.task.test_inputs),
            "test_accuracy": [h["test_accuracy"] for h in history], "accuracy": [h["accuracy"] for h in history],
            "final_test_accuracy": history[-1]["test_accuracy"],
            "wall_s_with_evaluations": [b[1] - a[1] for a, b in zip(marks, marks[1:])],
            "cpu_s_with_evaluations": [b[2] - a[2] for a, b in zip(marks, marks[1:])]}


def _seed_spread(name: str, first: dict, seeds: tuple, overrides: list[str], backend: str) -> dict:
    """Held-out accuracy at the last epoch of a shipped config trained from each of ``seeds`` (one batch of
    replicas; the network and the split stay the config's, the initial gates and the data order are each seed's);
    the seed of ``first``, a ``_train_timed`` run of the same config, is taken from it, not trained again."""
    rest = [s for s in seeds if s != first["seed"]]
    done = train_replicas(claim_config(name, overrides), rest, backend=backend)
    with done.trainer.solver:
        by_seed = dict(zip(rest, (float(a) for a in done.state.history[-1]["test_accuracy"])))
    by_seed[first["seed"]] = first["final_test_accuracy"]
    acc = [by_seed[s] for s in seeds]
    return {"config": name, "seeds": list(seeds), "test_accuracy": acc, **spread(acc)}


def _mismatch_curve(multiples: tuple, seeds: tuple, epochs: list[str], backend: str) -> list[dict]:
    """Held-out accuracy at the last epoch of each chip, per multiple of the peer's spreads (independent twins)."""
    rows = []
    for m in multiples:
        vto, k = (m * s for s in PEER_SPREADS)
        cfg = claim_config("digits_chips", [f"device.mismatch={{vto_sigma: {vto}, k_sigma: {k}, per_replica: true}}",
                                            *epochs])
        done = train_replicas(cfg, list(seeds), backend=backend)
        with done.trainer.solver:
            acc = [float(a) for a in done.state.history[-1]["test_accuracy"]]
        rows.append({"multiple": m, "vto_sigma_v": vto, "k_sigma": k, "seeds": list(seeds), "test_accuracy": acc,
                     "mean_test_accuracy": float(np.mean(acc))})
    return rows


def references(task, quick: bool = False) -> dict:
    """Held-out accuracy of scikit-learn classifiers on the task's own split, as references for the targets (nothing
    here chooses a setting of ours): for each of ``FEATURES`` the best of logistic regressions (C in ``LOGISTIC_C``)
    and linear SVMs (C in ``SVM_C``), with C picked on the held-out images themselves (so an upper reference);
    and an RBF-kernel SVM, which mixes pixels. ``quick``: logistic regression at C = 1 only."""
    import warnings  # noqa: PLC0415

    from sklearn.exceptions import ConvergenceWarning  # noqa: PLC0415 (scikit-learn: the digits task's extra)
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.svm import SVC, LinearSVC  # noqa: PLC0415

    models = {f"logistic regression, C = {c:g}": (lambda c=c: LogisticRegression(C=c, max_iter=20_000))
              for c in ((1.0,) if quick else LOGISTIC_C)}
    if not quick:
        models.update({f"linear SVM, C = {c:g}": (lambda c=c: LinearSVC(C=c, max_iter=200_000)) for c in SVM_C})
    x, y, xt, yt = task.inputs, task.classes, task.test_inputs, task.test_classes
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, feature in FEATURES.items():
            a, b = feature(x), feature(xt)
            scores = {m: float(make().fit(a, y).score(b, yt)) for m, make in models.items()}
            best = max(scores, key=scores.get)
            out[name] = {"best": scores[best], "best_model": best, "scores": scores}
    out["pixels, linear-kernel SVM one vs one, C = 1 (45 pairwise planes, not one score per class)"] = {
        "best": float(SVC(kernel="linear").fit(x, y).score(xt, yt))}
    out["RBF-kernel SVM, C = 1 (mixes pixels)"] = {"best": float(SVC().fit(x, y).score(xt, yt))}
    return out


def run(ctx: Context) -> ClaimResult:
    epochs = [f"learning.epochs={QUICK_EPOCHS}"] if ctx.quick else []
    clean = _train_timed("digits", epochs, ctx.backend)
    chips = {n: _train_timed("digits_chips", [f"device.mismatch.seed={n}", *epochs], ctx.backend)
             for n in (CHIPS[:1] if ctx.quick else CHIPS)}
    # seed 0 is the clean run above (a replica ends where the single run of its seed ends): the others only
    spread = _seed_spread("digits", clean, CLEAN_SEEDS[:2] if ctx.quick else CLEAN_SEEDS, epochs, ctx.backend)
    timing = _epoch_time("digits", ctx.backend, 1 if ctx.quick else TIMED_EPOCHS)
    curve = _mismatch_curve((0, CURVE_MULTIPLES[-1]) if ctx.quick else CURVE_MULTIPLES,
                            CURVE_SEEDS[:1] if ctx.quick else CURVE_SEEDS, epochs, ctx.backend)
    refs = references(build(claim_config("digits")).task, ctx.quick)
    linear = refs["pixels"]["best"]
    additive = max(r["best"] for name, r in refs.items() if name in FEATURES)
    data = save_json(ctx, "digits.json", {"peer": PEER, "targets": {"clean": CLEAN_TARGET, "chips": CHIP_TARGET,
                                                                    "speedup": SPEEDUP_TARGET},
                                          "clean": clean, "clean_seeds": spread,
                                          "timing": timing,
                                          "chips": {str(k): v for k, v in chips.items()},
                                          "mismatch_curve": curve, "references": refs})
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for label, r in [("clean", clean), *[(f"chip {k}", v) for k, v in chips.items()]]:
        ax.plot(np.arange(1, r["epochs"] + 1), r["test_accuracy"], marker=".", label=label)
    ax.axhline(PEER["clean_accuracy"], color="k", ls="--", lw=1, label=f"peer clean {PEER['clean_accuracy']}")
    ax.axhline(PEER["chip_accuracy"], color="gray", ls=":", lw=1, label=f"peer chips {PEER['chip_accuracy']}")
    ax.set(xlabel="epoch", ylabel="held-out accuracy (360 images)")
    ax.legend(fontsize=8)
    save_figure(ctx, fig, "digits_accuracy.png")
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    vto = np.array([1e3 * r["vto_sigma_v"] for r in curve])
    for r, x in zip(curve, vto):
        ax.scatter([x] * len(r["test_accuracy"]), r["test_accuracy"], color="C0", s=12, alpha=0.6)
    ax.plot(vto, [r["mean_test_accuracy"] for r in curve], color="C0", marker="o", label="mean over chips")
    ax.axhline(CHIP_TARGET, color="gray", ls=":", lw=1, label=f"target {CHIP_TARGET}")
    ax.set_xlabel(f"V_T spread (mV); K spread (%) = V_T spread x {PEER_SPREADS[1] / PEER_SPREADS[0] / 10:g} /mV")
    ax.set_ylabel("held-out accuracy (360 images)")
    ax.legend(fontsize=8)
    save_figure(ctx, fig, "digits_mismatch.png")

    speedup = PEER["epoch_s"] / timing["median_epoch_cpu_s"]
    chip_acc = {k: v["final_test_accuracy"] for k, v in chips.items()}
    met = {"clean": clean["final_test_accuracy"] >= CLEAN_TARGET,
           "chips": len(chips) == len(CHIPS) and all(a >= CHIP_TARGET for a in chip_acc.values()),
           "speed": speedup >= SPEEDUP_TARGET}
    verdict = "reproduced" if all(met.values()) else ("partly" if any(met.values()) else "not reproduced")
    lines = [
        "| | ours (native) | peer (ngspice) | target |",
        "|---|---|---|---|",
        f"| held-out accuracy, clean, epoch {clean['epochs']} | {clean['final_test_accuracy']:.4f} | "
        f"{PEER['clean_accuracy']} (epoch {PEER['clean_epochs']}) | >= {CLEAN_TARGET} |",
        f"| held-out accuracy, clean, seeds {seed_span(spread['seeds'])}, epoch {clean['epochs']} | mean "
        f"{spread['mean']:.4f} (sd {spread['sd']:.4f}; {spread['min']:.4f}-{spread['max']:.4f}) | one run | |",
        *[f"| held-out accuracy, chip {k}, epoch {chips[k]['epochs']} | {a:.4f} | {PEER['chip_accuracy']} "
          f"(epoch {PEER['chip_epochs']}) | >= {CHIP_TARGET} |" for k, a in chip_acc.items()],
        f"| time per epoch, clean: steps + held-out evaluation (median; CPU / wall) | "
        f"{timing['median_epoch_cpu_s']:.2f} s / {timing['median_epoch_wall_s']:.2f} s | ~{PEER['epoch_s']} s (its "
        f"wall time) | < {PEER['epoch_s'] / SPEEDUP_TARGET:.2f} s |",
        f"| CPU time per training image, clean | {1e3 * timing['cpu_per_point_s']:.2f} ms | "
        f"{1e3 * PEER['epoch_s'] / clean['training_points']:.1f} ms | |",
        "",
        f"- A timed epoch: {clean['training_points']} per-image steps, then the {clean['held_out_points']} held-out "
        f"images evaluated, as the peer's figure; median of {len(timing['epoch_cpu_s'])} epoch(s) after an untimed "
        "first one (the accuracy runs also evaluate the training images every epoch: not timed here). The line "
        "that says when this claim finished names the machine and its load when the claim started: wall times on a "
        "loaded machine are noisy.",
        f"- Chips: `configs/digits_chips.yaml` with `device.mismatch.seed` = {', '.join(map(str, chips))} "
        "(seeded draws of the peer's spreads, not its chip files).",
    ]
    lines += ["", "Accuracy against mismatch level (`configs/digits_chips.yaml`, read noise included; each chip "
              "trained from its own seed, mismatch of both twins independent):", "",
              "| V_T spread | K spread | held-out accuracy per chip (seeds) | mean |", "|---|---|---|---|",
              *[f"| {1e3 * r['vto_sigma_v']:g} mV | {100 * r['k_sigma']:g} % | "
                f"{', '.join(f'{a:.4f}' for a in r['test_accuracy'])} ({', '.join(map(str, r['seeds']))}) | "
                f"{r['mean_test_accuracy']:.4f} |" for r in curve]]
    lines += ["", "Reference classifiers on the same split (scikit-learn, fitted on the 1,437 training images; C "
              "picked on the held-out images themselves, so these are upper references, and nothing of ours was "
              "chosen with them; `python scripts/digits_baselines.py`). A network without a hidden layer scores a "
              "class close to a sum of functions of each pixel on its own (docs/physics.md 4.4): an additive "
              "score.", "",
              "| features (one score per class, linear in them, unless said) | best held-out accuracy | by |",
              "|---|---|---|",
              *[f"| {name} | {r['best']:.4f} | {r.get('best_model', '')} |" for name, r in refs.items()]]
    if ctx.quick:
        lines += ["", f"- Quick run: {QUICK_EPOCHS} epochs and chip 1 only, references by logistic regression at "
                  "C = 1 only; the targets need the full run."]
    reason = (f"held-out {clean['final_test_accuracy']:.4f} clean (target {CLEAN_TARGET}; seeds "
              f"{seed_span(spread['seeds'])}: mean {spread['mean']:.4f}, at most {spread['max']:.4f}), chips "
              f"{', '.join(f'{a:.4f}' for a in chip_acc.values())} (target {CHIP_TARGET} each), "
              f"{speedup:.0f}x less CPU time per epoch than the peer's {PEER['epoch_s']} s "
              f"(target {SPEEDUP_TARGET:.0f}x); the best linear and additive references on this split score "
              f"{linear:.4f} and {additive:.4f}, "
              + ("below the clean target" if additive < CLEAN_TARGET else "at or above the clean target"))
    measured = {"clean_test_accuracy": clean["final_test_accuracy"], "chip_test_accuracy": chip_acc,
                "clean_seeds_test_accuracy": {"mean": spread["mean"], "sd": spread["sd"], "max": spread["max"]},
                "mismatch_curve": {f"{r['multiple']}x": r["mean_test_accuracy"] for r in curve},
                "epoch_cpu_s": timing["median_epoch_cpu_s"], "epoch_wall_s": timing["median_epoch_wall_s"],
                "speedup_cpu": speedup, "targets_met": met, "best_linear_reference": linear,
                "best_additive_reference": additive}
    profiles = {"clean": "configs/digits.yaml", "chips": "configs/digits_chips.yaml, device.mismatch.seed = "
                + ", ".join(map(str, chips))}
    seeds = (f"training seed {clean['seed']} on scikit-learn's split (random_state 0), and the clean config from "
             f"seeds {seed_span(spread['seeds'])} on the same split; the recipes were chosen on "
             "validation splits of the training images (scripts/tune_digits.py; clean: split seeds 0-2 x training "
             "seeds 0-7; chips: chip 1, split seed 0, seeds 0-3, then chips 1-3 on split seeds 0-2), the held-out "
             "360 images are reported here only")
    return ClaimResult(KEY, TITLE, PAPER, verdict, reason, measured=measured, data=[data], lines=lines,
                       figures=["digits_accuracy.png", "digits_mismatch.png"], profiles=profiles, seeds=seeds)
