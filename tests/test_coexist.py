"""Snakemake and DVC over the same outputs without retraining (README: "Snakemake and DVC side by
side"). Snakemake runs the jobs; `dvc commit -f --no-relink` then records what it made in dvc.lock, so that
`dvc repro` finds every stage up to date and Snakemake, in turn, finds nothing to do; after
`dvc checkout` (or pull), `snakemake --touch` accepts the restored files (slow)."""

import re
import shutil
import subprocess

import pytest

from conftest import REPO, TINY, command_failed, run_env
from medgan import config

pytestmark = pytest.mark.slow


def run(cmd, cwd) -> str:
    env = run_env()
    env.pop(config.PARAMS_ENV, None)
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            timeout=900)
    if result.returncode != 0:
        raise AssertionError(command_failed(cmd, cwd, result))
    return result.stdout + result.stderr


def mtimes(root, experiments):
    return {name: (root / f"results/models/{name}/r0.pt").stat().st_mtime_ns for name in experiments}


def test_snakemake_dvc_commit_dvc_repro_snakemake_and_dvc_checkout_touch_rerun_nothing(project):
    shutil.copytree(REPO / "src", project / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in (".gitignore", ".dvcignore"):
        shutil.copy(REPO / name, project / name)
    run(["git", "init", "-q"], project)
    run(["dvc", "init", "-q"], project)

    run(["snakemake", "--cores", "2"], project)
    trained = mtimes(project, TINY["experiments"])

    # Record Snakemake's outputs in dvc.lock without running any stage; --no-relink leaves the
    # workspace files (and so the mtimes Snakemake compares) untouched.
    run(["dvc", "commit", "-f", "--no-relink"], project)
    repro = run(["dvc", "repro"], project)
    assert not re.search(r"Running stage '", repro), repro
    assert "up to date" in run(["dvc", "status"], project).lower()

    plan = run(["snakemake", "--cores", "2", "--dry-run"], project)
    assert "Nothing to be done" in plan, plan
    assert mtimes(project, TINY["experiments"]) == trained  # the models were never rewritten

    models = {name: (project / f"results/models/{name}/r0.pt").read_bytes() for name in TINY["experiments"]}

    # As after `dvc pull` in a new clone: upstream files come back from DVC's cache, newer
    # than what was made from them.
    shutil.rmtree(project / "data" / "slices")
    shutil.rmtree(project / "data" / "raw")
    run(["dvc", "checkout"], project)
    assert "up to date" in run(["dvc", "status"], project).lower()
    stale = run(["snakemake", "--cores", "2", "--dry-run", "--quiet", "rules"], project)
    assert "train" in stale, stale  # mtimes alone would retrain

    run(["snakemake", "--cores", "1", "--touch"], project)
    plan = run(["snakemake", "--cores", "2", "--dry-run"], project)
    assert "Nothing to be done" in plan, plan
    assert {name: (project / f"results/models/{name}/r0.pt").read_bytes() for name in TINY["experiments"]} == models
    assert "up to date" in run(["dvc", "status"], project).lower()
