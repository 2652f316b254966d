"""Fréchet Radiomics Distance with frd-score (v1) on pyradiomics-bhklab: weights-free, offline.

frd-score's v1 value is log(d_F^2), which is -inf for identical sets and hard to read in a
table. We report `value` = d_F^2 itself (>= 0, lower is better) and `log_value` = frd-score's
log(d_F^2) when d_F^2 > 0. The steps are frd-score's own (its feature extractor, its z-score
normalisation with the real set as reference, its NaN/Inf filtering, its Fréchet distance),
applied to cached per-image features so that real sets are extracted once and a bootstrap
CI is affordable; tests check the value equals `compute_frd` on the same files.
"""

from __future__ import annotations

import math

import numpy as np

from . import fid
from .common import MetricSkipped, bootstrap_ci, number

NAMES = ["frd"]


def normalised(real: np.ndarray, fake: np.ndarray,
               reference: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """frd-score v1: drop images with NaN features, z-score both sets with the real set's
    mean/std (norm_ref d1, range [0, 1]), drop feature columns that became NaN/Inf.
    `reference` replaces the real set as the source of mean/std (see `reference_set`)."""
    from frd_score.frd import z_score_normalize

    real = real[~np.isnan(real).any(1)].astype(np.float32)
    fake = fake[~np.isnan(fake).any(1)].astype(np.float32)
    base = real if reference is None else reference[~np.isnan(reference).any(1)].astype(np.float32)
    sets = [z_score_normalize(x, 0.0, 1.0, base_distribution=base, replace_nan=False,
                              handle_std_zero=False) for x in (real, fake)]
    bad = np.zeros(real.shape[1], bool)
    for x in sets:
        bad |= ~np.isfinite(x).all(0)
    return sets[0][:, ~bad].astype(np.float64), sets[1][:, ~bad].astype(np.float64)


def frechet_squared(real: np.ndarray, fake: np.ndarray) -> float:
    from frd_score.frd import calculate_frechet_distance

    return float(calculate_frechet_distance(real.mean(0), np.cov(real, rowvar=False),
                                            fake.mean(0), np.cov(fake, rowvar=False)))


def reference_features(inp) -> np.ndarray | None:
    """The baseline's halves are z-scored with the whole held-out real set — the reference the
    experiments' rows use — so that baseline and experiment values are on one scale (half of
    a small test set alone, often a single patient, would inflate the baseline)."""
    parent = inp.real.parent
    return None if parent is None else inp.features.get("radiomics", parent)


def compute(inp) -> dict:
    real, fake = normalised(inp.features.get("radiomics", inp.real), inp.features.get("radiomics", inp.fake),
                            reference_features(inp))
    if min(len(real), len(fake)) < 2:
        raise MetricSkipped("FRD needs at least 2 real and 2 generated images with radiomics features")
    value = max(frechet_squared(real, fake), 0.0)
    ci = bootstrap_ci(lambda i, j: max(fid.frechet_fast(real[i], fake[j]), 0.0),
                      (len(real), len(fake)), inp, "frd")
    extra = {"scale": "d_F^2 (frd-score v1 reports log of this)", "features": f"radiomics-{real.shape[1]}"}
    if value > 0:
        extra["log_value"] = math.log(value)
    return {"frd": number(value, inp, ci, len(real), len(fake), **extra)}
