"""The transient and learning-transient decks under ``ngspice -b``: a run that fails exits non-zero, and the runner
says so in one line that names the kind of deck and where the deck was kept; a good run exits 0 and writes what it
wrote before the checks were there (metamaterial.transient.control_block, _tran)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

import metamaterial.transient as tr
from conftest import ROOT
from metamaterial.configfile import load_config
from metamaterial.costs import load_source, timing_params
from metamaterial.errors import SimulationError
from metamaterial.experiment import build
from metamaterial.learning_hardware import learning_netlist, plan_steps
from metamaterial.sim.ngspice import run_batch_file  # noqa: F401 (these tests run ngspice -b)
from metamaterial.transient import transient_netlist

XOR = ROOT / "configs" / "xor.yaml"
REGRESSION = ROOT / "configs" / "regression.yaml"
WINDOW = 1e-6   # s: the transient's window after the step (XOR at its initial gates settles within it)
T_STEP = 2e-8   # s: the step starts after 2 % of the window, as step_response starts it
#: the lines the decks gained so that a failed run exits non-zero (strict_errorhandling and the stop check)
CHECKS = ("set strict_errorhandling", "let t_end = ", "if t_end < ", 'echo "Error: the transient stopped', "quit 1",
          "end")


def _without_checks(text: str) -> str:
    """``text`` as the decks were written before they checked their runs: ending ``quit 0`` whatever happened."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith(CHECKS))


def _ngspice(deck: str, where: Path, name: str = "deck.cir") -> subprocess.CompletedProcess:
    (where / name).write_text(deck)
    return subprocess.run(["ngspice", "-b", name], cwd=where, capture_output=True, text=True, timeout=300)


def _xor_step(options=None) -> tuple[str, object]:
    cfg = load_config(XOR)
    setup, gates = build(cfg), load_source(cfg, None).controls
    x = setup.task.inputs
    text = transient_netlist(setup.circuit, gates, x[0], x[1], t_step=T_STEP, t_stop=T_STEP + WINDOW,
                             options=options or setup.options)
    return text, setup


def _no_operating_point(text: str, node: str) -> str:
    """``text`` with a source that pushes V(node)^2 + 1 A into ``node``, more than its transistors can ever take
    away: the operating point a ``tran`` starts from cannot converge."""
    at = text.index("\n.control")
    return text[:at] + f"\nBX 0 {node} I = V({node})*V({node}) + 1" + text[at:]


def test_a_good_transient_deck_exits_0_and_writes_what_it_wrote_before(tmp_path):
    text, setup = _xor_step()
    assert _without_checks(text) != text and "quit 0\n.endc" in text
    new, old = tmp_path / "new", tmp_path / "old"
    new.mkdir(), old.mkdir()
    runs = {where: _ngspice(deck, where) for where, deck in ((new, text), (old, _without_checks(text)))}
    assert [r.returncode for r in runs.values()] == [0, 0], runs[new].stderr
    waves = (new / "waves.txt").read_bytes()
    assert waves == (old / "waves.txt").read_bytes() and len(waves.splitlines()) > 100
    # the operating-point deck of the same circuit (dc_point's) prints the same node voltages
    op = transient_netlist(setup.circuit, load_source(load_config(XOR), None).controls, None, setup.task.inputs[1])
    printed = [_ngspice(deck, where, "op.cir") for where, deck in ((new, op), (old, _without_checks(op)))]
    assert [r.returncode for r in printed] == [0, 0] and printed[0].stdout == printed[1].stdout
    assert "n0 = " in printed[0].stdout


def test_an_aborted_transient_exits_1_after_writing_what_it_had_and_the_runner_names_its_deck(tmp_path,
                                                                                            monkeypatch):
    """With the DC solvers' abstol (1e-15 A) ngspice's timestep collapses at XOR's input edge (tests/
    test_transient.py): it keeps the samples before it, and before the stop check exited 0 after them."""
    setup = build(load_config(XOR))
    monkeypatch.setattr(tr, "ABSTOL_FLOOR", setup.options.abstol)
    text, _ = _xor_step()
    old = tmp_path / "old"
    old.mkdir()
    assert _ngspice(_without_checks(text), old).returncode == 0  # what the stop check is there for
    run = _ngspice(text, tmp_path)
    assert run.returncode == 1 and "Timestep too small" in run.stderr
    assert "Error: the transient stopped at t = " in run.stdout + run.stderr
    last = float((tmp_path / "waves.txt").read_text().strip().splitlines()[-1].split()[0])
    assert last == pytest.approx(T_STEP, rel=1e-3)  # the input edge
    with pytest.raises(SimulationError, match=r"^transient: ngspice stopped at t = 2e-08 s of 1.02e-06 s \(got an "
                                              r"aborted transient\); read the simulator log below, or run the deck "
                                              r"kept at (\S+\.cir); and check the timing") as err:
        tr._run(text, "waves.txt", t_stop=T_STEP + WINDOW, hint="; and check the timing: and simulator: tolerances")
    assert Path(err.value.kept).read_text() == text and err.value.kept in str(err.value).splitlines()[0]
    Path(err.value.kept).unlink()


def test_a_transient_whose_operating_point_fails_exits_1(tmp_path):
    text, setup = _xor_step()
    c = setup.circuit
    inner = next(i for i in range(c.n_nodes) if i not in set(c.inputs.tolist()) | set(c.rails.tolist()))
    bad = _no_operating_point(text, f"n{inner}")
    old = tmp_path / "old"
    old.mkdir()
    assert _ngspice(_without_checks(bad), old).returncode == 0  # ngspice went on after the failed operating point
    assert _ngspice(bad, tmp_path).returncode == 1
    with pytest.raises(SimulationError, match=r"^transient: ngspice -b exited with code 1 \(got no answer\); read the "
                                              r"simulator log below, or run the deck kept at \S+\.cir\n") as err:
        tr._run(bad, "waves.txt", t_stop=T_STEP + WINDOW)
    assert Path(err.value.kept).read_text() == bad
    Path(err.value.kept).unlink()


def test_the_learning_deck_exits_0_when_good_and_1_when_its_operating_point_fails(tmp_path):
    cfg = load_config(REGRESSION)
    setup = build(cfg)
    caps, periphery, _ = timing_params(cfg)
    gates = np.full(setup.circuit.n_edges, 3.0)
    text = learning_netlist(setup, gates, plan_steps(setup, 1, caps, periphery), caps, periphery)
    assert "\nset strict_errorhandling\n" in text and text.endswith("\nquit 1\nend\nquit 0\n.endc\n.end\n")
    new, old = tmp_path / "new", tmp_path / "old"
    new.mkdir(), old.mkdir()
    assert _ngspice(text, new).returncode == 0 and _ngspice(_without_checks(text), old).returncode == 0
    assert (new / "gates.txt").read_bytes() == (old / "gates.txt").read_bytes()
    c = setup.circuit
    inner = next(i for i in range(c.n_nodes) if i not in set(c.inputs.tolist()) | set(c.rails.tolist()))
    bad = _no_operating_point(text, f"f{inner}")
    assert _ngspice(_without_checks(bad), old, "bad.cir").returncode == 0
    assert _ngspice(bad, new, "bad.cir").returncode == 1
    with pytest.raises(SimulationError, match=r"^learning_hardware: ngspice -b exited with code 1 \(got no answer\)") \
            as err:
        tr._run(bad, "gates.txt", where="learning_hardware", t_stop=1.0)
    Path(err.value.kept).unlink()
