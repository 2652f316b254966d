"""Part (d) of benchmarks/gpu_check.sh: one experiment of configs/lits_gpu.yaml trained for a
fixed wall-clock time on phantom data, at full size, with the engine's own step, then one
checkpoint written and resumed from. Prints the steady speed and checks the config's Slurm
`resources.train.runtime` against the projected time of the experiment's budget.

    python benchmarks/lits_gpu_run.py prepare WORK [--experiment lits256_pix2pix] [--cases 8]
    python benchmarks/lits_gpu_run.py train WORK [--experiment lits256_pix2pix] [--seconds 120]

`prepare` writes WORK/params.yaml (params.yaml with configs/lits_gpu.yaml merged over it, as
Snakemake's --configfile does) and the experiment's slices: LiTS phantom volumes through
`medgan phantoms` + `medgan prepare` where SimpleITK is installed, else phantom-like slices
written straight into the slice layout (a GPU machine without SimpleITK: benchmarks/gpu_wheels.sh).
`medgan train` has no wall-clock budget (its budget is iterations or epochs, so that a run is
reproducible), hence the time-limited loop here.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "lits_gpu.yaml"
PHANTOM = "lits_gpu_phantom"
RUNTIME_MARGIN = 1.25  # the Slurm runtime must cover the projected time with this margin


def deep_merged(base: dict, over: dict) -> dict:
    """What Snakemake's --configfile does to params.yaml (snakemake may not be installed here)."""
    out = dict(base)
    for key, value in over.items():
        out[key] = deep_merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def merged_params() -> dict:
    return deep_merged(yaml.safe_load((REPO / "params.yaml").read_text()), yaml.safe_load(CONFIG.read_text()))


# -- data ---------------------------------------------------------------------------------------

def write_phantom_slices(root: Path, size: int, cases: int = 10, per_case: int = 40) -> None:
    """Phantom-like abdominal slices with label maps (0 background, 1 liver, 2 tumour) in the slice
    layout, split by case 60/20/20; for machines without SimpleITK (no volume can be read)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size] / size
    splits = ["train"] * round(cases * 0.6) + ["val"] * round(cases * 0.2)
    splits += ["test"] * (cases - len(splits))
    rows = []
    for case, split in enumerate(splits):
        for k in range(per_case):
            body = ((yy - 0.5) / 0.34) ** 2 + ((xx - 0.5) / 0.44) ** 2 < 1
            cy, cx = 0.45 + rng.uniform(-.03, .03), 0.33 + rng.uniform(-.03, .03)
            liver = ((yy - cy) / 0.16) ** 2 + ((xx - cx) / 0.14) ** 2 < 1
            tumour = k % 2 == 1
            lesion = (((yy - cy - 0.03) / 0.04) ** 2 + ((xx - cx) / 0.035) ** 2 < 1) & tumour
            mask = (liver & body).astype(np.uint8) + lesion.astype(np.uint8)
            image = np.clip(20 + 80 * body + 60 * liver - 50 * lesion + rng.normal(0, 6, body.shape), 0, 255)
            cls = "tumour" if tumour else "healthy"
            rel, rel_mask = f"{split}/{cls}/{case}_{k:04d}.png", f"masks/{split}/{cls}/{case}_{k:04d}.png"
            for path, array in ((rel, image.astype(np.uint8)), (rel_mask, mask)):
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(root / path, compress_level=1)
            rows.append({"dataset": root.name, "case": str(case), "split": split, "class": cls, "path": rel,
                         "mask_path": rel_mask, "window_low": -100, "window_high": 400})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)


def prepare(work: Path, experiment: str, cases: int) -> None:
    from medgan import config, paths

    raw = merged_params()
    raw["phantoms"][PHANTOM]["n_cases"] = cases
    params = config.validate(raw, str(CONFIG))
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)
    Path("params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    name = params["experiments"][experiment]["dataset"]
    dataset = params["datasets"][name]
    slices = paths.path(paths.SLICES, dataset=name)
    started = time.perf_counter()
    if importlib.util.find_spec("SimpleITK") is not None:
        from medgan import phantoms, prepare as prep

        phantoms.generate("lits", dataset["raw"], params["phantoms"][PHANTOM], params["seed"])
        prep.prepare_dataset(name, dataset, slices, params["seed"])
        source = f"{cases} LiTS phantom volumes through medgan phantoms + prepare"
    else:
        write_phantom_slices(slices, dataset["image_size"][0])
        source = "phantom-like slices written directly (no SimpleITK here)"
    counts = pd.read_csv(slices / "manifest.csv").groupby(["split", "class"]).size().to_dict()
    print(f"prepared {name} in {time.perf_counter() - started:.0f} s: {source}; "
          + ", ".join(f"{s}/{c} {n}" for (s, c), n in counts.items()))


# -- time-limited training -----------------------------------------------------------------------

def steady_rate(stamps: list[float]) -> float:
    """Steps per second over the last three quarters of the steps (after compilation and warm-up)."""
    first = max(1, len(stamps) // 4)
    if len(stamps) - first < 2:
        return float("nan")
    return (len(stamps) - 1 - first) / (stamps[-1] - stamps[first])


def train_for(work: Path, experiment: str, seconds: float) -> dict:
    import torch

    from medgan import config, paths, train

    os.chdir(work)
    params = config.load("params.yaml")
    trainer = train.Trainer(params, experiment)
    for net in trainer.family.networks.values():
        net.train()
    started = time.perf_counter()
    compile_error = None
    try:
        metrics = trainer.train_step()  # compiles when train.compile is on
    except Exception as err:  # noqa: BLE001 — reported; the run goes on without torch.compile
        if not trainer.train_cfg["compile"]:
            raise
        compile_error = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        print(f"torch.compile failed ({compile_error}); training on without it")
        params["experiments"][experiment].setdefault("train", {})["compile"] = False
        trainer = train.Trainer(params, experiment)
        for net in trainer.family.networks.values():
            net.train()
        started = time.perf_counter()
        metrics = trainer.train_step()
    trainer.step += 1
    stamps = [time.perf_counter()]
    first_step_s = stamps[0] - started
    while stamps[-1] - started < seconds:
        metrics = trainer.train_step()  # .item() of the losses: each step ends synchronised
        trainer.step += 1
        stamps.append(time.perf_counter())
    finite = all(math.isfinite(metrics[k]) for k in trainer.family.loss_keys)
    rate = steady_rate(stamps)

    saved = time.perf_counter()
    trainer.save_checkpoint()
    checkpoint_s = time.perf_counter() - saved
    checkpoint = paths.path(paths.CHECKPOINTS, experiment=experiment) / "last.pt"
    loaded = time.perf_counter()
    fresh = train.Trainer(params, experiment)
    resumed = fresh.try_resume() and fresh.step == trainer.step
    resume_s = time.perf_counter() - loaded

    settings = trainer.settings
    total = train.total_steps(settings, len(trainer.data))
    projected_s = first_step_s + total / rate + (total // settings["train"]["checkpoint_every"]) * checkpoint_s
    runtime_min = params["resources"]["train"]["runtime"]
    return {
        "experiment": experiment, "image_size": settings["image_size"], "variant": settings["experiment"]["variant"],
        "batch_size": settings["train"]["batch_size"],
        "compile": f"failed: {compile_error}" if compile_error else settings["train"]["compile"],
        "precision": "bf16" if train.uses_bf16(settings["train"]["precision"], trainer.device) else "fp32",
        "device": torch.cuda.get_device_name(0) if trainer.device.type == "cuda" else "cpu",
        "torch": torch.__version__, "cuda": torch.version.cuda or "none",
        "seconds": round(stamps[-1] - started, 1), "steps": trainer.step, "first_step_s": round(first_step_s, 1),
        "steady_it_s": round(rate, 2), "steady_img_s": round(rate * settings["train"]["batch_size"], 1),
        "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if trainer.device.type == "cuda" else None,
        "losses_finite": finite, "checkpoint_mb": round(checkpoint.stat().st_size / 1e6, 1),
        "checkpoint_s": round(checkpoint_s, 2), "resumed": bool(resumed), "resume_s": round(resume_s, 2),
        "budget_steps": total, "projected_min": round(projected_s / 60, 1), "slurm_runtime_min": runtime_min,
        "runtime_ok": runtime_min * 60 >= RUNTIME_MARGIN * projected_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["prepare", "train"])
    parser.add_argument("work", type=Path, help="scratch folder (a project root)")
    parser.add_argument("--experiment", default="lits256_pix2pix")
    parser.add_argument("--cases", type=int, default=8, help="phantom cases (prepare)")
    parser.add_argument("--seconds", type=float, default=120.0, help="training wall-clock time (train)")
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(args.work.resolve(), args.experiment, args.cases)
        return 0
    r = train_for(args.work.resolve(), args.experiment, args.seconds)
    print(f"{r['experiment']} ({r['variant']} {r['image_size'][0]}x{r['image_size'][1]}, batch {r['batch_size']}, "
          f"{r['precision']}, compile {r['compile']}) on {r['device']}: {r['steps']} steps in {r['seconds']} s, "
          f"first step {r['first_step_s']} s, steady {r['steady_it_s']} it/s = {r['steady_img_s']} img/s, "
          f"peak GPU memory {r['peak_gpu_gib']} GiB")
    print(f"checkpoint {r['checkpoint_mb']} MB written in {r['checkpoint_s']} s, resumed: {r['resumed']} "
          f"({r['resume_s']} s); budget {r['budget_steps']} steps -> projected {r['projected_min']} min vs Slurm "
          f"runtime {r['slurm_runtime_min']} min: {'OK' if r['runtime_ok'] else 'TOO SHORT'}")
    print("RESULT " + json.dumps(r))
    return 0 if r["losses_finite"] and r["resumed"] else 1


if __name__ == "__main__":
    sys.exit(main())
