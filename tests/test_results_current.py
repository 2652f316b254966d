"""The committed results/ holds exactly what the current params produce: nothing of experiments
or datasets that params.yaml no longer has. (Outputs of another configuration run here, e.g.
the zoo, stay in the working tree untracked: `medgan clean` lists them.)"""

import subprocess

from conftest import REPO
from medgan import config, paths, prune


def _tracked() -> list[str]:
    done = subprocess.run(["git", "-C", str(REPO), "ls-files", "results"], capture_output=True, text=True)
    return done.stdout.splitlines() if done.returncode == 0 else []


def test_committed_results_belong_to_current_experiments_and_datasets():
    params = config.load(REPO / "params.yaml")
    tracked = _tracked()
    unowned = [p.relative_to(REPO).as_posix() for p in prune.unowned(params, REPO)]
    assert [p for p in unowned if any(t == p or t.startswith(p + "/") for t in tracked)] == []


def test_committed_results_cover_every_current_experiment_and_dataset():
    params = config.load(REPO / "params.yaml")
    for name in params["experiments"]:
        assert (REPO / paths.path(paths.METRICS, experiment=name)).is_file(), f"{paths.METRICS} of {name}"
        for replicate in range(config.replicates_of(params, name)):
            for pattern in (paths.REPLICATE_METRICS, paths.GRID, paths.PROGRESS, paths.INTERPOLATION, paths.TRAIN_LOG):
                assert (REPO / paths.path(pattern, experiment=name, replicate=replicate)).is_file(), \
                    f"{pattern} of {name} replicate {replicate}"
    for dataset in params["datasets"]:
        assert (REPO / paths.path(paths.BASELINE, dataset=dataset)).is_file()

