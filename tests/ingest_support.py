"""Shared by the tests/test_ingest_*.py modules: phantom raw sets of every kind (generated once
per session; copy one before planting a fault) and dataset settings with schema defaults."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from medgan import config, phantoms

RAW_SPECS = {
    "lits": phantoms.PhantomSpec(n_cases=4, shape=(64, 64, 20), spacing=(5.5, 5.5, 10.0)),
    "covid_ct": phantoms.PhantomSpec(n_cases=10, image_size=48),
    "covid_lesion_pairs": phantoms.PhantomSpec(n_cases=6, image_size=48),
    "brain_mri": phantoms.PhantomSpec(n_cases=10, image_size=24),
}

SETTINGS = {
    "lits": {"kind": "volumes", "layout": "lits", "image_size": [32, 32], "min_organ_pixels": 30,
             "min_lesion_pixels": 3},
    "covid_ct": {"kind": "class_folders", "layout": "covid_ct", "classes": ["covid", "noncovid"],
                 "image_size": [32, 32]},
    "covid_lesion_pairs": {"kind": "paired_folders", "classes": ["healthy", "lesion"], "image_size": [32, 32],
                           "case_regex": r"^(.+)_slice\d+$", "min_lesion_pixels": 5},
    "brain_mri": {"kind": "class_folders", "layout": "brain_mri", "classes": ["tumour", "healthy"],
                  "image_size": [32, 32], "fit": "crop"},
}


def dataset_config(raw, **settings) -> dict:
    """A dataset entry as `medgan` sees it: validated, schema defaults filled in."""
    ds = {"raw": str(raw), **settings}
    cls = ds.get("classes", ["healthy", "tumour"])[0]
    params = {"seed": 0, "datasets": {"d": ds},
              "experiments": {"e": {"dataset": "d", "variant": "dcgan", "class": cls}}}
    return config.validate(params)["datasets"]["d"]


@pytest.fixture(scope="session")
def raw_sets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("raw_sets")
    for kind, spec in RAW_SPECS.items():
        phantoms.GENERATORS[kind](root / kind, spec, seed=0)
    return {kind: root / kind for kind in RAW_SPECS}


def copy_raw(raw_sets, kind: str, dest: Path) -> Path:
    """A private copy of a phantom raw set to plant a fault in."""
    shutil.copytree(raw_sets[kind], dest / "raw")
    return dest / "raw"


def settings_for(kind: str, raw, **overrides) -> dict:
    return dataset_config(raw, **{**SETTINGS[kind], **overrides})
