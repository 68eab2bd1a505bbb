"""Netlist text: deterministic bytes, index-derived names, and netlists/ up to date with the shipped configs."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from conftest import CONFIGS, ROOT, random_gates, xor_circuit
from metamaterial.configfile import load_config
from metamaterial.devices import nmos_preset
from metamaterial.errors import ConfigError, ValidationError
from metamaterial.netlist import SpiceOptions, parse_print_all, to_spice
from metamaterial.points import solve_points, write_netlists


def test_same_input_gives_same_bytes():
    gates = random_gates(32, seed=7)
    x = np.array([[0.45, 0.0]])
    a = to_spice(xor_circuit(), gates, x, np.array([[0.1, 0.2]]))
    b = to_spice(xor_circuit(), gates.copy(), x.copy(), np.array([[0.1, 0.2]]))
    assert a == b
    # every element name and node comes from an index; numbers are exact round-trip decimals
    assert f"IG5 0 g5 dc {float(gates[5])!r}\nRG5 g5 0 1.0\n" in a
    assert "VC0 n10 0 dc 0.1" in a and "VC1 n0 0 dc 0.2" in a
    assert "M0 n0 g0 n1 0 nmos_edge" in a


def test_a_value_no_netlist_can_hold_is_named_by_argument_and_position():
    """Each number's writer refused it as 'netlist: refusing a non-finite value (got nan)': not which argument, nor
    which of its values."""
    gates, x = random_gates(32, seed=7), np.array([[0.45, 0.0]])
    with pytest.raises(ValidationError, match=re.escape("to_spice: controls must be finite (got nan at edge 6); give a "
                                                        "finite gate voltage (V) to every edge")):
        to_spice(xor_circuit(), np.where(np.arange(32) == 6, np.nan, gates), x)
    with pytest.raises(ValidationError, match=re.escape("to_spice: inputs must be finite (got inf at row 6, column 1); "
                                                        "give a finite voltage (V) to every input")):
        to_spice(xor_circuit(), gates, np.vstack([np.tile(x, (6, 1)), [[0.45, np.inf]]]))
    with pytest.raises(ValidationError, match=re.escape("to_spice: clamps must be finite (got -inf at row 0, column "
                                                        "1)")):
        to_spice(xor_circuit(), gates, x, np.array([[0.1, -np.inf]]))

def test_batched_netlist_shares_gates_and_rails():
    text = to_spice(xor_circuit(), random_gates(32), np.zeros((3, 2)))
    assert text.count("\nIG0 ") == 1 and text.count("\nRG0 ") == 1 and text.count("\nVR0 ") == 1
    assert {"M0_0 ", "M0_1 ", "M0_2 "} <= {ln[:5] for ln in text.splitlines()}


def test_the_header_says_what_the_sources_are_and_labels_every_role_node():
    """A SPICE reader meets 1 ohm gate resistors carrying amperes: the comment says they stand for the gate
    capacitors' voltages and that their power is not the network's; the digits' 84 nodes are labelled, the 20
    output nodes too (they were "(20 more)"), and the outputs line names the 10 pairs."""
    text = (ROOT / "netlists" / "digits_chips" / "free_0.cir").read_text().splitlines()
    assert " n63=in63 n64=out0 " in text[2] and text[2].endswith(" n83=out19") and "more" not in text[2]
    assert text[3] == ("* outputs: " + " ".join(f"n{64 + k}-n{74 + k}" for k in range(10))
                       + " (nA-nB: the differential output V(nA) - V(nB))")
    assert "* gates: IGe drives V_G amperes into RGe = 1 ohm" in "\n".join(text)
    xor = (ROOT / "netlists" / "xor" / "clamped_0.cir").read_text()
    assert "* sources: VR rails (above), VI inputs, VC clamped outputs (the nudged values)" in xor
    # a network larger than the labelled 64: the first 64 and the role nodes, the rest counted
    from metamaterial.configfile import load_config  # noqa: PLC0415
    from metamaterial.experiment import build  # noqa: PLC0415
    setup = build(load_config(ROOT / "configs" / "xor.yaml", ["network.rows=10", "network.cols=10",
                                                               "roles.outputs=[[9, 9]]"]))
    head = to_spice(setup.circuit, np.ones(setup.circuit.n_edges), np.zeros((1, 2))).splitlines()[2]
    assert " n63=(6,3) ... n99=(9,9) ... (35 more)" in head, head


def test_a_clamped_netlist_says_what_its_clamp_values_are():
    """The clamped twin's VC values were bare numbers: a comment names each output, its free value, its label and
    the nudge that moved it, and the VC sources holding it; its numbers are those of the VC lines."""
    text = (ROOT / "netlists" / "xor" / "clamped_1.cir").read_text()
    assert ("* clamps (VC): each output held at its free value nudged toward its label, O_C = O_F + eta (L - O_F), "
            "eta = learning.nudge 0.5; a differential output moves each of its nodes by half of that") in text
    m = re.search(r"^\* output n10-n0: free (\S+) V, label (\S+) V, clamped to (\S+) V \(VC0 on n10, VC1 on n0\)$",
                  text, re.MULTILINE)
    assert m, text[:2000]
    free, label, held = map(float, m.groups())
    vc = {k: float(re.search(rf"^VC{k} n\d+ 0 dc (\S+)$", text, re.MULTILINE).group(1)) for k in (0, 1)}
    assert label == -0.087 and held == pytest.approx(free + 0.5 * (label - free), abs=1e-6)
    assert vc[0] - vc[1] == pytest.approx(held, abs=1e-6)
    digits = (ROOT / "netlists" / "digits" / "clamped_0.cir").read_text()
    assert "the true class's output pushed up by learning.nudge 0.05 V and its largest rival's down" in digits
    assert len(re.findall(r"^\* output n\d+-n\d+ \(class \d\): ", digits, re.MULTILINE)) == 10
    assert len(re.findall(r": true class, free \S+ V, pushed up to ", digits)) == 1
    assert len(re.findall(r": largest rival, free \S+ V, pushed down to ", digits)) == 1


def test_a_deck_whose_operating_point_fails_exits_with_code_1(tmp_path):
    """Every deck ended with ``quit 0``: a failed operating point run with ``ngspice -b`` exited 0 and printed the
    last iterate. ``strict_errorhandling`` makes it exit 1; a deck that solves still exits 0. (Two voltage sources
    in parallel at different voltages: no operating point exists.)"""
    text = to_spice(xor_circuit(), random_gates(32), np.array([[0.45, 0.0]]))
    assert "\n.control\nset numdgt=15\nset strict_errorhandling\nop\nprint all\nquit 0\n.endc\n" in text
    good, bad = tmp_path / "good.cir", tmp_path / "bad.cir"
    good.write_text(text)
    bad.write_text(text.replace("\n.control\n", "\nVX1 n3 0 dc 0.1\nVX2 n3 0 dc 0.2\n.control\n"))
    ran = {p.name: subprocess.run(["ngspice", "-b", str(p)], capture_output=True, text=True, timeout=120)
           for p in (good, bad)}
    assert ran["good.cir"].returncode == 0 and "n10 = " in ran["good.cir"].stdout
    assert ran["bad.cir"].returncode == 1, ran["bad.cir"].stdout[-500:]


def test_solve_points_given_a_point_as_an_int_says_it_takes_a_text():
    """points=3 was "'int' object has no attribute 'strip'"; points="3" solves that point."""
    cfg = load_config(ROOT / "configs" / "xor.yaml", ["simulator.backend=native"])
    with pytest.raises(ConfigError, match=re.escape("--points: must be a text of indices and ranges (got int 3); "
                                                    "give e.g. '3', '0,5,10-19' or 'all'")):
        solve_points(cfg, points=3)
    assert [p["index"] for p in solve_points(cfg, points="3")["points"]] == [3]


def test_a_netlist_carries_the_options_its_solve_uses(tmp_path):
    """ngspice's backend solves a transistor network without mismatch at reltol min(simulator.reltol, 1e-10) (the
    warm-started dc sweep), and the written decks said the config's reltol: with simulator.reltol=1e-3 the standalone
    file differed from ``solve`` by 7e-8 V. Now the deck carries 1e-10 and says why, and agrees with ``solve``; a
    mismatched network (solved by op) keeps the config's."""
    from metamaterial.configfile import load_config  # noqa: PLC0415
    from metamaterial.sim.ngspice import run_batch_file  # noqa: PLC0415

    cfg = load_config(ROOT / "configs" / "xor.yaml", ["simulator.reltol=1e-3", "device.preset=ald1106-l1"])
    solved = solve_points(cfg, backend="ngspice", points="1")["points"][0]
    write_netlists(cfg, tmp_path, backend="ngspice", points="1")
    for phase in ("free", "clamped"):
        text = (tmp_path / f"{phase}_1.cir").read_text()
        assert "\n.options gmin=1e-12 reltol=1e-10 abstol=1e-15 " in text
        assert ("\n* reltol 1e-10, not simulator.reltol 0.001: ngspice's backend solves this network as warm-started "
                "points of a dc sweep") in text
        printed = parse_print_all(run_batch_file(str(tmp_path / f"{phase}_1.cir")))
        assert max(abs(printed[f"n{i}"] - solved[phase][f"n{i}"]) for i in range(16)) < 1e-12
    mismatched = load_config(ROOT / "configs" / "xor.yaml", ["simulator.reltol=1e-3",
                                                             "device.mismatch={vto_sigma: 0.005}"])
    write_netlists(mismatched, tmp_path / "mm", backend="native", points="0")
    text = (tmp_path / "mm" / "free_0.cir").read_text()
    assert "\n.options gmin=1e-12 reltol=0.001 " in text and "not simulator.reltol" not in text


def test_write_netlists_where_a_file_is_refuses_as_the_command_line_does(tmp_path):
    """A file at the output folder, or on its way, was a bare FileExistsError or NotADirectoryError from pathlib;
    the command line said the one line below."""
    cfg = load_config(ROOT / "configs" / "xor.yaml", ["simulator.backend=native"])
    a_file = tmp_path / "a_file"
    a_file.write_text("kept")
    for out, why in ((a_file, "File exists"), (a_file / "sub", "Not a directory")):
        with pytest.raises(ConfigError, match=re.escape(f"{out}: cannot create the output directory ({why}); choose "
                                                        "another --out")):
            write_netlists(cfg, out, points="0")
    assert a_file.read_text() == "kept"
    paths, _, _ = write_netlists(cfg, tmp_path / "new" / "folder", points="0")
    assert [p.name for p in paths] == ["free_0.cir", "clamped_0.cir"]


def test_write_netlists_refuses_its_folder_before_it_solves(tmp_path, monkeypatch):
    """The output folder was made only after every point was solved (initial_phases, then write_point_netlists): an
    out_dir that cannot be created, or a folder named as one of its netlists, was found after the solve. Now the
    solver is not asked (here it would fail the test) until the folder is there and can take every file."""
    from metamaterial import points  # noqa: PLC0415

    cfg = load_config(ROOT / "configs" / "xor.yaml", ["simulator.backend=native"])
    a_file = tmp_path / "a_file"
    a_file.write_text("kept")
    blocked = tmp_path / "blocked"
    (blocked / "clamped_1.cir").mkdir(parents=True)

    def solver_asked(setup):
        raise AssertionError("solved before the output folder was checked")

    monkeypatch.setattr(points, "make_solver", solver_asked)
    with pytest.raises(ConfigError, match=re.escape(f"{a_file / 'sub'}: cannot create the output directory (Not a "
                                                    "directory); choose another --out")):
        write_netlists(cfg, a_file / "sub", points="0")
    with pytest.raises(ConfigError, match=re.escape(f"{blocked / 'clamped_1.cir'}: a folder where")):
        write_netlists(cfg, blocked, points="0-1")
    assert a_file.read_text() == "kept" and [p.name for p in blocked.iterdir()] == ["clamped_1.cir"]


def test_a_folder_named_as_a_netlist_is_refused_by_name(tmp_path):
    """A folder free_0.cir in out_dir made write_netlists raise a bare IsADirectoryError (naming free_0.cir.tmp);
    now one line names the folder and what to do, nothing is written, and without it the same call writes."""
    cfg = load_config(ROOT / "configs" / "xor.yaml", ["simulator.backend=native"])
    (tmp_path / "free_0.cir").mkdir()
    (tmp_path / "free_0.cir" / "inside").write_text("kept")
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'free_0.cir'}: a folder where the netlist "
                                                    "free_0.cir is written; remove or rename it, or choose another "
                                                    "--out")):
        write_netlists(cfg, tmp_path, points="0")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["free_0.cir", "inside"]
    (tmp_path / "free_0.cir" / "inside").unlink()
    (tmp_path / "free_0.cir").rmdir()
    paths, _, _ = write_netlists(cfg, tmp_path, points="0")
    assert [p.name for p in paths] == ["free_0.cir", "clamped_0.cir"] and all(p.is_file() for p in paths)


def test_linear_solver_option_is_emitted_and_checked():
    gates, x = random_gates(32), np.zeros((1, 2))
    assert "\n.options klu\n" in to_spice(xor_circuit(), gates, x)
    sparse = to_spice(xor_circuit(), gates, x, options=SpiceOptions(linear_solver="sparse"))
    assert "\n.options sparse\n" in sparse and "klu" not in sparse
    with pytest.raises(ValidationError,
                       match=r"SpiceOptions.linear_solver: must be one of klu, sparse \(got 'umfpack'\)"):
        SpiceOptions(linear_solver="umfpack")


def test_shipped_netlists_are_current(tmp_path):
    stale = []
    for cfg_path in CONFIGS:
        fresh = tmp_path / cfg_path.stem
        write_netlists(load_config(cfg_path), fresh)  # as `make netlists` and `metamaterial netlist CONFIG` write them
        shipped = ROOT / "netlists" / cfg_path.stem
        names = sorted(p.name for p in fresh.iterdir())
        if not shipped.is_dir() or sorted(p.name for p in shipped.iterdir()) != names:
            stale.append(f"{cfg_path.stem}: file list differs")
            continue
        stale += [f"{cfg_path.stem}/{n}" for n in names if (fresh / n).read_bytes() != (shipped / n).read_bytes()]
    assert not stale, f"netlists/ is stale, run `make netlists`: {stale[:5]}"


@pytest.mark.parametrize("overrides, card, values", [
    (["device.params.is=1e-12", "device.params.ld=1e-6"], "ld=1e-06 is=1e-12)", {"is_": 1e-12, "ld": 1e-6}),
    (["device.preset=ald1106-hw", "device.params.sub_join=0.12", "device.params.sub_decade=0.08"], "0.12",
     {"sub_join": 0.12, "sub_decade": 0.08}),
])
def test_every_parameter_of_the_device_model_can_be_overridden(tmp_path, overrides, card, values):
    """README said any parameter can be overridden, and is, ld, sub_join and sub_decade were refused as unknown keys:
    they reach the device, the netlist and the native law, and the two backends agree on them."""
    from metamaterial.configfile import load_config  # noqa: PLC0415
    from metamaterial.experiment import build_device  # noqa: PLC0415

    cfg = load_config(ROOT / "configs" / "xor.yaml", overrides)
    device = build_device(cfg)
    assert {k: getattr(device, k) for k in values} == values
    write_netlists(cfg, tmp_path, backend="ngspice", points="1")
    assert card in (tmp_path / "free_1.cir").read_text()
    solved = {b: solve_points(cfg, backend=b, points="1")["points"][0] for b in ("ngspice", "native")}
    for phase in ("free", "clamped"):
        a, b = solved["ngspice"][phase], solved["native"][phase]
        assert max(abs(a[n] - b[n]) for n in a) < 1e-6


def test_node_labels_in_a_header_are_exact_and_outputs_say_differential_only_when_they_are(tmp_path):
    """A file's node names went into the header with their odd characters as '?' and spaces dropped, so "hub 1"
    and "hub1" both read "hub1": each other character is now %XX (its UTF-8 bytes), one label per name. The
    outputs line explains nA-nB only where an output is a pair; the transient deck carries the same lines."""
    from metamaterial.experiment import build  # noqa: PLC0415
    from metamaterial.netlist import label_text  # noqa: PLC0415
    from metamaterial.transient import transient_netlist  # noqa: PLC0415

    names = ["in", "hub1", "hub 1", "out (V)", "100%", "gnd"]
    edges = [("in", "hub1"), ("hub1", "hub 1"), ("hub 1", "out (V)"), ("out (V)", "100%"), ("100%", "gnd"),
             ("in", "hub 1")]
    nodes = "".join(f'<node id="{n}"/>' for n in names)
    links = "".join(f'<edge source="{a}" target="{b}"/>' for a, b in edges)
    (tmp_path / "net.graphml").write_text('<?xml version="1.0"?><graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
                                          f'<graph edgedefault="undirected">{nodes}{links}</graph></graphml>')
    (tmp_path / "c.yaml").write_text(
        "name: labels\nseed: 0\nnetwork: {kind: file, file: net.graphml}\n"
        "roles: {inputs: [in], rails: [{node: gnd, volts: 0.0}], outputs: ['out (V)']}\n"
        "device: {kind: nmos, preset: ald1106-fit}\ntask: {name: regression, x: [0.1, 0.3], y: [0.05, 0.1]}\n"
        "learning: {epochs: 1}\nsimulator: {backend: native}\n")
    setup = build(load_config(tmp_path / "c.yaml"))
    head = to_spice(setup.circuit, np.full(setup.circuit.n_edges, 2.0), np.zeros((1, 1))).splitlines()
    labels = dict(part.split("=", 1) for part in head[2].removeprefix("* node labels: ").split(" (")[0].split())
    assert sorted(labels.values()) == sorted(label_text(n) for n in names)  # every name, none merged
    assert {label_text("hub 1"), label_text("out (V)"), label_text("100%")} == {"hub%201", "out%20(V)", "100%25"}
    assert head[2].endswith(" (other characters of a label as %XX, the hex of its UTF-8 bytes)")
    out = setup.circuit.out_pos[0]
    assert head[3] == f"* outputs: n{out}" and labels[f"n{out}"] == "out%20(V)"
    deck = transient_netlist(setup.circuit, np.full(setup.circuit.n_edges, 2.0), None, np.array([0.3])).splitlines()
    assert deck[1:3] == head[2:4]


def test_a_preset_with_changed_parameters_is_named_by_them_in_the_header():
    """A netlist's header (and a run's summary.json) called a transistor with another threshold "ald1106-fit": a
    sweep over device.params.vto wrote the same device name at every point."""
    from metamaterial.experiment import build  # noqa: PLC0415

    cfg = load_config(ROOT / "configs" / "xor.yaml", ["device.params.vto=0.6", "device.params.kp=2e-5"])
    c = build(cfg).circuit
    assert c.device.name == "ald1106-fit (vto 0.6, kp 2e-05)"
    assert "device ald1106-fit (vto 0.6, kp 2e-05), batch 1" in to_spice(c, random_gates(c.n_edges), np.zeros((1, 2)))
    preset = load_config(ROOT / "configs" / "xor.yaml").device.preset
    same = load_config(ROOT / "configs" / "xor.yaml", [f"device.params.vto={nmos_preset(preset).vto!r}"])
    assert build(same).circuit.device.name == preset  # a value the preset has changes nothing
