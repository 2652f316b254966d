"""Files a colleague or a hand edit may have changed between stages: feature caches,
manifest.csv, samples.csv, units.json. Each fault gives one clear message naming the file
(or, for a cache, a note and a recomputation), never a traceback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medgan import cli, evaluate, paths
from medgan.ingest import DataError, load_images, load_manifest, read_unit_list
from medgan.metrics import common, features


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A FeatureStore whose extractor is a stub counting its calls; cache under tmp_path."""
    monkeypatch.chdir(tmp_path)
    image_paths = []
    for i in range(3):
        image_paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(np.full((8, 8), i * 40, np.uint8)).save(image_paths[-1])
    real = common.ImageSet(image_paths, cache_key={"dataset": "d"})
    inp = common.Inputs(real=real, fake=common.ImageSet([]), train=common.ImageSet([]), settings={}, seed=0,
                        image_size=(8, 8))
    made = features.FeatureStore(inp)
    calls = []
    monkeypatch.setattr(made, "_describe", lambda extractor: {"name": extractor})
    monkeypatch.setattr(made, "_compute", lambda extractor, p: calls.append(1) or np.arange(len(p) * 2.0).reshape(-1, 2))
    return made, real, calls


def _fresh(made):
    made.memory.clear()
    return made


@pytest.mark.parametrize("damage", ["junk", "truncated", "object array", "wrong rows"])
def test_damaged_feature_cache_is_named_and_recomputed(store, tmp_path, capsys, damage):
    made, real, calls = store
    expected = made.get("stub", real)
    [cached] = (tmp_path / "results" / "cache" / "features" / "stub").glob("*.npy")
    marker = tmp_path / "pwned"
    if damage == "junk":
        cached.write_bytes(b"not numpy")
    elif damage == "truncated":
        cached.write_bytes(cached.read_bytes()[:90])
    elif damage == "object array":
        with open(cached, "wb") as f:
            np.save(f, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    else:
        np.save(cached, np.zeros((5, 2)))
    capsys.readouterr()
    assert np.array_equal(_fresh(made).get("stub", real), expected)
    assert len(calls) == 2 and not marker.exists()
    assert f"{cached.relative_to(tmp_path)}: " in capsys.readouterr().out
    assert np.array_equal(np.load(cached), expected)  # rewritten


def test_two_jobs_needing_one_real_set_compute_its_features_once(store, monkeypatch):
    """evaluate and baseline side by side (two Snakemake jobs) share the cache: the second waits
    on the first's lock, then reads what it wrote."""
    import threading
    import time

    made, real, calls = store
    other = features.FeatureStore(made.inp)
    monkeypatch.setattr(other, "_describe", made._describe)
    slow = lambda extractor, p: time.sleep(0.5) or calls.append(1) or np.arange(len(p) * 2.0).reshape(-1, 2)
    monkeypatch.setattr(made, "_compute", slow)
    monkeypatch.setattr(other, "_compute", slow)
    results = {}
    jobs = [threading.Thread(target=lambda s=s: results.__setitem__(id(s), s.get("stub", real))) for s in (made, other)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    assert len(calls) == 1 and len(results) == 2
    assert all(np.array_equal(r, np.arange(6.0).reshape(-1, 2)) for r in results.values())


def _slices(tmp_path, n=4):
    folder = tmp_path / "slices"
    rows = []
    for i in range(n):
        rel = f"{['train', 'test'][i % 2]}/healthy/c{i}_0000.png"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8), i, np.uint8)).save(folder / rel)
        rows.append({"case": f"c{i}", "split": ["train", "test"][i % 2], "class": "healthy", "path": rel,
                     "mask_path": ""})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder


@pytest.mark.parametrize("edit, says", [
    (lambda m: m.drop(columns="split"), "['split'] missing"),
    (lambda m: m.assign(split=["train", "tset", "train", "test"]), "split 'tset'"),
    (lambda m: m.assign(path=["train/healthy/gone.png"] + list(m["path"][1:])), "gone.png is listed but missing"),
    (lambda m: m.assign(path=["../../outside.png"] + list(m["path"][1:])), "outside.png: listed path outside"),
    (lambda m: m.assign(path=["/etc/hostname"] + list(m["path"][1:])), "/etc/hostname: listed path outside"),
])
def test_hand_edited_manifest_is_one_error_naming_the_problem(tmp_path, edit, says):
    folder = _slices(tmp_path)
    edit(pd.read_csv(folder / "manifest.csv")).to_csv(folder / "manifest.csv", index=False)
    with pytest.raises(DataError, match="manifest.csv") as caught:
        load_manifest(folder)
    assert says in str(caught.value) and "medgan prepare" in str(caught.value)


def test_unreadable_or_odd_sized_slice_is_named(tmp_path):
    folder = _slices(tmp_path)
    manifest = load_manifest(folder)
    victim = folder / manifest["path"][1]
    Image.fromarray(np.zeros((9, 8), np.uint8)).save(victim)
    with pytest.raises(DataError, match=f"{victim.name}: 8×9 pixels"):
        load_images(folder, manifest)
    victim.write_bytes(b"png? no")
    with pytest.raises(DataError, match=f"{victim.name}: unreadable image"):
        load_images(folder, manifest)


def test_samples_csv_listing_missing_files_is_one_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    folder = paths.path(paths.SAMPLES, experiment="e")
    (folder / "healthy").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "healthy" / "00000.png")
    rows = [{"path": f"healthy/{i:05d}.png", "class": "healthy", "kind": "fake", "pair": ""} for i in range(3)]
    pd.DataFrame(rows).to_csv(folder / "samples.csv", index=False)
    with pytest.raises(DataError, match=r"samples\.csv: 2 listed file\(s\) missing .*00001\.png.*medgan sample e"):
        evaluate.samples_with_files("e")
    pd.DataFrame(rows).drop(columns="kind").to_csv(folder / "samples.csv", index=False)
    with pytest.raises(DataError, match=r"\['kind'\] missing"):
        evaluate.samples_with_files("e")
    (folder / "samples.csv").unlink()
    with pytest.raises(DataError, match="run `medgan sample e` first"):
        evaluate.samples_with_files("e")


def test_damaged_unit_list_is_named(tmp_path):
    path = tmp_path / "units.json"
    path.write_text('{"dataset": "x", "units": [')
    with pytest.raises(DataError, match="units.json: damaged unit list"):
        read_unit_list(path)
    with pytest.raises(DataError, match="--list-units"):
        read_unit_list(tmp_path / "absent.json")


def test_object_pickle_in_params_is_not_loaded(tmp_path, capsys):
    """params.yaml is read with yaml.safe_load: a !!python tag is a YAML error, not code."""
    marker = tmp_path / "pwned"
    path = tmp_path / "params.yaml"
    path.write_text(f"seed: !!python/object/apply:os.system ['touch {marker}']\n")
    assert cli.main(["summarize", "--params", str(path)]) == 2
    assert not marker.exists() and "not valid YAML" in capsys.readouterr().err


def test_phantoms_never_replace_a_folder_given_with_out(tmp_path, monkeypatch, capsys):
    import yaml

    from conftest import TINY

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(TINY))
    real = tmp_path / "my_lits"
    real.mkdir()
    (real / "volume-0.nii").write_bytes(b"a patient")
    assert cli.main(["phantoms", "tiny", "--out", str(real)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert (real / "volume-0.nii").read_bytes() == b"a patient"


def test_network_size_error_is_a_user_error():
    from medgan import networks

    with pytest.raises(networks.SizeError, match="image_size"):
        networks.upsampling_steps(33, 33)


def test_summarize_names_a_missing_or_damaged_metrics_file(tmp_path, monkeypatch, capsys):
    import yaml

    from conftest import TINY

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(TINY))
    first = paths.path(paths.METRICS, experiment="tiny_dcgan_healthy")
    assert cli.main(["summarize"]) == 2
    assert f"{first} not found — run `medgan aggregate tiny_dcgan_healthy`" in capsys.readouterr().err
    first.parent.mkdir(parents=True)
    first.write_text('{"experiment": ')
    assert cli.main(["summarize"]) == 2
    assert f"{first}: damaged JSON" in capsys.readouterr().err


def test_damaged_interim_rows_are_named(tmp_path):
    from medgan.ingest.writer import read_unit_rows

    (tmp_path / "rows.csv").write_bytes(b'a,b\n"1,2\n')
    with pytest.raises(DataError, match="rows.csv: damaged"):
        read_unit_rows(tmp_path)


def test_cuda_requested_without_a_gpu_is_a_user_error(monkeypatch):
    import torch

    from medgan import config, train

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(config.ConfigError, match="train.device is 'cuda'"):
        train.pick_device("cuda")
    assert train.pick_device("auto").type == "cpu"


def test_evaluate_of_a_model_fetched_without_its_training_log(prepared, project):
    """A model from a DVC remote or a colleague, alone: sampled and evaluated; the metrics JSON
    says there is no training record instead of a FileNotFoundError traceback."""
    import json

    name = "tiny_dcgan_tumour"
    prepared["evaluate"]["metrics"] = ["diversity"]
    (project / "params.yaml").write_text(__import__("yaml").safe_dump(prepared))
    assert cli.main(["train", name]) == 0
    for produced in (paths.TRAIN_LOG, paths.PROGRESS):
        paths.path(produced, experiment=name).unlink()
    assert cli.main(["sample", name]) == 0
    assert cli.main(["evaluate", name]) == 0
    result = json.loads(paths.path(paths.REPLICATE_METRICS, experiment=name).read_text())
    assert result["training"]["record"].startswith("none: ") and result["training"]["guard"] == []
    assert "value" in result["metrics"]["diversity_ratio"]


def test_samples_csv_listing_paths_outside_its_folder_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = paths.path(paths.SAMPLES, experiment="e")
    folder.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "elsewhere.png")
    rows = [{"path": p, "class": "healthy", "kind": "fake", "pair": ""} for p in ("../../../elsewhere.png",
                                                                                   str(tmp_path / "elsewhere.png"))]
    pd.DataFrame(rows).to_csv(folder / "samples.csv", index=False)
    with pytest.raises(DataError, match=r"samples\.csv: 2 listed path\(s\) outside"):
        evaluate.samples_with_files("e")


@pytest.mark.parametrize("content", [b"not an image", "bomb"])
def test_a_damaged_or_oversized_sample_image_is_named(tmp_path, content):
    from medgan.errors import MedganError

    path = tmp_path / "00000.png"
    if content == "bomb":
        from test_ingest_bad_input import _png_declaring

        _png_declaring(path, 30000, 30000)
    else:
        path.write_bytes(content)
    with pytest.raises(MedganError, match=f"{path}: not a readable image"):
        common.load_gray([str(path)], (8, 8))


def test_phantoms_replace_only_a_folder_they_made(tmp_path, monkeypatch, capsys):
    """data/raw/NAME holding a user's own files (copied there by hand) is never replaced by a
    direct `medgan phantoms NAME`; the phantoms' own folder (marked) is."""
    import yaml

    from conftest import TINY
    from medgan import phantoms

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(TINY))
    raw = paths.path(paths.RAW, name="tiny")
    raw.mkdir(parents=True)
    (raw / "volume-0.nii").write_bytes(b"a patient")
    assert cli.main(["phantoms", "tiny"]) == 2
    assert "not made by `medgan phantoms`" in capsys.readouterr().err
    assert (raw / "volume-0.nii").read_bytes() == b"a patient"
    (raw / "volume-0.nii").unlink()
    assert cli.main(["phantoms", "tiny"]) == 0 and (raw / phantoms.MARKER).is_file()
    assert cli.main(["phantoms", "tiny"]) == 0  # its own output: regenerated
