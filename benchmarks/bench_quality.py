"""Quality at an equal training wall-clock budget: the DDPM baseline vs the best GAN vs real-vs-real.

Both arms learn the LiTS phantom tumour slices of params.yaml + configs/zoo.yaml (64x64, the
zoo's settings: `lits_dcgan_small_data_tumour` = DCGAN + DiffAugment + EMA + spectral norm,
`lits_ddpm_tumour` = MONAI DDPM). Each arm trains until the wall-clock budget is spent (the
same threads; the table gives the measured time and the iterations it bought). Then N samples each (a DDPM by
DDIM at each of --ddim-steps: quality vs sampling time, which chose sample.ddim_steps), and
medgan's own evaluate (KID, FRD, precision/recall, memorisation share) against the held-out
tumour slices; the baseline row is real vs real (two patient-disjoint halves).

    python benchmarks/bench_quality.py                       # 240 s per arm (~20 min in all on 2 cores)
    python benchmarks/bench_quality.py --budget-s 1200 --ddim-steps 25 50 100
    python benchmarks/bench_quality.py --smoke               # seconds per arm: checks the script runs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from medgan import config, evaluate, paths, phantoms, prepare, sample, train, variants

REPO = Path(__file__).resolve().parents[1]
DATASET, CLASS = "lits_phantom", "tumour"
ARMS = {"best GAN (DCGAN small-data)": "lits_dcgan_small_data_tumour", "DDPM (MONAI, DDIM)": "lits_ddpm_tumour"}
METRICS = ["kid", "frd", "prdc", "memorisation"]
COLUMNS = {"kid": "KID", "frd": "FRD", "prdc_precision": "precision", "prdc_recall": "recall",
           "memorisation_share_pixel": "memorised (pixel)", "memorisation_share_feature": "memorised (feature)"}


def deep_merged(base: dict, over: dict) -> dict:
    """What Snakemake's --configfile does to params.yaml."""
    out = dict(base)
    for key, value in over.items():
        nested = isinstance(value, dict) and isinstance(base.get(key), dict)
        out[key] = deep_merged(base[key], value) if nested else value
    return out


def bench_params(n: int, bootstrap: int) -> dict:
    raw = deep_merged(yaml.safe_load((REPO / "params.yaml").read_text()),
                      yaml.safe_load((REPO / "configs" / "zoo.yaml").read_text()))
    raw["phantoms"] = {DATASET: raw["phantoms"][DATASET]}
    raw["datasets"] = {DATASET: raw["datasets"][DATASET]}
    raw["experiments"] = {name: raw["experiments"][name] for name in ARMS.values()}
    raw["sample"].update(n=n)
    raw["evaluate"].update(metrics=METRICS, bootstrap=bootstrap)
    return config.validate(raw)


def with_iterations(params: dict, name: str, iterations: int) -> dict:
    params = json.loads(json.dumps(params))
    exp = params["experiments"][name]
    exp["train"] = {**exp.get("train", {}), "iterations": iterations, "epochs": None,
                    "checkpoint_every": iterations, "progress_every": iterations}  # a DDPM grid costs DDIM
    return params


def train_for(params: dict, name: str, seconds: float) -> tuple[int, float]:
    """Train `name` for a wall-clock budget (the step that crosses it is the last); write its
    model as `medgan train` does. (iterations, seconds) — the budget is time, so under a
    shared machine's load the iteration count varies between runs."""
    trainer = train.Trainer(with_iterations(params, name, 10**9), name)
    for net in trainer.family.networks.values():
        net.train()
    with trainer.run_settings():  # as Trainer.run trains (threads, subnormal flushing on CPU)
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            trainer.train_step()
            trainer.step += 1
        elapsed = time.perf_counter() - started
        trainer.total = trainer.step
        trainer.snapshot()
        trainer.write_outputs()
    return trainer.step, elapsed


def write_samples(params: dict, name: str, images: torch.Tensor) -> None:
    """The samples contract of medgan.sample (fakes + samples.csv), without interpolation strips."""
    folder = paths.path(paths.SAMPLES, experiment=name)
    shutil.rmtree(folder, ignore_errors=True)
    rows = sample.write_fakes(folder, images, CLASS)
    pd.DataFrame(rows).to_csv(folder / "samples.csv", index=False)


def generated(params: dict, name: str) -> tuple[torch.Tensor, float]:
    """N images from the trained model and the sampling speed (images/s, generation only)."""
    G, model = train.load_generator(paths.path(paths.MODEL, experiment=name))
    G = variants.for_sampling(G, model, params["sample"], params["seed"])
    started = time.perf_counter()
    images = sample.generate(G, params["sample"]["n"], params["seed"])
    return images, len(images) / (time.perf_counter() - started)


def cells(metrics: dict) -> dict:
    out = {}
    for key, label in COLUMNS.items():
        entry = metrics.get(key, {})
        out[label] = "skipped" if "skipped" in entry else f"{entry['value']:.3g}" if "value" in entry else "-"
    return out


def run(args) -> list[dict]:
    params = bench_params(args.n, args.bootstrap)
    torch.set_num_threads(params["resources"]["train"]["threads"])
    phantoms.generate("lits", paths.path(paths.RAW, name=DATASET), params["phantoms"][DATASET], params["seed"])
    prepare.prepare_dataset(DATASET, params["datasets"][DATASET], paths.path(paths.SLICES, dataset=DATASET),
                            params["seed"])
    rows = []
    for arm, name in ARMS.items():
        iterations, seconds = train_for(params, name, args.budget_s)
        arm_params = with_iterations(params, name, iterations)
        family = variants.VARIANTS[arm_params["experiments"][name]["variant"]].family
        for steps in (args.ddim_steps if family == "diffusion" else [None]):
            if steps is not None:
                arm_params["sample"]["ddim_steps"] = steps
            images, speed = generated(arm_params, name)
            write_samples(arm_params, name, images)
            metrics = evaluate.evaluate(arm_params, name)["metrics"]
            rows.append({"arm": arm + (f", {steps} DDIM steps" if steps else ""), "train s": round(seconds),
                         "iterations": iterations, **cells(metrics), "images/s": f"{speed:.1f}"})
            print(rows[-1], flush=True)
    floor = evaluate.baseline(params, DATASET)["classes"][CLASS]
    rows.append({"arm": f"real vs real ({floor.get('halves', '')})", "train s": "", "iterations": "",
                 **cells(floor.get("metrics", {})), "images/s": ""})
    return rows


def machine() -> str:
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} CPU cores, torch {torch.__version__}, threads {torch.get_num_threads()}; uptime: {load}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-s", type=float, default=240, help="training wall-clock per arm (s)")
    parser.add_argument("--n", type=int, default=64, help="samples per arm")
    parser.add_argument("--ddim-steps", type=int, nargs="+", default=[10, 25, 50])
    parser.add_argument("--bootstrap", type=int, default=20)
    parser.add_argument("--workdir", type=Path, help="keep data and results here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, help="also write the table (Markdown) and rows (JSON) here, stem only")
    parser.add_argument("--smoke", action="store_true", help="tiny budget and n: checks that the script runs")
    args = parser.parse_args()
    if args.smoke:
        args.budget_s, args.n, args.ddim_steps, args.bootstrap = 5, 8, [3], 0
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_quality_"))
    workdir.mkdir(parents=True, exist_ok=True)
    out = args.out.resolve() if args.out else None
    before = machine()
    os.chdir(workdir)
    rows = run(args)
    table = pd.DataFrame(rows).to_markdown(index=False)
    header = (f"Equal training wall-clock: {args.budget_s:.0f} s per arm, {args.n} samples, LiTS phantom "
              f"tumour slices 64x64.\nBefore: {before}\nAfter: {machine()}\n")
    print("\n" + header + "\n" + table)
    if out:
        out.with_suffix(".md").write_text(header + "\n" + table + "\n")
        out.with_suffix(".json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                        "before": before, "rows": rows}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
