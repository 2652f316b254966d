"""The Slurm profile as a user installs it: `snakemake --profile slurm -n` shows the per-rule
resources from params.yaml, GPU requests included (no Slurm needed: a dry run submits nothing)."""

import re
import subprocess
from types import SimpleNamespace

import yaml
from snakemake_executor_plugin_slurm.utils import set_gres_string

from conftest import REPO, run_env

PROFILE = REPO / "workflow" / "profiles" / "slurm"


class Resources(dict):
    """A job's resources as the Slurm plugin reads them (`.get` and attributes)."""

    __getattr__ = dict.__getitem__


def sbatch_gpu_flags(resources: Resources) -> str:
    """The GPU flags the Slurm plugin adds to sbatch for a job with these resources."""
    return set_gres_string(SimpleNamespace(resources=resources)).strip()


def planned_jobs(output: str) -> list[tuple[str, dict]]:
    """(rule, resources) of every job in a dry run's output."""
    jobs = []
    for block in re.split(r"\n(?=rule \w+:)", output):
        rule = re.match(r"rule (\w+):", block)
        resources = re.search(r"^\s+resources: (.*)$", block, re.M)
        if rule and resources:
            pairs = (item.split("=", 1) for item in resources.group(1).split(", "))
            jobs.append((rule.group(1), Resources({k: int(v) if v.isdigit() else v for k, v in pairs})))
    return jobs


def test_profile_installed_as_documented_lists_train_jobs_with_their_gpu_requests(project, tmp_path):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["resources"] = {"train": {"threads": 8, "mem_mb": 32000, "runtime": 720, "gpus": 2, "gpu_model": "a100"},
                           "evaluate": {"gpus": 1}}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    config_home = tmp_path / "config"
    (config_home / "snakemake").mkdir(parents=True)
    (config_home / "snakemake" / "slurm").symlink_to(PROFILE)  # README: ln -sfn ... ~/.config/snakemake/slurm

    result = subprocess.run(["snakemake", "--profile", "slurm", "-n"], cwd=project, capture_output=True, text=True,
                            env=dict(run_env(), XDG_CONFIG_HOME=str(config_home)), timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert str(PROFILE) in result.stdout + result.stderr or "profile slurm" in result.stdout + result.stderr
    jobs = planned_jobs(result.stdout)
    by_rule = {}
    for rule, resources in jobs:
        by_rule.setdefault(rule, []).append(resources)

    assert len(by_rule["train"]) == 2
    for resources in by_rule["train"]:
        assert (resources["gpu"], resources["gpu_model"], resources["mem_mb"], resources["runtime"]) == (2, "a100", 32000, 720)
        assert sbatch_gpu_flags(resources) == "--gpus=a100:2"  # what the plugin passes to sbatch
    for resources in by_rule["evaluate"]:
        assert resources["gpu"] == 1 and "gpu_model" not in resources
        assert sbatch_gpu_flags(resources) == "--gpus=1"
    for resources in by_rule["prepare"] + by_rule["sample"]:
        assert "gpu" not in resources and sbatch_gpu_flags(resources) == ""


def test_profile_runs_on_slurm_without_accounting_and_leaves_cpus_to_threads():
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["jobs"] >= 1  # executor slurm without jobs is an error
    assert profile["slurm-status-command"] == "squeue"
    assert profile["slurm-logdir"] and profile["latency-wait"] > 0 and profile["retries"] >= 1
    # cpus_per_task in default-resources would override every rule's threads on sbatch.
    assert "cpus_per_task" not in profile["default-resources"]
    text = (PROFILE / "config.yaml").read_text()
    assert re.search(r"#\s*slurm_partition:", text) and re.search(r"#\s*slurm_account:", text)
