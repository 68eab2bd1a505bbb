"""PNG figures of a run: loss curve, controls over time, outputs against targets. Pure functions of results."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .devices import EdgeParams
from .tasks import Task


def _pyplot():
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    return plt


def plot_run(run_dir: Path, state, task: Task, outputs: np.ndarray, device: EdgeParams) -> list[Path]:
    """Write loss.png, gates.png and outputs.png into ``run_dir``; return their paths."""
    plt = _pyplot()
    paths = []
    hist = state.history
    epochs = np.array([h["epoch"] for h in hist])
    loss = np.array([h["loss"] for h in hist])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.semilogy(np.maximum(epochs, 0), np.maximum(loss, 1e-16), lw=1.5)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training MSE (V$^2$)")
    ax.set_title(f"{task.name}: loss")
    ax.grid(alpha=0.3)
    paths.append(_save(fig, run_dir / "loss.png", plt))

    traj = np.array(state.trajectory)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(state.trajectory_epochs, traj, lw=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel(device.control_label)
    ax.set_title(f"{task.name}: {traj.shape[1] if traj.ndim == 2 else 0} edges")
    ax.grid(alpha=0.3)
    paths.append(_save(fig, run_dir / "gates.png", plt))

    fig, ax = plt.subplots(figsize=(5, 3.5))
    if task.n_inputs == 1:
        x = task.inputs[:, 0]
        for k in range(task.n_outputs):
            ax.plot(x, task.targets[:, k], "o", mfc="none", label=f"target {k}")
            ax.plot(x, outputs[:, k], "x-", label=f"output {k}")
        ax.set_xlabel("input (V)")
    else:
        idx = np.arange(task.n_points)
        for k in range(task.n_outputs):
            ax.plot(idx, task.targets[:, k], "o", mfc="none", label=f"target {k}")
            ax.plot(idx, outputs[:, k], "x", label=f"output {k}")
        if task.decode == "nearest" and task.levels is not None and len(task.levels) == 2:
            ax.axhline(task.levels.mean(), color="gray", ls="--", lw=1, label="threshold")
        ax.set_xlabel("data point")
    ax.set_ylabel("output (V)")
    ax.set_title(f"{task.name}: outputs vs targets")
    if task.n_outputs <= 4:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    paths.append(_save(fig, run_dir / "outputs.png", plt))
    return paths


def _save(fig, path: Path, plt) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
