"""Reference classifiers on the 8x8 digits split of configs/digits.yaml: how far a linear or additive score gets.

The network of configs/digits.yaml has no hidden layer, so its class scores are close to linear in the pixels
(docs/physics.md 4.4); what its transistors add is a nonlinearity of each pixel on its own (an edge's current
depends on its pixel and its output node, and saturates), not a product of pixels. This prints what
scikit-learn's linear classifiers reach on the same pixels (pixel/16) and the same stratified split
(random_state 0: 1,437 training, 360 held-out images), then the same classifiers on per-pixel nonlinear features
(an additive score: any function of each pixel, summed), and, for contrast, an RBF-kernel SVM, which mixes
pixels. Nothing here chooses a setting of ours: the held-out figures are a reference for the targets only.

    python scripts/digits_baselines.py
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC, LinearSVC

#: per-pixel feature maps of x = pixel/16 in [0, 1]: each makes a linear classifier an additive one
FEATURES = {
    "pixels": lambda x: x,
    "pixels and their squares": lambda x: np.hstack([x, x ** 2]),
    "ramps max(0, x - t), t = 0, 1/4, 1/2, 3/4": lambda x: np.hstack([np.maximum(x - t, 0) for t in (0, .25, .5, .75)]),
    "level indicators x >= k/16, k = 1, 3, ..., 15":
        lambda x: np.hstack([(x >= k / 16) * 1.0 for k in range(1, 17, 2)]),
}
LINEAR = {
    **{f"logistic regression, C = {c:g}": (lambda c=c: LogisticRegression(C=c, max_iter=20_000)) for c in (0.1, 1, 10)},
    **{f"linear SVM, C = {c:g}": (lambda c=c: LinearSVC(C=c, max_iter=200_000)) for c in (0.01, 0.1, 1)},
}
OTHERS = {
    "linear-kernel SVM, C = 1, pixels (one vs one: 45 pairwise planes)": SVC(kernel="linear", C=1),
    "RBF-kernel SVM, C = 1, pixels (mixes pixels)": SVC(),
}


def main() -> None:
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x / 16, y, test_size=0.2, stratify=y, random_state=0)
    print(f"held-out accuracy on the split of configs/digits.yaml ({len(y_train)} training, {len(y_test)} "
          "held-out images); one score per class, linear in the features:")
    warnings.simplefilter("ignore", ConvergenceWarning)
    for fname, feature in FEATURES.items():
        a, b = feature(x_train), feature(x_test)
        scores = {name: make().fit(a, y_train).score(b, y_test) for name, make in LINEAR.items()}
        best = max(scores, key=scores.get)
        print(f"  {fname}: best {scores[best]:.4f} ({round(scores[best] * len(y_test))} of {len(y_test)}, "
              f"{best}); all: {', '.join(f'{s:.4f}' for s in scores.values())}")
    for name, model in OTHERS.items():
        accuracy = model.fit(x_train, y_train).score(x_test, y_test)
        print(f"  {accuracy:.4f} ({round(accuracy * len(y_test))} of {len(y_test)})  {name}")


if __name__ == "__main__":
    main()
