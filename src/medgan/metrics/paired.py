"""Paired metrics for image-to-image experiments (pix2pix): each generated image against the
real image of the same held-out pair (samples.csv rows of kind fake/real/mask sharing `pair`).

Per pair: SSIM, PSNR (scikit-image) and MAE, over the whole image and inside the lesion mask,
in [0, 1] intensity and in HU by inverting the dataset's window (HU = low + v * (high - low);
values outside the window were clipped by prepare and cannot be recovered). SSIM and PSNR are
unchanged by that linear map when data_range scales with it, so they are reported once; MAE is
reported in both units. The lesion is the mask's highest label over the experiment's masks
(2 in a 0/1/2 organ+lesion mask, 1 in a 0/1 lesion mask). Mean over pairs with a bootstrap CI."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from .common import MetricSkipped, bootstrap_ci, load_gray, number

REGIONS = ("image", "lesion")
NAMES = [f"paired_{m}_{r}" for r in REGIONS for m in ("ssim", "psnr", "mae", "mae_hu")]


def pairs(samples):
    """(fake path, real path, mask path or None) per pair, sorted by pair."""
    if samples is None or "pair" not in samples.columns or not (samples["kind"] == "real").any():
        raise MetricSkipped("not a paired experiment (samples.csv has no kind=real rows with a `pair`)")
    wide = samples.pivot_table(index="pair", columns="kind", values="file", aggfunc="first")
    if "fake" not in wide or "real" not in wide:
        raise MetricSkipped("samples.csv pairs lack fake or real images")
    wide = wide.dropna(subset=["fake", "real"]).sort_index()
    masks = wide["mask"] if "mask" in wide else [None] * len(wide)
    return list(zip(wide["fake"], wide["real"], masks))


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


def per_pair_scores(inp) -> tuple[np.ndarray, int]:
    triples = pairs(inp.samples)
    fakes = load_gray([t[0] for t in triples], inp.image_size)
    reals = load_gray([t[1] for t in triples], inp.image_size)
    has_masks = all(t[2] is not None and isinstance(t[2], str) for t in triples)
    masks = None
    if has_masks:
        from PIL import Image

        masks = np.stack([np.asarray(Image.open(t[2]).resize(inp.image_size[::-1], Image.NEAREST))
                          for t in triples])
    low, high = window_of(inp)
    scores = []
    for k in range(len(triples)):
        row = region_scores(fakes[k], reals[k], None, high - low)
        lesion = masks[k] == masks.max() if masks is not None and masks.max() > 0 else np.zeros_like(fakes[k], bool)
        row += region_scores(fakes[k], reals[k], lesion, high - low)
        scores.append(row)
    return np.array(scores), len(triples)


def compute(inp) -> dict:
    if inp.is_baseline:
        raise MetricSkipped("not applicable to the real-vs-real baseline (no pairs)")
    scores, n = per_pair_scores(inp)
    out = {}
    for col, name in enumerate(NAMES):
        values = scores[:, col]
        values = values[np.isfinite(values)]
        if len(values) == 0:
            out[name] = {"skipped": "no pair has lesion pixels in its mask" if "lesion" in name
                         else "no finite value", "n_real": n, "n_fake": n, "seed": inp.seed}
            continue
        ci = bootstrap_ci(lambda i, v=values: float(v[i].mean()), (len(values),), inp, name)
        out[name] = number(values.mean(), inp, ci, len(values), len(values), pairs=n)
    return out
