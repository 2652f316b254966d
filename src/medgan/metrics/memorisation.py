"""Memorisation: does the generator copy its training images?

For every generated image, the distance to its nearest training image (same dataset and
class), in pixel space (RMSE of [0, 1] images) and in feature space (Inception features when
available, else radiomics features z-scored with the training set's statistics). The same
distance for held-out real images gives the reference: `share` is the fraction of generated
images closer to a training image than the 5th percentile of held-out-to-train distances
(about 0.05 for a generator that does not copy; 1.0 when it outputs training images).
A PNG shows the closest generated/training pairs side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy.spatial.distance import cdist

from ..atomic import atomic_file
from .common import MetricSkipped, clusters_of, inception_record, interval, load_gray, number

NAMES = ["memorisation_share_pixel", "memorisation_share_feature"]
PERCENTILE = 5.0
CLOSEST_SHOWN = 8


BLOCK_ROWS = 512  # queries per matrix product: caps memory at BLOCK_ROWS x len(reference) floats
SMALL_PAIRS = 100_000  # below this many pairs cdist alone (measured: 64x64 sets 6x faster than blocked)


def nearest(queries: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance to, and index of, each query row's nearest reference row: exactly scipy's
    cdist(...).min(1) / .argmin(1) (first index on ties), found with blocked matrix products.
    |q|^2 + |r|^2 - 2 q.r in float64 finds the candidates within its rounding error of the
    minimum; cdist then measures those few exactly (so an exact copy is at distance 0.0)."""
    q = np.asarray(queries, np.float64).reshape(len(queries), -1)
    r = np.asarray(reference, np.float64).reshape(len(reference), -1)
    if len(q) * len(r) <= SMALL_PAIRS:  # small sets: cdist itself is faster than the refinement
        d = cdist(q, r)
        return d.min(1), d.argmin(1)
    distance, index = np.empty(len(q)), np.empty(len(q), np.int64)
    r_norms = np.einsum("ij,ij->i", r, r)
    for start in range(0, len(q), BLOCK_ROWS):
        block = q[start:start + BLOCK_ROWS]
        q_norms = np.einsum("ij,ij->i", block, block)
        squared = q_norms[:, None] + r_norms[None, :] - 2.0 * (block @ r.T)
        # the worst-case rounding of length-d dot products and norms (Higham's gamma_d bound)
        slack = 2 * (q.shape[1] + 2) * np.finfo(np.float64).eps * (q_norms[:, None] + r_norms.max()) + 1e-300
        candidates = squared <= squared.min(1, keepdims=True) + slack
        for row, columns in enumerate(candidates):
            columns = np.flatnonzero(columns)
            exact = cdist(block[row:row + 1], r[columns])[0]
            best = int(np.argmin(exact))
            distance[start + row], index[start + row] = exact[best], columns[best]
    return distance, index


def share_closer(fake_nn: np.ndarray, real_nn: np.ndarray) -> float:
    return float(np.mean(fake_nn < np.percentile(real_nn, PERCENTILE)))


def entry(fake_nn, real_nn, inp, space: str, name: str, **extra) -> dict:
    """`space`: pixel-rmse, or the feature space's name (`extra` then holds what made it).
    The interval leaves out a held-out patient (the threshold moves) or a group of generated images."""
    ci = interval(lambda i, j: share_closer(fake_nn[i], real_nn[j]),
                  [clusters_of(inp, inp.fake), clusters_of(inp, inp.real)], name, inp.settings, inp.seed)
    return number(share_closer(fake_nn, real_nn), inp, ci, len(real_nn), len(fake_nn), space=space,
                  threshold=float(np.percentile(real_nn, PERCENTILE)),
                  median_fake_to_train=float(np.median(fake_nn)),
                  median_real_to_train=float(np.median(real_nn)), n_train=len(inp.train), **extra)


def feature_space(inp):
    """Generated, held-out and training features, and what they are (an entry's `features`)."""
    if inp.features.inception_available() is None:
        get = lambda s: inp.features.get("inception", s)  # noqa: E731
        return get(inp.fake), get(inp.real), get(inp.train), inception_record(inp)
    raw = [inp.features.get("radiomics", s) for s in (inp.fake, inp.real, inp.train)]
    mean, std = np.nanmean(raw[2], 0), np.nanstd(raw[2], 0)
    keep = np.isfinite(mean) & (std > 0)
    scaled = [np.nan_to_num((x[:, keep] - mean[keep]) / std[keep]) for x in raw]
    return (*scaled, {"features": f"radiomics-{int(keep.sum())} (no Inception weights)"})


def save_closest_pairs(path: Path, fake: np.ndarray, train: np.ndarray, order: np.ndarray,
                       match: np.ndarray) -> None:
    """One row per pair: generated image | its nearest training image, closest first."""
    rows = [np.concatenate([fake[i], np.ones((fake.shape[1], 2)), train[match[i]]], axis=1) for i in order]
    picture = np.concatenate([np.pad(r, ((1, 1), (0, 0)), constant_values=1.0) for r in rows])
    with atomic_file(path) as tmp:
        Image.fromarray((picture * 255).round().astype(np.uint8)).save(tmp, format="PNG")


def compute(inp) -> dict:
    if len(inp.train) < 1 or min(len(inp.fake), len(inp.real)) < 2:
        raise MetricSkipped("memorisation needs training images, >= 2 held-out real and >= 2 generated images")
    fake, real, train = (load_gray(s.paths, inp.image_size) for s in (inp.fake, inp.real, inp.train))
    pixels = np.sqrt(fake[0].size)  # distances as RMSE per pixel
    fake_nn, match = nearest(fake, train)
    real_nn, _ = nearest(real, train)
    fake_nn, real_nn = fake_nn / pixels, real_nn / pixels
    order = np.argsort(fake_nn, kind="stable")[:CLOSEST_SHOWN]
    if inp.figure is not None:
        save_closest_pairs(inp.figure, fake, train, order, match)
    first = order[0]
    closest = f"{inp.fake.paths[first]} ~ {inp.train.paths[match[first]]}"
    out = {"memorisation_share_pixel": entry(fake_nn, real_nn, inp, "pixel-rmse", "memorisation_share_pixel",
                                             exact_copies=int(np.sum(fake_nn == 0)),
                                             closest_pair=closest)}
    f_fake, f_real, f_train, kind = feature_space(inp)
    out["memorisation_share_feature"] = entry(nearest(f_fake, f_train)[0], nearest(f_real, f_train)[0],
                                              inp, kind["features"], "memorisation_share_feature", **kind)
    return out
