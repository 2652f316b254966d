"""Snakefile and dvc.yaml are two wirings of the same stages: they must agree on every
command and on the files each command produces, for the current params.yaml."""

import re
import subprocess
from collections import defaultdict

from dvc.repo import Repo

from conftest import REPO, run_env

REDIRECT = re.compile(r"\s*>\s*\S+\s+2>&1\s*$")


def snakemake_jobs(root) -> dict[str, frozenset]:
    out = subprocess.run(["snakemake", "--detailed-summary", "--forceall"], cwd=root, env=run_env(),
                         capture_output=True, text=True, check=True).stdout
    lines = [line.split("\t") for line in out.splitlines() if "\t" in line]
    header, rows = lines[0], lines[1:]
    col = {name: i for i, name in enumerate(header)}
    jobs = defaultdict(set)
    for row in rows:
        jobs[REDIRECT.sub("", row[col["shellcmd"]])].add(row[col["output_file"]])
    return {cmd: frozenset(outs) for cmd, outs in jobs.items()}


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
