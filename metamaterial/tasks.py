"""Datasets as arrays (volts) plus how outputs are read as classes. Pure numpy; no node placement here.

Which nodes a task drives is configuration (graph roles); a task only says how many inputs and outputs
it needs. Every builder returns a frozen ``Task``. The defaults of a run's task live in ``config.TaskConfig``;
only the two builders the tests call bare (``xor_task``, ``regression_task``) keep defaults of their own.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np

from . import step
from .datafiles import read_text
from .errors import ValidationError, first_bad, real_array, shown, whole_number
from .units import listed

#: the largest magnitude (V) of a voltage a config or a data file gives: far beyond the supplies simulated, and a
#: value past it is a mistake the solver would only fail on
MAX_VOLTS = 10.0

#: The 8-point saturating ramp of a third-party reproduction of the PNAS nonlinear regression.
REGRESSION_X = np.array([0.0005, 0.0628, 0.1251, 0.1873, 0.2479, 0.3118, 0.3724, 0.4347])
REGRESSION_Y = np.array([0.1088, 0.1472, 0.1872, 0.2256, 0.2649, 0.3041, 0.3041, 0.3041])


@dataclass(frozen=True)
class FeatureScale:
    """How a dataset's features become input voltages: feature k's values ``raw`` map onto [low, high] V by
    ``low + (high - low) (raw - lo[k]) / span[k]``, (lo, lo + span) the feature's range over the training points
    (``span`` 1 for a feature of one value there). Kept with the task so that new data in the dataset's own units,
    its held-out points among them, is evaluated as training saw it (``metamaterial eval --inputs``)."""

    lo: np.ndarray  # [n_in], the dataset's units
    span: np.ndarray  # [n_in], the dataset's units
    low: float  # V
    high: float  # V
    source: str = "task"  # where the data comes from, as messages name it (``task.path: FILE``)
    names: tuple[str, ...] = ()  # the features' names

    def __post_init__(self) -> None:
        for name in ("lo", "span"):  # frozen, as the task's own arrays: new data is scaled as training's was
            value = np.array(getattr(self, name), float)
            value.flags.writeable = False
            object.__setattr__(self, name, value)

    def volts(self, raw: np.ndarray) -> np.ndarray:
        """[P, n_in] input voltages (V) of features ``raw`` [P, n_in] in the dataset's units."""
        return self.low + (self.high - self.low) * (np.asarray(raw, float) - self.lo) / self.span


def _volts(values: object, where: str) -> np.ndarray:
    """``values`` as a float array (the same array when it is one), refusing what holds no real numbers (a string,
    None) or a value that is not finite: a solver would refuse it at the first solve, naming neither the task nor
    the point, and a NaN target makes every loss NaN. A value past ``MAX_VOLTS`` is refused too, as a config's or a
    data file's is: data in millivolts (450 for 0.45 V) trained on without a word, or failed in Newton."""
    arr = real_array(values, where, "", "volts", "give a float array, one row per point",
                     finite="give every point a finite voltage", axes=("point", "column"), leading=True)
    refuse_far_volts(arr, where, "give volts (0.45, not 450 mV)", ("point", "column"), leading=True)
    return arr


def refuse_far_volts(arr: np.ndarray, where: str, fix: str, axes: tuple[str, ...], leading: bool = False) -> None:
    """Refuse a float array holding a value past ``MAX_VOLTS``, naming the first by position (``axes`` and
    ``leading`` as ``errors.first_bad`` takes them): data in millivolts."""
    far = np.abs(arr) > MAX_VOLTS
    if far.any():
        at, place = first_bad(far, axes, leading)
        raise ValidationError(f"{where}: must be voltages in [-{MAX_VOLTS:g}, {MAX_VOLTS:g}] V (got "
                              f"{float(arr[at]):g}{place}); {fix}")


@dataclass(frozen=True)
class Task:
    """A supervised task in volts.

    Attributes:
        inputs: [P, n_in] input voltages (V).
        targets: [P, n_out] target output values (V); differential outputs use V(pos) - V(neg).
        classes: [P] integer class of each point, or None for regression.
        decode: how outputs become classes: ``"nearest"`` (one output; nearest of ``levels``),
            ``"argmax"`` (one output per class), or None.
        levels: [n_classes] target level of each class for ``"nearest"`` decoding.
        test_inputs, test_targets, test_classes: the points scored apart from training, or None.
        scored: what those are: ``"held-out"`` (the task's test split) or ``"validation"`` (carved from the
            training points by ``validation_split``; the held-out points are then left out of the run).
        scale: how the inputs were made from a dataset's features (Iris; a CSV task with ``task.scale``), or
            None when the inputs are the data's own values in volts. Fitted on the training points alone; the
            points scored apart are mapped by it too, so they may fall slightly outside [low, high].
        features, test_features: [P, n_in] the features ``scale`` made ``inputs`` and ``test_inputs`` from, in the
            dataset's units (None without ``scale``): a validation set refits the map without its points.
        columns: the data file's own column names (Iris's, a CSV task's): its inputs', then its targets' or its
            class column's; empty for a task without a data file.
        class_names: [n_classes] the data file's name of each class, in class order; empty without one.
    """

    name: str
    inputs: np.ndarray
    targets: np.ndarray
    classes: np.ndarray | None = None
    decode: str | None = None
    levels: np.ndarray | None = None
    test_inputs: np.ndarray | None = None
    test_targets: np.ndarray | None = None
    test_classes: np.ndarray | None = None
    scored: str = "held-out"
    scale: FeatureScale | None = None
    features: np.ndarray | None = None
    test_features: np.ndarray | None = None
    columns: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        pairs = [("inputs", "targets", "classes", self.inputs, self.targets, self.classes),
                 ("test_inputs", "test_targets", "test_classes", self.test_inputs, self.test_targets,
                  self.test_classes)]
        for x_name, y_name, c_name, x, y, cls in pairs:
            if x is None:
                continue
            if y is None:  # it read as "must be real numbers, volts (got dtype object: None)"
                raise ValidationError(f"Task.{y_name}: needed beside Task.{x_name} (got None); give one row of target "
                                      "values (V) per point")
            x, y = _volts(x, f"Task.{x_name}"), _volts(y, f"Task.{y_name}")
            object.__setattr__(self, x_name, x)  # as arrays: ``n_inputs`` and the trainer read their shape
            object.__setattr__(self, y_name, y)
            if np.ndim(x) != 2 or np.ndim(y) != 2 or len(x) != len(y):
                raise ValidationError(f"Task.{y_name}: must be [P, n_out] beside Task.{x_name} [P, n_in] (got "
                                      f"{np.shape(y)} and {np.shape(x)}); give one row of each per point")
            if cls is not None and np.shape(cls) != (len(x),):
                raise ValidationError(f"Task.{c_name}: must be [P], one class per point of Task.{x_name} (got "
                                      f"{np.shape(cls)} for {len(x)} points)")
            if cls is not None:
                object.__setattr__(self, c_name, _class_indices(cls, f"Task.{c_name}"))
        self._check_split()
        self._check_decoding()
        for name in ("inputs", "targets", "classes", "levels", "test_inputs", "test_targets", "test_classes",
                     "features", "test_features"):
            # frozen, as a Circuit's arrays are: a trainer compiles the points once, so a point changed in place
            # after would train one way and be scored another; build a new task instead (dataclasses.replace)
            value = getattr(self, name)
            if value is not None:
                value = np.array(value)
                value.flags.writeable = False
                object.__setattr__(self, name, value)

    def _check_split(self) -> None:
        """At least one training point; the points scored apart, if any, with the training points' columns and, for a
        classification, their classes: a wrong width failed inside a matrix product at the first held-out evaluation,
        and test_inputs without test_targets read as "test_targets must be real numbers (got None)"."""
        if not len(self.inputs):
            raise ValidationError(f"Task.inputs: needs at least one point (got shape {np.shape(self.inputs)}); give "
                                  "one row of input voltages per point")
        if self.test_inputs is None:
            for name in ("test_targets", "test_classes"):
                if getattr(self, name) is not None:
                    raise ValidationError(f"Task.{name}: given without Task.test_inputs (got None there); give the "
                                          "held-out points' inputs too, or leave both None")
            return
        for x_name, ref in (("test_inputs", "inputs"), ("test_targets", "targets")):
            width, want = np.shape(getattr(self, x_name))[1], np.shape(getattr(self, ref))[1]
            if width != want:
                raise ValidationError(f"Task.{x_name}: must have the {want} column(s) of Task.{ref} (got {width}); "
                                      "give the held-out points as the training points are given")
        if (self.test_classes is None) != (self.classes is None):
            given, missing = ("test_classes", "classes") if self.classes is None else ("classes", "test_classes")
            raise ValidationError(f"Task.{missing}: Task.{given} is given and Task.{missing} is not (got None); a "
                                  "classification gives the classes of its training and held-out points both")

    def _check_decoding(self) -> None:
        """How outputs become classes, against the classes and outputs there are: the margins are read at each
        point's class (``step.class_margins``, compiled without bounds checks), so a class past the last level or
        output read memory beyond the array and trained on it without a word."""
        decodes = tuple(step.DECODES)  # a list given as decode is no key of the dict: compared, not looked up
        if self.decode not in decodes:
            raise ValidationError(f"Task.decode: must be one of {', '.join(map(repr, decodes))} (got "
                                  f"{shown(self.decode)}); give 'nearest' (one output, the nearest of levels), "
                                  "'argmax' (one output per class) or None for a regression")
        if self.classes is None:
            if self.decode is not None:
                raise ValidationError(f"Task.classes: decode {self.decode!r} reads the outputs as classes, and no "
                                      "classes are given (got None); give each point's class, or decode=None for a "
                                      "regression")
            return
        if self.decode is None:
            raise ValidationError("Task.decode: a classification (Task.classes given) needs a decoding (got None); "
                                  "give decode='nearest' with levels (one output), or 'argmax' (one output per class)")
        if self.decode == "nearest":
            if self.levels is None:
                raise ValidationError("Task.levels: 'nearest' decoding needs each class's output level (got None); "
                                      "give levels, one voltage per class, e.g. levels=(0.0, -0.087)")
            levels = real_array(self.levels, "Task.levels", "", "volts, one per class", "give one voltage per class",
                                finite="give every class a finite level", axes=("class",))
            if levels.ndim != 1 or len(levels) < 2:
                raise ValidationError(f"Task.levels: must be one voltage per class, two or more (got shape "
                                      f"{levels.shape}); give e.g. levels=(0.0, -0.087)")
            object.__setattr__(self, "levels", levels)
            if self.n_outputs != 1:
                raise ValidationError(f"Task.decode: 'nearest' reads one output (got {self.n_outputs} target columns); "
                                      "give one target column, or decode='argmax' with one output per class")
            n_classes, per = len(levels), "level"
        else:
            if self.n_outputs < 2:
                raise ValidationError(f"Task.decode: 'argmax' needs one output per class, two or more (got "
                                      f"{self.n_outputs} target column); give one target column per class, or "
                                      "decode='nearest' with levels")
            n_classes, per = self.n_outputs, "output"
        for name in ("classes", "test_classes"):
            cls = getattr(self, name)
            if cls is not None and len(cls) and cls.max() >= n_classes:
                raise ValidationError(f"Task.{name}: must be below {n_classes}, one {per} per class (got class "
                                      f"{int(cls.max())}); number the classes from 0, or give a {per} to each")

    @property
    def n_points(self) -> int:
        return len(self.inputs)

    @property
    def n_inputs(self) -> int:
        return self.inputs.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.targets.shape[1]

    @property
    def is_classification(self) -> bool:
        return self.classes is not None

    def predict(self, outputs: np.ndarray) -> np.ndarray:
        """[P] predicted class of output rows [P, n_out]."""
        outputs = self._outputs(outputs, "Task.predict")
        if self.decode == "argmax":
            return np.argmax(outputs, axis=1)
        return np.argmin(np.abs(outputs[:, :1] - self.levels[None, :]), axis=1)

    def margins(self, outputs: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """[P] signed margin (V) of the correct class; > 0 means correctly classified (``step.class_margins``)."""
        outputs, classes = self._outputs(outputs, "Task.margins", classes)
        levels = np.zeros(1) if self.levels is None else np.asarray(self.levels, float)
        return step.compiled().class_margins(outputs, classes, step.DECODES[self.decode], levels)

    def accuracy(self, outputs: np.ndarray, classes: np.ndarray | None = None) -> float | None:
        """Fraction of points whose predicted class is right, or None for regression. ``classes`` [P] default to
        the training points' (``outputs`` [P, n_out] then of those points)."""
        if self.classes is None:
            return None
        outputs, classes = self._outputs(outputs, "Task.accuracy", self.classes if classes is None else classes)
        return float(np.mean(self.predict(outputs) == classes))

    def _outputs(self, outputs: object, where: str, classes: object = None):
        """``outputs`` as float [P, n_out] (a row [n_out] is one point), and with ``classes`` the pair with int64
        classes [P], refusing a shape or a class this task cannot read: the compiled margins read both unchecked
        (a class past the last output read memory beyond it), and numpy failed on a list or a shorter array with
        its own words."""
        out = np.atleast_2d(real_array(outputs, where, "outputs", "output values (V)", "give the network's outputs "
                                       "[P, n_out] (Circuit.output_values)", axes=("point", "output")))
        if out.ndim != 2 or out.shape[1] != self.n_outputs:
            raise ValidationError(f"{where}: outputs must have {self.n_outputs} column(s), one per output of task "
                                  f"{self.name} (got shape {np.shape(outputs)}); give the network's outputs [P, "
                                  f"{self.n_outputs}] (Circuit.output_values)")
        if classes is None:
            return out
        cls = _class_indices(classes, f"{where}: classes")
        n_classes = len(self.levels) if self.decode == "nearest" else self.n_outputs
        if cls.shape != (len(out),):
            raise ValidationError(f"{where}: outputs and classes must have one row per point (got {len(out)} rows "
                                  f"of outputs and classes of shape {cls.shape}); give the outputs of the points "
                                  "the classes are of")
        if len(cls) and cls.max() >= n_classes:
            raise ValidationError(f"{where}: classes must be below {n_classes}, the classes of task {self.name} (got "
                                  f"class {int(cls.max())}); give the points' classes")
        return out, cls


def _class_indices(values: object, where: str) -> np.ndarray:
    """int64 [P] class indices, refusing what is not a whole number >= 0: 0.5 was truncated to class 0, and a
    negative class read the outputs from the end."""
    arr = np.asarray(values)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf" or (arr.dtype.kind == "f" and not np.all(
            np.isfinite(arr) & (arr == np.round(arr)))) or (arr.size and arr.min() < 0):
        raise ValidationError(f"{where}: must be class indices, whole numbers >= 0 (got {shown(values)}); give "
                              "each point's class as 0, 1, 2, ...")
    return arr.astype(np.int64)


def _check_range(where: str, low: float, high: float, test_fraction: float | None = None,
                 seed: int | None = None) -> None:
    """What a config checks of these task keys (``config.TaskConfig``), for a builder called directly: the inputs'
    range low < high (at low = high every input was one voltage), a held-out fraction in [0, 1) (below 0 it held
    out nothing without a word) and a split seed of an int >= 0 (numpy's or scikit-learn's own error)."""
    if not low < high:
        raise ValidationError(f"{where}: low must be < high (got {low}, {high}); give the lower voltage as low")
    if test_fraction is not None and not 0 <= test_fraction < 1:
        raise ValidationError(f"{where}: test_fraction must be in [0, 1) (got {shown(test_fraction)}); give the "
                              "fraction of the points to hold out, or 0 for none")
    if seed is not None and whole_number(seed, where, "seed", "give the split's seed as an int >= 0") < 0:
        raise ValidationError(f"{where}: seed must be >= 0 (got {seed}); give the split's seed as an int >= 0")


def xor_task(low: float = 0.0, high: float = 0.45, labels: tuple[float, float] = (0.0, -0.087)) -> Task:
    """XOR on two inputs at ``low``/``high`` volts; differential output; ``labels`` = (same, different)."""
    _check_range("xor_task", low, high)
    x = np.array([[low, low], [low, high], [high, low], [high, high]])
    cls = np.array([0, 1, 1, 0])
    lv = real_array(labels, "xor_task", "labels", "two output values (V)", "give (same, different), e.g. (0.0, -0.087)",
                    finite="give two finite voltages")
    if lv.shape != (2,):  # a third label was a third class's level, which predict() could choose; one, an IndexError
        raise ValidationError(f"xor_task: labels must be two, the output for equal inputs and for different ones "
                              f"(got {shown(labels)}); give e.g. (0.0, -0.087)")
    if lv[0] == lv[1]:
        raise ValidationError(f"task.labels: the two XOR labels must differ (got {list(labels)}); give the output "
                              "for equal inputs first, then another for different inputs")
    return Task("xor", x, lv[cls][:, None], classes=cls, decode="nearest", levels=lv)


def regression_task(x: np.ndarray = REGRESSION_X, y: np.ndarray = REGRESSION_Y) -> Task:
    """Nonlinear regression: one input, one output (default: the 8-point saturating ramp)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 1:
        raise ValidationError(f"task.x, task.y: need two equal-length lists (got {x.shape} and {y.shape})")
    return Task("regression", x[:, None], y[:, None])


def linear_regression_task(n_points: int, slope: float, offset: float, low: float, high: float) -> Task:
    """y = offset + slope x on ``n_points`` evenly spaced inputs in [low, high]."""
    _check_range("linear_regression_task", low, high)
    x = np.linspace(low, high, whole_number(n_points, "linear_regression_task", "n_points"))
    return Task("linear_regression", x[:, None], (offset + slope * x)[:, None])


def allostery_task(source: float, targets: tuple[float, ...]) -> Task:
    """Allostery: one fixed drive, several outputs to be set to given voltages (target ratios)."""
    given = real_array(targets, "allostery_task", "targets", "one voltage per output", "give e.g. (0.1, 0.3)")
    if given.ndim != 1:  # one number was an IndexError, a table a three-axis target the Task refused
        raise ValidationError(f"allostery_task: targets must be one voltage per output (got shape {given.shape}); "
                              "give e.g. (0.1, 0.3)")
    return Task("allostery", np.array([[source]]), given[None, :])


def _check_levels(on: float, off: float) -> None:
    """A classification's targets: the right class's output ``on`` above the others' ``off``, as argmax reads it."""
    if not on > off:  # equal: nothing to learn; below: argmax would score the trained network's worst class
        raise ValidationError(f"task.target_on, task.target_off: the right class's target must be above the others' "
                              f"(got on {shown(on)}, off {shown(off)}); the highest output is the predicted class, "
                              "so give target_on > target_off")


def iris_task(low: float, high: float, on: float, off: float, test_fraction: float, seed: int) -> Task:
    """Iris (150 flowers, 4 features, 3 species); features scaled to [low, high] V over the training flowers'
    range (``FeatureScale``; held-out ones by the same map); one output per class,
    target ``on`` for the right class and ``off`` for the others; a seeded stratified test split."""
    _check_range("iris_task", low, high, test_fraction, seed)
    _check_levels(on, off)
    with resources.files("metamaterial").joinpath("data/iris.csv").open() as f:
        rows = list(csv.DictReader(f))
    x = np.array([[float(r[k]) for k in list(r)[:4]] for r in rows])
    names, cls = np.unique([r["species"] for r in rows], return_inverse=True)
    task = Task("iris", x, np.where(np.eye(3)[cls] > 0, on, off), classes=cls, decode="argmax",
                columns=tuple(rows[0]), class_names=tuple(str(n) for n in names))
    return _scaled(_split(task, test_fraction, seed), low, high, "task (iris)", list(rows[0])[:4])


def digits_task(low: float, high: float, on: float, off: float, test_fraction: float, seed: int) -> Task:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 64 pixels of 0-16, 10 classes; the copy bundled with
    scikit-learn, no download): pixel p drives input p at low + (high - low) p / 16 V (the third-party trainer's
    pixel/16 V for [0, 1], github Ma-Lab-Cal/pyclln, scikit_digits/train_scikit.py); one output per class, target
    ``on`` for the right class and ``off`` for the others; held out: scikit-learn's stratified split with
    ``random_state=seed`` (``test_fraction`` 0.2 and seed 0 give that trainer's 1,437 / 360 points)."""
    _check_range("digits_task", low, high, test_fraction, seed)
    _check_levels(on, off)
    try:
        from sklearn.datasets import load_digits  # noqa: PLC0415 (an optional dependency, loaded when needed)
        from sklearn.model_selection import train_test_split  # noqa: PLC0415
    except ImportError as err:
        raise ValidationError("task.name: the digits task needs scikit-learn (got none installed); install it with "
                              "`make setup` or, in the checkout, pip install '.[digits]'") from err
    x, cls = load_digits(return_X_y=True)
    x = low + (high - low) * np.asarray(x, float) / 16.0
    cls = np.asarray(cls, np.int64)
    y = np.where(np.eye(10)[cls] > 0, on, off)
    if test_fraction <= 0:
        return Task("digits", x, y, classes=cls, decode="argmax")
    n, k = len(cls), len(np.unique(cls))
    n_test = int(np.ceil(test_fraction * n))  # how scikit-learn sizes the held-out side
    if min(n_test, n - n_test) < k:
        raise ValidationError(f"task.test_fraction: a stratified split of the {n:,} images needs at least {k} (one "
                              f"per class) on each side, and {test_fraction:g} holds out {n_test} and keeps "
                              f"{n - n_test} to train; give a value from {k / n:.3g} to {(n - k) / n:.4g}, or 0 to "
                              "hold out nothing")
    train, test = train_test_split(np.arange(n), test_size=test_fraction, random_state=seed, stratify=cls)
    return Task("digits", x[train], y[train], cls[train], "argmax", None, x[test], y[test], cls[test])


def csv_task(path: str | Path, n_inputs: int, classification: bool, low: float, high: float, on: float, off: float,
             scale: bool, test_fraction: float, seed: int) -> Task:
    """Task from a CSV with a header: the first ``n_inputs`` columns are inputs (V, or with ``scale`` features
    mapped onto [low, high] V over the training points' range, ``FeatureScale``); the rest are target voltages, or
    for ``classification`` one column of class names (any text). Column and class names are stripped of spaces;
    column names must be distinct and non-empty; each refusal names the file's line and the column. A byte-order
    mark (a spreadsheet's "CSV UTF-8") is not part of the first name."""
    _check_range("csv_task", low, high, test_fraction, seed)
    if classification:
        _check_levels(on, off)
    n_inputs = whole_number(n_inputs, "csv_task", "n_inputs")
    p = Path(path)
    text = read_text(p, ValidationError, "task.path: ", "the CSV", "check the path, or give a CSV file",
                     "give a CSV file", encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    numbered = [(reader.line_num, r) for r in reader if r]  # the line of each row, to name a bad value's
    rows = [r for _, r in numbered]
    layout = (f"the {n_inputs} input column(s) first, then " +
              ("the class column" if classification else "the target column(s)"))
    if len(rows) < 2:
        got = "an empty file" if not rows else f"only the line {shown(','.join(rows[0]))}"
        raise ValidationError(f"task.path: {p}: needs a header row and at least one data row (got {got}); give a "
                              f"first line naming the columns ({layout}) and one line per point")
    header = _csv_header(rows[0], f"task.path: {p}:{numbered[0][0]}")
    body = rows[1:]
    if len(header) < 2:
        other = next((f", not {name}" for c, name in ((";", "semicolons"), ("\t", "tabs")) if c in header[0]), "")
        raise ValidationError(f"task.path: {p}: the header names one column (got {shown(header[0])}); name an input "
                              f"and a target column at least, separated by commas{other}")
    for line, r in numbered[1:]:
        if len(r) != len(header):
            raise ValidationError(f"task.path: {p}:{line}: {len(r)} values, where the header names {len(header)} "
                                  "columns; give one value per column")
    if not 0 < n_inputs < len(header):
        raise ValidationError(f"task.n_inputs: must be in [1, {len(header) - 1}] for {p} (got {n_inputs}); give how "
                              f"many of its columns ({listed(header, 8)}), from the first, are inputs: "
                              + ("the next is the class" if classification else "the rest are targets"))
    lines = [line for line, _ in numbered[1:]]
    x = _numbers(body, range(n_inputs), header, lines, f"task.path: {p}")
    if classification:
        for line, r in numbered[1:]:
            if not r[n_inputs].strip():
                raise ValidationError(f"task.path: {p}:{line}: {header[n_inputs]} is empty, where it names the "
                                      "point's class; give every row its class")
        kinds, cls = np.unique([r[n_inputs].strip() for r in body], return_inverse=True)
        if len(kinds) < 2:  # one output per class, and an argmax of one output calls every point right
            raise ValidationError(f"task.path: {p}: the class column {header[n_inputs]} names one class (got "
                                  f"{shown(str(kinds[0]))}); a classification needs two classes or more")
        y = np.where(np.eye(len(kinds))[cls] > 0, on, off)
    else:
        y = _numbers(body, range(n_inputs, len(header)), header, lines, f"task.path: {p}")
        cls, kinds = None, ()
    columns = [(x, header[:n_inputs], not scale)] + ([] if classification else [(y, header[n_inputs:], True)])
    for values, names, volts in columns:  # inputs to be scaled need only be finite
        bad = bad_value(values, volts)
        if bad is not None:
            i, j, want = bad
            raise ValidationError(f"task.path: {p}:{lines[i]}: {names[j]} must be {want} (got "
                                  f"{values[i, j]:g}); correct that value")
    # features to be scaled ride as ``features`` until ``_scaled`` makes the inputs from them: as inputs they are no
    # voltages (a column of 5000s)
    task = _split(Task(p.stem, np.zeros_like(x) if scale else x, y, classes=cls,
                       decode="argmax" if classification else None, features=x if scale else None,
                       columns=tuple(header[:n_inputs + 1] if classification else header),
                       class_names=tuple(str(k) for k in kinds)), test_fraction, seed)
    if not scale:
        return task
    return _scaled(task, low, high, f"task.path: {p}", header[:n_inputs])


def _csv_header(cells: list[str], where: str) -> list[str]:
    """The column names of a CSV's first row, stripped of spaces; refused, naming ``where`` (the file and its
    line), when the row holds numbers (a file without a header, whose first point would be taken for names), or
    a name is empty or repeated (the columns are read by name: ``eval --inputs``, outputs.csv)."""
    header = [h.strip() for h in cells]
    if all(_is_number(h) for h in header):
        raise ValidationError(f"{where}: the first line holds numbers, not column names (got {','.join(header)}); "
                              "give a header row naming the columns")
    for j, name in enumerate(header):
        if not name:
            index = " (pandas's to_csv writes its index so: give it index=False)" if j == 0 else ""
            raise ValidationError(f"{where}: column {j + 1} has no name (got the header {shown(','.join(cells))}); "
                                  f"name it, or remove the column{index}")
        if name in header[:j]:
            raise ValidationError(f"{where}: columns {header.index(name) + 1} and {j + 1} are both named {name!r}; "
                                  "give each column its own name")
    return header


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _numbers(body: list[list[str]], cols: range, header: list[str], lines: list[int], where: str) -> np.ndarray:
    """[rows, len(cols)] the values of columns ``cols`` of the data rows ``body``; a cell that is not a number
    (text, or empty) is refused naming ``where``, its line (``lines``) and its column."""
    out = np.empty((len(body), len(cols)))
    for i, r in enumerate(body):
        for k, j in enumerate(cols):
            try:
                out[i, k] = float(r[j])
            except ValueError:
                got = repr(r[j]) if r[j].strip() else "an empty cell"
                raise ValidationError(f"{where}:{lines[i]}: {header[j]} must be a number (got {got}); correct that "
                                      "value") from None
    return out


def bad_value(values: np.ndarray, volts: bool = True) -> tuple[int, int, str] | None:
    """The first value of ``values`` [rows, columns] that is not finite, or (``volts``) not a voltage within
    ``MAX_VOLTS``, as (row, column, what it must be); None if there is none. Data files are checked with it where
    they are read: the solver would fail on such a value without naming the file."""
    bad = ~np.isfinite(values)
    if volts:
        bad |= np.abs(values) > MAX_VOLTS
    if not bad.any():
        return None
    i, j = np.argwhere(bad)[0]
    return int(i), int(j), (f"a finite voltage in [-{MAX_VOLTS:g}, {MAX_VOLTS:g}] V" if volts else "a finite number")


def _scaled(task: Task, low: float, high: float, source: str, names: list[str] | tuple[str, ...]) -> Task:
    """``task`` with its inputs, a dataset's features, mapped onto [low, high] V by a ``FeatureScale`` fitted on its
    training points alone (each feature's range over them), and the points scored apart mapped by the same map, as
    new data would be (``eval --inputs``): nothing of theirs shapes what the network is trained on. They may then
    fall slightly outside [low, high], and are refused past ``MAX_VOLTS`` (``source``: the data's key and file;
    ``names``: the features')."""
    raw = task.inputs if task.features is None else task.features
    raw_test = task.test_inputs if task.features is None else task.test_features
    lo, hi = raw.min(axis=0), raw.max(axis=0)
    scale = FeatureScale(lo, np.where(hi > lo, hi - lo, 1.0), low, high, source, tuple(names))
    test_inputs = None if raw_test is None else scale.volts(raw_test)
    bad = bad_value(test_inputs) if test_inputs is not None else None
    if bad is not None:  # a point scored apart far outside the training points' range (before the Task refuses it)
        i, j, _ = bad
        which, fix = (("held-out", "hold out no point (task.test_fraction 0)") if task.scored == "held-out" else
                      ("validation", "choose another task.validation.seed or fraction"))
        raise ValidationError(f"{source}: a {which} point's {names[j]} ({raw_test[i, j]:g}) maps to "
                              f"{test_inputs[i, j]:g} V under task.scale, fitted on the training points' "
                              f"{lo[j]:g} to {lo[j] + scale.span[j]:g}, beyond {MAX_VOLTS:g} V; correct that value, "
                              f"or {fix}")
    return replace(task, inputs=scale.volts(raw), test_inputs=test_inputs, features=raw, test_features=raw_test,
                   scale=scale)


def scored_on(record: dict) -> str:
    """What the ``test_*`` figures of a run's summary or an eval result score (``Task.scored``): ``"held-out"``
    points or a ``"validation"`` set; a record written before it said so scored held-out points."""
    return record.get("scored_on", "held-out")


def validation_split(task: Task, fraction: float, seed: int) -> Task:
    """The task on its remaining training points, scored on a validation set in place of its held-out points:
    ``fraction`` of each class's training points (of all of them for a regression), drawn from ``seed`` as
    ``_split`` draws a held-out set. The held-out points are dropped, so a run of this task never solves them: what
    a recipe is chosen on. A ``scale`` is fitted again on the remaining training points alone."""
    val = _stratified_pick(task, fraction, seed, "task.validation.fraction")
    out = replace(_divided(task, val), scored="validation")
    if task.scale is None:
        return out
    s = task.scale
    return _scaled(out, s.low, s.high, s.source, s.names)  # refit without them


def _split(task: Task, test_fraction: float, seed: int) -> Task:
    """Seeded stratified split into training and held-out points (none held out at a fraction of 0)."""
    if test_fraction <= 0:
        return task
    return _divided(task, _stratified_pick(task, test_fraction, seed, "task.test_fraction"))


def _divided(task: Task, test: np.ndarray) -> Task:
    """``task``'s points split by ``test`` [P] bool into training points (False) and points scored apart (True),
    which replace any it had."""
    def pick(a: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
        return None if a is None else a[rows]

    return replace(task, inputs=task.inputs[~test], targets=task.targets[~test], classes=pick(task.classes, ~test),
                   test_inputs=task.inputs[test], test_targets=task.targets[test],
                   test_classes=pick(task.classes, test), features=pick(task.features, ~test),
                   test_features=pick(task.features, test))


def _stratified_pick(task: Task, fraction: float, seed: int, key: str) -> np.ndarray:
    """[P] bool: ``fraction`` of each class's points (of all points for a regression), rounded per class, drawn
    from ``seed``; refused, naming ``key``, when that picks no point or leaves a class without a training point."""
    rng = np.random.default_rng(seed)
    picked = np.zeros(task.n_points, bool)
    groups = task.classes if task.classes is not None else np.zeros(task.n_points, int)
    for g in np.unique(groups):
        idx = rng.permutation(np.flatnonzero(groups == g))
        picked[idx[:int(round(fraction * len(idx)))]] = True
    if not picked.any():
        raise ValidationError(f"{key}: {fraction:g} of the {task.n_points} points rounds to none"
                              f"{' in every class' if task.classes is not None else ''}; give a larger value"
                              f"{', or 0 to hold out nothing' if key == 'task.test_fraction' else ''}")
    short = [g for g in np.unique(groups) if picked[groups == g].all()]
    if short:
        which = (f"class {short[0]} keeps no training point" if task.classes is not None else
                 "no training point is left")
        raise ValidationError(f"{key}: with {fraction:g} taken, {which} (of {task.n_points} points); give a smaller "
                              "value")
    return picked
