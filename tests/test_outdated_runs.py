"""A run made before a revision that changed the circuit its config builds is read by no command (``revisions``):
revision 3 moved the drain of a network file's edges (with rd != rs) from the end whose name sorts first to the end
the file names first, so the gates of such a run trained before it sit on edges whose drain and source this version
swaps. eval, netlist, energy and transient refuse it as ``train --resume`` does; a revision that changed only how a
config trains (revision 2, read noise under a hinge) leaves a finished run readable."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import ROOT, cli, cli_ok, cli_refused
from metamaterial import revisions
from metamaterial.configfile import load_config
from metamaterial.experiment import build
from metamaterial.runfiles import CHECKPOINT
from test_drain import REVERSED, _torus_config

EPOCHS = 4
QUICK = ["--set", f"learning.epochs={EPOCHS}", "--no-progress", "--no-plots"]


def _made_under(run_dir, revision: int) -> None:
    """Rewrite run_dir's checkpoint as one written under ``revision`` (1: before revisions were recorded)."""
    with np.load(run_dir / CHECKPOINT, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    if revision == 1:
        del meta["revision"]
    else:
        meta["revision"] = revision
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(run_dir / CHECKPOINT, **arrays)


@pytest.fixture
def reversed_run(tmp_path):
    """XOR on a 4x4 torus network file whose names sort against the file's order, of ald1106-l1 (21.96 ohm on the
    drain, 73.21 on the source): every edge's drain moved at revision 3."""
    config = _torus_config(tmp_path, REVERSED, "ald1106-l1", "native", "l1")
    c = build(load_config(config)).circuit
    assert c.device.rd != c.device.rs and revisions.revision_of(load_config(config)) == 3
    run = tmp_path / "run"
    cli_ok("train", str(config), "--out", str(run), *QUICK)
    return run


@pytest.mark.parametrize("made_under", [1, 2])
def test_a_run_made_before_its_circuit_changed_is_refused_by_every_command_that_reads_its_gates(reversed_run,
                                                                                               tmp_path, made_under):
    _made_under(reversed_run, made_under)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in reversed_run.iterdir())
    change = next(r for r in revisions.REVISIONS if r.number == 3)  # the drains'
    shape = (f"metamaterial: {reversed_run}: was trained before revision 3 of the dynamics ({change.date}: "
             f"{change.what}), which changed ")
    read = shape + ("the circuit this config builds: its gates would be read on another circuit than they were "
                    "trained on; train it anew with another --out (this run directory stays as it is)\n")
    for command in (["eval", str(reversed_run)], ["netlist", str(reversed_run), "--out", str(tmp_path / "n")],
                    ["energy", str(reversed_run), "--out", str(tmp_path / "e"), "--no-progress"],
                    ["transient", str(reversed_run), "--out", str(tmp_path / "t"), "--no-progress"]):
        assert cli_refused(*command) == read, command
    resumed = cli("train", "--resume", str(reversed_run), "--no-progress")
    assert resumed.returncode == 2 and resumed.stderr.startswith(shape + "how this config trains: resumed"), \
        resumed.stderr
    assert not any((tmp_path / name).exists() for name in "net")
    assert sorted((p.name, p.stat().st_mtime_ns) for p in reversed_run.iterdir()) == before  # nothing touched
    _made_under(reversed_run, revisions.CURRENT)
    assert json.loads(cli_ok("eval", str(reversed_run), "--json").stdout)["epoch"] == EPOCHS


def test_a_revision_of_how_a_config_trains_alone_leaves_a_finished_run_readable(tmp_path):
    """Revision 2 drew other read noise under a hinge: a run made before it is not resumed, but its gates are what
    they are, on the circuit this version builds too."""
    run = tmp_path / "run"
    cli_ok("train", str(ROOT / "configs" / "iris.yaml"), "--out", str(run), "--backend", "native", "--set",
           "learning.read_noise=0.002", *QUICK)
    _made_under(run, 1)
    assert revisions.changed_since(load_config(run / "config.yaml"), 1).number == 2
    assert json.loads(cli_ok("eval", str(run), "--json").stdout)["epoch"] == EPOCHS
    cli_ok("netlist", str(run), "--out", str(tmp_path / "n"), "--points", "0")
    assert "before revision 2" in cli_refused("train", "--resume", str(run), "--no-progress")
