"""The desynchronous-learning controls: the dead band of the update (``learning.dead_band``) and the two ways of
drawing the edges that update (``learning.update_mask``: Bernoulli or a fixed count).

The dead band is a property of the one update (``step.update_controls``): an edge whose |contrast| is below the
band does not move, one at or above it moves as without a band; the compiled loop and the Python step take the
same decisions (the whole-run comparison is in tests/test_compiled_loop.py). The masks must draw what they say.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT
from metamaterial import step
from metamaterial.configfile import load_config
from metamaterial.errors import ConfigError
from metamaterial.experiment import build, initial_controls, make_trainer
from metamaterial.learning.trainer import draw_masks

BAND = 1e-3  # V^2


def _update(fn, u, sign_rule, dead_band, bias=None):
    controls = np.full(u.shape, 50.0)
    mask = np.ones(u.shape, np.bool_)
    bias = np.zeros(0) if bias is None else bias
    return fn(controls, u, mask, sign_rule, 2.0, bias, 0.0, 99.0, 1.0, 0.0, dead_band) - controls


@pytest.mark.parametrize("sign_rule", [True, False])
def test_a_contrast_inside_the_band_moves_nothing_and_one_outside_moves_as_without_a_band(sign_rule):
    u = np.array([[0.0, 0.5e-3, -0.999e-3, 1e-3, -1e-3, 2e-3, -0.3]])
    inside = np.abs(u) < BAND
    for fn in (step.update_controls, step.compiled().update_controls):  # Python and compiled: the same function
        banded, free = _update(fn, u, sign_rule, BAND), _update(fn, u, sign_rule, 0.0)
        assert np.all(banded[inside] == 0)
        np.testing.assert_array_equal(banded[~inside], free[~inside])
        assert np.all(free[~inside] != 0)
    # a learning bias is part of the update the comparator gates: inside the band it is not applied either
    bias = np.full(u.shape[1], 0.25)
    banded = _update(step.compiled().update_controls, u, sign_rule, BAND, bias)
    assert np.all(banded[inside] == 0) and np.all(banded[~inside] != 0)


def test_a_zero_band_is_the_update_without_one():
    u = np.random.default_rng(0).normal(0, 1e-3, (3, 40))
    for sign_rule in (True, False):
        np.testing.assert_array_equal(_update(step.compiled().update_controls, u, sign_rule, 0.0),
                                      _update(step.update_controls, u, sign_rule, 0.0))


def test_the_python_step_and_the_compiled_loop_hold_the_same_taps_in_the_band():
    """pot_allostery at p = 1 with a dead band, step by step on native: each step of the Python step moves exactly
    the taps whose summed contrast is at or past the band, and the compiled loop ends on the same taps."""
    overrides = ["simulator.backend=native", "learning.epochs=40", f"learning.dead_band={BAND}"]
    setup = build(load_config(ROOT / "configs" / "pot_allostery.yaml", overrides))
    finals, held = {}, 0
    for fused in (False, True):
        tr = make_trainer(setup)
        tr = type(tr)(tr.circuit, tr.task, tr.rule, tr.dynamics, tr.params, tr.solver, tr.hardware, compiled=fused)
        rng = np.random.default_rng(0)
        state = tr.init_state(initial_controls(setup, rng), rng)
        if not fused:  # one step at a time, checking each step's moves against its contrast
            c = setup.circuit
            for _ in range(40):
                x = setup.task.inputs
                before = state.controls.copy()
                free = tr.solver.solve(c, before[0], x).voltages
                out = step.output_values(free, c.out_pos, c.out_neg)
                push = step.output_pushes(out, setup.task.targets, np.zeros(1, np.int64), setup.rule.nudge, False)
                clamped = tr.solver.solve(c, before[0], x, step.clamp_values(free, push, c.out_pos, c.out_neg))
                u = step.summed_contrast(free, clamped.voltages, c.edges[:, 0], c.edges[:, 1], np.ones(1, np.bool_), 1)
                state.controls, _, _ = tr.step_many(before, np.zeros((1, 1), np.int64), [rng])
                moved = state.controls != before
                expected = np.abs(u) >= BAND
                expected &= ~((before == 0) & (u < 0)) & ~((before == c.device.n_taps - 1) & (u > 0))  # at a limit
                np.testing.assert_array_equal(moved, expected)
                held += int((~expected).sum())
            finals[fused] = state.controls
        else:
            finals[fused] = tr.run(state).controls
    assert held > 0, "some taps must sit inside the band for the check to mean anything"
    np.testing.assert_array_equal(finals[True], finals[False])


def test_bernoulli_and_fixed_count_masks_draw_what_they_say():
    n_steps, n_edges, p = 4000, 50, 0.1
    fixed = draw_masks(np.random.default_rng(0), n_steps, n_edges, p, "fixed_count")
    assert np.all(fixed.sum(axis=1) == round(p * n_edges))  # exactly round(p E) per step
    bern = draw_masks(np.random.default_rng(0), n_steps, n_edges, p, "bernoulli")
    counts = bern.sum(axis=1)
    # Binomial(50, 0.1) counts: mean 5, variance 4.5 (standard errors over 4000 steps: 0.034 and ~0.1)
    assert abs(counts.mean() - p * n_edges) < 0.15 and abs(counts.var() - n_edges * p * (1 - p)) < 0.5
    for masks in (fixed, bern):  # every edge is equally likely to be chosen (per-edge rate p, within 5 sigma)
        assert np.all(np.abs(masks.mean(axis=0) - p) < 5 * np.sqrt(p * (1 - p) / n_steps))
    assert draw_masks(np.random.default_rng(0), 10, 7, 0.01, "fixed_count").sum(axis=1).tolist() == [1] * 10


def test_dead_band_and_mask_kind_are_validated_naming_the_key():
    path = ROOT / "configs" / "pot_allostery.yaml"
    for override, key in (("learning.dead_band=-0.001", "learning.dead_band"),
                          ("learning.update_mask=sometimes", "learning.update_mask")):
        with pytest.raises(ConfigError, match=key):
            load_config(path, [override])
    cfg = load_config(path, [])
    assert cfg.learning.dead_band == 0.0 and cfg.learning.update_mask == "bernoulli"
