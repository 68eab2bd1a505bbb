"""The config's refusals in words: pydantic's validation errors of the schema (``config.Config``) as one line,
``key.path: what is wrong (got value); how to fix it`` (``problem``), with the key a misspelling is closest to and
the other problems' key paths. Imports nothing of the package but ``errors`` and ``units``: the schema passes
itself in.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, get_args

from pydantic import BaseModel

from .errors import shown
from .units import listed

# parts of pydantic's error locations that name a member of a union, not a key of the document ("[key]": the
# key of a mapping, not its value)
_UNION_MEMBER = re.compile(r"^(int|float|str|bool|list\[.*\]|OutputConfig|constrained-\w+|function-.*|tagged-union.*"
                           r"|\[key\])$")

#: what to do about a value pydantic's own checks refuse, by its error type: its message says only what is wrong
FIXES = {
    **dict.fromkeys(("int_type", "int_parsing", "int_from_float"), "give a whole number"),
    **dict.fromkeys(("float_type", "float_parsing"), "give a number in SI units (0.6, 6e-1; no SPICE suffixes "
                                                     "like 600m)"),
    "finite_number": "give a finite number (not .nan or .inf)",
    **dict.fromkeys(("bool_type", "bool_parsing"), "give true or false"),
    **dict.fromkeys(("literal_error", "enum"), "choose one of them"),
    **dict.fromkeys(("greater_than", "greater_than_equal", "less_than", "less_than_equal"), "give a value in range"),
    "too_short": "add items", "too_long": "remove items",
    "string_type": "give text (quoted if it would read as a number, true or null)",
    "list_type": "give a list such as [a, b]",
    **dict.fromkeys(("dict_type", "model_type"), "give its keys, as key: value lines or {key: value}"),
    "string_pattern_mismatch": "give a name that matches it",
    "missing": "add it",
    "extra_forbidden": "remove it or check its spelling (see README, config reference)",
}
#: pydantic's messages that say something else better ("... or instance of TaskConfig" names a class of ours)
_MESSAGES = {"missing": "required key is missing", "extra_forbidden": "unknown key",
             "model_type": "Input should be a mapping", "dict_type": "Input should be a mapping"}


def key_path(loc: tuple) -> str:
    """A key path as the document reads: ``roles.rails[0].volts`` (empty for the top level)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _UNION_MEMBER.match(part):
            out += f".{part}" if out else part
    return out


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The config models an annotation holds (``X | None``, ``list[X]``, ``Annotated[X, ...]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models(arg)]


def _nearest_key(schema: type[BaseModel], loc: tuple) -> str | None:
    """For an unknown key at ``loc``, the key of the same section its spelling is closest to, as a key path
    (``learning.nudge`` for ``learning.nuge``); None when no key there is close."""
    models: list[type[BaseModel]] = [schema]
    for part in loc[:-1]:
        if isinstance(part, str) and not _UNION_MEMBER.match(part):
            models = [m for model in models if part in model.model_fields
                      for m in _models(model.model_fields[part].annotation)]
    keys = sorted({k for model in models for k in model.model_fields})
    near = difflib.get_close_matches(str(loc[-1]), keys, n=1, cutoff=0.6)
    return key_path((*loc[:-1], near[0])) if near else None


def problem(errors: list[dict], schema: type[BaseModel]) -> str:
    """The first of pydantic's ``errors`` (validating the model ``schema``) as ``key.path: what is wrong (got
    value); how to fix it``, and how many other problems there are."""
    # a misspelt key is also reported as the right one missing: name the misspelling first, the cause
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = key_path(first["loc"])
    # a value tried against each type of a union fails once per type: a message of ours (a value_error) about
    # the same key says what is wrong; "Input should be a valid dictionary" of another member does not
    if first["type"] != "extra_forbidden":
        first = next((e for e in errors if e["type"] == "value_error" and key_path(e["loc"]) == loc), first)
    kind = first["type"]
    msg = _MESSAGES.get(kind) or _bound_message(first) or first["msg"].removeprefix("Value error, ")
    got = first.get("input")
    # a validator's message about one of its keys, or several (``batch_size, schedule: ...``), each named so that
    # ``configfile.set_by`` finds the --set of any of them
    field = re.match(r"([a-z_]+)((?:\.[a-z_]+)*)((?:, [a-z_]+(?:\.[a-z_]+)*)*): ", msg) if kind == "value_error" \
        else None
    if field and field[0][:-2].split(", ")[0] == loc:  # a field's validator naming the field, then other keys
        loc, msg = field[0][:-2], msg[field.end():]
    elif field and isinstance(got, dict) and any(k.split(".")[0] in got for k in field[0][:-2].split(", ")):
        # a model's validator naming its keys, one of them given (the other may be its default)
        loc, msg = ", ".join(f"{loc}.{k}" if loc else k for k in field[0][:-2].split(", ")), msg[field.end():]
    if kind not in ("missing", "extra_forbidden") and not isinstance(got, dict) and "(got " not in msg:
        # YAML reads an empty value (``epochs:``, ``--set learning.epochs=``) as null
        msg += f" (got {'an empty value' if got is None else shown(got)})"
    if kind == "extra_forbidden" and first["loc"] == ("seeds",):  # train's option, not a key
        msg += " (an ensemble of N seeds is train --seeds N; a config gives one seed)"
    elif kind == "extra_forbidden" and (near := _nearest_key(schema, first["loc"])):
        msg += f" (did you mean {near}?)"
    if kind == "int_type" and isinstance(got, float) and got.is_integer() and abs(got) < 1e15:
        # YAML reads 2e3 as a float: the number is whole, its spelling is not
        msg += f"; write the whole number without a decimal point or exponent: {int(got)}"
    elif kind in FIXES:
        msg += f"; {FIXES[kind]}"
    return f"{loc + ': ' if loc else ''}{msg}{_more(errors, first, loc.split(', ')[0])}"


#: pydantic's range checks, by error type: the bound's key in the error's context and how it reads
_BOUNDS = {"greater_than": ("gt", "greater than"), "greater_than_equal": ("ge", "greater than or equal to"),
           "less_than": ("lt", "less than"), "less_than_equal": ("le", "less than or equal to")}


def _bound_message(error: dict) -> str | None:
    """A range check's message with its bound as a number reads in SI units: pydantic wrote 1e-10 as
    0.0000000001 and 1e-6 as 0.000001."""
    kind = _BOUNDS.get(error["type"])
    bound = (error.get("ctx") or {}).get(kind[0]) if kind else None
    if not isinstance(bound, (int, float)) or isinstance(bound, bool):
        return None
    return f"Input should be {kind[1]} {bound:g}"


#: most key paths of other problems a refusal names, beside its first (the rest are counted)
MORE_SHOWN = 4


def _more(errors: list[dict], first: dict, loc: str) -> str:
    """`` [also: network.cols]``: the key paths of the other problems pydantic found, beside ``first`` (at ``loc``),
    in the config's key order; past ``MORE_SHOWN`` of them, how many more."""
    # a union's members fail at the key and inside it: one problem, not one per member
    keys = [k for k in dict.fromkeys(key_path(e["loc"]) for e in errors) if k != key_path(first["loc"])]
    others = [k for k in keys if not (k.startswith((f"{loc}.", f"{loc}[")) or loc.startswith((f"{k}.", f"{k}[")))
              and k != loc]
    # a misspelt key leaves the key it meant missing: one problem, counted once (a section with more keys missing
    # than misspelt has the rest missing too)
    for section in {key_path(e["loc"][:-1]) for e in errors if e["type"] == "extra_forbidden"}:
        misspelt = [e for e in errors if e["type"] == "extra_forbidden" and key_path(e["loc"][:-1]) == section]
        missing = [key_path(e["loc"]) for e in errors if e["type"] == "missing" and key_path(e["loc"][:-1]) == section]
        for k in missing[:len(misspelt)]:
            if k in others:
                others.remove(k)
    return f" [also: {listed((k or 'the top level' for k in others), MORE_SHOWN)}]" if others else ""


__all__ = ["FIXES", "key_path", "problem"]
