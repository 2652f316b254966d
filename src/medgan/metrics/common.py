"""What every metric module shares: the inputs it is given, how a number is reported
(value, 95% interval, n_real, n_fake, seed), and how a metric says it could not run."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from PIL import Image
from scipy import stats


class MetricSkipped(Exception):
    """A metric cannot run on these inputs; the message is the reason shown in the table."""


@dataclass
class ImageSet:
    """A list of image files. `cache_key` (a dict describing how the set was made) lets real
    sets' features be cached on disk; `parent`+`rows` make a set a view of a larger one (the
    halves of the real-vs-real baseline reuse the whole test set's features)."""

    paths: list[str]
    cache_key: dict | None = None
    parent: "ImageSet | None" = None
    rows: np.ndarray | None = None
    parts: "list[ImageSet] | None" = None

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, rows) -> "ImageSet":
        rows = np.asarray(rows, dtype=int)
        return ImageSet([self.paths[i] for i in rows], parent=self, rows=rows)

    @staticmethod
    def union(parts: "list[ImageSet]") -> "ImageSet":
        """The sets one after another (a pooled class); features come from the parts' caches."""
        return ImageSet([p for part in parts for p in part.paths], parts=list(parts))


@dataclass
class Inputs:
    """Everything a metric may read. `real` is the held-out real set of the experiment's
    dataset and class, `fake` the generated set, `train` the real training images of that class."""

    real: ImageSet
    fake: ImageSet
    train: ImageSet
    settings: dict                       # params["evaluate"]
    seed: int
    image_size: tuple[int, int]          # (height, width): the one size every image is read at
    dataset: dict = field(default_factory=dict)       # params["datasets"][name] + "name"
    manifest: pd.DataFrame | None = None  # real slices, `file` column = absolute-ish path
    samples: pd.DataFrame | None = None   # samples.csv rows, `file` column added
    figure: Path | None = None            # where a metric may save a picture
    is_baseline: bool = False
    features: "object" = None             # a features.FeatureStore, set by evaluate
    halves: "tuple[ImageSet, ImageSet, str] | None" = None  # the baseline's two halves of `real`
    synthetic: Path | None = None         # the experiment's `medgan synthesize` set, if there is one


def inception_features(inp: "Inputs", metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Inception features of the held-out real and the generated set, or MetricSkipped
    saying why not (no weights, or fewer than 2 images on a side)."""
    reason = inp.features.inception_available()
    if reason:
        raise MetricSkipped(reason)
    real = inp.features.get("inception", inp.real)
    fake = inp.features.get("inception", inp.fake)
    if min(len(real), len(fake)) < 2:
        raise MetricSkipped(f"{metric} needs at least 2 real and 2 generated images")
    return real, fake


def inception_record(inp: "Inputs") -> dict:
    """What an entry on Inception features says about them: which weights (file, sha256, origin)."""
    return {"features": "inception-2048", "inception_weights": inp.features.inception_weights().record()}


def _open_gray(path) -> Image.Image:
    """A slice or sample as 8-bit gray; a damaged, non-image or oversized file ("decompression
    bomb": more than Image.MAX_IMAGE_PIXELS) names itself instead of a Pillow traceback."""
    import warnings

    from ..errors import MedganError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.convert("L")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise MedganError(f"{path}: not a readable image ({err}) — rerun the stage that wrote it "
                          f"(medgan sample / prepare), or replace the file") from None


def load_gray(paths: list[str], size: tuple[int, int]) -> np.ndarray:
    """Images as float32 (N, H, W) in [0, 1], all at `size` (bilinear resize only if needed),
    so that real and generated images go through exactly the same path."""
    height, width = size
    out = np.empty((len(paths), height, width), np.float32)
    for i, path in enumerate(paths):
        image = _open_gray(path)
        if image.size != (width, height):
            image = image.resize((width, height), Image.BILINEAR)
        out[i] = np.asarray(image, np.float32) / 255.0
    return out


def number(value: float, inp: Inputs, ci: "dict | tuple[float, float] | None", n_real: int,
           n_fake: int, **extra) -> dict:
    """A metric entry. `ci`: the fields `interval` returns (ci_low/ci_high with ci_method, or
    ci_missing with the reason), or a (low, high) pair for a range that is not a CI (fid_small)."""
    entry = {"value": _finite(value), "n_real": int(n_real), "n_fake": int(n_fake), "seed": inp.seed}
    if isinstance(ci, dict):
        entry.update(ci)
    elif ci is not None:
        entry["ci_low"], entry["ci_high"] = _finite(ci[0]), _finite(ci[1])
    entry.update(extra)
    return entry


def skipped(reason: str, n_real: int, n_fake: int, seed: int) -> dict:
    return {"skipped": reason, "n_real": int(n_real), "n_fake": int(n_fake), "seed": seed}


def _finite(value: float) -> float:
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"metric value {value} is not finite: report it differently")
    return value


# -- intervals ----------------------------------------------------------------------------------
#
# How every 95% interval of a metric entry is computed (README "How intervals are computed"):
# a delete-one-cluster jackknife over each compared set, Student t with Welch–Satterthwaite
# degrees of freedom, clipped into the metric's range (RANGES). A cluster is a patient for real
# images (the manifest's `case`) and one image for generated images (independent draws).
#
# Why the jackknife, not a bootstrap: resampling with replacement duplicates images, and every
# set statistic here reacts to copies — FID/FRD grow (a duplicated patient shrinks the spread),
# k-NN radii (PRDC) collapse to 0, unbiased KID gains k(x, x) terms — so a bootstrap replicate is
# not the statistic on a fresh sample of the same size (dropping repeats measures it at ~0.63 n;
# shifting the percentile interval back onto the estimate, as this module once did, contains the
# estimate by construction and has no known coverage). Leaving one patient out keeps every set
# distinct and changes n by one cluster; the jackknife's variance estimate is conservative for
# any symmetric statistic (Efron–Stein), and the t quantile with Satterthwaite's df pays for
# estimating it from few patients. benchmarks/bench_calibration.py measures the coverage.
#
# Estimand: the expectation of the statistic itself over fresh draws of the same design (this
# many held-out patients with these slice counts, this many generated images), e.g. "the
# expected FID between the generator and a held-out set of this size from this population of
# patients" — not the n -> infinity limit, from which FID/KID/PRDC differ by an n-dependent bias.

MIN_PATIENTS = 5           # fewer held-out patients on the real side: no interval, said so
JACKKNIFE_GROUPS = 20      # a set with more clusters is cut into this many random groups of clusters
CI_METHOD = ("delete-one-patient jackknife (generated images: delete-a-group), "
             "Student t with Satterthwaite df")

SECOND_ORDER_METHOD = ", second-order parts counted once (between sets; within the generated set)"

INF = float("inf")
# The range of every metric that has an interval; intervals are clipped into it.
RANGES = {
    "fid": (0.0, INF), "kid": (0.0, INF), "frd": (0.0, INF), "fid_small": (0.0, INF),
    "relative_fid": (0.0, INF), "relative_kid": (0.0, INF), "relative_frd": (0.0, INF),
    "prdc_precision": (0.0, 1.0), "prdc_recall": (0.0, 1.0), "prdc_density": (0.0, INF),
    "prdc_coverage": (0.0, 1.0),
    "diversity_ssim_fake": (-1.0, 1.0), "diversity_ssim_real": (-1.0, 1.0), "diversity_ratio": (-INF, INF),
    "memorisation_share_pixel": (0.0, 1.0), "memorisation_share_feature": (0.0, 1.0),
    "utility_auc_gain": (-1.0, 1.0),
    **{f"utility_{r}_{s}": (0.0, 1.0) for r in ("real", "synthetic", "mixed")
       for s in ("accuracy", "auc", "sensitivity", "specificity")},
    **{f"segmentation_{a}_{s}": (0.0, 1.0) for a in ("real", "mixed", "synthetic")
       for s in ("dice", "lesion_sensitivity")},
    "segmentation_chance_dice": (0.0, 1.0),
    **{f"paired_ssim_{r}": (-1.0, 1.0) for r in ("image", "lesion", "region")},
    **{f"paired_psnr_{r}": (-INF, INF) for r in ("image", "lesion", "region")},
    **{f"paired_mae_{r}": (0.0, 1.0) for r in ("image", "lesion", "region")},
    **{f"paired_mae_hu_{r}": (0.0, INF) for r in ("image", "lesion", "region")},
    "paired_contrast_hu_fake": (-INF, INF), "paired_contrast_hu_real": (-INF, INF),
    "paired_contrast_error_hu": (0.0, INF), "contrast_hu": (-INF, INF),
}


def clusters_of(inp: "Inputs", images: ImageSet) -> np.ndarray:
    """The resampling unit of each image: its patient (`case` in the manifest) for a real image,
    the image itself for a generated one (each generated image is an independent draw)."""
    patient = {}
    if inp.manifest is not None and {"file", "case"} <= set(inp.manifest.columns):
        patient = dict(zip(inp.manifest["file"].astype(str), inp.manifest["case"].astype(str)))
    return np.array([f"patient:{patient[p]}" if p in patient else f"image:{p}#{i}"
                     for i, p in enumerate(images.paths)])


def patient_count(labels) -> int:
    return len({x for x in np.asarray(labels, dtype=str) if x.startswith("patient:")})


def _leave_out_groups(labels, seed: int) -> list[np.ndarray]:
    """Rows to leave out, one array per jackknife group: every cluster on its own, or with more
    than JACKKNIFE_GROUPS clusters, the clusters dealt at random into that many groups (a
    grouped jackknife; groups of independent clusters are themselves independent)."""
    labels = np.asarray(labels, dtype=str)
    _, cluster = np.unique(labels, return_inverse=True)
    n_clusters = cluster.max() + 1
    group_of = np.arange(n_clusters)
    if n_clusters > JACKKNIFE_GROUPS:
        group_of = np.random.default_rng(seed).permutation(n_clusters) % JACKKNIFE_GROUPS
    groups = group_of[cluster]
    return [np.flatnonzero(groups == g) for g in range(groups.max() + 1)]


def intervals(statistic: Callable[..., "list[float]"], clusters: list, names: list[str], settings: dict,
              seed: int, estimates=None, log_scale: bool = False, second_order: bool = False
              ) -> "list[dict] | None":
    """95% intervals of the statistics `statistic(*rows)` returns (one list entry per name; `rows`
    = the kept row indices of each compared set), one dict of entry fields each: ci_low, ci_high,
    ci_method, ci_unit, n_patients_real — or ci_missing with the reason. `clusters`: per set,
    the label of each row (clusters_of). None when settings' bootstrap is 0 (intervals off).

    Delete-one-cluster jackknife per set, weighted for clusters of unequal size
    (_jackknife_variance); the sets' variances add (independent samples); `second_order`
    subtracts the second-order parts the per-set jackknives count twice (_second_order_parts:
    for statistics smooth in both sets, the Fréchet distances); t quantile with
    Welch–Satterthwaite df; `log_scale` builds it on log(statistic) (ratios).
    Each interval is clipped into RANGES[name]."""
    if settings.get("bootstrap", 1) <= 0:
        return None
    sizes = [len(c) for c in clusters]
    patients = sum(patient_count(c) for c in clusters)
    has_patients = patients > 0
    if has_patients and patients < MIN_PATIENTS:
        return [_missing(f"interval needs >= {MIN_PATIENTS} held-out patients, this set has {patients}",
                         patients)] * len(names)
    everything = [np.arange(n) for n in sizes]
    evaluate = lambda rows: _scale(np.asarray(statistic(*rows), dtype=float), log_scale)  # noqa: E731
    estimates = evaluate(everything) if estimates is None else _scale(np.asarray(estimates, dtype=float), log_scale)
    sets = []
    for which, labels in enumerate(clusters):
        groups = _leave_out_groups(labels, seed + which)
        if len(groups) < 2 or sizes[which] - max(len(g) for g in groups) < 2:
            return [_missing("interval needs at least 2 clusters (patients or images) in every set, "
                             "and 2 rows left when one is left out", patients)] * len(names)
        leave_outs = np.array([evaluate(_without(everything, {which: group})) for group in groups])
        variance = _jackknife_variance(estimates, leave_outs, np.array([len(g) for g in groups]), sizes[which])
        sets.append(_SetJackknife(which, groups, leave_outs, variance, patient_count(labels) > 0))
    components = [(s.variance, s.dof) for s in sets]
    variance = sum(s.variance for s in sets)
    if second_order:
        parts = _second_order_parts(evaluate, estimates, everything, sets)
        variance = np.maximum(variance - sum(part for part, _ in parts), variance / 2)
        components += parts
    out = []
    for k, name in enumerate(names):
        if not (np.isfinite(estimates[k]) and np.isfinite(variance[k])):
            why = ("the statistic is not positive when a patient or image is left out (no log-scale interval)"
                   if log_scale else "the statistic is undefined when a patient or image is left out")
            out.append(_missing(why, patients))
            continue
        noise = sum(v[k] ** 2 / dof for v, dof in components)
        dof = variance[k] ** 2 / noise if noise > 0 else INF
        half = stats.t.ppf(0.975, dof) * np.sqrt(variance[k]) if variance[k] > 0 else 0.0
        low, high = estimates[k] - half, estimates[k] + half
        if log_scale:
            low, high = np.exp(low), np.exp(high)
        out.append(_fields(name, low, high, dof, patients, has_patients, log_scale, second_order))
    return out


@dataclass
class _SetJackknife:
    """One compared set's leave-outs: its groups of rows, the statistics without each and the
    variance they give."""

    which: int
    groups: list
    leave_outs: np.ndarray
    variance: np.ndarray
    patients: bool

    @property
    def dof(self) -> int:
        return len(self.groups) - 1

    @property
    def group_sizes(self) -> np.ndarray:
        return np.array([len(g) for g in self.groups])


def _without(everything: list, removed: dict) -> list:
    """Every set's kept rows with the rows in removed[set] left out."""
    rows = list(everything)
    for which, group in removed.items():
        rows[which] = np.setdiff1d(everything[which], group)
    return rows


# Second-order parts (Efron & Stein 1981, Ann. Statist. 9:586-596): the jackknife's variance
# counts a statistic's pairwise (second-order) part about twice. For a Fréchet distance between
# a near-real generator and the held-out set the first-order part nearly vanishes and the
# pairwise part dominates: the per-set jackknives summed to 1.7-1.9x FID's variance over fresh
# draws (bench_calibration, 5-20 patients). Two such parts are estimated from leaving out two
# groups at once and subtracted once each (written by hand: no library has a grouped,
# two-sample Efron–Stein correction):
# - the interaction of every two sets (each set's jackknife holds all of it): from the double
#   differences D_ij = T - T_(i) - T_(j) + T_(ij), i a group of one set and j of the other, in
#   which every one-set term cancels exactly, so the statistic's bias in each n drops out;
# - the pairwise part within a set of images (generated: independent draws in equal-ish
#   groups), from D_jk over pairs of its groups after regressing out their common mean and the
#   1/n bias curvature (1/n - 1/(n-m_j) - 1/(n-m_k) + 1/(n-m_j-m_k)): those are the bias's
#   second difference, not variance (uncentred they were ~12x the part; centred within ~1.3x).
# Patient sets' own pairwise part is left in (few, unequal patients make it noisy): the
# interval stays on the conservative side there. The corrected variance is kept >= half the
# uncorrected one (a second-order expansion's variance is at least half of what the jackknife
# counts), and every subtracted part enters Satterthwaite's df with its own noise.
def _second_order_parts(evaluate, estimates, everything, sets) -> list:
    parts = []
    for first, second in itertools.combinations(sets, 2):
        parts.append(_interaction(evaluate, estimates, everything, first, second))
    for one in sets:
        if not one.patients and len(one.groups) > 3:
            part = _pairwise_part(evaluate, estimates, everything, one)
            if part is not None:
                parts.append(part)
    return parts


def _crowding(group_sizes: np.ndarray, n: int) -> np.ndarray:
    """1 + how much of D_ij's spread leaving out group i adds through the other groups' weights:
    sum over the other groups of m^2 / (n - m_i)^2 (1 / (G - 1) for G equal groups)."""
    return 1 + ((group_sizes ** 2).sum() - group_sizes ** 2) / (n - group_sizes) ** 2


def _interaction(evaluate, estimates, everything, first: "_SetJackknife", second: "_SetJackknife") -> tuple:
    """(the two sets' interaction variance, its df): sum of D_ij^2, each over both groups' crowding
    (leaving a group out reweights the others, which adds their interaction terms to D_ij)."""
    both = np.array([[evaluate(_without(everything, {first.which: g, second.which: h})) for h in second.groups]
                     for g in first.groups])
    double = estimates - first.leave_outs[:, None] - second.leave_outs[None, :] + both
    weight = (_crowding(first.group_sizes, len(everything[first.which]))[:, None]
              * _crowding(second.group_sizes, len(everything[second.which]))[None, :])
    return (double ** 2 / weight[..., None]).sum((0, 1)), first.dof * second.dof


def _pairwise_part(evaluate, estimates, everything, one: "_SetJackknife") -> "tuple | None":
    """(the set's own pairwise variance, its df), or None when two groups leave < 2 rows. A pair
    contrast holds its own pairwise term plus the 2 (G - 2) terms that share one of its groups,
    each reweighted by ~2/G when that group leaves: E[D_jk^2] = its part x (1 + 8 (G - 2) / G^2)."""
    n = len(everything[one.which])
    sizes = one.group_sizes
    if n - np.sort(sizes)[-2:].sum() < 2:
        return None
    pairs = list(itertools.combinations(range(len(one.groups)), 2))
    double = np.array([estimates - one.leave_outs[j] - one.leave_outs[k]
                       + evaluate(_without(everything, {one.which: np.concatenate([one.groups[j], one.groups[k]])}))
                       for j, k in pairs])
    curvature = np.array([1 / n - 1 / (n - sizes[j]) - 1 / (n - sizes[k]) + 1 / (n - sizes[j] - sizes[k])
                          for j, k in pairs])
    design = np.column_stack([np.ones(len(pairs)), curvature])
    fitted, _, rank, _ = np.linalg.lstsq(design, double, rcond=None)
    residual = double - design @ fitted
    groups = len(one.groups)
    return (residual ** 2).sum(0) / (1 + 8 * (groups - 2) / groups ** 2), len(pairs) - rank


def _jackknife_variance(estimate: np.ndarray, leave_outs: np.ndarray, removed: np.ndarray, n: int) -> np.ndarray:
    """Delete-m_j jackknife variance for groups of unequal size m_j (Busing, Meijer & van der
    Leeden 1999, Statistics and Computing 9:3-8): pseudo-values h_j T - (h_j - 1) T_(j) with
    h_j = n / m_j, each scaled by 1 / (h_j - 1). A statistic whose bias goes as 1/n (FID, FRD,
    k-NN radii) has bias-free pseudo-values however many slices a patient holds, so leaving out a
    large patient and a small one no longer differ by their bias; with equal groups this is the
    usual grouped jackknife (g - 1) / g * sum (T_(j) - mean)^2."""
    h = (n / removed)[:, None]
    centre = len(removed) * estimate - ((1 - removed / n)[:, None] * leave_outs).sum(0)
    pseudo = h * estimate - (h - 1) * leave_outs
    return ((pseudo - centre) ** 2 / (h - 1)).sum(0) / len(removed)


def interval(statistic: Callable[..., float], clusters: list, name: str, settings: dict, seed: int,
             estimate=None, log_scale: bool = False, second_order: bool = False) -> "dict | None":
    """intervals() for one statistic."""
    found = intervals(lambda *rows: [statistic(*rows)], clusters, [name], settings, seed,
                      None if estimate is None else [estimate], log_scale, second_order)
    return found[0] if found else None


def clip_to_range(name: str, low: float, high: float) -> tuple[float, float]:
    bottom, top = RANGES[name]
    return float(min(max(low, bottom), top)), float(max(min(high, top), bottom))


def _fields(name, low, high, dof, patients, has_patients, log_scale, second_order=False) -> dict:
    low, high = clip_to_range(name, low, high)
    method = CI_METHOD + (SECOND_ORDER_METHOD if second_order else "") + (", on the log scale" if log_scale else "")
    return {"ci_low": low, "ci_high": high, "ci_method": method, "ci_df": round(float(min(dof, 1e6)), 2),
            "ci_unit": "patients" if has_patients else "images", "n_patients_real": int(patients)}


def _missing(reason: str, patients: int) -> dict:
    return {"ci_missing": reason, "n_patients_real": int(patients)}


def _scale(values: np.ndarray, log_scale: bool) -> np.ndarray:
    if not log_scale:
        return values
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(values > 0, np.log(np.where(values > 0, values, 1.0)), np.nan)
