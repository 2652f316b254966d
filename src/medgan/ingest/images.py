"""2D image helpers shared by every kind: read any png/jpg/bmp/tif as 8-bit grayscale, fit
to the output size keeping the aspect ratio, window Hounsfield units to 8 bits."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MIN_SIDE = 8  # narrower than this is a thumbnail strip or a broken export, not a slice
FIT_MODES = ("pad", "crop", "stretch")


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


DEEP_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")  # more than 8 bits per pixel
DEEP_RANGE = (0.0, 65535.0)  # integer images deeper than 8 bits: the 16-bit range


def finite(values: np.ndarray, path, rule: dict | None, what: str = "voxel") -> tuple[np.ndarray, int]:
    """`values` with no NaN/±Inf, and how many were replaced. The dataset's `nonfinite` rule
    decides: refuse (default: a DataError naming the file and the count) or replace them with
    its `value` (a warning line; the caller counts them in prepare.json). Integer arrays pass."""
    if values.dtype.kind != "f":
        return values, 0
    bad = ~np.isfinite(values)
    count = int(np.count_nonzero(bad))
    if not count:
        return values, 0
    kinds = ", ".join(f"{n} {name}" for name, n in (("NaN", int(np.isnan(values).sum())),
                                                     ("+Inf", int(np.isposinf(values).sum())),
                                                     ("-Inf", int(np.isneginf(values).sum()))) if n)
    rule = rule or {}
    if rule.get("action") != "replace":
        raise DataError(f"{path}: {count} non-finite {what}(s) of {values.size} ({kinds}) — set "
                        f"`nonfinite: {{action: replace, value: -1024}}` for this dataset (the value in stored "
                        f"units, e.g. air in HU), or fix the export")
    print(f"WARNING {path}: {count} non-finite {what}(s) ({kinds}) set to {rule['value']:g} (nonfinite: replace)")
    return np.where(bad, np.asarray(rule["value"], values.dtype), values), count


def _to_gray(image: Image.Image, path: Path, input_range=None, label: bool = False,
             nonfinite: dict | None = None) -> tuple[np.ndarray, int]:
    if image.mode in DEEP_MODES:
        values = np.asarray(image, dtype=np.float32) if image.mode != "F" else np.asarray(image)
        if label:
            if values.dtype.kind == "f" and not np.isfinite(values).all():
                finite(values, path, None, "pixel")  # a mask with NaN/Inf: always refused
            return (values > 0).astype(np.uint8), 0
        # One fixed mapping per dataset, never per image: a stored value (e.g. 12-bit CT,
        # 0..4095) must give the same grey level in every file.
        if input_range is None and image.mode == "F":
            raise DataError(f"{path}: floating-point image: its value range is unknown — set "
                            f"`input_range: [low, high]` for this dataset (mapped to 0..255)")
        values, replaced = finite(values, path, nonfinite, "pixel")
        low, high = DEEP_RANGE if input_range is None else input_range
        return window_to_uint8(values, low, high), replaced
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(black, rgba)
    return np.asarray(image.convert("L")), 0


def _open_checked(path: Path) -> Image.Image:
    """Image.open, refusing an image that declares more pixels than Pillow's limit
    (Image.MAX_IMAGE_PIXELS, ~89 M: a 9,459² slice). Pillow raises above twice the limit and
    only warns between 1x and 2x, then decodes it (GBs of memory for a crafted or broken
    file); no medical slice is that large, so both are refused here."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DataError(f"{path}: declares more pixels than any slice has ({err}) — a damaged or "
                        f"crafted file (\"decompression bomb\"): delete it or re-export it at its real size") from None


def read_gray_counted(path: Path, input_range=None, label: bool = False,
                      nonfinite: dict | None = None) -> tuple[np.ndarray, int]:
    """read_gray, and how many non-finite pixels the dataset's `nonfinite` rule replaced."""
    try:
        with _open_checked(path) as image:
            frames = getattr(image, "n_frames", 1) if image.format != "MPO" else 1  # MPO: a camera JPEG + previews
            if frames > 1:  # a TIFF stack, an animated PNG: Pillow would read the first page and drop the others
                raise DataError(f"{path}: holds {frames} frames/pages (a stack?), not one slice — export one "
                                f"slice per file, or give a volume format (NIfTI, NRRD, DICOM) to kind: volumes")
            image.load()
            gray, replaced = _to_gray(image, path, input_range, label, nonfinite)
    except DataError:
        raise
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: unreadable or truncated image ({err}) — re-download or delete it") from err
    if min(gray.shape) < MIN_SIDE:
        raise DataError(f"{path}: {gray.shape[1]}×{gray.shape[0]} pixels is too small to be a slice "
                        f"(minimum {MIN_SIDE}) — delete the file or fix its export")
    return gray, replaced


def read_gray(path: Path, input_range=None, label: bool = False, nonfinite: dict | None = None) -> np.ndarray:
    """Any png/jpg/bmp/tif in any mode (RGB, RGBA, palette, 16-bit) -> uint8 (H, W). Images
    deeper than 8 bits map `input_range` (default: 0..65535) to 0..255; with `label`, their
    non-zero pixels become 1. NaN/±Inf pixels of float images follow `nonfinite` (refused by
    default); an image declaring more than Image.MAX_IMAGE_PIXELS pixels is refused."""
    return read_gray_counted(path, input_range, label, nonfinite)[0]


def _resize(image: Image.Image, size_wh, resample) -> Image.Image:
    """PIL resize; an exact integer shrink (512 -> 256) uses Image.reduce, an area average
    (antialiased like BILINEAR's reducing filter) ~4× faster."""
    w, h = image.size
    factor = w // size_wh[0]
    if resample != Image.NEAREST and factor > 1 and (w, h) == (size_wh[0] * factor, size_wh[1] * factor):
        return image.reduce(factor)
    return image.resize(size_wh, resample)


def fit_to_size(pixels: np.ndarray, size_hw, mode: str = "pad", scale: bool = True,
                nearest: bool = False) -> np.ndarray:
    """Resize to (height, width): `pad` keeps the whole image (black borders), `crop` fills the
    frame and cuts the centre, `stretch` ignores the aspect ratio. With scale=False the pixels
    keep their size (fixed spacing) and are only padded or centre-cropped."""
    height, width = size_hw
    resample = Image.NEAREST if nearest else Image.BILINEAR
    h, w = pixels.shape
    image = Image.fromarray(pixels)
    if mode == "stretch" and scale:
        return np.asarray(_resize(image, (width, height), resample)) if (h, w) != (height, width) else pixels
    if scale:
        factor = (min if mode == "pad" else max)(height / h, width / w)
        new_w, new_h = max(1, round(w * factor)), max(1, round(h * factor))
        if (new_h, new_w) != (h, w):
            image = _resize(image, (new_w, new_h), resample)
    out = Image.new(image.mode, (width, height), 0)
    out.paste(image, ((width - image.size[0]) // 2, (height - image.size[1]) // 2))
    return np.asarray(out)


def resample_to_spacing(pixels: np.ndarray, spacing_yx, target_yx, nearest: bool = False) -> np.ndarray:
    """In-plane resampling of one slice to a fixed pixel spacing (mm)."""
    h, w = pixels.shape
    new_h = max(1, round(h * spacing_yx[0] / target_yx[0]))
    new_w = max(1, round(w * spacing_yx[1] / target_yx[1]))
    if (new_h, new_w) == (h, w):
        return pixels
    return np.asarray(Image.fromarray(pixels).resize((new_w, new_h), Image.NEAREST if nearest else Image.BILINEAR))


def window_to_uint8(hu: np.ndarray, low: float, high: float) -> np.ndarray:
    """Hounsfield units -> 0..255 over [low, high], vectorised with in-place float32 steps
    (one temporary array: ~0.13 s for 135 LiTS slices; a 65,536-entry lookup table is ~10×
    slower because numpy casts uint16 indices to int64)."""
    scaled = np.asarray(hu).astype(np.float32)
    scaled -= np.float32(low)
    scaled *= np.float32(255.0 / (high - low))
    np.clip(scaled, 0, 255, out=scaled)
    np.rint(scaled, out=scaled)
    return scaled.astype(np.uint8)


def safe_name(text: str) -> str:
    """A case id usable in a file name."""
    return "".join(c if c.isalnum() or c in "-." else "_" for c in str(text)).strip("._") or "case"
