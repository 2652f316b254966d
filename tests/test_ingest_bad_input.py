"""Every bad input fails with a DataError naming the file (and saying what to do), and leaves
nothing in the output folder — each fault planted in a copy of phantom raw data."""

from __future__ import annotations

import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import run_env
from ingest_support import copy_raw, raw_sets, settings_for  # noqa: F401 (fixture)
from medgan import prepare
from medgan.ingest import DataError


def fails_cleanly(tmp_path, kind, raw, names, **overrides):
    """prepare raises DataError naming `names`; data/slices holds nothing afterwards."""
    out = tmp_path / "data" / "slices" / "x"
    with pytest.raises(DataError) as caught:
        prepare.prepare_dataset("x", settings_for(kind, raw, **overrides), out, seed=0)
    for name in names if isinstance(names, list) else [names]:
        assert name in str(caught.value), str(caught.value)
    assert " — " in str(caught.value)  # ... — what to do
    leftovers = list(out.parent.iterdir()) if out.parent.exists() else []
    assert leftovers == [], leftovers
    return str(caught.value)


def _resave(path: Path, data: np.ndarray, affine=None, dtype=None):
    img = nib.load(path)
    new = nib.Nifti1Image(data, img.affine if affine is None else affine)
    if dtype is not None:
        new.set_data_dtype(dtype)
    nib.save(new, path)


def test_truncated_nii_gz(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    path = raw / "segmentation-2.nii.gz"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    fails_cleanly(tmp_path, "lits", raw, "segmentation-2.nii.gz")


def test_corrupt_nii_gz(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    (raw / "volume-1.nii.gz").write_bytes(b"\x1f\x8b\x08\x00garbage" * 50)
    fails_cleanly(tmp_path, "lits", raw, "volume-1.nii.gz")


def test_image_label_shape_mismatch(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    path = raw / "segmentation-1.nii.gz"
    _resave(path, np.asanyarray(nib.load(path).dataobj)[:, :, :-3])
    message = fails_cleanly(tmp_path, "lits", raw, ["segmentation-1.nii.gz", "volume-1.nii.gz"])
    assert "shape" in message


def test_affine_mismatch_beyond_tolerance(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    path = raw / "segmentation-3.nii.gz"
    img = nib.load(path)
    shifted = img.affine.copy()
    shifted[:3, 3] += 4.0  # 4 mm off: the label would paint the wrong voxels
    _resave(path, np.asanyarray(img.dataobj), shifted)
    assert "origin" in fails_cleanly(tmp_path, "lits", raw, "segmentation-3.nii.gz")


def test_affine_difference_within_tolerance_is_accepted(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    path = raw / "segmentation-3.nii.gz"
    img = nib.load(path)
    nudged = img.affine.copy()
    nudged[:3, 3] += 0.001
    _resave(path, np.asanyarray(img.dataobj), nudged)
    manifest = prepare.prepare_dataset("x", settings_for("lits", raw), tmp_path / "slices", seed=0)
    assert "3" in set(manifest["case"])


def test_missing_label(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    (raw / "segmentation-0.nii.gz").unlink()
    assert "no label" in fails_cleanly(tmp_path, "lits", raw, "volume-0.nii.gz")


def test_four_d_volume(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    path = raw / "volume-2.nii.gz"
    data = np.asanyarray(nib.load(path).dataobj)
    _resave(path, np.stack([data, data], axis=-1))
    assert "4-D" in fails_cleanly(tmp_path, "lits", raw, "volume-2.nii.gz")


def test_non_integer_labels(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    path = raw / "segmentation-1.nii.gz"
    data = np.asanyarray(nib.load(path).dataobj).astype(np.float32) * 0.5
    _resave(path, data, dtype=np.float32)
    assert "non-integer" in fails_cleanly(tmp_path, "lits", raw, "segmentation-1.nii.gz")


def test_label_values_outside_the_declared_set(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    path = raw / "segmentation-2.nii.gz"
    data = np.asanyarray(nib.load(path).dataobj).copy()
    data[0, 0, 0] = 7
    _resave(path, data)
    assert "[7]" in fails_cleanly(tmp_path, "lits", raw, "segmentation-2.nii.gz")


def test_empty_class_folder(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "covid_ct", tmp_path)
    for path in (raw / "CT_NonCOVID").iterdir():
        path.unlink()
    assert "holds no" in fails_cleanly(tmp_path, "covid_ct", raw, "CT_NonCOVID")


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_unreadable_or_truncated_image(tmp_path, raw_sets, damage):
    raw = copy_raw(raw_sets, "brain_mri", tmp_path)
    victim = sorted((raw / "yes").iterdir())[0]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not an image at all")
    fails_cleanly(tmp_path, "brain_mri", raw, victim.name)


def test_truncated_mask_of_a_pair(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "covid_lesion_pairs", tmp_path)
    victim = sorted((raw / "masks").iterdir())[1]
    victim.write_bytes(victim.read_bytes()[:60])
    fails_cleanly(tmp_path, "covid_lesion_pairs", raw, victim.name)


def test_duplicate_case_ids_in_volumes(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    (raw / "batch2").mkdir()
    for name in ("volume-1.nii.gz", "segmentation-1.nii.gz"):
        (raw / "batch2" / name).write_bytes((raw / name).read_bytes())
    assert "duplicate case id '1'" in fails_cleanly(tmp_path, "lits", raw, "volume-1.nii.gz")


def test_duplicate_case_ids_in_class_folders(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "brain_mri", tmp_path)
    first = sorted((raw / "no").iterdir())[0]
    twin = first.with_suffix(".bmp")
    Image.open(first).save(twin)
    assert "duplicate case id" in fails_cleanly(tmp_path, "brain_mri", raw, twin.stem)


def test_pattern_matching_no_file(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    message = fails_cleanly(tmp_path, "lits", raw, "*.nrrd", layout="custom", images="*.nrrd",
                            case_regex=r"(.+)\.nrrd", labels="{case}_seg.nrrd")
    assert "no file matches" in message and str(raw) in message


def test_one_pixel_wide_image(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "brain_mri", tmp_path)
    Image.fromarray(np.full((200, 1), 128, np.uint8)).save(raw / "yes" / "Y_sliver.png")
    assert "too small" in fails_cleanly(tmp_path, "brain_mri", raw, "Y_sliver.png")


def test_pair_size_mismatch(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "covid_lesion_pairs", tmp_path)
    mask = sorted((raw / "masks").iterdir())[0]
    Image.open(mask).resize((20, 20)).save(mask)
    assert "differs" in fails_cleanly(tmp_path, "covid_lesion_pairs", raw, mask.name)


def _project_with(tmp_path, raw, kind) -> Path:
    settings = settings_for(kind, raw)
    params = {"seed": 0, "datasets": {"bad": settings},
              "experiments": {"e": {"dataset": "bad", "variant": "dcgan", "class": settings["classes"][0]}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def test_cli_exits_nonzero_naming_the_file_and_check_data_lists_every_problem(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    (raw / "segmentation-0.nii.gz").unlink()
    path = raw / "volume-2.nii.gz"
    path.write_bytes(path.read_bytes()[:3000])
    project = _project_with(tmp_path, raw, "lits")

    prepared = subprocess.run(["medgan", "prepare", "bad"], cwd=project, env=run_env(), capture_output=True, text=True)
    assert prepared.returncode == 2 and "volume-0.nii.gz" in prepared.stderr
    assert not (project / "data" / "slices" / "bad").exists()

    checked = subprocess.run(["medgan", "check-data", "bad"], cwd=project, env=run_env(), capture_output=True, text=True)
    assert checked.returncode == 2
    assert "2 problem(s)" in checked.stderr
    assert "volume-0.nii.gz" in checked.stderr and "volume-2.nii.gz" in checked.stderr
    assert not (project / "data").exists()  # check-data writes nothing


def test_check_data_passes_on_clean_data(tmp_path, raw_sets):
    project = _project_with(tmp_path, raw_sets["covid_ct"], "covid_ct")
    checked = subprocess.run(["medgan", "check-data", "bad"], cwd=project, env=run_env(), capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert "no problem found" in checked.stdout
