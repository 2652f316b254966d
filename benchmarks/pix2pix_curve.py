"""Held-out SSIM of a paired experiment against training steps (to choose a demo budget).

    python benchmarks/pix2pix_curve.py [--experiment lits_pix2pix] [--steps 250 500 1000 2000]

Trains the experiment of params.yaml (its data must be prepared: `medgan phantoms` + `medgan
prepare`) once up to the largest step count, in memory (nothing is written); at each listed step
it renders every held-out pair as `medgan sample` does (test-time dropout per sample.dropout) and
prints mean SSIM over pairs, the per-patient means and the elapsed training time. One CSV line
per point goes to stdout.
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import numpy as np
import torch
from skimage.metrics import structural_similarity


def held_out(params: dict, name: str):
    from medgan import paths
    from medgan.prepare import load_images, load_manifest
    from medgan.image_io import load_masks

    exp = params["experiments"][name]
    slices = paths.path(paths.SLICES, dataset=exp["dataset"])
    manifest = load_manifest(slices)
    rows = manifest[manifest["split"] == "test"]
    return (torch.from_numpy(load_images(slices, rows)).unsqueeze(1), load_masks(slices, rows),
            rows["case"].astype(str).to_numpy())


def score(trainer, reals, masks, cases, params) -> tuple[float, dict]:
    from medgan import sample

    G = copy.deepcopy(trainer.G)
    sample.set_test_time_dropout(G, params["sample"]["dropout"])
    model = {"variant": trainer.exp["variant"], "hp": trainer.hp, "labels": trainer.settings["labels"]}
    with torch.random.fork_rng(), torch.no_grad():  # scoring must not change training's dropout draws
        torch.manual_seed(params["seed"])
        fakes, _ = sample.render_pairs(G, model, reals, masks, params["seed"])
    ssim = np.array([structural_similarity(r[0].numpy() / 255.0, f[0].numpy() / 255.0, data_range=1.0)
                     for r, f in zip(reals, fakes)])
    return float(ssim.mean()), {c: round(float(ssim[cases == c].mean()), 4) for c in np.unique(cases)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", default="lits_pix2pix")
    parser.add_argument("--steps", type=int, nargs="+", default=[250, 500, 1000, 2000])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--lr-schedule", choices=["constant", "linear"], help="override train.lr_schedule")
    args = parser.parse_args()

    from medgan import config, train

    params = config.load(args.params)
    params["experiments"][args.experiment].setdefault("train", {})["iterations"] = max(args.steps)
    params["experiments"][args.experiment]["train"]["checkpoint_every"] = max(args.steps) + 1
    if args.lr_schedule:  # the decay then ends at the largest step count
        params["experiments"][args.experiment]["train"]["lr_schedule"] = args.lr_schedule
    reals, masks, cases = held_out(params, args.experiment)
    trainer = train.Trainer(params, args.experiment)
    trainer.G.train()
    trainer.family.D.train()
    print(f"# {args.experiment}: {len(reals)} held-out pairs, {len(np.unique(cases))} patients, "
          f"lr_schedule {trainer.train_cfg['lr_schedule']}, diffaugment {trainer.train_cfg['diffaugment']}, "
          f"threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}")
    print("step,ssim,per_patient,train_seconds")
    elapsed, done = 0.0, 0
    for target in sorted(args.steps):
        start = time.perf_counter()
        while done < target:
            trainer.train_step()
            done += 1
            trainer.step = done
        elapsed += time.perf_counter() - start
        mean, per_patient = score(trainer, reals, masks, cases, params)
        trainer.G.train()
        print(f"{target},{mean:.4f},\"{per_patient}\",{elapsed:.0f}", flush=True)


if __name__ == "__main__":
    main()
