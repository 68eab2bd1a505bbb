"""SPICE model cards: ngspice's number grammar (``parse_number``) and the exact text our netlists and cards write
numbers in (``num``), the ``.model NAME nmos (...)`` card as ngspice reads it (``parse_model_card``) and a user's
card file (``load_model_card``), held to the rule both backends share, and such a card written back with some
values replaced (``card_with``).

Sits below ``devices`` (``devices.nmos_from_card`` builds an ``NmosParams`` from a card); imports nothing from the
package but its errors. docs/physics.md section 2.1 gives the device law a level-1 card defines.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from .datafiles import read_text
from .errors import ConfigError, ValidationError, shown

#: a SPICE identifier as our netlists accept it (model names, parameter names of a card)
IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_UNSAFE_TEXT = re.compile(r"[^A-Za-z0-9_(), .:+-]")


def comment_text(text: str) -> str:
    """``text`` (a title, a device or file name: anything a user can choose) fit for a ``*`` comment line of a
    netlist: every character but letters, digits and ``_(), .:+-`` becomes ``?``, so that no line break (a new
    netlist line: ``.control``, ``shell``) or other SPICE syntax gets through."""
    return _UNSAFE_TEXT.sub("?", text)

# -- the grammar --------------------------------------------------------------------------------------------
# ngspice's number grammar (INPevaluate; ngspice manual, "Conventions"): a mantissa, an optional exponent ("e",
# optional sign, optional digits: "1e" reads 1 and "1ek" 1e3), an optional scale factor, then letters that are
# ignored ("10V", "1kOhm"). "meg" and "mil" are read before "m": "3milli" is 3 mil, "1meter" is 1e-3.
# Trailing characters other than letters ("1k2") are refused here, where ngspice would drop them silently.
_SCALE = {"t": 1e12, "g": 1e9, "meg": 1e6, "k": 1e3, "mil": 25.4e-6, "m": 1e-3, "u": 1e-6, "n": 1e-9, "p": 1e-12,
          "f": 1e-15, "a": 1e-18}
_NUMBER = re.compile(r"([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))(?:e([-+]?[0-9]*))?(meg|mil|[tgkmunpfa])?[a-z]*",
                     re.IGNORECASE)
_CARD_LINE = re.compile(r"^\s*(\*.*|\.model\s+.*|\+.*|)$", re.IGNORECASE)
_CARD_TOKENS = re.compile(r"=|[^\s=(),]+")  # ngspice reads "name=value" and "name value"; ( ) , separate
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: ngspice's end-of-line comments: from ';', '$ ' (a dollar before a blank or the line's end), '//' or '--'
_LINE_COMMENT = re.compile(r";|\$(?=\s|$)|//|--")
_ALIASES = {"vt0": "vto", "u0": "uo"}

# The parameters ngspice's MOS levels 1 to 3 accept (as ngspice 46 reads a card; it ignores any other name with
# only a warning, so a misspelt "lamda" would silently give lambda = 0).
_MOS_COMMON = frozenset({"level", "vto", "kp", "gamma", "phi", "rd", "rs", "cbd", "cbs", "is", "pb", "cgso", "cgdo",
                         "cgbo", "rsh", "cj", "mj", "cjsw", "mjsw", "js", "tox", "ld", "uo", "fc", "nsub", "tpg",
                         "nss", "tnom", "kf", "af", "nlev", "gdsnoi"})
_MOS_PARAMETERS = {
    1: _MOS_COMMON | {"lambda"},
    2: _MOS_COMMON | {"lambda", "delta", "uexp", "ucrit", "vmax", "xj", "neff", "nfs"},
    3: _MOS_COMMON | {"delta", "vmax", "xj", "nfs", "xl", "wd", "xw", "xd", "alpha", "eta", "input_delta", "theta",
                      "kappa"},
}
# card names of NmosParams' DC fields, and level-1 parameters with no effect on a DC operating point of our
# netlists (capacitances, noise; js needs drain/source areas, which the instances do not give)
_LAW_FIELDS = {"vto": "vto", "kp": "kp", "lambda": "lambda_", "gamma": "gamma", "phi": "phi", "ld": "ld", "is": "is_"}
_NO_DC_EFFECT = frozenset({"level", "cbd", "cbs", "pb", "cgso", "cgdo", "cgbo", "cj", "mj", "cjsw", "mjsw", "fc",
                           "kf", "af", "js", "nlev", "gdsnoi"})

#: ngspice's MOS level-1 defaults, used for parameters a user card leaves out
NGSPICE_MOS1_DEFAULTS = {"vto": 0.0, "kp": 2e-5, "lambda_": 0.0, "gamma": 0.0, "phi": 0.6, "ld": 0.0, "is_": 1e-14}


def parse_number(raw: str, where: str) -> float:
    """A SPICE number as ngspice reads it: ``1.5k`` = 1500, ``2MEG`` = 2e6, ``1mil`` = 25.4e-6, ``10pF`` = 1e-11.

    Scale factors (any case): T, G, Meg, K, mil, m, u, n, p, f, a. Raises ``ConfigError`` naming ``where``.
    """
    m = _NUMBER.fullmatch(raw)
    if m is None:
        raise ConfigError(f"{where} is not a number (got {shown(raw)}); write digits with an optional exponent and "
                          "scale suffix (T, G, Meg, K, mil, m, u, n, p, f, a), e.g. 0.7 or 10u")
    mantissa, exponent, scale = m.groups()
    has_digits = exponent is not None and exponent.lstrip("+-") != ""  # a bare "e" is an exponent of 0
    value = float(f"{mantissa}e{exponent}" if has_digits else mantissa)
    value *= _SCALE[scale.lower()] if scale else 1.0
    if not math.isfinite(value):
        raise ConfigError(f"{where} is not a finite number (got {shown(raw)}); write a value within double range")
    return value


def num(x: float) -> str:
    """Shortest exact decimal of a finite float, for netlists and model cards (deterministic, exact text); refuses
    NaN and infinities."""
    x = float(x)
    if not math.isfinite(x):
        raise ValidationError(f"netlist: refusing a non-finite value (got {x!r})")
    return repr(x)


@dataclass(frozen=True)
class ModelCard:
    """A parsed ``.model NAME nmos (...)`` card: model name, MOS level, and the parameters it gives, keyed by
    lower-case ngspice names (``vt0`` read as ``vto``, ``u0`` as ``uo``), values in SI units."""

    name: str
    level: int
    given: dict[str, float]

    def nmos_values(self) -> dict[str, float]:
        """``NmosParams``' DC fields (``vto``, ``kp``, ``lambda_``, ...): the card's values, else ngspice's
        level-1 defaults (``NGSPICE_MOS1_DEFAULTS``). They define the analytic law only for a level-1 card.

        The series resistances are ngspice's: ``rd`` (``rs``) if given and nonzero, else the sheet resistance
        ``rsh`` times the instance's drain (source) squares, which our netlists leave at ngspice's default of 1 (a zero
        ``rd`` or ``rs`` beside a nonzero ``rsh`` is refused by ``parse_model_card``)."""
        values = {**NGSPICE_MOS1_DEFAULTS, **{f: self.given[k] for k, f in _LAW_FIELDS.items() if k in self.given}}
        rsh = self.given.get("rsh", 0.0)
        return {**values, "rd": self.given.get("rd", 0.0) or rsh, "rs": self.given.get("rs", 0.0) or rsh}


def parse_model_card(text: str, where: str) -> ModelCard:
    """Read a ``.model NAME nmos (...)`` card (``+`` continuations, ``*`` comments) the way ngspice does, and
    hold it to the one rule both backends share:

    * the MOS level is 1, 2 or 3, and every parameter is one ngspice's model of that level knows;
    * a level-1 card gives only parameters the analytic law (``nmos_current``, ``junction_current``) follows,
      so the native solver and the KCL check compute what ngspice computes: the nominal temperature 27 C, and kp,
      vto, gamma, phi not derived from process parameters (tox, uo, nsub, ...). Series resistances (rd, rs, rsh)
      are followed (``series_current``).

    Levels 2 and 3 run on ngspice only (the native solver refuses them). Raises ``ConfigError`` naming ``where``
    (the card's file, or ``NmosParams.model_card``).
    """
    lines = [ln.strip() for ln in text.splitlines()]
    body = " ".join(ln.lstrip("+") for ln in lines if ln and not ln.startswith("*"))
    tokens = _CARD_TOKENS.findall(body)
    head = [t.lower() for t in tokens[:3]]
    if len(tokens) < 3 or head[0] != ".model" or not IDENTIFIER.match(tokens[1]) or head[2] != "nmos":
        raise ConfigError(f"{where}: the card must read '.model NAME nmos (...)' with NAME a plain identifier "
                          f"(got {shown(' '.join(tokens[:3]))}); write one such .model line")
    given: dict[str, float] = {}
    rest, i = tokens[3:], 0
    while i < len(rest):
        raw_name = rest[i]
        if not _PARAM_NAME.match(raw_name):
            raise ConfigError(f"{where}: expected a parameter name (got {shown(raw_name)}); write name=value pairs")
        i += 2 if i + 1 < len(rest) and rest[i + 1] == "=" else 1
        if i >= len(rest):
            raise ConfigError(f"{where}: model card parameter {raw_name} has no value (got {shown(raw_name)} at the "
                              f"end of the card); write {raw_name}=<number>")
        raw_value, i = rest[i], i + 1
        name = _ALIASES.get(raw_name.lower(), raw_name.lower())
        if name in given:
            raise ConfigError(f"{where}: model card parameter {name} is given twice (got {given[name]:g} and "
                              f"{raw_value}); keep one")
        given[name] = parse_number(raw_value, f"{where}: model card parameter {raw_name}")
    level = given.get("level", 1.0)
    if level not in _MOS_PARAMETERS:
        raise ConfigError(f"{where}: model card level must be 1, 2 or 3 (got level={level:g}); the native backend "
                          "reads level 1, ngspice levels 1 to 3")
    level = int(level)
    for name in given:
        if name not in _MOS_PARAMETERS[level]:
            raise ConfigError(f"{where}: model card parameter {name} is not a level-{level} MOS parameter (got "
                              f"{name}={given[name]:g}); remove it or correct its spelling (ngspice would ignore it)")
    # ngspice makes the internal node d' (s') whenever rsh is nonzero, but a given rd (rs) of 0 sets its conductance
    # to 0 rather than to 1/rsh: that terminal is then open, and the transistor carries no current (mos1temp.c)
    if given.get("rsh") and (zero := [k for k in ("rd", "rs") if given.get(k) == 0.0]):
        raise ConfigError(f"{where}: a zero rd or rs beside a nonzero rsh leaves its terminal open in ngspice, so the "
                          f"transistor conducts nothing (got {', '.join(f'{k}=0' for k in zero)}, "
                          f"rsh={given['rsh']:g}); remove {' and '.join(zero)} to take rsh (one square), or give rsh=0 "
                          "for no series resistance")
    if level == 1 and (outside := _outside_level1_law(given)):
        raise ConfigError(f"{where}: model card parameters change the DC answer in ways the level-1 law does "
                          f"not model (got {', '.join(outside)}); remove them: give kp, vto, gamma and phi "
                          "directly and leave tnom at 27")
    return ModelCard(name=tokens[1], level=level, given=given)


def _outside_level1_law(given: dict[str, float]) -> list[str]:
    """``name=value`` of each given level-1 parameter that would make ngspice's DC answer differ from the law."""
    followed = {*_LAW_FIELDS, *_NO_DC_EFFECT, "rd", "rs", "rsh"}  # series R: series_current
    if given.get("tnom") == 27:
        followed.add("tnom")
    # with tox given, ngspice derives kp from uo, and vto, gamma, phi from nsub (with nss, tpg), unless given
    if "tox" not in given or "kp" in given:
        followed |= {"tox", "uo"}
    if "tox" not in given or all(k in given for k in ("vto", "gamma", "phi")):
        followed |= {"nsub", "nss", "tpg"}
    return [f"{name}={value:g}" for name, value in given.items() if name not in followed]


def load_model_card(path: str | Path) -> tuple[str, ModelCard]:
    """Read a user ``.model`` card file; return (the card text a netlist uses, its ``parse_model_card``).

    Only comment lines, one ``.model NAME nmos ...`` line and ``+`` continuation lines are accepted (ngspice's
    end-of-line comments, from ``;``, ``$ ``, ``//`` or ``--``, are dropped), so a card cannot smuggle netlist
    elements or control commands into a netlist.
    """
    p = Path(path)
    text = read_text(p, ConfigError, "", "the model card", "check device.model_file",
                     "give a .model card in device.model_file")
    # a '*' line is a comment whole; another loses its end-of-line comment, as ngspice reads it (what is left is
    # checked below and is what a netlist holds)
    lines = [ln.rstrip() if ln.lstrip().startswith("*") else _LINE_COMMENT.split(ln, 1)[0].rstrip()
             for ln in text.splitlines()]
    for i, ln in enumerate(lines, 1):
        if not _CARD_LINE.match(ln):  # .control, .endc and every other dot line but .model are not card lines
            raise ConfigError(f"{p}:{i}: only comments, one '.model NAME nmos (...)' line and '+' continuations are "
                              f"allowed (got {shown(ln.strip())}); remove the line")
        odd = next((c for c in "`$\\" if c in ln and not ln.lstrip().startswith("*")), None)
        if odd is not None:
            raise ConfigError(f"{p}:{i}: {odd!r} has no place in a model card (got {shown(ln.strip())}); remove it (an "
                              "end-of-line comment starts with ';', '$ ', '//' or '--')")
    models = sum(ln.lower().lstrip().startswith(".model") for ln in lines)
    if models != 1:
        raise ConfigError(f"{p}: expected exactly one .model line (got {models}); keep one card per file")
    card = "\n".join(ln for ln in lines if ln.strip() and not ln.lstrip().startswith("*"))
    return card, parse_model_card(card, str(p))


def card_with(card: str, model_name: str, **values: float) -> str:
    """A user card's ``.model`` line named ``model_name``, every parameter as the card gives it except ``values``
    (ngspice names), which replace or add to them."""
    given = {**parse_model_card(card, "NmosParams.model_card").given, **values}
    text = " ".join(f"{k}={int(v) if k == 'level' else num(v)}" for k, v in given.items())
    return f".model {model_name} nmos ({text})"
