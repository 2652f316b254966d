"""`volumes` kind: image/label volume pairs (LiTS, MSD, or any pattern) -> axial slices.

Reads NIfTI and anything SimpleITK reads (NRRD, MHA, a DICOM series folder — SimpleITK
applies RescaleSlope/Intercept, so values are HU). Every case is shown in radiological
display orientation (rows anterior->posterior, columns patient's right->left), whatever the
file's voxel order."""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel import orientations

from .errors import DataError
from .folders import glob_following_links
from .images import finite, fit_to_size, resample_to_spacing, safe_name, window_to_uint8
from .units import Record, Unit


class _SimpleITKOnFirstUse:
    """SimpleITK, imported when a volume is first read: `medgan train` and `sample` import this
    package (load_images, load_manifest) but read no volume, and a GPU machine that trains may
    not have SimpleITK's 50 MB wheel (benchmarks/gpu_wheels.sh)."""

    def __getattr__(self, name: str):
        import SimpleITK

        return getattr(SimpleITK, name)


sitk = _SimpleITKOnFirstUse()

# Display (slice, row, column) = (inferior->superior, anterior->posterior, right->left):
# the voxel axes point to patient Left, Posterior, Superior (DICOM "LPS").
DISPLAY_ORIENTATION = "LPS"
WINDOWS = {"abdomen": (-100, 400), "liver": (-100, 400), "lung": (-1000, 400), "brain": (0, 80),
           "bone": (-500, 1300)}

LAYOUTS = {
    # images: glob under raw; case_regex: on the image's name, group 1 = case id;
    # labels: label path relative to raw ({dir}: the image's folder, {case}, {name}, {ext}).
    "lits": {"images": "**/volume-*.nii*", "case_regex": r"^volume-(\d+)\.nii(?:\.gz)?$",
             "labels": "{dir}/segmentation-{case}{ext}"},
    "msd": {"images": "imagesTr/*.nii*", "case_regex": r"^(?!\._)(.+?)\.nii(?:\.gz)?$",
            "labels": "labelsTr/{name}"},
}


def layout_of(dataset: dict) -> dict:
    layout = dict(LAYOUTS.get(dataset.get("layout", "lits"), {}))
    for key in ("images", "case_regex", "labels"):
        if dataset.get(key):
            layout[key] = dataset[key]
    name = dataset.get("layout", "lits")
    if name not in (*LAYOUTS, "custom"):
        raise DataError(f"layout '{name}' is not a layout of kind volumes (use {', '.join(LAYOUTS)} or custom) "
                        f"— fix `layout` in params.yaml")
    missing = [k for k in ("images", "case_regex", "labels") if not layout.get(k)]
    if missing:
        raise DataError(f"layout '{name}' needs {', '.join(missing)} in params.yaml")
    return layout


def window_of(dataset: dict) -> tuple[float, float]:
    window = dataset.get("window", "abdomen")
    low, high = WINDOWS[window] if isinstance(window, str) else tuple(window)
    if not low < high:
        raise DataError(f"window {list(window)}: low must be below high (e.g. [-100, 400]) — fix `window`")
    return low, high


def _extension(name: str) -> str:
    return "".join(Path(name).suffixes[-2:]) if name.endswith(".gz") else Path(name).suffix


def patients(dataset: dict) -> dict:
    return {"known": True, "source": "one case (patient) per volume, from case_regex on its file name"}


def list_units(dataset: dict) -> tuple[list[Unit], list[str]]:
    """One unit per case; problems (no match, missing label, duplicate ids) all at once."""
    raw = Path(dataset["raw"])
    if not raw.is_dir():
        return [], [f"{raw}: raw folder not found — download the data there or fix `raw` in params.yaml"]
    layout = layout_of(dataset)
    found: dict[str, list[tuple[Path, Path]]] = {}
    problems = []
    for image in glob_following_links(raw, layout["images"]):
        if image.name.startswith("._"):
            continue  # macOS resource forks (shipped inside the MSD archives): never data
        if image.is_symlink() and not image.exists():
            problems.append(f"{image}: broken link (to {os.readlink(image)}) — fix the link or remove it")
            continue
        match = re.search(layout["case_regex"], image.name)
        if not match:
            problems.append(f"{image}: matches '{layout['images']}' but its name does not match case_regex "
                            f"'{layout['case_regex']}' — rename it, move it out of raw, or set `case_regex`")
            continue
        case = match.group(1)
        label = raw / layout["labels"].format(dir=image.parent.relative_to(raw), case=case,
                                              name=image.name, ext=_extension(image.name))
        if not label.exists():
            problems.append(f"{image}: no label map at {label} — add it or remove the volume")
            continue
        found.setdefault(case, []).append((image, label))
    for case, pairs in found.items():
        if len(pairs) > 1:
            problems.append(f"{pairs[0][0]}: duplicate case id '{case}' (also "
                            f"{', '.join(str(p[0]) for p in pairs[1:])}) — keep one of the files")
    if not found and not problems:
        problems.append(f"{raw}: no file matches the pattern '{layout['images']}' (layout "
                        f"'{dataset.get('layout', 'lits')}') — check `raw`, `layout` or `images` in params.yaml")
    units = [Unit(safe_name(case), ({"case": case, "image": str(pairs[0][0]), "label": str(pairs[0][1])},))
             for case, pairs in sorted(found.items(), key=lambda kv: (len(kv[0]), kv[0])) if len(pairs) == 1]
    return units, problems


# --- reading -------------------------------------------------------------------------------

def _nifti_expected_bytes(path: Path) -> int:
    proxy = nib.load(path).dataobj  # its offset is right even where the header's vox_offset is 0
    return int(proxy.offset) + int(np.prod(proxy.shape)) * np.dtype(proxy.dtype).itemsize


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


MAX_VOXELS = 2**31  # 2.1 G voxels: a 1024×1024×2048 volume, beyond any CT or MR case


def check_declared_size(path: Path) -> None:
    """Refuse a volume whose header declares more voxels than any scan has (a damaged or crafted
    header): SimpleITK would try to allocate it all (a "decompression bomb" of volumes). Reads
    the header only. NIfTI is already checked against the file's length (check_complete)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    voxels = int(np.prod(reader.GetSize(), dtype=np.float64)) * reader.GetNumberOfComponents()
    if voxels > MAX_VOXELS:
        raise DataError(f"{path}: declares {' × '.join(map(str, reader.GetSize()))} voxels ({voxels:.3g}), more than "
                        f"any scan has (limit {MAX_VOXELS:.3g}) — a damaged or crafted header: re-export or delete it")


def read_image(path: str | Path) -> sitk.Image:
    """A 3-D volume from a file SimpleITK reads, or from a folder holding one DICOM series."""
    path = Path(path)
    try:
        if path.is_dir():
            series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(path))
            if len(series) > 1:  # SimpleITK would silently read the first one only
                raise DataError(f"{path}: folder holds {len(series)} DICOM series ({', '.join(series[:3])}) — "
                                f"keep one series per folder (move the others out, e.g. scouts)")
            names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(path))
            if not names:
                raise DataError(f"{path}: folder holds no DICOM series — point the pattern at the series folder")
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(names)
            image = reader.Execute()
        else:
            check_complete(path)
            check_declared_size(path)
            image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise DataError(f"{path}: cannot be read ({str(err).strip().splitlines()[-1]}) — "
                        f"re-download or remove the file") from err
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise DataError(f"{path}: {image.GetDimension()}-D image with {image.GetNumberOfComponentsPerPixel()} "
                        f"component(s), size {image.GetSize()} — expected one 3-D scalar volume; "
                        f"extract one time point/channel first")
    return image


def _float_nifti(path: Path) -> bool:
    if not path.name.lower().endswith((".nii", ".nii.gz")):
        return False
    try:
        return np.dtype(nib.load(path).get_data_dtype()).kind == "f"
    except (OSError, ValueError, nib.filebasedimages.ImageFileError):
        return False


def stored_values(path: Path, image: sitk.Image) -> np.ndarray:
    """The (k, j, i) voxel array of `image` as the file stores it. SimpleITK's NIfTI reader
    turns NaN and ±Inf into 0 without a word (SimpleITK 2.5, measured; MHA and NRRD keep them),
    which would write them as water-grey pixels: for a float NIfTI file the non-finite voxels
    are put back from nibabel's reading (one more read, float files only), so that the
    dataset's `nonfinite` rule sees them."""
    values = sitk.GetArrayViewFromImage(image)
    if path.is_dir() or values.dtype.kind != "f" or not _float_nifti(path):
        return values
    stored = np.asanyarray(nib.load(path).dataobj)
    stored = stored.reshape(stored.shape[:3]).T if stored.size == values.size else None
    if stored is None or stored.shape != values.shape:
        return values
    bad = ~np.isfinite(stored)
    if not bad.any():
        return values
    values = values.copy()
    values[bad] = stored[bad]
    return values


def display_array(image: sitk.Image, array: np.ndarray | None = None) -> tuple[np.ndarray, tuple[float, float, float]]:
    """(slice, row, column) array in display orientation and its (x, y, z) spacing.
    Reorients with zero-copy numpy views (nibabel's orientation tools) instead of
    sitk.DICOMOrient, which copies the whole volume (~0.25 s for a LiTS case).
    `array`: the image's GetArrayFromImage if the caller already has it."""
    direction = np.array(image.GetDirection()).reshape(3, 3)
    spacing = np.array(image.GetSpacing())
    affine = np.eye(4)
    affine[:3, :3] = np.diag([-1.0, -1.0, 1.0]) @ direction @ np.diag(spacing)  # LPS world -> RAS
    transform = orientations.ornt_transform(orientations.io_orientation(affine),
                                            orientations.axcodes2ornt(tuple(DISPLAY_ORIENTATION)))
    ijk = (sitk.GetArrayFromImage(image) if array is None else array).transpose(2, 1, 0)
    oriented = orientations.apply_orientation(ijk, transform)
    new_spacing = np.empty(3)
    new_spacing[transform[:, 0].astype(int)] = spacing
    return oriented.transpose(2, 1, 0), tuple(float(s) for s in new_spacing)


def read_display_volume(path: str | Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Volume as (slice, row, column) in radiological display orientation, and its spacing."""
    return display_array(read_image(path))


def check_pair(image: sitk.Image, label: sitk.Image, image_path, label_path, tolerance: float) -> None:
    if image.GetSize() != label.GetSize():
        raise DataError(f"{label_path}: shape {label.GetSize()} differs from the volume's {image.GetSize()} "
                        f"({image_path}) — the pair does not belong together; fix or remove it")
    gaps = {
        "spacing": np.abs(np.subtract(image.GetSpacing(), label.GetSpacing())).max(),
        "origin": np.abs(np.subtract(image.GetOrigin(), label.GetOrigin())).max(),
        "direction": np.abs(np.subtract(image.GetDirection(), label.GetDirection())).max(),
    }
    bad = {k: v for k, v in gaps.items() if v > tolerance}
    if bad:
        details = ", ".join(f"{k} differs by {v:.4g}" for k, v in bad.items())
        raise DataError(f"{label_path}: affine does not match {image_path} ({details}; tolerance "
                        f"{tolerance}) — re-export the label on the image's grid or raise affine_tolerance")


def present_values(label: np.ndarray, declared) -> list[int]:
    """Distinct values of an integer label map. When every value between the map's min and
    max is declared, min/max suffice (~0.01 s for a LiTS case, np.unique takes ~1.3 s);
    otherwise slice-by-slice histograms (np.bincount on the whole map would cast it to int64)."""
    low, high = int(label.min()), int(label.max())
    if set(range(low, high + 1)) <= set(declared):
        return list(range(low, high + 1))  # a superset of what is present: all declared anyway
    if high - low > 65535:
        return np.unique(label).astype(int).tolist()
    counts = np.zeros(high - low + 1, np.int64)
    for plane in label:
        counts += np.bincount((plane.astype(np.int64) - low).ravel(), minlength=len(counts))
    return (np.flatnonzero(counts) + low).tolist()


ROUNDING_TOLERANCE = 1e-3  # float labels this close to integers are resampling noise


def _float_labels(label: np.ndarray, path, round_labels: bool) -> np.ndarray:
    rounded = np.round(label)
    if not np.array_equal(label, rounded):
        off = np.abs(label - rounded)
        examples = ", ".join(f"{v:.6g}" for v in np.unique(label[off > 0])[:5])
        if off.max() > ROUNDING_TOLERANCE:
            raise DataError(f"{path}: label map holds non-integer values (e.g. {examples}) — it is probably "
                            f"an image, not a segmentation; fix the pattern or the file")
        if not round_labels:
            raise DataError(f"{path}: label map holds near-integer values (e.g. {examples}), all within "
                            f"{ROUNDING_TOLERANCE:g} of an integer — set `round_labels: true` for this dataset "
                            f"to round them, or re-export the labels as integers")
    return rounded.astype(np.int16 if np.abs(rounded).max() < 32768 else np.int64)


def check_label_values(label: np.ndarray, path, declared, round_labels: bool = False) -> np.ndarray:
    """Integer labels from the declared set, or a DataError. Returns an integer array."""
    if label.dtype.kind == "f":
        finite(label, path, None, "label voxel")  # a label map with NaN/Inf is always refused
        label = _float_labels(label, path, round_labels)
    unexpected = sorted(set(present_values(label, declared)) - set(declared))
    if unexpected:
        raise DataError(f"{path}: label values {unexpected} are outside the declared set {list(declared)} — "
                        f"fix the file or declare them in `label_values`")
    return label


# --- conversion ----------------------------------------------------------------------------

def slice_class(lesion_pixels: int, min_lesion_pixels: int) -> str:
    return "tumour" if lesion_pixels >= min_lesion_pixels else "healthy"


def per_slice_counts(label: np.ndarray, organ_labels, lesion_labels) -> tuple[np.ndarray, np.ndarray]:
    """Organ and lesion pixel counts of every slice. Only slices holding any label are
    histogrammed (a LiTS case has labels on about a third of its slices)."""
    n = label.shape[0]
    organ, lesion = np.zeros(n, np.int64), np.zeros(n, np.int64)
    labelled = np.flatnonzero(label.any(axis=(1, 2))) if 0 not in organ_labels else np.arange(n)
    offset = -min(0, int(label.min())) if label.dtype.kind == "i" else 0
    for k in labelled:
        counts = np.bincount((label[k].astype(np.int64) + offset).ravel() if offset else label[k].ravel())
        organ[k] = sum(int(counts[v + offset]) for v in organ_labels if 0 <= v + offset < len(counts))
        lesion[k] = sum(int(counts[v + offset]) for v in lesion_labels if 0 <= v + offset < len(counts))
    return organ, lesion


def organ_box(organ_mask: np.ndarray, keep: np.ndarray, margin_px: tuple[int, int]) -> tuple[slice, slice]:
    """In-plane bounding box of the organ over the kept slices, widened by a margin."""
    any_organ = organ_mask[keep].any(axis=0)
    rows, cols = np.flatnonzero(any_organ.any(axis=1)), np.flatnonzero(any_organ.any(axis=0))
    h, w = any_organ.shape
    return (slice(max(0, rows[0] - margin_px[0]), min(h, rows[-1] + 1 + margin_px[0])),
            slice(max(0, cols[0] - margin_px[1]), min(w, cols[-1] + 1 + margin_px[1])))


def written_pixel_mm(shape_hw, spacing_yx, size_hw, fit: str, target_yx=None) -> tuple[float, float]:
    """(y, x) mm of one pixel of the written slice: the source spacing after the organ crop
    (which keeps pixel size), resampling to `spacing_mm`, and fit_to_size's scaling (same
    rounding as fit_to_size, so a 160-pixel side scaled to 64 gives exactly 160/64)."""
    if target_yx:
        return float(target_yx[0]), float(target_yx[1])  # then fit pads/crops without scaling
    (h, w), (height, width) = shape_hw, size_hw
    if fit == "stretch":
        return spacing_yx[0] * h / height, spacing_yx[1] * w / width
    factor = (min if fit == "pad" else max)(height / h, width / w)
    return spacing_yx[0] * h / max(1, round(h * factor)), spacing_yx[1] * w / max(1, round(w * factor))


def convert_case(item: dict, dataset: dict):
    """Yield a Record per kept slice of one case."""
    image_path, label_path = Path(item["image"]), Path(item["label"])
    image, label_image = read_image(image_path), read_image(label_path)
    check_pair(image, label_image, image_path, label_path, dataset.get("affine_tolerance", 0.01))
    # Zero-copy views of SimpleITK's buffers: `image` and `label_image` outlive them (locals
    # of this generator); every array kept past it is a copy (hu[keep], masks, PNG pixels).
    stored, replaced = finite(stored_values(image_path, image), image_path, dataset.get("nonfinite"))
    hu, spacing = display_array(image, stored)
    label_values = check_label_values(stored_values(label_path, label_image), label_path,
                                      dataset.get("label_values", [0, 1, 2]), dataset.get("round_labels", False))
    label, _ = display_array(label_image, label_values)
    organ_labels, lesion_labels = dataset.get("organ_labels", [1, 2]), dataset.get("lesion_labels", [2])
    organ, lesion = per_slice_counts(label, organ_labels, lesion_labels)
    keep = np.flatnonzero(organ >= dataset["min_organ_pixels"])
    classes = [slice_class(int(lesion[k]), dataset["min_lesion_pixels"]) for k in keep]
    keep = np.array([k for k, c in zip(keep, classes) if c in dataset["classes"]], dtype=int)
    if not len(keep):
        return
    low, high = window_of(dataset)
    box = (slice(None), slice(None))
    want_masks = dataset.get("write_masks") or False
    if want_masks or dataset.get("crop_margin_mm") is not None:
        label = label[keep]  # only the kept slices from here on
        organ_mask, lesion_mask = np.isin(label, organ_labels), np.isin(label, lesion_labels)
    if dataset.get("crop_margin_mm") is not None:
        margin = dataset["crop_margin_mm"]
        box = organ_box(organ_mask, np.arange(len(keep)), (round(margin / spacing[1]), round(margin / spacing[0])))
    target = dataset.get("spacing_mm")
    for i, k in enumerate(keep):
        slice_pixels = window_to_uint8(hu[k][box], low, high)  # slice by slice: stays in cache
        mask = None
        if want_masks:
            mask = organ_mask[i][box].astype(np.uint8)
            mask[lesion_mask[i][box]] = 2
        if target:
            slice_pixels = resample_to_spacing(slice_pixels, (spacing[1], spacing[0]), target)
            if mask is not None:
                mask = resample_to_spacing(mask, (spacing[1], spacing[0]), target, nearest=True)
        fit = dataset.get("fit", "pad")
        pixel_mm = written_pixel_mm(slice_pixels.shape, (spacing[1], spacing[0]), dataset["image_size"], fit, target)
        slice_pixels = fit_to_size(slice_pixels, dataset["image_size"], fit, scale=not target)
        if mask is not None:
            mask = fit_to_size(mask, dataset["image_size"], fit, scale=not target, nearest=True)
        row = {"case": safe_name(item["case"]), "source": str(image_path), "slice_index": int(k),
               "class": slice_class(int(lesion[k]), dataset["min_lesion_pixels"]),
               "organ_pixels": int(organ[k]), "lesion_pixels": int(lesion[k]),
               "window_low": low, "window_high": high,
               "spacing_x": spacing[0], "spacing_y": spacing[1], "spacing_z": spacing[2],
               "pixel_mm_x": pixel_mm[1], "pixel_mm_y": pixel_mm[0], "nonfinite_replaced": replaced}
        yield Record(row, slice_pixels, mask)


def convert_unit(unit: Unit, dataset: dict):
    for item in unit.items:
        yield from convert_case(item, dataset)
