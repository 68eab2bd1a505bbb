"""Every constant the claims use, read from the code (the shipped configs the claim modules name, the device presets
they resolve to, the charging circuit, the timing defaults and the claim modules' own module-level constants), each
with its source: a line of the authors' code (E2:N is line N of ``big network/Experiment2.m`` in github
maguzj/imperfect-learning-physical-systems; docs/hardware.md), a section of docs/physics.md, a third party, or
"ours". REPORT.md's constants section is made here, so that it cannot drift from the values the claims run with.

A value that has no entry in ``SOURCES`` is reported as "ours (no source recorded)": a changed constant shows up as
unsourced rather than keeping an old citation.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import math
from dataclasses import dataclass
from types import ModuleType

from ..experiment import build_device
from ..learning.gates import HardwareParams
from ..timing import MosCapacitances, PeripheryParams
from .base import CONFIGS, claim_config

#: (constant, value) -> source. Values are as ``_value`` normalises them (floats rounded to 6 significant digits).
SOURCES: dict[tuple[str, object], str] = {
    ("device law", "level1"): "ngspice MOS level 1 with the authors' K and V_T (docs/physics.md 2.1-2.2); not the "
                              "authors' three-regime law (docs/hardware.md 1)",
    ("device law", "three-regime"): "E2 `calc_current3`, `Ohmic`, `Sat`, `Sub` (docs/hardware.md 1, 5)",
    ("V_T (V)", 0.62): "E2 `Vt()`",
    ("V_T (V)", 0.75): "the third party's ALD1106 card [REPRO] (docs/physics.md 2.2)",
    ("K = kp W/L (A/V^2)", 0.00085): "E2 `C0()` \"from fits in PNAS paper\", `S()`",
    ("K = kp W/L (A/V^2)", 0.0011057): "the third party's ALD1106 card [REPRO] (docs/physics.md 2.2)",
    ("lambda (1/V)", 0.02): "E2 `lambda()`, which the authors' law never calls (their law has lambda = 0; "
                            "docs/hardware.md 1)",
    ("lambda (1/V)", 0.0): "E2 `Ohmic`, `Sat`, `Sub` (no channel-length modulation)",
    ("lambda (1/V)", 0.199985): "the third party's ALD1106 card [REPRO]",
    ("series resistances drain, source (ohm)", (21.9639, 73.2131)): "the third party's ALD1106 card [REPRO]: rsh "
                                                                     "times nrd = 0.3, nrs = 1 (docs/physics.md 2.2)",
    ("gamma (V^0.5)", 0.0): "E2 law (no body effect)",
    ("gamma (V^0.5)", 1.09): "the third party's ALD1106 card [REPRO]",
    ("subthreshold join above V_T (V)", 0.096): "E2 `SubTransV()`",
    ("subthreshold slope (V/decade)", 0.1): "E2 `SubDecade()`",
    ("potentiometer r_min, r_max (ohm), taps", (40.0, 32000.0, 100)): "first-generation network [SDRL] "
                                                                        "(docs/physics.md 2.4)",
    ("gate bounds (V)", (0.4, 8.0)): "ours, from the third-party reproduction [REPRO]; the hardware floor is 0.75 V "
                                     "(E2:41, E2:229-231; docs/hardware.md 2)",
    ("gate bounds (V)", (0.75, 8.0)): "floor E2:41 VMN = 18 with E2:229/231; top the ~8 V supply (E2:114)",
    ("initial gates (V)", "uniform 4.53-5.53"): "5.03 V from E2:42 VIT = 45 with E2:228/230 (`printTitle`); the "
                                                "+/-0.5 V spread is ours",
    ("XOR labels (V)", (0.0, -0.087)): "the third party's {0, -L} [REPRO]; L = 0.087 V is E2 `getTrueLabelScale` "
                                       "at HOT = 96 (docs/hardware.md 3)",
    ("XOR labels (V)", (0.087, -0.087)): "E2 `getTrueLabelScale` (+/-L); L = 0.087 V (docs/hardware.md 3)",
    ("input high (V)", 0.45): "node full scale NODEMULT = 4.985/11 = 0.4532 V (E2:227)",
    ("schedule", "cycle"): "one point per step, cycled (E2:98 TRAINIDX, `trainStep`)",
    ("schedule", "full_batch"): "ours (the hardware trains one point per step; docs/hardware.md 3)",
    ("loss", "mse"): "ours: the squared error of the regression tasks (docs/physics.md 3.1)",
    ("loss", "hinge"): "update only points not yet classified (E2:56 UPD = 1); margin ours (E2:61 BUF is per run)",
    ("capacitor C (F)", 2.2e-06): "E2:116 CCHARGE (0.47 uF is commented out on the same line); PNAS 2024",
    ("charging resistor R (ohm)", 1000.0): "E2:113 RCHARGE; PNAS 2024",
    ("multiplier gain", 0.1): "E2 `getTrainUpdate` (its 1e-7 factor = 1/10 with ALF in us); unconfirmed by "
                              "measurement (docs/physics.md 3.5)",
    ("t_learn per update (s)", 0.0001): "E2:25 ALF = 100 us; PNAS 2024 (25-200 us used)",
    ("twin mismatch V_T sigma (V), K sigma", (0.01, 0.005)): "the third party's model [REPRO] (docs/physics.md "
                                                               "2.5); not measured by the authors' code",
    ("read noise (V)", 0.00225): "the third party's 0.5% of a 0.45 V full scale [REPRO] (docs/physics.md 3.9)",
    # the 8x8 digits configs: the third party's digits trainer [REPRO], folder scikit_digits/ (train_scikit.py)
    ("initial gates (V)", "uniform 0.5-4.5"): "the third party's digits trainer, 2.5 +/- 2 V [REPRO] scikit_digits/",
    ("input high (V)", 1.0): "pixel / 16 V, the third party's digits trainer [REPRO] scikit_digits/",
    ("schedule", "shuffle"): "per-image updates in shuffled order, the third party's digits trainer [REPRO]",
    ("loss", "multiclass_hinge"): "the third party's digits trainer's hinge with a top-rival clamp [REPRO] "
                                  "scikit_digits/ (docs/physics.md 3.4)",
    ("read noise (V)", 0.005): "the third party's digits trainer, 0.5% of its 1 V inputs [REPRO] scikit_digits/",
    ("edges a step updates", "pushed"): "the third party's digits trainer updates only its clamped rails' edges "
                                        "[REPRO] scikit_digits/ (docs/physics.md 3.4)",
}

#: claim-module constants with a source other than "ours"
MODULE_SOURCES: dict[str, str] = {
    "xor.MISMATCH": "the third party's mismatch model [REPRO] (docs/physics.md 2.5)",
    "imperfection.K_PER_V": "the third party's pair 10 mV <-> 0.5% [REPRO] (docs/physics.md 2.5)",
    "imperfection.READ_NOISES": "2.25 mV: the third party's 0.5% of 0.45 V [REPRO] (docs/physics.md 3.9); the "
                                "other levels ours",
    "learning_time.TASKS": "tasks of docs/physics.md 4",
    "damage.MISMATCH": "the third party's mismatch model [REPRO] (docs/physics.md 2.5)",
    "retraining.RMS_CRITERION_V": "ours: 1.1% of the 0.4532 V node full scale (E2:227), about three 8-bit input steps "
                              "(E2 constructor), the scale of the imperfection claim's floors (docs/physics.md 5.2)",
    "energy.CODE_GAIN_BAND": "the authors' predicted update (E2 `getTrainUpdate`: 2.43 /V), and 12.1 /V if its "
                             "multiplier's 1/10 acts on the x11-amplified drops (docs/hardware.md 3, Rate)",
    "digits.PEER": "the third-party digits trainer's published results [PYCLLN] `scikit_digits/results/results.json` "
                   "(docs/physics.md 4.4)",
    "digits.PEER_SPREADS": "the third-party digits trainer's chip model, V_T 10 mV and K 0.5 % [PYCLLN] "
                           "(docs/physics.md 4.4)",
    "modes.TARGET_MSE": "ours, near the third party's test MSE 1.7e-5 V^2 on the ramp [REPRO] (docs/physics.md 4.2)",
}


@dataclass(frozen=True)
class Constant:
    """One constant: its name, its value as shown, the configs or module that hold it, its source."""

    name: str
    value: str
    where: str
    source: str


def claim_configs(modules: list[ModuleType]) -> list[str]:
    """The shipped config stems (``configs/<stem>.yaml``) that the claim modules name as string literals, in
    order of first mention."""
    stems = {p.stem for p in CONFIGS.glob("*.yaml")}
    found: list[str] = []
    for module in modules:
        if not isinstance(module, ModuleType):
            continue
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if isinstance(node, ast.Constant) and node.value in stems and node.value not in found:
                found.append(node.value)
    return found


def _value(x):
    """Normalise a value for lookup and display: floats to 6 significant digits, lists to tuples."""
    if isinstance(x, (list, tuple)):
        return tuple(_value(v) for v in x)
    if isinstance(x, float):
        return float(f"{x:.6g}") if math.isfinite(x) else x
    return x


def _show(x) -> str:
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in x.items()) + "}"
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in x) + "]"
    if isinstance(x, float):
        return f"{x:g}"
    return str(x)


def config_constants(stem: str) -> list[tuple[str, object]]:
    """(constant, value) of the shipped config ``stem`` as the claims load it (device preset resolved, bounds
    defaulted by the device, t_learn resolved from the rate by the config)."""
    cfg = claim_config(stem)
    dev = build_device(cfg)
    lc, hc, task = cfg.learning, cfg.hardware, cfg.task
    out: list[tuple[str, object]] = [("device", cfg.device.preset if dev.kind == "nmos" else dev.kind)]
    if dev.kind == "nmos":
        out += [("device law", dev.law), ("V_T (V)", dev.vto),
                ("K = kp W/L (A/V^2)", dev.kp * dev.w / (dev.l - 2 * dev.ld)), ("lambda (1/V)", dev.lambda_),
                ("gamma (V^0.5)", dev.gamma)]
        if dev.rd or dev.rs:
            out.append(("series resistances drain, source (ohm)", (dev.rd, dev.rs)))
        if dev.law == "three-regime":
            out += [("subthreshold join above V_T (V)", dev.sub_join),
                    ("subthreshold slope (V/decade)", dev.sub_decade)]
    elif dev.kind == "potentiometer":
        out.append(("potentiometer r_min, r_max (ohm), taps", (dev.r_min, dev.r_max, dev.n_taps)))
    else:
        out.append(("resistor conductance range (S)", (dev.g_min, dev.g_max)))
    mm = cfg.device.mismatch
    if mm is not None and (mm.vto_sigma or mm.k_sigma):
        out.append(("twin mismatch V_T sigma (V), K sigma", (mm.vto_sigma, mm.k_sigma)))
    if dev.kind == "nmos" or (lc.bounds is not None and dev.update_kind != "sign"):
        out.append(("gate bounds (V)" if dev.kind == "nmos" else "control bounds",
                    tuple(lc.bounds or dev.default_bounds())))
        init = lc.init
        out.append(("initial gates (V)" if dev.kind == "nmos" else "initial controls",
                    f"constant {init.value:g}" if init.kind == "constant" else
                    f"uniform {_show(_value(init.low if init.low is not None else dev.default_init()[0]))}-"
                    f"{_show(_value(init.high if init.high is not None else dev.default_init()[1]))}"))
    if task.name == "xor":
        out += [("XOR labels (V)", tuple(task.labels)), ("input high (V)", task.high)]
    elif task.name in ("regression", "linear_regression", "allostery", "iris", "digits"):
        out.append(("input high (V)", task.source if task.name == "allostery" else task.high))
    out += [("nudge eta", lc.nudge), ("rate alpha/eta (1/V)", "one tap per update" if dev.update_kind == "sign"
                                      else lc.rate), ("schedule", lc.schedule), ("loss", lc.loss)]
    if lc.loss != "mse":
        out.append(("hinge margin (V)", lc.margin))
    if lc.update_edges != "all":
        out.append(("edges a step updates", lc.update_edges))
    if lc.read_noise:
        out.append(("read noise (V)", lc.read_noise))
    if lc.bias or lc.bias_sigma:
        out.append(("learning bias, spread (V per update)", (lc.bias, lc.bias_sigma)))
    out.append(("epochs", lc.epochs))
    if dev.kind == "nmos":
        out += [("capacitor C (F)", hc.capacitance), ("charging resistor R (ohm)", hc.resistance),
                ("multiplier gain", hc.gain), ("t_learn per update (s)", hc.t_learn)]
    return [(name, _value(v)) for name, v in out]


def _source(name: str, value) -> str:
    if name == "t_learn per update (s)" and value != _value(HardwareParams.t_learn):
        return "derived: rate R C / gain (docs/physics.md 3.5); the hardware's ALF is 100 us (E2:25)"
    if name in ("device", "epochs"):
        return "the config"
    if name in ("nudge eta", "rate alpha/eta (1/V)", "hinge margin (V)") or name.startswith("initial"):
        if name == "initial gates (V)" and (name, value) in SOURCES:
            return SOURCES[(name, value)]
        if value == "one tap per update":
            return "the sign rule of the first-generation network [SDRL] (docs/physics.md 2.4)"
        return {"nudge eta": "ours (the authors' ETA/129 is set per run, E2:24)",
                "rate alpha/eta (1/V)": "ours (the hardware's 4.5e-3 /V per 100 us window: docs/hardware.md 3)",
                "hinge margin (V)": "ours (the authors' BUF/1000 is set per run, E2:61)"}.get(name, "ours")
    return SOURCES.get((name, value), "ours (no source recorded)")


def config_table(stems: list[str]) -> list[Constant]:
    """One row per (constant, value), listing the configs that hold it; in order of first appearance."""
    rows: dict[tuple[str, object], list[str]] = {}
    for stem in stems:
        for name, value in config_constants(stem):
            rows.setdefault((name, value), []).append(stem)
    names = list(dict.fromkeys(n for n, _ in rows))
    return [Constant(name, _show(value), ", ".join(stems_), _source(name, value))
            for (name, value), stems_ in sorted(rows.items(), key=lambda kv: names.index(kv[0][0]))]


def fixed_table() -> list[Constant]:
    """The charging circuit's and the timing model's defaults (dataclass defaults, which the configs inherit)."""
    caps = "an ALD1106 level-1 card [UMAINE], read per device; pb, mj, cgb ngspice's defaults (docs/physics.md 8.2)"
    return [Constant(f"{where}.{name}", _show(_value(field.default)), "energy claim (every config)", src)
            for cls, where, src in ((MosCapacitances, "timing.capacitances", caps),
                                    (PeripheryParams, "timing.periphery", "ours (docs/physics.md 8.2)"))
            for name, field in cls.__dataclass_fields__.items()]


def module_table(modules: list[ModuleType]) -> list[Constant]:
    """The claim modules' upper-case constants (numbers, strings, and tuples, lists or dicts of them). A constant a
    claim module defines is listed under it; one it imports is listed once, under the module that defines it,
    with the claim modules that use it (and the name they give it)."""
    out, imported = [], {}
    for module in modules:
        if not isinstance(module, ModuleType):
            continue
        stem = module.__name__.rsplit(".", 1)[-1]
        key = getattr(module, "KEY", stem)
        own, origins = _top_level_names(module)
        for name, value in vars(module).items():
            if not name.isupper() or name in ("KEY", "TITLE", "PAPER") or not _plain(value):
                continue
            if name in origins:  # imported: grouped under where it is defined
                defining, original = origins[name]
                user = f"claims/{stem}.py" + ("" if name == original else f" as {name}")
                imported.setdefault((defining, original), (value, []))[1].append(user)
            elif name in own:
                out.append(Constant(name, _show(value), f"claims/{stem}.py",
                                    MODULE_SOURCES.get(f"{key}.{name}", "ours")))
    for (defining, original), (value, users) in imported.items():
        where = defining.removeprefix("metamaterial.").replace(".", "/") + ".py"
        out.append(Constant(original, _show(value), f"{where} (used by {', '.join(users)})",
                            MODULE_SOURCES.get(f"{defining.rsplit('.', 1)[-1]}.{original}", "ours")))
    return out


def _top_level_names(module: ModuleType) -> tuple[set[str], dict[str, tuple[str, str]]]:
    """(names the module's own top-level statements assign, {name it imports: (defining module, original name)})."""
    tree = ast.parse(inspect.getsource(module))
    own: set[str] = set()
    origins: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            source = importlib.util.resolve_name("." * node.level + (node.module or ""), module.__package__)
            for alias in node.names:
                origins[alias.asname or alias.name] = (source, alias.name)
        else:
            targets = (node.targets if isinstance(node, ast.Assign) else
                       [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
            for target in targets:
                own.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return own, origins


def _plain(x) -> bool:
    if isinstance(x, (list, tuple)):
        return all(_plain(v) for v in x)
    if isinstance(x, dict):
        return all(_plain(k) and _plain(v) for k, v in x.items())
    return isinstance(x, (int, float, str))  # bool is an int


def constants_lines(modules: list[ModuleType]) -> list[str]:
    """The markdown of REPORT.md's constants section."""
    stems = claim_configs(modules)
    lines = ["Every constant below is read from the code when this report is written: the shipped configs that the "
             "claim modules name (" + ", ".join(f"configs/{s}.yaml" for s in stems) + "), before each claim's own "
             "overrides (given in its section); the device presets they resolve to; the timing defaults; and the claim "
             "modules' own constants. E2:N is line N of `big network/Experiment2.m` (github "
             "maguzj/imperfect-learning-physical-systems, commit 994f0ab; docs/hardware.md); [REPRO] is the "
             "third-party ngspice reproductions, [PYCLLN] the third-party 8x8-digits trainer, [SDRL] the first "
             "author's simulator of the first-generation network (docs/physics.md 7). \"ours\" marks a choice of "
             "this package with no value in the authors' code. A constant a claim module imports is listed under "
             "the module that defines it, with the claim modules that use it."]
    for title, column, rows in (("Configs", "configs", config_table(stems)),
                                ("Timing model (energy claim)", "where", fixed_table()),
                                ("Claim modules", "module", module_table(modules))):
        lines += ["", f"### {title}", "", f"| constant | value | {column} | source |", "|---|---|---|---|",
                  *map(_row, rows)]
    return lines


def _row(c: Constant) -> str:
    return "| " + " | ".join(s.replace("|", "\\|") for s in (c.name, c.value, c.where, c.source)) + " |"
