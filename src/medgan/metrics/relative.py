"""Relative distance (Woodland et al., MICCAI 2024; medigan's FID_ratio): FID, KID and FRD of
the experiment divided by the same metric between the two halves of the real held-out set
that the baseline compares (split by patient, evaluate.split_halves).

Computed in evaluate from the very features and halves the baseline uses (so the denominator
equals the baseline JSON's value and evaluate needs no baseline file). Read it with its n:
FID and FRD grow as sets shrink, and the baseline compares two half-size sets, so a generator
indistinguishable from the real images scores below 1 (about 0.5 for FID when n_gen = n_real);
ratios are comparable across rows with similar n.

The 95% CI is a grouped delete-one jackknife, normal on the log scale, not the percentile
bootstrap of the other entries: resampling with replacement duplicates images, which inflates
small-sample FID, the real-vs-real denominator most, so bootstrap ratios sit below the
estimate (measured: the estimate fell outside their 95% range). Leaving out a group keeps
every set distinct. Each set (half A, half B, generated) is cut into up to JACKKNIFE_GROUPS
seeded groups; the variances of the three add (independent samples). A ratio <= 0 when a group
is left out (KID, an unbiased estimate, is ~0 between real halves) gives no CI, and a
denominator <= 0 itself makes the ratio undefined (skipped).
"""

from __future__ import annotations

import numpy as np

from typing import Callable, NamedTuple

from . import fid, frd, kid
from .common import MetricSkipped, inception_record, number, skipped

BASES = ("fid", "kid", "frd")
JACKKNIFE_GROUPS = 20
CI_METHOD = f"grouped jackknife (<= {JACKKNIFE_GROUPS} groups per set), normal on the log scale"
NAMES = [f"relative_{b}" for b in BASES]


class Ratio(NamedTuple):
    """How one relative distance is computed: `pair(rows_a, rows_b, rows_gen)` gives
    (numerator, denominator) on those rows of half A, half B and the generated set."""

    pair: Callable
    sizes: tuple[int, int, int]
    record: dict                       # what the entry says about its features
    point: Callable | None = None      # (numerator, denominator) when not pair() on all rows


def _fid(inp, a, b, fake) -> Ratio:
    get = lambda s: inp.features.get("inception", s)  # noqa: E731
    real_a, real_b, gen = get(a), get(b), get(fake)

    def pair(ia, ib, j):
        return fid.frechet_fast(np.concatenate([real_a[ia], real_b[ib]]), gen[j]), fid.frechet_fast(real_a[ia], real_b[ib])

    return Ratio(pair, (len(real_a), len(real_b), len(gen)), inception_record(inp))


def _kid(inp, a, b, fake) -> Ratio:
    get = lambda s: inp.features.get("inception", s)  # noqa: E731
    real_a, real_b, gen = get(a), get(b), get(fake)

    def pair(ia, ib, j):  # whole-set unbiased MMD^2, repeated rows dropped (as kid's own CI)
        ia, ib, j = np.unique(ia), np.unique(ib), np.unique(j)
        if min(len(ia), len(ib), len(j)) < 2:
            return np.nan, np.nan
        return (kid.polynomial_mmd2(np.concatenate([real_a[ia], real_b[ib]]), gen[j]),
                kid.polynomial_mmd2(real_a[ia], real_b[ib]))

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
        return (fid.frechet_fast(np.concatenate([num_a[ia], num_b[ib]]), gen[j]),
                fid.frechet_fast(den_a[ia], den_b[ib]))

    return Ratio(pair, (len(num_a), len(num_b), len(gen)),
                 {"features": f"radiomics-{real.shape[1]}", "normalisation": frd.NORMALISATION})


PAIRS = {"fid": _fid, "kid": _kid, "frd": _frd}


def jackknife_ci(pair, sizes: tuple[int, ...], estimate: float,
                 seed: int) -> tuple[tuple[float, float] | None, str | None]:
    """95% CI of log(num/den) by a grouped delete-one jackknife over each set, or why none."""
    rng = np.random.default_rng(seed)
    variance = 0.0
    for which, n in enumerate(sizes):
        groups = np.array_split(rng.permutation(n), min(n, JACKKNIFE_GROUPS))
        if n - max(len(g) for g in groups) < 2 or len(groups) < 2:
            return None, "no CI: too few images to leave a group out"
        logs = []
        for group in groups:
            rows = [np.arange(m) for m in sizes]
            rows[which] = np.setdiff1d(rows[which], group)
            num, den = pair(*rows)
            if not (num > 0 and den > 0):
                return None, "no CI: the ratio is undefined when some images are left out (a distance <= 0)"
            logs.append(np.log(num / den))
        logs = np.array(logs)
        variance += (len(logs) - 1) / len(logs) * float(((logs - logs.mean()) ** 2).sum())
    half_width = 1.96 * np.sqrt(variance)
    return (float(estimate * np.exp(-half_width)), float(estimate * np.exp(half_width))), None


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
    ci, note = (None, None) if inp.settings["bootstrap"] <= 0 else jackknife_ci(ratio.pair, sizes, num / den, inp.seed)
    extra["ci_method"] = CI_METHOD
    if note:
        extra["ci_note"] = note
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
