"""pyradiomics' GLCM coefficients without its two Python loops over gray levels.

pyradiomics 3.1.4 builds the sum and difference distributions p_{x+y}(k) and p_{x-y}(k) with one
boolean mask and one fancy-indexed sum per k (2 Ng - 1 and Ng of them: ~360 passes over the Ng x Ng
matrix per image and filter here); that is ~40% of the FRD extraction's time (cProfile, 64x64
slices). `install()` replaces `RadiomicsGLCM._calculateCoefficients` with the same method (same
coefficients, same names, same selection of (i, j) cells per k, cells outside k's range dropped as
there) that sums each k's cells with one bincount per (voxel, angle) column. Hand-written because
the library has no faster path; applied only to the pyradiomics version it was checked against
(tests/test_evaluate_speed.py compares every feature with the unpatched library's).
"""

from __future__ import annotations

import numpy as np

CHECKED_VERSION = "3.1.4"
ORIGINAL = None  # the library's method, once install() has replaced it


def sums_by_index(P: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """out[v, k, a] = sum of P[v, i, j, a] over the cells with index[i, j] == k, for k in [0, n)."""
    n_voxels, n_gray, _, n_angles = P.shape
    keep = ((index >= 0) & (index < n)).ravel()
    cells = P.reshape(n_voxels, n_gray * n_gray, n_angles)[:, keep, :]
    bins = index.ravel()[keep]
    out = np.empty((n_voxels, n, n_angles))
    for v in range(n_voxels):
        for a in range(n_angles):
            out[v, :, a] = np.bincount(bins, weights=cells[v, :, a], minlength=n)
    return out


def calculate_coefficients(self) -> None:
    """RadiomicsGLCM._calculateCoefficients (pyradiomics 3.1.4) with pxAddy/pxSuby by bincount."""
    P = self.P_glcm
    n_gray = self.coefficients["Ng"]
    eps = np.spacing(1)
    gray_levels = self.coefficients["grayLevels"].astype("float")
    if not np.array_equal(gray_levels, np.round(gray_levels)):  # never after pyradiomics' binning
        return ORIGINAL(self)
    i, j = np.meshgrid(gray_levels, gray_levels, indexing="ij", sparse=True)
    k_sum = np.arange(2, (n_gray * 2) + 1, dtype="float")
    k_diff = np.arange(0, n_gray, dtype="float")
    # pyradiomics compares float sums with each k exactly; the gray levels are whole numbers
    sum_index, diff_index = (i + j - 2).astype(np.int64), np.abs(i - j).astype(np.int64)
    self.coefficients.update({
        "eps": eps, "i": i, "j": j, "kValuesSum": k_sum, "kValuesDiff": k_diff,
        "px": P.sum(2, keepdims=True), "py": P.sum(1, keepdims=True),
        "ux": np.sum(i[None, :, :, None] * P, (1, 2), keepdims=True),
        "uy": np.sum(j[None, :, :, None] * P, (1, 2), keepdims=True),
        "pxAddy": sums_by_index(P, sum_index, len(k_sum)),
        "pxSuby": sums_by_index(P, diff_index, len(k_diff)),
        "HXY": (-1) * np.sum((P * np.log2(P + eps)), (1, 2)),
    })


def install() -> bool:
    """Patch pyradiomics' GLCM if it is the checked version; True if patched."""
    from importlib.metadata import version

    from radiomics import glcm

    global ORIGINAL
    if version("pyradiomics-bhklab") != CHECKED_VERSION:
        return False
    if glcm.RadiomicsGLCM._calculateCoefficients is not calculate_coefficients:
        ORIGINAL = glcm.RadiomicsGLCM._calculateCoefficients
        glcm.RadiomicsGLCM._calculateCoefficients = calculate_coefficients
    return True
