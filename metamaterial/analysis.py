"""Analyses of training results, pure numpy: error modes, crossing epochs, recovery, update-direction noise.

Error modes (docs/physics.md, section 5.1): orthonormal polynomials of order 0, 1, 2 on the actual training inputs
(QR of the Vandermonde matrix {1, x, x^2}); projecting the per-point error on them gives the mean,
slope and curvature components of the error.

Classification: ``confusion_matrix`` counts points by true and predicted class.
"""

from __future__ import annotations

import numpy as np

from .errors import ValidationError


def mode_basis(x: np.ndarray, order: int = 2) -> np.ndarray:
    """[P, order+1] orthonormal columns spanning {1, x, ..., x^order} on the points ``x`` [P] (signs fixed so
    that column k has a positive coefficient on x^k)."""
    x = np.asarray(x, float).ravel()
    if len(np.unique(x)) <= order:
        raise ValidationError(f"analysis.mode_basis: need more than {order} distinct inputs (got {len(np.unique(x))})")
    q, r = np.linalg.qr(np.vander(x, order + 1, increasing=True))
    return q * np.sign(np.diag(r))[None, :]


def error_modes(x: np.ndarray, errors: np.ndarray, order: int = 2) -> np.ndarray:
    """[..., order+1] projections of per-point errors [..., P] (V) on the orthonormal modes of ``x``."""
    return np.asarray(errors, float) @ mode_basis(x, order)


def fall_epoch(epochs: np.ndarray, values: np.ndarray, fraction: float = 0.1) -> float:
    """First epoch from which |values| stays below ``fraction`` of its initial magnitude (NaN if never)."""
    v = np.abs(np.asarray(values, float))
    below = v < fraction * v[0]
    if not below[-1]:
        return float("nan")
    last_above = np.flatnonzero(~below)
    return float(epochs[last_above[-1] + 1] if len(last_above) else epochs[0])


def recovery_epoch(epochs: np.ndarray, losses: np.ndarray, reference: float, factor: float = 2.0) -> float:
    """First epoch at which the loss is within ``factor`` x ``reference`` (NaN if never)."""
    hit = np.flatnonzero(np.asarray(losses) <= factor * reference)
    return float(np.asarray(epochs)[hit[0]]) if len(hit) else float("nan")


def direction_noise(updates: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """1 - cosine similarity between each update [S, E] and the reference direction [E], or row by row with its
    own reference [S, E] (0 = same direction; 1 where either is zero)."""
    u = np.atleast_2d(np.asarray(updates, float))
    ref = np.broadcast_to(np.asarray(reference, float), u.shape)
    norms = np.linalg.norm(u, axis=1) * np.linalg.norm(ref, axis=1)
    cos = np.divide(np.einsum("se,se->s", u, ref), norms, out=np.zeros(len(u)), where=norms > 0)
    return 1.0 - cos


def quartiles(values: np.ndarray, count_key: str = "n_finite") -> dict:
    """Median and quartiles of the finite values (NaN or inf = never happened), with how many were finite under
    ``count_key``; None for each statistic when none was."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not len(v):
        return {"median": None, "q25": None, "q75": None, count_key: 0}
    q25, med, q75 = np.percentile(v, [25, 50, 75])
    return {"median": float(med), "q25": float(q25), "q75": float(q75), count_key: int(len(v))}


def spread(values: np.ndarray) -> dict:
    """Mean, sample standard deviation (0 for one value), lowest and highest of ``values`` (e.g. one accuracy per
    seed)."""
    v = np.asarray(values, float)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "min": float(v.min()),
            "max": float(v.max())}


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """int [n_classes, n_classes]: entry [t, p] counts the points of true class t predicted as class p."""
    counts = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(counts, (np.asarray(true, np.int64), np.asarray(predicted, np.int64)), 1)
    return counts
