"""Fréchet Radiomics Distance with frd-score (v1) on pyradiomics-bhklab: weights-free, offline.

frd-score v1's default z-scores both sets with the real set's statistics only: a wavelet
feature with near-zero (not zero) spread among real images then reaches z ~ 1e14 for generated
images and d_F^2 ~ 1e17-1e20, whatever else the images do. We use frd-score's
`norm_ref='joint'` instead (mean/std of real and generated features together), rather than
dropping features whose real spread looks negligible: joint statistics bound every feature's
contribution (a feature constant in one set and different in the other gives |z| ~ 1) without
a threshold to choose, and a generator that varies what real images hold constant still
shows. `value` = d_F^2 (>= 0; 0 for identical sets, never -inf) and `log_value` = the
number frd-score itself reports (log d_F^2) when d_F^2 > 0. The steps are frd-score's own
(extractor, NaN-row and NaN/Inf-column filtering, joint z-score), applied to cached per-image
features so real sets are extracted once and the patient-level interval is affordable; the Fréchet
distance is fid.frechet's, exact where the covariance product is singular (fewer images than
features, the usual case here) instead of frd-score's approximate scipy sqrtm. Tests check the value
against `compute_frd(..., norm_ref='joint')` on the same files and against scipy's sqrtm on a
well-conditioned case.
"""

from __future__ import annotations

import math

import numpy as np

from . import fid
from .common import MetricSkipped, clusters_of, interval, number

NAMES = ["frd"]
NORMALISATION = "joint z-score (frd-score norm_ref='joint')"


def normalised(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """frd-score v1 with norm_ref='joint': drop images with NaN features, z-score both sets with
    the mean/std of both together (range [0, 1]), drop feature columns that became NaN/Inf."""
    from frd_score.frd import z_score_normalize

    real = real[~np.isnan(real).any(1)].astype(np.float32)
    fake = fake[~np.isnan(fake).any(1)].astype(np.float32)
    joint = np.concatenate([real, fake])
    sets = [z_score_normalize(x, 0.0, 1.0, base_distribution=joint, replace_nan=False,
                              handle_std_zero=False) for x in (real, fake)]
    bad = np.zeros(real.shape[1], bool)
    for x in sets:
        bad |= ~np.isfinite(x).all(0)
    return sets[0][:, ~bad].astype(np.float64), sets[1][:, ~bad].astype(np.float64)


def frechet_squared(real: np.ndarray, fake: np.ndarray) -> float:
    """d_F^2 of the normalised features, exact: with ~400 radiomics features and fewer images the
    covariance product is singular, where frd-score's scipy sqrtm is approximate (fid.frechet)."""
    return fid.frechet(real, fake)


def compute(inp) -> dict:
    raw_real, raw_fake = inp.features.get("radiomics", inp.real), inp.features.get("radiomics", inp.fake)
    keep_real, keep_fake = ~np.isnan(raw_real).any(1), ~np.isnan(raw_fake).any(1)  # as normalised() drops
    real, fake = normalised(raw_real, raw_fake)
    if min(len(real), len(fake)) < 2:
        raise MetricSkipped("FRD needs at least 2 real and 2 generated images with radiomics features")
    value = max(frechet_squared(real, fake), 0.0)
    ci = interval(lambda i, j: max(fid.frechet_exact(real[i], fake[j]), 0.0),
                  [clusters_of(inp, inp.real)[keep_real], clusters_of(inp, inp.fake)[keep_fake]],
                  "frd", inp.settings, inp.seed, second_order=True)
    extra = {"scale": "d_F^2 (frd-score v1 reports log of this)", "normalisation": NORMALISATION,
             "features": f"radiomics-{real.shape[1]}"}
    if value > 0:
        extra["log_value"] = math.log(value)
    return {"frd": number(value, inp, ci, len(real), len(fake), **extra)}
