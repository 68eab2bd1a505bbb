"""The ``energy`` and ``transient`` commands end to end (child processes, real ngspice): what they write agrees
with itself and with physics (power sums, backends, the transient's end state against DC, the energy against
the integral of the waveform it writes, more capacitance settling slower), trained gates come from the run
directory, and bad input exits 2 with one line naming the key."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, cli
from metamaterial.configfile import load_config
from metamaterial.energy import transistor_power
from metamaterial.experiment import build
from metamaterial.sim.native import NativeSolver
from metamaterial.units import si

XOR = str(ROOT / "configs" / "xor.yaml")
REGRESSION = str(ROOT / "configs" / "regression.yaml")
ALLOSTERY = str(ROOT / "configs" / "allostery.yaml")
TRAIN_EPOCHS = 30          # a short native training: the gates only need to differ from the initial ones
STEPS = 2                  # input steps per transient command
BACKEND_REL = 1e-9         # native vs ngspice power
DC_ATOL = 1e-6             # V: transient end state vs the DC operating point
ENERGY_REL = 0.01          # the reported energy vs the trapezoid integral of the written waveform


#: what every command of these tests is given (each draws a progress bar otherwise)
QUIET = "--no-progress"


def _power_rows(path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_energy_command_agrees_across_backends_and_with_its_csv(tmp_path):
    results = {}
    for backend in ("native", "ngspice"):
        out = tmp_path / backend
        proc = cli("energy", XOR, "--backend", backend, "--out", str(out), QUIET)
        assert proc.returncode == 0, proc.stderr
        assert "power per transistor, free twin: median" in proc.stdout and f"on {backend}" in proc.stdout
        results[backend] = json.loads((out / "energy.json").read_text())
        assert (out / "power_map.png").stat().st_size > 0
        s = results[backend]["summary"]  # printed with the SI prefix that fits (717 nW, not 0.717 uW)
        assert (f"free twin: median {si(s['free_median_w'], 'W')}, max {si(s['free_max_w'], 'W')}; clamped twin: "
                f"median {si(s['clamped_median_w'], 'W')}, max {si(s['clamped_max_w'], 'W')}\nnetwork power (free, "
                f"median over points) {si(s['free_total_median_w'], 'W')}\n") in proc.stdout
    nat, ng = results["native"], results["ngspice"]
    for key, value in ng["summary"].items():
        assert nat["summary"][key] == pytest.approx(value, rel=BACKEND_REL), key
    rows = _power_rows(tmp_path / "ngspice" / "power.csv")
    assert len(rows) == 2 * ng["n_points"] * ng["n_edges"]
    power = np.array([float(r["power_w"]) for r in rows])
    assert (power >= 0).all()  # every transistor dissipates
    for d, point in enumerate(ng["points"]):
        for twin in ("free", "clamped"):
            total = sum(float(r["power_w"]) for r in rows if r["point"] == str(d) and r["twin"] == twin)
            assert total == pytest.approx(point[f"{twin}_total_w"], rel=1e-12)
    assert ng["summary"]["free_max_w"] == pytest.approx(
        max(float(r["power_w"]) for r in rows if r["twin"] == "free"), rel=1e-12)
    with np.load(tmp_path / "ngspice" / "power.npz") as z:  # the same table as arrays [point, edge]
        for twin in ("free", "clamped"):
            mine = [r for r in rows if r["twin"] == twin]
            for key, column in (("w", "power_w"), ("drop_v", "drop_v")):
                assert z[f"{twin}_{key}"].ravel().tolist() == [float(r[column]) for r in mine]  # repr round-trips
        assert z["edges"].tolist() == [[int(r["node_a"]), int(r["node_b"])] for r in rows[:ng["n_edges"]]]


def test_a_large_power_table_is_left_to_the_npz_unless_asked_for(tmp_path, monkeypatch):
    """Past CSV_MAX_ROWS rows (digits: 3.6 million, 230 MB) power.csv is not written, and a stale one from an
    earlier evaluation is removed; ``csv_table`` (``--csv``) writes it anyway."""
    from metamaterial import costs  # noqa: PLC0415

    proc = cli("energy", "--help")
    assert f"{costs.CSV_MAX_ROWS:,} rows" in " ".join(proc.stdout.split())  # the help states today's limit
    src = costs.load_source(load_config(XOR, ["simulator.backend=native"]), None)
    out = tmp_path / "energy"
    full = costs.energy_run(src, out, plots=False, progress=False)
    rows = 2 * full["n_points"] * full["n_edges"]
    assert full["csv_rows"] == rows and "power.csv" in full["files"] and (out / "power.csv").exists()
    monkeypatch.setattr(costs, "CSV_MAX_ROWS", rows - 1)
    left = costs.energy_run(src, out, plots=False, progress=False)
    assert left["files"] == ["energy.json", "power.npz"] and not (out / "power.csv").exists()
    assert left["summary"] == full["summary"]
    asked = costs.energy_run(src, out, plots=False, progress=False, csv_table=True)
    assert "power.csv" in asked["files"] and len(_power_rows(out / "power.csv")) == rows


def test_energy_and_transient_of_a_trained_run_directory(tmp_path):
    run = tmp_path / "run"
    proc = cli("train", REGRESSION, "--out", str(run), "--backend", "native", "--set",
               f"learning.epochs={TRAIN_EPOCHS}", "--no-progress", "--no-plots")
    assert proc.returncode == 0, proc.stderr
    energy = cli("energy", str(run), QUIET)
    assert energy.returncode == 0, energy.stderr
    assert f"epoch {TRAIN_EPOCHS}" in energy.stdout and (run / "energy" / "energy.json").exists()

    proc = cli("transient", str(run), "--steps", str(STEPS), QUIET)
    assert proc.returncode == 0, proc.stderr
    out = run / "transient"
    result = json.loads((out / "transient.json").read_text())
    assert result["summary"]["steps"] == STEPS and result["source"] == f"{run} (seed 0, epoch {TRAIN_EPOCHS})"
    assert result["summary"]["max_final_vs_dc_v"] < DC_ATOL
    with open(out / "waves.csv") as f:
        waves = np.array([[float(x) for x in row] for row in list(csv.reader(f))[1:]])
    with np.load(out / "waves.npz") as z:
        assert z["step0_voltages"].shape[1] == result["n_edges"] // 2  # a 4x4 torus: 16 nodes, 32 edges
    for row in result["steps"]:
        assert row["settled"] and row["settling_time_s"] > 0
        w = waves[waves[:, 0] == row["step"]]
        t, p = w[:, 1], w[:, -1]
        inside = (t > 0) & (t < row["settling_time_s"])
        tt = np.concatenate([[0.0], t[inside], [row["settling_time_s"]]])
        pp = np.concatenate([[np.interp(0.0, t, p)], p[inside], [np.interp(row["settling_time_s"], t, p)]])
        assert row["energy_j"] == pytest.approx(np.sum(0.5 * (pp[1:] + pp[:-1]) * np.diff(tt)), rel=ENERGY_REL)
        assert row["energy_per_transistor_j"] == pytest.approx(row["energy_j"] / result["n_edges"], rel=1e-12)
    for name in ("transient.csv", "waveforms.png", "settling.png"):
        assert (out / name).stat().st_size > 0, name
    # the netlist kept is the one ngspice ran: run as it is, it gives step 0's waveforms
    alone = subprocess.run(["ngspice", "-b", str(out / "transient_step0.cir")], cwd=tmp_path, capture_output=True,
                           text=True, timeout=300)
    assert alone.returncode == 0, alone.stderr
    table = np.loadtxt(tmp_path / "waves.txt", skiprows=1)
    with np.load(out / "waves.npz") as z:
        # the same time points; waves.npz counts time from the input step, the netlist from its start before it
        np.testing.assert_allclose(table[:, 0] - table[0, 0] + z["step0_time"][0], z["step0_time"], rtol=0,
                                   atol=1e-18)
        nodes = z["step0_voltages"]
        np.testing.assert_allclose(table[:, 1:1 + nodes.shape[1]], nodes, rtol=0, atol=1e-12)

    # ten times the wiring capacitance on every node: each step settles later and costs more
    slow = cli("transient", str(run), "--steps", str(STEPS), "--out", str(tmp_path / "slow"), "--no-plots",
               "--set", "timing.periphery.wiring_capacitance=50e-12", QUIET)
    assert slow.returncode == 0, slow.stderr
    slower = json.loads((tmp_path / "slow" / "transient.json").read_text())
    assert slower["timing"]["periphery"]["wiring_capacitance"] == 50e-12
    for fast_row, slow_row in zip(result["steps"], slower["steps"]):
        assert slow_row["settling_time_s"] > 1.5 * fast_row["settling_time_s"]


@pytest.mark.parametrize("args, message", [
    (["transient", XOR, "--set", "timing.periphery.driver_resistance=-1"],
     f"metamaterial: {XOR}: --set timing.periphery.driver_resistance=-1: timing.periphery.driver_resistance: Input "
     "should be greater than or equal to 0 (got -1); give a value in range"),
    (["energy", XOR, "--set", "timing.periphery.wiring=1e-12"],
     f"metamaterial: {XOR}: --set timing.periphery.wiring=1e-12: timing.periphery.wiring: unknown key; remove it or "
     "check its spelling (see README, config reference)"),
    # energy's DC solvers drive the nodes directly: a driver resistance would move its answer (XOR's power by 5-14 %
    # at 100 ohm, as the transient's dc_power_after_w shows), so it is refused rather than ignored
    (["energy", XOR, "--backend", "native", "--set", "timing.periphery.driver_resistance=100"],
     f"metamaterial: {XOR}: --set timing.periphery.driver_resistance=100: timing.periphery.driver_resistance: "
     "`energy` solves the network driven directly, without driver resistances (got 100 ohm), so its power would not "
     "be this circuit's; set it to 0 for `energy`, or use `metamaterial transient`, whose dc_power_after_w is what "
     "the drivers deliver through them"),
    (["transient", XOR, "--set", "timing.capacitances.cgs=2e-6"],
     f"metamaterial: {XOR}: --set timing.capacitances.cgs=2e-6: timing.capacitances.cgs: Input should be less than "
     "1e-06 (got 2e-06); give a value in range"),  # pydantic wrote the bound as 0.000001
    (["transient", XOR, "--set", "timing.settle.t_stop=2e-11"],  # ngspice stopped at its first steps, exit 1
     f"metamaterial: {XOR}: --set timing.settle.t_stop=2e-11: timing.settle.t_stop, timing.settle.points: a window "
     "of 2e-11 s in 4000 samples steps 5e-15 s, under the 1e-14 s ngspice can step ('Timestep too small'); give a "
     "window of at least 4e-11 s, or fewer points"),
    (["transient", XOR, "--set", "timing.settle.rel_tol=0"],
     f"metamaterial: {XOR}: --set timing.settle.rel_tol=0: timing.settle.rel_tol: Input should be greater than 0 "
     "(got 0); give a value in range"),
    (["transient", XOR, "--steps", "0"], f"metamaterial: {XOR}: --steps: must be >= 1 (got 0); give 1 or more, or "
     "leave --steps out (each data point once)"),
    (["transient", XOR, "--learning", "--steps", "0"], f"metamaterial: {XOR}: --steps: must be >= 1 (got 0); give 1 or "
     "more, or leave --steps out (100 training steps)"),
    (["transient", XOR, "--steps", "2000000"],
     f"metamaterial: {XOR}: --steps: at most 1,644 input steps fit in the 2 GB of waveforms a transient may keep in "
     "memory (1.22 MB a step: 4,000 samples of 16 nodes and 1 output) (got 2000000, which would need 2.43 TB); "
     "give --steps 1644 or fewer"),
    (["transient", ALLOSTERY], f"metamaterial: {ALLOSTERY}: task: allostery has one data point, so there is no "
                               "input step to time (got 1 point); give a task of two or more points, or use "
                               "`metamaterial energy` for its power"),
])
def test_bad_timing_values_exit_2_naming_the_key(args, message):
    proc = cli(*args, QUIET)
    assert proc.returncode == 2
    assert proc.stderr == message + "\n"


def test_bad_sources_exit_2_with_one_line(tmp_path):
    proc = cli("energy", str(tmp_path), QUIET)
    assert proc.returncode == 2
    assert proc.stderr == (f"metamaterial: {tmp_path}: not a run directory (no config.yaml); give a CONFIG file or a "
                           "directory that `metamaterial train` wrote\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(XOR).read_text() + "timing:\n  settle:\n    points: 10\n")
    proc = cli("transient", str(bad), QUIET)
    assert proc.returncode == 2
    assert proc.stderr == (f"metamaterial: {bad}: timing.settle.points: Input should be greater than or equal to 100 "
                           "(got 10); give a value in range\n")


def test_an_ensemble_run_directory_needs_the_replica_by_its_seed(tmp_path):
    run = tmp_path / "ensemble"
    proc = cli("train", XOR, "--out", str(run), "--backend", "native", "--seeds", "2", "--set",
               f"learning.epochs={TRAIN_EPOCHS}", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    proc = cli("energy", str(run), QUIET)
    assert proc.returncode == 2
    assert proc.stderr == (f"metamaterial: {run}: --replica: the run holds 2 replicas (seeds 0..1); choose one with "
                           "--replica SEED\n")
    proc = cli("energy", str(run), "--replica", "7", QUIET)
    assert proc.returncode == 2 and "holds the replicas of seeds 0..1 (got 7); give one of those seeds" in proc.stderr
    for seed in (1, 0):  # each replica writes into a folder of its own, and one does not replace the other's
        one = cli("energy", str(run), "--replica", str(seed), "--backend", "native", "--no-plots", QUIET)
        assert one.returncode == 0, one.stderr
    with np.load(run / "checkpoint.npz") as z:
        controls = z["controls"]
    setup = build(load_config(run / "config.yaml", ["simulator.backend=native"]))
    for seed in (0, 1):
        result = json.loads((run / "energy" / f"seed_{seed}" / "energy.json").read_text())
        assert result["source"] == f"{run} (seed {seed}, epoch {TRAIN_EPOCHS})"
        free = NativeSolver().solve(setup.circuit, controls[seed], setup.task.inputs).voltages
        power = transistor_power(setup.circuit, controls[seed], free)
        assert result["summary"]["free_max_w"] == pytest.approx(power.max(), rel=1e-12)
    # a --set on a run directory is named wherever the figures go; one that changes the network is refused as such
    hot = cli("energy", str(run), "--replica", "1", "--backend", "native", "--no-plots", "--out",
              str(tmp_path / "hot"), "--set", "simulator.temperature=100", QUIET)
    assert hot.returncode == 0, hot.stderr
    assert json.loads((tmp_path / "hot" / "energy.json").read_text())["source"] == \
        f"{run} (seed 1, epoch {TRAIN_EPOCHS}, --set simulator.temperature=100)"
    other = cli("energy", str(run), "--replica", "1", "--set", "network.rows=5", "--out", str(tmp_path / "other"),
                QUIET)
    assert other.returncode == 2 and not (tmp_path / "other").exists()
    assert other.stderr == (f"metamaterial: {run}: --set network.rows=5: changes the network trained in {run} (32 "
                            "edges to 40); a run's gates fit only its own network: leave network and roles keys out "
                            "of --set on a run directory\n")
    # as many edges, other nodes: refused too, naming the keys that differ
    moved = cli("energy", str(run), "--replica", "1", "--set", "roles.inputs[0]=[0, 1]", "--out",
                str(tmp_path / "moved"), QUIET)
    assert moved.returncode == 2 and not (tmp_path / "moved").exists()
    assert "changes the network trained in" in moved.stderr and "(roles.inputs[0]" in moved.stderr, moved.stderr


def test_a_layered_networks_power_map_is_a_matrix_per_pair_of_connected_layers(tmp_path, monkeypatch):
    """A layered network's power map (energy's power_map.png) holds, for each pair of connected layers and each
    twin, a matrix whose cell (i, j) is the median power of the edge from node i of the first layer to node j of
    the second (blank where there is no edge)."""
    from metamaterial import costs  # noqa: PLC0415

    cfg = load_config(ROOT / "configs" / "iris.yaml", [
        "simulator.backend=native", "roles=null",
        "network={kind: layered, n_inputs: 4, n_hidden: 3, n_outputs: 3, direct: true, n_edges: 30, seed: 2}"])
    drawn = {}
    monkeypatch.setattr(costs, "_save", lambda fig, path, plt: drawn.setdefault("fig", fig) and path)
    r = costs.energy_run(costs.load_source(cfg, None), tmp_path, progress=False)
    setup = build(cfg)
    with np.load(tmp_path / "power.npz") as z:
        med = [np.median(z["free_w"], axis=0), np.median(z["clamped_w"], axis=0)]
    images = [ax.get_images()[0].get_array() for ax in drawn["fig"].axes if ax.get_images()]
    pairs = [(0, 2), (0, 1), (1, 2)]  # the panels' order: sorted layer pairs
    assert len(images) == 2 * 3 and r["n_edges"] == 30
    layers = [list(range(4)), list(range(4, 7)), list(range(7, 10))]
    layer_of = {n: k for k, nodes in enumerate(layers) for n in nodes}
    floor = drawn["fig"].axes[0].get_images()[0].norm.vmin
    filled = 0
    for row, m in enumerate(med):
        for col, (lp, lq) in enumerate(sorted(pairs)):
            grid = np.ma.filled(images[row * 3 + col].astype(float), np.nan)
            for e, (a, b) in enumerate(setup.circuit.edges):
                a, b = sorted((int(a), int(b)), key=layer_of.get)
                if (layer_of[a], layer_of[b]) == (lp, lq):
                    assert grid[layers[lp].index(a), layers[lq].index(b)] == max(m[e], floor)
                    filled += 1
            assert np.isnan(grid).sum() == grid.size - sum(
                1 for a, b in setup.circuit.edges if {layer_of[int(a)], layer_of[int(b)]} == {lp, lq})
    assert filled == 2 * 30


def test_the_waveform_figure_shows_the_response_and_the_distribution_of_many_gates(tmp_path, monkeypatch):
    """waveforms.png (plotting logic alone, on made-up responses): outputs and nodes up to WAVEFORM_ZOOM times the
    slowest settling time, not the whole simulated window; more gates than plots.MANY_EDGES as a histogram."""
    from types import SimpleNamespace  # noqa: PLC0415

    from metamaterial import costs, plots  # noqa: PLC0415

    drawn = {}
    monkeypatch.setattr(costs, "_save", lambda fig, path, plt: drawn.setdefault(path.name, fig) and path)
    t = np.linspace(0.0, 1e-4, 501)
    settle = [2.8e-6, 1.2e-6]
    responses = [SimpleNamespace(time=t, t_step=0.0, outputs=np.exp(-t / s)[:, None], voltages=np.ones((501, 3)),
                                 settling_time=s, settled=True) for s in settle]
    for n_gates in (8, plots.MANY_EDGES + 1):
        costs.plot_waveforms(tmp_path / f"w{n_gates}.png", None, np.linspace(0.5, 2.0, n_gates), [(0, 1), (1, 0)],
                             responses)
        outputs, nodes, gates = drawn[f"w{n_gates}.png"].axes
        for ax in (outputs, nodes):
            assert ax.get_xlim()[1] == pytest.approx(costs.WAVEFORM_ZOOM * max(settle) * 1e6)
        assert [t.get_text() for t in nodes.get_legend().get_texts()] == ["settled 2.8 us"]  # not 2800 ns
        if n_gates <= plots.MANY_EDGES:
            assert len(gates.get_lines()) == n_gates
        else:
            assert sum(bar.get_height() for bar in gates.patches) == n_gates
            assert gates.get_xlabel() == "gate voltage (V)"


def _held_bytes(a: np.ndarray) -> int:
    """Bytes an array keeps alive: those of the array it is a view of, if any."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a.nbytes


def test_the_steps_a_transient_keeps_in_memory_are_bounded_before_any_is_run(tmp_path, monkeypatch):
    """Every step's waveforms stay in memory until waves.npz is written: a real step's arrays own their data and
    fit in what ``step_memory`` counts for it, and a run whose steps would not fit in ``TRANSIENT_MEMORY`` (here
    the default, each point once) is refused naming --steps before ngspice runs or anything is written."""
    from metamaterial import costs, transient  # noqa: PLC0415
    from metamaterial.errors import ConfigError  # noqa: PLC0415

    proc = cli("transient", "--help")
    assert f"{si(costs.TRANSIENT_MEMORY, 'B')} of waveforms" in " ".join(proc.stdout.split())
    src = costs.load_source(load_config(XOR), None)
    setup = src.setup()
    c, x = setup.circuit, setup.task.inputs
    points = costs.timing_params(src.config)[2].points
    r = transient.step_response(c, src.controls, x[0], x[1], options=setup.options)
    arrays = (r.time, r.voltages, r.outputs, r.supply_power)
    held = [_held_bytes(a) for a in arrays]
    assert held == [a.nbytes for a in arrays]  # no view keeps ngspice's whole table (the drivers' columns) alive
    assert sum(held) <= costs.step_memory(c, points)
    monkeypatch.setattr(costs, "TRANSIENT_MEMORY", 3.5 * costs.step_memory(c, points))
    monkeypatch.setattr(transient, "step_response", lambda *a, **k: pytest.fail("ngspice ran"))
    out = tmp_path / "refused"
    with pytest.raises(ConfigError, match=r"^--steps: at most 3 input steps fit in the .* \(got the default, "
                                                r"each of the 4 data points once, which would need .*\); give "
                                                r"--steps 3 or fewer$"):
        costs.transient_run(src, out, progress=False)
    assert not out.exists()


def test_a_step_whose_nodes_end_away_from_their_dc_answer_is_not_settled(tmp_path):
    """Drivers of 1 Mohm charge XOR's nodes with a time constant of tens of microseconds: a fixed 1 us window ends
    with every node ~0.11 V from its DC answer while the output's own step (9 uV) never leaves its 0.1 mV band.
    The step is not settled, and the summary says the end state is outside the nodes' band."""
    out = tmp_path / "slow"
    proc = cli("transient", XOR, "--steps", "1", "--no-plots", "--out", str(out), "--set",
               "timing.periphery.driver_resistance=1e6", "--set", "timing.settle.t_stop=1e-6", QUIET)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "transient.json").read_text())
    row = result["steps"][0]
    assert row["output_step_v"] < result["timing"]["settle"]["abs_tol"] < row["final_vs_dc_v"]
    assert not row["settled"] and result["summary"]["not_settled"] == result["summary"]["ends_off_dc"] == 1
    assert (f"transient end state vs DC operating point: {row['final_vs_dc_v']:.1e} V; in 1 step(s) a node ended "
            "outside its settling band (max(1% of its step, 0.1 mV)): not settled") in proc.stdout


def test_the_medians_leave_out_the_steps_whose_outputs_stay_in_their_band(tmp_path):
    """A data set whose second and third points are the same input: the step between them moves nothing, so its
    outputs never leave their band (0 s, 0 J). The row stays in the files; the medians and maxima are over the
    other two steps alone, and the summary says how many were left out and why."""
    data = tmp_path / "points.csv"
    data.write_text("v_in,target_a,target_b\n0.1,0.15,0.11\n0.3,0.2,0.14\n0.3,0.2,0.14\n")
    cfg = tmp_path / "repeat.yaml"
    cfg.write_text(Path(ROOT / "configs" / "csv_example.yaml").read_text().replace("data/two_outputs.csv", str(data)))
    out = tmp_path / "out"
    proc = cli("transient", str(cfg), "--no-plots", "--out", str(out), QUIET)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "transient.json").read_text())
    rows, s = result["steps"], result["summary"]
    assert [(r["from"], r["to"]) for r in rows] == [(0, 1), (1, 2), (2, 0)]
    still = rows[1]
    assert still["settled"] and still["settling_time_s"] == 0.0 and still["energy_j"] == 0.0
    assert still["output_step_v"] < result["timing"]["settle"]["abs_tol"]
    moved = [rows[0], rows[2]]
    assert all(r["settled"] and r["settling_time_s"] > 0 and r["energy_j"] > 0 for r in moved)
    times, energies = [r["settling_time_s"] for r in moved], [r["energy_per_transistor_j"] for r in moved]
    assert s["settling_median_s"] == pytest.approx(np.median(times), rel=1e-12, abs=0)
    assert s["settling_max_s"] == max(times)
    assert s["energy_per_transistor_median_j"] == pytest.approx(np.median(energies), rel=1e-12, abs=0)
    assert s["energy_per_transistor_max_j"] == max(energies)
    assert (s["steps"], s["timed"], s["inside_band"], s["not_settled"]) == (3, 2, 1, 0)
    assert ("medians over the 2 step(s) whose outputs left their settling band; left out: the outputs of 1 settled "
            "step(s) stayed inside their settling band (0 s, 0 J: nothing to time)") in proc.stdout
    with open(out / "transient.csv") as f:
        assert len(list(csv.DictReader(f))) == 3  # every step's row is kept


def test_the_transient_summary_prints_times_and_energies_with_the_prefix_that_fits(tmp_path):
    """1 nF of wiring on every node makes an XOR step settle in microseconds: the summary reads e.g. 16.9 us and
    115 pJ (it read 1.69e+04 ns), the same numbers as transient.json."""
    out = tmp_path / "slow"
    proc = cli("transient", XOR, "--steps", "1", "--no-plots", "--out", str(out), "--set",
               "timing.periphery.wiring_capacitance=1e-9", QUIET)
    assert proc.returncode == 0, proc.stderr
    s = json.loads((out / "transient.json").read_text())["summary"]
    assert s["settling_max_s"] > 1e-6
    assert (f"settling time: median {si(s['settling_median_s'], 's')}, max {si(s['settling_max_s'], 's')}\n"
            f"energy per inference per transistor: median {si(s['energy_per_transistor_median_j'], 'J')}, max "
            f"{si(s['energy_per_transistor_max_j'], 'J')}\n") in proc.stdout
    assert " us, max " in proc.stdout


def test_a_rerun_without_figures_removes_the_figures_an_earlier_run_drew(tmp_path):
    """The figures of an earlier run in the same folder would show other data than the files beside them: a rerun
    with --no-plots removes them, lists them under ``removed`` and names them in its summary."""
    out = tmp_path / "out"
    for command, figures in (("transient", ["waveforms.png", "settling.png"]), ("energy", ["power_map.png"])):
        args = (command, XOR, "--out", str(out)) + (("--steps", "1") if command == "transient" else
                                                    ("--backend", "native"))
        drawn = cli(*args, QUIET)
        assert drawn.returncode == 0, drawn.stderr
        assert all((out / f).stat().st_size > 0 for f in figures) and "removed" not in drawn.stdout
        again = cli(*args, "--no-plots", QUIET)
        assert again.returncode == 0, again.stderr
        assert not any((out / f).exists() for f in figures)
        result = json.loads((out / f"{command}.json").read_text())
        assert result["removed"] == figures and not set(figures) & set(result["files"])
        assert f"removed what an earlier run left there and this one did not write: {', '.join(figures)}\n" \
            in again.stdout
    assert (out / "transient.json").exists() and (out / "waves.npz").exists()  # energy left the transient's data


def test_a_network_of_resistors_is_told_in_edges_not_transistors(tmp_path, monkeypatch):
    """configs/xor_linear.yaml's edges are resistors: energy's and transient's summaries and the power map count
    and divide by edges; configs/xor.yaml's are transistors and keep the word."""
    from metamaterial import costs  # noqa: PLC0415

    linear = str(ROOT / "configs" / "xor_linear.yaml")
    for config, noun in ((linear, "edge"), (XOR, "transistor")):
        energy = cli("energy", config, "--backend", "native", "--no-plots", "--out", str(tmp_path / "e"), QUIET)
        assert energy.returncode == 0, energy.stderr
        assert ": 32 " + noun + "s, 4 points\npower per " + noun + ", free twin: median" in energy.stdout
        tran = cli("transient", config, "--steps", "1", "--no-plots", "--out", str(tmp_path / "t"), QUIET)
        assert tran.returncode == 0, tran.stderr
        assert f"\nenergy per inference per {noun}: median" in tran.stdout
        if noun == "edge":
            assert "transistor" not in energy.stdout + tran.stdout
    drawn = {}
    monkeypatch.setattr(costs, "_save", lambda fig, path, plt: drawn.setdefault("fig", fig) and path)
    costs.energy_run(costs.load_source(load_config(linear, ["simulator.backend=native"]), None), tmp_path / "map",
                     progress=False)
    assert [ax.get_title() for ax in drawn["fig"].axes if ax.get_title()] == [
        "xor, free twin: median power per edge", "xor, clamped twin: median power per edge"]


def test_a_transient_cut_short_goes_on_from_its_finished_steps_to_the_uninterrupted_runs_files(tmp_path):
    """Each input step is kept as it finishes: Ctrl-C after two of six steps exits 130 in one line naming the steps
    kept, and the same command runs only the four others and writes every file the uninterrupted run writes, byte for
    byte, leaving no partial step behind."""
    args = ["transient", XOR, "--steps", "6", "--no-plots", QUIET]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert cli(*args, "--out", str(whole)).returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "metamaterial", *args, "--out", str(cut)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(cut.glob("transient_partial_step*.npz"))) < 2 and proc.poll() is None:
        assert time.monotonic() < deadline, "no step finished"
        time.sleep(0.01)
    assert proc.poll() is None, "the transient finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    kept = sorted(p.name for p in cut.iterdir())
    assert proc.returncode == 130, err
    assert len(kept) >= 2 and all(name.startswith("transient_partial_step") for name in kept), kept
    assert err == (f"metamaterial: interrupted; the {len(kept)} input steps finished so far are kept in {cut}; the "
                   "same command goes on from there\n")
    proc = cli(*args, "--out", str(cut))
    assert proc.returncode == 0, proc.stderr
    assert f"6 input steps (went on from the {len(kept)} steps an earlier run finished)" in proc.stdout
    assert sorted(p.name for p in cut.iterdir()) == sorted(p.name for p in whole.iterdir())
    for path in whole.iterdir():
        assert (cut / path.name).read_bytes() == path.read_bytes(), path.name


def test_partial_steps_of_other_gates_or_settings_are_not_taken(tmp_path, monkeypatch):
    """A finished step is taken only by a run of the same config, gates, data and replica: other gates or another
    timing setting run every step again (and overwrite the partial files); the same source takes them all."""
    from metamaterial import costs, transient  # noqa: PLC0415

    src = costs.load_source(load_config(XOR), None)
    runs = []
    real = transient.step_response

    def counted(*a, **k):
        runs.append(1)
        return real(*a, **k)

    monkeypatch.setattr(transient, "step_response", counted)
    monkeypatch.setattr(costs, "_remove_partial_steps", lambda out: None)  # keep them, as a cut would
    out = tmp_path / "t"
    first = costs.transient_run(src, out, steps=2, plots=False)
    assert (len(runs), first["resumed_steps"]) == (2, 0)
    again = costs.transient_run(src, out, steps=3, plots=False)  # the first two are taken, the third is run
    assert (len(runs), again["resumed_steps"]) == (3, 2)
    assert again["steps"][:2] == first["steps"]
    other_gates = costs.Source(src.config, src.controls + 0.01, None, None)
    assert costs.transient_run(other_gates, out, steps=2, plots=False)["resumed_steps"] == 0
    slower = costs.load_source(load_config(XOR, ["timing.periphery.driver_resistance=2000"]), None)
    assert costs.transient_run(slower, out, steps=2, plots=False)["resumed_steps"] == 0
    assert len(runs) == 7
    assert costs.transient_run(slower, out, steps=2, plots=False)["resumed_steps"] == 2


def test_a_run_directory_knows_the_partial_steps_of_its_transient_as_its_own(tmp_path):
    """``train --replace`` moves what a run wrote: the partial steps a cut transient left in RUN_DIR/transient are
    that command's files, not the user's."""
    from metamaterial.runfiles import run_files  # noqa: PLC0415

    (tmp_path / "transient").mkdir()
    for name in ("transient_partial_step0.npz", "transient_partial_step12.npz.tmp", "partial_step0.npz"):
        (tmp_path / "transient" / name).write_bytes(b"")
    assert run_files(tmp_path) == (["transient/transient_partial_step0.npz",
                                    "transient/transient_partial_step12.npz.tmp"], ["transient/partial_step0.npz"])


def test_a_second_transient_into_a_folder_in_use_is_refused_in_one_line(tmp_path):
    """Two transients into one folder would write each other's steps and files: while one holds the folder (its
    lock taken here as the other process holds it), another is refused naming the folder, before ngspice runs."""
    import fcntl  # noqa: PLC0415
    import os  # noqa: PLC0415

    out = tmp_path / "t"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = cli("transient", XOR, "--steps", "1", "--no-plots", "--out", str(out), QUIET)
    finally:
        os.close(fd)
    assert proc.returncode == 2 and proc.stderr == (
        f"metamaterial: {out}: a `transient` into it is running in another process; wait for it to end (the same "
        "command then goes on from its steps), or choose another --out\n"), proc.stderr
    assert list(out.iterdir()) == []
