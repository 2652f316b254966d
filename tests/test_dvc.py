"""DVC around the pipeline: the default remote, push/pull between clones, what git keeps, and the
pull-request report of metric and param differences between two commits."""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO, TINY, command_failed, run_env
from medgan import config

REPORT = REPO / "workflow" / "scripts" / "metrics_report.sh"
EXPERIMENTS = list(TINY["experiments"])


def git_env(**extra) -> dict:
    env = run_env()
    env.pop(config.PARAMS_ENV, None)
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.org", **extra)
    return env


def run(cmd, cwd, env=None, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env or git_env(), capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(command_failed(cmd, cwd, result))
    return result


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --- what the repository itself says (fast) ------------------------------------------------------

def test_gitignore_keeps_metrics_plots_and_grids_in_git_and_data_and_models_out():
    kept = ["results/metrics/summary.csv", "results/metrics/summary.md", "results/metrics/replicates/x/r0.json",
            "results/metrics/experiments/x.json", "results/plots/train/x/r0.csv", "results/grids/x/r0.png",
            "results/progress/x/r1.png", "results/interpolations/x/r0.png", "dvc.lock"]
    hidden = ["data/slices/x/manifest.csv", "data/raw/x/volume-0.nii.gz", "results/models/x/r0.pt",
              "results/samples/x/r0/healthy/00000.png", "results/checkpoints/x/r0/last.pt"]
    ignored = run(["git", "check-ignore", "--no-index", *kept, *hidden], REPO, check=False).stdout.split()
    assert sorted(ignored) == sorted(hidden)


def test_what_git_holds_is_uncached_in_dvc_yaml():
    """Metrics and plots for `dvc metrics diff` in pull requests; images git already tracks (a
    cached DVC output that git tracks makes `dvc repro` fail: OutputAlreadyTrackedError)."""
    tracked = set(run(["git", "ls-files", "results"], REPO).stdout.split())
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for stage in stages.values():
        for out in stage.get("do", stage).get("outs", []):
            path, options = next(iter(out.items())) if isinstance(out, dict) else (out, {})
            pattern = re.escape(path).replace(re.escape("${key}"), "[^/]+") + "(/.+)?"  # a file, or in a folder
            if any(re.fullmatch(pattern, name) for name in tracked):
                assert options.get("cache") is False, f"{path} is tracked by git but cached by DVC"


def test_metrics_and_plots_are_uncached_so_git_holds_them_for_metrics_diff():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    declared = []
    for stage in stages.values():
        body = stage.get("do", stage)
        for kind in ("metrics", "plots"):
            declared += [entry for entry in body.get(kind, [])]
    assert declared
    for entry in declared:
        (path, options), = entry.items()
        assert options["cache"] is False, path


def test_default_remote_is_a_folder_beside_the_repository_and_can_be_moved_locally(tmp_path):
    shown = run(["dvc", "remote", "list"], REPO).stdout.split()
    name, url, default = shown[0], Path(shown[1]), shown[2]
    assert (name, default) == ("local", "(default)")
    assert url == REPO.parent / "medgan-dvc-store"  # outside the repository, shared by sibling clones
    # `dvc remote modify --local` writes .dvc/config.local, which git ignores (per user, not shared)
    assert "/config.local" in (REPO / ".dvc" / ".gitignore").read_text().split()


# --- a real pipeline in a temporary git + DVC repository (slow) ---------------------------------

@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Path:
    """A git + DVC repo with the tiny pipeline reproduced at two commits: base (sample.n = 12)
    and head (sample.n = 8), like a pull request over its base branch."""
    root = tmp_path_factory.mktemp("dvc") / "work" / "origin"
    root.mkdir(parents=True)
    for name in ("dvc.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "src", root / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    (root / "params.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    env = git_env(TORCH_HOME=str(root.parent / "torch_home"))
    run(["git", "init", "-q", "-b", "main"], root, env)
    run(["dvc", "init", "-q"], root, env)
    shutil.copy(REPO / ".dvc" / "config", root / ".dvc" / "config")  # the repository's default remote
    run(["dvc", "repro"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "base"], root, env)

    run(["git", "checkout", "-qb", "pr"], root, env)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["sample"]["n"] = 8
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    plan = run(["dvc", "repro"], root, env).stdout
    assert "Running stage 'train@" not in plan  # a sample-only change does not retrain
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "fewer samples"], root, env)
    return root


@pytest.mark.slow
def test_git_holds_metrics_plots_and_lock_while_dvc_holds_data_and_models(origin):
    tracked = set(run(["git", "ls-files"], origin).stdout.split())
    for name in EXPERIMENTS:
        assert {f"results/metrics/experiments/{name}.json", f"results/plots/train/{name}/r0.csv",
                f"results/grids/{name}/r0.png", f"results/progress/{name}/r0.png",
                f"results/metrics/replicates/{name}/r0.json", f"results/interpolations/{name}/r0.png"} <= tracked
        assert f"results/models/{name}/r0.pt" not in tracked
    assert {"dvc.lock", "results/metrics/summary.csv"} <= tracked
    assert not any(path.startswith("data/") for path in tracked)


@pytest.mark.slow
def test_metrics_show_lists_the_metric_files_and_status_is_up_to_date(origin):
    metrics = json.loads(run(["dvc", "metrics", "show", "--json"], origin).stdout)
    files = {f for ws in metrics.values() for f in ws["data"]}
    assert {f"results/metrics/experiments/{name}.json" for name in EXPERIMENTS} <= files
    assert "metrics.frd.value" in run(["dvc", "metrics", "show"], origin).stdout
    assert "up to date" in run(["dvc", "status"], origin).stdout.lower()


@pytest.mark.slow
def test_push_then_pull_into_another_clone_restores_slices_and_models(origin):
    run(["dvc", "push"], origin)
    store = origin.parent / "medgan-dvc-store"
    assert store.is_dir() and any(store.rglob("*"))

    clone = origin.parent / "clone"  # a sibling: the default remote needs no configuration
    run(["git", "clone", "-q", str(origin), str(clone)], origin.parent)
    assert not (clone / "data").exists() and not (clone / "results" / "models").exists()
    run(["dvc", "pull"], clone)
    assert tree_digest(clone / "data" / "slices") == tree_digest(origin / "data" / "slices")
    assert tree_digest(clone / "data" / "slices")  # not two empty folders
    for name in EXPERIMENTS:
        model = f"results/models/{name}/r0.pt"
        assert filecmp.cmp(clone / model, origin / model, shallow=False)
    status = run(["dvc", "status"], clone).stdout
    assert "up to date" in status.lower(), status

    elsewhere = origin.parent.parent / "elsewhere" / "clone"  # the default folder is not there
    run(["git", "clone", "-q", str(origin), str(elsewhere)], origin.parent)
    missing = run(["dvc", "pull", "data/slices/tiny"], elsewhere, check=False)
    assert missing.returncode != 0
    run(["dvc", "remote", "modify", "--local", "local", "url", str(store)], elsewhere)
    run(["dvc", "pull", "data/slices/tiny"], elsewhere)
    assert tree_digest(elsewhere / "data" / "slices") == tree_digest(origin / "data" / "slices")
    assert "config.local" not in run(["git", "status", "--porcelain"], elsewhere).stdout


@pytest.mark.slow
def test_metrics_report_on_two_commits_prints_markdown_tables(origin):
    report = run([str(REPORT), "main"], origin).stdout
    assert report.startswith("## medgan: metrics and params against `main`")
    metrics = report.split("### Metrics")[1].split("### Params")[0]
    params = report.split("### Params")[1]
    assert re.search(r"^\|\s*Path\s*\|\s*Metric\s*\|\s*main\s*\|\s*workspace\s*\|\s*Change\s*\|$", metrics, re.M), report
    rows = [line for line in metrics.splitlines() if line.startswith("| results/metrics/experiments/")]
    changed = {(row.split("|")[1].strip(), row.split("|")[2].strip()) for row in rows}
    for name in EXPERIMENTS:  # 8 instead of 12 fake images: n_fake and the scores change
        assert any(path == f"results/metrics/experiments/{name}.json" and metric.endswith("frd.n_fake")
                   for path, metric in changed), report
    n_fake = next(row for row in rows if "frd.n_fake" in row)
    assert re.search(r"\|\s*12\s*\|\s*8\s*\|\s*-4\s*\|", n_fake), n_fake
    assert re.search(r"\|\s*params\.yaml\s*\|\s*sample\.n\s*\|\s*12\s*\|\s*8\s*\|", params), report

    assert "### Signal or seed noise" in report and "### Verdict" in report  # medgan compare-metrics
    same = run([str(REPORT), "HEAD"], origin).stdout
    assert "No metric changed." in same and "No param changed." in same
    assert "No verdict in either summary.md." in same  # the tiny params compute no KID
    unknown = run([str(REPORT), "no-such-branch"], origin, check=False)
    assert unknown.returncode == 2 and "unknown revision" in unknown.stderr
