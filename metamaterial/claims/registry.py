"""The claims, listed explicitly, and ``reproduce``: run them, record failures, write REPORT.md."""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from ..errors import ConfigError, MetamaterialError
from . import damage, desync, imperfection, learning_time, modes, xor
from .base import ClaimResult, Context
from .report import write_report

CLAIMS = {m.KEY: m for m in (xor, modes, damage, desync, learning_time, imperfection)}


def reproduce(keys: list[str] | None, out: Path, quick: bool = False, backend: str = "native",
              progress: bool = True, log=print) -> tuple[list[ClaimResult], Path, list[str]]:
    """Run the named claims (all when empty); returns results, the report path and the keys that crashed.

    A claim that raises is recorded as "not reproduced" with its error and the others still run.
    """
    keys = keys or list(CLAIMS)
    unknown = [k for k in keys if k not in CLAIMS]
    if unknown:
        raise ConfigError(f"reproduce: unknown claim(s) {unknown}; choose from {sorted(CLAIMS)}")
    ctx = Context(Path(out), quick=quick, backend=backend, progress=progress)
    ctx.out.mkdir(parents=True, exist_ok=True)
    results, crashed = [], []
    t0 = time.perf_counter()
    for i, key in enumerate(keys, 1):
        module = CLAIMS[key]
        log(f"[{i}/{len(keys)}] {module.TITLE} ...")
        t = time.perf_counter()
        try:
            result = module.run(ctx)
        except (MetamaterialError, ArithmeticError, ValueError, RuntimeError) as err:
            crashed.append(key)
            (ctx.out / f"{key}_error.txt").write_text(traceback.format_exc())
            result = ClaimResult(key, module.TITLE, module.PAPER, "not reproduced",
                                 f"the experiment failed: {str(err).splitlines()[0]} (see {key}_error.txt)")
        result.measured["run_s"] = round(time.perf_counter() - t, 1)
        results.append(result)
        log(f"      {result.verdict}: {result.reason} ({result.measured['run_s']:.0f} s)")
    report = write_report(ctx.out, results, quick, time.perf_counter() - t0)
    return results, report, crashed
