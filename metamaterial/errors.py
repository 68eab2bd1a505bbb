"""One exception hierarchy for the whole package.

Every error reads ``<where>: <what is wrong> (got <value>); <how to fix>``. Each class also
inherits the matching built-in so that callers who catch ``ValueError`` keep working.
Also here, beside ``shown``: the checks that several stages make where a value enters (``check_numbers``,
``real_array``, ``whole_number``) and ``first_bad``, which names the item an array is refused for, so that each
refusal reads alike wherever it is made. This module imports nothing from the package.
"""

from __future__ import annotations

import dataclasses
import itertools
import numbers
import reprlib

import numpy as np

#: annotations of a parameter dataclass's fields that hold a number (``from __future__ import annotations`` keeps
#: them as text)
_NUMBER_TYPES = {"float": False, "int": False, "float | None": True, "int | None": True}
#: the same of the fields that hold a text (a device's name, a rule's loss)
_TEXT_TYPES = {"str": False, "str | None": True}


#: the longest text ``shown`` gives for a value
SHOWN_MAX = 200


class _Shown(reprlib.Repr):
    """A few items of at most three levels: a YAML document of anchors and aliases (a "billion laughs") expands to
    10^9 items that a full repr walks for minutes and gigabytes; these limits visit at most 5^3 of them."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxtuple = self.maxlist = self.maxarray = self.maxdict = self.maxset = self.maxfrozenset = 5
        self.maxdeque = 5
        self.maxstring = self.maxother = 80

    def repr_int(self, x: int, level: int) -> str:
        # repr() of an int of more than 4300 digits raises ValueError, and takes quadratic time below that
        return repr(x) if x.bit_length() <= 128 else f"<an integer of about {round(x.bit_length() * 0.30103)} digits>"

    # a mapping or a set in the order repr() gives, not sorted: sorting reorders what the user wrote, and sorts every
    # item of a large one to show five
    def repr_dict(self, x: dict, level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        pieces = [f"{self.repr1(k, level - 1)}: {self.repr1(v, level - 1)}"
                  for k, v in itertools.islice(x.items(), self.maxdict)]
        return "{" + ", ".join(pieces + ["..."] * (len(x) > self.maxdict)) + "}"

    def repr_set(self, x: set, level: int) -> str:
        return "set()" if not x else self._repr_iterable(x, level, "{", "}", self.maxset)

    def repr_frozenset(self, x: frozenset, level: int) -> str:
        return "frozenset()" if not x else self._repr_iterable(x, level, "frozenset({", "})", self.maxfrozenset)


_SHOWN = _Shown()


def shown(value: object) -> str:
    """``repr(value)`` for the "(got ...)" of a message, in at most ``SHOWN_MAX`` characters: long strings, lists
    and mappings elided with "...", nested ones past three levels as ``[...]``, walking only what it shows. A value
    of at most five items a level, three levels deep, with no string whose repr passes 80 characters reads as
    ``repr()`` gives it (a mapping or a set in its own order too)."""
    text = _SHOWN.repr(value)
    return text if len(text) <= SHOWN_MAX else text[:SHOWN_MAX - 3] + "..."


class MetamaterialError(Exception):
    """Base class of every error raised on purpose by this package.

    Attributes:
        problem: what is wrong, without where or the fix (``"invalid YAML (...)"``), for a caller that words the
            error again, such as a run directory's reader; set by ``refusal``, else ``None``.
        line, column: where in a text file the problem is (from 1), where known, else ``None``.
    """

    problem: str | None = None
    line: int | None = None
    column: int | None = None


def refusal(error: type[MetamaterialError], where: str, problem: str, fix: str, line: int | None = None,
            column: int | None = None) -> MetamaterialError:
    """``error`` reading ``{where}: {problem}; {fix}`` (with ``:{line}``, ``:{column}`` after ``where`` where given),
    its parts kept as attributes."""
    at = "".join(f":{n}" for n in (line, column) if n is not None)
    err = error(f"{where}{at}: {problem}; {fix}")
    err.problem, err.line, err.column = problem, line, column
    return err


class ConfigError(MetamaterialError, ValueError):
    """A configuration file or value is invalid. The CLI exits with code 2."""


class ValidationError(MetamaterialError, ValueError):
    """A graph, device or circuit description is inconsistent. The CLI exits with code 2."""


class SimulationError(MetamaterialError, RuntimeError):
    """A simulator failed (rejected netlist, no convergence). The CLI exits with code 1.

    Attributes:
        netlist: the netlist text the simulator was given, or ``None``.
        log: the simulator's last log lines.
        kept: where the failing netlist was written for inspection, or ``None``.
    """

    def __init__(self, message: str, netlist: str | None = None, log: str = "", kept: str | None = None):
        self.netlist, self.log, self.kept, self.summary = netlist, log, kept, message
        super().__init__(message + ("\n--- simulator log (last lines) ---\n" + log if log else "")
                         + (f"\n--- netlist kept at {kept}" if kept else ""))


class CheckpointError(MetamaterialError, ValueError):
    """A run directory cannot be resumed (missing or inconsistent checkpoint)."""


def caused_by_interrupt(err: BaseException) -> bool:
    """Whether ``err`` stems from a Ctrl-C: a ``KeyboardInterrupt`` among its causes and contexts. A C extension
    interrupted while it initialises (matplotlib's font module, imported on first use) raises ``ImportError`` from
    the interrupt; such an error is the user's Ctrl-C, not a failure of the program."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def check_numbers(params: object) -> None:
    """Refuse, naming ``Class.field``, a field of the dataclass ``params`` annotated as a number (``float``,
    ``int``, or either ``| None``) that holds something else, such as the string "0.6" of a hand-written call:
    called first in a ``__post_init__``, before a range check fails on it with a bare ``TypeError``. A field
    annotated as text (``str``) that holds no text is refused alike (``NmosParams(name=5)`` failed in the netlist's
    header)."""
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        text = _TEXT_TYPES.get(str(f.type))
        if text is not None and not (isinstance(value, str) or value is None and text):
            raise ValidationError(f"{type(params).__name__}.{f.name}: must be text (got {shown(value)}); give a "
                                  "string")
        optional = _NUMBER_TYPES.get(str(f.type))
        if optional is None:
            continue
        if value is None and optional:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValidationError(f"{type(params).__name__}.{f.name}: must be a number (got {shown(value)}); give one, "
                                  "in SI units")


def _subject(where: str, name: str) -> str:
    return f"{where}: {name}" if name else f"{where}:"


def first_bad(bad: np.ndarray, axes: tuple[str, ...] = (), leading: bool = False) -> tuple[tuple[int, ...], str]:
    """(index, place) of the first True of the boolean array ``bad`` (in C order; it holds one): the item a whole
    array is refused for, which ``shown`` of the array would hide behind "..." past its fifth. ``place`` says where
    it is for a message's "(got <value><place>)": ``axes`` name the array's last axes (with ``leading``, its first:
    a task's "point" before its "column"), " at edge 6", " at row 1, column 0"; more axes than names give the
    index, " at index 6", " at index (0, 0, 1)"; the one item of a 0-d array, ""."""
    at = tuple(int(i) for i in np.argwhere(bad)[0])
    return at, _place(at, axes, leading)


def check_indices(given: np.ndarray, n: int, what: str, fix: str) -> None:
    """Refuse ``given`` unless it holds integers in 0..n-1 (or nothing), naming the first item that is none and its
    position: shown() of the array would hide one past the fifth behind "...". ``what`` begins the message ("where: what
    must hold")."""
    kind = given.dtype.kind
    if not given.size or (kind in "iu" and given.min() >= 0 and given.max() < n):
        return
    if kind in "iu":
        bad = (given < 0) | (given >= n)
    elif kind == "f":  # a list holding 0.7 makes every index a float: the fraction is the one to name
        bad = ~((given == np.round(given)) & (given >= 0) & (given < n))
    elif kind == "O":  # a list holding None or a string among the indices
        bad = np.vectorize(lambda x: not (isinstance(x, (int, np.integer)) and not isinstance(x, bool) and 0 <= x < n),
                           otypes=[bool])(given)
    else:
        bad = np.ones(given.shape, bool)
    at, place = first_bad(bad if bad.any() else np.ones(given.shape, bool))  # whole floats: each is no integer
    item = given[at].item() if isinstance(given[at], np.generic) else given[at]
    raise ValidationError(f"{what}, integers in 0..{n - 1} (got {shown(item)}{place}); {fix}")


def _place(at: tuple[int, ...], axes: tuple[str, ...], leading: bool) -> str:
    if not at:
        return ""
    if len(at) <= len(axes):
        names = axes[:len(at)] if leading else axes[len(axes) - len(at):]
        return " at " + ", ".join(f"{axis} {i}" for axis, i in zip(names, at))
    return f" at index {at[0] if len(at) == 1 else at}"


def _is_real(item: object) -> bool:
    """Whether ``item`` of an array of no real dtype was a real number: numpy makes every number of a list that holds
    a string a string too, and of one that holds a complex number a complex number."""
    if isinstance(item, (str, bytes)):
        try:
            float(item)
        except ValueError:
            return False
        return True
    if isinstance(item, numbers.Complex) and not isinstance(item, numbers.Real):
        return item.imag == 0
    return isinstance(item, numbers.Real)


def _unreal(arr: np.ndarray, values: object, axes: tuple[str, ...], leading: bool) -> str:
    """The first item of ``arr`` (of no real dtype) that is no real number, and where it is ("None at row 0, node
    8"); the first item where each is a number (strings of digits, complex numbers of no imaginary part), or the
    dtype of an empty one."""
    if not arr.size:
        return f"dtype {arr.dtype}: {shown(values)}"
    k = next((k for k, item in enumerate(arr.flat) if not _is_real(item)), 0)
    item = arr.flat[k]
    at = tuple(int(i) for i in np.unravel_index(k, arr.shape))
    return shown(item.item() if isinstance(item, np.generic) else item) + _place(at, axes, leading)


def real_array(values: object, where: str, name: str, what: str, fix: str, finite: str | None = None,
               axes: tuple[str, ...] = (), copy: bool = False, leading: bool = False) -> np.ndarray:
    """``values`` as a float64 array, refusing what holds no real numbers (a string, None, a complex number, a
    ragged list), which numpy would refuse with its own words or, for a complex number, cast with only a warning.

    Messages read ``<where>: <name> must be ...``, ``what`` saying what the numbers are ("volts", "one gate voltage
    (V) per edge") and ``fix`` how to give them. An item that is no real number is named with its position, as with
    ``finite`` (the fix for it) a NaN or infinity, refused too: ``axes`` name the array's last axes ("row", "edge";
    with ``leading``, its first), as in ``first_bad``. A float64 array is returned as it is, not copied (a training
    step solves thousands of times), unless ``copy``."""
    if isinstance(values, np.ndarray) and values.dtype == np.float64:
        arr = np.array(values) if copy else values
    else:
        try:
            arr = np.asarray(values)
        except ValueError as err:  # a ragged nested list
            raise ValidationError(f"{_subject(where, name)} must be an array of {what} (got {shown(values)}: {err}); "
                                  "give rows of equal length") from None
        if arr.dtype.kind not in "biuf":
            raise ValidationError(f"{_subject(where, name)} must be real numbers, {what} (got "
                                  f"{_unreal(arr, values, axes, leading)}); {fix}")
        arr = arr.astype(np.float64, copy=copy)
    # element by element: a sum would be a little cheaper, but warns of an overflow for finite values near 1e308
    if finite is not None and not np.isfinite(arr).all():
        at, place = first_bad(~np.isfinite(arr), axes, leading)
        raise ValidationError(f"{_subject(where, name)} must be finite (got {float(arr[at])}{place}); {finite}")
    return arr


def whole_number(value: object, where: str, name: str = "", fix: str = "give an int") -> int:
    """``value`` as an int: any integer (numpy's too); a float, even 3.0, a string or a bool is refused, as the
    callee would refuse it with its own words or (a float count) round it without one."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValidationError(f"{_subject(where, name)} must be a whole number (got {shown(value)}); {fix}")
    return int(value)


def flag(value: object, where: str, name: str = "") -> bool:
    """``value`` as a bool: True or False (numpy's too); any other value is refused, which Python would read by its
    truth (the text "false" is true)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValidationError(f"{_subject(where, name)} must be True or False (got {shown(value)}); give a bool")
    return bool(value)
