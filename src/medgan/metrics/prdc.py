"""Precision, recall, density and coverage (Naeem et al. 2020) with the `prdc` package, k from
settings (default 5), on Inception features when available, else on radiomics features —
each entry says which in `features`."""

from __future__ import annotations

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
    """The `prdc` package's compute_prdc, equal to it (tests check)."""
    return values_from_distances(*distances(real, fake), k)


def distances(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """real-real, fake-fake and real-fake Euclidean distances by the `prdc` package's own function
    (one matrix product each): computed once, bootstrap replicates index them."""
    from prdc.prdc import compute_pairwise_distance

    return compute_pairwise_distance(real), compute_pairwise_distance(fake), compute_pairwise_distance(real, fake)


def values_from_distances(real_real: np.ndarray, fake_fake: np.ndarray, real_fake: np.ndarray, k: int) -> dict:
    """compute_prdc's formulas (prdc 0.2, Naeem et al. 2020) on given distance matrices; written
    out because the package computes the distances inside compute_prdc. k-NN radii by its
    get_kth_value (k + 1: a point is its own nearest neighbour)."""
    from prdc.prdc import get_kth_value

    real_radii = get_kth_value(real_real, k=k + 1, axis=-1)
    fake_radii = get_kth_value(fake_fake, k=k + 1, axis=-1)
    in_real_balls = real_fake < np.expand_dims(real_radii, axis=1)
    return {"precision": in_real_balls.any(axis=0).mean(),
            "recall": (real_fake < np.expand_dims(fake_radii, axis=0)).any(axis=1).mean(),
            "density": (1. / float(k)) * in_real_balls.sum(axis=0).mean(),
            "coverage": (real_fake.min(axis=1) < real_radii).mean()}


def compute(inp) -> dict:
    k = inp.settings["prdc_k"]
    real, fake, kind = feature_pair(inp)
    if min(len(real), len(fake)) < k + 2:
        raise MetricSkipped(f"PRDC with k={k} needs at least {k + 2} real and {k + 2} generated images")
    real_real, fake_fake, real_fake = distances(real, fake)
    values = values_from_distances(real_real, fake_fake, real_fake, k)

    cis = prdc_intervals(real, fake, k, [clusters_of(inp, inp.real), clusters_of(inp, inp.fake)],
                         inp.settings, inp.seed, (real_real, fake_fake, real_fake))
    return {f"prdc_{part}": number(values[part], inp, ci, len(real), len(fake), k=k, **kind)
            for part, ci in zip(PARTS, cis)}


def prdc_of_distances(d_real: np.ndarray, d_fake: np.ndarray, d_cross: np.ndarray, k: int) -> list[float]:
    """[precision, recall, density, coverage] from the three distance matrices (the interval
    computes them once and leaves rows out of them)."""
    values = values_from_distances(d_real, d_fake, d_cross, k)
    return [float(values[part]) for part in PARTS]


def prdc_intervals(real: np.ndarray, fake: np.ndarray, k: int, clusters: list, settings: dict,
                   seed: int, matrices: tuple | None = None) -> list:
    """95% intervals of the four numbers (common.intervals: leaving a patient out keeps every
    row distinct, so no image is its own nearest neighbour); the calibration benchmark's path."""
    d_real, d_fake, d_cross = distances(real, fake) if matrices is None else matrices

    def leave_out(i, j):
        if min(len(i), len(j)) < k + 2:
            return [np.nan] * len(PARTS)
        return prdc_of_distances(d_real[np.ix_(i, i)], d_fake[np.ix_(j, j)], d_cross[np.ix_(i, j)], k)

    return intervals(leave_out, clusters, NAMES, settings, seed) or [None] * len(NAMES)
