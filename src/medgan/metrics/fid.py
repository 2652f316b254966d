"""FID through pytorch-fid's InceptionV3 (2048-d pool features), with a bootstrap CI.
Which weights, and what happens without them, is metrics/inception.py's business; every
entry records the weights' file and sha256."""

from __future__ import annotations

import numpy as np


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature rows a and b. With fewer images
    than features (every small medical set: covariances of rank < 2048) frechet_fast gives it
    exactly; pytorch-fid's scipy sqrtm of the singular d x d product is approximate there ("Matrix
    is singular"; it retries with an offset) and takes ~10 s a call on this CPU. With more
    images than features: pytorch-fid's calculate_frechet_distance."""
    if max(len(a), len(b)) <= a.shape[1]:
        return frechet_fast(a, b)
    from pytorch_fid.fid_score import calculate_frechet_distance

    return float(calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False),
                                            b.mean(0), np.cov(b, rowvar=False)))


def frechet_fast(a: np.ndarray, b: np.ndarray) -> float:
    """The same distance computed exactly in the sample space, for bootstrap replicates
    (written by hand: no library has it). With A = centred(a)/sqrt(n-1), B likewise,
    tr sqrt(Sa Sb) = sum of singular values of A B^T (n x m instead of d x d)."""
    A = (a - a.mean(0)) / np.sqrt(len(a) - 1)
    B = (b - b.mean(0)) / np.sqrt(len(b) - 1)
    trace_sqrt = np.linalg.svd(A @ B.T, compute_uv=False).sum()
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + (A * A).sum() + (B * B).sum() - 2 * trace_sqrt)


NAMES = ["fid"]


def compute(inp) -> dict:
    from .common import bootstrap_ci, inception_features, inception_record, number

    real, fake = inception_features(inp, "FID")
    ci = bootstrap_ci(lambda i, j: frechet_fast(real[i], fake[j]), (len(real), len(fake)), inp, "fid")
    return {"fid": number(frechet(real, fake), inp, ci, len(real), len(fake), **inception_record(inp))}
