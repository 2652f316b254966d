"""synthesize: edit the label maps of a dataset's training split (never the held-out split) and
render each edited map through a trained mask -> image model (pix2pix, pix2pix_inpaint) into an
augmentation set of image/mask pairs, laid out as ingest lays out a dataset:

  data/synthetic/<experiment>/train/<class>/<case>_<index>_<copy>.png
  data/synthetic/<experiment>/masks/train/<class>/<case>_<index>_<copy>.png   (label values)
  data/synthetic/<experiment>/manifest.csv    ingest's columns + source_path, edit, edit_detail,
                                              lesion_count, lesion_area_mm2, model, rendering, seed, copy
  data/synthetic/<experiment>/synthesize.json settings, counts per edit, lesion contrast (HU)

Rendering (`synthesize.rendering`): `whole` = the model's image of the whole edited map; `paint`
= only the edited region (changed pixels grown by paint_margin_px) is replaced in the real slice
(pix2pix_inpaint paints it; a pix2pix image is blended in across a feathered border); `auto` =
paint for pix2pix_inpaint, whole for pix2pix. organ_pixels/lesion_pixels count pixels of the
written (edited) map. Deterministic from params seed (or synthesize.seed)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from . import config, edits, inpaint, paths, variants
from .atomic import atomic_dir
from .errors import MedganError
from .image_io import to_uint8
from .ingest.writer import MANIFEST_COLUMNS
from .metrics.segmentation import lesion_contrast_summary
from .modelio import load_generator
from .prepare import load_images, load_manifest
from .sample import model_encoding, set_test_time_dropout

EXTRA_COLUMNS = ["source_path", "edit", "edit_detail", "lesion_count", "lesion_area_mm2", "model", "rendering",
                 "seed", "copy"]
BATCH = 32


class SynthesisError(MedganError):
    """The synthesis run cannot start: missing model, wrong variant, unusable dataset."""


def synthetic_folder(experiment: str) -> Path:
    return paths.path(paths.SYNTHETIC, experiment=experiment)


def pixel_mm_of(rows: pd.DataFrame, slices: Path, settings: dict) -> np.ndarray:
    """(N, 2) mm per written pixel (y, x): the manifest's pixel_mm_y/x (volumes), else
    synthesize.pixel_mm for datasets that do not record it."""
    if {"pixel_mm_y", "pixel_mm_x"} <= set(rows.columns) and rows[["pixel_mm_y", "pixel_mm_x"]].notna().all().all():
        return rows[["pixel_mm_y", "pixel_mm_x"]].to_numpy(float)
    if settings.get("pixel_mm"):
        return np.tile(np.asarray(settings["pixel_mm"], float), (len(rows), 1))
    raise SynthesisError(f"{slices}/manifest.csv has no pixel_mm_x/pixel_mm_y (written before medgan recorded "
                         f"them, or a dataset kind without spacing) — rerun `medgan prepare` (delete "
                         f"data/interim/<dataset> first), or set synthesize.pixel_mm: [y_mm, x_mm]")


def source_rows(manifest: pd.DataFrame, slices: Path, settings: dict, seed: int) -> pd.DataFrame:
    """Training-split slices with label maps, at most synthesize.max_sources (seeded choice)."""
    if "mask_path" not in manifest or not (manifest["mask_path"] != "").any():
        raise SynthesisError(f"{slices}/manifest.csv: no label maps — set write_masks: true for the dataset "
                             f"and rerun `medgan prepare`")
    rows = manifest[(manifest["split"] == "train") & (manifest["mask_path"] != "")].reset_index(drop=True)
    if rows.empty:
        raise SynthesisError(f"{slices}/manifest.csv: no training slices with label maps")
    cap = settings["max_sources"]
    if cap and len(rows) > cap:
        keep = np.sort(np.random.default_rng(seed).choice(len(rows), cap, replace=False))
        rows = rows.iloc[keep].reset_index(drop=True)
    return rows


def edit_all(masks: np.ndarray, pixel_mm: np.ndarray, encoding, settings: dict, seed: int):
    """Every (source, copy) edit, each from its own seeded generator (order-independent)."""
    out = []
    for i, label_map in enumerate(masks):
        for copy in range(settings["copies"]):
            rng = np.random.default_rng([seed, i, copy])
            edited, edit = edits.apply(label_map, encoding, tuple(pixel_mm[i]), settings, rng)
            out.append((i, copy, edited, edit))
    return out


def rendering_of(settings: dict, variant: str, model_path) -> str:
    spec = variants.VARIANTS[variant]
    if not spec.paired:
        raise SynthesisError(f"{model_path}: a {variant} model draws from noise, not from a label map — "
                             f"synthesize needs a mask -> image experiment (pix2pix, pix2pix_inpaint)")
    wanted = settings["rendering"]
    if wanted == "auto":
        return "paint" if spec.paints else "whole"
    if wanted == "whole" and spec.paints:
        raise SynthesisError(f"{model_path}: pix2pix_inpaint only paints regions — set synthesize.rendering: "
                             f"paint (or auto)")
    return wanted


@torch.no_grad()
def render(G, model: dict, rendering: str, reals: torch.Tensor, originals: torch.Tensor, edited: torch.Tensor,
           margin: int) -> torch.Tensor:
    """uint8 (N, 1, H, W) images of the edited maps (tensors (N, 1, H, W) uint8)."""
    encoding = model_encoding(model)
    if rendering == "paint":
        region = inpaint.dilate(originals != edited, margin)
        if variants.VARIANTS[model["variant"]].paints:
            return inpaint.paint(G, reals, edited, region, encoding, BATCH)
    whole = torch.cat([to_uint8(G(encoding.to_model_range(edited[i:i + BATCH])))
                       for i in range(0, len(edited), BATCH)])
    if rendering == "whole":
        return whole
    weight = inpaint.blend_weights(region, margin)
    blended = (weight * whole.float() + (1 - weight) * reals.float()).round().to(torch.uint8)
    return torch.where(region, blended, reals)


def class_of(lesion_count: int, classes: list[str]) -> str:
    """The dataset's positive class (the last) when the map has a lesion, else its first."""
    return classes[-1] if lesion_count else classes[0]


def save_png(pixels: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, compress_level=1)


def manifest_row(name: str, source: pd.Series, copy: int, edited: np.ndarray, edit, image: np.ndarray,
                 pixel_mm, encoding, classes, extra: dict) -> dict:
    count, area = edits.lesion_stats(edited, encoding, pixel_mm)
    cls = class_of(count, classes)
    rel = Path("train") / cls / f"{Path(source['path']).stem}_{copy:02d}.png"
    return {"dataset": name, "case": source["case"], "source": source.get("source", ""),
            "slice_index": source.get("slice_index", 0), "split": "train", "class": cls,
            "organ_pixels": int(edits.organ_of(edited, encoding).sum()) if encoding.max_value > 1 else 0,
            "lesion_pixels": int(edits.lesions(edited, encoding).sum()),
            **{k: source.get(k) for k in ("window_low", "window_high", "spacing_x", "spacing_y", "spacing_z")},
            "pixel_mm_x": float(pixel_mm[1]), "pixel_mm_y": float(pixel_mm[0]),
            "sha1": hashlib.sha1(image.tobytes()).hexdigest(), "path": str(rel),
            "mask_path": str(Path("masks") / rel), "source_path": source["path"], "edit": edit.kind,
            "edit_detail": edit.detail, "lesion_count": count, "lesion_area_mm2": round(area, 2),
            "copy": copy, **extra}


def _plain(value):
    return value.item() if hasattr(value, "item") else str(value)


def synthesize(params: dict, name: str) -> pd.DataFrame:
    settings = params["synthesize"]
    exp = config.experiment(params, name)
    seed = params["seed"] if settings["seed"] is None else settings["seed"]
    model_path = paths.path(paths.MODEL, experiment=name, replicate=0)  # README "Seeds as replicates"
    G, model = load_generator(model_path)
    rendering = rendering_of(settings, model["variant"], model_path)
    dataset = config.dataset(params, exp["dataset"])
    slices = paths.path(paths.SLICES, dataset=exp["dataset"])
    rows = source_rows(load_manifest(slices), slices, settings, seed)
    pixel_mm = pixel_mm_of(rows, slices, settings)
    reals = load_images(slices, rows)
    masks = load_images(slices, rows.assign(path=rows["mask_path"]))
    if tuple(reals.shape[-2:]) != tuple(model["image_size"]):
        raise SynthesisError(f"{slices}: slices are {tuple(reals.shape[-2:])}, {model_path} makes "
                             f"{tuple(model['image_size'])} — retrain `{name}` on this dataset")
    encoding = model_encoding(model)
    planned = edit_all(masks, pixel_mm, encoding, settings, seed)
    set_test_time_dropout(G, params["sample"]["dropout"])
    torch.manual_seed(seed)  # dropout masks
    extra = {"model": str(model_path), "rendering": rendering, "seed": seed}
    table = []
    with atomic_dir(synthetic_folder(name)) as tmp:
        for start in tqdm(range(0, len(planned), BATCH), desc=f"synthesize {name}", unit="batch"):
            part = planned[start:start + BATCH]
            index = [i for i, _, _, _ in part]
            images = render(G, model, rendering, torch.from_numpy(reals[index])[:, None],
                            torch.from_numpy(masks[index])[:, None],
                            torch.from_numpy(np.stack([e for _, _, e, _ in part]))[:, None],
                            settings["paint_margin_px"])[:, 0].numpy()
            for (i, copy, edited, edit), image in zip(part, images):
                row = manifest_row(name, rows.iloc[i], copy, edited, edit, image, pixel_mm[i], encoding,
                                   list(dataset["classes"]), extra)
                save_png(image, tmp / row["path"])
                save_png(edited.astype(np.uint8), tmp / row["mask_path"])
                table.append(row)
        manifest = pd.DataFrame(table).reindex(columns=MANIFEST_COLUMNS + EXTRA_COLUMNS)
        manifest.to_csv(tmp / "manifest.csv", index=False)
        summary = {"experiment": name, "dataset": exp["dataset"], "model": str(model_path),
                   "variant": model["variant"], "rendering": rendering, "seed": seed, "settings": settings,
                   "n_sources": len(rows), "n_images": len(manifest),
                   "edits": manifest["edit"].value_counts().sort_index().to_dict(),
                   "labels": encoding.as_dict(),
                   "lesion_contrast_hu": lesion_contrast_summary(tmp, manifest, slices, rows, encoding, seed)}
        (tmp / "synthesize.json").write_text(json.dumps(summary, indent=2, default=_plain) + "\n")
    return manifest
