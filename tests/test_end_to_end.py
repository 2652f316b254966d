"""The whole pipeline on tiny phantom data through Snakemake (slow). Through DVC: test_dvc.py
(its `origin` repository is one `dvc repro`, shared by its tests)."""

import subprocess

import pandas as pd
import pytest

from conftest import REPO, TINY, command_failed, run_env

pytestmark = pytest.mark.slow


def run(cmd, cwd, check=True):
    result = subprocess.run(cmd, cwd=cwd, env=run_env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(command_failed(cmd, cwd, result))
    return result


def test_snakemake_runs_to_the_summary_then_has_nothing_to_do_and_reruns_only_what_params_change(project):
    run(["snakemake", "--cores", "2"], project)
    summary = pd.read_csv(project / "results/metrics/summary.csv")
    assert list(summary["experiment"][:2]) == ["tiny_dcgan_healthy", "tiny_dcgan_tumour"]
    assert set(summary[summary["variant"] == "real-vs-real"]["class"]) == {"healthy", "tumour", "all"}
    assert summary["frd"].notna().all() and (summary["frd_n_fake"][:2] == 12).all()
    assert summary["fid"].notna().all()  # offline, from the packaged Inception weights
    for name in summary["experiment"][:2]:
        assert (project / f"results/grids/{name}/r0.png").exists()
        assert len(pd.read_csv(project / f"results/plots/train/{name}/r0.csv")) == 3
    again = run(["snakemake", "--cores", "2", "--dry-run"], project)
    assert "Nothing to be done" in again.stdout + again.stderr

    # a changed sample size reruns only what depends on it
    text = (project / "params.yaml").read_text().replace("n: 12", "n: 8")
    (project / "params.yaml").write_text(text)
    plan = run(["snakemake", "--dry-run", "--quiet", "rules"], project).stdout
    assert "sample" in plan and "evaluate" in plan
    assert "train" not in plan and "prepare" not in plan


def test_config_override_reaches_the_cli_verbs(project):
    (project / "override.yaml").write_text("sample: {n: 5, grid_columns: 5}\n")
    run(["snakemake", "results/samples/tiny_dcgan_tumour/r0", "--cores", "2", "--configfile", "override.yaml"], project)
    assert len(list((project / "results/samples/tiny_dcgan_tumour/r0").glob("tumour/*.png"))) == 5


def test_sigkilled_training_resumes_from_its_checkpoint_when_the_rule_reruns(project):
    import os
    import signal
    import time

    params = (project / "params.yaml").read_text()
    params = params.replace("iterations: 6", "iterations: 400").replace("checkpoint_every: 3", "checkpoint_every: 5")
    (project / "params.yaml").write_text(params)
    target = "results/models/tiny_dcgan_tumour/r0.pt"
    checkpoint = project / "results/checkpoints/tiny_dcgan_tumour/r0/last.pt"
    run(["snakemake", "--cores", "1", "data/slices/tiny"], project)
    job = subprocess.Popen(["snakemake", "--cores", "1", target], cwd=project, env=run_env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while not checkpoint.exists() and time.time() < deadline and job.poll() is None:
        time.sleep(0.5)
    assert checkpoint.exists(), "no checkpoint appeared"
    os.killpg(job.pid, signal.SIGKILL)  # snakemake and the training process, no clean-up
    job.wait()
    assert not (project / target).exists()

    run(["snakemake", "--unlock"], project)
    run(["snakemake", "--cores", "1", target], project)
    log = (project / "logs/train/tiny_dcgan_tumour/r0.log").read_text()
    assert "resuming tiny_dcgan_tumour from step" in log
    assert (project / target).exists()


def test_two_replicates_of_one_experiment_through_snakemake_to_the_summary_and_report(project):
    """Seeds as replicates end to end: one job per replicate, each with its own model, samples,
    grid and metrics; the aggregate holds both seeds (too few for an across-seed interval) and
    summary.md says that no claim is possible."""
    import json

    import yaml

    raw = yaml.safe_load((project / "params.yaml").read_text())
    raw["experiments"] = {"tiny_dcgan_tumour": {**TINY["experiments"]["tiny_dcgan_tumour"], "replicates": 2},
                          "tiny_dcgan_tumour_b": {**TINY["experiments"]["tiny_dcgan_tumour"], "replicates": 2}}
    raw["evaluate"] = {"metrics": ["kid"], "inception": "auto", "bootstrap": 10, "kid_subsets": 10}
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    run(["snakemake", "--cores", "2"], project)
    seeds = []
    for name in raw["experiments"]:
        for r in (0, 1):
            for out in (f"results/models/{name}/r{r}.pt", f"results/grids/{name}/r{r}.png",
                        f"results/metrics/replicates/{name}/r{r}.json", f"logs/train/{name}/r{r}.log"):
                assert (project / out).exists(), out
        assert not (project / f"results/models/{name}/r2.pt").exists()
        entry = json.loads((project / f"results/metrics/experiments/{name}.json").read_text())
        kid = entry["metrics"]["kid"]
        assert entry["replicates"] == 2 and len(kid["seeds"]) == 2 and "ci_low" not in kid
        assert kid["interval"].startswith("too few seeds")
        seeds.append(entry["seeds"])
    assert seeds[0] == seeds[1] and seeds[0][0] == 0 and seeds[0][1] != 0  # same derived seeds per arm
    a, b = (json.loads((project / f"results/metrics/replicates/tiny_dcgan_tumour/r{r}.json").read_text())
            for r in (0, 1))
    assert a["metrics"]["kid"]["value"] != b["metrics"]["kid"]["value"]  # two trainings, two draws
    md = (project / "results/metrics/summary.md").read_text()
    assert "by KID across seeds (2 seeds per arm): no claim possible between `tiny_dcgan_tumour` and " \
           "`tiny_dcgan_tumour_b`" in md
    html = (project / "results/report.html").read_text()
    assert "Generated images of every seed (2 replicates)" in html and "Every seed</h4>" in html
