"""The `hardware` profiles (configs/xor_hardware.yaml, configs/regression_hardware.yaml) keep what the authors'
hardware code fixes (docs/hardware.md sections 2-3): the three-regime law, the 0.75 V gate floor, a start around
5.03 V, one point per step in order, and for XOR the symmetric +/-87 mV labels and the hinge. Only the values the
code leaves to each run (nudge, margin, rate, epochs, placement) may be tuned. The XOR profile, as tuned
(docs/hardware.md section 6.7), solves its tuning seeds."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT
from metamaterial.configfile import load_config
from metamaterial.experiment import build, initial_controls
from metamaterial.learning.trainer import SUCCESS_MARGIN_V
from metamaterial.runs import train_replicas

GATE_FLOOR_V = 0.75  # VMN = 18 with VMNMULT 8/129 and VMNSHIFT -0.37 (E2:41, E2:229-231)
GATE_START_V = 5.03  # VIT = 45 with VITMULT 2.25*8/129 and VITSHIFT -1.25 (E2:42, E2:228-230)
LABEL_V = 0.087
PROFILES = ["xor_hardware", "regression_hardware"]
#: tuning seeds the XOR profile is checked on (it solved 100 of seeds 0-99 when chosen; held out: 100 of 100-199)
XOR_TUNING_SEEDS = [0, 1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize("name", PROFILES)
def test_hardware_profile_keeps_the_authors_fixed_values(name):
    cfg = load_config(ROOT / "configs" / f"{name}.yaml")
    assert cfg.device.preset == "ald1106-hw"
    assert cfg.learning.bounds[0] == GATE_FLOOR_V
    assert cfg.learning.schedule == "cycle"
    assert cfg.learning.init.kind == "uniform"
    assert (cfg.learning.init.low + cfg.learning.init.high) / 2 == pytest.approx(GATE_START_V, abs=1e-9)
    gates = initial_controls(build(cfg), np.random.default_rng(cfg.seed))
    assert gates.min() >= GATE_FLOOR_V and abs(float(np.mean(gates)) - GATE_START_V) < 0.2
    assert cfg.device.mismatch is None and cfg.learning.read_noise == 0.0


def test_xor_hardware_labels_are_symmetric_and_the_loss_a_hinge():
    cfg = load_config(ROOT / "configs" / "xor_hardware.yaml")
    assert sorted(cfg.task.labels) == [-LABEL_V, LABEL_V]
    assert cfg.learning.loss == "hinge"


def test_xor_hardware_profile_solves_its_tuning_seeds():
    """Every case right by the success margin on each of a few tuning seeds, the hinge having stopped training (so
    the result is where the profile's own margin left it, not a moment of a still-moving run)."""
    cfg = load_config(ROOT / "configs" / "xor_hardware.yaml")
    done = train_replicas(cfg, XOR_TUNING_SEEDS, backend="native")
    try:
        margins = np.asarray(done.state.history[-1]["min_margin"], float)
        assert margins.min() >= max(SUCCESS_MARGIN_V, cfg.learning.margin)
        before = np.asarray(done.state.history[-2]["min_margin"], float)
        np.testing.assert_array_equal(margins, before)  # nothing moved over the last evaluation interval
    finally:
        done.trainer.solver.close()
