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
from medgan import config, prepare
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


# --- silent drops: every file the pattern finds is used or reported ---------------------------

def test_case_in_a_linked_sub_folder_is_used_and_a_link_loop_ends(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    elsewhere = tmp_path / "second_disk"
    elsewhere.mkdir()
    for name in ("volume-3.nii.gz", "segmentation-3.nii.gz"):
        (raw / name).rename(elsewhere / name)
    (raw / "batch2").symlink_to(elsewhere, target_is_directory=True)
    (raw / "loop").symlink_to(raw, target_is_directory=True)  # followed once, not forever
    manifest = prepare.prepare_dataset("x", settings_for("lits", raw), tmp_path / "slices", seed=0)
    assert "3" in set(manifest["case"])
    assert manifest["source"].str.contains("batch2/volume-3.nii.gz").any()


@pytest.mark.parametrize("name", ["volume-7 (1).nii.gz", "volume-7 ü.nii.gz"])
def test_volume_the_case_pattern_rejects_is_reported(tmp_path, raw_sets, name):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    (raw / name).write_bytes((raw / "volume-1.nii.gz").read_bytes())
    assert "case_regex" in fails_cleanly(tmp_path, "lits", raw, name)


def test_check_data_reports_a_volume_the_case_pattern_rejects(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    (raw / "volume-7 (1).nii.gz").write_bytes((raw / "volume-1.nii.gz").read_bytes())
    checked = subprocess.run(["medgan", "check-data", "bad"], cwd=_project_with(tmp_path, raw, "lits"),
                             env=run_env(), capture_output=True, text=True)
    assert checked.returncode == 2 and "volume-7 (1).nii.gz" in checked.stderr
    assert "no problem found" not in checked.stdout


def test_broken_link_and_foreign_files_in_a_class_folder_are_reported(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "brain_mri", tmp_path)
    (raw / "yes" / "Y_gone.png").symlink_to(tmp_path / "nowhere.png")
    (raw / "yes" / "Y_scan.dcm").write_bytes(b"DICM")
    (raw / "no" / "more").mkdir()
    (raw / "no" / ".DS_Store").write_bytes(b"")  # hidden: not data, not reported
    message = fails_cleanly(tmp_path, "brain_mri", raw, ["Y_gone.png", "Y_scan.dcm", "no/more"])
    assert "broken link" in message and ".DS_Store" not in message


def test_broken_link_in_a_volume_folder_is_reported(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    (raw / "volume-9.nii.gz").symlink_to(tmp_path / "unmounted" / "volume-9.nii.gz")
    assert "broken link" in fails_cleanly(tmp_path, "lits", raw, "volume-9.nii.gz")


# --- settings the schema cannot express -------------------------------------------------------

@pytest.mark.parametrize("window", [[400, -100], [100, 100]])
def test_window_low_must_be_below_high(tmp_path, window):
    with pytest.raises(config.ConfigError, match=r"datasets\.d\.window.*low must be below high"):
        settings_for("lits", tmp_path, window=window)


def test_layout_of_another_kind_is_named(tmp_path):
    with pytest.raises(config.ConfigError, match=r"datasets\.d\.layout.*'brain_mri' is not a layout of kind volumes"):
        settings_for("lits", tmp_path, layout="brain_mri")


def test_lesion_label_outside_label_values_is_refused(tmp_path):
    with pytest.raises(config.ConfigError, match=r"datasets\.d\.lesion_labels.*\[5\] not in label_values"):
        settings_for("lits", tmp_path, lesion_labels=[5])


# --- label maps and deep images ---------------------------------------------------------------

def _float_labels(raw, noise):
    path = raw / "segmentation-1.nii.gz"
    data = np.asanyarray(nib.load(path).dataobj).astype(np.float32)
    data[data > 0] += noise
    _resave(path, data, dtype=np.float32)


def test_near_integer_float_labels_show_values_and_offer_rounding(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    _float_labels(raw, np.float32(2e-4))
    message = fails_cleanly(tmp_path, "lits", raw, "segmentation-1.nii.gz")
    assert "round_labels: true" in message and "1.0002" in message and "probably an image" not in message
    manifest = prepare.prepare_dataset("x", settings_for("lits", raw, round_labels=True), tmp_path / "s", seed=0)
    assert "1" in set(manifest["case"])


def test_non_integer_float_labels_show_a_few_values(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    _float_labels(raw, np.float32(0.37))
    message = fails_cleanly(tmp_path, "lits", raw, "segmentation-1.nii.gz",
                            round_labels=True)  # too far from integers to round
    assert "probably an image" in message and "1.37" in message


def test_sixteen_bit_images_map_one_stored_value_to_one_grey_level(tmp_path):
    from medgan.ingest import images

    low_range = np.full((16, 16), 500, np.uint16)
    low_range[0, 0] = 1000
    wide_range = np.full((16, 16), 500, np.uint16)
    wide_range[0, 0] = 4095
    a, b = tmp_path / "a.png", tmp_path / "b.tif"
    Image.fromarray(low_range).save(a)
    Image.fromarray(wide_range).save(b)
    assert images.read_gray(a)[5, 5] == images.read_gray(b)[5, 5] == round(500 * 255 / 65535)
    assert images.read_gray(a, [0, 4095])[5, 5] == images.read_gray(b, [0, 4095])[5, 5] == round(500 * 255 / 4095)
    assert images.read_gray(b, [0, 4095])[0, 0] == 255


def test_float_image_without_an_input_range_is_refused(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "brain_mri", tmp_path)
    Image.fromarray(np.random.default_rng(0).random((32, 32), np.float32)).save(raw / "yes" / "Y_float.tif")
    assert "input_range" in fails_cleanly(tmp_path, "brain_mri", raw, "Y_float.tif")
    manifest = prepare.prepare_dataset("x", settings_for("brain_mri", raw, input_range=[0, 1]), tmp_path / "s", seed=0)
    assert manifest["source"].str.endswith("Y_float.tif").any()


@pytest.mark.parametrize("overrides, says", [
    ({"case_regex": r"volume-\d+"}, r"case_regex.*needs a group"),
    ({"case_regex": r"volume-(\d+"}, r"case_regex.*not a valid regular expression"),
    ({"labels": "{folder}/segmentation-{case}{ext}"}, r"labels.*unknown field\(s\) \['folder'\]"),
])
def test_custom_layout_patterns_are_checked_up_front(tmp_path, overrides, says):
    custom = {"layout": "custom", "images": "volume-*.nii.gz", "case_regex": r"^volume-(\d+)",
              "labels": "{dir}/segmentation-{case}{ext}"}
    with pytest.raises(config.ConfigError, match=r"datasets\.d\." + says):
        settings_for("lits", tmp_path, **{**custom, **overrides})


def test_image_missing_from_a_required_metadata_table_is_reported(tmp_path, raw_sets):
    clean = prepare.prepare_dataset("x", settings_for("covid_ct", raw_sets["covid_ct"], patient_ids="metadata"),
                                    tmp_path / "clean", seed=0)
    assert len(clean)
    raw = copy_raw(raw_sets, "covid_ct", tmp_path)
    first = sorted((raw / "CT_COVID").iterdir())[0]
    (raw / "CT_COVID" / f"unlisted{first.suffix}").write_bytes(first.read_bytes())
    assert "not in the metadata table" in fails_cleanly(tmp_path, "covid_ct", raw, f"unlisted{first.suffix}",
                                                        patient_ids="metadata")


def test_one_folder_for_two_classes_or_masks_in_the_image_folder_is_refused(tmp_path):
    with pytest.raises(config.ConfigError, match=r"datasets\.d\.folders.*\['CT'\] would be read for several"):
        settings_for("covid_ct", tmp_path, folders={"covid": "CT", "noncovid": "CT"})
    with pytest.raises(config.ConfigError, match=r"datasets\.d\.masks_dir.*own mask"):
        settings_for("covid_lesion_pairs", tmp_path, images_dir="png", masks_dir="png")


# --- non-finite voxels and pixels (NaN, ±Inf) ----------------------------------------------------

def _plant_nonfinite_volume(raw, case=1):
    path = raw / f"volume-{case}.nii.gz"
    data = np.asanyarray(nib.load(path).dataobj).astype(np.float32)
    data[:3, :, :] = np.nan  # outside the field of view, as some exports write it
    data[-1, :2, :] = np.inf
    data[-1, 2:4, :] = -np.inf
    _resave(path, data, dtype=np.float32)
    return path, int((~np.isfinite(data)).sum())


def test_nonfinite_voxels_are_refused_with_the_file_and_the_count(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    path, count = _plant_nonfinite_volume(raw)
    message = fails_cleanly(tmp_path, "lits", raw, ["volume-1.nii.gz", f"{count} non-finite"])
    assert "NaN" in message and "+Inf" in message and "-Inf" in message and "nonfinite" in message


def test_nonfinite_voxels_replaced_when_declared_are_counted_in_prepare_json(tmp_path, raw_sets, capsys):
    import json

    raw = copy_raw(raw_sets, "lits", tmp_path)
    path, count = _plant_nonfinite_volume(raw)
    out = tmp_path / "slices"
    settings = settings_for("lits", raw, nonfinite={"action": "replace", "value": -1024})
    manifest = prepare.prepare_dataset("x", settings, out, seed=0)
    recorded = json.loads((out / "prepare.json").read_text())["nonfinite"]
    assert recorded["action"] == "replace" and recorded["value"] == -1024
    assert recorded["files"] == {str(path): count} and recorded["replaced"] == count
    assert "volume-1.nii.gz" in capsys.readouterr().out  # a warning line names the file
    # replaced by air (-1024 HU, below the window): black, never an arbitrary grey level
    rows = manifest[manifest["source"] == str(path)]
    pixels = np.stack([np.asarray(Image.open(out / p)) for p in rows["path"]])
    assert len(rows) and pixels.min() == 0


def test_replace_without_a_value_is_a_config_error(tmp_path):
    with pytest.raises(config.ConfigError, match=r"datasets\.d\.nonfinite.*value"):
        settings_for("lits", tmp_path, nonfinite={"action": "replace"})


def test_label_map_with_nan_is_always_refused(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    path = raw / "segmentation-2.nii.gz"
    labels = np.asanyarray(nib.load(path).dataobj).astype(np.float32)
    labels[0, 0, :] = np.nan
    _resave(path, labels, dtype=np.float32)
    fails_cleanly(tmp_path, "lits", raw, ["segmentation-2.nii.gz", f"{labels.shape[2]} non-finite label"],
                  nonfinite={"action": "replace", "value": -1024})


def test_float_image_with_nan_is_refused_or_replaced(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "brain_mri", tmp_path)
    values = np.random.default_rng(0).random((32, 32), np.float32)
    values[:4, :] = np.nan
    values[4, :3] = np.inf
    Image.fromarray(values).save(raw / "yes" / "Y_nan.tif")
    fails_cleanly(tmp_path, "brain_mri", raw, ["Y_nan.tif", "131 non-finite pixel"], input_range=[0, 1])
    settings = settings_for("brain_mri", raw, input_range=[0, 1], nonfinite={"action": "replace", "value": 0})
    prepare.prepare_dataset("x", settings, tmp_path / "s", seed=0)
    import json

    recorded = json.loads((tmp_path / "s" / "prepare.json").read_text())["nonfinite"]
    assert recorded["files"] == {str(raw / "yes" / "Y_nan.tif"): 131}


def test_check_data_and_prepare_cli_name_nonfinite_voxels(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    _plant_nonfinite_volume(raw, case=3)
    project = _project_with(tmp_path, raw, "lits")
    for verb in ("check-data", "prepare"):
        done = subprocess.run(["medgan", verb, "bad"], cwd=project, env=run_env(), capture_output=True, text=True)
        assert done.returncode == 2 and "volume-3.nii.gz" in done.stderr and "non-finite" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not (project / "data" / "slices" / "bad").exists()


# --- decompression bombs ------------------------------------------------------------------------

def _png_declaring(path: Path, width: int, height: int) -> Path:
    """A few-hundred-byte PNG whose header declares width × height gray pixels (the data is a
    stub): what a crafted or broken file looks like to Pillow."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side", [30000, 10000])  # above 2x Pillow's limit (its error); between 1x and 2x (a warning)
def test_decompression_bomb_png_is_one_clear_error_in_check_data_and_prepare(tmp_path, raw_sets, side):
    raw = copy_raw(raw_sets, "covid_ct", tmp_path)
    _png_declaring(raw / "CT_COVID" / "bomb.png", side, side)
    fails_cleanly(tmp_path, "covid_ct", raw, ["bomb.png", "decompression bomb"])
    project = _project_with(tmp_path, raw, "covid_ct")
    for verb in ("check-data", "prepare"):
        done = subprocess.run(["medgan", verb, "bad"], cwd=project, env=run_env(), capture_output=True, text=True)
        assert done.returncode == 2 and "bomb.png" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and "decompression bomb" in done.stderr
    assert not (project / "data" / "slices" / "bad").exists()


def test_decompression_bomb_mask_is_refused(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "covid_lesion_pairs", tmp_path)
    mask = sorted((raw / "masks").iterdir())[0]
    _png_declaring(mask, 30000, 30000)
    fails_cleanly(tmp_path, "covid_lesion_pairs", raw, [mask.name, "decompression bomb"])


# --- patients unknown ------------------------------------------------------------------------------

def test_one_patient_per_file_fallback_is_said_in_the_output_prepare_json_and_the_report(tmp_path, raw_sets, capsys,
                                                                                          monkeypatch):
    import json

    from medgan import report

    out = tmp_path / "data" / "slices" / "x"
    prepare.prepare_dataset("x", settings_for("brain_mri", raw_sets["brain_mri"]), out, seed=0)
    assert "patients unknown: split by image" in capsys.readouterr().out
    who = json.loads((out / "prepare.json").read_text())["patients"]
    assert who["known"] is False and "one patient per file" in who["source"]
    monkeypatch.chdir(tmp_path)
    assert report.patients_note("x").startswith("patients unknown: split by image")

    prepare.prepare_dataset("x", settings_for("covid_ct", raw_sets["covid_ct"]), out, seed=0)  # has its table
    assert "patients unknown" not in capsys.readouterr().out
    assert json.loads((out / "prepare.json").read_text())["patients"]["known"] is True
    assert report.patients_note("x") == ""


def test_check_data_notes_unknown_patients(tmp_path, raw_sets):
    project = _project_with(tmp_path, raw_sets["brain_mri"], "brain_mri")
    checked = subprocess.run(["medgan", "check-data", "bad"], cwd=project, env=run_env(), capture_output=True, text=True)
    assert checked.returncode == 0 and "patients unknown: split by image" in checked.stdout, checked.stdout


def test_a_multi_page_tiff_is_refused_not_cut_to_its_first_page(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "brain_mri", tmp_path)
    pages = [Image.fromarray(np.full((32, 32), 40 * i, np.uint8)) for i in range(3)]
    pages[0].save(raw / "yes" / "Y_stack.tif", save_all=True, append_images=pages[1:])
    fails_cleanly(tmp_path, "brain_mri", raw, ["Y_stack.tif", "3 frames/pages"])


def test_nonfinite_voxels_of_an_mha_volume_are_refused(tmp_path, raw_sets):
    """SimpleITK keeps NaN/Inf of MHA/NRRD (only its NIfTI reader zero-fills them): the same rule."""
    import SimpleITK as sitk

    raw = tmp_path / "mha"
    raw.mkdir()
    for case in (0, 1, 2):
        image = sitk.Cast(sitk.ReadImage(str(raw_sets["lits"] / f"volume-{case}.nii.gz")), sitk.sitkFloat32)
        if case == 1:
            values = sitk.GetArrayFromImage(image)
            values[0] = np.nan
            planted = sitk.GetImageFromArray(values)
            planted.CopyInformation(image)
            image = planted
        sitk.WriteImage(image, str(raw / f"volume-{case}.mha"))
        sitk.WriteImage(sitk.ReadImage(str(raw_sets["lits"] / f"segmentation-{case}.nii.gz")),
                        str(raw / f"segmentation-{case}.mha"))
    custom = {"layout": "custom", "images": "volume-*.mha", "case_regex": r"^volume-(\d+)\.mha$",
              "labels": "{dir}/segmentation-{case}.mha"}
    fails_cleanly(tmp_path, "lits", raw, ["volume-1.mha", "non-finite voxel"], **custom)


def test_a_volume_header_declaring_billions_of_voxels_is_refused_before_reading(tmp_path, raw_sets):
    raw = copy_raw(raw_sets, "lits", tmp_path)
    (raw / "volume-9.mha").write_bytes(b"ObjectType = Image\nNDims = 3\nDimSize = 100000 100000 1000\n"
                                       b"ElementType = MET_SHORT\nElementDataFile = LOCAL\n" + b"\x00" * 64)
    (raw / "segmentation-9.mha").write_bytes((raw / "volume-9.mha").read_bytes())
    custom = {"layout": "custom", "images": "volume-*", "case_regex": r"^volume-(\d+)\.(?:nii\.gz|mha)$",
              "labels": "{dir}/segmentation-{case}{ext}"}
    fails_cleanly(tmp_path, "lits", raw, ["volume-9.mha", "1e+13", "crafted header"], **custom)
