"""Seeds as replicates: derived seeds, per-replicate paths and CLI, the aggregate over seeds with
its across-seed interval, and the report's per-seed views."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from conftest import tiny_params
from medgan import cli, config, paths, replicates, report, summary


def test_replicate_zero_keeps_the_seed_and_the_others_are_derived_deterministically():
    assert config.replicate_seed(7, 0) == 7
    seeds = [config.replicate_seed(7, i) for i in range(1, 6)]
    assert seeds == [config.replicate_seed(7, i) for i in range(1, 6)]  # same every time
    assert len(set(seeds + [7])) == 6 and all(0 <= s < 2**32 for s in seeds)  # np.random.seed accepts them
    assert config.replicate_seed(8, 1) != config.replicate_seed(7, 1)
    assert seeds[0] == int(np.random.SeedSequence([7, 1]).generate_state(1)[0])


def test_replicates_default_to_one_and_an_experiment_overrides_the_top_level():
    params = config.validate(tiny_params())
    assert params["replicates"] == 1 and config.replicates_of(params, "tiny_dcgan_tumour") == 1
    raw = tiny_params(replicates=3)
    raw["experiments"] = {**raw["experiments"],
                          "tiny_dcgan_tumour": {**raw["experiments"]["tiny_dcgan_tumour"], "replicates": 5}}
    params = config.validate(raw)
    assert config.replicates_of(params, "tiny_dcgan_healthy") == 3
    assert config.replicates_of(params, "tiny_dcgan_tumour") == 5
    with pytest.raises(config.ConfigError, match="replicates"):
        config.validate(tiny_params(replicates=0))


def test_replicates_differ_by_their_seed_only_and_raising_r_keeps_earlier_runs_current():
    params = config.validate(tiny_params(replicates=2))
    first, second = (config.training_settings(params, "tiny_dcgan_tumour", r) for r in (0, 1))
    assert first["seed"] == 0 and second["seed"] == config.replicate_seed(0, 1)
    assert {k: v for k, v in first.items() if k != "seed"} == {k: v for k, v in second.items() if k != "seed"}
    raw = tiny_params(replicates=2)
    raw["experiments"]["tiny_dcgan_tumour"] = {**raw["experiments"]["tiny_dcgan_tumour"], "replicates": 4}
    assert config.training_settings(config.validate(raw), "tiny_dcgan_tumour", 0) == first


def test_one_path_scheme_per_replicate():
    assert paths.path(paths.MODEL, experiment="e", replicate=2).as_posix() == "results/models/e/r2.pt"
    assert paths.path(paths.SAMPLES, experiment="e").as_posix() == "results/samples/e/r0"  # default: replicate 0
    assert paths.replicate_folder(paths.GRID, "e").as_posix() == "results/grids/e"
    per_replicate = [p for p in (paths.MODEL, paths.CHECKPOINTS, paths.TRAIN_LOG, paths.PROGRESS, paths.SAMPLES,
                                 paths.GRID, paths.INTERPOLATION, paths.REPLICATE_METRICS, paths.CLOSEST_PAIRS,
                                 paths.EVALUATE_PROVENANCE)]
    assert all("/{experiment}/r{replicate}" in p for p in per_replicate)


def test_cli_names_a_replicate_that_does_not_exist(params, capsys):
    assert cli.main(["train", "tiny_dcgan_tumour", "--replicate", "1"]) == 2
    assert "replicate 1 of 'tiny_dcgan_tumour' does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["sample", "tiny_dcgan_tumour", "--replicate", "0", "--all-replicates"])


@pytest.mark.parametrize("verb", ["train", "sample", "evaluate", "aggregate"])
def test_replicate_verbs_have_help(verb, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([verb, "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and (verb == "aggregate" or "--replicate" in out and "--all-replicates" in out)


def _entry(value, low=None, high=None):
    out = {"value": value, "n_real": 9, "n_fake": 12}
    if low is not None:
        out.update(ci_low=low, ci_high=high)
    return out


def write_replicates(params, name, per_seed: list[dict], guards=None):
    for r, metrics in enumerate(per_seed):
        result = {"experiment": name, "dataset": "tiny", "variant": "dcgan", "class": "tumour", "replicate": r,
                  "seed": config.replicate_seed(params["seed"], r), "real_split": "test", "n_real": 9,
                  "n_fake": 12, "n_train": 18, "training": {"guard": (guards or {}).get(r, [])}, "metrics": metrics}
        out = paths.path(paths.REPLICATE_METRICS, experiment=name, replicate=r)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result))


def with_replicates(project, count):
    raw = tiny_params(replicates=count)
    (project / "params.yaml").write_text(json.dumps(raw))
    return config.load()


def test_aggregate_keeps_every_seed_the_median_the_mean_and_a_named_student_t_interval(project):
    params = with_replicates(project, 3)
    kids = [0.15, 0.17, 0.22]
    write_replicates(params, "tiny_dcgan_tumour",
                     [{"kid": _entry(k, k - 0.01, k + 0.01), "prdc_precision": _entry(p),
                       "frd": {"skipped": "no radiomics", "n_real": 9, "n_fake": 12}}
                      for k, p in zip(kids, [0.97, 0.99, 1.0])],
                     guards={1: [{"step": 900, "flag": "mode_collapse"}, {"step": 950, "flag": "mode_collapse"}]})
    entry = replicates.aggregate(params, "tiny_dcgan_tumour")
    on_disk = json.loads(paths.path(paths.METRICS, experiment="tiny_dcgan_tumour").read_text())
    assert on_disk["metrics"] == entry["metrics"] and on_disk["seeds"] == [config.replicate_seed(0, r) for r in range(3)]
    kid = on_disk["metrics"]["kid"]
    assert [s["value"] for s in kid["seeds"]] == kids and kid["seeds"][1]["ci_low"] == pytest.approx(0.16)
    assert kid["value"] == pytest.approx(np.median(kids), rel=1e-5) and kid["mean"] == pytest.approx(np.mean(kids), rel=1e-5)
    low, high = stats.t.interval(0.95, 2, loc=np.mean(kids), scale=stats.sem(kids))
    assert (kid["ci_low"], kid["ci_high"]) == (pytest.approx(low, rel=1e-5), pytest.approx(high, rel=1e-5))
    assert kid["interval"].startswith("Student t") and on_disk["across_seed_interval"].startswith("Student t")
    precision = on_disk["metrics"]["prdc_precision"]
    assert precision["ci_high"] == 1.0 and precision["ci_low"] < 1.0  # clipped to the metric's range
    assert "skipped" in on_disk["metrics"]["frd"] and on_disk["metrics"]["frd"]["n_seeds"] == 3
    assert on_disk["training"]["guard_seeds"] == {"mode_collapse": 1}  # once per seed, not per step
    assert json.loads(paths.path(paths.AGGREGATE_PROVENANCE, experiment="tiny_dcgan_tumour").read_text())["stage"] \
        == "aggregate"


def test_fewer_than_three_seeds_give_no_interval_and_one_seed_keeps_its_own(project):
    params = with_replicates(project, 2)
    write_replicates(params, "tiny_dcgan_tumour", [{"kid": _entry(0.2, 0.1, 0.3)}, {"kid": _entry(0.4, 0.3, 0.5)}])
    kid = replicates.aggregate(params, "tiny_dcgan_tumour")["metrics"]["kid"]
    assert "ci_low" not in kid and kid["interval"] == "too few seeds for an interval (2 < 3)"
    params = with_replicates(project, 1)
    kid = replicates.aggregate(params, "tiny_dcgan_tumour")["metrics"]["kid"]
    assert (kid["value"], kid["ci_low"], kid["ci_high"]) == (0.2, 0.1, 0.3) and kid["interval"].startswith("one seed")


def test_across_seed_interval_clips_to_the_metric_range():
    kid = replicates.across_seed_interval([-0.01, 0.0, 0.02], "kid")  # seed estimates < 0, MMD² >= 0
    assert kid["ci_low"] == 0.0 and kid["ci_high"] > 0.02
    unbounded = replicates.across_seed_interval([-0.01, 0.0, 0.02], "diversity_ratio")
    assert unbounded["ci_low"] < -0.01
    chance = replicates.across_seed_interval([0.02, 0.5, 0.98], "segmentation_chance_dice")
    assert (chance["ci_low"], chance["ci_high"]) == (0.0, 1.0)
    fid = replicates.across_seed_interval([0.1, 5.0, 20.0], "fid")
    assert fid["ci_low"] == 0.0 and fid["ci_high"] > 20.0


def test_aggregate_names_a_missing_replicate(project, capsys):
    params = with_replicates(project, 2)
    write_replicates(params, "tiny_dcgan_tumour", [{"kid": _entry(0.2)}])
    assert cli.main(["aggregate", "tiny_dcgan_tumour"]) == 2
    assert "run `medgan evaluate tiny_dcgan_tumour --replicate 1`" in capsys.readouterr().err


def blue_pixels(uri: str) -> int:
    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB")).astype(int)
    return int((np.abs(image - [31, 119, 180]).sum(-1) < 30).sum())  # matplotlib's tab:blue points


def test_the_report_draws_every_seed_as_a_point_and_lists_every_seeds_grid(project):
    params = with_replicates(project, 3)
    for name in params["experiments"]:
        write_replicates(params, name, [{"kid": _entry(v)} for v in (0.1, 0.3, 0.5)])
        replicates.aggregate(params, name)
    floor = {"dataset": "tiny", "seed": 0, "classes": {c: {"n_real": 5, "n_fake": 5, "metrics": {"kid": _entry(0.0)}}
                                                       for c in ("healthy", "tumour")}}
    paths.path(paths.BASELINE, dataset="tiny").parent.mkdir(parents=True, exist_ok=True)
    paths.path(paths.BASELINE, dataset="tiny").write_text(json.dumps(floor))
    table = report.metric_table(params, "tiny")
    three = blue_pixels(report.seed_strip_plot(table))
    one = table.assign(kid_seeds=[[0.3] if k == "experiment" else [] for k in table["kind"]])
    assert three > 2 * blue_pixels(report.seed_strip_plot(one)) > 0
    assert report.seed_strip_plot(table.assign(kid_seeds=[[] for _ in table.index])) is None
    assert list(summary.headline_table(params)["kid_seeds"].iloc[0]) == [0.1, 0.3, 0.5]
    for r in range(3):
        grid = paths.path(paths.GRID, experiment="tiny_dcgan_tumour", replicate=r)
        grid.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((10, 10), 40 * r, np.uint8)).save(grid)
    grids = report.seed_grids(params, "tiny_dcgan_tumour", paired=False)
    assert [(g["replicate"], g["seed"]) for g in grids] == [(r, config.replicate_seed(0, r)) for r in range(3)]
    assert len({g["grid"]["src"] for g in grids}) == 3
