"""Snakemake's own checks on the workflow files: snakefmt formatting and `snakemake --lint`."""

import subprocess

from conftest import BIN, REPO, run_env

WORKFLOW_FILES = ["Snakefile", "workflow/"]


def test_workflow_files_are_snakefmt_formatted():
    done = subprocess.run([str(BIN / "snakefmt"), "--check", *WORKFLOW_FILES], cwd=REPO, env=run_env(),
                          capture_output=True, text=True)
    assert done.returncode == 0, f"run `snakefmt {' '.join(WORKFLOW_FILES)}`:\n{done.stdout}{done.stderr}"


def test_snakemake_lint_is_clean():
    done = subprocess.run([str(BIN / "snakemake"), "--lint"], cwd=REPO, env=run_env(), capture_output=True,
                          text=True)
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "Lints for" not in output, output
    assert "Congratulations" in output
