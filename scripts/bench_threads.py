"""Native training in threads: two trainings side by side in two threads against the same two one after the other.

The native solver's compiled loop and dense Newton release the GIL (numba ``nogil``), so two trainings in two
threads of one process run at once on two cores; holding it, they took turns. This script
trains a config's replica from two seeds (``--config``, default configs/regression.yaml on native, ``--epochs``),
in ``--rounds`` rounds taking turns: once one seed after the other in this thread, once both at once in two
threads; each training on its own fresh trainer, after one warm-up training that compiles the kernels. It prints
the wall and CPU time of each (medians over the rounds), the ratio sequential / threaded (2 on two free cores; 1
if the GIL were held), and whether the threads' gates equal the sequential ones to the bit.

    python scripts/bench_threads.py [--config configs/regression.yaml] [--epochs 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from metamaterial.config import with_backend  # noqa: E402
from metamaterial.configfile import load_config  # noqa: E402
from metamaterial.experiment import build, initial_controls, make_trainer  # noqa: E402


def train(setup, seed: int, epochs: int) -> np.ndarray:
    """The gates one replica of ``setup`` ends with after ``epochs`` epochs from ``seed``, on a fresh trainer."""
    trainer = make_trainer(setup, epochs=epochs, eval_every=epochs, record_every=epochs)
    rng = np.random.default_rng(seed)
    state = trainer.run(trainer.init_state(initial_controls(setup, rng)[None], rng, keep_trajectory=False))
    trainer.solver.close()
    return state.controls[0]


def timed(work) -> tuple[float, float, object]:
    """(wall s, CPU s of the whole process, result) of ``work()``."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = work()
    return time.perf_counter() - w0, time.process_time() - c0, out


def sequential(setup, epochs: int) -> list[np.ndarray]:
    return [train(setup, seed, epochs) for seed in (0, 1)]


def threaded(setup, epochs: int) -> list[np.ndarray]:
    out: list[np.ndarray | None] = [None, None]

    def run(k: int) -> None:
        out[k] = train(setup, k, epochs)

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "regression.yaml"))
    parser.add_argument("--epochs", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    setup = build(with_backend(load_config(args.config), "native"))
    train(setup, 0, 10)  # compiles (or loads) the kernels before any clock starts
    times: dict[str, list[tuple[float, float]]] = {"sequential": [], "threads": []}
    same = True
    for r in range(args.rounds):
        order = ("sequential", "threads") if r % 2 == 0 else ("threads", "sequential")
        gates = {}
        for kind in order:
            wall, cpu, gates[kind] = timed(lambda k=kind: (sequential if k == "sequential" else threaded)(
                setup, args.epochs))
            times[kind].append((wall, cpu))
        same &= all(np.array_equal(a, b) for a, b in zip(gates["sequential"], gates["threads"]))
    med = {k: np.median(np.array(v), axis=0) for k, v in times.items()}
    print(f"{Path(args.config).name} on native, two trainings of {args.epochs} epochs (seeds 0 and 1), median of "
          f"{args.rounds} rounds taking turns:")
    for kind, (wall, cpu) in med.items():
        print(f"  {kind:10s}  wall {wall:.3f} s   CPU {cpu:.3f} s")
    print(f"sequential / threads, wall: {med['sequential'][0] / med['threads'][0]:.2f} (2 on two free cores; 1 if "
          f"the trainings took turns); gates equal to the bit: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
