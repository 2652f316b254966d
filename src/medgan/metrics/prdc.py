"""Precision, recall, density and coverage (Naeem et al. 2020) with the `prdc` package, k from
settings (default 5), on Inception features when available, else on radiomics features —
each entry says which in `features`."""

from __future__ import annotations

import contextlib
import io

import numpy as np

from .common import MetricSkipped, bootstrap_cis, inception_record, number

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

    def replicate(i, j):
        # Replicates drop repeated rows: a duplicate would be its own nearest neighbour.
        i, j = np.unique(i), np.unique(j)
        if min(len(i), len(j)) < k + 2:
            return [np.nan] * len(NAMES)
        again = prdc_values(real[i], fake[j], k)
        return [again[part] for part in PARTS]

    cis = bootstrap_cis(replicate, (len(real), len(fake)), inp, "prdc") or [None] * len(NAMES)
    return {f"prdc_{part}": number(values[part], inp, ci, len(real), len(fake), k=k, **kind)
            for part, ci in zip(PARTS, cis)}
