"""Config files: YAML -> raw document -> ``--set`` overrides -> ``config.validate_config`` -> ``Config``, and back.

YAML is read strictly (``read_document``, for sweep specs too): a key given twice is refused, and ``1e-4`` is a
float. ``--set key.path=value`` overrides are applied to the raw document before validation, so they are checked
the same way; relative paths in a config resolve against its folder. Each run saves ``dump_config``'s text (every
default spelled out); ``load_saved_config`` reads it back as that run was trained (``as_trained``), and
``config_differences`` compares a saved one with a new one. The config edge of the flow, above ``config``.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from .config import ALWAYS_READ, DEVICE_KEYS, NETWORK_KEYS, TASK_KEYS, Config, validate_config
from .configmessages import key_path
from .datafiles import read_text
from .errors import ConfigError, refusal, shown


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that gives one key twice (plain YAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in first:
                raise refusal(ConfigError, self.name, f"duplicate key {shown(key)} (got it first at line {first[key]})",
                              "keep one of them", line)
            first.setdefault(key, line)
        return super().construct_mapping(node, deep)


    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except ConfigError:
            raise
        except ValueError as err:  # a scalar that reads as a number or date Python refuses: PyYAML lets it escape
            at = self.name, node.start_mark.line + 1, node.start_mark.column + 1
            if node.tag == "tag:yaml.org,2002:int":  # Python reads at most 4300 digits (sys.int_info)
                raise refusal(ConfigError, at[0], f"a whole number too long to read (got {len(node.value):,} "
                              "characters)", f"give at most {sys.get_int_max_str_digits():,} digits",
                              *at[1:]) from None
            raise refusal(ConfigError, at[0], f"invalid YAML ({err}: {shown(node.value)})",
                          "fix the value, or quote it to give text", *at[1:]) from None


# YAML 1.2 floats: plain YAML 1.1 reads 1e-4 (no dot) as a string, which the strict models would refuse
_UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(
    r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+)$"),
    list("-+0123456789."))


def _parse_yaml(text: str, source: str) -> Any:
    loader = None
    try:
        loader = _UniqueKeyLoader(text)  # checks the characters: a control character (a NUL, a bell) fails here
        loader.name = source
        return loader.get_single_data()
    except yaml.reader.ReaderError as err:  # no problem_mark; its position is a character offset
        at = err.position
        code = err.character if isinstance(err.character, int) else ord(err.character)
        raise refusal(ConfigError, source, f"invalid YAML (control character U+{code:04X}, which YAML does not "
                      "allow)", "remove it", text.count(chr(10), 0, at) + 1, at - text.rfind(chr(10), 0, at)) from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise refusal(ConfigError, source, f"invalid YAML ({getattr(err, 'problem', None) or err})", "fix the syntax",
                      *((mark.line + 1, mark.column + 1) if mark else ())) from err
    finally:
        if loader is not None:
            loader.dispose()


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read, override and validate a YAML config; relative paths in it resolve against its folder. ``overrides``:
    a list of ``key.path=value`` texts, each as the command line's ``--set`` takes it."""
    if isinstance(overrides, (str, bytes)):  # iterated, it would be one override per character
        raise ConfigError(f"load_config: overrides must be a list of key.path=value texts (got the text "
                          f"{shown(overrides)}); give [{shown(overrides)}]")
    for k, item in enumerate(overrides or []):
        if not isinstance(item, str):
            raise ConfigError(f"load_config: overrides must be key.path=value texts (got {shown(item)} at index {k}); "
                              "write each like 'learning.epochs=200'")
    if not isinstance(path, (str, os.PathLike)):  # a dict of keys was pathlib's "expected str, bytes or os.PathLike"
        raise ConfigError(f"load_config: path must be a config file's path (got {type(path).__name__} "
                          f"{shown(path)}); give e.g. 'configs/xor.yaml' (keys of your own: write them to a YAML file, "
                          "or set them with overrides)")
    p = Path(path)
    doc = read_document(p)
    from .sweep.spec import SPEC_ONLY_KEYS, is_sweep_spec  # noqa: PLC0415 (a spec is read through this module)

    if is_sweep_spec(doc):
        q = shlex.quote(str(p))
        raise ConfigError(f"{p}: a sweep spec, not a config (got the spec keys "
                          f"{', '.join(k for k in doc if k in SPEC_ONLY_KEYS)}); run it with metamaterial sweep {q}, "
                          "or give the config it sweeps, its base:")
    return config_from_document(doc, str(p), p.parent, overrides)


def as_config(cfg: Config | str | os.PathLike, where: str, overrides: list[str] | None = None) -> Config:
    """``cfg`` as the ``Config`` a public entry point (``where``: its name) works on: a Config as given, or a YAML
    config file's path read by ``load_config`` (with ``overrides``); anything else is refused by name."""
    if isinstance(cfg, Config):
        return cfg
    if isinstance(cfg, (str, os.PathLike)):
        return load_config(cfg, overrides)
    keys = " (keys of your own: write them to a YAML file)" if isinstance(cfg, dict) else ""
    raise ConfigError(f"{where}: cfg must be a Config or a config file's path (got {type(cfg).__name__} "
                      f"{shown(cfg)}); give e.g. 'configs/xor.yaml' or load_config('configs/xor.yaml'){keys}")


def load_saved_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """A run directory's config.yaml (the text ``dump_config`` wrote), read as that run was trained: keys this
    version added since take their defaults, except where the default would change what the run did
    (``as_trained``)."""
    p = Path(path)
    try:
        raw = read_document(p)
    except ConfigError as err:  # a run's config.yaml that holds no config: the run directory is damaged
        from .runfiles import damaged  # noqa: PLC0415 (the run directory's files import the trainer)

        at = ", column ".join(str(n) for n in (err.line, err.column) if n is not None)
        raise damaged(p, f"{err.problem or err} at line {at}" if at else str(err.problem or err)) from err
    return config_from_document(as_trained(raw), str(p), p.parent, overrides, missing=(
        "the run was trained on the file there: restore it, or train a new run with another --out"))


def as_trained(raw: dict) -> dict:
    """``raw`` (a saved config, changed in place) with what its version did spelled out: a run saved before
    ``task.split_seed`` existed (2026-12-02) drew its held-out split from the run's seed."""
    task = raw.get("task")
    if isinstance(task, dict) and "split_seed" not in task and isinstance(raw.get("seed"), int):
        task["split_seed"] = raw["seed"]
    # a key its network, task or device does not read was ignored when the run trained (a config was not refused
    # for it before 2026-12-02): dropped, so that the run still loads
    for part, kind, read in (("network", "kind", NETWORK_KEYS), ("task", "name", TASK_KEYS)):
        doc = raw.get(part)
        keys = read.get(doc.get(kind, "lattice" if part == "network" else None)) if isinstance(doc, dict) else None
        if keys is not None:
            for key in [k for k in doc if k not in (*keys, *ALWAYS_READ)]:
                del doc[key]
    device = raw.get("device")
    if isinstance(device, dict):
        unread = [k for kind, keys in DEVICE_KEYS.items() if kind != device.get("kind", "nmos") for k in keys]
        unread += ["preset"] if device.get("model_file") is not None else []
        for key in unread:
            device.pop(key, None)
    return raw


def read_document(path: str | Path, what: str = "config", keys: str = "name:, roles:, task:") -> dict:
    """The raw mapping of a YAML file, read with this module's strict YAML (no duplicate keys, 1e-4 a float);
    errors call it ``what`` and suggest its first ``keys``."""
    p = Path(path)
    text = read_text(p, ConfigError, "", what, _where_shipped(p), f"give a YAML {what}")
    raw = _parse_yaml(text, str(p))
    if raw is None and _holds_nothing(text):  # YAML reads a file of nothing (or of comments) as null
        got = ("0 bytes" if not text else "only comments" if "#" in text else "only blank lines" if not text.strip()
               else "no keys")
        raise refusal(ConfigError, str(p), f"the file is empty (got {got})", f"write the {what} in it, starting with "
                      f"keys such as {keys}")
    if not isinstance(raw, dict):
        got = "null" if raw is None else type(raw).__name__
        raise refusal(ConfigError, str(p), f"the top level must be a mapping of sections (got {got})",
                      f"start the file with keys such as {keys}")
    return raw


#: the repository's shipped configs (a checkout or an editable install; absent from a wheel)
SHIPPED_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _where_shipped(path: Path) -> str:
    """What to do about a path that cannot be read: check it, and where a shipped file of that name lies
    (``configs/xor.yaml`` is read from the working folder; run from elsewhere it was only "no such file")."""
    if path.exists():
        return "check the path"
    names = [path.name] + ([] if path.suffix else [f"{path.name}.yaml"])
    found = [d / n for d in (SHIPPED_CONFIGS, SHIPPED_CONFIGS / "sweeps") for n in names if (d / n).is_file()]
    return f"check the path; the shipped one is {found[0]}" if found else "check the path"


def _holds_nothing(text: str) -> bool:
    """Whether a YAML text holds only blank lines, comments and document markers (``---``, ``...``)."""
    lines = (line.strip() for line in text.splitlines())
    return all(not line or line.startswith("#") or line.split("#")[0].strip() in ("---", "...") for line in lines)


def config_from_document(raw: dict, source: str, base_dir: str | Path, overrides: list[str] | None = None,
                         missing: str = "check the path (relative to the config's folder)") -> Config:
    """Validate a raw config document (changed in place by ``--set`` style ``overrides``); errors name ``source``,
    relative paths in it resolve against ``base_dir``; a file it names that does not exist is refused with
    ``missing``, what to do about it."""
    for item in overrides or []:
        apply_override(raw, item)
    cfg = _resolve_paths(validate_config(raw, source, lambda message: set_by(message, overrides or [])),
                         Path(base_dir))
    for key, value in (("network.file", cfg.network.file if cfg.network.kind == "file" else None),
                       ("device.model_file", cfg.device.model_file), ("task.path", cfg.task.path)):
        if value is not None and not Path(value).exists():
            raise ConfigError(f"{source}: file not found: {value} ({key}); {missing}")
    return cfg


_PART = re.compile(r"([A-Za-z][A-Za-z0-9_-]{0,63}|[0-9]+)((?:\[[0-9]+\])*)$")


def _key_parts(key: str) -> list[str] | None:
    """``roles.rails[0].volts`` or ``roles.rails.0.volts`` -> ["roles", "rails", "0", "volts"]; None if it is not
    a key path."""
    parts: list[str] = []
    for piece in key.split("."):
        m = _PART.match(piece)
        if not m:
            return None
        parts.append(m.group(1))
        parts.extend(re.findall(r"\[([0-9]+)\]", m.group(2)))
    return parts


def apply_override(raw: dict, item: str, where: str | None = None) -> None:
    """Apply ``key.path=value`` (value parsed as YAML; list items as ``rails[0]`` or ``rails.0``) to a raw config
    dict in place; errors name it as ``--set key`` (from the command line), or as ``where: key`` (a file's
    ``set:`` item, ``spec.yaml: set[0]``)."""
    key, value = item.split("=", 1) if "=" in item else (item, None)
    key = key.strip()
    at = f"--set {key}" if where is None else f"{where}: {key}"
    if value is None:
        example = "--set learning.epochs=200" if where is None else "learning.epochs=200"
        raise ConfigError(f"{at}: expected key.path=value (got no '='); e.g. {example}")
    set_key_path(raw, key, _parse_yaml(value, at), at)


def set_by(message: str, overrides: list[str]) -> str | None:
    """``--set key=value``: the last of the ``--set`` style ``overrides`` that set a key path ``message`` starts
    with (``learning.epochs: ...``; a refusal about two keys names both, ``learning.batch_size, learning.schedule:
    ...``, so that the --set of either is found, whichever of them the config file gave), a key above it
    (``--set learning={epochs: abc}``) or a key inside it (``--set learning.init.low=5`` for ``learning.init``);
    None if no such key was set, or ``message`` names no key path."""
    # as key_path writes them (a key of a mapping may be any text: device.corners.1x)
    named = message.split(": ", 1)[0].split(", ") if ": " in message else []
    for item in reversed(overrides):
        key = _normal(item.split("=", 1)[0].strip())
        if key and any(_within(key, k) or _within(k, key) for k in named):
            # the value as given (the message says what is wrong with it); a long one shortened
            return f"--set {item if len(item) <= 80 else item[:77] + '...'}"
    return None


def _normal(key: str) -> str | None:
    """``roles.rails.0.volts`` and ``roles.rails[0].volts`` as one text, ``roles.rails[0].volts``."""
    parts = _key_parts(key)
    return None if parts is None else "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts).lstrip(".")


def _within(key: str, section: str) -> bool:
    return key == section or key.startswith((f"{section}.", f"{section}["))


def is_key_within(key: str, section: str) -> bool:
    """Whether the key path ``key`` is ``section`` or lies inside it (``learning.init.low`` in ``learning.init``),
    however each spells a list index (``rails.0``, ``rails[0]``)."""
    a, b = _normal(key), _normal(section)
    return a is not None and b is not None and _within(a, b)


def set_key_path(raw: dict, key: str, value: Any, where: str) -> None:
    """Set ``key`` (a key path such as ``learning.nudge`` or ``roles.rails[0].volts``) of a raw config dict to
    ``value`` in place, creating missing sections; errors start with ``where``."""
    parts = _key_parts(key)
    if not parts:
        raise ConfigError(f"{where}: not a key path (got {shown(key)}); write it like learning.nudge or "
                          "roles.rails[0].volts")
    node: Any = raw
    for depth, part in enumerate(parts):
        at = key_path(tuple(int(x) if x.isdigit() else x for x in parts[:depth]))
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"{where}: {at} is a list of {len(node)} item(s) (got index {shown(part)}); "
                                  f"give an index from 0 to {len(node) - 1}")
            part = int(part)
        elif not isinstance(node, dict):
            raise ConfigError(f"{where}: {at} is a value, not a section (got {shown(node)}); check the key path "
                              "against the config")
        if depth == len(parts) - 1:
            node[part] = value
        else:
            node = node[part] if isinstance(node, list) else node.setdefault(part, {})


def _resolve_paths(cfg: Config, base: Path) -> Config:
    def fix(part: BaseModel, key: str) -> BaseModel:
        v = getattr(part, key)
        return part if v is None or Path(v).is_absolute() else part.model_copy(update={key: str((base / v).resolve())})
    return cfg.model_copy(update={"network": fix(cfg.network, "file"), "device": fix(cfg.device, "model_file"),
                                  "task": fix(cfg.task, "path")})


def dump_config(cfg: Config) -> str:
    """The resolved config as YAML (``Config.document``: every default spelled out), saved with each run."""
    return yaml.safe_dump(cfg.document(), sort_keys=False)


def config_differences(saved_yaml_text: str, cfg: Config) -> list[str]:
    """Key paths (``simulator.backend``, ``roles.inputs[1]``) at which a saved resolved config (the text
    ``dump_config`` wrote into a run directory) and ``cfg`` differ, in ``cfg``'s order; [] if they are the same.

    A key only one of them has is a difference too; so is a list of another length (named as the list). Keys
    this version added since the run was saved take their defaults first (a run directory written before a new
    section existed still resumes when the new keys keep their defaults), or what the run did where that differs
    from the default (``as_trained``)."""
    saved = _parse_yaml(saved_yaml_text, "saved config.yaml")
    if not isinstance(saved, dict):
        raise ConfigError(f"saved config.yaml: the top level must be a mapping of sections (got "
                          f"{type(saved).__name__}); resume only a run directory that train wrote")
    try:
        saved = validate_config(as_trained(copy.deepcopy(saved)), "saved config.yaml").document()
    except ConfigError:
        pass  # a key this version does not know: compared as written, so the difference names it
    return _differences(saved, cfg.document(), ())


def _differences(saved: Any, now: Any, loc: tuple) -> list[str]:
    if isinstance(saved, dict) and isinstance(now, dict):
        keys = list(now) + [k for k in saved if k not in now]
        missing = object()
        return [d for k in keys for d in _differences(saved.get(k, missing), now.get(k, missing), (*loc, k))]
    if isinstance(saved, list) and isinstance(now, list) and len(saved) == len(now):
        return [d for i, (a, b) in enumerate(zip(saved, now)) for d in _differences(a, b, (*loc, i))]
    same = type(saved) is type(now) or {type(saved), type(now)} == {int, float}
    return [] if same and saved == now else [key_path(loc) or "<top>"]
