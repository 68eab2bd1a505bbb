"""`metamaterial reproduce --quick`: every claim runs, writes its evidence, and the report holds a verdict each;
running again into one folder keeps finished claims, reports a crash as an error (never a verdict) and covers
every claim the folder holds."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

from conftest import ROOT
from metamaterial.claims import registry
from metamaterial.claims.base import ClaimResult
from metamaterial.claims.registry import CLAIMS
from metamaterial.claims.report import CONSTANTS_TITLE
from metamaterial.cli import main
from metamaterial.config import load_config
from metamaterial.runs import train_run


def test_quick_reproduction_writes_a_complete_report(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "reproduce", "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = (tmp_path / "REPORT.md").read_text()
    for key, module in CLAIMS.items():
        assert f"## {module.TITLE}" in report, key
        assert not (tmp_path / f"{key}_error.txt").exists(), key
    sections = report.split("\n## ")[1:]
    assert sections[-1].startswith(CONSTANTS_TITLE)
    assert len(sections) == len(CLAIMS) + 1
    sections = sections[:-1]
    for section in sections:
        assert "**Verdict: " in section and "**Paper.**" in section
        for line in section.splitlines():  # every linked figure and data file exists and is not empty
            for target in [part.split(")")[0] for part in line.split("](")[1:]]:
                if not target.startswith("#"):
                    assert (tmp_path / target).stat().st_size > 0, target


def test_unknown_claim_is_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "reproduce", "nonsense", "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "unknown claim(s) ['nonsense']" in proc.stderr


# -- running again into one folder (fake claims: one trains a real run directory, one crashes) ---------------
FAKE_EPOCHS = 5


def _fake_claims(calls: dict) -> dict:
    def trains(ctx):
        calls["trains"] += 1
        cfg = load_config(ROOT / "configs" / "xor.yaml", [f"learning.epochs={FAKE_EPOCHS}"])
        res = train_run(cfg, ctx.path("trains_run"), backend="native", progress=False, plots=False)
        return ClaimResult("trains", "Trains a run", "it trains", "reproduced", "it trained",
                           measured={"epochs": res.summary["epochs"]})

    def crashes(ctx):
        calls["crashes"] += 1
        raise ValueError("boom: the experiment broke")

    return {key: SimpleNamespace(KEY=key, TITLE=title, PAPER="a statement", run=run)
            for key, title, run in (("trains", "Trains a run", trains), ("crashes", "Crashes", crashes))}


def test_a_crash_is_an_error_not_a_verdict_and_reruns_keep_finished_claims(tmp_path, monkeypatch):
    calls = {"trains": 0, "crashes": 0}
    monkeypatch.setattr(registry, "CLAIMS", _fake_claims(calls))
    results, report, crashed = registry.reproduce([], tmp_path, log=lambda line: None)
    assert crashed == ["crashes"] and [r.verdict for r in results] == ["reproduced", "error"]
    assert results[1].reason == "the experiment failed: boom: the experiment broke (see crashes_error.txt)"
    text = report.read_text()
    assert "not reproduced" not in text and "| [Crashes](#crashes) | **error** |" in text
    assert "**Error (no verdict).** the experiment failed: boom" in text
    assert "ValueError: boom" in (tmp_path / "crashes_error.txt").read_text()

    # again into the same folder, only the crashed claim: the finished one is kept and still reported
    results, report, crashed = registry.reproduce(["crashes"], tmp_path, log=lambda line: None)
    assert calls == {"trains": 1, "crashes": 2} and crashed == ["crashes"]
    assert [r.key for r in results] == ["trains", "crashes"]
    assert "## Trains a run" in report.read_text() and "## Crashes" in report.read_text()

    # all claims again: the finished one is kept, the crashed one runs again
    registry.reproduce([], tmp_path, log=lambda line: None)
    assert calls == {"trains": 1, "crashes": 3}

    # --force runs the finished claim again from scratch (its run directory is not "already a run")
    results, _, _ = registry.reproduce(["trains"], tmp_path, force=True, log=lambda line: None)
    assert calls == {"trains": 2, "crashes": 3}
    assert results[0].verdict == "reproduced" and results[0].measured["epochs"] == FAKE_EPOCHS

    # a full run after a quick one runs the claim again: quick results are not kept for it
    registry.reproduce(["trains"], tmp_path, quick=True, log=lambda line: None)
    assert calls["trains"] == 3


def test_a_claim_finished_before_a_revision_of_its_runs_runs_again(tmp_path, monkeypatch):
    """A claim kept from an earlier run is run again when a revision of the dynamics since touched its runs
    (``revisions``: read noise under a hinge, the digits claim's chips); a revision of other claims keeps it."""
    import json  # noqa: PLC0415

    from metamaterial import revisions  # noqa: PLC0415

    assert "digits" in revisions.REVISIONS[0].claims  # the chips: read noise under the multi-class hinge
    assert revisions.revision_of(load_config(ROOT / "configs" / "digits_chips.yaml")) == 2
    calls = {"trains": 0, "crashes": 0}
    monkeypatch.setattr(registry, "CLAIMS", _fake_claims(calls))
    registry.reproduce(["trains"], tmp_path, log=lambda line: None)
    saved = tmp_path / f"trains{registry.RESULT_SUFFIX}"
    payload = json.loads(saved.read_text())
    assert payload.pop("revision") == revisions.CURRENT
    saved.write_text(json.dumps(payload))  # as written before revisions were recorded
    registry.reproduce(["trains"], tmp_path, log=lambda line: None)
    assert calls["trains"] == 1  # revision 2 touches the digits claim alone: kept
    later = revisions.Revision(3, "2026-12-03", "a change of this claim's runs", lambda cfg: False, claims=("trains",))
    monkeypatch.setattr(revisions, "REVISIONS", (*revisions.REVISIONS, later))
    monkeypatch.setattr(registry, "CURRENT", 3)
    said = []
    registry.reproduce(["trains"], tmp_path, log=said.append)
    assert calls["trains"] == 2 and "Trains a run (run before revision 3 of the dynamics, 2026-12-03" in said[0]
    registry.reproduce(["trains"], tmp_path, log=lambda line: None)
    assert calls["trains"] == 2  # made under revision 3 now: kept


def test_reproduce_twice_into_one_folder_from_the_command_line(tmp_path):
    argv = [sys.executable, "-m", "metamaterial", "reproduce", "learning_time", "--quick", "--out", str(tmp_path)]
    for extra, kept in (([], False), ([], True), (["--force"], False)):
        proc = subprocess.run(argv + extra, capture_output=True, text=True, cwd=ROOT, timeout=1200)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert ("kept from an earlier run" in proc.stdout) == kept, proc.stdout
        assert "## Learning time" in (tmp_path / "REPORT.md").read_text()
        assert not (tmp_path / "learning_time_error.txt").exists()


def test_ctrl_c_inside_a_claim_is_an_interrupt_not_a_crash(tmp_path, monkeypatch, capsys):
    """A Ctrl-C that lands while a C extension initialises (matplotlib's ft2font, imported by a claim's first
    figure) surfaces as ``ImportError: initialization failed`` raised from the KeyboardInterrupt: the command stops
    as interrupted (exit 130, one line), records no error and no verdict for the claim, and keeps what finished."""
    calls = {"trains": 0, "crashes": 0}
    claims = _fake_claims(calls)

    def interrupted(ctx):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as stop:
            raise ImportError("initialization failed") from stop

    claims["interrupted"] = SimpleNamespace(KEY="interrupted", TITLE="Interrupted", PAPER="a statement",
                                            run=interrupted)
    monkeypatch.setattr(registry, "CLAIMS", claims)
    code = main(["reproduce", "trains", "interrupted", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 130 and "Traceback" not in err
    assert err == f"metamaterial: interrupted; the claims finished so far are kept in {tmp_path}; the same command " \
                  "runs the others\n"
    assert not (tmp_path / "interrupted_error.txt").exists() and not list(tmp_path.glob("interrupted*.json"))
    assert calls["trains"] == 1 and "reproduced" in out  # the claim that finished is kept ...
    code = main(["reproduce", "trains", "--out", str(tmp_path)])
    assert code == 0 and calls["trains"] == 1 and "kept from an earlier run" in capsys.readouterr().out  # ... reused
