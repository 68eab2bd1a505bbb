"""`metamaterial reproduce --quick`: every claim runs, writes its evidence, and the report holds a verdict each;
running again into one folder keeps finished claims, reports a crash as an error (never a verdict) and covers
every claim the folder holds."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from conftest import ROOT, cli_refused
from metamaterial.claims import registry
from metamaterial.claims.base import ClaimResult
from metamaterial.claims.registry import CLAIMS
from metamaterial.claims.report import CONSTANTS_TITLE
from metamaterial.cli import main
from metamaterial.configfile import load_config
from metamaterial.errors import ConfigError
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
    """An unknown claim was named in Python's list syntax (['damag']), and so were the claims to choose from."""
    claims = ", ".join(sorted(CLAIMS))
    assert cli_refused("reproduce", "damag", "--out", str(tmp_path / "out")) == (
        f"metamaterial: reproduce: unknown claim (got damag); choose from {claims}\n")
    assert cli_refused("reproduce", "damag", "xor", "modez", "--out", str(tmp_path / "out" / "a" / "b")) == (
        f"metamaterial: reproduce: unknown claims (got damag, modez); choose from {claims}\n")
    assert not (tmp_path / "out").exists()  # nor the parents it created (runs/ of the default runs/reproduce)


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
    results, _, report, crashed = registry.reproduce([], tmp_path, log=lambda line: None)
    assert crashed == ["crashes"] and [r.verdict for r in results] == ["reproduced", "error"]
    assert results[1].reason == "the experiment failed: boom: the experiment broke (see crashes_error.txt)"
    text = report.read_text()
    assert "not reproduced" not in text and "| [Crashes](#crashes) | full, native | **error** |" in text
    assert "**Error (no verdict).** the experiment failed: boom" in text
    assert "ValueError: boom" in (tmp_path / "crashes_error.txt").read_text()

    # again into the same folder, only the crashed claim: the finished one is kept and still reported
    results, _, report, crashed = registry.reproduce(["crashes"], tmp_path, log=lambda line: None)
    assert calls == {"trains": 1, "crashes": 2} and crashed == ["crashes"]
    assert [r.key for r in results] == ["trains", "crashes"]
    assert "## Trains a run" in report.read_text() and "## Crashes" in report.read_text()

    # all claims again: the finished one is kept, the crashed one runs again
    registry.reproduce([], tmp_path, log=lambda line: None)
    assert calls == {"trains": 1, "crashes": 3}

    # --force runs the finished claim again from scratch (its run directory is not "already a run")
    results, _, _, _ = registry.reproduce(["trains"], tmp_path, force=True, log=lambda line: None)
    assert calls == {"trains": 2, "crashes": 3}
    assert results[0].verdict == "reproduced" and results[0].measured["epochs"] == FAKE_EPOCHS

    # a quick run after a full one keeps the full result: the quick one is not run
    registry.reproduce(["trains"], tmp_path, quick=True, log=lambda line: None)
    assert calls["trains"] == 2


# -- quick and full, one backend and another (cheap fake claims whose numbers say how they ran) ---------------
def _cheap_claims(calls: dict) -> dict:
    def make(key, title):
        def run(ctx):
            calls[key] += 1
            how = f"{'quick' if ctx.quick else 'full'} on {ctx.backend}"
            return ClaimResult(key, title, "a statement", "reproduced", f"measured {how}", measured={"how": how})
        return SimpleNamespace(KEY=key, TITLE=title, PAPER="a statement", run=run)

    return {"one": make("one", "One"), "two": make("two", "Two")}


def _saved(folder, key: str) -> dict:
    import json  # noqa: PLC0415

    return json.loads((folder / f"{key}{registry.RESULT_SUFFIX}").read_text())


def _section(report: str, title: str) -> str:
    return next(s for s in report.split("\n## ")[1:] if s.startswith(title + "\n"))


def test_a_quick_run_keeps_a_full_result_and_the_report_marks_each_claim(tmp_path, monkeypatch):
    """A full result is never replaced by a quick run of the same claim (it is kept, and the run says so); REPORT.md
    of a folder holding full and quick claims says per claim how it ran, and its quick disclaimer names the quick
    ones only."""
    calls = {"one": 0, "two": 0}
    monkeypatch.setattr(registry, "CLAIMS", _cheap_claims(calls))
    registry.reproduce(["one"], tmp_path, log=lambda line: None)
    said = []
    results, _, report, _ = registry.reproduce(["one", "two"], tmp_path, quick=True, log=said.append)
    assert calls == {"one": 1, "two": 1}
    assert said[0] == "[1/2] One: kept the full result of an earlier run (reproduced); the quick one was not run (a " \
                      "quick run never replaces a full one; --force runs it quick in its place)"
    assert _saved(tmp_path, "one")["quick"] is False and results[0].measured["how"] == "full on native"
    assert results[1].measured["how"] == "quick on native"
    text = report.read_text()
    assert "reproduce --quick" not in text
    assert "**Quick runs**: the claims marked quick in the table (two) ran few seeds and short training; their " \
           "verdicts check the machinery, not the claims; the others ran in full." in text
    assert "| [One](#one) | full, native | **reproduced** |" in text
    assert "| [Two](#two) | quick, native | **reproduced** |" in text
    assert _section(text, "One").split("\n\n")[1] == "**Run.** full, on the native backend."
    assert _section(text, "Two").split("\n\n")[1].startswith("**Run.** quick (few seeds, short training: this "
                                                              "verdict checks the machinery, not the claim)")

    # --force replaces it on purpose, and says so
    said.clear()
    results, _, report, _ = registry.reproduce(["one"], tmp_path, quick=True, force=True, log=said.append)
    assert calls["one"] == 2 and said[0] == "[1/1] One (replaces its full result on native) ..."
    assert results[0].measured["how"] == "quick on native"
    assert "**Quick runs**: every claim here ran few seeds" in report.read_text()


def test_the_summary_the_command_prints_marks_each_claim_quick_or_full_as_the_report_does(tmp_path, monkeypatch,
                                                                                        capsys):
    """The lines ``metamaterial reproduce`` ends with say per claim how it ran, as REPORT.md's run column: a quick
    verdict checks the machinery, not the claim, and must not read as a full one."""
    monkeypatch.setattr(registry, "CLAIMS", _cheap_claims({"one": 0, "two": 0}))
    assert main(["reproduce", "one", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["reproduce", "two", "--quick", "--out", str(tmp_path)]) == 0
    summary = capsys.readouterr().out.split(f"report: {tmp_path / 'REPORT.md'}\n")[1]
    assert summary == f"  {'reproduced':>15}  One (full, native)\n  {'reproduced':>15}  Two (quick, native)\n"
    report = (tmp_path / "REPORT.md").read_text()
    assert "| [One](#one) | full, native |" in report and "| [Two](#two) | quick, native |" in report


def test_a_full_run_replaces_a_quick_result_and_says_so(tmp_path, monkeypatch):
    calls = {"one": 0, "two": 0}
    monkeypatch.setattr(registry, "CLAIMS", _cheap_claims(calls))
    registry.reproduce(["one"], tmp_path, quick=True, log=lambda line: None)
    said = []
    results, _, report, _ = registry.reproduce(["one"], tmp_path, log=said.append)
    assert calls["one"] == 2 and said[0] == "[1/1] One (replaces its quick result on native) ..."
    assert _saved(tmp_path, "one")["quick"] is False and results[0].measured["how"] == "full on native"
    text = report.read_text()
    assert "| [One](#one) | full, native |" in text and "Quick runs" not in text
    # a quick result on another backend is cheap: replaced too, and said
    registry.reproduce(["two"], tmp_path, quick=True, log=lambda line: None)
    said.clear()
    registry.reproduce(["two"], tmp_path, quick=True, backend="ngspice", log=said.append)
    assert calls["two"] == 2 and said[0] == "[1/1] Two (replaces its quick result on native) ..."
    assert _saved(tmp_path, "two")["backend"] == "ngspice"


def test_a_full_result_on_another_backend_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    """A run on another backend would overwrite a full result (its figures and data share their names): refused
    before anything runs, exit 2, one line naming it and how to replace it on purpose; --force replaces it."""
    calls = {"one": 0, "two": 0}
    monkeypatch.setattr(registry, "CLAIMS", _cheap_claims(calls))
    assert main(["reproduce", "one", "--out", str(tmp_path)]) == 0
    before = (tmp_path / f"one{registry.RESULT_SUFFIX}").read_text()
    capsys.readouterr()
    for extra, how in (([], "full"), (["--quick"], "quick")):
        code = main(["reproduce", "two", "one", "--backend", "ngspice", "--out", str(tmp_path), *extra])
        out, err = capsys.readouterr()
        assert code == 2 and out == "" and "Traceback" not in err
        assert err == f"metamaterial: reproduce: {tmp_path} holds full results that this {how} run on ngspice would " \
                      "replace: one (full result on native); give --force to replace them, or another --out to keep " \
                      "them\n"
    assert calls == {"one": 1, "two": 0}  # nothing ran, not even the claim the folder does not hold
    assert (tmp_path / f"one{registry.RESULT_SUFFIX}").read_text() == before
    assert main(["reproduce", "one", "--backend", "ngspice", "--force", "--out", str(tmp_path)]) == 0
    assert "One (replaces its full result on native) ..." in capsys.readouterr().out
    assert calls["one"] == 2 and _saved(tmp_path, "one")["backend"] == "ngspice"
    assert "| [One](#one) | full, ngspice |" in (tmp_path / "REPORT.md").read_text()


def test_an_outdated_full_result_is_neither_replaced_by_a_quick_run_nor_reported_as_current(tmp_path, monkeypatch):
    """A full result made before a revision of its claim's runs cannot be kept for a quick run, nor silently
    replaced by one: refused; a claim not named in a later run stays in REPORT.md, marked outdated."""
    from metamaterial import revisions  # noqa: PLC0415

    calls = {"one": 0, "two": 0}
    monkeypatch.setattr(registry, "CLAIMS", _cheap_claims(calls))
    registry.reproduce(["one"], tmp_path, log=lambda line: None)
    later = revisions.Revision(revisions.CURRENT + 1, "2026-12-03", "a change of one's runs", lambda cfg: False,
                               claims=("one",))
    monkeypatch.setattr(revisions, "REVISIONS", (*revisions.REVISIONS, later))
    monkeypatch.setattr(registry, "CURRENT", later.number)
    with pytest.raises(ConfigError, match=rf"one \(full result on native, made before revision {later.number} of "
                                          r"the dynamics: a full run renews it\); give --force"):
        registry.reproduce(["one"], tmp_path, quick=True, log=lambda line: None)
    assert calls["one"] == 1
    _, _, report, _ = registry.reproduce(["two"], tmp_path, log=lambda line: None)
    text = report.read_text()
    assert "| [One](#one) | full, native, outdated |" in text and "| [Two](#two) | full, native |" in text
    assert "**Outdated**: one ran before a later revision of the dynamics" in text
    assert f"Outdated: made before revision {later.number} of the dynamics (2026-12-03: a change of one's runs); " \
           "`metamaterial reproduce one --out DIR` runs it again." in _section(text, "One")
    registry.reproduce(["one"], tmp_path, log=lambda line: None)  # a full run renews it
    assert calls["one"] == 2 and "Outdated" not in (tmp_path / "REPORT.md").read_text()


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
        assert proc.stdout.endswith("  Learning time in seconds (quick, native)\n"), proc.stdout  # the summary
        assert "## Learning time" in (tmp_path / "REPORT.md").read_text()
        assert not (tmp_path / "learning_time_error.txt").exists()


def test_a_quick_run_from_the_command_line_keeps_a_full_result(tmp_path):
    """The reported sequence: learning_time in full, xor quick, learning_time quick into one folder: the full
    learning_time result and its numbers stay, and REPORT.md marks xor alone as quick."""
    def reproduce(*args):
        proc = subprocess.run([sys.executable, "-m", "metamaterial", "reproduce", *args, "--out", str(tmp_path)],
                              capture_output=True, text=True, cwd=ROOT, timeout=1200)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return proc.stdout

    reproduce("learning_time")
    full = (tmp_path / "learning_time.json").read_text()
    reproduce("xor", "--quick")
    assert "kept the full result of an earlier run" in reproduce("learning_time", "--quick")
    assert (tmp_path / "learning_time.json").read_text() == full
    report = (tmp_path / "REPORT.md").read_text()
    assert "| [Learning time in seconds](#learning_time) | full, native |" in report
    assert "| [XOR needs nonlinearity](#xor) | quick, native |" in report
    assert "the claims marked quick in the table (xor)" in report


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
