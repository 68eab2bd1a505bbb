"""Every leaf key of the config schema, set to each of a fixed list of hostile values on a shipped config, either
builds or is refused as ours naming the key: never a bare TypeError, ZeroDivisionError, numpy warning or other
error from deep inside ``build``, and never a build holding an infinite or nan number (an accepted value whose
consequence is nonsense: a channel length of 5e-324 m built an infinite K).

The values are given as ``--set key=value`` gives them (``load_config``'s overrides), one key at a time, and each
config goes through ``build`` as ``metamaterial train`` takes it before training: nothing is solved or trained.
Every key is tried on XOR and regression; on the other configs a seeded sample of the keys, so the whole test stays
within a minute.
"""

from __future__ import annotations

import dataclasses
import random
import typing
import warnings

import numpy as np
import pydantic
import pytest

from conftest import ROOT
from metamaterial.config import Config
from metamaterial.configfile import load_config
from metamaterial.errors import MetamaterialError
from metamaterial.experiment import build

#: configs on which every key is tried, and those on which a sample of ``SAMPLED_KEYS`` keys is (each builds in
#: well under a second: digits, the slowest, about 0.3 s)
EVERY_KEY = ("xor", "regression")
SAMPLED = ("iris", "pot_regression", "digits")
SAMPLED_KEYS = 48
SEED = 20261204

#: hostile values, as YAML text after ``key=``: a word, signs and zeros, the extremes of a float, not-a-number,
#: nothing, a list, a mapping, a boolean, a long text, a newline, a SPICE control line, a subnormal, an integer
#: too large for int64, and the spellings YAML reads as other types
VALUES = ("abc", "-1", "0", "1e30", "-1e30", ".nan", ".inf", "-.inf", "", "[1, 2]", "{a: 1}", "true", "x" * 5000,
          '"a\\nb"', '".control"', '"\\n.control\\nshell echo x\\n.endc"', "[]", "{}", "5e-324", "1e308",
          "9223372036854775808", "'1'", "[.nan]", "2")

#: a key whose refusal may name another key instead: the key it is checked against (a cross-key refusal)
CROSS = {
    # a side of 1 leaves the roles' nodes outside the lattice
    "network.rows": ("roles.",),
    "network.cols": ("roles.",),
    # layer sizes are checked against the edges drawn between them
    "network.n_inputs": ("network.n_edges",),
    "network.n_hidden": ("network.n_edges",),
    "network.n_outputs": ("network.n_edges",),
    # a potentiometer of fewer taps moves the bounds its initial controls must lie in
    "device.n_taps": ("learning.init", "learning.bounds"),
    # roles are read together: an output without an input, an input without the outputs
    "roles.inputs": ("roles.outputs", "roles:"),
    "roles.outputs": ("roles:", "roles.inputs"),
}


def _leaf_keys(model: type[pydantic.BaseModel], prefix: str = "") -> list[str]:
    """Every leaf key path of the config schema as a config spells it (``device.params.lambda``, not ``lambda_``)."""
    keys = []
    for name, f in model.model_fields.items():
        members = [f.annotation, *typing.get_args(f.annotation)]
        sections = [m for m in members if isinstance(m, type) and issubclass(m, pydantic.BaseModel)]
        key = prefix + (f.alias or name)
        if not sections:
            keys.append(key)
        for section in sections:
            keys.extend(_leaf_keys(section, key + "."))
    return keys


KEYS = sorted(set(_leaf_keys(Config)))


def _cases() -> list[tuple[str, str]]:
    rng = random.Random(SEED)
    cases = [(name, key) for name in EVERY_KEY for key in KEYS]
    for name in SAMPLED:
        cases += [(name, key) for key in sorted(rng.sample(KEYS, SAMPLED_KEYS))]
    return cases


def _numbers(obj: object, where: str, depth: int = 0):
    """(where, values) of every float and float array in ``obj``, a dataclass of a ``Setup``, and in the dataclasses
    and sequences it holds, three levels down."""
    if isinstance(obj, (float, np.floating)):
        yield where, np.asarray(obj)
    elif isinstance(obj, np.ndarray) and obj.dtype.kind in "fc":
        yield where, obj
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type) and depth < 3:
        for f in dataclasses.fields(obj):
            yield from _numbers(getattr(obj, f.name), f"{where}.{f.name}", depth + 1)
    elif isinstance(obj, (tuple, list)) and depth < 3:
        for i, item in enumerate(obj):
            yield from _numbers(item, f"{where}[{i}]", depth + 1)


def _not_finite(setup) -> list[str]:
    """The places of ``setup`` holding an infinite or nan number (``Setup.dynamics.leak_tau`` is None, not inf,
    when there is no leak); an nmos device's K too, which is a property."""
    found = [where for part in ("circuit", "task", "rule", "dynamics", "hardware", "params", "options")
             for where, values in _numbers(getattr(setup, part), part) if not np.isfinite(values).all()]
    beta = getattr(setup.circuit.device, "beta", None)
    return found + ([f"circuit.device.beta ({beta})"] if beta is not None and not np.isfinite(beta) else [])


def _names_a_key_involved(message: str, key: str) -> bool:
    """Whether ``message`` names ``key``, the section holding it (a nested one: ``learning.leak`` for
    ``learning.leak.rest``, whose refusal names the ``tau`` it needs), or a key ``CROSS`` says it is checked with."""
    parent = key.rpartition(".")[0]
    return key in message or (parent.count(".") >= 1 and parent in message) or any(
        other in message for other in CROSS.get(key, ()))


def test_the_schema_walk_finds_the_keys_of_every_section():
    assert len(KEYS) > 100
    assert {"seed", "learning.leak.tau", "device.params.lambda", "device.params.is", "timing.settle.rel_tol",
            "roles.rails.node", "task.validation.fraction"} <= set(KEYS)
    assert not [k for k in KEYS if k.endswith("_") or k.split(".")[0] not in Config.model_fields]


def test_every_shipped_config_in_the_test_builds_as_it_is_with_finite_numbers():
    for name in EVERY_KEY + SAMPLED:
        setup = build(load_config(ROOT / "configs" / f"{name}.yaml"))
        assert len(list(_numbers(setup.rule, "rule"))) >= 2 and not _not_finite(setup), name


@pytest.mark.parametrize("name, key", _cases(), ids=[f"{n}-{k}" for n, k in _cases()])
def test_a_hostile_value_builds_or_is_refused_naming_its_key(name, key):
    path = ROOT / "configs" / f"{name}.yaml"
    failures = []
    for value in VALUES:
        item = f"{key}={value}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a numpy overflow or invalid value is a failure too
                setup = build(load_config(path, [item]))
            if bad := _not_finite(setup):
                failures.append(f"{item[:60]!r}: accepted, and the build holds inf or nan at {', '.join(bad)}")
        except MetamaterialError as err:
            if not _names_a_key_involved(str(err), key):
                failures.append(f"{item[:60]!r}: refused without naming {key}: {str(err)[:300]}")
        except Exception as err:  # noqa: BLE001 (any other exception is what this test looks for)
            failures.append(f"{item[:60]!r}: {type(err).__name__}: {str(err)[:300]}")
    assert not failures, f"configs/{name}.yaml, {key}:\n" + "\n".join(failures)
