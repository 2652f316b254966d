"""prepare: raw downloaded data -> labeled 2D slice folders + a manifest, split by case.

Output contract (every dataset kind):
  data/slices/<dataset>/<split>/<class>/<case>_<index>.png   (ImageFolder layout)
  data/slices/<dataset>/manifest.csv                          (one row per image)
  data/slices/<dataset>/prepare.json                          (what preprocessing decided)
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import SimpleITK as sitk
from PIL import Image
from tqdm import tqdm

from .atomic import atomic_dir
from .errors import MedganError
from .phantoms import LIVER_LABEL, TUMOUR_LABEL

SPLITS = ("train", "val", "test")
# Radiological display: rows run anterior->posterior, columns patient's right->left.
# SimpleITK's DICOMOrient("LPS") + GetArrayFromImage yields exactly that per axial slice.
DISPLAY_ORIENTATION = "LPS"


class DataError(MedganError, ValueError):
    """Raw data cannot be ingested; the message names the file and the fix."""


@dataclass(frozen=True)
class Case:
    case_id: str
    image: Path
    label: Path


LAYOUTS = {
    # layout: (image glob, regex giving the case id, label path from image path)
    "lits": ("**/volume-*.nii*", r"volume-(\d+)\.nii(\.gz)?$",
             lambda p: p.with_name(p.name.replace("volume-", "segmentation-"))),
    "msd": ("imagesTr/*.nii*", r"^(?!\._)(.+?)\.nii(\.gz)?$",
            lambda p: p.parent.parent / "labelsTr" / p.name),
}


def find_cases(raw: str | Path, layout: str) -> list[Case]:
    raw = Path(raw)
    if not raw.is_dir():
        raise DataError(f"{raw}: raw folder not found — download the data there or fix "
                        f"`datasets.<name>.raw` in params.yaml")
    pattern, id_regex, label_of = LAYOUTS[layout]
    cases = []
    for image in sorted(raw.glob(pattern)):
        match = re.search(id_regex, image.name)
        if not match:
            continue
        label = label_of(image)
        if not label.exists():
            raise DataError(f"{image}: no label map at {label} — add it or remove the volume")
        cases.append(Case(match.group(1), image, label))
    if not cases:
        raise DataError(f"{raw}: no file matches the '{layout}' layout ({pattern}) — check "
                        f"`datasets.<name>.raw` and `layout` in params.yaml")
    return sorted(cases, key=lambda c: (len(c.case_id), c.case_id))


def _nifti_expected_bytes(path: Path) -> int:
    header = nib.load(path).header
    return int(header.get_data_offset()) + int(np.prod(header.get_data_shape())) * header.get_data_dtype().itemsize


def _gzip_stream_length(path: Path) -> int:
    length = 0
    with gzip.open(path, "rb") as stream:
        while chunk := stream.read(1 << 24):
            length += len(chunk)
    return length


def check_complete(path: Path) -> None:
    """Refuse truncated NIfTI files: SimpleITK zero-fills the missing part of a truncated
    .nii.gz without any error (seen with SimpleITK 2.5), which would silently mangle a case.
    A gzip file's last 4 bytes hold its uncompressed size; only when that disagrees with the
    header (multi-member gzip, or damage) do we pay for a full decompression to be sure."""
    name = path.name.lower()
    if not name.endswith((".nii", ".nii.gz")):
        return
    try:
        expected = _nifti_expected_bytes(path)
        if name.endswith(".nii"):
            actual = path.stat().st_size
        else:
            with open(path, "rb") as f:
                f.seek(-4, 2)
                actual = int.from_bytes(f.read(4), "little")
            if actual != expected % 2**32:
                actual = _gzip_stream_length(path)
    except (OSError, EOFError, ValueError, nib.filebasedimages.ImageFileError) as err:
        raise DataError(f"{path}: damaged or not a NIfTI file ({err}) — re-download it") from err
    if actual < expected:
        raise DataError(f"{path}: truncated ({actual} of {expected} bytes) — re-download it")


def read_display_volume(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Volume as (slice, row, column) in radiological display orientation, and its spacing."""
    check_complete(path)
    try:
        image = sitk.DICOMOrient(sitk.ReadImage(str(path)), DISPLAY_ORIENTATION)
    except RuntimeError as err:
        raise DataError(f"{path}: cannot be read ({str(err).strip().splitlines()[-1]}) — "
                        f"re-download or remove the file") from err
    return sitk.GetArrayFromImage(image), image.GetSpacing()


def window_to_uint8(hu: np.ndarray, low: float, high: float) -> np.ndarray:
    scaled = (hu.astype(np.float32) - low) * (255.0 / (high - low))
    return np.clip(scaled, 0, 255).round().astype(np.uint8)


def split_cases(case_ids: list[str], ratios: dict, seed: int) -> dict[str, str]:
    """Assign whole cases (patients) to splits — never slices — reproducibly from the seed."""
    order = np.random.default_rng(seed).permutation(len(case_ids))
    n = len(case_ids)
    counts = {s: int(round(ratios[s] * n)) if ratios[s] > 0 else 0 for s in ("val", "test")}
    for s in ("val", "test"):
        if ratios[s] > 0 and counts[s] == 0 and n >= 3:
            counts[s] = 1
    n_train = n - counts["val"] - counts["test"]
    if n_train < 1:
        raise DataError(f"{n} cases are too few for the split {ratios}")
    names = ["train"] * n_train + ["val"] * counts["val"] + ["test"] * counts["test"]
    return {case_ids[i]: names[rank] for rank, i in enumerate(order)}


def slice_class(lesion_pixels: int, min_lesion_pixels: int) -> str:
    return "tumour" if lesion_pixels >= min_lesion_pixels else "healthy"


def resize(image: Image.Image, size_hw: tuple[int, int], resample) -> Image.Image:
    height, width = size_hw
    return image if image.size == (width, height) else image.resize((width, height), resample)


def convert_case(case: Case, dataset: dict) -> list[tuple[dict, Image.Image]]:
    """All kept slices of one case as (manifest row, 8-bit image)."""
    hu, spacing = read_display_volume(case.image)
    label, _ = read_display_volume(case.label)
    if label.shape != hu.shape:
        raise DataError(f"{case.label}: shape {label.shape} differs from the volume's "
                        f"{hu.shape} ({case.image}) — the pair does not belong together")
    organ = (label >= LIVER_LABEL).sum(axis=(1, 2))
    lesion = (label == TUMOUR_LABEL).sum(axis=(1, 2))
    keep = np.flatnonzero(organ >= dataset["min_organ_pixels"])
    low, high = dataset["window"]
    pixels = window_to_uint8(hu[keep], low, high)
    out = []
    for k, image in zip(keep, pixels):
        cls = slice_class(int(lesion[k]), dataset["min_lesion_pixels"])
        if cls not in dataset["classes"]:
            continue
        png = resize(Image.fromarray(image), dataset["image_size"], Image.BILINEAR)
        row = {
            "case": case.case_id, "source": str(case.image), "slice_index": int(k),
            "class": cls, "organ_pixels": int(organ[k]), "lesion_pixels": int(lesion[k]),
            "window_low": low, "window_high": high,
            "spacing_x": spacing[0], "spacing_y": spacing[1], "spacing_z": spacing[2],
            "sha1": hashlib.sha1(png.tobytes()).hexdigest(),
        }
        out.append((row, png))
    return out


def assert_no_case_overlap(manifest: pd.DataFrame) -> None:
    splits_per_case = manifest.groupby("case")["split"].nunique()
    crossing = splits_per_case[splits_per_case > 1]
    if len(crossing):
        raise AssertionError(f"cases in more than one split: {list(crossing.index)}")


def prepare_dataset(name: str, dataset: dict, out: str | Path, seed: int) -> pd.DataFrame:
    cases = find_cases(dataset["raw"], dataset["layout"])
    split_of = split_cases([c.case_id for c in cases], dataset["split"], seed)
    rows = []
    with atomic_dir(out) as tmp:
        for case in tqdm(cases, desc=f"prepare {name}", unit="case"):
            for row, png in convert_case(case, dataset):
                row.update(dataset=name, split=split_of[case.case_id])
                rel = Path(row["split"]) / row["class"] / f"{case.case_id}_{row['slice_index']:04d}.png"
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                png.save(tmp / rel, compress_level=1)
                row["path"] = str(rel)
                rows.append(row)
        if not rows:
            raise DataError(f"{dataset['raw']}: no slice has >= {dataset['min_organ_pixels']} "
                            f"organ pixels — check the label maps or lower min_organ_pixels")
        manifest = pd.DataFrame(rows)
        assert_no_case_overlap(manifest)
        manifest.to_csv(tmp / "manifest.csv", index=False)
        decisions = {"dataset": name, "settings": dataset, "seed": seed,
                     "display_orientation": DISPLAY_ORIENTATION, "splits": split_of,
                     "counts": manifest.groupby(["split", "class"]).size().unstack(fill_value=0)
                     .to_dict(orient="index")}
        (tmp / "prepare.json").write_text(json.dumps(decisions, indent=2, default=str) + "\n")
    return manifest


def load_manifest(slices_dir: str | Path) -> pd.DataFrame:
    path = Path(slices_dir) / "manifest.csv"
    if not path.exists():
        raise DataError(f"{path} not found — run `medgan prepare` for this dataset first")
    return pd.read_csv(path, dtype={"case": str})


def load_images(slices_dir: str | Path, manifest: pd.DataFrame) -> np.ndarray:
    """Decode the manifest's PNGs once into one uint8 array (N, H, W)."""
    slices_dir = Path(slices_dir)
    return np.stack([np.asarray(Image.open(slices_dir / p).convert("L")) for p in manifest["path"]])
