"""The desynchronous-learning and imperfection claims in quick mode: their evidence files, potentiometer taps,
p = 1 against the synchronous single run, and the error floor under the largest twin mismatch."""

from __future__ import annotations

import json

import numpy as np

from metamaterial.claims import desync, imperfection
from metamaterial.claims.base import Context, train_single

SEED = 1  # a replica other than the first, so that replica indexing is exercised


def _evidence(out, result, key: str) -> dict:
    assert result.verdict in ("reproduced", "partly", "not reproduced") and result.reason
    assert result.figures and result.data and result.lines
    for name in (*result.figures, *result.data):
        assert name.startswith(key) and (out / name).stat().st_size > 0, name
    assert {p.name for p in out.glob("*.png")} == set(result.figures)
    json.dumps(result.measured)  # the report can store it
    return json.loads((out / f"{key}_results.json").read_text())


def test_desync_quick(tmp_path):
    result = desync.run(Context(out=tmp_path, quick=True, progress=False))
    data = _evidence(tmp_path, result, desync.KEY)
    studies = data["studies"]

    for label, study in studies.items():
        runs = study["runs"]
        # every p is compared at the same number of updates per edge
        assert len({run["updates_per_edge"][-1] for run in runs.values()}) == 1, label
        if "n_taps" not in study:
            continue
        for p, run in runs.items():  # potentiometer taps stay integers on the device's taps, and learning happened
            taps = np.array(run["final_controls"])
            assert np.array_equal(taps, np.round(taps)), (label, p)
            assert taps.min() >= 0 and taps.max() <= study["n_taps"] - 1, (label, p)
            assert np.median(run["floor"]) < np.median(run["loss"][0]), (label, p)

    # p = 1: a replica of the desync ensemble is exactly the synchronous single run of its seed; p < 1 is not
    by_label = {s.label: s for s in desync.STUDIES}
    for label in ("regression", "pot_allostery"):
        cfg = desync.study_config(by_label[label], 1.0, quick=True, extra=(f"seed={SEED}",))
        _, _, state = train_single(cfg, "native")
        runs = studies[label]["runs"]
        np.testing.assert_allclose(state.controls, runs["1.0"]["final_controls"][SEED], rtol=0, atol=1e-12)
        assert abs(state.history[-1]["loss"] - runs["1.0"]["loss"][-1][SEED]) <= 1e-12 * state.history[-1]["loss"]
        assert not np.allclose(runs["0.5"]["final_controls"][SEED], runs["1.0"]["final_controls"][SEED])

    # the same training on ngspice agrees with native (taps exactly, gates and conductances to rounding), the
    # synchronous dead band included
    assert {"flow_allostery", "flow_regression", "pot_allostery_dead_band"} <= set(data["ngspice_checks"])
    for label, check in data["ngspice_checks"].items():
        assert check["max_control_diff"] < 1e-9, label

    # desync noise of the update direction grows as p falls; the full batch has none
    noise = data["minibatch"]["noise"]["desync"]
    means = [np.mean(noise[str(p)]) for p in desync.PS]
    assert abs(means[0]) < 1e-9 and all(a < b for a, b in zip(means, means[1:]))

    # (d) the linear flow networks and (e) every control are compared at equal updates per edge, evaluated at the
    # same update counts as Bernoulli desync
    for label, study in data["linear"]["studies"].items():
        first = study["runs"]["1.0"]["updates_per_edge"]
        for run in study["runs"].values():
            np.testing.assert_allclose(run["updates_per_edge"], first, rtol=1e-12, err_msg=label)
    for label, task in data["controls"]["tasks"].items():
        runs = task["runs"]
        for kind, run in runs.items():  # the dead band is a synchronous run: at the updates of the p = 1 run
            np.testing.assert_allclose(run["updates_per_edge"], runs["sync"]["updates_per_edge"], rtol=1e-12,
                                       err_msg=f"{label} {kind}")
        if "dead_band" in task:  # tuned on seeds never reported
            assert task["dead_band"] in desync.DEAD_BANDS
            assert not set(task["tuning"]["seeds"]) & set(data["seeds"])
    # the control that removes randomness at the same mean step, at p = 1 and rate x p, is a different run
    flow = data["controls"]["tasks"]["flow_allostery"]["runs"]
    assert not np.allclose(flow["sync_scaled"]["final_controls"], flow["bernoulli"]["final_controls"], rtol=1e-9,
                           atol=0)


def test_imperfection_quick(tmp_path):
    result = imperfection.run(Context(out=tmp_path, quick=True, progress=False))
    data = _evidence(tmp_path, result, imperfection.KEY)
    # Allostery (one data point) learns its target to 1e-10 V^2 or better in the quick budget; the largest mismatch,
    # read noise and bias must leave every draw's floor above every clean replica's. (Regression is not asserted:
    # in the quick budget of 150 epochs it is still on its linear-fit plateau, ~3e-4 V^2, with or without mismatch.)
    sweeps = data["tasks"]["allostery"]["sweeps"]
    for knob in imperfection.KNOBS:
        clean, worst = sweeps[knob]["runs"][0], sweeps[knob]["runs"][-1]
        assert sweeps[knob]["levels"][0] == 0 and sweeps[knob]["levels"][-1] > 0
        assert min(worst["floor"]) > max(clean["floor"]), knob  # every imperfect draw above every clean one
    assert len(sweeps["mismatch"]["runs"][-1]["floor"]) == len(data["draws"])  # one run per mismatch draw
    assert data["ngspice_check"]["max_control_diff"] < 1e-9


def test_per_draw_line_counts_draws_whose_floor_rose_and_the_benign_ones():
    levels = (0.0, 0.001, 0.005, 0.01)
    floors = {0.0: [1e-6] * 3, 0.001: [1e-5, 1e-4, 2e-4], 0.005: [1e-5, 5e-4, 1e-4], 0.01: [2e-5, 4e-4, 3e-4]}
    res = {lv: {"floor": np.array(f)} for lv, f in floors.items()}
    line = imperfection._per_draw_line("regression", "mismatch", levels, res, "mV")
    assert "floor above the level below's in 5: 1/3, 10: 2/3 draws" in line   # draw 0 at 5 mV equals 1 mV: not above
    assert "(the ramp's target) at every level: draws [0]" in line
    assert "1 mV: 0.0001 [5.5e-05-0.00015]" in line                            # median [IQR] of the three draws


def test_the_per_draw_line_of_two_levels_names_no_empty_count():
    """With one imperfect level (a quick run sweeps two) there is no level below to compare a floor with: the line
    said "floor above the level below's in  draws"; with two it counts the draws whose floor rose."""
    floors = {0.01: {"floor": np.array([1e-6, 2e-6])}, 0.02: {"floor": np.array([3e-6, 1e-6])}}
    one = imperfection._per_draw_line("allostery", "mismatch", (0.0, 0.01), floors, "mV")
    assert " in  draws" not in one and "one imperfect level only" in one
    two = imperfection._per_draw_line("allostery", "mismatch", (0.0, 0.01, 0.02), floors, "mV")
    assert "floor above the level below's in 20: 1/2 draws" in two
