"""Snakefile and dvc.yaml are two wirings of the same stages: they must agree on every
command and on the files each command produces, for the current params.yaml."""

import re
import subprocess
from dvc.repo import Repo

from conftest import REPO, run_env

REDIRECT = re.compile(r"\s*>\s*\S+\s+2>&1\s*$")


def snakemake_jobs(root) -> dict[str, frozenset]:
    """{command: outputs} of every job in a forced dry run (its printed job blocks)."""
    out = subprocess.run(["snakemake", "--forceall", "--dry-run", "--printshellcmds"], cwd=root, env=run_env(),
                         capture_output=True, text=True, check=True).stdout
    jobs, outputs = {}, frozenset()
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("rule "):
            outputs = frozenset()
        elif line.startswith("output: "):
            outputs = frozenset(line[len("output: "):].split(", "))
        elif line.startswith("Shell command: ") and line != "Shell command: None":
            jobs[REDIRECT.sub("", line[len("Shell command: "):])] = outputs
    return jobs


def dvc_stages(root) -> dict[str, frozenset]:
    with Repo(str(root)) as repo:
        return {stage.cmd: frozenset(out.def_path for out in stage.outs) for stage in repo.index.stages}


def test_snakefile_and_dvc_yaml_run_the_same_commands_with_the_same_outputs():
    snakemake, dvc = snakemake_jobs(REPO), dvc_stages(REPO)
    assert snakemake and snakemake == dvc


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
