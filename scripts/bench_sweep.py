"""Sweep throughput and memory, measured side by side in one run (issue 12).

1. ``throughput``: one 40-point ngspice sweep (the regression, each point a realistic training of ``--epochs``,
   default 200, a few seconds on an idle core) run with 1 local worker, then 2, then 1 and 2 again (``--rounds``),
   each into a fresh folder; prints points per second over the whole sweep (cluster start included) and between
   the first and last finished point (the steady state), the ratio 2 vs 1 of each, and the fixed cost (from the
   call to the first point started).
2. ``native``: the 1,000-point native sweep ``configs/sweeps/regression_kp_lambda.yaml`` (kp x lambda x 10 seeds,
   seeds batched as ensembles) with 2 workers: its wall time, from the spec file to the last result (expansion
   and validation of the points included).
3. ``memory``: a long ngspice sweep (``--points``, default 500, of ``--epochs`` 1 each: short points, so that it
   is affordable) on 2 workers without recycling: each training process's resident memory after its first and
   its last point (from the event log), and the growth; and the client's (which holds the local cluster's
   workers) after the first and the last task.

4. ``--profile``: the CPU time (``resource.getrusage`` of the process, not wall time) a new training process
   spends before its first point, stage by stage, started as a sweep's worker starts it (``worker._new_pool``: a
   spawned interpreter that imports the main module): the interpreter and its imports, numba, PySpice and ngspice's
   library, the external-source callback, the first build, the warm-up epoch (``worker._warm``: netlist load,
   dc sweep setup, the step's kernels), then a second warm-up and two points of ``--epochs`` (default 200) for
   comparison. Runs only the parts named besides it.

Every part prints the load average before and after it. The machine is shared: numbers drift between minutes;
the rounds of (1) alternate to share the drift.
Usage: python scripts/bench_sweep.py [throughput|native|memory ...] [--points N] [--epochs N] [--rounds N]
[--out DIR] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import yaml

from metamaterial.sweep import load_sweep, worker
from metamaterial.sweep.execute import run_sweep
from metamaterial.sweep.store import read_events

ROOT = Path(__file__).resolve().parents[1]


def _spec(folder: Path, n: int, epochs: int, name: str) -> Path:
    """A regression ngspice sweep of n points: learning.rate over n values (each point a different config)."""
    every = min(10, epochs)
    doc = {"name": name, "base": str(ROOT / "configs" / "regression.yaml"),
           "set": [f"learning.epochs={epochs}", f"learning.eval_every={every}", f"learning.record_every={every}"],
           "grid": {"learning.rate": {"linspace": [1.0, 10.0, n]}}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _run(spec: Path, out: Path, workers: int, recycle_after: int = 200) -> dict:
    sweep = load_sweep(spec)
    t0 = time.time()
    run = run_sweep(sweep, out, workers=workers, recycle_after=recycle_after)
    events = read_events(out)
    finished = sorted(e["t"] for e in events if e["event"] == "finished")
    first = min((e["t"] for e in events if e["event"] == "started"), default=float("nan"))
    steady = (len(finished) - 1) / (finished[-1] - finished[0]) if len(finished) > 1 else float("nan")
    return {"workers": workers, "points": run.ok + run.failed, "failed": run.failed, "wall_s": round(run.wall_s, 2),
            "points_per_s": round((run.ok + run.failed) / run.wall_s, 4), "steady_points_per_s": round(steady, 4),
            "to_first_start_s": round(first - t0, 2), "load": _load()}


def throughput(folder: Path, points: int, epochs: int, rounds: int) -> dict:
    spec = _spec(folder, points, epochs, "throughput")
    rows = []
    for r in range(rounds):
        for workers in (1, 2):
            row = _run(spec, folder / f"throughput_{r}_{workers}", workers)
            rows.append(row)
            print(f"  round {r}: {workers} worker(s): {row['points']} points in {row['wall_s']} s, "
                  f"{row['points_per_s']} points/s overall, {row['steady_points_per_s']} steady; first point "
                  f"started {row['to_first_start_s']} s after the call; load {row['load']}", flush=True)
    best = {w: max(x["points_per_s"] for x in rows if x["workers"] == w) for w in (1, 2)}
    steady = {w: max(x["steady_points_per_s"] for x in rows if x["workers"] == w) for w in (1, 2)}
    out = {"points": points, "epochs": epochs, "rows": rows, "ratio_overall": round(best[2] / best[1], 2),
           "ratio_steady": round(steady[2] / steady[1], 2)}
    print(f"throughput: 2 workers vs 1 ({points} ngspice points of {epochs} epochs): x{out['ratio_overall']} overall, "
          f"x{out['ratio_steady']} steady (best of {rounds} rounds each)")
    return out


def native(folder: Path) -> dict:
    out = folder / "native"
    t0, c0 = time.perf_counter(), time.process_time()
    run = run_sweep(load_sweep(ROOT / "configs" / "sweeps" / "regression_kp_lambda.yaml"), out, workers=2)
    wall, client_cpu = time.perf_counter() - t0, time.process_time() - c0
    tasks = {}  # one task's CPU time is in each of its points' records
    for path in (out / "results").glob("*.json"):
        record = json.loads(path.read_text())
        if "task_cpu_s" in record:
            tasks[(record["pid"], record["task_wall_s"], record["task_cpu_s"])] = record["task_cpu_s"]
    train_cpu = sum(tasks.values())
    print(f"native: {run.ok} ok, {run.failed} failed of {run.total} points in {wall:.1f} s (2 workers; load "
          f"{_load()}); CPU time: {train_cpu:.1f} s in {len(tasks)} training tasks, {client_cpu:.1f} s in the client")
    return {"points": run.total, "ok": run.ok, "failed": run.failed, "wall_s": round(wall, 1), "tasks": len(tasks),
            "train_cpu_s": round(train_cpu, 1), "client_cpu_s": round(client_cpu, 1), "load": _load()}


def memory(folder: Path, points: int, epochs: int) -> dict:
    import psutil  # noqa: PLC0415 (a dependency of dask.distributed)

    out = folder / "memory"
    client: list[float] = []  # this process's RSS (MiB) after each task: it holds the local cluster's workers

    def sample(done: int, total: int, failed: int) -> None:
        client.append(round(psutil.Process().memory_info().rss / 2**20, 1))

    run = run_sweep(load_sweep(_spec(folder, points, epochs, "memory")), out, workers=2, recycle_after=0,
                    on_progress=sample)
    per_pid: dict[int, list[tuple[float, float]]] = {}
    for e in read_events(out):
        if e["event"] == "finished":
            per_pid.setdefault(e["pid"], []).append((e["t"], e["rss_mb"]))
    rows = []
    for pid, series in per_pid.items():
        series.sort()
        rows.append({"pid": pid, "points": len(series), "first_mb": series[0][1], "last_mb": series[-1][1],
                     "max_mb": max(s[1] for s in series), "growth_mb": round(series[-1][1] - series[0][1], 1)})
        print(f"memory: training process {pid}: {len(series)} points, RSS {series[0][1]} MiB after the first, "
              f"{series[-1][1]} MiB after the last (growth {rows[-1]['growth_mb']} MiB, max {rows[-1]['max_mb']})")
    print(f"memory: the client (with its thread workers): RSS {client[0]} MiB after the first task, {client[-1]} "
          f"MiB after the last (growth {client[-1] - client[0]:.1f} MiB, max {max(client)})")
    print(f"memory: {run.ok} ok, {run.failed} failed in {run.wall_s:.0f} s")
    return {"points": run.total, "ok": run.ok, "processes": rows,
            "client": {"first_mb": client[0], "last_mb": client[-1], "max_mb": max(client)}}


def _cpu() -> float:
    """CPU seconds (user + system) this process has used since it started."""
    import resource  # noqa: PLC0415

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _startup_stages(points: list, out: str) -> dict:
    """In a fresh training process: the CPU each stage of its start costs, in the order a sweep meets them."""
    import sys  # noqa: PLC0415

    from metamaterial.experiment import build  # noqa: PLC0415

    stages = [("interpreter, spawn, imports of the main module and the task", _cpu())]
    modules = len(sys.modules)

    def stage(name: str, run) -> None:
        c0 = _cpu()
        run()
        stages.append((name, _cpu() - c0))

    cfg = points[0].config
    stage("import numba", lambda: __import__("numba"))
    from metamaterial.sim import ngspice  # noqa: PLC0415

    stage("import PySpice, load libngspice (ngspice._shared)", ngspice._shared)
    stage("ngspice solver, external-source callback (numba cfunc)",
          lambda: ngspice.NgspiceSolver()._install_callbacks())
    stage("first build of the config (experiment.build)", lambda: build(cfg))
    stage("warm-up epoch (worker._warm: build, netlist load, dc sweep, step kernels, 1 epoch)",
          lambda: worker._warm(cfg))
    stage("  a second warm-up epoch, for comparison", lambda: worker._warm(cfg))
    before_first = sum(c for name, c in stages[:-1])
    stage("first point (worker._train)", lambda: worker._train(points[:1], Path(out), "profile"))
    stage("second point (worker._train)", lambda: worker._train(points[1:2], Path(out), "profile"))
    return {"stages": stages, "before_first_point_s": before_first, "modules_at_start": modules,
            "modules": len(sys.modules)}


def profile(folder: Path, epochs: int) -> dict:
    sweep = load_sweep(_spec(folder, 2, epochs, "profile"))
    (folder / "profile").mkdir(exist_ok=True)
    t0 = time.perf_counter()
    slot = {"pool": None}
    worker._new_pool(slot)  # the training process as a sweep's worker starts it
    try:
        got = slot["pool"].submit(_startup_stages, list(sweep.points), str(folder / "profile")).result()
    finally:
        worker._drop_pool(slot)
    for name, cpu in got["stages"]:
        print(f"  {cpu:6.2f} s CPU  {name}")
    print(f"profile: a new training process spent {got['before_first_point_s']:.2f} s CPU before its first point "
          f"({got['modules_at_start']} modules imported at start, {got['modules']} at the end; {epochs} epochs per "
          f"point; {time.perf_counter() - t0:.1f} s wall in all; load {_load()})")
    return got


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("parts", nargs="*", metavar="{throughput,native,memory}",
                   help="parts to run (default: all three, or none with --profile)")
    p.add_argument("--points", type=int, help="points of the sweep (default: 40 for throughput, 500 for memory)")
    p.add_argument("--epochs", type=int, help="epochs of each ngspice point (default: 200 for throughput, 1 for "
                                              "memory)")
    p.add_argument("--rounds", type=int, default=2, help="rounds of 1 and 2 workers in throughput (default 2)")
    p.add_argument("--out", type=Path, help="keep the sweeps and bench_sweep.json here (default: a temp folder)")
    p.add_argument("--profile", action="store_true", help="the CPU a new training process spends before its first "
                                                          "point, by stage")
    args = p.parse_args()
    if not args.parts and not args.profile:
        args.parts = ["throughput", "native", "memory"]
    for part in args.parts:
        if part not in ("throughput", "native", "memory"):
            p.error(f"argument parts: invalid choice: {part!r} (choose from throughput, native, memory)")
    folder = args.out or Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    if args.profile:
        results["profile"] = profile(folder, args.epochs or 200)
    for part in args.parts:
        print(f"{part}: load {_load()}", flush=True)
        if part == "throughput":
            results[part] = throughput(folder, args.points or 40, args.epochs or 200, args.rounds)
        elif part == "native":
            results[part] = native(folder)
        else:
            results[part] = memory(folder, args.points or 500, args.epochs or 1)
    (folder / "bench_sweep.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"results: {folder / 'bench_sweep.json'}")


if __name__ == "__main__":
    main()
