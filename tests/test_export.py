"""medgan export / medgan generate: a trained generator shared as one folder or zip that loads
without medgan's pipeline (issue 25)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import medgan
from conftest import REPO, TINY, run_env
from medgan import cli, config, export, exported, paths

EXPERIMENT = "tiny_dcgan_tumour"
MORE = {"tiny_cgan": {"dataset": "tiny", "variant": "cgan", "class": "all", "hp": {"z_dim": 16, "ngf": 8, "ndf": 8}},
        "tiny_p2p": {"dataset": "tiny", "variant": "pix2pix", "class": "all", "hp": {"ngf": 8, "ndf": 8},
                     "train": {"batch_size": 4}}}


def pipeline_to_metrics(params: dict, names) -> None:
    from medgan import evaluate, replicates, sample, train

    for name in names:
        train.train(params, name)
        sample.sample(params, name)
        evaluate.evaluate(params, name)
        replicates.aggregate(params, name)
    evaluate.baseline(params, "tiny")


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory):
    """A temporary project (as conftest's `project`, once for this module) whose tiny DCGAN is
    trained, sampled and evaluated (one cheap metric); cwd is it while a test runs."""
    from medgan import phantoms, prepare

    root = tmp_path_factory.mktemp("export_project")
    for name in ("Snakefile", "dvc.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "workflow", root / "workflow")
    raw = {**TINY, "evaluate": {**TINY["evaluate"], "metrics": ["diversity"]},
           "experiments": {**TINY["experiments"], **MORE},
           "datasets": {"tiny": {**TINY["datasets"]["tiny"], "write_masks": True}}}
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("TORCH_HOME", str(root / "torch_home"))
        mp.delenv(config.PARAMS_ENV, raising=False)
        params = config.load()
        phantoms.generate("lits", paths.path(paths.RAW, name="tiny"), params["phantoms"]["tiny"], params["seed"])
        prepare.prepare_dataset("tiny", params["datasets"]["tiny"], paths.path(paths.SLICES, dataset="tiny"),
                                params["seed"])
        pipeline_to_metrics(params, [EXPERIMENT, *MORE])
    return root


@pytest.fixture
def tiny_export(tiny_project, monkeypatch):
    monkeypatch.chdir(tiny_project)
    monkeypatch.delenv(config.PARAMS_ENV, raising=False)
    params = config.load()
    return params, export.export(params, EXPERIMENT).resolve()


def sample_pngs(name: str, cls: str) -> np.ndarray:
    files = sorted((paths.path(paths.SAMPLES, experiment=name) / cls).glob("*.png"))
    return np.stack([np.asarray(Image.open(f)) for f in files])


def isolated_python(code: str, cwd: Path, extra_path: Path) -> subprocess.CompletedProcess:
    """`python -I -S` (no PYTHONPATH, no site hooks: the venv's editable medgan is a .pth hook)
    with the venv's site-packages folder and `extra_path` on sys.path: torch, numpy and pillow
    import, medgan does not."""
    site = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    prelude = f"import sys; sys.path[:0] = [{str(Path(extra_path).resolve())!r}]; sys.path += {site!r}\n"
    return subprocess.run([sys.executable, "-I", "-S", "-c", prelude + textwrap.dedent(code)], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env={"PATH": os.environ["PATH"]})


def test_export_writes_safetensors_code_record_card_and_zip(tiny_export):
    params, folder = tiny_export
    names = {p.name for p in folder.iterdir()}
    assert {"generator.safetensors", "architecture.json", "metadata.json", "MODEL_CARD.md", "__init__.py",
            "safetensors_reader.py", "networks.py", "blocks.py", "errors.py"} <= names
    assert not [n for n in names if n.endswith((".pt", ".pth", ".pkl"))]
    for name in export.MEDGAN_CODE:  # verbatim: the networks are defined once, in medgan
        assert (folder / name).read_text() == (REPO / "src" / "medgan" / name).read_text()
    arch = json.loads((folder / "architecture.json").read_text())
    assert arch["image_size"] == [32, 32] and arch["z_dim"] == 16 and arch["classes"] == ["tumour"]
    assert arch["preprocessing"]["window_hu"] == params["datasets"]["tiny"]["window"]
    zipped = paths.path(paths.EXPORT_ZIP, experiment=EXPERIMENT)
    with zipfile.ZipFile(zipped) as z:
        assert sorted(z.namelist()) == sorted(f"{EXPERIMENT}/{n}" for n in names)
        assert z.read(f"{EXPERIMENT}/generator.safetensors") == (folder / "generator.safetensors").read_bytes()
    first = zipped.read_bytes()
    export.export(params, EXPERIMENT)
    assert zipped.read_bytes() == first  # the same run exports to the same bytes (DVC sees no change)


def test_metadata_uses_medigans_fields_and_medgans_numbers(tiny_export):
    _, folder = tiny_export
    record = json.loads((folder / "metadata.json").read_text())
    metrics = json.loads(paths.path(paths.METRICS, experiment=EXPERIMENT).read_text())["metrics"]
    execution = record["execution"]
    assert execution["generate_method"]["args"]["base"] == ["model_file", "num_samples", "output_path", "save_images"]
    assert (execution["package_name"], execution["model_name"], execution["extension"]) == \
        (EXPERIMENT, "generator", ".safetensors")
    assert execution["dependencies"] == ["torch", "numpy", "pillow"]
    performance = record["selection"]["performance"]
    for key in ("SSIM", "MSE", "NSME", "PSNR", "IS", "FID", "FID_no_images", "FID_ratio", "turing_test",
                "CLF_delta", "SEG_delta", "DET_delta"):
        assert key in performance
    assert set(record["description"]) >= {"title", "trained_date", "provided_after_epoch", "version",
                                          "publication", "inputs", "comment"}
    block = record["medgan"]["metrics"]
    entry = metrics["diversity_ratio"]
    assert [run["value"] for run in block["diversity_ratio"]] == [s["value"] for s in entry["seeds"]]
    assert [run["seed"] for run in block["diversity_ratio"]] == [s["seed"] for s in entry["seeds"]]
    assert all(run["n_real"] == entry["n_real"] for run in block["diversity_ratio"])
    assert set(block) == {n for n, e in metrics.items() if "value" in e and not e.get("skipped")}


@pytest.mark.parametrize("name", ["lits_dcgan_small_data_tumour", "lits_vanilla_tumour"])
def test_medigans_performance_fields_come_from_the_demos_metrics_files(name):
    """The committed demo metrics (FID, relative FID, utility, paired SSIM/PSNR) mapped to medigan's names."""
    metrics = json.loads((REPO / paths.METRICS.format(experiment=name)).read_text())["metrics"]
    performance = export.performance(metrics, None)
    assert performance["FID"] == metrics["fid"]["value"] and performance["FID_no_images"] == metrics["fid"]["n_fake"]
    relative = metrics["relative_fid"]
    assert performance["FID_ratio"] == pytest.approx(1 / relative["value"], rel=1e-9)
    assert len(relative["seeds"]) == 3 and relative["value"] == pytest.approx(np.median([s["value"] for s in relative["seeds"]]), rel=1e-5)
    assert performance["CLF_delta"] == metrics["utility_auc_gain"]["value"]
    assert performance["CLF"] == {"trained_on_fake": metrics["utility_synthetic_auc"]["value"],
                                  "trained_on_real_and_fake": metrics["utility_mixed_auc"]["value"],
                                  "trained_on_real": metrics["utility_real_auc"]["value"]}
    paired = "value" in metrics["paired_ssim_image"]
    assert performance["SSIM"] == (metrics["paired_ssim_image"]["value"] if paired else None)
    assert performance["PSNR"] == (metrics["paired_psnr_image"]["value"] if paired else None)
    assert performance["SEG_delta"] is None  # no segmentation utility in the demo


def test_model_card_has_mitchells_sections_and_the_metrics_files_numbers(tiny_export):
    _, folder = tiny_export
    card = (folder / "MODEL_CARD.md").read_text()
    for section in ("## Intended use", "## Out-of-scope use", "## Training data", "## Evaluation",
                    "## Known failure modes", "## Licence"):
        assert section in card
    assert "Not for diagnosis" in card
    metrics = json.loads(paths.path(paths.METRICS, experiment=EXPERIMENT).read_text())["metrics"]
    ratio = metrics["diversity_ratio"]
    interval = f"[{ratio['ci_low']:.4g}, {ratio['ci_high']:.4g}]" if "ci_low" in ratio else "(no interval)"
    assert f"| diversity_ratio | {ratio['value']:.4g} {interval}" in card
    floor = json.loads(paths.path(paths.BASELINE, dataset="tiny").read_text())["classes"]["tumour"]["metrics"]
    ratio = floor["diversity_ratio"]
    interval = f"[{ratio['ci_low']:.4g}, {ratio['ci_high']:.4g}]" if "ci_low" in ratio else "(no interval)"
    assert f"| diversity_ratio | tumour | {ratio['value']:.4g} {interval}" in card
    manifest = json.loads(json.dumps(export.training_data("tiny", config.load()["datasets"]["tiny"], ["tumour"])))
    train = manifest["splits"]["train"]
    assert f"| train | {train['patients']} | {train['slices']} |" in card


def test_generate_equals_medgan_sample_and_is_deterministic(tiny_export, tmp_path):
    params, folder = tiny_export
    sampled = sample_pngs(EXPERIMENT, "tumour")
    images = medgan.generate(folder, len(sampled), seed=params["seed"])
    assert images.dtype == np.uint8 and np.array_equal(images, sampled)
    zipped = medgan.generate(paths.path(paths.EXPORT_ZIP, experiment=EXPERIMENT), 5, seed=7, out=tmp_path / "a")
    assert np.array_equal(zipped, medgan.generate(folder, 5, seed=7))
    assert not np.array_equal(zipped, images[:5])
    written = np.stack([np.asarray(Image.open(f)) for f in sorted((tmp_path / "a").glob("*.png"))])
    assert np.array_equal(written, zipped)


def test_cli_generate_writes_a_folder_or_a_zip_without_params_yaml(tiny_export, tmp_path, monkeypatch):
    _, folder = tiny_export
    monkeypatch.chdir(tmp_path)  # no params.yaml here
    assert cli.main(["generate", str(folder), "--n", "3", "--out", "imgs", "--seed", "1"]) == 0
    assert cli.main(["generate", str(folder), "--n", "3", "--out", "imgs.zip", "--seed", "1"]) == 0
    assert cli.main(["generate", str(folder), "--n", "0", "--out", "none"]) == 2 and not Path("none").exists()
    with zipfile.ZipFile("imgs.zip") as z:
        assert sorted(z.namelist()) == sorted(p.name for p in Path("imgs").iterdir()) == \
            ["00000.png", "00001.png", "00002.png"]


def test_generate_refuses_weights_that_are_not_safetensors(tiny_export, tmp_path, capsys):
    _, folder = tiny_export
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "architecture.json").write_text((folder / "architecture.json").read_text())
    torch.save({"net.0.weight": torch.zeros(2, 2)}, bad / "generator.pt")
    assert cli.main(["generate", str(bad), "--n", "2", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "generator.safetensors not found" in err and "generator.pt" in err and "safetensors" in err
    (bad / "generator.safetensors").write_bytes((bad / "generator.pt").read_bytes())  # a pickle renamed
    assert cli.main(["generate", str(bad), "--n", "2", "--out", str(tmp_path / "o")]) == 2
    assert "not a safetensors file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_export_package_runs_with_torch_numpy_pillow_only_and_matches_medgan(tiny_export, tmp_path):
    """The package's own code (medigan's way in) gives medgan's images bit for bit; medgan itself
    cannot be imported in that process."""
    params, folder = tiny_export
    code = f"""
        import importlib, json, sys
        try:
            import medgan
            print("MEDGAN IMPORTABLE", medgan.__file__); sys.exit(3)
        except ImportError:
            pass
        pkg = importlib.import_module({EXPERIMENT!r})
        images = pkg.generate(model_file={str(folder / 'generator.safetensors')!r}, num_samples=70,
                              output_path=None, save_images=False, seed=3)
        import numpy as np
        np.save({str(tmp_path / 'pkg.npy')!r}, np.stack(images))
        print(sorted(m for m in sys.modules if m.split('.')[0] in ('medgan', 'safetensors', 'yaml', 'pandas')))
    """
    result = isolated_python(code, tmp_path, folder.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert np.array_equal(np.load(tmp_path / "pkg.npy"), medgan.generate(folder, 70, seed=3))


def test_the_exports_safetensors_reader_reads_what_safetensors_writes(tmp_path):
    from safetensors.torch import load_file, save_file

    reader = _load_reader()
    tensors = {"w": torch.randn(3, 4), "i": torch.arange(6, dtype=torch.int64).reshape(2, 3),
               "h": torch.randn(5).half(), "b": torch.randn(2, 2).bfloat16(), "e": torch.zeros(0, 3)}
    save_file(tensors, tmp_path / "t.safetensors", metadata={"k": "v"})
    ours, theirs = reader.load_file(tmp_path / "t.safetensors"), load_file(tmp_path / "t.safetensors")
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key].dtype == theirs[key].dtype and torch.equal(ours[key], theirs[key])
    damaged = (tmp_path / "t.safetensors").read_bytes()[:-4]
    (tmp_path / "d.safetensors").write_bytes(damaged)
    with pytest.raises(reader.SafetensorsError, match="outside the file"):
        reader.load_file(tmp_path / "d.safetensors")


def _load_reader():
    import importlib.util

    path = REPO / "src" / "medgan" / "templates" / "export" / "safetensors_reader.py"
    spec = importlib.util.spec_from_file_location("export_safetensors_reader", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_medigans_import_and_call_convention(tiny_export, tmp_path):
    """Without medigan's code (the test below runs medigan's own executor where PyPI answers):
    medigan 1.0.0 does not import as installed here — its executor imports pkg_resources (gone from
    setuptools >= 81; this venv has 84) and its package __init__ imports PyGithub and matplotlib
    widgets. So this reproduces what ModelExecutor does with a model package, step by step:
    unzip `{package_name}.zip` into models/{model_id}/, import `models.{model_id}.{package_name}`,
    model_file = models/{model_id}/{package_name}/{model_name}{extension}, and call the
    `generate_method` with the `custom` defaults, then the four `base` arguments — in its batch loop
    (num_samples = batch_size per call, a last call with the remainder, even 0)."""
    _, folder = tiny_export
    record = json.loads((folder / "metadata.json").read_text())
    execution, model_id = record["execution"], "00099_MEDGAN_TINY"
    target = tmp_path / "models" / model_id
    with zipfile.ZipFile(paths.path(paths.EXPORT_ZIP, experiment=EXPERIMENT)) as z:
        z.extractall(target)
    code = f"""
        import importlib, json, os, sys
        import numpy as np
        execution = json.loads({json.dumps(json.dumps(execution))})
        lib = importlib.import_module(f"models.{model_id}." + execution["package_name"])
        model_file = f"models/{model_id}/" + execution["package_name"] + "/" + execution["model_name"] + execution["extension"]
        method = getattr(lib, execution["generate_method"]["name"])
        num_samples, batch_size, out = 10, 4, "output"
        kwargs = dict(execution["generate_method"]["args"]["custom"])
        kwargs.update(model_file=model_file, num_samples=batch_size, output_path=out, save_images=True)
        for batch_num in range(0, num_samples // batch_size + 1):
            if batch_num == num_samples // batch_size:
                kwargs["num_samples"] = num_samples % batch_size
            path = os.path.join(out, "batch_" + str(batch_num)) + "/"
            os.makedirs(path, exist_ok=True)
            kwargs["output_path"] = path
            method(**kwargs)
            for name in os.listdir(path):
                os.rename(os.path.join(path, name), os.path.join(out, "batch_" + str(batch_num) + "_" + name))
            os.rmdir(path)
        arrays = method(model_file=model_file, num_samples=3, output_path=None, save_images=False, seed=0)
        print(len(os.listdir(out)), [a.shape for a in arrays])
        np.save("arrays.npy", np.stack(arrays))
    """
    result = isolated_python(code, tmp_path, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split()[0] == "10" and "(32, 32)" in result.stdout
    first = [np.asarray(Image.open(tmp_path / "output" / f"batch_{b}_00000.png")) for b in (0, 1)]
    assert not np.array_equal(*first)  # medigan's batches, each a call with the same defaults, differ
    assert np.array_equal(np.load(tmp_path / "arrays.npy"), medgan.generate(folder, 3, seed=0))


def test_export_refuses_a_variant_it_cannot_rebuild_and_replicates_it_does_not_have(params):
    raw = {**params, "experiments": {**params["experiments"],
                                     "tiny_ddpm": {"dataset": "tiny", "variant": "ddpm", "class": "tumour"}}}
    with pytest.raises(export.ExportError, match="ddpm"):
        export.export(config.validate(raw), "tiny_ddpm")
    with pytest.raises(export.ExportError, match="--replicate 2 is not one of them"):
        export.export(params, EXPERIMENT, replicate=2)


def git(*args, cwd):
    subprocess.run(["git", "-c", "user.email=test@example.org", "-c", "user.name=test", *args], cwd=cwd,
                   check=True, capture_output=True, text=True)


def dvc(*args, cwd):
    result = subprocess.run(["dvc", *args], cwd=cwd, env=run_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"dvc {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def test_a_colleague_fetches_the_model_with_dvc_artifacts_get_and_generates_from_it(tiny_export, tmp_path):
    """A repository with the export under `artifacts:` and a local DVC remote; the colleague's
    empty folder gets it with `dvc artifacts get` (the version registered as a GTO tag, as
    `gto register` writes it) and `medgan generate` draws the same images from it in a fresh process."""
    params, folder = tiny_export
    repo, remote, colleague = tmp_path / "repo", tmp_path / "remote", tmp_path / "colleague"
    for d in (repo, remote, colleague):
        d.mkdir()
    git("init", "-q", cwd=repo)
    dvc("init", "-q", cwd=repo)
    zipped = repo / paths.EXPORT_ZIP.format(experiment=EXPERIMENT)
    zipped.parent.mkdir(parents=True)
    shutil.copy(paths.path(paths.EXPORT_ZIP, experiment=EXPERIMENT), zipped)
    dvc("add", "-q", str(zipped.relative_to(repo)), cwd=repo)
    dvc("remote", "add", "-d", "shared", str(remote), cwd=repo)
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"artifacts": {EXPERIMENT: export.artifact(params, EXPERIMENT)}}))
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "an exported generator", cwd=repo)
    git("tag", "-a", f"{EXPERIMENT}@v0.1.0", "-m", f"Registering artifact {EXPERIMENT} version v0.1.0", cwd=repo)
    dvc("push", "-q", cwd=repo)
    (repo / ".dvc" / "cache").rename(tmp_path / "cache_elsewhere")  # only the remote holds the bytes now

    dvc("artifacts", "get", str(repo), EXPERIMENT, "-o", "model.zip", cwd=colleague)
    result = subprocess.run(["medgan", "generate", "model.zip", "--n", "6", "--out", "images", "--seed", "4"],
                            cwd=colleague, env=run_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    fetched = np.stack([np.asarray(Image.open(f)) for f in sorted((colleague / "images").glob("*.png"))])
    assert np.array_equal(fetched, medgan.generate(folder, 6, seed=4))


def test_every_exported_experiment_is_a_dvc_artifact_of_type_model():
    """The repository's dvc.yaml declares exactly params.yaml's exported experiments, each with the
    entry `medgan export` defines (path of the zip, type model, labels modality, organ, variant)."""
    params = config.load(REPO / "params.yaml")
    declared = (yaml.safe_load((REPO / "dvc.yaml").read_text()) or {}).get("artifacts") or {}
    assert declared == {name: export.artifact(params, name) for name in params["export"]["experiments"]}


def test_conditional_export_draws_each_class_as_medgan_sample_does(tiny_project, monkeypatch):
    monkeypatch.chdir(tiny_project)
    params = config.load()
    folder = export.export(params, "tiny_cgan").resolve()
    for cls in ("healthy", "tumour"):
        sampled = sample_pngs("tiny_cgan", cls)
        assert np.array_equal(medgan.generate(folder, len(sampled), seed=params["seed"], cls=cls), sampled)
    with pytest.raises(exported.ExportFileError, match="not one of"):
        medgan.generate(folder, 2, cls="cyst")


def test_label_map_export_renders_medgan_samples_pairs_from_their_masks(tiny_project, monkeypatch, tmp_path):
    """pix2pix: the held-out masks `medgan sample` wrote (viewable 0..255 PNGs) go in, its outputs
    come out, through medgan.generate and through the package's own code alike."""
    monkeypatch.chdir(tiny_project)
    params = config.load()
    folder = export.export(params, "tiny_p2p").resolve()
    pairs = paths.path(paths.SAMPLES, experiment="tiny_p2p") / "pairs"
    masks = tmp_path / "masks"
    masks.mkdir()
    for f in pairs.glob("*_mask.png"):
        shutil.copy(f, masks / f.name.replace("_mask", ""))
    stems = sorted(p.stem for p in masks.glob("*.png"))
    fakes = np.stack([np.asarray(Image.open(pairs / f"{s}_fake.png")) for s in stems])
    assert np.array_equal(medgan.generate(folder, 0, seed=params["seed"], mask_dir=masks), fakes)
    with pytest.raises(exported.ExportFileError, match="mask_dir"):
        medgan.generate(folder, 2)
    code = f"""
        import importlib
        import numpy as np
        pkg = importlib.import_module("tiny_p2p")
        images = pkg.generate({str(folder / 'generator.safetensors')!r}, 0, None, False, seed=0, mask_dir={str(masks)!r})
        np.save({str(tmp_path / 'p2p.npy')!r}, np.stack(images))
    """
    result = isolated_python(code, tmp_path, folder.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert np.array_equal(np.load(tmp_path / "p2p.npy"), fakes)


def test_params_naming_an_unknown_or_unexportable_experiment_is_refused_naming_the_key(tmp_path):
    from conftest import tiny_params

    raw = tiny_params(export={"experiments": ["nope", "tiny_ddpm"]})
    raw["experiments"]["tiny_ddpm"] = {"dataset": "tiny", "variant": "ddpm", "class": "tumour"}
    with pytest.raises(config.ConfigError) as err:
        config.validate(raw)
    assert "export.experiments[0]': unknown experiment 'nope'" in str(err.value)
    assert "export.experiments[1]': 'tiny_ddpm' is a ddpm experiment" in str(err.value)


def test_scored_turing_answers_reach_metadata_and_card(tiny_project, monkeypatch):
    from medgan import turing
    from test_turing import answers_csv

    monkeypatch.chdir(tiny_project)
    params = config.load()
    key = turing.build(params, EXPERIMENT)
    answers = paths.path(paths.TURING_ANSWERS, experiment=EXPERIMENT)
    answers.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    files = [answers_csv(answers / f"dr_{r}.csv", key, f"dr_{r}", lambda it: str(rng.choice(turing.ANSWERS)))
             for r in "ab"]
    try:
        folder = export.export(params, EXPERIMENT)
        pooled = turing.score(key, [Path(f) for f in files])["pooled"]["accuracy"]
        record = json.loads((folder / "metadata.json").read_text())
        assert record["selection"]["performance"]["turing_test"] == pooled["value"]
        assert record["medgan"]["turing_test"]["n"] == pooled["n"] > 0
        assert f"({pooled['k']}/{pooled['n']}; 0.5 = chance)" in (folder / "MODEL_CARD.md").read_text()
    finally:
        shutil.rmtree(answers)


@pytest.mark.parametrize("name", ["lits_dcgan_small_data_tumour", "lits_vanilla_tumour"])
def test_the_demos_model_card_shows_every_number_of_its_metrics_file(name, monkeypatch):
    """The card and record rendered from the committed demo results (the model and slices are
    DVC's, so the model's fields come from the metrics file's settings, the split from a stand-in)."""
    monkeypatch.chdir(REPO)
    params = config.load(REPO / "params.yaml")
    metrics_json = json.loads((REPO / paths.METRICS.format(experiment=name)).read_text())
    replicate_zero = json.loads((REPO / paths.REPLICATE_METRICS.format(experiment=name, replicate=0)).read_text())
    settings, exp = replicate_zero["settings"], params["experiments"][name]
    model = {"variant": exp["variant"], "hp": settings["hp"], "image_size": [64, 64], "step": settings["trained_steps"],
             "classes": config.classes_of(params, exp), "labels": settings.get("labels"), "train": settings["train"]}
    data = {"dataset": exp["dataset"], "license": "L", "kind": "volumes", "layout": "lits", "split_ratios": {},
            "split_by": "patient", "splits": {"train": {"patients": 12, "slices": 34, "per_class": {"tumour": 34}}}}
    monkeypatch.setattr(export, "training_data", lambda *a: data)
    arch = export.architecture(model, exp, params["datasets"][exp["dataset"]], params["sample"])
    record, card = export.describe(params, name, 0, arch, model, Path("model.pt"))
    metrics = metrics_json["metrics"]
    shown = [m for m in export.CARD_METRICS if "value" in metrics.get(m, {})]
    assert len(shown) >= 10
    for metric in shown:
        m = metrics[metric]
        for run in m["seeds"]:  # every seed's own value and interval
            interval = f"[{run['ci_low']:.4g}, {run['ci_high']:.4g}]" if "ci_low" in run else "(no interval)"
            assert f"| {metric} | {run['value']:.4g} {interval} | {m['n_real']} / {m['n_fake']} | {run['seed']} |" in card
        assert f"| {metric} across seeds | median {m['value']:.4g} [{m['ci_low']:.4g}, {m['ci_high']:.4g}]" in card
        assert [r["value"] for r in record["medgan"]["metrics"][metric]] == [s["value"] for s in m["seeds"]]
    floor = json.loads((REPO / paths.BASELINE.format(dataset=exp["dataset"])).read_text())["classes"]
    fid_floor = floor["tumour" if exp["class"] == "tumour" else "all"]["metrics"]["fid"]
    assert f"| fid | {'tumour' if exp['class'] == 'tumour' else 'all'} | {fid_floor['value']:.4g} [" in card
    pixel = metrics["memorisation_share_pixel"]
    assert (f"than real held-out images are: {pixel['value']:.4g} [{pixel['ci_low']:.4g}, {pixel['ci_high']:.4g}] "
            f"in pixel space ({pixel.get('exact_copies', '—')} exact copies") in card
    assert record["selection"]["performance"]["FID"] == metrics["fid"]["value"]


MEDIGAN = "medigan==1.0.0"


def medigan_source(tmp_path: Path) -> Path:
    """medigan 1.0.0's source from PyPI (its sdist; pip's cache answers when it has it), not installed."""
    import tarfile

    got = subprocess.run([sys.executable, "-m", "pip", "download", MEDIGAN, "--no-deps", "--no-binary", ":all:",
                          "--no-build-isolation", "-d", str(tmp_path / "sdist")], capture_output=True, text=True,
                         timeout=300)
    archives = sorted((tmp_path / "sdist").glob("medigan-*.tar.gz"))
    if got.returncode != 0 or not archives:
        pytest.skip(f"pip could not fetch {MEDIGAN} (offline?): {got.stderr.strip().splitlines()[-1:]}; "
                    f"test_medigans_import_and_call_convention checks the same steps without it")
    with tarfile.open(archives[0]) as tar:
        tar.extractall(tmp_path / "medigan", filter="data")
    return next((tmp_path / "medigan").glob("medigan-*/src/medigan"))


def test_medigans_own_model_executor_unzips_imports_and_runs_the_export(tiny_export, tmp_path):
    """medigan's ModelExecutor (its code, from the PyPI sdist) finds the zip where it downloads
    packages, unzips it, imports it and generates in its batch loop. Two things stand in for what
    does not import here: `pkg_resources` (removed from setuptools >= 81; the executor calls only
    its require(), answered from importlib.metadata) and medigan's package __init__ (it imports
    PyGithub and matplotlib widgets for uploading and plotting; the executor needs neither)."""
    _, folder = tiny_export
    source = medigan_source(tmp_path)
    record = json.loads((folder / "metadata.json").read_text())
    model_id, package = "00099_MEDGAN_TINY", record["execution"]["package_name"]
    work = tmp_path / "work"
    (work / "models" / model_id).mkdir(parents=True)
    shutil.copy(paths.path(paths.EXPORT_ZIP, experiment=EXPERIMENT), work / "models" / model_id / f"{package}.zip")
    code = f"""
        import importlib.metadata, json, os, sys, types
        import numpy as np
        shim = types.ModuleType("pkg_resources")
        shim.require = lambda requirements: [importlib.metadata.version(r) for r in requirements]
        sys.modules["pkg_resources"] = shim
        medigan = types.ModuleType("medigan")
        medigan.__path__ = [{str(source)!r}]
        sys.modules["medigan"] = medigan
        from medigan.execute_model.model_executor import ModelExecutor

        executor = ModelExecutor({model_id!r}, json.loads({json.dumps(json.dumps(record["execution"]))}),
                                 download_package=True)
        executor.generate(num_samples=10, output_path="output", save_images=True, batch_size=4)
        arrays = executor.generate(num_samples=5, output_path="unused", save_images=False, seed=2)
        np.save("arrays.npy", np.stack(arrays))
        print(len(os.listdir("output")), executor.serialised_model_file_path)
    """
    result = isolated_python(code, work, work)
    assert result.returncode == 0, result.stdout + result.stderr
    count, model_file = result.stdout.split()[-2:]
    assert count == "10" and model_file == f"models/{model_id}/{package}/generator.safetensors"
    assert np.array_equal(np.load(work / "arrays.npy"), medgan.generate(folder, 5, seed=2))


@pytest.mark.parametrize("variant", ["vanilla", "wgan_gp", "cgan", "seednet"])
def test_the_packages_networks_are_medgans_bit_for_bit(variant, tmp_path):
    """Each exportable variant's generator, rebuilt by the package's own build() from
    architecture.json, draws what medgan's own network draws from the same weights and seed
    (dcgan and pix2pix: the tests above, from trained models)."""
    from conftest import tiny_params
    from medgan import variants

    small = {"vanilla": {"hidden_g": [32, 64]}, "wgan_gp": {"ngf": 8}, "cgan": {"ngf": 8, "z_dim": 8},
             "seednet": {"network": "tf_tutorial", "z_dim": 8}}
    params = config.validate(tiny_params(variants={variant: small[variant]}))
    hp, classes = params["variants"][variant], ["healthy", "tumour"]
    torch.manual_seed(0)
    G, _ = variants.build(variant, [32, 32], hp, len(classes))
    for module in G.modules():  # non-trivial batch-norm statistics
        if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2)
    model = {"variant": variant, "hp": hp, "image_size": [32, 32], "classes": classes, "labels": None}
    arch = export.architecture(model, {}, params["datasets"]["tiny"], params["sample"])
    folder = tmp_path / "pkg"
    folder.mkdir()
    export.write_weights(G.state_dict(), folder / export.WEIGHTS)
    (folder / export.ARCHITECTURE).write_text(json.dumps(arch))
    export.copy_code(folder)
    cls = "tumour" if arch["conditional"] else None
    code = f"""
        import importlib
        import numpy as np
        pkg = importlib.import_module("pkg")
        images = pkg.generate({str(folder / export.WEIGHTS)!r}, 5, None, False, seed=11, **{{"class": {cls!r}}})
        np.save("out.npy", np.stack(images))
    """
    result = isolated_python(code, tmp_path, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    ours = medgan.generate(folder, 5, seed=11, cls=cls)
    assert np.array_equal(np.load(tmp_path / "out.npy"), ours) and ours.std() > 0


def test_export_of_an_untrained_experiment_names_the_missing_model(tiny_project, monkeypatch, capsys):
    monkeypatch.chdir(tiny_project)
    assert cli.main(["export", "tiny_dcgan_healthy"]) == 2
    assert "results/models/tiny_dcgan_healthy/r0.pt not found" in capsys.readouterr().err
    assert not paths.path(paths.EXPORT, experiment="tiny_dcgan_healthy").exists()
