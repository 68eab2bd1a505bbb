"""Changes of what a config trains to: a result made before one is not taken for the same config after it.

A sweep keeps each point's result under a hash of its resolved config, and a run directory resumes from its
checkpoint; both assume that the config alone decides the run. A change of the training dynamics that gives
some configs other gates (a bug fixed, random draws reordered) breaks that for those configs only. Each such
change is a ``Revision`` here, with the configs it touches; every result and checkpoint records the revision it
was made under (none recorded: before revision 2). Then:

* a sweep point whose config a later revision touches gets another key (``revision_of`` enters its hash), and a
  result made before that revision is not adopted under it: the point runs again (``sweep.spec``);
* a run directory checkpointed before such a revision is not resumed (``runs.open_run_dir``): its resumed run
  would not end where an uninterrupted one does;
* a claim of ``metamaterial reproduce`` finished before a revision that touches its runs (``claims``) is run again,
  not kept (``claims.registry``);
* a run directory made before a revision that changed the circuit its config builds (``Revision.circuit``) is not
  read by eval, netlist, energy or transient either (``rundir.load_run``): its gates were trained on another circuit
  than the one this version would put them in. A revision of how a config trains alone (its random draws) leaves
  the gates of a finished run as good as they were: those commands read them.

Configs no revision touches keep their keys and results, so a revision costs only the runs it changes. Add one
when a change alters the gates some config trains to, with the narrowest ``touches`` that is still true.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .config import Config


@dataclass(frozen=True)
class Revision:
    """A change of the training dynamics: its number (the first is 2; 1 is every result before them), when, what
    changed (a few words, and where it is told), which resolved configs it gives other gates, the claims of
    ``metamaterial reproduce`` that train such a config, and whether it changed the circuit such a config builds
    (not only how it trains)."""

    number: int
    date: str
    what: str
    touches: Callable[[Config], bool]
    claims: tuple[str, ...] = ()
    circuit: bool = False


def _noisy_hinge(cfg: Config) -> bool:
    """Read noise under a hinge loss: steps past the hinge drew no clamped-phase noise before revision 2, so every
    later draw of the run moved (with no hinge every step is active, and the draws were the same)."""
    return cfg.learning.read_noise > 0 and cfg.learning.loss in ("hinge", "multiclass_hinge")


def _file_drains(cfg: Config) -> bool:
    """A network file of transistors whose drain and source differ (rd != rs): before revision 3 each edge's drain
    was its end whose name sorts first; since, it is the end the file names first (docs/physics.md 2.1)."""
    if cfg.network.kind != "file" or cfg.device.kind != "nmos":
        return False
    from .circuit import has_drain  # noqa: PLC0415 (the device is built only for a network file)
    from .experiment import build_device  # noqa: PLC0415
    return has_drain(build_device(cfg))


def _leak(cfg: Config) -> bool:
    """A leak (``learning.leak``): before revision 4 its time per step was 2 t_settle + t_learn whatever the step's
    points; since, a t_settle + t_learn slot per point the step presents (docs/physics.md 3.6)."""
    return cfg.learning.leak is not None


REVISIONS: tuple[Revision, ...] = (
    Revision(2, "2026-12-02", "read noise drawn for both phases of every step; docs/physics.md 3.9", _noisy_hinge,
             claims=("digits",)),  # its chips; the imperfection claim's read noise is under the MSE
    Revision(3, "2026-12-02", "a network file's edges take their drain from the file's order when rd != rs; "
             "docs/physics.md 2.1", _file_drains, circuit=True),
    Revision(4, "2026-12-04", "the leak's time per step is a t_settle + t_learn slot per point the step presents; "
             "docs/physics.md 3.6", _leak),
)

#: the revision results are made under now
CURRENT = REVISIONS[-1].number


def revision_of(cfg: Config) -> int:
    """The latest revision that changed how ``cfg`` trains (1: none did)."""
    return max((r.number for r in REVISIONS if r.touches(cfg)), default=1)


def changed_since(cfg: Config, made_under: int) -> Revision | None:
    """The first revision after ``made_under`` that changed how ``cfg`` trains (None: a result made under
    ``made_under`` is still what ``cfg`` trains to)."""
    return next((r for r in REVISIONS if r.number > made_under and r.touches(cfg)), None)


def circuit_changed_since(cfg: Config, made_under: int) -> Revision | None:
    """The first revision after ``made_under`` that changed the circuit ``cfg`` builds (None: gates trained under
    ``made_under`` still fit the circuit this version builds for ``cfg``)."""
    return next((r for r in REVISIONS if r.number > made_under and r.circuit and r.touches(cfg)), None)


def claim_changed_since(key: str, made_under: int) -> Revision | None:
    """The first revision after ``made_under`` that changed a run of claim ``key`` (None: none did)."""
    return next((r for r in REVISIONS if r.number > made_under and key in r.claims), None)


__all__ = ["CURRENT", "REVISIONS", "Revision", "changed_since", "circuit_changed_since", "claim_changed_since",
           "revision_of"]
