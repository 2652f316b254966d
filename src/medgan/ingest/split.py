"""Splits by patient/case — never by slice — stratified by class, reproducible from the seed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import DataError

SPLITS = ("train", "val", "test")


def split_counts(n: int, ratios: dict) -> dict[str, int]:
    counts = {s: int(round(ratios[s] * n)) if ratios[s] > 0 else 0 for s in ("val", "test")}
    for s in ("val", "test"):
        if ratios[s] > 0 and counts[s] == 0 and n >= 3:
            counts[s] = 1
    n_train = n - counts["val"] - counts["test"]
    if n_train < 1:
        raise DataError(f"{n} cases are too few for the split {ratios} — add cases or change the ratios")
    return {"train": n_train, **counts}


def split_cases(case_ids: list[str], ratios: dict, seed: int, strata: dict[str, str] | None = None) -> dict[str, str]:
    """Assign whole cases (patients) to splits, reproducibly from the seed.

    Stratified by `strata` (case -> stratum, e.g. its classes) by systematic sampling: cases
    are shuffled within their stratum and spread evenly over one ordering, so that every
    prefix of it — the test cases, then the val cases — holds the strata in proportion."""
    rng = np.random.default_rng(seed)
    strata = strata or {}
    groups: dict[str, list[str]] = {}
    for case in case_ids:
        groups.setdefault(strata.get(case, ""), []).append(case)
    keyed = []
    for stratum in sorted(groups):
        members = [groups[stratum][i] for i in rng.permutation(len(groups[stratum]))]
        offset = rng.uniform()
        keyed += [((rank + offset) / len(members), rng.uniform(), case) for rank, case in enumerate(members)]
    order = [case for *_, case in sorted(keyed)]
    counts = split_counts(len(order), ratios)
    names = ["test"] * counts["test"] + ["val"] * counts["val"] + ["train"] * counts["train"]
    return dict(zip(order, names))


def assert_no_case_overlap(manifest: pd.DataFrame) -> None:
    splits_per_case = manifest.groupby("case")["split"].nunique()
    crossing = splits_per_case[splits_per_case > 1]
    if len(crossing):
        raise AssertionError(f"cases in more than one split: {list(crossing.index)}")
