"""Reference classifiers on the 8x8 digits split of configs/digits.yaml: how far a linear score gets.

The network of configs/digits.yaml has no hidden layer, so its class scores are close to linear in the pixels
(docs/physics.md 4.4). This prints what scikit-learn's linear classifiers (and, for contrast, an RBF-kernel SVM)
reach on the same pixels (pixel/16) and the same stratified split (random_state 0: 1,437 training, 360 held-out
images). Nothing here chooses a setting of ours: the held-out figures are a reference for the targets only.

    python scripts/digits_baselines.py
"""

from __future__ import annotations

from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC, LinearSVC

MODELS = {
    **{f"logistic regression, C = {c:g} (one linear score per class, as the network)":
       LogisticRegression(C=c, max_iter=10_000) for c in (0.1, 1, 10, 100)},
    **{f"linear SVM, C = {c:g} (one linear score per class)": LinearSVC(C=c, max_iter=200_000) for c in (0.1, 1, 10)},
    **{f"linear-kernel SVM, C = {c:g} (one vs one: 45 pairwise planes)": SVC(kernel="linear", C=c)
       for c in (0.1, 1, 10)},
    "RBF-kernel SVM, C = 1 (nonlinear)": SVC(),
}


def main() -> None:
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x / 16, y, test_size=0.2, stratify=y, random_state=0)
    print(f"held-out accuracy on the split of configs/digits.yaml ({len(y_train)} training, {len(y_test)} "
          "held-out images):")
    for name, model in MODELS.items():
        accuracy = model.fit(x_train, y_train).score(x_test, y_test)
        print(f"  {accuracy:.4f} ({round(accuracy * len(y_test))} of {len(y_test)})  {name}")


if __name__ == "__main__":
    main()
