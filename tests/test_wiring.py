"""Snakefile and dvc.yaml are two wirings of the same stages: they must agree on every
command and on the files each command produces, for the current params.yaml."""

import re
import subprocess
from collections import defaultdict

from dvc.repo import Repo

from conftest import REPO, run_env
from medgan import config

REDIRECT = re.compile(r"\s*>\s*\S+\s+2>&1\s*$")
# Snakemake scatters prepare (a checkpoint listing each dataset's units, one job per unit) into
# data/interim/; DVC runs the same verb as one stage (`medgan prepare DATASET`, which also does
# those steps). Jobs whose outputs are all intermediate are the only ones DVC does not have.
INTERMEDIATE = "data/interim/"
# Snakemake runs one job per replicate (`--replicate I`); DVC one stage per experiment that runs
# them all (`--all-replicates`) and declares the experiment's folders.
ONE_REPLICATE = re.compile(r" --replicate \d+$")


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
    """Snakemake's jobs by the command DVC runs for them (a replicate's job -> the experiment's
    `--all-replicates` command), with the union of their outputs."""
    jobs = defaultdict(set)
    for cmd, outs in planned_jobs(root):
        if not all(out.startswith(INTERMEDIATE) for out in outs):
            jobs[ONE_REPLICATE.sub(" --all-replicates", cmd)] |= outs
    return {cmd: frozenset(outs) for cmd, outs in jobs.items()}


def owner(output: str, declared: frozenset) -> str | None:
    """The DVC output that is `output` or a folder holding it."""
    return next((d for d in declared if output == d or output.startswith(d.rstrip("/") + "/")), None)


def covered(snakemake_outputs: frozenset, dvc_outputs: frozenset) -> bool:
    """Every Snakemake output lies in a DVC output, and every DVC output holds one."""
    owners = {owner(o, dvc_outputs) for o in snakemake_outputs}
    return None not in owners and owners == set(dvc_outputs)


def intermediate_jobs(root) -> set[str]:
    return {out for _, outs in planned_jobs(root) for out in outs if out.startswith(INTERMEDIATE)}


def dvc_stages(root) -> dict[str, frozenset]:
    with Repo(str(root)) as repo:
        return {stage.cmd: frozenset(out.def_path for out in stage.outs) for stage in repo.index.stages}


def test_snakefile_and_dvc_yaml_run_the_same_commands_with_the_same_outputs():
    snakemake, dvc = snakemake_jobs(REPO), dvc_stages(REPO)
    assert snakemake and set(snakemake) == set(dvc)
    for cmd, outs in snakemake.items():
        if cmd.endswith("--all-replicates"):
            assert covered(outs, dvc[cmd]), cmd
        else:
            assert outs == dvc[cmd], cmd


def test_snakemake_runs_every_replicate_of_every_experiment_and_dvc_one_stage_each():
    params = config.load(REPO / "params.yaml")
    planned = [cmd for cmd, _ in planned_jobs(REPO)]
    for name in params["experiments"]:
        count = config.replicates_of(params, name)
        for verb in ("train", "sample", "evaluate"):
            replicates = sorted(int(c.rsplit(" ", 1)[1]) for c in planned
                                if c.startswith(f"medgan {verb} {name} --replicate "))
            assert replicates == list(range(count)), (verb, name)
        assert planned.count(f"medgan aggregate {name}") == 1
    dvc = dvc_stages(REPO)
    assert {f"medgan train {n} --all-replicates" for n in params["experiments"]} <= set(dvc)
    model_folders = {o for c, outs in dvc.items() if c.startswith("medgan train") for o in outs
                     if o.startswith("results/models/")}
    assert model_folders == {f"results/models/{n}" for n in params["experiments"]}


def test_output_coverage_fails_when_dvc_misses_a_replicate_folder():
    outs = frozenset({"results/models/a/r0.pt", "results/models/a/r1.pt", "results/grids/a/r0.png"})
    assert covered(outs, frozenset({"results/models/a", "results/grids/a"}))
    assert not covered(outs, frozenset({"results/models/a"}))  # grids not declared
    assert not covered(outs, frozenset({"results/models/a", "results/grids/a", "results/samples/a"}))


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
