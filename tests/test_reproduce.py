"""`metamaterial reproduce --quick`: every claim runs, writes its evidence, and the report holds a verdict each."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT
from metamaterial.claims.registry import CLAIMS


def test_quick_reproduction_writes_a_complete_report(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "reproduce", "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = (tmp_path / "REPORT.md").read_text()
    for key, module in CLAIMS.items():
        assert f"## {module.TITLE}" in report, key
        assert not (tmp_path / f"{key}_error.txt").exists(), key
    sections = report.split("\n## ")[1:]
    assert len(sections) == len(CLAIMS)
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
