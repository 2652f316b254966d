"""Snakefile and dvc.yaml are two wirings of the same stages: they must agree on every
command and on the files each command produces, for the current params.yaml."""

import re
import subprocess
from collections import defaultdict

from dvc.repo import Repo

from conftest import REPO, run_env

REDIRECT = re.compile(r"\s*>\s*\S+\s+2>&1\s*$")
# Snakemake scatters prepare (a checkpoint listing each dataset's units, one job per unit) into
# data/interim/; DVC runs the same verb as one stage (`medgan prepare DATASET`, which also does
# those steps). Jobs whose outputs are all intermediate are the only ones DVC does not have.
INTERMEDIATE = "data/interim/"


def planned_jobs(root) -> list[tuple[str, frozenset]]:
    """(shell command, outputs) of every job of a forced dry run. (`--detailed-summary` only
    knows commands of jobs that have already run, so it cannot check a fresh checkout.)"""
    out = subprocess.run(["snakemake", "--dry-run", "--printshellcmds", "--forceall", "--cores", "1"], cwd=root,
                         env=run_env(), capture_output=True, text=True, check=True)
    jobs = []
    for block in re.split(r"\n(?=(?:rule|checkpoint) \S+:)", out.stdout + out.stderr)[1:]:
        outputs = re.search(r"^\s+output: (.+)$", block, re.M)
        command = re.search(r"^Shell command: (.+)$", block, re.M)
        if outputs and command:
            jobs.append((REDIRECT.sub("", command.group(1)), frozenset(outputs.group(1).split(", "))))
    return jobs


def snakemake_jobs(root) -> dict[str, frozenset]:
    jobs = defaultdict(set)
    for cmd, outs in planned_jobs(root):
        if not all(out.startswith(INTERMEDIATE) for out in outs):
            jobs[cmd] |= outs
    return {cmd: frozenset(outs) for cmd, outs in jobs.items()}


def intermediate_jobs(root) -> set[str]:
    return {out for _, outs in planned_jobs(root) for out in outs if out.startswith(INTERMEDIATE)}


def dvc_stages(root) -> dict[str, frozenset]:
    with Repo(str(root)) as repo:
        return {stage.cmd: frozenset(out.def_path for out in stage.outs) for stage in repo.index.stages}


def test_snakefile_and_dvc_yaml_run_the_same_commands_with_the_same_outputs():
    snakemake, dvc = snakemake_jobs(REPO), dvc_stages(REPO)
    assert snakemake and snakemake == dvc


def test_only_prepare_scatter_outputs_are_left_out_of_the_comparison():
    """The excluded jobs are exactly the unit listings of the datasets (the scatter jobs
    themselves appear once the checkpoint has run), so nothing else can hide behind the filter."""
    with Repo(str(REPO)) as repo:
        datasets = {s.addressing.split("@")[1] for s in repo.index.stages if s.addressing.startswith("prepare@")}
    assert intermediate_jobs(REPO) == {f"{INTERMEDIATE}{d}/units.json" for d in datasets}
    for dataset in datasets:
        assert f"medgan prepare {dataset}" in dvc_stages(REPO)


def test_every_rule_declares_a_log_threads_and_resources():
    rules = (REPO / "workflow" / "rules").glob("*.smk")
    for path in rules:
        text = path.read_text()
        for rule in re.split(r"\n(?=rule )", text):
            if rule.startswith("rule "):
                assert "log:" in rule and "threads:" in rule, f"{path.name}: {rule.splitlines()[0]}"
    assert 'stage_resources("train")' in (REPO / "workflow" / "rules" / "train.smk").read_text()


def test_dvc_params_cover_what_each_stage_reads():
    with Repo(str(REPO)) as repo:
        stages = {s.addressing: s for s in repo.index.stages}
    train = next(s for name, s in stages.items() if name.startswith("train@"))
    keys = {k for dep in train.deps if hasattr(dep, "params") and dep.params for k in dep.params}
    assert {"seed", "train"} <= keys and any(k.startswith("experiments.") for k in keys)
