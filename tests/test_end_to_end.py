"""The whole pipeline on tiny phantom data, through Snakemake and through DVC (slow)."""

import json
import shutil
import subprocess

import pandas as pd
import pytest

from conftest import REPO, run_env

pytestmark = pytest.mark.slow


def run(cmd, cwd, check=True):
    result = subprocess.run(cmd, cwd=cwd, env=run_env(), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def test_snakemake_runs_to_the_summary_and_then_has_nothing_to_do(project):
    run(["snakemake", "--cores", "2"], project)
    summary = pd.read_csv(project / "results/metrics/summary.csv")
    assert list(summary["experiment"][:2]) == ["tiny_dcgan_healthy", "tiny_dcgan_tumour"]
    assert set(summary[summary["variant"] == "real-vs-real"]["class"]) == {"healthy", "tumour", "all"}
    assert summary["frd"].notna().all() and (summary["frd_n_fake"][:2] == 12).all()
    assert summary["fid"].notna().all()  # offline, from the packaged Inception weights
    for name in summary["experiment"][:2]:
        assert (project / f"results/grids/{name}.png").exists()
        assert len(pd.read_csv(project / f"results/plots/train/{name}.csv")) == 3
    again = run(["snakemake", "--cores", "2", "--dry-run"], project)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_changed_params_rerun_only_what_depends_on_them(project):
    run(["snakemake", "--cores", "2"], project)
    text = (project / "params.yaml").read_text().replace("n: 12", "n: 8")
    (project / "params.yaml").write_text(text)
    plan = run(["snakemake", "--dry-run", "--quiet", "rules"], project).stdout
    assert "sample" in plan and "evaluate" in plan
    assert "train" not in plan and "prepare" not in plan


def test_config_override_reaches_the_cli_verbs(project):
    (project / "override.yaml").write_text("sample: {n: 5, grid_columns: 5}\n")
    run(["snakemake", "--cores", "2", "--configfile", "override.yaml"], project)
    assert len(list((project / "results/samples/tiny_dcgan_tumour").glob("tumour/*.png"))) == 5


def test_dvc_repro_runs_and_metrics_show_lists_metrics(project):
    shutil.copytree(REPO / "src", project / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    run(["git", "init", "-q"], project)
    run(["dvc", "init", "-q"], project)
    run(["dvc", "repro"], project)
    shown = run(["dvc", "metrics", "show", "--json"], project).stdout
    metrics = json.loads(shown)
    files = {f for ws in metrics.values() for f in ws["data"]}
    assert "results/metrics/experiments/tiny_dcgan_tumour.json" in files
    assert "metrics.frd.value" in run(["dvc", "metrics", "show"], project).stdout
    status = run(["dvc", "status"], project).stdout
    assert "up to date" in status.lower()


def test_sigkilled_training_resumes_from_its_checkpoint_when_the_rule_reruns(project):
    import os
    import signal
    import time

    params = (project / "params.yaml").read_text()
    params = params.replace("iterations: 6", "iterations: 400").replace("checkpoint_every: 3", "checkpoint_every: 5")
    (project / "params.yaml").write_text(params)
    target = "results/models/tiny_dcgan_tumour.pt"
    checkpoint = project / "results/checkpoints/tiny_dcgan_tumour/last.pt"
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
    log = (project / "logs/train/tiny_dcgan_tumour.log").read_text()
    assert "resuming tiny_dcgan_tumour from step" in log
    assert (project / target).exists()
