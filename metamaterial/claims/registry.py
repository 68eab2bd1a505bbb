"""The claims, listed explicitly, and ``reproduce``: run them into one folder, keep each outcome there, write
REPORT.md over every claim the folder holds.

Each claim's outcome is saved as ``<key>.result.json``: a verdict (``ClaimResult``) or, when the experiment
crashed, a ``ClaimError`` with its message (state "error", never a verdict), with how it was made (``quick``, the
backend, the revision of the dynamics). Running again into the same folder keeps the claims already finished with
the same ``quick`` and backend and runs the others; ``force`` runs the named claims again from scratch.

A full result takes minutes to a quarter of an hour (damage, energy), so without ``force`` only a full run on its
own backend replaces it: a quick run there keeps it (a full verdict answers a quick request better, and running the
quick one would overwrite the full one's figures and data, which share their names), and a run on another backend
(or a quick run over a full result made before a revision of the dynamics, which cannot be kept) is refused before
anything runs. A quick result is cheap: any run replaces it and says so.
"""

from __future__ import annotations

import json
import shutil
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import machine
from ..errors import ConfigError, MetamaterialError, caused_by_interrupt
from ..revisions import CURRENT, claim_changed_since
from ..runfiles import check_writable, json_text
from . import damage, desync, digits, energy, imperfection, learning_time, modes, xor
from .base import ClaimResult, Context
from .report import write_report

CLAIMS = {m.KEY: m for m in (xor, modes, damage, desync, learning_time, imperfection, energy, digits)}
RESULT_SUFFIX = ".result.json"


@dataclass
class ClaimError:
    """A claim whose experiment crashed: no verdict, the error's first line and where its traceback is."""

    key: str
    title: str
    paper: str
    reason: str
    measured: dict = field(default_factory=dict)
    verdict: str = "error"
    figures: list[str] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)
    seeds: str = ""


def reproduce(keys: list[str] | None, out: Path, quick: bool = False, backend: str = "native",
              progress: bool = False, force: bool = False, log=None) -> tuple[list, dict[str, dict], Path, list[str]]:
    """Run the named claims (all when empty) into ``out``; returns the outcome of every claim the folder holds
    (``ClaimResult`` or ``ClaimError``, in ``CLAIMS`` order), how each ran (by key: {"quick", "backend",
    "outdated"}, as REPORT.md shows it: ``report.run_cell``), the report path and the named keys that crashed.

    A claim that raises is recorded as a ``ClaimError`` with its message and the others still run. A claim
    already finished in ``out`` (same ``quick`` and ``backend``, or a full result when ``quick``) is kept unless
    ``force``; a full result this run could neither keep nor replace (module docstring) is a ``ConfigError`` before
    anything runs.
    """
    keys = keys or list(CLAIMS)
    unknown = [k for k in keys if k not in CLAIMS]
    if unknown:
        raise ConfigError(f"reproduce: unknown claim{'s' if len(unknown) > 1 else ''} (got {', '.join(unknown)}); "
                          f"choose from {', '.join(sorted(CLAIMS))}")
    log = log or (lambda line: None)  # a library call prints nothing unless asked: the CLI passes print
    ctx = Context(Path(out), quick=quick, backend=backend, progress=progress)
    saved = {key: _load_outcome(ctx.out, key) for key in keys}
    if not force:
        _refuse_replacing_full_results(ctx.out, saved, quick, backend)
    ctx.out.mkdir(parents=True, exist_ok=True)
    check_writable(ctx.out, "choose another --out")  # before the claims run, not once the first has its result
    crashed = []
    for i, key in enumerate(keys, 1):
        module = CLAIMS[key]
        made, outcome = saved[key] or (None, None)
        change = None if made is None else claim_changed_since(key, made["revision"])
        finished = outcome is not None and outcome.verdict != "error"
        answers = finished and change is None and made["backend"] == backend and (made["quick"] == quick or quick)
        if answers and not force:  # the same settings, or a full result where a quick one was asked for
            log(f"[{i}/{len(keys)}] {module.TITLE}: " + (
                f"kept from an earlier run ({outcome.verdict}; --force reruns it)" if made["quick"] == quick else
                f"kept the full result of an earlier run ({outcome.verdict}); the quick one was not run (a quick run "
                "never replaces a full one; --force runs it quick in its place)"))
            continue
        again = "" if change is None or force else f" (run before revision {change.number} of the dynamics, " \
            f"{change.date}: {change.what}; again)"
        if finished and (made["quick"], made["backend"]) != (quick, backend):
            again += f" (replaces its {_how(made)})"
        log(f"[{i}/{len(keys)}] {module.TITLE}{again} ...")
        _clear_claim(ctx.out, key)
        t = time.perf_counter()
        started_on = machine.describe()  # the load before the claim's own
        try:
            result = module.run(ctx)
        except (MetamaterialError, ArithmeticError, ValueError, RuntimeError, OSError, ImportError) as err:
            if caused_by_interrupt(err):  # Ctrl-C, not a crash: no verdict, no error recorded
                raise KeyboardInterrupt from err
            crashed.append(key)
            (ctx.out / f"{key}_error.txt").write_text(traceback.format_exc())
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            result = ClaimError(key, module.TITLE, module.PAPER, f"the experiment failed: {first} "
                                                                 f"(see {key}_error.txt)")
        result.measured["run_s"] = round(time.perf_counter() - t, 1)
        result.measured["finished"] = time.strftime("%Y-%m-%d %H:%M")
        result.measured["machine"] = {**started_on, "ngspice": machine.describe()["ngspice"]}  # loaded by now if used
        _save_outcome(ctx.out, result, quick, backend)
        log(f"      {result.verdict}: {result.reason} ({result.measured['run_s']:.0f} s)")
    outcomes = [s for s in (_load_outcome(ctx.out, k) for k in CLAIMS) if s is not None]
    runs = {r.key: {"quick": made["quick"], "backend": made["backend"],
                    "outdated": _outdated(r.key, made["revision"])} for made, r in outcomes}
    report = write_report(ctx.out, [r for _, r in outcomes], runs,
                          sum(r.measured.get("run_s", 0.0) for _, r in outcomes), list(CLAIMS.values()))
    return [r for _, r in outcomes], runs, report, crashed


def _how(made: dict) -> str:
    """How a saved outcome was made, in a few words: "quick result on native", "full result on ngspice"."""
    return f"{'quick' if made['quick'] else 'full'} result on {made['backend']}"


def _outdated(key: str, revision: int) -> str:
    """Why a saved outcome of claim ``key`` made under ``revision`` is outdated ("" when it is not): a folder keeps
    the claims not named in a later run, and REPORT.md must not show such a result as current."""
    change = claim_changed_since(key, revision)
    return "" if change is None else f"made before revision {change.number} of the dynamics ({change.date}: " \
                                      f"{change.what})"


def _refuse_replacing_full_results(out: Path, saved: dict, quick: bool, backend: str) -> None:
    """Raise ``ConfigError`` (one line, before anything runs) naming every full result in ``out`` that this run
    would replace without ``force``: one made on another backend, or one a quick run cannot keep because a revision
    of the dynamics since outdated it. ``saved``: key -> ``_load_outcome``."""
    blocked = []
    for key, entry in saved.items():
        if entry is None or entry[0]["quick"] or entry[1].verdict == "error":
            continue
        made = entry[0]
        change = claim_changed_since(key, made["revision"])
        if made["backend"] != backend:
            blocked.append(f"{key} ({_how(made)})")
        elif quick and change is not None:
            blocked.append(f"{key} ({_how(made)}, made before revision {change.number} of the dynamics: a full run "
                           "renews it)")
    if blocked:
        raise ConfigError(f"reproduce: {out} holds full results that this {'quick' if quick else 'full'} run on "
                          f"{backend} would replace: {', '.join(blocked)}; give --force to replace them, or another "
                          "--out to keep them")


def _clear_claim(out: Path, key: str) -> None:
    """Remove what an earlier attempt of claim ``key`` left that would stop it now: its outcome, its error file
    and its run directories (``<key>_*/`` holding a checkpoint, which a new run refuses to overwrite)."""
    for path in (out / f"{key}{RESULT_SUFFIX}", out / f"{key}_error.txt"):
        path.unlink(missing_ok=True)
    for path in out.glob(f"{key}_*"):
        if path.is_dir() and (path / "checkpoint.npz").exists():
            shutil.rmtree(path)


def _save_outcome(out: Path, result, quick: bool, backend: str) -> None:
    payload = {"quick": quick, "backend": backend, "state": "error" if isinstance(result, ClaimError) else "done",
               "revision": CURRENT, "result": asdict(result)}
    (out / f"{result.key}{RESULT_SUFFIX}").write_text(json_text(payload, default=str))


def _load_outcome(out: Path, key: str):
    """({"quick", "backend", "revision"}, ClaimResult or ClaimError) saved for ``key`` in ``out`` (``revision``: of
    the dynamics it ran under, 1 before they were recorded), or None (none, or unreadable: the claim then runs
    again)."""
    try:
        payload = json.loads((out / f"{key}{RESULT_SUFFIX}").read_text())
        cls = ClaimError if payload["state"] == "error" else ClaimResult
        revision = payload.get("revision", 1)
        return ({"quick": payload["quick"], "backend": payload["backend"],
                 "revision": revision if isinstance(revision, int) else 1}, cls(**payload["result"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
