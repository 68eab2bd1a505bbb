"""Command line ``metamaterial``: the only module that parses argv, prints or exits.

Exit codes: 0 success, 2 bad input (config, graph, arguments), 1 simulation failure.
User errors print one line ``metamaterial: <message>`` and no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import load_config
from .errors import CheckpointError, ConfigError, MetamaterialError, SimulationError, ValidationError
from .sim.registry import backend_names


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="metamaterial", description="Simulate and train learning metamaterials.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("config", help="YAML config file (see configs/)")
        sp.add_argument("--backend", choices=backend_names(),
                        help="solver backend: the same as --set simulator.backend=NAME (default: the config's)")
        sp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a config value, e.g. --set learning.epochs=200 (repeatable)")

    t = sub.add_parser("train", help="train a network; writes a run directory")
    common(t)
    t.add_argument("--out", type=Path, help="run directory (default: runs/<name>)")
    t.add_argument("--resume", type=Path, metavar="DIR", help="continue the run in DIR from its last checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    t.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="train N replicas (seeds seed..seed+N-1) as one batch and report the success rate "
                        "(use --backend native)")

    n = sub.add_parser("netlist", help="write free_k.cir / clamped_k.cir per data point at the initial gates")
    common(n)
    n.add_argument("--out", type=Path, required=True, help="output directory")

    s = sub.add_parser("solve", help="solve free and clamped operating points of every data point")
    common(s)
    s.add_argument("--json", action="store_true", help="print one JSON object (the only output format)")

    r = sub.add_parser("reproduce", help="reproduce the published claims; writes figures, data and REPORT.md")
    r.add_argument("claims", nargs="*", metavar="CLAIM", help="claims to run (default: all)")
    r.add_argument("--out", type=Path, default=Path("runs/reproduce"), help="output directory")
    r.add_argument("--quick", action="store_true", help="few seeds, short training (a smoke run)")
    r.add_argument("--backend", choices=backend_names(), default="native",
                   help="backend of the many-seed ensembles (each claim names the backends of its other runs)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (ConfigError, ValidationError) as err:
        where = str(getattr(args, "config", ""))
        msg = str(err) if str(err).startswith(where) else f"{where}: {err}"
        print(f"metamaterial: {msg}", file=sys.stderr)
        return 2
    except CheckpointError as err:
        print(f"metamaterial: {err}", file=sys.stderr)
        return 2
    except SimulationError as err:
        print(f"metamaterial: {err.summary}", file=sys.stderr)
        if err.log:
            print("ngspice log (last lines):\n" + err.log, file=sys.stderr)
        if err.kept:
            print(f"netlist kept at {err.kept}", file=sys.stderr)
        return 1
    except MetamaterialError as err:
        print(f"metamaterial: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("metamaterial: interrupted; resume with --resume RUN_DIR", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    from . import points, runs  # noqa: PLC0415 (keeps --help fast)

    if args.command == "reproduce":
        from .claims.registry import reproduce  # noqa: PLC0415
        results, report, crashed = reproduce(args.claims, args.out, quick=args.quick, backend=args.backend,
                                             log=lambda line: print(line, flush=True))
        print(f"report: {report}")
        for r in results:
            print(f"  {r.verdict:>15}  {r.title}")
        return 1 if crashed else 0
    cfg = load_config(args.config, config_overrides(args))
    if args.command == "train":
        if args.resume and args.out and args.out != args.resume:
            raise ConfigError("--out and --resume name different directories; give only --resume DIR")
        run_dir = args.resume or args.out or Path("runs") / cfg.name
        if args.seeds > 1:
            s = runs.ensemble_run(cfg, run_dir, args.seeds, progress=not args.no_progress, resume=bool(args.resume))
            rate = "" if s["success_rate"] is None else (f"; {s['success_count']}/{len(s['seeds'])} seeds have every "
                                                         "point correct by >= 10 mV")
            if s.get("test_accuracy_mean") is not None:
                rate += f"; mean accuracy {s['accuracy_mean']:.0%} (training), {s['test_accuracy_mean']:.0%} (held out)"
            print(f"{s['task']} x{len(s['seeds'])} seeds on {s['backend']}: {s['epochs']} epochs in "
                  f"{s['wall_s']:.1f} s, median final loss {s['final_loss_median']:.3g} V^2{rate}\n"
                  f"run directory: {run_dir}/ (summary.json, ensemble.csv)")
            return 0
        elif args.seeds < 1:
            raise ConfigError(f"--seeds: must be >= 1 (got {args.seeds})")
        result = runs.train_run(cfg, run_dir, resume=args.resume is not None, progress=not args.no_progress,
                                plots=not args.no_plots)
        print(_human_summary(result.summary, result.run_dir))
        return 0
    if args.command == "netlist":
        paths = points.write_netlists(cfg, args.out)
        print(f"wrote {len(paths)} netlists to {args.out}/ (free_k.cir, clamped_k.cir per data point)")
        return 0
    result = points.solve_points(cfg)
    print(json.dumps(result))
    return 0


def config_overrides(args: argparse.Namespace) -> list[str]:
    """The ``--set`` overrides of a train, netlist or solve command, with ``--backend X`` as its
    ``simulator.backend=X`` (last, so it wins), applied before validation: a run's saved config names its backend."""
    return [*args.overrides, *([f"simulator.backend={args.backend}"] if args.backend else [])]


def _human_summary(s: dict, run_dir: Path) -> str:
    lines = [f"{s['task']} on {s['backend']}: {s['epochs']} epochs, loss {s['initial_loss']:.3g} -> "
             f"{s['final_loss']:.3g} V^2"]
    if s.get("accuracy") is not None:
        lines.append(f"accuracy {s['accuracy']:.0%}, smallest margin {1e3 * s['min_margin_v']:.1f} mV "
                     f"({'all points correct by >= 10 mV' if s['success'] else 'NOT all points correct by 10 mV'})")
    if s.get("test_accuracy") is not None:
        lines.append(f"held-out accuracy {s['test_accuracy']:.0%}")
    lines.append(f"{s['n_solves']} solves in {s['wall_s']:.1f} s; hardware learning time {s['learning_time_s']:.3g} s "
                 f"(t_learn {s['t_learn_s']:.3g} s per update)")
    lines.append(f"run directory: {run_dir}/ (summary.json, metrics.csv, gates.csv, loss.png, gates.png, outputs.png)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
