"""Time per epoch of the 8x8 digits config (configs/digits.yaml) on the native backend, beside the published
third-party ngspice trainer's ~7.5 s per epoch on the same task and network size (github Ma-Lab-Cal/pyclln,
scikit_digits/README.md: 1,437 training images, per-sample updates, then the 360 held-out images evaluated).

It trains the config's first epoch untimed (numba's kernels load or compile), then ``--epochs`` more, timing each
epoch's training steps alone and each evaluation (the held-out 360, and the 1,437 training images) alone, and
prints per epoch and per training image: the steps, the steps plus the held-out evaluation (what the peer's
figure covers), the CPU time of both, the number of solves and Newton iterations, the held-out accuracy, and the
machine's load (the peer's figure is its own machine's wall time).

    python scripts/bench_digits.py [--epochs 3] [--config configs/digits.yaml] [--set key=value ...]

``--ngspice`` instead trains the config's first epoch on both backends from the same gates and data order (no
evaluations) and prints each backend's time and the largest gate difference between them.

    python scripts/bench_digits.py --ngspice

``--memory N`` trains N epochs on native (evaluating every epoch, as a run does) and prints the resident memory
after the first and the last epoch.

``--versus KEY=VALUE`` (repeatable) times the config against the config with these overrides side by side: each
trains its untimed first epoch, then the two take turns for ``--epochs`` epochs each (steps and held-out
evaluation); it prints both CPU times per epoch (medians) and their ratio, e.g. grounded against tied bodies:

    python scripts/bench_digits.py --versus device.body=input --epochs 5

``--python-step`` times the config's compiled training loop against the Python step (the loop switched off) side
by side the same way, from the same gates and draws, and prints the largest gate difference between the two at
the end (they do the same arithmetic), e.g. the mismatched chip with its read noise:

    python scripts/bench_digits.py --config configs/digits_chips.yaml --python-step --epochs 3

``--peer DIR --peer-python PY`` times the third party's own trainer on this machine, side by side with ours,
taking turns (ours, theirs, ours, ..., ours): theirs is ``scikit_digits/train_scikit.py --epochs E`` run by PY
from DIR (a local copy of github.com/Ma-Lab-Cal/pyclln outside this repository; PY a Python with its numpy,
scikit-learn, torch and PySpice 1.5), and an epoch of it is the time between two of its per-epoch lines (its
1,437 steps, its 360 held-out reads and its two small saves: what its published ~7.5 s covers), its process's CPU
time read from ``/proc`` at each line. Ours is epochs 1..E of ``--config`` (default configs/digits.yaml) and of
configs/digits_peer.yaml (its circuit and recipe, so the same work per step) from fresh gates each round, steps
plus the held-out evaluation, after an untimed epoch that loads numba's kernels. Epoch k is compared with epoch
k (the first epoch steps on more images than later ones):

    python scripts/bench_digits.py --peer DIR --peer-python PY [--rounds 1] [--epochs 1]

Its epochs 1 and 2 took 861-967 s and 683 s here (2026-12-04, ngspice 46), so its defaults, one round of one epoch,
take a quarter of an hour, and ``--rounds 2 --epochs 2`` about an hour.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from metamaterial import machine
from metamaterial.configfile import load_config
from metamaterial.experiment import build, initial_controls, make_trainer
from metamaterial.learning.trainer import TrainState

sys.path.insert(0, str(Path(__file__).resolve().parent))
from child_usage import cpu_seconds  # noqa: E402
from peer_compare import PEER_REPO  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: the published trainer's time per epoch (s) on ngspice, 1,247 edges (github Ma-Lab-Cal/pyclln, scikit_digits)
PEER_EPOCH_S = 7.5
PEER_TRAINER = Path("scikit_digits") / "train_scikit.py"
#: its progress lines: "[ep 0] untrained acc=..." after its first evaluation, "[ep k/E] acc=... (Ns)" after each epoch
_PEER_LINE = re.compile(r"^\[ep (\d+)(?:/\d+)?\] (?:untrained )?acc=([0-9.]+)")
PEER_RECIPE = ROOT / "configs" / "digits_peer.yaml"


def main() -> int | None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "digits.yaml"))
    ap.add_argument("--epochs", type=int, help="timed epochs after the untimed first one (default 3; with --peer, "
                    "epochs of each side per round, default 1)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    ap.add_argument("--ngspice", action="store_true", help="one epoch on ngspice and on native: time, gate agreement")
    ap.add_argument("--memory", type=int, default=0, metavar="N", help="resident memory over N native epochs")
    ap.add_argument("--versus", action="append", default=[], metavar="KEY=VALUE",
                    help="time the config against the config with these overrides, taking turns")
    ap.add_argument("--python-step", action="store_true",
                    help="time the compiled training loop against the Python step, taking turns")
    ap.add_argument("--peer", type=Path, help=f"local copy of github.com/{PEER_REPO} (outside this repository)")
    ap.add_argument("--peer-python", help="Python with the third party's numpy, scikit-learn, torch and PySpice 1.5")
    ap.add_argument("--rounds", type=int, default=1,
                    help="with --peer: runs of the third party's trainer (each about 15 min per epoch here)")
    ap.add_argument("--timeout", type=float, default=3600, help="with --peer: seconds allowed per third-party run")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_digits_peer.json", help="with --peer: JSON")
    a = ap.parse_args()
    if a.epochs is None:
        a.epochs = 1 if a.peer or a.peer_python else 3
    if a.peer or a.peer_python:
        return versus_peer(a)
    if a.versus or a.python_step:
        return side_by_side(a.config, a.set, a.versus, a.epochs, a.python_step)
    if a.ngspice:
        return first_epoch_on_both(a.config, a.set)
    if a.memory:
        return memory_over_epochs(a.config, a.set, a.memory)
    cfg = load_config(a.config, ["simulator.backend=native", *a.set])
    setup = build(cfg)
    total = 1 + a.epochs
    trainer = make_trainer(setup, epochs=total + 1, eval_every=10**9, record_every=10**9)
    rng = np.random.default_rng(cfg.seed)
    state = trainer.init_state(initial_controls(setup, rng), rng, keep_trajectory=False)
    state = trainer.run(state, until=1)  # untimed: loads (or compiles) the kernels, as any first epoch would
    points, held_out = setup.task.n_points, len(setup.task.test_inputs)
    steps_s, test_s, train_eval_s, solves, iterations, cpu_s = [], [], [], [], [], []
    for epoch in range(2, total + 1):
        s0, i0 = trainer.solver.n_solves, trainer.solver.loop_iterations
        t0, c0 = time.perf_counter(), time.process_time()
        state = trainer.run(state, until=epoch)
        t1 = time.perf_counter()
        test = trainer.evaluate(state.controls[0], test=True)
        t2, c2 = time.perf_counter(), time.process_time()
        trainer.evaluate(state.controls[0])
        t3 = time.perf_counter()
        steps_s.append(t1 - t0)
        test_s.append(t2 - t1)
        train_eval_s.append(t3 - t2)
        cpu_s.append(c2 - c0)
        solves.append(trainer.solver.n_solves - s0)
        iterations.append(trainer.solver.loop_iterations - i0)
        print(f"epoch {epoch}: steps {t1 - t0:.3f} s ({solves[-1]} solves, {iterations[-1]} Newton iterations in the "
              f"compiled loop), held-out evaluation {t2 - t1:.3f} s, training-set evaluation {t3 - t2:.3f} s, "
              f"CPU time of steps + held-out evaluation {c2 - c0:.3f} s, held-out accuracy {test.accuracy:.4f}",
              flush=True)
    step, ev = statistics.median(steps_s), statistics.median(test_s)
    c = setup.circuit
    print(f"\n{cfg.name}: {c.n_edges} edges, {c.n_nodes} nodes, {points} training / {held_out} held-out images, "
          f"native backend, median of {a.epochs} epochs")
    print(f"  training steps per epoch:        {step:8.3f} s   ({step / points * 1e6:7.1f} us per training image)")
    print(f"  held-out evaluation per epoch:   {ev:8.3f} s   ({ev / held_out * 1e6:7.1f} us per image)")
    print(f"  epoch (steps + held-out eval):   {step + ev:8.3f} s   ({(step + ev) / points * 1e6:7.1f} us per "
          f"training image)")
    cpu = statistics.median(cpu_s)
    print(f"  CPU time of that epoch:          {cpu:8.3f} s   (this process's CPU time, all threads; on a busy "
          "machine the wall time above is longer)")
    print(f"  training-set evaluation:         {statistics.median(train_eval_s):8.3f} s   (a run's metrics.csv adds "
          "it every learning.eval_every epochs)")
    print(f"  published ngspice trainer:       {PEER_EPOCH_S:8.3f} s per epoch  -> this is "
          f"{PEER_EPOCH_S / (step + ev):.1f}x faster in wall time, {PEER_EPOCH_S / cpu:.1f}x in CPU time "
          "(target: >= 10x)")
    load = os.getloadavg()[0]
    print(f"  load average while measuring:    {load:8.1f}   on {os.cpu_count()} CPUs")
    print(f"  machine: {machine.summary(machine.describe())}")


def side_by_side(config: str, overrides: list[str], versus: list[str], epochs: int, python_step: bool = False) -> None:
    """CPU time per epoch (steps + held-out evaluation) of the config and of the config with ``versus`` (or, with
    ``python_step``, of the same config on the Python step), taking turns epoch by epoch so that both see the same
    machine load."""
    runs = {}
    other = "the Python step" if python_step else " ".join(versus)
    for name, extra in (("config", []), (other, versus)):
        cfg = load_config(config, ["simulator.backend=native", *overrides, *extra])
        setup = build(cfg)
        trainer = make_trainer(setup, epochs=epochs + 2, eval_every=10**9, record_every=10**9)
        trainer.compiled = not (python_step and name == other)
        rng = np.random.default_rng(cfg.seed)
        state = trainer.run(trainer.init_state(initial_controls(setup, rng), rng, keep_trajectory=False), until=1)
        runs[name] = [trainer, state, [], []]
    for epoch in range(2, epochs + 2):
        for run in runs.values():
            trainer, state, cpu, wall = run
            t0, c0 = time.perf_counter(), time.process_time()
            run[1] = trainer.run(state, until=epoch)
            trainer.evaluate(run[1].controls[0], test=True)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - t0)
    for name, (_, _, cpu, wall) in runs.items():
        print(f"{name}: epoch (steps + held-out evaluation) median CPU {statistics.median(cpu):.3f} s (min "
              f"{min(cpu):.3f}), wall {statistics.median(wall):.3f} s over {epochs} epochs")
    (a_cpu, b_cpu) = (statistics.median(r[2]) for r in runs.values())
    print(f"ratio of CPU times ({other} / config): {b_cpu / a_cpu:.2f}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if python_step:
        (a, b) = (r[1].controls for r in runs.values())
        print(f"largest gate difference between the two after {epochs + 1} epochs: {np.max(np.abs(a - b)):.1e} V")


def versus_peer(a) -> int:
    """The third party's trainer and ours on this machine, taking turns (module docstring): epoch k's wall and CPU
    time on each side, medians over the rounds, and their ratios."""
    if not a.peer or not a.peer_python or not (a.peer / PEER_TRAINER).exists():
        print(f"bench_digits: --peer DIR must hold {PEER_TRAINER} (and its common/noise_model.py and "
              f"scikit_digits/topology_1247.npz) of a local copy of github.com/{PEER_REPO} (git clone "
              f"https://github.com/{PEER_REPO} DIR, outside this repository), and --peer-python PY a Python with "
              "numpy, scikit-learn, torch and PySpice==1.5", file=sys.stderr)
        return 2
    peer = a.peer.resolve()
    ours = {"config": (a.config, a.set), "its recipe": (str(PEER_RECIPE), a.set)}
    times: dict[str, list[list[tuple[float, float]]]] = {name: [] for name in (*ours, "theirs")}
    accuracy = []
    _our_epochs(a.config, a.set, 1)  # untimed: loads (or compiles) numba's kernels in this process
    for r in range(a.rounds + 1):
        for name, (config, overrides) in ours.items():
            times[name].append(_our_epochs(config, overrides, a.epochs))
        print(f"round {r + 1}: ours " + "; ".join(
            f"{name} " + " ".join(f"{w:.3f} s ({c:.3f} CPU)" for w, c in times[name][-1]) for name in ours),
            flush=True)
        if r == a.rounds:
            break
        print(f"round {r + 1}: theirs, {a.epochs} epoch(s) on ngspice (one took 683-967 s here on 2026-12-04) ...",
              flush=True)
        got, acc = _peer_epochs(peer, a.peer_python, a.epochs, a.timeout)
        times["theirs"].append(got)
        accuracy.append(acc)
        print(f"round {r + 1}: theirs " + " ".join(f"{w:.2f} s ({c:.2f} CPU)" for w, c in got)
              + f"; held-out accuracy by epoch {' '.join(f'{x:.4f}' for x in acc)}", flush=True)
    print("\nper epoch (1,437 steps + 360 held-out images), median over the rounds; wall | CPU:")
    summary = {}
    for k in range(a.epochs):
        row = {name: [statistics.median(run[k][i] for run in runs) for i in (0, 1)] for name, runs in times.items()}
        summary[f"epoch {k + 1}"] = row
        theirs = row["theirs"]
        print(f"  epoch {k + 1}: {PEER_REPO} (ngspice) {theirs[0]:.2f} s | {theirs[1]:.2f} s")
        for name in ours:
            w, c = row[name]
            print(f"           ours, {name + ' (native)':<22} {w:.3f} s | {c:.3f} s  ->  {theirs[0] / w:.0f}x less "
                  f"wall, {theirs[1] / c:.0f}x less CPU")
    here = machine.summary(machine.describe())
    print(f"  its published figure: ~{PEER_EPOCH_S} s per epoch on its own machine; this machine: {here}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"peer": PEER_REPO, "machine": machine.describe(), "epochs": a.epochs,
                                 "rounds": a.rounds, "config": a.config, "overrides": a.set,
                                 "seconds_wall_cpu": times, "peer_accuracy": accuracy, "median": summary},
                                indent=2) + "\n")
    print(f"wrote {a.out}")
    return 0


def _our_epochs(config: str, overrides: list[str], epochs: int) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of epochs 1..``epochs`` of a native run from the config's fresh gates: each epoch's steps
    and its held-out evaluation, as the third party's epoch."""
    cfg = load_config(config, ["simulator.backend=native", *overrides])
    setup = build(cfg)
    trainer = make_trainer(setup, epochs=epochs + 1, eval_every=10**9, record_every=10**9)
    rng = np.random.default_rng(cfg.seed)
    state = trainer.init_state(initial_controls(setup, rng), rng, keep_trajectory=False)
    out = []
    for epoch in range(1, epochs + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        state = trainer.run(state, until=epoch)
        trainer.evaluate(state.controls[0], test=True)
        out.append((time.perf_counter() - t0, time.process_time() - c0))
    return out


def _peer_epochs(peer: Path, python: str, epochs: int, timeout: float) -> tuple[list[tuple[float, float]], list]:
    """(wall, CPU) seconds of each of the third party's epochs, between its progress lines (its process's CPU time
    from ``/proc`` at each), and its held-out accuracy after each. Its own folder holds its run's output
    (``scikit_digits/results/<name>``), removed at the end."""
    name = f"bench_digits_{os.getpid()}_{time.time_ns()}"
    marks: dict[int, tuple[float, float, float]] = {}
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([python, str(peer / PEER_TRAINER), "--epochs", str(epochs), "--out", name],
                                stdout=subprocess.PIPE, stderr=err, text=True, cwd=peer / PEER_TRAINER.parent,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            for line in proc.stdout:
                m = _PEER_LINE.match(line)
                if m:
                    marks[int(m.group(1))] = (time.perf_counter(), cpu_seconds(proc.pid), float(m.group(2)))
            proc.wait()
        finally:
            timer.cancel()
            shutil.rmtree(peer / PEER_TRAINER.parent / "results" / name, ignore_errors=True)
        if proc.returncode != 0 or len(marks) != epochs + 1:
            err.seek(0)
            raise SystemExit(f"bench_digits: the third party's trainer failed (exit {proc.returncode}, "
                             f"{len(marks)} of {epochs + 1} progress lines): {err.read().strip()[-2000:]}")
    got = [(marks[k][0] - marks[k - 1][0], marks[k][1] - marks[k - 1][1]) for k in range(1, epochs + 1)]
    return got, [marks[k][2] for k in range(1, epochs + 1)]


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def memory_over_epochs(config: str, overrides: list[str], epochs: int) -> None:
    """Resident memory (MiB) after epoch 1 and after epoch ``epochs`` of a native run (evaluated every epoch)."""
    cfg = load_config(config, ["simulator.backend=native", f"learning.epochs={epochs}", *overrides])
    setup = build(cfg)
    trainer = make_trainer(setup)
    rng = np.random.default_rng(cfg.seed)
    state = trainer.init_state(initial_controls(setup, rng), rng)
    state = trainer.run(state, until=1)
    first = _rss_mib()
    state = trainer.run(state)
    last = _rss_mib()
    print(f"resident memory after epoch 1: {first:.1f} MiB, after epoch {state.epoch}: {last:.1f} MiB "
          f"(growth {last - first:+.1f} MiB; the history and gate trajectory a run keeps are included)")


def first_epoch_on_both(config: str, overrides: list[str]) -> None:
    """Train epoch 1 on ngspice and on native from the same initial gates and data order; print both times and
    the largest difference of the gates after it."""
    gates, times, solves = {}, {}, {}
    for backend in ("native", "ngspice"):
        cfg = load_config(config, [f"simulator.backend={backend}", *overrides])
        setup = build(cfg)
        trainer = make_trainer(setup, epochs=10**9, eval_every=10**9, record_every=10**9)  # no evaluation
        rng = np.random.default_rng(cfg.seed)
        state = TrainState(0, np.atleast_2d(initial_controls(setup, rng)), [rng], np.zeros(1, np.int64),
                           keep_trajectory=False)
        t0, c0 = time.perf_counter(), time.process_time()
        state = trainer.run(state, until=1)
        times[backend] = (time.perf_counter() - t0, time.process_time() - c0)
        solves[backend] = trainer.solver.n_solves
        trainer.solver.close()
        gates[backend] = state.controls[0]
        print(f"{backend}: epoch 1 in {times[backend][0]:.1f} s wall, {times[backend][1]:.1f} s CPU of this process "
              f"({solves[backend]} solves, {int(state.n_updates[0])} updates)", flush=True)
    moved = np.max(np.abs(gates["native"] - initial_controls(setup, np.random.default_rng(cfg.seed))))
    worst = np.max(np.abs(gates["ngspice"] - gates["native"]))
    print(f"largest gate difference after epoch 1, ngspice vs native: {worst:.3g} V "
          f"(the gates moved by up to {moved:.3g} V); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    sys.exit(main())
