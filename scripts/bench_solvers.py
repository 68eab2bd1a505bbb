"""Solver benchmark: native vs our ngspice backend vs the naive per-sample PySpice way, side by side in one run.

For each torus size it measures, each backend in its own worker process (so peak memory is its own):
  * sample-solve time: one data point, one phase, gates fixed (batch 1; native also amortized at batch 1024;
    ngspice also with a batch of copies in one netlist),
  * training-update time: free solve + clamped solve + writing every gate back (all gates change),
  * peak resident memory of the worker.
Then the training epoch of the shipped 4x4 XOR and regression configs on native and ngspice, the growth
exponent of the update time with the number of edges, and the comparison with a published third-party
ngspice trainer (its published timing; github Ma-Lab-Cal/pyclln). Prints tables and writes JSON.

The ngspice rows also split the update into the backend's own parts (alter, op, vector reads, ...) where the
checkout's solver keeps them, and ``--memory N`` runs N ngspice updates at the largest size and reports how much
the worker's resident memory grew after the first one. Sizes are square tori: 3x3 = 18 edges, 10x10 = 200, 20x20
= 800, 32x32 = 2,048, 50x50 = 5,000, 100x100 = 20,000.

    python scripts/bench_solvers.py [--sizes 3 10 20 32 50 100] [--out runs/bench_solvers.json] [--quick] [--memory 100]

``--against DIR`` (a checkout of another commit, e.g. ``git worktree add --detach ../before COMMIT``) runs only the
per-epoch comparison: the same worker code times this checkout's package and DIR's package in turn, ``--rounds``
alternating rounds, and prints each config's median and best per-epoch time for both and their ratios:

    python scripts/bench_solvers.py --against ../before --rounds 7
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if "--package-root" in sys.argv:  # a worker timing another checkout's package (--against)
    ROOT = Path(sys.argv[sys.argv.index("--package-root") + 1]).resolve()
sys.path.insert(0, str(ROOT))

#: the third-party trainer's time per training update (s) by number of edges
#: (its published timing; github Ma-Lab-Cal/pyclln)
PEER_UPDATE_S = {18: 0.38e-3, 200: 4.1e-3, 800: 28.7e-3, 5000: 0.97, 20000: 31.3}
BUDGET_S = 60.0  # per measurement: stop repeating once this much time is spent
EPOCH_ROUNDS = 3  # alternating rounds of the per-epoch measurement


def torus_circuit(n: int, preset: str = "ald1106-fit"):
    """n x n torus with the XOR roles of the 4x4 paper placement scaled to n."""
    from metamaterial.circuit import compile_graph
    from metamaterial.devices import nmos_preset
    from metamaterial.graph import Roles, assign_roles, lattice_network

    def node(r4: int, c4: int) -> int:
        return (r4 * n // 4) * n + (c4 * n // 4)

    neg = node(0, 0) if n >= 4 else 1  # below 4x4 the scaled placement puts a rail on (0, 0)
    roles = Roles(inputs=(node(3, 3), node(3, 1)), rails=((node(1, 1), 0.11), (node(1, 3), 0.33)),
                  outputs=((node(2, 2), neg),))
    return compile_graph(assign_roles(lattice_network(n, n), roles), nmos_preset(preset))


def _timed(fn, min_reps: int, budget: float = BUDGET_S) -> tuple[float, int]:
    """Mean seconds per call of ``fn(i)`` over at least ``min_reps`` calls or until the budget runs out."""
    fn(0)  # warm-up: loads, compiles, caches
    t0 = time.perf_counter()
    reps = 0
    while reps < min_reps and time.perf_counter() - t0 < budget:
        fn(reps + 1)
        reps += 1
    return (time.perf_counter() - t0) / max(reps, 1), reps


def naive_solve(circuit, gates: np.ndarray, x: np.ndarray) -> np.ndarray:
    """What peers do: build a PySpice circuit for the sample and call ``operating_point()``."""
    from PySpice.Spice.Netlist import Circuit as PyCircuit

    dev = circuit.device
    pc = PyCircuit("naive")
    pc.model("nm", "nmos", level=1, vto=dev.vto, kp=dev.kp, gamma=dev.gamma, phi=dev.phi, **{"lambda": dev.lambda_})
    for k, (node, volts) in enumerate(zip(circuit.rails, circuit.rail_voltages)):
        pc.V(f"r{k}", f"n{node}", pc.gnd, float(volts))
    for k, node in enumerate(circuit.inputs):
        pc.V(f"i{k}", f"n{node}", pc.gnd, float(x[k]))
    for e, (a, b) in enumerate(circuit.edges):
        pc.V(f"g{e}", f"g{e}", pc.gnd, float(gates[e]))
        pc.M(e, f"n{a}", f"g{e}", f"n{b}", pc.gnd, model="nm", w=dev.w, l=dev.l)
    sim = pc.simulator(simulator="ngspice-shared", temperature=27, nominal_temperature=27)
    sim.options(reltol=1e-6, abstol=1e-15, vntol=1e-9, gmin=1e-12)
    op = sim.operating_point()
    return np.array([float(op.nodes[f"n{i}"][0]) for i in range(circuit.n_nodes)])


def worker(backend: str, n: int, quick: bool) -> dict:
    """Measurements of one backend on one size, in this process."""
    import logging
    logging.getLogger("PySpice").setLevel(logging.CRITICAL)
    from metamaterial.learning.rules import CoupledLearning

    c = torus_circuit(n)
    rng = np.random.default_rng(0)
    gates = rng.uniform(1.0, 3.0, c.n_edges)
    xs = rng.uniform(0, 0.45, (4096, c.n_inputs))
    targets = np.full((1, 1), -0.05)
    rule = CoupledLearning(nudge=0.5, rate=1.0)
    reps = 20 if quick else 200
    out: dict = {"backend": backend, "size": f"{n}x{n}", "n_edges": int(c.n_edges), "n_nodes": int(c.n_nodes)}
    if backend == "naive":
        out["sample_s"], out["sample_reps"] = _timed(lambda i: naive_solve(c, gates, xs[i % 4096]), max(3, reps // 10))
    else:
        if backend == "native":
            from metamaterial.sim.native import NativeSolver
            solver = NativeSolver()
        else:
            from metamaterial.sim.ngspice import NgspiceSolver
            solver = NgspiceSolver()
        out["sample_s"], out["sample_reps"] = _timed(lambda i: solver.solve(c, gates, xs[i % 4096]), reps)
        batch = 1024 if backend == "native" else 64
        if n <= (32 if backend == "native" else 8):  # ngspice's op grows faster than linearly with copies
            # a new set of inputs every call: the warm start is the previous batch's solution, not this one's
            per_batch, r = _timed(lambda i: solver.solve(c, gates, np.roll(xs, 97 * i, axis=0)[:batch]),
                                  max(3, reps // 20))
            out[f"batch{batch}_sample_s"] = per_batch / batch
        state = {"gates": gates.copy()}

        def update(i: int) -> None:
            x = xs[i % 4096][None, :]
            free = solver.solve(c, state["gates"], x).voltages
            clamped = solver.solve(c, state["gates"], x, rule.clamp(c, free, targets)).voltages
            u = rule.contrast(c, free, clamped)[0]
            state["gates"] = np.clip(state["gates"] + 1.0 * u + 1e-6, 0.4, 8.0)  # every gate changes

        if hasattr(solver, "timings"):
            solver.timings = dict.fromkeys(solver.timings, 0.0)
        out["update_s"], out["update_reps"] = _timed(update, max(3, reps // 4))
        if hasattr(solver, "timings"):  # the warm-up update is in the parts too
            out["update_parts_s"] = {k: v / (out["update_reps"] + 1) for k, v in solver.timings.items()}
        if hasattr(solver, "info"):
            out.update(solver.info())
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def memory_worker(n: int, updates: int) -> dict:
    """Resident memory of this process (now, not peak) after one ngspice update and after ``updates`` more."""
    import logging
    logging.getLogger("PySpice").setLevel(logging.CRITICAL)
    from metamaterial.learning.rules import CoupledLearning
    from metamaterial.sim.ngspice import NgspiceSolver

    def rss_mib() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20

    c = torus_circuit(n)
    rng = np.random.default_rng(0)
    gates = rng.uniform(1.0, 3.0, c.n_edges)
    rule, targets, solver = CoupledLearning(nudge=0.5, rate=1.0), np.full((1, 1), -0.05), NgspiceSolver()
    samples = []
    for _ in range(updates + 1):
        x = rng.uniform(0, 0.45, (1, c.n_inputs))
        free = solver.solve(c, gates, x).voltages
        clamped = solver.solve(c, gates, x, rule.clamp(c, free, targets)).voltages
        gates = np.clip(gates + rule.contrast(c, free, clamped)[0] + 1e-6, 0.4, 8.0)
        samples.append(rss_mib())
        if len(samples) == 1:
            t0 = time.perf_counter()  # after the first update, which loads the netlists
    return {"size": f"{n}x{n}", "n_edges": int(c.n_edges), "updates": updates, "rss_after_first_mib": samples[0],
            "rss_last_mib": samples[-1], "rss_growth_mib": samples[-1] - samples[0], "rss_max_mib": max(samples),
            "seconds_per_update": (time.perf_counter() - t0) / updates if updates else float("nan")}


def epoch_worker(backend: str, config: str, quick: bool, repeats: int = 1) -> dict:
    """Seconds per training epoch of a shipped config's whole training, from its initial gates (evaluation only
    at the end), the best of ``repeats`` trainings in this process.

    ``native-python`` is the Python step on the native solver (the compiled training loop switched off)."""
    try:
        from metamaterial.configfile import load_config
    except ImportError:  # checkouts before configfile.py (31d91d4) kept it in config.py
        from metamaterial.config import load_config
    from metamaterial.experiment import build, initial_controls, make_trainer

    # the config's own training (XOR 3,000 epochs, regression 2,000), the same on every backend: the late epochs of
    # a hinge run are cheaper than the first ones, so a shorter run would not be the same mix
    cfg = load_config(ROOT / "configs" / config)
    epochs = 200 if quick else cfg.learning.epochs
    solver = "native" if backend == "native-python" else backend
    cfg = load_config(ROOT / "configs" / config, [f"learning.epochs={epochs}", f"learning.eval_every={epochs}",
                                                  f"simulator.backend={solver}"])
    setup = build(cfg)
    tr = make_trainer(setup)
    # the compiled-loop switch is ``compiled`` (``fused`` in older checkouts)
    setattr(tr, "compiled" if hasattr(tr, "compiled") else "fused", backend != "native-python")

    def fresh():
        rng = np.random.default_rng(cfg.seed)
        return tr.init_state(initial_controls(setup, rng), rng)

    warm = fresh()  # loads ngspice or the compiled kernels once, outside the timing
    # older checkouts keep a single run's controls as [E] and step a [replicas, E] array
    controls = warm.controls if warm.controls.ndim == 2 else warm.controls[None, :]
    tr.advance(controls, [np.random.default_rng(0)], 1)
    best = np.inf
    for _ in range(repeats):  # the same training from the same start, the fastest kept (the machine is shared)
        tr.solver.reset()
        state = fresh()
        t0 = time.perf_counter()
        tr.run(state)
        best = min(best, time.perf_counter() - t0)
    return {"backend": backend, "config": config, "epoch_s": best / epochs, "epochs": epochs, "repeats": repeats,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _spawn(args: list[str], timeout: float, root: Path = ROOT) -> dict | None:
    """Run one worker in a fresh process, importing the package of the checkout at ``root``."""
    cmd = [sys.executable, __file__, "--worker", *args, *(["--package-root", str(root)] if root != ROOT else [])]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=root)
    except subprocess.TimeoutExpired:
        print(f"  {' '.join(args)}: gave up after {timeout:.0f} s", flush=True)
        return None
    if proc.returncode != 0:
        print(f"  {' '.join(args)}: failed: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peer_update_s(edges: int) -> float:
    """The third-party trainer's update time at ``edges``, log-log interpolated between its published points."""
    e = np.array(sorted(PEER_UPDATE_S))
    t = np.array([PEER_UPDATE_S[k] for k in e])
    return float(np.exp(np.interp(np.log(edges), np.log(e), np.log(t))))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[3, 10, 20, 32, 50, 100],
                    help="torus sizes (none: only the per-epoch comparison)")
    ap.add_argument("--naive-max", type=int, default=32, help="largest size the naive way is run at")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_solvers.json")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (for a smoke run)")
    ap.add_argument("--memory", type=int, default=0, metavar="N",
                    help="also run N ngspice updates at the largest size and report resident-memory growth")
    ap.add_argument("--against", type=Path, metavar="DIR",
                    help="only the per-epoch comparison, this checkout against the checkout in DIR, side by side")
    ap.add_argument("--rounds", type=int, default=EPOCH_ROUNDS, help="alternating rounds of the per-epoch comparison")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--package-root", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "memory":
            result = memory_worker(int(rest[0]), int(rest[1]))
        else:
            result = epoch_worker(rest[0], rest[1], args.quick, int(rest[2]) if len(rest) > 2 else 1) \
                if kind == "epoch" else worker(kind, int(rest[0]), args.quick)
        print(json.dumps(result))
        return 0

    quick = ["--quick"] if args.quick else []
    if args.against:
        return against(args.against.resolve(), args.rounds, quick, args.out)
    rows = []
    print(f"{'size':>8} {'edges':>6} {'backend':>8} {'sample':>11} {'batched/sample':>15} {'update':>11} "
          f"{'peak MiB':>9}")
    for n in args.sizes:
        for backend in ("native", "ngspice", "naive"):
            if backend == "naive" and n > args.naive_max:
                continue
            r = _spawn([backend, str(n), *quick], timeout=1800)
            if r is None:
                continue
            rows.append(r)
            batched = r.get("batch1024_sample_s", r.get("batch64_sample_s"))
            print(f"{r['size']:>8} {r['n_edges']:>6} {backend:>8} {_fmt(r['sample_s']):>11} "
                  f"{_fmt(batched) if batched else '-':>15} {_fmt(r.get('update_s')):>11} {r['peak_rss_mib']:>9.0f}",
                  flush=True)
            if r.get("update_parts_s"):
                print(f"{'':>17} update parts: " + ", ".join(f"{k} {_fmt(v)}" for k, v in r["update_parts_s"].items()),
                      flush=True)
    memory = None
    if args.memory and args.sizes:
        memory = _spawn(["memory", str(max(args.sizes)), str(args.memory)], timeout=7200)
        if memory:
            print(f"\nngspice memory over {memory['updates']} updates at {memory['n_edges']} edges: resident "
                  f"{memory['rss_after_first_mib']:.0f} MiB after the first, "
                  f"{memory['rss_last_mib']:.0f} MiB after the last (growth {memory['rss_growth_mib']:+.1f} MiB, "
                  f"max {memory['rss_max_mib']:.0f}); "
                  f"{_fmt(memory['seconds_per_update'])} per update after the first", flush=True)
    # the machine's speed drifts between minutes: the backends take turns, EPOCH_ROUNDS times, best of each kept
    epochs = []
    for cfg in ("xor.yaml", "regression.yaml"):
        for _ in range(1 if args.quick else EPOCH_ROUNDS):
            epochs += [e for e in (_spawn(["epoch", b, cfg, *quick], timeout=1800)
                                   for b in ("native", "native-python", "ngspice")) if e]
    print(f"\nper training epoch (shipped configs, 4x4 torus, best of {1 if args.quick else EPOCH_ROUNDS} alternating "
          "rounds; native = compiled training loop, native-python = the Python step on the native solver):")
    for cfg in ("xor.yaml", "regression.yaml"):
        by: dict[str, list[float]] = {}
        for e in epochs:
            if e["config"] == cfg:
                by.setdefault(e["backend"], []).append(e["epoch_s"])
        if len(by) == 3:
            best = {b: min(t) for b, t in by.items()}
            spread = {b: max(t) / min(t) for b, t in by.items()}
            print(f"  {cfg:16s} native {_fmt(best['native'])}  native-python {_fmt(best['native-python'])}  ngspice "
                  f"{_fmt(best['ngspice'])}  ratio ngspice/native {best['ngspice'] / best['native']:.0f}x "
                  f"(ngspice/native-python {best['ngspice'] / best['native-python']:.0f}x); slowest/fastest round: "
                  + ", ".join(f"{b} {v:.2f}" for b, v in spread.items()))
    summary = _ratios(rows)
    for line in summary["lines"]:
        print(line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "epochs": epochs, "summary": summary["data"], "memory": memory},
                               indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


def against(other: Path, rounds: int, quick: list[str], out: Path) -> int:
    """Per-epoch time of the shipped configs, this checkout's package vs ``other``'s, in alternating rounds (the
    order within a round alternates too), each epoch worker a fresh process; prints medians, bests and ratios."""
    if not (other / "metamaterial" / "__init__.py").is_file():
        print(f"--against: {other} is not a checkout of this project (no metamaterial/__init__.py)", file=sys.stderr)
        return 2
    sides = {"this": ROOT, "other": other}
    times: dict[tuple[str, str, str], list[float]] = {}
    configs, backends = ("xor.yaml", "regression.yaml"), ("native", "native-python")
    repeats = {"native": 20, "native-python": 2}  # trainings per worker, the fastest kept: ~1-3 s of work each
    for r in range(rounds):
        for cfg in configs:
            for backend in backends:
                for side in (("this", "other") if r % 2 == 0 else ("other", "this")):
                    e = _spawn(["epoch", backend, cfg, str(repeats[backend]), *quick], timeout=1800,
                               root=sides[side])
                    if e:
                        times.setdefault((side, cfg, backend), []).append(e["epoch_s"])
        print(f"  round {r + 1}/{rounds} done", flush=True)
    print(f"\nper training epoch, this checkout ({ROOT.name}) vs {other}: median (best) of {rounds} alternating "
          "rounds, each the fastest of a worker's repeated trainings")
    rows, missing = [], 0
    for cfg in configs:
        for backend in backends:
            a, b = times.get(("this", cfg, backend)), times.get(("other", cfg, backend))
            if not a or not b:
                print(f"  {cfg:16s} {backend:14s} missing: this {len(a or [])} runs, other {len(b or [])} (each "
                      "failed run's last line is above)")
                missing += 1
                continue
            ratio_med, ratio_best = float(np.median(a) / np.median(b)), min(a) / min(b)
            pair = [x / y for x, y in zip(a, b)]
            print(f"  {cfg:16s} {backend:14s} this {_fmt(float(np.median(a)))} ({_fmt(min(a))})  other "
                  f"{_fmt(float(np.median(b)))} ({_fmt(min(b))})  this/other median {ratio_med:.3f}, best "
                  f"{ratio_best:.3f}, round by round {', '.join(f'{x:.2f}' for x in pair)}")
            rows.append({"config": cfg, "backend": backend, "this_s": a, "other_s": b, "ratio_median": ratio_med,
                         "ratio_best": ratio_best})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"this": str(ROOT), "other": str(other), "rows": rows}, indent=2) + "\n")
    print(f"\nwrote {out}")
    if missing:
        print(f"--against: {missing} of {len(configs) * len(backends)} comparisons have no time on one side (a "
              "worker that failed on that checkout: its last line is printed above)", file=sys.stderr)
        return 1
    return 0


def _ratios(rows: list[dict]) -> dict:
    lines, data = ["\nratios measured side by side in this run:"], {}
    by = {(r["backend"], r["n_edges"]): r for r in rows}
    for edges in sorted({r["n_edges"] for r in rows}):
        nat, ng, nv = by.get(("native", edges)), by.get(("ngspice", edges)), by.get(("naive", edges))
        parts = []
        if ng and nv:
            parts.append(f"ngspice vs naive per sample {nv['sample_s'] / ng['sample_s']:.0f}x")
        if nat and ng:
            parts.append(f"native vs ngspice per update {ng['update_s'] / nat['update_s']:.0f}x")
        peer = peer_update_s(edges)
        if ng:
            parts.append(f"ngspice vs peer trainer ({_fmt(peer)}/update) {peer / ng['update_s']:.1f}x")
        if nat:
            parts.append(f"native update {_fmt(nat['update_s'])}")
        lines.append(f"  {edges:>6} edges: " + "; ".join(parts))
        data[str(edges)] = {"peer_update_s": peer}
    for backend in ("native", "ngspice", "naive"):
        pts = sorted((r["n_edges"], r.get("update_s") or r["sample_s"]) for r in rows if r["backend"] == backend)
        if len(pts) >= 2:
            e, t = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
            big = [i for i, p in enumerate(pts) if p[0] >= 500] or list(range(len(pts)))
            slope = np.polyfit(e[big], t[big], 1)[0] if len(big) >= 2 else np.polyfit(e, t, 1)[0]
            lines.append(f"  growth of {backend} {'update' if backend != 'naive' else 'sample'} time: "
                         f"~ edges^{slope:.2f} (fit over >= 500 edges where available)")
            data[f"exponent_{backend}"] = float(slope)
            ends = dict(pts)
            if 800 in ends and 20000 in ends:
                two = float(np.log(ends[20000] / ends[800]) / np.log(20000 / 800))
                lines.append(f"  {backend} from 800 to 20,000 edges: ~ edges^{two:.2f}")
                data[f"exponent_800_20000_{backend}"] = two
    return {"lines": lines, "data": data}


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


if __name__ == "__main__":
    sys.exit(main())
