"""PNG figures of a run directory, drawn from its files alone (config.yaml, summary.json, metrics.csv, gates.csv,
outputs.csv; an ensemble's ensemble.csv and checkpoint.npz), so ``metamaterial plot RUN_DIR`` redraws exactly what
training drew. The last stage of the flow: it reads results and never simulates.

A single run gets loss.png (the objective trained: the MSE to the targets, or the hinge loss with the smallest
margin, the quantity the hinge acts on), for a classification accuracy.png (training and held-out accuracy per
epoch), gates.png (controls over time; of many edges their spread and the five that moved most), outputs.png
(outputs against targets, labelled with the task's column names; of a classifier of many classes or points, each
point's class margin as a histogram; of one point and several outputs, each output beside its target by name) and
for a classification confusion.png (true against predicted class, of the held-out points if there are any); an
ensemble gets loss.png (the same objective's median and spread over replicas), and for a classification
accuracy.png, success.png (fraction of replicas solved, per epoch) and margins.png (histogram of the final smallest
margins).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import yaml

from .devices import NmosParams, PotentiometerParams, ResistorParams
from .errors import CheckpointError
from .learning.rules import HINGE_LOSSES
from .learning.trainer import SUCCESS_MARGIN_V
from .runfiles import OUTPUTS_CSV, damaged, load_checkpoint, writing
from .tasks import scored_on

CONTROL_LABELS = {d.kind: d.control_label for d in (NmosParams, ResistorParams, PotentiometerParams)}
MANY_TICKS = 20  # at most this many data points get one tick each
#: gates.png draws every edge's line up to this many edges; beyond, the spread over edges and the edges that moved
#: most (1,247 lines, the digits', show none of them)
MANY_EDGES = 64
#: outputs.png of a classifier with more classes or points than these: each point's class margin as a histogram
#: (the digits' 10 outputs of 1,437 points as points are a cloud)
MANY_CLASSES, MANY_POINTS = 4, 200


def _pyplot():
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    return plt


def plot_run_dir(run_dir: str | Path) -> list[Path]:
    """Draw every figure of the run in ``run_dir`` from its files; return the paths written."""
    run_dir = Path(run_dir)
    for name in ("config.yaml", "summary.json"):
        if not (run_dir / name).is_file():
            raise CheckpointError(f"{run_dir}: no {name} (not a finished run directory); give a directory written "
                                  "by `metamaterial train` that ran to its end")
    cfg = _saved_config(run_dir / "config.yaml")
    summary = _summary(run_dir / "summary.json")
    plt = _pyplot()
    if "seeds" in summary:
        return _plot_ensemble(run_dir, cfg, summary, plt)
    classified = "confusion" in summary
    return [_loss_figure(run_dir, cfg, scored_on(summary), plt),
            *([_accuracy_figure(run_dir, cfg, scored_on(summary), plt)] if classified else []),
            _gates_figure(run_dir, cfg, plt), _outputs_figure(run_dir, summary, plt),
            *([_confusion_figure(run_dir, summary, plt)] if classified else [])]


def _saved_config(path: Path) -> SimpleNamespace:
    """What the figures need of a run's resolved config.yaml (read as saved: its data files may be gone)."""
    try:
        raw = yaml.safe_load(_text(path))
    except yaml.YAMLError as err:
        raise damaged(path, f"not valid YAML ({str(err).splitlines()[0]})") from err
    if not isinstance(raw, dict):
        raise damaged(path, "the file is empty" if raw is None else
                      f"a YAML {type(raw).__name__}, not a mapping of sections")
    try:
        return SimpleNamespace(name=raw["name"], device_kind=raw["device"]["kind"],
                               hinge=raw["learning"]["loss"] in HINGE_LOSSES, margin=raw["learning"]["margin"])
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: not the config.yaml of a run (no {err}); give a directory written by "
                              "`metamaterial train`") from err


def _text(path: Path) -> str:
    """The text of one of the run directory's files; one missing or unreadable is a damaged run directory."""
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError as err:
        raise damaged(path, "missing") from err
    except OSError as err:
        raise damaged(path, f"cannot be read ({err.strerror})") from err
    except UnicodeDecodeError as err:
        raise damaged(path, "not a text (UTF-8) file") from err


def _summary(path: Path) -> dict:
    text = _text(path)
    try:
        summary = json.loads(text)
    except json.JSONDecodeError as err:
        raise damaged(path, f"not valid JSON ({err.msg} at line {err.lineno})") from err
    if not isinstance(summary, dict):
        raise damaged(path, f"a JSON {type(summary).__name__}, not a mapping")
    need = ("name", "task", "success_count", "epochs") if "seeds" in summary else \
        ("name", "task", "backend", "outputs_v", "targets_v")  # what every figure of the run reads
    absent = [k for k in need if k not in summary]
    if absent:
        raise damaged(path, f"no {', '.join(absent)}")
    return summary


@dataclass(frozen=True)
class _Table:
    """One of the run directory's CSV files: its header and its rows of text."""

    path: Path
    header: list[str]
    rows: list[list[str]]

    def column(self, key: str) -> np.ndarray:
        """The numbers of column ``key`` (an empty cell: NaN)."""
        if key not in self.header:
            raise damaged(self.path, f"no column {key!r}")
        j = self.header.index(key)
        try:
            return np.array([float(r[j]) if r[j] != "" else np.nan for r in self.rows])
        except (ValueError, IndexError) as err:
            raise damaged(self.path, f"column {key!r} holds a row that is not a number") from err


def _read_csv(path: Path) -> _Table:
    try:
        lines = [r for r in csv.reader(io.StringIO(_text(path), newline="")) if r]
    except csv.Error as err:
        raise damaged(path, f"not a CSV file ({err})") from err
    if len(lines) < 2:
        raise damaged(path, "empty" if not lines else "a header and no rows")
    return _Table(path, lines[0], lines[1:])


def _loss_title(cfg) -> str:
    if cfg.hinge:
        return f"{cfg.name}: trained on the hinge loss (margin {cfg.margin * 1e3:g} mV)"
    return f"{cfg.name}: trained on the MSE loss"


def _axes(plt, xlabel: str, ylabel: str, title: str):
    """(figure, axes) of a one-panel figure, labelled and gridded."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    return fig, ax


def _loss_figure(run_dir: Path, cfg, scored: str, plt) -> Path:
    table = _read_csv(run_dir / "metrics.csv")
    epochs = table.column("epoch")
    fig, axes = plt.subplots(2 if cfg.hinge else 1, 1, figsize=(5, 5.5 if cfg.hinge else 3.5), sharex=True,
                             squeeze=False)
    ax = axes[0, 0]
    # under a hinge the objective trained is the hinge loss (metrics.csv has it since 2026-12-01), else the MSE
    # (in mV on a linear axis: it reaches 0 once every point is past the margin)
    key = "hinge_loss" if cfg.hinge and "hinge_loss" in table.header else "loss"
    draw = ax.plot if key == "hinge_loss" else ax.semilogy
    scaled = (lambda x: 1e3 * x) if key == "hinge_loss" else (lambda x: np.maximum(x, 1e-16))
    draw(epochs, scaled(table.column(key)), lw=1.5, label="training points")
    if "test_" + key in table.header:
        draw(epochs, scaled(table.column("test_" + key)), lw=1.2, label=scored)
        ax.legend(fontsize=7)
    ax.set_ylabel({"hinge_loss": "hinge loss (mV)", "loss": "MSE to the targets (V$^2$)" if cfg.hinge else
                   "MSE loss (V$^2$)"}[key])
    ax.set_title(_loss_title(cfg), fontsize=9)
    ax.grid(alpha=0.3)
    if cfg.hinge:
        ax = axes[1, 0]
        ax.plot(epochs, 1e3 * table.column("min_margin"), lw=1.5, label="smallest margin")
        ax.axhline(1e3 * cfg.margin, color="gray", ls="--", lw=1, label="hinge margin (updates stop)")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_ylabel("smallest margin (mV)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("epoch")
    return _save(fig, run_dir / "loss.png", plt)


def _accuracy_figure(run_dir: Path, cfg, scored: str, plt) -> Path:
    """accuracy.png of a classification: the training points' accuracy per evaluated epoch, and the held-out (or
    validation) points' where the run has them (metrics.csv)."""
    table = _read_csv(run_dir / "metrics.csv")
    epochs = table.column("epoch")
    fig, ax = _axes(plt, "epoch", "accuracy (%)", f"{cfg.name}: accuracy")
    for key, label in (("accuracy", "training points"), ("test_accuracy", scored)):
        if key in table.header:
            values = 100 * table.column(key)
            ax.plot(epochs, values, lw=1.5, label=f"{label}: {values[-1]:.1f}% at the end")
    ax.set_ylim(-2, 102)
    ax.legend(fontsize=7)
    return _save(fig, run_dir / "accuracy.png", plt)


def _gates_figure(run_dir: Path, cfg, plt) -> Path:
    path = run_dir / "gates.csv"
    lines = [line for line in _text(path).splitlines() if line.strip()]
    rows = lines[1:]
    try:
        traj = np.loadtxt(rows, delimiter=",", ndmin=2) if rows else np.zeros((0, 0))
    except ValueError as err:
        raise damaged(path, "a row that is not comma-separated numbers") from err
    if traj.shape[0] == 0 or traj.shape[1] < 2:
        raise damaged(path, "no rows of an epoch and its gates")
    if traj.shape[1] != len(lines[0].split(",")):  # a file cut short in its last (or only) row
        raise damaged(path, f"rows of {traj.shape[1]} columns under a header of {len(lines[0].split(','))}")
    epochs, gates = traj[:, 0], traj[:, 1:]
    n = gates.shape[1]
    fig, ax = _axes(plt, "epoch", CONTROL_LABELS[cfg.device_kind], f"{cfg.name}: {n} edges")
    if n <= MANY_EDGES:
        ax.plot(epochs, gates, lw=0.8)
    else:
        ax.fill_between(epochs, gates.min(axis=1), gates.max(axis=1), color="C0", alpha=0.15, label="all edges")
        ax.fill_between(epochs, *np.quantile(gates, [0.1, 0.9], axis=1), color="C0", alpha=0.3,
                        label="10-90% of edges")
        ax.plot(epochs, np.median(gates, axis=1), color="C0", lw=1.5, label="median")
        moved = np.argsort(-np.abs(gates[-1] - gates[0]))[:5]
        for k, e in enumerate(moved):
            ax.plot(epochs, gates[:, e], lw=0.8, color=f"C{k + 1}", label="the 5 edges that moved most" if k == 0
                    else None)
        ax.legend(fontsize=7)
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(fig, run_dir / "gates.png", plt)


def _outputs_figure(run_dir: Path, summary: dict, plt) -> Path:
    outputs, targets = np.array(summary["outputs_v"], float), np.array(summary["targets_v"], float)
    if "confusion" in summary and outputs.shape[1] > 1 and (outputs.shape[1] > MANY_CLASSES or
                                                            len(outputs) > MANY_POINTS):
        return _margins_figure(run_dir, summary, outputs, targets, plt)
    table = _read_csv(run_dir / OUTPUTS_CSV)
    if len(table.rows) != len(outputs):  # a file cut short, or another run's
        raise damaged(table.path, f"{len(table.rows)} rows of points, where summary.json has {len(outputs)}")
    if any(len(r) != len(table.header) for r in table.rows):
        raise damaged(table.path, f"a row not of the header's {len(table.header)} columns")
    outs = [h[len("output "):] for h in table.header if h.startswith("output ")]
    if not outs or f"target {outs[0]}" not in table.header:
        raise damaged(table.path, "no target and output columns")
    if len(table.rows) == 1 and len(outs) > 1:
        return _one_point_figure(run_dir, summary, table, outs, plt)
    ins = table.header[1:table.header.index(f"target {outs[0]}")]
    one = len(ins) == 1  # against the input voltage (a line through the points), else against the point index
    x = table.column(ins[0]) if one else table.column("point").astype(int)
    order = np.argsort(x) if one else slice(None)
    named = ins[0] if ins[0].startswith("V(") else f"{ins[0]} (V)"  # V(feature): volts, scaled from the data's units
    xlabel = named if one else "data point" + (f" ({', '.join(ins)})" if len(ins) <= 3 else "")
    fig, ax = _axes(plt, xlabel, "output (V)",
                    f"{summary['name']}: outputs vs targets ({summary['task']}, {summary['backend']})")
    for name in outs:
        line, = ax.plot(x[order], table.column(f"target {name}")[order], "o", mfc="none",
                        label=f"target {name}")
        ax.plot(x[order], table.column(f"output {name}")[order], "x-" if one else "x",
                color=line.get_color(), label=f"output {name}")
    if not one:
        levels = np.unique(table.column(f"target {outs[0]}"))
        if "class" in table.header and len(outs) == 1 and len(levels) == 2:  # read by the nearest of two levels
            ax.axhline(levels.mean(), color="gray", ls="--", lw=1, label="threshold")
        if len(x) <= MANY_TICKS:
            ax.set_xticks(x)
        else:
            from matplotlib.ticker import MaxNLocator  # noqa: PLC0415
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(outs) <= 4:
        ax.legend(fontsize=7)
    else:  # one entry per output (its colour) and one per marker, beside the axes: not 2 x outputs entries on them
        from matplotlib.lines import Line2D  # noqa: PLC0415

        handles = [Line2D([], [], color=line.get_color(), lw=2, label=name)
                   for line, name in zip(ax.get_lines()[::2], outs)]
        handles += [Line2D([], [], color="k", marker="o", mfc="none", ls="none", label="target"),
                    Line2D([], [], color="k", marker="x", ls="none", label="output")]
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.set_figwidth(fig.get_figwidth() + 1.2)
    return _save(fig, run_dir / "outputs.png", plt)


def _one_point_figure(run_dir: Path, summary: dict, table: _Table, outs: list[str], plt) -> Path:
    """outputs.png of one data point and several outputs (allostery): each output beside its target, by name, and
    the error in mV written over it (against the input voltage they would all stand on one vertical line)."""
    target = np.array([table.column(f"target {n}")[0] for n in outs])
    output = np.array([table.column(f"output {n}")[0] for n in outs])
    fig, ax = _axes(plt, "output node", "voltage (V)",
                    f"{summary['name']}: outputs vs targets ({summary['task']}, {summary['backend']})")
    x = np.arange(len(outs))
    ax.plot(x, target, "o", mfc="none", ms=9, label="target")
    ax.plot(x, output, "x", ms=9, label="output")
    for i in x:
        ax.annotate(f"{1e3 * (output[i] - target[i]):+.2g} mV", (i, max(output[i], target[i])),
                    textcoords="offset points", xytext=(0, 8), ha="center", fontsize=7)
    ax.set_xticks(x, outs)
    ax.margins(y=0.15)
    ax.legend(fontsize=7)
    return _save(fig, run_dir / "outputs.png", plt)


def _margins_figure(run_dir: Path, summary: dict, outputs: np.ndarray, targets: np.ndarray, plt) -> Path:
    """outputs.png of a classifier of many classes or points (one output per class, the largest predicts): each
    training point's class margin, its own class's output less the best other's (negative: misclassified), as a
    histogram, with 0 and the hinge margin marked."""
    rows = np.arange(len(outputs))
    true = targets.argmax(axis=1)
    rivals = np.where(np.arange(outputs.shape[1]) == true[:, None], -np.inf, outputs).max(axis=1)
    margins = 1e3 * (outputs[rows, true] - rivals)
    wrong = int((margins < 0).sum())
    fig, ax = _axes(plt, "class margin: own class's output less the best other's (mV)", "training points",
                    f"{summary['name']}: {len(margins)} training points, {wrong} below 0 (misclassified)")
    ax.hist(margins, bins=60, color="C0", alpha=0.8)
    ax.axvline(0, color="k", lw=1, label="0: misclassified below")
    if summary.get("hinge_margin_v") is not None:
        ax.axvline(1e3 * summary["hinge_margin_v"], color="gray", ls="--", lw=1,
                   label=f"hinge margin {1e3 * summary['hinge_margin_v']:g} mV")
    ax.legend(fontsize=7)
    return _save(fig, run_dir / "outputs.png", plt)


def _confusion_figure(run_dir: Path, summary: dict, plt) -> Path:
    held_out = "test_confusion" in summary
    counts = np.array(summary["test_confusion" if held_out else "confusion"])
    n = len(counts)
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    im = ax.imshow(counts, cmap="Blues")
    for t in range(n):
        for p in range(n):
            if counts[t, p]:
                ax.text(p, t, str(counts[t, p]), ha="center", va="center", fontsize=7 if n > 5 else 9,
                        color="white" if counts[t, p] > counts.max() / 2 else "black")
    names = summary.get("class_names") or [str(k) for k in range(n)]  # a run saved before the names were
    ax.set_xticks(range(n), names, rotation=30 if max(map(len, names)) > 3 else 0,
                  ha="right" if max(map(len, names)) > 3 else "center")
    ax.set_yticks(range(n), names)
    ax.set(xlabel="predicted class", ylabel="true class")
    which, acc = ((scored_on(summary), summary.get("test_accuracy")) if held_out else
                  ("training", summary.get("accuracy")))
    ax.set_title(f"{summary['name']}: {counts.sum()} {which} points, accuracy {acc:.4f}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return _save(fig, run_dir / "confusion.png", plt)


def _plot_ensemble(run_dir: Path, cfg, summary: dict, plt) -> list[Path]:
    checkpoint = load_checkpoint(run_dir)
    state, seeds = checkpoint.state, checkpoint.seeds
    epochs = np.array([h["epoch"] for h in state.history])
    # the objective trained, as a single run's loss.png draws it: the hinge loss (mV, linear) under a hinge
    hinge = cfg.hinge and state.history[-1].get("hinge_loss") is not None
    key, scale = ("hinge_loss", 1e3) if hinge else ("loss", 1.0)
    loss = scale * np.array([np.asarray(h[key], float) for h in state.history])  # [T, R]
    n = len(seeds)
    paths = []
    fig, ax = _axes(plt, "epoch", "hinge loss (mV)" if hinge else "MSE to the targets (V$^2$)" if cfg.hinge else
                    "MSE loss (V$^2$)", f"{_loss_title(cfg)}, {n} seeds")
    ax.fill_between(epochs, np.quantile(loss, 0.1, axis=1), np.quantile(loss, 0.9, axis=1), alpha=0.3,
                    label="10-90% of replicas")
    (ax.plot if hinge else ax.semilogy)(epochs, np.median(loss, axis=1), lw=1.5, label="median")
    ax.legend(fontsize=7)
    paths.append(_save(fig, run_dir / "loss.png", plt))
    if state.history[-1].get("min_margin") is None:
        return paths
    fig, ax = _axes(plt, "epoch", "accuracy (%)", f"{cfg.name}: accuracy of {n} seeds")
    for key, label in (("accuracy", "training"), ("test_accuracy", scored_on(summary))):
        if state.history[-1].get(key) is None:
            continue
        acc = 100 * np.array([np.asarray(h[key], float) for h in state.history])  # [T, R]
        line, = ax.plot(epochs, np.median(acc, axis=1), lw=1.5, label=f"{label}: median")
        ax.fill_between(epochs, np.quantile(acc, 0.1, axis=1), np.quantile(acc, 0.9, axis=1), alpha=0.25,
                        color=line.get_color(), label=f"{label}: 10-90% of replicas")
    ax.legend(fontsize=7)
    paths.append(_save(fig, run_dir / "accuracy.png", plt))
    margins = np.array([np.asarray(h["min_margin"], float) for h in state.history])  # [T, R]
    fig, ax = _axes(plt, "epoch", f"replicas solved (%)\n(every point right by >= {SUCCESS_MARGIN_V * 1e3:g} mV)",
                    f"{cfg.name}: {summary['success_count']}/{n} seeds solved at epoch {summary['epochs']}")
    ax.plot(epochs, 100 * np.mean(margins >= SUCCESS_MARGIN_V, axis=1), lw=1.5)
    ax.set_ylim(-2, 102)
    paths.append(_save(fig, run_dir / "success.png", plt))
    fig, ax = _axes(plt, "final smallest margin (mV)", "replicas", f"{cfg.name}: smallest margin of each of {n} seeds")
    ax.hist(1e3 * margins[-1], bins=max(10, min(50, n // 2)), color="C0", alpha=0.8)
    ax.axvline(1e3 * SUCCESS_MARGIN_V, color="k", ls="--", lw=1, label=f"{SUCCESS_MARGIN_V * 1e3:g} mV: solved")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=7)
    paths.append(_save(fig, run_dir / "margins.png", plt))
    return paths


def _save(fig, path: Path, plt, dpi: int = 110) -> Path:
    fig.tight_layout()
    try:
        with writing(path):  # a full disk names the figure
            fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
    return path
