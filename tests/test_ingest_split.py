"""Splits are by patient, stratified by class, reproducible; for phantoms of every kind the
output contract holds and no patient crosses splits."""

from __future__ import annotations

import re
from collections import Counter

import pandas as pd
import pytest

from ingest_support import SETTINGS, raw_sets, settings_for  # noqa: F401 (fixture)
from medgan import prepare
from medgan.ingest.split import split_cases

RATIOS = {"train": 0.6, "val": 0.2, "test": 0.2}


def test_split_is_stratified_by_class():
    ids = [f"a{i}" for i in range(10)] + [f"b{i}" for i in range(20)]
    strata = {c: c[0] for c in ids}
    for seed in range(5):
        split = split_cases(ids, RATIOS, seed, strata)
        per = Counter((strata[c], s) for c, s in split.items())
        assert per[("a", "test")] == 2 and per[("b", "test")] == 4
        assert per[("a", "val")] == 2 and per[("b", "val")] == 4


def test_split_is_reproducible_and_the_seed_matters():
    ids = [str(i) for i in range(30)]
    assert split_cases(ids, RATIOS, 1) == split_cases(ids, RATIOS, 1)
    assert split_cases(ids, RATIOS, 1) != split_cases(ids, RATIOS, 2)
    assert sorted(split_cases(ids, RATIOS, 1)) == sorted(ids)


def test_too_few_cases_is_a_clear_error():
    with pytest.raises(prepare.DataError, match="too few"):
        split_cases(["1", "2"], {"train": 0.0, "val": 0.5, "test": 0.5}, 0)


@pytest.mark.parametrize("kind", sorted(SETTINGS))
def test_every_kind_writes_the_contract_and_never_mixes_patients(kind, raw_sets, tmp_path):
    out = tmp_path / "slices"
    prepare.prepare_dataset(kind, settings_for(kind, raw_sets[kind]), out, seed=0)
    manifest = pd.read_csv(out / "manifest.csv", dtype={"case": str}, keep_default_na=False)
    required = {"dataset", "case", "source", "slice_index", "split", "class", "organ_pixels", "lesion_pixels",
                "window_low", "window_high", "spacing_x", "spacing_y", "spacing_z", "sha1", "path", "mask_path"}
    assert required <= set(manifest.columns)
    assert (manifest.groupby("case")["split"].nunique() == 1).all()
    assert set(manifest["split"]) == {"train", "val", "test"}
    for row in manifest.to_dict("records"):
        assert re.fullmatch(rf"{row['split']}/{row['class']}/{re.escape(row['case'])}_\d{{4}}\.png", row["path"])
        assert (out / row["path"]).is_file()
        assert row["path"].endswith(f"_{int(row['slice_index']):04d}.png")
    assert (out / "prepare.json").is_file()
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(
        {"train", "val", "test"} | ({"masks"} if manifest["mask_path"].str.len().gt(0).any() else set()))


def test_volumes_split_keeps_every_slice_of_a_case_together(raw_sets, tmp_path):
    manifest = prepare.prepare_dataset("v", settings_for("lits", raw_sets["lits"]), tmp_path / "s", seed=0)
    assert manifest.groupby("case").size().min() > 1
    assert (manifest.groupby("case")["split"].nunique() == 1).all()
