"""`class_folders` kind (COVID-CT, brain MRI): any image mode to grayscale, aspect-keeping
fit, patient ids from the metadata table, the authors' split on request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ingest_support import copy_raw, raw_sets, settings_for  # noqa: F401 (fixture)
from medgan import prepare
from medgan.ingest import DataError, images


@pytest.fixture(scope="module")
def covid(raw_sets, tmp_path_factory):
    out = tmp_path_factory.mktemp("covid") / "slices"
    return out, prepare.prepare_dataset("covid", settings_for("covid_ct", raw_sets["covid_ct"]), out, seed=0)


def test_patient_ids_come_from_the_metadata_table(covid, raw_sets):
    _, manifest = covid
    meta = pd.concat(pd.read_excel(raw_sets["covid_ct"] / "COVID-CT-MetaInfo.xlsx", sheet_name=None, dtype=str).values())
    expected = {name: f"patient-{pid}" for name, pid in zip(meta["File name"], meta["Patient ID"])}
    got = {Path(s).name: c for s, c in zip(manifest["source"], manifest["case"])}
    assert got == expected
    assert manifest.groupby("case").size().max() > 1  # several images per patient...
    assert (manifest.groupby("case")["split"].nunique() == 1).all()  # ...never in two splits


def test_every_image_is_converted_once_to_the_output_size(covid, raw_sets):
    out, manifest = covid
    raw_files = [p for d in ("CT_COVID", "CT_NonCOVID") for p in (raw_sets["covid_ct"] / d).iterdir()]
    assert len(manifest) == len(raw_files) and manifest["source"].is_unique
    assert {Image.open(out / p).size for p in manifest["path"]} == {(32, 32)}
    assert set(manifest["class"]) == {"covid", "noncovid"}
    covid_sources = manifest.loc[manifest["class"] == "covid", "source"]
    assert covid_sources.str.contains("CT_COVID/").all()


def test_authors_split_is_used_when_asked(raw_sets, tmp_path):
    manifest = prepare.prepare_dataset("c", settings_for("covid_ct", raw_sets["covid_ct"], use_authors_split=True),
                                       tmp_path / "s", seed=0)
    listed = {}
    for txt in (raw_sets["covid_ct"] / "Data-split").rglob("*.txt"):
        split = txt.name[: txt.name.index("CT_")]
        listed.update({line: split for line in txt.read_text().split()})
    assert {Path(s).name: sp for s, sp in zip(manifest["source"], manifest["split"])} == listed


def test_per_file_patient_ids(raw_sets, tmp_path):
    manifest = prepare.prepare_dataset("c", settings_for("covid_ct", raw_sets["covid_ct"], patient_ids="per_file"),
                                       tmp_path / "s", seed=0)
    assert manifest["case"].is_unique
    assert "1_0" in set(manifest["case"])  # "1%0.jpg" made file-name safe


def test_required_metadata_missing_is_an_error(raw_sets, tmp_path):
    raw = copy_raw(raw_sets, "covid_ct", tmp_path)
    (raw / "COVID-CT-MetaInfo.xlsx").unlink()
    with pytest.raises(DataError, match="COVID-CT-MetaInfo.xlsx"):
        prepare.prepare_dataset("c", settings_for("covid_ct", raw, patient_ids="metadata"), tmp_path / "s", seed=0)


def test_brain_mri_mixed_sizes_and_formats(raw_sets, tmp_path):
    raw = raw_sets["brain_mri"]
    suffixes = {p.suffix for p in raw.rglob("*.*")}
    modes = {Image.open(p).mode for p in raw.rglob("*.*")}
    sizes = {Image.open(p).size for p in raw.rglob("*.*")}
    assert {".jpg", ".png"} <= suffixes and {"L", "RGB", "RGBA"} <= modes and len(sizes) > 5  # the real set's quirks
    manifest = prepare.prepare_dataset("b", settings_for("brain_mri", raw), tmp_path / "s", seed=0)
    assert set(manifest["class"]) == {"tumour", "healthy"}
    assert manifest.loc[manifest["class"] == "tumour", "source"].str.contains("/yes/").all()
    for path in manifest["path"]:
        pixels = np.asarray(Image.open(tmp_path / "s" / path))
        assert pixels.shape == (32, 32) and pixels.max() > 100


def _save(tmp_path, image, name):
    path = tmp_path / name
    image.save(path)
    return path


def test_every_image_mode_becomes_grayscale(tmp_path):
    gray = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (32, 1))
    expected = images.read_gray(_save(tmp_path, Image.fromarray(gray), "l.png"))
    assert np.array_equal(expected, gray)
    assert np.array_equal(images.read_gray(_save(tmp_path, Image.fromarray(gray).convert("RGB"), "rgb.png")), gray)
    assert np.array_equal(images.read_gray(_save(tmp_path, Image.fromarray(gray).convert("P"), "p.bmp")), gray)
    rgba = Image.fromarray(gray).convert("RGBA")
    rgba.putalpha(Image.fromarray(np.where(np.arange(32)[:, None] < 16, 255, 0).astype(np.uint8).repeat(32, 1)))
    composited = images.read_gray(_save(tmp_path, rgba, "rgba.png"))
    assert np.array_equal(composited[:16], gray[:16]) and composited[16:].max() == 0  # transparent -> black
    deep = Image.fromarray((gray.astype(np.uint16) * 16 + 1000).astype(np.uint16))
    assert deep.mode.startswith("I;16")
    fixed = images.read_gray(_save(tmp_path, deep, "deep.tif"))  # by bit depth: 0..65535 -> 0..255
    assert np.array_equal(fixed, np.round((gray.astype(np.float32) * 16 + 1000) * 255 / 65535).astype(np.uint8))
    ranged = images.read_gray(tmp_path / "deep.tif", [1000, 1000 + 255 * 16])  # a configured input range
    assert np.array_equal(ranged, gray)


def test_fit_pads_or_crops_keeping_the_aspect_ratio():
    wide = np.full((50, 100), 200, np.uint8)
    padded = images.fit_to_size(wide, (32, 32), "pad")
    assert padded.shape == (32, 32)
    assert padded[0].max() == 0 and padded[-1].max() == 0 and padded[16].min() == 200  # black bands top/bottom
    cropped = images.fit_to_size(wide, (32, 32), "crop")
    assert cropped.shape == (32, 32) and cropped.min() == 200
    assert images.fit_to_size(wide, (32, 32), "stretch").min() == 200
