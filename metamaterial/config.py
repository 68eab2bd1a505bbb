"""The typed, validated configuration: one pydantic model per section, every default, and the check of a raw
document against them (``validate_config``). Config stops here: the rest of the package takes typed values.

Unknown keys, wrong types (no coercion: ``epochs: "300"`` and ``epochs: true`` are refused) and out-of-range
values are errors that name the file and the key path, e.g.
``configs/xor.yaml: learning.nudge: Input should be less than or equal to 1 (got 1.5); give a value in range``
(``configs/xor.yaml: --set learning.nudge=1.5: learning.nudge: ...`` where a ``--set`` gave it); list items read
``roles.inputs[1]``; pydantic's errors are put in those words by ``configmessages``.

Every default lives in these models: a validated ``Config`` has each value resolved. Reading a config from YAML,
``--set`` overrides and the text each run saves belong to ``configfile``, which validates here; this module imports
no YAML.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union

import pydantic
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .circuit import MAX_GMIN
from .configmessages import problem
from .devices import CORNERS, PRESETS, ProcessCorner
from .errors import ConfigError, shown
from .learning.gates import HardwareParams
from .learning.rules import MAX_RATE
from .sim.registry import backend_refusal
from .tasks import MAX_VOLTS, REGRESSION_X, REGRESSION_Y
from .temperature import NOMINAL_CELSIUS, TEMPERATURE_RANGE
from .timing import MosCapacitances, PeripheryParams, SettleParams, check_window


def _node_ref(v: Any) -> int | list[int] | str:
    """A node reference as the config gives it, checked as one type so that a bad one is told what is wrong with
    it (a union of three types would answer "Input should be a valid integer" to a name with a tab in it)."""
    def index(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and x >= 0

    if index(v):
        return v
    if isinstance(v, list) and len(v) == 2 and all(index(x) for x in v):
        return v
    if isinstance(v, str):
        if not v:
            raise ValueError("a node's name must not be empty (got ''); give the name as the network file spells it")
        if len(v) > 200:
            raise ValueError(f"a node's name is at most 200 characters (got {len(v)}); check the value")
        bad = _control_character(v)
        if bad is not None:
            raise ValueError(f"a node's name must not contain a control character (got {shown(v)}, holding {bad}); "
                             "write the name without it, here and in the network file")
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        raise ValueError(f"a node index must be >= 0 (got {v}); nodes are numbered from 0")
    if isinstance(v, list):
        raise ValueError(f"a [row, col] node needs two indices >= 0 (got {shown(v)}); write it as [row, col]")
    raise ValueError(f"a node is an index, a [row, col] pair on a lattice or a node's name (got {shown(v)}); give "
                     "one of them")


#: a node: its index, its [row, col] on a lattice, or its name in a network file (an edge list's name, a GraphML id)
NodeRef = Annotated[Union[int, list[int], str], PlainValidator(_node_ref)]  # noqa: UP007 (py3.10 needs Union here)
Volts = Annotated[float, Field(ge=-MAX_VOLTS, le=MAX_VOLTS, allow_inf_nan=False)]


def _control_character(v: str) -> str | None:
    """The first control character of ``v`` and its index ("U+000A at index 90"), which shown() of a text past 80
    characters may hide in the middle it leaves out; None if ``v`` holds none."""
    i = next((i for i, ch in enumerate(v) if ord(ch) < 32 or ord(ch) == 127), None)
    return None if i is None else f"U+{ord(v[i]):04X} at index {i}"


def _printable_path(v: str) -> str:
    # a newline or escape in a file name would be printed raw into messages, summaries and run names
    bad = _control_character(v)
    if bad is not None:
        raise ValueError(f"a file name must not contain control characters such as newlines (got {shown(v)}, holding "
                         f"{bad}); rename the file")
    return v


#: a file the config names (relative to the config's folder): printable text
FilePath = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_printable_path)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
#: a run's or a sweep's name: it names a folder under runs/, so no path separators, spaces or dots
PLAIN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


#: the longest learning switch time or settling per update (s; 11.6 days), as ``MAX_RATE`` the largest learning.rate:
#: far past any circuit here, so that a slip of the exponent is refused rather than met as an infinite run time
MAX_STEP_SECONDS = 1e6
#: the keys of the gate's charging circuit that, with learning.rate or hardware.t_learn, fix the other, and their
#: defaults
_CHARGING_KEYS = "hardware.resistance, hardware.capacitance, hardware.gain"
_CHARGING_DEFAULTS = (f"resistance {HardwareParams.resistance:g} ohm, capacitance {HardwareParams.capacitance:g} F, "
                      f"gain {HardwareParams.gain:g}")
#: the shortest effective channel length l - 2 ld (m) a config may give: 1 nm, below any transistor made, and with
#: the widest w (0.01 m) a W/L of 1e7; 5e-324 made K = kp w / l infinite and every node voltage nan
MIN_CHANNEL_LENGTH = 1e-9
#: hardware.t_learn (s) when no learning.rate fixes it: the learning switch's on time per update
T_LEARN = HardwareParams.t_learn  # the charging circuit's constants live in HardwareParams
TEST_FRACTION = {"iris": 0.2, "digits": 0.2}

#: the keys every network and task reads: its kind (``network.kind``, ``task.name``) and a validation split
ALWAYS_READ = ("kind", "name", "validation")
#: the keys of ``network`` each kind reads (beside ``kind``); another key given a value of its own would be ignored
NETWORK_KEYS = {"lattice": ("rows", "cols", "periodic"), "random": ("n_nodes", "n_edges", "seed"),
                "file": ("file",),
                "layered": ("n_inputs", "n_hidden", "n_outputs", "n_edges", "density", "seed", "differential",
                            "direct")}
#: the keys of ``device`` only one kind reads: a resistor's conductance range, a potentiometer's taps
DEVICE_KEYS = {"resistor": ("g_min", "g_max"), "potentiometer": ("r_min", "r_max", "n_taps")}
#: the keys of ``task`` each task reads (beside ``name`` and ``validation``), as ``experiment.build_task`` does
TASK_KEYS = {"xor": ("low", "high", "labels"), "regression": ("x", "y"),
             "linear_regression": ("n_points", "slope", "offset", "low", "high"), "allostery": ("source", "targets"),
             **dict.fromkeys(("iris", "digits"), ("low", "high", "target_on", "target_off", "test_fraction",
                                                  "split_seed")),
             "csv": ("path", "n_inputs", "classification", "scale", "low", "high", "target_on", "target_off",
                     "test_fraction", "split_seed")}


class _Strict(BaseModel):
    """No unknown keys, no coercion (a string or a bool is not a number), frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _only_read(model: BaseModel, keys: tuple[str, ...], what: str, kind: str, **resolved: Any) -> None:
    """Refuse a key of ``model`` that ``what`` (chosen by its key ``kind``, which the message names too) does not
    read, given a value other than its default or the value it resolves to (``resolved``; a saved config holds every
    key, at those values where unread)."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if (name not in (*keys, *ALWAYS_READ) and value != field.default
                and not (name in resolved and value == resolved[name])):
            raise ValueError(f"{name}, {kind}: {what} does not read {name} (got {shown(value)}); remove it ({what} "
                             f"reads only {', '.join(keys)})")


def _resolve(model: BaseModel, **values: Any) -> None:
    """Fill resolved defaults into a just-validated frozen model (its own fresh instance)."""
    for key, value in values.items():
        object.__setattr__(model, key, value)


class NetworkConfig(_Strict):
    """The graph. ``layered``: ``n_inputs`` -> ``n_hidden`` (0: none) -> ``n_outputs`` nodes, edges between
    adjacent layers, ``n_edges`` of them (or the fraction ``density`` of the possible pairs) drawn with ``seed``;
    its roles default to the input layer and the output layer (``differential``: output k is the pair (out k,
    out n_outputs/2 + k)); ``direct`` also wires inputs to outputs beside the hidden layer."""

    kind: Literal["lattice", "random", "file", "layered"] = "lattice"
    rows: Annotated[int, Field(ge=1, le=1000)] = 4
    cols: Annotated[int, Field(ge=1, le=1000)] = 4
    periodic: bool = True
    n_nodes: Annotated[int, Field(ge=2, le=1_000_000)] | None = None
    n_edges: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    seed: Annotated[int, Field(ge=0)] | None = None
    file: FilePath | None = None
    n_inputs: Annotated[int, Field(ge=1, le=100_000)] | None = None
    n_hidden: Annotated[int, Field(ge=0, le=100_000)] = 0
    n_outputs: Annotated[int, Field(ge=1, le=100_000)] | None = None
    density: Annotated[float, Field(gt=0, le=1)] = 1.0
    differential: bool = False
    direct: bool = False

    @model_validator(mode="after")
    def _kind_fields(self) -> NetworkConfig:
        if self.kind == "layered" and (self.n_inputs is None or self.n_outputs is None):
            raise ValueError(f"a layered network needs n_inputs and n_outputs (got n_inputs {self.n_inputs}, "
                             f"n_outputs {self.n_outputs}); give both")
        if self.kind == "layered" and self.differential and self.n_outputs % 2:
            raise ValueError(f"differential outputs pair the output layer's nodes: n_outputs must be even (got "
                             f"{self.n_outputs}); give an even n_outputs, or differential: false")
        if self.kind == "random" and (self.n_nodes is None or self.n_edges is None):
            raise ValueError(f"a random network needs n_nodes and n_edges (got n_nodes {self.n_nodes}, n_edges "
                             f"{self.n_edges}); give both")
        if self.kind == "file" and not self.file:
            raise ValueError("a file network needs 'file' (got none); give network.file, an edge list or .graphml "
                             "path")
        if self.kind != "file" and self.file is not None:
            raise ValueError(f"file, kind: a network file is read only by a network of kind file (got kind "
                             f"{self.kind}, which ignores it); set network.kind: file to train on that file, or remove "
                             "network.file")
        _only_read(self, NETWORK_KEYS[self.kind], f"a {self.kind} network", "kind")
        return self


class RailConfig(_Strict):
    node: NodeRef
    volts: Volts


class OutputConfig(_Strict):
    pos: NodeRef
    neg: NodeRef | None = None


class RolesConfig(_Strict):
    """Node roles. ``outputs`` is required, except on a layered network, where ``roles: {}`` (every key left out)
    means its default roles, as leaving ``roles`` out does (``Config._roles_given``)."""

    inputs: list[NodeRef] = []
    rails: list[RailConfig] = []
    outputs: Annotated[list[OutputConfig | NodeRef], Field(min_length=1)] | None = None


class NmosOverrides(_Strict):
    """Preset parameters replaced (unset: the preset's value). ``rd`` and ``rs``: level-1 series resistances (ohm)
    of each transistor's drain (the edge's first node) and source; ``ald1106-l1`` has 21.96 and 73.21, the others
    0."""

    vto: Volts | None = None
    # upper bounds far past any transistor (the ALD1106: kp 6.2e-5 A/V^2, W/L 138/7.8 um, phi 0.95 V), so that a
    # slip of the exponent is refused here rather than met as a Newton failure or a 1e289 J estimate
    kp: Annotated[float, Field(gt=0, le=1.0, allow_inf_nan=False)] | None = None
    w: Annotated[float, Field(gt=0, le=0.01, allow_inf_nan=False)] | None = None
    l: Annotated[float, Field(gt=0, le=0.01, allow_inf_nan=False)] | None = None
    lambda_: Annotated[float | None, Field(ge=0, le=10, alias="lambda")] = None
    gamma: Annotated[float, Field(ge=0, le=10)] | None = None
    phi: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)] | None = None
    rd: Annotated[float, Field(ge=0, le=1e6)] | None = None
    rs: Annotated[float, Field(ge=0, le=1e6)] | None = None
    # the bulk junctions' saturation current (A) and the lateral diffusion (m; K = kp w / (l - 2 ld)) of level 1
    is_: Annotated[float | None, Field(ge=0, le=1e-3, allow_inf_nan=False, alias="is")] = None
    ld: Annotated[float, Field(ge=0, le=0.005, allow_inf_nan=False)] | None = None
    # the three-regime law's subthreshold branch (ald1106-hw): joined at V_T + sub_join (V), sub_decade V per decade
    sub_join: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = None
    sub_decade: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = None
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


class MismatchConfig(_Strict):
    """Twin mismatch: independent Gaussian V_T shift and relative K error for every transistor, drawn from ``seed``
    (unset: the run's seed). ``per_replica``: every replica of an ensemble (``--seeds``) is its own chip, drawn from
    its own seed as the single run of that seed draws it; unset, all replicas share the config's draw.
    ``twins``: ``independent`` (every transistor of both twins drawn on its own) or ``matched`` (each clamped
    transistor takes its free twin's draw: device-to-device spread without twin mismatch)."""

    vto_sigma: Annotated[float, Field(ge=0, le=1)] = 0.0
    k_sigma: Annotated[float, Field(ge=0, le=0.5)] = 0.0
    seed: Annotated[int, Field(ge=0)] | None = None
    per_replica: bool = False
    twins: Literal["independent", "matched"] = "independent"

    @model_validator(mode="after")
    def _one_seed(self) -> MismatchConfig:
        if self.per_replica and self.seed is not None:
            raise ValueError(f"per_replica draws each chip from its replica's seed, and seed fixes one chip for all "
                             f"(got seed {self.seed}); remove one of them")
        return self


class CornerConfig(_Strict):
    """A user-defined process corner: V_T shift (V) and K scale applied to every transistor."""

    vto_shift: Annotated[float, Field(ge=-1, le=1, allow_inf_nan=False)] = 0.0
    k_scale: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)] = 1.0


class DeviceConfig(_Strict):
    """The edge device. ``corner``: a process corner, built-in (``devices.CORNERS``: typical, slow, fast) or one
    defined under ``corners`` (name -> ``{vto_shift, k_scale}``), applied after ``preset``/``params``/``model_file``
    and before ``mismatch``."""

    kind: Literal["nmos", "resistor", "potentiometer"] = "nmos"
    preset: Literal["ald1106-fit", "ald1106-hw", "ald1106-l1"] = "ald1106-fit"
    model_file: FilePath | None = None
    params: NmosOverrides = NmosOverrides()
    corners: dict[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")], CornerConfig] = {}
    corner: str = "typical"
    mismatch: MismatchConfig | None = None
    body: Literal["ground", "input"] = "ground"
    g_min: Positive = 1e-5
    g_max: Positive = 1e-2
    r_min: Positive = 40.0
    r_max: Positive = 32e3
    n_taps: Annotated[int, Field(ge=2, le=100000)] = 100

    @field_validator("corners")
    @classmethod
    def _new_names(cls, v: dict[str, CornerConfig]) -> dict[str, CornerConfig]:
        taken = sorted(set(v) & set(CORNERS))
        if taken:
            raise ValueError(f"{', '.join(taken)} is a built-in corner (got a definition of it); give your corner "
                             f"another name (built-in: {', '.join(CORNERS)})")
        return v

    @field_validator("corner")
    @classmethod
    def _known_corner(cls, v: str, info: ValidationInfo) -> str:
        defined = [*CORNERS, *info.data.get("corners", {})]
        if v not in defined:
            raise ValueError(f"unknown corner (got {shown(v)}); choose one of {', '.join(defined)}, or define it under "
                             "device.corners as {vto_shift: V, k_scale: factor}")
        return v

    def process_corner(self) -> ProcessCorner:
        if self.corner in CORNERS:
            return CORNERS[self.corner]
        return ProcessCorner(self.corner, **self.corners[self.corner].model_dump())

    @field_validator("preset", "model_file", "params")
    @classmethod
    def _transistor_keys(cls, v: Any, info: ValidationInfo) -> Any:
        """A resistor or potentiometer network has no transistors: the keys that describe them are refused rather
        than ignored (as a corner, a mismatch and a temperature are where the device is built). The preset's
        default, which every saved config spells out, is no request."""
        kind = info.data.get("kind", "nmos")
        if kind == "nmos":
            return v
        if info.field_name == "params":
            given = sorted(k for k, x in v.model_dump(by_alias=True).items() if x is not None)
            if given:
                raise ValueError(f"device.params, device.kind: sets transistor parameters, and a {kind} network has "
                                 f"no transistors (got "
                                 f"{', '.join(given)}); remove device.params or use device.kind: nmos")
        elif info.field_name == "model_file" and v is not None:
            raise ValueError(f"device.model_file, device.kind: is a transistor's model card, and a {kind} network has "
                             f"no transistors (got {shown(v)}); remove device.model_file or use device.kind: nmos")
        elif info.field_name == "preset" and v != cls.model_fields["preset"].default:
            raise ValueError(f"device.preset, device.kind: names a transistor, and a {kind} network has no "
                             f"transistors (got {shown(v)}); remove device.preset or use device.kind: nmos")
        return v

    @model_validator(mode="after")
    def _ranges(self) -> DeviceConfig:
        # each names both keys of a pair, so that the --set of the one given is blamed (``configfile.set_by``)
        if self.g_min >= self.g_max:
            raise ValueError(f"g_min, g_max: g_min must be < g_max (got g_min {self.g_min}, g_max {self.g_max}); give "
                             "the lower conductance as g_min")
        if self.r_min >= self.r_max:
            raise ValueError(f"r_min, r_max: r_min must be < r_max (got r_min {self.r_min}, r_max {self.r_max}); give "
                             "the lower resistance as r_min")
        if self.body != "ground" and self.kind != "nmos":
            raise ValueError(f"body, kind: a {self.kind} has no body terminal to tie (got body {self.body!r}); remove "
                             "device.body, or use device.kind: nmos")
        if self.kind == "nmos" and self.model_file is None:
            # NmosParams refuses it too, naming its own field; here the key (a card's ld is checked with its card)
            preset = PRESETS[self.preset]
            length = preset.l if self.params.l is None else self.params.l
            ld = preset.ld if self.params.ld is None else self.params.ld
            if length - 2 * ld <= 0:
                raise ValueError(f"params.ld: the effective length l - 2 ld must be > 0 (got l={length:g}, "
                                 f"ld={ld:g}); give ld < l/2 ({length / 2:g} m)")
            if length - 2 * ld < MIN_CHANNEL_LENGTH:  # K = kp w / (l - 2 ld) overflows to inf as it nears 0
                raise ValueError(f"params.l, params.ld: the effective length l - 2 ld must be at least "
                                 f"{MIN_CHANNEL_LENGTH:g} m (1 nm, below any transistor's channel) (got l={length:g}, "
                                 f"ld={ld:g}); give a longer l, or a smaller ld")
        if self.model_file is not None and self.preset != type(self).model_fields["preset"].default:
            raise ValueError(f"preset, model_file: a model card replaces the preset, which would be ignored "
                             f"(got preset {self.preset!r} and model_file {self.model_file!r}); give one of them")
        for kind, keys in DEVICE_KEYS.items():
            given = [k for k in keys if getattr(self, k) != type(self).model_fields[k].default]
            if kind != self.kind and given:
                raise ValueError(f"{given[0]}, kind: only a {kind} device reads {given[0]} (got "
                                 f"{shown(getattr(self, given[0]))} with kind {self.kind}); remove it, or set "
                                 f"device.kind: {kind}")
        return self


class ValidationConfig(_Strict):
    """A validation set carved from the training points (``tasks.validation_split``): the run trains on the rest and
    is scored on it, and never solves the held-out points."""

    fraction: Annotated[float, Field(gt=0, lt=1)]
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0


class TaskConfig(_Strict):
    """The data set. ``test_fraction`` left unset (or null) resolves to 0.2 for iris and digits and 0.0 otherwise; the
    held-out points are drawn from ``split_seed``, not from the run's seed, so every seed of a single run, an
    ensemble or a sweep trains and is scored on the same points; a regression task's x and y left unset resolve to
    the 8-point ramp ``tasks.REGRESSION_X``, ``REGRESSION_Y``."""

    name: Literal["xor", "regression", "linear_regression", "allostery", "iris", "digits", "csv"]
    low: Volts = 0.0
    high: Volts = 0.45
    labels: Annotated[list[Volts], Field(min_length=2, max_length=2)] = [0.0, -0.087]
    x: list[Volts] | None = None
    y: list[Volts] | None = None
    n_points: Annotated[int, Field(ge=1, le=100000)] = 8
    slope: Annotated[float, Field(ge=-10, le=10)] = 0.4
    offset: Volts = 0.1
    source: Volts = 0.45
    targets: Annotated[list[Volts], Field(min_length=1)] = [0.1, 0.3]
    target_on: Volts = 0.3
    target_off: Volts = 0.15
    test_fraction: Annotated[float, Field(ge=0, lt=1)] | None = None
    split_seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0
    validation: ValidationConfig | None = None
    path: FilePath | None = None
    n_inputs: Annotated[int, Field(ge=1)] | None = None
    classification: bool = False
    scale: bool = False

    @model_validator(mode="after")
    def _task_fields(self) -> TaskConfig:
        if self.name == "csv" and (not self.path or self.n_inputs is None):
            raise ValueError(f"a csv task needs 'path' and 'n_inputs' (got path {shown(self.path)}, n_inputs "
                             f"{self.n_inputs}); give the CSV file as path and how many of its first columns are "
                             "inputs as n_inputs")
        _only_read(self, TASK_KEYS[self.name], f"the {self.name} task", "name", test_fraction=0.0)
        if (self.x is None) != (self.y is None):
            raise ValueError("give both x and y, or neither")
        if self.x is not None and len(self.x) != len(self.y):
            raise ValueError(f"x and y must have equal length (got {len(self.x)} and {len(self.y)}); give one y per "
                             "x")
        if self.low >= self.high:
            raise ValueError(f"low must be < high (got {self.low}, {self.high}); give the lower voltage as low")
        if self.test_fraction is None:
            _resolve(self, test_fraction=TEST_FRACTION.get(self.name, 0.0))
        if self.name == "regression" and self.x is None:
            _resolve(self, x=REGRESSION_X.tolist(), y=REGRESSION_Y.tolist())
        return self


class InitConfig(_Strict):
    """Initial controls; unset values take the device's defaults (nmos: uniform 0.5-2.0 V; resistor:
    uniform in [g_min, g_max]; potentiometer: uniform over the taps)."""

    kind: Literal["uniform", "constant"] = "uniform"
    low: float | None = None
    high: float | None = None
    value: float | None = None

    @model_validator(mode="after")
    def _order(self) -> InitConfig:
        if any(v is not None and not math.isfinite(v) for v in (self.low, self.high, self.value)):
            raise ValueError(f"init values must be finite (got low {self.low}, high {self.high}, value "
                             f"{self.value}); give finite numbers")
        if self.kind == "constant" and self.value is None:
            raise ValueError("a constant init needs 'value' (got none); give learning.init.value, or kind: uniform")
        # a key the kind does not read was ignored without a word (learning.init.kind=uniform on a config whose
        # init is {kind: constant, value: 3.0} drew from the device's default range, not around 3.0)
        unread = ["value"] if self.kind == "uniform" and self.value is not None else \
            [k for k in ("low", "high") if self.kind == "constant" and getattr(self, k) is not None]
        if unread:
            reads = "low and high" if self.kind == "uniform" else "value"
            got = ", ".join(f"{k} {getattr(self, k):g}" for k in unread)
            raise ValueError(f"{', '.join(unread)}, kind: a {self.kind} init reads only {reads}, so "
                             f"{' and '.join(unread)} would be ignored (got {got}); remove "
                             f"{'it' if len(unread) == 1 else 'them'} "
                             f"({', '.join(f'learning.init.{k}=null' for k in unread)}), or give "
                             "learning.init={kind: ..., ...} whole")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low must be <= high (got {self.low}, {self.high}); give the lower value as low")
        return self


class LeakConfig(_Strict):
    tau: Positive
    rest: Annotated[float, Field(allow_inf_nan=False)] = 0.0


class LearningConfig(_Strict):
    epochs: Annotated[int, Field(ge=0, le=100_000_000)] = 1000
    nudge: Annotated[float, Field(gt=0, le=1)] = 1.0
    rate: Annotated[float, Field(ge=0, le=MAX_RATE, allow_inf_nan=False)] | None = None
    rate_decay: Annotated[float, Field(gt=0, le=1)] = 1.0  # the rate's factor per epoch: rate * decay ** (epoch - 1)
    schedule: Literal["cycle", "shuffle", "full_batch", "mini_batch"] = "cycle"
    batch_size: Annotated[int, Field(ge=1)] = 1
    update_probability: Annotated[float, Field(gt=0, le=1)] = 1.0
    update_mask: Literal["bernoulli", "fixed_count"] = "bernoulli"
    dead_band: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.0
    loss: Literal["mse", "hinge", "multiclass_hinge"] = "mse"  # multiclass_hinge: nudge is the push in V
    margin: Annotated[float, Field(ge=0, le=1)] = 0.02
    update_edges: Literal["all", "pushed"] = "all"  # pushed: only edges touching a pushed output's nodes
    init: InitConfig = InitConfig()
    bounds: Annotated[list[float], Field(min_length=2, max_length=2)] | None = None
    leak: LeakConfig | None = None
    read_noise: Annotated[float, Field(ge=0, lt=1)] = 0.0
    noisy_decisions: bool = False  # the noisy free read also decides the hinge, rival and clamps
    bias: Annotated[float, Field(ge=-1, le=1)] = 0.0
    bias_sigma: Annotated[float, Field(ge=0, le=1)] = 0.0
    eval_every: Annotated[int, Field(ge=1)] = 1
    record_every: Annotated[int, Field(ge=1)] = 1
    checkpoint_every: Annotated[int, Field(ge=0)] = 100

    @field_validator("bounds")
    @classmethod
    def _bounds(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and not (math.isfinite(v[0]) and math.isfinite(v[1]) and v[0] < v[1]):
            raise ValueError(f"must be [low, high] with low < high (got {v}); give two finite numbers, the lower first")
        return v

    @model_validator(mode="after")
    def _batch_size_needs_mini_batches(self) -> LearningConfig:
        # any other schedule steps one point (cycle, shuffle) or every point (full_batch) at a time: a batch size
        # given with one would change nothing, silently
        if self.batch_size != 1 and self.schedule != "mini_batch":
            raise ValueError(f"batch_size, schedule: only schedule mini_batch steps in batches (got batch_size "
                             f"{self.batch_size} with schedule {self.schedule}); set learning.schedule=mini_batch, "
                             "or leave batch_size out")
        return self


class HardwareConfig(_Strict):
    """The gate-capacitor charging circuit (SI units). ``t_learn`` left unset resolves to the switch time that
    realises ``learning.rate`` on an nmos gate (rate R C / gain), else to ``T_LEARN``."""

    capacitance: Positive = HardwareParams.capacitance
    resistance: Positive = HardwareParams.resistance
    t_learn: Annotated[float, Field(gt=0, le=MAX_STEP_SECONDS, allow_inf_nan=False)] | None = None
    gain: Positive = HardwareParams.gain
    t_settle: Annotated[float, Field(ge=0, le=MAX_STEP_SECONDS, allow_inf_nan=False)] = HardwareParams.t_settle


class SimulatorConfig(_Strict):
    """The solver (a name of ``sim.registry``) and ngspice's tolerances, which the native solver honours too.
    ``temperature``: the circuit's temperature in C (``temperature.TEMPERATURE_RANGE``; default ngspice's nominal 27):
    ngspice runs at it, and the native solver applies ngspice's level-1 temperature equations
    (``NmosParams.at_temperature``); a device kind without a temperature model refuses any other value."""

    backend: str = "ngspice"
    reltol: Annotated[float, Field(gt=0, lt=1)] = 1e-6
    abstol: Annotated[float, Field(gt=0, lt=1)] = 1e-15
    vntol: Annotated[float, Field(gt=0, lt=1)] = 1e-9
    itl1: Annotated[int, Field(ge=2, le=100000)] = 500
    gmin: Annotated[float, Field(gt=0, lt=MAX_GMIN)] = 1e-12
    temperature: Annotated[float, Field(ge=TEMPERATURE_RANGE[0], le=TEMPERATURE_RANGE[1],
                                        allow_inf_nan=False)] = NOMINAL_CELSIUS

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        if why := backend_refusal(v):
            raise ValueError(why)
        return v


# -- timing: the transient's capacitances, periphery and settling criterion (energy and transient commands) ---
Farads = Annotated[float, Field(ge=0, lt=1e-6, allow_inf_nan=False)]
Seconds = Annotated[float, Field(gt=0, le=1.0, allow_inf_nan=False)]


class DeviceCapacitanceConfig(_Strict):
    """Capacitances of each edge transistor (F; ``timing.MosCapacitances``, the ALD1106 class of docs/physics.md
    section 8.2); all zero for none. Not used with ``device.model_file``: ngspice reads the user's card,
    capacitances included, as written."""

    cgs: Farads = MosCapacitances.cgs
    cgd: Farads = MosCapacitances.cgd
    cgb: Farads = MosCapacitances.cgb
    cbd: Farads = MosCapacitances.cbd
    cbs: Farads = MosCapacitances.cbs
    pb: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)] = MosCapacitances.pb
    mj: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] = MosCapacitances.mj


class PeripheryConfig(_Strict):
    """What surrounds the network in a transient (``timing.PeripheryParams``; docs/physics.md section 8.2)."""

    driver_resistance: Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)] = PeripheryParams.driver_resistance
    input_rise: Seconds = PeripheryParams.input_rise
    amplifier_capacitance: Farads = PeripheryParams.amplifier_capacitance
    wiring_capacitance: Farads = PeripheryParams.wiring_capacitance


class SettleConfig(_Strict):
    """When an output counts as settled, and the transient's window (``timing.SettleParams``)."""

    rel_tol: Annotated[float, Field(gt=0, lt=1)] = SettleParams.rel_tol
    abs_tol: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = SettleParams.abs_tol
    t_stop: Seconds | None = SettleParams.t_stop
    first_window: Seconds = SettleParams.first_window
    max_doublings: Annotated[int, Field(ge=0, le=20)] = SettleParams.max_doublings
    points: Annotated[int, Field(ge=100, le=1_000_000)] = SettleParams.points

    @model_validator(mode="after")
    def _steppable(self) -> SettleConfig:
        for name in ("t_stop", "first_window"):  # ngspice stopped on such a window with its log (exit 1)
            window = getattr(self, name)
            problem = None if window is None else check_window(window, self.points)
            if problem:
                raise ValueError(f"{name}, points: {problem}")
        return self


class TimingConfig(_Strict):
    """The time scale of an inference, read by ``metamaterial transient`` and ``energy`` (training ignores it)."""

    capacitances: DeviceCapacitanceConfig = DeviceCapacitanceConfig()
    periphery: PeripheryConfig = PeripheryConfig()
    settle: SettleConfig = SettleConfig()


class Config(_Strict):
    """The whole run description; see README's config reference."""

    name: str = "run"
    seed: Annotated[int, Field(ge=0)] = 0
    network: NetworkConfig = NetworkConfig()
    roles: RolesConfig | None = None
    device: DeviceConfig = DeviceConfig()
    task: TaskConfig
    learning: LearningConfig = LearningConfig()
    hardware: HardwareConfig = HardwareConfig()
    simulator: SimulatorConfig = SimulatorConfig()
    timing: TimingConfig = TimingConfig()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not PLAIN_NAME.match(v):
            raise ValueError(f"must be a plain name matching {PLAIN_NAME.pattern} (got {shown(v)}); start with a "
                             "letter, then up to 63 letters, digits, '_' or '-'")
        return v

    @model_validator(mode="after")
    def _roles_given(self) -> Config:
        layered = self.network.kind == "layered"
        if self.roles is None and not layered:
            raise ValueError("roles: required key is missing (only a layered network has default roles); add roles "
                             "with inputs and outputs (see configs/)")
        if self.roles is not None and self.roles.outputs is None:
            if layered and not self.roles.model_fields_set:  # roles: {} is the layered network's default roles
                _resolve(self, roles=None)
            elif layered:
                raise ValueError("roles.outputs: required key is missing (a layered network takes its default roles "
                                 "only when roles is left out or empty: give outputs, or remove roles)")
            else:
                raise ValueError("roles.outputs: required key is missing (only a layered network has default "
                                 "roles); add roles.outputs")
        return self

    @property
    def rate_fixes_t_learn(self) -> bool:
        """Whether ``learning.rate`` fixes ``hardware.t_learn`` (a positive rate on an nmos gate)."""
        rate = self.learning.rate
        return rate is not None and rate > 0 and self.device.kind == "nmos"

    def document(self) -> dict:
        """The resolved config as a plain document, every default spelled out, as a run saves it: a
        ``hardware.t_learn`` that the rate fixes is left null (``summary.json``'s ``t_learn_s`` has its value), so a
        copy of a run's config.yaml with another rate reads as that rate."""
        doc = self.model_dump(mode="json", by_alias=True)
        if self.rate_fixes_t_learn:
            doc["hardware"]["t_learn"] = None
        return doc

    @model_validator(mode="after")
    def _rate_source(self) -> Config:
        hw, rate = self.hardware, self.learning.rate
        if self.rate_fixes_t_learn:  # the rate fixes the gate's switch time
            t_learn = rate * hw.resistance * hw.capacitance / hw.gain
            if not 0 < t_learn <= MAX_STEP_SECONDS:  # each key is finite and positive, their product need not be
                raise ValueError(f"learning.rate, {_CHARGING_KEYS}: the gate's switch time they fix, rate R C / gain, "
                                 f"must be in (0, {MAX_STEP_SECONDS:g}] s (got {t_learn:g} s); give values nearer the "
                                 f"defaults ({_CHARGING_DEFAULTS})")
            if hw.t_learn is not None and not math.isclose(hw.t_learn, t_learn, rel_tol=1e-12):
                raise ValueError(f"learning.rate, hardware.t_learn: both given, and the rate fixes the gate's switch "
                                 f"time (got t_learn {hw.t_learn:g} s; the rate needs {t_learn:g} s); give only one "
                                 "of them (hardware.t_learn=null lets the rate fix it)")
        else:
            t_learn = T_LEARN if hw.t_learn is None else hw.t_learn
            if rate is None and self.device.kind == "nmos":  # the charging circuit sets the rate: gain t_learn / (R C)
                rc = hw.resistance * hw.capacitance
                derived = hw.gain * t_learn / rc if rc else math.inf
                if not 0 < derived <= MAX_RATE:
                    raise ValueError(f"hardware.t_learn, {_CHARGING_KEYS}: the learning rate they set, gain t_learn / "
                                     f"(R C), must be in (0, {MAX_RATE:g}] 1/V, as learning.rate (got {derived:g} "
                                     f"1/V); give values nearer the defaults (t_learn {T_LEARN:g} s, "
                                     f"{_CHARGING_DEFAULTS}), or give learning.rate")
        if hw.t_learn != t_learn:
            _resolve(self, hardware=hw.model_copy(update={"t_learn": t_learn}))
        return self


def validate_config(raw: dict, source: str = "<config>", blame: Callable[[str], str | None] | None = None) -> Config:
    """Validate a raw config document; the first problem is raised as ``ConfigError`` naming its key path, after
    ``source`` and what ``blame`` (given the message) says set the key (``--set key=value``), if anything."""
    try:
        return Config.model_validate(raw)
    except pydantic.ValidationError as err:
        body = problem(err.errors(), Config)
        culprit = blame(body) if blame else None
        raise ConfigError(f"{source}: {culprit + ': ' if culprit else ''}{body}") from None


def with_backend(cfg: Config, backend: str | None) -> Config:
    """``cfg`` with ``simulator.backend`` set to ``backend`` (None: unchanged), for programs that run one config on
    several backends; the run's saved config then names the backend it ran on."""
    if backend is None or backend == cfg.simulator.backend:
        return cfg
    if why := backend_refusal(backend):
        raise ConfigError(f"simulator.backend: {why}")
    return cfg.model_copy(update={"simulator": cfg.simulator.model_copy(update={"backend": backend})})
