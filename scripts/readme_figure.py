"""The README figure: XOR and nonlinear regression trained on ngspice from the shipped configs.

    python scripts/readme_figure.py        # trains both (about 30 s), writes docs/figures/overview.png
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from metamaterial.configfile import load_config  # noqa: E402
from metamaterial.experiment import build  # noqa: E402
from metamaterial.runs import train_run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {}
    for name in ("xor", "regression"):
        out = ROOT / "runs" / f"figure_{name}"
        shutil.rmtree(out, ignore_errors=True)
        cfg = load_config(ROOT / "configs" / f"{name}.yaml")
        runs[name] = (train_run(cfg, out, progress=False, plots=False), build(cfg).task)
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.5))
    (res, task) = runs["xor"]
    out = np.array(res.summary["outputs_v"])[:, 0]
    ax = axes[0, 0]
    labels = ["00", "01", "10", "11"]
    ax.bar(labels, 1e3 * out, color=["C0" if c == 0 else "C3" for c in task.classes])
    ax.scatter(labels, 1e3 * task.targets[:, 0], marker="_", s=600, color="k", label="target")
    ax.axhline(1e3 * task.levels.mean(), ls="--", color="gray", label="threshold")
    ax.set_ylabel("output V(2,2) - V(0,0) (mV)")
    ax.set_title(f"XOR, ngspice: smallest margin {1e3 * res.summary['min_margin_v']:.0f} mV")
    ax.legend(fontsize=8)
    (res_r, task_r) = runs["regression"]
    ax = axes[0, 1]
    ax.plot(task_r.inputs[:, 0], task_r.targets[:, 0], "ko", mfc="none", label="target")
    ax.plot(task_r.inputs[:, 0], np.array(res_r.summary["outputs_v"])[:, 0], "C1x-", label="trained network")
    ax.set_xlabel("input (V)")
    ax.set_ylabel("output (V)")
    ax.set_title(f"Regression, ngspice: MSE {res_r.summary['final_loss']:.1e} V$^2$")
    ax.legend(fontsize=8)
    for ax, (res_, _) in zip(axes[1], (runs["xor"], runs["regression"])):
        hist = res_.state.history
        ax.semilogy([h["epoch"] for h in hist], [h["loss"] for h in hist])
        ax.set_xlabel("epoch")
        ax.set_ylabel("training MSE (V$^2$)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = ROOT / "docs" / "figures" / "overview.png"
    fig.savefig(path, dpi=100)
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
