"""Sweep specs expand deterministically and are validated before anything runs; results are stored once per point;
seeds batch into ensembles only when that changes nothing; the table holds what the points recorded."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from conftest import ROOT
from metamaterial.cli import main
from metamaterial.configfile import dump_config, load_config
from metamaterial.errors import ConfigError, ValidationError
from metamaterial.experiment import build
from metamaterial.sweep import execute, expand_sweep, load_sweep, worker
from metamaterial.sweep import spec as spec_module
from metamaterial.sweep.execute import plan_tasks, run_sweep
from metamaterial.sweep.report import load_table, plot_sweep, write_table
from metamaterial.sweep.spec import config_key, config_text, points_document, saved_config_key
from metamaterial.sweep.store import (
    SUMMARY_LABELS,
    SUMMARY_METRICS,
    log_event,
    read_events,
    read_result,
    write_result,
)
from metamaterial.sweep.worker import run_points

REGRESSION = str(ROOT / "configs" / "regression.yaml")
N_SEEDS = 3
EPOCHS = 40


#: what ``_spec`` sets on the base config unless given its own ``set``
_SET = ["simulator.backend=native", f"learning.epochs={EPOCHS}", "learning.init={kind: uniform, low: 1.0, high: 5.0}"]


#: ``_SET`` for a spec that sweeps learning.epochs (a set of a swept key is refused)
_SET_BUT_EPOCHS = [s for s in _SET if not s.startswith("learning.epochs=")]


def _spec(tmp_path, **body) -> str:
    doc = {"base": REGRESSION, "set": _SET, **body}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def test_groups_combine_as_a_product_in_a_fixed_order(tmp_path):
    spec = load_sweep(_spec(tmp_path, grid={"learning.nudge": [0.5, 1.0], "learning.rate": {"linspace": [1, 3, 3]}},
                            zip={"learning.bounds[0]": [0.4, 0.3], "learning.bounds[1]": [8.0, 7.5]}, seeds=N_SEEDS))
    assert spec.axes == ("learning.nudge", "learning.rate", "learning.bounds[0]", "learning.bounds[1]", "seed")
    assert len(spec.points) == 2 * 3 * 2 * N_SEEDS
    first = [tuple(p.values.values()) for p in spec.points[:7]]
    assert first == [(0.5, 1.0, 0.4, 8.0, 0), (0.5, 1.0, 0.4, 8.0, 1), (0.5, 1.0, 0.4, 8.0, 2),
                     (0.5, 1.0, 0.3, 7.5, 0), (0.5, 1.0, 0.3, 7.5, 1), (0.5, 1.0, 0.3, 7.5, 2),
                     (0.5, 2.0, 0.4, 8.0, 0)]
    p = spec.points[7]
    assert (p.config.learning.nudge, p.config.learning.rate, *p.config.learning.bounds, p.config.seed) \
        == (0.5, 2.0, 0.4, 8.0, 1)
    assert p.config.learning.epochs == EPOCHS and p.config.simulator.backend == "native"
    assert p.key == hashlib.sha256(dump_config(p.config).encode()).hexdigest()[:16]
    again = load_sweep(spec.source)
    assert [q.key for q in again.points] == [q.key for q in spec.points]
    assert len({q.key for q in spec.points}) == len(spec.points)


def test_value_ranges_and_random_draws_are_reproducible(tmp_path):
    spec = load_sweep(_spec(tmp_path, grid={"device.params.kp": {"logspace": [1e-4, 1e-2, 3]}},
                            random={"n": 5, "seed": 7, "axes": {"device.params.vto": {"uniform": [0.5, 0.7]},
                                                                "learning.schedule": ["cycle", "shuffle"]}},
                            seeds=[4, 9]))
    kps = sorted({p.values["device.params.kp"] for p in spec.points})
    assert kps == [1e-4, 1e-3, 1e-2]
    vtos = [p.values["device.params.vto"] for p in spec.points[:10:2]]
    assert all(0.5 <= v <= 0.7 for v in vtos) and len(set(vtos)) == 5
    assert [p.values["seed"] for p in spec.points[:4]] == [4, 9, 4, 9]
    same = load_sweep(spec.source)
    assert [p.values for p in same.points] == [p.values for p in spec.points]
    other = load_sweep(_spec(tmp_path, random={"n": 5, "seed": 8, "axes": {"device.params.vto": {"uniform":
                                                                                                   [0.5, 0.7]}}}))
    assert [p.values["device.params.vto"] for p in other.points] != vtos


def test_a_random_group_draws_an_integer_key_from_randint(tmp_path):
    """A uniform draw over an integer key (learning.epochs) is no whole number and is refused; {randint: [a, b]}
    draws integers from a to b, both ends included, reproducibly from the group's seed."""
    spec = load_sweep(_spec(tmp_path, set=_SET_BUT_EPOCHS,
                            random={"n": 12, "seed": 3, "axes": {"learning.epochs": {"randint": [20, 23]},
                                                                 "learning.nudge": {"uniform": [0.2, 1.0]}}}))
    epochs = [p.config.learning.epochs for p in spec.points]
    assert all(type(e) is int and 20 <= e <= 23 for e in epochs) and set(epochs) == {20, 21, 22, 23}
    assert [p.values["learning.epochs"] for p in spec.points] == epochs
    assert [p.values for p in load_sweep(spec.source).points] == [p.values for p in spec.points]
    with pytest.raises(ConfigError, match=r"learning.epochs"):
        load_sweep(_spec(tmp_path, set=_SET_BUT_EPOCHS,
                         random={"n": 2, "axes": {"learning.epochs": {"uniform": [20, 23]}}}))


def test_a_range_of_whole_numbers_sweeps_an_integer_key(tmp_path):
    """{linspace: [20, 60, 3]} over learning.epochs gave 20.0, 40.0, 60.0, which the config refused as no integer
    ("write the whole number without a decimal point"), though the spec has none. Whole numbers between whole ends
    are integers, and the fractions of such a range floats, so an integer key refuses the first that is not whole
    (not 10.0 of [10, 20, 4], with advice to drop a decimal point the spec never wrote); a range with a float end
    stays floats."""
    spec = load_sweep(_spec(tmp_path, set=_SET_BUT_EPOCHS, grid={"learning.epochs": {"linspace": [20, 60, 3]},
                                            "simulator.itl1": {"logspace": [10, 1000, 3]}}))
    assert [(p.config.learning.epochs, p.config.simulator.itl1) for p in spec.points[:4]] == [
        (20, 10), (20, 100), (20, 1000), (40, 10)]
    assert [p.values["learning.epochs"] for p in spec.points[::3]] == [20, 40, 60]
    floats = load_sweep(_spec(tmp_path, grid={"learning.rate": {"linspace": [1, 2, 3]},
                                              "learning.nudge": {"linspace": [0.5, 1.0, 2]}}))
    assert [p.values["learning.rate"] for p in floats.points[::2]] == [1.0, 1.5, 2.0]
    with pytest.raises(ConfigError, match=r"grid learning\.epochs=20\.0: learning\.epochs: Input should be a valid "
                                          r"integer \(got 20\.0\); write the whole number"):
        load_sweep(_spec(tmp_path, set=_SET_BUT_EPOCHS, grid={"learning.epochs": {"linspace": [20.0, 30.0, 3]}}))
    with pytest.raises(ConfigError, match=r"grid learning\.epochs=13\.3333333333: learning\.epochs: Input should be a "
                                          r"valid integer \(got 13\.3333333333\); give a whole number$"):
        load_sweep(_spec(tmp_path, set=_SET_BUT_EPOCHS, grid={"learning.epochs": {"linspace": [10, 20, 4]}}))


def test_a_spec_given_as_the_base_of_a_spec_is_named_for_what_it_is(tmp_path, capsys):
    """base: naming another spec was read as a config, whose keys were refused in that spec's name: "inner.yaml:
    base: unknown key; remove it", which told the user to edit the file that was right. Nothing is written."""
    inner = Path(_spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]})).rename(tmp_path / "inner.yaml")
    outer = tmp_path / "outer.yaml"
    outer.write_text(yaml.safe_dump({"base": "inner.yaml", "seeds": 2}))
    assert main(["sweep", str(outer), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (
        f"metamaterial: {outer}: base: {inner} is a sweep spec, not a config (got the spec keys base, set, grid); give "
        "the config it sweeps, its own base:, or move this spec's axes into that spec\n")
    assert not (tmp_path / "out").exists()


def test_a_set_of_a_swept_key_is_refused_not_lost(tmp_path, capsys):
    """A spec's set: or the command line's --set of a key an axis sweeps (or of a key inside it) was overwritten
    by the axis at every point, without a word: the value asked for was used by none. It is refused, naming both;
    a set of the base seed under a seeds group, or of a list the axis sweeps one item of, still counts."""
    path = _spec(tmp_path, set=[*_SET, "learning.bounds[1]=7.0"], grid={"learning.bounds": [[0.3, 8.0], [0.4, 8.0]]})
    with pytest.raises(ConfigError) as err:
        load_sweep(path)
    assert str(err.value) == (f"{path}: set[3] (learning.bounds[1]=7.0): learning.bounds[1]: swept by the axis grid "
                              "learning.bounds, which sets it at every point, so this value would be used by none; "
                              "remove it, or the axis")
    path = _spec(tmp_path, grid={"learning.bounds.0": [0.4, 0.5]}, seeds=[0, 1])
    out = tmp_path / "out"
    assert main(["sweep", path, "--out", str(out), "--dry-run", "--set", "learning.bounds[0]=0.3"]) == 2
    assert capsys.readouterr().err == (
        "metamaterial: --set learning.bounds[0]=0.3: learning.bounds[0]: swept by the axis grid learning.bounds.0, "
        "which sets it at every point, so this value would be used by none; remove it, or the axis\n")
    assert not out.exists()
    kept = load_sweep(path, ["learning.bounds=[0.3, 7.0]", "seed=4"])
    assert [tuple(p.config.learning.bounds) for p in kept.points[:2]] == [(0.4, 7.0), (0.4, 7.0)]
    counted = load_sweep(_spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]}, seeds=2), ["seed=4"])
    assert [p.config.seed for p in counted.points] == [4, 5, 4, 5]


def _billion() -> list:
    """10^9 items in 9 shared lists: safe_dump writes them as YAML anchors and aliases, a few hundred bytes."""
    items = [1.0] * 10
    for _ in range(8):
        items = [items] * 10
    return items


@pytest.mark.parametrize("body, fragment", [
    ({"grid": {"learning.nudge": [0.5, 1.5]}}, "grid learning.nudge=1.5: learning.nudge: Input should be less than"),
    ({"grid": {"learning.nudg": [0.5]}}, "grid learning.nudg=0.5: learning.nudg: unknown key"),
    ({"zip": {"learning.nudge": [0.5, 1.0], "learning.rate": [1.0]}}, "zip: zipped axes need equal lengths"),
    ({"grid": {"learning.bounds[5]": [0.2]}}, "learning.bounds is a list of 2 item(s)"),
    ({"grid": {"learning.nudge": {"linspace": [0.1, 0.5]}}}, "grid.learning.nudge: linspace needs [a, b, n]"),
    ({"random": {"n": 3, "axes": {"device.params.kp": {"loguniform": [0, 1e-3]}}}}, "loguniform needs [a, b]"),
    ({"random": {"n": 3, "axes": {"learning.epochs": {"randint": [10, 30.5]}}}}, "learning.epochs: randint needs "
                                                                                  "[a, b], two integers with a < b"),
    ({"random": {"n": 3, "axes": {"learning.epochs": {"randint": [30, 10]}}}}, "randint needs [a, b]"),
    ({"seeds": 0}, "seeds: must be a count N >= 1"),
    ({"grids": {"learning.nudge": [0.5]}}, "grids: unknown key of a sweep spec"),
    ({"grid": {"learning.nudge": [0.5]}, "zip": {"learning.nudge": [1.0]}}, "learning.nudge: swept by two axes"),
    # one key in two spellings made "the same config" of points that differ in the spec; an axis inside another
    # axis's mapping wrote into that axis's own value, which its other points then showed
    ({"grid": {"learning.bounds[0]": [0.3, 0.4], "learning.bounds.0": [0.35]}},
     "learning.bounds.0: swept by two axes (learning.bounds[0] and learning.bounds.0); give each key path one axis"),
    ({"grid": {"learning.init": [{"kind": "uniform", "low": 1.0, "high": 5.0}]}, "zip": {"learning.init.low": [1.5]}},
     "learning.init.low: swept by two axes (learning.init and learning.init.low); give each key path one axis"),
    ({"grid": {"task.low": [0.3], "task.high": [0.2]}}, "grid task.low=0.3: task.low, task.name: the "
                                                        "regression task does not read low (got 0.3); remove it"),
    ({"set": ["simulator.backend=native", "learning.epochs"]}, "spec.yaml: set[1]: learning.epochs: expected "
                                                               "key.path=value (got no '='); e.g. learning.epochs=200"),
    ({"name": "../../../escaped", "grid": {"learning.nudge": [0.5]}}, "name: must be a plain name matching"),
    ({"name": "a/b c", "grid": {"learning.nudge": [0.5]}}, "name: must be a plain name matching"),
    ({"seeds": [3, 5, 3]}, "seeds: the seeds at index 0 and 2 are the same (got 3 twice)"),
    ({"grid": {"learning.loss": ["mse", "hinge"]}}, "point 1 (learning.loss='hinge'): learning.loss, task.name: "
                                                     "'hinge' needs a classification task"),
    ({"grid": {"learning.nudge": [0.5, 1.0], "learning.bounds[0]": [0.4, 1.5]}},
     "point 1 (learning.nudge=0.5, learning.bounds[0]=1.5): learning.init.low, learning.bounds: nmos initial "
     "controls must lie within the bounds [1.5, 8] V (got 1)"),
    ({"grid": {"learning.nudge": [0.5, 1.0, 0.5]}},
     "grid.learning.nudge: the values at index 0 and 2 are the same (got 0.5 twice)"),
    ({"grid": {"learning.nudge": {"linspace": [0.5, 0.5, 2]}}},
     "grid.learning.nudge: the values at index 0 and 1 are the same"),
    ({"zip": {"learning.nudge": [0.5, 0.5], "learning.rate": [1.0, 1.0]}},
     "zip: the rows at index 0 and 1 are the same (got {'learning.nudge': 0.5, 'learning.rate': 1.0} twice)"),
    ({"random": {"n": 2, "axes": {"learning.schedule": ["cycle"]}}}, "random: the draws at index 0 and 1 are the same"),
    ({"grid": {"learning.rate": [1, 1.0]}}, "point 0 (learning.rate=1) and point 1 (learning.rate=1.0): the same "
                                            "config"),
    ({"grid": {"learning.nudge": {"linspace": [0.1, 0.9, 10**9]}}}, "grid.learning.nudge: 1,000,000,000 points, "
                                                                   "more than a sweep's limit of 100,000"),
    ({"seeds": 10**8}, "seeds: 100,000,000 points, more than"),
    ({"random": {"n": 10**9, "axes": {"learning.nudge": {"uniform": [0.1, 0.9]}}}}, "random.n: 1,000,000,000 points"),
    ({"grid": {"learning.nudge": {"linspace": [0.1, 0.9, 1000]}, "learning.rate": {"linspace": [1, 9, 1000]}}},
     "grid: 1,000,000 points (learning.nudge 1,000 x learning.rate 1,000), more than"),
    ({"base": "nothere.yaml", "grid": {"learning.nudge": [0.5]}}, "spec.yaml: base: "),
    ({"set": ["simulator.backend=native", "learning.nuge=0.3"], "grid": {"learning.nudge": [0.5]}},
     "spec.yaml: set[1] (learning.nuge=0.3): learning.nuge: unknown key"),
    ({"grid": None}, "spec.yaml: grid: empty (null: every entry commented out?); give its axes, or remove grid:"),
    # its key (JSON text) and the point's name were written out in full: minutes, gigabytes, a 10 GB line
    ({"grid": {"task.x": [_billion()]}}, "spec.yaml: grid.task.x: a value of more than 100,000 items (got "
     "[[[[...], [...], [...], [...], [...], ...], "),
])
def test_a_bad_spec_exits_2_naming_the_axis_and_runs_nothing(tmp_path, capsys, body, fragment):
    path = _spec(tmp_path, **body)
    out = tmp_path / "out"
    assert main(["sweep", path, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err and err.startswith(f"metamaterial: {path}"), err
    assert not out.exists()
    with pytest.raises(ConfigError):
        load_sweep(path)


#: refusals of a spec's own keys that said what is wrong and not how to fix it: (the spec's keys, the whole message
#: after "metamaterial: SPEC: ")
SPEC_FIXES = {
    "set-not-a-list": ({"set": "learning.epochs=3"}, "set: must be a list of 'key.path=value' strings (got "
                       "'learning.epochs=3'); give each change as an item of a list, e.g. set: [learning.epochs=200, "
                       "simulator.backend=native]"),
    # the first item refused, by its index: shown() of the list ended at the fifth
    "set-a-number-among-texts": ({"set": [f"learning.epochs={n}" for n in range(6)] + [3]}, "set: must be a list of "
                                 "'key.path=value' strings (got 3 at index 6); give each change as an item of a list, "
                                 "e.g. set: [learning.epochs=200, simulator.backend=native]"),
    "seeds-one-negative": ({"seeds": [0, 1, 2, 3, 4, 5, -1]}, "seeds: must be a count N >= 1 or a list of seeds >= 0 "
                           "(got -1 at index 6); give e.g. seeds: 3 (the base config's seed and the next 2) or seeds: "
                           "[0, 7]"),
    "target-loss-negative": ({"grid": {"learning.nudge": [0.5]}, "target_loss": -1}, "target_loss: must be a loss in "
                             "V^2 > 0 (got -1); give a positive number such as 1e-3, or remove target_loss"),
    "name-with-a-space": ({"name": "a b"}, "name: must be a plain name matching ^[A-Za-z][A-Za-z0-9_-]{0,63}$ (got "
                          "'a b'); give a letter, then up to 63 letters, digits, _ or -"),
    "base-null": ({"base": None}, "base: must be a config file path (relative to the spec) or an inline config "
                  "mapping (got None); give one of them, e.g. base: ../xor.yaml"),
    "seeds-text": ({"seeds": "x"}, "seeds: must be a count N >= 1 or a list of seeds >= 0 (got 'x'); give e.g. seeds: "
                   "3 (the base config's seed and the next 2) or seeds: [0, 7]"),
    "grid-a-list": ({"grid": [1, 2]}, "grid: must be a mapping of key paths to values (got [1, 2]); give one axis a "
                    "line under grid:, e.g. learning.nudge: [0.5, 1.0]"),
    "zip-unequal": ({"zip": {"learning.nudge": [0.5, 1.0], "learning.rate": [1.0]}}, "zip: zipped axes need equal "
                    "lengths (got learning.nudge: 2, learning.rate: 1); give each axis of zip as many values, or move "
                    "an axis to grid"),
    "axis-a-number": ({"grid": {1: [0.5]}}, "grid: 1: an axis is a config key path (got the int 1); give one such as "
                      "learning.nudge"),
    "axis-the-seed": ({"grid": {"seed": [0, 1]}}, "grid: seed: the run seed is not an axis; sweep it in the seeds "
                      "group, seeds: N (the base config's seed and the next N - 1) or a list such as seeds: [0, 7]"),
    "linspace-without-n": ({"grid": {"learning.nudge": {"linspace": [0.1, 0.5]}}}, "grid.learning.nudge: linspace "
                           "needs [a, b, n] (numbers, n >= 1 an integer) (got [0.1, 0.5]); give e.g. {linspace: "
                           "[0.1, 0.9, 5]}, n values from a to b"),
    "logspace-from-zero": ({"grid": {"device.params.kp": {"logspace": [0, 1e-3, 3]}}}, "grid.device.params.kp: "
                           "logspace needs [a, b, n] (numbers, n >= 1 an integer, a, b > 0) (got [0, 0.001, 3]); give "
                           "e.g. {logspace: [1e-4, 1e-2, 3]}, n values from a to b"),
    "values-a-number": ({"grid": {"learning.nudge": 0.5}}, "grid.learning.nudge: values must be a list or {linspace: "
                        "[a, b, n]} or {logspace: [a, b, n]} (got 0.5); write them as a list such as [0.5, 1.0] (one "
                        "value: [0.5])"),
    "random-unknown-key": ({"random": {"n": 2, "sed": 1, "axes": {"learning.nudge": [0.5, 1.0]}}}, "random: sed: "
                           "unknown key of a random group; use n, seed and axes"),
    "random-without-n": ({"random": {"axes": {"learning.nudge": [0.5]}}}, "random.n: must be the number of samples, "
                         "an integer >= 1 (got None); give e.g. n: 10"),
    "random-seed-negative": ({"random": {"n": 1, "seed": -1, "axes": {"learning.nudge": [0.5]}}}, "random.seed: must "
                             "be an integer >= 0 (got -1); give e.g. seed: 0 (it seeds the draws; the runs' seeds are "
                             "the seeds group)"),
    "random-without-axes": ({"random": {"n": 2}}, "random.axes: must be a mapping of key paths to distributions (got "
                            "None); give e.g. axes: {learning.nudge: {uniform: [0.1, 1.0]}}"),
    "uniform-reversed": ({"random": {"n": 2, "axes": {"learning.nudge": {"uniform": [1, 0.5]}}}}, "random.axes."
                         "learning.nudge: uniform needs [a, b] with a < b (got [1, 0.5]); give two numbers, the lower "
                         "first, e.g. {uniform: [0.1, 1.0]}"),
    "loguniform-from-zero": ({"random": {"n": 2, "axes": {"device.params.kp": {"loguniform": [0, 1e-3]}}}},
                             "random.axes.device.params.kp: loguniform needs [a, b] with a < b and a > 0 (got [0, "
                             "0.001]); give two numbers, the lower first, e.g. {loguniform: [1e-4, 1e-2]}"),
    "distribution-a-number": ({"random": {"n": 2, "axes": {"learning.nudge": 0.5}}}, "random.axes.learning.nudge: a "
                              "distribution is a list to draw from, {uniform: [a, b]}, {loguniform: [a, b]} or "
                              "{randint: [a, b]} (got 0.5); give one of them, e.g. [0.5, 1.0] or {uniform: [0.1, "
                              "1.0]}"),
}


@pytest.mark.parametrize("case", SPEC_FIXES)
def test_a_refused_spec_says_how_to_fix_it(tmp_path, capsys, case):
    body, message = SPEC_FIXES[case]
    path = _spec(tmp_path, **body)
    assert main(["sweep", path, "--dry-run"]) == 2
    assert capsys.readouterr().err == f"metamaterial: {path}: {message}\n"


def test_a_spec_without_a_base_says_what_to_give(tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_text("grid:\n  learning.nudge: [0.5]\n")
    assert main(["sweep", str(path), "--dry-run"]) == 2
    assert capsys.readouterr().err == (f"metamaterial: {path}: base: required key is missing; give the config the "
                                       "points start from, a file path such as base: ../xor.yaml (relative to the "
                                       "spec) or an inline config mapping\n")


def test_the_dry_run_refuses_a_point_that_train_refuses(tmp_path, capsys):
    path = _spec(tmp_path, grid={"learning.bounds[0]": [0.4, 1.5]})
    assert main(["sweep", path, "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"metamaterial: {path}: point 1 (learning.bounds[0]=1.5): learning.init.low, learning.bounds: nmos initial "
        "controls must lie within the bounds [1.5, 8] V (got 1); give values in V inside them, or leave learning.init "
        "unset for the nmos's default")


def test_dry_run_prints_every_point_and_the_batching(tmp_path, capsys):
    path = _spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]}, seeds=N_SEEDS)
    assert main(["sweep", path, "--out", str(tmp_path / "out"), "--dry-run", "--workers", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"sweep spec: {2 * N_SEEDS} points, 0 already done in {tmp_path / 'out'}/; the {2 * N_SEEDS} "
                        f"to run in 2 task(s) (largest ensemble {N_SEEDS}; the points of a task train together)")
    assert lines[1].split("\t") == ["index", "key", "task", "learning.nudge", "seed"]
    assert [line.split("\t")[2:] for line in lines[2:]] == [[str(1 + i // N_SEEDS), nudge, str(i % N_SEEDS)]
                                                            for i, nudge in enumerate(["0.5"] * N_SEEDS
                                                                                      + ["1.0"] * N_SEEDS)]
    assert not (tmp_path / "out").exists()


def test_seeds_batch_only_on_native_when_the_build_ignores_the_seed(tmp_path):
    native = load_sweep(_spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]}, seeds=N_SEEDS)).points
    assert [len(t) for t in plan_tasks(native, workers=1)] == [N_SEEDS, N_SEEDS]
    assert [len(t) for t in plan_tasks(native, workers=4)] == [2, 1, 2, 1]  # cut so four workers have work
    chips = load_sweep(_spec(tmp_path, grid={"device.mismatch.vto_sigma": [0.01]}, seeds=N_SEEDS)).points
    assert [len(t) for t in plan_tasks(chips, workers=1)] == [1] * N_SEEDS  # each seed draws its own mismatch
    fixed = load_sweep(_spec(tmp_path, grid={"device.mismatch": [{"vto_sigma": 0.01, "seed": 3}]},
                             seeds=N_SEEDS)).points
    assert [len(t) for t in plan_tasks(fixed, workers=1)] == [N_SEEDS]
    spice = load_sweep(_spec(tmp_path, set=["simulator.backend=ngspice"], seeds=N_SEEDS)).points
    assert [len(t) for t in plan_tasks(spice, workers=1)] == [1] * N_SEEDS


def test_an_ensemble_task_records_what_each_point_alone_records(tmp_path):
    spec = load_sweep(_spec(tmp_path, seeds=N_SEEDS))
    together, alone = tmp_path / "together", tmp_path / "alone"
    together.mkdir()
    alone.mkdir()
    assert all(b["status"] == "ok" and b["ran"] for b in run_points(list(spec.points), str(together)))
    for p in spec.points:
        run_points([p], str(alone))
    for p in spec.points:
        a, b = read_result(together, p.key)["summary"], read_result(alone, p.key)["summary"]
        assert a["batch"] == N_SEEDS and b["batch"] == 1
        assert a["final_loss"] == pytest.approx(b["final_loss"], rel=1e-9, abs=1e-15)
        assert a["final_loss"] < a["initial_loss"]
    losses = [read_result(together, p.key)["summary"]["final_loss"] for p in spec.points]
    assert len(set(losses)) == N_SEEDS  # the seeds are different runs
    again = run_points(list(spec.points), str(together))  # resumed: nothing runs twice
    assert not any(b["ran"] for b in again)
    assert sum(e["event"] == "finished" for e in read_events(together)) == N_SEEDS


def test_a_batched_point_ends_where_train_with_seeds_ends(tmp_path):
    """An ensemble task trains each seed as ``metamaterial train --backend native --seeds N`` does, to the last bit,
    with the evaluation cadence of a sweep spec and a checkpoint (and solver reset) inside the run of train."""
    spec = load_sweep(_spec(tmp_path, set=["simulator.backend=native", f"learning.epochs={EPOCHS}",
                                          "learning.init={kind: uniform, low: 1.0, high: 5.0}",
                                          "learning.eval_every=20", "learning.checkpoint_every=10"], seeds=N_SEEDS))
    out = tmp_path / "sweep"
    out.mkdir()
    assert [b["status"] for b in run_points(list(spec.points), str(out))] == ["ok"] * N_SEEDS
    config = tmp_path / "point.yaml"
    config.write_text(dump_config(spec.points[0].config))
    run = tmp_path / "run"
    assert main(["train", str(config), "--backend", "native", "--seeds", str(N_SEEDS), "--out", str(run),
                 "--no-progress", "--no-plots"]) == 0
    with open(run / "ensemble.csv") as f:
        rows = list(csv.DictReader(f))
    for p, row in zip(spec.points, rows, strict=True):
        s = read_result(out, p.key)["summary"]
        assert (s["seed"], s["batch"], s["epochs"]) == (int(row["seed"]), N_SEEDS, EPOCHS)
        assert (s["initial_loss"], s["final_loss"]) == (float(row["initial_loss"]), float(row["final_loss"]))


def test_workers_with_a_scheduler_are_refused_not_ignored(tmp_path, capsys):
    """--workers 4 with --scheduler ran on the scheduler's cluster, however many workers it had, saying nothing:
    the number asked for was dropped. It is refused before anything is read or made; either alone runs."""
    path = _spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]})
    out = tmp_path / "out"
    assert main(["sweep", path, "--out", str(out), "--workers", "4", "--scheduler", "tcp://127.0.0.1:8786"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "metamaterial: --workers: sizes the local cluster, and --scheduler runs on an existing one (got --workers 4 "
        "with --scheduler tcp://127.0.0.1:8786); leave out --workers: that cluster's workers are those its dask worker "
        "commands started"]
    assert not out.exists()
    with pytest.raises(ConfigError, match=r"^--workers: sizes the local cluster"):
        run_sweep(load_sweep(path), out, workers=1, scheduler="tcp://127.0.0.1:8786")
    assert not out.exists()
    for alone in (["--workers", "1"], ["--scheduler", "tcp://127.0.0.1:8786"]):
        assert main(["sweep", path, "--out", str(out), "--dry-run", *alone]) == 0
        assert capsys.readouterr().out.startswith("sweep spec: 2 points")


def test_no_local_worker_is_refused_by_the_dry_run_too(tmp_path, capsys):
    path = _spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]})
    assert main(["sweep", path, "--out", str(tmp_path / "out"), "--dry-run", "--workers", "0"]) == 2
    assert capsys.readouterr().err.splitlines() == ["metamaterial: --workers: must be >= 1 (got 0); give 1 or more"]
    for dry in ([], ["--dry-run"]):  # the dry run said the sweep would run: the run itself refused it
        assert main(["sweep", path, "--out", str(tmp_path / "out"), "--recycle-after", "-1", *dry]) == 2
        assert capsys.readouterr().err.splitlines() == [
            "metamaterial: --recycle-after: must be >= 0 (got -1); give the points a worker trains before it is "
            "replaced, or 0 for never"]
    assert not (tmp_path / "out").exists()


def test_more_workers_than_cores_warns(tmp_path, capsys):
    path = _spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]})
    assert main(["sweep", path, "--out", str(tmp_path / "out"), "--dry-run", "--workers", "1000"]) == 0
    err = capsys.readouterr().err
    assert "warning: --workers 1000 is more than the" in err and "cores of this machine" in err


def test_a_point_failing_at_run_time_is_recorded_and_the_others_finish(tmp_path):
    """An operating point that does not converge within the iterations allowed is known only when the point
    runs: it fails, with the solver's reason, and the other point finishes."""
    spec = load_sweep(_spec(tmp_path, grid={"simulator.itl1": [500, 2]}))
    brief = run_points(list(spec.points), str(tmp_path))
    assert [b["status"] for b in brief] == ["ok", "failed"]
    record = read_result(tmp_path, spec.points[1].key)
    assert record["error"]["class"] == "SimulationError"
    assert "NativeSolver: Newton did not converge" in record["error"]["message"]


@pytest.mark.parametrize("body, fragment", [
    ({"grid": {"roles.inputs": [[[3, 3]], [[3, 3], [3, 1]]]}},
     "point 1 (roles.inputs=[[3, 3], [3, 1]]): roles.inputs, task.name: task regression needs 1 input node(s) (got 2); "
     "give roles.inputs 1 node(s), or choose another task"),
    ({"grid": {"network.rows": [4, 3]}}, "point 1 (network.rows=3): roles.inputs[0], network.rows: node (3, 3) is "
                                         "outside the 3x4 lattice; give a row in 0-2 and a col in 0-3"),
])
def test_roles_the_network_or_the_task_refuses_are_refused_before_anything_runs(tmp_path, capsys, body, fragment):
    """The roles are checked against each point's network and task (once per distinct one) as the spec is read:
    such a point used to fail only when it ran, after the ones before it had trained."""
    path = _spec(tmp_path, **body)
    assert main(["sweep", path, "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    assert capsys.readouterr().err.strip() == f"metamaterial: {path}: {fragment}"


def test_a_daemonic_worker_trains_in_itself_and_briefs_every_point_of_its_task(tmp_path, monkeypatch):
    """A Dask worker left daemonic (it may not start a training process) trains in its own process, and still
    answers for every point it was given, the ones already done included (the client counts its answers)."""
    points = list(load_sweep(_spec(tmp_path, seeds=N_SEEDS)).points)
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(worker.multiprocessing, "current_process", lambda: SimpleNamespace(daemon=True))
    assert run_points(points[:1], str(out))[0]["ran"]
    brief = run_points(points, str(out))
    assert [b["key"] for b in brief] == [p.key for p in points]
    assert [b["ran"] for b in brief] == [False] + [True] * (N_SEEDS - 1)
    assert all(b["status"] == "ok" for b in brief)


def test_a_point_has_one_result(tmp_path):
    ok, failed = {"key": "k", "status": "ok", "summary": {"final_loss": 1.0}}, {"key": "k", "status": "failed"}
    assert write_result(tmp_path, "k", failed)
    assert not write_result(tmp_path, "k", dict(failed, error="again"))  # a failure does not replace a failure
    assert write_result(tmp_path, "k", ok)  # a retried failure that succeeds does
    assert not write_result(tmp_path, "k", dict(ok, summary={"final_loss": 2.0}))
    assert read_result(tmp_path, "k") == ok
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["k.json"]  # no temporary file left


def test_the_table_has_one_row_per_point_with_axes_and_metrics(tmp_path):
    spec = load_sweep(_spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]}, seeds=2))
    out = tmp_path / "out"
    out.mkdir()
    (out / "points.json").write_text(json.dumps({"name": spec.name, "spec": spec.source, "axes": list(spec.axes),
                                                 "points": [{"index": p.index, "key": p.key, "values": p.values}
                                                            for p in spec.points]}))
    rng = np.random.default_rng(0)
    losses = rng.uniform(1e-5, 1e-3, len(spec.points))
    for p, loss in zip(spec.points[:-1], losses):
        write_result(out, p.key, {"key": p.key, "status": "ok", "summary": {"final_loss": loss, "seed": 1}})
    write_table(out)
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:6] == ["index", "key", "status", "learning.nudge", "seed", "final_loss"]
    assert [float(r["final_loss"]) for r in rows[:-1]] == pytest.approx(losses[:-1].tolist(), rel=1e-15)
    assert [r["seed"] for r in rows] == ["0", "1", "0", "1"]
    assert rows[-1]["status"] == "pending" and rows[-1]["final_loss"] == ""
    axes, table = load_table(out)
    assert axes == list(spec.axes) and [r["learning.nudge"] for r in table] == [0.5, 0.5, 1.0, 1.0]
    pq = pytest.importorskip("pyarrow.parquet")
    assert pq.read_table(out / "results.parquet").column("final_loss").to_pylist()[:-1] == \
        pytest.approx(losses[:-1].tolist(), rel=1e-15)


def test_a_seed_past_int64_is_written_to_the_parquet_table_as_text(tmp_path):
    """A config takes any seed >= 0 (train trains 2**64); a sweep over one trained its points, then its report
    failed with pyarrow's OverflowError and a traceback, every time it ran, and wrote no table. The column goes as
    the CSV's text; the others keep their types."""
    pq = pytest.importorskip("pyarrow.parquet")
    big = 2**64
    spec = load_sweep(_spec(tmp_path, seeds=[0, big]))
    out = _points_folder(tmp_path, spec)
    for p in spec.points:
        write_result(out, p.key, {"key": p.key, "status": "ok", "summary": {"final_loss": 1e-4, "seed": p.config.seed}})
    assert main(["sweep-report", str(out)]) == 0
    table = pq.read_table(out / "results.parquet")
    assert table.column("seed").to_pylist() == ["0", str(big)]
    assert table.column("final_loss").to_pylist() == [1e-4, 1e-4]
    with open(out / "results.csv") as f:
        assert [r["seed"] for r in csv.DictReader(f)] == ["0", str(big)]


def test_a_result_file_that_is_not_a_record_leaves_its_point_pending(tmp_path):
    """A results/<key>.json that is not JSON, or JSON that is not a mapping with a status, is no record: the table
    shows its point pending (a rerun replaces the file), as ``sweep-report`` does without a traceback."""
    spec = load_sweep(_spec(tmp_path, grid={"learning.nudge": [0.125, 0.25, 0.5, 0.75, 1.0, 0.375]}))
    out = _points_folder(tmp_path, spec)
    first, *others = spec.points
    write_result(out, first.key, {"key": first.key, "status": "ok", "summary": {"final_loss": 1e-4}})
    for p, text in zip(others, ("[1]\n", '{"key": \n', '{"summary": {"final_loss": 1}}\n',
                                '{"status": "ok", "summary": [1, 2]}\n', '{"status": "done"}\n')):
        (out / "results" / f"{p.key}.json").write_text(text)
        assert read_result(out, p.key) is None
    assert [r["status"] for r in load_table(out)[1]] == ["ok"] + ["pending"] * 5
    assert main(["sweep-report", str(out)]) == 0


def test_expand_sweep_takes_an_inline_base(tmp_path):
    base = yaml.safe_load((ROOT / "configs" / "regression.yaml").read_text())
    spec = expand_sweep({"base": base, "grid": {"learning.rate": [1.0, 2.0]}}, "inline.yaml", tmp_path)
    assert [p.config.learning.rate for p in spec.points] == [1.0, 2.0]
    assert spec.name == "inline"


def test_the_result_key_hashes_the_config_text_that_train_saves():
    """... and the spec's target_loss, where it sets one (learning_time.yaml), against which the point's learning
    time to the target is measured."""
    for spec_file in sorted((ROOT / "configs" / "sweeps").glob("*.yaml")):
        spec = load_sweep(spec_file)
        target = {} if spec.target_loss is None else {"target_loss": spec.target_loss}
        for p in spec.points[:20]:
            assert config_text(p.config) == dump_config(p.config)
            text = dump_config(p.config) + "".join(f"# target_loss {t!r}\n" for t in target.values())
            assert p.key == hashlib.sha256(text.encode()).hexdigest()[:16]
            assert saved_config_key({"config": config_text(p.config), **target}) == p.key  # reads back alike


def test_a_config_key_added_since_keeps_finished_points_and_a_changed_value_does_not(tmp_path):
    """Records written before ``simulator.temperature`` existed (their saved configs lack it, so their keys hash
    other text) are today's points once that key takes its default: resuming runs none of them. A record whose
    saved config differs in a value is another point: it stays where it is."""
    spec = load_sweep(_spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]}))
    out = tmp_path / "out"
    old_keys = []
    for p, nudge in [(p, p.config.learning.nudge) for p in spec.points] + [(spec.points[1], 0.75)]:
        doc = p.config.model_dump(mode="json", by_alias=True)
        del doc["simulator"]["temperature"]  # as written before the key existed
        doc["learning"]["nudge"] = nudge
        text = yaml.safe_dump(doc, sort_keys=False)
        old = hashlib.sha256(text.encode()).hexdigest()[:16]
        assert old not in [q.key for q in spec.points]
        assert write_result(out, old, {"key": old, "status": "ok", "values": {"learning.nudge": nudge}, "config": text,
                                       "summary": {"final_loss": nudge}})
        old_keys.append(old)
    assert main(["sweep", _spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]}), "--out", str(out), "--dry-run"]) == 0
    assert sorted(p.name for p in (out / "results").iterdir()) == sorted(f"{k}.json" for k in old_keys)  # dry run
    run = run_sweep(spec, out, workers=1)
    assert (run.total, run.skipped, run.ok, run.failed) == (2, 2, 0, 0)
    for p, old in zip(spec.points, old_keys):
        record = read_result(out, p.key)
        assert record["key_before"] == old and record["summary"]["final_loss"] == p.config.learning.nudge
    assert sorted(p.name for p in (out / "results").iterdir()) == \
        sorted([f"{spec.points[0].key}.json", f"{spec.points[1].key}.json", f"{old_keys[2]}.json"])
    assert [r["final_loss"] for r in load_table(out)[1]] == [0.5, 1.0]


def test_the_dry_run_counts_points_filed_under_an_older_schema_as_done(tmp_path, capsys):
    spec = load_sweep(_spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]}))
    doc = spec.points[0].config.model_dump(mode="json", by_alias=True)
    del doc["timing"]  # a whole section added since
    write_result(tmp_path / "out", "0123456789abcdef", {"key": "0123456789abcdef", "status": "ok",
                                                        "summary": {"final_loss": 1e-3},
                                                        "config": yaml.safe_dump(doc, sort_keys=False)})
    assert main(["sweep", _spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]}), "--out", str(tmp_path / "out"),
                 "--dry-run"]) == 0
    assert "1 already done in" in capsys.readouterr().out
    assert [p.name for p in (tmp_path / "out" / "results").iterdir()] == ["0123456789abcdef.json"]


def test_a_categorical_axis_is_plotted_in_the_spec_order(tmp_path, monkeypatch):
    import matplotlib.figure  # noqa: PLC0415

    order = ["shuffle", "full_batch", "cycle"]  # not alphabetical
    spec = load_sweep(_spec(tmp_path, grid={"learning.schedule": order, "learning.nudge": [0.5, 1.0]}))
    out = _points_folder(tmp_path, spec)
    for p in spec.points[1:]:  # the first point (shuffle) pending: the order still comes from the spec
        write_result(out, p.key, {"key": p.key, "status": "ok", "summary": {"final_loss": 1e-3 * (p.index + 1)}})
    drawn = {}

    def savefig(fig, path, **kwargs):
        ax = fig.axes[0]
        drawn[Path(path).name] = ([t.get_text() for t in ax.get_xticklabels()],
                                  [t.get_text() for t in ax.get_yticklabels()],
                                  [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else [])
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    plot_sweep(out)
    assert drawn["final_loss_vs_learning.schedule.png"][0] == order
    assert drawn["final_loss_vs_learning.nudge.png"][2] == [f"schedule={s}" for s in order]
    assert drawn["final_loss_heatmap_learning.schedule_learning.nudge.png"][0] == order


def _points_folder(tmp_path, spec) -> Path:
    """A sweep folder holding only the spec's points.json (its records are the test's to write)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "points.json").write_text(json.dumps(points_document(spec)))
    return out


def test_every_figure_in_the_folder_is_redrawn_from_todays_table_and_stale_ones_go(tmp_path, monkeypatch):
    """A figure an earlier report drew (another metric: a default since changed, or --metric) is drawn again with
    every finished point; one of an axis no longer swept is removed; a file not named as a figure stays."""
    import matplotlib.figure  # noqa: PLC0415

    spec = load_sweep(_spec(tmp_path, grid={"learning.nudge": [0.25, 0.5, 1.0]}))
    out = _points_folder(tmp_path, spec)

    def finish(points):
        for p in points:
            write_result(out, p.key, {"key": p.key, "status": "ok",
                                      "summary": {"success": p.index != 1, "test_accuracy": 0.5 + 0.1 * p.index}})
    drawn = {}

    def savefig(fig, path, **kwargs):
        Path(path).write_text("png")
        drawn[Path(path).name] = [len(line.get_xdata()) for line in fig.axes[0].get_lines()]
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    finish(spec.points[:2])
    plot_sweep(out, "success")
    assert drawn == {"success_vs_learning.nudge.png": [2]}
    old_axis = out / "figures" / "success_vs_learning.rate.png"
    mine = out / "figures" / "my_notes.png"
    old_axis.write_text("png")
    mine.write_text("mine")
    finish(spec.points[2:])
    drawn.clear()
    paths, stale, notes = plot_sweep(out)
    assert drawn == {"test_accuracy_vs_learning.nudge.png": [3], "success_vs_learning.nudge.png": [3]}
    assert [p.name for p in paths] == list(drawn) and stale == [old_axis] and notes == []
    assert not old_axis.exists() and mine.read_text() == "mine"


def test_a_legend_names_an_axis_by_its_last_key_unless_that_would_read_as_another():
    from metamaterial.sweep.report import _short

    swept = ["task.validation.seed", "learning.margin", "device.params.vto", "device.mismatch.vto"]
    assert _short("learning.margin", swept) == "margin"
    assert _short("task.validation.seed", swept) == "validation.seed"  # not the run's seed
    assert _short("device.params.vto", swept) == "params.vto" and _short("device.mismatch.vto", swept) == "mismatch.vto"
    assert _short("seed", ["seed"]) == "seed"


def test_a_record_saved_before_split_seed_is_not_taken_for_todays_point_of_its_seed():
    """Until task.split_seed existed, a point of seed 3 on a split task trained on the split of seed 3: its record
    is today's point with split_seed 3, not the seed-3 point of today's sweep (split 0), which must run anew."""
    today = load_config(ROOT / "configs" / "iris.yaml", ["seed=3"])
    doc = today.model_dump(mode="json", by_alias=True)
    del doc["task"]["split_seed"]  # as written before the key existed
    record = {"config": yaml.safe_dump(doc, sort_keys=False)}
    as_then = load_config(ROOT / "configs" / "iris.yaml", ["seed=3", "task.split_seed=3"])
    assert saved_config_key(record) == config_key(as_then) != config_key(today)


def test_a_classifier_sweep_scored_on_other_points_plots_their_accuracy_by_default(tmp_path):
    """A classification scored on held-out or validation points is drawn by that accuracy (a digits sweep's success
    rate is 0 everywhere: no run has every training image right by 10 mV), labelled by what it scored; other
    classifications by their success rate, the rest by the final loss."""
    from metamaterial.sweep.report import _label, default_metric  # noqa: PLC0415

    spec_file = tmp_path / "iris.yaml"
    spec_file.write_text(yaml.safe_dump({
        "base": str(ROOT / "configs" / "iris.yaml"),
        "set": ["simulator.backend=native", "learning.epochs=3", "task.validation={fraction: 0.2}"],
        "grid": {"learning.margin": [0.02, 0.05]}, "target_loss": 1.0}))
    out = tmp_path / "out"
    assert main(["sweep", str(spec_file), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    for p in load_sweep(spec_file).points:  # every field of a summary is declared, as a metric or a label
        summary = read_result(out, p.key)["summary"]
        assert set(summary) == {*SUMMARY_METRICS, *SUMMARY_LABELS}
        assert all(summary[m] is None or isinstance(summary[m], (int, float)) for m in SUMMARY_METRICS)
        assert summary["lowest_loss"] <= min(summary["initial_loss"], summary["final_loss"])
        assert 0 <= summary["lowest_loss_epoch"] <= summary["epochs"]
    rows = [r for r in load_table(out)[1] if r["status"] == "ok"]
    assert len(rows) == 2 and all(r["scored_on"] == "validation" and r["test_accuracy"] is not None for r in rows)
    assert default_metric(rows) == "test_accuracy" and _label("test_accuracy", rows) == "validation accuracy"
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["test_accuracy_vs_learning.margin.png"]
    held_out = [{**r, "scored_on": "held-out"} for r in rows]
    assert _label("test_accuracy", held_out) == "held-out accuracy"
    assert _label("test_loss", [{"test_loss": 1.0}]) == "held-out loss (V^2)"  # a record from before scored_on
    no_test = [{k: v for k, v in r.items() if not k.startswith("test_")} for r in rows]
    assert default_metric(no_test) == "success"
    assert default_metric([{"final_loss": 1.0, "success": None}]) == "final_loss"


def test_a_spec_without_a_name_needs_a_plain_file_name(tmp_path):
    path = Path(_spec(tmp_path, grid={"learning.nudge": [0.5]}))
    unnamed = path.rename(tmp_path / "my sweep.yaml")
    with pytest.raises(ConfigError) as err:
        load_sweep(unnamed)
    assert str(err.value) == (f"{unnamed}: name: must be a plain name matching ^[A-Za-z][A-Za-z0-9_-]{{0,63}}$ (got "
                              "'my sweep', the spec's file name: it has no name:); add name: with a letter, then up "
                              "to 63 letters, digits, _ or -")
    named = tmp_path / "ok.yaml"
    named.write_text(unnamed.read_text())
    assert load_sweep(named).name == "ok"


def test_the_points_are_counted_from_the_axes_before_anything_is_expanded(tmp_path, monkeypatch):
    """Every group within the limit, their product beyond it: refused before a point is made."""
    monkeypatch.setattr(spec_module, "MAX_POINTS", 2 * N_SEEDS - 1)
    made = []
    monkeypatch.setattr(spec_module, "config_key", lambda cfg: made.append(cfg) or "k")
    path = _spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]}, seeds=N_SEEDS)
    with pytest.raises(ConfigError, match=rf"spec.yaml: {2 * N_SEEDS} points \(grid 2 x seeds {N_SEEDS}\), more than "
                                          rf"a sweep's limit of {2 * N_SEEDS - 1}; sweep fewer values"):
        load_sweep(path)
    assert made == []


def test_a_sweep_refused_before_any_point_ran_leaves_only_what_was_there(tmp_path, monkeypatch, capsys):
    def unreachable(workers, scheduler):
        raise ConfigError(f"--scheduler {scheduler}: cannot connect (refused here)")
    monkeypatch.setattr(execute, "_connect", unreachable)
    path = _spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]})
    new = tmp_path / "new" / "sweep"
    assert main(["sweep", path, "--out", str(new), "--scheduler", "tcp://127.0.0.1:1", "--no-plots"]) == 2
    assert "cannot connect (refused here)" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    assert main(["sweep", path, "--out", str(kept), "--scheduler", "tcp://127.0.0.1:1", "--no-plots"]) == 2
    assert (kept / "notes.txt").read_text() == "mine"
    (tmp_path / "b").mkdir()
    other = _points_folder(tmp_path, load_sweep(_spec(tmp_path / "b", grid={"learning.rate": [1.0, 2.0, 3.0]})))
    points = (other / "points.json").read_text()  # another sweep's folder, given by mistake
    assert json.loads(points)["axes"] == ["learning.rate"] and load_sweep(path).axes == ("learning.nudge",)
    assert main(["sweep", path, "--out", str(other), "--scheduler", "tcp://127.0.0.1:1", "--no-plots"]) == 2
    assert (other / "points.json").read_text() == points


def test_a_spec_that_is_not_a_mapping_is_told_the_keys_of_a_spec(tmp_path, capsys):
    path = tmp_path / "list.yaml"
    path.write_text("- base: x.yaml\n")
    assert main(["sweep", str(path), "--dry-run"]) == 2
    assert capsys.readouterr().err.strip() == (f"metamaterial: {path}: the top level must be a mapping of sections "
                                               "(got list); start the file with keys such as name:, base:, grid:")


def test_a_train_config_given_as_a_spec_is_named_a_train_config(tmp_path, capsys):
    """A config given to sweep was refused for its first key, "seed: unknown key of a sweep spec", as if the spec
    were misspelt: it is named a train config, with what a spec holds instead."""
    xor = str(ROOT / "configs" / "xor.yaml")
    assert main(["sweep", xor, "--dry-run"]) == 2
    assert capsys.readouterr().err == (f"metamaterial: {xor}: a train config, not a sweep spec (got the config keys "
                                       "seed, network, roles, device and 3 more); a spec names the config to sweep as "
                                       "base: (a path relative to the spec) and its axes under grid:, zip:, random: "
                                       "or seeds:, as in configs/sweeps/\n")
    path = tmp_path / "two.yaml"  # a spec with a config's key as well is a spec: that key is refused
    path.write_text("base: x.yaml\nlearning: {epochs: 3}\n")
    assert main(["sweep", str(path), "--dry-run"]) == 2
    assert capsys.readouterr().err == (f"metamaterial: {path}: learning: unknown key of a sweep spec; use name, base, "
                                       "set, target_loss, grid, zip, random, seeds\n")


def test_a_config_with_a_stray_spec_key_is_a_config_with_an_unknown_key(tmp_path, capsys):
    """A config holding ``seeds: 10`` (a slip for train --seeds) is a config with an unknown key, not a sweep spec:
    solve refused it as a spec and sweep as a config, each sending the user to the other."""
    path = tmp_path / "xs.yaml"
    path.write_text((ROOT / "configs" / "xor.yaml").read_text() + "seeds: 10\n")
    assert main(["solve", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"metamaterial: {path}: seeds: unknown key (an ensemble of N seeds is "
                                              "train --seeds N; a config gives one seed); remove it")
    assert main(["sweep", str(path), "--dry-run"]) == 2
    assert capsys.readouterr().err.startswith(f"metamaterial: {path}: a train config, not a sweep spec")


def test_a_sweep_spec_given_as_a_config_is_named_a_sweep_spec(capsys):
    """A spec given to train or solve was refused for its first key, "base: unknown key", as if the config were
    misspelt: it is named a sweep spec, with the command that runs it."""
    spec = str(ROOT / "configs" / "sweeps" / "corners.yaml")
    for command in (["train", spec, "--out", "unused"], ["solve", spec]):
        assert main(command) == 2
        assert capsys.readouterr().err == (f"metamaterial: {spec}: a sweep spec, not a config (got the spec keys "
                                           f"base, set, grid, seeds); run it with metamaterial sweep {spec}, or give "
                                           "the config it sweeps, its base:\n")


def test_a_relative_out_reaches_the_workers_as_an_absolute_path(tmp_path, monkeypatch):
    """A worker of a remote cluster resolves a relative path in its own working directory: the client sends the
    folder as an absolute path."""
    path = _spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]})
    real, given = worker.run_points, tmp_path / "given.txt"

    def telling(points, out, *args):  # a copy of it runs (the task is serialized): it tells a file
        with open(given, "a") as f:
            f.write(out + "\n")
        return real(points, out, *args)
    monkeypatch.setattr(worker, "run_points", telling)
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", path, "--out", "rel/out", "--workers", "1", "--no-plots", "--no-progress"]) == 0
    assert given.read_text().splitlines() == [str(tmp_path / "rel" / "out")] * 2
    assert all(r["status"] == "ok" for r in load_table(tmp_path / "rel" / "out")[1])


def test_points_a_worker_stored_in_another_folder_fail_the_sweep_in_one_line(tmp_path, monkeypatch, capsys):
    """A worker that does not see the client's folder (another machine, a folder of the same name elsewhere)
    reports its points done: the sweep says so and does not exit 0."""
    path = _spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    real = worker.run_points
    monkeypatch.setattr(worker, "run_points", lambda points, out, *args: real(points, str(elsewhere), *args))
    out = tmp_path / "out"
    assert main(["sweep", path, "--out", str(out), "--workers", "1", "--no-plots", "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "0/2 ok, 0 failed, 2 pending" in captured.out
    assert captured.err.splitlines() == [
        f"metamaterial: 2 point(s) run are still pending: 2 reported done by the workers have no result in {out}: the "
        "workers do not see this folder (they need it under the same path: a file system they share); once the "
        "cluster is fixed, the same command runs them"]
    assert len(list((elsewhere / "results").iterdir())) == 2


def test_a_sweep_of_seeds_alone_says_why_it_drew_no_figure_and_names_only_what_it_wrote(tmp_path, capsys):
    """A sweep over seeds alone has no axis to draw a metric against: its summary named a figures/ folder that was
    not there, and said nothing of why. It names what the folder holds, and says why there is no figure."""
    out = tmp_path / "out"
    assert main(["sweep", _spec(tmp_path, seeds=2), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    parquet = "results.parquet, " if (out / "results.parquet").exists() else ""
    assert lines[-2:] == [f"sweep folder: {out}/ (results.csv, {parquet}results/, events.jsonl)",
                          "note: no figure: no axis but seed takes more than one value (results.csv holds each "
                          "point's metrics)"]
    assert not (out / "figures").exists()


def test_a_metric_empty_at_every_point_draws_nothing_and_says_why(tmp_path, capsys):
    """learning_time_to_target_s of a sweep no point of which reached its target_loss, over a log-spaced axis (whose
    empty line plot made matplotlib fail): no figure, a note, exit 0."""
    spec = load_sweep(_spec(tmp_path, grid={"device.params.kp": {"logspace": [1e-4, 1e-2, 3]}}))
    out = _points_folder(tmp_path, spec)
    for p in spec.points:
        write_result(out, p.key, {"key": p.key, "status": "ok",
                                  "summary": {"final_loss": 1e-3 * (p.index + 1), "learning_time_to_target_s": None}})
    assert main(["sweep-report", str(out), "--metric", "learning_time_to_target_s"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "note: no figure of learning_time_to_target_s: it has no value at any of the 3 finished point(s) (no point "
        "reached the spec's target_loss, or it sets none)")
    assert not list((out / "figures").glob("learning_time_to_target_s_*"))
    assert main(["sweep-report", str(out)]) == 0  # the default metric is drawn as before
    assert [f.name for f in (out / "figures").iterdir()] == ["final_loss_vs_device.params.kp.png"]


def _times_to_target(tmp_path, out: Path, target: float, capsys) -> tuple[list[float], str]:
    """learning_time_to_target_s of each point of a two-point sweep run into ``out`` against ``target``, and what
    the run said on stderr."""
    path = _spec(tmp_path, set=["simulator.backend=native", f"learning.epochs={EPOCHS}", "learning.eval_every=1",
                                "learning.init={kind: uniform, low: 1.0, high: 5.0}"],
                 grid={"learning.nudge": [0.5, 1.0]}, target_loss=target)
    assert main(["sweep", path, "--out", str(out), "--workers", "1", "--no-progress", "--no-plots"]) == 0
    with open(out / "results.csv") as f:
        return [float(r["learning_time_to_target_s"]) for r in csv.DictReader(f)], capsys.readouterr().err


def test_a_changed_target_loss_measures_every_point_against_the_new_target(tmp_path, capsys):
    """The learning time to the target is measured against the spec's target_loss, which is part of a point's key: a
    spec run again into its folder with another target took every point for done and kept the times to the old
    target in the table, without a word. Now the points run again (and say why), each as in a folder of its own, and
    the first target's results still stand for it."""
    loose, tight = 2e-3, 5e-4  # V^2: the loss falls from ~3.3e-3 to ~3.2e-4 in EPOCHS epochs
    out = tmp_path / "out"
    first, _ = _times_to_target(tmp_path, out, loose, capsys)
    again, said = _times_to_target(tmp_path, out, tight, capsys)
    fresh, _ = _times_to_target(tmp_path, tmp_path / "fresh", tight, capsys)
    assert again == fresh and all(t > f for t, f in zip(fresh, first))  # a lower loss is reached later
    assert ("sweep: 2 point(s) have a result whose learning time to the target was measured against another "
            "target_loss (or none, or before the target was recorded with the result): they run again") in said
    back, said = _times_to_target(tmp_path, out, loose, capsys)
    assert back == first and "sweep: 2 point(s) already done, 0 to run" in said  # the first target's results stand


@pytest.mark.parametrize("address, problem", [
    ("tpc://127.0.0.1:8799", "unknown address scheme 'tpc'"),
    ("http://127.0.0.1:8787", "unknown address scheme 'http'"),
    ("tcp://127.0.0.1:notaport", "invalid literal for int()"),
    ("tcp://127.0.0.1:99999", "port 99999 is not in 1-65535"),
    ("tcp://127.0.0.1", "missing port number"),
])
def test_a_mistyped_scheduler_address_is_refused_in_one_line_before_anything_runs(tmp_path, capsys, address, problem):
    out = tmp_path / "out"
    assert main(["sweep", _spec(tmp_path, grid={"learning.nudge": [0.5]}), "--out", str(out), "--scheduler",
                 address]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"metamaterial: --scheduler {address}: not a scheduler "
                                                         f"address (") and problem in err, err
    assert "give tcp://HOST:PORT" in err and ("dashboard" in err) == address.startswith("http")
    assert not out.exists()


@pytest.mark.parametrize("metric", ["backend", "task", "key", "status", "index", "seed", "learning.nudge",
                                    "error_message", "final_los"])
def test_only_a_metric_of_the_points_summaries_is_drawn(tmp_path, capsys, metric):
    """A text column, the index, the seed, an axis or an error message is no metric: refused in one line that lists
    the metrics, which are the ones accepted."""
    spec = load_sweep(_spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]}, seeds=2))
    out = _points_folder(tmp_path, spec)
    for p in spec.points:
        write_result(out, p.key, {"key": p.key, "status": "ok", "summary": {"final_loss": 1e-3, "backend": "native",
                                                                            "task": "regression", "seed": 0}})
    assert main(["sweep-report", str(out), "--metric", metric]) == 2
    err = capsys.readouterr().err
    maybe = " (did you mean final_loss?)" if metric == "final_los" else ""  # a near miss of one, no axis or label
    assert err.splitlines() == [f"metamaterial: --metric {metric}: not a metric of a sweep's points{maybe}; choose "
                                f"one of {', '.join(SUMMARY_METRICS)}"]
    assert not (out / "figures").exists()


def test_a_mistyped_metric_is_refused_before_any_point_runs(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", _spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]}), "--out", str(out),
                 "--metric", "final_los"]) == 2
    assert capsys.readouterr().err.startswith("metamaterial: --metric final_los: not a metric of a sweep's points "
                                              "(did you mean final_loss?); choose one of ")
    assert not out.exists()


@pytest.mark.parametrize("damage, problem", [
    (lambda meta: {"name": meta["name"]}, "no list of axis names under 'axes'"),
    (lambda meta: [], "not a mapping (got list)"),
    (lambda meta: {**meta, "points": {"0": meta["points"][0]}}, "no list of points under 'points'"),
    (lambda meta: {**meta, "points": [{k: v for k, v in meta["points"][0].items() if k != "values"}]},
     "point 0 is not a mapping of its index, key and values"),
    (lambda meta: {**meta, "points": [{**meta["points"][0], "values": {}}]}, "point 0 has no value of axis "
                                                                            "learning.nudge"),
])
def test_a_damaged_points_json_is_named_in_one_line(tmp_path, capsys, damage, problem):
    spec = load_sweep(_spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]}))
    out = _points_folder(tmp_path, spec)
    (out / "points.json").write_text(json.dumps(damage(json.loads((out / "points.json").read_text()))))
    assert main(["sweep-report", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"metamaterial: {out / 'points.json'}: damaged ({problem}); run the sweep's command again to rewrite it (its "
        "results stay)"]


@pytest.mark.parametrize("damage", ["{bad", "[]"])
def test_a_folder_whose_points_json_is_damaged_is_not_taken_over_by_another_sweep(tmp_path, capsys, damage):
    """With its points.json damaged a sweep folder's results say whose it is: another
    spec's sweep into it is refused before anything is written, naming the results that are nothing to it (it ran,
    rewrote points.json and mixed the two sweeps' results); the spec that wrote them goes on there."""
    (tmp_path / "b").mkdir()
    first_path = _spec(tmp_path / "b", grid={"learning.rate": [1.0, 2.0]})
    first = load_sweep(first_path)
    out = _points_folder(tmp_path, first)
    for p in first.points:
        write_result(out, p.key, {"key": p.key, "status": "ok", "summary": {"final_loss": 1e-3},
                                  "config": config_text(p.config)})
    (out / "points.json").write_text(damage)
    why = "not JSON" if damage == "{bad" else "it names no sweep"
    before = sorted(str(f.relative_to(out)) for f in out.rglob("*"))
    other = _spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]})
    spec = load_sweep(other)
    names = ", ".join(sorted(f"{p.key}.json" for p in first.points))
    for dry in ([], ["--dry-run"]):
        assert main(["sweep", other, "--out", str(out), "--no-plots", *dry]) == 2
        assert capsys.readouterr().err.splitlines() == [
            f"metamaterial: --out {out}: its points.json cannot be read ({why}), and {out / 'results'} holds results "
            f"of 2 point(s) that are nothing to '{spec.name}' ({names}), of another sweep or of points this one no "
            f"longer has; give this sweep a folder of its own (default runs/sweeps/{spec.name}), or run the spec "
            "that wrote them there (which rewrites points.json)"]
        assert sorted(str(f.relative_to(out)) for f in out.rglob("*")) == before
    assert main(["sweep", str(first_path), "--out", str(out), "--dry-run"]) == 0  # its own spec: 2 already done
    assert "2 already done in" in capsys.readouterr().out


@pytest.mark.parametrize("summary, problem", [
    (None, "status ok without a summary"),
    ({"final_loss": "oops"}, "summary.final_loss is not a number (got 'oops')"),
])
def test_a_damaged_result_is_named_its_point_counted_pending_and_run_again(tmp_path, capsys, summary, problem):
    spec = load_sweep(_spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]}))
    out = _points_folder(tmp_path, spec)
    good, bad = spec.points
    write_result(out, good.key, {"key": good.key, "status": "ok", "summary": {"final_loss": 1e-3}})
    (out / "results" / f"{bad.key}.json").write_text(json.dumps({"key": bad.key, "status": "ok", "summary": summary}))
    assert main(["sweep-report", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"metamaterial: warning: {out / 'results' / f'{bad.key}.json'}: damaged ({problem}): its point counts as "
        "pending, and the sweep's command runs it again"]
    assert "1/2 ok, 0 failed, 1 pending" in captured.out
    assert run_points([bad], str(out))[0]["ran"]  # run again, its record replaced
    assert read_result(out, bad.key)["summary"]["final_loss"] > 0


def test_an_axis_named_as_a_summary_field_keeps_its_values_in_the_table(tmp_path, monkeypatch):
    """An axis over ``task``: its column holds each point's task, not the summary's task name (the same for both),
    so the figures tell the two apart."""
    import matplotlib.figure  # noqa: PLC0415

    tasks = [{"name": "xor", "labels": [0.0, -0.087]}, {"name": "xor", "labels": [0.0, -0.15]}]
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump({"base": str(ROOT / "configs" / "xor.yaml"),
                                         "set": ["simulator.backend=native"],
                                         "grid": {"task": tasks, "learning.nudge": [0.25, 0.5]}}, sort_keys=False))
    spec = load_sweep(spec_file)
    out = _points_folder(tmp_path, spec)
    for p in spec.points:
        write_result(out, p.key, {"key": p.key, "status": "ok", "summary": {"task": "xor", "success": p.index < 2}})
    assert [r["task"] for r in load_table(out)[1]] == [tasks[0], tasks[0], tasks[1], tasks[1]]
    drawn = {}

    def savefig(fig, path, **kwargs):
        drawn[Path(path).name] = [list(line.get_ydata()) for line in fig.axes[0].get_lines()]
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    plot_sweep(out)
    assert drawn["success_vs_task.png"] == [[1.0, 0.0], [1.0, 0.0]]  # one line per nudge, over the two tasks
    write_table(out)
    with open(out / "results.csv") as f:
        assert [json.loads(r["task"]) for r in csv.DictReader(f)] == [tasks[0], tasks[0], tasks[1], tasks[1]]


def test_ctrl_c_while_the_spec_is_expanded_says_no_point_ran(tmp_path, monkeypatch, capsys):
    import metamaterial.sweep  # noqa: PLC0415

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(metamaterial.sweep, "load_sweep", interrupted)
    assert main(["sweep", _spec(tmp_path, grid={"learning.nudge": [0.5]})]) == 130
    assert capsys.readouterr().err.splitlines() == [
        "metamaterial: interrupted; no point was run, and nothing was written"]


def test_a_task_that_fails_before_its_training_leaves_its_points_to_do(tmp_path, monkeypatch, capsys):
    """A worker that cannot import the package fails every task as Dask's "Error during deserialization of the task
    graph", before the training: the points are not recorded as failed, the sweep says what happened in one line
    and exits 1, and the same command runs them once the cluster is fixed."""
    path = _spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]})
    out = tmp_path / "out"

    def broken(points, out, *args):
        raise RuntimeError("Error during deserialization of the task graph. This frequently\noccurs if the "
                           "Scheduler and Client have different environments.")
    monkeypatch.setattr(worker, "run_points", broken)
    assert main(["sweep", path, "--out", str(out), "--workers", "1", "--no-plots", "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "0/2 ok, 0 failed, 2 pending" in captured.out
    assert captured.err.splitlines() == [
        "metamaterial: 2 point(s) run are still pending: 2 never started training: their task failed on the cluster "
        "(RuntimeError: Error during deserialization of the task graph; the cluster's workers or scheduler likely "
        "cannot import metamaterial, or have another version of it); once the cluster is fixed, the same command "
        "runs them"]
    assert not (out / "results").exists()
    monkeypatch.undo()
    assert main(["sweep", path, "--out", str(out), "--workers", "1", "--no-plots", "--no-progress"]) == 0
    assert "2/2 ok, 0 failed, 0 pending" in capsys.readouterr().out


def test_a_task_lost_after_its_training_started_records_its_points_failed(tmp_path, monkeypatch, capsys):
    """A task whose worker died while it trained (KilledWorker) fails its points, with the error, as before; the
    summary tells how to run them again."""
    path = _spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]})
    out = tmp_path / "out"

    def dies(points, out, *args):
        for p in points:
            log_event(Path(out), "started", p.key, worker="w")
        raise RuntimeError("the worker died")
    monkeypatch.setattr(worker, "run_points", dies)
    assert main(["sweep", path, "--out", str(out), "--workers", "1", "--no-plots", "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[1:3] == [
        "0/2 ok, 2 failed (RuntimeError x2), 0 pending",
        "(which points failed, and why: results.csv's status and error columns; a failed point stays failed when "
        "the sweep runs again: --retry-failed runs it again)"]
    assert captured.err == ""
    assert read_result(out, load_sweep(path).points[0].key)["error"]["message"] == "the worker died"


def test_a_worker_that_does_not_see_the_folder_trains_nothing(tmp_path):
    point = load_sweep(_spec(tmp_path, grid={"learning.nudge": [0.5]})).points[0]
    with pytest.raises(FileNotFoundError, match="no such folder on the worker .*: the workers do not see the sweep"):
        run_points([point], str(tmp_path / "elsewhere"))
    assert not (tmp_path / "elsewhere").exists()


def test_a_boolean_axis_is_plotted_as_its_values_in_the_spec_order(tmp_path, monkeypatch):
    import matplotlib.figure  # noqa: PLC0415

    spec = load_sweep(_spec(tmp_path, grid={"network.periodic": [True, False], "learning.nudge": [0.5, 1.0]}))
    out = _points_folder(tmp_path, spec)
    for p in spec.points:
        write_result(out, p.key, {"key": p.key, "status": "ok", "summary": {"final_loss": 1e-3 * (p.index + 1)}})
    drawn = {}

    def savefig(fig, path, **kwargs):
        ax = fig.axes[0]
        drawn[Path(path).name] = ([t.get_text() for t in ax.get_xticklabels()],
                                  [list(line.get_xdata()) for line in ax.get_lines()])
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    plot_sweep(out)
    assert drawn["final_loss_vs_network.periodic.png"] == (["True", "False"], [[0, 1], [0, 1]])
    assert drawn["final_loss_heatmap_network.periodic_learning.nudge.png"][0] == ["True", "False"]


def test_an_out_holding_another_sweep_is_refused_before_anything_runs(tmp_path, capsys):
    """--out of another sweep (another name) given by mistake: this sweep's points.json would replace that one's,
    and its table and figures would no longer describe that sweep's results. Refused in one line, dry run or not,
    the folder left as it was; a sweep of the same name (an edited spec) resumes there as before."""
    (tmp_path / "b").mkdir()
    other = _points_folder(tmp_path, load_sweep(_spec(tmp_path / "b", name="mismatch",
                                                      grid={"learning.rate": [1.0, 2.0, 3.0]})))
    points = (other / "points.json").read_text()
    path = _spec(tmp_path, name="nudges", grid={"learning.nudge": [0.5, 1.0]})
    for extra in (["--dry-run"], ["--scheduler", "tcp://127.0.0.1:1"]):
        assert main(["sweep", path, "--out", str(other), "--no-plots", *extra]) == 2
        assert capsys.readouterr().err == (f"metamaterial: --out {other}: holds the sweep 'mismatch' (3 points), not "
                                           "'nudges'; give this sweep a folder of its own (default "
                                           "runs/sweeps/nudges), or remove that one\n")
        assert (other / "points.json").read_text() == points
    same = _spec(tmp_path, name="mismatch", grid={"learning.rate": [1.0, 4.0]})
    assert main(["sweep", same, "--out", str(other), "--dry-run"]) == 0


@pytest.mark.parametrize(("k", "n"), [(0, 20), (20, 20), (1, 3), (7, 10), (50, 100)])
def test_a_success_rates_band_is_its_wilson_interval_never_empty_at_0_or_1(k, n):
    """The band of a rate of k successes in n: both ends q solve (p - q)^2 = q (1 - q) / n (Wilson's score
    interval at z = 1), the rate lies inside, and at 0 of n or n of n the band still has width (the Wald error
    p (1 - p) / n, drawn before, is 0 there: 20 seeds that all failed would look certain)."""
    from metamaterial.sweep.report import _stat

    mean, low, high, count = _stat([1.0] * k + [0.0] * (n - k), rate=True)
    p = k / n
    assert count == n and mean == pytest.approx(p) and 0 <= low <= p <= high <= 1
    for q in (low, high):
        assert (p - q) ** 2 == pytest.approx(q * (1 - q) / n, abs=1e-12)
    assert high - low > 0.04
    assert (low == pytest.approx(0, abs=1e-15)) == (k == 0) and (high == pytest.approx(1)) == (k == n)


def test_a_metrics_band_is_the_sample_standard_deviation_about_the_mean():
    """Over 2 or 3 seeds the spread is the sample's (ddof 1): the population's (ddof 0), drawn before, was 0.71x
    and 0.82x it, a band too narrow; one seed has none."""
    from metamaterial.sweep.report import _stat

    assert _stat([1.0, 3.0], rate=False) == (2.0, 2.0 - 2 ** 0.5, 2.0 + 2 ** 0.5, 2)
    mean, low, high, n = _stat([1.0, 2.0, 6.0, float("nan")], rate=False)  # a NaN (no value) is left out
    assert (mean, n) == (3.0, 3) and high - mean == pytest.approx(mean - low) == pytest.approx(7 ** 0.5)
    assert _stat([5.0], rate=False) == (5.0, 5.0, 5.0, 1)


def test_zipped_axes_are_drawn_as_one_and_drawn_values_as_markers(tmp_path, monkeypatch):
    """A zip's axes move together: against one of them, the other is no line of its own (one line per learning.rate
    here, not one per rate and simulator.gmin, each a single point), and no heat map pairs them (it would be a
    diagonal). A random group's values are drawn: against one, markers without lines; over a pair with one, a
    scatter. A folder written before the groups were recorded draws every axis as a grid, as it did."""
    import matplotlib.figure  # noqa: PLC0415

    spec = load_sweep(_spec(tmp_path, grid={"learning.rate": [1.0, 2.0]},
                            zip={"learning.rate_decay": [1.0, 0.99, 0.98], "simulator.gmin": [1e-12, 2e-12, 3e-12]},
                            random={"n": 3, "seed": 1, "axes": {"learning.nudge": {"uniform": [0.2, 0.8]}}}))
    assert spec.groups == (("grid", ("learning.rate",)), ("zip", ("learning.rate_decay", "simulator.gmin")),
                           ("random", ("learning.nudge",)))
    out = _points_folder(tmp_path, spec)
    for p in spec.points:
        write_result(out, p.key, {"key": p.key, "status": "ok", "summary": {"final_loss": 1e-3 * (1 + p.index)}})
    drawn = {}

    def savefig(fig, path, **kwargs):
        Path(path).write_text("png")
        drawn[Path(path).name] = [(len(line.get_xdata()), line.get_linestyle()) for line in fig.axes[0].get_lines()]
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    plot_sweep(out, "final_loss")
    assert drawn == {"final_loss_vs_learning.rate.png": [(2, "-")],  # 3 x 3 other combinations: one line, "all"
                     "final_loss_vs_learning.rate_decay.png": [(3, "-")] * 6,
                     "final_loss_vs_simulator.gmin.png": [(3, "-")] * 6,
                     "final_loss_vs_learning.nudge.png": [(3, "None")] * 6,  # a line per rate and zip row
                     "final_loss_heatmap_learning.rate_learning.rate_decay.png": [],
                     "final_loss_heatmap_learning.rate_simulator.gmin.png": [],
                     "final_loss_scatter_learning.rate_learning.nudge.png": [],
                     "final_loss_scatter_learning.rate_decay_learning.nudge.png": [],
                     "final_loss_scatter_simulator.gmin_learning.nudge.png": []}
    zipped = load_sweep(_spec(tmp_path, grid={"learning.rate": [1.0, 2.0]},
                              zip={"learning.rate_decay": [1.0, 0.99, 0.98], "simulator.gmin": [1e-12, 2e-12, 3e-12]}))
    (tmp_path / "z").mkdir()
    out = _points_folder(tmp_path / "z", zipped)
    for p in zipped.points:
        write_result(out, p.key, {"key": p.key, "status": "ok", "summary": {"final_loss": 1e-3 * (1 + p.index)}})
    drawn.clear()
    plot_sweep(out, "final_loss")
    assert drawn["final_loss_vs_learning.rate_decay.png"] == [(3, "-"), (3, "-")]  # one line per rate
    assert "final_loss_heatmap_learning.rate_decay_simulator.gmin.png" not in drawn
    old = json.loads((out / "points.json").read_text())
    del old["groups"]
    (out / "points.json").write_text(json.dumps(old))
    drawn.clear()
    plot_sweep(out, "final_loss")
    assert len(drawn["final_loss_vs_learning.rate_decay.png"]) == 6  # a line per rate and gmin, one value each
    assert "final_loss_heatmap_learning.rate_decay_simulator.gmin.png" in drawn


def test_a_network_drawn_from_the_run_seed_is_not_judged_by_one_seeds_draw(tmp_path):
    """A layered network without network.seed is drawn anew for each seed: one draw may leave a node unconnected
    where another does not, so no draw is checked at expansion (checking the first seed's refused or passed the
    whole sweep by which seed came first); a bad draw fails its own point when it runs."""
    base = yaml.safe_load((ROOT / "configs" / "regression.yaml").read_text())
    base.pop("roles", None)
    base.update(seed=1, network={"kind": "layered", "n_inputs": 1, "n_hidden": 4, "n_outputs": 1, "n_edges": 5})
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    path = _spec(tmp_path, seeds=4, base="base.yaml")
    spec = load_sweep(path)
    assert [p.config.seed for p in spec.points] == [1, 2, 3, 4]
    with pytest.raises(ValidationError, match="leaves 1 node\\(s\\) unconnected"):
        build(spec.points[0].config)  # seed 1's draw: the point that fails when it runs (it refused the sweep)


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) and its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_sweep_refuses_a_run_directory_and_leaves_it_byte_for_byte(tmp_path, capsys):
    """A sweep's summary.json would overwrite a run's (``plot`` then finds the run damaged): --out of a run
    directory is refused in one line naming the folder, what it holds and what to do, dry run or not, before the
    sweep writes anything there."""
    run = tmp_path / "run"
    assert main(["train", REGRESSION, "--out", str(run), "--backend", "native", "--set", "learning.epochs=5",
                 "--no-progress", "--no-plots"]) == 0
    before = _tree(run)
    path = _spec(tmp_path, name="nudges", grid={"learning.nudge": [0.5, 1.0]})
    capsys.readouterr()
    for extra in (["--dry-run"], ["--workers", "1"]):
        assert main(["sweep", path, "--out", str(run), "--no-progress", "--no-plots", *extra]) == 2
        assert capsys.readouterr().err == (
            f"metamaterial: --out {run}: holds a run of `metamaterial train` (checkpoint.npz, clamped.cir, "
            "config.yaml, free.cir and 4 more), whose summary.json the sweep would overwrite; give this sweep a folder "
            "of its own with another --out (default runs/sweeps/nudges)\n")
        assert _tree(run) == before
    assert main(["plot", str(run)]) == 0  # the run is whole


def test_train_and_the_commands_on_a_run_refuse_a_sweep_folder_and_leave_it_byte_for_byte(tmp_path, capsys):
    """train --out of a sweep's folder (with --replace too, which would take the sweep's files for the user's) and
    train --resume of it are refused before anything is written; eval, plot, netlist, energy and transient say that
    it is a sweep's folder and how to report it."""
    sweep = tmp_path / "sweep"
    path = _spec(tmp_path, name="nudges", grid={"learning.nudge": [0.5, 1.0]})
    assert main(["sweep", path, "--out", str(sweep), "--workers", "1", "--no-progress", "--no-plots"]) == 0
    before = _tree(sweep)
    assert "summary.json" in before and "points.json" in before
    capsys.readouterr()
    holds = "holds the sweep 'nudges' (points.json, events.jsonl, results/)"
    train = ["train", REGRESSION, "--out", str(sweep), "--backend", "native", "--set", "learning.epochs=5",
             "--no-progress", "--no-plots"]
    assert main(train) == 2
    assert capsys.readouterr().err == (f"metamaterial: {sweep}: {holds}, whose summary.json a run would overwrite; "
                                       "train into another --out\n")
    assert main([*train, "--replace"]) == 2
    assert capsys.readouterr().err == (f"metamaterial: {sweep}: {holds}, whose summary.json a run would overwrite "
                                       "(--replace replaces a run, never a sweep); train into another --out\n")
    assert main(["train", "--resume", str(sweep)]) == 2
    assert capsys.readouterr().err == (f"metamaterial: {sweep}: {holds}, not a run to resume (a sweep resumes its "
                                       "points itself); give the run directory of a `metamaterial train`, or run the "
                                       "sweep's command again to finish its points\n")
    for command in (["eval"], ["plot"], ["energy"], ["transient"], ["netlist", "--out", str(tmp_path / "nl")]):
        assert main([command[0], str(sweep), *command[1:]]) == 2
        assert capsys.readouterr().err == (f"metamaterial: {sweep}: {holds}, not a run directory, which {command[0]} "
                                           f"reads; for the sweep's table and figures: metamaterial sweep-report "
                                           f"{sweep}\n")
    assert _tree(sweep) == before and not (tmp_path / "nl").exists()


def test_sweep_report_of_what_is_no_sweep_folder_names_it(tmp_path, capsys):
    """sweep-report said "not a sweep folder (no readable points.json)" of a spec or a config given in place of the
    folder its sweep wrote: they are named for what they are, a spec with its default folder."""
    spec = ROOT / "configs" / "sweeps" / "corners.yaml"
    xor = ROOT / "configs" / "xor.yaml"
    cases = [(tmp_path, f"{tmp_path}: not a sweep folder (no readable points.json); give the --out of a sweep"),
             (spec, f"{spec}: a sweep spec, not a sweep folder; give the folder its sweep wrote (its --out, by default "
                    "runs/sweeps/corners)"),
             (xor, f"{xor}: a YAML file, not a sweep folder; give the folder a sweep wrote (metamaterial sweep SPEC "
                   "--out DIR; by default runs/sweeps/<the spec's name>)")]
    for path, message in cases:
        assert main(["sweep-report", str(path)]) == 2
        assert capsys.readouterr().err == f"metamaterial: {message}\n"


def test_the_summary_ends_with_the_best_and_worst_setting_by_the_metric(tmp_path, capsys):
    """The summary gave counts only: which setting did best, and by how much, was left to the table. Now its last
    line and summary.json name them, each the mean over its seeds, as results.csv holds them."""
    out = tmp_path / "out"
    path = _spec(tmp_path, grid={"learning.rate": [0.5, 5.0, 50.0]}, seeds=2)
    assert main(["sweep", path, "--out", str(out), "--workers", "1", "--no-plots", "--no-progress",
                 "--metric", "final_loss"]) == 0
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    means = {rate: np.mean([float(r["final_loss"]) for r in rows if r["learning.rate"] == rate])
             for rate in ("0.5", "5.0", "50.0")}
    best, worst = min(means, key=means.get), max(means, key=means.get)
    assert best != worst
    head = json.loads((out / "summary.json").read_text())["headline"]
    assert head["metric"] == "final_loss" and head["higher_is_better"] is False
    assert head["best"] == {"values": {"learning.rate": float(best)}, "mean": means[best], "seeds": 2, "tied": []}
    assert head["worst"] == {"values": {"learning.rate": float(worst)}, "mean": means[worst], "seeds": 2, "tied": []}
    assert capsys.readouterr().out.splitlines()[2] == (
        f"final_loss (mean over seeds): best (lowest) {means[best]:.4g} at learning.rate={float(best)} (2 seeds); "
        f"worst {means[worst]:.4g} at learning.rate={float(worst)} (2 seeds)")


def test_a_sweep_without_seeds_keeps_the_seed_column_and_a_tie_names_no_best(tmp_path, capsys):
    """results.csv left out the seed of a spec with no seeds group (the summary's seed was dropped); and settings
    that score alike were printed as a best and a worst."""
    out = tmp_path / "out"
    path = _spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]})
    doc = yaml.safe_load(Path(path).read_text())
    doc["set"] += ["learning.epochs=0", "seed=7"]  # untrained: the same loss at either nudge
    Path(path).write_text(yaml.safe_dump(doc, sort_keys=False))
    assert main(["sweep", path, "--out", str(out), "--workers", "1", "--no-plots", "--no-progress"]) == 0
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["seed"] for r in rows] == ["7", "7"] and rows[0]["final_loss"] == rows[1]["final_loss"]
    assert capsys.readouterr().out.splitlines()[2] == (f"final_loss (mean over seeds): "
                                                        f"{float(rows[0]['final_loss']):.4g} at each of the 2 settings")


def test_settings_tied_at_the_worst_are_all_named(tmp_path, capsys):
    """Settings of the same mean at the worst end were printed as one worst: "worst 0.05 at learning.epochs=0,
    learning.rate=0.5" when the untrained point at rate 5 scores the same. The summary and summary.json name
    every setting tied with the one shown."""
    out = tmp_path / "out"
    path = _spec(tmp_path, set=_SET_BUT_EPOCHS, grid={"learning.epochs": [0, EPOCHS], "learning.rate": [0.5, 5.0]})
    assert main(["sweep", path, "--out", str(out), "--workers", "1", "--no-plots", "--no-progress",
                 "--metric", "final_loss"]) == 0
    with open(out / "results.csv", newline="") as f:
        untrained = [r for r in csv.DictReader(f) if r["learning.epochs"] == "0"]
    assert untrained[0]["final_loss"] == untrained[1]["final_loss"]  # no update: the rate changes nothing
    head = json.loads((out / "summary.json").read_text())["headline"]
    assert head["worst"]["values"] == {"learning.epochs": 0, "learning.rate": 0.5}
    assert head["worst"]["tied"] == [{"learning.epochs": 0, "learning.rate": 5.0}]
    assert head["best"]["tied"] == [] and head["best"]["values"]["learning.epochs"] == EPOCHS
    assert capsys.readouterr().out.splitlines()[2].endswith(
        f"worst {float(untrained[0]['final_loss']):.4g} at learning.epochs=0, learning.rate=0.5 (1 seed; tied with "
        "learning.epochs=0, learning.rate=5.0)")


def test_a_hinge_point_reports_the_hinge_loss_train_reports(tmp_path):
    """A sweep's summary had the outputs' MSE only: of a hinge-trained point (XOR) not the objective it trains,
    which train's summary.json gives; now both give the same initial and final hinge loss, to the last bit."""
    doc = {"base": str(ROOT / "configs" / "xor.yaml"), "set": ["simulator.backend=native", "learning.epochs=60"]}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    (point,) = load_sweep(str(path)).points
    out = tmp_path / "sweep"
    out.mkdir()
    assert [b["status"] for b in run_points([point], str(out))] == ["ok"]
    config = tmp_path / "point.yaml"
    config.write_text(dump_config(point.config))
    run = tmp_path / "run"
    assert main(["train", str(config), "--out", str(run), "--no-progress", "--no-plots"]) == 0
    trained = json.loads((run / "summary.json").read_text())
    s = read_result(out, point.key)["summary"]
    assert s["final_hinge_loss"] > 0 and s["initial_hinge_loss"] > s["final_hinge_loss"]
    assert (s["initial_hinge_loss"], s["final_hinge_loss"]) == (trained["initial_hinge_loss"],
                                                                trained["final_hinge_loss"])


def test_a_second_sweep_into_a_folder_a_sweep_is_running_in_is_refused(tmp_path, capsys):
    """Two sweeps into one folder trained each point twice (a 'duplicate' event for the slower) and wrote the same
    task checkpoints in turns: the one that finds the folder's lock held (``replacement.folder_lock``, which a
    running sweep holds to its end) is refused in one line, and the folder is left as it was; once the lock is
    free the same command runs."""
    from metamaterial.replacement import folder_lock

    path = _spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]})
    out = tmp_path / "out"
    out.mkdir()
    argv = ["sweep", path, "--out", str(out), "--workers", "1", "--no-plots", "--no-progress"]
    with folder_lock(out) as held:  # as the running sweep holds it
        assert held
        assert main(argv) == 2
    assert capsys.readouterr().err == (f"metamaterial: {out}: a `sweep` into it is running in another process; wait "
                                       "for it to end (the same command then runs what is left), or choose another "
                                       "--out\n")
    assert list(out.iterdir()) == []
    assert main(argv) == 0
    assert len(load_table(out)[1]) == 2


def test_a_hardware_time_recorded_under_the_old_clock_is_left_out_of_the_table(tmp_path):
    """Before revision 4 a point's hardware_time_s counted 2 t_settle a step; since, a t_settle + t_learn slot per
    presented point. A record of each kind, both still today's points: the table keeps the new one's figure and
    leaves the old one's out, rather than rank two clocks against each other."""
    from metamaterial import revisions  # noqa: PLC0415
    from metamaterial.sweep.store import SLOT_CLOCK_SINCE  # noqa: PLC0415

    assert SLOT_CLOCK_SINCE <= revisions.CURRENT
    spec = load_sweep(_spec(tmp_path, grid={"learning.nudge": [0.5, 1.0]}))
    out = tmp_path / "out"
    for p, revision in zip(spec.points, (SLOT_CLOCK_SINCE - 1, revisions.CURRENT)):
        assert write_result(out, p.key, {"key": p.key, "status": "ok", "values": p.values, "revision": revision,
                                         "config": config_text(p.config),
                                         "summary": {"final_loss": 0.1, "hardware_time_s": 2.0}})
    run = run_sweep(spec, out, workers=1)
    assert (run.total, run.skipped) == (2, 2)
    assert [r["hardware_time_s"] for r in load_table(out)[1]] == [None, 2.0]


@pytest.mark.parametrize("chips", [False, True])
def test_each_point_reports_its_trained_networks_power_as_the_energy_command_gives_it(tmp_path, chips):
    """A point's network_power_w and edge_power_w are what `metamaterial energy` gives for its trained gates (the
    free twin's total, median over the points, and one edge's, median over edges and points), whether its seeds
    train as one batch or each replica is a chip of its own (its own circuit and solver)."""
    from metamaterial import costs  # noqa: PLC0415
    from metamaterial.runs import train_replicas  # noqa: PLC0415

    mismatch = ["device.mismatch={vto_sigma: 0.01, k_sigma: 0.005, per_replica: true}"] if chips else []
    spec = load_sweep(_spec(tmp_path, seeds=2, **({"set": [*_SET, *mismatch]} if chips else {})))
    out = tmp_path / "out"
    assert run_sweep(spec, out, workers=1).ok == 2
    for p in spec.points:
        summary = read_result(out, p.key)["summary"]
        done = train_replicas(p.config, [p.config.seed])
        done.trainer.solver.close()
        energy = costs.energy_run(costs.Source(p.config, done.state.controls[0], None, None, seed=p.config.seed)
                                  if chips else costs.Source(p.config, done.state.controls[0], None, None),
                                  tmp_path / f"energy{p.index}", plots=False)["summary"]
        assert summary["network_power_w"] == pytest.approx(energy["free_total_median_w"], rel=1e-9)
        assert summary["edge_power_w"] == pytest.approx(energy["free_median_w"], rel=1e-9)
    powers = [read_result(out, p.key)["summary"]["network_power_w"] for p in spec.points]
    assert powers[0] != powers[1] and all(w > 0 for w in powers)
