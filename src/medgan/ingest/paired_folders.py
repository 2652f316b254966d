"""`paired_folders` kind: images and lesion masks in two folders matched by file stem (the
COVID-19 lesion set: `frames/` + `masks/`). Masks are binarised to 0/1; a slice is `lesion`
when its mask has at least `min_lesion_pixels` lesion pixels, else `healthy`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError
from .folders import case_from_stem, duplicate_stems, image_files, number_items, shard, unused_entries
from .images import fit_to_size, read_gray, read_gray_counted
from .units import Record, Unit

CLASSES = ("healthy", "lesion")


def patients(dataset: dict) -> dict:
    """Where patient ids come from (prepare.json, the report): `case_regex`, else one per file."""
    from .class_folders import UNKNOWN

    if dataset.get("case_regex"):
        return {"known": True, "source": f"case_regex {dataset['case_regex']!r} on the file name"}
    return {"known": False, "source": f"{UNKNOWN} — one patient per file (no case_regex); images of one "
                                      f"patient may sit in train and test: set `case_regex`"}


def list_units(dataset: dict) -> tuple[list[Unit], list[str]]:
    raw = Path(dataset["raw"])
    if not raw.is_dir():
        return [], [f"{raw}: raw folder not found — download the data there or fix `raw` in params.yaml"]
    frames_dir, masks_dir = raw / dataset.get("images_dir", "frames"), raw / dataset.get("masks_dir", "masks")
    frames, masks = image_files(frames_dir), image_files(masks_dir)
    problems = [f"{cls}: not a class of paired_folders (use {list(CLASSES)})" for cls in dataset["classes"]
                if cls not in CLASSES]
    for folder, files in ((frames_dir, frames), (masks_dir, masks)):
        if not files:
            problems.append(f"{folder}: no png/jpg/bmp/tif image found — check `raw`, `images_dir` and "
                            f"`masks_dir` in params.yaml")
    problems += duplicate_stems(frames) + duplicate_stems(masks) + unused_entries(frames_dir) + unused_entries(masks_dir)
    mask_of = {m.stem: m for m in masks}
    frame_stems = {f.stem for f in frames}
    items = []
    for frame in frames:
        if frame.stem not in mask_of:
            problems.append(f"{frame}: no mask with the same name in {masks_dir} — add it or remove the image")
            continue
        items.append({"case": case_from_stem(frame.stem, dataset.get("case_regex")), "class": "",
                      "image": str(frame), "mask": str(mask_of[frame.stem])})
    problems += [f"{m}: mask without an image in {frames_dir} — add the image or remove the mask"
                 for m in masks if m.stem not in frame_stems]
    return shard(number_items(items), dataset.get("files_per_job", 200)), problems


def binarise(mask: np.ndarray) -> np.ndarray:
    """0/1 masks stay; 0/255 (and JPEG-noisy) masks are cut at mid-grey."""
    return (mask > (0 if mask.max() <= 1 else 127)).astype(np.uint8)


def convert_unit(unit: Unit, dataset: dict):
    size, fit = dataset["image_size"], dataset.get("fit", "pad")
    for item in unit.items:
        pixels, replaced = read_gray_counted(Path(item["image"]), dataset.get("input_range"),
                                             nonfinite=dataset.get("nonfinite"))
        mask = binarise(read_gray(Path(item["mask"]), label=True))
        if pixels.shape != mask.shape:
            raise DataError(f"{item['mask']}: size {mask.shape[1]}×{mask.shape[0]} differs from its image's "
                            f"{pixels.shape[1]}×{pixels.shape[0]} ({item['image']}) — re-export the mask")
        lesion = int(mask.sum())
        cls = "lesion" if lesion >= dataset["min_lesion_pixels"] else "healthy"
        if cls not in dataset["classes"]:
            continue
        row = {"case": item["case"], "source": item["image"], "slice_index": item["index"], "class": cls,
               "lesion_pixels": lesion, "nonfinite_replaced": replaced}
        out_mask = fit_to_size(mask, size, fit, nearest=True) if dataset.get("write_masks") is not False else None
        yield Record(row, fit_to_size(pixels, size, fit), out_mask)
