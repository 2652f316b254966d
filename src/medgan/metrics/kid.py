"""KID (kernel inception distance): unbiased MMD^2 with the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3 on Inception features, averaged over random subsets whose size
fits n (min(settings.kid_subset_size, n_real, n_fake)); reported as mean ± std over subsets.
Written by hand after Bińkowski et al. 2018 (the estimator torch-fidelity and clean-fid use):
pytorch-fid has no KID."""

from __future__ import annotations

import numpy as np

from .common import bootstrap_ci, inception_features, inception_record, number

NAMES = ["kid"]


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def kid_subsets(real: np.ndarray, fake: np.ndarray, subset_size: int, n_subsets: int,
                seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([polynomial_mmd2(real[rng.choice(len(real), subset_size, replace=False)],
                                     fake[rng.choice(len(fake), subset_size, replace=False)])
                     for _ in range(n_subsets)])


def compute(inp) -> dict:
    real, fake = inception_features(inp, "KID")
    size = min(inp.settings["kid_subset_size"], len(real), len(fake))
    values = kid_subsets(real, fake, size, inp.settings["kid_subsets"], inp.seed)
    # CI: bootstrap over images of the whole-set unbiased estimate (duplicates would bias
    # the within-set terms, so each replicate drops repeated rows).
    ci = bootstrap_ci(lambda i, j: polynomial_mmd2(real[np.unique(i)], fake[np.unique(j)]),
                      (len(real), len(fake)), inp, "kid")
    return {"kid": number(values.mean(), inp, ci, len(real), len(fake), std=float(values.std()),
                          subset_size=int(size), subsets=len(values), **inception_record(inp))}
