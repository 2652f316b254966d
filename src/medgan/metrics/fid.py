"""FID through pytorch-fid's InceptionV3 (2048-d pool features), with a patient-level 95%
interval (common.intervals: delete-one-patient jackknife).
Which weights, and what happens without them, is metrics/inception.py's business; every
entry records the weights' file and sha256."""

from __future__ import annotations

import numpy as np


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature rows a and b, computed exactly
    whenever the covariance product is singular: scipy's sqrtm of a singular d x d product
    (pytorch-fid's and frd-score's path) is approximate ("Matrix is singular"; they retry with an
    offset) and slow (~10 s a call for d = 2048 on this CPU).
    - Fewer images than features on either side (every small medical set, radiomics' ~400
      features against ~80 images, and also 3,000 generated vs 300 real Inception features):
      a covariance has rank < d, so the product is singular: frechet_fast, exact in the sample space.
    - More images than features on both sides but a rank-deficient covariance (constant or
      collinear features): frechet_psd, exact through symmetric eigendecompositions.
    - Otherwise (both covariances full rank): pytorch-fid's calculate_frechet_distance."""
    if min(len(a), len(b)) <= a.shape[1]:
        return frechet_fast(a, b)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    if _rank_deficient(cov_a) or _rank_deficient(cov_b):
        return frechet_psd(a.mean(0), cov_a, b.mean(0), cov_b)
    from pytorch_fid.fid_score import calculate_frechet_distance

    return float(calculate_frechet_distance(a.mean(0), cov_a, b.mean(0), cov_b))


def _rank_deficient(cov: np.ndarray) -> bool:
    return bool(np.linalg.matrix_rank(cov, hermitian=True) < cov.shape[0])


def _nonnegative(values: np.ndarray) -> np.ndarray:
    """Eigenvalues of a PSD matrix with rounding noise (|x| below numpy's rank tolerance) set
    to 0: their square roots (~1e-8) would otherwise add up to a visible error."""
    tolerance = np.abs(values).max(initial=0.0) * len(values) * np.finfo(values.dtype).eps
    return np.where(values > tolerance, values, 0.0)


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(cov)
    return (vectors * np.sqrt(_nonnegative(values))) @ vectors.T


def frechet_psd(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """The Fréchet distance from means and covariances, exact for singular (positive
    semi-definite) covariances: tr sqrt(Sa Sb) = tr sqrt(Sa^1/2 Sb Sa^1/2), a symmetric PSD
    matrix whose eigenvalues eigh gives (written by hand: scipy's sqrtm is for general matrices)."""
    root_a = _psd_sqrt(cov_a)
    inner = root_a @ cov_b @ root_a
    trace_sqrt = np.sqrt(_nonnegative(np.linalg.eigvalsh((inner + inner.T) / 2))).sum()
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


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
    tr sqrt(Sa Sb) = sum of singular values of M = A B^T (n x m instead of d x d), taken as the
    square roots of the eigenvalues of the smaller Gram matrix (M^T M or M M^T): symmetric
    eigenvalues are ~3.5x faster than the SVD at n = 1,000 here, and the sum agrees to ~1e-10.
    Eigenvalues within rounding of zero (M has rank < its size: centring removes one, and
    fewer features than images more) are zero: their square roots would add sqrt(rounding)."""
    A = (a - a.mean(0)) / np.sqrt(len(a) - 1)
    B = (b - b.mean(0)) / np.sqrt(len(b) - 1)
    M = A @ B.T
    gram = M.T @ M if M.shape[0] >= M.shape[1] else M @ M.T
    eigenvalues = np.linalg.eigvalsh(gram)
    rounding = len(gram) * np.finfo(gram.dtype).eps * max(eigenvalues.max(initial=0.0), 0.0)
    trace_sqrt = np.sqrt(eigenvalues[eigenvalues > rounding]).sum()
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + (A * A).sum() + (B * B).sum() - 2 * trace_sqrt)


NAMES = ["fid"]


def fid_interval(real: np.ndarray, fake: np.ndarray, clusters: list, settings: dict, seed: int,
                 name: str = "fid") -> dict | None:
    """The 95% interval of the FID between these feature sets (common.intervals); also the
    calibration benchmark's code path."""
    from .common import interval

    return interval(lambda i, j: frechet_exact(real[i], fake[j]), clusters, name, settings, seed, second_order=True)


def compute(inp) -> dict:
    from .common import clusters_of, inception_features, inception_record, number

    real, fake = inception_features(inp, "FID")
    ci = fid_interval(real, fake, [clusters_of(inp, inp.real), clusters_of(inp, inp.fake)], inp.settings, inp.seed)
    return {"fid": number(frechet(real, fake), inp, ci, len(real), len(fake), **inception_record(inp))}
