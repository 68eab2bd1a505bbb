"""The shipped netlists through standalone ngspice: KLU agrees with Sparse 1.3, and the gates' Norton sources agree
with the voltage sources they replaced."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import ROOT
from metamaterial.netlist import parse_print_all
from metamaterial.sim.ngspice import NgspiceSolver, run_batch_file

KLU_VS_SPARSE_V = 1e-9
GATE_FORM_V = 1e-9
NETLISTS = sorted((ROOT / "netlists").glob("*/*.cir"))
CONFIG_DIRS = sorted({p.parent.name for p in NETLISTS})
NMOS_CONFIG_DIRS = ("xor", "regression", "allostery", "iris")
WORKERS = 2


def _has_klu() -> bool:
    return NgspiceSolver().has_klu


def _solve_variant(path: Path, tmp: Path, edit) -> tuple[dict[str, float], str]:
    text = path.read_text()
    variant = tmp / f"{path.parent.name}_{path.name}"
    variant.write_text(edit(text))
    out = run_batch_file(str(variant))
    return parse_print_all(out), out


def _compare(config: str, tmp_path: Path, edit_a, edit_b) -> tuple[float, list[str], list[str]]:
    paths = [p for p in NETLISTS if p.parent.name == config]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with ThreadPoolExecutor(WORKERS) as pool:
        a = list(pool.map(lambda p: _solve_variant(p, tmp_path / "a", edit_a), paths))
        b = list(pool.map(lambda p: _solve_variant(p, tmp_path / "b", edit_b), paths))
    worst = 0.0
    for (va, _), (vb, _) in zip(a, b):
        nodes = [k for k in va if re.fullmatch(r"n\d+(_\d+)?|v\(n\d+(_\d+)?\)", k)]
        assert nodes and set(nodes) <= set(vb)
        worst = max(worst, max(abs(va[k] - vb[k]) for k in nodes))
    return worst, [o for _, o in a], [o for _, o in b]


def test_shipped_netlists_ask_for_klu():
    assert NETLISTS
    for path in NETLISTS:
        assert "\n.options klu\n" in path.read_text(), f"{path.relative_to(ROOT)} does not ask for KLU"


@pytest.mark.parametrize("config", CONFIG_DIRS)
def test_klu_agrees_with_sparse_on_every_shipped_netlist(config, tmp_path):
    if not _has_klu():
        pytest.skip("this ngspice is not compiled with KLU (ngspice >= 42 is)")
    keep = lambda text: text  # noqa: E731
    sparse = lambda text: text.replace("\n.options klu\n", "\n.options sparse\n")  # noqa: E731
    worst, klu_logs, sparse_logs = _compare(config, tmp_path, keep, sparse)
    assert all("Using KLU as Direct Linear Solver" in log for log in klu_logs)
    assert all("Using SPARSE" in log for log in sparse_logs)
    assert worst <= KLU_VS_SPARSE_V, f"{config}: KLU and Sparse differ by {worst} V"


@pytest.mark.parametrize("config", [c for c in NMOS_CONFIG_DIRS if c in CONFIG_DIRS])
def test_norton_gate_sources_agree_with_voltage_sources(config, tmp_path):
    """``IG{e} 0 g{e} dc v`` into ``RG{e}`` = 1 ohm holds the gate where ``VG{e} g{e} 0 dc v`` did."""
    def voltage_gates(text: str) -> str:
        text = re.sub(r"^RG\d+ g\d+ 0 1\.0\n", "", text, flags=re.M)
        new, n = re.subn(r"^IG(\d+) 0 g(\d+) dc (\S+)$", r"VG\1 g\2 0 dc \3", text, flags=re.M)
        assert n > 0
        return new

    worst, _, _ = _compare(config, tmp_path, lambda text: text, voltage_gates)
    assert worst <= GATE_FORM_V, f"{config}: Norton and voltage gate sources differ by {worst} V"
