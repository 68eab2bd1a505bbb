"""Sweep specs: YAML -> a deterministic list of validated points. Nothing here runs a simulation.

A spec names a base config (a path, relative to the spec, or an inline mapping), optional ``set`` overrides of it
(``--set`` syntax) and axes over config key paths, in four groups combined as a product, in this order (the last
varies fastest):

``grid``   every combination of its axes' values;
``zip``    its axes walked together (equal lengths);
``random`` ``n`` samples drawn from ``seed``: each axis ``{uniform: [a, b]}``, ``{loguniform: [a, b]}``,
           ``{randint: [a, b]}`` (an integer from a to b, both included: for an integer key) or a list (one item
           drawn with equal odds);
``seeds``  the run seed: ``N`` (the base config's seed .. seed + N - 1) or a list.

``target_loss`` (V^2, optional) adds each point's learning time until its loss first reached it; it is part of
each point's key, so a result reported against another target is another point's, and never taken for this one's.

Values are lists or ``{linspace: [a, b, n]}`` / ``{logspace: [a, b, n]}`` (n values from a to b, evenly or
geometrically spaced: ``logspace: [1e-4, 1e-2, 3]`` is 1e-4, 1e-3, 1e-2). Every axis value is checked on the
base config alone (an error names the group, the key and the value), then every point is validated as a whole,
before anything runs. A value, seed, zip row or random draw given twice is refused, and so are two points whose
configs are the same: they would share one result, run once and count twice in the table. A spec expands to at
most ``MAX_POINTS`` points, counted from the axes' lengths before anything is expanded.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..config import PLAIN_NAME, Config, validate_config
from ..configfile import (
    apply_override,
    as_trained,
    config_from_document,
    is_key_within,
    read_document,
    set_key_path,
)
from ..datafiles import is_pins, pin_files
from ..errors import ConfigError, ValidationError, shown
from ..experiment import check_config, check_roles, drawn_from_run_seed
from ..revisions import Revision, changed_since, revision_of
from ..units import listed

GROUPS = ("grid", "zip", "random", "seeds")
SPEC_KEYS = ("name", "base", "set", "target_loss", *GROUPS)
#: the keys of a spec that a config does not have (both have a name): one of them makes a document a spec
SPEC_ONLY_KEYS = tuple(k for k in SPEC_KEYS if k not in Config.model_fields)
#: the keys of a config that a spec does not have: one of them, and no key of a spec only, makes a document a config
CONFIG_ONLY_KEYS = tuple(k for k in Config.model_fields if k not in SPEC_KEYS)
#: the axis column of the seeds group
SEED_AXIS = "seed"
#: most points a spec may expand to, checked from the axes' lengths before anything is expanded: each point holds
#: its validated config (~10 KB) and takes ~2 ms to validate (measured 2026-12 on a 4x4 XOR), so this is ~1 GB
#: and minutes before the first point runs; a larger study is several specs
MAX_POINTS = 100_000
#: the most items (numbers, texts, lists, mappings) one axis value may hold: a config's longest lists (a task's x
#: and y) hold hundreds, and a YAML anchor and its aliases expand a few hundred bytes into 10^9 items, which the
#: value's key (its JSON text) would take minutes and gigabytes to write
MAX_VALUE_ITEMS = 100_000


@dataclass(frozen=True)
class Point:
    """One point of a sweep: its axis values (key path -> value, in axis order), its resolved config, the hash
    of that config, of the files it reads and of the spec's ``target_loss`` (the key of its result file), the content
    hashes of those files (``datafiles.pin_files``; empty for a config that reads none) and the target loss (V^2)
    its learning time to the target is reported against (None: none)."""

    index: int
    values: dict[str, Any]
    config: Config
    key: str
    files: dict = field(default_factory=dict)
    target_loss: float | None = None


@dataclass(frozen=True)
class SweepSpec:
    """An expanded sweep: its name, the axis key paths (columns of the result table) and the points; with
    ``target_loss`` (V^2) each point also reports the learning time until its loss first reached it."""

    name: str
    source: str
    axes: tuple[str, ...]
    points: tuple[Point, ...]
    target_loss: float | None = None
    #: (group, its axes) in the spec's order: the axes of one ``zip`` row move together, a ``random`` group's are
    #: drawn values (the figures treat them so)
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()


#: PyYAML's libyaml emitter when it was built with it: the same text as the pure-Python one, 4x faster (a
#: 1,000-point spec spent ~10 s of its expansion writing each point's config as YAML to hash it)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def config_text(cfg: Config) -> str:
    """``configfile.dump_config(cfg)``, the resolved config as YAML, written by libyaml when PyYAML has it."""
    return yaml.dump(cfg.document(), Dumper=_DUMPER, sort_keys=False)


def config_key(cfg: Config, files: dict | None = None, target_loss: float | None = None) -> str:
    """The hash of a resolved config (every default spelled out): 16 hex digits of the SHA-256 of its YAML text
    (``configfile.dump_config``), of the latest revision of the dynamics that changed how it trains, if one did
    (``revisions``: results made before it are under another key), of the content of the files it reads, if
    it reads any (``files``: ``datafiles.pin_files``; the config names only their paths, so a result trained on a
    CSV since edited is under another key), and of the spec's ``target_loss``, if it sets one (a result's learning
    time to the target was measured against it: one against another target is under another key)."""
    return _hashed(_key_text(cfg), files, target_loss)


def _key_text(cfg: Config) -> str:
    """What ``config_key`` hashes of a config: its text and the revision of the dynamics it trains under."""
    revision = revision_of(cfg)
    return config_text(cfg) + (f"# trained under revision {revision}\n" if revision > 1 else "")


def _hashed(text: str, files: dict | None, target_loss: float | None = None) -> str:
    text += "".join(f"# {key} sha256 {pin['sha256']}\n" for key, pin in sorted((files or {}).items()))
    text += f"# target_loss {float(target_loss)!r}\n" if target_loss is not None else ""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SavedPoint:
    """What a result record is today (``read_saved``): the key of the point its saved config is under today's
    schema (with the content of the files it read, its ``files``, and the target loss it reported against, its
    ``target_loss``), that key without the files' content (the point it would be had it read today's content), that
    key without the target (the point it would be had it reported against no target), and the first revision of the
    dynamics since it was made that changed how its config trains (None: it is still that point's result)."""

    key: str
    key_without_files: str
    key_without_target: str
    revision: Revision | None


def read_saved(record: dict) -> SavedPoint | None:
    """What a result record's saved config (``config``, the YAML text of ``config_text``) is today, read once:
    under today's schema, where keys added since it was written take their defaults (or what the run did, where
    that differs: ``configfile.as_trained``), so a value that differs from today's point, a changed default included,
    gives another key; so does the content of the files it read (its ``files``: a record made before they were
    recorded, of a config that reads files, is no point's result today). Its revision is the record's
    ``revision`` (none: 1). None if the record holds no config or it is not valid today."""
    text = record.get("config")
    if not isinstance(text, str):
        return None
    try:
        doc = yaml.load(text, Loader=_LOADER)
        cfg = validate_config(as_trained(doc), "saved config") if isinstance(doc, dict) else None
    except (ConfigError, yaml.YAMLError):
        return None
    if cfg is None:
        return None
    made_under = record.get("revision", 1)
    files = record.get("files") if is_pins(record.get("files")) else None
    target = record.get("target_loss") if _number(record.get("target_loss")) else None
    key_text = _key_text(cfg)
    return SavedPoint(_hashed(key_text, files, target), _hashed(key_text, None, target), _hashed(key_text, files),
                      changed_since(cfg, made_under if isinstance(made_under, int) else 1))


def saved_config_key(record: dict) -> str | None:
    """``read_saved``'s key of a record that is still its point's result; None otherwise (no valid config, or
    trained before a revision that changed how its config trains: the point runs again)."""
    saved = read_saved(record)
    return saved.key if saved is not None and saved.revision is None else None


def shape_key(cfg: Config) -> str:
    """A hash of a resolved config without its seed: points of one shape differ in seed alone (a key for grouping
    within one run, never stored)."""
    doc = cfg.model_dump(mode="json", by_alias=True)
    doc.pop("seed")
    return hashlib.sha256(json.dumps(doc).encode()).hexdigest()[:16]


#: the endings of a YAML file's name: a config's or a sweep spec's
YAML_SUFFIXES = (".yaml", ".yml")


def yaml_file(path: Path) -> Any:
    """The document of the file ``path`` where its name ends as a YAML file's (``YAML_SUFFIXES``), ``{}`` where it
    cannot be read as one; None for a folder, a missing path or another file: what a command that wants a folder
    names a config or a spec given in its place by."""
    if not path.is_file() or path.suffix.lower() not in YAML_SUFFIXES:
        return None
    try:
        return read_document(path)
    except ConfigError:  # not valid YAML: taken for a config all the same, whose own command says what is wrong
        return {}


def is_sweep_spec(doc: Any) -> bool:
    """Whether a YAML document is a sweep spec: a mapping holding ``base:``, or a key that only a spec has
    (``SPEC_ONLY_KEYS``) and none that only a config has (a config with a stray ``seeds: 10`` is a config)."""
    return isinstance(doc, dict) and ("base" in doc or (any(k in doc for k in SPEC_ONLY_KEYS)
                                                        and not any(k in doc for k in CONFIG_ONLY_KEYS)))


def load_sweep(path: str | Path, overrides: list[str] | None = None) -> SweepSpec:
    """Read and expand the sweep spec at ``path``; ``overrides`` (``key.path=value``) change its base config."""
    p = Path(path)
    return expand_sweep(read_document(p, "sweep spec", "name:, base:, grid:"), str(p), p.parent, overrides)


def expand_sweep(doc: dict, source: str, base_dir: str | Path, overrides: list[str] | None = None) -> SweepSpec:
    """Expand a spec document (relative paths against ``base_dir``); raises ``ConfigError`` naming the spec's key
    or the axis at fault."""
    unknown = [k for k in doc if k not in SPEC_KEYS]
    config_keys = [k for k in doc if k in CONFIG_ONLY_KEYS]
    if config_keys and not is_sweep_spec(doc):
        raise ConfigError(f"{source}: a train config, not a sweep spec (got the config keys {listed(config_keys, 4)}); "
                          "a spec names the config to sweep as base: (a path relative to the spec) and its axes under "
                          f"{', '.join(g + ':' for g in GROUPS[:-1])} or {GROUPS[-1]}:, as in configs/sweeps/")
    if unknown:
        raise ConfigError(f"{source}: {unknown[0]}: unknown key of a sweep spec; use {', '.join(SPEC_KEYS)}")
    name = _name(doc, source)
    base_raw, base_source, base_dir = _base(doc, source, Path(base_dir))
    sets = doc.get("set") or []
    stray = _stray(sets, lambda s: isinstance(s, str))
    if not isinstance(sets, list) or stray:
        raise ConfigError(f"{source}: set: must be a list of 'key.path=value' strings (got {stray or shown(sets)}); "
                          "give each change as an item of a list, e.g. set: [learning.epochs=200, "
                          "simulator.backend=native]")
    changes = [*((f"{source}: set[{i}]", item) for i, item in enumerate(sets)), *((None, o) for o in overrides or [])]
    unchanged = copy.deepcopy(base_raw)
    for where, item in changes:  # the raw base every point starts from (where None: the command line's --set)
        apply_override(base_raw, item, where)
    try:
        base = config_from_document(copy.deepcopy(base_raw), f"{base_source} with set/--set" if changes else
                                    base_source, base_dir)
    except ConfigError:
        _blame_change(unchanged, changes, base_source, base_dir)
        raise
    empty = [g for g in GROUPS if g in doc and doc[g] is None]
    if empty:
        raise ConfigError(f"{source}: {empty[0]}: empty (null: every entry commented out?); give its axes, or remove "
                          f"{empty[0]}:")
    target = doc.get("target_loss")  # part of every point's key
    if target is not None and not (_number(target) and target > 0):
        raise ConfigError(f"{source}: target_loss: must be a loss in V^2 > 0 (got {shown(target)}); give a positive "
                          "number such as 1e-3, or remove target_loss")
    target = None if target is None else float(target)
    groups = [g for g in GROUPS if doc.get(g) is not None]
    blocks = [_block(group, doc[group], source, base) for group in groups]
    axes = [key for keys, _ in blocks for key in keys]
    _check_count(math.prod(len(rows) for _, rows in blocks), source,
                 " x ".join(f"{g} {len(rows):,}" for g, (_, rows) in zip(groups, blocks)))
    for i, key in enumerate(axes):  # one key path in two spellings (bounds.0, bounds[0]), or one inside another
        other = next((a for a in axes[:i] if is_key_within(key, a) or is_key_within(a, key)), None)
        if other is not None:
            also = "" if other == key else f" ({other} and {key})"
            raise ConfigError(f"{source}: {key}: swept by two axes{also}; give each key path one axis")
    swept = {key: group for group, (keys, _) in zip(groups, blocks) for key in keys if key != SEED_AXIS}
    for where, item in changes:  # an axis sets its key at every point: a set of it, or inside it, would be lost
        key = item.split("=", 1)[0].strip()
        axis = next((a for a in swept if is_key_within(key, a)), None)
        if axis is not None:
            at = f"--set {item}" if where is None else f"{where} ({item})"
            raise ConfigError(f"{at}: {key}: swept by the axis {swept[axis]} {axis}, which sets it at every point, so "
                              "this value would be used by none; remove it, or the axis")
    for group, (keys, rows) in zip(groups, blocks):
        for j, key in enumerate(keys):  # each value alone on the base: an error names its axis, key and value
            for value in dict.fromkeys(json.dumps(row[j]) for row in rows):
                _point_config(base_raw, {key: json.loads(value)}, f"{source}: {group} {key}={value}", base_dir)
    points: list[Point] = []
    by_key: dict[str, Point] = {}
    hashed: dict[str, str] = {}  # a data file every point reads is hashed once
    networks: set[str] = set()  # the networks, roles and tasks whose roles were checked
    for i, combo in enumerate(itertools.product(*[rows for _, rows in blocks])):
        values = {k: v for (keys, _), row in zip(blocks, combo) for k, v in zip(keys, row)}
        where = f"{source}: {_point_name(i, values)}"
        cfg = _point_config(base_raw, values, where, base_dir)
        # what build checks but compiling the circuit; the roles once per network, roles and task, where the
        # network is not drawn from the run's seed (then a draw refused fails its own point when it runs)
        network = json.dumps([cfg.model_dump(mode="json", include={"network", "roles", "task"})], sort_keys=True)
        try:
            check_config(cfg)
            if network not in networks and not drawn_from_run_seed(cfg):
                check_roles(cfg)
                networks.add(network)
        except (ConfigError, ValidationError) as err:
            raise ConfigError(f"{where}: {err}") from None
        files = pin_files(cfg, hashed)
        point = Point(i, values, cfg, config_key(cfg, files, target), files, target)
        if point.key in by_key:
            raise ConfigError(f"{source}: {_point_name(by_key[point.key].index, by_key[point.key].values)} and "
                              f"{_point_name(i, values)}: the same config (key {point.key}); sweep values that "
                              "differ (a repeated point runs once and would count twice)")
        by_key[point.key] = point
        points.append(point)
    return SweepSpec(name, source, tuple(axes), tuple(points), target,
                     tuple((g, tuple(keys)) for g, (keys, _) in zip(groups, blocks)))


def points_document(spec: SweepSpec) -> dict:
    """What a sweep folder's points.json holds of ``spec``: its name, source, axes, groups (each ``{group, axes}``)
    and points (index, key, axis values)."""
    return {"name": spec.name, "spec": spec.source, "axes": list(spec.axes),
            "groups": [{"group": g, "axes": list(keys)} for g, keys in spec.groups],
            "points": [{"index": p.index, "key": p.key, "values": p.values} for p in spec.points]}


def _name(doc: dict, source: str) -> str:
    """The spec's ``name`` (default: its file name), held to a config's rule: it names the sweep's folder under
    runs/sweeps, so ``../x`` or ``a/b`` would write elsewhere."""
    name = doc.get("name", Path(source).stem)
    if not isinstance(name, str) or not PLAIN_NAME.match(name):
        given, fix = ("", "give") if "name" in doc else (", the spec's file name: it has no name:", "add name: with")
        raise ConfigError(f"{source}: name: must be a plain name matching {PLAIN_NAME.pattern} (got {shown(name)}"
                          f"{given}); {fix} a letter, then up to 63 letters, digits, _ or -")
    return name


def _blame_change(raw: dict, changes: list[tuple[str | None, str]], base_source: str, base_dir: Path) -> None:
    """When the base config is valid alone and its ``set``/``--set`` items ((where, item): ``apply_override``)
    make it invalid, raise the error of the first item after which it is, naming that item; else return (the
    combined error stands)."""
    try:
        config_from_document(copy.deepcopy(raw), base_source, base_dir)
    except ConfigError:
        return
    for where, item in changes:
        apply_override(raw, item, where)
        config_from_document(copy.deepcopy(raw), f"{where} ({item})" if where else f"--set {item}", base_dir)


def _point_name(index: int, values: dict[str, Any]) -> str:
    return f"point {index} ({', '.join(f'{k}={shown(v)}' for k, v in values.items())})"


def _base(doc: dict, source: str, spec_dir: Path) -> tuple[dict, str, Path]:
    base = doc.get("base")
    if isinstance(base, str):
        path = spec_dir / base  # an absolute base replaces spec_dir
        try:
            found = read_document(path)
        except ConfigError as err:
            raise ConfigError(f"{source}: base: {err} (a path relative to the spec)") from None
        if is_sweep_spec(found):  # read as a config, its keys were refused one by one, in its own name
            raise ConfigError(f"{source}: base: {path} is a sweep spec, not a config (got the spec keys "
                              f"{', '.join(k for k in found if k in SPEC_ONLY_KEYS)}); give the config it sweeps, "
                              "its own base:, or move this spec's axes into that spec")
        return found, str(path), path.parent
    if isinstance(base, dict):
        return copy.deepcopy(base), f"{source}: base", spec_dir
    if "base" not in doc:
        raise ConfigError(f"{source}: base: required key is missing; give the config the points start from, a file "
                          "path such as base: ../xor.yaml (relative to the spec) or an inline config mapping")
    raise ConfigError(f"{source}: base: must be a config file path (relative to the spec) or an inline config mapping "
                      f"(got {shown(base)}); give one of them, e.g. base: ../xor.yaml")


def _point_config(base_raw: dict, values: dict[str, Any], where: str, base_dir: Path) -> Config:
    raw = copy.deepcopy(base_raw)
    for key, value in values.items():  # a copy: a mapping value is the axis's own, shared by its points
        set_key_path(raw, key, copy.deepcopy(value), where)
    return config_from_document(raw, where, base_dir)


def _block(group: str, body: Any, source: str, base: Config) -> tuple[list[str], list[tuple]]:
    """(axis keys, rows of values) of one group of the spec."""
    at = f"{source}: {group}"
    if group == "seeds":
        if isinstance(body, int) and not isinstance(body, bool) and body >= 1:
            _check_count(body, at)
            return [SEED_AXIS], [(base.seed + i,) for i in range(body)]
        stray = _stray(body, lambda s: isinstance(s, int) and not isinstance(s, bool) and s >= 0)
        if isinstance(body, list) and body and not stray:
            _check_repeats(body, at, "seed")
            return [SEED_AXIS], [(s,) for s in body]
        raise ConfigError(f"{at}: must be a count N >= 1 or a list of seeds >= 0 (got {stray or shown(body)}); give "
                          "e.g. seeds: 3 (the base config's seed and the next 2) or seeds: [0, 7]")
    if not isinstance(body, dict) or not body:
        raise ConfigError(f"{at}: must be a mapping of key paths to values (got {shown(body)}); give one axis a "
                          f"line under {group}:, e.g. learning.nudge: [0.5, 1.0]")
    if group == "random":
        return _random(body, at)
    keys = [_axis_key(k, at) for k in body]
    columns = [_values(body[k], f"{at}.{k}") for k in body]
    if group == "grid":
        for key, column in zip(keys, columns):
            _check_repeats(column, f"{at}.{key}", "value")
        _check_count(math.prod(len(c) for c in columns), at,
                     " x ".join(f"{k} {len(c):,}" for k, c in zip(keys, columns)))
        return keys, list(itertools.product(*columns))
    lengths = {len(c) for c in columns}
    if len(lengths) > 1:
        got = ", ".join(f"{k}: {len(c)}" for k, c in zip(keys, columns))
        raise ConfigError(f"{at}: zipped axes need equal lengths (got {got}); give each axis of zip as many values, "
                          "or move an axis to grid")
    rows = list(zip(*columns))
    _check_repeats([dict(zip(keys, row)) for row in rows], at, "row")
    return keys, rows


def _stray(items: Any, ok: Callable[[Any], bool]) -> str:
    """The first of a list's ``items`` that is not ``ok`` and its index, for a message's "(got ...)" ("-1 at index
    6"): shown() of the list would hide it past the fifth. "" if there is none, or ``items`` is no list."""
    i = next((i for i, item in enumerate(items) if not ok(item)), None) if isinstance(items, list) else None
    return "" if i is None else f"{shown(items[i])} at index {i}"


def _axis_key(key: Any, at: str) -> str:
    if key == SEED_AXIS:
        raise ConfigError(f"{at}: {SEED_AXIS}: the run seed is not an axis; sweep it in the seeds group, seeds: N (the "
                          "base config's seed and the next N - 1) or a list such as seeds: [0, 7]")
    if not isinstance(key, str):
        raise ConfigError(f"{at}: {shown(key)}: an axis is a config key path (got the {type(key).__name__} "
                          f"{shown(key)}); give one such as learning.nudge")
    return key


def _values(body: Any, at: str) -> list:
    if isinstance(body, list):
        if not body:
            raise ConfigError(f"{at}: an empty list of values; give at least one")
        return [_plain(_check_size(v, at)) for v in body]
    if isinstance(body, dict) and len(body) == 1 and next(iter(body)) in ("linspace", "logspace"):
        kind, args = next(iter(body.items()))
        ok = (isinstance(args, list) and len(args) == 3 and all(_number(a) for a in args[:2])
              and isinstance(args[2], int) and not isinstance(args[2], bool) and args[2] >= 1)
        if not ok or (kind == "logspace" and (args[0] <= 0 or args[1] <= 0)):
            positive, example = (", a, b > 0", "[1e-4, 1e-2, 3]") if kind == "logspace" else ("", "[0.1, 0.9, 5]")
            raise ConfigError(f"{at}: {kind} needs [a, b, n] (numbers, n >= 1 an integer{positive}) "
                              f"(got {shown(args)}); give e.g. {{{kind}: {example}}}, n values from a to b")
        _check_count(args[2], at)
        values = [_round(v) for v in (np.linspace(*args) if kind == "linspace" else np.geomspace(*args))]
        # whole numbers between whole ends stay integers: {linspace: [1000, 3000, 3]} over learning.epochs, an
        # integer key, gave 1000.0, refused as no integer with advice to write it without a decimal point; and
        # each one does, so that over an integer key the value refused is one that is not whole ([10, 20, 4]: 13.33)
        whole = all(isinstance(a, int) and not isinstance(a, bool) for a in args[:2])
        return [int(v) if whole and v.is_integer() else v for v in values]
    raise ConfigError(f"{at}: values must be a list or {{linspace: [a, b, n]}} or {{logspace: [a, b, n]}} "
                      f"(got {shown(body)}); write them as a list such as [0.5, 1.0] (one value: [0.5])")


def _random(body: dict, at: str) -> tuple[list[str], list[tuple]]:
    extra = [k for k in body if k not in ("n", "seed", "axes")]
    if extra:
        raise ConfigError(f"{at}: {extra[0]}: unknown key of a random group; use n, seed and axes")
    n, seed, axes = body.get("n"), body.get("seed", 0), body.get("axes")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"{at}.n: must be the number of samples, an integer >= 1 (got {shown(n)}); give e.g. "
                          "n: 10")
    _check_count(n, f"{at}.n")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"{at}.seed: must be an integer >= 0 (got {shown(seed)}); give e.g. seed: 0 (it seeds the "
                          "draws; the runs' seeds are the seeds group)")
    if not isinstance(axes, dict) or not axes:
        raise ConfigError(f"{at}.axes: must be a mapping of key paths to distributions (got {shown(axes)}); give "
                          "e.g. axes: {learning.nudge: {uniform: [0.1, 1.0]}}")
    keys = [_axis_key(k, f"{at}.axes") for k in axes]
    draws = [_distribution(axes[k], f"{at}.axes.{k}") for k in axes]
    rng = np.random.default_rng(seed)
    rows = [tuple(draw(rng) for draw in draws) for _ in range(n)]
    _check_repeats([dict(zip(keys, row)) for row in rows], at, "draw",
                   "draw fewer samples (n), or from more values (a list's items repeat)")
    return keys, rows


def _check_count(n: int, at: str, made_of: str = "") -> None:
    """Refuse ``n`` points (values, seeds, samples: each is at least a point) beyond ``MAX_POINTS`` before they are
    made; ``made_of`` says how they multiply."""
    if n > MAX_POINTS:
        raise ConfigError(f"{at}: {n:,} points{f' ({made_of})' if made_of else ''}, more than a sweep's limit of "
                          f"{MAX_POINTS:,}; sweep fewer values, or split the study into several specs")


def _check_repeats(items: list, at: str, what: str, fix: str = "") -> None:
    """Refuse an item given twice: its points would have one key, run once and count twice in the table."""
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        text = json.dumps(item, sort_keys=True)
        if text in first:
            raise ConfigError(f"{at}: the {what}s at index {first[text]} and {i} are the same (got {shown(item)} "
                              f"twice); {fix or f'give each {what} once'} (a repeated point runs once and would count "
                              "twice)")
        first[text] = i


def _distribution(body: Any, at: str):
    if isinstance(body, list) and body:
        items = [_plain(_check_size(v, at)) for v in body]
        return lambda rng: items[int(rng.integers(len(items)))]
    if isinstance(body, dict) and len(body) == 1 and next(iter(body)) == "randint":
        args = body["randint"]  # an integer key (learning.epochs, network.n_hidden): a uniform draw is no integer
        if not (isinstance(args, list) and len(args) == 2 and all(isinstance(a, int) and not isinstance(a, bool)
                                                                  for a in args) and args[0] < args[1]):
            raise ConfigError(f"{at}: randint needs [a, b], two integers with a < b (got {shown(args)}); give e.g. "
                              "{randint: [100, 1000]} (a and b both drawn)")
        return lambda rng: int(rng.integers(args[0], args[1] + 1))
    if isinstance(body, dict) and len(body) == 1 and next(iter(body)) in ("uniform", "loguniform"):
        kind, args = next(iter(body.items()))
        if not (isinstance(args, list) and len(args) == 2 and all(_number(a) for a in args) and args[0] < args[1]
                and (kind == "uniform" or args[0] > 0)):
            positive, example = (" and a > 0", "[1e-4, 1e-2]") if kind == "loguniform" else ("", "[0.1, 1.0]")
            raise ConfigError(f"{at}: {kind} needs [a, b] with a < b{positive} (got {shown(args)}); give two "
                              f"numbers, the lower first, e.g. {{{kind}: {example}}}")
        if kind == "uniform":
            return lambda rng: _round(rng.uniform(args[0], args[1]))
        return lambda rng: _round(math.exp(rng.uniform(math.log(args[0]), math.log(args[1]))))
    raise ConfigError(f"{at}: a distribution is a list to draw from, {{uniform: [a, b]}}, {{loguniform: [a, b]}} or "
                      f"{{randint: [a, b]}} (got {shown(body)}); give one of them, e.g. [0.5, 1.0] or {{uniform: "
                      "[0.1, 1.0]}")


def _check_size(value: Any, at: str) -> Any:
    """``value``, refused if it holds more than ``MAX_VALUE_ITEMS`` items (counted until there are too many: the
    walk stops there)."""
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        count += 1
        if count > MAX_VALUE_ITEMS:
            raise ConfigError(f"{at}: a value of more than {MAX_VALUE_ITEMS:,} items (got {shown(value)}); sweep "
                              "values a config takes (its longest lists hold hundreds)")
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return value


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _round(v: float) -> float:
    """12 significant digits: linspace(0, 0.02, 5) gives 0.015, not 0.015000000000000001."""
    return float(f"{float(v):.12g}")


def _plain(v: Any) -> Any:
    return _round(v) if isinstance(v, float) else v


__all__ = ["GROUPS", "MAX_POINTS", "SEED_AXIS", "Point", "SweepSpec", "config_key", "config_text", "points_document",
           "SavedPoint", "read_saved", "saved_config_key", "shape_key", "load_sweep", "expand_sweep"]
