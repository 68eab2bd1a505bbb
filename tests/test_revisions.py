"""Results made before a change of the training dynamics are not taken for the configs it changed (``revisions``).

Read noise under a hinge drew another noise sequence before revision 2 (docs/physics.md 3.9): a sweep result of such
a config made before it runs again, and a run directory of one is not resumed; a config the revision did not touch
(no read noise) keeps its key, its results and its checkpoints."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import yaml

from conftest import ROOT
from metamaterial import revisions
from metamaterial.cli import main
from metamaterial.configfile import load_config
from metamaterial.errors import CheckpointError
from metamaterial.runfiles import CHECKPOINT, load_checkpoint
from metamaterial.runs import open_run_dir, train_run
from metamaterial.sweep import load_sweep
from metamaterial.sweep.execute import earlier_results, run_sweep
from metamaterial.sweep.spec import config_key, config_text, saved_config_key
from metamaterial.sweep.store import read_result, write_result

IRIS = str(ROOT / "configs" / "iris.yaml")  # a hinge loss
QUICK = ["simulator.backend=native", "learning.epochs=4", "learning.eval_every=1", "learning.record_every=1",
         "learning.checkpoint_every=2"]
NOISE = "learning.read_noise=0.002"


def _old_key(cfg) -> str:
    """A point's key before revisions entered it: the hash of its config text alone."""
    return hashlib.sha256(config_text(cfg).encode()).hexdigest()[:16]


def test_only_configs_a_revision_changed_get_another_key():
    quiet, noisy = load_config(IRIS, QUICK), load_config(IRIS, [*QUICK, NOISE])
    regression = load_config(ROOT / "configs" / "regression.yaml", [NOISE])  # read noise, no hinge: all active
    assert revisions.revision_of(quiet) == revisions.revision_of(regression) == 1
    assert config_key(quiet) == _old_key(quiet) and config_key(regression) == _old_key(regression)
    assert revisions.revision_of(noisy) == 2 and config_key(noisy) != _old_key(noisy)
    assert revisions.changed_since(noisy, 1).number == 2 and revisions.changed_since(noisy, 2) is None
    assert revisions.changed_since(quiet, 1) is None
    for cfg in (quiet, noisy):  # a record made today reads back under its point's key
        assert saved_config_key({"config": config_text(cfg), "revision": revisions.CURRENT}) == config_key(cfg)
    assert saved_config_key({"config": config_text(quiet)}) == config_key(quiet)  # made before: still its result
    assert saved_config_key({"config": config_text(noisy)}) is None  # made before: not its result


def test_a_sweep_runs_again_the_points_whose_results_a_revision_made_outdated(tmp_path, capsys):
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump({"base": IRIS, "set": QUICK, "grid": {"learning.read_noise": [0.0, 0.002]}}))
    spec = load_sweep(spec_file)
    out = tmp_path / "out"
    for p in spec.points:  # records as a sweep wrote them before revision 2: no revision, keyed by the text alone
        old = _old_key(p.config)
        assert write_result(out, old, {"key": old, "status": "ok", "values": p.values, "config": config_text(p.config),
                                       "summary": {"final_loss": -1.0}})
    quiet, noisy = spec.points
    assert {r.number: n for r, n in earlier_results(spec, out).outdated.items()} == {2: 1}
    assert main(["sweep", str(spec_file), "--out", str(out), "--dry-run"]) == 0
    said = capsys.readouterr()
    assert "1 already done in" in said.out
    assert "sweep: 1 point(s) have a result trained before revision 2 of the dynamics (2026-12-02: read noise" \
        in said.err
    run = run_sweep(spec, out, workers=1)
    assert (run.total, run.skipped, run.ok, run.failed) == (2, 1, 1, 0)
    assert read_result(out, quiet.key)["summary"]["final_loss"] == -1.0  # untouched by the revision: kept
    record = read_result(out, noisy.key)
    assert record["revision"] == revisions.CURRENT and record["summary"]["final_loss"] >= 0  # trained today
    assert read_result(out, _old_key(noisy.config))["summary"]["final_loss"] == -1.0  # the old one left in place
    assert earlier_results(spec, out).outdated == {}


def _made_before_revisions(run_dir) -> None:
    """Rewrite run_dir's checkpoint as one written before revisions were recorded."""
    with np.load(run_dir / CHECKPOINT, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    del meta["revision"]
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(run_dir / CHECKPOINT, **arrays)


@pytest.mark.parametrize("noise", [False, True])
def test_a_run_directory_trained_before_a_revision_of_its_config_is_not_resumed(tmp_path, capsys, noise):
    cfg = load_config(IRIS, [*QUICK, *([NOISE] if noise else [])])
    run_dir = tmp_path / "run"
    train_run(cfg, run_dir, progress=False, plots=False)
    assert load_checkpoint(run_dir).revision == revisions.CURRENT
    _made_before_revisions(run_dir)
    assert load_checkpoint(run_dir).revision == 1
    if not noise:  # no read noise: revision 2 trains it alike, so it resumes
        assert open_run_dir(cfg, run_dir, resume=True) == run_dir
        assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 0
        return
    with pytest.raises(CheckpointError, match="revision 2"):
        open_run_dir(cfg, run_dir, resume=True)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in run_dir.iterdir())
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was trained before revision 2 of the dynamics" in err[0], err
    assert "another --out" in err[0]
    assert sorted((p.name, p.stat().st_mtime_ns) for p in run_dir.iterdir()) == before  # nothing touched


def test_the_leaks_new_step_time_is_a_revision_of_leaky_configs_only():
    """Revision 4 timed the leak by the step's slots: a config with a leak trains to other gates since (a run of one
    checkpointed before is not resumed); one without keeps its key and results."""
    leaky = load_config(IRIS, [*QUICK, "learning.leak.tau=10"])
    assert revisions.revision_of(leaky) == 4 and revisions.changed_since(leaky, 3).number == 4
    assert revisions.revision_of(load_config(IRIS, QUICK)) == 1
