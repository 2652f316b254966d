"""Benchmark of `prepare` on LiTS-size volumes (512×512×300 int16 .nii.gz, label maps beside).

Prints slices/s and two ratios measured in the same run:
  (i)  full conversion time ÷ time to merely read the same image+label volumes with
       SimpleITK (the fastest .nii.gz reader, FACTS.md)                  target ≤ 2
  (ii) naive reference time ÷ full conversion time, the reference being nibabel get_fdata()
       + a per-slice Python loop + PIL save                             target ≥ 3

    python benchmarks/bench_prepare.py --cases 3
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk
from PIL import Image

from medgan import config, prepare
from medgan.phantoms import ORIENTATIONS, _nifti


def lits_size_case(shape, rng) -> tuple[np.ndarray, np.ndarray]:
    """A LiTS-size case in RAS voxel order: body, liver over the middle slices, tumours, noise."""
    nx, ny, nz = shape
    x = (np.arange(nx) - nx / 2)[:, None]
    y = (np.arange(ny) - ny / 2)[None, :]
    body = (x / (0.42 * nx)) ** 2 + (y / (0.32 * ny)) ** 2 <= 1
    liver = ((x - 0.17 * nx) / (0.16 * nx)) ** 2 + ((y - 0.04 * ny) / (0.2 * ny)) ** 2 <= 1
    tumour = ((x - 0.2 * nx) / (0.04 * nx)) ** 2 + ((y - 0.05 * ny) / (0.05 * ny)) ** 2 <= 1
    base = np.where(body, 40, -1000).astype(np.int16)
    hu = np.repeat(base[:, :, None], nz, axis=2)
    label = np.zeros(shape, np.uint8)
    liver_slices, tumour_slices = slice(int(0.3 * nz), int(0.75 * nz)), slice(int(0.45 * nz), int(0.55 * nz))
    hu[:, :, liver_slices][liver] = 105
    label[:, :, liver_slices][liver] = 1
    hu[:, :, tumour_slices][tumour] = 50
    label[:, :, tumour_slices][tumour] = 2
    hu += rng.integers(-15, 16, size=shape, dtype=np.int16)
    return hu, label


def write_cases(raw: Path, n: int, shape, spacing=(0.78, 0.78, 1.0)) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    for case in range(n):
        hu, label = lits_size_case(shape, np.random.default_rng(case))
        orientation = ORIENTATIONS[case % len(ORIENTATIONS)]
        nib.save(_nifti(hu, spacing, orientation), raw / f"volume-{case}.nii.gz")
        nib.save(_nifti(label, spacing, orientation), raw / f"segmentation-{case}.nii.gz")


def time_read_only(raw: Path) -> float:
    started = time.perf_counter()
    for path in sorted(raw.glob("*.nii.gz")):
        sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    return time.perf_counter() - started


def naive_reference(raw: Path, out: Path, settings: dict) -> int:
    """What a first script would do: nibabel float arrays and a Python loop over slices."""
    out.mkdir(parents=True)
    low, high = settings["window"]
    written = 0
    for volume_path in sorted(raw.glob("volume-*.nii.gz")):
        label_path = volume_path.with_name(volume_path.name.replace("volume-", "segmentation-"))
        hu = nib.as_closest_canonical(nib.load(volume_path)).get_fdata()
        label = nib.as_closest_canonical(nib.load(label_path)).get_fdata()
        for k in range(hu.shape[2]):
            organ = (label[:, :, k] >= 1).sum()
            if organ < settings["min_organ_pixels"]:
                continue
            cls = "tumour" if (label[:, :, k] == 2).sum() >= settings["min_lesion_pixels"] else "healthy"
            pixels = np.clip((hu[:, :, k] - low) / (high - low) * 255, 0, 255).astype(np.uint8)
            image = Image.fromarray(np.flipud(pixels.T)).resize(tuple(settings["image_size"][::-1]), Image.BILINEAR)
            image.save(out / f"{volume_path.stem}_{k}_{cls}.png")
            written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=3, help="number of generated cases (default 3)")
    parser.add_argument("--shape", type=int, nargs=3, default=[512, 512, 300], help="voxels x y slices")
    parser.add_argument("--image-size", type=int, default=256, help="output slice side in pixels (default 256)")
    parser.add_argument("--repeats", type=int, default=2, help="timed rounds of read + conversion (best kept)")
    parser.add_argument("--workdir", help="where to write (default: a temporary folder, removed after)")
    args = parser.parse_args()

    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench_prepare."))
    raw = root / "raw"
    try:
        print(f"generating {args.cases} cases of {tuple(args.shape)} int16 .nii.gz in {raw} ...", flush=True)
        write_cases(raw, args.cases, tuple(args.shape))
        settings = config.validate({
            "seed": 0, "datasets": {"bench": {"kind": "volumes", "layout": "lits", "raw": str(raw),
                                              "image_size": [args.image_size] * 2, "window": [-100, 400]}},
            "experiments": {"e": {"dataset": "bench", "variant": "dcgan", "class": "healthy"}}})["datasets"]["bench"]
        time_read_only(raw)  # warm the page cache so that no timing pays for the disk
        read_s = convert_s = float("inf")
        for attempt in range(args.repeats):  # interleaved, best of each: fair on a busy machine
            read_s = min(read_s, time_read_only(raw))
            started = time.perf_counter()
            manifest = prepare.prepare_dataset("bench", settings, root / f"slices{attempt}", seed=0)
            convert_s = min(convert_s, time.perf_counter() - started)
            shutil.rmtree(root / f"slices{attempt}")
        started = time.perf_counter()
        naive_n = naive_reference(raw, root / "naive", settings)
        naive_s = time.perf_counter() - started
    finally:
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)

    n = len(manifest)
    print(f"cases: {args.cases} × {tuple(args.shape)}; slices written: {n} (naive: {naive_n}) at "
          f"{args.image_size}×{args.image_size}")
    print(f"read only (SimpleITK, image+label): {read_s:.2f} s")
    print(f"full conversion (medgan prepare):   {convert_s:.2f} s = {n / convert_s:.1f} slices/s")
    print(f"naive reference (nibabel + loop):   {naive_s:.2f} s = {naive_n / naive_s:.1f} slices/s")
    print(f"ratio (i)  conversion / read:  {convert_s / read_s:.2f}  (target <= 2)")
    print(f"ratio (ii) naive / conversion: {naive_s / convert_s:.2f}  (target >= 3)")


if __name__ == "__main__":
    main()
