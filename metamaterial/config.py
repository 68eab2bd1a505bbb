"""YAML -> typed, validated configuration. Config stops here: the rest of the package takes typed values.

Unknown keys, wrong types and out-of-range values are errors that name the file and the key path, e.g.
``configs/xor.yaml: learning.nudge: must be in (0, 1] (got 1.5)``. ``--set key.path=value`` overrides
are applied to the raw document before validation, so they are checked the same way.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import ConfigError

NodeRef = Union[Annotated[int, Field(ge=0)], Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=2, max_length=2)]]
Volts = Annotated[float, Field(ge=-10.0, le=10.0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkConfig(_Strict):
    kind: Literal["lattice", "random", "file"] = "lattice"
    rows: Annotated[int, Field(ge=1, le=1000)] = 4
    cols: Annotated[int, Field(ge=1, le=1000)] = 4
    periodic: bool = True
    n_nodes: Annotated[int, Field(ge=2, le=1_000_000)] | None = None
    n_edges: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    seed: int | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _kind_fields(self) -> "NetworkConfig":
        if self.kind == "random" and (self.n_nodes is None or self.n_edges is None):
            raise ValueError("a random network needs n_nodes and n_edges")
        if self.kind == "file" and not self.file:
            raise ValueError("a file network needs 'file' (an edge list or .graphml path)")
        return self


class RailConfig(_Strict):
    node: NodeRef
    volts: Volts


class OutputConfig(_Strict):
    pos: NodeRef
    neg: NodeRef | None = None


class RolesConfig(_Strict):
    inputs: list[NodeRef] = []
    rails: list[RailConfig] = []
    outputs: Annotated[list[Union[OutputConfig, NodeRef]], Field(min_length=1)]


class NmosOverrides(_Strict):
    vto: Volts | None = None
    kp: Positive | None = None
    w: Positive | None = None
    l: Positive | None = None
    lambda_: Annotated[float | None, Field(ge=0, le=10, alias="lambda")] = None
    gamma: Annotated[float, Field(ge=0, le=10)] | None = None
    phi: Positive | None = None
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class MismatchConfig(_Strict):
    """Twin mismatch: independent Gaussian V_T shift and relative K error for every transistor."""

    vto_sigma: Annotated[float, Field(ge=0, le=1)] = 0.0
    k_sigma: Annotated[float, Field(ge=0, le=0.5)] = 0.0
    seed: Annotated[int, Field(ge=0)] | None = None


class DeviceConfig(_Strict):
    kind: Literal["nmos", "resistor", "potentiometer"] = "nmos"
    preset: Literal["ald1106-fit", "ald1106-l1"] = "ald1106-fit"
    model_file: str | None = None
    params: NmosOverrides = NmosOverrides()
    mismatch: MismatchConfig | None = None
    g_min: Positive = 1e-5
    g_max: Positive = 1e-2
    r_min: Positive = 40.0
    r_max: Positive = 32e3
    n_taps: Annotated[int, Field(ge=2, le=100000)] = 100

    @model_validator(mode="after")
    def _ranges(self) -> "DeviceConfig":
        if self.g_min >= self.g_max:
            raise ValueError(f"g_min must be < g_max (got {self.g_min}, {self.g_max})")
        if self.r_min >= self.r_max:
            raise ValueError(f"r_min must be < r_max (got {self.r_min}, {self.r_max})")
        return self


class TaskConfig(_Strict):
    name: Literal["xor", "regression", "linear_regression", "allostery", "iris", "csv"]
    low: Volts = 0.0
    high: Volts = 0.45
    labels: Annotated[list[Volts], Field(min_length=2, max_length=2)] | None = None
    x: list[Volts] | None = None
    y: list[Volts] | None = None
    n_points: Annotated[int, Field(ge=1, le=100000)] = 8
    slope: Annotated[float, Field(ge=-10, le=10)] = 0.4
    offset: Volts = 0.1
    source: Volts = 0.45
    targets: list[Volts] | None = None
    target_on: Volts = 0.3
    target_off: Volts = 0.15
    test_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.0
    path: str | None = None
    n_inputs: Annotated[int, Field(ge=1)] | None = None
    classification: bool = False
    scale: bool = False

    @model_validator(mode="after")
    def _task_fields(self) -> "TaskConfig":
        if self.name == "csv" and (not self.path or self.n_inputs is None):
            raise ValueError("a csv task needs 'path' and 'n_inputs'")
        if (self.x is None) != (self.y is None):
            raise ValueError("give both x and y, or neither")
        if self.x is not None and len(self.x) != len(self.y):
            raise ValueError(f"x and y must have equal length (got {len(self.x)} and {len(self.y)})")
        if self.low >= self.high:
            raise ValueError(f"low must be < high (got {self.low}, {self.high})")
        return self


class InitConfig(_Strict):
    """Initial controls; unset values take the device's defaults (nmos: uniform 0.5-2.0 V; resistor:
    uniform in [g_min, g_max]; potentiometer: uniform over the taps)."""

    kind: Literal["uniform", "constant"] = "uniform"
    low: float | None = None
    high: float | None = None
    value: float | None = None

    @model_validator(mode="after")
    def _order(self) -> "InitConfig":
        for v in (self.low, self.high, self.value):
            if v is not None and not math.isfinite(v):
                raise ValueError("init values must be finite")
        if self.kind == "constant" and self.value is None:
            raise ValueError("a constant init needs 'value'")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low must be <= high (got {self.low}, {self.high})")
        return self


class LeakConfig(_Strict):
    tau: Positive
    rest: float = 0.0


class LearningConfig(_Strict):
    epochs: Annotated[int, Field(ge=0, le=100_000_000)] = 1000
    nudge: Annotated[float, Field(gt=0, le=1)] = 1.0
    rate: Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)] | None = None
    schedule: Literal["cycle", "shuffle", "full_batch", "mini_batch"] = "cycle"
    batch_size: Annotated[int, Field(ge=1)] = 1
    update_probability: Annotated[float, Field(gt=0, le=1)] = 1.0
    loss: Literal["mse", "hinge"] = "mse"
    margin: Annotated[float, Field(ge=0, le=1)] = 0.02
    init: InitConfig = InitConfig()
    bounds: Annotated[list[float], Field(min_length=2, max_length=2)] | None = None
    leak: LeakConfig | None = None
    read_noise: Annotated[float, Field(ge=0, lt=1)] = 0.0
    bias: Annotated[float, Field(ge=-1, le=1)] = 0.0
    bias_sigma: Annotated[float, Field(ge=0, le=1)] = 0.0
    eval_every: Annotated[int, Field(ge=1)] = 1
    record_every: Annotated[int, Field(ge=1)] = 1
    checkpoint_every: Annotated[int, Field(ge=0)] = 100

    @field_validator("bounds")
    @classmethod
    def _bounds(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and not (math.isfinite(v[0]) and math.isfinite(v[1]) and v[0] < v[1]):
            raise ValueError(f"must be [low, high] with low < high (got {v})")
        return v


class HardwareConfig(_Strict):
    capacitance: Positive = 2.2e-6
    resistance: Positive = 1e3
    t_learn: Positive | None = None
    gain: Positive = 0.1
    t_settle: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 10e-6


class SimulatorConfig(_Strict):
    backend: Literal["ngspice", "native"] = "ngspice"
    reltol: Annotated[float, Field(gt=0, lt=1)] = 1e-6
    abstol: Annotated[float, Field(gt=0, lt=1)] = 1e-15
    vntol: Annotated[float, Field(gt=0, lt=1)] = 1e-9
    itl1: Annotated[int, Field(ge=2, le=100000)] = 500
    gmin: Annotated[float, Field(gt=0, lt=1e-3)] = 1e-12


class Config(_Strict):
    """The whole run description; see README's config reference."""

    name: str = "run"
    seed: Annotated[int, Field(ge=0)] = 0
    network: NetworkConfig = NetworkConfig()
    roles: RolesConfig
    device: DeviceConfig = DeviceConfig()
    task: TaskConfig
    learning: LearningConfig = LearningConfig()
    hardware: HardwareConfig = HardwareConfig()
    simulator: SimulatorConfig = SimulatorConfig()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"must be a plain name matching {_NAME.pattern} (got {v!r})")
        return v

    @model_validator(mode="after")
    def _rate_source(self) -> "Config":
        if self.learning.rate is not None and self.hardware.t_learn is not None:
            raise ValueError("give learning.rate or hardware.t_learn, not both (the rate fixes the switch time)")
        return self


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read, override and validate a YAML config; relative paths in it resolve against its folder."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text())
    except OSError as err:
        raise ConfigError(f"{p}: cannot read config ({err.strerror}); check the path") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{p}:{mark.line + 1}:{mark.column + 1}" if mark else str(p)
        raise ConfigError(f"{where}: invalid YAML ({getattr(err, 'problem', None) or err}); fix the syntax") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of sections (got {type(raw).__name__})")
    for item in overrides or []:
        apply_override(raw, item, str(p))
    cfg = validate_config(raw, str(p))
    return _resolve_paths(cfg, p.parent)


def validate_config(raw: dict, source: str = "<config>") -> Config:
    try:
        return Config.model_validate(raw)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first["loc"] if not str(x).startswith(("function-", "tagged-union")))
        loc = re.sub(r"\.(int|list\[.*?\]|OutputConfig|constrained-int)(?=\.|$)", "", loc)
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            msg = "unknown key; remove it or check its spelling (see README, config reference)"
        elif first["type"] == "missing":
            msg = "required key is missing"
        got = first.get("input")
        got_s = "" if first["type"] in ("missing", "extra_forbidden") or isinstance(got, dict) else f" (got {got!r})"
        more = f" [{len(err.errors()) - 1} more problem(s)]" if len(err.errors()) > 1 else ""
        raise ConfigError(f"{source}: {loc or '<top>'}: {msg}{got_s}{more}") from None


def apply_override(raw: dict, item: str, source: str = "--set") -> None:
    """Apply ``key.path=value`` (value parsed as YAML) to a raw config dict in place."""
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected key.path=value")
    key, value = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(_NAME.match(x) or x.isdigit() for x in parts):
        raise ConfigError(f"--set {key}: not a key path like learning.nudge")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {key}: value is not valid YAML (got {value!r})") from err
    node: Any = raw
    for part in parts[:-1]:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {part} is not a section")
        node = node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = parsed
    elif isinstance(node, dict):
        node[last] = parsed
    else:
        raise ConfigError(f"--set {key}: cannot set inside a {type(node).__name__}")


def _resolve_paths(cfg: Config, base: Path) -> Config:
    def fix(v: str | None) -> str | None:
        if v is None or Path(v).is_absolute():
            return v
        return str((base / v).resolve())
    return cfg.model_copy(update={
        "network": cfg.network.model_copy(update={"file": fix(cfg.network.file)}),
        "device": cfg.device.model_copy(update={"model_file": fix(cfg.device.model_file)}),
        "task": cfg.task.model_copy(update={"path": fix(cfg.task.path)}),
    })


def dump_config(cfg: Config) -> str:
    """The resolved config as YAML (every default spelled out), saved with each run."""
    return yaml.safe_dump(cfg.model_dump(mode="json", by_alias=True), sort_keys=False)
