"""Relative distance (Woodland et al., MICCAI 2024; medigan's FID_ratio): FID, KID and FRD of
the experiment divided by the same metric between the two halves of the real held-out set
that the baseline compares (split by patient, evaluate.split_halves).

Computed in evaluate from the very features and halves the baseline uses (so the denominator
equals the baseline JSON's value and evaluate needs no baseline file). Read it with its n:
FID and FRD grow as sets shrink, and the baseline compares two half-size sets, so a generator
indistinguishable from the real images scores below 1 (about 0.5 for FID when n_gen = n_real);
ratios are comparable across rows with similar n.

The 95% interval is common.intervals on the log scale: the delete-one-patient jackknife of
log(ratio) over half A's and half B's patients (a held-out patient sits in the numerator's real
set and in one half of the denominator, so leaving it out moves both) and over groups of
generated images; Student t with Satterthwaite df; exp() back. Estimand: exp(E log ratio) over
fresh draws of this design (a geometric mean; benchmarks/bench_calibration.py measures the
coverage). Leaving out keeps every set distinct (resampling with replacement duplicates images,
which inflates small-sample FID, the real-vs-real denominator most). A ratio <= 0 when a patient
is left out (KID, an unbiased estimate, is ~0 between real halves) gives no interval (the entry
says why), and a denominator <= 0 itself makes the ratio undefined (skipped).
"""

from __future__ import annotations

import numpy as np

from typing import Callable, NamedTuple

from . import fid, frd, kid
from .common import MetricSkipped, clusters_of, inception_record, interval, number, skipped

BASES = ("fid", "kid", "frd")
NAMES = [f"relative_{b}" for b in BASES]


class Ratio(NamedTuple):
    """How one relative distance is computed: `pair(rows_a, rows_b, rows_gen)` gives
    (numerator, denominator) on those rows of half A, half B and the generated set."""

    pair: Callable
    sizes: tuple[int, int, int]
    record: dict                       # what the entry says about its features
    point: Callable | None = None      # (numerator, denominator) when not pair() on all rows
    rows_kept: tuple | None = None     # masks of the rows of half A, half B, generated that pair() sees


def _fid(inp, a, b, fake) -> Ratio:
    get = lambda s: inp.features.get("inception", s)  # noqa: E731
    real_a, real_b, gen = get(a), get(b), get(fake)

    return Ratio(fid_pair(real_a, real_b, gen), (len(real_a), len(real_b), len(gen)), inception_record(inp))


def fid_pair(real_a: np.ndarray, real_b: np.ndarray, gen: np.ndarray) -> Callable:
    """(FID of halves A+B vs generated, FID of A vs B) on rows of each."""
    def pair(ia, ib, j):
        return (fid.frechet_exact(np.concatenate([real_a[ia], real_b[ib]]), gen[j]),
                fid.frechet_exact(real_a[ia], real_b[ib]))

    return pair


def _kid(inp, a, b, fake) -> Ratio:
    get = lambda s: inp.features.get("inception", s)  # noqa: E731
    real_a, real_b, gen = get(a), get(b), get(fake)

    both = np.concatenate([real_a, real_b])
    numerator, denominator = kid.kernels(both, gen), kid.kernels(real_a, real_b)

    def pair(ia, ib, j):  # whole-set unbiased MMD^2 (as kid's own interval), from kernels computed once
        return (kid.mmd2_of_rows(numerator, np.concatenate([ia, len(real_a) + ib]), j),
                kid.mmd2_of_rows(denominator, ia, ib))

    def point():  # KID's own estimate (subset mean), on the sets kid.compute sees
        real, settings = get(inp.real), inp.settings
        num_size = min(settings["kid_subset_size"], len(real), len(gen))
        den_size = min(settings["kid_subset_size"], len(real_a), len(real_b))
        return (kid.kid_subsets(real, gen, num_size, settings["kid_subsets"], inp.seed).mean(),
                kid.kid_subsets(real_a, real_b, den_size, settings["kid_subsets"], inp.seed).mean())

    return Ratio(pair, (len(real_a), len(real_b), len(gen)), inception_record(inp), point)


def _frd(inp, a, b, fake) -> Ratio:
    raw = lambda s: inp.features.get("radiomics", s)  # noqa: E731
    ok_a, ok_b = ~np.isnan(raw(a)).any(1), ~np.isnan(raw(b)).any(1)
    # numerator: held-out vs generated, jointly normalised as frd.compute does
    real, gen = frd.normalised(np.concatenate([raw(a)[ok_a], raw(b)[ok_b]]), raw(fake))
    num_a, num_b = real[:ok_a.sum()], real[ok_a.sum():]
    den_a, den_b = frd.normalised(raw(a)[ok_a], raw(b)[ok_b])

    def pair(ia, ib, j):
        return (fid.frechet_exact(np.concatenate([num_a[ia], num_b[ib]]), gen[j]),
                fid.frechet_exact(den_a[ia], den_b[ib]))

    return Ratio(pair, (len(num_a), len(num_b), len(gen)), {"features": f"radiomics-{real.shape[1]}", "normalisation": frd.NORMALISATION})


PAIRS = {"fid": _fid, "kid": _kid, "frd": _frd}


def ratio_interval(pair: Callable, clusters: list, name: str, settings: dict, seed: int) -> dict | None:
    """95% interval of num/den, pair(rows_a, rows_b, rows_gen) -> (num, den), with the three
    sets' cluster labels (common.intervals on the log scale); the calibration benchmark's path."""
    def ratio(ia, ib, j):
        num, den = pair(ia, ib, j)
        return num / den if num > 0 and den > 0 else np.nan

    return interval(ratio, clusters, name, settings, seed, log_scale=True)


def one(inp, base: str) -> dict:
    a, b, how = inp.halves
    if base in ("fid", "kid"):
        reason = inp.features.inception_available()
        if reason:
            raise MetricSkipped(reason)
    ratio = PAIRS[base](inp, a, b, inp.fake)
    sizes, extra = ratio.sizes, dict(ratio.record)
    if min(sizes) < 2:
        raise MetricSkipped(f"relative {base.upper()} needs at least 2 images (with features) in each half "
                            "and 2 generated")
    num, den = ratio.point() if ratio.point else ratio.pair(*(np.arange(n) for n in sizes))
    if not den > 0:
        raise MetricSkipped(f"baseline {base.upper()} is {den:.3g} <= 0 (the real halves are "
                            "indistinguishable by it): the ratio is undefined")
    clusters = [clusters_of(inp, a), clusters_of(inp, b), clusters_of(inp, inp.fake)]
    if ratio.rows_kept is not None:
        clusters = [c[keep] for c, keep in zip(clusters, ratio.rows_kept)]
    ci = ratio_interval(ratio.pair, clusters, f"relative_{base}", inp.settings, inp.seed)
    return number(num / den, inp, ci, sizes[0] + sizes[1], sizes[2], value_vs_real=float(num),
                  baseline_value=float(den), halves=how, **extra)


def compute(inp) -> dict:
    if inp.is_baseline:
        raise MetricSkipped("the baseline is the reference (1 by definition)")
    if inp.halves is None:
        raise MetricSkipped("no real-vs-real baseline for this set (fewer than 4 held-out images)")
    out = {}
    for base in BASES:
        name = f"relative_{base}"
        if base not in inp.settings["metrics"]:
            out[name] = skipped(f"{base} is not in evaluate.metrics", len(inp.real), len(inp.fake), inp.seed)
            continue
        try:
            out[name] = one(inp, base)
        except MetricSkipped as why:
            out[name] = skipped(str(why), len(inp.real), len(inp.fake), inp.seed)
    return out
