"""Command line ``metamaterial`` (the sweep commands in ``sweep.cli``): with it, the only module that parses argv,
prints or exits.

Exit codes: 0 success, 2 bad input (config, graph, arguments, paths, an output that cannot be written), 1 simulation
failure or a write the machine did not take (a full disk, a file over the size limit), 130 interrupted (Ctrl-C),
143 terminated (SIGTERM; the same as Ctrl-C, but inside one long call it needs no second signal: ``interrupts.watch``)
(Ctrl-C: the run directory keeps its last checkpoint and the resume command is printed). User errors print one
line ``metamaterial: <message>`` and no traceback; a closed pipe (``solve --json | head``) ends quietly with 0.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import os
import shlex
import sys
from pathlib import Path

from . import __version__, interrupts, kernelcache
from .config import Config
from .configfile import load_config, set_by
from .errors import (
    CheckpointError,
    ConfigError,
    MetamaterialError,
    SimulationError,
    ValidationError,
    caused_by_interrupt,
)
from .netlist import NETLIST_EDGES
from .sim.registry import backend_names
from .sweep import cli as sweep_cli
from .tasks import scored_on
from .units import listed, si


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, like every other bad input (exit 2):
    ``metamaterial train: argument --seeds: invalid int value: 'abc'; see metamaterial train --help``. Subcommands'
    parsers are of this class too (argparse makes them of their parent's)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}; see {self.prog} --help\n")

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but an argument no command takes is named with the command's own ``--help``: argparse
        reports it from the top-level parser, which cannot say what the command takes."""
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            command = self.commands.get(getattr(parsed, "command", None), self) if hasattr(self, "commands") else self
            command.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="metamaterial", description="Simulate and train learning metamaterials.")
    p.add_argument("--version", action=_Version, nargs=0,
                   help="print the version (and ngspice's, if it loads) and exit")
    sub = p.add_subparsers(dest="command", required=True)
    p.commands = sub.choices  # each command's parser, to name its --help (``_Parser.parse_args``)

    def common(sp: argparse.ArgumentParser, what: str = "YAML config file (see configs/)", metavar: str = "CONFIG",
               **config) -> None:
        sp.add_argument("config", metavar=metavar, help=what, **config)
        sp.add_argument("--backend", choices=backend_names(),
                        help="solver backend: the same as --set simulator.backend=NAME (default: the config's)")
        sp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a config value, e.g. --set learning.epochs=200 (repeatable)")

    t = sub.add_parser("train", help="train a network; writes a run directory")
    common(t, "YAML config file (see configs/); with --resume DIR alone, DIR/config.yaml", nargs="?")
    t.add_argument("--out", type=Path, metavar="DIR", help="run directory (default: runs/<name>)")
    t.add_argument("--resume", type=Path, metavar="DIR",
                   help="continue the run in DIR from its last checkpoint (its config.yaml when CONFIG is not given)")
    t.add_argument("--replace", action="store_true",
                   help="--out DIR holds an earlier run: train afresh there; the files that run and the commands "
                        "on it wrote (nothing else) are removed once the new run has its first checkpoint, and stay "
                        "if it is refused or stops before")
    t.add_argument("--no-progress", action="store_true", help="no progress (a bar on a terminal; elsewhere, such as "
                                                              "a log file, a line every 30 s)")
    t.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    t.add_argument("--seeds", type=int, metavar="N",
                   help="train N replicas (seeds seed..seed+N-1) as one batch on any backend and report the success "
                        "rate; checkpointed and resumable like a single run (default 1; on --resume, the run's own)")

    n = sub.add_parser("netlist", help="write free_k.cir / clamped_k.cir per data point: at a config's initial gates "
                                       "or a run directory's trained ones")
    common(n, what="YAML config file (netlists at its initial gates), or a run directory written by train "
                   "(netlists at its trained gates; --set is refused there, --backend only computes the clamps)",
           metavar="CONFIG|RUN_DIR")
    n.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="output directory (free_k.cir and clamped_k.cir an earlier call left there and this one does "
                        "not rewrite are removed, and named; other files stay)")
    n.add_argument("--replica", type=int, metavar="SEED",
                   help="of an ensemble run directory (--seeds): the replica trained with seed SEED")
    n.add_argument("--points", metavar="LIST", help=POINTS_HELP)

    s = sub.add_parser("solve", help="solve free and clamped operating points of every data point")
    common(s)
    s.add_argument("--points", metavar="LIST", help=POINTS_HELP)
    s.add_argument("--json", action="store_true", help="print one JSON object (the only output format)")

    e = sub.add_parser("eval", help="outputs, loss and accuracy of a trained run directory (training points, "
                                    "held-out points, or new inputs)")
    e.add_argument("run_path", type=Path, metavar="RUN_DIR", help="a run directory written by train")
    e.add_argument("--inputs", type=Path, metavar="CSV",
                   help="new inputs: a CSV whose header names the input nodes (n15, ...; a CSV task's own input "
                        "columns also work), one row of input voltages (V) per point")
    e.add_argument("--split", choices=("train", "test"),
                   help="which of the task's points to evaluate without --inputs: the training points (default) or "
                        "the held-out ones (the validation set of a run with task.validation)")
    e.add_argument("--replica", type=int, metavar="SEED",
                   help="of an ensemble run directory: only the replica trained with seed SEED (default: every one)")
    e.add_argument("--backend", choices=backend_names(), help="solve on this backend (default: the run's)")
    e.add_argument("--json", action="store_true", help="print one JSON object instead of the table")

    pl = sub.add_parser("plot", help="redraw every figure of a run directory from its files alone")
    pl.add_argument("run_path", type=Path, metavar="RUN_DIR", help="a run directory written by train")

    for name, what in (("energy", "operating-point power of every data point's free and clamped twin"),
                       ("transient", "settling time and energy per inference from ngspice transients")):
        e = sub.add_parser(name, help=f"{what}; writes JSON, CSV and figures")
        e.add_argument("config", help="YAML config file (its initial gates) or a run directory (its trained gates)")
        if name == "energy":
            e.add_argument("--backend", choices=backend_names(),
                           help="solver backend: the same as --set simulator.backend=NAME (default: the config's)")
            e.add_argument("--csv", action="store_true",
                           help="write power.csv however many rows it has (by default a table of over 250,000 rows "
                                "is left out; power.npz always holds the same numbers)")
        else:
            e.add_argument("--steps", type=int, metavar="N", help="input steps from one data point to the next, "
                                                                  "cycling the points in order (default: each once; "
                                                                  "at most as many as fit in 2 GB of waveforms; "
                                                                  "each kept as it finishes, so that the same "
                                                                  "command goes on from a run cut short); with "
                                                                  "--learning, training steps (default 100)")
            e.add_argument("--learning", action="store_true",
                           help="simulate N training steps of the learning hardware (twins, gate capacitors, "
                                "charging currents, learning switch) as one transient and compare the gates with "
                                "the quasi-static training loop")
        e.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                       help="override a config value, e.g. --set " + ("simulator.temperature=50" if name == "energy"
                                                                      else "timing.periphery.wiring_capacitance=1e-11"))
        default = f"RUN_DIR/{name}, or runs/<name>-{name}" + ("; with --learning, RUN_DIR/learning or "
                                                               "runs/<name>-learning" if name == "transient" else "")
        e.add_argument("--out", type=Path, help=f"output directory (default: {default})")
        e.add_argument("--replica", type=int, metavar="SEED",
                       help="of an ensemble run directory (--seeds): the replica trained with seed SEED")
        e.add_argument("--no-progress", action="store_true", help="no progress bar")
        e.add_argument("--no-plots", action="store_true", help="skip the PNG figures")

    r = sub.add_parser("reproduce", help="reproduce the published claims; writes figures, data and REPORT.md",
                       formatter_class=_ClaimsHelp, epilog="claims: %(claims)s")
    r.add_argument("claims", nargs="*", metavar="CLAIM", help="claims to run (default: all; names below)")
    r.add_argument("--out", type=Path, default=Path("runs/reproduce"), metavar="DIR",
                   help="output directory (default: runs/reproduce)")
    r.add_argument("--quick", action="store_true", help="few seeds, short training (a smoke run)")
    r.add_argument("--force", action="store_true",
                   help="run the named claims (default: all) again from scratch, replacing what --out holds for "
                        "them (without it, claims finished there with the same --quick and --backend are kept, a "
                        "full result is kept under --quick and refused to another --backend)")
    r.add_argument("--backend", choices=backend_names(), default="native",
                   help="backend of the many-seed ensembles (each claim names the backends of its other runs)")
    sweep_cli.add_commands(sub)
    return p


class _ClaimsHelp(argparse.HelpFormatter):
    """Fills ``%(claims)s`` with each claim's name and title, importing the claims only when help is shown."""

    def _format_text(self, text: str) -> str:
        if "%(claims)s" in text:
            from .claims.registry import CLAIMS  # noqa: PLC0415
            text = text.replace("%(claims)s", "; ".join(f"{k} ({m.TITLE})" for k, m in CLAIMS.items()))
        return super()._format_text(text)


class _Version(argparse.Action):
    """``--version``: the package's version and, when its library loads, ngspice's version and linear solver."""

    def __call__(self, parser, namespace, values, option_string=None):
        lines = [f"metamaterial {__version__}"]
        try:
            from .sim.ngspice import NgspiceSolver  # noqa: PLC0415
            info = NgspiceSolver().info()
            lines.append(f"ngspice {info['ngspice_version']} (linear solver {info['linear_solver']})")
        except MetamaterialError as err:
            lines.append(f"ngspice: not available ({str(err).splitlines()[0]})")
        print("\n".join(lines))
        parser.exit(0)


def _one_line(msg: str) -> str:
    """An error message as one line: a line break inside it (a file name can hold one) is shown as ``\\n``."""
    return msg.replace("\r", "\\r").replace("\n", "\\n")


def main(argv: list[str] | None = None) -> int:
    try:  # installing the handler (it looks up the libraries' folders) and building the parser take a moment in
        # which a Ctrl-C can land too
        interrupts.install()  # a Ctrl-C that lands in a library's callback is held, not dropped (``interrupts``)
        args = _parser().parse_args(argv)
        interrupts.watch(lambda: _resume_hint(args))  # one inside a long ngspice call is answered at once
        _show_compiling(not getattr(args, "no_progress", False))
    except KeyboardInterrupt:
        print(f"metamaterial: {interrupts.signal_name()} while starting; nothing was run", file=sys.stderr)
        return interrupts.exit_code()
    try:
        try:
            return _run(args)
        except Exception as err:
            if caused_by_interrupt(err):  # e.g. an ImportError raised from the Ctrl-C that cut its import short
                raise KeyboardInterrupt from err
            raise
    except (ConfigError, ValidationError) as err:
        where = str(getattr(args, "config", None) or getattr(args, "run_path", None) or "")
        msg = str(err)
        # eval's --inputs CSV names itself; a message names a path as Path writes it (./x.yaml as x.yaml)
        named = [str(Path(p)) for p in (where, getattr(args, "inputs", None)) if p]
        # the output folder of netlist (a folder where a netlist goes) and transient (another one writing into it)
        out = getattr(args, "cost_out", None) or getattr(args, "out", None) \
            if args.command in ("netlist", "transient") else None
        named += [f"{Path(out)}{end}" for end in (":", os.sep)] if out else []
        if not msg.startswith(tuple(named) or ("",)):  # a check after validation (a role's node, a device): a key
            culprit = set_by(msg, getattr(args, "overrides", None) or [])
            msg = f"{where}: {culprit + ': ' if culprit else ''}{msg}"
        print(f"metamaterial: {_one_line(msg)}", file=sys.stderr)
        return 2
    except SimulationError as err:
        print(f"metamaterial: {err.summary}", file=sys.stderr)
        if err.log:
            print("ngspice log (last lines):\n" + err.log, file=sys.stderr)
        if err.kept:
            print(f"netlist kept at {err.kept}", file=sys.stderr)
        kept = _kept_checkpoint(args)
        if kept:
            print(f"metamaterial: {kept}", file=sys.stderr)
        return 1
    except MetamaterialError as err:  # a bad checkpoint or path is bad input too
        print(f"metamaterial: {_one_line(str(err))}", file=sys.stderr)
        return 2 if isinstance(err, (CheckpointError, _PathError)) else 1
    except BrokenPipeError:
        # the reader went away (``| head``): say nothing more, and keep Python's exit-time flush from failing too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:  # a path cannot be read or written, or the machine took no more (a full disk)
        code, msg = _os_error(args, err)
        print(f"metamaterial: {_one_line(msg)}", file=sys.stderr)
        return code
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (``interrupts``)
        print(f"metamaterial: {interrupts.signal_name()}; {_resume_hint(args)}", file=sys.stderr)
        return interrupts.exit_code()


class _ToStderr(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        print(f"metamaterial: {record.getMessage()}", file=sys.stderr, flush=True)


def _show_compiling(show: bool) -> None:
    """Print ``kernelcache.announce``'s lines (a first solve after an install waits for numba to compile), unless
    progress is off."""
    if not any(isinstance(h, _ToStderr) for h in kernelcache.LOG.handlers):  # once per process
        kernelcache.LOG.addHandler(_ToStderr())
        kernelcache.LOG.propagate = False
    kernelcache.LOG.setLevel(logging.INFO if show else logging.WARNING)


def _resume_hint(args: argparse.Namespace) -> str:
    """What an interrupted command leaves: the checkpointed epoch and the exact command that continues it."""
    if args.command == "sweep" and not getattr(args, "sweep_started", False):
        return "no point was run, and nothing was written"
    if args.command == "sweep":
        finished = sweep_cli.finished_points(Path(args.out))
        started, training, epochs = sweep_cli.training_kept(Path(args.out))
        kept = "" if not training else (
            f"{training} point{'s' if training > 1 else ''} in training kept {'their' if training > 1 else 'its'} "
            f"last checkpoint (epoch {epochs[0] if epochs[0] == epochs[-1] else f'{epochs[0]}-{epochs[-1]}'})")
        resuming = ", resuming those from there" if training else ""
        # Dask does not stop a task a worker has started, checkpointed past epoch 0 or not yet
        if started and getattr(args, "scheduler", None):
            resuming += (f" (the workers of {args.scheduler} train the points they had started to the end, and their "
                         "results are kept: the same command then finds them done)")
        if not finished:  # it said "the points finished so far are kept" of a folder that held only its plan
            return (f"no point had finished (its plan is in {args.out}){', but ' + kept if kept else ''}; the same "
                    f"command runs them{resuming}")
        return (f"the {finished} point{'s' if finished > 1 else ''} finished so far "
                f"{'are' if finished > 1 else 'is'} kept in {args.out}{', and ' + kept if kept else ''}; the same "
                f"command runs the others{resuming}")
    if args.command == "reproduce":
        return f"the claims finished so far are kept in {args.out}; the same command runs the others"
    transient_out = None if getattr(args, "learning", False) else getattr(args, "cost_out", None)
    if args.command == "transient" and transient_out is not None:
        from .runfiles import PARTIAL_STEP  # noqa: PLC0415

        done = len(list(Path(transient_out).glob(PARTIAL_STEP.format("*"))))
        if done:
            return (f"the {done} input step{'s' if done > 1 else ''} finished so far {'are' if done > 1 else 'is'} "
                    f"kept in {transient_out}; the same command goes on from there")
        return "no input step had finished, so none was kept; the same command starts over"
    run_dir = getattr(args, "run_dir", None)
    if run_dir is None:
        return "nothing was saved"
    if getattr(args, "replaced", None) == "restored":
        return (f"the run in {run_dir} is back as it was (the run that was to replace it stopped before training); "
                "the same command replaces it")
    epoch = _kept_epoch(args)
    if epoch is None:
        if not Path(run_dir).is_dir():  # the run had written nothing to keep, and its folder went with its files
            return f"nothing was kept in {run_dir}; run the same command again to start over"
        config = Path(run_dir) / "config.yaml"
        if config.is_file():  # stopped at once (a second signal): its clean-up, which removes it, did not run
            return (f"{run_dir} holds no checkpoint yet, only the run's config.yaml; remove it (rm "
                    f"{shlex.quote(str(config))}), then run the same command again to start over")
        return f"{run_dir} holds no checkpoint yet; run the same command again to start over"
    return f"{run_dir} holds the checkpoint of epoch {epoch}; resume with: metamaterial train --resume " \
           f"{shlex.quote(str(run_dir))}"


#: a write the machine did not take, however right the command was: a full disk or quota, a file over the size limit
#: (``ulimit -f``); exit 1, as a failure, where a path that cannot be written is bad input (exit 2)
_NO_ROOM = {errno.ENOSPC: "no space left on the device holding it", errno.EDQUOT: "over its owner's disk quota",
            errno.EFBIG: "larger than the limit on a file's size (ulimit -f) or than its file system takes"}
#: a path that cannot be written: a read-only file system, no permission
_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def _os_error(args: argparse.Namespace, err: OSError) -> tuple[int, str]:
    """(exit code, line) of an OSError: the file (a run's file a write failed on is named by ``runfiles.writing``;
    where none is named, the run directory), what is wrong and what to do: for a full disk or a file over the size
    limit (exit 1), make room and then resume the run from the checkpoint it kept (or run the command again); for
    an output that cannot be written (exit 2), another --out, or for a resume a writable run directory. Other
    errors (a file not found) as the system says them (exit 2)."""
    run_dir = getattr(args, "run_dir", None) if args.command == "train" else None
    out = next((f for f in (run_dir, getattr(args, "out", None), _run_folder(args)) if f is not None), None)
    where = err.filename if err.filename is not None else f"a file in {out}" if out is not None else None
    said = f"{where}: " if where is not None else ""
    if err.errno in _NO_ROOM:
        kept = _kept_epoch(args)
        again = (f"resume with: metamaterial train --resume {shlex.quote(str(run_dir))} ({run_dir} holds the "
                 f"checkpoint of epoch {kept})" if kept is not None else "run the same command again")
        fix = "free space" if err.errno != errno.EFBIG else "raise the limit"
        return 1, f"{said or 'an output file: '}{_NO_ROOM[err.errno]}; {fix}, then {again}"
    written = err.filename is None or (out is not None and _inside(Path(err.filename), Path(out)))
    if err.errno in _NOT_WRITABLE and where is not None and written:
        if getattr(args, "resume", None) is not None:
            fix = "the run directory must be writable to resume: make it writable, or resume a copy in a writable place"
        elif args.command == "plot":  # it has no --out: the figures go beside the run's files
            fix = "plot draws into the run directory: make it writable, or plot a copy in a writable place"
        else:
            fix = "choose another --out"
        return 2, f"cannot write {where} ({err.strerror}); {fix}"
    return 2, f"{said}{err.strerror or err}"


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies in it (as written: both come from the same command line)."""
    return path == folder or folder in path.parents


def _kept_epoch(args: argparse.Namespace) -> int | None:
    """The epoch of the checkpoint a train that stopped kept in its run directory; None if it kept none, or if the
    run a --replace was to replace is back (it failed before training)."""
    from . import runs  # noqa: PLC0415

    run_dir = getattr(args, "run_dir", None)
    if args.command != "train" or run_dir is None or getattr(args, "replaced", None) == "restored":
        return None
    try:
        return runs.load_checkpoint(run_dir).state.epoch
    except CheckpointError:
        return None


def _kept_checkpoint(args: argparse.Namespace) -> str | None:
    """What a training that failed keeps: its last checkpoint, where it has one (None otherwise)."""
    epoch = _kept_epoch(args)
    if epoch is None:
        return None
    run_dir = args.run_dir
    where = shlex.quote(str(run_dir))
    return (f"{run_dir} holds the checkpoint of epoch {epoch} (`metamaterial eval {where}` scores it); a resume "
            "trains the same config into the same failure: change what the message names and train into a new --out")


def _load(args: argparse.Namespace) -> Config:
    """The command's config file with its ``--set``/``--backend`` overrides."""
    _check_not_a_folder(args.config, args.command)
    return load_config(args.config, config_overrides(args))


def _check_not_a_folder(path: Path, command: str) -> None:
    """A folder given where a config file is read ("Is a directory") is named for what it is, with what reads it."""
    if Path(path).is_dir():
        run = (Path(path) / "config.yaml").is_file()
        hint = {"train": f"to train that run on, use train --resume {path}",
                "solve": f"for its trained outputs use eval {path} --json, for its netlists netlist {path}, for its "
                         f"initial gates solve {path}/config.yaml"}.get(command) if run else None
        raise ConfigError(f"{path}: {'a run directory' if run else 'a folder'}, and {command} reads a config "
                          f"file (.yaml); {hint or 'give a config file'}")


def _run(args: argparse.Namespace) -> int:
    from . import points, runs  # noqa: PLC0415 (keeps --help fast)
    from .plots import plot_run_dir  # noqa: PLC0415
    from .replacement import finish_replace  # noqa: PLC0415
    from .runfiles import refuse_a_yaml_file  # noqa: PLC0415

    if args.command in ("sweep", "sweep-report"):
        return sweep_cli.run(args, config_overrides(args) if args.command == "sweep" else [])

    if args.command == "reproduce":
        from .claims.registry import reproduce  # noqa: PLC0415
        from .claims.report import run_cell  # noqa: PLC0415
        with _out_dir(args.out):
            results, how, report, crashed = reproduce(args.claims, args.out, quick=args.quick, backend=args.backend,
                                                      force=args.force, progress=True,
                                                      log=lambda line: print(line, flush=True))
        print(f"report: {report}")
        for r in results:  # how each ran, as REPORT.md's run column: a quick verdict checks the machinery alone
            print(f"  {r.verdict:>15}  {r.title} ({run_cell(how.get(r.key))})")
        return 1 if crashed else 0
    folder = _run_folder(args)
    if folder is not None:
        refuse_a_yaml_file(folder, args.command)
        _refuse_a_sweep(folder, args.command)
        # a replace a kill cut short would read as "no checkpoint": finished first, as train does
        said = finish_replace(folder)
        if said is not None:
            _print_finished(args.command, said)
    if args.command in ("eval", "plot") or (args.command == "netlist" and folder is not None):
        return _run_dir_command(args)
    if args.command in ("energy", "transient"):
        return _costs(args)
    if args.command == "train":

        def on_replace(kind: str, text: str) -> None:
            """What became of the run --replace replaces: its removal is said; a run put back is not (the refusal,
            failure or interrupt that follows says why, in its one line). A replace a kill had cut short, finished
            first, is always said."""
            if kind == "finished":
                _print_finished(args.command, text)
                return
            args.replaced = kind
            if kind == "removed":
                print(f"train: {text}", file=sys.stderr, flush=True)

        if args.config is not None:
            _check_not_a_folder(args.config, "train")
        plan = runs.plan_train(args.config, out=args.out, resume=args.resume, replace=args.replace, seeds=args.seeds,
                               overrides=config_overrides(args), on_replace=on_replace)
        run_dir = args.run_dir = plan.run_dir  # what an interrupt names
        if plan.n_seeds > 1:
            s = runs.train_ensemble(plan, progress=not args.no_progress, on_warning=_print_warning,
                                    on_replace=on_replace)
            rate = ""
            if s.get("test_accuracy_mean") is not None:  # first what a classifier is judged by
                rate += (f"; {scored_on(s)} accuracy mean {_percent(s['test_accuracy_mean'])} (sd "
                         f"{_percent(s['test_accuracy_sd'])}, {_percent(s['test_accuracy_min'])}-"
                         f"{_percent(s['test_accuracy_max'])} over seeds), "
                         f"training mean {_percent(s['accuracy_mean'])}")
            if s["success_rate"] is not None:
                rate += (f"; {s['success_count']}/{len(s['seeds'])} seeds have every training point correct by "
                         ">= 10 mV")
            loss = (f"median final loss (output MSE) {s['final_loss_median']:.3g} V^2" if
                    s.get("final_hinge_loss_median") is None else
                    f"median final hinge loss {1e3 * s['final_hinge_loss_median']:.3g} mV")
            figures = "" if args.no_plots else "".join(f", {p.name}" for p in plot_run_dir(run_dir))
            chips = ", mismatch.npz" if (run_dir / "mismatch.npz").is_file() else ""  # the mismatch draws of the chips
            print(f"{_run_title(s)} x{len(s['seeds'])} seeds on {s['backend']}: {s['epochs']} epochs in "
                  f"{s['wall_s']:.1f} s, {loss}{rate}\n" + (f"{UNTRAINED}\n" if s["epochs"] == 0 else "")
                  + f"run directory: {run_dir}/ (summary.json, ensemble.csv{chips}{figures})")
            return 0
        result = runs.train_single(plan, progress=not args.no_progress, plots=not args.no_plots,
                                   on_warning=_print_warning, on_replace=on_replace)
        print(_human_summary(result.summary, result.run_dir, result.figures))
        return 0
    cfg = _load(args)
    if args.command == "netlist":
        if args.replica is not None:
            raise ConfigError(REPLICA_OF_A_CONFIG)
        with _out_dir(args.out) as out:
            paths, which, removed = points.write_netlists(cfg, out, points=args.points)
        print(f"wrote {len(paths)} netlists to {args.out}/ (free_k.cir, clamped_k.cir for {which})")
        _print_removed(removed, f"{len(removed)} {STALE_NETLISTS}")
        return 0
    solved = points.solve_points(cfg, points=args.points)
    print(json.dumps(solved), flush=True)
    if args.points is None and len(solved["points"]) < solved["n_points"]:  # a large task's default: a few points
        idx = [p["index"] for p in solved["points"]]
        print(f"metamaterial: solve: {points.describe_points(idx, solved['n_points'])} (a large task's default); "
              "--points all solves every one, --points LIST the ones listed", file=sys.stderr)
    return 0


def _run_folder(args: argparse.Namespace) -> Path | None:
    """The run directory a command other than train reads (eval, plot; netlist, energy, transient of a folder);
    None for one on a config file."""
    if args.command in ("eval", "plot"):
        return args.run_path
    if args.command in ("netlist", "energy", "transient") and Path(args.config).is_dir():
        return Path(args.config)
    return None


def _refuse_a_sweep(folder: Path, command: str) -> None:
    """A sweep's folder given where a run directory is read is named for what it is, with the command that reports
    it (a folder holding a run's config.yaml as well is read as the run)."""
    from .sweep.store import sweep_in  # noqa: PLC0415

    sweep = sweep_in(folder)
    if sweep is not None and not (folder / "config.yaml").is_file():
        raise CheckpointError(f"{folder}: holds {sweep}, not a run directory, which {command} reads; for the sweep's "
                              f"table and figures: metamaterial sweep-report {shlex.quote(str(folder))}")


def _print_finished(command: str, text: str) -> None:
    """The line saying that a ``train --replace`` a kill had cut short was finished (``replacement.finish_replace``)."""
    print(f"{command}: {text}", file=sys.stderr, flush=True)


class _PathError(MetamaterialError, ValueError):
    """A path on the command line that cannot be used (exit 2); its message names the path."""


@contextlib.contextmanager
def _out_dir(path: Path):
    """The output directory ``path``, created with its missing parents; if the command then fails, each folder
    created here that is still empty is removed (a refused command leaves nothing behind: not ``runs/`` either)."""
    made = [p for p in (path, *path.parents) if not p.exists()]  # deepest first
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _PathError(f"{path}: cannot create the output directory ({err.strerror}); choose another --out") \
            from err
    try:
        yield path
    except BaseException:
        for folder in made:
            try:
                folder.rmdir()  # only if empty
            except OSError:
                break
        raise


# -- commands on a run directory: eval, netlist RUN_DIR, plot ----------------------------------------------
def _run_dir_command(args: argparse.Namespace) -> int:
    from . import rundir  # noqa: PLC0415
    from .experiment import build  # noqa: PLC0415
    from .plots import plot_run_dir  # noqa: PLC0415

    if args.command == "plot":
        paths = plot_run_dir(args.run_path)
        print(f"wrote {', '.join(p.name for p in paths)} to {args.run_path}/")
        return 0
    if args.command == "netlist":
        if args.overrides:
            raise ConfigError("--set: a run directory's config is the one it was trained with; give no --set (or a "
                              "CONFIG file to get netlists at its initial gates)")
        run = rundir.load_run(args.config)
        seed = run.seeds[run.one_replica(args.replica)]  # before --out is created
        with _out_dir(args.out) as out:
            paths, which, removed = rundir.write_run_netlists(run, out, args.replica, args.backend, args.points)
        print(f"wrote {len(paths)} netlists to {args.out}/ (free_k.cir, clamped_k.cir for {which}) at the gates of "
              f"{args.config} (seed {seed}, epoch {run.epoch})")
        _print_removed(removed, f"{len(removed)} {STALE_NETLISTS}")
        return 0
    # new inputs are not the task's points: its data file may have changed since (they are how to evaluate new data)
    run = rundir.load_run(args.run_path, skip=("task.path",) if args.inputs is not None else ())
    inputs = None
    if args.inputs is not None:
        if args.split is not None:
            raise ConfigError("--split, --inputs: give one (--inputs evaluates new points, --split the task's own)")
        setup = build(run.config)
        inputs = rundir.read_inputs_csv(args.inputs, setup)
        for line in rundir.outside_training(setup, inputs, args.inputs):
            print(f"metamaterial: warning: {line}", file=sys.stderr)
    result = rundir.evaluate_run(run, args.split or "train", inputs, args.replica, args.backend)
    print(json.dumps(result) if args.json else _eval_table(result), flush=True)
    return 0


#: most inputs a per-point eval table shows; a classifier of more (digits: 64) is shown by its classes alone
TABLE_MAX_INPUTS = 16


def _eval_table(r: dict) -> str:
    """The eval result for a person: a per-point table (one replica, or new inputs), per-replica lines."""
    from .learning.trainer import SUCCESS_MARGIN_V  # noqa: PLC0415

    where = {"train": "training points", "test": f"{scored_on(r)} points",
             "inputs": "new inputs"}[r["split"]]
    reps = r["replicas"]
    lines = [f"{r['name']} ({r['task']}, epoch {r['epoch']}, {r['backend']}): {where}, "
             f"{len(r['inputs'])} point(s), {len(reps)} replica(s); inputs and outputs in V"]
    if len(reps) == 1 or r["split"] == "inputs":
        # a point of many inputs (the digits' 64 pixels) does not fit a terminal's line: a classifier's table then
        # gives the classes alone, and --json everything
        brief = len(r["input_names"]) > TABLE_MAX_INPUTS and "predicted" in reps[0]
        head = (["seed"] if len(reps) > 1 else []) + ["point", *([] if brief else r["input_names"])]
        if "targets" in r and not brief:
            head += [f"target {n}" for n in r["output_names"]]
        head += [] if brief else [f"output {n}" for n in r["output_names"]]
        if "predicted" in reps[0]:
            head += (["class"] if "true" in r else []) + ["predicted"]
        rows = []
        for rep in reps:
            for p, x in enumerate(r["inputs"]):
                row = ([str(rep["seed"])] if len(reps) > 1 else []) + [str(p)]
                if not brief:
                    row += [f"{v:.6g}" for v in x]
                    row += [f"{v:.6g}" for v in r["targets"][p]] if "targets" in r else []
                    row += [f"{v:.6g}" for v in rep["outputs"][p]]
                if "predicted" in rep:
                    row += ([str(r["true"][p])] if "true" in r else []) + [str(rep["predicted"][p])]
                rows.append(row)
        widths = [max(len(x) for x in col) for col in zip(head, *rows)]
        lines += ["  ".join(x.rjust(w) for x, w in zip(row, widths)).rstrip() for row in [head, *rows]]
        if brief:
            lines.append(f"({len(r['input_names'])} inputs and {len(r['output_names'])} outputs per point: --json)")
    elif len(reps) > 1:
        lines.append("(per-point outputs: --replica SEED, or --json)")
    for rep in reps if "loss" in reps[0] else []:
        line = f"seed {rep['seed']}: loss (MSE) {rep['loss']:.3g} V^2"
        if "hinge_loss" in rep:
            line += f", hinge loss {1e3 * rep['hinge_loss']:.3g} mV"
        if "accuracy" in rep:
            line += f", accuracy {_percent(rep['accuracy'])}, smallest margin {_margin_mv(rep['min_margin_v'])}"
        lines.append(line)
    if len(reps) > 1 and "success" in reps[0]:
        lines.append(f"{sum(rep['success'] for rep in reps)}/{len(reps)} replicas have every point correct by >= "
                     f"{1e3 * SUCCESS_MARGIN_V:g} mV")
    return "\n".join(lines)


def _print_warning(kind: str, text: str) -> None:
    """A check before or after training (``diagnostics``): one ``warning: ...`` or ``note: ...`` line on stderr."""
    print(f"{kind}: {text}", file=sys.stderr, flush=True)


def _costs(args: argparse.Namespace) -> int:
    """``energy`` / ``transient`` of a config (its initial gates) or a run directory (its trained gates)."""
    from . import costs  # noqa: PLC0415

    if getattr(args, "steps", None) is not None and args.steps < 1:
        default = "100 training steps" if getattr(args, "learning", False) else "each data point once"
        raise ConfigError(f"--steps: must be >= 1 (got {args.steps}); give 1 or more, or leave --steps out "
                          f"({default})")
    path = Path(args.config)
    run_dir = path if path.is_dir() else None
    if run_dir is None and args.replica is not None:
        raise ConfigError(REPLICA_OF_A_CONFIG)
    cfg = costs.run_dir_config(run_dir, config_overrides(args)) if run_dir else _load(args)
    src = costs.load_source(cfg, run_dir, args.replica, args.overrides)
    what = "learning" if getattr(args, "learning", False) else args.command
    # a replica named on the command line gets a folder of its own: another replica's files stay
    default = run_dir / what / ("" if args.replica is None else f"seed_{src.seed}") if run_dir else \
        Path("runs") / f"{cfg.name}-{what}"
    out = args.cost_out = args.out or default  # what an interrupt names (``_resume_hint``)
    with _out_dir(out):  # a refused or failed command leaves no folder it created
        return _cost_run(args, costs, src, out)


def _cost_run(args: argparse.Namespace, costs, src, out: Path) -> int:
    """Run ``energy``, ``transient`` or ``transient --learning`` of ``src`` into ``out`` and print its summary."""
    if args.command == "energy":
        r = costs.energy_run(src, out, plots=not args.no_plots, progress=not args.no_progress,
                             csv_table=True if args.csv else None)
        s = r["summary"]
        noun, points = r["edge_noun"], f"{r['n_points']} point{'s' if r['n_points'] != 1 else ''}"
        print(f"{r['task']} on {r['backend']}, {src.label}: {r['n_edges']} {noun}s, {points}\n"
              f"power per {noun}, free twin: median {si(s['free_median_w'], 'W')}, max "
              f"{si(s['free_max_w'], 'W')}; clamped twin: median {si(s['clamped_median_w'], 'W')}, max "
              f"{si(s['clamped_max_w'], 'W')}\nnetwork power (free, median over points) "
              f"{si(s['free_total_median_w'], 'W')}\noutput directory: {out}/ ({', '.join(r['files'])})")
        if "power.csv" not in r["files"]:
            print(f"power.csv not written ({r['csv_rows']:,} rows, over {costs.CSV_MAX_ROWS:,}): power.npz holds the "
                  "same numbers as [point, edge] arrays; --csv writes it anyway")
        _print_removed(r["removed"])
        return 0
    if args.learning:
        r = costs.learning_run(src, out, steps=args.steps or 100, plots=not args.no_plots,
                               progress=not args.no_progress)
        a = r["agreement"]
        either = " either" if r["windows"] == 0 else ""
        # the hinge's live comparator opens a switch once its point reaches the margin; the loop's windows are whole
        windows = (f"{r['partial_windows']} of them for part of the window only (the switch was closed "
                   f"{r['switch_on_fraction']:.1%} of the windows' time); the quasi-static loop opened "
                   f"{r['quasi_static_windows']}, each whole" if r["loss"] == "hinge" else
                   f"each whole (no comparator under {r['loss']}), as in the quasi-static loop")
        moved = (f"(no gate moved in the quasi-static loop{either})" if a["relative"] is None else
                 f"while the gates moved up to {a['max_moved_v']:.3g} V ({a['relative']:.2%})")
        print(f"{r['task']}, {src.label}: {r['steps']} training steps ({r['schedule']}, {r['loss']}) as one ngspice "
              f"transient in {r['transient_wall_s']:.1f} s: {r['simulated_time_s']:.4g} s simulated, {r['slots']} "
              f"presented points of t_settle {r['t_settle_s']:.3g} s + t_learn {r['t_learn_s']:.3g} s, each with "
              f"its input rise ({r['input_rise_s']:.3g} s) and its switch's edges ({r['switch_edges_s']:.3g} s); "
              f"train's clock counts {r['hardware_time_s']:.4g} s for them\n"
              f"{r['windows']} of {r['slots']} learning windows closed, {windows}\n"
              f"gates after each step vs the quasi-static loop ({r['quasi_static_backend']}): max difference "
              f"{a['max_diff_v']:.3g} V {moved}\noutput directory: {out}/ ({', '.join(r['files'])})")
        _print_removed(r["removed"])
        return 0
    r = costs.transient_run(src, out, steps=args.steps, plots=not args.no_plots, progress=not args.no_progress)
    s, band = r["summary"], r["timing"]["settle"]
    end = f"transient end state vs DC operating point: {s['max_final_vs_dc_v']:.1e} V"
    if s["ends_off_dc"]:
        end += (f"; in {s['ends_off_dc']} step(s) a node ended outside its settling band (max({band['rel_tol']:.0%} "
                f"of its step, {band['abs_tol'] * 1e3:g} mV)): not settled")
    inside = (f"the outputs of {s['inside_band']} settled step(s) stayed inside their settling band (0 s, 0 J: "
              "nothing to time)")
    if s["timed"]:
        median, peak = s["energy_per_transistor_median_j"], s["energy_per_transistor_max_j"]
        timed = (f"medians over the {s['timed']} step(s) whose outputs left their settling band"
                 + (f"; left out: {inside}" if s["inside_band"] else "")
                 + f"\nsettling time: median {si(s['settling_median_s'], 's')}, max {si(s['settling_max_s'], 's')}"
                 f"\nenergy per inference per {r['edge_noun']}: median {si(median, 'J')}, max {si(peak, 'J')}")
    else:
        timed = "no step to time: " + (inside if s["inside_band"] else "none settled")
    went_on = f" (went on from the {r['resumed_steps']} steps an earlier run finished)" if r["resumed_steps"] else ""
    print(f"{r['task']} on ngspice, {src.label}: {s['steps']} input steps{went_on}, {s['not_settled']} not settled\n"
          f"{timed}\n{end}\noutput directory: {out}/ ({', '.join(r['files'])})")
    _print_removed(r["removed"])
    return 0


#: the netlist files of an earlier ``netlist`` call that this one removed (``points.write_netlists``)
STALE_NETLISTS = "netlist file(s) an earlier call left there and this one did not rewrite"


def _print_removed(names: list[str], what: str = "what an earlier run left there and this one did not write") -> None:
    """The line naming the files an earlier command left in the output directory that this one did not rewrite,
    and removed (the files of one call are a set: a folder never mixes two calls' gates or networks); at most 8
    named."""
    if names:
        print(f"removed {what}: {listed(names, 8)}")


def config_overrides(args: argparse.Namespace) -> list[str]:
    """The ``--set`` overrides of a train, netlist or solve command, with ``--backend X`` as its
    ``simulator.backend=X`` (last, so it wins), applied before validation: a run's saved config names its backend."""
    backend = getattr(args, "backend", None)
    return [*args.overrides, *([f"simulator.backend={backend}"] if backend else [])]


def _margin_mv(margin: float) -> str:
    """A smallest margin (V) in mV to a tenth, or to as many more digits as keep it on its side of the success
    margin (9.95 mV is not "10.0 mV" beside "not all points correct by 10 mV")."""
    from .learning.trainer import SUCCESS_MARGIN_V  # noqa: PLC0415

    solved = margin >= SUCCESS_MARGIN_V
    for digits in range(1, 7):
        text = f"{1e3 * margin:.{digits}f}"
        if (float(text) >= 1e3 * SUCCESS_MARGIN_V) == solved:
            return f"{text} mV"
    return f"{1e3 * margin:.9g} mV"


def _percent(fraction: float) -> str:
    """An accuracy as a percentage, to a tenth where it is not whole (0.9639: 96.4%)."""
    return f"{fraction:.0%}" if round(fraction * 100, 1) % 1 == 0 else f"{fraction:.1%}"


def _run_title(s: dict) -> str:
    """A run's name, and its task's where they differ (``digits_chips (digits)``), from its summary ``s``."""
    return s["task"] if s.get("name", s["task"]) == s["task"] else f"{s['name']} ({s['task']})"


def _human_summary(s: dict, run_dir: Path, figures: list[Path]) -> str:
    mse = f"{s['initial_loss']:.3g} -> {s['final_loss']:.3g} V^2"
    what = _run_title(s)
    if s.get("final_hinge_loss") is None:
        lines = [f"{what} on {s['backend']}: {s['epochs']} epochs, loss (output MSE) {mse}"]
    else:  # a hinge trains the class margins, not the outputs' distance to their labels
        lines = [f"{what} on {s['backend']}: {s['epochs']} epochs, hinge loss (mean shortfall of the class "
                 f"margin below {1e3 * s['hinge_margin_v']:g} mV) {1e3 * s['initial_hinge_loss']:.3g} -> "
                 f"{1e3 * s['final_hinge_loss']:.3g} mV; output MSE to the labels {mse}"]
    if s["epochs"] == 0:
        lines.append(UNTRAINED)
    if s.get("accuracy") is not None:
        lines.append(f"accuracy {_percent(s['accuracy'])}, smallest margin {_margin_mv(s['min_margin_v'])} "
                     f"({'all points correct by >= 10 mV' if s['success'] else 'NOT all points correct by 10 mV'})")
    if s.get("test_accuracy") is not None:
        lines.append(f"{scored_on(s)} accuracy {_percent(s['test_accuracy'])}")
    rc = s.get("charging_rc_s")  # absent from runs before 2026-12-02
    integrator = "" if not rc or s["t_learn_s"] <= rc / 10 else \
        f" = {s['t_learn_s'] / rc:.3g} R C, which assumes an integrating gate drive: docs/physics.md 3.5"
    # n_updates counts learning windows (a full-batch step opens one per active point), not steps
    compile_ = " (this run also compiled numba's kernels, once: the time may include it)" \
        if kernelcache.compiled else ""
    lines.append(f"{s['n_solves']} solves in {s['wall_s']:.1f} s{compile_}; learning time {s['learning_time_s']:.3g} s "
                 f"({s['n_updates']} learning windows of t_learn {s['t_learn_s']:.3g} s{integrator}; "
                 f"{s['hardware_time_s']:.3g} s on the hardware, a t_settle + t_learn slot per presented point)")
    if s.get("sweep_fallbacks"):
        lines.append(f"ngspice: {s['sweep_fallbacks']} circuit(s) solved by one op per solve after their dc sweep "
                     f"failed to converge (the same operating points, more slowly)")
    drawn = "".join(f", {p.name}" for p in figures)
    lines.append(f"run directory: {run_dir}/ (summary.json, metrics.csv, gates.csv, outputs.csv{drawn})")
    return "\n".join(lines)


#: what a summary adds for a run of ``learning.epochs: 0``, which scores the network as initialised
UNTRAINED = ("no epoch was trained (learning.epochs is 0): the losses and accuracies are the untrained network's, at "
             "its initial gates")
#: ``--replica`` given with a config (``netlist``, ``energy``, ``transient``), which has no replicas
REPLICA_OF_A_CONFIG = "--replica: names a replica of a run directory; give a run directory instead of a config"
#: ``--points`` of ``netlist`` and ``solve`` (``points.point_indices``)
POINTS_HELP = ("training points: indices and ranges such as 0,5,10-19, or all (default: every point of a small "
               f"task; of a large one the first that fit {NETLIST_EDGES:,} edge copies, 8 of the digits)")


if __name__ == "__main__":
    sys.exit(main())
