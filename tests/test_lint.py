"""Lint: ``ruff check`` (rules in pyproject.toml, [tool.ruff]) over the package, the tests and the scripts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT


def test_ruff_finds_no_violations():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
                           "metamaterial", "tests", "scripts"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    if "No module named ruff" in proc.stderr:
        pytest.fail("ruff is not installed: pip install -e '.[test]' (or run `make setup`)", pytrace=False)
    assert proc.returncode == 0, "ruff check found violations:\n" + proc.stdout + proc.stderr
