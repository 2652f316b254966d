"""`paired_folders` kind: frames/ + masks/ matched by stem, masks binarised, sizes checked."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ingest_support import copy_raw, raw_sets, settings_for  # noqa: F401 (fixture)
from medgan import prepare
from medgan.ingest import DataError, paired_folders


@pytest.fixture(scope="module")
def pairs(raw_sets, tmp_path_factory):
    out = tmp_path_factory.mktemp("pairs") / "slices"
    settings = settings_for("covid_lesion_pairs", raw_sets["covid_lesion_pairs"])
    return out, prepare.prepare_dataset("p", settings, out, seed=0)


def test_masks_are_binary_aligned_and_decide_the_class(pairs, raw_sets):
    out, manifest = pairs
    assert set(manifest["class"]) == {"healthy", "lesion"}
    for row in manifest.to_dict("records"):
        assert row["mask_path"] == f"masks/{row['path']}"
        mask = np.asarray(Image.open(out / row["mask_path"]))
        assert set(np.unique(mask)) <= {0, 1}
        raw_mask = np.asarray(Image.open(raw_sets["covid_lesion_pairs"] / "masks" /
                                         (row["source"].rsplit("/", 1)[1].rsplit(".", 1)[0] + ".png")))
        assert row["lesion_pixels"] == (raw_mask > 127).sum()
        assert (row["class"] == "lesion") == (row["lesion_pixels"] >= 5)
        if row["class"] == "lesion":
            frame = np.asarray(Image.open(out / row["path"]))
            # ground glass is brighter than the aerated lung around it in the lung window
            assert frame[mask == 1].mean() > 40


def test_patient_ids_from_the_file_name_keep_a_patients_slices_together(pairs):
    _, manifest = pairs
    assert set(manifest["case"]) == {f"coronacases_{p:03d}" for p in range(6)}
    assert (manifest.groupby("case")["split"].nunique() == 1).all()
    assert all(sorted(group["slice_index"]) == [0, 1] for _, group in manifest.groupby("case"))


def test_unmatched_files_are_listed(raw_sets, tmp_path):
    raw = copy_raw(raw_sets, "covid_lesion_pairs", tmp_path)
    orphan_mask = sorted((raw / "masks").iterdir())[0]
    orphan_frame = next((raw / "frames").glob(orphan_mask.stem + ".*"))
    orphan_frame.rename(raw / "frames" / "lonely.png")
    _, problems = paired_folders.list_units(settings_for("covid_lesion_pairs", raw))
    assert any("lonely.png" in p and "no mask" in p for p in problems)
    assert any(orphan_mask.name in p and "without an image" in p for p in problems)
    with pytest.raises(DataError, match="lonely.png"):
        prepare.prepare_dataset("p", settings_for("covid_lesion_pairs", raw), tmp_path / "s", seed=0)


@pytest.mark.parametrize("scale", [1, 255])
def test_binarise_01_and_0255_masks(scale):
    mask = np.zeros((8, 8), np.uint8)
    mask[2:4, 2:4] = scale
    assert paired_folders.binarise(mask).sum() == 4


def test_binarise_ignores_jpeg_noise():
    noisy = np.full((8, 8), 6, np.uint8)
    noisy[2:4, 2:4] = 250
    assert paired_folders.binarise(noisy).sum() == 4
