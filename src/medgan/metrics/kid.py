"""KID (kernel inception distance): unbiased MMD^2 with the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3 on Inception features, averaged over random subsets whose size
fits n (min(settings.kid_subset_size, n_real, n_fake)); reported as mean ± std over subsets.
Written by hand after Bińkowski et al. 2018 (the estimator torch-fidelity and clean-fid use):
pytorch-fid has no KID."""

from __future__ import annotations

import numpy as np

from .common import clusters_of, inception_features, inception_record, interval, number

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


def kid_interval(real: np.ndarray, fake: np.ndarray, clusters: list, settings: dict, seed: int,
                 name: str = "kid", matrices: tuple | None = None) -> dict | None:
    """95% interval of the whole-set unbiased MMD^2 (common.intervals: leave-one-patient-out, so
    no set ever holds a repeated row); the calibration benchmark's code path."""
    from .common import interval

    matrices = kernels(real, fake) if matrices is None else matrices
    return interval(lambda i, j: mmd2_of_rows(matrices, i, j), clusters, name, settings, seed)


def compute(inp) -> dict:
    real, fake = inception_features(inp, "KID")
    size = min(inp.settings["kid_subset_size"], len(real), len(fake))
    matrices = kernels(real, fake)
    values = kid_subsets(real, fake, size, inp.settings["kid_subsets"], inp.seed, matrices)
    # The interval is centred on the whole-set unbiased estimate (the subset mean estimates the
    # same quantity) and built by the patient jackknife of that estimate.
    ci = kid_interval(real, fake, [clusters_of(inp, inp.real), clusters_of(inp, inp.fake)], inp.settings, inp.seed,
                      matrices=matrices)
    return {"kid": number(values.mean(), inp, ci, len(real), len(fake), std=float(values.std()),
                          subset_size=int(size), subsets=len(values), **inception_record(inp))}
