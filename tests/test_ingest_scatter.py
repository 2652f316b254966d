"""prepare scattered (list units -> one job per unit -> gather), as Snakemake runs it, gives
exactly what one `medgan prepare DATASET` gives; interim units are written atomically and
reused only while current."""

from __future__ import annotations

import json
import os
import subprocess

import pandas as pd
import pytest
import yaml

from conftest import run_env
from ingest_support import copy_raw, raw_sets, settings_for  # noqa: F401 (fixture)
from medgan import ingest
from medgan.ingest import DataError


def medgan(project, *args):
    result = subprocess.run(["medgan", *args], cwd=project, env=run_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def project(tmp_path, raw_sets):
    datasets = {"lits": settings_for("lits", copy_raw(raw_sets, "lits", tmp_path / "l")),
                "brain": settings_for("brain_mri", copy_raw(raw_sets, "brain_mri", tmp_path / "b"), files_per_job=4)}
    params = {"seed": 0, "datasets": datasets,
              "experiments": {"e": {"dataset": "lits", "variant": "dcgan", "class": "healthy"}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


@pytest.mark.parametrize("dataset", ["lits", "brain"])
def test_scatter_and_gather_equal_one_prepare(project, dataset):
    medgan(project, "prepare", dataset, "--list-units")
    units = json.loads((project / f"data/interim/{dataset}/units.json").read_text())["units"]
    assert len(units) > 1
    for unit in units:
        medgan(project, "prepare", dataset, "--unit", unit["unit_id"])
    unit_stamp = (project / f"data/interim/{dataset}/units/{units[0]['unit_id']}/unit.json").stat().st_mtime_ns
    medgan(project, "prepare", dataset)  # the gather: reuses the current units
    assert (project / f"data/interim/{dataset}/units/{units[0]['unit_id']}/unit.json").stat().st_mtime_ns == unit_stamp
    scattered = (project / f"data/slices/{dataset}/manifest.csv").read_text()

    params = yaml.safe_load((project / "params.yaml").read_text())
    ingest.prepare_dataset(dataset, params["datasets"][dataset], project / "direct", seed=0)
    assert scattered == (project / "direct" / "manifest.csv").read_text()
    assert len(pd.read_csv(project / "direct" / "manifest.csv")) > 5


def test_changed_settings_make_units_stale(project, raw_sets):
    params = yaml.safe_load((project / "params.yaml").read_text())
    settings = params["datasets"]["brain"]
    unit = ingest.list_units("brain", settings)[0]
    folder = project / "interim" / "units" / unit.unit_id
    ingest.convert_unit(unit, settings, folder)
    from medgan.ingest.writer import unit_is_current

    assert unit_is_current(unit, folder, settings)
    assert not unit_is_current(unit, folder, {**settings, "image_size": [48, 48]})
    os.utime(unit.sources()[0], ns=(1, 1))  # the raw file changed
    assert not unit_is_current(unit, folder, settings)


def test_a_failing_unit_leaves_no_interim_folder(project):
    params = yaml.safe_load((project / "params.yaml").read_text())
    settings = params["datasets"]["brain"]
    unit = ingest.list_units("brain", settings)[0]
    victim = unit.sources()[-1]
    victim.write_bytes(b"broken")
    folder = project / "interim" / "units" / unit.unit_id
    with pytest.raises(DataError, match=victim.name):
        ingest.convert_unit(unit, settings, folder)
    assert not folder.exists() and list(folder.parent.iterdir()) == []
