"""Compare the native solver with ngspice on many random circuits; time both on the paper's 4x4 torus.

    python scripts/compare_backends.py --circuits 1000 --seed 0
    python scripts/compare_backends.py --circuits 200 --temperature -40 --temperature 125 --no-timing

Each random circuit has 4..400 nodes (a random graph or a lattice), a random device (NMOS preset
'ald1106-fit' or 'ald1106-l1', resistor or potentiometer), random roles, controls, inputs and phase;
one NMOS circuit in MISMATCH_EVERY has twin mismatch (each phase solves its own twin's transistors), and one in
SERIES_EVERY random drain and source series resistances (log-uniform in SERIES_OHMS; 'ald1106-l1' otherwise has
the card's own). With ``--temperature C`` (repeatable) every transistor circuit is solved again at each of those
circuit temperatures (``simulator.temperature``; resistor and potentiometer circuits stay at 27 C, which is all they
have). Prints progress, the worst node-voltage difference and the circuit that produced it (also over the circuits
with series resistances), and the worst KCL residual of the native solution; exits 1 if the worst difference
exceeds --limit (default 1e-6 V).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace

import numpy as np

from metamaterial import circuit, devices, graph
from metamaterial.sim.native import NativeSolver
from metamaterial.sim.ngspice import NgspiceSolver
from metamaterial.temperature import NOMINAL_CELSIUS

MIN_NODES, MAX_NODES = 4, 400
MAX_BATCH = 3
V_MAX = 0.45  # V, top of the input and rail range
GATE_RANGE = (0.4, 8.0)  # V
MISMATCH_EVERY = 4  # one NMOS circuit in this many gets twin mismatch
VTO_SIGMA, K_SIGMA = 0.01, 0.005  # V, relative
SERIES_EVERY = 3  # one NMOS circuit in this many gets random series resistances
SERIES_OHMS = (1.0, 500.0)


@dataclass
class Case:
    description: str
    circuit: circuit.Circuit
    controls: np.ndarray
    inputs: np.ndarray
    clamps: np.ndarray | None


def random_case(rng: np.random.Generator) -> Case:
    """One random circuit with its controls and drive (see the module docstring)."""
    n = int(np.exp(rng.uniform(np.log(MIN_NODES), np.log(MAX_NODES + 1))))
    if rng.random() < 0.3:
        rows = int(rng.integers(3, max(4, int(np.sqrt(n)) + 1)))
        cols = max(3, n // rows)
        periodic = bool(rng.random() < 0.5)
        g = graph.lattice_network(rows, cols, periodic=periodic)
        shape = f"lattice {rows}x{cols}{' periodic' if periodic else ''}"
    else:
        max_edges = n * (n - 1) // 2
        n_edges = int(rng.integers(n - 1, min(max_edges, 3 * n) + 1))
        g = graph.random_network(n, n_edges, seed=int(rng.integers(2**31)))
        shape = f"random {n} nodes {n_edges} edges"
    nodes = rng.permutation(g.number_of_nodes())
    n_in, n_rail, n_out = int(rng.integers(1, 4)), int(rng.integers(0, 3)), int(rng.integers(1, 3))
    differential = [bool(rng.random() < 0.3) for _ in range(n_out)]
    while n_in + n_rail + n_out + sum(differential) > len(nodes) - 1:  # keep at least one node unknown
        n_in, n_rail, differential = max(1, n_in - 1), max(0, n_rail - 1), [False] * n_out
    pick = iter(int(x) for x in nodes)
    inputs = tuple(next(pick) for _ in range(n_in))
    rails = tuple((next(pick), float(rng.uniform(0, V_MAX))) for _ in range(n_rail))
    outputs = tuple((next(pick), next(pick) if diff else None) for diff in differential)
    g = graph.assign_roles(g, graph.Roles(inputs=inputs, rails=rails, outputs=outputs))
    kind = rng.choice(["ald1106-fit", "ald1106-l1", "resistor", "potentiometer"], p=[0.35, 0.35, 0.15, 0.15])
    if kind == "resistor":
        dev = devices.ResistorParams()
    elif kind == "potentiometer":
        dev = devices.PotentiometerParams()
    else:
        dev = devices.nmos_preset(str(kind))
        if rng.random() < 1 / SERIES_EVERY:
            rd, rs = np.exp(rng.uniform(*np.log(SERIES_OHMS), 2))
            dev = replace(dev, rd=float(rd), rs=float(rs))
            kind = f"{kind} rd={rd:.3g} rs={rs:.3g} ohm"
    c = circuit.compile_graph(g, dev)
    if isinstance(dev, devices.NmosParams) and rng.random() < 1 / MISMATCH_EVERY:
        c = replace(c, mismatch=devices.draw_mismatch(c.n_edges, VTO_SIGMA, K_SIGMA, rng))
        kind = f"{kind} with mismatch"
    if isinstance(dev, devices.NmosParams):
        controls = rng.uniform(*GATE_RANGE, c.n_edges)
    elif isinstance(dev, devices.ResistorParams):
        controls = np.exp(rng.uniform(np.log(dev.g_min), np.log(dev.g_max), c.n_edges))
    else:
        controls = rng.integers(0, dev.n_taps, c.n_edges).astype(float)
    batch = int(rng.integers(1, MAX_BATCH + 1))
    x = rng.uniform(0, V_MAX, (batch, c.n_inputs))
    clamped = bool(rng.random() < 0.5)
    clamps = rng.uniform(0, V_MAX, (batch, len(c.clamp_nodes))) if clamped else None
    desc = f"{shape}, {kind}, {n_in} in, {n_rail} rails, {n_out} out, batch {batch}, " \
           f"{'clamped' if clamped else 'free'}"
    return Case(desc, c, controls, x, clamps)


def at_temperatures(case: Case, temperatures: list[float]) -> list[Case]:
    """The case at 27 C and, for a transistor circuit, at each of ``temperatures`` (C)."""
    if not isinstance(case.circuit.device, devices.NmosParams):
        return [case]
    return [case] + [replace(case, description=f"{case.description}, {t:g} C",
                             circuit=replace(case.circuit, temperature=t)) for t in temperatures]


def compare(n_circuits: int, seed: int, limit: float, temperatures: list[float] = ()) -> float:
    rng = np.random.default_rng(seed)
    native, spice = NativeSolver(), NgspiceSolver()
    worst, worst_case, worst_kcl = 0.0, "no circuit", 0.0
    worst_mismatch, n_mismatch = 0.0, 0
    worst_hot, n_hot = 0.0, 0
    worst_series, n_series = 0.0, 0
    start = time.perf_counter()
    cases = (c for k in range(n_circuits) for c in at_temperatures(random_case(rng), temperatures))
    for k, case in enumerate(cases):
        ref = spice.solve(case.circuit, case.controls, case.inputs, case.clamps).voltages
        ours = native.solve(case.circuit, case.controls, case.inputs, case.clamps).voltages
        diff = float(np.abs(ref - ours).max())
        fixed = None if case.clamps is None else case.circuit.clamp_nodes
        twin = 0 if case.clamps is None else 1
        kcl = circuit.kcl_residuals(case.circuit, case.controls, ours, fixed=fixed, twin=twin)
        if case.circuit.mismatch is not None:
            worst_mismatch, n_mismatch = max(worst_mismatch, diff), n_mismatch + 1
        if case.circuit.temperature != NOMINAL_CELSIUS:
            worst_hot, n_hot = max(worst_hot, diff), n_hot + 1
        if getattr(case.circuit.device, "rd", 0.0) or getattr(case.circuit.device, "rs", 0.0):
            worst_series, n_series = max(worst_series, diff), n_series + 1
        worst_kcl = max(worst_kcl, float(np.nanmax(np.abs(kcl), initial=0.0)))
        if diff > worst or k == 0:
            worst, worst_case = diff, f"circuit {k}: {case.description}"
        if diff > limit:
            print(f"  circuit {k}: difference {diff:.3g} V > {limit:g} V ({case.description})", flush=True)
        if (k + 1) % max(1, n_circuits // 20) == 0:
            print(f"{k + 1} solves ({n_circuits} circuits in all), worst difference so far {worst:.3g} V "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"worst node-voltage difference native vs ngspice: {worst:.3g} V, at {worst_case}")
    print(f"worst difference over the {n_mismatch} circuits with twin mismatch: {worst_mismatch:.3g} V")
    if temperatures:
        print(f"worst difference over the {n_hot} transistor circuits at {', '.join(f'{t:g}' for t in temperatures)} "
              f"C: {worst_hot:.3g} V")
    print(f"worst difference over the {n_series} circuits with series resistances: {worst_series:.3g} V")
    print(f"worst KCL residual of the native solutions: {worst_kcl:.3g} A")
    spice.close()
    return worst


def torus_timing(seed: int) -> None:
    """Latency at batch 1 and amortized time per sample at batch 1024 on the 4x4 torus (XOR placement)."""
    g = graph.assign_roles(graph.lattice_network(4, 4), graph.Roles(
        inputs=(15, 13), rails=((5, 0.11), (7, 0.33)), outputs=((10, 0),)))
    c = circuit.compile_graph(g, devices.nmos_preset("ald1106-fit"))
    rng = np.random.default_rng(seed)
    gates = rng.uniform(0.5, 2.0, c.n_edges)
    print("timing on the 4x4 torus (16 nodes, 32 edges), one data point per solve:")
    for solver, reps, big in ((NativeSolver(), 2000, 1024), (NgspiceSolver(), 100, 1024)):
        x = rng.uniform(0, V_MAX, (reps, 2))
        solver.solve(c, gates, x[:1])  # load / compile
        t0 = time.perf_counter()
        for i in range(reps):  # new inputs each time, like presenting data points one at a time
            solver.solve(c, gates, x[i:i + 1])
        latency = (time.perf_counter() - t0) / reps
        xb = rng.uniform(0, V_MAX, (big, 2))
        solver.solve(c, gates, xb)
        gates_b = gates + rng.uniform(-0.01, 0.01, c.n_edges)  # a learning step: warm start, new gates
        t0 = time.perf_counter()
        solver.solve(c, gates_b, xb)
        per_sample = (time.perf_counter() - t0) / big
        xc = rng.uniform(0, V_MAX, (big, 2))  # fresh inputs (cold-ish start for the native solver)
        t0 = time.perf_counter()
        solver.solve(c, gates_b, xc)
        fresh = (time.perf_counter() - t0) / big
        print(f"  {solver.name:8s} batch 1: {latency * 1e6:9.1f} us per solve;  batch {big}: "
              f"{per_sample * 1e6:8.2f} us per sample after a gate update, {fresh * 1e6:8.2f} us with new inputs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--circuits", type=int, default=100, help="number of random circuits (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=float, default=1e-6, help="largest allowed difference in V (default 1e-6)")
    parser.add_argument("--no-timing", action="store_true", help="skip the 4x4 torus timing")
    parser.add_argument("--temperature", type=float, action="append", default=[], metavar="C",
                        help="also solve every transistor circuit at this circuit temperature (repeatable)")
    args = parser.parse_args(argv)
    worst = compare(args.circuits, args.seed, args.limit, args.temperature)
    if not args.no_timing:
        torus_timing(args.seed)
    if worst > args.limit:
        print(f"FAIL: worst difference {worst:.3g} V exceeds {args.limit:g} V", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
