"""Paired metrics for image-to-image experiments (pix2pix, pix2pix_inpaint): each generated image
against the real image of the same held-out pair (samples.csv rows of kind fake/real/mask/region
sharing `pair`; sample renders every held-out pair).

Per pair: SSIM, PSNR (scikit-image) and MAE over the whole image, inside the lesion mask and
inside the painted region (inpainting only), in [0, 1] intensity and in HU by inverting the
dataset's window (HU = low + v * (high - low); values outside the window were clipped by
prepare and cannot be recovered). SSIM and PSNR are unchanged by that linear map when
data_range scales with it, so they are reported once; MAE is reported in both units. The lesion
is the mask value of the dataset's lesion label (medgan.labels). Lesion contrast: mean HU inside
the lesion minus mean HU of the organ tissue within 3 pixels around it, for generated and real
slices, and their mean absolute difference.

Each entry: the mean over pairs, a 95% interval over patients (common.intervals) — neighbouring
slices of one patient are nearly the same image, so pairs are not independent — n_pairs,
n_patients and a per-patient breakdown (mean and n_pairs per patient)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image
from scipy.ndimage import binary_dilation
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ..labels import encoding_of
from .common import MetricSkipped, interval, load_gray, number

REGIONS = ("image", "lesion", "region")
SCORES = ("ssim", "psnr", "mae", "mae_hu")
CONTRAST = ("paired_contrast_hu_fake", "paired_contrast_hu_real", "paired_contrast_error_hu")
NAMES = [f"paired_{m}_{r}" for r in REGIONS for m in SCORES] + list(CONTRAST)
SURROUND_PIXELS = 3


def pairs(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per pair (index `pair`, sorted) with columns fake, real, mask, region (files)."""
    if samples is None or "pair" not in samples.columns or not (samples["kind"] == "real").any():
        raise MetricSkipped("not a paired experiment (samples.csv has no kind=real rows with a `pair`)")
    wide = samples.pivot_table(index="pair", columns="kind", values="file", aggfunc="first")
    if "fake" not in wide or "real" not in wide:
        raise MetricSkipped("samples.csv pairs lack fake or real images")
    wide = wide.dropna(subset=["fake", "real"]).sort_index()
    for kind in ("mask", "region"):
        if kind not in wide:
            wide[kind] = None
    return wide


def patients_of(inp, wide: pd.DataFrame) -> tuple[np.ndarray, str]:
    """The patient of each pair: samples.csv's `case`, else the manifest row whose file stem is
    the pair, else each pair on its own (said so in the entries)."""
    samples = inp.samples
    if "case" in samples.columns and samples["case"].notna().all():
        case = samples.drop_duplicates("pair").set_index("pair")["case"].astype(str)
        return case.loc[wide.index].to_numpy(), "patient"
    manifest = inp.manifest
    if manifest is not None and {"case", "path"} <= set(manifest.columns):
        by_stem = pd.Series(manifest["case"].astype(str).to_numpy(),
                            index=[p.rsplit("/", 1)[-1].rsplit(".", 1)[0] for p in manifest["path"]])
        by_stem = by_stem[~by_stem.index.duplicated()]
        if set(wide.index) <= set(by_stem.index):
            return by_stem.loc[wide.index].to_numpy(), "patient"
    return wide.index.to_numpy(dtype=str), "pair (no patient ids found)"


def window_of(inp) -> tuple[float, float]:
    manifest = inp.manifest
    if manifest is not None and {"window_low", "window_high"} <= set(manifest.columns) and len(manifest):
        return float(manifest["window_low"].iloc[0]), float(manifest["window_high"].iloc[0])
    low, high = inp.dataset.get("window", (0.0, 1.0))
    return float(low), float(high)


def region_scores(fake: np.ndarray, real: np.ndarray, region: np.ndarray | None, width: float) -> list[float]:
    """[ssim, psnr, mae, mae_hu] of one pair, over the whole image (region None) or a region."""
    if region is None:
        ssim = structural_similarity(real, fake, data_range=1.0)
        psnr = peak_signal_noise_ratio(real, fake, data_range=1.0)
        mae = float(np.abs(fake - real).mean())
    else:
        if not region.any():
            return [np.nan] * 4
        _, ssim_map = structural_similarity(real, fake, data_range=1.0, full=True)
        ssim = float(ssim_map[region].mean())
        mse = float(((fake - real)[region] ** 2).mean())
        psnr = 10 * np.log10(1.0 / mse) if mse > 0 else np.inf
        mae = float(np.abs(fake - real)[region].mean())
    return [float(ssim), float(psnr), mae, mae * width]


def lesion_contrast(image: np.ndarray, lesion: np.ndarray, organ: np.ndarray, width: float) -> float:
    """Mean inside the lesion minus mean of the organ ring around it, in HU (NaN: no lesion)."""
    if not lesion.any():
        return np.nan
    ring = binary_dilation(lesion, iterations=SURROUND_PIXELS) & ~lesion
    ring = ring & organ if (ring & organ).any() else ring
    return float(image[lesion].mean() - image[ring].mean()) * width


def _read_masks(files, size) -> np.ndarray | None:
    if any(not isinstance(f, str) for f in files):
        return None
    return np.stack([np.asarray(Image.open(f).convert("L").resize(size[::-1], Image.NEAREST)) for f in files])


def per_pair_scores(inp, wide: pd.DataFrame) -> np.ndarray:
    """(n_pairs, len(NAMES)) scores; NaN where a region is empty or absent."""
    fakes = load_gray(list(wide["fake"]), inp.image_size)
    reals = load_gray(list(wide["real"]), inp.image_size)
    masks, painted = _read_masks(wide["mask"], inp.image_size), _read_masks(wide["region"], inp.image_size)
    encoding = encoding_of(inp.dataset)
    low, high = window_of(inp)
    width = high - low
    scores = []
    for k in range(len(wide)):
        lesion = encoding.lesion_in_view(masks[k]) if masks is not None else np.zeros(fakes[k].shape, bool)
        region = painted[k] > 127 if painted is not None else np.zeros(fakes[k].shape, bool)
        row = region_scores(fakes[k], reals[k], None, width)
        row += region_scores(fakes[k], reals[k], lesion, width)
        row += region_scores(fakes[k], reals[k], region, width)
        organ = encoding.organ_in_view(masks[k]) if masks is not None else lesion
        contrast_fake = lesion_contrast(fakes[k], lesion, organ, width)
        contrast_real = lesion_contrast(reals[k], lesion, organ, width)
        row += [contrast_fake, contrast_real, abs(contrast_fake - contrast_real)]
        scores.append(row)
    return np.array(scores, dtype=float)


def why_empty(name: str) -> str:
    if "_region" in name:
        return "no painted region (not an inpainting experiment)"
    if "lesion" in name or "contrast" in name:
        return "no pair has lesion pixels in its mask"
    return "no finite value"


def entry(values: np.ndarray, patients: np.ndarray, clusters: str, inp, name: str) -> dict:
    """Mean over pairs with finite values, a patient-level interval and the per-patient means."""
    keep = np.isfinite(values)
    values, patients = values[keep], patients[keep]
    n_patients = len(np.unique(patients))
    if len(values) == 0:
        return {"skipped": why_empty(name), "n_real": 0, "n_fake": 0, "seed": inp.seed}
    unit = "patient:" if clusters == "patient" else "image:"
    ci = interval(lambda i, v=values: float(v[i].mean()), [np.char.add(unit, patients.astype(str))], name,
                  inp.settings, inp.seed)
    per_patient = {str(p): {"value": float(values[patients == p].mean()), "n_pairs": int((patients == p).sum())}
                   for p in np.unique(patients)}
    return number(values.mean(), inp, ci, len(values), len(values), n_pairs=len(values),
                  n_patients=n_patients, bootstrap_unit=clusters, per_patient=per_patient)


def compute(inp) -> dict:
    if inp.is_baseline:
        raise MetricSkipped("not applicable to the real-vs-real baseline (no pairs)")
    wide = pairs(inp.samples)
    patients, clusters = patients_of(inp, wide)
    scores = per_pair_scores(inp, wide)
    return {name: entry(scores[:, col], patients, clusters, inp, name) for col, name in enumerate(NAMES)}
