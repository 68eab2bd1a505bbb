"""What every claim experiment receives (``Context``) and returns (``ClaimResult``), and shared helpers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import Config
from ..configfile import load_config
from ..plots import _pyplot as pyplot
from ..plots import _save
from ..runfiles import json_text
from ..runs import one_replica, train_replicas

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@dataclass(frozen=True)
class Context:
    """Where to write, how big to go, which backend runs the many-seed ensembles."""

    out: Path
    quick: bool = False
    backend: str = "native"
    progress: bool = False

    def seeds(self, full: int, quick: int) -> list[int]:
        return list(range(quick if self.quick else full))

    def path(self, name: str) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        return self.out / name


@dataclass
class ClaimResult:
    """One claim: the paper's statement, what we measured, the verdict and the evidence files.

    ``profiles`` names each settings profile the claim ran (e.g. "idealized", "hardware") with what it is (config,
    device law, gate range...); a claim may run one or several. ``seeds`` says which seeds chose any tuned setting
    and which seeds the reported numbers come from (held out). REPORT.md shows both next to the paper's statement.
    """

    key: str
    title: str
    paper: str
    verdict: str
    reason: str
    measured: dict = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)
    seeds: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in ("reproduced", "partly", "not reproduced"):
            raise ValueError(f"ClaimResult.verdict: unknown verdict {self.verdict!r}")


def claim_config(name: str, overrides: list[str] | None = None) -> Config:
    """A shipped config (``configs/<name>.yaml``) with overrides."""
    return load_config(CONFIGS / f"{name}.yaml", overrides or [])


def train_single(cfg: Config, backend: str):
    """One run (the shipped single-run path) returning (setup, trainer, the run as ``runs.one_replica`` reads it)."""
    done = train_replicas(cfg, [cfg.seed], backend=backend)
    return done.setup, done.trainer, one_replica(done.state)


def backend_check(cfg: Config) -> dict:
    """``cfg`` trained on ngspice, then on native: the largest control difference, both final losses and ngspice's
    wall time (s)."""
    t = time.perf_counter()
    _, _, ng = train_single(cfg, "ngspice")
    ng_s = time.perf_counter() - t
    _, _, nat = train_single(cfg, "native")
    return {"max_control_diff": float(np.max(np.abs(ng.controls - nat.controls))),
            "loss_ngspice": ng.history[-1]["loss"], "loss_native": nat.history[-1]["loss"], "ngspice_s": ng_s}


def save_json(ctx: Context, name: str, payload: dict) -> str:
    ctx.path(name).write_text(json_text(payload))
    return name


def save_figure(ctx: Context, fig, name: str, dpi: int = 100) -> str:
    """Lay out, write ``ctx.out/name`` as PNG, close; returns ``name`` for ``ClaimResult.figures``."""
    _save(fig, ctx.path(name), pyplot(), dpi)
    return name
