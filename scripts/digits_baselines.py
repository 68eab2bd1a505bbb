"""Reference classifiers on the 8x8 digits split of configs/digits.yaml: how far a linear or additive score gets.

The network of configs/digits.yaml has no hidden layer, so its class scores are close to linear in the pixels
(docs/physics.md 4.4); what its transistors add is a nonlinearity of each pixel on its own (an edge's current
depends on its pixel and its output node, and saturates), not a product of pixels. This prints what
scikit-learn's linear classifiers reach on the same pixels (pixel/16 V) and the same stratified split
(random_state 0: 1,437 training, 360 held-out images), then on per-pixel nonlinear features (an additive score:
any function of each pixel on its own, summed), and, for contrast, an RBF-kernel SVM, which mixes pixels: the
references of ``metamaterial reproduce digits`` (``claims.digits.references``). Nothing here chooses a setting of
ours: the held-out figures are a reference for the targets only.

    python scripts/digits_baselines.py
"""

from __future__ import annotations

import argparse

from metamaterial.claims.base import claim_config
from metamaterial.claims.digits import references
from metamaterial.experiment import build


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    task = build(claim_config("digits")).task
    n = len(task.test_classes)
    print(f"held-out accuracy on the split of configs/digits.yaml ({task.n_points} training, {n} held-out images); "
          "one score per class, linear in the features (C picked on the held-out images: upper references):")
    for name, r in references(task).items():
        scores = ", ".join(f"{s:.4f}" for s in r.get("scores", {}).values())
        print(f"  {name}: best {r['best']:.4f} ({round(r['best'] * n)} of {n}"
              + (f", {r['best_model']}); all: {scores}" if scores else ")"))


if __name__ == "__main__":
    main()
