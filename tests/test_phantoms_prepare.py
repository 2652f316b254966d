import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medgan import paths, phantoms, prepare

SPEC = phantoms.PhantomSpec(n_cases=3, shape=(64, 64, 20), spacing=(5.5, 5.5, 10.0))


def test_phantom_case_is_deterministic_and_realistic():
    hu_a, label_a = phantoms.make_case(SPEC, np.random.default_rng([0, 1]))
    hu_b, label_b = phantoms.make_case(SPEC, np.random.default_rng([0, 1]))
    assert np.array_equal(hu_a, hu_b) and np.array_equal(label_a, label_b)
    hu_c, _ = phantoms.make_case(SPEC, np.random.default_rng([1, 1]))
    assert not np.array_equal(hu_a, hu_c)
    assert hu_a.dtype == np.int16 and set(np.unique(label_a)) <= {0, 1, 2}
    assert abs(np.median(hu_a[0:3, 0:3]) - phantoms.AIR) < 60  # corner is air
    liver_only = label_a == phantoms.LIVER_LABEL
    tumour = label_a == phantoms.TUMOUR_LABEL
    assert abs(np.median(hu_a[liver_only]) - phantoms.LIVER) < 25
    assert tumour.any() and np.median(hu_a[tumour]) < np.median(hu_a[liver_only]) - 30  # hypodense


def test_written_volumes_have_lits_names_spacing_and_mixed_orientations(tmp_path):
    phantoms.write_lits(tmp_path / "raw", SPEC, seed=0)
    codes = set()
    for case in range(SPEC.n_cases):
        image = nib.load(tmp_path / "raw" / f"volume-{case}.nii.gz")
        label = nib.load(tmp_path / "raw" / f"segmentation-{case}.nii.gz")
        assert image.get_data_dtype() == np.int16 and image.shape == label.shape
        assert np.allclose(sorted(image.header.get_zooms()), sorted(SPEC.spacing))
        codes.add(nib.aff2axcodes(image.affine))
    assert len(codes) == 3


def _dataset(tmp_path, **extra):
    ds = {"kind": "volumes", "layout": "lits", "raw": str(tmp_path / "raw"), "image_size": [32, 32],
          "window": [-100, 400], "classes": ["healthy", "tumour"], "min_organ_pixels": 30,
          "min_lesion_pixels": 3, "split": {"train": 0.6, "val": 0.2, "test": 0.2}}
    ds.update(extra)
    return ds


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("prep")
    spec = phantoms.PhantomSpec(n_cases=5, shape=(64, 64, 20), spacing=(5.5, 5.5, 10.0))
    phantoms.write_lits(tmp_path / "raw", spec, seed=0)
    manifest = prepare.prepare_dataset("tiny", _dataset(tmp_path), tmp_path / "slices", seed=0)
    return tmp_path, manifest


def test_prepare_writes_imagefolder_layout_and_manifest(converted):
    tmp_path, manifest = converted
    on_disk = pd.read_csv(tmp_path / "slices" / "manifest.csv", dtype={"case": str})
    assert len(on_disk) == len(manifest) > 0
    assert {"dataset", "case", "source", "slice_index", "split", "class", "organ_pixels",
            "lesion_pixels", "window_low", "window_high", "spacing_x", "sha1", "path"} <= set(on_disk.columns)
    for _, row in on_disk.iterrows():
        assert row["path"] == f"{row['split']}/{row['class']}/{row['case']}_{row['slice_index']:04d}.png"
        assert (tmp_path / "slices" / row["path"]).exists()
    assert set(on_disk["class"]) == {"healthy", "tumour"}
    assert (on_disk.loc[on_disk["class"] == "tumour", "lesion_pixels"] >= 3).all()
    assert (on_disk.loc[on_disk["class"] == "healthy", "lesion_pixels"] < 3).all()


def test_split_is_by_case_never_by_slice(converted):
    _, manifest = converted
    assert (manifest.groupby("case")["split"].nunique() == 1).all()
    assert set(manifest["split"]) == {"train", "val", "test"}


def test_split_cases_is_deterministic_and_complete():
    ids = [str(i) for i in range(20)]
    a = prepare.split_cases(ids, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=3)
    assert a == prepare.split_cases(ids, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=3)
    assert sorted(a) == sorted(ids)
    assert list(a.values()).count("test") == 4 and list(a.values()).count("val") == 4


def test_overlap_check_fires():
    bad = pd.DataFrame({"case": ["1", "1", "2"], "split": ["train", "test", "val"]})
    with pytest.raises(AssertionError, match="1"):
        prepare.assert_no_case_overlap(bad)


def test_every_case_is_displayed_radiologically(converted):
    """Liver (patient's right) on the image's left, spine (posterior) at the bottom, whatever
    the voxel order of the file (the phantom cases use three)."""
    tmp_path, manifest = converted
    for case, rows in manifest.groupby("case"):
        row = rows.iloc[len(rows) // 2]
        volume, _ = prepare.read_display_volume(tmp_path / "raw" / f"segmentation-{case}.nii.gz")
        liver_cols = np.argwhere(volume[row.slice_index] >= 1)[:, 1]
        assert liver_cols.mean() < volume.shape[2] / 2, f"case {case}: liver not on image left"
        hu, _ = prepare.read_display_volume(tmp_path / "raw" / f"volume-{case}.nii.gz")
        bone_rows = np.argwhere(hu[row.slice_index] > 200)[:, 0]
        assert bone_rows.mean() > volume.shape[1] / 2, f"case {case}: spine not at the bottom"


def test_missing_label_fails_naming_file_and_leaves_nothing(tmp_path):
    phantoms.write_lits(tmp_path / "raw", SPEC, seed=0)
    (tmp_path / "raw" / "segmentation-1.nii.gz").unlink()
    with pytest.raises(prepare.DataError, match="volume-1.nii.gz"):
        prepare.prepare_dataset("x", _dataset(tmp_path), tmp_path / "slices", seed=0)
    assert not (tmp_path / "slices").exists()
    assert not list(tmp_path.glob(".slices*"))


def test_corrupt_volume_fails_naming_file_and_leaves_nothing(tmp_path):
    phantoms.write_lits(tmp_path / "raw", SPEC, seed=0)
    path = tmp_path / "raw" / "volume-2.nii.gz"
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(prepare.DataError, match="volume-2.nii.gz"):
        prepare.prepare_dataset("x", _dataset(tmp_path), tmp_path / "slices", seed=0)
    assert not (tmp_path / "slices").exists()


def test_empty_raw_folder_says_what_to_do(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(prepare.DataError, match="no file matches"):
        prepare.find_cases(tmp_path / "raw", "lits")


def test_window_maps_hu_to_uint8():
    out = prepare.window_to_uint8(np.array([-1000, -100, 150, 400, 3000]), -100, 400)
    assert out.tolist() == [0, 0, 128, 255, 255]


def test_images_are_the_configured_size(converted):
    tmp_path, manifest = converted
    image = Image.open(tmp_path / "slices" / manifest["path"].iloc[0])
    assert image.size == (32, 32) and image.mode == "L"
