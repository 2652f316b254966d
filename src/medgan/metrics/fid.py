"""FID through pytorch-fid's InceptionV3 (2048-d pool features), with a patient-level 95%
interval (common.intervals: delete-one-patient jackknife).
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


def frechet_exact(a: np.ndarray, b: np.ndarray) -> float:
    """The exact distance by whichever form is cheaper: the sample space (frechet_fast) when a
    set has fewer images than features, else the feature space through symmetric eigenvalues,
    tr sqrt(Sa Sb) = sum sqrt(eig(Sa^1/2 Sb Sa^1/2)) (written by hand: scipy's sqrtm of the
    non-symmetric product is slower and approximate). Used for the interval's leave-outs."""
    if min(len(a), len(b)) <= a.shape[1]:
        return frechet_fast(a, b)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(sa)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(root @ sb @ root), 0, None)).sum()
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + np.trace(sa) + np.trace(sb) - 2 * trace_sqrt)


def frechet_fast(a: np.ndarray, b: np.ndarray) -> float:
    """The same distance computed exactly in the sample space, for the interval's leave-outs
    (written by hand: no library has it). With A = centred(a)/sqrt(n-1), B likewise,
    tr sqrt(Sa Sb) = sum of singular values of A B^T (n x m instead of d x d)."""
    A = (a - a.mean(0)) / np.sqrt(len(a) - 1)
    B = (b - b.mean(0)) / np.sqrt(len(b) - 1)
    trace_sqrt = np.linalg.svd(A @ B.T, compute_uv=False).sum()
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + (A * A).sum() + (B * B).sum() - 2 * trace_sqrt)


NAMES = ["fid"]


def fid_interval(real: np.ndarray, fake: np.ndarray, clusters: list, settings: dict, seed: int,
                 name: str = "fid") -> dict | None:
    """The 95% interval of the FID between these feature sets (common.intervals); also the
    calibration benchmark's code path."""
    from .common import interval

    return interval(lambda i, j: frechet_exact(real[i], fake[j]), clusters, name, settings, seed)


def compute(inp) -> dict:
    from .common import clusters_of, inception_features, inception_record, number

    real, fake = inception_features(inp, "FID")
    ci = fid_interval(real, fake, [clusters_of(inp, inp.real), clusters_of(inp, inp.fake)], inp.settings, inp.seed)
    return {"fid": number(frechet(real, fake), inp, ci, len(real), len(fake), **inception_record(inp))}
