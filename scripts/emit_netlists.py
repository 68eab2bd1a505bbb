"""Regenerate netlists/<config>/ for every shipped config in configs/ (free_k.cir, clamped_k.cir per point).

Run after changing the emitter or a config: `make netlists`. tests/test_netlists.py fails when these are stale.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from metamaterial.configfile import load_config  # noqa: E402

try:
    from metamaterial.points import write_netlists  # noqa: E402
except ImportError:  # a checkout from before the netlist command moved to metamaterial.points
    from metamaterial.experiment import write_netlists  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    for cfg_path in sorted((ROOT / "configs").glob("*.yaml")):
        out = ROOT / "netlists" / cfg_path.stem
        shutil.rmtree(out, ignore_errors=True)
        paths = write_netlists(load_config(cfg_path), out)[0]  # as `metamaterial netlist CONFIG --out DIR` writes them
        print(f"{cfg_path.relative_to(ROOT)}: {len(paths)} netlists -> {out.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
