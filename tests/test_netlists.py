"""Netlist text: deterministic bytes, index-derived names, and netlists/ up to date with the shipped configs."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import CONFIGS, ROOT, random_gates, xor_circuit
from metamaterial.config import load_config
from metamaterial.errors import ValidationError
from metamaterial.netlist import SpiceOptions, to_spice

try:
    from metamaterial.points import write_netlists
except ImportError:  # a checkout from before the netlist command moved to metamaterial.points
    from metamaterial.experiment import write_netlists


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


def test_batched_netlist_shares_gates_and_rails():
    text = to_spice(xor_circuit(), random_gates(32), np.zeros((3, 2)))
    assert text.count("\nIG0 ") == 1 and text.count("\nRG0 ") == 1 and text.count("\nVR0 ") == 1
    assert {"M0_0 ", "M0_1 ", "M0_2 "} <= {ln[:5] for ln in text.splitlines()}


def test_the_header_says_what_the_sources_are_and_how_many_nodes_it_leaves_unlabelled():
    """A SPICE reader meets 1 ohm gate resistors carrying amperes: the comment says they stand for the gate
    capacitors' voltages and that their power is not the network's; the digits' 84 nodes list 64 and count 20."""
    text = (ROOT / "netlists" / "digits_chips" / "free_0.cir").read_text().splitlines()
    assert text[2].endswith(" n63=in63 ... (20 more)")
    assert "* gates: IGe drives V_G amperes into RGe = 1 ohm" in "\n".join(text)
    xor = (ROOT / "netlists" / "xor" / "clamped_0.cir").read_text()
    assert "* sources: VR rails (above), VI inputs, VC clamped outputs (the nudged values)" in xor


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
        write_netlists(load_config(cfg_path), fresh, backend="ngspice")
        shipped = ROOT / "netlists" / cfg_path.stem
        names = sorted(p.name for p in fresh.iterdir())
        if not shipped.is_dir() or sorted(p.name for p in shipped.iterdir()) != names:
            stale.append(f"{cfg_path.stem}: file list differs")
            continue
        stale += [f"{cfg_path.stem}/{n}" for n in names if (fresh / n).read_bytes() != (shipped / n).read_bytes()]
    assert not stale, f"netlists/ is stale, run `make netlists`: {stale[:5]}"
