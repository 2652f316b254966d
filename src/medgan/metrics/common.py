"""What every metric module shares: the inputs it is given, how a number is reported
(value, 95% bootstrap CI, n_real, n_fake, seed), and how a metric says it could not run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm


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


def number(value: float, inp: Inputs, ci: tuple[float, float] | None, n_real: int,
           n_fake: int, **extra) -> dict:
    entry = {"value": _finite(value), "n_real": int(n_real), "n_fake": int(n_fake), "seed": inp.seed}
    if ci is not None:
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


def bootstrap_ci(statistic: Callable[..., float], sizes: tuple[int, ...], inp: Inputs,
                 desc: str = "bootstrap", clusters=None) -> tuple[float, float] | None:
    """95% percentile bootstrap CI: resample each of the sets (sizes) with replacement and
    recompute `statistic(*index_arrays)`. None when evaluate.bootstrap is 0. `clusters` (one
    entry per set: an array of cluster labels, e.g. the patient of each image, or None)
    resamples whole clusters instead of items (a cluster bootstrap), for sets whose items are
    not independent (neighbouring slices of one patient)."""
    cis = bootstrap_cis(lambda *idx: [statistic(*idx)], sizes, inp, desc, clusters)
    return cis[0] if cis else None


def _resampler(n: int, labels, rng: np.random.Generator) -> Callable[[], np.ndarray]:
    if labels is None:
        return lambda: rng.integers(0, n, n)
    labels = np.asarray(labels)
    if len(labels) != n:
        raise ValueError(f"{len(labels)} cluster labels for a set of {n}")
    groups = [np.flatnonzero(labels == u) for u in np.unique(labels)]
    return lambda: np.concatenate([groups[g] for g in rng.integers(0, len(groups), len(groups))])


def bootstrap_replicates(statistics: Callable[..., list[float]], sizes: tuple[int, ...], inp: Inputs,
                         desc: str = "bootstrap", clusters=None) -> np.ndarray | None:
    """(replicates, statistics) array: each row resamples every set (sizes) with replacement —
    whole clusters (patients) where `clusters` gives a set's labels — seeded by inp.seed.
    None when evaluate.bootstrap is 0."""
    n_boot = inp.settings["bootstrap"]
    if n_boot <= 0:
        return None
    rng = np.random.default_rng(inp.seed)
    draws = [_resampler(n, labels, rng) for n, labels in zip(sizes, clusters or [None] * len(sizes))]
    return np.array([statistics(*(draw() for draw in draws))
                     for _ in tqdm(range(n_boot), desc=desc, leave=False, disable=n_boot < 50)], dtype=float)


def bootstrap_cis(statistics: Callable[..., list[float]], sizes: tuple[int, ...], inp: Inputs,
                  desc: str = "bootstrap", clusters=None) -> list[tuple[float, float] | None] | None:
    """Like bootstrap_ci for a statistic returning several numbers at once (one CI each).
    Non-finite replicates are dropped; a CI needs at least half of the replicates.

    The percentile interval is shifted by the bootstrap's estimate of the statistic's bias
    (median of the replicates minus the value on the sets themselves): resampling with
    replacement duplicates images, and set distances (FID, FRD) grow and k-NN scores (PRDC)
    move when a set holds copies, so a plain percentile interval of such a metric can miss its
    own value (seen on the demo's baseline: FID 16.5, percentile interval [18.0, 24.7]). For an
    unbiased statistic (a mean over pairs) the shift is ~0 and the interval is the percentile one."""
    replicates = bootstrap_replicates(statistics, sizes, inp, desc, clusters)
    if replicates is None:
        return None
    estimates = np.asarray(statistics(*(np.arange(n) for n in sizes)), dtype=float)
    n_boot = len(replicates)
    cis = []
    for column, estimate in zip(replicates.T, estimates):
        column = column[np.isfinite(column)]
        if len(column) < max(2, n_boot // 2):
            cis.append(None)
        else:
            shift = float(np.median(column) - estimate) if np.isfinite(estimate) else 0.0
            low, high = np.percentile(column, [2.5, 97.5]) - shift
            cis.append((float(low), float(high)))
    return cis
