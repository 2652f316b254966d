"""Relative distance (Woodland et al., MICCAI 2024; medigan's FID_ratio): FID, KID and FRD of
the experiment divided by the same metric between the two halves of the real held-out set
that the baseline compares (split by patient, evaluate.split_halves). 1 = as far from the
real images as real images are from each other; the number to compare across datasets.

Computed in evaluate from the very features and halves the baseline uses (so the denominator
equals the baseline JSON's value and evaluate needs no baseline file). The 95% CI is a joint
bootstrap: the held-out set is exactly half A + half B, so each replicate resamples A, B and
the generated set once and recomputes numerator (A*+B* vs generated*) and denominator
(A* vs B*) from the same resample. When the denominator is <= 0 in more than 2.5% of the
replicates (KID, an unbiased estimate, is ~0 between real halves) the upper bound does not
exist and no CI is given; a denominator <= 0 itself makes the ratio undefined (skipped).
"""

from __future__ import annotations

import numpy as np

from . import fid, frd, kid
from .common import MetricSkipped, bootstrap_replicates, inception_record, number, skipped

BASES = ("fid", "kid", "frd")
NAMES = [f"relative_{b}" for b in BASES]


def _fid(inp, a, b, fake):
    get = lambda s: inp.features.get("inception", s)  # noqa: E731
    real_a, real_b, gen = get(a), get(b), get(fake)

    def pair(ia, ib, j):
        return fid.frechet_fast(np.concatenate([real_a[ia], real_b[ib]]), gen[j]), fid.frechet_fast(real_a[ia], real_b[ib])

    return pair, inception_record(inp)


def _kid(inp, a, b, fake):
    get = lambda s: inp.features.get("inception", s)  # noqa: E731
    real_a, real_b, gen = get(a), get(b), get(fake)

    def pair(ia, ib, j):  # whole-set unbiased MMD^2, repeated rows dropped (as kid's own CI)
        ia, ib, j = np.unique(ia), np.unique(ib), np.unique(j)
        if min(len(ia), len(ib), len(j)) < 2:
            return np.nan, np.nan
        return (kid.polynomial_mmd2(np.concatenate([real_a[ia], real_b[ib]]), gen[j]),
                kid.polynomial_mmd2(real_a[ia], real_b[ib]))

    def point(settings, seed):  # KID's own estimate (subset mean), on the sets kid.compute sees
        real = get(inp.real)
        num_size = min(settings["kid_subset_size"], len(real), len(gen))
        den_size = min(settings["kid_subset_size"], len(real_a), len(real_b))
        return (kid.kid_subsets(real, gen, num_size, settings["kid_subsets"], seed).mean(),
                kid.kid_subsets(real_a, real_b, den_size, settings["kid_subsets"], seed).mean())

    return pair, {**inception_record(inp), "point": point}


def _frd(inp, a, b, fake):
    raw = lambda s: inp.features.get("radiomics", s)  # noqa: E731
    ok_a, ok_b = ~np.isnan(raw(a)).any(1), ~np.isnan(raw(b)).any(1)
    # numerator: held-out vs generated, jointly normalised as frd.compute does
    real, gen = frd.normalised(np.concatenate([raw(a)[ok_a], raw(b)[ok_b]]), raw(fake))
    num_a, num_b = real[:ok_a.sum()], real[ok_a.sum():]
    den_a, den_b = frd.normalised(raw(a)[ok_a], raw(b)[ok_b])
    if min(len(num_a), len(num_b), len(gen)) < 2:
        raise MetricSkipped("FRD needs at least 2 images with radiomics features in each set")

    def pair(ia, ib, j):
        return (fid.frechet_fast(np.concatenate([num_a[ia], num_b[ib]]), gen[j]),
                fid.frechet_fast(den_a[ia], den_b[ib]))

    return pair, {"features": f"radiomics-{real.shape[1]}", "normalisation": frd.NORMALISATION,
                  "sizes": (len(num_a), len(num_b), len(gen))}


PAIRS = {"fid": _fid, "kid": _kid, "frd": _frd}


def ratio_ci(replicates: np.ndarray) -> tuple[tuple[float, float] | None, str | None]:
    """Percentile CI of num/den over replicates (columns num, den), or why there is none."""
    num, den = replicates[:, 0], replicates[:, 1]
    usable = np.isfinite(num) & np.isfinite(den)
    num, den = num[usable], den[usable]
    if len(num) < max(2, len(replicates) // 2):
        return None, "no CI: too few usable bootstrap replicates"
    if np.mean(den <= 0) > 0.025:
        return None, f"no CI: the baseline is <= 0 in {np.mean(den <= 0):.0%} of bootstrap replicates"
    ratios = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.inf)
    low, high = np.percentile(ratios, 2.5, method="lower"), np.percentile(ratios, 97.5, method="higher")
    return (float(low), float(high)), None


def one(inp, base: str) -> dict:
    a, b, how = inp.halves
    if base in ("fid", "kid"):
        reason = inp.features.inception_available()
        if reason:
            raise MetricSkipped(reason)
    pair, extra = PAIRS[base](inp, a, b, inp.fake)
    point = extra.pop("point", None)
    sizes = extra.pop("sizes", (len(a), len(b), len(inp.fake)))
    if min(sizes) < 2:
        raise MetricSkipped(f"relative {base.upper()} needs at least 2 images in each half and 2 generated")
    num, den = point(inp.settings, inp.seed) if point else pair(*(np.arange(n) for n in sizes))
    if not den > 0:
        raise MetricSkipped(f"baseline {base.upper()} is {den:.3g} <= 0 (the real halves are "
                            "indistinguishable by it): the ratio is undefined")
    replicates = bootstrap_replicates(lambda *idx: list(pair(*idx)), sizes, inp, f"relative {base}")
    ci, note = (None, None) if replicates is None else ratio_ci(replicates)
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
