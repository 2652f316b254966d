"""KID (kernel inception distance): unbiased MMD^2 with the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3 on Inception features, averaged over random subsets whose size
fits n (min(settings.kid_subset_size, n_real, n_fake)); reported as mean ± std over subsets.
Written by hand after Bińkowski et al. 2018 (the estimator torch-fidelity and clean-fid use):
pytorch-fid has no KID."""

from __future__ import annotations

import numpy as np

from .common import bootstrap_ci, inception_features, inception_record, number

NAMES = ["kid"]


def kernels(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k(x, x'), k(y, y'), k(x, y) for every pair: computed once, subsets and bootstrap
    replicates index them (rows i, j) instead of multiplying features again."""
    d = x.shape[1]
    return (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3


def mmd2_of_rows(k: tuple[np.ndarray, np.ndarray, np.ndarray], i: np.ndarray, j: np.ndarray) -> float:
    """Unbiased MMD^2 of real rows i and generated rows j (no repeats) from kernels(real, fake)."""
    kxx, kyy, kxy = k[0][np.ix_(i, i)], k[1][np.ix_(j, j)], k[2][np.ix_(i, j)]
    m, n = len(i), len(j)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    return mmd2_of_rows(kernels(x, y), np.arange(len(x)), np.arange(len(y)))


def kid_subsets(real: np.ndarray, fake: np.ndarray, subset_size: int, n_subsets: int,
                seed: int, k: tuple | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = kernels(real, fake) if k is None else k
    return np.array([mmd2_of_rows(k, rng.choice(len(real), subset_size, replace=False),
                                  rng.choice(len(fake), subset_size, replace=False))
                     for _ in range(n_subsets)])


def compute(inp) -> dict:
    real, fake = inception_features(inp, "KID")
    size = min(inp.settings["kid_subset_size"], len(real), len(fake))
    k = kernels(real, fake)
    values = kid_subsets(real, fake, size, inp.settings["kid_subsets"], inp.seed, k)
    # CI: bootstrap over images of the whole-set unbiased estimate (duplicates would bias
    # the within-set terms, so each replicate drops repeated rows).
    ci = bootstrap_ci(lambda i, j: mmd2_of_rows(k, np.unique(i), np.unique(j)),
                      (len(real), len(fake)), inp, "kid")
    return {"kid": number(values.mean(), inp, ci, len(real), len(fake), std=float(values.std()),
                          subset_size=int(size), subsets=len(values), **inception_record(inp))}
