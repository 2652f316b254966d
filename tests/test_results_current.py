"""results/ holds exactly what the current params produce: nothing of experiments or datasets
that params.yaml no longer has (committed or left behind by a run)."""

from pathlib import Path

from conftest import REPO
from medgan import config, paths, prune


def test_committed_results_belong_to_current_experiments_and_datasets():
    params = config.load(REPO / "params.yaml")
    assert [str(p.relative_to(REPO)) for p in prune.stale_outputs(params, REPO)] == []


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


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    return path


def test_summarize_step_removes_outputs_of_gone_experiments_only(params, project):
    current, gone = "tiny_dcgan_tumour", "renamed_long_ago"
    kept = [_touch(project / paths.path(p, experiment=current)) for p in (paths.GRID, paths.METRICS)]
    kept.append(_touch(project / paths.path(paths.GRID, experiment=current, replicate=2)))
    stale = [_touch(project / paths.path(paths.METRICS, experiment=gone))]
    # a gone experiment's per-replicate outputs go with its folder
    stale += [_touch(project / paths.path(p, experiment=gone, replicate=1)).parent for p in (paths.GRID, paths.TRAIN_LOG)]
    stale.append(_touch(project / paths.path(paths.SAMPLES, experiment=gone) / "x.png").parent.parent)
    stale.append(_touch(project / paths.path(paths.BASELINE, dataset="old_dataset")))
    assert sorted(prune.stale_outputs(params, project)) == sorted(stale)
    prune.remove_stale(params, project)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in stale)
