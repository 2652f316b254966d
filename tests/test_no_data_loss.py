"""Nothing a user made is deleted implicitly: models, checkpoints, samples and Turing keys of
another configuration survive the current params' pipeline; `medgan clean` lists them and
removes them only with --yes (a Turing folder holding readers' answers: never)."""

from __future__ import annotations

import copy

import yaml

from conftest import TINY
from medgan import cli, paths, prune

DEMO = "tiny_dcgan_tumour"
EXTRA = "zoo_dcgan_healthy"


def _write(path, raw):
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path)


def _configs(project):
    demo = copy.deepcopy(TINY)
    demo["experiments"] = {DEMO: TINY["experiments"][DEMO]}
    demo["evaluate"] = {"metrics": ["diversity"], "inception": "auto"}
    zoo = copy.deepcopy(demo)
    zoo["experiments"][EXTRA] = {"dataset": "tiny", "variant": "dcgan", "class": "healthy"}
    return _write(project / "params.yaml", demo), _write(project / "zoo.yaml", zoo)


def _run(*argv):
    assert cli.main(list(argv)) == 0, argv


def _extra_outputs(project):
    return {"model": project / paths.path(paths.MODEL, experiment=EXTRA),
            "checkpoint": project / paths.path(paths.CHECKPOINTS, experiment=EXTRA) / "last.pt",
            "samples": project / paths.path(paths.SAMPLES, experiment=EXTRA) / "samples.csv",
            "turing key": project / paths.path(paths.TURING_KEY, experiment=EXTRA)}


def test_another_configs_outputs_survive_the_demo_pipeline_and_clean_removes_them_only_when_told(project, capsys):
    demo, zoo = _configs(project)
    _run("phantoms", "tiny", "--params", demo)
    _run("prepare", "tiny", "--params", demo)
    for verb in ("train", "sample", "evaluate", "aggregate"):
        _run(verb, DEMO, "--params", demo)
    _run("baseline", "tiny", "--params", demo)
    _run("summarize", "--params", demo)
    for verb in ("train", "sample", "turing"):  # the zoo's extra experiment, beside the demo
        _run(verb, EXTRA, "--params", zoo)
    extra = _extra_outputs(project)
    assert all(p.exists() for p in extra.values()), extra

    _run("summarize", "--params", demo)  # the step that used to delete other configurations' outputs
    assert all(p.exists() for p in extra.values()), [k for k, p in extra.items() if not p.exists()]
    summary_md = (project / paths.SUMMARY_MD).read_text()
    assert DEMO in summary_md and EXTRA not in summary_md

    capsys.readouterr()
    _run("clean", "--params", demo)
    listing = capsys.readouterr().out
    for pattern in (paths.MODEL, paths.CHECKPOINTS, paths.SAMPLES, paths.GRID, paths.TRAIN_LOG):
        owned = pattern.split("/r{replicate}")[0]  # a per-replicate output is listed as its experiment's folder
        assert paths.path(owned, experiment=EXTRA).as_posix() in listing, (pattern, listing)
    assert f"results/turing/{EXTRA}" in listing and "--yes" in listing
    assert DEMO not in listing
    assert all(p.exists() for p in extra.values())  # listing removes nothing

    _run("clean", "--yes", "--params", demo)
    assert not any(p.exists() for p in extra.values())
    assert (project / paths.path(paths.MODEL, experiment=DEMO)).exists()
    assert (project / paths.path(paths.SLICES, dataset="tiny") / "manifest.csv").exists()
    assert prune.unowned({"experiments": {DEMO: {}}, "datasets": {"tiny": {}}}, project) == []


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x" * 10)
    return path


def test_clean_keeps_a_turing_folder_with_readers_answers(params, project, capsys):
    answers = _touch(project / paths.path(paths.TURING_ANSWERS, experiment="gone") / "reader1.csv")
    key = _touch(project / paths.path(paths.TURING_KEY, experiment="gone"))
    model = _touch(project / paths.path(paths.MODEL, experiment="gone"))
    entries = prune.clean(params, project, remove=True)
    assert answers.exists() and key.exists() and not model.exists()
    kept = [e for e in entries if e["kept"]]
    assert [e["path"] for e in kept] == [key.parent] and "answer" in kept[0]["kept"]


def test_owner_is_read_from_any_pattern_shape(monkeypatch, project):
    """Per-replicate paths (results/models/{experiment}/r{replicate}.pt) and files named after
    the owner with a suffix field are matched the same way: a folder or file per owner."""
    monkeypatch.setattr(paths, "MODEL", "results/models/{experiment}/r{replicate}.pt")
    monkeypatch.setattr(paths, "GRID", "results/grids/{experiment}_r{replicate}.png")
    monkeypatch.setattr(paths, "METRICS_REPLICATE", "results/metrics/experiments/{experiment}/r{replicate}.json",
                        raising=False)  # beside the aggregate results/metrics/experiments/{experiment}.json
    params = {"experiments": {"a_r": {}, "b": {}}, "datasets": {"d": {}}}
    keep = [_touch(project / "results/models/b/r0.pt"), _touch(project / "results/grids/a_r_r1.png"),
            _touch(project / "results/grids/b_r0.png"), _touch(project / "results/metrics/experiments/b.json"),
            _touch(project / "results/metrics/experiments/b/r1.json")]
    gone = [_touch(project / "results/models/old/r0.pt").parent, _touch(project / "results/grids/old_r2.png"),
            _touch(project / "data/slices/old_dataset/manifest.csv").parent,
            _touch(project / "results/metrics/experiments/old/r0.json").parent,
            _touch(project / "results/metrics/experiments/old.json")]
    _touch(project / "data/raw/old_dataset/volume-0.nii")  # raw data is never an output
    assert prune.unowned(params, project) == sorted(gone)
    assert all(p.exists() for p in keep)


def test_checkpoints_of_other_params_are_set_aside_not_overwritten(prepared, project, capsys):
    import torch

    from medgan import modelio, train

    train.train(prepared, DEMO)
    folder = project / paths.path(paths.CHECKPOINTS, experiment=DEMO)
    before = torch.load(folder / "last.pt", weights_only=True)["step"]
    capsys.readouterr()
    prepared["train"]["iterations"] = 9  # a longer budget: other params, a fresh run
    train.train(prepared, DEMO)
    out = capsys.readouterr().out
    [kept] = list((folder / modelio.SET_ASIDE).iterdir())
    assert f"kept in {kept.relative_to(project)}" in out and "starting over" in out
    assert torch.load(kept / "last.pt", weights_only=True)["step"] == before == 6
    assert torch.load(folder / "last.pt", weights_only=True)["step"] == 9
    assert prune.unowned(prepared, project) == []  # kept with its experiment, not listed as stale


def torch_load(path):
    import torch

    return torch.load(path, weights_only=True)


def test_evaluate_refuses_held_out_patients_the_model_was_trained_on(prepared, project, capsys):
    """prepare ran again with another split after training (by hand, out of order): the model's
    recorded training patients now sit in the held-out split, and its scores would be inflated."""
    import pandas as pd

    prepared["evaluate"]["metrics"] = ["diversity"]
    (project / "params.yaml").write_text(yaml.safe_dump(prepared))
    for verb in ("train", "sample"):
        _run(verb, DEMO)
    manifest_path = project / paths.path(paths.SLICES, dataset="tiny") / "manifest.csv"
    manifest = pd.read_csv(manifest_path, dtype={"case": str})
    moved = sorted(set(manifest.loc[(manifest["split"] == "train") & (manifest["class"] == "tumour"), "case"]))[0]
    manifest.loc[manifest["case"] == moved, "split"] = "test"  # what another split's prepare would do
    manifest.to_csv(manifest_path, index=False)
    capsys.readouterr()
    assert cli.main(["evaluate", DEMO]) == 2
    err = capsys.readouterr().err
    assert f"e.g. {moved}" in err and "retrain" in err
    model = torch_load(project / paths.path(paths.MODEL, experiment=DEMO))
    hashes = model["train_case_hashes"]  # a shared model does not list patient ids
    assert moved not in hashes and all(len(h) == 16 and int(h, 16) >= 0 for h in hashes)
