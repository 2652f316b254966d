"""Phantom raw data: LiTS-format CT volumes that medgan generates itself.

The embedded default needs data without a download. These volumes mimic what LiTS users
have: int16 Hounsfield units, a NIfTI affine with realistic spacing, a body with fat and
muscle, spine, aorta, kidneys, bowel gas, a liver (label 1) and hypodense tumours (label 2),
scanner noise, and per-case orientations that differ (as LiTS cases do).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage
from tqdm import tqdm

from .atomic import atomic_dir

# Typical portal-venous-phase CT values (HU).
AIR, FAT, MUSCLE, SOFT_TISSUE = -1000, -100, 50, 35
LIVER, TUMOUR, VESSEL, KIDNEY = 105, 45, 170, 150
CORTICAL_BONE, CANCELLOUS_BONE, CSF, GAS = 750, 250, 10, -850

LIVER_LABEL, TUMOUR_LABEL = 1, 2

# Per-case voxel orders (nibabel ornt rows: [new axis, flip]); LiTS cases differ like this.
ORIENTATIONS = (
    np.array([[0, 1], [1, 1], [2, 1]]),  # RAS
    np.array([[0, -1], [1, -1], [2, 1]]),  # LPS, as DICOM-converted volumes often are
    np.array([[0, -1], [1, -1], [2, -1]]),  # LPI: slices stored top-down
)


@dataclass(frozen=True)
class PhantomSpec:
    n_cases: int = 8
    shape: tuple[int, int, int] = (160, 160, 40)
    spacing: tuple[float, float, float] = (2.2, 2.2, 5.0)
    noise_hu: float = 12.0

    @classmethod
    def from_params(cls, p: dict) -> "PhantomSpec":
        return cls(p["n_cases"], tuple(p["shape"]), tuple(p["spacing"]), p["noise_hu"])


def _ellipse(x, y, cx, cy, ax, ay):
    return ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 <= 1.0


def _liver_profile(zf: np.ndarray) -> np.ndarray:
    """Liver cross-section scale along the body axis (0 outside its extent)."""
    return np.sqrt(np.clip(1.0 - ((zf - 0.62) / 0.36) ** 2, 0.0, None))


def make_case(spec: PhantomSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One case in RAS voxel order: (HU volume int16, label volume uint8)."""
    nx, ny, nz = spec.shape
    sx, sy, _ = spec.spacing
    x = ((np.arange(nx) - nx / 2 + 0.5) * sx)[:, None, None]  # + = patient's right
    y = ((np.arange(ny) - ny / 2 + 0.5) * sy)[None, :, None]  # + = anterior
    zf = ((np.arange(nz) + 0.5) / nz)[None, None, :]  # 0 = caudal, 1 = cranial

    size = rng.uniform(0.92, 1.05)
    a, b = 0.42 * nx * sx * size, 0.31 * ny * sy * size
    hu = np.full(spec.shape, AIR, np.float32)
    label = np.zeros(spec.shape, np.uint8)

    body = _ellipse(x, y, 0, 0, a, b) & np.ones_like(zf, bool)
    hu[body] = FAT
    hu[_ellipse(x, y, 0, 0, a - 16, b - 16) & body] = MUSCLE
    inner = _ellipse(x, y, 0, 0, a - 26, b - 24) & body
    hu[inner] = SOFT_TISSUE
    fat_texture = ndimage.gaussian_filter(rng.standard_normal(spec.shape), (3, 3, 1)) > 0.25
    hu[inner & fat_texture] = FAT + 20

    spine_y = -0.62 * b
    hu[_ellipse(x, y, 0, spine_y, 18, 17) & body] = CORTICAL_BONE
    hu[_ellipse(x, y, 0, spine_y, 14, 13) & body] = CANCELLOUS_BONE
    hu[_ellipse(x, y, 0, spine_y - 27, 13, 12) & body] = CORTICAL_BONE
    hu[_ellipse(x, y, 0, spine_y - 27, 7, 7) & body] = CSF
    hu[_ellipse(x, y, -24, spine_y + 28, 11, 11) & body] = VESSEL

    kidneys = zf < 0.5
    for side in (-1, 1):
        hu[_ellipse(x, y, side * 0.36 * a, spine_y + 12, 22, 30) & kidneys & inner] = KIDNEY
    hu[_ellipse(x, y, -0.35 * a, 0.35 * b, 30, 22) & (zf > 0.55) & inner] = GAS

    scale = _liver_profile(zf)
    lx, ly = 0.42 * a + rng.uniform(-6, 6), 0.12 * b + rng.uniform(-6, 6)
    liver = (
        (((x - lx) / (0.44 * a * scale + 1e-6)) ** 2 + ((y - ly) / (0.62 * b * scale + 1e-6)) ** 2 <= 1)
        & (scale > 0)
        & inner
    )
    hu[liver] = LIVER
    label[liver] = LIVER_LABEL

    coords = np.argwhere(liver)
    z = (np.arange(nz) * spec.spacing[2])[None, None, :]
    for _ in range(rng.integers(2, 5)):
        ci, cj, ck = coords[rng.integers(len(coords))]
        radius = rng.uniform(8, 22)
        ball = ((x - x.flat[ci]) ** 2 + (y - y.flat[cj]) ** 2 + (z - z.flat[ck]) ** 2) <= radius**2
        tumour = ball & liver
        hu[tumour] = TUMOUR + rng.uniform(-10, 10)
        label[tumour] = TUMOUR_LABEL

    hu = ndimage.gaussian_filter(hu, (0.7, 0.7, 0))  # partial-volume blur at edges
    hu += rng.normal(0, spec.noise_hu, hu.shape).astype(np.float32)
    return np.clip(np.rint(hu), -1024, 3071).astype(np.int16), label


def _nifti(array: np.ndarray, spacing, orientation: np.ndarray) -> nib.Nifti1Image:
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = -np.array(array.shape) * np.array(spacing) / 2
    img = nib.Nifti1Image(array, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    return img.as_reoriented(orientation)


def write_lits(out: str | Path, spec: PhantomSpec, seed: int) -> list[Path]:
    """Write `volume-N.nii.gz` + `segmentation-N.nii.gz` for N in 0..n_cases-1, atomically."""
    written = []
    with atomic_dir(out) as tmp:
        for case in tqdm(range(spec.n_cases), desc="phantoms", unit="case"):
            rng = np.random.default_rng([seed, case])
            hu, label = make_case(spec, rng)
            orientation = ORIENTATIONS[case % len(ORIENTATIONS)]
            nib.save(_nifti(hu, spec.spacing, orientation), tmp / f"volume-{case}.nii.gz")
            nib.save(_nifti(label, spec.spacing, orientation), tmp / f"segmentation-{case}.nii.gz")
            written.append(Path(out) / f"volume-{case}.nii.gz")
    return written


GENERATORS = {"lits": write_lits}


def generate(kind: str, out: str | Path, params: dict, seed: int) -> list[Path]:
    return GENERATORS[kind](out, PhantomSpec.from_params(params), seed)
