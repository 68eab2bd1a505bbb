"""The ``sweep`` and ``sweep-report`` commands: their arguments, their run and what they print (``metamaterial.cli``
parses the command line and dispatches here; the sweep itself is ``execute``, its table and figures ``report``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..errors import ConfigError
from ..sim.registry import backend_names
from ..units import listed
from .store import RESULTS

#: ``--metric`` of ``sweep`` and ``sweep-report`` (``sweep.report.default_metric``)
METRIC_HELP = ("metric of the figures (default: test_accuracy for a classification scored on held-out or validation "
               "points, success for another, else final_loss)")


def add_commands(sub) -> None:
    """The sweep and sweep-report subcommands of the parser's ``sub``."""
    w = sub.add_parser("sweep", help="run a parameter sweep from a YAML spec on Dask (resumable)")
    w.add_argument("spec", help="sweep spec (see configs/sweeps/)")
    w.add_argument("--out", type=Path, help="sweep folder (default: runs/sweeps/<name>); rerunning resumes it")
    w.add_argument("--dry-run", action="store_true", help="validate every point and print them; run nothing")
    w.add_argument("--workers", type=int, default=None,
                   help="local workers: threads of this process, each training in a process of its own (default 2; "
                        "not with --scheduler)")
    w.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on this existing Dask cluster instead")
    w.add_argument("--recycle-after", type=int, metavar="K", default=None,
                   help="restart a worker process after it trained K points (default 200; 0: never)")
    w.add_argument("--retry-failed", action="store_true", help="run the points recorded as failed again")
    w.add_argument("--backend", choices=backend_names(),
                   help="solver backend of every point: --set simulator.backend=NAME on the base config")
    w.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a value of the base config (repeatable)")
    w.add_argument("--metric", help=METRIC_HELP)
    w.add_argument("--no-progress", action="store_true", help="no progress bar")
    w.add_argument("--no-plots", action="store_true", help="skip the figures")
    r = sub.add_parser("sweep-report", help="rewrite a sweep's table and figures from its folder")
    r.add_argument("dir", type=Path, help="the sweep's --out folder")
    r.add_argument("--metric", help=METRIC_HELP)


def run(args: argparse.Namespace, overrides: list[str]) -> int:
    """Run ``sweep`` or ``sweep-report``; ``overrides``: the base config's ``--set`` (and ``--backend``)."""
    from .report import check_metric, report_sweep  # noqa: PLC0415

    check_metric(args.metric)  # before any point runs
    if args.command == "sweep-report":
        report = report_sweep(args.dir, args.metric)
        _warn_damaged(report.damaged)
        print(_sweep_counts(report.counts) + f"\nwrote {', '.join(str(f) for f in report.files)}"
              + _removed(report.stale) + _notes(report.notes))
        return 0
    from . import execute, load_sweep, worker  # noqa: PLC0415

    execute.check_workers(args.workers, args.scheduler)  # before the spec is expanded, which may take a while
    recycle = worker.RECYCLE_AFTER if args.recycle_after is None else args.recycle_after
    if recycle < 0:
        raise ConfigError(f"--recycle-after: must be >= 0 (got {recycle}); give the points a worker trains before "
                          "it is replaced, or 0 for never")
    workers = execute.LOCAL_WORKERS if args.workers is None else args.workers  # what a dry run plans tasks for
    if args.scheduler:
        execute.check_scheduler(args.scheduler)
    spec = load_sweep(args.spec, overrides)
    args.out = args.out or Path("runs") / "sweeps" / spec.name
    execute.check_folder(spec, args.out)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if not args.scheduler and workers > cores:
        print(f"metamaterial: warning: --workers {workers} is more than the {cores} cores of this machine: the "
              "workers take turns on them, and each point takes longer", file=sys.stderr)
    earlier = execute.earlier_results(spec, args.out)  # the folder's records read once, for all that follows
    execute.check_results(spec, args.out, earlier)
    for line in _outdated(earlier):
        print(f"sweep: {line}", file=sys.stderr)
    if args.dry_run:
        print(_sweep_points(spec, args.out, workers, earlier))
        return 0
    bar = _SweepProgress(not args.no_progress)
    args.sweep_started = True  # an interrupt from here keeps the points finished (``_resume_hint``)
    run = execute.run_sweep(spec, args.out, workers=args.workers, scheduler=args.scheduler, recycle_after=recycle,
                            retry_failed=args.retry_failed, on_start=bar.start, on_progress=bar.update,
                            on_wait=bar.note, earlier=earlier, on_note=bar.note)
    bar.close()
    report = report_sweep(args.out, args.metric, plots=not args.no_plots)
    _warn_damaged(report.damaged)
    counts = report.counts
    rate = f", {run.ok + run.failed} points in {run.wall_s:.1f} s ({(run.ok + run.failed) / run.wall_s:.2f}/s)" \
        if run.wall_s > 0 and run.ok + run.failed else ""
    print(f"sweep {spec.name}: {run.total} points, {run.skipped} already done{rate}\n" + _sweep_counts(counts)
          + f"\nsweep folder: {args.out}/ ({', '.join(_written(args.out))})" + _removed(report.stale)
          + _notes(report.notes))
    if run.pending:  # the run ended, yet points it ran have no result here
        print(f"metamaterial: {run.pending} point(s) run are still pending: {run.why_pending}", file=sys.stderr)
    return 1 if counts["failed"] or run.pending else 0


def _written(out: Path) -> list[str]:
    """What the sweep's folder holds of its table, records, log, the netlists ngspice failed on and figures (no
    figures/ with --no-plots, or when nothing was drawn)."""
    names = ["results.csv", "results.parquet", "results/", "events.jsonl", "failed/"]
    return [n for n in names if (out / n).exists()] + (["figures/"] if any((out / "figures").glob("*.png")) else [])


def finished_points(out: Path) -> int:
    """How many points have a result (trained or failed) in the sweep folder ``out``, this run's and earlier ones'."""
    folder = out / RESULTS
    return sum(1 for _ in folder.glob("*.json")) if folder.is_dir() else 0


def training_kept(out: Path) -> tuple[int, int, list[int]]:
    """(how many points had started, how many of them kept a checkpoint past epoch 0, those epochs) of the tasks in
    training in the sweep folder ``out`` (``store.partial_tasks``): the second is the work that the same command
    resumes rather than trains again."""
    from ..runfiles import checkpoint_epoch  # noqa: PLC0415
    from .store import partial_path, partial_tasks  # noqa: PLC0415

    started, points, epochs = 0, 0, []
    for task, keys in partial_tasks(out):
        if keys is None:  # a folder left by a kill as it was made: no point of it known
            continue
        started += len(keys)
        epoch = checkpoint_epoch(partial_path(out, task)) or 0  # none yet, or a damaged one: nothing kept
        if epoch > 0:
            points += len(keys)
            epochs.append(epoch)
    return started, points, sorted(epochs)


def _removed(stale: list[Path]) -> str:
    """The line naming figures of an axis no longer swept or a metric no longer in the table (``plot_sweep``)."""
    return f"\nremoved stale figure(s): {listed((f.name for f in stale), 8)}" if stale else ""


def _warn_damaged(damaged: list[tuple[Path, str]]) -> None:
    """One line on the result files of a sweep that cannot be read: their points count as pending."""
    if damaged:
        path, problem = damaged[0]
        others = f" (and {len(damaged) - 1} other result file(s))" if len(damaged) > 1 else ""
        print(f"metamaterial: warning: {path}: damaged ({problem}){others}: its point counts as pending, and the "
              "sweep's command runs it again", file=sys.stderr)


def _notes(notes: list[str]) -> str:
    """A line per note of a sweep's report (a metric it did not draw, and why)."""
    return "".join(f"\nnote: {n}" for n in notes)


def _sweep_counts(c: dict) -> str:
    from .report import PARQUET_HINT, has_parquet  # noqa: PLC0415

    hint = "" if has_parquet() else f"\n{PARQUET_HINT}"
    errors = "" if not c["errors"] else " (" + ", ".join(f"{k} x{v}" for k, v in c["errors"].items()) + ")"
    retry = ("\n(which points failed, and why: results.csv's status and error columns; a failed point stays failed "
             "when the sweep runs again: --retry-failed runs it again)") if c["failed"] else ""
    return (f"{c['ok']}/{c['points']} ok, {c['failed']} failed{errors}, {c['pending']} pending{retry}{hint}"
            + _headline(c.get("headline")))


def _headline(h: dict | None) -> str:
    """The best and worst settings by the sweep's metric (``report.headline``), or nothing."""
    if h is None:
        return ""

    def named(values: dict) -> str:
        return ", ".join(f"{axis}={value}" for axis, value in values.items()) or "every point"

    def at(end: dict) -> str:
        tied = end.get("tied", [])
        also = ("" if not tied else f"; tied with {len(tied)} other settings" if len(tied) > 3
                else "; tied with " + " and ".join(named(v) for v in tied))
        seeds = f"{end['seeds']} seed{'s' if end['seeds'] > 1 else ''}"
        return f"{end['mean']:.4g} at {named(end['values'])} ({seeds}{also})"

    if h["settings"] == 1:
        return f"\n{h['metric']} (mean over seeds): {at(h['best'])}"
    if h["best"]["mean"] == h["worst"]["mean"]:  # no best: "best 0 at a; worst 0 at b" read as a ranking
        return f"\n{h['metric']} (mean over seeds): {h['best']['mean']:.4g} at each of the {h['settings']} settings"
    word = ("highest", "lowest") if h["higher_is_better"] else ("lowest", "highest")
    return f"\n{h['metric']} (mean over seeds): best ({word[0]}) {at(h['best'])}; worst {at(h['worst'])}"


def _outdated(earlier) -> list[str]:
    """A line per revision of the dynamics that made some of the folder's results outdated for their points, one
    for the results trained on other content of their points' data files, and one for the results reported against
    another target_loss (``execute.earlier_results``)."""
    lines = [f"{n} point(s) have a result trained before revision {r.number} of the dynamics ({r.date}: {r.what}), "
             "which changed how their config trains: they run again" for r, n in earlier.outdated.items()]
    if earlier.stale_data:
        lines.append(f"{earlier.stale_data} point(s) have a result trained on other content of their data file (or "
                     "before its content was recorded with the result): they run again")
    if earlier.other_target:
        lines.append(f"{earlier.other_target} point(s) have a result whose learning time to the target was measured "
                     "against another target_loss (or none, or before the target was recorded with the result): they "
                     "run again")
    return lines


def _sweep_points(spec, out: Path, workers: int, earlier) -> str:
    from .execute import plan_tasks  # noqa: PLC0415
    from .store import is_done  # noqa: PLC0415

    adopted = set(earlier.adoptable.values())
    done = {p.key for p in spec.points if is_done(out, p.key) or p.key in adopted}
    # the tasks the run would make of the points to do, as it makes them: which points train together
    tasks = plan_tasks([p for p in spec.points if p.key not in done], workers)
    task_of = {p.key: str(i) for i, t in enumerate(tasks, 1) for p in t}
    lines = [f"sweep {spec.name}: {len(spec.points)} points, {len(done)} already done in {out}/; the "
             f"{len(spec.points) - len(done)} to run in {len(tasks)} task(s) (largest ensemble "
             f"{max((len(t) for t in tasks), default=0)}; the points of a task train together)",
             "\t".join(["index", "key", "task", *spec.axes])]
    lines += ["\t".join([str(p.index), p.key, task_of.get(p.key, "done"),
                         *(json.dumps(p.values[a]) for a in spec.axes)]) for p in spec.points]
    return "\n".join(lines)


class _SweepProgress:
    """A tqdm bar with ETA on a terminal; elsewhere a line every tenth of the points."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.bar, self.shown = enabled, None, 0

    def start(self, total: int, skipped: int) -> None:
        if skipped:
            print(f"sweep: {skipped} point(s) already done, {total} to run", file=sys.stderr)
        if self.enabled and sys.stderr.isatty() and total:
            from tqdm import tqdm  # noqa: PLC0415
            self.bar = tqdm(total=total, desc="sweep", unit="point", dynamic_ncols=True, mininterval=0.5)

    def update(self, done: int, total: int, failed: int) -> None:
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix(failed=failed)
        elif self.enabled and (done == total or done * 10 // total > self.shown * 10 // total):
            self.shown = done
            print(f"sweep: {done}/{total} points ({failed} failed)", file=sys.stderr, flush=True)

    def note(self, line: str) -> None:
        """A line about the run (a cluster left without workers), above the bar on a terminal."""
        if self.bar is not None:
            self.bar.write(f"sweep: {line}", file=sys.stderr)
        else:
            print(f"sweep: {line}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
