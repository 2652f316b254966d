"""Training throughput: medgan's engine vs a plain reference loop, same networks, same batch.

The reference is written here in the style of the PyTorch examples' DCGAN (and pix2pix-official
for pix2pix): a Dataset that decodes PNGs with PIL on every access, a DataLoader with 2 workers,
fp32, channels-first, and a G step that also computes (unused) D gradients; on a GPU it moves
each batch there, as the examples do. The engine is medgan.train.Trainer with its defaults
(images decoded once and served from memory, on the GPU when there is one, no D gradients in the
G step, channels_last, bf16 autocast on a GPU), plus `train.compile` on a GPU; DiffAugment and
flips off in both so that the work is the same. `--ablate` also runs the engine with bf16,
channels_last and compile each switched off once, so that each feature's share is visible
(`--no-bf16`, `--no-channels-last`, `--no-compile` switch them off in every engine run). Rounds
alternate between the runs so that a machine-load drift hits all of them; the median step time
is reported. The first steps of each run (`--warmup`, torch.compile's compilation among them) are
timed apart and not counted.

    python benchmarks/bench_train.py                 # the CPU configurations
    python benchmarks/bench_train.py --only dcgan-64 --rounds 5 --steps 4
    python benchmarks/bench_train.py --only dcgan-128-b128 --ablate --json out.jsonl   # on a GPU
"""

from __future__ import annotations

import argparse
import json
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
    # the GPU configurations (benchmarks/gpu_check.sh): full-width networks at full size
    "dcgan-128-b128": {"variant": "dcgan", "size": 128, "batch": 128, "hp": {"ngf": 64, "ndf": 64}},
    "pix2pix-256": {"variant": "pix2pix", "size": 256, "batch": 16, "hp": {"ngf": 64, "ndf": 64}},
}
CPU_CONFIGS = ["dcgan-64", "dcgan-128", "pix2pix-128"]
FEATURES = ("bf16", "channels_last", "compile")


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


def reference_step_fn(spec: dict, root: Path, G, D, device: torch.device):
    paired = spec["variant"] == "pix2pix"
    loader = DataLoader(PngDataset(root, paired), batch_size=spec["batch"], shuffle=True, num_workers=2,
                        drop_last=True, persistent_workers=True)
    batches = iter(loader)
    G.to(device)
    D.to(device)
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
            mask, real = (t.to(device) for t in batch)
            fake = G(mask)
            d_real, d_fake = D(torch.cat([mask, real], 1)), D(torch.cat([mask, fake.detach()], 1))
        else:
            real = batch.to(device)
            fake = G(torch.randn(len(real), 100, device=device))
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

def engine_trainer(spec: dict, project: Path, features: dict) -> Trainer:
    hp = {"z_dim": 100, **spec["hp"]} if spec["variant"] != "pix2pix" else dict(spec["hp"])
    raw = {"seed": 0,
           "datasets": {"bench": {"kind": "volumes", "raw": "unused", "classes": ["all"],
                                  "image_size": [spec["size"], spec["size"]]}},
           "variants": {spec["variant"]: hp},
           "experiments": {"bench": {"dataset": "bench", "variant": spec["variant"], "class": "all"}},
           "train": {"batch_size": spec["batch"], "diffaugment": [], "hflip": False, "iterations": 10**6,
                     "channels_last": features["channels_last"], "compile": features["compile"],
                     "precision": "bf16" if features["bf16"] else "fp32"},
           "resources": {"train": {"threads": torch.get_num_threads()}}}
    os.chdir(project)
    return Trainer(config.validate(raw), "bench")


def engine_runs(defaults: dict, ablate: bool) -> dict[str, dict]:
    """{run name: features}: the engine as configured, then each feature that is on switched off once."""
    runs = {"engine": dict(defaults)}
    if ablate:
        runs.update({f"engine without {f}": {**defaults, f: False} for f in FEATURES if defaults[f]})
    return runs


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def time_steps(step, n: int) -> float:
    synchronize()
    start = time.perf_counter()
    for _ in range(n):
        step()
    synchronize()
    return (time.perf_counter() - start) / n


def run(name: str, spec: dict, rounds: int, steps: int, warmup: int, runs: dict[str, dict]) -> dict:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        root = paths.path(paths.SLICES, dataset="bench")
        write_dataset(project / root, spec["size"])
        trainers = {run_name: engine_trainer(spec, project, features) for run_name, features in runs.items()}
        G, D = variants.build(spec["variant"], (spec["size"], spec["size"]), trainers["engine"].hp, 1)
        steps_of = {"reference": reference_step_fn(spec, project / root, G, D, device),
                    **{run_name: trainer.train_step for run_name, trainer in trainers.items()}}
        warmup_s, errors = {}, {}
        with trainers["engine"].run_settings():  # as Trainer.run trains (threads, subnormal flushing on CPU)
            for key, step in list(steps_of.items()):
                try:  # one failing run (say, torch.compile on a new machine) must not cost the others
                    warmup_s[key] = time_steps(step, warmup) * warmup
                except Exception as err:  # noqa: BLE001 — reported with the results
                    errors[key] = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
                    del steps_of[key]
            if "reference" in errors:
                raise RuntimeError(f"{name}: the reference loop failed: {errors['reference']}")
            times = {key: [] for key in steps_of}
            for _ in range(rounds):
                for key, step in steps_of.items():
                    times[key].append(time_steps(step, steps))
    median = {key: statistics.median(values) for key, values in times.items()}
    ref = median["reference"]
    result = {"config": name, "variant": spec["variant"], "size": spec["size"], "batch": spec["batch"],
              "device": device.type, "rounds": rounds, "steps": steps,
              "reference_img_s": spec["batch"] / ref, "warmup_s": warmup_s, "runs": {}, "errors": errors}
    for key in runs:
        result["runs"][key] = ({"features": runs[key], "error": errors[key]} if key in errors else
                               {"features": runs[key], "img_s": spec["batch"] / median[key], "ratio": ref / median[key]})
    engine = result["runs"]["engine"]
    result["engine_img_s"], result["ratio"] = engine.get("img_s"), engine.get("ratio")
    return result


def environment() -> dict:
    cuda = torch.cuda.is_available()
    return {"torch": torch.__version__, "cuda": torch.version.cuda or "none",
            "device": torch.cuda.get_device_name(0) if cuda else "cpu", "threads": torch.get_num_threads(),
            "load_average": list(os.getloadavg())}


def print_result(r: dict) -> None:
    print(f"{r['config']:15s} batch {r['batch']:3d}  reference {r['reference_img_s']:8.1f} img/s", flush=True)
    for key, arm in r["runs"].items():
        on = "+".join(f for f in FEATURES if arm["features"][f]) or "none"
        if "error" in arm:
            print(f"  {key:28s} FAILED (on: {on}): {arm['error']}", flush=True)
            continue
        print(f"  {key:28s} {arm['img_s']:8.1f} img/s  {arm['ratio']:5.2f}x the reference  "
              f"(on: {on}; warm-up {r['warmup_s'][key]:.1f} s)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=list(CONFIGS), action="append",
                        help=f"configuration (repeatable; default: {', '.join(CPU_CONFIGS)})")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per run first (compilation)")
    parser.add_argument("--ablate", action="store_true",
                        help="also run the engine with bf16, channels_last and compile each switched off once")
    parser.add_argument("--no-bf16", action="store_true", help="engine in fp32 (default: bf16 on a GPU)")
    parser.add_argument("--no-channels-last", action="store_true", help="engine channels-first")
    parser.add_argument("--no-compile", action="store_true", help="engine without torch.compile (default: on a GPU)")
    parser.add_argument("--json", metavar="FILE", help="append one JSON line per configuration to FILE")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    defaults = {"bf16": cuda and not args.no_bf16, "channels_last": not args.no_channels_last,
                "compile": cuda and not args.no_compile}
    env = environment()
    print(f"device: {env['device']}, torch {env['torch']} (CUDA {env['cuda']}), threads {env['threads']}, "
          f"load average {env['load_average'][0]:.2f}")
    for name in args.only or CPU_CONFIGS:
        r = run(name, CONFIGS[name], args.rounds, args.steps, args.warmup, engine_runs(defaults, args.ablate))
        print_result(r)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps({**r, "environment": env}) + "\n")


if __name__ == "__main__":
    sys.exit(main())
