"""What prepares the GPU run on a CPU (issue 24): configs/lits_gpu.yaml is valid, full size and full
width and planned with the Slurm profile; the gpu-marked tests are collected for every variant;
benchmarks/gpu_check.sh runs on a CPU, skips its GPU parts and exits 0; training imports without
SimpleITK (a GPU machine may lack it); the pieces the script relies on behave."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from conftest import REPO, run_env
from medgan import config, variants

sys.path.insert(0, str(REPO / "benchmarks"))
import bench_train  # noqa: E402
import lits_gpu_run  # noqa: E402

LITS_GPU = REPO / "configs" / "lits_gpu.yaml"
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
OUT_FILES = {"summary.txt", "summary.json", "env.log", "gpu_tests.log", "bench_train.log", "bench_train.jsonl",
             "bench_evaluate.log", "lits_gpu.log"}  # the device tool returns at most 8 files


def lits_gpu_params() -> dict:
    return config.validate(lits_gpu_run.merged_params(), str(LITS_GPU))


def own_experiments() -> list[str]:
    return list(yaml.safe_load(LITS_GPU.read_text())["experiments"])


def test_lits_gpu_config_is_full_size_full_width_with_2048_samples_and_gpu_resources():
    params = lits_gpu_params()
    sizes, widths = set(), set()
    for name in own_experiments():
        settings = config.training_settings(params, name)
        sizes.add(tuple(settings["image_size"]))
        widths.add((settings["hp"]["ngf"], settings["hp"]["ndf"]))
        assert settings["train"]["device"] == "auto" and settings["train"]["precision"] == "auto"
    assert sizes == {(128, 128), (256, 256)} and widths == {(64, 64)}
    assert params["sample"]["n"] >= 2048 and "fid" in params["evaluate"]["metrics"]
    assert params["evaluate"]["inception"] == "required"
    assert params["resources"]["train"]["gpus"] >= 1 and params["resources"]["evaluate"]["gpus"] >= 1
    assert params["resources"]["sample"]["gpus"] == 0  # medgan sample runs on the CPU


def planned_train_jobs(output: str) -> dict[str, dict]:
    """{experiment: resources} of the train jobs in a dry run's output."""
    jobs = {}
    for block in re.split(r"\n(?=rule \w+:)", output):
        experiment = re.search(r"wildcards: experiment=([^,\s]+)", block)
        resources = re.search(r"^\s+resources: (.*)$", block, re.M)
        if block.startswith("rule train:") and experiment and resources:
            jobs[experiment.group(1)] = dict(item.split("=", 1) for item in resources.group(1).split(", "))
    return jobs


def test_snakemake_plans_lits_gpu_with_the_slurm_profile_and_its_gpu_resources():
    plan = subprocess.run(["snakemake", "--profile", "workflow/profiles/slurm", "-n", "--configfile", str(LITS_GPU)],
                          cwd=REPO, env=run_env(), capture_output=True, text=True, timeout=300)
    assert plan.returncode == 0, plan.stderr[-3000:]
    jobs = planned_train_jobs(plan.stdout)
    wanted = lits_gpu_params()["resources"]["train"]
    for name in own_experiments():
        assert name in jobs, f"{name} is not planned"
        assert (int(jobs[name]["gpu"]), int(jobs[name]["runtime"]), int(jobs[name]["mem_mb"])) == \
            (wanted["gpus"], wanted["runtime"], wanted["mem_mb"])
    assert re.search(r"rule evaluate:(?:(?!\nrule ).)*gpu=1", plan.stdout, re.S), "evaluate asks for no GPU"


def test_the_gpu_tests_are_collected_for_every_variant():
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
                             "-m", "gpu", "tests/test_gpu.py"], cwd=REPO, env=run_env(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    ids = [line for line in result.stdout.splitlines() if "::" in line]
    trained = {re.search(r"\[(\w+)\]", i).group(1) for i in ids if "every_variant_trains_on_cuda" in i}
    assert trained == set(variants.VARIANTS)
    for name in ("resumed_gpu_run", "inception_features_on_the_gpu", "ddp_under_torchrun_with_nccl"):
        assert any(name in i for i in ids), name


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU dry run")
def test_gpu_check_runs_on_a_cpu_skips_the_gpu_parts_and_exits_0(tmp_path):
    out = tmp_path / "out"
    env = {**run_env(), "GPU_CHECK_BUDGET_S": "240", "GPU_CHECK_TRAIN_S": "5", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(["bash", str(SCRIPT), str(out)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    status = {p["part"]: (p["status"], p["note"]) for p in summary["parts"]}
    assert status["env"][0] == "PASS"
    for part in ("b1", "d-train", "b2"):
        assert status[part] == ("SKIP", "no CUDA"), part
    assert status["a"][0] == "SKIP"
    skipped = int(re.search(r"no CUDA: (\d+) skipped", status["a"][1]).group(1))
    assert skipped >= len(variants.VARIANTS) + 4  # every variant, two resumes, Inception, DDP
    assert status["c"][0] == "SKIP" and status["d-plan"][0] == "PASS"
    assert "== gpu_check summary" in result.stdout and (out / "summary.txt").read_text() in result.stdout
    assert {p.name for p in out.iterdir()} <= OUT_FILES and all(p.is_file() for p in out.iterdir())


def test_training_and_sampling_import_without_simpleitk():
    code = ("import sys; sys.modules['SimpleITK'] = None\n"
            "import medgan.train, medgan.sample, medgan.cli\n"
            "from medgan.ingest import volumes\n"
            "try:\n    volumes.sitk.ReadImage\nexcept ImportError:\n    print('reading a volume needs SimpleITK')\n")
    result = subprocess.run([sys.executable, "-c", code], env=run_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "reading a volume needs SimpleITK"


def test_bench_train_switches_each_feature_off_once():
    on = {"bf16": True, "channels_last": True, "compile": True}
    runs = bench_train.engine_runs(on, ablate=True)
    assert runs["engine"] == on and len(runs) == 4
    for feature in bench_train.FEATURES:
        assert runs[f"engine without {feature}"] == {**on, feature: False}
    cpu = {"bf16": False, "channels_last": True, "compile": False}  # a CPU's defaults: only channels_last to drop
    assert list(bench_train.engine_runs(cpu, ablate=True)) == ["engine", "engine without channels_last"]
    assert list(bench_train.engine_runs(on, ablate=False)) == ["engine"]


def test_phantom_slices_without_simpleitk_are_split_by_case_with_label_maps(tmp_path):
    root = tmp_path / "lits256"
    lits_gpu_run.write_phantom_slices(root, 32, cases=5, per_case=4)
    manifest = pd.read_csv(root / "manifest.csv")
    assert (manifest.groupby("case")["split"].nunique() == 1).all()
    assert set(manifest["split"]) == {"train", "val", "test"} and set(manifest["class"]) == {"healthy", "tumour"}
    for _, row in manifest.iterrows():
        image, mask = np.asarray(Image.open(root / row["path"])), np.asarray(Image.open(root / row["mask_path"]))
        assert image.shape == mask.shape == (32, 32) and set(np.unique(mask)) <= {0, 1, 2}
        assert (2 in mask) == (row["class"] == "tumour")
