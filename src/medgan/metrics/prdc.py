"""Precision, recall, density and coverage (Naeem et al. 2020) with the `prdc` package, k from
settings (default 5), on Inception features when available, else on radiomics features —
each entry says which in `features`."""

from __future__ import annotations

import contextlib
import io

import numpy as np

from .common import MetricSkipped, clusters_of, inception_record, intervals, number

PARTS = ["precision", "recall", "density", "coverage"]
NAMES = [f"prdc_{part}" for part in PARTS]


def feature_pair(inp) -> tuple[np.ndarray, np.ndarray, dict]:
    """Inception features if the weights are there, else frd-score's radiomics features
    (jointly z-scored as FRD does, so that no feature dominates the distances)."""
    if inp.features.inception_available() is None:
        return inp.features.get("inception", inp.real), inp.features.get("inception", inp.fake), inception_record(inp)
    from .frd import normalised

    real, fake = normalised(inp.features.get("radiomics", inp.real), inp.features.get("radiomics", inp.fake))
    return real, fake, {"features": f"radiomics-{real.shape[1]} (no Inception weights)"}


def prdc_values(real: np.ndarray, fake: np.ndarray, k: int) -> dict:
    from prdc import compute_prdc

    with contextlib.redirect_stdout(io.StringIO()):  # it prints the set sizes
        return compute_prdc(real_features=real, fake_features=fake, nearest_k=k)


def compute(inp) -> dict:
    k = inp.settings["prdc_k"]
    real, fake, kind = feature_pair(inp)
    if min(len(real), len(fake)) < k + 2:
        raise MetricSkipped(f"PRDC with k={k} needs at least {k + 2} real and {k + 2} generated images")
    values = prdc_values(real, fake, k)

    cis = prdc_intervals(real, fake, k, [clusters_of(inp, inp.real), clusters_of(inp, inp.fake)],
                         inp.settings, inp.seed)
    return {f"prdc_{part}": number(values[part], inp, ci, len(real), len(fake), k=k, **kind)
            for part, ci in zip(PARTS, cis)}


def prdc_of_distances(d_real: np.ndarray, d_fake: np.ndarray, d_cross: np.ndarray, k: int) -> list[float]:
    """[precision, recall, density, coverage] from the three distance matrices, exactly as
    prdc.compute_prdc computes them from features (its k-th-neighbour radius counts the point
    itself). Written by hand because compute_prdc recomputes every distance on each call: the
    interval computes them once and leaves rows out of the matrices."""
    real_radii = np.partition(d_real, k, axis=1)[:, k]
    fake_radii = np.partition(d_fake, k, axis=1)[:, k]
    inside = d_cross < real_radii[:, None]
    return [float(inside.any(0).mean()), float((d_cross < fake_radii[None, :]).any(1).mean()),
            float(inside.sum(0).mean() / k), float((d_cross.min(1) < real_radii).mean())]


def prdc_intervals(real: np.ndarray, fake: np.ndarray, k: int, clusters: list, settings: dict,
                   seed: int) -> list:
    """95% intervals of the four numbers (common.intervals: leaving a patient out keeps every
    row distinct, so no image is its own nearest neighbour); the calibration benchmark's path."""
    from scipy.spatial.distance import cdist

    d_real, d_fake, d_cross = cdist(real, real), cdist(fake, fake), cdist(real, fake)

    def leave_out(i, j):
        if min(len(i), len(j)) < k + 2:
            return [np.nan] * len(PARTS)
        return prdc_of_distances(d_real[np.ix_(i, i)], d_fake[np.ix_(j, j)], d_cross[np.ix_(i, j)], k)

    return intervals(leave_out, clusters, NAMES, settings, seed) or [None] * len(NAMES)
