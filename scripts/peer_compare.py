"""Side by side with the third-party trainer (github Ma-Lab-Cal/pyclln): time per training update on this machine.

Both sides train XOR on the same n x n torus (2 n^2 edges), each with its own definition of an update, each
in its own process, taking turns (ours, theirs, ours, ..., ours) so that a busy minute hits both:

* theirs: its own timing driver, the one behind its published scaling table (Supplementary Figure 1:
  ``timing_comparison/source_snapshot/xor_nxn/xor_nxn_alter_trainer_lvl1.py --side n --epochs E --seed 0
  --solver S``, run by ``--peer-python`` from its folder). An update is its epoch time / 4 (the four XOR
  points, each a free ``op``, a clamped ``op`` and every gate ``alter``ed), as its table defines it; its
  circuit load and its untimed evaluation before epoch 1 are not counted. Its own default is ``--solver klu``
  (its netlists then carry ``.options klu``); ``--peer-solvers klu sparse`` adds its Sparse setting.
* ours: ``Trainer.step`` of one XOR point on the ngspice backend (free solve, clamped solve, every gate
  written back), on ``bench_solvers.torus_circuit(n)``; the first update (which loads the circuit) is not
  counted.

Prints per-update median and min of both, their ratio, which ngspice and linear solver each side ran (each as
ngspice itself reports it), where the third party's update time goes, and its published table at the same
sizes (measured on another machine). The third party's code is only run from the given folder.

    python scripts/peer_compare.py --peer DIR --peer-python PY [--sizes 50 100] [--rounds 2]
        [--peer-epochs E] [--updates 5] [--peer-solvers klu] [--out runs/peer_compare.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from child_usage import cpu_seconds  # noqa: E402

PEER_REPO = "Ma-Lab-Cal/pyclln"
PEER_DRIVER_DIR = Path("timing_comparison/source_snapshot/xor_nxn")
PEER_DRIVER = PEER_DRIVER_DIR / "xor_nxn_alter_trainer_lvl1.py"
PEER_TABLE = Path("final_figures/suppl_figures/suppl1/data/suppl1_xor_timing_summary.csv")
PEER_SAMPLES_PER_EPOCH = 4  # its XOR epoch: four points, one update each
#: the third party's per-epoch timing arrays (its names) and the part of an update each belongs to
PEER_PARTS = {"run_free": "op", "run_clamped": "op", "read_free": "read", "read_clamped": "read",
              "mk_free": "alter", "alter_inputs": "alter", "alter_outputs": "alter", "weight_updates": "alter",
              "destroy_free": "destroy", "destroy_clamped": "destroy"}
#: how many times faster than the third party, side by side, issue 9 asks for, by number of edges
TARGET_RATIO = {5000: 10.0, 20000: 30.0}
_EPOCH_LINE = re.compile(r"Epoch\s+(\d+):")  # its progress line, printed after its evaluation and each epoch
FETCH = (f"peer_compare: needs --peer DIR, a local copy of github.com/{PEER_REPO} (at least {PEER_DRIVER_DIR}/ "
         f"and {PEER_TABLE}; e.g. git clone https://github.com/{PEER_REPO} DIR, outside this repository), and "
         "--peer-python PY, a Python with its numpy, networkx and PySpice 1.5 (e.g. python3 -m venv V && V/bin/pip "
         "install numpy networkx PySpice==1.5)")

#: run by --peer-python: which ngspice and linear solver the third party's own netlist gets (3x3 torus, one op)
PEER_PROBE = """
import json, re, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import xor_nxn_alter_trainer as base, xor_nxn_alter_trainer_lvl1 as lvl1
from PySpice.Spice.NgSpice.Shared import NgSpiceShared
G, i_idxs, o_idxs, negref, posref = base._build_training_graph(3)
edges = list(G.edges())
ng = NgSpiceShared.new_instance(send_data=False)
out = {}
for solver in sys.argv[2:]:
    ng.load_circuit(lvl1.mk_switch_netlist(edges, np.ones(len(edges)), max(G.nodes()), 0.45, 0.0, i_idxs, o_idxs,
                                           negref, posref, solver=solver))
    text = ng.exec_command("op")
    m = re.search(r"using (\\S+(?: [0-9.]+)?) as direct linear solver", text, re.IGNORECASE)
    out[solver] = m.group(1) if m else "unknown"
    ng.exec_command("destroy all")
    ng.exec_command("remcirc")
v = re.search(r"ngspice-(\\S+)", ng.exec_command("version"))
print(json.dumps({"ngspice_version": v.group(1) if v else "unknown", "linear_solver": out}))
"""


# -- our side ------------------------------------------------------------------------------------------------
def ours_worker(n: int, updates: int, seed: int) -> dict:
    """``updates`` training updates of XOR on the n x n torus through our ngspice backend, each timed."""
    import logging
    logging.getLogger("PySpice").setLevel(logging.CRITICAL)
    from bench_solvers import torus_circuit

    from metamaterial.learning.gates import EdgeDynamics
    from metamaterial.learning.rules import CoupledLearning
    from metamaterial.learning.trainer import Trainer, TrainParams
    from metamaterial.sim.ngspice import NgspiceSolver
    from metamaterial.tasks import xor_task

    c = torus_circuit(n)
    solver = NgspiceSolver()
    # mse: every point has a clamped phase, as in the third party's loop; rate as configs/xor.yaml
    trainer = Trainer(c, xor_task(), CoupledLearning(nudge=0.5, rate=30.0, loss="mse"), EdgeDynamics(low=0.4, high=8.0),
                      TrainParams(), solver)
    rng = np.random.default_rng(seed)
    controls = rng.uniform(0.5, 3.0, c.n_edges)
    order = np.concatenate([rng.permutation(4) for _ in range(updates // 4 + 2)])  # shuffled epochs of 4 points
    t0 = time.perf_counter()
    controls, _, _ = trainer.step(controls, order[:1], rng)  # loads the circuit: not counted
    first = time.perf_counter() - t0
    solver.timings = dict.fromkeys(solver.timings, 0.0)
    seconds, cpu, changed = [], [], []
    for k in range(1, updates + 1):
        before = controls
        t0, c0 = time.perf_counter(), time.process_time()
        controls, solves, _ = trainer.step(controls, order[k:k + 1], rng)
        seconds.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        changed.append(int(np.count_nonzero(controls != before)))
        assert solves == 2
    return {"edges": int(c.n_edges), "seconds": seconds, "cpu_seconds": cpu, "first_s": first,
            "gates_changed_min": min(changed), "parts_s": {k: v / updates for k, v in solver.timings.items()},
            **solver.info()}


def run_ours(n: int, updates: int, seed: int, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", str(n), str(updates), str(seed)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"our worker failed (n={n}): {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- their side ----------------------------------------------------------------------------------------------
def run_peer(peer: Path, python: str, n: int, epochs: int, solver: str, timeout: float) -> dict:
    """The third party's own timing driver, in its environment: its per-epoch wall times (its arrays) per update,
    and the CPU time its process spent in each epoch (``/proc``, read at each "Epoch k:" line it prints)."""
    with tempfile.TemporaryDirectory(prefix="peer_compare_") as tmp:
        env = dict(os.environ, RUN_DIR=tmp, MPLCONFIGDIR=tmp, PYTHONUNBUFFERED="1")
        cmd = [python, str(peer / PEER_DRIVER), "--side", str(n), "--epochs", str(epochs), "--seed", "0",
               "--solver", solver]
        cpu_at: dict[int, float] = {}
        t0 = time.perf_counter()
        with open(Path(tmp) / "stderr.txt", "w+") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, cwd=peer, env=env)
            timer = threading.Timer(timeout, proc.kill)
            timer.start()
            try:
                for line in proc.stdout:
                    m = _EPOCH_LINE.search(line)
                    if m and int(m.group(1)) not in cpu_at:
                        cpu_at[int(m.group(1))] = cpu_seconds(proc.pid)
                proc.wait()
            finally:
                timer.cancel()
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                err.seek(0)
                raise RuntimeError(f"third-party driver failed (n={n}, {solver}, rc {proc.returncode}): "
                                   f"{err.read().strip()[-2000:]}")
        epoch_s = np.load(Path(tmp) / "0_epoch_times.npy")
        parts = {}
        for name, part in PEER_PARTS.items():
            parts[part] = parts.get(part, 0.0) + float(np.load(Path(tmp) / f"0_epoch_t_{name}.npy").sum())
    cpu = [(cpu_at[k] - cpu_at[k - 1]) / PEER_SAMPLES_PER_EPOCH for k in range(1, len(epoch_s) + 1)
           if k in cpu_at and k - 1 in cpu_at]
    total = PEER_SAMPLES_PER_EPOCH * len(epoch_s)
    return {"seconds": [float(s) for s in epoch_s / PEER_SAMPLES_PER_EPOCH], "cpu_seconds": cpu,
            "epochs": int(len(epoch_s)), "process_wall_s": wall, "parts_s": {k: v / total for k, v in parts.items()}}


def probe_peer(peer: Path, python: str, solvers: list[str]) -> dict:
    proc = subprocess.run([python, "-c", PEER_PROBE, str(peer / PEER_DRIVER_DIR), *solvers], capture_output=True,
                          text=True, timeout=300, cwd=peer)
    if proc.returncode != 0:
        raise RuntimeError(f"probe of the third party's ngspice failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def published(peer: Path) -> dict[tuple[int, str], float]:
    """Its published per-update times: {(edges, solver): seconds} of its shared-instance ("PyCLLN") rows."""
    rows = {}
    with open(peer / PEER_TABLE, newline="") as f:
        for r in csv.DictReader(f):
            if r["backend"] == "shared":
                rows[(int(r["edge_count"]), r["solver"])] = float(r["per_sample_wall_mean_s"])
    return rows


def pinned_ngspice(peer: Path) -> str | None:
    """The ngspice its published environment pins (environment.yml), if the copy has that file."""
    f = peer / "environment.yml"
    m = re.search(r"ngspice\s*=\s*(\S+)", f.read_text()) if f.exists() else None
    return m.group(1) if m else None


# -- report --------------------------------------------------------------------------------------------------
def _s(seconds: float) -> str:
    if seconds < 0.1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e3:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _faster(ratio: float) -> str:
    return f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"


def _stats(runs: list[dict], key: str) -> tuple[float, float, int]:
    v = np.concatenate([r[key] for r in runs]) if runs else np.zeros(0)
    return (float(np.median(v)), float(v.min()), int(v.size)) if v.size else (float("nan"), float("nan"), 0)


def summarize(n: int, ours: list[dict], peers: dict[str, list[dict]], table: dict, targets: dict) -> dict:
    edges = ours[0]["edges"]
    o_wall, o_cpu = _stats(ours, "seconds"), _stats(ours, "cpu_seconds")
    row = {"size": f"{n}x{n}", "edges": edges, "peer": {},
           "ours": {"wall_median_s": o_wall[0], "wall_min_s": o_wall[1], "cpu_median_s": o_cpu[0],
                    "cpu_min_s": o_cpu[1], "updates": o_wall[2], "runs": ours}}
    print(f"\n{n}x{n} torus, {edges} edges. Per update: wall median (min) | CPU median (min):")
    print(f"  ours, ngspice backend:           {_s(o_wall[0]):>9} ({_s(o_wall[1])}) | {_s(o_cpu[0]):>9} "
          f"({_s(o_cpu[1])}); {o_wall[2]} updates in {len(ours)} runs")
    parts = {k: np.mean([r["parts_s"][k] for r in ours]) for k in ours[0]["parts_s"]}
    print("      our update (wall): " + ", ".join(f"{k} {_s(v)}" for k, v in parts.items()))
    for solver, runs in peers.items():
        p_wall, p_cpu = _stats(runs, "seconds"), _stats(runs, "cpu_seconds")
        ratio = {"wall_median": p_wall[0] / o_wall[0], "wall_min": p_wall[1] / o_wall[1],
                 "cpu_median": p_cpu[0] / o_cpu[0], "cpu_min": p_cpu[1] / o_cpu[1]}
        row["peer"][solver] = {"wall_median_s": p_wall[0], "wall_min_s": p_wall[1], "cpu_median_s": p_cpu[0],
                               "cpu_min_s": p_cpu[1], "epochs": p_wall[2], "ratio": ratio, "runs": runs}
        print(f"  {PEER_REPO} --solver {solver:<6}: {_s(p_wall[0]):>9} ({_s(p_wall[1])}) | {_s(p_cpu[0]):>9} "
              f"({_s(p_cpu[1])}); {p_wall[2]} epochs of {PEER_SAMPLES_PER_EPOCH} updates in {len(runs)} runs")
        print(f"      -> ours is {_faster(ratio['wall_median'])} by wall median (min/min {ratio['wall_min']:.1f}x), "
              f"{ratio['cpu_median']:.1f}x by CPU median (min/min {ratio['cpu_min']:.1f}x)")
        parts = {k: np.mean([r["parts_s"][k] for r in runs]) for k in runs[0]["parts_s"]}
        print("      its update (wall): " + ", ".join(f"{k} {_s(v)}" for k, v in parts.items())
              + " (op = its two ng.run(), read = four 'print allv', alter = clamp, inputs and every gate)")
        pub = table.get((edges, solver))
        if pub is not None:
            print(f"      its published {solver} figure (another machine): {_s(pub)}; ours (wall median) is "
                  f"{_faster(pub / o_wall[0])} than that")
    target = targets.get(edges)
    if target is not None and "klu" in row["peer"]:
        got = row["peer"]["klu"]["ratio"]
        met = got["wall_median"] >= target
        print(f"  target {target:.0f}x at {edges} edges (against its default --solver klu, wall median): "
              f"{'met' if met else 'NOT met'} ({got['wall_median']:.1f}x; CPU median {got['cpu_median']:.1f}x)")
        row["target"] = {"ratio": target, "met": met}
    return row


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        n, updates, seed = (int(a) for a in sys.argv[2:5])
        print(json.dumps(ours_worker(n, updates, seed)))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer", type=Path, help=f"local copy of github.com/{PEER_REPO} (outside this repository)")
    ap.add_argument("--peer-python", help="Python interpreter with the third party's dependencies")
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 100], help="torus sides (edges = 2 n^2)")
    ap.add_argument("--rounds", type=int, default=2, help="third-party runs per size and solver, between ours")
    ap.add_argument("--peer-epochs", type=int, default=None,
                    help="epochs (4 updates each) per third-party run; default 2 up to 5,000 edges, else 1")
    ap.add_argument("--updates", type=int, default=5, help="our updates per run (after the loading one)")
    ap.add_argument("--peer-solvers", nargs="+", choices=("klu", "sparse"), default=["klu"],
                    help="the third party's --solver values to time (its default: klu)")
    ap.add_argument("--timeout", type=float, default=4 * 3600, help="seconds allowed per process")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "peer_compare.json")
    args = ap.parse_args()
    if args.peer is None or args.peer_python is None or not (args.peer / PEER_DRIVER).exists():
        print(FETCH if args.peer is None or args.peer_python is None
              else f"peer_compare: {args.peer / PEER_DRIVER} not found; {FETCH}", file=sys.stderr)
        return 2
    peer = args.peer.resolve()
    table = published(peer) if (peer / PEER_TABLE).exists() else {}
    probe = probe_peer(peer, args.peer_python, args.peer_solvers)
    print(f"{PEER_REPO}: ngspice {probe['ngspice_version']} (its own library through PySpice), linear solver by its "
          "--solver: " + ", ".join(f"{k} -> {v}" for k, v in probe["linear_solver"].items()))
    rows = []
    for n in args.sizes:
        edges = 2 * n * n
        epochs = args.peer_epochs or (2 if edges <= 5000 else 1)
        ours, peers = [], {s: [] for s in args.peer_solvers}
        print(f"\n{n}x{n} ({edges} edges): {args.rounds} round(s) of {PEER_REPO} ({epochs} epoch(s) = "
              f"{epochs * PEER_SAMPLES_PER_EPOCH} updates per run, per solver) between {args.rounds + 1} runs of "
              f"ours ({args.updates} updates each)", flush=True)
        for r in range(args.rounds + 1):
            ours.append(run_ours(n, args.updates, r, args.timeout))
            print("  ours   : " + " ".join(_s(s) for s in ours[-1]["seconds"]) + " per update (CPU "
                  + " ".join(_s(s) for s in ours[-1]["cpu_seconds"]) + ")", flush=True)
            if r == args.rounds:
                break
            for solver in args.peer_solvers:
                peers[solver].append(run_peer(peer, args.peer_python, n, epochs, solver, args.timeout))
                got = peers[solver][-1]
                print(f"  theirs ({solver}): " + " ".join(_s(s) for s in got["seconds"]) + " per update by epoch (CPU "
                      + " ".join(_s(s) for s in got["cpu_seconds"]) + f"; process {got['process_wall_s']:.0f} s)",
                      flush=True)
        rows.append(summarize(n, ours, peers, table, TARGET_RATIO))
    info = {k: ours[0][k] for k in ("ngspice_version", "linear_solver")}
    pin = pinned_ngspice(peer)
    print(f"\nours: ngspice {info['ngspice_version']}, linear solver {info['linear_solver']} (paused dc sweep, "
          f"external sources). {PEER_REPO}: ngspice {probe['ngspice_version']}, "
          + ", ".join(f"--solver {k} -> {v}" for k, v in probe["linear_solver"].items())
          + (f"; its published table pins ngspice {pin}" if pin else ""))
    if table:
        print(f"its published table ({PEER_TABLE}, shared-instance rows, another machine), per update: "
              + "; ".join(f"{e} edges {s} {_s(v)}" for (e, s), v in sorted(table.items())
                          if e in {2 * n * n for n in args.sizes}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"peer": {"repo": PEER_REPO, **probe, "published_pin": pin}, "ours": info,
                                    "sizes": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
