"""Provenance blocks beside every result, rounded metric files, and what DVC makes of both."""

import hashlib
import json
import subprocess

import pytest
import torch
import yaml

from conftest import BIN, TINY, run_env, tiny_params
from medgan import cli, config, paths, provenance, results, summary

STAGES = [["phantoms", "tiny"], ["prepare", "tiny"], ["train", "tiny_dcgan_tumour"],
          ["sample", "tiny_dcgan_tumour"], ["evaluate", "tiny_dcgan_tumour"], ["aggregate", "tiny_dcgan_tumour"],
          ["baseline", "tiny"], ["summarize"]]
# every metric behind a headline column (summary.HEADLINE); paired SSIM is skipped for a DCGAN
REPRO_METRICS = ["fid", "kid", "frd", "relative", "prdc", "diversity", "memorisation", "utility", "paired"]


def test_rounded_keeps_six_significant_digits_and_leaves_other_values_alone():
    data = {"value": 2.2936697455769644e+18, "ci": [0.123456789, -1.0000004], "n": 40, "ok": True,
            "why": "text", "inf": float("inf"), "none": None, "small": 1.23456789e-9}
    out = results.rounded(data)
    assert out == {"value": 2.29367e+18, "ci": [0.123457, -1.0], "n": 40, "ok": True, "why": "text",
                   "inf": float("inf"), "none": None, "small": 1.23457e-09}
    assert type(out["n"]) is int and out["ok"] is True
    assert results.rounded(2.2936697455769638e+18) == out["value"]  # the two fresh clones' FRDs agree


def test_block_names_versions_device_and_a_params_hash_that_follows_the_stage_slice(params):
    block = provenance.collect("evaluate", params, "tiny_dcgan_tumour", feature_weights={})
    assert block["medgan"] == "0.1.0" and block["stage"] == "evaluate"
    assert block["packages"]["torch"] == torch.__version__.split("+")[0]
    for name in ("numpy", "scipy", "scikit-image", "pyradiomics-bhklab", "frd-score", "prdc", "pandas", "onnxruntime"):
        assert block["packages"][name][0].isdigit(), name
    assert {"cpu", "cpu_bf16", "gpu", "cuda", "cudnn", "deterministic_algorithms", "torch_threads"} <= set(block["device"])
    changed = config.validate({**params, "evaluate": {**params["evaluate"], "bootstrap": 7}})
    assert provenance.collect("baseline", changed, "tiny")["params_sha256"] != block["params_sha256"]
    assert provenance.collect("baseline", params, "tiny")["params_sha256"] == block["params_sha256"]
    train = provenance.collect("train", changed, "tiny_dcgan_tumour")["params_sha256"]
    assert train == provenance.collect("train", params, "tiny_dcgan_tumour")["params_sha256"]


def test_cpu_model_and_bf16_come_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\ncpu family\t: 6\nmodel\t\t: 143\nmodel name\t: Test CPU 9000\n"
                    "stepping\t: 8\nflags\t\t: fpu sse avx512_bf16\n\nprocessor\t: 1\nmodel name\t: Other\n")
    assert provenance.cpu_info(info) == {"cpu": "Test CPU 9000", "cpu_id": "family 6 model 143 stepping 8",
                                         "cpu_bf16": True}
    info.write_text("model name\t: Old CPU\nflags\t\t: fpu sse avx2\n")
    assert provenance.cpu_info(info) == {"cpu": "Old CPU", "cpu_id": "unknown", "cpu_bf16": False}


def git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_dirty_means_changed_source_not_rewritten_results(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "code.py").write_text("a = 1\n")
    (tmp_path / "results" / "m.json").write_text("{}\n")
    git("init", "-q", cwd=tmp_path)
    git("add", "-A", cwd=tmp_path)
    git("commit", "-qm", "one", cwd=tmp_path)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert provenance.git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "results" / "m.json").write_text('{"a": 1}\n')
    assert provenance.git_state(tmp_path)["dirty"] is False
    (tmp_path / "code.py").write_text("a = 2\n")
    assert provenance.git_state(tmp_path) == {"commit": head, "dirty": True}
    assert provenance.git_state(tmp_path / "results").get("dirty") is True  # from a subfolder too
    assert provenance.git_state("/")["commit"].startswith("unknown")


def test_write_metrics_rounds_and_puts_the_block_in_a_named_sidecar(params):
    data = {"experiment": "tiny_dcgan_tumour", "metrics": {"fid": {"value": 1 / 3, "ci_low": 0.1234567891}}}
    weights = paths.path(paths.CACHE) / "w.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights")
    out = paths.path(paths.REPLICATE_METRICS, experiment="tiny_dcgan_tumour", replicate=2)
    written = results.write_metrics(out, data, params, "evaluate", "tiny_dcgan_tumour", replicate=2,
                                    feature_weights={"inception": weights})
    on_disk = json.loads(out.read_text())
    assert on_disk == written and on_disk["metrics"]["fid"] == {"value": 0.333333, "ci_low": 0.123457}
    assert on_disk["provenance"] == "results/provenance/evaluate/tiny_dcgan_tumour/r2.json"
    block = json.loads(open(on_disk["provenance"]).read())
    assert block["feature_networks"]["inception"] == {"file": "w.pt", "sha256": hashlib.sha256(b"weights").hexdigest()}
    assert block["stage"] == "evaluate" and block["target"] == "tiny_dcgan_tumour"


def test_evaluates_sidecar_records_the_sha256_of_the_inception_state_dict_it_loaded(params):
    from medgan import evaluate
    from medgan.metrics import inception
    from medgan.metrics.common import ImageSet, Inputs
    from medgan.metrics.features import FeatureStore

    state_dict = paths.path(paths.CACHE) / "pt_inception.pth"
    state_dict.parent.mkdir(parents=True)
    torch.save({"w": torch.arange(3.0)}, state_dict)
    settings = {"inception": "required", "inception_weights": str(state_dict)}
    inp = Inputs(real=ImageSet([]), fake=ImageSet([]), train=ImageSet([]), settings=settings, seed=0,
                 image_size=(8, 8))
    store = FeatureStore(inp)
    assert evaluate.inception_provenance([store]) == {}  # nothing resolved: nothing claimed
    assert store.inception_available() is None
    results.write_metrics(paths.path(paths.METRICS, experiment="tiny_dcgan_tumour"), {"metrics": {}}, params,
                          "evaluate", "tiny_dcgan_tumour", **evaluate.inception_provenance([store]))
    block = json.loads(paths.path(paths.EVALUATE_PROVENANCE, experiment="tiny_dcgan_tumour").read_text())
    loaded = block["inception_state_dict"]
    assert loaded["state_dict_sha256"] == inception.tensors_sha256(torch.load(state_dict, weights_only=True))
    assert loaded["state_dict"] == "pt_inception.pth" and loaded["origin"] == "pytorch-fid"


def test_dvc_metrics_diff_ignores_provenance_and_sees_a_real_change(project):
    """DVC compares every leaf of a metrics file, strings and booleans too (checked with dvc
    3.67): so the block lives in a sidecar, and a new commit alone leaves the diff empty."""
    params = config.load()
    dvc = [str(BIN / "dvc")]
    git("init", "-q", cwd=project)
    subprocess.run(dvc + ["init", "-q"], cwd=project, check=True, env=run_env())
    out = paths.path(paths.BASELINE, dataset="tiny")
    data = {"dataset": "tiny", "classes": {"tumour": {"metrics": {"fid": {"value": 12.3456789}}}}}
    results.write_metrics(out, data, params, "baseline", "tiny", feature_weights={})
    git("add", "-A", cwd=project)
    git("commit", "-qm", "one", cwd=project)
    (project / "workflow" / "note.txt").write_text("another commit\n")
    git("add", "-A", cwd=project)
    git("commit", "-qm", "two", cwd=project)
    data["classes"]["tumour"]["metrics"]["fid"]["value"] = 12.3456780001  # noise below 6 digits
    results.write_metrics(out, data, params, "baseline", "tiny", feature_weights={})
    sidecar = json.loads(paths.path(paths.BASELINE_PROVENANCE, dataset="tiny").read_text())
    assert sidecar["commit"] != subprocess.run(["git", "rev-parse", "HEAD~1"], cwd=project, capture_output=True,
                                               text=True).stdout.strip()
    diff = subprocess.run(dvc + ["metrics", "diff", "--json"], cwd=project, capture_output=True, text=True,
                          env=run_env(), check=True)
    assert json.loads(diff.stdout or "{}") in ({}, {"diff": {}})
    data["classes"]["tumour"]["metrics"]["fid"]["value"] = 12.4
    results.write_metrics(out, data, params, "baseline", "tiny", feature_weights={})
    diff = subprocess.run(dvc + ["metrics", "diff", "--json"], cwd=project, capture_output=True, text=True,
                          env=run_env(), check=True)
    assert "classes.tumour.metrics.fid.value" in diff.stdout and "provenance" not in diff.stdout


def run_tiny_pipeline(folder, monkeypatch) -> dict[str, bytes]:
    folder.mkdir()
    monkeypatch.chdir(folder)
    raw = tiny_params(evaluate={"metrics": REPRO_METRICS, "bootstrap": 20, "utility_epochs": 1},
                      experiments={"tiny_dcgan_tumour": TINY["experiments"]["tiny_dcgan_tumour"]})
    (folder / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    for stage in STAGES:
        assert cli.main(stage) == 0, stage
    files = [paths.path(paths.REPLICATE_METRICS, experiment="tiny_dcgan_tumour"),
             paths.path(paths.METRICS, experiment="tiny_dcgan_tumour"), paths.path(paths.BASELINE, dataset="tiny"),
             paths.path(paths.SUMMARY_MD)]
    return {f.as_posix(): f.read_bytes() for f in files}


def headline_values(metrics_file: bytes) -> dict[str, float]:
    """Every headline metric's value in a metrics file (summary.HEADLINE's entries)."""
    entries = json.loads(metrics_file)["metrics"]
    return {source: entries[source].get("value") for _, _, source in summary.HEADLINE}


@pytest.mark.slow
def test_a_tiny_pipeline_run_twice_in_fresh_folders_writes_identical_metric_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(config.PARAMS_ENV, raising=False)
    first = run_tiny_pipeline(tmp_path / "a", monkeypatch)
    model = torch.load(paths.path(paths.MODEL, experiment="tiny_dcgan_tumour"), weights_only=True)
    assert model["provenance"]["precision"] in ("fp32", "bf16 autocast") and model["provenance"]["stage"] == "train"
    block = json.loads(paths.path(paths.EVALUATE_PROVENANCE, experiment="tiny_dcgan_tumour", replicate=0).read_text())
    assert block["training"] == model["provenance"]
    second = run_tiny_pipeline(tmp_path / "b", monkeypatch)
    aggregate = paths.METRICS.format(experiment="tiny_dcgan_tumour")
    values = headline_values(first[aggregate])
    # every headline metric is compared, not only the cheap ones: each has a value (paired SSIM
    # needs a label map -> image experiment, so it must say why it has none)
    assert all(v is not None for k, v in values.items() if k != "paired_ssim_image"), values
    assert "skipped" in json.loads(first[aggregate])["metrics"]["paired_ssim_image"]
    assert headline_values(second[aggregate]) == values
    assert first == second  # byte for byte: replicate and aggregate files, baseline, summary.md (the verdict)
    # and the model file: DVC sees an unchanged md5 when a retrain gives the same generator
    model_file = paths.path(paths.MODEL, experiment="tiny_dcgan_tumour")
    assert (tmp_path / "a" / model_file).read_bytes() == (tmp_path / "b" / model_file).read_bytes()
    metrics = json.loads(first[paths.path(paths.REPLICATE_METRICS, experiment="tiny_dcgan_tumour").as_posix()])
    values = [e["value"] for e in metrics["metrics"].values() if "value" in e]
    assert values and all(len(f"{v:.15g}".lstrip("-0.").replace(".", "").rstrip("0")) <= 6 for v in values)


def test_summary_sidecar_holds_its_own_block_and_every_source_block(params):
    for name in params["experiments"]:
        results.write_metrics(paths.path(paths.REPLICATE_METRICS, experiment=name), {"experiment": name}, params,
                              "evaluate", name, feature_weights={}, training={"precision": "fp32"})
        results.write_metrics(paths.path(paths.METRICS, experiment=name), {"experiment": name}, params, "aggregate",
                              name, feature_weights={})
    paths.path(paths.BASELINE, dataset="tiny").parent.mkdir(parents=True, exist_ok=True)
    paths.path(paths.BASELINE, dataset="tiny").write_text('{"dataset": "tiny"}\n')  # written before provenance
    results.write_summary_provenance(params)
    summary = json.loads(paths.path(paths.PROVENANCE_SUMMARY).read_text())
    assert summary["stage"] == "summarize" and summary["packages"]["pandas"]
    sources = summary["sources"]
    assert sources["results/metrics/replicates/tiny_dcgan_healthy/r0.json"]["training"] == {"precision": "fp32"}
    assert sources["results/metrics/replicates/tiny_dcgan_tumour/r0.json"]["target"] == "tiny_dcgan_tumour"
    assert sources["results/metrics/experiments/tiny_dcgan_tumour.json"]["stage"] == "aggregate"
    assert sources["results/metrics/baselines/tiny.json"]["recorded"].startswith("no")


def test_one_thread_or_two_redraws_the_training_under_the_same_seed_and_settings(prepared):
    """Another reduction order (here: the thread count, resources.train.threads, which the CLI
    sets with torch.set_num_threads) changes the floating-point result of the same seed and
    settings: why one run cannot carry a verdict and seeds are the replicates. The params hash
    and seed (what a replicate is) stay the same; the provenance records the thread count."""
    from medgan import modelio, train

    name, weights, blocks = "tiny_dcgan_tumour", {}, {}
    for threads in (1, 2):
        resources = {**prepared["resources"], "train": {**prepared["resources"]["train"], "threads": threads}}
        train.train(config.validate({**prepared, "resources": resources}), name)
        model = torch.load(paths.path(paths.MODEL, experiment=name), weights_only=True)
        weights[threads], blocks[threads] = model["G"], model["provenance"]
        assert model["seed"] == prepared["seed"] and model["replicate"] == 0
        modelio.remove_checkpoints(paths.path(paths.CHECKPOINTS, experiment=name))
        paths.path(paths.MODEL, experiment=name).unlink()
    assert not all(torch.equal(weights[1][k], weights[2][k]) for k in weights[1])  # another draw
    assert all(torch.allclose(weights[1][k].float(), weights[2][k].float(), atol=1e-3) for k in weights[1])
    assert blocks[1]["params_sha256"] == blocks[2]["params_sha256"]
    assert (blocks[1]["device"]["torch_threads"], blocks[2]["device"]["torch_threads"]) == (1, 2)
