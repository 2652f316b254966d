"""Diversity: mean pairwise SSIM among generated images vs among held-out real images
(scikit-image SSIM). ratio = fake / real; a ratio > 1 means the generated images resemble
each other more than real ones do: a sign of mode collapse. Single-scale SSIM: MS-SSIM's
5 scales need images of at least 161 px, more than the default 64 px slices, and no
MS-SSIM library is installed; `kind` in the result says so."""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity
from tqdm import tqdm

from .common import MetricSkipped, clusters_of, intervals, load_gray, number

NAMES = ["diversity_ssim_fake", "diversity_ssim_real", "diversity_ratio"]


def pairwise_ssim(images: np.ndarray) -> np.ndarray:
    """Symmetric matrix of SSIM between every pair of [0, 1] images (diagonal = 1)."""
    n = len(images)
    matrix = np.ones((n, n))
    for i in tqdm(range(n), desc="pairwise ssim", leave=False):
        for j in range(i + 1, n):
            matrix[i, j] = matrix[j, i] = structural_similarity(images[i], images[j], data_range=1.0)
    return matrix


def mean_offdiagonal(matrix: np.ndarray, rows: np.ndarray) -> float:
    """Mean SSIM over pairs of distinct images among `rows`."""
    if len(rows) < 2:
        return np.nan
    sub = matrix[np.ix_(rows, rows)]
    return float((sub.sum() - np.trace(sub)) / (len(rows) * (len(rows) - 1)))


def capped(n: int, cap: int, seed: int) -> np.ndarray:
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))


def compute(inp) -> dict:
    cap = inp.settings["diversity_max_images"]
    fake_rows, real_rows = capped(len(inp.fake), cap, inp.seed), capped(len(inp.real), cap, inp.seed)
    if min(len(fake_rows), len(real_rows)) < 2:
        raise MetricSkipped("diversity needs at least 2 real and 2 generated images")
    fake = pairwise_ssim(load_gray([inp.fake.paths[i] for i in fake_rows], inp.image_size))
    real = pairwise_ssim(load_gray([inp.real.paths[i] for i in real_rows], inp.image_size))
    n_real, n_fake = len(real), len(fake)

    def stats(i, j):
        f, r = mean_offdiagonal(fake, i), mean_offdiagonal(real, j)
        return [f, r, f / r]

    values = stats(np.arange(n_fake), np.arange(n_real))
    clusters = [clusters_of(inp, inp.fake)[fake_rows], clusters_of(inp, inp.real)[real_rows]]
    cis = intervals(stats, clusters, NAMES, inp.settings, inp.seed) or [None] * 3
    kind = "ssim (single-scale)"
    return {name: number(v, inp, ci, n_real, n_fake, kind=kind)
            for name, v, ci in zip(NAMES, values, cis)}
