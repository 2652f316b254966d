"""Phantom raw data that medgan generates itself, in the layouts of the real seed sets.

The embedded default needs data without a download. Kinds (GENERATORS):
- `lits`: LiTS-format CT volumes: int16 Hounsfield units, a NIfTI affine with realistic
  spacing, a body with fat and muscle, spine, aorta, kidneys, bowel gas, a liver (label 1) and
  hypodense tumours (label 2), scanner noise, and per-case orientations that differ.
- `covid_ct`: UCSD COVID-CT layout: `CT_COVID/` + `CT_NonCOVID/` lung CT slices (COVID ones
  with ground-glass opacities), `COVID-CT-MetaInfo.xlsx` (file -> patient, several images per
  patient) and the authors' `Data-split/{COVID,NonCOVID}/{train,val,test}CT_*.txt`.
- `covid_lesion_pairs`: the lesion-segmentation layout: `frames/` + `masks/` (0/255 PNG).
- `brain_mri`: brain-tumour-detection layout: `yes/` + `no/` T1-like axial slices.
The 2D sets carry the real sets' quirks: mixed sizes and aspect ratios, JPG and PNG, an RGB
and an RGBA file among grayscale ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage
from tqdm import tqdm

from .atomic import atomic_dir

MARKER = ".medgan-phantoms.json"  # in every folder `medgan phantoms` wrote: only such a folder is replaced

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
    image_size: int = 128  # typical side of the 2D kinds' images (they vary around it)

    @classmethod
    def from_params(cls, p: dict) -> "PhantomSpec":
        return cls(p["n_cases"], tuple(p["shape"]), tuple(p["spacing"]), p["noise_hu"], p.get("image_size", 128))


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


# --- 2D kinds --------------------------------------------------------------------------------

LUNG_WINDOW = (-1000, 400)
LUNG, GROUND_GLASS = -850, -550


def _grid(height: int, width: int):
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return (x - width / 2) / (width / 2), (y - height / 2) / (height / 2)  # -1..1, + = image right / down


def lung_slice(height: int, width: int, rng: np.random.Generator, lesions: int) -> tuple[np.ndarray, np.ndarray]:
    """One axial chest CT slice in HU (radiological display) and its ground-glass lesion mask."""
    x, y = _grid(height, width)
    hu = np.full((height, width), AIR, np.float32)
    body = _ellipse(x, y, 0, 0.05, 0.92, 0.72)
    hu[body] = FAT
    hu[_ellipse(x, y, 0, 0.05, 0.84, 0.64)] = MUSCLE
    lungs = np.zeros_like(body)
    for side in (-1, 1):
        lungs |= _ellipse(x, y, side * 0.38, 0.0, 0.3 + rng.uniform(-0.03, 0.03), 0.5)
    hu[lungs] = LUNG
    smooth = ndimage.gaussian_filter(rng.standard_normal((height, width)), 1.0)
    vessels = smooth > 2.3 * smooth.std()  # sparse bright dots: vessels cut across
    hu[lungs & vessels] = -300
    hu[_ellipse(x, y, 0.08, 0.12, 0.2, 0.22)] = SOFT_TISSUE + 5  # heart
    hu[_ellipse(x, y, 0, 0.55, 0.08, 0.08)] = CORTICAL_BONE  # vertebra
    mask = np.zeros((height, width), bool)
    lung_pixels = np.argwhere(lungs)
    for _ in range(lesions):
        cy, cx = lung_pixels[rng.integers(len(lung_pixels))]
        ry, rx = rng.uniform(0.06, 0.16) * height, rng.uniform(0.06, 0.16) * width
        yy, xx = np.mgrid[0:height, 0:width]
        blob = (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) <= 1
        mask |= blob & lungs
    texture = ndimage.gaussian_filter(rng.standard_normal((height, width)), 2.0) * 120
    hu[mask] = GROUND_GLASS + texture[mask]
    hu = ndimage.gaussian_filter(hu, 0.8) + rng.normal(0, 15, hu.shape)
    return hu, mask.astype(np.uint8)


def _to_uint8(hu: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.clip((hu - low) * (255.0 / (high - low)), 0, 255).round().astype(np.uint8)


def _varied_size(base: int, rng: np.random.Generator) -> tuple[int, int]:
    """Height, width: sizes and aspect ratios differ like figure crops do."""
    return int(base * rng.uniform(0.7, 1.4)), int(base * rng.uniform(0.7, 1.4))


def _save_quirky(pixels: np.ndarray, path_stem: Path, index: int, rng: np.random.Generator) -> Path:
    """Mostly grayscale JPG/PNG; file 1 is RGB and file 2 RGBA, as some published files are."""
    image = Image.fromarray(pixels)
    if index == 1:
        image = image.convert("RGB")
    elif index == 2:
        image = image.convert("RGBA")
    suffix = ".png" if index == 2 or rng.uniform() < 0.4 else ".jpg"
    path = path_stem.parent / f"{path_stem.name}{suffix}"
    image.save(path, **({"quality": 90} if suffix == ".jpg" else {}))
    return path


def write_covid_ct(out: str | Path, spec: PhantomSpec, seed: int) -> list[Path]:
    """COVID-CT class folders with metadata (several images per patient) and authors' split."""
    written, meta, splits = [], {"COVID": [], "NonCOVID": []}, {}
    rng_split = np.random.default_rng([seed, 999])
    with atomic_dir(out) as tmp:
        for folder in ("CT_COVID", "CT_NonCOVID"):
            (tmp / folder).mkdir()
        for patient in tqdm(range(spec.n_cases), desc="phantoms covid_ct", unit="patient"):
            rng = np.random.default_rng([seed, patient])
            covid = patient % 2 == 0
            group = "COVID" if covid else "NonCOVID"
            split = ("train", "train", "train", "val", "test")[int(rng_split.integers(5))]
            for k in range(int(rng.integers(1, 4))):
                height, width = _varied_size(spec.image_size, rng)
                hu, _ = lung_slice(height, width, rng, lesions=int(rng.integers(1, 4)) if covid else 0)
                name = f"2020.{patient:03d}-p{k}" if covid else f"{patient}%{k}"
                path = _save_quirky(_to_uint8(hu, *LUNG_WINDOW), tmp / f"CT_{group}" / name, len(written), rng)
                meta[group].append({"File name": path.name, "Patient ID": str(patient)})
                splits.setdefault((group, split), []).append(path.name)
                written.append(Path(out) / path.relative_to(tmp))
        with pd.ExcelWriter(tmp / "COVID-CT-MetaInfo.xlsx") as excel:
            for group, rows in meta.items():
                pd.DataFrame(rows).to_excel(excel, sheet_name=group, index=False)
        for group in ("COVID", "NonCOVID"):
            (tmp / "Data-split" / group).mkdir(parents=True)
            for split in ("train", "val", "test"):
                names = splits.get((group, split), [])
                (tmp / "Data-split" / group / f"{split}CT_{group}.txt").write_text("".join(f"{n}\n" for n in names))
    return written


def write_covid_lesion_pairs(out: str | Path, spec: PhantomSpec, seed: int) -> list[Path]:
    """`frames/` + `masks/` with matching names; masks 0/255 PNG; some slices lesion-free."""
    written = []
    with atomic_dir(out) as tmp:
        (tmp / "frames").mkdir()
        (tmp / "masks").mkdir()
        for patient in tqdm(range(spec.n_cases), desc="phantoms covid_lesion_pairs", unit="patient"):
            rng = np.random.default_rng([seed, patient, 1])
            height, width = _varied_size(spec.image_size, rng)
            for k in range(2):
                lesions = 0 if (patient + k) % 3 == 0 else int(rng.integers(1, 4))  # a third lesion-free
                hu, mask = lung_slice(height, width, rng, lesions)
                stem = f"coronacases_{patient:03d}_slice{k:03d}"
                frame = _save_quirky(_to_uint8(hu, *LUNG_WINDOW), tmp / "frames" / stem, len(written), rng)
                Image.fromarray(mask * 255).save(tmp / "masks" / f"{stem}.png")
                written.append(Path(out) / "frames" / frame.name)
    return written


def brain_slice(height: int, width: int, rng: np.random.Generator, tumour: bool) -> np.ndarray:
    """T1-like axial brain MRI slice, 8-bit: skull, grey/white matter, ventricles, tumour."""
    x, y = _grid(height, width)
    a, b = rng.uniform(0.7, 0.85), rng.uniform(0.8, 0.92)
    image = np.zeros((height, width), np.float32)
    image[_ellipse(x, y, 0, 0, a, b)] = 200  # scalp and skull marrow
    image[_ellipse(x, y, 0, 0, a - 0.05, b - 0.05)] = 40  # cortical bone (dark in T1)
    brain = _ellipse(x, y, 0, 0, a - 0.1, b - 0.1)
    image[brain] = 110  # grey matter
    image[_ellipse(x, y, 0, 0, a - 0.25, b - 0.25)] = 150  # white matter
    for side in (-1, 1):
        image[_ellipse(x, y, side * 0.1, -0.05, 0.06, 0.22)] = 30  # ventricles
    if tumour:
        cx, cy = rng.uniform(-0.35, 0.35), rng.uniform(-0.4, 0.4)
        r = rng.uniform(0.1, 0.22)
        image[_ellipse(x, y, cx, cy, r, r * rng.uniform(0.8, 1.2)) & brain] = 235  # enhancing rim
        image[_ellipse(x, y, cx, cy, r * 0.6, r * 0.6) & brain] = 70  # necrotic core
    image = ndimage.gaussian_filter(image, 1.0) + rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_brain_mri(out: str | Path, spec: PhantomSpec, seed: int) -> list[Path]:
    """Brain-tumour-detection folders: `yes/` (tumour) and `no/`, one image per patient."""
    written = []
    with atomic_dir(out) as tmp:
        for folder in ("yes", "no"):
            (tmp / folder).mkdir()
        for case in tqdm(range(spec.n_cases), desc="phantoms brain_mri", unit="case"):
            rng = np.random.default_rng([seed, case, 2])
            tumour = case % 5 < 3  # the real set has more `yes` than `no`
            height, width = _varied_size(spec.image_size * 2, rng)
            pixels = brain_slice(height, width, rng, tumour)
            stem = tmp / ("yes" if tumour else "no") / (f"Y{case}" if tumour else f"No{case}")
            written.append(Path(out) / _save_quirky(pixels, stem, case, rng).relative_to(tmp))
    return written


GENERATORS = {"lits": write_lits, "covid_ct": write_covid_ct, "covid_lesion_pairs": write_covid_lesion_pairs,
              "brain_mri": write_brain_mri}


def generate(kind: str, out: str | Path, params: dict, seed: int) -> list[Path]:
    return GENERATORS[kind](out, PhantomSpec.from_params(params), seed)
