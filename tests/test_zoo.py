"""The zoo (configs/zoo.yaml): every other variant and dataset kind beside the demo, merged over
params.yaml by Snakemake; valid, planned, and run end to end at a tiny budget (slow)."""

import shutil
import subprocess

import pandas as pd
import pytest
import yaml

from conftest import REPO, command_failed, run_env
from medgan import config, variants

ZOO = REPO / "configs" / "zoo.yaml"


def deep_merged(base: dict, over: dict) -> dict:
    """What Snakemake's --configfile does to params.yaml."""
    out = dict(base)
    for key, value in over.items():
        out[key] = deep_merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def zoo_params() -> dict:
    return config.validate(deep_merged(yaml.safe_load((REPO / "params.yaml").read_text()),
                                       yaml.safe_load(ZOO.read_text())), str(ZOO))


def test_zoo_keeps_the_demo_and_covers_every_gan_variant_and_dataset_kind():
    demo, zoo = config.load(REPO / "params.yaml"), zoo_params()
    assert set(demo["experiments"]) < set(zoo["experiments"])
    assert all(zoo["experiments"][n] == e for n, e in demo["experiments"].items())
    gan_variants = {n for n in variants.VARIANTS if n in {"vanilla", "dcgan", "cgan", "wgan_gp", "pix2pix"}}
    assert gan_variants <= {e["variant"] for e in zoo["experiments"].values()}
    assert {"volumes", "class_folders", "paired_folders"} <= {d["kind"] for d in zoo["datasets"].values()}


def test_snakemake_plans_the_zoo(tmp_path):
    plan = subprocess.run(["snakemake", "--dry-run", "--quiet", "rules", "--configfile", str(ZOO), "--cores", "1"],
                          cwd=REPO, env=run_env(), capture_output=True, text=True)
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert "train" in plan.stdout and "baseline" in plan.stdout


TINY_BUDGET = {
    "phantoms": {"lits_phantom": {"n_cases": 6, "shape": [64, 64, 24]},
                 "covid_ct_phantom": {"n_cases": 8}, "covid_pairs_phantom": {"n_cases": 6},
                 "brain_mri_phantom": {"n_cases": 10}},
    "train": {"iterations": 3, "batch_size": 4, "checkpoint_every": 3, "progress_every": 3, "log_every": 1},
    "sample": {"n": 6, "ddim_steps": 4},
    "evaluate": {"metrics": ["diversity", "paired"], "bootstrap": 0},
}


@pytest.mark.slow
def test_the_zoo_runs_end_to_end_at_a_tiny_budget(project):
    for name in ("configs", "params.yaml"):
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, project / name)
    # per-experiment `train:` overrides win over `train:`, so each experiment gets the tiny budget
    overrides = {**TINY_BUDGET, "experiments": {name: {"train": {**exp.get("train", {}), **TINY_BUDGET["train"]}}
                                                for name, exp in zoo_params()["experiments"].items()}}
    (project / "tiny.yaml").write_text(yaml.safe_dump(overrides))
    command = ["snakemake", "--cores", "2", "--configfile", "configs/zoo.yaml", "tiny.yaml"]
    result = subprocess.run(command, cwd=project, env=run_env(), capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, command_failed(command, project, result)
    summary = pd.read_csv(project / "results/metrics/summary.csv")
    assert set(zoo_params()["experiments"]) <= set(summary["experiment"])
