"""`volumes` kind: readers keep values and handle orientation on real published files
(pydicom's CT_small.dcm, nibabel's anatomical.nii), any SimpleITK format works, and the
optional crop / resampling / label masks do what they say."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
from nibabel.testing import data_path
from PIL import Image
from pydicom.data import get_testdata_file

from ingest_support import copy_raw, raw_sets, settings_for  # noqa: F401 (fixture)
from medgan import prepare
from medgan.ingest import volumes


def _dicom_series(folder, dataset):
    folder.mkdir(parents=True)
    dataset.save_as(folder / "slice0.dcm")
    return folder


def test_dicom_series_folder_gives_hounsfield_units_in_display_orientation(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert float(ds.RescaleIntercept) == -1024 and hu.min() < -800  # the stored values are not HU
    volume, spacing = volumes.read_display_volume(_dicom_series(tmp_path / "ct", ds))
    assert volume.shape == (1, 128, 128)
    # IOP (1,0,0 / 0,1,0): columns run to the patient's left, rows to posterior = display already
    assert np.array_equal(volume[0], hu)
    assert spacing[:2] == pytest.approx([float(v) for v in ds.PixelSpacing][::-1])


def test_dicom_with_mirrored_rows_is_flipped_back(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    ds.ImageOrientationPatient = [-1, 0, 0, 0, 1, 0]  # columns now run to the patient's right
    volume, _ = volumes.read_display_volume(_dicom_series(tmp_path / "ct", ds))
    assert np.array_equal(volume[0], hu[:, ::-1])


def test_nibabel_anatomical_nii_values_and_orientation():
    path = f"{data_path}/anatomical.nii"
    canonical = nib.as_closest_canonical(nib.load(path))  # voxel axes to R, A, S
    expected = canonical.get_fdata()[::-1, ::-1, :].transpose(2, 1, 0)  # (S, P, L) display
    volume, spacing = volumes.read_display_volume(path)
    assert volume.shape == expected.shape
    assert np.allclose(volume, expected)
    assert sorted(spacing) == pytest.approx(sorted(canonical.header.get_zooms()[:3]))


def test_window_maps_any_integer_or_float_volume():
    hu = np.array([-32768, -1000, -100, 150, 400, 3000, 32767], dtype=np.int16)
    expected = [0, 0, 0, 128, 255, 255, 255]
    for dtype in (np.int16, np.int32, np.float64):
        assert volumes.window_to_uint8(hu.astype(dtype), -100, 400).tolist() == expected
    lung = volumes.window_to_uint8(np.arange(-1000, 401, dtype=np.int16), -1000, 400)
    assert lung[0] == 0 and lung[-1] == 255 and (np.diff(lung.astype(int)) >= 0).all()


def test_any_simpleitk_format_gives_the_same_slices(tmp_path, raw_sets):
    """The LiTS phantom re-saved as NRRD images + MHA labels in a custom layout: same output."""
    nifti = raw_sets["lits"]
    custom = tmp_path / "custom"
    for case in range(2):
        (custom / f"case{case}").mkdir(parents=True)
        sitk.WriteImage(sitk.ReadImage(str(nifti / f"volume-{case}.nii.gz")), str(custom / f"case{case}" / "ct.nrrd"))
        sitk.WriteImage(sitk.ReadImage(str(nifti / f"segmentation-{case}.nii.gz")),
                        str(custom / f"case{case}" / "label.mha"))
    settings = settings_for("lits", custom, layout="custom", images="*/ct.nrrd", labels="{dir}/label.mha",
                            case_regex=r"^(.+)\.nrrd$", split={"train": 1.0, "val": 0.0, "test": 0.0})
    _, problems = volumes.list_units(settings)
    assert "duplicate case id 'ct'" in problems[0]  # the file name alone is not unique...
    for unit_dir in custom.iterdir():  # ...so name the files by case, as users do
        (unit_dir / "ct.nrrd").rename(unit_dir / f"{unit_dir.name}.nrrd")
    settings.update(images="*/case*.nrrd", case_regex=r"^(case\d+)\.nrrd$")
    converted = prepare.prepare_dataset("c", settings, tmp_path / "out_custom", seed=0)
    reference = prepare.prepare_dataset("r", settings_for("lits", nifti, split=settings["split"]),
                                        tmp_path / "out_nifti", seed=0)
    reference = reference[reference["case"].isin(["0", "1"])]
    assert sorted(converted["sha1"]) == sorted(reference["sha1"])


@pytest.fixture(scope="module")
def with_masks(raw_sets, tmp_path_factory):
    out = tmp_path_factory.mktemp("masks") / "slices"
    manifest = prepare.prepare_dataset("m", settings_for("lits", raw_sets["lits"], write_masks=True), out, seed=0)
    return out, manifest


def test_label_masks_sit_beside_the_images_and_match_the_class(with_masks):
    out, manifest = with_masks
    assert manifest["mask_path"].str.len().gt(0).all()
    for row in manifest.to_dict("records"):
        assert row["mask_path"] == f"masks/{row['path']}"
        mask = np.asarray(Image.open(out / row["mask_path"]))
        assert set(np.unique(mask)) <= {0, 1, 2}
        if row["lesion_pixels"] == 0:
            assert 2 not in mask and row["class"] == "healthy"
        if row["lesion_pixels"] >= 12:  # smaller lesions may vanish when 64 px go to 32
            assert 2 in mask and row["class"] == "tumour"
        image = np.asarray(Image.open(out / row["path"]))
        assert image[mask >= 1].mean() > image[mask == 0].mean()  # the mask sits on the (bright) liver


def test_crop_to_organ_enlarges_the_organ(raw_sets, with_masks, tmp_path):
    _, plain = with_masks
    cropped = prepare.prepare_dataset("m", settings_for("lits", raw_sets["lits"], write_masks=True,
                                                        crop_margin_mm=5), tmp_path / "s", seed=0)

    def organ_fraction(out, manifest):
        return np.mean([(np.asarray(Image.open(out / p)) >= 1).mean() for p in manifest["mask_path"]])

    assert organ_fraction(tmp_path / "s", cropped) > 1.5 * organ_fraction(with_masks[0], plain)


def test_in_plane_resampling_keeps_physical_size(raw_sets, tmp_path):
    """Source pixels are 5.5 mm; at 2.75 mm the organ covers 4× the pixels, unscaled after."""
    manifest = prepare.prepare_dataset("r", settings_for("lits", raw_sets["lits"], write_masks=True,
                                                         spacing_mm=[2.75, 2.75], image_size=[160, 160]),
                                       tmp_path / "s", seed=0)
    for row in manifest.head(8).itertuples():
        mask = np.asarray(Image.open(tmp_path / "s" / row.mask_path))
        assert mask.shape == (160, 160)
        assert (mask >= 1).sum() == pytest.approx(4 * row.organ_pixels, rel=0.12)


def test_msd_layout_is_found(raw_sets, tmp_path):
    msd = tmp_path / "Task03_Liver"
    (msd / "imagesTr").mkdir(parents=True)
    (msd / "labelsTr").mkdir()
    for case in range(2):
        shutil.copy(raw_sets["lits"] / f"volume-{case}.nii.gz", msd / "imagesTr" / f"liver_{case}.nii.gz")
        shutil.copy(raw_sets["lits"] / f"segmentation-{case}.nii.gz", msd / "labelsTr" / f"liver_{case}.nii.gz")
    (msd / "imagesTr" / "._liver_0.nii.gz").write_bytes(b"macOS resource fork")
    units, problems = volumes.list_units(settings_for("lits", msd, layout="msd"))
    assert problems == [] and [u.unit_id for u in units] == ["liver_0", "liver_1"]
    manifest = prepare.prepare_dataset("m", settings_for("lits", msd, layout="msd", split={"train": 1.0, "val": 0.0,
                                                                                          "test": 0.0}),
                                       tmp_path / "out", seed=0)
    assert set(manifest["case"]) == {"liver_0", "liver_1"}
    assert pd.read_csv(tmp_path / "out" / "manifest.csv")["source"].str.contains("imagesTr").all()


def test_dicom_folder_with_two_series_is_refused_not_half_read(tmp_path):
    from medgan.ingest import DataError

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    folder = _dicom_series(tmp_path / "ct", ds)
    ds.SeriesInstanceUID = ds.SeriesInstanceUID + ".2"
    ds.SOPInstanceUID = ds.SOPInstanceUID + ".2"
    ds.save_as(folder / "scout.dcm")
    with pytest.raises(DataError, match=r"ct: folder holds 2 DICOM series .* one series per folder"):
        volumes.read_display_volume(folder)
