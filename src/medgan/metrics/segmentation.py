"""Segmentation utility of a synthetic image/mask set (`medgan synthesize`): does it help a
lesion segmentation model?

A small 2-D U-Net (MONAI's UNet) is trained to segment lesions on three arms, with the same
iterations, batch size, learning rate and seed:
  real       the real training pairs of the dataset,
  mixed      real + synthetic pairs, each batch drawing `synthetic_ratio` of its images from
             the synthetic set,
  synthetic  synthetic pairs only,
and scored on every real held-out slice (evaluate.real_split, healthy slices included): Dice
pooled over all slices (false positives on healthy slices count) and lesion-wise sensitivity
(a real lesion, a connected component, is found when a predicted pixel touches it), with 95%
patient-level intervals (common.intervals). `segmentation_chance_dice` is the expected Dice of
marking pixels at random at the training lesion prevalence. The lesion contrast of the
synthetic set (mean HU inside lesions minus the organ ring around them) is reported beside the
same contrast in the real training slices: a generated lesion must look like lesion, not organ."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage
from tqdm import tqdm

from .. import paths
from ..labels import Encoding, encoding_of
from .common import MetricSkipped, intervals, number

ARMS = ("real", "mixed", "synthetic")
NAMES = ([f"segmentation_{arm}_{s}" for arm in ARMS for s in ("dice", "lesion_sensitivity")]
         + ["segmentation_chance_dice", "segmentation_contrast_hu_synthetic", "segmentation_contrast_hu_real"])
SURROUND_PIXELS = 3


def read_masks(folder: Path, rel_paths) -> np.ndarray:
    return np.stack([np.asarray(Image.open(Path(folder) / p)) for p in rel_paths])


def read_images(folder: Path, rel_paths) -> np.ndarray:
    return np.stack([np.asarray(Image.open(Path(folder) / p).convert("L")) for p in rel_paths])


# -- lesion contrast ---------------------------------------------------------------------------

def lesion_contrasts(images: np.ndarray, masks: np.ndarray, encoding: Encoding, window) -> np.ndarray:
    """Per slice with a lesion: mean HU inside it minus mean HU of organ tissue within
    SURROUND_PIXELS around it (NaN where there is no lesion or no surrounding organ)."""
    low, high = window
    out = np.full(len(images), np.nan)
    organ = np.isin(masks, encoding.organ_values) if encoding.max_value > 1 else np.ones(masks.shape, bool)
    for k, (image, mask) in enumerate(zip(images, masks)):
        lesion = mask == encoding.lesion_value
        ring = ndimage.binary_dilation(lesion, iterations=SURROUND_PIXELS) & ~lesion & organ[k]
        if lesion.any() and ring.any():
            hu = low + image.astype(float) / 255.0 * (high - low)
            out[k] = hu[lesion].mean() - hu[ring].mean()
    return out


def _mean_ci(values: np.ndarray, cases: np.ndarray, seed: int, n_boot: int = 200) -> dict:
    keep = np.isfinite(values)
    values, cases = values[keep], cases[keep]
    if not len(values):
        return {"value": None, "n": 0}
    cis = intervals(lambda i: [float(values[i].mean())], [np.char.add("patient:", cases.astype(str))],
                    ["contrast_hu"], {"bootstrap": n_boot}, seed)
    out = {"value": float(values.mean()), "n": int(len(values)), "n_patients": int(len(set(cases)))}
    if cis:
        out.update(cis[0])
    return out


def lesion_contrast_summary(folder: Path, manifest: pd.DataFrame, slices: Path, real_rows: pd.DataFrame,
                            encoding: Encoding, seed: int) -> dict:
    """Contrast of the synthetic set (all, and per edit) against the real training slices."""
    window = (float(real_rows["window_low"].iloc[0]), float(real_rows["window_high"].iloc[0])) \
        if "window_low" in real_rows and real_rows["window_low"].notna().all() else (0.0, 255.0)
    fake = lesion_contrasts(read_images(folder, manifest["path"]), read_masks(folder, manifest["mask_path"]),
                            encoding, window)
    real = lesion_contrasts(read_images(slices, real_rows["path"]), read_masks(slices, real_rows["mask_path"]),
                            encoding, window)
    cases = manifest["case"].astype(str).to_numpy()
    out = {"window_hu": list(window), "synthetic": _mean_ci(fake, cases, seed),
           "real_train": _mean_ci(real, real_rows["case"].astype(str).to_numpy(), seed), "by_edit": {}}
    for kind in sorted(set(manifest["edit"])):
        rows = (manifest["edit"] == kind).to_numpy()
        out["by_edit"][kind] = _mean_ci(fake[rows], cases[rows], seed)
    return out


# -- the U-Net arms ----------------------------------------------------------------------------

def build_unet(channels, prevalence: float):
    """MONAI's UNet with batch norm; its output bias starts at the lesion prevalence's logit
    (the RetinaNet prior), else the first hundreds of steps only learn that lesions are rare."""
    import torch
    from monai.networks.nets import UNet

    model = UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=tuple(channels),
                 strides=(2,) * (len(channels) - 1), num_res_units=1, norm="batch")
    last = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))][-1]
    p = min(max(prevalence, 1e-4), 0.5)
    with torch.no_grad():
        last.bias.fill_(float(np.log(p / (1 - p))))
    return model


def train_unet(pools: list[tuple[np.ndarray, np.ndarray]], shares: list[float], settings: dict, seed: int,
               desc: str = "U-Net"):
    """Fit build_unet on image pools ((N, H, W) uint8 images, (N, H, W) bool lesions); each
    batch draws round(share x batch) images from each pool."""
    import torch
    from monai.losses import DiceCELoss

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    prevalence = sum(share * float(y.mean()) for (_, y), share in zip(pools, shares))
    model = build_unet(settings["channels"], prevalence)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    loss_fn = DiceCELoss(sigmoid=True, batch=True)  # one Dice over the batch: most slices have no lesion
    batch = settings["batch_size"]
    counts = [int(round(s * batch)) for s in shares]
    counts[-1] = batch - sum(counts[:-1])
    model.train()
    for _ in tqdm(range(settings["iterations"]), desc=desc, unit="step", leave=False):
        xs, ys = [], []
        for (x, y), n in zip(pools, counts):
            if n > 0:
                pick = rng.integers(0, len(x), n)
                xs.append(x[pick]), ys.append(y[pick])
        x = torch.from_numpy(np.concatenate(xs)[:, None].astype(np.float32) / 255.0)
        y = torch.from_numpy(np.concatenate(ys)[:, None].astype(np.float32))
        flip = torch.from_numpy(rng.random(len(x)) < 0.5)[:, None, None, None]
        x, y = torch.where(flip, x.flip(-1), x), torch.where(flip, y.flip(-1), y)
        optimiser.zero_grad()
        loss_fn(model(x), y).backward()
        optimiser.step()
    return model.eval()


def predict(model, images: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        x = torch.from_numpy(images[:, None].astype(np.float32) / 255.0)
        return torch.cat([model(x[i:i + 64]) for i in range(0, len(x), 64)])[:, 0].numpy() > 0


def per_slice_counts(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N, 5): true positive, predicted and true lesion pixels; lesions found and lesions."""
    out = np.zeros((len(pred), 5))
    for k, (p, t) in enumerate(zip(pred, truth)):
        components, n = ndimage.label(t)
        found = len(np.setdiff1d(np.unique(components[p]), [0]))
        out[k] = [(p & t).sum(), p.sum(), t.sum(), found, n]
    return out


def scores(counts: np.ndarray) -> list[float]:
    tp, predicted, true, found, lesions = counts.sum(0)
    dice = 2 * tp / (predicted + true) if predicted + true else np.nan
    return [dice, found / lesions if lesions else np.nan]


def pools_of(inp, encoding: Encoding):
    slices = paths.path(paths.SLICES, dataset=inp.dataset["name"])
    manifest = inp.manifest[inp.manifest["mask_path"] != ""] if "mask_path" in inp.manifest else inp.manifest.iloc[:0]
    train, test = manifest[manifest["split"] == "train"], manifest[manifest["split"] == inp.settings["real_split"]]
    if train.empty or test.empty:
        raise MetricSkipped(f"needs real label maps in the train and '{inp.settings['real_split']}' splits "
                            f"(write_masks: true)")
    lesion = encoding.lesion_value
    real = (read_images(slices, train["path"]), read_masks(slices, train["mask_path"]) == lesion)
    held_out = (read_images(slices, test["path"]), read_masks(slices, test["mask_path"]) == lesion,
                test["case"].astype(str).to_numpy())
    synthetic_manifest = pd.read_csv(inp.synthetic / "manifest.csv", dtype={"case": str})
    synthetic = (read_images(inp.synthetic, synthetic_manifest["path"]),
                 read_masks(inp.synthetic, synthetic_manifest["mask_path"]) == lesion)
    return real, synthetic, held_out


def compute(inp) -> dict:
    if inp.is_baseline:
        raise MetricSkipped("not applicable to the real-vs-real baseline (no synthetic pairs)")
    if getattr(inp, "synthetic", None) is None or not (Path(inp.synthetic) / "manifest.csv").is_file():
        raise MetricSkipped("no synthetic set — add the experiment to synthesize.experiments and run "
                            "`medgan synthesize EXPERIMENT`")
    encoding = encoding_of(inp.dataset)
    settings = inp.settings["segmentation"]
    real, synthetic, (test_x, test_y, cases) = pools_of(inp, encoding)
    ratio = settings["synthetic_ratio"]
    arms = {"real": ([real], [1.0]), "mixed": ([real, synthetic], [1 - ratio, ratio]),
            "synthetic": ([synthetic], [1.0])}
    out = {}
    for arm, (pools, shares) in arms.items():
        model = train_unet(pools, shares, settings, inp.seed, f"U-Net on {arm} pairs")
        counts = per_slice_counts(predict(model, test_x), test_y)
        values = scores(counts)
        cis = intervals(lambda i: scores(counts[i]), [np.char.add("patient:", np.asarray(cases, dtype=str))],
                        [f"segmentation_{arm}_{s}" for s in ("dice", "lesion_sensitivity")], inp.settings,
                        inp.seed) or [None, None]
        n_train = sum(len(p[0]) for p in pools)
        n_fake = len(synthetic[0]) if arm != "real" else 0
        for stat, value, ci in zip(("dice", "lesion_sensitivity"), values, cis):
            name = f"segmentation_{arm}_{stat}"
            if not np.isfinite(value):
                out[name] = {"skipped": f"undefined: no lesion in the real '{inp.settings['real_split']}' split",
                             "n_real": len(test_x), "n_fake": n_fake, "seed": inp.seed}
                continue
            out[name] = number(value, inp, ci, len(test_x), n_fake, n_train=n_train,
                               n_patients=len(set(cases)), n_lesions=int(counts[:, 4].sum()),
                               iterations=settings["iterations"], synthetic_share=0.0 if arm == "real" else
                               (1.0 if arm == "synthetic" else ratio))
    prevalence, test_prevalence = real[1].mean(), test_y.mean()
    chance = 2 * prevalence * test_prevalence / (prevalence + test_prevalence) if prevalence + test_prevalence else 0.0
    out["segmentation_chance_dice"] = number(chance, inp, None, len(test_x), 0,
                                             of="random pixels at the training lesion prevalence")
    out.update(contrast_entries(inp))
    return out


def contrast_entries(inp) -> dict:
    """The synthetic set's lesion contrast (its synthesize.json) as two entries."""
    import json

    summary = json.loads((Path(inp.synthetic) / "synthesize.json").read_text()).get("lesion_contrast_hu", {})
    out = {}
    for key, name in (("synthetic", "segmentation_contrast_hu_synthetic"), ("real_train", "segmentation_contrast_hu_real")):
        entry = summary.get(key) or {}
        if entry.get("value") is None:
            out[name] = {"skipped": "no lesion with surrounding organ", "n_real": 0, "n_fake": 0, "seed": inp.seed}
            continue
        ci = {k: entry[k] for k in ("ci_low", "ci_high", "ci_method", "ci_df", "ci_unit", "ci_missing",
                                    "n_patients_real") if k in entry} or None
        n = entry["n"]
        out[name] = number(entry["value"], inp, ci, 0 if key == "synthetic" else n, n if key == "synthetic" else 0,
                           of="mean HU inside lesions - organ ring of 3 pixels", n_patients=entry.get("n_patients"))
    return out
