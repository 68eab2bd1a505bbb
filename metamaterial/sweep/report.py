"""A sweep's table and figures, from its folder alone (``metamaterial sweep-report DIR`` redraws them).

``results.csv`` (and ``results.parquet`` when pyarrow is installed) has one row per point of the spec in spec
order: index, key, status, one column per axis, the summary's metrics and labels (the run's seed among them,
also without a seeds group), and the error of a failed point.
An axis's column holds the point's value of it: a summary field of the same name (``task``, the task's name, of an
axis over ``task``) is left out.
Figures (``figures/``): a metric against each swept axis (mean over seeds with its spread: the standard deviation
band of a continuous metric, the Wilson interval (one standard error) of a success rate; one line per value of the
other axes when they have few combinations) and heat maps of the mean over pairs of axes (one panel per value of a
third axis when it has at most four). A numeric axis runs in ascending order, any other in the spec's order.
"""

from __future__ import annotations

import csv
import difflib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..tasks import scored_on
from .spec import SEED_AXIS, is_sweep_spec, yaml_file
from .store import POINTS, SLOT_CLOCK_SINCE, SUMMARY_METRICS, read_record, result_path

#: the metrics of a point's summary, in table order (the labels and any other key follow, sorted)
METRICS = tuple(SUMMARY_METRICS)
MAX_LINES = 6
PARQUET_HINT = ("no results.parquet: pyarrow is not installed (`make setup`, or in the checkout pip install "
                "'.[parquet]')")
MAX_PANELS = 4


@dataclass(frozen=True)
class SweepTable:
    """A sweep's folder, read once: its axes, one row per point of its last spec (metrics of finished points), and
    its damaged result files (path, what is wrong: ``store.read_record``), whose points count as pending."""

    axes: list[str]
    rows: list[dict]
    damaged: list[tuple[Path, str]]
    #: axis -> its spec group ("grid", "zip", "random", "seeds") and that group's axes (``SweepSpec.groups``; a
    #: folder written before it was recorded: each axis a grid of its own)
    groups: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)


def read_table(out: Path) -> SweepTable:
    """The table of the sweep in ``out``; a ``ConfigError`` naming the file if it is no sweep folder or its
    points.json is damaged."""
    out = Path(out)
    axes, points, groups = _read_points(out)
    rows, damaged = [], []
    for p in points:
        record, problem = read_record(out, p["key"])
        if problem:
            damaged.append((result_path(out, p["key"]), problem))
        record = record or {"status": "pending"}
        row = {"index": p["index"], "key": p["key"], "status": record["status"], **p["values"]}
        # the axis values win: a summary field of an axis's name (an axis over task) is left out
        row.update({k: v for k, v in (record.get("summary") or {}).items() if k not in row})
        if "hardware_time_s" in row and record.get("revision", 1) < SLOT_CLOCK_SINCE:  # another clock's figure
            row["hardware_time_s"] = None
        error = record.get("error") or {}
        row["error_class"], row["error_message"] = error.get("class"), error.get("message")
        rows.append(row)
    return SweepTable(axes, rows, damaged, groups)


def load_table(out: Path) -> tuple[list[str], list[dict]]:
    """(axes, rows) of the sweep in ``out`` (``read_table``)."""
    table = read_table(out)
    return table.axes, table.rows


def _read_points(out: Path) -> tuple[list[str], list[dict], dict[str, tuple[str, tuple[str, ...]]]]:
    """(axes, points, groups) of ``out/points.json``, checked: each point a mapping of its index, key and values,
    one per axis; groups: axis -> (its spec group, that group's axes), for the axes it names."""
    path = out / POINTS
    doc = yaml_file(out)  # a spec or a config, where its folder goes
    if doc is not None:
        if is_sweep_spec(doc):
            name = doc.get("name") if isinstance(doc.get("name"), str) else "<name>"
            raise ConfigError(f"{out}: a sweep spec, not a sweep folder; give the folder its sweep wrote (its --out, "
                              f"by default runs/sweeps/{name})")
        raise ConfigError(f"{out}: a YAML file, not a sweep folder; give the folder a sweep wrote (metamaterial sweep "
                          "SPEC --out DIR; by default runs/sweeps/<the spec's name>)")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"{out}: not a sweep folder (no readable {POINTS}); give the --out of a sweep") from err
    problem = None
    if not isinstance(meta, dict):
        problem = f"not a mapping (got {type(meta).__name__})"
    elif not isinstance(meta.get("axes"), list) or not all(isinstance(a, str) for a in meta["axes"]):
        problem = "no list of axis names under 'axes'"
    elif not isinstance(meta.get("points"), list):
        problem = "no list of points under 'points'"
    else:
        for i, p in enumerate(meta["points"]):
            if not (isinstance(p, dict) and isinstance(p.get("index"), int) and isinstance(p.get("key"), str)
                    and isinstance(p.get("values"), dict)):
                problem = f"point {i} is not a mapping of its index, key and values"
            elif any(a not in p["values"] for a in meta["axes"]):
                problem = f"point {i} has no value of axis {next(a for a in meta['axes'] if a not in p['values'])}"
            if problem:
                break
    if problem:
        raise ConfigError(f"{path}: damaged ({problem}); run the sweep's command again to rewrite it (its results "
                          "stay)")
    groups = {}
    for g in meta.get("groups") or []:  # absent before it was recorded: each axis then counts as a grid
        if isinstance(g, dict) and isinstance(g.get("group"), str) and isinstance(g.get("axes"), list):
            keys = tuple(a for a in g["axes"] if a in meta["axes"])
            groups.update({a: (g["group"], keys) for a in keys})
    return meta["axes"], meta["points"], groups


def write_table(out: Path, table: SweepTable | None = None) -> list[Path]:
    """Write ``results.csv`` (and ``results.parquet`` with pyarrow) of ``table`` (default: read from ``out``);
    returns the files written."""
    out = Path(out)
    table = table or read_table(out)
    axes, rows = table.axes, table.rows
    present = {k for r in rows for k in r}
    columns = ["index", "key", "status", *axes] + [m for m in METRICS if m in present]
    columns += sorted(present - set(columns) - {"error_class", "error_message"}) + ["error_class", "error_message"]
    flat = [{c: _key(r.get(c)) for c in columns} for r in rows]
    with (out / "results.csv").open("w") as f:
        w = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows({c: ("" if v is None else v) for c, v in r.items()} for r in flat)
    written = [out / "results.csv"]
    try:
        import pyarrow as pa  # noqa: PLC0415 (optional: pip install '.[parquet]')
        import pyarrow.parquet as pq  # noqa: PLC0415
    except ImportError:  # the CLI says how to get it (PARQUET_HINT)
        return written
    pq.write_table(pa.table({c: _arrow_column(pa, [r[c] for r in flat]) for c in columns}), out / "results.parquet")
    return written + [out / "results.parquet"]


def _arrow_column(pa, values: list):
    """A parquet column of ``values``; as text, as the CSV holds them, where Arrow has no type for them all: a seed
    past 2**63 - 1 (a config takes any seed >= 0) is no int64, and failed the whole table with a traceback."""
    try:
        return pa.array(values)
    except (pa.ArrowException, OverflowError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def default_metric(rows: list[dict]) -> str:
    """``test_accuracy`` when the points are classifications scored on held-out or validation points, ``success``
    (a success rate: every training point right by the margin) for other classifications, else ``final_loss``.
    (A classifier of many classes, such as the digits, never has every training point right: its success rate is
    0 at every point.)"""
    if any(r.get("test_accuracy") is not None for r in rows):
        return "test_accuracy"
    return "success" if any(r.get("success") is not None for r in rows) else "final_loss"


def check_metric(metric: str | None) -> None:
    """Refuse a ``--metric`` that is not one of a point's summary metrics (``store.SUMMARY_METRICS``): a label
    (backend, task), the index, a seed, an axis or an error message would make no figure worth drawing. Known
    without running a point, so ``sweep`` checks it before it runs any."""
    if metric is not None and metric not in SUMMARY_METRICS:
        near = difflib.get_close_matches(str(metric), list(SUMMARY_METRICS), n=1, cutoff=0.8)
        maybe = f" (did you mean {near[0]}?)" if near else ""
        raise ConfigError(f"--metric {metric}: not a metric of a sweep's points{maybe}; choose one of "
                          f"{', '.join(SUMMARY_METRICS)}")


def plot_sweep(out: Path, metric: str | None = None,
               table: SweepTable | None = None) -> tuple[list[Path], list[Path], list[str]]:
    """Draw the figures of the sweep in ``out`` (its ``table``, default: read from ``out``) into ``out/figures``;
    returns (paths drawn, stale paths removed, notes: why a metric was not drawn).

    Every figure already in ``figures/`` is drawn again from today's table, so none shows fewer points than the
    table: the figures of ``metric`` and of each metric an earlier report drew (``sweep-report --metric``, or a
    default that has since changed). A figure of an axis no longer swept or of a metric no longer in the table is
    removed. A metric (``check_metric``) with no value at any finished point is not drawn: a note says why
    (``store.SUMMARY_METRICS``)."""
    check_metric(metric)
    out = Path(out)
    table = table or read_table(out)
    axes, rows = table.axes, table.rows
    ok = [r for r in rows if r["status"] == "ok"]
    metric = metric or default_metric(ok)
    swept = [a for a in axes if a != SEED_AXIS and len({_key(r[a]) for r in rows}) > 1]
    figures = out / "figures"
    before = sorted(figures.glob("*.png")) if figures.is_dir() else []
    if not ok or not swept:
        alone = "no axis but seed takes more than one value" if ok else "no point trained to the end"
        return [], [], [f"no figure: {alone} (results.csv holds each point's metrics)"]
    from ..plots import _pyplot  # noqa: PLC0415

    plt = _pyplot()
    figures.mkdir(exist_ok=True)
    orders = _orders(rows, swept)
    metrics = list(dict.fromkeys([metric, *(m for m in METRICS if any(_figure_of(f, m) for f in before))]))
    paths, notes = [], []
    for m in metrics:
        if all(math.isnan(_values(r.get(m))) for r in ok):  # nothing to draw (a log axis of no data would fail)
            why = SUMMARY_METRICS[m]
            notes.append(f"no figure of {m}: it has no value at any of the {len(ok)} finished point(s)"
                         + (f" ({why})" if why else ""))
            continue
        paths += [_line_plot(plt, figures, ok, swept, a, m, len(rows) - len(ok), orders, table.groups)
                  for a in swept]
        for i, a in enumerate(swept):
            for b in swept[i + 1:]:
                kinds = {table.groups.get(x, ("grid", (x,)))[0] for x in (a, b)}
                if "zip" in kinds and table.groups[a] == table.groups[b]:
                    continue  # one zip's axes move together: a heat map of them would be its diagonal
                paths.append(_scatter(plt, figures, ok, a, b, m, orders) if "random" in kinds else
                             _heat_map(plt, figures, ok, swept, a, b, m, orders))
    names = {*METRICS, *(k for r in rows for k in r)}
    stale = [f for f in before if f not in paths and any(_figure_of(f, m) for m in names)]
    for f in stale:
        f.unlink()
    return paths, stale, notes


def _figure_of(path: Path, metric: str) -> bool:
    """Whether ``path`` is named as a figure of ``metric`` (``_line_plot``'s and ``_heat_map``'s names)."""
    return path.name.startswith((f"{metric}_vs_", f"{metric}_heatmap_", f"{metric}_scatter_"))


def _key(v: Any) -> Any:
    """Lists and mappings (an axis over learning.bounds) as JSON text (a table cell, a hashable key); booleans stay
    booleans."""
    return json.dumps(v) if isinstance(v, (list, dict)) else v


def _values(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _orders(rows: list[dict], axes: list[str]) -> dict[str, Callable[[Any], Any]]:
    """A sort key per axis: a numeric axis ascending; any other (a categorical axis: names, booleans, lists) in the
    order the spec's points first take its values (``rows`` in spec order: a grid or zip axis in the order the spec
    lists them), not alphabetically."""
    keys: dict[str, Callable[[Any], Any]] = {}
    for a in axes:
        seen = list(dict.fromkeys(_key(r[a]) for r in rows))
        numeric = all(_is_number(v) for v in seen)
        keys[a] = float if numeric else {v: i for i, v in enumerate(seen)}.__getitem__
    return keys


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _log(values: list) -> bool:
    v = [x for x in values if _is_number(x)]
    return len(v) == len(values) and min(v) > 0 and max(v) / min(v) >= 50


def _stat(samples: list[float], rate: bool) -> tuple[float, float, float, int]:
    """(mean, low, high, n): the band of a rate is its Wilson score interval at one standard error (z = 1: about
    68 %, and not empty at a rate of 0 or 1, where the Wald error p (1 - p) / n is 0: 0 of 20 successes still
    allows a rate of up to 0.05), else the mean plus and minus the sample standard deviation (ddof 1: over 2 or 3
    seeds the population's is 0.71 or 0.82 of it; one sample has no spread, a band of 0)."""
    x = np.array([s for s in samples if not math.isnan(s)])
    n = len(x)
    if not n:
        return float("nan"), float("nan"), float("nan"), 0
    mean = float(x.mean())
    if not rate:
        sd = float(x.std(ddof=1)) if n > 1 else 0.0
        return mean, mean - sd, mean + sd, n
    centre, half = (mean + 1 / (2 * n)) / (1 + 1 / n), math.sqrt(mean * (1 - mean) / n + 1 / (4 * n * n)) / (1 + 1 / n)
    return mean, max(0.0, min(mean, centre - half)), min(1.0, max(mean, centre + half)), n  # exact at 0 and 1


def _short(axis: str, swept: list[str]) -> str:
    """An axis as a legend names it: its last key, or its last two where that alone would be the run's ``seed``
    or another axis's name (``validation.seed``)."""
    last = axis.rsplit(".", 1)[-1]
    clash = last == "seed" and axis != "seed" or sum(a.rsplit(".", 1)[-1] == last for a in swept) > 1
    return ".".join(axis.split(".")[-2:]) if clash else last


def _label(metric: str, ok: list[dict]) -> str:
    """The axis label of ``metric`` over the finished points ``ok`` (their ``scored_on`` names what the test
    metrics score: held-out or validation points; a record written before it said so scored held-out ones)."""
    scored = sorted({scored_on(r) for r in ok if r.get(metric) is not None}) if metric.startswith("test_") else []
    on = " or ".join(scored) or "held-out"
    return {"success": "success rate", "final_loss": "final loss (V^2)", "test_loss": f"{on} loss (V^2)",
            "test_accuracy": f"{on} accuracy", "accuracy": "training accuracy",
            "final_hinge_loss": "final hinge loss (V)", "test_hinge_loss": f"{on} hinge loss (V)",
            "learning_time_s": "learning time (s)",
            "learning_time_to_target_s": "learning time to the target loss (s)"}.get(metric, metric)


def _line_plot(plt, figures: Path, ok: list[dict], swept: list[str], axis: str, metric: str, n_failed: int,
               orders: dict[str, Callable[[Any], Any]], groups: dict[str, tuple[str, tuple[str, ...]]]) -> Path:
    """``metric`` against ``axis``: one line per combination of the other axes (an axis zipped with ``axis`` moves
    with it, so it is not one of them); against a randomly drawn axis, markers without lines."""
    from ..plots import _save  # noqa: PLC0415 (plot_sweep has imported it)

    group, tied = groups.get(axis, ("grid", (axis,)))
    others = [a for a in swept if a != axis and not (group == "zip" and a in tied)]
    style = "o" if group == "random" else "o-"  # drawn values: neighbours on the axis share nothing else
    combos = sorted({tuple(_key(r[a]) for a in others) for r in ok},
                    key=lambda c: tuple(orders[a](v) for a, v in zip(others, c))) if others else [()]
    split = len(combos) <= MAX_LINES
    xs = sorted({_key(r[axis]) for r in ok}, key=orders[axis])
    numeric = all(_is_number(x) for x in xs)  # booleans are categories, in the spec's order
    rate = metric == "success"
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for combo in (combos if split else [None]):
        mine = [r for r in ok if combo is None or tuple(_key(r[a]) for a in others) == combo]
        stats = [_stat([_values(r.get(metric)) for r in mine if _key(r[axis]) == x], rate) for x in xs]
        mean, low, high = (np.array([s[i] for s in stats]) for i in range(3))
        pos = np.array(xs, float) if numeric else np.arange(len(xs))
        label = None if not others else ("all" if combo is None else
                                         ", ".join(f"{_short(a, swept)}={v}" for a, v in zip(others, combo)))
        line, = ax.plot(pos, mean, style, label=label)
        ax.fill_between(pos, low, high, color=line.get_color(), alpha=0.2, lw=0)
    if not numeric:
        ax.set_xticks(np.arange(len(xs)), [str(x) for x in xs])
    elif _log(xs):
        ax.set_xscale("log")
    finite = [v for v in (_values(r.get(metric)) for r in ok) if not math.isnan(v)]
    if metric != "success" and _log(finite or [1]):  # _log: every value > 0 and spanning a factor 50
        ax.set_yscale("log")
    ax.set_xlabel(axis)
    ax.set_ylabel(_label(metric, ok))
    spread = "Wilson interval at one standard error" if rate else "one standard deviation"
    ax.set_title(f"{_label(metric, ok)} vs {axis}\n(mean over seeds; band: {spread}"
                 f"{f'; {n_failed} point(s) failed or pending' if n_failed else ''})", fontsize=9)
    if others:
        ax.legend(fontsize=7)
    return _save(fig, figures / f"{metric}_vs_{axis}.png", plt, dpi=120)


def _scatter(plt, figures: Path, ok: list[dict], a: str, b: str, metric: str,
             orders: dict[str, Callable[[Any], Any]]) -> Path:
    """``metric`` over two axes of which one at least is randomly drawn: a marker per drawn pair (the mean over
    seeds and the other axes), coloured by the metric (a heat map's grid would hold one value per row and column)."""
    from ..plots import _save  # noqa: PLC0415 (plot_sweep has imported it)

    rate = metric == "success"
    cell: dict = defaultdict(list)
    for r in ok:
        cell[(_key(r[a]), _key(r[b]))].append(_values(r.get(metric)))
    pairs = list(cell)
    positions = []
    for axis, i in ((a, 0), (b, 1)):
        values = [p[i] for p in pairs]
        if all(_is_number(v) for v in values):
            positions.append((np.array(values, float), None))
        else:  # names, booleans: at their rank
            order = sorted(set(values), key=orders[axis])
            positions.append((np.array([order.index(v) for v in values], float), order))
    z = np.array([_stat(cell[p], rate)[0] for p in pairs])
    fig, ax = plt.subplots(figsize=(5.6, 4.4))
    shown = ax.scatter(positions[0][0], positions[1][0], c=z, cmap="viridis", s=28, vmin=0 if rate else None,
                       vmax=1 if rate else None)
    for (x, order), set_ticks, set_scale in ((positions[0], ax.set_xticks, ax.set_xscale),
                                            (positions[1], ax.set_yticks, ax.set_yscale)):
        if order is not None:
            set_ticks(np.arange(len(order)), [str(v) for v in order])
        elif x.size and x.min() > 0 and x.max() / x.min() >= 50:
            set_scale("log")
    ax.set_xlabel(a)
    ax.set_ylabel(b)
    fig.colorbar(shown, ax=ax, label=_label(metric, ok) + " (mean over seeds)")
    ax.set_title(f"{_label(metric, ok)} over {a} and {b}\n({len(pairs)} drawn pairs)", fontsize=9)
    return _save(fig, figures / f"{metric}_scatter_{a}_{b}.png", plt, dpi=120)


def _heat_map(plt, figures: Path, ok: list[dict], swept: list[str], a: str, b: str, metric: str,
              orders: dict[str, Callable[[Any], Any]]) -> Path:
    rest = [x for x in swept if x not in (a, b)]
    panel_axis = rest[0] if len(rest) >= 1 and len({_key(r[rest[0]]) for r in ok}) <= MAX_PANELS else None
    panels = sorted({_key(r[panel_axis]) for r in ok}, key=orders[panel_axis]) if panel_axis else [None]
    xa, xb = sorted({_key(r[a]) for r in ok}, key=orders[a]), sorted({_key(r[b]) for r in ok}, key=orders[b])
    rate = metric == "success"
    grids = []
    for pv in panels:
        cell: dict = defaultdict(list)
        for r in ok:
            if pv is None or _key(r[panel_axis]) == pv:
                cell[(_key(r[a]), _key(r[b]))].append(_values(r.get(metric)))
        grids.append(np.array([[_stat(cell.get((va, vb), []), rate)[0] for va in xa] for vb in xb]))
    finite = np.concatenate([g[np.isfinite(g)] for g in grids]) if grids else np.array([])
    lo, hi = (0.0, 1.0) if rate else ((finite.min(), finite.max()) if finite.size else (0, 1))
    log = not rate and finite.size and finite.min() > 0 and hi / lo >= 50
    vmin, vmax = (np.log10(lo), np.log10(hi)) if log else (lo, hi)
    fig, axes = plt.subplots(1, len(panels), figsize=(1.2 + 3.6 * len(panels), 3.8), squeeze=False)
    for ax, pv, grid in zip(axes[0], panels, grids):
        shown = np.log10(grid) if log else grid
        im = ax.imshow(shown, origin="lower", aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax)
        for (j, i), v in np.ndenumerate(grid):
            if np.isfinite(v):
                ax.text(i, j, f"{v:.2f}" if rate else f"{v:.3g}", ha="center", va="center", fontsize=7,
                        color="white" if shown[j, i] - vmin < 0.5 * (vmax - vmin) else "black")
        ax.set_xticks(np.arange(len(xa)), [f"{v:.3g}" if isinstance(v, float) else str(v) for v in xa], fontsize=7)
        ax.set_yticks(np.arange(len(xb)), [f"{v:.3g}" if isinstance(v, float) else str(v) for v in xb], fontsize=7)
        ax.set_xlabel(a)
        if ax is axes[0][0]:
            ax.set_ylabel(b)
        if pv is not None:
            ax.set_title(f"{panel_axis} = {pv}", fontsize=9)
    fig.colorbar(im, ax=list(axes[0]), label=("log10 " if log else "") + _label(metric, ok) + " (mean over seeds"
                 + (", other axes" if len(rest) > (1 if panel_axis else 0) else "") + ")")
    path = figures / f"{metric}_heatmap_{a}_{b}.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


#: the metrics a sweep's headline ranks, and which end is the best: True where higher is better
RANKED = {"test_accuracy": True, "accuracy": True, "success": True, "min_margin_v": True, "final_loss": False,
          "final_hinge_loss": False, "test_hinge_loss": False, "test_loss": False, "lowest_loss": False,
          "learning_time_s": False, "learning_time_to_target_s": False, "hardware_time_s": False,
          "network_power_w": False, "edge_power_w": False}


def summarize(out: Path, table: SweepTable | None = None, metric: str | None = None) -> dict:
    """Counts of the sweep in ``out``: points, ok, failed, pending; the failures' error classes; and its headline
    (``headline``) of ``metric`` (default: ``default_metric``)."""
    table = table or read_table(out)
    rows = table.rows
    status = Counter(r["status"] for r in rows)
    errors = Counter(r["error_class"] for r in rows if r["status"] == "failed")
    ok = [r for r in rows if r["status"] == "ok"]
    return {"points": len(rows), "ok": status["ok"], "failed": status["failed"], "pending": status["pending"],
            "errors": dict(errors), "headline": headline(table.axes, ok, metric or default_metric(ok))}


def headline(axes: list[str], ok: list[dict], metric: str) -> dict | None:
    """The best and the worst setting of the swept axes (all but the seed) by ``metric``'s mean over the seeds
    of each, for the summary's last lines: ``{metric, higher_is_better, settings, best, worst}`` (settings: how
    many were ranked), best and worst each ``{values, mean, seeds, tied}`` (tied: the values of the other settings
    of the same mean); None when the metric is no ranked one
    (``RANKED``) or no finished point has it."""
    if metric not in RANKED:
        return None
    swept = [a for a in axes if a != SEED_AXIS]
    means: dict[str, list] = defaultdict(list)
    settings = {}
    for r in ok:
        value = r.get(metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        at = {a: r.get(a) for a in swept}
        key = json.dumps(at, sort_keys=True, default=str)
        means[key].append(float(value))
        settings[key] = at
    if not means:
        return None
    higher = RANKED[metric]
    mean = {k: float(np.mean(v)) for k, v in means.items()}
    ranked = sorted(means, key=mean.get, reverse=higher)
    # settings that score alike are named as well: one of them alone would read as the only best (or worst)
    pick = {end: {"values": settings[k], "mean": mean[k], "seeds": len(means[k]),
                  "tied": [settings[o] for o in ranked if o != k and mean[o] == mean[k]]}
            for end, k in (("best", ranked[0]), ("worst", next(o for o in ranked if mean[o] == mean[ranked[-1]])))}
    return {"metric": metric, "higher_is_better": higher, "settings": len(means), **pick}


@dataclass(frozen=True)
class SweepReport:
    """What ``report_sweep`` wrote: the counts (``summarize``), the files written, the stale figures removed,
    notes on what it did not draw (``plot_sweep``) and the damaged result files it counted as pending (path, what
    is wrong)."""

    counts: dict
    files: list[Path]
    stale: list[Path]
    notes: list[str]
    damaged: list[tuple[Path, str]]


def report_sweep(out: Path, metric: str | None = None, plots: bool = True) -> SweepReport:
    """Write the table and (with ``plots``) the figures of the sweep in ``out``, read once."""
    check_metric(metric)
    table = read_table(out)
    files, stale, notes = write_table(out, table), [], []
    if plots:
        drawn, stale, notes = plot_sweep(out, metric, table)
        files += drawn
    counts = summarize(out, table, metric)
    (Path(out) / "summary.json").write_text(json.dumps(counts, indent=1) + "\n")
    return SweepReport(counts, files, stale, notes, table.damaged)


def has_parquet() -> bool:
    try:
        import pyarrow.parquet  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


__all__ = ["PARQUET_HINT", "has_parquet", "METRICS", "SweepTable", "read_table", "load_table", "write_table",
           "check_metric", "plot_sweep", "default_metric", "summarize", "SweepReport", "report_sweep"]
