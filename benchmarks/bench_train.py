"""Training throughput: medgan's engine vs a plain reference loop, same networks, same batch.

The reference is written here in the style of the PyTorch examples' DCGAN (and pix2pix-official
for pix2pix): a Dataset that decodes PNGs with PIL on every access, a DataLoader with 2 workers,
fp32, channels-first, and a G step that also computes (unused) D gradients. The engine is
medgan.train.Trainer with its defaults (images decoded once and served from memory, no D
gradients in the G step, channels_last, bf16 autocast on a GPU or a CPU with bf16
instructions), DiffAugment and flips off in both so that the work is the same. BENCH_CL=0 and
BENCH_PRECISION=fp32 switch engine features off to see what each brings. Rounds alternate between the two so that a machine-load
drift hits both; the median step time is reported.

    python benchmarks/bench_train.py                 # all three configurations
    python benchmarks/bench_train.py --only dcgan-64 --rounds 5 --steps 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from medgan import config, paths, variants
from medgan.train import Trainer

CONFIGS = {
    "dcgan-64": {"variant": "dcgan", "size": 64, "batch": 64, "hp": {"ngf": 64, "ndf": 64}},
    "dcgan-128": {"variant": "dcgan", "size": 128, "batch": 64, "hp": {"ngf": 64, "ndf": 64}},
    "pix2pix-128": {"variant": "pix2pix", "size": 128, "batch": 8, "hp": {"ngf": 64, "ndf": 64}},
}


def write_dataset(root: Path, size: int, n: int = 256) -> None:
    """n PNG slices (and label masks) of phantom-like content in the medgan slice layout."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size] / size
    rows = []
    for i in range(n):
        body = ((yy - 0.5) / 0.32) ** 2 + ((xx - 0.5) / 0.42) ** 2 < 1
        organ = ((yy - 0.45) / 0.18) ** 2 + ((xx - 0.33 + rng.uniform(-.03, .03)) / 0.15) ** 2 < 1
        image = np.clip(20 + 80 * body + 60 * organ + rng.normal(0, 6, body.shape), 0, 255).astype(np.uint8)
        mask = (body & organ).astype(np.uint8)
        rel, rel_mask = f"train/all/{i:04d}.png", f"masks/train/all/{i:04d}.png"
        for path, array in ((rel, image), (rel_mask, mask)):
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(root / path)
        rows.append({"case": str(i), "split": "train", "class": "all", "path": rel, "mask_path": rel_mask})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)


# -- the reference ---------------------------------------------------------------------------

class PngDataset(Dataset):
    def __init__(self, root: Path, paired: bool):
        self.root, self.paired = root, paired
        self.rows = pd.read_csv(root / "manifest.csv")

    def __len__(self):
        return len(self.rows)

    def load(self, rel: str, scale: float) -> torch.Tensor:
        array = np.asarray(Image.open(self.root / rel).convert("L"), np.float32)
        return torch.from_numpy(array)[None] * (2.0 / scale) - 1.0

    def __getitem__(self, i):
        row = self.rows.iloc[i]
        image = self.load(row["path"], 255.0)
        return (self.load(row["mask_path"], 1.0), image) if self.paired else image


def reference_step_fn(spec: dict, root: Path, G, D):
    paired = spec["variant"] == "pix2pix"
    loader = DataLoader(PngDataset(root, paired), batch_size=spec["batch"], shuffle=True, num_workers=2,
                        drop_last=True, persistent_workers=True)
    batches = iter(loader)
    opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    bce = torch.nn.BCEWithLogitsLoss()

    def next_batch():
        nonlocal batches
        try:
            return next(batches)
        except StopIteration:
            batches = iter(loader)
            return next(batches)

    def step():
        batch = next_batch()
        if paired:
            mask, real = batch
            fake = G(mask)
            d_real, d_fake = D(torch.cat([mask, real], 1)), D(torch.cat([mask, fake.detach()], 1))
        else:
            real = batch
            fake = G(torch.randn(len(real), 100))
            d_real, d_fake = D(real), D(fake.detach())
        opt_d.zero_grad()
        (bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))).backward()
        opt_d.step()
        opt_g.zero_grad()
        out = D(torch.cat([mask, fake], 1)) if paired else D(fake)
        loss = bce(out, torch.ones_like(out)) + (100 * F.l1_loss(fake, real) if paired else 0)
        loss.backward()
        opt_g.step()

    return step


# -- the engine ------------------------------------------------------------------------------

def engine_trainer(spec: dict, project: Path) -> Trainer:
    hp = {"z_dim": 100, **spec["hp"]} if spec["variant"] != "pix2pix" else dict(spec["hp"])
    raw = {"seed": 0,
           "datasets": {"bench": {"kind": "volumes", "raw": "unused", "classes": ["all"],
                                  "image_size": [spec["size"], spec["size"]]}},
           "variants": {spec["variant"]: hp},
           "experiments": {"bench": {"dataset": "bench", "variant": spec["variant"], "class": "all"}},
           "train": {"batch_size": spec["batch"], "diffaugment": [], "hflip": False, "iterations": 10**6,
                     "channels_last": os.environ.get("BENCH_CL", "1") == "1",
                     "precision": os.environ.get("BENCH_PRECISION", "auto")},
           "resources": {"train": {"threads": torch.get_num_threads()}}}
    os.chdir(project)
    return Trainer(config.validate(raw), "bench")


def time_steps(step, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n


def run(name: str, spec: dict, rounds: int, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        root = paths.path(paths.SLICES, dataset="bench")
        write_dataset(project / root, spec["size"])
        trainer = engine_trainer(spec, project)
        G, D = variants.build(spec["variant"], (spec["size"], spec["size"]), trainer.hp, 1)
        reference = reference_step_fn(spec, project / root, G, D)
        engine = trainer.train_step
        with trainer.run_settings():  # as Trainer.run trains (threads, subnormal flushing on CPU)
            reference(), engine()  # warm-up: allocator, oneDNN kernels, worker start
            times = {"reference": [], "engine": []}
            for _ in range(rounds):
                times["reference"].append(time_steps(reference, steps))
                times["engine"].append(time_steps(engine, steps))
    ref, eng = statistics.median(times["reference"]), statistics.median(times["engine"])
    return {"config": name, "batch": spec["batch"], "reference_img_s": spec["batch"] / ref,
            "engine_img_s": spec["batch"] / eng, "ratio": ref / eng}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=list(CONFIGS), action="append")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    for name in args.only or CONFIGS:
        r = run(name, CONFIGS[name], args.rounds, args.steps)
        print(f"{r['config']:12s} batch {r['batch']:3d}  reference {r['reference_img_s']:8.1f} img/s  "
              f"engine {r['engine_img_s']:8.1f} img/s  ratio {r['ratio']:.2f}x", flush=True)


if __name__ == "__main__":
    sys.exit(main())
